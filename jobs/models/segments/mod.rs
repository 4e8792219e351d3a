//! Customer segmentation: every scheme labels every customer exactly once (`unclassified` when
//! its inputs are missing, with the reason in `unclassified_reason`). Writes `customer_segments`
//! (one wide row per customer), `segment_migration`: per scheme, how many customers moved from
//! each of the previous period's published segments to each of this period's, and the
//! `summary_*_by_segment` tables segment_summary reads: its per-customer marts grouped by every
//! scheme's segment in one pass ([`by_segment`]).

pub mod by_segment;
pub mod clusters;
pub mod custom;
pub mod lifecycle;
pub mod preference;
pub mod rfm;
pub mod rfm8;
pub mod usage;
pub mod value_loyalty;
pub mod value_tiers;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::models::ModelsConfig;
use crate::models::table::Table;
use crate::models::{Model, ModelInputs, ModelOutputs};

/// The label of a customer a scheme cannot classify.
pub const UNCLASSIFIED: &str = "unclassified";
/// The migration source of a customer absent from the previous period's segments.
pub const NEW_CUSTOMER: &str = "(new)";
/// The migration target of a customer absent from this period's segments.
pub const GONE_CUSTOMER: &str = "(gone)";
/// The previous period's published segments, read for migration.
const PREVIOUS: &str = "previous.customer_segments";

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

    /// Every input column, as one batch (user-defined schemes evaluate their rules on it).
    pub fn batch(&self) -> &RecordBatch {
        self.table.batch()
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
    /// The scheme name used in `segment_summary.scheme`.
    pub scheme: String,
    /// The customer_segments column holding the labels.
    pub label_column: String,
    /// Why a customer is `unclassified` by this scheme.
    pub why_unclassified: String,
    /// Wide columns for customer_segments, in order.
    pub columns: Vec<(Field, ArrayRef)>,
    /// One label per customer: the label column itself (its buffers are shared, not copied;
    /// nine schemes' labels as `Vec<String>` were 9 M heap strings at 1 M customers).
    pub labels: StringArray,
    /// Facts for the run results.
    pub report: serde_json::Value,
}

impl SchemeOutput {
    /// An empty output for `scheme`.
    pub fn new(scheme: &str) -> Self {
        Self {
            scheme: scheme.to_string(),
            label_column: String::new(),
            why_unclassified: "no purchases".into(),
            columns: Vec::new(),
            labels: StringArray::new_null(0),
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
    pub fn set_label<S: AsRef<str>>(&mut self, column: &str, labels: impl IntoIterator<Item = S>) {
        let a = StringArray::from_iter_values(labels);
        self.columns.push((
            Field::new(column, DataType::Utf8, false),
            Arc::new(a.clone()),
        ));
        self.labels = a;
        self.label_column = column.to_string();
    }

    /// Customer `i`'s label.
    pub fn label(&self, i: usize) -> &str {
        self.labels.value(i)
    }
}

/// A segmentation scheme as the rest of the job sees it: its name in `segment_summary.scheme`
/// (and `segment_migration`, `positioning`), the `customer_segments` column holding its labels,
/// and a title for people. [`SCHEMES`] is the one list: the segments model runs it, the summary
/// groups by it, the report shows it.
#[derive(Clone, Copy)]
pub struct SchemeInfo {
    /// The scheme's name.
    pub name: &'static str,
    /// The customer_segments column with its labels.
    pub label_column: &'static str,
    /// What it is, for people.
    pub title: &'static str,
    /// The scheme, configured.
    pub build: fn(&ModelsConfig) -> Scheme,
}

impl std::fmt::Debug for SchemeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemeInfo")
            .field("name", &self.name)
            .field("label_column", &self.label_column)
            .finish()
    }
}

/// Every segmentation scheme, in the order they run and are reported.
pub const SCHEMES: &[SchemeInfo] = &[
    SchemeInfo {
        name: "rfm",
        label_column: "rfm_segment",
        title: "RFM quintile segments",
        build: |c| scheme(&c.rfm, rfm::assign),
    },
    SchemeInfo {
        name: "rfm8",
        label_column: "rfm8_segment",
        title: "RFM eight classes",
        build: |c| scheme(&c.rfm8, rfm8::assign),
    },
    SchemeInfo {
        name: "value_tier",
        label_column: "value_tier",
        title: "value tiers",
        build: |c| scheme(&c.value_tiers, value_tiers::assign_value_tier),
    },
    SchemeInfo {
        name: "current_value",
        label_column: "current_value_class",
        title: "current-value classes",
        build: |c| scheme(&c.value_tiers, value_tiers::assign_current_value),
    },
    SchemeInfo {
        name: "lifecycle",
        label_column: "lifecycle_stage",
        title: "lifecycle stages",
        build: |c| scheme(&c.lifecycle, lifecycle::assign),
    },
    SchemeInfo {
        name: "preference",
        label_column: "preference_type",
        title: "preference types",
        build: |c| scheme(&c.preference, preference::assign),
    },
    SchemeInfo {
        name: "usage",
        label_column: "usage_tier",
        title: "usage tiers",
        build: |c| scheme(&c.usage, usage::assign),
    },
    SchemeInfo {
        name: "value_loyalty",
        label_column: "value_loyalty_class",
        title: "value x loyalty classes",
        build: |c| scheme(&c.value_loyalty, value_loyalty::assign),
    },
    SchemeInfo {
        name: "clusters",
        label_column: "cluster_label",
        title: "behavioural clusters",
        build: |c| scheme(&c.clusters, clusters::assign),
    },
];

/// The registry entry of a scheme.
pub fn scheme_info(name: &str) -> Option<&'static SchemeInfo> {
    SCHEMES.iter().find(|s| s.name == name)
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
    /// Every scheme's (name, label column), in run order.
    names: Vec<(String, String)>,
}

impl SegmentsModel {
    /// The configured schemes: the built-in ones in [`SCHEMES`] order, then the user-defined
    /// ones (`models.custom_schemes`) in their order.
    pub fn new(cfg: &ModelsConfig) -> Self {
        let mut schemes: Vec<Scheme> = SCHEMES.iter().map(|info| (info.build)(cfg)).collect();
        let mut names: Vec<(String, String)> = SCHEMES
            .iter()
            .map(|i| (i.name.to_string(), i.label_column.to_string()))
            .collect();
        for s in &cfg.custom_schemes {
            names.push((s.name.clone(), s.label_column()));
            let s = s.clone();
            schemes.push(Box::new(move |view| custom::assign(&s, view)));
        }
        Self { schemes, names }
    }
}

impl Model for SegmentsModel {
    fn name(&self) -> &'static str {
        "segments"
    }
    fn inputs(&self) -> Vec<&'static str> {
        let mut inputs = vec!["segment_inputs", PREVIOUS];
        inputs.extend(by_segment::TABLES.iter().map(|(input, _)| *input));
        inputs
    }
    /// Of the previous period's wide customer_segments, migration and history read only the
    /// customer, each scheme's label and its `_since` column.
    fn input_columns(&self, input: &str) -> Option<Vec<String>> {
        (input == PREVIOUS).then(|| {
            let mut cols = vec!["customer_id".to_string()];
            for (scheme, label) in &self.names {
                cols.push(label.clone());
                cols.push(history_columns(scheme).1);
            }
            cols
        })
    }
    fn outputs(&self) -> Vec<&'static str> {
        let mut outputs = vec!["customer_segments", "segment_migration"];
        outputs.extend(by_segment::TABLES.iter().map(|(_, output)| *output));
        outputs
    }

    fn run(&self, inputs: &ModelInputs) -> Result<ModelOutputs> {
        let view = CustomerView::new(Table::new(
            "segment_inputs",
            inputs.table("segment_inputs"),
        )?)?;
        let timed: Vec<(SchemeOutput, std::time::Duration)> = self
            .schemes
            .par_iter()
            .map(|assign| {
                let t = std::time::Instant::now();
                assign(&view).map(|o| (o, t.elapsed()))
            })
            .collect::<Result<_>>()?;
        let seconds: serde_json::Map<String, serde_json::Value> = timed
            .iter()
            .map(|(o, d)| (o.scheme.to_string(), seconds_json(*d)))
            .collect();
        let outputs: Vec<SchemeOutput> = timed.into_iter().map(|(o, _)| o).collect();
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
        fields.push(Field::new("unclassified_reason", DataType::Utf8, true));
        cols.push(Arc::new(unclassified_reasons(&outputs, view.len())));
        let (period, previous_period) = inputs
            .period
            .as_ref()
            .map(|p| (p.label(), p.previous().label()))
            .unwrap_or_default();
        // the previous period's segments, joined to this period's customers once for both
        let previous = Previous::new(&view, inputs.table(PREVIOUS))?;
        for (f, a) in history(
            &outputs,
            &view,
            previous.as_ref(),
            &period,
            &previous_period,
        )? {
            fields.push(f);
            cols.push(a);
        }
        let wide = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
            .map_err(|e| Error::Internal(format!("customer_segments: {e}")))?;

        // segment_summary's sums and counts per (scheme, segment), one table at a time (each
        // runs its schemes in parallel)
        let t = std::time::Instant::now();
        let segmentation = by_segment::Segmentation::new(&view.ids, &outputs);
        let mut by_segment_seconds = serde_json::Map::new();
        by_segment_seconds.insert("coding".into(), seconds_json(t.elapsed()));
        let mut tables = vec![("customer_segments".to_string(), vec![wide])];
        for (input, output) in by_segment::TABLES {
            let t = std::time::Instant::now();
            let grouped = by_segment::aggregate(input, inputs.table(input), &segmentation)?;
            by_segment_seconds.insert(input.into(), seconds_json(t.elapsed()));
            tables.push((output.to_string(), vec![grouped]));
        }
        drop(segmentation);
        let t = std::time::Instant::now();
        let migration = migration(&outputs, previous.as_ref())?;
        let mut seconds = seconds;
        seconds.insert(
            "by_segment".into(),
            serde_json::Value::Object(by_segment_seconds),
        );
        seconds.insert("migration".into(), seconds_json(t.elapsed()));
        report.insert(
            "seconds_by_scheme".into(),
            serde_json::Value::Object(seconds),
        );
        tables.insert(1, ("segment_migration".into(), vec![migration]));
        Ok(ModelOutputs {
            tables,
            report: serde_json::Value::Object(report),
            warnings: Vec::new(),
        })
    }
}

/// Seconds to the millisecond, for the run results.
fn seconds_json(d: std::time::Duration) -> serde_json::Value {
    serde_json::json!((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// Per customer, "scheme: reason" for each scheme that left it unclassified (None if none did).
fn unclassified_reasons(outputs: &[SchemeOutput], n: usize) -> StringArray {
    (0..n)
        .map(|i| {
            let parts: Vec<String> = outputs
                .iter()
                .filter(|o| o.label(i) == UNCLASSIFIED)
                .map(|o| format!("{}: {}", o.label_column, o.why_unclassified))
                .collect();
            (!parts.is_empty()).then(|| parts.join("; "))
        })
        .collect()
}

/// The history column names of a scheme: its label last period and the period since which it
/// has had this one.
pub fn history_columns(scheme: &str) -> (String, String) {
    (format!("{scheme}_previous"), format!("{scheme}_since"))
}

/// Per scheme, each customer's segment history from the previous period's published partition:
/// `<scheme>_previous` is the label it had there (`(new)` for a customer it did not have; null
/// when no previous partition was published, or it predates the scheme), and `<scheme>_since` the
/// first period of the customer's current unbroken run in this label: the previous partition's
/// `_since` when the label is unchanged (its period when that partition predates the history
/// columns), else this period. A backfill builds it period by period, as single runs do.
fn history(
    outputs: &[SchemeOutput],
    view: &CustomerView,
    previous: Option<&Previous>,
    period: &str,
    previous_period: &str,
) -> Result<Vec<(Field, ArrayRef)>> {
    let none = vec![None; view.len()];
    let prev_row = previous.map_or(&none, |p| &p.row_of);
    let prev = previous.map(|p| &p.table);
    let columns: Vec<[(Field, ArrayRef); 2]> = outputs
        .par_iter()
        .map(|o| {
            let (previous_col, since_col) = history_columns(&o.scheme);
            let before = match &prev {
                Some(p) if p.has(&o.label_column) => Some(p.strings(&o.label_column)?),
                _ => None,
            };
            let before_since = match &prev {
                Some(p) if p.has(&since_col) => Some(p.strings(&since_col)?),
                _ => None,
            };
            let mut was: Vec<Option<&str>> = Vec::with_capacity(view.len());
            let mut since: Vec<&str> = Vec::with_capacity(view.len());
            for (i, row) in prev_row.iter().enumerate() {
                let label = match (row, &before) {
                    (_, None) => None,
                    (None, Some(_)) => Some(NEW_CUSTOMER),
                    (Some(j), Some(a)) => Some(if a.is_null(*j) {
                        UNCLASSIFIED
                    } else {
                        a.value(*j)
                    }),
                };
                let unchanged = label == Some(o.label(i)) && row.is_some();
                let from = match (unchanged, row, &before_since) {
                    (true, Some(j), Some(s)) if !s.is_null(*j) => s.value(*j),
                    (true, _, _) => previous_period,
                    (false, _, _) => period,
                };
                was.push(label);
                since.push(from);
            }
            let was: ArrayRef = Arc::new(StringArray::from(was));
            let since: ArrayRef = Arc::new(StringArray::from(since));
            Ok([
                (Field::new(previous_col, DataType::Utf8, true), was),
                (Field::new(since_col, DataType::Utf8, false), since),
            ])
        })
        .collect::<Result<_>>()?;
    Ok(columns.into_iter().flatten().collect())
}

/// The previous period's published segments (`previous.customer_segments`) and each current
/// customer's row in them; None when no previous partition was published.
struct Previous {
    table: Table,
    row_of: Vec<Option<usize>>,
}

impl Previous {
    fn new(view: &CustomerView, batches: &[RecordBatch]) -> Result<Option<Self>> {
        if batches.iter().all(|b| b.num_rows() == 0) {
            return Ok(None);
        }
        let table = Table::new(PREVIOUS, batches)?;
        let ids = table.strings("customer_id")?;
        let index: HashMap<&str, usize> = (0..ids.len()).map(|i| (ids.value(i), i)).collect();
        let row_of = view
            .id_strs()
            .iter()
            .map(|id| index.get(id).copied())
            .collect();
        drop(index);
        Ok(Some(Self { table, row_of }))
    }
}

/// Counts of customers per (scheme, from, to): from = the previous period's published label
/// (`(new)` for a customer it did not have), to = this period's (`(gone)` for a customer of the
/// previous period missing now). Empty when no previous partition was published.
fn migration(outputs: &[SchemeOutput], previous: Option<&Previous>) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("scheme", DataType::Utf8, false),
        Field::new("from_segment", DataType::Utf8, false),
        Field::new("to_segment", DataType::Utf8, false),
        Field::new("customers", DataType::Int64, false),
        Field::new("share_of_from", DataType::Float64, false),
        Field::new("stayed", DataType::Boolean, false),
    ]));
    let mut counts: BTreeMap<(&str, String, String), i64> = BTreeMap::new();
    if let Some(Previous {
        table: prev,
        row_of: prev_row,
    }) = previous
    {
        // which previous customers are still here (the others left)
        let mut kept = vec![false; prev.len()];
        for j in prev_row.iter().flatten() {
            kept[*j] = true;
        }
        let before: Vec<Option<StringArray>> = outputs
            .iter()
            .map(|o| {
                prev.has(&o.label_column)
                    .then(|| prev.strings(&o.label_column))
                    .transpose()
            })
            .collect::<Result<_>>()?;
        // per scheme, count (from, to) pairs over interned labels: no allocation per customer
        let per_scheme: Vec<Vec<(String, String, i64)>> = outputs
            .par_iter()
            .zip(&before)
            .map(|(o, before)| {
                let label_of = |j: usize| match before {
                    Some(a) if !a.is_null(j) => a.value(j),
                    _ => UNCLASSIFIED,
                };
                let mut pairs: HashMap<(&str, &str), i64> = HashMap::new();
                for (i, row) in prev_row.iter().enumerate() {
                    let from = row.map_or(NEW_CUSTOMER, label_of);
                    *pairs.entry((from, o.label(i))).or_default() += 1;
                }
                for (j, k) in kept.iter().enumerate() {
                    if !k {
                        *pairs.entry((label_of(j), GONE_CUSTOMER)).or_default() += 1;
                    }
                }
                pairs
                    .into_iter()
                    .map(|((f, t), n)| (f.to_string(), t.to_string(), n))
                    .collect()
            })
            .collect();
        for (o, pairs) in outputs.iter().zip(per_scheme) {
            for (f, t, n) in pairs {
                counts.insert((o.scheme.as_str(), f, t), n);
            }
        }
    }
    let mut from_totals: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for ((scheme, from, _), n) in &counts {
        *from_totals.entry((scheme, from.as_str())).or_default() += n;
    }
    let share: Float64Array = counts
        .iter()
        .map(|((s, f, _), n)| *n as f64 / from_totals[&(*s, f.as_str())] as f64)
        .collect();
    let stayed: BooleanArray = counts.keys().map(|(_, f, t)| Some(f == t)).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(counts.keys().map(|k| k.0))),
            Arc::new(StringArray::from_iter_values(
                counts.keys().map(|k| k.1.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                counts.keys().map(|k| k.2.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(counts.values().copied())),
            Arc::new(share),
            Arc::new(stayed),
        ],
    )
    .map_err(|e| Error::Internal(format!("segment_migration: {e}")))
}

#[cfg(test)]
mod registry_tests {
    use super::*;

    #[test]
    fn every_scheme_labels_under_its_registered_name_and_column() {
        let model = SegmentsModel::new(&ModelsConfig::default());
        let inputs = ModelInputs {
            tables: BTreeMap::new(),
            period: None,
        };
        let table = Table::new("segment_inputs", inputs.table("segment_inputs")).unwrap();
        let view = CustomerView::new(table).unwrap();
        for (info, assign) in SCHEMES.iter().zip(&model.schemes) {
            let out = assign(&view).unwrap();
            assert_eq!(out.scheme, info.name);
            assert_eq!(out.label_column, info.label_column);
        }
    }

    #[test]
    fn of_the_previous_segments_it_reads_the_labels_and_since_columns_of_every_scheme() {
        let mut cfg = ModelsConfig::default();
        cfg.custom_schemes.push(custom::CustomScheme {
            name: "region".into(),
            column: Some("region".into()),
            rules: Vec::new(),
            fallback: None,
        });
        let model = SegmentsModel::new(&cfg);
        let cols = model.input_columns(PREVIOUS).unwrap();
        assert_eq!(cols[0], "customer_id");
        for info in SCHEMES {
            assert!(cols.iter().any(|c| c == info.label_column), "{}", info.name);
            assert!(
                cols.contains(&history_columns(info.name).1),
                "{}",
                info.name
            );
        }
        assert!(cols.iter().any(|c| c == "region_segment"));
        assert!(cols.iter().any(|c| c == "region_since"));
        assert_eq!(cols.len(), 1 + 2 * (SCHEMES.len() + 1));
        // this period's inputs are read whole
        assert_eq!(model.input_columns("segment_inputs"), None);
    }
}
