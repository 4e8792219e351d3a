"""Airflow DAGs for crm-pipeline (Airflow 2.x and 3.x).

`crm_pipeline` runs `crm-pipeline run --period P` once per closed month (pipeline.yaml's
`period.grain: month`). Its timetable is an explicit data-interval timetable,
`CronDataIntervalTimetable("0 0 1 * *")` in the business time zone (UTC by default), so the run
that starts on 1 July has the data interval [1 June, 1 July) on Airflow 2 and 3 alike, and the
period is the month that just closed (2024-06). `crm_pipeline_backfill` is triggered by hand
with `from` / `to` and runs `crm-pipeline backfill` over the range in one task.

Each task runs the job as a subprocess (not a BashOperator) so its exit code decides what
Airflow does (README, "Exit codes"):

    0  success; the JSON summary line (a dict) is the task's XCom `return_value`
    1  internal error (a bug)                              -> fail, no retry
    2  configuration or usage error                        -> fail, no retry
    3  data-quality failure, nothing published             -> fail, no retry
    4  source/storage failure or the period's lock is held -> retry (with backoff)
    killed by a signal (e.g. the OOM killer)               -> retry
    any other code                                         -> fail, no retry

The run id is `<dag_id>__<period>__try<N>`, so every attempt keeps its own
`<warehouse>/_runs/<run_id>/run_results.json`. The job's stderr is streamed into the task log.
Retries of the backfill task add `--only-missing`, so they resume where the failed attempt
stopped and publish each period once.

Settings (infra/airflow/README.md has the full table). Read when the task runs, an Airflow
Variable first, then the environment variable, then the default:

    crm_pipeline_bin        / CRM_PIPELINE_BIN         binary (default: `crm-pipeline` on PATH)
    crm_pipeline_config     / CRM_PIPELINE_CONFIG      pipeline.yaml; unset: the binary's own job
    crm_pipeline_raw        / CRM_RAW_URL              --raw (unset: the job's default)
    crm_pipeline_warehouse  / CRM_WAREHOUSE_URL        --warehouse (unset: the job's default)
    crm_pipeline_verbosity  / CRM_PIPELINE_VERBOSITY   0 warnings only, 1 progress (-v), 2 debug

Read when the DAG file is parsed (environment only, of the scheduler / DAG processor):
CRM_PIPELINE_RETRIES (3), CRM_PIPELINE_RETRY_DELAY_SECONDS (600), CRM_PIPELINE_TIMEOUT_MINUTES
(240), CRM_PIPELINE_BACKFILL_TIMEOUT_MINUTES (1440), CRM_PIPELINE_START_DATE (2023-01-01),
CRM_PIPELINE_TIMEZONE (UTC; set it to pipeline.yaml's `time_zone`).

Backfill history on Airflow 3 with `airflow backfill create --dag-id crm_pipeline --from-date
2023-01-01 --to-date 2024-06-01 --max-active-runs 1` (logical dates are the intervals' starts:
2023-01-01 is the run for 2023-01); on Airflow 2 with `airflow dags backfill -s 2023-01-01 -e 2024-06-01
crm_pipeline`. Or trigger `crm_pipeline_backfill` with `{"from": "2023-01", "to": "2024-06"}`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
from collections import deque
from datetime import datetime, timedelta

import pendulum

try:  # Airflow 3: the Task SDK
    from airflow.sdk import DAG, Param, Variable, get_current_context, task
except ImportError:  # Airflow 2
    from airflow.decorators import task
    from airflow.models.dag import DAG
    from airflow.models.param import Param
    from airflow.models.variable import Variable
    from airflow.operators.python import get_current_context

try:  # Airflow 3
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # Airflow 2 (and 3.0)
    from airflow.exceptions import AirflowException, AirflowFailException

try:  # Airflow 3.1+
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 2 and 3.0
    from airflow.timetables.interval import CronDataIntervalTimetable

log = logging.getLogger("crm_pipeline_dag")

# --- settings read when the file is parsed (environment of the scheduler / DAG processor) ---


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = float(value)
    except ValueError as e:
        raise ValueError(f"{name}={value!r} must be a number") from e
    if number < 0:
        raise ValueError(f"{name}={value!r} must not be negative")
    return number


RETRIES = int(_env_number("CRM_PIPELINE_RETRIES", 3))
RETRY_DELAY = timedelta(seconds=_env_number("CRM_PIPELINE_RETRY_DELAY_SECONDS", 600))
# 0: no execution_timeout
TIMEOUT = timedelta(minutes=_env_number("CRM_PIPELINE_TIMEOUT_MINUTES", 240)) or None
BACKFILL_TIMEOUT = (
    timedelta(minutes=_env_number("CRM_PIPELINE_BACKFILL_TIMEOUT_MINUTES", 1440)) or None
)
# the business time zone: set it to pipeline.yaml's `time_zone`, so a month closes (and its run
# starts) at midnight there, when the job's open-period gate agrees that it has closed
TIME_ZONE = pendulum.timezone(os.environ.get("CRM_PIPELINE_TIMEZONE", "").strip() or "UTC")
START_DATE = pendulum.instance(
    datetime.strptime(
        os.environ.get("CRM_PIPELINE_START_DATE", "").strip() or "2023-01-01", "%Y-%m-%d"
    ),
    tz=TIME_ZONE,
)

# exit codes (README, "Exit codes")
EXIT_MEANING = {
    1: "internal error in crm-pipeline (a bug); nothing was published; not retried",
    2: "configuration or usage error (pipeline.yaml, SQL, flags, settings); fix it, a retry "
    "would fail the same way; not retried",
    3: "data-quality failure: nothing was published; look at the quarantine and the run "
    "results; not retried",
    4: "a source could not be read, the warehouse could not be written, or another run holds "
    "the period's lock; retried while tries are left",
}
NO_RETRY = {1, 2, 3}
RETRY = {4}

# --- settings read when a task runs: Airflow Variable, then environment, then default ---

SETTINGS = {
    # name: (Airflow Variable, environment variable)
    "bin": ("crm_pipeline_bin", "CRM_PIPELINE_BIN"),
    "config": ("crm_pipeline_config", "CRM_PIPELINE_CONFIG"),
    "raw": ("crm_pipeline_raw", "CRM_RAW_URL"),
    "warehouse": ("crm_pipeline_warehouse", "CRM_WAREHOUSE_URL"),
    "verbosity": ("crm_pipeline_verbosity", "CRM_PIPELINE_VERBOSITY"),
}


def setting(name: str) -> str | None:
    """A runtime setting: its Airflow Variable, else its environment variable, else None."""
    variable, env = SETTINGS[name]
    try:
        # the default is positional: `default_var=` on Airflow 2, `default=` on Airflow 3
        value = Variable.get(variable, None)
    except Exception as e:  # no metadata DB / API reachable: fall back to the environment
        log.warning("cannot read Airflow Variable %s (%s); using the environment", variable, e)
        value = None
    if value is None or not str(value).strip():
        value = os.environ.get(env)
    value = (value or "").strip()
    return value or None


def job_flags() -> tuple[str, list[str], dict[str, str]]:
    """The binary, the job's location flags and the subprocess environment."""
    binary = setting("bin") or "crm-pipeline"
    resolved = shutil.which(binary)
    if resolved is None:
        raise AirflowFailException(
            f"crm-pipeline binary `{binary}` not found (not an executable path, not on PATH); "
            "set the Airflow Variable crm_pipeline_bin or CRM_PIPELINE_BIN"
        )
    flags: list[str] = []
    config = setting("config")
    if config:
        flags += ["--config", config]
    for name in ("raw", "warehouse"):
        value = setting(name)
        if value:
            flags += [f"--{name}", value]
        else:
            log.warning(
                "no %s location set (Variable %s / %s): the job's default applies",
                name,
                *SETTINGS[name],
            )
    verbosity = setting("verbosity") or "1"
    if verbosity not in ("0", "1", "2"):
        raise AirflowFailException(f"crm_pipeline_verbosity / CRM_PIPELINE_VERBOSITY is {verbosity!r}: use 0, 1 or 2")
    if verbosity != "0":
        # -v: progress (one line per step) in the task log; -vv: debug
        flags.append("-" + "v" * int(verbosity))
    env = dict(os.environ)
    # the binary reads CRM_PIPELINE_CONFIG itself; --config is passed explicitly when set, and
    # with no config the binary's built-in job applies
    env.pop("CRM_PIPELINE_CONFIG", None)
    return resolved, flags, env


# --- periods ---


def period_of(data_interval_start: datetime | None, data_interval_end: datetime | None) -> str:
    """The month that closed at the end of the data interval (YYYY-MM), in the business zone.

    With the monthly data-interval timetable the interval is [1 June, 1 July) and this is
    2024-06. It is computed from the interval's end so that even a zero-length interval
    (a trigger timetable, or Airflow 3's `@monthly`) at 1 July gives June. Airflow hands the
    interval over in UTC; 1 July 00:00 in New York is 04:00 UTC, still June there.
    """
    end = data_interval_end or data_interval_start
    if end is None:
        raise AirflowFailException("the DAG run has no data interval; cannot tell the period")
    local = pendulum.instance(end).in_timezone(TIME_ZONE)
    return local.subtract(microseconds=1).strftime("%Y-%m")


def period_for(context) -> str:
    """The period of a task's DAG run: from its data interval, or, for an Airflow 3 run
    triggered without a logical date (no data interval), the last month that closed before the
    run's `run_after`, which is what the timetable infers for a manual run with one."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is None and end is None:
        run_after = getattr(context.get("dag_run"), "run_after", None) or context.get("logical_date")
        if run_after is None:
            raise AirflowFailException("the DAG run has no data interval and no run_after")
        end = pendulum.instance(run_after).in_timezone(TIME_ZONE).start_of("month")
        log.info("the DAG run has no data interval; the period is the month before %s", end)
    return period_of(start, end)


def run_id_for(dag_id: str, period: str, try_number: int) -> str:
    """`<dag_id>__<period>__try<N>`, only [A-Za-z0-9._-] (the job's run-id rule)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{dag_id}__{period}__try{try_number}")


# --- running the job ---


def _summary(stdout: str) -> dict | None:
    """The last stdout line parsed as JSON, if it is a JSON object."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return None


def _stop(proc: subprocess.Popen) -> None:
    """End the job (task timeout, task killed): SIGTERM, then SIGKILL after 30 s."""
    if proc.poll() is not None:
        return
    log.warning("stopping crm-pipeline (pid %s)", proc.pid)
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def execute(args: list[str], env: dict[str, str]) -> dict:
    """Run the job, stream its stderr into the task log, map its exit code.

    Returns the summary (the last stdout line, a dict) on exit 0; raises AirflowFailException
    (no retry) or AirflowException (retried) otherwise.
    """
    log.info("running: %s", shlex.join(args))
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        errors="replace",
        bufsize=1,
    )
    tail: deque[str] = deque(maxlen=20)

    def pump() -> None:
        for line in proc.stderr:
            line = line.rstrip("\n")
            tail.append(line)
            # the job's own level, so the task log's level filter works on its lines
            if line.startswith("error:") or " ERROR " in line[:48]:
                level = logging.ERROR
            elif line.startswith("warning:") or " WARN " in line[:48]:
                level = logging.WARNING
            else:
                level = logging.INFO
            log.log(level, "[crm-pipeline] %s", line)

    reader = threading.Thread(target=pump, name="crm-pipeline-stderr", daemon=True)
    reader.start()
    try:
        stdout = proc.stdout.read()
        code = proc.wait()
    except BaseException:  # execution_timeout, task killed: do not leave the job running
        _stop(proc)
        raise
    finally:
        reader.join(timeout=10)
    summary = _summary(stdout)
    if summary is not None:
        log.info("summary: %s", json.dumps(summary, sort_keys=True))
    else:
        log.warning("no JSON summary on the last stdout line; stdout was: %r", stdout[-2000:])

    if code == 0:
        if summary is None:
            raise AirflowFailException("crm-pipeline exited 0 without its JSON summary line")
        return summary

    # a failed run's summary is still worth having: push it under `summary`
    if summary is not None:
        try:
            get_current_context()["ti"].xcom_push(key="summary", value=summary)
        except Exception as e:  # never hide the job's failure behind an XCom problem
            log.warning("could not push the summary to XCom: %s", e)
    detail = (summary or {}).get("error") or (tail[-1] if tail else "")
    detail = detail[len("error: ") :] if detail.startswith("error: ") else detail
    where = (summary or {}).get("run_results")
    message = f"crm-pipeline exited {code}" if code > 0 else ""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        message = f"crm-pipeline was killed by signal {name}; retried while tries are left"
    elif code in EXIT_MEANING:
        message += f": {EXIT_MEANING[code]}"
    else:
        message += ": unknown exit code (a bug?); not retried"
    if detail:
        message += f". Error: {detail}"
    if where:
        message += f". Run results: {where}"
    if code < 0 or code in RETRY:
        raise AirflowException(message)
    raise AirflowFailException(message)


# --- the monthly DAG ---

with DAG(
    dag_id="crm_pipeline",
    description="crm-pipeline run for the month that just closed",
    # an explicit data interval: the run after 1 July covers [1 June, 1 July) on Airflow 2 and 3
    # (on Airflow 3 `schedule="@monthly"` is a trigger timetable with a zero-length interval)
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone=TIME_ZONE),
    start_date=START_DATE,
    catchup=True,
    # a period reads the previous period's published partitions: one month at a time, in order
    max_active_runs=1,
    default_args={
        "retries": RETRIES,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": True,
        "max_retry_delay": max(RETRY_DELAY, timedelta(hours=1)),
    },
    tags=["crm-pipeline"],
    doc_md=__doc__,
) as dag:

    # multiple_outputs=False: one XCom (return_value), not one per key of the summary
    @task(task_id="run_period", execution_timeout=TIMEOUT, multiple_outputs=False)
    def run_period() -> dict:
        """`crm-pipeline run --period <the closed month>`; returns the job's summary."""
        context = get_current_context()
        period = period_for(context)
        ti = context["ti"]
        run_id = run_id_for(ti.dag_id, period, ti.try_number)
        binary, flags, env = job_flags()
        args = [binary, "run", "--period", period, "--run-id", run_id, *flags]
        return execute(args, env)

    run_period()


# --- the backfill DAG ---

with DAG(
    dag_id="crm_pipeline_backfill",
    description="crm-pipeline backfill over a range of periods, resumable",
    schedule=None,  # triggered by hand with a range
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    params={
        "from": Param("2023-01", type="string", description="first period (e.g. 2023-01)"),
        "to": Param("2024-06", type="string", description="last period, inclusive"),
        "jobs": Param(2, type="integer", minimum=1, description="periods computed at a time"),
        "only_missing": Param(
            False,
            type="boolean",
            description="skip periods already published, from the first attempt on "
            "(retries always do)",
        ),
    },
    default_args={
        "retries": RETRIES,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": True,
        "max_retry_delay": max(RETRY_DELAY, timedelta(hours=1)),
    },
    tags=["crm-pipeline"],
    doc_md=__doc__,
) as backfill_dag:

    @task(task_id="backfill", execution_timeout=BACKFILL_TIMEOUT, multiple_outputs=False)
    def backfill() -> dict:
        """`crm-pipeline backfill --from --to --jobs`; a retry adds `--only-missing`."""
        context = get_current_context()
        params = context["params"]
        binary, flags, env = job_flags()
        args = [
            binary,
            "backfill",
            "--from",
            str(params["from"]),
            "--to",
            str(params["to"]),
            "--jobs",
            str(params["jobs"]),
        ]
        # a retry resumes: the periods the failed attempt published are skipped
        if params.get("only_missing") or context["ti"].try_number > 1:
            args.append("--only-missing")
        return execute([*args, *flags], env)

    backfill()
