//! The crews' report: cameras by status, open work orders (overdue first), availability over a
//! window with the worst cameras and repeat offenders, and the below-HD cameras to replace.
//! Served at `GET /api/v1/maintenance/report` and printed by `tianwang maintenance report`.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;
use utoipa::ToSchema;

use super::availability::{self, Availability, CamInfo, CameraAvailability, RepeatOffender};
use super::replace::{self, ReplacementCandidate};
use crate::clock::{Millis, rfc3339};
use crate::geo::dori::DoriLevel;
use crate::geo::model::GeoModel;
use crate::geo::service::GeoService;
use crate::registry::{OrderFilter, OrderState, Registry, RegistryError, WorkOrder};

/// Availability of every camera in the registry over `[from, to)`.
pub async fn availability(
    registry: &Registry,
    geo: &GeoService,
    from: Millis,
    to: Millis,
) -> Result<(Availability, std::sync::Arc<GeoModel>), RegistryError> {
    let m = geo.model().await?;
    let cams: Vec<CamInfo> = m
        .cameras
        .iter()
        .enumerate()
        .map(|(i, c)| CamInfo {
            id: c.id.clone(),
            name: c.name.clone(),
            owner: c.owner.as_str().into(),
            cells: m.cam_cells[i].iter().map(|&k| m.cells[k as usize].id.clone()).collect(),
            rings: m
                .rings
                .iter()
                .filter(|r| r.input.members.iter().any(|id| id == &c.id))
                .map(|r| r.input.id.clone())
                .collect(),
        })
        .collect();
    let history = registry.all_status_history(to).await?;
    let a = tokio::task::spawn_blocking(move || availability::compute(&cams, &history, from, to))
        .await
        .map_err(|e| RegistryError::Invalid(format!("availability failed: {e}")))?;
    Ok((a, m))
}

/// Work orders opened per camera since `from`.
pub async fn orders_per_camera(registry: &Registry, from: Millis) -> Result<BTreeMap<String, u32>, RegistryError> {
    let orders = registry
        .list_orders(&OrderFilter { since_ms: Some(from), limit: 100_000, ..Default::default() }, false)
        .await?;
    let mut n = BTreeMap::new();
    for o in orders {
        *n.entry(o.camera_id).or_insert(0) += 1;
    }
    Ok(n)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MaintenanceReport {
    pub generated_at_ms: Millis,
    pub from_ms: Millis,
    pub to_ms: Millis,
    /// Cameras per status now.
    pub status_counts: BTreeMap<String, u32>,
    /// Open and closed (awaiting verification) orders, most urgent first.
    pub active_orders: Vec<WorkOrder>,
    pub overdue_orders: u32,
    pub overall_uptime: Option<f64>,
    pub worst_cameras: Vec<CameraAvailability>,
    pub repeat_offenders: Vec<RepeatOffender>,
    pub cells: Vec<availability::GroupAvailability>,
    pub rings: Vec<availability::GroupAvailability>,
    pub owners: Vec<availability::GroupAvailability>,
    pub replacements: Vec<ReplacementCandidate>,
}

/// Marks orders open past their due time.
pub fn mark_overdue(orders: &mut [WorkOrder], now: Millis) {
    for o in orders {
        o.overdue = o.state == OrderState::Open && o.due_at_ms < now;
    }
}

pub async fn build(
    registry: &Registry,
    geo: &GeoService,
    now: Millis,
    from: Millis,
    level: DoriLevel,
    min_failures: u32,
) -> Result<MaintenanceReport, RegistryError> {
    let (a, m) = availability(registry, geo, from, now).await?;
    let per_cam = orders_per_camera(registry, from).await?;
    let mut active = registry
        .list_orders(
            &OrderFilter { states: vec![OrderState::Open, OrderState::Closed], limit: 10_000, ..Default::default() },
            false,
        )
        .await?;
    mark_overdue(&mut active, now);
    let mut status_counts = BTreeMap::new();
    for c in &m.cameras {
        *status_counts.entry(c.status.as_str().to_string()).or_insert(0) += 1;
    }
    let m2 = m.clone();
    let replacements = tokio::task::spawn_blocking(move || replace::candidates(&m2, level))
        .await
        .map_err(|e| RegistryError::Invalid(format!("replacement planning failed: {e}")))?;
    Ok(MaintenanceReport {
        generated_at_ms: now,
        from_ms: from,
        to_ms: now,
        status_counts,
        overdue_orders: active.iter().filter(|o| o.overdue).count() as u32,
        active_orders: active,
        overall_uptime: a.overall.uptime,
        worst_cameras: availability::worst(&a, 10),
        repeat_offenders: availability::repeat_offenders(&a, &per_cam, min_failures),
        cells: a.cells.clone(),
        rings: a.rings.clone(),
        owners: a.owners.clone(),
        replacements,
    })
}

fn pct(u: Option<f64>) -> String {
    u.map(|u| format!("{:.2} %", u * 100.0)).unwrap_or_else(|| "—".into())
}

fn hours(ms: i64) -> String {
    format!("{:.1} h", ms as f64 / 3_600_000.0)
}

/// The report as text for a crew's terminal.
pub fn render_text(r: &MaintenanceReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Maintenance report, {} to {}", rfc3339(r.from_ms), rfc3339(r.to_ms));
    let counts: Vec<String> = r.status_counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let _ = writeln!(s, "Cameras now: {}", counts.join(", "));
    let _ = writeln!(s, "Uptime over the window: {}", pct(r.overall_uptime));
    let _ = writeln!(s, "\nActive work orders: {} ({} overdue)", r.active_orders.len(), r.overdue_orders);
    for o in &r.active_orders {
        let _ = writeln!(
            s,
            "  #{:<5} P{} {:<8} {:<24} {:<22} crew {:<10} due {}{}",
            o.id,
            o.priority,
            o.state.as_str(),
            o.camera_id,
            o.cause,
            o.crew.as_deref().unwrap_or("-"),
            rfc3339(o.due_at_ms),
            if o.overdue { "  OVERDUE" } else { "" }
        );
    }
    let _ = writeln!(s, "\nWorst cameras:");
    if r.worst_cameras.is_empty() {
        let _ = writeln!(s, "  (every camera was up the whole window)");
    }
    for c in &r.worst_cameras {
        let _ = writeln!(
            s,
            "  {:<24} uptime {:>9}  offline {:>8}  outages {:>3}  longest {}",
            c.camera_id,
            pct(c.uptime),
            hours(c.offline_ms),
            c.outages,
            hours(c.longest_outage_ms)
        );
    }
    let _ = writeln!(s, "\nRepeat offenders:");
    if r.repeat_offenders.is_empty() {
        let _ = writeln!(s, "  (none)");
    }
    for o in &r.repeat_offenders {
        let _ = writeln!(
            s,
            "  {:<24} outages {:>3}  work orders {:>3}  uptime {}",
            o.camera_id,
            o.outages,
            o.orders,
            pct(o.uptime)
        );
    }
    let _ = writeln!(s, "\nUptime per ring:");
    for g in &r.rings {
        let _ = writeln!(s, "  {:<24} {:>9}  ({} cameras, {} outages)", g.id, pct(g.uptime), g.cameras, g.outages);
    }
    let _ = writeln!(s, "\nUptime per owner:");
    for g in &r.owners {
        let _ = writeln!(s, "  {:<24} {:>9}  ({} cameras, {} outages)", g.id, pct(g.uptime), g.cameras, g.outages);
    }
    let _ = writeln!(s, "\nUptime per grid cell:");
    for g in &r.cells {
        let _ = writeln!(s, "  {:<24} {:>9}  ({} cameras, {} outages)", g.id, pct(g.uptime), g.cameras, g.outages);
    }
    let _ = writeln!(s, "\nBelow-HD cameras to replace (road seen only by them is lost without a replacement):");
    if r.replacements.is_empty() {
        let _ = writeln!(s, "  (none)");
    }
    for c in &r.replacements {
        let _ = writeln!(
            s,
            "  {:<24} {}x{:<5} loses {:>7.1} m of {:>7.1} m seen at {}",
            c.camera_id,
            c.width_px,
            c.height_px,
            c.lost_m,
            c.seen_m,
            c.level.as_str()
        );
    }
    s
}
