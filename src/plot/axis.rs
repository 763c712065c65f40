//! The log axes of a figure: [`LnAxis`], a linear axis over ln v marked at round values of v
//! ([`log_marks`]), and [`tick`], the three-significant-digit labels of its marks (and of the
//! reference lines).

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;

/// A tick label: three significant digits, no trailing zeros (4914.8 → 4910, 0.5493 →
/// 0.549, 7.389 → 7.39).
pub(super) fn tick(v: f64) -> String {
    if !(v.is_finite() && v > 1e-300) {
        return format!("{v:e}");
    }
    let digits = 2 - v.log10().floor() as i32;
    let scale = 10f64.powi(digits);
    let rounded = (v * scale).round() / scale;
    let text = format!("{:.*}", digits.max(0) as usize, rounded);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Where a log axis over `lo..hi` (0 < lo < hi) is marked: `major` at round values, labelled;
/// `minor` (unlabelled grid lines) at every 1…9 × 10^k when the major marks are every power of
/// ten or 1, 2, 5 × 10^k. Both ascending, in axis units (not logarithms).
#[derive(Clone, Debug, PartialEq)]
struct Marks {
    major: Vec<f64>,
    minor: Vec<f64>,
}

/// Mantissas of the round values a narrow log axis is marked at (under about a factor of 5).
const FINE: [f64; 9] = [1.0, 1.2, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0];

/// `m` × 10^`k`, as close to the decimal number as a division makes it (0.2, not
/// 0.20000000000000004).
fn decimal(m: f64, k: i32) -> f64 {
    if k >= 0 {
        m * 10f64.powi(k)
    } else {
        m / 10f64.powi(-k)
    }
}

/// The values m × 10^k inside `lo..=hi`, m from `mantissas`, ascending.
fn round_values(lo: f64, hi: f64, mantissas: &[f64]) -> Vec<f64> {
    let inside = |v: f64| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9);
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    (k0..=k1)
        .flat_map(|k| mantissas.iter().map(move |&m| decimal(m, k)))
        .filter(|&v| inside(v))
        .collect()
}

/// The marks of a log axis over `lo..hi`: powers of ten where four or more fit (every second,
/// third… power where more than ten would); else 1, 2, 5 × 10^k where three fit (ranges under
/// about two decades); else 1, 1.2, 1.5, 2, 3, 4, 5, 6, 8 × 10^k where three fit (under about a
/// factor of five); else evenly spaced values a step of 1, 2 or 5 × 10^k apart. Always at least
/// two major marks, at most about ten.
fn log_marks(lo: f64, hi: f64) -> Marks {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Marks {
            major: Vec::new(),
            minor: Vec::new(),
        };
    }
    let every = || round_values(lo, hi, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    let powers = round_values(lo, hi, &[1.0]);
    if powers.len() >= 4 {
        let stride = powers.len().div_ceil(10) as i32;
        if stride == 1 {
            return Marks {
                major: powers,
                minor: every(),
            };
        }
        let major = powers
            .into_iter()
            .filter(|v| (v.log10().round() as i32).rem_euclid(stride) == 0)
            .collect();
        return Marks {
            major,
            minor: Vec::new(),
        };
    }
    let tens = round_values(lo, hi, &[1.0, 2.0, 5.0]);
    if tens.len() >= 3 {
        return Marks {
            major: tens,
            minor: every(),
        };
    }
    let fine = round_values(lo, hi, &FINE);
    if fine.len() >= 3 {
        return Marks {
            major: fine,
            minor: Vec::new(),
        };
    }
    // A step of 1, 2 or 5 × 10^k, the largest at most a quarter of the range: 4 to 10 marks.
    let quarter = (hi - lo) / 4.0;
    let k = quarter.log10().floor() as i32;
    let m = [5.0, 2.0, 1.0]
        .into_iter()
        .find(|&m| decimal(m, k) <= quarter)
        .unwrap_or(1.0);
    let step = decimal(m, k);
    let (first, last) = ((lo / step).ceil() as i64, (hi / step).floor() as i64);
    let major = (first..=last).map(|i| decimal(i as f64 * m, k)).collect();
    Marks {
        major,
        minor: Vec::new(),
    }
}

/// A log axis drawn as a linear axis over ln v (so every figure element is placed at ln x,
/// ln y), marked at the round values of [`log_marks`] rather than at plotters' round values of
/// ln v, which fell at powers of e.
#[derive(Clone)]
pub(super) struct LnAxis {
    /// The linear axis over ln v.
    linear: RangedCoordf64,
    /// ln of the major marks.
    major: Vec<f64>,
    /// ln of the minor marks.
    minor: Vec<f64>,
}

impl LnAxis {
    /// The axis over `lo..hi` (in axis units, 0 < lo < hi).
    pub(super) fn new(lo: f64, hi: f64) -> Self {
        let marks = log_marks(lo, hi);
        let ln = |v: Vec<f64>| v.into_iter().map(f64::ln).collect();
        Self {
            linear: (lo.ln()..hi.ln()).into(),
            major: ln(marks.major),
            minor: ln(marks.minor),
        }
    }
}

impl Ranged for LnAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(value, limit)
    }

    /// The major marks for labels and bold grid lines; the minor ones too for light grid lines.
    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            let mut all = self.minor.clone();
            all.extend(&self.major);
            all
        } else {
            self.major.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.linear.range()
    }
}

#[cfg(test)]
mod tests {
    use super::{log_marks, tick};

    /// The labels of the major marks of a log axis over `lo..hi`.
    fn labels(lo: f64, hi: f64) -> Vec<String> {
        log_marks(lo, hi).major.into_iter().map(tick).collect()
    }

    #[test]
    fn log_axes_are_marked_at_round_values() {
        // Widths 4–64 and epochs 4450–6630, padded by 1.25 as figures are: once at powers of e
        // (4.48, 7.39, 12.2, …; 4450, 5430, 6630).
        assert_eq!(labels(3.2, 80.0), ["5", "10", "20", "50"]);
        assert_eq!(labels(3560.0, 8287.5), ["4000", "5000", "6000", "8000"]);
        // t_mix 5–112: 1, 2, 5 × 10^k under two decades.
        assert_eq!(labels(4.0, 140.0), ["5", "10", "20", "50", "100"]);
        // Four decades or more: powers of ten, and every second one past ten of them.
        assert_eq!(labels(8e-5, 1.25), ["0.0001", "0.001", "0.01", "0.1", "1"]);
        assert_eq!(
            labels(1e-3, 1e12),
            [
                "0.01",
                "1",
                "100",
                "10000",
                "1000000",
                "100000000",
                "10000000000",
                "1000000000000"
            ]
        );
        // Narrower than the finer round values: evenly spaced ones.
        assert_eq!(
            labels(1.25, 1.95),
            ["1.3", "1.4", "1.5", "1.6", "1.7", "1.8", "1.9"]
        );
        assert_eq!(
            labels(102.0, 160.0),
            ["110", "120", "130", "140", "150", "160"]
        );
        // Minor grid lines at 1…9 × 10^k beside powers of ten and 1-2-5 marks.
        assert_eq!(log_marks(3.2, 80.0).minor.len(), 6 + 8);
        assert!(log_marks(3560.0, 8287.5).minor.is_empty());
    }

    /// Over every range a figure can have (at least a factor 1.25² = 1.5625, from its padding),
    /// at many offsets: two to eleven marks, inside the range, ascending, each label distinct
    /// and round: of at most two significant digits, or (evenly spaced marks) a multiple of a
    /// step of 1, 2 or 5 × 10^k.
    #[test]
    fn every_log_axis_gets_two_to_eleven_round_marks() {
        let significant = |t: &str| {
            let digits: String = t.chars().filter(char::is_ascii_digit).collect();
            digits.trim_matches('0').len()
        };
        for i in 0..200 {
            let lo = 10f64.powf(-6.0 + 0.0613 * f64::from(i));
            for factor in [
                1.5625, 1.8, 2.5, 3.0, 4.9, 7.0, 12.0, 60.0, 300.0, 1e3, 1e5, 1e9,
            ] {
                let hi = lo * factor;
                let marks = log_marks(lo, hi).major;
                let texts = labels(lo, hi);
                let shown = format!("{lo}..{hi}: {texts:?}");
                assert!((2..=11).contains(&marks.len()), "{shown}");
                assert!(marks.windows(2).all(|w| w[0] < w[1]), "{shown}");
                assert!(
                    marks
                        .iter()
                        .all(|&v| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9)),
                    "{shown}"
                );
                for (k, t) in texts.iter().enumerate() {
                    assert!(!texts[..k].contains(t), "{shown}");
                }
                if texts.iter().any(|t| significant(t) > 2) {
                    let step = marks[1] - marks[0];
                    let mantissa = step / 10f64.powf(step.log10().floor());
                    assert!(
                        [1.0, 2.0, 5.0].iter().any(|m| (mantissa - m).abs() < 1e-6),
                        "{shown}"
                    );
                    for v in &marks {
                        let n = v / step;
                        assert!((n - n.round()).abs() < 1e-6, "{shown}");
                    }
                }
            }
        }
    }

    #[test]
    fn ticks_keep_three_significant_digits() {
        assert_eq!(tick(4914.769), "4910");
        assert_eq!(tick(36315.5), "36300");
        assert_eq!(tick(0.5493), "0.549");
        assert_eq!(tick(7.389), "7.39");
        assert_eq!(tick(20.0), "20");
        assert_eq!(tick(0.0012345), "0.00123");
    }
}
