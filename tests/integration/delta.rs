//! Delta Lake outputs (`table_format: delta`) on the local filesystem: the tables read by an
//! independent reader (the Python `deltalake` package, tests/readers/delta_rows.py, installed by
//! scripts/install-test-deps.sh) hold the same rows as the Parquet format's; a rerun is exactly
//! one commit per table and time travel returns the replaced rows; a publish failing or killed
//! around the commit leaves every table at its old version or its new one and the next run
//! succeeds; runs of two periods committing at once both land; a changed column type is refused
//! with nothing committed. The same on the SeaweedFS S3 server is in `s3.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use crm_pipeline::job::JobSpec;
use crm_pipeline::layout::Layout;
use crm_pipeline::period::Period;
use crm_pipeline::publish::TableFormat;
use crm_pipeline::publish::published;
use crm_pipeline::storage::Location;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;

use crate::common::*;

/// One answer of the independent reader.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Read {
    /// The Delta version read (None for a Parquet folder).
    pub version: Option<i64>,
    /// The distinct run ids of the rows.
    pub run_ids: Vec<String>,
    /// Every row but run_id and period, as sorted JSON lines.
    pub rows: Vec<String>,
}

/// Asks the independent reader (tests/readers/delta_rows.py) every request at once.
pub fn read_independently(requests: &[serde_json::Value]) -> Vec<Read> {
    use std::io::Write;
    let python = repo_file(".venv-test/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-test-deps.sh (it installs deltalake and pyarrow)",
        python.display()
    );
    let mut child = Command::new(python)
        .arg(repo_file("tests/readers/delta_rows.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(requests).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Delta reader failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A Delta table request.
pub fn delta_request(table: &str, period: &str, version: Option<i64>) -> serde_json::Value {
    serde_json::json!({"delta": table, "period": period, "version": version})
}

const PERIODS: &[&str] = &["2024-10", "2024-11", "2024-12"];

fn delta_config(raw: &Path, wh: &Path) -> JobSpec {
    let mut cfg = config(raw, wh);
    cfg.table_format = TableFormat::Delta;
    cfg
}

/// The enabled outputs, in publish order.
pub fn tables(cfg: &JobSpec) -> Vec<String> {
    cfg.outputs
        .iter()
        .filter(|(_, o)| o.enabled)
        .map(|(t, _)| t.clone())
        .collect()
}

fn layout(wh: &Path) -> Layout {
    Layout::for_warehouse(Location::parse(&wh.display().to_string()).unwrap())
}

/// What our own reader sees of one period: per table, the Delta version and the run ids.
async fn state(
    wh: &Path,
    tables: &[String],
    period: &str,
) -> Vec<(String, Option<i64>, Vec<String>)> {
    let layout = layout(wh);
    let p = Period::parse(crm_pipeline::period::Grain::Month, period).unwrap();
    let mut out = Vec::new();
    for t in tables {
        let Some(part) = published::partition(&layout, t, &p).await.unwrap() else {
            out.push((t.clone(), None, Vec::new()));
            continue;
        };
        assert_eq!(part.format, TableFormat::Delta, "{t}");
        let ctx = SessionContext::new();
        part.register(&ctx, "t", None).await.unwrap();
        let b = ctx
            .sql("SELECT DISTINCT run_id FROM t ORDER BY run_id")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let mut ids = Vec::new();
        for b in &b {
            let c = cast(b.column(0), &DataType::Utf8).unwrap();
            ids.extend(c.as_string::<i32>().iter().flatten().map(str::to_string));
        }
        out.push((t.clone(), part.version, ids));
    }
    out
}

fn run_ids(s: &[(String, Option<i64>, Vec<String>)]) -> Vec<(String, Vec<String>)> {
    s.iter()
        .map(|(t, _, ids)| (t.clone(), ids.clone()))
        .collect()
}

fn versions(s: &[(String, Option<i64>, Vec<String>)]) -> BTreeMap<String, i64> {
    s.iter()
        .map(|(t, v, _)| (t.clone(), v.unwrap_or(-1)))
        .collect()
}

/// Every table holds `run_id`'s rows (or none, for a table that may be empty).
fn all_of(s: &[(String, Option<i64>, Vec<String>)], run_id: &str) -> bool {
    s.iter()
        .all(|(_, _, ids)| ids.is_empty() || ids == &[run_id.to_string()])
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn binary(raw: &Path, wh: &Path, fault: Option<&str>, run_id: &str) -> Output {
    let mut c = crate::faults::crm_pipeline(
        raw,
        wh,
        fault,
        &["run", "--period", "2024-06", "--run-id", run_id],
    );
    c.args(["--table-format", "delta"]);
    c.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_tables_hold_the_parquet_rows_and_a_rerun_is_one_commit_with_time_travel() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, whp, whd) = (
        tmp.path().join("raw"),
        tmp.path().join("parquet"),
        tmp.path().join("delta"),
    );
    generate_local(&raw, 300, 5).await;
    let parquet = config(&raw, &whp);
    let delta = delta_config(&raw, &whd);
    for p in PERIODS {
        run_period(&parquet, p, &format!("p-{p}"))
            .await
            .1
            .unwrap_or_else(|e| panic!("parquet {p}: {e}"));
        run_period(&delta, p, &format!("d-{p}"))
            .await
            .1
            .unwrap_or_else(|e| panic!("delta {p}: {e}"));
    }
    let names = tables(&delta);
    assert!(names.len() >= 9, "{names:?}");
    let table_uri = |t: &str| whd.join(t).display().to_string();
    let mut requests = Vec::new();
    for t in &names {
        for p in PERIODS {
            requests.push(delta_request(&table_uri(t), p, None));
            requests.push(serde_json::json!({
                "parquet": whp.join(format!("{t}/period={p}")).display().to_string()
            }));
        }
    }
    let got = read_independently(&requests);
    let mut before = BTreeMap::new();
    for (i, pair) in got.chunks(2).enumerate() {
        let (t, p) = (&names[i / PERIODS.len()], PERIODS[i % PERIODS.len()]);
        let (d, q) = (&pair[0], &pair[1]);
        assert_eq!(d.rows.len(), q.rows.len(), "{t} {p}: row counts differ");
        assert_eq!(d.rows, q.rows, "{t} {p}: the Delta table's rows differ");
        assert!(
            d.rows.is_empty() || d.run_ids == [format!("d-{p}")],
            "{t} {p}: {:?}",
            d.run_ids
        );
        assert!(
            !d.rows.is_empty() || t == "quarantine" || t == "segment_migration" && p == PERIODS[0],
            "{t} {p} is empty"
        );
        before.insert((t.clone(), p), d.clone());
    }

    // a rerun of the middle period: one more commit per table, its rows replaced, the others
    // untouched, and the previous version still readable
    run_period(&delta, "2024-11", "d-rerun").await.1.unwrap();
    let mut requests = Vec::new();
    for t in &names {
        for p in PERIODS {
            requests.push(delta_request(&table_uri(t), p, None));
        }
        let old = before[&(t.clone(), "2024-11")].version.unwrap();
        requests.push(delta_request(&table_uri(t), "2024-11", Some(old)));
    }
    let got = read_independently(&requests);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(whd.join("_runs/d-rerun/run_results.json")).unwrap())
            .unwrap();
    for (i, t) in names.iter().enumerate() {
        let answers = &got[i * 4..i * 4 + 4];
        let old = &before[&(t.clone(), "2024-11")];
        let v = old.version.unwrap();
        for (j, p) in PERIODS.iter().enumerate() {
            assert_eq!(answers[j].version, Some(v + 1), "{t}: one commit per rerun");
            let was = &before[&(t.clone(), *p)];
            if *p == "2024-11" {
                assert_eq!(answers[j].rows, was.rows, "{t}: same inputs, same rows");
                assert!(
                    was.rows.is_empty() || answers[j].run_ids == ["d-rerun"],
                    "{t}: {:?}",
                    answers[j].run_ids
                );
            } else {
                assert_eq!(answers[j].rows, was.rows, "{t} {p} changed");
                assert_eq!(answers[j].run_ids, was.run_ids, "{t} {p} changed");
            }
        }
        // time travel to the version before the rerun gives the replaced rows
        assert_eq!(&answers[3].rows, &old.rows, "{t}");
        assert_eq!(&answers[3].run_ids, &old.run_ids, "{t}");
        // the run record names the version it committed
        let out = record["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["table"] == t.as_str())
            .unwrap_or_else(|| panic!("{t} is not in the run record"));
        assert_eq!(out["format"], "delta", "{out}");
        assert_eq!(out["delta_version"], v + 1, "{out}");
    }

    // backfill --only-missing sees the Delta periods as published; the report reads them
    let bin = |args: &[&str]| {
        let mut c = crate::faults::crm_pipeline(&raw, &whd, None, args);
        c.args(["--table-format", "delta"]);
        c.output().unwrap()
    };
    let runs = || whd.join("_runs").read_dir().unwrap().count();
    let before_backfill = runs();
    let out = bin(&[
        "backfill",
        "--from",
        "2024-10",
        "--to",
        "2024-12",
        "--only-missing",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("already published by run d-2024-10"),
        "{said}"
    );
    assert!(said.contains("already published by run d-rerun"), "{said}");
    // 2024-12 was published against the 2024-11 the rerun replaced: stale, so republished
    assert!(said.contains("growth and migration are stale"), "{said}");
    assert_eq!(
        runs(),
        before_backfill + 1,
        "only the stale period runs: {said}"
    );
    let out = bin(&["report", "--period", "2024-11"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let html = std::fs::read_to_string(whd.join("_reports/period=2024-11/index.html")).unwrap();
    assert!(
        html.contains("d-rerun"),
        "the report names the publishing run"
    );

    // vacuum: the replaced files go, the current version still reads whole
    let replaced = whd.join("customer_features/period=2024-11");
    let files = |d: &Path| d.read_dir().map_or(0, |r| r.count());
    let n_before = files(&replaced);
    let out = bin(&["vacuum", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(files(&replaced), n_before, "a dry run deletes nothing");
    let out = bin(&["vacuum", "--retention-hours", "0"]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "a retention under the table's is refused: {}",
        text(&out)
    );
    let out = bin(&[
        "vacuum",
        "--retention-hours",
        "0",
        "--allow-short-retention",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("files_deleted"), "{}", text(&out));
    assert!(
        files(&replaced) < n_before,
        "the rerun's replaced file is deleted"
    );
    let after = read_independently(&[delta_request(
        &table_uri("customer_features"),
        "2024-11",
        None,
    )]);
    assert_eq!(
        after[0].rows,
        before[&("customer_features".to_string(), "2024-11")].rows
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_publish_failing_or_killed_around_the_commit_leaves_old_or_new_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let names = tables(&config(&raw, &wh));
    let out = binary(&raw, &wh, None, "good");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let good = state(&wh, &names, "2024-06").await;
    assert!(all_of(&good, "good"), "{good:?}");

    // an error just before the third table's commit: the two committed tables are restored by
    // one more commit each, the others untouched
    let out = binary(
        &raw,
        &wh,
        Some(&format!("fail:publish:before_commit:{}", names[2])),
        "fail",
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("rolled back"), "{}", text(&out));
    let now = state(&wh, &names, "2024-06").await;
    assert_eq!(run_ids(&now), run_ids(&good));
    let (v0, v1) = (versions(&good), versions(&now));
    for (i, t) in names.iter().enumerate() {
        let extra = if i < 2 { 2 } else { 0 };
        assert_eq!(v1[t], v0[t] + extra, "{t}: commit and restore, or nothing");
    }
    // the third table's files, brought in but never committed, are gone
    let leftovers: Vec<_> = std::fs::read_dir(wh.join(format!("{}/period=2024-06", names[2])))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.contains("fail"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // killed before any commit, between a table's files and its commit, after the first
    // commit, and after the last: every table holds one run's rows at each instant, and the
    // next run (which first finishes the interrupted publish) succeeds
    for (fault, committed) in [
        (format!("publish:before:{}", names[0]), false),
        (format!("publish:before_commit:{}", names[1]), false),
        ("publish:mid_swap".to_string(), false),
        ("publish:after_commit".to_string(), true),
    ] {
        let before = state(&wh, &names, "2024-06").await;
        let owner = before[0].2[0].clone();
        let out = binary(&raw, &wh, Some(&fault), "killed");
        assert_ne!(out.status.code(), Some(0), "{fault}: {}", text(&out));
        let after = state(&wh, &names, "2024-06").await;
        for (t, _, ids) in &after {
            assert!(ids.len() <= 1, "{fault}: {t} mixes runs: {ids:?}");
        }
        if committed {
            assert!(all_of(&after, "killed"), "{fault}: {after:?}");
        }
        let next = format!("next-{}", fault.replace(':', "-"));
        let out = binary(&raw, &wh, None, &next);
        assert_eq!(out.status.code(), Some(0), "{fault}: {}", text(&out));
        let done = state(&wh, &names, "2024-06").await;
        assert!(all_of(&done, &next), "{fault}: {done:?}");
        let rec: serde_json::Value = serde_json::from_slice(
            &std::fs::read(wh.join(format!("_runs/{next}/run_results.json"))).unwrap(),
        )
        .unwrap();
        if fault != format!("publish:before:{}", names[0]) || committed {
            assert!(
                rec["publish"]["recovered"].is_string(),
                "{fault}: the next run finishes the interrupted publish: {rec}"
            );
        }
        assert_ne!(owner, next);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_two_periods_committing_at_once_both_land() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let cfg = delta_config(&raw, &wh);
    let names = tables(&cfg);
    // first on an empty warehouse (both create the tables), then again (both replace)
    for round in ["a", "b"] {
        let (may_id, june_id) = (format!("may-{round}"), format!("june-{round}"));
        let (may, june) = tokio::join!(
            run_period(&cfg, "2024-05", &may_id),
            run_period(&cfg, "2024-06", &june_id),
        );
        may.1.unwrap_or_else(|e| panic!("may {round}: {e}"));
        june.1.unwrap_or_else(|e| panic!("june {round}: {e}"));
        let (m, j) = (
            state(&wh, &names, "2024-05").await,
            state(&wh, &names, "2024-06").await,
        );
        assert!(all_of(&m, &format!("may-{round}")), "{m:?}");
        assert!(all_of(&j, &format!("june-{round}")), "{j:?}");
    }
    // every commit landed: per table, the create (version 0) and one commit per publish
    let layout = layout(&wh);
    for t in &names {
        let table = crm_pipeline::publish::delta::open(&layout.table(t), None)
            .await
            .unwrap()
            .unwrap();
        let history: Vec<String> = (0..=crm_pipeline::publish::delta::version(&table))
            .map(|v| {
                let log = wh.join(format!("{t}/_delta_log/{v:020}.json"));
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let info = text
                    .lines()
                    .find(|l| l.contains("commitInfo"))
                    .unwrap_or("");
                let info: serde_json::Value = serde_json::from_str(info).unwrap_or_default();
                let info = &info["commitInfo"];
                format!(
                    "{v}: {} {} {}",
                    info["operation"], info["crm_pipeline_action"], info["crm_pipeline_run_id"]
                )
            })
            .collect();
        assert_eq!(
            crm_pipeline::publish::delta::version(&table),
            4,
            "{t}: {history:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_column_type_or_format_is_refused_and_nothing_is_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let cfg = delta_config(&raw, &wh);
    let names = tables(&cfg);
    run_period(&cfg, "2024-06", "v1").await.1.unwrap();
    let good = state(&wh, &names, "2024-06").await;

    let mut changed = cfg.clone();
    let cols = &mut changed.outputs.get_mut("clv_model").unwrap().columns;
    let key = serde_yaml_ng::Value::String("customers_fitted".into());
    assert!(
        cols.contains_key(&key),
        "clv_model declares customers_fitted"
    );
    cols.insert(key, serde_yaml_ng::Value::String("string".into()));
    let (_, outcome) = run_period(&changed, "2024-06", "v2").await;
    let e = outcome.expect_err("a type change is refused").to_string();
    assert!(
        e.contains("customers_fitted")
            && e.contains("change type")
            && e.contains("Nothing was committed"),
        "{e}"
    );
    assert_eq!(state(&wh, &names, "2024-06").await, good);

    // the same warehouse written as plain Parquet is refused too
    let mut parquet = cfg.clone();
    parquet.table_format = TableFormat::Parquet;
    let (_, outcome) = run_period(&parquet, "2024-06", "v3").await;
    let e = outcome.expect_err("parquet onto a Delta table").to_string();
    assert!(e.contains("is a Delta table"), "{e}");
    assert_eq!(state(&wh, &names, "2024-06").await, good);
}
