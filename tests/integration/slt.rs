//! SQL stage tests in sqllogictest files (tests/slt/*.slt), one fresh context per file.
//!
//! Besides SQL, a file may use three directives:
//! - `LOAD raw.<source>` followed by CSV lines: lands the CSV exactly as the job would;
//! - `RUN STAGE <name>`: runs sql/**/<name>.sql with the current parameters and registers its
//!   result as `<name>` (clean rows) and `<name>__all` (with the metadata columns);
//! - `SET PARAM <name> = <value>`: sets a SQL parameter (defaults: period 2024-06).
//!
//! Regenerate expected output with `SLT_COMPLETE=1 cargo test --test integration slt`, then
//! review the diff.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use crm_pipeline::contract::SOURCES;
use crm_pipeline::extract;
use crm_pipeline::job::{Job, Overrides};
use crm_pipeline::period::{Grain, Period};
use crm_pipeline::stages::{self, SqlStage};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use sqllogictest::{DBOutput, DefaultColumnType};

use crate::common::repo_file;

#[derive(Debug)]
struct SltError(String);
impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for SltError {}

fn err(e: impl std::fmt::Display) -> SltError {
    SltError(e.to_string())
}

struct StageDb {
    ctx: SessionContext,
    stages: Vec<SqlStage>,
    params: BTreeMap<String, String>,
}

impl StageDb {
    fn new() -> Self {
        let cfg =
            Job::load(&repo_file("pipeline.yaml"), &Overrides::default()).expect("pipeline.yaml");
        let ctx =
            crm_pipeline::engine::local_session(&cfg.engine, &cfg.file()).expect("engine session");
        let catalog = ctx.catalog("datafusion").expect("catalog");
        catalog
            .register_schema("raw", Arc::new(MemorySchemaProvider::new()))
            .expect("schema");
        catalog
            .register_schema("previous", Arc::new(MemorySchemaProvider::new()))
            .expect("schema");
        for s in SOURCES {
            let t = MemTable::try_new(extract::landing_schema(s), vec![vec![]]).expect("table");
            ctx.register_table(format!("raw.{}", s.name).as_str(), Arc::new(t))
                .expect("register");
        }
        let period = Period::parse(Grain::Month, "2024-06").expect("period");
        let params = crm_pipeline::run::sql_params(&cfg, &period, &BTreeMap::new());
        let stages = stages::discover(&cfg.sql(), &params).expect("stages");
        Self {
            ctx,
            stages,
            params,
        }
    }

    fn register(
        &self,
        name: &str,
        batches: Vec<RecordBatch>,
        schema: datafusion::arrow::datatypes::SchemaRef,
    ) -> Result<(), SltError> {
        let _ = self.ctx.deregister_table(name);
        let t = MemTable::try_new(schema, vec![batches]).map_err(err)?;
        self.ctx.register_table(name, Arc::new(t)).map_err(err)?;
        Ok(())
    }

    async fn load(&mut self, rest: &str) -> Result<(), SltError> {
        let (target, csv) = rest.split_once('\n').unwrap_or((rest, ""));
        let source = target
            .trim()
            .strip_prefix("raw.")
            .ok_or_else(|| err("LOAD needs raw.<source>"))?;
        let (batches, rejected) =
            extract::land_csv_bytes(source, "inline.csv", csv.as_bytes()).map_err(err)?;
        if rejected > 0 {
            return Err(err(format!("{rejected} inline rows could not be split")));
        }
        let schema = extract::landing_schema(
            crm_pipeline::contract::source_schema(source).ok_or_else(|| err("unknown source"))?,
        );
        self.register(&format!("raw.{source}"), batches, schema)?;
        self.params.insert(format!("has_{source}"), "TRUE".into());
        Ok(())
    }

    async fn run_stage(&mut self, name: &str) -> Result<(), SltError> {
        let stage = self
            .stages
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| err(format!("no stage {name}")))?
            .clone();
        let sql =
            stages::substitute_params(&stage.template, &self.params, &stage.name, &stage.file)
                .map_err(err)?;
        let df = self.ctx.sql(&sql).await.map_err(err)?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.map_err(err)?;
        if schema.field_with_name("_reject_reason").is_ok() {
            let all = format!("{name}__all");
            self.register(&all, batches, Arc::clone(&schema))?;
            let clean = stages::clean_rows(&self.ctx, &all).await.map_err(err)?;
            let clean_schema = Arc::new(clean.schema().as_arrow().clone());
            let rows = clean.collect().await.map_err(err)?;
            self.register(name, rows, clean_schema)?;
        } else {
            self.register(name, batches, schema)?;
        }
        Ok(())
    }
}

#[async_trait]
impl sqllogictest::AsyncDB for StageDb {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let trimmed = sql.trim();
        if let Some(rest) = trimmed.strip_prefix("LOAD ") {
            self.load(rest).await?;
            return Ok(DBOutput::StatementComplete(0));
        }
        if let Some(name) = trimmed.strip_prefix("RUN STAGE ") {
            self.run_stage(name.trim()).await?;
            return Ok(DBOutput::StatementComplete(0));
        }
        if let Some(kv) = trimmed.strip_prefix("SET PARAM ") {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| err("SET PARAM name = value"))?;
            self.params.insert(k.trim().into(), v.trim().into());
            return Ok(DBOutput::StatementComplete(0));
        }
        let df = self.ctx.sql(trimmed).await.map_err(err)?;
        let ncols = df.schema().fields().len();
        let batches = df.collect().await.map_err(err)?;
        let opts = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for b in &batches {
            let fmts: Vec<ArrayFormatter> = b
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
                .collect::<Result<_, _>>()
                .map_err(err)?;
            for r in 0..b.num_rows() {
                rows.push(
                    fmts.iter()
                        .map(|f| {
                            let s = f.value(r).to_string();
                            if s.is_empty() {
                                "(empty)".to_string()
                            } else {
                                s
                            }
                        })
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; ncols],
            rows,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "crm-pipeline"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_stages_behave_as_their_slt_files_say() {
    let dir = repo_file("tests/slt");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    let complete = std::env::var("SLT_COMPLETE").is_ok();
    let mut failures = Vec::new();
    for f in files {
        let mut runner = sqllogictest::Runner::new(|| async { Ok(StageDb::new()) });
        if complete {
            runner
                .update_test_file(
                    &f,
                    " ",
                    sqllogictest::default_validator,
                    sqllogictest::default_normalizer,
                    sqllogictest::default_column_validator,
                )
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        } else if let Err(e) = runner.run_file_async(&f).await {
            failures.push(format!("{}:\n{e}", f.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
