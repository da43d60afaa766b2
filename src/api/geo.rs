//! Planning and interception over HTTP: coverage, entrances, rings, map layers, the cameras that
//! see a point, interceptions, passages and events.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::geo::GeoModel;
use crate::geo::coverage::{CellCoverage, CoverageQuery, CoverageReport, Lengths, RoadCoverage, StateFilter};
use crate::geo::dori::DoriLevel;
use crate::geo::entrance::{EntranceCheck, EntranceRule};
use crate::geo::geojson_out;
use crate::geo::linkage::Seeing;
use crate::geo::rings::{RingPlan, RingState};
use crate::geo::service::InterceptionRequest;
use crate::registry::{EventRow, InterceptionRow, NewPassage, PassageRow};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/coverage/summary", get(coverage_summary))
        .route("/api/v1/coverage/cells", get(coverage_cells))
        .route("/api/v1/coverage/roads", get(coverage_roads))
        .route("/api/v1/coverage/gaps.geojson", get(coverage_gaps))
        .route("/api/v1/coverage/entrances", get(entrances))
        .route("/api/v1/rings", get(rings))
        .route("/api/v1/rings/{id}", get(ring))
        .route("/api/v1/geo/seeing", get(seeing))
        .route("/api/v1/geo/layers/{layer}", get(layer))
        .route("/api/v1/interceptions", post(start_interception).get(list_interceptions))
        .route("/api/v1/interceptions/{id}", get(get_interception))
        .route("/api/v1/interceptions/{id}/close", post(close_interception))
        // GET (queries) lives with the watchlists in detect.rs; one route per path.
        .route("/api/v1/passages", get(super::detect::list_passages).post(post_passage))
        .route("/api/v1/events", get(events))
}

/// Coverage parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CovParams {
    /// DORI level (monitor, detect, observe, recognise, identify, inspect); default observe.
    pub level: Option<DoriLevel>,
    /// `all` cameras in service (planned) or only `online` ones (default).
    pub states: Option<StateFilter>,
    /// Roads: at most this many (default 500, at most 10,000).
    pub limit: Option<usize>,
    /// Roads: those with ids after this one.
    pub after: Option<String>,
    /// Gaps: leave out stretches shorter than this (metres, default 1).
    pub min_len_m: Option<f64>,
}

impl CovParams {
    fn query(&self) -> CoverageQuery {
        CoverageQuery {
            level: self.level.unwrap_or(DoriLevel::Observe),
            states: self.states.unwrap_or(StateFilter::Online),
        }
    }
}

async fn model(st: &AppState) -> Result<std::sync::Arc<GeoModel>, ApiError> {
    Ok(st.geo.model().await?)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::Internal(format!("geography computation failed: {e}")))
}

/// The coverage report for `q`: computed once per version of the model (geography and camera
/// states) and shared by every request meanwhile (`GeoService::report`).
async fn full_report(
    st: &AppState,
    q: CoverageQuery,
) -> Result<(std::sync::Arc<GeoModel>, std::sync::Arc<CoverageReport>), ApiError> {
    Ok(st.geo.report(q).await?)
}

/// The coverage report's head: totals overall and per road class, cameras, the worst cells.
#[derive(Debug, Serialize, ToSchema)]
pub struct CoverageSummary {
    pub query: CoverageQuery,
    pub dori_table: String,
    pub overall: Lengths,
    #[schema(value_type = Object)]
    pub by_class: std::collections::BTreeMap<String, Lengths>,
    /// The 20 worst cells.
    pub worst_cells: Vec<CellCoverage>,
    pub roads: usize,
    pub cells: usize,
    pub cameras: usize,
    pub entrances: usize,
}

/// Coverage totals at a DORI level.
#[utoipa::path(get, path = "/api/v1/coverage/summary", tag = "planning", params(CovParams),
    responses((status = 200, body = CoverageSummary), (status = 400, body = ErrorBody)))]
pub async fn coverage_summary(
    State(st): State<AppState>,
    ApiQuery(p): ApiQuery<CovParams>,
) -> Result<Json<CoverageSummary>, ApiError> {
    let (m, r) = full_report(&st, p.query()).await?;
    let worst = r.worst_cells.iter().take(20).filter_map(|id| r.cells.iter().find(|c| &c.id == id).cloned()).collect();
    Ok(Json(CoverageSummary {
        query: r.query,
        dori_table: r.dori_table.clone(),
        overall: r.overall,
        by_class: r.by_class.clone(),
        worst_cells: worst,
        roads: r.roads.len(),
        cells: r.cells.len(),
        cameras: r.cameras.total,
        entrances: m.entrances.len(),
    }))
}

/// Coverage per grid cell (all levels), worst first.
#[utoipa::path(get, path = "/api/v1/coverage/cells", tag = "planning", params(CovParams),
    responses((status = 200, body = [CellCoverage]), (status = 400, body = ErrorBody)))]
pub async fn coverage_cells(
    State(st): State<AppState>,
    ApiQuery(p): ApiQuery<CovParams>,
) -> Result<Json<Vec<CellCoverage>>, ApiError> {
    let (_, r) = full_report(&st, p.query()).await?;
    let rank = |id: &str| r.worst_cells.iter().position(|w| w == id).unwrap_or(usize::MAX);
    let mut cells = r.cells.clone();
    cells.sort_by_key(|c| (rank(&c.id), c.id.clone()));
    Ok(Json(cells))
}

/// Coverage per road, by id, a page at a time.
#[utoipa::path(get, path = "/api/v1/coverage/roads", tag = "planning", params(CovParams),
    responses((status = 200, body = [RoadCoverage]), (status = 400, body = ErrorBody)))]
pub async fn coverage_roads(
    State(st): State<AppState>,
    ApiQuery(p): ApiQuery<CovParams>,
) -> Result<Json<Vec<RoadCoverage>>, ApiError> {
    let (_, r) = full_report(&st, p.query()).await?;
    let limit = p.limit.unwrap_or(500).clamp(1, 10_000);
    let after = p.after.unwrap_or_default();
    let mut roads: Vec<&RoadCoverage> = r.roads.iter().filter(|x| x.id > after).collect();
    roads.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(roads.into_iter().take(limit).cloned().collect()))
}

fn geojson(v: serde_json::Value) -> Response {
    ([(header::CONTENT_TYPE, "application/geo+json")], v.to_string()).into_response()
}

/// Uncovered stretches of road as GeoJSON LineStrings.
#[utoipa::path(get, path = "/api/v1/coverage/gaps.geojson", tag = "planning", params(CovParams),
    responses((status = 200, description = "GeoJSON FeatureCollection", content_type = "application/geo+json")))]
pub async fn coverage_gaps(State(st): State<AppState>, ApiQuery(p): ApiQuery<CovParams>) -> Result<Response, ApiError> {
    let m = model(&st).await?;
    let (q, min) = (p.query(), p.min_len_m.unwrap_or(1.0).max(0.0));
    Ok(geojson(blocking(move || geojson_out::gaps(&m, &m.coverage(q), min)).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EntranceParams {
    /// Only entrances that break the rule.
    pub violations_only: Option<bool>,
    /// Cameras needed (default 2).
    pub min_cameras: Option<usize>,
    /// Metres each way along the road (default 50).
    pub reach_m: Option<f64>,
    /// What counts as HD, `WIDTHxHEIGHT` (default 1920x1080).
    pub min_resolution: Option<String>,
}

/// The entrance rule: at least 2 HD online cameras at observe level 50 m each way.
#[utoipa::path(get, path = "/api/v1/coverage/entrances", tag = "planning", params(EntranceParams),
    responses((status = 200, body = [EntranceCheck])))]
pub async fn entrances(
    State(st): State<AppState>,
    ApiQuery(p): ApiQuery<EntranceParams>,
) -> Result<Json<Vec<EntranceCheck>>, ApiError> {
    let mut rule = EntranceRule::default();
    if let Some(n) = p.min_cameras {
        rule.min_cameras = n.clamp(1, 20);
    }
    if let Some(r) = p.reach_m {
        if !(r > 0.0 && r <= 500.0) {
            return Err(ApiError::BadRequest(format!("reach_m: {r} is out of range (0, 500]")));
        }
        rule.reach_m = r;
    }
    if let Some(res) = &p.min_resolution {
        let parsed =
            res.split_once(['x', 'X']).and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)));
        match parsed {
            Some((w, h)) if w > 0 && h > 0 => rule.min_resolution = (w, h),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "min_resolution: {res:?} is not WIDTHxHEIGHT, e.g. 1920x1080"
                )));
            }
        }
    }
    let default_rule = p.min_cameras.is_none() && p.reach_m.is_none() && p.min_resolution.is_none();
    let mut v = if default_rule {
        // The rule everyone asks about: checked once per version of the model.
        st.geo.entrance_checks().await?.as_ref().clone()
    } else {
        let m = model(&st).await?;
        blocking(move || m.check_entrances(&rule)).await?
    };
    if p.violations_only.unwrap_or(false) {
        v.retain(|e| !e.compliant);
    }
    Ok(Json(v))
}

/// Every ring's state, computed once per version of the model.
async fn ring_states(st: &AppState) -> Result<std::sync::Arc<Vec<RingState>>, ApiError> {
    Ok(st.geo.ring_states().await?)
}

/// Every checkpoint ring: members down, road leaks, open or closed.
#[utoipa::path(get, path = "/api/v1/rings", tag = "planning", responses((status = 200, body = [RingState])))]
pub async fn rings(State(st): State<AppState>) -> Result<Json<Vec<RingState>>, ApiError> {
    Ok(Json(ring_states(&st).await?.as_ref().clone()))
}

/// One ring.
#[utoipa::path(get, path = "/api/v1/rings/{id}", tag = "planning", params(("id" = String, Path, description = "ring id")),
    responses((status = 200, body = RingState), (status = 404, body = ErrorBody)))]
pub async fn ring(State(st): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Json<RingState>, ApiError> {
    ring_states(&st)
        .await?
        .iter()
        .find(|r| r.id == id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("ring {id:?} not found")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PointParams {
    pub lon: f64,
    pub lat: f64,
    /// `online` (default) or `all`.
    pub states: Option<StateFilter>,
}

/// Alarm linkage: the cameras that see a point, finest DORI level first.
#[utoipa::path(get, path = "/api/v1/geo/seeing", tag = "planning", params(PointParams),
    responses((status = 200, body = [Seeing]), (status = 400, body = ErrorBody)))]
pub async fn seeing(
    State(st): State<AppState>,
    ApiQuery(p): ApiQuery<PointParams>,
) -> Result<Json<Vec<Seeing>>, ApiError> {
    check_lonlat(p.lon, p.lat)?;
    let m = model(&st).await?;
    let pt = m.proj.fwd(p.lon, p.lat);
    Ok(Json(m.cameras_seeing(pt, p.states.unwrap_or(StateFilter::Online))))
}

fn check_lonlat(lon: f64, lat: f64) -> Result<(), ApiError> {
    if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
        return Err(ApiError::BadRequest(format!("lon {lon}, lat {lat}: not a WGS84 position")));
    }
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LayerParams {
    /// Cameras: DORI levels to draw, comma-separated (default detect,observe,recognise,identify).
    pub levels: Option<String>,
}

/// The map layers `GET /api/v1/geo/layers/{layer}` serves, for the document (the handler reads the
/// segment as text and answers 404 for any other).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum LayerName {
    Cameras,
    Roads,
    Cells,
    Rings,
    Entrances,
}

/// Map layers as GeoJSON: `cameras`, `roads`, `cells`, `rings`, `entrances`.
#[utoipa::path(get, path = "/api/v1/geo/layers/{layer}", tag = "planning",
    params(("layer" = LayerName, Path, description = "cameras, roads, cells, rings or entrances"), LayerParams),
    responses((status = 200, description = "GeoJSON FeatureCollection", content_type = "application/geo+json"),
        (status = 404, body = ErrorBody)))]
pub async fn layer(
    State(st): State<AppState>,
    ApiPath(layer): ApiPath<String>,
    ApiQuery(p): ApiQuery<LayerParams>,
) -> Result<Response, ApiError> {
    let levels: Vec<DoriLevel> = match &p.levels {
        Some(s) => s
            .split(',')
            .map(|x| x.trim().parse::<DoriLevel>())
            .collect::<Result<_, _>>()
            .map_err(ApiError::BadRequest)?,
        None => vec![DoriLevel::Detect, DoriLevel::Observe, DoriLevel::Recognise, DoriLevel::Identify],
    };
    let m = model(&st).await?;
    let v = match layer.as_str() {
        "cameras" => blocking(move || geojson_out::cameras(&m, &levels)).await?,
        "roads" => geojson_out::roads(&m),
        "cells" => geojson_out::cells(&m),
        "rings" => {
            let states = st.geo.ring_states().await?;
            blocking(move || geojson_out::rings(&states)).await?
        }
        "entrances" => {
            let checks = st.geo.entrance_checks().await?;
            blocking(move || {
                let ok: Vec<bool> = checks.iter().map(|e| e.compliant).collect();
                geojson_out::entrances(&m, &ok)
            })
            .await?
        }
        other => {
            return Err(ApiError::NotFound(format!(
                "no map layer {other:?}; layers: cameras, roads, cells, rings, entrances"
            )));
        }
    };
    Ok(geojson(v))
}

/// A started interception: its id and the armed rings, innermost first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InterceptionStarted {
    pub id: i64,
    pub rings: Vec<RingPlan>,
}

/// Starts an interception (围堵截) around an incident: arms the checkpoints of the rings around
/// it, innermost first, with the earliest time a vehicle can reach each.
#[utoipa::path(post, path = "/api/v1/interceptions", tag = "interception", request_body = InterceptionRequest,
    responses((status = 201, body = InterceptionStarted), (status = 400, body = ErrorBody)))]
pub async fn start_interception(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<InterceptionRequest>,
) -> Result<(axum::http::StatusCode, Json<InterceptionStarted>), ApiError> {
    check_lonlat(req.lon, req.lat)?;
    if req.ttl_min.is_some_and(|t| !(1..=7 * 24 * 60).contains(&t)) {
        return Err(ApiError::BadRequest("ttl_min: between 1 and 10080 minutes".into()));
    }
    let now = st.clock.now_ms();
    if let Some(t) = req.incident_at_ms
        && !(0..=now.saturating_add(24 * 3_600_000)).contains(&t)
    {
        return Err(ApiError::BadRequest(format!("incident_at_ms: {t} is not a time between 1970 and a day from now")));
    }
    let (id, rings) = st.geo.start_interception(now, &req).await?;
    if rings.is_empty() {
        tracing::warn!(interception = id, "interception started outside every checkpoint ring");
    }
    Ok((axum::http::StatusCode::CREATED, Json(InterceptionStarted { id, rings })))
}

/// Active interceptions, newest first.
#[utoipa::path(get, path = "/api/v1/interceptions", tag = "interception", responses((status = 200, body = [InterceptionRow])))]
pub async fn list_interceptions(State(st): State<AppState>) -> Result<Json<Vec<InterceptionRow>>, ApiError> {
    st.registry.expire_interceptions(st.clock.now_ms()).await?;
    Ok(Json(st.registry.interceptions(true, None).await?))
}

/// One interception, whatever its status.
#[utoipa::path(get, path = "/api/v1/interceptions/{id}", tag = "interception", params(("id" = i64, Path, description = "id")),
    responses((status = 200, body = InterceptionRow), (status = 404, body = ErrorBody)))]
pub async fn get_interception(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<InterceptionRow>, ApiError> {
    st.registry.expire_interceptions(st.clock.now_ms()).await?;
    st.registry
        .interceptions(false, Some(id))
        .await?
        .into_iter()
        .next()
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("interception {id} not found")))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseRequest {
    /// Who closes it.
    pub by: String,
}

/// Closes an active interception (disarms its checkpoints).
#[utoipa::path(post, path = "/api/v1/interceptions/{id}/close", tag = "interception", params(("id" = i64, Path, description = "id")),
    request_body = CloseRequest, responses((status = 200, body = InterceptionRow), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn close_interception(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<CloseRequest>,
) -> Result<Json<InterceptionRow>, ApiError> {
    let now = st.clock.now_ms();
    st.registry.expire_interceptions(now).await?;
    let Some(row) = st.registry.interceptions(false, Some(id)).await?.into_iter().next() else {
        return Err(ApiError::NotFound(format!("interception {id} not found")));
    };
    if !st.registry.close_interception(id, req.by.trim(), now).await? {
        return Err(ApiError::Conflict(format!("interception {id} is already {}", row.status)));
    }
    let row = st.registry.interceptions(false, Some(id)).await?.into_iter().next();
    row.map(Json).ok_or_else(|| ApiError::NotFound(format!("interception {id} not found")))
}

/// A stored passage and the events it raised (ring crossings, watchlist hits).
#[derive(Debug, Serialize, ToSchema)]
pub struct PassageRecorded {
    pub passage: PassageRow,
    pub events: Vec<i64>,
}

/// Records a vehicle passage at a checkpoint (from a checkpoint system; GA/T 1400 MotorVehicle
/// fields). A passage at a checkpoint armed by an active interception raises `ring_crossing`; one
/// whose plate hits a watchlist entry in force raises `watchlist_hit` (one per entry). The
/// passage and its events are stored in one transaction, once per passage (`passage_key`, or the
/// camera, time, plate and lane): a retry answers 200 with what the first request stored.
#[utoipa::path(post, path = "/api/v1/passages", tag = "interception", request_body = NewPassage,
    responses((status = 201, body = PassageRecorded), (status = 200, body = PassageRecorded),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn post_passage(
    State(st): State<AppState>,
    ApiJson(p): ApiJson<NewPassage>,
) -> Result<(axum::http::StatusCode, Json<PassageRecorded>), ApiError> {
    let Some(cam) = st.registry.get_camera(&p.camera_id).await? else {
        return Err(ApiError::NotFound(format!("camera {:?} not found", p.camera_id)));
    };
    if cam.kind != "checkpoint" {
        return Err(ApiError::BadRequest(format!(
            "camera {:?} is a {} camera, not a checkpoint",
            p.camera_id, cam.kind
        )));
    }
    if p.reliability.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
        return Err(ApiError::BadRequest("reliability: between 0 and 1".into()));
    }
    let now = st.clock.now_ms();
    super::detect::check_passage_details(&p, now)?;
    let stored = crate::detect::passages::record(&st.registry, now, &p, "api").await?;
    // A passage sent again (same key) was stored before: 200 with what the first one did.
    let code = if stored.created { axum::http::StatusCode::CREATED } else { axum::http::StatusCode::OK };
    Ok((code, Json(PassageRecorded { passage: stored.passage, events: stored.events })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    /// Only events of this kind (ring_opened, ring_closed, ring_crossing, …).
    pub kind: Option<String>,
    /// Events with ids after this one (default 0).
    pub after: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// The event log, oldest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventParams), responses((status = 200, body = [EventRow])))]
pub async fn events(
    State(st): State<AppState>,
    ApiQuery(p): ApiQuery<EventParams>,
) -> Result<Json<Vec<EventRow>>, ApiError> {
    let limit = p.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(st.registry.events(p.kind.as_deref(), p.after.unwrap_or(0), limit).await?))
}
