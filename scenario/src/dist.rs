//! A distribution's JSON shape, its checks and its quantiles.

use crate::empirical::{Empirical, Source, Unit};
use crate::model::Dist;
use lock_core::recipe::MAX_MS;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// z-score of the 99th percentile of a standard normal distribution.
pub const Z99: f64 = 2.326_347_874;

/// The parameters of a log-normal distribution in JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LognormalRepr {
    p50: f64,
    p99: f64,
}

/// The parameters of a Pareto distribution in JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ParetoRepr {
    scale: f64,
    shape: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max: Option<f64>,
}

/// A distribution as written in JSON: one of the forms, with the options that go with it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DistRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fixed_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uniform_ms: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lognormal_ms: Option<LognormalRepr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pareto_ms: Option<ParetoRepr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    samples_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    histogram_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    histogram: Option<Vec<(f64, u64)>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unit: Option<Unit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max: Option<f64>,
}

const FORMS: &str =
    "fixed_ms, uniform_ms, lognormal_ms, pareto_ms, samples_file, histogram_file, histogram";

impl TryFrom<DistRepr> for Dist {
    type Error = String;

    fn try_from(r: DistRepr) -> Result<Dist, String> {
        let empirical = r.samples_file.is_some() as u8
            + r.histogram_file.is_some() as u8
            + r.histogram.is_some() as u8;
        let forms = r.fixed_ms.is_some() as u8
            + r.uniform_ms.is_some() as u8
            + r.lognormal_ms.is_some() as u8
            + r.pareto_ms.is_some() as u8
            + empirical;
        if forms != 1 {
            return Err(format!(
                "a distribution names exactly one of {FORMS}; this one names {forms}"
            ));
        }
        if empirical == 0 && (r.unit.is_some() || r.max.is_some() || r.column.is_some()) {
            return Err(
                "`unit`, `max` and `column` go with samples_file, histogram_file or histogram"
                    .into(),
            );
        }
        if r.column.is_some() && r.samples_file.is_none() {
            return Err("`column` goes with samples_file (a CSV file)".into());
        }
        if r.max.is_some() && r.samples_file.is_some() {
            return Err("`max` goes with histogram_file or histogram (it bounds +Inf)".into());
        }
        if let Some(x) = r.fixed_ms {
            return Ok(Dist::FixedMs(x));
        }
        if let Some(x) = r.uniform_ms {
            return Ok(Dist::UniformMs(x));
        }
        if let Some(LognormalRepr { p50, p99 }) = r.lognormal_ms {
            return Ok(Dist::LognormalMs { p50, p99 });
        }
        if let Some(ParetoRepr { scale, shape, max }) = r.pareto_ms {
            return Ok(Dist::ParetoMs { scale, shape, max });
        }
        let unit = r.unit.unwrap_or_default();
        let source = match (r.samples_file, r.histogram_file) {
            (Some(path), _) => Source::SamplesFile {
                path,
                column: r.column,
            },
            (None, Some(path)) => Source::HistogramFile { path },
            (None, None) => Source::Histogram(r.histogram.unwrap_or_default()),
        };
        Empirical::new(source, unit, r.max).map(Dist::Empirical)
    }
}

impl From<Dist> for DistRepr {
    fn from(d: Dist) -> DistRepr {
        let mut r = DistRepr::default();
        match d {
            Dist::FixedMs(x) => r.fixed_ms = Some(x),
            Dist::UniformMs(x) => r.uniform_ms = Some(x),
            Dist::LognormalMs { p50, p99 } => r.lognormal_ms = Some(LognormalRepr { p50, p99 }),
            Dist::ParetoMs { scale, shape, max } => {
                r.pareto_ms = Some(ParetoRepr { scale, shape, max })
            }
            Dist::Empirical(e) => {
                r.unit = (e.unit != Unit::Ms).then_some(e.unit);
                r.max = e.max;
                match e.source {
                    Source::SamplesFile { path, column } => {
                        r.samples_file = Some(path);
                        r.column = column;
                    }
                    Source::HistogramFile { path } => r.histogram_file = Some(path),
                    Source::Histogram(pairs) => r.histogram = Some(pairs),
                }
            }
        }
        r
    }
}

/// The log-normal's `(mu, sigma)` for a median and a 99th percentile.
pub fn lognormal_params(p50: f64, p99: f64) -> (f64, f64) {
    let mu = p50.ln();
    let sigma = ((p99.ln() - mu) / Z99).max(0.0);
    (mu, sigma)
}

impl Dist {
    /// Checks the parameters; the reason names what is wrong.
    pub fn check(&self) -> Result<(), String> {
        let finite = |x: f64| x.is_finite() && (0.0..=MAX_MS as f64).contains(&x);
        match self {
            Dist::FixedMs(x) if !finite(*x) => {
                Err(format!("must be between 0 and {} ms, got {x}", MAX_MS))
            }
            Dist::UniformMs([a, b]) if !finite(*a) || !finite(*b) || a > b => Err(format!(
                "needs 0 <= low <= high <= {} ms, got [{a}, {b}]",
                MAX_MS
            )),
            Dist::LognormalMs { p50, p99 } if !(*p50 > 0.0 && p50.is_finite()) => {
                Err(format!("p50 must be greater than 0, got {p50}"))
            }
            Dist::LognormalMs { p50, p99 } if !(p99 >= p50 && finite(*p99)) => {
                Err(format!("p99 ({p99}) must not be below p50 ({p50})"))
            }
            Dist::ParetoMs { scale, .. } if !(finite(*scale) && *scale > 0.0) => Err(format!(
                "pareto_ms.scale must be above 0 and at most {MAX_MS} ms, got {scale}"
            )),
            Dist::ParetoMs { shape, .. } if !(shape.is_finite() && *shape > 0.0) => Err(format!(
                "pareto_ms.shape must be a number above 0, got {shape}"
            )),
            Dist::ParetoMs {
                scale,
                max: Some(m),
                ..
            } if !(finite(*m) && m >= scale) => Err(format!(
                "pareto_ms.max ({m}) must be between scale ({scale}) and {MAX_MS} ms"
            )),
            Dist::Empirical(e) if e.data().is_none() => Err(
                "the data file was not loaded (Scenario::load or Scenario::parse reads it)".into(),
            ),
            _ => Ok(()),
        }
    }

    /// The `u`-quantile (0 < u < 1), in milliseconds. Exploration draws fault-space pauses
    /// with it, so that a pause shrinks toward the distribution's shortest.
    pub fn quantile_ms(&self, u: f64) -> f64 {
        let u = u.clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON);
        match self {
            Dist::FixedMs(x) => *x,
            Dist::UniformMs([a, b]) => a + (b - a) * u,
            Dist::LognormalMs { p50, p99 } => {
                let (mu, sigma) = lognormal_params(*p50, *p99);
                (mu + sigma * normal_quantile(u)).exp().min(MAX_MS as f64)
            }
            Dist::ParetoMs { scale, shape, max } => (scale / (1.0 - u).powf(1.0 / shape))
                .min(max.unwrap_or(f64::INFINITY))
                .min(MAX_MS as f64),
            Dist::Empirical(e) => e.quantile_ms(u),
        }
    }

    /// The distribution's median, in milliseconds (for summaries).
    pub fn median_ms(&self) -> f64 {
        match self {
            Dist::FixedMs(x) => *x,
            Dist::UniformMs([a, b]) => (a + b) / 2.0,
            Dist::LognormalMs { p50, .. } => *p50,
            _ => self.quantile_ms(0.5),
        }
    }
}

/// The standard normal's quantile (Acklam's rational approximation, relative error below
/// 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    const LOW: f64 = 0.024_25;
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}
