//! Landlock: the ABI version the kernel offers, rulesets, and the rules that grant execute
//! rights on single files.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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

#[cfg(test)]
mod tests {
    //! These run the rulesets in the real kernel, in a forked child of the test process (a
    //! Landlock domain cannot be left once entered).

    use super::*;
    use crate::sandbox::spawn_guard::{SpawnRule, elf, prepare};
    use crate::sys::test_support::{cstr, in_child, sh};

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
