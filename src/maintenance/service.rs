//! Quality sampling: every `vqd_interval_s` the newest frame of every streaming camera (the one
//! snapshots serve, whatever its profile) is judged by the camera's `CameraVqd`; a fault raised or
//! cleared is written to the event log (`quality_fault` / `quality_cleared`, with what was
//! measured) for the alert engine. Runs on its own thread; the registry writes go through tokio.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::vqd::{CameraVqd, Check, CheckState, Measures, VqdParams};
use crate::config::MaintenanceConfig;
use crate::ingest::Ingest;
use crate::registry::Registry;

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
}

#[derive(Clone)]
pub struct QualityService {
    cams: Arc<Mutex<HashMap<String, Cam>>>,
    stop: Arc<AtomicBool>,
}

impl QualityService {
    pub fn start(cfg: MaintenanceConfig, ingest: Arc<Ingest>, registry: Registry) -> Self {
        let svc = Self { cams: Arc::new(Mutex::new(HashMap::new())), stop: Arc::new(AtomicBool::new(false)) };
        let params = VqdParams { raise_after: cfg.raise_after, clear_after: cfg.clear_after, ..Default::default() };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, i64, &'static str, serde_json::Value)>(256);
        tokio::spawn(async move {
            while let Some((cam, at, kind, payload)) = rx.recv().await {
                if let Err(e) = registry.insert_event(at, kind, Some(&cam), None, &payload).await {
                    tracing::error!(camera = %cam, error = %e, "cannot store a quality event");
                }
            }
        });
        let (cams, stop) = (svc.cams.clone(), svc.stop.clone());
        let interval = Duration::from_secs_f64(cfg.vqd_interval_s);
        let spawned = std::thread::Builder::new().name("vqd".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for id in ingest.ids() {
                    let Some(frame) = ingest.last_frame(&id) else { continue };
                    let mut guard = cams.lock().unwrap_or_else(|e| e.into_inner());
                    let cam = guard.entry(id.clone()).or_insert_with(|| Cam {
                        vqd: CameraVqd::new(params),
                        last_frame_ms: i64::MIN,
                        last_sample_ms: None,
                        samples: 0,
                    });
                    // No new frame since the last sample: the stream is down, which ingest reports.
                    if frame.captured_ms == cam.last_frame_ms {
                        continue;
                    }
                    cam.last_frame_ms = frame.captured_ms;
                    let changes = cam.vqd.sample(&frame);
                    cam.samples += 1;
                    cam.last_sample_ms = Some(frame.captured_ms);
                    drop(guard);
                    for c in changes {
                        let kind = if c.raised { "quality_fault" } else { "quality_cleared" };
                        let payload = serde_json::json!({ "check": c.check.as_str(), "measures": c.measures });
                        if tx.blocking_send((id.clone(), frame.captured_ms, kind, payload)).is_err() {
                            return;
                        }
                    }
                }
                std::thread::park_timeout(interval);
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start quality sampling");
        }
        svc
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
