//! The job: `pipeline.yaml` parsed into its spec ([`spec::JobSpec`]), then resolved once, with
//! the command line's overrides, into ready values ([`Job`]): every location a [`Location`] with
//! its store, the engine and its memory limit in bytes, the business time zone, each output's
//! Arrow schema, the store options as a value. Nothing downstream re-resolves a location,
//! re-parses a setting or reads a global; errors name the definition's file and key.

pub mod spec;
pub mod vars;

use std::collections::BTreeMap;
use std::path::Path;

use crate::engine::{EngineKind, EngineSettings};
use crate::error::{Error, Result};
use crate::extract::source::Source;
use crate::layout::Layout;
use crate::publish::output::Output;
use crate::storage::{Location, StoreOptions};

pub use spec::JobSpec;
pub use vars::Vars;

/// What the command line (or a calling program) changes in a job definition.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--var name=value` pairs, `--raw` and `--warehouse` included.
    pub vars: BTreeMap<String, String>,
    /// `--engine`.
    pub engine: Option<EngineKind>,
    /// `--scheduler` (implies the ballista engine when `--engine` is not given).
    pub scheduler: Option<String>,
    /// Store options given in code, per bucket (they join those of `stores:`).
    pub stores: StoreOptions,
    /// `--table-format`: every output's format, in place of `table_format` and the outputs' own.
    pub table_format: Option<crate::publish::TableFormat>,
}

/// A job definition resolved for a run.
#[derive(Debug, Clone)]
pub struct Job {
    /// The definition as written (model settings, checks, gate, outputs' declarations).
    pub spec: JobSpec,
    /// Where everything lives in the warehouse and the scratch space.
    pub layout: Layout,
    /// Every configured source, resolved, in name order.
    pub sources: Vec<Source>,
    /// The engine's settings.
    pub engine: EngineSettings,
    /// The business time zone.
    pub time_zone: chrono_tz::Tz,
    /// Every output, resolved, in name order.
    pub outputs: Vec<Output>,
    /// The object-store options of every bucket the job names.
    pub stores: StoreOptions,
    /// The variables, after overrides.
    pub vars: Vars,
}

impl Job {
    /// Reads, parses and resolves a job definition.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Self> {
        let spec = JobSpec::load(path, &overrides.vars)?;
        Self::resolve(spec, overrides)
    }

    /// Resolves a parsed definition (its `vars` already hold the command line's).
    pub fn resolve(mut spec: JobSpec, overrides: &Overrides) -> Result<Self> {
        spec.vars
            .extend(overrides.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(kind) = overrides.engine {
            spec.engine.kind = kind;
        }
        if let Some(s) = &overrides.scheduler {
            if overrides.engine.is_none() {
                spec.engine.kind = EngineKind::Ballista;
            }
            spec.engine.scheduler = Some(s.clone());
        }
        if let Some(f) = overrides.table_format {
            spec.table_format = f;
            for o in spec.outputs.values_mut() {
                o.format = None;
            }
        }
        let vars = Vars::new(&spec.vars, &BTreeMap::new());
        let mut stores = overrides.stores.clone();
        register_stores(&spec, &vars, &mut stores)?;
        let location = |key: &str, text: &str| -> Result<(String, Location)> {
            let resolved = vars.resolve(text).map_err(|m| spec.err(key, m))?;
            if crate::redact::has_url_credentials(&resolved) {
                return Err(spec.err(
                    key,
                    "the URL holds credentials (`user:secret@`); remove them and give them through the environment or `stores:` with ${env:VAR} references",
                ));
            }
            let loc = Location::parse_with(&resolved, &stores).map_err(|e| spec.err(key, e))?;
            Ok((resolved, loc))
        };
        let mut sources = Vec::new();
        for (name, config) in &spec.sources {
            let key = format!("sources.{name}.location");
            let (url, _) = location(&key, &config.location)?;
            // a glob's folder is the location; the pattern is matched when listing
            let last = url.rsplit('/').next().unwrap_or("");
            let folder = if last.contains('*') || last.contains('?') {
                &url[..url.len() - last.len()]
            } else {
                url.as_str()
            };
            let loc = Location::parse_with(folder, &stores).map_err(|e| spec.err(&key, e))?;
            sources.push(Source {
                name: name.clone(),
                config: config.clone(),
                schema: crate::contract::source_schema(name)
                    .ok_or_else(|| spec.err(&format!("sources.{name}"), "unknown extract"))?,
                location: loc,
                url,
            });
        }
        let (_, warehouse) = location("warehouse", &spec.warehouse)?;
        let (_, scratch) = location("scratch", &spec.scratch)?;
        let time_zone: chrono_tz::Tz = spec.time_zone.parse().map_err(|_| {
            spec.err(
                "time_zone",
                format!(
                    "unknown time zone `{}`; use an IANA name such as UTC or Europe/Berlin",
                    spec.time_zone
                ),
            )
        })?;
        let engine = EngineSettings::resolve(&spec.engine, &spec.time_zone, |t| vars.resolve(t))
            .map_err(|(k, m)| spec.err(&k, m))?;
        let mut outputs = Vec::new();
        for (name, config) in &spec.outputs {
            let mut columns = config
                .column_types(name)
                .map_err(|(k, m)| spec.err(&k, m))?;
            // the user-defined schemes' columns join the segments table they are computed into
            if config.from == "customer_segments" {
                for s in &spec.models.custom_schemes {
                    let (previous, since) = crate::models::segments::history_columns(&s.name);
                    for c in [s.label_column(), previous, since] {
                        if !columns.iter().any(|(n, _)| *n == c) {
                            columns.push((c, crate::publish::ColumnType::String));
                        }
                    }
                }
            }
            outputs.push(Output {
                name: name.clone(),
                config: config.clone(),
                schema: crate::publish::contract_schema(&columns),
                columns,
                format: config.format.unwrap_or(spec.table_format),
            });
        }
        Ok(Self {
            layout: Layout::new(warehouse, scratch),
            spec,
            sources,
            engine,
            time_zone,
            outputs,
            stores,
            vars,
        })
    }

    /// The definition's file, for messages and records.
    pub fn file(&self) -> String {
        self.spec.file.display().to_string()
    }

    /// A configuration error at `key` of the definition.
    pub fn err(&self, key: &str, message: impl std::fmt::Display) -> Error {
        self.spec.err(key, message)
    }

    /// A model's configuration error with this job's file named (other errors unchanged).
    pub fn name_file(&self, e: Error) -> Error {
        match e {
            Error::ModelConfig { key, message } => self.err(&key, message),
            e => e,
        }
    }

    /// An output by name.
    pub fn output(&self, name: &str) -> Option<&Output> {
        self.outputs.iter().find(|o| o.name == name)
    }

    /// The enabled outputs, in name order.
    pub fn enabled_outputs(&self) -> impl Iterator<Item = &Output> {
        self.outputs.iter().filter(|o| o.config.enabled)
    }

    /// A source by name.
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// Where the SQL stages come from: `stages.dir` (relative to the definition's file), or
    /// the binary's own SQL for the built-in definition.
    pub fn sql(&self) -> crate::stages::SqlSource {
        if crate::builtin::is_built_in(&self.spec.file) && self.spec.stages.dir == "sql" {
            return crate::stages::SqlSource::BuiltIn;
        }
        let base = self.spec.file.parent().unwrap_or_else(|| Path::new("."));
        crate::stages::SqlSource::Dir(base.join(&self.spec.stages.dir))
    }

    /// Whether this is the definition compiled into the binary.
    pub fn is_built_in(&self) -> bool {
        crate::builtin::is_built_in(&self.spec.file)
    }

    /// Parses a location the job did not declare (e.g. one from the command line) with the
    /// job's store options.
    pub fn location(&self, url: &str) -> Result<Location> {
        Location::parse_with(url, &self.stores)
    }

    /// A stable hash of the effective definition (file text and variables), for run records.
    pub fn hash(&self, text: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(text.as_bytes());
        for (k, v) in self.vars.iter() {
            h.update(k.as_bytes());
            h.update(b"=");
            h.update(v.as_bytes());
            h.update(b"\n");
        }
        let digest = h.finalize();
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// Resolves `stores:` into `stores`. Only options that cannot carry a secret (region, endpoint,
/// flags; [`crate::storage::is_clear_text_option`]) may be written in the file; every other one
/// must be a `${env:VAR}` reference as its whole value, and its resolved value is redacted
/// wherever it would appear. A clear-text URL option (an endpoint, a proxy) may not hold
/// `user:password@`.
fn register_stores(spec: &JobSpec, vars: &Vars, stores: &mut StoreOptions) -> Result<()> {
    for (root, options) in &spec.stores {
        let mut pairs = Vec::new();
        for (k, v) in options {
            let key = format!("stores.{root}.{k}");
            let v = v.trim();
            let clear_text = crate::storage::is_clear_text_option(root, k)
                .map_err(|e| spec.err(&format!("stores.{root}"), e))?;
            let env_ref = v.starts_with("${env:")
                && v.ends_with('}')
                && v.matches("${").count() == 1
                && v.matches('}').count() == 1;
            if !clear_text && !env_ref {
                return Err(spec.err(
                    &key,
                    "this option can carry a secret, so it must not be written in the file: make the whole value a `${env:VAR}` reference",
                ));
            }
            let resolved = vars.resolve(v).map_err(|m| spec.err(&key, m))?;
            if clear_text && crate::redact::has_url_credentials(&resolved) {
                return Err(spec.err(
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
        stores
            .set(root, &pairs)
            .map_err(|e| spec.err(&format!("stores.{root}"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "vars: {raw: /r, warehouse: /w}\nsources:\n  orders: {location: '${raw}/orders/'}\noutputs: {}\n";

    fn job(text: &str) -> Result<Job> {
        let spec = JobSpec::from_yaml(text, Path::new("p.yaml"), &BTreeMap::new())?;
        Job::resolve(spec, &Overrides::default())
    }

    #[test]
    fn store_options_resolve_env_and_refuse_clear_text_secrets() {
        let clear = format!(
            "{MINIMAL}stores:\n  s3://cfg-bucket: {{aws_endpoint: 'http://127.0.0.1:1', aws_secret_access_key: hunter2}}\n"
        );
        let err = job(&clear).unwrap_err().to_string();
        assert!(
            err.contains("stores.s3://cfg-bucket.aws_secret_access_key"),
            "{err}"
        );
        assert!(err.contains("${env:VAR}"), "{err}");
        let unset = format!(
            "{MINIMAL}stores:\n  s3://cfg-bucket: {{aws_secret_access_key: '${{env:CRM_TEST_UNSET_SECRET}}'}}\n"
        );
        let err = job(&unset).unwrap_err().to_string();
        assert!(err.contains("CRM_TEST_UNSET_SECRET` is not set"), "{err}");
        let typo = format!("{MINIMAL}stores:\n  s3://cfg-bucket: {{aws_endpont: x}}\n");
        let err = job(&typo).unwrap_err().to_string();
        assert!(err.contains("unknown store option `aws_endpont`"), "{err}");
    }

    #[test]
    fn minimal_config_loads_with_defaults() {
        let job = job(MINIMAL).unwrap();
        assert_eq!(job.layout.scratch_root().url(), "file:///w/_scratch/");
        assert!(job.source("orders").unwrap().config.required);
        assert_eq!(job.spec.period.grain, crate::period::Grain::Month);
        assert_eq!(job.engine.batch_size, 8192);
    }

    #[test]
    fn memory_limits_are_sizes_and_a_bad_one_names_the_key() {
        let text = format!("{MINIMAL}engine: {{memory_limit: 512 megs}}\n");
        let err = job(&text).unwrap_err().to_string();
        assert!(err.contains("engine.memory_limit"), "{err}");
        assert!(err.contains("`512 megs` is not a size"), "{err}");
        let text = format!("{MINIMAL}engine: {{memory_limit: 512MiB}}\n");
        assert_eq!(job(&text).unwrap().engine.memory_limit, Some(512 << 20));
    }

    #[test]
    fn overrides_replace_variables() {
        let mut o = Overrides::default();
        o.vars.insert("raw".into(), "s3://bucket/raw".into());
        let spec = JobSpec::from_yaml(MINIMAL, Path::new("p.yaml"), &BTreeMap::new()).unwrap();
        let job = Job::resolve(spec, &o).unwrap();
        assert_eq!(job.source("orders").unwrap().url, "s3://bucket/raw/orders/");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let bad = "vars: {raw: /r, warehouse: /w}\nsources:\n  orders:\n    location: x\n    formatt: csv\noutputs: {}\n";
        let msg = job(bad).unwrap_err().to_string();
        assert!(msg.contains("p.yaml:5"), "{msg}");
        assert!(msg.contains("formatt"), "{msg}");
        assert!(msg.contains("sources.orders"), "{msg}");
    }

    #[test]
    fn unknown_variables_and_sources_are_named() {
        let bad = "sources:\n  orders: {location: '${nope}/o'}\noutputs: {}\n";
        let err = job(bad).unwrap_err();
        assert!(
            err.to_string().contains("unknown variable `${nope}`"),
            "{err}"
        );
        let bad = "vars: {warehouse: /w}\nsources:\n  orders: {location: /o}\n  ordres: {location: /o}\noutputs: {}\n";
        let err = job(bad).unwrap_err();
        assert!(err.to_string().contains("sources.ordres"), "{err}");
    }

    #[test]
    fn a_url_with_credentials_is_refused_without_showing_them() {
        let text = "vars: {warehouse: /w}\nsources:\n  orders: {location: 's3://AKIA:s3cr3t@bucket/o/'}\noutputs: {}\n";
        let err = job(text).unwrap_err().to_string();
        assert!(err.contains("holds credentials"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
    }
}
