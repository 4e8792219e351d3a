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

use crate::error::Result;

/// Settings of every model; each model owns its block.
#[derive(Debug, Clone, serde::Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// RFM quintile scores and named segments.
    pub rfm: segments::rfm::RfmConfig,
    /// RFM eight classes.
    pub rfm8: segments::rfm8::Rfm8Config,
    /// Customer lifetime value.
    pub clv: customer_value::ClvConfig,
    /// Lifecycle stages.
    pub lifecycle: segments::lifecycle::LifecycleConfig,
    /// Usage-rate tiers.
    pub usage: segments::usage::UsageConfig,
    /// Value tiers and current-value classes.
    pub value_tiers: segments::value_tiers::ValueTierConfig,
    /// Preference types.
    pub preference: segments::preference::PreferenceConfig,
    /// Value x loyalty classes.
    pub value_loyalty: segments::value_loyalty::ValueLoyaltyConfig,
    /// k-means clusters.
    pub clusters: segments::clusters::ClusterConfig,
    /// Market positioning of segments.
    pub positioning: positioning::PositioningConfig,
    /// User-defined schemes, after the built-in ones.
    pub custom_schemes: Vec<segments::custom::CustomScheme>,
}

impl ModelsConfig {
    /// Checks every model's block; errors name the block's key.
    pub fn validate(&self) -> std::result::Result<(), (String, String)> {
        for (key, checked) in [
            ("models.rfm", self.rfm.validate()),
            ("models.rfm8", self.rfm8.validate()),
            ("models.clv", self.clv.validate()),
            ("models.value_tiers", self.value_tiers.validate()),
            ("models.lifecycle", self.lifecycle.validate()),
            ("models.usage", self.usage.validate()),
            ("models.preference", self.preference.validate()),
            ("models.value_loyalty", self.value_loyalty.validate()),
            ("models.clusters", self.clusters.validate()),
            ("models.positioning", self.positioning.validate()),
            (
                segments::custom::KEY,
                segments::custom::validate(&self.custom_schemes),
            ),
        ] {
            checked.map_err(|msg| (key.to_string(), msg))?;
        }
        Ok(())
    }
}

/// What a model is given: its input tables, collected.
pub struct ModelInputs {
    /// Input tables by name.
    pub tables: BTreeMap<String, Vec<RecordBatch>>,
    /// The period computed and the one before it (whose partitions are `previous.<table>`);
    /// None when the job is only planned (`validate`, `plan`).
    pub period: Option<crate::period::Period>,
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
    /// The columns it reads of `input` (None: all). Inputs are collected on the driver, so a
    /// model that reads a few columns of a wide table says which; columns absent from the table
    /// (an older partition) are skipped, and the model checks for them as before.
    fn input_columns(&self, _input: &str) -> Option<Vec<String>> {
        None
    }
    /// Tables it writes.
    fn outputs(&self) -> Vec<&'static str>;
    /// Computes the outputs.
    fn run(&self, inputs: &ModelInputs) -> Result<ModelOutputs>;
}

/// Every model of the pipeline, configured.
pub fn registry(cfg: &ModelsConfig) -> Vec<Box<dyn Model>> {
    vec![
        Box::new(customer_value::CustomerValueModel::new(cfg.clv.clone())),
        Box::new(segments::SegmentsModel::new(cfg)),
        Box::new(positioning::PositioningModel::new(cfg.positioning.clone())),
    ]
}
