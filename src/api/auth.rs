//! Access control: every endpoint but `/healthz` needs `Authorization: Bearer <token>`. A token
//! has one role; each endpoint family admits some roles (admin: all). 401 when the token is
//! missing, unknown or revoked (with `WWW-Authenticate: Bearer`), 403 when the role does not
//! reach the endpoint, 429 after too many failed attempts from one address. Tokens never appear
//! in logs: only the token's name is attached to the request.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;

/// A role a token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Monitoring room: alerts, alarms, interceptions, watchlists, what cameras see.
    Operator,
    /// Maintenance crews: health, snapshots, metrics, work orders.
    Maintainer,
    /// Planners: coverage, rings, map layers; the registry, watchlists and passages read-only.
    Planner,
    /// Everything, tokens and configuration included.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Maintainer => "maintainer",
            Role::Planner => "planner",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Operator, Role::Maintainer, Role::Planner, Role::Admin].into_iter().find(|r| r.as_str() == s)
    }
}

/// Who is calling: put into the request's extensions by the middleware.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

use Role::*;

/// The roles an endpoint admits (admin always); `None` for public endpoints.
pub fn admitted(method: &Method, path: &str) -> Option<&'static [Role]> {
    let p = path.trim_end_matches('/');
    if p == "/healthz" || crate::web::is_public(path) {
        // The dashboard's files hold no data; what they show comes from the API with a token.
        return None;
    }
    let writes = method != Method::GET && method != Method::HEAD;
    Some(if p.starts_with("/api/v1/admin") || p.starts_with("/api/v1/tokens") {
        &[]
    } else if ["/api/v1/watchlists", "/api/v1/passages", "/api/v1/vehicles"].iter().any(|f| p.starts_with(f)) {
        // Planners study traffic (passages, trajectories) and may read the watchlists; only the
        // monitoring room changes them or reports passages.
        if writes { &[Operator] } else { &[Operator, Planner] }
    } else if ["/api/v1/alerts", "/api/v1/alarms", "/api/v1/events", "/api/v1/interceptions"]
        .iter()
        .any(|f| p.starts_with(f))
    {
        &[Operator]
    } else if !writes
        && ["/api/v1/maintenance/replacements", "/api/v1/maintenance/availability"].iter().any(|f| p.starts_with(f))
    {
        // Planners decide which cameras to replace and read how reliable the network is.
        &[Maintainer, Planner]
    } else if p.ends_with("/snapshot.jpg") {
        &[Operator, Maintainer]
    } else if p.ends_with("/health")
        || p.starts_with("/api/v1/health")
        || p == "/metrics"
        || p == "/api/v1/cluster"
        || p.starts_with("/api/v1/maintenance")
    {
        &[Maintainer]
    } else if p.starts_with("/api/v1/rings") || p.starts_with("/api/v1/geo") {
        &[Operator, Planner]
    } else if p.starts_with("/api/v1/coverage") {
        &[Planner]
    } else if (p.starts_with("/api/v1/cameras") && !writes)
        || p == "/api/v1/openapi.json"
        || p.starts_with("/api/v1/stats")
    {
        &[Operator, Maintainer, Planner]
    } else {
        &[]
    })
}

/// Failed attempts per address: more than `MAX_FAILURES` within `WINDOW_MS` → 429 until the
/// window ends.
#[derive(Clone, Default)]
pub struct FailureLimiter(Arc<Mutex<HashMap<IpAddr, (u32, i64)>>>);

pub const MAX_FAILURES: u32 = 10;
pub const WINDOW_MS: i64 = 60_000;

impl FailureLimiter {
    pub(crate) fn blocked(&self, ip: IpAddr, now: i64) -> bool {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&ip).is_some_and(|(n, start)| *n >= MAX_FAILURES && now - start < WINDOW_MS)
    }
    pub(crate) fn fail(&self, ip: IpAddr, now: i64) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() > 10_000 {
            m.retain(|_, (_, start)| now - *start < WINDOW_MS);
        }
        let e = m.entry(ip).or_insert((0, now));
        if now - e.1 >= WINDOW_MS {
            *e = (0, now);
        }
        e.0 += 1;
    }
}

pub(crate) fn bearer(req: &Request) -> Option<String> {
    if let Some(h) = req.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()) {
        return h.strip_prefix("Bearer ").map(|t| t.trim().to_string());
    }
    // Browsers' EventSource cannot set headers: the live stream also takes `access_token`.
    if req.uri().path() == "/api/v1/alerts/stream" {
        return req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("access_token=")).map(|t| t.to_string()));
    }
    None
}

pub(crate) fn unauthorized(msg: &str) -> Response {
    let mut r = ApiError::Unauthorized(msg.into()).into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    r
}

/// What the middleware needs: the app, and failed attempts per address (an HTTP concern, kept
/// here rather than in the app).
#[derive(Clone)]
pub struct AuthState {
    app: AppState,
    failures: FailureLimiter,
}

impl AuthState {
    pub fn new(app: AppState) -> Self {
        Self { app, failures: FailureLimiter::default() }
    }
}

/// The middleware.
pub async fn require(State(auth): State<AuthState>, req: Request, next: Next) -> Response {
    let st = &auth.app;
    let Some(roles) = admitted(req.method(), req.uri().path()) else { return next.run(req).await };
    let ip =
        req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()).unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let now = st.clock.now_ms();
    if auth.failures.blocked(ip, now) {
        return ApiError::TooManyRequests("too many failed attempts from this address; try again in a minute".into())
            .into_response();
    }
    let Some(token) = bearer(&req) else {
        auth.failures.fail(ip, now);
        return unauthorized("missing bearer token (Authorization: Bearer <token>)");
    };
    let caller = match st.registry.check_token(&token).await {
        Ok(Some((name, role))) => Caller { name, role: Role::parse(&role).unwrap_or(Operator) },
        Ok(None) => {
            auth.failures.fail(ip, now);
            tracing::warn!(%ip, "rejected an unknown or revoked token");
            return unauthorized("unknown or revoked token");
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    if caller.role != Admin && !roles.contains(&caller.role) {
        let need: Vec<&str> = roles.iter().map(|r| r.as_str()).chain(["admin"]).collect();
        return ApiError::Forbidden(format!(
            "role {} may not use this endpoint; it needs {}",
            caller.role.as_str(),
            need.join(" or ")
        ))
        .into_response();
    }
    let mut req = req;
    req.extensions_mut().insert(caller);
    next.run(req).await
}
