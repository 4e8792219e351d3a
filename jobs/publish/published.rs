//! Reading what is published, whatever the table's format: the files of one period's partition
//! (a plain Parquet folder's files, or the files a Delta table's current version references for
//! that period), the periods a table holds, and registering a partition in a session. Every
//! reader of published tables goes through here: `previous.<table>`, the shrink gate, the
//! report, `backfill --only-missing`.
//!
//! A table's format is read from the warehouse, not from the job definition: a table folder with
//! a `_delta_log/` is a Delta table. So `report` needs no job definition, and a reader never
//! lists a Delta partition's folder (which keeps replaced files for time travel until a vacuum).

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::SessionContext;
use futures::TryStreamExt;
use object_store::ObjectMeta;

use super::delta;
use super::output::TableFormat;
use crate::error::{EngineContext, Error, Result, StoreContext};
use crate::layout::Layout;
use crate::period::Period;
use crate::storage::Location;

/// The format of `table` as the warehouse holds it (Parquet when it holds nothing yet).
pub async fn format_of(layout: &Layout, table: &str) -> Result<TableFormat> {
    Ok(if delta::exists(&layout.table(table)).await? {
        TableFormat::Delta
    } else {
        TableFormat::Parquet
    })
}

/// One published partition: where it is and the files a reader reads.
#[derive(Debug, Clone)]
pub struct Partition {
    /// The partition's folder.
    pub location: Location,
    /// The files a reader of the partition reads (all of them non-empty objects).
    pub files: Vec<ObjectMeta>,
    /// The table's format.
    pub format: TableFormat,
    /// The Delta table's version read (Delta tables only).
    pub version: Option<i64>,
}

impl Partition {
    /// The URLs of the partition's files.
    pub fn urls(&self) -> Vec<String> {
        self.files
            .iter()
            .map(|f| self.location.url_of(&f.location))
            .collect()
    }

    /// Registers the partition's files as table `name` in `ctx` (with `schema`, else the files'
    /// own). The store must be registered in `ctx` (local files always are).
    pub async fn register(
        &self,
        ctx: &SessionContext,
        name: &str,
        schema: Option<&SchemaRef>,
    ) -> Result<()> {
        let urls = self
            .urls()
            .iter()
            .map(ListingTableUrl::parse)
            .collect::<std::result::Result<Vec<_>, _>>()
            .context(|| format!("reading the published partition {}", self.location))?;
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension("");
        let config = ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options);
        let config = match schema {
            Some(s) => config.with_schema(Arc::clone(s)),
            None => config
                .infer_schema(&ctx.state())
                .await
                .context(|| format!("reading the published partition {}", self.location))?,
        };
        let table = ListingTable::try_new(config)
            .context(|| format!("reading the published partition {}", self.location))?;
        ctx.register_table(name, Arc::new(table))
            .context(|| format!("registering {name}"))?;
        Ok(())
    }
}

/// The published partition of `table` for `period`; None when nothing is published there.
pub async fn partition(layout: &Layout, table: &str, period: &Period) -> Result<Option<Partition>> {
    let location = layout.partition(table, period);
    let table_loc = layout.table(table);
    if let Some(t) = delta::open(&table_loc, None).await? {
        let files: Vec<ObjectMeta> = delta::period_files(&table_loc, &t, &period.label())
            .await?
            .into_iter()
            .map(|f| f.meta)
            .collect();
        return Ok((!files.is_empty()).then(|| Partition {
            location,
            files,
            format: TableFormat::Delta,
            version: Some(delta::version(&t)),
        }));
    }
    let files: Vec<ObjectMeta> = match location
        .store()
        .list(Some(location.prefix()))
        .try_collect()
        .await
    {
        Ok(f) => f,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(Error::store(&location, e)),
    };
    Ok((!files.is_empty()).then(|| Partition {
        location,
        files,
        format: TableFormat::Parquet,
        version: None,
    }))
}

/// The periods `table` has published, in label order.
pub async fn periods(layout: &Layout, table: &str) -> Result<Vec<String>> {
    let dir = layout.table(table);
    if let Some(t) = delta::open(&dir, None).await? {
        return delta::periods(&dir, &t).await;
    }
    let listed = dir
        .store()
        .list_with_delimiter(Some(dir.prefix()))
        .await
        .at(dir.url())?;
    Ok(listed
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename()?.strip_prefix("period=").map(str::to_string))
        .collect())
}
