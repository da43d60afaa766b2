//! The geography model: cameras with their views, the road network, grid cells with outlines,
//! entrances and checkpoint rings, all in one local projection, with spatial indexes.

use std::collections::HashMap;

use rstar::{AABB, RTree, RTreeObject};

use super::dori::{self, DoriLevel};
use super::fov::Sector;
use super::input::EntranceInput;
use super::network::RoadNetwork;
use super::proj::{LocalProj, Xy};
use crate::config::{CameraKind, CameraStatus, DoriTable};
pub use crate::registry::{CamGeo, GeoInputs, RingInput};

// A camera, a ring and the model's inputs are the registry's rows (it stores and returns them);
// what geography computes from them is here.
impl CamGeo {
    /// Streaming (online, or degraded but still delivering).
    pub fn is_online(&self) -> bool {
        matches!(self.status, CameraStatus::Online | CameraStatus::Degraded)
    }

    /// Still part of the network (not decommissioned).
    pub fn in_service(&self) -> bool {
        self.status != CameraStatus::Decommissioned
    }

    /// At least `min` = (width, height) pixels, in either orientation.
    pub fn has_resolution(&self, min: (u32, u32)) -> bool {
        let (a, b) = (self.width_px.max(self.height_px), self.width_px.min(self.height_px));
        a >= min.0.max(min.1) && b >= min.0.min(min.1)
    }

    /// The network layer (一类/二类/三类点): class 1 = public-security points on streets and
    /// checkpoints, class 2 = units' entrances, compounds and shops, class 3 = rental housing and
    /// households. Derived from the kind, so every camera has one.
    pub fn layer(&self) -> &'static str {
        match self.kind {
            CameraKind::Street | CameraKind::Checkpoint => "class1",
            CameraKind::Entrance | CameraKind::Compound | CameraKind::Shop => "class2",
            CameraKind::RentalHousing | CameraKind::Household => "class3",
        }
    }

    /// The ground sector in which this camera reaches `level`.
    pub fn sector(&self, pos: Xy, table: DoriTable, level: DoriLevel) -> Sector {
        let ppm = level.ppm(table).unwrap_or(f64::INFINITY);
        let slant = dori::slant_range_m(self.width_px, self.hfov_deg, ppm);
        Sector {
            apex: pos,
            bearing_deg: self.bearing_deg,
            hfov_deg: self.hfov_deg,
            radius: dori::ground_range_m(slant, self.mounting_height_m),
        }
    }
}

/// A grid cell; `polygon` is empty when the cell has no outline (configured by name only).
#[derive(Debug, Clone)]
pub struct Cell {
    pub id: String,
    pub name: String,
    pub level: u8,
    pub parent: Option<String>,
    pub polygon: Vec<Xy>,
}

/// An entrance of a unit, projected.
#[derive(Debug, Clone)]
pub struct Entrance {
    pub input: EntranceInput,
    pub pos: Xy,
}

/// A ring, projected.
#[derive(Debug, Clone)]
pub struct Ring {
    pub input: RingInput,
    pub polygon: Vec<Xy>,
    /// Member cameras that are not in the model, by id.
    pub unknown_members: Vec<String>,
}

impl Ring {
    pub fn area_m2(&self) -> f64 {
        polygon_area(&self.polygon).abs()
    }
}

#[derive(Debug, Clone, Copy)]
struct Boxed {
    idx: u32,
    env: AABB<[f64; 2]>,
}

impl RTreeObject for Boxed {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.env
    }
}

/// A piece `[t0, t1]` of a road segment inside one grid cell.
#[derive(Debug, Clone, Copy)]
pub struct Piece {
    pub t0: f64,
    pub t1: f64,
    pub cell: u32,
}

/// The model. Build once, refresh camera states with [`GeoModel::set_statuses`].
#[derive(Debug, Clone)]
pub struct GeoModel {
    pub proj: LocalProj,
    pub table: DoriTable,
    pub cameras: Vec<CamGeo>,
    pub cam_pos: Vec<Xy>,
    pub cam_by_id: HashMap<String, usize>,
    pub net: RoadNetwork,
    pub cells: Vec<Cell>,
    pub cell_by_id: HashMap<String, usize>,
    /// Per road segment, its pieces in cells with outlines (one run per grid level).
    pub seg_pieces: Vec<Vec<Piece>>,
    /// Per camera, the cells it belongs to (its own and their ancestors).
    pub cam_cells: Vec<Vec<u32>>,
    pub entrances: Vec<Entrance>,
    /// Per entrance, the cells it belongs to.
    pub entrance_cells: Vec<Vec<u32>>,
    pub rings: Vec<Ring>,
    cell_index: RTree<Boxed>,
    /// Every camera in service at the coarsest level: what can see a point at all.
    pub(crate) see_index: Option<super::coverage::SectorIndex>,
}

impl GeoModel {
    pub fn build(inp: GeoInputs) -> GeoModel {
        let proj = LocalProj::around(
            inp.cameras
                .iter()
                .map(|c| [c.lon, c.lat])
                .chain(inp.roads.iter().flat_map(|r| r.coords.iter().copied()))
                .collect::<Vec<_>>()
                .iter(),
        );
        let cam_pos: Vec<Xy> = inp.cameras.iter().map(|c| proj.fwd(c.lon, c.lat)).collect();
        let cam_by_id = inp.cameras.iter().enumerate().map(|(i, c)| (c.id.clone(), i)).collect();
        let net = RoadNetwork::build(&inp.roads, &proj);
        let cells: Vec<Cell> = inp
            .cells
            .iter()
            .map(|c| Cell {
                id: c.id.clone(),
                name: c.name.clone(),
                level: c.level,
                parent: c.parent.clone(),
                polygon: open_ring(c.polygon.iter().map(|p| proj.fwd_pt(*p)).collect()),
            })
            .collect();
        let cell_by_id: HashMap<String, usize> = cells.iter().enumerate().map(|(i, c)| (c.id.clone(), i)).collect();
        let cell_index = RTree::bulk_load(
            cells
                .iter()
                .enumerate()
                .filter(|(_, c)| c.polygon.len() >= 3)
                .map(|(i, c)| Boxed { idx: i as u32, env: env_of(&c.polygon) })
                .collect(),
        );
        let entrances: Vec<Entrance> =
            inp.entrances.into_iter().map(|e| Entrance { pos: proj.fwd(e.lon, e.lat), input: e }).collect();
        let rings = inp
            .rings
            .into_iter()
            .map(|r| {
                let unknown_members = r.members.iter().filter(|m| !cam_by_id_has(&cam_by_id, m)).cloned().collect();
                let polygon = match &r.polygon {
                    Some(p) => open_ring(p.iter().map(|q| proj.fwd_pt(*q)).collect()),
                    None => r.members.iter().filter_map(|m| cam_by_id.get(m).map(|&i| cam_pos[i])).collect(),
                };
                Ring { input: r, polygon, unknown_members }
            })
            .collect();
        let mut m = GeoModel {
            proj,
            table: inp.table.unwrap_or(DoriTable::Iec2014),
            cameras: inp.cameras,
            cam_pos,
            cam_by_id,
            net,
            cells,
            cell_by_id,
            seg_pieces: Vec::new(),
            cam_cells: Vec::new(),
            entrances,
            entrance_cells: Vec::new(),
            rings,
            cell_index,
            see_index: None,
        };
        m.seg_pieces = (0..m.net.segs.len()).map(|s| m.pieces_of(s)).collect();
        m.cam_cells =
            (0..m.cameras.len()).map(|i| m.cells_of(m.cameras[i].grid_cell.as_deref(), m.cam_pos[i])).collect();
        m.entrance_cells =
            m.entrances.iter().map(|e| m.cells_of(e.input.grid_cell.as_deref(), e.pos)).collect::<Vec<_>>();
        let coarsest = DoriLevel::levels(m.table).next().unwrap_or(DoriLevel::Monitor);
        m.see_index = Some(super::coverage::SectorIndex::new(&m, coarsest, |_| true));
        m
    }

    /// Replaces camera states (from the registry or live health); unknown ids are ignored.
    pub fn set_statuses<'a>(&mut self, states: impl IntoIterator<Item = (&'a str, CameraStatus)>) {
        for (id, st) in states {
            if let Some(&i) = self.cam_by_id.get(id) {
                self.cameras[i].status = st;
            }
        }
    }

    /// Appends cameras (ids not already in the model): positions, id lookup, cells and the
    /// point-query index follow, as [`GeoModel::build`] would have made them.
    pub fn add_cameras(&mut self, extra: Vec<CamGeo>) {
        for c in extra {
            let p = self.proj.fwd(c.lon, c.lat);
            let i = self.cameras.len();
            self.cam_by_id.insert(c.id.clone(), i);
            self.cam_pos.push(p);
            let cells = self.cells_of(c.grid_cell.as_deref(), p);
            self.cam_cells.push(cells);
            self.cameras.push(c);
        }
        let coarsest = DoriLevel::levels(self.table).next().unwrap_or(DoriLevel::Monitor);
        self.see_index = Some(super::coverage::SectorIndex::new(self, coarsest, |_| true));
    }

    pub fn camera(&self, id: &str) -> Option<(usize, &CamGeo)> {
        self.cam_by_id.get(id).map(|&i| (i, &self.cameras[i]))
    }

    /// The cells containing a point, any level (cells with outlines only).
    pub fn cells_at(&self, p: Xy) -> Vec<usize> {
        self.cell_index
            .locate_in_envelope_intersecting(AABB::from_point([p.x, p.y]))
            .filter(|b| point_in_polygon(p, &self.cells[b.idx as usize].polygon))
            .map(|b| b.idx as usize)
            .collect()
    }

    /// The given cell (or, without one, the cells whose outlines contain `p`), plus ancestors.
    fn cells_of(&self, given: Option<&str>, p: Xy) -> Vec<u32> {
        let mut out: Vec<u32> = match given.and_then(|id| self.cell_by_id.get(id)) {
            Some(&i) => vec![i as u32],
            None => self.cells_at(p).into_iter().map(|i| i as u32).collect(),
        };
        let mut k = 0;
        while k < out.len() {
            let parent = self.cells[out[k] as usize].parent.as_deref().and_then(|p| self.cell_by_id.get(p));
            if let Some(&pi) = parent
                && !out.contains(&(pi as u32))
            {
                out.push(pi as u32);
            }
            k += 1;
        }
        out
    }

    /// A segment split where it crosses cell outlines, each piece given to the cell holding its
    /// middle. Pieces of different levels overlap (a level-3 piece lies inside a level-2 one).
    fn pieces_of(&self, seg: usize) -> Vec<Piece> {
        let (a, b) = self.net.ends(seg);
        let env = AABB::from_corners([a.x.min(b.x), a.y.min(b.y)], [a.x.max(b.x), a.y.max(b.y)]);
        let cands: Vec<usize> = self.cell_index.locate_in_envelope_intersecting(env).map(|c| c.idx as usize).collect();
        if cands.is_empty() {
            return Vec::new();
        }
        let mut cuts = vec![0.0, 1.0];
        for &c in &cands {
            let poly = &self.cells[c].polygon;
            for i in 0..poly.len() {
                if let Some((t, _)) = seg_intersect(a, b, poly[i], poly[(i + 1) % poly.len()]) {
                    cuts.push(t);
                }
            }
        }
        cuts.sort_by(f64::total_cmp);
        cuts.dedup_by(|x, y| (*x - *y).abs() < 1e-9);
        let mut out = Vec::new();
        for w in cuts.windows(2) {
            let mid = a.lerp(b, (w[0] + w[1]) / 2.0);
            for &c in &cands {
                if point_in_polygon(mid, &self.cells[c].polygon) {
                    out.push(Piece { t0: w[0], t1: w[1], cell: c as u32 });
                }
            }
        }
        out
    }

    /// Back to `[lon, lat]`.
    pub fn lonlat(&self, p: Xy) -> [f64; 2] {
        self.proj.inv(p)
    }
}

fn cam_by_id_has(m: &HashMap<String, usize>, id: &str) -> bool {
    m.contains_key(id)
}

/// Drops the closing vertex of a closed ring.
fn open_ring(mut v: Vec<Xy>) -> Vec<Xy> {
    if v.len() > 1 && v.first().map(|f| f.dist(v[v.len() - 1]) < 1e-6).unwrap_or(false) {
        v.pop();
    }
    v
}

fn env_of(poly: &[Xy]) -> AABB<[f64; 2]> {
    let pts: Vec<[f64; 2]> = poly.iter().map(|p| [p.x, p.y]).collect();
    AABB::from_points(pts.iter())
}

/// Even-odd rule; points on an edge may fall either way.
pub fn point_in_polygon(p: Xy, poly: &[Xy]) -> bool {
    let mut inside = false;
    let n = poly.len();
    if n < 3 {
        return false;
    }
    let mut j = n - 1;
    for i in 0..n {
        let (a, b) = (poly[i], poly[j]);
        if (a.y > p.y) != (b.y > p.y) && p.x < (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Signed area (positive counter-clockwise).
pub fn polygon_area(poly: &[Xy]) -> f64 {
    let n = poly.len();
    (0..n).map(|i| poly[i].cross(poly[(i + 1) % n])).sum::<f64>() / 2.0
}

/// Where segment `a→b` crosses edge `c→d`: `(t along a→b in [0,1], u along c→d in [0,1))`.
/// The half-open edge range counts a crossing through a shared vertex once.
pub fn seg_intersect(a: Xy, b: Xy, c: Xy, d: Xy) -> Option<(f64, f64)> {
    let r = b.minus(a);
    let s = d.minus(c);
    let den = r.cross(s);
    if den.abs() < 1e-12 {
        return None; // parallel or collinear: touching along, not crossing
    }
    let q = c.minus(a);
    let t = q.cross(s) / den;
    let u = q.cross(r) / den;
    ((0.0..=1.0).contains(&t) && (0.0..1.0).contains(&u)).then_some((t, u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygon_helpers() {
        let sq = [Xy::new(0.0, 0.0), Xy::new(10.0, 0.0), Xy::new(10.0, 10.0), Xy::new(0.0, 10.0)];
        assert!(point_in_polygon(Xy::new(5.0, 5.0), &sq));
        assert!(!point_in_polygon(Xy::new(15.0, 5.0), &sq));
        assert_eq!(polygon_area(&sq), 100.0);
        let (t, u) = seg_intersect(Xy::new(5.0, -5.0), Xy::new(5.0, 5.0), sq[0], sq[1]).unwrap();
        assert!((t - 0.5).abs() < 1e-12 && (u - 0.5).abs() < 1e-12);
        // Through a vertex: counted on one of the two edges only.
        let hits =
            (0..4).filter(|&i| seg_intersect(Xy::new(-5.0, -5.0), Xy::new(5.0, 5.0), sq[i], sq[(i + 1) % 4]).is_some());
        assert_eq!(hits.count(), 1);
    }
}
