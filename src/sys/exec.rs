//! How a spawned child becomes the program: its signal mask reset before exec, and the
//! entrypoint's confined exec (a Landlock domain, a process filter, and an execve whose path,
//! argv and envp sit at random pinned addresses the filter recognises).

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

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

/// Starts the child spawned from `cmd` in a mount namespace of its own in which every mount is
/// private: nothing it mounts or unmounts propagates back to ignite's (the host's) namespace.
///
/// For helpers that rearrange mounts themselves, such as slirp4netns's `--enable-sandbox`: it
/// makes only `/` private before it pivots and lazily unmounts the old root, so on a host whose
/// mounts are shared (systemd makes them so) that unmount would reach every shared submount of
/// the host — /sys/fs/cgroup, /dev/pts, /dev/mqueue — and take them away.
pub fn private_mounts_on_spawn(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and calls only unshare and
    // mount, which are system calls, with static C strings; it allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let flags = libc::MS_REC | libc::MS_PRIVATE;
            if libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), flags, std::ptr::null()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
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

#[cfg(test)]
mod tests {
    //! These run the filters in the real kernel, in a forked child of the test process (a
    //! filter cannot be removed once installed).

    use super::*;
    use crate::sandbox::spawn_guard::{SpawnRule, prepare};
    use crate::sys::test_support::{cstr, in_child, sh};

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
}
