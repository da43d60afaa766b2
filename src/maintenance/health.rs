//! A camera's health state for crews and planners, from everything that speaks about it:
//!
//! - **offline**: ingest lost the stream (stalled, back-off);
//! - **degraded**: streaming, but with a quality fault raised or a frame rate well below the
//!   expected one;
//! - **online**: streaming and sound;
//! - **maintenance**: set (and lifted) by a crew; the camera's alerts are suppressed meanwhile
//!   and its ingest and quality changes are remembered, not shown;
//! - **disabled** / **decommissioned**: the configuration's word, never overridden here.
//!
//! Every change goes to the registry as one transaction: the status, its history entry and a
//! `camera_status` event in the event log, which the alert service and the ring watcher follow.
//! One keeper per app; its inputs are serialised by one lock, so the history is in the order
//! things happened.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::clock::Millis;
use crate::config::CameraStatus;
use crate::events::{CameraStatusChanged, Event, NewEvent};
use crate::registry::{CameraRow, RawEvent, Registry, RegistryError};

/// What is wrong with a camera now, by cause (`offline`, `quality:<check>`, `low_fps`), with
/// since when and what was measured.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    pub cause: String,
    pub since_ms: Millis,
    pub detail: String,
}

#[derive(Debug, Clone, Default)]
struct Cam {
    /// `Some(true)` streaming, `Some(false)` lost, `None` not heard from ingest yet.
    streaming: Option<bool>,
    stream_reason: String,
    stream_since_ms: Millis,
    faults: BTreeMap<String, (Millis, String)>,
    low_fps: Option<(Millis, String)>,
    maintenance: bool,
    maintenance_reason: String,
    /// The status last written for it.
    shown: Option<CameraStatus>,
}

impl Cam {
    fn derive(&self) -> Option<(CameraStatus, String)> {
        if self.maintenance {
            return Some((CameraStatus::Maintenance, self.maintenance_reason.clone()));
        }
        match self.streaming? {
            false => Some((CameraStatus::Offline, self.stream_reason.clone())),
            true => {
                let mut why: Vec<String> = self.faults.keys().cloned().collect();
                if let Some((_, d)) = &self.low_fps {
                    why.push(format!("low_fps ({d})"));
                }
                if why.is_empty() {
                    Some((CameraStatus::Online, self.stream_reason.clone()))
                } else {
                    Some((CameraStatus::Degraded, format!("degraded: {}", why.join(", "))))
                }
            }
        }
    }
}

struct Inner {
    cams: HashMap<String, Cam>,
    /// Cameras whose last status change could not be written: tried again by [`HealthKeeper::retry`].
    unwritten: std::collections::BTreeSet<String>,
}

/// See the module documentation.
#[derive(Clone)]
pub struct HealthKeeper {
    inner: Arc<tokio::sync::Mutex<Inner>>,
    registry: Registry,
}

/// The event of a status change.
fn status_event(row: &CameraRow, from: Option<CameraStatus>, to: CameraStatus, reason: &str, at: Millis) -> RawEvent {
    NewEvent::new(
        at,
        None,
        Event::CameraStatus(CameraStatusChanged {
            camera_id: row.id.clone(),
            name: row.name.clone(),
            grid_cell_id: row.grid_cell_id.clone(),
            from,
            to,
            reason: reason.to_string(),
        }),
    )
    .raw()
}

impl HealthKeeper {
    /// A keeper that knows which cameras a crew put in maintenance (the registry remembers it
    /// across restarts).
    pub async fn start(registry: Registry) -> Result<Self, RegistryError> {
        let mut cams = HashMap::new();
        for id in registry.cameras_with_status(CameraStatus::Maintenance).await? {
            cams.insert(id, Cam { maintenance: true, shown: Some(CameraStatus::Maintenance), ..Default::default() });
        }
        Ok(Self { inner: Arc::new(tokio::sync::Mutex::new(Inner { cams, unwritten: Default::default() })), registry })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Ingest gained (`true`) or lost the camera's stream. Returns the status shown when it changed.
    pub async fn stream(&self, camera: &str, streaming: bool, reason: &str, at: Millis) -> Option<CameraStatus> {
        let mut g = self.inner.lock().await;
        let c = g.cams.entry(camera.to_string()).or_default();
        if c.streaming != Some(streaming) {
            c.stream_since_ms = at;
        }
        c.streaming = Some(streaming);
        c.stream_reason = reason.to_string();
        if !streaming {
            // A lost stream has no picture to judge nor a rate to measure.
            c.low_fps = None;
        }
        self.apply(&mut g, camera, at).await
    }

    /// A quality check raised (`true`) or cleared a fault.
    pub async fn quality(
        &self,
        camera: &str,
        check: &str,
        raised: bool,
        detail: &str,
        at: Millis,
    ) -> Option<CameraStatus> {
        let mut g = self.inner.lock().await;
        let c = g.cams.entry(camera.to_string()).or_default();
        let key = format!("quality:{check}");
        if raised {
            c.faults.entry(key).or_insert((at, detail.to_string()));
        } else {
            c.faults.remove(&key);
        }
        self.apply(&mut g, camera, at).await
    }

    /// The measured frame rate fell below (`Some(detail)`) or came back to its expected level.
    pub async fn low_fps(&self, camera: &str, low: Option<String>, at: Millis) -> Option<CameraStatus> {
        let mut g = self.inner.lock().await;
        let c = g.cams.entry(camera.to_string()).or_default();
        match low {
            Some(d) => {
                c.low_fps.get_or_insert((at, String::new())).1 = d;
            }
            None => c.low_fps = None,
        }
        self.apply(&mut g, camera, at).await
    }

    /// A crew puts the camera into (`true`) or takes it out of maintenance. Unknown,
    /// disabled and decommissioned cameras are refused.
    pub async fn set_maintenance(
        &self,
        camera: &str,
        on: bool,
        reason: &str,
        at: Millis,
    ) -> Result<CameraStatus, RegistryError> {
        let row = self
            .registry
            .get_camera(camera)
            .await?
            .ok_or_else(|| RegistryError::Invalid(format!("camera {camera} is not in the registry")))?;
        if row.status == CameraStatus::Decommissioned.as_str() || row.status == CameraStatus::Disabled.as_str() {
            return Err(RegistryError::Invalid(format!(
                "camera {camera} is {}: maintenance applies to cameras in service",
                row.status
            )));
        }
        let mut g = self.inner.lock().await;
        let c = g.cams.entry(camera.to_string()).or_default();
        c.maintenance = on;
        c.maintenance_reason = reason.to_string();
        let before = row.status.parse::<CameraStatus>().ok();
        self.apply(&mut g, camera, at).await;
        let c = g.cams.get_mut(camera).expect("entry made above");
        if !on && c.streaming.is_none() {
            // Out of maintenance with nothing heard from ingest (no pipeline, or none yet): the
            // status is unknown until ingest speaks.
            c.shown = Some(CameraStatus::Unknown);
            let why = format!("maintenance lifted: {reason}");
            let ev = status_event(&row, Some(CameraStatus::Maintenance), CameraStatus::Unknown, &why, at);
            self.registry.set_status(camera, CameraStatus::Unknown, &why, at, Some(&ev)).await?;
        }
        let now = g.cams.get(camera).and_then(|c| c.shown).or(before).unwrap_or(CameraStatus::Unknown);
        Ok(now)
    }

    /// Writes again the status changes that could not be written (the store was failing): a
    /// camera that went dark while the database was busy still raises its alert. The app calls
    /// this every second.
    pub async fn retry(&self, at: Millis) {
        let mut g = self.inner.lock().await;
        let cams: Vec<String> = g.unwritten.iter().cloned().collect();
        for camera in cams {
            self.apply(&mut g, &camera, at).await;
        }
    }

    /// Reads again which cameras crews put in maintenance (on a worker, whose crews act through a
    /// serve node): a camera put in maintenance elsewhere is held there, and one taken out of it
    /// gets the status its stream and faults give (when this process knows them).
    pub async fn sync_maintenance(&self, at: Millis) -> Result<(), RegistryError> {
        let now_in: std::collections::HashSet<String> =
            self.registry.cameras_with_status(CameraStatus::Maintenance).await?.into_iter().collect();
        let mut g = self.inner.lock().await;
        for id in &now_in {
            let c = g.cams.entry(id.clone()).or_default();
            c.maintenance = true;
            c.shown = Some(CameraStatus::Maintenance);
        }
        let lifted: Vec<String> =
            g.cams.iter().filter(|(id, c)| c.maintenance && !now_in.contains(*id)).map(|(id, _)| id.clone()).collect();
        for id in lifted {
            if let Some(c) = g.cams.get_mut(&id) {
                c.maintenance = false;
                // What the store shows now (set by whoever lifted it) is compared afresh.
                c.shown = None;
            }
            self.apply(&mut g, &id, at).await;
        }
        Ok(())
    }

    /// A camera no live worker has run for a while (a cluster's serve node finds it): offline,
    /// with the reason and its event, unless a crew holds it in maintenance. Nothing is kept of
    /// it here: the worker that takes it reports its stream.
    pub async fn unheld(&self, camera: &str, reason: &str, at: Millis) -> Option<CameraStatus> {
        let mut g = self.inner.lock().await;
        let c = g.cams.entry(camera.to_string()).or_default();
        c.streaming = Some(false);
        c.stream_since_ms = at;
        c.stream_reason = reason.to_string();
        c.shown = None;
        let shown = self.apply(&mut g, camera, at).await;
        if !g.unwritten.contains(camera) {
            g.cams.remove(camera);
        }
        shown
    }

    /// Forgets cameras this process no longer runs (a worker that lost their leases): what it
    /// knew of them is its new holder's to know, and a camera gained back starts afresh.
    pub async fn forget(&self, cameras: &[String]) {
        if cameras.is_empty() {
            return;
        }
        let mut g = self.inner.lock().await;
        for c in cameras {
            g.cams.remove(c);
            g.unwritten.remove(c);
        }
    }

    /// Every camera's current problems (what work orders are opened for).
    pub async fn problems(&self) -> HashMap<String, Vec<Problem>> {
        let g = self.inner.lock().await;
        g.cams
            .iter()
            .filter(|(_, c)| !c.maintenance)
            .map(|(id, c)| {
                let mut v = Vec::new();
                if c.streaming == Some(false) {
                    v.push(Problem {
                        cause: "offline".into(),
                        since_ms: c.stream_since_ms,
                        detail: c.stream_reason.clone(),
                    });
                }
                if c.streaming == Some(true) {
                    for (k, (since, d)) in &c.faults {
                        v.push(Problem { cause: k.clone(), since_ms: *since, detail: d.clone() });
                    }
                    if let Some((since, d)) = &c.low_fps {
                        v.push(Problem { cause: "low_fps".into(), since_ms: *since, detail: d.clone() });
                    }
                }
                (id.clone(), v)
            })
            .filter(|(_, v)| !v.is_empty())
            .collect()
    }

    /// Writes the derived status (with its event) when it changed.
    async fn apply(&self, g: &mut Inner, camera: &str, at: Millis) -> Option<CameraStatus> {
        let c = g.cams.get_mut(camera)?;
        let (to, reason) = c.derive()?;
        if c.shown == Some(to) && to != CameraStatus::Degraded {
            return None;
        }
        let row = match self.registry.get_camera(camera).await {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(camera, error = %e, "cannot read a camera's status; trying again");
                g.unwritten.insert(camera.to_string());
                return None;
            }
        };
        if row.status == CameraStatus::Disabled.as_str() || row.status == CameraStatus::Decommissioned.as_str() {
            return None;
        }
        let was = c.shown.or_else(|| row.status.parse().ok());
        if was == Some(to) && row.status_reason == reason {
            c.shown = Some(to);
            return None;
        }
        let ev = status_event(&row, row.status.parse().ok(), to, &reason, at);
        if let Err(e) = self.registry.set_status_reason(camera, to, &reason, at, Some(&ev)).await {
            if e.is_fenced() {
                // Not this worker's camera (any more): its holder reports its status.
                tracing::warn!(camera, "status change not stored: this worker no longer holds the camera");
                g.unwritten.remove(camera);
                g.cams.remove(camera);
                return None;
            }
            tracing::error!(camera, error = %e, "cannot record a status change; trying again");
            g.unwritten.insert(camera.to_string());
            return None;
        }
        g.unwritten.remove(camera);
        let c = g.cams.get_mut(camera)?;
        c.shown = Some(to);
        if was == Some(to) {
            // Only the reason changed (another fault on a degraded camera).
            return None;
        }
        Some(to)
    }
}
