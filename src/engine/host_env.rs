//! ignite's own configuration as the edges read it from the host: operator files (API keys)
//! through the one reader that refuses links, pipes, devices and oversized files, environment
//! variables that must reach no child process, and the listening socket a socket-activating
//! supervisor (systemd's `ignite.socket`) passed in.

use std::path::Path;

pub use crate::fsutil::svcdir::ReadError as OperatorFileError;
use crate::fsutil::svcdir::{self, Rule};

/// The text of an operator's file (`what` names it in messages): a regular file, opened
/// without blocking, at most `max_bytes` long, so a pipe or /dev/zero named by mistake fails
/// at once instead of hanging or filling memory.
pub fn read_operator_text(path: &Path, what: &'static str, max_bytes: u64) -> Result<String, OperatorFileError> {
    svcdir::read_operator_text(path, Rule { what, max_bytes })
}

/// The value of `name` (`None` when unset or not UTF-8), which is then overwritten and removed
/// from this process's environment, so that no child process inherits it. Fails once the
/// process runs more than one thread (the environment is not thread-safe): call it first.
pub fn take_env_var(name: &str) -> std::io::Result<Option<String>> {
    let value = std::env::var(name).ok();
    crate::sys::scrub_env_var(name)?;
    Ok(value)
}

/// The first descriptor a socket-activating supervisor passes (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: i32 = 3;

/// Why the socket passed by socket activation cannot be served. The variables come from the
/// supervisor, so each message names the variable or descriptor and what the unit should say.
#[derive(Debug, thiserror::Error)]
pub enum ListenFdsError {
    #[error(
        "LISTEN_PID={0:?} is not a process id (socket activation: it must be the pid of the process the socket is for)"
    )]
    BadPid(String),
    #[error("LISTEN_FDS={0:?} is not a count of descriptors (socket activation: a positive decimal number, here 1)")]
    BadCount(String),
    #[error(
        "LISTEN_FDS=0 passes no socket: give the socket unit one ListenStream= line, or start ignite serve without LISTEN_PID and LISTEN_FDS"
    )]
    NoSocket,
    #[error(
        "LISTEN_FDS={0} passes {0} sockets, but ignite serve listens on exactly one: give the socket unit a single ListenStream= line"
    )]
    TooMany(u32),
    #[error("LISTEN_FDS=1, but descriptor {LISTEN_FDS_START} is not open")]
    Closed,
    #[error("descriptor {LISTEN_FDS_START} (LISTEN_FDS=1) is not a socket")]
    NotSocket,
    #[error(
        "descriptor {LISTEN_FDS_START} (LISTEN_FDS=1) is {what}; ignite serve takes a listening TCP socket (ListenStream=PORT or ListenStream=ADDRESS:PORT, Accept=no)"
    )]
    WrongKind { what: String },
    #[error("failed to take over descriptor {LISTEN_FDS_START} (LISTEN_FDS=1): {0}")]
    Io(std::io::Error),
}

/// What the activation variables say, for this process (`own_pid`): `Ok(false)` when they are
/// absent or meant for another process (`LISTEN_PID` differs: sd_listen_fds(3) ignores them
/// then), `Ok(true)` when exactly one socket waits at descriptor 3.
fn activated(pid: Option<&str>, fds: Option<&str>, own_pid: u32) -> Result<bool, ListenFdsError> {
    let Some(pid) = pid else { return Ok(false) };
    let for_pid: u32 = pid.trim().parse().map_err(|_| ListenFdsError::BadPid(pid.to_string()))?;
    if for_pid == 0 {
        return Err(ListenFdsError::BadPid(pid.to_string()));
    }
    if for_pid != own_pid {
        return Ok(false);
    }
    let fds = fds.ok_or_else(|| ListenFdsError::BadCount(String::new()))?;
    // Digits only: "+1", " 1" or "1 " are not what a supervisor writes.
    if fds.is_empty() || !fds.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ListenFdsError::BadCount(fds.to_string()));
    }
    match fds.parse::<u32>() {
        Ok(0) => Err(ListenFdsError::NoSocket),
        Ok(1) => Ok(true),
        Ok(n) => Err(ListenFdsError::TooMany(n)),
        Err(_) => Err(ListenFdsError::BadCount(fds.to_string())),
    }
}

fn describe(family: i32, stream: bool, listening: bool) -> Option<String> {
    let name = match family {
        libc::AF_INET | libc::AF_INET6 if stream && listening => return None,
        libc::AF_INET => "an IPv4",
        libc::AF_INET6 => "an IPv6",
        libc::AF_UNIX => "a unix",
        libc::AF_NETLINK => "a netlink",
        _ => return Some(format!("a socket of address family {family}")),
    };
    Some(if !stream {
        format!("{name} datagram socket")
    } else if !listening {
        format!("{name} socket that is not listening (a connection: Accept=yes)")
    } else {
        format!("{name} socket")
    })
}

/// The listening socket passed by socket activation (sd_listen_fds(3): `LISTEN_PID` is this
/// process, `LISTEN_FDS=1`, the socket at descriptor 3), taken over close-on-exec and
/// non-blocking; `None` when this process was not socket-activated. `LISTEN_PID`, `LISTEN_FDS`
/// and `LISTEN_FDNAMES` are removed from the environment either way, so no child process takes
/// them for its own. Like [`take_env_var`], call it before any thread starts.
pub fn take_activated_listener() -> Result<Option<std::net::TcpListener>, ListenFdsError> {
    let read = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
    let (pid, fds) = (read("LISTEN_PID"), read("LISTEN_FDS"));
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        crate::sys::scrub_env_var(name).map_err(ListenFdsError::Io)?;
    }
    if !activated(pid.as_deref(), fds.as_deref(), std::process::id())? {
        return Ok(None);
    }
    match crate::sys::inspect_inherited_socket(LISTEN_FDS_START).map_err(ListenFdsError::Io)? {
        crate::sys::InheritedSocket::Closed => Err(ListenFdsError::Closed),
        crate::sys::InheritedSocket::NotSocket => Err(ListenFdsError::NotSocket),
        crate::sys::InheritedSocket::Socket { family, stream, listening } => {
            match describe(family, stream, listening) {
                Some(what) => Err(ListenFdsError::WrongKind { what }),
                None => crate::sys::take_inherited_listener(LISTEN_FDS_START).map(Some).map_err(ListenFdsError::Io),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_variables_are_read_as_sd_listen_fds_reads_them() {
        assert!(!activated(None, None, 42).unwrap());
        // Without LISTEN_PID the variables are not for anyone in particular: ignored.
        assert!(!activated(None, Some("1"), 42).unwrap());
        // Meant for another process (a wrapper that did not exec us): ignored.
        assert!(!activated(Some("41"), Some("1"), 42).unwrap());
        assert!(activated(Some("42"), Some("1"), 42).unwrap());
    }

    #[test]
    fn malformed_activation_variables_are_refused_precisely() {
        let err = |pid, fds| activated(Some(pid), fds, 42).unwrap_err().to_string();
        assert!(
            err("x42", Some("1")).starts_with("LISTEN_PID=\"x42\" is not a process id"),
            "{}",
            err("x42", Some("1"))
        );
        assert!(err("0", Some("1")).starts_with("LISTEN_PID=\"0\""));
        assert!(err("42", None).starts_with("LISTEN_FDS=\"\" is not a count"));
        for bad in ["", "one", "-1", "+1", " 1", "1 ", "1.0", "99999999999"] {
            assert!(
                err("42", Some(bad)).contains("is not a count of descriptors"),
                "{bad:?}: {}",
                err("42", Some(bad))
            );
        }
        assert!(err("42", Some("0")).starts_with("LISTEN_FDS=0 passes no socket"));
        assert_eq!(
            err("42", Some("2")),
            "LISTEN_FDS=2 passes 2 sockets, but ignite serve listens on exactly one: give the socket unit a single ListenStream= line"
        );
    }

    #[test]
    fn only_a_listening_tcp_socket_is_taken() {
        assert_eq!(describe(libc::AF_INET, true, true), None);
        assert_eq!(describe(libc::AF_INET6, true, true), None);
        assert_eq!(describe(libc::AF_UNIX, true, true).unwrap(), "a unix socket");
        assert_eq!(describe(libc::AF_INET, false, false).unwrap(), "an IPv4 datagram socket");
        assert!(describe(libc::AF_INET6, true, false).unwrap().contains("not listening"));
        assert_eq!(describe(40, true, true).unwrap(), "a socket of address family 40");
    }
}
