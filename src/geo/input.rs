//! What imports produce and the geography model consumes: roads, grid cells, entrances and cameras
//! in WGS84 longitude/latitude, before projection. Each import reports what it accepted and what it
//! rejected (with where and why), so a planner can fix the source file.

use serde::{Deserialize, Serialize};

use crate::config::{CameraKind, Owner};

/// Travel direction allowed on a road, relative to the order of its coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Oneway {
    /// Both directions.
    No,
    /// Only in the order of the coordinates (OSM `oneway=yes`).
    Forward,
    /// Only against the order of the coordinates (OSM `oneway=-1`).
    Backward,
}

impl Oneway {
    pub fn as_str(self) -> &'static str {
        match self {
            Oneway::No => "no",
            Oneway::Forward => "forward",
            Oneway::Backward => "backward",
        }
    }

    pub fn parse(s: &str) -> Option<Oneway> {
        match s {
            "no" | "false" | "0" => Some(Oneway::No),
            "forward" | "yes" | "true" | "1" => Some(Oneway::Forward),
            "backward" | "-1" | "reverse" => Some(Oneway::Backward),
            _ => None,
        }
    }
}

/// One road (an OSM way or a GeoJSON LineString): at least two points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoadWay {
    /// Stable id: `osm:way:<id>` for OSM, the feature's `id` property for GeoJSON.
    pub id: String,
    pub name: Option<String>,
    /// OSM highway class (`primary`, `residential`, `footway`, …).
    pub class: String,
    pub oneway: Oneway,
    /// `[lon, lat]` in order.
    pub coords: Vec<[f64; 2]>,
    /// OSM node ids, one per coordinate, when known: they join ways at shared nodes.
    /// Without them ways join where their coordinates coincide (to 1e-7 degrees).
    pub node_ids: Option<Vec<i64>>,
}

/// A grid cell with its outline (outer ring, `[lon, lat]`, closed or not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellInput {
    pub id: String,
    pub name: String,
    /// 1 = police station + street office, 2 = community, 3 = base cell.
    pub level: u8,
    pub parent: Option<String>,
    pub polygon: Vec<[f64; 2]>,
}

/// An entrance of a unit (a compound, a school, a bank): the point and the road it faces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntranceInput {
    pub id: String,
    /// The unit's name.
    pub name: String,
    /// Name of the road the entrance faces; the nearest road when absent.
    pub road: Option<String>,
    pub lon: f64,
    pub lat: f64,
    pub grid_cell: Option<String>,
}

/// A camera known from a survey or a map rather than from the camera configuration: it has a
/// position and a view but no stream the system ingests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraInput {
    pub id: String,
    pub name: String,
    pub lon: f64,
    pub lat: f64,
    /// Compass bearing of the optical axis, degrees clockwise from north.
    pub bearing_deg: f64,
    /// Horizontal field of view in degrees; 0 when the direction is unknown (the camera counts but
    /// covers nothing), 360 for a panning/dome camera.
    pub hfov_deg: f64,
    pub width_px: u32,
    pub height_px: u32,
    pub mounting_height_m: f64,
    pub kind: CameraKind,
    pub owner: Owner,
    pub grid_cell: Option<String>,
}

/// A row, feature or element an import refused, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    /// Where: `file.csv:12`, `file.geojson: feature 7 (id "x")`, `osm node 123`.
    pub at: String,
    pub reason: String,
}

/// The outcome of reading one file: what will be stored and what was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportBatch<T> {
    /// The file, as given.
    pub source: String,
    pub accepted: Vec<T>,
    pub rejected: Vec<Rejected>,
}

impl<T> ImportBatch<T> {
    pub fn new(source: impl Into<String>) -> Self {
        ImportBatch { source: source.into(), accepted: Vec::new(), rejected: Vec::new() }
    }

    pub fn reject(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.rejected.push(Rejected { at: at.into(), reason: reason.into() });
    }
}

/// Progress of a long read, reported now and then.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub items: u64,
}
