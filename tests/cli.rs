//! The binary's behaviour on bad input: precise errors and exit code 125, no sandbox
//! needed (these run anywhere).

mod common;

use common::*;

fn ignite() -> std::process::Command {
    let mut c = std::process::Command::new(ignite_bin());
    c.env("IGNITE_STATE_DIR", std::env::temp_dir().join("ignite-cli-test-state"));
    c
}

fn service(yaml: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("service.yaml"), yaml).unwrap();
    std::fs::write(d.path().join("index.ts"), "console.log(1)").unwrap();
    d
}

fn fails_with(args: &[&str], dir: &std::path::Path, needles: &[&str]) {
    let out = ignite().arg("run").arg(dir).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in: {err}");
    }
}

#[test]
fn bad_service_yaml_is_a_precise_error() {
    let d = service("service:\n  name: ok\n  memoryMb: \"lots\"\n");
    fails_with(&[], d.path(), &["service.yaml", "service.memoryMb", "line 3"]);
    let d = service("service:\n  name: ok\n  color: red\n");
    fails_with(&[], d.path(), &["unknown field `color`"]);
    let d = service("service:\n  name: Not_A_Label\n");
    fails_with(&[], d.path(), &["service.name", "DNS label"]);
    let d = service("service:\n  name: ok\n  entry: ../../etc/passwd\n");
    fails_with(&[], d.path(), &["service.entry", "inside the service directory"]);
    let d = service("service:\n  name: ok\n  runtime: bun@9\n");
    fails_with(&[], d.path(), &["bun@9", "1.4.5"]);
    let d = service("service:\n  name: ok\n  runtime: cobol\n");
    fails_with(&[], d.path(), &["cobol", "bun"]);
    let d = service("service: [\n");
    fails_with(&[], d.path(), &["service.yaml"]);
}

#[test]
fn bad_flags_are_precise_errors() {
    let d = service("service:\n  name: ok\n  entry: index.ts\n");
    fails_with(&["--input", "{not json"], d.path(), &["--input is not valid JSON"]);
    fails_with(&["--input", "@/nonexistent/in.json"], d.path(), &["--input @/nonexistent/in.json", "no such file"]);
    fails_with(&["--env", "NOEQUALS"], d.path(), &["KEY=VALUE"]);
    fails_with(&["--memory", "1"], d.path(), &["service.memoryMb", "between 16"]);
    fails_with(&["--json", "--input", "[1"], d.path(), &["not valid JSON"]);
}

#[test]
fn json_mode_errors_are_json_on_stdout() {
    let d = service("service:\n  name: ok\n  bogus: 1\n");
    let out = ignite().arg("run").arg(d.path()).arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert!(v["error"]["message"].as_str().unwrap().contains("unknown field `bogus`"));
}

#[test]
fn help_documents_exit_codes() {
    let out = ignite().args(["run", "--help"]).output().unwrap();
    let help = stdout_of(&out);
    for n in ["124", "137", "125", "--input", "--json", "--print-spec"] {
        assert!(help.contains(n), "{n} missing from help:\n{help}");
    }
}

#[test]
fn missing_oci_runtime_is_explained() {
    let d = service("service:\n  name: ok\n  entry: index.ts\n");
    let out = ignite().arg("run").arg(d.path()).args(["--oci-runtime", "/nonexistent/runc"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr_of(&out).contains("/nonexistent/runc"), "{}", stderr_of(&out));
}

#[test]
fn bad_package_json_is_a_precise_error() {
    // Checked before anything is downloaded or started (--print-spec runs no sandbox).
    let d = service("service:\n  name: ok\n  entry: index.ts\n");
    std::fs::write(d.path().join("package.json"), "{\n  \"dependencies\": {\"lodash\": 4}\n}").unwrap();
    fails_with(&["--print-spec"], d.path(), &["package.json", "`dependencies.lodash`"]);
    std::fs::write(d.path().join("package.json"), "{\n  \"dependencies\": {,}\n}").unwrap();
    fails_with(&["--print-spec"], d.path(), &["package.json", "not valid JSON", "line 2"]);
    std::fs::write(d.path().join("package.json"), r#"{"dependencies":{"mine":"file:../mine"}}"#).unwrap();
    fails_with(&["--print-spec"], d.path(), &["`dependencies.mine`", "local path"]);
    std::fs::remove_file(d.path().join("package.json")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.path().join("package.json")).unwrap();
    fails_with(&["--print-spec"], d.path(), &["package.json", "symbolic link"]);
}

#[test]
fn install_field_is_validated() {
    let d = service("service:\n  name: ok\n  install:\n    scripts: maybe\n");
    fails_with(&[], d.path(), &["service.install.scripts", "line 4"]);
    let d = service("service:\n  name: ok\n  install: {script: true}\n");
    fails_with(&[], d.path(), &["unknown field `script`"]);
    // Scripts asked for, but the service brings its own node_modules: nothing would run them.
    let d = service("service:\n  name: ok\n  install: {scripts: true}\n");
    std::fs::write(d.path().join("package.json"), r#"{"dependencies":{"lodash":"4.17.21"}}"#).unwrap();
    std::fs::create_dir(d.path().join("node_modules")).unwrap();
    fails_with(&["--print-spec"], d.path(), &["service.install.scripts", "node_modules"]);
}

#[test]
fn unknown_runtime_version_is_said_once_with_what_is_available() {
    let d = service("service:\n  name: ok\n  runtime: node@18\n");
    let out = ignite().arg("run").arg(d.path()).arg("--print-spec").output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = stderr_of(&out);
    assert_eq!(err.matches("no version matching \"18\"").count(), 1, "{err}");
    assert!(err.contains("service ok: runtime \"node@18\"") && err.contains("available: 24."), "{err}");
}

#[test]
fn a_cause_already_in_the_message_is_not_repeated() {
    let out = ignite().args(["run", "/nonexistent-ignite-service"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = stderr_of(&out);
    assert!(err.contains("/nonexistent-ignite-service"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn a_named_ca_file_that_is_missing_or_holds_no_certificate_is_an_error() {
    let d = service("service:\n  name: ok\n");
    let out = ignite()
        .args(["run", "--print-spec", "--install-ca-file", "/nonexistent/ca.pem"])
        .arg(d.path())
        .env_remove("NODE_EXTRA_CA_CERTS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("/nonexistent/ca.pem") && err.contains("cannot be read"), "{err}");

    let pem = d.path().join("key-only.pem");
    std::fs::write(&pem, "-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n").unwrap();
    let out = ignite().args(["run", "--print-spec"]).arg(d.path()).env("NODE_EXTRA_CA_CERTS", &pem).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("key-only.pem") && err.contains("no PEM certificate"), "{err}");
    assert!(!err.contains("SECRET"), "{err}");
}

/// The subcommands `ignite --help` lists (besides `help`).
fn subcommands(args: &[&str]) -> Vec<String> {
    let out = ignite().args(args).arg("--help").output().unwrap();
    let help = stdout_of(&out);
    help.split("Commands:\n")
        .nth(1)
        .map(|rest| {
            rest.lines()
                .take_while(|l| !l.trim().is_empty())
                .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
                .filter_map(|l| l.split_whitespace().next().map(String::from))
                .filter(|c| c != "help")
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn completions_generate_for_each_shell_and_know_every_subcommand() {
    let commands = subcommands(&[]);
    for expected in ["run", "exec", "init", "lock", "env", "completions", "runtime"] {
        assert!(commands.iter().any(|c| c == expected), "{expected} not in {commands:?}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = ignite().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr_of(&out));
        let script = stdout_of(&out);
        for command in &commands {
            assert!(script.contains(command.as_str()), "{shell} completion does not mention {command}");
        }
        assert!(!script.contains("__strip-types"), "{shell} completion offers an internal command");
        // Options of subcommands are completed too.
        assert!(script.contains("locked") && script.contains("check"), "{shell}: no subcommand options");
        let version_flag = if shell == "fish" { "-l version" } else { "--version" };
        assert!(script.contains(version_flag) && script.contains("state-dir"), "{shell}: no top-level options");
    }
    assert!(stdout_of(&ignite().args(["completions", "bash"]).output().unwrap()).contains("complete -F"));
    assert!(stdout_of(&ignite().args(["completions", "zsh"]).output().unwrap()).starts_with("#compdef ignite"));
    assert!(stdout_of(&ignite().args(["completions", "fish"]).output().unwrap()).contains("complete -c ignite"));
    let out = ignite().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
    assert!(stderr_of(&out).contains("bash"), "{}", stderr_of(&out));
}

#[test]
fn man_page_renders_and_lists_the_subcommands() {
    let out = ignite().arg("man").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let page = stdout_of(&out);
    assert!(page.starts_with(".ie") || page.contains(".TH ignite"), "{page}");
    for command in subcommands(&[]) {
        assert!(page.contains(&command), "man page does not mention {command}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = ignite().arg("man").arg("--out").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    for page in ["ignite.1", "ignite-run.1", "ignite-lock.1", "ignite-runtime-pull.1"] {
        assert!(dir.path().join(page).is_file(), "{page} not written");
    }
}

#[test]
fn every_command_help_has_examples() {
    let mut commands: Vec<Vec<String>> = subcommands(&[]).into_iter().map(|c| vec![c]).collect();
    let mut i = 0;
    while i < commands.len() {
        let path: Vec<&str> = commands[i].iter().map(String::as_str).collect();
        for sub in subcommands(&path) {
            let mut nested = commands[i].clone();
            nested.push(sub);
            commands.push(nested);
        }
        i += 1;
    }
    assert!(commands.len() > 8, "{commands:?}");
    for command in commands {
        let out = ignite().args(&command).arg("--help").output().unwrap();
        let help = stdout_of(&out);
        assert!(
            help.contains("EXAMPLES:\n  ignite "),
            "`ignite {} --help` has no examples:\n{help}",
            command.join(" ")
        );
    }
}

#[test]
fn env_says_where_each_setting_came_from_and_reports_problems_as_values() {
    let env_json = |cmd: &mut std::process::Command| -> serde_json::Value {
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        serde_json::from_slice(&out.stdout).expect("one JSON document")
    };
    let v = env_json(ignite().args(["env", "--json"]).env_remove("IGNITE_CACHE_DIR").env_remove("IGNITE_OCI_RUNTIME"));
    assert_eq!(v["cacheDir"]["from"], "default", "{v}");
    assert_eq!(v["cacheDir"]["path"], "/var/lib/ignite");
    assert_eq!(v["stateDir"]["from"], "env", "the test sets IGNITE_STATE_DIR: {v}");
    assert_eq!(v["ociRuntime"]["name"], "runc");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let names: Vec<&str> = v["runtimes"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["bun", "deno", "node", "quickjs"], "{v}");

    let cache = tempfile::tempdir().unwrap();
    let v = env_json(
        ignite().args(["env", "--json", "--oci-runtime", "/nonexistent/runc"]).env("IGNITE_CACHE_DIR", cache.path()),
    );
    assert_eq!(v["cacheDir"]["from"], "env");
    assert_eq!(v["cacheDir"]["path"], cache.path().to_str().unwrap());
    assert_eq!(v["cacheDir"]["exists"], true);
    assert!(v["cacheDir"]["freeBytes"].as_u64().is_some(), "{v}");
    assert_eq!(v["ociRuntime"]["from"], "flag");
    assert!(v["ociRuntime"]["problem"].as_str().unwrap().contains("/nonexistent/runc"), "{v}");
    assert!(
        v["runtimes"].as_array().unwrap().iter().all(|r| r["present"] == false),
        "an empty cache holds no bundle: {v}"
    );

    let out = ignite().args(["env", "--cache-dir", "/nonexistent/cache"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = stdout_of(&out);
    assert!(text.contains("/nonexistent/cache (from --cache-dir, does not exist yet)"), "{text}");
    assert!(text.contains("(not pulled)"), "{text}");
}
