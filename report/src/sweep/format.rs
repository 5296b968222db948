//! Numbers as the sweep report prints them: break rates with their intervals (in % or, for
//! tiny rates, in ppm), risk targets and expected counts.

use checker::tune::Rate;

/// The unit a rate and its interval are printed in: percent, or parts per million below
/// 0.1 % (where percent would need many leading zeros).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Percent,
    Ppm,
}

impl Unit {
    /// The unit for an interval whose upper bound is `high`.
    fn for_bound(high: f64) -> Unit {
        if high >= 1e-3 {
            Unit::Percent
        } else {
            Unit::Ppm
        }
    }

    fn show(self, fraction: f64) -> String {
        match self {
            Unit::Percent => sig(fraction * 100.0),
            Unit::Ppm => sig(fraction * 1e6),
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Unit::Percent => " %",
            Unit::Ppm => " ppm",
        }
    }
}

/// `x` with about two significant digits (one decimal from 10, none from 100), trailing
/// zeros trimmed: `0`, `0.38`, `1.9`, `21.4`, `70.5`, `1620`; below 0.001 in scientific
/// notation.
pub(super) fn sig(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if a < 1e-3 {
        return format!("{x:.1e}");
    }
    let decimals = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else {
        (1.0 - a.log10().floor()) as usize
    };
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A break rate as `hits / trials`, its estimate and its 95 % interval, in one unit:
/// `0 / 200 (0–1.9 %)`, `3 / 200: 1.5 % (0.51–4.3 %)`, `2 / 400000: 5 ppm (1.4–18 ppm)`.
pub(super) fn rate(r: &Rate) -> String {
    if r.trials == 0 {
        return "no conclusive trial".into();
    }
    let unit = Unit::for_bound(r.high);
    let interval = format!(
        "({}–{}{})",
        unit.show(r.low),
        unit.show(r.high),
        unit.suffix()
    );
    if r.hits == 0 {
        format!("0 / {} {interval}", r.trials)
    } else {
        format!(
            "{} / {}: {}{} {interval}",
            r.hits,
            r.trials,
            unit.show(r.estimate()),
            unit.suffix()
        )
    }
}

/// A rate's 95 % upper bound alone, in the unit [`rate`] would use: `1.9 %`, `38 ppm`.
pub(super) fn bound(r: &Rate) -> String {
    let unit = Unit::for_bound(r.high);
    format!("{}{}", unit.show(r.high), unit.suffix())
}

/// A risk target (a probability) as the user typed it: `1e-4`, `1.5e-3`.
pub(super) fn risk(p: f64) -> String {
    format!("{p:e}")
}

/// Expected violations per day, the estimate and its 95 % upper bound: `12 (≤ 95)`.
pub(super) fn per_day((estimate, upper): (f64, f64)) -> String {
    format!("{} (≤ {})", sig(estimate), sig(upper))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_significant_digits() {
        assert_eq!(sig(0.0), "0");
        assert_eq!(sig(1.88), "1.9");
        assert_eq!(sig(0.3804), "0.38");
        assert_eq!(sig(0.0386), "0.039");
        assert_eq!(sig(70.5), "70.5");
        assert_eq!(sig(70.0), "70");
        assert_eq!(sig(1620.4), "1620");
        assert_eq!(sig(0.00012), "1.2e-4");
    }

    #[test]
    fn rates_pick_percent_or_ppm_by_their_bound() {
        assert_eq!(rate(&Rate::wilson(0, 200)), "0 / 200 (0–1.9 %)");
        assert_eq!(rate(&Rate::wilson(5, 50)), "5 / 50: 10 % (4.3–21.4 %)");
        assert_eq!(rate(&Rate::wilson(0, 1_000_000)), "0 / 1000000 (0–3.8 ppm)");
        assert_eq!(
            rate(&Rate::wilson(3, 1_000_000)),
            "3 / 1000000: 3 ppm (1–8.8 ppm)"
        );
        assert_eq!(rate(&Rate::wilson(0, 0)), "no conclusive trial");
        assert_eq!(bound(&Rate::wilson(0, 1_000_000)), "3.8 ppm");
        assert_eq!(risk(1e-4), "1e-4");
        assert_eq!(per_day((0.0, 328.3)), "0 (≤ 328)");
    }
}
