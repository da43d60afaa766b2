//! Work orders: opened when a camera stays offline or faulty too long, one per camera and cause,
//! assigned to the crew of the camera's grid cell, due by priority; closed by the crew and
//! verified by the system (the camera must stay healthy for the verification time, or the order
//! reopens). Every round is a pure function of the clock, the registry and the health keeper, so
//! a test drives it with a simulated clock.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use super::config::{CrewConfig, MaintenanceConfig};
use super::health::{HealthKeeper, Problem};
use crate::clock::{Clock, Millis};
use crate::config::{CameraKind, Owner};
use crate::geo::model::GeoModel;
use crate::geo::service::GeoService;
use crate::registry::{NewOrder, OrderFilter, OrderState, Registry, RegistryError};

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RoundReport {
    pub opened: Vec<i64>,
    pub reopened: Vec<i64>,
    pub verified: Vec<i64>,
}

/// Priority of a camera's orders: 1 a checkpoint of a ring, 3 compounds and cameras not owned
/// by the public-security side, 2 the rest (street).
pub fn priority(m: &GeoModel, camera: usize) -> i64 {
    let c = &m.cameras[camera];
    if m.rings.iter().any(|r| r.input.members.iter().any(|id| id == &c.id)) {
        1
    } else if c.kind == CameraKind::Compound || c.owner != Owner::Public {
        3
    } else {
        2
    }
}

/// The crew answering for a grid cell: its own, else the nearest cell above it with one.
pub fn crew_for(m: &GeoModel, crews: &HashMap<String, String>, cell: Option<&str>) -> Option<String> {
    let mut cur = cell.map(str::to_string);
    let mut hops = 0;
    while let Some(id) = cur {
        if let Some(c) = crews.get(&id) {
            return Some(c.clone());
        }
        cur = m.cell_by_id.get(&id).and_then(|&i| m.cells[i].parent.clone());
        hops += 1;
        if hops > 8 {
            break;
        }
    }
    None
}

struct Policy {
    cfg: MaintenanceConfig,
    /// Cell id → crew id.
    crews: HashMap<String, String>,
}

/// The thresholds of `[maintenance]` (the defaults without it) and the crews' cells.
fn policy(maintenance: Option<&MaintenanceConfig>, crews: &[CrewConfig]) -> Policy {
    Policy {
        cfg: maintenance.cloned().unwrap_or_default(),
        crews: crews.iter().flat_map(|c| c.cells.iter().map(move |cell| (cell.clone(), c.id.clone()))).collect(),
    }
}

#[derive(Clone)]
pub struct OrderService {
    registry: Registry,
    geo: GeoService,
    health: HealthKeeper,
    clock: Arc<dyn Clock>,
    policy: Arc<RwLock<Policy>>,
    round: Arc<tokio::sync::Mutex<()>>,
    /// Also open orders from the problems workers report (a serve node of a cluster).
    reported: bool,
}

impl OrderService {
    pub fn new(
        registry: Registry,
        geo: GeoService,
        health: HealthKeeper,
        clock: Arc<dyn Clock>,
        maintenance: Option<&MaintenanceConfig>,
        crews: &[CrewConfig],
    ) -> Self {
        Self {
            registry,
            geo,
            health,
            clock,
            policy: Arc::new(RwLock::new(policy(maintenance, crews))),
            round: Arc::new(tokio::sync::Mutex::new(())),
            reported: false,
        }
    }

    /// Rounds also read the problems the cluster's workers report into the registry
    /// (`Registry::report_problems`), for the cameras this process does not run.
    pub fn with_reported(mut self, on: bool) -> Self {
        self.reported = on;
        self
    }

    /// Every camera's problems: the health keeper's, and with `with_reported` those the workers
    /// report for cameras the keeper knows no problem of by that cause.
    async fn problems(&self, now: Millis) -> Result<HashMap<String, Vec<Problem>>, RegistryError> {
        let mut problems = self.health.problems().await;
        if self.reported {
            for (cam, rows) in self.registry.reported_problems(now).await? {
                let own = problems.entry(cam).or_default();
                for r in rows {
                    if !own.iter().any(|p| p.cause == r.cause) {
                        own.push(Problem { cause: r.cause, since_ms: r.since_ms, detail: r.detail });
                    }
                }
            }
        }
        Ok(problems)
    }

    /// A reloaded configuration's thresholds and crews.
    pub fn reconfigure(&self, maintenance: Option<&MaintenanceConfig>, crews: &[CrewConfig]) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = policy(maintenance, crews);
    }

    pub fn config(&self) -> MaintenanceConfig {
        self.policy.read().unwrap_or_else(|e| e.into_inner()).cfg.clone()
    }

    /// The crew of a camera's cell and its orders' priority and due time from `now`.
    pub async fn placement(&self, camera: &str, now: Millis) -> Result<(i64, Option<String>, Millis), RegistryError> {
        let m = self.geo.model().await?;
        let p = self.policy.read().unwrap_or_else(|e| e.into_inner());
        let Some(&i) = m.cam_by_id.get(camera) else {
            return Err(RegistryError::Invalid(format!("camera {camera} is not in the registry")));
        };
        let prio = priority(&m, i);
        let crew = crew_for(&m, &p.crews, m.cameras[i].grid_cell.as_deref());
        let due = now + (p.cfg.due_hours[(prio - 1) as usize] * 3_600_000.0) as Millis;
        Ok((prio, crew, due))
    }

    /// Runs rounds every `orders_interval_s` until the app stops, while `active` (this node
    /// writes alerts).
    pub fn spawn(
        &self,
        cancel: tokio_util::sync::CancellationToken,
        mut active: crate::events::Active,
    ) -> tokio::task::JoinHandle<()> {
        let svc = self.clone();
        tokio::spawn(async move {
            loop {
                let every = std::time::Duration::from_secs_f64(svc.config().orders_interval_s);
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                if !crate::events::until_active(&mut active, &cancel).await {
                    return;
                }
                if let Err(e) = svc.round().await {
                    tracing::error!(error = %e, "work-order round failed");
                }
            }
        })
    }

    /// One round at the clock's time: open what is due, verify or reopen what crews closed.
    pub async fn round(&self) -> Result<RoundReport, RegistryError> {
        let _one_at_a_time = self.round.lock().await;
        let now = self.clock.now_ms();
        let mut report = RoundReport::default();
        let problems = self.problems(now).await?;
        let cfg = self.config();
        let mut ids: Vec<&String> = problems.keys().collect();
        ids.sort();
        for cam in ids {
            for p in &problems[cam] {
                let after = if p.cause == "offline" { cfg.offline_order_after_s } else { cfg.fault_order_after_s };
                if (now - p.since_ms) as f64 / 1000.0 < after {
                    continue;
                }
                let (priority, crew, due_at_ms) = match self.placement(cam, now).await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(camera = %cam, error = %e, "no work order for a camera the map does not know");
                        continue;
                    }
                };
                let mins = (now - p.since_ms) / 60_000;
                let o = NewOrder {
                    camera_id: cam.clone(),
                    cause: p.cause.clone(),
                    priority,
                    crew,
                    detail: format!("{} for {mins} min: {}", p.cause, p.detail),
                    due_at_ms,
                    author: "system".into(),
                };
                if let Some(id) = self.registry.open_order(&o, now).await? {
                    tracing::warn!(order = id, camera = %cam, cause = %p.cause, "work order opened");
                    report.opened.push(id);
                }
            }
        }
        let closed = self
            .registry
            .list_orders(&OrderFilter { states: vec![OrderState::Closed], limit: 10_000, ..Default::default() }, false)
            .await?;
        for o in closed {
            let Some(closed_at) = o.closed_at_ms else { continue };
            let Some(row) = self.registry.get_camera(&o.camera_id).await? else { continue };
            let history = self.registry.status_history(&o.camera_id, 200).await?;
            let relapse = history
                .iter()
                .filter(|h| h.at_ms >= closed_at && (h.to_status == "offline" || h.to_status == "degraded"))
                .min_by_key(|h| h.at_ms)
                .map(|h| (h.at_ms, h.to_status.clone(), h.reason.clone()))
                .or_else(|| {
                    (row.status == "offline" || row.status == "degraded")
                        .then(|| (row.status_since_ms.max(closed_at), row.status.clone(), row.status_reason.clone()))
                });
            if let Some((at, status, reason)) = relapse {
                let why = format!("camera {status} at {} ({reason}) during verification", crate::clock::rfc3339(at));
                match self.registry.reopen_order(o.id, &why, now).await {
                    Ok(()) => {
                        tracing::warn!(order = o.id, camera = %o.camera_id, "work order reopened: {why}");
                        report.reopened.push(o.id);
                    }
                    Err(e) => tracing::warn!(order = o.id, error = %e, "cannot reopen a work order"),
                }
                continue;
            }
            if row.status == "online" && (now - closed_at) as f64 / 1000.0 >= cfg.verify_s {
                let why = format!("verified: healthy for {} min after the fix", (now - closed_at) / 60_000);
                if self.registry.verify_order(o.id, &why, now).await.is_ok() {
                    report.verified.push(o.id);
                }
            }
        }
        Ok(report)
    }
}
