#!/usr/bin/env python3
"""Peer timing for the CLV models alone: Python lifetimes 0.11.3 on a simulated summary.

Usage (run by benches/clv_side_by_side.sh inside the peer venv, benches/peers/.venv):
    python benches/clv_peer.py SUMMARY.csv [--model bgnbd|pnbd] [--subsample N] [--score] [--gg]

SUMMARY.csv has columns frequency,recency,T,monetary_value (time unit weeks), as written by
    CLV_SIM_DIR=/dir cargo test --release --lib -- --ignored write_side_by_side_csvs
(crate::models::clv::reference_tests). Fits BetaGeoFitter or ParetoNBDFitter on all customers
(or on the first N with --subsample, to extrapolate a fit too slow to run whole: the
likelihood is evaluated per customer, so the time per optimiser iteration is linear in the
customers), GammaGammaFitter on repeat customers with --gg, and with --score times the
pipeline's scoring (discounted CLV over 365 days in 30-day steps at 10% a year: the conditional
expectation at each of the 13 step ends, P(alive), the Gamma-Gamma spend), as
benches/peers/peer_pipeline.py does. BetaGeoFitter's fit includes its autograd Hessian (standard
errors); ParetoNBDFitter computes none. Prints one JSON line last.
"""
import argparse
import json
import time

HORIZON_DAYS, STEP_DAYS, ANNUAL, DAYS_PER_UNIT = 365.0, 30.0, 0.10, 7.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--model", default="bgnbd", choices=["bgnbd", "pnbd"])
    ap.add_argument("--subsample", type=int, default=0)
    ap.add_argument("--score", action="store_true")
    ap.add_argument("--gg", action="store_true")
    a = ap.parse_args()
    import numpy as np
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter

    df = pd.read_csv(a.csv)
    n_all = len(df)
    if a.subsample and a.subsample < n_all:
        df = df.iloc[: a.subsample]
    x, t_x, big_t, money = df["frequency"], df["recency"], df["T"], df["monetary_value"]
    out = {"model": a.model, "customers": len(df), "customers_in_file": n_all}
    cls = BetaGeoFitter if a.model == "bgnbd" else ParetoNBDFitter
    t0 = time.perf_counter()
    fit = cls().fit(x, t_x, big_t)
    out["fit_seconds"] = time.perf_counter() - t0
    out["params"] = {k: float(v) for k, v in fit.params_.items()}
    print(f"lifetimes {a.model} fit on {len(df)} customers: {out['fit_seconds']:.3f} s  params {out['params']}")
    ggf = None
    if a.gg or a.score:
        rep = df[df["frequency"] > 0]
        t0 = time.perf_counter()
        ggf = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
        out["gamma_gamma_fit_seconds"] = time.perf_counter() - t0
        out["gamma_gamma"] = {k: float(v) for k, v in ggf.params_.items()}
        print(f"lifetimes Gamma-Gamma fit ({len(rep)} repeat customers): {out['gamma_gamma_fit_seconds']:.3f} s")
    if a.score:
        t0 = time.perf_counter()
        n_steps = int(np.ceil(HORIZON_DAYS / STEP_DAYS - 1e-9))
        days = np.minimum(np.arange(1, n_steps + 1) * STEP_DAYS, HORIZON_DAYS)
        disc = (1.0 + ANNUAL) ** (-days / 365.25)
        prev = np.zeros(len(x))
        dep = np.zeros(len(x))
        for d, f in zip(days, disc):
            e = np.asarray(fit.conditional_expected_number_of_purchases_up_to_time(d / DAYS_PER_UNIT, x, t_x, big_t))
            dep += (e - prev) * f
            prev = e
        spend = np.asarray(ggf.conditional_expected_average_profit(x, money.where(x > 0, 0.0)))
        alive = np.asarray(fit.conditional_probability_alive(x, t_x, big_t))
        clv = spend * dep
        out["score_seconds"] = time.perf_counter() - t0
        out["total_clv"] = float(np.sum(clv))
        out["checksum"] = float(np.sum(alive) + np.sum(prev))
        print(f"lifetimes scoring (13 steps + P(alive) + spend): {out['score_seconds']:.3f} s, total CLV {out['total_clv']:.2f}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
