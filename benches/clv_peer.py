#!/usr/bin/env python3
"""Peer timing for the CLV fits alone: Python lifetimes on a simulated summary.

Usage (run by benches/clv_side_by_side.sh inside the peer venv, benches/peers/.venv):
    python benches/clv_peer.py SUMMARY.csv

SUMMARY.csv has columns frequency,recency,T,monetary_value (time unit weeks), as written by the
Rust speed test:
    CLV_SIM_CSV=/tmp/clv_sim_1m.csv cargo test --release -- --ignored speed_1m --nocapture
(crate::models::clv::reference_tests::speed_1m_customers). Fits BetaGeoFitter on all customers
and GammaGammaFitter on repeat customers (frequency > 0), printing wall-clock seconds for each
(lifetimes' fit includes its autograd Hessian for standard errors, like the Rust fit). The whole
pipeline side by side, on generated extracts, is benches/side_by_side.sh.
"""
import sys
import time


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    t0 = time.perf_counter()
    df = pd.read_csv(sys.argv[1])
    t_read = time.perf_counter() - t0
    print(f"read {len(df)} customers in {t_read:.3f} s")

    t0 = time.perf_counter()
    bgf = BetaGeoFitter().fit(df["frequency"], df["recency"], df["T"])
    t_bg = time.perf_counter() - t0
    print(f"lifetimes BG/NBD fit: {t_bg:.3f} s  params {dict(bgf.params_)}")

    rep = df[df["frequency"] > 0]
    t0 = time.perf_counter()
    ggf = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
    t_gg = time.perf_counter() - t0
    print(f"lifetimes Gamma-Gamma fit ({len(rep)} repeat customers): {t_gg:.3f} s  params {dict(ggf.params_)}")
    print(f"lifetimes total fit time: {t_bg + t_gg:.3f} s")


if __name__ == "__main__":
    main()
