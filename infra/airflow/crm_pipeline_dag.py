"""Airflow DAG: one crm-pipeline run per month, from the data interval.

The job is idempotent per period (a rerun replaces the period's partitions), so Airflow retries
and catch-up are safe. Exit codes (README): 0 success; 2 configuration error (no retry will
help); 3 data-quality failure (nothing published; look at the quarantine and run results);
4 source or storage problem, or another run holds the period's lock (retrying helps); 1 a bug.
The last stdout line is a JSON summary, which BashOperator pushes to XCom.

Backfill history with Airflow itself (`airflow dags backfill -s 2023-01-01 -e 2024-06-30
crm_pipeline`); runs of different periods can go in parallel, but later periods read the
previous period's published partition for growth and migration, so keep max_active_runs=1 when
those figures matter. Or trigger the `crm_pipeline_backfill` DAG below with `from` / `to`:
`crm-pipeline backfill` runs the range in one task, overlapping periods while keeping that order
(README, "Orchestration and backfills"); its retries pass `--only-missing`, so a retried or
killed backfill resumes where it stopped and publishes each period once.
"""
from datetime import datetime, timedelta

from airflow import DAG
from airflow.models.param import Param
from airflow.operators.bash import BashOperator

with DAG(
    dag_id="crm_pipeline",
    schedule="@monthly",
    start_date=datetime(2023, 1, 1),
    catchup=True,
    max_active_runs=1,
    default_args={
        "retries": 3,
        "retry_delay": timedelta(minutes=10),
        "retry_exponential_backoff": True,
    },
) as dag:
    BashOperator(
        task_id="run_period",
        # the month that just closed: the data interval of a @monthly schedule
        bash_command=(
            "crm-pipeline run --period {{ data_interval_start.strftime('%Y-%m') }} "
            "--run-id {{ run_id | replace(':', '_') | replace('+', '_') }} "
            "--raw \"$CRM_RAW_URL\" --warehouse \"$CRM_WAREHOUSE_URL\" --log-format json"
        ),
        do_xcom_push=True,
    )

with DAG(
    dag_id="crm_pipeline_backfill",
    schedule=None,  # triggered by hand with a range
    start_date=datetime(2023, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "from": Param("2023-01", type="string", description="first period"),
        "to": Param("2024-06", type="string", description="last period"),
        "jobs": Param(2, type="integer", minimum=1, description="periods at a time"),
    },
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
) as backfill_dag:
    BashOperator(
        task_id="backfill",
        # a retry resumes: --only-missing skips the periods already published
        bash_command=(
            "crm-pipeline backfill --from {{ params['from'] }} --to {{ params['to'] }} "
            "--jobs {{ params['jobs'] }} {{ '--only-missing' if ti.try_number > 1 else '' }} "
            "--raw \"$CRM_RAW_URL\" --warehouse \"$CRM_WAREHOUSE_URL\" --log-format json"
        ),
        do_xcom_push=True,
    )
