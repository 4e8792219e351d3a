//! The publish gate: what a run must satisfy before it may replace what is published. A run the
//! gate refuses fails with the data-quality exit code (3) and publishes nothing; the period's
//! published partitions stay as they were.
//!
//! 1. **Open period** (before anything runs): a period whose as-of date is today or later (in
//!    the business time zone) has not closed; computing it would publish a partial month as if
//!    it were whole. `--as-of` an earlier date computes a partial period on purpose;
//!    `--allow-open-period` forces it.
//! 2. **Sources** (after the staging stages): more than `max_quarantined_share` of a required
//!    source's rows quarantined (the top reasons are named); no valid order on or before the
//!    as-of date; a period that starts more than `max_days_beyond_data` days after the newest
//!    valid order (the extracts end before the period: `--allow-beyond-data` forces it).
//! 3. **Shrink** (after every output is staged): a table whose partition would lose more than
//!    `max_shrink` of the rows it has now, or `customer_features` more than that share of its
//!    revenue (`--allow-shrink` forces it).
//!
//! Every outcome is recorded with the run's checks (`gate: ...`), passed or not.

use chrono::NaiveDate;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::period::Period;
use crate::quality::checks::{CheckOutcome, CheckType, Severity};

/// `gate:` in pipeline.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateConfig {
    /// The share of a required source's rows that may be quarantined (per source:
    /// `sources.<name>.max_quarantined_share`).
    pub max_quarantined_share: f64,
    /// The share of a published partition's rows (or of `customer_features`' revenue) a run may
    /// take away when it replaces it.
    pub max_shrink: f64,
    /// How many days after the newest valid order a period may start.
    pub max_days_beyond_data: u32,
}

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            max_quarantined_share: 0.2,
            max_shrink: 0.5,
            max_days_beyond_data: 31,
        }
    }
}

impl GateConfig {
    /// Checks the settings; errors name the key.
    pub fn validate(&self) -> std::result::Result<(), (String, String)> {
        for (key, v) in [
            ("max_quarantined_share", self.max_quarantined_share),
            ("max_shrink", self.max_shrink),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err((key.into(), "must be a fraction in [0, 1]".into()));
            }
        }
        Ok(())
    }
}

/// What the command line lets a run through (each names the gate it opens).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allowances {
    /// `--allow-open-period`.
    pub open_period: bool,
    /// `--allow-beyond-data`.
    pub beyond_data: bool,
    /// `--allow-shrink`.
    pub shrink: bool,
}

/// `pass`, `warn` (failed but allowed by a flag) or `fail`.
fn status(passed: bool, allowed: bool) -> &'static str {
    match (passed, allowed) {
        (true, _) => "pass",
        (false, true) => "warn",
        (false, false) => "fail",
    }
}

fn outcome(
    name: String,
    table: &str,
    check: CheckType,
    status: &str,
    counts: (u64, u64),
    sample: Vec<String>,
    detail: String,
) -> CheckOutcome {
    CheckOutcome {
        name,
        table: table.to_string(),
        check,
        severity: Severity::Error,
        status: status.into(),
        failing: counts.0,
        total: counts.1,
        sample,
        detail,
    }
}

/// The open-period gate: refuses a period whose as-of date is `today` or later.
pub fn open_period(period: &Period, today: NaiveDate, allow: bool) -> (CheckOutcome, Result<()>) {
    let open = period.as_of >= today;
    let detail = if open {
        format!(
            "period {period} is computed as of {}, but today is {today}: the period has not closed, so its data is incomplete. Run it after it closes, compute a partial period with --as-of <a past date>, or pass --allow-open-period",
            period.as_of
        )
    } else {
        format!("as of {} (today is {today})", period.as_of)
    };
    let o = outcome(
        "gate: the period has closed".into(),
        "period",
        CheckType::DataCoverage,
        status(!open, allow),
        (u64::from(open), 1),
        Vec::new(),
        detail.clone(),
    );
    let r = if open && !allow {
        Err(Error::DataQuality(detail))
    } else {
        Ok(())
    };
    (o, r)
}

/// One source's row accounting, as the gate needs it.
pub struct SourceCounts<'a> {
    /// The source.
    pub name: &'a str,
    /// Whether the source is required.
    pub required: bool,
    /// The share allowed for it.
    pub max_share: f64,
    /// Rows read.
    pub rows_read: u64,
    /// Quarantined rows by reason.
    pub quarantined: &'a std::collections::BTreeMap<String, u64>,
}

/// The valid orders' dates, as the gate needs them.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderSpan {
    /// Valid orders dated on or before the as-of date.
    pub up_to_as_of: u64,
    /// The newest valid order's date (any date).
    pub newest: Option<NaiveDate>,
    /// The oldest valid order's date.
    pub oldest: Option<NaiveDate>,
}

/// The sources gate (module docs, 2). Returns every outcome and the refusal, if any.
pub fn sources(
    cfg: &GateConfig,
    sources: &[SourceCounts<'_>],
    orders: OrderSpan,
    period: &Period,
    allow: Allowances,
) -> (Vec<CheckOutcome>, Result<()>) {
    let mut outcomes = Vec::new();
    let mut refused = Vec::new();
    for s in sources.iter().filter(|s| s.required && s.rows_read > 0) {
        let q: u64 = s.quarantined.values().sum();
        let share = q as f64 / s.rows_read as f64;
        let mut reasons: Vec<(&String, &u64)> = s.quarantined.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = reasons
            .iter()
            .take(3)
            .map(|(r, n)| format!("{r}: {n}"))
            .collect();
        let passed = share <= s.max_share;
        let detail = format!(
            "{q} of {} rows ({:.1}%) quarantined; at most {:.1}% allowed (gate.max_quarantined_share or sources.{}.max_quarantined_share){}",
            s.rows_read,
            100.0 * share,
            100.0 * s.max_share,
            s.name,
            if top.is_empty() {
                String::new()
            } else {
                format!("; top reasons: {}", top.join(", "))
            }
        );
        if !passed {
            refused.push(format!(
                "source `{}`: {detail}. Fix the extract (the reasons and lines are in the run record), or raise the share if this is expected",
                s.name
            ));
        }
        outcomes.push(outcome(
            format!("gate: quarantined share of {}", s.name),
            s.name,
            CheckType::QuarantinedShare,
            status(passed, false),
            (q, s.rows_read),
            top,
            detail,
        ));
    }

    let none = orders.up_to_as_of == 0;
    let detail = match (none, orders.oldest) {
        (false, _) => format!(
            "{} valid orders on or before {}",
            orders.up_to_as_of, period.as_of
        ),
        (true, Some(oldest)) => format!(
            "no valid order on or before the as-of date {}: the oldest valid order is from {oldest}; this period is before the data begins",
            period.as_of
        ),
        (true, None) => format!(
            "no valid order at all (as of {}): every order was quarantined or the extract is empty",
            period.as_of
        ),
    };
    if none {
        refused.push(detail.clone());
    }
    outcomes.push(outcome(
        "gate: orders up to the as-of date".into(),
        "orders",
        CheckType::DataCoverage,
        status(!none, false),
        (u64::from(none), 1),
        Vec::new(),
        detail,
    ));

    if let Some(newest) = orders.newest {
        let gap = (period.start - newest).num_days();
        let beyond = gap > i64::from(cfg.max_days_beyond_data);
        let detail = if beyond {
            format!(
                "period {period} starts {gap} days after the newest valid order ({newest}), more than the {} allowed (gate.max_days_beyond_data): the extracts end before this period. Deliver its extracts, or pass --allow-beyond-data",
                cfg.max_days_beyond_data
            )
        } else {
            format!("the newest valid order is from {newest}")
        };
        if beyond && !allow.beyond_data {
            refused.push(detail.clone());
        }
        outcomes.push(outcome(
            "gate: the data reaches the period".into(),
            "orders",
            CheckType::DataCoverage,
            status(!beyond, allow.beyond_data),
            (u64::from(beyond), 1),
            vec![newest.to_string()],
            detail,
        ));
    }
    let r = if refused.is_empty() {
        Ok(())
    } else {
        Err(Error::DataQuality(format!(
            "the publish gate refused period {period}: {}",
            refused.join("; ")
        )))
    };
    (outcomes, r)
}

/// One table's size now and after the run.
pub struct TableSize<'a> {
    /// The table.
    pub table: &'a str,
    /// What the run would publish.
    pub new: f64,
    /// What is published now (None: nothing).
    pub old: Option<f64>,
    /// What is measured (`rows` or `revenue`).
    pub measure: &'a str,
}

/// The shrink gate (module docs, 3).
pub fn shrink(
    cfg: &GateConfig,
    sizes: &[TableSize<'_>],
    period: &Period,
    allow: bool,
) -> (Vec<CheckOutcome>, Result<()>) {
    let mut outcomes = Vec::new();
    let mut refused = Vec::new();
    for s in sizes {
        let Some(old) = s.old.filter(|o| *o > 0.0) else {
            continue;
        };
        let lost = ((old - s.new) / old).max(0.0);
        let passed = lost <= cfg.max_shrink;
        let detail = format!(
            "{} {}: {} now published, {} in this run ({:.1}% less; at most {:.1}% allowed by gate.max_shrink)",
            s.table,
            s.measure,
            round2(old),
            round2(s.new),
            100.0 * lost,
            100.0 * cfg.max_shrink
        );
        if !passed && !allow {
            refused.push(detail.clone());
        }
        outcomes.push(outcome(
            format!("gate: {} {} do not shrink", s.table, s.measure),
            s.table,
            CheckType::Shrink,
            status(passed, allow),
            (u64::from(!passed), 1),
            Vec::new(),
            detail,
        ));
    }
    let r = if refused.is_empty() {
        Ok(())
    } else {
        Err(Error::DataQuality(format!(
            "the publish gate refused to replace period {period}: {}. The published partitions are kept; if the smaller output is right (a corrected extract), pass --allow-shrink",
            refused.join("; ")
        )))
    };
    (outcomes, r)
}

fn round2(x: f64) -> String {
    let r = (x * 100.0).round() / 100.0;
    if r.fract() == 0.0 {
        format!("{}", r as i64)
    } else {
        format!("{r:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::Grain;
    use std::collections::BTreeMap;

    fn june() -> Period {
        Period::parse(Grain::Month, "2024-06").unwrap()
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn an_open_period_is_refused_unless_allowed() {
        assert!(open_period(&june(), d("2024-07-01"), false).1.is_ok());
        let (o, r) = open_period(&june(), d("2024-06-30"), false);
        assert_eq!(o.status, "fail");
        assert!(r.unwrap_err().to_string().contains("--allow-open-period"));
        let (o, r) = open_period(&june(), d("2024-06-02"), true);
        assert!(r.is_ok() && o.status == "warn");
    }

    #[test]
    fn every_order_quarantined_is_refused_naming_the_top_reasons() {
        let q = BTreeMap::from([("invalid_order_ts".to_string(), 8443u64)]);
        let src = [SourceCounts {
            name: "orders",
            required: true,
            max_share: 0.2,
            rows_read: 8443,
            quarantined: &q,
        }];
        let (outcomes, r) = sources(
            &GateConfig::default(),
            &src,
            OrderSpan::default(),
            &june(),
            Allowances::default(),
        );
        let msg = r.unwrap_err().to_string();
        assert!(
            msg.contains("source `orders`: 8443 of 8443 rows (100.0%)"),
            "{msg}"
        );
        assert!(msg.contains("invalid_order_ts: 8443"), "{msg}");
        assert!(msg.contains("no valid order at all"), "{msg}");
        assert_eq!(outcomes.iter().filter(|o| o.status == "fail").count(), 2);
    }

    #[test]
    fn a_period_beyond_the_data_is_refused_unless_allowed() {
        let span = OrderSpan {
            up_to_as_of: 10,
            newest: Some(d("2024-12-31")),
            oldest: Some(d("2022-01-01")),
        };
        let p = Period::parse(Grain::Month, "2030-01").unwrap();
        let cfg = GateConfig::default();
        let msg = sources(&cfg, &[], span, &p, Allowances::default())
            .1
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("--allow-beyond-data") && msg.contains("2024-12-31"),
            "{msg}"
        );
        let allow = Allowances {
            beyond_data: true,
            ..Default::default()
        };
        assert!(sources(&cfg, &[], span, &p, allow).1.is_ok());
        // a month after the data's last order is within the default slack
        let jan = Period::parse(Grain::Month, "2025-01").unwrap();
        assert!(
            sources(&cfg, &[], span, &jan, Allowances::default())
                .1
                .is_ok()
        );
    }

    #[test]
    fn a_shrinking_partition_is_refused_unless_allowed() {
        let cfg = GateConfig::default();
        let sizes = [
            TableSize {
                table: "customer_features",
                new: 0.0,
                old: Some(2477.0),
                measure: "rows",
            },
            TableSize {
                table: "customer_value",
                new: 2400.0,
                old: Some(2477.0),
                measure: "rows",
            },
            TableSize {
                table: "clv_model",
                new: 1.0,
                old: None,
                measure: "rows",
            },
        ];
        let (o, r) = shrink(&cfg, &sizes, &june(), false);
        let msg = r.unwrap_err().to_string();
        assert!(
            msg.contains("customer_features rows: 2477 now published, 0 in this run"),
            "{msg}"
        );
        assert!(!msg.contains("customer_value"), "{msg}");
        assert_eq!(o.len(), 2);
        assert!(shrink(&cfg, &sizes, &june(), true).1.is_ok());
    }
}
