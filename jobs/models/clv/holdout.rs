//! Holdout-period validation metrics for a transaction model: per-customer mean absolute error,
//! aggregate relative error and calibration by calibration-period frequency bucket (the
//! conditional-expectation check of FHL 2005, Figure 4, as a table).

/// Mean predicted and actual holdout purchases for customers with a given calibration frequency.
#[derive(Clone, Debug, PartialEq)]
pub struct CalibrationBucket {
    /// Calibration frequency x of the bucket (the lower bound when `open_ended`).
    pub frequency: u32,
    /// True for the last bucket, which holds all x >= `frequency` ("k+").
    pub open_ended: bool,
    /// Customers in the bucket.
    pub customers: usize,
    /// Mean predicted holdout purchases (None for an empty bucket).
    pub mean_predicted: Option<f64>,
    /// Mean actual holdout purchases (None for an empty bucket).
    pub mean_actual: Option<f64>,
}

/// Aggregate holdout metrics from [`holdout_metrics`].
#[derive(Clone, Debug, PartialEq)]
pub struct HoldoutMetrics {
    /// Customers used.
    pub customers: usize,
    /// Customers skipped because a value was non-finite, negative, or x was not an integer.
    pub skipped: usize,
    /// Mean over customers of |predicted - actual| (NaN when no customer was usable).
    pub mae: f64,
    /// Sum of predicted holdout purchases.
    pub sum_predicted: f64,
    /// Sum of actual holdout purchases.
    pub sum_actual: f64,
    /// (sum predicted - sum actual) / sum actual; None when the actual sum is 0.
    pub relative_error: Option<f64>,
    /// Buckets x = 0, 1, ..., top-1 and the open bucket "top+", in that order.
    pub buckets: Vec<CalibrationBucket>,
}

/// Largest `top_bucket` accepted by [`holdout_metrics`].
pub const MAX_TOP_BUCKET: u32 = 100_000;

/// Computes holdout metrics from per-customer predicted and actual holdout purchase counts and
/// calibration frequencies; `top_bucket` = k makes buckets 0..k-1 and "k+". Err if the lengths
/// differ or k > [`MAX_TOP_BUCKET`]. Invalid rows are skipped and counted, never a panic.
pub fn holdout_metrics(
    predicted: &[f64],
    actual: &[f64],
    calibration_frequency: &[f64],
    top_bucket: u32,
) -> Result<HoldoutMetrics, String> {
    if predicted.len() != actual.len() || predicted.len() != calibration_frequency.len() {
        return Err(format!(
            "length mismatch: predicted {}, actual {}, calibration_frequency {}",
            predicted.len(),
            actual.len(),
            calibration_frequency.len()
        ));
    }
    if top_bucket > MAX_TOP_BUCKET {
        return Err(format!(
            "top_bucket {top_bucket} exceeds the maximum {MAX_TOP_BUCKET}"
        ));
    }
    let k = top_bucket as usize;
    let mut sums = vec![(0usize, 0.0f64, 0.0f64); k + 1];
    let (mut n, mut skipped, mut abs_err, mut sp, mut sa) = (0usize, 0usize, 0.0, 0.0, 0.0);
    for i in 0..predicted.len() {
        let (p, a, x) = (predicted[i], actual[i], calibration_frequency[i]);
        let ok = p.is_finite()
            && a.is_finite()
            && x.is_finite()
            && p >= 0.0
            && a >= 0.0
            && x >= 0.0
            && x == x.floor();
        if !ok {
            skipped += 1;
            continue;
        }
        n += 1;
        abs_err += (p - a).abs();
        sp += p;
        sa += a;
        let b = if x >= k as f64 { k } else { x as usize };
        sums[b].0 += 1;
        sums[b].1 += p;
        sums[b].2 += a;
    }
    let buckets = sums
        .iter()
        .enumerate()
        .map(|(i, &(c, p, a))| CalibrationBucket {
            frequency: i as u32,
            open_ended: i == k,
            customers: c,
            mean_predicted: (c > 0).then(|| p / c as f64),
            mean_actual: (c > 0).then(|| a / c as f64),
        })
        .collect();
    Ok(HoldoutMetrics {
        customers: n,
        skipped,
        mae: if n > 0 { abs_err / n as f64 } else { f64::NAN },
        sum_predicted: sp,
        sum_actual: sa,
        relative_error: (sa > 0.0).then(|| (sp - sa) / sa),
        buckets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_and_buckets() {
        let pred = [0.5, 1.0, 2.0, 4.0, f64::NAN, 3.0];
        let act = [0.0, 2.0, 2.0, 6.0, 1.0, 1.0];
        let x = [0.0, 1.0, 1.0, 5.0, 2.0, 3.0];
        let m = holdout_metrics(&pred, &act, &x, 3).expect("ok");
        assert_eq!(m.customers, 5);
        assert_eq!(m.skipped, 1);
        assert!((m.mae - (0.5 + 1.0 + 0.0 + 2.0 + 2.0) / 5.0).abs() < 1e-15);
        assert!((m.relative_error.expect("nonzero") - (10.5 - 11.0) / 11.0).abs() < 1e-15);
        assert_eq!(m.buckets.len(), 4);
        assert_eq!(m.buckets[1].customers, 2);
        assert_eq!(m.buckets[1].mean_predicted, Some(1.5));
        assert_eq!(m.buckets[2].customers, 0);
        assert_eq!(m.buckets[2].mean_actual, None);
        assert!(m.buckets[3].open_ended);
        assert_eq!(m.buckets[3].customers, 2);
        assert_eq!(m.buckets[3].mean_actual, Some(3.5));
        assert!(holdout_metrics(&[1.0], &[], &[], 3).is_err());
        assert!(holdout_metrics(&[], &[], &[], u32::MAX).is_err());
        let e = holdout_metrics(&[], &[], &[], 0).expect("empty ok");
        assert!(e.mae.is_nan() && e.relative_error.is_none() && e.buckets.len() == 1);
        let z = holdout_metrics(&[1.0], &[0.0], &[0.0], 2).expect("ok");
        assert_eq!(z.relative_error, None);
    }
}
