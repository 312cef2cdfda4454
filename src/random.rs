//! Randomness from the operating system, through `ring` (already the kernel's HMAC
//! crate), for secrets, API keys and retry jitter. A failing OS random source is
//! not something a service can run on: it panics, as `rand`'s `OsRng` did.

use ring::rand::{SecureRandom as _, SystemRandom};

/// Fills `bytes` from the operating system's random source.
pub(crate) fn fill(bytes: &mut [u8]) {
    SystemRandom::new().fill(bytes).expect("the operating system's random source failed");
}

/// A uniform random number in `[0, 1)`.
pub(crate) fn unit() -> f64 {
    let mut bytes = [0u8; 8];
    fill(&mut bytes);
    // The top 53 bits make every representable step of [0, 1) equally likely.
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    #[test]
    fn unit_stays_in_range_and_varies() {
        let draws: Vec<f64> = (0..64).map(|_| super::unit()).collect();
        assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(draws.windows(2).any(|w| w[0] != w[1]), "64 equal draws: {draws:?}");
    }

    #[test]
    fn fill_writes_random_bytes() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        super::fill(&mut a);
        super::fill(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }
}
