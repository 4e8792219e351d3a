//! The run record, `<warehouse>/_runs/<run_id>/run_results.json`: one typed document that `run`
//! writes at every exit (and when it starts, as `running`) and that `backfill` and `report`
//! read back through the same type. Each attempt of a run id also keeps its own copy,
//! `_runs/<run_id>/attempts/<n>.json`.

use std::collections::BTreeMap;

use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, StoreContext};
use crate::layout::{Attempt, Layout};
use crate::publish::{PublishLog, StagedPartition};
use crate::quality::checks::CheckOutcome;
pub use crate::quality::reconcile::{RejectSample, SourceResult};

/// How a run (or a step) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Started, not finished (a run killed in the middle keeps this status).
    Running,
    /// Finished and published what it was asked to.
    Success,
    /// Failed; nothing of it is published.
    Failed,
}

impl Status {
    /// The status as written in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Success => "success",
            Status::Failed => "failed",
        }
    }
}

impl PartialEq<&str> for Status {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Timing and rows of one step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepResult {
    /// Step name.
    pub name: String,
    /// `extract`, `sql/staging`, `model`, `publish`, ...
    pub kind: String,
    /// How the step ended.
    pub status: Status,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Rows produced (the clean rows for staging stages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// CPU seconds (user + system, all threads) spent in the step (Linux only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Peak resident memory of the process during the step, in MiB (Linux only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_mib: Option<f64>,
}

/// The error of a failed run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunError {
    /// Category (`config`, `data_quality`, `source_or_storage`, `internal`).
    pub category: String,
    /// The process exit code.
    pub exit_code: i32,
    /// The message.
    pub message: String,
}

/// The run record (`run_results.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResults {
    /// Run id.
    pub run_id: String,
    /// The attempt of the run id this record describes (1 unless the run id was retried).
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// How the run ended.
    pub status: Status,
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
    /// The run id of the previous period's partitions this run read as `previous.*` (None:
    /// none were published). `backfill --only-missing` re-runs a period whose previous period
    /// was republished since.
    #[serde(default)]
    pub previous_run_id: Option<String>,
    /// The publish gate's outcomes (`gate:` in pipeline.yaml; [`crate::gate`]).
    #[serde(default)]
    pub gate: Vec<CheckOutcome>,
    /// Every data-quality check's outcome (`checks:` in pipeline.yaml), in order.
    pub checks: Vec<CheckOutcome>,
    /// Partitions published (empty unless the publish committed).
    pub outputs: Vec<StagedPartition>,
    /// What the publish did: swapped, rolled back, recovered.
    #[serde(default)]
    pub publish: PublishLog,
    /// What the query engine spilled to disk under `engine.memory_limit`.
    pub spilled: crate::engine::spill::SpillSummary,
    /// Warnings.
    pub warnings: Vec<String>,
    /// The error, when the run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    /// Where this document is.
    pub run_results: String,
}

fn first_attempt() -> u32 {
    1
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
            "attempt": self.attempt,
            "status": self.status,
            "period": self.period,
            "exit_code": self.error.as_ref().map(|e| e.exit_code).unwrap_or(0),
            "customers": customers,
            "partitions": self.outputs.len(),
            "quarantined": quarantined,
            "checks_failed": self.checks.iter().filter(|c| c.status == "fail").count(),
            "checks_warned": self.checks.iter().filter(|c| c.status == "warn").count(),
            "gate_failed": self.gate.iter().filter(|c| c.status == "fail").count(),
            "seconds": (self.seconds * 100.0).round() / 100.0,
            "run_results": self.run_results,
            "error": self.error.as_ref().map(|e| e.message.clone()),
        })
    }

    /// Records how the run ended.
    pub fn finish(&mut self, outcome: &Result<()>) {
        match outcome {
            Ok(()) => self.status = Status::Success,
            Err(e) => {
                self.status = Status::Failed;
                self.error = Some(RunError {
                    category: e.category().into(),
                    exit_code: e.exit_code(),
                    message: e.to_string(),
                });
            }
        }
    }
}

/// Writes the record of `attempt` (its own copy and, as the run id's latest, `run_results.json`),
/// redacted.
pub async fn write(layout: &Layout, attempt: &Attempt, results: &RunResults) -> Result<()> {
    let body = serde_json::to_string_pretty(results)
        .map_err(|e| Error::Internal(format!("run results: {e}")))?;
    let body = crate::redact::redact(&body);
    let store = layout.warehouse().store();
    for path in [
        layout.attempt_record(attempt),
        layout.run_record(&attempt.run_id),
    ] {
        store
            .put(&path, body.clone().into())
            .await
            .at(layout.url_of(&path))?;
    }
    Ok(())
}

/// Reads a run's latest record (None when the run id has none).
pub async fn read(layout: &Layout, run_id: &str) -> Result<Option<RunResults>> {
    let path = layout.run_record(run_id);
    read_at(layout, &path).await
}

/// Reads a record at `path` (None when absent).
pub async fn read_at(
    layout: &Layout,
    path: &object_store::path::Path,
) -> Result<Option<RunResults>> {
    let store = layout.warehouse().store();
    let bytes = match store.get(path).await {
        Ok(got) => got.bytes().await.at(layout.url_of(path))?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => {
            return Err(Error::store(layout.url_of(path), e));
        }
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Error::storage(
            layout.url_of(path),
            format!("the run record cannot be read ({e}); it was written by another version of the job or damaged"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_record_round_trips_through_its_type() {
        let layout = Layout::for_warehouse(
            crate::storage::Location::parse("memory://record-test/wh").unwrap(),
        );
        let attempt = Attempt {
            run_id: "r1".into(),
            number: 2,
        };
        let mut r = RunResults {
            run_id: "r1".into(),
            attempt: 2,
            status: Status::Running,
            command: vec!["crm-pipeline".into(), "run".into()],
            period: "2024-06".into(),
            as_of: "2024-06-30".into(),
            config_file: "pipeline.yaml".into(),
            config_hash: "abc".into(),
            versions: BTreeMap::new(),
            started_at: "2024-07-01T00:00:00Z".into(),
            seconds: 1.5,
            sources: vec![SourceResult {
                name: "orders".into(),
                rows_read: 3,
                loaded: 2,
                quarantined: BTreeMap::from([("invalid_order_ts".into(), 1)]),
                reconciled: true,
                ..Default::default()
            }],
            steps: Vec::new(),
            models: BTreeMap::new(),
            previous_run_id: None,
            gate: Vec::new(),
            checks: Vec::new(),
            outputs: Vec::new(),
            publish: PublishLog::default(),
            spilled: Default::default(),
            warnings: vec!["w".into()],
            error: None,
            run_results: "memory://record-test/wh/_runs/r1/run_results.json".into(),
        };
        r.finish(&Err(Error::DataQuality("refused".into())));
        write(&layout, &attempt, &r).await.unwrap();
        let back = read(&layout, "r1").await.unwrap().unwrap();
        assert_eq!(back.status, Status::Failed);
        assert_eq!(back.attempt, 2);
        assert_eq!(back.sources[0].quarantined["invalid_order_ts"], 1);
        assert_eq!(back.error.unwrap().exit_code, 3);
        let copy = read_at(&layout, &layout.attempt_record(&attempt))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(copy.run_id, "r1");
        assert!(read(&layout, "nope").await.unwrap().is_none());
    }
}
