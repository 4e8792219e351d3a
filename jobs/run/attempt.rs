//! The attempts of a run id: the claim that binds a run id to its period, the attempt's number,
//! and removing what attempts left behind.

use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use crate::error::{Error, Result, StoreContext};
use crate::layout::{Attempt, Layout};
use crate::period::Period;
use crate::publish;

/// Binds the run id to its period: `_runs/<run_id>/period.json`, created if absent. A run id
/// used for another period is refused (a run id names one period's run; an orchestrator's retry
/// of the same period may reuse it).
pub(super) async fn claim_run_id(layout: &Layout, run_id: &str, period: &Period) -> Result<()> {
    let path = layout.run_claim(run_id);
    let url = layout.url_of(&path);
    let store = layout.warehouse().store();
    let body = serde_json::json!({ "period": period.label() }).to_string();
    match publish::lock::create(store.as_ref(), &path, body.into_bytes(), &url).await {
        Ok(()) => return Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => {}
        Err(e) => return Err(Error::store(&url, e)),
    }
    let bytes = store.get(&path).await.at(&url)?.bytes().await.at(&url)?;
    let claimed = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("period").and_then(|p| p.as_str()).map(String::from))
        .unwrap_or_default();
    if claimed == period.label() {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "run id `{run_id}` was already used for period {claimed}; a run id names one period's run (a retry of the same period may reuse it): pass another --run-id for period {period}"
        )))
    }
}

/// The next attempt number of a run id: one more than the attempts recorded so far. Called
/// holding the period's lock, which serialises the attempts of a run id.
pub(super) async fn next_attempt(layout: &Layout, run_id: &str) -> Result<Attempt> {
    let folder = layout.attempts(run_id);
    let listed: Vec<object_store::ObjectMeta> = folder
        .store()
        .list(Some(folder.prefix()))
        .try_collect()
        .await
        .or_else(|e| match e {
            object_store::Error::NotFound { .. } => Ok(Vec::new()),
            e => Err(Error::store(&folder, e)),
        })?;
    let last = listed
        .iter()
        .filter_map(|m| {
            m.location
                .filename()?
                .strip_suffix(".json")?
                .parse::<u32>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    Ok(Attempt {
        run_id: run_id.to_string(),
        number: last + 1,
    })
}

/// Removes what earlier, dead attempts of this run id left in scratch and staging (the period's
/// lock is held and the run id belongs to this period, so no other attempt of it is alive).
pub(super) async fn remove_dead_attempts(layout: &Layout, attempt: &Attempt) {
    for n in 1..attempt.number {
        let dead = Attempt {
            run_id: attempt.run_id.clone(),
            number: n,
        };
        for loc in [layout.staging(&dead), layout.scratch(&dead)] {
            if let Err(e) = publish::remove_all(&loc).await {
                tracing::warn!("could not remove {loc}: {e}");
            }
        }
    }
}

/// Removes the attempt's staging and scratch space, whatever the outcome (best effort: a
/// failure to clean up never fails the run). Staging is kept when a publish intent of this
/// attempt is left: the next run of the period needs it to finish the rollback.
pub(super) async fn cleanup(layout: &Layout, attempt: &Attempt, period: &Period) {
    let intent_left = publish::swap::read_intent(layout, period)
        .await
        .ok()
        .flatten()
        .is_some_and(|i| i.run_id == attempt.run_id && i.attempt == attempt.number);
    let mut doomed = vec![layout.scratch(attempt)];
    if !intent_left {
        doomed.push(layout.staging(attempt));
    }
    for loc in doomed {
        if let Err(e) = publish::remove_all(&loc).await {
            tracing::warn!("could not remove {loc}: {e}");
        }
    }
    for loc in [
        layout.run_staging(&attempt.run_id),
        layout.staging_root(),
        layout.run_scratch(&attempt.run_id),
        layout.scratch_root().clone(),
    ] {
        publish::remove_if_empty(&loc);
    }
}
