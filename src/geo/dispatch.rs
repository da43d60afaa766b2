//! Units ranked by travel time to a place on the road network: the core of dispatch (issue 21).
//! One Dijkstra on the reversed graph from the place ([`ReachTo`]) gives every unit's time, so
//! ranking 2,000 units costs one search, not 2,000. Cars and motorcycles drive (one-way streets
//! only the way they allow, planning speeds per road class); foot patrols walk (5 km/h, any
//! direction, footways too, not motorways). A unit is routed from the way nearest to it that it
//! can travel.

use super::network::{RoadNetwork, Snap, vehicle_speed_kmh};
use super::proj::Xy;
use super::route::{ReachTo, SegTimes, seg_times, walk_times};

/// How far (metres) a unit or a place may lie from the nearest way and still be routed: a GPS
/// fix's error, a car park, a station's yard. Farther, it is left out, never guessed.
pub const SNAP_M: f64 = 250.0;

/// How a unit gets to a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Travel {
    /// Patrol cars and motorcycles.
    Drive,
    /// Foot patrols.
    Walk,
}

impl Travel {
    fn times(self) -> SegTimes {
        match self {
            Travel::Drive => seg_times,
            Travel::Walk => walk_times,
        }
    }
}

/// A unit's position, in the local projection, and how it travels.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitAt {
    pub id: String,
    pub at: Xy,
    pub travel: Travel,
}

/// One unit's time to the place.
#[derive(Debug, Clone, PartialEq)]
pub struct Eta {
    pub id: String,
    /// Travel time by the network, seconds.
    pub seconds: f64,
    /// From the unit's position to the way it was routed from, metres.
    pub off_road_m: f64,
}

/// Why a place cannot be ranked for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DispatchError {
    #[error("the place is more than 250 m (dispatch::SNAP_M) from any road or path")]
    OffRoad,
}

/// Where a point meets a way that `travel` can use, within [`SNAP_M`].
pub fn snap_for(net: &RoadNetwork, p: Xy, travel: Travel) -> Option<Snap> {
    match travel {
        Travel::Drive => net.snap(p, SNAP_M, |s| vehicle_speed_kmh(&net.way_of(s).class).is_some()),
        Travel::Walk => net.snap(p, SNAP_M, |s| walk_times(net, s).0.is_some()),
    }
}

/// The `k` units that reach `place` soonest, fastest first (equal times by id). Units off the
/// network, or that cannot reach the place at all (one-way streets), are left out. One search per
/// way of travelling that some unit uses.
pub fn nearest(net: &RoadNetwork, units: &[UnitAt], place: Xy, k: usize) -> Result<Vec<Eta>, DispatchError> {
    if snap_for(net, place, Travel::Walk).is_none() && snap_for(net, place, Travel::Drive).is_none() {
        return Err(DispatchError::OffRoad);
    }
    let mut out: Vec<Eta> = Vec::new();
    for travel in [Travel::Drive, Travel::Walk] {
        if !units.iter().any(|u| u.travel == travel) {
            continue;
        }
        // A place on a footway far from any road: no car is ranked for it.
        let Some(to) = snap_for(net, place, travel) else { continue };
        let reach = ReachTo::with(net, to, travel.times());
        out.extend(units.iter().filter(|u| u.travel == travel).filter_map(|u| {
            let from = snap_for(net, u.at, travel)?;
            let seconds = reach.from(&from)?;
            Some(Eta { id: u.id.clone(), seconds, off_road_m: from.dist })
        }));
    }
    out.sort_by(|a, b| a.seconds.total_cmp(&b.seconds).then_with(|| a.id.cmp(&b.id)));
    out.truncate(k);
    Ok(out)
}

/// One unit to each place, the places in the order given (for an interception: the checkpoints
/// the suspect reaches first come first). `deadline[i]` is how soon (seconds from now) a unit must
/// reach place `i` to be there in time (`None`: it cannot be). First, in order, each place gets the
/// soonest free unit that is there in time, if any; then each place still without one gets the
/// soonest free unit at all (late, it still closes the way behind). A unit goes to one place;
/// `None` when no unit is left that can reach it (or the place is off the roads). One search per
/// place and way of travelling, twice at most.
pub fn cover(net: &RoadNetwork, units: &[UnitAt], places: &[Xy], deadline: &[Option<f64>]) -> Vec<Option<Eta>> {
    let mut free: Vec<UnitAt> = units.to_vec();
    let mut out: Vec<Option<Eta>> = vec![None; places.len()];
    for in_time in [true, false] {
        for (i, &p) in places.iter().enumerate() {
            if out[i].is_some() || free.is_empty() || (in_time && deadline.get(i).copied().flatten().is_none()) {
                continue;
            }
            let Some(best) = nearest(net, &free, p, 1).ok().and_then(|v| v.into_iter().next()) else { continue };
            if in_time && deadline.get(i).copied().flatten().is_none_or(|d| best.seconds > d) {
                continue;
            }
            free.retain(|u| u.id != best.id);
            out[i] = Some(best);
        }
    }
    out
}
