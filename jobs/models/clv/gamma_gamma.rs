//! Gamma-Gamma model of monetary value (Fader & Hardie 2013, "The Gamma-Gamma Model of Monetary
//! Value", brucehardie.com note 025; also Fader, Hardie & Lee 2005, "RFM and CLV: using
//! iso-value curves", JMR 42(4)). Transaction values z ~ Gamma(p, nu), nu ~ Gamma(q, gamma); the
//! data per repeat customer are x (repeat purchases) and m (their mean value).
//!
//! The fit enforces q > 1 (so the population mean spend p gamma/(q-1) exists) by optimising
//! ln p, ln(q - 1), ln gamma. `v` is lifetimes' name for gamma.

use rayon::prelude::*;

use super::columns::{CHUNK, DenseWeights, PAR_MIN_ROWS, weighted_values};
use super::optimize::{
    OptimOptions, OptimResult, Start, invert_spd, minimize_multistart, newton, norm_inf,
};
use super::special::{digamma, ln_gamma, trigamma};
use super::summary::SpendRow;
use super::transaction::FitOptions;

/// Gamma-Gamma parameters (p, q, v = gamma), spend in currency units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GammaGammaParams {
    /// Shape p of the per-transaction spend distribution.
    pub p: f64,
    /// Shape q of the customer-level rate nu (must exceed 1 for a finite mean spend).
    pub q: f64,
    /// Scale gamma (lifetimes' `v`) of the customer-level rate nu.
    pub v: f64,
}

impl GammaGammaParams {
    /// True when p, q, v are finite and positive.
    pub fn is_valid(&self) -> bool {
        [self.p, self.q, self.v]
            .iter()
            .all(|x| x.is_finite() && *x > 0.0)
    }

    /// Log-density of a customer's mean repeat spend m given x repeat purchases, Fader & Hardie
    /// (2013) eq. (1a) as lifetimes codes it: ln Gamma(px+q) - ln Gamma(px) - ln Gamma(q)
    /// + q ln v + (px-1) ln m + px ln x - (px+q) ln(x m + v). NaN unless x >= 1 and m > 0.
    pub fn log_likelihood_row(&self, x: f64, m: f64) -> f64 {
        if !self.is_valid() || !(x >= 1.0) || !x.is_finite() || !(m > 0.0) || !m.is_finite() {
            return f64::NAN;
        }
        let (p, q, v) = (self.p, self.q, self.v);
        ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q)
            + q * v.ln()
            + (p * x - 1.0) * m.ln()
            + p * x * x.ln()
            - (p * x + q) * (x * m + v).ln()
    }

    /// Total weighted log-likelihood of spend rows (sum, not lifetimes' mean); NaN if any row is
    /// invalid.
    pub fn log_likelihood(&self, rows: &[SpendRow]) -> f64 {
        if !self.is_valid() {
            return f64::NAN;
        }
        match GgData::new(rows) {
            Ok(d) => evaluate(&d, self, None),
            Err(_) => f64::NAN,
        }
    }

    /// Population mean spend per transaction `E[Z] = p v/(q - 1)` (Fader & Hardie 2013, the mean
    /// of the marginal spend distribution, the first term of eq. (5)); NaN unless q > 1.
    pub fn population_mean_spend(&self) -> f64 {
        if !self.is_valid() || !(self.q > 1.0) {
            return f64::NAN;
        }
        self.p * self.v / (self.q - 1.0)
    }

    /// Conditional expected average spend, Fader & Hardie (2013) eq. (5):
    /// E(Z | p,q,v,x,m) = (q-1)/(px+q-1) * p v/(q-1) + px/(px+q-1) * m.
    /// For x = 0 (no repeat spend observed) this is the population mean; NaN if q <= 1, x < 0,
    /// or x > 0 with m not positive/finite.
    pub fn conditional_expected_spend(&self, x: f64, m: f64) -> f64 {
        let pop = self.population_mean_spend();
        if !pop.is_finite() || !(x >= 0.0) || !x.is_finite() {
            return f64::NAN;
        }
        if x == 0.0 {
            return pop;
        }
        if !(m > 0.0) || !m.is_finite() {
            return f64::NAN;
        }
        let w = self.p * x / (self.p * x + self.q - 1.0);
        (1.0 - w) * pop + w * m
    }
}

/// Result of [`fit_gamma_gamma`]; check `converged` (failure is a state, not an error).
#[derive(Clone, Debug, PartialEq)]
pub struct GammaGammaFit {
    /// Parameters at the last accepted point (NaN if the data were rejected).
    pub params: GammaGammaParams,
    /// True when the optimiser converged at finite, non-diverged parameters.
    pub converged: bool,
    /// Optimiser iterations used (summed over starting points).
    pub iterations: usize,
    /// Objective/gradient evaluations used by the optimiser (excluding the Hessian).
    pub evaluations: usize,
    /// Total log-likelihood at `params` (without penalty).
    pub log_likelihood: f64,
    /// Largest absolute gradient component of the mean objective in the optimiser's parameters.
    pub gradient_norm: f64,
    /// Why the fit did not converge (None when it did).
    pub reason: Option<String>,
    /// Standard errors of (p, q, v) by the delta method from the numerical Hessian; None if not
    /// requested or the Hessian is not positive definite.
    pub std_errors: Option<GammaGammaParams>,
    /// Covariance of the optimiser's parameters (ln p, ln(q - 1), ln v): the inverse Hessian of
    /// the penalised total negative log-likelihood, when `std_errors` is Some.
    pub cov_log: Option<Vec<Vec<f64>>>,
    /// Number of repeat customers used (sum of weights).
    pub n_customers: f64,
    /// Number of spend rows fitted (distinct (x, m) pairs, or repeat customers: see
    /// [`super::summary::summarize_spend`]).
    pub n_rows: usize,
}

struct GgData {
    xs: Vec<f64>,
    x_weight: Vec<f64>,
    xi: Vec<u32>,
    m: Vec<f64>,
    ln_m: Vec<f64>,
    w: Vec<f64>,
    total_w: f64,
    mean_m: f64,
    distinct_m: bool,
}

/// The first problem with spend row `i`, if any.
fn row_error(i: usize, r: &SpendRow) -> Option<String> {
    if !(r.x >= 1.0) || !r.x.is_finite() || r.x != r.x.floor() {
        Some(format!(
            "invalid spend row {i}: x must be an integer >= 1, got {}",
            r.x
        ))
    } else if !(r.m > 0.0) || !r.m.is_finite() {
        Some(format!(
            "invalid spend row {i}: mean spend must be positive and finite, got {}",
            r.m
        ))
    } else if !(r.weight > 0.0) || !r.weight.is_finite() {
        Some(format!(
            "invalid spend row {i}: weight must be positive and finite, got {}",
            r.weight
        ))
    } else {
        None
    }
}

/// What one chunk of rows adds up to: sum w, sum w m, and the weight per x.
struct ChunkSums {
    w: f64,
    wm: f64,
    x_weight: DenseWeights,
}

impl GgData {
    /// Validates rows and builds the column layout in one pass over them (validation, the m,
    /// ln m and weight columns, the sums, the weight per x), then numbers the distinct x (see
    /// [`weighted_values`]). In parallel for large inputs, in fixed chunks combined in order
    /// (the same result on any number of threads).
    fn new(rows: &[SpendRow]) -> Result<GgData, String> {
        let n = rows.len();
        let (mut m, mut ln_m, mut w) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        type Cols<'a> = (usize, ((&'a mut [f64], &'a mut [f64]), &'a mut [f64]));
        let fill = |(c, ((mc, lc), wc)): Cols| -> Result<ChunkSums, String> {
            let lo = c * CHUNK;
            let mut acc = ChunkSums {
                w: 0.0,
                wm: 0.0,
                x_weight: DenseWeights::new(),
            };
            for (k, r) in rows[lo..lo + mc.len()].iter().enumerate() {
                if let Some(e) = row_error(lo + k, r) {
                    return Err(e);
                }
                (mc[k], lc[k], wc[k]) = (r.m, r.m.ln(), r.weight);
                acc.w += r.weight;
                acc.wm += r.weight * r.m;
                acc.x_weight.add(r.x, r.weight);
            }
            Ok(acc)
        };
        // each chunk stops at its first invalid row, so the first error in chunk order is the
        // first invalid row
        let parts: Vec<Result<ChunkSums, String>> = if n >= PAR_MIN_ROWS {
            m.par_chunks_mut(CHUNK)
                .zip(ln_m.par_chunks_mut(CHUNK))
                .zip(w.par_chunks_mut(CHUNK))
                .enumerate()
                .map(fill)
                .collect()
        } else {
            m.chunks_mut(CHUNK)
                .zip(ln_m.chunks_mut(CHUNK))
                .zip(w.chunks_mut(CHUNK))
                .enumerate()
                .map(fill)
                .collect()
        };
        let parts = parts.into_iter().collect::<Result<Vec<_>, _>>()?;
        let (mut total_w, mut total_wm) = (0.0, 0.0);
        for p in &parts {
            total_w += p.w;
            total_wm += p.wm;
        }
        let tables = parts.into_iter().map(|p| p.x_weight).collect();
        let (xs, x_weight, xi) = weighted_values(n, |i| rows[i].x, |i| rows[i].weight, tables);
        let distinct_m = m.iter().any(|&v| v != m[0]);
        Ok(GgData {
            xs,
            x_weight,
            xi,
            m,
            ln_m,
            w,
            total_w,
            mean_m: if total_w > 0.0 {
                total_wm / total_w
            } else {
                0.0
            },
            distinct_m,
        })
    }
}

/// Rows of the subsample whose fit is Newton's starting point on large data.
const SUBSAMPLE_ROWS: usize = 20_000;

/// Total log-likelihood and optionally its gradient w.r.t. (p, q, v).
fn evaluate(d: &GgData, gp: &GammaGammaParams, grad: Option<&mut [f64; 3]>) -> f64 {
    let (p, q, v) = (gp.p, gp.q, gp.v);
    let with_grad = grad.is_some();
    let chunk = |lo: usize, hi: usize| -> [f64; 4] {
        let mut acc = [0.0; 4];
        for i in lo..hi {
            let x = d.xs[d.xi[i] as usize];
            let w = d.w[i];
            let xmv = x * d.m[i] + v;
            let l = xmv.ln();
            let lm = d.ln_m[i];
            acc[0] += w * ((p * x - 1.0) * lm - (p * x + q) * l);
            if with_grad {
                acc[1] += w * x * (lm - l);
                acc[2] -= w * l;
                acc[3] -= w * (p * x + q) / xmv;
            }
        }
        acc
    };
    let n = d.w.len();
    let n_chunks = n.div_ceil(CHUNK);
    let run = |c: usize| chunk(c * CHUNK, ((c + 1) * CHUNK).min(n));
    let parts: Vec<[f64; 4]> = if n >= PAR_MIN_ROWS {
        (0..n_chunks).into_par_iter().map(run).collect()
    } else {
        (0..n_chunks).map(run).collect()
    };
    let mut t = [0.0; 4];
    for a in parts {
        for k in 0..4 {
            t[k] += a[k];
        }
    }
    let (lq, lv, psi_q) = (
        ln_gamma(q),
        v.ln(),
        if with_grad { digamma(q) } else { 0.0 },
    );
    for (&x, &wx) in d.xs.iter().zip(&d.x_weight) {
        t[0] += wx * (ln_gamma(p * x + q) - ln_gamma(p * x) - lq + q * lv + p * x * x.ln());
        if with_grad {
            let psi_pxq = digamma(p * x + q);
            t[1] += wx * x * (psi_pxq - digamma(p * x) + x.ln());
            t[2] += wx * (psi_pxq - psi_q + lv);
            t[3] += wx * q / v;
        }
    }
    if let Some(g) = grad {
        *g = [t[1], t[2], t[3]];
    }
    t[0]
}

/// Total log-likelihood with its gradient and Hessian w.r.t. (p, q, v), in one pass over the
/// rows: besides the gradient's sums, each distinct x collects sum w/u and sum w/u^2 (u = x m + v),
/// from which every second derivative follows (the per-row terms are linear in p and q).
fn evaluate_hessian(d: &GgData, gp: &GammaGammaParams) -> (f64, [f64; 3], [[f64; 3]; 3]) {
    let (p, q, v) = (gp.p, gp.q, gp.v);
    let nx = d.xs.len();
    // per chunk: [ll, sum w x (ln m - l), sum w l] then per x: sum w/u, sum w/u^2
    let chunk = |lo: usize, hi: usize| -> Vec<f64> {
        let mut acc = vec![0.0; 3 + 2 * nx];
        for i in lo..hi {
            let j = d.xi[i] as usize;
            let x = d.xs[j];
            let w = d.w[i];
            let u = x * d.m[i] + v;
            let l = u.ln();
            let lm = d.ln_m[i];
            let wu = w / u;
            acc[0] += w * ((p * x - 1.0) * lm - (p * x + q) * l);
            acc[1] += w * x * (lm - l);
            acc[2] += w * l;
            acc[3 + 2 * j] += wu;
            acc[4 + 2 * j] += wu / u;
        }
        acc
    };
    let n = d.w.len();
    let n_chunks = n.div_ceil(CHUNK);
    let run = |c: usize| chunk(c * CHUNK, ((c + 1) * CHUNK).min(n));
    let parts: Vec<Vec<f64>> = if n >= PAR_MIN_ROWS {
        (0..n_chunks).into_par_iter().map(run).collect()
    } else {
        (0..n_chunks).map(run).collect()
    };
    let mut t = vec![0.0; 3 + 2 * nx];
    for a in parts {
        for (k, v) in a.into_iter().enumerate() {
            t[k] += v;
        }
    }
    let (lq, lv, psi_q, psi1_q) = (ln_gamma(q), v.ln(), digamma(q), trigamma(q));
    let mut ll = t[0];
    let mut g = [t[1], -t[2], 0.0];
    let mut h = [[0.0; 3]; 3];
    for (j, (&x, &wx)) in d.xs.iter().zip(&d.x_weight).enumerate() {
        let (b, c) = (t[3 + 2 * j], t[4 + 2 * j]);
        let (pxq, px) = (p * x + q, p * x);
        let (psi_pxq, psi1_pxq, psi1_px) = (digamma(pxq), trigamma(pxq), trigamma(px));
        ll += wx * (ln_gamma(pxq) - ln_gamma(px) - lq + q * lv + px * x.ln());
        g[0] += wx * x * (psi_pxq - digamma(px) + x.ln());
        g[1] += wx * (psi_pxq - psi_q + lv);
        g[2] += wx * q / v - pxq * b;
        h[0][0] += wx * x * x * (psi1_pxq - psi1_px);
        h[0][1] += wx * x * psi1_pxq;
        h[0][2] -= x * b;
        h[1][1] += wx * (psi1_pxq - psi1_q);
        h[1][2] += wx / v - b;
        h[2][2] += pxq * c - wx * q / (v * v);
    }
    h[1][0] = h[0][1];
    h[2][0] = h[0][2];
    h[2][1] = h[1][2];
    (ll, g, h)
}

/// [`objective`] with its Hessian in theta = (ln p, ln(q - 1), ln v).
fn objective_hessian(d: &GgData, theta: &[f64], penalizer: f64) -> (f64, [f64; 3], [[f64; 3]; 3]) {
    if theta
        .iter()
        .any(|v| !v.is_finite() || v.abs() > 2.0 * MAX_LOG_PARAM)
    {
        return (f64::NAN, [f64::NAN; 3], [[f64::NAN; 3]; 3]);
    }
    let gp = params_of(theta);
    let (ll, gr, hr) = evaluate_hessian(d, &gp);
    let w = d.total_w;
    let nat = [gp.p, gp.q, gp.v];
    let jac = [gp.p, gp.q - 1.0, gp.v];
    let mut pen = 0.0;
    let mut g = [0.0; 3];
    let mut h = [[0.0; 3]; 3];
    for i in 0..3 {
        pen += nat[i] * nat[i];
        let gi = -gr[i] / w + 2.0 * penalizer * nat[i];
        g[i] = gi * jac[i];
        for j in 0..3 {
            let hij = -hr[i][j] / w + if i == j { 2.0 * penalizer } else { 0.0 };
            h[i][j] = jac[i] * jac[j] * hij + if i == j { jac[i] * gi } else { 0.0 };
        }
    }
    (-ll / w + penalizer * pen, g, h)
}

const MAX_LOG_PARAM: f64 = 25.0;

/// theta = (ln p, ln(q - 1), ln v) -> params.
fn params_of(theta: &[f64]) -> GammaGammaParams {
    GammaGammaParams {
        p: theta[0].exp(),
        q: 1.0 + theta[1].exp(),
        v: theta[2].exp(),
    }
}

#[cfg(test)]
pub(super) fn objective_rows(
    rows: &[SpendRow],
    theta: &[f64],
    penalizer: f64,
    g: &mut [f64],
) -> f64 {
    match GgData::new(rows) {
        Ok(d) => objective(&d, theta, penalizer, g),
        Err(_) => f64::NAN,
    }
}

fn objective(d: &GgData, theta: &[f64], penalizer: f64, g: &mut [f64]) -> f64 {
    if theta
        .iter()
        .any(|v| !v.is_finite() || v.abs() > 2.0 * MAX_LOG_PARAM)
    {
        return f64::NAN;
    }
    let gp = params_of(theta);
    let mut gr = [0.0; 3];
    let ll = evaluate(d, &gp, Some(&mut gr));
    let nat = [gp.p, gp.q, gp.v];
    let jac = [gp.p, gp.q - 1.0, gp.v];
    let mut pen = 0.0;
    for i in 0..3 {
        pen += nat[i] * nat[i];
        g[i] = (-gr[i] / d.total_w + 2.0 * penalizer * nat[i]) * jac[i];
    }
    -ll / d.total_w + penalizer * pen
}

/// Fits the Gamma-Gamma model by maximum likelihood on repeat customers' (x, m) rows (see
/// [`super::summary::summarize_spend`]), with q > 1 enforced. Never panics: invalid or
/// degenerate data give `converged = false` with a `reason`.
pub fn fit_gamma_gamma(rows: &[SpendRow], opts: &FitOptions) -> GammaGammaFit {
    let nan = GammaGammaParams {
        p: f64::NAN,
        q: f64::NAN,
        v: f64::NAN,
    };
    let mut out = GammaGammaFit {
        params: nan,
        converged: false,
        iterations: 0,
        evaluations: 0,
        log_likelihood: f64::NAN,
        gradient_norm: f64::NAN,
        reason: None,
        std_errors: None,
        cov_log: None,
        n_customers: 0.0,
        n_rows: rows.len(),
    };
    let fail = |mut o: GammaGammaFit, why: String| {
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
    let d = match GgData::new(rows) {
        Ok(d) => d,
        Err(e) => return fail(out, e),
    };
    out.n_customers = d.total_w;
    if d.total_w == 0.0 {
        return fail(
            out,
            "no repeat customers (x > 0 with positive spend) to fit".into(),
        );
    }
    if d.total_w <= 1.0 {
        return fail(
            out,
            "degenerate data: a single repeat customer cannot identify the model".into(),
        );
    }
    if d.total_w < opts.min_repeat_customers as f64 {
        return fail(
            out,
            format!(
                "too few repeat customers: {} < configured minimum {}",
                d.total_w, opts.min_repeat_customers
            ),
        );
    }
    if !d.distinct_m {
        return fail(
            out,
            "degenerate data: every repeat customer has the same mean spend".into(),
        );
    }
    let oo = OptimOptions {
        max_iter: opts.max_iter,
        gtol: opts.gtol,
        ftol: opts.ftol,
    };
    let f = |th: &[f64], g: &mut [f64]| objective(&d, th, opts.penalizer, g);
    let starts = [
        Start::at(vec![0.0, 0.0, d.mean_m.ln()]),
        Start::at(vec![0.1, (0.1f64.exp() - 1.0).ln(), 0.1]),
    ];
    // Newton with the analytic Hessian (a handful of passes over the rows) from the optimum of
    // an evenly spaced subsample of the rows (BFGS there is cheap), or from the first start on
    // small data; BFGS from every start if it cannot (a Hessian not positive definite on the way)
    let warm = (rows.len() >= 4 * SUBSAMPLE_ROWS)
        .then(|| {
            let step = rows.len() / SUBSAMPLE_ROWS;
            let sub: Vec<SpendRow> = rows.iter().step_by(step).cloned().collect();
            let sd = GgData::new(&sub).ok()?;
            let fs = |th: &[f64], g: &mut [f64]| objective(&sd, th, opts.penalizer, g);
            let (r, _, _) = minimize_multistart(fs, &starts, &oo, MAX_LOG_PARAM);
            r.filter(|r| r.converged).map(|r| r.x)
        })
        .flatten();
    let from = warm.as_deref().unwrap_or(&starts[0].x);
    let newton_res = newton(
        |x| objective_hessian(&d, x, opts.penalizer),
        from,
        &oo,
        MAX_LOG_PARAM,
    )
    .map(|(x, f, g, it, h)| {
        (
            Some(OptimResult::newton(x, f, g.to_vec(), it)),
            it,
            it + 1,
            Some(h),
        )
    });
    let (best, iterations, evaluations, newton_hessian) = newton_res.unwrap_or_else(|| {
        let (r, i, e) = minimize_multistart(f, &starts, &oo, MAX_LOG_PARAM);
        (r, i, e, None)
    });
    let Some(res) = best else {
        return fail(out, "optimiser did not run".into());
    };
    let theta = res.x.clone();
    out.params = params_of(&theta);
    out.iterations = iterations;
    out.evaluations = evaluations;
    out.gradient_norm = norm_inf(&res.grad);
    // Newton's last objective is -ll / total + penalty, and its last Hessian is the one the
    // standard errors need: no further pass over the rows for either.
    let nat = [out.params.p, out.params.q, out.params.v];
    out.log_likelihood = if newton_hessian.is_some() {
        -(res.f - opts.penalizer * nat.iter().map(|v| v * v).sum::<f64>()) * d.total_w
    } else {
        evaluate(&d, &out.params, None)
    };
    let names = ["p", "q - 1", "v"];
    if let Some(i) = theta.iter().position(|v| v.abs() > MAX_LOG_PARAM) {
        return fail(
            out,
            format!(
                "parameter {} diverged (log value {:.1}): the data do not identify the model",
                names[i], theta[i]
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
        // the analytic Hessian of the penalised total negative log-likelihood
        let h = newton_hessian.unwrap_or_else(|| objective_hessian(&d, &theta, opts.penalizer).2);
        let total = d.total_w;
        let hess: Option<Vec<Vec<f64>>> = h.iter().flatten().all(|v| v.is_finite()).then(|| {
            h.iter()
                .map(|r| r.iter().map(|v| v * total).collect())
                .collect()
        });
        if let Some(cov) = hess.as_deref().and_then(invert_spd) {
            let jac = [out.params.p, out.params.q - 1.0, out.params.v];
            let se: Vec<f64> = (0..3).map(|i| jac[i] * cov[i][i].sqrt()).collect();
            out.std_errors = Some(GammaGammaParams {
                p: se[0],
                q: se[1],
                v: se[2],
            });
            out.cov_log = Some(cov);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<SpendRow> {
        vec![
            SpendRow {
                x: 1.0,
                m: 20.0,
                weight: 30.0,
            },
            SpendRow {
                x: 1.0,
                m: 45.0,
                weight: 10.0,
            },
            SpendRow {
                x: 2.0,
                m: 12.5,
                weight: 12.0,
            },
            SpendRow {
                x: 3.0,
                m: 33.0,
                weight: 7.0,
            },
            SpendRow {
                x: 6.0,
                m: 25.0,
                weight: 4.0,
            },
            SpendRow {
                x: 2.0,
                m: 60.0,
                weight: 3.0,
            },
        ]
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let d = GgData::new(&rows()).expect("valid");
        let th = [0.5, 0.3, 2.0];
        let mut g = [0.0; 3];
        objective(&d, &th, 0.01, &mut g);
        for i in 0..3 {
            let h = 1e-6;
            let (mut tp, mut tm) = (th, th);
            tp[i] += h;
            tm[i] -= h;
            let mut tmp = [0.0; 3];
            let fd = (objective(&d, &tp, 0.01, &mut tmp) - objective(&d, &tm, 0.01, &mut tmp))
                / (2.0 * h);
            assert!((fd - g[i]).abs() < 1e-7, "{i}: {fd} vs {}", g[i]);
        }
        let gp = params_of(&th);
        let direct: f64 = rows()
            .iter()
            .map(|r| r.weight * gp.log_likelihood_row(r.x, r.m))
            .sum();
        assert!((gp.log_likelihood(&rows()) - direct).abs() < 1e-10);
    }

    #[test]
    fn hessian_matches_finite_differences_of_the_gradient() {
        let d = GgData::new(&rows()).expect("valid");
        let th = [0.5, 0.3, 2.0];
        let (f, g, h) = objective_hessian(&d, &th, 0.01);
        let mut g2 = [0.0; 3];
        assert!((f - objective(&d, &th, 0.01, &mut g2)).abs() < 1e-12);
        for i in 0..3 {
            assert!((g[i] - g2[i]).abs() < 1e-12, "gradient {i}");
            let e = 1e-6;
            let (mut tp, mut tm) = (th, th);
            tp[i] += e;
            tm[i] -= e;
            let (mut gp, mut gm) = ([0.0; 3], [0.0; 3]);
            objective(&d, &tp, 0.01, &mut gp);
            objective(&d, &tm, 0.01, &mut gm);
            for j in 0..3 {
                let fd = (gp[j] - gm[j]) / (2.0 * e);
                assert!(
                    (fd - h[i][j]).abs() < 1e-6,
                    "H[{i}][{j}]: {fd} vs {}",
                    h[i][j]
                );
            }
        }
    }

    #[test]
    fn degenerate_and_invalid_inputs() {
        let o = FitOptions {
            min_repeat_customers: 2,
            ..Default::default()
        };
        let same = vec![
            SpendRow {
                x: 2.0,
                m: 10.0,
                weight: 50.0,
            },
            SpendRow {
                x: 1.0,
                m: 10.0,
                weight: 5.0,
            },
        ];
        let cases: Vec<(Vec<SpendRow>, &str)> = vec![
            (vec![], "no repeat customers"),
            (
                vec![SpendRow {
                    x: 1.0,
                    m: 10.0,
                    weight: 1.0,
                }],
                "single repeat customer",
            ),
            (same, "same mean spend"),
            (
                vec![SpendRow {
                    x: 0.0,
                    m: 10.0,
                    weight: 5.0,
                }],
                "x must be an integer >= 1",
            ),
            (
                vec![SpendRow {
                    x: 1.0,
                    m: -3.0,
                    weight: 5.0,
                }],
                "mean spend must be positive",
            ),
            (
                vec![SpendRow {
                    x: 1.0,
                    m: f64::NAN,
                    weight: 5.0,
                }],
                "mean spend must be positive",
            ),
        ];
        for (r, want) in cases {
            let f = fit_gamma_gamma(&r, &o);
            assert!(!f.converged);
            let reason = f.reason.unwrap_or_default();
            assert!(reason.contains(want), "expected '{want}' in '{reason}'");
        }
        let f = fit_gamma_gamma(
            &rows(),
            &FitOptions {
                min_repeat_customers: 1000,
                ..o
            },
        );
        assert!(
            f.reason
                .unwrap_or_default()
                .contains("too few repeat customers: 66 < configured minimum 1000")
        );
        let truth = super::super::transaction::NbdParams {
            r: 0.5,
            alpha: 5.0,
            a: 0.8,
            b: 2.5,
        };
        let sim = super::super::sim::simulate_bgnbd(3000, &truth, 52.0, 3);
        let gg = GammaGammaParams {
            p: 6.0,
            q: 3.5,
            v: 15.0,
        };
        let m = super::super::sim::simulate_spend(&sim, &gg, 4);
        let x: Vec<f64> = sim.iter().map(|c| c.x).collect();
        let s = super::super::summary::summarize_spend(&x, &m).expect("same lengths");
        let f = fit_gamma_gamma(&s.rows, &o);
        assert!(f.converged, "{:?}", f.reason);
        assert!(f.std_errors.is_some());
        assert!(f.params.q > 1.0);
        let gp = GammaGammaParams {
            p: 6.0,
            q: 0.5,
            v: 15.0,
        };
        assert!(gp.conditional_expected_spend(2.0, 10.0).is_nan());
        let gp = GammaGammaParams { q: 3.5, ..gp };
        assert!(gp.conditional_expected_spend(2.0, -1.0).is_nan());
        assert_eq!(
            gp.conditional_expected_spend(0.0, 0.0),
            gp.population_mean_spend()
        );
    }
}
