//! Model choice for `model: auto`: BG/NBD, MBG/NBD and Pareto/NBD are all fitted and one is
//! chosen, by the holdout error when a holdout window is configured, else by BIC.
//!
//! BIC = k ln n - 2 ln L (Schwarz 1978, "Estimating the dimension of a model", Annals of
//! Statistics 6(2)), with k = 4 parameters for each of the three models and n the number of
//! customers fitted; as k is the same, BIC ranks the models by log-likelihood. The holdout rule
//! uses the per-customer mean absolute error of holdout purchases of each model refitted on the
//! calibration period (see [`super::holdout`]), the out-of-sample comparison of Batislam et al.
//! (2007) and Fader, Hardie & Lee (2005). Ties go to the earlier model in [`CANDIDATES`].

use super::transaction::{TransactionFit, TransactionModelKind};

/// The models `auto` fits, in tie-breaking order.
pub const CANDIDATES: [TransactionModelKind; 3] = [
    TransactionModelKind::BgNbd,
    TransactionModelKind::MbgNbd,
    TransactionModelKind::ParetoNbd,
];

/// Bayesian information criterion k ln n - 2 ln L of a converged fit (k = 4); None otherwise.
pub fn bic(fit: &TransactionFit) -> Option<f64> {
    if !fit.converged || !fit.log_likelihood.is_finite() || !(fit.n_customers > 0.0) {
        return None;
    }
    Some(4.0 * fit.n_customers.ln() - 2.0 * fit.log_likelihood)
}

/// Which criterion chose the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Criterion {
    /// Lowest holdout mean absolute error.
    HoldoutMae,
    /// Lowest BIC.
    Bic,
}

impl Criterion {
    /// Name as written to clv_model's reason.
    pub fn name(self) -> &'static str {
        match self {
            Criterion::HoldoutMae => "holdout_mae",
            Criterion::Bic => "bic",
        }
    }
}

/// Index of the chosen fit: among converged fits, the lowest holdout MAE when `holdout_mae`
/// has a finite value for at least one of them, else the lowest BIC; None if none converged.
#[allow(clippy::needless_range_loop)]
pub fn choose(
    fits: &[TransactionFit],
    holdout_mae: Option<&[Option<f64>]>,
) -> Option<(usize, Criterion)> {
    let best = |score: &dyn Fn(usize) -> Option<f64>| -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for i in 0..fits.len() {
            if !fits[i].converged {
                continue;
            }
            if let Some(v) = score(i).filter(|v| v.is_finite())
                && best.is_none_or(|(_, b)| v < b)
            {
                best = Some((i, v));
            }
        }
        best.map(|(i, _)| i)
    };
    if let Some(m) = holdout_mae
        && let Some(i) = best(&|i| m.get(i).copied().flatten())
    {
        return Some((i, Criterion::HoldoutMae));
    }
    best(&|i| bic(&fits[i])).map(|i| (i, Criterion::Bic))
}

#[cfg(test)]
mod tests {
    use super::super::sim::{simulate_bgnbd, simulate_mbgnbd, simulate_pnbd, to_day_resolution};
    use super::super::summary::summarize;
    use super::super::transaction::{FitOptions, NbdParams, fit_transactions};
    use super::*;

    #[test]
    fn auto_picks_the_generating_model() {
        let opts = FitOptions {
            std_errors: false,
            ..FitOptions::default()
        };
        let bg = NbdParams {
            r: 0.5,
            alpha: 5.0,
            a: 0.8,
            b: 2.5,
        };
        let pn = NbdParams {
            r: 0.8,
            alpha: 4.0,
            a: 1.2,
            b: 30.0,
        };
        let n = 40_000;
        let cases = [
            (
                TransactionModelKind::BgNbd,
                simulate_bgnbd(n, &bg, 104.0, 1),
            ),
            (
                TransactionModelKind::MbgNbd,
                simulate_mbgnbd(n, &bg, 104.0, 2),
            ),
            (
                TransactionModelKind::ParetoNbd,
                simulate_pnbd(n, &pn, 156.0, 3),
            ),
        ];
        for (truth, sim) in cases {
            let rows = summarize(&to_day_resolution(&sim, 7.0)).rows;
            let fits: Vec<TransactionFit> = CANDIDATES
                .iter()
                .map(|&k| fit_transactions(k, &rows, &opts))
                .collect();
            let bics: Vec<Option<f64>> = fits.iter().map(bic).collect();
            let (i, c) = choose(&fits, None).expect("a model converged");
            assert_eq!(c, Criterion::Bic);
            assert_eq!(
                CANDIDATES[i], truth,
                "data from {truth:?}: BIC {bics:?} picked {:?}",
                CANDIDATES[i]
            );
            eprintln!("data from {truth:?}: BIC {bics:?}");
        }
    }

    #[test]
    fn holdout_error_overrides_bic_and_failures_are_skipped() {
        let sim = simulate_bgnbd(
            3000,
            &NbdParams {
                r: 0.5,
                alpha: 5.0,
                a: 0.8,
                b: 2.5,
            },
            52.0,
            4,
        );
        let rows = summarize(&sim).rows;
        let o = FitOptions::default();
        let mut fits: Vec<TransactionFit> = CANDIDATES
            .iter()
            .map(|&k| fit_transactions(k, &rows, &o))
            .collect();
        let mae = [Some(0.5), Some(0.4), Some(0.45)];
        assert_eq!(choose(&fits, Some(&mae)), Some((1, Criterion::HoldoutMae)));
        // no usable holdout value: BIC
        assert_eq!(
            choose(&fits, Some(&[None, None, None])).map(|c| c.1),
            Some(Criterion::Bic)
        );
        // a model that did not converge is never chosen
        fits[1].converged = false;
        assert_eq!(choose(&fits, Some(&mae)), Some((2, Criterion::HoldoutMae)));
        for f in fits.iter_mut() {
            f.converged = false;
        }
        assert_eq!(choose(&fits, None), None);
    }
}
