//! Where the SQL stages run: DataFusion in this process (`local`, the default), a Ballista
//! cluster (`ballista`, with `--scheduler df://host:port`), or a Ballista scheduler and executor
//! started inside this process (`ballista-standalone`, for tests and demos).
//!
//! The job is the Ballista *client* (the driver): it plans each stage, the cluster executes it
//! and writes the stage's Parquet to the run's scratch space, and the driver registers the
//! result for the next stage. Everything a plan sends to the cluster must be serialisable by
//! datafusion-proto, so the runner only registers tables that are (Parquet listing tables on a
//! URL, `EmptyTable`s and views), never in-memory tables, and the scratch space and warehouse
//! must be reachable by the scheduler and every executor under the same URL. The models (CLV
//! fitting, RFM and the other segmentations) stay on the driver over the collected per-customer
//! tables; see the README, "Engines".

pub mod cluster;
pub mod config;
pub mod runtime;
pub mod spill;

pub use config::{EngineConfig, EngineSettings, parse_size};
pub use runtime::{engine_runtime, explain_out_of_memory, session as local_session};

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::{SessionConfig, SessionContext};
use serde::Deserialize;

use crate::error::{EngineContext, Error, Result};
use crate::storage::Location;

/// The scheduler port when a `df://` URL names none (Ballista's default).
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// How long the driver waits for the scheduler's port to accept a connection before it gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The engine kind, as written in pipeline.yaml (`engine.kind`) and on the command line
/// (`--engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    /// DataFusion in this process.
    #[default]
    Local,
    /// A Ballista cluster at `engine.scheduler` / `--scheduler`.
    Ballista,
    /// A Ballista scheduler and executor inside this process.
    BallistaStandalone,
}

impl FromStr for EngineKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "local" => Ok(Self::Local),
            "ballista" => Ok(Self::Ballista),
            "ballista-standalone" => Ok(Self::BallistaStandalone),
            other => Err(Error::Usage(format!(
                "unknown engine `{other}`; use local, ballista (with --scheduler df://host:port) or ballista-standalone"
            ))),
        }
    }
}

/// The engine a run uses, resolved from its kind and scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// DataFusion in this process.
    Local,
    /// A Ballista scheduler and executor started inside this process.
    Standalone,
    /// A remote Ballista scheduler.
    Remote {
        /// The scheduler URL as given (`df://host:port`).
        url: String,
        /// Its host.
        host: String,
        /// Its port.
        port: u16,
    },
}

impl Engine {
    /// Resolves `engine.kind` and `engine.scheduler`; errors are messages for the caller to
    /// attach to a file or flag.
    pub fn resolve(
        kind: EngineKind,
        scheduler: Option<&str>,
    ) -> std::result::Result<Engine, String> {
        match (kind, scheduler.map(str::trim)) {
            (EngineKind::Local, _) => Ok(Engine::Local),
            (EngineKind::BallistaStandalone, _) | (EngineKind::Ballista, Some("standalone")) => {
                Ok(Engine::Standalone)
            }
            (EngineKind::Ballista, None | Some("")) => Err(
                "the ballista engine needs a scheduler: pass --scheduler df://host:port (or set engine.scheduler), or use --engine ballista-standalone for an in-process cluster"
                    .into(),
            ),
            (EngineKind::Ballista, Some(url)) => parse_scheduler(url),
        }
    }

    /// A short name for logs and run results.
    pub fn describe(&self) -> String {
        match self {
            Engine::Local => "local".into(),
            Engine::Standalone => "ballista-standalone".into(),
            Engine::Remote { url, .. } => format!("ballista {url}"),
        }
    }
}

/// The host and port of a scheduler URL (`df://host:port`; the port defaults to Ballista's).
pub fn scheduler_address(text: &str) -> std::result::Result<(String, u16), String> {
    match parse_scheduler(text.trim())? {
        Engine::Remote { host, port, .. } => Ok((host, port)),
        _ => Err(format!("`{text}` is not a scheduler URL (df://host:port)")),
    }
}

fn parse_scheduler(text: &str) -> std::result::Result<Engine, String> {
    let bad = |why: &str| {
        format!(
            "scheduler `{text}` {why}; expected df://host:port (e.g. df://ballista-scheduler:{DEFAULT_SCHEDULER_PORT}) or `standalone`"
        )
    };
    let url = url::Url::parse(text).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "df" | "http") {
        return Err(bad(&format!("has scheme `{}`", url.scheme())));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("names no host"))?
        .to_string();
    if !url.path().trim_matches('/').is_empty() || url.query().is_some() {
        return Err(bad("has a path or query"));
    }
    Ok(Engine::Remote {
        url: text.to_string(),
        host,
        port: url.port().unwrap_or(DEFAULT_SCHEDULER_PORT),
    })
}

/// Applies the `--engine` / `--scheduler` flags over the engine block: a flag wins; a scheduler
/// given without an engine implies `ballista`. A combination that names no usable engine is a
/// usage error.
pub fn apply_flags(
    cfg: &mut EngineConfig,
    engine: Option<&str>,
    scheduler: Option<&str>,
) -> Result<()> {
    if let Some(kind) = engine {
        cfg.kind = kind.parse()?;
    }
    if let Some(s) = scheduler {
        if engine.is_none() {
            cfg.kind = EngineKind::Ballista;
        }
        cfg.scheduler = Some(s.to_string());
    }
    Engine::resolve(cfg.kind, cfg.scheduler.as_deref())
        .map(|_| ())
        .map_err(Error::Usage)
}

/// The session configuration shared by every engine: batch size, parallelism, the business
/// time zone. On Ballista it travels with each query to the scheduler and executors.
pub fn session_config(settings: &EngineSettings) -> SessionConfig {
    let mut sc = SessionConfig::new()
        .with_batch_size(settings.batch_size)
        .with_information_schema(true)
        .with_create_default_catalog_and_schema(true);
    if settings.target_partitions > 0 {
        sc = sc.with_target_partitions(settings.target_partitions);
    }
    sc.options_mut().execution.time_zone = Some(settings.time_zone.clone());
    sc
}

/// Builds the session the run's SQL stages execute in, from the configuration and runtime of
/// [`runtime::engine_runtime`], with `stores` (the warehouse and the
/// scratch space) registered. With Ballista, the scheduler must be reachable now: an
/// unreachable one fails here, within seconds, naming the URL.
pub async fn session(
    settings: &EngineSettings,
    (config, runtime): (SessionConfig, Arc<RuntimeEnv>),
    stores: &[&Location],
) -> Result<SessionContext> {
    let engine = &settings.engine;
    let mut config = config;
    if *engine != Engine::Local {
        config = ballista_workarounds(config);
    }
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .build();
    // Object stores go into the runtime before the cluster is built: the in-process cluster
    // shares this runtime (and so these stores); a remote cluster builds its own from its
    // environment (see infra/README.md).
    for loc in stores {
        if !loc.is_local() {
            state
                .runtime_env()
                .register_object_store(&loc.root_url(), Arc::clone(loc.store()));
        }
    }
    let ctx = match engine {
        Engine::Local => SessionContext::new_with_state(state),
        Engine::Standalone => SessionContext::standalone_with_state(state)
            .await
            .context(|| "starting the in-process Ballista cluster".into())?,
        Engine::Remote { url, host, port } => {
            check_reachable(url, host, *port).await?;
            SessionContext::remote_with_state(&format!("df://{host}:{port}"), state)
                .await
                .map_err(|e| scheduler_error(url, &e.to_string()))?
        }
    };
    tracing::info!(engine = engine.describe(), "session ready");
    Ok(ctx)
}

/// Settings that keep Ballista 55 from failing where the local engine does not. Set on the
/// driver's configuration, which travels with every job to the scheduler and executors.
///
/// - The adaptive planner (AQE) off: on `segment_summary` (several joins and window functions
///   over model outputs) it re-plans without end, creating thousands of stages and never
///   finishing. The static planner runs every stage of the pipeline.
/// - Dynamic filter pushdown off: Ballista's adaptive planner re-ran join selection on plans
///   whose hash joins already carried dynamic filters, and DataFusion 55 refuses to swap such a
///   join ("Cannot swap HashJoinExec inputs after dynamic filters have been constructed"); the
///   scheduler logged the error and the job never finished (seen on `int_order_lines`). Kept off
///   with the static planner as a precaution: the filters are only an optimisation.
/// - DataFusion never chooses a collect-left (broadcast) hash join by itself: both
///   `hash_join_single_partition_threshold` settings are 0, so its planner plans partitioned
///   joins and places the repartitioning their parents need. Ballista 55's static planner
///   demotes a DataFusion collect-left join of a type it cannot broadcast (a LEFT join whose
///   preserved side is the small one, or any join over Ballista's own broadcast threshold) to a
///   partitioned one, which turns the join's one output partition into `target_partitions`
///   partitions without revisiting its parent. A `DataSinkExec` above it, planned for one
///   input partition, then writes partition 0 only: on a scheduler and executors as separate
///   processes `stg_surveys` kept 276 of its 587 rows (reconciliation refused the run).
///   Ballista still broadcasts a small side itself (`ballista.optimizer.broadcast_join_*`),
///   for the join types where that is correct, and without changing the partition count.
fn ballista_workarounds(config: SessionConfig) -> SessionConfig {
    let config = [
        "datafusion.optimizer.enable_dynamic_filter_pushdown",
        "datafusion.optimizer.enable_join_dynamic_filter_pushdown",
        "datafusion.optimizer.enable_topk_dynamic_filter_pushdown",
        "datafusion.optimizer.enable_aggregate_dynamic_filter_pushdown",
    ]
    .into_iter()
    .fold(config, |c, key| c.set_bool(key, false));
    [
        "datafusion.optimizer.hash_join_single_partition_threshold",
        "datafusion.optimizer.hash_join_single_partition_threshold_rows",
    ]
    .into_iter()
    .fold(config, |c, key| c.set_usize(key, 0))
    .with_ballista_adaptive_query_planner(false)
    // executors refuse the tasks of a driver of another version (cluster::check_job_version)
    .with_ballista_job_name(&cluster::job_name())
}

fn scheduler_error(url: &str, what: &str) -> Error {
    Error::source(
        "ballista scheduler",
        url,
        format!(
            "{what}; start the scheduler (infra/README.md), fix --scheduler / engine.scheduler, or run with --engine local"
        ),
    )
}

/// Fails fast when nothing listens at the scheduler's address (Ballista itself would only find
/// out at the first query, after its own connect timeout).
async fn check_reachable(url: &str, host: &str, port: u16) -> Result<()> {
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(scheduler_error(
            url,
            &format!("cannot connect to the Ballista scheduler at {host}:{port} ({e})"),
        )),
        Err(_) => Err(scheduler_error(
            url,
            &format!(
                "the Ballista scheduler at {host}:{port} did not answer within {}s",
                CONNECT_TIMEOUT.as_secs()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedulers_resolve_with_the_default_port() {
        assert_eq!(
            Engine::resolve(EngineKind::Ballista, Some("df://sched:50051")).unwrap(),
            Engine::Remote {
                url: "df://sched:50051".into(),
                host: "sched".into(),
                port: 50051
            }
        );
        assert!(matches!(
            Engine::resolve(EngineKind::Ballista, Some("df://sched")).unwrap(),
            Engine::Remote { port: 50050, .. }
        ));
        assert_eq!(
            Engine::resolve(EngineKind::Ballista, Some("standalone")).unwrap(),
            Engine::Standalone
        );
        assert_eq!(
            Engine::resolve(EngineKind::Local, Some("df://ignored:1")).unwrap(),
            Engine::Local
        );
    }

    #[test]
    fn bad_schedulers_say_what_is_expected() {
        let e = Engine::resolve(EngineKind::Ballista, None).unwrap_err();
        assert!(e.contains("--scheduler df://host:port"), "{e}");
        for bad in ["sched:50050", "ftp://sched:1", "df://sched:1/x", "df://"] {
            let e = Engine::resolve(EngineKind::Ballista, Some(bad)).unwrap_err();
            assert!(
                e.contains(bad) && e.contains("expected df://host:port"),
                "{e}"
            );
        }
        assert!("spark".parse::<EngineKind>().is_err());
        assert_eq!(
            "ballista-standalone".parse::<EngineKind>().unwrap(),
            EngineKind::BallistaStandalone
        );
    }
}
