//! Customer lifetime value (CLV) models: BG/NBD, MBG/NBD and Pareto/NBD transaction models, the
//! Gamma-Gamma spend model, discounted CLV, parameter-uncertainty intervals and holdout metrics.
//!
//! Units: transaction models work in one time unit chosen by the caller (e.g. weeks); x is the
//! number of repeat purchases, t_x the time of the last purchase and T the time from the first
//! purchase to the end of the calibration period, both measured from the first purchase. CLV
//! takes days (`days_per_unit` converts). Spend is in currency units per purchase.
//!
//! Typical use: [`summarize`] per-customer triples into distinct weighted rows,
//! [`fit_transactions`] (check `converged`), [`summarize_spend`] + [`fit_gamma_gamma`], then
//! [`customer_lifetime_values`] (deciles are ranked by the pipeline, `models::value::deciles`, with
//! ties broken by customer id); [`holdout_metrics`] for validation.
//! Nothing in this module panics on bad input: invalid values give NaN, an `Err(String)` or a
//! fit with `converged = false` and a `reason`.

// `!(v > 0.0)` is used on purpose throughout: it rejects NaN as well as non-positive values.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod bgnbd;
mod columns;
pub mod gamma_gamma;
pub mod holdout;
pub mod interval;
pub mod mbgnbd;
pub mod nbd;
pub mod optimize;
pub mod pnbd;
pub mod score;
pub mod select;
pub mod special;
pub mod summary;
pub mod transaction;
pub mod value;

#[cfg(test)]
mod reference_tests;
#[cfg(test)]
mod sim;

pub use self::gamma_gamma::{GammaGammaFit, GammaGammaParams, fit_gamma_gamma};
pub use self::holdout::{CalibrationBucket, HoldoutMetrics, holdout_metrics};
pub use self::summary::{
    Rfm, RowIndex, SpendRow, SpendSummary, Summary, SummaryRow, summarize, summarize_columns,
    summarize_spend, validate_rfm,
};
pub use self::transaction::{
    FitOptions, NbdParams, TransactionFit, TransactionModel, TransactionModelKind, fit_transactions,
};
pub use self::value::{ClvOptions, customer_lifetime_value, customer_lifetime_values};
