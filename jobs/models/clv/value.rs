//! Discounted customer lifetime value: expected purchases per step from a transaction model
//! times expected spend per purchase (Gamma-Gamma), discounted to today. Follows lifetimes'
//! `customer_lifetime_value` (utils._customer_lifetime_value), but with the discount rate stated
//! per year and the step and horizon given in days.
//!
//! Units and conversion: the transaction model's time unit is `days_per_unit` days (1 = days,
//! 7 = weeks). The horizon is split into n = ceil(horizon_days / step_days) steps; step k ends at
//! d_k = min(k * step_days, horizon_days) days, i.e. at t_k = d_k / days_per_unit model units.
//! The per-step rate equivalent to the annual rate is (1 + annual)^(step_days / 365.25) - 1, and
//! cash flows of step k are discounted by (1 + annual)^(-d_k / 365.25), so with a monthly rate
//! i and step_days = one month, annual = (1 + i)^(365.25 / step_days) - 1 reproduces lifetimes'
//! (1 + i)^(-k).
//!
//! CLV = sum_k spend * (E[Y(t_k) | x, t_x, T] - E[Y(t_{k-1}) | x, t_x, T]) * (1 + annual)^(-d_k/365.25).

use rayon::prelude::*;

use super::summary::Rfm;
use super::transaction::TransactionModel;

/// Days per year used to convert the annual discount rate.
pub const DAYS_PER_YEAR: f64 = 365.25;

/// Most steps allowed (guards against a tiny step on a long horizon).
pub const MAX_STEPS: usize = 100_000;

/// Horizon, discounting and time-unit settings for [`customer_lifetime_value`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClvOptions {
    /// Horizon in days (> 0).
    pub horizon_days: f64,
    /// Step length in days (> 0): cash flows are discounted at the end of each step.
    pub step_days: f64,
    /// Annual discount rate as a fraction (0.1 = 10% per year; must be > -1).
    pub annual_discount_rate: f64,
    /// Days per model time unit (1 = the model was fitted in days, 7 = in weeks).
    pub days_per_unit: f64,
}

impl Default for ClvOptions {
    /// One year in monthly steps (365.25/12 days), 10% a year, model in days.
    fn default() -> Self {
        ClvOptions {
            horizon_days: 365.25,
            step_days: 365.25 / 12.0,
            annual_discount_rate: 0.10,
            days_per_unit: 1.0,
        }
    }
}

impl ClvOptions {
    /// Checks the options; Err describes the first problem.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.horizon_days > 0.0) || !self.horizon_days.is_finite() {
            return Err(format!(
                "horizon_days must be positive and finite, got {}",
                self.horizon_days
            ));
        }
        if !(self.step_days > 0.0) || !self.step_days.is_finite() {
            return Err(format!(
                "step_days must be positive and finite, got {}",
                self.step_days
            ));
        }
        if !(self.annual_discount_rate > -1.0) || !self.annual_discount_rate.is_finite() {
            return Err(format!(
                "annual_discount_rate must be finite and > -1, got {}",
                self.annual_discount_rate
            ));
        }
        if !(self.days_per_unit > 0.0) || !self.days_per_unit.is_finite() {
            return Err(format!(
                "days_per_unit must be positive and finite, got {}",
                self.days_per_unit
            ));
        }
        if self.horizon_days / self.step_days > MAX_STEPS as f64 {
            return Err(format!("too many steps: horizon/step exceeds {MAX_STEPS}"));
        }
        Ok(())
    }

    /// Number of steps ceil(horizon_days / step_days) (a relative slack of 1e-9 absorbs rounding).
    pub fn n_steps(&self) -> usize {
        let r = self.horizon_days / self.step_days;
        (r - 1e-9 * r.max(1.0)).ceil().max(1.0) as usize
    }

    /// Discount rate per step equivalent to the annual rate: (1 + annual)^(step_days/365.25) - 1.
    pub fn step_discount_rate(&self) -> f64 {
        (1.0 + self.annual_discount_rate).powf(self.step_days / DAYS_PER_YEAR) - 1.0
    }

    /// Annual rate equivalent to a rate `per_step` per `step_days`: (1 + i)^(365.25/step_days) - 1.
    pub fn annual_rate_from_step_rate(per_step: f64, step_days: f64) -> f64 {
        (1.0 + per_step).powf(DAYS_PER_YEAR / step_days) - 1.0
    }

    /// Step end times (days d_k) and discount factors (1 + annual)^(-d_k / 365.25).
    pub fn schedule(&self) -> Vec<(f64, f64)> {
        (1..=self.n_steps())
            .map(|k| {
                let d = (k as f64 * self.step_days).min(self.horizon_days);
                (
                    d,
                    (1.0 + self.annual_discount_rate).powf(-d / DAYS_PER_YEAR),
                )
            })
            .collect()
    }
}

fn clv_with_schedule(
    model: &TransactionModel,
    c: &Rfm,
    spend: f64,
    opts: &ClvOptions,
    sched: &[(f64, f64)],
) -> f64 {
    if !spend.is_finite() {
        return f64::NAN;
    }
    let mut prev = 0.0;
    let mut total = 0.0;
    for &(d, disc) in sched {
        let e = model.conditional_expected_purchases(d / opts.days_per_unit, c);
        if !e.is_finite() {
            return f64::NAN;
        }
        total += spend * (e - prev) * disc;
        prev = e;
    }
    total
}

/// Discounted CLV of one customer (see the module docs for the formula and units), with
/// `expected_spend` per purchase, e.g. from
/// [`super::gamma_gamma::GammaGammaParams::conditional_expected_spend`]. NaN for invalid input.
pub fn customer_lifetime_value(
    model: &TransactionModel,
    c: &Rfm,
    expected_spend: f64,
    opts: &ClvOptions,
) -> f64 {
    if opts.validate().is_err() {
        return f64::NAN;
    }
    clv_with_schedule(model, c, expected_spend, opts, &opts.schedule())
}

/// Discounted CLV for many customers in parallel; Err for invalid options or mismatched
/// lengths, NaN entries for invalid customers.
pub fn customer_lifetime_values(
    model: &TransactionModel,
    customers: &[Rfm],
    expected_spend: &[f64],
    opts: &ClvOptions,
) -> Result<Vec<f64>, String> {
    opts.validate()?;
    if customers.len() != expected_spend.len() {
        return Err(format!(
            "length mismatch: {} customers, {} spends",
            customers.len(),
            expected_spend.len()
        ));
    }
    let sched = opts.schedule();
    Ok(customers
        .par_iter()
        .zip(expected_spend.par_iter())
        .with_min_len(1024)
        .map(|(c, &s)| clv_with_schedule(model, c, s, opts, &sched))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::transaction::{NbdParams, TransactionModelKind};
    use super::*;

    #[test]
    fn options_validation_and_conversion() {
        let o = ClvOptions::default();
        assert!(o.validate().is_ok());
        assert_eq!(o.n_steps(), 12);
        assert!((o.step_discount_rate() - (1.1f64.powf(1.0 / 12.0) - 1.0)).abs() < 1e-15);
        let annual = ClvOptions::annual_rate_from_step_rate(0.01, 30.0);
        let back = ClvOptions {
            step_days: 30.0,
            annual_discount_rate: annual,
            ..o
        }
        .step_discount_rate();
        assert!((back - 0.01).abs() < 1e-15);
        for bad in [
            ClvOptions {
                horizon_days: 0.0,
                ..o
            },
            ClvOptions {
                step_days: f64::NAN,
                ..o
            },
            ClvOptions {
                annual_discount_rate: -1.0,
                ..o
            },
            ClvOptions {
                days_per_unit: -7.0,
                ..o
            },
            ClvOptions {
                step_days: 1e-9,
                ..o
            },
        ] {
            assert!(bad.validate().is_err());
        }
        let m = TransactionModel {
            kind: TransactionModelKind::BgNbd,
            params: NbdParams {
                r: 0.24,
                alpha: 4.4,
                a: 0.79,
                b: 2.4,
            },
        };
        let c = Rfm {
            x: 2.0,
            t_x: 20.0,
            t: 30.0,
        };
        assert!(
            customer_lifetime_value(
                &m,
                &c,
                10.0,
                &ClvOptions {
                    horizon_days: -1.0,
                    ..o
                }
            )
            .is_nan()
        );
        assert!(customer_lifetime_value(&m, &Rfm { x: -2.0, ..c }, 10.0, &o).is_nan());
        assert!(customer_lifetime_values(&m, &[c], &[], &o).is_err());
        // Zero discount: CLV = spend * E[Y(horizon)].
        let z = ClvOptions {
            annual_discount_rate: 0.0,
            days_per_unit: 7.0,
            ..o
        };
        let v = customer_lifetime_value(&m, &c, 10.0, &z);
        let e = m.conditional_expected_purchases(o.horizon_days / 7.0, &c);
        assert!((v - 10.0 * e).abs() < 1e-12 * v);
        // A partial last step ends exactly at the horizon.
        let p = ClvOptions {
            horizon_days: 100.0,
            step_days: 30.0,
            annual_discount_rate: 0.0,
            days_per_unit: 7.0,
        };
        assert_eq!(p.n_steps(), 4);
        let v = customer_lifetime_value(&m, &c, 1.0, &p);
        assert!((v - m.conditional_expected_purchases(100.0 / 7.0, &c)).abs() < 1e-12);
    }
}
