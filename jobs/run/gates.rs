//! The run's gates, in the order they run: the quality step after the staging layer
//! (reconciliation, quarantine, the sources gate) and the shrink gate before the publish
//! ([`crate::quality::gate`] decides; this module gathers what it decides on).

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::execution::context::SessionContext;
use datafusion::prelude::ParquetReadOptions;

use super::RunOptions;
use super::record::RunResults;
use super::steps::timed;
use crate::error::{EngineContext, Error, Result};
use crate::extract::{self, LandedSource};
use crate::job::Job;
use crate::layout::Layout;
use crate::period::Period;
use crate::publish;
use crate::quality::gate;
use crate::storage::Location;

/// The quality step: reconciles every source, materialises the quarantine, and runs the sources
/// gate (too many rows quarantined, no orders up to the as-of date, a period beyond the data).
pub(super) async fn quality(
    job: &Job,
    opts: &RunOptions,
    ctx: &SessionContext,
    scratch: &Location,
    landed: &[LandedSource],
    staging_stages: &[(String, Option<String>)],
    results: &mut RunResults,
) -> Result<()> {
    let (batches, sources) = timed(results, "quarantine", "quality", async {
        let (batches, sources) = crate::quality::reconcile::reconcile(
            ctx,
            scratch,
            landed,
            staging_stages,
            &opts.period,
        )
        .await?;
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        Ok(((batches, sources), Some(rows)))
    })
    .await?;
    results.sources = sources;
    if let Some(bad) = results.sources.iter().find(|s| !s.reconciled) {
        return Err(Error::Internal(format!(
            "source `{}` does not reconcile: {} rows read, {} loaded, {} quarantined; rows would be lost silently",
            bad.name,
            bad.rows_read,
            bad.loaded,
            bad.quarantined.values().sum::<u64>()
        )));
    }
    // materialised like every other table, so that a distributed engine can read it too
    let qschema = extract::quarantine_schema();
    let qloc = scratch.join("stages/quarantine");
    publish::write_parquet(
        &qloc,
        &qloc.path_of("part-00000.parquet"),
        &batches,
        Arc::clone(&qschema),
    )
    .await?;
    ctx.register_parquet(
        "quarantine",
        qloc.url(),
        ParquetReadOptions::default().schema(&qschema),
    )
    .await
    .context(|| "registering the quarantine table".into())?;

    let span = order_span(ctx, &opts.period).await?;
    let counts: Vec<gate::SourceCounts<'_>> = results
        .sources
        .iter()
        .map(|s| {
            let src = job.source(&s.name).map(|s| &s.config);
            gate::SourceCounts {
                name: &s.name,
                required: src.is_some_and(|c| c.required),
                max_share: src
                    .and_then(|c| c.max_quarantined_share)
                    .unwrap_or(job.spec.gate.max_quarantined_share),
                rows_read: s.rows_read,
                quarantined: &s.quarantined,
            }
        })
        .collect();
    let (outcomes, refused) =
        gate::sources(&job.spec.gate, &counts, span, &opts.period, opts.allow);
    for o in outcomes.iter().filter(|o| o.status == "warn") {
        results
            .warnings
            .push(format!("{} (allowed by --allow-beyond-data)", o.detail));
    }
    results.gate.extend(outcomes);
    refused
}

/// The valid orders' dates (from `stg_orders`): how many up to the as-of date, the newest and
/// the oldest.
pub(super) async fn order_span(ctx: &SessionContext, period: &Period) -> Result<gate::OrderSpan> {
    if !ctx.table_exist("stg_orders").unwrap_or(false) {
        return Ok(gate::OrderSpan {
            up_to_as_of: 1,
            ..Default::default()
        });
    }
    let sql = format!(
        "SELECT CAST(count(CASE WHEN order_date <= DATE '{}' THEN 1 END) AS BIGINT), CAST(max(order_date) AS VARCHAR), CAST(min(order_date) AS VARCHAR) FROM stg_orders",
        period.as_of
    );
    let batches = ctx
        .sql(&sql)
        .await
        .context(|| "reading the orders' dates".into())?
        .collect()
        .await
        .context(|| "reading the orders' dates".into())?;
    let mut span = gate::OrderSpan::default();
    if let Some(b) = batches.iter().find(|b| b.num_rows() > 0) {
        let n = datafusion::arrow::compute::cast(b.column(0), &DataType::Int64)
            .map_err(|e| Error::Internal(format!("orders' dates: {e}")))?;
        let n = n.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        span.up_to_as_of = if n.is_null(0) { 0 } else { n.value(0) as u64 };
        let date = |i: usize| {
            let c = datafusion::arrow::compute::cast(b.column(i), &DataType::Utf8).ok()?;
            let c = c.as_string_opt::<i32>()?;
            (!c.is_null(0))
                .then(|| chrono::NaiveDate::parse_from_str(c.value(0), "%Y-%m-%d").ok())
                .flatten()
        };
        span.newest = date(1);
        span.oldest = date(2);
    }
    Ok(span)
}

/// The shrink gate: compares every staged partition with the one published now.
pub(super) async fn shrink(
    job: &Job,
    opts: &RunOptions,
    layout: &Layout,
    ctx: &SessionContext,
    staged: &[publish::StagedPartition],
    new_revenue: Option<f64>,
    results: &mut RunResults,
) -> Result<()> {
    let mut sizes = Vec::new();
    let mut old_revenue = None;
    for p in staged {
        let Some(out) = job.output(&p.table) else {
            continue;
        };
        if out.config.may_be_empty {
            continue;
        }
        let Some(part) =
            crate::publish::published::partition(layout, &p.table, &opts.period).await?
        else {
            continue;
        };
        let loc = part.location.clone();
        let schema = Arc::clone(&out.schema);
        let name = format!("published_{}", p.table);
        part.register(ctx, &name, Some(&schema)).await?;
        let df = ctx.table(name.as_str()).await.context(|| name.clone())?;
        let old_rows = df
            .count()
            .await
            .map_err(|e| super::previous::damaged_partition(&loc, &e.to_string()))?;
        sizes.push((p.table.clone(), p.rows as f64, old_rows as f64, "rows"));
        if p.table == "customer_features" {
            let b = ctx
                .sql(&format!("SELECT CAST(sum(revenue) AS DOUBLE) FROM {name}"))
                .await
                .context(|| name.clone())?
                .collect()
                .await
                .map_err(|e| super::previous::damaged_partition(&loc, &e.to_string()))?;
            old_revenue = b.iter().find(|b| b.num_rows() > 0).and_then(|b| {
                let c = datafusion::arrow::compute::cast(b.column(0), &DataType::Float64).ok()?;
                let c = c.as_primitive_opt::<datafusion::arrow::datatypes::Float64Type>()?;
                (!c.is_null(0)).then(|| c.value(0))
            });
        }
        ctx.deregister_table(name.as_str())
            .context(|| name.clone())?;
    }
    let mut rows: Vec<gate::TableSize<'_>> = sizes
        .iter()
        .map(|(t, new, old, m)| gate::TableSize {
            table: t,
            new: *new,
            old: Some(*old),
            measure: m,
        })
        .collect();
    if let (Some(new), Some(old)) = (new_revenue, old_revenue) {
        rows.push(gate::TableSize {
            table: "customer_features",
            new,
            old: Some(old),
            measure: "revenue",
        });
    }
    let (outcomes, refused) = gate::shrink(&job.spec.gate, &rows, &opts.period, opts.allow.shrink);
    for o in outcomes.iter().filter(|o| o.status == "warn") {
        results
            .warnings
            .push(format!("{} (allowed by --allow-shrink)", o.detail));
    }
    results.gate.extend(outcomes);
    refused
}
