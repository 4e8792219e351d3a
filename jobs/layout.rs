//! Where everything lives in the warehouse: the one owner of every path the job reads or
//! writes besides the raw extracts.
//!
//! ```text
//! <warehouse>/<table>/period=<P>/part-<run>-00000.parquet    published partitions
//! <warehouse>/_runs/<run_id>/run_results.json                 the run record (latest attempt)
//! <warehouse>/_runs/<run_id>/attempts/<n>.json                every attempt's record
//! <warehouse>/_runs/<run_id>/period.json                      the period a run id belongs to
//! <warehouse>/_staging/<run_id>/attempt-<n>/<table>/period=<P>/  staged partitions
//! <warehouse>/_locks/period=<P>.json                          the period's lock
//! <warehouse>/_publish/period=<P>.json                        an interrupted publish's intent
//! <warehouse>/_reports/period=<P>/index.html                  the period's report
//! <warehouse>/_reports/runs/<run_id>/index.html               a failed run's report
//! <warehouse>/_reports/index.html                             every report, listed
//! <warehouse>/_backfills/<backfill_id>/backfill_results.json  a backfill's record
//! <scratch>/<run_id>/attempt-<n>/                             landed extracts, materialised stages
//! ```

use object_store::path::Path;

use crate::period::Period;
use crate::storage::Location;

/// One attempt of a run. An orchestrator's retry reuses the run id; every attempt gets its own
/// scratch and staging, so nothing a dead attempt left behind is ever read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The run id (stamped on every row the run publishes).
    pub run_id: String,
    /// 1 for the first attempt of the run id, 2 for its first retry, ...
    pub number: u32,
}

impl Attempt {
    /// The first attempt of `run_id`.
    pub fn first(run_id: &str) -> Self {
        Self {
            run_id: run_id.to_string(),
            number: 1,
        }
    }

    /// The tag in published file names: the run id for a first attempt, `<run_id>-a<n>` for a
    /// retry, so a retry never overwrites a file a reader may have open.
    pub fn file_tag(&self) -> String {
        if self.number <= 1 {
            self.run_id.clone()
        } else {
            format!("{}-a{}", self.run_id, self.number)
        }
    }

    fn folder(&self) -> String {
        format!("{}/attempt-{}", self.run_id, self.number)
    }
}

/// The warehouse's layout, rooted at the warehouse and the scratch space.
#[derive(Debug, Clone)]
pub struct Layout {
    warehouse: Location,
    scratch: Location,
}

impl Layout {
    /// The layout of `warehouse`, with run-scoped scratch space under `scratch`.
    pub fn new(warehouse: Location, scratch: Location) -> Self {
        Self { warehouse, scratch }
    }

    /// The layout of a warehouse whose scratch space is the default `<warehouse>/_scratch`
    /// (for commands that only read and write warehouse paths: locks, records, reports).
    pub fn for_warehouse(warehouse: Location) -> Self {
        let scratch = warehouse.join("_scratch");
        Self { warehouse, scratch }
    }

    /// The warehouse root.
    pub fn warehouse(&self) -> &Location {
        &self.warehouse
    }

    /// A table's folder (all its partitions).
    pub fn table(&self, table: &str) -> Location {
        self.warehouse.join(table)
    }

    /// A published partition, `<table>/period=<P>`.
    pub fn partition(&self, table: &str, period: &Period) -> Location {
        self.warehouse.join(&partition_rel(table, period))
    }

    /// The staging space of an attempt.
    pub fn staging(&self, attempt: &Attempt) -> Location {
        self.warehouse
            .join(&format!("_staging/{}", attempt.folder()))
    }

    /// The staging space of every run.
    pub fn staging_root(&self) -> Location {
        self.warehouse.join("_staging")
    }

    /// The staging space of every attempt of a run id.
    pub fn run_staging(&self, run_id: &str) -> Location {
        self.warehouse.join(&format!("_staging/{run_id}"))
    }

    /// A partition staged by an attempt.
    pub fn staged_partition(&self, attempt: &Attempt, table: &str, period: &Period) -> Location {
        self.staging(attempt).join(&partition_rel(table, period))
    }

    /// Where an attempt keeps a partition it replaced, until its publish is committed.
    pub fn replaced_partition(&self, attempt: &Attempt, table: &str, period: &Period) -> Location {
        self.staging(attempt)
            .join(&format!("_replaced/{}", partition_rel(table, period)))
    }

    /// The scratch space of an attempt.
    pub fn scratch(&self, attempt: &Attempt) -> Location {
        self.scratch.join(&attempt.folder())
    }

    /// The scratch space of every attempt of a run id.
    pub fn run_scratch(&self, run_id: &str) -> Location {
        self.scratch.join(run_id)
    }

    /// The scratch root (for removing it when empty).
    pub fn scratch_root(&self) -> &Location {
        &self.scratch
    }

    /// The folder of every run record.
    pub fn runs(&self) -> Location {
        self.warehouse.join("_runs")
    }

    /// The record of a run's latest attempt.
    pub fn run_record(&self, run_id: &str) -> Path {
        self.warehouse
            .path_of(&format!("_runs/{run_id}/run_results.json"))
    }

    /// The folder of a run's attempt records.
    pub fn attempts(&self, run_id: &str) -> Location {
        self.warehouse.join(&format!("_runs/{run_id}/attempts"))
    }

    /// The record of one attempt.
    pub fn attempt_record(&self, attempt: &Attempt) -> Path {
        self.attempts(&attempt.run_id)
            .path_of(&format!("{}.json", attempt.number))
    }

    /// The claim that binds a run id to one period.
    pub fn run_claim(&self, run_id: &str) -> Path {
        self.warehouse
            .path_of(&format!("_runs/{run_id}/period.json"))
    }

    /// The lock of a period.
    pub fn lock(&self, period: &Period) -> Path {
        self.warehouse
            .path_of(&format!("_locks/period={}.json", period.label()))
    }

    /// The claim of the one run that takes over the stale lock of `stale_owner` for a period.
    pub fn lock_takeover(&self, period: &Period, stale_owner: &str) -> Path {
        self.warehouse.path_of(&format!(
            "_locks/period={}.takeover-{stale_owner}.json",
            period.label()
        ))
    }

    /// The intent of a period's publish while it is in progress (and after a crash).
    pub fn publish_intent(&self, period: &Period) -> Path {
        self.warehouse
            .path_of(&format!("_publish/period={}.json", period.label()))
    }

    /// The report of a period.
    pub fn report(&self, period: &Period) -> Path {
        self.warehouse.path_of(&report_relative(&period.label()))
    }

    /// The folder of every report (the periods' `period=<P>/` and the failed runs' `runs/`).
    pub fn reports(&self) -> Location {
        self.warehouse.join("_reports")
    }

    /// The index page listing every period's report.
    pub fn report_index(&self) -> Path {
        self.warehouse.path_of("_reports/index.html")
    }

    /// The report of a run that failed (from its record), beside the periods' reports and
    /// never in their place.
    pub fn run_report(&self, run_id: &str) -> Path {
        self.warehouse
            .path_of(&format!("_reports/runs/{run_id}/index.html"))
    }

    /// The folder of every failed run's report.
    pub fn run_reports(&self) -> Location {
        self.warehouse.join("_reports/runs")
    }

    /// The record of a backfill.
    pub fn backfill_record(&self, backfill_id: &str) -> Path {
        self.warehouse
            .path_of(&format!("_backfills/{backfill_id}/backfill_results.json"))
    }

    /// The URL of a path in the warehouse's store (for messages and records).
    pub fn url_of(&self, path: &Path) -> String {
        self.warehouse.url_of(path)
    }
}

fn partition_rel(table: &str, period: &Period) -> String {
    format!("{table}/period={}", period.label())
}

/// The report of the period labelled `period`, relative to the warehouse.
pub fn report_relative(period: &str) -> String {
    format!("_reports/period={period}/index.html")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::Grain;

    #[test]
    fn every_path_is_under_its_root() {
        let l = Layout::new(
            Location::parse("memory://lay/wh").unwrap(),
            Location::parse("memory://lay/scratch").unwrap(),
        );
        let p = Period::parse(Grain::Month, "2024-06").unwrap();
        let a = Attempt {
            run_id: "r1".into(),
            number: 2,
        };
        assert_eq!(
            l.partition("t", &p).url(),
            "memory://lay/wh/t/period=2024-06/"
        );
        assert_eq!(
            l.staged_partition(&a, "t", &p).url(),
            "memory://lay/wh/_staging/r1/attempt-2/t/period=2024-06/"
        );
        assert_eq!(l.scratch(&a).url(), "memory://lay/scratch/r1/attempt-2/");
        assert_eq!(l.lock(&p).as_ref(), "wh/_locks/period=2024-06.json");
        assert_eq!(l.attempt_record(&a).as_ref(), "wh/_runs/r1/attempts/2.json");
        assert_eq!(a.file_tag(), "r1-a2");
        assert_eq!(Attempt::first("r1").file_tag(), "r1");
    }
}
