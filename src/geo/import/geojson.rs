//! GeoJSON FeatureCollections of roads, grid cells, unit entrances and surveyed cameras.
//!
//! Every feature needs an id, unique in its file: the `id` property, else the feature's own `id`.
//! A feature is named in rejections as `<path>: feature <index> (id "<id>")`, the index counting
//! from 0 in the `features` array. Unknown properties are ignored.

use std::collections::HashMap;
use std::path::Path;

use ::geojson::feature::Id;
use ::geojson::{Feature, GeometryValue, JsonValue, Position};

use super::{ImportError, camera_from_fields, check_lat, check_lon, display, read_text};
use crate::geo::input::{CameraInput, CellInput, EntranceInput, ImportBatch, Oneway, Rejected, RoadWay};

/// Reads roads: LineString features (MultiLineString: one road per part, ids suffixed `#1`,
/// `#2`, …) with properties `id`, `highway` (or `class`, required), `name`, `oneway` (true/false,
/// or `"yes"`, `"no"`, `"-1"`, …; both ways when absent).
pub fn read_roads_geojson(path: &Path) -> Result<ImportBatch<RoadWay>, ImportError> {
    let mut loaded = load(path)?;
    let mut accepted = Vec::new();
    for item in std::mem::take(&mut loaded.items) {
        match roads(&item) {
            Ok(parts) => accepted.extend(parts),
            Err(reason) => loaded.reject(item.index, item.at, reason),
        }
    }
    Ok(loaded.finish(path, accepted))
}

/// Reads grid cells: Polygon features (MultiPolygon: the part with the largest outer ring) with
/// properties `id`, `level` (1, 2 or 3, required), `name` (the id when absent), `parent`.
///
/// A parent that is not in the file is accepted (the caller checks it against the registry); a
/// parent in the file must be one level up, and a cell whose parent was rejected is rejected too.
pub fn read_cells_geojson(path: &Path) -> Result<ImportBatch<CellInput>, ImportError> {
    let mut loaded = load(path)?;
    let mut cells = Vec::new();
    let mut failed = HashMap::new();
    for item in std::mem::take(&mut loaded.items) {
        match cell(&item) {
            Ok(c) => cells.push((item.index, item.at, c)),
            Err(reason) => {
                failed.insert(item.id, item.index);
                loaded.reject(item.index, item.at, reason);
            }
        }
    }
    check_parents(&mut loaded, &mut cells, &mut failed);
    Ok(loaded.finish(path, cells.into_iter().map(|(_, _, c)| c).collect()))
}

/// Reads unit entrances: Point features with properties `id`, `name` (the unit's, required),
/// `road` and `grid_cell` (optional).
pub fn read_entrances_geojson(path: &Path) -> Result<ImportBatch<EntranceInput>, ImportError> {
    read_points(path, |item| {
        let [lon, lat] = point(&item.feature)?;
        let name = text(&item.feature, "name")?.ok_or("name: missing; an entrance needs its unit's name")?;
        let road = text(&item.feature, "road")?;
        let grid_cell = text(&item.feature, "grid_cell")?;
        Ok(EntranceInput { id: item.id.clone(), name, road, lon, lat, grid_cell })
    })
}

/// Reads surveyed cameras: Point features with properties `id`, `name`, `bearing_deg` (required
/// unless `hfov_deg` is 360 or 0), `hfov_deg` (90), `resolution` `"WxH"` or `width_px` and
/// `height_px` (1920×1080), `mounting_height_m` (6), `kind` (street), `owner` (public),
/// `grid_cell`. Defaults in brackets.
pub fn read_cameras_geojson(path: &Path) -> Result<ImportBatch<CameraInput>, ImportError> {
    read_points(path, |item| {
        let [lon, lat] = point(&item.feature)?;
        camera_from_fields(item.id.clone(), lon, lat, &|key| text(&item.feature, key))
    })
}

/// One feature with an id not seen before in its file.
struct Item {
    index: usize,
    at: String,
    id: String,
    feature: Feature,
}

/// The features of a file worth building, and the rejections so far (by feature index).
struct Loaded {
    items: Vec<Item>,
    rejected: Vec<(usize, Rejected)>,
}

impl Loaded {
    fn reject(&mut self, index: usize, at: String, reason: impl Into<String>) {
        self.rejected.push((index, Rejected { at, reason: reason.into() }));
    }

    /// The batch, rejections in feature order.
    fn finish<T>(mut self, path: &Path, accepted: Vec<T>) -> ImportBatch<T> {
        self.rejected.sort_by_key(|(index, _)| *index);
        let mut batch = ImportBatch::new(display(path));
        batch.accepted = accepted;
        batch.rejected = self.rejected.into_iter().map(|(_, r)| r).collect();
        batch
    }
}

fn read_points<T>(path: &Path, build: impl Fn(&Item) -> Result<T, String>) -> Result<ImportBatch<T>, ImportError> {
    let mut loaded = load(path)?;
    let mut accepted = Vec::new();
    for item in std::mem::take(&mut loaded.items) {
        match build(&item) {
            Ok(t) => accepted.push(t),
            Err(reason) => loaded.reject(item.index, item.at, reason),
        }
    }
    Ok(loaded.finish(path, accepted))
}

/// Reads the file's features, rejecting those that are not Features, have no id or repeat one.
fn load(path: &Path) -> Result<Loaded, ImportError> {
    let not_geojson = |detail: String| ImportError::NotGeoJson { path: display(path), detail };
    let value: JsonValue =
        serde_json::from_str(&read_text(path)?).map_err(|e| not_geojson(format!("not JSON ({e})")))?;
    let features = features(value).map_err(not_geojson)?;
    let mut loaded = Loaded { items: Vec::new(), rejected: Vec::new() };
    let mut first: HashMap<String, usize> = HashMap::new();
    for (index, value) in features.into_iter().enumerate() {
        let base = format!("{}: feature {index}", display(path));
        let parsed = serde_json::from_value::<Feature>(value).map_err(|e| format!("not a GeoJSON Feature ({e})"));
        let (feature, id) = match parsed.and_then(|f| feature_id(&f).map(|id| (f, id))) {
            Ok(ok) => ok,
            Err(reason) => {
                loaded.reject(index, base, reason);
                continue;
            }
        };
        let at = format!("{base} (id {id:?})");
        if let Some(earlier) = first.get(&id) {
            loaded.reject(index, at, format!("duplicate id, first at feature {earlier}"));
            continue;
        }
        first.insert(id.clone(), index);
        loaded.items.push(Item { index, at, id, feature });
    }
    Ok(loaded)
}

/// The `features` array of a FeatureCollection.
fn features(value: JsonValue) -> Result<Vec<JsonValue>, String> {
    let JsonValue::Object(mut object) = value else {
        return Err("the file is JSON but not an object".into());
    };
    match object.get("type").and_then(JsonValue::as_str) {
        Some("FeatureCollection") => {}
        Some("Feature") => return Err("it is a single Feature; wrap it in a FeatureCollection".into()),
        Some(other) => return Err(format!("its type is {other:?}")),
        None => return Err("it has no \"type\" member".into()),
    }
    match object.remove("features") {
        Some(JsonValue::Array(features)) => Ok(features),
        _ => Err("its \"features\" member is missing or not an array".into()),
    }
}

/// The `id` property, else the feature's `id`; text or a number, not empty.
fn feature_id(feature: &Feature) -> Result<String, String> {
    let own = match &feature.id {
        Some(Id::String(s)) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Some(Id::Number(n)) => Some(n.to_string()),
        None => None,
    };
    text(feature, "id")?.or(own).ok_or_else(|| "no id: give an \"id\" property or a feature id".into())
}

/// A property as text: strings trimmed, numbers and booleans written out; `None` when absent,
/// null or empty.
fn text(feature: &Feature, key: &str) -> Result<Option<String>, String> {
    match feature.properties.as_ref().and_then(|p| p.get(key)) {
        None | Some(JsonValue::Null) => Ok(None),
        Some(JsonValue::String(s)) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
        Some(JsonValue::Number(n)) => Ok(Some(n.to_string())),
        Some(JsonValue::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(format!("{key}: expected text or a number, found a list or an object")),
    }
}

/// A position as `[lon, lat]`, checked.
fn lon_lat(position: &Position) -> Result<[f64; 2], String> {
    match position.as_slice() {
        [lon, lat, ..] => Ok([check_lon(*lon)?, check_lat(*lat)?]),
        _ => Err("a position needs a longitude and a latitude".into()),
    }
}

/// A line's positions, each checked, at least two.
fn line(positions: &[Position]) -> Result<Vec<[f64; 2]>, String> {
    let coords = positions
        .iter()
        .enumerate()
        .map(|(i, p)| lon_lat(p).map_err(|e| format!("position {i}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if coords.len() < 2 {
        return Err(format!("a road needs at least 2 positions, this one has {}", coords.len()));
    }
    Ok(coords)
}

fn geometry(feature: &Feature) -> Result<&GeometryValue, String> {
    feature.geometry.as_ref().map(|g| &g.value).ok_or_else(|| "the feature has no geometry".into())
}

fn point(feature: &Feature) -> Result<[f64; 2], String> {
    match geometry(feature)? {
        GeometryValue::Point { coordinates } => lon_lat(coordinates),
        other => Err(format!("the geometry is a {}, expected a Point", other.type_name())),
    }
}

/// The roads of one feature: one per line.
fn roads(item: &Item) -> Result<Vec<RoadWay>, String> {
    let f = &item.feature;
    let lines: Vec<(String, Vec<[f64; 2]>)> = match geometry(f)? {
        GeometryValue::LineString { coordinates } => vec![(item.id.clone(), line(coordinates)?)],
        GeometryValue::MultiLineString { coordinates } if coordinates.is_empty() => {
            return Err("the MultiLineString has no lines".into());
        }
        GeometryValue::MultiLineString { coordinates } => coordinates
            .iter()
            .enumerate()
            .map(|(k, c)| Ok((format!("{}#{}", item.id, k + 1), line(c).map_err(|e| format!("line {}: {e}", k + 1))?)))
            .collect::<Result<_, String>>()?,
        other => {
            return Err(format!("the geometry is a {}, expected a LineString or MultiLineString", other.type_name()));
        }
    };
    let class = text(f, "highway")?.or(text(f, "class")?).ok_or("highway: missing; give highway (or class)")?;
    let (name, oneway) = (text(f, "name")?, oneway(f)?);
    let road = |(id, coords)| RoadWay { id, name: name.clone(), class: class.clone(), oneway, coords, node_ids: None };
    Ok(lines.into_iter().map(road).collect())
}

/// The `oneway` property: a boolean, or one of the spellings of [`Oneway::parse`].
fn oneway(feature: &Feature) -> Result<Oneway, String> {
    let Some(value) = text(feature, "oneway")? else { return Ok(Oneway::No) };
    Oneway::parse(&value.to_ascii_lowercase()).ok_or_else(|| {
        format!("oneway: {value:?} is not one of yes, no, -1 (or true, false, 1, 0, forward, backward, reverse)")
    })
}

/// One grid cell, without the parent check.
fn cell(item: &Item) -> Result<CellInput, String> {
    let f = &item.feature;
    let polygon = match geometry(f)? {
        GeometryValue::Polygon { coordinates } => outer_ring(coordinates)?,
        GeometryValue::MultiPolygon { coordinates } => largest(coordinates)?,
        other => return Err(format!("the geometry is a {}, expected a Polygon or MultiPolygon", other.type_name())),
    };
    let level = level(f)?;
    let parent = text(f, "parent")?;
    match &parent {
        Some(_) if level == 1 => return Err("parent: a level 1 cell has no parent".into()),
        Some(p) if *p == item.id => return Err("parent: a cell cannot be its own parent".into()),
        _ => {}
    }
    let name = text(f, "name")?.unwrap_or_else(|| item.id.clone());
    Ok(CellInput { id: item.id.clone(), name, level, parent, polygon })
}

fn level(feature: &Feature) -> Result<u8, String> {
    let value = text(feature, "level")?.ok_or("level: missing; give 1, 2 or 3")?;
    match value.as_str() {
        "1" => Ok(1),
        "2" => Ok(2),
        "3" => Ok(3),
        _ => Err(format!("level: {value:?} is not 1, 2 or 3")),
    }
}

/// The outer ring of a polygon: checked positions, at least three distinct corners.
fn outer_ring(rings: &[Vec<Position>]) -> Result<Vec<[f64; 2]>, String> {
    let ring = rings.first().ok_or("the polygon has no rings")?;
    let coords = ring
        .iter()
        .enumerate()
        .map(|(i, p)| lon_lat(p).map_err(|e| format!("position {i}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let open = match coords.as_slice() {
        [first, .., last] if first == last => &coords[..coords.len() - 1],
        _ => &coords[..],
    };
    if open.len() < 3 {
        return Err(format!("the outer ring has {} corners; a cell needs at least 3", open.len()));
    }
    Ok(coords)
}

/// The outer ring of the part with the largest area (in square degrees, enough to compare).
fn largest(polygons: &[Vec<Vec<Position>>]) -> Result<Vec<[f64; 2]>, String> {
    let mut best: Option<(f64, Vec<[f64; 2]>)> = None;
    for (k, polygon) in polygons.iter().enumerate() {
        let ring = outer_ring(polygon).map_err(|e| format!("polygon {}: {e}", k + 1))?;
        let area = shoelace(&ring).abs();
        if best.as_ref().is_none_or(|(a, _)| area > *a) {
            best = Some((area, ring));
        }
    }
    best.map(|(_, ring)| ring).ok_or_else(|| "the MultiPolygon has no polygons".into())
}

fn shoelace(ring: &[[f64; 2]]) -> f64 {
    let next = ring.iter().cycle().skip(1);
    ring.iter().zip(next).map(|(a, b)| a[0] * b[1] - b[0] * a[1]).sum::<f64>() / 2.0
}

/// Rejects cells whose parent in the file is not one level up, or was rejected; repeats until
/// no more are rejected, so a rejection reaches the grandchildren.
fn check_parents(
    loaded: &mut Loaded,
    cells: &mut Vec<(usize, String, CellInput)>,
    failed: &mut HashMap<String, usize>,
) {
    loop {
        let levels: HashMap<String, (u8, usize)> =
            cells.iter().map(|(i, _, c)| (c.id.clone(), (c.level, *i))).collect();
        let before = cells.len();
        cells.retain(|(index, at, cell)| match parent_problem(cell, &levels, failed) {
            Some(reason) => {
                loaded.rejected.push((*index, Rejected { at: at.clone(), reason }));
                false
            }
            None => true,
        });
        if cells.len() == before {
            return;
        }
        let kept: std::collections::HashSet<&str> = cells.iter().map(|(_, _, c)| c.id.as_str()).collect();
        for (id, (_, index)) in &levels {
            if !kept.contains(id.as_str()) {
                failed.insert(id.clone(), *index);
            }
        }
    }
}

fn parent_problem(
    cell: &CellInput,
    levels: &HashMap<String, (u8, usize)>,
    failed: &HashMap<String, usize>,
) -> Option<String> {
    let parent = cell.parent.as_ref()?;
    if let Some(index) = failed.get(parent) {
        return Some(format!("parent: {parent:?} was rejected (feature {index})"));
    }
    let (level, index) = levels.get(parent)?;
    (*level + 1 != cell.level).then(|| {
        format!(
            "parent: {parent:?} is a level {level} cell (feature {index}); a level {} cell needs a level {} parent",
            cell.level,
            cell.level - 1
        )
    })
}

#[cfg(test)]
#[path = "geojson_tests.rs"]
mod tests;
