//! Units ranked by travel time to a place on the road network: the core of dispatch (issue 21).
//! One Dijkstra on the reversed graph from the place ([`ReachTo`]) gives every unit's time, so
//! ranking 2,000 units costs one search, not 2,000; one-way streets are driven only the way they
//! allow, and a unit is routed from the road nearest to it.

use super::network::{RoadNetwork, Snap, vehicle_speed_kmh};
use super::proj::Xy;
use super::route::ReachTo;

/// How far (metres) a unit or a place may lie from the nearest road and still be routed: a GPS
/// fix's error, a car park, a station's yard. Farther, it is left out, never guessed.
pub const SNAP_M: f64 = 250.0;

/// A unit's position, in the local projection.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitAt {
    pub id: String,
    pub at: Xy,
}

/// One unit's time to the place.
#[derive(Debug, Clone, PartialEq)]
pub struct Eta {
    pub id: String,
    /// Driving time by the road network, seconds.
    pub seconds: f64,
    /// From the unit's position to the road it was routed from, metres.
    pub off_road_m: f64,
}

/// Why a place cannot be ranked for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DispatchError {
    #[error("the place is more than 250 m (dispatch::SNAP_M) from any road vehicles drive on")]
    OffRoad,
}

/// Where a point meets a road vehicles drive on, within [`SNAP_M`].
pub fn snap_drivable(net: &RoadNetwork, p: Xy) -> Option<Snap> {
    net.snap(p, SNAP_M, |s| vehicle_speed_kmh(&net.way_of(s).class).is_some())
}

/// The `k` units that reach `place` soonest by road, fastest first (equal times by id). Units off
/// the network, or that cannot reach the place at all (one-way streets), are left out.
pub fn nearest(net: &RoadNetwork, units: &[UnitAt], place: Xy, k: usize) -> Result<Vec<Eta>, DispatchError> {
    let to = snap_drivable(net, place).ok_or(DispatchError::OffRoad)?;
    let reach = ReachTo::new(net, to);
    let mut out: Vec<Eta> = units
        .iter()
        .filter_map(|u| {
            let from = snap_drivable(net, u.at)?;
            let seconds = reach.from(&from)?;
            Some(Eta { id: u.id.clone(), seconds, off_road_m: from.dist })
        })
        .collect();
    out.sort_by(|a, b| a.seconds.total_cmp(&b.seconds).then_with(|| a.id.cmp(&b.id)));
    out.truncate(k);
    Ok(out)
}
