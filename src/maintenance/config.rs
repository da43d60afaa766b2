//! `[maintenance]`, `[[crew]]` and `[[quality_override]]` in site.toml: the maintenance
//! subsystem's own configuration, read here with the shared readers of `config`.

use std::collections::BTreeMap;

use crate::config::{ConfigError, Fields, GridCell, Loc, Source, tables_of};

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

pub fn read_maintenance(src: &Source, errs: &mut Vec<ConfigError>) -> Option<MaintenanceConfig> {
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

pub fn read_crews(src: &Source, errs: &mut Vec<ConfigError>) -> Vec<CrewConfig> {
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
pub fn check_crews(crews: &[CrewConfig], grid: &[GridCell], cells_from_map: bool, errs: &mut Vec<ConfigError>) {
    let owners = crews.iter().map(|c| (c.id.as_str(), c.cells.as_slice(), &c.loc));
    crate::config::check_cell_owners("crew", owners, grid, cells_from_map, errs);
}

pub fn read_quality_overrides(src: &Source, errs: &mut Vec<ConfigError>) -> Vec<QualityOverride> {
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

/// Every quality override names a configured camera (`camera_ids` holds every camera table's id,
/// valid or not, so that an invalid camera is reported once, as itself).
pub fn check_overrides(
    overrides: &[QualityOverride],
    camera_ids: &BTreeMap<String, Loc>,
    site: &Loc,
    errs: &mut Vec<ConfigError>,
) {
    for o in overrides {
        if !camera_ids.contains_key(&o.camera) {
            let loc = o.loc.clone().unwrap_or_else(|| site.clone());
            errs.push(ConfigError::at(&loc, format!("quality_override[{}].camera", o.camera), "no camera has this id"));
        }
    }
}
