//! Which periods of a backfill run: what the warehouse says about each period (its latest run,
//! its published run, a lock left behind, whether it is stale) and the selection rule.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::job::Job;
use crate::layout::Layout;
use crate::period::Period;
use crate::run::{Status, record};

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

async fn has_files(layout: &Layout, table: &str, period: &Period) -> bool {
    crate::publish::published::partition(layout, table, period)
        .await
        .is_ok_and(|p| p.is_some())
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
            if !has_files(layout, &out.name, p).await {
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

/// Which periods of `periods` run, and why each runs or is skipped.
pub(super) async fn plan(
    job: &Job,
    layout: &Layout,
    periods: &[Period],
    selection: Selection,
) -> Result<Vec<(Period, bool, String)>> {
    let states = match selection {
        Selection::All => vec![PeriodState::default(); periods.len()],
        _ => period_states(job, layout, periods).await?,
    };
    let mut plan: Vec<(Period, bool, String)> = Vec::new();
    for (p, s) in periods.iter().zip(&states) {
        // a period after one that runs in this backfill reads what that run publishes
        let previous_runs = plan.last().is_some_and(|(_, run, _)| *run);
        let (run, reason) = match selection {
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
    Ok(plan)
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
