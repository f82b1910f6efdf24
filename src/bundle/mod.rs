//! Bundle store: turns a resolved runtime into an unpacked, read-only rootfs directory —
//! download the pinned package, verify its integrity, build the rootfs tarball with the
//! runtime's recipe, name it by its sha256, unpack it once (safely, atomically, under a lock).
//!
//! - [`fetch`]: streaming download with integrity check and a [`Progress`] seam;
//! - [`recipe`]: runs a recipe script to build the tarball;
//! - [`unpack`]: the hostile-archive-proof unpacker;
//! - [`store`]: the cache layout, locking, and the `ensure` fast path.

pub mod unpack;

pub use unpack::{Rejection, UnpackError, UnpackLimits, UnpackStats};
