//! `/api/v1/cameras`: the registry's cameras, filtered and paginated.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery};
use crate::clock::rfc3339;
use crate::config::{CameraKind, CameraStatus, Gb28181Code, Owner};
use crate::registry::{CameraFilter, CameraRow, StatusChange};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/cameras", get(list_cameras))
        .route("/api/v1/cameras/{id}", get(get_camera))
        .route("/api/v1/cameras/{id}/status-history", get(status_history))
        .route("/api/v1/cameras/{id}/ingest-history", get(ingest_history))
}

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListCamerasParams {
    /// Kinds, comma-separated: street, checkpoint, entrance, compound, rental-housing, household, shop.
    kind: Option<String>,
    /// A grid cell id; cameras in that cell or in any cell below it.
    grid_cell: Option<String>,
    /// Statuses, comma-separated: unknown, online, degraded, offline, maintenance, disabled, decommissioned.
    status: Option<String>,
    /// Owners, comma-separated: public, enterprise, resident.
    owner: Option<String>,
    /// Bounding box in WGS84 degrees: `min_lon,min_lat,max_lon,max_lat`.
    bbox: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1..=1000 (default 100).
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Position {
    /// WGS84 longitude, degrees.
    pub lon: f64,
    /// WGS84 latitude, degrees.
    pub lat: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Resolution {
    pub width: i64,
    pub height: i64,
}

/// A camera as the API shows it. Credentials never appear; `has_credentials` says whether it has some.
#[derive(Debug, Serialize, ToSchema)]
pub struct CameraView {
    pub id: String,
    pub name: String,
    /// RTSP URL (never carries credentials).
    pub url: String,
    pub has_credentials: bool,
    pub codec: String,
    pub transport: String,
    pub position: Position,
    pub mounting_height_m: f64,
    /// Degrees clockwise from north.
    pub bearing_deg: f64,
    pub hfov_deg: f64,
    pub resolution: Resolution,
    pub kind: String,
    pub owner: String,
    pub grid_cell: Option<String>,
    pub profile: String,
    pub enabled: bool,
    pub status: String,
    pub status_reason: String,
    /// RFC 3339.
    pub status_since: String,
    /// The parts of the id when it is a GB/T 28181 code.
    pub gb28181: Option<Gb28181Code>,
    /// `file:line` of the camera's configuration.
    pub config_source: String,
    pub created_at: String,
    pub updated_at: String,
    pub decommissioned_at: Option<String>,
}

impl From<CameraRow> for CameraView {
    fn from(c: CameraRow) -> Self {
        Self {
            gb28181: c.id.parse().ok(),
            id: c.id,
            name: c.name,
            url: c.url,
            has_credentials: c.has_credentials,
            codec: c.codec,
            transport: c.transport,
            position: Position { lon: c.lon, lat: c.lat },
            mounting_height_m: c.mounting_height_m,
            bearing_deg: c.bearing_deg,
            hfov_deg: c.hfov_deg,
            resolution: Resolution { width: c.width_px, height: c.height_px },
            kind: c.kind,
            owner: c.owner,
            grid_cell: c.grid_cell_id,
            profile: c.profile,
            enabled: c.enabled,
            status: c.status,
            status_reason: c.status_reason,
            status_since: rfc3339(c.status_since_ms),
            config_source: c.config_source,
            created_at: rfc3339(c.created_at_ms),
            updated_at: rfc3339(c.updated_at_ms),
            decommissioned_at: c.decommissioned_at_ms.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CameraPage {
    pub items: Vec<CameraView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A comma list of enum values, each kept once (a long list of repeats is one filter, not a
/// query with thousands of parameters).
fn parse_list<T: std::str::FromStr<Err = String> + PartialEq>(
    param: &str,
    value: &Option<String>,
) -> Result<Vec<T>, ApiError> {
    let Some(v) = value else { return Ok(Vec::new()) };
    let mut out: Vec<T> = Vec::new();
    for (i, s) in v.split(',').enumerate() {
        if i >= 256 {
            return Err(ApiError::BadRequest(format!("{param}: at most 256 values")));
        }
        let x = s
            .trim()
            .parse::<T>()
            .map_err(|e| ApiError::BadRequest(format!("{param}: {}", e.chars().take(200).collect::<String>())))?;
        if !out.contains(&x) {
            out.push(x);
        }
    }
    Ok(out)
}

fn parse_bbox(v: &str) -> Result<[f64; 4], ApiError> {
    let bad = |why: &str| {
        ApiError::BadRequest(format!("bbox: {why}; expected min_lon,min_lat,max_lon,max_lat in WGS84 degrees"))
    };
    let parts: Vec<&str> = v.split(',').collect();
    if parts.len() != 4 {
        return Err(bad(&format!("{} numbers given", parts.len())));
    }
    let mut out = [0.0; 4];
    for (i, p) in parts.iter().enumerate() {
        out[i] = p
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| bad(&format!("{p:?} is not a number")))?;
    }
    let [min_lon, min_lat, max_lon, max_lat] = out;
    if !(-180.0..=180.0).contains(&min_lon) || !(-180.0..=180.0).contains(&max_lon) {
        return Err(bad("longitude out of [-180, 180]"));
    }
    if !(-90.0..=90.0).contains(&min_lat) || !(-90.0..=90.0).contains(&max_lat) {
        return Err(bad("latitude out of [-90, 90]"));
    }
    if min_lon > max_lon || min_lat > max_lat {
        return Err(bad("min is greater than max"));
    }
    Ok(out)
}

/// Cursors are opaque to clients: the hex of the last id of the page.
fn encode_cursor(id: &str) -> String {
    id.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(c: &str) -> Result<String, ApiError> {
    let bad = || ApiError::BadRequest("cursor: not a cursor this server issued".into());
    if !c.len().is_multiple_of(2) || c.len() > 512 {
        return Err(bad());
    }
    // Byte pairs, not string slices: a cursor is client input and may hold any UTF-8.
    let nibble = |b: u8| (b as char).to_digit(16);
    let bytes = c
        .as_bytes()
        .chunks(2)
        .map(|p| Some((nibble(p[0])? << 4 | nibble(p[1])?) as u8))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    String::from_utf8(bytes).map_err(|_| bad())
}

/// List cameras.
#[utoipa::path(get, path = "/api/v1/cameras", params(ListCamerasParams), tag = "cameras",
    responses((status = 200, body = CameraPage), (status = 400, body = ErrorBody)))]
pub async fn list_cameras(
    State(st): State<AppState>,
    ApiQuery(p): ApiQuery<ListCamerasParams>,
) -> Result<Json<CameraPage>, ApiError> {
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit: {limit} is out of range 1..={MAX_LIMIT}")));
    }
    let filter = CameraFilter {
        kinds: parse_list::<CameraKind>("kind", &p.kind)?,
        owners: parse_list::<Owner>("owner", &p.owner)?,
        statuses: parse_list::<CameraStatus>("status", &p.status)?,
        grid_cell: p.grid_cell.clone(),
        bbox: p.bbox.as_deref().map(parse_bbox).transpose()?,
        after: p.cursor.as_deref().map(decode_cursor).transpose()?,
        limit,
    };
    if let Some(cell) = &p.grid_cell
        && !st.registry.grid_cell_exists(cell).await?
    {
        return Err(ApiError::BadRequest(format!("grid_cell: unknown grid cell {cell:?}")));
    }
    let page = st.registry.list_cameras(&filter).await?;
    Ok(Json(CameraPage {
        items: page.items.into_iter().map(CameraView::from).collect(),
        next_cursor: page.next_after.as_deref().map(encode_cursor),
    }))
}

/// One camera.
#[utoipa::path(get, path = "/api/v1/cameras/{id}", tag = "cameras",
    params(("id" = String, Path, description = "camera id")),
    responses((status = 200, body = CameraView), (status = 404, body = ErrorBody)))]
pub async fn get_camera(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CameraView>, ApiError> {
    match st.registry.get_camera(&id).await? {
        Some(c) => Ok(Json(c.into())),
        None => Err(ApiError::NotFound(format!("camera {id:?} not found"))),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Most recent entries to return, 1..=1000 (default 100).
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusChangeView {
    pub at: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub reason: String,
}

impl From<StatusChange> for StatusChangeView {
    fn from(s: StatusChange) -> Self {
        Self { at: rfc3339(s.at_ms), from_status: s.from_status, to_status: s.to_status, reason: s.reason }
    }
}

/// The page size of a history request, once the camera is known to exist.
async fn history_limit(st: &AppState, id: &str, p: &HistoryParams) -> Result<u32, ApiError> {
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit: {limit} is out of range 1..={MAX_LIMIT}")));
    }
    if st.registry.get_camera(id).await?.is_none() {
        return Err(ApiError::NotFound(format!("camera {id:?} not found")));
    }
    Ok(limit)
}

/// A camera's status history, newest first.
#[utoipa::path(get, path = "/api/v1/cameras/{id}/status-history", tag = "cameras",
    params(("id" = String, Path, description = "camera id"), HistoryParams),
    responses((status = 200, body = [StatusChangeView]), (status = 404, body = ErrorBody)))]
pub async fn status_history(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(p): ApiQuery<HistoryParams>,
) -> Result<Json<Vec<StatusChangeView>>, ApiError> {
    let limit = history_limit(&st, &id, &p).await?;
    Ok(Json(st.registry.status_history(&id, limit).await?.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IngestTransitionView {
    pub at: String,
    pub from_state: String,
    pub to_state: String,
    pub reason: String,
}

/// A camera's ingest state transitions (connecting, streaming, stalled, backoff, disabled), newest
/// first; identical failures in a row appear once.
#[utoipa::path(get, path = "/api/v1/cameras/{id}/ingest-history", tag = "cameras",
    params(("id" = String, Path, description = "camera id"), HistoryParams),
    responses((status = 200, body = [IngestTransitionView]), (status = 404, body = ErrorBody)))]
pub async fn ingest_history(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(p): ApiQuery<HistoryParams>,
) -> Result<Json<Vec<IngestTransitionView>>, ApiError> {
    let limit = history_limit(&st, &id, &p).await?;
    let rows = st.registry.ingest_history(&id, limit).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(at, from_state, to_state, reason)| IngestTransitionView {
                at: rfc3339(at),
                from_state,
                to_state,
                reason,
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let c = encode_cursor("豫A-cam_01");
        assert_eq!(decode_cursor(&c).unwrap(), "豫A-cam_01");
        assert!(decode_cursor("zz").is_err());
        assert!(decode_cursor("abc").is_err());
        // Not on a character boundary, a sign, multi-byte input: refused, never a panic.
        assert!(decode_cursor("aéb").is_err());
        assert!(decode_cursor("+f").is_err());
        assert!(decode_cursor("éé").is_err());
    }

    #[test]
    fn bboxes() {
        assert!(parse_bbox("113.6,34.7,113.7,34.8").is_ok());
        assert!(parse_bbox("113.6,34.7,113.7").is_err());
        assert!(parse_bbox("113.7,34.7,113.6,34.8").is_err());
        assert!(parse_bbox("a,b,c,d").is_err());
        assert!(parse_bbox("0,95,1,96").is_err());
    }
}
