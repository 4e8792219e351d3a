#!/usr/bin/env python3
"""Peer timing for the CLV fits: Python lifetimes 0.11.3 on the same simulated summary.

Usage:
    python3 benches/clv_peer.py SUMMARY.csv [VENV_DIR]

SUMMARY.csv has columns frequency,recency,T,monetary_value (time unit weeks), as written by the
Rust speed test:
    CLV_SIM_CSV=/tmp/clv_sim_1m.csv cargo test --release -- --ignored speed_1m --nocapture
(crate::models::clv::reference_tests::speed_1m_customers). The script creates or reuses a
virtualenv (default /tmp/clv-lifetimes-venv) with lifetimes==0.11.3 and Python-3.11-compatible
pins, then fits BetaGeoFitter on all customers and GammaGammaFitter on repeat customers
(frequency > 0), printing wall-clock seconds for each (lifetimes' fit includes its autograd
Hessian for standard errors, like the Rust fit).
"""
import os
import subprocess
import sys
import time

PINS = ["lifetimes==0.11.3", "numpy<2", "pandas<2", "scipy<1.12", "autograd"]


def ensure_venv():
    if os.environ.get("CLV_PEER_IN_VENV") == "1":
        return
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    venv = sys.argv[2] if len(sys.argv) > 2 else "/tmp/clv-lifetimes-venv"
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
    subprocess.check_call([py, "-m", "pip", "install", "--quiet"] + PINS)
    env = dict(os.environ, CLV_PEER_IN_VENV="1")
    sys.exit(subprocess.call([py, os.path.abspath(__file__), sys.argv[1]], env=env))


def main():
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
    ensure_venv()
    main()
