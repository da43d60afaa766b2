//! The event spine: one contract for every event (`contract`: an enum with typed payloads,
//! encoded and decoded in one place) and one durable, gap-free log behind a small trait (`log`:
//! append with an idempotency key, read a lane after a position, acknowledge per consumer),
//! kept in the registry by [`SqlLog`]. Producers (the health keeper, quality sampling,
//! detection, passages, rings, alarms) append; consumers (the alert service, the ring watcher)
//! read and acknowledge. [`jetstream::JetStreamLog`] carries the same log over NATS JetStream for
//! a cluster (the registry stays its outbox). See docs/EVENTS.md.

pub mod contract;
pub mod jetstream;
pub mod log;

/// Whether this node runs the consumers that one node of a city runs at a time (the alert
/// service's writer role decides: webhooks, MQTT and the ring watcher follow it).
pub type Active = tokio::sync::watch::Receiver<bool>;

/// Waits until this node is active (at once when it is); false when `cancel` fired first.
pub async fn until_active(active: &mut Active, cancel: &tokio_util::sync::CancellationToken) -> bool {
    loop {
        if *active.borrow_and_update() {
            return true;
        }
        tokio::select! {
            _ = cancel.cancelled() => return false,
            changed = active.changed() => if changed.is_err() {
                // The sender is gone (the alert service stopped): nothing will change any more.
                cancel.cancelled().await;
                return false;
            },
        }
    }
}

/// Completes when this node stops being active (never while it is).
pub async fn until_inactive(active: &mut Active) {
    loop {
        if !*active.borrow_and_update() {
            return;
        }
        if active.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

pub use contract::*;
pub use log::{EventLog, LogError, NewEvent, Position, Read, SqlLog, Stored, Undecodable, work_order_event};
