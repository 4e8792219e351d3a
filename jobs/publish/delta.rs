//! Delta Lake output tables (`table_format: delta`), through delta-rs (`deltalake`, built on the
//! same DataFusion, arrow and object_store as the job).
//!
//! A Delta output is one table at `<warehouse>/<table>/`, partitioned by `period` (a partition
//! column: the data files do not hold it). A run replaces its period with **one commit** per table:
//! the files of the period the table held are removed and the run's files added, as a `WRITE`
//! with mode `Overwrite` and predicate `period = 'P'` (replaceWhere semantics; every file the run
//! adds carries `period = P`, so no row can fall outside it). The commit is a create-only put of
//! `_delta_log/<version>.json`: readers see the old version or the new one, never a mix, on every
//! store; a commit of another period landing first is not a conflict (delta-rs re-checks the
//! winning commit against the predicate and retries), a commit of the same period is (and the
//! period lock never lets two runs of one period get that far).
//!
//! A table is created (version 0, no files) by the first publish, before any file is brought in.
//! The run's files are written to the attempt's staging first (as for Parquet outputs), copied
//! into `<table>/period=P/` under run- and attempt-scoped names (invisible to Delta readers until
//! the commit references them), then committed. An uncommitted publish is undone by
//! [`restore_period`]: one more commit that gives the period back the files it had at the version
//! the publish started from (so time travel keeps both). Removed files stay on storage for time
//! travel until [`vacuum`] deletes those older than the retention.
//!
//! Stores: local filesystem and `memory://` commit with an atomic create; S3 with a conditional
//! put (`If-None-Match`, object_store's `aws_conditional_put`, on by default; a store configured
//! without it is refused: two writers could overwrite each other's commit); GCS and Azure with
//! their native preconditions.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, DataType as DeltaType, StructField};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};

use super::output::ColumnType;
use crate::error::{Error, Result, StoreContext};
use crate::layout::Attempt;
use crate::storage::Location;

/// The partition column of every Delta output.
pub const PARTITION_COLUMN: &str = "period";

/// The Delta type of a declared column type.
pub fn delta_type(t: ColumnType) -> DeltaType {
    match t {
        ColumnType::String => DeltaType::STRING,
        ColumnType::Int64 => DeltaType::LONG,
        ColumnType::Int32 => DeltaType::INTEGER,
        ColumnType::Float64 => DeltaType::DOUBLE,
        ColumnType::Boolean => DeltaType::BOOLEAN,
        ColumnType::Date => DeltaType::DATE,
        ColumnType::Timestamp => DeltaType::TIMESTAMP,
    }
}

/// The Delta schema of an output: the contract's columns, `run_id`, then `period`.
fn delta_fields(columns: &[(String, ColumnType)]) -> Vec<StructField> {
    let mut fields: Vec<StructField> = columns
        .iter()
        .map(|(n, t)| StructField::new(n.clone(), delta_type(*t), true))
        .collect();
    fields.push(StructField::new("run_id", DeltaType::STRING, false));
    fields.push(StructField::new(PARTITION_COLUMN, DeltaType::STRING, true));
    fields
}

fn delta_error(loc: &Location, what: &str, e: DeltaTableError) -> Error {
    let text = e.to_string();
    let lower = text.to_lowercase();
    let hint = if lower.contains("notimplemented") || lower.contains("not yet implemented") {
        "; the store does not support create-only (conditional) puts, which Delta commits need: enable them (S3: aws_conditional_put=etag) or use table_format: parquet"
    } else {
        ""
    };
    Error::storage(loc, crate::redact::redact(&format!("{what}: {text}{hint}")))
}

fn table_url(loc: &Location) -> Result<url::Url> {
    url::Url::parse(&loc.url()).map_err(|e| Error::Internal(format!("{loc} is not a URL: {e}")))
}

fn builder(loc: &Location) -> Result<DeltaTableBuilder> {
    let url = table_url(loc)?;
    let b = DeltaTableBuilder::from_url(url.clone())
        .map_err(|e| delta_error(loc, "opening the Delta table", e))?;
    Ok(b.with_storage_backend(Arc::clone(loc.store()), url))
}

/// Whether `loc` holds a Delta table (a `_delta_log/` with anything in it).
pub async fn exists(loc: &Location) -> Result<bool> {
    let log = loc.join("_delta_log");
    let listed = log
        .store()
        .list_with_delimiter(Some(log.prefix()))
        .await
        .at(log.url())?;
    Ok(!listed.objects.is_empty())
}

/// The Delta table at `loc` at its latest version (or `version`); None when there is none.
pub async fn open(loc: &Location, version: Option<i64>) -> Result<Option<DeltaTable>> {
    if !exists(loc).await? {
        return Ok(None);
    }
    let mut b = builder(loc)?;
    if let Some(v) = version {
        b = b.with_version(v.max(0) as u64);
    }
    b.load()
        .await
        .map(Some)
        .map_err(|e| delta_error(loc, "reading the Delta log", e))
}

/// One file of a Delta table's partition, as the table's current version references it.
#[derive(Debug, Clone)]
pub struct DeltaFile {
    /// Its path relative to the table (`period=P/part-....parquet`).
    pub relative: String,
    /// Its full path in the store.
    pub meta: ObjectMeta,
    /// The add action that references it (to re-add it on a rollback).
    add: Add,
}

/// The files of `period` in `table`'s loaded version.
pub async fn period_files(
    loc: &Location,
    table: &DeltaTable,
    period: &str,
) -> Result<Vec<DeltaFile>> {
    let views: Vec<_> = table
        .get_active_add_actions_by_partitions(&[])
        .try_collect()
        .await
        .map_err(|e| delta_error(loc, "listing the table's files", e))?;
    let mut out = Vec::new();
    for v in views {
        let pv = v.partition_values_map();
        if pv.get(PARTITION_COLUMN).cloned().flatten().as_deref() != Some(period) {
            continue;
        }
        let rel = v.object_store_path();
        let relative = rel.to_string();
        let location: Path = loc.prefix().parts().chain(rel.parts()).collect();
        out.push(DeltaFile {
            meta: ObjectMeta {
                location,
                last_modified: v.modification_datetime().unwrap_or_default(),
                size: v.size().max(0) as u64,
                e_tag: None,
                version: None,
            },
            relative,
            #[allow(deprecated)] // the Add to re-add the file on a rollback
            add: v.add_action(),
        });
    }
    out.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(out)
}

/// Every period with files in `table`'s current version, in order.
pub async fn periods(loc: &Location, table: &DeltaTable) -> Result<Vec<String>> {
    let views: Vec<_> = table
        .get_active_add_actions_by_partitions(&[])
        .try_collect()
        .await
        .map_err(|e| delta_error(loc, "listing the table's files", e))?;
    let set: BTreeSet<String> = views
        .iter()
        .filter_map(|v| {
            v.partition_values_map()
                .get(PARTITION_COLUMN)
                .cloned()
                .flatten()
        })
        .collect();
    Ok(set.into_iter().collect())
}

/// The table's version (-1 for none).
pub fn version(table: &DeltaTable) -> i64 {
    table.version().map_or(-1, |v| v as i64)
}

/// Refuses a table whose schema is not the contract's: a column whose type changed, one added
/// or one removed, each named (a Delta table's schema changes only deliberately).
pub fn check_schema(
    loc: &Location,
    table_name: &str,
    table: &DeltaTable,
    columns: &[(String, ColumnType)],
    definition: &str,
) -> Result<()> {
    let snapshot = table
        .snapshot()
        .map_err(|e| delta_error(loc, "reading the table's schema", e))?;
    let schema = snapshot.schema();
    let wanted = delta_fields(columns);
    let mut problems = Vec::new();
    for f in &wanted {
        match schema.field(f.name()) {
            None => problems.push(format!(
                "column `{}` ({}) is declared but the Delta table has no such column",
                f.name(),
                f.data_type()
            )),
            Some(have) if have.data_type() != f.data_type() => problems.push(format!(
                "column `{}` would change type from {} (published) to {} (declared)",
                f.name(),
                have.data_type(),
                f.data_type()
            )),
            Some(_) => {}
        }
    }
    for have in schema.fields() {
        if !wanted.iter().any(|f| f.name() == have.name()) {
            problems.push(format!(
                "column `{}` ({}) of the Delta table is no longer declared",
                have.name(),
                have.data_type()
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::config(
        definition,
        format!(
            "outputs.{table_name}: the output's columns do not match the published Delta table {loc}: {}. Nothing was committed. A Delta table's schema is its contract: restore the declared types, or publish the changed table under a new name (or a new warehouse)",
            problems.join("; ")
        ),
    ))
}

fn commit_metadata(attempt: &Attempt, period: &str, what: &str) -> CommitProperties {
    CommitProperties::default().with_metadata([
        (
            "crm_pipeline_run_id".to_string(),
            attempt.run_id.clone().into(),
        ),
        ("crm_pipeline_attempt".to_string(), attempt.number.into()),
        ("crm_pipeline_period".to_string(), period.to_string().into()),
        ("crm_pipeline_action".to_string(), what.to_string().into()),
        (
            "crm_pipeline_version".to_string(),
            env!("CARGO_PKG_VERSION").into(),
        ),
    ])
}

fn overwrite(period: &str) -> DeltaOperation {
    DeltaOperation::Write {
        mode: SaveMode::Overwrite,
        partition_by: Some(vec![PARTITION_COLUMN.to_string()]),
        predicate: Some(format!("{PARTITION_COLUMN} = '{period}'")),
    }
}

/// A file the run brings into a Delta partition: its name, size and rows.
#[derive(Debug, Clone)]
pub struct NewFile {
    /// File name inside `period=P/`.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Rows.
    pub rows: u64,
}

/// The Delta table at `loc`, created (version 0: its schema, partitioned by `period`, no files)
/// if there is none yet. A publish creates its tables before it brings any file in, so a table
/// folder without a Delta log but with `period=` folders is a plain Parquet table, never a Delta
/// table being created by a run of another period. Two runs creating it at once: one creates,
/// the other opens what it created.
pub async fn create_if_absent(
    loc: &Location,
    table_name: &str,
    columns: &[(String, ColumnType)],
    attempt: &Attempt,
    period: &str,
) -> Result<DeltaTable> {
    if let Some(t) = open(loc, None).await? {
        return Ok(t);
    }
    let created = builder(loc)?
        .build()
        .map_err(|e| delta_error(loc, "creating the Delta table", e))?;
    let create = deltalake::operations::create::CreateBuilder::new()
        .with_log_store(created.log_store())
        .with_table_name(table_name)
        .with_columns(delta_fields(columns))
        .with_partition_columns([PARTITION_COLUMN])
        .with_save_mode(SaveMode::ErrorIfExists)
        // no retry: a create that lost the race must not land as a second metadata commit
        .with_commit_properties(commit_metadata(attempt, period, "create").with_max_retries(0))
        .await;
    match create {
        Ok(t) => Ok(t),
        Err(e) => match open(loc, None).await? {
            Some(t) => Ok(t), // created by a run of another period meanwhile
            None => Err(delta_error(loc, "creating the Delta table", e)),
        },
    }
}

/// Replaces `period` of the Delta table at `loc` with `files` (already copied into
/// `period=P/`) in one commit (creating the table first if there is none). Returns the version
/// committed.
pub async fn replace_period(
    loc: &Location,
    table_name: &str,
    columns: &[(String, ColumnType)],
    period: &str,
    files: &[NewFile],
    attempt: &Attempt,
    definition: &str,
) -> Result<i64> {
    let now = chrono::Utc::now().timestamp_millis();
    let adds: Vec<Action> = files
        .iter()
        .map(|f| {
            Action::Add(Add {
                path: format!("{PARTITION_COLUMN}={period}/{}", f.name),
                partition_values: HashMap::from([(
                    PARTITION_COLUMN.to_string(),
                    Some(period.to_string()),
                )]),
                size: f.size as i64,
                modification_time: now,
                data_change: true,
                stats: Some(format!("{{\"numRecords\":{}}}", f.rows)),
                ..Default::default()
            })
        })
        .collect();
    let table = create_if_absent(loc, table_name, columns, attempt, period).await?;
    check_schema(loc, table_name, &table, columns, definition)?;
    let mut actions: Vec<Action> = period_files(loc, &table, period)
        .await?
        .into_iter()
        .filter(|f| {
            !files
                .iter()
                .any(|n| f.relative.ends_with(&format!("/{}", n.name)))
        })
        .map(|f| Action::Remove(file_view_remove(&f)))
        .collect();
    actions.extend(adds);
    commit(loc, &table, actions, attempt, period, "publish").await
}

fn file_view_remove(f: &DeltaFile) -> deltalake::kernel::Remove {
    deltalake::kernel::Remove {
        path: f.add.path.clone(),
        data_change: true,
        deletion_timestamp: Some(chrono::Utc::now().timestamp_millis()),
        extended_file_metadata: Some(true),
        partition_values: Some(f.add.partition_values.clone()),
        size: Some(f.add.size),
        tags: f.add.tags.clone(),
        deletion_vector: f.add.deletion_vector.clone(),
        base_row_id: f.add.base_row_id,
        default_row_commit_version: f.add.default_row_commit_version,
    }
}

async fn commit(
    loc: &Location,
    table: &DeltaTable,
    actions: Vec<Action>,
    attempt: &Attempt,
    period: &str,
    what: &str,
) -> Result<i64> {
    let snapshot = table
        .snapshot()
        .map_err(|e| delta_error(loc, "reading the table", e))?;
    let committed = CommitBuilder::from(commit_metadata(attempt, period, what))
        .with_actions(actions)
        .build(Some(snapshot), table.log_store(), overwrite(period))
        .await
        .map_err(|e| delta_error(loc, &format!("committing period {period}"), e))?;
    Ok(committed.version() as i64)
}

/// Gives `period` of the Delta table at `loc` back the files it had at `base` (None: the table
/// did not exist, so the period had no files), with one commit, if anything differs. Holding
/// the period's lock, any change to the period since `base` is the interrupted publish's.
/// Returns the version committed, if one was.
pub async fn restore_period(
    loc: &Location,
    period: &str,
    base: Option<i64>,
    attempt: &Attempt,
) -> Result<Option<i64>> {
    let Some(table) = open(loc, None).await? else {
        return Ok(None);
    };
    let current = period_files(loc, &table, period).await?;
    let before = match base {
        Some(v) if v >= 0 => match open(loc, Some(v)).await? {
            Some(old) => period_files(loc, &old, period).await?,
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    let same = current.len() == before.len()
        && current
            .iter()
            .zip(&before)
            .all(|(a, b)| a.relative == b.relative);
    if same {
        return Ok(None);
    }
    let mut actions: Vec<Action> = current
        .iter()
        .filter(|c| !before.iter().any(|b| b.relative == c.relative))
        .map(|c| Action::Remove(file_view_remove(c)))
        .collect();
    actions.extend(
        before
            .iter()
            .filter(|b| !current.iter().any(|c| c.relative == b.relative))
            .map(|b| {
                let mut add = b.add.clone();
                add.data_change = true;
                Action::Add(add)
            }),
    );
    commit(loc, &table, actions, attempt, period, "rollback")
        .await
        .map(Some)
}

/// What a vacuum of one table did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Vacuumed {
    /// The table.
    pub table: String,
    /// Files deleted (or, on a dry run, that would be).
    pub files_deleted: usize,
    /// Version the table was at.
    pub version: i64,
}

/// Deletes the files of the Delta table at `loc` that no version newer than `retention_hours`
/// references (Delta's VACUUM; readers of those older versions can no longer time travel to
/// them). A no-op for a location without a Delta table.
pub async fn vacuum(
    loc: &Location,
    table_name: &str,
    retention_hours: u64,
    dry_run: bool,
    enforce_retention: bool,
) -> Result<Option<Vacuumed>> {
    let Some(table) = open(loc, None).await? else {
        return Ok(None);
    };
    let v = version(&table);
    let (_, metrics) = table
        .vacuum()
        .with_retention_period(chrono::Duration::hours(retention_hours as i64))
        .with_enforce_retention_duration(enforce_retention)
        .with_dry_run(dry_run)
        .await
        .map_err(|e| delta_error(loc, "vacuuming the table", e))?;
    Ok(Some(Vacuumed {
        table: table_name.to_string(),
        files_deleted: metrics.files_deleted.len(),
        version: v,
    }))
}

/// Copies (object stores) or moves (local filesystem) staged files into the table's
/// `period=P/` folder, where they stay invisible to Delta readers until a commit references
/// them; returns each file with its size.
pub async fn bring_in(
    from: &Location,
    to: &Location,
    files: &[String],
    rows: &[u64],
) -> Result<Vec<NewFile>> {
    let store = to.store();
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let (src, dst) = (from.path_of(f), to.path_of(f));
        if to.is_local() {
            let (s, d) = (
                super::swap::local_path(from)?.join(f),
                super::swap::local_path(to)?.join(f),
            );
            if let Some(parent) = d.parent() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    Error::storage(parent.display(), format!("creating a folder: {e}"))
                })?;
            }
            // a retry after a crash finds it moved already
            if s.exists() {
                std::fs::rename(&s, &d).map_err(|e| {
                    Error::storage(d.display(), format!("moving a file into the table: {e}"))
                })?;
            }
        } else {
            store.copy(&src, &dst).await.at(to.join(f))?;
        }
        let size = store.head(&dst).await.at(to.join(f))?.size;
        out.push(NewFile {
            name: f.clone(),
            size,
            rows: rows.get(i).copied().unwrap_or(0),
        });
    }
    Ok(out)
}

/// Deletes files a publish brought into a partition that no version kept (after a rollback).
pub async fn remove_brought(to: &Location, files: &[String]) -> Result<()> {
    let store = to.store();
    for f in files {
        match store.delete(&to.path_of(f)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(Error::store(to.join(f), e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::{contract_schema, write_parquet};
    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};

    fn columns() -> Vec<(String, ColumnType)> {
        vec![
            ("customer_id".into(), ColumnType::String),
            ("orders".into(), ColumnType::Int64),
        ]
    }

    /// Writes one file of `rows` rows by `run` into the table's `period=P/`.
    async fn file(table: &Location, period: &str, run: &str, rows: i64) -> NewFile {
        let schema = contract_schema(&columns());
        let ids: Vec<String> = (0..rows).map(|i| format!("C{i}")).collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(ids)),
                Arc::new(Int64Array::from_iter_values(0..rows)),
                Arc::new(StringArray::from(vec![run; rows as usize])),
            ],
        )
        .unwrap();
        let name = format!("part-{run}-00000.parquet");
        let part = table.join(&format!("period={period}"));
        write_parquet(&part, &part.path_of(&name), &[batch], schema)
            .await
            .unwrap();
        let size = part.store().head(&part.path_of(&name)).await.unwrap().size;
        NewFile {
            name,
            size,
            rows: rows as u64,
        }
    }

    async fn names(table: &Location, period: &str, version: Option<i64>) -> Vec<String> {
        let t = open(table, version).await.unwrap().unwrap();
        period_files(table, &t, period)
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.relative)
            .collect()
    }

    #[tokio::test]
    async fn a_period_is_replaced_by_one_commit_and_restored_by_another() {
        let tmp = tempfile::tempdir().unwrap();
        let table = Location::parse(&tmp.path().join("t").display().to_string()).unwrap();
        let (a1, a2) = (Attempt::first("r1"), Attempt::first("r2"));
        assert!(!exists(&table).await.unwrap());
        let f = file(&table, "2024-05", "r1", 3).await;
        let v = replace_period(&table, "t", &columns(), "2024-05", &[f], &a1, "p.yaml")
            .await
            .unwrap();
        assert_eq!(
            v, 1,
            "the first publish creates the table (version 0), then commits"
        );
        let g = file(&table, "2024-06", "r1", 2).await;
        let v = replace_period(&table, "t", &columns(), "2024-06", &[g], &a1, "p.yaml")
            .await
            .unwrap();
        assert_eq!(v, 2);
        // a rerun of 2024-06 replaces its file, 2024-05 untouched
        let h = file(&table, "2024-06", "r2", 4).await;
        let v = replace_period(&table, "t", &columns(), "2024-06", &[h], &a2, "p.yaml")
            .await
            .unwrap();
        assert_eq!(v, 3);
        assert_eq!(
            names(&table, "2024-06", None).await,
            ["period=2024-06/part-r2-00000.parquet"]
        );
        assert_eq!(
            names(&table, "2024-05", None).await,
            ["period=2024-05/part-r1-00000.parquet"]
        );
        assert_eq!(
            names(&table, "2024-06", Some(2)).await,
            ["period=2024-06/part-r1-00000.parquet"],
            "time travel"
        );
        let t = open(&table, None).await.unwrap().unwrap();
        assert_eq!(periods(&table, &t).await.unwrap(), ["2024-05", "2024-06"]);
        // undoing the rerun: one more commit gives 2024-06 back its version-2 files
        let v = restore_period(&table, "2024-06", Some(2), &a2)
            .await
            .unwrap();
        assert_eq!(v, Some(4));
        assert_eq!(
            names(&table, "2024-06", None).await,
            ["period=2024-06/part-r1-00000.parquet"]
        );
        assert_eq!(
            restore_period(&table, "2024-06", Some(2), &a2)
                .await
                .unwrap(),
            None,
            "nothing left to undo"
        );
        // undoing a first publish of a period (base: the empty version 0) empties it
        assert_eq!(
            restore_period(&table, "2024-05", Some(0), &a1)
                .await
                .unwrap(),
            Some(5)
        );
        assert!(names(&table, "2024-05", None).await.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_runs_creating_a_table_at_once_make_one_create_commit() {
        let tmp = tempfile::tempdir().unwrap();
        for i in 0..10 {
            let table =
                Location::parse(&tmp.path().join(format!("t{i}")).display().to_string()).unwrap();
            let (a, b) = (Attempt::first("a"), Attempt::first("b"));
            let cols = columns();
            let (x, y) = tokio::join!(
                create_if_absent(&table, "t", &cols, &a, "2024-05"),
                create_if_absent(&table, "t", &cols, &b, "2024-06"),
            );
            assert_eq!((version(&x.unwrap()), version(&y.unwrap())), (0, 0));
            let t = open(&table, None).await.unwrap().unwrap();
            assert_eq!(version(&t), 0, "one create commit, never a second");
        }
    }

    #[tokio::test]
    async fn a_checkpoint_is_written_at_the_default_interval() {
        let tmp = tempfile::tempdir().unwrap();
        let table = Location::parse(&tmp.path().join("t").display().to_string()).unwrap();
        let checkpoint = tmp
            .path()
            .join("t/_delta_log/00000000000000000099.checkpoint.parquet");
        for i in 1..=100 {
            let run = format!("r{i}");
            let f = file(&table, "2024-05", &run, 1).await;
            let v = replace_period(
                &table,
                "t",
                &columns(),
                "2024-05",
                &[f],
                &Attempt::first(&run),
                "p.yaml",
            )
            .await
            .unwrap();
            assert_eq!(v, i);
            assert_eq!(checkpoint.exists(), i >= 99, "version {i}");
        }
        // a reader starts from the checkpoint and still sees only the last run's file
        assert_eq!(
            names(&table, "2024-05", None).await,
            ["period=2024-05/part-r100-00000.parquet"]
        );
    }

    #[tokio::test]
    async fn a_changed_type_an_added_or_a_dropped_column_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let table = Location::parse(&tmp.path().join("t").display().to_string()).unwrap();
        let f = file(&table, "2024-05", "r1", 1).await;
        replace_period(
            &table,
            "t",
            &columns(),
            "2024-05",
            &[f],
            &Attempt::first("r1"),
            "p.yaml",
        )
        .await
        .unwrap();
        let t = open(&table, None).await.unwrap().unwrap();
        check_schema(&table, "t", &t, &columns(), "p.yaml").unwrap();
        let changed = vec![
            ("customer_id".into(), ColumnType::String),
            ("orders".into(), ColumnType::Float64),
            ("margin".into(), ColumnType::Float64),
        ];
        let e = check_schema(&table, "t", &t, &changed, "p.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`orders` would change type from long"), "{e}");
        assert!(e.contains("`margin`"), "{e}");
        let e = check_schema(&table, "t", &t, &columns()[..1], "p.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`orders` (long) of the Delta table is no longer declared"),
            "{e}"
        );
    }
}
