//! Integration tests, gathered into one binary to keep link time down.

mod common;

mod backfill;
mod bad_inputs;
mod ballista;
mod checks;
mod delta;
mod e2e;
mod faults;
mod memory;
mod operability;
mod publish;
mod report;
mod s3;
mod safety;
mod segments;
mod slt;
