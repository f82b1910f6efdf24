//! The program's I/O beyond `IGNITE_INPUT`, end to end through the real binary: arguments,
//! stdin and per-request environment variables, on the command line and over HTTP, cold and in
//! warm sandboxes, with their caps and exact errors.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;

use common::server::Server;
use common::{Sandbox, require_sandbox, stderr_of};
use serde_json::{Value, json};

/// Prints what it was given: its arguments, its stdin (its length when long), two variables.
const PROBE: &str = r#"const stdin = await Bun.stdin.text();
console.log(JSON.stringify({
  args: process.argv.slice(2),
  stdin: stdin.length > 4096 ? { bytes: stdin.length } : stdin,
  mode: process.env.MODE ?? null,
  level: process.env.LEVEL ?? null,
}));
"#;

/// Never reads its stdin.
const NO_READ: &str = r#"console.log("done");"#;

fn probe_service(sb: &Sandbox, name: &str, yaml_extra: &str) -> PathBuf {
    sb.ts_service(name, yaml_extra, PROBE)
}

/// The program's own JSON line from a report.
fn program_output(report: &Value) -> Value {
    let stdout = report["stdout"].as_str().unwrap_or_else(|| panic!("no stdout: {report}"));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("program output is not JSON ({e}): {report}"))
}

/// `ignite ARGS` with `stdin` as its stdin; the report (`--json`) or the error.
fn run_with_stdin(sb: &Sandbox, args: &[&str], stdin: Stdio) -> std::process::Output {
    sb.cmd().args(args).stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped()).output().expect("spawn ignite")
}

fn report_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}); stderr:\n{}", stderr_of(out)))
}

#[test]
fn cli_arguments_and_stdin_reach_the_program() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = probe_service(&sb, "probe", "");
    let dir_s = dir.to_str().unwrap();
    let input = sb.work.path().join("input.txt");
    std::fs::write(&input, "line one\nline two\n").unwrap();

    // `ignite run DIR < file`: a regular file as ignite's stdin is the program's; arguments
    // after `--` follow the entry, as given (spaces, dashes).
    let file = std::fs::File::open(&input).unwrap();
    let out = run_with_stdin(&sb, &["run", dir_s, "--json", "--", "a", "b c", "--flag"], Stdio::from(file));
    let v = report_of(&out);
    assert_eq!(v["status"], "ok", "{v}");
    let got = program_output(&v);
    assert_eq!(got["args"], json!(["a", "b c", "--flag"]), "{v}");
    assert_eq!(got["stdin"], "line one\nline two\n", "{v}");
    assert_eq!(got["mode"], Value::Null, "{v}");

    // Read from where the file stands, without moving it: a shell loop that reads its list
    // from the same file still gets every line (as it would not from a program that consumed
    // the rest of it).
    let list = sb.work.path().join("list.txt");
    std::fs::write(&list, "first\nsecond\n").unwrap();
    let script = format!(
        "while read -r n; do \"$0\" run {dir_s} --json -- \"$n\" >> {out}; done",
        out = sb.work.path().join("loop.json").display()
    );
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .arg(common::ignite_bin())
        .env("IGNITE_STATE_DIR", sb.state.path())
        .env("IGNITE_OCI_RUNTIME", &sb.oci_runtime)
        .stdin(Stdio::from(std::fs::File::open(&list).unwrap()))
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(sb.work.path().join("loop.json")).unwrap();
    let runs: Vec<Value> =
        serde_json::Deserializer::from_str(&text).into_iter::<Value>().map(|v| program_output(&v.unwrap())).collect();
    assert_eq!(runs.len(), 2, "the loop ran once per line: {text}");
    assert_eq!(runs[0]["args"], json!(["first"]), "{text}");
    assert_eq!(runs[0]["stdin"], "second\n", "the program gets what is left of the file: {text}");
    assert_eq!(runs[1]["args"], json!(["second"]), "{text}");
    assert_eq!(runs[1]["stdin"], "", "{text}");

    // `--stdin FILE`, with ignite's own stdin a pipe (never read unless asked).
    let mut child = sb
        .cmd()
        .args(["exec", dir_s, "--json", "--stdin"])
        .arg(&input)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"not for the program").unwrap();
    let v = report_of(&child.wait_with_output().unwrap());
    assert_eq!(program_output(&v)["stdin"], "line one\nline two\n", "{v}");
    assert_eq!(program_output(&v)["args"], json!([]), "{v}");

    // An inherited pipe is not read: the program's stdin is empty.
    let mut child = sb
        .cmd()
        .args(["run", dir_s, "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"piped").unwrap();
    let v = report_of(&child.wait_with_output().unwrap());
    assert_eq!(program_output(&v)["stdin"], "", "{v}");

    // `--stdin -` reads ignite's own stdin, pipe or not.
    let mut child = sb
        .cmd()
        .args(["run", dir_s, "--json", "--stdin", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"piped on purpose").unwrap();
    let v = report_of(&child.wait_with_output().unwrap());
    assert_eq!(program_output(&v)["stdin"], "piped on purpose", "{v}");

    // The spec has the arguments after the entry.
    let out = sb.cmd().args(["run", dir_s, "--print-spec", "--", "x", "y"]).output().unwrap();
    let spec: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", stderr_of(&out)));
    let args: Vec<&str> = spec["process"]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(&args[args.len() - 3..], ["/app/index.ts", "x", "y"], "{args:?}");
    sb.assert_no_leaks();
}

#[test]
fn cli_stdin_and_argument_caps_hold_with_precise_errors() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = sb.ts_service("noread", "", NO_READ);
    let dir_s = dir.to_str().unwrap();
    // Exactly the cap, to a program that never reads it: the run ends normally.
    let at_cap = sb.work.path().join("at-cap");
    std::fs::write(&at_cap, vec![b'x'; 1024 * 1024]).unwrap();
    let out = run_with_stdin(&sb, &["run", dir_s, "--json"], Stdio::from(std::fs::File::open(&at_cap).unwrap()));
    let v = report_of(&out);
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["stdout"], "done\n", "{v}");

    let over = sb.work.path().join("over");
    std::fs::write(&over, vec![b'x'; 1024 * 1024 + 1]).unwrap();
    let out = sb.cmd().args(["run", dir_s, "--stdin"]).arg(&over).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains(&format!(
            "--stdin {} is larger than 1048576 bytes, the most a program's stdin may be given",
            over.display()
        )),
        "{}",
        stderr_of(&out)
    );
    let out = run_with_stdin(&sb, &["run", dir_s], Stdio::from(std::fs::File::open(&over).unwrap()));
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("ignite's stdin (a regular file) is larger than 1048576 bytes"),
        "{}",
        stderr_of(&out)
    );

    let many: Vec<String> = (0..257).map(|i| i.to_string()).collect();
    let out = sb.cmd().args(["run", dir_s, "--"]).args(&many).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("args: 257 arguments; at most 256 may be given"), "{}", stderr_of(&out));
    let big = "y".repeat(64 * 1024);
    let out = sb.cmd().args(["run", dir_s, "--", &big]).output().unwrap();
    assert!(stderr_of(&out).contains("args: 65537 bytes in all; at most 65536 may be given"), "{}", stderr_of(&out));
    sb.assert_no_leaks();
}

// ---- Over HTTP ----

fn http_services(sb: &Sandbox) -> PathBuf {
    let yaml = "service:\n  name: probe\n  entry: index.ts\n  allowEnv: [MODE]\n  env:\n    LEVEL: fixed\n";
    sb.service("io/probe", &[("service.yaml", yaml), ("index.ts", PROBE)]);
    sb.work.path().join("io")
}

#[test]
fn http_args_stdin_and_allowed_env_reach_the_program_and_limits_are_precise() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = http_services(&sb);
    // A body large enough for a stdin past its own cap.
    let srv = Server::start(&sb, &dir, &["--allow-env", "MODE", "--max-body", "4194304"], &[]);
    let r = srv.post_json(
        "/services/probe/execute",
        &json!({"args": ["one", "two words"], "stdin": "from the request\n", "env": {"MODE": "fast"}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert!(v["metrics"].get("warm").is_none(), "the pool is off: {v}");
    let got = program_output(&v);
    assert_eq!(
        got,
        json!({"args": ["one", "two words"], "stdin": "from the request\n", "mode": "fast", "level": "fixed"})
    );

    // Inline code: the server's --allow-env names apply.
    let code = PROBE.to_string();
    let r =
        srv.post_json("/v1/execute", &json!({"runtime": "bun", "code": code, "args": ["-x"], "env": {"MODE": "m"}}));
    assert_eq!(r.status, 200, "{}", r.body);
    let got = program_output(&r.json());
    assert_eq!(got, json!({"args": ["-x"], "stdin": "", "mode": "m", "level": null}));

    // A session's run takes them too (its body is the inline one), and sees its workspace.
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).proxy(None).build().into();
    let mut created = agent.post(format!("{}/v1/sessions", srv.base)).send_empty().expect("create a session");
    assert_eq!(created.status().as_u16(), 201);
    let session: Value = serde_json::from_str(&created.body_mut().read_to_string().unwrap()).unwrap();
    let id = session["id"].as_str().unwrap();
    let body = json!({"runtime": "bun", "code": code, "args": ["s"], "stdin": "in a session", "env": {"MODE": "s"}});
    let r = srv.post_json(&format!("/v1/sessions/{id}/execute"), &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(program_output(&r.json()), json!({"args": ["s"], "stdin": "in a session", "mode": "s", "level": null}));

    // Names the operator did not allow, or never may.
    srv.post_json("/services/probe/execute", &json!({"env": {"OTHER": "1"}})).assert_error_message(
        400,
        "env_not_allowed",
        "env OTHER: not allowed here; allowed: MODE",
    );
    srv.post_json("/services/probe/execute", &json!({"env": {"IGNITE_INPUT": "{}"}})).assert_error_message(
        400,
        "env_not_allowed",
        "env IGNITE_INPUT: ignite's own variables are never set by a request",
    );
    srv.post_json("/services/probe/execute", &json!({"env": {"PATH": "/tmp"}})).assert_error_message(
        400,
        "env_not_allowed",
        "env PATH: the sandbox's PATH and HOME are never set by a request",
    );
    srv.post_json("/v1/execute", &json!({"runtime": "bun", "code": code, "env": {"LEVEL": "x"}})).assert_error_message(
        400,
        "env_not_allowed",
        "env LEVEL: not allowed here; allowed: MODE",
    );
    // Caps: 413 with the cap named.
    let many: Vec<String> = (0..257).map(|i| i.to_string()).collect();
    srv.post_json("/services/probe/execute", &json!({"args": many})).assert_error_message(
        400,
        "args_too_many",
        "args: 257 arguments; at most 256 may be given",
    );
    let big = "b".repeat(64 * 1024);
    srv.post_json("/services/probe/execute", &json!({"args": [big]})).assert_error_message(
        413,
        "args_too_large",
        "args: 65537 bytes in all; at most 65536 may be given",
    );
    let many_env: serde_json::Map<String, Value> = (0..65).map(|i| (format!("V{i}"), json!(""))).collect();
    srv.post_json("/services/probe/execute", &json!({ "env": many_env })).assert_error_message(
        400,
        "env_too_many",
        "env: 65 variables; at most 64 may be given",
    );
    srv.post_json("/services/probe/execute", &json!({"stdin": "s".repeat(1024 * 1024 + 1)})).assert_error_message(
        413,
        "stdin_too_large",
        "stdin: 1048577 bytes; at most 1048576 may be given",
    );
    srv.post_json("/services/probe/execute", &json!({"args": ["a\u{0}b"]})).assert_error_message(
        400,
        "invalid_request",
        "args[0] contains a NUL byte, which a program argument cannot hold",
    );
    // Exactly the stdin cap is given in full.
    let r = srv.post_json("/services/probe/execute", &json!({"stdin": "s".repeat(1024 * 1024)}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(program_output(&r.json())["stdin"], json!({"bytes": 1024 * 1024}));

    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

#[test]
fn a_warm_sandbox_gets_the_requests_args_stdin_and_env_and_keeps_none_for_the_next() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = http_services(&sb);
    let srv = Server::start(&sb, &dir, &["--pool-min", "1", "--pool-max", "1"], &[]);
    srv.wait_parked("probe", 1.0);
    let r = srv.post_json(
        "/services/probe/execute",
        &json!({"args": ["warm", "a b"], "stdin": "warm stdin", "env": {"MODE": "w"}, "input": {"n": 1}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["metrics"]["warm"], true, "{v}");
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(
        program_output(&v),
        json!({"args": ["warm", "a b"], "stdin": "warm stdin", "mode": "w", "level": "fixed"})
    );

    // The next request, in the replacement sandbox of the same kind (the arguments, stdin and
    // variables are not part of a kind's spec), sees none of them.
    srv.wait_parked("probe", 1.0);
    let r = srv.post_json("/services/probe/execute", &json!({}));
    let v = r.json();
    assert_eq!(v["metrics"]["warm"], true, "{v}");
    assert_eq!(program_output(&v), json!({"args": [], "stdin": "", "mode": null, "level": "fixed"}));
    let hits = srv.metric("ignite_pool_requests_total{service=\"probe\",result=\"hit\"}");
    assert_eq!(hits, 2.0, "both requests were served warm");

    // A warm program that never reads a full stdin still ends normally.
    srv.wait_parked("probe", 1.0);
    let noread = "console.log(\"done\")";
    std::fs::write(dir.join("probe/index.ts"), noread).unwrap();
    let r = srv.post_json("/services/probe/execute", &json!({"stdin": "z".repeat(512 * 1024)}));
    let v = r.json();
    assert_eq!(v["metrics"]["warm"], true, "{v}");
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["stdout"], "done\n", "{v}");

    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

// ---- Large input: a read-only file past 64 KiB ----

/// Reads its input from wherever it is, says where, and whether an input file is there.
const INPUT_READER: &str = r#"import { existsSync, readFileSync, writeFileSync } from "node:fs";
const file = process.env.IGNITE_INPUT_FILE ?? null;
const text = file ? readFileSync(file, "utf8") : process.env.IGNITE_INPUT;
let writable = false;
try { writeFileSync("/tmp/ignite/input.json", "x"); writable = true; } catch {}
const v = JSON.parse(text ?? "{}");
console.log(JSON.stringify({
  file, hasVar: "IGNITE_INPUT" in process.env, bytes: text.length, n: v.n ?? null,
  present: existsSync("/tmp/ignite/input.json"), writable,
}));
"#;

fn big_input(n: u32, pad: usize) -> Value {
    json!({"n": n, "pad": "p".repeat(pad)})
}

#[test]
fn a_large_input_is_a_read_only_file_cold_and_the_cap_is_precise() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = sb.ts_service("reader", "", INPUT_READER);
    // 64 KiB and less: the variable, and no file.
    let small = big_input(1, 1000).to_string();
    let (_, v) = sb.run_json(&dir, &["--input", &small]);
    let got = program_output(&v);
    assert_eq!(got["file"], Value::Null, "{v}");
    assert_eq!(got["hasVar"], true, "{v}");
    assert_eq!(got["present"], false, "{v}");
    // Past it: a file, read-only, the variable absent.
    let large = big_input(2, 3 * 1024 * 1024).to_string();
    let path = sb.work.path().join("large.json");
    std::fs::write(&path, &large).unwrap();
    let (_, v) = sb.run_json(&dir, &["--input", &format!("@{}", path.display())]);
    assert_eq!(v["status"], "ok", "{v}");
    let got = program_output(&v);
    assert_eq!(got["file"], "/tmp/ignite/input.json", "{v}");
    assert_eq!(got["hasVar"], false, "{v}");
    assert_eq!(got["bytes"], large.len(), "{v}");
    assert_eq!(got["n"], 2, "{v}");
    assert_eq!(got["writable"], false, "the input file is read-only: {v}");
    // The cap: 8 MiB.
    let huge = sb.work.path().join("huge.json");
    std::fs::write(&huge, big_input(3, 8 * 1024 * 1024).to_string()).unwrap();
    let out = sb.cmd().args(["run"]).arg(&dir).arg("--input").arg(format!("@{}", huge.display())).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("bytes; a --input file may have at most 8388608 bytes"), "{}", stderr_of(&out));
    // The file went with its run.
    sb.assert_no_leaks();
}

#[test]
fn a_warm_sandbox_gets_a_large_input_as_a_file_and_the_next_one_sees_none() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let yaml = "service:\n  name: reader\n  entry: index.ts\n";
    sb.service("big/reader", &[("service.yaml", yaml), ("index.ts", INPUT_READER)]);
    let dir = sb.work.path().join("big");
    let args = ["--pool-min", "1", "--pool-max", "1", "--max-input", "1048576", "--max-body", "2097152"];
    let srv = Server::start(&sb, &dir, &args, &[]);
    srv.wait_parked("reader", 1.0);
    let input = big_input(7, 512 * 1024);
    let r = srv.post_json("/services/reader/execute", &json!({ "input": input }));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["metrics"]["warm"], true, "{v}");
    let got = program_output(&v);
    assert_eq!(got["file"], "/tmp/ignite/input.json", "{v}");
    assert_eq!((got["hasVar"].clone(), got["n"].clone()), (json!(false), json!(7)), "{v}");
    assert_eq!(got["bytes"], input.to_string().len(), "{v}");
    assert_eq!(got["writable"], false, "{v}");

    srv.wait_parked("reader", 1.0);
    let v = srv.post_json("/services/reader/execute", &json!({"input": {"n": 8}})).json();
    assert_eq!(v["metrics"]["warm"], true, "{v}");
    let got = program_output(&v);
    assert_eq!(got["file"], Value::Null, "{v}");
    assert_eq!(got["present"], false, "no input file of the run before: {v}");
    assert_eq!(got["n"], 8, "{v}");
    // Past the server's cap: 413.
    let r = srv.post_json("/services/reader/execute", &json!({ "input": big_input(9, 1024 * 1024) }));
    assert_eq!(r.status, 413, "{}", r.body);

    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}

// ---- Output files ----

/// Writes what `IGNITE_INPUT` asks into its output directory: files, a link, or too much.
const WRITER: &str = r#"import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
const d = process.env.IGNITE_OUT_DIR;
const job = JSON.parse(process.env.IGNITE_INPUT ?? "{}");
if (!d) { console.log("no output directory"); process.exit(0); }
let refused = null;
try {
  if (job.files) {
    writeFileSync(`${d}/result.txt`, "hello out\n");
    mkdirSync(`${d}/sub`);
    writeFileSync(`${d}/sub/data.bin`, new Uint8Array([0, 1, 2, 255]));
    symlinkSync("/etc/passwd", `${d}/link`);
  }
  if (job.many) for (let i = 0; i < job.many; i++) writeFileSync(`${d}/f${i}`, "x");
  if (job.bytes) writeFileSync(`${d}/big`, new Uint8Array(job.bytes));
} catch (e) { refused = e.code; }
console.log(JSON.stringify({ dir: d, refused }));
"#;

#[test]
fn cli_out_writes_the_programs_files_without_links_and_never_overwrites() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let dir = sb.ts_service("writer", "", WRITER);
    let out_dir = sb.work.path().join("outputs");
    let (out, v) = sb.run_json(&dir, &["--input", r#"{"files":true}"#, "--out", out_dir.to_str().unwrap()]);
    assert_eq!(v["status"], "ok", "{v}\n{}", stderr_of(&out));
    assert_eq!(program_output(&v), json!({"dir": "/tmp/out", "refused": null}), "{v}");
    assert_eq!(std::fs::read(out_dir.join("result.txt")).unwrap(), b"hello out\n");
    assert_eq!(std::fs::read(out_dir.join("sub/data.bin")).unwrap(), [0, 1, 2, 255]);
    assert!(std::fs::symlink_metadata(out_dir.join("link")).is_err(), "a link is never written back");
    // The report lists them without content (it is in DIR), and says what was left out.
    assert_eq!(v["files"]["result.txt"]["size"], 10, "{v}");
    assert_eq!(
        v["files"]["result.txt"]["sha256"], "9355cf8aae11c044a00e81b43d40be95fde97df9436a0ee1976e52692734b6dd",
        "{v}"
    );
    assert!(v["files"]["result.txt"].get("content").is_none(), "{v}");
    assert_eq!(v["filesLimit"], "not returned (not regular files, or nested too deep): link", "{v}");
    // Again into the same directory: an existing file is never overwritten.
    let out = sb
        .cmd()
        .arg("run")
        .arg(&dir)
        .args(["-q", "--input", r#"{"files":true}"#, "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("an existing file is never overwritten"), "{}", stderr_of(&out));
    // Without --out the program has no output directory.
    let (_, v) = sb.run_json(&dir, &["--input", r#"{"files":true}"#]);
    assert_eq!(v["stdout"], "no output directory\n", "{v}");
    assert!(v.get("files").is_none(), "{v}");
    sb.assert_no_leaks();
}

#[test]
fn http_outputs_come_back_in_the_report_within_their_caps_and_never_warm() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let yaml = "service:\n  name: writer\n  entry: index.ts\n";
    sb.service("out/writer", &[("service.yaml", yaml), ("index.ts", WRITER)]);
    let dir = sb.work.path().join("out");
    let srv = Server::start(&sb, &dir, &["--pool-min", "1", "--pool-max", "2"], &[]);
    srv.wait_parked("writer", 1.0);
    let r = srv.post_json("/services/writer/execute", &json!({"input": {"files": true}, "outputs": true}));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert!(v["metrics"].get("warm").is_none(), "a run with an output directory is cold: {v}");
    assert_eq!(v["files"]["result.txt"]["content"], "aGVsbG8gb3V0Cg==", "{v}");
    assert_eq!(v["files"]["sub/data.bin"]["content"], "AAEC/w==", "{v}");
    assert_eq!(v["files"]["sub/data.bin"]["size"], 4, "{v}");
    assert!(v["files"].get("link").is_none(), "{v}");

    // The caps: 64 files, 8 MiB; the program is refused (ENOSPC) and the report says why.
    let v = srv.post_json("/services/writer/execute", &json!({"input": {"many": 80}, "outputs": true})).json();
    assert_eq!(program_output(&v)["refused"], "ENOSPC", "{v}");
    assert_eq!(v["files"].as_object().unwrap().len(), 64, "{v}");
    assert!(
        v["filesLimit"].as_str().unwrap().starts_with("/tmp/out was full (8388608 bytes or 64 files at most)"),
        "{v}"
    );
    let v = srv
        .post_json("/services/writer/execute", &json!({"input": {"bytes": 9 * 1024 * 1024}, "outputs": true}))
        .json();
    assert_eq!(program_output(&v)["refused"], "ENOSPC", "{v}");
    assert!(v["filesLimit"].as_str().unwrap().contains("was full"), "{v}");

    // A request without outputs is still served warm, and its program has no directory.
    let v = srv.post_json("/services/writer/execute", &json!({"input": {"files": true}})).json();
    assert_eq!(v["metrics"]["warm"], true, "{v}");
    assert_eq!(v["stdout"], "no output directory\n", "{v}");

    let (status, log) = srv.stop();
    assert!(status.success(), "{log}");
    sb.assert_no_leaks();
}
