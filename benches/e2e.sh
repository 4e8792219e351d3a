#!/usr/bin/env bash
# End-to-end run at a given scale with the release build: generates the sample extracts (once
# per scale), runs one period, and prints wall time, CPU time, rows/s and peak memory per step
# from the run results, plus the whole process's peak RSS.
# Usage: benches/e2e.sh [customers] [workdir]      e.g. benches/e2e.sh 1000000 /tmp/crm-bench
set -euo pipefail
cd "$(dirname "$0")/.."
customers=${1:-100000}
work=${2:-/tmp/crm-bench}
raw="$work/raw-$customers"
wh="$work/warehouse-$customers"
cargo build --release --quiet
bin=target/release/crm-pipeline
if [ ! -f "$raw/_generator.json" ]; then
  echo "generating $customers customers into $raw" >&2
  /usr/bin/time -f "generate: %e s wall, %M KiB peak RSS" "$bin" generate --customers "$customers" --seed 1 --out "$raw" >&2
fi
rm -rf "$wh"
summary=$(/usr/bin/time -o "$work/time.txt" -f "%e %M" "$bin" run --period 2024-12 --raw "$raw" --warehouse "$wh" | tail -n 1)
read -r wall rss_kib < "$work/time.txt"
results=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["run_results"].removeprefix("file://"))' "$summary")
python3 - "$results" "$wall" "$rss_kib" "$customers" <<'PY'
import json, sys
path, wall, rss_kib, customers = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = json.load(open(path))
# The run resets the kernel's peak-RSS mark before each step (to measure steps), which also
# resets what /usr/bin/time sees; the process peak is the largest step peak.
peak = max([s.get("peak_rss_mib") or 0 for s in r["steps"]] + [rss_kib / 1024])
print(f"crm-pipeline run, {customers:,} customers, period {r['period']}: {wall:.1f} s wall, peak RSS {peak:.0f} MiB")
print(f"{'step':<24}{'wall s':>9}{'cpu s':>9}{'rows':>12}{'rows/s':>12}{'peak MiB':>10}")
for s in r["steps"]:
    rows = s.get("rows")
    rate = f"{rows / s['seconds']:,.0f}" if rows and s["seconds"] >= 0.01 else ""
    print(f"{s['name']:<24}{s['seconds']:>9.2f}{(s.get('cpu_seconds') or 0):>9.2f}{(rows or 0):>12,}{rate:>12}{(s.get('peak_rss_mib') or 0):>10.0f}")
json.dump({"customers": customers, "wall_seconds": wall, "peak_rss_mib": peak, "steps": r["steps"]}, open(path.replace("run_results.json", "bench.json"), "w"), indent=1)
PY
