//! Patrol units over HTTP: the units the command centre sends (cars, motorcycles, foot patrols,
//! checkpoint posts), their status, the positions their trackers report (batched) and each
//! unit's track.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::registry::{
    Fix, FixSource, FixesStored, MAX_TRACK, NewUnit, UnitChange, UnitError, UnitKind, UnitRow, UnitStatus,
    check_unit_id,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/units", get(list_units).post(create_unit))
        .route("/api/v1/units/{id}", get(get_unit).patch(update_unit).delete(retire_unit))
        .route("/api/v1/units/stream", get(stream))
        .route("/api/v1/units/{id}/positions", post(add_positions))
        .route("/api/v1/units/{id}/track", get(track))
}

pub use crate::registry::STALE_AFTER_MS;
/// The most positions one request may carry.
pub const MAX_BATCH: usize = crate::registry::MAX_FIXES;
/// Positions a track returns when the request gives no `limit`.
pub const DEFAULT_TRACK: u32 = 1000;
/// The longest a name or station may be, in characters.
const MAX_TEXT: usize = 200;

impl From<UnitError> for ApiError {
    fn from(e: UnitError) -> Self {
        match e {
            UnitError::NotFound(_) => ApiError::NotFound(e.to_string()),
            UnitError::Exists(_) | UnitError::Retired(_) | UnitError::Unavailable(..) => {
                ApiError::Conflict(e.to_string())
            }
            UnitError::Invalid(m) => ApiError::BadRequest(m),
            UnitError::Registry(r) => r.into(),
        }
    }
}

/// A name, station or cell: not blank, at most 200 characters, no control characters.
fn text(field: &str, v: &str) -> Result<String, ApiError> {
    let t = v.trim();
    if t.is_empty() {
        return Err(ApiError::BadRequest(format!("{field} must not be blank")));
    }
    if t.chars().count() > MAX_TEXT {
        return Err(ApiError::BadRequest(format!("{field} is longer than {MAX_TEXT} characters")));
    }
    if t.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!("{field} holds a control character")));
    }
    Ok(t.to_string())
}

fn unit_id(id: &str) -> Result<(), ApiError> {
    check_unit_id(id).map_err(ApiError::BadRequest)
}

fn marked(mut u: UnitRow, now: i64) -> UnitRow {
    u.mark_stale(now, STALE_AFTER_MS);
    u
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UnitsParams {
    /// Retired units too (default false).
    pub all: Option<bool>,
}

/// Patrol units by id, each with its newest position and whether that is stale (older than
/// 120 s).
#[utoipa::path(get, path = "/api/v1/units", tag = "units", params(UnitsParams),
    responses((status = 200, body = [UnitRow]), (status = 400, body = ErrorBody)))]
pub async fn list_units(
    State(st): State<AppState>,
    ApiQuery(p): ApiQuery<UnitsParams>,
) -> Result<Json<Vec<UnitRow>>, ApiError> {
    let now = st.clock.now_ms();
    Ok(Json(st.registry.units(p.all.unwrap_or(false)).await?.into_iter().map(|u| marked(u, now)).collect()))
}

/// A unit to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitInput {
    /// Letters, digits, `.`, `_`, `-` (it appears in MQTT topics and URLs), 1 to 64.
    pub id: String,
    pub name: String,
    pub kind: UnitKind,
    /// The police station it belongs to.
    pub station: String,
    /// The grid cell it patrols (one the registry holds).
    pub grid_cell: Option<String>,
    /// Default `available`.
    pub status: Option<UnitStatus>,
}

/// Adds a patrol unit.
#[utoipa::path(post, path = "/api/v1/units", tag = "units", request_body = UnitInput,
    responses((status = 201, body = UnitRow), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_unit(
    State(st): State<AppState>,
    ApiJson(input): ApiJson<UnitInput>,
) -> Result<(StatusCode, Json<UnitRow>), ApiError> {
    unit_id(&input.id)?;
    let new = NewUnit {
        id: input.id,
        name: text("name", &input.name)?,
        kind: input.kind,
        station: text("station", &input.station)?,
        grid_cell: input.grid_cell.as_deref().map(|c| text("grid_cell", c)).transpose()?,
        status: input.status.unwrap_or(UnitStatus::Available),
    };
    let now = st.clock.now_ms();
    let row = st.registry.create_unit(&new, now).await?;
    st.unit_feed.kick();
    tracing::info!(unit = %row.id, kind = row.kind.as_str(), "patrol unit added");
    Ok((StatusCode::CREATED, Json(marked(row, now))))
}

/// One unit, retired or not.
#[utoipa::path(get, path = "/api/v1/units/{id}", tag = "units", params(("id" = String, Path, description = "unit id")),
    responses((status = 200, body = UnitRow), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_unit(State(st): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Json<UnitRow>, ApiError> {
    unit_id(&id)?;
    let now = st.clock.now_ms();
    st.registry
        .unit(&id)
        .await?
        .map(|u| Json(marked(u, now)))
        .ok_or_else(|| ApiError::NotFound(format!("unit {id:?} not found")))
}

/// A change to a unit: only the fields given change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitPatch {
    pub name: Option<String>,
    pub kind: Option<UnitKind>,
    pub station: Option<String>,
    /// `null`: no cell.
    #[serde(default, deserialize_with = "crate::detect::watchlist::nullable")]
    #[schema(value_type = Option<String>)]
    pub grid_cell: Option<Option<String>>,
    /// A new status restarts `status_since_ms`.
    pub status: Option<UnitStatus>,
}

/// Changes a unit's name, kind, station, cell or status.
#[utoipa::path(patch, path = "/api/v1/units/{id}", tag = "units", params(("id" = String, Path, description = "unit id")),
    request_body = UnitPatch, responses((status = 200, body = UnitRow), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_unit(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(p): ApiJson<UnitPatch>,
) -> Result<Json<UnitRow>, ApiError> {
    unit_id(&id)?;
    if p.name.is_none() && p.kind.is_none() && p.station.is_none() && p.grid_cell.is_none() && p.status.is_none() {
        return Err(ApiError::BadRequest("nothing to change: give name, kind, station, grid_cell or status".into()));
    }
    let change = UnitChange {
        name: p.name.as_deref().map(|v| text("name", v)).transpose()?,
        kind: p.kind,
        station: p.station.as_deref().map(|v| text("station", v)).transpose()?,
        grid_cell: match &p.grid_cell {
            None => None,
            Some(None) => Some(None),
            Some(Some(c)) => Some(Some(text("grid_cell", c)?)),
        },
        status: p.status,
    };
    let now = st.clock.now_ms();
    let row = st.registry.update_unit(&id, &change, now).await?;
    st.unit_feed.kick();
    tracing::info!(unit = %row.id, status = row.status.as_str(), "patrol unit changed");
    Ok(Json(marked(row, now)))
}

/// Retires a unit: it takes no more positions and is listed only with `?all=true`; its track
/// stays until retention removes it.
#[utoipa::path(delete, path = "/api/v1/units/{id}", tag = "units", params(("id" = String, Path, description = "unit id")),
    responses((status = 200, body = UnitRow), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn retire_unit(State(st): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Json<UnitRow>, ApiError> {
    unit_id(&id)?;
    let now = st.clock.now_ms();
    let row = st.registry.retire_unit(&id, now).await?;
    st.unit_feed.kick();
    tracing::info!(unit = %row.id, "patrol unit retired");
    Ok(Json(marked(row, now)))
}

/// A batch of one unit's positions.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PositionsInput {
    /// 1 to 1,000 positions, in any order.
    pub positions: Vec<Fix>,
}

/// Stores a batch of a unit's positions: each is stored once per time (a repeat is counted as
/// a duplicate), a bad one is rejected with its reason and the rest are stored; the newest
/// becomes the unit's position. All rejected: 400 with the reasons.
#[utoipa::path(post, path = "/api/v1/units/{id}/positions", tag = "units", params(("id" = String, Path, description = "unit id")),
    request_body = PositionsInput, responses((status = 200, body = FixesStored), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add_positions(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<PositionsInput>,
) -> Result<Json<FixesStored>, ApiError> {
    unit_id(&id)?;
    let n = input.positions.len();
    if n == 0 || n > MAX_BATCH {
        return Err(ApiError::BadRequest(format!("positions holds {n}: send 1 to {MAX_BATCH} in one request")));
    }
    let now = st.clock.now_ms();
    let stored = st
        .registry
        .add_fixes(
            &id,
            &input.positions,
            FixSource::Http,
            now,
            crate::registry::oldest_fix(now, st.retention.config().tracks_days),
        )
        .await?;
    if stored.stored > 0 {
        st.unit_feed.kick();
    }
    if stored.rejected.len() == n {
        let reasons: Vec<String> =
            stored.rejected.iter().take(3).map(|r| format!("positions[{}]: {}", r.index, r.reason)).collect();
        let more = if n > 3 { format!(" (and {} more)", n - 3) } else { String::new() };
        return Err(ApiError::BadRequest(format!("no position stored: {}{more}", reasons.join("; "))));
    }
    Ok(Json(stored))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TrackParams {
    /// From this time (Unix ms, inclusive); default an hour ago.
    pub from_ms: Option<i64>,
    /// Before this time (Unix ms); default now and the minute tracker clocks may run ahead.
    pub to_ms: Option<i64>,
    /// At most this many, oldest first (default 1,000, at most 10,000).
    pub limit: Option<u32>,
}

/// A unit's positions in a time range, oldest first.
#[utoipa::path(get, path = "/api/v1/units/{id}/track", tag = "units", params(("id" = String, Path, description = "unit id"), TrackParams),
    responses((status = 200, body = [Fix]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn track(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(p): ApiQuery<TrackParams>,
) -> Result<Json<Vec<Fix>>, ApiError> {
    unit_id(&id)?;
    let now = st.clock.now_ms();
    let from = p.from_ms.unwrap_or(now.saturating_sub(3_600_000));
    let to = p.to_ms.unwrap_or(now.saturating_add(crate::registry::MAX_AHEAD_MS + 1));
    if to < from {
        return Err(ApiError::BadRequest(format!("to_ms {to} is before from_ms {from}")));
    }
    let limit = p.limit.unwrap_or(DEFAULT_TRACK);
    if limit == 0 || limit > MAX_TRACK {
        return Err(ApiError::BadRequest(format!("limit {limit}: 1 to {MAX_TRACK}")));
    }
    if st.registry.unit(&id).await?.is_none() {
        return Err(ApiError::NotFound(format!("unit {id:?} not found")));
    }
    Ok(Json(st.registry.track(&id, from, to, limit).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct UnitStreamParams {
    /// For browsers' EventSource, which cannot send headers.
    pub access_token: Option<String>,
}

fn units_event(c: &crate::app::unit_feed::UnitsChange) -> Event {
    Event::default().event("units").data(serde_json::to_string(c).unwrap_or_default())
}

/// The patrol units live, as Server-Sent Events (`event: units`, data a `UnitsChange`): first
/// every unit (`full`: replace what you hold), then what changed (a position, a status, stale,
/// added) and the ids of units retired (`gone`). A change stored on any node shows within a
/// second (on this node within 0.2 s); a client that falls behind is sent every unit again.
#[utoipa::path(get, path = "/api/v1/units/stream", tag = "units", params(UnitStreamParams),
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream"),
        (status = 503, body = ErrorBody)))]
pub async fn stream(
    State(st): State<AppState>,
    caller: Option<Extension<Caller>>,
    ApiQuery(_params): ApiQuery<UnitStreamParams>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let slot = st.streams.admit().map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let feed = st.unit_feed.clone();
    let clock = st.clock.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(16);
    let send = async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let mut l = feed.listen(clock.now_ms());
            if let Some(first) = &l.first
                && tx.send(units_event(first)).await.is_err()
            {
                return;
            }
            loop {
                match l.changes.recv().await {
                    Ok(c) => {
                        if tx.send(units_event(&c)).await.is_err() {
                            return;
                        }
                    }
                    // Fallen behind: every unit again, from a fresh start.
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return,
                }
            }
        }
    };
    Ok(super::alerts::live_stream(&st, caller.map(|c| c.token_hash.clone()), slot, rx, send))
}
