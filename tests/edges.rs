//! The edges stay edges: no file under `src/cli/`, `src/server/`, `src/mcp/` or `src/bench/` names a
//! mechanism module (the sandbox, the store, fsutil, sys, or the engine's internals); they use
//! the engine's façade (items at `engine::` top level), the data types, `host` and their own
//! code. Comments and strings are not looked at; `use` groups are expanded.

use std::path::{Path, PathBuf};

/// Directories whose files are edges.
const EDGES: &[&str] = &["src/cli", "src/server", "src/mcp", "src/bench"];

/// The benchmark's reduced-isolation levels build sandboxes with parts of the isolation left
/// out on purpose; that is their job, so they may name the mechanisms.
const REDUCED_ISOLATION: &[&str] = &["src/bench/levels.rs", "src/bench/reduced.rs"];

/// Top-level modules of the crate that are mechanisms: an edge names none of them.
const MECHANISMS: &[&str] = &["sandbox", "store", "fsutil", "sys"];

/// The engine's own modules: an edge uses what `engine` re-exports, never these.
const ENGINE_INTERNALS: &[&str] = &[
    "install",
    "pool",
    "supervisor",
    "workdirs",
    "runner",
    "inline",
    "session",
    "kind",
    "host_env",
    "settings",
    "request",
];

/// Files allowed to name a mechanism module, each with the modules it names (as the failure
/// message spells them: `sandbox`, `store`, `fsutil`, `sys`, `engine::pool`, …). Empty: every
/// edge goes through the façade. An entry that is not needed fails the test too.
const ALLOWED: &[(&str, &[&str])] = &[];

/// One mechanism module named at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hit {
    line: usize,
    /// The module as allowed in [`ALLOWED`]: `store::bundle`, `engine::pool`, `sys`.
    module: String,
    /// The whole path as written, group expanded: `crate::store::bundle::NoProgress`.
    path: String,
}

/// `src` with comments, string and char literals blanked (newlines kept, so lines still count).
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |out: &mut String, s: &[u8]| {
        for &c in s {
            out.push(if c == b'\n' { '\n' } else { ' ' });
        }
    };
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(b"/*") {
            // Block comments nest in Rust.
            let (mut depth, mut j) = (0usize, 0usize);
            while j < rest.len() {
                if rest[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &rest[..j]);
            i += j;
        } else if let Some(len) = raw_string_len(rest).filter(|_| !ident_before(b, i)) {
            blank(&mut out, &rest[..len]);
            i += len;
        } else if rest[0] == b'"' || (rest.starts_with(b"b\"") && !ident_before(b, i)) {
            let start = if rest[0] == b'"' { 1 } else { 2 };
            let mut j = start;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == b'\'' && char_literal_len(rest).is_some() {
            let len = char_literal_len(rest).unwrap_or(1);
            blank(&mut out, &rest[..len]);
            i += len;
        } else {
            let ch = src[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn ident_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

/// Length of a raw string literal (`r"…"`, `r#"…"#`, `br#"…"#`) starting at `s`.
fn raw_string_len(s: &[u8]) -> Option<usize> {
    let mut j = if s.starts_with(b"br") {
        2
    } else if s.starts_with(b"r") {
        1
    } else {
        return None;
    };
    let hashes = s[j..].iter().take_while(|&&c| c == b'#').count();
    j += hashes;
    if s.get(j) != Some(&b'"') {
        return None;
    }
    let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
    let body = &s[j + 1..];
    let end = body.windows(close.len()).position(|w| w == close.as_slice())?;
    Some(j + 1 + end + close.len())
}

/// Length of a char literal at `s` (`'a'`, `'\n'`, `'\u{1F600}'`), not a lifetime (`'a`).
fn char_literal_len(s: &[u8]) -> Option<usize> {
    if s.get(1) == Some(&b'\\') {
        // The escaped character may itself be a quote: look for the end after it.
        let end = s.get(3..)?.iter().position(|&c| c == b'\'')?;
        return Some(3 + end + 1);
    }
    let text = std::str::from_utf8(&s[1..]).ok().or_else(|| std::str::from_utf8(&s[1..s.len().min(5)]).ok())?;
    let c = text.chars().next()?;
    (s.get(1 + c.len_utf8()) == Some(&b'\'')).then_some(1 + c.len_utf8() + 1)
}

/// The tokens of code: identifiers, `::`, and single punctuation characters, with their line.
fn tokens(code: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut line = 1;
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((chars[start..i].iter().collect(), line));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(("::".to_string(), line));
            i += 2;
        } else {
            out.push((c.to_string(), line));
            i += 1;
        }
    }
    out
}

fn is_ident(t: &str) -> bool {
    t.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Parses a path (or `use` tree) at `tokens[i]`, expanding `{…}` groups; each expanded path
/// is pushed with the line of its last segment. Returns the index after it.
fn expand(tokens: &[(String, usize)], mut i: usize, prefix: &[String], out: &mut Vec<(Vec<String>, usize)>) -> usize {
    let mut path = prefix.to_vec();
    let mut line = tokens.get(i).map_or(0, |t| t.1);
    loop {
        let Some((tok, tok_line)) = tokens.get(i) else {
            out.push((path, line));
            return i;
        };
        if tok == "{" {
            i += 1;
            loop {
                match tokens.get(i).map(|t| t.0.as_str()) {
                    None => return i,
                    Some("}") => return i + 1,
                    Some(",") => i += 1,
                    Some(_) => i = expand(tokens, i, &path, out),
                }
            }
        }
        if tok == "*" {
            path.push("*".into());
            out.push((path, *tok_line));
            return i + 1;
        }
        if !is_ident(tok) {
            out.push((path, line));
            return i;
        }
        path.push(tok.clone());
        line = *tok_line;
        i += 1;
        // `name as alias`: the alias is not part of the path.
        if tokens.get(i).is_some_and(|t| t.0 == "as") {
            i += 2;
        }
        if tokens.get(i).is_some_and(|t| t.0 == "::") {
            i += 1;
        } else {
            out.push((path, line));
            return i;
        }
    }
}

/// The mechanism module a path (segments after the crate root) names, if any: `sandbox`,
/// `store`, `fsutil`, `sys`, or `engine::<internal>`.
fn mechanism(path: &[String]) -> Option<String> {
    let first = path.first()?.as_str();
    if MECHANISMS.contains(&first) {
        return Some(first.to_string());
    }
    let second = path.get(1)?.as_str();
    (first == "engine" && ENGINE_INTERNALS.contains(&second)).then(|| format!("engine::{second}"))
}

/// Every mechanism module `src` names. Each path is read whole, groups expanded: from the crate
/// root (`crate::`, `ignite::`, `::ignite::`), or starting at one of the crate's top-level module
/// names (a module brought in by `use crate::sandbox;`, say). Paths of other crates (`nix::sys`,
/// `std::{…}`) are read past, so their segments are not taken for the crate's modules.
fn scan(src: &str) -> Vec<Hit> {
    let code = code_only(src);
    let toks = tokens(&code);
    let mut hits = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let tok = toks[i].0.as_str();
        let path_start =
            is_ident(tok) && !(i > 0 && toks[i - 1].0 == "::") && toks.get(i + 1).is_some_and(|t| t.0 == "::");
        if !path_start {
            i += 1;
            continue;
        }
        let mut paths = Vec::new();
        let next = expand(&toks, i, &[], &mut paths);
        for (path, line) in paths {
            let (root, rest) = match path.first().map(String::as_str) {
                Some("crate" | "ignite") => (format!("{tok}::"), &path[1..]),
                _ => (String::new(), &path[..]),
            };
            if let Some(module) = mechanism(rest) {
                hits.push(Hit { line, module, path: format!("{root}{}", rest.join("::")) });
            }
        }
        i = next.max(i + 1);
    }
    hits
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn edges_name_no_mechanism_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    let mut used: Vec<(String, String)> = Vec::new();
    let mut files = Vec::new();
    for dir in EDGES {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 10, "found only {} edge files under {}: wrong root?", files.len(), root.display());
    for file in files {
        let rel = file.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if REDUCED_ISOLATION.contains(&rel.as_str()) {
            continue;
        }
        let src = std::fs::read_to_string(&file).unwrap();
        let allowed = ALLOWED.iter().find(|(f, _)| *f == rel).map_or(&[][..], |(_, m)| *m);
        for hit in scan(&src) {
            if allowed.contains(&hit.module.as_str()) {
                used.push((rel.clone(), hit.module));
            } else {
                problems.push(format!(
                    "{rel}:{}: names {} (mechanism module `{}`); use what `ignite::engine` re-exports, the data types, or the edge's own code",
                    hit.line, hit.path, hit.module
                ));
            }
        }
    }
    for (file, modules) in ALLOWED {
        assert!(!file.starts_with("src/server/"), "{file}: the server has no exceptions");
        for m in *modules {
            if !used.iter().any(|(f, u)| f == file && u == m) {
                problems.push(format!("{file}: no longer names `{m}`: remove it from ALLOWED in tests/edges.rs"));
            }
        }
    }
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn the_scanner_sees_groups_aliases_and_bare_module_paths() {
    let src = r##"
use crate::{data::report, sandbox::{identity::UidLease, spec}};
use ignite::engine::{self, pool as p, Engine, supervisor::{OutputSink}};
use crate::engine::{Workspace, OutputSink as _};
use crate::sys;
use nix::{sys::statvfs, mount::MsFlags};
fn f() {
    let x = crate::store::bundle::NoProgress;
    nix::sys::statvfs::statvfs("/");
    sys::scrub_env_var("X");
    // crate::fsutil::svcdir in a comment
    let s = "crate::fsutil::svcdir in a string";
    let c = '"'; let r = r#"crate::sys::x"#;
    let l: &'static str = crate::fsutil::temp_name("a");
    /* crate::sys /* nested */ crate::sys */ let e = engine::workdirs::INLINE_DIR;
}
"##;
    let got: Vec<(usize, String, String)> = scan(src).into_iter().map(|h| (h.line, h.module, h.path)).collect();
    let want: Vec<(usize, String, String)> = [
        (2, "sandbox", "crate::sandbox::identity::UidLease"),
        (2, "sandbox", "crate::sandbox::spec"),
        (3, "engine::pool", "ignite::engine::pool"),
        (3, "engine::supervisor", "ignite::engine::supervisor::OutputSink"),
        (5, "sys", "crate::sys"),
        (8, "store", "crate::store::bundle::NoProgress"),
        (10, "sys", "sys::scrub_env_var"),
        (14, "fsutil", "crate::fsutil::temp_name"),
        (15, "engine::workdirs", "engine::workdirs::INLINE_DIR"),
    ]
    .into_iter()
    .map(|(l, m, p)| (l, m.to_string(), p.to_string()))
    .collect();
    assert_eq!(got, want);
}
