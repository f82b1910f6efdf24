//! What a request hands the program besides its input: arguments (after the entry in its
//! argv), the bytes of its stdin, and environment variables the operator allows by name. The
//! caps on each, the names a request may never set, and their checks, with precise errors.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Most arguments a request may give the program.
pub const MAX_ARGS: usize = 256;
/// Most bytes all of a request's arguments may take together (each counted with its NUL).
pub const MAX_ARGS_BYTES: usize = 64 * 1024;
/// Most bytes the program's stdin may be given.
pub const MAX_STDIN_BYTES: usize = 1024 * 1024;
/// Most environment variables a request may set.
pub const MAX_ENV_VARS: usize = 64;
/// Most bytes a request's variables may take together (`NAME=VALUE` and a NUL each).
pub const MAX_ENV_BYTES: usize = 64 * 1024;

/// Prefixes of names a request can never set, whatever the operator allows, and why: ignite's
/// own variables (`IGNITE_INPUT`, …) and the dynamic loader's, which would change what the
/// runtime itself loads.
pub const RESERVED_PREFIXES: &[(&str, &str)] =
    &[("IGNITE_", "ignite's own variables"), ("LD_", "the dynamic loader's variables")];
/// Names a request can never set: the sandbox's own `PATH` and `HOME`.
pub const RESERVED_NAMES: &[&str] = &["PATH", "HOME"];

/// The program's I/O beyond `IGNITE_INPUT`, as one request gives it. Cheap to clone (a warm
/// job is cloned on its way to a parked sandbox).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgramIo {
    /// Appended after the entry in the program's argv.
    pub args: Vec<String>,
    /// The program's stdin; end of file after these bytes.
    pub stdin: Arc<[u8]>,
    /// Per-request environment variables; each name must be allowed by the operator.
    pub env: BTreeMap<String, String>,
    /// Give the program an output directory and return its files in the report.
    pub outputs: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProgramIoError {
    #[error("args: {count} arguments; at most {MAX_ARGS} may be given")]
    TooManyArgs { count: usize },
    #[error("args: {bytes} bytes in all; at most {MAX_ARGS_BYTES} may be given")]
    ArgsTooLarge { bytes: usize },
    #[error("args[{index}] contains a NUL byte, which a program argument cannot hold")]
    ArgNul { index: usize },
    #[error("stdin: {bytes} bytes; at most {MAX_STDIN_BYTES} may be given")]
    StdinTooLarge { bytes: usize },
    #[error("env: {count} variables; at most {MAX_ENV_VARS} may be given")]
    TooManyEnv { count: usize },
    #[error("env: {bytes} bytes in all; at most {MAX_ENV_BYTES} may be given")]
    EnvTooLarge { bytes: usize },
    #[error("env {name:?}: not an environment variable name (letters, digits, '_'; not starting with a digit)")]
    EnvName { name: String },
    #[error("env {name}: the value contains a NUL byte, which an environment variable cannot hold")]
    EnvNul { name: String },
    #[error("env {name}: {why} are never set by a request")]
    EnvReserved { name: String, why: &'static str },
    #[error("env {name}: {why}; a request cannot override it")]
    EnvTaken { name: String, why: String },
    #[error("env {name}: not allowed here; allowed: {allowed}")]
    EnvNotAllowed { name: String, allowed: String },
}

impl ProgramIoError {
    /// Whether the request exceeded a byte cap (HTTP 413), rather than being malformed, over a
    /// count the request's schema states (`maxItems`, `maxProperties`), or asking for what it
    /// may not (400).
    pub fn too_large(&self) -> bool {
        matches!(
            self,
            ProgramIoError::ArgsTooLarge { .. }
                | ProgramIoError::StdinTooLarge { .. }
                | ProgramIoError::EnvTooLarge { .. }
        )
    }

    /// A stable code for the HTTP API.
    pub fn code(&self) -> &'static str {
        match self {
            ProgramIoError::TooManyArgs { .. } => "args_too_many",
            ProgramIoError::ArgsTooLarge { .. } => "args_too_large",
            ProgramIoError::StdinTooLarge { .. } => "stdin_too_large",
            ProgramIoError::TooManyEnv { .. } => "env_too_many",
            ProgramIoError::EnvTooLarge { .. } => "env_too_large",
            ProgramIoError::EnvNotAllowed { .. }
            | ProgramIoError::EnvReserved { .. }
            | ProgramIoError::EnvTaken { .. } => "env_not_allowed",
            ProgramIoError::ArgNul { .. } | ProgramIoError::EnvName { .. } | ProgramIoError::EnvNul { .. } => {
                "invalid_request"
            }
        }
    }
}

/// Whether `name` is a valid environment variable name.
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Why `name` can never be set by a request (ignite's own, the loader's, PATH, HOME), if so.
pub fn reserved(name: &str) -> Option<&'static str> {
    if RESERVED_NAMES.contains(&name) {
        return Some("the sandbox's PATH and HOME");
    }
    RESERVED_PREFIXES.iter().find(|(p, _)| name.starts_with(p)).map(|(_, why)| *why)
}

/// Checks an operator's list of names a request may set (service.yaml's `allowEnv`, `ignite
/// serve --allow-env`): each a valid name, none reserved. The error says why, for `field`.
pub fn check_allowed_name(name: &str) -> Result<(), String> {
    if !is_env_name(name) {
        return Err(format!(
            "{name:?} is not an environment variable name (letters, digits, '_'; not starting with a digit)"
        ));
    }
    if let Some(why) = reserved(name) {
        return Err(format!("{name}: {why} are never set by a request"));
    }
    Ok(())
}

impl ProgramIo {
    /// Checks the caps and the shape of the arguments and stdin (nothing depends on the
    /// service); the environment is checked by [`ProgramIo::check_env`].
    pub fn check_caps(&self) -> Result<(), ProgramIoError> {
        if self.args.len() > MAX_ARGS {
            return Err(ProgramIoError::TooManyArgs { count: self.args.len() });
        }
        let bytes: usize = self.args.iter().map(|a| a.len() + 1).sum();
        if bytes > MAX_ARGS_BYTES {
            return Err(ProgramIoError::ArgsTooLarge { bytes });
        }
        if let Some(index) = self.args.iter().position(|a| a.contains('\0')) {
            return Err(ProgramIoError::ArgNul { index });
        }
        if self.stdin.len() > MAX_STDIN_BYTES {
            return Err(ProgramIoError::StdinTooLarge { bytes: self.stdin.len() });
        }
        if self.env.len() > MAX_ENV_VARS {
            return Err(ProgramIoError::TooManyEnv { count: self.env.len() });
        }
        let bytes: usize = self.env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        if bytes > MAX_ENV_BYTES {
            return Err(ProgramIoError::EnvTooLarge { bytes });
        }
        for (name, value) in &self.env {
            if !is_env_name(name) {
                return Err(ProgramIoError::EnvName { name: name.clone() });
            }
            if value.contains('\0') {
                return Err(ProgramIoError::EnvNul { name: name.clone() });
            }
        }
        Ok(())
    }

    /// Checks every variable's name: never a reserved one, never one the program's environment
    /// already has (`taken`: the runtime's and the service's variables, with where each comes
    /// from), and only names in `allowed`.
    pub fn check_env(&self, allowed: &[String], taken: &dyn Fn(&str) -> Option<String>) -> Result<(), ProgramIoError> {
        for name in self.env.keys() {
            if let Some(why) = reserved(name) {
                return Err(ProgramIoError::EnvReserved { name: name.clone(), why });
            }
            if let Some(why) = taken(name) {
                return Err(ProgramIoError::EnvTaken { name: name.clone(), why });
            }
            if !allowed.iter().any(|a| a == name) {
                let allowed = if allowed.is_empty() {
                    "none (service.yaml's allowEnv, or `ignite serve --allow-env` for inline code)".to_string()
                } else {
                    allowed.join(", ")
                };
                return Err(ProgramIoError::EnvNotAllowed { name: name.clone(), allowed });
            }
        }
        Ok(())
    }

    /// The request's variables as `NAME=VALUE` strings.
    pub fn env_strings(&self) -> Vec<String> {
        self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> ProgramIo {
        ProgramIo { env: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Default::default() }
    }

    #[test]
    fn caps_hold_with_exact_errors() {
        let ok = ProgramIo { args: vec!["a".into(); MAX_ARGS], ..Default::default() };
        assert_eq!(ok.check_caps(), Ok(()));
        let many = ProgramIo { args: vec!["a".into(); MAX_ARGS + 1], ..Default::default() };
        assert_eq!(many.check_caps(), Err(ProgramIoError::TooManyArgs { count: MAX_ARGS + 1 }));
        assert_eq!(many.check_caps().unwrap_err().to_string(), "args: 257 arguments; at most 256 may be given");
        // Exactly at the byte cap (each argument counts its NUL), then one byte over.
        let at = ProgramIo { args: vec!["x".repeat(MAX_ARGS_BYTES - 1)], ..Default::default() };
        assert_eq!(at.check_caps(), Ok(()));
        let over = ProgramIo { args: vec!["x".repeat(MAX_ARGS_BYTES)], ..Default::default() };
        assert_eq!(over.check_caps(), Err(ProgramIoError::ArgsTooLarge { bytes: MAX_ARGS_BYTES + 1 }));
        let nul = ProgramIo { args: vec!["a".into(), "b\0".into()], ..Default::default() };
        assert_eq!(nul.check_caps(), Err(ProgramIoError::ArgNul { index: 1 }));
        let stdin = ProgramIo { stdin: vec![0u8; MAX_STDIN_BYTES].into(), ..Default::default() };
        assert_eq!(stdin.check_caps(), Ok(()));
        let stdin = ProgramIo { stdin: vec![0u8; MAX_STDIN_BYTES + 1].into(), ..Default::default() };
        assert_eq!(stdin.check_caps(), Err(ProgramIoError::StdinTooLarge { bytes: MAX_STDIN_BYTES + 1 }));
        assert_eq!(stdin.check_caps().unwrap_err().code(), "stdin_too_large");
        assert!(stdin.check_caps().unwrap_err().too_large());
        let names: Vec<(String, String)> = (0..=MAX_ENV_VARS).map(|i| (format!("V{i}"), String::new())).collect();
        let many = ProgramIo { env: names.into_iter().collect(), ..Default::default() };
        assert_eq!(many.check_caps(), Err(ProgramIoError::TooManyEnv { count: MAX_ENV_VARS + 1 }));
        let big = env(&[("V", &"x".repeat(MAX_ENV_BYTES))]);
        assert_eq!(big.check_caps(), Err(ProgramIoError::EnvTooLarge { bytes: MAX_ENV_BYTES + 3 }));
        assert_eq!(env(&[("1A", "")]).check_caps(), Err(ProgramIoError::EnvName { name: "1A".into() }));
        assert_eq!(env(&[("A", "x\0")]).check_caps(), Err(ProgramIoError::EnvNul { name: "A".into() }));
    }

    #[test]
    fn env_names_must_be_allowed_and_never_ignites_own() {
        let allowed = vec!["MODE".to_string(), "IGNITE_INPUT".to_string()];
        let none = |_: &str| None;
        assert_eq!(env(&[("MODE", "fast")]).check_env(&allowed, &none), Ok(()));
        let e = env(&[("OTHER", "1")]).check_env(&allowed, &none).unwrap_err();
        assert_eq!(e, ProgramIoError::EnvNotAllowed { name: "OTHER".into(), allowed: "MODE, IGNITE_INPUT".into() });
        assert_eq!(e.to_string(), "env OTHER: not allowed here; allowed: MODE, IGNITE_INPUT");
        // Reserved whatever the allowlist says.
        for name in ["IGNITE_INPUT", "PATH", "HOME", "LD_PRELOAD"] {
            let e = env(&[(name, "x")]).check_env(&allowed, &none).unwrap_err();
            assert!(matches!(e, ProgramIoError::EnvReserved { .. }), "{name}: {e}");
            assert_eq!(e.code(), "env_not_allowed");
        }
        let taken = |n: &str| (n == "MODE").then(|| "the runtime sets it".to_string());
        let e = env(&[("MODE", "x")]).check_env(&allowed, &taken).unwrap_err();
        assert_eq!(e.to_string(), "env MODE: the runtime sets it; a request cannot override it");
        let e = env(&[("X", "1")]).check_env(&[], &none).unwrap_err();
        assert!(e.to_string().contains("allowed: none"), "{e}");
    }

    #[test]
    fn operator_names_are_checked() {
        assert_eq!(check_allowed_name("API_MODE"), Ok(()));
        assert!(check_allowed_name("IGNITE_X").unwrap_err().contains("ignite's own"));
        assert!(check_allowed_name("PATH").is_err());
        assert!(check_allowed_name("A-B").unwrap_err().contains("not an environment variable name"));
    }
}
