//! The only home of `unsafe` and raw libc calls; every block states why it is sound.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Command;

use std::os::unix::process::CommandExt;

/// Arranges for `fds[i]` to appear as descriptor `3 + i` in the child spawned from `cmd`
/// (and nowhere else): the OCI runtime hands descriptors 3.. to the container with
/// `--preserve-fds`.
pub fn pass_fds(cmd: &mut Command, fds: &[OwnedFd]) {
    let sources: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let first_free = 3 + sources.len() as RawFd;
    // SAFETY: the closure runs in the forked child before exec and calls only fcntl and
    // dup2, which are async-signal-safe; it reads a Vec allocated before the fork and
    // allocates nothing itself.
    unsafe {
        cmd.pre_exec(move || {
            // First move every source above the target range, so that placing one fd can
            // never overwrite another source that happens to sit at a target number.
            let mut moved = [0 as RawFd; 16];
            if sources.len() > moved.len() {
                return Err(std::io::Error::from_raw_os_error(libc::EMFILE));
            }
            for (i, src) in sources.iter().enumerate() {
                let fd = libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, first_free);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                moved[i] = fd;
            }
            // dup2 clears close-on-exec on the target; the moved copies close at exec.
            for (i, fd) in moved.iter().take(sources.len()).enumerate() {
                if libc::dup2(*fd, 3 + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Makes the child spawned from `cmd` start with an empty signal mask. The entrypoint blocks the
/// signals it handles synchronously, and a blocked mask survives fork and exec: without this the
/// runtime would never see the SIGTERM it is sent at the time limit.
pub fn unblock_signals_on_exec(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and calls only sigemptyset and
    // pthread_sigmask, which are async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
            if libc::sigemptyset(set.as_mut_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let rc = libc::pthread_sigmask(libc::SIG_SETMASK, set.as_ptr(), std::ptr::null_mut());
            if rc != 0 {
                return Err(std::io::Error::from_raw_os_error(rc));
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

/// The Landlock ABI version this kernel offers, without creating a ruleset. Errors: ENOSYS (the
/// kernel has no Landlock), EOPNOTSUPP (built in, but not enabled at boot).
pub fn landlock_abi_version() -> Result<u32, nix::errno::Errno> {
    // include/uapi/linux/landlock.h
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1 << 0;
    // SAFETY: with a null attribute pointer, size 0 and only the VERSION flag, the kernel reads
    // no memory from this process and creates no descriptor: it returns an integer or an errno.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0 as libc::size_t,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if rc < 0 {
        return Err(nix::errno::Errno::last());
    }
    u32::try_from(rc).map_err(|_| nix::errno::Errno::EOVERFLOW)
}

/// How many pages of `file` are in the page cache, from `cachestat(2)` (one call, about 0.1 ms
/// for a 120 MiB file); `None` on kernels older than 6.5, which do not have it, or where it is not
/// permitted for this file.
pub fn cached_pages(file: &std::fs::File) -> std::io::Result<Option<u64>> {
    // The same number on every architecture (the unified table of new system calls); libc does
    // not name it for x86_64 glibc yet.
    const SYS_CACHESTAT: libc::c_long = 451;
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    let range = Range { off: 0, len: 0 }; // len 0: to the end of the file
    let mut stat = Stat::default();
    // SAFETY: cachestat reads `range` and writes one `struct cachestat` into `stat`; both are
    // live, properly laid out (#[repr(C)], the kernel's field order) and not aliased.
    let rc =
        unsafe { libc::syscall(SYS_CACHESTAT, file.as_raw_fd(), &range as *const Range, &mut stat as *mut Stat, 0u32) };
    if rc == 0 {
        return Ok(Some(stat.nr_cache));
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENOSYS | libc::EPERM) => Ok(None),
        _ => Err(err),
    }
}

/// Ranges of pages (`start..end`, in units of [`page_size`]) of the first `len` bytes of `file`
/// that are not in the page cache, from `mincore(2)` over a temporary read-only mapping. Mapping
/// touches no page: nothing is read or charged by the check itself.
pub fn uncached_pages(file: &std::fs::File, len: u64) -> std::io::Result<Vec<std::ops::Range<u64>>> {
    let pages = len.div_ceil(page_size());
    if pages == 0 {
        return Ok(Vec::new());
    }
    let map_len = usize::try_from(len).map_err(|_| std::io::Error::from_raw_os_error(libc::EFBIG))?;
    let mut residency = vec![0u8; pages as usize];
    // SAFETY: a fresh shared read-only mapping of an open file, at an address the kernel
    // chooses; nothing in this process aliases it, and it is unmapped below on every path.
    let addr =
        unsafe { libc::mmap(std::ptr::null_mut(), map_len, libc::PROT_READ, libc::MAP_SHARED, file.as_raw_fd(), 0) };
    if addr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `addr..addr+map_len` is the mapping made above, and `residency` holds one byte for
    // each of its pages, as mincore requires.
    let rc = unsafe { libc::mincore(addr, map_len, residency.as_mut_ptr()) };
    let err = std::io::Error::last_os_error();
    // SAFETY: unmaps exactly the mapping made above; no reference into it exists.
    unsafe { libc::munmap(addr, map_len) };
    if rc != 0 {
        return Err(err);
    }
    let mut missing = Vec::new();
    let mut start: Option<u64> = None;
    for (i, byte) in residency.iter().enumerate() {
        let i = i as u64;
        match (byte & 1 == 0, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                missing.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        missing.push(s..pages);
    }
    Ok(missing)
}

/// The size of a memory page.
pub fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as u64 } else { 4096 }
}

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

/// The only answer ignite gives to a notification: the call fails with EPERM and is not run.
/// `flags` is 0, never SECCOMP_USER_NOTIF_FLAG_CONTINUE.
pub fn seccomp_notif_deny(id: u64) -> libc::seccomp_notif_resp {
    libc::seccomp_notif_resp { id, val: 0, error: -libc::EPERM, flags: 0 }
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

/// Waits until one of `fds` is readable or hung up, or `timeout_ms` passes (-1: no limit).
/// Returns each descriptor's `revents`.
pub fn poll_in(fds: &[RawFd], timeout_ms: i32) -> std::io::Result<Vec<i16>> {
    let mut polled: Vec<libc::pollfd> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    loop {
        // SAFETY: the pointer and length describe the live Vec of pollfd above, which poll only
        // writes `revents` into.
        let rc = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, timeout_ms) };
        if rc >= 0 {
            return Ok(polled.iter().map(|p| p.revents).collect());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Receives one message from a unix stream socket into `buf`, with the descriptors it carries
/// (SCM_RIGHTS, at most 4; they are close-on-exec here). Returns the bytes read and the fds.
pub fn recv_with_fds(sock: RawFd, buf: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    const MAX_FDS: usize = 4;
    // u64 storage keeps the control buffer aligned for cmsghdr.
    let mut control = [0u64; 16];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: all-zero bytes are a valid msghdr (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    let n = loop {
        // SAFETY: msg points to one live iovec over `buf` and to the live control buffer, with
        // their true lengths; recvmsg writes only within them.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut fds = Vec::new();
    // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR walk the control buffer recvmsg filled, within
    // msg_controllen; each SCM_RIGHTS payload holds (cmsg_len - CMSG_LEN(0)) / 4 descriptors
    // that the kernel just installed in this process and nothing else owns yet.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(data.add(i));
                    let owned = OwnedFd::from_raw_fd(fd);
                    if fds.len() < MAX_FDS {
                        fds.push(owned);
                    }
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(std::io::Error::other("the message carried more descriptors than expected"));
    }
    Ok((n, fds))
}
