//! Reading what the report shows: the published partitions of one period, read back with
//! DataFusion from any object store, and the run records, through [`crate::layout::Layout`]
//! and [`crate::record`]. A table or column that is absent is `None`, so its section can
//! say so instead of failing.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{EngineContext, Error, Result};
use crate::layout::Layout;
use crate::period::{Grain, Period};
use crate::record::{self, RunResults};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::prelude::SessionContext;

/// The columns of one table read back, whole (only the columns asked for and present).
#[derive(Debug, Default)]
pub struct Frame {
    rows: usize,
    cols: BTreeMap<String, ArrayRef>,
}

impl Frame {
    fn from_batches(names: &[String], batches: &[RecordBatch]) -> Result<Self> {
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        let mut cols = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
            let array = if parts.is_empty() {
                continue;
            } else {
                concat(&parts).map_err(|e| Error::Internal(format!("report column {name}: {e}")))?
            };
            cols.insert(name.clone(), array);
        }
        Ok(Self { rows, cols })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// True when the column was read.
    pub fn has(&self, column: &str) -> bool {
        self.cols.contains_key(column)
    }

    fn cast(&self, column: &str, to: &DataType) -> Option<ArrayRef> {
        let a = self.cols.get(column)?;
        cast(a, to).ok()
    }

    /// A column as floats (any numeric type), `None` when absent.
    pub fn f64(&self, column: &str) -> Option<Vec<Option<f64>>> {
        let a = self.cast(column, &DataType::Float64)?;
        let a = a.as_primitive::<Float64Type>();
        Some(a.iter().collect())
    }

    /// A column as integers, `None` when absent.
    pub fn i64(&self, column: &str) -> Option<Vec<Option<i64>>> {
        let a = self.cast(column, &DataType::Int64)?;
        let a = a.as_primitive::<Int64Type>();
        Some(a.iter().collect())
    }

    /// A column as text, `None` when absent.
    pub fn str(&self, column: &str) -> Option<Vec<Option<String>>> {
        let a = self.cast(column, &DataType::Utf8)?;
        let a = a.as_string::<i32>();
        Some(a.iter().map(|v| v.map(str::to_string)).collect())
    }

    /// A column as booleans, `None` when absent.
    pub fn bool(&self, column: &str) -> Option<Vec<Option<bool>>> {
        let a = self.cast(column, &DataType::Boolean)?;
        let a = a.as_boolean();
        Some(a.iter().collect())
    }

    /// Text of one cell ("" when absent or null).
    pub fn text_at(&self, column: &str, row: usize) -> String {
        self.str(column)
            .and_then(|v| v.get(row).cloned().flatten())
            .unwrap_or_default()
    }
}

/// A period from its label, whatever the grain (`2024-06`, `2024-Q2`, `2024`).
pub fn period_of(label: &str) -> Result<Period> {
    [Grain::Month, Grain::Quarter, Grain::Year]
        .iter()
        .find_map(|g| Period::parse(*g, label).ok())
        .ok_or_else(|| {
            Error::Usage(format!(
                "`{label}` is not a period (2024-06, 2024-Q2 or 2024)"
            ))
        })
}

/// The periods with a published partition of any of `tables`, in order (labels of one grain
/// sort in time order).
pub async fn published_periods(layout: &Layout, tables: &[&str]) -> Result<Vec<String>> {
    let mut periods = std::collections::BTreeSet::new();
    for table in tables {
        for label in crate::publish::published::periods(layout, table).await? {
            if period_of(&label).is_ok() {
                periods.insert(label);
            }
        }
    }
    Ok(periods.into_iter().collect())
}

/// The published partitions of one period in one warehouse.
pub struct PublishedPeriod {
    ctx: SessionContext,
    layout: Layout,
    period: Period,
}

impl PublishedPeriod {
    /// Reads `period`'s partitions of the warehouse of `layout`.
    pub fn new(layout: &Layout, period: &Period) -> Self {
        let ctx = SessionContext::new();
        let warehouse = layout.warehouse();
        if !warehouse.is_local() {
            ctx.register_object_store(&warehouse.root_url(), Arc::clone(warehouse.store()));
        }
        Self {
            ctx,
            layout: layout.clone(),
            period: period.clone(),
        }
    }

    /// Registers `table` when the period has a published partition of it; false when not.
    async fn register(&self, table: &str) -> Result<bool> {
        if self.ctx.table_exist(table).unwrap_or(false) {
            return Ok(true);
        }
        let Some(part) =
            crate::publish::published::partition(&self.layout, table, &self.period).await?
        else {
            return Ok(false);
        };
        if !part
            .files
            .iter()
            .any(|f| f.location.as_ref().ends_with(".parquet"))
        {
            return Ok(false);
        }
        part.register(&self.ctx, table, None).await?;
        Ok(true)
    }

    /// Reads the `columns` of `table` that exist, sorted by the `order` columns that exist;
    /// `None` when the period has no partition of `table`.
    pub async fn read(
        &self,
        table: &str,
        columns: &[&str],
        order: &[&str],
    ) -> Result<Option<Frame>> {
        if !self.register(table).await? {
            return Ok(None);
        }
        let df = self
            .ctx
            .table(table)
            .await
            .context(|| format!("reading table {table}"))?;
        let present: Vec<String> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let names: Vec<String> = columns
            .iter()
            .filter(|c| present.iter().any(|p| p == *c))
            .map(|c| c.to_string())
            .collect();
        let quote = |c: &str| format!("\"{}\"", c.replace('"', "\"\""));
        let select = if names.is_empty() {
            "1 AS \"_\"".to_string()
        } else {
            names
                .iter()
                .map(|c| quote(c))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let order: Vec<String> = order
            .iter()
            .filter(|c| present.iter().any(|p| p == *c))
            .map(|c| format!("{} ASC NULLS LAST", quote(c)))
            .collect();
        let sql = format!(
            "SELECT {select} FROM {}{}",
            quote(table),
            if order.is_empty() {
                String::new()
            } else {
                format!(" ORDER BY {}", order.join(", "))
            }
        );
        let batches = self
            .ctx
            .sql(&sql)
            .await
            .context(|| format!("report query on {table}: {sql}"))?
            .collect()
            .await
            .context(|| format!("report query on {table}: {sql}"))?;
        let names = if names.is_empty() {
            vec!["_".to_string()]
        } else {
            names
        };
        Frame::from_batches(&names, &batches).map(Some)
    }

    /// Whether the period's `table` has `column`.
    pub async fn has_column(&self, table: &str, column: &str) -> Result<bool> {
        if !self.register(table).await? {
            return Ok(false);
        }
        let df = self
            .ctx
            .table(table)
            .await
            .context(|| format!("reading table {table}"))?;
        Ok(df.schema().field_with_unqualified_name(column).is_ok())
    }

    /// Counts of `column` values in `table` (largest first, then by value); `None` when the
    /// table or the column is absent.
    pub async fn counts(&self, table: &str, column: &str) -> Result<Option<Vec<(String, i64)>>> {
        if !self.register(table).await? {
            return Ok(None);
        }
        let df = self
            .ctx
            .table(table)
            .await
            .context(|| format!("reading table {table}"))?;
        if df.schema().field_with_unqualified_name(column).is_err() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT CAST(\"{column}\" AS VARCHAR) AS v, count(*) AS n FROM \"{table}\" GROUP BY 1 ORDER BY n DESC, v ASC NULLS LAST"
        );
        let batches = self
            .ctx
            .sql(&sql)
            .await
            .context(|| format!("report query on {table}: {sql}"))?
            .collect()
            .await
            .context(|| format!("report query on {table}: {sql}"))?;
        let f = Frame::from_batches(&["v".into(), "n".into()], &batches)?;
        let (v, n) = (
            f.str("v").unwrap_or_default(),
            f.i64("n").unwrap_or_default(),
        );
        Ok(Some(
            v.into_iter()
                .zip(n)
                .map(|(v, n)| (v.unwrap_or_else(|| "(null)".into()), n.unwrap_or(0)))
                .collect(),
        ))
    }

    /// The record of `run_id`, `None` when it is not in the warehouse.
    pub async fn run_results(&self, run_id: &str) -> Result<Option<RunResults>> {
        record::read(&self.layout, run_id).await
    }

    /// Runs `sql` over `table` registered under its own name; `None` when the period has no
    /// partition of it or a column the query names is absent.
    pub async fn query(&self, table: &str, sql: &str, names: &[&str]) -> Result<Option<Frame>> {
        if !self.register(table).await? {
            return Ok(None);
        }
        let df = match self.ctx.sql(sql).await {
            Ok(df) => df,
            // a column this period's partition does not have
            Err(_) => return Ok(None),
        };
        let batches = df
            .collect()
            .await
            .context(|| format!("report query on {table}: {sql}"))?;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        Frame::from_batches(&names, &batches).map(Some)
    }
}
