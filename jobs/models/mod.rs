//! Step 3: the models computed in Rust over the per-customer tables the SQL stages produce.
//!
//! A model names the tables it reads and writes, so the planner orders it among the SQL stages
//! (a mart may read a model's output). Models run on the driver over collected Arrow batches;
//! per-customer scoring is parallel (rayon) over columnar slices. Adding a segmentation scheme
//! is adding one module with an `assign` function, one config block, and one line in
//! [`segments::SegmentsModel::new`].

pub mod clv;
pub mod customer_value;
pub mod positioning;
pub mod segments;
pub mod table;

use std::collections::BTreeMap;

use datafusion::arrow::array::RecordBatch;

use crate::config::ModelsConfig;
use crate::error::Result;
use crate::stages::graph::ModelNode;

/// What a model is given: its input tables, collected.
pub struct ModelInputs {
    /// Input tables by name.
    pub tables: BTreeMap<String, Vec<RecordBatch>>,
}

impl ModelInputs {
    /// The batches of an input table (empty when the table has no rows).
    pub fn table(&self, name: &str) -> &[RecordBatch] {
        self.tables.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// What a model produces: output tables and a report for the run results.
pub struct ModelOutputs {
    /// Output tables by name.
    pub tables: Vec<(String, Vec<RecordBatch>)>,
    /// Facts for the run results (fit status, cut-offs, chosen k...).
    pub report: serde_json::Value,
    /// Warnings worth surfacing (the run still succeeds).
    pub warnings: Vec<String>,
}

/// A model of the pipeline.
pub trait Model: Send + Sync {
    /// The model's name, unique among steps.
    fn name(&self) -> &'static str;
    /// Tables it reads.
    fn inputs(&self) -> Vec<&'static str>;
    /// Tables it writes.
    fn outputs(&self) -> Vec<&'static str>;
    /// Computes the outputs.
    fn run(&self, inputs: &ModelInputs) -> Result<ModelOutputs>;

    /// The planner's view of the model.
    fn node(&self) -> ModelNode {
        ModelNode {
            name: self.name().to_string(),
            inputs: self.inputs().into_iter().map(String::from).collect(),
            outputs: self.outputs().into_iter().map(String::from).collect(),
        }
    }
}

/// Every model of the pipeline, configured.
pub fn registry(cfg: &ModelsConfig) -> Vec<Box<dyn Model>> {
    vec![
        Box::new(customer_value::CustomerValueModel::new(cfg.clv.clone())),
        Box::new(segments::SegmentsModel::new(cfg)),
        Box::new(positioning::PositioningModel::new(cfg.positioning.clone())),
    ]
}
