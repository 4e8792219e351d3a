//! Safe to run unattended: a failed or suspicious run never replaces what is published, a
//! period is one consistent version across its tables, retries with the same run id are safe,
//! and no secret or personal data leaks. Every case is a real file, a real flag, a real kill or
//! a real permission, asserted on what the defect violated.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crm_pipeline::error::exit_code;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::common::*;
use crate::faults::partition_runs;

/// The enabled outputs, in publish order.
fn tables(wh: &Path) -> Vec<String> {
    config(wh, wh)
        .outputs
        .iter()
        .filter(|(_, o)| o.enabled)
        .map(|(t, _)| t.clone())
        .collect()
}

/// Run ids and rows of every table's partition of `period`.
async fn snapshot(wh: &Path, period: &str) -> Vec<(String, Vec<String>, i64)> {
    let mut out = Vec::new();
    for t in tables(wh) {
        let dir = wh.join(format!("{t}/period={period}"));
        if !dir.exists() {
            out.push((t, Vec::new(), 0));
            continue;
        }
        let (ids, rows) = partition_runs(wh, &t, period).await;
        out.push((t, ids, rows));
    }
    out
}

/// The snapshot of a period published whole by `run_id`.
fn whole(snap: &[(String, Vec<String>, i64)], run_id: &str) -> bool {
    snap.iter()
        .all(|(_, ids, rows)| *rows == 0 || ids == &vec![run_id.to_string()])
}

async fn revenue(wh: &Path, period: &str) -> f64 {
    let b = query(
        wh,
        "customer_features",
        period,
        "SELECT CAST(sum(revenue) AS DOUBLE) FROM t",
    )
    .await;
    let c = b[0]
        .column(0)
        .as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    c.value(0)
}

/// A copy of the repository's job definition at `dir/pipeline.yaml`, with `edit` applied to its
/// text; it reads the repository's SQL.
fn job_file(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(repo_file("pipeline.yaml")).unwrap();
    let sql = repo_file("sql");
    let text = text.replace("  dir: sql ", &format!("  dir: {} ", sql.display()));
    let path = dir.join("pipeline.yaml");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&path, edit(text)).unwrap();
    path
}

/// The real binary with a job definition, locations and an optional fault.
fn binary(config: &Path, raw: &Path, wh: &Path, fault: Option<&str>, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_crm-pipeline"));
    c.args(args)
        .arg("--config")
        .arg(config)
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

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn record(wh: &Path, run_id: &str) -> serde_json::Value {
    let p = wh.join(format!("_runs/{run_id}/run_results.json"));
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_rejects_every_order_or_shrinks_the_period_keeps_the_good_partitions() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let cfg = config(&raw, &wh);
    run_period(&cfg, "2024-06", "good").await.1.unwrap();
    let good = snapshot(&wh, "2024-06").await;
    assert!(whole(&good, "good"));
    let good_revenue = revenue(&wh, "2024-06").await;
    assert_eq!(good_revenue, 240.0);

    // every order timestamp in a format the job cannot read
    let orders = std::fs::read_to_string(raw.join("orders/orders.csv")).unwrap();
    let us_dates = orders
        .replace("2024-01-05 10:00:00", "01/05/2024 10:00 AM")
        .replace("2024-03-05 10:00:00", "03/05/2024 10:00 AM")
        .replace("2024-02-10 12:00:00", "02/10/2024 12:00 PM")
        .replace("2024-05-20 09:00:00", "05/20/2024 09:00 AM");
    write(&raw, "orders/orders.csv", &us_dates);
    let (results, outcome) = run_period(&cfg, "2024-06", "all-rejected").await;
    let err = outcome.unwrap_err();
    assert_eq!(err.exit_code(), exit_code::DATA_QUALITY, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("source `orders`: 4 of 4 rows (100.0%)"),
        "{msg}"
    );
    assert!(msg.contains("invalid_order_ts: 4"), "{msg}");
    assert!(results.gate.iter().any(|g| g.status == "fail"));
    assert_eq!(
        snapshot(&wh, "2024-06").await,
        good,
        "the good period must stay"
    );
    assert_eq!(revenue(&wh, "2024-06").await, good_revenue);

    // a 1997 history: every order before min_valid_date
    write(&raw, "orders/orders.csv", orders.replace("2024-", "1997-"));
    let err = run_period(&cfg, "2024-06", "old-history")
        .await
        .1
        .unwrap_err();
    assert_eq!(err.exit_code(), exit_code::DATA_QUALITY);
    assert!(err.to_string().contains("order_ts_out_of_range"), "{err}");
    assert_eq!(snapshot(&wh, "2024-06").await, good);

    // a period long after the data ends, and one that has not closed yet
    write(&raw, "orders/orders.csv", &orders);
    let err = run_period(&cfg, "2026-01", "beyond").await.1.unwrap_err();
    assert_eq!(err.exit_code(), exit_code::DATA_QUALITY);
    assert!(err.to_string().contains("--allow-beyond-data"), "{err}");
    assert!(!wh.join("customer_features/period=2026-01").exists());
    let today = chrono::Utc::now().date_naive();
    let open = crm_pipeline::period::Period::containing(cfg.period.grain, today).label();
    let err = run_period(&cfg, &open, "open").await.1.unwrap_err();
    assert_eq!(err.exit_code(), exit_code::DATA_QUALITY);
    assert!(err.to_string().contains("--allow-open-period"), "{err}");
    let err = run_period(&cfg, "2030-01", "future").await.1.unwrap_err();
    assert!(err.to_string().contains("has not closed"), "{err}");

    // a rerun that would lose most of the revenue: C1's orders are missing from the extract
    let partial: String = orders
        .lines()
        .filter(|l| l.starts_with("order_id") || l.starts_with("O4,"))
        .map(|l| format!("{l}\n"))
        .collect();
    write(&raw, "orders/orders.csv", &partial);
    let err = run_period(&cfg, "2024-06", "shrunk").await.1.unwrap_err();
    assert_eq!(err.exit_code(), exit_code::DATA_QUALITY);
    let msg = err.to_string();
    assert!(
        msg.contains("customer_features revenue: 240 now published, 70 in this run"),
        "{msg}"
    );
    assert!(msg.contains("--allow-shrink"), "{msg}");
    assert_eq!(snapshot(&wh, "2024-06").await, good);
    // forced, it replaces the period
    let opts = crm_pipeline::run::RunOptions {
        period: crm_pipeline::period::Period::parse(cfg.period.grain, "2024-06").unwrap(),
        run_id: "forced".into(),
        allow_empty: false,
        allow: crm_pipeline::quality::gate::Allowances {
            shrink: true,
            ..Default::default()
        },
        command: vec!["test".into()],
        config_text: String::new(),
        previous_ready: None,
    };
    let (results, outcome) =
        crm_pipeline::run::run(&resolve(&cfg, &Default::default()), &opts).await;
    outcome.unwrap();
    assert!(
        results
            .warnings
            .iter()
            .any(|w| w.contains("--allow-shrink"))
    );
    assert_eq!(revenue(&wh, "2024-06").await, 70.0);
    assert!(whole(&snapshot(&wh, "2024-06").await, "forced"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_that_fails_or_is_killed_at_any_table_leaves_one_version_of_the_period() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let job = repo_file("pipeline.yaml");
    let cfg = config(&raw, &wh);
    run_period(&cfg, "2024-06", "good").await.1.unwrap();
    let good = snapshot(&wh, "2024-06").await;
    let names = tables(&wh);
    assert!(names.len() >= 9);

    // a failure (an error, not a crash) just before each table: everything rolled back
    for (i, t) in names.iter().enumerate() {
        let id = format!("fail-{i}");
        let out = binary(
            &job,
            &raw,
            &wh,
            Some(&format!("fail:publish:before:{t}")),
            &["run", "--period", "2024-06", "--run-id", &id],
        )
        .output()
        .unwrap();
        assert_eq!(out.status.code(), Some(4), "{}", text(&out));
        assert!(text(&out).contains("rolled back"), "{}", text(&out));
        assert_eq!(snapshot(&wh, "2024-06").await, good, "failed at {t}");
        let rec = record(&wh, &id);
        assert_eq!(rec["publish"]["state"], "rolled_back", "{rec}");
        assert_eq!(
            rec["publish"]["rolled_back"]
                .as_array()
                .map_or(0, |a| a.len()),
            i,
            "{rec}"
        );
        assert_eq!(rec["outputs"], serde_json::json!([]));
        assert!(!wh.join("_publish/period=2024-06.json").exists());
    }

    // a real permission: the fifth table's folder is immutable (chattr +i stops root too)
    let locked = wh.join(&names[4]);
    let immutable = Command::new("chattr")
        .arg("+i")
        .arg(&locked)
        .status()
        .is_ok_and(|s| s.success());
    if immutable {
        let out = binary(
            &job,
            &raw,
            &wh,
            None,
            &["run", "--period", "2024-06", "--run-id", "no-permission"],
        )
        .output()
        .unwrap();
        let _ = Command::new("chattr").arg("-i").arg(&locked).status();
        assert_eq!(out.status.code(), Some(4), "{}", text(&out));
        let t = text(&out);
        assert!(
            t.contains(&format!("publishing `{}` failed", names[4])),
            "{t}"
        );
        assert!(t.contains("Operation not permitted"), "{t}");
        assert_eq!(snapshot(&wh, "2024-06").await, good);
    } else {
        eprintln!("chattr +i is not available here: the real-permission case was skipped");
    }

    // killed just before the last table: mixed on disk until the next run of the period starts
    let last = names.last().unwrap();
    let out = binary(
        &job,
        &raw,
        &wh,
        Some(&format!("publish:before:{last}")),
        &["run", "--period", "2024-06", "--run-id", "killed"],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(wh.join("_publish/period=2024-06.json").exists());
    // the next run of the period restores it first; here it then fails itself, early
    let out = binary(
        &job,
        &raw,
        &wh,
        Some("fail:stage:after:stg_orders"),
        &["run", "--period", "2024-06", "--run-id", "after-kill"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(snapshot(&wh, "2024-06").await, good, "rolled back on start");
    let rec = record(&wh, "after-kill");
    assert!(
        rec["publish"]["recovered"].is_string(),
        "{}",
        serde_json::to_string_pretty(&rec).unwrap()
    );
    assert!(
        rec["publish"]["recovered"]
            .as_str()
            .unwrap()
            .contains("rolled back"),
        "{rec}"
    );

    // killed after the commit: the next start completes it
    let out = binary(
        &job,
        &raw,
        &wh,
        Some("publish:after_commit"),
        &["run", "--period", "2024-06", "--run-id", "committed"],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(whole(&snapshot(&wh, "2024-06").await, "committed"));
    let out = binary(
        &job,
        &raw,
        &wh,
        Some("fail:stage:after:stg_orders"),
        &["run", "--period", "2024-06", "--run-id", "after-commit"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(whole(&snapshot(&wh, "2024-06").await, "committed"));
    assert!(
        record(&wh, "after-commit")["publish"]["recovered"]
            .as_str()
            .unwrap()
            .contains("completed")
    );
    assert!(!wh.join("_publish/period=2024-06.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_run_id_succeeds_and_reads_nothing_of_the_dead_attempt() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    generate_local(&raw, 1500, 21).await;
    let job = repo_file("pipeline.yaml");
    let run = |fault: Option<&str>, id: &str, period: &str| {
        let started = std::time::Instant::now();
        let out = binary(
            &job,
            &raw,
            &wh,
            fault,
            &["run", "--period", period, "--run-id", id],
        )
        .output()
        .unwrap();
        (out, started.elapsed().as_secs_f64())
    };
    let (clean, clean_secs) = run(None, "clean", "2024-11");
    assert!(clean.status.success(), "{}", text(&clean));
    let clean_features = pretty(
        &query(
            &wh,
            "customer_features",
            "2024-11",
            "SELECT customer_id, orders, revenue FROM t ORDER BY customer_id",
        )
        .await,
    );

    // killed once several stages were materialised in its scratch space
    let (killed, _) = run(Some("stage:after:stg_surveys"), "airflow-try", "2024-11");
    assert!(!killed.status.success());
    assert!(wh.join("_scratch/airflow-try/attempt-1/stages").exists());
    let (retry, retry_secs) = run(None, "airflow-try", "2024-11");
    assert!(retry.status.success(), "{}", text(&retry));
    assert!(
        retry_secs < clean_secs * 3.0 + 20.0,
        "the retry took {retry_secs:.1}s, a clean run {clean_secs:.1}s"
    );
    let rec = record(&wh, "airflow-try");
    assert_eq!(rec["attempt"], 2);
    assert_eq!(rec["status"], "success");
    for s in rec["sources"].as_array().unwrap() {
        assert_eq!(s["reconciled"], true, "{s}");
    }
    let first = std::fs::read_to_string(wh.join("_runs/airflow-try/attempts/1.json")).unwrap();
    assert!(first.contains("\"status\": \"running\""), "{first}");
    assert!(
        !wh.join("_scratch/airflow-try").exists(),
        "dead scratch removed"
    );
    let retried_features = pretty(
        &query(
            &wh,
            "customer_features",
            "2024-11",
            "SELECT customer_id, orders, revenue FROM t ORDER BY customer_id",
        )
        .await,
    );
    assert_eq!(retried_features, clean_features);

    // killed mid-publish, then retried with the same run id
    let (killed, _) = run(Some("publish:mid_swap"), "airflow-pub", "2024-11");
    assert!(!killed.status.success());
    let (retry, retry_secs) = run(None, "airflow-pub", "2024-11");
    assert!(retry.status.success(), "{}", text(&retry));
    assert!(retry_secs < clean_secs * 3.0 + 20.0, "{retry_secs:.1}s");
    assert!(whole(&snapshot(&wh, "2024-11").await, "airflow-pub"));
    assert!(
        wh.join("customer_features/period=2024-11/part-airflow-pub-a2-00000.parquet")
            .exists()
    );

    // one run id for two periods: the second is refused before it touches anything
    let (other, _) = run(None, "airflow-pub", "2024-10");
    assert_eq!(other.status.code(), Some(2), "{}", text(&other));
    assert!(
        text(&other).contains("run id `airflow-pub` was already used for period 2024-11"),
        "{}",
        text(&other)
    );
    assert!(!wh.join("customer_features/period=2024-10").exists());
}

/// Every text the job left: its output, and every file of the warehouse (Parquet rendered).
async fn everything_written(wh: &Path, outputs: &[Output]) -> String {
    let mut all = String::new();
    for o in outputs {
        all.push_str(&text(o));
    }
    let ctx = SessionContext::new();
    for entry in walk(wh) {
        if entry.extension().is_some_and(|e| e == "parquet") {
            let df = ctx
                .read_parquet(entry.display().to_string(), ParquetReadOptions::default())
                .await
                .unwrap();
            for b in df.collect().await.unwrap() {
                for c in b.columns() {
                    let c = datafusion::arrow::compute::cast(c, &DataType::Utf8).unwrap();
                    let s = c.as_string::<i32>();
                    for i in 0..s.len() {
                        if !s.is_null(i) {
                            all.push_str(s.value(i));
                            all.push('\n');
                        }
                    }
                }
            }
        } else {
            all.push_str(&String::from_utf8_lossy(&std::fs::read(&entry).unwrap()));
        }
    }
    all
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_planted_secret_or_personal_data_appears_anywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    // customers as JSON Lines, one row broken mid-object, and two customers sharing an e-mail
    std::fs::remove_dir_all(raw.join("customers")).unwrap();
    write(
        &raw,
        "customers/customers.jsonl",
        "{\"customer_id\": \"C1\", \"full_name\": \"Ada Plantedname\", \"email\": \"shared.planted@example.com\", \"phone\": \"+1-555-0101\", \"region\": \"north\"}\n\
         {\"customer_id\": \"C2\", \"full_name\": \"Bo Plantedname\", \"email\": \"shared.planted@example.com\", \"phone\": \"+1-555-0102\", \"region\": \"south\"}\n\
         {\"customer_id\": \"C3\", \"full_name\": \"Cy Plantedname\", \"email\": \"cy.planted@example.com\", \"phone\": \"+1-555-0103\", \"region\": \"east\"}\n\
         {\"customer_id\": \"C4\", \"full_name\": \"Zelda Quuxworth\", \"email\": \"zelda.planted@example.com\", \"phone\": \"+1-555-0199\", \"birth_date\": \"1931-07-1\n\
         \"Zelda Quuxworth zelda.planted@example.com\"\n",
    );
    let job = job_file(&tmp.path().join("job"), |t| {
        t.replace(
            "customers:         {format: csv,",
            "customers:         {format: jsonl,",
        )
        .replace(
            "checks:\n",
            "checks:\n  - {table: stg_customers, check: unique, column: email, severity: warn}\n",
        )
    });
    let secret = "PlantedSecret9876";
    let mut outputs = Vec::new();
    let out = binary(
        &job,
        &raw,
        &wh,
        None,
        &[
            "run",
            "--period",
            "2024-06",
            "--run-id",
            "pii",
            "--report",
            "-vv",
            "--log-format",
            "json",
        ],
    )
    .env("AWS_SECRET_ACCESS_KEY", secret)
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let rec = record(&wh, "pii");
    let check = rec["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "unique stg_customers.email")
        .unwrap();
    assert_eq!(check["status"], "warn", "{check}");
    assert!(
        check["sample"][0]
            .as_str()
            .unwrap()
            .starts_with("[redacted]"),
        "{check}"
    );
    let customers = rec["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "customers")
        .unwrap();
    assert!(
        customers["quarantined"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("malformed_json")),
        "{customers}"
    );
    outputs.push(out);

    // credentials in a URL, and secrets in store options that can carry them
    let out = binary(
        &repo_file("pipeline.yaml"),
        Path::new(&format!("s3://AKIAPLANTED:{secret}@raw-bucket/raw/")),
        &wh,
        None,
        &["run", "--period", "2024-06"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("holds credentials"), "{}", text(&out));
    outputs.push(out);
    for (key, value) in [
        (
            "proxy_url",
            format!("http://user:{secret}@proxy.internal:3128"),
        ),
        (
            "aws_endpoint",
            format!("http://user:{secret}@minio.internal:9000"),
        ),
        ("aws_sse_customer_key_base64", secret.to_string()),
        ("aws_secret_access_key", format!("{secret}${{env:HOME}}")),
    ] {
        let job = job_file(&tmp.path().join(format!("job-{key}")), |t| {
            format!("{t}\nstores:\n  s3://partner:\n    {key}: \"{value}\"\n")
        });
        let out = binary(&job, &raw, &wh, None, &["validate"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{key}: {}", text(&out));
        assert!(
            text(&out).contains(&format!("stores.s3://partner.{key}")),
            "{}",
            text(&out)
        );
        outputs.push(out);
    }

    let all = everything_written(&wh, &outputs).await;
    assert!(
        all.len() > 10_000,
        "only {} characters were scanned",
        all.len()
    );
    for planted in [
        secret,
        "Plantedname",
        "Zelda",
        "Quuxworth",
        "planted@example.com",
        "555-01",
        "1931-07-1",
    ] {
        assert!(
            !all.contains(planted),
            "`{planted}` leaked: ...{}...",
            all.find(planted)
                .map(|i| &all[i.saturating_sub(200)..(i + 100).min(all.len())])
                .unwrap_or("")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_leftovers_hidden_folders_and_symlinks_are_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let orders = std::fs::read_to_string(raw.join("orders/orders.csv")).unwrap();
    write(&raw, "orders/_temporary/0/task-1/part-0.csv", &orders);
    write(&raw, "orders/.snapshot/hourly/orders.csv", &orders);
    let outside = tmp.path().join("outside.csv");
    std::fs::write(&outside, "root:x:0:0:PLANTEDOUTSIDE:/root:/bin/bash\n").unwrap();
    std::os::unix::fs::symlink(&outside, raw.join("orders/passwd.csv")).unwrap();
    std::os::unix::fs::symlink(raw.join("orders"), raw.join("customers/linked")).unwrap();
    let job = repo_file("pipeline.yaml");
    let out = binary(
        &job,
        &raw,
        &wh,
        None,
        &["run", "--period", "2024-06", "--run-id", "hidden", "-v"],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let rec = record(&wh, "hidden");
    let orders = rec["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "orders")
        .unwrap()
        .clone();
    assert_eq!(orders["rows_read"], 4, "{orders}");
    assert_eq!(orders["files"], 1, "{orders}");
    let warnings = orders["warnings"].to_string();
    assert!(warnings.contains("skipped passwd.csv"), "{warnings}");
    let all = everything_written(&wh, &[out]).await;
    assert!(
        !all.contains("PLANTEDOUTSIDE"),
        "the linked file's content leaked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_parameters_are_bound_as_literals_and_built_in_names_are_reserved() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let mut cfg = config(&raw, &wh);
    run_period(&cfg, "2024-06", "good").await.1.unwrap();
    let good = snapshot(&wh, "2024-06").await;
    // a quote in a value stays inside its literal: the SQL never changes shape
    cfg.stages.params.insert(
        "min_valid_date".into(),
        serde_yaml_ng::Value::String("2000-01-01' OR TRUE OR '".into()),
    );
    let err = run_period(&cfg, "2024-06", "quoted").await.1.unwrap_err();
    assert_eq!(err.exit_code(), exit_code::CONFIG, "{err}");
    assert!(err.to_string().contains("stg_orders"), "{err}");
    assert_eq!(snapshot(&wh, "2024-06").await, good);
    // a parameter named like a built-in is refused when the job definition is read
    for name in ["as_of", "period_end", "has_orders"] {
        let job = job_file(&tmp.path().join(format!("job-{name}")), |t| {
            t.replace(
                "    new_product_days: 90",
                &format!("    {name}: \"2030-01-01\"\n    new_product_days: 90"),
            )
        });
        let out = binary(&job, &raw, &wh, None, &["validate"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            text(&out).contains(&format!("`stages.params.{name}`: `{name}` is a built-in")),
            "{}",
            text(&out)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_data_and_bad_definitions_get_the_right_exit_code_and_name_the_culprit() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let cfg = config(&raw, &wh);
    let job = repo_file("pipeline.yaml");

    // a damaged previous partition: a data error naming the file
    run_period(&cfg, "2024-05", "may").await.1.unwrap();
    let dir = wh.join("customer_segments/period=2024-05");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 20]).unwrap();
    let err = run_period(&cfg, "2024-06", "june").await.1.unwrap_err();
    assert_eq!(err.exit_code(), exit_code::DATA_QUALITY, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(file.file_name().unwrap().to_str().unwrap()),
        "{msg}"
    );
    assert!(msg.contains("rerun period 2024-05"), "{msg}");
    std::fs::write(&file, &bytes).unwrap();

    // a check on a misspelt column or table: `validate` says so, and so does a run, with exit 2
    for (check, culprit) in [
        (
            "  - {table: customer_features, check: not_null, column: revenu}\n",
            "has no column `revenu`",
        ),
        (
            "  - {table: customer_featurs, check: row_count, min: 1}\n",
            "table `customer_featurs` is not a stage",
        ),
    ] {
        let job = job_file(&tmp.path().join("job-check"), |t| {
            t.replace("checks:\n", &format!("checks:\n{check}"))
        });
        let out = binary(&job, &raw, &wh, None, &["validate"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("`checks[0]`"), "{}", text(&out));
        assert!(text(&out).contains(culprit), "{}", text(&out));
        let out = binary(&job, &raw, &wh, None, &["run", "--period", "2024-06"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("`checks[0]`"), "{}", text(&out));
    }

    // an as-of date before any data: a data error, not a model's configuration error
    let err = run_period(&cfg, "2023-06", "before").await.1.unwrap_err();
    assert_eq!(err.exit_code(), exit_code::DATA_QUALITY, "{err}");
    assert!(err.to_string().contains("before the data begins"), "{err}");

    // a lock that never goes stale is refused in the job definition
    let bad_lock = job_file(&tmp.path().join("job-lock"), |t| {
        t.replace(
            "lock_stale_after_minutes: 360",
            "lock_stale_after_minutes: 0",
        )
    });
    let out = binary(&bad_lock, &raw, &wh, None, &["validate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("must be at least 1"), "{}", text(&out));

    // a header naming a column twice
    let orders = std::fs::read_to_string(raw.join("orders/orders.csv")).unwrap();
    write(
        &raw,
        "orders/orders.csv",
        "order_id,customer_id,order_ts,total_amount,total_amount\nO1,C1,2024-01-05 10:00:00,1,2\n",
    );
    let out = binary(&job, &raw, &wh, None, &["run", "--period", "2024-06"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("the header names `total_amount` 2 times (columns 4, 5)"),
        "{}",
        text(&out)
    );

    // a UTF-16 export: the encoding is named, no raw bytes are echoed
    let utf16: Vec<u8> = std::iter::once(0xfeffu16)
        .chain(orders.encode_utf16())
        .flat_map(|u| u.to_le_bytes())
        .collect();
    write(&raw, "orders/orders.csv", utf16);
    let out = binary(&job, &raw, &wh, None, &["run", "--period", "2024-06"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("UTF-16 (little-endian)"),
        "{}",
        text(&out)
    );
    assert!(!out.stderr.contains(&0u8), "NUL bytes in the message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_are_cut_into_periods_in_the_business_time_zone() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    write(
        &raw,
        "orders/orders.csv",
        "order_id,customer_id,order_ts,total_amount,status,channel\n\
         O1,C1,2024-01-05 10:00:00,100.00,completed,online\n\
         O2,C1,2024-03-10 02:30:00,50.00,completed,store\n\
         O3,C2,2024-06-30T20:00-04:00,20.00,completed,online\n\
         O4,C1,2024-07-01T01:00:00Z,70.00,,online\n\
         O5,C2,2024-07-01T09:00:00-04:00,30.00,,online\n",
    );
    let mut cfg = config(&raw, &wh);
    cfg.time_zone = "America/New_York".into();
    let (results, outcome) = run_period(&cfg, "2024-06", "ny").await;
    outcome.unwrap();
    let orders = results.sources.iter().find(|s| s.name == "orders").unwrap();
    assert_eq!(
        orders.normalised.get("ts_offset_converted"),
        Some(&3),
        "{orders:?}"
    );
    assert_eq!(
        orders.normalised.get("dst_gap_shifted"),
        Some(&1),
        "{orders:?}"
    );
    // 20:00 in New York on 30 June and 01:00 UTC on 1 July are both June for this business
    let b = query(
        &wh,
        "customer_features",
        "2024-06",
        "SELECT customer_id, period_orders, CAST(last_order_date AS VARCHAR) FROM t WHERE customer_id IN ('C1', 'C2') ORDER BY customer_id",
    )
    .await;
    let t = pretty(&b);
    assert!(
        t.contains("| C1          | 1             | 2024-06-30"),
        "{t}"
    );
    assert!(
        t.contains("| C2          | 1             | 2024-06-30"),
        "{t}"
    );
}
