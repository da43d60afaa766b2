//! Access control: every endpoint but `/healthz` needs `Authorization: Bearer <token>`. A token
//! has one role; one table (`ROLE_TABLE`, docs/ROLES.md) says which roles each route admits
//! (admin: all). 401 when the token is missing, unknown or revoked (with `WWW-Authenticate:
//! Bearer`), 403 when the role does not reach the endpoint, 429 for wrong tokens after too many
//! from one address (a valid token always passes). Tokens never appear in logs: only the token's
//! name is attached to the request.

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
    /// Monitoring room: alerts, alarms, interceptions, watchlists, what cameras see, patrol units.
    Operator,
    /// Maintenance crews: health, snapshots, metrics, work orders.
    Maintainer,
    /// Planners: coverage, rings, map layers; the registry, watchlists and passages read-only.
    Planner,
    /// Everything, tokens and configuration included.
    Admin,
    /// A vehicle tracker or tracking gateway: posts patrol units' positions, nothing else.
    Tracker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Maintainer => "maintainer",
            Role::Planner => "planner",
            Role::Admin => "admin",
            Role::Tracker => "tracker",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Operator, Role::Maintainer, Role::Planner, Role::Admin, Role::Tracker]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// Who is calling: put into the request's extensions by the middleware.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    /// The hash of the token the request carried (a live stream ends when it is no longer valid).
    pub token_hash: String,
    /// The duty desk of the token: its alerts only. `None`: every alert.
    pub desk: Option<String>,
}

use Role::*;

/// Which requests a rule covers: reads (GET, HEAD), writes (every other method), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Any,
}

/// One line of the role table: a route (as the router writes it, `{id}` for one segment) and
/// the roles that may use it besides admin.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub access: Access,
    pub route: &'static str,
    pub roles: &'static [Role],
    /// Why these roles, in a few words (docs/ROLES.md is generated from this table).
    pub why: &'static str,
}

const fn rule(access: Access, route: &'static str, roles: &'static [Role], why: &'static str) -> Rule {
    Rule { access, route, roles, why }
}

use Access::{Any, Read, Write};

const OP: &[Role] = &[Operator];
const OP_TR: &[Role] = &[Operator, Tracker];
const MT: &[Role] = &[Maintainer];
const PL: &[Role] = &[Planner];
const OP_PL: &[Role] = &[Operator, Planner];
const OP_MT: &[Role] = &[Operator, Maintainer];
const MT_PL: &[Role] = &[Maintainer, Planner];
const ALL3: &[Role] = &[Operator, Maintainer, Planner];
const EVERY: &[Role] = &[Operator, Maintainer, Planner, Tracker];
const ADMIN: &[Role] = &[];

/// Who may use what: the one role table. The first rule whose route and access match decides;
/// a path no rule names is admin's alone. docs/ROLES.md is generated from it (and tested
/// against it), README and the other docs point there.
pub const ROLE_TABLE: &[Rule] = &[
    rule(Any, "/api/v1/admin/{*rest}", ADMIN, "configuration"),
    rule(Read, "/api/v1/alerts", OP, "the monitoring room's alerts"),
    rule(Read, "/api/v1/alerts/stream", OP, "live alerts (SSE)"),
    rule(Read, "/api/v1/alerts/stats", OP, "the alert service's figures"),
    rule(Read, "/api/v1/alerts/{id}", OP, "one alert with its history"),
    rule(Write, "/api/v1/alerts/{id}/acknowledge", OP, "handling alerts"),
    rule(Write, "/api/v1/alerts/{id}/resolve", OP, "handling alerts"),
    rule(Write, "/api/v1/alerts/{id}/assign", OP, "handling alerts"),
    rule(Write, "/api/v1/alerts/{id}/comments", OP, "handling alerts"),
    rule(Any, "/api/v1/alerts/{id}/dispatch", OP, "the units to send, and sending them"),
    rule(Read, "/api/v1/desks", OP, "duty desks and their queues"),
    rule(Write, "/api/v1/alarms", OP, "alarm systems post alarms"),
    rule(Read, "/api/v1/events", OP, "ring and interception events"),
    rule(Read, "/api/v1/interceptions", OP, "interceptions"),
    rule(Write, "/api/v1/interceptions", OP, "starting an interception"),
    rule(Read, "/api/v1/interceptions/{id}", OP, "interceptions"),
    rule(Write, "/api/v1/interceptions/{id}/close", OP, "closing an interception"),
    rule(Read, "/api/v1/interceptions/{id}/units", OP, "units proposed to the armed checkpoints"),
    rule(Any, "/api/v1/units", OP, "patrol units: the command centre sends them"),
    rule(Read, "/api/v1/units/stream", OP, "patrol units live (SSE)"),
    rule(Write, "/api/v1/units/{id}/positions", OP_TR, "trackers post positions"),
    rule(Any, "/api/v1/units/{*rest}", OP, "units, status, positions, tracks"),
    rule(Read, "/api/v1/watchlists", OP_PL, "planners may read the watchlists"),
    rule(Write, "/api/v1/watchlists", OP, "only the monitoring room changes them"),
    rule(Read, "/api/v1/watchlists/{id}", OP_PL, "planners may read the watchlists"),
    rule(Write, "/api/v1/watchlists/{id}", OP, "only the monitoring room changes them"),
    rule(Read, "/api/v1/passages", OP_PL, "planners study traffic"),
    rule(Write, "/api/v1/passages", OP, "checkpoints report passages"),
    rule(Read, "/api/v1/passages/{id}/{picture}", OP, "plate crops and scene pictures are evidence"),
    rule(Read, "/api/v1/vehicles/{plate}/trajectory", OP_PL, "planners study traffic"),
    rule(Read, "/api/v1/rings", OP_PL, "ring states"),
    rule(Read, "/api/v1/rings/{id}", OP_PL, "one ring"),
    rule(Read, "/api/v1/geo/seeing", OP_PL, "what cameras see a place"),
    rule(Read, "/api/v1/geo/layers/{layer}", OP_PL, "map layers"),
    rule(Read, "/api/v1/geo/map/{*rest}", OP_PL, "the city map"),
    rule(Read, "/api/v1/coverage/{*rest}", PL, "coverage reports"),
    rule(Write, "/api/v1/planning/{*rest}", PL, "placement proposals and what-if (computed, nothing stored)"),
    rule(Read, "/api/v1/maintenance/replacements", MT_PL, "planners decide replacements"),
    rule(Read, "/api/v1/maintenance/availability", MT_PL, "how reliable the network is"),
    rule(Any, "/api/v1/maintenance/{*rest}", MT, "work orders, quality, maintenance mode"),
    rule(Read, "/api/v1/cameras/{id}/snapshot.jpg", OP_MT, "what a camera sees now"),
    rule(Read, "/api/v1/cameras/{id}/health", MT, "a camera's health"),
    rule(Read, "/api/v1/health/cameras", MT, "every camera's health"),
    rule(Read, "/api/v1/cluster", MT, "workers, leases, consumers"),
    rule(Read, "/api/v1/retention", MT, "what is kept, the last sweep"),
    rule(Read, "/api/v1/gb28181/devices", MT, "GB/T 28181 devices and their registrations"),
    rule(Read, "/api/v1/worker", MT, "a worker's own view"),
    rule(Read, "/metrics", MT, "Prometheus metrics"),
    rule(Read, "/api/v1/cameras", ALL3, "the camera registry"),
    rule(Read, "/api/v1/cameras/{id}", ALL3, "the camera registry"),
    rule(Read, "/api/v1/cameras/{id}/status-history", ALL3, "the camera registry"),
    rule(Read, "/api/v1/cameras/{id}/ingest-history", ALL3, "the camera registry"),
    rule(Read, "/api/v1/stats", ALL3, "the server's figures"),
    rule(Read, "/api/v1/openapi.json", EVERY, "the API's description"),
];

/// docs/ROLES.md: the role table as a page (tests/api.rs checks the file is this).
pub fn roles_markdown() -> String {
    let mut out = String::from(
        "# Who may use what\n\n\
         Generated from `ROLE_TABLE` in `src/api/auth.rs` (the code that decides); `tests/api.rs` fails when this \
         page and the table differ (`TIANWANG_BLESS=1` rewrites it). `admin` may use everything; `/healthz` and \
         the dashboard's files need no token. A path no rule names is admin's alone. Reads are GET and HEAD, \
         writes every other method. The first rule that matches decides; `{x}` is one path segment, \
         `{*x}` the rest.\n\n\
         | access | route | operator | maintainer | planner | tracker | why |\n|---|---|---|---|---|---|---|\n",
    );
    for r in ROLE_TABLE {
        let access = match r.access {
            Access::Read => "read",
            Access::Write => "write",
            Access::Any => "any",
        };
        let mark = |role| if r.roles.contains(&role) { "yes" } else { "" };
        out.push_str(&format!(
            "| {access} | `{}` | {} | {} | {} | {} | {} |\n",
            r.route,
            mark(Operator),
            mark(Maintainer),
            mark(Planner),
            mark(Tracker),
            r.why
        ));
    }
    out
}

/// Whether `path` is an instance of `route`: literal segments equal, `{x}` one non-empty
/// segment, `{*x}` the rest (one segment or more).
pub fn route_matches(route: &str, path: &str) -> bool {
    let mut r = route.trim_end_matches('/').split('/');
    let mut p = path.trim_end_matches('/').split('/');
    loop {
        match (r.next(), p.next()) {
            (None, None) => return true,
            (Some(t), Some(s)) if t.starts_with("{*") => return !s.is_empty(),
            (Some(t), Some(s)) if t.starts_with('{') && t.ends_with('}') => {
                if s.is_empty() {
                    return false;
                }
            }
            (Some(t), Some(s)) if t == s => {}
            _ => return false,
        }
    }
}

/// The roles an endpoint admits (admin always); `None` for public endpoints.
pub fn admitted(method: &Method, path: &str) -> Option<&'static [Role]> {
    if path.trim_end_matches('/') == "/healthz" || crate::web::is_public(path) {
        // The dashboard's files hold no data; what they show comes from the API with a token.
        return None;
    }
    Some(rule_for(method, path).map_or(ADMIN, |r| r.roles))
}

/// The rule of the role table that decides for `method` on `path`, if any names it.
pub fn rule_for(method: &Method, path: &str) -> Option<&'static Rule> {
    let write = method != Method::GET && method != Method::HEAD;
    ROLE_TABLE.iter().find(|r| (r.access == Any || (r.access == Write) == write) && route_matches(r.route, path))
}

/// Wrong tokens per address: after `MAX_FAILURES` within `WINDOW_MS`, further wrong tokens from
/// it get 429 until the window ends. A valid token always passes (tokens carry 160 random bits:
/// the limit spares the registry and the log a flood of guesses; it is not what keeps a token
/// secret).
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
    // Browsers' EventSource cannot set headers: the live streams also take `access_token`.
    if matches!(req.uri().path(), "/api/v1/alerts/stream" | "/api/v1/units/stream") {
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
    // The token is looked at first: a valid one is never turned away, whatever else came from
    // its address (a reverse proxy puts every client behind one; a browser asks for things
    // before its token is set). A request without a token guesses nothing and is not counted.
    let Some(token) = bearer(&req) else {
        return unauthorized("missing bearer token (Authorization: Bearer <token>)");
    };
    let caller = match st.registry.check_token(&token).await {
        Ok(Some(t)) => Caller {
            name: t.name,
            role: Role::parse(&t.role).unwrap_or(Operator),
            token_hash: crate::registry::token_hash(&token),
            desk: t.desk,
        },
        Ok(None) if auth.failures.blocked(ip, now) => {
            return ApiError::TooManyRequests(
                "too many failed attempts from this address; try again in a minute".into(),
            )
            .into_response();
        }
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
    let who = Signed { name: caller.name.clone(), role: caller.role };
    req.extensions_mut().insert(caller);
    let mut resp = next.run(req).await;
    // For the access log (outside this layer): who asked, never the token.
    resp.extensions_mut().insert(who);
    resp
}

/// The caller a response answered (its token's name and role), for the access log.
#[derive(Debug, Clone)]
pub struct Signed {
    pub name: String,
    pub role: Role,
}
