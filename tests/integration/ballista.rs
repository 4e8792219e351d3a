//! The whole job on Ballista's in-process standalone cluster (a real scheduler and executor
//! talking gRPC and Arrow Flight on loopback) publishes the same tables, row for row, as the
//! local engine; an unreachable scheduler fails fast with an error that names it and the fix.

use std::path::Path;

use crm_pipeline::engine::EngineKind;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::common::*;

const PERIOD: &str = "2024-12";
const PREVIOUS: &str = "2024-11";

/// Every published table.
const TABLES: &[&str] = &[
    "customer_features",
    "customer_value",
    "clv_model",
    "customer_segments",
    "segment_summary",
    "positioning",
    "segment_migration",
    "value_concentration",
    "quarantine",
];

/// A published partition as text: every column but run_id, sorted by all of them.
async fn table_text(wh: &Path, table: &str) -> (usize, String) {
    let ctx = SessionContext::new();
    let dir = wh.join(format!("{table}/period={PERIOD}/"));
    ctx.register_parquet(
        "t",
        dir.display().to_string(),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    let df = ctx.sql("SELECT * EXCLUDE (run_id) FROM t").await.unwrap();
    let n = df.schema().fields().len();
    assert!(n > 0, "{table} has no columns");
    let order: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    let b = ctx
        .sql(&format!(
            "SELECT * EXCLUDE (run_id) FROM t ORDER BY {}",
            order.join(", ")
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    (b.iter().map(|b| b.num_rows()).sum(), pretty(&b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ballista_standalone_publishes_the_same_tables_as_the_local_engine() {
    // CRM_PIPELINE_LOG=info (or ballista=debug) shows the cluster's logs when this fails
    if let Ok(filter) = std::env::var("CRM_PIPELINE_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    generate_local(&raw, 2500, 17).await;
    let (wh_local, wh_ballista) = (tmp.path().join("local"), tmp.path().join("ballista"));

    // the previous period first on each side, so migration and growth have something to compare
    let local = config(&raw, &wh_local);
    assert_eq!(local.engine.kind, EngineKind::Local);
    run_period(&local, PREVIOUS, "local-prev").await.1.unwrap();
    let (_, outcome) = run_period(&local, PERIOD, "local").await;
    outcome.unwrap();

    let mut dist = config(&raw, &wh_ballista);
    crm_pipeline::engine::apply_flags(&mut dist.engine, Some("ballista-standalone"), None).unwrap();
    run_period(&dist, PREVIOUS, "ballista-prev")
        .await
        .1
        .unwrap();
    let (results, outcome) = run_period(&dist, PERIOD, "ballista").await;
    outcome.unwrap();
    assert_eq!(results.outputs.len(), TABLES.len());

    for table in TABLES {
        let (rows_l, text_l) = table_text(&wh_local, table).await;
        let (rows_b, text_b) = table_text(&wh_ballista, table).await;
        assert_eq!(rows_l, rows_b, "{table}: row counts differ");
        if *table != "quarantine" {
            assert!(
                rows_l > 0,
                "{table} is empty; the comparison would prove nothing"
            );
        }
        assert!(
            text_l == text_b,
            "{table} differs between the local engine and Ballista:\n--- local\n{text_l}\n--- ballista\n{text_b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_scheduler_fails_fast_naming_the_url_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    // a port that was just free: nothing listens on it
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("df://127.0.0.1:{port}");
    let mut cfg = config(&raw, &wh);
    crm_pipeline::engine::apply_flags(&mut cfg.engine, None, Some(&url)).unwrap();
    assert_eq!(cfg.engine.kind, EngineKind::Ballista);
    let (results, outcome) = run_period(&cfg, "2024-05", "unreachable").await;
    let err = outcome.unwrap_err();
    let text = err.to_string();
    assert_eq!(err.category(), "source_or_storage", "{text}");
    assert!(text.contains(&url), "{text}");
    assert!(
        text.contains("cannot connect") && text.contains("start the scheduler"),
        "{text}"
    );
    assert_eq!(results.status, "failed");
    assert!(results.outputs.is_empty());
    // nothing was published and the period's lock was released
    assert!(!wh.join("customer_features").exists());
    assert!(
        std::fs::read_dir(wh.join("_locks"))
            .map(|d| d.count() == 0)
            .unwrap_or(true)
    );
}

#[test]
fn engine_flags_override_the_job_definition_and_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(&tmp.path().join("raw"), &tmp.path().join("wh"));
    let e = crm_pipeline::engine::apply_flags(&mut cfg.engine, Some("ballista"), None).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("--scheduler df://host:port"), "{e}");
    let e = crm_pipeline::engine::apply_flags(&mut cfg.engine, None, Some("localhost:50050"))
        .unwrap_err();
    assert!(e.to_string().contains("`localhost:50050`"), "{e}");
    crm_pipeline::engine::apply_flags(&mut cfg.engine, Some("local"), None).unwrap();
    assert_eq!(cfg.engine.kind, EngineKind::Local);
}
