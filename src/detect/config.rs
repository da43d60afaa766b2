//! `[detect]` and `[[motion_zone]]` in site.toml: detection's own configuration.

use std::path::{Path, PathBuf};

use crate::config::{ConfigError, Fields, Loc, Source, tables_of};

/// `[detect]` in site.toml: motion at street cameras, plate reading at checkpoint cameras.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectConfig {
    /// ONNX Runtime shared library (default: where scripts/setup.sh puts it; `ORT_DYLIB_PATH` wins).
    pub onnxruntime: Option<PathBuf>,
    pub motion: bool,
    pub plates: bool,
    /// Threads reading plates (each with its own sessions).
    pub plate_threads: usize,
    /// Where plate crops and context pictures are written.
    pub media_dir: PathBuf,
    pub motion_threshold: f32,
    pub motion_height: u32,
    pub plate_det_width: u32,
}

/// `[[motion_zone]]` in site.toml: a named zone (or a mask to ignore) on a camera's picture, in
/// picture-relative coordinates 0..1 (x right, y down).
#[derive(Debug, Clone, PartialEq)]
pub struct MotionZoneConfig {
    pub camera: String,
    pub name: String,
    /// Ignore motion here instead of naming it.
    pub mask: bool,
    pub points: Vec<[f64; 2]>,
}

pub fn read_detect(src: &Source, dir: &Path, errs: &mut Vec<ConfigError>) -> Option<DetectConfig> {
    let item = src.doc.get("detect")?;
    let at = Loc { file: src.path.clone(), line: src.line(item.span()) };
    let Some(table) = item.as_table_like() else {
        errs.push(ConfigError::at(&at, "detect", "expected a table [detect]"));
        return None;
    };
    let mut f = Fields::new("detect", at, src, table);
    let enabled = if f.has("enabled") { f.bool("enabled").unwrap_or(true) } else { true };
    let onnxruntime = f.str("onnxruntime").map(|p| dir.join(p));
    let motion = if f.has("motion") { f.bool("motion").unwrap_or(true) } else { true };
    let plates = if f.has("plates") { f.bool("plates").unwrap_or(true) } else { true };
    let plate_threads = if f.has("plate_threads") { f.int("plate_threads", 1..=64).unwrap_or(1) as usize } else { 1 };
    let media_dir = f.str("media_dir").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("data/media"));
    let motion_threshold = if f.has("motion_threshold") {
        f.num("motion_threshold", |v| {
            if (1.0..=254.0).contains(&v) { Ok(()) } else { Err(format!("{v} is out of range [1, 254]")) }
        })
        .unwrap_or(25.0) as f32
    } else {
        25.0
    };
    let motion_height =
        if f.has("motion_height") { f.int("motion_height", 32..=1080).unwrap_or(120) as u32 } else { 120 };
    let plate_det_width =
        if f.has("plate_det_width") { f.int("plate_det_width", 160..=3840).unwrap_or(640) as u32 } else { 640 };
    let ok = f.errs.is_empty();
    errs.extend(f.finish());
    (ok && enabled).then_some(DetectConfig {
        onnxruntime,
        motion,
        plates,
        plate_threads,
        media_dir,
        motion_threshold,
        motion_height,
        plate_det_width,
    })
}

pub fn read_motion_zones(src: &Source, errs: &mut Vec<ConfigError>) -> Vec<MotionZoneConfig> {
    let mut out = Vec::new();
    for (table, at) in tables_of(src, "motion_zone", errs) {
        let mut f = Fields::new(format!("motion_zone[{}]", out.len() + 1), at, src, table);
        let camera = f.req_str("camera", "the camera's id");
        let name = f.req_str("name", "the zone's name (motion events and [[armed_zone]] use it)");
        let mask = match f.str("kind").as_deref() {
            None | Some("zone") => false,
            Some("mask") => true,
            Some(k) => {
                f.error("kind", format!("{k:?}: one of \"zone\" (named area) or \"mask\" (ignored area)"));
                false
            }
        };
        let points = if f.has("points") {
            f.points("points")
        } else {
            f.missing("points", "the outline as [[x, y], …] in 0..1 of the picture's width and height");
            None
        };
        if let Some(p) = &points {
            if p.len() < 3 {
                f.error("points", format!("{} points; an area needs at least 3", p.len()));
            } else if p.iter().any(|q| !(0.0..=1.0).contains(&q[0]) || !(0.0..=1.0).contains(&q[1])) {
                f.error("points", "coordinates are fractions of the picture: every x and y within 0..1");
            }
        }
        let ok = f.errs.is_empty();
        errs.extend(f.finish());
        if let (true, Some(camera), Some(name), Some(points)) = (ok, camera, name, points) {
            out.push(MotionZoneConfig { camera, name, mask, points });
        }
    }
    out
}
