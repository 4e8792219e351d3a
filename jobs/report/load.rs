//! Everything a period's report shows, read once: the period's published tables, the record of
//! the run that published them, the schemes (from [`crate::models::segments::SCHEMES`] and
//! whatever else segment_summary holds), and the headline figures of the last published
//! periods for the trends and the change against the previous period.

use std::collections::BTreeMap;

use object_store::ObjectStoreExt;

use super::ReportConfig;
use super::data::{Frame, PublishedPeriod, period_of, published_periods};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::models::segments::SCHEMES;
use crate::record::RunResults;

/// The tables whose partitions make a period "published" for the report.
pub const PERIOD_TABLES: &[&str] = &["customer_features", "customer_value", "segment_summary"];

/// One scheme as the report lists it.
#[derive(Debug, Clone)]
pub struct SchemeRow {
    /// Its name in segment_summary.
    pub name: String,
    /// Its title (the registry's; the name for a scheme the registry lacks).
    pub title: String,
    /// Its customer_segments column, when the registry knows it.
    pub column: Option<String>,
    /// Customers per segment, largest first; None when the period lacks it.
    pub counts: Option<Vec<(String, i64)>>,
}

/// The headline figures of one period, computed the same way for every period (exact decimal
/// sums, so the same tables give the same figures).
#[derive(Debug, Default)]
pub struct Figures {
    /// Period label.
    pub period: String,
    /// Customers with a profile.
    pub customers: Option<i64>,
    /// Customers who bought in the period.
    pub active: Option<i64>,
    /// Revenue in the period.
    pub revenue: Option<f64>,
    /// Revenue to date.
    pub revenue_to_date: Option<f64>,
    /// Average CLV of customers with one.
    pub avg_clv: Option<f64>,
    /// The CLV horizon in days.
    pub clv_horizon: Option<i64>,
    /// Share of revenue to date of the top 20% of customers.
    pub top20: Option<f64>,
    /// Rows read by the publishing run.
    pub rows_read: Option<u64>,
    /// Rows it quarantined.
    pub quarantined: Option<u64>,
    /// segment_summary: scheme, segment, customers, customer_share, revenue_share.
    pub segments: Option<Frame>,
}

impl Figures {
    /// Active customers / customers.
    pub fn active_share(&self) -> Option<f64> {
        match (self.active, self.customers) {
            (Some(a), Some(c)) if c > 0 => Some(a as f64 / c as f64),
            _ => None,
        }
    }

    /// Quarantined rows / rows read.
    pub fn quarantine_rate(&self) -> Option<f64> {
        match (self.quarantined, self.rows_read) {
            (Some(q), Some(r)) if r > 0 => Some(q as f64 / r as f64),
            _ => None,
        }
    }
}

/// A neighbouring period and its report's link (relative to a period's report), when written.
#[derive(Debug, Clone)]
pub struct Neighbour {
    /// Period label.
    pub period: String,
    /// `../period=<P>/index.html` when its report exists.
    pub href: Option<String>,
}

/// Everything the report shows, read once.
pub struct Tables {
    /// Period label.
    pub period: String,
    /// The warehouse URL.
    pub warehouse: String,
    /// The configuration (currency, trend length).
    pub cfg: ReportConfig,
    /// customer_value.
    pub value: Option<Frame>,
    /// segment_summary.
    pub summary: Option<Frame>,
    /// clv_model.
    pub clv_model: Option<Frame>,
    /// positioning.
    pub positioning: Option<Frame>,
    /// segment_migration.
    pub migration: Option<Frame>,
    /// Every scheme: the registry's, then those only segment_summary has.
    pub schemes: Vec<SchemeRow>,
    /// Run ids of the period's rows, most rows first.
    pub run_ids: Vec<(String, i64)>,
    /// The record of the run that published most rows.
    pub record: Option<RunResults>,
    /// Headline figures of the last `trend_periods` published periods up to this one.
    pub history: Vec<Figures>,
    /// The previous published period.
    pub previous: Option<Neighbour>,
    /// The next published period.
    pub next: Option<Neighbour>,
}

impl Tables {
    /// This period's figures.
    pub fn now(&self) -> Option<&Figures> {
        self.history.last().filter(|f| f.period == self.period)
    }

    /// The previous period's figures.
    pub fn before(&self) -> Option<&Figures> {
        let p = self.previous.as_ref()?;
        self.history.iter().find(|f| f.period == p.period)
    }

    /// The currency code, if configured.
    pub fn currency(&self) -> Option<&str> {
        self.cfg.currency.as_deref()
    }

    /// The title of a scheme (the registry's, else its name).
    pub fn scheme_title(&self, name: &str) -> String {
        self.schemes
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.title.clone())
            .unwrap_or_else(|| name.to_string())
    }
}

const POSITIONING: &[&str] = &[
    "scheme",
    "segment",
    "customers",
    "x_axis",
    "x_value",
    "y_axis",
    "y_value",
    "attractiveness",
    "below_base",
    "is_target",
    "target_rank",
    "product_strategy",
    "price_strategy",
    "channel_strategy",
    "promotion_strategy",
    "action",
    "strategy_rule",
    "note",
];

/// The CLV model's named parameters.
pub const CLV_PARAMS: &[&str] = &["r", "alpha", "a", "b", "p", "q", "gamma"];

/// Whether a file exists in the warehouse.
pub async fn exists(layout: &Layout, path: &object_store::path::Path) -> Result<bool> {
    match layout.warehouse().store().head(path).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(Error::store(layout.url_of(path), e)),
    }
}

/// Run ids of `table`'s rows with their counts.
async fn run_ids(p: &PublishedPeriod, tables: &[&str]) -> Result<Vec<(String, i64)>> {
    let mut ids = BTreeMap::<String, i64>::new();
    for table in tables {
        for (id, n) in p.counts(table, "run_id").await?.unwrap_or_default() {
            *ids.entry(id).or_default() += n;
        }
    }
    let mut ids: Vec<(String, i64)> = ids.into_iter().collect();
    ids.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(ids)
}

fn first_f64(f: &Option<Frame>, col: &str) -> Option<f64> {
    f.as_ref()?.f64(col)?.first().copied().flatten()
}

fn first_i64(f: &Option<Frame>, col: &str) -> Option<i64> {
    f.as_ref()?.i64(col)?.first().copied().flatten()
}

/// One period's headline figures.
pub async fn figures(layout: &Layout, label: &str) -> Result<Figures> {
    let p = PublishedPeriod::new(layout, &period_of(label)?);
    let features = p
        .query(
            "customer_features",
            "SELECT count(*) AS customers, \
                    sum(CASE WHEN period_orders > 0 THEN 1 ELSE 0 END) AS active, \
                    CAST(sum(CAST(period_revenue AS DECIMAL(38, 4))) AS DOUBLE) AS revenue \
             FROM customer_features",
            &["customers", "active", "revenue"],
        )
        .await?;
    let value = p
        .query(
            "customer_value",
            "SELECT count(*) AS customers, \
                    CAST(avg(CAST(clv AS DECIMAL(38, 4))) AS DOUBLE) AS avg_clv, \
                    CAST(sum(CAST(historical_revenue AS DECIMAL(38, 4))) AS DOUBLE) AS to_date, \
                    max(clv_horizon_days) AS horizon \
             FROM customer_value",
            &["customers", "avg_clv", "to_date", "horizon"],
        )
        .await?;
    let concentration = p
        .read("value_concentration", &["top20_revenue_share"], &[])
        .await?;
    let segments = p
        .read(
            "segment_summary",
            &[
                "scheme",
                "segment",
                "customers",
                "customer_share",
                "revenue_share",
            ],
            &["scheme", "segment"],
        )
        .await?;
    let ids = run_ids(&p, &["customer_features"]).await?;
    let record = match ids.first() {
        Some((id, _)) => p.run_results(id).await?,
        None => None,
    };
    let (rows_read, quarantined) = match &record {
        Some(r) => (
            Some(r.sources.iter().map(|s| s.rows_read).sum()),
            Some(r.sources.iter().flat_map(|s| s.quarantined.values()).sum()),
        ),
        None => (None, None),
    };
    Ok(Figures {
        period: label.to_string(),
        customers: first_i64(&value, "customers").or(first_i64(&features, "customers")),
        active: first_i64(&features, "active"),
        revenue: first_f64(&features, "revenue"),
        revenue_to_date: first_f64(&value, "to_date"),
        avg_clv: first_f64(&value, "avg_clv"),
        clv_horizon: first_i64(&value, "horizon"),
        top20: first_f64(&concentration, "top20_revenue_share"),
        rows_read,
        quarantined,
        segments,
    })
}

/// A neighbouring period, with its report's link when that report is written.
async fn neighbour(layout: &Layout, label: Option<&String>) -> Result<Option<Neighbour>> {
    let Some(l) = label else { return Ok(None) };
    let written = exists(layout, &layout.report(&period_of(l)?)).await?;
    Ok(Some(Neighbour {
        period: l.clone(),
        href: written.then(|| format!("../period={l}/index.html")),
    }))
}

/// Reads everything the report of `period` shows.
pub async fn load(layout: &Layout, period: &str, cfg: &ReportConfig) -> Result<Tables> {
    let p = PublishedPeriod::new(layout, &period_of(period)?);
    let warehouse = layout.warehouse().to_string();
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
                "avg_margin",
                "retention_rate",
                "response_rate",
                "growth_vs_previous",
                "previous_customers",
                "stability",
                "clv_change",
            ],
            &["scheme", "segment"],
        )
        .await?;
    let features_there = p.counts("customer_features", "run_id").await?.is_some();
    if value.is_none() && summary.is_none() && !features_there {
        return Err(Error::Usage(format!(
            "period {period} has no published customer_value, customer_features or segment_summary partition in {warehouse}; run `crm-pipeline run --period {period}` first"
        )));
    }
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
    // the registry's schemes, then any other scheme segment_summary holds, by name
    let mut schemes = Vec::new();
    for info in SCHEMES {
        schemes.push(SchemeRow {
            name: info.name.to_string(),
            title: info.title.to_string(),
            column: Some(info.label_column.to_string()),
            counts: p.counts("customer_segments", info.label_column).await?,
        });
    }
    if let Some(f) = &summary {
        let n = f.len();
        let names = f.str("scheme").unwrap_or_default();
        let segs = f.str("segment").unwrap_or_default();
        let customers = f.i64("customers").unwrap_or_else(|| vec![None; n]);
        let mut extra: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
        for i in 0..n {
            let name = names[i].clone().unwrap_or_default();
            if SCHEMES.iter().all(|s| s.name != name) {
                extra.entry(name).or_default().push((
                    segs[i].clone().unwrap_or_default(),
                    customers[i].unwrap_or(0),
                ));
            }
        }
        for (name, mut counts) in extra {
            counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            // a user-defined scheme (models.custom_schemes) has its column in customer_segments
            let column = crate::models::segments::custom::label_column(&name);
            let column = p
                .has_column("customer_segments", &column)
                .await?
                .then_some(column);
            schemes.push(SchemeRow {
                title: name.clone(),
                name,
                column,
                counts: Some(counts),
            });
        }
    }
    let run_ids = run_ids(
        &p,
        &[
            "customer_value",
            "customer_features",
            "segment_summary",
            "customer_segments",
        ],
    )
    .await?;
    let record = match run_ids.first() {
        Some((id, _)) => p.run_results(id).await?,
        None => None,
    };
    // the last published periods up to this one, and the neighbours
    let all = published_periods(layout, PERIOD_TABLES).await?;
    let upto: Vec<&String> = all.iter().filter(|l| l.as_str() <= period).collect();
    let keep = cfg.trend_periods.max(2);
    let mut history = Vec::new();
    for label in &upto[upto.len().saturating_sub(keep)..] {
        history.push(figures(layout, label).await?);
    }
    let previous = neighbour(layout, all.iter().rev().find(|l| l.as_str() < period)).await?;
    let next = neighbour(layout, all.iter().find(|l| l.as_str() > period)).await?;
    Ok(Tables {
        period: period.to_string(),
        warehouse,
        cfg: cfg.clone(),
        value,
        summary,
        clv_model,
        positioning,
        migration,
        schemes,
        run_ids,
        record,
        history,
        previous,
        next,
    })
}
