//! Recording a vehicle passage (a checkpoint's read, from our plate reader or from another
//! system over the API): the passage and every event it raises — the `passage` itself, a
//! `ring_crossing` for each active interception that armed its checkpoint for this plate (or for
//! any vehicle), a `watchlist_hit` for each watchlist entry in force that the plate hits — are
//! stored in one transaction, once per passage key. A failure leaves nothing half-written, and a
//! retry of the same passage stores nothing twice and answers what the first one did.

use crate::events::{Event, NewEvent, PassageSeen, RingCrossing, WatchlistHit};
use crate::geo::rings::RingPlan;
use crate::registry::{InterceptionRow, NewPassage, PassageRow, PassageStored, RawEvent, Registry, RegistryError};

use super::watchlist::Watchlist;

/// Stores a passage and its events (see the module documentation); answers the passage and the
/// positions of the events it raised (ring crossings, watchlist hits). The plate is normalised
/// (`豫a·12345` and `豫A12345` are the same plate).
pub async fn record(
    registry: &Registry,
    now_ms: i64,
    p: &NewPassage,
    source: &str,
) -> Result<PassageStored, RegistryError> {
    let mut p = p.clone();
    p.plate_no = p.plate_no.as_deref().map(crate::geo::service::normalise_plate);
    registry.expire_interceptions(now_ms).await?;
    let interceptions = registry.interceptions(true, None).await?;
    // Entries are read per passage: a change counts at once.
    let watchlist = match p.plate_no.as_deref().filter(|s| !s.is_empty()) {
        Some(_) => Some(Watchlist::new(registry.active_watchlists(p.pass_time_ms).await?)),
        None => None,
    };
    let key = p.key();
    let mut stored = registry
        .record_passage(&p, source, now_ms, |row| events_of(row, &key, &interceptions, watchlist.as_ref()))
        .await?;
    // The first event is the passage's own; the caller is told what it raised.
    if !stored.events.is_empty() {
        stored.events.remove(0);
    }
    Ok(stored)
}

/// The events of a stored passage, each keyed by the passage's key (a retry appends nothing).
fn events_of(
    row: &PassageRow,
    key: &str,
    interceptions: &[InterceptionRow],
    watchlist: Option<&Watchlist>,
) -> Vec<RawEvent> {
    let at = row.pass_time_ms;
    let mut out = vec![NewEvent::new(
        at,
        Some(format!("passage:{key}")),
        Event::Passage(PassageSeen {
            passage_id: row.id,
            camera_id: row.camera_id.clone(),
            pass_time_ms: row.pass_time_ms,
            plate_no: row.plate_no.clone(),
            plate_color: row.plate_color.clone(),
            direction: row.direction.clone(),
        }),
    )];
    for ic in interceptions {
        if row.pass_time_ms < ic.incident_at_ms {
            continue;
        }
        if let Some(want) = &ic.plate
            && row.plate_no.as_deref() != Some(want.as_str())
        {
            continue;
        }
        let plans: Vec<RingPlan> = match serde_json::from_value(ic.plan.clone()) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(interception = ic.id, error = %e, "an interception's stored plan cannot be read");
                continue;
            }
        };
        for ring in plans {
            let Some(cp) = ring.checkpoints.iter().find(|c| c.camera_id == row.camera_id) else { continue };
            out.push(NewEvent::new(
                at,
                Some(format!("passage:{key}:crossing:{}:{}", ic.id, ring.ring_id)),
                Event::RingCrossing(RingCrossing {
                    interception_id: ic.id,
                    ring_id: ring.ring_id.clone(),
                    ring_name: ring.name.clone(),
                    ring_level: ring.level,
                    checkpoint: cp.camera_id.clone(),
                    checkpoint_name: cp.name.clone(),
                    passage_id: row.id,
                    plate_no: row.plate_no.clone(),
                    plate_color: row.plate_color.clone(),
                    direction: row.direction.clone(),
                    pass_time_ms: row.pass_time_ms,
                    seconds_since_incident: (row.pass_time_ms - ic.incident_at_ms) as f64 / 1000.0,
                    eta_s: cp.eta_s,
                }),
            ));
        }
    }
    if let (Some(list), Some(plate)) = (watchlist, row.plate_no.as_deref()) {
        for hit in list.matches(plate, row.pass_time_ms) {
            out.push(NewEvent::new(
                at,
                Some(format!("passage:{key}:watchlist:{}", hit.entry_id)),
                Event::WatchlistHit(WatchlistHit {
                    plate_no: row.plate_no.clone(),
                    plate_color: row.plate_color.clone(),
                    passage_id: row.id,
                    camera_id: row.camera_id.clone(),
                    pass_time_ms: row.pass_time_ms,
                    watchlist_id: hit.entry_id,
                    pattern: hit.pattern,
                    match_kind: hit.match_kind.as_str().to_string(),
                    distance: Some(hit.distance),
                    reason: hit.reason,
                    priority: hit.priority.as_str().to_string(),
                    plate_image: row.plate_image.clone(),
                    context_image: row.context_image.clone(),
                }),
            ));
        }
    }
    out.iter().map(NewEvent::raw).collect()
}
