#!/usr/bin/env bash
# crm-pipeline against the peer pipeline a data team would script today (DuckDB SQL, lifetimes
# BG/NBD + Gamma-Gamma, pandas RFM, scikit-learn k-means: benches/peers/), on the same generated
# extracts, one scale after the other. Prints per-stage and total wall time, CPU time and peak
# RSS with ratios (ours / peer) and checks that both agree on the key outputs; writes
# benches/results/side_by_side-sf<N>.json.
#
# Usage: benches/side_by_side.sh [--sf 1,10] [--work DIR] [--period 2024-12] [--k 6] [--no-clv-bench]
#                                [--memory-limit 4GiB]
#   SF1 = 100,000 customers, SF10 = 1,000,000, SF30 = 3,000,000 (generator defaults otherwise, seed 1, generated
#   once per scale under DIR, default target/bench-data). The peer's venv is benches/peers/.venv
#   (created from benches/peers/requirements.txt on first use; needs python3.11 and PyPI).
#   --no-clv-bench skips the "same rows" CLV and RFM timings (and building the bench binary,
#   which is a second release build of the dependencies).
#   --memory-limit runs ours with engine.memory_limit set (the built-in job written out by
#   `crm-pipeline init` with that one line changed); the peer's DuckDB keeps its own default.
set -euo pipefail
cd "$(dirname "$0")/.."
sfs=1,10
work=target/bench-data
period=2024-12
k=6
clv_bench_wanted=1
memory_limit=
while [ $# -gt 0 ]; do
  case "$1" in
    --sf) sfs=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --period) period=$2; shift 2 ;;
    --k) k=$2; shift 2 ;;
    --no-clv-bench) clv_bench_wanted=0; shift ;;
    --memory-limit) memory_limit=$2; shift 2 ;;
    -h|--help) sed -n 2,16p "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$work" benches/results

# shellcheck source=peers/venv.sh
source benches/peers/venv.sh

echo "building the release binary" >&2
cargo build --locked --release --quiet
bin=target/release/crm-pipeline
config_args=()
if [ -n "$memory_limit" ]; then
  job_dir=$work/job-memory-limit
  rm -rf "$job_dir"
  "$bin" init "$job_dir" > /dev/null
  sed -i "s/^  # memory_limit: 4GiB /  memory_limit: $memory_limit /" "$job_dir/pipeline.yaml"
  grep -q "^  memory_limit: $memory_limit " "$job_dir/pipeline.yaml" ||
    { echo "could not set engine.memory_limit in $job_dir/pipeline.yaml" >&2; exit 1; }
  config_args=(--config "$job_dir/pipeline.yaml")
  echo "ours runs with engine.memory_limit: $memory_limit" >&2
fi
clv_bench=
if [ "$clv_bench_wanted" = 1 ]; then
  echo "building the CLV bench binary" >&2
  clv_bench=$(cargo bench --locked --no-run --bench clv --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "clv":
        print(m["executable"])')
  [ -x "$clv_bench" ] || { echo "could not build the clv bench binary: run cargo bench --no-run --bench clv" >&2; exit 1; }
fi

for sf in ${sfs//,/ }; do
  customers=$((sf * 100000))
  raw=$work/raw-$customers
  if [ ! -f "$raw/_generator.json" ]; then
    echo "generating SF$sf ($customers customers) into $raw" >&2
    "$bin" generate --customers "$customers" --seed 1 --out "$raw" >&2
  fi
  wh=$work/warehouse-$customers
  peer_out=$work/peer-$customers
  rm -rf "$wh" "$peer_out"
  mkdir -p "$peer_out"
  # both pipelines read the extracts from the page cache
  cat "$raw"/*/*.csv > /dev/null

  echo "SF$sf: crm-pipeline run" >&2
  summary=$(/usr/bin/time -o "$work/ours-time-$customers.txt" -f "%e %U %S %M" \
    "$bin" run "${config_args[@]}" --period "$period" --raw "$raw" --warehouse "$wh" | tail -n 1)
  run_results=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["run_results"].removeprefix("file://"))' "$summary")

  echo "SF$sf: peer pipeline" >&2
  /usr/bin/time -o "$work/peer-time-$customers.txt" -f "%e %U %S %M" \
    "$py" benches/peers/peer_pipeline.py --raw "$raw" --out "$peer_out" --period "$period" --k "$k" \
    --export-model-inputs > /dev/null

  if [ -n "$clv_bench" ]; then
    echo "SF$sf: crm-pipeline's CLV fit, scoring and RFM on the peer's exported rows" >&2
    CRM_BENCH_CLV_CSV="$peer_out/clv_summary.csv" CRM_BENCH_RFM_CSV="$peer_out/rfm_inputs.csv" \
      "$clv_bench" > "$work/ours-oneshot-$customers.json"
  else
    : > "$work/ours-oneshot-$customers.json"   # compare.py leaves the same-rows rows out
  fi

  "$py" benches/peers/compare.py --customers "$customers" --period "$period" \
    --ours-run "$run_results" --ours-time "$work/ours-time-$customers.txt" --ours-warehouse "$wh" \
    --ours-oneshot "$work/ours-oneshot-$customers.json" \
    --peer-out "$peer_out" --peer-time "$work/peer-time-$customers.txt" \
    --json "benches/results/side_by_side-sf$sf.json"
done
