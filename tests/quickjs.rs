//! The quickjs runtime end to end: the launcher and bootstrap that give QuickJS-ng a Node-like
//! surface (modules and node_modules, CommonJS interop, timers, process exit codes, errors,
//! console, encoding) and nothing more (no std/os modules, no exec).
//!
//! The cross-runtime matrix in tests/runtimes.rs covers hello, input, limits and metrics; these
//! tests cover what only the quickjs launcher implements. The npm test downloads lodash and
//! lodash-es from the npm registry (pinned by integrity) into the service's own node_modules.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use ignite::data::runtime::Integrity;

macro_rules! sandbox_test {
    () => {{
        if !require_sandbox() {
            return;
        }
        Sandbox::new()
    }};
}

/// `ignite run DIR --json --runtime quickjs ARGS`: the report.
fn run(sb: &Sandbox, dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--runtime", "quickjs"];
    all.extend_from_slice(args);
    let (out, r) = sb.run_json(dir, &all);
    assert!(out.status.code().is_some(), "ignite was killed by a signal: {}", stderr_of(&out));
    r
}

fn stdout(r: &serde_json::Value) -> String {
    r["stdout"].as_str().unwrap_or_default().trim_end().to_string()
}

fn stderr(r: &serde_json::Value) -> String {
    r["stderr"].as_str().unwrap_or_default().to_string()
}

/// A service whose entry is `entry`, with the given files.
fn service(sb: &Sandbox, name: &str, entry: &str, files: &[(&str, &str)]) -> PathBuf {
    let yaml = format!("service:\n  name: {name}\n  entry: {entry}\n  timeoutMs: 20000\n");
    let mut all = vec![("service.yaml", yaml.as_str())];
    all.extend_from_slice(files);
    sb.service(name, &all)
}

/// Downloads an npm tarball (verified against its pinned integrity) and unpacks its `package/`
/// directory into `dest`.
fn install_npm_package(url: &str, integrity: &str, dest: &Path) {
    let integrity: Integrity = integrity.parse().expect("integrity");
    let tgz = tempfile::NamedTempFile::new().expect("temp file");
    let path = tgz.path().to_path_buf();
    ignite::store::bundle::fetch::download(url, &integrity, &path, &ignite::store::bundle::NoProgress)
        .unwrap_or_else(|e| panic!("this test downloads {url} from the npm registry: {e}"));
    let file = fs::File::open(&path).expect("open tarball");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().expect("path").into_owned();
        let rel = name.strip_prefix("package").expect("npm tarballs hold package/");
        assert!(rel.components().all(|c| matches!(c, std::path::Component::Normal(_))), "{name:?}");
        let target = dest.join(rel);
        fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        let mut out = fs::File::create(&target).expect("create");
        std::io::copy(&mut entry, &mut out).expect("write");
    }
}

#[test]
fn npm_packages_from_node_modules_cjs_and_esm() {
    let sb = sandbox_test!();
    // The entry lives in src/, so resolution must walk up to /app/node_modules.
    let code = r#"
import _ from "lodash";
import { chunk, VERSION } from "lodash";
import pad from "lodash/pad.js";
import { chunk as chunkEs, camelCase } from "lodash-es";
import * as es from "lodash-es";
const input = JSON.parse(process.env.IGNITE_INPUT);
console.log(JSON.stringify({
  defaultImport: _.chunk(input.items, 2),
  namedImport: chunk(input.items, 3),
  sameFunction: chunk === _.chunk,
  version: VERSION,
  subpath: pad("x", 5),
  esm: chunkEs(input.items, 4),
  camel: camelCase("hello quick world"),
  esmNamespaceHasDefault: typeof es.default,
}));
"#;
    let dir = service(&sb, "npmqjs", "src/index.mjs", &[("src/index.mjs", code)]);
    install_npm_package(
        "https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz",
        "sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXPs17LhbZVGedAJv8XZ1tvj5FvSg==",
        &dir.join("node_modules/lodash"),
    );
    install_npm_package(
        "https://registry.npmjs.org/lodash-es/-/lodash-es-4.17.21.tgz",
        "sha512-mKnC+QJ9pWVzv+C4/U3rRsHapFfHvQFoFB92e52xeyGMcX6/OlIl78je1u8vePzYZSkkogMPJ2yjxxsb89cxyw==",
        &dir.join("node_modules/lodash-es"),
    );
    let r = run(&sb, &dir, &["--input", r#"{"items":[1,2,3,4,5]}"#]);
    assert_eq!(r["status"], "ok", "{r}");
    let v: serde_json::Value = serde_json::from_str(&stdout(&r)).expect("JSON line");
    assert_eq!(v["defaultImport"], serde_json::json!([[1, 2], [3, 4], [5]]));
    assert_eq!(v["namedImport"], serde_json::json!([[1, 2, 3], [4, 5]]));
    assert_eq!(v["sameFunction"], true);
    assert_eq!(v["version"], "4.17.21");
    assert_eq!(v["subpath"], "  x  ");
    assert_eq!(v["esm"], serde_json::json!([[1, 2, 3, 4], [5]]));
    assert_eq!(v["camel"], "helloQuickWorld");
    assert_eq!(v["esmNamespaceHasDefault"], "function");
    sb.assert_no_leaks();
}

#[test]
fn module_resolution_and_commonjs_interop() {
    let sb = sandbox_test!();
    let files: &[(&str, &str)] = &[
        ("package.json", r##"{ "name": "app", "imports": { "#util": "./util/index.js", "#dep/*": "dual/*" } }"##),
        (
            "index.mjs",
            r##"
import cjsDefault, { greet, data } from "cjs-pkg";
import { kind as esmKind } from "@scope/esm-pkg";
import feature from "@scope/esm-pkg/feature";
import { deep } from "@scope/esm-pkg/internal/deep";
import dual from "dual";
import util from "#util";
import depExtra from "#dep/extra.js";
import legacy from "./legacy.cjs";
import json from "./data.json" with { type: "json" };
import { twice } from "./lib/math";
const out = {
  greet: greet("quickjs"),
  defaultIsModuleExports: cjsDefault.greet === greet,
  json: data.answer,
  esmKind, feature, deep, dual, util, depExtra,
  legacy: legacy.fromLegacy,
  nested: legacy.nestedVersion,
  topLevel: legacy.topLevelVersion,
  jsonImport: json.items.length,
  twice: twice(21),
  meta: [import.meta.url, import.meta.filename, import.meta.dirname, import.meta.main],
  resolved: import.meta.resolve("cjs-pkg"),
};
const failures = {};
for (const spec of ["not-exported/secret.js", "missing-pkg", "./missing.js", "node:fs", "@scope/esm-pkg/cjs-only"]) {
  try { await import(spec); failures[spec] = "loaded"; } catch (e) { failures[spec] = e.code || e.name; }
}
try { legacy.requireEsm(); failures.requireEsm = "loaded"; } catch (e) { failures.requireEsm = e.code; }
out.failures = failures;
out.dynamic = (await import("./lib/math.js")).twice(2);
console.log(JSON.stringify(out));
"##,
        ),
        ("data.json", r#"{ "items": [1, 2, 3] }"#),
        ("lib/math.js", "export function twice(x) { return x * 2; }\n"),
        ("util/index.js", "export default 'util via imports field';\n"),
        (
            "legacy.cjs",
            r#"
const pkgA = require("pkg-a");
exports.fromLegacy = require("./lib/helper.cjs").name + ":" + typeof module + ":" + __filename;
exports.nestedVersion = pkgA.bVersion;
exports.topLevelVersion = require("pkg-b").version;
exports.requireEsm = () => require("@scope/esm-pkg/feature");
"#,
        ),
        ("lib/helper.cjs", "module.exports = { name: 'helper' };\n"),
        ("node_modules/cjs-pkg/package.json", r#"{ "name": "cjs-pkg", "main": "lib/main" }"#),
        (
            "node_modules/cjs-pkg/lib/main.js",
            "const data = require('./data.json');\nconst { suffix } = require('./util');\nexports.greet = (n) => 'hello ' + n + suffix;\nexports.data = data;\n",
        ),
        ("node_modules/cjs-pkg/lib/util.js", "module.exports.suffix = '!';\n"),
        ("node_modules/cjs-pkg/lib/data.json", r#"{ "answer": 42 }"#),
        (
            "node_modules/@scope/esm-pkg/package.json",
            r#"{ "name": "@scope/esm-pkg", "type": "module", "exports": {
                ".": { "require": "./wrong.cjs", "import": "./esm.js", "default": "./wrong.js" },
                "./feature": { "node": "./wrong.js", "default": "./feature.js" },
                "./internal/*": "./int/*.js",
                "./cjs-only": { "require": "./wrong.cjs" } } }"#,
        ),
        ("node_modules/@scope/esm-pkg/esm.js", "export const kind = 'esm via exports import condition';\n"),
        ("node_modules/@scope/esm-pkg/feature.js", "export default 'feature via subpath export';\n"),
        ("node_modules/@scope/esm-pkg/int/deep.js", "export const deep = 'pattern export';\n"),
        ("node_modules/@scope/esm-pkg/wrong.js", "throw new Error('wrong condition chosen');\n"),
        ("node_modules/@scope/esm-pkg/wrong.cjs", "throw new Error('wrong condition chosen');\n"),
        ("node_modules/dual/package.json", r#"{ "name": "dual", "main": "main.cjs", "module": "main.mjs" }"#),
        ("node_modules/dual/main.mjs", "export default 'esm via module field';\n"),
        ("node_modules/dual/main.cjs", "throw new Error('main chosen over module');\n"),
        ("node_modules/dual/extra.js", "export default 'extra via imports pattern';\n"),
        ("node_modules/not-exported/package.json", r#"{ "name": "not-exported", "exports": "./index.js" }"#),
        ("node_modules/not-exported/index.js", "module.exports = 1;\n"),
        ("node_modules/not-exported/secret.js", "module.exports = 'secret';\n"),
        // pkg-a has its own pkg-b@2; the app sees the top-level pkg-b@1.
        ("node_modules/pkg-a/package.json", r#"{ "name": "pkg-a" }"#),
        ("node_modules/pkg-a/index.js", "exports.bVersion = require('pkg-b').version;\n"),
        ("node_modules/pkg-a/node_modules/pkg-b/package.json", r#"{ "name": "pkg-b", "version": "2.0.0" }"#),
        ("node_modules/pkg-a/node_modules/pkg-b/index.js", "exports.version = '2';\n"),
        ("node_modules/pkg-b/package.json", r#"{ "name": "pkg-b", "version": "1.0.0" }"#),
        ("node_modules/pkg-b/index.js", "exports.version = '1';\n"),
    ];
    let dir = service(&sb, "modules", "index.mjs", files);
    let r = run(&sb, &dir, &[]);
    assert_eq!(r["status"], "ok", "{r}");
    let v: serde_json::Value = serde_json::from_str(&stdout(&r)).expect("JSON line");
    let expected = serde_json::json!({
        "greet": "hello quickjs!",
        "defaultIsModuleExports": true,
        "json": 42,
        "esmKind": "esm via exports import condition",
        "feature": "feature via subpath export",
        "deep": "pattern export",
        "dual": "esm via module field",
        "util": "util via imports field",
        "depExtra": "extra via imports pattern",
        "legacy": "helper:object:/app/legacy.cjs",
        "nested": "2",
        "topLevel": "1",
        "jsonImport": 3,
        "twice": 42,
        "meta": ["file:///app/index.mjs", "/app/index.mjs", "/app", true],
        "resolved": "file:///app/node_modules/cjs-pkg/lib/main.js",
        "failures": {
            "not-exported/secret.js": "ERR_PACKAGE_PATH_NOT_EXPORTED",
            "missing-pkg": "ERR_MODULE_NOT_FOUND",
            "./missing.js": "ERR_MODULE_NOT_FOUND",
            "node:fs": "ERR_UNKNOWN_BUILTIN_MODULE",
            "@scope/esm-pkg/cjs-only": "ERR_PACKAGE_PATH_NOT_EXPORTED",
            "requireEsm": "ERR_REQUIRE_ESM",
        },
        "dynamic": 4,
    });
    assert_eq!(v, expected, "{r}");
    sb.assert_no_leaks();
}

#[test]
fn timers_microtasks_and_unref() {
    let sb = sandbox_test!();
    // Only orderings that do not depend on how fast the machine is are asserted.
    let code = r#"
const log = [];
const cleared = setTimeout(() => log.push("cleared timer ran"), 1);
clearTimeout(cleared);
const byId = setTimeout(() => log.push("cleared-by-id timer ran"), 1);
clearTimeout(Number(byId));
setTimeout((a, b) => log.push(`args ${a}${b}`), 2, "x", "y");
let n = 0;
const iv = setInterval(() => { n++; if (n === 3) { clearInterval(iv); log.push("interval x3"); } }, 1);
setImmediate(() => log.push("immediate"));
setTimeout(() => log.push("unref'd timer ran"), 60000).unref();
Promise.resolve().then(() => log.push("promise"));
queueMicrotask(() => log.push("microtask"));
process.nextTick(() => log.push("nextTick"));
log.push("sync");
await new Promise((resolve) => setTimeout(resolve, 20));
log.push("after await");
process.on("exit", (code) => console.log(JSON.stringify({ log, code })));
"#;
    let dir = service(&sb, "timers", "index.mjs", &[("index.mjs", code)]);
    let r = run(&sb, &dir, &[]);
    assert_eq!(r["status"], "ok", "the unref'd 60 s timer must not keep the program alive: {r}");
    let v: serde_json::Value = serde_json::from_str(&stdout(&r)).expect("JSON line");
    let log: Vec<&str> = v["log"].as_array().expect("log").iter().map(|s| s.as_str().expect("str")).collect();
    assert_eq!(log[0], "sync", "{log:?}");
    let mut microtasks = log[1..4].to_vec();
    microtasks.sort_unstable();
    assert_eq!(microtasks, ["microtask", "nextTick", "promise"], "microtasks run before any timer: {log:?}");
    for expected in ["args xy", "interval x3", "immediate", "after await"] {
        assert!(log.contains(&expected), "{expected} missing: {log:?}");
    }
    for never in ["cleared timer ran", "cleared-by-id timer ran", "unref'd timer ran"] {
        assert!(!log.contains(&never), "{never}: {log:?}");
    }
    assert_eq!(v["code"], 0);
    sb.assert_no_leaks();
}

#[test]
fn exit_codes_errors_and_rejections() {
    let sb = sandbox_test!();
    let cases: &[(&str, &str, i64, &str, &str)] = &[
        // (name, program, exit code, stdout, text that must be in stderr)
        (
            "exit-in-timer",
            "process.on('exit', (c) => console.log('exit event ' + c));\nsetTimeout(() => process.exit(3), 1);\nsetTimeout(() => console.log('never'), 5000);\n",
            3,
            "exit event 3",
            "",
        ),
        ("exit-code", "process.exitCode = 4;\nconsole.log('set');\n", 4, "set", ""),
        (
            "exit-nested",
            "function deep(n) { if (n === 0) process.exit(7); deep(n - 1); }\ndeep(50);\nconsole.log('not reached');\n",
            7,
            "",
            "",
        ),
        (
            "throws",
            "console.log('before');\nthrow new TypeError('boom from entry');\n",
            1,
            "before",
            "TypeError: boom from entry",
        ),
        (
            "throws-in-timer",
            "setTimeout(() => { throw new Error('boom in timer'); }, 1);\n",
            1,
            "",
            "Error: boom in timer",
        ),
        (
            "rejection",
            "Promise.reject(new Error('nobody caught me'));\nsetTimeout(() => console.log('never'), 1000);\n",
            1,
            "",
            "nobody caught me",
        ),
        ("async-throw", "async function f() { throw 'plain string'; }\nf();\n", 1, "", "plain string"),
        (
            "handled",
            "process.on('uncaughtException', (e) => console.log('handled ' + e.message));\nprocess.on('unhandledRejection', (r) => console.log('rejection ' + r));\nsetTimeout(() => { throw new Error('x'); }, 1);\nPromise.reject('y');\nsetTimeout(() => console.log('still running'), 20);\n",
            0,
            "",
            "",
        ),
        ("unsettled-await", "await new Promise(() => {});\n", 13, "", "unsettled top-level await"),
        ("syntax-error", "const = 1;\n", 1, "", "SyntaxError"),
        ("missing-import", "import x from './nope.js';\n", 1, "", "Cannot find module '/app/nope.js'"),
    ];
    for (name, code, exit, out, err) in cases {
        let dir = service(&sb, name, "index.mjs", &[("index.mjs", code)]);
        let r = run(&sb, &dir, &[]);
        assert_eq!(r["exitCode"], *exit, "{name}: {r}");
        assert!(r["signal"].is_null(), "{name}: {r}");
        if !out.is_empty() {
            assert_eq!(stdout(&r), *out, "{name}: {r}");
        }
        assert!(stderr(&r).contains(err), "{name}: stderr lacks {err:?}: {r}");
        assert!(!stdout(&r).contains("never") && !stdout(&r).contains("not reached"), "{name}: {r}");
        if *name == "handled" {
            // Both handlers ran and the program went on.
            let mut lines: Vec<String> = stdout(&r).lines().map(str::to_string).collect();
            lines.sort();
            assert_eq!(lines, ["handled x", "rejection y", "still running"], "{r}");
        }
    }
    sb.assert_no_leaks();
}

#[test]
fn console_process_and_encoding() {
    let sb = sandbox_test!();
    let code = r#"
console.log({ a: 1, b: "two", nested: { deep: { deeper: { deepest: 1 } } }, list: [1, 2, 3] });
console.log(new Map([["k", 1]]), new Set(["s"]), [undefined, null, -0, 10n], function named() {});
console.log("%s has %d items costing %f: %j", "cart", 3, 9.5, { ok: true }, "extra");
console.error("to stderr", { e: 1 });
console.warn("warned");
console.info("info line");
const err = new RangeError("bad range");
err.code = "E_RANGE";
console.log(err.message, String(err));
console.log(process.argv.length, process.argv[1], process.platform, typeof process.env.PATH, process.env.GREETING);
console.log(typeof process.versions.quickjs, process.cwd(), typeof process.hrtime.bigint(), process.uptime() >= 0);
const enc = new TextEncoder().encode("héllo ✓ 😀");
console.log(enc.length, new TextDecoder().decode(enc));
console.log(JSON.stringify(new TextDecoder().decode(new Uint8Array([0x61, 0xff, 0x62, 0xe2, 0x82]))));
let fatal = "accepted";
try { new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xc3])); } catch (e) { fatal = e.name; }
const streaming = new TextDecoder();
const parts = [new Uint8Array([0xf0, 0x9f]), new Uint8Array([0x98, 0x80, 0x21])];
console.log(fatal, parts.map((p, i) => streaming.decode(p, { stream: i === 0 })).join(""));
const bytes = crypto.getRandomValues(new Uint8Array(16));
console.log(bytes.length, /^[0-9a-f-]{36}$/.test(crypto.randomUUID()), typeof performance.now());
process.stdout.write("no newline|");
process.stdout.write("done\n");
"#;
    let dir = sb.service(
        "consolesvc",
        &[
            ("service.yaml", "service:\n  name: consolesvc\n  entry: index.js\n  env:\n    GREETING: hi there\n"),
            ("index.js", code),
        ],
    );
    let r = run(&sb, &dir, &[]);
    assert_eq!(r["status"], "ok", "{r}");
    let expected = [
        "{",
        "  a: 1,",
        "  b: 'two',",
        "  nested: { deep: { deeper: [Object] } },",
        "  list: [ 1, 2, 3 ]",
        "}",
        "Map(1) { 'k' => 1 } Set(1) { 's' } [ undefined, null, -0, 10n ] [Function: named]",
        "cart has 3 items costing 9.5: {\"ok\":true} extra",
        "info line",
        "bad range RangeError: bad range",
        "2 /app/index.js linux string hi there",
        "string /app bigint true",
        "15 héllo ✓ 😀",
        "\"a\u{fffd}b\u{fffd}\"",
        "TypeError 😀!",
        "16 true number",
        "no newline|done",
    ]
    .join("\n");
    assert_eq!(stdout(&r), expected, "{r}");
    assert_eq!(stderr(&r), "to stderr { e: 1 }\nwarned\n", "{r}");
    sb.assert_no_leaks();
}

#[test]
fn program_cannot_reach_std_os_exec_or_files() {
    let sb = sandbox_test!();
    // Everything a program can get hold of: globals and their object graphs, plus every function
    // that appears on the stack while ignite's bootstrap calls back into the program (QuickJS's
    // call sites expose them). None of it may write files, spawn processes or open sockets.
    let code = r#"
const results = {};
for (const m of ["qjs:std", "qjs:os", "std", "os", "qjs:bjson", "bjson", "child_process", "node:child_process", "fs", "net"]) {
  try { await import(m); results[m] = "IMPORTED"; } catch (e) { results[m] = e.code || e.name; }
}
results.globals = ["std", "os", "scriptArgs", "print", "bjson", "Worker", "require", "module", "fetch", "XMLHttpRequest", "WebSocket", "Deno", "Bun"]
  .filter((g) => g in globalThis);

const onStack = new Set();
Error.prepareStackTrace = (_, sites) => { for (const s of sites) { const f = s.getFunction(); if (f) onStack.add(f); } return ""; };
const grab = () => { new Error().stack; };
await new Promise((resolve) => setTimeout(() => { grab(); resolve(); }, 1));
queueMicrotask(grab);
await null;
grab();
Error.prepareStackTrace = undefined;

const seen = new Set();
const names = new Set();
const queue = [globalThis, ...onStack];
while (queue.length) {
  const v = queue.pop();
  if (v === null || (typeof v !== "object" && typeof v !== "function") || seen.has(v)) continue;
  seen.add(v);
  if (typeof v === "function") names.add(v.name);
  queue.push(Object.getPrototypeOf(v));
  for (const k of Reflect.ownKeys(v)) {
    const d = Object.getOwnPropertyDescriptor(v, k);
    if (!d) continue;
    for (const x of [d.value, d.get, d.set]) queue.push(x);
    if (typeof k === "string") names.add(k);
  }
}
const forbidden = ["open", "fdopen", "popen", "execve", "execFile", "execSync", "spawn", "system", "writeFile", "readdir",
  "remove", "rename", "mkdir", "symlink", "socket", "connect", "Worker", "setenv", "kill", "dlopen", "tmpfile"];
results.reachable = forbidden.filter((n) => names.has(n));
results.sanity = ["log", "exit", "setTimeout", "getRandomValues", "TextDecoder"].every((n) => names.has(n));
console.log(JSON.stringify(results));
"#;
    let dir = service(&sb, "nostd", "index.mjs", &[("index.mjs", code)]);
    let r = run(&sb, &dir, &[]);
    assert_eq!(r["status"], "ok", "{r}");
    let v: serde_json::Value = serde_json::from_str(&stdout(&r)).expect("JSON line");
    for m in ["qjs:std", "qjs:os", "std", "qjs:bjson", "bjson"] {
        assert_eq!(v[m], "ERR_MODULE_NOT_FOUND", "{m}: {v}");
    }
    for m in ["os", "child_process", "node:child_process", "fs", "net"] {
        assert_eq!(v[m], "ERR_UNKNOWN_BUILTIN_MODULE", "{m}: {v}");
    }
    assert_eq!(v["globals"], serde_json::json!([]), "{v}");
    assert_eq!(v["reachable"], serde_json::json!([]), "{v}");
    assert_eq!(v["sanity"], true, "the walk found nothing, so it proves nothing: {v}");
    sb.assert_no_leaks();
}

#[test]
fn pinned_versions_report_the_engine_they_were_built_from() {
    let sb = sandbox_test!();
    let dir = service(&sb, "version", "index.js", &[("index.js", "console.log(process.versions.quickjs);\n")]);
    let registry = ignite::data::runtime::Registry::builtin().expect("registry");
    for rt in registry.list().into_iter().filter(|rt| rt.name == "quickjs") {
        let (out, r) = sb.run_json(&dir, &["--runtime", &rt.key()]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        assert_eq!(r["runtime"], rt.key(), "{r}");
        // QJS_VERSION in the vendored sources is the version runtime.yaml claims.
        assert_eq!(stdout(&r), rt.version.to_string(), "{} was built from another engine version: {r}", rt.key());
    }
    sb.assert_no_leaks();
}
