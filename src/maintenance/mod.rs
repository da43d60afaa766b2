//! Maintenance: video quality diagnosis on sampled frames (`vqd`, judged per camera) and the
//! sampling service that turns faults into `quality_fault` / `quality_cleared` events.
//! Work orders, availability and replacement planning build on it (the Maintenance issue).

pub mod service;
pub mod vqd;
