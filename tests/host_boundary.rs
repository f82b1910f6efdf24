//! The host side of the trust boundary: what ignite's own process reads from a service
//! directory (which may come from an upload or a model), and what a service can ask of the
//! host's environment. Each test plants what an attacker with such a directory would plant —
//! links to root-only host files, a named pipe, `/dev/zero`, a huge file, a linked
//! node_modules, a hard link to a private file, `${IGNITE_API_KEYS}` — and checks that ignite
//! refuses it at once, clearly, and without echoing anything of the host.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// What the attacker is after: a root-only file outside every service directory.
const SECRET: &str = "host-secret-5b1f0c9e";

fn secret_file(sb: &Sandbox) -> PathBuf {
    let dir = sb.work.path().join("host-only");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join("secret.yaml");
    // Valid YAML that is not a service: the old reader quoted it in its parse error.
    std::fs::write(&path, format!("{SECRET}: [{SECRET}\n")).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// Runs `cmd`, killing it if it has not finished within `limit` (a hang is the defect some
/// tests look for, so no test may wait for ever).
fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn ignite");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("ignite did not finish within {limit:?}; stderr so far:\n{}", stderr_of(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

const LIMIT: Duration = Duration::from_secs(30);

fn assert_refused(out: &Output, needle: &str) {
    let all = format!("{}{}", stdout_of(out), stderr_of(out));
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(all.contains(needle), "expected {needle:?} in:\n{all}");
    assert!(!all.contains(SECRET), "the host file's content was echoed:\n{all}");
}

#[test]
fn a_service_yaml_linked_to_a_host_file_is_refused_by_every_command_without_its_content() {
    let sb = Sandbox::new();
    let secret = secret_file(&sb);
    let dir = sb.service("linked", &[("index.ts", "console.log(1)\n")]);
    symlink(&secret, dir.join("service.yaml")).expect("symlink");
    for args in [&["run"][..], &["exec"], &["lock"], &["lock", "--check"], &["preflight"], &["install"]] {
        let mut cmd = sb.cmd();
        cmd.args(args).arg(&dir);
        let out = output_within(cmd, LIMIT);
        assert_refused(&out, "symbolic link");
    }
    let mut cmd = sb.cmd();
    cmd.arg("env").arg(&dir).arg("--json");
    let out = output_within(cmd, LIMIT);
    let text = stdout_of(&out);
    assert!(text.contains("symbolic link") && !text.contains(SECRET), "{text}");
}

#[test]
fn a_pipe_a_device_or_a_huge_service_yaml_fails_at_once_without_reading_it() {
    let sb = Sandbox::new();
    let fifo = sb.service("fifo", &[("index.ts", "console.log(1)\n")]);
    nix::unistd::mkfifo(&fifo.join("service.yaml"), nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
    let zero = sb.service("zero", &[("index.ts", "console.log(1)\n")]);
    symlink("/dev/zero", zero.join("service.yaml")).expect("symlink");
    let huge = sb.service("huge", &[("index.ts", "console.log(1)\n")]);
    // Sparse: 1 GiB that reads as zeros, which the old reader pulled into memory whole.
    let f = std::fs::File::create(huge.join("service.yaml")).expect("create");
    f.set_len(1 << 30).expect("set_len");

    for (dir, needle) in [(&fifo, "is a named pipe"), (&zero, "symbolic link"), (&huge, "may have at most")] {
        for sub in ["run", "lock", "preflight"] {
            let mut cmd = sb.cmd();
            cmd.arg(sub).arg(dir);
            let out = output_within(cmd, LIMIT);
            assert_refused(&out, needle);
        }
    }
    // The largest child ignite this test (binary) waited for stayed small: nothing was read
    // whole. (Other tests' ignite processes count too; none comes near this.)
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    assert!(usage.max_rss() < 256 * 1024, "a child used {} KiB", usage.max_rss());
}

#[test]
fn an_input_file_in_the_service_directory_is_read_without_following_links() {
    let sb = Sandbox::new();
    let outside = sb.work.path().join("host-input.json");
    std::fs::write(&outside, format!("{{\"stolen\": \"{SECRET}\"}}")).expect("write");
    let dir = sb.ts_service("input-link", "", "console.log(process.env.IGNITE_INPUT)\n");
    symlink(&outside, dir.join("input.json")).expect("symlink");
    nix::unistd::mkfifo(&dir.join("pipe.json"), nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
    for (file, needle) in [("input.json", "symbolic link"), ("pipe.json", "named pipe")] {
        let mut cmd = sb.cmd();
        // From a directory where the name does not exist: only the service directory has it.
        cmd.current_dir(sb.state.path()).arg("run").arg(&dir).arg("--input").arg(format!("@{file}"));
        let out = output_within(cmd, LIMIT);
        assert_refused(&out, needle);
    }
    // The operator's own file (found from the current directory) may be a link.
    let mut cmd = sb.cmd();
    cmd.current_dir(sb.work.path()).arg("run").arg(&dir).arg("--print-spec").arg("--input").arg("@host-input.json");
    let out = output_within(cmd, LIMIT);
    if require_sandbox() {
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    }
}

#[test]
fn a_policy_file_linked_to_a_host_file_is_refused() {
    let sb = Sandbox::new();
    let secret = secret_file(&sb);
    let dir = sb.ts_service("policy-link", "", "console.log(1)\n");
    symlink(&secret, dir.join("ignite.policy.yaml")).expect("symlink");
    for args in [&["run"][..], &["policy", "show"]] {
        let mut cmd = sb.cmd();
        cmd.args(args).arg(&dir);
        let out = output_within(cmd, LIMIT);
        assert_refused(&out, "symbolic link");
    }
}

#[test]
fn a_linked_node_modules_is_no_oracle_for_host_paths() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    // node_modules itself a link to a host directory that has the named "package".
    let host = sb.work.path().join("host-dir");
    std::fs::create_dir_all(host.join("etc-pkg")).expect("mkdir");
    let dir = sb.ts_service("nm-link", "  dependencies: [etc-pkg]\n", "console.log(1)\n");
    symlink(&host, dir.join("node_modules")).expect("symlink");
    let mut cmd = sb.cmd();
    cmd.arg("run").arg(&dir);
    let out = output_within(cmd, LIMIT);
    assert_refused(&out, "symbolic link or lies behind one");
    assert!(!stderr_of(&out).contains("host-dir"), "{}", stderr_of(&out));
    sb.assert_no_leaks();

    // A real node_modules whose package is a link out: refused as well, whether or not the
    // target exists on the host (the answer must not depend on it).
    for target in ["/etc", "/does-not-exist"] {
        let dir = sb.ts_service("pkg-link", "  dependencies: [probe]\n", "console.log(1)\n");
        std::fs::create_dir_all(dir.join("node_modules")).expect("mkdir");
        let _ = std::fs::remove_file(dir.join("node_modules/probe"));
        symlink(target, dir.join("node_modules/probe")).expect("symlink");
        let mut cmd = sb.cmd();
        cmd.arg("run").arg(&dir);
        let out = output_within(cmd, LIMIT);
        assert_refused(&out, "is not a directory (a link or a file)");
        sb.assert_no_leaks();
        assert!(!stderr_of(&out).contains(target), "{target}: {}", stderr_of(&out));
    }
}

#[test]
fn ignite_lock_does_not_fingerprint_a_hard_link_to_a_private_host_file() {
    let sb = Sandbox::new();
    let secret = secret_file(&sb);
    let dir = sb.ts_service("hardlink", "", "console.log(1)\n");
    std::fs::hard_link(&secret, dir.join("copy.txt")).expect("hard link");
    let mut cmd = sb.cmd();
    cmd.arg("lock").arg(&dir).arg("--quiet");
    let out = output_within(cmd, LIMIT);
    assert_refused(&out, "hard links and is not readable by everyone");
    assert!(!dir.join("ignite.lock").exists(), "a lock file was written");
    // The same file readable by everyone leaks nothing: it may be linked.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut cmd = sb.cmd();
    cmd.arg("lock").arg(&dir).arg("--quiet");
    let out = output_within(cmd, LIMIT);
    if require_sandbox() {
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    }
}

#[test]
fn service_env_expands_only_passed_variables_never_ignite_s_own() {
    let sb = Sandbox::new();
    let dir = sb.ts_service("env-grab", "  env:\n    K: \"${IGNITE_API_KEYS}\"\n", "console.log(1)\n");
    let mut cmd = sb.cmd();
    cmd.env("IGNITE_API_KEYS", SECRET).arg("run").arg(&dir).arg("--print-spec");
    let out = output_within(cmd, LIMIT);
    assert_refused(&out, "ignite's own configuration");

    let mut cmd = sb.cmd();
    cmd.env("IGNITE_API_KEYS", SECRET).args(["--pass-env", "IGNITE_API_KEYS"]).arg("run").arg(&dir);
    let out = output_within(cmd, LIMIT);
    assert_refused(&out, "never passed to services");

    // Any other host variable: only when the operator passes it.
    let dir = sb.ts_service("env-home", "  env:\n    K: \"${IGNITE_TEST_PASSED}\"\n", "console.log(1)\n");
    let mut cmd = sb.cmd();
    cmd.env("IGNITE_TEST_PASSED", "x").arg("run").arg(&dir).arg("--print-spec");
    let out = output_within(cmd, LIMIT);
    // IGNITE_* is ignite's own namespace: refused even with a test name.
    assert_refused(&out, "ignite's own configuration");
    let dir = sb.ts_service("env-pass", "  env:\n    K: \"${HOST_VALUE_FOR_TEST}\"\n", "console.log(1)\n");
    let mut cmd = sb.cmd();
    cmd.env("HOST_VALUE_FOR_TEST", "passed-value").arg("run").arg(&dir).arg("--print-spec");
    let out = output_within(cmd, LIMIT);
    assert_refused(&out, "--pass-env HOST_VALUE_FOR_TEST");
    if require_sandbox() {
        let mut cmd = sb.cmd();
        cmd.env("HOST_VALUE_FOR_TEST", "passed-value")
            .args(["--pass-env", "HOST_VALUE_FOR_TEST"])
            .arg("run")
            .arg(&dir)
            .arg("--print-spec");
        let out = output_within(cmd, LIMIT);
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        assert!(stdout_of(&out).contains("K=passed-value"), "{}", stdout_of(&out));
    }
}

/// `ignite serve` on an ephemeral port, its stderr collected.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(sb: &Sandbox, services: &Path, env: &[(&str, &str)], args: &[&str]) -> Server {
        let mut cmd = sb.cmd();
        cmd.arg("serve").arg("--services").arg(services).args(["--port", "0", "--pool-min", "0", "--pool-max", "0"]);
        cmd.args(args).env_remove("IGNITE_API_KEYS").envs(env.iter().copied());
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn ignite serve");
        let stdout = child.stdout.take().expect("stdout");
        // The listening line must come promptly: a service directory must not hold the start.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(LIMIT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ignite serve did not start listening within {LIMIT:?}");
            }
        };
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("listening line {line:?}: {e}"));
        let base = format!("http://{}", v["listening"].as_str().expect("address"));
        Server { child, base }
    }

    fn request(&self, method: &str, path: &str, key: &str) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(LIMIT))
            .build()
            .into();
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {key}");
        let result = match method {
            "GET" => agent.get(&url).header("Authorization", &auth).call(),
            _ => agent.post(&url).header("Authorization", &auth).header("Content-Type", "application/json").send("{}"),
        };
        let mut r = result.expect("HTTP request");
        let body = r.body_mut().read_to_string().unwrap_or_default();
        (r.status().as_u16(), body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::SIGTERM);
        let _ = self.child.wait();
    }
}

const KEY: &str = "tenant-key-0123456789abcdef";

#[test]
fn the_server_starts_and_answers_despite_hostile_service_directories_and_keeps_its_keys() {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let secret = secret_file(&sb);
    let services = sb.work.path().join("services");
    std::fs::create_dir_all(&services).expect("mkdir");
    let svc = |name: &str, yaml: Option<&str>| {
        let dir = services.join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("index.ts"), "console.log(1)\n").expect("write");
        if let Some(y) = yaml {
            std::fs::write(dir.join("service.yaml"), y).expect("write");
        }
        dir
    };
    let fifo = svc("fifo", None);
    nix::unistd::mkfifo(&fifo.join("service.yaml"), nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
    let zero = svc("zero", None);
    symlink("/dev/zero", zero.join("service.yaml")).expect("symlink");
    let linked = svc("linked", None);
    symlink(&secret, linked.join("service.yaml")).expect("symlink");
    svc("grab", Some("service:\n  name: grab\n  env:\n    K: \"${IGNITE_API_KEYS}\"\n"));
    let policy = svc("policy", Some("service:\n  name: policy\n"));
    symlink(&secret, policy.join("ignite.policy.yaml")).expect("symlink");

    let server = Server::start(&sb, &services, &[("IGNITE_API_KEYS", KEY)], &[]);

    // The keys were read and are gone from the server's environment (children inherit it).
    let environ = std::fs::read(format!("/proc/{}/environ", server.child.id())).expect("environ");
    assert!(!String::from_utf8_lossy(&environ).contains(KEY), "the API key is still in the server's environment");

    let (status, body) = server.request("GET", "/services", KEY);
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).expect("JSON");
    let error_of = |name: &str| -> String {
        let entry = list["services"].as_array().expect("services").iter().find(|s| s["name"] == name).cloned();
        let entry = entry.unwrap_or_else(|| panic!("{name} not listed: {body}"));
        assert_eq!(entry["valid"], false, "{entry}");
        entry["error"].as_str().unwrap_or_default().to_string()
    };
    assert!(error_of("fifo").contains("named pipe"));
    assert!(error_of("zero").contains("symbolic link"));
    assert!(error_of("linked").contains("symbolic link"));
    assert!(error_of("grab").contains("ignite's own configuration"));
    for leak in [SECRET, KEY] {
        assert!(!body.contains(leak), "{leak} in {body}");
    }
    // Executions: refused with the reason, never the content, the key, or the host's layout.
    let host_dir = services.to_string_lossy().to_string();
    for name in ["linked", "grab", "policy"] {
        let (status, body) = server.request("POST", &format!("/services/{name}/execute"), KEY);
        assert_eq!(status, 422, "{name}: {body}");
        for leak in [SECRET, KEY, host_dir.as_str()] {
            assert!(!body.contains(leak), "{name}: {leak} in {body}");
        }
    }
}

#[test]
fn the_server_refuses_to_pass_its_own_configuration() {
    let sb = Sandbox::new();
    let services = sb.work.path().join("services");
    std::fs::create_dir_all(&services).expect("mkdir");
    let mut cmd = sb.cmd();
    cmd.arg("--pass-env").arg("IGNITE_API_KEYS").arg("serve").arg("--services").arg(&services).args(["--port", "0"]);
    let out = output_within(cmd, LIMIT);
    assert_refused(&out, "never passed to services");
}
