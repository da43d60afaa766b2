//! Shortest travel times over the road network for vehicles (Dijkstra on a binary heap; the graph
//! is the segment list itself, so no second graph structure is built).

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

/// Travel times from a start point on the network to every node (seconds; infinite where
/// unreachable).
pub struct Reach<'a> {
    net: &'a RoadNetwork,
    from: Snap,
    pub node_s: Vec<f64>,
}

impl<'a> Reach<'a> {
    pub fn from(net: &'a RoadNetwork, from: Snap) -> Reach<'a> {
        let mut dist = vec![f64::INFINITY; net.nodes.len()];
        let mut heap = BinaryHeap::new();
        let seg = net.segs[from.seg];
        let (fwd, back) = seg_times(net, from.seg);
        if let Some(t) = fwd {
            dist[seg.b as usize] = (1.0 - from.t) * t;
            heap.push(Item(dist[seg.b as usize], seg.b));
        }
        if let Some(t) = back {
            let d = from.t * t;
            if d < dist[seg.a as usize] {
                dist[seg.a as usize] = d;
                heap.push(Item(d, seg.a));
            }
        }
        while let Some(Item(d, n)) = heap.pop() {
            if d > dist[n as usize] {
                continue;
            }
            for &s in &net.node_segs[n as usize] {
                let sg = net.segs[s as usize];
                let (fwd, back) = seg_times(net, s as usize);
                let step = if sg.a == n { fwd.map(|t| (t, sg.b)) } else { back.map(|t| (t, sg.a)) };
                if let Some((t, m)) = step
                    && d + t < dist[m as usize]
                {
                    dist[m as usize] = d + t;
                    heap.push(Item(d + t, m));
                }
            }
        }
        Reach { net, from, node_s: dist }
    }

    /// Seconds to reach a point on the network; `None` when it cannot be reached.
    pub fn to(&self, target: &Snap) -> Option<f64> {
        let seg = self.net.segs[target.seg];
        let (fwd, back) = seg_times(self.net, target.seg);
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
    pub node_s: Vec<f64>,
}

impl<'a> ReachTo<'a> {
    pub fn new(net: &'a RoadNetwork, to: Snap) -> ReachTo<'a> {
        let mut dist = vec![f64::INFINITY; net.nodes.len()];
        let mut heap = BinaryHeap::new();
        let seg = net.segs[to.seg];
        let (fwd, back) = seg_times(net, to.seg);
        // Driving forward from the segment's first node, or backward from its last.
        if let Some(t) = fwd {
            dist[seg.a as usize] = to.t * t;
            heap.push(Item(dist[seg.a as usize], seg.a));
        }
        if let Some(t) = back {
            let d = (1.0 - to.t) * t;
            if d < dist[seg.b as usize] {
                dist[seg.b as usize] = d;
                heap.push(Item(d, seg.b));
            }
        }
        while let Some(Item(d, n)) = heap.pop() {
            if d > dist[n as usize] {
                continue;
            }
            for &s in &net.node_segs[n as usize] {
                let sg = net.segs[s as usize];
                let (fwd, back) = seg_times(net, s as usize);
                // Which node reaches `n` over this segment, and in how long.
                let step = if sg.b == n { fwd.map(|t| (t, sg.a)) } else { back.map(|t| (t, sg.b)) };
                if let Some((t, m)) = step
                    && d + t < dist[m as usize]
                {
                    dist[m as usize] = d + t;
                    heap.push(Item(d + t, m));
                }
            }
        }
        ReachTo { net, to, node_s: dist }
    }

    /// Seconds from a point on the network to this one; `None` when it cannot get there.
    pub fn from(&self, start: &Snap) -> Option<f64> {
        let seg = self.net.segs[start.seg];
        let (fwd, back) = seg_times(self.net, start.seg);
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
