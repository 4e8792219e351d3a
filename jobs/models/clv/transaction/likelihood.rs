//! The BG/NBD and MBG/NBD log-likelihood over weighted summary rows, with its analytic gradient
//! and Hessian, the penalised objective in log-parameters and the Newton refinement.
//!
//! The lgamma/digamma terms are precomputed once per distinct x, and ln(alpha + T), 1 / (alpha +
//! T) once per distinct T (likewise t_x: whole days give about a thousand of each), so each row
//! costs one exp and one log1p; rows are split in fixed chunks (rayon for large inputs) and the
//! chunk sums are added in order, so results do not depend on the number of threads.

use rayon::prelude::*;

use super::super::columns::{CHUNK, DenseWeights, Dictionary, PAR_MIN_ROWS, weighted_values};
use super::super::nbd::{NbdParams, XTerms};
use super::super::optimize::OptimOptions;
use super::super::summary::{Rfm, SummaryRow, validate_rfm};
use super::super::{bgnbd, mbgnbd, pnbd};
use super::TransactionModelKind;

/// Validated summary rows in column form, with distinct x values; t_x and T as indices into
/// their distinct values.
pub struct NbdData {
    pub(super) xs: Vec<f64>,
    pub(super) x_weight: Vec<f64>,
    pub(super) xi: Vec<u32>,
    pub(super) tx: Distinct,
    pub(super) t: Distinct,
    pub(super) w: Vec<f64>,
    pub(super) total_w: f64,
    pub(super) repeat_w: f64,
    pub(super) max_t: f64,
    pub(super) mean_x: f64,
    pub(super) mean_t: f64,
}

/// One column as its distinct values (ascending) and each row's index.
pub(super) type Distinct = Dictionary;

impl Dictionary {
    /// (ln(alpha + v), 1 / (alpha + v)) per distinct value v.
    fn log_and_inverse(&self, alpha: f64) -> Vec<(f64, f64)> {
        self.values
            .iter()
            .map(|&v| {
                let a = alpha + v;
                (a.ln(), 1.0 / a)
            })
            .collect()
    }
}

impl NbdData {
    /// Validates rows (finite, weight > 0, see `validate_rfm`) and builds the column layout:
    /// one pass validates, copies the weights and sums them (with the weight per x), then t_x
    /// and T are dictionary-encoded. In parallel for large inputs, in fixed chunks combined in
    /// order (the same result on any number of threads).
    pub fn new(rows: &[SummaryRow]) -> Result<NbdData, String> {
        let n = rows.len();
        let mut w = vec![0.0; n];
        // per chunk: [total w, repeat w, max T, sum w x, sum w T] and w per x; a chunk stops
        // at its first invalid row, so the first error in chunk order is the first invalid row
        let fill = |(c, wc): (usize, &mut [f64])| -> Result<([f64; 5], DenseWeights), String> {
            let lo = c * CHUNK;
            let (mut acc, mut per_x) = ([0.0; 5], DenseWeights::new());
            for (k, r) in rows[lo..lo + wc.len()].iter().enumerate() {
                let i = lo + k;
                if let Err(e) = validate_rfm(&Rfm {
                    x: r.x,
                    t_x: r.t_x,
                    t: r.t,
                }) {
                    return Err(format!("invalid summary row {i}: {e}"));
                }
                if !(r.weight > 0.0) || !r.weight.is_finite() {
                    return Err(format!(
                        "invalid summary row {i}: weight must be positive and finite, got {}",
                        r.weight
                    ));
                }
                wc[k] = r.weight;
                acc[0] += r.weight;
                if r.x > 0.0 {
                    acc[1] += r.weight;
                }
                acc[2] = f64::max(acc[2], r.t);
                acc[3] += r.weight * r.x;
                acc[4] += r.weight * r.t;
                per_x.add(r.x, r.weight);
            }
            Ok((acc, per_x))
        };
        let parts: Vec<Result<([f64; 5], DenseWeights), String>> = if n >= PAR_MIN_ROWS {
            w.par_chunks_mut(CHUNK).enumerate().map(fill).collect()
        } else {
            w.chunks_mut(CHUNK).enumerate().map(fill).collect()
        };
        let parts = parts.into_iter().collect::<Result<Vec<_>, _>>()?;
        let mut t = [0.0; 5];
        let mut tables = Vec::with_capacity(parts.len());
        for (a, per_x) in parts {
            for (k, v) in a.into_iter().enumerate() {
                if k == 2 {
                    t[2] = f64::max(t[2], v);
                } else {
                    t[k] += v;
                }
            }
            tables.push(per_x);
        }
        let (mean_x, mean_t) = if t[0] > 0.0 {
            (t[3] / t[0], t[4] / t[0])
        } else {
            (0.0, 0.0)
        };
        let (xs, x_weight, xi) = weighted_values(n, |i| rows[i].x, |i| rows[i].weight, tables);
        Ok(NbdData {
            xs,
            x_weight,
            xi,
            tx: Dictionary::new(n, |i| rows[i].t_x),
            t: Dictionary::new(n, |i| rows[i].t),
            w,
            total_w: t[0],
            repeat_w: t[1],
            max_t: t[2],
            mean_x,
            mean_t,
        })
    }
}

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
    let (by_t, by_tx) = (d.t.log_and_inverse(p.alpha), d.tx.log_and_inverse(p.alpha));
    let chunk = |lo: usize, hi: usize| -> Acc {
        let mut acc = Acc::default();
        for i in lo..hi {
            let xt = &terms[d.xi[i] as usize];
            let w = d.w[i];
            let (lt, ia) = by_t[d.t.index[i] as usize];
            let mut ll = -xt.rx * lt;
            if xt.has_d {
                let (ltx, ib) = by_tx[d.tx.index[i] as usize];
                let ldiff = lt - ltx;
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
                    acc.g_alpha += w * (-xt.rx * ia + s * xt.rx * (ia - ib));
                    acc.s += w * s;
                    acc.s_db += w * s * xt.dk_b;
                }
            } else if with_grad {
                acc.g_r -= w * lt;
                acc.g_alpha -= w * xt.rx * ia;
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
    let (by_t, by_tx) = (d.t.log_and_inverse(alpha), d.tx.log_and_inverse(alpha));
    // acc: ll, g[4], h upper triangle (rr, ra, raa... ) in order
    // 0 ll, 1..5 g, 5..15 h(00,01,02,03,11,12,13,22,23,33)
    let chunk = |lo: usize, hi: usize| -> [f64; 15] {
        let mut acc = [0.0; 15];
        for i in lo..hi {
            let xt = &terms[d.xi[i] as usize];
            let w = d.w[i];
            let (lt, ia) = by_t[d.t.index[i] as usize];
            let rx = xt.rx;
            acc[0] -= w * rx * lt;
            acc[1] -= w * lt;
            acc[2] -= w * rx * ia;
            acc[6] -= w * ia;
            acc[9] += w * rx * ia * ia;
            if xt.has_d {
                let (ltx, ib) = by_tx[d.tx.index[i] as usize];
                let ldiff = lt - ltx;
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
pub(super) fn objective_hessian(
    kind: TransactionModelKind,
    d: &NbdData,
    theta: &[f64],
    penalizer: f64,
) -> (f64, [f64; 4], [[f64; 4]; 4]) {
    let p = NbdParams::exp_of(theta);
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

/// Newton's method ([`newton`](super::super::optimize::newton)) on the mean objective in
/// log-parameters, from a point near the optimum (the subsample fit); None when the caller
/// should run BFGS instead.
#[allow(clippy::type_complexity)]
pub(super) fn newton(
    kind: TransactionModelKind,
    d: &NbdData,
    start: &[f64],
    penalizer: f64,
    opts: &OptimOptions,
) -> Option<(Vec<f64>, f64, [f64; 4], usize, [[f64; 4]; 4])> {
    super::super::optimize::newton(
        |x| objective_hessian(kind, d, x, penalizer),
        start,
        opts,
        MAX_LOG_PARAM,
    )
}

pub(super) const MAX_LOG_PARAM: f64 = 25.0;

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
    let p = NbdParams::exp_of(theta);
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
