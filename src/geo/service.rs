//! The geography service the API and the CLI share: a model built from the registry, rebuilt
//! when the registry's geography changes (imports, config reloads), with camera states refreshed
//! on every use; ring open/close events; interceptions and ring crossings.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::RwLock;

use super::model::GeoModel;
use super::rings::{GuardRule, RingPlan, RingState};
use crate::config::DoriTable;
use crate::detect::watchlist::Watchlist;
use crate::registry::{NewPassage, PassageRow, Registry, RegistryError};

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
            let detail = json!({
                "ring_id": st.id, "name": st.name, "level": st.level, "open": st.open, "down": st.down,
                "leaks": st.leaks.iter().map(|l| json!({"road_id": l.road_id, "road_name": l.road_name,
                    "lon": l.lon, "lat": l.lat, "guarded_when_up_by": l.guarded_when_up_by})).collect::<Vec<_>>(),
            });
            let event = match (before, st.open) {
                (None, false) => None,
                (_, true) => Some("ring_opened"),
                (_, false) => Some("ring_closed"),
            };
            self.registry.set_ring_state(&st.id, st.open, now_ms, &detail, event).await?;
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

    /// Stores a passage and raises a `ring_crossing` event for every active interception that
    /// armed its checkpoint for this plate (or for any vehicle), then a `watchlist_hit` event for
    /// every watchlist entry the plate hits. Returns the passage and the event ids.
    pub async fn record_passage(
        &self,
        now_ms: i64,
        p: &NewPassage,
        source: &str,
    ) -> Result<(PassageRow, Vec<i64>), RegistryError> {
        let mut p = p.clone();
        p.plate_no = p.plate_no.as_deref().map(normalise_plate);
        let row = self.registry.insert_passage(&p, source, now_ms).await?;
        self.registry.expire_interceptions(now_ms).await?;
        let mut events = Vec::new();
        for ic in self.registry.interceptions(true, None).await? {
            if row.pass_time_ms < ic.incident_at_ms {
                continue;
            }
            if let Some(want) = &ic.plate
                && row.plate_no.as_deref() != Some(want.as_str())
            {
                continue;
            }
            let plans: Vec<RingPlan> = serde_json::from_value(ic.plan.clone()).unwrap_or_default();
            for ring in plans {
                let Some(cp) = ring.checkpoints.iter().find(|c| c.camera_id == row.camera_id) else { continue };
                let payload = json!({
                    "interception_id": ic.id, "ring_id": ring.ring_id, "ring_name": ring.name, "ring_level": ring.level,
                    "checkpoint": cp.camera_id, "checkpoint_name": cp.name, "passage_id": row.id,
                    "plate_no": row.plate_no, "plate_color": row.plate_color, "direction": row.direction,
                    "pass_time_ms": row.pass_time_ms,
                    "seconds_since_incident": (row.pass_time_ms - ic.incident_at_ms) as f64 / 1000.0,
                    "eta_s": cp.eta_s,
                });
                let id = self
                    .registry
                    .insert_event(
                        row.pass_time_ms,
                        "ring_crossing",
                        Some(&row.camera_id),
                        Some(&ring.ring_id),
                        &payload,
                    )
                    .await?;
                events.push(id);
            }
        }
        events.extend(self.watchlist_hits(&row).await?);
        Ok((row, events))
    }

    /// Raises a `watchlist_hit` event for every watchlist entry the passage's plate hits, among
    /// those in force at its passing time. Entries are read per passage: a change counts at once.
    async fn watchlist_hits(&self, row: &PassageRow) -> Result<Vec<i64>, RegistryError> {
        let Some(plate) = row.plate_no.as_deref().filter(|p| !p.is_empty()) else { return Ok(Vec::new()) };
        let list = Watchlist::new(self.registry.active_watchlists(row.pass_time_ms).await?);
        let mut events = Vec::new();
        for hit in list.matches(plate, row.pass_time_ms) {
            let payload = json!({
                "plate_no": row.plate_no, "plate_color": row.plate_color, "passage_id": row.id,
                "camera_id": row.camera_id, "pass_time_ms": row.pass_time_ms, "watchlist_id": hit.entry_id,
                "pattern": hit.pattern, "match_kind": hit.match_kind, "distance": hit.distance,
                "reason": hit.reason, "priority": hit.priority, "plate_image": row.plate_image,
                "context_image": row.context_image,
            });
            let id = self
                .registry
                .insert_event(row.pass_time_ms, "watchlist_hit", Some(&row.camera_id), None, &payload)
                .await?;
            events.push(id);
        }
        Ok(events)
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
