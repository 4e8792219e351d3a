//! The per-period HTML report: rendered from a real run on generated data, opened in headless
//! Chromium, and checked for drawn charts, no script errors and the same numbers as the tables.
//!
//! Chromium is Debian's `chromium` (`scripts/install-chromium.sh`); `CHROMIUM` overrides the
//! binary. Without it the browser test is skipped locally and fails when `CI=true`.
//! `UPDATE_SCREENSHOT=1` copies the screenshot to docs/report.png (shown in the README);
//! `REPORT_COPY_TO=<file>` keeps a copy of the rendered report.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crm_pipeline::report;
use crm_pipeline::storage::Location;
use datafusion::arrow::array::{
    ArrayRef, AsArray, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use datafusion::parquet::arrow::ArrowWriter;

use crate::common::*;

const PERIOD: &str = "2024-12";

/// Generates `customers` customers and runs PERIOD into `<tmp>/wh`; returns the warehouse.
async fn published(tmp: &Path, customers: u64, run_id: &str) -> PathBuf {
    let (raw, wh) = (tmp.join("raw"), tmp.join("wh"));
    generate_local(&raw, customers, 5).await;
    let (_, outcome) = run_period(&config(&raw, &wh), PERIOD, run_id).await;
    outcome.unwrap();
    wh
}

fn write_table(wh: &Path, table: &str, columns: Vec<(&str, ArrayRef)>) {
    let dir = wh.join(format!("{table}/period={PERIOD}"));
    std::fs::create_dir_all(&dir).unwrap();
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let file = std::fs::File::create(dir.join("part-0.parquet")).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn strings(v: &[String]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

/// Hand-made `positioning` and `segment_migration` partitions (the schema of the contract)
/// for the rfm8 and lifecycle schemes, built from the run's segment_summary: x = average order
/// value, y = average CLV, the two segments of highest average CLV are the targets.
async fn handmade_positioning(wh: &Path, run_id: &str) {
    let b = query(
        wh,
        "segment_summary",
        PERIOD,
        "SELECT arrow_cast(scheme, 'Utf8') AS scheme, arrow_cast(segment, 'Utf8') AS segment, customers, coalesce(avg_order_value, 0) AS x, coalesce(avg_clv, 0) AS y, \
                row_number() OVER (PARTITION BY scheme ORDER BY avg_clv DESC NULLS LAST, segment) AS r \
         FROM t WHERE scheme IN ('rfm8', 'lifecycle') ORDER BY scheme, segment",
    )
    .await;
    let (mut scheme, mut segment, mut customers, mut x, mut y, mut rank) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for batch in &b {
        for i in 0..batch.num_rows() {
            scheme.push(batch.column(0).as_string::<i32>().value(i).to_string());
            segment.push(batch.column(1).as_string::<i32>().value(i).to_string());
            customers.push(batch.column(2).as_primitive::<Int64Type>().value(i));
            x.push(batch.column(3).as_primitive::<Float64Type>().value(i));
            y.push(batch.column(4).as_primitive::<Float64Type>().value(i));
            rank.push(
                batch
                    .column(5)
                    .as_primitive::<datafusion::arrow::datatypes::UInt64Type>()
                    .value(i),
            );
        }
    }
    let n = scheme.len();
    assert!(n >= 6, "the run has rfm8 and lifecycle segments");
    let target: Vec<bool> = rank.iter().map(|r| *r <= 2).collect();
    let text = |what: &str| -> ArrayRef {
        Arc::new(StringArray::from(
            (0..n)
                .map(|i| target[i].then(|| format!("{what} for {}", segment[i])))
                .collect::<Vec<_>>(),
        ))
    };
    let score = |f: f64| -> ArrayRef { Arc::new(Float64Array::from(vec![f; n])) };
    write_table(
        wh,
        "positioning",
        vec![
            ("scheme", strings(&scheme)),
            ("segment", strings(&segment)),
            ("customers", Arc::new(Int64Array::from(customers.clone()))),
            ("x_axis", strings(&vec!["avg_order_value".to_string(); n])),
            ("x_value", Arc::new(Float64Array::from(x))),
            ("y_axis", strings(&vec!["avg_clv".to_string(); n])),
            ("y_value", Arc::new(Float64Array::from(y))),
            ("size_score", score(0.5)),
            ("growth_score", score(0.5)),
            ("profitability_score", score(0.5)),
            ("distinctness_score", score(0.5)),
            ("response_score", score(0.5)),
            (
                "attractiveness",
                Arc::new(Float64Array::from(
                    rank.iter().map(|r| 1.0 / *r as f64).collect::<Vec<_>>(),
                )),
            ),
            ("is_target", Arc::new(BooleanArray::from(target.clone()))),
            (
                "target_rank",
                Arc::new(Int32Array::from(
                    rank.iter()
                        .zip(&target)
                        .map(|(r, t)| t.then_some(*r as i32))
                        .collect::<Vec<_>>(),
                )),
            ),
            ("product_strategy", text("premium line")),
            ("price_strategy", text("full price")),
            ("channel_strategy", text("online")),
            ("promotion_strategy", text("early access")),
            ("action", text("call back")),
            ("note", text("hand-made")),
            ("run_id", strings(&vec![run_id.to_string(); n])),
        ],
    );
    // migration: per scheme, 80% stay and 20% move to the next segment (alphabetically)
    let (mut ms, mut from, mut to, mut mc, mut share, mut stayed) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for s in ["lifecycle", "rfm8"] {
        let segs: Vec<(String, i64)> = (0..n)
            .filter(|&i| scheme[i] == s)
            .map(|i| (segment[i].clone(), customers[i]))
            .collect();
        for (k, (seg, c)) in segs.iter().enumerate() {
            let next = &segs[(k + 1) % segs.len()].0;
            let moved = c / 5;
            for (dest, count) in [(seg, c - moved), (next, moved)] {
                ms.push(s.to_string());
                from.push(seg.clone());
                to.push(dest.clone());
                mc.push(count);
                share.push(count as f64 / (*c).max(1) as f64);
                stayed.push(dest == seg);
            }
        }
    }
    let m = ms.len();
    write_table(
        wh,
        "segment_migration",
        vec![
            ("scheme", strings(&ms)),
            ("from_segment", strings(&from)),
            ("to_segment", strings(&to)),
            ("customers", Arc::new(Int64Array::from(mc))),
            ("share_of_from", Arc::new(Float64Array::from(share))),
            ("stayed", Arc::new(BooleanArray::from(stayed))),
            ("run_id", strings(&vec![run_id.to_string(); m])),
        ],
    );
}

fn remove_partition(wh: &Path, table: &str) {
    let dir = wh.join(format!("{table}/period={PERIOD}"));
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

async fn scalar_i64(wh: &Path, table: &str, sql: &str) -> i64 {
    let b = query(wh, table, PERIOD, sql).await;
    b[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sections_of_absent_tables_say_so_and_the_report_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let wh = published(tmp.path(), 600, "report-absent").await;
    remove_partition(&wh, "positioning");
    remove_partition(&wh, "segment_migration");
    let loc = Location::parse(&wh.display().to_string()).unwrap();
    let url = report::write_report(&loc, PERIOD).await.unwrap();
    let path = wh.join(report::report_path(PERIOD));
    assert!(url.ends_with("_reports/period=2024-12/index.html"), "{url}");
    let html = std::fs::read_to_string(&path).unwrap();
    for section in [
        "Positioning not computed for this period.",
        "Segment migration not computed for this period.",
        "Target selection not computed for this period.",
    ] {
        assert!(html.contains(section), "missing: {section}");
    }
    // the rest is there: bars per scheme, the histogram, the model, the data quality
    assert!(html.contains("Segment sizes and revenue shares of scheme rfm8"));
    assert!(html.contains("Distribution of customer lifetime value"));
    assert!(
        html.contains("<h3>bgnbd") || html.contains("<h3>mbgnbd"),
        "model fit"
    );
    assert!(html.contains("id=\"headline-customers\">600<"));
    // self-contained: nothing fetched
    for external in ["http://", "https://", "<link", "<script", "@import", "url("] {
        let n = html.matches(external).count();
        let allowed = if external == "http://" {
            html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
        } else {
            0
        };
        assert_eq!(n, allowed, "{external} in the report");
    }
    // same tables, same bytes
    assert_eq!(report::render(&loc, PERIOD).await.unwrap(), html);
    // a period that was never published is a usage error naming what to do
    let err = report::render(&loc, "2023-01").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("crm-pipeline run --period 2023-01"),
        "{err}"
    );
}

fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Runs headless Chromium on `page` with `args`; returns (stdout, stderr).
async fn run_chromium(bin: &Path, args: &[String], page: &Path) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .arg(format!("file://{}", page.display()))
    .kill_on_drop(true);
    // a guard against a hung browser, not a timing assertion
    let out = tokio::time::timeout(std::time::Duration::from_secs(300), cmd.output())
        .await
        .expect("chromium did not exit within 5 minutes")
        .expect("chromium starts");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(out.status.success(), "chromium failed: {stderr}");
    (stdout, stderr)
}

/// Injected into a copy of the report: records script errors, then measures what was drawn
/// and what numbers are shown, into `<pre id="check">` for `--dump-dom`.
const HOOK: &str = r#"<script>window.__errors=[];window.addEventListener("error",function(e){window.__errors.push(String(e.message))});</script>"#;
const CHECK: &str = r#"<script>(function(){
var drawn=function(el){var b=el.getBoundingClientRect();return b.width>0&&b.height>0;};
var all=function(q){return Array.prototype.slice.call(document.querySelectorAll(q));};
var r={};
r.svgs=all("svg").length;
r.empty_svgs=all("svg").filter(function(s){return !drawn(s)||s.querySelectorAll("circle,rect").length==0;}).length;
r.bubbles=all("svg circle.bubble").length;
r.bubbles_drawn=all("svg circle.bubble").filter(drawn).length;
r.targets=all("svg circle.bubble.target").length;
r.bars=all("svg rect.bar").length;
r.bars_drawn=all("svg rect.bar").filter(drawn).length;
r.bins_drawn=all("svg rect.bin").filter(drawn).length;
r.heat_cells=all("table.heat td.cell").length;
r.customers=document.getElementById("headline-customers").textContent;
r.segments=all("svg rect.bar.customers").map(function(b){return [b.closest("svg").getAttribute("aria-label"),b.getAttribute("data-segment"),b.nextElementSibling.textContent];});
r.errors=window.__errors;
var pre=document.createElement("pre");pre.id="check";pre.textContent=JSON.stringify(r);document.body.appendChild(pre);
})();</script>"#;

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// "1,234 (12.3%)" -> 1234
fn shown_count(text: &str) -> i64 {
    let first = text.split_whitespace().next().unwrap_or("");
    first
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("not a count: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_draws_in_chromium_with_the_numbers_of_the_tables() {
    let Some(bin) = chromium() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("chromium is missing and CI=true: run scripts/install-chromium.sh");
        }
        eprintln!("skipped: chromium is not installed (scripts/install-chromium.sh installs it)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let run_id = "report-chromium";
    let wh = published(tmp.path(), 2000, run_id).await;
    if !wh.join(format!("positioning/period={PERIOD}")).exists() {
        handmade_positioning(&wh, run_id).await;
    }
    let loc = Location::parse(&wh.display().to_string()).unwrap();
    report::write_report(&loc, PERIOD).await.unwrap();
    let page = wh.join(report::report_path(PERIOD));
    let html = std::fs::read_to_string(&page).unwrap();

    // the screenshot, of the report as written
    let png = tmp.path().join("report.png");
    let (_, stderr) = run_chromium(
        &bin,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,2400".into(),
        ],
        &page,
    )
    .await;
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console output: {console:?}");
    let shot = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert!(
        shot.starts_with(b"\x89PNG") && shot.len() > 20_000,
        "{} bytes",
        shot.len()
    );

    // what was drawn and shown, measured in the browser
    let checked = tmp.path().join("checked.html");
    let instrumented = html
        .replacen("<head>", &format!("<head>{HOOK}"), 1)
        .replacen("</body>", &format!("{CHECK}</body>"), 1);
    std::fs::write(&checked, instrumented).unwrap();
    let (dom, stderr) = run_chromium(&bin, &["--dump-dom".into()], &checked).await;
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console output: {console:?}");
    let json = dom
        .split("<pre id=\"check\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap_or_else(|| panic!("the check script did not run: {dom}"));
    let r: serde_json::Value = serde_json::from_str(&unescape(json)).unwrap();
    assert_eq!(r["errors"], serde_json::json!([]), "script errors");
    assert_eq!(r["empty_svgs"], 0, "{r}");
    let positions = scalar_i64(
        &wh,
        "positioning",
        "SELECT count(*) FROM t WHERE x_value IS NOT NULL AND y_value IS NOT NULL",
    )
    .await;
    let targets = scalar_i64(
        &wh,
        "positioning",
        "SELECT count(*) FROM t WHERE is_target AND x_value IS NOT NULL AND y_value IS NOT NULL",
    )
    .await;
    assert!(positions > 0);
    assert_eq!(r["bubbles"], positions, "one bubble per positioned segment");
    assert_eq!(r["bubbles_drawn"], positions);
    assert_eq!(r["targets"], targets);
    let bars = scalar_i64(&wh, "segment_summary", "SELECT 2 * count(*) FROM t").await;
    assert_eq!(r["bars"], bars, "two bars per segment");
    assert_eq!(r["bars_drawn"], bars);
    assert!(r["bins_drawn"].as_i64().unwrap() > 0, "{r}");
    let migrations = scalar_i64(&wh, "segment_migration", "SELECT count(*) FROM t").await;
    assert!(r["heat_cells"].as_i64().unwrap() >= migrations, "{r}");
    // numbers shown = numbers in the tables
    let customers = scalar_i64(&wh, "customer_value", "SELECT count(*) FROM t").await;
    assert_eq!(shown_count(r["customers"].as_str().unwrap()), customers);
    assert_eq!(customers, 2000);
    let mut compared = 0;
    for seg in r["segments"].as_array().unwrap() {
        let label = seg[0].as_str().unwrap();
        let scheme = label.rsplit(' ').next().unwrap();
        let segment = seg[1].as_str().unwrap();
        let sql = format!(
            "SELECT customers FROM t WHERE scheme = '{}' AND segment = '{}'",
            scheme.replace('\'', "''"),
            segment.replace('\'', "''")
        );
        let expected = scalar_i64(&wh, "segment_summary", &sql).await;
        assert_eq!(
            shown_count(seg[2].as_str().unwrap()),
            expected,
            "{scheme} / {segment}"
        );
        compared += 1;
    }
    assert_eq!(compared * 2, bars, "every segment's size was compared");
}

#[test]
fn run_with_report_names_the_report_in_its_summary_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_crm-pipeline"))
        .args(["run", "--period", "2024-06", "--report", "--raw"])
        .arg(&raw)
        .arg("--warehouse")
        .arg(&wh)
        .arg("--config")
        .arg(repo_file("pipeline.yaml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["status"], "success");
    let url = summary["report"].as_str().expect("report in the summary");
    assert!(url.ends_with("_reports/period=2024-06/index.html"), "{url}");
    assert!(wh.join("_reports/period=2024-06/index.html").is_file());
}

/// Injected into a copy of a report: measures the axes, the bubble labels' boxes, the trend
/// lines, the headline changes, the links and every table with its CSV download.
const CHECK_MORE: &str = r#"<script>(function(){
var all=function(q,el){return Array.prototype.slice.call((el||document).querySelectorAll(q));};
var r={};
r.axes=all("svg g.axis").map(function(g){return all("text.tick",g).map(function(t){return t.textContent;});});
r.maps=all("svg.map").map(function(s){return all("text.bubble-label",s).map(function(t){var b=t.getBBox();return [t.textContent,b.x,b.y,b.width,b.height];});});
r.series=all("svg.trend g.series").map(function(g){return [g.closest("svg").getAttribute("aria-label"),g.getAttribute("data-series"),all("circle.trend-point",g).map(function(c){return c.getAttribute("data-period");})];});
r.cards={};all(".card .value").forEach(function(v){var c=document.getElementById(v.id+"-change");r.cards[v.id]=[v.textContent,c?c.textContent:null];});
r.previous=(document.getElementById("previous-period")||{}).href||null;
r.links=all("nav.links a").map(function(a){return a.href;});
r.tables=all("table[data-csv]").map(function(t){var a=t.parentNode.querySelector("a.csv");return {name:t.getAttribute("data-csv"),head:all("thead th",t).map(function(h){return h.textContent;}),rows:all("tbody tr",t).map(function(tr){return all("td,th",tr).map(function(c){return c.textContent;});}),href:a?a.getAttribute("href"):null,download:a?a.getAttribute("download"):null};});
r.failed=all(".failed-check").map(function(e){return e.textContent;});
r.errors=window.__errors;
var pre=document.createElement("pre");pre.id="check";pre.textContent=JSON.stringify(r);document.body.appendChild(pre);
})();</script>"#;

/// Opens a copy of `page` in Chromium with CHECK_MORE and returns what it measured.
async fn measured(bin: &Path, page: &Path, tmp: &Path) -> serde_json::Value {
    let html = std::fs::read_to_string(page).unwrap();
    // beside the original, so relative links resolve the same
    let checked = page.with_file_name("checked.html");
    let instrumented = html
        .replacen("<head>", &format!("<head>{HOOK}"), 1)
        .replacen("</body>", &format!("{CHECK_MORE}</body>"), 1);
    std::fs::write(&checked, instrumented).unwrap();
    let (dom, stderr) = run_chromium(bin, &["--dump-dom".into()], &checked).await;
    std::fs::remove_file(&checked).unwrap();
    let _ = tmp;
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console output: {console:?}");
    let json = dom
        .split("<pre id=\"check\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap_or_else(|| panic!("the check script did not run"));
    let r: serde_json::Value = serde_json::from_str(&unescape(json)).unwrap();
    assert_eq!(r["errors"], serde_json::json!([]), "script errors");
    r
}

/// The text of a `data:text/csv` URI.
fn csv_of(uri: &str) -> String {
    let body = uri
        .strip_prefix("data:text/csv;charset=utf-8,")
        .expect("a CSV data URI");
    let bytes = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&body[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// RFC 4180 records.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => field.push(c),
        }
    }
    rows
}

/// A number as the page shows it ("1,234", "12.3%", "CNY 12.50", "+3") -> the value, with the
/// precision it is shown at.
fn shown_number(text: &str) -> Option<(f64, f64)> {
    let t = text.trim().trim_start_matches("CNY ").replace(',', "");
    let (t, scale) = match t.strip_suffix('%') {
        Some(p) => (p.to_string(), 0.01),
        None => (t, 1.0),
    };
    let v: f64 = t.parse().ok()?;
    let decimals = t.split('.').nth(1).map_or(0, str::len) as i32;
    Some((v * scale, 0.5 * 10f64.powi(-decimals) * scale + 1e-9))
}

async fn scalar_f64_at(wh: &Path, table: &str, period: &str, sql: &str) -> f64 {
    let b = query(wh, table, period, sql).await;
    b[0].column(0).as_primitive::<Float64Type>().value(0)
}

async fn scalar_i64_at(wh: &Path, table: &str, period: &str, sql: &str) -> i64 {
    let b = query(wh, table, period, sql).await;
    b[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_periods_trends_links_downloads_and_a_failed_run_in_chromium() {
    let Some(bin) = chromium() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("chromium is missing and CI=true: run scripts/install-chromium.sh");
        }
        eprintln!("skipped: chromium is not installed (scripts/install-chromium.sh installs it)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    generate_local(&raw, 1500, 11).await;
    let mut cfg = config(&raw, &wh);
    cfg.models.clv.holdout_days = 90;
    let loc = Location::parse(&wh.display().to_string()).unwrap();
    let periods = ["2024-10", "2024-11", "2024-12"];
    for p in periods {
        run_period(&cfg, p, &format!("three-{p}")).await.1.unwrap();
        report::write_report_with(&loc, p, &cfg.report)
            .await
            .unwrap();
    }
    let last = wh.join(report::report_path("2024-12"));
    let published = std::fs::read(&last).unwrap();
    // same warehouse, same bytes
    assert_eq!(
        report::render_with(&loc, "2024-12", &cfg.report)
            .await
            .unwrap()
            .into_bytes(),
        published
    );

    // a run of the last period that fails an error check: nothing published, its own report
    let mut bad = cfg.clone();
    bad.checks.push(
        serde_yaml_ng::from_str(
            "{table: customer_features, check: row_count, min: 100000000, name: enough customers}",
        )
        .unwrap(),
    );
    let (results, outcome) = run_period(&bad, "2024-12", "three-failed").await;
    assert_eq!(outcome.unwrap_err().exit_code(), 3);
    assert_eq!(results.status, "failed");
    let url = report::write_failed_report(&loc, "three-failed", &cfg.report)
        .await
        .unwrap();
    assert!(
        url.ends_with("_reports/runs/three-failed/index.html"),
        "{url}"
    );
    assert_eq!(
        std::fs::read(&last).unwrap(),
        published,
        "the period's report stays"
    );
    let index = std::fs::read_to_string(wh.join("_reports/index.html")).unwrap();
    for p in periods {
        assert!(
            index.contains(&format!("href=\"period={p}/index.html\"")),
            "{p}"
        );
    }
    assert!(index.contains("href=\"runs/three-failed/index.html\""));
    let failed = measured(
        &bin,
        &wh.join("_reports/runs/three-failed/index.html"),
        tmp.path(),
    )
    .await;
    assert_eq!(
        failed["failed"],
        serde_json::json!(["enough customers"]),
        "{failed}"
    );
    let failed_html =
        std::fs::read_to_string(wh.join("_reports/runs/three-failed/index.html")).unwrap();
    assert!(failed_html.contains("exit code 3"), "the failure is named");

    // the last period's report, measured in the browser
    let r = measured(&bin, &last, tmp.path()).await;
    // no two tick labels of an axis are equal
    let axes = r["axes"].as_array().unwrap();
    assert!(axes.len() > 20, "{}", axes.len());
    for ticks in axes {
        let t: Vec<&str> = ticks
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let mut d = t.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), t.len(), "repeated tick labels: {t:?}");
    }
    // no two bubble labels overlap, as the browser laid them out
    let maps = r["maps"].as_array().unwrap();
    let schemes = crm_pipeline::models::segments::SCHEMES.len()
        + config(Path::new("/r"), Path::new("/w"))
            .models
            .custom_schemes
            .len();
    assert_eq!(maps.len(), schemes, "one map per scheme");
    for labels in maps {
        let b: Vec<(String, [f64; 4])> = labels
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let f = |i: usize| l[i].as_f64().unwrap();
                (l[0].as_str().unwrap().to_string(), [f(1), f(2), f(3), f(4)])
            })
            .collect();
        assert!(!b.is_empty());
        for (i, (na, a)) in b.iter().enumerate() {
            for (nb, c) in &b[i + 1..] {
                let apart = a[0] + a[2] <= c[0] + 0.5
                    || c[0] + c[2] <= a[0] + 0.5
                    || a[1] + a[3] <= c[1] + 0.5
                    || c[1] + c[3] <= a[1] + 0.5;
                assert!(apart, "labels overlap: {na} {a:?} / {nb} {c:?}");
            }
        }
    }
    // the change figures equal the tables
    let count = |p: &str| {
        let wh = wh.clone();
        let p = p.to_string();
        async move { scalar_i64_at(&wh, "customer_value", &p, "SELECT count(*) FROM t").await }
    };
    let (now, before) = (count("2024-12").await, count("2024-11").await);
    let card = &r["cards"]["headline-customers"];
    assert_eq!(shown_count(card[0].as_str().unwrap()), now);
    let change = card[1].as_str().unwrap();
    assert!(change.ends_with("vs 2024-11"), "{change}");
    assert_eq!(
        change
            .split_whitespace()
            .next()
            .unwrap()
            .replace(['+', ','], "")
            .parse::<i64>()
            .unwrap(),
        now - before,
        "{change}"
    );
    let avg = "SELECT CAST(avg(CAST(clv AS DECIMAL(38, 4))) AS DOUBLE) FROM t";
    let dclv = scalar_f64_at(&wh, "customer_value", "2024-12", avg).await
        - scalar_f64_at(&wh, "customer_value", "2024-11", avg).await;
    let shown = r["cards"]["headline-avg-clv"][1].as_str().unwrap();
    let (v, tol) = shown_number(shown.split_whitespace().next().unwrap()).unwrap();
    assert!((v - dclv).abs() <= tol, "{shown} vs {dclv}");
    // the previous report is linked and exists
    let prev = r["previous"]
        .as_str()
        .expect("a link to the previous report");
    let prev_path = PathBuf::from(prev.strip_prefix("file://").unwrap());
    assert!(
        prev_path.ends_with("_reports/period=2024-11/index.html"),
        "{prev}"
    );
    assert!(prev_path.is_file());
    for link in r["links"].as_array().unwrap() {
        let p = PathBuf::from(link.as_str().unwrap().strip_prefix("file://").unwrap());
        assert!(p.is_file(), "{link}");
    }
    // trend lines: one point per period
    let series = r["series"].as_array().unwrap();
    assert!(series.len() > 20, "{}", series.len());
    for s in series {
        assert_eq!(s[2], serde_json::json!(periods), "{} / {}", s[0], s[1]);
    }
    // every table downloads as CSV that parses and equals the table
    let tables = r["tables"].as_array().unwrap();
    assert!(tables.len() > 30, "{}", tables.len());
    let mut numbers = 0;
    for t in tables {
        let name = t["name"].as_str().unwrap();
        assert_eq!(t["download"], name, "{name}");
        let csv = parse_csv(&csv_of(t["href"].as_str().unwrap()));
        let head: Vec<&str> = t["head"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        assert_eq!(csv[0], head, "{name}");
        let rows = t["rows"].as_array().unwrap();
        assert_eq!(csv.len() - 1, rows.len(), "{name}");
        for (row, line) in rows.iter().zip(&csv[1..]) {
            let cells: Vec<&str> = row
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            assert_eq!(cells.len(), line.len(), "{name}: {cells:?} / {line:?}");
            for (shown, raw) in cells.iter().zip(line) {
                match (shown_number(shown), raw.parse::<f64>()) {
                    (Some((v, tol)), Ok(x)) if !name.starts_with("migration") => {
                        assert!(
                            (v - x).abs() <= tol + 1e-9 * x.abs(),
                            "{name}: {shown} vs {raw}"
                        );
                        numbers += 1;
                    }
                    _ if name.starts_with("migration") => {}
                    _ if shown.trim() == "\u{2013}" || shown.is_empty() => {}
                    _ if shown.contains(" ") && raw.parse::<f64>().is_ok() => {}
                    _ => assert_eq!(shown, raw, "{name}"),
                }
            }
        }
    }
    assert!(numbers > 500, "{numbers}");
    // and the segments' download equals segment_summary
    let seg = tables
        .iter()
        .find(|t| t["name"] == "segments_rfm8.csv")
        .expect("the rfm8 figures");
    let csv = parse_csv(&csv_of(seg["href"].as_str().unwrap()));
    for line in &csv[1..] {
        let sql = format!(
            "SELECT customers FROM t WHERE scheme = 'rfm8' AND segment = '{}'",
            line[0].replace('\'', "''")
        );
        assert_eq!(
            line[1].parse::<i64>().unwrap(),
            scalar_i64_at(&wh, "segment_summary", "2024-12", &sql).await
        );
        let sql = format!(
            "SELECT previous_customers FROM t WHERE scheme = 'rfm8' AND segment = '{}'",
            line[0].replace('\'', "''")
        );
        assert_eq!(
            line[2].parse::<i64>().unwrap(),
            scalar_i64_at(&wh, "segment_summary", "2024-12", &sql).await
        );
    }
    // the holdout accuracy is shown
    let html = String::from_utf8(published).unwrap();
    assert!(html.contains("Holdout accuracy ("), "holdout");
    // every target segment has a whole mix and the rule that fired
    let missing = scalar_i64_at(
        &wh,
        "positioning",
        "2024-12",
        "SELECT count(*) FROM t WHERE is_target AND (product_strategy IS NULL OR price_strategy IS NULL \
         OR channel_strategy IS NULL OR promotion_strategy IS NULL OR action IS NULL OR strategy_rule IS NULL)",
    )
    .await;
    assert_eq!(missing, 0);

    // the screenshot, of the report as written
    let png = tmp.path().join("report.png");
    run_chromium(
        &bin,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,2400".into(),
            "--hide-scrollbars".into(),
        ],
        &last,
    )
    .await;
    let shot = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert!(shot.starts_with(b"\x89PNG") && shot.len() > 20_000);
    if std::env::var("UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        std::fs::copy(&png, repo_file("docs/report.png")).unwrap();
    }
    if let Ok(to) = std::env::var("REPORT_COPY_TO") {
        std::fs::copy(&last, to).unwrap();
    }
}
