#!/usr/bin/env bash
# How the driver's memory grows with the customers: runs one period on the local engine at each
# scale (default 1 M and 4 M customers) under engine.memory_limit, and prints the peak RSS of the
# model steps (customer_value, segments: what the driver holds for the models), of the whole run,
# and the growth between the first and the last scale.
# Usage: benches/driver_memory.sh [--customers 1000000,4000000] [--memory-limit 6GiB] [--work DIR]
# CRM_BENCH_BIN=path runs that binary instead of building the release one (memory, not speed).
set -euo pipefail
cd "$(dirname "$0")/.."
scales=1000000,4000000
memory_limit=6GiB
work=/tmp/crm-bench-driver
while [ $# -gt 0 ]; do
  case $1 in
    --customers) scales=$2; shift 2 ;;
    --memory-limit) memory_limit=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$work"
if [ -n "${CRM_BENCH_BIN:-}" ]; then
  bin=$CRM_BENCH_BIN
else
  cargo build --locked --release --quiet
  bin=target/release/crm-pipeline
fi
job_dir=$work/job
rm -rf "$job_dir"
"$bin" init "$job_dir" > /dev/null
sed -i "s/^  # memory_limit: 4GiB /  memory_limit: $memory_limit /" "$job_dir/pipeline.yaml"
grep -q "^  memory_limit: $memory_limit " "$job_dir/pipeline.yaml" ||
  { echo "could not set engine.memory_limit in $job_dir/pipeline.yaml" >&2; exit 1; }

results=()
for customers in ${scales//,/ }; do
  raw=$work/raw-$customers
  wh=$work/warehouse-$customers
  if [ ! -f "$raw/_generator.json" ]; then
    echo "generating $customers customers into $raw" >&2
    "$bin" generate --customers "$customers" --seed 1 --out "$raw" > /dev/null
  fi
  rm -rf "$wh"
  echo "running $customers customers (engine.memory_limit: $memory_limit)" >&2
  summary=$(/usr/bin/time -o "$work/time.txt" -f "%e %M" \
    "$bin" run --config "$job_dir/pipeline.yaml" --period 2024-12 --raw "$raw" --warehouse "$wh" | tail -n 1)
  read -r wall rss_kib < "$work/time.txt"
  path=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["run_results"].removeprefix("file://"))' "$summary")
  results+=("$customers $wall $rss_kib $path")
done

python3 - "${results[@]}" <<'PY'
import json, sys
MODELS = ("customer_value", "segments")
rows = []
for arg in sys.argv[1:]:
    customers, wall, rss_kib, path = arg.split(" ", 3)
    r = json.load(open(path))
    steps = {s["name"]: s for s in r["steps"]}
    # the run resets the kernel's peak-RSS mark before each step, so the process peak is the
    # largest step peak (or /usr/bin/time's, whichever is higher)
    run_peak = max([s.get("peak_rss_mib") or 0 for s in r["steps"]] + [int(rss_kib) / 1024])
    model_peak = max(steps[m].get("peak_rss_mib") or 0 for m in MODELS if m in steps)
    rows.append((int(customers), float(wall), model_peak, run_peak,
                 {m: steps[m].get("peak_rss_mib") for m in MODELS if m in steps}))
print(f"{'customers':>10}{'wall s':>9}{'models peak MiB':>17}{'run peak MiB':>14}  per model step")
for c, wall, mp, rp, per in rows:
    detail = ", ".join(f"{k} {v:.0f}" for k, v in per.items())
    print(f"{c:>10,}{wall:>9.1f}{mp:>17.0f}{rp:>14.0f}  {detail}")
if len(rows) > 1:
    (c0, _, m0, r0, _), (c1, _, m1, r1, _) = rows[0], rows[-1]
    print(f"{c1:,} / {c0:,} customers ({c1 / c0:.1f}x): models peak {m1 / m0:.2f}x, run peak {r1 / r0:.2f}x")
PY
