//! Alerts for the monitoring room: the rule engine (a pure state machine), and — as they land —
//! the store, delivery (SSE, webhooks, MQTT) and access control.

pub mod engine;
pub mod mqtt;
pub mod service;
pub mod webhooks;

pub use engine::{Action, Engine, EngineConfig, Occurrence, Severity, Signal};
