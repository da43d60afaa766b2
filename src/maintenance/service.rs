//! Quality sampling: every `vqd_interval_s` the newest frame of every streaming camera (the one
//! snapshots serve, whatever its profile) is judged by the camera's `CameraVqd`; a fault raised or
//! cleared is appended to the event log (`quality_fault` / `quality_cleared`, with what was
//! measured) for the alert service, and told to the health keeper. Runs on its own thread; the
//! writes go through tokio, and an append that fails is tried again until it is stored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::config::{MaintenanceConfig, QualityOverride};
use super::health::HealthKeeper;
use super::vqd::{CameraVqd, Check, CheckState, Measures, VqdParams};
use crate::clock::Clock;
use crate::events::{Event, EventLog, NewEvent, QualityChange};
use crate::ingest::Ingest;

/// One camera's quality as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CameraQuality {
    pub camera_id: String,
    /// Faults raised now.
    pub faults: Vec<Check>,
    pub checks: std::collections::BTreeMap<Check, CheckState>,
    pub last: Option<Measures>,
    pub last_sample_ms: Option<i64>,
    pub samples: u64,
}

struct Cam {
    vqd: CameraVqd,
    last_frame_ms: i64,
    last_sample_ms: Option<i64>,
    samples: u64,
    /// Rounds in a row with the frame rate below (positive) or back at (negative) the mark.
    fps_streak: i32,
    low_fps: bool,
    /// The newest frame seen on the last tick between samples, and the least-changed pair of
    /// consecutive ticks' frames since the last sample (frozen is judged on it).
    peek: Option<Arc<crate::ingest::Frame>>,
    stillest: Option<(f32, f32)>,
    next_sample: std::time::Instant,
}

/// What the sampling thread reports to the async side.
enum Report {
    Fault { camera: String, at: i64, raised: bool, check: Check, measures: Measures },
    LowFps { camera: String, at: i64, low: Option<String> },
}

/// Thresholds for one camera: the defaults with its `[[quality_override]]` applied.
fn camera_params(base: VqdParams, o: Option<&QualityOverride>) -> (VqdParams, Vec<Check>) {
    let Some(o) = o else { return (base, Vec::new()) };
    let mut p = base;
    let set = |v: &mut f32, x: Option<f64>| {
        if let Some(x) = x {
            *v = x as f32;
        }
    };
    set(&mut p.dark_below, o.dark_below);
    set(&mut p.bright_above, o.bright_above);
    set(&mut p.contrast_below, o.contrast_below);
    set(&mut p.blur_ratio, o.blur_ratio);
    set(&mut p.cast_above, o.cast_above);
    set(&mut p.noise_above, o.noise_above);
    set(&mut p.occlusion_above, o.occlusion_above);
    set(&mut p.scene_corr_below, o.scene_corr_below);
    (p, o.disable.iter().filter_map(|d| Check::parse(d)).collect())
}

#[derive(Clone)]
pub struct QualityService {
    cams: Arc<Mutex<HashMap<String, Cam>>>,
    overrides: Arc<Mutex<HashMap<String, QualityOverride>>>,
    stop: Arc<AtomicBool>,
}

/// Between samples, how often the newest frames are looked at.
const TICK: Duration = Duration::from_millis(250);

/// Rounds in a row that decide a low frame rate (and its end).
const FPS_ROUNDS: i32 = 3;

impl QualityService {
    pub fn start(
        cfg: MaintenanceConfig,
        overrides: &[QualityOverride],
        ingest: Arc<Ingest>,
        log: Arc<dyn EventLog>,
        health: HealthKeeper,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let svc = Self {
            cams: Arc::new(Mutex::new(HashMap::new())),
            overrides: Arc::new(Mutex::new(overrides.iter().map(|o| (o.camera.clone(), o.clone())).collect())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let params = VqdParams { raise_after: cfg.raise_after, clear_after: cfg.clear_after, ..Default::default() };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Report>(256);
        tokio::spawn(async move {
            while let Some(r) = rx.recv().await {
                match r {
                    Report::Fault { camera, at, raised, check, measures } => {
                        let detail = serde_json::to_string(&measures).unwrap_or_default();
                        let q = QualityChange { camera_id: camera.clone(), check, measures: Some(measures) };
                        let event = if raised { Event::QualityFault(q) } else { Event::QualityCleared(q) };
                        let key = format!(
                            "quality:{camera}:{}:{}:{at}",
                            check.as_str(),
                            if raised { "raised" } else { "cleared" }
                        );
                        let ev = NewEvent::new(at, Some(key), event);
                        // Never dropped while this worker holds the camera: tried again until
                        // the log takes it (the key makes a retry harmless).
                        let mut wait = Duration::from_millis(100);
                        let mut fenced = false;
                        while let Err(e) = log.append(std::slice::from_ref(&ev)).await {
                            if e.fenced().is_some() {
                                tracing::warn!(camera = %camera, "quality event not stored: this worker no longer holds the camera");
                                fenced = true;
                                break;
                            }
                            tracing::error!(camera = %camera, error = %e, "cannot store a quality event; trying again");
                            tokio::time::sleep(wait).await;
                            wait = (wait * 2).min(Duration::from_secs(5));
                        }
                        if !fenced {
                            health.quality(&camera, check.as_str(), raised, &detail, at).await;
                        }
                    }
                    Report::LowFps { camera, at, low } => {
                        health.low_fps(&camera, low, at).await;
                    }
                }
            }
        });
        let (cams, stop, ovr) = (svc.cams.clone(), svc.stop.clone(), svc.overrides.clone());
        let interval = Duration::from_secs_f64(cfg.vqd_interval_s);
        let low_ratio = cfg.low_fps_ratio;
        let spawned = std::thread::Builder::new().name("vqd".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for id in ingest.ids() {
                    let mut reports = Vec::new();
                    let frame = ingest.last_frame(&id);
                    let mut guard = cams.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(cam) = guard.get_mut(&id)
                        && std::time::Instant::now() < cam.next_sample
                    {
                        // Between samples: how much the picture changes from tick to tick.
                        if let (Some(prev), Some(f)) = (&cam.peek, &frame)
                            && prev.captured_ms != f.captured_ms
                            && let Some(c) = super::vqd::frame_change(prev, f)
                            && cam.stillest.is_none_or(|s| c.0 < s.0)
                        {
                            cam.stillest = Some(c);
                        }
                        cam.peek = frame;
                        continue;
                    }
                    let snap = ingest.health(&id);
                    let cam = guard.entry(id.clone()).or_insert_with(|| {
                        let o = ovr.lock().unwrap_or_else(|e| e.into_inner());
                        let (p, disabled) = camera_params(params, o.get(&id));
                        let mut vqd = CameraVqd::new(p);
                        vqd.disabled = disabled;
                        Cam {
                            vqd,
                            last_frame_ms: i64::MIN,
                            last_sample_ms: None,
                            samples: 0,
                            fps_streak: 0,
                            low_fps: false,
                            peek: None,
                            stillest: None,
                            next_sample: std::time::Instant::now(),
                        }
                    });
                    // The frame rate, for streaming cameras that promise one (not keyframe-only).
                    if let Some(h) = &snap {
                        let streaming = h.state == crate::ingest::IngestState::Streaming;
                        if streaming && h.profile != "health" && h.expected_fps > 0.0 {
                            let low = h.measured_fps < low_ratio * h.expected_fps;
                            cam.fps_streak = match (low, cam.fps_streak) {
                                (true, n) if n >= 0 => n + 1,
                                (true, _) => 1,
                                (false, n) if n <= 0 => n - 1,
                                (false, _) => -1,
                            };
                            let now = clock.now_ms();
                            if low && !cam.low_fps && cam.fps_streak >= FPS_ROUNDS {
                                cam.low_fps = true;
                                let d = format!("{:.1} of {:.1} frames/s", h.measured_fps, h.expected_fps);
                                reports.push(Report::LowFps { camera: id.clone(), at: now, low: Some(d) });
                            } else if !low && cam.low_fps && -cam.fps_streak >= FPS_ROUNDS {
                                cam.low_fps = false;
                                reports.push(Report::LowFps { camera: id.clone(), at: now, low: None });
                            }
                        } else {
                            cam.fps_streak = 0;
                        }
                    }
                    // No new frame since the last sample: the stream is down, which ingest reports.
                    cam.next_sample = std::time::Instant::now() + interval;
                    if let Some(frame) = frame.filter(|f| f.captured_ms != cam.last_frame_ms) {
                        cam.last_frame_ms = frame.captured_ms;
                        let changes = cam.vqd.sample_with_recent(&frame, cam.stillest.take());
                        cam.peek = Some(frame.clone());
                        cam.samples += 1;
                        cam.last_sample_ms = Some(frame.captured_ms);
                        for c in changes {
                            reports.push(Report::Fault {
                                camera: id.clone(),
                                at: frame.captured_ms,
                                raised: c.raised,
                                check: c.check,
                                measures: c.measures,
                            });
                        }
                    }
                    drop(guard);
                    for r in reports {
                        if tx.blocking_send(r).is_err() {
                            return;
                        }
                    }
                }
                // Ticks between samples take each camera's newest frame (a cheap reference count).
                std::thread::park_timeout(interval.min(TICK));
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start quality sampling");
        }
        svc
    }

    /// A reloaded configuration's overrides: cameras whose override changed start learning anew.
    pub fn reconfigure(&self, overrides: &[QualityOverride]) {
        let new: HashMap<String, QualityOverride> = overrides.iter().map(|o| (o.camera.clone(), o.clone())).collect();
        let mut old = self.overrides.lock().unwrap_or_else(|e| e.into_inner());
        let mut cams = self.cams.lock().unwrap_or_else(|e| e.into_inner());
        let changed: Vec<String> =
            old.keys().chain(new.keys()).filter(|k| old.get(*k) != new.get(*k)).cloned().collect();
        for k in changed {
            cams.remove(&k);
        }
        *old = new;
    }

    pub fn quality(&self) -> Vec<CameraQuality> {
        let cams = self.cams.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<CameraQuality> = cams
            .iter()
            .map(|(id, c)| CameraQuality {
                camera_id: id.clone(),
                faults: c.vqd.active(),
                checks: c.vqd.states.clone(),
                last: c.vqd.last.clone(),
                last_sample_ms: c.last_sample_ms,
                samples: c.samples,
            })
            .collect();
        // Cameras with faults first.
        v.sort_by(|a, b| b.faults.len().cmp(&a.faults.len()).then(a.camera_id.cmp(&b.camera_id)));
        v
    }

    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
