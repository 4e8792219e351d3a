//! Data-quality checks: each kind fires on bad data with its severity; an error publishes
//! nothing and exits with the data-quality code.

use crm_pipeline::error::exit_code;
use crm_pipeline::quality::checks::{CheckConfig, CheckType, Severity};

use crate::common::*;

fn check(table: &str, kind: CheckType, severity: Severity) -> CheckConfig {
    CheckConfig {
        name: None,
        table: table.into(),
        check: kind,
        column: None,
        columns: Vec::new(),
        values: Vec::new(),
        min: None,
        max: None,
        to: None,
        max_age_days: None,
        severity,
        tolerance: 0.0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_kind_fires_on_bad_data_as_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let mut cfg = config(&raw, &wh);
    let w = Severity::Warn;
    let mut checks = Vec::new();
    let mut c = check("customer_features", CheckType::NotNull, w);
    c.column = Some("last_order_date".into()); // C3 never bought
    checks.push((c, vec![]));
    let mut c = check("stg_orders", CheckType::Unique, w);
    c.column = Some("customer_id".into()); // C1 has three orders
    checks.push((c, vec!["C1"]));
    let mut c = check("customer_features", CheckType::AcceptedValues, w);
    c.column = Some("region".into());
    c.values = vec!["north".into(), "south".into()];
    checks.push((c, vec!["east"]));
    let mut c = check("customer_features", CheckType::Range, w);
    c.column = Some("revenue".into());
    c.max = Some(100.0);
    checks.push((c, vec!["220"]));
    let mut c = check("customer_features", CheckType::RowCount, w);
    c.max = Some(2.0);
    checks.push((c, vec![]));
    let mut c = check("customer_features", CheckType::Relationships, w);
    c.column = Some("customer_id".into());
    c.to = Some("int_orders.customer_id".into());
    checks.push((c, vec!["C3"]));
    let mut c = check("int_orders", CheckType::Freshness, w);
    c.column = Some("order_date".into());
    c.max_age_days = Some(10); // the latest order is 41 days before the as-of date
    checks.push((c, vec!["2024-05-20"]));
    cfg.checks = checks.iter().map(|(c, _)| c.clone()).collect();
    let (results, outcome) = run_period(&cfg, "2024-06", "warn").await;
    outcome.unwrap();
    assert_eq!(results.checks.len(), checks.len());
    for ((c, sample), o) in checks.iter().zip(&results.checks) {
        assert_eq!(o.status, "warn", "{} did not fire: {o:?}", c.display_name());
        for s in sample {
            assert!(
                o.sample.iter().any(|x| x.starts_with(s)),
                "{}: sample {:?} lacks {s}",
                o.name,
                o.sample
            );
        }
    }
    assert!(
        results
            .warnings
            .iter()
            .any(|w| w.contains("freshness int_orders.order_date")),
        "{:?}",
        results.warnings
    );
    // a tolerance above the failing fraction lets the check pass
    let mut c = checks[0].0.clone();
    c.tolerance = 0.5;
    cfg.checks = vec![c];
    let (results, outcome) = run_period(&cfg, "2024-06", "tolerated").await;
    outcome.unwrap();
    assert_eq!(results.checks[0].status, "pass", "{:?}", results.checks[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_check_publishes_nothing_and_exits_with_the_data_quality_code() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let mut cfg = config(&raw, &wh);
    let mut c = check("customer_features", CheckType::Range, Severity::Error);
    c.column = Some("revenue".into());
    c.max = Some(100.0);
    cfg.checks = vec![c];
    let (results, outcome) = run_period(&cfg, "2024-06", "dq").await;
    let err = outcome.unwrap_err();
    assert_eq!(err.exit_code(), exit_code::DATA_QUALITY);
    assert!(
        err.to_string().contains("range customer_features.revenue"),
        "{err}"
    );
    assert_eq!(results.checks[0].status, "fail");
    assert!(results.outputs.is_empty());
    assert!(
        !wh.join("customer_features").exists(),
        "nothing may be published"
    );
    assert!(results.summary()["exit_code"] == 3, "{}", results.summary());
}
