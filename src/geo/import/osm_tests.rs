//! Tests of the OSM import.

use super::*;

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

    /// Tags as parallel key and value indices into the string table.
    fn tags(out: &mut Vec<u8>, strings: &mut Vec<String>, tags: &[(&str, &str)]) {
        let mut index = |s: &str| match strings.iter().position(|x| x == s) {
            Some(i) => i as u64,
            None => {
                strings.push(s.to_owned());
                strings.len() as u64 - 1
            }
        };
        let (keys, vals): (Vec<u64>, Vec<u64>) = tags.iter().map(|(k, v)| (index(k), index(v))).unzip();
        packed(out, 2, keys);
        packed(out, 3, vals);
    }

    /// One data block: nodes `(id, lon, lat, tags)` and ways `(id, tags, refs)`.
    pub fn block(nodes: &[NodeSpec], ways: &[WaySpec]) -> Vec<u8> {
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
