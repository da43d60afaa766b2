//! Loading a configuration directory: `site.toml` plus any number of camera files.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use toml_edit::{Item, TableLike};

use super::fields::{Fields, unknown_field_message};
use super::source::{ConfigError, ConfigErrors, Loc, Source};
use super::types::*;

/// The site: one per configuration directory, in `site.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteConfig {
    pub name: String,
    pub timezone: String,
    pub dori_table: DoriTable,
}

/// A grid cell (网格): level 1 = police station + street office, 2 = community police office +
/// residents' committee, 3 = base cell (building, block, compound).
#[derive(Debug, Clone, PartialEq)]
pub struct GridCell {
    pub id: String,
    pub name: String,
    pub level: u8,
    pub parent: Option<String>,
    /// Outline as `[lon, lat]` points, when given: coverage per cell needs one.
    pub outline: Option<Vec<[f64; 2]>>,
    pub loc: Loc,
}

/// A checkpoint ring (包围圈): its member checkpoints in order around it.
#[derive(Debug, Clone, PartialEq)]
pub struct RingConfig {
    pub id: String,
    pub name: String,
    /// 1 = innermost.
    pub level: u8,
    pub members: Vec<String>,
    /// Outline as `[lon, lat]` points; the members' positions in order when absent.
    pub outline: Option<Vec<[f64; 2]>>,
    pub loc: Loc,
}

/// One camera as configured. Credentials are a reference; the password is never held here.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraConfig {
    pub id: CameraId,
    pub name: String,
    pub url: RtspUrl,
    pub username: Option<String>,
    pub password: Option<SecretRef>,
    pub codec: Codec,
    pub transport: Transport,
    pub lon: f64,
    pub lat: f64,
    pub mounting_height_m: f64,
    pub bearing_deg: f64,
    /// Horizontal field of view, given or computed from focal length and sensor width.
    pub hfov_deg: f64,
    pub width: u32,
    pub height: u32,
    pub kind: CameraKind,
    pub owner: Owner,
    pub grid_cell: Option<String>,
    pub profile: Profile,
    pub enabled: bool,
    /// Ingest frame size, when not the profile's default.
    pub ingest_size: Option<(u32, u32)>,
    /// Ingest frame rate, when not the profile's default.
    pub ingest_fps: Option<u32>,
    /// `health` profile: decode one keyframe at most this often, seconds.
    pub sample_every_s: Option<f64>,
    /// Seconds without a frame before the pipeline is torn down and reconnected.
    pub watchdog_s: f64,
    /// rtspsrc jitter-buffer latency.
    pub latency_ms: u32,
    /// Where the camera's table starts.
    pub loc: Loc,
}

/// A whole configuration directory, valid.
#[derive(Debug, Clone)]
pub struct CityConfig {
    pub dir: PathBuf,
    pub site: SiteConfig,
    pub grid: Vec<GridCell>,
    pub cameras: Vec<CameraConfig>,
    pub rings: Vec<RingConfig>,
    pub map: MapFiles,
    pub webhooks: Vec<WebhookConfig>,
    pub mqtt: Option<MqttConfig>,
    pub armed_zones: Vec<ArmedZoneConfig>,
    /// `[detect]`: detection runs only when the table is present (and not `enabled = false`).
    pub detect: Option<DetectConfig>,
    pub motion_zones: Vec<MotionZoneConfig>,
    /// `[maintenance]`: video quality diagnosis and work orders run only when the table is present.
    pub maintenance: Option<MaintenanceConfig>,
    /// `[[crew]]`: maintenance crews and the grid cells each answers for.
    pub crews: Vec<CrewConfig>,
    /// `[[quality_override]]`: per-camera quality-check thresholds and checks turned off.
    pub quality_overrides: Vec<QualityOverride>,
}

/// `[maintenance]` in site.toml.
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceConfig {
    /// Seconds between quality samples of a camera.
    pub vqd_interval_s: f64,
    /// Bad samples in a row that raise a fault, good ones that clear it.
    pub raise_after: u32,
    pub clear_after: u32,
    /// A camera offline this long gets a work order.
    pub offline_order_after_s: f64,
    /// A quality fault raised this long gets a work order.
    pub fault_order_after_s: f64,
    /// A closed order is verified when its camera stays healthy this long; otherwise it reopens.
    pub verify_s: f64,
    /// Hours to the due time by priority: ring checkpoints, street, compounds.
    pub due_hours: [f64; 3],
    /// A streaming camera measuring fewer frames per second than this share of its expected rate
    /// is degraded.
    pub low_fps_ratio: f64,
    /// Seconds between work-order rounds (opening, verification).
    pub orders_interval_s: f64,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self {
            vqd_interval_s: 10.0,
            raise_after: 2,
            clear_after: 2,
            offline_order_after_s: 15.0 * 60.0,
            fault_order_after_s: 60.0 * 60.0,
            verify_s: 30.0 * 60.0,
            due_hours: [4.0, 24.0, 72.0],
            low_fps_ratio: 0.5,
            orders_interval_s: 30.0,
        }
    }
}

/// `[[crew]]` in site.toml: a maintenance crew and the grid cells (any level) it answers for. A
/// camera's orders go to the crew of its own cell, else of the nearest cell above it.
#[derive(Debug, Clone, PartialEq)]
pub struct CrewConfig {
    pub id: String,
    pub name: String,
    pub cells: Vec<String>,
    pub loc: Loc,
}

/// `[[quality_override]]` in site.toml: one camera's quality checks. Unset thresholds keep the
/// defaults.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QualityOverride {
    pub camera: String,
    /// Checks not run for this camera (by name: frozen, blur, too_dark, …).
    pub disable: Vec<String>,
    pub dark_below: Option<f64>,
    pub bright_above: Option<f64>,
    pub contrast_below: Option<f64>,
    pub blur_ratio: Option<f64>,
    pub cast_above: Option<f64>,
    pub noise_above: Option<f64>,
    pub occlusion_above: Option<f64>,
    pub scene_corr_below: Option<f64>,
    pub loc: Option<Loc>,
}

/// Names of the quality checks, as configuration and the API spell them.
pub const QUALITY_CHECKS: &[&str] =
    &["frozen", "blur", "too_dark", "too_bright", "low_contrast", "colour_cast", "noise", "occlusion", "scene_change"];

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

/// `[[armed_zone]]` in site.toml: a camera's zone whose motion raises alerts, always or in daily
/// windows of the site's local (standard) time.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmedZoneConfig {
    pub camera: String,
    /// Zone name as motion events report it, or `*` for the whole view.
    pub zone: String,
    /// `(start, end)` minutes after local midnight.
    pub windows: Vec<(u32, u32)>,
}

/// `[mqtt]` in site.toml: publish alert changes to a broker.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttConfig {
    /// `mqtt://host[:port]`.
    pub host: String,
    pub port: u16,
    /// Topics are `<topic_prefix>/alerts/<kind>/<severity>` (default `tianwang`).
    pub topic_prefix: String,
    pub client_id: String,
}

/// An outbound webhook (`[[webhook]]` in site.toml): every alert change is POSTed to it, signed.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    pub name: String,
    /// `http://host:port/path`.
    pub url: String,
    /// Environment variable holding the HMAC-SHA256 signing secret.
    pub secret_env: Option<String>,
}

/// Map files `[map]` in site.toml names, relative to the configuration directory; imported into
/// the registry at every start and reload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MapFiles {
    /// OSM PBF (`.pbf`) or GeoJSON road networks.
    pub roads: Vec<PathBuf>,
    /// GeoJSON grid cells with outlines.
    pub cells: Vec<PathBuf>,
    /// GeoJSON entrances.
    pub entrances: Vec<PathBuf>,
    /// CSV or GeoJSON cameras without a stream (surveys).
    pub cameras: Vec<PathBuf>,
}

/// Every key a camera table may have, in the order the camera reader asks for them (a test holds
/// the two together). Kept as a list because `[defaults]` is checked against it before any camera
/// is read: a default for one of these that is not in `DEFAULTABLE_FIELDS` is "one camera's own".
pub const CAMERA_FIELDS: &[&str] = &[
    "id",
    "name",
    "url",
    "username",
    "password_env",
    "password_file",
    "codec",
    "transport",
    "lon",
    "lat",
    "mounting_height_m",
    "bearing_deg",
    "hfov_deg",
    "focal_length_mm",
    "sensor_width_mm",
    "resolution",
    "kind",
    "owner",
    "grid_cell",
    "profile",
    "enabled",
    "ingest_size",
    "ingest_fps",
    "sample_every_s",
    "watchdog_s",
    "latency_ms",
];

/// The camera keys `[defaults]` in site.toml may set (everything that is not one camera's own);
/// the keys of `[defaults]`, which no reader asks about one by one (each camera takes what it needs).
pub const DEFAULTABLE_FIELDS: &[&str] = &[
    "username",
    "password_env",
    "password_file",
    "codec",
    "transport",
    "mounting_height_m",
    "hfov_deg",
    "focal_length_mm",
    "sensor_width_mm",
    "resolution",
    "kind",
    "owner",
    "grid_cell",
    "profile",
    "enabled",
    "ingest_size",
    "ingest_fps",
    "sample_every_s",
    "watchdog_s",
    "latency_ms",
];

/// The tables site.toml may hold, in the order an unknown one's hint lists them. The top level of
/// a file is a statement about files (which sections only site.toml may hold), not a table a
/// reader takes, so it stays a list.
const SITE_FILE_KEYS: &[&str] = &[
    "site",
    "defaults",
    "grid_cell",
    "camera",
    "ring",
    "map",
    "webhook",
    "mqtt",
    "armed_zone",
    "detect",
    "motion_zone",
    "maintenance",
    "crew",
    "quality_override",
];
/// The tables every other file may hold.
const CAMERA_FILE_KEYS: &[&str] = &["camera", "grid_cell", "ring"];

/// Keys that travel together from the defaults: a camera giving one takes none of the others.
const GROUPS: &[&[&str]] = &[&["hfov_deg", "focal_length_mm", "sensor_width_mm"], &["password_env", "password_file"]];

/// Reads and validates every `*.toml` under `dir` (recursively). All problems are reported at once.
pub fn load_dir(dir: &Path) -> Result<CityConfig, ConfigErrors> {
    let mut errs = Vec::new();
    let files = match toml_files(dir) {
        Ok(f) => f,
        Err(e) => return Err(ConfigErrors(vec![e])),
    };
    let site_path = dir.join("site.toml");
    if !files.contains(&site_path) {
        errs.push(ConfigError::new(
            &site_path,
            1,
            "site",
            "missing file: a configuration directory needs site.toml with a [site] table",
        ));
    }
    let mut sources = Vec::new();
    for path in &files {
        match std::fs::read_to_string(path) {
            Ok(text) => match Source::parse(path, text) {
                Ok(s) => sources.push(s),
                Err(e) => errs.push(e),
            },
            Err(e) => errs.push(ConfigError::new(path, 1, "(file)", format!("cannot be read: {e}"))),
        }
    }

    let site_src = sources.iter().find(|s| s.path == site_path);
    let site = site_src.and_then(|s| read_site(s, &mut errs));
    let map = site_src.map(|s| read_map(s, dir, &mut errs)).unwrap_or_default();
    let webhooks = site_src.map(|s| read_webhooks(s, &mut errs)).unwrap_or_default();
    let mqtt = site_src.and_then(|s| read_mqtt(s, &mut errs));
    let armed_zones = site_src.map(|s| read_armed(s, &mut errs)).unwrap_or_default();
    let detect = site_src.and_then(|s| read_detect(s, dir, &mut errs));
    let motion_zones = site_src.map(|s| read_motion_zones(s, &mut errs)).unwrap_or_default();
    let maintenance = site_src.and_then(|s| read_maintenance(s, &mut errs));
    let crews = site_src.map(|s| read_crews(s, &mut errs)).unwrap_or_default();
    let quality_overrides = site_src.map(|s| read_quality_overrides(s, &mut errs)).unwrap_or_default();
    let defaults = site_src.and_then(|s| read_defaults(s, &mut errs));

    for src in &sources {
        let allowed = if src.path == site_path { SITE_FILE_KEYS } else { CAMERA_FILE_KEYS };
        for (k, item) in src.doc.iter() {
            if !allowed.contains(&k) {
                let line = src.line(src.doc.key(k).and_then(|k| k.span()).or(item.span()));
                errs.push(ConfigError::new(&src.path, line, k, unknown_field_message(k, allowed)));
            }
        }
    }

    let grid = read_grid(&sources, &mut errs);
    let cells: HashMap<&str, &GridCell> = grid.iter().map(|c| (c.id.as_str(), c)).collect();

    let mut cameras = Vec::new();
    let mut seen: BTreeMap<String, Loc> = BTreeMap::new();
    let mut index = 0;
    for src in &sources {
        for (table, at) in tables_of(src, "camera", &mut errs) {
            index += 1;
            // Duplicates are found on the raw id, so that an invalid camera still claims its id.
            if let Some(id) = table.get("id").and_then(|i| i.as_str()) {
                if let Some(first) = seen.get(id) {
                    let line = src.line(table.get("id").and_then(|i| i.span()));
                    errs.push(ConfigError::new(
                        &src.path,
                        line,
                        format!("camera[{id}].id"),
                        format!("duplicate id; first defined at {first}"),
                    ));
                    continue;
                }
                seen.insert(id.to_string(), at.clone());
            }
            let fields = Fields::new(format!("camera[{index}]"), at, src, table).with_defaults(
                site_src.unwrap_or(src),
                defaults,
                GROUPS,
            );
            if let Some(cam) = read_camera(fields, &cells, &mut errs) {
                cameras.push(cam);
            }
        }
    }

    let rings = read_rings(&sources, &cameras, &seen, &mut errs);
    check_crews(&crews, &grid, !map.cells.is_empty(), &mut errs);
    for o in &quality_overrides {
        if !seen.contains_key(&o.camera) {
            let loc = o.loc.clone().unwrap_or(Loc { file: site_path.clone(), line: 1 });
            errs.push(ConfigError::at(&loc, format!("quality_override[{}].camera", o.camera), "no camera has this id"));
        }
    }

    errs.sort();
    errs.dedup();
    match site {
        Some(site) if errs.is_empty() => Ok(CityConfig {
            dir: dir.to_path_buf(),
            site,
            grid,
            cameras,
            rings,
            map,
            webhooks,
            mqtt,
            armed_zones,
            detect,
            motion_zones,
            maintenance,
            crews,
            quality_overrides,
        }),
        _ => Err(ConfigErrors(errs)),
    }
}

fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d)
            .map_err(|e| ConfigError::new(&d, 1, "(directory)", format!("cannot be read: {e}")))?;
        for entry in rd.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "toml") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The tables of `[[key]]` (or `key = [{...}]`) in a file, each with where it starts.
fn tables_of<'a>(src: &'a Source, key: &str, errs: &mut Vec<ConfigError>) -> Vec<(&'a dyn TableLike, Loc)> {
    let mut out: Vec<(&'a dyn TableLike, Loc)> = Vec::new();
    let Some(item) = src.doc.get(key) else { return out };
    let loc = |span| Loc { file: src.path.clone(), line: src.line(span) };
    match item {
        Item::ArrayOfTables(a) => {
            for t in a.iter() {
                out.push((t as &dyn TableLike, loc(t.span())));
            }
        }
        Item::Value(toml_edit::Value::Array(a)) => {
            for v in a.iter() {
                match v.as_inline_table() {
                    Some(t) => out.push((t as &dyn TableLike, loc(t.span()))),
                    None => errs.push(ConfigError::at(
                        &loc(v.span()),
                        key,
                        format!("expected a table, found {}", v.type_name()),
                    )),
                }
            }
        }
        other => errs.push(ConfigError::at(
            &loc(other.span()),
            key,
            format!("expected [[{key}]] entries (an array of tables), found a {}", other.type_name()),
        )),
    }
    out
}

fn read_site(src: &Source, errs: &mut Vec<ConfigError>) -> Option<SiteConfig> {
    let Some(table) = src.doc.get("site").and_then(|i| i.as_table_like()) else {
        errs.push(ConfigError::new(&src.path, 1, "site", "missing [site] table (name, timezone, dori_table)"));
        return None;
    };
    let at = Loc { file: src.path.clone(), line: src.line(src.doc.get("site").and_then(|i| i.span())) };
    let mut f = Fields::new("site", at, src, table);
    let name = f.req_str("name", "the site's name");
    let timezone = f.req_str("timezone", "an IANA time zone such as Asia/Shanghai");
    if let Some(tz) = &timezone
        && let Err(e) = check_timezone(tz)
    {
        f.error("timezone", e);
    }
    let dori_table = if f.has("dori_table") { f.parse("dori_table") } else { Some(DoriTable::Iec2014) };
    let ok = f.errs.is_empty();
    errs.extend(f.finish());
    if !ok {
        return None;
    }
    Some(SiteConfig { name: name?, timezone: timezone?, dori_table: dori_table? })
}

/// `HH:MM-HH:MM` → minutes after midnight.
fn parse_window(w: &str) -> Option<(u32, u32)> {
    let (a, b) = w.split_once('-')?;
    let hm = |t: &str| -> Option<u32> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
    };
    let (a, b) = (hm(a)?, hm(b)?);
    (a != b).then_some((a, b % (24 * 60)))
}

fn read_detect(src: &Source, dir: &Path, errs: &mut Vec<ConfigError>) -> Option<DetectConfig> {
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
        if f.has("plate_det_width") { f.int("plate_det_width", 160..=3840).unwrap_or(960) as u32 } else { 960 };
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

fn read_maintenance(src: &Source, errs: &mut Vec<ConfigError>) -> Option<MaintenanceConfig> {
    let item = src.doc.get("maintenance")?;
    let at = Loc { file: src.path.clone(), line: src.line(item.span()) };
    let Some(table) = item.as_table_like() else {
        errs.push(ConfigError::at(&at, "maintenance", "expected a table [maintenance]"));
        return None;
    };
    let mut f = Fields::new("maintenance", at, src, table);
    let d = MaintenanceConfig::default();
    let num = |f: &mut Fields, key: &str, lo: f64, hi: f64, unit: &str, default: f64| -> Option<f64> {
        if !f.has(key) {
            return Some(default);
        }
        f.num(key, |v| {
            if (lo..=hi).contains(&v) { Ok(()) } else { Err(format!("{v} is out of range [{lo}, {hi}] {unit}")) }
        })
    };
    let vqd_interval_s = num(&mut f, "vqd_interval_s", 0.5, 3600.0, "s", d.vqd_interval_s);
    let raise_after = if f.has("raise_after") { f.int("raise_after", 1..=100).map(|v| v as u32) } else { Some(2) };
    let clear_after = if f.has("clear_after") { f.int("clear_after", 1..=100).map(|v| v as u32) } else { Some(2) };
    let offline = num(&mut f, "offline_order_after_min", 0.0, 10_080.0, "min", d.offline_order_after_s / 60.0);
    let fault = num(&mut f, "fault_order_after_min", 0.0, 10_080.0, "min", d.fault_order_after_s / 60.0);
    let verify = num(&mut f, "verify_min", 0.0, 10_080.0, "min", d.verify_s / 60.0);
    let due_hours = if f.has("due_hours") {
        f.num_list("due_hours", 3, |v| {
            if v > 0.0 && v <= 8760.0 { Ok(()) } else { Err(format!("{v} h: hours to the due time are in (0, 8760]")) }
        })
        .map(|v| [v[0], v[1], v[2]])
    } else {
        Some(d.due_hours)
    };
    let low_fps_ratio = num(&mut f, "low_fps_ratio", 0.0, 1.0, "(share of the expected rate)", d.low_fps_ratio);
    let orders_interval_s = num(&mut f, "orders_interval_s", 0.1, 3600.0, "s", d.orders_interval_s);
    let ok = f.errs.is_empty();
    errs.extend(f.finish());
    if !ok {
        return None;
    }
    Some(MaintenanceConfig {
        vqd_interval_s: vqd_interval_s?,
        raise_after: raise_after?,
        clear_after: clear_after?,
        offline_order_after_s: offline? * 60.0,
        fault_order_after_s: fault? * 60.0,
        verify_s: verify? * 60.0,
        due_hours: due_hours?,
        low_fps_ratio: low_fps_ratio?,
        orders_interval_s: orders_interval_s?,
    })
}

fn read_crews(src: &Source, errs: &mut Vec<ConfigError>) -> Vec<CrewConfig> {
    let mut out: Vec<CrewConfig> = Vec::new();
    for (i, (table, at)) in tables_of(src, "crew", errs).into_iter().enumerate() {
        let mut f = Fields::new(format!("crew[{}]", i + 1), at.clone(), src, table);
        let id = f.req_str("id", "the crew's id (work orders name it)");
        let name = f.str("name");
        let cells = if f.has("cells") {
            f.str_list("cells")
        } else {
            f.missing("cells", "the grid cells the crew answers for, e.g. [\"D01\"]");
            None
        };
        if let Some(id) = &id
            && out.iter().any(|c| &c.id == id)
        {
            f.error("id", format!("duplicate crew id {id:?}"));
        }
        let ok = f.errs.is_empty();
        errs.extend(f.finish());
        if let (true, Some(id), Some(cells)) = (ok, id, cells) {
            out.push(CrewConfig { name: name.unwrap_or_else(|| id.clone()), id, cells, loc: at });
        }
    }
    out
}

/// Every crew's cells must be grid cells (unless the cells come from a map file), and a cell
/// answers to one crew.
fn check_crews(crews: &[CrewConfig], grid: &[GridCell], cells_from_map: bool, errs: &mut Vec<ConfigError>) {
    let mut owner: HashMap<&str, &str> = HashMap::new();
    for c in crews {
        for cell in &c.cells {
            if !cells_from_map && !grid.iter().any(|g| &g.id == cell) {
                errs.push(ConfigError::at(
                    &c.loc,
                    format!("crew[{}].cells", c.id),
                    format!("{cell:?} is not a grid cell"),
                ));
            }
            if let Some(first) = owner.insert(cell, &c.id)
                && first != c.id
            {
                errs.push(ConfigError::at(
                    &c.loc,
                    format!("crew[{}].cells", c.id),
                    format!("cell {cell:?} is already the responsibility of crew {first:?}"),
                ));
            }
        }
    }
}

fn read_quality_overrides(src: &Source, errs: &mut Vec<ConfigError>) -> Vec<QualityOverride> {
    let mut out = Vec::new();
    for (i, (table, at)) in tables_of(src, "quality_override", errs).into_iter().enumerate() {
        let mut f = Fields::new(format!("quality_override[{}]", i + 1), at.clone(), src, table);
        let camera = f.req_str("camera", "the camera's id");
        let disable = if f.has("disable") { f.str_list("disable").unwrap_or_default() } else { Vec::new() };
        for d in &disable {
            if !QUALITY_CHECKS.contains(&d.as_str()) {
                f.error("disable", format!("{d:?} is not a quality check; one of {}", QUALITY_CHECKS.join(", ")));
            }
        }
        let opt = |f: &mut Fields, key: &str, lo: f64, hi: f64| -> Option<f64> {
            if !f.has(key) {
                return None;
            }
            f.num(
                key,
                |v| if (lo..=hi).contains(&v) { Ok(()) } else { Err(format!("{v} is out of range [{lo}, {hi}]")) },
            )
        };
        let o = QualityOverride {
            camera: camera.clone().unwrap_or_default(),
            disable,
            dark_below: opt(&mut f, "dark_below", 0.0, 255.0),
            bright_above: opt(&mut f, "bright_above", 0.0, 255.0),
            contrast_below: opt(&mut f, "contrast_below", 0.0, 128.0),
            blur_ratio: opt(&mut f, "blur_ratio", 0.0, 1.0),
            cast_above: opt(&mut f, "cast_above", 0.0, 100.0),
            noise_above: opt(&mut f, "noise_above", 0.0, 255.0),
            occlusion_above: opt(&mut f, "occlusion_above", 0.0, 1.0),
            scene_corr_below: opt(&mut f, "scene_corr_below", -1.0, 1.0),
            loc: Some(at),
        };
        let ok = f.errs.is_empty();
        errs.extend(f.finish());
        if ok && camera.is_some() {
            out.push(o);
        }
    }
    out
}

fn read_motion_zones(src: &Source, errs: &mut Vec<ConfigError>) -> Vec<MotionZoneConfig> {
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

fn read_armed(src: &Source, errs: &mut Vec<ConfigError>) -> Vec<ArmedZoneConfig> {
    let mut out = Vec::new();
    for (table, at) in tables_of(src, "armed_zone", errs) {
        let mut f = Fields::new(format!("armed_zone[{}]", out.len() + 1), at, src, table);
        let camera = f.req_str("camera", "the camera's id");
        let zone = f.str("zone").unwrap_or_else(|| "*".into());
        let mut windows = Vec::new();
        if f.has("schedule")
            && let Some(list) = f.str_list("schedule")
        {
            for w in list {
                match parse_window(&w) {
                    Some(x) => windows.push(x),
                    None => f.error("schedule", format!("{w:?}: expected HH:MM-HH:MM, e.g. 22:00-06:00")),
                }
            }
        }
        let ok = f.errs.is_empty();
        errs.extend(f.finish());
        if let (true, Some(camera)) = (ok, camera) {
            out.push(ArmedZoneConfig { camera, zone, windows });
        }
    }
    out
}

/// The site's offset from UTC in minutes: `UTC`, `+HH:MM`, or an IANA name read from the system's
/// zoneinfo (its standard offset; arming schedules ignore daylight saving).
pub fn utc_offset_min(tz: &str) -> Option<i32> {
    if tz == "UTC" {
        return Some(0);
    }
    if let (Some(sign), Some((h, m))) = (tz.chars().next(), tz.get(1..).and_then(|r| r.split_once(':'))) {
        let v = h.parse::<i32>().ok()? * 60 + m.parse::<i32>().ok()?;
        return match sign {
            '+' => Some(v),
            '-' => Some(-v),
            _ => None,
        };
    }
    // TZif files end with a POSIX TZ string, e.g. "CST-8" or "EET-2EEST,M3.5.0/3,…".
    let bytes = std::fs::read(Path::new("/usr/share/zoneinfo").join(tz)).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let footer = text.trim_end_matches('\n').rsplit('\n').next()?;
    let rest = footer.trim_start_matches(|c: char| c.is_ascii_alphabetic() || c == '<' || c == '>');
    let num: String = rest.chars().take_while(|c| c.is_ascii_digit() || "+-:".contains(*c)).collect();
    let (sign, body) = match num.chars().next()? {
        '-' => (1, &num[1..]),
        '+' => (-1, &num[1..]),
        _ => (-1, num.as_str()),
    };
    let mut parts = body.split(':');
    let h: i32 = parts.next()?.parse().ok()?;
    let m: i32 = parts.next().map(|m| m.parse().unwrap_or(0)).unwrap_or(0);
    Some(sign * (h * 60 + m))
}

fn read_mqtt(src: &Source, errs: &mut Vec<ConfigError>) -> Option<MqttConfig> {
    let item = src.doc.get("mqtt")?;
    let at = Loc { file: src.path.clone(), line: src.line(item.span()) };
    let Some(table) = item.as_table_like() else {
        errs.push(ConfigError::at(&at, "mqtt", "expected a table [mqtt] with url, topic_prefix, client_id"));
        return None;
    };
    let mut f = Fields::new("mqtt", at, src, table);
    let url = f.req_str("url", "mqtt://host[:port]");
    let hp = url.as_deref().and_then(|u| match parse_mqtt_url(u) {
        Ok(hp) => Some(hp),
        Err(e) => {
            f.error("url", e);
            None
        }
    });
    let topic_prefix = f.str("topic_prefix").unwrap_or_else(|| "tianwang".into());
    if topic_prefix.is_empty() || topic_prefix.contains(['+', '#']) {
        f.error("topic_prefix", format!("{topic_prefix:?}: a topic prefix without wildcards"));
    }
    let client_id = f.str("client_id").unwrap_or_else(|| "tianwang".into());
    let ok = f.errs.is_empty();
    errs.extend(f.finish());
    let (host, port) = hp?;
    ok.then_some(MqttConfig { host, port, topic_prefix, client_id })
}

fn read_webhooks(src: &Source, errs: &mut Vec<ConfigError>) -> Vec<WebhookConfig> {
    let mut out: Vec<WebhookConfig> = Vec::new();
    for (table, at) in tables_of(src, "webhook", errs) {
        let mut f = Fields::new(format!("webhook[{}]", out.len() + 1), at, src, table);
        let name = f.req_str("name", "a name for the receiver");
        let url = f.req_str("url", "http://host:port/path");
        if let Some(u) = &url
            && !u.starts_with("http://")
        {
            let why = if u.starts_with("https://") {
                "https is not built in; point it at an http:// receiver or a local TLS relay"
            } else {
                "expected http://host:port/path"
            };
            f.error("url", format!("{u:?}: {why}"));
        }
        let secret_env = f.str("secret_env");
        if let Some(n) = &name
            && out.iter().any(|w| &w.name == n)
        {
            f.error("name", format!("{n:?} is used twice"));
        }
        let ok = f.errs.is_empty();
        errs.extend(f.finish());
        if let (true, Some(name), Some(url)) = (ok, name, url) {
            out.push(WebhookConfig { name, url, secret_env });
        }
    }
    out
}

fn read_map(src: &Source, dir: &Path, errs: &mut Vec<ConfigError>) -> MapFiles {
    let mut out = MapFiles::default();
    let Some(item) = src.doc.get("map") else { return out };
    let at = Loc { file: src.path.clone(), line: src.line(item.span()) };
    let Some(table) = item.as_table_like() else {
        errs.push(ConfigError::at(&at, "map", "expected a table [map] with roads, cells, entrances, cameras"));
        return out;
    };
    let mut f = Fields::new("map", at, src, table);
    out.roads = map_files(&mut f, "roads", dir);
    out.cells = map_files(&mut f, "cells", dir);
    out.entrances = map_files(&mut f, "entrances", dir);
    out.cameras = map_files(&mut f, "cameras", dir);
    errs.extend(f.finish());
    out
}

/// The files one key of `[map]` names, each of which must exist.
fn map_files(f: &mut Fields, key: &str, dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if !f.has(key) {
        return out;
    }
    let Some(files) = f.str_list(key) else { return out };
    for file in files {
        let path = dir.join(&file);
        if !path.is_file() {
            f.error(key, format!("{file:?}: no such file in {}", dir.display()));
            continue;
        }
        out.push(path);
    }
    out
}

fn read_defaults<'a>(src: &'a Source, errs: &mut Vec<ConfigError>) -> Option<&'a dyn TableLike> {
    let item = src.doc.get("defaults")?;
    let Some(t) = item.as_table_like() else {
        errs.push(ConfigError::new(&src.path, src.line(item.span()), "defaults", "expected a [defaults] table"));
        return None;
    };
    for (k, _) in t.iter() {
        if !DEFAULTABLE_FIELDS.contains(&k) {
            let line = src.line(t.key(k).and_then(|k| k.span()));
            let problem = if CAMERA_FIELDS.contains(&k) {
                "is one camera's own and cannot be a site default".to_string()
            } else {
                unknown_field_message(k, DEFAULTABLE_FIELDS)
            };
            errs.push(ConfigError::new(&src.path, line, format!("defaults.{k}"), problem));
        }
    }
    Some(t)
}

/// Accepts `UTC`, fixed offsets (`+08:00`) and IANA names (checked against the system's zoneinfo where present).
fn check_timezone(tz: &str) -> Result<(), String> {
    if tz == "UTC" {
        return Ok(());
    }
    let b = tz.as_bytes();
    if b.len() == 6 && (b[0] == b'+' || b[0] == b'-') && b[3] == b':' {
        let h: u8 = tz[1..3].parse().map_err(|_| format!("{tz:?}: bad hour"))?;
        let m: u8 = tz[4..6].parse().map_err(|_| format!("{tz:?}: bad minute"))?;
        return if h <= 14 && m < 60 { Ok(()) } else { Err(format!("{tz:?} is not a UTC offset")) };
    }
    let well_formed = tz.split('/').count() >= 2
        && tz.split('/').all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || b"_-+".contains(&c)));
    if !well_formed {
        return Err(format!("{tz:?} is not a time zone; use an IANA name such as Asia/Shanghai, UTC or +08:00"));
    }
    let zoneinfo = Path::new("/usr/share/zoneinfo");
    if zoneinfo.is_dir() && !zoneinfo.join(tz).is_file() {
        return Err(format!("{tz:?} is not a known IANA time zone"));
    }
    Ok(())
}

/// `[[ring]]` tables: members must be configured checkpoints, each listed once.
fn read_rings(
    sources: &[Source],
    cameras: &[CameraConfig],
    ids: &BTreeMap<String, Loc>,
    errs: &mut Vec<ConfigError>,
) -> Vec<RingConfig> {
    let mut rings: Vec<RingConfig> = Vec::new();
    for src in sources {
        for (table, at) in tables_of(src, "ring", errs) {
            let mut f = Fields::new(format!("ring[{}]", rings.len() + 1), at.clone(), src, table);
            let id = f.req_str("id", "the ring's id");
            if let Some(id) = &id {
                f.set_ctx(format!("ring[{id}]"));
            }
            let name = f.req_str("name", "the ring's name");
            let level = if f.has("level") { f.int("level", 1..=9) } else { Some(1) };
            let members = if f.has("members") {
                f.str_list("members")
            } else {
                f.missing("members", "the ring's checkpoint camera ids, in order around it");
                None
            };
            let outline = if f.has("outline") { f.points("outline") } else { None };
            if let Some(m) = &members {
                for (i, id) in m.iter().enumerate() {
                    let cam = cameras.iter().find(|c| c.id.as_str() == id);
                    if m[..i].contains(id) {
                        f.error("members", format!("{id:?} is listed twice"));
                    } else if cam.is_none() && !ids.contains_key(id) {
                        f.error("members", format!("{id:?} is not a configured camera"));
                    } else if cam.is_some_and(|c| c.kind != CameraKind::Checkpoint) {
                        f.error("members", format!("{id:?} is not a checkpoint camera (kind = \"checkpoint\")"));
                    }
                }
                if m.len() < 3 && outline.is_none() {
                    f.error("members", "a ring without an outline needs at least 3 members to enclose anything");
                }
            }
            let ok = f.errs.is_empty();
            errs.extend(f.finish());
            if let (true, Some(id), Some(name), Some(level), Some(members)) = (ok, id, name, level, members) {
                if let Some(first) = rings.iter().find(|r| r.id == id) {
                    errs.push(ConfigError::at(
                        &at,
                        format!("ring[{id}].id"),
                        format!("duplicate id; first defined at {}", first.loc),
                    ));
                    continue;
                }
                rings.push(RingConfig { id, name, level: level as u8, members, outline, loc: at });
            }
        }
    }
    rings
}

fn read_grid(sources: &[Source], errs: &mut Vec<ConfigError>) -> Vec<GridCell> {
    let mut cells: Vec<GridCell> = Vec::new();
    let mut parents: Vec<(usize, Loc)> = Vec::new();
    for src in sources {
        for (table, at) in tables_of(src, "grid_cell", errs) {
            let mut f = Fields::new(format!("grid_cell[{}]", cells.len() + 1), at.clone(), src, table);
            let id = f.req_str("id", "the cell's id");
            if let Some(id) = &id {
                f.set_ctx(format!("grid_cell[{id}]"));
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                    f.error("id", format!("{id:?}: use letters, digits, '-', '_' and '.'"));
                }
            }
            let name = f.req_str("name", "the cell's name");
            let level = if f.has("level") {
                f.int("level", 1..=3)
            } else {
                f.missing("level", "1, 2 or 3");
                None
            };
            let parent = f.str("parent");
            let parent_loc = f.loc_of("parent");
            let outline = if f.has("outline") { f.points("outline") } else { None };
            let ok = f.errs.is_empty();
            errs.extend(f.finish());
            if let (true, Some(id), Some(name), Some(level)) = (ok, id, name, level) {
                if let Some(first) = cells.iter().find(|c| c.id == id) {
                    errs.push(ConfigError::at(
                        &at,
                        format!("grid_cell[{id}].id"),
                        format!("duplicate id; first defined at {}", first.loc),
                    ));
                    continue;
                }
                parents.push((cells.len(), parent_loc));
                cells.push(GridCell { id, name, level: level as u8, parent, outline, loc: at });
            }
        }
    }
    for (i, ploc) in parents {
        let c = &cells[i];
        let field = format!("grid_cell[{}].parent", c.id);
        match (&c.parent, c.level) {
            (None, 1) => {}
            (Some(_), 1) => errs.push(ConfigError::at(&ploc, field, "a level-1 cell has no parent")),
            (None, l) => errs.push(ConfigError::at(
                &c.loc,
                field,
                format!("missing; a level-{l} cell needs its level-{} parent", l - 1),
            )),
            (Some(p), l) => match cells.iter().find(|x| &x.id == p) {
                None => errs.push(ConfigError::at(&ploc, field, format!("unknown grid cell {p:?}"))),
                Some(x) if x.level + 1 != l => errs.push(ConfigError::at(
                    &ploc,
                    field,
                    format!("{p:?} is level {}; a level-{l} cell's parent must be level {}", x.level, l - 1),
                )),
                Some(_) => {}
            },
        }
    }
    cells
}

fn in_range(lo: f64, hi: f64, hi_inclusive: bool, unit: &'static str) -> impl Fn(f64) -> Result<(), String> {
    move |v| {
        let ok = v >= lo && if hi_inclusive { v <= hi } else { v < hi };
        if ok {
            Ok(())
        } else {
            let close = if hi_inclusive { ']' } else { ')' };
            Err(format!("{v} is out of range [{lo}, {hi}{close}{unit}"))
        }
    }
}

fn positive(max: f64, unit: &'static str) -> impl Fn(f64) -> Result<(), String> {
    move |v| if v > 0.0 && v <= max { Ok(()) } else { Err(format!("{v} is out of range (0, {max}]{unit}")) }
}

fn parse_resolution(s: &str) -> Result<(u32, u32), String> {
    let (w, h) =
        s.split_once(['x', 'X', '×']).ok_or_else(|| format!("{s:?}: expected WIDTHxHEIGHT such as \"1920x1080\""))?;
    let dim = |d: &str| d.trim().parse::<u32>().ok().filter(|n| (16..=16384).contains(n));
    match (dim(w), dim(h)) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err(format!("{s:?}: width and height must be whole numbers of pixels in 16..=16384")),
    }
}

fn read_camera(
    mut f: Fields<'_>,
    cells: &HashMap<&str, &GridCell>,
    errs: &mut Vec<ConfigError>,
) -> Option<CameraConfig> {
    let id: Option<CameraId> = f.req_parse("id", "a stable id: a 20-digit GB/T 28181 code or a slug");
    if let Some(id) = &id {
        f.set_ctx(format!("camera[{id}]"));
    }
    let name = f.req_str("name", "a human-readable name");
    let url: Option<RtspUrl> = f.req_parse("url", "the RTSP URL without credentials");
    let username = f.str("username");
    let password = match (f.has("password_env"), f.has("password_file")) {
        (true, true) => {
            f.error("password_file", "give either password_env or password_file, not both");
            None
        }
        (true, false) => f.str("password_env").map(SecretRef::Env),
        (false, true) => {
            let loc = f.loc_of("password_file");
            f.str("password_file").map(|p| {
                let base = loc.file.parent().unwrap_or(Path::new("."));
                SecretRef::File(base.join(p))
            })
        }
        (false, false) => None,
    };
    if let Some(secret) = &password {
        let key = if matches!(secret, SecretRef::Env(_)) { "password_env" } else { "password_file" };
        if username.is_none() {
            f.error(key, "a password needs a `username`");
        }
        if let Err(e) = secret.resolve() {
            f.error(key, format!("missing secret: {e}"));
        }
    }
    let codec = if f.has("codec") { f.parse("codec") } else { Some(Codec::Auto) };
    let transport = if f.has("transport") { f.parse("transport") } else { Some(Transport::Tcp) };
    let lon = f.req_num("lon", "WGS84 longitude in degrees", in_range(-180.0, 180.0, true, "°"));
    let lat = f.req_num("lat", "WGS84 latitude in degrees", in_range(-90.0, 90.0, true, "°"));
    if lat == Some(0.0) && lon == Some(0.0) {
        f.error("lat", "position 0,0 is in the Gulf of Guinea: the position is missing");
    }
    let mounting_height_m = f.req_num("mounting_height_m", "height above the ground in metres", positive(500.0, " m"));
    let bearing_deg = f.req_num(
        "bearing_deg",
        "the direction the camera looks, degrees clockwise from north",
        in_range(0.0, 360.0, false, "°"),
    );
    let (hfov, focal, sensor) = (f.has("hfov_deg"), f.has("focal_length_mm"), f.has("sensor_width_mm"));
    let hfov_deg = if hfov {
        if f.has_own("focal_length_mm") && f.has_own("hfov_deg") {
            f.error("hfov_deg", "give either hfov_deg or focal_length_mm + sensor_width_mm, not both");
        }
        f.num("hfov_deg", |v| if v > 0.0 && v < 180.0 { Ok(()) } else { Err(format!("{v} is out of range (0, 180)°")) })
    } else if focal || sensor {
        let focal = f.req_num("focal_length_mm", "lens focal length, with sensor_width_mm", positive(2000.0, " mm"));
        let sensor = f.req_num("sensor_width_mm", "sensor width, with focal_length_mm", positive(100.0, " mm"));
        focal.zip(sensor).map(|(fl, sw)| (2.0 * (sw / (2.0 * fl)).atan()).to_degrees())
    } else {
        f.missing("hfov_deg", "horizontal field of view in degrees (or focal_length_mm + sensor_width_mm)");
        None
    };
    let resolution = if f.has("resolution") {
        let r = f.str("resolution");
        r.and_then(|s| match parse_resolution(&s) {
            Ok(r) => Some(r),
            Err(e) => {
                f.error("resolution", e);
                None
            }
        })
    } else {
        f.missing("resolution", "WIDTHxHEIGHT in pixels, such as \"1920x1080\"");
        None
    };
    let kind: Option<CameraKind> = f.req_parse("kind", &format!("one of {}", CameraKind::choices()));
    let owner: Option<Owner> = f.req_parse("owner", &format!("one of {}", Owner::choices()));
    let grid_cell = f.str("grid_cell");
    if let Some(g) = &grid_cell
        && !cells.contains_key(g.as_str())
    {
        f.error("grid_cell", format!("unknown grid cell {g:?}; declare it in a [[grid_cell]] table"));
    }
    let profile = if f.has("profile") {
        f.parse("profile")
    } else {
        // Checkpoints read plates; everything else watches for motion by default.
        Some(if kind == Some(CameraKind::Checkpoint) { Profile::Checkpoint } else { Profile::Street })
    };
    let enabled = if f.has("enabled") { f.bool("enabled") } else { Some(true) };
    let ingest_size = f.str("ingest_size").and_then(|s| match parse_resolution(&s) {
        Ok(r) => Some(r),
        Err(e) => {
            f.error("ingest_size", e);
            None
        }
    });
    let ingest_fps = f.int("ingest_fps", 1..=60).map(|n| n as u32);
    let sample_every_s = if f.has("sample_every_s") {
        f.num("sample_every_s", |v| {
            if (1.0..=3600.0).contains(&v) { Ok(()) } else { Err(format!("{v} is out of range [1, 3600] s")) }
        })
    } else {
        None
    };
    let watchdog_s = if f.has("watchdog_s") {
        f.num("watchdog_s", |v| {
            if (1.0..=600.0).contains(&v) { Ok(()) } else { Err(format!("{v} is out of range [1, 600] s")) }
        })
    } else {
        Some(10.0)
    };
    let latency_ms = if f.has("latency_ms") { f.int("latency_ms", 0..=10_000).map(|n| n as u32) } else { Some(200) };
    let loc = f.at().clone();
    let ok = f.errs.is_empty();
    errs.extend(f.finish());
    if !ok {
        return None;
    }
    let (width, height) = resolution?;
    Some(CameraConfig {
        id: id?,
        name: name?,
        url: url?,
        username,
        password,
        codec: codec?,
        transport: transport?,
        lon: lon?,
        lat: lat?,
        mounting_height_m: mounting_height_m?,
        bearing_deg: bearing_deg?,
        hfov_deg: hfov_deg?,
        width,
        height,
        kind: kind?,
        owner: owner?,
        grid_cell,
        profile: profile?,
        enabled: enabled?,
        ingest_size,
        ingest_fps,
        sample_every_s,
        watchdog_s: watchdog_s?,
        latency_ms: latency_ms?,
        loc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions() {
        assert_eq!(parse_resolution("1920x1080"), Ok((1920, 1080)));
        assert_eq!(parse_resolution("704×576"), Ok((704, 576)));
        assert!(parse_resolution("1920").is_err());
        assert!(parse_resolution("0x0").is_err());
    }

    /// `CAMERA_FIELDS` is what the camera reader asks about, on every path through it.
    #[test]
    fn the_camera_reader_knows_exactly_camera_fields() {
        let want = format!("unknown field; known fields: {}", CAMERA_FIELDS.join(", "));
        for text in ["", "hfov_deg = 90\nsensor_width_mm = 6", "focal_length_mm = 4", "password_env = \"HOME\""] {
            let src = Source::parse(Path::new("c.toml"), format!("[camera]\n{text}\nzzzzzzzzzzzz = 1\n")).unwrap();
            let table = src.doc.get("camera").and_then(|i| i.as_table_like()).unwrap();
            let at = Loc { file: src.path.clone(), line: 1 };
            let mut errs = Vec::new();
            assert!(read_camera(Fields::new("camera[1]", at, &src, table), &HashMap::new(), &mut errs).is_none());
            let unknown = errs.iter().find(|e| e.field == "camera[1].zzzzzzzzzzzz").expect("reported");
            assert_eq!(unknown.problem, want, "with {text:?}");
        }
        assert!(DEFAULTABLE_FIELDS.iter().all(|k| CAMERA_FIELDS.contains(k)));
    }

    #[test]
    fn timezones() {
        assert!(check_timezone("UTC").is_ok());
        assert!(check_timezone("+08:00").is_ok());
        assert!(check_timezone("Asia/Shanghai").is_ok());
        assert!(check_timezone("Beijing").is_err());
        assert!(check_timezone("Asia/Nowhere").is_err() || !Path::new("/usr/share/zoneinfo").is_dir());
    }
}
