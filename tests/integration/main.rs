//! Integration tests, gathered into one binary to keep link time down.

mod common;

mod backfill;
mod bad_inputs;
mod checks;
mod e2e;
mod faults;
mod memory;
mod publish;
mod slt;
