//! The steps of a run: timing every step, running one SQL stage, running one model.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::execution::context::SessionContext;
use datafusion::prelude::ParquetReadOptions;

use super::record::{RunResults, Status, StepResult};
use crate::error::{EngineContext, Error, Result, StageContext};
use crate::models::{Model, ModelInputs, ModelOutputs};
use crate::stages::{self, SqlStage, graph::ModelNode};
use crate::storage::Location;

/// Process resource readings from /proc (Linux); None elsewhere.
mod process {
    /// Resets the peak-RSS high-water mark so the next reading covers only what follows.
    pub fn reset_peak() {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }

    /// Peak resident memory since the last reset, in MiB.
    pub fn peak_rss_mib() -> Option<f64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some((kb / 1024.0 * 10.0).round() / 10.0)
    }

    /// CPU seconds used by the process so far (user + system; 100 clock ticks per second).
    pub fn cpu_seconds() -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let after = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = after.split_whitespace().collect();
        let utime: f64 = f.get(11)?.parse().ok()?;
        let stime: f64 = f.get(12)?.parse().ok()?;
        Some((utime + stime) / 100.0)
    }
}

/// Hands memory the process has freed back to the system. glibc keeps freed heap memory for
/// reuse, and after a few large frees it serves even large buffers from the heap: without this,
/// the landed extracts, released after the quarantine, would stay resident for the rest of the
/// run, and the steps after a model would sit on the model's leftovers. Called after the
/// extracts are released and after each model. Not before every step: the memory handed back
/// is then faulted in again, which cost 10% of the run's wall time at 1 M customers for a
/// peak 12-15% lower.
pub(super) fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs `fut` as the step `name`, recording its wall time, CPU time, peak memory and rows.
pub(super) async fn timed<T>(
    results: &mut RunResults,
    name: &str,
    kind: &str,
    fut: impl std::future::Future<Output = Result<(T, Option<u64>)>>,
) -> Result<T> {
    let t = Instant::now();
    process::reset_peak();
    let cpu0 = process::cpu_seconds();
    tracing::info!(target: crate::logging::STEP_TARGET, step = name, kind, "started");
    let r = fut.await;
    let (status, rows) = match &r {
        Ok((_, rows)) => (Status::Success, *rows),
        Err(_) => (Status::Failed, None),
    };
    let cpu_seconds = match (cpu0, process::cpu_seconds()) {
        (Some(a), Some(b)) => Some(((b - a) * 100.0).round() / 100.0),
        _ => None,
    };
    results.steps.push(StepResult {
        name: name.into(),
        kind: kind.into(),
        status,
        seconds: t.elapsed().as_secs_f64(),
        rows,
        cpu_seconds,
        peak_rss_mib: process::peak_rss_mib(),
    });
    if let Err(e) = &r {
        tracing::error!(step = name, "{e}");
    } else {
        tracing::info!(
            step = name,
            seconds = t.elapsed().as_secs_f64(),
            rows,
            "done"
        );
    }
    r.map(|(v, _)| v)
}

/// The row count DataFusion's writers return (one UInt64 `count` column).
fn written_rows(batches: &[RecordBatch]) -> u64 {
    use datafusion::arrow::datatypes::UInt64Type;
    batches
        .iter()
        .filter(|b| b.num_columns() > 0)
        .filter_map(|b| {
            b.column(0)
                .as_primitive_opt::<UInt64Type>()
                .map(|a| a.iter().flatten().sum::<u64>())
        })
        .sum()
}

/// An empty table (an absent extract or previous partition). `EmptyTable`, not an in-memory
/// table: a distributed engine can serialise it.
pub(super) fn register_empty(ctx: &SessionContext, name: &str, schema: SchemaRef) -> Result<()> {
    let t = datafusion::datasource::empty::EmptyTable::new(schema);
    ctx.register_table(name, Arc::new(t))
        .context(|| format!("registering {name}"))?;
    Ok(())
}

/// An in-memory table of `batches` that scans in parallel: the batches are cut into slices of
/// the session's batch size (no copy) and dealt round-robin over its target partitions, so every
/// core reads, and no operator gets a half-million-row batch.
pub(super) fn memory_table(
    ctx: &SessionContext,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> datafusion::error::Result<datafusion::datasource::MemTable> {
    let config = ctx.copied_config();
    let (size, n) = (
        config.batch_size().max(1),
        config.target_partitions().max(1),
    );
    let mut partitions: Vec<Vec<RecordBatch>> = vec![Vec::new(); n];
    let mut next = 0;
    for b in batches {
        let mut offset = 0;
        while offset < b.num_rows() {
            let len = size.min(b.num_rows() - offset);
            partitions[next % n].push(b.slice(offset, len));
            next += 1;
            offset += len;
        }
    }
    datafusion::datasource::MemTable::try_new(schema, partitions)
}

/// Runs one SQL stage: substitutes its parameters, materialises its result as Parquet in the
/// attempt's scratch space and registers it for the stages after it. A staging stage with a
/// `_reject_reason` column is stored whole as `<name>__all` and its clean rows registered as
/// `<name>`. Returns whether the stage was split, and its (clean) rows.
pub(super) async fn sql_stage(
    ctx: &SessionContext,
    stage: &SqlStage,
    params: &BTreeMap<String, String>,
    scratch: &Location,
    period: &str,
) -> Result<(bool, Option<u64>)> {
    let sql = stages::substitute_params(&stage.template, params, &stage.name, &stage.file)?;
    let file = stage.file.display().to_string();
    let stage_err = |e: datafusion::error::DataFusionError| {
        Err::<(), _>(e).in_stage(&stage.name, &file).unwrap_err()
    };
    let df = ctx.sql(&sql).await.map_err(stage_err)?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let split = schema.field_with_name("_reject_reason").is_ok();
    let stored = if split {
        format!("{}__all", stage.name)
    } else {
        stage.name.clone()
    };
    let loc = scratch.join(&format!("stages/{stored}"));
    let written = df
        .write_parquet(&loc.url(), DataFrameWriteOptions::new(), None)
        .await
        .map_err(stage_err)?;
    crate::faults::point(&format!("stage:after:{}", stage.name), period)?;
    ctx.register_parquet(
        stored.as_str(),
        loc.url(),
        ParquetReadOptions::default().schema(&schema),
    )
    .await
    .map_err(stage_err)?;
    if split {
        let clean = stages::clean_rows(ctx, &stored).await.map_err(stage_err)?;
        // a ViewTable (serialisable by every engine), not a DataFrame provider
        let view = datafusion::catalog::view::ViewTable::new(clean.into_unoptimized_plan(), None);
        ctx.register_table(stage.name.as_str(), Arc::new(view))
            .map_err(stage_err)?;
    }
    // the writer reports the rows it wrote; a split stage counts its clean rows
    let rows = if split {
        ctx.table(stage.name.as_str())
            .await
            .map_err(stage_err)?
            .count()
            .await
            .map_err(stage_err)? as u64
    } else {
        written_rows(&written)
    };
    Ok((split, Some(rows)))
}

/// Runs one model over its collected inputs on the driver.
pub(super) async fn model(
    ctx: &SessionContext,
    node: &ModelNode,
    model: &dyn Model,
    period: &crate::period::Period,
) -> Result<(ModelOutputs, Option<u64>)> {
    let mut inputs = ModelInputs {
        tables: BTreeMap::new(),
        period: Some(period.clone()),
    };
    for input in &node.inputs {
        let started = Instant::now();
        let mut df = ctx
            .table(input.as_str())
            .await
            .context(|| format!("model {} reading {input}", node.name))?;
        if let Some(wanted) = model.input_columns(input) {
            let present: Vec<&str> = wanted
                .iter()
                .map(String::as_str)
                .filter(|c| df.schema().has_column_with_unqualified_name(c))
                .collect();
            if !present.is_empty() {
                df = df
                    .select_columns(&present)
                    .context(|| format!("model {} reading {input}", node.name))?;
            }
        }
        let schema = Arc::new(df.schema().as_arrow().clone());
        let mut batches = df
            .collect()
            .await
            .context(|| format!("model {} reading {input}", node.name))?;
        if batches.is_empty() {
            // an empty table still has its columns
            batches.push(RecordBatch::new_empty(schema));
        }
        // models run on the driver: this is what it holds in memory
        tracing::info!(
            model = node.name,
            input,
            rows = batches.iter().map(|b| b.num_rows()).sum::<usize>(),
            bytes = batches
                .iter()
                .map(|b| b.get_array_memory_size())
                .sum::<usize>(),
            seconds = started.elapsed().as_secs_f64(),
            "collected on the driver"
        );
        inputs.tables.insert(input.clone(), batches);
    }
    let out = tokio::task::block_in_place(|| model.run(&inputs))?;
    let rows = out
        .tables
        .first()
        .map(|(_, b)| b.iter().map(|b| b.num_rows() as u64).sum());
    Ok((out, rows))
}

/// Materialises a model's output tables in the scratch space and registers them.
pub(super) async fn register_model_outputs(
    ctx: &SessionContext,
    node: &ModelNode,
    out: &ModelOutputs,
    scratch: &Location,
) -> Result<()> {
    for (table, batches) in &out.tables {
        let schema = batches.first().map(|b| b.schema()).ok_or_else(|| {
            Error::Internal(format!("model {} wrote no batches for {table}", node.name))
        })?;
        let loc = scratch.join(&format!("models/{table}"));
        crate::publish::write_parquet(
            &loc,
            &loc.path_of("part-00000.parquet"),
            batches,
            Arc::clone(&schema),
        )
        .await?;
        ctx.register_parquet(
            table.as_str(),
            loc.url(),
            ParquetReadOptions::default().schema(&schema),
        )
        .await
        .context(|| format!("registering {table}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::prelude::SessionConfig;

    #[tokio::test]
    async fn a_memory_table_keeps_every_row_in_batch_sized_slices_over_every_partition() {
        let ctx = SessionContext::new_with_config(
            SessionConfig::new()
                .with_batch_size(1000)
                .with_target_partitions(3),
        );
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let batch = |from: i64, n: i64| {
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(Int64Array::from_iter_values(from..from + n))],
            )
            .unwrap()
        };
        let table = memory_table(
            &ctx,
            Arc::clone(&schema),
            vec![batch(0, 2500), batch(2500, 700)],
        )
        .unwrap();
        let sizes: Vec<Vec<usize>> = table
            .batches
            .iter()
            .map(|p| p.try_read().unwrap().iter().map(|b| b.num_rows()).collect())
            .collect();
        // slices of 1000, 1000, 500 (first batch), 700 (second), dealt round-robin
        assert_eq!(sizes, vec![vec![1000, 700], vec![1000], vec![500]]);
        ctx.register_table("t", Arc::new(table)).unwrap();
        let out = ctx
            .sql("SELECT count(*), count(DISTINCT x), min(x), max(x) FROM t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let values: Vec<i64> = (0..4)
            .map(|i| {
                out[0]
                    .column(i)
                    .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                    .value(0)
            })
            .collect();
        assert_eq!(values, vec![3200, 3200, 0, 3199]);
    }
}
