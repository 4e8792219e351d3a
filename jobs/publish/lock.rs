//! One run per period at a time: a lock object `<warehouse>/_locks/period=<P>.json`, created
//! with the store's create-if-absent put (atomic on the local filesystem and on stores with
//! conditional puts), holding its owner. A second run of the same period fails fast naming the
//! owner; different periods lock different objects and run in parallel. A lock older than
//! `lock_stale_after_minutes` (a run that was killed) is taken over, with a warning.

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
            match store
                .put_opts(&path, body.clone().into(), create.clone())
                .await
            {
                Ok(_) => {
                    return Ok(Self {
                        loc: warehouse.clone(),
                        path,
                    });
                }
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

    /// Releases the lock (best effort; a left-over lock becomes stale and is taken over).
    pub async fn release(self) {
        if let Err(e) = self.loc.store().delete(&self.path).await {
            tracing::warn!("could not release {}: {e}", self.loc.url_of(&self.path));
        }
    }
}

async fn read_owner(store: &dyn ObjectStore, path: &Path) -> Option<LockOwner> {
    let bytes = store.get(path).await.ok()?.bytes().await.ok()?;
    serde_json::from_slice(&bytes).ok()
}
