#!/usr/bin/env bash
# CLV fit speed, side by side: crm-pipeline's BG/NBD + Gamma-Gamma fits (release build) and
# Python lifetimes 0.11.3 on the same simulated 1,000,000-customer summary; prints the ratio.
# The CLV-only micro comparison; the whole pipeline side by side is benches/side_by_side.sh.
# Usage: benches/clv_side_by_side.sh [workdir]     (uses the peer venv, benches/peers/.venv)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/crm-bench}
mkdir -p "$work"
# shellcheck source=peers/venv.sh
source benches/peers/venv.sh
csv="$work/clv_sim_1m.csv"
CLV_SIM_CSV="$csv" cargo test --release --lib -- --ignored speed_1m_customers --nocapture 2> "$work/clv_rust.txt" >/dev/null
grep -E '^\[|CLV for' "$work/clv_rust.txt"
ours=$(grep '^\[continuous times\]' "$work/clv_rust.txt" | sed -E 's/.*total ([0-9.]+) s.*/\1/')
"$py" benches/clv_peer.py "$csv" | tee "$work/clv_peer.txt"
peer=$(grep 'lifetimes total fit time' "$work/clv_peer.txt" | sed -E 's/.*: ([0-9.]+) s/\1/')
python3 -c "import sys; o, p = float(sys.argv[1]), float(sys.argv[2]); print(f'fit on 1,000,000 customers: crm-pipeline {o:.2f} s, lifetimes {p:.2f} s, lifetimes / crm-pipeline = {p / o:.1f}x')" "$ours" "$peer"
