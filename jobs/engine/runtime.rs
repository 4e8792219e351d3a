//! The engine's runtime: the memory pool under `engine.memory_limit` and the spill files under
//! `engine.spill_dir`, shared by the local and the Ballista sessions.

use std::sync::Arc;

use datafusion::execution::context::SessionContext;
use datafusion::prelude::SessionConfig;

use super::EngineSettings;
use crate::error::{Error, Result};

/// Builds a local query engine session with the run's memory settings (see [`engine_runtime`]).
/// `file` is the job definition, named in errors.
pub fn session(settings: &EngineSettings, file: &str) -> Result<SessionContext> {
    let (sc, runtime, _) = engine_runtime(settings, file)?;
    Ok(SessionContext::new_with_config_rt(sc, runtime))
}

/// The engine's configuration (shared by every engine, [`crate::engine::session_config`]) and
/// runtime: `engine.memory_limit` caps the engine's memory with a fair spill pool (spilling
/// operators share it and spill to disk beyond it), spill files go to `engine.spill_dir`
/// (default: the OS temp dir) and are counted for the run results.
pub fn engine_runtime(
    settings: &EngineSettings,
    file: &str,
) -> Result<(
    SessionConfig,
    Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    Arc<super::spill::SpillCounters>,
)> {
    use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
    use datafusion::execution::memory_pool::FairSpillPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    let mut sc = super::session_config(settings);
    let knob = |key: &str, m: String| Error::config(file, format!("`{key}`: {m}"));
    let mode = match &settings.spill_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| {
                knob(
                    "engine.spill_dir",
                    format!(
                        "cannot create the spill folder {}: {e}; it must be a writable local folder",
                        dir.display()
                    ),
                )
            })?;
            DiskManagerMode::Directories(vec![dir.clone()])
        }
        None => DiskManagerMode::OsTmpDirectory,
    };
    let disk = DiskManagerBuilder::default()
        .with_mode(mode)
        .build()
        .map_err(|e| knob("engine.spill_dir", e.to_string()))?;
    let counters = Arc::new(super::spill::SpillCounters::default());
    let counting = super::spill::CountingSpillFiles::new(Arc::new(disk), Arc::clone(&counters));
    let mut runtime = RuntimeEnvBuilder::new().with_disk_manager_builder(
        DiskManagerBuilder::default().with_mode(DiskManagerMode::Custom(Arc::new(counting))),
    );
    if let Some(limit) = settings.memory_limit {
        runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(limit)));
        // each sort keeps this much back for merging its spills (default 10 MB), and that
        // reservation cannot spill: the fair pool gives each spilling operator (sorts,
        // aggregations, repartitions) an equal share of what such reservations leave. A stage
        // plan holds several sorts per partition (segment_summary: windows and the final
        // order), so a cap of limit / (4 x partitions) left the aggregations a few hundred KB
        // each at 40 MiB and one of them failed its first allocation; cap it at limit / 32
        // per partition (merging spills needs little: the spill files are read a batch each)
        let partitions = sc.target_partitions().max(1);
        let execution = &mut sc.options_mut().execution;
        execution.sort_spill_reservation_bytes = execution
            .sort_spill_reservation_bytes
            .min(limit / (32 * partitions));
        // the Parquet writer buffers a row group and cannot spill: one column pass per file
        // and small row groups for the run's scratch files (published files are not written
        // by the engine)
        sc = sc.set_usize("datafusion.execution.minimum_parallel_output_files", 1);
        let parquet = &mut sc.options_mut().execution.parquet;
        parquet.allow_single_file_parallelism = false;
        parquet.max_row_group_size = parquet.max_row_group_size.min(65_536);
    }
    let runtime = runtime
        .build_arc()
        .map_err(|e| Error::Internal(format!("query engine runtime: {e}")))?;
    Ok((sc, runtime, counters))
}

/// An engine memory error made actionable: it names the stage and the knob. Operators that
/// cannot spill (e.g. a hash join's build side) fail this way when the limit is too small.
pub fn explain_out_of_memory(settings: &EngineSettings, file: &str, e: Error) -> Error {
    if !e.is_out_of_memory() {
        return e;
    }
    let limit = settings.memory_limit_text.as_deref().unwrap_or("unlimited");
    Error::config(
        file,
        format!(
            "`engine.memory_limit`: the query engine ran out of memory (limit {limit}) in {e}. Raise engine.memory_limit, or lower engine.target_partitions; spilling operators (sorts, aggregations) spill to engine.spill_dir, but some (hash joins' build sides) must fit in memory"
        ),
    )
}
