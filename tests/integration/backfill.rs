//! Backfills: each period published once, reruns idempotent, `--jobs 2` equal to `--jobs 1`
//! (the order rule: growth reads the predecessor's published partition), and an interrupted
//! backfill resumed with `--rerun-failed` / `--only-missing`.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;

use crm_pipeline::backfill::{self, BackfillOptions, BackfillResults, Progress, Selection};
use crm_pipeline::generate::GenerateOptions;
use crm_pipeline::period::Period;
use crm_pipeline::storage::Location;

use crate::common::*;
use crate::faults::{crm_pipeline, partition_runs};

const PERIODS: [&str; 3] = ["2024-04", "2024-05", "2024-06"];

async fn generated(raw: &Path) {
    let opts = GenerateOptions {
        customers: 300,
        seed: 11,
        start: "2023-06-01".parse().unwrap(),
        end: "2024-06-30".parse().unwrap(),
        ..GenerateOptions::default()
    };
    generate_at(&raw.display().to_string(), &opts).await;
}

async fn run_backfill(
    raw: &Path,
    wh: &Path,
    id: &str,
    jobs: usize,
    selection: Selection,
) -> BackfillResults {
    let cfg = config(raw, wh);
    let opts = BackfillOptions {
        from: Period::parse(cfg.period.grain, PERIODS[0]).unwrap(),
        to: Period::parse(cfg.period.grain, PERIODS[2]).unwrap(),
        jobs,
        selection,
        allow_empty: false,
        allow: Default::default(),
        backfill_id: id.into(),
        command: vec!["test".into()],
        config_text: String::new(),
        progress: Progress::Silent,
    };
    let (results, outcome) =
        backfill::backfill(Arc::new(resolve(&cfg, &Default::default())), &opts).await;
    outcome.unwrap();
    results
}

/// The published tables of every period without `run_id`, in a stable order, as text.
async fn contents(wh: &Path) -> String {
    let mut out = String::new();
    for p in PERIODS {
        for (table, order) in [
            ("segment_summary", "scheme, segment"),
            ("customer_features", "customer_id"),
            ("customer_segments", "customer_id"),
        ] {
            let b = query(
                wh,
                table,
                p,
                &format!("SELECT * EXCLUDE (run_id) FROM t ORDER BY {order}"),
            )
            .await;
            out.push_str(&format!("{table} {p}\n{}\n", pretty(&b)));
        }
    }
    out
}

/// Successful runs per period, from the run results.
fn successful_runs(wh: &Path, period: &str) -> usize {
    std::fs::read_dir(wh.join("_runs"))
        .unwrap()
        .filter_map(|e| std::fs::read(e.unwrap().path().join("run_results.json")).ok())
        .map(|b| serde_json::from_slice::<serde_json::Value>(&b).unwrap())
        .filter(|d| d["period"] == period && d["status"] == "success")
        .count()
}

async fn published_by(wh: &Path, period: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for t in [
        "segment_summary",
        "customer_features",
        "customer_value",
        "quarantine",
    ] {
        let (runs, _) = partition_runs(wh, t, period).await;
        ids.extend(runs);
    }
    ids.dedup();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_publishes_each_period_once_in_order_and_reruns_are_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    generated(&raw).await;
    let (wh1, wh2) = (tmp.path().join("wh1"), tmp.path().join("wh2"));

    let serial = run_backfill(&raw, &wh1, "bf-serial", 1, Selection::All).await;
    let parallel = run_backfill(&raw, &wh2, "bf-parallel", 2, Selection::All).await;
    for r in [&serial, &parallel] {
        assert_eq!(r.exit_code, 0, "{}", r.table());
        assert!(
            r.periods.iter().all(|p| p.status == "success"),
            "{}",
            r.table()
        );
        assert!(
            wh1.join(format!(
                "_backfills/{}/backfill_results.json",
                r.backfill_id
            ))
            .exists()
                || wh2
                    .join(format!(
                        "_backfills/{}/backfill_results.json",
                        r.backfill_id
                    ))
                    .exists()
        );
    }
    for p in PERIODS {
        assert_eq!(published_by(&wh2, p).await, [format!("bf-parallel-{p}")]);
        let dupes = query(
            &wh2,
            "customer_features",
            p,
            "SELECT customer_id FROM t GROUP BY customer_id HAVING count(*) > 1",
        )
        .await;
        assert_eq!(dupes.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    }
    // growth reads the predecessor's published partition: with --jobs 2 the later periods
    // waited for it, so the tables equal the serial backfill's, growth included
    for p in &PERIODS[1..] {
        let growth = query(
            &wh2,
            "segment_summary",
            p,
            "SELECT count(*) FROM t WHERE growth_vs_previous IS NOT NULL",
        )
        .await;
        let n = growth[0].column(0).as_primitive::<Int64Type>().value(0);
        assert!(n > 0, "{p}: growth needs the previous partition");
    }
    let first = contents(&wh2).await;
    assert_eq!(contents(&wh1).await, first);

    // a rerun replaces every partition: same contents, no duplicates
    let again = run_backfill(&raw, &wh2, "bf-again", 2, Selection::All).await;
    assert_eq!(again.exit_code, 0, "{}", again.table());
    assert_eq!(contents(&wh2).await, first);
    for p in PERIODS {
        assert_eq!(published_by(&wh2, p).await, [format!("bf-again-{p}")]);
    }

    // everything is published: --only-missing and --rerun-failed run nothing
    for sel in [Selection::OnlyMissing, Selection::RerunFailed] {
        let r = run_backfill(&raw, &wh2, "bf-nothing", 2, sel).await;
        assert!(
            r.periods.iter().all(|p| p.status == "skipped"),
            "{}",
            r.table()
        );
        assert_eq!(r.exit_code, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_backfill_resumes_and_publishes_every_period_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    generated(&raw).await;

    // the process dies in the middle of publishing the second period
    let status = crm_pipeline(
        &raw,
        &wh,
        Some("publish:mid_swap@2024-05"),
        &[
            "backfill", "--from", PERIODS[0], "--to", PERIODS[2], "--jobs", "1",
        ],
    )
    .output()
    .unwrap();
    assert!(!status.status.success());
    assert_eq!(successful_runs(&wh, PERIODS[0]), 1);
    assert_eq!(successful_runs(&wh, PERIODS[1]), 0);
    assert!(wh.join("_locks/period=2024-05.json").exists());
    assert!(!wh.join("customer_features/period=2024-06").exists());

    // --rerun-failed picks the killed period only (2024-06 never ran)
    let r = run_backfill(&raw, &wh, "bf-failed", 1, Selection::RerunFailed).await;
    let statuses: Vec<&str> = r.periods.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(statuses, ["skipped", "success", "skipped"], "{}", r.table());
    // --only-missing finishes the rest
    let r = run_backfill(&raw, &wh, "bf-resume", 2, Selection::OnlyMissing).await;
    let statuses: Vec<&str> = r.periods.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(statuses, ["skipped", "skipped", "success"], "{}", r.table());
    for p in PERIODS {
        assert_eq!(successful_runs(&wh, p), 1, "{p} published exactly once");
        assert_eq!(published_by(&wh, p).await.len(), 1, "{p}: one run's rows");
    }
    assert_eq!(published_by(&wh, PERIODS[1]).await, ["bf-failed-2024-05"]);

    // the same tables as an uninterrupted backfill
    let clean = tmp.path().join("clean");
    run_backfill(&raw, &clean, "bf-clean", 1, Selection::All).await;
    assert_eq!(contents(&wh).await, contents(&clean).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_period_does_not_stop_the_next_and_sets_the_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    // another live run holds 2024-04: its run in the backfill fails fast with exit 4
    let warehouse = Location::parse(&wh.display().to_string()).unwrap();
    let held = crm_pipeline::publish::lock::PeriodLock::acquire(
        &warehouse,
        &crm_pipeline::period::Period::parse(crm_pipeline::period::Grain::Month, "2024-04")
            .unwrap(),
        "other",
        360,
    )
    .await
    .unwrap();
    let r = run_backfill(&raw, &wh, "bf-one-fails", 2, Selection::All).await;
    let statuses: Vec<&str> = r.periods.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(statuses, ["failed", "success", "success"], "{}", r.table());
    assert_eq!(
        r.exit_code,
        crm_pipeline::error::exit_code::SOURCE_OR_STORAGE
    );
    assert_eq!(r.status, "failed");
    assert_eq!(
        r.summary()["failed_periods"],
        serde_json::json!(["2024-04"])
    );
    assert!(
        r.periods[1]
            .warnings
            .iter()
            .any(|w| w.contains("previous period 2024-04 in this backfill failed")),
        "{:?}",
        r.periods[1].warnings
    );
    let file = wh.join("_backfills/bf-one-fails/backfill_results.json");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(doc["periods"][0]["exit_code"], 4);
    assert_eq!(doc["exit_code"], 4);

    // once the other run is gone, --rerun-failed runs just that period
    held.release().await;
    let r = run_backfill(&raw, &wh, "bf-retry", 2, Selection::RerunFailed).await;
    let statuses: Vec<&str> = r.periods.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(statuses, ["success", "skipped", "skipped"], "{}", r.table());
    assert_eq!(r.exit_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_missing_reruns_the_periods_computed_against_a_previous_period_that_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    // 2024-04 fails (its lock is held); 2024-05 and 2024-06 publish, 2024-05 without a previous
    let warehouse = Location::parse(&wh.display().to_string()).unwrap();
    let april = Period::parse(crm_pipeline::period::Grain::Month, "2024-04").unwrap();
    let held = crm_pipeline::publish::lock::PeriodLock::acquire(&warehouse, &april, "other", 360)
        .await
        .unwrap();
    let r = run_backfill(&raw, &wh, "bf-first", 1, Selection::All).await;
    let statuses: Vec<&str> = r.periods.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(statuses, ["failed", "success", "success"], "{}", r.table());
    held.release().await;

    // 2024-04 failed; 2024-05 was published while it had: both run, and so does 2024-06,
    // whose previous period is re-published in the same backfill
    let r = run_backfill(&raw, &wh, "bf-resume", 1, Selection::OnlyMissing).await;
    let statuses: Vec<&str> = r.periods.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(statuses, ["success", "success", "success"], "{}", r.table());
    assert!(
        r.periods[1].reason.contains("its previous period runs"),
        "{}",
        r.table()
    );
    assert!(
        !r.periods[1]
            .warnings
            .iter()
            .any(|w| w.contains("in this backfill failed")),
        "2024-05 now reads the published 2024-04: {:?}",
        r.periods[1].warnings
    );
    let r = run_backfill(&raw, &wh, "bf-again", 1, Selection::OnlyMissing).await;
    let statuses: Vec<&str> = r.periods.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(statuses, ["skipped", "skipped", "skipped"], "{}", r.table());

    // re-running one period on its own makes the next one stale, and only that one
    run_period(&config(&raw, &wh), "2024-05", "may-again")
        .await
        .1
        .unwrap();
    let r = run_backfill(&raw, &wh, "bf-stale", 1, Selection::OnlyMissing).await;
    let statuses: Vec<&str> = r.periods.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(statuses, ["skipped", "skipped", "success"], "{}", r.table());
    assert!(
        r.periods[2].reason.contains("previous period that changed"),
        "{}",
        r.table()
    );
}
