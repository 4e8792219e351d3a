//! Step 1: read and validate the raw extracts.
//!
//! Each source (a file, a folder or a glob on any object store) is read file by file, its
//! columns are mapped to the canonical names of [`contract`], and every row is landed as text
//! together with the file it came from and its line number, so the SQL stages can type and clean
//! it and every rejection can point at the original row. On the local engine the landed rows stay
//! in memory ([`Landing::Memory`]): the staging stages scan them several times, and a Parquet
//! round trip would encode them once and decode them at every scan. Ballista's executors cannot
//! read the driver's memory, so there they are written as run-scoped Parquet under
//! `<scratch>/landing/<source>/` ([`Landing::Parquet`]). Rows that cannot even be split into
//! fields (wrong field count, invalid UTF-8, broken JSON) are quarantined here with a reason; a
//! file that cannot be read at all (missing, empty, truncated, missing a required column) is an
//! error naming the file and what to do.

mod parse;
pub mod source;
pub mod timestamps;

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, DictionaryArray, Int32Array, Int64Builder, RecordBatch, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStoreExt};
use serde::Serialize;

use crate::contract::{self, SourceSchema};
use crate::error::{Error, Result, StoreContext};
use crate::publish::write_parquet;
use crate::storage::Location;
use source::{Source, SourceConfig};

/// Rows per landed Parquet file written from one input file.
const LANDING_CHUNK_ROWS: usize = 500_000;

/// Where landed rows are kept for the staging stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landing {
    /// In the driver's memory (the local engine).
    Memory,
    /// As Parquet in the run's scratch space (Ballista: the executors read it).
    Parquet,
}

/// The type of `_source_file`: every row of a landed batch comes from one file, so the name is
/// stored once per batch (a dictionary of one value), not once per row (at 14 M rows, 1 GB of
/// repeated file names in memory).
pub fn source_file_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The landed schema of a source: file, line number, the normalisations made at extraction
/// (comma-separated, e.g. `ts_offset_converted`; the staging SQL adds them to `_notes`), then
/// every canonical column as text.
pub fn landing_schema(schema: &SourceSchema) -> SchemaRef {
    let mut fields = vec![
        Field::new("_source_file", source_file_type(), false),
        Field::new("_row_number", DataType::Int64, false),
        Field::new("_landing_notes", DataType::Utf8, true),
    ];
    fields.extend(
        schema
            .columns
            .iter()
            .map(|c| Field::new(c.name, DataType::Utf8, true)),
    );
    Arc::new(Schema::new(fields))
}

/// The schema of quarantined rows (the `quarantine` table before `run_id` is added).
pub fn quarantine_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("file", DataType::Utf8, true),
        Field::new("row_number", DataType::Int64, true),
        Field::new("raw", DataType::Utf8, true),
    ]))
}

/// What was landed for one source.
#[derive(Debug, Clone, Serialize)]
pub struct LandedSource {
    /// Source name.
    pub name: String,
    /// The resolved location.
    pub location: String,
    /// Whether the extract was found.
    pub present: bool,
    /// Files read, in order.
    pub files: Vec<String>,
    /// Data rows read (header excluded), malformed ones included.
    pub rows_read: u64,
    /// Rows quarantined at extraction (they could not be split into fields), by reason code.
    pub rejected: std::collections::BTreeMap<String, u64>,
    /// Landed Parquet files (scratch URLs), with [`Landing::Parquet`].
    #[serde(skip)]
    pub landed: Vec<String>,
    /// Landed batches, in file order, with [`Landing::Memory`].
    #[serde(skip)]
    pub batches: Vec<RecordBatch>,
    /// Non-fatal observations (ignored columns, skipped files).
    pub warnings: Vec<String>,
}

impl LandedSource {
    /// Rows quarantined while splitting files.
    pub fn malformed(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// Quarantined rows found while splitting files.
#[derive(Debug, Default)]
pub struct Rejects {
    pub(crate) reason: Vec<String>,
    pub(crate) file: Vec<String>,
    pub(crate) row: Vec<i64>,
    pub(crate) raw: Vec<String>,
}

impl Rejects {
    pub(crate) fn push(&mut self, reason: String, file: &str, row: i64, raw: String) {
        self.reason.push(reason);
        self.file.push(file.to_string());
        self.row.push(row);
        self.raw.push(raw);
    }

    fn len(&self) -> usize {
        self.reason.len()
    }

    fn into_batch(self, source: &str) -> Result<RecordBatch> {
        let n = self.len();
        let mut src = StringBuilder::new();
        for _ in 0..n {
            src.append_value(source);
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(src.finish()),
            Arc::new(datafusion::arrow::array::StringArray::from(self.reason)),
            Arc::new(datafusion::arrow::array::StringArray::from(self.file)),
            Arc::new(datafusion::arrow::array::Int64Array::from(self.row)),
            Arc::new(datafusion::arrow::array::StringArray::from(self.raw)),
        ];
        RecordBatch::try_new(quarantine_schema(), cols)
            .map_err(|e| Error::Internal(format!("building quarantine batch: {e}")))
    }
}

/// Builds landed batches column by column; timestamp columns are brought into the business
/// time zone on the way ([`timestamps`]).
pub(crate) struct LandingBuilder {
    schema: SchemaRef,
    file: String,
    row_col: Int64Builder,
    notes_col: StringBuilder,
    cols: Vec<StringBuilder>,
    timestamp: Vec<bool>,
    tz: chrono_tz::Tz,
    rows: usize,
}

impl LandingBuilder {
    pub(crate) fn new(
        schema: SchemaRef,
        source: &SourceSchema,
        tz: chrono_tz::Tz,
        file: &str,
    ) -> Self {
        let ncols = schema.fields().len() - 3;
        Self {
            schema,
            file: file.to_string(),
            row_col: Int64Builder::new(),
            notes_col: StringBuilder::new(),
            cols: (0..ncols).map(|_| StringBuilder::new()).collect(),
            timestamp: source.columns.iter().map(|c| c.timestamp).collect(),
            tz,
            rows: 0,
        }
    }

    /// Appends one row; `value(i)` gives canonical column `i` (None = absent / null).
    pub(crate) fn append<'a>(&mut self, row: i64, mut value: impl FnMut(usize) -> Option<&'a str>) {
        self.row_col.append_value(row);
        let mut notes: Vec<&'static str> = Vec::new();
        for (i, c) in self.cols.iter_mut().enumerate() {
            match value(i) {
                Some(text) if self.timestamp.get(i).copied().unwrap_or(false) => {
                    let (t, note) = timestamps::normalise(text, self.tz);
                    if let Some(n) = note {
                        notes.push(n);
                    }
                    c.append_value(t.as_ref());
                }
                v => c.append_option(v),
            }
        }
        if notes.is_empty() {
            self.notes_col.append_null();
        } else {
            self.notes_col.append_value(notes.join(","));
        }
        self.rows += 1;
    }

    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    pub(crate) fn finish(&mut self) -> Result<RecordBatch> {
        let file = DictionaryArray::new(
            Int32Array::from(vec![0; self.rows]),
            Arc::new(StringArray::from(vec![self.file.as_str()])),
        );
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(file),
            Arc::new(self.row_col.finish()),
            Arc::new(self.notes_col.finish()),
        ];
        arrays.extend(
            self.cols
                .iter_mut()
                .map(|c| Arc::new(c.finish()) as ArrayRef),
        );
        self.rows = 0;
        RecordBatch::try_new(Arc::clone(&self.schema), arrays)
            .map_err(|e| Error::Internal(format!("building landed batch: {e}")))
    }
}

/// The result of splitting one file.
pub(crate) struct ParsedFile {
    pub(crate) batches: Vec<RecordBatch>,
    pub(crate) rejects: Rejects,
    pub(crate) rows_read: u64,
    pub(crate) warnings: Vec<String>,
}

/// Lands every source (in memory, or under `<scratch>/landing/`), timestamps in the business
/// zone `tz`; returns what was read. Rejected rows always go to `<scratch>/landing/_quarantine/`.
pub async fn land_sources(
    sources: &[Source],
    tz: chrono_tz::Tz,
    scratch: &Location,
    landing: Landing,
) -> Result<Vec<LandedSource>> {
    let mut out = Vec::new();
    for s in sources {
        out.push(land_source(s, scratch, tz, landing).await?);
    }
    Ok(out)
}

async fn land_source(
    source: &Source,
    scratch: &Location,
    tz: chrono_tz::Tz,
    mode: Landing,
) -> Result<LandedSource> {
    let (name, src, schema, location) = (
        source.name.as_str(),
        &source.config,
        source.schema,
        source.url.as_str(),
    );
    let loc = &source.location;
    let mut skipped = Vec::new();
    let files = list_files(loc, location, &mut skipped)
        .await
        .map_err(|e| match e {
            Error::Storage {
                message,
                cause: Some(cause),
                ..
            } => Error::Source {
                source_name: name.to_string(),
                location: location.to_string(),
                message,
                cause: Some(cause),
            },
            other => other,
        })?;
    let mut landed = LandedSource {
        name: name.to_string(),
        location: location.to_string(),
        present: !files.is_empty(),
        files: files.iter().map(|f| loc.url_of(&f.location)).collect(),
        rows_read: 0,
        rejected: Default::default(),
        landed: Vec::new(),
        batches: Vec::new(),
        warnings: skipped,
    };
    for w in &landed.warnings {
        tracing::warn!(source = name, "{w}");
    }
    if files.is_empty() {
        if src.required {
            return Err(Error::source(
                name,
                location,
                format!(
                    "no such file or folder (or it holds no files); check `sources.{name}.location` in the job definition or the --raw location"
                ),
            ));
        }
        landed.warnings.push(format!(
            "optional extract `{name}` not found at {location}; metrics that need it will be null"
        ));
        tracing::warn!(source = name, %location, "optional extract not found");
        return Ok(landed);
    }
    let landing = scratch.join(&format!("landing/{name}"));
    let quarantine = scratch.join("landing/_quarantine");
    let lschema = landing_schema(schema);
    let parallel = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    // each file is fetched, parsed (and, landing to Parquet, written) in a task of its own (at
    // most one per core at a time), so the parsing and the Parquet encoding use every core; with
    // Parquet, no more than `parallel` files' rows are in memory at once; outcomes are gathered
    // in file order
    let results: Vec<FileOutcome> = futures::stream::iter(files.iter().enumerate())
        .map(|(i, meta)| {
            let store = Arc::clone(loc.store());
            let url = loc.url_of(&meta.location);
            let path = meta.location.clone();
            let lschema = Arc::clone(&lschema);
            let src = src.clone();
            let name = name.to_string();
            let (landing, quarantine) = (landing.clone(), quarantine.clone());
            AbortOnDrop(tokio::spawn(async move {
                let bytes = store
                    .get(&path)
                    .await
                    .map_err(|e| Error::source_store(&name, &url, e))?
                    .bytes()
                    .await
                    .map_err(|e| Error::source_store(&name, &url, e))?;
                let parse_schema = Arc::clone(&lschema);
                let parse_name = name.clone();
                let parsed = tokio::task::spawn_blocking(move || {
                    parse::parse_file(&bytes, &url, &parse_name, &src, schema, parse_schema, tz)
                })
                .await
                .map_err(|e| Error::Internal(format!("parser task failed: {e}")))??;
                land_file(i, parsed, &name, (&landing, mode), &quarantine, lschema).await
            }))
        })
        .buffered(parallel)
        .map(|joined| joined.map_err(|e| Error::Internal(format!("landing task failed: {e}")))?)
        .try_collect()
        .await?;

    for file in results {
        landed.rows_read += file.rows_read;
        for code in file.reject_codes {
            *landed.rejected.entry(code).or_default() += 1;
        }
        for w in file.warnings {
            if !landed.warnings.contains(&w) {
                tracing::warn!(source = name, "{w}");
                landed.warnings.push(w);
            }
        }
        landed.landed.extend(file.landed);
        landed.batches.extend(file.batches);
    }
    Ok(landed)
}

/// A spawned task that is cancelled when dropped: when one file fails, the files still being
/// landed stop instead of writing into a scratch space the failed run is cleaning up.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = std::result::Result<T, tokio::task::JoinError>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

/// What landing one file gave: its counts and warnings and the Parquet files written (or, in
/// memory, its batches).
struct FileOutcome {
    rows_read: u64,
    reject_codes: Vec<String>,
    warnings: Vec<String>,
    landed: Vec<String>,
    batches: Vec<RecordBatch>,
}

/// Keeps file `i`'s landed batches or writes them (`part-<i>-<j>.parquet`), and writes its
/// rejected rows (`_quarantine/<source>-<i>.parquet`).
async fn land_file(
    i: usize,
    mut parsed: ParsedFile,
    name: &str,
    (landing, mode): (&Location, Landing),
    quarantine: &Location,
    lschema: SchemaRef,
) -> Result<FileOutcome> {
    let mut landed = Vec::with_capacity(parsed.batches.len());
    let batches = match mode {
        Landing::Memory => std::mem::take(&mut parsed.batches),
        Landing::Parquet => Vec::new(),
    };
    for (j, batch) in parsed.batches.iter().enumerate() {
        let path = landing.path_of(&format!("part-{i:05}-{j:03}.parquet"));
        write_parquet(
            landing,
            &path,
            std::slice::from_ref(batch),
            Arc::clone(&lschema),
        )
        .await?;
        landed.push(landing.url_of(&path));
    }
    let reject_codes = parsed
        .rejects
        .reason
        .iter()
        .map(|r| r.split(':').next().unwrap_or(r).to_string())
        .collect();
    if parsed.rejects.len() > 0 {
        let batch = parsed.rejects.into_batch(name)?;
        let path = quarantine.path_of(&format!("{name}-{i:05}.parquet"));
        write_parquet(quarantine, &path, &[batch], quarantine_schema()).await?;
    }
    Ok(FileOutcome {
        rows_read: parsed.rows_read,
        reject_codes,
        warnings: parsed.warnings,
        landed,
        batches,
    })
}

/// Checks that a source exists and that its first file has the required columns, without
/// reading the data. Returns a one-line description.
pub async fn check_source(source: &Source) -> Result<String> {
    let (name, src, schema, location) = (
        source.name.as_str(),
        &source.config,
        source.schema,
        source.url.as_str(),
    );
    let loc = &source.location;
    let files = list_files(loc, location, &mut Vec::new()).await?;
    let Some(first) = files.first() else {
        return if src.required {
            Err(Error::source(
                name,
                location,
                "no such file or folder (or it holds no files)",
            ))
        } else {
            Ok(format!("absent (optional) at {location}"))
        };
    };
    let url = loc.url_of(&first.location);
    let bytes = loc
        .store()
        .get(&first.location)
        .await
        .map_err(|e| Error::source_store(name, &url, e))?
        .bytes()
        .await
        .map_err(|e| Error::source_store(name, &url, e))?;
    let parsed = parse::parse_file(
        &bytes,
        &url,
        name,
        src,
        schema,
        landing_schema(schema),
        chrono_tz::Tz::UTC,
    )?;
    Ok(format!(
        "{} file(s), first has {} rows and every required column",
        files.len(),
        parsed.rows_read
    ))
}

/// Splits the bytes of one CSV file of `source` into landed batches with the default settings
/// (used by the SQL stage tests to load inline data). Returns the batches and the number of rows
/// rejected while splitting.
pub fn land_csv_bytes(
    source: &str,
    label: &str,
    bytes: &[u8],
) -> Result<(Vec<RecordBatch>, usize)> {
    let schema = contract::source_schema(source)
        .ok_or_else(|| Error::Usage(format!("unknown source `{source}`")))?;
    let src = SourceConfig {
        format: source::SourceFormat::Csv,
        location: label.to_string(),
        columns: Default::default(),
        delimiter: ',',
        required: false,
        max_quarantined_share: None,
    };
    let parsed = parse::parse_file(
        bytes,
        label,
        source,
        &src,
        schema,
        landing_schema(schema),
        chrono_tz::Tz::UTC,
    )?;
    Ok((parsed.batches, parsed.rejects.len()))
}

/// Lists the data files of a location: a glob (`loc` is its folder, `original` the text with
/// the pattern), a folder or a single file. Files and folders
/// whose names start with `_` or `.` below the location (markers such as `_SUCCESS`, Spark's
/// `_temporary/`, `.snapshot/`, checksums) are skipped, as Spark and Hive do. On the local
/// filesystem symbolic links are not followed: a file reached through a link is skipped, with a
/// warning in `skipped` naming it (never its content). Sorted by path.
pub async fn list_files(
    loc: &Location,
    original: &str,
    skipped: &mut Vec<String>,
) -> Result<Vec<ObjectMeta>> {
    let store = loc.store();
    let last = original.rsplit('/').next().unwrap_or("");
    // for a glob, `loc` is its folder
    let pattern = (last.contains('*') || last.contains('?')).then(|| last.to_string());
    let prefix = loc.prefix().clone();
    if pattern.is_none() && !original.ends_with('/') {
        match store.head(&prefix).await {
            Ok(meta) => {
                if loc.is_local() && is_linked(&prefix, None) {
                    skipped.push(format!(
                        "skipped {original}: a symbolic link (links are not followed)"
                    ));
                    return Ok(Vec::new());
                }
                return Ok(vec![meta]);
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(Error::store(original, e)),
        }
    }
    let depth = prefix.parts().count();
    let mut files: Vec<ObjectMeta> = store
        .list(Some(&prefix))
        .try_filter(|m| {
            let parts: Vec<String> = m
                .location
                .parts()
                .skip(depth)
                .map(|p| p.as_ref().to_string())
                .collect();
            let hidden = parts
                .iter()
                .any(|p| p.starts_with('_') || p.starts_with('.'));
            let name = m.location.filename().unwrap_or("");
            let keep = !hidden && pattern.as_deref().is_none_or(|p| glob_match(p, name));
            futures::future::ready(keep)
        })
        .try_collect()
        .await
        .at(original)?;
    if loc.is_local() {
        files.retain(|m| {
            let linked = is_linked(&m.location, Some(&prefix));
            if linked {
                let rel: Vec<String> = m
                    .location
                    .parts()
                    .skip(depth)
                    .map(|p| p.as_ref().to_string())
                    .collect();
                skipped.push(format!(
                    "skipped {}: reached through a symbolic link (links are not followed out of or inside a source's location)",
                    rel.join("/")
                ));
            }
            !linked
        });
    }
    files.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(files)
}

/// Whether a local object is a symbolic link or is reached through one below `root`: its real
/// path differs from its path under the real path of `root` (the root itself may be a link).
fn is_linked(path: &object_store::path::Path, root: Option<&object_store::path::Path>) -> bool {
    let fs = |p: &object_store::path::Path| std::path::PathBuf::from(format!("/{}", p.as_ref()));
    let file = fs(path);
    let Ok(real) = std::fs::canonicalize(&file) else {
        return true;
    };
    match root {
        Some(root) => {
            let root = fs(root);
            let (Ok(real_root), Ok(rel)) = (std::fs::canonicalize(&root), file.strip_prefix(&root))
            else {
                return true;
            };
            real != real_root.join(rel)
        }
        None => std::fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_symlink()),
    }
}

/// Matches `*` (any run) and `?` (one character) in a file name.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_file_names() {
        assert!(glob_match("*.csv", "part-0.csv"));
        assert!(glob_match("orders_2024-??.csv.gz", "orders_2024-06.csv.gz"));
        assert!(!glob_match("*.csv", "part-0.csv.gz"));
        assert!(glob_match("*", "x"));
    }
}
