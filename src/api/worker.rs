//! A worker's own HTTP endpoint: `/healthz` (no token), `/metrics` and `/api/v1/worker` (the
//! maintainer role, tokens checked against the registry like on the serve nodes). A worker has
//! no other API: the cluster's API runs on the serve nodes.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{self, FailureLimiter, Role};
use super::error::ApiError;
use super::health::{render_detect_metrics, render_metrics, series};
use crate::app::worker::{HeldCamera, LeaseStatus, WorkerState};

/// What `/api/v1/worker` answers.
#[derive(Serialize, ToSchema)]
pub struct WorkerView {
    pub lease: LeaseStatus,
    pub cameras: Vec<HeldCamera>,
}

/// A token the registry accepted is accepted again without asking it for this long; after that
/// the registry is asked again, and while the registry cannot be reached the last answer stands
/// for up to `TOKEN_STALE_MS`: a worker cut off from the registry still shows a maintainer what it
/// is doing (a token revoked meanwhile is refused as soon as the registry answers again).
const TOKEN_CACHE_MS: i64 = 60_000;
const TOKEN_STALE_MS: i64 = 24 * 3_600_000;

#[derive(Clone)]
struct Guarded {
    st: WorkerState,
    failures: FailureLimiter,
    /// Token hashes (never tokens) the registry accepted, with the role and when.
    accepted: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, (String, i64)>>>,
}

pub fn router(st: WorkerState) -> Router {
    let guard = Guarded { st: st.clone(), failures: FailureLimiter::default(), accepted: Default::default() };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/worker", get(view))
        .fallback(|| async {
            ApiError::NotFound("no such endpoint on a worker (its API is on the serve nodes)".into())
        })
        .layer(axum::middleware::from_fn_with_state(guard, require))
        .with_state(st)
}

/// A maintainer's (or an admin's) token for everything but `/healthz`.
async fn require(State(g): State<Guarded>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    let ip =
        req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()).unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let now = g.st.clock.now_ms();
    // As on the serve nodes: a valid token always passes, a request without one is not counted,
    // only wrong tokens are (see auth::FailureLimiter).
    let Some(token) = auth::bearer(&req) else {
        return auth::unauthorized("missing bearer token (Authorization: Bearer <token>)");
    };
    let hash = crate::registry::token_hash(&token);
    let cached = {
        let mut m = g.accepted.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, (_, at)| now - *at < TOKEN_STALE_MS);
        m.get(&hash).cloned()
    };
    let checked = match cached {
        Some((role, at)) if now - at < TOKEN_CACHE_MS => Ok(Some((String::new(), role))),
        cached => match g.st.registry.check_token(&token).await {
            Err(e) => match cached {
                Some((role, _)) => {
                    tracing::debug!(error = %e, "the registry does not answer: a token it accepted before stands");
                    Ok(Some((String::new(), role)))
                }
                None => Err(e),
            },
            Ok(answer) => {
                let answer = answer.map(|t| (t.name, t.role));
                let mut m = g.accepted.lock().unwrap_or_else(|e| e.into_inner());
                match &answer {
                    Some((_, role)) => {
                        m.insert(hash, (role.clone(), now));
                    }
                    None => {
                        m.remove(&hash);
                    }
                }
                Ok(answer)
            }
        },
    };
    match checked {
        Ok(Some((_, role))) => match Role::parse(&role) {
            Some(Role::Maintainer | Role::Admin) => next.run(req).await,
            _ => ApiError::Forbidden(format!("role {role} may not use this endpoint; it needs maintainer or admin"))
                .into_response(),
        },
        Ok(None) if g.failures.blocked(ip, now) => {
            ApiError::TooManyRequests("too many failed attempts from this address; try again in a minute".into())
                .into_response()
        }
        Ok(None) => {
            g.failures.fail(ip, now);
            tracing::warn!(%ip, "rejected an unknown or revoked token");
            auth::unauthorized("unknown or revoked token")
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// 200 while the registry answers and this worker's heartbeat is current; 503 otherwise.
async fn healthz(State(st): State<WorkerState>) -> Response {
    let lease = st.lease_status();
    let db = st.registry.ping().await.is_ok();
    let body = serde_json::json!({
        "status": if db && lease.live { "ok" } else { "degraded" },
        "database": if db { "ok" } else { "unreachable" },
        "worker": lease.worker,
        "live": lease.live,
        "cameras": st.book.held().len(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    let code = if db && lease.live { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body)).into_response()
}

async fn view(State(st): State<WorkerState>) -> Json<WorkerView> {
    Json(WorkerView { lease: st.lease_status(), cameras: st.held() })
}

/// The cameras' ingest series (as on a serve node that ingests), detection, and the worker's
/// lease: cameras held, heartbeats, failures, rounds, moves.
async fn metrics(State(st): State<WorkerState>) -> Response {
    let mut out = String::new();
    render_metrics(&st.ingest, &mut out);
    if let Some(d) = &st.detect {
        render_detect_metrics(&d.stats(), &mut out);
    }
    super::health::render_onvif_metrics(&st.onvif_motion.status(), &mut out);
    let l = st.lease_status();
    let held = st.book.held().len();
    series(&mut out, "tianwang_worker_cameras_held", "gauge", "cameras this worker holds by lease", held as f64);
    series(
        &mut out,
        "tianwang_worker_live",
        "gauge",
        "1 while this worker's heartbeat is current",
        f64::from(u8::from(l.live)),
    );
    series(&mut out, "tianwang_worker_heartbeats_total", "counter", "heartbeats stored", l.heartbeats as f64);
    series(
        &mut out,
        "tianwang_worker_heartbeats_unchanged_total",
        "counter",
        "heartbeats answered with the lease generation the worker knew (no leases read back)",
        l.heartbeats_unchanged as f64,
    );
    series(
        &mut out,
        "tianwang_worker_heartbeat_failures_total",
        "counter",
        "heartbeats that failed or timed out",
        l.heartbeat_failures as f64,
    );
    series(&mut out, "tianwang_worker_rounds_total", "counter", "placement rounds this worker ran", l.rounds as f64);
    series(&mut out, "tianwang_worker_cameras_gained_total", "counter", "cameras gained", l.gained as f64);
    series(&mut out, "tianwang_worker_cameras_lost_total", "counter", "cameras lost", l.lost as f64);
    series(
        &mut out,
        "tianwang_worker_cut_off_total",
        "counter",
        "times every pipeline stopped because the lease time passed without a stored heartbeat",
        l.cut_off as f64,
    );
    let _ = writeln!(
        out,
        "# HELP tianwang_worker_cameras_unconfigured cameras held that this worker's configuration does not list\n# TYPE tianwang_worker_cameras_unconfigured gauge\ntianwang_worker_cameras_unconfigured {}",
        l.unconfigured.len()
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
