//! Maintenance endpoints for crews: work orders, maintenance mode, availability, the report, and
//! the below-HD cameras to replace.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::clock::Millis;
use crate::geo::dori::DoriLevel;
use crate::maintenance::availability::{self, Availability, CameraAvailability, RepeatOffender};
use crate::maintenance::orders::RoundReport;
use crate::maintenance::replace::ReplacementCandidate;
use crate::maintenance::report::{self, MaintenanceReport};
use crate::registry::{NewOrder, OrderChangeError, OrderFilter, OrderState, WorkOrder};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/maintenance/orders", get(list_orders).post(open_order))
        .route("/api/v1/maintenance/orders/round", post(round))
        .route("/api/v1/maintenance/orders/{id}", get(get_order))
        .route("/api/v1/maintenance/orders/{id}/notes", post(note))
        .route("/api/v1/maintenance/orders/{id}/assign", post(assign))
        .route("/api/v1/maintenance/orders/{id}/close", post(close))
        .route("/api/v1/maintenance/cameras/{id}/mode", post(set_mode))
        .route("/api/v1/maintenance/availability", get(get_availability))
        .route("/api/v1/maintenance/replacements", get(replacements))
        .route("/api/v1/maintenance/report", get(get_report))
}

impl From<OrderChangeError> for ApiError {
    fn from(e: OrderChangeError) -> Self {
        match e {
            OrderChangeError::NotFound(_) => ApiError::NotFound(e.to_string()),
            OrderChangeError::Conflict(m) => ApiError::Conflict(m),
            OrderChangeError::Registry(r) => r.into(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OrderQuery {
    /// States, comma-separated: open, closed, verified (default: all).
    pub state: Option<String>,
    pub camera: Option<String>,
    pub crew: Option<String>,
    /// At most this many (default 200, at most 1000).
    pub limit: Option<u32>,
}

/// Work orders, open ones first, most urgent first (priority, due time); each with its log.
#[utoipa::path(get, path = "/api/v1/maintenance/orders", tag = "maintenance", params(OrderQuery),
    responses((status = 200, body = Vec<WorkOrder>), (status = 400, body = ErrorBody)))]
pub async fn list_orders(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<OrderQuery>,
) -> Result<Json<Vec<WorkOrder>>, ApiError> {
    let mut states = Vec::new();
    for s in q.state.iter().flat_map(|s| s.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
        states.push(s.parse::<OrderState>().map_err(ApiError::BadRequest)?);
    }
    let limit = q.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit {limit} is out of range 1..=1000")));
    }
    let f = OrderFilter { states, camera: q.camera, crew: q.crew, since_ms: None, limit };
    let mut v = st.registry.list_orders(&f, true).await?;
    report::mark_overdue(&mut v, st.clock.now_ms());
    Ok(Json(v))
}

/// One work order with its log.
#[utoipa::path(get, path = "/api/v1/maintenance/orders/{id}", tag = "maintenance", params(("id" = i64, Path, description = "order id")),
    responses((status = 200, body = WorkOrder), (status = 404, body = ErrorBody)))]
pub async fn get_order(State(st): State<AppState>, ApiPath(id): ApiPath<i64>) -> Result<Json<WorkOrder>, ApiError> {
    let mut o = st
        .registry
        .get_order(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("work order {id} does not exist")))?;
    report::mark_overdue(std::slice::from_mut(&mut o), st.clock.now_ms());
    Ok(Json(o))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenOrderBody {
    pub camera_id: String,
    /// Why: e.g. `vandalism`, `quality:blur`, `offline`.
    pub cause: String,
    pub detail: String,
}

/// Opens an order by hand (a crew or an operator saw something the system did not). Its crew,
/// priority and due time follow the same rules as the system's.
#[utoipa::path(post, path = "/api/v1/maintenance/orders", tag = "maintenance", request_body = OpenOrderBody,
    responses((status = 200, body = WorkOrder), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn open_order(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(b): ApiJson<OpenOrderBody>,
) -> Result<Json<WorkOrder>, ApiError> {
    let cause = b.cause.trim();
    if cause.is_empty() || cause.len() > 64 {
        return Err(ApiError::BadRequest("cause: 1 to 64 characters".into()));
    }
    if st.registry.get_camera(&b.camera_id).await?.is_none() {
        return Err(ApiError::NotFound(format!("camera {} is not in the registry", b.camera_id)));
    }
    let now = st.clock.now_ms();
    let (priority, crew, due_at_ms) =
        st.orders.placement(&b.camera_id, now).await.map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let o = NewOrder {
        camera_id: b.camera_id.clone(),
        cause: cause.into(),
        priority,
        crew,
        detail: b.detail,
        due_at_ms,
        author: caller.name,
    };
    let Some(id) = st.registry.open_order(&o, now).await? else {
        return Err(ApiError::Conflict(format!("camera {} already has an active work order for {cause}", b.camera_id)));
    };
    get_order(State(st), ApiPath(id)).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    pub text: String,
    /// Path or URL of a photo the crew took.
    pub photo: Option<String>,
}

/// A crew's note on an order, with an optional photo path.
#[utoipa::path(post, path = "/api/v1/maintenance/orders/{id}/notes", tag = "maintenance", params(("id" = i64, Path, description = "order id")),
    request_body = NoteBody, responses((status = 200, body = WorkOrder), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn note(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<NoteBody>,
) -> Result<Json<WorkOrder>, ApiError> {
    if b.text.trim().is_empty() && b.photo.is_none() {
        return Err(ApiError::BadRequest("a note needs text or a photo".into()));
    }
    if b.text.len() > 4000 || b.photo.as_ref().is_some_and(|p| p.len() > 1000) {
        return Err(ApiError::BadRequest("text at most 4000 characters, photo path at most 1000".into()));
    }
    st.registry.order_note(id, &caller.name, b.text.trim(), b.photo.as_deref(), st.clock.now_ms()).await?;
    get_order(State(st), ApiPath(id)).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    pub crew: String,
}

/// Hands an order to another crew.
#[utoipa::path(post, path = "/api/v1/maintenance/orders/{id}/assign", tag = "maintenance", params(("id" = i64, Path, description = "order id")),
    request_body = AssignBody, responses((status = 200, body = WorkOrder), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn assign(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<AssignBody>,
) -> Result<Json<WorkOrder>, ApiError> {
    if b.crew.trim().is_empty() {
        return Err(ApiError::BadRequest("crew: the crew's id".into()));
    }
    st.registry.assign_order(id, b.crew.trim(), &caller.name, st.clock.now_ms()).await?;
    get_order(State(st), ApiPath(id)).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseBody {
    /// What was done.
    pub note: String,
    /// Who did it (default: the token's name).
    pub by: Option<String>,
}

/// A crew closes an order; the system verifies it (the camera must stay healthy for the
/// verification time, or the order reopens).
#[utoipa::path(post, path = "/api/v1/maintenance/orders/{id}/close", tag = "maintenance", params(("id" = i64, Path, description = "order id")),
    request_body = CloseBody, responses((status = 200, body = WorkOrder), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn close(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<CloseBody>,
) -> Result<Json<WorkOrder>, ApiError> {
    let by = b.by.filter(|s| !s.trim().is_empty()).unwrap_or(caller.name);
    st.registry.close_order(id, &by, b.note.trim(), st.clock.now_ms()).await?;
    get_order(State(st), ApiPath(id)).await
}

/// Runs a work-order round now (opening, verification); rounds also run on their own every
/// `orders_interval_s` while cameras are ingested.
#[utoipa::path(post, path = "/api/v1/maintenance/orders/round", tag = "maintenance",
    responses((status = 200, body = RoundReport)))]
pub async fn round(State(st): State<AppState>) -> Result<Json<RoundReport>, ApiError> {
    Ok(Json(st.orders.round().await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModeBody {
    /// `maintenance` (a crew is working on it: its alerts are suppressed) or `service` (back).
    pub mode: String,
    pub reason: String,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ModeReply {
    pub camera_id: String,
    pub status: String,
}

/// Puts a camera into maintenance or back into service; recorded in its status history.
#[utoipa::path(post, path = "/api/v1/maintenance/cameras/{id}/mode", tag = "maintenance", params(("id" = String, Path, description = "camera id")),
    request_body = ModeBody, responses((status = 200, body = ModeReply), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_mode(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ModeBody>,
) -> Result<Json<ModeReply>, ApiError> {
    let on = match b.mode.as_str() {
        "maintenance" => true,
        "service" => false,
        m => return Err(ApiError::BadRequest(format!("mode {m:?}: one of \"maintenance\" or \"service\""))),
    };
    let Some(row) = st.registry.get_camera(&id).await? else {
        return Err(ApiError::NotFound(format!("camera {id} is not in the registry")));
    };
    if row.status == "disabled" || row.status == "decommissioned" {
        return Err(ApiError::Conflict(format!(
            "camera {id} is {}: maintenance applies to cameras in service",
            row.status
        )));
    }
    let reason = format!("{} by {}: {}", b.mode, caller.name, b.reason.trim());
    // The status change is an event: the alert service and the ring watcher follow it.
    let status = st.health.set_maintenance(&id, on, &reason, st.clock.now_ms()).await?;
    Ok(Json(ModeReply { camera_id: id, status: status.as_str().into() }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WindowQuery {
    /// Window start, Unix ms (default: `days` before `to_ms`).
    pub from_ms: Option<Millis>,
    /// Window end, Unix ms (default: now).
    pub to_ms: Option<Millis>,
    /// Window length in days when `from_ms` is not given (default 30).
    pub days: Option<f64>,
    /// A camera counts as a repeat offender from this many outages or work orders (default 3).
    pub min_failures: Option<u32>,
    /// DORI level for replacement planning (default `observe`).
    pub level: Option<String>,
}

fn window(st: &AppState, q: &WindowQuery) -> Result<(Millis, Millis), ApiError> {
    let to = q.to_ms.unwrap_or_else(|| st.clock.now_ms());
    let days = q.days.unwrap_or(30.0);
    if !(days > 0.0 && days <= 3660.0) {
        return Err(ApiError::BadRequest(format!("days {days} is out of range (0, 3660]")));
    }
    let from = q.from_ms.unwrap_or(to - (days * 86_400_000.0) as Millis);
    if from >= to {
        return Err(ApiError::BadRequest(format!("from_ms {from} is not before to_ms {to}")));
    }
    Ok((from, to))
}

fn level(q: &WindowQuery) -> Result<DoriLevel, ApiError> {
    q.level.as_deref().unwrap_or("observe").parse::<DoriLevel>().map_err(ApiError::BadRequest)
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct AvailabilityReply {
    #[serde(flatten)]
    pub availability: Availability,
    pub worst: Vec<CameraAvailability>,
    pub repeat_offenders: Vec<RepeatOffender>,
}

/// Uptime per camera, grid cell, ring and owner over a window, from the status history; the
/// worst cameras and the repeat offenders.
#[utoipa::path(get, path = "/api/v1/maintenance/availability", tag = "maintenance", params(WindowQuery),
    responses((status = 200, body = AvailabilityReply), (status = 400, body = ErrorBody)))]
pub async fn get_availability(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> Result<Json<AvailabilityReply>, ApiError> {
    let (from, to) = window(&st, &q)?;
    let (a, _) = report::availability(&st.registry, &st.geo, from, to).await?;
    let per_cam = report::orders_per_camera(&st.registry, from).await?;
    Ok(Json(AvailabilityReply {
        worst: availability::worst(&a, 10),
        repeat_offenders: availability::repeat_offenders(&a, &per_cam, q.min_failures.unwrap_or(3)),
        availability: a,
    }))
}

/// Below-HD cameras in service with the road only each one sees (lost without a replacement).
#[utoipa::path(get, path = "/api/v1/maintenance/replacements", tag = "maintenance", params(WindowQuery),
    responses((status = 200, body = Vec<ReplacementCandidate>), (status = 400, body = ErrorBody)))]
pub async fn replacements(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> Result<Json<Vec<ReplacementCandidate>>, ApiError> {
    let level = level(&q)?;
    let m = st.geo.model().await?;
    let v = tokio::task::spawn_blocking(move || crate::maintenance::replace::candidates(&m, level))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(v))
}

/// The crews' report: cameras by status, active orders, availability, repeat offenders,
/// replacement candidates.
#[utoipa::path(get, path = "/api/v1/maintenance/report", tag = "maintenance", params(WindowQuery),
    responses((status = 200, body = MaintenanceReport), (status = 400, body = ErrorBody)))]
pub async fn get_report(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> Result<Json<MaintenanceReport>, ApiError> {
    let (from, _) = window(&st, &q)?;
    let r =
        report::build(&st.registry, &st.geo, st.clock.now_ms(), from, level(&q)?, q.min_failures.unwrap_or(3)).await?;
    Ok(Json(r))
}
