//! `security.process` enforced on every runtime: with `allowSpawn: false` (the default) no
//! process can be created or executed — through the runtime's APIs or through native code —
//! while threads and Workers keep working; `allowedCommands` lets exactly the listed
//! executables start; `[]` lets processes fork but exec nothing. Each refusal is paired with a
//! run of the same code under a policy that allows it, so a test cannot pass because the
//! attempt was broken.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;

macro_rules! sandbox_test {
    () => {{
        if !require_sandbox() {
            return;
        }
        Sandbox::new()
    }};
}

const ALLOW_ANY: &str = "security:\n  process:\n    allowSpawn: true\n";
const ALLOW_NONE: &str = "security:\n  process:\n    allowSpawn: true\n    allowedCommands: []\n";

fn allow_only(commands: &[&str]) -> String {
    format!("security:\n  process:\n    allowSpawn: true\n    allowedCommands: [{}]\n", commands.join(", "))
}

/// A service `name` with entry `entry` (its code) and an optional policy file.
fn service(sb: &Sandbox, name: &str, entry: &str, code: &str, policy: Option<&str>, extra: &[(&str, &str)]) -> PathBuf {
    service_with(sb, name, entry, code, policy, extra, "")
}

/// [`service`] with extra service.yaml lines.
fn service_with(
    sb: &Sandbox,
    name: &str,
    entry: &str,
    code: &str,
    policy: Option<&str>,
    extra: &[(&str, &str)],
    yaml_extra: &str,
) -> PathBuf {
    let yaml = format!("service:\n  name: {name}\n  entry: {entry}\n  timeoutMs: 20000\n{yaml_extra}");
    let mut files = vec![("service.yaml", yaml.as_str()), (entry, code)];
    if let Some(p) = policy {
        files.push(("ignite.policy.yaml", p));
    }
    files.extend_from_slice(extra);
    sb.service(name, &files)
}

/// Runs the service and parses the one JSON line it prints.
fn results(sb: &Sandbox, dir: &Path, runtime: &str) -> (serde_json::Value, serde_json::Value) {
    let (out, r) = sb.run_json(dir, &["--runtime", runtime]);
    assert!(out.status.code().is_some(), "ignite was killed: {}", stderr_of(&out));
    let stdout = r["stdout"].as_str().unwrap_or_default();
    let line = stdout.lines().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no results line: {r}"));
    let v = serde_json::from_str(line).unwrap_or_else(|e| panic!("results are not JSON ({e}): {r}"));
    (v, r)
}

/// Bun: every spawn API, and the raw system calls through bun:ffi (native code the program
/// controls). `probe(name, fn)` records the error code, or "ok".
const BUN_PROBES: &str = r#"
import { spawn, spawnSync, exec, execSync, fork } from "node:child_process";
import { dlopen, FFIType, ptr, read } from "bun:ffi";
const out: Record<string, unknown> = {};
const probe = async (name: string, f: () => unknown) => {
  try { out[name] = await f(); } catch (e: any) { out[name] = e.code ?? e.message; }
};
const exited = (c: any) => new Promise((res, rej) => { c.once("error", rej); c.once("exit", (code: number) => res(code === 0 ? "ok" : "exit " + code)); });
await probe("Bun.spawnSync", () => { const r = Bun.spawnSync({ cmd: [process.execPath, "-e", "1"] }); return r.exitCode === 0 ? "ok" : "exit " + r.exitCode; });
await probe("Bun.spawn", () => Bun.spawn({ cmd: [process.execPath, "-e", "1"] }).exited.then((c) => (c === 0 ? "ok" : "exit " + c)));
await probe("spawn", () => exited(spawn(process.execPath, ["-e", "1"])));
await probe("spawnSync", () => { const r = spawnSync(process.execPath, ["-e", "1"]); if (r.error) throw r.error; return "ok"; });
await probe("exec", () => new Promise((res, rej) => exec(`${process.execPath} -e 1`, (e) => (e ? rej(e) : res("ok")))));
await probe("execSync", () => { execSync(`${process.execPath} -e 1`); return "ok"; });
await probe("fork", () => exited(fork("/app/child.ts")));
await probe("worker", () => new Promise((res, rej) => {
  const w = new Worker(URL.createObjectURL(new Blob(["postMessage(21 * 2)"], { type: "application/javascript" })));
  w.onmessage = (e) => { w.terminate(); res(e.data); };
  w.onerror = rej;
}));
if (process.env.NATIVE === "1") {
  const libc = dlopen("libc.so.6", {
    fork: { args: [], returns: FFIType.i32 },
    vfork: { args: [], returns: FFIType.i32 },
    syscall: { args: [FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64], returns: FFIType.i64 },
    execve: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
  const errno = (rc: number | bigint) => (Number(rc) < 0 ? read.i32(libc.symbols.__errno_location(), 0) : "created " + rc);
  const path = Buffer.from(process.execPath + "\0");
  const argv = new BigUint64Array([BigInt(ptr(path)), 0n]);
  const envp = new BigUint64Array([0n]);
  out["native fork"] = errno(libc.symbols.fork());
  out["native vfork"] = errno(libc.symbols.vfork());
  out["native clone"] = errno(libc.symbols.syscall(56, 17, 0, 0, 0, 0)); // SIGCHLD: a fork
  out["native clone3"] = errno(libc.symbols.syscall(435, 0, 88, 0, 0, 0));
  out["native execve"] = errno(libc.symbols.execve(ptr(path), ptr(argv), ptr(envp)));
  out["native execveat"] = errno(libc.symbols.syscall(322, -100, ptr(path), ptr(argv), ptr(envp), 0));
}
console.log(JSON.stringify(out));
"#;

/// What a spawn API gives when spawning is allowed: `exec` and `execSync` run `/bin/sh -c`,
/// and the runtime bundles have no shell, so their child gets as far as exec and finds none.
fn allowed_outcome(api: &str) -> &'static str {
    if api.starts_with("exec") && api != "execFile" { "ENOENT" } else { "ok" }
}

const BUN_SPAWN_APIS: &[&str] = &["Bun.spawnSync", "Bun.spawn", "spawn", "spawnSync", "exec", "execSync", "fork"];

#[test]
fn bun_cannot_create_processes_but_workers_work() {
    let sb = sandbox_test!();
    let extra = [("child.ts", "process.exit(0);\n")];
    let code = BUN_PROBES;
    // The built-in policy: allowSpawn false. The native probes run only here: a fork that
    // succeeded would return into JavaScript in the child.
    let native = "  env:\n    NATIVE: \"1\"\n";
    let denied = service_with(&sb, "bun-nospawn", "index.ts", code, None, &extra, native);
    let (v, r) = results(&sb, &denied, "bun");
    assert_eq!(r["status"], "ok", "{r}");
    for api in BUN_SPAWN_APIS {
        assert_eq!(v[*api], "EPERM", "{api}: {v}");
    }
    assert_eq!(v["worker"], 42, "{v}");
    for call in ["native fork", "native vfork", "native clone", "native execve", "native execveat"] {
        assert_eq!(v[call], libc::EPERM, "{call}: {v}");
    }
    // clone3 must say ENOSYS (libc then falls back to clone, whose flags the filter reads).
    assert_eq!(v["native clone3"], libc::ENOSYS, "{v}");

    // The same APIs work when the policy allows spawning.
    let allowed = service(&sb, "bun-spawn", "index.ts", code, Some(ALLOW_ANY), &extra);
    let (v, r) = results(&sb, &allowed, "bun");
    assert_eq!(r["status"], "ok", "{r}");
    for api in BUN_SPAWN_APIS {
        assert_eq!(v[*api], allowed_outcome(api), "{api}: {v}");
    }
    assert_eq!(v["worker"], 42, "{v}");
    sb.assert_no_leaks();
}

const NODE_PROBES: &str = r#"
import { spawn, spawnSync, exec, execSync, execFile, fork } from "node:child_process";
import { Worker } from "node:worker_threads";
if (process.argv[2] === "child") process.exit(0);
const out = {};
const probe = async (name, f) => {
  try { out[name] = await f(); } catch (e) { out[name] = e.code ?? e.message; }
};
const exited = (c) => new Promise((res, rej) => { c.once("error", rej); c.once("exit", (code) => res(code === 0 ? "ok" : "exit " + code)); });
await probe("spawn", () => exited(spawn(process.execPath, ["-e", "1"])));
await probe("spawnSync", () => { const r = spawnSync(process.execPath, ["-e", "1"]); if (r.error) throw r.error; return "ok"; });
await probe("exec", () => new Promise((res, rej) => exec(`${process.execPath} -e 1`, (e) => (e ? rej(e) : res("ok")))));
await probe("execSync", () => { execSync(`${process.execPath} -e 1`); return "ok"; });
await probe("execFile", () => new Promise((res, rej) => execFile(process.execPath, ["-e", "1"], (e) => (e ? rej(e) : res("ok")))));
await probe("fork", () => exited(fork(new URL(import.meta.url).pathname, ["child"])));
await probe("worker", () => new Promise((res, rej) => {
  const w = new Worker("require('node:worker_threads').parentPort.postMessage(21 * 2)", { eval: true });
  w.once("message", res);
  w.once("error", rej);
}));
console.log(JSON.stringify(out));
// Last: on success it replaces this process, on failure Node aborts with the errno.
if (typeof process.execve === "function") process.execve(process.execPath, [process.execPath, "-e", "console.log('replaced')"]);
"#;

const NODE_SPAWN_APIS: &[&str] = &["spawn", "spawnSync", "exec", "execSync", "execFile", "fork"];

#[test]
fn node_cannot_create_processes_but_worker_threads_work() {
    let sb = sandbox_test!();
    let denied = service(&sb, "node-nospawn", "main.mjs", NODE_PROBES, None, &[]);
    let (v, r) = results(&sb, &denied, "node");
    for api in NODE_SPAWN_APIS {
        assert_eq!(v[*api], "EPERM", "{api}: {v}");
    }
    assert_eq!(v["worker"], 42, "{v}");
    // process.execve (Node 23.11+) failed with EPERM, which Node turns into an abort.
    let stderr = r["stderr"].as_str().unwrap_or_default();
    assert!(stderr.contains("process.execve failed with error code EPERM"), "{r}");
    assert_eq!(r["signal"], "SIGABRT", "{r}");
    assert!(!r["stdout"].as_str().unwrap_or_default().contains("replaced"), "{r}");

    let allowed = service(&sb, "node-spawn", "main.mjs", NODE_PROBES, Some(ALLOW_ANY), &[]);
    let (v, r) = results(&sb, &allowed, "node");
    for api in NODE_SPAWN_APIS {
        assert_eq!(v[*api], allowed_outcome(api), "{api}: {v}");
    }
    assert_eq!(v["worker"], 42, "{v}");
    assert_eq!(r["status"], "ok", "{r}");
    assert!(r["stdout"].as_str().unwrap_or_default().contains("replaced"), "process.execve did not run: {r}");
    sb.assert_no_leaks();
}

const DENO_PROBES: &str = r#"
const out: Record<string, unknown> = {};
const probe = async (name: string, f: () => unknown) => {
  try { out[name] = await f(); } catch (e) { out[name] = e instanceof Deno.errors.NotCapable ? "NotCapable" : String(e); }
};
await probe("command", async () => ((await new Deno.Command(Deno.execPath(), { args: ["--version"] }).output()).success ? "ok" : "failed"));
await probe("worker", () => new Promise((res, rej) => {
  const w = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
  w.onmessage = (e) => { w.terminate(); res(e.data); };
  w.onerror = (e) => { e.preventDefault(); rej(e.message); };
  w.postMessage(21);
}));
console.log(JSON.stringify(out));
"#;

#[test]
fn deno_refuses_commands_itself_and_workers_work() {
    let sb = sandbox_test!();
    let worker = [("worker.ts", "self.onmessage = (e) => self.postMessage(e.data * 2);\n")];
    // Deno refuses first (no --allow-run); the kernel layer under it is shown by
    // the_process_filter_is_installed_exactly_when_the_policy_asks.
    let denied = service(&sb, "deno-nospawn", "index.ts", DENO_PROBES, None, &worker);
    let (v, r) = results(&sb, &denied, "deno");
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(v["command"], "NotCapable", "{v}");
    assert_eq!(v["worker"], 42, "{v}");

    let allowed = service(&sb, "deno-spawn", "index.ts", DENO_PROBES, Some(ALLOW_ANY), &worker);
    let (v, _) = results(&sb, &allowed, "deno");
    assert_eq!(v["command"], "ok", "{v}");
    sb.assert_no_leaks();
}

/// The `Seccomp_filters` counts of a run's runtime process and of its entrypoint, read by the
/// host from /proc while the program waits (the program's own view is not evidence). The entry
/// file name carries a nonce so that only this run's processes match.
fn filters_seen_by_the_host(sb: &Sandbox, runtime: &str, entry_ext: &str, policy: Option<&str>) -> (u32, u32) {
    let marker = format!("wait-{}", nonce().replace('-', "_"));
    let entry = format!("{marker}.{entry_ext}");
    let code = "console.log('ready'); setInterval(() => {}, 1000);\n";
    let dir = service(sb, &format!("filters-{runtime}"), &entry, code, policy, &[]);
    let mut child = sb
        .cmd()
        .args(["run", "--runtime", runtime])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ignite");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "{runtime}: the program did not start");
    let (mut program, mut init) = (None, None);
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if !args.iter().any(|a| a.contains(&marker)) {
            continue;
        }
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let filters = status
            .lines()
            .find_map(|l| l.strip_prefix("Seccomp_filters:"))
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or_else(|| panic!("no Seccomp_filters in {status}"));
        if args[0] == "/.ignite/init" {
            init = Some(filters);
        } else if args[0].starts_with("/usr/local/bin/") {
            program = Some(filters);
        }
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    (program.expect("the runtime process was not found"), init.expect("the entrypoint was not found"))
}

#[test]
fn the_process_filter_is_installed_exactly_when_the_policy_asks() {
    let sb = sandbox_test!();
    for (runtime, ext) in [("bun", "ts"), ("node", "mjs"), ("deno", "ts"), ("quickjs", "js")] {
        // The OCI runtime's profile is one filter; the entrypoint stacks one more on the program
        // (never on itself) when spawning or exec is to be refused.
        assert_eq!(filters_seen_by_the_host(&sb, runtime, ext, None), (2, 1), "{runtime}: built-in policy");
        assert_eq!(filters_seen_by_the_host(&sb, runtime, ext, Some(ALLOW_NONE)), (2, 1), "{runtime}: []");
        assert_eq!(filters_seen_by_the_host(&sb, runtime, ext, Some(ALLOW_ANY)), (1, 1), "{runtime}: allowSpawn");
    }
    sb.assert_no_leaks();
}

/// Starts the listed executables and reports each one's exit code or error code.
const BUN_START: &str = r#"
const out: Record<string, unknown> = {};
for (const cmd of JSON.parse(process.env.IGNITE_INPUT!)) {
  try {
    const r = Bun.spawnSync({ cmd, stdout: "pipe", stderr: "pipe" });
    out[cmd[0]] = { exit: r.exitCode, out: (r.stdout.toString() + r.stderr.toString()).trim().slice(0, 200) };
  } catch (e: any) { out[cmd[0]] = e.code ?? e.message; }
}
console.log(JSON.stringify(out));
"#;

const NODE_START: &str = r#"
import { spawnSync } from "node:child_process";
const out = {};
for (const cmd of JSON.parse(process.env.IGNITE_INPUT)) {
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8" });
  out[cmd[0]] = r.error ? r.error.code : { exit: r.status, out: (r.stdout + r.stderr).trim().slice(0, 200) };
}
console.log(JSON.stringify(out));
"#;

/// `allowedCommands` on one runtime: the listed runtime binary starts (its child prints); an
/// unlisted executable of the rootfs (the entrypoint binary) and one shipped in the service
/// directory fail with EACCES — and both do run when no list is set.
fn allowed_commands_only(runtime: &str, binary: &str, entry: &str, code: &str) {
    let sb = Sandbox::new();
    let commands =
        serde_json::json!([[binary, "-e", "console.log('child ' + 6 * 7)"], ["/.ignite/init"], ["/app/tool"],])
            .to_string();
    let make = |name: &str, policy: &str| {
        let dir = service(&sb, name, entry, code, Some(policy), &[]);
        // A static executable (a copy of the entrypoint) in the service directory.
        let tool = dir.join("tool");
        std::fs::copy(env!("CARGO_BIN_EXE_ignite-init"), &tool).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    };
    let listed = make(&format!("{runtime}-listed"), &allow_only(&[binary]));
    let (out, r) = sb.run_json(&listed, &["--runtime", runtime, "--input", &commands]);
    assert_eq!(r["status"], "ok", "{r}\n{}", stderr_of(&out));
    let v: serde_json::Value = serde_json::from_str(r["stdout"].as_str().unwrap().trim()).unwrap();
    assert_eq!(v[binary]["exit"], 0, "{v}");
    assert_eq!(v[binary]["out"], "child 42", "{v}");
    assert_eq!(v["/.ignite/init"], "EACCES", "{v}");
    assert_eq!(v["/app/tool"], "EACCES", "{v}");

    // Without a list the same two executables start (and complain about their arguments).
    let open = make(&format!("{runtime}-open"), ALLOW_ANY);
    let (_, r) = sb.run_json(&open, &["--runtime", runtime, "--input", &commands]);
    let v: serde_json::Value = serde_json::from_str(r["stdout"].as_str().unwrap().trim()).unwrap();
    for unlisted in ["/.ignite/init", "/app/tool"] {
        assert_eq!(v[unlisted]["exit"], 125, "{unlisted}: {v}");
        assert!(v[unlisted]["out"].as_str().unwrap().contains("usage: ignite-init"), "{unlisted}: {v}");
    }
    sb.assert_no_leaks();
}

#[test]
fn bun_starts_only_allowed_commands() {
    if !require_sandbox() {
        return;
    }
    allowed_commands_only("bun", "/usr/local/bin/bun", "index.ts", BUN_START);
}

#[test]
fn node_starts_only_allowed_commands() {
    if !require_sandbox() {
        return;
    }
    allowed_commands_only("node", "/usr/local/bin/node", "main.mjs", NODE_START);
}

#[test]
fn an_empty_command_list_lets_processes_fork_but_exec_nothing() {
    let sb = sandbox_test!();
    // A fork from JavaScript returns into the parent's JIT code, which Bun does not map into
    // the child, so the child crashes at once; what matters is that the kernel created it.
    let code = r#"
import { dlopen, FFIType, ptr } from "bun:ffi";
const libc = dlopen("libc.so.6", {
  fork: { args: [], returns: FFIType.i32 },
  waitpid: { args: [FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
});
const out: Record<string, unknown> = {};
const status = new Int32Array(4);
const pid = libc.symbols.fork();
out.forked = pid > 0 && libc.symbols.waitpid(pid, ptr(status), 0) === pid;
try { Bun.spawnSync({ cmd: [process.execPath, "-e", "1"] }); out.spawn = "ok"; } catch (e: any) { out.spawn = e.code; }
console.log(JSON.stringify(out));
"#;
    let none = service(&sb, "fork-only", "index.ts", code, Some(ALLOW_NONE), &[]);
    let (v, _) = results(&sb, &none, "bun");
    assert_eq!(v["forked"], true, "{v}");
    assert_eq!(v["spawn"], "EPERM", "{v}");

    let nospawn = service(&sb, "fork-denied", "index.ts", code, None, &[]);
    let (v, _) = results(&sb, &nospawn, "bun");
    assert_eq!(v["forked"], false, "{v}");
    assert_eq!(v["spawn"], "EPERM", "{v}");
    sb.assert_no_leaks();
}

#[test]
fn deno_gets_allow_run_for_exactly_its_commands() {
    let sb = sandbox_test!();
    let code = r#"
const out: Record<string, unknown> = {};
for (const cmd of ["/usr/local/bin/deno", "/.ignite/init"]) {
  try { out[cmd] = (await new Deno.Command(cmd, { args: ["--version"] }).output()).code; }
  catch (e) { out[cmd] = e instanceof Deno.errors.NotCapable ? "NotCapable" : String(e); }
}
console.log(JSON.stringify(out));
"#;
    let dir = service(&sb, "deno-commands", "index.ts", code, Some(&allow_only(&["/usr/local/bin/deno"])), &[]);
    let out = sb.cmd().args(["run", "--runtime", "deno", "--print-spec"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let args: Vec<&str> = spec["process"]["args"].as_array().unwrap().iter().filter_map(|a| a.as_str()).collect();
    assert!(args.contains(&"--allow-run=/usr/local/bin/deno"), "{args:?}");
    let (v, _) = results(&sb, &dir, "deno");
    assert_eq!(v["/usr/local/bin/deno"], 0, "{v}");
    assert_eq!(v["/.ignite/init"], "NotCapable", "{v}");
    sb.assert_no_leaks();
}
