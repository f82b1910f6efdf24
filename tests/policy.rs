//! Security policy files: lookup, layering, `ignite policy show`, precise errors, and the
//! enforcement of every field through real runs.

mod common;

use common::*;

fn show(sb: &Sandbox, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    sb.cmd().args(["policy", "show"]).arg(dir).args(args).output().expect("spawn ignite")
}

#[test]
fn show_names_the_source_of_every_value() {
    let sb = Sandbox::new();
    let dir = sb.ts_service("pol-show", "", "console.log(1)");
    std::fs::write(dir.join("ignite.policy.yaml"), "security:\n  filesystem:\n    tmpMb: 8\n").unwrap();

    let out = show(&sb, &dir, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    let line =
        |key: &str| text.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("{key} in {text}")).to_string();
    assert!(
        line("security.filesystem.tmpMb").contains(" 8 ")
            && line("security.filesystem.tmpMb").contains("ignite.policy.yaml"),
        "{text}"
    );
    assert!(
        line("security.process.allowSpawn").contains("false")
            && line("security.process.allowSpawn").contains("built-in default"),
        "{text}"
    );

    let out = show(&sb, &dir, &["--audit", "--json"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(v["audit"], true);
    let field = |name: &str| v["fields"].as_array().unwrap().iter().find(|f| f["field"] == name).cloned().unwrap();
    assert_eq!(field("security.process.allowSpawn")["value"], false);
    assert_eq!(field("security.process.allowSpawn")["source"]["kind"], "audit");
    assert_eq!(field("security.filesystem.tmpMb")["value"], 8);
    assert_eq!(field("security.filesystem.tmpMb")["source"]["kind"], "file");
    assert_eq!(v["fields"].as_array().unwrap().len(), 8);
}

#[test]
fn malformed_policy_stops_the_run_with_a_precise_error() {
    let sb = Sandbox::new();
    let dir = sb.ts_service("pol-bad", "", "console.log(1)");
    std::fs::write(dir.join(".ignite-policy.yml"), "security:\n  process:\n    alowSpawn: false\n").unwrap();
    let out = sb.cmd().arg("run").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains(".ignite-policy.yml") && err.contains("unknown field `alowSpawn`"), "{err}");

    let out = sb.cmd().arg("run").arg(&dir).args(["--policy", "/nonexistent/p.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr_of(&out).contains("/nonexistent/p.yaml"), "{}", stderr_of(&out));

    std::fs::write(dir.join("ignite.policy.yaml"), "security: {}\n").unwrap();
    let out = show(&sb, &dir, &[]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr_of(&out).contains("more than one policy file"), "{}", stderr_of(&out));
}

#[test]
fn limits_from_the_policy_reach_the_spec() {
    let sb = Sandbox::new();
    let dir = sb.ts_service("pol-spec", "", "console.log(1)");
    std::fs::write(
        dir.join("ignite.policy.yaml"),
        "security:\n  filesystem:\n    tmpMb: 3\n  process:\n    maxProcesses: 40\n",
    )
    .unwrap();
    let out = sb.cmd().arg("run").arg(&dir).arg("--print-spec").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(spec["linux"]["resources"]["pids"]["limit"], 40);
    let tmp = spec["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == "/tmp").expect("/tmp mount");
    assert!(tmp["options"].as_array().unwrap().iter().any(|o| o == "size=3072k"), "{tmp}");
}

#[test]
fn tmp_size_and_output_cap_are_enforced_in_a_run() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let code = r#"
import { writeFileSync } from "node:fs";
let wrote = 0;
try { for (let i = 0; i < 64; i++) { writeFileSync(`/tmp/f${i}`, Buffer.alloc(256 * 1024, 1)); wrote++; } }
catch (e) { console.log(JSON.stringify({ code: e.code, mib: wrote / 4 })); process.exit(0); }
console.log(JSON.stringify({ code: "none", mib: wrote / 4 }));
"#;
    let dir = sb.ts_service("pol-tmp", "", code);
    std::fs::write(dir.join("ignite.policy.yaml"), "security:\n  filesystem:\n    tmpMb: 2\n").unwrap();
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(r["status"], "ok", "{}", stderr_of(&out));
    let v: serde_json::Value = serde_json::from_str(r["stdout"].as_str().unwrap().trim()).unwrap();
    assert_eq!(v["code"], "ENOSPC", "{v}");
    assert!(v["mib"].as_f64().unwrap() <= 2.0, "{v}");

    let flood = sb.ts_service("pol-out", "", "process.stdout.write('x'.repeat(8192)); console.log('done');");
    std::fs::write(flood.join("ignite.policy.yaml"), "security:\n  output:\n    maxBytes: 4096\n").unwrap();
    let (_, r) = sb.run_json(&flood, &[]);
    assert_eq!(r["status"], "output_limit", "{r}");
    // A flag given for this run wins over the file.
    let (_, r) = sb.run_json(&flood, &["--output-limit", "65536"]);
    assert_eq!(r["status"], "ok", "{r}");
    sb.assert_no_leaks();
}
