//! Camera ingest health, snapshots, Prometheus metrics and the admin reload.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::ApiPath;
use crate::app::{AppError, ReloadReport};
use crate::ingest::{Frame, HealthSnapshot, Ingest, PixelFormat};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/cameras/{id}/health", get(camera_health))
        .route("/api/v1/health/cameras", get(all_health))
        .route("/api/v1/cameras/{id}/snapshot.jpg", get(snapshot))
        .route("/metrics", get(metrics))
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/maintenance/quality", get(quality))
        .route("/api/v1/admin/reload", post(reload))
}

fn ingest(st: &AppState) -> Result<&Arc<Ingest>, ApiError> {
    st.ingest.as_ref().ok_or_else(|| ApiError::Unavailable("ingest is off on this node (serve --no-ingest)".into()))
}

async fn known_camera(st: &AppState, id: &str) -> Result<(), ApiError> {
    match st.registry.get_camera(id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound(format!("camera {id:?} not found"))),
    }
}

/// One camera's ingest health.
#[utoipa::path(get, path = "/api/v1/cameras/{id}/health", tag = "health",
    params(("id" = String, Path, description = "camera id")),
    responses((status = 200, body = HealthSnapshot), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "ingest is off on this node (`serve --no-ingest`)")))]
pub async fn camera_health(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<HealthSnapshot>, ApiError> {
    known_camera(&st, &id).await?;
    match ingest(&st)?.health(&id) {
        Some(h) => Ok(Json(h)),
        None => Err(ApiError::Conflict(format!("camera {id:?} is not being ingested (disabled or decommissioned)"))),
    }
}

/// Every ingested camera's health, worst first (backoff, stalled, connecting, streaming).
#[utoipa::path(get, path = "/api/v1/health/cameras", tag = "health", responses((status = 200, body = [HealthSnapshot]),
    (status = 503, body = ErrorBody, description = "ingest is off on this node (`serve --no-ingest`)")))]
pub async fn all_health(State(st): State<AppState>) -> Result<Json<Vec<HealthSnapshot>>, ApiError> {
    Ok(Json(ingest(&st)?.all_health()))
}

/// The last frame the camera delivered, as JPEG.
#[utoipa::path(get, path = "/api/v1/cameras/{id}/snapshot.jpg", tag = "health",
    params(("id" = String, Path, description = "camera id")),
    responses((status = 200, content_type = "image/jpeg", description = "the last frame"), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "ingest is off on this node (`serve --no-ingest`)")))]
pub async fn snapshot(State(st): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Response, ApiError> {
    known_camera(&st, &id).await?;
    let Some(frame) = ingest(&st)?.last_frame(&id) else {
        return Err(ApiError::NotFound(format!("camera {id:?} has delivered no frame yet")));
    };
    let jpeg = tokio::task::spawn_blocking(move || encode_jpeg(&frame))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::Internal)?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "no-store")], jpeg).into_response())
}

pub fn encode_jpeg(f: &Frame) -> Result<Vec<u8>, String> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    let color = match f.format {
        PixelFormat::Gray8 => image::ExtendedColorType::L8,
        PixelFormat::Rgb24 => image::ExtendedColorType::Rgb8,
    };
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .write_image(&f.data, f.width, f.height, color)
        .map_err(|e| format!("jpeg: {e}"))?;
    Ok(out)
}

/// Re-reads the configuration directory (as SIGHUP does); only changed cameras restart.
#[utoipa::path(post, path = "/api/v1/admin/reload", tag = "admin",
    responses((status = 200, body = ReloadReport), (status = 400, body = ErrorBody)))]
pub async fn reload(State(st): State<AppState>) -> Result<Json<ReloadReport>, ApiError> {
    match crate::app::reload(&st).await {
        Ok(r) => Ok(Json(r)),
        Err(AppError::Config(errs)) => {
            Err(ApiError::BadRequest(format!("configuration refused, nothing changed:\n{errs}")))
        }
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

/// Prometheus text exposition, one series per camera. Written by hand: the format is a few
/// lines and the values already live in the health records.
pub async fn metrics(State(st): State<AppState>) -> Response {
    let mut out = String::new();
    if let Some(ingest) = &st.ingest {
        render_metrics(ingest, &mut out);
    }
    if let Some(d) = &st.detect {
        render_detect_metrics(&d.stats(), &mut out);
    }
    if let Some(o) = &st.onvif_motion {
        render_onvif_metrics(&o.status(), &mut out);
    }
    render_alert_metrics(&st, &mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// One unlabelled series.
pub(crate) fn series(out: &mut String, name: &str, kind: &str, help: &str, v: f64) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"));
}

/// The event log and the alert path: what could not be read, what failed to store, what is
/// still waiting per lane, and delivery to webhook receivers and MQTT.
fn render_alert_metrics(st: &AppState, out: &mut String) {
    let s = st.alerts.stats();
    let help = "stored events that cannot be read (unknown kind, malformed payload): skipped and kept in the log";
    series(out, "tianwang_events_undecodable_total", "counter", help, st.log.undecodable() as f64);
    if let Some(j) = st.log.jetstream() {
        let help = "events the relay published to NATS JetStream (acknowledged by it)";
        series(out, "tianwang_jetstream_relayed_total", "counter", help, j.relayed_events as f64);
        let help = "the last event-log position JetStream acknowledged from this node's relay";
        series(out, "tianwang_jetstream_relayed_position", "gauge", help, j.relayed_position as f64);
        let help = "failed relay rounds (NATS down or refusing; tried again)";
        series(out, "tianwang_jetstream_relay_failures_total", "counter", help, j.relay_failures as f64);
        let name = "tianwang_jetstream_reads_total";
        out.push_str(&format!(
            "# HELP {name} reads of the event log, by where they came from (the registry while NATS is down)\n# TYPE {name} counter\n{name}{{source=\"jetstream\"}} {}\n{name}{{source=\"registry\"}} {}\n",
            j.reads_jetstream, j.reads_registry
        ));
        let help = "messages that did not follow what a reader had (read from the registry instead)";
        series(out, "tianwang_jetstream_gaps_total", "counter", help, j.gaps as f64);
    }
    let help = "failed writes of alert changes (each tried again until stored)";
    series(out, "tianwang_alert_write_failures_total", "counter", help, s.write_failures as f64);
    series(
        out,
        "tianwang_alert_writes_failing",
        "gauge",
        "1 while a write of alert changes keeps failing",
        f64::from(u8::from(s.retrying)),
    );
    out.push_str("# HELP tianwang_alert_events_total events applied by the alert service\n# TYPE tianwang_alert_events_total counter\n");
    for (lane, n) in [("urgent", s.events_urgent), ("normal", s.events_normal), ("bulk", s.events_bulk)] {
        out.push_str(&format!("tianwang_alert_events_total{{lane=\"{lane}\"}} {n}\n"));
    }
    out.push_str(
        "# HELP tianwang_alert_backlog events appended and not yet applied\n# TYPE tianwang_alert_backlog gauge\n",
    );
    for (lane, n) in [("urgent", s.lag_urgent), ("normal", s.lag_normal), ("bulk", s.lag_bulk)] {
        out.push_str(&format!("tianwang_alert_backlog{{lane=\"{lane}\"}} {n}\n"));
    }
    let hooks = st.webhooks.states();
    if !hooks.is_empty() {
        out.push_str(
            "# HELP tianwang_webhook_pending alert changes not yet delivered\n# TYPE tianwang_webhook_pending gauge\n",
        );
        for h in &hooks {
            out.push_str(&format!("tianwang_webhook_pending{{webhook=\"{}\"}} {}\n", esc(&h.name), h.pending));
        }
        out.push_str("# HELP tianwang_webhook_failures failed attempts in a row on the current change\n# TYPE tianwang_webhook_failures gauge\n");
        for h in &hooks {
            out.push_str(&format!("tianwang_webhook_failures{{webhook=\"{}\"}} {}\n", esc(&h.name), h.failures));
        }
    }
    if let Some(m) = st.mqtt.as_ref().and_then(|m| m.lock().ok().map(|s| s.clone())) {
        series(
            out,
            "tianwang_mqtt_connected",
            "gauge",
            "1 while connected to the broker",
            f64::from(u8::from(m.connected)),
        );
        series(
            out,
            "tianwang_mqtt_acknowledged_total",
            "counter",
            "alert changes the broker acknowledged",
            m.acknowledged as f64,
        );
    }
}

/// Detector series: `tianwang_detector_*{detector="motion"|"plates"}`.
pub(crate) fn render_detect_metrics(s: &crate::detect::service::DetectStats, out: &mut String) {
    type DSeries = (&'static str, &'static str, &'static str, fn(&crate::detect::service::DetectorStats) -> f64);
    let series: &[DSeries] = &[
        ("tianwang_detector_frames_total", "counter", "frames run through the detector", |d| d.frames as f64),
        ("tianwang_detector_skipped_total", "counter", "frames skipped because a newer one was waiting", |d| {
            d.skipped as f64
        }),
        ("tianwang_detector_inference_ms_p50", "gauge", "median model call time (last 1,024 calls)", |d| {
            d.inference_ms_p50
        }),
        ("tianwang_detector_inference_ms_p99", "gauge", "99th percentile model call time", |d| d.inference_ms_p99),
        ("tianwang_detector_queue_depth", "gauge", "frames waiting in the detector's camera queues", |d| {
            d.queue_depth as f64
        }),
        ("tianwang_detector_errors_total", "counter", "failed model calls", |d| d.errors as f64),
    ];
    for (name, kind, help, f) in series {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for d in &s.detectors {
            out.push_str(&format!("{name}{{detector=\"{}\"}} {}\n", esc(&d.name), f(d)));
        }
    }
    out.push_str(&format!(
        "# HELP tianwang_motion_events_total motion events stored\n# TYPE tianwang_motion_events_total counter\ntianwang_motion_events_total {}\n",
        s.motion_events
    ));
    out.push_str(&format!(
        "# HELP tianwang_passages_total passages read and stored\n# TYPE tianwang_passages_total counter\ntianwang_passages_total {}\n",
        s.passages
    ));
}

/// ONVIF motion subscriptions: `tianwang_onvif_motion_*{camera="…"}`.
pub(crate) fn render_onvif_metrics(all: &[crate::detect::onvif_motion::OnvifMotionStatus], out: &mut String) {
    if all.is_empty() {
        return;
    }
    type OSeries =
        (&'static str, &'static str, &'static str, fn(&crate::detect::onvif_motion::OnvifMotionStatus) -> f64);
    let series: &[OSeries] = &[
        ("tianwang_onvif_motion_subscribed", "gauge", "1 while the camera's ONVIF event subscription runs", |s| {
            f64::from(u8::from(s.state == crate::detect::onvif_motion::SubscriptionState::Subscribed))
        }),
        ("tianwang_onvif_motion_subscriptions_total", "counter", "ONVIF event subscriptions made", |s| {
            s.subscriptions as f64
        }),
        ("tianwang_onvif_motion_events_total", "counter", "motion events from the device's own detection", |s| {
            s.motion_events as f64
        }),
    ];
    for (name, kind, help, f) in series {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for s in all {
            out.push_str(&format!("{name}{{camera=\"{}\"}} {}\n", esc(&s.camera), f(s)));
        }
    }
}

/// Detector statistics: per detector frames, skipped frames, inference time p50/p99, queue depth;
/// the state of each camera's ONVIF motion subscription.
#[utoipa::path(get, path = "/api/v1/stats", tag = "health",
    responses((status = 200, body = crate::detect::service::DetectStats)))]
pub async fn stats(State(st): State<AppState>) -> Json<crate::detect::service::DetectStats> {
    let mut s = st.detect.as_ref().map(|d| d.stats()).unwrap_or_default();
    s.onvif_motion = st.onvif_motion.as_ref().map(|o| o.status()).unwrap_or_default();
    Json(s)
}

/// Video quality per camera (cameras with faults first): faults raised now, each check's
/// hysteresis state, the last measured values (mean luma, contrast, sharpness, colour cast, noise,
/// change from the previous sample, occluded share, correlation with the reference view).
#[utoipa::path(get, path = "/api/v1/maintenance/quality", tag = "maintenance",
    responses((status = 200, body = Vec<crate::maintenance::service::CameraQuality>)))]
pub async fn quality(State(st): State<AppState>) -> Json<Vec<crate::maintenance::service::CameraQuality>> {
    Json(st.quality.as_ref().map(|q| q.quality()).unwrap_or_default())
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Metric name, type, help text, and how to read it from a camera's health.
type Series = (&'static str, &'static str, &'static str, fn(&HealthSnapshot) -> f64);

pub(crate) fn render_metrics(ingest: &Ingest, out: &mut String) {
    let all = ingest.all_health();
    let series: &[Series] = &[
        ("tianwang_camera_up", "gauge", "1 while the camera is streaming", |h| {
            f64::from(u8::from(h.state == crate::ingest::IngestState::Streaming))
        }),
        ("tianwang_camera_expected_fps", "gauge", "frames per second the profile asks for", |h| h.expected_fps),
        ("tianwang_camera_fps", "gauge", "frames per second delivered, over the last 5 s", |h| h.measured_fps),
        ("tianwang_camera_frames_decoded_total", "counter", "frames out of the decoder", |h| h.frames_decoded as f64),
        ("tianwang_camera_frames_delivered_total", "counter", "frames delivered to consumers", |h| {
            h.frames_delivered as f64
        }),
        ("tianwang_camera_frames_dropped_total", "counter", "frames dropped because a consumer queue was full", |h| {
            h.frames_dropped as f64
        }),
        (
            "tianwang_camera_frames_skipped_total",
            "counter",
            "non-reference pictures not decoded (not needed for the output rate)",
            |h| h.frames_skipped as f64,
        ),
        ("tianwang_camera_bytes_per_second", "gauge", "RTP payload bytes per second, over the last 5 s", |h| {
            h.bytes_per_second
        }),
        ("tianwang_camera_reconnects_last_hour", "gauge", "reconnections after streaming, last hour", |h| {
            h.reconnects_last_hour as f64
        }),
        ("tianwang_camera_stalls_last_hour", "gauge", "watchdog stalls, last hour", |h| h.stalls_last_hour as f64),
        ("tianwang_camera_consecutive_failures", "gauge", "connection attempts failed in a row", |h| {
            f64::from(h.consecutive_failures)
        }),
    ];
    for (name, kind, help, f) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for h in &all {
            let _ = writeln!(out, "{name}{{camera=\"{}\"}} {}", esc(&h.camera), f(h));
        }
    }
    let _ = writeln!(
        out,
        "# HELP tianwang_camera_state ingest state, one series per state\n# TYPE tianwang_camera_state gauge"
    );
    for h in &all {
        for s in ["connecting", "streaming", "stalled", "backoff", "disabled"] {
            let v = u8::from(h.state.as_str() == s);
            let _ = writeln!(out, "tianwang_camera_state{{camera=\"{}\",state=\"{s}\"}} {v}", esc(&h.camera));
        }
    }
    let _ = writeln!(
        out,
        "# HELP tianwang_status_events_dropped_total status changes that could not be queued for the registry\n# TYPE tianwang_status_events_dropped_total counter\ntianwang_status_events_dropped_total {}",
        ingest.status_events_dropped()
    );
    let t = ingest.pool_threads();
    let _ = writeln!(
        out,
        "# HELP tianwang_ingest_threads threads that run health cameras read by the keyframe client: runners (each steps hundreds of cameras), openers (connecting; they grow while all are busy), own (cameras that need a thread of their own)\n# TYPE tianwang_ingest_threads gauge"
    );
    for (kind, n) in [("runner", t.runners), ("opener", t.openers), ("own", t.own)] {
        let _ = writeln!(out, "tianwang_ingest_threads{{kind=\"{kind}\"}} {n}");
    }
}
