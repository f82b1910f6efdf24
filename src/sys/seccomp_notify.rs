//! Seccomp user notifications: receiving a suspended call from a listener descriptor and
//! answering it (deny, or let it continue).

use std::os::fd::{AsRawFd, OwnedFd};

/// A seccomp user notification: a thread of the sandbox is suspended in `syscall(args…)` until
/// it gets an answer (see [`seccomp_notif_deny`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeccompNotif {
    /// Cookie for the answer; valid while the thread waits.
    pub id: u64,
    /// The thread, in the pid namespace of this process.
    pub pid: u32,
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
}

/// Checks that the kernel's seccomp notification structures have the sizes this build's
/// ioctls assume (they encode the size; a kernel with bigger ones would refuse them anyway,
/// this says why).
pub fn seccomp_notif_sizes_match() -> std::io::Result<bool> {
    let mut sizes = libc::seccomp_notif_sizes { seccomp_notif: 0, seccomp_notif_resp: 0, seccomp_data: 0 };
    // SAFETY: SECCOMP_GET_NOTIF_SIZES writes one struct seccomp_notif_sizes to the pointer, which
    // points to a live, properly aligned value of that type; flags must be 0.
    let rc = unsafe {
        libc::syscall(libc::SYS_seccomp, libc::SECCOMP_GET_NOTIF_SIZES, 0, &mut sizes as *mut libc::seccomp_notif_sizes)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(usize::from(sizes.seccomp_notif) == std::mem::size_of::<libc::seccomp_notif>()
        && usize::from(sizes.seccomp_notif_resp) == std::mem::size_of::<libc::seccomp_notif_resp>())
}

/// Receives the next notification from a seccomp listener descriptor (blocks unless one is
/// pending; poll first). `ENOENT` means the thread went away before it could be received.
pub fn seccomp_notif_recv(fd: &OwnedFd) -> std::io::Result<SeccompNotif> {
    // SAFETY: all-zero bytes are a valid seccomp_notif (plain integers), and the kernel requires
    // the buffer to be zeroed.
    let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: SECCOMP_IOCTL_NOTIF_RECV writes exactly one struct seccomp_notif (its size is
    // encoded in the request and checked against the kernel's by seccomp_notif_sizes_match) to
    // the pointer, which points to a live value of that type; the fd is open (borrowed).
    let rc =
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut notif as *mut libc::seccomp_notif) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(SeccompNotif { id: notif.id, pid: notif.pid, nr: notif.data.nr, arch: notif.data.arch, args: notif.data.args })
}

/// Ignite's answer to a notification: the call fails with EPERM and is not run. `flags` is 0,
/// not SECCOMP_USER_NOTIF_FLAG_CONTINUE.
pub fn seccomp_notif_deny(id: u64) -> libc::seccomp_notif_resp {
    libc::seccomp_notif_resp { id, val: 0, error: -libc::EPERM, flags: 0 }
}

/// "Let the call run as if it had not been notified". Ignite gives it only to the three
/// process-creation calls that start the runtime in audit mode with spawning off, as
/// [`crate::sandbox::audit::gate::SpawnGate`] decides them.
pub fn seccomp_notif_continue(id: u64) -> libc::seccomp_notif_resp {
    libc::seccomp_notif_resp { id, val: 0, error: 0, flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32 }
}

/// Sends `resp` for a notification. `ENOENT` means the thread is gone (killed meanwhile).
pub fn seccomp_notif_send(fd: &OwnedFd, resp: &libc::seccomp_notif_resp) -> std::io::Result<()> {
    // SAFETY: SECCOMP_IOCTL_NOTIF_SEND reads exactly one struct seccomp_notif_resp from the
    // pointer, which points to a live value of that type; the fd is open (borrowed).
    let rc =
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, resp as *const libc::seccomp_notif_resp) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether notification `id` is still pending (its thread still waits for the answer). Checked
/// after reading anything about the thread from /proc, so that a pid reused by another process
/// in the meantime is not attributed to the call.
pub fn seccomp_notif_id_valid(fd: &OwnedFd, id: u64) -> bool {
    // SAFETY: SECCOMP_IOCTL_NOTIF_ID_VALID reads one u64 from the pointer, which points to a
    // live u64; the fd is open (borrowed).
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id as *const u64) == 0 }
}
