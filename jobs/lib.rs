//! crm-pipeline: a batch CRM data-warehouse job.
//!
//! The modules follow the data's path, each owning its block of pipeline.yaml:
//! [`job`] parses the job definition ([`job::JobSpec`]) and resolves it once, with the command
//! line's overrides, into a [`job::Job`] (locations, engine settings, time zone, output
//! schemas, store options as a value) that everything downstream takes ->
//! [`extract`] reads and validates the raw extracts against the [`contract`] ->
//! [`stages`] runs the SQL stages on DataFusion ([`engine`]: the runtime, memory pool and spill)
//! -> [`quality`] reconciles every source, runs the checks and the publish gate ->
//! [`models`] computes customer value (CLV), the segmentation schemes of its registry and
//! positioning -> [`publish`] stages the partitions and swaps a period's tables together ->
//! [`report`] draws the period's HTML page from the published tables.
//!
//! [`run`] orchestrates one period (its attempts, gates, steps and plan) and writes the typed
//! [`record`] that [`backfill`] and [`report`] read back; [`backfill`] runs a range of periods.
//! [`layout`] is the one owner of every warehouse path; [`storage`] opens object stores;
//! [`error`] keeps each failure's typed cause and its exit code. On the ground floor, read by
//! all and importing none of the above: [`contract`], [`period`], [`template`] and [`redact`].
//! [`builtin`] carries the default job (pipeline.yaml and sql/) inside the binary, [`logging`]
//! the log lines and the terminal progress; [`generate`] writes sample extracts with known
//! ground truth. No module imports one that imports it back.

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
pub mod record;
pub mod redact;
pub mod report;
pub mod run;
pub mod stages;
pub mod storage;
pub mod template;

pub use error::{Error, Result};
