//! Tests of the OSM import.

use super::*;
use crate::geo::proj::{LocalProj, Xy};

fn cam(tags: &[(&str, &str)]) -> CameraInput {
    camera(7, 24.94, 60.17, tags)
}

#[test]
fn oneway_variants() {
    let ow = |tags: &[(&str, &str)], class| oneway(tags, class);
    for v in ["yes", "true", "1", "YES"] {
        assert_eq!(ow(&[("oneway", v)], "primary"), Oneway::Forward, "{v}");
    }
    for v in ["-1", "reverse"] {
        assert_eq!(ow(&[("oneway", v)], "primary"), Oneway::Backward, "{v}");
    }
    assert_eq!(ow(&[("oneway", "no")], "residential"), Oneway::No);
    assert_eq!(ow(&[("oneway", "alternating")], "residential"), Oneway::No);
    assert_eq!(ow(&[], "residential"), Oneway::No);
    assert_eq!(ow(&[("junction", "roundabout")], "tertiary"), Oneway::Forward);
    assert_eq!(ow(&[("junction", "roundabout"), ("oneway", "-1")], "tertiary"), Oneway::Backward);
    assert_eq!(ow(&[], "motorway"), Oneway::Forward);
    assert_eq!(ow(&[], "motorway_link"), Oneway::Forward);
    assert_eq!(ow(&[("oneway", "no")], "motorway"), Oneway::No);
}

#[test]
fn compass_and_numeric_bearings() {
    let cases = [("N", 0.0), ("NNE", 22.5), ("ne", 45.0), ("ESE", 112.5), ("S", 180.0), ("NNW", 337.5)];
    for (text, deg) in cases {
        assert_eq!(bearing(text), Some(deg), "{text}");
    }
    assert_eq!(bearing("45"), Some(45.0));
    assert_eq!(bearing(" 45.5 "), Some(45.5));
    assert_eq!(bearing("-90"), Some(270.0));
    assert_eq!(bearing("400"), Some(40.0));
    assert_eq!(bearing("north-ish"), None);
    assert_eq!(bearing("NaN"), None);
    assert_eq!(direction("90-270"), Some((180.0, Some(180.0))));
    assert_eq!(direction("W-E"), Some((0.0, Some(180.0))));
    assert_eq!(direction("0-360"), Some((180.0, Some(360.0))));
    assert_eq!(direction("45;90"), Some((45.0, None)));
    assert_eq!(direction("up"), None);
}

#[test]
fn bare_node_counts_but_covers_nothing() {
    let c = cam(&[("man_made", "surveillance"), ("name", " ")]);
    assert_eq!((c.id.as_str(), c.name.as_str()), ("osm:node:7", "OSM surveillance node 7"));
    assert_eq!((c.bearing_deg, c.hfov_deg), (0.0, 0.0));
    assert_eq!((c.width_px, c.height_px, c.mounting_height_m), (1920, 1080, OSM_MOUNTING_HEIGHT_M));
    assert_eq!((c.kind, c.owner, c.grid_cell.clone()), (CameraKind::Street, Owner::Enterprise, None));
}

#[test]
fn field_of_view_by_camera_type() {
    let view = |tags: &[(&str, &str)]| {
        let c = cam(tags);
        (c.bearing_deg, c.hfov_deg)
    };
    assert_eq!(view(&[("camera:direction", "NE")]), (45.0, FIXED_HFOV_DEG));
    assert_eq!(view(&[("direction", "90"), ("camera:type", "fixed")]), (90.0, FIXED_HFOV_DEG));
    assert_eq!(view(&[("camera:type", "dome")]), (0.0, 360.0));
    assert_eq!(view(&[("camera:type", "dome"), ("camera:direction", "S")]), (180.0, DOME_HFOV_DEG));
    assert_eq!(view(&[("camera:type", "panning"), ("camera:direction", "10")]), (10.0, 360.0));
    assert_eq!(view(&[("revolving", "yes")]), (0.0, 360.0));
    assert_eq!(view(&[("camera:type", "fixed")]), (0.0, 0.0));
    // camera:angle is the tilt; it does not change the view's width.
    assert_eq!(view(&[("camera:direction", "200"), ("camera:angle", "15")]), (200.0, FIXED_HFOV_DEG));
    assert_eq!(view(&[("camera:direction", "90-180")]), (135.0, 90.0));
    assert_eq!(view(&[("camera:direction", "sideways")]), (0.0, 0.0));
}

#[test]
fn camera_tags() {
    let c = cam(&[("name", "Kamppi"), ("resolution", "1280x720"), ("height", "7 m")]);
    assert_eq!((c.name.as_str(), c.width_px, c.height_px, c.mounting_height_m), ("Kamppi", 1280, 720, 7.0));
    assert_eq!(cam(&[("height", "4,5m")]).mounting_height_m, 4.5);
    assert_eq!(cam(&[("height", "tall")]).mounting_height_m, OSM_MOUNTING_HEIGHT_M);
    assert_eq!(cam(&[("resolution", "HD")]).width_px, 1920);
    assert_eq!(cam(&[("surveillance:type", "ALPR")]).kind, CameraKind::Checkpoint);
    assert_eq!(cam(&[("surveillance", "indoor")]).kind, CameraKind::Shop);
    assert_eq!(cam(&[("surveillance", "outdoor")]).kind, CameraKind::Street);
    assert_eq!(cam(&[("operator", "Helsingin poliisilaitos")]).owner, Owner::Public);
    assert_eq!(cam(&[("operator", "Helsingin kaupunki")]).owner, Owner::Public);
    assert_eq!(cam(&[("surveillance", "public")]).owner, Owner::Public);
    assert_eq!(cam(&[("operator", "Stockmann")]).owner, Owner::Enterprise);
}

fn pending(refs: &[i64]) -> PendingWay {
    PendingWay { id: 123, name: None, class: "footway".into(), oneway: Oneway::No, refs: refs.to_vec() }
}

#[test]
fn ways_cut_by_the_extract() {
    let coords: HashMap<i64, [f64; 2]> =
        [(1, [24.9, 60.1]), (2, [24.91, 60.1]), (4, [24.92, 60.1]), (5, [24.93, 60.1])].into_iter().collect();
    let mut roads = ImportBatch::new("x.pbf");
    add_road(&mut roads, &pending(&[1, 2]), &coords);
    add_road(&mut roads, &pending(&[1, 2, 3, 4, 5]), &coords);
    add_road(&mut roads, &pending(&[1, 3, 6, 7, 8]), &coords);
    add_road(&mut roads, &pending(&[1, 3, 4, 9]), &coords);
    let ids: Vec<&str> = roads.accepted.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["osm:way:123", "osm:way:123#1", "osm:way:123#2"]);
    assert_eq!(roads.accepted[2].coords, [[24.92, 60.1], [24.93, 60.1]]);
    assert_eq!(roads.accepted[2].node_ids, Some(vec![4, 5]));
    assert_eq!(roads.rejected.len(), 2);
    assert_eq!(roads.rejected[0].at, "osm way 123");
    assert_eq!(roads.rejected[0].reason, "1 of 5 nodes present in the extract; a road needs two consecutive ones");
    assert!(roads.rejected[1].reason.starts_with("2 of 4 nodes present"));
}

#[test]
fn file_level_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut calls = 0;
    let mut progress = |_: Progress| calls += 1;
    let missing = dir.path().join("missing.osm.pbf");
    let err = read_osm(&missing, &mut progress).unwrap_err();
    assert!(matches!(err, ImportError::Open { .. }));
    assert!(err.to_string().contains("missing.osm.pbf"), "{err}");
    let text = dir.path().join("roads.geojson");
    std::fs::write(&text, "{\"type\": \"FeatureCollection\", \"features\": []}").unwrap();
    let err = read_osm(&text, &mut progress).unwrap_err();
    assert!(matches!(err, ImportError::NotPbf { .. }), "{err}");
    assert!(err.to_string().starts_with(&format!("{} is not a valid OSM PBF file", text.display())), "{err}");
    let err = read_osm(dir.path(), &mut progress).unwrap_err();
    assert!(matches!(err, ImportError::Open { .. }) && err.to_string().ends_with("it is a directory"), "{err}");
    let empty = dir.path().join("empty.pbf");
    std::fs::write(&empty, b"").unwrap();
    let err = read_osm(&empty, &mut progress).unwrap_err();
    assert!(err.to_string().ends_with("the file holds no blocks"), "{err}");
}

/// A minimal PBF writer: uncompressed blobs, plain (not dense) nodes, enough for these tests.
mod pbf {
    /// Tags as `(key, value)` pairs.
    pub type Tags<'a> = &'a [(&'a str, &'a str)];
    /// A node: `(id, lon, lat, tags)`.
    pub type NodeSpec<'a> = (i64, f64, f64, Tags<'a>);
    /// A way: `(id, tags, node ids)`.
    pub type WaySpec<'a> = (i64, Tags<'a>, &'a [i64]);
    /// A relation member: `(role, type (0 node, 1 way, 2 relation), id)`.
    pub type MemberSpec<'a> = (&'a str, u64, i64);
    /// A relation: `(id, tags, members)`.
    pub type RelationSpec<'a> = (i64, Tags<'a>, &'a [MemberSpec<'a>]);

    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn zigzag(v: i64) -> u64 {
        ((v << 1) ^ (v >> 63)) as u64
    }

    fn bytes(out: &mut Vec<u8>, field: u64, data: &[u8]) {
        varint(out, field << 3 | 2);
        varint(out, data.len() as u64);
        out.extend_from_slice(data);
    }

    fn number(out: &mut Vec<u8>, field: u64, v: u64) {
        varint(out, field << 3);
        varint(out, v);
    }

    fn packed(out: &mut Vec<u8>, field: u64, values: impl IntoIterator<Item = u64>) {
        let mut data = Vec::new();
        values.into_iter().for_each(|v| varint(&mut data, v));
        bytes(out, field, &data);
    }

    /// A string's index in the string table, added when new.
    fn index(strings: &mut Vec<String>, s: &str) -> u64 {
        match strings.iter().position(|x| x == s) {
            Some(i) => i as u64,
            None => {
                strings.push(s.to_owned());
                strings.len() as u64 - 1
            }
        }
    }

    /// Tags as parallel key and value indices into the string table.
    fn tags(out: &mut Vec<u8>, strings: &mut Vec<String>, tags: &[(&str, &str)]) {
        let (keys, vals): (Vec<u64>, Vec<u64>) =
            tags.iter().map(|(k, v)| (index(strings, k), index(strings, v))).unzip();
        packed(out, 2, keys);
        packed(out, 3, vals);
    }

    /// One data block: nodes `(id, lon, lat, tags)` and ways `(id, tags, refs)`.
    pub fn block(nodes: &[NodeSpec], ways: &[WaySpec]) -> Vec<u8> {
        block_with_relations(nodes, ways, &[])
    }

    /// One data block with relations too (after the ways, as in a real extract).
    pub fn block_with_relations(nodes: &[NodeSpec], ways: &[WaySpec], relations: &[RelationSpec]) -> Vec<u8> {
        let mut strings = vec![String::new()];
        let mut group = Vec::new();
        for (id, lon, lat, node_tags) in nodes {
            let mut node = Vec::new();
            number(&mut node, 1, zigzag(*id));
            tags(&mut node, &mut strings, node_tags);
            number(&mut node, 8, zigzag((lat * 1e7).round() as i64));
            number(&mut node, 9, zigzag((lon * 1e7).round() as i64));
            bytes(&mut group, 1, &node);
        }
        for (id, way_tags, refs) in ways {
            let mut way = Vec::new();
            number(&mut way, 1, *id as u64);
            tags(&mut way, &mut strings, way_tags);
            let mut previous = 0i64;
            let deltas = refs.iter().map(|r| zigzag(r.wrapping_sub(std::mem::replace(&mut previous, *r))));
            packed(&mut way, 8, deltas.collect::<Vec<_>>());
            bytes(&mut group, 3, &way);
        }
        for (id, rel_tags, members) in relations {
            let mut rel = Vec::new();
            number(&mut rel, 1, *id as u64);
            tags(&mut rel, &mut strings, rel_tags);
            let roles: Vec<u64> = members.iter().map(|(role, _, _)| index(&mut strings, role)).collect();
            packed(&mut rel, 8, roles);
            let mut previous = 0i64;
            let deltas = members.iter().map(|(_, _, m)| zigzag(m.wrapping_sub(std::mem::replace(&mut previous, *m))));
            packed(&mut rel, 9, deltas.collect::<Vec<_>>());
            packed(&mut rel, 10, members.iter().map(|(_, t, _)| *t));
            bytes(&mut group, 4, &rel);
        }
        let mut table = Vec::new();
        strings.iter().for_each(|s| bytes(&mut table, 1, s.as_bytes()));
        let mut block = Vec::new();
        bytes(&mut block, 1, &table);
        bytes(&mut block, 2, &group);
        block
    }

    /// A file of the given blobs `(type, content)`; an OSM file starts with an `OSMHeader`.
    pub fn file(blocks: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (kind, content) in blocks {
            let mut blob = Vec::new();
            bytes(&mut blob, 1, content);
            let mut header = Vec::new();
            bytes(&mut header, 1, kind.as_bytes());
            number(&mut header, 3, blob.len() as u64);
            out.extend_from_slice(&(header.len() as u32).to_be_bytes());
            out.extend_from_slice(&header);
            out.extend_from_slice(&blob);
        }
        out
    }
}

fn read_bytes(data: &[u8]) -> (Result<OsmImport, ImportError>, Vec<Progress>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.osm.pbf");
    std::fs::write(&path, data).unwrap();
    let mut reports = Vec::new();
    let result = read_osm(&path, &mut |p| reports.push(p));
    (result, reports)
}

#[test]
fn small_extract_end_to_end() {
    let camera_tags: &[(&str, &str)] =
        &[("man_made", "surveillance"), ("surveillance:type", "ALPR"), ("camera:direction", "NE"), ("name", "Gate")];
    let nodes: &[pbf::NodeSpec] = &[
        (1, 24.9, 60.1, &[]),
        (2, 24.91, 60.11, &[]),
        (3, 24.92, 60.12, &[("highway", "crossing")]),
        (10, 24.93, 60.13, camera_tags),
    ];
    let ways: &[pbf::WaySpec] = &[
        (100, &[("highway", "primary"), ("oneway", "-1"), ("name", "Main")], &[1, 2, 3]),
        (101, &[("highway", "footway")], &[1, 99]),
        (102, &[("highway", "proposed")], &[1, 2]),
        (103, &[("building", "yes")], &[1, 2, 3, 1]),
    ];
    let data = pbf::file(&[("OSMHeader", Vec::new()), ("OSMData", pbf::block(nodes, ways))]);
    let (result, reports) = read_bytes(&data);
    let import = result.unwrap();
    let road = &import.roads.accepted[0];
    assert_eq!(import.roads.accepted.len(), 1);
    assert_eq!((road.id.as_str(), road.name.as_deref(), road.class.as_str()), ("osm:way:100", Some("Main"), "primary"));
    assert_eq!((road.oneway, road.node_ids.clone()), (Oneway::Backward, Some(vec![1, 2, 3])));
    assert!((road.coords[2][0] - 24.92).abs() < 1e-9 && (road.coords[2][1] - 60.12).abs() < 1e-9);
    let rejected: Vec<(&str, &str)> =
        import.roads.rejected.iter().map(|r| (r.at.as_str(), r.reason.as_str())).collect();
    assert_eq!(
        rejected,
        [
            ("osm way 102", "highway=proposed is not a road in use"),
            ("osm way 101", "1 of 2 nodes present in the extract; a road needs two consecutive ones"),
        ]
    );
    let cam = &import.cameras.accepted[0];
    assert_eq!((cam.id.as_str(), cam.name.as_str(), cam.kind), ("osm:node:10", "Gate", CameraKind::Checkpoint));
    assert_eq!((cam.bearing_deg, cam.hfov_deg), (45.0, FIXED_HFOV_DEG));
    let last = reports.last().copied().unwrap();
    assert_eq!((last.bytes_done, last.bytes_total, last.items), (2 * data.len() as u64, 2 * data.len() as u64, 8));
}

#[test]
fn damaged_blocks_are_errors_not_panics() {
    let header = || ("OSMHeader", Vec::new());
    let message = |blocks: &[(&str, Vec<u8>)]| read_bytes(&pbf::file(blocks)).0.unwrap_err().to_string();
    let overflow: &[pbf::WaySpec] = &[(1, &[("highway", "primary")], &[i64::MAX, i64::MIN])];
    let err = message(&[header(), ("OSMData", pbf::block(&[], overflow))]);
    assert!(err.ends_with("block 2 is damaged (its ids or coordinates overflow)"), "{err}");
    let err = message(&[header(), ("OSMData", b"\xff\xff\xff".to_vec())]);
    assert!(err.contains("block 2 is damaged"), "{err}");
    let err = message(&[("OSMData", pbf::block(&[], &[]))]);
    assert!(err.ends_with("is not a valid OSM PBF file: the first block is not an OSM header"), "{err}");
    let mut data = pbf::file(&[header(), ("OSMData", pbf::block(&[(1, 24.9, 60.1, &[])], &[]))]);
    data.truncate(data.len() - 3);
    let err = read_bytes(&data).0.unwrap_err();
    assert!(matches!(err, ImportError::NotPbf { .. }), "{err}");
}

/// Where a point `(x, y)` metres east and north of the test camera lies, `[lon, lat]`.
fn at(x: f64, y: f64) -> [f64; 2] {
    LocalProj::new(CAM_LON, CAM_LAT).inv(Xy::new(x, y))
}

const CAM_LON: f64 = 24.94;
const CAM_LAT: f64 = 60.17;

/// A node `(x, y)` metres from the test camera.
fn node_at<'a>(id: i64, x: f64, y: f64) -> pbf::NodeSpec<'a> {
    let [lon, lat] = at(x, y);
    (id, lon, lat, &[])
}

/// Within 0.02°: positions are stored to 1e-7° (about 5 mm), 50 m and more from the camera.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.02
}

#[test]
fn angular_spans() {
    assert_eq!(angular_span(&mut []), None);
    assert_eq!(angular_span(&mut [30.0]), Some((30.0, 0.0)));
    assert_eq!(angular_span(&mut [135.0, 45.0]), Some((45.0, 90.0)));
    // Across north: 350° to 20° is 30° wide, not 330°.
    assert_eq!(angular_span(&mut [20.0, 350.0, 5.0]), Some((350.0, 30.0)));
    let (start, width) = angular_span(&mut [0.0, 90.0, 180.0, 270.0]).unwrap();
    assert_eq!(width, 270.0, "{start}");
}

/// Cameras 1..=7 at the same place (each relation below names its own), roads none.
#[test]
fn surveillance_relations_give_fields_of_view() {
    let cam: &[(&str, &str)] = &[("man_made", "surveillance")];
    let cam_directed: &[(&str, &str)] = &[("man_made", "surveillance"), ("camera:direction", "200")];
    let cam_dome: &[(&str, &str)] = &[("man_made", "surveillance"), ("camera:type", "dome")];
    let cam_panning: &[(&str, &str)] = &[("man_made", "surveillance"), ("camera:type", "panning")];
    let [lon, lat] = [CAM_LON, CAM_LAT];
    let mut nodes: Vec<pbf::NodeSpec> = vec![
        (1, lon, lat, cam),
        (2, lon, lat, cam),
        (3, lon, lat, cam),
        (4, lon, lat, cam_directed),
        (5, lon, lat, cam),
        (6, lon, lat, cam_dome),
        (7, lon, lat, cam_panning),
        (8, lon, lat, cam),
        (9, lon, lat, &[]),
    ];
    nodes.extend([
        // Visible nodes north-east (45°) and south-east (135°) of the cameras, 100 m away.
        node_at(101, 100.0, 100.0),
        node_at(102, 100.0, -100.0),
        // An extent area: the square 50..100 m east and north (corners at 45°, 63.43°, 45°, 26.57°).
        node_at(111, 50.0, 50.0),
        node_at(112, 100.0, 50.0),
        node_at(113, 100.0, 100.0),
        node_at(114, 50.0, 100.0),
        // A visible way north-west (315°), north (0°) and north-east (45°).
        node_at(121, -100.0, 100.0),
        node_at(122, 0.0, 100.0),
        node_at(123, 100.0, 100.0),
        // An extent area around the cameras.
        node_at(131, -50.0, -50.0),
        node_at(132, 50.0, -50.0),
        node_at(133, 50.0, 50.0),
        node_at(134, -50.0, 50.0),
        // One point due west.
        node_at(141, -80.0, 0.0),
    ]);
    let ways: &[pbf::WaySpec] = &[
        (200, &[("building", "yes")], &[111, 112, 113, 114, 111]),
        (201, &[("highway", "residential")], &[121, 122, 123]),
        (202, &[("landuse", "retail")], &[131, 132, 133, 134, 131]),
        (203, &[("barrier", "fence")], &[998, 999]),
    ];
    let surveillance: &[(&str, &str)] = &[("type", "surveillance")];
    let relations: &[pbf::RelationSpec] = &[
        // Camera and two visible nodes: 45°..135°, bisector 90°, 90° + 2 × 5° margin.
        (301, surveillance, &[("camera", 0, 1), ("visible", 0, 101), ("visible", 0, 102)]),
        // An extent area: 26.57°..63.43°, bisector 45°, 36.87° + 10°.
        (302, surveillance, &[("camera", 0, 2), ("extent", 1, 200)]),
        // A visible way with its north-west end hidden: 0°..45°, bisector 22.5°, 45° + 10°.
        (303, surveillance, &[("camera", 0, 3), ("visible", 1, 201), ("hidden", 0, 121)]),
        // The camera maps its own direction: it wins.
        (304, surveillance, &[("camera", 0, 4), ("visible", 0, 101)]),
        // No camera member: reported, not used.
        (305, surveillance, &[("visible", 0, 101), ("extent", 1, 200)]),
        // Members missing from the extract: reported; camera 5 stays without a direction.
        (306, surveillance, &[("camera", 0, 5), ("visible", 0, 998), ("visible", 1, 997), ("extent", 1, 203)]),
        // A dome takes the relation's view (its default is all round); camera 1 is already done.
        (307, surveillance, &[("camera", 0, 6), ("camera", 0, 1), ("visible", 0, 141)]),
        // A panning camera keeps 360° but takes the bearing; camera 8 stands inside the extent.
        (308, surveillance, &[("camera", 0, 7), ("visible", 0, 141)]),
        (309, surveillance, &[("camera", 0, 8), ("extent", 1, 202)]),
        // Node 9 is not a camera; a relation of another type is ignored silently.
        (310, surveillance, &[("camera", 0, 9), ("visible", 0, 141)]),
        (311, &[("type", "route")], &[("camera", 0, 5), ("visible", 0, 141)]),
        // Members without a role (as some mappers leave them) are not used.
        (312, surveillance, &[("camera", 0, 5), ("", 0, 141)]),
    ];
    let block = pbf::block_with_relations(&nodes, ways, relations);
    let data = pbf::file(&[("OSMHeader", Vec::new()), ("OSMData", block)]);
    let (result, reports) = read_bytes(&data);
    let import = result.unwrap();
    let view = |id: &str| {
        let c = import.cameras.accepted.iter().find(|c| c.id == id).unwrap();
        (c.bearing_deg, c.hfov_deg)
    };
    let expect = |id: &str, bearing: f64, hfov: f64| {
        let (b, h) = view(id);
        assert!(close(b, bearing) && close(h, hfov), "{id}: ({b}, {h}) instead of ({bearing}, {hfov})");
    };
    expect("osm:node:1", 90.0, 100.0);
    let corner = 0.5f64.atan().to_degrees();
    expect("osm:node:2", 45.0, 90.0 - 2.0 * corner + 10.0);
    expect("osm:node:3", 22.5, 55.0);
    expect("osm:node:4", 200.0, FIXED_HFOV_DEG);
    expect("osm:node:5", 0.0, 0.0);
    expect("osm:node:6", 270.0, RELATION_MIN_HFOV_DEG);
    expect("osm:node:7", 270.0, 360.0);
    assert_eq!(view("osm:node:8").1, 360.0, "inside its extent area");
    let views = &import.views;
    let from: Vec<(&str, i64)> = views.from_relations.iter().map(|v| (v.camera_id.as_str(), v.relation_id)).collect();
    assert_eq!(
        from,
        [
            ("osm:node:1", 301),
            ("osm:node:2", 302),
            ("osm:node:3", 303),
            ("osm:node:6", 307),
            ("osm:node:7", 308),
            ("osm:node:8", 309)
        ]
    );
    assert_eq!(views.without_direction, ["osm:node:5"]);
    let problems: Vec<(&str, &str)> = views.problems.iter().map(|p| (p.at.as_str(), p.reason.as_str())).collect();
    assert_eq!(
        problems,
        [
            ("osm relation 304", "camera osm:node:4 keeps its own camera:direction"),
            ("osm relation 305", "no camera member (a node with role camera); not used"),
            ("osm relation 306", "members or member nodes missing from the extract: 3 (node 998, way 997, node 999)"),
            (
                "osm relation 306",
                "camera osm:node:5: none of its visible or extent members is in the extract; no view taken"
            ),
            ("osm relation 307", "camera osm:node:1 already has its view from osm relation 301"),
            ("osm relation 310", "camera node 9 is not a man_made=surveillance node of the extract"),
            ("osm relation 312", "camera osm:node:5: the relation has no visible or extent member; no view taken"),
        ]
    );
    // Way 203 uses node 999, which no road or relation names: a third pass looks for it.
    let last = reports.last().copied().unwrap();
    assert_eq!(last.bytes_total, 3 * data.len() as u64);
}

#[test]
fn member_ways_off_the_roads_take_a_third_pass() {
    let cam: &[(&str, &str)] = &[("man_made", "surveillance")];
    let nodes: &[pbf::NodeSpec] = &[(1, CAM_LON, CAM_LAT, cam), node_at(2, 0.0, 50.0), node_at(3, 50.0, 50.0)];
    let ways: &[pbf::WaySpec] = &[(10, &[("building", "yes")], &[2, 3])];
    let relations: &[pbf::RelationSpec] = &[(20, &[("type", "surveillance")], &[("camera", 0, 1), ("visible", 1, 10)])];
    let data = pbf::file(&[("OSMHeader", Vec::new()), ("OSMData", pbf::block_with_relations(nodes, ways, relations))]);
    let (result, reports) = read_bytes(&data);
    let import = result.unwrap();
    let c = &import.cameras.accepted[0];
    assert!(close(c.bearing_deg, 22.5) && close(c.hfov_deg, 55.0), "{c:?}");
    assert!(import.views.problems.is_empty() && import.views.without_direction.is_empty());
    let last = reports.last().copied().unwrap();
    assert_eq!((last.bytes_done, last.bytes_total), (3 * data.len() as u64, 3 * data.len() as u64));
    assert!(reports.windows(2).all(|w| w[0].bytes_done <= w[1].bytes_done));
}
