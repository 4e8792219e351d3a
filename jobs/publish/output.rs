//! The output tables' contract as pipeline.yaml declares it ([`OutputConfig`]: the source table,
//! the key, the column types) and as the writer uses it, resolved once ([`Output`]: the Arrow
//! schema with `run_id`).

use datafusion::arrow::datatypes::SchemaRef;
use serde::Deserialize;

/// A declared output column type.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
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

/// How an output table is stored in the warehouse.
#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    /// Plain Hive-partitioned Parquet: `<table>/period=<P>/part-*.parquet`, a period replaced
    /// by swapping its folder (README "Publishing guarantees").
    #[default]
    Parquet,
    /// A Delta Lake table at `<table>/`, partitioned by `period`: a run replaces its period with
    /// one atomic commit, with history, time travel and vacuum ([`crate::publish::delta`]).
    Delta,
}

impl TableFormat {
    /// The name used in pipeline.yaml and in messages.
    pub fn name(self) -> &'static str {
        match self {
            TableFormat::Parquet => "parquet",
            TableFormat::Delta => "delta",
        }
    }
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
    /// The table's format, in place of the warehouse-wide `table_format`.
    #[serde(default)]
    pub format: Option<TableFormat>,
    /// The contract schema: column name -> type, in output order.
    pub columns: serde_yaml_ng::Mapping,
}

fn yes() -> bool {
    true
}

impl OutputConfig {
    /// The declared columns in order, validated.
    /// Errors are (key, message) for the caller to attach to the definition's file.
    pub fn column_types(
        &self,
        table: &str,
    ) -> std::result::Result<Vec<(String, ColumnType)>, (String, String)> {
        let mut out = Vec::with_capacity(self.columns.len());
        for (k, v) in &self.columns {
            let name = k.as_str().ok_or_else(|| {
                (
                    format!("outputs.{table}.columns"),
                    "column names must be strings".to_string(),
                )
            })?;
            let ty: ColumnType = serde_yaml_ng::from_value(v.clone()).map_err(|_| {
                let shown = serde_yaml_ng::to_string(v).unwrap_or_default();
                (
                    format!("outputs.{table}.columns.{name}"),
                    format!(
                        "unknown type `{}`; use string, int64, int32, float64, boolean, date or timestamp",
                        shown.trim()
                    ),
                )
            })?;
            out.push((name.to_string(), ty));
        }
        Ok(out)
    }
}

/// An output resolved for the run: its declaration, its columns and its Arrow schema.
#[derive(Debug, Clone)]
pub struct Output {
    /// The table's name.
    pub name: String,
    /// What pipeline.yaml declares.
    pub config: OutputConfig,
    /// The contract's columns in order.
    pub columns: Vec<(String, ColumnType)>,
    /// The contract schema, `run_id` included.
    pub schema: SchemaRef,
    /// How the table is stored (its own `format`, else the warehouse's `table_format`).
    pub format: TableFormat,
}
