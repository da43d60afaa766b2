//! A whole configuration directory: the shared part that `config` reads, and each subsystem's
//! sections read by that subsystem's own reader. It sits above the subsystems because it names them
//! all; what lies below takes only its own part (`&SharedConfig`, `&DetectConfig`, …).

use std::path::{Path, PathBuf};

use crate::alerts::config::{
    ArmedZoneConfig, DeskConfig, MqttConfig, WebhookConfig, check_desks, read_armed, read_desks, read_mqtt,
    read_webhooks,
};
use crate::config::{ConfigErrors, ConfigFiles, SharedConfig, read_shared};
use crate::detect::config::{DetectConfig, MotionZoneConfig, read_detect, read_motion_zones};
use crate::gb28181::{GbConfig, read_gb28181};
use crate::geo::config::{MapFiles, read_map};
use crate::maintenance::config::{
    CrewConfig, MaintenanceConfig, QualityOverride, check_crews, check_overrides, read_crews, read_maintenance,
    read_quality_overrides,
};
use crate::retention::{RetentionConfig, read_retention};

/// A whole configuration directory, valid.
///
/// The shared part (site, grid, cameras, rings) is `shared`; a `CityConfig` reads as one through
/// `Deref` (`cfg.cameras`, `registry.sync_config(&cfg, …)`), so that the lower layers take
/// `&SharedConfig` or their own sections, and every caller can hand them the city.
#[derive(Debug, Clone)]
pub struct CityConfig {
    pub dir: PathBuf,
    pub shared: SharedConfig,
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
    /// `[[desk]]`: duty desks and the grid cells each answers for (alerts are routed to them).
    pub desks: Vec<DeskConfig>,
    /// `[[quality_override]]`: per-camera quality-check thresholds and checks turned off.
    pub quality_overrides: Vec<QualityOverride>,
    /// `[retention]`: how long events, alert changes, passages, pictures and history are kept
    /// (the defaults when the table is absent).
    pub retention: RetentionConfig,
    /// `[gb28181]` with its `[[gb28181_device]]` entries: the SIP server runs only when present.
    pub gb28181: Option<GbConfig>,
}

impl std::ops::Deref for CityConfig {
    type Target = SharedConfig;

    fn deref(&self) -> &SharedConfig {
        &self.shared
    }
}

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
    "desk",
    "quality_override",
    "retention",
    "gb28181",
    "gb28181_device",
];

/// A camera whose motion comes from the device (ONVIF events) reports it for the whole view
/// (`*`): motion zones are not applied to it, and an armed zone naming one of them would never fire.
fn check_device_motion(
    cameras: &[crate::config::CameraConfig],
    zones: &[MotionZoneConfig],
    armed: &[ArmedZoneConfig],
    errs: &mut Vec<crate::config::ConfigError>,
) {
    for c in cameras.iter().filter(|c| matches!(c.motion, crate::config::MotionSource::Onvif { .. })) {
        let id = c.id.as_str();
        let field = format!("camera[{id}].motion");
        if let Some(z) = zones.iter().find(|z| z.camera == id) {
            errs.push(crate::config::ConfigError::at(
                &c.loc,
                field.clone(),
                format!(
                    "\"onvif\" reports motion for the whole view, so [[motion_zone]] {:?} is not applied; remove it or use motion = \"detector\"",
                    z.name
                ),
            ));
        }
        if let Some(a) = armed.iter().find(|a| a.camera == id && a.zone != "*") {
            errs.push(crate::config::ConfigError::at(
                &c.loc,
                field.clone(),
                format!(
                    "\"onvif\" reports motion for the whole view (zone \"*\"), so the [[armed_zone]] for zone {:?} would never fire; arm zone \"*\"",
                    a.zone
                ),
            ));
        }
    }
}

/// Reads and validates every `*.toml` under `dir` (recursively). All problems are reported at once.
pub fn load_dir(dir: &Path) -> Result<CityConfig, ConfigErrors> {
    let mut errs = Vec::new();
    let files = ConfigFiles::read(dir, &mut errs).map_err(|e| ConfigErrors(vec![e]))?;
    files.check_tables(SITE_FILE_KEYS, &mut errs);

    let site = files.site();
    let map = site.map(|s| read_map(s, dir, &mut errs)).unwrap_or_default();
    let webhooks = site.map(|s| read_webhooks(s, &mut errs)).unwrap_or_default();
    let mqtt = site.and_then(|s| read_mqtt(s, &mut errs));
    let armed_zones = site.map(|s| read_armed(s, &mut errs)).unwrap_or_default();
    let detect = site.and_then(|s| read_detect(s, dir, &mut errs));
    let motion_zones = site.map(|s| read_motion_zones(s, &mut errs)).unwrap_or_default();
    let maintenance = site.and_then(|s| read_maintenance(s, &mut errs));
    let crews = site.map(|s| read_crews(s, &mut errs)).unwrap_or_default();
    let desks = site.map(|s| read_desks(s, &mut errs)).unwrap_or_default();
    let quality_overrides = site.map(|s| read_quality_overrides(s, &mut errs)).unwrap_or_default();
    let retention = site.map(|s| read_retention(s, &mut errs)).unwrap_or_default();
    let gb28181 = site.and_then(|s| read_gb28181(s, &mut errs));

    let shared = read_shared(&files, &mut errs);
    check_crews(&crews, &shared.grid, !map.cells.is_empty(), &mut errs);
    check_desks(&desks, &shared.grid, !map.cells.is_empty(), &mut errs);
    check_overrides(&quality_overrides, &shared.camera_ids, &files.site_loc(), &mut errs);
    check_device_motion(&shared.cameras, &motion_zones, &armed_zones, &mut errs);

    errs.sort();
    errs.dedup();
    match shared.into_config() {
        Some(shared) if errs.is_empty() => Ok(CityConfig {
            dir: dir.to_path_buf(),
            shared,
            map,
            webhooks,
            mqtt,
            armed_zones,
            detect,
            motion_zones,
            maintenance,
            crews,
            desks,
            quality_overrides,
            retention,
            gb28181,
        }),
        _ => Err(ConfigErrors(errs)),
    }
}
