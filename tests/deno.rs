//! Deno's own permission checks, enforced on top of the sandbox: what runtime.yaml grants (read
//! /app and /node_modules, the environment) works, everything else fails with Deno's NotCapable
//! error — including things the sandbox alone would allow (reading the rootfs, writing /tmp,
//! listening on loopback, spawning a process) — and a service cannot widen its grants or make
//! Deno write to /app.

mod common;

use common::*;

/// Each probe prints `name → "ok"`, `"NotCapable"`, or the error it got instead. NotCapable is
/// Deno's permission error: the kernel never produces it, so seeing it proves the flag did the
/// refusing, not a mount or a seccomp rule.
const PROBES: &str = r#"
const results: Record<string, string> = {};
async function probe(name: string, f: () => unknown): Promise<void> {
  try {
    await f();
    results[name] = "ok";
  } catch (e) {
    results[name] = e instanceof Deno.errors.NotCapable ? "NotCapable" : `${(e as Error).name}: ${(e as Error).message}`;
  }
}

// Granted.
await probe("read /app", () => Deno.readTextFile("/app/data.txt"));
await probe("read /node_modules", () => Array.fromAsync(Deno.readDir("/node_modules")));
await probe("env IGNITE_INPUT", () => {
  const a = Deno.env.get("IGNITE_INPUT");
  const b = process.env.IGNITE_INPUT;
  if (a !== '{"n":1}' || b !== a) throw new Error(`Deno.env ${a}, process.env ${b}`);
});

// Allowed by the sandbox (world-readable rootfs files, the writable /tmp, loopback, the deno
// binary), refused by Deno.
await probe("read /etc/passwd", () => Deno.readTextFile("/etc/passwd"));
await probe("node:fs read /etc/passwd", async () => (await import("node:fs")).readFileSync("/etc/passwd", "utf8"));
await probe("read /proc/self/environ", () => Deno.readFile("/proc/self/environ"));
await probe("list /", () => Array.fromAsync(Deno.readDir("/")));
await probe("write /tmp", () => Deno.writeTextFile("/tmp/probe.txt", "x"));
await probe("listen loopback", () => Deno.listen({ hostname: "127.0.0.1", port: 8080 }).close());
await probe("spawn", () => new Deno.Command("/usr/local/bin/deno", { args: ["--version"] }).output());
await probe("hostname", () => Deno.hostname());
await probe("dlopen", () => Deno.dlopen("libc.so.6", {}));

// Refused by both.
await probe("write /app", () => Deno.writeTextFile("/app/probe.txt", "x"));
await probe("fetch", () => fetch("http://127.0.0.1:8080/"));
await probe("connect", () => Deno.connect({ hostname: "127.0.0.1", port: 8080 }));
await probe("remote import", () => import("https://deno.land/std@0.224.0/path/mod.ts"));

console.log(JSON.stringify(results));
"#;

#[test]
fn deno_permissions_are_enforced_on_top_of_the_sandbox() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    // deno.json and package.json ask for everything Deno's config lets a project ask for: all
    // permissions, a lock file and an auto-installed node_modules/ in the service directory.
    let deno_json = r#"{
  "permissions": { "default": { "all": true } },
  "lock": true,
  "nodeModulesDir": "auto",
  "vendor": true
}"#;
    let dir = sb.service(
        "perms",
        &[
            ("service.yaml", "service:\n  name: perms\n  entry: index.ts\n"),
            ("index.ts", PROBES),
            ("data.txt", "granted"),
            ("deno.json", deno_json),
            ("package.json", r#"{"name":"perms","private":true,"dependencies":{"left-pad":"1.3.0"}}"#),
        ],
    );
    let before = listing(&dir);

    let (out, r) = sb.run_json(&dir, &["--runtime", "deno", "--input", r#"{"n":1}"#]);
    assert_eq!(r["status"], "ok", "{r}\n{}", stderr_of(&out));
    let line = r["stdout"].as_str().unwrap().trim();
    let results: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("probe output is not JSON ({e}): {r}"));

    for granted in ["read /app", "read /node_modules", "env IGNITE_INPUT"] {
        assert_eq!(results[granted], "ok", "{granted}: {line}");
    }
    for refused in [
        "read /etc/passwd",
        "node:fs read /etc/passwd",
        "read /proc/self/environ",
        "list /",
        "write /tmp",
        "listen loopback",
        "spawn",
        "hostname",
        "dlopen",
        "write /app",
        "fetch",
        "connect",
    ] {
        assert_eq!(results[refused], "NotCapable", "{refused}: {line}");
    }
    // Remote modules are refused by --no-remote before any network is tried.
    let remote = results["remote import"].as_str().unwrap();
    assert!(remote.contains("--no-remote"), "remote import: {remote}");

    assert_eq!(listing(&dir), before, "Deno wrote to the service directory (lock file, node_modules, vendor)");
    sb.assert_no_leaks();
}

/// Every path under `dir`, sorted.
fn listing(dir: &std::path::Path) -> Vec<String> {
    fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(base).expect("under base").to_string_lossy().into_owned());
            if entry.file_type().expect("file type").is_dir() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
