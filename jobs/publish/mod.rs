//! Step 4: publish partitions and run results.
//!
//! Each output table's rows are cast to the contract schema declared in pipeline.yaml, sorted by
//! the table's key (deterministic files), stamped with `run_id`, and written under a run-scoped
//! staging folder `<warehouse>/_staging/<run_id>/<table>/period=<P>/`. Only when every table of
//! the run is staged are the partitions swapped into `<warehouse>/<table>/period=<P>/`; a rerun
//! replaces the partition, never appends. Files are named after the run
//! (`part-<run_id>-00000.parquet`), so no published file is ever overwritten in place.
//!
//! The swap, per store (the guarantee readers get; README "Publishing guarantees"):
//! - local filesystem: one atomic exchange of the two folders on Linux (`renameat2`
//!   `RENAME_EXCHANGE`), else two renames on one filesystem; a reader sees the old files or the new
//!   ones, never a mix.
//! - object stores (S3, GCS, Azure): there is no rename of a prefix. The new run's files are
//!   copied in first, then the previous runs' files are deleted. Every object is written whole
//!   (a put is atomic), a partition is never empty or partly written, and no file a reader has
//!   opened changes; but a reader that lists the partition between the first copy and the last
//!   delete sees both runs' files (duplicate rows, told apart by `run_id`). If the job dies in
//!   that window, the next run of the period removes the older files.
pub mod lock;

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::compute::{
    CastOptions, SortColumn, cast_with_options, concat_batches, lexsort_to_indices,
    take_record_batch,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::util::display::FormatOptions;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde::Serialize;

use crate::config::ColumnType;
use crate::error::{Error, Result};
use crate::storage::Location;

/// Rows per Parquet file of a published partition.
const ROWS_PER_FILE: usize = 2_000_000;
/// Rows per Parquet row group.
const ROW_GROUP_ROWS: usize = 131_072;

/// The Arrow type of a declared column type.
pub fn arrow_type(t: ColumnType) -> DataType {
    match t {
        ColumnType::String => DataType::Utf8,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Int32 => DataType::Int32,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

/// The contract schema of an output, `run_id` included.
pub fn contract_schema(columns: &[(String, ColumnType)]) -> SchemaRef {
    let mut fields: Vec<Field> = columns
        .iter()
        .map(|(n, t)| Field::new(n, arrow_type(*t), true))
        .collect();
    fields.push(Field::new("run_id", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

/// One partition staged by this run.
#[derive(Debug, Clone, Serialize)]
pub struct StagedPartition {
    /// Table name.
    pub table: String,
    /// Partition label (`period=...` value).
    pub period: String,
    /// Rows written.
    pub rows: u64,
    /// File names inside the partition.
    pub files: Vec<String>,
    /// Where the partition is published.
    pub location: String,
    /// Columns produced upstream but not in the contract (dropped).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped_columns: Vec<String>,
}

/// Writes one output table's partition into the run's staging area.
pub struct PartitionWriter<'a> {
    warehouse: &'a Location,
    run_id: &'a str,
    table: &'a str,
    period: &'a str,
    columns: Vec<(String, ColumnType)>,
    key: Vec<String>,
}

impl<'a> PartitionWriter<'a> {
    /// A writer for `table`'s partition `period` in `warehouse`.
    pub fn new(warehouse: &'a Location, run_id: &'a str, table: &'a str, period: &'a str) -> Self {
        Self {
            warehouse,
            run_id,
            table,
            period,
            columns: Vec::new(),
            key: Vec::new(),
        }
    }

    /// Declares the contract schema the rows are cast to.
    pub fn with_columns(mut self, columns: Vec<(String, ColumnType)>) -> Self {
        self.columns = columns;
        self
    }

    /// Declares the key the rows are sorted by.
    pub fn with_key(mut self, key: Vec<String>) -> Self {
        self.key = key;
        self
    }

    fn staging(&self) -> Location {
        self.warehouse.join(&format!(
            "_staging/{}/{}/period={}",
            self.run_id, self.table, self.period
        ))
    }

    /// Casts, sorts and writes `batches`; returns what was staged.
    pub async fn stage(&self, batches: &[RecordBatch]) -> Result<StagedPartition> {
        let schema = contract_schema(&self.columns);
        let (batch, dropped) = self.conform(batches, &schema)?;
        let batch = self.sorted(batch)?;
        let staging = self.staging();
        let mut files = Vec::new();
        let total = batch.num_rows();
        let mut offset = 0;
        loop {
            let len = ROWS_PER_FILE.min(total - offset);
            let name = part_name(self.run_id, files.len());
            write_parquet(
                &staging,
                &staging.path_of(&name),
                &[batch.slice(offset, len)],
                Arc::clone(&schema),
            )
            .await?;
            files.push(name);
            offset += len;
            if offset >= total {
                break;
            }
        }
        Ok(StagedPartition {
            table: self.table.to_string(),
            period: self.period.to_string(),
            rows: total as u64,
            files,
            location: self
                .warehouse
                .join(&format!("{}/period={}", self.table, self.period))
                .to_string(),
            dropped_columns: dropped,
        })
    }

    /// Selects the declared columns in order, cast to their declared types; adds run_id.
    fn conform(
        &self,
        batches: &[RecordBatch],
        schema: &SchemaRef,
    ) -> Result<(RecordBatch, Vec<String>)> {
        let input_schema = batches.first().map(|b| b.schema());
        let input = match &input_schema {
            Some(s) => concat_batches(s, batches)
                .map_err(|e| Error::Internal(format!("{}: {e}", self.table)))?,
            None => RecordBatch::new_empty(Arc::clone(schema)),
        };
        let n = input.num_rows();
        let opts = CastOptions {
            safe: false,
            format_options: FormatOptions::default(),
        };
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        for (name, ty) in &self.columns {
            let Some(col) = input.column_by_name(name) else {
                return Err(Error::config(
                    "pipeline.yaml",
                    format!(
                        "outputs.{}: declared column `{name}` is not produced by its source table; produced: {}",
                        self.table,
                        input
                            .schema()
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            };
            let target = arrow_type(*ty);
            let cast = cast_with_options(col, &target, &opts).map_err(|e| {
                Error::config(
                    "pipeline.yaml",
                    format!("outputs.{}.columns.{name}: the produced values cannot be cast to {target}: {e}", self.table),
                )
            })?;
            cols.push(cast);
        }
        cols.push(Arc::new(StringArray::from_iter_values(
            std::iter::repeat_n(self.run_id, n),
        )));
        let dropped = input
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|f| !self.columns.iter().any(|(c, _)| c == f))
            .collect();
        let batch = RecordBatch::try_new(Arc::clone(schema), cols)
            .map_err(|e| Error::Internal(format!("{}: {e}", self.table)))?;
        Ok((batch, dropped))
    }

    fn sorted(&self, batch: RecordBatch) -> Result<RecordBatch> {
        if self.key.is_empty() || batch.num_rows() < 2 {
            return Ok(batch);
        }
        let sort_cols: Vec<SortColumn> = self
            .key
            .iter()
            .filter_map(|k| {
                batch.column_by_name(k).map(|c| SortColumn {
                    values: Arc::clone(c),
                    options: None,
                })
            })
            .collect();
        let idx = lexsort_to_indices(&sort_cols, None)
            .map_err(|e| Error::Internal(format!("sorting {}: {e}", self.table)))?;
        take_record_batch(&batch, &idx)
            .map_err(|e| Error::Internal(format!("sorting {}: {e}", self.table)))
    }
}

/// The name of a published file: run-scoped, so a rerun never overwrites a file in place.
pub fn part_name(run_id: &str, index: usize) -> String {
    let run: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("part-{run}-{index:05}.parquet")
}

/// Moves every staged partition of a run into place, replacing what was there.
pub async fn publish(warehouse: &Location, run_id: &str, staged: &[StagedPartition]) -> Result<()> {
    for (i, p) in staged.iter().enumerate() {
        fault_point(
            if i == 0 {
                "publish:after_staging"
            } else {
                "publish:mid_swap"
            },
            &p.period,
        );
        let rel = format!("{}/period={}", p.table, p.period);
        let from = warehouse.join(&format!("_staging/{run_id}/{rel}"));
        let to = warehouse.join(&rel);
        if warehouse.is_local() {
            swap_local(
                &from,
                &to,
                &warehouse.join(&format!("_staging/{run_id}/_replaced/{rel}")),
            )?;
        } else {
            replace_objects(&from, &to, &p.files).await?;
        }
    }
    Ok(())
}

/// TEST-ONLY fault injection, for the crash-safety tests (tests/integration/faults.rs): when the
/// environment variable `CRM_PIPELINE_FAULT` names this point (`publish:after_staging`: every
/// partition staged, none swapped; `publish:mid_swap`: the first partition swapped, the others
/// not), optionally restricted to one period with `@<period>` (e.g.
/// `publish:mid_swap@2024-05`), the process aborts on the spot, like a `kill -9`. Never set it
/// in production.
fn fault_point(point: &str, period: &str) {
    let Ok(spec) = std::env::var("CRM_PIPELINE_FAULT") else {
        return;
    };
    let (name, only) = match spec.split_once('@') {
        Some((n, p)) => (n, Some(p)),
        None => (spec.as_str(), None),
    };
    if name == point && only.is_none_or(|p| p == period) {
        eprintln!("CRM_PIPELINE_FAULT={spec}: aborting at {point} (period {period})");
        std::process::abort();
    }
}

fn local_path(loc: &Location) -> Result<std::path::PathBuf> {
    url::Url::parse(&loc.url())
        .ok()
        .and_then(|u| u.to_file_path().ok())
        .ok_or_else(|| Error::Internal(format!("{loc} is not a local path")))
}

/// Swaps the staged partition into place on one filesystem. On Linux, when a partition is
/// already published, one `renameat2(RENAME_EXCHANGE)` exchanges the two folders atomically: a
/// reader sees the old partition or the new one, never a mix and never nothing, and a kill at any
/// instant leaves one of them published. Elsewhere (or on a filesystem without exchange) the old
/// partition is renamed aside first, then the new one into place, with a short window in which the
/// folder is absent. The old partition ends up under `aside` (removed with the run's staging).
fn swap_local(from: &Location, to: &Location, aside: &Location) -> Result<()> {
    let (from, to, aside) = (local_path(from)?, local_path(to)?, local_path(aside)?);
    let io = |what: &str, p: &std::path::Path, e: std::io::Error| {
        Error::storage(
            p.display(),
            format!("{what}: {e}; check free space and write permission on the warehouse"),
        )
    };
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io("creating the table folder", parent, e))?;
    }
    if to.exists() {
        if exchange(&from, &to).map_err(|e| io("exchanging the partitions", &to, e))? {
            // `from` now holds the old partition: move it aside with the run's staging
            if let Some(parent) = aside.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| io("creating the staging folder", parent, e))?;
            }
            std::fs::rename(&from, &aside)
                .map_err(|e| io("moving the old partition aside", &from, e))?;
            return Ok(());
        }
        if let Some(parent) = aside.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| io("creating the staging folder", parent, e))?;
        }
        std::fs::rename(&to, &aside).map_err(|e| io("moving the old partition aside", &to, e))?;
    }
    std::fs::rename(&from, &to).map_err(|e| io("moving the new partition into place", &to, e))?;
    Ok(())
}

/// Atomically exchanges two paths (Linux `renameat2` with `RENAME_EXCHANGE`); Ok(false) where
/// the platform or filesystem cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &std::path::Path, b: &std::path::Path) -> std::io::Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &std::path::Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => Ok(false),
        _ => Err(e),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &std::path::Path, _: &std::path::Path) -> std::io::Result<bool> {
    Ok(false)
}

/// Object stores have no rename: copy the staged (run-scoped) files in, then delete every other
/// file of the partition. Readers listing in between see both runs' files (module docs).
async fn replace_objects(from: &Location, to: &Location, files: &[String]) -> Result<()> {
    let store = to.store();
    for f in files {
        store
            .copy(&from.path_of(f), &to.path_of(f))
            .await
            .map_err(|e| Error::storage(to.join(f), crate::storage::explain(&e)))?;
    }
    let existing: Vec<Path> = store
        .list(Some(to.prefix()))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .map_err(|e| Error::storage(to, crate::storage::explain(&e)))?;
    for p in existing {
        if !files.iter().any(|f| p.filename() == Some(f.as_str())) {
            store
                .delete(&p)
                .await
                .map_err(|e| Error::storage(to.url_of(&p), crate::storage::explain(&e)))?;
        }
    }
    Ok(())
}

/// Removes a local folder if it is empty (no-op elsewhere: object stores have no folders).
pub fn remove_if_empty(loc: &Location) {
    if let (true, Ok(p)) = (loc.is_local(), local_path(loc)) {
        let _ = std::fs::remove_dir(p);
    }
}

/// Deletes everything under a location (best effort for scratch cleanup).
pub async fn remove_all(loc: &Location) -> Result<()> {
    if loc.is_local() {
        let p = local_path(loc)?;
        if p.exists() {
            std::fs::remove_dir_all(&p)
                .map_err(|e| Error::storage(loc, format!("cleaning up: {e}")))?;
        }
        return Ok(());
    }
    let store = loc.store();
    let paths: Vec<Path> = store
        .list(Some(loc.prefix()))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .map_err(|e| Error::storage(loc, crate::storage::explain(&e)))?;
    for p in paths {
        store
            .delete(&p)
            .await
            .map_err(|e| Error::storage(loc.url_of(&p), crate::storage::explain(&e)))?;
    }
    Ok(())
}

/// Writes batches as one Parquet object (snappy, row groups of [`ROW_GROUP_ROWS`]).
pub async fn write_parquet(
    loc: &Location,
    path: &Path,
    batches: &[RecordBatch],
    schema: SchemaRef,
) -> Result<()> {
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::basic::Compression;
    use datafusion::parquet::file::properties::WriterProperties;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("crm-pipeline {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut buf = Vec::new();
    {
        let mut w = ArrowWriter::try_new(&mut buf, schema, Some(props))
            .map_err(|e| Error::Internal(format!("parquet writer: {e}")))?;
        for b in batches {
            w.write(b)
                .map_err(|e| Error::Internal(format!("parquet write: {e}")))?;
        }
        w.close()
            .map_err(|e| Error::Internal(format!("parquet close: {e}")))?;
    }
    loc.store()
        .put(path, buf.into())
        .await
        .map_err(|e| Error::storage(loc.url_of(path), crate::storage::explain(&e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(p: &std::path::Path) -> Location {
        Location::parse(&p.display().to_string()).unwrap()
    }

    #[test]
    fn a_swap_puts_the_new_partition_in_place_and_the_old_one_aside() {
        let tmp = tempfile::tempdir().unwrap();
        let (from, to, aside) = (
            tmp.path().join("staging/t/period=1"),
            tmp.path().join("t/period=1"),
            tmp.path().join("staging/_replaced/t/period=1"),
        );
        std::fs::create_dir_all(&from).unwrap();
        std::fs::write(from.join("new.parquet"), "new").unwrap();
        // first publish: nothing to replace
        swap_local(&loc(&from), &loc(&to), &loc(&aside)).unwrap();
        assert!(to.join("new.parquet").is_file() && !from.exists() && !aside.exists());
        // a rerun: exchanged (Linux) or moved aside, either way old aside and new in place
        std::fs::create_dir_all(&from).unwrap();
        std::fs::write(from.join("newer.parquet"), "newer").unwrap();
        swap_local(&loc(&from), &loc(&to), &loc(&aside)).unwrap();
        assert!(to.join("newer.parquet").is_file());
        assert!(!to.join("new.parquet").exists());
        assert!(aside.join("new.parquet").is_file());
        assert!(!from.exists());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn exchange_swaps_two_folders_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("x"), "a").unwrap();
        std::fs::write(b.join("y"), "b").unwrap();
        if exchange(&a, &b).unwrap() {
            assert!(a.join("y").is_file() && b.join("x").is_file());
        } else {
            // a filesystem without exchange: nothing moved, the caller falls back to renames
            assert!(a.join("x").is_file() && b.join("y").is_file());
        }
    }
}
