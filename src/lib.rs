//! Ignite: run untrusted JavaScript/TypeScript services in hardened OCI containers.
//!
//! The crate is grouped into districts; a district uses only those listed after it:
//!
//! - edges — [`server`] (the HTTP API), [`mcp`] (the Model Context Protocol tools, served by the
//!   server's state) and [`bench`](mod@bench) (`ignite bench`); the command line lives in
//!   the `ignite` binary. They call the [`engine`] façade and use the data types only.
//! - [`engine`] — the façade every run goes through, the warm pool, the supervisor of one run's
//!   lifecycle, the per-run host directories.
//! - [`host`] — probing the host: doctor, env, runtime inventory.
//! - [`store`] — bundles, dependency trees, staged apps, lock files.
//! - [`sandbox`] — the mechanisms: spec, OCI runtimes, cgroups, uids, grants, audit, spawn guard.
//! - [`data`] — service.yaml, policies, runtime definitions, preflight, reports.
//! - [`fsutil`], [`sys`] — file-system helpers and the crate's only `unsafe`.

// No unwrap/expect outside tests: every `cargo clippy` refuses them (CI denies warnings).
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod bench;
pub mod data;
pub mod engine;
pub mod fsutil;
pub mod host;
pub mod mcp;
pub mod sandbox;
pub mod server;
pub mod store;
pub mod sys;
