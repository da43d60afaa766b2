//! The durable event log behind one small trait: append (with an idempotency key), read a lane
//! after a position, and each consumer's acknowledged position. [`SqlLog`] keeps it in the
//! registry (SQLite or PostgreSQL, gap-free: see `registry::events`); the scale-out issue
//! implements the same trait on NATS JetStream.
//!
//! Delivery is at least once: a consumer acknowledges a position only after what it did with the
//! events up to it is stored (the alert service acknowledges in the same transaction as the
//! alerts it writes, which makes it exactly once there).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::contract::{DecodeError, Event, Lane, Millis};
use crate::registry::{RawEvent, Registry, RegistryError};

/// A place in the log: events are read after one.
pub type Position = i64;

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub at_ms: Millis,
    /// Appending a key the log holds already appends nothing (a retried append is harmless).
    pub key: Option<String>,
    pub event: Event,
}

impl NewEvent {
    pub fn new(at_ms: Millis, key: Option<String>, event: Event) -> NewEvent {
        NewEvent { at_ms, key, event }
    }

    /// As the registry stores it.
    pub fn raw(&self) -> RawEvent {
        let e = self.event.encode();
        RawEvent {
            at_ms: self.at_ms,
            kind: e.kind.as_str().to_string(),
            lane: e.lane.code(),
            key: self.key.clone(),
            camera_id: e.camera_id,
            ring_id: e.ring_id,
            payload: e.payload,
        }
    }
}

/// A work-order change as an event (the encoder the app installs with
/// `Registry::on_order_change`: the registry writes the order's log, the contract says what its
/// event is).
pub fn work_order_event(o: &crate::registry::OrderLogged) -> Option<RawEvent> {
    use super::contract::{WorkOrderChange, WorkOrderChangeKind as K};
    let change = match o.kind {
        "opened" => K::Opened,
        "note" => K::Noted,
        "assigned" => K::Assigned,
        "closed" => K::Closed,
        "reopened" => K::Reopened,
        "verified" => K::Verified,
        other => {
            tracing::error!(order = o.order_id, kind = other, "a work-order change of no known kind: no event");
            return None;
        }
    };
    let e = WorkOrderChange {
        order_id: o.order_id,
        camera_id: o.camera_id.to_string(),
        cause: o.cause.to_string(),
        change,
        by: Some(o.by.to_string()),
    };
    Some(NewEvent::new(o.at_ms, None, Event::WorkOrder(e)).raw())
}

/// An event read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub position: Position,
    pub at_ms: Millis,
    pub event: Event,
}

/// A stored event that does not decode (unknown kind, malformed payload): the consumer counts
/// and reports it and goes on; the row stays in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Undecodable {
    pub position: Position,
    pub at_ms: Millis,
    pub kind: String,
    pub error: DecodeError,
}

/// One entry of a read.
pub type Read = Result<Stored, Undecodable>;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("event log: {0}")]
    Store(#[from] RegistryError),
}

impl LogError {
    /// The camera whose write was refused because this worker does not hold its lease (a write
    /// that no retry can make succeed).
    pub fn fenced(&self) -> Option<&str> {
        match self {
            LogError::Store(RegistryError::Fenced { camera, .. }) => Some(camera),
            _ => None,
        }
    }
}

/// See the module documentation.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends in order, atomically; returns each event's position (for a key already in the
    /// log, the position it has there).
    async fn append(&self, events: &[NewEvent]) -> Result<Vec<Position>, LogError>;
    /// Up to `limit` events of `lane` after `after`, oldest first. A reader never passes a
    /// position that could still appear.
    /// `consumer` names the reader (one that reads through a broker keeps its place there).
    async fn read(&self, consumer: &str, lane: Lane, after: Position, limit: u32) -> Result<Vec<Read>, LogError>;
    /// How many events of `lane` lie after `after` (a consumer's backlog).
    async fn backlog(&self, lane: Lane, after: Position) -> Result<i64, LogError>;
    /// The consumer's acknowledged position (`None`: it never acknowledged).
    async fn acked(&self, consumer: &str) -> Result<Option<Position>, LogError>;
    /// Acknowledges everything up to `position` for the consumer (never moves it back).
    async fn ack(&self, consumer: &str, position: Position) -> Result<(), LogError>;
    /// The newest position (0 when empty): where a consumer that starts at the live edge begins.
    async fn head(&self) -> Result<Position, LogError>;
    /// Changes when this process appended something: a hint to read now (readers also poll, for
    /// what other processes append).
    fn appended(&self) -> tokio::sync::watch::Receiver<Position>;
    /// Stored events that did not decode, counted by every consumer that met one.
    fn undecodable(&self) -> u64;
    /// Counts an undecodable event a consumer met (and reports it in the log).
    fn count_undecodable(&self, consumer: &str, u: &Undecodable);
    /// What the log on JetStream did (`None`: the log is the registry alone).
    fn jetstream(&self) -> Option<super::jetstream::JetStreamStats> {
        None
    }
}

/// The log in the registry.
#[derive(Clone)]
pub struct SqlLog {
    registry: Registry,
    undecodable: Arc<AtomicU64>,
}

impl SqlLog {
    pub fn new(registry: Registry) -> SqlLog {
        SqlLog { registry, undecodable: Arc::new(AtomicU64::new(0)) }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

#[async_trait]
impl EventLog for SqlLog {
    async fn append(&self, events: &[NewEvent]) -> Result<Vec<Position>, LogError> {
        let raw: Vec<RawEvent> = events.iter().map(NewEvent::raw).collect();
        Ok(self.registry.append_events(&raw).await?)
    }

    async fn read(&self, _consumer: &str, lane: Lane, after: Position, limit: u32) -> Result<Vec<Read>, LogError> {
        let rows = self.registry.read_lane(lane.code(), after, limit).await?;
        Ok(rows
            .into_iter()
            .map(|r| match Event::decode(&r.kind, &r.payload) {
                Ok(event) => Ok(Stored { position: r.position, at_ms: r.at_ms, event }),
                Err(error) => Err(Undecodable { position: r.position, at_ms: r.at_ms, kind: r.kind, error }),
            })
            .collect())
    }

    async fn backlog(&self, lane: Lane, after: Position) -> Result<i64, LogError> {
        Ok(self.registry.lane_backlog(lane.code(), after).await?)
    }

    async fn acked(&self, consumer: &str) -> Result<Option<Position>, LogError> {
        Ok(self.registry.acked(consumer).await?)
    }

    async fn ack(&self, consumer: &str, position: Position) -> Result<(), LogError> {
        Ok(self.registry.ack(consumer, position).await?)
    }

    async fn head(&self) -> Result<Position, LogError> {
        Ok(self.registry.last_event_position().await?)
    }

    fn appended(&self) -> tokio::sync::watch::Receiver<Position> {
        self.registry.appended()
    }

    fn undecodable(&self) -> u64 {
        self.undecodable.load(Ordering::Relaxed)
    }

    fn count_undecodable(&self, consumer: &str, u: &Undecodable) {
        self.undecodable.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            consumer,
            position = u.position,
            kind = %u.kind.chars().take(64).collect::<String>(),
            error = %u.error,
            "a stored event cannot be read; it stays in the log and is skipped"
        );
    }
}
