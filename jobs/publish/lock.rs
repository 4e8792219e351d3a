//! One run per period at a time: a lock object `<warehouse>/_locks/period=<P>.json`, created
//! with the store's create-if-absent put (atomic on the local filesystem and on stores with
//! conditional puts), holding its owner. A second run of the same period fails fast naming the
//! owner; different periods lock different objects and run in parallel.
//!
//! A lock whose owner is gone is taken over: at once when the owner ran on this host and its
//! process no longer runs (checked with `/proc/<pid>` on Linux; a zombie, killed but not yet
//! reaped, counts as gone), otherwise once it is older than `lock_stale_after_minutes` (at least
//! 1). A takeover is a compare-and-swap: the runs that find the same stale lock race to create a
//! takeover claim named after that lock's owner (create-if-absent, so exactly one wins), the
//! winner re-reads the lock (it must still be the stale owner's), replaces it, and reads its own
//! lock back. However many runs race, one holds the period.
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
use crate::layout::Layout;
use crate::period::Period;
use crate::storage::Location;

/// Who holds a period's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

impl LockOwner {
    /// A name for the takeover claim of this owner's lock: unique per acquisition.
    fn token(&self) -> String {
        let raw = format!(
            "{}-{}",
            self.run_id,
            self.acquired_at.timestamp_nanos_opt().unwrap_or_default()
        );
        raw.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
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

fn put_create() -> PutOptions {
    PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    }
}

/// Creates `path` if it is absent (the store's conditional put, or the best-effort fallback on
/// a store without one). `Err(AlreadyExists)` when it exists.
pub(crate) async fn create(
    store: &dyn ObjectStore,
    path: &Path,
    body: Vec<u8>,
    url: &str,
) -> std::result::Result<(), object_store::Error> {
    match store
        .put_opts(path, body.clone().into(), put_create())
        .await
    {
        Err(e) if not_implemented(&e) => {
            tracing::warn!(
                url,
                "the store does not support create-only puts: the period lock is best effort (check, put, read back)"
            );
            match store.head(path).await {
                Ok(_) => Err(object_store::Error::AlreadyExists {
                    path: path.to_string(),
                    source: "the object exists".into(),
                }),
                Err(_) => store.put(path, body.into()).await.map(|_| ()),
            }
        }
        other => other.map(|_| ()),
    }
}

impl PeriodLock {
    /// Takes the lock of `period` for `run_id`, or fails naming the run that holds it.
    pub async fn acquire(
        warehouse: &Location,
        period: &Period,
        run_id: &str,
        stale_after_minutes: u64,
    ) -> Result<Self> {
        let layout = Layout::for_warehouse(warehouse.clone());
        let path = layout.lock(period);
        let url = warehouse.url_of(&path);
        let label = period.label();
        let owner = LockOwner {
            run_id: run_id.into(),
            host: host(),
            pid: std::process::id(),
            acquired_at: Utc::now(),
        };
        let body =
            serde_json::to_vec_pretty(&owner).map_err(|e| Error::Internal(format!("lock: {e}")))?;
        let store = warehouse.store();
        let storage = |e: object_store::Error| Error::store(&url, e);
        let busy = |h: &LockOwner| Error::PeriodLocked {
            url: url.clone(),
            holder: h.run_id.clone(),
            message: format!(
                "period {label} is being computed by run {} (host {}, pid {}, since {}); wait for it to finish. If that run died, remove the lock object; locks older than {stale_after_minutes} minutes are taken over automatically",
                h.run_id,
                h.host,
                h.pid,
                h.acquired_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        };
        for _ in 0..3 {
            match create(store.as_ref(), &path, body.clone(), &url).await {
                Ok(()) => return Self::confirm(warehouse, path, &owner, &label).await,
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(storage(e)),
            }
            let Some(holder) = read_owner(store.as_ref(), &path).await else {
                // released (or being replaced) between our put and our read: try again
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let age = (Utc::now() - holder.acquired_at).num_minutes().max(0) as u64;
            let dead = owner_is_dead(&holder);
            if !dead && age < stale_after_minutes {
                return Err(busy(&holder));
            }
            // compare-and-swap: one run wins the claim of this stale owner's lock
            let claim = layout.lock_takeover(period, &holder.token());
            match create(store.as_ref(), &claim, body.clone(), &url).await {
                Ok(()) => {}
                Err(object_store::Error::AlreadyExists { .. }) => {
                    return Err(Error::storage(
                        &url,
                        format!(
                            "period {label}: another run is taking over the lock that run {} left behind; wait for it to finish",
                            holder.run_id
                        ),
                    ));
                }
                Err(e) => return Err(storage(e)),
            }
            // the lock must still be the stale owner's: a run that took it meanwhile keeps it
            let current = read_owner(store.as_ref(), &path).await;
            if current.as_ref().is_some_and(|c| *c != holder) {
                let _ = store.delete(&claim).await;
                return Err(busy(current.as_ref().unwrap_or(&holder)));
            }
            tracing::warn!(
                period = label,
                stale_owner = holder.run_id,
                pid = holder.pid,
                host = holder.host,
                reason = if dead {
                    "its process is gone"
                } else {
                    "it is stale"
                },
                "taking over the lock of a run that is no longer running"
            );
            if current.is_some() {
                store.delete(&path).await.map_err(storage)?;
            }
            let created = create(store.as_ref(), &path, body.clone(), &url).await;
            let _ = store.delete(&claim).await;
            return match created {
                Ok(()) => Self::confirm(warehouse, path, &owner, &label).await,
                Err(object_store::Error::AlreadyExists { .. }) => {
                    match read_owner(store.as_ref(), &path).await {
                        Some(h) => Err(busy(&h)),
                        None => Err(Error::storage(
                            &url,
                            format!(
                                "could not take the lock of period {label}: another run took it concurrently"
                            ),
                        )),
                    }
                }
                Err(e) => Err(storage(e)),
            };
        }
        Err(Error::storage(
            url,
            format!("could not take the lock of period {label}: another run took it concurrently"),
        ))
    }

    /// Reads the lock back: it must be this run's (a store that ignored the precondition, or a
    /// concurrent takeover, shows here).
    async fn confirm(
        warehouse: &Location,
        path: Path,
        owner: &LockOwner,
        period: &str,
    ) -> Result<Self> {
        let lock = Self {
            loc: warehouse.clone(),
            path,
        };
        match read_owner(warehouse.store().as_ref(), &lock.path).await {
            Some(o) if o == *owner => Ok(lock),
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

/// Whether the owner ran on this host and its process is gone: no `/proc/<pid>`, or a zombie
/// (killed, not yet reaped by its parent). Only answers yes where process liveness can be
/// checked (Linux `/proc`); a recycled pid keeps the lock until the age rule.
fn owner_is_dead(owner: &LockOwner) -> bool {
    let proc = std::path::Path::new("/proc");
    if owner.host != host() || owner.pid == std::process::id() || !proc.join("self").exists() {
        return false;
    }
    match std::fs::read_to_string(proc.join(format!("{}/stat", owner.pid))) {
        Err(_) => true,
        // the state is the first field after the command name in parentheses
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

async fn read_owner(store: &dyn ObjectStore, path: &Path) -> Option<LockOwner> {
    let bytes = store.get(path).await.ok()?.bytes().await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::Grain;

    fn june() -> Period {
        Period::parse(Grain::Month, "2024-06").unwrap()
    }

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
        let lock = PeriodLock::acquire(&wh, &june(), "next-run", 360)
            .await
            .expect("a dead owner's lock is taken over although it is fresh");
        let now: LockOwner = serde_json::from_slice(&std::fs::read(&lock_file).unwrap()).unwrap();
        assert_eq!(now.run_id, "next-run");
        lock.release().await;

        // a live owner (this process) keeps its fresh lock
        std::fs::write(&lock_file, owner("live-run", std::process::id())).unwrap();
        let err = PeriodLock::acquire(&wh, &june(), "next-run", 360)
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
        let err = PeriodLock::acquire(&wh, &june(), "next-run", 360)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("run remote-run"), "{err}");
    }

    #[tokio::test]
    async fn a_zombie_owner_counts_as_dead() {
        if !std::path::Path::new("/proc/self").exists() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let wh = Location::parse(&tmp.path().display().to_string()).unwrap();
        let lock_file = tmp.path().join("_locks/period=2024-06.json");
        std::fs::create_dir_all(lock_file.parent().unwrap()).unwrap();
        // a child that exited but is not reaped yet: /proc/<pid> exists, in state Z
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let zombie = child.id();
        for _ in 0..100 {
            let stat = std::fs::read_to_string(format!("/proc/{zombie}/stat")).unwrap_or_default();
            if stat.contains(") Z") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::fs::write(&lock_file, owner("killed-run", zombie)).unwrap();
        let lock = PeriodLock::acquire(&wh, &june(), "next-run", 360)
            .await
            .expect("a zombie's lock is taken over at once");
        lock.release().await;
        child.wait().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_stale_lock_is_taken_over_by_exactly_one_of_many_racing_runs() {
        for round in 0..12 {
            let tmp = tempfile::tempdir().unwrap();
            let wh = Location::parse(&tmp.path().display().to_string()).unwrap();
            let lock_file = tmp.path().join("_locks/period=2024-06.json");
            std::fs::create_dir_all(lock_file.parent().unwrap()).unwrap();
            let stale = serde_json::to_vec(&LockOwner {
                run_id: "long-dead".into(),
                host: format!("{}-elsewhere", host()),
                pid: 1,
                acquired_at: Utc::now() - chrono::Duration::hours(10),
            })
            .unwrap();
            std::fs::write(&lock_file, stale).unwrap();
            let mut tasks = Vec::new();
            for i in 0..6 {
                let wh = wh.clone();
                tasks.push(tokio::spawn(async move {
                    PeriodLock::acquire(&wh, &june(), &format!("racer-{i}"), 60)
                        .await
                        .ok()
                }));
            }
            let mut held = Vec::new();
            for t in tasks {
                if let Some(lock) = t.await.unwrap() {
                    held.push(lock);
                }
            }
            assert_eq!(
                held.len(),
                1,
                "round {round}: exactly one run holds the period"
            );
            let now: LockOwner =
                serde_json::from_slice(&std::fs::read(&lock_file).unwrap()).unwrap();
            assert!(now.run_id.starts_with("racer-"), "{now:?}");
        }
    }
}
