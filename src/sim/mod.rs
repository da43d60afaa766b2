//! What makes a camera without a camera: an in-process RTSP server with synthetic streams that
//! can be told to fail, a server that answers with garbage, and a simulated GB/T 28181 device
//! (`gb28181`: an NVR whose channels stream PS over RTP, muxed by `ps`). Tests, benches and the
//! demo use it.

pub mod city;
pub mod demo;
pub mod gb28181;
pub mod plates;
pub mod ps;
pub mod quality;
mod rtsp;
pub mod scene;

pub use rtsp::{SimCamera, SimCodec, SimError, SimServer, Traffic, garbage_server};
