"""Assertions for scripts/test-airflow.sh, run with the Airflow venv's Python.

Each subcommand checks one scenario against what Airflow recorded (its sqlite metadata DB under
$AIRFLOW_HOME) and what the job wrote (the warehouse's `_runs/` and `_backfills/` records and
the published partitions). It prints one line per check and exits 1 on the first failed one.

    checks.py dag                                     the DAG file: structure, timetable, periods
    checks.py success   --wh W --logical-date D --period P [--log F]
    checks.py no-retry  --wh W --logical-date D --period P --exit-code N --log F [--no-record]
    checks.py retried   --wh W --logical-date D --period P --exit-code N
    checks.py timeout   --logical-date D --pid-file F
    checks.py backfill  --wh W --logical-date D --periods P1,P2,P3 --locked P3
    checks.py hold-lock --wh W --period P --periods N  (a live lock owner until a backfill ends)
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import socket
import sqlite3
import sys
import time
from datetime import datetime, timedelta, timezone  # noqa: F401

DAG_FILE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "infra", "airflow", "crm_pipeline_dag.py"
)


class CheckFailed(Exception):
    pass


def ok(condition: bool, what: str, detail: object = "") -> None:
    if not condition:
        raise CheckFailed(f"{what}{': ' + str(detail) if detail != '' else ''}")
    print(f"    ok   {what}")


# --- the metadata DB ---


def db() -> sqlite3.Connection:
    path = os.path.join(os.environ["AIRFLOW_HOME"], "airflow.db")
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn


def parse_ts(value: str | None) -> datetime | None:
    if value is None:
        return None
    ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def dag_run(conn: sqlite3.Connection, dag_id: str, logical_date: str) -> sqlite3.Row:
    """The DAG run of `dag_id` at `logical_date` (YYYY-MM-DD); Airflow 2 calls it execution_date."""
    cols = {r[1] for r in conn.execute("PRAGMA table_info(dag_run)")}
    date_col = "logical_date" if "logical_date" in cols else "execution_date"
    rows = conn.execute(
        f"SELECT run_id, state, data_interval_start, data_interval_end, {date_col} AS logical "
        f"FROM dag_run WHERE dag_id = ? AND substr({date_col}, 1, 10) = ?",
        (dag_id, logical_date),
    ).fetchall()
    ok(len(rows) == 1, f"one DAG run of {dag_id} at {logical_date}", [dict(r) for r in rows])
    return rows[0]


def task_instance(conn, dag_id: str, run_id: str, task_id: str) -> sqlite3.Row:
    rows = conn.execute(
        "SELECT state, try_number, max_tries FROM task_instance "
        "WHERE dag_id = ? AND run_id = ? AND task_id = ?",
        (dag_id, run_id, task_id),
    ).fetchall()
    ok(len(rows) == 1, f"one task instance {dag_id}.{task_id}", len(rows))
    return rows[0]


def xcom(conn, dag_id: str, run_id: str, task_id: str, key: str):
    rows = conn.execute(
        "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = ?",
        (dag_id, run_id, task_id, key),
    ).fetchall()
    if not rows:
        return None
    raw = rows[0][0]
    if isinstance(raw, bytes):  # Airflow 2 keeps JSON bytes
        raw = raw.decode()
    # a dict pushed as XCom is a JSON object here; a string (what BashOperator pushed) stays a str
    return json.loads(raw)


def month_before(end: datetime) -> str:
    return (end - timedelta(microseconds=1)).strftime("%Y-%m")


# --- the warehouse ---


def run_record(wh: str, run_id: str) -> dict | None:
    path = os.path.join(wh, "_runs", run_id, "run_results.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def local(url: str) -> str:
    return url[len("file://") :] if url.startswith("file://") else url


def check_published(record: dict, period: str) -> None:
    outputs = record.get("outputs") or []
    ok(len(outputs) > 0, f"run {record.get('run_id')} lists the outputs it published", outputs)
    for out in outputs:
        table = out["table"]
        files = glob.glob(os.path.join(local(out["location"]), "*.parquet"))
        ok_quiet = (
            out["period"] == period
            and out["location"].rstrip("/").endswith(f"{table}/period={period}")
            and len(files) > 0
        )
        if not ok_quiet:
            raise CheckFailed(f"{table}/period={period}/ has no Parquet file: {out}")
    tables = sorted(o["table"] for o in outputs)
    print(f"    ok   period={period}/ has Parquet files in all {len(tables)} tables: {' '.join(tables)}")


def dag_ids_runs(wh: str) -> list[str]:
    return sorted(os.listdir(os.path.join(wh, "_runs"))) if os.path.isdir(os.path.join(wh, "_runs")) else []


# --- scenarios ---


def cmd_dag(a) -> None:
    """Import the DAG file as the scheduler would and check what it declares."""
    spec = importlib.util.spec_from_file_location("crm_pipeline_dag", DAG_FILE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    dag, bf = mod.dag, mod.backfill_dag
    ok(dag.dag_id == "crm_pipeline" and bf.dag_id == "crm_pipeline_backfill", "both DAGs defined")
    tt = dag.timetable
    ok(type(tt).__name__ == "CronDataIntervalTimetable", "crm_pipeline uses CronDataIntervalTimetable", type(tt))
    try:  # Airflow 3.1+: the Task SDK's timetable is the DAG author's side; scheduling uses core's
        from airflow.serialization.encoders import coerce_to_core_timetable

        core = coerce_to_core_timetable(tt)
    except ImportError:
        core = tt
    from airflow.timetables.base import DataInterval, TimeRestriction

    import pendulum

    tz = os.environ.get("CRM_PIPELINE_TIMEZONE") or "UTC"

    def at(y: int, m: int, d: int = 1):  # midnight in the business time zone
        return pendulum.datetime(y, m, d, tz=tz)

    restriction = TimeRestriction(earliest=dag.start_date, latest=None, catchup=True)
    first = core.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    ok(
        first.data_interval.start == at(2023, 1) and first.data_interval.end == at(2023, 2),
        f"first scheduled run covers [2023-01-01, 2023-02-01) {tz}",
        first,
    )
    ok(mod.period_of(first.data_interval.start, first.data_interval.end) == "2023-01", "its period is 2023-01")
    july = core.next_dagrun_info(
        last_automated_data_interval=DataInterval(at(2024, 5), at(2024, 6)), restriction=restriction
    )
    ok(
        july.run_after == at(2024, 7) and july.data_interval.start == at(2024, 6) and july.data_interval.end == at(2024, 7),
        f"the run after 2024-07-01 00:00 {tz} covers [2024-06-01, 2024-07-01)",
        july,
    )
    # the task gets the interval in UTC (1 July 00:00 New York is 04:00 UTC)
    utc_end = pendulum.instance(july.data_interval.end).in_timezone("UTC")
    period = mod.period_of(july.data_interval.start, utc_end)
    ok(period == "2024-06", f"the run on 1 July computes 2024-06 (interval end {utc_end.isoformat()})", period)
    zero = at(2024, 7)
    ok(mod.period_of(zero, zero) == "2024-06", "a zero-length interval at 1 July still gives 2024-06")
    from types import SimpleNamespace

    no_interval = {"data_interval_start": None, "data_interval_end": None, "logical_date": None}
    for run_after, want in ((at(2024, 7, 15), "2024-06"), (at(2024, 7), "2024-06"), (at(2024, 6, 30), "2024-05")):
        got = mod.period_for({**no_interval, "dag_run": SimpleNamespace(run_after=run_after)})
        ok(got == want, f"a run with no data interval, run_after {run_after.to_date_string()}: {want}", got)
    ok(mod.period_for({"data_interval_start": at(2024, 6), "data_interval_end": at(2024, 7)}) == "2024-06", "period_for reads the data interval")
    ok(mod.run_id_for("crm_pipeline", "2024-06", 3) == "crm_pipeline__2024-06__try3", "run id format")
    ok(mod.run_id_for("a b:c+d", "2024-06", 1) == "a_b_c_d__2024-06__try1", "run id keeps [A-Za-z0-9._-] only")
    (run_task,) = dag.tasks
    (bf_task,) = bf.tasks
    retries = int(os.environ.get("CRM_PIPELINE_RETRIES", "3"))
    ok(run_task.retries == retries and bf_task.retries == retries, f"both tasks retry {retries} times")
    ok(run_task.execution_timeout is not None and bf_task.execution_timeout is not None, "both tasks have an execution_timeout")
    ok(dag.max_active_runs == 1 and dag.catchup, "crm_pipeline: catchup, one run at a time")


def cmd_success(a) -> None:
    conn = db()
    dr = dag_run(conn, "crm_pipeline", a.logical_date)
    ok(dr["state"] == "success", "the DAG run succeeded", dr["state"])
    ti = task_instance(conn, "crm_pipeline", dr["run_id"], "run_period")
    ok(ti["state"] == "success" and ti["try_number"] == 1, "run_period succeeded on its first try", dict(ti))
    expected = month_before(parse_ts(dr["data_interval_end"]))
    ok(expected == a.period, f"the month before the data interval's end ({dr['data_interval_end']}) is {a.period}", expected)
    summary = xcom(conn, "crm_pipeline", dr["run_id"], "run_period", "return_value")
    ok(isinstance(summary, dict), "the XCom return_value is a dict", type(summary))
    ok(summary.get("status") == "success" and summary.get("exit_code") == 0, "XCom: status success, exit code 0", summary)
    ok(summary.get("period") == a.period, f"XCom: period {a.period}", summary.get("period"))
    run_id = f"crm_pipeline__{a.period}__try1"
    ok(summary.get("run_id") == run_id, f"XCom: run id {run_id}", summary.get("run_id"))
    record = run_record(a.wh, run_id)
    ok(record is not None and record.get("status") == "success", f"{a.wh}/_runs/{run_id}/run_results.json: success", record and record.get("status"))
    check_published(record, a.period)
    if a.log:
        text = open(a.log, errors="replace").read()
        ok("[crm-pipeline] " in text, "the job's stderr is in the task log")


def _failed_once_or_more(a, expect_tries: int, record: bool = True) -> sqlite3.Row:
    conn = db()
    dr = dag_run(conn, "crm_pipeline", a.logical_date)
    ok(dr["state"] == "failed", "the DAG run failed", dr["state"])
    ti = task_instance(conn, "crm_pipeline", dr["run_id"], "run_period")
    ok(ti["state"] == "failed", "run_period failed", ti["state"])
    ok(ti["max_tries"] >= 1, f"retries were allowed (max_tries {ti['max_tries']})", dict(ti))
    ok(ti["try_number"] == expect_tries, f"{expect_tries} attempt(s) (try_number {ti['try_number']})", dict(ti))
    summary = xcom(conn, "crm_pipeline", dr["run_id"], "run_period", "summary")
    if not record:
        # the job fails before its run starts (e.g. it cannot read the job definition): no
        # summary line, no run record
        ok(summary is None, "no summary (the job stopped before its run started)", summary)
        runs = dag_ids_runs(a.wh)
        ok(runs == [], "no run record in the warehouse", runs)
        return ti
    ok(isinstance(summary, dict) and summary.get("exit_code") == a.exit_code, f"XCom summary: exit code {a.exit_code}", summary)
    ok(summary.get("status") == "failed" and summary.get("period") == a.period, f"XCom summary: failed, period {a.period}", summary)
    runs = [r for r in dag_ids_runs(a.wh) if r.startswith(f"crm_pipeline__{a.period}__try")]
    want = [f"crm_pipeline__{a.period}__try{n}" for n in range(1, expect_tries + 1)]
    ok(runs == want, f"the warehouse has one run record per attempt: {want}", runs)
    for run_id in want:
        rec = run_record(a.wh, run_id)
        ok(rec is not None and rec.get("status") == "failed", f"{run_id}: run_results.json says failed", rec and rec.get("status"))
    return ti


def cmd_no_retry(a) -> None:
    _failed_once_or_more(a, 1, record=not a.no_record)
    text = open(a.log, errors="replace").read()
    ok("[crm-pipeline] error:" in text, "the job's stderr (its `error:` line) is in the task log")
    ok(f"crm-pipeline exited {a.exit_code}" in text and "not retried" in text, f"the failure names exit {a.exit_code}, not retried")
    if a.no_config_flag:
        lines = [l for l in text.splitlines() if "running: " in l and " run --period " in l]
        ok(len(lines) == 1 and "--config" not in lines[0], "no --config passed when no config is set", lines)


def cmd_retried(a) -> None:
    ti = _failed_once_or_more(a, a.tries)
    ok(ti["try_number"] > 1, "it was retried")


def cmd_timeout(a) -> None:
    conn = db()
    dr = dag_run(conn, "crm_pipeline", a.logical_date)
    ti = task_instance(conn, "crm_pipeline", dr["run_id"], "run_period")
    ok(ti["state"] == "failed" and ti["try_number"] == 1, "run_period failed on its first try", dict(ti))
    pid = int(open(a.pid_file).read().split()[0])
    gone = not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    ok(gone, f"the timed-out job (pid {pid}) was stopped, not left running")
    text = open(a.log, errors="replace").read()
    ok("AirflowTaskTimeout" in text or "Timeout" in text, "the task log names the timeout")


def cmd_backfill(a) -> None:
    periods = a.periods.split(",")
    conn = db()
    dr = dag_run(conn, "crm_pipeline_backfill", a.logical_date)
    ok(dr["state"] == "success", "the backfill DAG run succeeded", dr["state"])
    ti = task_instance(conn, "crm_pipeline_backfill", dr["run_id"], "backfill")
    ok(ti["state"] == "success" and ti["try_number"] == 2, "backfill succeeded on its retry (try 2)", dict(ti))
    summary = xcom(conn, "crm_pipeline_backfill", dr["run_id"], "backfill", "return_value")
    ok(isinstance(summary, dict) and summary.get("status") == "success", "the XCom return_value is a dict, status success", summary)
    docs = []
    for path in glob.glob(os.path.join(a.wh, "_backfills", "*", "backfill_results.json")):
        with open(path) as f:
            docs.append(json.load(f))
    docs.sort(key=lambda d: d["started_at"] + d["backfill_id"])
    ok(len(docs) == 2, "two backfill attempts recorded", [d["backfill_id"] for d in docs])
    first, second = docs
    status1 = {p["period"]: (p["status"], p.get("exit_code")) for p in first["periods"]}
    ok(
        status1 == {p: (("failed", 4) if p == a.locked else ("success", 0)) for p in periods},
        f"attempt 1 ran every period; {a.locked} failed with exit 4 (its lock was held)",
        status1,
    )
    ok("--only-missing" not in first["command"], "attempt 1 ran without --only-missing", first["command"])
    ok("--only-missing" in second["command"], "attempt 2 (the retry) ran with --only-missing", second["command"])
    status2 = {p["period"]: p["status"] for p in second["periods"]}
    ok(
        status2 == {p: ("success" if p == a.locked else "skipped") for p in periods},
        f"attempt 2 skipped the published periods and ran {a.locked} only",
        status2,
    )
    for p in second["periods"] + first["periods"]:
        if p["status"] != "success":
            continue
        rec = json.load(open(local(p["run_results"])))
        check_published(rec, p["period"])
    for period in periods:
        tables = [d for d in os.listdir(a.wh) if not d.startswith("_")]
        for t in tables:
            files = glob.glob(os.path.join(a.wh, t, f"period={period}", "*.parquet"))
            if not files:
                raise CheckFailed(f"{t}/period={period}/ has no Parquet file")
        print(f"    ok   every table ({len(tables)}) has period={period}/")


def cmd_hold_lock(a) -> None:
    """Hold `<wh>/_locks/period=<P>.json` as a live process on this host until a backfill
    over `--periods` periods has finished (its backfill_results.json is no longer `running`).
    The lock's fields follow jobs/publish/lock.rs (LockOwner: run_id, host, pid, acquired_at).
    Once this process is gone, the next run takes the lock over at once (same host, no pid)."""
    os.makedirs(os.path.join(a.wh, "_locks"), exist_ok=True)
    host = os.environ.get("HOSTNAME") or open("/etc/hostname").read().strip() or socket.gethostname()
    owner = {
        "run_id": "test-airflow-lock-holder",
        "host": host,
        "pid": os.getpid(),
        "acquired_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    with open(os.path.join(a.wh, "_locks", f"period={a.period}.json"), "w") as f:
        json.dump(owner, f)
    print(f"holding the lock of {a.period} as pid {os.getpid()}", flush=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for path in glob.glob(os.path.join(a.wh, "_backfills", "*", "backfill_results.json")):
            try:
                doc = json.load(open(path))
            except ValueError:
                continue  # being rewritten
            if doc.get("status") in ("success", "failed"):
                print(f"backfill {doc.get('backfill_id')} ended ({doc.get('status')}): releasing", flush=True)
                return
        time.sleep(0.1)
    print("no backfill ended within 300 s", flush=True)


def main() -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("dag")
    for name in ("success", "no-retry", "retried", "timeout", "backfill", "hold-lock"):
        s = sub.add_parser(name)
        s.add_argument("--wh")
        s.add_argument("--logical-date")
        s.add_argument("--period")
        s.add_argument("--periods")
        s.add_argument("--locked")
        s.add_argument("--exit-code", type=int)
        s.add_argument("--tries", type=int, default=2)
        s.add_argument("--log")
        s.add_argument("--pid-file")
        s.add_argument("--no-config-flag", action="store_true")
        s.add_argument("--no-record", action="store_true")
    a = p.parse_args()
    fn = {
        "dag": cmd_dag,
        "success": cmd_success,
        "no-retry": cmd_no_retry,
        "retried": cmd_retried,
        "timeout": cmd_timeout,
        "backfill": cmd_backfill,
        "hold-lock": cmd_hold_lock,
    }[a.cmd]
    try:
        fn(a)
    except CheckFailed as e:
        print(f"    FAIL {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
