//! A synthetic city whose ring and routing answers can be computed by hand.
//!
//! Streets every 300 m from -900 to 900 m both ways around (113.665 E, 34.757 N). The avenue
//! y = 0 is primary (50 km/h); every other street is residential (25 km/h); street x = 300 is
//! one-way southbound. The inner ring's outline is the square ±150 m with a checkpoint on each of
//! the 4 streets crossing it; the middle ring's is ±450 m with 12 checkpoints. Each checkpoint
//! stands 3 m beside its street at the ring's edge and looks outward along it.

use tianwang::config::{CameraKind, CameraStatus, DoriTable, Owner};
use tianwang::geo::input::{Oneway, RoadWay};
use tianwang::geo::model::{CamGeo, GeoInputs, RingInput};
use tianwang::geo::{GeoModel, LocalProj, Xy};

pub const LINES: [f64; 7] = [-900.0, -600.0, -300.0, 0.0, 300.0, 600.0, 900.0];

pub fn proj() -> LocalProj {
    LocalProj::new(113.665, 34.757)
}

pub fn ll(x: f64, y: f64) -> [f64; 2] {
    proj().inv(Xy::new(x, y))
}

pub fn roads() -> Vec<RoadWay> {
    let mut v = Vec::new();
    for &c in &LINES {
        // Each street is split at every crossing so that ways meet at shared points.
        let ew: Vec<[f64; 2]> = LINES.iter().map(|&x| ll(x, c)).collect();
        let ns: Vec<[f64; 2]> = LINES.iter().rev().map(|&y| ll(c, y)).collect(); // north to south
        v.push(RoadWay {
            id: format!("ew{c}"),
            name: Some(format!("East-west {c}")),
            class: if c == 0.0 { "primary" } else { "residential" }.into(),
            oneway: Oneway::No,
            coords: ew,
            node_ids: None,
        });
        v.push(RoadWay {
            id: format!("ns{c}"),
            name: Some(format!("North-south {c}")),
            class: "residential".into(),
            oneway: if c == 300.0 { Oneway::Forward } else { Oneway::No },
            coords: ns,
            node_ids: None,
        });
    }
    v
}

pub fn checkpoint(id: &str, x: f64, y: f64, bearing: f64) -> CamGeo {
    let [lon, lat] = ll(x, y);
    CamGeo {
        id: id.into(),
        name: id.into(),
        kind: CameraKind::Checkpoint,
        owner: Owner::Public,
        status: CameraStatus::Online,
        grid_cell: None,
        lon,
        lat,
        bearing_deg: bearing,
        hfov_deg: 30.0,
        width_px: 2560,
        height_px: 1440,
        mounting_height_m: 6.5,
    }
}

/// Checkpoints where the streets crossing a square of half-side `h` meet it, named
/// `<prefix>-<side>-<street>`, each 3 m to the right of its street looking outward.
pub fn ring_checkpoints(prefix: &str, h: f64) -> Vec<CamGeo> {
    let mut v = Vec::new();
    for &c in LINES.iter().filter(|c| c.abs() < h) {
        v.push(checkpoint(&format!("{prefix}-n-{c}"), c + 3.0, h, 0.0));
        v.push(checkpoint(&format!("{prefix}-s-{c}"), c - 3.0, -h, 180.0));
        v.push(checkpoint(&format!("{prefix}-e-{c}"), h, c - 3.0, 90.0));
        v.push(checkpoint(&format!("{prefix}-w-{c}"), -h, c + 3.0, 270.0));
    }
    v
}

pub fn square(h: f64) -> Vec<[f64; 2]> {
    vec![ll(-h, -h), ll(h, -h), ll(h, h), ll(-h, h)]
}

pub fn city() -> GeoModel {
    let (cameras, roads, rings) = city_parts();
    GeoModel::build(GeoInputs { table: Some(DoriTable::Iec2014), cameras, roads, rings, ..Default::default() })
}

/// The city's cameras, roads and rings.
pub fn city_parts() -> (Vec<CamGeo>, Vec<RoadWay>, Vec<RingInput>) {
    let inner = ring_checkpoints("in", 150.0);
    let middle = ring_checkpoints("mid", 450.0);
    let ring = |id: &str, level, cams: &[CamGeo], h| RingInput {
        id: id.into(),
        name: id.into(),
        level,
        members: cams.iter().map(|c| c.id.clone()).collect(),
        polygon: Some(square(h)),
    };
    let rings = vec![ring("inner", 1, &inner, 150.0), ring("middle", 2, &middle, 450.0)];
    let mut cameras = inner;
    cameras.extend(middle);
    (cameras, roads(), rings)
}
