//! The run's plan: the SQL stages and models in dependency order, and the SQL parameters of a
//! period.

use std::collections::BTreeMap;

use crate::config::PipelineConfig;
use crate::error::Result;
use crate::extract;
use crate::models;
use crate::period::Period;
use crate::stages;

/// Built-in SQL parameters plus `stages.params`, each as a typed SQL literal (dates as
/// `DATE '2024-06-30'`, text quoted and escaped, numbers and booleans checked): a value is
/// bound as one literal, never spliced into the SQL as text (`stages::literal`).
pub fn sql_params(
    cfg: &PipelineConfig,
    period: &Period,
    present: &BTreeMap<String, bool>,
) -> BTreeMap<String, String> {
    let prev = period.previous();
    let date = |d: chrono::NaiveDate| format!("DATE '{d}'");
    let mut p = BTreeMap::new();
    p.insert("as_of".into(), date(period.as_of));
    p.insert("period_start".into(), date(period.start));
    p.insert("period_end".into(), date(period.end));
    p.insert("period".into(), stages::string_literal(&period.label()));
    p.insert("previous_period_start".into(), date(prev.start));
    p.insert("previous_period_end".into(), date(prev.end));
    let holdout = cfg.models.clv.holdout_days;
    let calibration_end = period.as_of - chrono::Duration::days(i64::from(holdout));
    p.insert("holdout_days".into(), holdout.to_string());
    p.insert("calibration_end".into(), date(calibration_end));
    for s in extract::contract::SOURCES {
        let has = present.get(s.name).copied().unwrap_or(false);
        p.insert(
            format!("has_{}", s.name),
            if has { "TRUE" } else { "FALSE" }.into(),
        );
    }
    for (k, v) in &cfg.stages.params {
        // validated when the job definition was loaded: built-in names are reserved and every
        // value is a scalar
        if let Ok(lit) = stages::literal(v) {
            p.entry(k.clone()).or_insert(lit);
        }
    }
    p
}

/// The plan of a job definition: SQL stages and models in run order.
pub fn plan(cfg: &PipelineConfig) -> Result<stages::graph::Plan> {
    let any_period = Period::containing(cfg.period.grain, chrono::NaiveDate::default());
    let all_present = extract::contract::SOURCES
        .iter()
        .map(|s| (s.name.to_string(), true))
        .collect();
    let sql = stages::discover(&cfg.sql_dir(), &sql_params(cfg, &any_period, &all_present))?;
    let models = models::registry(&cfg.models)
        .iter()
        .map(|m| m.node())
        .collect();
    let mut provided: Vec<String> = extract::contract::SOURCES
        .iter()
        .map(|s| format!("raw.{}", s.name))
        .collect();
    provided.extend(cfg.outputs.keys().map(|t| format!("previous.{t}")));
    stages::graph::plan(&provided, sql, models)
}
