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
    /// Answer a Basic challenge (the keyframe client refuses one otherwise).
    pub allow_basic_auth: bool,
    pub transport: Transport,
    pub codec: Codec,
    pub profile: Profile,
    pub width: u32,
    pub height: u32,
    /// Output rate; `health` ignores it (see `sample_every`).
    pub fps: u32,
    /// `health`: one keyframe is decoded at most this often (liveness is every packet).
    pub sample_every: Duration,
    pub format: PixelFormat,
    /// No frame for this long → tear down and reconnect.
    pub watchdog: Duration,
    pub latency_ms: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl IngestSpec {
    /// A camera with the profile's defaults: checkpoint RGB 1280×720 at 8 fps, street grey
    /// 640×360 at 5 fps, health RGB 640×360 from one keyframe every 10 s; TCP, 10 s watchdog,
    /// 200 ms latency.
    pub fn with_defaults(id: &str, url: RtspUrl, profile: Profile) -> Self {
        let (width, height, fps, format) = match profile {
            Profile::Checkpoint => (1280, 720, 8, PixelFormat::Rgb24),
            Profile::Street => (640, 360, 5, PixelFormat::Gray8),
            Profile::Health => (640, 360, 0, PixelFormat::Rgb24),
        };
        Self {
            id: id.to_string(),
            url,
            username: None,
            password: None,
            allow_basic_auth: false,
            transport: Transport::Tcp,
            codec: Codec::Auto,
            profile,
            width,
            height,
            fps,
            sample_every: Duration::from_secs(10),
            format,
            watchdog: Duration::from_secs(10),
            latency_ms: 200,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }

    /// The camera's spec; `default_sample_s` is the health profile's sampling interval when the
    /// camera sets none (the quality sampling interval, `[maintenance] vqd_interval_s`).
    pub fn from_config(c: &CameraConfig, default_sample_s: f64) -> Self {
        let mut s = Self::with_defaults(c.id.as_str(), c.url.clone(), c.profile);
        s.sample_every = Duration::from_secs_f64(c.sample_every_s.unwrap_or(default_sample_s));
        (s.width, s.height) = c.ingest_size.unwrap_or((s.width, s.height));
        s.fps = c.ingest_fps.unwrap_or(s.fps);
        s.username = c.username.clone();
        s.password = c.password.clone();
        s.allow_basic_auth = c.allow_basic_auth;
        s.transport = c.transport;
        s.codec = c.codec;
        s.watchdog = Duration::from_secs_f64(c.watchdog_s);
        s.latency_ms = c.latency_ms;
        s
    }

    /// Frames per second the camera should deliver (keyframe rate unknown for `health`: 0).
    pub fn expected_fps(&self) -> f64 {
        match self.profile {
            Profile::Health => 0.0,
            _ => f64::from(self.fps),
        }
    }
}
