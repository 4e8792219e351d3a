//! The per-period report: one self-contained HTML file per period,
//! `<warehouse>/_reports/period=<P>/index.html`, drawn from the period's published tables and
//! the run results of the run that published them. Inline CSS and inline SVG only: it opens
//! offline, prints, and is byte-for-byte the same for the same tables (no wall clock).
//! A table or column a period does not have turns its section into "not computed for this
//! period" instead of an error.

mod data;
pub mod format;
pub mod svg;

use std::collections::BTreeMap;
use std::fmt::Write;

use object_store::ObjectStoreExt;
use serde_json::Value;

use crate::error::{Error, Result, StoreContext};
use crate::storage::Location;
use data::{Frame, PublishedPeriod};
use format::{amount, count, esc, number, opt, percent};

/// The report's path below the warehouse.
pub fn report_path(period: &str) -> String {
    format!("_reports/period={period}/index.html")
}

/// Renders the report of `period` and writes it to the warehouse; returns its URL.
pub async fn write_report(warehouse: &Location, period: &str) -> Result<String> {
    let html = render(warehouse, period).await?;
    let path = warehouse.path_of(&report_path(period));
    let url = warehouse.url_of(&path);
    warehouse
        .store()
        .put(&path, html.into_bytes().into())
        .await
        .at(&url)?;
    Ok(url)
}

/// The segmentation columns of customer_segments, with the scheme each one is.
const SCHEME_COLUMNS: &[(&str, &str)] = &[
    ("rfm_segment", "RFM quintile segments"),
    ("rfm8_segment", "RFM eight classes"),
    ("value_tier", "value tiers"),
    ("current_value_class", "current-value classes"),
    ("lifecycle_stage", "lifecycle stages"),
    ("preference_type", "preference types"),
    ("usage_tier", "usage tiers"),
    ("value_loyalty_class", "value x loyalty classes"),
    ("cluster_label", "behavioural clusters"),
];

/// Customers per segment of one scheme column of customer_segments, largest first; `None`
/// when the column is absent.
type SchemeCounts = Option<Vec<(String, i64)>>;

/// Everything the report shows, read once.
struct Tables {
    period: String,
    warehouse: String,
    value: Option<Frame>,
    features: Option<Frame>,
    summary: Option<Frame>,
    concentration: Option<Frame>,
    clv_model: Option<Frame>,
    positioning: Option<Frame>,
    migration: Option<Frame>,
    scheme_counts: Vec<(&'static str, &'static str, SchemeCounts)>,
    run_ids: Vec<(String, i64)>,
    run_results: Option<Value>,
}

const POSITIONING: &[&str] = &[
    "scheme",
    "segment",
    "customers",
    "x_axis",
    "x_value",
    "y_axis",
    "y_value",
    "size_score",
    "growth_score",
    "profitability_score",
    "distinctness_score",
    "response_score",
    "attractiveness",
    "is_target",
    "target_rank",
    "product_strategy",
    "price_strategy",
    "channel_strategy",
    "promotion_strategy",
    "action",
    "note",
];

const CLV_PARAMS: &[&str] = &["r", "alpha", "a", "b", "p", "q", "gamma"];

async fn load(warehouse: &Location, period: &str) -> Result<Tables> {
    let p = PublishedPeriod::new(warehouse, period);
    let value = p
        .read(
            "customer_value",
            &[
                "clv",
                "clv_decile",
                "historical_revenue",
                "clv_horizon_days",
            ],
            &[],
        )
        .await?;
    let features = p
        .read(
            "customer_features",
            &["period_orders", "period_revenue"],
            &[],
        )
        .await?;
    let summary = p
        .read(
            "segment_summary",
            &[
                "scheme",
                "segment",
                "customers",
                "customer_share",
                "revenue_share",
                "avg_clv",
                "retention_rate",
                "response_rate",
                "growth_vs_previous",
            ],
            &["scheme", "segment"],
        )
        .await?;
    if value.is_none() && features.is_none() && summary.is_none() {
        return Err(Error::Usage(format!(
            "period {period} has no published customer_value, customer_features or segment_summary partition in {warehouse}; run `crm-pipeline run --period {period}` first"
        )));
    }
    let concentration = p
        .read(
            "value_concentration",
            &[
                "customers",
                "top20_revenue_share",
                "top20_margin_share",
                "negative_margin_customers",
                "negative_margin_total",
                "gini_revenue",
            ],
            &[],
        )
        .await?;
    let mut model_cols: Vec<&str> = vec![
        "model",
        "converged",
        "iterations",
        "customers_fitted",
        "log_likelihood",
        "time_unit",
        "reason",
        "holdout_mae",
        "holdout_aggregate_error",
        "holdout_customers",
        "holdout_calibration",
    ];
    let se: Vec<String> = CLV_PARAMS.iter().map(|c| format!("{c}_se")).collect();
    model_cols.extend(CLV_PARAMS);
    model_cols.extend(se.iter().map(String::as_str));
    let clv_model = p.read("clv_model", &model_cols, &["model"]).await?;
    let positioning = p
        .read("positioning", POSITIONING, &["scheme", "segment"])
        .await?;
    let migration = p
        .read(
            "segment_migration",
            &[
                "scheme",
                "from_segment",
                "to_segment",
                "customers",
                "share_of_from",
                "stayed",
            ],
            &["scheme", "from_segment", "to_segment"],
        )
        .await?;
    let mut scheme_counts = Vec::new();
    for (col, name) in SCHEME_COLUMNS {
        scheme_counts.push((*col, *name, p.counts("customer_segments", col).await?));
    }
    let mut run_ids = BTreeMap::<String, i64>::new();
    for table in [
        "customer_value",
        "customer_features",
        "segment_summary",
        "customer_segments",
    ] {
        for (id, n) in p.counts(table, "run_id").await?.unwrap_or_default() {
            *run_ids.entry(id).or_default() += n;
        }
    }
    let mut run_ids: Vec<(String, i64)> = run_ids.into_iter().collect();
    run_ids.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let run_results = match run_ids.first() {
        Some((id, _)) => p.run_results(id).await?,
        None => None,
    };
    Ok(Tables {
        period: period.to_string(),
        warehouse: warehouse.to_string(),
        value,
        features,
        summary,
        concentration,
        clv_model,
        positioning,
        migration,
        scheme_counts,
        run_ids,
        run_results,
    })
}

/// Renders the report of `period` from the warehouse's published tables.
pub async fn render(warehouse: &Location, period: &str) -> Result<String> {
    let t = load(warehouse, period).await?;
    Ok(page(&t))
}

const CSS: &str = r#"
:root{color-scheme:light}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1a1a1a;background:#fff;margin:0;line-height:1.45;font-size:15px}
main{max-width:1120px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:1.7rem;margin:0 0 4px}
h2{font-size:1.3rem;margin:36px 0 8px;padding-top:8px;border-top:2px solid #1a1a1a}
h3{font-size:1.05rem;margin:22px 0 6px}
.meta,.note{color:#4a4a4a}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:12px;margin:16px 0}
.card{border:1px solid #bdbdbd;border-radius:6px;padding:10px 14px}
.card .label{font-size:.85rem;color:#4a4a4a}
.card .value{font-size:1.6rem;font-weight:650;font-variant-numeric:tabular-nums}
.card .sub{font-size:.85rem;color:#4a4a4a}
table{border-collapse:collapse;margin:8px 0 12px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #bdbdbd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}
td.num,th.num{text-align:right}
.chart{max-width:100%;height:auto;display:block}
.chart text{font-size:12px;fill:#1a1a1a}
.chart .axis-title{font-size:13px;font-weight:600}
.chart .tick{font-size:11px;fill:#333}
.chart .strong{font-weight:700}
.missing{border-left:4px solid #E69F00;background:#fff8e6;padding:6px 10px}
.status-fail{font-weight:700}
.heat td.cell{text-align:right;min-width:64px}
.heat td.stayed{outline:2px solid #1a1a1a;outline-offset:-3px;font-weight:700}
.heat small{display:block;font-size:.75rem}
details{margin:4px 0 12px}
@media print{
 body{font-size:11pt}
 main{max-width:none;padding:0}
 h2{break-after:avoid}
 .chart,table,.card{break-inside:avoid}
}
"#;

fn missing(what: &str) -> String {
    format!(
        "<p class=\"missing\">{} not computed for this period.</p>\n",
        esc(what)
    )
}

fn page(t: &Tables) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>CRM report, period {p}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n<h1>CRM report, period {p}</h1>\n",
        p = esc(&t.period)
    );
    let as_of = t
        .run_results
        .as_ref()
        .and_then(|r| r.get("as_of"))
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let run = match t.run_ids.as_slice() {
        [] => "unknown".to_string(),
        [(id, _)] => esc(id),
        many => format!(
            "{} (the tables come from {} runs: {})",
            esc(&many[0].0),
            many.len(),
            esc(&many
                .iter()
                .map(|(id, _)| id.as_str())
                .collect::<Vec<_>>()
                .join(", "))
        ),
    };
    let _ = writeln!(
        o,
        "<p class=\"meta\">As of {}; run {run}; warehouse <code>{}</code>.</p>",
        esc(as_of),
        esc(&t.warehouse)
    );
    headline(&mut o, t);
    quality(&mut o, t);
    positioning(&mut o, t);
    segments(&mut o, t);
    clv(&mut o, t);
    migration(&mut o, t);
    strategy(&mut o, t);
    model_fit(&mut o, t);
    o.push_str("<p class=\"meta\">Written by crm-pipeline from the published tables of this period; every figure can be recomputed from them.</p>\n</main>\n</body>\n</html>\n");
    o
}

/// Sum in a fixed order (sorted), so the same values give the same bits.
fn stable_sum(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v.iter().sum()
}

fn card(o: &mut String, id: &str, label: &str, value: &str, sub: &str) {
    let _ = writeln!(
        o,
        "<div class=\"card\"><div class=\"label\">{}</div><div class=\"value\" id=\"{id}\">{value}</div><div class=\"sub\">{sub}</div></div>",
        esc(label)
    );
}

fn quarantined_total(r: &Value) -> (u64, u64) {
    let mut read = 0;
    let mut quarantined = 0;
    for s in r
        .get("sources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        read += s.get("rows_read").and_then(Value::as_u64).unwrap_or(0);
        quarantined += s
            .get("quarantined")
            .and_then(Value::as_object)
            .map(|m| m.values().filter_map(Value::as_u64).sum::<u64>())
            .unwrap_or(0);
    }
    (read, quarantined)
}

fn check_counts(r: &Value) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for c in r
        .get("checks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let s = c.get("status").and_then(Value::as_str).unwrap_or("unknown");
        *m.entry(s.to_string()).or_default() += 1;
    }
    m
}

fn headline(o: &mut String, t: &Tables) {
    o.push_str("<section aria-labelledby=\"h-headline\">\n<h2 id=\"h-headline\">Headline figures</h2>\n<div class=\"cards\">\n");
    let customers = t
        .value
        .as_ref()
        .map(Frame::len)
        .or(t.features.as_ref().map(Frame::len));
    card(
        o,
        "headline-customers",
        "Customers",
        &customers.map(|n| count(n as i64)).unwrap_or("n/a".into()),
        "with a profile as of the period end",
    );
    match &t.features {
        Some(f) if f.has("period_revenue") => {
            let rev = stable_sum(
                f.f64("period_revenue")
                    .unwrap_or_default()
                    .into_iter()
                    .flatten(),
            );
            let hist = t
                .value
                .as_ref()
                .and_then(|v| v.f64("historical_revenue"))
                .map(|v| stable_sum(v.into_iter().flatten()));
            card(
                o,
                "headline-revenue",
                "Revenue in the period",
                &amount(rev),
                &hist
                    .map(|h| format!("{} to date", amount(h)))
                    .unwrap_or_default(),
            );
        }
        _ => card(
            o,
            "headline-revenue",
            "Revenue in the period",
            "n/a",
            "not computed",
        ),
    }
    match t.features.as_ref().and_then(|f| f.i64("period_orders")) {
        Some(orders) if !orders.is_empty() => {
            let active = orders.iter().filter(|o| o.unwrap_or(0) > 0).count();
            card(
                o,
                "headline-active",
                "Active share",
                &percent(active as f64 / orders.len() as f64),
                &format!("{} customers bought in the period", count(active as i64)),
            );
        }
        _ => card(o, "headline-active", "Active share", "n/a", "not computed"),
    }
    match t.value.as_ref().and_then(|v| v.f64("clv")) {
        Some(clv) => {
            let known: Vec<f64> = clv.into_iter().flatten().collect();
            let avg = if known.is_empty() {
                f64::NAN
            } else {
                stable_sum(known.iter().copied()) / known.len() as f64
            };
            let horizon = t
                .value
                .as_ref()
                .and_then(|v| v.i64("clv_horizon_days"))
                .and_then(|h| h.into_iter().flatten().next());
            card(
                o,
                "headline-avg-clv",
                "Average CLV",
                &amount(avg),
                &horizon
                    .map(|h| format!("discounted, next {} days", count(h)))
                    .unwrap_or_default(),
            );
        }
        None => card(o, "headline-avg-clv", "Average CLV", "n/a", "not computed"),
    }
    if let Some(c) = &t.concentration
        && let Some(Some(share)) = c
            .f64("top20_revenue_share")
            .and_then(|v| v.first().copied())
    {
        card(
            o,
            "headline-top20",
            "Top 20% of customers",
            &percent(share),
            "of revenue to date",
        );
    }
    match &t.run_results {
        Some(r) => {
            let (read, q) = quarantined_total(r);
            let checks = check_counts(r);
            let n = |s: &str| checks.get(s).copied().unwrap_or(0);
            card(
                o,
                "headline-quality",
                "Rows quarantined",
                &count(q as i64),
                &format!(
                    "of {} rows read ({}); checks: {} passed, {} warned, {} failed",
                    count(read as i64),
                    percent(q as f64 / read.max(1) as f64),
                    count(n("pass") as i64),
                    count(n("warn") as i64),
                    count(n("fail") as i64)
                ),
            );
        }
        None => card(
            o,
            "headline-quality",
            "Rows quarantined",
            "n/a",
            "the run results were not found",
        ),
    }
    o.push_str("</div>\n</section>\n");
}

fn quality(o: &mut String, t: &Tables) {
    o.push_str("<section aria-labelledby=\"h-quality\">\n<h2 id=\"h-quality\">Data quality of the run</h2>\n");
    let Some(r) = &t.run_results else {
        o.push_str(&missing("The data-quality summary (no run results found)"));
        o.push_str("</section>\n");
        return;
    };
    o.push_str("<table><thead><tr><th>source</th><th class=\"num\">rows read</th><th class=\"num\">loaded</th><th class=\"num\">quarantined</th><th>quarantine reasons</th><th class=\"num\">values normalised</th></tr></thead><tbody>\n");
    for s in r
        .get("sources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = s.get("name").and_then(Value::as_str).unwrap_or("?");
        let present = s.get("present").and_then(Value::as_bool).unwrap_or(true);
        let u = |k: &str| s.get(k).and_then(Value::as_u64).unwrap_or(0) as i64;
        let reasons: Vec<(String, u64)> = s
            .get("quarantined")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        let q: u64 = reasons.iter().map(|(_, n)| n).sum();
        let normalised: u64 = s
            .get("normalised")
            .and_then(Value::as_object)
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0);
        if !present {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td colspan=\"5\">not present (optional extract)</td></tr>",
                esc(name)
            );
            continue;
        }
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            esc(name),
            count(u("rows_read")),
            count(u("loaded")),
            count(q as i64),
            esc(&reasons
                .iter()
                .map(|(k, n)| format!("{k}: {}", count(*n as i64)))
                .collect::<Vec<_>>()
                .join(", ")),
            count(normalised as i64)
        );
    }
    o.push_str("</tbody></table>\n");
    let checks: Vec<&Value> = r
        .get("checks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let counts = check_counts(r);
    let _ = writeln!(
        o,
        "<p>{} checks: {}.</p>",
        count(checks.len() as i64),
        esc(&counts
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", "))
    );
    let not_passed: Vec<&&Value> = checks
        .iter()
        .filter(|c| c.get("status").and_then(Value::as_str) != Some("pass"))
        .collect();
    if !not_passed.is_empty() {
        o.push_str("<table><thead><tr><th>check</th><th>table</th><th>status</th><th class=\"num\">failing rows</th><th>detail</th></tr></thead><tbody>\n");
        for c in not_passed {
            let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"status-{}\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(s("name")),
                esc(s("table")),
                esc(s("status")),
                esc(s("status")),
                count(c.get("failing").and_then(Value::as_u64).unwrap_or(0) as i64),
                esc(s("detail"))
            );
        }
        o.push_str("</tbody></table>\n");
    }
    o.push_str("</section>\n");
}

/// Row indexes of a frame grouped by its `scheme` column, schemes in sorted order.
fn by_scheme(f: &Frame) -> BTreeMap<String, Vec<usize>> {
    let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, s) in f.str("scheme").unwrap_or_default().into_iter().enumerate() {
        m.entry(s.unwrap_or_default()).or_default().push(i);
    }
    m
}

fn col_f(f: &Frame, c: &str, n: usize) -> Vec<Option<f64>> {
    f.f64(c).unwrap_or_else(|| vec![None; n])
}

fn col_s(f: &Frame, c: &str, n: usize) -> Vec<Option<String>> {
    f.str(c).unwrap_or_else(|| vec![None; n])
}

fn positioning(o: &mut String, t: &Tables) {
    o.push_str("<section aria-labelledby=\"h-positioning\">\n<h2 id=\"h-positioning\">Positioning map</h2>\n");
    let Some(f) = t
        .positioning
        .as_ref()
        .filter(|f| f.has("x_value") && f.has("y_value") && f.has("segment"))
    else {
        o.push_str(&missing("Positioning"));
        o.push_str("</section>\n");
        return;
    };
    o.push_str("<p class=\"note\">One bubble per segment; its area is the number of customers. Target segments are filled dark orange with a heavy outline and labelled with their rank.</p>\n");
    let n = f.len();
    let (seg, xa, ya) = (
        col_s(f, "segment", n),
        col_s(f, "x_axis", n),
        col_s(f, "y_axis", n),
    );
    let (x, y, size) = (
        col_f(f, "x_value", n),
        col_f(f, "y_value", n),
        col_f(f, "customers", n),
    );
    let target = f.bool("is_target").unwrap_or_else(|| vec![None; n]);
    let rank = f.i64("target_rank").unwrap_or_else(|| vec![None; n]);
    for (scheme, rows) in by_scheme(f) {
        let bubbles: Vec<svg::Bubble> = rows
            .iter()
            .filter_map(|&i| {
                Some(svg::Bubble {
                    label: seg[i].clone().unwrap_or_default(),
                    x: x[i].filter(|v| v.is_finite())?,
                    y: y[i].filter(|v| v.is_finite())?,
                    size: size[i].unwrap_or(0.0),
                    target_rank: rank[i],
                    is_target: target[i].unwrap_or(false),
                })
            })
            .collect();
        let first = rows[0];
        let x_axis = xa[first].clone().unwrap_or_else(|| "x".into());
        let y_axis = ya[first].clone().unwrap_or_else(|| "y".into());
        let _ = writeln!(o, "<h3>Scheme {}</h3>", esc(&scheme));
        if bubbles.is_empty() {
            o.push_str(&missing("Positions for this scheme"));
            continue;
        }
        let title = format!(
            "Positioning map of scheme {scheme}: {} by {}",
            svg::axis_name(&y_axis),
            svg::axis_name(&x_axis)
        );
        o.push_str(&svg::bubble_map(&title, &x_axis, &y_axis, &bubbles));
        o.push('\n');
        let left = rows.len() - bubbles.len();
        if left > 0 {
            let _ = writeln!(
                o,
                "<p class=\"note\">{left} segment(s) without a position are not drawn.</p>"
            );
        }
    }
    o.push_str("</section>\n");
}

fn segments(o: &mut String, t: &Tables) {
    o.push_str("<section aria-labelledby=\"h-segments\">\n<h2 id=\"h-segments\">Segment sizes and value shares</h2>\n");
    // which schemes were computed, from customer_segments
    o.push_str("<table><thead><tr><th>scheme</th><th>column</th><th class=\"num\">segments</th><th>largest segment</th></tr></thead><tbody>\n");
    for (col, name, counts) in &t.scheme_counts {
        match counts {
            Some(c) => {
                let total: i64 = c.iter().map(|(_, n)| n).sum();
                let largest = c
                    .first()
                    .map(|(s, n)| {
                        format!("{} ({})", esc(s), percent(*n as f64 / total.max(1) as f64))
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    o,
                    "<tr><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td>{largest}</td></tr>",
                    esc(name),
                    esc(col),
                    c.len()
                );
            }
            None => {
                let _ = writeln!(
                    o,
                    "<tr><td>{}</td><td><code>{}</code></td><td colspan=\"2\">not computed for this period</td></tr>",
                    esc(name),
                    esc(col)
                );
            }
        }
    }
    o.push_str("</tbody></table>\n");
    let Some(f) = &t.summary else {
        o.push_str(&missing("The segment summary"));
        o.push_str("</section>\n");
        return;
    };
    let n = f.len();
    let seg = col_s(f, "segment", n);
    let customers = f.i64("customers").unwrap_or_else(|| vec![None; n]);
    let (cs, rs, clv, ret, resp) = (
        col_f(f, "customer_share", n),
        col_f(f, "revenue_share", n),
        col_f(f, "avg_clv", n),
        col_f(f, "retention_rate", n),
        col_f(f, "response_rate", n),
    );
    for (scheme, mut rows) in by_scheme(f) {
        rows.sort_by(|&a, &b| {
            customers[b]
                .unwrap_or(0)
                .cmp(&customers[a].unwrap_or(0))
                .then(seg[a].cmp(&seg[b]))
        });
        let _ = writeln!(o, "<h3>Scheme {}</h3>", esc(&scheme));
        let bars: Vec<svg::BarRow> = rows
            .iter()
            .map(|&i| svg::BarRow {
                label: seg[i].clone().unwrap_or_default(),
                customers: customers[i].unwrap_or(0),
                customer_share: cs[i].unwrap_or(0.0),
                value_share: rs[i].unwrap_or(0.0),
            })
            .collect();
        o.push_str(&svg::share_bars(
            &format!("Segment sizes and revenue shares of scheme {scheme}"),
            &bars,
        ));
        o.push_str("\n<details><summary>Figures</summary><table><thead><tr><th>segment</th><th class=\"num\">customers</th><th class=\"num\">share</th><th class=\"num\">revenue share</th><th class=\"num\">average CLV</th><th class=\"num\">retention</th><th class=\"num\">campaign response</th></tr></thead><tbody>\n");
        for &i in &rows {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(seg[i].as_deref().unwrap_or("")),
                opt(customers[i].map(|v| v as f64), |v| number(v, 0)),
                opt(cs[i], percent),
                opt(rs[i], percent),
                opt(clv[i], amount),
                opt(ret[i], percent),
                opt(resp[i], percent)
            );
        }
        o.push_str("</tbody></table></details>\n");
    }
    o.push_str("</section>\n");
}

/// Linear-interpolated quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn clv(o: &mut String, t: &Tables) {
    o.push_str(
        "<section aria-labelledby=\"h-clv\">\n<h2 id=\"h-clv\">Customer lifetime value</h2>\n",
    );
    let Some(f) = t.value.as_ref().filter(|f| f.has("clv")) else {
        o.push_str(&missing("Lifetime value"));
        o.push_str("</section>\n");
        return;
    };
    let clv = f.f64("clv").unwrap_or_default();
    let mut sorted: Vec<f64> = clv
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        o.push_str(&missing("Lifetime value (no customer has one)"));
        o.push_str("</section>\n");
        return;
    }
    let lo = sorted[0].min(0.0);
    let p99 = quantile(&sorted, 0.99);
    let max = sorted[sorted.len() - 1];
    let (hi, capped) = if p99 > lo && max > p99 {
        (p99, true)
    } else {
        (max.max(lo + 1.0), false)
    };
    let n_bins = 24usize;
    let width = (hi - lo) / n_bins as f64;
    let mut bins: Vec<svg::Bin> = (0..n_bins)
        .map(|i| svg::Bin {
            lo: lo + i as f64 * width,
            hi: if i + 1 == n_bins {
                hi
            } else {
                lo + (i + 1) as f64 * width
            },
            count: 0,
        })
        .collect();
    for v in &sorted {
        let i = (((v - lo) / width).floor().max(0.0) as usize).min(n_bins - 1);
        bins[i].count += 1;
    }
    let _ = writeln!(
        o,
        "<p class=\"note\">{} customers with a value; median {}, 99th percentile {}, largest {}.{}</p>",
        count(sorted.len() as i64),
        amount(quantile(&sorted, 0.5)),
        amount(p99),
        amount(max),
        if capped {
            " The last bar holds everyone from its lower edge up, the 1% above the 99th percentile included."
        } else {
            ""
        }
    );
    o.push_str(&svg::histogram(
        "Distribution of customer lifetime value",
        "CLV",
        &bins,
        capped.then_some(hi),
    ));
    o.push('\n');
    // deciles
    let Some(dec) = f.i64("clv_decile") else {
        o.push_str(&missing("CLV deciles"));
        o.push_str("</section>\n");
        return;
    };
    let mut by: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (d, v) in dec.iter().zip(&clv) {
        if let (Some(d), Some(v)) = (d, v)
            && v.is_finite()
        {
            by.entry(*d).or_default().push(*v);
        }
    }
    let total = stable_sum(sorted.iter().copied());
    o.push_str("<h3>Deciles</h3>\n<table><thead><tr><th class=\"num\">CLV decile</th><th class=\"num\">customers</th><th class=\"num\">lowest CLV</th><th class=\"num\">average CLV</th><th class=\"num\">highest CLV</th><th class=\"num\">share of total CLV</th></tr></thead><tbody>\n");
    for (d, mut v) in by {
        v.sort_by(f64::total_cmp);
        let s = stable_sum(v.iter().copied());
        let _ = writeln!(
            o,
            "<tr><td class=\"num\">{d}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            count(v.len() as i64),
            amount(v[0]),
            amount(s / v.len() as f64),
            amount(v[v.len() - 1]),
            if total != 0.0 {
                percent(s / total)
            } else {
                "n/a".into()
            }
        );
    }
    o.push_str("</tbody></table>\n</section>\n");
}

/// Background of a heat cell: white to Okabe-Ito blue by `share`, with black or white text,
/// whichever contrasts more (WCAG relative luminance; at least 4.5:1 along this ramp).
fn heat(share: f64) -> (String, &'static str) {
    let s = share.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * s).round() as u8;
    let (r, g, b) = (mix(255.0, 0.0), mix(255.0, 114.0), mix(255.0, 178.0));
    let lin = |c: u8| {
        let c = c as f64 / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
    let (on_white, on_black) = (1.05 / (l + 0.05), (l + 0.05) / 0.05);
    (
        format!("#{r:02x}{g:02x}{b:02x}"),
        if on_white > on_black {
            "#ffffff"
        } else {
            "#000000"
        },
    )
}

fn migration(o: &mut String, t: &Tables) {
    o.push_str("<section aria-labelledby=\"h-migration\">\n<h2 id=\"h-migration\">Migration since the previous period</h2>\n");
    let Some(f) = t
        .migration
        .as_ref()
        .filter(|f| f.has("from_segment") && f.has("to_segment"))
    else {
        o.push_str(&missing("Segment migration"));
        o.push_str("</section>\n");
        return;
    };
    o.push_str("<p class=\"note\">Rows: segment in the previous period; columns: segment in this one. Each cell: share of the row's customers (and their number); the darker, the larger. Outlined cells are customers who stayed.</p>\n");
    let n = f.len();
    let (from, to) = (col_s(f, "from_segment", n), col_s(f, "to_segment", n));
    let customers = f.i64("customers").unwrap_or_else(|| vec![None; n]);
    let share = col_f(f, "share_of_from", n);
    let stayed = f.bool("stayed").unwrap_or_else(|| vec![None; n]);
    for (scheme, rows) in by_scheme(f) {
        let mut froms: Vec<String> = rows.iter().filter_map(|&i| from[i].clone()).collect();
        let mut tos: Vec<String> = rows.iter().filter_map(|&i| to[i].clone()).collect();
        froms.sort();
        froms.dedup();
        tos.sort();
        tos.dedup();
        let cell: BTreeMap<(&str, &str), usize> = rows
            .iter()
            .filter_map(|&i| Some(((from[i].as_deref()?, to[i].as_deref()?), i)))
            .collect();
        let total: i64 = rows.iter().map(|&i| customers[i].unwrap_or(0)).sum();
        let kept: i64 = rows
            .iter()
            .filter(|&&i| stayed[i].unwrap_or(from[i] == to[i]))
            .map(|&i| customers[i].unwrap_or(0))
            .sum();
        let _ = writeln!(
            o,
            "<h3>Scheme {}</h3>\n<p>{} of {} customers ({}) stayed in their segment.</p>",
            esc(&scheme),
            count(kept),
            count(total),
            percent(kept as f64 / total.max(1) as f64)
        );
        let _ = write!(
            o,
            "<table class=\"heat\" aria-label=\"Migration matrix of scheme {}\"><thead><tr><th>from \\ to</th>",
            esc(&scheme)
        );
        for c in &tos {
            let _ = write!(o, "<th class=\"num\">{}</th>", esc(c));
        }
        o.push_str("</tr></thead><tbody>\n");
        for r in &froms {
            let _ = write!(o, "<tr><th>{}</th>", esc(r));
            for c in &tos {
                match cell.get(&(r.as_str(), c.as_str())) {
                    Some(&i) => {
                        let s = share[i].unwrap_or(0.0);
                        let (bg, fg) = heat(s);
                        let st = stayed[i].unwrap_or(r == c);
                        let _ = write!(
                            o,
                            "<td class=\"cell{}\" style=\"background:{bg};color:{fg}\">{}<small>{}</small></td>",
                            if st { " stayed" } else { "" },
                            percent(s),
                            count(customers[i].unwrap_or(0))
                        );
                    }
                    None => o.push_str("<td class=\"cell\">\u{2013}</td>"),
                }
            }
            o.push_str("</tr>\n");
        }
        o.push_str("</tbody></table>\n");
    }
    o.push_str("</section>\n");
}

fn strategy(o: &mut String, t: &Tables) {
    o.push_str("<section aria-labelledby=\"h-strategy\">\n<h2 id=\"h-strategy\">Strategy per target segment</h2>\n");
    let Some(f) = t.positioning.as_ref().filter(|f| f.has("is_target")) else {
        o.push_str(&missing("Target selection"));
        o.push_str("</section>\n");
        return;
    };
    let n = f.len();
    let target = f.bool("is_target").unwrap_or_default();
    let rank = f.i64("target_rank").unwrap_or_else(|| vec![None; n]);
    let scheme = col_s(f, "scheme", n);
    let mut rows: Vec<usize> = (0..n).filter(|&i| target[i] == Some(true)).collect();
    rows.sort_by(|&a, &b| {
        scheme[a]
            .cmp(&scheme[b])
            .then(
                rank[a]
                    .unwrap_or(i64::MAX)
                    .cmp(&rank[b].unwrap_or(i64::MAX)),
            )
            .then(a.cmp(&b))
    });
    if rows.is_empty() {
        o.push_str("<p>No segment was chosen as a target this period.</p>\n</section>\n");
        return;
    }
    let cols = [
        ("product_strategy", "product"),
        ("price_strategy", "price"),
        ("channel_strategy", "channel"),
        ("promotion_strategy", "promotion"),
        ("action", "action"),
        ("note", "note"),
    ];
    let texts: Vec<Vec<Option<String>>> = cols.iter().map(|(c, _)| col_s(f, c, n)).collect();
    let seg = col_s(f, "segment", n);
    let customers = f.i64("customers").unwrap_or_else(|| vec![None; n]);
    let attr = col_f(f, "attractiveness", n);
    o.push_str("<table><thead><tr><th>scheme</th><th class=\"num\">rank</th><th>segment</th><th class=\"num\">customers</th><th class=\"num\">attractiveness</th>");
    for (_, h) in &cols {
        let _ = write!(o, "<th>{h}</th>");
    }
    o.push_str("</tr></thead><tbody>\n");
    for i in rows {
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            esc(scheme[i].as_deref().unwrap_or("")),
            rank[i].map(|r| r.to_string()).unwrap_or_default(),
            esc(seg[i].as_deref().unwrap_or("")),
            opt(customers[i].map(|v| v as f64), |v| number(v, 0)),
            opt(attr[i], |v| number(v, 2))
        );
        for col in &texts {
            let _ = write!(
                o,
                "<td>{}</td>",
                esc(col[i].as_deref().unwrap_or("\u{2013}"))
            );
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table>\n</section>\n");
}

fn model_fit(o: &mut String, t: &Tables) {
    o.push_str("<section aria-labelledby=\"h-model\">\n<h2 id=\"h-model\">Model fit</h2>\n");
    let Some(f) = t.clv_model.as_ref().filter(|f| !f.is_empty()) else {
        o.push_str(&missing("The CLV model"));
        o.push_str("</section>\n");
        return;
    };
    let n = f.len();
    for i in 0..n {
        let model = f.text_at("model", i);
        let converged = f.bool("converged").and_then(|v| v[i]);
        let it = f.i64("iterations").and_then(|v| v[i]);
        let fitted = f.i64("customers_fitted").and_then(|v| v[i]);
        let ll = f.f64("log_likelihood").and_then(|v| v[i]);
        let _ = writeln!(
            o,
            "<h3>{}</h3>\n<p>{}{}; {} customers fitted; log-likelihood {}; time unit {}.{}</p>",
            esc(&model),
            match converged {
                Some(true) => "Converged",
                Some(false) => "Did not converge",
                None => "Convergence unknown",
            },
            it.map(|n| format!(" after {} iterations", count(n)))
                .unwrap_or_default(),
            opt(fitted.map(|v| v as f64), |v| number(v, 0)),
            opt(ll, |v| number(v, 2)),
            esc(&f.text_at("time_unit", i)),
            {
                let r = f.text_at("reason", i);
                if r.is_empty() {
                    String::new()
                } else {
                    format!(" {}", esc(&r))
                }
            }
        );
        let params: Vec<(&str, f64, Option<f64>)> = CLV_PARAMS
            .iter()
            .filter_map(|p| {
                let v = f.f64(p).and_then(|v| v[i])?;
                Some((*p, v, f.f64(&format!("{p}_se")).and_then(|v| v[i])))
            })
            .collect();
        if !params.is_empty() {
            o.push_str("<table><thead><tr><th>parameter</th><th class=\"num\">estimate</th><th class=\"num\">standard error</th></tr></thead><tbody>\n");
            for (p, v, se) in params {
                let _ = writeln!(
                    o,
                    "<tr><td>{p}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                    number(v, 4),
                    opt(se, |v| number(v, 4))
                );
            }
            o.push_str("</tbody></table>\n");
        }
        let mae = f.f64("holdout_mae").and_then(|v| v[i]);
        let agg = f.f64("holdout_aggregate_error").and_then(|v| v[i]);
        let hc = f.i64("holdout_customers").and_then(|v| v[i]);
        if mae.is_some() || agg.is_some() {
            let _ = writeln!(
                o,
                "<p>Holdout ({} customers): mean absolute error {} purchases per customer; aggregate error {}.</p>",
                opt(hc.map(|v| v as f64), |v| number(v, 0)),
                opt(mae, |v| number(v, 3)),
                opt(agg, percent)
            );
            let cal = f.text_at("holdout_calibration", i);
            if !cal.is_empty() {
                let _ = writeln!(
                    o,
                    "<details><summary>Holdout calibration</summary><pre>{}</pre></details>",
                    esc(&cal)
                );
            }
        } else {
            o.push_str("<p>No holdout error for this model.</p>\n");
        }
    }
    o.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_cells_keep_text_readable() {
        assert_eq!(heat(0.0), ("#ffffff".to_string(), "#000000"));
        assert_eq!(heat(1.0), ("#0072b2".to_string(), "#ffffff"));
        let lum = |h: &str| {
            let c = |i: usize| {
                let v = u8::from_str_radix(&h[i..i + 2], 16).unwrap() as f64 / 255.0;
                if v <= 0.04045 {
                    v / 12.92
                } else {
                    ((v + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * c(1) + 0.7152 * c(3) + 0.0722 * c(5)
        };
        for i in 0..=100 {
            let (bg, fg) = heat(i as f64 / 100.0);
            let (a, b) = (lum(&bg), lum(fg));
            let ratio = (a.max(b) + 0.05) / (a.min(b) + 0.05);
            assert!(ratio >= 4.5, "{bg} on {fg}: {ratio}");
        }
    }

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.25), 2.0);
        assert_eq!(quantile(&v, 0.9), 4.6);
    }
}
