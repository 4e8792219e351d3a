//! One run of one period: extract -> staging SQL -> quality (reconciliation, quarantine, the
//! sources gate) -> the other SQL stages and models in dependency order -> checks -> staged
//! outputs -> the shrink gate -> publish, all tables together.
//!
//! Safety, in order: a run id names one period (`_runs/<run_id>/period.json`); the period's
//! lock is held from start to end; each attempt of a run id works in its own scratch and
//! staging, so a retry never reads what a dead attempt left; an interrupted earlier publish of
//! the period is finished first ([`crate::publish::recover`]); nothing is published unless every
//! gate and error check passed. The record of every attempt that held the lock is written at
//! every exit (`<warehouse>/_runs/<run_id>/run_results.json`).

pub mod plan;
pub mod record;
mod steps;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::execution::context::SessionContext;
use datafusion::prelude::{ParquetReadOptions, SessionConfig};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use crate::error::{EngineContext, Error, Result, StoreContext};
use crate::extract::{self, LandedSource};
use crate::job::Job;
use crate::layout::{Attempt, Layout};
use crate::models;
use crate::period::Period;
use crate::publish::{self, PartitionWriter, lock::PeriodLock};
use crate::quality::gate::{self, Allowances};
use crate::stages::{Layer, graph::Step};
use crate::storage::Location;

pub use plan::{plan, sql_params};
pub use record::{RunError, RunResults, SourceResult, Status, StepResult};
use steps::timed;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The period to compute and publish.
    pub period: Period,
    /// The run id (also stamped on every row). An orchestrator's retry may reuse it: each
    /// attempt is kept apart.
    pub run_id: String,
    /// Publish a partition even if it has no rows.
    pub allow_empty: bool,
    /// The publish gates the command line opens (`--allow-shrink`, ...).
    pub allow: Allowances,
    /// The command line, for run results.
    pub command: Vec<String>,
    /// The job definition's text, for the config hash.
    pub config_text: String,
    /// Set by a backfill when the previous period is computed by the same backfill: the run
    /// waits for it right before it first reads `previous.*` (the order rule, README
    /// "Orchestration and backfills"). None: read whatever is published.
    pub previous_ready: Option<PreviousGate>,
}

/// How the previous period's run of the same backfill ended: `None` while it runs,
/// `Some(true)` once it published, `Some(false)` if it failed.
pub type PreviousGate = tokio::sync::watch::Receiver<Option<bool>>;

/// A fresh run id: UTC time plus a random suffix (metadata only; never used in computations).
pub fn new_run_id() -> String {
    let suffix: u32 = rand::random();
    format!(
        "{}-{:08x}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        suffix
    )
}

fn new_results(job: &Job, opts: &RunOptions) -> RunResults {
    RunResults {
        run_id: opts.run_id.clone(),
        attempt: 0,
        status: Status::Running,
        command: opts.command.clone(),
        period: opts.period.label(),
        as_of: opts.period.as_of.to_string(),
        config_file: job.file(),
        config_hash: job.hash(&opts.config_text),
        versions: [
            ("crm_pipeline", env!("CARGO_PKG_VERSION")),
            ("datafusion", datafusion::DATAFUSION_VERSION),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        seconds: 0.0,
        sources: Vec::new(),
        steps: Vec::new(),
        models: BTreeMap::new(),
        previous_run_id: None,
        gate: Vec::new(),
        checks: Vec::new(),
        outputs: Vec::new(),
        publish: Default::default(),
        spilled: Default::default(),
        warnings: Vec::new(),
        error: None,
        run_results: String::new(),
    }
}

/// Runs one period end to end. The returned results are also written to the warehouse (for
/// every attempt that got as far as holding the period's lock); on failure the error is
/// returned alongside them.
pub async fn run(job: &Job, opts: &RunOptions) -> (RunResults, Result<()>) {
    let started = Instant::now();
    let mut results = new_results(job, opts);
    let layout = job.layout.clone();
    results.run_results = layout.url_of(&layout.run_record(&opts.run_id));
    let mut attempt = Attempt {
        run_id: opts.run_id.clone(),
        number: 0,
    };
    let outcome = execute(job, opts, &layout, &mut attempt, &mut results)
        .await
        .map_err(|e| crate::engine::explain_out_of_memory(&job.engine, &job.file(), e));
    results.seconds = started.elapsed().as_secs_f64();
    results.finish(&outcome);
    if attempt.number == 0 {
        // refused before it held the period (the run id belongs to another period, or an
        // attempt of the same run id holds the lock): no record, it would overwrite theirs
        return (results, outcome);
    }
    cleanup(&layout, &attempt, &opts.period).await;
    let written = record::write(&layout, &attempt, &results).await;
    let outcome = match (outcome, written) {
        (Ok(()), Err(e)) => Err(e),
        (o, _) => o,
    };
    (results, outcome)
}

/// Binds the run id to its period: `_runs/<run_id>/period.json`, created if absent. A run id
/// used for another period is refused (a run id names one period's run; an orchestrator's retry
/// of the same period may reuse it).
async fn claim_run_id(layout: &Layout, run_id: &str, period: &Period) -> Result<()> {
    let path = layout.run_claim(run_id);
    let url = layout.url_of(&path);
    let store = layout.warehouse().store();
    let body = serde_json::json!({ "period": period.label() }).to_string();
    match publish::lock::create(store.as_ref(), &path, body.into_bytes(), &url).await {
        Ok(()) => return Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => {}
        Err(e) => return Err(Error::store(&url, e)),
    }
    let bytes = store.get(&path).await.at(&url)?.bytes().await.at(&url)?;
    let claimed = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("period").and_then(|p| p.as_str()).map(String::from))
        .unwrap_or_default();
    if claimed == period.label() {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "run id `{run_id}` was already used for period {claimed}; a run id names one period's run (a retry of the same period may reuse it): pass another --run-id for period {period}"
        )))
    }
}

/// The next attempt number of a run id: one more than the attempts recorded so far. Called
/// holding the period's lock, which serialises the attempts of a run id.
async fn next_attempt(layout: &Layout, run_id: &str) -> Result<Attempt> {
    let folder = layout.attempts(run_id);
    let listed: Vec<object_store::ObjectMeta> = folder
        .store()
        .list(Some(folder.prefix()))
        .try_collect()
        .await
        .or_else(|e| match e {
            object_store::Error::NotFound { .. } => Ok(Vec::new()),
            e => Err(Error::store(&folder, e)),
        })?;
    let last = listed
        .iter()
        .filter_map(|m| {
            m.location
                .filename()?
                .strip_suffix(".json")?
                .parse::<u32>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    Ok(Attempt {
        run_id: run_id.to_string(),
        number: last + 1,
    })
}

/// Claims the run id, holds the period's lock around the attempt, and runs it.
async fn execute(
    job: &Job,
    opts: &RunOptions,
    layout: &Layout,
    attempt: &mut Attempt,
    results: &mut RunResults,
) -> Result<()> {
    claim_run_id(layout, &opts.run_id, &opts.period).await?;
    let lock = match PeriodLock::acquire(
        layout.warehouse(),
        &opts.period,
        &opts.run_id,
        job.spec.lock_stale_after_minutes,
    )
    .await
    {
        Ok(lock) => lock,
        Err(e) => {
            // refused by another run: record this attempt, unless the holder is an attempt of
            // this very run id (its record must not be overwritten)
            if matches!(&e, Error::PeriodLocked { holder, .. } if *holder != opts.run_id) {
                *attempt = next_attempt(layout, &opts.run_id).await?;
                results.attempt = attempt.number;
            }
            return Err(e);
        }
    };
    let outcome = locked(job, opts, layout, attempt, results).await;
    lock.release().await;
    outcome
}

/// Everything done holding the period's lock.
async fn locked(
    job: &Job,
    opts: &RunOptions,
    layout: &Layout,
    attempt: &mut Attempt,
    results: &mut RunResults,
) -> Result<()> {
    *attempt = next_attempt(layout, &opts.run_id).await?;
    results.attempt = attempt.number;
    record::write(layout, attempt, results).await?;
    if attempt.number > 1 {
        tracing::info!(
            run_id = opts.run_id,
            attempt = attempt.number,
            "a retry of this run id: it works in its own scratch and staging"
        );
    }
    // an earlier publish of this period that was interrupted is finished first
    if let Some(what) = publish::recover(layout, &opts.period).await? {
        results.publish.recovered = Some(what.clone());
        results.warnings.push(what);
    }
    remove_dead_attempts(layout, attempt).await;
    let tz = job.time_zone;
    // the wall clock decides only whether the period has closed; it never enters a computation
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    let (outcome, open) = gate::open_period(&opts.period, today, opts.allow.open_period);
    if outcome.status == "warn" {
        results.warnings.push(format!(
            "{} (allowed by --allow-open-period)",
            outcome.detail
        ));
    }
    results.gate.push(outcome);
    open?;
    let (sc, runtime, spills) = crate::engine::engine_runtime(&job.engine, &job.file())?;
    let outcome = execute_locked(job, opts, layout, attempt, (sc, runtime), results).await;
    results.spilled = spills.summary();
    outcome
}

/// Removes what earlier, dead attempts of this run id left in scratch and staging (the period's
/// lock is held and the run id belongs to this period, so no other attempt of it is alive).
async fn remove_dead_attempts(layout: &Layout, attempt: &Attempt) {
    for n in 1..attempt.number {
        let dead = Attempt {
            run_id: attempt.run_id.clone(),
            number: n,
        };
        for loc in [layout.staging(&dead), layout.scratch(&dead)] {
            if let Err(e) = publish::remove_all(&loc).await {
                tracing::warn!("could not remove {loc}: {e}");
            }
        }
    }
}

/// Removes the attempt's staging and scratch space, whatever the outcome (best effort: a
/// failure to clean up never fails the run). Staging is kept when a publish intent of this
/// attempt is left: the next run of the period needs it to finish the rollback.
async fn cleanup(layout: &Layout, attempt: &Attempt, period: &Period) {
    let intent_left = publish::swap::read_intent(layout, period)
        .await
        .ok()
        .flatten()
        .is_some_and(|i| i.run_id == attempt.run_id && i.attempt == attempt.number);
    let mut doomed = vec![layout.scratch(attempt)];
    if !intent_left {
        doomed.push(layout.staging(attempt));
    }
    for loc in doomed {
        if let Err(e) = publish::remove_all(&loc).await {
            tracing::warn!("could not remove {loc}: {e}");
        }
    }
    for loc in [
        layout.run_staging(&attempt.run_id),
        layout.staging_root(),
        layout.run_scratch(&attempt.run_id),
        layout.scratch_root().clone(),
    ] {
        publish::remove_if_empty(&loc);
    }
}

async fn execute_locked(
    job: &Job,
    opts: &RunOptions,
    layout: &Layout,
    attempt: &Attempt,
    engine: (
        SessionConfig,
        Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    ),
    results: &mut RunResults,
) -> Result<()> {
    let scratch = layout.scratch(attempt);
    let plan = plan(job)?;
    let ctx = crate::engine::session(&job.engine, engine, &[layout.warehouse(), &scratch]).await?;
    let catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| Error::Internal("default catalog missing".into()))?;
    for schema in ["raw", "previous"] {
        catalog
            .register_schema(schema, Arc::new(MemorySchemaProvider::new()))
            .context(|| format!("registering schema {schema}"))?;
    }

    // 1. extract
    let landed: Vec<LandedSource> = timed(results, "extract", "extract", async {
        let l = extract::land_sources(&job.sources, job.time_zone, &scratch).await?;
        let rows = l.iter().map(|s| s.rows_read).sum();
        Ok((l, Some(rows)))
    })
    .await?;
    let mut present = BTreeMap::new();
    for src in crate::contract::SOURCES {
        let landed_src = landed.iter().find(|l| l.name == src.name);
        present.insert(src.name.to_string(), landed_src.is_some_and(|l| l.present));
        let schema = extract::landing_schema(src);
        let name = format!("raw.{}", src.name);
        match landed_src {
            Some(l) if !l.landed.is_empty() => {
                ctx.register_parquet(
                    name.as_str(),
                    scratch.join(&format!("landing/{}", src.name)).url(),
                    ParquetReadOptions::default().schema(&schema),
                )
                .await
                .context(|| format!("registering {name}"))?;
            }
            _ => steps::register_empty(&ctx, &name, schema)?,
        }
    }
    for l in &landed {
        results
            .warnings
            .extend(l.warnings.iter().map(|w| format!("{}: {w}", l.name)));
    }

    // 2. SQL stages and models in plan order; the quality step right after the staging layer
    let params = sql_params(job, &opts.period, &present);
    let registry = models::registry(&job.spec.models);
    let mut staging_stages: Vec<(String, Option<String>)> = Vec::new();
    let mut quality_done = false;
    // previous.* is registered just before the first step that reads it, so a backfill's
    // period overlaps its extract and stages with its predecessor's run
    let mut previous_registered = false;
    for step in &plan.steps {
        let staging = matches!(step, Step::Sql(s) if s.layer == Layer::Staging);
        if !staging && !quality_done {
            quality(job, opts, &ctx, &scratch, &landed, &staging_stages, results).await?;
            quality_done = true;
        }
        if !previous_registered && step.inputs().iter().any(|i| i.starts_with("previous.")) {
            register_previous(job, opts, layout, &ctx, results).await?;
            previous_registered = true;
        }
        match step {
            Step::Sql(stage) => {
                let kind = step.kind();
                let split = timed(
                    results,
                    &stage.name,
                    &kind,
                    steps::sql_stage(&ctx, stage, &params, &scratch, &opts.period.label()),
                )
                .await?;
                if split && stage.layer == Layer::Staging {
                    let source = stage
                        .refs
                        .iter()
                        .filter_map(|r| r.strip_prefix("raw."))
                        .next()
                        .map(String::from);
                    staging_stages.push((stage.name.clone(), source));
                }
            }
            Step::Model(node) => {
                let model = registry
                    .iter()
                    .find(|m| m.name() == node.name)
                    .ok_or_else(|| {
                        Error::Internal(format!("model {} not registered", node.name))
                    })?;
                let out = timed(
                    results,
                    &node.name,
                    "model",
                    steps::model(&ctx, node, model.as_ref()),
                )
                .await?;
                steps::register_model_outputs(&ctx, node, &out, &scratch).await?;
                results.models.insert(node.name.clone(), out.report);
                results.warnings.extend(
                    out.warnings
                        .into_iter()
                        .map(|w| format!("{}: {w}", node.name)),
                );
            }
        }
    }
    if !quality_done {
        quality(job, opts, &ctx, &scratch, &landed, &staging_stages, results).await?;
    }
    if !previous_registered {
        register_previous(job, opts, layout, &ctx, results).await?;
    }

    // 4. data-quality checks: an error-severity failure publishes nothing
    let mut outcomes = Vec::new();
    let file = job.file();
    let checks = &job.spec.checks;
    let checked = timed(results, "checks", "quality", async {
        let r =
            crate::quality::checks::run_checks(&ctx, checks, &opts.period, &file, &mut outcomes)
                .await;
        r.map(|()| ((), Some(checks.len() as u64)))
    })
    .await;
    results.warnings.extend(
        outcomes
            .iter()
            .filter(|o| o.status == "warn")
            .map(|o| format!("check {}: {}", o.name, o.detail)),
    );
    results.checks.extend(outcomes);
    checked?;

    // 5. stage every output, pass the shrink gate, then publish them together
    let label = opts.period.label();
    let mut staged = Vec::new();
    let mut new_revenue = None;
    for out in job.enabled_outputs() {
        let table = out.name.as_str();
        let (part, revenue) = timed(results, &format!("write {table}"), "publish", async {
            let batches = ctx
                .table(out.config.from.as_str())
                .await
                .map_err(|_| {
                    job.err(
                        &format!("outputs.{table}.from"),
                        format!("`{}` is not a stage or model table", out.config.from),
                    )
                })?
                .collect()
                .await
                .context(|| format!("computing output {table}"))?;
            let revenue = (table == "customer_features").then(|| sum_column(&batches, "revenue"));
            let part = PartitionWriter::new(layout, attempt, table, &opts.period)
                .with_columns(out.columns.clone())
                .with_key(out.config.key.clone())
                .defined_in(job.file())
                .stage(&batches)
                .await?;
            let rows = part.rows;
            Ok(((part, revenue.flatten()), Some(rows)))
        })
        .await?;
        if revenue.is_some() {
            new_revenue = revenue;
        }
        if part.rows == 0 && !opts.allow_empty && !out.config.may_be_empty {
            return Err(Error::DataQuality(format!(
                "output `{table}` for period {label} is empty; nothing was published (pass --allow-empty to publish empty partitions)"
            )));
        }
        if !part.dropped_columns.is_empty() {
            tracing::debug!(table, dropped = ?part.dropped_columns, "columns not in the contract were not written");
        }
        staged.push(part);
    }
    shrink_gate(job, opts, layout, &ctx, &staged, new_revenue, results).await?;
    let mut log = std::mem::take(&mut results.publish);
    let published = timed(results, "publish", "publish", async {
        publish::publish(layout, attempt, &opts.period, &staged, &mut log).await?;
        Ok(((), Some(staged.iter().map(|p| p.rows).sum())))
    })
    .await;
    results.publish = log;
    published?;
    results.outputs = staged;
    Ok(())
}

/// The sum of a numeric column over batches, as f64 (None when the column is absent).
fn sum_column(batches: &[RecordBatch], column: &str) -> Option<f64> {
    let mut total = 0.0;
    for b in batches {
        let c = b.column_by_name(column)?;
        let c = datafusion::arrow::compute::cast(c, &DataType::Float64).ok()?;
        let c = c.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        total += c.iter().flatten().sum::<f64>();
    }
    Some(total)
}

/// The quality step: reconciles every source, materialises the quarantine, and runs the sources
/// gate (too many rows quarantined, no orders up to the as-of date, a period beyond the data).
async fn quality(
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
async fn order_span(ctx: &SessionContext, period: &Period) -> Result<gate::OrderSpan> {
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
async fn shrink_gate(
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
        let loc = layout.partition(&p.table, &opts.period);
        if !has_files(&loc).await {
            continue;
        }
        let schema = Arc::clone(&out.schema);
        let name = format!("published_{}", p.table);
        ctx.register_parquet(
            name.as_str(),
            loc.url(),
            ParquetReadOptions::default().schema(&schema),
        )
        .await
        .context(|| format!("reading the published partition {loc}"))?;
        let df = ctx.table(name.as_str()).await.context(|| name.clone())?;
        let old_rows = df
            .count()
            .await
            .map_err(|e| damaged_partition(&loc, &e.to_string()))?;
        sizes.push((p.table.clone(), p.rows as f64, old_rows as f64, "rows"));
        if p.table == "customer_features" {
            let b = ctx
                .sql(&format!("SELECT CAST(sum(revenue) AS DOUBLE) FROM {name}"))
                .await
                .context(|| name.clone())?
                .collect()
                .await
                .map_err(|e| damaged_partition(&loc, &e.to_string()))?;
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

async fn has_files(loc: &Location) -> bool {
    loc.store()
        .list_with_delimiter(Some(loc.prefix()))
        .await
        .map(|l| !l.objects.is_empty())
        .unwrap_or(false)
}

fn damaged_partition(loc: &Location, what: &str) -> Error {
    Error::DataQuality(format!(
        "the published partition {loc} cannot be read ({what}): it is damaged. Nothing was published; rerun the period it belongs to (crm-pipeline run --period <P> --allow-shrink) to replace it"
    ))
}

/// Checks that every Parquet file of a published partition has a readable footer; a damaged
/// one is a data error naming the file.
async fn check_footers(loc: &Location, period: &str, table: &str) -> Result<()> {
    use datafusion::parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
    let store = loc.store();
    let files: Vec<object_store::ObjectMeta> =
        store.list(Some(loc.prefix())).try_collect().await.at(loc)?;
    for f in files {
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
async fn register_previous(
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
        let loc = layout.partition(table, &prev);
        let name = format!("previous.{table}");
        if has_files(&loc).await {
            check_footers(&loc, &prev_label, table).await?;
            ctx.register_parquet(
                name.as_str(),
                loc.url(),
                ParquetReadOptions::default().schema(&schema),
            )
            .await
            .context(|| format!("registering {name}"))?;
        } else {
            steps::register_empty(ctx, &name, schema)?;
        }
    }
    results.previous_run_id = previous_run_id(ctx, job).await?;
    Ok(())
}

/// The run id of the previous period's published partitions (one run publishes a period's
/// tables together), read from its smallest enabled output.
async fn previous_run_id(ctx: &SessionContext, job: &Job) -> Result<Option<String>> {
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
