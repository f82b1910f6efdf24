//! The open-file limit (`RLIMIT_NOFILE`): ignite's own — its soft limit raised to its hard
//! limit when it starts serving or running — and the one each sandbox gets, which fits under
//! ignite's hard limit so the OCI runtime can always set it.
//!
//! Why the sandbox's limit follows ignite's hard limit: the OCI runtime sets the spec's
//! `RLIMIT_NOFILE` on the container's process, and raising a hard limit above the one inherited
//! needs `CAP_SYS_RESOURCE`, which root does not always have (containers, restricted hosts):
//! runc then fails every run (`setrlimit … operation not permitted`). A host whose hard limit
//! is below [`SANDBOX_NOFILE`] is also one whose operator chose that bound, which the sandboxes
//! respect instead of overriding.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// What a sandbox gets when the host allows it.
pub const SANDBOX_NOFILE: u64 = 4096;
/// Below this, runtimes fail in ways that look like bugs (a module graph, a few sockets and a
/// runtime's own descriptors need more): refuse to start sandboxes at all.
pub const MIN_SANDBOX_NOFILE: u64 = 256;

/// What to do about a low limit, said wherever the limit is reported.
pub const REMEDY: &str = "raise the hard open-file limit of the shell or service that starts ignite to at least 4096 (`ulimit -Hn 4096` as root, `LimitNOFILE=4096` in a systemd unit, `nofile` in /etc/security/limits.conf, `--ulimit nofile=4096` for a container)";

/// A process's open-file limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nofile {
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum NofileError {
    #[error("failed to {step} the open-file limit (RLIMIT_NOFILE): {source}")]
    Syscall { step: &'static str, source: nix::Error },
    #[error(
        "the hard open-file limit (RLIMIT_NOFILE) of ignite is {hard}, below the {MIN_SANDBOX_NOFILE} a sandbox needs (it gets up to {SANDBOX_NOFILE}, never more than ignite's own hard limit); {REMEDY}"
    )]
    TooLow { hard: u64 },
}

/// This process's open-file limits.
pub fn current() -> Result<Nofile, NofileError> {
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|source| NofileError::Syscall { step: "read", source })?;
    Ok(Nofile { soft, hard })
}

/// Raises this process's soft open-file limit to its hard limit (a server holds a descriptor
/// per connection, per run's pipes and per lock); returns the limits in force afterwards.
/// Raising the soft limit up to the hard one needs no privilege.
pub fn raise_soft_to_hard() -> Result<Nofile, NofileError> {
    let now = current()?;
    if now.soft < now.hard {
        setrlimit(Resource::RLIMIT_NOFILE, now.hard, now.hard)
            .map_err(|source| NofileError::Syscall { step: "raise", source })?;
    }
    current()
}

/// The open-file limit a sandbox gets when ignite's own limits are `host`: [`SANDBOX_NOFILE`],
/// lowered to ignite's hard limit; an error naming the limit and the remedy when that is below
/// [`MIN_SANDBOX_NOFILE`].
pub fn sandbox_limit(host: Nofile) -> Result<u64, NofileError> {
    let limit = SANDBOX_NOFILE.min(host.hard);
    if limit < MIN_SANDBOX_NOFILE {
        return Err(NofileError::TooLow { hard: host.hard });
    }
    Ok(limit)
}

/// [`sandbox_limit`] of this process.
pub fn sandbox_limit_now() -> Result<u64, NofileError> {
    sandbox_limit(current()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_limit_fits_under_the_hard_limit() {
        let at = |hard| sandbox_limit(Nofile { soft: 0, hard });
        assert_eq!(at(u64::MAX).unwrap(), SANDBOX_NOFILE);
        assert_eq!(at(1_048_576).unwrap(), SANDBOX_NOFILE);
        assert_eq!(at(4096).unwrap(), 4096);
        assert_eq!(at(1024).unwrap(), 1024);
        assert_eq!(at(MIN_SANDBOX_NOFILE).unwrap(), MIN_SANDBOX_NOFILE);
        let e = at(MIN_SANDBOX_NOFILE - 1).unwrap_err().to_string();
        assert!(e.contains("RLIMIT_NOFILE") && e.contains("255") && e.contains("ulimit -Hn 4096"), "{e}");
    }

    #[test]
    fn raising_the_soft_limit_reaches_the_hard_one() {
        let after = raise_soft_to_hard().unwrap();
        assert_eq!(after.soft, after.hard);
        assert_eq!(current().unwrap(), after);
    }
}
