//! The reports: one self-contained HTML page per published period,
//! `<warehouse>/_reports/period=<P>/index.html`, drawn from the period's published tables, the
//! record of the run that published them and the last published periods (trends, the change
//! against the previous period); a page per failed run, `_reports/runs/<run_id>/index.html`,
//! drawn from its run record alone (never in place of a period's report); and an index,
//! `_reports/index.html`, listing both. Inline CSS and SVG only: a page opens offline, prints,
//! fetches nothing and is byte-for-byte the same for the same warehouse (no wall clock). A
//! table or column a period does not have turns its section into "not computed for this
//! period" instead of an error. Every page passes through [`crate::redact`].
//!
//! Loading: [`data`] (partitions and records) and [`load`] (everything one page shows);
//! sections: [`sections`]; the page around them: [`page`]; charts: [`svg`]; tables with their
//! CSV download: [`table`].

pub mod data;
mod failed;
pub mod format;
mod index;
pub mod load;
mod page;
pub mod sections;
pub mod svg;
pub mod table;

use serde::Deserialize;

use crate::error::{Error, Result, StoreContext};
use crate::layout::Layout;
use crate::record::{self, Status};
use crate::storage::Location;
use format::esc;

/// Settings of the reports (`report:` in pipeline.yaml).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// The currency code of every amount (`CNY`, `EUR`), shown with amounts and in axis
    /// titles; none: amounts are shown without a unit.
    #[serde(default)]
    pub currency: Option<String>,
    /// How many published periods, up to the reported one, the trends show.
    #[serde(default = "default_trend_periods")]
    pub trend_periods: usize,
}

fn default_trend_periods() -> usize {
    12
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self {
            currency: None,
            trend_periods: default_trend_periods(),
        }
    }
}

impl ReportConfig {
    /// A short currency code and at least two trend periods.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if let Some(c) = &self.currency
            && (c.is_empty() || c.len() > 8 || !c.chars().all(|ch| ch.is_ascii_alphabetic()))
        {
            return Err(format!(
                "currency `{c}` must be a code of letters, e.g. EUR"
            ));
        }
        if !(2..=120).contains(&self.trend_periods) {
            return Err("trend_periods must be between 2 and 120".into());
        }
        Ok(())
    }
}

/// The report's path below the warehouse.
pub fn report_path(period: &str) -> String {
    crate::layout::report_relative(period)
}

async fn put(layout: &Layout, path: &object_store::path::Path, html: String) -> Result<String> {
    use object_store::ObjectStoreExt;
    let url = layout.url_of(path);
    layout
        .warehouse()
        .store()
        .put(path, html.into_bytes().into())
        .await
        .at(&url)?;
    Ok(url)
}

/// Renders the report of `period` and writes it to the warehouse, with the default settings;
/// returns its URL.
pub async fn write_report(warehouse: &Location, period: &str) -> Result<String> {
    write_report_with(warehouse, period, &ReportConfig::default()).await
}

/// Renders the report of `period`, writes it, rewrites the previous period's report (so its
/// link to this one resolves) and the index; returns the report's URL.
pub async fn write_report_with(
    warehouse: &Location,
    period: &str,
    cfg: &ReportConfig,
) -> Result<String> {
    let layout = Layout::for_warehouse(warehouse.clone());
    let (html, tables) = build(&layout, period, cfg).await?;
    let url = put(&layout, &layout.report(&data::period_of(period)?), html).await?;
    if let Some(prev) = tables.previous.as_ref().filter(|p| p.href.is_some()) {
        let (html, _) = build(&layout, &prev.period, cfg).await?;
        put(
            &layout,
            &layout.report(&data::period_of(&prev.period)?),
            html,
        )
        .await?;
    }
    write_index(&layout).await?;
    Ok(url)
}

/// Renders the report of `period` from the warehouse's published tables (default settings).
pub async fn render(warehouse: &Location, period: &str) -> Result<String> {
    render_with(warehouse, period, &ReportConfig::default()).await
}

/// Renders the report of `period` from the warehouse's published tables.
pub async fn render_with(warehouse: &Location, period: &str, cfg: &ReportConfig) -> Result<String> {
    let layout = Layout::for_warehouse(warehouse.clone());
    Ok(build(&layout, period, cfg).await?.0)
}

async fn build(
    layout: &Layout,
    period: &str,
    cfg: &ReportConfig,
) -> Result<(String, load::Tables)> {
    let t = load::load(layout, period, cfg).await?;
    let html = crate::redact::redact(&period_page(&t));
    Ok((html, t))
}

fn period_page(t: &load::Tables) -> String {
    let mut o = page::head(&format!("CRM report, period {}", t.period));
    let mut links = vec![("All reports".to_string(), Some("../index.html".to_string()))];
    if let Some(p) = &t.previous {
        links.push((
            format!("\u{2190} previous period: {}", p.period),
            p.href.clone(),
        ));
    }
    if let Some(n) = &t.next {
        links.push((
            format!("next period: {} \u{2192}", n.period),
            n.href.clone(),
        ));
    }
    o.push_str(&page::links(&links));
    let as_of = t
        .record
        .as_ref()
        .map(|r| r.as_of.as_str())
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
    o.push_str(&format!(
        "<p class=\"meta\">As of {}; run {run}; warehouse <code>{}</code>; amounts in {}.</p>\n",
        esc(as_of),
        esc(&t.warehouse),
        esc(t
            .currency()
            .unwrap_or("the data's currency (report.currency is not set)"))
    ));
    let sections = sections::all(t);
    o.push_str(&page::contents(&sections));
    o.push_str(&page::body(&sections));
    o.push_str(&page::foot(
        "Written by crm-pipeline from the published tables of this period and its run record; every figure can be recomputed from them, and every table downloads as CSV.",
    ));
    o
}

/// Writes the report of a failed run from its record, `_reports/runs/<run_id>/index.html`
/// (never over a period's report), and rewrites the index; returns its URL.
pub async fn write_failed_report(
    warehouse: &Location,
    run_id: &str,
    cfg: &ReportConfig,
) -> Result<String> {
    let layout = Layout::for_warehouse(warehouse.clone());
    let Some(r) = record::read(&layout, run_id).await? else {
        return Err(Error::Usage(format!(
            "run {run_id} has no record in {warehouse} (`_runs/{run_id}/run_results.json`)"
        )));
    };
    if r.status == Status::Success {
        return Err(Error::Usage(format!(
            "run {run_id} succeeded: its period's report is `crm-pipeline report --period {}`",
            r.period
        )));
    }
    let published = match data::period_of(&r.period) {
        Ok(p) => load::exists(&layout, &layout.report(&p)).await?,
        Err(_) => false,
    };
    let html = crate::redact::redact(&failed::page(&r, published, cfg));
    let url = put(&layout, &layout.run_report(run_id), html).await?;
    write_index(&layout).await?;
    Ok(url)
}

/// Rewrites the index of every report in the warehouse; returns its URL.
pub async fn write_index(layout: &Layout) -> Result<String> {
    let html = crate::redact::redact(&index::render(layout).await?);
    put(layout, &layout.report_index(), html).await
}
