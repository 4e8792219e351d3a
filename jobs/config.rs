//! The job definition: one typed model of `pipeline.yaml`, validated once. Defaults live here
//! and nowhere else; errors name the file, the line and the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::period::Grain;

/// The whole job definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Schema version of this file; only `1` exists.
    #[serde(default = "one")]
    pub version: u32,
    /// Variables usable as `${name}` in locations; `--raw`, `--warehouse` and `--var k=v`
    /// override them.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Where output tables are written (usually `${warehouse}`).
    #[serde(default = "default_warehouse")]
    pub warehouse: String,
    /// Run-scoped scratch space for landed extracts, materialised stages and unpublished
    /// partitions. Must be reachable by every engine worker.
    #[serde(default = "default_scratch")]
    pub scratch: String,
    /// Period grain and naming.
    #[serde(default)]
    pub period: PeriodConfig,
    /// The business time zone in which zone-less timestamps are read.
    #[serde(default = "default_tz")]
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
    /// Engine settings.
    #[serde(default)]
    pub engine: EngineConfig,
    /// A period lock older than this many minutes belongs to a run that died and is taken over.
    #[serde(default = "default_stale_lock")]
    pub lock_stale_after_minutes: u64,
    /// Data-quality checks on stage, model and output tables.
    #[serde(default)]
    pub checks: Vec<crate::checks::CheckConfig>,
    /// The publish gate: what a run must satisfy before it may replace a published period.
    #[serde(default)]
    pub gate: crate::gate::GateConfig,
    /// Settings of the HTML reports (currency, trends).
    #[serde(default)]
    pub report: crate::report::ReportConfig,
    /// Per-bucket object-store options (`s3://bucket: {aws_endpoint: ..., ...}`, object_store's
    /// keys), which replace the environment for that bucket. Values may use `${env:VAR}`;
    /// secrets (keys, tokens, passwords) must.
    #[serde(default)]
    pub stores: BTreeMap<String, BTreeMap<String, String>>,

    /// The file this was read from (set by the loader).
    #[serde(skip)]
    pub file: PathBuf,
}

fn one() -> u32 {
    1
}
fn default_warehouse() -> String {
    "${warehouse}".into()
}
fn default_scratch() -> String {
    "${warehouse}/_scratch".into()
}
fn default_stale_lock() -> u64 {
    360
}
fn default_tz() -> String {
    "UTC".into()
}

/// How periods are cut.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PeriodConfig {
    /// `month` (default), `quarter` or `year`.
    #[serde(default)]
    pub grain: Grain,
}

/// The file format of a source.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// Comma-separated values with a header row, plain or gzip (detected by content).
    #[default]
    Csv,
    /// One JSON object per line, plain or gzip.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

/// One raw extract.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// File format.
    #[serde(default)]
    pub format: SourceFormat,
    /// A file, a folder (ending in `/`) or a glob (`*` in the last segment), on any store URL.
    pub location: String,
    /// Canonical column name -> the column name in the extract, for extracts that differ.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// The CSV field delimiter (one ASCII character).
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Whether a missing extract is an error. `orders` is always required.
    #[serde(default)]
    pub required: bool,
    /// The share of a required source's rows that may be quarantined before the run is refused
    /// (default: `gate.max_quarantined_share`).
    #[serde(default)]
    pub max_quarantined_share: Option<f64>,
}

fn default_delimiter() -> char {
    ','
}

/// SQL stage settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagesConfig {
    /// Folder holding `staging/`, `intermediate/` and `marts/` (relative to pipeline.yaml).
    #[serde(default = "default_sql_dir")]
    pub dir: String,
    /// Values substituted for `${name}` in SQL (besides the built-in period variables).
    #[serde(default)]
    pub params: BTreeMap<String, serde_yaml_ng::Value>,
}

impl Default for StagesConfig {
    fn default() -> Self {
        Self {
            dir: default_sql_dir(),
            params: BTreeMap::new(),
        }
    }
}

fn default_sql_dir() -> String {
    "sql".into()
}

/// Query-engine settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Where the SQL stages run: `local` (default), `ballista` (a cluster at `scheduler`) or
    /// `ballista-standalone` (an in-process cluster). `--engine` overrides it.
    #[serde(default)]
    pub kind: crate::engine::EngineKind,
    /// The Ballista scheduler, `df://host:port` (or `standalone`). `--scheduler` overrides it.
    #[serde(default)]
    pub scheduler: Option<String>,
    /// Target partitions (parallelism) for the local engine; 0 = number of cores.
    #[serde(default)]
    pub target_partitions: usize,
    /// Batch size for the engine.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Memory the query engine may use (e.g. `512MiB`, `2GiB`, or bytes); sorts, aggregations
    /// and other spilling operators write to `spill_dir` beyond it. Unset: no limit.
    #[serde(default)]
    pub memory_limit: Option<String>,
    /// Local folder for the engine's spill files (`${var}`s allowed). Unset: the OS temp dir.
    #[serde(default)]
    pub spill_dir: Option<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            kind: Default::default(),
            scheduler: None,
            target_partitions: 0,
            batch_size: default_batch_size(),
            memory_limit: None,
            spill_dir: None,
        }
    }
}

impl EngineConfig {
    /// `memory_limit` in bytes (None: unlimited), or what is wrong with it.
    pub fn memory_limit_bytes(&self) -> std::result::Result<Option<usize>, String> {
        self.memory_limit.as_deref().map(parse_size).transpose()
    }
}

/// A size such as `512MiB`, `2GiB`, `100MB` or `1048576` (bytes), in bytes.
pub fn parse_size(text: &str) -> std::result::Result<usize, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim());
    let scale: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => f64::NAN,
    };
    let bytes = number.parse::<f64>().map(|n| n * scale).unwrap_or(f64::NAN);
    if bytes.is_finite() && bytes >= 1.0 && bytes < usize::MAX as f64 {
        Ok(bytes as usize)
    } else {
        Err(format!(
            "`{text}` is not a size; write e.g. 512MiB, 2GiB, 100MB or a number of bytes"
        ))
    }
}

fn default_batch_size() -> usize {
    8192
}

/// A declared output column type.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// UTF-8 text.
    String,
    /// 64-bit integer.
    Int64,
    /// 32-bit integer.
    Int32,
    /// 64-bit float.
    Float64,
    /// Boolean.
    Boolean,
    /// Calendar date.
    Date,
    /// Timestamp (microseconds, UTC).
    Timestamp,
}

/// One output table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// The stage or model table this output publishes.
    pub from: String,
    /// Columns that identify a row; rows are written sorted by them.
    pub key: Vec<String>,
    /// Whether the table is written (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Whether an empty partition is normal for this table (no rejected rows, no previous period
    /// to migrate from); other empty outputs are refused unless `--allow-empty`.
    #[serde(default)]
    pub may_be_empty: bool,
    /// The contract schema: column name -> type, in output order.
    pub columns: serde_yaml_ng::Mapping,
}

fn yes() -> bool {
    true
}

/// Settings of every model; each model owns its block.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// RFM quintile scores and named segments.
    #[serde(default)]
    pub rfm: crate::models::segments::rfm::RfmConfig,
    /// RFM eight classes.
    #[serde(default)]
    pub rfm8: crate::models::segments::rfm8::Rfm8Config,
    /// Customer lifetime value.
    #[serde(default)]
    pub clv: crate::models::customer_value::ClvConfig,
    /// Lifecycle stages.
    #[serde(default)]
    pub lifecycle: crate::models::segments::lifecycle::LifecycleConfig,
    /// Usage-rate tiers.
    #[serde(default)]
    pub usage: crate::models::segments::usage::UsageConfig,
    /// Value tiers and current-value classes.
    #[serde(default)]
    pub value_tiers: crate::models::segments::value_tiers::ValueTierConfig,
    /// Preference types.
    #[serde(default)]
    pub preference: crate::models::segments::preference::PreferenceConfig,
    /// Value x loyalty classes.
    #[serde(default)]
    pub value_loyalty: crate::models::segments::value_loyalty::ValueLoyaltyConfig,
    /// k-means clusters.
    #[serde(default)]
    pub clusters: crate::models::segments::clusters::ClusterConfig,
    /// Market positioning of segments.
    #[serde(default)]
    pub positioning: crate::models::positioning::PositioningConfig,
}

impl OutputConfig {
    /// The declared columns in order, validated.
    pub fn column_types(&self, table: &str) -> Result<Vec<(String, ColumnType)>> {
        let mut out = Vec::with_capacity(self.columns.len());
        for (k, v) in &self.columns {
            let name = k.as_str().ok_or_else(|| {
                Error::config(
                    "pipeline.yaml",
                    format!("outputs.{table}.columns: column names must be strings"),
                )
            })?;
            let ty: ColumnType = serde_yaml_ng::from_value(v.clone()).map_err(|_| {
                Error::config(
                    "pipeline.yaml",
                    format!(
                        "outputs.{table}.columns.{name}: unknown type {v:?}; use string, int64, int32, float64, boolean, date or timestamp"
                    ),
                )
            })?;
            out.push((name.to_string(), ty));
        }
        Ok(out)
    }
}

/// Command-line overrides of the job definition.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--var name=value` pairs, `--raw` and `--warehouse` included.
    pub vars: BTreeMap<String, String>,
}

impl PipelineConfig {
    /// Reads, parses and validates a job definition.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(
                path.display(),
                format!("cannot read the job definition: {e}"),
            )
        })?;
        Self::from_yaml(&text, path, overrides)
    }

    /// Parses and validates a job definition from text (`path` is used in messages and to
    /// resolve relative folders).
    pub fn from_yaml(text: &str, path: &Path, overrides: &Overrides) -> Result<Self> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let mut cfg: PipelineConfig = serde_path_to_error::deserialize(de).map_err(|e| {
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
        cfg.file = path.to_path_buf();
        for (k, v) in &overrides.vars {
            cfg.vars.insert(k.clone(), v.clone());
        }
        cfg.validate()?;
        Ok(cfg)
    }

    fn err(&self, key: &str, message: impl std::fmt::Display) -> Error {
        Error::config(self.file.display(), format!("`{key}`: {message}"))
    }

    /// Resolves a location and refuses credentials written into its URL (they would not be used
    /// by the stores, and would be echoed wherever the location is shown).
    fn location(&self, key: &str, text: &str) -> Result<String> {
        let resolved = self.resolve(text).map_err(|m| self.err(key, m))?;
        if crate::redact::has_url_credentials(&resolved) {
            return Err(self.err(
                key,
                "the URL holds credentials (`user:secret@`); remove them and give them through the environment or `stores:` with ${env:VAR} references",
            ));
        }
        Ok(resolved)
    }

    fn validate(&mut self) -> Result<()> {
        if self.version != 1 {
            return Err(self.err("version", "only version 1 is supported"));
        }
        self.register_stores()?;
        if self.lock_stale_after_minutes < 1 {
            return Err(self.err(
                "lock_stale_after_minutes",
                "must be at least 1: a lock younger than this belongs to a live run, and 0 would let a second run take the lock of one that is still computing",
            ));
        }
        for (k, v) in &self.stages.params {
            let key = format!("stages.params.{k}");
            if crate::stages::is_built_in_param(k) {
                return Err(self.err(
                    &key,
                    format!("`{k}` is a built-in parameter set by the run from its period and sources; choose another name"),
                ));
            }
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(self.err(&key, "a parameter name uses letters, digits and `_` only"));
            }
            crate::stages::literal(v).map_err(|m| self.err(&key, m))?;
        }
        self.gate
            .validate()
            .map_err(|(k, m)| self.err(&format!("gate.{k}"), m))?;
        if !self.sources.contains_key("orders") {
            return Err(self.err("sources", "an `orders` source is required"));
        }
        if let Some(o) = self.sources.get_mut("orders") {
            o.required = true;
        }
        for (name, s) in &self.sources {
            let known = crate::extract::contract::source_schema(name).ok_or_else(|| {
                self.err(
                    &format!("sources.{name}"),
                    format!(
                        "unknown extract; expected one of {}",
                        crate::extract::contract::SOURCES
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
            self.location(&format!("sources.{name}.location"), &s.location)?;
        }
        self.location("warehouse", &self.warehouse)?;
        self.location("scratch", &self.scratch)?;
        crate::engine::Engine::resolve(self.engine.kind, self.engine.scheduler.as_deref())
            .map_err(|m| self.err("engine", m))?;
        self.engine
            .memory_limit_bytes()
            .map_err(|m| self.err("engine.memory_limit", m))?;
        if let Some(dir) = &self.engine.spill_dir {
            self.resolve(dir)
                .map_err(|m| self.err("engine.spill_dir", m))?;
        }
        self.time_zone.parse::<chrono_tz::Tz>().map_err(|_| {
            self.err(
                "time_zone",
                format!(
                    "unknown time zone `{}`; use an IANA name such as UTC or Europe/Berlin",
                    self.time_zone
                ),
            )
        })?;
        for (name, o) in &self.outputs {
            let cols = o.column_types(name)?;
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
        for (i, c) in self.checks.iter().enumerate() {
            c.validate()
                .map_err(|m| self.err(&format!("checks[{i}]"), m))?;
        }
        let m = &self.models;
        for (key, checked) in [
            ("models.rfm", m.rfm.validate()),
            ("models.rfm8", m.rfm8.validate()),
            ("models.clv", m.clv.validate()),
            ("models.value_tiers", m.value_tiers.validate()),
            ("models.lifecycle", m.lifecycle.validate()),
            ("models.usage", m.usage.validate()),
            ("models.preference", m.preference.validate()),
            ("models.value_loyalty", m.value_loyalty.validate()),
            ("models.clusters", m.clusters.validate()),
            ("models.positioning", m.positioning.validate()),
            ("report", self.report.validate()),
        ] {
            checked.map_err(|msg| self.err(key, msg))?;
        }
        Ok(())
    }

    /// Resolves `stores:` and hands each bucket's options to [`crate::storage`]. Only options
    /// that cannot carry a secret (region, endpoint, flags; [`crate::storage::is_clear_text_option`])
    /// may be written in the file; every other one must be a `${env:VAR}` reference as its whole
    /// value, and its resolved value is redacted wherever it would appear. A clear-text URL
    /// option (an endpoint, a proxy) may not hold `user:password@`.
    fn register_stores(&self) -> Result<()> {
        for (root, options) in &self.stores {
            let mut pairs = Vec::new();
            for (k, v) in options {
                let key = format!("stores.{root}.{k}");
                let v = v.trim();
                let clear_text = crate::storage::is_clear_text_option(root, k)
                    .map_err(|e| self.err(&format!("stores.{root}"), e))?;
                let env_ref = v.starts_with("${env:")
                    && v.ends_with('}')
                    && v.matches("${").count() == 1
                    && v.matches('}').count() == 1;
                if !clear_text && !env_ref {
                    return Err(self.err(
                        &key,
                        "this option can carry a secret, so it must not be written in the file: make the whole value a `${env:VAR}` reference",
                    ));
                }
                let resolved = self.resolve(v).map_err(|m| self.err(&key, m))?;
                if clear_text && crate::redact::has_url_credentials(&resolved) {
                    return Err(self.err(
                        &key,
                        "the URL holds credentials (`user:secret@`): give them through their own options as ${env:VAR} references",
                    ));
                }
                if !clear_text {
                    crate::redact::register_secret(&resolved);
                }
                pairs.push((k.clone(), resolved));
            }
            let pairs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            crate::storage::set_store_options(root, &pairs)
                .map_err(|e| self.err(&format!("stores.{root}"), e))?;
        }
        Ok(())
    }

    /// Substitutes `${var}` and `${env:VAR}` references in a location.
    pub fn resolve(&self, text: &str) -> std::result::Result<String, String> {
        substitute(text, |name| {
            if let Some(var) = name.strip_prefix("env:") {
                std::env::var(var).map_err(|_| format!("environment variable `{var}` is not set"))
            } else {
                self.vars.get(name).cloned().ok_or_else(|| {
                    format!("unknown variable `${{{name}}}`; define it under `vars:` or pass --var {name}=...")
                })
            }
        })
    }

    /// The folder holding the SQL stages.
    pub fn sql_dir(&self) -> PathBuf {
        let base = self.file.parent().unwrap_or_else(|| Path::new("."));
        base.join(&self.stages.dir)
    }

    /// A stable hash of the effective configuration (file text and overrides), for run results.
    pub fn hash(&self, text: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(text.as_bytes());
        for (k, v) in &self.vars {
            h.update(k.as_bytes());
            h.update(b"=");
            h.update(v.as_bytes());
            h.update(b"\n");
        }
        let digest = h.finalize();
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// Replaces `${name}` with `lookup(name)`; `$$` is a literal `$`.
pub fn substitute(
    text: &str,
    mut lookup: impl FnMut(&str) -> std::result::Result<String, String>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unterminated `${{` in `{text}`"))?;
            out.push_str(&lookup(body[..end].trim())?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "vars: {raw: /r, warehouse: /w}\nsources:\n  orders: {location: '${raw}/orders/'}\noutputs: {}\n";

    #[test]
    fn store_options_resolve_env_and_refuse_clear_text_secrets() {
        let clear = format!(
            "{MINIMAL}stores:\n  s3://cfg-bucket: {{aws_endpoint: 'http://127.0.0.1:1', aws_secret_access_key: hunter2}}\n"
        );
        let err = PipelineConfig::from_yaml(&clear, Path::new("p.yaml"), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("stores.s3://cfg-bucket.aws_secret_access_key"),
            "{err}"
        );
        assert!(err.contains("${env:VAR}"), "{err}");
        let unset = format!(
            "{MINIMAL}stores:\n  s3://cfg-bucket: {{aws_secret_access_key: '${{env:CRM_TEST_UNSET_SECRET}}'}}\n"
        );
        let err = PipelineConfig::from_yaml(&unset, Path::new("p.yaml"), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("CRM_TEST_UNSET_SECRET` is not set"), "{err}");
        let typo = format!("{MINIMAL}stores:\n  s3://cfg-bucket: {{aws_endpont: x}}\n");
        let err = PipelineConfig::from_yaml(&typo, Path::new("p.yaml"), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown store option `aws_endpont`"), "{err}");
    }

    #[test]
    fn minimal_config_loads_with_defaults() {
        let cfg =
            PipelineConfig::from_yaml(MINIMAL, Path::new("p.yaml"), &Overrides::default()).unwrap();
        assert_eq!(cfg.resolve(&cfg.scratch).unwrap(), "/w/_scratch");
        assert!(cfg.sources["orders"].required);
        assert_eq!(cfg.period.grain, Grain::Month);
    }

    #[test]
    fn memory_limits_are_sizes_and_a_bad_one_names_the_key() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size(" 2 GiB"), Ok(2 << 30));
        assert_eq!(parse_size("100MB"), Ok(100_000_000));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["", "lots", "12XB", "0", "-1MiB", "MiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        let text = format!("{MINIMAL}engine: {{memory_limit: 512 megs}}\n");
        let err = PipelineConfig::from_yaml(&text, Path::new("p.yaml"), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("engine.memory_limit"), "{err}");
        assert!(err.contains("`512 megs` is not a size"), "{err}");
    }

    #[test]
    fn overrides_replace_variables() {
        let mut o = Overrides::default();
        o.vars.insert("raw".into(), "s3://bucket/raw".into());
        let cfg = PipelineConfig::from_yaml(MINIMAL, Path::new("p.yaml"), &o).unwrap();
        assert_eq!(
            cfg.resolve(&cfg.sources["orders"].location).unwrap(),
            "s3://bucket/raw/orders/"
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let bad = "vars: {raw: /r, warehouse: /w}\nsources:\n  orders:\n    location: x\n    formatt: csv\noutputs: {}\n";
        let err =
            PipelineConfig::from_yaml(bad, Path::new("p.yaml"), &Overrides::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("p.yaml:5"), "{msg}");
        assert!(msg.contains("formatt"), "{msg}");
        assert!(msg.contains("sources.orders"), "{msg}");
    }

    #[test]
    fn unknown_variables_and_sources_are_named() {
        let bad = "sources:\n  orders: {location: '${nope}/o'}\noutputs: {}\n";
        let err =
            PipelineConfig::from_yaml(bad, Path::new("p.yaml"), &Overrides::default()).unwrap_err();
        assert!(
            err.to_string().contains("unknown variable `${nope}`"),
            "{err}"
        );
        let bad = "vars: {warehouse: /w}\nsources:\n  orders: {location: /o}\n  ordres: {location: /o}\noutputs: {}\n";
        let err =
            PipelineConfig::from_yaml(bad, Path::new("p.yaml"), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("sources.ordres"), "{err}");
    }

    #[test]
    fn substitute_handles_escapes_and_env() {
        assert_eq!(substitute("a$$b", |_| Ok(String::new())).unwrap(), "a$b");
        assert_eq!(
            substitute("${x}/y", |n| Ok(n.to_uppercase())).unwrap(),
            "X/y"
        );
        assert!(substitute("${x", |_| Ok(String::new())).is_err());
    }
}
