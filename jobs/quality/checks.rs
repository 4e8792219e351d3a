//! Declarative data-quality checks (`checks:` in pipeline.yaml), run on stage, model and output
//! tables after the models and before anything is published. A failing check of severity
//! `error` stops the run with the data-quality exit code and nothing is published; `warn` only
//! reports. Each check may tolerate a fraction of failing rows.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use crate::error::{EngineContext, Error, Result};
use crate::period::Period;

/// What a failing check does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Reported in the run results and the log; the run goes on.
    Warn,
    /// Fails the run with exit code 3; nothing is published.
    #[default]
    Error,
}

/// The kinds of check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckType {
    /// `column` is never null.
    NotNull,
    /// `columns` (or `column`) identify a row.
    Unique,
    /// Non-null values of `column` are among `values`.
    AcceptedValues,
    /// Non-null values of `column` lie within [`min`, `max`].
    Range,
    /// The table's row count lies within [`min`, `max`].
    RowCount,
    /// Every non-null `column` value exists in `to` (`table.column`).
    Relationships,
    /// The latest `column` date is at most `max_age_days` before the as-of date.
    Freshness,
    /// Built in (the publish gate, `gate:`): the share of a required source's rows quarantined.
    QuarantinedShare,
    /// Built in (the publish gate): the data covers the period.
    DataCoverage,
    /// Built in (the publish gate): a rerun does not shrink a published partition.
    Shrink,
}

impl CheckType {
    /// Whether the check is the publish gate's own (configured under `gate:`, not `checks:`).
    pub fn is_built_in(self) -> bool {
        matches!(
            self,
            CheckType::QuarantinedShare | CheckType::DataCoverage | CheckType::Shrink
        )
    }
}

/// One check of pipeline.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// A name for messages (default: `<check> <table>.<column>`).
    #[serde(default)]
    pub name: Option<String>,
    /// The stage, model or output table checked.
    pub table: String,
    /// The kind of check.
    pub check: CheckType,
    /// The column checked.
    #[serde(default)]
    pub column: Option<String>,
    /// The key columns of `unique`.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Accepted values.
    #[serde(default)]
    pub values: Vec<String>,
    /// Lower bound (`range`, `row_count`).
    #[serde(default)]
    pub min: Option<f64>,
    /// Upper bound (`range`, `row_count`).
    #[serde(default)]
    pub max: Option<f64>,
    /// The referenced `table.column` of `relationships`.
    #[serde(default)]
    pub to: Option<String>,
    /// Maximum age in days of `freshness`.
    #[serde(default)]
    pub max_age_days: Option<i64>,
    /// warn or error (default error).
    #[serde(default)]
    pub severity: Severity,
    /// Fraction of failing rows tolerated (default 0).
    #[serde(default)]
    pub tolerance: f64,
}

/// The outcome of one check, for the run results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// The check's name.
    pub name: String,
    /// The table checked.
    pub table: String,
    /// The kind of check.
    pub check: CheckType,
    /// Its severity.
    pub severity: Severity,
    /// `pass`, `warn` or `fail`.
    pub status: String,
    /// Failing rows (or 1 for a table-level failure).
    pub failing: u64,
    /// Rows checked.
    pub total: u64,
    /// Up to five failing values or keys.
    pub sample: Vec<String>,
    /// What was found, in words.
    pub detail: String,
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl CheckConfig {
    /// The check's display name.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let what = serde_json::to_value(self.check)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            match (&self.column, self.columns.is_empty()) {
                (Some(c), _) => format!("{what} {}.{c}", self.table),
                (None, false) => format!("{what} {}({})", self.table, self.columns.join(", ")),
                _ => format!("{what} {}", self.table),
            }
        })
    }

    /// Checks that the fields the check type needs are present.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.check.is_built_in() {
            return Err(format!(
                "{}: this check is the publish gate's own; configure it under `gate:`",
                self.display_name()
            ));
        }
        let need_column = matches!(
            self.check,
            CheckType::NotNull
                | CheckType::AcceptedValues
                | CheckType::Range
                | CheckType::Relationships
                | CheckType::Freshness
        );
        if need_column && self.column.is_none() {
            return Err(format!("{}: `column` is required", self.display_name()));
        }
        if self.check == CheckType::Unique && self.column.is_none() && self.columns.is_empty() {
            return Err(format!(
                "{}: `column` or `columns` is required",
                self.display_name()
            ));
        }
        if self.check == CheckType::AcceptedValues && self.values.is_empty() {
            return Err(format!("{}: `values` is required", self.display_name()));
        }
        if matches!(self.check, CheckType::Range | CheckType::RowCount)
            && self.min.is_none()
            && self.max.is_none()
        {
            return Err(format!(
                "{}: `min` or `max` is required",
                self.display_name()
            ));
        }
        if self.check == CheckType::Relationships
            && self
                .to
                .as_deref()
                .and_then(|t| t.rsplit_once('.'))
                .is_none()
        {
            return Err(format!(
                "{}: `to` must be `table.column`",
                self.display_name()
            ));
        }
        if self.check == CheckType::Freshness && self.max_age_days.is_none() {
            return Err(format!(
                "{}: `max_age_days` is required",
                self.display_name()
            ));
        }
        if !(0.0..=1.0).contains(&self.tolerance) {
            return Err(format!(
                "{}: `tolerance` must be a fraction in [0, 1]",
                self.display_name()
            ));
        }
        Ok(())
    }

    /// Whether the check reads a personal-data column (e-mail, name, phone, birth date,
    /// income: the contract's personal columns), whose values must not appear in samples.
    pub fn reads_personal_data(&self) -> bool {
        let personal = |c: &str| {
            crate::contract::SOURCES
                .iter()
                .flat_map(|s| s.columns.iter())
                .any(|col| col.pii && col.name.eq_ignore_ascii_case(c))
        };
        self.column.as_deref().is_some_and(personal) || self.columns.iter().any(|c| personal(c))
    }

    /// SQL returning (failing, total) and SQL returning a sample of failing values.
    fn queries(&self, period: &Period) -> (String, Option<String>) {
        let t = ident(&self.table);
        let c = self.column.as_deref().map(ident).unwrap_or_default();
        match self.check {
            CheckType::NotNull => (
                format!(
                    "SELECT CAST(sum(CASE WHEN {c} IS NULL THEN 1 ELSE 0 END) AS BIGINT), count(*) FROM {t}"
                ),
                None,
            ),
            CheckType::Unique => {
                let cols: Vec<String> = if self.columns.is_empty() {
                    vec![c.clone()]
                } else {
                    self.columns.iter().map(|s| ident(s)).collect()
                };
                let key = cols.join(", ");
                let concat = cols
                    .iter()
                    .map(|k| format!("CAST({k} AS VARCHAR)"))
                    .collect::<Vec<_>>()
                    .join(" || '|' || ");
                (
                    format!(
                        "SELECT CAST(coalesce(sum(n - 1), 0) AS BIGINT) AS failing, (SELECT count(*) FROM {t}) AS total FROM (SELECT count(*) AS n FROM {t} GROUP BY {key} HAVING count(*) > 1)"
                    ),
                    Some(format!(
                        "SELECT k FROM (SELECT {concat} AS k, count(*) AS n FROM {t} GROUP BY {concat}) AS g WHERE n > 1 ORDER BY k LIMIT 5"
                    )),
                )
            }
            CheckType::AcceptedValues => {
                let list = self
                    .values
                    .iter()
                    .map(|v| literal(v))
                    .collect::<Vec<_>>()
                    .join(", ");
                let bad = format!("{c} IS NOT NULL AND CAST({c} AS VARCHAR) NOT IN ({list})");
                (
                    format!(
                        "SELECT CAST(sum(CASE WHEN {bad} THEN 1 ELSE 0 END) AS BIGINT), count(*) FROM {t}"
                    ),
                    Some(format!(
                        "SELECT DISTINCT CAST({c} AS VARCHAR) FROM {t} WHERE {bad} ORDER BY 1 LIMIT 5"
                    )),
                )
            }
            CheckType::Range => {
                let mut conds = Vec::new();
                if let Some(min) = self.min {
                    conds.push(format!("CAST({c} AS DOUBLE) < {min:?}"));
                }
                if let Some(max) = self.max {
                    conds.push(format!("CAST({c} AS DOUBLE) > {max:?}"));
                }
                let bad = format!("({})", conds.join(" OR "));
                (
                    format!(
                        "SELECT CAST(sum(CASE WHEN {bad} THEN 1 ELSE 0 END) AS BIGINT), count(*) FROM {t}"
                    ),
                    Some(format!(
                        "SELECT DISTINCT CAST({c} AS VARCHAR) FROM {t} WHERE {bad} ORDER BY 1 LIMIT 5"
                    )),
                )
            }
            CheckType::RowCount => {
                let min = self
                    .min
                    .map(|m| format!("count(*) < {m:?}"))
                    .unwrap_or_else(|| "false".into());
                let max = self
                    .max
                    .map(|m| format!("count(*) > {m:?}"))
                    .unwrap_or_else(|| "false".into());
                (
                    format!(
                        "SELECT CAST(CASE WHEN {min} OR {max} THEN 1 ELSE 0 END AS BIGINT), count(*) FROM {t}"
                    ),
                    None,
                )
            }
            CheckType::Relationships => {
                let (rt, rc) = self
                    .to
                    .as_deref()
                    .and_then(|s| s.rsplit_once('.'))
                    .unwrap_or(("", ""));
                let orphans = format!(
                    "FROM {t} AS c LEFT JOIN (SELECT DISTINCT {rc} AS k FROM {rt}) AS r ON c.{c} = r.k WHERE c.{c} IS NOT NULL AND r.k IS NULL",
                    rt = ident(rt),
                    rc = ident(rc)
                );
                (
                    format!(
                        "SELECT count(*) AS failing, (SELECT count(*) FROM {t}) AS total {orphans}"
                    ),
                    Some(format!(
                        "SELECT DISTINCT CAST(c.{c} AS VARCHAR) {orphans} ORDER BY 1 LIMIT 5"
                    )),
                )
            }
            CheckType::QuarantinedShare | CheckType::DataCoverage | CheckType::Shrink => {
                (format!("SELECT CAST(0 AS BIGINT), count(*) FROM {t}"), None)
            }
            CheckType::Freshness => {
                let age = self.max_age_days.unwrap_or(0);
                let as_of = period.as_of;
                (
                    format!(
                        "SELECT CAST(CASE WHEN max(CAST({c} AS DATE)) IS NULL OR arrow_cast(DATE '{as_of}', 'Int32') - arrow_cast(max(CAST({c} AS DATE)), 'Int32') > {age} THEN 1 ELSE 0 END AS BIGINT), count(*) FROM {t}"
                    ),
                    Some(format!(
                        "SELECT CAST(max(CAST({c} AS DATE)) AS VARCHAR) FROM {t}"
                    )),
                )
            }
        }
    }
}

fn first_i64(batches: &[RecordBatch], col: usize) -> u64 {
    batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .and_then(|b| cast(b.column(col), &DataType::Int64).ok())
        .map(|a| {
            let a = a.as_primitive::<Int64Type>();
            if a.is_null(0) {
                0
            } else {
                a.value(0).max(0) as u64
            }
        })
        .unwrap_or(0)
}

fn strings(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        if let Ok(a) = cast(b.column(0), &DataType::Utf8) {
            let a = a.as_string::<i32>();
            out.extend((0..a.len()).map(|i| {
                if a.is_null(i) {
                    "NULL".to_string()
                } else {
                    a.value(i).to_string()
                }
            }));
        }
    }
    out
}

/// Runs every check; returns the outcomes, or a data-quality error naming the failed
/// error-severity checks (the outcomes are returned either way through `outcomes`).
pub async fn run_checks(
    ctx: &SessionContext,
    checks: &[CheckConfig],
    period: &Period,
    config_file: &str,
    outcomes: &mut Vec<CheckOutcome>,
) -> Result<()> {
    for (i, check) in checks.iter().enumerate() {
        let name = check.display_name();
        let (count_sql, sample_sql) = check.queries(period);
        // a check that cannot be planned names a table or column that does not exist: that is
        // the job definition's mistake (`validate` catches it before any run)
        let df = ctx.sql(&count_sql).await.map_err(|e| {
            Error::config(
                config_file,
                format!(
                    "`checks[{i}]` ({name}): {}; fix the table or column name",
                    crate::error::engine_message(&e)
                ),
            )
        })?;
        let batches = df.collect().await.context(|| format!("check `{name}`"))?;
        let (failing, total) = (first_i64(&batches, 0), first_i64(&batches, 1));
        let fraction = if total == 0 {
            if failing > 0 { 1.0 } else { 0.0 }
        } else {
            failing as f64 / total as f64
        };
        let table_level = matches!(check.check, CheckType::RowCount | CheckType::Freshness);
        let passed = if table_level {
            failing == 0
        } else {
            fraction <= check.tolerance
        };
        let wanted = !passed || check.check == CheckType::Freshness;
        let mut sample = match (&sample_sql, wanted) {
            (Some(sql), true) => strings(
                &ctx.sql(sql)
                    .await
                    .context(|| name.clone())?
                    .collect()
                    .await
                    .context(|| name.clone())?,
            ),
            _ => Vec::new(),
        };
        // failing values of a personal-data column never reach the record or the log
        if check.reads_personal_data() {
            sample = sample
                .iter()
                .map(|v| crate::redact::mask_personal(v))
                .collect();
        }
        let detail = match check.check {
            CheckType::RowCount => format!(
                "{total} rows; {}",
                match (check.min, check.max) {
                    (Some(lo), Some(hi)) => format!("between {lo} and {hi} expected"),
                    (Some(lo), None) => format!("at least {lo} expected"),
                    (None, Some(hi)) => format!("at most {hi} expected"),
                    (None, None) => "no bounds".into(),
                }
            ),
            CheckType::Freshness => format!(
                "latest {} is {}; as of {} at most {} days old allowed",
                check.column.as_deref().unwrap_or(""),
                sample.first().cloned().unwrap_or_else(|| "-".into()),
                period.as_of,
                check.max_age_days.unwrap_or(0)
            ),
            _ => format!(
                "{failing} of {total} rows fail ({:.4}%; tolerated {:.4}%)",
                100.0 * fraction,
                100.0 * check.tolerance
            ),
        };
        let status = match (passed, check.severity) {
            (true, _) => "pass",
            (false, Severity::Warn) => "warn",
            (false, Severity::Error) => "fail",
        };
        if !passed {
            tracing::warn!(check = %name, status, "{detail}; sample: {}", sample.join(", "));
        }
        outcomes.push(CheckOutcome {
            name,
            table: check.table.clone(),
            check: check.check,
            severity: check.severity,
            status: status.into(),
            failing,
            total,
            sample,
            detail,
        });
    }
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| o.status == "fail")
        .map(|o| {
            if o.sample.is_empty() {
                format!("{} ({})", o.name, o.detail)
            } else {
                format!("{} ({}; e.g. {})", o.name, o.detail, o.sample.join(", "))
            }
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::DataQuality(failed.join("; ")))
    }
}
