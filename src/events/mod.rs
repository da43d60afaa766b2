//! The event spine: one contract for every event (`contract`: an enum with typed payloads,
//! encoded and decoded in one place) and one durable, gap-free log behind a small trait (`log`:
//! append with an idempotency key, read a lane after a position, acknowledge per consumer),
//! kept in the registry by [`SqlLog`]. Producers (the health keeper, quality sampling,
//! detection, passages, rings, alarms) append; consumers (the alert service, the ring watcher)
//! read and acknowledge. See docs/EVENTS.md.

pub mod contract;
pub mod log;

pub use contract::*;
pub use log::{EventLog, LogError, NewEvent, Position, Read, SqlLog, Stored, Undecodable, work_order_event};
