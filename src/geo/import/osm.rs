//! OpenStreetMap PBF extracts: roads (ways tagged `highway`) and surveillance cameras (nodes
//! tagged `man_made=surveillance`), with fields of view from `type=surveillance` relations.
//!
//! The file is read twice. The first pass keeps the highway ways (tags and node ids), the camera
//! nodes and the surveillance relations (their members); the second keeps the coordinates of only
//! the nodes those ways and relations use, and the node ids of the relations' member ways, so
//! memory grows with the roads and the relations, not with every node of the extract. A relation's
//! member way comes after the nodes in a PBF file, so when such a way uses nodes no road uses, a
//! third pass reads their coordinates (only then).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use osmpbf::{BlobDecode, BlobReader, Element, PrimitiveBlock};

use serde::Serialize;

use super::{ImportError, check_lat, check_lon, display, parse_resolution};
use crate::config::{CameraKind, Owner};
use crate::geo::input::{CameraInput, ImportBatch, Oneway, Progress, Rejected, RoadWay};
use crate::geo::model::point_in_polygon;
use crate::geo::proj::{LocalProj, Xy};

/// What an OSM extract holds for the geography model.
#[derive(Debug, Clone, PartialEq)]
pub struct OsmImport {
    /// One road per way tagged `highway` (split in parts `#1`, `#2`, … where the extract cut
    /// nodes out of its middle).
    pub roads: ImportBatch<RoadWay>,
    /// One camera per node tagged `man_made=surveillance`.
    pub cameras: ImportBatch<CameraInput>,
    /// Which cameras took their field of view from a `type=surveillance` relation, which still
    /// have none, and the relations (or members) that could not be used.
    pub views: ViewReport,
}

/// What the `type=surveillance` relations gave the cameras.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ViewReport {
    /// Cameras whose bearing and field of view come from a relation, in the file's order.
    pub from_relations: Vec<RelationView>,
    /// Cameras still without a direction, by id: no `camera:direction`/`direction`, no usable
    /// relation, and not all round (`camera:type=dome`/`panning`, `revolving=yes`). They count but
    /// cover nothing.
    pub without_direction: Vec<String>,
    /// Relations, or parts of them, that were not used, and why (`at` is `osm relation ID`). These
    /// refuse nothing (the cameras are imported either way), so `--strict` does not count them.
    pub problems: Vec<Rejected>,
}

/// A camera's view as taken from a relation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelationView {
    pub camera_id: String,
    pub relation_id: i64,
    pub bearing_deg: f64,
    pub hfov_deg: f64,
}

/// `highway` values that are not roads in use; such ways are rejected, not imported.
pub const NOT_IN_USE: [&str; 4] = ["proposed", "construction", "abandoned", "razed"];

/// Field of view given to a fixed camera (or one of unknown type) whose direction is mapped, in
/// degrees. OSM has no field-of-view tag (`camera:angle` is the tilt from horizontal).
pub const FIXED_HFOV_DEG: f64 = 60.0;
/// Field of view of a dome camera whose direction is mapped, in degrees.
pub const DOME_HFOV_DEG: f64 = 90.0;
/// Mounting height when the node has no `height` tag, in metres.
pub const OSM_MOUNTING_HEIGHT_M: f64 = 4.0;
/// Added on each side of the angular span of a relation's visible points, in degrees: the mapped
/// points are where the view reaches something, not the edges of the image.
pub const RELATION_MARGIN_DEG: f64 = 5.0;
/// The narrowest field of view taken from a relation (one visible point), in degrees.
pub const RELATION_MIN_HFOV_DEG: f64 = 10.0;
/// Visible points closer than this to the camera give no bearing, in metres.
const AT_CAMERA_M: f64 = 0.5;

/// Reads roads and cameras from an OSM PBF file.
///
/// `progress` is called after every block of each pass and once at the end: `bytes_total` is the
/// file size times the passes (two; three when relations' member ways need nodes no road uses,
/// known only after the second), `bytes_done` reaches it at the end, and `items` counts the
/// elements (nodes, ways, relations) read in the first pass.
pub fn read_osm(path: &Path, progress: &mut dyn FnMut(Progress)) -> Result<OsmImport, ImportError> {
    let open_error = |source| ImportError::Open { path: display(path), source };
    let meta = std::fs::metadata(path).map_err(open_error)?;
    if meta.is_dir() {
        return Err(open_error(std::io::Error::new(std::io::ErrorKind::IsADirectory, "it is a directory")));
    }
    let len = meta.len();
    let mut meter = Meter { progress, file_len: len, passes: 2, done: 0, items: 0 };
    let mut scan = Scan::new(display(path));
    for_each_block(path, &mut meter, |block| scan.block(block))?;
    let mut needed: HashSet<i64> = scan.ways.iter().flat_map(|w| w.refs.iter().copied()).collect();
    let member_ways: HashSet<i64> = scan.relations.iter().flat_map(|r| r.member_ways()).collect();
    needed.extend(scan.relations.iter().flat_map(|r| r.member_nodes()));
    let mut coords: HashMap<i64, [f64; 2]> = HashMap::with_capacity(needed.len());
    let mut way_refs: HashMap<i64, Vec<i64>> = HashMap::with_capacity(member_ways.len());
    for_each_block(path, &mut meter, |block| {
        collect_coords(block, &needed, &mut coords);
        if !member_ways.is_empty() {
            for way in block.groups().flat_map(|g| g.ways()) {
                if member_ways.contains(&way.id()) {
                    way_refs.insert(way.id(), way.refs().collect());
                }
            }
        }
        0
    })?;
    let extra: HashSet<i64> = way_refs.values().flatten().copied().filter(|r| !needed.contains(r)).collect();
    if !extra.is_empty() {
        meter.passes = 3;
        for_each_block(path, &mut meter, |block| {
            collect_coords(block, &extra, &mut coords);
            0
        })?;
    }
    let mut roads = scan.roads;
    for way in &scan.ways {
        add_road(&mut roads, way, &coords);
    }
    let mut cameras = scan.cameras;
    let views = apply_relations(&scan.relations, &scan.cam_nodes, &mut cameras.accepted, &coords, &way_refs);
    let total = meter.passes * len;
    (meter.progress)(Progress { bytes_done: total, bytes_total: total, items: meter.items });
    Ok(OsmImport { roads, cameras, views })
}

/// Progress across the passes.
struct Meter<'a> {
    progress: &'a mut dyn FnMut(Progress),
    file_len: u64,
    /// Passes known to be needed (two, or three).
    passes: u64,
    /// Bytes of the passes already finished.
    done: u64,
    items: u64,
}

impl Meter<'_> {
    fn report(&mut self, bytes_in_pass: u64) {
        let total = self.passes * self.file_len;
        let bytes_done = (self.done + bytes_in_pass).min(total);
        (self.progress)(Progress { bytes_done, bytes_total: total, items: self.items });
    }
}

/// Counts the bytes the blob reader has consumed.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Reads every data block of the file once, calling `f` (which returns the elements it counted),
/// and reports progress after each block. The first blob must be the OSM header.
fn for_each_block(
    path: &Path,
    meter: &mut Meter,
    mut f: impl FnMut(&PrimitiveBlock) -> u64,
) -> Result<(), ImportError> {
    let file = File::open(path).map_err(|source| ImportError::Open { path: display(path), source })?;
    let count = Arc::new(AtomicU64::new(0));
    let reader = BlobReader::new(Counting { inner: BufReader::new(file), count: Arc::clone(&count) });
    let mut blobs = 0usize;
    for blob in reader {
        match blob.and_then(|b| decode(&b)) {
            Ok(Decoded::Header) if blobs == 0 => {}
            Ok(_) if blobs == 0 => return Err(not_pbf(path, "the first block is not an OSM header")),
            Ok(Decoded::Data(block)) => meter.items += guarded(|| f(&block)).ok_or_else(|| damaged(path, blobs))?,
            Ok(_) => {}
            Err(e) => return Err(block_error(path, blobs, e)),
        }
        blobs += 1;
        meter.report(count.load(Ordering::Relaxed));
    }
    if blobs == 0 {
        return Err(not_pbf(path, "the file holds no blocks"));
    }
    meter.done += meter.file_len;
    Ok(())
}

enum Decoded {
    Header,
    Data(PrimitiveBlock),
    Other,
}

fn decode(blob: &osmpbf::Blob) -> osmpbf::Result<Decoded> {
    Ok(match blob.decode()? {
        BlobDecode::OsmHeader(_) => Decoded::Header,
        BlobDecode::OsmData(block) => Decoded::Data(block),
        BlobDecode::Unknown(_) => Decoded::Other,
    })
}

/// Runs `f`, turning a panic into `None`: osmpbf adds up delta-coded ids and coordinates with
/// plain arithmetic, which overflows (and panics in debug builds) on damaged data.
fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}

fn damaged(path: &Path, index: usize) -> ImportError {
    not_pbf(path, format!("block {} is damaged (its ids or coordinates overflow)", index + 1))
}

fn not_pbf(path: &Path, detail: impl Into<String>) -> ImportError {
    ImportError::NotPbf { path: display(path), detail: detail.into() }
}

fn block_error(path: &Path, index: usize, e: osmpbf::Error) -> ImportError {
    match e.kind() {
        osmpbf::ErrorKind::Io(io) if index > 0 => {
            ImportError::Read { path: display(path), detail: format!("block {}: {io}", index + 1) }
        }
        _ if index == 0 => not_pbf(path, format!("cannot decode the first block ({e})")),
        _ => not_pbf(path, format!("block {} is damaged ({e})", index + 1)),
    }
}

/// A highway way kept from the first pass until its nodes' coordinates are known.
struct PendingWay {
    id: i64,
    name: Option<String>,
    class: String,
    oneway: Oneway,
    refs: Vec<i64>,
}

/// First pass: highway ways, camera nodes, surveillance relations, and what was refused so far.
struct Scan {
    ways: Vec<PendingWay>,
    roads: ImportBatch<RoadWay>,
    cameras: ImportBatch<CameraInput>,
    /// The accepted cameras by OSM node id.
    cam_nodes: HashMap<i64, CamNode>,
    relations: Vec<SurveillanceRelation>,
}

/// What a relation needs to know of a camera node.
#[derive(Debug, Clone, Copy)]
struct CamNode {
    /// Index into the accepted cameras.
    index: usize,
    /// The node has its own `camera:direction` (or `direction`), which wins over any relation.
    directed: bool,
    /// Panning or revolving: all round whatever a relation says.
    all_round: bool,
}

/// What a member of a surveillance relation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Camera,
    Visible,
    Extent,
    Hidden,
}

/// A member: its role, whether it is a way (else a node) and its id.
#[derive(Debug, Clone, Copy)]
struct Member {
    role: Role,
    way: bool,
    id: i64,
}

/// A relation tagged `type=surveillance`, with its node and way members of known roles.
#[derive(Debug, Clone)]
struct SurveillanceRelation {
    id: i64,
    members: Vec<Member>,
}

impl SurveillanceRelation {
    fn member_ways(&self) -> impl Iterator<Item = i64> + '_ {
        self.members.iter().filter(|m| m.way && m.role != Role::Camera).map(|m| m.id)
    }

    fn member_nodes(&self) -> impl Iterator<Item = i64> + '_ {
        self.members.iter().filter(|m| !m.way && m.role != Role::Camera).map(|m| m.id)
    }
}

impl Scan {
    fn new(source: String) -> Scan {
        Scan {
            ways: Vec::new(),
            roads: ImportBatch::new(source.clone()),
            cameras: ImportBatch::new(source),
            cam_nodes: HashMap::new(),
            relations: Vec::new(),
        }
    }

    /// Takes what it needs from one block; returns the number of elements in it.
    fn block(&mut self, block: &PrimitiveBlock) -> u64 {
        let mut n = 0;
        block.for_each_element(|element| {
            n += 1;
            match element {
                Element::Node(node) => self.node(node.id(), node.lon(), node.lat(), node.tags()),
                Element::DenseNode(node) => self.node(node.id(), node.lon(), node.lat(), node.tags()),
                Element::Way(way) => self.way(&way),
                Element::Relation(rel) => self.relation(&rel),
            }
        });
        n
    }

    fn node<'a>(&mut self, id: i64, lon: f64, lat: f64, tags: impl Iterator<Item = (&'a str, &'a str)>) {
        let tags: Vec<(&str, &str)> = tags.collect();
        if tag(&tags, "man_made") != Some("surveillance") {
            return;
        }
        match check_lon(lon).and_then(|_| check_lat(lat)) {
            Ok(_) => {
                let c = camera(id, lon, lat, &tags);
                let directed = direction_tag(&tags).is_some();
                let cam = CamNode { index: self.cameras.accepted.len(), directed, all_round: all_round(&tags) };
                self.cam_nodes.insert(id, cam);
                self.cameras.accepted.push(c);
            }
            Err(e) => self.cameras.reject(format!("osm node {id}"), format!("bad position: {e}")),
        }
    }

    /// Keeps a `type=surveillance` relation's node and way members whose role is camera, visible,
    /// extent or hidden (other roles and relation members are not used).
    fn relation(&mut self, rel: &osmpbf::Relation) {
        if !rel.tags().any(|(k, v)| k == "type" && v.trim() == "surveillance") {
            return;
        }
        let members = rel
            .members()
            .filter_map(|m| {
                let role = match m.role().ok()?.trim() {
                    "camera" => Role::Camera,
                    "visible" => Role::Visible,
                    "extent" => Role::Extent,
                    "hidden" => Role::Hidden,
                    _ => return None,
                };
                let way = match m.member_type {
                    osmpbf::RelMemberType::Node => false,
                    osmpbf::RelMemberType::Way => true,
                    osmpbf::RelMemberType::Relation => return None,
                };
                Some(Member { role, way, id: m.member_id })
            })
            .collect();
        self.relations.push(SurveillanceRelation { id: rel.id(), members });
    }

    fn way(&mut self, way: &osmpbf::Way) {
        let tags: Vec<(&str, &str)> = way.tags().collect();
        let Some(class) = tag(&tags, "highway") else { return };
        if NOT_IN_USE.contains(&class) {
            self.roads.reject(format!("osm way {}", way.id()), format!("highway={class} is not a road in use"));
            return;
        }
        let name = tag(&tags, "name").or_else(|| tag(&tags, "ref")).map(str::to_owned);
        let oneway = oneway(&tags, class);
        self.ways.push(PendingWay { id: way.id(), name, class: class.to_owned(), oneway, refs: way.refs().collect() });
    }
}

/// A tag's value, trimmed; `None` when absent or empty.
fn tag<'a>(tags: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| *k == key).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
}

/// Travel direction from `oneway`; when it is absent (or not one of yes/true/1, -1/reverse,
/// no/false/0), `junction=roundabout`/`circular` and `highway=motorway`/`motorway_link` imply
/// forward, everything else both ways.
fn oneway(tags: &[(&str, &str)], class: &str) -> Oneway {
    if let Some(explicit) = tag(tags, "oneway").and_then(|v| Oneway::parse(&v.to_ascii_lowercase())) {
        return explicit;
    }
    let roundabout = matches!(tag(tags, "junction"), Some("roundabout" | "circular"));
    if roundabout || matches!(class, "motorway" | "motorway_link") { Oneway::Forward } else { Oneway::No }
}

/// Second pass: coordinates of the nodes the highway ways use.
fn collect_coords(block: &PrimitiveBlock, needed: &HashSet<i64>, coords: &mut HashMap<i64, [f64; 2]>) {
    let mut keep = |id: i64, lon: f64, lat: f64| {
        if needed.contains(&id) && check_lon(lon).is_ok() && check_lat(lat).is_ok() {
            coords.insert(id, [lon, lat]);
        }
    };
    for group in block.groups() {
        group.nodes().for_each(|n| keep(n.id(), n.lon(), n.lat()));
        group.dense_nodes().for_each(|n| keep(n.id(), n.lon(), n.lat()));
    }
}

/// Turns a way into roads: the whole way when all its nodes are in the extract, else each run of
/// at least two consecutive present nodes (`#1`, `#2`, … when there are several). A way with no
/// such run is rejected.
fn add_road(roads: &mut ImportBatch<RoadWay>, way: &PendingWay, coords: &HashMap<i64, [f64; 2]>) {
    let runs = present_runs(&way.refs, coords);
    if runs.is_empty() {
        let present = way.refs.iter().filter(|r| coords.contains_key(r)).count();
        let reason =
            format!("{present} of {} nodes present in the extract; a road needs two consecutive ones", way.refs.len());
        roads.reject(format!("osm way {}", way.id), reason);
        return;
    }
    let split = runs.len() > 1;
    for (k, run) in runs.into_iter().enumerate() {
        let id = if split { format!("osm:way:{}#{}", way.id, k + 1) } else { format!("osm:way:{}", way.id) };
        roads.accepted.push(RoadWay {
            id,
            name: way.name.clone(),
            class: way.class.clone(),
            oneway: way.oneway,
            coords: run.iter().filter_map(|r| coords.get(r).copied()).collect(),
            node_ids: Some(run.to_vec()),
        });
    }
}

/// Maximal runs of consecutive node ids whose coordinates are known, of length two or more.
fn present_runs<'a>(refs: &'a [i64], coords: &HashMap<i64, [f64; 2]>) -> Vec<&'a [i64]> {
    refs.split(|r| !coords.contains_key(r)).filter(|run| run.len() >= 2).collect()
}

/// A node's own direction: `camera:direction` (or `direction`), when it parses.
fn direction_tag(tags: &[(&str, &str)]) -> Option<(f64, Option<f64>)> {
    tag(tags, "camera:direction").or_else(|| tag(tags, "direction")).and_then(direction)
}

/// A camera from a `man_made=surveillance` node's tags.
fn camera(id: i64, lon: f64, lat: f64, tags: &[(&str, &str)]) -> CameraInput {
    let (bearing, range) = match direction_tag(tags) {
        Some((b, r)) => (Some(b), r),
        None => (None, None),
    };
    let (width_px, height_px) = tag(tags, "resolution").and_then(parse_resolution).unwrap_or((1920, 1080));
    CameraInput {
        id: format!("osm:node:{id}"),
        name: tag(tags, "name").map_or_else(|| format!("OSM surveillance node {id}"), str::to_owned),
        lon,
        lat,
        bearing_deg: bearing.unwrap_or(0.0),
        hfov_deg: range.unwrap_or_else(|| hfov(tags, bearing.is_some())),
        width_px,
        height_px,
        mounting_height_m: tag(tags, "height").and_then(height_m).unwrap_or(OSM_MOUNTING_HEIGHT_M),
        kind: kind(tags),
        owner: owner(tags),
        grid_cell: None,
    }
}

/// Field of view from `camera:type` (`camera:angle` is the tilt, not the view): panning (or
/// `revolving=yes`) 360; dome 90 with a direction, 360 without; fixed or unknown type 60 with a
/// direction and 0 (counts, covers nothing) without.
fn hfov(tags: &[(&str, &str)], has_direction: bool) -> f64 {
    if all_round(tags) {
        return 360.0;
    }
    let camera_type = tag(tags, "camera:type").map(str::to_ascii_lowercase);
    match (camera_type.as_deref(), has_direction) {
        (Some("dome"), true) => DOME_HFOV_DEG,
        (Some("dome"), false) => 360.0,
        (_, true) => FIXED_HFOV_DEG,
        (_, false) => 0.0,
    }
}

/// `camera:type=panning` or `revolving=yes`: the camera turns, so it sees all round.
fn all_round(tags: &[(&str, &str)]) -> bool {
    tag(tags, "camera:type").is_some_and(|t| t.eq_ignore_ascii_case("panning")) || tag(tags, "revolving") == Some("yes")
}

/// The 16 compass points, clockwise from north, 22.5° apart.
const COMPASS: [&str; 16] =
    ["N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW"];

/// A single bearing: degrees (`45`, `45.5`, normalised to 0..360) or a compass point (`NE`).
pub fn bearing(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Ok(deg) = text.parse::<f64>() {
        return deg.is_finite().then(|| deg.rem_euclid(360.0));
    }
    let upper = text.to_ascii_uppercase();
    COMPASS.iter().position(|p| *p == upper).map(|i| i as f64 * 22.5)
}

/// A `camera:direction` value: one bearing, or a clockwise range `from-to` (`90-270`, `E-W`),
/// which gives its middle and its width as field of view (`0-360` is all round). Of several
/// values separated by `;` the first is used. Returns (bearing, field of view if a range).
pub fn direction(text: &str) -> Option<(f64, Option<f64>)> {
    let first = text.split(';').next()?.trim();
    if let Some(b) = bearing(first) {
        return Some((b, None));
    }
    let (from, to) = first.split_once('-')?;
    let (from, to) = (bearing(from)?, bearing(to)?);
    let mut width = (to - from).rem_euclid(360.0);
    if width == 0.0 || to - from >= 359.0 {
        width = 360.0;
    }
    Some(((from + width / 2.0).rem_euclid(360.0), Some(width)))
}

/// A `height` tag in metres: `4`, `4.5`, `4 m`, `4,5m`; positive and under 1000.
fn height_m(text: &str) -> Option<f64> {
    let number = text.trim().trim_end_matches('m').trim().replace(',', ".");
    number.parse::<f64>().ok().filter(|h| h.is_finite() && *h > 0.0 && *h < 1000.0)
}

/// `surveillance:type=ALPR` (or `ANPR`) is a checkpoint, `surveillance=indoor` a shop camera,
/// anything else a street camera.
fn kind(tags: &[(&str, &str)]) -> CameraKind {
    let plate_reader = tag(tags, "surveillance:type")
        .is_some_and(|t| t.eq_ignore_ascii_case("alpr") || t.eq_ignore_ascii_case("anpr"));
    if plate_reader {
        CameraKind::Checkpoint
    } else if tag(tags, "surveillance") == Some("indoor") {
        CameraKind::Shop
    } else {
        CameraKind::Street
    }
}

/// Words in an `operator` tag that mark a public (police or city) camera.
const PUBLIC_OPERATORS: [&str; 12] = [
    "police",
    "poliisi",
    "polis",
    "polizei",
    "city",
    "kaupunki",
    "stad",
    "municipal",
    "kunta",
    "government",
    "公安",
    "政府",
];

/// Public when `surveillance=public` or the operator is a police force or a city; otherwise the
/// camera is taken to belong to an enterprise.
fn owner(tags: &[(&str, &str)]) -> Owner {
    let operator = tag(tags, "operator").map(str::to_lowercase).unwrap_or_default();
    if tag(tags, "surveillance") == Some("public") || PUBLIC_OPERATORS.iter().any(|w| operator.contains(w)) {
        Owner::Public
    } else {
        Owner::Enterprise
    }
}

/// Gives the cameras of `type=surveillance` relations the view their visible and extent members
/// outline, as seen from the camera: the bearing is the bisector of the smallest angle holding
/// every such point, the field of view that angle plus [`RELATION_MARGIN_DEG`] on each side (at
/// least [`RELATION_MIN_HFOV_DEG`], at most 360°; 360° when the camera stands inside a closed
/// visible or extent way). Nodes of hidden members are left out. A camera with its own direction
/// keeps it, one that turns (panning, revolving) stays all round, and of several relations naming
/// a camera the first in the file gives its view. Returns what was done and what could not be.
fn apply_relations(
    relations: &[SurveillanceRelation],
    cam_nodes: &HashMap<i64, CamNode>,
    cameras: &mut [CameraInput],
    coords: &HashMap<i64, [f64; 2]>,
    way_refs: &HashMap<i64, Vec<i64>>,
) -> ViewReport {
    let mut report = ViewReport::default();
    let mut given: HashMap<usize, i64> = HashMap::new();
    for rel in relations {
        let at = format!("osm relation {}", rel.id);
        let mut problem = |reason: String| report.problems.push(Rejected { at: at.clone(), reason });
        let cams: Vec<&Member> = rel.members.iter().filter(|m| m.role == Role::Camera).collect();
        if cams.iter().all(|m| m.way) {
            problem("no camera member (a node with role camera); not used".into());
            continue;
        }
        let nodes_of = |m: &Member| -> Result<Vec<i64>, String> {
            if m.way { way_refs.get(&m.id).cloned().ok_or_else(|| format!("way {}", m.id)) } else { Ok(vec![m.id]) }
        };
        let mut missing: Vec<String> = Vec::new();
        let mut hidden: HashSet<i64> = HashSet::new();
        for m in rel.members.iter().filter(|m| m.role == Role::Hidden) {
            match nodes_of(m) {
                Ok(ids) => hidden.extend(ids),
                Err(w) => missing.push(w),
            }
        }
        let (mut points, mut areas): (Vec<[f64; 2]>, Vec<Vec<[f64; 2]>>) = (Vec::new(), Vec::new());
        for m in rel.members.iter().filter(|m| matches!(m.role, Role::Visible | Role::Extent)) {
            let ids = match nodes_of(m) {
                Ok(ids) => ids,
                Err(w) => {
                    missing.push(w);
                    continue;
                }
            };
            let closed = m.way && ids.len() >= 4 && ids.first() == ids.last();
            if closed && ids.iter().all(|r| coords.contains_key(r)) {
                areas.push(ids.iter().map(|r| coords[r]).collect());
            }
            for r in ids.iter().filter(|r| !hidden.contains(*r)) {
                match coords.get(r) {
                    Some(c) => points.push(*c),
                    None => missing.push(format!("node {r}")),
                }
            }
        }
        let mut seen = HashSet::new();
        missing.retain(|w| seen.insert(w.clone()));
        if !missing.is_empty() {
            let used = if points.is_empty() { "" } else { "; the view is taken from the others" };
            let n = missing.len();
            let list = missing.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
            let more = if n > 5 { format!(" and {} more", n - 5) } else { String::new() };
            problem(format!("members or member nodes missing from the extract: {n} ({list}{more}){used}"));
        }
        for m in cams.iter().filter(|m| !m.way) {
            let cam_id = format!("osm:node:{}", m.id);
            let Some(node) = cam_nodes.get(&m.id) else {
                problem(format!("camera node {} is not a man_made=surveillance node of the extract", m.id));
                continue;
            };
            if node.directed {
                problem(format!("camera {cam_id} keeps its own camera:direction"));
                continue;
            }
            if let Some(first) = given.get(&node.index) {
                problem(format!("camera {cam_id} already has its view from osm relation {first}"));
                continue;
            }
            let cam = &mut cameras[node.index];
            let Some((bearing, hfov)) = view_from(cam.lon, cam.lat, &points, &areas) else {
                let any = rel.members.iter().any(|m| matches!(m.role, Role::Visible | Role::Extent));
                let why = if !any {
                    "the relation has no visible or extent member"
                } else if points.is_empty() {
                    "none of its visible or extent members is in the extract"
                } else {
                    "its visible and extent members are all at the camera's position"
                };
                problem(format!("camera {cam_id}: {why}; no view taken"));
                continue;
            };
            cam.bearing_deg = bearing;
            cam.hfov_deg = if node.all_round { 360.0 } else { hfov };
            given.insert(node.index, rel.id);
            let (bearing_deg, hfov_deg) = (cam.bearing_deg, cam.hfov_deg);
            report.from_relations.push(RelationView { camera_id: cam_id, relation_id: rel.id, bearing_deg, hfov_deg });
        }
    }
    report.without_direction = cameras.iter().filter(|c| c.hfov_deg == 0.0).map(|c| c.id.clone()).collect();
    report
}

/// The view from `[lon, lat]` of `points` (and of the closed `areas`, whose vertices are among
/// the points): (bearing, field of view) in degrees, or `None` when no point is away from the
/// camera.
pub(crate) fn view_from(lon: f64, lat: f64, points: &[[f64; 2]], areas: &[Vec<[f64; 2]>]) -> Option<(f64, f64)> {
    let proj = LocalProj::new(lon, lat);
    let xy: Vec<Xy> = points.iter().map(|p| proj.fwd_pt(*p)).filter(|p| p.len() >= AT_CAMERA_M).collect();
    let mut bearings: Vec<f64> = xy.iter().map(|p| p.bearing()).collect();
    let (start, width) = angular_span(&mut bearings)?;
    let bearing = (start + width / 2.0).rem_euclid(360.0);
    let inside = areas
        .iter()
        .any(|a| point_in_polygon(Xy::new(0.0, 0.0), &a.iter().map(|p| proj.fwd_pt(*p)).collect::<Vec<_>>()));
    if inside {
        return Some((bearing, 360.0));
    }
    Some((bearing, (width + 2.0 * RELATION_MARGIN_DEG).clamp(RELATION_MIN_HFOV_DEG, 360.0)))
}

/// The smallest clockwise arc holding every bearing: (its start, its width), degrees. `None`
/// without bearings.
pub(crate) fn angular_span(bearings: &mut [f64]) -> Option<(f64, f64)> {
    bearings.sort_by(f64::total_cmp);
    let (first, last) = (*bearings.first()?, *bearings.last()?);
    // The widest gap between neighbours (the wrap-around one included) is what the view leaves out.
    let (mut gap, mut start) = (first + 360.0 - last, first);
    for w in bearings.windows(2) {
        if w[1] - w[0] > gap {
            (gap, start) = (w[1] - w[0], w[1]);
        }
    }
    Some((start, 360.0 - gap))
}

#[cfg(test)]
#[path = "osm_tests.rs"]
mod tests;
