//! Network namespaces: bringing a new namespace's loopback interface up.

use std::os::fd::AsRawFd;

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
