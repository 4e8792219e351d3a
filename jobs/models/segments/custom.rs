//! User-defined schemes (`models.custom_schemes`): a company's own segment definitions, next to
//! the built-in ones and treated like them (a label column in `customer_segments`, the
//! `unclassified_reason`, summary, positioning, migration, history and the report).
//!
//! A scheme is a name plus either
//! - `column`: a categorical column of the segmentation inputs (`customer_features` with the
//!   customer's predicted value: `clv`, `p_alive`, `clv_decile`, ...); each value is a segment, or
//! - `rules`: an ordered list of `label: SQL boolean expression` over the same columns; the first
//!   rule that is true labels the customer (a rule that is null counts as false),
//!
//! and `fallback`, the label of a customer no rule matches (or whose column is null); without a
//! fallback such a customer is `unclassified`, with the reason. The expressions are DataFusion SQL,
//! parsed and type-checked against the inputs' schema when the model runs, which `validate` does on
//! the planned (empty) inputs; a typo is a configuration error naming the scheme and the rule.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::DFSchema;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;
use serde::Deserialize;

use super::{CustomerView, SCHEMES, SchemeOutput, UNCLASSIFIED};
use crate::error::{Error, Result};

/// The configuration key of the custom schemes, in errors.
pub const KEY: &str = "models.custom_schemes";

/// The `customer_segments` column of the user-defined scheme `name`.
pub fn label_column(name: &str) -> String {
    format!("{name}_segment")
}

/// One user-defined scheme.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomScheme {
    /// The scheme's name in `segment_summary.scheme` (lowercase letters, digits, `_`); its labels
    /// are in `customer_segments.<name>_segment`.
    pub name: String,
    /// A categorical input column whose values are the segments.
    #[serde(default)]
    pub column: Option<String>,
    /// Ordered `label: SQL boolean expression` rules, first match wins.
    #[serde(default)]
    pub rules: Vec<std::collections::BTreeMap<String, String>>,
    /// The label when no rule matches (or the column is null); absent: `unclassified`.
    #[serde(default)]
    pub fallback: Option<String>,
}

impl CustomScheme {
    /// The `customer_segments` column holding the scheme's labels.
    pub fn label_column(&self) -> String {
        label_column(&self.name)
    }

    /// The rules in order, as (label, expression).
    fn rule_list(&self) -> Vec<(&str, &str)> {
        self.rules
            .iter()
            .flat_map(|r| r.iter().map(|(l, e)| (l.as_str(), e.as_str())))
            .collect()
    }
}

/// Checks the schemes' shape (names, one of column or rules, one label per rule); the
/// expressions are checked against the inputs by [`compile`].
pub fn validate(schemes: &[CustomScheme]) -> std::result::Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, s) in schemes.iter().enumerate() {
        let at = format!("[{i}] (`{}`)", s.name);
        let ok_name = s
            .name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase())
            && s.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok_name {
            return Err(format!(
                "{at}: a scheme name is lowercase letters, digits and '_', starting with a letter"
            ));
        }
        if SCHEMES
            .iter()
            .any(|b| b.name == s.name || b.label_column == s.label_column())
            || !seen.insert(s.name.clone())
        {
            return Err(format!("{at}: the name is already used by another scheme"));
        }
        match (&s.column, s.rules.is_empty()) {
            (Some(_), false) => {
                return Err(format!("{at}: give either `column` or `rules`, not both"));
            }
            (None, true) => {
                return Err(format!(
                    "{at}: give `column` (a categorical input) or `rules`"
                ));
            }
            _ => {}
        }
        for (j, r) in s.rules.iter().enumerate() {
            if r.len() != 1 {
                return Err(format!(
                    "{at}: rules[{j}] must be one `label: expression` pair, got {} entries",
                    r.len()
                ));
            }
            let (label, expr) = r.iter().next().expect("one entry");
            if label.trim().is_empty() || expr.trim().is_empty() {
                return Err(format!("{at}: rules[{j}] needs a label and an expression"));
            }
            if label == UNCLASSIFIED {
                return Err(format!(
                    "{at}: `{UNCLASSIFIED}` is reserved for customers no scheme can label"
                ));
            }
        }
        if s.fallback.as_deref().is_some_and(|f| f.trim().is_empty()) {
            return Err(format!("{at}: fallback must not be empty"));
        }
    }
    Ok(())
}

/// A scheme ready to label: its column cast to text, or its rules as physical expressions.
enum Compiled {
    Column(String),
    Rules(Vec<(String, Arc<dyn PhysicalExpr>)>),
}

/// Parses and type-checks every rule of `scheme` against the inputs' schema. An error names
/// the scheme and the rule (the caller reports it as a configuration error at [`KEY`]).
fn compile(scheme: &CustomScheme, schema: &Schema) -> std::result::Result<Compiled, String> {
    let at = format!("scheme `{}`", scheme.name);
    if let Some(col) = &scheme.column {
        if schema.column_with_name(col).is_none() {
            return Err(format!(
                "{at}: `column: {col}` is not an input column; the inputs are customer_features with clv, p_alive, expected_purchases, clv_decile and clv_method"
            ));
        }
        return Ok(Compiled::Column(col.clone()));
    }
    let ctx = SessionContext::new();
    let df_schema = DFSchema::try_from(schema.clone()).map_err(|e| format!("{at}: {e}"))?;
    let mut out = Vec::new();
    for (label, sql) in scheme.rule_list() {
        let rule = format!("{at}, rule `{label}: {sql}`");
        let expr = ctx
            .parse_sql_expr(sql, &df_schema)
            .map_err(|e| format!("{rule}: {}", root_message(&e)))?;
        let phys = ctx
            .create_physical_expr(expr, &df_schema)
            .map_err(|e| format!("{rule}: {}", root_message(&e)))?;
        let ty = phys
            .data_type(schema)
            .map_err(|e| format!("{rule}: {}", root_message(&e)))?;
        if ty != DataType::Boolean {
            return Err(format!(
                "{rule}: the expression is {ty}, not a true/false condition"
            ));
        }
        out.push((label.to_string(), phys));
    }
    Ok(Compiled::Rules(out))
}

fn root_message(e: &datafusion::error::DataFusionError) -> String {
    e.find_root().to_string()
}

/// Labels every customer of `view` by `scheme`.
pub fn assign(scheme: &CustomScheme, view: &CustomerView) -> Result<SchemeOutput> {
    let batch = view.batch();
    let config_err = |message: String| Error::ModelConfig {
        key: KEY.to_string(),
        message,
    };
    let compiled = compile(scheme, batch.schema().as_ref()).map_err(config_err)?;
    let n = view.len();
    let mut labels: Vec<Option<String>> = vec![None; n];
    let mut counts: Vec<(String, u64)> = Vec::new();
    match &compiled {
        Compiled::Column(col) => {
            let values = batch
                .column_by_name(col)
                .map(|a| cast(a, &DataType::Utf8))
                .transpose()
                .map_err(|e| Error::Model {
                    model: "segments".into(),
                    message: format!("scheme `{}`: column `{col}` as text: {e}", scheme.name),
                })?
                .ok_or_else(|| {
                    config_err(format!("scheme `{}`: no column `{col}`", scheme.name))
                })?;
            let values = values.as_string::<i32>();
            for (i, l) in labels.iter_mut().enumerate() {
                if values.is_valid(i) && !values.value(i).trim().is_empty() {
                    *l = Some(values.value(i).to_string());
                }
            }
        }
        Compiled::Rules(rules) => {
            for (label, phys) in rules {
                let value = phys
                    .evaluate(batch)
                    .and_then(|v| v.into_array(n))
                    .map_err(|e| Error::Model {
                        model: "segments".into(),
                        message: format!(
                            "scheme `{}`, rule `{label}`: {}",
                            scheme.name,
                            root_message(&e)
                        ),
                    })?;
                let hit: &BooleanArray = value.as_boolean();
                let mut matched = 0u64;
                for (i, l) in labels.iter_mut().enumerate() {
                    if l.is_none() && hit.is_valid(i) && hit.value(i) {
                        *l = Some(label.clone());
                        matched += 1;
                    }
                }
                counts.push((label.clone(), matched));
            }
        }
    }
    let fallback = scheme.fallback.clone();
    let unmatched = labels.iter().filter(|l| l.is_none()).count();
    let labels: Vec<String> = labels
        .into_iter()
        .map(|l| {
            l.or_else(|| fallback.clone())
                .unwrap_or_else(|| UNCLASSIFIED.to_string())
        })
        .collect();
    let mut out = SchemeOutput::new(&scheme.name);
    out.why_unclassified = match &compiled {
        Compiled::Column(col) => format!("no {col}"),
        Compiled::Rules(_) => "no rule matched".into(),
    };
    out.report = serde_json::json!({
        "custom": true,
        "column": scheme.column,
        "customers_by_rule": counts
            .into_iter()
            .map(|(label, n)| (label, n.into()))
            .collect::<serde_json::Map<String, serde_json::Value>>(),
        "no_match": unmatched,
        "fallback": scheme.fallback,
    });
    out.set_label(&scheme.label_column(), labels);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::table::Table;
    use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::Field;

    fn labels(out: &SchemeOutput) -> Vec<&str> {
        (0..out.labels.len()).map(|i| out.label(i)).collect()
    }

    fn view() -> CustomerView {
        let schema = Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Utf8, false),
            Field::new("orders", DataType::Int64, true),
            Field::new("region", DataType::Utf8, true),
            Field::new("age_band", DataType::Utf8, true),
            Field::new("gender", DataType::Utf8, true),
            Field::new("clv", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
                Arc::new(Int64Array::from(vec![Some(3), Some(1), None, Some(2)])),
                Arc::new(StringArray::from(vec![
                    Some("north"),
                    None,
                    Some("south"),
                    Some("north"),
                ])),
                Arc::new(StringArray::from(vec![
                    Some("18-24"),
                    Some("45-54"),
                    None,
                    Some("25-34"),
                ])),
                Arc::new(StringArray::from(vec![
                    Some("F"),
                    Some("M"),
                    Some("F"),
                    Some("M"),
                ])),
                Arc::new(Float64Array::from(vec![
                    Some(500.0),
                    Some(20.0),
                    None,
                    Some(90.0),
                ])),
            ],
        )
        .unwrap();
        CustomerView::new(Table::new("segment_inputs", &[batch]).unwrap()).unwrap()
    }

    fn rules(pairs: &[(&str, &str)]) -> Vec<std::collections::BTreeMap<String, String>> {
        pairs
            .iter()
            .map(|(l, e)| [(l.to_string(), e.to_string())].into_iter().collect())
            .collect()
    }

    #[test]
    fn a_column_scheme_labels_by_value_and_falls_back_on_null() {
        let s = CustomScheme {
            name: "region".into(),
            column: Some("region".into()),
            rules: vec![],
            fallback: Some("unknown region".into()),
        };
        let out = assign(&s, &view()).unwrap();
        assert_eq!(out.label_column, "region_segment");
        assert_eq!(labels(&out), ["north", "unknown region", "south", "north"]);
    }

    #[test]
    fn rules_match_first_wins_nulls_are_false_and_no_fallback_is_unclassified() {
        let s = CustomScheme {
            name: "demo".into(),
            column: None,
            rules: rules(&[
                (
                    "young women",
                    "age_band IN ('18-24', '25-34') AND gender = 'F'",
                ),
                ("young", "age_band IN ('18-24', '25-34')"),
                ("valuable", "clv > 50"),
            ]),
            fallback: None,
        };
        let out = assign(&s, &view()).unwrap();
        assert_eq!(
            labels(&out),
            ["young women", UNCLASSIFIED, UNCLASSIFIED, "young"]
        );
        assert_eq!(out.why_unclassified, "no rule matched");
        assert_eq!(out.report["customers_by_rule"]["young women"], 1);
        assert_eq!(out.report["customers_by_rule"]["valuable"], 0);
    }

    #[test]
    fn a_typo_or_a_non_boolean_rule_is_a_configuration_error_naming_scheme_and_rule() {
        let schema = view().batch().schema();
        let typo = CustomScheme {
            name: "demo".into(),
            column: None,
            rules: rules(&[("young", "agee_band = '18-24'")]),
            fallback: None,
        };
        let e = compile(&typo, &schema).err().unwrap();
        assert!(
            e.contains("scheme `demo`") && e.contains("rule `young"),
            "{e}"
        );
        assert!(e.contains("agee_band"), "{e}");
        let number = CustomScheme {
            rules: rules(&[("big", "clv * 2")]),
            ..typo.clone()
        };
        let e = compile(&number, &schema).err().unwrap();
        assert!(e.contains("not a true/false condition"), "{e}");
        let err = assign(&typo, &view()).err().unwrap();
        assert!(matches!(err, Error::ModelConfig { .. }), "{err}");
        assert_eq!(err.exit_code(), crate::error::exit_code::CONFIG);
    }

    #[test]
    fn shapes_are_checked() {
        let base = CustomScheme {
            name: "region".into(),
            column: Some("region".into()),
            rules: vec![],
            fallback: None,
        };
        assert!(validate(std::slice::from_ref(&base)).is_ok());
        assert!(
            validate(&[base.clone(), base.clone()]).is_err(),
            "duplicate names"
        );
        let builtin = CustomScheme {
            name: "rfm".into(),
            ..base.clone()
        };
        assert!(validate(&[builtin]).is_err(), "a built-in name");
        let both = CustomScheme {
            rules: rules(&[("x", "true")]),
            ..base.clone()
        };
        assert!(validate(&[both]).is_err());
        let bad = CustomScheme {
            name: "Region-1".into(),
            ..base
        };
        assert!(validate(&[bad]).is_err());
    }
}
