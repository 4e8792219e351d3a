//! The whole job on Ballista publishes the same tables, row for row, as the local engine: on
//! the in-process standalone cluster, and on a scheduler and two executors that are separate
//! processes of the job's binary (`crm-pipeline cluster ...`) on loopback ports. An executor
//! killed mid-run never leaves a partial period; an unreachable scheduler fails fast with an
//! error that names it and the fix.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crm_pipeline::engine::EngineKind;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::common::*;

const PERIOD: &str = "2024-12";
const PREVIOUS: &str = "2024-11";

/// Every published table.
const TABLES: &[&str] = &[
    "customer_features",
    "customer_value",
    "clv_model",
    "customer_segments",
    "segment_summary",
    "positioning",
    "segment_migration",
    "value_concentration",
    "quarantine",
];

/// A published partition as text: every column but run_id, sorted by all of them.
async fn table_text(wh: &Path, table: &str, period: &str) -> (usize, String) {
    let ctx = SessionContext::new();
    let dir = wh.join(format!("{table}/period={period}/"));
    ctx.register_parquet(
        "t",
        dir.display().to_string(),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    let df = ctx.sql("SELECT * EXCLUDE (run_id) FROM t").await.unwrap();
    let n = df.schema().fields().len();
    assert!(n > 0, "{table} has no columns");
    let order: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    let b = ctx
        .sql(&format!(
            "SELECT * EXCLUDE (run_id) FROM t ORDER BY {}",
            order.join(", ")
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    (b.iter().map(|b| b.num_rows()).sum(), pretty(&b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ballista_standalone_publishes_the_same_tables_as_the_local_engine() {
    // CRM_PIPELINE_LOG=info (or ballista=debug) shows the cluster's logs when this fails
    if let Ok(filter) = std::env::var("CRM_PIPELINE_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    generate_local(&raw, 2500, 17).await;
    let (wh_local, wh_ballista) = (tmp.path().join("local"), tmp.path().join("ballista"));

    // the previous period first on each side, so migration and growth have something to compare
    local_baseline(&raw, &wh_local, &[PREVIOUS, PERIOD]).await;

    let mut dist = config(&raw, &wh_ballista);
    crm_pipeline::engine::apply_flags(&mut dist.engine, Some("ballista-standalone"), None).unwrap();
    run_period(&dist, PREVIOUS, "ballista-prev")
        .await
        .1
        .unwrap();
    let (results, outcome) = run_period(&dist, PERIOD, "ballista").await;
    outcome.unwrap();
    assert_eq!(results.outputs.len(), TABLES.len());

    assert_same_tables(&wh_local, &wh_ballista, PERIOD).await;
}

/// Every table of `period` in warehouse `b` equals warehouse `a`'s, row for row. Only the
/// quarantine, and the migrations of a warehouse's first period, may be empty.
async fn assert_same_tables(a: &Path, b: &Path, period: &str) {
    let first = !a
        .join(format!("segment_migration/period={PREVIOUS}"))
        .exists()
        || period == PREVIOUS;
    for table in TABLES {
        let (rows_a, text_a) = table_text(a, table, period).await;
        let (rows_b, text_b) = table_text(b, table, period).await;
        assert_eq!(rows_a, rows_b, "{table} {period}: row counts differ");
        if *table != "quarantine" && !(first && *table == "segment_migration") {
            assert!(
                rows_a > 0,
                "{table} {period} is empty; the comparison would prove nothing"
            );
        }
        assert!(
            text_a == text_b,
            "{table} {period} differs between the local engine and Ballista:\n--- local\n{text_a}\n--- ballista\n{text_b}"
        );
    }
}

/// One process of a cluster run from the job's binary, in its own process group (killed when
/// dropped, and by the kernel if the test process dies), logging at info to `<name>.log`.
struct Member {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Drop for Member {
    fn drop(&mut self) {
        // a reaped child's process group id may already be someone else's
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            kill_group(&mut self.child);
        }
    }
}

impl Member {
    fn start(dir: &Path, name: &str, args: &[String]) -> Result<Member, String> {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_crm-pipeline"));
        cmd.args(args)
            .env("CRM_PIPELINE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = spawn_owned(cmd).map_err(|e| format!("starting the {name}: {e}"))?;
        Ok(Member {
            name: name.into(),
            child,
            log,
        })
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many lines of its log contain `text`.
    fn count(&self, text: &str) -> usize {
        self.log_text().lines().filter(|l| l.contains(text)).count()
    }

    /// Waits until its log says `text`; fails with the log's tail if it exits first or takes
    /// more than a minute.
    fn wait_for(&mut self, text: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.count(text) > 0 {
                return Ok(());
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                return Err(format!(
                    "the {} did not log `{text}` ({}):\n{}",
                    self.name,
                    exited.map_or("timed out".into(), |s| s.to_string()),
                    self.tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL, as a machine lost mid-run: no shutdown, no goodbye to the scheduler.
    fn kill(&mut self) {
        // SAFETY: kill(2) on the process group the child leads.
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.child.wait();
    }

    fn tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "--- {} ({})\n{}",
            self.name,
            self.log.display(),
            lines[lines.len().saturating_sub(25)..].join("\n")
        )
    }
}

/// A Ballista scheduler and executors, each `crm-pipeline cluster ...` as its own process.
struct Cluster {
    /// The driver's `--scheduler`, `df://127.0.0.1:<port>`.
    url: String,
    scheduler: Member,
    executors: Vec<Member>,
    /// Each executor's Flight address, as the scheduler knows it.
    addresses: Vec<String>,
}

/// Heartbeats every 2 s; an executor silent for 12 s is lost (Ballista's defaults, 60 s and
/// 180 s, would make the kill test wait minutes).
const HEARTBEAT_SECONDS: &str = "2";
const EXECUTOR_TIMEOUT_SECONDS: &str = "12";

impl Cluster {
    fn start(dir: &Path, executors: usize) -> Cluster {
        // ports are probed then released: one taken in between fails an attempt, so try again
        let mut last = String::new();
        for attempt in 0..3 {
            match Self::start_once(&dir.join(format!("cluster-{attempt}")), executors) {
                Ok(c) => return c,
                Err(e) => last = e,
            }
        }
        panic!("the cluster did not start: {last}");
    }

    fn start_once(dir: &Path, executors: usize) -> Result<Cluster, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        // every port at once, so the executors' Flight and gRPC ports never collide
        let ports = free_ports(1 + 2 * executors)?;
        let bind = format!("127.0.0.1:{}", ports[0]);
        let arg = |s: &str| s.to_string();
        let mut scheduler = Member::start(
            dir,
            "scheduler",
            &[
                arg("cluster"),
                arg("scheduler"),
                arg("--bind"),
                bind.clone(),
                arg("--executor-timeout-seconds"),
                arg(EXECUTOR_TIMEOUT_SECONDS),
            ],
        )?;
        scheduler.wait_for("ballista scheduler starting")?;
        let url = format!("df://{bind}");
        let mut members = Vec::new();
        let mut addresses = Vec::new();
        for i in 0..executors {
            let (flight, grpc) = (ports[1 + 2 * i], ports[2 + 2 * i]);
            let work = dir.join(format!("executor-{i}-work"));
            std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
            let address = format!("127.0.0.1:{flight}");
            let mut e = Member::start(
                dir,
                &format!("executor-{i}"),
                &[
                    arg("cluster"),
                    arg("executor"),
                    arg("--scheduler"),
                    url.clone(),
                    arg("--bind"),
                    address.clone(),
                    arg("--grpc-port"),
                    grpc.to_string(),
                    arg("--work-dir"),
                    work.display().to_string(),
                    arg("--concurrent-tasks"),
                    arg("2"),
                    arg("--heartbeat-seconds"),
                    arg(HEARTBEAT_SECONDS),
                ],
            )?;
            // executors pull their tasks (jobs/engine/cluster.rs); the first poll registers
            e.wait_for("Starting poll work loop with scheduler")?;
            members.push(e);
            addresses.push(address);
        }
        Ok(Cluster {
            url,
            scheduler,
            executors: members,
            addresses,
        })
    }

    /// The tail of every member's log, for a failing assertion.
    fn logs(&self) -> String {
        std::iter::once(&self.scheduler)
            .chain(&self.executors)
            .map(Member::tail)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The same raw data run on the local engine, for `periods` in order.
async fn local_baseline(raw: &Path, wh: &Path, periods: &[&str]) {
    let local = config(raw, wh);
    assert_eq!(local.engine.kind, EngineKind::Local);
    for p in periods {
        run_period(&local, p, &format!("local-{p}"))
            .await
            .1
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_and_two_executors_as_processes_publish_the_same_tables_as_the_local_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    generate_local(&raw, 2500, 17).await;
    let (wh_local, wh_cluster) = (tmp.path().join("local"), tmp.path().join("cluster"));
    local_baseline(&raw, &wh_local, &[PREVIOUS, PERIOD]).await;

    let cluster = Cluster::start(tmp.path(), 2);
    let mut dist = config(&raw, &wh_cluster);
    crm_pipeline::engine::apply_flags(&mut dist.engine, Some("ballista"), Some(&cluster.url))
        .unwrap();
    assert_eq!(dist.engine.kind, EngineKind::Ballista);
    // two consecutive periods: the second reads the first's labels (migration, growth)
    for period in [PREVIOUS, PERIOD] {
        let (results, outcome) = run_period(&dist, period, &format!("cluster-{period}")).await;
        if let Err(e) = outcome {
            panic!("the run of {period} failed: {e}\n{}", cluster.logs());
        }
        assert_eq!(results.outputs.len(), TABLES.len());
        assert_same_tables(&wh_local, &wh_cluster, period).await;
    }
    // the stages really ran on both executors, not in the driver or on one of them
    for e in &cluster.executors {
        assert!(
            e.count("Finished task") > 0,
            "{} ran no task:\n{}",
            e.name,
            cluster.logs()
        );
    }
}

/// A driver of another version (a bare Ballista client naming its jobs as an older crm-pipeline
/// does) has its tasks refused by a real executor, with a message naming both versions and the
/// fix; a job run by the same version's driver goes through on the same cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_refuses_the_tasks_of_a_driver_of_another_version() {
    use ballista::prelude::{SessionConfigExt, SessionContextExt};
    let tmp = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(tmp.path(), 1);
    let client = |job: String| {
        let url = cluster.url.clone();
        async move {
            let state = datafusion::execution::SessionStateBuilder::new()
                .with_config(
                    datafusion::prelude::SessionConfig::new_with_ballista()
                        .with_ballista_job_name(&job),
                )
                .with_default_features()
                .build();
            let ctx = SessionContext::remote_with_state(&url, state)
                .await
                .unwrap();
            let query = async {
                ctx.sql("SELECT count(*) AS n FROM (VALUES (1), (2), (3)) AS t(x)")
                    .await?
                    .collect()
                    .await
            };
            tokio::time::timeout(Duration::from_secs(120), query)
                .await
                .expect("the job neither ran nor failed within 120 s")
        }
    };
    let own = crm_pipeline::engine::cluster::job_name();
    let batches = client(own.clone())
        .await
        .unwrap_or_else(|e| panic!("the same version's job failed: {e}\n{}", cluster.logs()));
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);

    let err = client("crm-pipeline 0.0.1-older".into())
        .await
        .expect_err("an executor ran the tasks of another version's driver")
        .to_string();
    let own_version = own.strip_prefix("crm-pipeline ").unwrap();
    for needle in [own_version, "0.0.1-older", "run the same version"] {
        assert!(err.contains(needle), "`{needle}` missing from: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_killed_during_the_sql_stages_leaves_nothing_partial_and_a_rerun_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    generate_local(&raw, 2500, 29).await;
    let (wh_local, wh_cluster) = (tmp.path().join("local"), tmp.path().join("cluster"));
    local_baseline(&raw, &wh_local, &[PERIOD]).await;

    let mut cluster = Cluster::start(tmp.path(), 2);
    let mut dist = config(&raw, &wh_cluster);
    crm_pipeline::engine::apply_flags(&mut dist.engine, Some("ballista"), Some(&cluster.url))
        .unwrap();

    // kill executor 1 as it starts its third task: every executor task is a SQL stage's, so
    // the run is inside the SQL stages, with stages still to come
    let victim_log = cluster.executors[1].log.clone();
    let victim_pid = cluster.executors[1].child.id() as libc::pid_t;
    // (a pull-scheduled executor logs "Received task" as it takes one)
    let run_over = Arc::new(AtomicBool::new(false));
    let stop = run_over.clone();
    let killer = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let text = std::fs::read_to_string(&victim_log).unwrap_or_default();
            if text.lines().filter(|l| l.contains("Received task")).count() >= 3 {
                // SAFETY: kill(2) on the executor's process group
                unsafe { libc::kill(-victim_pid, libc::SIGKILL) };
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    });
    let (results, outcome) = run_period(&dist, PERIOD, "killed").await;
    run_over.store(true, Ordering::Relaxed);
    assert!(
        killer.join().unwrap(),
        "executor-1 never started three tasks:\n{}",
        cluster.logs()
    );
    cluster.executors[1].kill(); // reap it
    let lost = &cluster.addresses[1];
    eprintln!("the run with a killed executor: {outcome:?}");
    match outcome {
        // Ballista ran the lost tasks again on the other executor
        Ok(()) => {
            assert_eq!(results.status, "success");
            assert_same_tables(&wh_local, &wh_cluster, PERIOD).await;
        }
        Err(e) => {
            let text = e.to_string();
            assert_eq!(e.exit_code(), 4, "{text}\n{}", cluster.logs());
            assert!(
                text.contains(lost),
                "the error does not name {lost}: {text}"
            );
            assert_eq!(results.status, "failed");
            for table in TABLES {
                assert!(
                    !wh_cluster.join(format!("{table}/period={PERIOD}")).exists(),
                    "{table}: a failed run published its partition"
                );
            }
        }
    }
    // the period's lock is released either way
    assert!(
        std::fs::read_dir(wh_cluster.join("_locks"))
            .map(|d| d.count() == 0)
            .unwrap_or(true),
        "the period is still locked"
    );
    // a rerun on what is left of the cluster publishes the local engine's tables
    let (_, outcome) = run_period(&dist, PERIOD, "rerun").await;
    if let Err(e) = outcome {
        panic!("the rerun failed: {e}\n{}", cluster.logs());
    }
    assert_same_tables(&wh_local, &wh_cluster, PERIOD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_scheduler_fails_fast_naming_the_url_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    // a port that was just free: nothing listens on it
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("df://127.0.0.1:{port}");
    let mut cfg = config(&raw, &wh);
    crm_pipeline::engine::apply_flags(&mut cfg.engine, None, Some(&url)).unwrap();
    assert_eq!(cfg.engine.kind, EngineKind::Ballista);
    let (results, outcome) = run_period(&cfg, "2024-05", "unreachable").await;
    let err = outcome.unwrap_err();
    let text = err.to_string();
    assert_eq!(err.category(), "source_or_storage", "{text}");
    assert!(text.contains(&url), "{text}");
    assert!(
        text.contains("cannot connect") && text.contains("start the scheduler"),
        "{text}"
    );
    assert_eq!(results.status, "failed");
    assert!(results.outputs.is_empty());
    // nothing was published and the period's lock was released
    assert!(!wh.join("customer_features").exists());
    assert!(
        std::fs::read_dir(wh.join("_locks"))
            .map(|d| d.count() == 0)
            .unwrap_or(true)
    );
}

#[test]
fn engine_flags_override_the_job_definition_and_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(&tmp.path().join("raw"), &tmp.path().join("wh"));
    let e = crm_pipeline::engine::apply_flags(&mut cfg.engine, Some("ballista"), None).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("--scheduler df://host:port"), "{e}");
    let e = crm_pipeline::engine::apply_flags(&mut cfg.engine, None, Some("localhost:50050"))
        .unwrap_err();
    assert!(e.to_string().contains("`localhost:50050`"), "{e}");
    crm_pipeline::engine::apply_flags(&mut cfg.engine, Some("local"), None).unwrap();
    assert_eq!(cfg.engine.kind, EngineKind::Local);
}

/// The command lines of the deployment files are the job's: every compose service and
/// Kubernetes container that runs the job's image passes flags its `--help` accepts, and the
/// scheduler and executors are that image (not Ballista's stock ones, which lack the job's
/// functions and version check).
#[test]
fn the_deployment_files_run_the_cluster_from_the_jobs_image_with_flags_it_accepts() {
    let infra = Path::new(env!("CARGO_MANIFEST_DIR")).join("infra");
    let yaml = |name: &str| std::fs::read_to_string(infra.join(name)).unwrap();
    let strings = |v: &serde_yaml_ng::Value| -> Vec<String> {
        v.as_sequence()
            .map(|s| {
                s.iter()
                    .map(|a| a.as_str().expect("a string argument").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let accepts = |place: &str, args: &[String]| {
        let out = Command::new(env!("CARGO_BIN_EXE_crm-pipeline"))
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{place}: `crm-pipeline {}` is refused:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    };

    let mut compose: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml("compose.yaml")).unwrap();
    // `<<: *executor` brings its own `<<: *job-image`: merge until none is left
    for _ in 0..3 {
        compose.apply_merge().unwrap();
    }
    let mut roles = Vec::new();
    for (name, service) in compose["services"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        let image = service["image"].as_str().unwrap_or_default();
        if !image.contains("crm-pipeline") {
            continue;
        }
        let command = strings(&service["command"]);
        accepts(&format!("compose service {name}"), &command);
        if command.first().map(String::as_str) == Some("cluster") {
            roles.push(command[1].clone());
        }
    }
    roles.sort();
    assert_eq!(
        roles,
        ["executor", "executor", "scheduler"],
        "compose: {roles:?}"
    );

    let containers = |file: &str| -> Vec<serde_yaml_ng::Value> {
        let text = yaml(file);
        serde_yaml_ng::Deserializer::from_str(&text)
            .filter_map(|doc| {
                let doc = <serde_yaml_ng::Value as serde::Deserialize>::deserialize(doc).unwrap();
                let spec = &doc["spec"];
                // a Deployment's pod template, or a CronJob's job template's
                let pod = if spec.get("jobTemplate").is_some() {
                    &spec["jobTemplate"]["spec"]["template"]["spec"]
                } else {
                    &spec["template"]["spec"]
                };
                pod.get("containers").and_then(|c| c.as_sequence()).cloned()
            })
            .flatten()
            .collect()
    };
    let job_image = containers("k8s/crm-pipeline-cronjob.yaml")[0]["image"]
        .as_str()
        .unwrap()
        .to_string();
    for (file, role) in [
        ("k8s/ballista-scheduler.yaml", "scheduler"),
        ("k8s/ballista-executor.yaml", "executor"),
    ] {
        let found = containers(file);
        assert_eq!(found.len(), 1, "{file}");
        assert_eq!(
            found[0]["image"].as_str(),
            Some(job_image.as_str()),
            "{file}"
        );
        let args = strings(&found[0]["args"]);
        assert_eq!(args[..2], ["cluster", role], "{file}");
        accepts(file, &args);
    }
}
