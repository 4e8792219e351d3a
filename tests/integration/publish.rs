//! Publishing safety: one run per period at a time, stale locks taken over, other periods free.

use crm_pipeline::error::exit_code;
use crm_pipeline::publish::lock::PeriodLock;
use crm_pipeline::storage::Location;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_of_a_locked_period_fails_fast_and_other_periods_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let mut cfg = config(&raw, &wh);
    let warehouse = Location::parse(&wh.display().to_string()).unwrap();
    let held = PeriodLock::acquire(
        &warehouse,
        &crm_pipeline::period::Period::parse(crm_pipeline::period::Grain::Month, "2024-06")
            .unwrap(),
        "the-other-run",
        360,
    )
    .await
    .unwrap();

    let started = std::time::Instant::now();
    let err = run_period(&cfg, "2024-06", "second").await.1.unwrap_err();
    assert!(started.elapsed().as_secs() < 10, "must fail fast");
    assert_eq!(err.exit_code(), exit_code::SOURCE_OR_STORAGE);
    let msg = err.to_string();
    assert!(
        msg.contains("period 2024-06 is being computed by run the-other-run"),
        "{msg}"
    );
    assert!(
        !wh.join("customer_features").exists(),
        "nothing may be published"
    );

    // another period is not blocked
    run_period(&cfg, "2024-05", "other-period").await.1.unwrap();

    // once released, the period runs; the run releases its own lock
    held.release().await;
    run_period(&cfg, "2024-06", "third").await.1.unwrap();
    assert!(!wh.join("_locks/period=2024-06.json").exists());

    // a lock left by a run that died is taken over once stale
    let _dead = PeriodLock::acquire(
        &warehouse,
        &crm_pipeline::period::Period::parse(crm_pipeline::period::Grain::Month, "2024-06")
            .unwrap(),
        "dead-run",
        360,
    )
    .await
    .unwrap();
    cfg.lock_stale_after_minutes = 0;
    run_period(&cfg, "2024-06", "fourth").await.1.unwrap();
}
