//! How one run's seed is split into independent random streams, the same way on every
//! backend: the same seed gives each component the same numbers in the simulator and on
//! real Redis.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The simulated network's stream (latency, loss).
const NETWORK: u64 = 1;
/// Client `i` draws from stream `CLIENTS + i` (tokens, retry jitter, work and think times).
const CLIENTS: u64 = 100;

/// The stream numbered `n` of `seed`.
fn stream(seed: u64, n: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(n);
    rng
}

/// The simulated network's random stream for `seed`.
pub fn network(seed: u64) -> ChaCha8Rng {
    stream(seed, NETWORK)
}

/// Scenario client number `index`'s random stream for `seed`.
pub fn client(seed: u64, index: usize) -> ChaCha8Rng {
    stream(seed, CLIENTS + index as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn every_component_has_its_own_stream() {
        let a = client(7, 0).next_u64();
        assert_eq!(a, client(7, 0).next_u64());
        assert_ne!(a, client(7, 1).next_u64());
        assert_ne!(a, network(7).next_u64());
        assert_ne!(a, client(8, 0).next_u64());
    }
}
