//! One run per period at a time: a lock object `<warehouse>/_locks/period=<P>.json`, created
//! with the store's create-if-absent put (atomic on the local filesystem and on stores with
//! conditional puts), holding its owner. A second run of the same period fails fast naming the
//! owner; different periods lock different objects and run in parallel. A lock older than
//! `lock_stale_after_minutes` (a run that was killed) is taken over, with a warning.
//!
//! Create-if-absent is `O_EXCL` on the local filesystem, `If-None-Match: *` on S3 (AWS since
//! 2024, SeaweedFS, MinIO; the S3 suite checks it against SeaweedFS), a generation-0
//! precondition on GCS and `If-None-Match: *` on Azure. An S3-compatible store that rejects the
//! header as not implemented gets a weaker lock: absent-check, plain put, then read back (a
//! race between two runs in the same second can still let both in; a warning says so). Every
//! acquisition reads the lock back and fails if another run's owner is in it.

use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::Location;

/// Who holds a period's lock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockOwner {
    /// The owning run.
    pub run_id: String,
    /// Its host name.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When it took the lock (UTC).
    pub acquired_at: DateTime<Utc>,
}

/// A held period lock; release it with [`PeriodLock::release`].
#[derive(Debug)]
pub struct PeriodLock {
    loc: Location,
    path: Path,
}

fn host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

impl PeriodLock {
    /// Takes the lock of `period` for `run_id`, or fails naming the run that holds it.
    pub async fn acquire(
        warehouse: &Location,
        period: &str,
        run_id: &str,
        stale_after_minutes: u64,
    ) -> Result<Self> {
        let path = warehouse.path_of(&format!("_locks/period={period}.json"));
        let url = warehouse.url_of(&path);
        let owner = LockOwner {
            run_id: run_id.into(),
            host: host(),
            pid: std::process::id(),
            acquired_at: Utc::now(),
        };
        let body =
            serde_json::to_vec_pretty(&owner).map_err(|e| Error::Internal(format!("lock: {e}")))?;
        let store = warehouse.store();
        let create = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        for attempt in 0..2 {
            let put = match store
                .put_opts(&path, body.clone().into(), create.clone())
                .await
            {
                Err(e) if not_implemented(&e) => {
                    tracing::warn!(
                        url,
                        "the store does not support create-only puts: the period lock is best effort (check, put, read back)"
                    );
                    match store.head(&path).await {
                        Ok(_) => Err(object_store::Error::AlreadyExists {
                            path: path.to_string(),
                            source: "the lock object exists".into(),
                        }),
                        Err(_) => store.put(&path, body.clone().into()).await,
                    }
                }
                other => other,
            };
            match put {
                Ok(_) => return Self::confirm(warehouse, path, run_id, period).await,
                Err(object_store::Error::AlreadyExists { .. }) if attempt == 0 => {
                    let holder = read_owner(store.as_ref(), &path).await;
                    let age = holder
                        .as_ref()
                        .map(|h| (Utc::now() - h.acquired_at).num_minutes().max(0) as u64);
                    match (holder, age) {
                        (Some(h), Some(age)) if age < stale_after_minutes => {
                            return Err(Error::storage(
                                &url,
                                format!(
                                    "period {period} is being computed by run {} (host {}, pid {}, since {}); wait for it to finish. If that run died, remove the lock object; locks older than {stale_after_minutes} minutes are taken over automatically",
                                    h.run_id,
                                    h.host,
                                    h.pid,
                                    h.acquired_at
                                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                                ),
                            ));
                        }
                        (holder, _) => {
                            tracing::warn!(
                                period,
                                stale_owner = holder
                                    .map(|h| h.run_id)
                                    .unwrap_or_else(|| "unreadable".into()),
                                "taking over a stale lock"
                            );
                            store
                                .delete(&path)
                                .await
                                .map_err(|e| Error::storage(&url, crate::storage::explain(&e)))?;
                        }
                    }
                }
                Err(e) => return Err(Error::storage(&url, crate::storage::explain(&e))),
            }
        }
        Err(Error::storage(
            url,
            format!("could not take the lock of period {period}: another run took it concurrently"),
        ))
    }

    /// Reads the lock back: it must name this run (a store that ignored the precondition, or a
    /// concurrent takeover, shows here).
    async fn confirm(warehouse: &Location, path: Path, run_id: &str, period: &str) -> Result<Self> {
        let lock = Self {
            loc: warehouse.clone(),
            path,
        };
        match read_owner(warehouse.store().as_ref(), &lock.path).await {
            Some(o) if o.run_id == run_id => Ok(lock),
            other => Err(Error::storage(
                warehouse.url_of(&lock.path),
                format!(
                    "could not take the lock of period {period}: it names run {} after this run wrote it; another run took it concurrently, retry later",
                    other
                        .map(|o| o.run_id)
                        .unwrap_or_else(|| "(unreadable)".into())
                ),
            )),
        }
    }

    /// Releases the lock (best effort; a left-over lock becomes stale and is taken over).
    pub async fn release(self) {
        if let Err(e) = self.loc.store().delete(&self.path).await {
            tracing::warn!("could not release {}: {e}", self.loc.url_of(&self.path));
        }
    }
}

/// A store that rejects conditional puts (HTTP 501 NotImplemented, or object_store's
/// NotImplemented for a store configured without them).
fn not_implemented(e: &object_store::Error) -> bool {
    matches!(
        e,
        object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. }
    ) || e.to_string().contains("NotImplemented")
}

async fn read_owner(store: &dyn ObjectStore, path: &Path) -> Option<LockOwner> {
    let bytes = store.get(path).await.ok()?.bytes().await.ok()?;
    serde_json::from_slice(&bytes).ok()
}
