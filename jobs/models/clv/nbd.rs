//! The parameter set shared by the three transaction models and the per-x constants of the
//! BG/NBD and MBG/NBD likelihoods: the ground floor that `bgnbd`, `mbgnbd`, `pnbd` and the fitting
//! code above them all read (so no model module imports the dispatcher).

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
    /// The natural parameters of log-parameters (the optimiser's coordinates).
    pub(super) fn exp_of(theta: &[f64]) -> [f64; 4] {
        [
            theta[0].exp(),
            theta[1].exp(),
            theta[2].exp(),
            theta[3].exp(),
        ]
    }

    pub(super) fn from_array(v: [f64; 4]) -> NbdParams {
        NbdParams {
            r: v[0],
            alpha: v[1],
            a: v[2],
            b: v[3],
        }
    }
}

/// Per-x constants for the vectorised likelihood (see `bgnbd::x_terms`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct XTerms {
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
