//! Bad input end to end: each case is a clear error naming the file and what to do, or a
//! counted quarantine; never a panic, never a silent drop.

use crate::common::*;
use crm_pipeline::error::exit_code;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_clean_dataset_gives_features_you_can_check_by_eye() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let cfg = config(&raw, &wh);
    let (results, outcome) = run_period(&cfg, "2024-06", "r1").await;
    outcome.unwrap();
    assert_eq!(results.status, "success");
    let t = pretty(
        &query(
            &wh,
            "customer_features",
            "2024-06",
            "SELECT customer_id, first_order_date, last_order_date, recency_days, frequency, orders, revenue, margin, tenure_days FROM t ORDER BY customer_id",
        )
        .await,
    );
    let expected = "\
+-------------+------------------+-----------------+--------------+-----------+--------+---------+--------+-------------+
| customer_id | first_order_date | last_order_date | recency_days | frequency | orders | revenue | margin | tenure_days |
+-------------+------------------+-----------------+--------------+-----------+--------+---------+--------+-------------+
| C1          | 2024-01-05       | 2024-05-20      | 41           | 2         | 3      | 220.0   | 88.0   | 546         |
| C2          | 2024-02-10       | 2024-02-10      | 141          | 0         | 1      | 20.0    | 8.0    | 515         |
| C3          |                  |                 |              | 0         | 0      | 0.0     | 0.0    | 487         |
+-------------+------------------+-----------------+--------------+-----------+--------+---------+--------+-------------+";
    assert_eq!(t, expected);
    let seg = pretty(
        &query(
            &wh,
            "customer_segments",
            "2024-06",
            "SELECT customer_id, rfm_score, rfm8_code, rfm8_segment FROM t ORDER BY customer_id",
        )
        .await,
    );
    assert!(
        seg.contains("| C3          |           |           | unclassified"),
        "{seg}"
    );
    // two buyers cannot fit a CLV model: the run still publishes, CLV falls back to history
    let m = pretty(
        &query(
            &wh,
            "clv_model",
            "2024-06",
            "SELECT model, converged FROM t ORDER BY model",
        )
        .await,
    );
    assert!(m.contains("| bgnbd       | false     |"), "{m}");
    let reason = pretty(
        &query(
            &wh,
            "clv_model",
            "2024-06",
            "SELECT reason FROM t WHERE model = 'bgnbd'",
        )
        .await,
    );
    assert!(reason.contains("repeat"), "{reason}");
    let v = pretty(
        &query(
            &wh,
            "customer_value",
            "2024-06",
            "SELECT customer_id, clv, clv_method FROM t ORDER BY customer_id",
        )
        .await,
    );
    assert!(v.contains("| C1          | 220.0 | historical |"), "{v}");
    assert!(
        results
            .warnings
            .iter()
            .any(|w| w.contains("falls back to historical value")),
        "{:?}",
        results.warnings
    );
    // C1 is more recent, more frequent and bigger than the mean of the two buyers
    assert!(
        seg.contains("| C1          | 444       | 111       | important value"),
        "{seg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_orders_extract_names_the_location_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    std::fs::remove_dir_all(raw.join("orders")).unwrap();
    let (results, outcome) = run_period(&config(&raw, &wh), "2024-06", "r1").await;
    let err = outcome.unwrap_err();
    assert_eq!(err.exit_code(), exit_code::SOURCE_OR_STORAGE);
    let msg = err.to_string();
    assert!(
        msg.contains("source `orders`") && msg.contains("orders/"),
        "{msg}"
    );
    assert!(msg.contains("sources.orders.location"), "{msg}");
    assert_eq!(results.status, "failed");
    let doc = std::fs::read_to_string(wh.join("_runs/r1/run_results.json")).unwrap();
    assert!(doc.contains("\"status\": \"failed\""), "{doc}");
    assert!(
        !wh.join("customer_features").exists(),
        "nothing may be published"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_required_column_names_the_file_and_the_column() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    write(
        &raw,
        "orders/orders.csv",
        "order_id,customer_id,order_ts\nO1,C1,2024-01-05\n",
    );
    let err = run_period(&config(&raw, &wh), "2024-06", "r1")
        .await
        .1
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("orders/orders.csv"), "{msg}");
    assert!(
        msg.contains("missing required column(s) `total_amount`"),
        "{msg}"
    );
    assert!(msg.contains("sources.orders.columns"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_semicolon_file_gets_a_delimiter_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    write(
        &raw,
        "orders/orders.csv",
        "order_id;customer_id;order_ts;total_amount\nO1;C1;2024-01-05;10\n",
    );
    let msg = run_period(&config(&raw, &wh), "2024-06", "r1")
        .await
        .1
        .unwrap_err()
        .to_string();
    assert!(msg.contains("sources.orders.delimiter: \";\""), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    write(&raw, "orders/orders.csv", "");
    let err = run_period(&config(&raw, &wh), "2024-06", "r1")
        .await
        .1
        .unwrap_err();
    assert_eq!(err.exit_code(), exit_code::SOURCE_OR_STORAGE);
    assert!(
        err.to_string().contains("the file is empty (0 bytes)"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_rows_and_wrong_types_are_quarantined_with_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let mut orders = b"order_id,customer_id,order_ts,total_amount,status,channel\n\
O1,C1,2024-01-05 10:00:00,100.00,completed,online\n\
O2,C1,2024-03-05 10:00:00,50.00,completed,store,EXTRA\n\
O3,C2,not a date,20.00,completed,online\n\
O4,C1,2024-05-20 09:00:00,abc,,online\n\
O5,C1,2024-05-21 09:00:00,-5,,online\n\
O6,C9,2024-05-21 09:00:00,5,,online\n\
O1,C1,2024-01-05 10:00:00,100.00,completed,online\n"
        .to_vec();
    orders.extend_from_slice(b"O7,C1,2024-05-22 09:00:00,5,,onl\xffine\n");
    write(&raw, "orders/orders.csv", orders);
    // a deliberately dirty extract: 7 of its 8 orders are quarantined, which the publish gate
    // would refuse (tests/integration/safety.rs); here the subject is the reasons
    let mut cfg = config(&raw, &wh);
    cfg.gate.max_quarantined_share = 1.0;
    cfg.gate.max_days_beyond_data = 366;
    let (results, outcome) = run_period(&cfg, "2024-06", "r1").await;
    outcome.unwrap();
    let src = results.sources.iter().find(|s| s.name == "orders").unwrap();
    assert_eq!(src.rows_read, 8);
    assert_eq!(src.loaded, 1);
    assert!(src.reconciled);
    let reasons: Vec<(&str, u64)> = src
        .quarantined
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("duplicate_order_id", 1),
            ("invalid_order_ts", 1),
            ("invalid_total_amount", 1),
            ("invalid_utf8", 1),
            ("malformed_row", 1),
            ("non_positive_amount", 1),
            ("unknown_customer", 1),
        ]
    );
    let q = query(&wh, "quarantine", "2024-06", "SELECT arrow_cast(reason, 'Utf8'), row_number, arrow_cast(raw, 'Utf8') FROM t WHERE source = 'orders' ORDER BY row_number").await;
    let rows: Vec<(String, i64, String)> = q
        .iter()
        .flat_map(|b| {
            let (r, n, raw) = (
                b.column(0).as_string::<i32>(),
                b.column(1).as_primitive::<Int64Type>(),
                b.column(2).as_string::<i32>(),
            );
            (0..b.num_rows())
                .map(move |i| (r.value(i).to_string(), n.value(i), raw.value(i).to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    let row = |line: i64| {
        rows.iter()
            .find(|r| r.1 == line)
            .cloned()
            .unwrap_or_else(|| panic!("no quarantine row for line {line}: {rows:?}"))
    };
    assert_eq!(
        row(3),
        (
            "malformed_row: expected 6 fields, found 7".into(),
            3,
            "O2,C1,2024-03-05 10:00:00,50.00,completed,store,EXTRA".into()
        )
    );
    assert_eq!(
        row(5),
        (
            "invalid_total_amount".into(),
            5,
            "O4,C1,2024-05-20 09:00:00,abc,,online,,,".into()
        )
    );
    assert_eq!(row(8).0, "duplicate_order_id");
    assert!(row(9).0.starts_with("invalid_utf8"), "{:?}", row(9));
    assert_eq!(rows.len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_gzip_is_a_clear_error_naming_the_file() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let csv = std::fs::read(raw.join("orders/orders.csv")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&csv.repeat(50)).unwrap();
    let bytes = gz.finish().unwrap();
    std::fs::remove_file(raw.join("orders/orders.csv")).unwrap();
    write(&raw, "orders/orders.csv.gz", &bytes[..bytes.len() / 2]);
    let err = run_period(&config(&raw, &wh), "2024-06", "r1")
        .await
        .1
        .unwrap_err();
    assert_eq!(err.exit_code(), exit_code::SOURCE_OR_STORAGE);
    let msg = err.to_string();
    assert!(
        msg.contains("orders/orders.csv.gz") && msg.contains("truncated or corrupt"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bom_is_ignored_and_a_header_only_file_is_an_empty_extract() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let mut csv = b"\xef\xbb\xbf".to_vec();
    csv.extend(std::fs::read(raw.join("orders/orders.csv")).unwrap());
    write(&raw, "orders/orders.csv", csv);
    write(
        &raw,
        "interactions/interactions.csv",
        "customer_id,ts,type\n",
    );
    let (results, outcome) = run_period(&config(&raw, &wh), "2024-06", "r1").await;
    outcome.unwrap();
    let orders = results.sources.iter().find(|s| s.name == "orders").unwrap();
    assert_eq!((orders.rows_read, orders.loaded), (4, 4));
    let inter = results
        .sources
        .iter()
        .find(|s| s.name == "interactions")
        .unwrap();
    assert!(
        inter.present && inter.rows_read == 0 && inter.reconciled,
        "{inter:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_file_is_refused_with_the_missing_columns_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    write(&raw, "orders/orders.csv", noise);
    let err = run_period(&config(&raw, &wh), "2024-06", "r1")
        .await
        .1
        .unwrap_err();
    assert_eq!(err.exit_code(), exit_code::SOURCE_OR_STORAGE);
    assert!(
        err.to_string().contains("missing required column(s)"),
        "{err}"
    );
}
