//! What ignite keeps on disk between runs: runtime bundles and their unpacked root
//! filesystems, installed npm dependency trees, staged (type-stripped) copies of services, and
//! `ignite.lock` fingerprints of a service directory; and the offline archives that carry bundles
//! and dependency trees between caches.

pub mod archive;
pub mod bundle;
pub mod deps;
pub mod lock;
pub mod stage;
