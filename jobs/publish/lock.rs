//! One run per period at a time: a lock object `<warehouse>/_locks/period=<P>.json`, created
//! with the store's create-if-absent put (atomic on the local filesystem and on stores with
//! conditional puts), holding its owner. A second run of the same period fails fast naming the
//! owner; different periods lock different objects and run in parallel. A lock older than
//! `lock_stale_after_minutes` (a run that was killed) is taken over, with a warning; so, at once,
//! is a lock whose owner ran on this host with a process id that is no longer alive (checked
//! with `/proc/<pid>` on Linux; elsewhere only the age rule applies).
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
                        (Some(h), _) if owner_is_dead(&h) => {
                            tracing::warn!(
                                period,
                                stale_owner = h.run_id,
                                pid = h.pid,
                                host = h.host,
                                "taking over the lock of a run whose process is gone"
                            );
                            store
                                .delete(&path)
                                .await
                                .map_err(|e| Error::storage(&url, crate::storage::explain(&e)))?;
                        }
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

/// Whether the owner ran on this host and its process is gone. Only answers yes where process
/// liveness can be checked (Linux `/proc`); a recycled pid keeps the lock until the age rule.
fn owner_is_dead(owner: &LockOwner) -> bool {
    let proc = std::path::Path::new("/proc");
    owner.host == host()
        && owner.pid != std::process::id()
        && proc.join("self").exists()
        && !proc.join(owner.pid.to_string()).exists()
}

async fn read_owner(store: &dyn ObjectStore, path: &Path) -> Option<LockOwner> {
    let bytes = store.get(path).await.ok()?.bytes().await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(run_id: &str, pid: u32) -> Vec<u8> {
        serde_json::to_vec(&LockOwner {
            run_id: run_id.into(),
            host: host(),
            pid,
            acquired_at: Utc::now(),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_lock_of_a_dead_process_on_this_host_is_taken_over_at_once() {
        if !std::path::Path::new("/proc/self").exists() {
            return; // liveness is only checked where /proc exists
        }
        let tmp = tempfile::tempdir().unwrap();
        let wh = Location::parse(&tmp.path().display().to_string()).unwrap();
        let lock_file = tmp.path().join("_locks/period=2024-06.json");
        std::fs::create_dir_all(lock_file.parent().unwrap()).unwrap();
        // a process that has exited (and was reaped): its pid is no longer alive
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        std::fs::write(&lock_file, owner("killed-run", dead)).unwrap();
        let lock = PeriodLock::acquire(&wh, "2024-06", "next-run", 360)
            .await
            .expect("a dead owner's lock is taken over although it is fresh");
        let now: LockOwner = serde_json::from_slice(&std::fs::read(&lock_file).unwrap()).unwrap();
        assert_eq!(now.run_id, "next-run");
        lock.release().await;

        // a live owner (this process) keeps its fresh lock
        std::fs::write(&lock_file, owner("live-run", std::process::id())).unwrap();
        let err = PeriodLock::acquire(&wh, "2024-06", "next-run", 360)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("run live-run"), "{err}");
        // so does an owner on another host, whatever its pid
        let other = serde_json::to_vec(&LockOwner {
            run_id: "remote-run".into(),
            host: format!("{}-elsewhere", host()),
            pid: dead,
            acquired_at: Utc::now(),
        })
        .unwrap();
        std::fs::write(&lock_file, other).unwrap();
        let err = PeriodLock::acquire(&wh, "2024-06", "next-run", 360)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("run remote-run"), "{err}");
    }
}
