//! BG/NBD model formulas (Fader, Hardie & Lee 2005, "Counting your customers the easy way: an
//! alternative to the Pareto/NBD model", Marketing Science 24(2); cited as FHL 2005).
//!
//! All times are in the model's time unit. Functions return NaN for invalid parameters or
//! customer data (see [`super::summary::validate_rfm`]) instead of panicking.

use super::nbd::{NbdParams, XTerms};
use super::special::{digamma, ln_gamma, ln_hyp2f1, sigmoid, softplus, trigamma};
use super::summary::{Rfm, validate_rfm};

/// Per-x constants of the BG/NBD log-likelihood (FHL 2005 eq. 6, written as
/// ln L = A1 + A2 + ln(exp(A3) + delta_{x>0} exp(A4)) as in lifetimes / FHL's note 004):
/// c = A1 + A2 without row terms, k = ln a - ln(b + x - 1), and their parameter derivatives.
pub(super) fn x_terms(p: &NbdParams, x: f64, with_grad: bool) -> XTerms {
    let NbdParams { r, alpha, a, b } = *p;
    let c = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + ln_gamma(a + b) + ln_gamma(b + x)
        - ln_gamma(b)
        - ln_gamma(a + b + x);
    let has_d = x > 0.0;
    let k = if has_d {
        a.ln() - (b + x - 1.0).ln()
    } else {
        0.0
    };
    let mut t = XTerms {
        c,
        rx: r + x,
        k,
        has_d,
        ..Default::default()
    };
    if with_grad {
        let psi_ab = digamma(a + b);
        let psi_abx = digamma(a + b + x);
        t.dc_r = digamma(r + x) - digamma(r) + alpha.ln();
        t.dc_alpha = r / alpha;
        t.dc_a = psi_ab - psi_abx;
        t.dc_b = psi_ab + digamma(b + x) - digamma(b) - psi_abx;
        t.dk_b = if has_d { -1.0 / (b + x - 1.0) } else { 0.0 };
        let t_ab = trigamma(a + b);
        let t_abx = trigamma(a + b + x);
        t.hc_rr = trigamma(r + x) - trigamma(r);
        t.hc_aa = t_ab - t_abx;
        t.hc_bb = t_ab + trigamma(b + x) - trigamma(b) - t_abx;
    }
    t
}

/// Log-likelihood of one customer, FHL 2005 eq. (6):
/// L = B(a, b+x)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+T)^(r+x))
///   + delta_{x>0} B(a+1, b+x-1)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+t_x)^(r+x)).
pub fn log_likelihood_row(p: &NbdParams, c: &Rfm) -> f64 {
    if !p.is_valid() || validate_rfm(c).is_err() {
        return f64::NAN;
    }
    let t = x_terms(p, c.x, false);
    let lt = (p.alpha + c.t).ln();
    let mut ll = t.c - t.rx * lt;
    if t.has_d {
        ll += softplus(t.k + t.rx * (lt - (p.alpha + c.t_x).ln()));
    }
    ll
}

/// P(alive | x, t_x, T), Fader, Hardie & Lee, note "Computing P(alive) using the BG/NBD model"
/// (brucehardie.com note 021, final expression):
/// 1 / (1 + delta_{x>0} a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)); 1 for x = 0.
pub fn p_alive(p: &NbdParams, c: &Rfm) -> f64 {
    if !p.is_valid() || validate_rfm(c).is_err() {
        return f64::NAN;
    }
    if c.x == 0.0 {
        return 1.0;
    }
    let d = p.a.ln() - (p.b + c.x - 1.0).ln()
        + (p.r + c.x) * ((p.alpha + c.t).ln() - (p.alpha + c.t_x).ln());
    sigmoid(-d)
}

/// E[X(t)], expected repeat purchases in (0, t] of a new customer, FHL 2005 eq. (9):
/// (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))].
/// At a = 1 (removable singularity) the limit is taken numerically.
pub fn expected_purchases(p: &NbdParams, t: f64) -> f64 {
    if !p.is_valid() || !(t >= 0.0) || !t.is_finite() {
        return f64::NAN;
    }
    if t == 0.0 {
        return 0.0;
    }
    near_a_one(p, |q| {
        let z = t / (q.alpha + t);
        let f = ln_hyp2f1(q.r, q.b, q.a + q.b - 1.0, z);
        let ln_term = f.ln + q.r * (q.alpha / (q.alpha + t)).ln();
        (q.a + q.b - 1.0) / (q.a - 1.0) * -(ln_term.exp_m1()) * sign_ok(f.sign)
    })
}

/// E[Y(t) | x, t_x, T], expected repeat purchases in (T, T+t], FHL 2005 eq. (10):
/// (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
/// / (1 + delta_{x>0} a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)); the denominator is 1/P(alive).
pub fn conditional_expected_purchases(p: &NbdParams, t: f64, c: &Rfm) -> f64 {
    if !p.is_valid() || validate_rfm(c).is_err() || !(t >= 0.0) || !t.is_finite() {
        return f64::NAN;
    }
    if t == 0.0 {
        return 0.0;
    }
    alive_expected_purchases(p, t, c.x, c.t) * p_alive(p, c)
}

/// The bracket of FHL 2005 eq. (10), E[Y(t) | alive at T, x, T] (it does not depend on t_x).
pub(super) fn alive_expected_purchases(p: &NbdParams, t: f64, x: f64, big_t: f64) -> f64 {
    near_a_one(p, |q| {
        let z = t / (q.alpha + big_t + t);
        let f = ln_hyp2f1(q.r + x, q.b + x, q.a + q.b + x - 1.0, z);
        let ln_term = f.ln + (q.r + x) * ((q.alpha + big_t) / (q.alpha + big_t + t)).ln();
        (q.a + q.b + x - 1.0) / (q.a - 1.0) * -(ln_term.exp_m1()) * sign_ok(f.sign)
    })
}

/// NaN unless the 2F1 value was positive (it always is for valid BG/NBD parameters).
pub(super) fn sign_ok(sign: f64) -> f64 {
    if sign > 0.0 { 1.0 } else { f64::NAN }
}

/// Evaluates `f` at the parameters, or, within 1e-6 of a = 1 where the formulas have a
/// removable 0/0 singularity, as the mean of f at a = 1 -+ 1e-5 (error O(1e-10) relative).
pub(super) fn near_a_one<F: Fn(&NbdParams) -> f64>(p: &NbdParams, f: F) -> f64 {
    if (p.a - 1.0).abs() > 1e-6 {
        return f(p);
    }
    let lo = NbdParams {
        a: 1.0 - 1e-5,
        ..*p
    };
    let hi = NbdParams {
        a: 1.0 + 1e-5,
        ..*p
    };
    0.5 * (f(&lo) + f(&hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn likelihood_matches_direct_formula() {
        // FHL eq. (6) evaluated with ordinary arithmetic for a small case.
        let p = NbdParams {
            r: 0.7,
            alpha: 3.0,
            a: 0.9,
            b: 2.2,
        };
        let c = Rfm {
            x: 3.0,
            t_x: 5.0,
            t: 9.0,
        };
        let g = |v: f64| libm::tgamma(v);
        let beta = |u: f64, v: f64| g(u) * g(v) / g(u + v);
        let common = g(p.r + c.x) * p.alpha.powf(p.r) / g(p.r);
        let l = beta(p.a, p.b + c.x) / beta(p.a, p.b) * common / (p.alpha + c.t).powf(p.r + c.x)
            + beta(p.a + 1.0, p.b + c.x - 1.0) / beta(p.a, p.b) * common
                / (p.alpha + c.t_x).powf(p.r + c.x);
        assert!((log_likelihood_row(&p, &c) - l.ln()).abs() < 1e-13);
        let c0 = Rfm {
            x: 0.0,
            t_x: 0.0,
            t: 9.0,
        };
        let l0 = (p.alpha / (p.alpha + c0.t)).powf(p.r);
        assert!((log_likelihood_row(&p, &c0) - l0.ln()).abs() < 1e-13);
    }

    #[test]
    fn predictions_are_nan_not_panics_on_bad_input() {
        let p = NbdParams {
            r: 0.24,
            alpha: 4.4,
            a: 0.79,
            b: 2.4,
        };
        let bad = Rfm {
            x: -1.0,
            t_x: 0.0,
            t: 1.0,
        };
        assert!(p_alive(&p, &bad).is_nan());
        assert!(conditional_expected_purchases(&p, 1.0, &bad).is_nan());
        assert!(log_likelihood_row(&p, &bad).is_nan());
        assert!(expected_purchases(&p, f64::NAN).is_nan());
        assert!(expected_purchases(&p, -1.0).is_nan());
        let badp = NbdParams { r: -1.0, ..p };
        assert!(expected_purchases(&badp, 1.0).is_nan());
        assert_eq!(expected_purchases(&p, 0.0), 0.0);
    }

    #[test]
    fn conditional_expectation_is_sane_for_large_x_and_long_horizons() {
        let p = NbdParams {
            r: 0.24,
            alpha: 30.0,
            a: 0.79,
            b: 2.4,
        };
        for &(x, t_x, big_t) in &[
            (0.0, 0.0, 10.0),
            (3.0, 50.0, 400.0),
            (150.0, 900.0, 1000.0),
            (2000.0, 999.0, 1000.0),
        ] {
            let c = Rfm { x, t_x, t: big_t };
            let pa = p_alive(&p, &c);
            let rate = (p.r + x) / (p.alpha + big_t);
            let mut prev = 0.0;
            for &t in &[1.0, 30.0, 365.0, 3650.0, 36500.0] {
                let e = conditional_expected_purchases(&p, t, &c);
                assert!(e.is_finite() && e > prev, "x={x} t={t}: {e} (prev {prev})");
                // E[Y(t) | alive, lambda, p] <= lambda t, so E <= P(alive) E[lambda | data] t.
                assert!(
                    e <= pa * rate * t * (1.0 + 1e-9),
                    "x={x} t={t}: {e} > bound"
                );
                prev = e;
            }
        }
    }

    #[test]
    fn a_equal_one_limit_is_continuous() {
        let p = NbdParams {
            r: 0.5,
            alpha: 3.0,
            a: 1.0,
            b: 2.0,
        };
        let c = Rfm {
            x: 2.0,
            t_x: 4.0,
            t: 10.0,
        };
        let at = expected_purchases(&p, 20.0);
        let near = expected_purchases(&NbdParams { a: 1.001, ..p }, 20.0);
        assert!(
            at.is_finite() && ((at - near) / at).abs() < 1e-2,
            "{at} {near}"
        );
        let ce = conditional_expected_purchases(&p, 20.0, &c);
        let ce_near = conditional_expected_purchases(&NbdParams { a: 1.001, ..p }, 20.0, &c);
        assert!(
            ce.is_finite() && ((ce - ce_near) / ce).abs() < 1e-2,
            "{ce} {ce_near}"
        );
    }
}
