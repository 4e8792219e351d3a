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
}

/// One row of clv_model.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ModelRow {
    /// Model name (`bgnbd`, `mbgnbd`, `gamma_gamma`).
    pub model: String,
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

        let (pred, mut rows, mut warnings) = predict(&self.cfg, &summary);
        if self.cfg.holdout_days > 0 {
            let t = Table::new("clv_holdout", inputs.table("clv_holdout"))?;
            match validate_on_holdout(&self.cfg, &t)? {
                Ok(h) => {
                    if let Some(row) = rows.first_mut() {
                        row.holdout_mae = Some(h.mae).filter(|v| v.is_finite());
                        row.holdout_aggregate_error = h.relative_error;
                        row.holdout_customers = Some(h.customers as i64);
                        row.holdout_calibration = Some(calibration_json(&h));
                    }
                }
                Err(why) => warnings.push(format!("holdout validation skipped: {why}")),
            }
        }
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

/// Fits the transaction model and Gamma-Gamma on the customers with purchases and predicts per
/// customer. Predictions are computed once per distinct (x, t_x, T) row and scaled by each
/// customer's expected spend: CLV = spend x sum over steps of discounted expected purchases.
/// A model that does not converge leaves every prediction empty (the caller falls back to
/// historical value) and says why.
fn predict(cfg: &ClvConfig, s: &CustomerSummary) -> (Predictions, Vec<ModelRow>, Vec<String>) {
    use super::clv::{self, ClvOptions, FitOptions, Rfm, TransactionModelKind};
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
    let (kind, name) = match cfg.model {
        PurchaseModel::Bgnbd => (TransactionModelKind::BgNbd, "bgnbd"),
        PurchaseModel::Mbgnbd => (TransactionModelKind::MbgNbd, "mbgnbd"),
    };
    let summary = clv::summarize(&rfm);
    let tfit = clv::fit_transactions(kind, &summary.rows, &opts);
    let xs: Vec<f64> = rfm.iter().map(|c| c.x).collect();
    let ms: Vec<f64> = idx
        .iter()
        .map(|&i| s.monetary[i].unwrap_or(f64::NAN))
        .collect();
    let spend = clv::summarize_spend(&xs, &ms).unwrap_or_default();
    let gfit = clv::fit_gamma_gamma(&spend.rows, &opts);
    let p = tfit.model.params;
    let g = gfit.params;
    let rows = vec![
        ModelRow {
            model: name.into(),
            params: vec![("r", p.r), ("alpha", p.alpha), ("a", p.a), ("b", p.b)],
            std_errors: tfit
                .std_errors
                .map(|s| vec![("r", s.r), ("alpha", s.alpha), ("a", s.a), ("b", s.b)])
                .unwrap_or_default(),
            log_likelihood: Some(tfit.log_likelihood).filter(|v| v.is_finite()),
            customers_fitted: tfit.n_customers as i64,
            converged: tfit.converged,
            iterations: tfit.iterations as i64,
            reason: tfit.reason.clone(),
            ..Default::default()
        },
        ModelRow {
            model: "gamma_gamma".into(),
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
        },
    ];
    let mut warnings = Vec::new();
    let mut pred = Predictions {
        p_alive: vec![None; n],
        expected_purchases: vec![None; n],
        expected_aov: vec![None; n],
        clv: vec![None; n],
        days_to_next: vec![None; n],
    };
    if !tfit.converged {
        warnings.push(format!(
            "{name} did not converge ({}); CLV falls back to historical value",
            tfit.reason.as_deref().unwrap_or("no reason given")
        ));
        return (pred, rows, warnings);
    }
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
    // discounted expected purchases per distinct row = CLV with a spend of 1
    let per_row_dep =
        clv::customer_lifetime_values(&model, &row_rfm, &vec![1.0; row_rfm.len()], &clv_opts)
            .unwrap_or_else(|e| {
                warnings.push(format!("CLV options rejected: {e}"));
                vec![f64::NAN; row_rfm.len()]
            });
    use rayon::prelude::*;
    let per_row: Vec<(f64, f64)> = row_rfm
        .par_iter()
        .map(|c| {
            (
                model.p_alive(c),
                model.conditional_expected_purchases(horizon, c),
            )
        })
        .collect();
    if !gfit.converged {
        warnings.push(format!(
            "gamma_gamma did not converge ({}); CLV falls back to historical value",
            gfit.reason.as_deref().unwrap_or("no reason given")
        ));
    }
    let finite = |v: f64| Some(v).filter(|v| v.is_finite());
    for (k, &i) in idx.iter().enumerate() {
        let Some(row) = summary.row_of_customer.get(k).copied().flatten() else {
            continue;
        };
        let c = rfm[k];
        let (alive, purchases) = per_row[row];
        pred.p_alive[i] = finite(alive);
        pred.expected_purchases[i] = finite(purchases);
        if alive >= cfg.min_p_alive_for_next_purchase {
            pred.days_to_next[i] = finite(model.expected_days_to_next_purchase(c.x, c.t, unit));
        }
        if gfit.converged {
            let m = if c.x > 0.0 { ms[k] } else { 0.0 };
            let aov = g.conditional_expected_spend(c.x, m);
            pred.expected_aov[i] = finite(aov);
            pred.clv[i] = finite(aov * per_row_dep[row]);
        }
    }
    (pred, rows, warnings)
}

/// Refits the transaction model on the calibration summary and scores the holdout window:
/// per-customer MAE of purchases, aggregate relative error and calibration by frequency.
fn validate_on_holdout(
    cfg: &ClvConfig,
    t: &Table,
) -> Result<std::result::Result<super::clv::HoldoutMetrics, String>> {
    use super::clv::{self, FitOptions, Rfm, TransactionModelKind};
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
    let kind = match cfg.model {
        PurchaseModel::Bgnbd => TransactionModelKind::BgNbd,
        PurchaseModel::Mbgnbd => TransactionModelKind::MbgNbd,
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
    let names = ["r", "alpha", "a", "b", "p", "q", "gamma"];
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
