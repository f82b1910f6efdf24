//! The only home of `unsafe` and raw libc calls; every block states why it is sound.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Command;

use std::os::unix::process::CommandExt;

/// Arranges for `fd` to appear as `target` in the child spawned from `cmd` (and nowhere
/// else): the OCI runtime hands descriptors 3.. to the container with `--preserve-fds`.
pub fn pass_fd_as(cmd: &mut Command, fd: &OwnedFd, target: RawFd) {
    let src = fd.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec and calls only dup2 and
    // fcntl, which are async-signal-safe. It allocates nothing and touches no locks.
    unsafe {
        cmd.pre_exec(move || {
            if src == target {
                // dup2 onto itself keeps CLOEXEC set; clear it so exec keeps the fd.
                let flags = libc::fcntl(src, libc::F_GETFD);
                if flags < 0 || libc::fcntl(src, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(src, target) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Takes ownership of a descriptor this process inherited (e.g. the entrypoint's report
/// fd 3), if it is open. Returns `None` when nothing is open at that number.
pub fn take_inherited_fd(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only queries the descriptor table; it has no memory effects.
    let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
    if !open {
        return None;
    }
    // SAFETY: the descriptor is open (checked above) and, by the protocol with the parent,
    // nothing else in this process owns it: it is taken exactly once at start-up.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads CLOCK_MONOTONIC in nanoseconds. The entrypoint and the host share this clock
/// (no time namespace is created), so timestamps from both sides compare directly.
pub fn monotonic_ns() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => (ts.tv_sec() as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec() as u64),
        // CLOCK_MONOTONIC cannot fail on Linux; 0 makes derived durations read as absent.
        Err(_) => 0,
    }
}
