//! End-to-end: the real `ignite` binary, real runc, the real Bun bundle. Every test ends
//! by checking that nothing (container, cgroup, mount, state) was left behind.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

macro_rules! sandbox_test {
    () => {{
        if !require_sandbox() {
            return;
        }
        Sandbox::new()
    }};
}

#[test]
fn runs_the_example_with_input_and_reports_metrics() {
    let sb = sandbox_test!();
    let dir = repo().join("examples/data-processor");
    let (out, r) = sb.run_json(&dir, &["--input", r#"{"data":[1,2,3],"operation":"sum"}"#]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(r["status"], "ok");
    assert_eq!(r["success"], true);
    assert_eq!(r["exitCode"], 0);
    let line: serde_json::Value = serde_json::from_str(r["stdout"].as_str().unwrap().trim()).unwrap();
    assert_eq!(line["result"], 6);
    assert_eq!(line["count"], 3);
    let m = &r["metrics"];
    assert!(m["memoryPeakMb"].as_f64().unwrap() > 1.0, "{m}");
    assert!(m["cpuTimeMs"].as_f64().unwrap() > 0.0, "{m}");
    assert!(m["executionTimeMs"].as_f64().unwrap() > 0.0, "{m}");
    assert!(m["initTimeMs"].as_f64().unwrap() > 0.0, "{m}");
    assert!(m["pidsPeak"].as_u64().unwrap() >= 1, "{m}");
    assert_eq!(m["memoryLimitMb"], 64);
    assert!(r["runtime"].as_str().unwrap().starts_with("bun@"));
    sb.assert_cgroup_gone(r["containerId"].as_str().unwrap());
    sb.assert_no_leaks();
}

#[test]
fn human_mode_streams_output_and_prints_summary() {
    let sb = sandbox_test!();
    let dir = repo().join("examples/data-processor");
    let out = sb.cmd().args(["exec", "--runtime", "bun"]).arg(&dir).args(["--input", "@input.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let stdout = stdout_of(&out);
    assert!(stdout.contains(r#""result":25"#), "{stdout}");
    assert!(stdout.contains(r#""operation":"average""#), "{stdout}");
    let stderr = stderr_of(&out);
    assert!(stderr.contains("data-processor ok"), "{stderr}");
    assert!(stderr.contains("exit 0") && stderr.contains("peak mem"), "{stderr}");
    sb.assert_no_leaks();
}

#[test]
fn sandbox_identity_and_hardening_seen_from_inside() {
    let sb = sandbox_test!();
    let code = r#"
import { readFileSync, readdirSync } from "node:fs";
const status = readFileSync("/proc/self/status", "utf8");
const field = (k: string) => status.split("\n").find((l) => l.startsWith(k + ":"))!.split(/\s+/)[1];
console.log(JSON.stringify({
  uid: process.getuid(), gid: process.getgid(),
  capEff: field("CapEff"), capBnd: field("CapBnd"), capPrm: field("CapPrm"),
  nnp: field("NoNewPrivs"), seccomp: field("Seccomp"),
  pid: process.pid, hostname: readFileSync("/proc/sys/kernel/hostname", "utf8").trim(),
  ifaces: readdirSync("/sys/class/net"),
  masked: JSON.parse(process.env.IGNITE_INPUT).masked.map((p: string) => {
    try { return readdirSync(p).length; } catch { return readFileSync(p).length; }
  }),
}));
"#;
    let dir = sb.ts_service("ident", "", code);
    // Docker's masked paths that exist on this kernel must read as empty inside.
    let masked: Vec<&str> =
        ignite::sandbox::spec::MASKED_PATHS.iter().copied().filter(|p| std::path::Path::new(p).exists()).collect();
    assert!(!masked.is_empty());
    let input = serde_json::json!({ "masked": masked }).to_string();
    let (out, r) = sb.run_json(&dir, &["--input", &input]);
    assert_eq!(out.status.code(), Some(0), "{}", r);
    let v: serde_json::Value = serde_json::from_str(r["stdout"].as_str().unwrap().trim()).unwrap();
    // A uid (and gid) of the run's own, from the range no host user has.
    let uid = v["uid"].as_u64().expect("uid") as u32;
    assert!(ignite::sandbox::identity::is_run_uid(uid), "{v}");
    assert_eq!(v["gid"], v["uid"], "{v}");
    assert_eq!(v["capEff"], "0000000000000000");
    assert_eq!(v["capBnd"], "0000000000000000");
    assert_eq!(v["capPrm"], "0000000000000000");
    assert_eq!(v["nnp"], "1");
    assert_eq!(v["seccomp"], "2", "seccomp filter mode");
    assert_eq!(v["hostname"], "ident");
    assert_eq!(v["ifaces"], serde_json::json!(["lo"]), "only loopback");
    let sizes = v["masked"].as_array().unwrap();
    assert_eq!(sizes.len(), masked.len());
    assert!(sizes.iter().all(|n| n == 0), "masked paths readable: {masked:?} -> {sizes:?}");
    // The runtime is not PID 1: the entrypoint is.
    assert_ne!(v["pid"], 1);
    sb.assert_no_leaks();
}

#[test]
fn env_is_expanded_from_the_variables_the_caller_passes() {
    let sb = sandbox_test!();
    let dir = sb.ts_service(
        "envsvc",
        "  env:\n    GREETING: \"${GREETING_FOR_TEST}\"\n    STATIC: plain\n",
        "console.log(process.env.GREETING + '|' + process.env.STATIC + '|' + process.env.HOME + '|' + process.env.IGNITE_INPUT)",
    );
    let out = sb
        .cmd()
        .args(["--pass-env", "GREETING_FOR_TEST"])
        .arg("run")
        .arg(&dir)
        .args(["--json", "--input", r#"{"k":1}"#])
        .env("GREETING_FOR_TEST", "hola")
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["stdout"].as_str().unwrap().trim(), r#"hola|plain|/tmp|{"k":1}"#);

    // IGNITE_PASS_ENV names them too (comma-separated).
    let out = sb
        .cmd()
        .arg("run")
        .arg(&dir)
        .arg("--json")
        .env("IGNITE_PASS_ENV", "OTHER,GREETING_FOR_TEST")
        .env("GREETING_FOR_TEST", "hej")
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["stdout"].as_str().unwrap().starts_with("hej|plain|"), "{r}");

    // Set but not passed: refused, naming the flag that passes it.
    let out = sb.cmd().arg("run").arg(&dir).env("GREETING_FOR_TEST", "hola").output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = stderr_of(&out);
    assert!(err.contains("--pass-env GREETING_FOR_TEST") && err.contains("service.env.GREETING"), "{err}");

    // Passed but not set.
    let out = sb
        .cmd()
        .args(["--pass-env", "GREETING_FOR_TEST"])
        .arg("run")
        .arg(&dir)
        .env_remove("GREETING_FOR_TEST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = stderr_of(&out);
    assert!(err.contains("GREETING_FOR_TEST is not set") && err.contains("service.env.GREETING"), "{err}");
    sb.assert_no_leaks();
}

#[test]
fn timeout_stops_the_program() {
    let sb = sandbox_test!();
    let dir = sb.ts_service("spin", "  timeoutMs: 1000\n", "console.log('spinning'); while (true) {}");
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(out.status.code(), Some(124), "{r}");
    assert_eq!(r["status"], "timeout");
    assert_eq!(r["success"], false);
    assert_eq!(r["stdout"].as_str().unwrap().trim(), "spinning");
    assert!(r["message"].as_str().unwrap().contains("1000 ms time limit"), "{r}");
    sb.assert_cgroup_gone(r["containerId"].as_str().unwrap());
    sb.assert_no_leaks();
}

#[test]
fn sigterm_ignoring_program_is_killed_after_grace() {
    let sb = sandbox_test!();
    let code = "process.on('SIGTERM', () => console.log('ignored SIGTERM')); setInterval(() => {}, 1000);";
    let dir = sb.ts_service("stubborn", "  timeoutMs: 500\n", code);
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(out.status.code(), Some(124), "{r}");
    assert_eq!(r["status"], "timeout");
    assert_eq!(r["signal"], "SIGKILL", "{r}");
    sb.assert_no_leaks();
}

/// At the time limit the program gets SIGTERM first and can stop on its own: the entrypoint must
/// not pass its own blocked signal mask on to the runtime.
#[test]
fn program_hears_sigterm_at_the_time_limit_on_every_runtime_with_signal_handlers() {
    let sb = sandbox_test!();
    let node =
        "process.on('SIGTERM', () => { console.log('got SIGTERM'); process.exit(3); }); setInterval(() => {}, 1000);";
    let deno = "Deno.addSignalListener('SIGTERM', () => { console.log('got SIGTERM'); Deno.exit(3); }); setInterval(() => {}, 1000);";
    // Long enough for each runtime to start and install its handler before the limit.
    let limit = 1000 * slowdown();
    for (runtime, code) in [("bun", node), ("node", node), ("deno", deno)] {
        let dir = sb.service(
            &format!("term-{runtime}"),
            &[
                (
                    "service.yaml",
                    &format!("service:\n  name: term\n  entry: index.js\n  timeoutMs: {limit}\n  runtime: {runtime}\n"),
                ),
                ("index.js", code),
            ],
        );
        let (out, r) = sb.run_json(&dir, &[]);
        assert_eq!(out.status.code(), Some(124), "{runtime}: {r}");
        assert_eq!(r["status"], "timeout", "{runtime}: {r}");
        assert_eq!(r["stdout"], "got SIGTERM\n", "{runtime} did not see SIGTERM: {r}");
        assert_eq!(r["exitCode"], 3, "{runtime} exited on its own after SIGTERM: {r}");
    }
    sb.assert_no_leaks();
}

#[test]
fn memory_bomb_is_reported_as_oom() {
    let sb = sandbox_test!();
    let code = "const keep: Buffer[] = []; while (true) { keep.push(Buffer.alloc(4 << 20, 1)); }";
    let dir = sb.ts_service("membomb", "  memoryMb: 64\n  timeoutMs: 20000\n", code);
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(r["status"], "oom", "{r}");
    assert_eq!(out.status.code(), Some(137));
    assert!(r["metrics"]["oomKills"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["metrics"]["memoryPeakMb"].as_f64().unwrap() <= 64.5, "{r}");
    sb.assert_cgroup_gone(r["containerId"].as_str().unwrap());
    sb.assert_no_leaks();
}

/// A program at its memory limit is OOM-killed, not left to thrash. If the runtime's own code is
/// not in the page cache when the sandbox starts (host memory pressure evicted it), the sandbox
/// faults it in and is charged for it; at the limit the kernel then reclaims that code and reads it
/// back from disk, over and over (Node: about 1 GB/s of disk reads for the whole time limit, and
/// "timeout" instead of "oom"). ignite reads the rootfs in before each run, charged to itself.
#[test]
fn memory_bomb_is_oom_killed_even_when_the_runtime_was_evicted_from_the_page_cache() {
    let sb = sandbox_test!();
    let code =
        "const keep = []; for (let i = 0; ; i++) keep.push(Array.from({ length: 1 << 16 }, (_, j) => ({ i, j })));\n";
    let yaml = "service:\n  name: evicted\n  runtime: node\n  entry: index.js\n  memoryMb: 64\n  timeoutMs: 20000\n";
    let dir = sb.service("evicted", &[("service.yaml", yaml), ("index.js", code)]);
    let out = sb.cmd().arg("run").arg(&dir).arg("--print-spec").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rootfs = std::path::PathBuf::from(spec["root"]["path"].as_str().unwrap());
    // What host memory pressure does: drop the runtime's files from the page cache.
    let mut stack = vec![rootfs];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let f = std::fs::File::open(e.path()).unwrap();
                nix::fcntl::posix_fadvise(&f, 0, 0, nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED).unwrap();
            }
        }
    }
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(r["status"], "oom", "{r}");
    assert_eq!(out.status.code(), Some(137));
    assert!(r["metrics"]["oomKills"].as_u64().unwrap() >= 1, "{r}");
    sb.assert_cgroup_gone(r["containerId"].as_str().unwrap());
    sb.assert_no_leaks();
}

#[test]
fn fork_bomb_is_contained_by_the_pids_limit() {
    let sb = sandbox_test!();
    let code = r#"
let ok = 0, failed = 0;
for (let i = 0; i < 400; i++) {
  try { Bun.spawn({ cmd: [process.execPath, "-e", "await Bun.sleep(4000)"], stdout: "ignore", stderr: "ignore" }); ok++; }
  catch (e) { failed++; }
}
console.log(JSON.stringify({ ok, failed }));
process.exit(0);
"#;
    let dir = sb.ts_service("forkbomb", "  memoryMb: 2048\n  timeoutMs: 15000\n", code);
    // Spawning must be allowed for the bomb to reach the pids limit (by default it gets EPERM
    // at the first spawn; tests/spawn.rs shows that).
    std::fs::write(
        dir.join("ignite.policy.yaml"),
        "security:\n  process:\n    allowSpawn: true\n    allowedCommands: [/usr/local/bin/bun]\n",
    )
    .unwrap();
    let (_out, r) = sb.run_json(&dir, &[]);
    let m = &r["metrics"];
    assert!(m["pidsPeak"].as_u64().unwrap() <= 128, "{r}");
    assert!(m["pidsLimitHits"].as_u64().unwrap() > 0, "pids limit never hit: {r}");
    sb.assert_cgroup_gone(r["containerId"].as_str().unwrap());
    sb.assert_no_leaks();
}

#[test]
fn network_is_loopback_only() {
    let sb = sandbox_test!();
    // The public-IP fetch runs only after the program has seen that it has no interface
    // but lo and no route: no packet can leave even if the fetch were attempted.
    let code = r#"
import { readFileSync, readdirSync } from "node:fs";
const ifaces = readdirSync("/sys/class/net");
const routes = readFileSync("/proc/net/route", "utf8").trim().split("\n").slice(1);
if (ifaces.join() !== "lo" || routes.length !== 0) { console.log("UNISOLATED " + ifaces + " " + routes); process.exit(3); }
let outcome = "connected";
try { await fetch("http://1.1.1.1/", { signal: AbortSignal.timeout(3000) }); } catch (e) { outcome = "blocked: " + (e.code ?? e.name); }
console.log(outcome);
"#;
    let dir = sb.ts_service("net", "  timeoutMs: 10000\n", code);
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{r}");
    let stdout = r["stdout"].as_str().unwrap();
    assert!(stdout.starts_with("blocked:"), "{stdout}");
    sb.assert_no_leaks();
}

#[test]
fn root_and_app_are_read_only() {
    let sb = sandbox_test!();
    let code = r#"
import { writeFileSync } from "node:fs";
const attempt = (p: string) => { try { writeFileSync(p, "x"); return "WROTE"; } catch (e) { return e.code; } };
console.log(JSON.stringify({ root: attempt("/pwned"), app: attempt("/app/pwned"), usr: attempt("/usr/local/bin/bun"), tmp: attempt("/tmp/ok") }));
"#;
    let dir = sb.ts_service("rofs", "", code);
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{r}");
    let v: serde_json::Value = serde_json::from_str(r["stdout"].as_str().unwrap().trim()).unwrap();
    assert_ne!(v["root"], "WROTE");
    assert_ne!(v["app"], "WROTE");
    assert_ne!(v["usr"], "WROTE");
    assert_eq!(v["tmp"], "WROTE", "/tmp must stay writable: {v}");
    assert!(!dir.join("pwned").exists());
    sb.assert_no_leaks();
}

#[test]
fn output_flood_is_truncated_and_stopped() {
    let sb = sandbox_test!();
    let code = "const chunk = 'x'.repeat(65536); while (true) { process.stdout.write(chunk); }";
    let dir = sb.ts_service("flood", "  timeoutMs: 20000\n", code);
    let (out, r) = sb.run_json(&dir, &["--output-limit", "100000"]);
    assert_eq!(r["status"], "output_limit", "{}", r["message"]);
    assert_eq!(out.status.code(), Some(137));
    assert_eq!(r["stdoutTruncated"], true);
    assert_eq!(r["stdout"].as_str().unwrap().len(), 100_000);
    assert!(r["metrics"]["stdoutBytes"].as_u64().unwrap() > 100_000);
    sb.assert_no_leaks();
}

#[test]
fn nonzero_exit_and_thrown_error_are_errors_not_failures_of_ignite() {
    let sb = sandbox_test!();
    let dir = sb.ts_service("fails", "", "console.error('bad input'); process.exit(3);");
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(r["status"], "error");
    assert_eq!(r["exitCode"], 3);
    assert_eq!(r["stderr"].as_str().unwrap().trim(), "bad input");
    sb.assert_no_leaks();
}

/// Starts `ignite run` of a program that prints `started` and then idles for a minute (with
/// `yaml` added to its service.yaml and `env` in ignite's environment), and returns once the
/// program is running (its first output arrived), with the stdout it keeps writing to.
fn start_long_run(
    sb: &Sandbox,
    name: &str,
    yaml: &str,
    env: &[(&str, &str)],
) -> (std::process::Child, std::process::ChildStdout) {
    let dir = sb.ts_service(
        name,
        &format!("  timeoutMs: 60000\n{yaml}"),
        "console.log('started'); setInterval(() => {}, 1000);",
    );
    let mut child = sb
        .cmd()
        .envs(env.iter().copied())
        .arg("run")
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 64];
    let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("started"), "{name}: {:?}", String::from_utf8_lossy(&buf[..n]));
    (child, stdout)
}

#[test]
fn ctrl_c_kills_the_run_and_cleans_up() {
    let sb = sandbox_test!();
    // Once the program runs, interrupt ignite.
    let (mut child, _stdout) = start_long_run(&sb, "longrun", "", &[]);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    sb.assert_no_leaks();
}

#[test]
fn leftovers_of_a_killed_ignite_are_reaped() {
    let sb = sandbox_test!();
    let (mut child, _stdout) = start_long_run(&sb, "orphan", "", &[]);
    // SIGKILL: ignite gets no chance to clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    let runs: Vec<_> =
        std::fs::read_dir(sb.state.path().join("runs")).unwrap().flatten().filter(|e| e.path().is_dir()).collect();
    assert_eq!(runs.len(), 1, "the killed run's state should still be there");
    let id = runs[0].file_name().to_string_lossy().into_owned();

    let out = sb.cmd().arg("cleanup").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains(&id), "{}", stderr_of(&out));
    std::thread::sleep(Duration::from_millis(100));
    sb.assert_cgroup_gone(&id);
    sb.assert_no_leaks();
}

/// Where run `id`'s cgroup (the one holding its init) must be on this host with `driver`, and
/// its memory limit file there. crun, asked for a systemd scope, puts the container in a
/// `container` subgroup of it (its `run.oci.systemd.subgroup`, on by default on cgroup v2).
fn expected_cgroup(id: &str, driver: &str) -> (PathBuf, &'static str) {
    let (v2, systemd) = host_cgroup();
    let crun = oci_name() == "crun";
    match (v2, driver) {
        (false, _) => (Path::new("/sys/fs/cgroup/memory/ignite").join(id), "memory.limit_in_bytes"),
        (true, "systemd") => {
            // Rootless, the scope is the user's systemd manager's (in its delegated subtree).
            let uid = nix::unistd::geteuid().as_raw();
            let manager = if rootless() {
                format!("/sys/fs/cgroup/user.slice/user-{uid}.slice/user@{uid}.service")
            } else {
                "/sys/fs/cgroup".to_string()
            };
            let scope = Path::new(&manager).join("ignite.slice").join(format!("ignite-{id}.scope"));
            (if crun { scope.join("container") } else { scope }, "memory.max")
        }
        (true, "auto") if systemd => expected_cgroup(id, "systemd"),
        (true, _) => (Path::new("/sys/fs/cgroup/ignite").join(id), "memory.max"),
    }
}

/// The cgroup directory of the process `pid` holding `controller` (`""`: the unified one).
fn cgroup_of_pid(pid: u32, controller: &str) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        if (controller.is_empty() && ctrls.is_empty()) || ctrls.split(',').any(|c| c == controller) {
            let mount = if controller.is_empty() {
                "/sys/fs/cgroup".to_string()
            } else {
                format!("/sys/fs/cgroup/{controller}")
            };
            return Path::new(&mount).join(path.trim_start_matches('/'));
        }
    }
    panic!("no {controller:?} cgroup in {text}");
}

/// Each run's cgroup is where the cgroup driver puts it — a transient systemd scope in
/// ignite.slice on a pure cgroup v2 host booted with systemd, /ignite/<run> elsewhere or when
/// cgroupfs is asked for — holds the run's memory limit (and no swap beyond it), and is gone
/// after the run.
#[test]
fn a_runs_cgroup_is_where_the_driver_puts_it_and_gone_after() {
    let sb = sandbox_test!();
    let (v2, systemd) = host_cgroup();
    // Rootless, cgroupfs is refused (tests/rootless.rs and the driver's unit tests show it).
    let mut drivers = if rootless() { vec!["auto"] } else { vec!["auto", "cgroupfs"] };
    if v2 && systemd {
        drivers.push("systemd");
    }
    for driver in drivers {
        let (mut child, _stdout) =
            start_long_run(&sb, &format!("where-{driver}"), "  memoryMb: 96\n", &[("IGNITE_CGROUP_DRIVER", driver)]);
        let runs: Vec<_> =
            std::fs::read_dir(sb.state.path().join("runs")).unwrap().flatten().filter(|e| e.path().is_dir()).collect();
        assert_eq!(runs.len(), 1, "{driver}");
        let id = runs[0].file_name().to_string_lossy().into_owned();
        // `runc run` writes the pid file once the container started, and the program's output
        // reaches ignite directly, not through runc: it may print first.
        let pid_file = runs[0].path().join("init.pid");
        let init: u32 = (0..1000)
            .find_map(|_| {
                let pid = std::fs::read_to_string(&pid_file).ok().and_then(|t| t.trim().parse().ok());
                if pid.is_none() {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                pid
            })
            .unwrap_or_else(|| panic!("{driver}: no {} within 10 s", pid_file.display()));
        let (cgroup, limit_file) = expected_cgroup(&id, driver);
        assert_eq!(cgroup_of_pid(init, if v2 { "" } else { "memory" }), cgroup, "{driver}: the init's cgroup");
        let limit = std::fs::read_to_string(cgroup.join(limit_file))
            .unwrap_or_else(|e| panic!("{driver}: {}: {e}", cgroup.display()));
        assert_eq!(limit.trim(), (96u64 << 20).to_string(), "{driver}: {}", cgroup.display());
        // The memory limit is also the memory+swap limit: no swap beyond it.
        if let Ok(swap) = std::fs::read_to_string(cgroup.join("memory.swap.max")) {
            assert_eq!(swap.trim(), "0", "{driver}: {}", cgroup.display());
        }
        if cgroup.ends_with(format!("ignite-{id}.scope")) {
            // systemd knows the scope: a unit of its own with the limit as a property (runc
            // sets it there; crun sets it on its subgroup).
            let unit = format!("ignite-{id}.scope");
            // Rootless, the scope is the user's systemd manager's.
            let manager: &[&str] = if rootless() { &["--user"] } else { &[] };
            let show = std::process::Command::new("systemctl")
                .args(manager)
                .args(["show", "-p", "MemoryMax", &unit])
                .output()
                .unwrap();
            assert_eq!(stdout_of(&show).trim(), format!("MemoryMax={}", 96u64 << 20), "{unit}");
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT)
            .unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(130), "{driver}");
        let unit_dir = if cgroup.ends_with("container") { cgroup.parent().unwrap().to_path_buf() } else { cgroup };
        assert!(!unit_dir.exists(), "{driver}: {} left behind", unit_dir.display());
        sb.assert_no_leaks();
    }
    if !(v2 && systemd) {
        let dir = sb.ts_service("where-refused", "", "console.log('never');");
        let out = sb.cmd().args(["--cgroup-driver", "systemd", "run"]).arg(&dir).output().unwrap();
        assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains("the systemd cgroup driver needs a pure cgroup v2 host"),
            "{}",
            stderr_of(&out)
        );
    }
}

#[test]
fn init_scaffold_runs() {
    let sb = sandbox_test!();
    let out = sb.cmd().current_dir(sb.work.path()).args(["init", "hello"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    for f in ["service.yaml", "index.ts", "package.json"] {
        assert!(sb.work.path().join("hello").join(f).is_file(), "{f}");
    }
    let out = sb
        .cmd()
        .current_dir(sb.work.path())
        .args(["run", "hello", "--input", r#"{"data":[1,2,3],"operation":"sum"}"#])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains(r#""result":6"#), "{}", stdout_of(&out));
    // Refuses to overwrite.
    let out = sb.cmd().current_dir(sb.work.path()).args(["init", "hello"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr_of(&out).contains("already exists"));
    sb.assert_no_leaks();
}

#[test]
fn exec_needs_no_service_yaml() {
    let sb = sandbox_test!();
    let dir = sb.service("bare", &[("index.js", "console.log('bare ' + JSON.parse(process.env.IGNITE_INPUT).n)")]);
    let out = sb.cmd().args(["exec", "--runtime", "bun"]).arg(&dir).args(["--input", r#"{"n":7}"#]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out).trim(), "bare 7");
    let out = sb.cmd().arg("run").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "run requires service.yaml");
    sb.assert_no_leaks();
}

#[test]
fn print_spec_shows_the_hardened_config() {
    let sb = sandbox_test!();
    let out = sb.cmd().arg("run").arg(repo().join("examples/hello")).arg("--print-spec").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(spec["root"]["readonly"], true);
    assert_eq!(spec["process"]["noNewPrivileges"], true);
    let uid = spec["process"]["user"]["uid"].as_u64().expect("uid") as u32;
    assert!(ignite::sandbox::identity::is_run_uid(uid), "{}", spec["process"]["user"]);
    assert_eq!(spec["process"]["user"]["gid"], spec["process"]["user"]["uid"]);
    assert_eq!(spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(spec["linux"]["resources"]["memory"]["limit"], 64 * 1024 * 1024);
    sb.assert_no_leaks();
}

#[test]
fn seccomp_profile_is_enforced_inside() {
    let sb = sandbox_test!();
    // bun:ffi calls syscall(2) directly, so the filter itself answers (not the runtime).
    let code = r#"
import { dlopen, FFIType, read } from "bun:ffi";
const { symbols: c } = dlopen("libc.so.6", {
  syscall: { args: [FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64], returns: FFIType.i64 },
  __errno_location: { args: [], returns: FFIType.ptr },
});
const sys = (nr: number, ...a: number[]) => {
  const r = Number(c.syscall(nr, ...[...a, 0, 0, 0, 0, 0, 0].slice(0, 5)));
  return r < 0 ? -read.i32(c.__errno_location(), 0) : 0;
};
console.log(JSON.stringify({
  ptrace: sys(101, 0), unshare_user: sys(272, 0x10000000), mount: sys(165, 0, 0, 0, 0, 0), bpf: sys(321, 0, 0, 0),
  keyctl: sys(250, 0), userfaultfd: sys(323, 0), perf_event_open: sys(298, 0, 0, -1, -1, 0), setns: sys(308, 0, 0),
  personality_no_aslr: sys(135, 0x0040000),
  socket_vsock: sys(41, 40, 1, 0), socket_alg: sys(41, 38, 5, 0), socket_packet: sys(41, 17, 3, 0),
  clone3: sys(435, 0, 0), io_uring_setup: sys(425, 1, 0),
  socket_inet: sys(41, 2, 1, 0),
}));
"#;
    let dir = sb.ts_service("seccomp", "", code);
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{r}");
    let v: serde_json::Value = serde_json::from_str(r["stdout"].as_str().unwrap().trim()).unwrap();
    const EPERM: i64 = -1;
    const ENOSYS: i64 = -38;
    for denied in [
        "ptrace",
        "unshare_user",
        "mount",
        "bpf",
        "keyctl",
        "userfaultfd",
        "perf_event_open",
        "setns",
        "personality_no_aslr",
        "socket_vsock",
        "socket_alg",
        "socket_packet",
    ] {
        assert_eq!(v[denied], EPERM, "{denied} not denied with EPERM: {v}");
    }
    assert_eq!(v["clone3"], ENOSYS, "clone3 must fail with ENOSYS: {v}");
    assert_eq!(v["io_uring_setup"], ENOSYS, "{v}");
    assert_eq!(v["socket_inet"], 0, "ordinary sockets stay allowed: {v}");
    sb.assert_no_leaks();
}

#[test]
fn sigterm_to_ignite_kills_the_run_and_cleans_up() {
    let sb = sandbox_test!();
    let (mut child, _stdout) = start_long_run(&sb, "termed", "", &[]);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(143));
    sb.assert_no_leaks();
}

#[test]
fn pinned_versions_are_selectable() {
    let sb = sandbox_test!();
    let dir = sb.service("ver", &[("index.ts", "console.log(Bun.version)")]);
    for (spec, prefix) in [("bun@1.3", "1.3."), ("bun@1.4", "1.4."), ("bun", "1.4.")] {
        let out = sb.cmd().args(["exec", "--quiet", "--runtime", spec]).arg(&dir).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{spec}: {}", stderr_of(&out));
        assert!(stdout_of(&out).trim().starts_with(prefix), "{spec}: {}", stdout_of(&out));
    }
    let out = sb.cmd().args(["exec", "--runtime", "bun@0.9"]).arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr_of(&out).contains("available: 1.4.5"), "{}", stderr_of(&out));
    sb.assert_no_leaks();
}

#[test]
fn oversized_input_is_refused_before_anything_starts() {
    let sb = sandbox_test!();
    let dir = sb.service("big", &[("index.ts", "console.log(1)")]);
    // Past 64 KiB the input is a file; past 8 MiB it is refused.
    let input = serde_json::json!({ "blob": "x".repeat(8 * 1024 * 1024) }).to_string();
    let path = sb.work.path().join("big.json");
    std::fs::write(&path, input).unwrap();
    let out = sb.cmd().arg("exec").arg(&dir).arg("--input").arg(format!("@{}", path.display())).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr_of(&out).contains("a --input file may have at most 8388608 bytes"), "{}", stderr_of(&out));
    sb.assert_no_leaks();
}

#[test]
fn entry_the_sandbox_user_cannot_read_is_explained() {
    use std::os::unix::fs::PermissionsExt;
    let sb = sandbox_test!();
    let dir = sb.service("secret", &[("index.ts", "console.log(1)")]);
    std::fs::set_permissions(dir.join("index.ts"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = sb.cmd().arg("exec").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr_of(&out).contains("not readable by the sandbox user"), "{}", stderr_of(&out));
    sb.assert_no_leaks();
}

#[test]
fn oci_runtime_failure_surfaces_its_own_message() {
    use std::os::unix::fs::PermissionsExt;
    let sb = sandbox_test!();
    // A runtime that says it is runc (crun rootless, where runc is refused) and fails the way
    // they do: its error in the JSON log, exit status 1.
    let fake = sb.work.path().join("runtime-broken");
    let version = if rootless() {
        "crun version 1.8.1\\nspec: 1.0.0\\n+SYSTEMD +SECCOMP +CAP\\n"
    } else {
        "runc version 1.1.5\\nlibseccomp: 2.5.4\\n"
    };
    std::fs::write(
        &fake,
        format!("#!/bin/sh\n[ \"$1\" = --version ] && {{ printf '{version}'; exit 0; }}\nwhile [ $# -gt 0 ]; do case \"$1\" in --log) log=\"$2\"; shift 2;; *) shift;; esac; done\n\
         echo '{{\"level\":\"error\",\"msg\":\"simulated: unable to apply cgroup configuration\"}}' >> \"$log\"\nexit 1\n"),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = sb.service("broken", &[("index.ts", "console.log(1)")]);
    let out = sb.cmd().arg("exec").arg(&dir).arg("--oci-runtime").arg(&fake).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("simulated: unable to apply cgroup configuration"), "{}", stderr_of(&out));
    sb.assert_no_leaks();
}

#[test]
fn entrypoint_refuses_a_sandbox_that_is_not_confined() {
    let sb = sandbox_test!();
    // Take the exact spec ignite generates, weaken it by hand, run it with plain runc:
    // the entrypoint's own check must refuse to start the program.
    let dir = sb.service("unconfined", &[("index.ts", "console.log('program ran')")]);
    let out = sb.cmd().arg("exec").arg(&dir).arg("--print-spec").arg("--quiet").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let mut spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The run's /etc/passwd and /etc/group went with the uid when that ignite exited: bind
    // copies of the test's own instead.
    for m in spec["mounts"].as_array_mut().unwrap() {
        let dest = m["destination"].as_str().unwrap().to_string();
        if dest == "/etc/passwd" || dest == "/etc/group" {
            let copy = sb.work.path().join(dest.trim_start_matches("/etc/"));
            std::fs::write(&copy, "root:x:0:\n").unwrap();
            m["source"] = serde_json::json!(copy);
        }
        // Likewise the run's input directory, which exists only while its run does.
        if dest == "/tmp/ignite" {
            let input = sb.work.path().join("input");
            std::fs::create_dir_all(&input).unwrap();
            m["source"] = serde_json::json!(input);
        }
    }
    type Weaken = Box<dyn Fn(&mut serde_json::Value)>;
    let weakenings: Vec<(&str, Weaken)> = vec![
        (
            "bounding capabilities: CAP_CHOWN",
            Box::new(|s| {
                for set in ["bounding", "effective", "permitted"] {
                    s["process"]["capabilities"][set] = serde_json::json!(["CAP_CHOWN"]);
                }
            }),
        ),
        ("no_new_privs is not set", Box::new(|s| s["process"]["noNewPrivileges"] = serde_json::json!(false))),
    ];
    for (i, (want, weaken)) in weakenings.iter().enumerate() {
        let mut s = spec.clone();
        weaken(&mut s);
        let bundle = sb.work.path().join(format!("bundle{i}"));
        std::fs::create_dir(&bundle).unwrap();
        std::fs::write(bundle.join("config.json"), s.to_string()).unwrap();
        let root = sb.state.path().join("manual-runc");
        // A `slice:prefix:name` cgroups path is the systemd driver's (a pure cgroup v2 host with
        // systemd, and always rootless): runc must use it too.
        let systemd = s["linux"]["cgroupsPath"].as_str().is_some_and(|p| p.contains(':'));
        let out = std::process::Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(if systemd { &["--systemd-cgroup"][..] } else { &[] })
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(format!("unconfined-{}-{i}", std::process::id()))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(125), "{want}: {}", stderr_of(&out));
        assert!(stderr_of(&out).contains("not confined") && stderr_of(&out).contains(want), "{}", stderr_of(&out));
        assert!(!stdout_of(&out).contains("program ran"));
    }
    sb.assert_no_leaks();
}
