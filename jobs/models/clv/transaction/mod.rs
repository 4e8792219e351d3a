//! The transaction-model API shared by BG/NBD, MBG/NBD and Pareto/NBD: the model enum with its
//! predictions, and maximum-likelihood fitting on weighted summary rows (the likelihood itself
//! is in [`likelihood`]; the parameters in [`super::nbd`]).

mod likelihood;
#[cfg(test)]
mod tests;

use super::optimize::{
    OptimOptions, Start, invert_spd, minimize_multistart, norm_inf, numerical_hessian,
};
use super::summary::{Rfm, SummaryRow};
use super::{bgnbd, mbgnbd, pnbd};

use self::likelihood::{MAX_LOG_PARAM, evaluate, newton, objective_hessian};
pub use self::likelihood::{NbdData, objective, pnbd_objective};
pub use super::nbd::NbdParams;

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

/// Inputs with more distinct rows than this get a warm start from a subsample fit.
const WARM_START_MIN_ROWS: usize = 200_000;
/// Approximate number of rows in the warm-start subsample.
const WARM_START_ROWS: usize = 20_000;

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
        && let Some((x, f, g, it, h)) = newton(*k, nd, &starts[0].x, opts.penalizer, &oo)
    {
        newton_hessian = Some(h);
        newton_res = Some((
            super::optimize::OptimResult::newton(x, f, g.to_vec(), it),
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
    let p = NbdParams::exp_of(&theta);
    let params = NbdParams::from_array(p);
    out.model.params = params;
    out.iterations = iterations;
    out.evaluations = evaluations;
    out.gradient_norm = norm_inf(&res.grad);
    // Newton's last objective is -ll / total + penalty: no further pass over the rows.
    out.log_likelihood = if newton_hessian.is_some() {
        -(res.f - opts.penalizer * p.iter().map(|v| v * v).sum::<f64>()) * total
    } else {
        fd.log_likelihood(&params)
    };
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
