//! Dispatch over HTTP: for an alert with a place (an alarm's position, or the camera that saw
//! it), the available patrol units ranked by travel time on the road network (`geo::dispatch`:
//! one-way streets respected, foot patrols walking), and sending units to it (their status and
//! the alert's trail).

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::units::STALE_AFTER_MS;
use crate::geo::dispatch::{DispatchError, Travel, UnitAt, nearest, snap_for};
use crate::registry::{AlertOp, AlertRow, AlertStatus, UnitKind, UnitRow, UnitStatus};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/alerts/{id}/dispatch", get(plan).post(dispatch))
        .route("/api/v1/interceptions/{id}/units", get(interception_units))
}

/// Units a plan lists when the request gives no `k`, and the most it may ask for.
pub const DEFAULT_K: u32 = 5;
pub const MAX_K: u32 = 50;
/// The most units one dispatch may send.
pub const MAX_SEND: usize = 20;

/// Where an alert happened.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Place {
    pub lon: f64,
    pub lat: f64,
    /// `alert` (its own position: an alarm) or `camera <id>` (the camera that saw it).
    pub from: String,
}

/// One unit's way to the place.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnitEta {
    pub unit: UnitRow,
    /// Travel time by the road network (driving, or walking for foot patrols and posts), seconds.
    pub eta_s: f64,
    /// From the unit's position to the way it was routed from, metres.
    pub off_road_m: f64,
}

/// An available unit that could not be ranked, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeftOut {
    pub id: String,
    pub why: String,
}

/// The units to send to an alert, fastest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DispatchPlan {
    pub alert_id: i64,
    pub place: Place,
    pub units: Vec<UnitEta>,
    /// Available units left out: no position yet, a stale one, off any way they can travel, or
    /// unable to reach the place by the roads.
    pub left_out: Vec<LeftOut>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PlanParams {
    /// How many units (default 5, at most 50).
    pub k: Option<u32>,
}

async fn alert(st: &AppState, id: i64) -> Result<AlertRow, ApiError> {
    st.registry.get_alert(id).await?.ok_or_else(|| ApiError::NotFound(format!("alert {id} not found")))
}

/// The alert's place: its own position (alarms carry one), else the first of its cameras the
/// registry holds.
async fn place_of(st: &AppState, a: &AlertRow) -> Result<Place, ApiError> {
    if let (Some(lon), Some(lat)) = (a.detail["lon"].as_f64(), a.detail["lat"].as_f64())
        && lon.is_finite()
        && lat.is_finite()
    {
        return Ok(Place { lon, lat, from: "alert".into() });
    }
    for c in &a.cameras {
        if let Some(cam) = st.registry.get_camera(c).await? {
            return Ok(Place { lon: cam.lon, lat: cam.lat, from: format!("camera {c}") });
        }
    }
    Err(ApiError::Conflict(format!(
        "alert {} has no place: no position of its own and no camera the registry holds",
        a.id
    )))
}

fn travel_of(kind: UnitKind) -> Travel {
    match kind {
        UnitKind::Car | UnitKind::Motorcycle => Travel::Drive,
        UnitKind::Foot | UnitKind::Post => Travel::Walk,
    }
}

/// The available units with a fresh position (as the dispatcher sees them), each with its row;
/// the available ones without, with why.
struct Ready {
    at: Vec<UnitAt>,
    rows: HashMap<String, UnitRow>,
    left: Vec<LeftOut>,
}

async fn ready_units(st: &AppState, model: &crate::geo::model::GeoModel) -> Result<Ready, ApiError> {
    let now = st.clock.now_ms();
    let mut r = Ready { at: Vec::new(), rows: HashMap::new(), left: Vec::new() };
    for mut u in st.registry.units(false).await? {
        u.mark_stale(now, STALE_AFTER_MS);
        if u.status != UnitStatus::Available {
            continue;
        }
        match u.position {
            None => r.left.push(LeftOut { id: u.id, why: "no position yet".into() }),
            Some(p) if u.stale => r.left.push(LeftOut {
                why: format!(
                    "its newest position is {} s old (stale after {} s)",
                    (now - p.at_ms) / 1000,
                    STALE_AFTER_MS / 1000
                ),
                id: u.id,
            }),
            Some(p) => {
                r.at.push(UnitAt { id: u.id.clone(), at: model.proj.fwd(p.lon, p.lat), travel: travel_of(u.kind) });
                r.rows.insert(u.id.clone(), u);
            }
        }
    }
    Ok(r)
}

/// Every available unit with a fresh position ranked by its time to `place`; the others that
/// are available, with why they are not ranked.
async fn rank(st: &AppState, place: &Place) -> Result<(Vec<UnitEta>, Vec<LeftOut>), ApiError> {
    let model = st.geo.model().await?;
    let Ready { at, rows: mut ready, mut left } = ready_units(st, &model).await?;
    let to = model.proj.fwd(place.lon, place.lat);
    let (etas, off_road) = tokio::task::spawn_blocking(move || {
        let etas = nearest(&model.net, &at, to, at.len())?;
        // Of those not ranked, the ones no way they can travel comes near.
        let ranked: HashSet<&str> = etas.iter().map(|e| e.id.as_str()).collect();
        let off: HashSet<String> = at
            .iter()
            .filter(|u| !ranked.contains(u.id.as_str()) && snap_for(&model.net, u.at, u.travel).is_none())
            .map(|u| u.id.clone())
            .collect();
        Ok::<_, DispatchError>((etas, off))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("ranking units failed: {e}")))?
    .map_err(|e| ApiError::Conflict(format!("no unit can be ranked: {e}")))?;
    let mut units = Vec::with_capacity(etas.len());
    for e in etas {
        if let Some(unit) = ready.remove(&e.id) {
            units.push(UnitEta { unit, eta_s: (e.seconds * 10.0).round() / 10.0, off_road_m: e.off_road_m.round() });
        }
    }
    let mut rest: Vec<String> = ready.into_keys().collect();
    rest.sort();
    for id in rest {
        let why = if off_road.contains(&id) {
            "more than 250 m from any way it can travel (dispatch::SNAP_M)"
        } else {
            "the roads do not lead it to the place (one-way streets)"
        };
        left.push(LeftOut { id, why: why.into() });
    }
    left.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((units, left))
}

/// The available units that reach the alert's place soonest, with their ETAs by the road
/// network (one-way streets respected; foot patrols walk); units without a fresh position are
/// listed as left out, with why. 409 when the alert has no place or it is off the roads.
#[utoipa::path(get, path = "/api/v1/alerts/{id}/dispatch", tag = "alerts", params(("id" = i64, Path, description = "alert id"), PlanParams),
    responses((status = 200, body = DispatchPlan), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn plan(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(p): ApiQuery<PlanParams>,
) -> Result<Json<DispatchPlan>, ApiError> {
    let k = p.k.unwrap_or(DEFAULT_K);
    if k == 0 || k > MAX_K {
        return Err(ApiError::BadRequest(format!("k {k}: 1 to {MAX_K}")));
    }
    let a = alert(&st, id).await?;
    super::desks::check_reached(&st, &caller, &a).await?;
    let place = place_of(&st, &a).await?;
    let (mut units, left_out) = rank(&st, &place).await?;
    units.truncate(k as usize);
    Ok(Json(DispatchPlan { alert_id: id, place, units, left_out }))
}

/// The units to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchBody {
    /// Unit ids, 1 to 20, each once.
    pub units: Vec<String>,
}

/// What a dispatch did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Dispatched {
    pub alert: AlertRow,
    /// The units sent, now `dispatched` to the alert.
    pub units: Vec<UnitRow>,
}

/// Sends units to an alert, all or none: each must exist, not be retired or off duty (one on
/// another alert may be re-tasked). The alert's trail records who sent which units with their
/// ETAs (`dispatched` in the change feed); each unit becomes `dispatched` to the alert.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/dispatch", tag = "alerts", params(("id" = i64, Path, description = "alert id")),
    request_body = DispatchBody, responses((status = 200, body = Dispatched), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn dispatch(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<DispatchBody>,
) -> Result<Json<Dispatched>, ApiError> {
    if b.units.is_empty() || b.units.len() > MAX_SEND {
        return Err(ApiError::BadRequest(format!("units holds {}: send 1 to {MAX_SEND}", b.units.len())));
    }
    let mut seen = HashSet::new();
    for u in &b.units {
        crate::registry::check_unit_id(u).map_err(ApiError::BadRequest)?;
        if !seen.insert(u.as_str()) {
            return Err(ApiError::BadRequest(format!("unit {u:?} is named twice")));
        }
    }
    let a = alert(&st, id).await?;
    super::desks::check_reached(&st, &caller, &a).await?;
    if a.status == AlertStatus::Resolved {
        return Err(ApiError::Conflict(format!("alert {id} is resolved: it gets no units")));
    }
    // Each unit checked before anything is written.
    for u in &b.units {
        let row = st.registry.unit(u).await?.ok_or_else(|| ApiError::NotFound(format!("unit {u:?} not found")))?;
        if row.retired_at_ms.is_some() {
            return Err(ApiError::Conflict(format!("unit {u:?} is retired")));
        }
        if row.status == UnitStatus::OffDuty {
            return Err(ApiError::Conflict(format!("unit {u:?} is off duty")));
        }
    }
    // Their ETAs where the place and the unit can be ranked (a unit without a fresh position
    // may still be sent: the operator knows where it is).
    let etas: HashMap<String, f64> = match place_of(&st, &a).await {
        Ok(place) => match rank(&st, &place).await {
            Ok((ranked, _)) => ranked.into_iter().map(|u| (u.unit.id, u.eta_s)).collect(),
            Err(_) => HashMap::new(),
        },
        Err(_) => HashMap::new(),
    };
    let sent: Vec<(String, Option<f64>)> = b.units.iter().map(|u| (u.clone(), etas.get(u).copied())).collect();
    let Json(alert) = super::alerts::operate(&st, &caller, id, AlertOp::Dispatch { units: sent }).await?;
    let units = st.registry.dispatch_units(&b.units, id, st.clock.now_ms()).await?;
    st.unit_feed.kick();
    tracing::info!(alert = id, units = ?b.units, by = %caller.name, "units dispatched");
    let now = st.clock.now_ms();
    let units = units
        .into_iter()
        .map(|mut u| {
            u.mark_stale(now, STALE_AFTER_MS);
            u
        })
        .collect();
    Ok(Json(Dispatched { alert, units }))
}

/// One armed checkpoint of an interception with the unit proposed to it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckpointCover {
    pub ring_id: String,
    pub ring_name: String,
    pub camera_id: String,
    pub name: String,
    /// Earliest seconds after the incident the suspect's vehicle can reach it (the plan's);
    /// `None` when the roads do not lead there.
    pub suspect_eta_s: Option<f64>,
    /// The unit proposed, with its time by road from where it is now; `None` when no unit is
    /// left that can reach it.
    pub unit: Option<UnitEta>,
    /// When that unit would be there, seconds after the incident (now, plus its ETA).
    pub unit_at_s: Option<f64>,
    /// The suspect's ETA less the unit's arrival: positive, the unit is there first.
    pub margin_s: Option<f64>,
}

/// Units proposed to an interception's armed checkpoints.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InterceptionUnits {
    pub interception_id: i64,
    /// Seconds since the incident, now.
    pub elapsed_s: f64,
    /// The checkpoints the suspect can reach, soonest first (then those it cannot), each with the
    /// unit proposed to it.
    pub checkpoints: Vec<CheckpointCover>,
    /// Available units not ranked (no position, a stale one, off the roads).
    pub left_out: Vec<LeftOut>,
}

/// Most checkpoints one proposal covers (the soonest the suspect reaches; each costs a search).
pub const MAX_COVER: usize = 40;

/// Units proposed to an interception's armed checkpoints: the checkpoints the suspect can reach
/// soonest first, each given the available unit not yet proposed to an earlier one that gets
/// there soonest by road (one-way streets respected; foot patrols walk), first only where it is
/// there before the suspect could be, then (late, closing the way behind) wherever no unit is yet;
/// each with its ETA against the suspect's (`margin_s` > 0: the unit is there first). Proposals only: units are sent with
/// `PATCH /api/v1/units/{id}` or an alert's dispatch.
#[utoipa::path(get, path = "/api/v1/interceptions/{id}/units", tag = "interception",
    params(("id" = i64, Path, description = "interception id")),
    responses((status = 200, body = InterceptionUnits), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn interception_units(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<InterceptionUnits>, ApiError> {
    let now = st.clock.now_ms();
    st.registry.expire_interceptions(now).await?;
    let ic = st
        .registry
        .interceptions(false, Some(id))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::NotFound(format!("interception {id} not found")))?;
    if ic.status != "active" {
        return Err(ApiError::Conflict(format!("interception {id} is {}: it takes no units", ic.status)));
    }
    let plan: Vec<crate::geo::rings::RingPlan> = serde_json::from_value(ic.plan.clone())
        .map_err(|e| ApiError::Internal(format!("interception {id}'s stored plan does not read: {e}")))?;
    let model = st.geo.model().await?;
    let mut cps: Vec<(CheckpointCover, Option<crate::geo::proj::Xy>)> = Vec::new();
    for ring in &plan {
        for c in &ring.checkpoints {
            let at = model.camera(&c.camera_id).map(|(i, _)| model.cam_pos[i]);
            cps.push((
                CheckpointCover {
                    ring_id: ring.ring_id.clone(),
                    ring_name: ring.name.clone(),
                    camera_id: c.camera_id.clone(),
                    name: c.name.clone(),
                    // To a tenth of a second: equal times sort by checkpoint, not by rounding noise.
                    suspect_eta_s: c.eta_s.map(|s| (s * 10.0).round() / 10.0),
                    unit: None,
                    unit_at_s: None,
                    margin_s: None,
                },
                at,
            ));
        }
    }
    cps.sort_by(|a, b| {
        let key = |c: &CheckpointCover| c.suspect_eta_s.unwrap_or(f64::INFINITY);
        key(&a.0).total_cmp(&key(&b.0)).then_with(|| a.0.camera_id.cmp(&b.0.camera_id))
    });
    cps.dedup_by(|a, b| a.0.camera_id == b.0.camera_id);
    let Ready { at, mut rows, left } = ready_units(&st, &model).await?;
    let covered: Vec<(usize, crate::geo::proj::Xy)> =
        cps.iter().enumerate().filter_map(|(i, (_, p))| p.map(|p| (i, p))).take(MAX_COVER).collect();
    let places: Vec<crate::geo::proj::Xy> = covered.iter().map(|(_, p)| *p).collect();
    let elapsed_s = ((now - ic.incident_at_ms).max(0) as f64 / 1000.0 * 10.0).round() / 10.0;
    // In time: there before the suspect could be.
    let deadlines: Vec<Option<f64>> =
        covered.iter().map(|(i, _)| cps[*i].0.suspect_eta_s.map(|s| s - elapsed_s)).collect();
    let net_model = model.clone();
    let given =
        tokio::task::spawn_blocking(move || crate::geo::dispatch::cover(&net_model.net, &at, &places, &deadlines))
            .await
            .map_err(|e| ApiError::Internal(format!("proposing units failed: {e}")))?;
    for ((i, _), g) in covered.iter().zip(given) {
        let Some(e) = g else { continue };
        let Some(unit) = rows.remove(&e.id) else { continue };
        let c = &mut cps[*i].0;
        let eta_s = (e.seconds * 10.0).round() / 10.0;
        let unit_at = ((elapsed_s + e.seconds) * 10.0).round() / 10.0;
        c.unit_at_s = Some(unit_at);
        c.margin_s = c.suspect_eta_s.map(|s| ((s - elapsed_s - e.seconds) * 10.0).round() / 10.0);
        c.unit = Some(UnitEta { unit, eta_s, off_road_m: e.off_road_m.round() });
    }
    Ok(Json(InterceptionUnits {
        interception_id: id,
        elapsed_s,
        checkpoints: cps.into_iter().map(|(c, _)| c).collect(),
        left_out: left,
    }))
}
