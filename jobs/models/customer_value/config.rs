//! The settings of the CLV model (`models.clv` in pipeline.yaml) with their defaults (one home:
//! the `Default` impl) and range checks.

use serde::Deserialize;

/// Which transaction model predicts purchases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PurchaseModel {
    /// BG/NBD (Fader, Hardie & Lee 2005).
    #[default]
    Bgnbd,
    /// MBG/NBD (Batislam, Denizel & Filiztekin 2007).
    Mbgnbd,
    /// Pareto/NBD (Schmittlein, Morrison & Colombo 1987).
    Pnbd,
    /// Fit all three; choose by holdout MAE when `holdout_days > 0`, else by BIC.
    Auto,
}

impl PurchaseModel {
    /// The transaction models to fit.
    pub(super) fn kinds(self) -> Vec<crate::models::clv::TransactionModelKind> {
        use crate::models::clv::TransactionModelKind as K;
        match self {
            PurchaseModel::Bgnbd => vec![K::BgNbd],
            PurchaseModel::Mbgnbd => vec![K::MbgNbd],
            PurchaseModel::Pnbd => vec![K::ParetoNbd],
            PurchaseModel::Auto => crate::models::clv::select::CANDIDATES.to_vec(),
        }
    }
}

/// The time unit of frequency, recency and age in the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// One calendar day.
    Day,
    /// Seven days (fractional weeks).
    #[default]
    Week,
}

impl TimeUnit {
    /// Days per unit.
    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Day => 1.0,
            TimeUnit::Week => 7.0,
        }
    }

    /// The unit's name as written to clv_model.
    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Day => "day",
            TimeUnit::Week => "week",
        }
    }
}

/// What CLV is computed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ValueBasis {
    /// Amount paid.
    #[default]
    Revenue,
    /// Margin (amount paid x basket margin rate).
    Margin,
}

/// Settings of the CLV model (`models.clv`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClvConfig {
    /// Transaction model.
    pub model: PurchaseModel,
    /// Time unit.
    pub time_unit: TimeUnit,
    /// CLV horizon in days.
    pub horizon_days: u32,
    /// Discount rate per year.
    pub annual_discount_rate: f64,
    /// Discounting step in days.
    pub step_days: u32,
    /// Revenue or margin.
    pub basis: ValueBasis,
    /// Minimum repeat customers to fit; fewer -> not converged, historical fallback.
    pub min_repeat_customers: usize,
    /// Optimiser iteration cap.
    pub max_iterations: usize,
    /// L2 penalty coefficient on the natural-scale parameters, as lifetimes' `penalizer_coef`.
    pub penalizer: f64,
    /// Below this P(alive), days_to_next_purchase is null (not expected to return).
    pub min_p_alive_for_next_purchase: f64,
    /// Holdout validation: refit on data up to `holdout_days` before the as-of date and score
    /// the purchases of the days after it (0 = off).
    pub holdout_days: u32,
    /// Calibration buckets of holdout validation: frequencies 0..k-1 and "k+".
    pub holdout_top_bucket: u32,
    /// Central coverage of the per-customer CLV and P(alive) intervals (0.9: 5th-95th
    /// percentile, written as clv_p05 / clv_p95 and p_alive_p05 / p_alive_p95).
    pub interval: f64,
    /// How the parameter uncertainty reaches each customer: `delta` (first-order propagation,
    /// the default) or `draws` (`interval_draws` parameter draws evaluated exactly).
    pub interval_method: crate::models::clv::interval::IntervalMethod,
    /// Parameter draws of `interval_method: draws` (0 = no intervals, with either method).
    pub interval_draws: usize,
    /// Seed of the parameter draws (the intervals are deterministic for a given seed).
    pub interval_seed: u64,
}

impl Default for ClvConfig {
    fn default() -> Self {
        Self {
            model: PurchaseModel::default(),
            time_unit: TimeUnit::default(),
            horizon_days: 365,
            annual_discount_rate: 0.10,
            step_days: 30,
            basis: ValueBasis::default(),
            min_repeat_customers: 30,
            max_iterations: 500,
            penalizer: 0.0,
            min_p_alive_for_next_purchase: 0.5,
            holdout_days: 0,
            holdout_top_bucket: 7,
            interval: 0.9,
            interval_method: Default::default(),
            interval_draws: 200,
            interval_seed: 1,
        }
    }
}

impl ClvConfig {
    /// Range checks.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.horizon_days == 0 || self.step_days == 0 || self.step_days > self.horizon_days {
            return Err(
                "horizon_days and step_days must be positive, with step_days <= horizon_days"
                    .into(),
            );
        }
        if !(0.0..1.0).contains(&self.annual_discount_rate) {
            return Err(format!(
                "annual_discount_rate must be in [0, 1), got {}",
                self.annual_discount_rate
            ));
        }
        if self.penalizer < 0.0 || !self.penalizer.is_finite() {
            return Err("penalizer must be a non-negative number".into());
        }
        if !(0.0..=1.0).contains(&self.min_p_alive_for_next_purchase) {
            return Err("min_p_alive_for_next_purchase must be in [0, 1]".into());
        }
        if self.max_iterations == 0 {
            return Err("max_iterations must be positive".into());
        }
        if !(self.interval > 0.0 && self.interval < 1.0) {
            return Err(format!("interval must be in (0, 1), got {}", self.interval));
        }
        if self.interval_draws != 0 && !(10..=100_000).contains(&self.interval_draws) {
            return Err(format!(
                "interval_draws must be 0 (no intervals) or in 10..=100000, got {}",
                self.interval_draws
            ));
        }
        Ok(())
    }
}
