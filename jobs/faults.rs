//! TEST-ONLY fault injection for the crash- and failure-safety tests
//! (`tests/integration/faults.rs`, `tests/integration/safety.rs`). Compiled into debug builds
//! only: a release binary has no fault points.
//!
//! `CRM_PIPELINE_FAULT=<point>[@<period>]` aborts the process at the named point (like a
//! `kill -9`); `CRM_PIPELINE_FAULT=fail:<point>[@<period>]` makes the step at that point fail
//! with an error instead (as a full disk or a lost permission would). Points:
//! - `stage:after:<stage>`: a SQL stage has been materialised in the scratch space;
//! - `publish:after_staging`: every output is staged, nothing swapped;
//! - `publish:before:<table>`: just before `<table>`'s partition is swapped;
//! - `publish:mid_swap`: the first table is swapped, the others not;
//! - `publish:after_commit`: every table is swapped and the publish intent committed.

use crate::error::{Error, Result};

/// Aborts or fails at `point` of `period` when `CRM_PIPELINE_FAULT` asks for it.
pub fn point(point: &str, period: &str) -> Result<()> {
    if !cfg!(debug_assertions) {
        return Ok(());
    }
    let Ok(spec) = std::env::var("CRM_PIPELINE_FAULT") else {
        return Ok(());
    };
    let (name, only) = match spec.split_once('@') {
        Some((n, p)) => (n, Some(p)),
        None => (spec.as_str(), None),
    };
    if only.is_some_and(|p| p != period) {
        return Ok(());
    }
    if name == point {
        eprintln!("CRM_PIPELINE_FAULT={spec}: aborting at {point} (period {period})");
        std::process::abort();
    }
    if name.strip_prefix("fail:") == Some(point) {
        return Err(Error::storage(
            format!("CRM_PIPELINE_FAULT={spec}"),
            format!("injected failure at {point}"),
        ));
    }
    Ok(())
}
