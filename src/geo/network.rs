//! The road network in the local projection: ways split into straight segments between nodes,
//! nodes shared where ways meet, a spatial index over segments.

use std::collections::HashMap;

use rstar::{AABB, RTree, RTreeObject};

use super::input::{Oneway, RoadWay};
use super::proj::{LocalProj, Xy};

/// One way as stored: its attributes and its run of segments.
#[derive(Debug, Clone)]
pub struct Way {
    pub id: String,
    pub name: Option<String>,
    pub class: String,
    pub oneway: Oneway,
    /// Indices into [`RoadNetwork::segs`], in coordinate order.
    pub segs: std::ops::Range<usize>,
}

/// A straight piece of a way between two consecutive nodes.
#[derive(Debug, Clone, Copy)]
pub struct Seg {
    pub a: u32,
    pub b: u32,
    pub way: u32,
    pub len: f64,
}

/// Envelope entry for the segment index.
#[derive(Debug, Clone, Copy)]
pub struct SegBox {
    pub seg: u32,
    env: AABB<[f64; 2]>,
}

impl RTreeObject for SegBox {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.env
    }
}

/// Where a point meets the network: a segment and the parameter along it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snap {
    pub seg: usize,
    pub t: f64,
    pub point: Xy,
    pub dist: f64,
}

#[derive(Debug, Clone, Default)]
pub struct RoadNetwork {
    pub nodes: Vec<Xy>,
    pub ways: Vec<Way>,
    pub segs: Vec<Seg>,
    /// Segments touching each node.
    pub node_segs: Vec<Vec<u32>>,
    index: RTree<SegBox>,
}

impl RoadNetwork {
    /// Builds the network. OSM ways join at shared node ids (a bridge over a road shares no node
    /// with it, so they stay apart); ways without node ids join where coordinates coincide to
    /// 1e-7 degrees. Zero-length pieces (repeated points) are dropped.
    pub fn build(ways: &[RoadWay], proj: &LocalProj) -> RoadNetwork {
        let mut net = RoadNetwork::default();
        let mut by_id: HashMap<i64, u32> = HashMap::new();
        let mut by_coord: HashMap<(i64, i64), u32> = HashMap::new();
        for w in ways {
            let start = net.segs.len();
            let way_idx = net.ways.len() as u32;
            let mut prev: Option<u32> = None;
            for (i, c) in w.coords.iter().enumerate() {
                let key = (((c[0] * 1e7).round()) as i64, ((c[1] * 1e7).round()) as i64);
                let osm_id = w.node_ids.as_ref().and_then(|ids| ids.get(i)).copied();
                let existing = match osm_id {
                    Some(id) => by_id.get(&id).copied(),
                    None => by_coord.get(&key).copied(),
                };
                let n = existing.unwrap_or_else(|| {
                    net.nodes.push(proj.fwd_pt(*c));
                    net.node_segs.push(Vec::new());
                    (net.nodes.len() - 1) as u32
                });
                if let Some(id) = osm_id {
                    by_id.insert(id, n);
                }
                by_coord.entry(key).or_insert(n);
                if let Some(p) = prev {
                    let len = net.nodes[p as usize].dist(net.nodes[n as usize]);
                    if len > 1e-6 {
                        let s = net.segs.len() as u32;
                        net.segs.push(Seg { a: p, b: n, way: way_idx, len });
                        net.node_segs[p as usize].push(s);
                        net.node_segs[n as usize].push(s);
                    }
                }
                prev = Some(n);
            }
            net.ways.push(Way {
                id: w.id.clone(),
                name: w.name.clone(),
                class: w.class.clone(),
                oneway: w.oneway,
                segs: start..net.segs.len(),
            });
        }
        let boxes = (0..net.segs.len()).map(|i| SegBox { seg: i as u32, env: net.seg_env(i) }).collect();
        net.index = RTree::bulk_load(boxes);
        net
    }

    fn seg_env(&self, i: usize) -> AABB<[f64; 2]> {
        let (a, b) = self.ends(i);
        AABB::from_corners([a.x, a.y], [b.x, b.y])
    }

    /// The two end points of a segment.
    pub fn ends(&self, i: usize) -> (Xy, Xy) {
        let s = self.segs[i];
        (self.nodes[s.a as usize], self.nodes[s.b as usize])
    }

    pub fn way_of(&self, seg: usize) -> &Way {
        &self.ways[self.segs[seg].way as usize]
    }

    /// Segments whose bounds meet `[min x, min y, max x, max y]`.
    pub fn segs_in(&self, b: [f64; 4]) -> impl Iterator<Item = usize> + '_ {
        self.index
            .locate_in_envelope_intersecting(AABB::from_corners([b[0], b[1]], [b[2], b[3]]))
            .map(|s| s.seg as usize)
    }

    /// The nearest point of the network to `p` within `max_m`, optionally only on segments that
    /// `accept` (by segment index).
    pub fn snap(&self, p: Xy, max_m: f64, accept: impl Fn(usize) -> bool) -> Option<Snap> {
        let mut best: Option<Snap> = None;
        for s in self.segs_in([p.x - max_m, p.y - max_m, p.x + max_m, p.y + max_m]) {
            if !accept(s) {
                continue;
            }
            let (a, b) = self.ends(s);
            let v = b.minus(a);
            let t = (p.minus(a).dot(v) / v.dot(v)).clamp(0.0, 1.0);
            let q = a.lerp(b, t);
            let d = q.dist(p);
            if d <= max_m && best.is_none_or(|x| d < x.dist) {
                best = Some(Snap { seg: s, t, point: q, dist: d });
            }
        }
        best
    }

    /// Total length of every segment, metres.
    pub fn total_length(&self) -> f64 {
        self.segs.iter().map(|s| s.len).sum()
    }
}

/// Road classes vehicles drive on, with a planning speed in km/h (free-flowing urban traffic;
/// `*_link` ramps at the speed of their road). Anything else (footway, cycleway, steps, path,
/// pedestrian, track, …) is not used for vehicle routing or ring leaks.
pub fn vehicle_speed_kmh(class: &str) -> Option<f64> {
    let base = class.strip_suffix("_link").unwrap_or(class);
    Some(match base {
        "motorway" => 80.0,
        "trunk" => 60.0,
        "primary" => 50.0,
        "secondary" => 40.0,
        "tertiary" => 35.0,
        "unclassified" | "road" => 30.0,
        "residential" => 25.0,
        "service" => 15.0,
        "living_street" => 10.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn way(id: &str, coords: &[[f64; 2]]) -> RoadWay {
        RoadWay {
            id: id.into(),
            name: Some(id.into()),
            class: "primary".into(),
            oneway: Oneway::No,
            coords: coords.to_vec(),
            node_ids: None,
        }
    }

    #[test]
    fn ways_join_at_shared_coordinates_and_repeated_points_vanish() {
        let proj = LocalProj::new(0.0, 0.0);
        let net = RoadNetwork::build(
            &[way("a", &[[0.0, 0.0], [0.001, 0.0], [0.001, 0.0]]), way("b", &[[0.001, 0.0], [0.001, 0.001]])],
            &proj,
        );
        assert_eq!(net.nodes.len(), 3);
        assert_eq!(net.segs.len(), 2);
        assert_eq!(net.node_segs[1].len(), 2);
        let snap = net.snap(proj.fwd(0.0005, 0.0001), 50.0, |_| true).unwrap();
        assert_eq!(snap.seg, 0);
        assert!((snap.t - 0.5).abs() < 1e-6 && (snap.dist - 11.06).abs() < 0.1, "{snap:?}");
        assert!(net.snap(proj.fwd(0.0005, 0.001), 50.0, |_| true).is_none());
    }

    #[test]
    fn speeds() {
        assert_eq!(vehicle_speed_kmh("primary_link"), Some(50.0));
        assert_eq!(vehicle_speed_kmh("footway"), None);
    }
}
