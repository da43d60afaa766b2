//! The demo city's cameras, served by the in-process RTSP server.

use crate::config::{CityConfig, Profile};

use super::{SimCamera, SimError, SimServer};

/// Starts the simulator on `port` and mounts every camera of `cfg` whose URL points at it.
/// Streams are sized for what each profile ingests, so that the demo runs on a laptop.
pub fn serve_city(cfg: &CityConfig, port: u16) -> Result<(SimServer, usize), SimError> {
    let server = SimServer::start_on(port)?;
    let prefix = format!("rtsp://127.0.0.1:{port}/");
    let mut n = 0;
    for c in &cfg.cameras {
        let Some(path) = c.url.as_str().strip_prefix(&prefix) else { continue };
        let (w, h, fps) = match c.profile {
            Profile::Checkpoint => (1280, 720, 8),
            Profile::Street => (640, 360, 10),
            Profile::Health => (640, 360, 5),
        };
        let mut cam = SimCamera::new(path, w, h, fps);
        cam.bitrate_kbps = if w > 640 { 1500 } else { 400 };
        server.add(cam);
        n += 1;
    }
    Ok((server, n))
}
