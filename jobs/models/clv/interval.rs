//! Per-customer intervals of CLV and P(alive) from the sampling uncertainty of the fitted
//! parameters (not from purchase randomness: a customer's actual future spend varies far more).
//!
//! Both methods start from the asymptotic distribution of the maximum-likelihood estimate: the
//! log-parameters are approximately normal with the covariance of the inverse Hessian of the
//! negative log-likelihood (the same Hessian the standard errors come from), for the
//! transaction model and, independently (the likelihoods are separate), for Gamma-Gamma.
//!
//! - [`IntervalMethod::Delta`] (the default) propagates that normal through a first-order
//!   expansion (the delta method; Casella & Berger 2002, section 5.5.4; Greene, "Econometric
//!   Analysis", 7th ed., theorem D.22) on the log scale of CLV and the logit scale of P(alive),
//!   where the quantities are unbounded and closer to normal: ln CLV = ln P(alive) + ln E[Y |
//!   alive] + ln E[spend], so its gradient is the sum of the three parts' gradients, taken by
//!   forward differences in the log-parameters (step [`DELTA_STEP`]); the ends are
//!   exp(ln CLV -/+ z sd) and the midpoint the CLV at the estimate. Cost: five model
//!   evaluations per distinct (x, T) pair and (x, t_x, T) row, a few flops per customer.
//! - [`IntervalMethod::Draws`] draws `draws` parameter vectors from the normal (e.g. Train 2009,
//!   "Discrete Choice Methods with Simulation", section 10.5; Efron & Tibshirani 1993, ch. 6)
//!   with a seeded ChaCha8 generator, so the output is deterministic, re-evaluates the model
//!   exactly for every draw and takes the sample quantiles (linear interpolation, Hyndman & Fan
//!   1996 type 7) at (1 - level)/2 and (1 + level)/2, and the median as the midpoint. It keeps
//!   the model's nonlinearity, at a cost that grows with the draws (200 draws: about 20 times
//!   the delta method at 1,000,000 customers, BENCHMARKS.md).
//!
//! Both evaluate on distinct (x, T) pairs (the horizon part of the conditional expectation, see
//! [`super::score`]) and distinct (x, t_x, T) rows (P(alive)), so memory is O(customers) (plus
//! chunk x draws for the draws); only the part involving each customer's spend is per customer.

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

/// How the parameter uncertainty is carried to each customer (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntervalMethod {
    /// First-order propagation of the parameters' normal (the delta method).
    #[default]
    Delta,
    /// Parameter draws from that normal, each evaluated exactly.
    Draws,
}

/// Interval settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IntervalOptions {
    /// Central coverage of the interval, in (0, 1) (0.9: the 5th and 95th percentiles).
    pub level: f64,
    /// How the uncertainty is propagated.
    pub method: IntervalMethod,
    /// Number of parameter draws (>= 10; [`IntervalMethod::Draws`] only).
    pub draws: usize,
    /// Seed of the draws ([`IntervalMethod::Draws`] only).
    pub seed: u64,
}

impl Default for IntervalOptions {
    fn default() -> Self {
        IntervalOptions {
            level: 0.9,
            method: IntervalMethod::Delta,
            draws: 200,
            seed: 1,
        }
    }
}

/// Step of the forward differences in the log-parameters of [`IntervalMethod::Delta`]: small
/// enough that the truncation error (~ step x curvature) is negligible against the interval's
/// width, large enough that the models' rounding error divided by the step stays small (the
/// agreement with the draws is tested, `delta_and_draws_agree_when_the_estimate_is_precise`).
pub const DELTA_STEP: f64 = 1e-5;

impl IntervalOptions {
    /// Checks the options.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(format!("interval must be in (0, 1), got {}", self.level));
        }
        if self.method == IntervalMethod::Draws && !(10..=100_000).contains(&self.draws) {
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
    let spend_chol = match spend_cov {
        Some(c) => Some(cholesky(c).ok_or("Gamma-Gamma covariance is not positive definite")?),
        None => None,
    };
    let steps: Vec<(f64, f64)> = opts
        .schedule()
        .into_iter()
        .map(|(d, disc)| (d / opts.days_per_unit, disc))
        .collect();
    let horizon = steps.last().map(|s| s.0).unwrap_or(0.0);
    let eval = Evaluation {
        model,
        spend,
        rows,
        customers,
        steps: &steps,
        horizon,
        level: iv.level,
    };
    Ok(match iv.method {
        IntervalMethod::Delta => eval.delta(cov, spend_cov),
        IntervalMethod::Draws => eval.draws(&chol, spend_chol.as_deref(), iv),
    })
}

/// What both methods evaluate.
struct Evaluation<'a> {
    model: &'a TransactionModel,
    spend: &'a GammaGammaParams,
    rows: &'a [Rfm],
    customers: &'a [CustomerRef],
    steps: &'a [(f64, f64)],
    horizon: f64,
    level: f64,
}

/// The transaction model at log-parameters `t` (ln r, ln alpha, ln a, ln b).
fn model_at(kind: super::transaction::TransactionModelKind, t: &[f64]) -> TransactionModel {
    TransactionModel {
        kind,
        params: NbdParams::from_array(NbdParams::exp_of(t)),
    }
}

/// The log-parameters of a transaction model (the coordinates of its covariance).
fn log_params(m: &TransactionModel) -> [f64; 4] {
    let p = m.params;
    [p.r.ln(), p.alpha.ln(), p.a.ln(), p.b.ln()]
}

/// Gamma-Gamma at log-parameters `t` (ln p, ln(q - 1), ln v).
fn spend_at(t: &[f64]) -> GammaGammaParams {
    GammaGammaParams {
        p: t[0].exp(),
        q: 1.0 + t[1].exp(),
        v: t[2].exp(),
    }
}

/// g' S g for a symmetric S.
fn quadratic_form(g: &[f64], s: &[Vec<f64>]) -> f64 {
    (0..g.len())
        .map(|i| g[i] * (0..g.len()).map(|j| s[i][j] * g[j]).sum::<f64>())
        .sum()
}

/// The standard normal quantile at probability p in (0.5, 1): Newton's method on
/// Phi(z) = erfc(-z / sqrt 2) / 2 from z = 0, which increases monotonically to the root (Phi is
/// concave on z > 0).
pub fn normal_quantile(p: f64) -> f64 {
    let mut z = 0.0f64;
    for _ in 0..100 {
        let cdf = 0.5 * libm::erfc(-z / std::f64::consts::SQRT_2);
        let pdf = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let step = (p - cdf) / pdf;
        z += step;
        if step.abs() <= 1e-15 * z.abs().max(1.0) {
            break;
        }
    }
    z
}

impl Evaluation<'_> {
    /// [`IntervalMethod::Delta`].
    fn delta(&self, cov: &[Vec<f64>], spend_cov: Option<&[Vec<f64>]>) -> Intervals {
        let z = normal_quantile((1.0 + self.level) / 2.0);
        let h = DELTA_STEP;
        let center = log_params(self.model);
        let shifted: Vec<TransactionModel> = (0..4)
            .map(|i| {
                let mut t = center;
                t[i] += h;
                model_at(self.model.kind, &t)
            })
            .collect();
        let (pairs, of_row) = xt_pairs(self.rows);
        // per (x, T) pair: g = E[discounted purchases | alive] and the gradient of ln g
        let pair_grad: Vec<(f64, [f64; 4])> = pairs
            .par_iter()
            .with_min_len(256)
            .map(|&(x, t)| {
                let g_of = |m: &TransactionModel| pair_values(m, x, t, self.steps, self.horizon).0;
                let g = g_of(self.model);
                let ln_g = g.ln();
                let mut grad = [0.0; 4];
                for (d, m) in grad.iter_mut().zip(&shifted) {
                    *d = (g_of(m).ln() - ln_g) / h;
                }
                (g, grad)
            })
            .collect();
        // per row: the P(alive) interval, the discounted expected purchases P(alive) x g (as
        // the scoring computes them) and the variance of their logarithm
        type RowOut = (f64, f64, f64, f64);
        let per_row: Vec<RowOut> = self
            .rows
            .par_iter()
            .zip(&of_row)
            .with_min_len(256)
            .map(|(c, &k)| {
                let pa = self.model.p_alive(c);
                let (g, g_grad) = pair_grad[k as usize];
                let ln_pa = pa.ln();
                let mut grad = [0.0; 4];
                for i in 0..4 {
                    grad[i] = (shifted[i].p_alive(c).ln() - ln_pa) / h;
                }
                let (lo, hi) = if pa > 0.0 && pa < 1.0 {
                    // logit scale: d logit(pa) = d ln(pa) / (1 - pa)
                    let gl = grad.map(|g| g / (1.0 - pa));
                    let sd = quadratic_form(&gl, cov).max(0.0).sqrt();
                    let logit = ln_pa - (-pa).ln_1p();
                    (
                        super::special::sigmoid(logit - z * sd),
                        super::special::sigmoid(logit + z * sd),
                    )
                } else {
                    // P(alive) = 1 (no repeat purchase yet under BG/NBD) or 0 at every draw
                    (pa, pa)
                };
                let total: [f64; 4] = std::array::from_fn(|i| grad[i] + g_grad[i]);
                (lo, hi, pa * g, quadratic_form(&total, cov).max(0.0))
            })
            .collect();
        let gc = [
            self.spend.p.ln(),
            (self.spend.q - 1.0).ln(),
            self.spend.v.ln(),
        ];
        let spend_shifted: Vec<GammaGammaParams> = (0..3)
            .map(|i| {
                let mut t = gc;
                t[i] += h;
                spend_at(&t)
            })
            .collect();
        let per_customer: Vec<(f64, f64, f64)> = self
            .customers
            .par_iter()
            .with_min_len(1024)
            .map(|c| {
                let (_, _, dep, var_t) = per_row[c.row];
                let x = self.rows[c.row].x;
                let mv = if x > 0.0 { c.m } else { 0.0 };
                let spend = self.spend.conditional_expected_spend(x, mv);
                // the CLV of the scoring, to the bit
                let clv = spend * dep;
                if clv == 0.0 {
                    // P(alive) = 0: no spread on the log scale
                    return (0.0, 0.0, 0.0);
                }
                let ln_s = spend.ln();
                let var_s = match spend_cov {
                    Some(sc) => {
                        let g: [f64; 3] = std::array::from_fn(|i| {
                            (spend_shifted[i].conditional_expected_spend(x, mv).ln() - ln_s) / h
                        });
                        quadratic_form(&g, sc).max(0.0)
                    }
                    None => 0.0,
                };
                // NaN (null) ends when the variance is not finite
                let spread = (z * (var_t + var_s).sqrt()).exp();
                (clv / spread, clv, clv * spread)
            })
            .collect();
        let mut out = Intervals {
            p_alive_lo: Vec::with_capacity(self.rows.len()),
            p_alive_hi: Vec::with_capacity(self.rows.len()),
            clv_lo: Vec::with_capacity(self.customers.len()),
            clv_mid: Vec::with_capacity(self.customers.len()),
            clv_hi: Vec::with_capacity(self.customers.len()),
        };
        for (lo, hi, ..) in per_row {
            out.p_alive_lo.push(lo);
            out.p_alive_hi.push(hi);
        }
        for (lo, mid, hi) in per_customer {
            out.clv_lo.push(lo);
            out.clv_mid.push(mid);
            out.clv_hi.push(hi);
        }
        out
    }

    /// [`IntervalMethod::Draws`].
    fn draws(
        &self,
        chol: &[Vec<f64>],
        spend_chol: Option<&[Vec<f64>]>,
        iv: &IntervalOptions,
    ) -> Intervals {
        let (model, spend, rows, customers) = (self.model, self.spend, self.rows, self.customers);
        let (steps, horizon) = (self.steps, self.horizon);
        let center = log_params(model);
        let mut rng = ChaCha8Rng::seed_from_u64(iv.seed);
        let models: Vec<TransactionModel> = draw(&mut rng, &center, chol, iv.draws)
            .iter()
            .map(|t| model_at(model.kind, t))
            .collect();
        let spends: Vec<GammaGammaParams> = match spend_chol {
            Some(gc) => {
                let gcenter = [spend.p.ln(), (spend.q - 1.0).ln(), spend.v.ln()];
                draw(&mut rng, &gcenter, gc, iv.draws)
                    .iter()
                    .map(|t| spend_at(t))
                    .collect()
            }
            None => vec![*spend; iv.draws],
        };
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
        let (qlo, qhi) = ((1.0 - self.level) / 2.0, (1.0 + self.level) / 2.0);
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
                    let (g, _) = pair_values(m, x, t, steps, horizon);
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
        out
    }
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
            method: IntervalMethod::Draws,
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
        // per method: covered, total
        let methods = [IntervalMethod::Delta, IntervalMethod::Draws];
        let (mut covered, mut total) = ([0usize; 2], [0usize; 2]);
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
            for (mi, &method) in methods.iter().enumerate() {
                let r = intervals(
                    &fit.model,
                    fit.cov_log.as_deref().expect("cov"),
                    &gg.params,
                    gg.cov_log.as_deref(),
                    &probe_rows,
                    &probe_refs,
                    &opts,
                    &IntervalOptions {
                        method,
                        seed: iv.seed + s,
                        ..iv
                    },
                )
                .expect("intervals");
                for i in 0..probes.len() {
                    assert!(r.clv_lo[i] <= r.clv_mid[i] && r.clv_mid[i] <= r.clv_hi[i]);
                    assert!(r.p_alive_lo[i] <= r.p_alive_hi[i]);
                    total[mi] += 1;
                    if r.clv_lo[i] <= true_clv[i] && true_clv[i] <= r.clv_hi[i] {
                        covered[mi] += 1;
                    }
                }
            }
        }
        for (mi, method) in methods.iter().enumerate() {
            let (c, t) = (covered[mi], total[mi]);
            let share = c as f64 / t as f64;
            eprintln!(
                "{method:?}: 90% CLV intervals covered the true CLV in {c} of {t} cases ({share:.3})"
            );
            assert!(
                t >= 4 * (sims as usize) * 9 / 10,
                "too many failed fits: {t}"
            );
            assert!(
                (0.85..=0.95).contains(&share),
                "{method:?}: coverage {share}"
            );
        }
    }

    #[test]
    fn the_normal_quantile_is_exact() {
        // Phi^-1 at 0.95, 0.975, 0.995 and 1 - 1e-10 (Abramowitz & Stegun table 26.5; mpmath)
        for (p, z) in [
            (0.95, 1.6448536269514722),
            (0.975, 1.959963984540054),
            (0.995, 2.5758293035489004),
            (1.0 - 1e-10, 6.361340902404056),
        ] {
            let got = normal_quantile(p);
            assert!((got - z).abs() < 1e-9 * z, "{p}: {got} vs {z}");
        }
    }

    /// The delta method's ends against the draws' on a large sample, where the estimate is
    /// precise and the models nearly linear over its spread: the two agree closely, and the
    /// delta method's midpoint is the CLV of the scoring.
    #[test]
    fn delta_and_draws_agree_when_the_estimate_is_precise() {
        let truth = NbdParams {
            r: 0.5,
            alpha: 5.0,
            a: 0.8,
            b: 2.5,
        };
        let gg = GammaGammaParams {
            p: 6.0,
            q: 3.5,
            v: 15.0,
        };
        let sim = simulate_bgnbd(20_000, &truth, 52.0, 11);
        let s = summarize(&sim);
        let fit = fit_transactions(TransactionModelKind::BgNbd, &s.rows, &FitOptions::default());
        let cov = fit.cov_log.clone().expect("cov");
        let gcov = vec![
            vec![0.004, 0.001, 0.0],
            vec![0.001, 0.006, 0.0],
            vec![0.0, 0.0, 0.002],
        ];
        // 2,000 of the rows (the intervals need not cover all)
        let rows: Vec<Rfm> = s.rfm_rows().into_iter().take(2000).collect();
        let cust: Vec<CustomerRef> = (0..rows.len())
            .map(|r| CustomerRef {
                row: r,
                m: 10.0 + (r % 7) as f64 * 5.0,
            })
            .collect();
        let o = ClvOptions::default();
        let run = |method| {
            let iv = IntervalOptions {
                method,
                draws: 1000,
                ..IntervalOptions::default()
            };
            intervals(&fit.model, &cov, &gg, Some(&gcov), &rows, &cust, &o, &iv).expect("ok")
        };
        let (d, w) = (run(IntervalMethod::Delta), run(IntervalMethod::Draws));
        let scores =
            super::super::score::score_rows(&fit.model, &rows, 365.0 / 7.0, &o).expect("ok");
        let mut worst: f64 = 0.0;
        for (k, c) in cust.iter().enumerate() {
            let x = rows[c.row].x;
            let clv = gg.conditional_expected_spend(x, if x > 0.0 { c.m } else { 0.0 })
                * scores.dep[c.row];
            assert_eq!(d.clv_mid[k], clv, "the midpoint is the scored CLV");
            let width = w.clv_hi[k] - w.clv_lo[k];
            worst = worst
                .max((d.clv_lo[k] - w.clv_lo[k]).abs() / width)
                .max((d.clv_hi[k] - w.clv_hi[k]).abs() / width);
        }
        assert!(worst < 0.1, "ends differ by {worst} of the width");
        let mut worst_pa: f64 = 0.0;
        for r in 0..rows.len() {
            let width = w.p_alive_hi[r] - w.p_alive_lo[r];
            if width > 1e-6 {
                worst_pa = worst_pa
                    .max((d.p_alive_lo[r] - w.p_alive_lo[r]).abs() / width)
                    .max((d.p_alive_hi[r] - w.p_alive_hi[r]).abs() / width);
            }
        }
        assert!(
            worst_pa < 0.1,
            "P(alive) ends differ by {worst_pa} of the width"
        );
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
        for method in [IntervalMethod::Delta, IntervalMethod::Draws] {
            let iv = IntervalOptions { method, ..iv };
            let a = intervals(&fit.model, &cov, &gg, None, &rows, &cust, &o, &iv).expect("ok");
            let b = intervals(&fit.model, &cov, &gg, None, &rows, &cust, &o, &iv).expect("ok");
            assert_eq!(a, b);
            assert!(a.clv_lo.iter().zip(&a.clv_hi).all(|(l, h)| l <= h));
        }
        let few = IntervalOptions {
            method: IntervalMethod::Draws,
            draws: 5,
            ..iv
        };
        assert!(intervals(&fit.model, &cov, &gg, None, &rows, &cust, &o, &few).is_err());
        let bad = IntervalOptions { level: 1.0, ..iv };
        assert!(intervals(&fit.model, &cov, &gg, None, &rows, &cust, &o, &bad).is_err());
        let not_pd = vec![vec![0.0; 4]; 4];
        assert!(intervals(&fit.model, &not_pd, &gg, None, &rows, &cust, &o, &iv).is_err());
    }
}
