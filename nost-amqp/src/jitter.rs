//! Randomness for spreading clients: reconnect jitter, shuffled nodes.

/// A random fraction in [0, 1) (std's per-instance random hash keys; no
/// need for a crate to spread reconnects).
pub(crate) fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The longest wait between two reconnect attempts.
pub(crate) const MAX_RECONNECT_DELAY: std::time::Duration = std::time::Duration::from_secs(60);

/// Exponential backoff with full jitter: attempt `n` (from 1) waits a
/// random time in [0, min(cap, base · 2^(n-1))), so many applications
/// that lost the same broker do not come back in lockstep.
pub(crate) fn backoff(base: std::time::Duration, attempt: u32) -> std::time::Duration {
    let ceiling = base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_RECONNECT_DELAY);
    ceiling.mul_f64(random_unit())
}
