//! A child spawned into a build root: private mount, network, UTS and IPC namespaces, the root
//! bind-mounted read-only with a few mounts on top, then `chroot`. For the rootfs recipes of
//! the built-in runtimes, which run inside the pinned Debian build environment.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// What a mount on top of the build root is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildMount {
    /// A directory or file the child may read but not change.
    ReadOnly,
    /// The child's work directory.
    Writable,
    /// A character device node (/dev/null and the like), bound as it is.
    Device,
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{} contains a NUL byte", path.display())))
}

/// Makes the child spawned from `cmd` run inside `root`: in new mount, network (loopback only,
/// down), UTS and IPC namespaces; every mount private; `root` bind-mounted onto itself and made
/// read-only, nosuid and nodev; each `(source, target inside root, kind)` bound on top; a tmpfs
/// on `root/tmp`; then `chroot(root)` and `chdir("/")`. The program path of `cmd` is looked up
/// inside the root. Nothing of this is visible in ignite's own mount namespace.
pub fn chroot_on_spawn(cmd: &mut Command, root: &Path, mounts: &[(&Path, &Path, BuildMount)]) -> io::Result<()> {
    let root_c = cstring(root)?;
    let tmp_c = cstring(&root.join("tmp"))?;
    let mut binds = Vec::with_capacity(mounts.len());
    for (source, target, kind) in mounts {
        let target = root.join(target.strip_prefix("/").unwrap_or(target));
        binds.push((cstring(source)?, cstring(&target)?, *kind));
    }
    // SAFETY: the closure runs in the forked child before exec. It calls only unshare, mount,
    // chroot and chdir, which are system calls, on C strings prepared before the fork (owned
    // by the closure); it allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(move || {
            let check = |rc: libc::c_int| if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) };
            let null = std::ptr::null::<libc::c_char>();
            let none = std::ptr::null::<libc::c_void>();
            check(libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWNET | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC))?;
            check(libc::mount(null, c"/".as_ptr(), null, libc::MS_REC | libc::MS_PRIVATE, none))?;
            check(libc::mount(root_c.as_ptr(), root_c.as_ptr(), null, libc::MS_BIND | libc::MS_REC, none))?;
            for (source, target, kind) in &binds {
                check(libc::mount(source.as_ptr(), target.as_ptr(), null, libc::MS_BIND, none))?;
                let flags = match kind {
                    BuildMount::ReadOnly => libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
                    BuildMount::Writable => libc::MS_NOSUID | libc::MS_NODEV,
                    BuildMount::Device => libc::MS_NOSUID | libc::MS_NOEXEC,
                };
                check(libc::mount(null, target.as_ptr(), null, libc::MS_REMOUNT | libc::MS_BIND | flags, none))?;
            }
            check(libc::mount(
                c"tmpfs".as_ptr(),
                tmp_c.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"mode=1777".as_ptr().cast(),
            ))?;
            let ro = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
            check(libc::mount(null, root_c.as_ptr(), null, ro, none))?;
            check(libc::chroot(root_c.as_ptr()))?;
            check(libc::chdir(c"/".as_ptr()))?;
            Ok(())
        });
    }
    Ok(())
}
