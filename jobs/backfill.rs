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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use serde::Serialize;
use tokio::sync::{Mutex, Semaphore, watch};

use crate::error::{Error, Result, StoreContext, exit_code};
use crate::job::Job;
use crate::layout::Layout;
use crate::period::Period;
use crate::quality::gate::Allowances;
use crate::run::{self, RunOptions, Status, record};
use crate::storage::Location;

/// Which periods of the range to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// Every period (each run replaces its partitions).
    All,
    /// Periods not yet published: a period counts as published when its latest run (by start
    /// time, in `<warehouse>/_runs/*/run_results.json`) succeeded, no run's lock is left for it
    /// (a killed run leaves its lock behind), and every enabled output has files in its
    /// partition.
    OnlyMissing,
    /// Periods whose latest run failed, or whose lock was left behind by a run that was
    /// killed. Periods never run are not selected.
    RerunFailed,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A progress bar on stderr (for a terminal).
    Bar,
    /// One plain line on stderr per period finished (for logs).
    Lines,
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

/// One period's outcome in a backfill.
#[derive(Debug, Clone, Serialize)]
pub struct PeriodStatus {
    /// Period label.
    pub period: String,
    /// `pending`, `success`, `failed` or `skipped`.
    pub status: String,
    /// Why the period was run or skipped.
    pub reason: String,
    /// The run id (None when skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The run's exit code (None when skipped or pending).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The run's wall time in seconds.
    pub seconds: f64,
    /// Warnings the run recorded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The run's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The run's results document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_results: Option<String>,
}

/// The backfill results document (`backfill_results.json`).
#[derive(Debug, Clone, Serialize)]
pub struct BackfillResults {
    /// Backfill id.
    pub backfill_id: String,
    /// `running`, `success` or `failed`.
    pub status: String,
    /// The command line.
    pub command: Vec<String>,
    /// First period.
    pub from: String,
    /// Last period.
    pub to: String,
    /// Runs at a time.
    pub jobs: usize,
    /// Which periods were selected.
    pub selection: Selection,
    /// When the backfill started (UTC, metadata).
    pub started_at: String,
    /// Wall time in seconds.
    pub seconds: f64,
    /// The exit code: 0 when every selected period succeeded, else the first failed period's.
    pub exit_code: i32,
    /// Every period of the range, in order.
    pub periods: Vec<PeriodStatus>,
    /// An error of the backfill itself (not of a period's run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where this document is.
    pub backfill_results: String,
}

impl BackfillResults {
    /// The one-line JSON summary printed last on stdout.
    pub fn summary(&self) -> serde_json::Value {
        let count = |s: &str| self.periods.iter().filter(|p| p.status == s).count();
        serde_json::json!({
            "backfill_id": self.backfill_id,
            "status": self.status,
            "from": self.from,
            "to": self.to,
            "exit_code": self.exit_code,
            "periods": self.periods.len(),
            "succeeded": count("success"),
            "failed": count("failed"),
            "skipped": count("skipped"),
            "failed_periods": self.periods.iter().filter(|p| p.status == "failed").map(|p| p.period.as_str()).collect::<Vec<_>>(),
            "seconds": (self.seconds * 100.0).round() / 100.0,
            "backfill_results": self.backfill_results,
            "error": self.error,
        })
    }

    /// The per-period status table, for people.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<10} {:<8} {:>4} {:>8}  {:<44} detail\n",
            "period", "status", "exit", "seconds", "run id"
        );
        for p in &self.periods {
            let detail = p.error.clone().unwrap_or_else(|| {
                if p.status == "skipped" || p.warnings.is_empty() {
                    p.reason.clone()
                } else {
                    format!("{} warning(s)", p.warnings.len())
                }
            });
            out.push_str(&format!(
                "{:<10} {:<8} {:>4} {:>8.1}  {:<44} {}\n",
                p.period,
                p.status,
                p.exit_code.map(|c| c.to_string()).unwrap_or_default(),
                p.seconds,
                p.run_id.as_deref().unwrap_or("-"),
                detail
            ));
        }
        out
    }
}

/// The latest run of a period, from its record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct LatestRun {
    started_at: String,
    run_id: String,
    status: Status,
    /// The run id of the previous period's partitions the run read (None: none were published).
    previous_run_id: Option<String>,
}

/// What the warehouse says about one period.
#[derive(Debug, Clone, Default)]
struct PeriodState {
    /// The latest run (by start time, then run id).
    latest: Option<LatestRun>,
    /// The latest successful run's id: the run whose partitions are published.
    published_run: Option<String>,
    /// A run's lock is present.
    locked: bool,
    /// Every enabled output has files in its partition.
    all_partitions: bool,
    /// The published run read a previous period that has been republished since (or that
    /// failed then and is published now): its growth and migration are stale.
    stale: bool,
}

impl PeriodState {
    fn published(&self) -> bool {
        !self.locked
            && self.all_partitions
            && !self.stale
            && self
                .latest
                .as_ref()
                .is_some_and(|l| l.status == Status::Success)
    }

    fn failed(&self) -> bool {
        self.locked
            || self
                .latest
                .as_ref()
                .is_some_and(|l| l.status != Status::Success)
    }
}

/// Every run record of the warehouse, by period: (latest run, latest successful run).
async fn latest_runs(layout: &Layout) -> Result<BTreeMap<String, (LatestRun, Option<LatestRun>)>> {
    let runs = layout.runs();
    let store = runs.store();
    let paths: Vec<object_store::path::Path> = store
        .list(Some(runs.prefix()))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .or_else(|e| match e {
            object_store::Error::NotFound { .. } => Ok(Vec::new()),
            e => Err(Error::store(&runs, e)),
        })?;
    let mut latest: BTreeMap<String, (LatestRun, Option<LatestRun>)> = BTreeMap::new();
    for p in paths
        .iter()
        .filter(|p| p.filename() == Some("run_results.json"))
    {
        let doc = match record::read_at(layout, p).await {
            Ok(Some(doc)) => doc,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("{e}; ignored");
                continue;
            }
        };
        let entry = LatestRun {
            started_at: doc.started_at.clone(),
            run_id: doc.run_id.clone(),
            status: doc.status,
            previous_run_id: doc.previous_run_id.clone(),
        };
        let slot = latest
            .entry(doc.period.clone())
            .or_insert_with(|| (entry.clone(), None));
        if entry > slot.0 {
            slot.0 = entry.clone();
        }
        if entry.status == Status::Success && slot.1.as_ref().is_none_or(|s| entry > *s) {
            slot.1 = Some(entry);
        }
    }
    Ok(latest)
}

async fn has_files(loc: &Location) -> bool {
    loc.store()
        .list_with_delimiter(Some(loc.prefix()))
        .await
        .map(|l| !l.objects.is_empty())
        .unwrap_or(false)
}

async fn period_states(job: &Job, layout: &Layout, periods: &[Period]) -> Result<Vec<PeriodState>> {
    let runs = latest_runs(layout).await?;
    let mut out = Vec::new();
    for p in periods {
        let label = p.label();
        let locked = layout
            .warehouse()
            .store()
            .head(&layout.lock(p))
            .await
            .is_ok();
        let mut all_partitions = true;
        for out in job.enabled_outputs() {
            if !has_files(&layout.partition(&out.name, p)).await {
                all_partitions = false;
                break;
            }
        }
        let entry = runs.get(&label);
        let published = entry.and_then(|(_, ok)| ok.clone());
        // the run that published P read P-1 as it was then; stale if P-1 changed since
        let previous_now = runs
            .get(&p.previous().label())
            .and_then(|(_, ok)| ok.as_ref().map(|r| r.run_id.clone()));
        let stale = published
            .as_ref()
            .is_some_and(|r| r.previous_run_id != previous_now);
        out.push(PeriodState {
            latest: entry.map(|(l, _)| l.clone()),
            published_run: published.as_ref().map(|r| r.run_id.clone()),
            locked,
            all_partitions,
            stale,
        });
    }
    Ok(out)
}

/// The periods `from..=to`, in order.
pub fn periods_between(from: &Period, to: &Period) -> Result<Vec<Period>> {
    if from.grain != to.grain || from.start > to.start {
        return Err(Error::Usage(format!(
            "--from {} must not be after --to {}",
            from.label(),
            to.label()
        )));
    }
    let mut out = vec![Period {
        as_of: from.end,
        ..from.clone()
    }];
    while out.last().is_some_and(|p| p.start < to.start) {
        let next = out.last().map(Period::next).unwrap_or_else(|| to.clone());
        out.push(next);
    }
    Ok(out)
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
    let outcome = execute(Arc::clone(&job), opts, Arc::clone(&shared)).await;
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

async fn write_results(layout: &Layout, results: &BackfillResults) -> Result<()> {
    let path = layout.backfill_record(&results.backfill_id);
    let body = serde_json::to_string_pretty(results)
        .map_err(|e| Error::Internal(format!("backfill results: {e}")))?;
    let body = crate::redact::redact(&body);
    layout
        .warehouse()
        .store()
        .put(&path, body.into())
        .await
        .at(layout.url_of(&path))?;
    Ok(())
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
    let states = match opts.selection {
        Selection::All => vec![PeriodState::default(); periods.len()],
        _ => period_states(&job, &layout, &periods).await?,
    };
    let mut plan: Vec<(Period, bool, String)> = Vec::new();
    for (p, s) in periods.iter().zip(&states) {
        // a period after one that runs in this backfill reads what that run publishes
        let previous_runs = plan.last().is_some_and(|(_, run, _)| *run);
        let (run, reason) = match opts.selection {
            Selection::All => (true, "requested".to_string()),
            Selection::OnlyMissing if s.published() && !previous_runs => (
                false,
                format!(
                    "already published by run {}",
                    s.published_run.as_deref().unwrap_or("?")
                ),
            ),
            Selection::OnlyMissing => (
                true,
                if s.locked {
                    "a killed run left its lock".into()
                } else if s.latest.is_none() {
                    "never run".into()
                } else if !s.all_partitions {
                    "partitions missing".into()
                } else if s.failed() {
                    "latest run failed".into()
                } else if previous_runs {
                    "its previous period runs in this backfill: growth and migration change".into()
                } else {
                    "published against a previous period that changed since (republished, or failed then): growth and migration are stale".into()
                },
            ),
            Selection::RerunFailed if s.failed() => (
                true,
                if s.locked {
                    "a killed run left its lock".into()
                } else {
                    "latest run failed".into()
                },
            ),
            Selection::RerunFailed => (
                false,
                if s.latest.is_none() {
                    "never run".into()
                } else {
                    "latest run did not fail".into()
                },
            ),
        };
        plan.push((p.clone(), run, reason));
    }
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
            let line = crate::redact::redact(&format!(
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
            ));
            match (&bar, progress) {
                (Some(bar), _) => {
                    bar.println(line);
                    bar.inc(1);
                }
                (None, Progress::Lines) => eprintln!("{line}"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::Grain;

    #[test]
    fn a_range_lists_every_period_once_in_order() {
        let from = Period::parse(Grain::Month, "2023-11").unwrap();
        let to = Period::parse(Grain::Month, "2024-02").unwrap();
        let labels: Vec<String> = periods_between(&from, &to)
            .unwrap()
            .iter()
            .map(Period::label)
            .collect();
        assert_eq!(labels, ["2023-11", "2023-12", "2024-01", "2024-02"]);
        assert!(periods_between(&to, &from).is_err());
        assert_eq!(periods_between(&to, &to).unwrap().len(), 1);
    }

    #[test]
    fn a_period_is_published_only_when_its_latest_run_succeeded_and_no_lock_is_left() {
        let run = |status| LatestRun {
            started_at: "t".into(),
            run_id: "r".into(),
            status,
            previous_run_id: None,
        };
        let ok = PeriodState {
            latest: Some(run(Status::Success)),
            published_run: Some("r".into()),
            locked: false,
            all_partitions: true,
            stale: false,
        };
        assert!(ok.published() && !ok.failed());
        let killed = PeriodState {
            locked: true,
            ..ok.clone()
        };
        assert!(!killed.published() && killed.failed());
        let failed = PeriodState {
            latest: Some(run(Status::Failed)),
            ..ok.clone()
        };
        assert!(!failed.published() && failed.failed());
        let stale = PeriodState {
            stale: true,
            ..ok.clone()
        };
        assert!(!stale.published() && !stale.failed());
        let deleted = PeriodState {
            all_partitions: false,
            ..ok
        };
        assert!(!deleted.published() && !deleted.failed());
        assert!(!PeriodState::default().published() && !PeriodState::default().failed());
    }
}
