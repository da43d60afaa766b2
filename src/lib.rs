//! tianwang: a city's surveillance camera network — registry, ingest, detection, alerts, planning.

pub mod alerts;
pub mod api;
pub mod app;
pub mod city;
pub mod clock;
pub mod config;
pub mod detect;
pub mod events;
pub mod gb28181;
pub mod geo;
pub mod ingest;
pub mod logging;
pub mod maintenance;
pub mod onvif;
pub mod plate;
pub mod registry;
pub mod retention;
pub mod server;
pub mod sim;
pub mod web;
