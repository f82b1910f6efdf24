//! What the in-container entrypoint (`ignite-init`) reports on its private descriptor
//! (JSON lines, one event each, parsed by the supervisor), and the one job message a warm
//! sandbox's entrypoint reads on its job pipe (written by the pool).

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::data::program_io::{MAX_ARGS, MAX_ARGS_BYTES, MAX_ENV_BYTES, MAX_ENV_VARS, is_env_name, reserved};
use crate::sandbox::abi::{INPUT_VAR, MAX_ENV_STRING};

/// Upper bound on what the supervisor reads from the report pipe. The entrypoint writes a
/// few hundred bytes; anything beyond this is not from the entrypoint.
pub const MAX_REPORT_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum InitEvent {
    /// A warm sandbox (`--wait-job`) is set up and confined, and waits for its job.
    Ready,
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

/// Largest job message the entrypoint accepts: the input, the arguments and the variables,
/// JSON-escaped (at most six bytes per byte), within their caps, plus the envelope (quotes and
/// commas: at most a few bytes per argument or variable).
pub const MAX_JOB_BYTES: usize =
    6 * (MAX_ENV_STRING + MAX_ARGS_BYTES + MAX_ENV_BYTES) + 4 * (MAX_ARGS + MAX_ENV_VARS) + 1024;

/// What a warm sandbox is given at handover: the run's input (becomes `IGNITE_INPUT`), the
/// request's arguments (appended to the program's argv) and variables, and the backstop after
/// which the entrypoint kills the program even if the host is gone. One JSON line; everything
/// else about the run is already fixed by the sandbox's spec. (The stdin bytes go through the
/// stdin pipe, not here.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobMessage {
    pub input: String,
    pub kill_after_ms: u64,
    /// The input is in the sandbox's input file instead (written before this message): the
    /// entrypoint names it in `IGNITE_INPUT_FILE`, and `input` is empty.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub input_file: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JobError {
    #[error("the job message is longer than {MAX_JOB_BYTES} bytes")]
    TooLarge,
    #[error("the job message is not one JSON line: {0}")]
    Malformed(String),
    #[error("the job's input is {len} bytes; one environment string holds at most {max}")]
    InputTooLarge { len: usize, max: usize },
    #[error("the job's input contains a NUL byte, which an environment variable cannot hold")]
    Nul,
    #[error("the job's backstop is 0 ms")]
    NoBackstop,
    #[error("the job's arguments exceed {MAX_ARGS} or {MAX_ARGS_BYTES} bytes, or hold a NUL byte")]
    Args,
    #[error("the job's variable {0:?} is not one a request may set")]
    Env(String),
}

impl JobMessage {
    pub fn to_line(&self) -> Result<String, JobError> {
        self.check()?;
        let mut s = serde_json::to_string(self).map_err(|e| JobError::Malformed(e.to_string()))?;
        s.push('\n');
        if s.len() > MAX_JOB_BYTES {
            return Err(JobError::TooLarge);
        }
        Ok(s)
    }

    /// Parses what the entrypoint read: exactly one line, within the bounds a real job has.
    pub fn parse(bytes: &[u8]) -> Result<JobMessage, JobError> {
        if bytes.len() > MAX_JOB_BYTES {
            return Err(JobError::TooLarge);
        }
        let line = bytes.strip_suffix(b"\n").ok_or_else(|| JobError::Malformed("no end of line".into()))?;
        if line.contains(&b'\n') {
            return Err(JobError::Malformed("more than one line".into()));
        }
        let job: JobMessage = serde_json::from_slice(line).map_err(|e| JobError::Malformed(e.to_string()))?;
        job.check()?;
        Ok(job)
    }

    fn check(&self) -> Result<(), JobError> {
        let max = MAX_ENV_STRING - INPUT_VAR.len() - 1;
        if self.input.len() > max {
            return Err(JobError::InputTooLarge { len: self.input.len(), max });
        }
        if self.input.contains('\0') {
            return Err(JobError::Nul);
        }
        if self.kill_after_ms == 0 {
            return Err(JobError::NoBackstop);
        }
        // The engine checked these; the entrypoint checks again what it will exec with.
        let arg_bytes: usize = self.args.iter().map(|a| a.len() + 1).sum();
        if self.args.len() > MAX_ARGS || arg_bytes > MAX_ARGS_BYTES || self.args.iter().any(|a| a.contains('\0')) {
            return Err(JobError::Args);
        }
        let env_bytes: usize = self.env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        for (name, value) in &self.env {
            let bad = !is_env_name(name) || reserved(name).is_some() || value.contains('\0');
            if bad || self.env.len() > MAX_ENV_VARS || env_bytes > MAX_ENV_BYTES {
                return Err(JobError::Env(name.clone()));
            }
        }
        Ok(())
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
            InitEvent::Ready,
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

    #[test]
    fn job_round_trip_and_bounds() {
        let job = JobMessage {
            input: "{\"a\":\"\\u0001\"}".into(),
            kill_after_ms: 7000,
            input_file: false,
            args: vec!["--flag".into(), "two words".into()],
            env: [("MODE".to_string(), "fast".to_string())].into(),
        };
        let line = job.to_line().unwrap();
        assert_eq!(JobMessage::parse(line.as_bytes()).unwrap(), job);
        // The worst case for escaping still fits.
        let max = MAX_ENV_STRING - INPUT_VAR.len() - 1;
        let ctl = JobMessage {
            input: "\u{1}".repeat(max),
            kill_after_ms: 1,
            input_file: true,
            args: vec!["\u{1}".repeat(MAX_ARGS_BYTES - 1)],
            env: [("E".to_string(), "\u{1}".repeat(MAX_ENV_BYTES - 3))].into(),
        };
        let line = ctl.to_line().unwrap();
        assert_eq!(JobMessage::parse(line.as_bytes()).unwrap(), ctl);
        let big = JobMessage {
            input: "x".repeat(max + 1),
            kill_after_ms: 1,
            input_file: false,
            args: vec![],
            env: BTreeMap::new(),
        };
        assert!(matches!(big.to_line(), Err(JobError::InputTooLarge { .. })));
        assert!(matches!(
            JobMessage::parse(format!("{{\"input\":\"{}\",\"killAfterMs\":1}}\n", "x".repeat(max + 1)).as_bytes()),
            Err(JobError::InputTooLarge { .. })
        ));
    }

    #[test]
    fn job_parse_refuses_anything_else() {
        let bad: &[&[u8]] = &[
            b"",
            b"{\"input\":\"x\",\"killAfterMs\":5}",
            b"{\"input\":\"x\",\"killAfterMs\":5}\n{}\n",
            b"{\"input\":\"x\"}\n",
            b"{\"input\":\"x\",\"killAfterMs\":5,\"env\":[\"A=1\"]}\n",
            b"{\"input\":\"x\\u0000\",\"killAfterMs\":5}\n",
            b"{\"input\":\"x\",\"killAfterMs\":0}\n",
            b"not json\n",
            b"{\"input\":\"x\",\"killAfterMs\":5,\"env\":{\"IGNITE_INPUT\":\"y\"}}\n",
            b"{\"input\":\"x\",\"killAfterMs\":5,\"env\":{\"PATH\":\"/tmp\"}}\n",
            b"{\"input\":\"x\",\"killAfterMs\":5,\"env\":{\"LD_PRELOAD\":\"/tmp/x\"}}\n",
            b"{\"input\":\"x\",\"killAfterMs\":5,\"args\":[\"a\\u0000\"]}\n",
        ];
        for b in bad {
            assert!(JobMessage::parse(b).is_err(), "{}", String::from_utf8_lossy(b));
        }
        assert_eq!(JobMessage::parse(&vec![b' '; MAX_JOB_BYTES + 1]), Err(JobError::TooLarge));
    }
}
