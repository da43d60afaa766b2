//! Geography for planners and interception: camera fields of view and DORI ranges, the road
//! network, grid cells, entrances, checkpoint rings, coverage, routing and alarm linkage.
//!
//! Everything here is pure computation on an in-memory [`GeoModel`] built from the registry (or
//! from imports, in tests and benches). Distances are metres in a local projection around the
//! site (see [`proj`]); results go back out in WGS84 longitude/latitude.

pub mod config;
pub mod coverage;
pub mod dispatch;
pub mod dori;
pub mod entrance;
pub mod fov;
pub mod geojson_out;
pub mod grid;
pub mod import;
pub mod input;
pub mod linkage;
pub mod load;
pub mod mapview;
pub mod model;
pub mod network;
pub mod placement;
pub mod proj;
pub mod report;
pub mod rings;
pub mod route;
pub mod service;
pub mod synthetic;
pub mod watch;

pub use coverage::{CoverageQuery, CoverageReport, StateFilter};
pub use dori::DoriLevel;
pub use model::{CamGeo, Cell, Entrance, GeoModel, Ring};
pub use proj::{LocalProj, Xy};
