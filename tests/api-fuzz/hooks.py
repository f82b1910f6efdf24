"""Loaded by schemathesis (SCHEMATHESIS_HOOKS, set by tests/api-fuzz.sh) before it generates.

CPython 3.11 before 3.11.8 (this machine's python3 is 3.11.7) raises
`SystemError: AST constructor recursion depth mismatch` when `ast.parse` of a large module runs
close to the recursion limit (CPython issue gh-106905). Hypothesis parses schemathesis' own
source that way, deep in a draw, to describe a lambda, and the run then ends with a "Runtime
Error" that says nothing about the API. A higher limit leaves that parse room; generation does
not recurse anywhere near it otherwise.
"""

import sys

sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))
