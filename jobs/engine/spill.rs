//! Spilling to disk under the engine's memory limit (`engine.memory_limit`, `engine.spill_dir`).
//! The query engine's spill files are created through [`CountingSpillFiles`], which counts the
//! files and bytes spilled, so run results can say how much a run spilled.

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use datafusion::error::Result as EngineResult;
use datafusion::execution::DiskManager;
use datafusion::execution::{SpillFile, SpillWriter, TempFileFactory};
use futures::Stream;
use serde::Serialize;

/// Files and bytes the engine spilled during one run.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct SpillSummary {
    /// Spill files created.
    pub files: u64,
    /// Bytes written to spill files.
    pub bytes: u64,
}

/// Live spill counters shared with the engine's spill files.
#[derive(Debug, Default)]
pub struct SpillCounters {
    files: AtomicU64,
    bytes: AtomicU64,
}

impl SpillCounters {
    /// What was spilled so far.
    pub fn summary(&self) -> SpillSummary {
        SpillSummary {
            files: self.files.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

/// Creates spill files with a [`DiskManager`] (its folder, size cap and accounting) and counts
/// them.
pub struct CountingSpillFiles {
    inner: Arc<DiskManager>,
    counters: Arc<SpillCounters>,
}

impl CountingSpillFiles {
    /// Spill files of `inner`, counted in `counters`.
    pub fn new(inner: Arc<DiskManager>, counters: Arc<SpillCounters>) -> Self {
        Self { inner, counters }
    }
}

impl TempFileFactory for CountingSpillFiles {
    fn create_temp_file(&self, description: &str) -> EngineResult<Arc<dyn SpillFile>> {
        let file = self.inner.create_tmp_file(description)?;
        self.counters.files.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("spilling to disk: {description}");
        Ok(Arc::new(CountedFile {
            inner: file,
            counters: Arc::clone(&self.counters),
        }))
    }
}

struct CountedFile {
    inner: Arc<dyn SpillFile>,
    counters: Arc<SpillCounters>,
}

impl SpillFile for CountedFile {
    fn path(&self) -> Option<&std::path::Path> {
        self.inner.path()
    }

    fn size(&self) -> Option<u64> {
        self.inner.size()
    }

    fn read_stream(&self) -> EngineResult<Pin<Box<dyn Stream<Item = EngineResult<Bytes>> + Send>>> {
        self.inner.read_stream()
    }

    fn open_writer(&self) -> EngineResult<Box<dyn SpillWriter>> {
        Ok(Box::new(CountedWriter {
            inner: self.inner.open_writer()?,
            counters: Arc::clone(&self.counters),
        }))
    }
}

struct CountedWriter {
    inner: Box<dyn SpillWriter>,
    counters: Arc<SpillCounters>,
}

impl Write for CountedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl SpillWriter for CountedWriter {
    fn finish(&mut self) -> EngineResult<()> {
        self.inner.finish()
    }
}
