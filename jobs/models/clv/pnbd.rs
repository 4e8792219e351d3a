//! Pareto/NBD model formulas (Schmittlein, Morrison & Colombo 1987, "Counting your customers:
//! who are they and what will they do next?", Management Science 33(1); the expressions are
//! those of Fader, Hardie & Lee 2005, "A note on deriving the Pareto/NBD model and related
//! expressions", brucehardie.com note 009, cited as FHL note 009 with its equation numbers).
//!
//! While alive a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha) and stays
//! alive for an exponential lifetime with rate mu ~ Gamma(s, beta). The parameters are carried
//! in [`NbdParams`] with `a` = s and `b` = beta (see [`PnbdView`]). Times are in model units;
//! invalid input gives NaN, never a panic.
//!
//! # Numerics
//! The likelihood (FHL note 009 eq. 18) is
//! L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A_0 ],
//! where A_0 (eqs. 19-20) is a difference of two Gauss 2F1 terms. It is computed here as
//! s/(r+s+x) A_0 = s (I(t_x) - I(T)) with the integral
//! I(t) = int_t^inf (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau
//!      = (m+t)^-(r+s+x) 2F1(r+s+x, b; r+s+x+1; |alpha-beta|/(m+t)) / (r+s+x),
//! m = max(alpha, beta), b = s+1 if alpha >= beta else r+x (eqs. 19-20). Euler's transformation
//! (Abramowitz & Stegun 15.3.3) turns that 2F1 into (1-z)^(...) 2F1(1, b'; r+s+x+1; z) with
//! b' = r+x (alpha >= beta) or s+1 (alpha < beta), whose series has positive terms shrinking at
//! least like z^k: it is summed in log space together with its derivatives in b', c and z, so
//! the gradient is analytic. Within 0.05 of z = 1 the general [`ln_hyp2f1`] (1 - z connection
//! formulas) is used instead, with central differences for the gradient. The difference
//! I(t_x) - I(T) is taken as ln I(t_x) + ln(-expm1(ln I(T) - ln I(t_x))), so nothing overflows
//! or cancels catastrophically for large x (finite at x = 500 and beyond; CLVTools reports NaN
//! there; checked against 40-digit mpmath values in `tests/reference/pnbd_values.json`).

use rayon::prelude::*;

use super::nbd::NbdParams;
use super::special::{digamma, ln_gamma, ln_hyp2f1, sigmoid};
use super::summary::{Rfm, SummaryRow, validate_rfm};

/// Pareto/NBD names for the fields of [`NbdParams`] (a = s, b = beta).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PnbdView {
    /// Gamma shape r of the purchase rate.
    pub r: f64,
    /// Gamma rate alpha of the purchase rate.
    pub alpha: f64,
    /// Gamma shape s of the dropout rate.
    pub s: f64,
    /// Gamma rate beta of the dropout rate.
    pub beta: f64,
}

impl PnbdView {
    /// The view of stored parameters.
    pub fn of(p: &NbdParams) -> PnbdView {
        PnbdView {
            r: p.r,
            alpha: p.alpha,
            s: p.a,
            beta: p.b,
        }
    }
    /// Stored form (a = s, b = beta).
    pub fn params(&self) -> NbdParams {
        NbdParams {
            r: self.r,
            alpha: self.alpha,
            a: self.s,
            b: self.beta,
        }
    }
}

/// Above this argument the Euler-form series is replaced by the general 2F1.
const Z_SERIES_MAX: f64 = 0.95;
const MAX_TERMS: usize = 20_000;

/// ln G and d ln G / d(b', c, z) for G = 2F1(1, b'; c; z) = sum_k (b')_k / (c)_k z^k, 0 <= z < 1,
/// 0 < b' < c. None when z is too close to 1 for the series (or it did not converge).
fn euler_series(b1: f64, c1: f64, z: f64, grad: bool) -> Option<[f64; 4]> {
    if z == 0.0 {
        return Some([0.0, 0.0, 0.0, b1 / c1]);
    }
    if !(z > 0.0 && z <= Z_SERIES_MAX) {
        return None;
    }
    let (mut g, mut sum) = (1.0f64, 1.0f64);
    let (mut hb, mut hc, mut sb, mut sc, mut sz) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    // Terms shrink by at least z each step, so the tail after g is below g z / (1 - z); the
    // derivative sums weigh term k by O(k), hence the extra (1 - z) factor.
    let stop = 1e-17 * (1.0 - z) * (1.0 - z);
    let mut done = false;
    for k in 0..MAX_TERMS {
        let kf = k as f64;
        g *= (b1 + kf) / (c1 + kf) * z;
        sum += g;
        if grad {
            hb += 1.0 / (b1 + kf);
            hc += 1.0 / (c1 + kf);
            sb += g * hb;
            sc += g * hc;
            sz += g * (kf + 1.0);
        }
        if g * (kf + 2.0) <= stop * sum {
            done = true;
            break;
        }
    }
    if !done || !sum.is_finite() {
        return None;
    }
    Some([sum.ln(), sb / sum, -sc / sum, sz / (z * sum)])
}

/// ln I(t) (see the module docs) with the general 2F1, no gradient.
fn ln_i_general(p: &NbdParams, x: f64, t: f64) -> f64 {
    let (r, alpha, s, beta) = (p.r, p.alpha, p.a, p.b);
    let n = r + s + x;
    let (m, b) = if alpha >= beta {
        (alpha, s + 1.0)
    } else {
        (beta, r + x)
    };
    let z = (alpha - beta).abs() / (m + t);
    let f = ln_hyp2f1(n, b, n + 1.0, z);
    if !(f.sign > 0.0) {
        return f64::NAN;
    }
    -n * (m + t).ln() - n.ln() + f.ln
}

/// ln I(t) for repeat count x and its gradient w.r.t. (r, alpha, s, beta) (zeros unless `grad`).
pub(super) fn ln_i(p: &NbdParams, x: f64, t: f64, grad: bool) -> (f64, [f64; 4]) {
    let (r, alpha, s, beta) = (p.r, p.alpha, p.a, p.b);
    let n = r + s + x;
    let c1 = n + 1.0;
    let (at, bt) = (alpha + t, beta + t);
    let (la, lb) = (at.ln(), bt.ln());
    if alpha >= beta {
        let z = (alpha - beta) / at;
        if let Some([lg, db, dc, dz]) = euler_series(r + x, c1, z, grad) {
            let v = -(r + x) * la - s * lb - n.ln() + lg;
            let g = [
                -la - 1.0 / n + db + dc,
                -(r + x) / at + dz * bt / (at * at),
                -lb - 1.0 / n + dc,
                -s / bt - dz / at,
            ];
            return (v, if grad { g } else { [0.0; 4] });
        }
    } else {
        let z = (beta - alpha) / bt;
        if let Some([lg, db, dc, dz]) = euler_series(s + 1.0, c1, z, grad) {
            let v = -(r + x - 1.0) * la - (s + 1.0) * lb - n.ln() + lg;
            let g = [
                -la - 1.0 / n + dc,
                -(r + x - 1.0) / at - dz / bt,
                -lb - 1.0 / n + db + dc,
                -(s + 1.0) / bt + dz * at / (bt * bt),
            ];
            return (v, if grad { g } else { [0.0; 4] });
        }
    }
    let v = ln_i_general(p, x, t);
    let mut g = [0.0; 4];
    if grad {
        let base = [r, alpha, s, beta];
        for (i, gi) in g.iter_mut().enumerate() {
            let h = 1e-6 * base[i];
            let mut up = base;
            up[i] += h;
            let mut dn = base;
            dn[i] -= h;
            let q = |v: [f64; 4]| NbdParams {
                r: v[0],
                alpha: v[1],
                a: v[2],
                b: v[3],
            };
            *gi = (ln_i_general(&q(up), x, t) - ln_i_general(&q(dn), x, t)) / (2.0 * h);
        }
    }
    (v, g)
}

/// Per-x constant of the log-likelihood, A_1 = ln Gamma(r+x) - ln Gamma(r) + r ln alpha
/// + s ln beta (FHL note 009 eq. 18), and its gradient.
fn a1(p: &NbdParams, x: f64, grad: bool) -> (f64, [f64; 4]) {
    let (r, alpha, s, beta) = (p.r, p.alpha, p.a, p.b);
    let v = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + s * beta.ln();
    if !grad {
        return (v, [0.0; 4]);
    }
    (
        v,
        [
            digamma(r + x) - digamma(r) + alpha.ln(),
            r / alpha,
            beta.ln(),
            s / beta,
        ],
    )
}

/// The two terms of the bracket of eq. (18) in log form for one customer:
/// e = ln[(alpha+T)^-(r+x) (beta+T)^-s] and d = ln[s (I(t_x) - I(T))] (-inf when t_x = T).
fn bracket_terms(p: &NbdParams, c: &Rfm) -> (f64, f64) {
    let (r, alpha, s, beta) = (p.r, p.alpha, p.a, p.b);
    let e = -(r + c.x) * (alpha + c.t).ln() - s * (beta + c.t).ln();
    if c.t_x >= c.t {
        return (e, f64::NEG_INFINITY);
    }
    let (u, _) = ln_i(p, c.x, c.t_x, false);
    let (v, _) = ln_i(p, c.x, c.t, false);
    (e, s.ln() + u + (-(v - u).exp_m1()).ln())
}

/// Log-likelihood of one customer, FHL note 009 eq. (18) (see the module docs).
pub fn log_likelihood_row(p: &NbdParams, c: &Rfm) -> f64 {
    if !p.is_valid() || validate_rfm(c).is_err() {
        return f64::NAN;
    }
    let (e, d) = bracket_terms(p, c);
    a1(p, c.x, false).0 + super::special::log_add_exp(e, d)
}

/// P(alive | x, t_x, T), FHL note 009 eqs. (36)-(37):
/// 1 / (1 + s/(r+s+x) (alpha+T)^(r+x) (beta+T)^s A_0).
pub fn p_alive(p: &NbdParams, c: &Rfm) -> f64 {
    if !p.is_valid() || validate_rfm(c).is_err() {
        return f64::NAN;
    }
    let (e, d) = bracket_terms(p, c);
    sigmoid(e - d)
}

/// (1 - q^c) / c for q = exp(-l), l >= 0, with its limit l at c = 0.
fn one_minus_pow_over(c: f64, l: f64) -> f64 {
    if c == 0.0 { l } else { -(-c * l).exp_m1() / c }
}

/// E[X(t)], expected repeat purchases in (0, t] of a new customer, FHL note 009 eq. (27):
/// r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)] (the limit r beta/alpha ln(1 + t/beta)
/// at s = 1).
pub fn expected_purchases(p: &NbdParams, t: f64) -> f64 {
    if !p.is_valid() || !(t >= 0.0) || !t.is_finite() {
        return f64::NAN;
    }
    let (r, alpha, s, beta) = (p.r, p.alpha, p.a, p.b);
    r / alpha * beta * one_minus_pow_over(s - 1.0, (t / beta).ln_1p())
}

/// E[Y(t) | x, t_x, T], expected repeat purchases in (T, T+t], FHL note 009 eq. (41):
/// P(alive) (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)].
pub fn conditional_expected_purchases(p: &NbdParams, t: f64, c: &Rfm) -> f64 {
    if !p.is_valid() || validate_rfm(c).is_err() || !(t >= 0.0) || !t.is_finite() {
        return f64::NAN;
    }
    p_alive(p, c) * alive_expected_purchases(p, t, c.x, c.t)
}

/// E[Y(t) | alive at T, x, T]: the bracket of eq. (41) without P(alive).
pub(super) fn alive_expected_purchases(p: &NbdParams, t: f64, x: f64, big_t: f64) -> f64 {
    let (r, alpha, s, beta) = (p.r, p.alpha, p.a, p.b);
    (r + x) / (alpha + big_t)
        * (beta + big_t)
        * one_minus_pow_over(s - 1.0, (t / (beta + big_t)).ln_1p())
}

/// Validated rows in the layout of the vectorised likelihood: distinct x, distinct (x, t)
/// pairs for t in {t_x} and {T}, and rows pointing at them.
pub struct PnbdData {
    xs: Vec<f64>,
    x_weight: Vec<f64>,
    pair_x: Vec<u32>,
    pair_t: Vec<f64>,
    row_x: Vec<u32>,
    row_tx: Vec<u32>,
    row_t: Vec<u32>,
    w: Vec<f64>,
    /// Sum of weights.
    pub total_w: f64,
}

impl PnbdData {
    /// Builds the layout from rows already validated by `NbdData::new`.
    pub fn new(rows: &[SummaryRow]) -> PnbdData {
        let mut xs: Vec<f64> = rows.iter().map(|r| r.x).collect();
        xs.sort_by(|a, b| a.total_cmp(b));
        xs.dedup();
        let mut keys: Vec<(u32, u64)> = Vec::with_capacity(2 * rows.len());
        let xi = |x: f64| xs.partition_point(|v| *v < x) as u32;
        for r in rows {
            let j = xi(r.x);
            keys.push((j, (r.t_x + 0.0).to_bits()));
            keys.push((j, (r.t + 0.0).to_bits()));
        }
        keys.par_sort_unstable();
        keys.dedup();
        let find = |j: u32, t: f64| keys.partition_point(|k| *k < (j, (t + 0.0).to_bits())) as u32;
        let mut d = PnbdData {
            x_weight: vec![0.0; xs.len()],
            pair_x: keys.iter().map(|k| k.0).collect(),
            pair_t: keys.iter().map(|k| f64::from_bits(k.1)).collect(),
            row_x: Vec::with_capacity(rows.len()),
            row_tx: Vec::with_capacity(rows.len()),
            row_t: Vec::with_capacity(rows.len()),
            w: Vec::with_capacity(rows.len()),
            xs: Vec::new(),
            total_w: 0.0,
        };
        for r in rows {
            let j = xi(r.x);
            d.x_weight[j as usize] += r.weight;
            d.row_x.push(j);
            d.row_tx.push(find(j, r.t_x));
            d.row_t.push(find(j, r.t));
            d.w.push(r.weight);
            d.total_w += r.weight;
        }
        d.xs = xs;
        d
    }
}

const CHUNK: usize = 8192;
const PAR_MIN: usize = 4 * CHUNK;

/// Total weighted log-likelihood and, if asked, its gradient w.r.t. (r, alpha, s, beta).
pub(super) fn evaluate(d: &PnbdData, p: &NbdParams, grad: Option<&mut [f64; 4]>) -> f64 {
    let with_grad = grad.is_some();
    let pair = |i: usize| ln_i(p, d.xs[d.pair_x[i] as usize], d.pair_t[i], with_grad);
    let pairs: Vec<(f64, [f64; 4])> = if d.pair_t.len() >= PAR_MIN {
        (0..d.pair_t.len())
            .into_par_iter()
            .with_min_len(1024)
            .map(pair)
            .collect()
    } else {
        (0..d.pair_t.len()).map(pair).collect()
    };
    let (r, alpha, s, beta) = (p.r, p.alpha, p.a, p.b);
    let ln_s = s.ln();
    let chunk = |lo: usize, hi: usize| -> [f64; 5] {
        let mut acc = [0.0; 5];
        for i in lo..hi {
            let x = d.xs[d.row_x[i] as usize];
            let big_t = d.pair_t[d.row_t[i] as usize];
            let w = d.w[i];
            let (at, bt) = (alpha + big_t, beta + big_t);
            let (la, lb) = (at.ln(), bt.ln());
            let e = -(r + x) * la - s * lb;
            let (u, du) = pairs[d.row_tx[i] as usize];
            let (v, dv) = pairs[d.row_t[i] as usize];
            let has_d = d.row_tx[i] != d.row_t[i];
            let q = if has_d { (v - u).exp() } else { 1.0 };
            let om = -(v - u).exp_m1();
            let dterm = if has_d && om > 0.0 {
                ln_s + u + om.ln()
            } else {
                f64::NEG_INFINITY
            };
            let m = e.max(dterm);
            let ll2 = m + ((e - m).exp() + (dterm - m).exp()).ln();
            acc[0] += w * ll2;
            if with_grad {
                let pa = sigmoid(e - dterm);
                let de = [-la, -(r + x) / at, -lb, -s / bt];
                for k in 0..4 {
                    let mut g = pa * de[k];
                    if dterm > f64::NEG_INFINITY {
                        let mut ds = (du[k] - q * dv[k]) / om;
                        if k == 2 {
                            ds += 1.0 / s;
                        }
                        g += (1.0 - pa) * ds;
                    }
                    acc[k + 1] += w * g;
                }
            }
        }
        acc
    };
    let n = d.w.len();
    let run = |c: usize| chunk(c * CHUNK, ((c + 1) * CHUNK).min(n));
    let parts: Vec<[f64; 5]> = if n >= PAR_MIN {
        (0..n.div_ceil(CHUNK)).into_par_iter().map(run).collect()
    } else {
        (0..n.div_ceil(CHUNK)).map(run).collect()
    };
    let mut tot = [0.0; 5];
    for a in parts {
        for k in 0..5 {
            tot[k] += a[k];
        }
    }
    for (&x, &wx) in d.xs.iter().zip(&d.x_weight) {
        let (v, g) = a1(p, x, with_grad);
        tot[0] += wx * v;
        for k in 0..4 {
            tot[k + 1] += wx * g[k];
        }
    }
    if let Some(out) = grad {
        out.copy_from_slice(&tot[1..]);
    }
    tot[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> NbdParams {
        PnbdView {
            r: 0.55,
            alpha: 10.58,
            s: 0.61,
            beta: 11.67,
        }
        .params()
    }

    /// ln I(t) by direct quadrature of its integral (substitution tau = t + u/(1-u)).
    fn ln_i_quadrature(p: &NbdParams, x: f64, t: f64) -> f64 {
        let f = |u: f64| {
            let tau = t + u / (1.0 - u);
            (p.alpha + tau).powf(-(p.r + x)) * (p.b + tau).powf(-(p.a + 1.0))
                / ((1.0 - u) * (1.0 - u))
        };
        // composite Simpson on [0, 1 - 1e-9]
        let n = 200_000;
        let hi = 1.0 - 1e-9;
        let h = hi / n as f64;
        let mut s = f(0.0) + f(hi);
        for i in 1..n {
            s += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        (s * h / 3.0).ln()
    }

    #[test]
    fn integral_matches_quadrature_in_both_branches() {
        for (alpha, beta) in [(10.58, 11.67), (11.67, 10.58), (3.0, 40.0), (40.0, 3.0)] {
            let q = PnbdView {
                r: 0.55,
                alpha,
                s: 1.6,
                beta,
            }
            .params();
            for &(x, t) in &[(0.0, 0.0), (2.0, 5.0), (7.0, 30.0), (1.0, 0.5)] {
                let (v, _) = ln_i(&q, x, t, false);
                let want = ln_i_quadrature(&q, x, t);
                assert!(
                    (v - want).abs() < 1e-7,
                    "alpha {alpha} beta {beta} x {x} t {t}: {v} vs {want}"
                );
                let g = ln_i_general(&q, x, t);
                assert!(
                    (g - v).abs() < 1e-9 * v.abs(),
                    "general {g} vs series {v}: alpha {alpha} beta {beta} x {x} t {t}"
                );
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        for (alpha, beta) in [(10.58, 11.67), (11.67, 10.58), (1.0, 60.0), (60.0, 1.0)] {
            let q = PnbdView {
                r: 0.55,
                alpha,
                s: 0.61,
                beta,
            }
            .params();
            for &(x, t) in &[(0.0, 0.0), (3.0, 5.0), (40.0, 30.0), (1.0, 0.0)] {
                let (_, g) = ln_i(&q, x, t, true);
                let base = [q.r, q.alpha, q.a, q.b];
                for i in 0..4 {
                    let h = 1e-6 * base[i];
                    let mut up = base;
                    up[i] += h;
                    let mut dn = base;
                    dn[i] -= h;
                    let mk = |v: [f64; 4]| NbdParams {
                        r: v[0],
                        alpha: v[1],
                        a: v[2],
                        b: v[3],
                    };
                    let fd =
                        (ln_i(&mk(up), x, t, false).0 - ln_i(&mk(dn), x, t, false).0) / (2.0 * h);
                    assert!(
                        (fd - g[i]).abs() < 1e-6 * (1.0 + fd.abs()),
                        "alpha {alpha} beta {beta} x {x} t {t} param {i}: fd {fd} vs {}",
                        g[i]
                    );
                }
            }
        }
    }

    #[test]
    fn finite_for_frequencies_up_to_500() {
        let q = p();
        for x in [0.0, 1.0, 10.0, 100.0, 250.0, 500.0, 2000.0] {
            for &(t_x, big_t) in &[(0.0, 50.0), (10.0, 50.0), (49.0, 50.0), (50.0, 50.0)] {
                if x == 0.0 && t_x > 0.0 {
                    continue;
                }
                let c = Rfm { x, t_x, t: big_t };
                let ll = log_likelihood_row(&q, &c);
                let pa = p_alive(&q, &c);
                let e = conditional_expected_purchases(&q, 52.0, &c);
                assert!(ll.is_finite(), "x {x} t_x {t_x}: LL {ll}");
                assert!((0.0..=1.0).contains(&pa), "x {x} t_x {t_x}: P(alive) {pa}");
                assert!(e.is_finite() && e >= 0.0, "x {x} t_x {t_x}: E {e}");
            }
        }
        // A heavy buyer who just bought is almost surely alive; one silent for long is not.
        let hot = p_alive(
            &q,
            &Rfm {
                x: 500.0,
                t_x: 49.9,
                t: 50.0,
            },
        );
        let cold = p_alive(
            &q,
            &Rfm {
                x: 500.0,
                t_x: 10.0,
                t: 50.0,
            },
        );
        assert!(hot > 0.99 && cold < 1e-6, "{hot} {cold}");
    }

    #[test]
    fn vectorised_likelihood_and_gradient() {
        let rows = vec![
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
                t_x: 30.0,
                t: 30.0,
                weight: 5.0,
            },
        ];
        let d = PnbdData::new(&rows);
        for q in [
            p(),
            PnbdView {
                r: 0.9,
                alpha: 2.0,
                s: 1.4,
                beta: 30.0,
            }
            .params(),
        ] {
            let direct: f64 = rows
                .iter()
                .map(|r| r.weight * log_likelihood_row(&q, &r.rfm()))
                .sum();
            let mut g = [0.0; 4];
            let v = evaluate(&d, &q, Some(&mut g));
            assert!((v - direct).abs() < 1e-10 * direct.abs(), "{v} {direct}");
            let base = [q.r, q.alpha, q.a, q.b];
            for i in 0..4 {
                let h = 1e-6 * base[i];
                let mut up = base;
                up[i] += h;
                let mut dn = base;
                dn[i] -= h;
                let mk = |v: [f64; 4]| NbdParams {
                    r: v[0],
                    alpha: v[1],
                    a: v[2],
                    b: v[3],
                };
                let fd = (evaluate(&d, &mk(up), None) - evaluate(&d, &mk(dn), None)) / (2.0 * h);
                assert!(
                    (fd - g[i]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "{i}: {fd} vs {}",
                    g[i]
                );
            }
        }
    }
}
