//! Backfills: one idempotent [`run::run`] per period of a range, in-process, each with its own
//! run id, at most `jobs` at a time.
//!
//! Order rule: a period's run reads the previous period's published partitions as
//! `previous.<table>` (growth, migration). When the previous period is part of the same
//! backfill, the run waits for it right before it first reads `previous.*`
//! ([`run::RunOptions::previous_ready`]); extract and stages still overlap with the
//! predecessor. If the predecessor failed, the period still runs, reads whatever was published
//! for the previous period before (possibly nothing) and records a warning in its run results.
//!
//! Progress is kept in `<warehouse>/_backfills/<backfill_id>/backfill_results.json`, rewritten
//! after every period; resuming after an interruption is re-running the command with
//! `--only-missing` (see [`Selection`] for how a period counts as published).

mod record;
mod select;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Mutex, Semaphore, watch};

use crate::error::{Error, Result, exit_code};
use crate::job::Job;
use crate::period::Period;
use crate::quality::gate::Allowances;
use crate::run::{self, RunOptions};

use record::write_results;
pub use record::{BackfillResults, PeriodStatus};
pub use select::{Selection, periods_between};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A progress bar on stderr (for a terminal).
    Bar,
    /// One plain line on stderr per period finished (for logs).
    Lines,
    /// One JSON log line per period finished (`--log-format json`).
    Json,
    /// Nothing (tests, libraries).
    Silent,
}

/// What to backfill.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// First period of the range.
    pub from: Period,
    /// Last period of the range (inclusive).
    pub to: Period,
    /// Runs at a time (at least 1).
    pub jobs: usize,
    /// Which periods to run.
    pub selection: Selection,
    /// Publish empty partitions.
    pub allow_empty: bool,
    /// The publish gates opened for every run.
    pub allow: Allowances,
    /// The backfill id; each period's run id is `<backfill_id>-<period>`.
    pub backfill_id: String,
    /// The command line, for the results.
    pub command: Vec<String>,
    /// The job definition's text, for the runs' config hash.
    pub config_text: String,
    /// How progress is shown.
    pub progress: Progress,
}

/// A fresh backfill id (metadata only).
pub fn new_backfill_id() -> String {
    format!("bf-{}", run::new_run_id())
}

/// Runs the backfill. The results are also written to the warehouse (after every period); on
/// failure of the backfill itself the error is returned alongside them. A period's failure is
/// in its status and in [`BackfillResults::exit_code`], not in the returned `Result`.
pub async fn backfill(job: Arc<Job>, opts: &BackfillOptions) -> (BackfillResults, Result<()>) {
    let started = Instant::now();
    let layout = job.layout.clone();
    let mut results = BackfillResults {
        backfill_id: opts.backfill_id.clone(),
        status: "running".into(),
        command: opts.command.clone(),
        from: opts.from.label(),
        to: opts.to.label(),
        jobs: opts.jobs.max(1),
        selection: opts.selection,
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        seconds: 0.0,
        exit_code: exit_code::SUCCESS,
        periods: Vec::new(),
        error: None,
        backfill_results: layout.url_of(&layout.backfill_record(&opts.backfill_id)),
    };
    let shared = Arc::new(Mutex::new(results.clone()));
    let span = tracing::span!(
        tracing::Level::ERROR,
        "backfill",
        backfill_id = %opts.backfill_id
    );
    let outcome =
        tracing::Instrument::instrument(execute(Arc::clone(&job), opts, Arc::clone(&shared)), span)
            .await;
    results = shared.lock().await.clone();
    results.seconds = started.elapsed().as_secs_f64();
    if let Err(e) = &outcome {
        results.error = Some(e.to_string());
        results.exit_code = e.exit_code();
    } else {
        results.exit_code = results
            .periods
            .iter()
            .find(|p| p.status == "failed")
            .and_then(|p| p.exit_code)
            .unwrap_or(exit_code::SUCCESS);
    }
    results.status = if results.exit_code == exit_code::SUCCESS {
        "success"
    } else {
        "failed"
    }
    .into();
    let written = write_results(&layout, &results).await;
    let outcome = match (outcome, written) {
        (Ok(()), Err(e)) => Err(e),
        (o, _) => o,
    };
    (results, outcome)
}

fn progress_bar(opts: &BackfillOptions, selected: usize) -> Option<indicatif::ProgressBar> {
    if opts.progress != Progress::Bar {
        return None;
    }
    let bar = indicatif::ProgressBar::new(selected as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} periods  {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

async fn execute(
    job: Arc<Job>,
    opts: &BackfillOptions,
    shared: Arc<Mutex<BackfillResults>>,
) -> Result<()> {
    let layout = job.layout.clone();
    let periods = periods_between(&opts.from, &opts.to)?;
    let plan = select::plan(&job, &layout, &periods, opts.selection).await?;
    {
        let mut r = shared.lock().await;
        r.periods = plan
            .iter()
            .map(|(p, run, reason)| PeriodStatus {
                period: p.label(),
                status: if *run { "pending" } else { "skipped" }.into(),
                reason: reason.clone(),
                run_id: None,
                exit_code: None,
                seconds: 0.0,
                warnings: Vec::new(),
                error: None,
                run_results: None,
            })
            .collect();
        write_results(&layout, &r).await?;
    }
    let selected = plan.iter().filter(|(_, run, _)| *run).count();
    let bar = progress_bar(opts, selected);
    let slots = Arc::new(Semaphore::new(opts.jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    // the gate of the previous period when it runs in this backfill
    let mut previous: Option<watch::Receiver<Option<bool>>> = None;
    for (index, (period, run, _)) in plan.into_iter().enumerate() {
        if !run {
            previous = None;
            continue;
        }
        let (done, ready) = watch::channel(None);
        let run_opts = RunOptions {
            run_id: format!("{}-{}", opts.backfill_id, period.label()),
            period,
            allow_empty: opts.allow_empty,
            allow: opts.allow,
            command: opts.command.clone(),
            config_text: opts.config_text.clone(),
            previous_ready: previous.replace(ready),
        };
        // slots are taken in period order, so a run only ever waits for runs already started
        let slot = Arc::clone(&slots)
            .acquire_owned()
            .await
            .map_err(|e| Error::Internal(format!("backfill slots: {e}")))?;
        if let Some(bar) = &bar {
            bar.set_message(format!("running {}", run_opts.period.label()));
        }
        let (job, shared, bar) = (Arc::clone(&job), Arc::clone(&shared), bar.clone());
        let (progress, layout) = (opts.progress, layout.clone());
        let backfill_id = opts.backfill_id.clone();
        tasks.spawn(async move {
            // the run's future is not `Send`; each run drives it on its own blocking thread,
            // so runs still compute in parallel
            let handle = tokio::runtime::Handle::current();
            let joined =
                tokio::task::spawn_blocking(move || handle.block_on(run::run(&job, &run_opts)))
                    .await;
            let _ = done.send(Some(matches!(&joined, Ok((_, Ok(()))))));
            drop(slot);
            let (res, outcome) = match joined {
                Ok(r) => r,
                Err(e) => {
                    // the period stays `pending` and is reported as failed at the end
                    tracing::error!("a backfill run ended abnormally: {e}");
                    return;
                }
            };
            let status = PeriodStatus {
                period: res.period.clone(),
                status: res.status.to_string(),
                reason: String::new(),
                run_id: Some(res.run_id.clone()),
                exit_code: Some(outcome.as_ref().map_or_else(Error::exit_code, |_| 0)),
                seconds: res.seconds,
                warnings: res.warnings.clone(),
                error: outcome.as_ref().err().map(ToString::to_string),
                run_results: Some(res.run_results.clone()),
            };
            let line = format!(
                "backfill: period {} {} in {:.1}s (run {}){}",
                status.period,
                status.status,
                status.seconds,
                res.run_id,
                status
                    .error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
            match (&bar, progress) {
                (Some(bar), _) => {
                    bar.println(crate::redact::redact(&line));
                    bar.inc(1);
                }
                (None, Progress::Lines | Progress::Json) => {
                    let format = if progress == Progress::Json {
                        crate::logging::LogFormat::Json
                    } else {
                        crate::logging::LogFormat::Text
                    };
                    let mut fields = serde_json::Map::new();
                    fields.insert("backfill_id".into(), backfill_id.clone().into());
                    fields.insert("run_id".into(), res.run_id.clone().into());
                    fields.insert("period".into(), status.period.clone().into());
                    fields.insert("status".into(), status.status.clone().into());
                    fields.insert("exit_code".into(), status.exit_code.into());
                    fields.insert("seconds".into(), status.seconds.into());
                    let level = if status.status == "success" {
                        "info"
                    } else {
                        "error"
                    };
                    crate::logging::line(format, level, &line, fields);
                }
                _ => {}
            }
            let mut r = shared.lock().await;
            if let Some(slot) = r.periods.get_mut(index) {
                let reason = std::mem::take(&mut slot.reason);
                *slot = PeriodStatus { reason, ..status };
            }
            if let Err(e) = write_results(&layout, &r).await {
                tracing::warn!("could not update the backfill results: {e}");
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            tracing::error!("a backfill task ended abnormally: {e}");
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let mut r = shared.lock().await;
    for p in r.periods.iter_mut().filter(|p| p.status == "pending") {
        p.status = "failed".into();
        p.exit_code = Some(exit_code::INTERNAL);
        p.error = Some("the run ended abnormally (see the log)".into());
    }
    Ok(())
}
