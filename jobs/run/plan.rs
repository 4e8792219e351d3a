//! The run's plan: the SQL stages and models in dependency order, and the SQL parameters of a
//! period.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::extract;
use crate::job::Job;
use crate::models;
use crate::period::Period;
use crate::stages;

/// Built-in SQL parameters plus `stages.params`, each as a typed SQL literal (dates as
/// `DATE '2024-06-30'`, text quoted and escaped, numbers and booleans checked): a value is
/// bound as one literal, never spliced into the SQL as text (`stages::literal`).
pub fn sql_params(
    job: &Job,
    period: &Period,
    present: &BTreeMap<String, bool>,
) -> BTreeMap<String, String> {
    let prev = period.previous();
    let date = |d: chrono::NaiveDate| format!("DATE '{d}'");
    let mut p = BTreeMap::new();
    p.insert("as_of".into(), date(period.as_of));
    p.insert("period_start".into(), date(period.start));
    p.insert("period_end".into(), date(period.end));
    p.insert("period".into(), stages::string_literal(&period.label()));
    p.insert("previous_period_start".into(), date(prev.start));
    p.insert("previous_period_end".into(), date(prev.end));
    let holdout = job.spec.models.clv.holdout_days;
    let calibration_end = period.as_of - chrono::Duration::days(i64::from(holdout));
    p.insert("holdout_days".into(), holdout.to_string());
    p.insert("calibration_end".into(), date(calibration_end));
    for s in crate::contract::SOURCES {
        let has = present.get(s.name).copied().unwrap_or(false);
        p.insert(
            format!("has_{}", s.name),
            if has { "TRUE" } else { "FALSE" }.into(),
        );
    }
    for (k, v) in &job.spec.stages.params {
        // validated when the job definition was loaded: built-in names are reserved and every
        // value is a scalar
        if let Ok(lit) = stages::literal(v) {
            p.entry(k.clone()).or_insert(lit);
        }
    }
    p
}

/// The plan of a job definition: SQL stages and models in run order.
pub fn plan(job: &Job) -> Result<stages::graph::Plan> {
    let any_period = Period::containing(job.spec.period.grain, chrono::NaiveDate::default());
    let all_present = crate::contract::SOURCES
        .iter()
        .map(|s| (s.name.to_string(), true))
        .collect();
    let sql = stages::discover(&job.sql(), &sql_params(job, &any_period, &all_present))?;
    // the planner's view of each model: its name and the tables it reads and writes
    let models = models::registry(&job.spec.models)
        .iter()
        .map(|m| stages::graph::ModelNode {
            name: m.name().to_string(),
            inputs: m.inputs().into_iter().map(String::from).collect(),
            outputs: m.outputs().into_iter().map(String::from).collect(),
        })
        .collect();
    let mut provided: Vec<String> = crate::contract::SOURCES
        .iter()
        .map(|s| format!("raw.{}", s.name))
        .collect();
    provided.extend(job.outputs.iter().map(|o| format!("previous.{}", o.name)));
    stages::graph::plan(&provided, sql, models)
}

/// Every table a run registers, with its schema, found without reading any data: the SQL
/// stages are planned over empty extracts and the models run on empty inputs. `validate` uses
/// it to check SQL and the checks' tables and columns before any run.
pub async fn table_schemas(
    job: &Job,
) -> Result<BTreeMap<String, datafusion::arrow::datatypes::SchemaRef>> {
    use std::sync::Arc;

    use datafusion::arrow::array::RecordBatch;
    use datafusion::arrow::datatypes::Schema;
    use datafusion::catalog::MemorySchemaProvider;
    use datafusion::datasource::empty::EmptyTable;

    use crate::error::{EngineContext, Error, StageContext};
    use crate::stages::graph::Step;

    let ctx = crate::engine::local_session(&job.engine, &job.file())?;
    let catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| Error::Internal("default catalog missing".into()))?;
    for schema in ["raw", "previous"] {
        catalog
            .register_schema(schema, Arc::new(MemorySchemaProvider::new()))
            .context(|| format!("registering schema {schema}"))?;
    }
    let mut schemas = BTreeMap::new();
    let mut register = |name: &str, schema: datafusion::arrow::datatypes::SchemaRef| {
        ctx.register_table(name, Arc::new(EmptyTable::new(Arc::clone(&schema))))
            .context(|| format!("registering {name}"))?;
        schemas.insert(name.to_string(), schema);
        Ok::<_, Error>(())
    };
    for s in crate::contract::SOURCES {
        register(&format!("raw.{}", s.name), extract::landing_schema(s))?;
    }
    for out in &job.outputs {
        register(&format!("previous.{}", out.name), Arc::clone(&out.schema))?;
    }
    register("quarantine", extract::quarantine_schema())?;
    let period = Period::containing(job.spec.period.grain, chrono::NaiveDate::default());
    let all_present = crate::contract::SOURCES
        .iter()
        .map(|s| (s.name.to_string(), true))
        .collect();
    let params = sql_params(job, &period, &all_present);
    let registry = models::registry(&job.spec.models);
    for step in plan(job)?.steps {
        match step {
            Step::Sql(stage) => {
                let sql =
                    stages::substitute_params(&stage.template, &params, &stage.name, &stage.file)?;
                let df = ctx
                    .sql(&sql)
                    .await
                    .in_stage(&stage.name, stage.file.display())?;
                let schema = Arc::new(df.schema().as_arrow().clone());
                if schema.field_with_name("_reject_reason").is_ok() {
                    let clean: Vec<_> = schema
                        .fields()
                        .iter()
                        .filter(|f| !f.name().starts_with('_'))
                        .cloned()
                        .collect();
                    register(&format!("{}__all", stage.name), schema)?;
                    register(&stage.name, Arc::new(Schema::new(clean)))?;
                } else {
                    register(&stage.name, schema)?;
                }
            }
            Step::Model(node) => {
                let Some(model) = registry.iter().find(|m| m.name() == node.name) else {
                    continue;
                };
                let mut inputs = models::ModelInputs {
                    tables: BTreeMap::new(),
                    period: None,
                };
                for input in &node.inputs {
                    let schema = Arc::new(
                        ctx.table(input.as_str())
                            .await
                            .context(|| format!("model {} reading {input}", node.name))?
                            .schema()
                            .as_arrow()
                            .clone(),
                    );
                    inputs
                        .tables
                        .insert(input.clone(), vec![RecordBatch::new_empty(schema)]);
                }
                let out = model.run(&inputs).map_err(|e| job.name_file(e))?;
                for (table, batches) in out.tables {
                    if let Some(b) = batches.first() {
                        register(&table, b.schema())?;
                    }
                }
            }
        }
    }
    Ok(schemas)
}

/// Checks that every check of the job names a table the run produces and columns it has; an
/// error names the check, the table or column, and what exists.
pub fn resolve_checks(
    job: &Job,
    schemas: &BTreeMap<String, datafusion::arrow::datatypes::SchemaRef>,
) -> Result<()> {
    use crate::error::Error;
    for (i, c) in job.spec.checks.iter().enumerate() {
        let name = c.display_name();
        let err = |m: String| Error::config(job.file(), format!("`checks[{i}]` ({name}): {m}"));
        let table_schema = |t: &str| {
            schemas.get(t).ok_or_else(|| {
                let known: Vec<&str> = schemas
                    .keys()
                    .map(String::as_str)
                    .filter(|k| !k.contains('.') && !k.ends_with("__all"))
                    .collect();
                err(format!(
                    "table `{t}` is not a stage, model or output table of this job; known: {}",
                    known.join(", ")
                ))
            })
        };
        let has_column = |t: &str, col: &str| -> Result<()> {
            let s = table_schema(t)?;
            if s.field_with_name(col).is_ok() {
                return Ok(());
            }
            let cols: Vec<&str> = s.fields().iter().map(|f| f.name().as_str()).collect();
            Err(err(format!(
                "table `{t}` has no column `{col}`; its columns: {}",
                cols.join(", ")
            )))
        };
        table_schema(&c.table)?;
        for col in c.column.iter().chain(&c.columns) {
            has_column(&c.table, col)?;
        }
        if let Some((t, col)) = c.to.as_deref().and_then(|t| t.rsplit_once('.')) {
            has_column(t, col)?;
        }
    }
    Ok(())
}
