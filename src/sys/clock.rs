//! The monotonic clock that ignite and the in-container entrypoint share.

/// Reads CLOCK_MONOTONIC in nanoseconds. The entrypoint and the host share this clock
/// (no time namespace is created), so timestamps from both sides compare directly.
pub fn monotonic_ns() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => (ts.tv_sec() as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec() as u64),
        // CLOCK_MONOTONIC cannot fail on Linux; 0 makes derived durations read as absent.
        Err(_) => 0,
    }
}
