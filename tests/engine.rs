//! The engine façade as a program that embeds ignite uses it (`ignite::engine::Engine`): one
//! `run` per request with the gates in order, and the spec built exactly once per run — the
//! guarantees the CLI and the HTTP API rely on.

mod common;

use std::path::{Path, PathBuf};

use common::{Sandbox, ignite_bin, require_sandbox, shared_cache, stderr_of, test_oci_runtime};
use ignite::data::service::{Overrides, PassEnv};
use ignite::engine::{
    Engine, HostChoice, InlineProgram, InlineSource, Input, LockCheck, PolicyChoice, PreflightGate, Program, Request,
    RunError, Settings,
};

fn engine(sb: &Sandbox) -> Engine {
    let settings = Settings::detect(&HostChoice {
        state_dir: sb.state.path().to_path_buf(),
        cache_dir: shared_cache(),
        oci_runtime: test_oci_runtime(),
        ignite_binary: Some(ignite_bin()),
        ..HostChoice::default()
    })
    .expect("settings");
    Engine::new(settings).expect("engine")
}

fn dir(path: &Path) -> Program {
    Program::Dir { dir: path.to_path_buf(), required: true, overrides: Overrides::default(), pass_env: PassEnv::none() }
}

fn run(engine: &Engine, req: Request) -> Result<ignite::engine::Outcome, RunError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    rt.block_on(engine.run(req, Default::default()))
}

const ECHO: &str = "console.log(JSON.stringify(JSON.parse(process.env.IGNITE_INPUT)));";

fn echo_service(sb: &Sandbox, name: &str, yaml_extra: &str) -> PathBuf {
    sb.ts_service(name, yaml_extra, ECHO)
}

#[test]
fn a_run_builds_its_spec_once_also_with_a_network_and_a_writable_root() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let engine = engine(&sb);
    let plain = echo_service(&sb, "plain", "");
    let granted = echo_service(&sb, "granted", "");
    // Both grants change the spec once the run has set them up: the namespace and the layer
    // exist only then, so this is where a second build would happen.
    std::fs::write(
        granted.join("ignite.policy.yaml"),
        "security:\n  network:\n    enabled: true\n  filesystem:\n    readOnly: false\n",
    )
    .unwrap();
    for (svc, what) in [(&plain, "plain"), (&granted, "network + writable root")] {
        let before = engine.specs_built();
        let mut req = Request::new(dir(svc));
        req.input = Input::Json(r#"{"n":7}"#.into());
        let outcome = run(&engine, req).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(outcome.report.success, "{what}: {:?}", outcome.report);
        assert_eq!(outcome.report.stdout.trim(), r#"{"n":7}"#, "{what}");
        assert_eq!(engine.specs_built() - before, 1, "{what}: specs built for one run");
    }
    sb.assert_no_leaks();
}

#[test]
fn print_spec_builds_one_spec_and_starts_nothing() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let engine = engine(&sb);
    let svc = echo_service(&sb, "spec", "");
    let spec = engine.spec(Request::new(dir(&svc))).expect("spec");
    assert_eq!(engine.specs_built(), 1);
    assert!(spec.process().as_ref().is_some_and(|p| p.no_new_privileges() == Some(true)));
    sb.assert_no_leaks();
}

#[test]
fn a_failing_preflight_refuses_before_any_spec_and_keeps_the_refusal() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let engine = engine(&sb);
    let svc = echo_service(&sb, "tight", "  memoryMb: 16\n");
    let err = run(&engine, Request::new(dir(&svc))).expect_err("preflight must refuse");
    let checks = err.preflight().unwrap_or_else(|| panic!("not a preflight refusal: {err}"));
    assert!(checks.failed().any(|c| c.name() == "memory"), "{checks:?}");
    assert_eq!(engine.specs_built(), 0, "nothing was prepared");
    // `ignite report` shows the refusal as the service's last report.
    let out = sb.cmd().arg("report").arg(&svc).arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["execution"].is_null() && v["preflight"]["status"] == "fail", "{v}");

    // Skipped, the same service runs.
    let mut req = Request::new(dir(&svc));
    req.preflight = PreflightGate::Skip;
    req.policy = PolicyChoice::Builtin;
    assert!(run(&engine, req).is_ok());
}

#[test]
fn the_lock_check_applies_when_asked_and_if_present_only_with_a_lock_file() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let engine = engine(&sb);
    let svc = echo_service(&sb, "locked", "");
    let request = |lock| {
        let mut req = Request::new(dir(&svc));
        req.lock = lock;
        req
    };
    // No lock file: `IfPresent` runs, `Required` refuses.
    assert!(run(&engine, request(LockCheck::IfPresent)).is_ok());
    assert!(matches!(run(&engine, request(LockCheck::Required)), Err(RunError::Lock(_))));
    let out = sb.cmd().arg("lock").arg(&svc).arg("--quiet").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(run(&engine, request(LockCheck::Required)).is_ok());
    // Drift: the entry changed since the lock was written.
    std::fs::write(svc.join("index.ts"), format!("{ECHO}\n// changed")).unwrap();
    let before = engine.specs_built();
    for check in [LockCheck::IfPresent, LockCheck::Required] {
        match run(&engine, request(check)) {
            Err(RunError::Lock(e)) => assert!(e.to_string().contains("index.ts"), "{e}"),
            other => panic!("{check:?}: drift not refused: {:?}", other.map(|o| o.report)),
        }
    }
    assert_eq!(engine.specs_built(), before, "a refused run prepares nothing");
    assert!(run(&engine, request(LockCheck::Off)).is_ok());
    sb.assert_no_leaks();
}

#[test]
fn inline_code_runs_from_a_directory_of_its_own_with_the_builtin_policy_only() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let engine = engine(&sb);
    let files = [
        ("index.ts", "import { n } from \"./lib/n.ts\";\nprocess.stdout.write(\"x\".repeat(n));\n"),
        ("lib/n.ts", "export const n = 4096;\n"),
        // Would stop the run at 1 KiB if the request's own files could choose its policy.
        ("ignite.policy.yaml", "security:\n  output:\n    maxBytes: 1024\n"),
    ];
    let program = InlineProgram {
        runtime: "bun".into(),
        source: InlineSource::Files(files.iter().map(|(p, c)| (p.to_string(), c.to_string())).collect()),
        entry: None,
        memory_mb: None,
        timeout_ms: None,
        cpu: None,
    };
    let mut req = Request::new(Program::Inline(Box::new(program)));
    // Asked for, not given: inline code gets the built-in policy whatever the request says.
    req.policy = PolicyChoice::Service { file: None };
    let before = engine.specs_built();
    let outcome = run(&engine, req).expect("inline run");
    assert!(outcome.report.success, "{:?}", outcome.report);
    assert_eq!((outcome.report.service.as_str(), outcome.report.stdout.len()), ("inline", 4096));
    assert_eq!(engine.specs_built() - before, 1, "specs built for one run");
    let left: Vec<_> = std::fs::read_dir(sb.state.path().join("inline")).expect("inline dir").flatten().collect();
    assert!(left.is_empty(), "the run's directory goes with the run: {left:?}");

    // A program that cannot run as sent is refused before anything is written or started.
    let bad = InlineProgram {
        runtime: "bun".into(),
        source: InlineSource::Files(vec![("../escape.ts".into(), String::new())]),
        entry: None,
        memory_mb: None,
        timeout_ms: None,
        cpu: None,
    };
    let err = run(&engine, Request::new(Program::Inline(Box::new(bad)))).expect_err("refused");
    assert!(matches!(err, RunError::Inline(_)), "{err}");
    assert_eq!(engine.specs_built() - before, 1);
    sb.assert_no_leaks();
}

#[test]
fn the_last_report_is_kept_only_when_the_request_asks() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let engine = engine(&sb);
    let svc = echo_service(&sb, "kept", "");
    let report = || sb.cmd().arg("report").arg(&svc).arg("--json").output().unwrap();
    let mut req = Request::new(dir(&svc));
    req.keep_report = false;
    assert!(run(&engine, req).expect("run").report.success);
    assert_eq!(report().status.code(), Some(125), "a report was kept: {}", stderr_of(&report()));
    let outcome = run(&engine, Request::new(dir(&svc))).expect("run");
    let out = report();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["execution"]["containerId"], outcome.report.container_id.as_str(), "{v}");
    sb.assert_no_leaks();
}
