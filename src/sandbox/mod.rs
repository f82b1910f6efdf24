//! The sandbox mechanisms: the OCI spec and its validator, the OCI runtime drivers, cgroup
//! counters, per-run uids, network and writable-root grants, audit mode's seccomp listener, the
//! entrypoint's spawn guard and confinement self-check, and the protocol between ignite and the
//! in-container entrypoint (with [`abi`], the numbers and names both sides share). The engine
//! composes them; the edges never name them.

pub mod abi;
pub mod audit;
pub mod bpf;
pub mod cgroup;
pub mod confinement;
pub mod grants;
pub mod identity;
pub mod init_proto;
pub mod netns;
pub mod nofile;
pub mod oci;
pub mod spawn_guard;
pub mod spec;
pub mod userns;
