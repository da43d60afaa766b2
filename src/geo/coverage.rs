//! Coverage for planners: which parts of which roads a set of cameras sees at a DORI level, per
//! road, per grid cell and overall, and the gaps.
//!
//! Every road segment is clipped exactly against the sectors whose bounds meet it (an R-tree over
//! sector bounds finds them); the covered parameter intervals are merged, so covered + uncovered
//! is the segment's length by construction, and cell and overall totals are sums of the same
//! pieces.

use std::collections::BTreeMap;

use rstar::{AABB, RTree, RTreeObject};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::dori::DoriLevel;
use super::fov::{self, Sector};
use super::model::GeoModel;
use super::proj::Xy;
use crate::config::{CameraKind, CameraStatus, Owner};

/// Which cameras count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StateFilter {
    /// Every camera in service (planned coverage).
    All,
    /// Only cameras streaming now (online or degraded).
    Online,
}

impl std::str::FromStr for StateFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(StateFilter::All),
            "online" => Ok(StateFilter::Online),
            _ => Err(format!("unknown camera state filter {s:?}; expected all or online")),
        }
    }
}

/// What to compute coverage for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct CoverageQuery {
    pub level: DoriLevel,
    pub states: StateFilter,
}

#[derive(Debug, Clone, Copy)]
struct SectorBox {
    cam: u32,
    env: AABB<[f64; 2]>,
}

impl RTreeObject for SectorBox {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.env
    }
}

/// The sectors of the cameras that count, indexed.
#[derive(Debug, Clone)]
pub struct SectorIndex {
    pub sectors: Vec<Sector>,
    tree: RTree<SectorBox>,
}

impl SectorIndex {
    pub fn new(m: &GeoModel, level: DoriLevel, keep: impl Fn(usize) -> bool) -> SectorIndex {
        let sectors: Vec<Sector> =
            m.cameras.iter().enumerate().map(|(i, c)| c.sector(m.cam_pos[i], m.table, level)).collect();
        let boxes = sectors
            .iter()
            .enumerate()
            .filter(|(i, s)| !s.is_empty() && keep(*i))
            .map(|(i, s)| {
                let b = s.bounds();
                SectorBox { cam: i as u32, env: AABB::from_corners([b[0], b[1]], [b[2], b[3]]) }
            })
            .collect();
        SectorIndex { sectors, tree: RTree::bulk_load(boxes) }
    }

    /// Cameras whose sector bounds meet the box.
    pub fn near(&self, b: [f64; 4]) -> impl Iterator<Item = usize> + '_ {
        self.tree
            .locate_in_envelope_intersecting(AABB::from_corners([b[0], b[1]], [b[2], b[3]]))
            .map(|s| s.cam as usize)
    }

    /// The covered intervals of segment `a→b`, merged, from the cameras of the index for which
    /// `counts` holds. With an index of every camera ([`SectorIndex::every_camera`]) and `counts`
    /// the query's filter this is exactly what [`GeoModel::coverage`] computes for the segment
    /// (the same candidates, the same clips, merged the same way).
    pub fn covered(&self, a: Xy, b: Xy, counts: impl Fn(usize) -> bool) -> Vec<(f64, f64)> {
        let bx = [a.x.min(b.x), a.y.min(b.y), a.x.max(b.x), a.y.max(b.y)];
        let mut iv: Vec<(f64, f64)> =
            self.near(bx).filter(|&c| counts(c)).flat_map(|c| self.sectors[c].clip_segment(a, b)).collect();
        fov::merge(&mut iv);
        iv
    }

    /// Every camera's sector at `level`, whatever its state: the index a state change does not
    /// invalidate (filter by the query when clipping, see [`SectorIndex::covered`]).
    pub fn every_camera(m: &GeoModel, level: DoriLevel) -> SectorIndex {
        SectorIndex::new(m, level, |_| true)
    }

    /// Per camera that sees any of it, the covered intervals of segment `a→b`.
    pub fn clip(&self, a: Xy, b: Xy) -> Vec<(usize, Vec<(f64, f64)>)> {
        let bx = [a.x.min(b.x), a.y.min(b.y), a.x.max(b.x), a.y.max(b.y)];
        self.near(bx)
            .filter_map(|c| {
                let iv = self.sectors[c].clip_segment(a, b);
                (!iv.is_empty()).then_some((c, iv))
            })
            .collect()
    }
}

/// Covered intervals per road segment for one query.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    pub query: CoverageQuery,
    pub covered: Vec<Vec<(f64, f64)>>,
}

impl GeoModel {
    /// Whether camera `i` counts under `states`.
    pub fn counts(&self, i: usize, states: StateFilter) -> bool {
        let c = &self.cameras[i];
        c.in_service() && (states == StateFilter::All || c.is_online())
    }

    /// Covered intervals of every road segment, computed on every core.
    pub fn coverage(&self, q: CoverageQuery) -> Coverage {
        let idx = SectorIndex::new(self, q.level, |i| self.counts(i, q.states));
        let n = self.net.segs.len();
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
        let chunk = n.div_ceil(threads).max(1);
        let mut covered: Vec<Vec<(f64, f64)>> = vec![Vec::new(); n];
        std::thread::scope(|s| {
            for (k, out) in covered.chunks_mut(chunk).enumerate() {
                let idx = &idx;
                s.spawn(move || {
                    for (j, slot) in out.iter_mut().enumerate() {
                        let (a, b) = self.net.ends(k * chunk + j);
                        let mut iv: Vec<(f64, f64)> = idx.clip(a, b).into_iter().flat_map(|(_, v)| v).collect();
                        fov::merge(&mut iv);
                        *slot = iv;
                    }
                });
            }
        });
        Coverage { query: q, covered }
    }
}

/// Which cameras count for `q`, by index (`GeoModel::counts` for each).
pub fn counting(m: &GeoModel, states: StateFilter) -> Vec<bool> {
    (0..m.cameras.len()).map(|i| m.counts(i, states)).collect()
}

impl Coverage {
    /// Coverage for `q` computed on every core against an index of every camera (see
    /// [`SectorIndex::every_camera`]), filtered by `counts`: equal to [`GeoModel::coverage`].
    pub fn compute_with(m: &GeoModel, all: &SectorIndex, q: CoverageQuery, counts: &[bool]) -> Coverage {
        let n = m.net.segs.len();
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
        let chunk = n.div_ceil(threads).max(1);
        let mut covered: Vec<Vec<(f64, f64)>> = vec![Vec::new(); n];
        std::thread::scope(|s| {
            for (k, out) in covered.chunks_mut(chunk).enumerate() {
                s.spawn(move || {
                    for (j, slot) in out.iter_mut().enumerate() {
                        let (a, b) = m.net.ends(k * chunk + j);
                        *slot = all.covered(a, b, |c| counts[c]);
                    }
                });
            }
        });
        Coverage { query: q, covered }
    }

    /// Brings this coverage, computed when cameras counted as `before` says, up to date with
    /// `after` (same model geometry, other camera states): only the segments whose bounds meet
    /// the sector bounds of a camera that started or stopped counting are clipped again, against
    /// `all` (every camera's sector at the query's level). The result equals a full
    /// recomputation. Returns the number of segments recomputed.
    pub fn update(&mut self, m: &GeoModel, all: &SectorIndex, before: &[bool], after: &[bool]) -> usize {
        let segs = affected_segments(m, all, before, after);
        let fresh: Vec<Vec<(f64, f64)>> = segs
            .iter()
            .map(|&s| {
                let (a, b) = m.net.ends(s);
                all.covered(a, b, |c| after[c])
            })
            .collect();
        for (s, iv) in segs.iter().zip(fresh) {
            self.covered[*s] = iv;
        }
        segs.len()
    }
}

/// The road segments whose bounds meet the sector bounds of a camera that counts in one of
/// `before` and `after` and not in the other (sorted, each once).
pub fn affected_segments(m: &GeoModel, all: &SectorIndex, before: &[bool], after: &[bool]) -> Vec<usize> {
    let mut segs: Vec<usize> = (0..before.len().min(after.len()))
        .filter(|&c| before[c] != after[c] && !all.sectors[c].is_empty())
        .flat_map(|c| m.net.segs_in(all.sectors[c].bounds()).collect::<Vec<_>>())
        .collect();
    segs.sort_unstable();
    segs.dedup();
    segs
}

/// Covered metres of `[t0, t1]` given merged intervals.
pub fn covered_within(iv: &[(f64, f64)], t0: f64, t1: f64) -> f64 {
    iv.iter().map(|&(a, b)| (b.min(t1) - a.max(t0)).max(0.0)).sum()
}

/// Metres of road, covered and not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct Lengths {
    pub total_m: f64,
    pub covered_m: f64,
    pub uncovered_m: f64,
    /// `None` when there is no road.
    pub covered_pct: Option<f64>,
}

impl Lengths {
    fn add_len(&mut self, total: f64, covered: f64) {
        self.total_m += total;
        self.covered_m += covered;
    }
    fn finish(mut self) -> Lengths {
        self.uncovered_m = self.total_m - self.covered_m;
        self.covered_pct = (self.total_m > 0.0).then(|| 100.0 * self.covered_m / self.total_m);
        self
    }
}

/// One road's coverage.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoadCoverage {
    pub id: String,
    pub name: Option<String>,
    pub class: String,
    #[serde(flatten)]
    pub lengths: Lengths,
}

/// Cameras counted several ways.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct CameraCounts {
    pub total: usize,
    pub by_kind: BTreeMap<String, usize>,
    pub by_owner: BTreeMap<String, usize>,
    pub by_layer: BTreeMap<String, usize>,
    pub by_state: BTreeMap<String, usize>,
}

/// One grid cell's coverage and what is in it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CellCoverage {
    pub id: String,
    pub name: String,
    pub level: u8,
    pub parent: Option<String>,
    /// Whether the cell has an outline (road lengths need one).
    pub has_outline: bool,
    pub roads: Lengths,
    pub cameras: CameraCounts,
    pub entrances: usize,
    pub entrances_compliant: usize,
    pub entrances_compliant_pct: Option<f64>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CoverageReport {
    pub query: CoverageQuery,
    pub dori_table: String,
    pub overall: Lengths,
    pub by_class: BTreeMap<String, Lengths>,
    pub roads: Vec<RoadCoverage>,
    pub cells: Vec<CellCoverage>,
    /// Cell ids, worst first: least road covered, then fewest compliant entrances.
    pub worst_cells: Vec<String>,
    pub cameras: CameraCounts,
}

impl Coverage {
    /// Aggregates per road, class, cell and overall. `entrance_ok[i]` says whether entrance `i`
    /// keeps the entrance rule.
    pub fn report(&self, m: &GeoModel, entrance_ok: &[bool]) -> CoverageReport {
        let mut overall = Lengths::default();
        let mut by_class: BTreeMap<String, Lengths> = BTreeMap::new();
        let mut roads = Vec::with_capacity(m.net.ways.len());
        for w in &m.net.ways {
            let mut l = Lengths::default();
            for s in w.segs.clone() {
                let len = m.net.segs[s].len;
                l.add_len(len, len * fov::total(&self.covered[s]));
            }
            overall.add_len(l.total_m, l.covered_m);
            by_class.entry(w.class.clone()).or_default().add_len(l.total_m, l.covered_m);
            roads.push(RoadCoverage {
                id: w.id.clone(),
                name: w.name.clone(),
                class: w.class.clone(),
                lengths: l.finish(),
            });
        }
        let mut cell_len = vec![Lengths::default(); m.cells.len()];
        for (s, pieces) in m.seg_pieces.iter().enumerate() {
            let len = m.net.segs[s].len;
            for p in pieces {
                cell_len[p.cell as usize]
                    .add_len(len * (p.t1 - p.t0), len * covered_within(&self.covered[s], p.t0, p.t1));
            }
        }
        let mut counts = vec![Tally::default(); m.cells.len()];
        let mut all = Tally::default();
        for (i, c) in m.cameras.iter().enumerate() {
            if !c.in_service() {
                continue;
            }
            let keys = Tally::keys(c);
            all.add(keys);
            for &k in &m.cam_cells[i] {
                counts[k as usize].add(keys);
            }
        }
        let mut ent = vec![(0usize, 0usize); m.cells.len()];
        for (i, cells) in m.entrance_cells.iter().enumerate() {
            for &k in cells {
                ent[k as usize].0 += 1;
                ent[k as usize].1 += usize::from(entrance_ok.get(i).copied().unwrap_or(false));
            }
        }
        let cells: Vec<CellCoverage> = m
            .cells
            .iter()
            .enumerate()
            .map(|(i, c)| CellCoverage {
                id: c.id.clone(),
                name: c.name.clone(),
                level: c.level,
                parent: c.parent.clone(),
                has_outline: c.polygon.len() >= 3,
                roads: cell_len[i].finish(),
                cameras: counts[i].counts(),
                entrances: ent[i].0,
                entrances_compliant: ent[i].1,
                entrances_compliant_pct: (ent[i].0 > 0).then(|| 100.0 * ent[i].1 as f64 / ent[i].0 as f64),
            })
            .collect();
        let mut ranked: Vec<&CellCoverage> =
            cells.iter().filter(|c| c.roads.total_m > 0.0 || c.entrances > 0).collect();
        ranked.sort_by(|a, b| {
            let key =
                |c: &CellCoverage| (c.roads.covered_pct.unwrap_or(100.0), c.entrances_compliant_pct.unwrap_or(100.0));
            let (ka, kb) = (key(a), key(b));
            ka.0.total_cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(b.roads.uncovered_m.total_cmp(&a.roads.uncovered_m))
        });
        CoverageReport {
            query: self.query,
            dori_table: m.table.as_str().to_string(),
            overall: overall.finish(),
            by_class: by_class.into_iter().map(|(k, v)| (k, v.finish())).collect(),
            roads,
            worst_cells: ranked.iter().map(|c| c.id.clone()).collect(),
            cells,
            cameras: all.counts(),
        }
    }

    /// The uncovered stretches of each road as `[lon, lat]` polylines, with the road's index
    /// into `m.net.ways` and the stretch's length. Consecutive segments join into one piece.
    pub fn gaps(&self, m: &GeoModel, min_len_m: f64) -> Vec<(usize, Vec<[f64; 2]>, f64)> {
        let mut out = Vec::new();
        for (wi, w) in m.net.ways.iter().enumerate() {
            let mut cur: Vec<Xy> = Vec::new();
            let mut cur_len = 0.0;
            let mut flush = |cur: &mut Vec<Xy>, cur_len: &mut f64| {
                if cur.len() >= 2 && *cur_len >= min_len_m {
                    out.push((wi, cur.iter().map(|p| m.lonlat(*p)).collect(), *cur_len));
                }
                cur.clear();
                *cur_len = 0.0;
            };
            for s in w.segs.clone() {
                let (a, b) = m.net.ends(s);
                let len = m.net.segs[s].len;
                for (u0, u1) in complement(&self.covered[s]) {
                    let (p, q) = (a.lerp(b, u0), a.lerp(b, u1));
                    if cur.last().is_none_or(|l| l.dist(p) > 1e-6) {
                        flush(&mut cur, &mut cur_len);
                        cur.push(p);
                    }
                    cur.push(q);
                    cur_len += len * (u1 - u0);
                    if u1 < 1.0 {
                        flush(&mut cur, &mut cur_len);
                    }
                }
            }
            flush(&mut cur, &mut cur_len);
        }
        out
    }
}

/// The parts of [0, 1] outside merged intervals.
pub fn complement(iv: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut t = 0.0;
    for &(a, b) in iv {
        if a > t + 1e-12 {
            out.push((t, a));
        }
        t = t.max(b);
    }
    if t < 1.0 - 1e-12 {
        out.push((t, 1.0));
    }
    out
}

/// Cameras counted by kind, owner, layer and state in one flat array of counters (no string or
/// map per camera), made [`CameraCounts`] once per cell at the end.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    total: usize,
    n: [usize; TALLY_SLOTS],
}

const LAYERS: [&str; 3] = ["class1", "class2", "class3"];
const TALLY_SLOTS: usize = CameraKind::ALL.len() + Owner::ALL.len() + LAYERS.len() + CameraStatus::ALL.len();

impl Tally {
    /// The counter of each of a camera's kind, owner, layer and state.
    fn keys(c: &super::model::CamGeo) -> [usize; 4] {
        let pos = |i: Option<usize>| i.unwrap_or(0);
        let kind = pos(CameraKind::ALL.iter().position(|k| *k == c.kind));
        let owner = CameraKind::ALL.len() + pos(Owner::ALL.iter().position(|o| *o == c.owner));
        let layer = CameraKind::ALL.len() + Owner::ALL.len() + pos(LAYERS.iter().position(|l| *l == c.layer()));
        let state = TALLY_SLOTS - CameraStatus::ALL.len() + pos(CameraStatus::ALL.iter().position(|s| *s == c.status));
        [kind, owner, layer, state]
    }

    fn add(&mut self, keys: [usize; 4]) {
        self.total += 1;
        for k in keys {
            self.n[k] += 1;
        }
    }

    fn counts(&self) -> CameraCounts {
        let names = CameraKind::ALL
            .iter()
            .map(|k| k.as_str())
            .chain(Owner::ALL.iter().map(|o| o.as_str()))
            .chain(LAYERS)
            .chain(CameraStatus::ALL.iter().map(|s| s.as_str()));
        let mut maps: [BTreeMap<String, usize>; 4] = Default::default();
        let ends = [
            CameraKind::ALL.len(),
            CameraKind::ALL.len() + Owner::ALL.len(),
            CameraKind::ALL.len() + Owner::ALL.len() + LAYERS.len(),
            TALLY_SLOTS,
        ];
        for (i, name) in names.enumerate() {
            if self.n[i] > 0 {
                let map = ends.iter().position(|&e| i < e).unwrap_or(3);
                maps[map].insert(name.to_string(), self.n[i]);
            }
        }
        let [by_kind, by_owner, by_layer, by_state] = maps;
        CameraCounts { total: self.total, by_kind, by_owner, by_layer, by_state }
    }
}
