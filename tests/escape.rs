//! The escape-attempt suite: hostile programs (`tests/attacks/*.ts`, each opening with what it
//! tries and why it must fail) run through the real `ignite` binary against the default sandbox.
//! The default policy lets no process be created, so the attacks that need child processes run
//! with a policy file that allows exactly what they need (`FORK_ONLY`, `SPAWN_BUN`; the attack's
//! header says so), and `*_default_policy` rows show the default stopping them at the first fork.
//!
//! Each row of the table below names a program, the runtime and limits it runs with, and the
//! exact outcome expected: the errno each system call must get, or the status ignite must report
//! (and the counter that proves why). Every run is then checked for effects on the host: no
//! process of the run left (found by a nonce in its environment or by its cgroup), no container,
//! cgroup, mount or state left, host kernel settings (core_pattern, sysrq, release_agent, ...)
//! unchanged, a canary file and everything else in the test's work directory untouched, and the
//! shared runtime rootfs and the entrypoint binary unmodified.
//!
//! To add an attack: write `tests/attacks/<file>.ts` (header lines `// Attack:` and
//! `// Must fail:`), add a row. Rows for policies or audit mode can reuse the same programs with
//! other service files (`files`) or flags (`args`) and a different expectation.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use serde_json::{Value, json};

/// Something the test arranges on the host before the run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Setup {
    None,
    /// A listener on the host's 127.0.0.1; its port goes in the input as `port`.
    HostListener,
    /// Symlinks in the service directory pointing out of it: `leak.txt` to the canary,
    /// `hostroot` to `/`, `node_modules` to the canary's directory.
    ServiceLinks,
    /// The masked paths that exist on this host go in the input as `masked`.
    MaskedPaths,
    /// A concurrent run of the same service (input `role: "holder"`) is started first; its
    /// first line of output goes in the input as `holder`, and it is interrupted (SIGINT to its
    /// ignite) after the row's runs.
    ConcurrentHolder,
}

/// One row of the table.
struct Attack {
    /// `tests/attacks/<file>.ts`, run as the service's entry.
    file: &'static str,
    runtime: &'static str,
    /// Extra `service.yaml` lines (limits), each indented by two spaces.
    yaml: &'static str,
    /// Extra `ignite run` arguments.
    args: &'static [&'static str],
    /// Extra input fields (a JSON object); the harness adds `nonce`, `run` and `canary`.
    input: &'static str,
    /// How many times the same service runs (persistence attacks run twice).
    runs: u32,
    setup: Setup,
    /// Extra files in the service directory (e.g. a policy file, later).
    files: &'static [(&'static str, &'static str)],
    expect: fn(&[Outcome]),
}

const BUN: Attack = Attack {
    file: "",
    runtime: "bun",
    yaml: "",
    args: &[],
    input: "{}",
    runs: 1,
    setup: Setup::None,
    files: &[],
    expect: unspecified,
};

/// Processes may fork but exec nothing.
const FORK_ONLY: &[(&str, &str)] =
    &[("ignite.policy.yaml", "security:\n  process:\n    allowSpawn: true\n    allowedCommands: []\n")];
/// Processes may start bun, and nothing else.
const SPAWN_BUN: &[(&str, &str)] = &[(
    "ignite.policy.yaml",
    "security:\n  process:\n    allowSpawn: true\n    allowedCommands: [/usr/local/bin/bun]\n",
)];

fn unspecified(_: &[Outcome]) {
    panic!("this attack has no expectation");
}

/// What one run produced.
struct Outcome {
    /// The program's own exit code (`None` when a signal ended it).
    exit: Option<i32>,
    report: Value,
}

impl Outcome {
    fn status(&self) -> &str {
        self.report["status"].as_str().unwrap_or_default()
    }
    fn metrics(&self) -> &Value {
        &self.report["metrics"]
    }
    fn stdout(&self) -> &str {
        self.report["stdout"].as_str().unwrap_or_default()
    }
    fn stderr(&self) -> &str {
        self.report["stderr"].as_str().unwrap_or_default()
    }
    /// The attack's findings: the last line of its stdout, as JSON.
    fn findings(&self) -> Value {
        let line = self.stdout().lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
        serde_json::from_str(line).unwrap_or_else(|e| panic!("no findings line ({e}) in the report: {:#}", self.report))
    }
}

/// The program ran to the end (exit 0) and found exactly `want`.
fn found(o: &[Outcome], want: Value) {
    let [o] = o else { panic!("expected one run, got {}", o.len()) };
    assert_eq!((o.status(), o.exit), ("ok", Some(0)), "the attack did not finish normally: {:#}", o.report);
    assert_eq!(o.findings(), want, "report: {:#}", o.report);
}

/// Every run ran to the end and found what `want` lists for it, in order.
fn found_each(o: &[Outcome], want: &[Value]) {
    assert_eq!(o.len(), want.len());
    for (o, want) in o.iter().zip(want) {
        assert_eq!((o.status(), o.exit), ("ok", Some(0)), "the attack did not finish normally: {:#}", o.report);
        assert_eq!(&o.findings(), want, "report: {:#}", o.report);
    }
}

/// The kernel's OOM killer ended the program at `limit_mb`, as the cgroup's counter says.
fn oom_killed(o: &[Outcome], limit_mb: f64) {
    let [o] = o else { panic!("expected one run") };
    assert_eq!((o.status(), o.exit), ("oom", None), "{:#}", o.report);
    assert_eq!(o.report["signal"], "SIGKILL", "{:#}", o.report);
    assert!(o.metrics()["oomKills"].as_u64().unwrap_or(0) >= 1, "{:#}", o.report);
    let peak = o.metrics()["memoryPeakMb"].as_f64().unwrap_or(f64::MAX);
    assert!(peak <= limit_mb + 0.5, "memory peak {peak} MiB above the {limit_mb} MiB limit: {:#}", o.report);
}

/// The time limit ended the program; `signal` is what finally stopped it.
fn timed_out(o: &Outcome, signal: &str) {
    assert_eq!((o.status(), o.exit), ("timeout", None), "{:#}", o.report);
    assert_eq!(o.report["signal"], signal, "{:#}", o.report);
}

/// The pids cgroup refused task creation and the sandbox never exceeded its 128 tasks.
fn pids_capped(o: &Outcome) {
    let m = o.metrics();
    assert!(m["pidsLimitHits"].as_u64().unwrap_or(0) >= 1, "the pids limit was never hit: {m}");
    assert!(m["pidsPeak"].as_u64().is_some_and(|p| p <= 128), "more than 128 tasks: {m}");
}

/// ignite killed the program at the output cap of `stream`, after it wrote more than `limit` bytes.
fn output_capped(o: &Outcome, stream: &str, limit: usize) {
    assert_eq!((o.status(), o.exit), ("output_limit", None), "{:#}", o.report);
    assert_eq!(o.report[format!("{stream}Truncated")], true, "{:#}", o.report);
    let bytes = o.metrics()[format!("{stream}Bytes")].as_u64().unwrap_or(0);
    assert!(bytes > limit as u64, "the program wrote only {bytes} bytes to {stream}");
}

/// `errno` if the host has `path`, else ENOENT (the sandbox sees the host's /proc and /sys).
fn errno_if_host_has(path: &str, errno: &str) -> Value {
    json!(if Path::new(path).exists() { errno } else { "ENOENT" })
}

/// Whether this test process holds a capability (ignite and runc run with the same set).
fn host_has_capability(bit: u32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let eff = status.lines().find_map(|l| l.strip_prefix("CapEff:")).expect("CapEff").trim();
    u64::from_str_radix(eff, 16).expect("CapEff hex") & (1 << bit) != 0
}

const CAP_SYS_RESOURCE: u32 = 24;
const OUTPUT_LIMIT: usize = 100_000;

macro_rules! attacks {
    ($($name:ident => $attack:expr;)*) => {
        $(
            #[test]
            fn $name() {
                run_attack(stringify!($name), &$attack);
            }
        )*

        fn table() -> Vec<(&'static str, Attack)> {
            vec![$((stringify!($name), $attack)),*]
        }
    };
}

attacks! {
    // --- Resource exhaustion -------------------------------------------------------------------
    fork_bomb => Attack {
        file: "fork_bomb",
        yaml: "  memoryMb: 256\n  timeoutMs: 10000\n",
        files: FORK_ONLY,
        expect: |o| {
            found(o, json!({ "fork": "EAGAIN" }));
            pids_capped(&o[0]);
        },
        ..BUN
    };
    fork_bomb_default_policy => Attack {
        file: "fork_bomb",
        yaml: "  memoryMb: 256\n  timeoutMs: 10000\n",
        expect: |o| {
            found(o, json!({ "fork": "EPERM" }));
            assert_eq!(o[0].metrics()["pidsLimitHits"], 0, "{:#}", o[0].report);
        },
        ..BUN
    };
    thread_bomb => Attack {
        file: "thread_bomb",
        yaml: "  memoryMb: 256\n  timeoutMs: 10000\n",
        expect: |o| {
            found(o, json!({ "pthread_create": "EAGAIN", "underCap": true }));
            pids_capped(&o[0]);
        },
        ..BUN
    };
    heap_bomb_bun => HEAP_BOMB;
    heap_bomb_node => Attack { runtime: "node", ..HEAP_BOMB };
    heap_bomb_deno => Attack { runtime: "deno", ..HEAP_BOMB };
    heap_bomb_quickjs => Attack { runtime: "quickjs", ..HEAP_BOMB };
    buffer_bomb_bun => Attack { file: "buffer_bomb", ..HEAP_BOMB };
    buffer_bomb_node => Attack { file: "buffer_bomb", runtime: "node", ..HEAP_BOMB };
    buffer_bomb_deno => Attack { file: "buffer_bomb", runtime: "deno", ..HEAP_BOMB };
    wasm_memory_bomb_bun => Attack { file: "wasm_memory_bomb", ..HEAP_BOMB };
    wasm_memory_bomb_node => Attack { file: "wasm_memory_bomb", runtime: "node", ..HEAP_BOMB };
    wasm_memory_bomb_deno => Attack { file: "wasm_memory_bomb", runtime: "deno", ..HEAP_BOMB };
    tmp_fill_stops_at_its_size => Attack {
        file: "fs_fill",
        yaml: "  memoryMb: 256\n",
        input: r#"{"dir":"/tmp"}"#,
        expect: |o| fills_up_to_64_mib(o),
        ..BUN
    };
    shm_fill_stops_at_its_size => Attack {
        file: "fs_fill",
        yaml: "  memoryMb: 256\n",
        input: r#"{"dir":"/dev/shm"}"#,
        expect: |o| fills_up_to_64_mib(o),
        ..BUN
    };
    tmp_fill_beyond_the_memory_limit => Attack {
        file: "fs_fill",
        yaml: "  memoryMb: 48\n  timeoutMs: 20000\n",
        input: r#"{"dir":"/tmp"}"#,
        expect: |o| oom_killed(o, 48.0),
        ..BUN
    };
    shm_fill_beyond_the_memory_limit => Attack {
        file: "fs_fill",
        yaml: "  memoryMb: 48\n  timeoutMs: 20000\n",
        input: r#"{"dir":"/dev/shm"}"#,
        expect: |o| oom_killed(o, 48.0),
        ..BUN
    };
    inode_bomb => Attack {
        file: "inode_bomb",
        yaml: "  memoryMb: 48\n  timeoutMs: 20000\n",
        expect: |o| oom_killed(o, 48.0),
        ..BUN
    };
    write_everywhere_bun => WRITE_EVERYWHERE;
    write_everywhere_node => Attack { runtime: "node", ..WRITE_EVERYWHERE };
    stdout_one_huge_line => Attack {
        file: "stdout_one_line",
        yaml: "  timeoutMs: 20000\n",
        args: &["--output-limit", "100000"],
        expect: |o| {
            let o = &o[0];
            output_capped(o, "stdout", OUTPUT_LIMIT);
            assert_eq!(o.stdout(), "A".repeat(OUTPUT_LIMIT), "exactly the first {OUTPUT_LIMIT} bytes are kept");
        },
        ..BUN
    };
    stdout_binary_garbage => Attack {
        file: "stdout_binary",
        yaml: "  timeoutMs: 20000\n",
        args: &["--output-limit", "100000"],
        expect: |o| {
            // run_attack already parsed ignite's stdout as exactly one JSON document.
            let o = &o[0];
            output_capped(o, "stdout", OUTPUT_LIMIT);
            assert!(o.stdout().contains("\u{1b}]52;c;"), "the escape sequences are kept as data, inside the report");
            assert_eq!(o.report["success"], false);
        },
        ..BUN
    };
    stderr_flood => Attack {
        file: "stderr_flood",
        yaml: "  timeoutMs: 20000\n",
        args: &["--output-limit", "100000"],
        expect: |o| {
            let o = &o[0];
            output_capped(o, "stderr", OUTPUT_LIMIT);
            assert_eq!(o.stderr().len(), OUTPUT_LIMIT);
            assert_eq!(o.report["stdoutTruncated"], false);
        },
        ..BUN
    };
    cpu_burn => Attack {
        file: "cpu_burn",
        yaml: "  timeoutMs: 1500\n  cpuLimit: 0.5\n",
        expect: |o| {
            let o = &o[0];
            assert_eq!((o.status(), o.exit), ("timeout", None), "{:#}", o.report);
            // Five spinning threads would take every core of the host; the quota allows half of one
            // over the sandbox's whole life (plus one 100 ms period of slack).
            let cpu = o.metrics()["cpuTimeMs"].as_f64().unwrap_or(f64::MAX);
            let wall = o.metrics()["wallTimeMs"].as_f64().unwrap_or(0.0);
            assert!(cpu <= 0.5 * wall + 100.0, "{cpu} ms of CPU in {wall} ms at a 0.5 CPU quota: {:#}", o.report);
        },
        ..BUN
    };
    sigstop_own_process_group => Attack {
        file: "sigstop_self",
        yaml: "  timeoutMs: 1000\n",
        expect: |o| {
            timed_out(&o[0], "SIGKILL");
            assert_eq!(o[0].stdout(), "stopping\n", "the program must never run on after stopping itself");
        },
        ..BUN
    };
    signals_to_the_entrypoint => Attack {
        file: "signal_init",
        expect: |o| {
            let [o] = o else { panic!("one run") };
            // The entrypoint survived: it reported the program's own exit code and its metrics.
            assert_eq!((o.status(), o.exit), ("error", Some(7)), "{:#}", o.report);
            assert!(o.metrics()["executionTimeMs"].as_f64().is_some(), "{:#}", o.report);
            assert_eq!(
                o.findings(),
                json!({
                    "kill_init_sigkill": 0, "kill_init_sigstop": 0, "kill_init_sigsegv": 0,
                    "tkill_init_sigkill": 0, "kill_all_sigstop": "ESRCH",
                })
            );
        },
        ..BUN
    };
    sigterm_ignored => Attack {
        file: "sigterm_ignored",
        yaml: "  timeoutMs: 1000\n",
        expect: |o| {
            timed_out(&o[0], "SIGKILL");
            assert_eq!(o[0].stdout(), "ready\nignored SIGTERM\n");
        },
        ..BUN
    };
    double_fork_to_outlive_the_run => Attack {
        file: "double_fork",
        files: FORK_ONLY,
        // The process check after the run is the real assertion: the grandchild is gone.
        expect: |o| found(o, json!({ "middleExit": 0, "survivors": 1 })),
        ..BUN
    };
    double_fork_default_policy => Attack {
        file: "double_fork",
        // No child at all: wait4 finds none (its status stays 0) and nobody else is here.
        expect: |o| found(o, json!({ "middleExit": 0, "survivors": 0 })),
        ..BUN
    };

    // --- Persistence between runs (each runs twice) ----------------------------------------------
    persist_files => Attack {
        file: "persist_files",
        runs: 2,
        // `ignite` in /tmp is every run's own read-only input directory's mount point (empty
        // unless its input is too large for IGNITE_INPUT), not something run 1 left.
        expect: |o| {
            found_each(o, &[json!({ "planted": [".hidden", "ignite", "marker"] }), json!({ "/tmp": ["ignite"], "/dev/shm": [] })])
        },
        ..BUN
    };
    persist_keyring => Attack {
        file: "persist_keyring",
        runs: 2,
        expect: |o| {
            let denied = |run: u32| json!({
                "run": run, "add_key_user": "EPERM", "add_key_session": "EPERM", "request_key": "EPERM",
                "keyctl_get_user_keyring": "EPERM", "keyctl_search": "EPERM", "proc_keys_bytes": 0,
            });
            found_each(o, &[denied(1), denied(2)]);
        },
        ..BUN
    };
    persist_sysv_and_posix_ipc => Attack {
        file: "persist_ipc",
        runs: 2,
        expect: |o| found_each(o, &[
            json!({ "run": 1, "shm": "created", "msg": "created", "sem": "created", "mq": "created" }),
            json!({ "run": 2, "shm": "ENOENT", "msg": "ENOENT", "sem": "ENOENT", "mq": "ENOENT" }),
        ]),
        ..BUN
    };
    persist_abstract_socket => Attack {
        file: "persist_abstract_socket",
        runs: 2,
        files: FORK_ONLY,
        expect: |o| found_each(o, &[
            json!({ "run": 1, "bound": 0, "listening": 0, "holder": 0 }),
            json!({ "run": 2, "connect": "ECONNREFUSED", "bindSameName": 0 }),
        ]),
        ..BUN
    };

    // --- Network -------------------------------------------------------------------------------
    net_outbound => Attack {
        file: "net_outbound",
        expect: |o| found(o, json!({
            "tcp_public": "ENETUNREACH", "tcp_metadata": "ENETUNREACH", "tcp_private": "ENETUNREACH",
            "tcp_public6": "ENETUNREACH", "udp_dns": "ENETUNREACH", "udp_dns6": "ENETUNREACH",
        })),
        ..BUN
    };
    net_dns => Attack {
        file: "net_dns",
        yaml: "  timeoutMs: 15000\n",
        expect: |o| found(o, json!({ "lookup": "EAI_AGAIN", "http": "EAI_AGAIN" })),
        ..BUN
    };
    net_host_loopback => Attack {
        file: "net_host_loopback",
        setup: Setup::HostListener,
        expect: |o| found(o, json!({ "connect": "ECONNREFUSED" })),
        ..BUN
    };
    net_raw_sockets => Attack {
        file: "net_raw_sockets",
        expect: |o| found(o, json!({
            "raw_icmp": "EPERM", "raw_ip": "EPERM", "raw_icmp6": "EPERM", "packet_raw": "EPERM",
            "packet_dgram": "EPERM", "ping": "EACCES", "ping6": "EACCES",
        })),
        ..BUN
    };
    net_socket_families => Attack {
        file: "net_socket_families",
        expect: |o| found(o, json!({ "opened": [1, 2, 10, 16], "vsock": "EPERM", "alg": "EPERM", "allOthersEPERM": true })),
        ..BUN
    };
    net_netlink => Attack {
        file: "net_netlink",
        expect: |o| found(o, json!({
            "other": { "sock_diag": "EPERM", "xfrm": "EPERM", "audit": "EPERM", "netfilter": "EPERM",
                       "kobject_uevent": "EPERM", "generic": "EPERM" },
            "route": "opened", "set_lo_up": "EPERM", "new_dummy_link": "EPERM", "new_address": "EPERM",
        })),
        ..BUN
    };
    io_uring => Attack {
        file: "io_uring",
        expect: |o| found(o, json!({ "setup": "ENOSYS", "enter": "ENOSYS", "register": "ENOSYS" })),
        ..BUN
    };

    // --- System calls --------------------------------------------------------------------------
    sys_mount_family => Attack {
        file: "sys_mount",
        expect: |o| found(o, json!({
            "mount_tmpfs": "EPERM", "remount_root_rw": "EPERM", "bind_proc": "EPERM", "umount_proc": "EPERM",
            "pivot_root": "EPERM", "chroot": "EPERM", "open_tree": "EPERM", "move_mount": "EPERM",
            "fsopen": "EPERM", "fsconfig": "EPERM", "fsmount": "EPERM", "fspick": "EPERM", "mount_setattr": "EPERM",
        })),
        ..BUN
    };
    sys_unshare_setns_clone => Attack {
        file: "sys_namespaces",
        expect: |o| {
            let all = |keys: &[&str]| Value::Object(keys.iter().map(|k| ((*k).to_string(), json!("EPERM"))).collect());
            found(o, json!({
                "unshare": all(&["user", "mount", "net", "pid", "ipc", "uts", "cgroup", "time"]),
                "clone": all(&["user", "mount", "net", "pid", "ipc", "uts", "cgroup"]),
                "clone3": "ENOSYS",
                "setns": all(&["user", "mnt", "net", "pid", "ipc", "uts", "cgroup"]),
            }));
        },
        ..BUN
    };
    sys_ptrace_and_process_memory => Attack {
        file: "sys_ptrace",
        files: SPAWN_BUN,
        expect: |o| found(o, json!({
            "traceme": "EPERM", "attach_init": "EPERM", "seize_init": "EPERM", "attach_child": "EPERM",
            "vm_readv_init": "EPERM", "vm_writev_child": "EPERM", "pidfd_open_init": "opened",
            "pidfd_getfd_report_pipe": "EPERM", "kcmp": "EPERM", "init_mem": "EACCES",
            "init_environ": "EACCES", "init_fd_report_pipe": "EACCES",
        })),
        ..BUN
    };
    sys_bpf => Attack {
        file: "sys_bpf",
        expect: |o| found(o, json!({ "map_create": "EPERM", "prog_load": "EPERM", "prog_load_unprivileged_check": "EPERM" })),
        ..BUN
    };
    sys_perf_event_open => Attack {
        file: "sys_perf_event",
        expect: |o| found(o, json!({ "software_self": "EPERM", "hardware_all_cpu0": "EPERM", "tracepoint": "EPERM" })),
        ..BUN
    };
    sys_userfaultfd => Attack {
        file: "sys_userfaultfd",
        expect: |o| found(o, json!({ "userfaultfd": "EPERM", "user_mode_only": "EPERM", "device": "ENOENT" })),
        ..BUN
    };
    sys_open_by_handle_at => Attack {
        file: "sys_open_by_handle",
        expect: |o| found(o, json!({ "name_to_handle_at": "EPERM", "open_by_handle_at": "EPERM" })),
        ..BUN
    };
    sys_personality => Attack {
        file: "sys_personality",
        expect: |o| found(o, json!({
            "addr_no_randomize": "EPERM", "read_implies_exec": "EPERM", "per_linux32": "EPERM",
            "uname26": "EPERM", "reset_per_linux": 0, "query": 0,
        })),
        ..BUN
    };
    sys_tiocsti => Attack {
        file: "sys_tiocsti",
        expect: |o| found(o, json!({
            "stdin": "ENOTTY", "stdout": "ENOTTY", "stderr": "ENOTTY", "linux_stdin": "ENOTTY",
            "dev_tty": "ENXIO", "dev_ptmx": "ENOENT",
        })),
        ..BUN
    };
    sys_32bit_abi => Attack {
        file: "sys_32bit_abi",
        files: FORK_ONLY,
        // Signal 31 is SIGSYS: the seccomp filter's bad-architecture action.
        expect: |o| found(o, json!({ "int80": "killed by signal 31", "x32": "killed by signal 31" })),
        ..BUN
    };
    sys_kernel_admin => Attack {
        file: "sys_kernel_admin",
        expect: |o| {
            let keys = [
                "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
                "swapon", "syslog_read_all", "acct", "quotactl", "iopl", "ioperm", "settimeofday",
                "clock_settime", "adjtimex", "sethostname", "setdomainname", "vhangup",
                "mknod_block_device", "mknod_char_device", "modify_ldt", "migrate_pages_of_init",
                "setuid_root", "setgid_root", "capset_all",
            ];
            found(o, Value::Object(keys.iter().map(|k| ((*k).to_string(), json!("EPERM"))).collect()));
        },
        ..BUN
    };

    // --- /proc and /sys ------------------------------------------------------------------------
    proc_sysctl_writes => Attack {
        file: "proc_sysctl_writes",
        expect: |o| found(o, json!({
            "sysrq_trigger": errno_if_host_has("/proc/sysrq-trigger", "EACCES"),
            "sysrq": errno_if_host_has("/proc/sys/kernel/sysrq", "EACCES"),
            "core_pattern": "EACCES",
            "modprobe": errno_if_host_has("/proc/sys/kernel/modprobe", "EACCES"),
            "hotplug": errno_if_host_has("/proc/sys/kernel/hotplug", "EACCES"),
            "randomize_va_space": "EACCES",
            "drop_caches": "EACCES",
            "hostname": "EACCES",
        })),
        ..BUN
    };
    cgroup_release_agent => Attack {
        file: "cgroup_release_agent",
        expect: |o| found(o, json!({
            "sys_fs_cgroup": [], "own_cgroup": true, "mount_cgroup_v1": "EPERM", "mount_cgroup2": "EPERM",
            "unshare_cgroup": "EPERM", "release_agents_and_procs": [], "move_to_root_cgroup": "ENOENT",
        })),
        ..BUN
    };
    proc_masked_paths => Attack {
        file: "proc_masked_paths",
        setup: Setup::MaskedPaths,
        expect: |o| {
            let masked: serde_json::Map<String, Value> =
                host_masked_paths().into_iter().map(|p| (p.to_string(), json!(0))).collect();
            let empty_or_absent = |p: &str| if Path::new(p).is_dir() { json!([]) } else { json!("ENOENT") };
            found(o, json!({
                "masked": masked,
                // /proc/kallsyms is masked (it is in `masked` too), so no address is shown
                // whatever the host's kernel.kptr_restrict and perf_event_paranoid say.
                "kallsyms_nonzero_addresses": 0,
                "kmsg": "ENOENT",
                "debugfs": empty_or_absent("/sys/kernel/debug"),
                "tracefs": empty_or_absent("/sys/kernel/tracing"),
            }));
        },
        ..BUN
    };
    oom_score_adj => Attack {
        file: "oom_score_adj",
        expect: |o| {
            // runc pins the floor at 1000 only if it holds CAP_SYS_RESOURCE when it writes the
            // value; some hosts (e.g. VMs whose root lacks it) cannot, and then the program can
            // go down to 0, never below: a host process stays preferred over it only at equal size.
            if host_has_capability(CAP_SYS_RESOURCE) {
                found(o, json!({ "lower_to_minus_1000": "EACCES", "lower_to_0": "EACCES", "oom_adj_legacy": "EACCES", "now": "1000" }));
            } else {
                found(o, json!({ "lower_to_minus_1000": "EACCES", "lower_to_0": "WRITTEN", "oom_adj_legacy": "EACCES", "now": "0" }));
            }
        },
        ..BUN
    };

    // --- Known container escapes -----------------------------------------------------------------
    cve_2019_5736_overwrite_binaries => Attack {
        file: "cve_2019_5736",
        expect: |o| found(o, json!({
            "proc_self_exe": "EACCES", "proc_init_exe": "EACCES", "o_path_reopen_writable": "EACCES",
            "open_self_exe_wronly": "EACCES", "entrypoint": "EACCES", "runtime_binary": "EACCES", "libc": "EACCES",
        })),
        ..BUN
    };
    cve_2024_21626_leaked_descriptors => Attack {
        file: "cve_2024_21626",
        expect: |o| {
            let [one] = o else { panic!("one run") };
            let mut f = one.findings();
            // Besides its three stdio pipes, the program holds only the runtime's own event-loop
            // descriptors (epoll, eventfd): no file, no directory, nothing of the host.
            let fds: Vec<String> = serde_json::from_value(f["fds"].take()).expect("fds");
            let (pipes, other): (Vec<_>, Vec<_>) = fds.iter().partition(|t| *t == "pipe:");
            assert_eq!(pipes.len(), 3, "{fds:?}");
            assert!(other.iter().all(|t| t.starts_with("anon_inode:")), "{fds:?}");
            f.as_object_mut().expect("object").remove("fds");
            assert_eq!(f, json!({
                "directories": [], "escapes": [], "cwd": "/app", "cwdLink": "/app", "root": "/",
                "initFds": "EACCES", "initCwd": "EACCES",
            }));
        },
        ..BUN
    };

    // --- Identity ------------------------------------------------------------------------------
    identity_bun => IDENTITY;
    identity_node => Attack { runtime: "node", ..IDENTITY };
    per_user_limits_are_per_run => Attack {
        file: "per_user_limits",
        yaml: "  timeoutMs: 60000\n",
        setup: Setup::ConcurrentHolder,
        expect: |o| found(o, json!({
            "holderStopped": "EMFILE", "holderHeldSome": true, "inotify": "opened",
            "ownRange": true, "notTheHoldersUid": true,
        })),
        ..BUN
    };

    // --- Host-side handling of what the sandbox produces -------------------------------------------
    forge_the_report => Attack {
        file: "forge_report",
        expect: |o| {
            let [o] = o else { panic!("one run") };
            assert_eq!((o.status(), o.exit), ("error", Some(3)), "{:#}", o.report);
            assert_eq!(o.report["success"], false);
            assert!(o.stdout().starts_with(r#"{"service":"attack","status":"ok""#), "the forgery is only data: {:#}", o.report);
            assert_eq!(o.findings(), json!({ "pipes_beyond_stdio": [], "proc1_fd3": "EACCES" }));
        },
        ..BUN
    };
    planted_paths_in_tmp_and_output => Attack {
        file: "planted_paths",
        expect: |o| found(o, json!({
            "fifo": 0,
            "resolved": { "shadow": "ENOENT", "canary": "ENOENT", "init_root": "EACCES",
                          "up": "the sandbox's /etc/passwd", "state": "ENOENT" },
        })),
        ..BUN
    };
    planted_service_links_bun => PLANTED_SERVICE_LINKS;
    planted_service_links_node => Attack { runtime: "node", ..PLANTED_SERVICE_LINKS };
}

// Rows that run on several runtimes (or with several files).

const HEAP_BOMB: Attack =
    Attack { file: "heap_bomb", yaml: "  memoryMb: 64\n  timeoutMs: 20000\n", expect: oom_killed_at_64_mib, ..BUN };

fn oom_killed_at_64_mib(o: &[Outcome]) {
    oom_killed(o, 64.0);
}

const WRITE_EVERYWHERE: Attack = Attack { file: "write_everywhere", expect: only_tmp_and_shm_writable, ..BUN };

fn only_tmp_and_shm_writable(o: &[Outcome]) {
    found(o, json!({ "writable": ["/dev/shm", "/tmp"], "errors": ["EACCES", "EROFS"], "checkedMoreThan10": true }));
}

const IDENTITY: Attack = Attack { file: "identity", expect: unprivileged, ..BUN };

fn unprivileged(o: &[Outcome]) {
    let none = "0000000000000000";
    let [one] = o else { panic!("one run") };
    assert_eq!((one.status(), one.exit), ("ok", Some(0)), "the attack did not finish normally: {:#}", one.report);
    let mut f = one.findings();
    // Real, effective, saved and filesystem ids: all the run's own uid (see ignite::sandbox::identity),
    // and the gid the same number.
    let uid = f["Uid"][0].as_str().and_then(|u| u.parse::<u32>().ok()).unwrap_or_else(|| panic!("{f}"));
    assert!(ignite::sandbox::identity::is_run_uid(uid), "uid {uid} is not a run uid: {f}");
    let id = json!([uid.to_string(), uid.to_string(), uid.to_string(), uid.to_string()]);
    assert_eq!((&f["Uid"], &f["Gid"]), (&id, &id), "{f}");
    let object = f.as_object_mut().expect("object");
    object.remove("Uid");
    object.remove("Gid");
    assert_eq!(
        f,
        json!({
            "CapInh": none, "CapPrm": none, "CapEff": none, "CapBnd": none, "CapAmb": none,
            "NoNewPrivs": "1", "Seccomp": "2", "Groups": [],
        }),
    );
}

const PLANTED_SERVICE_LINKS: Attack =
    Attack { file: "planted_service_links", setup: Setup::ServiceLinks, expect: links_resolve_inside, ..BUN };

fn links_resolve_inside(o: &[Outcome]) {
    found(
        o,
        json!({ "via_link": "ENOENT", "via_root_link": "ENOENT", "canary_directly": "ENOENT", "node_modules": "ENOENT" }),
    );
}

fn fills_up_to_64_mib(o: &[Outcome]) {
    let [o] = o else { panic!("one run") };
    assert_eq!((o.status(), o.exit), ("ok", Some(0)), "{:#}", o.report);
    let f = o.findings();
    assert_eq!(f["write"], "ENOSPC", "{f}");
    // The attack's own helper files may take a few pages of the 64 MiB.
    let bytes = f["bytes"].as_u64().expect("bytes");
    assert!((63 << 20..=64 << 20).contains(&bytes), "{bytes} bytes written before ENOSPC");
}

fn host_masked_paths() -> Vec<&'static str> {
    ignite::sandbox::spec::MASKED_PATHS.iter().copied().filter(|p| Path::new(p).exists()).collect()
}

/// Every attack file is in the table and says what it tries and why it must fail; every row's
/// file exists. Needs no sandbox.
#[test]
fn every_attack_is_documented_and_in_the_table() {
    let dir = repo().join("tests/attacks");
    let table = table();
    assert!(table.len() >= 40, "the suite has {} attacks; at least 40 are required", table.len());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("tests/attacks") {
        let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".ts") else { continue };
        if stem.starts_with('_') {
            continue; // shared helpers
        }
        let text = std::fs::read_to_string(dir.join(&name)).expect("read");
        assert!(text.starts_with("// Attack: "), "{name} must open with a `// Attack:` line");
        assert!(
            text.lines().take_while(|l| l.starts_with("//")).any(|l| l.starts_with("// Must fail: ")),
            "{name}: no `// Must fail:` line in its header"
        );
        assert!(table.iter().any(|(_, a)| a.file == stem), "{name} is not in the table");
        files.push(stem.to_string());
    }
    for (name, a) in &table {
        assert!(files.iter().any(|f| f == a.file), "row {name}: tests/attacks/{}.ts does not exist", a.file);
    }
}

// --- The harness ---------------------------------------------------------------------------------

fn run_attack(name: &str, attack: &Attack) {
    if !require_sandbox() {
        return;
    }
    let sb = Sandbox::new();
    let nonce = nonce();
    let canary = sb.service("canary", &[("secret.txt", &format!("host secret {nonce}\n"))]).join("secret.txt");

    let source = std::fs::read_to_string(repo().join("tests/attacks").join(format!("{}.ts", attack.file)))
        .unwrap_or_else(|e| panic!("tests/attacks/{}.ts: {e}", attack.file));
    let helper = std::fs::read_to_string(repo().join("tests/attacks/_sys.ts")).expect("tests/attacks/_sys.ts");
    let yaml = format!("service:\n  name: attack\n  runtime: {}\n  entry: index.ts\n{}", attack.runtime, attack.yaml);
    let mut files: Vec<(&str, &str)> = vec![("service.yaml", &yaml), ("index.ts", &source), ("_sys.ts", &helper)];
    files.extend_from_slice(attack.files);
    let dir = sb.service(name, &files);

    let mut input: serde_json::Map<String, Value> =
        serde_json::from_str(attack.input).expect("row input is a JSON object");
    input.insert("nonce".into(), json!(nonce));
    input.insert("canary".into(), json!(canary));
    let listener = match attack.setup {
        Setup::HostListener => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("listen on the host's loopback");
            l.set_nonblocking(true).expect("nonblocking");
            input.insert("port".into(), json!(l.local_addr().expect("addr").port()));
            Some(l)
        }
        Setup::ServiceLinks => {
            let link = |target: &Path, name: &str| std::os::unix::fs::symlink(target, dir.join(name)).expect("symlink");
            link(&canary, "leak.txt");
            link(Path::new("/"), "hostroot");
            link(canary.parent().expect("canary dir"), "node_modules");
            None
        }
        Setup::MaskedPaths => {
            input.insert("masked".into(), json!(host_masked_paths()));
            None
        }
        Setup::None | Setup::ConcurrentHolder => None,
    };
    let holder = (attack.setup == Setup::ConcurrentHolder).then(|| {
        let mut holder_input = input.clone();
        holder_input.insert("role".into(), json!("holder"));
        holder_input.insert("run".into(), json!(0));
        let mut child = sb
            .cmd()
            .arg("run")
            .arg(&dir)
            .arg("--input")
            .arg(Value::Object(holder_input).to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn ignite");
        // Human mode streams the program's output: its first line says it holds its share.
        let mut line = String::new();
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        std::io::BufRead::read_line(&mut stdout, &mut line).expect("read the holder's line");
        let found: Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("the holder's first line is not its findings ({e}): {line:?}"));
        input.insert("holder".into(), found);
        (child, stdout)
    });

    let rootfs = rootfs_of(&sb, &dir);
    let before = HostState::capture(&sb, &rootfs);
    let mut outcomes = Vec::new();
    let mut container_ids = Vec::new();
    for run in 1..=attack.runs {
        input.insert("run".into(), json!(run));
        let out = sb
            .cmd()
            .arg("run")
            .arg(&dir)
            .arg("--json")
            .arg("--input")
            .arg(Value::Object(input.clone()).to_string())
            .args(attack.args)
            .output()
            .expect("spawn ignite");
        let report = one_json_document(&out);
        let exit = report["exitCode"].as_i64().map(|c| c as i32);
        let ignite_exit = match report["status"].as_str() {
            Some("timeout") => Some(124),
            Some("oom" | "output_limit") => Some(137),
            _ => exit, // None: a signal of the program's own, 128 + N
        };
        if let Some(code) = ignite_exit {
            assert_eq!(out.status.code(), Some(code), "ignite's exit code does not match its report: {report:#}");
        }
        container_ids.push(report["containerId"].as_str().unwrap_or_default().to_string());
        outcomes.push(Outcome { exit, report });
    }

    if let Some((mut child, _stdout)) = holder {
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("interrupt the holder");
        let status = child.wait().expect("wait for the holder");
        assert_eq!(status.code(), Some(130), "the holder's ignite did not stop as interrupted");
    }
    (attack.expect)(&outcomes);

    // The host is unaffected.
    for id in &container_ids {
        assert!(!id.is_empty(), "a report without a container id");
        sb.assert_cgroup_gone(id);
        let left = processes_of_run(&nonce, id);
        assert!(left.is_empty(), "processes of the run outlived it: {left:?}");
    }
    sb.assert_no_leaks();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert!(!mountinfo.contains(&*sb.work.path().to_string_lossy()), "mounts left under the work directory");
    if let Some(l) = listener {
        match l.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("the host's loopback listener was reached: {other:?}"),
        }
    }
    HostState::capture(&sb, &rootfs).assert_same_as(&before);
}

/// The report ignite printed: its whole stdout must be exactly one JSON document.
fn one_json_document(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("ignite's stdout is not one JSON document ({e}):\n{stdout}\nstderr:\n{}", stderr_of(out))
    })
}

/// The rootfs the run mounts, from the spec ignite generates for it.
fn rootfs_of(sb: &Sandbox, dir: &Path) -> PathBuf {
    let out = sb.cmd().arg("run").arg(dir).arg("--print-spec").output().expect("spawn ignite");
    assert_eq!(out.status.code(), Some(0), "--print-spec: {}", stderr_of(&out));
    let spec: Value = serde_json::from_slice(&out.stdout).expect("spec");
    PathBuf::from(spec["root"]["path"].as_str().expect("root.path"))
}

/// Host processes that belong to a finished run: its nonce in their environment (every process
/// the program starts inherits IGNITE_INPUT) or its container id in their cgroup path.
fn processes_of_run(nonce: &str, container_id: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_err() {
            continue;
        }
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let cgroup = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        if String::from_utf8_lossy(&environ).contains(nonce) || cgroup.contains(&format!("/{container_id}")) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push(format!("{name}: {}", String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    found
}

/// What an attack could change on the host, as seen before and after it.
#[derive(Debug, PartialEq)]
struct HostState {
    /// Host kernel settings a sandbox must never reach: core_pattern, sysrq, release_agent, ...
    kernel: BTreeMap<String, Option<String>>,
    /// Everything in the test's work directory (the service directory, the canary): kind, size,
    /// mode, mtime and content of files.
    work: BTreeMap<PathBuf, String>,
    /// The shared runtime rootfs every run executes: kind, size, mode, owner, mtime, ctime.
    rootfs: BTreeMap<PathBuf, String>,
    /// The entrypoint binary bind-mounted into every sandbox.
    init: String,
}

impl HostState {
    fn capture(sb: &Sandbox, rootfs: &Path) -> HostState {
        let mut kernel = BTreeMap::new();
        let mut files: Vec<PathBuf> = [
            "/proc/sys/kernel/core_pattern",
            "/proc/sys/kernel/core_uses_pid",
            "/proc/sys/kernel/sysrq",
            "/proc/sys/kernel/modprobe",
            "/proc/sys/kernel/hotplug",
            "/proc/sys/kernel/hostname",
            "/proc/sys/kernel/domainname",
            "/proc/sys/kernel/randomize_va_space",
            "/proc/sys/net/ipv4/ip_forward",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        // Every cgroup v1 hierarchy's mount point (release_agent is v1's; cgroup2 has none).
        // Not a listing of /sys/fs/cgroup: on a cgroup2 host that lists the cgroups themselves,
        // which come and go with every run.
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        for line in mountinfo.lines().filter(|l| l.contains(" - cgroup ")) {
            let hierarchy = PathBuf::from(line.split(' ').nth(4).unwrap());
            files.push(hierarchy.join("release_agent"));
            files.push(hierarchy.join("notify_on_release"));
        }
        for f in files {
            kernel.insert(f.display().to_string(), std::fs::read_to_string(&f).ok());
        }
        let init = std::fs::metadata(ignite_bin().with_file_name("ignite-init")).expect("ignite-init");
        HostState {
            kernel,
            work: tree(sb.work.path(), true),
            rootfs: tree(rootfs, false),
            init: format!("{} {} {}.{} {:o}", init.len(), init.ino(), init.ctime(), init.ctime_nsec(), init.mode()),
        }
    }

    fn assert_same_as(&self, before: &HostState) {
        assert_eq!(self.kernel, before.kernel, "host kernel settings changed");
        assert_eq!(self.init, before.init, "the entrypoint binary changed");
        assert_eq!(self.rootfs, before.rootfs, "the shared runtime rootfs changed");
        assert_eq!(self.work, before.work, "files outside the sandbox changed");
    }
}

/// A description of every entry under `root` (symlinks not followed).
fn tree(root: &Path, with_content: bool) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let Ok(m) = std::fs::symlink_metadata(&path) else { continue };
            let mut facts = format!(
                "{:?} {} {:o} {}:{} {}.{} {}.{}",
                m.file_type(),
                m.len(),
                m.mode(),
                m.uid(),
                m.gid(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec()
            );
            if m.file_type().is_symlink() {
                facts.push_str(&format!(" -> {:?}", std::fs::read_link(&path).ok()));
            } else if m.is_dir() {
                stack.push(path.clone());
            } else if with_content && m.len() < 1 << 20 {
                facts.push_str(&format!(" {:?}", std::fs::read(&path).ok()));
            }
            out.insert(path.strip_prefix(root).unwrap_or(&path).to_path_buf(), facts);
        }
    }
    out
}
