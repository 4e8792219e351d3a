//! Columnar access to a collected input table, by column name and wanted type.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, Schema};

use crate::error::{Error, Result};

/// One input table, concatenated into a single batch.
pub struct Table {
    name: String,
    batch: RecordBatch,
}

impl Table {
    /// Concatenates `batches` of table `name`.
    pub fn new(name: &str, batches: &[RecordBatch]) -> Result<Self> {
        let schema = batches
            .first()
            .map(|b| b.schema())
            .unwrap_or_else(|| Arc::new(Schema::empty()));
        let batch = concat_batches(&schema, batches)
            .map_err(|e| Error::Internal(format!("concatenating `{name}`: {e}")))?;
        Ok(Self {
            name: name.to_string(),
            batch,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn column(&self, col: &str, ty: &DataType) -> Result<ArrayRef> {
        if self.batch.num_rows() == 0 && self.batch.schema().fields().is_empty() {
            return Ok(datafusion::arrow::array::new_empty_array(ty));
        }
        let arr = self.batch.column_by_name(col).ok_or_else(|| Error::Model {
            model: self.name.clone(),
            message: format!(
                "input table `{}` has no column `{col}`; check the mart that produces it",
                self.name
            ),
        })?;
        cast(arr, ty).map_err(|e| Error::Model {
            model: self.name.clone(),
            message: format!(
                "column `{col}` of `{}` cannot be read as {ty}: {e}",
                self.name
            ),
        })
    }

    /// A text column.
    pub fn strings(&self, col: &str) -> Result<StringArray> {
        Ok(self
            .column(col, &DataType::Utf8)?
            .as_string::<i32>()
            .clone())
    }

    /// A numeric column as f64 (null stays None).
    pub fn f64(&self, col: &str) -> Result<Vec<Option<f64>>> {
        let a = self.column(col, &DataType::Float64)?;
        let p = a.as_primitive::<Float64Type>();
        Ok((0..p.len())
            .map(|i| if p.is_null(i) { None } else { Some(p.value(i)) })
            .collect())
    }

    /// An integer column as i64 (null stays None).
    pub fn i64(&self, col: &str) -> Result<Vec<Option<i64>>> {
        let a = self.column(col, &DataType::Int64)?;
        let p = a.as_primitive::<Int64Type>();
        Ok((0..p.len())
            .map(|i| if p.is_null(i) { None } else { Some(p.value(i)) })
            .collect())
    }

    /// The whole table as one batch.
    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// Whether the table has a column.
    pub fn has(&self, col: &str) -> bool {
        self.batch.column_by_name(col).is_some()
    }
}
