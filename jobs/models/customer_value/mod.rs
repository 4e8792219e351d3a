//! Customer value: historical revenue and margin, and the predicted lifetime value from the
//! buy-till-you-die models of [`super::clv`], written as `customer_value` and `clv_model`.

mod config;
mod predict;

use self::predict::predict;

pub use self::config::{ClvConfig, PurchaseModel, TimeUnit, ValueBasis};

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
    /// Only the columns read below: customer_features is the wide per-customer table (about
    /// 380 bytes a customer collected whole, 50 with these four).
    fn input_columns(&self, input: &str) -> Option<Vec<String>> {
        let cols: &[&str] = match input {
            "customer_features" => &["customer_id", "revenue", "margin", "avg_order_value"],
            "clv_summary" => &[
                "customer_id",
                "frequency",
                "recency_days",
                "age_days",
                "monetary_value",
                "monetary_margin",
            ],
            "clv_holdout" => &[
                "customer_id",
                "frequency",
                "recency_days",
                "age_days",
                "holdout_purchases",
            ],
            _ => return None,
        };
        Some(cols.iter().map(|c| c.to_string()).collect())
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
