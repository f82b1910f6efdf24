//! Summary statistics of one cell's samples: percentiles by linear interpolation between the
//! closest ranks (the definition spreadsheets and numpy use by default), mean, min, max.

use serde::Serialize;

/// What a list of durations (ms) comes down to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// The `p`-th percentile (0..=100) of `sorted` (ascending, not empty): the value at rank
/// `p/100 · (n-1)`, interpolated linearly between the two samples around it.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let rank = (p.clamp(0.0, 100.0) / 100.0) * (n - 1) as f64;
            let lo = rank.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
        }
    }
}

/// `None` for no samples; NaN samples (never produced by a clock) are left out.
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(Summary {
        n: v.len(),
        p50: percentile(&v, 50.0),
        p95: percentile(&v, 95.0),
        p99: percentile(&v, 99.0),
        mean: v.iter().sum::<f64>() / v.len() as f64,
        min: v[0],
        max: v[v.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 100.0), 10.0);
        // rank 4.5 → halfway between 5 and 6
        assert_eq!(percentile(&v, 50.0), 5.5);
        // rank 8.55 → 9 + 0.55
        assert!((percentile(&v, 95.0) - 9.55).abs() < 1e-9);
        assert!((percentile(&v, 99.0) - 9.91).abs() < 1e-9);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn summary_sorts_and_ignores_nan() {
        let s = summarize(&[30.0, 10.0, f64::NAN, 20.0]).unwrap();
        assert_eq!((s.n, s.p50, s.min, s.max, s.mean), (3, 20.0, 10.0, 30.0, 20.0));
        assert_eq!(s.p95, 29.0);
        assert!(summarize(&[]).is_none());
        assert!(summarize(&[f64::NAN]).is_none());
    }

    #[test]
    fn odd_and_even_medians() {
        assert_eq!(summarize(&[3.0, 1.0, 2.0]).unwrap().p50, 2.0);
        assert_eq!(summarize(&[4.0, 1.0, 3.0, 2.0]).unwrap().p50, 2.5);
    }
}
