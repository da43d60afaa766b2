//! The map as the dashboard draws it: what lies in one view (a bounding box at a scale), thinned
//! to what a screen can show. At city scale, cameras come as clusters with counts by state, roads
//! as the major classes simplified to the pixel, grid cells at the level whose cells fit the view;
//! at street scale, every camera with its DORI ranges, the coverage gaps of the roads in view and
//! the entrances. A view's answer is bounded whatever the city's size (see [`ViewLimits`]).

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::coverage::{CoverageReport, SectorIndex, StateFilter, complement};
use super::dori::DoriLevel;
use super::fov;
use super::model::GeoModel;
use super::proj::Xy;
use super::rings::RingState;
use crate::config::CameraKind;

/// The DORI levels whose ranges come with each camera, in this order.
pub const RANGE_LEVELS: [DoriLevel; 4] =
    [DoriLevel::Detect, DoriLevel::Observe, DoriLevel::Recognise, DoriLevel::Identify];

/// Road classes drawn at every scale; the others only when zoomed in.
const MAJOR: [&str; 10] = [
    "motorway",
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "motorway_link",
    "trunk_link",
    "primary_link",
    "secondary_link",
    "tertiary_link",
];

/// Where the thinning starts.
#[derive(Debug, Clone, Copy)]
pub struct ViewLimits {
    /// Cameras are sent one by one when at most this many are in view; clustered otherwise.
    pub max_points: usize,
    /// A cluster's cell on screen, pixels (larger when the box would hold more than
    /// `max_clusters` cells).
    pub cluster_px: f64,
    pub max_clusters: usize,
    /// Minor roads are left out above this many metres per pixel.
    pub minor_roads_mpp: f64,
    /// The finest grid level with at most this many cells in view is shown.
    pub max_cells: usize,
    /// Entrances are sent below this many metres per pixel.
    pub detail_mpp: f64,
    /// Coverage gaps are sent below this many metres per pixel.
    pub gaps_mpp: f64,
}

impl Default for ViewLimits {
    fn default() -> Self {
        ViewLimits {
            max_points: 1_500,
            cluster_px: 56.0,
            max_clusters: 600,
            minor_roads_mpp: 12.0,
            max_cells: 600,
            detail_mpp: 4.0,
            gaps_mpp: 1.0,
        }
    }
}

/// What is asked: a box in longitude/latitude, the width it is drawn at, and the DORI level of
/// the coverage shown.
#[derive(Debug, Clone, Copy)]
pub struct ViewQuery {
    /// `[min lon, min lat, max lon, max lat]`.
    pub bbox: [f64; 4],
    /// Pixels across the box.
    pub width_px: f64,
    pub level: DoriLevel,
    pub states: StateFilter,
}

/// A camera in view.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ViewCamera {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub lon: f64,
    pub lat: f64,
    pub bearing_deg: f64,
    pub hfov_deg: f64,
    /// `WIDTHxHEIGHT`.
    pub resolution: String,
    /// Ground range in metres at detect, observe, recognise and identify.
    pub ranges_m: [f64; 4],
}

/// Cameras near one another at this scale, counted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ViewCluster {
    /// The mean position of its cameras.
    pub lon: f64,
    pub lat: f64,
    pub count: usize,
    /// Online or degraded.
    pub online: usize,
    pub offline: usize,
    /// Unknown, maintenance and the rest.
    pub other: usize,
    pub checkpoints: usize,
}

/// A road, simplified to the scale.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ViewRoad {
    pub id: String,
    pub name: Option<String>,
    pub class: String,
    pub coords: Vec<[f64; 2]>,
}

/// A grid cell with its road coverage at the level asked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ViewCell {
    pub id: String,
    pub name: String,
    pub level: u8,
    pub coords: Vec<[f64; 2]>,
    /// `None` while the report is being computed or when the cell has no road.
    pub covered_pct: Option<f64>,
    pub cameras: usize,
}

/// An entrance; `compliant` is `None` while the check is being computed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ViewEntrance {
    pub id: String,
    pub name: String,
    pub lon: f64,
    pub lat: f64,
    pub compliant: Option<bool>,
}

/// A ring member: where it is, its state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ViewMember {
    pub id: String,
    pub lon: f64,
    pub lat: f64,
    pub status: String,
}

/// A ring with its state (rings are few: every one comes with every view).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ViewRing {
    pub id: String,
    pub name: String,
    pub level: u8,
    pub open: bool,
    pub down: Vec<String>,
    pub coords: Vec<[f64; 2]>,
    pub members: Vec<ViewMember>,
    /// `[lon, lat]` where a road crosses the ring unguarded, with the road's name or id.
    pub leaks: Vec<ViewLeak>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ViewLeak {
    pub lon: f64,
    pub lat: f64,
    pub road: String,
    pub guarded_when_up_by: Vec<String>,
}

/// One view's answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MapView {
    /// Metres per pixel of the view.
    pub mpp: f64,
    pub level: DoriLevel,
    /// Cameras in service in the box.
    pub cameras_in_view: usize,
    /// `points` (every camera in `cameras`) or `clusters` (in `clusters`).
    pub mode: String,
    pub cameras: Vec<ViewCamera>,
    pub clusters: Vec<ViewCluster>,
    pub roads: Vec<ViewRoad>,
    /// Roads in the box left out at this scale (minor classes).
    pub roads_left_out: usize,
    /// The grid level shown (`None` when there are no cells with outlines).
    pub cell_level: Option<u8>,
    pub cells: Vec<ViewCell>,
    /// The coverage report is still being computed: ask again for the shading.
    pub coverage_pending: bool,
    pub entrances: Vec<ViewEntrance>,
    /// Uncovered stretches of the roads in view at `level` (street scale only).
    pub gaps: Vec<Vec<[f64; 2]>>,
    pub rings: Vec<ViewRing>,
}

/// The whole city's extent and counts, for the first view.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MapExtent {
    /// `[min lon, min lat, max lon, max lat]` of cameras, roads and cells; `None` for an empty map.
    pub bbox: Option<[f64; 4]>,
    pub cameras: usize,
    pub roads: usize,
    pub cells: usize,
    pub rings: usize,
    pub entrances: usize,
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

fn ll(m: &GeoModel, p: Xy) -> [f64; 2] {
    let [lon, lat] = m.lonlat(p);
    [round6(lon), round6(lat)]
}

fn grow(b: &mut [f64; 4], p: Xy) {
    b[0] = b[0].min(p.x);
    b[1] = b[1].min(p.y);
    b[2] = b[2].max(p.x);
    b[3] = b[3].max(p.y);
}

/// The extent of everything on the map.
pub fn extent(m: &GeoModel) -> MapExtent {
    let mut b = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    for (i, c) in m.cameras.iter().enumerate() {
        if c.in_service() {
            grow(&mut b, m.cam_pos[i]);
        }
    }
    for p in &m.net.nodes {
        grow(&mut b, *p);
    }
    for c in &m.cells {
        for p in &c.polygon {
            grow(&mut b, *p);
        }
    }
    let bbox = b[0].is_finite().then(|| {
        let (lo, hi) = (m.lonlat(Xy::new(b[0], b[1])), m.lonlat(Xy::new(b[2], b[3])));
        [round6(lo[0]), round6(lo[1]), round6(hi[0]), round6(hi[1])]
    });
    MapExtent {
        bbox,
        cameras: m.cameras.iter().filter(|c| c.in_service()).count(),
        roads: m.net.ways.len(),
        cells: m.cells.iter().filter(|c| c.polygon.len() >= 3).count(),
        rings: m.rings.len(),
        entrances: m.entrances.len(),
    }
}

/// Douglas–Peucker: the points of `pts` needed to stay within `tol` of the line.
fn simplify(pts: &[Xy], tol: f64) -> Vec<Xy> {
    if pts.len() <= 2 || tol <= 0.0 {
        return pts.to_vec();
    }
    let mut keep = vec![false; pts.len()];
    keep[0] = true;
    keep[pts.len() - 1] = true;
    let mut stack = vec![(0usize, pts.len() - 1)];
    while let Some((a, b)) = stack.pop() {
        if b <= a + 1 {
            continue;
        }
        let (pa, pb) = (pts[a], pts[b]);
        let d = pb.minus(pa);
        let len = d.len();
        let (mut far, mut at) = (0.0, a);
        for (k, p) in pts.iter().enumerate().take(b).skip(a + 1) {
            let dist = if len < 1e-9 { p.dist(pa) } else { d.cross(p.minus(pa)).abs() / len };
            if dist > far {
                far = dist;
                at = k;
            }
        }
        if far > tol {
            keep[at] = true;
            stack.push((a, at));
            stack.push((at, b));
        }
    }
    pts.iter().zip(keep).filter(|(_, k)| *k).map(|(p, _)| *p).collect()
}

fn meets(a: [f64; 4], b: [f64; 4]) -> bool {
    a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3]
}

fn bounds_of(pts: &[Xy]) -> [f64; 4] {
    let mut b = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    for p in pts {
        grow(&mut b, *p);
    }
    b
}

/// What the dashboard needs of the report and checks to shade cells, colour entrances and draw
/// rings; each `None` while being computed.
#[derive(Default)]
pub struct Derived<'a> {
    pub report: Option<&'a CoverageReport>,
    pub entrances_ok: Option<&'a [bool]>,
    pub rings: &'a [RingState],
}

/// The view `q` of the model.
pub fn view(m: &GeoModel, q: &ViewQuery, d: &Derived<'_>, lim: &ViewLimits) -> MapView {
    let lo = m.proj.fwd(q.bbox[0], q.bbox[1]);
    let hi = m.proj.fwd(q.bbox[2], q.bbox[3]);
    let b = [lo.x.min(hi.x), lo.y.min(hi.y), lo.x.max(hi.x), lo.y.max(hi.y)];
    let mpp = ((b[2] - b[0]) / q.width_px.max(1.0)).max(1e-3);
    let inside = |p: Xy| p.x >= b[0] && p.x <= b[2] && p.y >= b[1] && p.y <= b[3];

    // Cameras: one by one, or clustered on a grid of the projection (stable while panning).
    let in_view: Vec<usize> =
        (0..m.cameras.len()).filter(|&i| m.cameras[i].in_service() && inside(m.cam_pos[i])).collect();
    let points = in_view.len() <= lim.max_points;
    let (mut cameras, mut clusters) = (Vec::new(), Vec::new());
    if points {
        cameras = in_view.iter().map(|&i| view_camera(m, i)).collect();
    } else {
        let area = (b[2] - b[0]) * (b[3] - b[1]);
        let side = (lim.cluster_px * mpp).max((area / lim.max_clusters.max(1) as f64).sqrt());
        let mut bins: HashMap<(i64, i64), (Xy, ViewCluster)> = HashMap::new();
        for &i in &in_view {
            let p = m.cam_pos[i];
            let key = ((p.x / side).floor() as i64, (p.y / side).floor() as i64);
            let (sum, cl) = bins.entry(key).or_insert((
                Xy::new(0.0, 0.0),
                ViewCluster { lon: 0.0, lat: 0.0, count: 0, online: 0, offline: 0, other: 0, checkpoints: 0 },
            ));
            *sum = sum.plus(p);
            let c = &m.cameras[i];
            cl.count += 1;
            if c.is_online() {
                cl.online += 1;
            } else if c.status == crate::config::CameraStatus::Offline {
                cl.offline += 1;
            } else {
                cl.other += 1;
            }
            cl.checkpoints += usize::from(c.kind == CameraKind::Checkpoint);
        }
        let mut v: Vec<((i64, i64), (Xy, ViewCluster))> = bins.into_iter().collect();
        v.sort_by_key(|(k, _)| *k);
        for (_, (sum, mut cl)) in v {
            let [lon, lat] = ll(m, sum.scale(1.0 / cl.count as f64));
            cl.lon = lon;
            cl.lat = lat;
            clusters.push(cl);
        }
    }

    // Roads: those meeting the box, minor ones only when zoomed in, simplified to the pixel.
    let minor_too = mpp <= lim.minor_roads_mpp;
    let (mut roads, mut left_out) = (Vec::new(), 0);
    for w in &m.net.ways {
        if w.segs.is_empty() {
            continue;
        }
        let mut pts = vec![m.net.ends(w.segs.start).0];
        pts.extend(w.segs.clone().map(|s| m.net.ends(s).1));
        if !meets(bounds_of(&pts), b) {
            continue;
        }
        if !minor_too && !MAJOR.contains(&w.class.as_str()) {
            left_out += 1;
            continue;
        }
        roads.push(ViewRoad {
            id: w.id.clone(),
            name: w.name.clone(),
            class: w.class.clone(),
            coords: simplify(&pts, mpp * 0.75).into_iter().map(|p| ll(m, p)).collect(),
        });
    }

    // Cells: the finest level whose cells in view are few enough to shade.
    let mut by_level: std::collections::BTreeMap<u8, Vec<usize>> = Default::default();
    for (i, c) in m.cells.iter().enumerate() {
        if c.polygon.len() >= 3 && meets(bounds_of(&c.polygon), b) {
            by_level.entry(c.level).or_default().push(i);
        }
    }
    let chosen = by_level.iter().rev().find(|(_, v)| v.len() <= lim.max_cells).or_else(|| by_level.iter().next());
    let cell_level = chosen.map(|(l, _)| *l);
    let cov: HashMap<&str, (Option<f64>, usize)> = d
        .report
        .map(|r| r.cells.iter().map(|c| (c.id.as_str(), (c.roads.covered_pct, c.cameras.total))).collect())
        .unwrap_or_default();
    let cells = chosen
        .map(|(_, v)| v.as_slice())
        .unwrap_or(&[])
        .iter()
        .map(|&i| {
            let c = &m.cells[i];
            let mut coords: Vec<[f64; 2]> = simplify(&c.polygon, mpp * 0.5).into_iter().map(|p| ll(m, p)).collect();
            if let Some(&f) = coords.first() {
                coords.push(f);
            }
            let (pct, cams) = cov.get(c.id.as_str()).copied().unwrap_or((None, 0));
            ViewCell { id: c.id.clone(), name: c.name.clone(), level: c.level, coords, covered_pct: pct, cameras: cams }
        })
        .collect();

    // Street scale: entrances and the coverage gaps of the roads in view.
    let (mut entrances, mut gaps) = (Vec::new(), Vec::new());
    if mpp <= lim.detail_mpp {
        for (i, e) in m.entrances.iter().enumerate() {
            if inside(e.pos) {
                let [lon, lat] = ll(m, e.pos);
                entrances.push(ViewEntrance {
                    id: e.input.id.clone(),
                    name: e.input.name.clone(),
                    lon,
                    lat,
                    compliant: d.entrances_ok.and_then(|ok| ok.get(i).copied()),
                });
            }
        }
    }
    if mpp <= lim.gaps_mpp {
        gaps = view_gaps(m, b, q);
    }

    let rings = d
        .rings
        .iter()
        .map(|r| {
            let mut coords: Vec<[f64; 2]> = r.polygon.iter().map(|p| [round6(p[0]), round6(p[1])]).collect();
            if let Some(&f) = coords.first() {
                coords.push(f);
            }
            let members = r
                .members
                .iter()
                .filter_map(|mb| {
                    let i = *m.cam_by_id.get(&mb.id)?;
                    let [lon, lat] = ll(m, m.cam_pos[i]);
                    Some(ViewMember { id: mb.id.clone(), lon, lat, status: m.cameras[i].status.as_str().into() })
                })
                .collect();
            ViewRing {
                id: r.id.clone(),
                name: r.name.clone(),
                level: r.level,
                open: r.open,
                down: r.down.clone(),
                coords,
                members,
                leaks: r
                    .leaks
                    .iter()
                    .map(|l| ViewLeak {
                        lon: round6(l.lon),
                        lat: round6(l.lat),
                        road: l.road_name.clone().unwrap_or_else(|| l.road_id.clone()),
                        guarded_when_up_by: l.guarded_when_up_by.clone(),
                    })
                    .collect(),
            }
        })
        .collect();

    MapView {
        mpp: (mpp * 1000.0).round() / 1000.0,
        level: q.level,
        cameras_in_view: in_view.len(),
        mode: if points { "points" } else { "clusters" }.into(),
        cameras,
        clusters,
        roads,
        roads_left_out: left_out,
        cell_level,
        cells,
        coverage_pending: d.report.is_none(),
        entrances,
        gaps,
        rings,
    }
}

/// Uncovered stretches of the road segments meeting box `b` (projected), at `q.level` by the
/// cameras that count under `q.states`: only the cameras whose sectors can reach the box are
/// clipped, so the cost follows the view, not the city.
fn view_gaps(m: &GeoModel, b: [f64; 4], q: &ViewQuery) -> Vec<Vec<[f64; 2]>> {
    // No camera reaches farther than the largest sector at this level.
    let reach = (0..m.cameras.len())
        .map(|i| m.cameras[i].sector(m.cam_pos[i], m.table, q.level).radius)
        .filter(|r| r.is_finite())
        .fold(0.0, f64::max);
    let idx = SectorIndex::new(m, q.level, |i| {
        let p = m.cam_pos[i];
        m.counts(i, q.states)
            && p.x >= b[0] - reach
            && p.x <= b[2] + reach
            && p.y >= b[1] - reach
            && p.y <= b[3] + reach
    });
    let mut segs: Vec<usize> = m.net.segs_in(b).collect();
    segs.sort_unstable();
    // Uncovered pieces in segment order; a piece that ends where the next segment of the same
    // way begins uncovered continues the same line.
    let mut out: Vec<Vec<[f64; 2]>> = Vec::new();
    let mut open: Option<usize> = None;
    for s in segs {
        let (a, e) = m.net.ends(s);
        let mut iv: Vec<(f64, f64)> = idx.clip(a, e).into_iter().flat_map(|(_, v)| v).collect();
        fov::merge(&mut iv);
        let continues = open == Some(s);
        open = None;
        for (k, (u0, u1)) in complement(&iv).into_iter().enumerate() {
            let end = ll(m, a.lerp(e, u1));
            match out.last_mut() {
                Some(line) if k == 0 && continues && u0 <= 1e-9 => line.push(end),
                _ => out.push(vec![ll(m, a.lerp(e, u0)), end]),
            }
            if u1 >= 1.0 - 1e-9 && s + 1 < m.net.segs.len() && m.net.segs[s + 1].way == m.net.segs[s].way {
                open = Some(s + 1);
            }
        }
    }
    out
}

/// Cameras whose id or name holds `q` (case-insensitive), at most `limit`, exact id first.
pub fn search(m: &GeoModel, q: &str, limit: usize) -> Vec<ViewCamera> {
    let needle = q.trim().to_lowercase();
    if needle.is_empty() {
        return Vec::new();
    }
    let mut hits: Vec<(u8, usize)> = m
        .cameras
        .iter()
        .enumerate()
        .filter(|(_, c)| c.in_service())
        .filter_map(|(i, c)| {
            let (id, name) = (c.id.to_lowercase(), c.name.to_lowercase());
            if id == needle {
                Some((0, i))
            } else if id.starts_with(&needle) || name.starts_with(&needle) {
                Some((1, i))
            } else if id.contains(&needle) || name.contains(&needle) {
                Some((2, i))
            } else {
                None
            }
        })
        .collect();
    hits.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| m.cameras[a.1].id.cmp(&m.cameras[b.1].id)));
    hits.truncate(limit);
    hits.into_iter().map(|(_, i)| view_camera(m, i)).collect()
}

/// Camera `i` as the map shows it.
fn view_camera(m: &GeoModel, i: usize) -> ViewCamera {
    let c = &m.cameras[i];
    let [lon, lat] = ll(m, m.cam_pos[i]);
    ViewCamera {
        id: c.id.clone(),
        name: c.name.clone(),
        kind: c.kind.as_str().into(),
        status: c.status.as_str().into(),
        lon,
        lat,
        bearing_deg: c.bearing_deg,
        hfov_deg: c.hfov_deg,
        resolution: format!("{}x{}", c.width_px, c.height_px),
        ranges_m: RANGE_LEVELS.map(|l| {
            let r = c.sector(m.cam_pos[i], m.table, l).radius;
            if r.is_finite() { (r * 10.0).round() / 10.0 } else { 0.0 }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplify_keeps_corners_and_ends() {
        let pts: Vec<Xy> =
            (0..=10).map(|i| Xy::new(i as f64, 0.0)).chain((1..=10).map(|i| Xy::new(10.0, i as f64))).collect();
        let s = simplify(&pts, 0.1);
        assert_eq!(s, vec![Xy::new(0.0, 0.0), Xy::new(10.0, 0.0), Xy::new(10.0, 10.0)]);
        // A bend smaller than the tolerance goes; a larger one stays.
        let bend = [Xy::new(0.0, 0.0), Xy::new(5.0, 0.4), Xy::new(10.0, 0.0)];
        assert_eq!(simplify(&bend, 0.5).len(), 2);
        assert_eq!(simplify(&bend, 0.3).len(), 3);
    }
}
