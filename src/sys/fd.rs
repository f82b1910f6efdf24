//! File descriptors across process boundaries: placing them at fixed numbers in a spawned
//! child, taking over inherited ones, waiting for them to become readable, and receiving
//! them over a unix socket (SCM_RIGHTS).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

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

/// What an inherited descriptor is, for taking it over as a listening socket (socket
/// activation): only a listening TCP socket over IPv4 or IPv6 will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InheritedSocket {
    /// Nothing is open at that number.
    Closed,
    /// Open, but not a socket (a file, a pipe, a terminal).
    NotSocket,
    /// A socket: its address family (`AF_INET`, `AF_UNIX`, …), whether it is a stream socket
    /// and whether `listen` was called on it.
    Socket { family: i32, stream: bool, listening: bool },
}

/// Looks at descriptor `fd` without taking it: open or not, a socket or not, and which kind.
pub fn inspect_inherited_socket(fd: RawFd) -> std::io::Result<InheritedSocket> {
    // SAFETY: F_GETFD only queries the descriptor table; it has no memory effects.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Ok(InheritedSocket::Closed);
    }
    // SAFETY: all-zero bytes are a valid `stat`; fstat writes only into that struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a live, writable stat buffer; fstat has no other memory effects.
    if unsafe { libc::fstat(fd, &mut st) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Ok(InheritedSocket::NotSocket);
    }
    let int_opt = |opt: libc::c_int| -> std::io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes (the size of the live c_int `value`)
        // and the actual length into `len`; both pointers are valid for the call.
        let rc = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, opt, (&raw mut value).cast(), &mut len) };
        if rc < 0 { Err(std::io::Error::last_os_error()) } else { Ok(value) }
    };
    Ok(InheritedSocket::Socket {
        family: int_opt(libc::SO_DOMAIN)?,
        stream: int_opt(libc::SO_TYPE)? == libc::SOCK_STREAM,
        listening: int_opt(libc::SO_ACCEPTCONN)? != 0,
    })
}

/// Takes ownership of the listening TCP socket at `fd`, which this process inherited (socket
/// activation), as a non-blocking listener that no child process inherits: systemd passes it
/// without close-on-exec, and the OCI runtime, its hooks and slirp4netns must never hold the
/// server's socket. The caller checked with [`inspect_inherited_socket`] that it is one.
pub fn take_inherited_listener(fd: RawFd) -> std::io::Result<std::net::TcpListener> {
    // SAFETY: F_SETFD on a descriptor only changes its close-on-exec flag in this process's
    // table; it has no memory effects.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let owned = take_inherited_fd(fd).ok_or_else(|| std::io::Error::from_raw_os_error(libc::EBADF))?;
    let listener = std::net::TcpListener::from(owned);
    listener.set_nonblocking(true)?;
    Ok(listener)
}
