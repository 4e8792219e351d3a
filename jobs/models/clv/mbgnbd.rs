//! MBG/NBD model formulas (Batislam, Denizel & Filiztekin 2007, "Empirical validation and
//! comparison of models for customer base analysis", IJRM 24(3); Hoppe & Wagner 2007,
//! "Customer base analysis: the case for a central variant of the Betageometric/NBD model").
//! Unlike BG/NBD, a customer may also drop out right after the first purchase. Matches
//! lifetimes' `ModifiedBetaGeoFitter`. Times are in model units; invalid input gives NaN.

use super::bgnbd::{near_a_one, sign_ok};
use super::nbd::{NbdParams, XTerms};
use super::special::{digamma, ln_gamma, ln_hyp2f1, sigmoid, softplus, trigamma};
use super::summary::{Rfm, validate_rfm};

/// Per-x constants of the MBG/NBD log-likelihood: c = A1 + A2 without row terms with
/// A2 = ln B(a, b+x+1) - ln B(a, b), k = ln a - ln(b + x), and derivatives.
pub(super) fn x_terms(p: &NbdParams, x: f64, with_grad: bool) -> XTerms {
    let NbdParams { r, alpha, a, b } = *p;
    let c =
        ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + ln_gamma(a + b) + ln_gamma(b + x + 1.0)
            - ln_gamma(b)
            - ln_gamma(a + b + x + 1.0);
    let k = a.ln() - (b + x).ln();
    let mut t = XTerms {
        c,
        rx: r + x,
        k,
        has_d: true,
        ..Default::default()
    };
    if with_grad {
        let psi_ab = digamma(a + b);
        let psi_abx = digamma(a + b + x + 1.0);
        t.dc_r = digamma(r + x) - digamma(r) + alpha.ln();
        t.dc_alpha = r / alpha;
        t.dc_a = psi_ab - psi_abx;
        t.dc_b = psi_ab + digamma(b + x + 1.0) - digamma(b) - psi_abx;
        t.dk_b = -1.0 / (b + x);
        let t_ab = trigamma(a + b);
        let t_abx = trigamma(a + b + x + 1.0);
        t.hc_rr = trigamma(r + x) - trigamma(r);
        t.hc_aa = t_ab - t_abx;
        t.hc_bb = t_ab + trigamma(b + x + 1.0) - trigamma(b) - t_abx;
    }
    t
}

/// Log-likelihood of one customer (Batislam et al. 2007, Appendix A, individual likelihood; lifetimes
/// `ModifiedBetaGeoFitter._negative_log_likelihood`):
/// L = B(a, b+x+1)/B(a, b) Gamma(r+x) alpha^r / (Gamma(r) (alpha+T)^(r+x))
///   + B(a+1, b+x)/B(a, b) Gamma(r+x) alpha^r / (Gamma(r) (alpha+t_x)^(r+x)), for all x >= 0.
pub fn log_likelihood_row(p: &NbdParams, c: &Rfm) -> f64 {
    if !p.is_valid() || validate_rfm(c).is_err() {
        return f64::NAN;
    }
    let t = x_terms(p, c.x, false);
    let lt = (p.alpha + c.t).ln();
    t.c - t.rx * lt + softplus(t.k + t.rx * (lt - (p.alpha + c.t_x).ln()))
}

/// P(alive | x, t_x, T), Batislam et al. (2007), Appendix A eq. (5):
/// 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)) (also for x = 0, unlike BG/NBD).
pub fn p_alive(p: &NbdParams, c: &Rfm) -> f64 {
    if !p.is_valid() || validate_rfm(c).is_err() {
        return f64::NAN;
    }
    let d =
        p.a.ln() - (p.b + c.x).ln() + (p.r + c.x) * ((p.alpha + c.t).ln() - (p.alpha + c.t_x).ln());
    sigmoid(-d)
}

/// E[X(t)] for a new customer, Batislam et al. (2007), Appendix A (lifetimes' formula):
/// b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))].
pub fn expected_purchases(p: &NbdParams, t: f64) -> f64 {
    if !p.is_valid() || !(t >= 0.0) || !t.is_finite() {
        return f64::NAN;
    }
    if t == 0.0 {
        return 0.0;
    }
    near_a_one(p, |q| {
        let z = t / (q.alpha + t);
        let f = ln_hyp2f1(q.r, q.b + 1.0, q.a + q.b, z);
        let ln_term = f.ln + q.r * (q.alpha / (q.alpha + t)).ln();
        q.b / (q.a - 1.0) * -(ln_term.exp_m1()) * sign_ok(f.sign)
    })
}

/// E[Y(t) | x, t_x, T], Batislam et al. (2007), Appendix A / Wagner & Hoppe (2008) (as lifetimes):
/// (a+b+x)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x+1; a+b+x; t/(alpha+T+t))]
/// * P(alive | x, t_x, T).
pub fn conditional_expected_purchases(p: &NbdParams, t: f64, c: &Rfm) -> f64 {
    if !p.is_valid() || validate_rfm(c).is_err() || !(t >= 0.0) || !t.is_finite() {
        return f64::NAN;
    }
    if t == 0.0 {
        return 0.0;
    }
    alive_expected_purchases(p, t, c.x, c.t) * p_alive(p, c)
}

/// E[Y(t) | alive at T, x, T]: the conditional expectation without P(alive) (no t_x).
pub(super) fn alive_expected_purchases(p: &NbdParams, t: f64, x: f64, big_t: f64) -> f64 {
    near_a_one(p, |q| {
        let z = t / (q.alpha + big_t + t);
        let f = ln_hyp2f1(q.r + x, q.b + x + 1.0, q.a + q.b + x, z);
        let ln_term = f.ln + (q.r + x) * ((q.alpha + big_t) / (q.alpha + big_t + t)).ln();
        (q.a + q.b + x) / (q.a - 1.0) * -(ln_term.exp_m1()) * sign_ok(f.sign)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn likelihood_matches_direct_formula() {
        let p = NbdParams {
            r: 0.7,
            alpha: 3.0,
            a: 0.9,
            b: 2.2,
        };
        let g = |v: f64| libm::tgamma(v);
        let beta = |u: f64, v: f64| g(u) * g(v) / g(u + v);
        for c in [
            Rfm {
                x: 3.0,
                t_x: 5.0,
                t: 9.0,
            },
            Rfm {
                x: 0.0,
                t_x: 0.0,
                t: 9.0,
            },
        ] {
            let common = g(p.r + c.x) * p.alpha.powf(p.r) / g(p.r);
            let l = beta(p.a, p.b + c.x + 1.0) / beta(p.a, p.b) * common
                / (p.alpha + c.t).powf(p.r + c.x)
                + beta(p.a + 1.0, p.b + c.x) / beta(p.a, p.b) * common
                    / (p.alpha + c.t_x).powf(p.r + c.x);
            assert!((log_likelihood_row(&p, &c) - l.ln()).abs() < 1e-13);
        }
    }
}
