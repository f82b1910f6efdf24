//! The only home of `unsafe` and raw libc calls; every block states why it is sound. One file
//! per topic, each function re-exported here under one name (`crate::sys::monotonic_ns`):
//! `env` (scrubbing secrets), `fd` (passing, inheriting, polling and receiving descriptors),
//! `exec` (signal mask and the confined, pinned exec), `chroot` (the recipes' build root), `clock`, `pages` (page-cache
//! residency), `seccomp_notify`, `landlock`, `net` (loopback in a new namespace), `nsholder` (a process holding a rootless
//! network's user and network namespaces).

// The crate denies `unsafe_code` (Cargo.toml [lints]); this module (with its submodules, which
// inherit the lint level) is the one exception.
#![allow(unsafe_code)]

mod chroot;
mod clock;
mod env;
mod exec;
mod fd;
mod landlock;
mod net;
mod nsholder;
mod pages;
mod seccomp_notify;
#[cfg(test)]
mod test_support;

pub use chroot::{BuildMount, chroot_on_spawn};
pub use clock::monotonic_ns;
pub use env::scrub_env_var;
pub use exec::{ConfinedExec, PinnedExec, exec_confined_on_spawn, private_mounts_on_spawn, unblock_signals_on_exec};
pub use fd::{
    InheritedSocket, inspect_inherited_socket, pass_fds, poll_in, recv_with_fds, take_inherited_fd,
    take_inherited_listener,
};
pub use landlock::{
    LANDLOCK_ACCESS_FS_EXECUTE, LANDLOCK_ACCESS_FS_REFER, landlock_abi_version, landlock_allow, landlock_ruleset,
};
pub use net::loopback_up;
pub use nsholder::{NsHolder, join_namespaces_on_spawn, open_namespace, spawn_ns_holder};
pub use pages::{cached_pages, page_size, uncached_pages};
pub use seccomp_notify::{
    SeccompNotif, seccomp_notif_continue, seccomp_notif_deny, seccomp_notif_id_valid, seccomp_notif_recv,
    seccomp_notif_send, seccomp_notif_sizes_match,
};
