//! The run report: one struct for the CLI (`--json`, summary line) and the HTTP API.

pub mod full;

use serde::{Deserialize, Serialize};

/// Exit code ignite uses for its own failures (bad config, runtime missing, OCI failure).
pub const EXIT_IGNITE_ERROR: i32 = 125;
/// Exit code for a run stopped at its time limit (as coreutils `timeout`).
pub const EXIT_TIMEOUT: i32 = 124;
/// Exit code for a run killed by ignite or the kernel (OOM, output limit): 128 + SIGKILL.
pub const EXIT_KILLED: i32 = 137;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The program exited with code 0.
    Ok,
    /// The program exited non-zero or was killed by a signal it did not get from ignite.
    Error,
    /// The wall-clock limit expired; ignite stopped the program.
    Timeout,
    /// The kernel's OOM killer fired inside the sandbox's memory cgroup.
    Oom,
    /// The program exceeded the output cap; ignite stopped it.
    OutputLimit,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Timeout => "timeout",
            Status::Oom => "oom",
            Status::OutputLimit => "output_limit",
        }
    }
}

/// Measurements from channels the sandboxed program cannot write to: the cgroup and the
/// entrypoint's private descriptor. `None` means the source did not provide a value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// Runtime exec → runtime exit, measured by the entrypoint.
    pub execution_time_ms: Option<f64>,
    /// The OCI runtime launched → runtime exec: the cost of setting up the sandbox.
    pub init_time_ms: Option<f64>,
    /// Everything ignite did for this run: launch, wait, teardown.
    pub wall_time_ms: f64,
    /// Peak memory charged to the sandbox's cgroup.
    pub memory_peak_mb: Option<f64>,
    pub memory_limit_mb: u32,
    /// CPU time of the whole cgroup (all processes and threads).
    pub cpu_time_ms: Option<f64>,
    /// Highest number of tasks (processes + threads) alive at once in the cgroup.
    pub pids_peak: Option<u64>,
    /// Times a fork/clone failed because the pids limit was reached.
    pub pids_limit_hits: u64,
    pub oom_kills: u64,
    /// User/system CPU and max RSS of the runtime and its reaped children (rusage).
    pub user_cpu_ms: Option<f64>,
    pub system_cpu_ms: Option<f64>,
    pub max_rss_mb: Option<f64>,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// Where ignite's own time went, in milliseconds.
    pub phases: Phases,
    /// The run was served by a warm sandbox (started ahead, the job handed over): the launch
    /// phase and `initTimeMs` count from the handover, and the teardown follows the report.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warm: bool,
}

/// Durations of the steps of a run as ignite saw them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Phases {
    /// OCI runtime launched → program exec: namespaces, mounts, cgroup, seccomp filter. In a
    /// warm run: job handed over → program exec (the sandbox was set up ahead).
    pub launch_ms: f64,
    /// Program exec → exit reported by the entrypoint (counters read at that point).
    pub run_ms: f64,
    /// Release → container and cgroup removed, runtime process gone. 0 in a warm run, whose
    /// teardown happens after the report.
    pub teardown_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub service: String,
    /// Exact runtime, e.g. `bun@1.4.5`.
    pub runtime: String,
    pub oci_runtime: String,
    pub container_id: String,
    /// RFC 3339 UTC time the run started.
    pub started_at: String,
    pub status: Status,
    pub success: bool,
    pub exit_code: Option<i32>,
    /// Name of the signal that ended the program, e.g. `SIGKILL`.
    pub signal: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub metrics: Metrics,
    /// What ignite observed beyond the exit status (why it killed the program, etc.).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The npm dependencies ignite installed (or found in its cache) for this run; absent when
    /// the service has none to install.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<InstallReport>,
    /// Security events the kernel reported (audit mode only; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_audit: Option<SecurityAudit>,
    /// The regular files the program left in its output directory, by relative path (only when
    /// the request asked for one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<std::collections::BTreeMap<String, OutputFile>>,
    /// Why `files` is not everything the program meant to leave: the directory was full (its
    /// size or file cap), or entries were left out (links, devices, too deep), named here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_limit: Option<String>,
}

/// One file of the output directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutputFile {
    pub size: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// The content, base64 (standard alphabet, padded); absent where the file was written to a
    /// host directory instead (`ignite run --out DIR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// Audit mode's findings: what the kernel told ignite about the run (seccomp notifications for
/// the high-signal syscalls, cgroup OOM and pids counters) and the limits ignite enforced.
/// Nothing here comes from the program's own output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityAudit {
    /// `clean` when no event was recorded, else `violations`.
    pub overall_status: AuditStatus,
    /// Events by kind, counting every one (also those not listed in `events`).
    #[schema(value_type = std::collections::BTreeMap<String, u64>)]
    pub counts: std::collections::BTreeMap<String, u64>,
    /// The first events, in order (at most `eventsLimit`).
    pub events: Vec<SecurityEvent>,
    /// Events counted but not listed (beyond `eventsLimit`).
    pub dropped: u64,
    pub events_limit: u64,
    /// Syscalls the listener answered (each one an event of a syscall kind).
    pub notifications: u64,
    /// After this many notifications ignite stops listening, so that a storm cannot cost the
    /// host more; the kernel then fails further audited calls with ENOSYS by itself, uncounted.
    pub notification_limit: u64,
    /// Whether `notificationLimit` was reached (the counts are then a lower bound).
    pub notification_limit_reached: bool,
    /// Syscall names whose calls are reported (the audit rules of the seccomp profile that
    /// applied to this run).
    pub audited_syscalls: Vec<String>,
}

/// `clean` or `violations`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditStatus {
    #[default]
    Clean,
    Violations,
}

/// One security event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityEvent {
    /// Milliseconds since the sandbox was launched.
    pub time_ms: f64,
    /// `mount`, `namespace`, `ptrace`, `bpf`, `keyring`, `perf`, `userfaultfd`, `network`,
    /// `handle`, `kernel` (audited syscalls, from the seccomp profile); `oom`, `pids_limit`
    /// (cgroup counters); `timeout`, `output_limit` (stops by ignite).
    pub kind: String,
    /// The syscall, for syscall kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall: Option<String>,
    /// Register arguments, decoded where meaningful (e.g. `family: AF_INET`). Pointers are not
    /// followed: nothing is read from the sandbox's memory.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub args: std::collections::BTreeMap<String, String>,
    /// The calling process as the sandbox numbers it (1 is the entrypoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// How many times the kernel counted it, for cgroup counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    pub verdict: Verdict,
}

/// What happened to the action behind an event: the agent never lets an audited call run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The call failed with EPERM without running (or a fork failed at the pids limit).
    Denied,
    /// The kernel killed the process (OOM).
    Killed,
    /// ignite stopped the program (time or output limit).
    Stopped,
}

/// The dependency step of a run (or of `ignite install`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstallReport {
    /// The installed tree was already in the cache: nothing was installed, no network used.
    pub cached: bool,
    /// Time spent on dependencies: the install, or looking the tree up in the cache.
    pub duration_ms: f64,
    /// Packages in the installed tree (direct and transitive).
    pub packages: u64,
    /// The package manager that installed the tree, e.g. `bun@1.4.5`.
    pub installer: String,
    /// The lockfile the install followed, if the service has one.
    pub lockfile: Option<String>,
    /// The cache key: sha256 over package.json, the lockfile, the installer and its settings.
    pub key: String,
}

impl Report {
    /// Exit code for the `ignite` process: the program's own, or one of the documented
    /// codes for timeout and kills.
    pub fn cli_exit_code(&self) -> i32 {
        match self.status {
            Status::Timeout => EXIT_TIMEOUT,
            Status::Oom | Status::OutputLimit => EXIT_KILLED,
            Status::Ok => 0,
            Status::Error => match (self.exit_code, &self.signal) {
                (Some(code), _) => code,
                (None, Some(sig)) => signal_number(sig).map_or(EXIT_KILLED, |n| 128 + n),
                (None, None) => EXIT_IGNITE_ERROR,
            },
        }
    }

    /// One human line for stderr after a run.
    pub fn summary(&self) -> String {
        let m = &self.metrics;
        let mut parts = vec![format!("ignite: {} {}", self.service, self.status.as_str())];
        match (&self.exit_code, &self.signal) {
            (Some(c), _) => parts.push(format!("exit {c}")),
            (None, Some(s)) => parts.push(format!("signal {s}")),
            _ => {}
        }
        match m.execution_time_ms {
            Some(t) => parts.push(format!("time {}", fmt_ms(t))),
            None => parts.push(format!("wall {}", fmt_ms(m.wall_time_ms))),
        }
        if let Some(t) = m.init_time_ms {
            parts.push(format!("init {}", fmt_ms(t)));
        }
        if let Some(mb) = m.memory_peak_mb {
            parts.push(format!("peak mem {mb:.1}/{} MiB", m.memory_limit_mb));
        }
        if let Some(c) = m.cpu_time_ms {
            parts.push(format!("cpu {}", fmt_ms(c)));
        }
        if let Some(p) = m.pids_peak {
            parts.push(format!("pids {p}"));
        }
        let mut line = parts.join(" · ");
        if self.stdout_truncated || self.stderr_truncated {
            line.push_str(" · output truncated");
        }
        if let Some(msg) = &self.message {
            line.push_str(&format!("\nignite: {msg}"));
        }
        if let Some(audit) = &self.security_audit {
            line.push_str(&format!("\nignite: {}", audit.summary()));
        }
        line
    }
}

impl SecurityAudit {
    /// One human line: `security audit: clean`, or the counts by kind.
    pub fn summary(&self) -> String {
        if self.overall_status == AuditStatus::Clean {
            return "security audit: clean (no security events)".to_string();
        }
        let total: u64 = self.counts.values().sum();
        let kinds: Vec<String> = self.counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let mut line = format!("security audit: {total} violation(s): {}", kinds.join(", "));
        if self.notification_limit_reached {
            line.push_str(&format!(
                " (notification limit {} reached; later audited calls failed with ENOSYS, uncounted)",
                self.notification_limit
            ));
        }
        line
    }
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 10_000.0 { format!("{:.1} s", ms / 1000.0) } else { format!("{ms:.0} ms") }
}

/// Maps a signal name to its number on Linux.
pub fn signal_number(name: &str) -> Option<i32> {
    name.parse::<nix::sys::signal::Signal>().ok().map(|s| s as i32)
}

/// Maps a signal number to its name (`SIGKILL`), or `SIG<n>` for unknown numbers.
pub fn signal_name(n: i32) -> String {
    nix::sys::signal::Signal::try_from(n).map_or_else(|_| format!("SIG{n}"), |s| s.as_str().to_string())
}

/// Formats a Unix time as RFC 3339 UTC with millisecond precision.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (H. Hinnant's algorithm), valid for the proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status: Status, exit_code: Option<i32>, signal: Option<&str>) -> Report {
        Report {
            service: "s".into(),
            runtime: "bun@1.4.5".into(),
            oci_runtime: "runc".into(),
            container_id: "id".into(),
            started_at: rfc3339(std::time::UNIX_EPOCH),
            status,
            success: status == Status::Ok,
            exit_code,
            signal: signal.map(str::to_string),
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            metrics: Metrics::default(),
            message: None,
            install: None,
            security_audit: None,
            files: None,
            files_limit: None,
        }
    }

    #[test]
    fn exit_codes_follow_the_documented_table() {
        assert_eq!(report(Status::Ok, Some(0), None).cli_exit_code(), 0);
        assert_eq!(report(Status::Error, Some(3), None).cli_exit_code(), 3);
        assert_eq!(report(Status::Error, None, Some("SIGSEGV")).cli_exit_code(), 139);
        assert_eq!(report(Status::Timeout, None, Some("SIGTERM")).cli_exit_code(), 124);
        assert_eq!(report(Status::Oom, None, Some("SIGKILL")).cli_exit_code(), 137);
        assert_eq!(report(Status::OutputLimit, None, Some("SIGKILL")).cli_exit_code(), 137);
        assert_eq!(report(Status::Error, None, None).cli_exit_code(), 125);
    }

    #[test]
    fn json_shape_is_camel_case_with_snake_status() {
        let v = serde_json::to_value(report(Status::OutputLimit, None, Some("SIGKILL"))).unwrap();
        assert_eq!(v["status"], "output_limit");
        assert_eq!(v["exitCode"], serde_json::Value::Null);
        assert!(v["metrics"].get("memoryPeakMb").is_some());
        assert!(v["metrics"].get("executionTimeMs").is_some());
        assert!(v.get("stdoutTruncated").is_some());
        // No dependency step: no `install` key at all (it is optional for consumers).
        assert!(v.get("install").is_none());
        let mut r = report(Status::Ok, Some(0), None);
        r.install = Some(InstallReport {
            cached: true,
            duration_ms: 1.5,
            packages: 3,
            installer: "bun@1.4.5".into(),
            lockfile: Some("bun.lock".into()),
            key: "ab".into(),
        });
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["install"]["cached"], true);
        assert_eq!(v["install"]["durationMs"], 1.5);
        assert_eq!(v["install"]["packages"], 3);
        let back: Report = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn signal_names_round_trip() {
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_number("SIGTERM"), Some(15));
        assert_eq!(signal_name(200), "SIG200");
    }

    #[test]
    fn rfc3339_known_dates() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
    }
}
