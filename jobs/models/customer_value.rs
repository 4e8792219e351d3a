//! Customer value: historical revenue and margin, and the predicted lifetime value from the
//! buy-till-you-die models of [`super::clv`], written as `customer_value` and `clv_model`.

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
    fn kinds(self) -> Vec<super::clv::TransactionModelKind> {
        use super::clv::TransactionModelKind as K;
        match self {
            PurchaseModel::Bgnbd => vec![K::BgNbd],
            PurchaseModel::Mbgnbd => vec![K::MbgNbd],
            PurchaseModel::Pnbd => vec![K::ParetoNbd],
            PurchaseModel::Auto => super::clv::select::CANDIDATES.to_vec(),
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
#[serde(deny_unknown_fields)]
pub struct ClvConfig {
    /// Transaction model.
    #[serde(default)]
    pub model: PurchaseModel,
    /// Time unit.
    #[serde(default)]
    pub time_unit: TimeUnit,
    /// CLV horizon in days.
    #[serde(default = "default_horizon")]
    pub horizon_days: u32,
    /// Discount rate per year.
    #[serde(default = "default_rate")]
    pub annual_discount_rate: f64,
    /// Discounting step in days.
    #[serde(default = "default_step")]
    pub step_days: u32,
    /// Revenue or margin.
    #[serde(default)]
    pub basis: ValueBasis,
    /// Minimum repeat customers to fit; fewer -> not converged, historical fallback.
    #[serde(default = "default_min_repeat")]
    pub min_repeat_customers: usize,
    /// Optimiser iteration cap.
    #[serde(default = "default_max_iter")]
    pub max_iterations: usize,
    /// L2 penalty coefficient on the natural-scale parameters, as lifetimes' `penalizer_coef`.
    #[serde(default)]
    pub penalizer: f64,
    /// Below this P(alive), days_to_next_purchase is null (not expected to return).
    #[serde(default = "default_min_p_alive")]
    pub min_p_alive_for_next_purchase: f64,
    /// Holdout validation: refit on data up to `holdout_days` before the as-of date and score
    /// the purchases of the days after it (0 = off).
    #[serde(default)]
    pub holdout_days: u32,
    /// Calibration buckets of holdout validation: frequencies 0..k-1 and "k+".
    #[serde(default = "default_top_bucket")]
    pub holdout_top_bucket: u32,
    /// Central coverage of the per-customer CLV and P(alive) intervals (0.9: 5th-95th
    /// percentile, written as clv_p05 / clv_p95 and p_alive_p05 / p_alive_p95).
    #[serde(default = "default_interval")]
    pub interval: f64,
    /// Parameter draws for the intervals (0 = no intervals).
    #[serde(default = "default_interval_draws")]
    pub interval_draws: usize,
    /// Seed of the parameter draws (the intervals are deterministic for a given seed).
    #[serde(default = "default_interval_seed")]
    pub interval_seed: u64,
}

fn default_interval() -> f64 {
    0.9
}
fn default_interval_draws() -> usize {
    200
}
fn default_interval_seed() -> u64 {
    1
}

fn default_top_bucket() -> u32 {
    7
}

fn default_horizon() -> u32 {
    365
}
fn default_rate() -> f64 {
    0.10
}
fn default_step() -> u32 {
    30
}
fn default_min_repeat() -> usize {
    30
}
fn default_max_iter() -> usize {
    500
}
fn default_min_p_alive() -> f64 {
    0.5
}

impl Default for ClvConfig {
    fn default() -> Self {
        Self {
            model: PurchaseModel::default(),
            time_unit: TimeUnit::default(),
            horizon_days: default_horizon(),
            annual_discount_rate: default_rate(),
            step_days: default_step(),
            basis: ValueBasis::default(),
            min_repeat_customers: default_min_repeat(),
            max_iterations: default_max_iter(),
            penalizer: 0.0,
            min_p_alive_for_next_purchase: default_min_p_alive(),
            holdout_days: 0,
            holdout_top_bucket: default_top_bucket(),
            interval: default_interval(),
            interval_draws: default_interval_draws(),
            interval_seed: default_interval_seed(),
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

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use super::table::Table;
use super::{Model, ModelInputs, ModelOutputs};
use crate::error::{Error, Result};

/// Per-customer predictions of a fitted model (None where the model does not apply).
#[derive(Debug, Clone, Default)]
pub struct Predictions {
    /// P(alive) at the as-of date.
    pub p_alive: Vec<Option<f64>>,
    /// Expected purchases over the horizon.
    pub expected_purchases: Vec<Option<f64>>,
    /// Expected average order value.
    pub expected_aov: Vec<Option<f64>>,
    /// Discounted CLV over the horizon.
    pub clv: Vec<Option<f64>>,
    /// Expected days to the next purchase (alive customers only).
    pub days_to_next: Vec<Option<f64>>,
    /// Lower end, median and upper end of CLV over the parameter draws.
    pub clv_lo: Vec<Option<f64>>,
    /// Median of CLV over the parameter draws.
    pub clv_mid: Vec<Option<f64>>,
    /// Upper end of CLV over the parameter draws.
    pub clv_hi: Vec<Option<f64>>,
    /// Lower end of P(alive) over the parameter draws.
    pub p_alive_lo: Vec<Option<f64>>,
    /// Upper end of P(alive) over the parameter draws.
    pub p_alive_hi: Vec<Option<f64>>,
}

/// One row of clv_model.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ModelRow {
    /// Model name (`bgnbd`, `mbgnbd`, `pnbd`, `gamma_gamma`).
    pub model: String,
    /// Whether customer_value uses this model's predictions.
    pub selected: bool,
    /// BIC = k ln n - 2 ln L (converged fits).
    pub bic: Option<f64>,
    /// Named parameters.
    pub params: Vec<(&'static str, f64)>,
    /// Their standard errors (inverse Hessian, delta method), when identified.
    pub std_errors: Vec<(&'static str, f64)>,
    /// Log-likelihood at the estimate.
    pub log_likelihood: Option<f64>,
    /// Customers the model was fitted on.
    pub customers_fitted: i64,
    /// Whether the fit converged.
    pub converged: bool,
    /// Optimiser iterations.
    pub iterations: i64,
    /// Why it did not converge, or other facts.
    pub reason: Option<String>,
    /// Holdout MAE of purchases per customer.
    pub holdout_mae: Option<f64>,
    /// Holdout aggregate relative error.
    pub holdout_aggregate_error: Option<f64>,
    /// Customers scored in the holdout window.
    pub holdout_customers: Option<i64>,
    /// Holdout calibration by calibration frequency, as JSON.
    pub holdout_calibration: Option<String>,
}

/// The per-customer BTYD summary in model time units.
#[derive(Debug, Clone)]
pub struct CustomerSummary {
    /// Repeat purchase days.
    pub x: Vec<Option<f64>>,
    /// Recency (first to last purchase day), in units.
    pub t_x: Vec<Option<f64>>,
    /// Age (first purchase day to as-of), in units.
    pub t: Vec<Option<f64>>,
    /// Mean value of repeat purchase days on the configured basis.
    pub monetary: Vec<Option<f64>>,
}

/// Computes customer_value and clv_model.
pub struct CustomerValueModel {
    cfg: ClvConfig,
}

impl CustomerValueModel {
    /// A model with these settings.
    pub fn new(cfg: ClvConfig) -> Self {
        Self { cfg }
    }
}

impl Model for CustomerValueModel {
    fn name(&self) -> &'static str {
        "customer_value"
    }
    fn inputs(&self) -> Vec<&'static str> {
        vec!["customer_features", "clv_summary", "clv_holdout"]
    }
    fn outputs(&self) -> Vec<&'static str> {
        vec!["customer_value", "clv_model"]
    }

    fn run(&self, inputs: &ModelInputs) -> Result<ModelOutputs> {
        let features = Table::new("customer_features", inputs.table("customer_features"))?;
        let summary_table = Table::new("clv_summary", inputs.table("clv_summary"))?;
        let ids = features.strings("customer_id")?;
        let revenue = features.f64("revenue")?;
        let margin = features.f64("margin")?;
        let aov = features.f64("avg_order_value")?;
        let summary = align_summary(&self.cfg, &ids, &summary_table)?;

        let holdout = if self.cfg.holdout_days > 0 {
            Some(Table::new("clv_holdout", inputs.table("clv_holdout"))?)
        } else {
            None
        };
        let (pred, rows, warnings) = predict(&self.cfg, &summary, holdout.as_ref())?;
        let n = ids.len();
        let historical: Vec<Option<f64>> = match self.cfg.basis {
            ValueBasis::Revenue => revenue.clone(),
            ValueBasis::Margin => margin.clone(),
        };
        let mut clv = Vec::with_capacity(n);
        let mut method = Vec::with_capacity(n);
        for (i, hist) in historical.iter().enumerate() {
            match pred.clv.get(i).copied().flatten() {
                Some(v) => {
                    clv.push(Some(v));
                    method.push("model");
                }
                None => {
                    clv.push(*hist);
                    method.push("historical");
                }
            }
        }
        let ids_str: Vec<&str> = (0..n).map(|i| ids.value(i)).collect();
        let deciles = deciles(&clv, &ids_str);
        let get = |v: &Vec<Option<f64>>, i: usize| v.get(i).copied().flatten();
        let expected_aov: Vec<Option<f64>> = (0..n)
            .map(|i| get(&pred.expected_aov, i).or(aov[i]))
            .collect();

        let schema = Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Utf8, false),
            Field::new("historical_revenue", DataType::Float64, true),
            Field::new("historical_margin", DataType::Float64, true),
            Field::new("frequency", DataType::Float64, true),
            Field::new("recency", DataType::Float64, true),
            Field::new("age", DataType::Float64, true),
            Field::new("p_alive", DataType::Float64, true),
            Field::new("expected_purchases", DataType::Float64, true),
            Field::new("expected_avg_order_value", DataType::Float64, true),
            Field::new("clv", DataType::Float64, true),
            Field::new("clv_horizon_days", DataType::Int32, false),
            Field::new("clv_decile", DataType::Int32, true),
            Field::new("days_to_next_purchase", DataType::Float64, true),
            Field::new("clv_method", DataType::Utf8, false),
            Field::new("clv_p05", DataType::Float64, true),
            Field::new("clv_p50", DataType::Float64, true),
            Field::new("clv_p95", DataType::Float64, true),
            Field::new("p_alive_p05", DataType::Float64, true),
            Field::new("p_alive_p95", DataType::Float64, true),
        ]));
        let f = |v: Vec<Option<f64>>| Arc::new(Float64Array::from(v)) as ArrayRef;
        let pad = |v: &Vec<Option<f64>>| (0..n).map(|i| get(v, i)).collect::<Vec<_>>();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(ids.clone()),
            f(revenue),
            f(margin),
            f(summary.x.clone()),
            f(summary.t_x.clone()),
            f(summary.t.clone()),
            f(pad(&pred.p_alive)),
            f(pad(&pred.expected_purchases)),
            f(expected_aov),
            f(clv),
            Arc::new(Int32Array::from(vec![self.cfg.horizon_days as i32; n])),
            Arc::new(Int32Array::from(deciles)),
            f(pad(&pred.days_to_next)),
            Arc::new(StringArray::from(method)),
            f(pad(&pred.clv_lo)),
            f(pad(&pred.clv_mid)),
            f(pad(&pred.clv_hi)),
            f(pad(&pred.p_alive_lo)),
            f(pad(&pred.p_alive_hi)),
        ];
        let value = RecordBatch::try_new(schema, cols)
            .map_err(|e| Error::Internal(format!("customer_value: {e}")))?;
        let model_batch = model_rows(&rows, self.cfg.time_unit)?;
        let report = serde_json::to_value(&rows).unwrap_or_default();
        Ok(ModelOutputs {
            tables: vec![
                ("customer_value".into(), vec![value]),
                ("clv_model".into(), vec![model_batch]),
            ],
            report,
            warnings,
        })
    }
}

/// Fits the transaction model(s) and Gamma-Gamma on the customers with purchases, chooses the
/// model for `auto`, and predicts per customer. Predictions are computed once per distinct
/// (x, t_x, T) row (the horizon part once per distinct (x, T)) and scaled by each customer's
/// expected spend: CLV = spend x sum over steps of discounted expected purchases. A model that
/// does not converge leaves every prediction empty (the caller falls back to historical
/// value) and says why.
fn predict(
    cfg: &ClvConfig,
    s: &CustomerSummary,
    holdout: Option<&Table>,
) -> Result<(Predictions, Vec<ModelRow>, Vec<String>)> {
    use super::clv::interval::{CustomerRef, IntervalOptions, intervals};
    use super::clv::score::score_rows;
    use super::clv::select::{bic, choose};
    use super::clv::{self, ClvOptions, FitOptions, Rfm};
    let n = s.x.len();
    let idx: Vec<usize> = (0..n)
        .filter(|&i| s.x[i].is_some() && s.t_x[i].is_some() && s.t[i].is_some())
        .collect();
    let rfm: Vec<Rfm> = idx
        .iter()
        .map(|&i| Rfm {
            x: s.x[i].unwrap_or(0.0),
            t_x: s.t_x[i].unwrap_or(0.0),
            t: s.t[i].unwrap_or(0.0),
        })
        .collect();
    let opts = FitOptions {
        penalizer: cfg.penalizer,
        max_iter: cfg.max_iterations,
        min_repeat_customers: cfg.min_repeat_customers,
        ..FitOptions::default()
    };
    let kinds = cfg.model.kinds();
    let summary = clv::summarize(&rfm);
    let fits: Vec<clv::TransactionFit> = kinds
        .iter()
        .map(|&k| clv::fit_transactions(k, &summary.rows, &opts))
        .collect();
    let mut warnings = Vec::new();
    let mut holdouts: Vec<Option<clv::HoldoutMetrics>> = vec![None; kinds.len()];
    if let Some(t) = holdout {
        for (k, h) in kinds.iter().zip(holdouts.iter_mut()) {
            match validate_on_holdout(cfg, t, *k)? {
                Ok(m) => *h = Some(m),
                Err(why) => {
                    warnings.push(format!("{} holdout validation skipped: {why}", k.name()))
                }
            }
        }
    }
    let maes: Vec<Option<f64>> = holdouts
        .iter()
        .map(|h| h.as_ref().map(|h| h.mae).filter(|v| v.is_finite()))
        .collect();
    let chosen = if kinds.len() == 1 {
        fits[0].converged.then_some((0, None))
    } else {
        choose(&fits, holdout.map(|_| maes.as_slice())).map(|(i, c)| (i, Some(c)))
    };
    let xs: Vec<f64> = rfm.iter().map(|c| c.x).collect();
    let ms: Vec<f64> = idx
        .iter()
        .map(|&i| s.monetary[i].unwrap_or(f64::NAN))
        .collect();
    let spend = clv::summarize_spend(&xs, &ms).unwrap_or_default();
    let gfit = clv::fit_gamma_gamma(&spend.rows, &opts);
    let g = gfit.params;
    let mut rows: Vec<ModelRow> = Vec::new();
    for (i, (fit, kind)) in fits.iter().zip(&kinds).enumerate() {
        let p = fit.model.params;
        let names = kind.param_names();
        let vals = [p.r, p.alpha, p.a, p.b];
        let mut reason = fit.reason.clone();
        if let Some((j, Some(c))) = chosen
            && j == i
        {
            reason = Some(format!(
                "selected by {} among {}",
                c.name(),
                kinds
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let h = holdouts[i].as_ref();
        rows.push(ModelRow {
            model: kind.name().into(),
            selected: chosen.is_some_and(|(j, _)| j == i),
            bic: bic(fit),
            params: names.iter().copied().zip(vals).collect(),
            std_errors: fit
                .std_errors
                .map(|s| {
                    names
                        .iter()
                        .copied()
                        .zip([s.r, s.alpha, s.a, s.b])
                        .collect()
                })
                .unwrap_or_default(),
            log_likelihood: Some(fit.log_likelihood).filter(|v| v.is_finite()),
            customers_fitted: fit.n_customers as i64,
            converged: fit.converged,
            iterations: fit.iterations as i64,
            reason,
            holdout_mae: h.map(|h| h.mae).filter(|v| v.is_finite()),
            holdout_aggregate_error: h.and_then(|h| h.relative_error),
            holdout_customers: h.map(|h| h.customers as i64),
            holdout_calibration: h.map(calibration_json),
        });
    }
    rows.push(ModelRow {
        model: "gamma_gamma".into(),
        selected: gfit.converged,
        bic: Some(3.0 * gfit.n_customers.ln() - 2.0 * gfit.log_likelihood)
            .filter(|v| gfit.converged && v.is_finite()),
        params: vec![("p", g.p), ("q", g.q), ("gamma", g.v)],
        std_errors: gfit
            .std_errors
            .map(|s| vec![("p", s.p), ("q", s.q), ("gamma", s.v)])
            .unwrap_or_default(),
        log_likelihood: Some(gfit.log_likelihood).filter(|v| v.is_finite()),
        customers_fitted: gfit.n_customers as i64,
        converged: gfit.converged,
        iterations: gfit.iterations as i64,
        reason: gfit.reason.clone(),
        ..Default::default()
    });
    let mut pred = Predictions {
        p_alive: vec![None; n],
        expected_purchases: vec![None; n],
        expected_aov: vec![None; n],
        clv: vec![None; n],
        days_to_next: vec![None; n],
        clv_lo: vec![None; n],
        clv_mid: vec![None; n],
        clv_hi: vec![None; n],
        p_alive_lo: vec![None; n],
        p_alive_hi: vec![None; n],
    };
    let Some((sel, _)) = chosen else {
        let why: Vec<String> = fits
            .iter()
            .zip(&kinds)
            .map(|(f, k)| {
                format!(
                    "{}: {}",
                    k.name(),
                    f.reason.as_deref().unwrap_or("no reason given")
                )
            })
            .collect();
        let what = if kinds.len() == 1 {
            format!("{} did not converge", kinds[0].name())
        } else {
            "no transaction model converged".to_string()
        };
        warnings.push(format!(
            "{what} ({}); CLV falls back to historical value",
            why.join("; ")
        ));
        return Ok((pred, rows, warnings));
    };
    let tfit = &fits[sel];
    let model = tfit.model;
    let unit = cfg.time_unit.days();
    let horizon = cfg.horizon_days as f64 / unit;
    let row_rfm: Vec<Rfm> = summary.rfm_rows();
    let clv_opts = ClvOptions {
        horizon_days: cfg.horizon_days as f64,
        step_days: cfg.step_days as f64,
        annual_discount_rate: cfg.annual_discount_rate,
        days_per_unit: unit,
    };
    let nan = vec![f64::NAN; row_rfm.len()];
    let scores = score_rows(&model, &row_rfm, horizon, &clv_opts).unwrap_or_else(|e| {
        warnings.push(format!("CLV options rejected: {e}"));
        clv::score::RowScores {
            p_alive: nan.clone(),
            expected: nan.clone(),
            dep: nan.clone(),
        }
    });
    if !gfit.converged {
        warnings.push(format!(
            "gamma_gamma did not converge ({}); CLV falls back to historical value",
            gfit.reason.as_deref().unwrap_or("no reason given")
        ));
    }
    // customers with a valid summary row: (position in idx, row)
    let scored: Vec<(usize, usize)> = (0..idx.len())
        .filter_map(|k| {
            summary
                .row_of_customer
                .get(k)
                .copied()
                .flatten()
                .map(|r| (k, r))
        })
        .collect();
    let iv = if cfg.interval_draws > 0 && gfit.converged {
        match &tfit.cov_log {
            Some(cov) => {
                let refs: Vec<CustomerRef> = scored
                    .iter()
                    .map(|&(k, r)| CustomerRef { row: r, m: ms[k] })
                    .collect();
                let o = IntervalOptions {
                    level: cfg.interval,
                    draws: cfg.interval_draws,
                    seed: cfg.interval_seed,
                };
                match intervals(
                    &model,
                    cov,
                    &g,
                    gfit.cov_log.as_deref(),
                    &row_rfm,
                    &refs,
                    &clv_opts,
                    &o,
                ) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        warnings.push(format!("CLV intervals skipped: {e}"));
                        None
                    }
                }
            }
            None => {
                warnings.push(format!(
                    "CLV intervals skipped: {} standard errors are not available (Hessian not positive definite)",
                    kinds[sel].name()
                ));
                None
            }
        }
    } else {
        None
    };
    let finite = |v: f64| Some(v).filter(|v| v.is_finite());
    for (j, &(k, row)) in scored.iter().enumerate() {
        let i = idx[k];
        let c = rfm[k];
        let alive = scores.p_alive[row];
        pred.p_alive[i] = finite(alive);
        pred.expected_purchases[i] = finite(scores.expected[row]);
        if alive >= cfg.min_p_alive_for_next_purchase {
            pred.days_to_next[i] = finite(model.expected_days_to_next_purchase(c.x, c.t, unit));
        }
        if gfit.converged {
            let m = if c.x > 0.0 { ms[k] } else { 0.0 };
            let aov = g.conditional_expected_spend(c.x, m);
            pred.expected_aov[i] = finite(aov);
            pred.clv[i] = finite(aov * scores.dep[row]);
        }
        if let Some(v) = &iv
            && pred.clv[i].is_some()
        {
            pred.clv_lo[i] = finite(v.clv_lo[j]);
            pred.clv_mid[i] = finite(v.clv_mid[j]);
            pred.clv_hi[i] = finite(v.clv_hi[j]);
            pred.p_alive_lo[i] = finite(v.p_alive_lo[row]);
            pred.p_alive_hi[i] = finite(v.p_alive_hi[row]);
        }
    }
    Ok((pred, rows, warnings))
}

/// Refits the transaction model on the calibration summary and scores the holdout window:
/// per-customer MAE of purchases, aggregate relative error and calibration by frequency.
fn validate_on_holdout(
    cfg: &ClvConfig,
    t: &Table,
    kind: super::clv::TransactionModelKind,
) -> Result<std::result::Result<super::clv::HoldoutMetrics, String>> {
    use super::clv::{self, FitOptions, Rfm};
    let unit = cfg.time_unit.days();
    let (x, tx, age, actual) = (
        t.f64("frequency")?,
        t.f64("recency_days")?,
        t.f64("age_days")?,
        t.f64("holdout_purchases")?,
    );
    let rfm: Vec<Rfm> = (0..t.len())
        .map(|i| Rfm {
            x: x[i].unwrap_or(f64::NAN),
            t_x: tx[i].map(|d| d / unit).unwrap_or(f64::NAN),
            t: age[i].map(|d| d / unit).unwrap_or(f64::NAN),
        })
        .collect();
    if rfm.is_empty() {
        return Ok(Err("no customer bought before the calibration end".into()));
    }
    let opts = FitOptions {
        penalizer: cfg.penalizer,
        max_iter: cfg.max_iterations,
        min_repeat_customers: cfg.min_repeat_customers,
        ..FitOptions::default()
    };
    let summary = clv::summarize(&rfm);
    let fit = clv::fit_transactions(kind, &summary.rows, &opts);
    if !fit.converged {
        return Ok(Err(format!(
            "the calibration fit did not converge ({})",
            fit.reason.as_deref().unwrap_or("no reason given")
        )));
    }
    let window = cfg.holdout_days as f64 / unit;
    let predicted: Vec<f64> = rfm
        .iter()
        .map(|c| fit.model.conditional_expected_purchases(window, c))
        .collect();
    let actual: Vec<f64> = actual.iter().map(|a| a.unwrap_or(0.0)).collect();
    let freq: Vec<f64> = rfm.iter().map(|c| c.x).collect();
    Ok(clv::holdout_metrics(
        &predicted,
        &actual,
        &freq,
        cfg.holdout_top_bucket,
    ))
}

fn calibration_json(h: &super::clv::HoldoutMetrics) -> String {
    let buckets: Vec<serde_json::Value> = h
        .buckets
        .iter()
        .map(|b| {
            serde_json::json!({
                "frequency": if b.open_ended { format!("{}+", b.frequency) } else { b.frequency.to_string() },
                "customers": b.customers,
                "mean_predicted": b.mean_predicted,
                "mean_actual": b.mean_actual,
            })
        })
        .collect();
    serde_json::Value::Array(buckets).to_string()
}

/// Aligns clv_summary (customers with purchases) to the customer order of customer_features,
/// converting days to the configured time unit.
fn align_summary(cfg: &ClvConfig, ids: &StringArray, t: &Table) -> Result<CustomerSummary> {
    let sid = t.strings("customer_id")?;
    let freq = t.f64("frequency")?;
    let rec = t.f64("recency_days")?;
    let age = t.f64("age_days")?;
    let money = t.f64(match cfg.basis {
        ValueBasis::Revenue => "monetary_value",
        ValueBasis::Margin => "monetary_margin",
    })?;
    let pos: HashMap<&str, usize> = (0..sid.len()).map(|i| (sid.value(i), i)).collect();
    let unit = cfg.time_unit.days();
    let n = ids.len();
    let mut s = CustomerSummary {
        x: vec![None; n],
        t_x: vec![None; n],
        t: vec![None; n],
        monetary: vec![None; n],
    };
    for i in 0..n {
        if let Some(&j) = pos.get(ids.value(i)) {
            s.x[i] = freq[j];
            s.t_x[i] = rec[j].map(|d| d / unit);
            s.t[i] = age[j].map(|d| d / unit);
            s.monetary[i] = money[j];
        }
    }
    Ok(s)
}

/// CLV deciles: 1 = the top 10% by CLV; ties ordered by customer id; null CLV -> null.
pub fn deciles(values: &[Option<f64>], ids: &[&str]) -> Vec<Option<i32>> {
    let mut idx: Vec<usize> = (0..values.len())
        .filter(|&i| values[i].is_some_and(|v| v.is_finite()))
        .collect();
    idx.sort_by(|&a, &b| {
        let (va, vb) = (values[a].unwrap_or(0.0), values[b].unwrap_or(0.0));
        vb.total_cmp(&va).then_with(|| ids[a].cmp(ids[b]))
    });
    let n = idx.len();
    let mut out = vec![None; values.len()];
    for (rank, &i) in idx.iter().enumerate() {
        out[i] = Some((rank * 10 / n.max(1)) as i32 + 1);
    }
    out
}

fn model_rows(rows: &[ModelRow], unit: TimeUnit) -> Result<RecordBatch> {
    let names = ["r", "alpha", "a", "b", "s", "beta", "p", "q", "gamma"];
    let mut fields = vec![Field::new("model", DataType::Utf8, false)];
    fields.extend(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Float64, true)),
    );
    fields.extend(
        names
            .iter()
            .map(|n| Field::new(format!("{n}_se"), DataType::Float64, true)),
    );
    fields.extend([
        Field::new("log_likelihood", DataType::Float64, true),
        Field::new("customers_fitted", DataType::Int64, false),
        Field::new("converged", DataType::Boolean, false),
        Field::new("iterations", DataType::Int64, false),
        Field::new("time_unit", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, true),
        Field::new("holdout_mae", DataType::Float64, true),
        Field::new("holdout_aggregate_error", DataType::Float64, true),
        Field::new("holdout_customers", DataType::Int64, true),
        Field::new("holdout_calibration", DataType::Utf8, true),
        Field::new("selected", DataType::Boolean, false),
        Field::new("bic", DataType::Float64, true),
    ]);
    let mut cols: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
        rows.iter().map(|r| r.model.as_str()),
    ))];
    for n in names {
        let v: Float64Array = rows
            .iter()
            .map(|r| r.params.iter().find(|(k, _)| *k == n).map(|(_, v)| *v))
            .collect();
        cols.push(Arc::new(v));
    }
    for n in names {
        let v: Float64Array = rows
            .iter()
            .map(|r| r.std_errors.iter().find(|(k, _)| *k == n).map(|(_, v)| *v))
            .collect();
        cols.push(Arc::new(v));
    }
    cols.push(Arc::new(
        rows.iter()
            .map(|r| r.log_likelihood)
            .collect::<Float64Array>(),
    ));
    cols.push(Arc::new(Int64Array::from_iter_values(
        rows.iter().map(|r| r.customers_fitted),
    )));
    cols.push(Arc::new(BooleanArray::from(
        rows.iter().map(|r| r.converged).collect::<Vec<_>>(),
    )));
    cols.push(Arc::new(Int64Array::from_iter_values(
        rows.iter().map(|r| r.iterations),
    )));
    cols.push(Arc::new(StringArray::from_iter_values(
        rows.iter().map(|_| unit.name()),
    )));
    cols.push(Arc::new(StringArray::from(
        rows.iter().map(|r| r.reason.clone()).collect::<Vec<_>>(),
    )));
    cols.push(Arc::new(
        rows.iter().map(|r| r.holdout_mae).collect::<Float64Array>(),
    ));
    cols.push(Arc::new(
        rows.iter()
            .map(|r| r.holdout_aggregate_error)
            .collect::<Float64Array>(),
    ));
    cols.push(Arc::new(
        rows.iter()
            .map(|r| r.holdout_customers)
            .collect::<Int64Array>(),
    ));
    cols.push(Arc::new(StringArray::from(
        rows.iter()
            .map(|r| r.holdout_calibration.clone())
            .collect::<Vec<_>>(),
    )));
    cols.push(Arc::new(BooleanArray::from(
        rows.iter().map(|r| r.selected).collect::<Vec<_>>(),
    )));
    cols.push(Arc::new(
        rows.iter().map(|r| r.bic).collect::<Float64Array>(),
    ));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
        .map_err(|e| Error::Internal(format!("clv_model: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deciles_rank_top_first_and_skip_nulls() {
        let v: Vec<Option<f64>> = (0..20).map(|i| Some(i as f64)).chain([None]).collect();
        let ids: Vec<String> = (0..21).map(|i| format!("c{i:02}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let d = deciles(&v, &ids);
        assert_eq!(d[19], Some(1));
        assert_eq!(d[18], Some(1));
        assert_eq!(d[17], Some(2));
        assert_eq!(d[0], Some(10));
        assert_eq!(d[20], None);
    }
}
