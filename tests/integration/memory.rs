//! The engine's memory limit: a run whose sorts need more than `engine.memory_limit` spills to
//! `engine.spill_dir` and completes with the same tables; a limit too small for the operators
//! that cannot spill fails with an error naming the stage and the knob.

use std::path::Path;

use crm_pipeline::error::exit_code;
use crm_pipeline::generate::GenerateOptions;

use crate::common::*;

async fn generated(raw: &Path, customers: u64) {
    let opts = GenerateOptions {
        customers,
        seed: 5,
        start: "2023-01-01".parse().unwrap(),
        end: "2024-06-30".parse().unwrap(),
        ..GenerateOptions::default()
    };
    generate_at(&raw.display().to_string(), &opts).await;
}

async fn tables(wh: &Path) -> String {
    let mut out = String::new();
    for (table, order) in [
        ("customer_features", "customer_id"),
        ("customer_segments", "customer_id"),
        ("segment_summary", "scheme, segment"),
    ] {
        let sql = format!("SELECT * EXCLUDE (run_id) FROM t ORDER BY {order}");
        out.push_str(&pretty(&query(wh, table, "2024-06", &sql).await));
    }
    out
}

/// What a run under a memory limit did.
#[derive(Debug)]
enum Outcome {
    /// Completed without spilling: the limit was more than the run needed.
    Fitted,
    /// Completed and spilled.
    Spilled(crm_pipeline::engine::spill::SpillSummary),
    /// Failed with the engine's out-of-memory error: too little for what cannot spill.
    OutOfMemory,
}

/// Runs the period under `limit_mib` into a warehouse of its own and checks what every
/// outcome promises: a completed run publishes the unlimited run's tables, a failed one fails
/// with the actionable out-of-memory error and publishes nothing.
async fn run_limited(tmp: &Path, raw: &Path, limit_mib: u64, expected: &str) -> Outcome {
    let wh = tmp.join(format!("limited-{limit_mib}"));
    let spill_dir = tmp.join("spill");
    let mut cfg = config(raw, &wh);
    cfg.engine.target_partitions = 2;
    cfg.engine.memory_limit = Some(format!("{limit_mib}MiB"));
    cfg.engine.spill_dir = Some(spill_dir.display().to_string());
    let (results, outcome) = run_period(&cfg, "2024-06", &format!("limited-{limit_mib}")).await;
    match outcome {
        Ok(()) => {
            assert_eq!(
                tables(&wh).await,
                expected,
                "a run under {limit_mib} MiB publishes the same tables"
            );
            if results.spilled.files == 0 {
                assert_eq!(results.spilled.bytes, 0);
                Outcome::Fitted
            } else {
                assert!(results.spilled.bytes > 0, "{:?}", results.spilled);
                assert!(spill_dir.is_dir(), "spill files go to engine.spill_dir");
                Outcome::Spilled(results.spilled)
            }
        }
        Err(err) => {
            let msg = err.to_string();
            assert_eq!(err.exit_code(), exit_code::CONFIG, "{msg}");
            assert!(msg.contains("`engine.memory_limit`"), "{msg}");
            assert!(
                msg.contains(&format!(
                    "ran out of memory (limit {limit_mib}MiB) in stage `"
                )),
                "{msg}"
            );
            assert_eq!(results.status, "failed");
            assert!(
                !wh.join("customer_features/period=2024-06").exists(),
                "a failed run publishes nothing"
            );
            Outcome::OutOfMemory
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_larger_than_the_memory_limit_spills_and_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    generated(&raw, 3000).await;

    let unlimited_wh = tmp.path().join("unlimited");
    let mut cfg = config(&raw, &unlimited_wh);
    cfg.engine.target_partitions = 2;
    let (unlimited, outcome) = run_period(&cfg, "2024-06", "unlimited").await;
    outcome.unwrap();
    assert_eq!(unlimited.spilled.files, 0, "no limit, no spilling");
    let expected = tables(&unlimited_wh).await;

    // Between a limit too small for the operators that cannot spill (hash joins' build sides)
    // and one large enough that nothing needs to spill lies a window where the sorts and
    // aggregations spill and the run completes. Where that window sits depends on how the
    // engine schedules the stage plans' operators on the fair pool, and it moves whenever a
    // stage needs less memory: earlier sweeps found it at about 40..64, then 24..48, then
    // 24..40 MiB, and CI once ran 28 MiB without spilling; on 2026-12-06 here 6 MiB failed,
    // 10..35 MiB spilled and 40 MiB fitted. So the test starts inside today's window and
    // searches for it if it moved, bisecting between a limit that failed and one that fitted;
    // every probe on the way must keep its promise (`run_limited`): the same tables, or the
    // actionable error and nothing published.
    let (mut failed_below, mut fitted_above) = (4u64, 64u64);
    let mut probes = Vec::new();
    let mut limit = 16;
    let spilled = loop {
        let outcome = run_limited(tmp.path(), &raw, limit, &expected).await;
        probes.push(format!("{limit} MiB: {outcome:?}"));
        match outcome {
            Outcome::Spilled(s) => break s,
            Outcome::Fitted => fitted_above = limit,
            Outcome::OutOfMemory => failed_below = limit,
        }
        assert!(
            fitted_above > failed_below + 1,
            "no limit spilled and completed: {probes:?}"
        );
        limit = (failed_below + fitted_above) / 2;
    };
    // the search, for whoever moves the window next
    eprintln!("memory limits probed: {probes:?}");
    assert!(spilled.files > 0 && spilled.bytes > 0, "{probes:?}");

    // far too little memory for the joins: a clear error naming the stage and the knob
    assert!(matches!(
        run_limited(tmp.path(), &raw, 1, &expected).await,
        Outcome::OutOfMemory
    ));
}
