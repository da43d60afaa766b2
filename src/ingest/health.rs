//! Per-camera ingest health: state, counters, rates, recent failures, the last frame.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use utoipa::ToSchema;

use super::Frame;
use crate::clock::{Millis, rfc3339};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IngestState {
    Connecting,
    Streaming,
    Stalled,
    Backoff,
    Disabled,
}

impl IngestState {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestState::Connecting => "connecting",
            IngestState::Streaming => "streaming",
            IngestState::Stalled => "stalled",
            IngestState::Backoff => "backoff",
            IngestState::Disabled => "disabled",
        }
    }
    /// Worst first: a camera that cannot stream sorts before one that is connecting.
    fn badness(self) -> u8 {
        match self {
            IngestState::Backoff => 0,
            IngestState::Stalled => 1,
            IngestState::Connecting => 2,
            IngestState::Streaming => 3,
            IngestState::Disabled => 4,
        }
    }
}

const HOUR_MS: Millis = 3_600_000;
const RATE_WINDOW_MS: Millis = 5_000;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Transition {
    pub at: String,
    pub from: IngestState,
    pub to: IngestState,
    pub reason: String,
}

struct Inner {
    state: IngestState,
    since_ms: Millis,
    last_error: Option<String>,
    codec: Option<String>,
    resolution_seen: Option<(u32, u32)>,
    reconnects: VecDeque<Millis>,
    stalls: VecDeque<Millis>,
    transitions: VecDeque<Transition>,
    /// (time, frames delivered, bytes received) samples for rates.
    samples: VecDeque<(Millis, u64, u64)>,
    next_retry_ms: Option<Millis>,
    failures: u32,
}

/// Shared by the camera's supervisor thread, its pipeline callbacks and the API.
pub struct CameraHealth {
    pub id: Arc<str>,
    pub profile: &'static str,
    pub expected_fps: f64,
    pub frames_decoded: AtomicU64,
    pub frames_delivered: AtomicU64,
    pub frames_dropped: AtomicU64,
    /// Pictures not decoded because nothing refers to them and the output rate did not need them.
    pub frames_skipped: AtomicU64,
    pub bytes_received: AtomicU64,
    /// Unix ms of the last delivered frame (0: none since the process started).
    pub last_frame_ms: AtomicU64,
    /// Unix ms of the last RTP packet received (liveness for the `health` profile).
    pub last_packet_ms: AtomicU64,
    last_frame: Mutex<Option<Arc<Frame>>>,
    inner: Mutex<Inner>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthSnapshot {
    pub camera: String,
    pub state: IngestState,
    pub since: String,
    pub profile: String,
    pub expected_fps: f64,
    pub measured_fps: f64,
    pub frames_decoded: u64,
    pub frames_delivered: u64,
    pub frames_dropped: u64,
    /// Non-reference pictures not decoded (not needed for the output rate).
    pub frames_skipped: u64,
    pub bytes_per_second: f64,
    pub reconnects_last_hour: usize,
    pub stalls_last_hour: usize,
    pub last_frame_at: Option<String>,
    /// Credentials are never part of it.
    pub last_error: Option<String>,
    pub codec: Option<String>,
    /// `WIDTHxHEIGHT` of the stream as received.
    pub resolution_seen: Option<String>,
    pub next_retry_at: Option<String>,
    pub consecutive_failures: u32,
    /// The most recent state changes, newest last.
    pub recent_transitions: Vec<Transition>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl CameraHealth {
    pub fn new(id: &str, profile: &'static str, expected_fps: f64, now: Millis) -> Self {
        Self {
            id: id.into(),
            profile,
            expected_fps,
            frames_decoded: AtomicU64::new(0),
            frames_delivered: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            frames_skipped: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            last_frame_ms: AtomicU64::new(0),
            last_packet_ms: AtomicU64::new(0),
            last_frame: Mutex::new(None),
            inner: Mutex::new(Inner {
                state: IngestState::Connecting,
                since_ms: now,
                last_error: None,
                codec: None,
                resolution_seen: None,
                reconnects: VecDeque::new(),
                stalls: VecDeque::new(),
                transitions: VecDeque::new(),
                samples: VecDeque::new(),
                next_retry_ms: None,
                failures: 0,
            }),
        }
    }

    pub fn state(&self) -> IngestState {
        lock(&self.inner).state
    }

    /// Moves to `to`; returns the previous state when it changed.
    pub fn set_state(&self, to: IngestState, reason: &str, now: Millis) -> Option<IngestState> {
        let mut i = lock(&self.inner);
        let from = i.state;
        if from == to {
            return None;
        }
        i.state = to;
        i.since_ms = now;
        if to == IngestState::Stalled {
            i.stalls.push_back(now);
        }
        if to == IngestState::Streaming {
            i.failures = 0;
            i.next_retry_ms = None;
        }
        i.transitions.push_back(Transition { at: rfc3339(now), from, to, reason: reason.to_string() });
        while i.transitions.len() > 20 {
            i.transitions.pop_front();
        }
        Some(from)
    }

    pub fn record_error(&self, error: &str) {
        lock(&self.inner).last_error = Some(error.to_string());
    }

    pub fn record_reconnect(&self, now: Millis) {
        lock(&self.inner).reconnects.push_back(now);
    }

    /// Counts a failure and sets when the next try is; returns the consecutive failure count.
    pub fn record_failure(&self, next_retry: Millis) -> u32 {
        let mut i = lock(&self.inner);
        i.failures += 1;
        i.next_retry_ms = Some(next_retry);
        i.failures
    }

    pub fn record_stream(&self, codec: Option<String>, resolution: Option<(u32, u32)>) {
        let mut i = lock(&self.inner);
        if codec.is_some() {
            i.codec = codec;
        }
        if resolution.is_some() {
            i.resolution_seen = resolution;
        }
    }

    pub fn set_last_frame(&self, f: Arc<Frame>) {
        self.last_frame_ms.store(f.captured_ms.max(0) as u64, Ordering::Relaxed);
        *lock(&self.last_frame) = Some(f);
    }

    pub fn last_frame(&self) -> Option<Arc<Frame>> {
        lock(&self.last_frame).clone()
    }

    /// Takes a rate sample; call about once a second.
    pub fn sample(&self, now: Millis) {
        let mut i = lock(&self.inner);
        let frames = self.frames_delivered.load(Ordering::Relaxed);
        let bytes = self.bytes_received.load(Ordering::Relaxed);
        i.samples.push_back((now, frames, bytes));
        while i.samples.front().is_some_and(|s| now - s.0 > RATE_WINDOW_MS) {
            i.samples.pop_front();
        }
        while i.reconnects.front().is_some_and(|t| now - t > HOUR_MS) {
            i.reconnects.pop_front();
        }
        while i.stalls.front().is_some_and(|t| now - t > HOUR_MS) {
            i.stalls.pop_front();
        }
    }

    pub fn snapshot(&self, now: Millis) -> HealthSnapshot {
        let i = lock(&self.inner);
        let (fps, bps) = match (i.samples.front(), i.samples.back()) {
            (Some(a), Some(b)) if b.0 > a.0 && i.state == IngestState::Streaming => {
                let dt = (b.0 - a.0) as f64 / 1000.0;
                ((b.1 - a.1) as f64 / dt, (b.2 - a.2) as f64 / dt)
            }
            _ => (0.0, 0.0),
        };
        let last = self.last_frame_ms.load(Ordering::Relaxed);
        HealthSnapshot {
            camera: self.id.to_string(),
            state: i.state,
            since: rfc3339(i.since_ms),
            profile: self.profile.to_string(),
            expected_fps: self.expected_fps,
            measured_fps: (fps * 100.0).round() / 100.0,
            frames_decoded: self.frames_decoded.load(Ordering::Relaxed),
            frames_delivered: self.frames_delivered.load(Ordering::Relaxed),
            frames_dropped: self.frames_dropped.load(Ordering::Relaxed),
            frames_skipped: self.frames_skipped.load(Ordering::Relaxed),
            bytes_per_second: bps.round(),
            reconnects_last_hour: i.reconnects.iter().filter(|t| now - **t <= HOUR_MS).count(),
            stalls_last_hour: i.stalls.iter().filter(|t| now - **t <= HOUR_MS).count(),
            last_frame_at: (last > 0).then(|| rfc3339(last as Millis)),
            last_error: i.last_error.clone(),
            codec: i.codec.clone(),
            resolution_seen: i.resolution_seen.map(|(w, h)| format!("{w}x{h}")),
            next_retry_at: i.next_retry_ms.map(rfc3339),
            consecutive_failures: i.failures,
            recent_transitions: i.transitions.iter().cloned().collect(),
        }
    }

    /// Sort key: worst state first, then most failures, then id.
    pub fn badness(&self) -> (u8, std::cmp::Reverse<u32>) {
        let i = lock(&self.inner);
        (i.state.badness(), std::cmp::Reverse(i.failures))
    }
}
