//! Step 3: data quality. Reconciliation of every source's rows and the quarantine
//! ([`reconcile`]), the declarative checks of pipeline.yaml ([`checks`]) and the publish gate
//! ([`gate`]).

pub mod checks;
pub mod gate;
pub mod reconcile;
