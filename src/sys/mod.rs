//! The only home of `unsafe` and raw libc calls; every block states why it is sound.

// The crate denies `unsafe_code` (Cargo.toml [lints]); this module is the one exception.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Command;

use std::os::unix::process::CommandExt;

/// Removes `name` from this process's environment (ignite's secrets, once read): its value is
/// overwritten where it lies (the initial environment block is what `/proc/PID/environ` and a
/// core dump show), then the variable is unset, so no child process inherits it. Refused once
/// the process has a second thread, which could be reading the environment at the same moment.
pub fn scrub_env_var(name: &str) -> std::io::Result<()> {
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    if threads != 1 {
        return Err(std::io::Error::other(format!("the process already runs {threads} threads")));
    }
    let c_name = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    // SAFETY: the process has a single thread (checked just above; only this thread could
    // start another), so nothing reads or changes the environment concurrently. `getenv`
    // returns null or a pointer to the NUL-terminated value inside the environment (the
    // initial block on the stack, or a string `setenv` allocated), which is writable; exactly
    // `strlen` bytes of it are overwritten, its terminator is kept, and the variable is then
    // unset, after which nothing refers to that memory as an environment value.
    unsafe {
        let value = libc::getenv(c_name.as_ptr());
        if !value.is_null() {
            let len = libc::strlen(value);
            std::ptr::write_bytes(value.cast::<u8>(), b'*', len);
        }
        std::env::remove_var(name);
    }
    Ok(())
}

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

/// Pages at least this far up are where pinned exec arguments go: above where the kernel
/// places a PIE's heap, below its top-down area for libraries and the stack, so a random
/// page rarely collides with anything (a collision just draws again).
const PIN_LOW: u64 = 1 << 40;
const PIN_HIGH: u64 = 1 << 46;
const PAGE: usize = 4096;

/// 64 random bits from the kernel.
fn random_u64() -> std::io::Result<u64> {
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: getrandom writes at most `len - got` bytes into the remaining part of `buf`,
        // which is valid for writes of that many bytes.
        let n = unsafe { libc::getrandom(buf[got..].as_mut_ptr().cast(), buf.len() - got, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
            continue;
        }
        got += n as usize;
    }
    Ok(u64::from_ne_bytes(buf))
}

/// An anonymous private mapping owned by this process; unmapped on drop.
#[derive(Debug)]
struct Mapping {
    addr: usize,
    len: usize,
}

impl Mapping {
    /// Maps `bytes` (rounded up, plus a page of slack for the offset) at a random page in
    /// [`PIN_LOW`, [`PIN_HIGH`]), and returns it with a random offset aligned to `align` at
    /// which `bytes` fit.
    fn at_random(bytes: usize, align: usize) -> std::io::Result<(Mapping, usize)> {
        let len = bytes.div_ceil(PAGE) * PAGE + PAGE;
        let pages = (PIN_HIGH - PIN_LOW) / PAGE as u64;
        for _ in 0..64 {
            let want = (PIN_LOW + (random_u64()? % pages) * PAGE as u64) as usize;
            // SAFETY: an anonymous mapping at an address no existing mapping covers
            // (MAP_FIXED_NOREPLACE fails with EEXIST instead of replacing one); it touches no
            // memory Rust knows about.
            let got = unsafe {
                libc::mmap(
                    want as *mut libc::c_void,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                    -1,
                    0,
                )
            };
            if got == libc::MAP_FAILED {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EEXIST) {
                    continue;
                }
                return Err(e);
            }
            let mapping = Mapping { addr: got as usize, len };
            if mapping.addr != want {
                // A kernel older than 4.17 treats the address as a hint; not secret enough.
                continue;
            }
            let offset = (random_u64()? as usize % PAGE) / align * align;
            let at = mapping.addr + offset;
            return Ok((mapping, at));
        }
        Err(std::io::Error::other("no free random address for the pinned exec arguments"))
    }

    /// Copies `data` to `at`, which must lie inside this mapping with room for it.
    fn write(&self, at: usize, data: &[u8]) -> std::io::Result<()> {
        if at < self.addr || at + data.len() > self.addr + self.len {
            return Err(std::io::Error::other("pinned exec argument does not fit its mapping"));
        }
        // SAFETY: the range [at, at + len) lies inside this live, writable mapping (checked
        // above), which nothing else references.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), at as *mut u8, data.len()) };
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was created by `at_random` and is owned by this value alone.
        unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len) };
    }
}

/// An exec's path, argv array and envp array, each copied to its own page at a random
/// address. The three addresses are the pins a process filter recognises the exec by (see
/// [`crate::sandbox::spawn_guard::filter`]); nothing else in the process points at those pages.
#[derive(Debug)]
pub struct PinnedExec {
    maps: [Mapping; 3],
    path: usize,
    argv: usize,
    envp: usize,
    // The strings the argv and envp arrays point at.
    _strings: Vec<std::ffi::CString>,
}

impl PinnedExec {
    pub fn new(
        path: std::ffi::CString,
        argv: Vec<std::ffi::CString>,
        envp: Vec<std::ffi::CString>,
    ) -> std::io::Result<PinnedExec> {
        let array = |strings: &[std::ffi::CString]| -> Vec<u8> {
            let mut bytes: Vec<u8> = Vec::with_capacity((strings.len() + 1) * 8);
            for s in strings {
                bytes.extend_from_slice(&(s.as_ptr() as usize).to_ne_bytes());
            }
            bytes.extend_from_slice(&0usize.to_ne_bytes());
            bytes
        };
        let path_bytes = path.as_bytes_with_nul();
        let (argv_bytes, envp_bytes) = (array(&argv), array(&envp));
        let (path_map, path_at) = Mapping::at_random(path_bytes.len(), 1)?;
        let (argv_map, argv_at) = Mapping::at_random(argv_bytes.len(), 8)?;
        let (envp_map, envp_at) = Mapping::at_random(envp_bytes.len(), 8)?;
        path_map.write(path_at, path_bytes)?;
        argv_map.write(argv_at, &argv_bytes)?;
        envp_map.write(envp_at, &envp_bytes)?;
        let mut strings = argv;
        strings.extend(envp);
        Ok(PinnedExec {
            maps: [path_map, argv_map, envp_map],
            path: path_at,
            argv: argv_at,
            envp: envp_at,
            _strings: strings,
        })
    }

    /// The three argument values (path, argv, envp), for the filter.
    pub fn pins(&self) -> [u64; 3] {
        [self.path as u64, self.argv as u64, self.envp as u64]
    }

    fn mapped(&self) -> usize {
        self.maps.iter().map(|m| m.len).sum()
    }
}

/// What the entrypoint's child does between fork and the program: enter the Landlock domain,
/// stack the process filter, exec the pinned arguments.
#[derive(Debug)]
pub struct ConfinedExec {
    pinned: PinnedExec,
    filter: Option<Vec<libc::sock_filter>>,
    landlock: Option<OwnedFd>,
}

impl ConfinedExec {
    pub fn new(pinned: PinnedExec, filter: Option<Vec<libc::sock_filter>>, landlock: Option<OwnedFd>) -> Self {
        ConfinedExec { pinned, filter, landlock }
    }

    /// Applies the Landlock domain and the filter to the calling thread (no_new_privs must be
    /// set already; the sandbox sets it). Makes system calls only: safe between fork and exec.
    pub fn confine(&self) -> std::io::Result<()> {
        if let Some(ruleset) = &self.landlock {
            // SAFETY: landlock_restrict_self takes a ruleset descriptor (owned by self, open)
            // and flags; it has no memory effects.
            if unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        if let Some(prog) = &self.filter {
            let fprog = libc::sock_fprog {
                // `Asm::finish` caps programs at 4096 instructions.
                len: prog.len() as u16,
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            // SAFETY: `fprog` points at `prog`, a live array of `len` instructions; the kernel
            // copies it before returning.
            let rc = unsafe {
                libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0u32, &fprog as *const libc::sock_fprog)
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// execve with the pinned arguments; returns only on failure.
    pub fn exec(&self) -> std::io::Error {
        let p = &self.pinned;
        // SAFETY: the three pointers point into live mappings holding a NUL-terminated path and
        // NULL-terminated arrays of pointers to live NUL-terminated strings (PinnedExec::new).
        // The raw syscall passes exactly these values, which the filter checks.
        unsafe { libc::syscall(libc::SYS_execve, p.path, p.argv, p.envp) };
        std::io::Error::last_os_error()
    }

    /// The pinned exec's path, argv and envp addresses (for the audit listener, which
    /// recognises the exec by them when no filter is stacked).
    pub fn pins(&self) -> [u64; 3] {
        self.pinned.pins()
    }

    /// Bytes mapped for the pinned arguments.
    pub fn mapped_bytes(&self) -> usize {
        self.pinned.mapped()
    }
}

/// Makes `cmd`'s child confine itself and exec the pinned program instead of `cmd`'s own
/// program (register it after every other `pre_exec` step; it does not return on success).
pub fn exec_confined_on_spawn(cmd: &mut Command, confined: ConfinedExec) {
    // SAFETY: the closure runs in the forked child right before exec and makes only raw
    // system calls (landlock_restrict_self, seccomp, execve); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            confined.confine()?;
            Err(confined.exec())
        });
    }
}

const LANDLOCK_RULE_PATH_BENEATH: u32 = 1;
/// Landlock's right to execute a file (ABI 1).
pub const LANDLOCK_ACCESS_FS_EXECUTE: u64 = 1 << 0;
/// Landlock's right to link or rename a file into another directory (ABI 2).
pub const LANDLOCK_ACCESS_FS_REFER: u64 = 1 << 13;

#[repr(C)]
struct LandlockRulesetAttr {
    handled_access_fs: u64,
}

#[repr(C, packed)]
struct LandlockPathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// A new Landlock ruleset that handles the `handled` filesystem rights (close-on-exec).
pub fn landlock_ruleset(handled: u64) -> std::io::Result<OwnedFd> {
    let attr = LandlockRulesetAttr { handled_access_fs: handled };
    // SAFETY: `attr` is a live, initialised struct of the size passed; the kernel reads it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const LandlockRulesetAttr,
            std::mem::size_of::<LandlockRulesetAttr>(),
            0u32,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Grants `access` on the file or directory tree `file` refers to (an `O_PATH` descriptor
/// will do).
pub fn landlock_allow(ruleset: &OwnedFd, file: &impl AsRawFd, access: u64) -> std::io::Result<()> {
    let attr = LandlockPathBeneathAttr { allowed_access: access, parent_fd: file.as_raw_fd() };
    // SAFETY: `attr` is a live, initialised packed struct as the kernel defines it; both
    // descriptors are open for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            LANDLOCK_RULE_PATH_BENEATH,
            &attr as *const LandlockPathBeneathAttr,
            0u32,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Brings the loopback interface up in the network namespace `netns` (an open
/// `/proc/<pid>/ns/net`), as runc does for every new network namespace and youki does not.
/// Runs on a thread of its own, which enters the namespace and ends: the caller's thread keeps
/// its namespace.
pub fn loopback_up(netns: &std::fs::File) -> std::io::Result<()> {
    std::thread::scope(|s| {
        s.spawn(|| -> std::io::Result<()> {
            nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            let sock = nix::sys::socket::socket(
                nix::sys::socket::AddressFamily::Inet,
                nix::sys::socket::SockType::Datagram,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
                None,
            )
            .map_err(std::io::Error::from)?;
            // SAFETY: ifreq is plain data; all-zero is a valid value (empty name, no flags).
            let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
            for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
                *dst = *src as libc::c_char;
            }
            // SAFETY: SIOCGIFFLAGS reads the NUL-terminated name in `req` and writes the flags
            // into its union; `req` lives for the whole call.
            if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req as *mut libc::ifreq) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: SIOCGIFFLAGS just filled `ifru_flags`, the union member read here.
            unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
            // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
            if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req as *const libc::ifreq) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the loopback thread panicked")))
    })
}

#[cfg(test)]
mod tests {
    //! These run the filters and rulesets in the real kernel, in a forked child of the test
    //! process (a filter cannot be removed once installed).

    use super::*;
    use crate::sandbox::spawn_guard::{SpawnRule, elf, prepare};

    /// Runs `f` in a forked child with no_new_privs set and returns its exit code.
    fn in_child(f: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child runs `f` and leaves with _exit, never returning into the test
        // harness; glibc keeps malloc usable after fork, which `f` relies on.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: prctl with these constant arguments only sets a flag on this process.
            let code = if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                120
            } else {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(121)
            };
            // SAFETY: leaves the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for the child we just forked; `status` is a live i32.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
        libc::WEXITSTATUS(status)
    }

    /// The errno of a raw syscall that must fail; a child created by a call that should have
    /// failed leaves at once with 99.
    fn errno_of(rc: libc::c_long) -> i32 {
        if rc == 0 {
            // SAFETY: we are a process that must not exist; leave immediately.
            unsafe { libc::_exit(99) };
        }
        if rc > 0 {
            // A child was created (the parent's side): reap it and report.
            // SAFETY: waits for a child of this process.
            unsafe { libc::waitpid(rc as i32, std::ptr::null_mut(), 0) };
            return 0;
        }
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    fn cstr(s: &str) -> std::ffi::CString {
        std::ffi::CString::new(s).unwrap()
    }

    /// Probes every way to create a process or exec; returns 0 when each got `want`'s errno.
    fn probe(no_fork: bool) -> i32 {
        let true_ = cstr("/bin/true");
        let argv = [true_.as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null::<libc::c_char>()];
        let fork_errno = if no_fork { libc::EPERM } else { 0 };
        // SAFETY (all calls below): raw process syscalls with valid pointers or none; a child
        // they create leaves at once through errno_of.
        if errno_of(unsafe { libc::syscall(libc::SYS_fork) }) != fork_errno {
            return 10;
        }
        if errno_of(unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) }) != fork_errno {
            return 11;
        }
        let mut clone_args = [0u64; 11];
        clone_args[4] = libc::SIGCHLD as u64; // exit_signal
        // Outside a sandbox nothing else answers clone3, so without the fork rules it works.
        let want3 = if no_fork { libc::ENOSYS } else { 0 };
        let rc = unsafe { libc::syscall(libc::SYS_clone3, clone_args.as_mut_ptr(), 88usize) };
        if errno_of(rc) != want3 {
            return 12;
        }
        if std::thread::spawn(|| 7).join().ok() != Some(7) {
            return 13;
        }
        let rc = unsafe {
            libc::syscall(libc::SYS_execveat, libc::AT_FDCWD, true_.as_ptr(), argv.as_ptr(), envp.as_ptr(), 0)
        };
        if errno_of(rc) != libc::EPERM {
            return 14;
        }
        let rc = unsafe { libc::syscall(libc::SYS_execve, true_.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        if errno_of(rc) != libc::EPERM {
            return 15;
        }
        0
    }

    fn sh(script: &str) -> (String, Vec<String>) {
        ("/bin/sh".to_string(), vec!["-c".to_string(), script.to_string()])
    }

    #[test]
    fn no_spawn_filter_stops_processes_but_not_threads_or_the_pinned_exec() {
        let (program, args) = sh("exit 42");
        let confined = prepare(&SpawnRule::NoSpawn, &program, &args, Vec::new()).unwrap();
        assert!(confined.mapped_bytes() >= 3 * 2 * PAGE);
        let code = in_child(|| {
            if confined.confine().is_err() {
                return 2;
            }
            match probe(true) {
                0 => confined.exec().raw_os_error().unwrap_or(3),
                failed => failed,
            }
        });
        assert_eq!(code, 42, "probe step {code} failed (see probe())");
    }

    #[test]
    fn no_exec_filter_lets_processes_fork() {
        let (program, args) = sh("exit 43");
        let confined = prepare(&SpawnRule::NoExec, &program, &args, Vec::new()).unwrap();
        let code = in_child(|| {
            if confined.confine().is_err() {
                return 2;
            }
            match probe(false) {
                0 => confined.exec().raw_os_error().unwrap_or(3),
                failed => failed,
            }
        });
        assert_eq!(code, 43, "probe step {code} failed (see probe())");
    }

    #[test]
    fn the_pinned_exec_passes_only_once() {
        // The exec'd shell runs under the filter too: its own attempt to run a program fails.
        let (program, args) = sh("/bin/true; exit $?");
        let confined = prepare(&SpawnRule::NoExec, &program, &args, Vec::new()).unwrap();
        let code = in_child(|| match confined.confine() {
            Ok(()) => confined.exec().raw_os_error().unwrap_or(3),
            Err(_) => 2,
        });
        // dash reports a command it cannot exec as 126 (found, not executable: EPERM).
        assert_eq!(code, 126);
    }

    #[test]
    fn pins_are_random_and_distinct() {
        let (program, args) = sh("exit 0");
        let a = prepare(&SpawnRule::NoSpawn, &program, &args, Vec::new()).unwrap().pinned.pins();
        let b = prepare(&SpawnRule::NoSpawn, &program, &args, Vec::new()).unwrap().pinned.pins();
        for p in a.iter().chain(&b) {
            assert!((PIN_LOW..PIN_HIGH + PAGE as u64).contains(p), "{p:#x}");
        }
        assert_ne!(a, b);
        assert!(a[0] != a[1] && a[1] != a[2]);
        assert_eq!((a[1] % 8, a[2] % 8), (0, 0));
    }

    /// Runs /bin/sh -c `script` under the entrypoint's Landlock rules for `allowed`; returns
    /// the exit code.
    fn landlock_sh(allowed: &[&str], script: &str) -> i32 {
        let (program, args) = sh(script);
        // The shell itself is not listed: the entrypoint grants the program it execs.
        let commands: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        let confined = prepare(&SpawnRule::Commands(commands), &program, &args, Vec::new()).unwrap();
        in_child(|| match confined.confine() {
            Ok(()) => confined.exec().raw_os_error().unwrap_or(3),
            Err(_) => 2,
        })
    }

    fn require_landlock() -> bool {
        match landlock_abi_version() {
            Ok(_) => true,
            Err(e) => {
                assert!(std::env::var("CI").is_err(), "Landlock is not available here (errno {e})");
                eprintln!("SKIPPED: Landlock is not available (errno {e})");
                false
            }
        }
    }

    #[test]
    fn landlock_allows_exactly_the_listed_files() {
        if !require_landlock() {
            return;
        }
        // /bin/true is allowed (with its loader), /bin/cat is not: the shell gets EACCES (126).
        assert_eq!(landlock_sh(&["/bin/true"], "/bin/true || exit 3; /bin/cat </dev/null; exit $?"), 126);
        assert_eq!(landlock_sh(&["/bin/true", "/bin/cat"], "/bin/true || exit 3; /bin/cat </dev/null; exit $?"), 0);
    }

    #[test]
    fn landlock_rules_leave_renames_across_directories_alone() {
        if !require_landlock() {
            return;
        }
        // A domain that does not handle the refer right turns every cross-directory rename
        // and link into EXDEV (Landlock's rule for ABI 1); the entrypoint's domain handles it
        // and grants it everywhere.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f"), "x").unwrap();
        let script = format!("/bin/mv {d}/a/b/f {d}/a/g || exit 3; /bin/ln {d}/a/g {d}/a/b/h || exit 4; exit 0");
        assert_eq!(landlock_sh(&["/bin/mv", "/bin/ln"], &script), 0);
        assert!(dir.path().join("a/g").exists() && dir.path().join("a/b/h").exists());
    }

    #[test]
    fn landlock_checks_the_dynamic_loader_too() {
        if !require_landlock() {
            return;
        }
        // A ruleset that allows /bin/true but not the loader it names: its exec fails with
        // EACCES, which is why the entrypoint grants each allowed command's loader.
        let loader = elf::interpreter(&mut std::fs::File::open("/bin/true").unwrap()).unwrap().unwrap();
        let run = |grant_loader: bool| {
            let ruleset = landlock_ruleset(LANDLOCK_ACCESS_FS_EXECUTE).unwrap();
            let mut files = vec!["/bin/true".to_string()];
            if grant_loader {
                files.push(loader.clone());
            }
            for f in &files {
                landlock_allow(&ruleset, &std::fs::File::open(f).unwrap(), LANDLOCK_ACCESS_FS_EXECUTE).unwrap();
            }
            let true_ = cstr("/bin/true");
            let argv = [true_.as_ptr(), std::ptr::null()];
            let envp = [std::ptr::null::<libc::c_char>()];
            in_child(|| {
                // SAFETY: restrict_self on an open ruleset, then execve with valid arrays.
                unsafe {
                    if libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) != 0 {
                        return 2;
                    }
                    libc::syscall(libc::SYS_execve, true_.as_ptr(), argv.as_ptr(), envp.as_ptr());
                }
                std::io::Error::last_os_error().raw_os_error().unwrap_or(3)
            })
        };
        assert_eq!(run(false), libc::EACCES);
        assert_eq!(run(true), 0);
    }
}
