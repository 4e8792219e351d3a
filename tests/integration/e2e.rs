//! Generated data end to end: every row accounted for, every planted dirt class quarantined or
//! normalised in the planted amount, one row per customer, deterministic, no PII.

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::common::*;

type Dirt = BTreeMap<String, BTreeMap<String, u64>>;

/// Generates `customers` customers into `raw` and returns the planted dirt counts.
pub async fn generated(raw: &Path, customers: u64, seed: u64) -> Dirt {
    generate_local(raw, customers, seed).await;
    let text = std::fs::read_to_string(raw.join("_ground_truth/dirt.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn planted(d: &Dirt, extract: &str, key: &str) -> u64 {
    d.get(extract)
        .and_then(|m| m.get(key))
        .copied()
        .unwrap_or(0)
}

const TABLES: &[(&str, &str)] = &[
    ("customer_features", "customer_id"),
    ("customer_value", "customer_id"),
    ("customer_segments", "customer_id"),
    ("segment_summary", "scheme, segment"),
    ("value_concentration", "customers"),
    ("clv_model", "model"),
    ("positioning", "scheme, segment"),
    ("quarantine", "source, file, row_number"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_is_accounted_for_and_every_planted_dirt_class_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    let dirt = generated(&raw, 3000, 11).await;
    let (results, outcome) = run_period(&config(&raw, &wh), "2024-12", "e2e").await;
    outcome.unwrap();
    let src = |n: &str| {
        results
            .sources
            .iter()
            .find(|s| s.name == n)
            .unwrap()
            .clone()
    };
    for s in &results.sources {
        assert!(s.reconciled, "{} does not reconcile: {s:?}", s.name);
        // every data row the generator wrote was read (dirt.json counts them for these extracts)
        if ["customers", "orders", "order_items"].contains(&s.name.as_str()) {
            assert_eq!(s.rows_read, planted(&dirt, &s.name, "rows"), "{}", s.name);
        }
    }
    // quarantined, by reason, exactly the planted amounts and nothing else
    let expect = |pairs: &[(&str, &str)], extract: &str| -> BTreeMap<String, u64> {
        pairs
            .iter()
            .map(|(reason, key)| (reason.to_string(), planted(&dirt, extract, key)))
            .filter(|(_, n)| *n > 0)
            .collect()
    };
    assert_eq!(
        src("customers").quarantined,
        expect(&[("duplicate_customer", "duplicate_customer")], "customers")
    );
    assert_eq!(
        src("orders").quarantined,
        expect(
            &[
                ("duplicate_order_id", "duplicate_order_id"),
                ("invalid_order_ts", "invalid_order_ts"),
                ("invalid_total_amount", "invalid_total_amount"),
                ("non_positive_amount", "non_positive_amount"),
                ("unknown_customer", "unknown_customer"),
            ],
            "orders"
        )
    );
    assert_eq!(
        src("order_items").quarantined,
        expect(&[("invalid_quantity", "invalid_quantity")], "order_items")
    );
    // normalised in place, exactly the planted amounts
    assert_eq!(
        src("customers").normalised,
        expect(
            &[
                ("gender_normalised", "gender_case_whitespace"),
                ("invalid_email", "invalid_email"),
                ("region_normalised", "region_case_whitespace"),
            ],
            "customers"
        )
    );
    assert_eq!(
        src("orders").normalised,
        expect(
            &[("channel_normalised", "channel_case_whitespace")],
            "orders"
        )
    );
    // orders dated after the as-of date are left out of the period and counted
    assert_eq!(
        src("orders").after_as_of,
        Some(planted(&dirt, "orders", "after_end"))
    );
    assert_eq!(
        src("orders").loaded,
        planted(&dirt, "orders", "valid") + planted(&dirt, "orders", "after_end")
    );

    // every valid customer exactly once in customer_features and customer_segments
    let valid = planted(&dirt, "customers", "valid");
    for table in ["customer_features", "customer_segments", "customer_value"] {
        let b = query(
            &wh,
            table,
            "2024-12",
            "SELECT count(*), count(DISTINCT customer_id) FROM t",
        )
        .await;
        let counts: Vec<i64> = (0..2)
            .map(|i| {
                b[0].column(i)
                    .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                    .value(0)
            })
            .collect();
        assert_eq!(counts, vec![valid as i64, valid as i64], "{table}");
    }
    // the quarantine table holds exactly the quarantined rows, each with file and line
    let total_q: u64 = results
        .sources
        .iter()
        .flat_map(|s| s.quarantined.values())
        .sum();
    let b = query(
        &wh,
        "quarantine",
        "2024-12",
        "SELECT count(*), count(file), count(row_number) FROM t",
    )
    .await;
    for i in 0..3 {
        assert_eq!(
            b[0].column(i)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(0) as u64,
            total_q
        );
    }
    // the CLV model fitted on clean generated data
    let m = pretty(
        &query(
            &wh,
            "clv_model",
            "2024-12",
            "SELECT model, converged FROM t ORDER BY model",
        )
        .await,
    );
    assert!(
        m.contains("| bgnbd       | true      |") && m.contains("| gamma_gamma | true      |"),
        "{m}"
    );
}

async fn table_text(wh: &Path, table: &str, order: &str) -> String {
    let b = query(
        wh,
        table,
        "2024-12",
        &format!("SELECT * EXCLUDE (run_id) FROM t ORDER BY {order}"),
    )
    .await;
    pretty(&b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_give_identical_tables_and_a_rerun_replaces_not_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    generated(&raw, 1500, 5).await;
    let (wh1, wh2) = (tmp.path().join("wh1"), tmp.path().join("wh2"));
    run_period(&config(&raw, &wh1), "2024-12", "first")
        .await
        .1
        .unwrap();
    run_period(&config(&raw, &wh2), "2024-12", "second")
        .await
        .1
        .unwrap();
    for (table, order) in TABLES {
        assert_eq!(
            table_text(&wh1, table, order).await,
            table_text(&wh2, table, order).await,
            "{table} differs between runs"
        );
    }
    // the files themselves are identical apart from run_id, and a rerun into the same warehouse
    // replaces the partition
    let before = table_text(&wh1, "customer_features", "customer_id").await;
    run_period(&config(&raw, &wh1), "2024-12", "third")
        .await
        .1
        .unwrap();
    assert_eq!(
        before,
        table_text(&wh1, "customer_features", "customer_id").await
    );
    let ids = pretty(
        &query(
            &wh1,
            "customer_features",
            "2024-12",
            "SELECT DISTINCT run_id FROM t",
        )
        .await,
    );
    assert!(ids.contains("third") && !ids.contains("first"), "{ids}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_personal_data_reaches_the_warehouse() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    generated(&raw, 1000, 3).await;
    run_period(&config(&raw, &wh), "2024-12", "pii")
        .await
        .1
        .unwrap();
    // every name, email and phone of the customers extract
    let text = std::fs::read_to_string(raw.join("customers/part-00000.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let mut secrets = std::collections::HashSet::new();
    for r in rdr.records() {
        let r = r.unwrap();
        for i in [1, 2, 3] {
            if r[i].len() > 4 {
                secrets.insert(r[i].to_string());
            }
        }
    }
    assert!(secrets.len() > 1000);
    let ctx = SessionContext::new();
    let mut checked = 0usize;
    for (table, _) in TABLES {
        let dir = wh.join(format!("{table}/period=2024-12/"));
        let df = ctx
            .read_parquet(dir.display().to_string(), ParquetReadOptions::default())
            .await
            .unwrap();
        for f in df.schema().fields() {
            assert!(
                !["full_name", "email", "phone", "birth_date", "annual_income"]
                    .contains(&f.name().as_str()),
                "{table}.{} is personal data",
                f.name()
            );
        }
        for b in df.collect().await.unwrap() {
            for c in b.columns() {
                if !matches!(
                    c.data_type(),
                    DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
                ) {
                    continue;
                }
                let c = datafusion::arrow::compute::cast(c, &DataType::Utf8).unwrap();
                let s = c.as_string::<i32>();
                checked += s.len();
                for i in 0..s.len() {
                    if s.is_null(i) {
                        continue;
                    }
                    let v = s.value(i);
                    assert!(
                        !secrets.iter().any(|p| v.contains(p.as_str())),
                        "{table} holds personal data: {v}"
                    );
                }
            }
        }
    }
    assert!(checked > 5000, "only {checked} text cells were checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holdout_validation_scores_the_last_months_against_a_calibration_fit() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    generated(&raw, 4000, 9).await;
    let mut cfg = config(&raw, &wh);
    cfg.models.clv.holdout_days = 182;
    run_period(&cfg, "2024-12", "holdout").await.1.unwrap();
    let b = query(&wh, "clv_model", "2024-12", "SELECT holdout_customers, holdout_mae, holdout_aggregate_error FROM t WHERE model = 'bgnbd'").await;
    let customers = b[0]
        .column(0)
        .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
        .value(0);
    let mae = b[0]
        .column(1)
        .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
        .value(0);
    let agg = b[0]
        .column(2)
        .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
        .value(0);
    assert!(customers > 2500, "{customers}");
    // data generated from the model itself: the aggregate holdout error is small
    assert!(agg.abs() < 0.1, "aggregate error {agg}");
    assert!(mae > 0.0 && mae < 1.0, "mae {mae}");
    let cal = pretty(
        &query(
            &wh,
            "clv_model",
            "2024-12",
            "SELECT holdout_calibration FROM t WHERE model = 'bgnbd'",
        )
        .await,
    );
    assert!(cal.contains("\"frequency\":\"7+\""), "{cal}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clv_parameters_are_recovered_from_100k_generated_customers() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    generated(&raw, 100_000, 3).await;
    run_period(&config(&raw, &wh), "2024-12", "recovery")
        .await
        .1
        .unwrap();
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(raw.join("_ground_truth/params.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        truth["time_unit"], "week",
        "the pipeline's default time unit is weeks too"
    );
    let b = query(
        &wh,
        "clv_model",
        "2024-12",
        "SELECT r, alpha, a, b, p, q, gamma FROM t ORDER BY model",
    )
    .await;
    let get = |row: usize, col: usize| {
        b[0].column(col)
            .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
            .value(row)
    };
    let fitted = [
        ("r", get(0, 0), &truth["bg_nbd"]["r"]),
        ("alpha", get(0, 1), &truth["bg_nbd"]["alpha"]),
        ("a", get(0, 2), &truth["bg_nbd"]["a"]),
        ("b", get(0, 3), &truth["bg_nbd"]["b"]),
        ("p", get(1, 4), &truth["gamma_gamma"]["p"]),
        ("q", get(1, 5), &truth["gamma_gamma"]["q"]),
        ("gamma", get(1, 6), &truth["gamma_gamma"]["gamma"]),
    ];
    for (name, value, true_value) in fitted {
        let t = true_value.as_f64().unwrap();
        assert!(
            (value - t).abs() / t < 0.10,
            "{name}: fitted {value}, true {t}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clv_auto_fits_three_models_selects_one_and_writes_intervals() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    generated(&raw, 4000, 13).await;
    let mut cfg = config(&raw, &wh);
    cfg.models.clv.model = crm_pipeline::models::customer_value::PurchaseModel::Auto;
    run_period(&cfg, "2024-12", "auto").await.1.unwrap();
    let m = pretty(
        &query(
            &wh,
            "clv_model",
            "2024-12",
            "SELECT model, converged, selected, bic IS NOT NULL AS has_bic, s IS NOT NULL AS has_s FROM t ORDER BY model",
        )
        .await,
    );
    for model in ["bgnbd", "mbgnbd", "pnbd", "gamma_gamma"] {
        assert!(m.contains(&format!("| {model} ")), "{m}");
    }
    let b = query(
        &wh,
        "clv_model",
        "2024-12",
        "SELECT count(*) FROM t WHERE selected AND model <> 'gamma_gamma'",
    )
    .await;
    assert_eq!(
        b[0].column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0),
        1,
        "{m}"
    );
    // every model-scored customer has an interval around its CLV and P(alive)
    let b = query(
        &wh,
        "customer_value",
        "2024-12",
        "SELECT count(*), \
         sum(CASE WHEN clv_p05 <= clv_p50 AND clv_p50 <= clv_p95 THEN 1 ELSE 0 END), \
         sum(CASE WHEN clv_p05 <= clv * 1.000001 AND clv <= clv_p95 * 1.000001 THEN 1 ELSE 0 END), \
         sum(CASE WHEN p_alive_p05 <= p_alive + 1e-12 AND p_alive <= p_alive_p95 + 1e-12 THEN 1 ELSE 0 END) \
         FROM t WHERE clv_method = 'model'",
    )
    .await;
    let v = |i: usize| {
        b[0].column(i)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0)
    };
    assert!(v(0) > 2500, "{}", v(0));
    assert_eq!(v(1), v(0), "ordered interval ends");
    // the point estimate is not a draw, but sits inside its 90% interval for nearly everyone
    assert!(
        v(2) as f64 >= 0.99 * v(0) as f64,
        "CLV inside its interval: {} of {}",
        v(2),
        v(0)
    );
    assert!(
        v(3) as f64 >= 0.99 * v(0) as f64,
        "P(alive) inside its interval: {} of {}",
        v(3),
        v(0)
    );
}
