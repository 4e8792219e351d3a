//! Step 3a: reconciliation. Every source's rows are accounted for, `rows read = loaded +
//! quarantined by reason`, and the quarantined rows are assembled for the `quarantine` table:
//! rows rejected while splitting files, and rows the staging SQL rejected, with their original
//! text (withheld or redacted for extracts with personal data). A source that does not
//! reconcile fails the run: rows would be lost silently.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::execution::context::SessionContext;
use datafusion::prelude::ParquetReadOptions;
use serde::{Deserialize, Serialize};

use crate::error::{EngineContext, Error, Result};
use crate::extract::{self, LandedSource};
use crate::period::Period;
use crate::storage::Location;

/// A quarantined row shown in the record: where it is and its text (withheld for extracts with
/// personal data).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RejectSample {
    /// The reason.
    pub reason: String,
    /// The file.
    pub file: String,
    /// The line (CSV, JSON Lines) or row (Parquet) number.
    pub row_number: i64,
    /// The row's text.
    pub raw: String,
}

/// What happened to one source's rows.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct SourceResult {
    /// Source name.
    pub name: String,
    /// Resolved location.
    pub location: String,
    /// Whether the extract was found.
    pub present: bool,
    /// Files read.
    pub files: usize,
    /// Data rows read.
    pub rows_read: u64,
    /// Rows loaded into the staging table.
    pub loaded: u64,
    /// Rows quarantined, by reason.
    pub quarantined: BTreeMap<String, u64>,
    /// A few quarantined rows per reason (at most three), so a refused run can be diagnosed
    /// from its record although its quarantine is not published.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<RejectSample>,
    /// Cells normalised (kept, changed), by kind.
    pub normalised: BTreeMap<String, u64>,
    /// Valid rows dated after the as-of date (left out of this period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_as_of: Option<u64>,
    /// Whether rows_read = loaded + quarantined.
    pub reconciled: bool,
    /// Warnings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

async fn count_by(ctx: &SessionContext, sql: &str) -> Result<BTreeMap<String, u64>> {
    let batches = ctx
        .sql(sql)
        .await
        .context(|| sql.to_string())?
        .collect()
        .await
        .context(|| sql.to_string())?;
    let mut out = BTreeMap::new();
    for b in batches {
        let k = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let k = k.as_string::<i32>();
        let v = b.column(1).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            if !k.is_null(i) {
                out.insert(k.value(i).to_string(), v.value(i) as u64);
            }
        }
    }
    Ok(out)
}

/// Builds the quarantine rows (extraction rejects plus staging rejects with their original text)
/// and checks that every source reconciles: rows read = loaded + quarantined. Each source's
/// record keeps up to three quarantined rows per reason.
pub async fn reconcile(
    ctx: &SessionContext,
    scratch: &Location,
    landed: &[LandedSource],
    staging: &[(String, Option<String>)],
    period: &Period,
) -> Result<(Vec<RecordBatch>, Vec<SourceResult>)> {
    let mut batches = Vec::new();
    // rows rejected while splitting files
    let qloc = scratch.join("landing/_quarantine");
    let has_extract_rejects = landed.iter().any(|l| l.malformed() > 0);
    if has_extract_rejects {
        let b = ctx
            .read_parquet(
                qloc.url(),
                ParquetReadOptions::default().schema(&extract::quarantine_schema()),
            )
            .await
            .context(|| "reading extraction quarantine".into())?
            .collect()
            .await
            .context(|| "reading extraction quarantine".into())?;
        batches.extend(b);
    }
    let mut out = Vec::new();
    for l in landed {
        let mut r = SourceResult {
            name: l.name.clone(),
            location: l.location.clone(),
            present: l.present,
            files: l.files.len(),
            rows_read: l.rows_read,
            warnings: l.warnings.clone(),
            ..Default::default()
        };
        let stage = staging
            .iter()
            .find(|(_, s)| s.as_deref() == Some(l.name.as_str()))
            .map(|(n, _)| n.clone());
        if let Some(stage) = &stage {
            let all = format!("{stage}__all");
            r.quarantined = count_by(ctx, &format!("SELECT _reject_reason, count(*) FROM {all} WHERE _reject_reason IS NOT NULL GROUP BY 1")).await?;
            r.normalised = count_by(
                ctx,
                &format!(
                    "SELECT note, count(*) FROM (SELECT unnest(string_to_array(_notes, ',')) AS note FROM {all} WHERE _reject_reason IS NULL AND _notes IS NOT NULL) GROUP BY note"
                ),
            )
            .await?;
            r.loaded = ctx
                .table(stage.as_str())
                .await
                .context(|| stage.clone())?
                .count()
                .await
                .context(|| stage.clone())? as u64;
            if l.name == "orders" {
                let sql = format!(
                    "SELECT 'after_as_of', count(*) FROM {stage} WHERE order_date > DATE '{}'",
                    period.as_of
                );
                r.after_as_of = count_by(ctx, &sql).await?.get("after_as_of").copied();
            }
            // the original text of rejected rows
            let rejected = ctx
                .sql(&format!(
                    "SELECT r.*, a._reject_reason FROM raw.{src} r JOIN (SELECT _source_file, _row_number, _reject_reason FROM {all} WHERE _reject_reason IS NOT NULL) a ON r._source_file = a._source_file AND r._row_number = a._row_number",
                    src = l.name
                ))
                .await
                .context(|| format!("quarantine of {}", l.name))?
                .collect()
                .await
                .context(|| format!("quarantine of {}", l.name))?;
            for b in rejected {
                batches.push(quarantine_rows(&l.name, &b)?);
            }
        } else if l.present {
            r.loaded = l.rows_read - l.malformed();
            r.warnings
                .push("no staging stage reads this source; its rows are not checked".into());
        }
        for (reason, n) in &l.rejected {
            *r.quarantined.entry(reason.clone()).or_default() += n;
        }
        r.reconciled = r.rows_read == r.loaded + r.quarantined.values().sum::<u64>();
        out.push(r);
    }
    for r in &mut out {
        r.samples = samples(&batches, &r.name)?;
    }
    Ok((batches, out))
}

/// Up to three quarantined rows per reason of `source`, in file and line order.
fn samples(batches: &[RecordBatch], source: &str) -> Result<Vec<RejectSample>> {
    let mut out: Vec<RejectSample> = Vec::new();
    for b in batches {
        let col = |name: &str| {
            b.column_by_name(name)
                .ok_or_else(|| Error::Internal(format!("quarantine rows lack `{name}`")))
        };
        let (src, reason, file, row, raw) = (
            col("source")?.as_string::<i32>(),
            col("reason")?.as_string::<i32>(),
            col("file")?.as_string::<i32>(),
            col("row_number")?.as_primitive::<Int64Type>(),
            col("raw")?.as_string::<i32>(),
        );
        for i in 0..b.num_rows() {
            if src.value(i) != source {
                continue;
            }
            out.push(RejectSample {
                reason: reason.value(i).to_string(),
                file: if file.is_null(i) {
                    String::new()
                } else {
                    file.value(i).to_string()
                },
                row_number: if row.is_null(i) { 0 } else { row.value(i) },
                raw: if raw.is_null(i) {
                    String::new()
                } else {
                    raw.value(i).to_string()
                },
            });
        }
    }
    out.sort_by(|a, b| (&a.reason, &a.file, a.row_number).cmp(&(&b.reason, &b.file, b.row_number)));
    let mut kept: Vec<RejectSample> = Vec::new();
    for s in out {
        if kept.iter().filter(|k| k.reason == s.reason).count() < 3 {
            kept.push(s);
        }
    }
    Ok(kept)
}

/// Quarantine rows from rejected landed rows: the canonical fields re-joined as CSV text, with
/// personal data replaced by `[redacted]` (no PII reaches the warehouse, not even here).
fn quarantine_rows(source: &str, b: &RecordBatch) -> Result<RecordBatch> {
    let n = b.num_rows();
    let schema = b.schema();
    // the landed file name is a dictionary (one value per batch)
    let file = b
        .column_by_name("_source_file")
        .map(|c| datafusion::arrow::compute::cast(c, &DataType::Utf8))
        .transpose()
        .map_err(|e| Error::Internal(format!("quarantine rows: {e}")))?;
    let file = file.as_ref().map(|c| c.as_string::<i32>().clone());
    let row = b
        .column_by_name("_row_number")
        .map(|c| c.as_primitive::<Int64Type>().clone());
    let reason = b
        .column_by_name("_reject_reason")
        .map(|c| c.as_string::<i32>().clone());
    let contract = crate::contract::source_schema(source);
    let is_pii = |name: &str| {
        contract.is_some_and(|c| c.columns.iter().any(|col| col.pii && col.name == name))
    };
    let data: Vec<(bool, &StringArray)> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.name().starts_with('_'))
        .map(|(i, f)| (is_pii(f.name()), b.column(i).as_string::<i32>()))
        .collect();
    let mut raw = Vec::with_capacity(n);
    for i in 0..n {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        let rec: Vec<&str> = data
            .iter()
            .map(|(pii, a)| match (a.is_null(i), pii) {
                (true, _) => "",
                (false, true) => crate::contract::REDACTED,
                (false, false) => a.value(i),
            })
            .collect();
        let _ = w.write_record(&rec);
        let text = w
            .into_inner()
            .map(|v| String::from_utf8_lossy(&v).trim_end().to_string())
            .unwrap_or_default();
        raw.push(text);
    }
    let cols: Vec<Arc<dyn Array>> = vec![
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            source, n,
        ))),
        Arc::new(reason.unwrap_or_else(|| StringArray::from(vec![None::<&str>; n]))),
        Arc::new(file.unwrap_or_else(|| StringArray::from(vec![None::<&str>; n]))),
        Arc::new(row.unwrap_or_else(|| Int64Array::from(vec![None; n]))),
        Arc::new(StringArray::from(raw)),
    ];
    RecordBatch::try_new(extract::quarantine_schema(), cols)
        .map_err(|e| Error::Internal(format!("quarantine rows: {e}")))
}
