//! Slopes on log–log axes: ordinary least squares of ln y on ln x with a 95% confidence
//! interval from Student's t (the quantile computed, not tabulated: the t CDF through the
//! regularized incomplete beta function, inverted by bisection).

/// A fitted log–log slope.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fit {
    /// d ln y / d ln x.
    pub slope: f64,
    /// Lower end of the 95% interval (NaN with fewer than three points).
    pub lo: f64,
    /// Upper end of the 95% interval.
    pub hi: f64,
    /// ln y at ln x = 0.
    pub intercept: f64,
    /// Points used (those with x > 0 and y > 0, both finite).
    pub points: usize,
}

/// x values whose logarithms spread less than this (root-mean-square deviation of ln x) count
/// as one value: they agree to about one part in 10⁹. A fit through a single x has no slope,
/// and the rounding in the mean of n equal ln x leaves a spread of ~1e-16, not 0.
const MIN_LN_X_SPREAD: f64 = 1e-9;

/// Whether log–log axes can place the point (x, y): both finite and above zero. The points a
/// fit runs through, and those a figure draws.
pub fn on_log_axes(&(x, y): &(f64, f64)) -> bool {
    x.is_finite() && y.is_finite() && x > 0.0 && y > 0.0
}

/// The least-squares slope of ln y against ln x; `None` with fewer than two usable points or
/// a single distinct x (x values agreeing to about one part in 10⁹ count as one).
pub fn fit_loglog(points: &[(f64, f64)]) -> Option<Fit> {
    let logs: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| on_log_axes(p))
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    let n = logs.len();
    if n < 2 {
        return None;
    }
    let nf = n as f64;
    let (mx, my) = (
        logs.iter().map(|p| p.0).sum::<f64>() / nf,
        logs.iter().map(|p| p.1).sum::<f64>() / nf,
    );
    let sxx: f64 = logs.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = logs.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx / nf <= MIN_LN_X_SPREAD * MIN_LN_X_SPREAD {
        return None;
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let (lo, hi) = if n >= 3 {
        let sse: f64 = logs
            .iter()
            .map(|p| (p.1 - intercept - slope * p.0).powi(2))
            .sum();
        let se = (sse / (nf - 2.0) / sxx).sqrt();
        let t = student_t_quantile(0.975, nf - 2.0);
        (slope - t * se, slope + t * se)
    } else {
        (f64::NAN, f64::NAN)
    };
    Some(Fit {
        slope,
        lo,
        hi,
        intercept,
        points: n,
    })
}

/// The p-quantile (0.5 < p < 1) of Student's t with `df` degrees of freedom.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 1.0);
    while student_t_cdf(hi, df) < p {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// P(T ≤ t) for Student's t with `df` degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * incomplete_beta(df / (df + t * t), 0.5 * df, 0.5);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, &c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized incomplete beta function I_x(a, b).
fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(x, a, b) / a
    } else {
        1.0 - front * beta_fraction(1.0 - x, b, a) / b
    }
}

/// The continued fraction of the incomplete beta function (modified Lentz).
fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=500 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::HostRng;
    use rand::RngExt;

    #[test]
    fn t_quantiles_match_known_values() {
        // Two-sided 95% critical values of Student's t.
        for (df, want) in [
            (1.0, 12.706_204_736),
            (2.0, 4.302_652_730),
            (10.0, 2.228_138_852),
            (30.0, 2.042_272_456),
        ] {
            let got = student_t_quantile(0.975, df);
            assert!((got - want).abs() < 1e-6, "df {df}: {got} vs {want}");
        }
        // Large df tends to the normal's 1.959964.
        assert!((student_t_quantile(0.975, 1e7) - 1.959_964).abs() < 1e-5);
    }

    #[test]
    fn exact_power_laws_give_their_slope() {
        for slope in [-1.0, -0.5, 0.25, 1.0, 2.0] {
            let pts: Vec<(f64, f64)> = (1..=8)
                .map(|i| (f64::from(i), 3.0 * f64::from(i).powf(slope)))
                .collect();
            let f = fit_loglog(&pts).unwrap();
            assert!((f.slope - slope).abs() < 1e-12, "{slope}: {f:?}");
            assert!((f.intercept - 3f64.ln()).abs() < 1e-12);
            assert!(
                f.hi - f.lo < 1e-9,
                "a noiseless fit has a zero-width interval: {f:?}"
            );
        }
    }

    /// With seeded multiplicative noise the 95% interval covers the true slope in about 95%
    /// of 400 fits (binomial sd ≈ 1.1%; the bounds are more than 3 sd wide).
    #[test]
    fn intervals_cover_the_true_slope() {
        let mut rng = HostRng::new(17, 0);
        let mut covered = 0;
        for _ in 0..400 {
            let pts: Vec<(f64, f64)> = (1..=10)
                .map(|i| {
                    let x = 2f64.powi(i);
                    // Noise: a sum of uniforms, roughly normal, sd 0.1 on ln y.
                    let e: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
                    (x, x.powf(-0.5) * (0.1 * e).exp())
                })
                .collect();
            let f = fit_loglog(&pts).unwrap();
            if f.lo <= -0.5 && -0.5 <= f.hi {
                covered += 1;
            }
        }
        assert!((364..=396).contains(&covered), "covered {covered} of 400");
    }

    #[test]
    fn unusable_points_are_dropped() {
        assert!(fit_loglog(&[(1.0, 1.0)]).is_none());
        assert!(fit_loglog(&[(1.0, 1.0), (1.0, 2.0)]).is_none());
        let f = fit_loglog(&[(1.0, 1.0), (2.0, 2.0), (0.0, 5.0), (3.0, f64::NAN)]).unwrap();
        assert_eq!(f.points, 2);
        assert!(f.lo.is_nan());
    }

    /// Twelve rows at one x (a sweep filtered to t_mix = 5): the mean of twelve equal ln 5
    /// rounds, so the spread of ln x is ~1e-31, not 0; that is no fit, not a slope with an
    /// interval of ±1e14.
    #[test]
    fn a_single_distinct_x_gives_no_fit() {
        let pts: Vec<(f64, f64)> = (0..12).map(|i| (5.0, 0.3 + 0.01 * f64::from(i))).collect();
        assert!(fit_loglog(&pts).is_none(), "{:?}", fit_loglog(&pts));
        // x values one part in 10¹² apart are one value too; one part in 10⁶ apart are two.
        let near: Vec<(f64, f64)> = (0..6)
            .map(|i| (5.0 * (1.0 + 1e-12 * f64::from(i % 2)), 1.0 + f64::from(i)))
            .collect();
        assert!(fit_loglog(&near).is_none());
        let apart: Vec<(f64, f64)> = (0..6)
            .map(|i| {
                (
                    5.0 * (1.0 + 1e-6 * f64::from(i % 2)),
                    1.0 + f64::from(i % 2),
                )
            })
            .collect();
        assert!(fit_loglog(&apart).is_some());
    }
}
