"""Drives ignite's MCP server with the official MCP Python SDK (a real client, pinned in
requirements.txt): `ignite mcp` over stdio, then `/mcp` under `ignite serve` over streamable
HTTP with and without its API key. Run by tests/mcp-client.sh, which gives the paths:

    client.py IGNITE_BIN SERVICES_DIR STATE_DIR [HTTP_URL API_KEY]

Every check prints one line; the first failure raises (exit status 1). Each call is bounded by
a timeout, so a hung server fails the test instead of hanging it.
"""

import asyncio
import sys
import time
from datetime import timedelta

import httpx
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client

TIMEOUT = timedelta(seconds=60)
EXPECTED_TOOLS = {
    "session_list_files",
    "session_read_file",
    "session_write_file",
    "run_code",
    "list_services",
    "run_service",
    "session_create",
    "session_execute",
    "session_close",
}
HELLO = 'const { name } = JSON.parse(process.env.IGNITE_INPUT); console.log(`hello, ${name}`);'


def check(cond, what, detail=None):
    if not cond:
        raise AssertionError(f"{what}: {detail!r}")
    print(f"ok: {what}")


def text_of(result):
    return "".join(getattr(c, "text", "") for c in result.content)


async def call(session, name, args, latencies=None):
    started = time.perf_counter()
    result = await session.call_tool(name, args, read_timeout_seconds=TIMEOUT)
    if latencies is not None:
        latencies.append((time.perf_counter() - started) * 1000)
    return result


async def tools_suite(session, services=True):
    """What both transports must do alike."""
    init_latencies = []
    tools = await session.list_tools()
    names = {t.name for t in tools.tools}
    check(names >= EXPECTED_TOOLS, "tools/list names every tool", sorted(names))
    run_code = next(t for t in tools.tools if t.name == "run_code")
    check("code" in run_code.inputSchema.get("properties", {}), "run_code's schema has `code`", run_code.inputSchema)

    r = await call(session, "run_code", {"runtime": "bun", "code": HELLO, "input": {"name": "mcp"}}, init_latencies)
    s = r.structuredContent or {}
    check(not r.isError, "run_code of a bun hello is not an error", text_of(r))
    check(s.get("status") == "ok" and s.get("exitCode") == 0, "run_code status ok, exit code 0", s.get("status"))
    check(s.get("stdout") == "hello, mcp\n", "run_code stdout", s.get("stdout"))
    check("metrics" in s and s["metrics"].get("memoryLimitMb"), "run_code has metrics", s.get("metrics"))
    check(text_of(r).startswith("status: ok, exit code 0"), "run_code text summary", text_of(r))

    r = await call(session, "run_code", {"code": "process.exit(3)"})
    check(not r.isError and r.structuredContent["exitCode"] == 3, "a failing program is a result with its exit code",
          text_of(r))

    if services:
        r = await call(session, "list_services", {})
        listed = [svc["name"] for svc in r.structuredContent["services"]]
        check("hello" in listed, "list_services lists hello", listed)
        r = await call(session, "run_service", {"name": "hello", "input": {"name": "agent"}})
        check(not r.isError and r.structuredContent["stdout"] == "hello, agent\n", "run_service hello",
              text_of(r))

    r = await call(session, "session_create", {"ttlSeconds": 120})
    check(not r.isError and r.structuredContent.get("id"), "session_create", text_of(r))
    sid = r.structuredContent["id"]
    write = 'await Bun.write("/tmp/workspace/note.txt", "kept"); console.log("written")'
    r = await call(session, "session_execute", {"sessionId": sid, "code": write})
    check(not r.isError and r.structuredContent["stdout"] == "written\n", "session_execute writes", text_of(r))
    read = 'console.log(await Bun.file("/tmp/workspace/note.txt").text())'
    r = await call(session, "session_execute", {"sessionId": sid, "code": read})
    check(not r.isError and r.structuredContent["stdout"] == "kept\n", "the next run of the session sees it",
          text_of(r))
    r = await call(session, "session_write_file", {"sessionId": sid, "path": "in/x.bin", "content": "AP8=",
                                                   "encoding": "base64"})
    check(not r.isError and r.structuredContent["size"] == 2, "session_write_file (base64)", text_of(r))
    r = await call(session, "session_read_file", {"sessionId": sid, "path": "in/x.bin"})
    check(not r.isError and r.structuredContent["encoding"] == "base64" and r.structuredContent["content"] == "AP8=",
          "session_read_file gives bytes back as base64", r.structuredContent)
    r = await call(session, "session_read_file", {"sessionId": sid, "path": "note.txt"})
    check(not r.isError and r.structuredContent["content"] == "kept", "session_read_file of what a run wrote",
          r.structuredContent)
    r = await call(session, "session_list_files", {"sessionId": sid})
    listed = [f["path"] for f in r.structuredContent["files"]]
    check(listed == ["in", "in/x.bin", "note.txt"], "session_list_files", listed)
    r = await call(session, "session_read_file", {"sessionId": sid, "path": "../../etc/passwd"})
    check(r.isError and r.structuredContent["error"]["code"] == "invalid_path", "a path out of the workspace",
          text_of(r))
    r = await call(session, "session_close", {"sessionId": sid})
    check(not r.isError, "session_close", text_of(r))
    r = await call(session, "session_execute", {"sessionId": sid, "code": read})
    check(r.isError and r.structuredContent["error"]["code"] == "not_found", "a closed session is gone",
          text_of(r))

    # Errors: precise tool errors, not protocol failures, and the server keeps serving.
    r = await call(session, "run_code", {"code": "1", "files": {"index.ts": "1"}})
    check(r.isError and r.structuredContent["error"]["code"] == "invalid_request", "code and files together",
          text_of(r))
    r = await call(session, "run_code", {"code": "1", "limits": {"timeoutMs": "soon"}})
    check(r.isError and r.structuredContent["error"]["code"] == "invalid_arguments"
          and "limits.timeoutMs" in text_of(r), "a mistyped argument names its field", text_of(r))
    r = await call(session, "run_code", {"runtime": "cobol", "code": "1"})
    check(r.isError and "cobol" in text_of(r), "an unknown runtime is named", text_of(r))
    if services:
        r = await call(session, "run_service", {"name": "nope"})
        check(r.isError and r.structuredContent["error"]["code"] == "not_found", "an unknown service",
              text_of(r))
    return init_latencies


async def stdio(bin_path, services, state):
    params = StdioServerParameters(
        command=bin_path,
        args=["--state-dir", state, "mcp", "--services", services, "--max-concurrent", "2"],
        env={"IGNITE_LOG": "warn", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, read_timeout_seconds=TIMEOUT) as session:
            init = await session.initialize()
            check(init.serverInfo.name == "ignite", "initialize over stdio", init.serverInfo)
            check(init.capabilities.tools is not None, "the server offers tools", init.capabilities)
            await tools_suite(session)
            # Latency of a tool call, client to result (a cold bun run each).
            latencies = []
            for _ in range(5):
                r = await call(session, "run_code", {"code": 'console.log("x")'}, latencies)
                check(not r.isError, "run_code (latency sample)", text_of(r))
            latencies.sort()
            print(f"measured: stdio run_code of a bun hello, client-side latency ms: "
                  f"min {latencies[0]:.1f} median {latencies[len(latencies) // 2]:.1f} max {latencies[-1]:.1f}")


async def http(url, key):
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "no-key", "version": "0"}}}
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=30) as plain:
        r = await plain.post(url, json=body, headers=headers)
        check(r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", "/mcp without a key is 401",
              (r.status_code, r.text[:200]))
        r = await plain.post(url, json=body, headers={**headers, "Authorization": "Bearer wrong-key-0123456789"})
        check(r.status_code == 401, "/mcp with a wrong key is 401", r.status_code)
    auth = {"Authorization": f"Bearer {key}"}
    async with streamablehttp_client(url, headers=auth, timeout=30, sse_read_timeout=120) as (read, write, _):
        async with ClientSession(read, write, read_timeout_seconds=TIMEOUT) as session:
            init = await session.initialize()
            check(init.serverInfo.name == "ignite", "initialize over streamable HTTP with the key", init.serverInfo)
            await tools_suite(session)


def main():
    bin_path, services, state = sys.argv[1:4]
    asyncio.run(stdio(bin_path, services, state))
    if len(sys.argv) > 5:
        asyncio.run(http(sys.argv[4], sys.argv[5]))
    print("mcp-client: all checks passed")


if __name__ == "__main__":
    main()
