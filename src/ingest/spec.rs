//! What a camera's pipeline must deliver, derived from its configuration and profile.

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use crate::config::{CameraConfig, Codec, Profile, RtspUrl, SecretRef, Transport};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    /// One byte per pixel: the Y plane of the decoded picture.
    Gray8,
    /// Three bytes per pixel, R G B.
    Rgb24,
}

impl PixelFormat {
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Gray8 => 1,
            PixelFormat::Rgb24 => 3,
        }
    }
}

/// Everything the supervisor needs to run one camera. Two specs that compare equal need no restart.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestSpec {
    pub id: String,
    pub url: RtspUrl,
    pub username: Option<String>,
    pub password: Option<SecretRef>,
    pub transport: Transport,
    pub codec: Codec,
    pub profile: Profile,
    pub width: u32,
    pub height: u32,
    /// Output rate; `health` ignores it (one frame per keyframe).
    pub fps: u32,
    pub format: PixelFormat,
    /// No frame for this long → tear down and reconnect.
    pub watchdog: Duration,
    pub latency_ms: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl IngestSpec {
    pub fn from_config(c: &CameraConfig) -> Self {
        let (width, height, fps, format) = match c.profile {
            Profile::Checkpoint => (1280, 720, 8, PixelFormat::Rgb24),
            Profile::Street => (640, 360, 5, PixelFormat::Gray8),
            Profile::Health => (640, 360, 0, PixelFormat::Rgb24),
        };
        let (width, height) = c.ingest_size.unwrap_or((width, height));
        Self {
            id: c.id.to_string(),
            url: c.url.clone(),
            username: c.username.clone(),
            password: c.password.clone(),
            transport: c.transport,
            codec: c.codec,
            profile: c.profile,
            width,
            height,
            fps: c.ingest_fps.unwrap_or(fps),
            format,
            watchdog: Duration::from_secs_f64(c.watchdog_s),
            latency_ms: c.latency_ms,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }

    /// Frames per second the camera should deliver (keyframe rate unknown for `health`: 0).
    pub fn expected_fps(&self) -> f64 {
        match self.profile {
            Profile::Health => 0.0,
            _ => f64::from(self.fps),
        }
    }
}
