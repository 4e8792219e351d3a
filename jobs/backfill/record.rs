//! The backfill record, `<warehouse>/_backfills/<backfill_id>/backfill_results.json`: every
//! period's status, reason, run id, exit code, seconds, warnings and error; rewritten after
//! every period, so it is current even if the backfill is killed.

use object_store::ObjectStoreExt;
use serde::Serialize;

use super::Selection;
use crate::error::{Error, Result, StoreContext};
use crate::layout::Layout;

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

/// Writes the record (redacted).
pub(super) async fn write_results(layout: &Layout, results: &BackfillResults) -> Result<()> {
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
