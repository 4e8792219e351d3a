#!/usr/bin/env python3
"""Side-by-side report for one scale: per-stage and total wall time, CPU time and peak RSS of
crm-pipeline and the peer pipeline with ratios (ours / peer), and the agreement of their key
outputs. Called by benches/side_by_side.sh; prints a table and writes JSON.

Usage: compare.py --customers N --ours-run RUN_RESULTS.json --ours-time TIME.txt
                  --ours-warehouse DIR --ours-oneshot ONESHOT.json --peer-out DIR
                  --peer-time TIME.txt --period P --json OUT.json
TIME.txt files hold `/usr/bin/time -f "%e %U %S %M"` of each process.
"""
import argparse
import json
import math
import os

import duckdb
import numpy as np


def read_time(path):
    wall, user, sys_, rss_kib = open(path).read().split()[-4:]
    return float(wall), float(user) + float(sys_), int(rss_kib) / 1024


def group_ours(steps):
    """Maps crm-pipeline's run steps onto the comparison's stages."""
    g = {}

    def add(stage, s):
        e = g.setdefault(stage, {"seconds": 0.0, "cpu_seconds": 0.0, "peak_rss_mib": 0.0, "steps": []})
        e["seconds"] += s["seconds"]
        e["cpu_seconds"] += s.get("cpu_seconds") or 0.0
        e["peak_rss_mib"] = max(e["peak_rss_mib"], s.get("peak_rss_mib") or 0.0)
        e["steps"].append(s["name"])

    for s in steps:
        name, kind = s["name"], s.get("kind", "")
        if name == "extract" or kind == "sql/staging":
            add("sql_staging", s)
        elif kind == "sql/intermediate" or name in ("clv_summary", "customer_features", "clv_holdout"):
            add("sql_features", s)
        elif name == "customer_value":
            add("clv", s)
        elif "kmeans" in name or "cluster" in name:
            add("kmeans", s)
        elif name == "segments":
            add("segments", s)
        elif kind == "publish":
            add("write", s)
        else:
            add("ours_only", s)
    return g


def group_peer(steps):
    g = {}
    for s in steps:
        stage = {"clv_fit": "clv", "clv_score": "clv", "rfm": "segments", "imports": "peer_only"}.get(s["name"], s["name"])
        e = g.setdefault(stage, {"seconds": 0.0, "cpu_seconds": 0.0, "peak_rss_mib": 0.0, "steps": []})
        e["seconds"] += s["seconds"]
        e["cpu_seconds"] += s["cpu_seconds"]
        e["peak_rss_mib"] = max(e["peak_rss_mib"], s["peak_rss_mib"] or 0.0)
        e["steps"].append(s["name"])
    return g


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def agreement(ours_wh, peer_out, period):
    con = duckdb.connect()
    part = f"period={period}"
    ours = lambda t: f"read_parquet('{os.path.join(ours_wh, t, part)}/*.parquet')"
    peer = lambda t: f"read_parquet('{os.path.join(peer_out, t)}.parquet')"
    q = lambda sql: con.execute(sql).fetchone()
    out = {}
    for side, src in (("ours", ours), ("peer", peer)):
        n, buyers, revenue, orders, margin = q(
            f"SELECT count(*), count(*) FILTER (WHERE orders > 0), sum(revenue), sum(orders), sum(margin) "
            f"FROM {src('customer_features')}")
        out[side] = {"customers": n, "buyers": buyers, "total_revenue": float(revenue),
                     "total_orders": int(orders), "total_margin": float(margin)}
    joined, only_ours, only_peer, same_feat = q(f"""
        SELECT count(*) FILTER (WHERE o.customer_id IS NOT NULL AND p.customer_id IS NOT NULL),
               count(*) FILTER (WHERE p.customer_id IS NULL),
               count(*) FILTER (WHERE o.customer_id IS NULL),
               count(*) FILTER (WHERE o.orders = p.orders AND o.revenue = p.revenue
                                  AND o.recency_days IS NOT DISTINCT FROM p.recency_days
                                  AND o.frequency = p.frequency AND o.categories = p.categories
                                  AND o.campaign_contacts = p.campaign_contacts
                                  AND o.interactions = p.interactions
                                  AND o.age_band IS NOT DISTINCT FROM p.age_band)
        FROM {ours('customer_features')} o FULL OUTER JOIN {peer('customer_features')} p
          ON o.customer_id = p.customer_id""")
    out["customers_in_both"] = joined
    out["customers_only_ours"] = only_ours
    out["customers_only_peer"] = only_peer
    out["feature_rows_identical_share"] = same_feat / joined if joined else None
    n, same, same_seg = q(f"""
        SELECT count(*), count(*) FILTER (WHERE o.rfm_score = p.rfm_score),
               count(*) FILTER (WHERE o.rfm_segment = p.rfm_segment)
        FROM {ours('customer_segments')} o JOIN {peer('customer_segments')} p USING (customer_id)
        WHERE o.rfm_score IS NOT NULL AND p.rfm_score IS NOT NULL""")
    out["rfm_customers_compared"] = n
    out["rfm_score_identical_share"] = same / n if n else None
    out["rfm_segment_identical_share"] = same_seg / n if n else None
    rows = con.execute(f"""
        SELECT o.clv AS ours_clv, p.clv AS peer_clv, o.p_alive AS ours_p_alive, p.p_alive AS peer_p_alive
        FROM {ours('customer_value')} o JOIN {peer('customer_value')} p USING (customer_id)
        WHERE o.clv_method = 'model' AND o.clv IS NOT NULL AND p.clv IS NOT NULL""").fetchnumpy()
    a, b = np.asarray(rows["ours_clv"], dtype=float), np.asarray(rows["peer_clv"], dtype=float)
    pa, pb = np.asarray(rows["ours_p_alive"], dtype=float), np.asarray(rows["peer_p_alive"], dtype=float)
    rel = np.abs(a - b) / np.maximum(np.abs(b), 1e-9)
    out["clv_customers_compared"] = int(len(a))
    out["clv_median_rel_diff"] = float(np.median(rel)) if len(a) else None
    out["clv_p99_rel_diff"] = float(np.quantile(rel, 0.99)) if len(a) else None
    out["clv_correlation"] = float(np.corrcoef(a, b)[0, 1]) if len(a) > 1 else None
    out["clv_total_ours"] = float(a.sum())
    out["clv_total_peer"] = float(b.sum())
    out["p_alive_max_abs_diff"] = float(np.max(np.abs(pa - pb))) if len(a) else None
    return out


def main():
    ap = argparse.ArgumentParser()
    for a in ("--ours-run", "--ours-time", "--ours-warehouse", "--ours-oneshot", "--peer-out",
              "--peer-time", "--period", "--json"):
        ap.add_argument(a, required=True)
    ap.add_argument("--customers", type=int, required=True)
    args = ap.parse_args()

    run = json.load(open(args.ours_run))
    peer = json.load(open(os.path.join(args.peer_out, "peer_results.json")))
    oneshot = json.load(open(args.ours_oneshot)) if os.path.getsize(args.ours_oneshot) else {}
    o_wall, o_cpu, o_rss = read_time(args.ours_time)
    p_wall, p_cpu, p_rss = read_time(args.peer_time)
    # the export of the model inputs for the one-shot timing is not the peer's work
    export = [s for s in peer["steps"] if s["name"] == "export_model_inputs"]
    p_wall -= sum(s["seconds"] for s in export)
    p_cpu -= sum(s["cpu_seconds"] for s in export)
    peer["steps"] = [s for s in peer["steps"] if s["name"] != "export_model_inputs"]
    # Both processes reset the kernel's peak-RSS mark before each stage, which also resets what
    # /usr/bin/time sees: the process peak is the largest stage peak.
    o_peak = max([s.get("peak_rss_mib") or 0 for s in run["steps"]] + [o_rss])
    p_peak = max([s.get("peak_rss_mib") or 0 for s in peer["steps"]] + [p_rss])
    og, pg = group_ours(run["steps"]), group_peer(peer["steps"])
    psteps = {s["name"]: s for s in peer["steps"]}

    rows = []

    def row(label, o, p, note=""):
        rows.append({"stage": label,
                     "ours_seconds": o and o.get("seconds"), "peer_seconds": p and p.get("seconds"),
                     "ours_cpu_seconds": o and o.get("cpu_seconds"), "peer_cpu_seconds": p and p.get("cpu_seconds"),
                     "ours_peak_rss_mib": o and o.get("peak_rss_mib"), "peer_peak_rss_mib": p and p.get("peak_rss_mib"),
                     "ratio_wall": ratio(o and o.get("seconds"), p and p.get("seconds")),
                     "ratio_cpu": ratio(o and o.get("cpu_seconds"), p and p.get("cpu_seconds")),
                     "note": note})

    row("SQL: CSV read + staging", og.get("sql_staging"), pg.get("sql_staging"),
        "ours lands every row as Parquet first and keeps rejected rows for quarantine")
    row("SQL: intermediate + features", og.get("sql_features"), pg.get("sql_features"),
        "peer includes the hand-off to pandas")
    row("CLV fit + scoring (in the run)", og.get("clv"), pg.get("clv"),
        "ours: the customer_value model step")
    if oneshot:
        row("CLV fit, same rows (BG/NBD+GG)", {"seconds": oneshot["clv_fit_seconds"], "cpu_seconds": oneshot.get("clv_fit_cpu_seconds")},
            psteps.get("clv_fit"), "ours: benches/clv.rs one-shot on the peer's exported summary")
        row("CLV scoring, same rows", {"seconds": oneshot["clv_score_seconds"], "cpu_seconds": oneshot.get("clv_score_cpu_seconds")},
            psteps.get("clv_score"),
            "ours: one-shot, as in the customer_value model")
        if "rfm_seconds" in oneshot:
            row("RFM scores, same rows", {"seconds": oneshot["rfm_seconds"], "cpu_seconds": oneshot.get("rfm_cpu_seconds")},
                psteps.get("rfm"),
                "ours: three quantile_scores calls; peer also names segments")
    row("segments (ours: 9 schemes incl. k-means, + migration; peer: RFM)", og.get("segments"), pg.get("segments"),
        "ours does RFM, RFM8, value tiers, current value, lifecycle, preference, usage, value x loyalty, k-means with k by silhouette, and migration")
    row("k-means (ours: inside segments)", og.get("kmeans"), pg.get("kmeans"),
        "" if og.get("kmeans") else "ours: in the segments step (per-scheme times in run_results models.segments.seconds_by_scheme)")
    row("write outputs", og.get("write"), pg.get("write"), "ours: 9 tables, peer: 3")
    row("ours only: segment_inputs, segment_summary, value_concentration, quarantine, checks", og.get("ours_only"), None)
    row("peer only: Python imports", None, pg.get("peer_only"))
    comparable = ("sql_staging", "sql_features", "clv", "segments", "write")
    sum_stage = lambda g, k: sum(g[s][k] for s in comparable if s in g)
    row("comparable stages (sum of the above in both)",
        {"seconds": sum_stage(og, "seconds"), "cpu_seconds": sum_stage(og, "cpu_seconds")},
        {"seconds": sum_stage(pg, "seconds"), "cpu_seconds": sum_stage(pg, "cpu_seconds")})
    row("TOTAL process (end to end)", {"seconds": o_wall, "cpu_seconds": o_cpu, "peak_rss_mib": o_peak},
        {"seconds": p_wall, "cpu_seconds": p_cpu, "peak_rss_mib": p_peak})

    agree = agreement(args.ours_warehouse, args.peer_out, run["period"])
    ours_model = {m["model"]: dict(m["params"]) for m in run.get("models", {}).get("customer_value", [])}

    title = f"{args.customers:,} customers, period {run['period']}"
    print(f"\n=== side by side: {title} ===")
    print(f"{'stage':<46}{'ours s':>9}{'peer s':>9}{'wall o/p':>9}{'ours cpu':>9}{'peer cpu':>9}{'cpu o/p':>8}{'ours MiB':>9}{'peer MiB':>9}")
    fmt = lambda v, w, d=2: f"{v:>{w}.{d}f}" if isinstance(v, (int, float)) and v is not None else f"{'-':>{w}}"
    for r in rows:
        print(f"{r['stage'][:45]:<46}{fmt(r['ours_seconds'], 9)}{fmt(r['peer_seconds'], 9)}{fmt(r['ratio_wall'], 9, 3)}"
              f"{fmt(r['ours_cpu_seconds'], 9)}{fmt(r['peer_cpu_seconds'], 9)}{fmt(r['ratio_cpu'], 8, 3)}"
              f"{fmt(r['ours_peak_rss_mib'], 9, 0)}{fmt(r['peer_peak_rss_mib'], 9, 0)}")
    print("load average (1, 5, 15 min) at the end: %.1f %.1f %.1f on %d cores" % (*os.getloadavg(), os.cpu_count()))
    print(f"end to end: crm-pipeline {o_wall:.1f} s, peer {p_wall:.1f} s -> peer / ours = {p_wall / o_wall:.2f}x; "
          f"peak RSS {o_peak:.0f} MiB vs {p_peak:.0f} MiB")
    a = agree
    print("agreement:")
    print(f"  customers {a['ours']['customers']:,} vs {a['peer']['customers']:,} (in both {a['customers_in_both']:,}, "
          f"only ours {a['customers_only_ours']:,}, only peer {a['customers_only_peer']:,}); "
          f"buyers {a['ours']['buyers']:,} vs {a['peer']['buyers']:,}")
    print(f"  total revenue {a['ours']['total_revenue']:,.2f} vs {a['peer']['total_revenue']:,.2f}; "
          f"orders {a['ours']['total_orders']:,} vs {a['peer']['total_orders']:,}; "
          f"margin {a['ours']['total_margin']:,.2f} vs {a['peer']['total_margin']:,.2f}")
    print(f"  feature rows identical (orders, revenue, recency, frequency, categories, contacts, interactions, age band): "
          f"{a['feature_rows_identical_share']:.6f}")
    print(f"  RFM score identical: {a['rfm_score_identical_share']:.6f}, segment identical: "
          f"{a['rfm_segment_identical_share']:.6f} ({a['rfm_customers_compared']:,} buyers)")
    print(f"  CLV ({a['clv_customers_compared']:,} customers): median relative difference {a['clv_median_rel_diff']:.2e}, "
          f"p99 {a['clv_p99_rel_diff']:.2e}, correlation {a['clv_correlation']:.8f}, "
          f"total {a['clv_total_ours']:,.0f} vs {a['clv_total_peer']:,.0f}; max |p_alive diff| {a['p_alive_max_abs_diff']:.2e}")
    print(f"  BG/NBD ours {ours_model.get('bgnbd')} vs lifetimes {peer['bgnbd']}")
    print(f"  Gamma-Gamma ours {ours_model.get('gamma_gamma')} vs lifetimes {peer['gamma_gamma']}")

    result = {"customers": args.customers, "period": run["period"], "run_id": run.get("run_id"),
              "ours": {"wall_seconds": o_wall, "cpu_seconds": o_cpu, "peak_rss_mib": o_peak, "steps": run["steps"],
                       "models": ours_model, "oneshot": oneshot},
              "peer": {"wall_seconds": p_wall, "cpu_seconds": p_cpu, "peak_rss_mib": p_peak, "steps": peer["steps"],
                       "versions": peer["versions"], "bgnbd": peer["bgnbd"], "gamma_gamma": peer["gamma_gamma"], "k": peer["k"]},
              "stages": rows, "agreement": agree, "load_average_1_5_15": os.getloadavg(),
              "end_to_end_speedup": p_wall / o_wall}
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1, default=lambda v: None if isinstance(v, float) and math.isnan(v) else v)


if __name__ == "__main__":
    main()
