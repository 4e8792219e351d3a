//! Per-customer intervals of CLV and P(alive) from the sampling uncertainty of the fitted
//! parameters (not from purchase randomness: a customer's actual future spend varies far more).
//!
//! Method (parametric draws from the asymptotic distribution of the maximum-likelihood
//! estimate; e.g. Train 2009, "Discrete Choice Methods with Simulation", section 10.5, or Efron &
//! Tibshirani 1993, ch. 6): the estimate of the log-parameters is approximately normal with the
//! covariance of the inverse Hessian of the negative log-likelihood (the same Hessian the
//! standard errors come from). `draws` parameter vectors are drawn from that normal for the
//! transaction model and, independently (the likelihoods are separate), for Gamma-Gamma, with a
//! seeded ChaCha8 generator, so the output is deterministic. For every draw the model is
//! re-evaluated exactly; the interval ends are the sample quantiles (linear interpolation,
//! Hyndman & Fan 1996 type 7) at (1 - level)/2 and (1 + level)/2, and the midpoint at 1/2.
//!
//! Cost: the draws are evaluated on distinct (x, T) pairs (the horizon part of the conditional
//! expectation, see [`super::score`]) and distinct (x, t_x, T) rows (P(alive)), in chunks, so
//! memory is O(customers + chunk x draws); only the final product with each customer's expected
//! spend is per customer.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::gamma_gamma::GammaGammaParams;
use super::optimize::cholesky;
use super::score::{pair_values, xt_pairs};
use super::summary::Rfm;
use super::transaction::{NbdParams, TransactionModel};
use super::value::ClvOptions;

/// Interval settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IntervalOptions {
    /// Central coverage of the interval, in (0, 1) (0.9: the 5th and 95th percentiles).
    pub level: f64,
    /// Number of parameter draws (>= 10).
    pub draws: usize,
    /// Seed of the draws.
    pub seed: u64,
}

impl Default for IntervalOptions {
    fn default() -> Self {
        IntervalOptions {
            level: 0.9,
            draws: 200,
            seed: 1,
        }
    }
}

impl IntervalOptions {
    /// Checks the options.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(format!("interval must be in (0, 1), got {}", self.level));
        }
        if !(10..=100_000).contains(&self.draws) {
            return Err(format!(
                "interval_draws must be in 10..=100000, got {}",
                self.draws
            ));
        }
        Ok(())
    }
}

/// A customer for [`intervals`]: its summary row and mean repeat spend m (ignored when x = 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CustomerRef {
    /// Index into the rows.
    pub row: usize,
    /// Mean repeat spend on the CLV basis.
    pub m: f64,
}

/// Interval ends from [`intervals`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Intervals {
    /// Lower end of P(alive), per row.
    pub p_alive_lo: Vec<f64>,
    /// Upper end of P(alive), per row.
    pub p_alive_hi: Vec<f64>,
    /// Lower end of CLV, per customer.
    pub clv_lo: Vec<f64>,
    /// Median of CLV over the draws, per customer.
    pub clv_mid: Vec<f64>,
    /// Upper end of CLV, per customer.
    pub clv_hi: Vec<f64>,
}

/// Type-7 sample quantile of `v` (reordered in place) at probability q.
fn quantile(v: &mut [f64], q: f64) -> f64 {
    let n = v.len();
    let h = (n - 1) as f64 * q;
    let lo = h.floor() as usize;
    let frac = h - lo as f64;
    let (_, a, rest) = v.select_nth_unstable_by(lo, |x, y| x.total_cmp(y));
    let a = *a;
    if frac == 0.0 || rest.is_empty() {
        return a;
    }
    let b = rest.iter().copied().fold(f64::INFINITY, f64::min);
    a + frac * (b - a)
}

/// Parameter draws: `center` + L z with L the Cholesky factor of `cov`, z standard normal.
fn draw(rng: &mut ChaCha8Rng, center: &[f64], chol: &[Vec<f64>], n: usize) -> Vec<Vec<f64>> {
    let k = center.len();
    (0..n)
        .map(|_| {
            let z: Vec<f64> = (0..k).map(|_| StandardNormal.sample(rng)).collect();
            (0..k)
                .map(|i| center[i] + (0..=i).map(|j| chol[i][j] * z[j]).sum::<f64>())
                .collect()
        })
        .collect()
}

const PAIRS_PER_CHUNK: usize = 64;

/// CLV and P(alive) intervals (see the module docs). `cov` is the covariance of
/// (ln r, ln alpha, ln a, ln b) (`TransactionFit::cov_log`), `spend_cov` that of
/// (ln p, ln(q - 1), ln v) (`GammaGammaFit::cov_log`; None treats spend as known).
/// Err for invalid options or a covariance that is not positive definite.
#[allow(clippy::too_many_arguments)]
pub fn intervals(
    model: &TransactionModel,
    cov: &[Vec<f64>],
    spend: &GammaGammaParams,
    spend_cov: Option<&[Vec<f64>]>,
    rows: &[Rfm],
    customers: &[CustomerRef],
    opts: &ClvOptions,
    iv: &IntervalOptions,
) -> Result<Intervals, String> {
    opts.validate()?;
    iv.validate()?;
    if customers.iter().any(|c| c.row >= rows.len()) {
        return Err("customer row out of range".into());
    }
    let chol = cholesky(cov).ok_or("transaction-model covariance is not positive definite")?;
    let p = model.params;
    let center = [p.r.ln(), p.alpha.ln(), p.a.ln(), p.b.ln()];
    let mut rng = ChaCha8Rng::seed_from_u64(iv.seed);
    let models: Vec<TransactionModel> = draw(&mut rng, &center, &chol, iv.draws)
        .into_iter()
        .map(|t| TransactionModel {
            kind: model.kind,
            params: NbdParams {
                r: t[0].exp(),
                alpha: t[1].exp(),
                a: t[2].exp(),
                b: t[3].exp(),
            },
        })
        .collect();
    let spends: Vec<GammaGammaParams> = match spend_cov {
        Some(c) => {
            let gc = cholesky(c).ok_or("Gamma-Gamma covariance is not positive definite")?;
            let gcenter = [spend.p.ln(), (spend.q - 1.0).ln(), spend.v.ln()];
            draw(&mut rng, &gcenter, &gc, iv.draws)
                .into_iter()
                .map(|t| GammaGammaParams {
                    p: t[0].exp(),
                    q: 1.0 + t[1].exp(),
                    v: t[2].exp(),
                })
                .collect()
        }
        None => vec![*spend; iv.draws],
    };
    let steps: Vec<(f64, f64)> = opts
        .schedule()
        .into_iter()
        .map(|(d, disc)| (d / opts.days_per_unit, disc))
        .collect();
    let horizon = steps.last().map(|s| s.0).unwrap_or(0.0);
    // rows grouped by (x, T) pair, customers grouped by row
    let (pairs, of_row) = xt_pairs(rows);
    let mut pair_start = vec![0usize; pairs.len() + 1];
    for &k in &of_row {
        pair_start[k as usize + 1] += 1;
    }
    for i in 0..pairs.len() {
        pair_start[i + 1] += pair_start[i];
    }
    let mut fill = pair_start.clone();
    let mut row_order = vec![0usize; rows.len()];
    for (i, &k) in of_row.iter().enumerate() {
        row_order[fill[k as usize]] = i;
        fill[k as usize] += 1;
    }
    let mut cust_start = vec![0usize; rows.len() + 1];
    for c in customers {
        cust_start[c.row + 1] += 1;
    }
    for i in 0..rows.len() {
        cust_start[i + 1] += cust_start[i];
    }
    let mut fill = cust_start.clone();
    let mut cust_order = vec![0usize; customers.len()];
    for (i, c) in customers.iter().enumerate() {
        cust_order[fill[c.row]] = i;
        fill[c.row] += 1;
    }
    let d = iv.draws;
    let (qlo, qhi) = ((1.0 - iv.level) / 2.0, (1.0 + iv.level) / 2.0);
    type RowOut = (usize, f64, f64);
    type CustOut = (usize, f64, f64, f64);
    let chunk = |c: usize| -> (Vec<RowOut>, Vec<CustOut>) {
        let (k0, k1) = (
            c * PAIRS_PER_CHUNK,
            ((c + 1) * PAIRS_PER_CHUNK).min(pairs.len()),
        );
        let chunk_rows = &row_order[pair_start[k0]..pair_start[k1]];
        let mut dep = vec![0.0; chunk_rows.len() * d];
        let mut alive = vec![0.0; chunk_rows.len() * d];
        for (j, m) in models.iter().enumerate() {
            let mut local = 0usize;
            for k in k0..k1 {
                let (x, t) = pairs[k];
                let (g, _) = pair_values(m, x, t, &steps, horizon);
                for &ri in &row_order[pair_start[k]..pair_start[k + 1]] {
                    let pa = m.p_alive(&rows[ri]);
                    alive[local * d + j] = pa;
                    dep[local * d + j] = pa * g;
                    local += 1;
                }
            }
        }
        let mut rows_out = Vec::with_capacity(chunk_rows.len());
        let mut cust_out = Vec::new();
        let mut buf = vec![0.0; d];
        for (local, &ri) in chunk_rows.iter().enumerate() {
            let a = &mut alive[local * d..(local + 1) * d];
            rows_out.push((ri, quantile(a, qlo), quantile(a, qhi)));
            let x = rows[ri].x;
            for &ci in &cust_order[cust_start[ri]..cust_start[ri + 1]] {
                let mv = if x > 0.0 { customers[ci].m } else { 0.0 };
                for j in 0..d {
                    buf[j] = dep[local * d + j] * spends[j].conditional_expected_spend(x, mv);
                }
                let lo = quantile(&mut buf, qlo);
                let mid = quantile(&mut buf, 0.5);
                let hi = quantile(&mut buf, qhi);
                cust_out.push((ci, lo, mid, hi));
            }
        }
        (rows_out, cust_out)
    };
    let parts: Vec<(Vec<RowOut>, Vec<CustOut>)> = (0..pairs.len().div_ceil(PAIRS_PER_CHUNK))
        .into_par_iter()
        .map(chunk)
        .collect();
    let mut out = Intervals {
        p_alive_lo: vec![f64::NAN; rows.len()],
        p_alive_hi: vec![f64::NAN; rows.len()],
        clv_lo: vec![f64::NAN; customers.len()],
        clv_mid: vec![f64::NAN; customers.len()],
        clv_hi: vec![f64::NAN; customers.len()],
    };
    for (ro, co) in parts {
        for (i, lo, hi) in ro {
            out.p_alive_lo[i] = lo;
            out.p_alive_hi[i] = hi;
        }
        for (i, lo, mid, hi) in co {
            out.clv_lo[i] = lo;
            out.clv_mid[i] = mid;
            out.clv_hi[i] = hi;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::gamma_gamma::fit_gamma_gamma;
    use super::super::sim::{simulate_bgnbd, simulate_spend};
    use super::super::summary::{summarize, summarize_spend};
    use super::super::transaction::{FitOptions, TransactionModelKind, fit_transactions};
    use super::*;

    #[test]
    fn quantiles_are_type_7() {
        let mut v: Vec<f64> = (1..=11).rev().map(|i| i as f64).collect();
        assert_eq!(quantile(&mut v, 0.5), 6.0);
        assert_eq!(quantile(&mut v, 0.0), 1.0);
        assert_eq!(quantile(&mut v, 1.0), 11.0);
        assert!((quantile(&mut v, 0.05) - 1.5).abs() < 1e-12);
        let mut w = vec![3.0, 1.0];
        assert!((quantile(&mut w, 0.25) - 1.5).abs() < 1e-12);
    }

    /// Repeated simulations with known parameters: the 90% interval of each probe customer's
    /// expected CLV should cover the CLV at the true parameters in about 90% of the cases.
    #[test]
    #[allow(clippy::needless_range_loop)]
    fn ninety_percent_intervals_cover_the_true_clv_about_ninety_percent_of_the_time() {
        let truth = NbdParams {
            r: 0.5,
            alpha: 5.0,
            a: 0.8,
            b: 2.5,
        };
        let gg_truth = GammaGammaParams {
            p: 6.0,
            q: 3.5,
            v: 15.0,
        };
        let opts = ClvOptions {
            horizon_days: 365.0,
            step_days: 30.0,
            annual_discount_rate: 0.1,
            days_per_unit: 7.0,
        };
        let iv = IntervalOptions {
            level: 0.9,
            draws: 200,
            seed: 7,
        };
        // probe customers: (x, t_x, T, m)
        let probes = [
            (0.0, 0.0, 30.0, 0.0),
            (1.0, 10.0, 40.0, 30.0),
            (4.0, 45.0, 50.0, 20.0),
            (2.0, 5.0, 50.0, 60.0),
        ];
        let probe_rows: Vec<Rfm> = probes
            .iter()
            .map(|&(x, t_x, t, _)| Rfm { x, t_x, t })
            .collect();
        let probe_refs: Vec<CustomerRef> = probes
            .iter()
            .enumerate()
            .map(|(i, p)| CustomerRef { row: i, m: p.3 })
            .collect();
        let true_model = TransactionModel {
            kind: TransactionModelKind::BgNbd,
            params: truth,
        };
        let true_clv: Vec<f64> = probes
            .iter()
            .zip(&probe_rows)
            .map(|(p, c)| {
                super::super::value::customer_lifetime_value(
                    &true_model,
                    c,
                    gg_truth.conditional_expected_spend(p.0, p.3),
                    &opts,
                )
            })
            .collect();
        let sims = 200;
        let (mut covered, mut total) = (0usize, 0usize);
        for s in 0..sims {
            let sim = simulate_bgnbd(2000, &truth, 52.0, 1000 + s);
            let spend = simulate_spend(&sim, &gg_truth, 5000 + s);
            let rows = summarize(&sim).rows;
            let fit = fit_transactions(TransactionModelKind::BgNbd, &rows, &FitOptions::default());
            let x: Vec<f64> = sim.iter().map(|c| c.x).collect();
            let sp = summarize_spend(&x, &spend).expect("same length");
            let gg = fit_gamma_gamma(&sp.rows, &FitOptions::default());
            if !fit.converged || !gg.converged || fit.cov_log.is_none() || gg.cov_log.is_none() {
                continue;
            }
            let r = intervals(
                &fit.model,
                fit.cov_log.as_deref().expect("cov"),
                &gg.params,
                gg.cov_log.as_deref(),
                &probe_rows,
                &probe_refs,
                &opts,
                &IntervalOptions {
                    seed: iv.seed + s,
                    ..iv
                },
            )
            .expect("intervals");
            for i in 0..probes.len() {
                assert!(r.clv_lo[i] <= r.clv_mid[i] && r.clv_mid[i] <= r.clv_hi[i]);
                assert!(r.p_alive_lo[i] <= r.p_alive_hi[i]);
                total += 1;
                if r.clv_lo[i] <= true_clv[i] && true_clv[i] <= r.clv_hi[i] {
                    covered += 1;
                }
            }
        }
        let share = covered as f64 / total as f64;
        eprintln!(
            "90% CLV intervals covered the true CLV in {covered} of {total} cases ({share:.3})"
        );
        assert!(
            total >= 4 * (sims as usize) * 9 / 10,
            "too many failed fits: {total}"
        );
        assert!((0.85..=0.95).contains(&share), "coverage {share}");
    }

    #[test]
    fn deterministic_and_rejects_bad_options() {
        let truth = NbdParams {
            r: 0.5,
            alpha: 5.0,
            a: 0.8,
            b: 2.5,
        };
        let sim = simulate_bgnbd(3000, &truth, 52.0, 3);
        let s = summarize(&sim);
        let fit = fit_transactions(TransactionModelKind::BgNbd, &s.rows, &FitOptions::default());
        let cov = fit.cov_log.clone().expect("cov");
        let gg = GammaGammaParams {
            p: 6.0,
            q: 3.5,
            v: 15.0,
        };
        let rows = s.rfm_rows();
        let cust: Vec<CustomerRef> = s
            .row_of_customer
            .iter()
            .map(|r| CustomerRef {
                row: r.expect("valid"),
                m: 20.0,
            })
            .collect();
        let o = ClvOptions::default();
        let iv = IntervalOptions::default();
        let a = intervals(&fit.model, &cov, &gg, None, &rows, &cust, &o, &iv).expect("ok");
        let b = intervals(&fit.model, &cov, &gg, None, &rows, &cust, &o, &iv).expect("ok");
        assert_eq!(a, b);
        assert!(a.clv_lo.iter().zip(&a.clv_hi).all(|(l, h)| l <= h));
        let bad = IntervalOptions { level: 1.0, ..iv };
        assert!(intervals(&fit.model, &cov, &gg, None, &rows, &cust, &o, &bad).is_err());
        let not_pd = vec![vec![0.0; 4]; 4];
        assert!(intervals(&fit.model, &not_pd, &gg, None, &rows, &cust, &o, &iv).is_err());
    }
}
