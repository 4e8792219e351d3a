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

mod attempt;
mod gates;
pub mod plan;
mod previous;
pub use crate::record;
mod steps;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::prelude::{ParquetReadOptions, SessionConfig};

use crate::error::{EngineContext, Error, Result};
use crate::extract::{self, LandedSource};
use crate::job::Job;
use crate::layout::{Attempt, Layout};
use crate::models;
use crate::period::Period;
use crate::publish::{self, PartitionWriter, lock::PeriodLock};
use crate::quality::gate::{self, Allowances};
use crate::stages::{Layer, graph::Step};

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
    // every log line of the run carries its run id and period
    let span = tracing::span!(
        tracing::Level::ERROR,
        "run",
        run_id = %opts.run_id,
        period = %opts.period
    );
    let outcome = tracing::Instrument::instrument(
        execute(job, opts, &layout, &mut attempt, &mut results),
        span,
    )
    .await
    .map_err(|e| crate::engine::explain_out_of_memory(&job.engine, &job.file(), e));
    results.seconds = started.elapsed().as_secs_f64();
    results.finish(&outcome);
    if attempt.number == 0 {
        // refused before it held the period (the run id belongs to another period, or an
        // attempt of the same run id holds the lock): no record, it would overwrite theirs
        return (results, outcome);
    }
    attempt::cleanup(&layout, &attempt, &opts.period).await;
    let written = record::write(&layout, &attempt, &results).await;
    let outcome = match (outcome, written) {
        (Ok(()), Err(e)) => Err(e),
        (o, _) => o,
    };
    (results, outcome)
}

/// Claims the run id, holds the period's lock around the attempt, and runs it.
async fn execute(
    job: &Job,
    opts: &RunOptions,
    layout: &Layout,
    attempt: &mut Attempt,
    results: &mut RunResults,
) -> Result<()> {
    attempt::claim_run_id(layout, &opts.run_id, &opts.period).await?;
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
                *attempt = attempt::next_attempt(layout, &opts.run_id).await?;
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
    *attempt = attempt::next_attempt(layout, &opts.run_id).await?;
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
    attempt::remove_dead_attempts(layout, attempt).await;
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
    // extract, every step of the plan, the quality step, checks, one write per output, publish
    let total_steps = plan.steps.len() + 4 + job.enabled_outputs().count();
    tracing::info!(target: crate::logging::STEP_TARGET, total_steps, "plan");
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
    let landing = if job.engine.engine == crate::engine::Engine::Local {
        extract::Landing::Memory
    } else {
        extract::Landing::Parquet
    };
    let mut landed: Vec<LandedSource> = timed(results, "extract", "extract", async {
        let l = extract::land_sources(&job.sources, job.time_zone, &scratch, landing).await?;
        let rows = l.iter().map(|s| s.rows_read).sum();
        Ok((l, Some(rows)))
    })
    .await?;
    let mut present = BTreeMap::new();
    for src in crate::contract::SOURCES {
        let landed_src = landed.iter_mut().find(|l| l.name == src.name);
        present.insert(
            src.name.to_string(),
            landed_src.as_ref().is_some_and(|l| l.present),
        );
        let schema = extract::landing_schema(src);
        let name = format!("raw.{}", src.name);
        match landed_src {
            Some(l) if !l.batches.is_empty() => {
                let table = steps::memory_table(&ctx, schema, std::mem::take(&mut l.batches))
                    .context(|| format!("registering {name}"))?;
                ctx.register_table(name.as_str(), Arc::new(table))
                    .context(|| format!("registering {name}"))?;
            }
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
            gates::quality(job, opts, &ctx, &scratch, &landed, &staging_stages, results).await?;
            quality_done = true;
            // only staging stages read the extracts (the plan refuses others), and the
            // quarantine has taken the rejected rows' text: the landed rows are let go
            for src in crate::contract::SOURCES {
                ctx.deregister_table(format!("raw.{}", src.name).as_str())
                    .context(|| format!("releasing raw.{}", src.name))?;
            }
            steps::return_freed_memory();
        }
        if !previous_registered && step.inputs().iter().any(|i| i.starts_with("previous.")) {
            previous::register(job, opts, layout, &ctx, results).await?;
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
                    steps::model(&ctx, node, model.as_ref(), &opts.period),
                )
                .await
                .map_err(|e| job.name_file(e))?;
                steps::register_model_outputs(&ctx, node, &out, &scratch).await?;
                results.models.insert(node.name.clone(), out.report);
                results.warnings.extend(
                    out.warnings
                        .into_iter()
                        .map(|w| format!("{}: {w}", node.name)),
                );
                // the outputs are in the scratch space now; the model's working memory goes back
                drop(out.tables);
                steps::return_freed_memory();
            }
        }
    }
    if !quality_done {
        gates::quality(job, opts, &ctx, &scratch, &landed, &staging_stages, results).await?;
    }
    if !previous_registered {
        previous::register(job, opts, layout, &ctx, results).await?;
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
                .with_format(out.format)
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
    gates::shrink(job, opts, layout, &ctx, &staged, new_revenue, results).await?;
    let mut log = std::mem::take(&mut results.publish);
    let published = timed(results, "publish", "publish", async {
        publish::publish(layout, attempt, &opts.period, &staged, &mut log).await?;
        Ok(((), Some(staged.iter().map(|p| p.rows).sum())))
    })
    .await;
    for p in &mut staged {
        p.delta_version = log.delta_versions.get(&p.table).copied();
    }
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
