//! Maintenance: video quality diagnosis on sampled frames (`vqd`, judged per camera) and the
//! sampling service (`service`); the health state every camera shows (`health`); work orders
//! (`orders`); availability from the status history (`availability`); replacement planning
//! for below-HD cameras (`replace`); the crews' report (`report`).

pub mod availability;
pub mod config;
pub mod health;
pub mod orders;
pub mod replace;
pub mod report;
pub mod service;
pub mod vqd;
