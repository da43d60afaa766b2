//! Shortest travel times over the road network, driving or on foot (Dijkstra on a binary heap; the
//! graph is the segment list itself, so no second graph structure is built).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::input::Oneway;
use super::network::{RoadNetwork, Snap, vehicle_speed_kmh};

/// Seconds to drive a segment in each direction; `None` where not allowed (one-way, not a road).
pub fn seg_times(net: &RoadNetwork, s: usize) -> (Option<f64>, Option<f64>) {
    let seg = net.segs[s];
    let w = net.way_of(s);
    let Some(kmh) = vehicle_speed_kmh(&w.class) else { return (None, None) };
    let t = seg.len / (kmh / 3.6);
    match w.oneway {
        Oneway::No => (Some(t), Some(t)),
        Oneway::Forward => (Some(t), None),
        Oneway::Backward => (None, Some(t)),
    }
}

/// Walking speed on foot (km/h), the same on every way.
pub const WALK_KMH: f64 = 5.0;

/// Seconds to walk a segment, the same both ways (one-way streets bind vehicles only); `None` on
/// motorways and their ramps, which are not walked.
pub fn walk_times(net: &RoadNetwork, s: usize) -> (Option<f64>, Option<f64>) {
    let w = net.way_of(s);
    if w.class.strip_suffix("_link").unwrap_or(&w.class) == "motorway" {
        return (None, None);
    }
    let t = net.segs[s].len / (WALK_KMH / 3.6);
    (Some(t), Some(t))
}

/// Seconds to travel a segment in each direction for one way of travelling: [`seg_times`]
/// (driving) or [`walk_times`].
pub type SegTimes = fn(&RoadNetwork, usize) -> (Option<f64>, Option<f64>);

#[derive(PartialEq)]
struct Item(f64, u32);
impl Eq for Item {}
impl Ord for Item {
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.total_cmp(&self.0).then(self.1.cmp(&o.1))
    }
}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Dijkstra from `seeds` (node, seconds): seconds from the seeds to every node, or with
/// `reverse` from every node to the seeds (each segment travelled against the direction its
/// times allow); infinite where there is no way.
fn search(net: &RoadNetwork, seeds: [Option<(u32, f64)>; 2], times: SegTimes, reverse: bool) -> Vec<f64> {
    let mut dist = vec![f64::INFINITY; net.nodes.len()];
    let mut heap = BinaryHeap::new();
    for (n, d) in seeds.into_iter().flatten() {
        if d < dist[n as usize] {
            dist[n as usize] = d;
            heap.push(Item(d, n));
        }
    }
    while let Some(Item(d, n)) = heap.pop() {
        if d > dist[n as usize] {
            continue;
        }
        for &s in &net.node_segs[n as usize] {
            let sg = net.segs[s as usize];
            let (fwd, back) = times(net, s as usize);
            // Forward: where `n` gets to over this segment. Reverse: which node gets to `n`.
            let step = match (reverse, sg.a == n) {
                (false, true) => fwd.map(|t| (t, sg.b)),
                (false, false) => back.map(|t| (t, sg.a)),
                (true, false) => fwd.map(|t| (t, sg.a)),
                (true, true) => back.map(|t| (t, sg.b)),
            };
            if let Some((t, m)) = step
                && d + t < dist[m as usize]
            {
                dist[m as usize] = d + t;
                heap.push(Item(d + t, m));
            }
        }
    }
    dist
}

/// Travel times from a start point on the network to every node (seconds; infinite where
/// unreachable).
pub struct Reach<'a> {
    net: &'a RoadNetwork,
    from: Snap,
    times: SegTimes,
    pub node_s: Vec<f64>,
}

impl<'a> Reach<'a> {
    /// Driving from `from`.
    pub fn from(net: &'a RoadNetwork, from: Snap) -> Reach<'a> {
        Self::with(net, from, seg_times)
    }

    /// Travelling from `from` with segment times `times` ([`seg_times`], [`walk_times`]).
    pub fn with(net: &'a RoadNetwork, from: Snap, times: SegTimes) -> Reach<'a> {
        let seg = net.segs[from.seg];
        let (fwd, back) = times(net, from.seg);
        // Leaving the start forward to the segment's last node, or backward to its first.
        let seeds = [fwd.map(|t| (seg.b, (1.0 - from.t) * t)), back.map(|t| (seg.a, from.t * t))];
        Reach { net, from, times, node_s: search(net, seeds, times, false) }
    }

    /// Seconds to reach a point on the network; `None` when it cannot be reached.
    pub fn to(&self, target: &Snap) -> Option<f64> {
        let seg = self.net.segs[target.seg];
        let (fwd, back) = (self.times)(self.net, target.seg);
        let mut best = f64::INFINITY;
        if let Some(t) = fwd {
            best = best.min(self.node_s[seg.a as usize] + target.t * t);
        }
        if let Some(t) = back {
            best = best.min(self.node_s[seg.b as usize] + (1.0 - target.t) * t);
        }
        if target.seg == self.from.seg {
            let dt = target.t - self.from.t;
            let direct = if dt >= 0.0 { fwd.map(|t| dt * t) } else { back.map(|t| -dt * t) };
            if let Some(d) = direct {
                best = best.min(d);
            }
        }
        best.is_finite().then_some(best)
    }
}

/// Travel times from every node to one point of the network (seconds; infinite where the point
/// cannot be reached from there): Dijkstra on the reversed graph, so that one run gives every
/// unit's time to an alert's place, one-way streets driven the way they allow.
pub struct ReachTo<'a> {
    net: &'a RoadNetwork,
    to: Snap,
    times: SegTimes,
    pub node_s: Vec<f64>,
}

impl<'a> ReachTo<'a> {
    /// Driving to `to`.
    pub fn new(net: &'a RoadNetwork, to: Snap) -> ReachTo<'a> {
        Self::with(net, to, seg_times)
    }

    /// Travelling to `to` with segment times `times` (driving: [`seg_times`]; on foot:
    /// [`walk_times`]).
    pub fn with(net: &'a RoadNetwork, to: Snap, times: SegTimes) -> ReachTo<'a> {
        let seg = net.segs[to.seg];
        let (fwd, back) = times(net, to.seg);
        // Arriving forward from the segment's first node, or backward from its last.
        let seeds = [fwd.map(|t| (seg.a, to.t * t)), back.map(|t| (seg.b, (1.0 - to.t) * t))];
        ReachTo { net, to, times, node_s: search(net, seeds, times, true) }
    }

    /// Seconds from a point on the network to this one; `None` when it cannot get there.
    pub fn from(&self, start: &Snap) -> Option<f64> {
        let seg = self.net.segs[start.seg];
        let (fwd, back) = (self.times)(self.net, start.seg);
        let mut best = f64::INFINITY;
        if let Some(t) = fwd {
            best = best.min((1.0 - start.t) * t + self.node_s[seg.b as usize]);
        }
        if let Some(t) = back {
            best = best.min(start.t * t + self.node_s[seg.a as usize]);
        }
        if start.seg == self.to.seg {
            let dt = self.to.t - start.t;
            let direct = if dt >= 0.0 { fwd.map(|t| dt * t) } else { back.map(|t| -dt * t) };
            if let Some(d) = direct {
                best = best.min(d);
            }
        }
        best.is_finite().then_some(best)
    }
}
