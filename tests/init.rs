//! `ignite init NAME --runtime R`: each runtime's template runs on that runtime as created
//! (TypeScript everywhere; node and quickjs get it type-stripped), version specs are kept in
//! service.yaml, and an existing path is never overwritten.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use serde_json::Value;

fn init(sb: &Sandbox, args: &[&str]) -> Output {
    sb.cmd().current_dir(sb.work.path()).arg("init").args(args).output().expect("spawn ignite")
}

/// Creates `name` from the template of `runtime` and runs it with an input; returns the
/// program's JSON output.
fn created_and_run(sb: &Sandbox, name: &str, runtime: &str) -> (Value, Value) {
    let out = init(sb, &[name, "--runtime", runtime]);
    assert_eq!(out.status.code(), Some(0), "init {runtime}: {}", stderr_of(&out));
    assert!(stderr_of(&out).contains(&format!("ignite run {name}")), "{}", stderr_of(&out));
    let dir = sb.work.path().join(name);
    let (out, report) = sb.run_json(&dir, &["--input", r#"{"data":[1,2,3,4],"operation":"average"}"#]);
    assert_eq!(out.status.code(), Some(0), "{runtime}: {report}");
    assert_eq!(report["status"], "ok", "{runtime}: {report}");
    let output: Value = serde_json::from_str(report["stdout"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("{runtime}: the template prints JSON ({e}): {report}"));
    (report, output)
}

fn runs_on(runtime: &str) {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let name = format!("starter-{runtime}");
    let (report, output) = created_and_run(&sb, &name, runtime);
    assert_eq!(output["result"], 2.5, "{output}");
    assert_eq!(output["operation"], "average");
    assert_eq!(output["count"], 4);
    assert!(output["runtime"].as_str().unwrap().starts_with(runtime), "ran on {runtime}: {output}");
    assert!(report["runtime"].as_str().unwrap().starts_with(&format!("{runtime}@")), "{report}");
    let yaml = std::fs::read_to_string(sb.work.path().join(&name).join("service.yaml")).unwrap();
    assert!(yaml.contains(&format!("name: {name}\n")) && yaml.contains(&format!("runtime: {runtime}\n")), "{yaml}");
    sb.assert_no_leaks();
}

#[test]
fn bun_template_runs_on_bun() {
    runs_on("bun");
}

#[test]
fn node_template_runs_on_node() {
    runs_on("node");
}

#[test]
fn deno_template_runs_on_deno() {
    runs_on("deno");
}

#[test]
fn quickjs_template_runs_on_quickjs() {
    runs_on("quickjs");
}

#[test]
fn a_version_spec_is_kept_in_service_yaml() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let (report, output) = created_and_run(&sb, "on-node-22", "node@22");
    assert!(report["runtime"].as_str().unwrap().starts_with("node@22."), "{report}");
    assert!(output["runtime"].as_str().unwrap().starts_with("node 22."), "{output}");
    let yaml = std::fs::read_to_string(sb.work.path().join("on-node-22/service.yaml")).unwrap();
    assert!(yaml.contains("runtime: node@22\n"), "{yaml}");
    sb.assert_no_leaks();
}

#[test]
fn init_never_overwrites_and_explains_what_is_wrong() {
    let sb = Sandbox::new();
    let fails = |args: &[&str], needles: &[&str]| {
        let out = init(&sb, args);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {}", stderr_of(&out));
        for n in needles {
            assert!(stderr_of(&out).contains(n), "{n:?} missing from: {}", stderr_of(&out));
        }
    };
    let taken = sb.service("taken", &[("index.ts", "mine")]);
    fails(&["taken", "--runtime", "node"], &["taken", "already exists"]);
    assert_eq!(std::fs::read_to_string(taken.join("index.ts")).unwrap(), "mine");
    assert!(!taken.join("service.yaml").exists());
    std::fs::write(sb.work.path().join("a-file"), "x").unwrap();
    fails(&["a-file"], &["already exists"]);
    fails(&["Not_A_Label"], &["Not_A_Label", "DNS label"]);
    fails(&["x", "--runtime", "cobol"], &["cobol", "bun"]);
    fails(&["y", "--runtime", "deno@1"], &["no version matching", "2."]);
    for name in ["x", "y"] {
        assert!(!Path::new(&sb.work.path().join(name)).exists(), "{name} was created");
    }
}
