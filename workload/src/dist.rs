//! Sampling the scenario's duration distributions from a seeded RNG.

use rand::Rng;
use rand_distr::{Distribution, LogNormal, Pareto};
use scenario::{Data, Dist, Empirical};

/// Draws one duration in microseconds.
///
/// An empirical distribution of samples picks one of them uniformly; one of histogram
/// buckets picks a bucket with probability proportional to its count, then a uniform value
/// between its lower bound (the previous bucket's `le`, 0 for the first) and its `le`.
pub fn sample_us<R: Rng + ?Sized>(d: &Dist, rng: &mut R) -> u64 {
    let ms = match d {
        Dist::FixedMs(x) => *x,
        Dist::UniformMs([a, b]) => {
            if a == b {
                *a
            } else {
                rng.gen_range(*a..=*b)
            }
        }
        Dist::LognormalMs { p50, p99 } => {
            let (mu, sigma) = scenario::lognormal_params(*p50, *p99);
            match LogNormal::new(mu, sigma) {
                Ok(ln) => ln.sample(rng),
                Err(_) => *p50,
            }
        }
        Dist::ParetoMs { scale, shape, max } => {
            let x = match Pareto::new(*scale, *shape) {
                Ok(p) => p.sample(rng),
                Err(_) => *scale,
            };
            x.min(max.unwrap_or(f64::INFINITY))
                .min(lock_core::recipe::MAX_MS as f64)
        }
        Dist::Empirical(e) => empirical_ms(e, rng),
    };
    (ms * 1000.0).round().max(0.0) as u64
}

/// One draw from an empirical distribution, in milliseconds (0 when it holds no data).
fn empirical_ms<R: Rng + ?Sized>(e: &Empirical, rng: &mut R) -> f64 {
    match e.data() {
        Some(Data::Samples(xs)) if !xs.is_empty() => xs[rng.gen_range(0..xs.len())],
        Some(Data::Buckets(b)) if b.total() > 0 => {
            let i = b.bucket_of(rng.gen_range(0..b.total()));
            let (lo, hi) = (b.lower_ms(i), b.upper_ms[i]);
            lo + (hi - lo) * rng.gen::<f64>()
        }
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn lognormal_matches_its_percentiles() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let d = Dist::LognormalMs {
            p50: 10.0,
            p99: 50.0,
        };
        let mut xs: Vec<u64> = (0..20_000).map(|_| sample_us(&d, &mut rng)).collect();
        xs.sort_unstable();
        let p50 = xs[10_000] as f64 / 1000.0;
        let p99 = xs[19_800] as f64 / 1000.0;
        assert!((9.0..11.0).contains(&p50), "{p50}");
        assert!((42.0..58.0).contains(&p99), "{p99}");
    }

    #[test]
    fn fixed_and_uniform() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        assert_eq!(sample_us(&Dist::FixedMs(0.25), &mut rng), 250);
        for _ in 0..100 {
            let x = sample_us(&Dist::UniformMs([1.0, 2.0]), &mut rng);
            assert!((1000..=2000).contains(&x));
        }
    }
}
