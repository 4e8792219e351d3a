#!/usr/bin/env python3
"""Reference values for the CLV models (crate::models::clv) from Python `lifetimes` 0.11.3.

Usage:
    python3 tests/reference/lifetimes_reference.py [VENV_DIR]

Creates (or reuses) a virtualenv at VENV_DIR (default /tmp/clv-lifetimes-venv), installs
lifetimes==0.11.3 with pins that work on Python 3.11 (numpy<2, pandas<2, scipy<1.12, autograd,
plus mpmath for high-precision 2F1 values), re-runs itself inside it and writes, next to this
script:

  cdnow_summary.json     the CDNOW summary shipped inside lifetimes
                         (load_cdnow_summary_data_with_monetary_value; its frequency/recency/T
                         columns are checked to equal load_cdnow_summary's). Time unit: weeks.
  lifetimes_values.json  values computed by lifetimes at FIXED parameter values (not fitted
                         ones), plus lifetimes' own fitted parameters and standard errors.
  hyp2f1_values.json     Gauss 2F1(a,b;c;z) at 30 significant digits (mpmath), with scipy's
                         value alongside for information.
  pnbd_values.json       Pareto/NBD (ParetoNBDFitter) at fixed parameters on CDNOW: total
                         log-likelihood, P(alive), conditional expected purchases, E[X(t)];
                         lifetimes' own CDNOW fit; and, for heavy buyers (x up to 500) where
                         lifetimes' linear-space 2F1 difference fails, the same quantities at
                         40 digits with mpmath (FHL note 009 eqs. 18-20, 36-37, 41).

Conventions (so the Rust tests compare like with like):
  * lifetimes' `_negative_log_likelihood` returns the MEAN negative log-likelihood over the
    weights (-sum(w*ll)/sum(w)) plus penalizer_coef * sum(params**2). We store that value as
    `mean_neg_ll` and also `total_ll` = -mean_neg_ll * N (penalizer 0), the sum of per-customer
    log-likelihoods that the Rust code reports.
  * BG/NBD and MBG/NBD fits in lifetimes scale time by 1/max(T) internally; fitted alpha is
    reported back on the original scale, and the objective is evaluated here on unscaled data.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PINS = ["lifetimes==0.11.3", "numpy<2", "pandas<2", "scipy<1.12", "autograd", "mpmath"]


def ensure_venv():
    if os.environ.get("CLV_REF_IN_VENV") == "1":
        return
    venv = sys.argv[1] if len(sys.argv) > 1 else "/tmp/clv-lifetimes-venv"
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
    subprocess.check_call([py, "-m", "pip", "install", "--quiet"] + PINS)
    env = dict(os.environ, CLV_REF_IN_VENV="1")
    sys.exit(subprocess.call([py, os.path.abspath(__file__)] + sys.argv[2:], env=env))


def main():
    import numpy as np
    import pandas as pd
    import scipy
    import scipy.special as sp
    import mpmath
    import lifetimes
    from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, GammaGammaFitter, ParetoNBDFitter
    from lifetimes.datasets import load_cdnow_summary, load_cdnow_summary_data_with_monetary_value

    mpmath.mp.dps = 40

    s = load_cdnow_summary(index_col=[0])
    m = load_cdnow_summary_data_with_monetary_value()
    assert len(s) == len(m)
    for col in ["frequency", "recency", "T"]:
        assert np.array_equal(s[col].values, m[col].values), col
    f = m["frequency"].values.astype(float)
    rec = m["recency"].values.astype(float)
    T = m["T"].values.astype(float)
    mon = m["monetary_value"].values.astype(float)
    n = len(f)
    w = np.ones(n)

    with open(os.path.join(HERE, "cdnow_summary.json"), "w") as fh:
        json.dump(
            {
                "source": "lifetimes 0.11.3 load_cdnow_summary_data_with_monetary_value (CDNOW, time unit weeks)",
                "frequency": f.tolist(),
                "recency": rec.tolist(),
                "T": T.tolist(),
                "monetary_value": mon.tolist(),
            },
            fh,
        )

    ts = [1.0, 10.0, 52.0]
    ext_ts = [0.0, 0.5, 1.0, 10.0, 52.0, 156.0, 1000.0]

    def nbd_block(cls, params):
        fitter = cls()
        fitter.params_ = pd.Series(params, index=["r", "alpha", "a", "b"])
        fitter.predict = fitter.conditional_expected_number_of_purchases_up_to_time
        lp = np.log(np.array([params[k] for k in ["r", "alpha", "a", "b"]]))
        mean_nll = float(cls._negative_log_likelihood(lp, f, rec, T, w, 0.0))
        pen = float(cls._negative_log_likelihood(lp, f, rec, T, w, 0.1))
        out = {
            "params": dict(zip(["r", "alpha", "a", "b"], [params[k] for k in ["r", "alpha", "a", "b"]])),
            "mean_neg_ll": mean_nll,
            "total_ll": -mean_nll * n,
            "mean_neg_ll_penalizer_0.1": pen,
            "p_alive": np.asarray(fitter.conditional_probability_alive(f, rec, T), dtype=float).tolist(),
            "conditional_expected": {
                str(int(t)): np.asarray(
                    fitter.conditional_expected_number_of_purchases_up_to_time(t, f, rec, T), dtype=float
                ).tolist()
                for t in ts
            },
            "expected_t": ext_ts,
            "expected": [float(fitter.expected_number_of_purchases_up_to_time(t)) for t in ext_ts],
        }
        return fitter, out

    bg_fixed = [
        {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5},
        {"r": 1.3, "alpha": 2.0, "a": 1.7, "b": 4.0},
    ]
    mbg_fixed = [
        {"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 1.6},
        {"r": 1.3, "alpha": 2.0, "a": 1.7, "b": 4.0},
    ]
    gg_fixed = {"p": 6.0, "q": 3.5, "v": 15.0}

    bg_blocks, mbg_blocks = [], []
    bg_fitters = []
    for p in bg_fixed:
        fit, blk = nbd_block(BetaGeoFitter, p)
        bg_fitters.append(fit)
        bg_blocks.append(blk)
    for p in mbg_fixed:
        _, blk = nbd_block(ModifiedBetaGeoFitter, p)
        mbg_blocks.append(blk)

    bgf = BetaGeoFitter().fit(f, rec, T)
    mbgf = ModifiedBetaGeoFitter().fit(f, rec, T)

    rep = f > 0
    ggf_fixed = GammaGammaFitter()
    ggf_fixed.params_ = pd.Series(gg_fixed)
    lpg = np.log(np.array([gg_fixed["p"], gg_fixed["q"], gg_fixed["v"]]))
    gg_mean_nll = float(GammaGammaFitter._negative_log_likelihood(lpg, f[rep], mon[rep], np.ones(rep.sum()), 0.0))
    gg_pen = float(GammaGammaFitter._negative_log_likelihood(lpg, f[rep], mon[rep], np.ones(rep.sum()), 0.1))
    ggf = GammaGammaFitter().fit(f[rep], mon[rep])

    # Discounted CLV as lifetimes computes it: 12 monthly steps of 4.345 weeks, 1% per month.
    clv = ggf_fixed.customer_lifetime_value(
        bg_fitters[0], pd.Series(f), pd.Series(rec), pd.Series(T), pd.Series(mon), time=12, discount_rate=0.01, freq="W"
    )

    values = {
        "versions": {
            "lifetimes": lifetimes.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "pandas": pd.__version__,
            "python": sys.version.split()[0],
        },
        "n_customers": n,
        "note": "mean_neg_ll is lifetimes' objective: -sum(ll)/N (+ penalizer_coef*sum(params^2) for the _penalizer_ entry); total_ll = -mean_neg_ll*N.",
        "bgnbd_fixed": bg_blocks,
        "mbgnbd_fixed": mbg_blocks,
        "bgnbd_fitted": {
            "params": {k: float(v) for k, v in bgf.params_.items()},
            "standard_errors": {k: float(v) for k, v in bgf.standard_errors_.items()},
            "total_ll": float(-BetaGeoFitter._negative_log_likelihood(np.log(bgf.params_.values), f, rec, T, w, 0.0) * n),
        },
        "mbgnbd_fitted": {
            "params": {k: float(v) for k, v in mbgf.params_.items()},
            "standard_errors": {k: float(v) for k, v in mbgf.standard_errors_.items()},
            "total_ll": float(
                -ModifiedBetaGeoFitter._negative_log_likelihood(np.log(mbgf.params_.values), f, rec, T, w, 0.0) * n
            ),
        },
        "gamma_gamma_fixed": {
            "params": gg_fixed,
            "n_repeat": int(rep.sum()),
            "mean_neg_ll": gg_mean_nll,
            "total_ll": -gg_mean_nll * int(rep.sum()),
            "mean_neg_ll_penalizer_0.1": gg_pen,
            "conditional_expected_average_profit": np.asarray(
                ggf_fixed.conditional_expected_average_profit(f, mon), dtype=float
            ).tolist(),
        },
        "gamma_gamma_fitted": {
            "params": {k: float(v) for k, v in ggf.params_.items()},
            "standard_errors": {k: float(v) for k, v in ggf.standard_errors_.items()},
        },
        "clv_bgnbd0_gg_fixed": {
            "note": "GammaGammaFitter.customer_lifetime_value(bgnbd_fixed[0], ..., time=12, discount_rate=0.01, freq='W'): 12 steps of 4.345 weeks, discount (1.01)^-k",
            "months": 12,
            "monthly_discount_rate": 0.01,
            "weeks_per_month": 4.345,
            "clv": np.asarray(clv, dtype=float).tolist(),
        },
    }
    with open(os.path.join(HERE, "lifetimes_values.json"), "w") as fh:
        json.dump(values, fh, indent=1)

    # Gauss hypergeometric reference values, including z near 1 and integer c-a-b.
    cases = [
        (1, 1, 2, 0.5),
        (1, 1, 2, 0.99),
        (0.5, 0.5, 1.5, 0.25),
        (0.243, 2.426, 2.219, 0.1),
        (0.243, 2.426, 2.219, 0.9),
        (0.243, 2.426, 2.219, 0.999),
        (0.243, 2.426, 2.219, 0.999999),
        (2.243, 4.426, 4.219, 0.7),
        (30.243, 32.426, 32.219, 0.6),
        (30.243, 32.426, 32.219, 0.95),
        (100.25, 102.5, 102.3, 0.5),
        (100.25, 102.5, 102.3, 0.97),
        (1.5, 2.5, 4.0, 0.8),  # c-a-b = 0
        (1.5, 2.5, 4.0, 0.9999),
        (1.5, 2.5, 6.0, 0.95),  # c-a-b = 2
        (1.5, 2.5, 2.0, 0.95),  # c-a-b = -2
        (3.0, 2.5, 4.5, 0.9),  # c-a-b = -1
        (0.7, 1.3, 2.0, 0.999),  # c-a-b = 0
        (-3.0, 2.5, 4.2, 0.9),  # polynomial
        (0.5, 1.0, 0.3, 0.8),
        (1.2, 0.8, -0.5, 0.3),
        (5.0, 6.0, 7.5, 0.55),
        (0.25, 2.5, 2.3, -0.5),
        (0.25, 2.5, 2.3, -5.0),
        (0.3, 0.4, 0.5, 0.5),
        (2.0, 3.0, 5.0000001, 0.95),  # c-a-b near integer
        (0.8, 1.7, 0.8 + 1.7 + 1e-5, 0.99),  # c-a-b near 0
    ]
    hyp = []
    for a, b, c, z in cases:
        ref = mpmath.hyp2f1(a, b, c, z)
        hyp.append(
            {
                "a": a,
                "b": b,
                "c": c,
                "z": z,
                "value": float(ref),
                "ln_abs": float(mpmath.log(abs(ref))) if ref != 0 else None,
                "scipy": float(sp.hyp2f1(a, b, c, z)),
            }
        )
    with open(os.path.join(HERE, "hyp2f1_values.json"), "w") as fh:
        json.dump({"source": "mpmath %s, dps=40" % mpmath.__version__, "cases": hyp}, fh, indent=1)
    write_pnbd(np, pd, mpmath, ParetoNBDFitter, f, rec, T, ts, ext_ts)
    print("bgnbd fitted", dict(bgf.params_), "se", dict(bgf.standard_errors_))
    print("mbgnbd fitted", dict(mbgf.params_))
    print("gg fitted", dict(ggf.params_), "se", dict(ggf.standard_errors_))
    print("wrote fixtures to", HERE)


def write_pnbd(np, pd, mpmath, ParetoNBDFitter, f, rec, T, ts, ext_ts):
    """Pareto/NBD fixtures (see the module docstring)."""
    import time

    n = len(f)
    w = np.ones(n)
    fixed = [
        {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67},  # near the CDNOW MLE, alpha < beta
        {"r": 1.3, "alpha": 20.0, "s": 1.7, "beta": 6.0},  # alpha > beta, s > 1
        {"r": 0.3, "alpha": 2.0, "s": 0.4, "beta": 60.0},  # alpha << beta: 2F1 argument near 1
    ]
    names = ["r", "alpha", "s", "beta"]
    blocks = []
    for prm in fixed:
        fitter = ParetoNBDFitter()
        fitter.params_ = pd.Series(prm)[names]
        lp = np.log(np.array([prm[k] for k in names]))
        nll = float(ParetoNBDFitter._negative_log_likelihood(np.exp(lp), f, rec, T, w, 0.0))
        blocks.append(
            {
                "params": prm,
                "note": "lifetimes' Pareto/NBD objective is the TOTAL negative log-likelihood (sum / mean(weights))",
                "total_ll": -nll,
                "row_ll": np.asarray(ParetoNBDFitter._conditional_log_likelihood([prm[k] for k in names], f, rec, T), dtype=float).tolist(),
                "p_alive": np.asarray(fitter.conditional_probability_alive(f, rec, T), dtype=float).tolist(),
                "conditional_expected": {
                    str(int(t)): np.asarray(
                        fitter.conditional_expected_number_of_purchases_up_to_time(t, f, rec, T), dtype=float
                    ).tolist()
                    for t in ts
                },
                "expected_t": ext_ts,
                "expected": [float(fitter.expected_number_of_purchases_up_to_time(t)) for t in ext_ts],
            }
        )
    t0 = time.perf_counter()
    pf = ParetoNBDFitter().fit(f, rec, T)
    fit_s = time.perf_counter() - t0
    fitted = {
        "params": {k: float(v) for k, v in pf.params_.items()},
        "total_ll": float(-ParetoNBDFitter._negative_log_likelihood(pf.params_[names].values, f, rec, T, w, 0.0)),
        "seconds": fit_s,
        "note": "lifetimes fits with Nelder-Mead, tol 1e-4, on time scaled by 10/max(T)",
    }

    # Heavy buyers at 40 digits: L from eq. (18) with A_0 from eqs. (19)-(20) in mpmath.
    mp = mpmath.mp

    def mp_terms(prm, x, tx, tt):
        r, a, s, b = (mp.mpf(prm[k]) for k in names)
        x, tx, tt = mp.mpf(x), mp.mpf(tx), mp.mpf(tt)
        rsx = r + s + x
        if a >= b:
            m, bb = a, s + 1
        else:
            m, bb = b, r + x
        z = lambda t: abs(a - b) / (m + t)
        a0 = mp.hyp2f1(rsx, bb, rsx + 1, z(tx)) / (m + tx) ** rsx - mp.hyp2f1(rsx, bb, rsx + 1, z(tt)) / (m + tt) ** rsx
        a1 = mp.loggamma(r + x) - mp.loggamma(r) + r * mp.log(a) + s * mp.log(b)
        e = (a + tt) ** (-(r + x)) * (b + tt) ** (-s)
        second = s / rsx * a0
        ll = a1 + mp.log(e + second)
        palive = e / (e + second)
        return ll, palive, (r, a, s, b, x, tt)

    heavy_cases = []
    for prm in fixed:
        for x, tx, tt in [(50, 30.0, 40.0), (100, 38.5, 40.0), (250, 20.0, 78.0), (500, 77.0, 78.0), (500, 70.0, 78.0), (500, 39.0, 40.0)]:
            ll, pa, (r, a, s, b, xm, ttm) = mp_terms(prm, x, tx, tt)
            cond = {}
            for t in ts:
                t = mp.mpf(t)
                cond[str(int(t))] = float(pa * (r + xm) * (b + ttm) / ((a + ttm) * (s - 1)) * (1 - ((b + ttm) / (b + ttm + t)) ** (s - 1)))
            lt = ParetoNBDFitter._conditional_log_likelihood([prm[k] for k in names], np.array([x]), np.array([tx]), np.array([tt]))
            heavy_cases.append({"params": prm, "x": x, "t_x": tx, "T": tt, "ll": float(ll), "p_alive": float(pa),
                                "conditional_expected": cond, "lifetimes_ll": float(lt[0])})
    out = {
        "source": "lifetimes 0.11.3 ParetoNBDFitter on cdnow_summary.json (weeks); heavy: mpmath %s, dps=40" % mpmath.__version__,
        "fixed": blocks,
        "fitted": fitted,
        "heavy": heavy_cases,
    }
    with open(os.path.join(HERE, "pnbd_values.json"), "w") as fh:
        json.dump(out, fh, indent=1, allow_nan=True)
    print("pnbd fitted", fitted)


if __name__ == "__main__":
    ensure_venv()
    main()
