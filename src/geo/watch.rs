//! The ring watcher: the one place checkpoint rings are checked. A camera's status decides
//! whether the rings it belongs to are open, so the watcher follows `camera_status` events in
//! the event log (its own acknowledged position, `rings`) and checks once per batch of them; a
//! change of the geography itself (a reload, an import) pokes it. A check records `ring_opened`
//! / `ring_closed` events with the ring's new state (`GeoService::check_rings`). A failed check
//! acknowledges nothing and is tried again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::service::GeoService;
use crate::clock::Clock;
use crate::events::{Event, EventLog, Lane};

/// The watcher's consumer name in the log.
pub const CONSUMER: &str = "rings";

/// A handle to poke the watcher.
#[derive(Clone)]
pub struct RingWatcher {
    poke: Arc<Notify>,
    checks: tokio::sync::watch::Receiver<u64>,
}

impl RingWatcher {
    /// Checks the rings once now, then follows camera status changes until `cancel` fires.
    pub fn spawn(
        geo: GeoService,
        log: Arc<dyn EventLog>,
        clock: Arc<dyn Clock>,
        active: crate::events::Active,
        cancel: CancellationToken,
    ) -> (RingWatcher, tokio::task::JoinHandle<()>) {
        let poke = Arc::new(Notify::new());
        let (checked, checks) = tokio::sync::watch::channel(0);
        let w = Watch { geo, log, clock, cancel, active, poke: poke.clone(), checked };
        (RingWatcher { poke, checks }, tokio::spawn(w.run()))
    }

    /// Counts the checks done so far (changes after each).
    pub fn checks(&self) -> tokio::sync::watch::Receiver<u64> {
        self.checks.clone()
    }

    /// The geography or the set of cameras changed: check the rings now.
    pub fn poke(&self) {
        self.poke.notify_one();
    }
}

struct Watch {
    geo: GeoService,
    log: Arc<dyn EventLog>,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
    /// Checks run only on the node that writes alerts (one node appends the rings' events).
    active: crate::events::Active,
    poke: Arc<Notify>,
    checked: tokio::sync::watch::Sender<u64>,
}

impl Watch {
    async fn run(self) {
        let mut active = self.active.clone();
        loop {
            if !crate::events::until_active(&mut active, &self.cancel).await {
                return;
            }
            if !self.follow(&mut active).await {
                return;
            }
            // Another node writes alerts now: it checks the rings until this one takes over.
        }
    }

    /// Follows the log while this node is active; false when stopped.
    async fn follow(&self, active: &mut crate::events::Active) -> bool {
        let mut appended = self.log.appended();
        // Where to follow from: the acknowledged position, or (the first time) the live edge,
        // since the first check covers what came before.
        let mut position = loop {
            let p = match self.log.acked(CONSUMER).await {
                Ok(Some(p)) => Ok(p),
                Ok(None) => self.log.head().await,
                Err(e) => Err(e),
            };
            match p {
                Ok(p) => break p,
                Err(e) => {
                    tracing::error!(error = %e, "ring watcher: cannot read its position");
                    if self.pause().await {
                        return false;
                    }
                }
            }
        };
        let mut due = true;
        loop {
            if !*active.borrow() {
                return true;
            }
            let batch = match self.log.read(CONSUMER, Lane::Normal, position, 1000).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "ring watcher: cannot read the event log");
                    if self.pause().await {
                        return false;
                    }
                    continue;
                }
            };
            let last = batch.iter().map(|r| r.as_ref().map_or_else(|u| u.position, |s| s.position)).max();
            due |= batch.iter().any(|r| matches!(r, Ok(s) if matches!(s.event, Event::CameraStatus(_))));
            if due {
                match self.geo.check_rings(self.clock.now_ms()).await {
                    Ok(changed) => {
                        for r in changed {
                            tracing::warn!(ring = %r.id, open = r.open, down = ?r.down, leaks = r.leaks.len(), "checkpoint ring {}", if r.open { "opened" } else { "closed" });
                        }
                        due = false;
                        self.checked.send_modify(|n| *n += 1);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "ring watcher: cannot check the checkpoint rings; retrying");
                        if self.pause().await {
                            return false;
                        }
                        continue;
                    }
                }
            }
            if let Some(last) = last {
                position = last;
                if let Err(e) = self.log.ack(CONSUMER, position).await {
                    tracing::error!(error = %e, "ring watcher: cannot record its position");
                }
                continue;
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return false,
                _ = crate::events::until_inactive(active) => return true,
                _ = self.poke.notified() => due = true,
                _ = appended.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Waits a second; true when stopped meanwhile.
    async fn pause(&self) -> bool {
        tokio::select! {
            _ = self.cancel.cancelled() => true,
            _ = tokio::time::sleep(Duration::from_secs(1)) => false,
        }
    }
}
