//! Camera configuration: `camera-configs/` (a `site.toml` and camera files), read with every
//! error located as `file:line: field: problem`. This module reads the files and their shared part
//! (site, grid, cameras, rings) and lends its field readers to the subsystems, which read their own
//! sections next to themselves (`detect::config`, `maintenance::config`, `alerts::config`,
//! `geo::config`); `city::load_dir` assembles the whole directory.

mod fields;
mod load;
mod source;
pub mod types;

pub(crate) use fields::Fields;
pub use load::{
    CAMERA_FIELDS, CameraConfig, ConfigFiles, DEFAULTABLE_FIELDS, GridCell, RingConfig, SharedConfig, SharedRead,
    SiteConfig, check_cell_owners, read_shared,
};
pub(crate) use load::{parse_window, tables_of};
pub use source::{ConfigError, ConfigErrors, Loc, Source};
pub use types::*;
