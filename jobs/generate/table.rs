//! Encodes rows of text fields as one part file: CSV (RFC 4180 quoting, `\n` line ends, header
//! row), gzip-compressed CSV, or Parquet with every column Utf8 (so dirty values survive; an
//! empty field is written as null, as a CSV reader reads it).

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;

use super::deps::arrow::array::{ArrayRef, StringBuilder};
use super::deps::arrow::datatypes::{DataType, Field, Schema};
use super::deps::arrow::record_batch::RecordBatch;
use super::deps::parquet::arrow::ArrowWriter;
use super::deps::parquet::basic::Compression;
use super::deps::parquet::file::properties::WriterProperties;
use super::{GenerateError, OutputFormat};

/// One row being assembled: its fields back to back in one buffer, reused between rows.
#[derive(Debug, Default)]
pub(super) struct Row {
    buf: String,
    ends: Vec<usize>,
}

impl Row {
    /// Starts a new row.
    pub(super) fn clear(&mut self) -> &mut Self {
        self.buf.clear();
        self.ends.clear();
        self
    }

    /// Appends a text field.
    pub(super) fn s(&mut self, v: &str) -> &mut Self {
        self.buf.push_str(v);
        self.ends.push(self.buf.len());
        self
    }

    /// Appends a field formatted with `Display`.
    pub(super) fn d(&mut self, v: impl fmt::Display) -> &mut Self {
        // Writing to a String cannot fail.
        let _ = write!(self.buf, "{v}");
        self.ends.push(self.buf.len());
        self
    }

    /// Appends an empty field.
    pub(super) fn empty(&mut self) -> &mut Self {
        self.ends.push(self.buf.len());
        self
    }

    /// The fields in order.
    pub(super) fn fields(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let f = &self.buf[start..end];
            start = end;
            f
        })
    }

    /// Number of fields.
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }
}

/// Whether a CSV field must be quoted.
fn needs_quotes(f: &str) -> bool {
    f.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
}

/// Appends one CSV record.
pub(super) fn write_csv_record<'a>(out: &mut Vec<u8>, fields: impl Iterator<Item = &'a str>) {
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if needs_quotes(f) {
            out.push(b'"');
            for b in f.bytes() {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(f.as_bytes());
        }
    }
    out.push(b'\n');
}

/// The rows of one part file of one extract.
pub(super) struct Table {
    columns: &'static [&'static str],
    format: OutputFormat,
    csv: Vec<u8>,
    builders: Vec<StringBuilder>,
    rows: u64,
}

impl Table {
    /// An empty table with the given columns.
    pub(super) fn new(columns: &'static [&'static str], format: OutputFormat) -> Self {
        let mut csv = Vec::new();
        let builders = match format {
            OutputFormat::Csv | OutputFormat::CsvGzip => {
                write_csv_record(&mut csv, columns.iter().copied());
                Vec::new()
            }
            OutputFormat::Parquet => columns.iter().map(|_| StringBuilder::new()).collect(),
        };
        Self {
            columns,
            format,
            csv,
            builders,
            rows: 0,
        }
    }

    /// Appends a row; it must have one field per column.
    pub(super) fn push(&mut self, row: &Row) {
        debug_assert_eq!(
            row.len(),
            self.columns.len(),
            "row width of {:?}",
            self.columns
        );
        match self.format {
            OutputFormat::Csv | OutputFormat::CsvGzip => {
                write_csv_record(&mut self.csv, row.fields())
            }
            OutputFormat::Parquet => {
                for (b, f) in self.builders.iter_mut().zip(row.fields()) {
                    if f.is_empty() {
                        b.append_null()
                    } else {
                        b.append_value(f)
                    }
                }
            }
        }
        self.rows += 1;
    }

    /// Rows pushed so far (the header not counted).
    pub(super) fn rows(&self) -> u64 {
        self.rows
    }

    /// Encodes the part file.
    pub(super) fn finish(self) -> Result<Bytes, GenerateError> {
        match self.format {
            OutputFormat::Csv => Ok(Bytes::from(self.csv)),
            OutputFormat::CsvGzip => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(self.csv.len() / 4),
                    flate2::Compression::default(),
                );
                enc.write_all(&self.csv)
                    .map_err(|e| GenerateError::Encode(e.to_string()))?;
                let out = enc
                    .finish()
                    .map_err(|e| GenerateError::Encode(e.to_string()))?;
                Ok(Bytes::from(out))
            }
            OutputFormat::Parquet => {
                let schema = Arc::new(Schema::new(
                    self.columns
                        .iter()
                        .map(|c| Field::new(*c, DataType::Utf8, true))
                        .collect::<Vec<_>>(),
                ));
                let arrays: Vec<ArrayRef> = self
                    .builders
                    .into_iter()
                    .map(|mut b| Arc::new(b.finish()) as ArrayRef)
                    .collect();
                let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)
                    .map_err(|e| GenerateError::Encode(e.to_string()))?;
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .build();
                let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(props))
                    .map_err(|e| GenerateError::Encode(e.to_string()))?;
                writer
                    .write(&batch)
                    .map_err(|e| GenerateError::Encode(e.to_string()))?;
                let out = writer
                    .into_inner()
                    .map_err(|e| GenerateError::Encode(e.to_string()))?;
                Ok(Bytes::from(out))
            }
        }
    }
}

/// Writes money held in cents with two decimals ("-12.30").
pub(super) struct Cents(pub i64);

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", a / 100, a % 100)
    }
}
