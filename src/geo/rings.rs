//! Checkpoint rings (包围圈): integrity (which members are down), leaks (roads crossing the ring
//! that no online checkpoint reads), the rings around a place, and interception plans (围堵截).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::coverage::{SectorIndex, StateFilter};
use super::dori::DoriLevel;
use super::entrance::walk;
use super::model::{GeoModel, point_in_polygon, seg_intersect};
use super::network::{Snap, vehicle_speed_kmh};
use super::proj::Xy;
use super::route::Reach;
use crate::config::CameraKind;

/// How a crossing counts as read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GuardRule {
    /// Level a checkpoint must reach on the road (plates need recognise).
    pub level: DoriLevel,
    /// Metres along the road either side of the crossing that a checkpoint may watch instead.
    pub reach_m: f64,
}

impl Default for GuardRule {
    fn default() -> Self {
        GuardRule { level: DoriLevel::Recognise, reach_m: 60.0 }
    }
}

/// A ring member and its state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Member {
    pub id: String,
    pub name: Option<String>,
    pub status: String,
    pub online: bool,
}

/// A road crossing the ring that no online checkpoint reads.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Leak {
    pub road_id: String,
    pub road_name: Option<String>,
    pub class: String,
    pub lon: f64,
    pub lat: f64,
    /// Checkpoints that would read this crossing if they were online; empty when none ever does
    /// (a gap in the ring's design).
    pub guarded_when_up_by: Vec<String>,
}

/// A ring's state now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RingState {
    pub id: String,
    pub name: String,
    pub level: u8,
    /// Open: a member is down or a road leaks.
    pub open: bool,
    pub members: Vec<Member>,
    pub down: Vec<String>,
    /// Member ids that are not cameras in the registry.
    pub unknown_members: Vec<String>,
    pub crossings: usize,
    pub leaks: Vec<Leak>,
    /// `[lon, lat]` outline.
    pub polygon: Vec<[f64; 2]>,
    pub area_km2: f64,
}

/// A checkpoint armed in an interception.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ArmedCheckpoint {
    pub camera_id: String,
    pub name: String,
    pub status: String,
    /// Earliest seconds after the incident a vehicle can reach it; `None` when unreachable by
    /// road (or not near a road).
    pub eta_s: Option<f64>,
}

/// One ring of an interception plan.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RingPlan {
    pub ring_id: String,
    pub name: String,
    pub level: u8,
    pub checkpoints: Vec<ArmedCheckpoint>,
}

impl GeoModel {
    /// The state of every ring.
    pub fn ring_states(&self, guard: &GuardRule) -> Vec<RingState> {
        let all = SectorIndex::new(self, guard.level, |i| self.is_checkpoint(i, StateFilter::All));
        let online = SectorIndex::new(self, guard.level, |i| self.is_checkpoint(i, StateFilter::Online));
        (0..self.rings.len()).map(|r| self.ring_state(r, guard, &all, &online)).collect()
    }

    fn is_checkpoint(&self, i: usize, st: StateFilter) -> bool {
        self.cameras[i].kind == CameraKind::Checkpoint && self.counts(i, st)
    }

    fn ring_state(&self, r: usize, guard: &GuardRule, all: &SectorIndex, online: &SectorIndex) -> RingState {
        let ring = &self.rings[r];
        let members: Vec<Member> = ring
            .input
            .members
            .iter()
            .map(|id| match self.camera(id) {
                Some((_, c)) => Member {
                    id: id.clone(),
                    name: Some(c.name.clone()),
                    status: c.status.as_str().into(),
                    online: c.is_online(),
                },
                None => Member { id: id.clone(), name: None, status: "unknown".into(), online: false },
            })
            .collect();
        let down: Vec<String> = members.iter().filter(|m| !m.online).map(|m| m.id.clone()).collect();
        let crossings = self.crossings(&ring.polygon);
        let mut leaks = Vec::new();
        for (seg, t) in &crossings {
            let (a, b) = self.net.ends(*seg);
            let snap = Snap { seg: *seg, t: *t, point: a.lerp(b, *t), dist: 0.0 };
            if !self.guarding(&snap, guard, online).is_empty() {
                continue;
            }
            let w = self.net.way_of(*seg);
            let [lon, lat] = self.lonlat(snap.point);
            let up = self.guarding(&snap, guard, all);
            leaks.push(Leak {
                road_id: w.id.clone(),
                road_name: w.name.clone(),
                class: w.class.clone(),
                lon,
                lat,
                guarded_when_up_by: up.into_iter().map(|c| self.cameras[c].id.clone()).collect(),
            });
        }
        RingState {
            id: ring.input.id.clone(),
            name: ring.input.name.clone(),
            level: ring.input.level,
            open: !down.is_empty() || !leaks.is_empty() || !ring.unknown_members.is_empty(),
            members,
            down,
            unknown_members: ring.unknown_members.clone(),
            crossings: crossings.len(),
            leaks,
            polygon: ring.polygon.iter().map(|p| self.lonlat(*p)).collect(),
            area_km2: ring.area_m2() / 1e6,
        }
    }

    /// Where vehicle roads cross a polygon's boundary: (segment, parameter).
    pub fn crossings(&self, poly: &[Xy]) -> Vec<(usize, f64)> {
        if poly.len() < 3 {
            return Vec::new();
        }
        let mut b = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        for p in poly {
            b = [b[0].min(p.x), b[1].min(p.y), b[2].max(p.x), b[3].max(p.y)];
        }
        let mut out = Vec::new();
        for s in self.net.segs_in(b) {
            if vehicle_speed_kmh(&self.net.way_of(s).class).is_none() {
                continue;
            }
            let (a, bb) = self.net.ends(s);
            for i in 0..poly.len() {
                if let Some((t, _)) = seg_intersect(a, bb, poly[i], poly[(i + 1) % poly.len()]) {
                    out.push((s, t));
                }
            }
        }
        out.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.total_cmp(&y.1)));
        // A road through a vertex, or crossing at a node between two of its segments, meets the
        // outline more than once at one place: one crossing per way per metre.
        let mut kept: Vec<(usize, f64, Xy)> = Vec::with_capacity(out.len());
        for (s, t) in out {
            let (a, b) = self.net.ends(s);
            let p = a.lerp(b, t);
            let way = self.net.segs[s].way;
            if !kept.iter().any(|&(k, _, q)| self.net.segs[k].way == way && q.dist(p) < 1.0) {
                kept.push((s, t, p));
            }
        }
        kept.into_iter().map(|(s, t, _)| (s, t)).collect()
    }

    /// Checkpoints (of the index) reading the road within `reach_m` of the point.
    fn guarding(&self, at: &Snap, guard: &GuardRule, idx: &SectorIndex) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for fwd in [true, false] {
            let (stretch, _) = walk(&self.net, at, fwd, guard.reach_m);
            for (s, t0, t1) in stretch {
                let (lo, hi) = (t0.min(t1), t0.max(t1));
                let (a, b) = self.net.ends(s);
                for (c, iv) in idx.clip(a, b) {
                    if iv.iter().any(|&(x, y)| y.min(hi) > x.max(lo)) && !out.contains(&c) {
                        out.push(c);
                    }
                }
            }
        }
        out
    }

    /// Rings whose outline contains the point, innermost (smallest) first.
    pub fn rings_around(&self, p: Xy) -> Vec<usize> {
        let mut v: Vec<usize> =
            (0..self.rings.len()).filter(|&r| point_in_polygon(p, &self.rings[r].polygon)).collect();
        v.sort_by(|&a, &b| self.rings[a].area_m2().total_cmp(&self.rings[b].area_m2()));
        v
    }

    /// The nearest point of a vehicle road within `max_m`.
    pub fn snap_vehicle(&self, p: Xy, max_m: f64) -> Option<Snap> {
        self.net.snap(p, max_m, |s| vehicle_speed_kmh(&self.net.way_of(s).class).is_some())
    }

    /// An interception plan for an incident at `p`: the rings around it, innermost first, with
    /// every member checkpoint and the earliest time a vehicle leaving the incident can reach it.
    pub fn interception_plan(&self, p: Xy, snap_m: f64) -> Vec<RingPlan> {
        let start = self.snap_vehicle(p, snap_m);
        let reach = start.map(|s| Reach::from(&self.net, s));
        self.rings_around(p)
            .into_iter()
            .map(|r| {
                let ring = &self.rings[r];
                let checkpoints = ring
                    .input
                    .members
                    .iter()
                    .filter_map(|id| self.camera(id))
                    .map(|(i, c)| {
                        let eta = reach
                            .as_ref()
                            .and_then(|reach| self.snap_vehicle(self.cam_pos[i], snap_m).and_then(|t| reach.to(&t)));
                        ArmedCheckpoint {
                            camera_id: c.id.clone(),
                            name: c.name.clone(),
                            status: c.status.as_str().into(),
                            eta_s: eta,
                        }
                    })
                    .collect();
                RingPlan {
                    ring_id: ring.input.id.clone(),
                    name: ring.input.name.clone(),
                    level: ring.input.level,
                    checkpoints,
                }
            })
            .collect()
    }
}
