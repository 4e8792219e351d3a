//! One run: extract -> SQL stages and models in dependency order -> publish, for one period.
//! Always leaves `<warehouse>/_runs/<run_id>/run_results.json`, failures included.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::execution::context::SessionContext;
use datafusion::prelude::{ParquetReadOptions, SessionConfig};
use object_store::ObjectStoreExt;
use serde::Serialize;

use crate::config::PipelineConfig;
use crate::error::{EngineContext, Error, Result};
use crate::extract::{self, LandedSource};
use crate::models::{self, ModelInputs};
use crate::period::Period;
use crate::publish::{self, PartitionWriter, StagedPartition};
use crate::stages::{self, Layer, graph::Step};
use crate::storage::Location;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The period to compute and publish.
    pub period: Period,
    /// The run id (unique per run; also stamped on every row).
    pub run_id: String,
    /// Publish a partition even if it has no rows.
    pub allow_empty: bool,
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

/// Timing and rows of one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// Step name.
    pub name: String,
    /// `extract`, `sql/staging`, `model`, `publish`, ...
    pub kind: String,
    /// `success` or `failed`.
    pub status: String,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Rows produced (the clean rows for staging stages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// CPU seconds (user + system, all threads) spent in the step (Linux only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Peak resident memory of the process during the step, in MiB (Linux only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_mib: Option<f64>,
}

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

/// What happened to one source's rows.
#[derive(Debug, Clone, Serialize, Default)]
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
    /// Cells normalised (kept, changed), by kind.
    pub normalised: BTreeMap<String, u64>,
    /// Valid rows dated after the as-of date (left out of this period).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_as_of: Option<u64>,
    /// Whether rows_read = loaded + quarantined.
    pub reconciled: bool,
    /// Warnings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The error of a failed run.
#[derive(Debug, Clone, Serialize)]
pub struct RunError {
    /// Category (`config`, `data_quality`, `source_or_storage`, `internal`).
    pub category: String,
    /// The process exit code.
    pub exit_code: i32,
    /// The message.
    pub message: String,
}

/// The run results document (`run_results.json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunResults {
    /// Run id.
    pub run_id: String,
    /// `success` or `failed`.
    pub status: String,
    /// The command line.
    pub command: Vec<String>,
    /// Period label.
    pub period: String,
    /// As-of date.
    pub as_of: String,
    /// The job definition file.
    pub config_file: String,
    /// Hash of the job definition and overrides.
    pub config_hash: String,
    /// Versions of the pipeline and its engine.
    pub versions: BTreeMap<String, String>,
    /// When the run started (UTC, metadata).
    pub started_at: String,
    /// Total wall time in seconds.
    pub seconds: f64,
    /// Sources.
    pub sources: Vec<SourceResult>,
    /// Steps in run order.
    pub steps: Vec<StepResult>,
    /// Model reports.
    pub models: BTreeMap<String, serde_json::Value>,
    /// Every data-quality check's outcome.
    pub checks: Vec<crate::checks::CheckOutcome>,
    /// Partitions published.
    pub outputs: Vec<StagedPartition>,
    /// What the query engine spilled to disk under `engine.memory_limit`.
    pub spilled: crate::spill::SpillSummary,
    /// Warnings.
    pub warnings: Vec<String>,
    /// The error, when the run failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    /// Where this document is.
    pub run_results: String,
}

impl RunResults {
    /// The one-line JSON summary printed last on stdout.
    pub fn summary(&self) -> serde_json::Value {
        let customers = self
            .outputs
            .iter()
            .find(|o| o.table == "customer_features")
            .map(|o| o.rows);
        let quarantined: u64 = self
            .sources
            .iter()
            .flat_map(|s| s.quarantined.values())
            .sum();
        serde_json::json!({
            "run_id": self.run_id,
            "status": self.status,
            "period": self.period,
            "exit_code": self.error.as_ref().map(|e| e.exit_code).unwrap_or(0),
            "customers": customers,
            "partitions": self.outputs.len(),
            "quarantined": quarantined,
            "checks_failed": self.checks.iter().filter(|c| c.status == "fail").count(),
            "checks_warned": self.checks.iter().filter(|c| c.status == "warn").count(),
            "seconds": (self.seconds * 100.0).round() / 100.0,
            "run_results": self.run_results,
            "error": self.error.as_ref().map(|e| e.message.clone()),
        })
    }
}

/// Builds a local query engine session with the run's memory settings (see [`engine_runtime`]).
pub fn session(cfg: &PipelineConfig) -> Result<SessionContext> {
    let (sc, runtime, _) = engine_runtime(cfg)?;
    Ok(SessionContext::new_with_config_rt(sc, runtime))
}

/// The engine's configuration (shared by every engine, [`crate::engine::session_config`]) and
/// runtime: `engine.memory_limit` caps the engine's memory with a fair spill pool (spilling
/// operators share it and spill to disk beyond it), spill files go to `engine.spill_dir`
/// (default: the OS temp dir) and are counted for the run results.
pub fn engine_runtime(
    cfg: &PipelineConfig,
) -> Result<(
    SessionConfig,
    Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    Arc<crate::spill::SpillCounters>,
)> {
    use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
    use datafusion::execution::memory_pool::FairSpillPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    let mut sc = crate::engine::session_config(cfg);
    let knob = |key: &str, m: String| Error::config(cfg.file.display(), format!("`{key}`: {m}"));
    let mode = match &cfg.engine.spill_dir {
        Some(dir) => {
            let dir = cfg.resolve(dir).map_err(|m| knob("engine.spill_dir", m))?;
            std::fs::create_dir_all(&dir).map_err(|e| {
                knob(
                    "engine.spill_dir",
                    format!("cannot create the spill folder {dir}: {e}; it must be a writable local folder"),
                )
            })?;
            DiskManagerMode::Directories(vec![dir.into()])
        }
        None => DiskManagerMode::OsTmpDirectory,
    };
    let disk = DiskManagerBuilder::default()
        .with_mode(mode)
        .build()
        .map_err(|e| knob("engine.spill_dir", e.to_string()))?;
    let counters = Arc::new(crate::spill::SpillCounters::default());
    let counting = crate::spill::CountingSpillFiles::new(Arc::new(disk), Arc::clone(&counters));
    let mut runtime = RuntimeEnvBuilder::new().with_disk_manager_builder(
        DiskManagerBuilder::default().with_mode(DiskManagerMode::Custom(Arc::new(counting))),
    );
    if let Some(limit) = cfg
        .engine
        .memory_limit_bytes()
        .map_err(|m| knob("engine.memory_limit", m))?
    {
        runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(limit)));
        // each sort keeps this much back for merging its spills (default 10 MB); under a small
        // limit that reservation alone would exhaust it, so cap it at a share of the limit
        let partitions = sc.target_partitions().max(1);
        let execution = &mut sc.options_mut().execution;
        execution.sort_spill_reservation_bytes = execution
            .sort_spill_reservation_bytes
            .min(limit / (4 * partitions));
        // the Parquet writer buffers a row group and cannot spill: one column pass per file
        // and small row groups for the run's scratch files (published files are not written
        // by the engine)
        sc = sc.set_usize("datafusion.execution.minimum_parallel_output_files", 1);
        let parquet = &mut sc.options_mut().execution.parquet;
        parquet.allow_single_file_parallelism = false;
        parquet.max_row_group_size = parquet.max_row_group_size.min(65_536);
    }
    let runtime = runtime
        .build_arc()
        .map_err(|e| Error::Internal(format!("query engine runtime: {e}")))?;
    Ok((sc, runtime, counters))
}

/// An engine memory error made actionable: it names the stage and the knob. Operators that
/// cannot spill (e.g. a hash join's build side) fail this way when the limit is too small.
fn explain_out_of_memory(cfg: &PipelineConfig, e: Error) -> Error {
    let exhausted = match &e {
        Error::Stage { message, .. } => message.contains("Resources exhausted"),
        Error::Engine { source, .. } => {
            matches!(
                source.as_ref(),
                datafusion::error::DataFusionError::ResourcesExhausted(_)
            ) || source.to_string().contains("Resources exhausted")
        }
        _ => false,
    };
    if !exhausted {
        return e;
    }
    let limit = cfg.engine.memory_limit.as_deref().unwrap_or("unlimited");
    Error::config(
        cfg.file.display(),
        format!(
            "`engine.memory_limit`: the query engine ran out of memory (limit {limit}) in {e}. Raise engine.memory_limit, or lower engine.target_partitions; spilling operators (sorts, aggregations) spill to engine.spill_dir, but some (hash joins' build sides) must fit in memory"
        ),
    )
}

/// Runs one period end to end. The returned results are also written to the warehouse; on
/// failure the error is returned alongside them.
pub async fn run(cfg: &PipelineConfig, opts: &RunOptions) -> (RunResults, Result<()>) {
    let started = Instant::now();
    let warehouse_url = cfg.resolve(&cfg.warehouse).unwrap_or_default();
    let mut results = RunResults {
        run_id: opts.run_id.clone(),
        status: "running".into(),
        command: opts.command.clone(),
        period: opts.period.label(),
        as_of: opts.period.as_of.to_string(),
        config_file: cfg.file.display().to_string(),
        config_hash: cfg.hash(&opts.config_text),
        versions: [
            (
                "crm_pipeline".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
            (
                "datafusion".to_string(),
                datafusion::DATAFUSION_VERSION.to_string(),
            ),
        ]
        .into_iter()
        .collect(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        seconds: 0.0,
        sources: Vec::new(),
        steps: Vec::new(),
        models: BTreeMap::new(),
        checks: Vec::new(),
        outputs: Vec::new(),
        spilled: Default::default(),
        warnings: Vec::new(),
        error: None,
        run_results: format!(
            "{}/_runs/{}/run_results.json",
            warehouse_url.trim_end_matches('/'),
            opts.run_id
        ),
    };
    let outcome = execute(cfg, opts, &mut results)
        .await
        .map_err(|e| explain_out_of_memory(cfg, e));
    cleanup(cfg, &opts.run_id).await;
    results.seconds = started.elapsed().as_secs_f64();
    match &outcome {
        Ok(()) => results.status = "success".into(),
        Err(e) => {
            results.status = "failed".into();
            results.error = Some(RunError {
                category: e.category().into(),
                exit_code: e.exit_code(),
                message: e.to_string(),
            });
        }
    }
    let written = write_results(&warehouse_url, &results).await;
    let outcome = match (outcome, written) {
        (Ok(()), Err(e)) => Err(e),
        (o, _) => o,
    };
    (results, outcome)
}

async fn write_results(warehouse_url: &str, results: &RunResults) -> Result<()> {
    let wh = Location::parse(warehouse_url)?;
    let path = wh.path_of(&format!("_runs/{}/run_results.json", results.run_id));
    let body = serde_json::to_vec_pretty(results)
        .map_err(|e| Error::Internal(format!("run results: {e}")))?;
    wh.store()
        .put(&path, body.into())
        .await
        .map_err(|e| Error::storage(wh.url_of(&path), crate::storage::explain(&e)))?;
    Ok(())
}

/// Built-in SQL parameters plus `stages.params`.
pub fn sql_params(
    cfg: &PipelineConfig,
    period: &Period,
    present: &BTreeMap<String, bool>,
) -> BTreeMap<String, String> {
    let prev = period.previous();
    let mut p = BTreeMap::new();
    p.insert("as_of".into(), period.as_of.to_string());
    p.insert("period_start".into(), period.start.to_string());
    p.insert("period_end".into(), period.end.to_string());
    p.insert("period".into(), period.label());
    p.insert("previous_period_start".into(), prev.start.to_string());
    p.insert("previous_period_end".into(), prev.end.to_string());
    let holdout = cfg.models.clv.holdout_days;
    let calibration_end = period.as_of - chrono::Duration::days(i64::from(holdout));
    p.insert("holdout_days".into(), holdout.to_string());
    p.insert("calibration_end".into(), calibration_end.to_string());
    for s in extract::contract::SOURCES {
        let has = present.get(s.name).copied().unwrap_or(false);
        p.insert(
            format!("has_{}", s.name),
            if has { "TRUE" } else { "FALSE" }.into(),
        );
    }
    for (k, v) in &cfg.stages.params {
        let text = match v {
            serde_yaml_ng::Value::String(s) => s.clone(),
            serde_yaml_ng::Value::Number(n) => n.to_string(),
            serde_yaml_ng::Value::Bool(b) => {
                if *b {
                    "TRUE".into()
                } else {
                    "FALSE".into()
                }
            }
            other => serde_yaml_ng::to_string(other)
                .unwrap_or_default()
                .trim()
                .to_string(),
        };
        p.insert(k.clone(), text);
    }
    p
}

/// The plan of a job definition: SQL stages and models in run order.
pub fn plan(cfg: &PipelineConfig) -> Result<stages::graph::Plan> {
    let any_period = Period::containing(cfg.period.grain, chrono::NaiveDate::default());
    let all_present = extract::contract::SOURCES
        .iter()
        .map(|s| (s.name.to_string(), true))
        .collect();
    let sql = stages::discover(&cfg.sql_dir(), &sql_params(cfg, &any_period, &all_present))?;
    let models = models::registry(&cfg.models)
        .iter()
        .map(|m| m.node())
        .collect();
    let mut provided: Vec<String> = extract::contract::SOURCES
        .iter()
        .map(|s| format!("raw.{}", s.name))
        .collect();
    provided.extend(cfg.outputs.keys().map(|t| format!("previous.{t}")));
    stages::graph::plan(&provided, sql, models)
}

async fn timed<T>(
    results: &mut RunResults,
    name: &str,
    kind: &str,
    fut: impl std::future::Future<Output = Result<(T, Option<u64>)>>,
) -> Result<T> {
    let t = Instant::now();
    process::reset_peak();
    let cpu0 = process::cpu_seconds();
    let r = fut.await;
    let (status, rows) = match &r {
        Ok((_, rows)) => ("success", *rows),
        Err(_) => ("failed", None),
    };
    let cpu_seconds = match (cpu0, process::cpu_seconds()) {
        (Some(a), Some(b)) => Some(((b - a) * 100.0).round() / 100.0),
        _ => None,
    };
    results.steps.push(StepResult {
        name: name.into(),
        kind: kind.into(),
        status: status.into(),
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

/// Holds the period's lock around the run, so a second run of the same period fails fast.
async fn execute(cfg: &PipelineConfig, opts: &RunOptions, results: &mut RunResults) -> Result<()> {
    let warehouse = cfg
        .resolve(&cfg.warehouse)
        .map_err(|m| Error::config(cfg.file.display(), format!("warehouse: {m}")))?;
    let warehouse = Location::parse(&warehouse)?;
    let lock = publish::lock::PeriodLock::acquire(
        &warehouse,
        &opts.period.label(),
        &opts.run_id,
        cfg.lock_stale_after_minutes,
    )
    .await?;
    let outcome = match engine_runtime(cfg) {
        Ok((sc, runtime, spills)) => {
            let outcome = execute_locked(cfg, opts, &warehouse, (sc, runtime), results).await;
            results.spilled = spills.summary();
            outcome
        }
        Err(e) => Err(e),
    };
    lock.release().await;
    outcome
}

async fn execute_locked(
    cfg: &PipelineConfig,
    opts: &RunOptions,
    warehouse: &Location,
    engine: (
        SessionConfig,
        Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    ),
    results: &mut RunResults,
) -> Result<()> {
    let scratch = cfg
        .resolve(&cfg.scratch)
        .map_err(|m| Error::config(cfg.file.display(), format!("scratch: {m}")))?;
    let scratch = Location::parse(&scratch)?.join(&opts.run_id);
    let plan = plan(cfg)?;
    let ctx = crate::engine::session(cfg, engine, &[warehouse, &scratch]).await?;
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
        let l = extract::land_sources(cfg, &scratch).await?;
        let rows = l.iter().map(|s| s.rows_read).sum();
        Ok((l, Some(rows)))
    })
    .await?;
    let mut present = BTreeMap::new();
    for src in extract::contract::SOURCES {
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
            _ => register_empty(&ctx, &name, schema)?,
        }
    }
    for l in &landed {
        results
            .warnings
            .extend(l.warnings.iter().map(|w| format!("{}: {w}", l.name)));
    }

    // 2. SQL stages and models, in plan order
    let params = sql_params(cfg, &opts.period, &present);
    let registry = models::registry(&cfg.models);
    let mut staging_stages: Vec<(String, Option<String>)> = Vec::new();
    // previous.* is registered just before the first step that reads it, so a backfill's
    // period overlaps its extract and stages with its predecessor's run
    let mut previous_registered = false;
    for step in &plan.steps {
        if !previous_registered && step.inputs().iter().any(|i| i.starts_with("previous.")) {
            register_previous(cfg, opts, warehouse, &ctx, results).await?;
            previous_registered = true;
        }
        match step {
            Step::Sql(stage) => {
                let kind = step.kind();
                let split = timed(results, &stage.name, &kind, async {
                    let sql = stages::substitute_params(
                        &stage.template,
                        &params,
                        &stage.name,
                        &stage.file,
                    )?;
                    let stage_err = |e: datafusion::error::DataFusionError| Error::Stage {
                        stage: stage.name.clone(),
                        file: stage.file.display().to_string(),
                        message: e.to_string(),
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
                    ctx.register_parquet(
                        stored.as_str(),
                        loc.url(),
                        ParquetReadOptions::default().schema(&schema),
                    )
                    .await
                    .map_err(stage_err)?;
                    if split {
                        let clean = stages::clean_rows(&ctx, &stored).await.map_err(stage_err)?;
                        // a ViewTable (serialisable by every engine), not a DataFrame provider
                        let view = datafusion::catalog::view::ViewTable::new(
                            clean.into_unoptimized_plan(),
                            None,
                        );
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
                })
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
                let mut inputs = ModelInputs {
                    tables: BTreeMap::new(),
                };
                let out = timed(results, &node.name, "model", async {
                    for input in &node.inputs {
                        let batches = ctx
                            .table(input.as_str())
                            .await
                            .context(|| format!("model {} reading {input}", node.name))?
                            .collect()
                            .await
                            .context(|| format!("model {} reading {input}", node.name))?;
                        // models run on the driver: this is what it holds in memory
                        tracing::info!(
                            model = node.name,
                            input,
                            rows = batches.iter().map(|b| b.num_rows()).sum::<usize>(),
                            bytes = batches
                                .iter()
                                .map(|b| b.get_array_memory_size())
                                .sum::<usize>(),
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
                })
                .await?;
                for (table, batches) in &out.tables {
                    let schema = batches.first().map(|b| b.schema()).ok_or_else(|| {
                        Error::Internal(format!("model {} wrote no batches for {table}", node.name))
                    })?;
                    let loc = scratch.join(&format!("models/{table}"));
                    publish::write_parquet(
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
                results.models.insert(node.name.clone(), out.report);
                results.warnings.extend(
                    out.warnings
                        .into_iter()
                        .map(|w| format!("{}: {w}", node.name)),
                );
            }
        }
    }

    if !previous_registered {
        register_previous(cfg, opts, warehouse, &ctx, results).await?;
    }

    // 3. quarantine and reconciliation
    let quarantine = timed(results, "quarantine", "quality", async {
        let (batches, sources) =
            reconcile(&ctx, &scratch, &landed, &staging_stages, &opts.period).await?;
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        Ok(((batches, sources), Some(rows)))
    })
    .await?;
    let (quarantine_batches, sources) = quarantine;
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
        &quarantine_batches,
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

    // 4. data-quality checks: an error-severity failure publishes nothing
    let mut outcomes = Vec::new();
    let checked = timed(results, "checks", "quality", async {
        let r = crate::checks::run_checks(&ctx, &cfg.checks, &opts.period, &mut outcomes).await;
        r.map(|()| ((), Some(cfg.checks.len() as u64)))
    })
    .await;
    results.warnings.extend(
        outcomes
            .iter()
            .filter(|o| o.status == "warn")
            .map(|o| format!("check {}: {}", o.name, o.detail)),
    );
    results.checks = outcomes;
    checked?;

    // 5. stage outputs, then publish them together
    let label = opts.period.label();
    let mut staged = Vec::new();
    for (table, out) in cfg.outputs.iter().filter(|(_, o)| o.enabled) {
        let part = timed(results, &format!("write {table}"), "publish", async {
            let batches = ctx
                .table(out.from.as_str())
                .await
                .map_err(|_| {
                    Error::config(
                        cfg.file.display(),
                        format!(
                            "outputs.{table}.from: `{}` is not a stage or model table",
                            out.from
                        ),
                    )
                })?
                .collect()
                .await
                .context(|| format!("computing output {table}"))?;
            let part = PartitionWriter::new(warehouse, &opts.run_id, table, &label)
                .with_columns(out.column_types(table)?)
                .with_key(out.key.clone())
                .stage(&batches)
                .await?;
            let rows = part.rows;
            Ok((part, Some(rows)))
        })
        .await?;
        if part.rows == 0 && !opts.allow_empty && !out.may_be_empty {
            return Err(Error::DataQuality(format!(
                "output `{table}` for period {label} is empty; nothing was published (pass --allow-empty to publish empty partitions)"
            )));
        }
        if !part.dropped_columns.is_empty() {
            tracing::debug!(table, dropped = ?part.dropped_columns, "columns not in the contract were not written");
        }
        staged.push(part);
    }
    timed(results, "publish", "publish", async {
        publish::publish(warehouse, &opts.run_id, &staged).await?;
        Ok(((), Some(staged.iter().map(|p| p.rows).sum())))
    })
    .await?;
    results.outputs = staged;
    Ok(())
}

/// Registers the previous period's published partitions as `previous.<table>`, for growth and
/// migration (empty tables when none is published). In a backfill it first waits until the
/// previous period's run of the same backfill has finished; if that run failed, it reads what
/// was published before (possibly nothing) and records a warning.
async fn register_previous(
    cfg: &PipelineConfig,
    opts: &RunOptions,
    warehouse: &Location,
    ctx: &SessionContext,
    results: &mut RunResults,
) -> Result<()> {
    let prev_label = opts.period.previous().label();
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
    for (table, out) in &cfg.outputs {
        let schema = publish::contract_schema(&out.column_types(table)?);
        let loc = warehouse.join(&format!("{table}/period={prev_label}"));
        let exists = loc
            .store()
            .list_with_delimiter(Some(loc.prefix()))
            .await
            .map(|l| !l.objects.is_empty())
            .unwrap_or(false);
        let name = format!("previous.{table}");
        if exists {
            ctx.register_parquet(
                name.as_str(),
                loc.url(),
                ParquetReadOptions::default().schema(&schema),
            )
            .await
            .context(|| format!("registering {name}"))?;
        } else {
            register_empty(ctx, &name, schema)?;
        }
    }
    Ok(())
}

/// Removes the run's staging and scratch space, whatever the outcome (best effort: a failure to
/// clean up never fails the run).
async fn cleanup(cfg: &PipelineConfig, run_id: &str) {
    for (root, sub) in [(&cfg.warehouse, "_staging"), (&cfg.scratch, "")] {
        let Ok(url) = cfg.resolve(root) else { continue };
        let Ok(loc) = Location::parse(&url) else {
            continue;
        };
        let base = if sub.is_empty() { loc } else { loc.join(sub) };
        if let Err(e) = publish::remove_all(&base.join(run_id)).await {
            tracing::warn!("could not remove {}: {e}", base.join(run_id));
        }
        publish::remove_if_empty(&base);
    }
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
fn register_empty(ctx: &SessionContext, name: &str, schema: SchemaRef) -> Result<()> {
    let t = datafusion::datasource::empty::EmptyTable::new(schema);
    ctx.register_table(name, Arc::new(t))
        .context(|| format!("registering {name}"))?;
    Ok(())
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
/// and checks that every source reconciles: rows read = loaded + quarantined.
async fn reconcile(
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
    Ok((batches, out))
}

/// Quarantine rows from rejected landed rows: the canonical fields re-joined as CSV text, with
/// personal data replaced by `[redacted]` (no PII reaches the warehouse, not even here).
fn quarantine_rows(source: &str, b: &RecordBatch) -> Result<RecordBatch> {
    let n = b.num_rows();
    let schema = b.schema();
    let file = b
        .column_by_name("_source_file")
        .map(|c| c.as_string::<i32>().clone());
    let row = b
        .column_by_name("_row_number")
        .map(|c| c.as_primitive::<Int64Type>().clone());
    let reason = b
        .column_by_name("_reject_reason")
        .map(|c| c.as_string::<i32>().clone());
    let contract = extract::contract::source_schema(source);
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
                (false, true) => extract::contract::REDACTED,
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
