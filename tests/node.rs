//! Node.js on every pinned major line: the version that runs is the one the report names, and
//! what Node programs commonly use (worker threads, the libuv thread pool, fs, timers, crypto,
//! child processes, loopback HTTP) works under the sandbox's seccomp profile and read-only rootfs.

mod common;

use common::*;

/// Runs `ignite run DIR --json --runtime SPEC` and parses the report.
fn run_on(sb: &Sandbox, spec: &str, dir: &std::path::Path) -> serde_json::Value {
    let (out, r) = sb.run_json(dir, &["--runtime", spec]);
    assert!(out.status.code().is_some(), "ignite was killed by a signal: {}", stderr_of(&out));
    r
}

fn hello_reports_pinned_version(major: &str) {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = sb.service(
        "version",
        &[
            ("service.yaml", "service:\n  name: version\n  entry: index.js\n"),
            ("index.js", "console.log(process.version);\n"),
        ],
    );
    let r = run_on(&sb, &format!("node@{major}"), &dir);
    assert_eq!(r["status"], "ok", "{r}");
    let runtime = r["runtime"].as_str().expect("report names the runtime");
    let pinned = runtime.strip_prefix("node@").unwrap_or_else(|| panic!("not a node runtime: {r}"));
    assert!(pinned.starts_with(&format!("{major}.")), "node@{major} resolved to {runtime}: {r}");
    assert_eq!(r["stdout"].as_str().map(str::trim), Some(format!("v{pinned}").as_str()), "{r}");
    sb.assert_cgroup_gone(r["containerId"].as_str().unwrap());
    sb.assert_no_leaks();
}

/// Each check prints one `name=value` line; a failed check prints its error code, so a syscall
/// the seccomp profile denies shows up as EPERM against the feature that needed it.
const FEATURES: &str = r#"
import { Worker } from "node:worker_threads";
import { fork } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import crypto from "node:crypto";
import http from "node:http";
import zlib from "node:zlib";

if (process.argv[2] === "child") {
  process.send("child " + process.getuid());
  process.exit(0);
}

const check = async (name, fn) => {
  let value;
  try { value = await fn(); } catch (e) { value = "failed: " + (e.code ?? e.message); }
  console.log(`${name}=${value}`);
};

await check("worker", () => new Promise((resolve, reject) => {
  const code = "require('node:worker_threads').parentPort.postMessage(require('node:worker_threads').workerData * 2)";
  const w = new Worker(code, { eval: true, workerData: 21 });
  w.once("message", resolve);
  w.once("error", reject);
}));
await check("fork", () => new Promise((resolve, reject) => {
  const child = fork(new URL(import.meta.url).pathname, ["child"]);
  child.once("message", resolve);
  child.once("error", reject);
}));
await check("tmp", async () => {
  await fsp.mkdir("/tmp/a/b", { recursive: true });
  await fsp.writeFile("/tmp/a/b/f.txt", "data");
  await fsp.rename("/tmp/a/b/f.txt", "/tmp/a/g.txt");
  await fsp.copyFile("/tmp/a/g.txt", "/tmp/a/h.txt");
  fs.symlinkSync("/tmp/a/h.txt", "/tmp/a/link");
  const text = await fsp.readFile("/tmp/a/link", "utf8");
  await fsp.rm("/tmp/a", { recursive: true });
  return text + " " + fs.existsSync("/tmp/a");
});
await check("app", () => fsp.writeFile("/app/x", "x").then(() => "writable", (e) => e.code));
await check("root", () => fsp.writeFile("/x", "x").then(() => "writable", (e) => e.code));
await check("watch", () => new Promise((resolve) => {
  const w = fs.watch("/tmp", () => { w.close(); resolve("event"); });
  fs.writeFileSync("/tmp/watched", "1");
}));
await check("timers", () => new Promise((resolve) => {
  let n = 0;
  const h = setInterval(() => { if (++n === 3) { clearInterval(h); setTimeout(() => setImmediate(() => resolve(n)), 5); } }, 1);
}));
await check("crypto", async () => {
  const hash = crypto.createHash("sha256").update("abc").digest("hex").slice(0, 8);
  const { publicKey, privateKey } = crypto.generateKeyPairSync("ed25519");
  const signed = crypto.verify(null, Buffer.from("m"), publicKey, crypto.sign(null, Buffer.from("m"), privateKey));
  const subtle = Buffer.from(await crypto.subtle.digest("SHA-256", Buffer.from("abc"))).toString("hex").slice(0, 8);
  // scrypt runs on the libuv thread pool.
  const key = await new Promise((res, rej) => crypto.scrypt("pw", "salt", 8, (e, k) => (e ? rej(e) : res(k))));
  return [hash, signed, subtle, key.length, crypto.randomBytes(4).length].join(" ");
});
await check("zlib", () => zlib.gunzipSync(zlib.gzipSync("z".repeat(1000))).length);
// Full ICU is built into the binary: locale data needs no files in the rootfs.
await check("intl", () => new Intl.NumberFormat("de-DE").format(1234567.5));
await check("user", () => [os.userInfo().username, process.getuid(), os.tmpdir(), os.homedir()].join(" "));
await check("env", () => Object.keys(process.env).sort().join(","));
await check("http", () => new Promise((resolve, reject) => {
  const server = http.createServer((req, res) => res.end("pong")).listen(0, "127.0.0.1", async () => {
    try {
      resolve(await (await fetch(`http://localhost:${server.address().port}/`)).text());
    } catch (e) {
      reject(e);
    } finally {
      server.close();
    }
  });
}));
await check("refused", () => fetch("http://127.0.0.1:5999/").then(() => "connected", (e) => e.cause?.code ?? e.message));
"#;

fn features_work_in_the_sandbox(major: &str) {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = sb.service(
        "features",
        &[
            ("service.yaml", "service:\n  name: features\n  entry: main.mjs\n  timeoutMs: 20000\n"),
            ("main.mjs", FEATURES),
            // The fork check starts a child node.
            (
                "ignite.policy.yaml",
                "security:\n  process:\n    allowSpawn: true\n    allowedCommands: [/usr/local/bin/node]\n",
            ),
        ],
    );
    let r = run_on(&sb, &format!("node@{major}"), &dir);
    assert_eq!(r["status"], "ok", "{r}");
    let stdout = r["stdout"].as_str().unwrap_or_default();
    // The run's own uid (see ignite::sandbox::identity), named `ignite` in its /etc/passwd; the
    // forked child has the same.
    let uid = stdout
        .lines()
        .find_map(|l| l.strip_prefix("user=ignite "))
        .and_then(|rest| rest.split(' ').next()?.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no user=ignite <uid> line: {r}"));
    assert!(ignite::sandbox::identity::is_run_uid(uid), "uid {uid} is not a run uid");
    let (fork, user) = (format!("fork=child {uid}"), format!("user=ignite {uid} /tmp /tmp"));
    let expected = [
        "worker=42",
        &fork,
        "tmp=data false",
        "app=EROFS",
        "root=EROFS",
        "watch=event",
        "timers=3",
        "crypto=ba7816bf true ba7816bf 8 4",
        "zlib=1000",
        "intl=1.234.567,5",
        &user,
        "env=HOME,IGNITE_INPUT,NO_COLOR,PATH",
        "http=pong",
        "refused=ECONNREFUSED",
    ];
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, expected, "{r}");
    sb.assert_no_leaks();
}

macro_rules! node_tests {
    ($module:ident, $major:literal) => {
        mod $module {
            #[test]
            fn hello_reports_pinned_version() {
                super::hello_reports_pinned_version($major);
            }
            #[test]
            fn features_work_in_the_sandbox() {
                super::features_work_in_the_sandbox($major);
            }
        }
    };
}

node_tests!(node20, "20");
node_tests!(node22, "22");
node_tests!(node24, "24");
