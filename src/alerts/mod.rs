//! Alerts for the monitoring room: the rule engine (a pure state machine), what each event means
//! to it (`signals`), the service that is the only writer of alerts (`service`), alarm inputs
//! (`alarm`), and delivery of the change feed to webhook receivers and MQTT. The API (listing,
//! lifecycle, SSE) is in `api::alerts`.

pub mod alarm;
pub mod config;
pub mod desks;
pub mod engine;
pub mod mqtt;
pub mod service;
pub mod signals;
pub mod streams;
pub mod webhooks;

pub use engine::{Action, Engine, EngineConfig, Occurrence, Severity, Signal};
