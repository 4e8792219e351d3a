//! The index of every report: `_reports/index.html`, each period with a report (newest first)
//! and each failed run's report, with what failed.

use super::data::period_of;
use super::format::esc;
use super::load::exists;
use super::page;
use super::table::{Cell, Table};
use crate::error::{Result, StoreContext};
use crate::layout::Layout;
use crate::record;
use crate::storage::Location;

async fn folders(dir: &Location, strip: &str) -> Result<Vec<String>> {
    let listed = dir
        .store()
        .list_with_delimiter(Some(dir.prefix()))
        .await
        .at(dir.url())?;
    let mut out: Vec<String> = listed
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename()?.strip_prefix(strip).map(String::from))
        .collect();
    out.sort();
    Ok(out)
}

/// The index page.
pub async fn render(layout: &Layout) -> Result<String> {
    let mut o = page::head("CRM reports");
    let mut periods = Table::new("periods", "Periods with a report")
        .col("period")
        .col("report");
    let mut labels = Vec::new();
    for label in folders(&layout.reports(), "period=").await? {
        if let Ok(p) = period_of(&label)
            && exists(layout, &layout.report(&p)).await?
        {
            labels.push(label);
        }
    }
    for label in labels.iter().rev() {
        let href = format!("period={label}/index.html");
        periods.row(vec![
            Cell::text(label),
            Cell::html(
                format!(
                    "<a class=\"period-report\" href=\"{}\">report of {}</a>",
                    esc(&href),
                    esc(label)
                ),
                &href,
            ),
        ]);
    }
    o.push_str("<h2 id=\"h-periods\">Published periods</h2>\n");
    if periods.is_empty() {
        o.push_str("<p>No period has a report yet: <code>crm-pipeline report --period P</code> writes one.</p>\n");
    } else {
        o.push_str(&periods.html());
    }
    let mut failed = Table::new("failed_runs", "Failed runs with a report")
        .col("run")
        .col("period")
        .col("started")
        .num("exit code")
        .col("what failed")
        .col("report");
    for run_id in folders(&layout.run_reports(), "").await? {
        if !exists(layout, &layout.run_report(&run_id)).await? {
            continue;
        }
        let r = record::read(layout, &run_id).await?;
        let href = format!("runs/{run_id}/index.html");
        let (period, started, code, what) = match &r {
            Some(r) => (
                r.period.clone(),
                r.started_at.clone(),
                r.error.as_ref().map(|e| e.exit_code as i64),
                r.error
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_default(),
            ),
            None => (
                String::new(),
                String::new(),
                None,
                "the run record is gone".into(),
            ),
        };
        failed.row(vec![
            Cell::text(&run_id),
            Cell::text(&period),
            Cell::text(&started),
            Cell::int(code),
            Cell::text(&what),
            Cell::html(
                format!(
                    "<a class=\"run-report\" href=\"{}\">report of run {}</a>",
                    esc(&href),
                    esc(&run_id)
                ),
                &href,
            ),
        ]);
    }
    o.push_str("<h2 id=\"h-failed\">Failed runs</h2>\n");
    if failed.is_empty() {
        o.push_str("<p>No failed run has a report (<code>crm-pipeline run --report</code> writes one when a run fails).</p>\n");
    } else {
        o.push_str(&failed.html());
    }
    o.push_str(&page::foot(
        "Written by crm-pipeline; rewritten whenever a report is written.",
    ));
    Ok(o)
}
