//! A process that holds a new user and network namespace for as long as ignite wants it: the
//! rootless user-mode network (see `crate::sandbox::netns`). A thread cannot do this — the
//! kernel refuses `unshare(CLONE_NEWUSER)` to a process with more than one thread — so a
//! forked child of ignite does it, and lives on without ever executing anything.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::unistd::Pid;

/// The holder's side of what it reports once: 0 when its namespaces exist, else the errno of
/// the `unshare` that failed.
const REPORT_BYTES: usize = 4;

/// A child of ignite sitting in namespaces of its own until [`NsHolder`] is dropped (or ignite
/// dies: the holder waits for the end of a pipe only ignite holds).
pub struct NsHolder {
    pid: Pid,
    /// The write end of the pipe the holder reads; closing it ends the holder.
    hold: Option<OwnedFd>,
}

impl NsHolder {
    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }
}

impl Drop for NsHolder {
    fn drop(&mut self) {
        self.hold.take();
        // It exits as soon as it reads end-of-file: a short wait, and no zombie left.
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

/// Forks a child that moves into new namespaces (`flags`, e.g. `CLONE_NEWUSER | CLONE_NEWNET`),
/// reports, and then waits. The child keeps no descriptor of ignite's but its end of the hold
/// pipe (so no pipe or socket of ignite's stays open because of it), is in a process group of
/// its own (a Ctrl-C at the terminal is ignite's to handle), and never returns into Rust code.
pub fn spawn_ns_holder(flags: libc::c_int) -> std::io::Result<NsHolder> {
    let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from);
    let (hold_r, hold_w) = pipe()?;
    let (report_r, report_w) = pipe()?;
    let (hr, rw) = (hold_r.as_raw_fd(), report_w.as_raw_fd());
    let (low, high) = (hr.min(rw), hr.max(rw));
    // SAFETY: after fork in a process with other threads the child may only make
    // async-signal-safe calls: it makes only system calls (close_range, setpgid, unshare,
    // write, read, _exit) on values computed before the fork, allocates nothing, takes no lock
    // and never returns from this block. The parent's branch only wraps the child's pid.
    let pid = unsafe {
        match libc::fork() {
            -1 => return Err(std::io::Error::last_os_error()),
            0 => holder_child(low, high, hr, rw, flags),
            pid => Pid::from_raw(pid),
        }
    };
    drop(hold_r);
    drop(report_w);
    let mut holder = NsHolder { pid, hold: Some(hold_w) };
    let mut report = [0u8; REPORT_BYTES];
    let mut got = 0;
    let mut file = std::fs::File::from(report_r);
    while got < REPORT_BYTES {
        match std::io::Read::read(&mut file, &mut report[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                drop(holder);
                return Err(e);
            }
        }
    }
    if got < REPORT_BYTES {
        holder.hold.take();
        return Err(std::io::Error::other("the namespace holder exited before it reported"));
    }
    // Then end-of-file: the holder closes its end right after reporting, so once this returns
    // it holds nothing of ignite's but the hold pipe.
    let mut rest = [0u8; 1];
    while matches!(std::io::Read::read(&mut file, &mut rest), Err(ref e) if e.kind() == std::io::ErrorKind::Interrupted)
    {
    }
    match i32::from_ne_bytes(report) {
        0 => Ok(holder),
        errno => Err(std::io::Error::from_raw_os_error(errno)),
    }
}

/// The forked child's whole life (see [`spawn_ns_holder`]).
///
/// # Safety
/// Only to be called in the child right after `fork`: it makes system calls only and ends the
/// process.
unsafe fn holder_child(low: RawFd, high: RawFd, hold: RawFd, report: RawFd, flags: libc::c_int) -> ! {
    // SAFETY: plain system calls on integers; `_exit` ends the process without running any
    // of the parent's destructors or atexit handlers.
    unsafe {
        // Every descriptor but the two pipe ends this child uses closes.
        if low > 0 {
            libc::close_range(0, (low - 1) as libc::c_uint, 0);
        }
        if high > low + 1 {
            libc::close_range((low + 1) as libc::c_uint, (high - 1) as libc::c_uint, 0);
        }
        libc::close_range((high + 1) as libc::c_uint, libc::c_uint::MAX, 0);
        libc::setpgid(0, 0);
        let errno = if libc::unshare(flags) == 0 { 0 } else { *libc::__errno_location() };
        let bytes = errno.to_ne_bytes();
        if libc::write(report, bytes.as_ptr().cast(), bytes.len()) != bytes.len() as isize || errno != 0 {
            libc::_exit(1);
        }
        libc::close(report);
        let mut byte = 0u8;
        loop {
            let n = libc::read(hold, (&raw mut byte).cast(), 1);
            if n == 0 || (n < 0 && *libc::__errno_location() != libc::EINTR) {
                libc::_exit(0);
            }
        }
    }
}

/// Makes the child spawned from `cmd` join the namespaces open at `fds`, in order, before it
/// executes (e.g. a user namespace, then a network namespace it owns). The descriptors must
/// stay open until the child is spawned.
pub fn join_namespaces_on_spawn(cmd: &mut Command, fds: &[(&OwnedFd, libc::c_int)]) {
    let joins: Vec<(RawFd, libc::c_int)> = fds.iter().map(|(fd, t)| (fd.as_raw_fd(), *t)).collect();
    // SAFETY: the closure runs in the forked (single-threaded) child before exec and calls
    // only setns, a system call, on a Vec allocated before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            for (fd, nstype) in &joins {
                if libc::setns(*fd, *nstype) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Opens `/proc/<pid>/ns/<name>` of a holder (close-on-exec).
pub fn open_namespace(pid: u32, name: &str) -> std::io::Result<OwnedFd> {
    let file = std::fs::File::open(format!("/proc/{pid}/ns/{name}"))?;
    Ok(OwnedFd::from(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_sits_in_its_new_namespace_until_dropped() {
        // A new UTS namespace needs no user namespace when root, and a new user namespace
        // needs nothing else when not: either way the holder's is not ours.
        let flags = if nix::unistd::geteuid().is_root() { libc::CLONE_NEWUTS } else { libc::CLONE_NEWUSER };
        let name = if flags == libc::CLONE_NEWUTS { "uts" } else { "user" };
        let holder = spawn_ns_holder(flags).unwrap();
        let pid = holder.pid();
        let ours = std::fs::read_link(format!("/proc/self/ns/{name}")).unwrap();
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{name}")).unwrap();
        assert_ne!(ours, theirs);
        // Its own process group, and none of our descriptors but its pipe end.
        let pgid = nix::unistd::getpgid(Some(Pid::from_raw(pid as i32))).unwrap();
        assert_eq!(pgid.as_raw() as u32, pid);
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
        assert_eq!(fds, 1, "the holder keeps only its end of the hold pipe");
        drop(holder);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "the holder is gone and reaped");
    }

    #[test]
    fn a_failed_unshare_is_reported() {
        // A flag unshare does not take: it says EINVAL, the holder reports it and exits.
        let e = spawn_ns_holder(libc::CLONE_PARENT).err().unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
    }
}
