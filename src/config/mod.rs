//! Camera configuration: `camera-configs/` (a `site.toml` and camera files), read with every
//! error located as `file:line: field: problem`.

mod fields;
mod load;
mod source;
pub mod types;

pub use load::{
    ArmedZoneConfig, CAMERA_FIELDS, CameraConfig, CityConfig, CrewConfig, DEFAULTABLE_FIELDS, DetectConfig, GridCell,
    MaintenanceConfig, MapFiles, MotionZoneConfig, MqttConfig, QualityOverride, RingConfig, SiteConfig, WebhookConfig,
    load_dir, utc_offset_min,
};
pub use source::{ConfigError, ConfigErrors, Loc};
pub use types::*;
