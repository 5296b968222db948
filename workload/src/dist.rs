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

    fn sorted(d: &Dist, seed: u64, n: usize) -> Vec<u64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut xs: Vec<u64> = (0..n).map(|_| sample_us(d, &mut rng)).collect();
        xs.sort_unstable();
        xs
    }

    /// An empirical distribution of `samples`, loaded from a file written for it.
    fn samples_dist(samples: &[f64]) -> Dist {
        let dir = std::env::temp_dir().join(format!("workload-dist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text: String = samples.iter().map(|x| format!("{x}\n")).collect();
        let name = format!("s{}.txt", samples.len());
        std::fs::write(dir.join(&name), text).unwrap();
        let source = scenario::Source::SamplesFile {
            path: name.into(),
            column: None,
        };
        let mut e = Empirical::new(source, scenario::Unit::Ms, None).unwrap();
        e.load(&dir).unwrap();
        Dist::Empirical(e)
    }

    #[test]
    fn empirical_samples_are_picked_uniformly_and_deterministically() {
        // 1..=999 ms: the median is 500.
        let xs: Vec<f64> = (1..1000).map(f64::from).collect();
        let d = samples_dist(&xs);
        let a = sorted(&d, 3, 20_000);
        assert_eq!(a, sorted(&d, 3, 20_000));
        let median = a[10_000] as f64 / 1000.0;
        assert!((480.0..520.0).contains(&median), "{median}");
        assert!(a
            .iter()
            .all(|x| x % 1000 == 0 && (1000..=999_000).contains(x)));
    }

    #[test]
    fn histogram_draws_follow_the_bucket_counts() {
        // 10 % in [0, 10], 60 % in (10, 20], 30 % in (20, 100].
        let source = scenario::Source::Histogram(vec![(10.0, 100), (20.0, 700), (100.0, 1000)]);
        let d = Dist::Empirical(Empirical::new(source, scenario::Unit::Ms, None).unwrap());
        let xs = sorted(&d, 4, 50_000);
        let share = |lo: u64, hi: u64| {
            xs.iter().filter(|x| (lo..hi).contains(*x)).count() as f64 / xs.len() as f64
        };
        assert!((share(0, 10_000) - 0.1).abs() < 0.01);
        assert!((share(10_000, 20_000) - 0.6).abs() < 0.01);
        assert!((share(20_000, 100_001) - 0.3).abs() < 0.01);
        // Uniform inside a bucket: half of the last bucket's mass lies below 60 ms.
        assert!((share(20_000, 60_000) - 0.15).abs() < 0.01);
    }

    #[test]
    fn pareto_draws_have_the_closed_form_quantiles() {
        // P(X > x) = (10 / x)^2: median 10 * sqrt(2), p99 100.
        let d = Dist::ParetoMs {
            scale: 10.0,
            shape: 2.0,
            max: None,
        };
        let xs = sorted(&d, 5, 40_000);
        let p50 = xs[20_000] as f64 / 1000.0;
        let p99 = xs[39_600] as f64 / 1000.0;
        assert!((p50 - 14.142).abs() < 0.5, "{p50}");
        assert!((88.0..114.0).contains(&p99), "{p99}");
        assert!(xs[0] >= 10_000);
        let capped = Dist::ParetoMs {
            scale: 10.0,
            shape: 2.0,
            max: Some(30.0),
        };
        assert!(sorted(&capped, 5, 10_000).iter().all(|x| *x <= 30_000));
    }
}
