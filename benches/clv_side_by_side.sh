#!/usr/bin/env bash
# CLV models side by side: crm-pipeline's release build against Python lifetimes 0.11.3 on the
# same simulated summaries (times at whole days in weeks, as the warehouse computes them):
#   - BG/NBD on 1,000,000 customers: the fit (grouping + fit + standard errors), the scoring
#     (discounted CLV over 365 days in 30-day steps at 10%/yr, P(alive), expected purchases,
#     Gamma-Gamma spend) and, ours only, the CLV / P(alive) intervals (the default delta method,
#     and 200 parameter draws);
#   - Pareto/NBD fits on 100,000 and 1,000,000 customers (and ours' delta intervals at 1,000,000). lifetimes' Pareto/NBD at 1,000,000 is
#     timed on the file's first 100,000 customers and extrapolated x10 (its likelihood is
#     evaluated per customer, so time per Nelder-Mead iteration is linear in the customers;
#     the 100k file measures how many iterations it needs). Set CLV_PEER_FULL_1M=1 to run it
#     whole instead (about ten minutes).
# Ours: median of 3 runs of the `clv` bench binary's one-shot mode; lifetimes: one run.
# The whole pipeline side by side is benches/side_by_side.sh.
# Usage: flock /tmp/cargo-build.lock benches/clv_side_by_side.sh [workdir]
#   (uses the peer venv, benches/peers/.venv; writes $workdir/clv_side_by_side.json)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/crm-bench-clv}
mkdir -p "$work"
# shellcheck source=peers/venv.sh
source benches/peers/venv.sh
if [ ! -f "$work/pnbd_1m.csv" ]; then
  echo "simulating the summaries into $work" >&2
  CLV_SIM_DIR="$work" cargo test --release --lib -- --ignored write_side_by_side_csvs --nocapture >&2
fi
clv_bench=$(cargo bench --no-run --bench clv --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "clv":
        print(m["executable"])')
[ -x "$clv_bench" ] || { echo "could not build the clv bench binary: run cargo bench --no-run --bench clv" >&2; exit 1; }

ours() { # csv model intervals (none | delta | draws:N) -> three JSON lines
  for _ in 1 2 3; do
    CRM_BENCH_CLV_CSV="$1" CRM_BENCH_CLV_MODEL="$2" CRM_BENCH_CLV_INTERVALS="$3" "$clv_bench"
  done
}
echo "crm-pipeline (3 runs each)" >&2
ours "$work/bgnbd_1m.csv" bgnbd delta > "$work/ours_bgnbd_1m.jsonl"
ours "$work/bgnbd_1m.csv" bgnbd draws:200 > "$work/ours_bgnbd_1m_draws.jsonl"
ours "$work/pnbd_100k.csv" pnbd none > "$work/ours_pnbd_100k.jsonl"
ours "$work/pnbd_1m.csv" pnbd delta > "$work/ours_pnbd_1m.jsonl"
echo "lifetimes" >&2
"$py" benches/clv_peer.py "$work/bgnbd_1m.csv" --model bgnbd --score | tee /dev/stderr | tail -n 1 > "$work/peer_bgnbd_1m.json"
"$py" benches/clv_peer.py "$work/pnbd_100k.csv" --model pnbd | tee /dev/stderr | tail -n 1 > "$work/peer_pnbd_100k.json"
if [ "${CLV_PEER_FULL_1M:-0}" = 1 ]; then
  "$py" benches/clv_peer.py "$work/pnbd_1m.csv" --model pnbd | tee /dev/stderr | tail -n 1 > "$work/peer_pnbd_1m.json"
else
  "$py" benches/clv_peer.py "$work/pnbd_1m.csv" --model pnbd --subsample 100000 | tee /dev/stderr | tail -n 1 > "$work/peer_pnbd_1m.json"
fi

python3 - "$work" <<'EOF'
import json, statistics, sys
w = sys.argv[1]
def ours(name):
    runs = [json.loads(l) for l in open(f"{w}/ours_{name}.jsonl")]
    med = lambda k: statistics.median(r[k] for r in runs)
    return runs[0], med
def peer(name):
    return json.load(open(f"{w}/peer_{name}.json"))
rows = []
def rel(a, b):
    return abs(a - b) / abs(b)
bg, bgm = ours("bgnbd_1m"); pb = peer("bgnbd_1m")
fit_o = bgm("transaction_fit_seconds"); fit_p = pb["fit_seconds"]
rows.append(("BG/NBD fit, 1,000,000 customers (grouping + fit + standard errors)", fit_o, fit_p))
gg_o = bgm("gamma_gamma_fit_seconds"); gg_p = pb["gamma_gamma_fit_seconds"]
rows.append(("Gamma-Gamma fit (repeat customers, with standard errors)", gg_o, gg_p))
sc_o = bgm("clv_score_seconds"); sc_p = pb["score_seconds"]
rows.append(("scoring: CLV (13 steps), P(alive), expected purchases, spend", sc_o, sc_p))
for size in ["100k", "1m"]:
    o, om = ours(f"pnbd_{size}"); p = peer(f"pnbd_{size}")
    scale = p["customers_in_file"] / p["customers"]
    label = f"Pareto/NBD fit, {o['customers']:,} customers"
    if scale != 1:
        label += f" (lifetimes: {p['customers']:,}-customer subsample x{scale:g}, extrapolated)"
    rows.append((label, om("transaction_fit_seconds"), p["fit_seconds"] * scale))
    print(f"Pareto/NBD {size}: ours {o['transaction']} LL {o['transaction_log_likelihood']:.2f}; lifetimes {p['params']}")
print(f"BG/NBD: ours {bg['transaction']}; lifetimes {pb['params']}")
print(f"total CLV: ours {bg['total_clv']:.2f}, lifetimes {pb['total_clv']:.2f} (relative difference {rel(bg['total_clv'], pb['total_clv']):.1e})")
_, drm = ours("bgnbd_1m_draws"); _, pm = ours("pnbd_1m")
for label, med in [("BG/NBD, delta method", bgm), ("BG/NBD, 200 parameter draws", drm), ("Pareto/NBD, delta method", pm)]:
    print(f"intervals, {label}, 1,000,000 customers: {med('interval_seconds'):.3f} s ({med('interval_cpu_seconds'):.3f} CPU s), ours only")
print()
print("| | crm-pipeline s | lifetimes s | lifetimes / ours |")
print("|---|---:|---:|---:|")
for label, o, p in rows:
    print(f"| {label} | {o:.3f} | {p:.2f} | {p / o:.0f}x |")
json.dump({"rows": [{"what": l, "ours_seconds": o, "lifetimes_seconds": p} for l, o, p in rows],
           "interval_seconds": {"bgnbd_delta": bgm("interval_seconds"), "bgnbd_draws_200": drm("interval_seconds"),
                                "pnbd_delta": pm("interval_seconds")},
           "ours_bgnbd": bg, "peer_bgnbd": pb},
          open(f"{w}/clv_side_by_side.json", "w"), indent=1)
EOF
