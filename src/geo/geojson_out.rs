//! GeoJSON for maps and GIS tools: camera views per DORI level, rings, cells, entrances, gaps.
//! Coordinates are `[lon, lat]` (RFC 7946); properties carry what a map styles by.

use serde_json::{Value, json};

use super::coverage::Coverage;
use super::dori::DoriLevel;
use super::model::GeoModel;
use super::proj::Xy;
use super::rings::RingState;

fn collection(features: Vec<Value>) -> Value {
    json!({ "type": "FeatureCollection", "features": features })
}

fn ring_coords(m: &GeoModel, pts: &[Xy]) -> Vec<[f64; 2]> {
    let mut v: Vec<[f64; 2]> = pts.iter().map(|p| m.lonlat(*p)).collect();
    if let Some(&f) = v.first() {
        v.push(f);
    }
    v
}

/// Every camera as a point, plus its field of view at each requested level as a polygon
/// (`level` property), coarsest first so finer levels draw on top.
pub fn cameras(m: &GeoModel, levels: &[DoriLevel]) -> Value {
    let mut f = Vec::new();
    for (i, c) in m.cameras.iter().enumerate() {
        if !c.in_service() {
            continue;
        }
        f.push(json!({
            "type": "Feature",
            "id": c.id,
            "geometry": { "type": "Point", "coordinates": [c.lon, c.lat] },
            "properties": { "camera_id": c.id, "name": c.name, "kind": c.kind.as_str(), "owner": c.owner.as_str(),
                "status": c.status.as_str(), "bearing_deg": c.bearing_deg, "hfov_deg": c.hfov_deg,
                "resolution": format!("{}x{}", c.width_px, c.height_px) },
        }));
        for &level in levels {
            let s = c.sector(m.cam_pos[i], m.table, level);
            if s.is_empty() {
                continue;
            }
            f.push(json!({
                "type": "Feature",
                "geometry": { "type": "Polygon", "coordinates": [ring_coords(m, &s.outline(5.0))] },
                "properties": { "camera_id": c.id, "level": level.as_str(), "range_m": (s.radius * 10.0).round() / 10.0,
                    "status": c.status.as_str() },
            }));
        }
    }
    collection(f)
}

/// Rings with their state.
pub fn rings(states: &[RingState]) -> Value {
    collection(
        states
            .iter()
            .map(|r| {
                let mut coords = r.polygon.clone();
                if let Some(&p) = coords.first() {
                    coords.push(p);
                }
                json!({
                    "type": "Feature",
                    "id": r.id,
                    "geometry": { "type": "Polygon", "coordinates": [coords] },
                    "properties": { "ring_id": r.id, "name": r.name, "level": r.level, "open": r.open,
                        "down": r.down, "leaks": r.leaks.len() },
                })
            })
            .collect(),
    )
}

/// Cells with outlines.
pub fn cells(m: &GeoModel) -> Value {
    collection(
        m.cells
            .iter()
            .filter(|c| c.polygon.len() >= 3)
            .map(|c| {
                json!({
                    "type": "Feature",
                    "id": c.id,
                    "geometry": { "type": "Polygon", "coordinates": [ring_coords(m, &c.polygon)] },
                    "properties": { "cell_id": c.id, "name": c.name, "level": c.level, "parent": c.parent },
                })
            })
            .collect(),
    )
}

/// Roads as lines.
pub fn roads(m: &GeoModel) -> Value {
    collection(
        m.net
            .ways
            .iter()
            .filter(|w| !w.segs.is_empty())
            .map(|w| {
                let mut pts = vec![m.lonlat(m.net.ends(w.segs.start).0)];
                pts.extend(w.segs.clone().map(|s| m.lonlat(m.net.ends(s).1)));
                json!({
                    "type": "Feature",
                    "id": w.id,
                    "geometry": { "type": "LineString", "coordinates": pts },
                    "properties": { "road_id": w.id, "name": w.name, "class": w.class, "oneway": w.oneway.as_str() },
                })
            })
            .collect(),
    )
}

/// Uncovered stretches of road at least `min_len_m` long.
pub fn gaps(m: &GeoModel, cov: &Coverage, min_len_m: f64) -> Value {
    collection(
        cov.gaps(m, min_len_m)
            .into_iter()
            .map(|(wi, pts, len)| {
                let w = &m.net.ways[wi];
                json!({
                    "type": "Feature",
                    "geometry": { "type": "LineString", "coordinates": pts },
                    "properties": { "road_id": w.id, "name": w.name, "class": w.class,
                        "length_m": (len * 10.0).round() / 10.0, "level": cov.query.level.as_str() },
                })
            })
            .collect(),
    )
}

/// Entrances as points.
pub fn entrances(m: &GeoModel, compliant: &[bool]) -> Value {
    collection(
        m.entrances
            .iter()
            .enumerate()
            .map(|(i, e)| {
                json!({
                    "type": "Feature",
                    "id": e.input.id,
                    "geometry": { "type": "Point", "coordinates": [e.input.lon, e.input.lat] },
                    "properties": { "entrance_id": e.input.id, "name": e.input.name, "road": e.input.road,
                        "compliant": compliant.get(i).copied() },
                })
            })
            .collect(),
    )
}
