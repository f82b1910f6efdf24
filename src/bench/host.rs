//! Facts about the host a benchmark ran on, for the report, the table and the chart's title:
//! kernel, cgroup mode, CPUs, memory, and the version of each OCI runtime benchmarked.

use std::path::Path;

use serde::Serialize;

use crate::host::doctor::facts::HostCgroup;
use crate::host::doctor::probe;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostFacts {
    pub kernel: String,
    /// `v1`, `hybrid` (v1 controllers beside an empty v2), `v2`, or `unknown`.
    pub cgroup: String,
    pub cpus: usize,
    pub memory_mib: Option<u64>,
    pub ignite: String,
    pub oci_runtimes: Vec<OciFact>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciFact {
    pub name: String,
    pub path: String,
    /// First line of `--version`, e.g. `runc version 1.1.5+ds1`.
    pub version: Option<String>,
}

impl HostFacts {
    /// One line for a title: `kernel 6.1 · cgroup hybrid · 2 CPUs · runc 1.1.5`.
    pub fn line(&self) -> String {
        let mut parts = vec![
            format!("kernel {}", self.kernel),
            format!("cgroup {}", self.cgroup),
            format!("{} CPU{}", self.cpus, if self.cpus == 1 { "" } else { "s" }),
        ];
        if let Some(m) = self.memory_mib {
            parts.push(format!("{:.1} GiB", m as f64 / 1024.0));
        }
        for o in &self.oci_runtimes {
            parts.push(o.version.clone().map_or_else(|| o.name.clone(), |v| short_version(&o.name, &v)));
        }
        parts.push(format!("ignite {}", self.ignite));
        parts.join(" · ")
    }
}

/// `runc version 1.1.5+ds1` → `runc 1.1.5+ds1`; anything else is kept as it is.
fn short_version(name: &str, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.iter().position(|w| *w == "version") {
        Some(i) if i + 1 < words.len() => format!("{name} {}", words[i + 1]),
        _ => line.to_string(),
    }
}

/// Reads the facts from `/proc` and runs `--version` of each OCI runtime.
pub fn gather(oci: &[(String, &Path)]) -> HostFacts {
    let kernel =
        std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(|_| "unknown".into(), |s| s.trim().into());
    let cgroup = match probe::cgroup_mode(Path::new("/")) {
        Some(HostCgroup::V1) => "v1",
        Some(HostCgroup::Hybrid) => "hybrid",
        Some(HostCgroup::V2) => "v2",
        None => "unknown",
    };
    let memory_mib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| kib / 1024)
    });
    HostFacts {
        kernel,
        cgroup: cgroup.into(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_mib,
        ignite: env!("CARGO_PKG_VERSION").into(),
        oci_runtimes: oci
            .iter()
            .map(|(name, path)| OciFact {
                name: name.clone(),
                path: path.display().to_string(),
                version: std::process::Command::new(path)
                    .arg("--version")
                    .stdin(std::process::Stdio::null())
                    .output()
                    .ok()
                    .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(|l| l.trim().to_string())),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_line() {
        let h = HostFacts {
            kernel: "6.18.0".into(),
            cgroup: "hybrid".into(),
            cpus: 2,
            memory_mib: Some(24 * 1024),
            ignite: "0.1.0".into(),
            oci_runtimes: vec![OciFact {
                name: "runc".into(),
                path: "/usr/sbin/runc".into(),
                version: Some("runc version 1.1.5+ds1".into()),
            }],
        };
        assert_eq!(h.line(), "kernel 6.18.0 · cgroup hybrid · 2 CPUs · 24.0 GiB · runc 1.1.5+ds1 · ignite 0.1.0");
        assert_eq!(short_version("youki", "youki 0.7.0"), "youki 0.7.0");
    }
}
