//! Integration tests, gathered into one binary to keep link time down.

mod common;

mod bad_inputs;
mod ballista;
mod checks;
mod e2e;
mod publish;
mod report;
mod s3;
mod segments;
mod slt;
