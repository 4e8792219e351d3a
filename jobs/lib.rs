//! crm-pipeline: a batch CRM data-warehouse job.
//!
//! The modules follow the data's path: [`config`] (the job definition) -> [`extract`] (read and
//! validate raw extracts) -> [`stages`] (SQL stages run by DataFusion) -> [`models`] (CLV,
//! segments, summaries) -> [`publish`] (partitions and run results) -> [`report`] (the
//! period's HTML report, from the published tables). [`run`] ties them together for one period
//! and [`backfill`] runs it over a range of periods; [`generate`] writes sample extracts with
//! known ground truth.

pub mod backfill;
pub mod builtin;
pub mod contract;
pub mod engine;
pub mod error;
pub mod extract;
pub mod faults;
pub mod generate;
pub mod job;
pub mod layout;
pub mod logging;
pub mod models;
pub mod period;
pub mod publish;
pub mod quality;
pub mod redact;
pub mod report;
pub mod run;
pub mod stages;
pub mod storage;

pub use error::{Error, Result};
