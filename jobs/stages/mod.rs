//! Step 2: the SQL stages, in dbt's layering (`sql/staging/stg_*.sql`,
//! `sql/intermediate/int_*.sql`, `sql/marts/*.sql`), one SELECT per file.
//!
//! A stage refers to extracts as `raw.<source>` and to other stages and model outputs by name;
//! the run order is derived from those references (never from file order), and a cycle or an
//! unknown name is an error that names it. SQL takes the period as parameters (`${as_of}`,
//! `${period_start}`, `${period_end}`, `${period}`, ...) plus the values under `stages.params`;
//! every parameter is replaced by one typed SQL literal ([`literal`]: `${as_of}` is
//! `DATE '2024-06-30'`, a string is quoted and escaped), so write `WHERE d <= ${as_of}`, never
//! `'${as_of}'`.
//!
//! A staging stage may output three metadata columns that the runner strips: `_reject_reason`
//! (non-null rows go to quarantine with that reason), `_notes` (comma-separated normalisations,
//! counted in the run results), and `_source_file` / `_row_number` (where the row came from).

pub mod graph;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use datafusion::sql::sqlparser::ast::{ObjectName, Query, Statement, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{Error, Result};

/// SQL stage settings (`stages:` in pipeline.yaml).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StagesConfig {
    /// Folder holding `staging/`, `intermediate/` and `marts/` (relative to pipeline.yaml).
    pub dir: String,
    /// Values substituted for `${name}` in SQL (besides the built-in period variables).
    pub params: BTreeMap<String, serde_yaml_ng::Value>,
}

impl Default for StagesConfig {
    fn default() -> Self {
        Self {
            dir: "sql".into(),
            params: BTreeMap::new(),
        }
    }
}

impl StagesConfig {
    /// Checks the parameters: built-in names are reserved, names are identifiers, values are
    /// scalars. Errors name the key.
    pub fn validate(&self) -> std::result::Result<(), (String, String)> {
        for (k, v) in &self.params {
            let key = format!("stages.params.{k}");
            if is_built_in_param(k) {
                return Err((
                    key,
                    format!(
                        "`{k}` is a built-in parameter set by the run from its period and sources; choose another name"
                    ),
                ));
            }
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err((
                    key,
                    "a parameter name uses letters, digits and `_` only".into(),
                ));
            }
            literal(v).map_err(|m| (key, m))?;
        }
        Ok(())
    }
}

/// The dbt layer a stage belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// `sql/staging/`: rename, type and clean one extract.
    Staging,
    /// `sql/intermediate/`: integrate one profile per customer.
    Intermediate,
    /// `sql/marts/`: the published tables and the models' inputs.
    Marts,
}

/// One SQL stage.
#[derive(Debug, Clone)]
pub struct SqlStage {
    /// The stage name: the file stem, also its table name.
    pub name: String,
    /// Its layer.
    pub layer: Layer,
    /// The file it was read from.
    pub file: PathBuf,
    /// The SQL text with `${...}` parameters not yet substituted.
    pub template: String,
    /// Names the stage reads: `raw.<source>`, other stages, model outputs.
    pub refs: BTreeSet<String>,
}

/// Where a job's SQL stages come from: a folder with `staging/`, `intermediate/` and `marts/`,
/// or the SQL compiled into the binary ([`crate::builtin`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlSource {
    /// A folder on the local filesystem.
    Dir(PathBuf),
    /// The built-in job's SQL.
    BuiltIn,
}

impl SqlSource {
    /// Every `.sql` file of the layers, as (layer, file name for messages, text), sorted.
    fn files(&self) -> Result<Vec<(Layer, PathBuf, String)>> {
        let layers = [
            ("staging", Layer::Staging),
            ("intermediate", Layer::Intermediate),
            ("marts", Layer::Marts),
        ];
        let mut out = Vec::new();
        match self {
            SqlSource::BuiltIn => {
                for (rel, text) in crate::builtin::SQL {
                    let Some((sub, _)) = rel.split_once('/') else {
                        continue;
                    };
                    if let Some((_, layer)) = layers.iter().find(|(n, _)| *n == sub) {
                        let file = Path::new("<built-in>/sql").join(rel);
                        out.push((*layer, file, text.to_string()));
                    }
                }
            }
            SqlSource::Dir(dir) => {
                for (sub, layer) in layers {
                    let folder = dir.join(sub);
                    let mut files: Vec<PathBuf> = match std::fs::read_dir(&folder) {
                        Ok(rd) => rd
                            .filter_map(|e| e.ok().map(|e| e.path()))
                            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                            .collect(),
                        Err(_) => continue,
                    };
                    files.sort();
                    for file in files {
                        let name = file
                            .file_stem()
                            .and_then(|s| s.to_str())
                            .unwrap_or("")
                            .to_string();
                        let text = std::fs::read_to_string(&file)
                            .map_err(|e| stage_err(&name, &file, format!("cannot read: {e}")))?;
                        out.push((layer, file, text));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The source as people see it in messages.
    pub fn describe(&self) -> String {
        match self {
            SqlSource::Dir(d) => d.display().to_string(),
            SqlSource::BuiltIn => "the built-in job's SQL".into(),
        }
    }
}

/// Reads every stage of `source`; `params` are the parameter values used to parse them (any
/// valid values will do: only the shape matters here).
pub fn discover(source: &SqlSource, params: &BTreeMap<String, String>) -> Result<Vec<SqlStage>> {
    let mut out = Vec::new();
    for (layer, file, template) in source.files()? {
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string();
        let sql = substitute_params(&template, params, &name, &file)?;
        let refs = references(&sql).map_err(|m| stage_err(&name, &file, m))?;
        out.push(SqlStage {
            name,
            layer,
            file,
            template,
            refs,
        });
    }
    if out.is_empty() {
        return Err(Error::config(
            source.describe(),
            "no SQL stages found; expected .sql files under staging/, intermediate/ and marts/",
        ));
    }
    let mut seen = BTreeMap::new();
    for s in &out {
        if let Some(prev) = seen.insert(s.name.clone(), s.file.clone()) {
            return Err(stage_err(
                &s.name,
                &s.file,
                format!("a stage of the same name exists in {}", prev.display()),
            ));
        }
    }
    Ok(out)
}

fn stage_err(name: &str, file: &Path, message: impl std::fmt::Display) -> Error {
    Error::stage(name, file.display(), message)
}

/// The built-in SQL parameters (set by the run from its period and sources; `has_<source>` as
/// well). A `stages.params` entry may not reuse one of these names.
pub const BUILT_IN_PARAMS: &[&str] = &[
    "as_of",
    "period_start",
    "period_end",
    "period",
    "previous_period_start",
    "previous_period_end",
    "holdout_days",
    "calibration_end",
];

/// Whether `name` is a built-in parameter (`has_<source>` included).
pub fn is_built_in_param(name: &str) -> bool {
    BUILT_IN_PARAMS.contains(&name) || name.starts_with("has_")
}

/// A text value as a SQL string literal (single quotes doubled).
pub fn string_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A `stages.params` value as one typed SQL literal: a number (finite), a boolean
/// (`TRUE`/`FALSE`) or a quoted, escaped string. Lists and maps are refused.
pub fn literal(value: &serde_yaml_ng::Value) -> std::result::Result<String, String> {
    use serde_yaml_ng::Value;
    match value {
        Value::Bool(b) => Ok(if *b { "TRUE" } else { "FALSE" }.into()),
        Value::Number(n) => {
            let text = n.to_string();
            match n.as_f64() {
                Some(f) if f.is_finite() => Ok(text),
                _ => Err(format!("`{text}` is not a finite number")),
            }
        }
        Value::String(s) => Ok(string_literal(s)),
        Value::Null => Ok("NULL".into()),
        Value::Tagged(t) => literal(&t.value),
        Value::Sequence(_) | Value::Mapping(_) => Err(
            "must be a number, a boolean or a string (lists and maps cannot be SQL literals)"
                .into(),
        ),
    }
}

#[cfg(test)]
fn placeholder_params() -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    for k in ["as_of", "period_start", "period_end"] {
        p.insert(k.to_string(), "DATE '2000-01-01'".to_string());
    }
    p.insert("period".into(), "'2000-01'".into());
    p
}

/// Substitutes `${name}` parameters; an unknown one is an error naming the line.
pub fn substitute_params(
    template: &str,
    params: &BTreeMap<String, String>,
    stage: &str,
    file: &Path,
) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    for (i, line) in template.lines().enumerate() {
        let replaced = crate::template::substitute(line, |name| {
            params.get(name).cloned().ok_or_else(|| {
                format!(
                    "line {}: unknown parameter `${{{name}}}`; built-ins are as_of, period_start, period_end, period, previous_period_start, previous_period_end, calibration_end, holdout_days and has_<source>; add others under `stages.params` in pipeline.yaml",
                    i + 1
                )
            })
        })
        .map_err(|m| stage_err(stage, file, m))?;
        out.push_str(&replaced);
        out.push('\n');
    }
    Ok(out)
}

/// The clean rows of a staging stage whose full output (metadata columns included) is registered
/// as `all`: rows without a `_reject_reason`, without the `_`-prefixed columns.
pub async fn clean_rows(
    ctx: &datafusion::prelude::SessionContext,
    all: &str,
) -> datafusion::error::Result<datafusion::dataframe::DataFrame> {
    use datafusion::prelude::col;
    let df = ctx.table(all).await?;
    let keep: Vec<_> = df
        .schema()
        .fields()
        .iter()
        .filter(|f| !f.name().starts_with('_'))
        .map(|f| col(format!("\"{}\"", f.name())))
        .collect();
    df.filter(col("_reject_reason").is_null())?.select(keep)
}

#[derive(Default)]
struct RefCollector {
    relations: BTreeSet<String>,
    ctes: BTreeSet<String>,
}

impl Visitor for RefCollector {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Self::Break> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.to_lowercase());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<Self::Break> {
        let name = relation.to_string().replace('"', "").to_lowercase();
        self.relations.insert(name);
        ControlFlow::Continue(())
    }
}

/// The tables a SELECT reads (CTE names excluded). Exactly one statement, a query, is allowed.
pub fn references(sql: &str) -> std::result::Result<BTreeSet<String>, String> {
    let statements =
        Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| format!("SQL syntax error: {e}"))?;
    if statements.len() != 1 {
        return Err(format!(
            "expected exactly one SELECT statement, found {}",
            statements.len()
        ));
    }
    if !matches!(statements[0], Statement::Query(_)) {
        return Err("a stage must be a single SELECT (or WITH ... SELECT) query".into());
    }
    let mut c = RefCollector::default();
    let _ = statements.visit(&mut c);
    Ok(c.relations.difference(&c.ctes).cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_exclude_ctes_and_include_schemas() {
        let r = references(
            "WITH a AS (SELECT * FROM raw.orders), b AS (SELECT * FROM a JOIN stg_customers c ON true) \
             SELECT * FROM b WHERE x IN (SELECT y FROM int_z)",
        )
        .unwrap();
        assert_eq!(
            r.into_iter().collect::<Vec<_>>(),
            vec!["int_z", "raw.orders", "stg_customers"]
        );
    }

    #[test]
    fn only_one_select_is_allowed() {
        assert!(
            references("SELECT 1; SELECT 2")
                .unwrap_err()
                .contains("exactly one")
        );
        assert!(
            references("DROP TABLE x")
                .unwrap_err()
                .contains("single SELECT")
        );
        assert!(references("SELEC 1").unwrap_err().contains("syntax"));
    }

    #[test]
    fn unknown_parameters_name_the_line() {
        let p = placeholder_params();
        let e = substitute_params("SELECT 1\nWHERE d < '${asof}'", &p, "s", Path::new("s.sql"))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("line 2: unknown parameter `${asof}`"),
            "{e}"
        );
        let ok = substitute_params("SELECT ${as_of}", &p, "s", Path::new("s.sql")).unwrap();
        assert_eq!(ok.trim(), "SELECT DATE '2000-01-01'");
    }

    #[test]
    fn parameters_are_typed_literals_never_sql_text() {
        use serde_yaml_ng::Value;
        let v = |y: &str| serde_yaml_ng::from_str::<Value>(y).unwrap();
        assert_eq!(literal(&v("90")).unwrap(), "90");
        assert_eq!(literal(&v("0.2")).unwrap(), "0.2");
        assert_eq!(literal(&v("true")).unwrap(), "TRUE");
        assert_eq!(literal(&v("'2000-01-01'")).unwrap(), "'2000-01-01'");
        // a quote in a value stays inside its literal
        assert_eq!(
            literal(&v("\"2000-01-01' OR 1=1 --\"")).unwrap(),
            "'2000-01-01'' OR 1=1 --'"
        );
        assert!(literal(&v("[1, 2]")).is_err());
        assert!(literal(&v(".nan")).is_err());
        assert!(is_built_in_param("as_of") && is_built_in_param("has_orders"));
        assert!(!is_built_in_param("min_valid_date"));
    }
}
