//! What the in-container entrypoint (`ignite-init`) reports on its private descriptor:
//! JSON lines, one event each. Written by the entrypoint, parsed by the supervisor.

use serde::{Deserialize, Serialize};

/// Upper bound on what the supervisor reads from the report pipe. The entrypoint writes a
/// few hundred bytes; anything beyond this is not from the entrypoint.
pub const MAX_REPORT_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum InitEvent {
    /// Audit mode with spawning off: the addresses of the pinned exec's path, argv and envp,
    /// written before the fork, so that ignite's listener recognises the runtime's exec.
    Pins { pins: [u64; 3] },
    /// Written right before the runtime is spawned.
    #[serde(rename_all = "camelCase")]
    Exec { mono_ns: u64 },
    /// The runtime could not be started at all.
    #[serde(rename_all = "camelCase")]
    SpawnFailed { message: String },
    /// The runtime exited; rusage covers it and every descendant the entrypoint reaped.
    #[serde(rename_all = "camelCase")]
    Exit { mono_ns: u64, exit_code: Option<i32>, signal: Option<i32>, user_us: u64, sys_us: u64, max_rss_kb: u64 },
}

impl InitEvent {
    pub fn to_line(&self) -> String {
        // Serialising this enum cannot fail: no maps with non-string keys, no floats.
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// Parses the report stream; lines that are not events are skipped.
pub fn parse_events(bytes: &[u8]) -> Vec<InitEvent> {
    String::from_utf8_lossy(bytes).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let evs = vec![
            InitEvent::Pins { pins: [0x7f00_0000_1000, 2, u64::MAX] },
            InitEvent::Exec { mono_ns: 5 },
            InitEvent::Exit { mono_ns: 9, exit_code: Some(0), signal: None, user_us: 1, sys_us: 2, max_rss_kb: 3 },
        ];
        let text: String = evs.iter().map(InitEvent::to_line).collect();
        assert!(text.contains("\"event\":\"exec\",\"monoNs\":5"), "{text}");
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(b"garbage\n");
        assert_eq!(parse_events(&bytes), evs);
    }
}
