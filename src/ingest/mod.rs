//! Ingest: one supervised source per enabled camera (RTSP, or a GB/T 28181 channel's RTP/PS
//! through `gb`), delivering decoded frames.
//!
//! `supervisor` runs one loop for every source: open → pull events → (watchdog | end | error) →
//! back-off → reconnect; on a thread per camera for GStreamer pipelines, and stepped on a few
//! shared threads for `health` cameras read by the keyframe client (`supervisor::pool`). `source` is the seam: a `FrameSource` trait
//! that `pipeline` (GStreamer: rtspsrc → … → appsink, every profile) and `keyframe` (our RTSP
//! client, `rtsp` + `rtp`, for `health` cameras) implement, and `choose`, which says which one
//! reads a camera. `health` holds what the API and `/metrics` show; `queue` is the bounded
//! drop-oldest frame channel.

pub mod gb;
mod health;
mod keyframe;
pub mod nal;
mod pipeline;
mod queue;
pub mod resize;
pub mod rtp;
pub mod rtsp;
mod source;
mod spec;
mod supervisor;

pub use health::{CameraHealth, HealthSnapshot, IngestState, Transition};
pub use queue::FrameQueue;
pub use spec::{IngestSpec, PixelFormat};
pub use supervisor::{ApplyReport, Ingest, PoolThreads, StatusEvent};

use std::sync::Arc;

/// One decoded frame, tightly packed (no row padding).
#[derive(Clone)]
pub struct Frame {
    pub camera: Arc<str>,
    /// Wall-clock time the frame left the pipeline, Unix milliseconds.
    pub captured_ms: i64,
    /// Stream presentation time, when the stream carries one.
    pub pts_ns: Option<u64>,
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({} {}x{} {:?} at {})", self.camera, self.width, self.height, self.format, self.captured_ms)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("GStreamer is not usable: {0}; install the packages scripts/setup.sh lists")]
    Init(String),
    #[error("camera {camera}: cannot build the pipeline: {message}")]
    Build { camera: String, message: String },
}

/// Initialises GStreamer once; a clear error when its libraries or plugins are missing.
pub fn init_gstreamer() -> Result<(), IngestError> {
    gstreamer::init().map_err(|e| IngestError::Init(e.to_string()))?;
    for el in [
        "rtspsrc",
        "rtph264depay",
        "h264parse",
        "avdec_h264",
        "videoconvert",
        "videoscale",
        "videorate",
        "appsink",
        "appsrc",
        "mpegpsdemux",
    ] {
        if gstreamer::ElementFactory::find(el).is_none() {
            return Err(IngestError::Init(format!("element {el} is missing")));
        }
    }
    Ok(())
}

/// Open files a `health` camera holds: its socket, and its session runtime's epoll and wake-up
/// descriptors.
pub const FILES_PER_HEALTH_CAMERA: u64 = 3;

/// Raises this process's soft limit on open files to its hard limit (a worker with a thousand
/// health cameras holds three thousand descriptors; the usual soft limit is 1,024). Returns the
/// limit before and after; unchanged when it cannot be read or raised.
pub fn raise_open_files_limit() -> (Option<u64>, Option<u64>) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    if before.current.is_some() && before.current != before.maximum {
        let _ = setrlimit(Resource::Nofile, rustix::process::Rlimit { current: before.maximum, ..before });
    }
    (before.current, getrlimit(Resource::Nofile).current)
}
