//! The report of a failed run, from its run record alone: what failed (the error, the failed
//! gates and checks), then the record's quality tables (sources, quarantine samples, every gate
//! and check with its threshold and failing sample, the publish) and the steps.

use std::fmt::Write;

use super::ReportConfig;
use super::format::{count, esc, number};
use super::page;
use super::sections::{Section, quality};
use super::table::{Cell, Table};
use crate::record::RunResults;

/// The page of the failed run `r`; `published` when its period has a report.
pub fn page(r: &RunResults, published: bool, _cfg: &ReportConfig) -> String {
    let mut o = page::head(&format!("Failed run {}, period {}", r.run_id, r.period));
    let mut links = vec![(
        "All reports".to_string(),
        Some("../../index.html".to_string()),
    )];
    links.push((
        format!("published report of {}", r.period),
        published.then(|| format!("../../period={}/index.html", r.period)),
    ));
    o.push_str(&page::links(&links));
    let _ = writeln!(
        o,
        "<p class=\"meta\">Run {} (attempt {}), period {}, as of {}; started {}; {} s. Nothing of this run was published: the period's published tables, and its report, are those of an earlier run.</p>",
        esc(&r.run_id),
        r.attempt,
        esc(&r.period),
        esc(&r.as_of),
        esc(&r.started_at),
        number(r.seconds, 1)
    );
    let mut what = Section::new("h-failure", "What failed");
    match &r.error {
        Some(e) => {
            let _ = writeln!(
                what.html,
                "<div class=\"failed\"><p id=\"failure\"><strong>{}</strong> (exit code {}): {}</p></div>",
                esc(&e.category),
                e.exit_code,
                esc(&e.message)
            );
        }
        None => {
            let _ = writeln!(
                what.html,
                "<div class=\"failed\"><p id=\"failure\">The run ended as <strong>{}</strong> without an error recorded (it was killed, or is still running).</p></div>",
                esc(r.status.as_str())
            );
        }
    }
    let failing: Vec<_> = r
        .gate
        .iter()
        .map(|c| ("gate", c))
        .chain(r.checks.iter().map(|c| ("check", c)))
        .filter(|(_, c)| c.status == "fail")
        .collect();
    if !failing.is_empty() {
        what.html.push_str("<ul id=\"failed-checks\">");
        for (kind, c) in failing {
            let _ = write!(
                what.html,
                "<li>{kind} <strong class=\"failed-check\">{}</strong> on {}: {}{}</li>",
                esc(&c.name),
                esc(&c.table),
                esc(&c.detail),
                if c.sample.is_empty() {
                    String::new()
                } else {
                    format!("; e.g. {}", esc(&c.sample.join(", ")))
                }
            );
        }
        what.html.push_str("</ul>\n");
    }
    let mut quality_section = Section::new("h-quality", "Data quality of the run");
    quality::record(&mut quality_section, r, "f");
    let mut steps = Section::new("h-steps", "Steps");
    let mut t = Table::new("steps", "Steps of the run")
        .col("step")
        .col("kind")
        .col("status")
        .num("seconds")
        .num("rows");
    for st in &r.steps {
        t.row(vec![
            Cell::text(&st.name),
            Cell::text(&st.kind),
            Cell::text(st.status.as_str()),
            Cell::num(number(st.seconds, 2), Some(st.seconds)),
            Cell::num(
                st.rows.map(|n| count(n as i64)).unwrap_or_default(),
                st.rows.map(|n| n as f64),
            ),
        ]);
    }
    steps.html.push_str(&t.html());
    let sections = vec![what, quality_section, steps];
    o.push_str(&page::contents(&sections));
    o.push_str(&page::body(&sections));
    o.push_str(&page::foot(
        "Written by crm-pipeline from the run record of a run that failed.",
    ));
    o
}
