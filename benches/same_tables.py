#!/usr/bin/env python3
"""Checks that two warehouses hold the same published tables, row for row.

A change meant to alter only speed or structure (a rewritten SQL stage, a streaming writer) must
leave every published value as it was. This reads every `<table>/period=<P>/` folder of both
warehouses with DuckDB (an independent reader), sorts the rows by every column and compares them,
ignoring only the columns that name the run (run_id and the like) and the file names.

Usage: benches/peers/.venv/bin/python benches/same_tables.py OLD_WAREHOUSE NEW_WAREHOUSE
Exit 0 when every table of every period is equal, 1 otherwise (the differing tables are listed).
"""
import pathlib
import sys

import duckdb

# columns that identify the run, not the data
RUN_COLUMNS = {"run_id", "published_at", "attempt"}


def partitions(wh: pathlib.Path):
    for table in sorted(p for p in wh.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        for part in sorted(table.glob("period=*")):
            yield table.name, part.name


def rows(con, folder: pathlib.Path):
    files = sorted(str(f) for f in folder.glob("*.parquet"))
    if not files:
        return [], []
    rel = con.read_parquet(files)
    cols = [c for c in rel.columns if c not in RUN_COLUMNS]
    if not cols:
        return [], []
    quoted = ", ".join(f'"{c}"' for c in cols)
    return cols, con.sql(f"SELECT {quoted} FROM rel ORDER BY ALL").fetchall()


def main() -> int:
    old, new = (pathlib.Path(a) for a in sys.argv[1:3])
    con = duckdb.connect()
    old_parts, new_parts = set(partitions(old)), set(partitions(new))
    bad = []
    for missing in sorted(old_parts ^ new_parts):
        bad.append(f"{missing[0]}/{missing[1]}: only in {'old' if missing in old_parts else 'new'}")
    for table, part in sorted(old_parts & new_parts):
        oc, orows = rows(con, old / table / part)
        nc, nrows = rows(con, new / table / part)
        if oc != nc:
            bad.append(f"{table}/{part}: columns differ: {oc} vs {nc}")
        elif orows != nrows:
            diff = next((i for i, (a, b) in enumerate(zip(orows, nrows)) if a != b), min(len(orows), len(nrows)))
            bad.append(f"{table}/{part}: {len(orows)} vs {len(nrows)} rows, first difference at sorted row {diff}")
        else:
            print(f"same: {table}/{part} ({len(orows)} rows)")
    for b in bad:
        print(f"DIFFERENT: {b}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
