//! The OCI hook ignite adds for runtimes that leave a new network namespace's loopback down
//! (youki 0.7): `ignite oci-hook loopback-up`, run by the runtime as a `createRuntime` hook
//! with the container's state on stdin, brings `lo` up in the container's network namespace.
//! Without it, a program could not reach its own 127.0.0.1 / ::1 servers under youki, where it
//! can under runc: the same policy ("no network but loopback") would mean less.

use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Hook, HookBuilder, Spec};

/// The hidden subcommand the hook runs.
pub const HOOK_COMMAND: &str = "oci-hook";
pub const LOOPBACK_UP: &str = "loopback-up";

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("failed to read the container state on stdin: {0}")]
    Stdin(std::io::Error),
    #[error("the container state on stdin is not valid: {0}")]
    State(serde_json::Error),
    #[error("the container state names no pid")]
    NoPid,
    #[error("failed to open {path}: {source}", path = .path.display())]
    Netns { path: PathBuf, source: std::io::Error },
    #[error("failed to bring up lo in the container's network namespace: {0}")]
    Up(std::io::Error),
    #[error("unknown hook {0:?}; the hook ignite knows is `{LOOPBACK_UP}`")]
    Unknown(String),
    #[error("failed to add the {LOOPBACK_UP} hook to the spec: {0}")]
    Spec(oci_spec::OciSpecError),
}

#[derive(serde::Deserialize)]
struct State {
    #[serde(default)]
    pid: Option<u32>,
}

/// Runs the hook `name` with the OCI state read from `stdin`; `proc_root` is `/proc`.
pub fn run(name: &str, stdin: &mut dyn Read, proc_root: &Path) -> Result<(), HookError> {
    if name != LOOPBACK_UP {
        return Err(HookError::Unknown(name.to_owned()));
    }
    let mut text = Vec::new();
    stdin.take(1 << 20).read_to_end(&mut text).map_err(HookError::Stdin)?;
    let state: State = serde_json::from_slice(&text).map_err(HookError::State)?;
    let pid = state.pid.filter(|p| *p > 0).ok_or(HookError::NoPid)?;
    let path = proc_root.join(pid.to_string()).join("ns/net");
    let netns = std::fs::File::open(&path).map_err(|source| HookError::Netns { path, source })?;
    crate::sys::loopback_up(&netns).map_err(HookError::Up)
}

/// `spec` with the loopback hook added (`ignite` is this binary's path on the host).
pub fn with_loopback_hook(spec: &Spec, ignite: &Path) -> Result<Spec, HookError> {
    let hook: Hook = HookBuilder::default()
        .path(ignite.to_path_buf())
        .args(vec!["ignite".to_owned(), HOOK_COMMAND.to_owned(), LOOPBACK_UP.to_owned()])
        .timeout(10i64)
        .build()
        .map_err(HookError::Spec)?;
    let mut hooks = spec.hooks().clone().unwrap_or_default();
    let mut create_runtime = hooks.create_runtime().clone().unwrap_or_default();
    create_runtime.push(hook);
    hooks.set_create_runtime(Some(create_runtime));
    let mut spec = spec.clone();
    spec.set_hooks(Some(hooks));
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_errors_are_precise() {
        let proc = tempfile::tempdir().unwrap();
        let err = |s: &str| run(LOOPBACK_UP, &mut s.as_bytes(), proc.path()).unwrap_err().to_string();
        assert!(err("not json").contains("not valid"));
        assert!(err(r#"{"id":"x","status":"creating"}"#).contains("no pid"));
        assert!(err(r#"{"pid":0}"#).contains("no pid"));
        assert!(err(r#"{"pid":4242}"#).contains("4242/ns/net"));
        assert!(run("other", &mut "".as_bytes(), proc.path()).unwrap_err().to_string().contains("unknown hook"));
    }

    #[test]
    fn hook_is_added_as_create_runtime() {
        let spec = Spec::default();
        let with = with_loopback_hook(&spec, Path::new("/usr/local/bin/ignite")).unwrap();
        let hooks = with.hooks().as_ref().unwrap().create_runtime().as_ref().unwrap();
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks[0].path(), Path::new("/usr/local/bin/ignite"));
        assert_eq!(hooks[0].args().as_ref().unwrap(), &["ignite", HOOK_COMMAND, LOOPBACK_UP]);
    }
}
