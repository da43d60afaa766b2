//! The patrol units' live feed: what the map shows, pushed to it (`GET /api/v1/units/stream`).
//!
//! One follower per node reads every unit from the registry while anyone listens, and sends what
//! changed since its last read: a new position, a status, a unit gone stale, added or retired.
//! The registry is the truth, so positions stored on any node of a city (HTTP, MQTT, a replay)
//! reach every node's listeners. A change on this node wakes the follower at once (`kick`); it
//! reads at most every [`MIN_GAP`] (so a flood of positions costs one read per gap, whatever the
//! number of listeners) and at least every [`MAX_GAP`] (what other nodes stored, units going
//! stale). With nobody listening it reads nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::clock::Clock;
use crate::registry::{Registry, UnitRow};

/// The shortest time between two reads of the units.
pub const MIN_GAP: Duration = Duration::from_millis(200);
/// The longest: what another node stored, or a unit going stale, shows within this (plus a read).
pub const MAX_GAP: Duration = Duration::from_secs(1);
/// Changes a listener may fall behind by before it is sent every unit again.
const BACKLOG: usize = 64;

/// One read's changes: `full`, every unit (a listener replaces what it holds); otherwise the
/// units that changed and the ids of those retired or removed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UnitsChange {
    pub full: bool,
    /// Each with its newest position and whether that is stale, as `GET /api/v1/units` gives it.
    pub units: Vec<UnitRow>,
    pub gone: Vec<String>,
    /// The registry's clock when the units were read (Unix ms).
    pub at_ms: i64,
}

#[derive(Clone)]
pub struct UnitFeed {
    inner: Arc<Inner>,
}

struct Inner {
    /// The units as last sent and the sender, under one lock, so that a listener's first
    /// picture and the changes after it join without a gap.
    state: Mutex<Sent>,
    kick: Notify,
    listened: Notify,
    stale_after_ms: i64,
}

/// The units as last sent (`None` while nobody listens), and where changes go.
struct Sent {
    units: Option<HashMap<String, UnitRow>>,
    tx: broadcast::Sender<Arc<UnitsChange>>,
}

/// A listener: every unit as last sent (`None`: the follower has not read since it woke, and
/// its first change will be `full`), then each change.
pub struct Listener {
    pub first: Option<UnitsChange>,
    pub changes: broadcast::Receiver<Arc<UnitsChange>>,
}

impl UnitFeed {
    pub fn new(stale_after_ms: i64) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(Sent { units: None, tx: broadcast::channel(BACKLOG).0 }),
                kick: Notify::new(),
                listened: Notify::new(),
                stale_after_ms,
            }),
        }
    }

    /// Something about a unit changed on this node: read soon.
    pub fn kick(&self) {
        self.inner.kick.notify_one();
    }

    /// Starts listening (see [`Listener`]); the follower wakes if it slept.
    pub fn listen(&self, now_ms: i64) -> Listener {
        let st = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        let changes = st.tx.subscribe();
        let first = st.units.as_ref().map(|units| {
            let mut units: Vec<UnitRow> = units.values().cloned().collect();
            units.sort_by(|a, b| a.id.cmp(&b.id));
            UnitsChange { full: true, units, gone: Vec::new(), at_ms: now_ms }
        });
        drop(st);
        self.inner.listened.notify_one();
        Listener { first, changes }
    }

    /// Reads while anyone listens, until `stop`.
    pub async fn follow(self, registry: Registry, clock: Arc<dyn Clock>, stop: CancellationToken) {
        let mut failing = false;
        loop {
            // Asleep while nobody listens (and forgetting what was sent: whoever comes next
            // is sent every unit).
            loop {
                {
                    let mut st = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
                    if st.tx.receiver_count() > 0 {
                        break;
                    }
                    st.units = None;
                }
                tokio::select! {
                    _ = self.inner.listened.notified() => {}
                    _ = stop.cancelled() => return,
                }
            }
            let read_at = tokio::time::Instant::now();
            let now = clock.now_ms();
            match registry.units(false).await {
                Ok(rows) => {
                    if failing {
                        tracing::info!("the units' live feed reads the registry again");
                        failing = false;
                    }
                    self.send(rows, now);
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "the units' live feed cannot read the registry; trying again");
                        failing = true;
                    }
                }
            }
            tokio::select! {
                _ = self.inner.kick.notified() => {}
                _ = tokio::time::sleep(MAX_GAP) => {}
                _ = stop.cancelled() => return,
            }
            tokio::select! {
                _ = tokio::time::sleep_until(read_at + MIN_GAP) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Sends what changed between the last units sent and `rows` (read at `now`).
    fn send(&self, rows: Vec<UnitRow>, now: i64) {
        let mut st = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        let Sent { units: last, tx } = &mut *st;
        let mut next = HashMap::with_capacity(rows.len());
        let mut changed = Vec::new();
        for mut u in rows {
            u.mark_stale(now, self.inner.stale_after_ms);
            if last.as_ref().and_then(|l| l.get(&u.id)) != Some(&u) {
                changed.push(u.clone());
            }
            next.insert(u.id.clone(), u);
        }
        let change = match last {
            None => UnitsChange { full: true, units: changed, gone: Vec::new(), at_ms: now },
            Some(l) => {
                let mut gone: Vec<String> = l.keys().filter(|id| !next.contains_key(*id)).cloned().collect();
                gone.sort();
                if changed.is_empty() && gone.is_empty() {
                    *last = Some(next);
                    return;
                }
                UnitsChange { full: false, units: changed, gone, at_ms: now }
            }
        };
        *last = Some(next);
        let _ = tx.send(Arc::new(change));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Fix, UnitKind, UnitStatus};

    fn unit(id: &str, at_ms: i64) -> UnitRow {
        UnitRow {
            id: id.into(),
            name: id.into(),
            kind: UnitKind::Car,
            station: "s".into(),
            grid_cell: None,
            status: UnitStatus::Available,
            status_since_ms: 0,
            alert_id: None,
            created_at_ms: 0,
            retired_at_ms: None,
            position: Some(Fix { at_ms, lon: 113.6, lat: 34.7, speed_mps: None, heading_deg: None, accuracy_m: None }),
            stale: false,
        }
    }

    #[test]
    fn a_listener_gets_every_unit_then_only_what_changed() {
        let feed = UnitFeed::new(120_000);
        let mut l = feed.listen(0);
        assert!(l.first.is_none(), "nothing read yet");
        feed.send(vec![unit("a", 1_000), unit("b", 1_000)], 2_000);
        let c = l.changes.try_recv().unwrap();
        assert!(c.full);
        assert_eq!(c.units.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        // Nothing changed: nothing sent.
        feed.send(vec![unit("a", 1_000), unit("b", 1_000)], 3_000);
        assert!(l.changes.try_recv().is_err());
        // b moved, a retired.
        feed.send(vec![unit("b", 5_000)], 6_000);
        let c = l.changes.try_recv().unwrap();
        assert!(!c.full);
        assert_eq!(c.units.len(), 1);
        assert_eq!(c.units[0].position.unwrap().at_ms, 5_000);
        assert_eq!(c.gone, ["a"]);
        // b's position goes stale: that is a change too.
        feed.send(vec![unit("b", 5_000)], 5_000 + 120_001);
        let c = l.changes.try_recv().unwrap();
        assert!(c.units[0].stale);
        // A listener that comes now starts from every unit as last sent.
        let l2 = feed.listen(200_000);
        let first = l2.first.unwrap();
        assert!(first.full && first.units.len() == 1 && first.units[0].stale);
    }
}
