//! Bundle store: turns a resolved runtime into an unpacked, read-only rootfs directory —
//! download the pinned package, verify its integrity, build the rootfs tarball with the
//! runtime's recipe, name it by its sha256, unpack it once (safely, atomically, under a lock).
//!
//! - [`fetch`]: streaming download with integrity check and a [`Progress`] seam;
//! - [`recipe`]: runs a recipe script to build the tarball;
//! - [`unpack`]: the hostile-archive-proof unpacker;
//! - [`resident`]: keeps a rootfs in the page cache, out of the sandboxes' memory accounting;
//! - [`store`]: the cache layout, locking, and the `ensure` fast path;
//! - [`offline`]: bundles in and out of offline archives ([`crate::store::archive`]).

pub mod builder;
pub mod deb;
pub mod fetch;
pub mod offline;
pub mod recipe;
pub mod resident;
pub mod store;
pub mod unpack;

pub use fetch::{FetchError, NoProgress, Progress, StderrProgress};
pub use recipe::RecipeError;
pub use store::{BundleError, BundleInfo, BundleStatus, BundleStore, DEFAULT_CACHE_DIR, IndexRecord, Rootfs};
pub use unpack::{Rejection, UnpackError, UnpackLimits, UnpackStats};

use std::io::{self, Read};

use sha2::Digest;

/// A reader that hashes everything read through it, so that a file is verified in the same pass
/// that consumes it.
pub(crate) struct HashingReader<R, D> {
    inner: R,
    hasher: D,
    count: u64,
}

impl<R: Read, D: Digest> HashingReader<R, D> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader { inner, hasher: D::new(), count: 0 }
    }

    /// Reads whatever the consumer left unread (a tar reader stops at the end-of-archive
    /// marker; gzip may leave its trailer), then returns the digest of the whole stream.
    pub(crate) fn finish(mut self) -> io::Result<(Vec<u8>, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.hasher.finalize().to_vec(), self.count))
    }
}

impl<R: Read, D: Digest> Read for HashingReader<R, D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// `sha256:<hex>` of a file.
pub(crate) fn sha256_file(path: &std::path::Path) -> io::Result<String> {
    let file = std::fs::File::open(path)?;
    let reader = HashingReader::<_, sha2::Sha256>::new(io::BufReader::with_capacity(1 << 16, file));
    let (digest, _) = reader.finish()?;
    Ok(format!("sha256:{}", hex::encode(digest)))
}
