//! Alerts over HTTP: listing with filters and cursor paging, one alert with its audit trail, the
//! lifecycle (acknowledge, resolve, assign, comment), alarm inputs, and the live stream (SSE)
//! that resumes from `Last-Event-ID` by replaying the stored change feed.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::desks;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::alerts::alarm::{AlarmError, AlarmInput, AlarmOutcome};
use crate::registry::{
    AlertChangeError, AlertFilter, AlertKind, AlertOp, AlertRow, AlertStatus, AuditRow, FeedRow, Severity,
};

/// How long `POST /api/v1/alarms` waits for the alert before answering 202 (the alarm is in the
/// event log by then and its alert follows).
const ALARM_WAIT: Duration = Duration::from_secs(5);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/alerts", get(list))
        .route("/api/v1/alerts/stream", get(stream))
        .route("/api/v1/alerts/stats", get(stats))
        .route("/api/v1/alerts/{id}", get(one))
        .route("/api/v1/alerts/{id}/acknowledge", post(acknowledge))
        .route("/api/v1/alerts/{id}/resolve", post(resolve))
        .route("/api/v1/alerts/{id}/assign", post(assign))
        .route("/api/v1/alerts/{id}/comments", post(comment))
        .route("/api/v1/alarms", post(alarm))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Comma list of new, acknowledged, resolved.
    pub status: Option<String>,
    /// Comma list of info, warning, major, critical.
    pub severity: Option<String>,
    /// Comma list of kinds (watchlist_hit, ring_crossing, alarm, ring_opened, camera_offline, …).
    pub kind: Option<String>,
    pub camera: Option<String>,
    pub grid_cell: Option<String>,
    /// Only the alerts that reached this duty desk (a desk's token: its own, whether asked or not).
    pub desk: Option<String>,
    /// First occurrence at or after (ms since the epoch).
    pub from: Option<i64>,
    /// First occurrence before (ms since the epoch).
    pub to: Option<i64>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<i64>,
    /// 1–500 (default 100).
    pub limit: Option<u32>,
}

/// One page of alerts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertPage {
    pub items: Vec<AlertRow>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<i64>,
}

/// A comma list of words parsed into `T`; an unknown word is a 400 naming the choices.
fn list_of<T>(
    s: &Option<String>,
    field: &str,
    parse: impl Fn(&str) -> Option<T>,
    choices: &str,
) -> Result<Vec<T>, ApiError> {
    let Some(s) = s else { return Ok(Vec::new()) };
    let words: Vec<&str> = s.split(',').map(str::trim).filter(|x| !x.is_empty()).collect();
    if words.len() > 32 {
        return Err(ApiError::BadRequest(format!("{field}: at most 32 values")));
    }
    words
        .into_iter()
        .map(|w| {
            parse(w).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "{field}: unknown value {:?}; expected one of {choices}",
                    w.chars().take(64).collect::<String>()
                ))
            })
        })
        .collect()
}

/// Alerts, newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(ListParams),
    responses((status = 200, body = AlertPage), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<AlertPage>, ApiError> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit: {limit} is out of range 1..=500")));
    }
    let desks = st.desks.now();
    let reach = match desks::scope(&desks, caller.desk.as_deref(), p.desk.as_deref())? {
        Some(desk) => {
            let model = st.geo.model().await?;
            Some(desks.area(model.as_ref(), &desk, model.cells.iter().map(|c| c.id.as_str())))
        }
        None => None,
    };
    let f = AlertFilter {
        statuses: list_of(&p.status, "status", |w| w.parse::<AlertStatus>().ok(), &AlertStatus::choices())?,
        severities: list_of(&p.severity, "severity", Severity::parse, "info, warning, major, critical")?,
        kinds: list_of(&p.kind, "kind", |w| w.parse::<AlertKind>().ok(), &AlertKind::choices())?,
        camera: p.camera,
        grid_cell: p.grid_cell,
        from_ms: p.from,
        to_ms: p.to,
        before_id: p.cursor,
        reach,
        limit: limit + 1,
    };
    let mut items = st.registry.list_alerts(&f).await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|a| a.id)
    } else {
        None
    };
    Ok(Json(AlertPage { items, next_cursor }))
}

/// An alert and its audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertDetail {
    pub alert: AlertRow,
    pub audit: Vec<AuditRow>,
}

/// One alert with its audit trail (every change: who, when, what).
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts", params(("id" = i64, Path, description = "alert id")),
    responses((status = 200, body = AlertDetail), (status = 404, body = ErrorBody)))]
pub async fn one(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<AlertDetail>, ApiError> {
    let alert = st.registry.get_alert(id).await?.ok_or_else(|| ApiError::NotFound(format!("alert {id} not found")))?;
    desks::check_reached(&st, &caller, &alert).await?;
    Ok(Json(AlertDetail { audit: st.registry.alert_audit(id).await?, alert }))
}

/// An operator's change goes through the alert service (the only writer of alerts).
pub(super) async fn operate(st: &AppState, caller: &Caller, id: i64, op: AlertOp) -> Result<Json<AlertRow>, ApiError> {
    // A desk's operator handles the alerts that reached the desk, no other.
    desks::check_reached_id(st, caller, id).await?;
    let row = st.alerts.operate(id, op, &caller.name).await.map_err(|e| match e {
        AlertChangeError::NotFound(_) => ApiError::NotFound(e.to_string()),
        AlertChangeError::Conflict { .. } => ApiError::Conflict(e.to_string()),
        AlertChangeError::Registry(r) => r.into(),
    })?;
    Ok(Json(row))
}

/// Acknowledges a new alert (stops its escalation).
#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "alerts", params(("id" = i64, Path, description = "alert id")),
    responses((status = 200, body = AlertRow), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn acknowledge(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<AlertRow>, ApiError> {
    operate(&st, &caller, id, AlertOp::Acknowledge).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// What was done.
    pub note: String,
}

/// Resolves an alert with a note.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/resolve", tag = "alerts", params(("id" = i64, Path, description = "alert id")),
    request_body = ResolveBody, responses((status = 200, body = AlertRow), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn resolve(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<ResolveBody>,
) -> Result<Json<AlertRow>, ApiError> {
    operate(&st, &caller, id, AlertOp::Resolve { note: b.note }).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    pub to: String,
}

/// Assigns an alert to someone.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/assign", tag = "alerts", params(("id" = i64, Path, description = "alert id")),
    request_body = AssignBody, responses((status = 200, body = AlertRow), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn assign(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<AssignBody>,
) -> Result<Json<AlertRow>, ApiError> {
    if b.to.trim().is_empty() {
        return Err(ApiError::BadRequest("to: empty".into()));
    }
    operate(&st, &caller, id, AlertOp::Assign { to: b.to.trim().into() }).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    pub text: String,
}

/// Adds a comment to an alert's trail.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/comments", tag = "alerts", params(("id" = i64, Path, description = "alert id")),
    request_body = CommentBody, responses((status = 200, body = AlertRow), (status = 404, body = ErrorBody)))]
pub async fn comment(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<CommentBody>,
) -> Result<Json<AlertRow>, ApiError> {
    if b.text.trim().is_empty() {
        return Err(ApiError::BadRequest("text: empty".into()));
    }
    operate(&st, &caller, id, AlertOp::Comment { text: b.text }).await
}

/// What the engine held back, the alert service's lanes and writes, and delivery to webhook
/// receivers and MQTT.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertStats {
    pub engine: crate::alerts::engine::EngineStats,
    pub service: crate::alerts::service::ServiceStats,
    pub webhooks: Vec<crate::alerts::webhooks::WebhookState>,
    pub mqtt: Option<crate::alerts::mqtt::MqttState>,
    /// The subscriber of patrol units' positions on the `[mqtt]` broker
    /// (`<prefix>/units/<id>/position`).
    pub unit_positions: Option<crate::app::positions::PositionsState>,
    /// Changes not yet delivered to every webhook receiver (the sum of their backlogs).
    pub outbox_pending: i64,
}

/// Alert engine and delivery counters.
#[utoipa::path(get, path = "/api/v1/alerts/stats", tag = "alerts", responses((status = 200, body = AlertStats)))]
pub async fn stats(State(st): State<AppState>) -> Result<Json<AlertStats>, ApiError> {
    let webhooks = st.webhooks.states();
    Ok(Json(AlertStats {
        engine: st.alerts.engine_stats(),
        service: st.alerts.stats(),
        outbox_pending: webhooks.iter().map(|w| w.pending).sum(),
        webhooks,
        mqtt: st.mqtt.as_ref().and_then(|m| m.lock().ok().map(|s| s.clone())),
        unit_positions: st.unit_positions.as_ref().and_then(|m| m.lock().ok().map(|s| s.clone())),
    }))
}

/// Accepted: stored in the event log; the alert follows.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlarmAccepted {
    pub status: &'static str,
    /// The alarm's position in the event log.
    pub event: i64,
}

/// Raises an alarm alert linked to the cameras that see the place (finest DORI level first).
/// The alarm is stored in the event log first; the answer is its alert (201; on a standby node of
/// a cluster, once the node that writes alerts has raised it), or 202 when the alert cannot be
/// stored within 5 s (it follows), or 409 when it raised nothing (every camera that sees the place
/// is in maintenance; a standby cannot tell and answers 202). An `Idempotency-Key` header makes a retried request the
/// same alarm.
#[utoipa::path(post, path = "/api/v1/alarms", tag = "alerts", request_body = AlarmInput,
    responses((status = 201, body = AlertRow), (status = 202, body = AlarmAccepted), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn alarm(
    State(st): State<AppState>,
    headers: HeaderMap,
    ApiJson(a): ApiJson<AlarmInput>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::trim).filter(|k| !k.is_empty());
    let outcome = crate::alerts::alarm::raise(&st.alerts, &st.geo, st.clock.as_ref(), &a, key, ALARM_WAIT)
        .await
        .map_err(|e| match e {
            AlarmError::Invalid(m) => ApiError::BadRequest(m),
            AlarmError::Store(r) => r.into(),
        })?;
    Ok(match outcome {
        AlarmOutcome::Raised(row) => (axum::http::StatusCode::CREATED, Json(*row)).into_response(),
        AlarmOutcome::Accepted { position } => {
            (axum::http::StatusCode::ACCEPTED, Json(AlarmAccepted { status: "accepted", event: position }))
                .into_response()
        }
        AlarmOutcome::HeldBack { alarm_id } => {
            return Err(ApiError::Conflict(format!(
                "alarm {alarm_id} raised no alert: every camera that sees its place is in maintenance"
            )));
        }
    })
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StreamParams {
    /// Resume after this feed sequence number (as the `Last-Event-ID` header does).
    pub after: Option<i64>,
    /// For browsers' EventSource, which cannot send headers.
    pub access_token: Option<String>,
    /// Only the changes of alerts that reached this duty desk (a desk's token: its own, whether
    /// asked or not). An alert's first change on a desk's stream is the one that brought it there
    /// (raised in the desk's area, or escalated to it).
    pub desk: Option<String>,
}

fn event_of(row: &FeedRow) -> Event {
    Event::default().id(row.seq.to_string()).event("alert").data(
        serde_json::json!({"seq": row.seq, "change": row.change, "at_ms": row.at_ms, "alert": row.alert}).to_string(),
    )
}

/// Live alert changes as Server-Sent Events (`event: alert`, `id:` the feed sequence). A client
/// that reconnects with `Last-Event-ID` (or `?after=`) first gets every change it missed, in
/// order, from the store, then the live feed. A slow client only delays itself.
#[utoipa::path(get, path = "/api/v1/alerts/stream", tag = "alerts", params(StreamParams),
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream")))]
pub async fn stream(
    State(st): State<AppState>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<StreamParams>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let own = caller.as_ref().and_then(|c| c.desk.clone());
    let desk = match desks::scope(&st.desks.now(), own.as_deref(), p.desk.as_deref())? {
        Some(d) => Some(desks::DeskFilter::new(&st, d).await?),
        None => None,
    };
    // A place among the streams this node serves, held until the stream's task ends.
    let slot = st.streams.admit().map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let from_header =
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|s| s.trim().parse::<i64>().ok());
    // Subscribe first, then read the store: nothing committed in between is lost.
    let mut live = st.alerts.subscribe();
    let registry = st.registry.clone();
    let head = registry.latest_feed_seq().await?;
    // A client without a position starts at the live edge; one further back than the replay
    // bound resumes at the bound, told so by a first `gap` event.
    let asked = from_header.or(p.after).map_or(head, |n| n.max(0));
    let max_replay = st.streams.max_replay();
    let last = asked.max(head - max_replay);
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(256);
    if last > asked {
        let gap = serde_json::json!({"after": asked, "resumed_after": last, "max_replay": max_replay});
        let _ = tx.try_send(Event::default().event("gap").data(gap.to_string()));
    }
    let token = caller.map(|c| c.token_hash.clone());
    Ok(live_stream(&st, token, slot, rx, async move { feed_client(registry, &mut live, last, desk, tx).await }))
}

/// A live stream's body: `feed` runs on a task of its own, holding the stream's place, until it
/// ends, the app closes or the token (`token_hash`) is revoked; what it sends on `rx`'s channel
/// is the body. A comment every 5 s keeps proxies from closing an idle stream, and is how the
/// server notices a client that left without a word (a write fails): its place is given back.
pub(super) fn live_stream<F: std::future::Future<Output = ()> + Send + 'static>(
    st: &AppState,
    token_hash: Option<String>,
    slot: crate::alerts::streams::StreamSlot,
    rx: tokio::sync::mpsc::Receiver<Event>,
    feed: F,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>> + use<F>> {
    let closing = st.closing.clone();
    let gate = st.streams.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let revoked = async {
            match token_hash {
                Some(t) => gate.revoked(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = closing.cancelled() => {}
            _ = revoked => {}
            _ = feed => {}
        }
    });
    let events =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx)) });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(5)))
}

/// Sends one client every feed row after `last`: from the store, then live; back to the store
/// whenever the live feed skips (this client lagged). Returns when the client is gone.
async fn feed_client(
    registry: crate::registry::Registry,
    live: &mut tokio::sync::broadcast::Receiver<FeedRow>,
    mut last: i64,
    mut desk: Option<desks::DeskFilter>,
    tx: tokio::sync::mpsc::Sender<Event>,
) {
    {
        loop {
            // Catch up from the store.
            loop {
                let rows = match registry.feed_after(last, 500).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "SSE replay failed");
                        return;
                    }
                };
                let n = rows.len();
                for r in rows {
                    last = r.seq;
                    if let Some(d) = desk.as_mut()
                        && !d.passes(&r.alert).await
                    {
                        continue;
                    }
                    if tx.send(event_of(&r)).await.is_err() {
                        return;
                    }
                }
                if n < 500 {
                    break;
                }
            }
            // Live, until a gap (lagged) sends us back to the store.
            loop {
                // A client that went away ends its task now, not at the next change.
                let next = tokio::select! {
                    r = live.recv() => r,
                    _ = tx.closed() => return,
                };
                match next {
                    Ok(r) if r.seq <= last => continue,
                    Ok(r) if r.seq == last + 1 => {
                        last = r.seq;
                        if let Some(d) = desk.as_mut()
                            && !d.passes(&r.alert).await
                        {
                            continue;
                        }
                        if tx.send(event_of(&r)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    }
}
