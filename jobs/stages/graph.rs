//! The run plan: SQL stages and models ordered by the tables they read and write.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{Layer, SqlStage};
use crate::error::{Error, Result};

/// A model as the planner sees it: the tables it reads and the tables it writes.
#[derive(Debug, Clone, Serialize)]
pub struct ModelNode {
    /// Model name.
    pub name: String,
    /// Tables read.
    pub inputs: Vec<String>,
    /// Tables written.
    pub outputs: Vec<String>,
}

/// One step of the plan.
#[derive(Debug, Clone)]
pub enum Step {
    /// A SQL stage, producing the table of its name.
    Sql(SqlStage),
    /// A Rust model.
    Model(ModelNode),
}

impl Step {
    /// The step's name.
    pub fn name(&self) -> &str {
        match self {
            Step::Sql(s) => &s.name,
            Step::Model(m) => &m.name,
        }
    }

    /// The tables the step reads.
    pub fn inputs(&self) -> Vec<String> {
        match self {
            Step::Sql(s) => s.refs.iter().cloned().collect(),
            Step::Model(m) => m.inputs.clone(),
        }
    }

    /// The tables the step writes.
    pub fn outputs(&self) -> Vec<String> {
        match self {
            Step::Sql(s) => vec![s.name.clone()],
            Step::Model(m) => m.outputs.clone(),
        }
    }

    /// A short label for the plan listing.
    pub fn kind(&self) -> String {
        match self {
            Step::Sql(s) => format!(
                "sql/{}",
                serde_json::to_value(s.layer)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            ),
            Step::Model(_) => "model".into(),
        }
    }
}

/// Steps in a valid run order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Steps, each after every step it depends on.
    pub steps: Vec<Step>,
    /// For each step name, the steps it depends on.
    pub depends_on: BTreeMap<String, BTreeSet<String>>,
}

/// Orders stages and models by their references. `provided` are the tables the runner registers
/// before any step runs (`raw.<source>`, `previous.<output>`). Unknown references and cycles are
/// errors naming the stage.
pub fn plan(provided: &[String], stages: Vec<SqlStage>, models: Vec<ModelNode>) -> Result<Plan> {
    let mut steps: Vec<Step> = stages.into_iter().map(Step::Sql).collect();
    steps.extend(models.into_iter().map(Step::Model));

    let mut producer: BTreeMap<String, String> = BTreeMap::new();
    for s in &steps {
        for out in s.outputs() {
            if let Some(prev) = producer.insert(out.clone(), s.name().to_string()) {
                return Err(step_err(
                    s,
                    format!("table `{out}` is also produced by `{prev}`"),
                ));
            }
        }
    }
    let raw: BTreeSet<String> = provided
        .iter()
        .filter(|s| s.starts_with("raw."))
        .cloned()
        .collect();
    let provided: BTreeSet<&String> = provided.iter().collect();
    let mut depends_on: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in &steps {
        let mut deps = BTreeSet::new();
        for input in s.inputs() {
            if provided.contains(&input) {
                continue;
            }
            if input.starts_with("raw.") {
                return Err(step_err(
                    s,
                    format!(
                        "reads `{input}`, which is not a configured source; configured: {}",
                        raw.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            match producer.get(&input) {
                Some(p) if p == s.name() => {
                    return Err(step_err(s, format!("reads its own output `{input}`")));
                }
                Some(p) => {
                    deps.insert(p.clone());
                }
                None => {
                    return Err(step_err(
                        s,
                        format!(
                            "reads `{input}`, which no stage or model produces (sources are read as raw.<name>)"
                        ),
                    ));
                }
            }
        }
        depends_on.insert(s.name().to_string(), deps);
    }

    // Kahn's algorithm; ties broken by layer then name, so the order is stable.
    let rank = |s: &Step| match s {
        Step::Sql(q) => (q.layer as u8, s.name().to_string()),
        Step::Model(_) => (Layer::Marts as u8, s.name().to_string()),
    };
    let by_name: BTreeMap<String, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name().to_string(), i))
        .collect();
    let mut remaining: BTreeMap<String, BTreeSet<String>> = depends_on.clone();
    let mut ordered = Vec::with_capacity(steps.len());
    loop {
        let mut ready: Vec<&String> = remaining
            .iter()
            .filter(|(_, d)| d.is_empty())
            .map(|(n, _)| n)
            .collect();
        if ready.is_empty() {
            break;
        }
        ready.sort_by_key(|n| rank(&steps[by_name[*n]]));
        let next = ready[0].clone();
        remaining.remove(&next);
        for d in remaining.values_mut() {
            d.remove(&next);
        }
        ordered.push(next);
    }
    if !remaining.is_empty() {
        let cycle = find_cycle(&remaining);
        let first = &steps[by_name[&cycle[0]]];
        return Err(step_err(
            first,
            format!("dependency cycle: {}", cycle.join(" -> ")),
        ));
    }
    let mut slots: Vec<Option<Step>> = steps.into_iter().map(Some).collect();
    let steps = ordered
        .iter()
        .filter_map(|n| slots[by_name[n]].take())
        .collect();
    Ok(Plan { steps, depends_on })
}

fn find_cycle(remaining: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let start = remaining.keys().next().cloned().unwrap_or_default();
    let mut path = vec![start.clone()];
    let mut cur = start;
    loop {
        let Some(next) = remaining.get(&cur).and_then(|d| d.iter().next()).cloned() else {
            return path;
        };
        if let Some(pos) = path.iter().position(|p| *p == next) {
            let mut cycle = path[pos..].to_vec();
            cycle.push(next);
            return cycle;
        }
        path.push(next.clone());
        cur = next;
    }
}

fn step_err(s: &Step, message: String) -> Error {
    match s {
        Step::Sql(q) => Error::stage(&q.name, q.file.display(), message),
        Step::Model(m) => Error::Model {
            model: m.name.clone(),
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn stage(name: &str, layer: Layer, refs: &[&str]) -> SqlStage {
        SqlStage {
            name: name.into(),
            layer,
            file: PathBuf::from(format!("{name}.sql")),
            template: String::new(),
            refs: refs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn order_follows_references_not_names() {
        let p = plan(
            &["raw.orders".into()],
            vec![
                stage("a_mart", Layer::Marts, &["int_b"]),
                stage("int_b", Layer::Intermediate, &["stg_orders"]),
                stage("stg_orders", Layer::Staging, &["raw.orders"]),
            ],
            vec![ModelNode {
                name: "m".into(),
                inputs: vec!["a_mart".into()],
                outputs: vec!["t".into()],
            }],
        )
        .unwrap();
        let names: Vec<&str> = p.steps.iter().map(|s| s.name()).collect();
        assert_eq!(names, vec!["stg_orders", "int_b", "a_mart", "m"]);
    }

    #[test]
    fn cycles_and_unknown_names_are_named() {
        let e = plan(
            &[],
            vec![
                stage("int_a", Layer::Intermediate, &["int_b"]),
                stage("int_b", Layer::Intermediate, &["int_a"]),
            ],
            vec![],
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("dependency cycle: int_a -> int_b -> int_a"),
            "{e}"
        );
        let e = plan(
            &[],
            vec![stage("int_a", Layer::Intermediate, &["int_nope"])],
            vec![],
        )
        .unwrap_err();
        assert!(e.to_string().contains("reads `int_nope`"), "{e}");
        let e = plan(
            &["raw.orders".into()],
            vec![stage("s", Layer::Staging, &["raw.ordrs"])],
            vec![],
        )
        .unwrap_err();
        assert!(e.to_string().contains("raw.ordrs"), "{e}");
    }
}
