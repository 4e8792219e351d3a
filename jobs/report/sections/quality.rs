//! Data quality of a run, from its record: rows per source with the quarantine reasons and
//! samples (masked as the record holds them), every gate outcome and every check with its
//! threshold, outcome and failing sample, and what the publish did. The failed-run report
//! shows the same tables.

use std::fmt::Write;

use super::Section;
use crate::quality::checks::CheckOutcome;
use crate::record::RunResults;
use crate::report::format::{count, esc, percent};
use crate::report::load::Tables;
use crate::report::table::{Cell, Table};

/// The threshold an outcome was held to, from its detail (`at most 20.0% allowed`,
/// `tolerated 0.0000%`, `at least 1 expected`); "-" when it has none.
pub fn threshold(c: &CheckOutcome) -> String {
    let d = &c.detail;
    if let Some(i) = d.find("tolerated ") {
        let rest = &d[i + "tolerated ".len()..];
        let v = rest.split([')', ';']).next().unwrap_or("").trim();
        let pct = v
            .trim_end_matches('%')
            .parse::<f64>()
            .map(|p| percent(p / 100.0))
            .unwrap_or_else(|_| v.to_string());
        return format!("at most {pct} of rows failing");
    }
    for key in ["between ", "at least ", "at most "] {
        if let Some(i) = d.find(key) {
            return d[i..]
                .split(['(', ')', ';'])
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
        }
    }
    "\u{2013}".into()
}

/// A table of check or gate outcomes.
pub fn outcomes(name: &str, label: &str, list: &[CheckOutcome]) -> Table {
    let mut t = Table::new(name, label)
        .class("checks")
        .col("check")
        .col("table")
        .col("severity")
        .col("outcome")
        .num("failing")
        .num("checked")
        .col("threshold")
        .col("detail")
        .col("failing sample");
    for c in list {
        let severity = serde_json::to_value(c.severity)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let outcome = Cell::html(
            format!("<span class=\"status-{s}\">{s}</span>", s = esc(&c.status)),
            &c.status,
        );
        t.row(vec![
            Cell::text(&c.name),
            Cell::text(&c.table),
            Cell::text(&severity),
            outcome,
            Cell::int(Some(c.failing as i64)),
            Cell::int(Some(c.total as i64)),
            Cell::text(&threshold(c)),
            Cell::text(&c.detail),
            Cell::text(&c.sample.join("; ")),
        ]);
    }
    t
}

/// Rows per source.
pub fn sources(r: &RunResults) -> Table {
    let mut t = Table::new("sources", "Rows per source")
        .col("source")
        .col("present")
        .num("files")
        .num("rows read")
        .num("loaded")
        .num("quarantined")
        .num("quarantined share")
        .col("quarantine reasons")
        .num("values normalised");
    for s in &r.sources {
        let q: u64 = s.quarantined.values().sum();
        let share = (s.rows_read > 0).then(|| q as f64 / s.rows_read as f64);
        t.row(vec![
            Cell::text(&s.name),
            Cell::text(if s.present {
                "yes"
            } else {
                "no (optional extract)"
            }),
            Cell::int(Some(s.files as i64)),
            Cell::int(Some(s.rows_read as i64)),
            Cell::int(Some(s.loaded as i64)),
            Cell::int(Some(q as i64)),
            Cell::num(share.map(percent).unwrap_or_default(), share),
            Cell::text(
                &s.quarantined
                    .iter()
                    .map(|(k, n)| format!("{k}: {}", count(*n as i64)))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            Cell::int(Some(s.normalised.values().sum::<u64>() as i64)),
        ]);
    }
    t
}

/// Quarantined rows sampled by the run (at most three per reason; personal extracts' text is
/// withheld by the job).
pub fn samples(r: &RunResults) -> Table {
    let mut t = Table::new("quarantine_samples", "Quarantined rows, sampled")
        .col("source")
        .col("reason")
        .col("file")
        .num("row")
        .col("row as read");
    for s in &r.sources {
        for x in &s.samples {
            t.row(vec![
                Cell::text(&s.name),
                Cell::text(&x.reason),
                Cell::text(&x.file),
                Cell::int(Some(x.row_number)),
                Cell::text(&x.raw).class("wide"),
            ]);
        }
    }
    t
}

/// What the publish did.
pub fn publish(r: &RunResults) -> String {
    let p = &r.publish;
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let mut o = format!(
        "<p id=\"publish-state\">Publish: <strong>{}</strong>. Swapped: {}. Rolled back: {}.",
        esc(if p.state.is_empty() {
            "not started"
        } else {
            &p.state
        }),
        esc(&list(&p.swapped)),
        esc(&list(&p.rolled_back))
    );
    if let Some(rec) = &p.recovered {
        let _ = write!(o, " Recovered: {}.", esc(rec));
    }
    o.push_str("</p>\n");
    if !r.outputs.is_empty() {
        let mut t = Table::new("published_partitions", "Partitions published")
            .col("table")
            .col("period")
            .num("rows")
            .num("files");
        for x in &r.outputs {
            t.row(vec![
                Cell::text(&x.table),
                Cell::text(&x.period),
                Cell::int(Some(x.rows as i64)),
                Cell::int(Some(x.files.len() as i64)),
            ]);
        }
        o.push_str(&t.html());
    }
    o
}

/// The quality tables of a record, under sub-headings of `s`.
pub fn record(s: &mut Section, r: &RunResults, prefix: &str) {
    s.sub(format!("{prefix}-sources"), "Rows per source".into());
    s.html.push_str(&sources(r).html());
    let sampled = samples(r);
    if !sampled.is_empty() {
        s.html.push_str(
            "<details><summary>Quarantined rows, sampled (at most three per reason)</summary>",
        );
        s.html.push_str(&sampled.html());
        s.html.push_str("</details>\n");
    }
    s.sub(format!("{prefix}-gate"), "The publish gate".into());
    if r.gate.is_empty() {
        s.html
            .push_str("<p>No gate outcome was recorded (the run stopped before the gate).</p>\n");
    } else {
        s.html
            .push_str(&outcomes("gate", "Publish gate outcomes", &r.gate).html());
    }
    s.sub(format!("{prefix}-checks"), "Checks".into());
    let n = |st: &str| r.checks.iter().filter(|c| c.status == st).count();
    let _ = writeln!(
        s.html,
        "<p>{} checks: {} passed, {} warned, {} failed.</p>",
        r.checks.len(),
        n("pass"),
        n("warn"),
        n("fail")
    );
    if !r.checks.is_empty() {
        s.html
            .push_str(&outcomes("checks", "Check outcomes", &r.checks).html());
    }
    s.sub(format!("{prefix}-publish"), "Publish".into());
    s.html.push_str(&publish(r));
    if !r.warnings.is_empty() {
        s.html
            .push_str("<details><summary>Warnings of the run</summary><ul>");
        for w in &r.warnings {
            let _ = write!(s.html, "<li>{}</li>", esc(w));
        }
        s.html.push_str("</ul></details>\n");
    }
}

/// Builds the section.
pub fn section(t: &Tables) -> Section {
    let mut s = Section::new("h-quality", "Data quality of the run");
    match &t.record {
        Some(r) => record(&mut s, r, "q"),
        None => s.html.push_str(&super::missing(
            "The data-quality summary (no run record found)",
        )),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_read_from_the_detail() {
        let c = |detail: &str| CheckOutcome {
            name: "n".into(),
            table: "t".into(),
            check: crate::quality::checks::CheckType::NotNull,
            severity: crate::quality::checks::Severity::Error,
            status: "pass".into(),
            failing: 0,
            total: 1,
            sample: vec![],
            detail: detail.into(),
        };
        assert_eq!(
            threshold(&c("0 of 9 rows fail (0.0000%; tolerated 5.0000%)")),
            "at most 5.0% of rows failing"
        );
        assert_eq!(
            threshold(&c("20000 rows; at least 1 expected")),
            "at least 1 expected"
        );
        assert_eq!(
            threshold(&c(
                "735 of 56279 rows (1.3%) quarantined; at most 20.0% allowed (gate.max_quarantined_share)"
            )),
            "at most 20.0% allowed"
        );
        assert_eq!(threshold(&c("as of 2024-12-31")), "\u{2013}");
    }
}
