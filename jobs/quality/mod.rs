//! Step 3: data quality. Reconciliation of every source's rows and the quarantine
//! ([`reconcile`]); the declarative checks of pipeline.yaml are in [`crate::checks`] and the
//! publish gate in [`crate::gate`].

pub mod reconcile;
