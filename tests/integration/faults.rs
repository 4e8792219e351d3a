//! Crash safety: a run killed mid-publish (test-only fault injection, `CRM_PIPELINE_FAULT`)
//! leaves every published partition readable and whole, and the next run takes over the lock
//! the killed run left behind and succeeds.

use std::path::Path;
use std::process::Command;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};

use crate::common::*;

/// The run ids found in a published partition, and its rows.
pub async fn partition_runs(wh: &Path, table: &str, period: &str) -> (Vec<String>, i64) {
    let b = query(
        wh,
        table,
        period,
        "SELECT run_id, count(*) AS n FROM t GROUP BY run_id ORDER BY run_id",
    )
    .await;
    let mut ids = Vec::new();
    let mut rows = 0;
    for b in &b {
        let id = cast(b.column(0), &DataType::Utf8).unwrap();
        let id = id.as_string::<i32>();
        let n = b.column(1).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            ids.push(id.value(i).to_string());
            rows += n.value(i);
        }
    }
    (ids, rows)
}

/// The run ids a partition of `rows` rows written by `run_id` shows (none when empty).
fn only(run_id: &str, rows: i64) -> Vec<String> {
    if rows == 0 {
        Vec::new()
    } else {
        vec![run_id.to_string()]
    }
}

/// Spawns the real binary with `args` plus the repository's job definition and locations.
pub fn crm_pipeline(raw: &Path, wh: &Path, fault: Option<&str>, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_crm-pipeline"));
    c.args(args)
        .arg("--config")
        .arg(repo_file("pipeline.yaml"))
        .arg("--raw")
        .arg(raw)
        .arg("--warehouse")
        .arg(wh)
        .env_remove("CRM_PIPELINE_FAULT");
    if let Some(f) = fault {
        c.env("CRM_PIPELINE_FAULT", f);
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_publish_leaves_the_old_partitions_and_the_next_run_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let cfg = config(&raw, &wh);
    let tables: Vec<String> = cfg
        .outputs
        .iter()
        .filter(|(_, o)| o.enabled)
        .map(|(t, _)| t.clone())
        .collect();
    assert!(tables.len() > 1, "the mid-swap point needs several outputs");
    run_period(&cfg, "2024-06", "good").await.1.unwrap();
    let mut good_rows = Vec::new();
    for t in &tables {
        let (ids, rows) = partition_runs(&wh, t, "2024-06").await;
        assert_eq!(ids, only("good", rows), "{t}");
        good_rows.push(rows);
    }

    // killed after staging, before any swap: every partition is the good run's
    let status = crm_pipeline(
        &raw,
        &wh,
        Some("publish:after_staging"),
        &["run", "--period", "2024-06", "--run-id", "killed-early"],
    )
    .output()
    .unwrap();
    assert!(!status.status.success(), "the fault must abort the run");
    for (t, rows) in tables.iter().zip(&good_rows) {
        assert_eq!(
            partition_runs(&wh, t, "2024-06").await,
            (only("good", *rows), *rows),
            "{t}"
        );
    }
    assert!(
        wh.join("_locks/period=2024-06.json").exists(),
        "a killed run leaves its lock"
    );

    // killed between two partitions' swaps: the first is the killed run's, every other
    // partition is still the good run's, each whole and readable
    let status = crm_pipeline(
        &raw,
        &wh,
        Some("publish:mid_swap"),
        &["run", "--period", "2024-06", "--run-id", "killed-mid"],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(!status.status.success(), "{stderr}");
    assert!(
        !stderr.contains("being computed by run"),
        "the dead run's lock must be taken over at once: {stderr}"
    );
    for (i, (t, rows)) in tables.iter().zip(&good_rows).enumerate() {
        let expected = if i == 0 { "killed-mid" } else { "good" };
        assert_eq!(
            partition_runs(&wh, t, "2024-06").await,
            (only(expected, *rows), *rows),
            "{t}"
        );
    }

    // the next run takes over the lock at once (its owner's process is gone) and succeeds
    let (results, outcome) = run_period(&cfg, "2024-06", "next").await;
    outcome.unwrap();
    assert_eq!(results.status, "success");
    for (t, rows) in tables.iter().zip(&good_rows) {
        assert_eq!(
            partition_runs(&wh, t, "2024-06").await,
            (only("next", *rows), *rows),
            "{t}"
        );
    }
    assert!(!wh.join("_locks/period=2024-06.json").exists());
}
