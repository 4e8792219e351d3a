//! The sources of a job: what pipeline.yaml says about each extract ([`SourceConfig`]) and the
//! source as the run reads it, resolved once ([`Source`]).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::contract::SourceSchema;
use crate::storage::Location;

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

/// One raw extract (`sources.<name>` in pipeline.yaml).
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
    /// The CSV field delimiter (one ASCII character; `,` when not given).
    #[serde(default = "comma")]
    pub delimiter: char,
    /// Whether a missing extract is an error. `orders` is always required.
    #[serde(default)]
    pub required: bool,
    /// The share of a required source's rows that may be quarantined before the run is refused
    /// (default: `gate.max_quarantined_share`).
    #[serde(default)]
    pub max_quarantined_share: Option<f64>,
}

fn comma() -> char {
    ','
}

/// A source resolved for the run: its configuration, its contract and its location.
#[derive(Debug, Clone)]
pub struct Source {
    /// The source's name (`orders`, ...).
    pub name: String,
    /// What pipeline.yaml says about it.
    pub config: SourceConfig,
    /// Its canonical shape.
    pub schema: &'static SourceSchema,
    /// Where it is.
    pub location: Location,
    /// The location as written after variable substitution (a glob keeps its pattern).
    pub url: String,
}
