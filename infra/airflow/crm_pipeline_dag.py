"""Airflow DAG: one crm-pipeline run per month, from the data interval.

The job is idempotent per period (a rerun replaces the period's partitions), so Airflow retries
and catch-up are safe. Exit codes (README): 0 success; 2 configuration error (no retry will
help); 3 data-quality failure (nothing published; look at the quarantine and run results);
4 source or storage problem, or another run holds the period's lock (retrying helps); 1 a bug.
The last stdout line is a JSON summary, which BashOperator pushes to XCom.

Backfill history with Airflow itself (`airflow dags backfill -s 2023-01-01 -e 2024-06-30
crm_pipeline`); runs of different periods can go in parallel, but later periods read the
previous period's published partition for growth and migration, so keep max_active_runs=1 when
those figures matter.
"""
from datetime import datetime, timedelta

from airflow import DAG
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
