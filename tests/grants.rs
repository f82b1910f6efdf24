//! What a policy grants beyond the default sandbox, through real runs:
//!
//! - `security.network.enabled: true`: DNS and TCP to the public internet (the npm registry)
//!   on bun, node and deno; the host's addresses, its loopback, link-local and private ranges
//!   stay unreachable; without it, loopback only and no network tool is even needed;
//! - `security.filesystem.readOnly: false`: writes anywhere in the root succeed, the runtime's
//!   own files stay intact, the next run sees none of it, the shared rootfs is unchanged, the
//!   layer's size is enforced (ENOSPC), /app stays read-only; with spawning allowed, a written
//!   file runs only when no allowedCommands list restricts execution;
//! - teardown on every path (success, error, timeout, OOM, Ctrl-C, a killed ignite then
//!   `ignite cleanup`): no slirp4netns, network namespace, mount or state left.
//!
//! The network tests reach the npm registry.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

macro_rules! sandbox_test {
    () => {{
        if !require_sandbox() {
            return;
        }
        Sandbox::new()
    }};
}

const NETWORK_ON: &str = "security:\n  network:\n    enabled: true\n";
const WRITABLE: &str = "security:\n  filesystem:\n    readOnly: false\n";
const BOTH: &str = "security:\n  network:\n    enabled: true\n  filesystem:\n    readOnly: false\n    writableMb: 16\n";

/// Every grant this mode gives: the network and the writable root as root; rootless, the
/// network (a writable root is refused there: tests/rootless.rs).
fn all_grants() -> &'static str {
    if rootless() { NETWORK_ON } else { BOTH }
}

/// Resolves registry.npmjs.org, connects to it on port 443 (no TLS: only reachability is in
/// question), then to each `targets` entry of the input ("host:port"; `GATEWAY` is the default
/// route's gateway — destination and mask 0, unlike the unreachable 0.0.0.0/8 — read from the
/// routing table when `gateway` is set). One JSON line out.
/// The same source runs on bun, node and deno.
const PROBE: &str = r#"
import net from "node:net";
import dns from "node:dns/promises";
import fs from "node:fs";
const input = JSON.parse(process.env.IGNITE_INPUT ?? "{}");
const attempt = (host: string, port: number) => new Promise<string>((done) => {
  const s = net.connect({ host, port });
  const timer = setTimeout(() => end("timeout"), 4000);
  function end(r: string) { clearTimeout(timer); s.destroy(); done(r); }
  s.on("connect", () => end("CONNECTED"));
  s.on("error", (e: any) => end(e.code ?? String(e)));
});
let gateway = "none";
if (input.gateway) {
  const hex = fs.readFileSync("/proc/net/route", "utf8").split("\n").map((l) => l.split("\t")).find((f) => f[1] === "00000000" && f[7] === "00000000")?.[2];
  if (hex) gateway = [0, 2, 4, 6].map((i) => parseInt(hex.substr(i, 2), 16)).reverse().join(".");
}
let lookup: string;
try { lookup = (await dns.lookup("registry.npmjs.org", { family: 4 })).address; } catch (e: any) { lookup = "FAILED " + (e.code ?? e); }
const registry = await attempt("registry.npmjs.org", 443);
const probes: Record<string, string> = {};
for (const t of input.targets ?? []) {
  const [h, p] = t.replace("GATEWAY", gateway).split(":");
  probes[t] = await attempt(h, Number(p));
}
let netns = "unreadable";
try { netns = fs.readlinkSync("/proc/self/ns/net"); } catch {}
console.log(JSON.stringify({ lookup, registry, gateway, probes, netns }));
"#;

/// A service on `runtime` with `policy` as its policy file (none when empty).
fn service(sb: &Sandbox, name: &str, runtime: &str, yaml_extra: &str, policy: &str, code: &str) -> PathBuf {
    let dir = sb.ts_service(name, &format!("  runtime: {runtime}\n{yaml_extra}"), code);
    if !policy.is_empty() {
        std::fs::write(dir.join("ignite.policy.yaml"), policy).unwrap();
    }
    dir
}

/// The program's one JSON line.
fn output(r: &serde_json::Value) -> serde_json::Value {
    let text = r["stdout"].as_str().unwrap_or_default().trim();
    serde_json::from_str(text).unwrap_or_else(|e| panic!("program output is not JSON ({e}): {r}"))
}

/// The host's own IPv4 addresses other than loopback.
fn host_addresses() -> Vec<std::net::Ipv4Addr> {
    nix::ifaddrs::getifaddrs()
        .unwrap()
        .filter_map(|i| i.address.and_then(|a| a.as_sockaddr_in().map(|s| s.ip())))
        .filter(|ip| !ip.is_loopback())
        .collect()
}

/// Whether any process or thread on the host is still in the network namespace `link`
/// (`net:[…]`, as `readlink /proc/self/ns/net` shows it).
fn netns_in_use(link: &str) -> bool {
    for proc in std::fs::read_dir("/proc").unwrap().flatten() {
        if proc.file_name().to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        for task in std::fs::read_dir(proc.path().join("task")).into_iter().flatten().flatten() {
            if std::fs::read_link(task.path().join("ns/net")).is_ok_and(|l| l.to_string_lossy() == link) {
                return true;
            }
        }
    }
    false
}

/// What the run left behind, beyond [`Sandbox::assert_no_leaks`]: slirp4netns processes of the
/// ignite process `pid`, and the run's network namespace (`netns`, when the program read it).
fn assert_network_gone(pid: u32, netns: Option<&str>) {
    // slirp4netns is told to exit when the run ends; give it the moment that takes.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !slirp_processes_of(pid).is_empty() {
        assert!(Instant::now() < deadline, "slirp4netns outlived the run: {:?}", slirp_processes_of(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(link) = netns {
        assert!(!netns_in_use(link), "network namespace {link} outlived the run");
    }
}

#[test]
fn network_on_resolves_and_connects_on_bun_node_and_deno() {
    let sb = sandbox_test!();
    for rt in ["bun", "node", "deno"] {
        let dir = service(&sb, &format!("net-on-{rt}"), rt, "  timeoutMs: 20000\n", NETWORK_ON, PROBE);
        let (out, r, pid) = sb.run_json_pid(&dir, &[]);
        assert_eq!(r["status"], "ok", "{rt}: {r}\n{}", stderr_of(&out));
        let v = output(&r);
        assert!(v["lookup"].as_str().unwrap().parse::<std::net::Ipv4Addr>().is_ok(), "{rt}: DNS failed: {v}");
        assert_eq!(v["registry"], "CONNECTED", "{rt}: {v}");
        let netns = v["netns"].as_str().filter(|n| n.starts_with("net:"));
        // Deno's permissions keep /proc unreadable; bun and node show the namespace.
        assert_eq!(netns.is_some(), rt != "deno", "{rt}: {v}");
        assert_ne!(
            netns.map(str::to_string),
            std::fs::read_link("/proc/self/ns/net").ok().map(|l| l.display().to_string())
        );
        assert_network_gone(pid, netns);
        sb.assert_no_leaks();
    }
}

/// Waits (up to 10 s) until none of `pids` is a live process (a zombie's cmdline is empty).
fn assert_gone(pids: &[u32]) {
    let alive = || {
        pids.iter()
            .copied()
            .filter(|p| std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| !c.is_empty()))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut left: Vec<u32> = alive();
    while !left.is_empty() {
        assert!(Instant::now() < deadline, "processes of the run outlived it: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
        left = alive();
    }
}

/// Whether `dir` is a mount point in this process's namespace.
fn is_mount_point(dir: &Path) -> bool {
    let want = dir.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| l.split(' ').nth(4) == Some(want))
}

/// slirp4netns's sandbox pivots and lazily unmounts its old root after making only `/`
/// private: started from ignite's own mount namespace, that unmount propagates to every host
/// mount whose parent mount is shared. systemd makes every mount shared, and there it took
/// /sys/fs/cgroup, /dev/pts and /dev/mqueue away, so that every later run failed. A mount
/// below a shared mount made here shows the same on any host.
#[test]
fn a_network_grant_leaves_mounts_below_the_hosts_shared_mounts_alone() {
    let sb = sandbox_test!();
    let mnt = tempfile::tempdir().unwrap();
    let path = mnt.path().to_path_buf();
    let run = |args: &[&str]| {
        let status = std::process::Command::new("mount").args(args).status().unwrap();
        assert!(status.success(), "mount {args:?}");
    };
    run(&["-t", "tmpfs", "-o", "size=1m", "ignite-test-shared", path.to_str().unwrap()]);
    /// Lazily, with what is mounted below it.
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0.join("child"), nix::mount::MntFlags::MNT_DETACH);
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let _unmount = Unmount(path.clone());
    run(&["--make-shared", path.to_str().unwrap()]);
    let child = path.join("child");
    std::fs::create_dir(&child).unwrap();
    run(&["-t", "tmpfs", "-o", "size=1m", "ignite-test-child", child.to_str().unwrap()]);
    assert!(is_mount_point(&child));

    let dir = service(&sb, "net-mounts", "bun", "", NETWORK_ON, "console.log(JSON.stringify({ ok: true }));");
    let (out, r, _) = sb.run_json_pid(&dir, &[]);
    assert_eq!(r["status"], "ok", "{r}\n{}", stderr_of(&out));
    assert!(is_mount_point(&child), "the run's network helper unmounted the host's mount {child:?}");
    sb.assert_no_leaks();
}

#[test]
fn network_on_reaches_neither_the_host_nor_private_ranges() {
    let sb = sandbox_test!();
    // A service on the host, listening on every address: what the run must not reach.
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut targets: Vec<String> = host_addresses().iter().map(|ip| format!("{ip}:{port}")).collect();
    assert!(!targets.is_empty(), "the host has no address besides loopback");
    targets.extend([
        // The sandbox's own loopback, not the host's: nothing listens there.
        format!("127.0.0.1:{port}"),
        // slirp4netns's gateway, which is the host's loopback unless disabled, and its DNS
        // forwarder on a port other than 53.
        format!("GATEWAY:{port}"),
        format!("10.0.2.3:{port}"),
        "169.254.169.254:80".into(),
        "10.1.2.3:80".into(),
        "172.16.0.1:80".into(),
        "192.168.1.1:80".into(),
        "100.64.0.1:80".into(),
    ]);
    let input = serde_json::json!({ "targets": targets, "gateway": true }).to_string();
    for rt in ["bun", "node"] {
        let dir = service(&sb, &format!("net-fence-{rt}"), rt, "  timeoutMs: 60000\n", NETWORK_ON, PROBE);
        let (out, r, pid) = sb.run_json_pid(&dir, &["--input", &input]);
        assert_eq!(r["status"], "ok", "{rt}: {r}\n{}", stderr_of(&out));
        let v = output(&r);
        // The network is up (so the refusals below are the fence, not a missing network).
        assert_eq!(v["registry"], "CONNECTED", "{rt}: {v}");
        assert!(v["gateway"].as_str().unwrap().starts_with("10."), "{rt}: {v}");
        let probes = v["probes"].as_object().unwrap();
        assert_eq!(probes.len(), targets.len(), "{rt}: {v}");
        for (target, result) in probes {
            assert_ne!(result, "CONNECTED", "{rt}: the run reached {target}: {v}");
        }
        assert!(listener.accept().is_err(), "{rt}: the host's listener got a connection: {v}");
        assert_network_gone(pid, v["netns"].as_str());
        sb.assert_no_leaks();
    }
}

/// A directory holding links to `tools` only (found in PATH), and to the OCI runtime the tests
/// drive when it is named rather than given as a path (rootless, with the newuidmap and
/// newgidmap every rootless run needs): PATH for an ignite that must not find the others.
fn path_with_only(tools: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let oci = test_oci_runtime();
    let oci = (!oci.contains('/')).then_some(oci);
    let idmap: &[&str] = if rootless() { &["newuidmap", "newgidmap"] } else { &[] };
    for tool in tools.iter().copied().chain(oci.as_deref()).chain(idmap.iter().copied()) {
        let found = std::env::var_os("PATH")
            .and_then(|p| std::env::split_paths(&p).map(|d| d.join(tool)).find(|c| c.is_file()))
            .unwrap_or_else(|| panic!("{tool} in PATH"));
        std::os::unix::fs::symlink(found, d.path().join(tool)).unwrap();
    }
    d
}

#[test]
fn network_off_is_loopback_only_and_needs_no_network_tool() {
    let sb = sandbox_test!();
    // Neither ip nor slirp4netns can be found: a run without a network must not need them.
    let only_oci = path_with_only(&[]);
    for (name, policy) in [("net-default", ""), ("net-off", "security:\n  network:\n    enabled: false\n")] {
        let dir = service(&sb, name, "bun", "  timeoutMs: 20000\n", policy, PROBE);
        let out = sb.cmd().env("PATH", only_oci.path()).arg("run").arg(&dir).arg("--json").output().unwrap();
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
        assert_eq!(r["status"], "ok", "{name}: {r}\n{}", stderr_of(&out));
        let v = output(&r);
        assert!(v["lookup"].as_str().unwrap().starts_with("FAILED"), "{name}: {v}");
        assert_ne!(v["registry"], "CONNECTED", "{name}: {v}");
        sb.assert_no_leaks();
    }
}

#[test]
fn a_missing_network_tool_is_named_with_its_package() {
    let sb = sandbox_test!();
    let dir = service(&sb, "net-tools", "bun", "", all_grants(), "console.log(1)");
    for (tools, missing, package) in
        [(vec!["ip"], "`slirp4netns`", "apt-get install slirp4netns"), (vec![], "`ip`", "apt-get install iproute2")]
    {
        let path = path_with_only(&tools);
        let out = sb.cmd().env("PATH", path.path()).arg("run").arg(&dir).output().unwrap();
        assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
        let err = stderr_of(&out);
        assert!(err.contains(missing) && err.contains(package), "{err}");
        assert!(err.contains("security.network.enabled"), "{err}");
        sb.assert_no_leaks();
    }
}

/// Files, directories and links of a tree with what a write would change.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, u64, i64, i64, String)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let m = std::fs::symlink_metadata(entry.path()).unwrap();
            let link = std::fs::read_link(entry.path()).map(|l| l.display().to_string()).unwrap_or_default();
            out.insert(
                entry.path().strip_prefix(root).unwrap().to_path_buf(),
                (m.mode(), m.len(), m.mtime(), m.mtime_nsec(), link),
            );
            if m.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    out
}

/// The shared rootfs a service's runtime runs on (the root of its default, read-only spec).
fn shared_rootfs(sb: &Sandbox, dir: &Path) -> PathBuf {
    let out = sb
        .cmd()
        .arg("run")
        .arg(dir)
        .args(["--print-spec", "--quiet", "--policy"])
        .arg(read_only_policy(sb))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(spec["root"]["readonly"], true);
    PathBuf::from(spec["root"]["path"].as_str().unwrap())
}

fn read_only_policy(sb: &Sandbox) -> PathBuf {
    let p = sb.work.path().join("read-only.policy.yaml");
    std::fs::write(&p, "security:\n  filesystem:\n    readOnly: true\n").unwrap();
    p
}

/// Writes to /usr/local and /etc, reads back, and tries to change the runtime's own files and
/// /app. `seen` says whether an earlier run's files are there.
const WRITER: &str = r#"
import fs from "node:fs";
const input = JSON.parse(process.env.IGNITE_INPUT ?? "{}");
const attempt = (f: () => void) => { try { f(); return "ok"; } catch (e: any) { return e.code ?? String(e); } };
const seen = fs.existsSync("/etc/ignite-marker") || fs.existsSync("/usr/local/share/ignite/marker");
console.log(JSON.stringify({
  seen,
  usr: attempt(() => { fs.mkdirSync("/usr/local/share/ignite", { recursive: true }); fs.writeFileSync("/usr/local/share/ignite/marker", "usr"); }),
  etc: attempt(() => fs.writeFileSync("/etc/ignite-marker", "etc")),
  top: attempt(() => fs.writeFileSync("/marker", "top")),
  readBack: fs.readFileSync("/etc/ignite-marker", "utf8") + fs.readFileSync("/usr/local/share/ignite/marker", "utf8"),
  runtimeBinary: attempt(() => fs.writeFileSync(input.binary, "x")),
  removeHosts: attempt(() => fs.unlinkSync("/etc/hosts")),
  renameBinary: attempt(() => fs.renameSync(input.binary, "/usr/local/bin/moved")),
  app: attempt(() => fs.writeFileSync("/app/marker", "app")),
}));
"#;

#[test]
fn writable_root_takes_writes_the_next_run_never_sees() {
    let sb = sandbox_test!();
    for rt in ["bun", "node"] {
        let dir = service(&sb, &format!("rw-{rt}"), rt, "", WRITABLE, WRITER);
        let rootfs = shared_rootfs(&sb, &dir);
        let before = snapshot(&rootfs);
        let input = serde_json::json!({ "binary": format!("/usr/local/bin/{rt}") }).to_string();
        for run in 0..2 {
            let (out, r) = sb.run_json(&dir, &["--input", &input]);
            assert_eq!(r["status"], "ok", "{rt} run {run}: {r}\n{}", stderr_of(&out));
            let v = output(&r);
            assert_eq!(v["seen"], false, "{rt} run {run}: an earlier run's files are visible: {v}");
            for key in ["usr", "etc", "top"] {
                assert_eq!(v[key], "ok", "{rt} run {run}: {key}: {v}");
            }
            assert_eq!(v["readBack"], "etcusr", "{rt}: {v}");
            // The runtime's own files: not writable, and the sticky directories keep them from
            // being removed or replaced.
            assert_eq!(v["runtimeBinary"], "EACCES", "{rt}: {v}");
            assert_eq!(v["removeHosts"], "EPERM", "{rt}: {v}");
            assert_eq!(v["renameBinary"], "EPERM", "{rt}: {v}");
            // /app stays the read-only service directory.
            assert_eq!(v["app"], "EROFS", "{rt}: {v}");
            assert!(!dir.join("marker").exists());
            sb.assert_no_leaks();
        }
        assert_eq!(snapshot(&rootfs), before, "{rt}: the shared rootfs {} changed", rootfs.display());
        assert!(!rootfs.join("etc/ignite-marker").exists() && !rootfs.join("marker").exists());
    }
}

#[test]
fn writable_root_works_with_denos_permissions() {
    // Deno gets --allow-write from its runtime.yaml's policyArgs; reading stays narrowed.
    let sb = sandbox_test!();
    let code = r#"
const attempt = (f: () => void) => { try { f(); return "ok"; } catch (e: any) { return e.code ?? e.name; } };
console.log(JSON.stringify({
  usr: attempt(() => { Deno.mkdirSync("/usr/local/share/ignite", { recursive: true }); Deno.writeTextFileSync("/usr/local/share/ignite/marker", "1"); }),
  etc: attempt(() => Deno.writeTextFileSync("/etc/ignite-marker", "1")),
  app: attempt(() => Deno.writeTextFileSync("/app/marker", "1")),
}));
"#;
    let dir = service(&sb, "rw-deno", "deno", "", WRITABLE, code);
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(r["status"], "ok", "{r}\n{}", stderr_of(&out));
    let v = output(&r);
    assert_eq!((v["usr"].as_str(), v["etc"].as_str()), (Some("ok"), Some("ok")), "{v}");
    assert_eq!(v["app"], "EROFS", "{v}");
    sb.assert_no_leaks();
}

#[test]
fn writable_layer_is_capped_at_writable_mb() {
    let sb = sandbox_test!();
    let code = r#"
import { writeFileSync } from "node:fs";
let wrote = 0;
try { for (let i = 0; i < 64; i++) { writeFileSync(`/usr/local/fill${i}`, Buffer.alloc(256 * 1024, 1)); wrote++; } }
catch (e: any) { console.log(JSON.stringify({ code: e.code, mib: wrote / 4 })); process.exit(0); }
console.log(JSON.stringify({ code: "none", mib: wrote / 4 }));
"#;
    let policy = "security:\n  filesystem:\n    readOnly: false\n    writableMb: 4\n";
    let dir = service(&sb, "rw-cap", "bun", "  memoryMb: 256\n", policy, code);
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(r["status"], "ok", "{r}\n{}", stderr_of(&out));
    let v = output(&r);
    assert_eq!(v["code"], "ENOSPC", "{v}");
    let mib = v["mib"].as_f64().unwrap();
    assert!((2.0..=4.0).contains(&mib), "wrote {mib} MiB into a 4 MiB layer: {v}");
    sb.assert_no_leaks();
}

#[test]
fn read_only_root_refuses_writes_with_erofs() {
    let sb = sandbox_test!();
    let code = r#"
import fs from "node:fs";
const attempt = (p: string) => { try { fs.writeFileSync(p, "x"); return "ok"; } catch (e: any) { return e.code; } };
console.log(JSON.stringify({ usr: attempt("/usr/local/x"), etc: attempt("/etc/x"), top: attempt("/x") }));
"#;
    for (name, policy) in [("ro-default", ""), ("ro-explicit", "security:\n  filesystem:\n    readOnly: true\n")] {
        let dir = service(&sb, name, "bun", "", policy, code);
        let (out, r) = sb.run_json(&dir, &[]);
        assert_eq!(r["status"], "ok", "{r}\n{}", stderr_of(&out));
        let v = output(&r);
        assert_eq!(v, serde_json::json!({ "usr": "EROFS", "etc": "EROFS", "top": "EROFS" }), "{name}");
        sb.assert_no_leaks();
    }
}

#[test]
fn print_spec_shows_what_the_grants_change() {
    let sb = sandbox_test!();
    let dir = service(&sb, "spec-grants", "bun", "", all_grants(), "console.log(1)");
    let out = sb.cmd().arg("run").arg(&dir).args(["--print-spec", "--quiet"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let grants = sb.state.path().join("grants");
    let root = spec["root"]["path"].as_str().unwrap();
    if rootless() {
        assert_eq!(spec["root"]["readonly"], true, "{}", spec["root"]);
    } else {
        assert_eq!(spec["root"]["readonly"], false, "{}", spec["root"]);
        assert!(Path::new(root).starts_with(&grants) && root.ends_with("/root"), "{root}");
    }
    let ns = spec["linux"]["namespaces"].as_array().unwrap();
    let net = ns.iter().find(|n| n["type"] == "network").unwrap();
    assert!(net["path"].as_str().unwrap().ends_with("/ns/net"), "{net}");
    // Rootless, the sandbox joins the user namespace that owns the network's too, and sets no
    // maps of its own (that namespace has them); as root there is no user namespace.
    let user = ns.iter().find(|n| n["type"] == "user");
    if rootless() {
        assert!(user.unwrap()["path"].as_str().unwrap().ends_with("/ns/user"), "{user:?}");
        assert!(spec["linux"].get("uidMappings").is_none(), "{}", spec["linux"]);
    } else {
        assert!(user.is_none(), "{user:?}");
    }
    let resolv = spec["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == "/etc/resolv.conf").unwrap();
    assert!(Path::new(resolv["source"].as_str().unwrap()).starts_with(&grants), "{resolv}");
    assert!(resolv["options"].as_array().unwrap().iter().any(|o| o == "ro"), "{resolv}");
    // Nothing was set up for a spec that is only printed.
    assert!(!grants.exists());

    let plain = service(&sb, "spec-plain", "bun", "", "", "console.log(1)");
    let out = sb.cmd().arg("run").arg(&plain).args(["--print-spec", "--quiet"]).output().unwrap();
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(spec["root"]["readonly"], true);
    assert!(!Path::new(spec["root"]["path"].as_str().unwrap()).starts_with(sb.state.path()));
    let net = spec["linux"]["namespaces"].as_array().unwrap().iter().find(|n| n["type"] == "network").cloned().unwrap();
    assert!(net.get("path").is_none(), "{net}");
    assert!(!spec["mounts"].as_array().unwrap().iter().any(|m| m["destination"] == "/etc/resolv.conf"));
}

/// Mount entries under `path` in this process's mount table.
fn mounts_under(path: &Path) -> Vec<String> {
    let prefix = path.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&prefix))
        .map(str::to_string)
        .collect()
}

#[test]
fn grants_are_torn_down_after_error_timeout_and_oom() {
    let sb = sandbox_test!();
    let cases = [
        ("td-error", "", "console.error('bad'); process.exit(3);", "error"),
        ("td-timeout", "  timeoutMs: 1500\n", "console.log('started'); setInterval(() => {}, 1000);", "timeout"),
        (
            "td-oom",
            "  memoryMb: 64\n  timeoutMs: 30000\n",
            "const keep: Uint8Array[] = []; while (true) { keep.push(new Uint8Array(8 * 1024 * 1024).fill(1)); }",
            "oom",
        ),
    ];
    for (name, yaml, code, status) in cases {
        let dir = service(&sb, name, "bun", yaml, all_grants(), code);
        let (out, r, pid) = sb.run_json_pid(&dir, &[]);
        assert_eq!(r["status"], status, "{name}: {r}\n{}", stderr_of(&out));
        assert_network_gone(pid, None);
        sb.assert_no_leaks();
    }
}

#[test]
fn grants_are_torn_down_when_the_oci_runtime_fails() {
    use std::os::unix::fs::PermissionsExt;
    let sb = sandbox_test!();
    // Fails like runc does, after the network and the writable layer exist.
    let fake = sb.work.path().join("runc-broken");
    std::fs::write(
        &fake,
        "#!/bin/sh\n[ \"$1\" = --version ] && { printf 'runc version 1.1.5\\nlibseccomp: 2.5.4\\n'; exit 0; }\nwhile [ $# -gt 0 ]; do case \"$1\" in --log) log=\"$2\"; shift 2;; *) shift;; esac; done\n\
         echo '{\"level\":\"error\",\"msg\":\"simulated failure\"}' >> \"$log\"\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = service(&sb, "td-oci", "bun", "", BOTH, "console.log(1)");
    let child = sb.cmd().arg("run").arg(&dir).arg("--oci-runtime").arg(&fake).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("simulated failure"), "{}", stderr_of(&out));
    assert_network_gone(pid, None);
    sb.assert_no_leaks();
}

/// Starts `ignite run` on a long-running service with both grants and waits until the program
/// runs (its first output line arrives).
fn start_long_run(sb: &Sandbox, name: &str) -> (std::process::Child, std::process::ChildStdout) {
    let dir = service(
        sb,
        name,
        "bun",
        "  timeoutMs: 60000\n",
        all_grants(),
        "console.log('started'); setInterval(() => {}, 1000);",
    );
    let mut child = sb.cmd().arg("run").arg(&dir).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 64];
    let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("started"));
    (child, stdout)
}

#[test]
fn ctrl_c_tears_the_grants_down() {
    let sb = sandbox_test!();
    let (mut child, _stdout) = start_long_run(&sb, "td-int");
    let pid = child.id();
    assert!(!slirp_processes_of(pid).is_empty(), "the run has no slirp4netns");
    let holders = ns_holders_of(pid);
    assert_eq!(holders.len(), usize::from(rootless()), "rootless, one process holds the namespaces: {holders:?}");
    if !rootless() {
        assert_eq!(mounts_under(&sb.state.path().join("grants")).len(), 2, "the layer's tmpfs and overlay are mounted");
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_network_gone(pid, None);
    assert_gone(&holders);
    sb.assert_no_leaks();
}

#[test]
fn a_killed_ignite_leaves_nothing_after_cleanup() {
    let sb = sandbox_test!();
    let (mut child, _stdout) = start_long_run(&sb, "td-kill");
    let pid = child.id();
    // Found while ignite lives: once it is killed they are no longer its children.
    let slirps = slirp_processes_of(pid);
    let holders = ns_holders_of(pid);
    assert_eq!(slirps.len(), 1, "{slirps:?}");
    assert_eq!(holders.len(), usize::from(rootless()), "{holders:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    // slirp4netns notices on its own that ignite is gone (its exit fd closed), and the
    // namespace died with ignite's thread, or rootless with its holder (whose hold pipe
    // closed).
    assert_network_gone(pid, None);
    assert_gone(&slirps);
    assert_gone(&holders);
    if !rootless() {
        assert!(!mounts_under(sb.state.path()).is_empty(), "a killed ignite leaves its layer to be reaped");
    }
    let out = sb.cmd().arg("cleanup").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(mounts_under(sb.state.path()).is_empty(), "{:?}", mounts_under(sb.state.path()));
    sb.assert_no_leaks();
}

#[test]
fn written_files_run_only_without_a_command_list() {
    // With a writable root and spawning allowed, a program can write an executable file; it
    // runs only when no allowedCommands list restricts execution (Landlock rules name files
    // that exist when the run starts, and the sticky layer cannot replace those).
    let sb = sandbox_test!();
    let code = r##"
import fs from "node:fs";
import { spawnSync } from "node:child_process";
fs.mkdirSync("/opt/tool", { recursive: true });
fs.writeFileSync("/opt/tool/run.js", "#!/usr/local/bin/bun\nconsole.log('written file ran');\n", { mode: 0o755 });
const outcome = (r: any) => r.error ? r.error.code : (r.status === 0 ? String(r.stdout).trim() : "exit " + r.status);
console.log(JSON.stringify({
  written: outcome(spawnSync("/opt/tool/run.js", [])),
  runtime: outcome(spawnSync("/usr/local/bin/bun", ["-e", "console.log('runtime ran')"])),
  replace: (() => { try { fs.renameSync("/opt/tool/run.js", "/usr/local/bin/bun"); return "replaced"; } catch (e: any) { return e.code; } })(),
}));
"##;
    let listed = "security:\n  filesystem:\n    readOnly: false\n  process:\n    allowSpawn: true\n    allowedCommands: [/usr/local/bin/bun]\n";
    let any = "security:\n  filesystem:\n    readOnly: false\n  process:\n    allowSpawn: true\n";
    let dir = service(&sb, "rw-exec-listed", "bun", "", listed, code);
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(r["status"], "ok", "{r}\n{}", stderr_of(&out));
    let v = output(&r);
    assert_eq!(v["runtime"], "runtime ran", "spawning is allowed: {v}");
    assert_eq!(v["written"], "EACCES", "{v}");
    assert_eq!(v["replace"], "EPERM", "{v}");
    let dir = service(&sb, "rw-exec-any", "bun", "", any, code);
    let (out, r) = sb.run_json(&dir, &[]);
    assert_eq!(r["status"], "ok", "{r}\n{}", stderr_of(&out));
    let v = output(&r);
    assert_eq!(v["written"], "written file ran", "{v}");
    sb.assert_no_leaks();
}
