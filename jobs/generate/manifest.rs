//! What a generation wrote: the files with their row counts, the summary line, the ground-truth
//! parameters and the manifest `_generator.json` (with its reader).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::NaiveDate;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use super::{DirtCounts, GenerateError, GenerativeParams, OutputFormat, sink_path};

/// One file written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenFile {
    /// Path relative to the prefix, `/`-separated.
    pub path: String,
    /// The extract (or `_ground_truth` / `_generator`).
    pub extract: String,
    /// Data rows (header not counted; 0 for JSON files).
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GenerateSummary {
    /// Rows written per extract (all eight extracts).
    pub rows: BTreeMap<String, u64>,
    /// Planted dirt and expected clean counts, as in `_ground_truth/dirt.json`.
    pub dirt: BTreeMap<String, BTreeMap<String, u64>>,
    /// Every file written, extracts first (by extract and part), then the ground truth and the
    /// manifest.
    pub files: Vec<WrittenFile>,
    /// Total bytes written.
    pub bytes_written: u64,
}

/// `_ground_truth/params.json`: the run's seed and window and every generative parameter
/// (flattened beside them), so `bg_nbd.r` is at `["bg_nbd"]["r"]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruthParams {
    /// Time unit of the process parameters: always "week".
    pub time_unit: String,
    /// The seed.
    pub seed: u64,
    /// First day of the history.
    pub start: NaiveDate,
    /// Last day of the history (inclusive).
    pub end: NaiveDate,
    /// The generative parameters.
    #[serde(flatten)]
    pub params: GenerativeParams,
}

/// The manifest `<prefix>/_generator.json`: what was generated and every extract file with its
/// row count. The pipeline may read it; it holds no ground truth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratorManifest {
    /// Always "crm-pipeline generate".
    pub generator: String,
    /// [`GENERATOR_VERSION`] of the generator that wrote the files.
    pub generator_version: String,
    /// The seed.
    pub seed: u64,
    /// Number of customers (distinct customer ids).
    pub customers: u64,
    /// First day of the history.
    pub start: NaiveDate,
    /// Last day of the history (inclusive).
    pub end: NaiveDate,
    /// File format of the extracts.
    pub format: OutputFormat,
    /// Customers per part file.
    pub chunk_size: usize,
    /// Time unit of the generative parameters ("week").
    pub time_unit: String,
    /// How timestamps are written.
    pub timestamps: String,
    /// Folder of the ground truth, relative to the prefix.
    pub ground_truth: String,
    /// Rows per extract.
    pub rows: BTreeMap<String, u64>,
    /// Every extract file, by extract then part.
    pub files: Vec<WrittenFile>,
}

/// Reads `<prefix>/_generator.json`; `None` when there is none (nothing generated there yet).
pub async fn read_manifest(
    store: Arc<dyn ObjectStore>,
    prefix: &Path,
) -> Result<Option<GeneratorManifest>, GenerateError> {
    let path = sink_path(prefix, MANIFEST);
    let store_err = |source| GenerateError::Store {
        path: path.to_string(),
        source,
    };
    let bytes = match store.get(&path).await {
        Ok(r) => r.bytes().await.map_err(store_err)?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(store_err(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| GenerateError::Json {
            what: MANIFEST,
            source,
        })
}

/// Name of the manifest under the prefix.
pub const MANIFEST: &str = "_generator.json";

impl fmt::Display for GenerateSummary {
    /// One line: rows per extract, files and bytes, planted dirt.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let customers = self
            .dirt
            .get("customers")
            .and_then(|c| c.get("valid"))
            .copied();
        write!(f, "generated {} customers:", customers.unwrap_or(0))?;
        for (i, (extract, rows)) in self.rows.iter().enumerate() {
            write!(f, "{} {extract} {rows}", if i == 0 { "" } else { "," })?;
        }
        let planted: u64 = self
            .dirt
            .values()
            .flat_map(|keys| keys.iter())
            .filter(|(k, _)| DirtCounts::is_dirt_key(k))
            .map(|(_, v)| v)
            .sum();
        write!(
            f,
            " rows; {} files, {} bytes; {planted} dirty rows or cells planted",
            self.files.len(),
            self.bytes_written
        )
    }
}
