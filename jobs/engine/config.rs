//! The engine's block of pipeline.yaml, and the engine settings resolved from it once.

use std::path::PathBuf;

use serde::Deserialize;

use super::Engine;

/// Query-engine settings (`engine:` in pipeline.yaml).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Where the SQL stages run: `local` (default), `ballista` (a cluster at `scheduler`) or
    /// `ballista-standalone` (an in-process cluster). `--engine` overrides it.
    pub kind: super::EngineKind,
    /// The Ballista scheduler, `df://host:port` (or `standalone`). `--scheduler` overrides it.
    pub scheduler: Option<String>,
    /// Target partitions (parallelism) for the local engine; 0 = number of cores.
    pub target_partitions: usize,
    /// Batch size for the engine.
    pub batch_size: usize,
    /// Memory the query engine may use (e.g. `512MiB`, `2GiB`, or bytes); sorts, aggregations
    /// and other spilling operators write to `spill_dir` beyond it. Unset: no limit.
    pub memory_limit: Option<String>,
    /// Local folder for the engine's spill files (`${var}`s allowed). Unset: the OS temp dir.
    pub spill_dir: Option<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            kind: Default::default(),
            scheduler: None,
            target_partitions: 0,
            batch_size: 8192,
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

/// The engine's settings resolved for a run: the engine (local or a Ballista cluster), the
/// memory limit in bytes, the spill folder, the business time zone the sessions use.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Where the SQL stages run.
    pub engine: Engine,
    /// Query parallelism (0: one per core).
    pub target_partitions: usize,
    /// Rows per batch.
    pub batch_size: usize,
    /// The engine's memory cap in bytes (None: no cap).
    pub memory_limit: Option<usize>,
    /// The cap as written, for messages.
    pub memory_limit_text: Option<String>,
    /// The local folder for spill files (None: the OS temp dir).
    pub spill_dir: Option<PathBuf>,
    /// The business time zone (IANA name).
    pub time_zone: String,
}

impl EngineSettings {
    /// Resolves the block: `resolve` substitutes `${var}`s in the spill folder. Errors name the
    /// key and what is wrong.
    pub fn resolve(
        cfg: &EngineConfig,
        time_zone: &str,
        resolve: impl Fn(&str) -> std::result::Result<String, String>,
    ) -> std::result::Result<Self, (String, String)> {
        let engine = Engine::resolve(cfg.kind, cfg.scheduler.as_deref())
            .map_err(|m| ("engine".to_string(), m))?;
        let memory_limit = cfg
            .memory_limit_bytes()
            .map_err(|m| ("engine.memory_limit".to_string(), m))?;
        let spill_dir = cfg
            .spill_dir
            .as_deref()
            .map(|d| resolve(d).map(PathBuf::from))
            .transpose()
            .map_err(|m| ("engine.spill_dir".to_string(), m))?;
        Ok(Self {
            engine,
            target_partitions: cfg.target_partitions,
            batch_size: cfg.batch_size,
            memory_limit,
            memory_limit_text: cfg.memory_limit.clone(),
            spill_dir,
            time_zone: time_zone.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limits_are_sizes() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size(" 2 GiB"), Ok(2 << 30));
        assert_eq!(parse_size("100MB"), Ok(100_000_000));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["", "lots", "12XB", "0", "-1MiB", "MiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
