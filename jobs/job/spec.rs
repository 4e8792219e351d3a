//! The job definition as written: a plain serde mirror of `pipeline.yaml`, checked for shape
//! when it is parsed. Each block's type (and its defaults, one `impl Default` per block) lives
//! with the module that uses it; this file only assembles them. [`super::Job::resolve`] turns a
//! spec into ready values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engine::EngineConfig;
use crate::error::{Error, Result};
use crate::extract::source::SourceConfig;
use crate::models::ModelsConfig;
use crate::period::PeriodConfig;
use crate::publish::output::{OutputConfig, TableFormat};
use crate::quality::checks::CheckConfig;
use crate::quality::gate::GateConfig;
use crate::stages::StagesConfig;

/// The whole job definition, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Schema version of this file; only `1` exists.
    #[serde(default = "version_one")]
    pub version: u32,
    /// Variables usable as `${name}` in locations; `--raw`, `--warehouse` and `--var k=v`
    /// override them.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Where output tables are written (`${warehouse}` when not given).
    #[serde(default = "warehouse_var")]
    pub warehouse: String,
    /// Run-scoped scratch space for landed extracts and materialised stages (the warehouse's
    /// `_scratch` when not given). Must be reachable by every engine worker.
    #[serde(default = "scratch_in_warehouse")]
    pub scratch: String,
    /// Period grain and naming.
    #[serde(default)]
    pub period: PeriodConfig,
    /// The business time zone: periods are cut by its local dates.
    #[serde(default = "utc")]
    pub time_zone: String,
    /// Raw extracts by name.
    pub sources: BTreeMap<String, SourceConfig>,
    /// SQL stages.
    #[serde(default)]
    pub stages: StagesConfig,
    /// Model settings.
    #[serde(default)]
    pub models: ModelsConfig,
    /// Output tables by name.
    pub outputs: BTreeMap<String, OutputConfig>,
    /// How output tables are stored: `parquet` (plain Hive-partitioned Parquet, the default) or
    /// `delta` (Delta Lake tables, one commit per period); an output's `format` overrides it.
    #[serde(default)]
    pub table_format: TableFormat,
    /// Engine settings.
    #[serde(default)]
    pub engine: EngineConfig,
    /// A period lock older than this many minutes belongs to a run that died and is taken over.
    #[serde(default = "six_hours")]
    pub lock_stale_after_minutes: u64,
    /// Data-quality checks on stage, model and output tables.
    #[serde(default)]
    pub checks: Vec<CheckConfig>,
    /// The publish gate: what a run must satisfy before it may replace a published period.
    #[serde(default)]
    pub gate: GateConfig,
    /// Settings of the HTML reports (currency, trends).
    #[serde(default)]
    pub report: crate::report::ReportConfig,
    /// Per-bucket object-store options (`s3://bucket: {aws_endpoint: ..., ...}`, object_store's
    /// keys), which replace the environment for that bucket. Values may use `${env:VAR}`;
    /// options that can carry a secret must.
    #[serde(default)]
    pub stores: BTreeMap<String, BTreeMap<String, String>>,

    /// The file this was read from (set by the loader; used in messages and to find `sql/`).
    #[serde(skip)]
    pub file: PathBuf,
}

// the top level's defaults (its blocks' defaults are their own)
fn version_one() -> u32 {
    1
}
fn warehouse_var() -> String {
    "${warehouse}".into()
}
fn scratch_in_warehouse() -> String {
    "${warehouse}/_scratch".into()
}
fn utc() -> String {
    "UTC".into()
}
fn six_hours() -> u64 {
    360
}

impl JobSpec {
    /// Reads and parses a job definition, with `vars` (the command line's `--raw`,
    /// `--warehouse`, `--var`) on top of its `vars:`.
    pub fn load(path: &Path, vars: &BTreeMap<String, String>) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(
                path.display(),
                format!("cannot read the job definition: {e}"),
            )
        })?;
        Self::from_yaml(&text, path, vars)
    }

    /// The built-in job definition ([`crate::builtin`]), with `vars` on top of its `vars:`.
    pub fn built_in(vars: &BTreeMap<String, String>) -> Result<Self> {
        Self::from_yaml(
            crate::builtin::PIPELINE_YAML,
            Path::new(crate::builtin::FILE),
            vars,
        )
    }

    /// Parses a job definition from text and checks its shape (`path` is used in messages and
    /// to find the SQL folder).
    pub fn from_yaml(text: &str, path: &Path, vars: &BTreeMap<String, String>) -> Result<Self> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let mut spec: JobSpec = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let at = inner
                .location()
                .map(|l| format!("{}:{}:{}", path.display(), l.line(), l.column()))
                .unwrap_or_else(|| path.display().to_string());
            let key = if key == "." {
                String::new()
            } else {
                format!(" (key `{key}`)")
            };
            Error::config(at, format!("{inner}{key}"))
        })?;
        spec.file = path.to_path_buf();
        spec.vars
            .extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        spec.validate()?;
        Ok(spec)
    }

    /// A configuration error at `key` of this definition's file.
    pub fn err(&self, key: &str, message: impl std::fmt::Display) -> Error {
        Error::config(self.file.display(), format!("`{key}`: {message}"))
    }

    /// Checks what can be checked without resolving anything: versions, thresholds, names,
    /// sources against the contract, outputs' keys and types, every block's own rules.
    pub fn validate(&mut self) -> Result<()> {
        let at = |(k, m): (String, String)| self.err(&k, m);
        if self.version != 1 {
            return Err(self.err("version", "only version 1 is supported"));
        }
        if self.lock_stale_after_minutes < 1 {
            return Err(self.err(
                "lock_stale_after_minutes",
                "must be at least 1: a lock younger than this belongs to a live run, and 0 would let a second run take the lock of one that is still computing",
            ));
        }
        self.stages.validate().map_err(at)?;
        self.gate
            .validate()
            .map_err(|(k, m)| self.err(&format!("gate.{k}"), m))?;
        self.models.validate().map_err(at)?;
        self.report.validate().map_err(|m| self.err("report", m))?;
        for (i, c) in self.checks.iter().enumerate() {
            c.validate()
                .map_err(|m| self.err(&format!("checks[{i}]"), m))?;
        }
        if !self.sources.contains_key("orders") {
            return Err(self.err("sources", "an `orders` source is required"));
        }
        for (name, s) in &self.sources {
            let known = crate::contract::source_schema(name).ok_or_else(|| {
                self.err(
                    &format!("sources.{name}"),
                    format!(
                        "unknown extract; expected one of {}",
                        crate::contract::SOURCES
                            .iter()
                            .map(|s| s.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            for canon in s.columns.keys() {
                if !known.columns.iter().any(|c| c.name == canon) {
                    return Err(self.err(
                        &format!("sources.{name}.columns.{canon}"),
                        format!("`{canon}` is not a canonical column of `{name}`"),
                    ));
                }
            }
            if !s.delimiter.is_ascii() {
                return Err(self.err(
                    &format!("sources.{name}.delimiter"),
                    "must be one ASCII character",
                ));
            }
            if let Some(share) = s.max_quarantined_share
                && !(0.0..=1.0).contains(&share)
            {
                return Err(self.err(
                    &format!("sources.{name}.max_quarantined_share"),
                    "must be a fraction in [0, 1]",
                ));
            }
        }
        for (name, o) in &self.outputs {
            let cols = o.column_types(name).map_err(at)?;
            for k in &o.key {
                if !cols.iter().any(|(c, _)| c == k) {
                    return Err(self.err(
                        &format!("outputs.{name}.key"),
                        format!("key column `{k}` is not declared in columns"),
                    ));
                }
            }
            if cols.iter().any(|(c, _)| c == "period") {
                return Err(self.err(
                    &format!("outputs.{name}.columns.period"),
                    "`period` is the partition column and is added by the writer",
                ));
            }
        }
        if let Some(o) = self.sources.get_mut("orders") {
            o.required = true;
        }
        Ok(())
    }
}
