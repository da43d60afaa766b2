//! Watchlists (布控) and passage queries over HTTP: entries to watch for, the passages stored at
//! checkpoints (by plate, wildcard, camera, time) and one vehicle's trajectory.
//! `GET /api/v1/passages` is routed in `geo.rs`, beside the `POST` on the same path.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::detect::watchlist::{WatchlistEntry, WatchlistError, WatchlistInput, WatchlistPatch, plate_query};
use crate::registry::{NewPassage, PassageFilter, PassageRow, TrajectoryPoint, WatchlistChangeError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/watchlists", get(list_watchlists).post(create_watchlist))
        .route("/api/v1/watchlists/{id}", get(get_watchlist).patch(update_watchlist).delete(revoke_watchlist))
        .route("/api/v1/vehicles/{plate}/trajectory", get(trajectory))
}

/// Passages a page returns when the request gives no `limit`, and the most it may ask for.
pub const DEFAULT_PASSAGE_LIMIT: u32 = 100;
pub const MAX_PASSAGE_LIMIT: u32 = 1000;

impl From<WatchlistError> for ApiError {
    fn from(e: WatchlistError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<WatchlistChangeError> for ApiError {
    fn from(e: WatchlistChangeError) -> Self {
        match e {
            WatchlistChangeError::NotFound(_) => ApiError::NotFound(e.to_string()),
            WatchlistChangeError::Revoked(_) => ApiError::Conflict(e.to_string()),
            WatchlistChangeError::Invalid(v) => v.into(),
            WatchlistChangeError::Registry(r) => r.into(),
        }
    }
}

fn caller_name(c: &Option<Extension<Caller>>) -> Option<&str> {
    c.as_ref().map(|Extension(c)| c.name.as_str())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WatchlistParams {
    /// Revoked and expired entries too (default false: only live ones, those not yet started
    /// included).
    pub all: Option<bool>,
}

/// Watchlist entries by id.
#[utoipa::path(get, path = "/api/v1/watchlists", tag = "watchlists", params(WatchlistParams),
    responses((status = 200, body = [WatchlistEntry]), (status = 400, body = ErrorBody)))]
pub async fn list_watchlists(
    State(st): State<AppState>,
    ApiQuery(p): ApiQuery<WatchlistParams>,
) -> Result<Json<Vec<WatchlistEntry>>, ApiError> {
    Ok(Json(st.registry.watchlists(p.all.unwrap_or(false), st.clock.now_ms()).await?))
}

/// Adds a watchlist entry (布控). Every passage whose plate hits it while it is in force raises
/// a `watchlist_hit` event.
#[utoipa::path(post, path = "/api/v1/watchlists", tag = "watchlists", request_body = WatchlistInput,
    responses((status = 201, body = WatchlistEntry), (status = 400, body = ErrorBody)))]
pub async fn create_watchlist(
    State(st): State<AppState>,
    caller: Option<Extension<Caller>>,
    ApiJson(input): ApiJson<WatchlistInput>,
) -> Result<(StatusCode, Json<WatchlistEntry>), ApiError> {
    let now = st.clock.now_ms();
    let new = input.parse(now)?;
    let entry = st.registry.create_watchlist(&new, caller_name(&caller), now).await?;
    tracing::info!(id = entry.id, pattern = %entry.pattern, kind = entry.match_kind.as_str(), "watchlist entry added");
    Ok((StatusCode::CREATED, Json(entry)))
}

/// One watchlist entry, revoked or not.
#[utoipa::path(get, path = "/api/v1/watchlists/{id}", tag = "watchlists", params(("id" = i64, Path, description = "id")),
    responses((status = 200, body = WatchlistEntry), (status = 404, body = ErrorBody)))]
pub async fn get_watchlist(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<WatchlistEntry>, ApiError> {
    st.registry
        .watchlist(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("watchlist entry {id} not found")))
}

/// Changes a watchlist entry: reason, priority, valid_until_ms, owner, max_distance (fuzzy).
/// The pattern and kind never change: revoke the entry and add another.
#[utoipa::path(patch, path = "/api/v1/watchlists/{id}", tag = "watchlists", params(("id" = i64, Path, description = "id")),
    request_body = WatchlistPatch, responses((status = 200, body = WatchlistEntry), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_watchlist(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    caller: Option<Extension<Caller>>,
    ApiJson(patch): ApiJson<WatchlistPatch>,
) -> Result<Json<WatchlistEntry>, ApiError> {
    Ok(Json(st.registry.update_watchlist(id, |e| patch.apply(e), caller_name(&caller), st.clock.now_ms()).await?))
}

/// Revokes a watchlist entry: it hits nothing from now on and stays on record (`?all=true`).
#[utoipa::path(delete, path = "/api/v1/watchlists/{id}", tag = "watchlists", params(("id" = i64, Path, description = "id")),
    responses((status = 200, body = WatchlistEntry), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn revoke_watchlist(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    caller: Option<Extension<Caller>>,
) -> Result<Json<WatchlistEntry>, ApiError> {
    let entry = st.registry.revoke_watchlist(id, caller_name(&caller), st.clock.now_ms()).await?;
    tracing::info!(id, "watchlist entry revoked");
    Ok(Json(entry))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PassageParams {
    /// A plate, or a pattern with `*` (any run of characters) and `?` (one character).
    pub plate: Option<String>,
    /// Camera id.
    pub camera: Option<String>,
    /// Passed at or after (ms since the epoch).
    pub from: Option<i64>,
    /// Passed before (ms since the epoch).
    pub to: Option<i64>,
    /// 1–1000 (default 100).
    pub limit: Option<u32>,
    /// The previous page's `next_before`.
    pub before: Option<i64>,
}

/// One page of passages, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PassagePage {
    pub items: Vec<PassageRow>,
    /// Pass as `before` for the next page; absent on the last.
    pub next_before: Option<i64>,
}

/// The longest window a passage search by a pattern that starts with a wildcard may read.
const LEADING_WILDCARD_DAYS: i64 = 31;

fn check_window(from: Option<i64>, to: Option<i64>) -> Result<(), ApiError> {
    match (from, to) {
        (Some(f), Some(t)) if t <= f => Err(ApiError::BadRequest(format!("to: {t} is not after from {f}"))),
        _ => Ok(()),
    }
}

/// Stored passages (过车记录), newest first: by plate or plate pattern, camera, time window.
#[utoipa::path(get, path = "/api/v1/passages", tag = "watchlists", params(PassageParams),
    responses((status = 200, body = PassagePage), (status = 400, body = ErrorBody)))]
pub async fn list_passages(
    State(st): State<AppState>,
    ApiQuery(p): ApiQuery<PassageParams>,
) -> Result<Json<PassagePage>, ApiError> {
    let limit = p.limit.unwrap_or(DEFAULT_PASSAGE_LIMIT);
    if !(1..=MAX_PASSAGE_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit: {limit} is out of range 1..={MAX_PASSAGE_LIMIT}")));
    }
    check_window(p.from, p.to)?;
    let plate = p.plate.as_deref().map(|s| plate_query("plate", s, true)).transpose()?;
    if let Some(pattern) = plate.as_deref().filter(|x| x.starts_with(['*', '?'])) {
        // No index can serve a pattern that starts with a wildcard: it reads every passage of
        // its window, so the window is required and bounded.
        let from = p.from.ok_or_else(|| {
            ApiError::BadRequest(format!(
                "plate: {pattern:?} starts with a wildcard, which reads every passage: give `from` \
                 (a window of at most {LEADING_WILDCARD_DAYS} days), or start the pattern with the plate's first characters"
            ))
        })?;
        let to = p.to.unwrap_or_else(|| st.clock.now_ms());
        if to.saturating_sub(from) > LEADING_WILDCARD_DAYS * 86_400_000 {
            return Err(ApiError::BadRequest(format!(
                "plate: {pattern:?} starts with a wildcard: the window from `from` to `to` (or now) may be at most \
                 {LEADING_WILDCARD_DAYS} days"
            )));
        }
    }
    if let Some(b) = p.before
        && st.registry.passage(b).await?.is_none()
    {
        return Err(ApiError::BadRequest(format!("before: there is no passage {b}")));
    }
    let filter = PassageFilter {
        plate,
        camera_id: p.camera.filter(|c| !c.is_empty()),
        from_ms: p.from,
        to_ms: p.to,
        before_id: p.before,
        limit: limit + 1,
    };
    let mut items = st.registry.passages(&filter).await?;
    let next_before = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|r| r.id)
    } else {
        None
    };
    Ok(Json(PassagePage { items, next_before }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TrajectoryParams {
    /// Passed at or after (ms since the epoch).
    pub from: Option<i64>,
    /// Passed before (ms since the epoch).
    pub to: Option<i64>,
}

/// One vehicle's passages in time order, each with where its camera stands (at most 10,000).
#[utoipa::path(get, path = "/api/v1/vehicles/{plate}/trajectory", tag = "watchlists",
    params(("plate" = String, Path, description = "the plate, e.g. 豫A12345"), TrajectoryParams),
    responses((status = 200, body = [TrajectoryPoint]), (status = 400, body = ErrorBody)))]
pub async fn trajectory(
    State(st): State<AppState>,
    ApiPath(plate): ApiPath<String>,
    ApiQuery(p): ApiQuery<TrajectoryParams>,
) -> Result<Json<Vec<TrajectoryPoint>>, ApiError> {
    check_window(p.from, p.to)?;
    let plate = plate_query("plate", &plate, false)?;
    Ok(Json(st.registry.trajectory(&plate, p.from, p.to).await?))
}

/// Checks what a plate reader adds to a passage (per-character confidences, pictures, track,
/// frames, lane); the error names the field.
pub fn check_passage_details(p: &NewPassage, now_ms: i64) -> Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::BadRequest(m));
    // A checkpoint's clock may run a little ahead; anything else is not a time (and near
    // i64::MAX it would overflow the engine's windows).
    if !(0..=now_ms.saturating_add(24 * 3_600_000)).contains(&p.pass_time_ms) {
        return bad(format!("pass_time_ms: {} is not a time between 1970 and a day from now", p.pass_time_ms));
    }
    if let Some(r) = &p.plate_reliabilities {
        if r.len() > 16 {
            return bad(format!("plate_reliabilities: {} values; a plate has at most 16 characters", r.len()));
        }
        if let Some(x) = r.iter().find(|x| !(0.0..=1.0).contains(*x)) {
            return bad(format!("plate_reliabilities: {x} is not between 0 and 1"));
        }
    }
    for (field, v) in [("plate_image", &p.plate_image), ("context_image", &p.context_image), ("track_id", &p.track_id)]
    {
        if v.as_ref().is_some_and(|s| s.len() > 1024) {
            return bad(format!("{field}: longer than 1024 bytes"));
        }
    }
    if let Some(f) = p.frames.filter(|f| *f < 1) {
        return bad(format!("frames: {f}; at least 1"));
    }
    if let Some(l) = p.lane_no.filter(|l| !(1..=99).contains(l)) {
        return bad(format!("lane_no: {l} is out of range 1..=99"));
    }
    Ok(())
}
