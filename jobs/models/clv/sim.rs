//! Test-only simulators for the BG/NBD, MBG/NBD, Pareto/NBD and Gamma-Gamma models (seeded,
//! deterministic).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Exp, Gamma};

use super::gamma_gamma::GammaGammaParams;
use super::nbd::NbdParams;
use super::summary::Rfm;

/// Simulates n customers from BG/NBD (FHL 2005): lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b),
/// purchases form a Poisson(lambda) process from the first purchase at time 0, and after each
/// repeat purchase the customer drops out with probability p. T ~ Uniform(0, t_max).
pub(super) fn simulate_bgnbd(n: usize, p: &NbdParams, t_max: f64, seed: u64) -> Vec<Rfm> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let lam_d = Gamma::new(p.r, 1.0 / p.alpha).expect("valid gamma");
    let p_d = Beta::new(p.a, p.b).expect("valid beta");
    (0..n)
        .map(|_| {
            let big_t = rng.gen_range(0.0..t_max);
            let lam: f64 = lam_d.sample(&mut rng);
            let drop: f64 = p_d.sample(&mut rng);
            let (mut x, mut t_x, mut t) = (0.0, 0.0, 0.0);
            if lam > 0.0 && lam.is_finite() {
                let e = Exp::new(lam).expect("positive rate");
                loop {
                    t += e.sample(&mut rng);
                    if t > big_t {
                        break;
                    }
                    x += 1.0;
                    t_x = t;
                    if rng.r#gen::<f64>() < drop {
                        break;
                    }
                }
            }
            Rfm { x, t_x, t: big_t }
        })
        .collect()
}

/// Simulates n customers from MBG/NBD (Batislam, Denizel & Filiztekin 2007): as BG/NBD, but the
/// customer may also drop out right after the first purchase (at time 0) with probability p.
pub(super) fn simulate_mbgnbd(n: usize, p: &NbdParams, t_max: f64, seed: u64) -> Vec<Rfm> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let lam_d = Gamma::new(p.r, 1.0 / p.alpha).expect("valid gamma");
    let p_d = Beta::new(p.a, p.b).expect("valid beta");
    (0..n)
        .map(|_| {
            let big_t = rng.gen_range(0.0..t_max);
            let lam: f64 = lam_d.sample(&mut rng);
            let drop: f64 = p_d.sample(&mut rng);
            let (mut x, mut t_x, mut t) = (0.0, 0.0, 0.0);
            let dead_at_zero = rng.r#gen::<f64>() < drop;
            if !dead_at_zero && lam > 0.0 && lam.is_finite() {
                let e = Exp::new(lam).expect("positive rate");
                loop {
                    t += e.sample(&mut rng);
                    if t > big_t {
                        break;
                    }
                    x += 1.0;
                    t_x = t;
                    if rng.r#gen::<f64>() < drop {
                        break;
                    }
                }
            }
            Rfm { x, t_x, t: big_t }
        })
        .collect()
}

/// Simulates n customers from Pareto/NBD (Schmittlein, Morrison & Colombo 1987):
/// lambda ~ Gamma(r, rate alpha), mu ~ Gamma(s, rate beta) (`p.a` = s, `p.b` = beta), an
/// exponential(mu) lifetime from time 0 and Poisson(lambda) purchases while alive.
/// T ~ Uniform(0, t_max).
pub(super) fn simulate_pnbd(n: usize, p: &NbdParams, t_max: f64, seed: u64) -> Vec<Rfm> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let lam_d = Gamma::new(p.r, 1.0 / p.alpha).expect("valid gamma");
    let mu_d = Gamma::new(p.a, 1.0 / p.b).expect("valid gamma");
    (0..n)
        .map(|_| {
            let big_t = rng.gen_range(0.0..t_max);
            let lam: f64 = lam_d.sample(&mut rng);
            let mu: f64 = mu_d.sample(&mut rng);
            let life = if mu > 0.0 && mu.is_finite() {
                Exp::new(mu).expect("positive rate").sample(&mut rng)
            } else {
                f64::INFINITY
            };
            let end = life.min(big_t);
            let (mut x, mut t_x, mut t) = (0.0, 0.0, 0.0);
            if lam > 0.0 && lam.is_finite() {
                let e = Exp::new(lam).expect("positive rate");
                loop {
                    t += e.sample(&mut rng);
                    if t > end {
                        break;
                    }
                    x += 1.0;
                    t_x = t;
                }
            }
            Rfm { x, t_x, t: big_t }
        })
        .collect()
}

/// Rounds times down to whole days (model unit = `days_per_unit` days), as a warehouse would
/// compute them from dates.
pub(super) fn to_day_resolution(c: &[Rfm], days_per_unit: f64) -> Vec<Rfm> {
    c.iter()
        .map(|r| Rfm {
            x: r.x,
            t_x: (r.t_x * days_per_unit).floor() / days_per_unit,
            t: (r.t * days_per_unit).floor() / days_per_unit,
        })
        .collect()
}

/// Simulates mean repeat spend m for each customer from Gamma-Gamma (nu ~ Gamma(q, rate v),
/// each transaction ~ Gamma(p, rate nu), m = mean of the x repeat transactions); 0 when x = 0.
pub(super) fn simulate_spend(c: &[Rfm], g: &GammaGammaParams, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let nu_d = Gamma::new(g.q, 1.0 / g.v).expect("valid gamma");
    c.iter()
        .map(|r| {
            let nu: f64 = nu_d.sample(&mut rng);
            if r.x == 0.0 {
                return 0.0;
            }
            // Sum of x Gamma(p, nu) draws is Gamma(p x, nu).
            let s: f64 = Gamma::new(g.p * r.x, 1.0 / nu)
                .expect("valid gamma")
                .sample(&mut rng);
            s / r.x
        })
        .collect()
}
