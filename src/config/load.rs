//! Reading a configuration directory's files (`site.toml` plus any number of camera files) and
//! its shared part: the site, the grid, the cameras and the rings. Each subsystem reads its own
//! sections of `site.toml` in its own `config` module; `city::load_dir` puts them together.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use toml_edit::{Item, TableLike};

use super::fields::{Fields, unknown_field_message};
use super::source::{ConfigError, Loc, Source};
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
    /// Answer a camera that offers only Basic sign-in (the password in clear on the wire).
    pub allow_basic_auth: bool,
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
    /// Where its motion events come from: the detector, the device (ONVIF events) or nowhere.
    pub motion: MotionSource,
    /// Where the camera's table starts.
    pub loc: Loc,
}

/// The shared part of a valid configuration: what the registry stores (`Registry::sync_config`)
/// and what every subsystem's own section refers to.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedConfig {
    pub site: SiteConfig,
    pub grid: Vec<GridCell>,
    pub cameras: Vec<CameraConfig>,
    pub rings: Vec<RingConfig>,
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
    "allow_basic_auth",
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
    "motion",
    "onvif_url",
];

/// The camera keys `[defaults]` in site.toml may set (everything that is not one camera's own);
/// the keys of `[defaults]`, which no reader asks about one by one (each camera takes what it needs).
pub const DEFAULTABLE_FIELDS: &[&str] = &[
    "username",
    "password_env",
    "password_file",
    "allow_basic_auth",
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
    "motion",
];

/// The tables every other file may hold.
const CAMERA_FILE_KEYS: &[&str] = &["camera", "grid_cell", "ring"];

/// Keys that travel together from the defaults: a camera giving one takes none of the others.
const GROUPS: &[&[&str]] = &[&["hfov_deg", "focal_length_mm", "sensor_width_mm"], &["password_env", "password_file"]];

/// The files of a configuration directory, parsed: `site.toml` and any number of camera files.
pub struct ConfigFiles {
    pub dir: PathBuf,
    pub sources: Vec<Source>,
    site_path: PathBuf,
}

impl ConfigFiles {
    /// Reads and parses every `*.toml` under `dir` (recursively). A file that cannot be read or
    /// parsed is reported in `errs` and left out; only a directory that cannot be listed is an
    /// error of its own.
    pub fn read(dir: &Path, errs: &mut Vec<ConfigError>) -> Result<Self, ConfigError> {
        let files = toml_files(dir)?;
        let site_path = dir.join("site.toml");
        // A folder that holds sites (each a folder with its own site.toml) rather than one site:
        // say so, instead of reading every site's files as cameras of one.
        let sites: Vec<&Path> = files
            .iter()
            .filter(|f| f.file_name().is_some_and(|n| n == "site.toml") && f.as_path() != site_path)
            .filter_map(|f| f.parent())
            .collect();
        if !files.contains(&site_path) && !sites.is_empty() {
            let names: Vec<String> =
                sites.iter().map(|p| p.strip_prefix(dir).unwrap_or(p).display().to_string()).collect();
            return Err(ConfigError::new(
                &site_path,
                1,
                "site",
                format!(
                    "{} holds site folders, not one site: {}; give one of them (e.g. {})",
                    dir.display(),
                    names.join(", "),
                    sites[0].display()
                ),
            ));
        }
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
        Ok(Self { dir: dir.to_path_buf(), sources, site_path })
    }

    /// `site.toml`, where it was read: the file the subsystems' sections live in.
    pub fn site(&self) -> Option<&Source> {
        self.sources.iter().find(|s| s.path == self.site_path)
    }

    /// Where a problem with no line of its own is reported: the top of `site.toml`.
    pub fn site_loc(&self) -> Loc {
        Loc { file: self.site_path.clone(), line: 1 }
    }

    /// Reports every top-level table a file may not hold: `site.toml` the `site_tables` (the
    /// assembly knows every section), the other files cameras, grid cells and rings.
    pub fn check_tables(&self, site_tables: &[&str], errs: &mut Vec<ConfigError>) {
        for src in &self.sources {
            let allowed = if src.path == self.site_path { site_tables } else { CAMERA_FILE_KEYS };
            for (k, item) in src.doc.iter() {
                if !allowed.contains(&k) {
                    let line = src.line(src.doc.key(k).and_then(|k| k.span()).or(item.span()));
                    errs.push(ConfigError::new(&src.path, line, k, unknown_field_message(k, allowed)));
                }
            }
        }
    }
}

/// The shared part as read, whether or not it is valid: the subsystems' checks refer to it.
pub struct SharedRead {
    pub site: Option<SiteConfig>,
    pub grid: Vec<GridCell>,
    pub cameras: Vec<CameraConfig>,
    pub rings: Vec<RingConfig>,
    /// The id of every camera table, valid or not, with where it is: an invalid camera still
    /// claims its id, so that it is reported once, as itself.
    pub camera_ids: BTreeMap<String, Loc>,
}

impl SharedRead {
    /// The shared configuration, when `[site]` was read.
    pub fn into_config(self) -> Option<SharedConfig> {
        let site = self.site?;
        Some(SharedConfig { site, grid: self.grid, cameras: self.cameras, rings: self.rings })
    }
}

/// Reads `[site]`, `[defaults]`, the grid, the cameras and the rings of every file.
pub fn read_shared(files: &ConfigFiles, errs: &mut Vec<ConfigError>) -> SharedRead {
    let site_src = files.site();
    let site = site_src.and_then(|s| read_site(s, errs));
    let defaults = site_src.and_then(|s| read_defaults(s, errs));
    let sources = &files.sources;

    let grid = read_grid(sources, errs);
    let cells: HashMap<&str, &GridCell> = grid.iter().map(|c| (c.id.as_str(), c)).collect();

    let mut cameras = Vec::new();
    let mut seen: BTreeMap<String, Loc> = BTreeMap::new();
    let mut index = 0;
    for src in sources {
        for (table, at) in tables_of(src, "camera", errs) {
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
            if let Some(cam) = read_camera(fields, &cells, errs) {
                cameras.push(cam);
            }
        }
    }
    drop(cells);
    let rings = read_rings(sources, &cameras, &seen, errs);
    SharedRead { site, grid, cameras, rings, camera_ids: seen }
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
pub(crate) fn tables_of<'a>(src: &'a Source, key: &str, errs: &mut Vec<ConfigError>) -> Vec<(&'a dyn TableLike, Loc)> {
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
pub(crate) fn parse_window(w: &str) -> Option<(u32, u32)> {
    let (a, b) = w.split_once('-')?;
    let hm = |t: &str| -> Option<u32> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
    };
    let (a, b) = (hm(a)?, hm(b)?);
    (a != b).then_some((a, b % (24 * 60)))
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

/// Accepts `UTC`, fixed offsets (`+08:00`) and IANA names the time zone database knows.
fn check_timezone(tz: &str) -> Result<(), String> {
    crate::clock::SiteZone::parse(tz).map(|_| ())
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

/// Grid cells handed out to owners (`[[crew]]`, `[[desk]]`): each owner's cells must be grid
/// cells (unless the cells come from a map file), and a cell belongs to one owner. `what` names the
/// table; `owners` are each owner's id, cells and place.
pub fn check_cell_owners<'a>(
    what: &str,
    owners: impl Iterator<Item = (&'a str, &'a [String], &'a Loc)>,
    grid: &[GridCell],
    cells_from_map: bool,
    errs: &mut Vec<ConfigError>,
) {
    let mut owner: HashMap<&str, &str> = HashMap::new();
    for (id, cells, loc) in owners {
        for cell in cells {
            let field = format!("{what}[{id}].cells");
            if !cells_from_map && !grid.iter().any(|g| &g.id == cell) {
                errs.push(ConfigError::at(loc, field.clone(), format!("{cell:?} is not a grid cell")));
            }
            if let Some(first) = owner.insert(cell, id)
                && first != id
            {
                errs.push(ConfigError::at(
                    loc,
                    field,
                    format!("cell {cell:?} is already the responsibility of {what} {first:?}"),
                ));
            }
        }
    }
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
    // Basic sign-in sends the password in clear (base64) on every request: refused unless the
    // camera is known to offer nothing better.
    let allow_basic_auth = if f.has("allow_basic_auth") { f.bool("allow_basic_auth") } else { Some(false) };
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
    let motion = read_motion(&mut f, url.as_ref());
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
        allow_basic_auth: allow_basic_auth?,
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
        motion: motion?,
        loc,
    })
}

/// `motion` and `onvif_url`: the camera's motion source (the device service defaults to the
/// stream's host on port 80).
fn read_motion(f: &mut Fields<'_>, url: Option<&RtspUrl>) -> Option<MotionSource> {
    // Both keys asked about before anything can end the reading (an unasked key is unknown).
    let kind = if f.has("motion") { f.parse("motion") } else { Some(MotionKind::Detector) };
    let onvif_url = f.str("onvif_url");
    let kind = kind?;
    // Without a valid `url` (reported already) there is no host to default to.
    let host = if url?.gb28181().is_some() { "" } else { url?.host() };
    match MotionSource::parse(kind, onvif_url.as_deref(), host) {
        Ok(m) => Some(m),
        Err((key, problem)) => {
            f.error(key, problem);
            None
        }
    }
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
        assert!(check_timezone("Asia/Nowhere").is_err());
        assert!(check_timezone("+15:00").is_err());
        assert!(check_timezone("+8:00").is_err());
        assert!(check_timezone("-03:30").is_ok());
    }
}
