//! The previous period, as a run reads it: its published partitions registered as
//! `previous.<table>` (growth, stability, migration), their footers checked, and the run id
//! they were published by (for `backfill --only-missing`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::execution::context::SessionContext;
use object_store::ObjectStoreExt;

use super::RunOptions;
use super::record::RunResults;
use super::steps::{self, timed};
use crate::error::{EngineContext, Error, Result};
use crate::job::Job;
use crate::layout::Layout;
use crate::publish::published::{self, Partition};
use crate::storage::Location;

pub(super) fn damaged_partition(loc: &Location, what: &str) -> Error {
    Error::DataQuality(format!(
        "the published partition {loc} cannot be read ({what}): it is damaged. Nothing was published; rerun the period it belongs to (crm-pipeline run --period <P> --allow-shrink) to replace it"
    ))
}

/// Checks that every Parquet file of a published partition has a readable footer; a damaged
/// one is a data error naming the file.
pub(super) async fn check_footers(part: &Partition, period: &str, table: &str) -> Result<()> {
    use datafusion::parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
    let loc = &part.location;
    let store = loc.store();
    for f in part.files.iter().cloned() {
        let url = loc.url_of(&f.location);
        let read = |range: std::ops::Range<u64>| {
            let store = Arc::clone(store);
            let path = f.location.clone();
            async move { store.get_range(&path, range).await }
        };
        let footer: std::result::Result<(), String> = async {
            if f.size < 12 {
                return Err(format!("{} bytes, too short for Parquet", f.size));
            }
            let tail = read(f.size - 8..f.size).await.map_err(|e| e.to_string())?;
            let tail: [u8; 8] = tail[..].try_into().map_err(|_| "short read".to_string())?;
            let len = FooterTail::try_new(&tail)
                .map_err(|e| e.to_string())?
                .metadata_length() as u64;
            if len + 8 > f.size {
                return Err(format!("the footer claims {len} bytes of metadata"));
            }
            let meta = read(f.size - 8 - len..f.size - 8)
                .await
                .map_err(|e| e.to_string())?;
            ParquetMetaDataReader::decode_metadata(&meta).map_err(|e| e.to_string())?;
            Ok(())
        }
        .await;
        if let Err(e) = footer {
            return Err(Error::DataQuality(format!(
                "the published partition of `{table}` for period {period} is damaged: {url} is not a readable Parquet file ({e}). This run reads it as previous.{table} (growth and migration); rerun period {period} to republish it (crm-pipeline run --period {period}), then rerun this period"
            )));
        }
    }
    Ok(())
}

/// Registers the previous period's published partitions as `previous.<table>`, for growth and
/// migration (empty tables when none is published). In a backfill it first waits until the
/// previous period's run of the same backfill has finished; if that run failed, it reads what
/// was published before (possibly nothing) and records a warning. A damaged previous partition
/// is a data error naming the file.
pub(super) async fn register(
    job: &Job,
    opts: &RunOptions,
    layout: &Layout,
    ctx: &SessionContext,
    results: &mut RunResults,
) -> Result<()> {
    let prev = opts.period.previous();
    let prev_label = prev.label();
    if let Some(gate) = &opts.previous_ready {
        let mut gate = gate.clone();
        let published = timed(results, "wait for previous period", "backfill", async {
            // a dropped sender means the predecessor's task ended without reporting: failed
            let published = gate
                .wait_for(Option::is_some)
                .await
                .map(|s| *s == Some(true))
                .unwrap_or(false);
            Ok((published, None))
        })
        .await?;
        if !published {
            results.warnings.push(format!(
                "the run of the previous period {prev_label} in this backfill failed; growth and migration read the partitions of {prev_label} published before it, if any"
            ));
        }
    }
    for out in &job.outputs {
        let table = out.name.as_str();
        let schema: SchemaRef = Arc::clone(&out.schema);
        let name = format!("previous.{table}");
        if let Some(part) = published::partition(layout, table, &prev).await? {
            check_footers(&part, &prev_label, table).await?;
            part.register(ctx, &name, Some(&schema)).await?;
        } else {
            steps::register_empty(ctx, &name, schema)?;
        }
    }
    results.previous_run_id = previous_run_id(ctx, job).await?;
    Ok(())
}

/// The run id of the previous period's published partitions (one run publishes a period's
/// tables together), read from its smallest enabled output.
pub(super) async fn previous_run_id(ctx: &SessionContext, job: &Job) -> Result<Option<String>> {
    let Some(table) = ["clv_model", "value_concentration", "segment_summary"]
        .into_iter()
        .chain(job.outputs.iter().map(|o| o.name.as_str()))
        .find(|t| {
            job.output(t)
                .is_some_and(|o| o.config.enabled && !o.config.may_be_empty)
        })
    else {
        return Ok(None);
    };
    let sql = format!("SELECT min(run_id) FROM previous.{table}");
    let batches = ctx
        .sql(&sql)
        .await
        .context(|| sql.clone())?
        .collect()
        .await
        .context(|| sql.clone())?;
    Ok(batches.iter().find(|b| b.num_rows() > 0).and_then(|b| {
        let c = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8).ok()?;
        let c = c.as_string_opt::<i32>()?;
        (!c.is_null(0)).then(|| c.value(0).to_string())
    }))
}
