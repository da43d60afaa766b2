//! Duty desks over HTTP: the desks with their queues, and the scope of a desk's token. An
//! operator's token may belong to a desk (`tianwang token create --desk`): its alert list and
//! live stream then hold the alerts that reached that desk (`alerts::desks`), and it may handle
//! only those. A token without a desk (the command centre) sees every alert and may look at any
//! desk's queue (`?desk=`).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use crate::alerts::desks::Desks;
use crate::geo::model::GeoModel;
use crate::registry::{AlertRow, AlertStatus};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/desks", get(list))
}

/// One duty desk and its queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeskRow {
    pub id: String,
    pub name: String,
    /// The grid cells it answers for (and the cells below them without a desk of their own).
    pub cells: Vec<String>,
    /// The desk its alerts reach when left unacknowledged (the next desk up the grid).
    pub above: Option<String>,
    /// Open alerts that reached it: not acknowledged yet.
    pub new: i64,
    /// Open alerts that reached it, acknowledged.
    pub acknowledged: i64,
}

/// The duty desks; `scope` is the caller's own desk (its token's), if it has one.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeskList {
    pub scope: Option<String>,
    pub desks: Vec<DeskRow>,
    /// Open alerts that reached no desk (no cell, or no desk above their cell): the command
    /// centre's alone.
    pub unrouted_new: i64,
    pub unrouted_acknowledged: i64,
}

/// The duty desks (`[[desk]]` in site.toml) with how many open alerts each holds.
#[utoipa::path(get, path = "/api/v1/desks", tag = "alerts",
    responses((status = 200, body = DeskList), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<DeskList>, ApiError> {
    let desks = st.desks.now();
    let scope = scope(&desks, caller.desk.as_deref(), None)?;
    let model = st.geo.model().await?;
    let counts = st.registry.open_alert_counts().await?;
    let mut out = DeskList { scope, desks: Vec::new(), unrouted_new: 0, unrouted_acknowledged: 0 };
    let mut queues: std::collections::HashMap<&str, (i64, i64)> = std::collections::HashMap::new();
    for c in &counts {
        let reached = desks.reached(model.as_ref(), c.grid_cell_id.as_deref(), c.escalation_level);
        let add = |q: &mut (i64, i64)| match c.status {
            AlertStatus::Acknowledged => q.1 += c.n,
            _ => q.0 += c.n,
        };
        if reached.is_empty() {
            let mut q = (out.unrouted_new, out.unrouted_acknowledged);
            add(&mut q);
            (out.unrouted_new, out.unrouted_acknowledged) = q;
        }
        for d in reached {
            add(queues.entry(d).or_default());
        }
    }
    for d in desks.list() {
        let (new, acknowledged) = queues.get(d.id.as_str()).copied().unwrap_or_default();
        out.desks.push(DeskRow {
            id: d.id.clone(),
            name: d.name.clone(),
            cells: d.cells.clone(),
            above: desks.above(model.as_ref(), &d.id).map(str::to_string),
            new,
            acknowledged,
        });
    }
    Ok(Json(out))
}

/// The desk whose alerts a request is about: the caller's own when its token has one (asking
/// for another is refused), else the one asked for (`None`: every alert). A desk that the
/// configuration no longer holds is refused by name.
pub(super) fn scope(desks: &Desks, own: Option<&str>, asked: Option<&str>) -> Result<Option<String>, ApiError> {
    let asked = asked.map(str::trim).filter(|d| !d.is_empty());
    match (own, asked) {
        (Some(own), _) if desks.get(own).is_none() => Err(ApiError::Forbidden(format!(
            "this token belongs to desk {own:?}, which the configuration does not hold ([[desk]] in site.toml)"
        ))),
        (Some(own), Some(a)) if a != own => {
            Err(ApiError::Forbidden(format!("this token belongs to desk {own:?}; it may not look at desk {a:?}")))
        }
        (Some(own), _) => Ok(Some(own.to_string())),
        (None, Some(a)) if desks.get(a).is_none() => Err(ApiError::BadRequest(format!(
            "desk: unknown desk {:?}; GET /api/v1/desks lists them",
            a.chars().take(64).collect::<String>()
        ))),
        (None, a) => Ok(a.map(str::to_string)),
    }
}

/// Refuses a desk's token an alert that has not reached its desk (403, naming the desk).
pub(super) async fn check_reached(st: &AppState, caller: &Caller, alert: &AlertRow) -> Result<(), ApiError> {
    let Some(own) = &caller.desk else { return Ok(()) };
    let desks = st.desks.now();
    let desk = scope(&desks, Some(own), None)?.unwrap_or_else(|| own.clone());
    let model = st.geo.model().await?;
    if desks.reaches(model.as_ref(), &desk, alert.grid_cell_id.as_deref(), alert.escalation_level) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("alert {} has not reached desk {desk:?}", alert.id)))
    }
}

/// [`check_reached`] for an alert by id (404 when there is none).
pub(super) async fn check_reached_id(st: &AppState, caller: &Caller, id: i64) -> Result<(), ApiError> {
    if caller.desk.is_none() {
        return Ok(());
    }
    let alert = st.registry.get_alert(id).await?.ok_or_else(|| ApiError::NotFound(format!("alert {id} not found")))?;
    check_reached(st, caller, &alert).await
}

/// Which of the live feed's changes a desk's stream passes: those of alerts that have reached the
/// desk by that change. The grid is read again at most every `REFRESH`.
pub(super) struct DeskFilter {
    desk: String,
    st: AppState,
    model: Arc<GeoModel>,
    read_at: std::time::Instant,
}

const REFRESH: std::time::Duration = std::time::Duration::from_secs(30);

impl DeskFilter {
    pub(super) async fn new(st: &AppState, desk: String) -> Result<DeskFilter, ApiError> {
        Ok(DeskFilter { desk, st: st.clone(), model: st.geo.model().await?, read_at: std::time::Instant::now() })
    }

    pub(super) async fn passes(&mut self, alert: &serde_json::Value) -> bool {
        if self.read_at.elapsed() >= REFRESH {
            match self.st.geo.model().await {
                Ok(m) => self.model = m,
                Err(e) => tracing::warn!(error = %e, "the grid could not be read again; the last one stands"),
            }
            self.read_at = std::time::Instant::now();
        }
        let cell = alert.get("grid_cell_id").and_then(|c| c.as_str());
        let level = alert.get("escalation_level").and_then(|l| l.as_i64()).unwrap_or(0);
        self.st.desks.now().reaches(self.model.as_ref(), &self.desk, cell, level)
    }
}
