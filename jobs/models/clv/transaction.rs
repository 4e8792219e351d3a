//! The transaction-model API shared by BG/NBD and MBG/NBD: parameters, the model enum with its
//! predictions, and maximum-likelihood fitting on weighted summary rows.
//!
//! The log-likelihood and its analytic gradient are computed with the lgamma/digamma terms
//! precomputed once per distinct x, so each row costs only two logs, one exp and one log1p;
//! rows are split in fixed chunks (rayon for large inputs) and the chunk sums are added in order,
//! so results do not depend on the number of threads.

use rayon::prelude::*;

use super::optimize::{
    OptimOptions, Start, invert_spd, minimize_multistart, norm_inf, numerical_hessian,
};
use super::summary::{Rfm, SummaryRow, validate_rfm};
use super::{bgnbd, mbgnbd, pnbd};

/// Parameters of the BG/NBD and MBG/NBD models: purchase rate lambda ~ Gamma(r, alpha) (alpha is a
/// rate, in model time units), dropout probability p ~ Beta(a, b). Pareto/NBD stores its
/// dropout-rate parameters (s, beta) in (a, b) (see [`super::pnbd::PnbdView`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NbdParams {
    /// Gamma shape r of the purchase rate.
    pub r: f64,
    /// Gamma rate alpha of the purchase rate (in the model time unit, e.g. weeks).
    pub alpha: f64,
    /// Beta shape a of the dropout probability.
    pub a: f64,
    /// Beta shape b of the dropout probability.
    pub b: f64,
}

impl NbdParams {
    /// True when all four parameters are finite and strictly positive.
    pub fn is_valid(&self) -> bool {
        [self.r, self.alpha, self.a, self.b]
            .iter()
            .all(|v| v.is_finite() && *v > 0.0)
    }
    fn from_array(v: [f64; 4]) -> NbdParams {
        NbdParams {
            r: v[0],
            alpha: v[1],
            a: v[2],
            b: v[3],
        }
    }
}

/// Which transaction model to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransactionModelKind {
    /// BG/NBD (Fader, Hardie & Lee 2005): dropout only after repeat purchases.
    BgNbd,
    /// MBG/NBD (Batislam et al. 2007; Hoppe & Wagner 2007): dropout also possible at time 0.
    MbgNbd,
    /// Pareto/NBD (Schmittlein, Morrison & Colombo 1987): exponential lifetimes with a gamma
    /// dropout rate; parameters (r, alpha, s, beta) stored as (r, alpha, a, b).
    ParetoNbd,
}

impl TransactionModelKind {
    /// The model's name in configuration and in clv_model (`bgnbd`, `mbgnbd`, `pnbd`).
    pub fn name(self) -> &'static str {
        match self {
            TransactionModelKind::BgNbd => "bgnbd",
            TransactionModelKind::MbgNbd => "mbgnbd",
            TransactionModelKind::ParetoNbd => "pnbd",
        }
    }

    /// The names of the four parameters, in storage order.
    pub fn param_names(self) -> [&'static str; 4] {
        match self {
            TransactionModelKind::ParetoNbd => ["r", "alpha", "s", "beta"],
            _ => ["r", "alpha", "a", "b"],
        }
    }
}

/// A transaction model with its parameters; all methods take times in model units and return
/// NaN (never panic) for invalid parameters or customer data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransactionModel {
    /// BG/NBD or MBG/NBD.
    pub kind: TransactionModelKind,
    /// (r, alpha, a, b).
    pub params: NbdParams,
}

impl TransactionModel {
    /// Log-likelihood of one customer (BG/NBD: FHL 2005 eq. 6; MBG/NBD: Batislam et al. 2007).
    pub fn log_likelihood_row(&self, c: &Rfm) -> f64 {
        match self.kind {
            TransactionModelKind::BgNbd => bgnbd::log_likelihood_row(&self.params, c),
            TransactionModelKind::MbgNbd => mbgnbd::log_likelihood_row(&self.params, c),
            TransactionModelKind::ParetoNbd => pnbd::log_likelihood_row(&self.params, c),
        }
    }

    /// Total weighted log-likelihood sum_i w_i ln L_i of summary rows (not lifetimes' mean
    /// negative LL); NaN if any row is invalid or the parameters are invalid.
    pub fn log_likelihood(&self, rows: &[SummaryRow]) -> f64 {
        if !self.params.is_valid() {
            return f64::NAN;
        }
        match NbdData::new(rows) {
            Ok(_) if self.kind == TransactionModelKind::ParetoNbd => {
                pnbd::evaluate(&pnbd::PnbdData::new(rows), &self.params, None)
            }
            Ok(d) => evaluate(self.kind, &d, &self.params, None),
            Err(_) => f64::NAN,
        }
    }

    /// P(alive | x, t_x, T) (BG/NBD: FHL P(alive) note; MBG/NBD: Batislam et al. 2007 App. A (5)).
    pub fn p_alive(&self, c: &Rfm) -> f64 {
        match self.kind {
            TransactionModelKind::BgNbd => bgnbd::p_alive(&self.params, c),
            TransactionModelKind::MbgNbd => mbgnbd::p_alive(&self.params, c),
            TransactionModelKind::ParetoNbd => pnbd::p_alive(&self.params, c),
        }
    }

    /// E[X(t)]: expected repeat purchases in (0, t] for a new customer (BG/NBD: FHL 2005 eq. 9).
    pub fn expected_purchases(&self, t: f64) -> f64 {
        match self.kind {
            TransactionModelKind::BgNbd => bgnbd::expected_purchases(&self.params, t),
            TransactionModelKind::MbgNbd => mbgnbd::expected_purchases(&self.params, t),
            TransactionModelKind::ParetoNbd => pnbd::expected_purchases(&self.params, t),
        }
    }

    /// E[Y(t) | x, t_x, T]: expected repeat purchases in the next t time units given the history
    /// (BG/NBD: FHL 2005 eq. 10; MBG/NBD: Batislam et al. 2007).
    pub fn conditional_expected_purchases(&self, t: f64, c: &Rfm) -> f64 {
        match self.kind {
            TransactionModelKind::BgNbd => {
                bgnbd::conditional_expected_purchases(&self.params, t, c)
            }
            TransactionModelKind::MbgNbd => {
                mbgnbd::conditional_expected_purchases(&self.params, t, c)
            }
            TransactionModelKind::ParetoNbd => {
                pnbd::conditional_expected_purchases(&self.params, t, c)
            }
        }
    }

    /// E[Y(t) | alive at T, x, T]: expected purchases in the next t time units of a customer
    /// known to be alive at T; the conditional expectation is this times P(alive) (for all three
    /// models; it does not depend on t_x).
    pub fn alive_expected_purchases(&self, t: f64, x: f64, big_t: f64) -> f64 {
        if !self.params.is_valid()
            || !(t >= 0.0)
            || !t.is_finite()
            || !(x >= 0.0)
            || !(big_t >= 0.0)
            || !big_t.is_finite()
        {
            return f64::NAN;
        }
        if t == 0.0 {
            return 0.0;
        }
        match self.kind {
            TransactionModelKind::BgNbd => {
                bgnbd::alive_expected_purchases(&self.params, t, x, big_t)
            }
            TransactionModelKind::MbgNbd => {
                mbgnbd::alive_expected_purchases(&self.params, t, x, big_t)
            }
            TransactionModelKind::ParetoNbd => {
                pnbd::alive_expected_purchases(&self.params, t, x, big_t)
            }
        }
    }

    /// Posterior mean purchase rate of a customer who is still alive, (r + x)/(alpha + T)
    /// purchases per time unit (Gamma-Poisson conjugacy; FHL 2005 section 3; for Pareto/NBD
    /// FHL note 009 section 5).
    pub fn posterior_rate(&self, x: f64, t: f64) -> f64 {
        if !self.params.is_valid() || !(x >= 0.0) || x != x.floor() || !(t >= 0.0) || !t.is_finite()
        {
            return f64::NAN;
        }
        (self.params.r + x) / (self.params.alpha + t)
    }

    /// Expected days to the next purchase of an alive customer, taken as the reciprocal of the
    /// posterior mean rate: days_per_unit * (alpha + T)/(r + x). (The posterior mean of the
    /// waiting time itself is (alpha + T)/(r + x - 1), infinite for r + x <= 1.)
    pub fn expected_days_to_next_purchase(&self, x: f64, t: f64, days_per_unit: f64) -> f64 {
        if !(days_per_unit > 0.0) || !days_per_unit.is_finite() {
            return f64::NAN;
        }
        days_per_unit / self.posterior_rate(x, t)
    }
}

/// Options for the maximum-likelihood fits (transaction models and Gamma-Gamma).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitOptions {
    /// L2 penalty coefficient: the minimised objective is the mean negative log-likelihood plus
    /// `penalizer * sum(params^2)` on the natural scale, as lifetimes' `penalizer_coef`
    /// (lifetimes rescales time before fitting BG/MBG, so alpha's penalty differs). Default 0.
    pub penalizer: f64,
    /// Maximum optimiser iterations (default 500).
    pub max_iter: usize,
    /// Gradient tolerance on the mean objective w.r.t. log-parameters (default 1e-8).
    pub gtol: f64,
    /// Relative objective-change tolerance (default 1e-14).
    pub ftol: f64,
    /// Minimum number of repeat customers (x > 0) required to attempt a fit (default 10).
    pub min_repeat_customers: usize,
    /// Whether to compute standard errors from the numerical Hessian (default true).
    pub std_errors: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            penalizer: 0.0,
            max_iter: 500,
            gtol: 1e-8,
            ftol: 1e-14,
            min_repeat_customers: 10,
            std_errors: true,
        }
    }
}

/// Result of [`fit_transactions`]. A failed fit is a state, not an error: check `converged`.
#[derive(Clone, Debug, PartialEq)]
pub struct TransactionFit {
    /// The model at the last accepted parameters (meaningless unless `converged`; NaN when the
    /// data were rejected before optimising).
    pub model: TransactionModel,
    /// True when the optimiser met its convergence test at finite, non-diverged parameters.
    pub converged: bool,
    /// Optimiser iterations on the full data (summed over starting points; a warm-start fit on
    /// a subsample of large inputs is not counted).
    pub iterations: usize,
    /// Full-data objective/gradient evaluations used by the optimiser (excluding the Hessian).
    pub evaluations: usize,
    /// Total log-likelihood sum_i ln L_i at `model.params` (without the penalty).
    pub log_likelihood: f64,
    /// Largest absolute gradient component of the mean objective w.r.t. log-parameters.
    pub gradient_norm: f64,
    /// Why the fit did not converge (None when it did).
    pub reason: Option<String>,
    /// Standard errors of (r, alpha, a, b) from the inverse numerical Hessian of the penalised
    /// total negative log-likelihood in log-parameters, by the delta method on the natural scale;
    /// None if not requested or the Hessian is not positive definite (parameters not identified).
    pub std_errors: Option<NbdParams>,
    /// Covariance of the log-parameters (ln r, ln alpha, ln a, ln b): the inverse Hessian of the
    /// penalised total negative log-likelihood, when `std_errors` is Some. Parameter draws for
    /// the CLV intervals come from the normal with this covariance.
    pub cov_log: Option<Vec<Vec<f64>>>,
    /// Number of customers (sum of weights).
    pub n_customers: f64,
    /// Number of customers with at least one repeat purchase.
    pub n_repeat_customers: f64,
    /// Number of distinct summary rows used.
    pub n_rows: usize,
}

/// Per-x constants for the vectorised likelihood (see `bgnbd::x_terms`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct XTerms {
    /// Row-independent part of ln L for this x.
    pub c: f64,
    /// r + x.
    pub rx: f64,
    /// ln(a / (b + x - 1)) for BG/NBD, ln(a / (b + x)) for MBG/NBD.
    pub k: f64,
    /// Whether the second likelihood term is present (BG/NBD: x > 0; MBG/NBD: always).
    pub has_d: bool,
    /// d c / d r.
    pub dc_r: f64,
    /// d c / d alpha.
    pub dc_alpha: f64,
    /// d c / d a.
    pub dc_a: f64,
    /// d c / d b.
    pub dc_b: f64,
    /// d k / d b (d k / d a = 1/a for both models).
    pub dk_b: f64,
    /// d^2 c / d r^2 (d^2 c / d r d alpha = 1/alpha, d^2 c / d alpha^2 = -r/alpha^2).
    pub hc_rr: f64,
    /// d^2 c / d a^2 = d^2 c / d a d b.
    pub hc_aa: f64,
    /// d^2 c / d b^2.
    pub hc_bb: f64,
}

/// Validated summary rows in column form, with distinct x values.
pub struct NbdData {
    xs: Vec<f64>,
    x_weight: Vec<f64>,
    xi: Vec<u32>,
    tx: Vec<f64>,
    t: Vec<f64>,
    w: Vec<f64>,
    total_w: f64,
    repeat_w: f64,
    max_t: f64,
    mean_x: f64,
    mean_t: f64,
}

impl NbdData {
    /// Validates rows (finite, weight > 0, see `validate_rfm`) and builds the column layout.
    pub fn new(rows: &[SummaryRow]) -> Result<NbdData, String> {
        let mut xs: Vec<f64> = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            validate_rfm(&Rfm {
                x: r.x,
                t_x: r.t_x,
                t: r.t,
            })
            .map_err(|e| format!("invalid summary row {i}: {e}"))?;
            if !(r.weight > 0.0) || !r.weight.is_finite() {
                return Err(format!(
                    "invalid summary row {i}: weight must be positive and finite, got {}",
                    r.weight
                ));
            }
            xs.push(r.x);
        }
        xs.sort_by(|a, b| a.total_cmp(b));
        xs.dedup();
        let mut x_weight = vec![0.0; xs.len()];
        let mut d = NbdData {
            xi: Vec::with_capacity(rows.len()),
            tx: Vec::with_capacity(rows.len()),
            t: Vec::with_capacity(rows.len()),
            w: Vec::with_capacity(rows.len()),
            xs: Vec::new(),
            x_weight: Vec::new(),
            total_w: 0.0,
            repeat_w: 0.0,
            max_t: 0.0,
            mean_x: 0.0,
            mean_t: 0.0,
        };
        let (mut sx, mut st) = (0.0, 0.0);
        for r in rows {
            let j = xs.partition_point(|v| *v < r.x);
            x_weight[j] += r.weight;
            d.xi.push(j as u32);
            d.tx.push(r.t_x);
            d.t.push(r.t);
            d.w.push(r.weight);
            d.total_w += r.weight;
            if r.x > 0.0 {
                d.repeat_w += r.weight;
            }
            d.max_t = d.max_t.max(r.t);
            sx += r.weight * r.x;
            st += r.weight * r.t;
        }
        if d.total_w > 0.0 {
            d.mean_x = sx / d.total_w;
            d.mean_t = st / d.total_w;
        }
        d.xs = xs;
        d.x_weight = x_weight;
        Ok(d)
    }
}

const CHUNK: usize = 8192;
const PAR_MIN_ROWS: usize = 4 * CHUNK;

#[derive(Clone, Copy, Default)]
struct Acc {
    ll: f64,
    g_r: f64,
    g_alpha: f64,
    s: f64,
    s_db: f64,
}

/// Total weighted log-likelihood; if `grad` is given, also its gradient w.r.t. (r, alpha, a, b).
pub(super) fn evaluate(
    kind: TransactionModelKind,
    d: &NbdData,
    p: &NbdParams,
    grad: Option<&mut [f64; 4]>,
) -> f64 {
    let with_grad = grad.is_some();
    let terms: Vec<XTerms> =
        d.xs.iter()
            .map(|&x| match kind {
                TransactionModelKind::BgNbd => bgnbd::x_terms(p, x, with_grad),
                TransactionModelKind::MbgNbd => mbgnbd::x_terms(p, x, with_grad),
                // not used: Pareto/NBD has its own layout (pnbd::evaluate)
                TransactionModelKind::ParetoNbd => XTerms {
                    c: f64::NAN,
                    ..Default::default()
                },
            })
            .collect();
    let alpha = p.alpha;
    let chunk = |lo: usize, hi: usize| -> Acc {
        let mut acc = Acc::default();
        for i in lo..hi {
            let xt = &terms[d.xi[i] as usize];
            let w = d.w[i];
            let at = alpha + d.t[i];
            let lt = at.ln();
            let mut ll = -xt.rx * lt;
            if xt.has_d {
                let atx = alpha + d.tx[i];
                let ldiff = lt - atx.ln();
                let dd = xt.k + xt.rx * ldiff;
                // softplus and sigmoid sharing one exp
                let e = (-dd.abs()).exp();
                let sp = dd.max(0.0) + e.ln_1p();
                ll += sp;
                if with_grad {
                    let s = if dd >= 0.0 {
                        1.0 / (1.0 + e)
                    } else {
                        e / (1.0 + e)
                    };
                    acc.g_r += w * (-lt + s * ldiff);
                    acc.g_alpha += w * (-xt.rx / at + s * xt.rx * (1.0 / at - 1.0 / atx));
                    acc.s += w * s;
                    acc.s_db += w * s * xt.dk_b;
                }
            } else if with_grad {
                acc.g_r -= w * lt;
                acc.g_alpha -= w * xt.rx / at;
            }
            acc.ll += w * ll;
        }
        acc
    };
    let n = d.w.len();
    let n_chunks = n.div_ceil(CHUNK);
    let run = |c: usize| chunk(c * CHUNK, ((c + 1) * CHUNK).min(n));
    let parts: Vec<Acc> = if n >= PAR_MIN_ROWS {
        (0..n_chunks).into_par_iter().map(run).collect()
    } else {
        (0..n_chunks).map(run).collect()
    };
    let mut tot = Acc::default();
    for a in parts {
        tot.ll += a.ll;
        tot.g_r += a.g_r;
        tot.g_alpha += a.g_alpha;
        tot.s += a.s;
        tot.s_db += a.s_db;
    }
    let mut ll = tot.ll;
    let mut g = [tot.g_r, tot.g_alpha, tot.s / p.a, tot.s_db];
    for (xt, &wx) in terms.iter().zip(&d.x_weight) {
        ll += wx * xt.c;
        g[0] += wx * xt.dc_r;
        g[1] += wx * xt.dc_alpha;
        g[2] += wx * xt.dc_a;
        g[3] += wx * xt.dc_b;
    }
    if let Some(out) = grad {
        *out = g;
    }
    ll
}

/// Total weighted log-likelihood of BG/NBD or MBG/NBD with its gradient and analytic Hessian
/// w.r.t. the natural parameters (r, alpha, a, b). Per row, with dd = k + (r+x) ln((alpha+T) /
/// (alpha+t_x)) and sigma = sigmoid(dd), the second term softplus(dd) contributes
/// sigma d^2 dd + sigma (1 - sigma) grad dd grad dd'; the per-x constants use trigamma.
#[allow(clippy::needless_range_loop)]
pub(super) fn evaluate_hessian(
    kind: TransactionModelKind,
    d: &NbdData,
    p: &NbdParams,
) -> (f64, [f64; 4], [[f64; 4]; 4]) {
    let terms: Vec<XTerms> =
        d.xs.iter()
            .map(|&x| match kind {
                TransactionModelKind::MbgNbd => mbgnbd::x_terms(p, x, true),
                _ => bgnbd::x_terms(p, x, true),
            })
            .collect();
    let (alpha, a) = (p.alpha, p.a);
    // acc: ll, g[4], h upper triangle (rr, ra, raa... ) in order
    // 0 ll, 1..5 g, 5..15 h(00,01,02,03,11,12,13,22,23,33)
    let chunk = |lo: usize, hi: usize| -> [f64; 15] {
        let mut acc = [0.0; 15];
        for i in lo..hi {
            let xt = &terms[d.xi[i] as usize];
            let w = d.w[i];
            let at = alpha + d.t[i];
            let lt = at.ln();
            let rx = xt.rx;
            let ia = 1.0 / at;
            acc[0] -= w * rx * lt;
            acc[1] -= w * lt;
            acc[2] -= w * rx * ia;
            acc[6] -= w * ia;
            acc[9] += w * rx * ia * ia;
            if xt.has_d {
                let atx = alpha + d.tx[i];
                let ib = 1.0 / atx;
                let ldiff = lt - atx.ln();
                let dd = xt.k + rx * ldiff;
                let e = (-dd.abs()).exp();
                acc[0] += w * (dd.max(0.0) + e.ln_1p());
                let s = if dd >= 0.0 {
                    1.0 / (1.0 + e)
                } else {
                    e / (1.0 + e)
                };
                let g = [ldiff, rx * (ia - ib), 1.0 / a, xt.dk_b];
                let ws = w * s;
                for k in 0..4 {
                    acc[1 + k] += ws * g[k];
                }
                // sigma * second derivatives of dd
                acc[6] += ws * (ia - ib);
                acc[9] += ws * rx * (ib * ib - ia * ia);
                acc[12] -= ws / (a * a);
                acc[14] += ws * xt.dk_b * xt.dk_b;
                let q = ws * (1.0 - s);
                let mut idx = 5;
                for k in 0..4 {
                    for l in k..4 {
                        acc[idx] += q * g[k] * g[l];
                        idx += 1;
                    }
                }
            }
        }
        acc
    };
    let n = d.w.len();
    let run = |c: usize| chunk(c * CHUNK, ((c + 1) * CHUNK).min(n));
    let parts: Vec<[f64; 15]> = if n >= PAR_MIN_ROWS {
        (0..n.div_ceil(CHUNK)).into_par_iter().map(run).collect()
    } else {
        (0..n.div_ceil(CHUNK)).map(run).collect()
    };
    let mut t = [0.0; 15];
    for a in parts {
        for k in 0..15 {
            t[k] += a[k];
        }
    }
    for (xt, &wx) in terms.iter().zip(&d.x_weight) {
        t[0] += wx * xt.c;
        t[1] += wx * xt.dc_r;
        t[2] += wx * xt.dc_alpha;
        t[3] += wx * xt.dc_a;
        t[4] += wx * xt.dc_b;
        t[5] += wx * xt.hc_rr;
        t[6] += wx / alpha;
        t[9] -= wx * p.r / (alpha * alpha);
        t[12] += wx * xt.hc_aa;
        t[13] += wx * xt.hc_aa;
        t[14] += wx * xt.hc_bb;
    }
    let mut h = [[0.0; 4]; 4];
    let mut idx = 5;
    for k in 0..4 {
        for l in k..4 {
            h[k][l] = t[idx];
            h[l][k] = t[idx];
            idx += 1;
        }
    }
    (t[0], [t[1], t[2], t[3], t[4]], h)
}

/// The mean penalised objective of [`objective`] in log-parameters with its gradient and
/// Hessian, from [`evaluate_hessian`].
fn objective_hessian(
    kind: TransactionModelKind,
    d: &NbdData,
    theta: &[f64],
    penalizer: f64,
) -> (f64, [f64; 4], [[f64; 4]; 4]) {
    let p = [
        theta[0].exp(),
        theta[1].exp(),
        theta[2].exp(),
        theta[3].exp(),
    ];
    let (ll, g, h) = evaluate_hessian(kind, d, &NbdParams::from_array(p));
    let w = d.total_w;
    let mut f = -ll / w;
    let mut gt = [0.0; 4];
    let mut ht = [[0.0; 4]; 4];
    for i in 0..4 {
        f += penalizer * p[i] * p[i];
        let gi = -g[i] / w + 2.0 * penalizer * p[i];
        gt[i] = gi * p[i];
        for j in 0..4 {
            let hij = -h[i][j] / w + if i == j { 2.0 * penalizer } else { 0.0 };
            ht[i][j] = p[i] * p[j] * hij + if i == j { p[i] * gi } else { 0.0 };
        }
    }
    (f, gt, ht)
}

/// Newton's method with a backtracking line search on the mean objective in log-parameters,
/// from a point near the optimum (the subsample fit). Returns the point, its gradient, the
/// iterations and the Hessian there, or None if the Hessian is not positive definite or the
/// search stalls (the caller then runs BFGS).
#[allow(clippy::type_complexity)]
fn newton(
    kind: TransactionModelKind,
    d: &NbdData,
    start: &[f64],
    penalizer: f64,
    opts: &OptimOptions,
) -> Option<(Vec<f64>, [f64; 4], usize, [[f64; 4]; 4])> {
    let mut x: Vec<f64> = start.to_vec();
    let (mut f, mut g, mut h) = objective_hessian(kind, d, &x, penalizer);
    for it in 0..opts.max_iter.min(100) {
        if !f.is_finite() {
            return None;
        }
        if norm_inf(&g) <= opts.gtol {
            return Some((x, g, it, h));
        }
        let hv: Vec<Vec<f64>> = h.iter().map(|r| r.to_vec()).collect();
        let inv = invert_spd(&hv)?;
        let step: Vec<f64> = (0..4)
            .map(|i| -(0..4).map(|j| inv[i][j] * g[j]).sum::<f64>())
            .collect();
        let mut t = 1.0;
        let mut accepted = false;
        for _ in 0..30 {
            let xn: Vec<f64> = x.iter().zip(&step).map(|(a, b)| a + t * b).collect();
            if xn.iter().any(|v| !v.is_finite() || v.abs() > MAX_LOG_PARAM) {
                t *= 0.5;
                continue;
            }
            let (fn_, gn, hn) = objective_hessian(kind, d, &xn, penalizer);
            if fn_.is_finite()
                && fn_
                    <= f + 1e-4 * t * step.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>()
                        + 1e-15 * f.abs()
            {
                x = xn;
                f = fn_;
                g = gn;
                h = hn;
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            return None;
        }
    }
    (norm_inf(&g) <= opts.gtol).then_some((x, g, opts.max_iter.min(100), h))
}

/// Inputs with more distinct rows than this get a warm start from a subsample fit.
const WARM_START_MIN_ROWS: usize = 200_000;
/// Approximate number of rows in the warm-start subsample.
const WARM_START_ROWS: usize = 20_000;

/// Largest |log-parameter| the fit explores; beyond it parameters are reported as diverged.
const MAX_LOG_PARAM: f64 = 25.0;

/// Mean penalised negative log-likelihood in log-parameters, and its gradient (BG/NBD and
/// MBG/NBD; see [`pnbd_objective`] for Pareto/NBD).
pub fn objective(
    kind: TransactionModelKind,
    d: &NbdData,
    theta: &[f64],
    penalizer: f64,
    g: &mut [f64],
) -> f64 {
    penalised(theta, penalizer, d.total_w, g, |p, gp| {
        evaluate(kind, d, p, Some(gp))
    })
}

/// [`objective`] for Pareto/NBD.
pub fn pnbd_objective(d: &pnbd::PnbdData, theta: &[f64], penalizer: f64, g: &mut [f64]) -> f64 {
    penalised(theta, penalizer, d.total_w, g, |p, gp| {
        pnbd::evaluate(d, p, Some(gp))
    })
}

fn penalised<F: FnOnce(&NbdParams, &mut [f64; 4]) -> f64>(
    theta: &[f64],
    penalizer: f64,
    total_w: f64,
    g: &mut [f64],
    ll_grad: F,
) -> f64 {
    if theta
        .iter()
        .any(|v| !v.is_finite() || v.abs() > 2.0 * MAX_LOG_PARAM)
    {
        return f64::NAN;
    }
    let p = [
        theta[0].exp(),
        theta[1].exp(),
        theta[2].exp(),
        theta[3].exp(),
    ];
    let params = NbdParams::from_array(p);
    let mut gp = [0.0; 4];
    let ll = ll_grad(&params, &mut gp);
    let mut pen = 0.0;
    for i in 0..4 {
        pen += p[i] * p[i];
        g[i] = -gp[i] * p[i] / total_w + 2.0 * penalizer * p[i] * p[i];
    }
    -ll / total_w + penalizer * pen
}

/// The data of one fit in the layout of its model.
enum FitData {
    Nbd(TransactionModelKind, NbdData),
    Pnbd(pnbd::PnbdData),
}

impl FitData {
    fn new(kind: TransactionModelKind, rows: &[SummaryRow], d: NbdData) -> FitData {
        match kind {
            TransactionModelKind::ParetoNbd => FitData::Pnbd(pnbd::PnbdData::new(rows)),
            k => FitData::Nbd(k, d),
        }
    }
    fn objective(&self, theta: &[f64], penalizer: f64, g: &mut [f64]) -> f64 {
        match self {
            FitData::Nbd(k, d) => objective(*k, d, theta, penalizer, g),
            FitData::Pnbd(d) => pnbd_objective(d, theta, penalizer, g),
        }
    }
    fn log_likelihood(&self, p: &NbdParams) -> f64 {
        match self {
            FitData::Nbd(k, d) => evaluate(*k, d, p, None),
            FitData::Pnbd(d) => pnbd::evaluate(d, p, None),
        }
    }
}

/// Fits a BG/NBD, MBG/NBD or Pareto/NBD model by maximum likelihood on weighted summary rows
/// (times in the model unit). Optimises log-parameters with BFGS + strong-Wolfe line search from two starting
/// points; never panics: degenerate or invalid data give `converged = false` and a `reason`.
pub fn fit_transactions(
    kind: TransactionModelKind,
    rows: &[SummaryRow],
    opts: &FitOptions,
) -> TransactionFit {
    let nan = NbdParams {
        r: f64::NAN,
        alpha: f64::NAN,
        a: f64::NAN,
        b: f64::NAN,
    };
    let mut out = TransactionFit {
        model: TransactionModel { kind, params: nan },
        converged: false,
        iterations: 0,
        evaluations: 0,
        log_likelihood: f64::NAN,
        gradient_norm: f64::NAN,
        reason: None,
        std_errors: None,
        cov_log: None,
        n_customers: 0.0,
        n_repeat_customers: 0.0,
        n_rows: rows.len(),
    };
    let fail = |mut o: TransactionFit, why: String| {
        o.reason = Some(why);
        o
    };
    if !(opts.penalizer >= 0.0) || !opts.penalizer.is_finite() {
        return fail(
            out,
            format!(
                "invalid penalizer {}: must be finite and >= 0",
                opts.penalizer
            ),
        );
    }
    let d = match NbdData::new(rows) {
        Ok(d) => d,
        Err(e) => return fail(out, e),
    };
    out.n_customers = d.total_w;
    out.n_repeat_customers = d.repeat_w;
    if d.total_w == 0.0 {
        return fail(out, "no customers to fit".into());
    }
    if d.total_w <= 1.0 {
        return fail(
            out,
            "degenerate data: a single customer cannot identify the model".into(),
        );
    }
    if d.max_t == 0.0 {
        return fail(
            out,
            "degenerate data: all customers were observed for zero time (T = 0, all purchases on one day)".into(),
        );
    }
    if d.repeat_w == 0.0 {
        return fail(
            out,
            "degenerate data: every customer bought once (no repeat purchases)".into(),
        );
    }
    if rows
        .windows(2)
        .all(|w| (w[0].x, w[0].t_x, w[0].t) == (w[1].x, w[1].t_x, w[1].t))
    {
        return fail(
            out,
            "degenerate data: every customer has the same (x, t_x, T); the model is not identified"
                .into(),
        );
    }
    if d.repeat_w < opts.min_repeat_customers as f64 {
        return fail(
            out,
            format!(
                "too few repeat customers: {} < configured minimum {}",
                d.repeat_w, opts.min_repeat_customers
            ),
        );
    }
    let oo = OptimOptions {
        max_iter: opts.max_iter,
        gtol: opts.gtol,
        ftol: opts.ftol,
    };
    // Start 1: r = 1, alpha from the mean repeat rate, a = b = 1 (Pareto/NBD: s = 1, beta the
    // mean age). Start 2: lifetimes-like.
    let alpha0 = (d.mean_t / d.mean_x.max(1e-3)).clamp(1e-6, 1e12);
    let mut starts = match kind {
        TransactionModelKind::ParetoNbd => vec![
            Start::at(vec![0.0, alpha0.ln(), 0.0, d.mean_t.max(1e-3).ln()]),
            Start::at(vec![0.1, 0.1 + d.max_t.ln(), 0.1, 0.1 + d.max_t.ln()]),
        ],
        _ => vec![
            Start::at(vec![0.0, alpha0.ln(), 0.0, 0.0]),
            Start::at(vec![0.1, 0.1 + d.max_t.ln(), 0.1, 0.1]),
        ],
    };
    // Large inputs: first fit a systematic subsample of the rows (sorted by x, so every x is
    // represented) and start the full fit from its optimum and BFGS curvature estimate (the
    // mean objective has the same curvature), which saves most full-data passes.
    if rows.len() > WARM_START_MIN_ROWS {
        let stride = rows.len() / WARM_START_ROWS;
        let sub: Vec<SummaryRow> = rows.iter().step_by(stride.max(1)).copied().collect();
        if let Ok(sd) = NbdData::new(&sub)
            && sd.repeat_w > 0.0
        {
            let sd = FitData::new(kind, &sub, sd);
            let fs = |th: &[f64], g: &mut [f64]| sd.objective(th, opts.penalizer, g);
            let (warm, _, _) = minimize_multistart(fs, &starts, &oo, MAX_LOG_PARAM);
            if let Some(w) = warm.filter(|w| {
                w.x.iter()
                    .all(|v| v.is_finite() && v.abs() <= MAX_LOG_PARAM)
            }) {
                starts.insert(
                    0,
                    Start {
                        x: w.x,
                        inv_hessian: Some(w.inv_hessian),
                    },
                );
            }
        }
    }
    let total = d.total_w;
    let fd = FitData::new(kind, rows, d);
    // BG/NBD and MBG/NBD near a warm start: Newton with the analytic Hessian (quadratic
    // convergence, a handful of passes over the rows); the Hessian at the optimum also gives
    // the standard errors. Anything else, or a Newton failure: BFGS.
    let mut newton_hessian: Option<[[f64; 4]; 4]> = None;
    let mut newton_res = None;
    if let FitData::Nbd(k, nd) = &fd
        && starts[0].inv_hessian.is_some()
        && let Some((x, g, it, h)) = newton(*k, nd, &starts[0].x, opts.penalizer, &oo)
    {
        let f = fd.objective(&x, opts.penalizer, &mut [0.0; 4]);
        newton_hessian = Some(h);
        newton_res = Some((
            super::optimize::OptimResult {
                x,
                f,
                grad: g.to_vec(),
                iterations: it,
                evaluations: it + 1,
                converged: true,
                reason: None,
                inv_hessian: Vec::new(),
            },
            it,
            it + 1,
        ));
    }
    let (best, iterations, evaluations) = match newton_res {
        Some((r, i, e)) => (Some(r), i, e),
        None => {
            let f = |th: &[f64], g: &mut [f64]| fd.objective(th, opts.penalizer, g);
            minimize_multistart(f, &starts, &oo, MAX_LOG_PARAM)
        }
    };
    let Some(res) = best else {
        return fail(out, "optimiser did not run".into());
    };
    let theta = res.x.clone();
    let p = [
        theta[0].exp(),
        theta[1].exp(),
        theta[2].exp(),
        theta[3].exp(),
    ];
    let params = NbdParams::from_array(p);
    out.model.params = params;
    out.iterations = iterations;
    out.evaluations = evaluations;
    out.gradient_norm = norm_inf(&res.grad);
    out.log_likelihood = fd.log_likelihood(&params);
    let names = kind.param_names();
    if let Some(i) = theta.iter().position(|v| v.abs() > MAX_LOG_PARAM) {
        return fail(
            out,
            format!(
                "parameter {} diverged to {:e}: the data do not identify the model (boundary solution)",
                names[i], p[i]
            ),
        );
    }
    if !out.log_likelihood.is_finite() {
        return fail(
            out,
            "non-finite log-likelihood at the final parameters".into(),
        );
    }
    if !res.converged {
        return fail(
            out,
            res.reason
                .unwrap_or_else(|| "optimiser did not converge".into()),
        );
    }
    out.converged = true;
    if opts.std_errors {
        // Analytic Hessian for BG/NBD and MBG/NBD, numerical (of the analytic gradient) for
        // Pareto/NBD; both of the penalised total negative log-likelihood in log-parameters.
        let analytic = match &fd {
            FitData::Nbd(k, nd) => Some(
                newton_hessian
                    .unwrap_or_else(|| objective_hessian(*k, nd, &theta, opts.penalizer).2),
            ),
            FitData::Pnbd(_) => None,
        };
        let hess = match analytic {
            Some(h) => {
                let m: Vec<Vec<f64>> = h
                    .iter()
                    .map(|r| r.iter().map(|v| v * total).collect())
                    .collect();
                m.iter().flatten().all(|v| v.is_finite()).then_some(m)
            }
            None => numerical_hessian(
                |th: &[f64], g: &mut [f64]| {
                    let v = fd.objective(th, opts.penalizer, g);
                    for gi in g.iter_mut() {
                        *gi *= total;
                    }
                    v
                },
                &theta,
            ),
        };
        if let Some(cov) = hess.as_deref().and_then(invert_spd) {
            let se: Vec<f64> = (0..4).map(|i| p[i] * cov[i][i].sqrt()).collect();
            out.std_errors = Some(NbdParams::from_array([se[0], se[1], se[2], se[3]]));
            out.cov_log = Some(cov);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy_rows() -> Vec<SummaryRow> {
        vec![
            SummaryRow {
                x: 0.0,
                t_x: 0.0,
                t: 30.0,
                weight: 50.0,
            },
            SummaryRow {
                x: 1.0,
                t_x: 10.0,
                t: 30.0,
                weight: 20.0,
            },
            SummaryRow {
                x: 2.0,
                t_x: 25.0,
                t: 35.0,
                weight: 10.0,
            },
            SummaryRow {
                x: 5.0,
                t_x: 28.0,
                t: 30.0,
                weight: 5.0,
            },
            SummaryRow {
                x: 1.0,
                t_x: 2.0,
                t: 20.0,
                weight: 15.0,
            },
        ]
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let d = NbdData::new(&toy_rows()).expect("valid");
        for kind in [TransactionModelKind::BgNbd, TransactionModelKind::MbgNbd] {
            let th = [(-0.3f64), 1.2, (-0.2), 0.8];
            let mut g = [0.0; 4];
            objective(kind, &d, &th, 0.05, &mut g);
            for i in 0..4 {
                let h = 1e-6;
                let mut tp = th;
                tp[i] += h;
                let mut tm = th;
                tm[i] -= h;
                let mut tmp = [0.0; 4];
                let fd = (objective(kind, &d, &tp, 0.05, &mut tmp)
                    - objective(kind, &d, &tm, 0.05, &mut tmp))
                    / (2.0 * h);
                assert!(
                    (fd - g[i]).abs() < 1e-7,
                    "{kind:?} {i}: fd {fd} vs {}",
                    g[i]
                );
            }
            // vectorised LL equals the sum of row LLs
            let p = NbdParams {
                r: 0.7,
                alpha: 3.0,
                a: 0.8,
                b: 2.2,
            };
            let m = TransactionModel { kind, params: p };
            let direct: f64 = toy_rows()
                .iter()
                .map(|r| {
                    r.weight
                        * m.log_likelihood_row(&Rfm {
                            x: r.x,
                            t_x: r.t_x,
                            t: r.t,
                        })
                })
                .sum();
            assert!((m.log_likelihood(&toy_rows()) - direct).abs() < 1e-10);
        }
    }

    #[test]
    fn analytic_hessian_matches_finite_differences_of_the_gradient() {
        let d = NbdData::new(&toy_rows()).expect("valid");
        for kind in [TransactionModelKind::BgNbd, TransactionModelKind::MbgNbd] {
            let th = [(-0.3f64), 1.2, (-0.2), 0.8];
            let (f, g, h) = objective_hessian(kind, &d, &th, 0.05);
            let mut g2 = [0.0; 4];
            let f2 = objective(kind, &d, &th, 0.05, &mut g2);
            assert!((f - f2).abs() < 1e-13);
            for i in 0..4 {
                assert!((g[i] - g2[i]).abs() < 1e-12, "{kind:?} g{i}");
                let hh = 1e-6;
                let mut tp = th;
                tp[i] += hh;
                let mut tm = th;
                tm[i] -= hh;
                let (mut gp, mut gm) = ([0.0; 4], [0.0; 4]);
                objective(kind, &d, &tp, 0.05, &mut gp);
                objective(kind, &d, &tm, 0.05, &mut gm);
                for j in 0..4 {
                    let fd = (gp[j] - gm[j]) / (2.0 * hh);
                    assert!(
                        (fd - h[j][i]).abs() < 1e-6 * (1.0 + fd.abs()),
                        "{kind:?} H[{j}][{i}]: fd {fd} vs {}",
                        h[j][i]
                    );
                }
            }
        }
    }

    #[test]
    fn degenerate_inputs_give_clean_status() {
        let o = FitOptions::default();
        for kind in [
            TransactionModelKind::BgNbd,
            TransactionModelKind::MbgNbd,
            TransactionModelKind::ParetoNbd,
        ] {
            let cases: Vec<(Vec<SummaryRow>, &str)> = vec![
                (vec![], "no customers"),
                (
                    vec![SummaryRow {
                        x: 3.0,
                        t_x: 5.0,
                        t: 9.0,
                        weight: 1.0,
                    }],
                    "single customer",
                ),
                (
                    vec![SummaryRow {
                        x: 0.0,
                        t_x: 0.0,
                        t: 9.0,
                        weight: 100.0,
                    }],
                    "every customer bought once",
                ),
                (
                    vec![
                        SummaryRow {
                            x: 0.0,
                            t_x: 0.0,
                            t: 0.0,
                            weight: 10.0,
                        },
                        SummaryRow {
                            x: 2.0,
                            t_x: 0.0,
                            t: 0.0,
                            weight: 10.0,
                        },
                    ],
                    "zero time",
                ),
                (
                    vec![
                        SummaryRow {
                            x: 0.0,
                            t_x: 0.0,
                            t: 9.0,
                            weight: 100.0,
                        },
                        SummaryRow {
                            x: 2.0,
                            t_x: 3.0,
                            t: 9.0,
                            weight: 3.0,
                        },
                    ],
                    "too few repeat customers: 3 < configured minimum 10",
                ),
                (
                    vec![SummaryRow {
                        x: f64::NAN,
                        t_x: 0.0,
                        t: 9.0,
                        weight: 1.0,
                    }],
                    "invalid summary row 0",
                ),
                (
                    vec![SummaryRow {
                        x: 1.0,
                        t_x: -1.0,
                        t: 9.0,
                        weight: 1.0,
                    }],
                    "invalid summary row 0",
                ),
                (
                    vec![SummaryRow {
                        x: 1.0,
                        t_x: 1.0,
                        t: 9.0,
                        weight: -2.0,
                    }],
                    "weight",
                ),
            ];
            for (rows, want) in cases {
                let f = fit_transactions(kind, &rows, &o);
                assert!(!f.converged, "{want}");
                let reason = f.reason.unwrap_or_default();
                assert!(
                    reason.contains(want),
                    "{kind:?}: expected '{want}' in '{reason}'"
                );
            }
            // Weights so large that the total overflows: non-finite objective, clean status.
            let mut huge = toy_rows();
            for r in huge.iter_mut() {
                r.weight = 1e308;
            }
            let f = fit_transactions(kind, &huge, &o);
            assert!(!f.converged);
            assert!(f.reason.unwrap_or_default().contains("non-finite"));
            let same = vec![
                SummaryRow {
                    x: 1.0,
                    t_x: 5.0,
                    t: 5.0,
                    weight: 40.0
                };
                2
            ];
            let f = fit_transactions(kind, &same, &o);
            assert!(f.reason.unwrap_or_default().contains("same (x, t_x, T)"));
            let f = fit_transactions(kind, &toy_rows(), &FitOptions { max_iter: 1, ..o });
            assert!(!f.converged);
            assert!(f.reason.unwrap_or_default().contains("iteration cap"));
            let f = fit_transactions(
                kind,
                &toy_rows(),
                &FitOptions {
                    penalizer: f64::NAN,
                    ..o
                },
            );
            assert!(!f.converged && f.reason.is_some());
        }
    }

    #[test]
    fn pathological_data_never_panics() {
        let o = FitOptions {
            min_repeat_customers: 1,
            ..Default::default()
        };
        let sets: Vec<Vec<SummaryRow>> = vec![
            // every repeat purchase on the first day
            vec![
                SummaryRow {
                    x: 0.0,
                    t_x: 0.0,
                    t: 30.0,
                    weight: 10.0,
                },
                SummaryRow {
                    x: 3.0,
                    t_x: 0.0,
                    t: 30.0,
                    weight: 10.0,
                },
            ],
            // everyone buys at the very end
            vec![SummaryRow {
                x: 1.0,
                t_x: 5.0,
                t: 5.0,
                weight: 40.0,
            }],
            vec![
                SummaryRow {
                    x: 1e6,
                    t_x: 1.0,
                    t: 1.0,
                    weight: 2.0,
                },
                SummaryRow {
                    x: 0.0,
                    t_x: 0.0,
                    t: 1e-300,
                    weight: 1e-300,
                },
            ],
            vec![
                SummaryRow {
                    x: 2.0,
                    t_x: 1e300,
                    t: 1e300,
                    weight: 5.0,
                },
                SummaryRow {
                    x: 0.0,
                    t_x: 0.0,
                    t: 1e-3,
                    weight: 5.0,
                },
            ],
        ];
        for kind in [
            TransactionModelKind::BgNbd,
            TransactionModelKind::MbgNbd,
            TransactionModelKind::ParetoNbd,
        ] {
            for rows in &sets {
                let f = fit_transactions(kind, rows, &o);
                assert!(f.converged || f.reason.is_some(), "{kind:?} {rows:?}");
                if f.converged {
                    assert!(f.model.params.is_valid() && f.log_likelihood.is_finite());
                }
            }
        }
    }

    #[test]
    fn posterior_rate_and_days_to_next_purchase() {
        let m = TransactionModel {
            kind: TransactionModelKind::BgNbd,
            params: NbdParams {
                r: 0.25,
                alpha: 4.0,
                a: 0.8,
                b: 2.5,
            },
        };
        assert!((m.posterior_rate(3.0, 20.0) - 3.25 / 24.0).abs() < 1e-15);
        assert!(
            (m.expected_days_to_next_purchase(3.0, 20.0, 7.0) - 7.0 * 24.0 / 3.25).abs() < 1e-12
        );
        assert!(m.posterior_rate(-1.0, 20.0).is_nan());
        assert!(m.posterior_rate(1.0, f64::NAN).is_nan());
        assert!(m.expected_days_to_next_purchase(1.0, 2.0, 0.0).is_nan());
    }

    #[test]
    fn small_fit_converges_and_penalty_shrinks() {
        let o = FitOptions::default();
        let truth = NbdParams {
            r: 0.5,
            alpha: 5.0,
            a: 0.8,
            b: 2.5,
        };
        let sim = super::super::sim::simulate_bgnbd(3000, &truth, 52.0, 7);
        let rows = super::super::summary::summarize(&sim).rows;
        let f = fit_transactions(TransactionModelKind::BgNbd, &rows, &o);
        assert!(f.converged, "{:?}", f.reason);
        assert!(f.std_errors.is_some());
        let fp = fit_transactions(
            TransactionModelKind::BgNbd,
            &rows,
            &FitOptions {
                penalizer: 0.1,
                ..o
            },
        );
        assert!(fp.converged, "{:?}", fp.reason);
        let n2 = |p: NbdParams| p.r * p.r + p.alpha * p.alpha + p.a * p.a + p.b * p.b;
        assert!(n2(fp.model.params) < n2(f.model.params));
        assert!(fp.log_likelihood <= f.log_likelihood + 1e-9);
    }
}
