//! The entrance rule (2011 plan): every entrance of every unit is covered 50 m to its left and to
//! its right along the road it faces by at least two HD cameras that are online, at the observe
//! level. Also the stretch walk along a road that the rule and ring leaks share.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::coverage::{SectorIndex, StateFilter};
use super::dori::DoriLevel;
use super::fov;
use super::model::GeoModel;
use super::network::{RoadNetwork, Snap};
use super::proj::Xy;

/// One piece of road: segment, from `t0` to `t1` (either order along the segment).
pub type Stretch = Vec<(usize, f64, f64)>;

/// Walks `reach_m` along the road from `snap`, towards the segment's end (`forward`) or its
/// start. At a junction it carries on along the way with the same name (else the same class),
/// turning least; it stops at a dead end or where only a sharp turn onto another road remains.
pub fn walk(net: &RoadNetwork, snap: &Snap, forward: bool, reach_m: f64) -> (Stretch, f64) {
    let mut out = Vec::new();
    let mut left = reach_m;
    let (mut seg, mut t, mut fwd) = (snap.seg, snap.t, forward);
    for _ in 0..10_000 {
        let len = net.segs[seg].len;
        let avail = if fwd { (1.0 - t) * len } else { t * len };
        if avail >= left {
            let t_end = if fwd { t + left / len } else { t - left / len };
            out.push((seg, t, t_end));
            left = 0.0;
            break;
        }
        out.push((seg, t, if fwd { 1.0 } else { 0.0 }));
        left -= avail;
        let s = net.segs[seg];
        let node = if fwd { s.b } else { s.a };
        let (a, b) = net.ends(seg);
        let heading = if fwd { b.minus(a) } else { a.minus(b) };
        match next_segment(net, seg, node, heading) {
            Some((ns, nfwd)) => {
                seg = ns;
                fwd = nfwd;
                t = if fwd { 0.0 } else { 1.0 };
            }
            None => break,
        }
    }
    (out, reach_m - left)
}

fn next_segment(net: &RoadNetwork, from: usize, node: u32, heading: Xy) -> Option<(usize, bool)> {
    let w = net.way_of(from);
    let mut best: Option<(f64, usize, bool)> = None;
    for &s in &net.node_segs[node as usize] {
        let s = s as usize;
        if s == from {
            continue;
        }
        let seg = net.segs[s];
        let fwd = seg.a == node;
        let (a, b) = net.ends(s);
        let dir = if fwd { b.minus(a) } else { a.minus(b) };
        let cos = heading.dot(dir) / (heading.len() * dir.len()).max(1e-12);
        let turn = cos.clamp(-1.0, 1.0).acos().to_degrees();
        let other = net.way_of(s);
        let same_road = seg.way == net.segs[from].way || (w.name.is_some() && other.name == w.name);
        let same_class = other.class == w.class;
        // Same road: any turn under 120°; another road of the same class: nearly straight on.
        let ok = (same_road && turn < 120.0) || (same_class && turn < 30.0);
        let score = turn + if same_road { 0.0 } else { 1000.0 };
        if ok && best.is_none_or(|b| score < b.0) {
            best = Some((score, s, fwd));
        }
    }
    best.map(|(_, s, f)| (s, f))
}

/// Parameters of the rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EntranceRule {
    pub min_cameras: usize,
    /// HD: at least this many pixels (either orientation).
    pub min_resolution: (u32, u32),
    pub reach_m: f64,
    pub level: DoriLevel,
    pub states: StateFilter,
    /// An entrance further than this from its road is reported, not checked.
    pub max_road_distance_m: f64,
}

impl Default for EntranceRule {
    fn default() -> Self {
        EntranceRule {
            min_cameras: 2,
            min_resolution: (1920, 1080),
            reach_m: 50.0,
            level: DoriLevel::Observe,
            states: StateFilter::Online,
            max_road_distance_m: 60.0,
        }
    }
}

/// One side of an entrance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SideCheck {
    /// `left` or `right`, standing in the entrance facing the road.
    pub side: String,
    /// Length of road found on this side (short of the reach at a dead end).
    pub length_m: f64,
    /// Metres of it seen by fewer than the required number of qualifying cameras.
    pub short_m: f64,
}

/// A camera that sees part of an entrance's stretch.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CameraOnStretch {
    pub id: String,
    pub resolution: String,
    pub status: String,
    /// Counts towards the rule (HD and in the required state).
    pub qualifies: bool,
    pub seen_m: f64,
}

/// The verdict for one entrance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntranceCheck {
    pub id: String,
    pub name: String,
    pub road: Option<String>,
    pub lon: f64,
    pub lat: f64,
    pub compliant: bool,
    pub sides: Vec<SideCheck>,
    pub cameras: Vec<CameraOnStretch>,
    /// What is missing, in words.
    pub problems: Vec<String>,
}

impl GeoModel {
    /// Checks every entrance.
    pub fn check_entrances(&self, rule: &EntranceRule) -> Vec<EntranceCheck> {
        self.check_entrances_with(rule, &self.entrance_index(rule))
    }

    /// Checks every entrance against `idx` (from [`Self::entrance_index`]).
    pub fn check_entrances_with(&self, rule: &EntranceRule, idx: &SectorIndex) -> Vec<EntranceCheck> {
        (0..self.entrances.len()).map(|i| self.check_entrance(i, rule, idx)).collect()
    }

    /// The sectors an entrance check clips against: every camera in service at the rule's level.
    pub fn entrance_index(&self, rule: &EntranceRule) -> SectorIndex {
        SectorIndex::new(self, rule.level, |i| self.cameras[i].in_service())
    }

    /// Every entrance checked again after camera states changed, from the checks made before on
    /// the same geography (`prev`, in entrance order) and `idx` (from [`Self::entrance_index`],
    /// the same cameras in service as then): an entrance is checked again only when a camera
    /// whose state changed (`changed`, by id) sees its stretch (a check names every camera in
    /// service that sees any of it), and keeps its check otherwise. Equal to
    /// [`Self::check_entrances`] as long as no camera came into or left service; `None` when
    /// `prev` does not fit this model.
    pub fn recheck_entrances(
        &self,
        rule: &EntranceRule,
        prev: &[EntranceCheck],
        changed: &std::collections::HashSet<&str>,
        idx: &SectorIndex,
    ) -> Option<Vec<EntranceCheck>> {
        if prev.len() != self.entrances.len() || prev.iter().zip(&self.entrances).any(|(p, e)| p.id != e.input.id) {
            return None;
        }
        Some(
            prev.iter()
                .enumerate()
                .map(|(i, p)| {
                    if p.cameras.iter().any(|c| changed.contains(c.id.as_str())) {
                        self.check_entrance(i, rule, idx)
                    } else {
                        p.clone()
                    }
                })
                .collect(),
        )
    }

    fn check_entrance(&self, i: usize, rule: &EntranceRule, idx: &SectorIndex) -> EntranceCheck {
        let e = &self.entrances[i];
        let mut out = EntranceCheck {
            id: e.input.id.clone(),
            name: e.input.name.clone(),
            road: e.input.road.clone(),
            lon: e.input.lon,
            lat: e.input.lat,
            compliant: false,
            sides: Vec::new(),
            cameras: Vec::new(),
            problems: Vec::new(),
        };
        let road = e.input.road.as_deref();
        let snap = self.net.snap(e.pos, rule.max_road_distance_m, |s| {
            road.is_none_or(|r| self.net.way_of(s).name.as_deref() == Some(r))
        });
        let Some(snap) = snap else {
            out.problems.push(match road {
                Some(r) => format!("no road named {r:?} within {} m", rule.max_road_distance_m),
                None => format!("no road within {} m", rule.max_road_distance_m),
            });
            return out;
        };
        let (a, b) = self.net.ends(snap.seg);
        let facing = snap.point.minus(e.pos);
        let facing = if facing.len() < 0.5 { Xy::new(-(b.y - a.y), b.x - a.x) } else { facing };
        // Towards the segment's end is to the left when it turns counter-clockwise from facing.
        let fwd_is_left = facing.cross(b.minus(a)) > 0.0;
        let mut per_cam: Vec<(usize, f64)> = Vec::new();
        for fwd in [true, false] {
            let (stretch, length) = walk(&self.net, &snap, fwd, rule.reach_m);
            let side = if fwd == fwd_is_left { "left" } else { "right" };
            let (short, seen) = self.depth_short(&stretch, idx, rule);
            for (c, m) in seen {
                match per_cam.iter_mut().find(|(k, _)| *k == c) {
                    Some(x) => x.1 += m,
                    None => per_cam.push((c, m)),
                }
            }
            if length + 0.5 < rule.reach_m {
                out.problems.push(format!("{side}: the road ends after {length:.1} m of {} m", rule.reach_m));
            }
            if short > 0.5 {
                out.problems.push(format!(
                    "{side}: {short:.1} m of {length:.1} m seen by fewer than {} qualifying cameras",
                    rule.min_cameras
                ));
            }
            out.sides.push(SideCheck { side: side.into(), length_m: length, short_m: short });
        }
        out.sides.sort_by(|a, b| a.side.cmp(&b.side));
        per_cam.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (c, m) in per_cam {
            let cam = &self.cameras[c];
            out.cameras.push(CameraOnStretch {
                id: cam.id.clone(),
                resolution: format!("{}x{}", cam.width_px, cam.height_px),
                status: cam.status.as_str().into(),
                qualifies: self.qualifies(c, rule),
                seen_m: m,
            });
        }
        let not_hd =
            out.cameras.iter().filter(|c| !self.cameras[self.cam_by_id[&c.id]].has_resolution(rule.min_resolution));
        let not_hd: Vec<&str> = not_hd.map(|c| c.id.as_str()).collect();
        if !not_hd.is_empty() && !out.problems.is_empty() {
            out.problems.push(format!("below HD, not counted: {}", not_hd.join(", ")));
        }
        let down: Vec<&str> = out
            .cameras
            .iter()
            .filter(|c| {
                let i = self.cam_by_id[&c.id];
                self.cameras[i].has_resolution(rule.min_resolution) && !self.counts(i, rule.states)
            })
            .map(|c| c.id.as_str())
            .collect();
        if !down.is_empty() && !out.problems.is_empty() {
            out.problems.push(format!("HD but not online, not counted: {}", down.join(", ")));
        }
        out.compliant = out.problems.is_empty();
        out
    }

    fn qualifies(&self, c: usize, rule: &EntranceRule) -> bool {
        self.cameras[c].has_resolution(rule.min_resolution) && self.counts(c, rule.states)
    }

    /// Metres of the stretch seen by fewer than `min_cameras` qualifying cameras, and metres each
    /// camera (qualifying or not) sees.
    fn depth_short(&self, stretch: &Stretch, idx: &SectorIndex, rule: &EntranceRule) -> (f64, Vec<(usize, f64)>) {
        let mut short = 0.0;
        let mut seen: Vec<(usize, f64)> = Vec::new();
        for &(s, t0, t1) in stretch {
            let (lo, hi) = (t0.min(t1), t0.max(t1));
            let len = self.net.segs[s].len;
            let (a, b) = self.net.ends(s);
            let mut events: Vec<(f64, i32)> = Vec::new();
            for (c, iv) in idx.clip(a, b) {
                let part: Vec<(f64, f64)> =
                    iv.iter().map(|&(x, y)| (x.max(lo), y.min(hi))).filter(|(x, y)| y > x).collect();
                if part.is_empty() {
                    continue;
                }
                seen.push((c, len * fov::total(&part)));
                if self.qualifies(c, rule) {
                    for (x, y) in part {
                        events.push((x, 1));
                        events.push((y, -1));
                    }
                }
            }
            events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let (mut depth, mut at, mut ok) = (0i32, lo, 0.0);
            for (x, d) in events {
                if depth as usize >= rule.min_cameras {
                    ok += x - at;
                }
                depth += d;
                at = x;
            }
            short += len * ((hi - lo) - ok).max(0.0);
        }
        (short, seen)
    }
}
