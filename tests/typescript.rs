//! TypeScript on runtimes that run JavaScript only (`typescript: strip`, e.g. node): ignite
//! stages a stripped copy of the service, mounts it at /app, and refuses sources it cannot strip
//! before any sandbox starts. The cross-runtime `.ts` entry test is in tests/runtimes.rs.

mod common;

use common::*;

const STRIP_RUNTIME: &str = "node";

/// `ignite cleanup` removes every staged copy no run holds, and `--print-spec` holds its copy
/// only while it runs: a test that looks into a copy afterwards must not overlap a cleanup.
static CLEANUP: std::sync::Mutex<()> = std::sync::Mutex::new(());

const MAIN: &str = r#"import { double } from "./lib/math.ts";
type Input = { n: number };
const input = JSON.parse(process.env.IGNITE_INPUT ?? "{}") as Input;
console.log(`double=${double(input.n)}`);
if (input.n === 0) {
  throw new Error("zero");
}
"#;

const MATH: &str = "export function double(x: number): number {\n  return x * 2;\n}\n";

fn ts_service(sb: &Sandbox, name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let yaml = format!("service:\n  name: {name}\n  entry: index.ts\n");
    let mut all = vec![("service.yaml", yaml.as_str())];
    all.extend_from_slice(files);
    sb.service(name, &all)
}

/// The host path mounted at /app and the argv, from `--print-spec`.
fn app_mount_and_args(sb: &Sandbox, dir: &std::path::Path) -> (String, Vec<String>) {
    let out = sb
        .cmd()
        .args(["run", "--quiet", "--print-spec", "--runtime", STRIP_RUNTIME])
        .arg(dir)
        .output()
        .expect("spawn ignite");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).expect("spec JSON");
    let app = spec["mounts"].as_array().expect("mounts").iter().find(|m| m["destination"] == "/app").expect("/app");
    let args = spec["process"]["args"].as_array().expect("args").iter().map(|a| a.as_str().unwrap().to_string());
    (app["source"].as_str().expect("source").to_string(), args.collect())
}

#[test]
fn parse_error_points_at_file_line_column_with_exit_125() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let bad = "export function double(x: number): number {\n  return x *;\n}\n";
    let dir = ts_service(&sb, "badts", &[("index.ts", MAIN), ("lib/math.ts", bad)]);
    let out = sb.cmd().args(["run", "--runtime", STRIP_RUNTIME]).arg(&dir).output().expect("spawn ignite");
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    let file = dir.join("lib/math.ts");
    assert!(err.contains(&format!("{}:2:13: ", file.display())), "{err}");
    assert!(err.contains("     2 |   return x *;\n       |             ^"), "{err}");
    // Nothing was started: the failure comes before the sandbox.
    sb.assert_no_leaks();

    // The same in JSON mode: one error object on stdout.
    let (out, v) = sb.run_json(&dir, &["--runtime", STRIP_RUNTIME]);
    assert_eq!(out.status.code(), Some(125));
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(msg.contains(&format!("{}:2:13", file.display())), "{msg}");
}

#[test]
fn syntax_that_cannot_be_erased_is_explained() {
    let sb = Sandbox::new();
    let dir = ts_service(&sb, "enumts", &[("index.ts", "enum Color { Red }\nconsole.log(Color.Red);\n")]);
    let out = sb.cmd().args(["run", "--print-spec", "--runtime", STRIP_RUNTIME]).arg(&dir).output().expect("spawn");
    assert_eq!(out.status.code(), Some(125));
    let err = stderr_of(&out);
    assert!(err.contains("index.ts:1:1: TypeScript enum is not supported"), "{err}");
    assert!(err.contains("erasable"), "the message says what is supported: {err}");
}

#[test]
fn jsx_entry_is_refused_with_a_reason() {
    let sb = Sandbox::new();
    let dir = sb.service(
        "jsxsvc",
        &[("service.yaml", "service:\n  name: jsxsvc\n  entry: index.tsx\n"), ("index.tsx", "const a = <div/>;\n")],
    );
    let out = sb.cmd().args(["run", "--print-spec", "--runtime", STRIP_RUNTIME]).arg(&dir).output().expect("spawn");
    assert_eq!(out.status.code(), Some(125));
    let err = stderr_of(&out);
    assert!(err.contains("JSX") && err.contains("bun or deno"), "{err}");
}

#[test]
fn staged_copy_is_reused_while_sources_are_unchanged() {
    let _serial = CLEANUP.lock().unwrap_or_else(|e| e.into_inner());
    let sb = Sandbox::new();
    let dir = ts_service(&sb, "reuse", &[("index.ts", MAIN), ("lib/math.ts", MATH)]);
    let (first, args) = app_mount_and_args(&sb, &dir);
    assert!(args.iter().any(|a| a == "/app/index.js"), "the entry is the stripped file: {args:?}");
    assert_ne!(std::path::Path::new(&first), dir.as_path(), "a staged copy is mounted, not the service");
    let staged = std::path::Path::new(&first);
    assert!(staged.join("lib/math.js").is_file() && !staged.join("lib/math.ts").exists());
    let (second, _) = app_mount_and_args(&sb, &dir);
    assert_eq!(first, second, "unchanged sources reuse the staged copy");
    std::fs::write(dir.join("lib/math.ts"), MATH.replace("x * 2", "x + x")).expect("write");
    let (third, _) = app_mount_and_args(&sb, &dir);
    assert_ne!(first, third, "a changed source is staged again");
    // The service directory itself is never written to.
    assert!(!dir.join("index.js").exists() && !dir.join("lib/math.js").exists());
}

#[test]
fn stack_traces_point_at_the_source_lines() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = ts_service(&sb, "trace", &[("index.ts", MAIN), ("lib/math.ts", MATH)]);
    let r = sb.run_json(&dir, &["--runtime", STRIP_RUNTIME, "--input", r#"{"n":0}"#]).1;
    assert_eq!(r["status"], "error", "{r}");
    let stderr = r["stderr"].as_str().unwrap_or_default();
    // `new Error` is at line 6, column 9 of index.ts, and so of the staged index.js.
    assert!(stderr.contains("/app/index.js:6:9"), "{stderr}");
    sb.assert_no_leaks();
}

#[test]
fn own_node_modules_is_visible_at_app_node_modules() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let main = "import { greet } from \"greeter\";\nconst who: string = \"ts\";\nconsole.log(greet(who));\n";
    let dir = ts_service(
        &sb,
        "ownmods",
        &[
            ("index.ts", main),
            ("node_modules/greeter/package.json", r#"{"name":"greeter","type":"module","main":"index.js"}"#),
            ("node_modules/greeter/index.js", "export const greet = (w) => `hello ${w}`;\n"),
        ],
    );
    let r = sb.run_json(&dir, &["--runtime", STRIP_RUNTIME]).1;
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["stdout"].as_str().unwrap_or_default().trim(), "hello ts", "{r}");
    sb.assert_no_leaks();
}

#[test]
fn cleanup_removes_staged_copies_no_run_uses() {
    if !require_sandbox() {
        return;
    }
    let _serial = CLEANUP.lock().unwrap_or_else(|e| e.into_inner());
    let sb = Sandbox::new();
    let dir = ts_service(&sb, "cleanme", &[("index.ts", MAIN), ("lib/math.ts", MATH)]);
    let (staged, _) = app_mount_and_args(&sb, &dir);
    assert!(std::path::Path::new(&staged).is_dir());
    let out = sb.cmd().arg("cleanup").output().expect("spawn ignite");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("staged TypeScript cop"), "{}", stderr_of(&out));
    assert!(!std::path::Path::new(&staged).exists(), "{staged} survived ignite cleanup");
    assert!(!std::path::Path::new(&format!("{staged}.lock")).exists(), "its lock file survived");
}
