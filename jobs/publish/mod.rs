//! Step 4: publish partitions and run results.
//!
//! Each output table's rows are cast to the contract schema declared in pipeline.yaml, sorted by
//! the table's key (deterministic files), stamped with `run_id`, and written under the
//! attempt's staging folder `<warehouse>/_staging/<run_id>/attempt-<n>/<table>/period=<P>/`.
//! Only when every table of the run is staged, checked and through the publish gate are the
//! partitions swapped into `<warehouse>/<table>/period=<P>/`, all tables together or none
//! ([`swap`]); a rerun replaces the partition, never appends. Files are named after the run and
//! attempt (`part-<run_id>-00000.parquet`, `part-<run_id>-a2-00000.parquet` for a retry), so no
//! published file is ever overwritten in place.
//!
//! What a reader of one partition sees during the swap, per store (README "Publishing
//! guarantees"):
//! - local filesystem: one atomic exchange of the two folders on Linux (`renameat2`
//!   `RENAME_EXCHANGE`), else two renames on one filesystem; the old files or the new ones,
//!   never a mix.
//! - object stores (S3, GCS, Azure): there is no rename of a prefix. The new run's files are
//!   copied in first (for every table), then the previous runs' files are deleted. Every object
//!   is written whole, a partition is never empty or partly written, and no file a reader has
//!   opened changes; but a reader that lists the partition between the copy and the delete sees
//!   both runs' files (duplicate rows, told apart by `run_id`).
pub mod delta;
pub mod lock;
pub mod output;
pub mod published;
pub mod swap;

pub use swap::{PublishLog, publish, recover};

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
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, StoreContext};
use crate::layout::{Attempt, Layout};
use crate::period::Period;
use crate::storage::Location;
pub use output::{ColumnType, Output, OutputConfig, TableFormat};

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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped_columns: Vec<String>,
    /// The table's format.
    #[serde(default)]
    pub format: TableFormat,
    /// Delta tables: the table version the publish committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_version: Option<i64>,
    /// Rows of each file (what a Delta commit records per file).
    #[serde(skip)]
    pub file_rows: Vec<u64>,
    /// The contract's columns (a Delta table's schema).
    #[serde(skip)]
    pub columns: Vec<(String, ColumnType)>,
    /// The job definition that declares the table (in errors).
    #[serde(skip)]
    pub definition: String,
}

/// Writes one output table's partition into the attempt's staging area.
pub struct PartitionWriter<'a> {
    layout: &'a Layout,
    attempt: &'a Attempt,
    table: &'a str,
    period: &'a Period,
    columns: Vec<(String, ColumnType)>,
    key: Vec<String>,
    definition: String,
    format: TableFormat,
}

impl<'a> PartitionWriter<'a> {
    /// A writer for `table`'s partition of `period`, staged by `attempt`.
    pub fn new(
        layout: &'a Layout,
        attempt: &'a Attempt,
        table: &'a str,
        period: &'a Period,
    ) -> Self {
        Self {
            layout,
            attempt,
            table,
            period,
            columns: Vec::new(),
            key: Vec::new(),
            definition: "the job definition".into(),
            format: TableFormat::Parquet,
        }
    }

    /// Declares the table's format.
    pub fn with_format(mut self, format: TableFormat) -> Self {
        self.format = format;
        self
    }

    /// Names the job definition that declares the table, in errors.
    pub fn defined_in(mut self, file: impl Into<String>) -> Self {
        self.definition = file.into();
        self
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
        self.layout
            .staged_partition(self.attempt, self.table, self.period)
    }

    /// Casts, sorts and writes `batches`; returns what was staged.
    pub async fn stage(&self, batches: &[RecordBatch]) -> Result<StagedPartition> {
        let schema = contract_schema(&self.columns);
        let (batch, dropped) = self.conform(batches, &schema)?;
        let batch = self.sorted(batch)?;
        let staging = self.staging();
        let mut files = Vec::new();
        let mut file_rows = Vec::new();
        let total = batch.num_rows();
        let mut offset = 0;
        loop {
            let len = ROWS_PER_FILE.min(total - offset);
            let name = part_name(&self.attempt.file_tag(), files.len());
            write_parquet(
                &staging,
                &staging.path_of(&name),
                &[batch.slice(offset, len)],
                Arc::clone(&schema),
            )
            .await?;
            files.push(name);
            file_rows.push(len as u64);
            offset += len;
            if offset >= total {
                break;
            }
        }
        Ok(StagedPartition {
            table: self.table.to_string(),
            period: self.period.label(),
            rows: total as u64,
            files,
            location: self.layout.partition(self.table, self.period).to_string(),
            dropped_columns: dropped,
            format: self.format,
            delta_version: None,
            file_rows,
            columns: self.columns.clone(),
            definition: self.definition.clone(),
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
                    &self.definition,
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
                    &self.definition,
                    format!("outputs.{}.columns.{name}: the produced values cannot be cast to {target}: {e}", self.table),
                )
            })?;
            cols.push(cast);
        }
        cols.push(Arc::new(StringArray::from_iter_values(
            std::iter::repeat_n(self.attempt.run_id.as_str(), n),
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

/// The name of a published file: run- and attempt-scoped ([`Attempt::file_tag`]), so a rerun or
/// a retry never overwrites a file in place.
pub fn part_name(tag: &str, index: usize) -> String {
    let run: String = tag
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

/// Removes a local folder if it is empty (no-op elsewhere: object stores have no folders).
pub fn remove_if_empty(loc: &Location) {
    if let (true, Ok(p)) = (loc.is_local(), swap::local_path(loc)) {
        let _ = std::fs::remove_dir(p);
    }
}

/// Deletes everything under a location (best effort for scratch cleanup).
pub async fn remove_all(loc: &Location) -> Result<()> {
    if loc.is_local() {
        let p = swap::local_path(loc)?;
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
        .at(loc)?;
    for p in paths {
        store.delete(&p).await.at(loc.url_of(&p))?;
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
    let buf = encode_parquet(batches, schema)?;
    loc.store()
        .put(path, buf.into())
        .await
        .at(loc.url_of(path))?;
    Ok(())
}

/// Encodes batches as one Parquet file in memory, the columns of each row group in parallel
/// (rayon; the file is the one `ArrowWriter` writes, with the Arrow schema in its metadata).
/// A wide table such as customer_features has dozens of columns, so the write of a 1,000,000-row
/// output keeps every core busy instead of one.
fn encode_parquet(batches: &[RecordBatch], schema: SchemaRef) -> Result<Vec<u8>> {
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::arrow::arrow_writer::{ArrowColumnChunk, compute_leaves};
    use datafusion::parquet::basic::Compression;
    use datafusion::parquet::file::properties::WriterProperties;
    use rayon::prelude::*;
    let err =
        |what: &str, e: &dyn std::fmt::Display| Error::Internal(format!("parquet {what}: {e}"));
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("crm-pipeline {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut buf = Vec::new();
    let writer = ArrowWriter::try_new(&mut buf, Arc::clone(&schema), Some(props))
        .map_err(|e| err("writer", &e))?;
    let (mut file, factory) = writer
        .into_serialized_writer()
        .map_err(|e| err("writer", &e))?;
    // Row groups of ROW_GROUP_ROWS rows across the batches, as ArrowWriter cuts them.
    let mut groups: Vec<Vec<RecordBatch>> = vec![Vec::new()];
    let mut rows_in_group = 0;
    for batch in batches {
        let mut offset = 0;
        while offset < batch.num_rows() {
            if rows_in_group == ROW_GROUP_ROWS {
                groups.push(Vec::new());
                rows_in_group = 0;
            }
            let len = (ROW_GROUP_ROWS - rows_in_group).min(batch.num_rows() - offset);
            groups
                .last_mut()
                .expect("one group")
                .push(batch.slice(offset, len));
            rows_in_group += len;
            offset += len;
        }
    }
    for (index, group) in groups.iter().enumerate().filter(|(_, g)| !g.is_empty()) {
        // per leaf column, its arrays in this row group, in batch order
        let mut leaves: Vec<Vec<_>> = Vec::new();
        for slice in group {
            let mut leaf = 0;
            for (field, column) in schema.fields().iter().zip(slice.columns()) {
                for l in compute_leaves(field, column).map_err(|e| err("leaves", &e))? {
                    if leaves.len() <= leaf {
                        leaves.push(Vec::new());
                    }
                    leaves[leaf].push(l);
                    leaf += 1;
                }
            }
        }
        let writers = factory
            .create_column_writers(index)
            .map_err(|e| err("column writers", &e))?;
        if writers.len() != leaves.len() {
            return Err(Error::Internal(format!(
                "parquet write: {} column writers for {} leaf columns",
                writers.len(),
                leaves.len()
            )));
        }
        let chunks: Vec<ArrowColumnChunk> = writers
            .into_par_iter()
            .zip(leaves.into_par_iter())
            .map(|(mut w, column)| {
                for l in &column {
                    w.write(l)?;
                }
                w.close()
            })
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| err("write", &e))?;
        let mut rg = file.next_row_group().map_err(|e| err("row group", &e))?;
        for chunk in chunks {
            chunk
                .append_to_row_group(&mut rg)
                .map_err(|e| err("row group", &e))?;
        }
        rg.close().map_err(|e| err("row group", &e))?;
    }
    file.close().map_err(|e| err("close", &e))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, Date32Array, Float64Array, Int64Array};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// The parallel encoder cuts row groups across batches as ArrowWriter does, keeps every
    /// value, null and type (the Arrow schema travels in the metadata: Date32, UTC timestamps).
    #[test]
    fn parallel_encoding_round_trips_and_cuts_row_groups_like_arrow_writer() {
        let schema = contract_schema(&[
            ("id".into(), ColumnType::Int64),
            ("name".into(), ColumnType::String),
            ("amount".into(), ColumnType::Float64),
            ("day".into(), ColumnType::Date),
        ]);
        let batch = |from: i64, n: usize| {
            let ids: Vec<i64> = (from..from + n as i64).collect();
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Int64Array::from(ids.clone())),
                    Arc::new(StringArray::from_iter(
                        ids.iter().map(|i| (i % 7 != 0).then(|| format!("c{i}"))),
                    )),
                    Arc::new(Float64Array::from_iter_values(
                        ids.iter().map(|&i| i as f64 / 3.0),
                    )),
                    Arc::new(Date32Array::from_iter_values(
                        ids.iter().map(|&i| (i % 900) as i32),
                    )),
                    Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                        "run-1", n,
                    ))),
                ],
            )
            .expect("batch")
        };
        // 300,000 rows in uneven batches: row groups of 131,072 + 131,072 + 37,856
        let batches = vec![
            batch(0, 100_000),
            batch(100_000, 7),
            batch(100_007, 199_993),
        ];
        let bytes = encode_parquet(&batches, Arc::clone(&schema)).expect("encoded");
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).expect("reader");
        let groups: Vec<i64> = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        assert_eq!(groups, vec![131_072, 131_072, 37_856]);
        assert_eq!(reader.schema().as_ref(), schema.as_ref());
        let read: Vec<RecordBatch> = reader
            .build()
            .expect("build")
            .map(|b| b.expect("batch"))
            .collect();
        let read = concat_batches(&schema, &read).expect("concat");
        let written = concat_batches(&schema, &batches).expect("concat");
        assert_eq!(read, written);
        assert_eq!(read.column(1).null_count(), 300_000usize.div_ceil(7));
        // nothing at all: a valid file without row groups
        let empty = encode_parquet(&[], Arc::clone(&schema)).expect("encoded");
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(empty)).expect("reader");
        assert_eq!(reader.metadata().num_row_groups(), 0);
        assert_eq!(reader.schema().as_ref(), schema.as_ref());
    }
}
