//! The geography service the API and the CLI share: a model built from the registry, rebuilt
//! when the registry's geography changes (imports, config reloads), with camera states refreshed
//! on every use; ring open/close events; interceptions.

use std::sync::Arc;

use tokio::sync::RwLock;

use super::model::GeoModel;
use super::rings::{GuardRule, RingPlan, RingState};
use crate::config::DoriTable;
use crate::events::{Event, NewEvent, RingChange, RingLeak};
use crate::registry::{Registry, RegistryError};

/// How long an interception stays armed unless closed.
pub const DEFAULT_INTERCEPTION_TTL_MIN: i64 = 120;
/// How far from a road an incident or checkpoint may be and still be routed, metres.
pub const SNAP_M: f64 = 150.0;

/// The model last built and the registry fingerprint it was built from.
type Cached = Arc<RwLock<Option<(String, Arc<GeoModel>)>>>;

#[derive(Clone)]
pub struct GeoService {
    registry: Registry,
    table: DoriTable,
    cached: Cached,
}

impl GeoService {
    pub fn new(registry: Registry, table: DoriTable) -> GeoService {
        GeoService { registry, table, cached: Arc::new(RwLock::new(None)) }
    }

    /// The model with current camera states. Built (on a blocking thread) when missing or when
    /// the registry's geography changed since.
    pub async fn model(&self) -> Result<Arc<GeoModel>, RegistryError> {
        let fp = self.registry.geo_fingerprint().await?;
        let states = self.registry.camera_states().await?;
        let mut guard = self.cached.write().await;
        // Taken out of the cache so that, unless another request still holds it, updating the
        // states below does not copy the model.
        let mut model = match guard.take() {
            Some((f, m)) if f == fp => m,
            _ => {
                let inputs = self.registry.geo_inputs(self.table).await?;
                let m = tokio::task::spawn_blocking(move || GeoModel::build(inputs))
                    .await
                    .map_err(|e| RegistryError::Invalid(format!("building the geography model failed: {e}")))?;
                Arc::new(m)
            }
        };
        Arc::make_mut(&mut model).set_statuses(states.iter().map(|(id, s)| (id.as_str(), *s)));
        *guard = Some((fp, Arc::clone(&model)));
        Ok(model)
    }

    /// Evaluates every ring; records and returns the rings whose open/closed state changed
    /// (a `ring_opened` or `ring_closed` event each). The first evaluation of a ring records an
    /// event only when it starts open.
    pub async fn check_rings(&self, now_ms: i64) -> Result<Vec<RingState>, RegistryError> {
        let m = self.model().await?;
        let states = tokio::task::spawn_blocking(move || m.ring_states(&GuardRule::default()))
            .await
            .map_err(|e| RegistryError::Invalid(format!("ring check failed: {e}")))?;
        let known = self.registry.ring_open_states().await?;
        let mut changed = Vec::new();
        for st in states {
            let before = known.iter().find(|(id, _)| *id == st.id).map(|(_, o)| *o);
            if before == Some(st.open) {
                continue;
            }
            let change = RingChange {
                ring_id: st.id.clone(),
                name: st.name.clone(),
                level: st.level,
                open: st.open,
                down: st.down.clone(),
                leaks: st
                    .leaks
                    .iter()
                    .map(|l| RingLeak {
                        road_id: l.road_id.clone(),
                        road_name: l.road_name.clone(),
                        lon: l.lon,
                        lat: l.lat,
                        guarded_when_up_by: l.guarded_when_up_by.clone(),
                    })
                    .collect(),
            };
            let detail = serde_json::to_value(&change).unwrap_or_default();
            let event = match (before, st.open) {
                (None, false) => None,
                (_, true) => Some(Event::RingOpened(change)),
                (_, false) => Some(Event::RingClosed(change)),
            };
            let event = event.map(|e| NewEvent::new(now_ms, None, e).raw());
            self.registry.set_ring_state(&st.id, st.open, now_ms, &detail, event.as_ref()).await?;
            if event.is_some() {
                changed.push(st);
            }
        }
        Ok(changed)
    }

    /// Plans and stores an interception.
    pub async fn start_interception(
        &self,
        now_ms: i64,
        req: &InterceptionRequest,
    ) -> Result<(i64, Vec<RingPlan>), RegistryError> {
        let m = self.model().await?;
        let p = m.proj.fwd(req.lon, req.lat);
        let plan = tokio::task::spawn_blocking(move || m.interception_plan(p, SNAP_M))
            .await
            .map_err(|e| RegistryError::Invalid(format!("interception planning failed: {e}")))?;
        let at = req.incident_at_ms.unwrap_or(now_ms);
        let ttl = req.ttl_min.unwrap_or(DEFAULT_INTERCEPTION_TTL_MIN).max(1);
        let plate = req.plate.as_deref().map(normalise_plate).filter(|p| !p.is_empty());
        let plan_json = serde_json::to_value(&plan).unwrap_or_default();
        let id = self
            .registry
            .insert_interception(
                now_ms,
                at,
                req.lon,
                req.lat,
                plate.as_deref(),
                req.note.as_deref().unwrap_or(""),
                now_ms + ttl * 60_000,
                &plan_json,
            )
            .await?;
        Ok((id, plan))
    }
}

/// What an operator gives to start an interception.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InterceptionRequest {
    pub lon: f64,
    pub lat: f64,
    /// When it happened (ms since the epoch); now when absent.
    pub incident_at_ms: Option<i64>,
    /// The suspect vehicle's plate; every vehicle when absent.
    pub plate: Option<String>,
    pub note: Option<String>,
    /// Minutes until the checkpoints disarm by themselves (default 120).
    pub ttl_min: Option<i64>,
}

/// Upper case, no spaces, dots or dashes: `豫A·12345` and `豫a 12345` are the same plate.
pub use crate::plate::normalise as normalise_plate;
