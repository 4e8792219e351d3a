//! Customer segmentation: every scheme labels every customer exactly once (`unclassified` when
//! its inputs are missing). Writes `customer_segments` (one wide row per customer) and
//! `customer_segment_labels` (customer, scheme, segment), which segment_summary groups by.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use rayon::prelude::*;

use super::table::Table;
use super::{Model, ModelInputs, ModelOutputs};
use crate::config::ModelsConfig;
use crate::error::{Error, Result};

/// The label of a customer a scheme cannot classify.
pub const UNCLASSIFIED: &str = "unclassified";

/// Nearest-rank quantile of sorted values: the value at 1-based rank ceil(q x n); None if empty.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// The per-customer inputs every scheme reads (the `segment_inputs` mart).
pub struct CustomerView {
    table: Table,
    /// Customer ids.
    pub ids: StringArray,
    /// Completed orders to date.
    pub orders: Vec<Option<i64>>,
}

impl CustomerView {
    /// Wraps the collected `segment_inputs` table.
    pub fn new(table: Table) -> Result<Self> {
        let ids = table.strings("customer_id")?;
        let orders = table.i64("orders")?;
        Ok(Self { table, ids, orders })
    }

    /// Number of customers.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no customers.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Customer ids as string slices.
    pub fn id_strs(&self) -> Vec<&str> {
        (0..self.ids.len()).map(|i| self.ids.value(i)).collect()
    }

    /// A numeric input column.
    pub fn f64(&self, col: &str) -> Result<Vec<Option<f64>>> {
        self.table.f64(col)
    }

    /// A text input column.
    pub fn strings(&self, col: &str) -> Result<Vec<Option<String>>> {
        let a = self.table.strings(col)?;
        Ok((0..a.len())
            .map(|i| {
                if a.is_null(i) {
                    None
                } else {
                    Some(a.value(i).to_string())
                }
            })
            .collect())
    }

    /// A numeric input column with customers without purchases set to None.
    pub fn buyer_f64(&self, col: &str) -> Result<Vec<Option<f64>>> {
        Ok(self
            .table
            .f64(col)?
            .into_iter()
            .zip(&self.orders)
            .map(|(v, o)| if o.unwrap_or(0) > 0 { v } else { None })
            .collect())
    }
}

/// What one scheme adds: its wide columns and one label per customer.
pub struct SchemeOutput {
    /// The scheme name used in `customer_segment_labels.scheme`.
    pub scheme: &'static str,
    /// Wide columns for customer_segments, in order.
    pub columns: Vec<(Field, ArrayRef)>,
    /// One label per customer.
    pub labels: Vec<String>,
    /// Facts for the run results.
    pub report: serde_json::Value,
}

impl SchemeOutput {
    /// An empty output for `scheme`.
    pub fn new(scheme: &'static str) -> Self {
        Self {
            scheme,
            columns: Vec::new(),
            labels: Vec::new(),
            report: serde_json::Value::Null,
        }
    }

    /// Adds a small-integer column.
    pub fn push_u8(&mut self, name: &str, v: Vec<Option<u8>>) {
        let a: Int32Array = v.into_iter().map(|x| x.map(i32::from)).collect();
        self.columns
            .push((Field::new(name, DataType::Int32, true), Arc::new(a)));
    }

    /// Adds a text column.
    pub fn push_str(&mut self, name: &str, v: Vec<Option<String>>) {
        self.columns.push((
            Field::new(name, DataType::Utf8, true),
            Arc::new(StringArray::from(v)),
        ));
    }

    /// Adds a float column.
    pub fn push_f64(&mut self, name: &str, v: Vec<Option<f64>>) {
        self.columns.push((
            Field::new(name, DataType::Float64, true),
            Arc::new(Float64Array::from(v)),
        ));
    }

    /// Sets the labels and adds them as the scheme's label column.
    pub fn set_label(&mut self, column: &str, labels: Vec<String>) {
        let a = StringArray::from_iter_values(labels.iter());
        self.columns
            .push((Field::new(column, DataType::Utf8, false), Arc::new(a)));
        self.labels = labels;
    }
}

/// A segmentation scheme: labels every customer, with its configuration captured.
pub type Scheme = Box<dyn Fn(&CustomerView) -> Result<SchemeOutput> + Send + Sync>;

/// A scheme from its configuration and its module's `assign` function.
fn scheme<C: Clone + Send + Sync + 'static>(
    cfg: &C,
    assign: fn(&C, &CustomerView) -> Result<SchemeOutput>,
) -> Scheme {
    let cfg = cfg.clone();
    Box::new(move |view| assign(&cfg, view))
}

/// Runs every configured scheme over the `segment_inputs` mart.
pub struct SegmentsModel {
    schemes: Vec<Scheme>,
}

impl SegmentsModel {
    /// The configured schemes.
    pub fn new(cfg: &ModelsConfig) -> Self {
        Self {
            schemes: vec![
                scheme(&cfg.rfm, super::rfm::assign),
                scheme(&cfg.rfm8, super::rfm8::assign),
                scheme(&cfg.value_tiers, super::value_tiers::assign_value_tier),
                scheme(&cfg.value_tiers, super::value_tiers::assign_current_value),
                scheme(&cfg.lifecycle, super::lifecycle::assign),
                scheme(&cfg.usage, super::usage::assign),
            ],
        }
    }
}

impl Model for SegmentsModel {
    fn name(&self) -> &'static str {
        "segments"
    }
    fn inputs(&self) -> Vec<&'static str> {
        vec!["segment_inputs"]
    }
    fn outputs(&self) -> Vec<&'static str> {
        vec!["customer_segments", "customer_segment_labels"]
    }

    fn run(&self, inputs: &ModelInputs) -> Result<ModelOutputs> {
        let view = CustomerView::new(Table::new(
            "segment_inputs",
            inputs.table("segment_inputs"),
        )?)?;
        let outputs: Vec<SchemeOutput> = self
            .schemes
            .par_iter()
            .map(|assign| assign(&view))
            .collect::<Result<_>>()?;
        let ids: ArrayRef = Arc::new(view.ids.clone());
        let mut fields = vec![Field::new("customer_id", DataType::Utf8, false)];
        let mut cols = vec![Arc::clone(&ids)];
        let mut report = serde_json::Map::new();
        for o in &outputs {
            for (f, a) in &o.columns {
                fields.push(f.clone());
                cols.push(Arc::clone(a));
            }
            report.insert(o.scheme.to_string(), o.report.clone());
        }
        let wide = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
            .map_err(|e| Error::Internal(format!("customer_segments: {e}")))?;

        let n = view.len();
        let long_schema = Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Utf8, false),
            Field::new("scheme", DataType::Utf8, false),
            Field::new("segment", DataType::Utf8, false),
        ]));
        let mut long = Vec::with_capacity(outputs.len());
        for o in &outputs {
            let scheme = StringArray::from_iter_values(std::iter::repeat_n(o.scheme, n));
            let labels = StringArray::from_iter_values(o.labels.iter());
            long.push(
                RecordBatch::try_new(
                    Arc::clone(&long_schema),
                    vec![Arc::clone(&ids), Arc::new(scheme), Arc::new(labels)],
                )
                .map_err(|e| Error::Internal(format!("customer_segment_labels: {e}")))?,
            );
        }
        Ok(ModelOutputs {
            tables: vec![
                ("customer_segments".into(), vec![wide]),
                ("customer_segment_labels".into(), long),
            ],
            report: serde_json::Value::Object(report),
            warnings: Vec::new(),
        })
    }
}
