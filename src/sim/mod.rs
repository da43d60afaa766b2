//! What makes a camera without a camera: an in-process RTSP server with synthetic streams that
//! can be told to fail, and a server that answers with garbage. Tests, benches and the demo use it.

pub mod city;
pub mod demo;
pub mod plates;
pub mod quality;
mod rtsp;
pub mod scene;

pub use rtsp::{SimCamera, SimCodec, SimError, SimServer, Traffic, garbage_server};
