//! The city map for the dashboard: the extent, one view at a time (thinned to the scale, so the
//! answer stays small whatever the city's size), camera state changes since a time (the map
//! recolours what changed instead of reloading), and camera search.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::ApiQuery;
use crate::geo::coverage::{CoverageQuery, StateFilter};
use crate::geo::dori::DoriLevel;
use crate::geo::mapview::{self, Derived, MapExtent, MapView, ViewCamera, ViewLimits, ViewQuery};

/// How long a view waits for the coverage report and the entrance check before answering
/// without them (`coverage_pending`); they go on being computed for the next request.
const DERIVED_WAIT: Duration = Duration::from_millis(300);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/geo/map/extent", get(extent))
        .route("/api/v1/geo/map/view", get(view))
        .route("/api/v1/geo/map/states", get(states))
        .route("/api/v1/geo/map/search", get(search))
}

/// The map's extent and what it holds.
#[utoipa::path(get, path = "/api/v1/geo/map/extent", tag = "planning",
    responses((status = 200, body = MapExtent)))]
pub async fn extent(State(st): State<AppState>) -> Result<Json<MapExtent>, ApiError> {
    let m = st.geo.model().await?;
    Ok(Json(tokio::task::spawn_blocking(move || mapview::extent(&m)).await.map_err(internal)?))
}

fn internal(e: tokio::task::JoinError) -> ApiError {
    ApiError::Internal(format!("the map view failed: {e}"))
}

/// One view of the map.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ViewParams {
    /// `min lon,min lat,max lon,max lat`.
    pub bbox: String,
    /// Pixels across the box (decides the scale: clusters, road classes, grid level).
    pub width_px: f64,
    /// DORI level of the coverage shading and gaps (default observe).
    pub level: Option<DoriLevel>,
    /// `online` cameras (default) or `all` in service.
    pub states: Option<StateFilter>,
}

fn parse_bbox(s: &str) -> Result<[f64; 4], ApiError> {
    let v: Vec<f64> = s.split(',').map(|x| x.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|_| {
        ApiError::BadRequest(format!("bbox: {s:?} is not four numbers min_lon,min_lat,max_lon,max_lat"))
    })?;
    let [a, b, c, d] = v[..] else {
        return Err(ApiError::BadRequest(format!("bbox: {s:?} is not four numbers min_lon,min_lat,max_lon,max_lat")));
    };
    let ok_lon = |x: f64| x.is_finite() && (-180.0..=180.0).contains(&x);
    let ok_lat = |x: f64| x.is_finite() && (-90.0..=90.0).contains(&x);
    if !(ok_lon(a) && ok_lon(c) && ok_lat(b) && ok_lat(d)) || a >= c || b >= d {
        return Err(ApiError::BadRequest(format!(
            "bbox: {s:?} must have min before max, longitudes within -180..180 and latitudes within -90..90"
        )));
    }
    Ok([a, b, c, d])
}

/// What lies in a box at a scale: clusters or cameras with their DORI ranges, roads simplified to
/// the pixel, grid cells shaded by coverage, entrances and gaps when zoomed in, every ring.
#[utoipa::path(get, path = "/api/v1/geo/map/view", tag = "planning", params(ViewParams),
    responses((status = 200, body = MapView), (status = 400, body = ErrorBody)))]
pub async fn view(State(st): State<AppState>, ApiQuery(p): ApiQuery<ViewParams>) -> Result<Json<MapView>, ApiError> {
    let bbox = parse_bbox(&p.bbox)?;
    if !(p.width_px.is_finite() && (1.0..=20_000.0).contains(&p.width_px)) {
        return Err(ApiError::BadRequest(format!("width_px: {} must be within 1..20000", p.width_px)));
    }
    let q = ViewQuery {
        bbox,
        width_px: p.width_px,
        level: p.level.unwrap_or(DoriLevel::Observe),
        states: p.states.unwrap_or(StateFilter::Online),
    };
    // The report and the entrance check go on in tasks of their own: a view waits for them a
    // little, and answers without them (saying so) when they take longer. Everything is asked
    // for at once, so that the registry's version is read once or twice for all of it, not four
    // times one after the other.
    let geo = st.geo.clone();
    let mut report = tokio::spawn(async move { geo.report(CoverageQuery { level: q.level, states: q.states }).await });
    let geo = st.geo.clone();
    let mut checks = tokio::spawn(async move { geo.entrance_checks().await });
    let (m, rings) = tokio::try_join!(st.geo.model(), st.geo.ring_states())?;
    let deadline = tokio::time::Instant::now() + DERIVED_WAIT;
    let report = match tokio::time::timeout_at(deadline, &mut report).await {
        Ok(Ok(Ok((_, r)))) => Some(r),
        Ok(Ok(Err(e))) => return Err(e.into()),
        _ => None,
    };
    let checks = match tokio::time::timeout_at(deadline, &mut checks).await {
        Ok(Ok(Ok(c))) => Some(c),
        Ok(Ok(Err(e))) => return Err(e.into()),
        _ => None,
    };
    let v = tokio::task::spawn_blocking(move || {
        let ok: Option<Vec<bool>> = checks.map(|c| c.iter().map(|e| e.compliant).collect());
        let d = Derived { report: report.as_deref(), entrances_ok: ok.as_deref(), rings: &rings };
        mapview::view(&m, &q, &d, &ViewLimits::default())
    })
    .await
    .map_err(internal)?;
    Ok(Json(v))
}

/// State changes since a time.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatesParams {
    /// Changes after this time (ms since the epoch); 0 for every camera.
    pub since_ms: i64,
}

/// A camera whose state changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateChange {
    pub id: String,
    pub status: String,
    pub since_ms: i64,
    pub lon: f64,
    pub lat: f64,
}

/// Camera state changes since a time, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateChanges {
    /// The server's clock when read: ask again with a `since_ms` a little before it.
    pub now_ms: i64,
    pub changes: Vec<StateChange>,
    /// More changes than one answer holds: reload the view instead.
    pub truncated: bool,
}

/// At most this many changes per answer.
const MAX_CHANGES: usize = 5_000;

/// Cameras whose state changed after `since_ms`: the map recolours them (and the clusters they
/// fall in) without reloading.
#[utoipa::path(get, path = "/api/v1/geo/map/states", tag = "planning", params(StatesParams),
    responses((status = 200, body = StateChanges), (status = 400, body = ErrorBody)))]
pub async fn states(
    State(st): State<AppState>,
    ApiQuery(p): ApiQuery<StatesParams>,
) -> Result<Json<StateChanges>, ApiError> {
    let now_ms = st.clock.now_ms();
    let rows = st.registry.camera_state_changes(p.since_ms, MAX_CHANGES + 1).await?;
    let truncated = rows.len() > MAX_CHANGES;
    let changes = rows
        .into_iter()
        .take(MAX_CHANGES)
        .map(|(id, status, since_ms, lon, lat)| StateChange { id, status: status.as_str().into(), since_ms, lon, lat })
        .collect();
    Ok(Json(StateChanges { now_ms, changes, truncated }))
}

/// Camera search.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Part of a camera's id or name (case-insensitive).
    pub q: String,
    /// At most this many (default 20, at most 200).
    pub limit: Option<usize>,
}

/// Cameras by id or name, with where they are: the map centres on the one chosen.
#[utoipa::path(get, path = "/api/v1/geo/map/search", tag = "planning", params(SearchParams),
    responses((status = 200, body = Vec<ViewCamera>), (status = 400, body = ErrorBody)))]
pub async fn search(
    State(st): State<AppState>,
    ApiQuery(p): ApiQuery<SearchParams>,
) -> Result<Json<Vec<ViewCamera>>, ApiError> {
    if p.q.chars().count() > 200 {
        return Err(ApiError::BadRequest("q: at most 200 characters".into()));
    }
    let limit = p.limit.unwrap_or(20).clamp(1, 200);
    let m = st.geo.model().await?;
    Ok(Json(tokio::task::spawn_blocking(move || mapview::search(&m, &p.q, limit)).await.map_err(internal)?))
}
