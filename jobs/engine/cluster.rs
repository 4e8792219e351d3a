//! `crm-pipeline cluster scheduler` and `crm-pipeline cluster executor`: Ballista's own
//! scheduler and executor (the `ballista-scheduler` / `ballista-executor` crates' processes),
//! started from the job's binary, so one image serves the driver, the scheduler and the
//! executors (infra/compose.yaml, infra/k8s).
//!
//! What the job's binary adds to the stock processes:
//! - **Object stores from the URL.** The scheduler (which lists the files a stage reads) and the
//!   executors (which read and write them) build the store of a `s3://`, `gs://`, `az://` or
//!   `file://` URL the first time they meet it, with the job's own store code and the process's
//!   environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`, as the driver: README, "Object stores"). The
//!   stock images support `s3://` and `file://` only.
//! - **Every DataFusion function.** Ballista's default executor registry leaves out the nested
//!   (array) functions the job's SQL uses (`string_to_array`); the executors here register
//!   every function of a default DataFusion session, as the driver plans with.
//! - **One version of the job.** The driver names every Ballista job `crm-pipeline <version>`
//!   (`ballista.job.name`, which travels with each task); an executor of another version
//!   refuses the task with a message naming both versions, so a rolling upgrade never mixes two
//!   versions' plans in one period.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::extension::SessionConfigExt;
use ballista_core::utils::default_session_builder;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use url::Url;

use crate::error::{Error, Result};
use crate::storage::Location;

/// This binary's version, as the driver names its Ballista jobs and executors check it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Ballista job name of a driver of this version.
pub fn job_name() -> String {
    format!("crm-pipeline {VERSION}")
}

/// Whether an executor of version `own` runs a task whose job is named `job_name`: a job of
/// another crm-pipeline version is refused (with the message); a job without the job's name
/// (another Ballista client) is run.
pub fn check_job_version(job_name: Option<&str>, own: &str) -> std::result::Result<(), String> {
    match job_name.and_then(|n| n.strip_prefix("crm-pipeline ")) {
        Some(driver) if driver.trim() != own => Err(format!(
            "this executor runs crm-pipeline {own} but the driver runs crm-pipeline {}: run the same version (one image) for the driver, the scheduler and every executor",
            driver.trim()
        )),
        _ => Ok(()),
    }
}

/// Object stores by `scheme://host`, each built from the URL (and the process's environment)
/// the first time a plan names it.
#[derive(Default)]
struct StoresFromUrl {
    stores: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl std::fmt::Debug for StoresFromUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<String> = self
            .stores
            .read()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("StoresFromUrl")
            .field("stores", &keys)
            .finish()
    }
}

fn store_key(url: &Url) -> String {
    format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""))
}

impl ObjectStoreRegistry for StoresFromUrl {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.stores
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(store_key(url), store)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        let key = store_key(url);
        if let Some(s) = self
            .stores
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(Arc::clone(s));
        }
        let store: Arc<dyn ObjectStore> = if url.scheme() == "file" {
            Arc::new(LocalFileSystem::new())
        } else {
            let root = Location::parse(&format!("{key}/"))
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            Arc::clone(root.store())
        };
        let mut stores = self.stores.write().unwrap_or_else(|e| e.into_inner());
        Ok(Arc::clone(stores.entry(key).or_insert(store)))
    }
}

/// Executors ask the scheduler for work (every 50 ms when idle) instead of the scheduler
/// pushing tasks to them. With Ballista 55's push scheduling, an executor killed mid-stage
/// hung the job for good: the scheduler reset the lost executor's finished map task and rolled
/// the running stage back, but never launched the reset task again (its own slot count for the
/// surviving executor had kept the cancelled task's slot). Pulled, the surviving executor asks
/// for the reset task itself and the job completes (tests/integration/ballista.rs).
const SCHEDULING: TaskSchedulingPolicy = TaskSchedulingPolicy::PullStaged;

/// `crm-pipeline cluster scheduler`.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// The address the scheduler's gRPC service listens on.
    pub bind: SocketAddr,
    /// The host name executors and the driver reach it under (default: the bind address).
    pub external_host: Option<String>,
    /// Seconds without a heartbeat after which an executor is taken for lost and its tasks
    /// are run elsewhere (Ballista's default: 180). Must exceed the executors' heartbeat.
    pub executor_timeout_seconds: Option<u64>,
}

/// Runs a Ballista scheduler until the process is stopped.
pub async fn scheduler(opts: SchedulerOptions) -> Result<()> {
    let stores = Arc::new(StoresFromUrl::default());
    let mut config = SchedulerConfig {
        bind_host: opts.bind.ip().to_string(),
        bind_port: opts.bind.port(),
        external_host: opts
            .external_host
            .clone()
            .unwrap_or_else(|| opts.bind.ip().to_string()),
        scheduling_policy: SCHEDULING,
        ..Default::default()
    };
    if let Some(timeout) = opts.executor_timeout_seconds {
        config.executor_timeout_seconds = timeout;
        // looked for at a third of the timeout (Ballista: every 15 s of 180); with no executor
        // left, running jobs fail after the same timeout (Ballista's default too)
        config.expire_dead_executor_interval_seconds = (timeout / 3).clamp(1, 15);
        config.no_executors_grace_period_seconds = timeout;
    }
    // Ballista's own session builder, with the stores built from the URL
    config = config.with_override_session_builder(Arc::new(move |config: SessionConfig| {
        let runtime = RuntimeEnvBuilder::new()
            .with_object_store_registry(Arc::clone(&stores) as Arc<dyn ObjectStoreRegistry>)
            .build()?;
        Ok(
            SessionStateBuilder::new_from_existing(default_session_builder(config)?)
                .with_runtime_env(Arc::new(runtime))
                .build(),
        )
    }));
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        Error::source(
            "ballista scheduler",
            opts.bind.to_string(),
            format!("{what}: {e}"),
        )
    };
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| failed("cannot set up the scheduler's state", &e))?;
    tracing::info!(bind = %opts.bind, version = VERSION, "ballista scheduler starting");
    start_server(cluster, opts.bind, Arc::new(config))
        .await
        .map_err(|e| failed("the scheduler stopped", &e))
}

/// `crm-pipeline cluster executor`.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler, `df://host:port`.
    pub scheduler: String,
    /// The address the executor's Flight service (results and shuffle data) listens on.
    pub bind: SocketAddr,
    /// The port of its gRPC service (default: the Flight port + 1).
    pub grpc_port: Option<u16>,
    /// The host name the scheduler, other executors and the driver reach it under (default:
    /// the bind address).
    pub external_host: Option<String>,
    /// Tasks run at once (default: the cores).
    pub concurrent_tasks: Option<usize>,
    /// Where shuffle files and spills go (default: a temporary directory).
    pub work_dir: Option<PathBuf>,
    /// Seconds between heartbeats to the scheduler (Ballista's default: 60).
    pub heartbeat_seconds: Option<u64>,
}

/// Runs a Ballista executor registered with the scheduler until the process is stopped.
pub async fn executor(opts: ExecutorOptions) -> Result<()> {
    let (host, port) = super::scheduler_address(&opts.scheduler).map_err(Error::Usage)?;
    let stores = Arc::new(StoresFromUrl::default());
    let spill_dir = opts.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    // Ballista lists the work directory at start and fails on a missing one; a container gets
    // a volume root and names a folder under it per executor
    if let Some(dir) = &opts.work_dir {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::storage(
                dir.display(),
                format!("cannot create the executor's work directory: {e}; give the executor's user a writable folder (--work-dir)"),
            )
        })?;
    }
    let mut config = ExecutorProcessConfig {
        bind_host: opts.bind.ip().to_string(),
        port: opts.bind.port(),
        grpc_port: opts
            .grpc_port
            .unwrap_or_else(|| opts.bind.port().saturating_add(1)),
        external_host: Some(
            opts.external_host
                .clone()
                .unwrap_or_else(|| opts.bind.ip().to_string()),
        ),
        scheduler_host: host,
        scheduler_port: port,
        scheduler_connect_timeout_seconds: 30,
        work_dir: opts.work_dir.as_ref().map(|p| p.display().to_string()),
        print_thread_info: false,
        task_scheduling_policy: SCHEDULING,
        ..Default::default()
    };
    // every function a driver's plan may name: DataFusion's defaults *with* the nested (array)
    // ones, which Ballista's default executor registry leaves out (`string_to_array` failed
    // to decode on a stock executor); the session the driver plans in has them all
    let functions = SessionStateBuilder::new().with_default_features().build();
    config.override_function_registry = Some(Arc::new(
        ballista_core::registry::BallistaFunctionRegistry::from(&functions),
    ));
    if let Some(s) = opts.heartbeat_seconds {
        config.executor_heartbeat_interval_seconds = s.max(1);
    }
    if let Some(n) = opts.concurrent_tasks {
        config.vcores = n.max(1);
    }
    config.override_runtime_producer = Some(Arc::new(move |session: &SessionConfig| {
        let job = session
            .ballista_config()
            .settings()
            .get("ballista.job.name")
            .cloned();
        check_job_version(job.as_deref(), VERSION).map_err(DataFusionError::Execution)?;
        Ok(Arc::new(
            RuntimeEnvBuilder::new()
                .with_temp_file_path(spill_dir.clone())
                .with_object_store_registry(Arc::clone(&stores) as Arc<dyn ObjectStoreRegistry>)
                .build()?,
        ))
    }));
    tracing::info!(bind = %opts.bind, scheduler = %opts.scheduler, version = VERSION, "ballista executor starting");
    start_executor_process(Arc::new(config)).await.map_err(|e| {
        Error::source(
            "ballista executor",
            opts.bind.to_string(),
            format!("{e}; is the scheduler at {} up?", opts.scheduler),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_executor_refuses_a_driver_of_another_version_and_runs_other_clients() {
        assert_eq!(
            check_job_version(Some("crm-pipeline 1.2.0"), "1.2.0"),
            Ok(())
        );
        assert_eq!(check_job_version(None, "1.2.0"), Ok(()));
        assert_eq!(check_job_version(Some("adhoc query"), "1.2.0"), Ok(()));
        let e = check_job_version(Some("crm-pipeline 1.3.0"), "1.2.0").unwrap_err();
        assert!(
            e.contains("crm-pipeline 1.2.0") && e.contains("crm-pipeline 1.3.0"),
            "{e}"
        );
        // what this version's driver sends, this version's executor runs
        assert_eq!(check_job_version(Some(&job_name()), VERSION), Ok(()));
    }

    #[test]
    fn stores_are_keyed_by_scheme_and_bucket() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(store_key(&u("s3://crm/raw/x.csv")), "s3://crm");
        assert_eq!(store_key(&u("file:///tmp/a")), "file://");
        let stores = StoresFromUrl::default();
        let a = stores.get_store(&u("file:///tmp/a")).unwrap();
        let b = stores.get_store(&u("file:///var/b")).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }
}
