//! Tests of the GeoJSON imports.

use super::*;
use crate::config::{CameraKind, Owner};
use serde_json::json;

/// Writes a FeatureCollection of `features` to a temporary file.
fn file(features: JsonValue) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.geojson");
    let text = json!({"type": "FeatureCollection", "features": features}).to_string();
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn feature(geometry: JsonValue, properties: JsonValue) -> JsonValue {
    json!({"type": "Feature", "geometry": geometry, "properties": properties})
}

fn line(coords: JsonValue) -> JsonValue {
    json!({"type": "LineString", "coordinates": coords})
}

fn point(lon: f64, lat: f64) -> JsonValue {
    json!({"type": "Point", "coordinates": [lon, lat]})
}

fn square(x: f64, size: f64) -> JsonValue {
    json!([[[x, 60.0], [x + size, 60.0], [x + size, 60.0 + size], [x, 60.0 + size], [x, 60.0]]])
}

fn reasons<T>(batch: &ImportBatch<T>) -> Vec<(String, String)> {
    let base = batch.source.clone();
    batch.rejected.iter().map(|r| (r.at.replace(&base, "F"), r.reason.clone())).collect()
}

#[test]
fn roads_good_and_bad() {
    let ab = json!([[24.9, 60.1], [24.91, 60.11]]);
    let (_dir, path) = file(json!([
        feature(
            line(ab.clone()),
            json!({"id": "r1", "name": "Mannerheimintie", "highway": "primary", "oneway": "yes"})
        ),
        feature(line(ab.clone()), json!({"id": 2, "class": "footway", "oneway": false})),
        feature(
            json!({"type": "MultiLineString", "coordinates": [ab.clone(), ab.clone()]}),
            json!({"id": "m", "highway": "service", "oneway": "-1"})
        ),
        feature(line(ab.clone()), json!({"id": "r1", "highway": "primary"})),
        feature(line(json!([[24.9, 60.1]])), json!({"id": "short", "highway": "primary"})),
        feature(line(json!([[24.9, 60.1], [200.0, 60.0]])), json!({"id": "far", "highway": "primary"})),
        feature(line(ab.clone()), json!({"id": "nocls"})),
        feature(line(ab.clone()), json!({"id": "ow", "highway": "primary", "oneway": "maybe"})),
        feature(point(24.9, 60.1), json!({"id": "pt", "highway": "primary"})),
        feature(line(ab.clone()), json!({"highway": "primary"})),
        json!({"type": "Feature", "geometry": {"type": "LineString"}, "properties": {}}),
    ]));
    let batch = read_roads_geojson(&path).unwrap();
    let ids: Vec<&str> = batch.accepted.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r1", "2", "m#1", "m#2"]);
    let oneways: Vec<Oneway> = batch.accepted.iter().map(|r| r.oneway).collect();
    assert_eq!(oneways, [Oneway::Forward, Oneway::No, Oneway::Backward, Oneway::Backward]);
    assert_eq!(batch.accepted[0].name.as_deref(), Some("Mannerheimintie"));
    assert_eq!((batch.accepted[1].class.as_str(), batch.accepted[1].node_ids.clone()), ("footway", None));
    let rejected = reasons(&batch);
    assert_eq!(rejected[0], ("F: feature 3 (id \"r1\")".into(), "duplicate id, first at feature 0".into()));
    assert_eq!(rejected[1].1, "a road needs at least 2 positions, this one has 1");
    assert_eq!(rejected[2].1, "position 1: 200 is not a longitude (-180..180)");
    assert_eq!(rejected[3].1, "highway: missing; give highway (or class)");
    assert!(rejected[4].1.starts_with("oneway: \"maybe\" is not one of yes, no, -1"), "{}", rejected[4].1);
    assert_eq!(rejected[5].1, "the geometry is a Point, expected a LineString or MultiLineString");
    assert_eq!(rejected[6], ("F: feature 9".into(), "no id: give an \"id\" property or a feature id".into()));
    assert!(rejected[7].1.starts_with("not a GeoJSON Feature"), "{}", rejected[7].1);
    assert_eq!(rejected.len(), 8);
}

#[test]
fn feature_id_is_used_when_properties_have_none() {
    let f =
        json!({"type": "Feature", "id": 17, "geometry": line(json!([[1, 2], [3, 4]])), "properties": {"highway": "x"}});
    let (_dir, path) = file(json!([f]));
    assert_eq!(read_roads_geojson(&path).unwrap().accepted[0].id, "17");
}

#[test]
fn file_level_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.geojson");
    let err = read_roads_geojson(&path).unwrap_err();
    assert!(matches!(err, ImportError::Open { .. }) && err.to_string().contains("x.geojson"), "{err}");
    let cases = [
        ("{not json", "not JSON"),
        ("[1, 2]", "not an object"),
        ("{\"type\": \"Feature\"}", "single Feature"),
        ("{\"type\": \"Topology\"}", "its type is \"Topology\""),
        ("{\"type\": \"FeatureCollection\"}", "\"features\" member is missing"),
    ];
    for (text, expected) in cases {
        std::fs::write(&path, text).unwrap();
        let err = read_roads_geojson(&path).unwrap_err();
        assert!(matches!(err, ImportError::NotGeoJson { .. }), "{err}");
        assert!(err.to_string().contains(expected) && err.to_string().contains("x.geojson"), "{err}");
    }
    std::fs::write(&path, "\u{feff}{\"type\": \"FeatureCollection\", \"features\": []}").unwrap();
    assert!(read_cells_geojson(&path).unwrap().accepted.is_empty());
}

#[test]
fn cells_and_parents() {
    let multi = json!({"type": "MultiPolygon", "coordinates": [square(25.0, 0.01), square(24.0, 0.1)]});
    let (_dir, path) = file(json!([
        feature(
            json!({"type": "Polygon", "coordinates": square(24.9, 0.1)}),
            json!({"id": "A", "name": "Station A", "level": 1})
        ),
        feature(multi, json!({"id": "A1", "level": "2", "parent": "A"})),
        feature(
            json!({"type": "Polygon", "coordinates": square(24.9, 0.01)}),
            json!({"id": "A1a", "level": 3, "parent": "A1"})
        ),
        feature(
            json!({"type": "Polygon", "coordinates": square(24.9, 0.01)}),
            json!({"id": "X", "level": 3, "parent": "A"})
        ),
        feature(
            json!({"type": "Polygon", "coordinates": square(24.9, 0.01)}),
            json!({"id": "Y", "level": 2, "parent": "elsewhere"})
        ),
        feature(
            json!({"type": "Polygon", "coordinates": [[[24.9, 60.0], [25.0, 60.0], [24.9, 60.0]]]}),
            json!({"id": "thin", "level": 2})
        ),
        feature(
            json!({"type": "Polygon", "coordinates": square(24.9, 0.01)}),
            json!({"id": "B1", "level": 2, "parent": "thin"})
        ),
        feature(
            json!({"type": "Polygon", "coordinates": square(24.9, 0.01)}),
            json!({"id": "B1a", "level": 3, "parent": "B1"})
        ),
        feature(json!({"type": "Polygon", "coordinates": square(24.9, 0.01)}), json!({"id": "L", "level": 4})),
        feature(
            json!({"type": "Polygon", "coordinates": square(24.9, 0.01)}),
            json!({"id": "top", "level": 1, "parent": "A"})
        ),
    ]));
    let batch = read_cells_geojson(&path).unwrap();
    let ids: Vec<&str> = batch.accepted.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["A", "A1", "A1a", "Y"]);
    assert_eq!(batch.accepted[0].name, "Station A");
    assert_eq!((batch.accepted[1].name.as_str(), batch.accepted[1].level), ("A1", 2));
    assert_eq!(batch.accepted[1].polygon[0], [24.0, 60.0], "the larger part of the MultiPolygon");
    let rejected = reasons(&batch);
    let expected = [
        ("X", "parent: \"A\" is a level 1 cell (feature 0); a level 3 cell needs a level 2 parent"),
        ("thin", "the outer ring has 2 corners; a cell needs at least 3"),
        ("B1", "parent: \"thin\" was rejected (feature 5)"),
        ("B1a", "parent: \"B1\" was rejected (feature 6)"),
        ("L", "level: \"4\" is not 1, 2 or 3"),
        ("top", "parent: a level 1 cell has no parent"),
    ];
    assert_eq!(rejected.len(), expected.len(), "{rejected:?}");
    for ((at, reason), (id, want)) in rejected.iter().zip(expected) {
        assert!(at.ends_with(&format!("(id \"{id}\")")), "{at}");
        assert_eq!(reason, want);
    }
}

#[test]
fn entrances() {
    let (_dir, path) = file(json!([
        feature(point(24.94, 60.17), json!({"id": "e1", "name": "School 3", "road": "Bulevardi", "grid_cell": "A1a"})),
        feature(point(24.94, 60.17), json!({"id": "e2", "name": "  "})),
        feature(point(24.94, 95.0), json!({"id": "e3", "name": "Bank"})),
        feature(point(24.94, 60.17), json!({"id": "e4", "name": {"fi": "Pankki"}})),
    ]));
    let batch = read_entrances_geojson(&path).unwrap();
    assert_eq!(batch.accepted.len(), 1);
    let e = &batch.accepted[0];
    assert_eq!(
        (e.name.as_str(), e.road.as_deref(), e.grid_cell.as_deref()),
        ("School 3", Some("Bulevardi"), Some("A1a"))
    );
    assert_eq!((e.lon, e.lat), (24.94, 60.17));
    let reasons: Vec<String> = batch.rejected.iter().map(|r| r.reason.clone()).collect();
    assert_eq!(
        reasons,
        [
            "name: missing; an entrance needs its unit's name",
            "95 is not a latitude (-90..90)",
            "name: expected text or a number, found a list or an object"
        ]
    );
}

#[test]
fn cameras() {
    let (_dir, path) = file(json!([
        feature(
            point(24.94, 60.17),
            json!({"id": "c1", "name": "Kamppi", "bearing_deg": 45, "hfov_deg": 70, "resolution": "1280x720", "mounting_height_m": 8, "kind": "checkpoint", "owner": "enterprise", "grid_cell": "A1a"})
        ),
        feature(point(24.94, 60.17), json!({"id": "c2", "hfov_deg": 360})),
        feature(point(24.94, 60.17), json!({"id": "c3", "bearing_deg": 10, "width_px": 640, "height_px": 480})),
        feature(point(24.94, 60.17), json!({"id": "c4"})),
        feature(point(24.94, 60.17), json!({"id": "c5", "bearing_deg": 10, "owner": "mafia"})),
        feature(point(24.94, 60.17), json!({"id": "c6", "bearing_deg": "north"})),
        feature(line(json!([[1, 2], [3, 4]])), json!({"id": "c7", "bearing_deg": 1})),
    ]));
    let batch = read_cameras_geojson(&path).unwrap();
    assert_eq!(batch.accepted.len(), 3);
    let c1 = &batch.accepted[0];
    assert_eq!((c1.bearing_deg, c1.hfov_deg, c1.width_px, c1.height_px), (45.0, 70.0, 1280, 720));
    assert_eq!((c1.mounting_height_m, c1.kind, c1.owner), (8.0, CameraKind::Checkpoint, Owner::Enterprise));
    assert_eq!((c1.name.as_str(), c1.grid_cell.as_deref()), ("Kamppi", Some("A1a")));
    let c2 = &batch.accepted[1];
    assert_eq!((c2.name.as_str(), c2.hfov_deg, c2.kind, c2.owner), ("c2", 360.0, CameraKind::Street, Owner::Public));
    assert_eq!((batch.accepted[2].width_px, batch.accepted[2].height_px), (640, 480));
    let reasons: Vec<&str> = batch.rejected.iter().map(|r| r.reason.as_str()).collect();
    assert!(reasons[0].starts_with("bearing_deg: missing"), "{}", reasons[0]);
    assert!(reasons[1].starts_with("owner: unknown value \"mafia\""), "{}", reasons[1]);
    assert_eq!(reasons[2], "bearing_deg: \"north\" is not a number");
    assert_eq!(reasons[3], "the geometry is a LineString, expected a Point");
}
