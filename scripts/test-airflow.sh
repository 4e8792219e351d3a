#!/usr/bin/env bash
# The Airflow DAGs of infra/airflow/ on real Apache Airflow 3 and 2, installed from PyPI.
#
# For each Airflow version: a venv (.venv-airflow3/, .venv-airflow2/, kept and reused while its
# pins in tests/airflow/constraints-airflow<N>.txt do not change), a throwaway AIRFLOW_HOME
# (sqlite, `airflow db migrate`) whose dags_folder is infra/airflow, then `airflow dags test`
# for each scenario, checked against Airflow's metadata DB and the job's own run records by
# tests/airflow/checks.py:
#   dag        the DAG file imports; timetable: the run after 1 July covers June (in UTC and in
#              a business time zone west of UTC)
#   success    exit 0: task success, XCom is the summary dict (status success, period 2024-06),
#              every output published; the warehouse comes from an Airflow Variable
#   dq         exit 3 (an error check that cannot pass): failed after exactly one attempt
#   storage    exit 4 (a raw location that does not exist): retried, one run record per try
#   no-config  no config set: no --config passed (exit 2 not retried until the binary has a
#              built-in job; a success once it has)
#   timeout    execution_timeout stops the job (a stand-in that never ends)
#   backfill   crm_pipeline_backfill over 2024-03..2024-05; attempt 1 finds 2024-05 locked
#              (exit 4), the retry resumes with --only-missing; every period published
#
# Settings: CRM_PIPELINE_BIN (the binary; default target/debug/crm-pipeline, else crm-pipeline
# on PATH), CRM_PIPELINE_TEST_CONFIG (the job definition for a binary without a built-in job;
# default pipeline.yaml of this repo, with sql/ beside it), AIRFLOW_TEST_VERSIONS (default
# "3 2"), PYTHON (default python3), KEEP=1 keeps the work folder (logs, warehouses, AIRFLOW_HOMEs).
# Needs PyPI (pip) on the first run only. Exit 0 when every check passed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 2
PYTHON=${PYTHON:-python3}
VERSIONS=${AIRFLOW_TEST_VERSIONS:-3 2}
declare -A PIN=([3]=3.3.2 [2]=2.11.2)
# Requires-Python of those releases: 3.3.2 >=3.10,!=3.15; 2.11.2 >=3.10,!=3.13,!=3.14
declare -A PY_OK=(
    [3]='(3, 10) <= sys.version_info[:2] != (3, 15)'
    [2]='(3, 10) <= sys.version_info[:2] < (3, 13)'
)
started=$(date +%s)
py_version=$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) ||
    { echo "test-airflow: PYTHON=$PYTHON does not run" >&2; exit 2; }

# settings of the DAG that the caller's environment must not leak into a scenario
unset CRM_PIPELINE_CONFIG CRM_RAW_URL CRM_WAREHOUSE_URL CRM_PIPELINE_VERBOSITY \
    CRM_PIPELINE_RETRIES CRM_PIPELINE_RETRY_DELAY_SECONDS CRM_PIPELINE_TIMEOUT_MINUTES \
    CRM_PIPELINE_BACKFILL_TIMEOUT_MINUTES CRM_PIPELINE_START_DATE CRM_PIPELINE_TIMEZONE \
    AIRFLOW_VAR_CRM_PIPELINE_BIN AIRFLOW_VAR_CRM_PIPELINE_CONFIG AIRFLOW_VAR_CRM_PIPELINE_RAW \
    AIRFLOW_VAR_CRM_PIPELINE_WAREHOUSE AIRFLOW_VAR_CRM_PIPELINE_VERBOSITY

say() { printf '%s\n' "$*"; }
die() { say "test-airflow: $*" >&2; exit 2; }

# --- the binary and the job definition ---
bin=${CRM_PIPELINE_BIN:-}
if [ -z "$bin" ]; then
    if [ -x "$repo/target/debug/crm-pipeline" ]; then
        bin=$repo/target/debug/crm-pipeline
    elif command -v crm-pipeline >/dev/null; then
        bin=$(command -v crm-pipeline)
    else
        die "no crm-pipeline binary: build it (cargo build) or set CRM_PIPELINE_BIN"
    fi
fi
case $bin in
    */*) bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin") ;;
    *) bin=$(command -v "$bin") || die "CRM_PIPELINE_BIN=$bin is not on PATH" ;;
esac
[ -x "$bin" ] || die "$bin is not an executable"
config_src=${CRM_PIPELINE_TEST_CONFIG:-$repo/pipeline.yaml}
[ -f "$config_src" ] || die "no job definition at $config_src (set CRM_PIPELINE_TEST_CONFIG)"

work=$(mktemp -d "${TMPDIR:-/tmp}/crm-airflow-test.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
    trap 'say "work folder kept: $work"' EXIT
else
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/empty" # the cwd of Airflow: no pipeline.yaml here

say "== crm-pipeline: $bin ($("$bin" --version 2>&1))"
raw=$work/raw
"$bin" generate --customers 2000 --seed 7 --out "$raw" >"$work/generate.log" 2>&1 ||
    { cat "$work/generate.log"; die "crm-pipeline generate failed"; }
# the job definition, and a copy whose error-severity check cannot pass (exit 3)
mkdir -p "$work/job" "$work/job-dq"
cp "$config_src" "$work/job/pipeline.yaml"
cp -r "$(dirname "$config_src")/sql" "$work/job/" 2>/dev/null || true
cp -r "$work/job/." "$work/job-dq/"
sed -i 's/^checks:[[:space:]]*$/checks:\n  - {table: customer_features, check: row_count, min: 100000000}/' \
    "$work/job-dq/pipeline.yaml"
grep -q 'min: 100000000' "$work/job-dq/pipeline.yaml" || die "could not add the failing check (no top-level checks: in $config_src)"
# the binary and the job definition must belong together (a binary built from another tree
# may not read this tree's SQL)
if ! "$bin" validate --config "$work/job/pipeline.yaml" --raw "$raw" --warehouse "$work/wh-validate" \
    >"$work/validate.log" 2>&1; then
    cat "$work/validate.log"
    die "crm-pipeline validate fails with $config_src: build the binary from this tree, or set CRM_PIPELINE_TEST_CONFIG"
fi
# a binary that carries its own job runs without --config (in a folder with no pipeline.yaml)
if (cd "$work/empty" && "$bin" plan >/dev/null 2>&1); then builtin=1; else builtin=0; fi
say "   built-in job: $([ $builtin = 1 ] && echo yes || echo 'no (the scenarios pass --config through CRM_PIPELINE_CONFIG)')"

pass=0 fail=0 skipped=()
failures=()
declare -A version_result

# --- one Airflow version ---
setup_venv() { # <major>
    local v=$1 venv=$repo/.venv-airflow$1 cons=$repo/tests/airflow/constraints-airflow$1.txt stamp
    stamp="apache-airflow==${PIN[$v]} $(sha256sum "$cons" | cut -c1-16) $py_version"
    if [ -x "$venv/bin/airflow" ] && [ "$(cat "$venv/.stamp" 2>/dev/null)" = "$stamp" ]; then
        say "   venv: .venv-airflow$v (reused)"
        return 0
    fi
    say "   venv: creating .venv-airflow$v, pip install apache-airflow==${PIN[$v]} (pins: tests/airflow/constraints-airflow$v.txt)"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv" || return 1
    "$venv/bin/pip" install -q --disable-pip-version-check -c "$cons" "apache-airflow==${PIN[$v]}" \
        >"$work/pip-$v.log" 2>&1 || { tail -20 "$work/pip-$v.log"; return 1; }
    echo "$stamp" >"$venv/.stamp"
}

check() { # <label> <command...>: one scenario's assertions
    local label=$1
    shift
    if "$@"; then
        pass=$((pass + 1))
        say "   PASS $label"
    else
        fail=$((fail + 1))
        failures+=("airflow $v: $label")
        say "   FAIL $label"
        if [ -n "${log:-}" ]; then
            say "        last lines of $log:"
            tail -n 15 "$log" | cut -c1-400 | sed 's/^/        | /'
        fi
    fi
}

dags_test() { # <log> <env assignments...> -- <airflow dags test args...>
    local out=$1
    shift
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    (cd "$work/empty" && env "${envs[@]}" "$venv/bin/airflow" dags test "$@") >"$out" 2>&1
}

expect_rc() { # <actual> <expected>: `airflow dags test` exits 1 when the DAG run failed
    [ "$1" = "$2" ] || { say "    FAIL airflow dags test exited $1, expected $2"; return 1; }
}

run_version() {
    local v=$1 t0
    t0=$(date +%s)
    venv=$repo/.venv-airflow$v
    say "== Airflow $v (apache-airflow==${PIN[$v]})"
    if ! "$PYTHON" -c "import sys; sys.exit(0 if ${PY_OK[$v]} else 1)"; then
        say "   SKIP: apache-airflow ${PIN[$v]} does not install on Python $py_version (its Requires-Python)"
        skipped+=("Airflow ${PIN[$v]}: not installable on Python $py_version")
        version_result[$v]=skipped
        return
    fi
    if ! setup_venv "$v"; then
        fail=$((fail + 1))
        failures+=("airflow $v: pip install apache-airflow==${PIN[$v]}")
        version_result[$v]="install failed"
        return
    fi
    local home=$work/home-$v py=$venv/bin/python checks=$repo/tests/airflow/checks.py
    mkdir -p "$home"
    export AIRFLOW_HOME=$home AIRFLOW__CORE__DAGS_FOLDER=$repo/infra/airflow \
        AIRFLOW__CORE__LOAD_EXAMPLES=False PYTHONDONTWRITEBYTECODE=1
    if ! "$venv/bin/airflow" db migrate >"$home/migrate.log" 2>&1; then
        tail -20 "$home/migrate.log"
        fail=$((fail + 1)); failures+=("airflow $v: db migrate"); version_result[$v]="db migrate failed"
        return
    fi
    say "   $("$venv/bin/airflow" version 2>/dev/null | tail -1), AIRFLOW_HOME=$home"
    local common=(CRM_PIPELINE_BIN="$bin" CRM_PIPELINE_RETRIES=1 CRM_PIPELINE_RETRY_DELAY_SECONDS=1)
    local cfg=CRM_PIPELINE_CONFIG=$work/job/pipeline.yaml wh rc log=""

    log=""
    check "dag: imports, CronDataIntervalTimetable, the run after 1 July computes 2024-06" \
        env "${common[@]}" "$py" -W ignore "$checks" dag
    check "dag: CRM_PIPELINE_TIMEZONE=America/New_York: months close at midnight New York" \
        env "${common[@]}" CRM_PIPELINE_TIMEZONE=America/New_York "$py" -W ignore "$checks" dag

    # success; the warehouse comes from an Airflow Variable (AIRFLOW_VAR_*), which wins over
    # CRM_WAREHOUSE_URL (pointed at a folder that must stay absent)
    wh=$work/wh-$v-success log=$home/success.log
    dags_test "$log" "${common[@]}" "$cfg" CRM_RAW_URL="$raw" AIRFLOW_VAR_CRM_PIPELINE_WAREHOUSE="$wh" \
        CRM_WAREHOUSE_URL="$work/wh-$v-unused" -- crm_pipeline 2024-07-01
    rc=$?
    check "success: exit 0 -> task success, XCom dict, period 2024-06, tables published" \
        eval 'expect_rc $rc 0 && "$py" "$checks" success --wh "$wh" --logical-date 2024-07-01 --period 2024-06 --log "$log" && [ ! -e "$work/wh-$v-unused" ] && say "    ok   the Airflow Variable won over CRM_WAREHOUSE_URL"'

    # exit 3: a data-quality failure is not retried
    wh=$work/wh-$v-dq log=$home/dq.log
    dags_test "$log" "${common[@]}" CRM_PIPELINE_CONFIG="$work/job-dq/pipeline.yaml" CRM_RAW_URL="$raw" \
        CRM_WAREHOUSE_URL="$wh" -- crm_pipeline 2024-06-01
    rc=$?
    check "dq: exit 3 -> failed after exactly one attempt" \
        eval 'expect_rc $rc 1 && "$py" "$checks" no-retry --wh "$wh" --logical-date 2024-06-01 --period 2024-05 --exit-code 3 --log "$log"'

    # exit 4: a source that cannot be read is retried
    wh=$work/wh-$v-storage log=$home/storage.log
    dags_test "$log" "${common[@]}" "$cfg" CRM_RAW_URL="$work/no-such-raw" CRM_WAREHOUSE_URL="$wh" \
        -- crm_pipeline 2024-05-01
    rc=$?
    check "storage: exit 4 -> retried (2 attempts, run ids __try1 and __try2)" \
        eval 'expect_rc $rc 1 && "$py" "$checks" retried --wh "$wh" --logical-date 2024-05-01 --period 2024-04 --exit-code 4 --tries 2'

    # no config set: no --config flag
    wh=$work/wh-$v-noconfig log=$home/noconfig.log
    dags_test "$log" "${common[@]}" CRM_RAW_URL="$raw" CRM_WAREHOUSE_URL="$wh" -- crm_pipeline 2024-04-01
    rc=$?
    if [ $builtin = 1 ]; then
        check "no-config: the built-in job runs (no --config) and succeeds" \
            eval 'expect_rc $rc 0 && "$py" "$checks" success --wh "$wh" --logical-date 2024-04-01 --period 2024-03 --log "$log" && ! grep -q -- "--config" <(grep "running: " "$log")'
    else
        check "no-config: no --config passed; exit 2 (no job definition) -> one attempt" \
            eval 'expect_rc $rc 1 && "$py" "$checks" no-retry --wh "$wh" --logical-date 2024-04-01 --period 2024-03 --exit-code 2 --log "$log" --no-record --no-config-flag'
    fi

    # execution_timeout (3 s) stops the job; a stand-in that never ends
    log=$home/timeout.log
    dags_test "$log" "${common[@]}" CRM_PIPELINE_BIN="$repo/tests/airflow/slow-crm-pipeline" \
        CRM_TEST_PID_FILE="$home/slow.pid" CRM_PIPELINE_RETRIES=0 CRM_PIPELINE_TIMEOUT_MINUTES=0.05 \
        -- crm_pipeline 2024-03-01
    rc=$?
    check "timeout: execution_timeout fails the task and stops the job" \
        eval 'expect_rc $rc 1 && "$py" "$checks" timeout --logical-date 2024-03-01 --pid-file "$home/slow.pid" --log "$log"'

    # backfill: attempt 1 finds 2024-05's lock held by a live process (exit 4); that process
    # ends with attempt 1, and the retry resumes with --only-missing
    wh=$work/wh-$v-backfill log=$home/backfill.log
    mkdir -p "$wh"
    "$py" "$checks" hold-lock --wh "$wh" --period 2024-05 >"$home/lock-holder.log" 2>&1 &
    local holder=$!
    for _ in $(seq 50); do [ -e "$wh/_locks/period=2024-05.json" ] && break; sleep 0.1; done
    dags_test "$log" "${common[@]}" "$cfg" CRM_RAW_URL="$raw" CRM_WAREHOUSE_URL="$wh" \
        -- crm_pipeline_backfill 2024-07-01 --conf '{"from": "2024-03", "to": "2024-05", "jobs": 2}'
    rc=$?
    kill "$holder" 2>/dev/null
    wait "$holder" 2>/dev/null
    check "backfill: 2024-03..2024-05, retry resumes with --only-missing, all published" \
        eval 'expect_rc $rc 0 && "$py" "$checks" backfill --wh "$wh" --logical-date 2024-07-01 --periods 2024-03,2024-04,2024-05 --locked 2024-05'

    version_result[$v]="$(( $(date +%s) - t0 )) s"
    unset AIRFLOW_HOME AIRFLOW__CORE__DAGS_FOLDER AIRFLOW__CORE__LOAD_EXAMPLES
}

for v in $VERSIONS; do
    [ -n "${PIN[$v]:-}" ] || die "AIRFLOW_TEST_VERSIONS: unknown version $v (3 or 2)"
    run_version "$v"
done

say "== summary ($(( $(date +%s) - started )) s)"
for v in $VERSIONS; do say "   Airflow ${PIN[$v]}: ${version_result[$v]:-not run}"; done
for s in "${skipped[@]}"; do say "   skipped: $s"; done
for f in "${failures[@]}"; do say "   failed: $f"; done
say "test-airflow: $pass passed, $fail failed"
[ "$fail" = 0 ]
