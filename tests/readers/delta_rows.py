#!/usr/bin/env python3
"""Published partitions as independent readers see them (tests only).

Reads a JSON list of requests on stdin and prints a JSON list of answers, one per request:
  {"delta": TABLE_URI, "period": P, "version": N?, "storage_options": {...}?}
      a Delta table through the `deltalake` package (delta-rs's Python binding, from PyPI),
      at its latest version or at version N (time travel)
  {"parquet": FOLDER}
      a plain Parquet partition folder through pyarrow (missing folder: no rows)
Each answer is {"version": N or null, "run_ids": [distinct run_id, sorted], "rows": [...]}:
every row but run_id and period as a JSON object (keys sorted, values as pyarrow gives them),
sorted, so two tables can be compared line for line whatever wrote them.
"""
import json
import os
import sys


def answer(req):
    version = None
    if "delta" in req:
        from deltalake import DeltaTable

        dt = DeltaTable(
            req["delta"],
            version=req.get("version"),
            storage_options=req.get("storage_options") or None,
        )
        table = dt.to_pyarrow_table(filters=[("period", "=", req["period"])])
        version = dt.version()
    else:
        import pyarrow.dataset as ds

        if not os.path.isdir(req["parquet"]):
            return {"version": None, "run_ids": [], "rows": []}
        table = ds.dataset(req["parquet"], format="parquet").to_table()
    names = [c for c in table.column_names if c not in ("run_id", "period")]
    runs = sorted(set(table.column("run_id").to_pylist())) if "run_id" in table.column_names else []
    rows = sorted(
        json.dumps({c: r[c] for c in sorted(names)}, default=str, sort_keys=True)
        for r in table.select(names).to_pylist()
    )
    return {"version": version, "run_ids": runs, "rows": rows}


json.dump([answer(r) for r in json.load(sys.stdin)], sys.stdout)
