#!/usr/bin/env python3
"""The physical floor of reading the raw extracts: `cat` of the bytes, and DuckDB parsing every
CSV file once with every column as text (no typing, no cleaning), on the same files the
side-by-side benchmark reads. Prints wall and CPU seconds of each.

Usage: benches/peers/.venv/bin/python benches/floor.py target/bench-data/raw-1000000
"""
import glob
import os
import resource
import subprocess
import sys
import time

import duckdb


def cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def timed(label, f):
    w, c = time.perf_counter(), cpu()
    out = f()
    print(f"{label:<40}{time.perf_counter() - w:>8.2f} s wall{cpu() - c:>8.2f} s cpu   {out}")


def main() -> int:
    raw = sys.argv[1]
    # the sources' files; folders starting with _ or . (the generator's ground truth) are not
    # extracts, as the job skips them
    files = sorted(
        f
        for f in glob.glob(os.path.join(raw, "*", "*.csv"))
        if not os.path.basename(os.path.dirname(f)).startswith(("_", "."))
    )
    size = sum(os.path.getsize(f) for f in files)
    subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)  # warm the page cache

    def cat():
        subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)
        return f"{size / 1e6:,.0f} MB in {len(files)} files"

    timed("cat of the bytes", cat)
    con = duckdb.connect()

    def parse():
        rows = 0
        for source in sorted({os.path.dirname(f) for f in files}):
            glob_ = os.path.join(source, "*.csv")
            con.sql(f"CREATE OR REPLACE TABLE t AS SELECT * FROM read_csv('{glob_}', all_varchar = true, header = true)")
            rows += con.sql("SELECT count(*) FROM t").fetchone()[0]
        return f"{rows:,} rows"

    timed("DuckDB parses every CSV once (as text)", parse)
    return 0


if __name__ == "__main__":
    sys.exit(main())
