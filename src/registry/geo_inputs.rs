//! What the geography model is built from, as the registry stores and returns it: roads, grid
//! cells, entrances and surveyed cameras in WGS84 longitude/latitude (before projection), checkpoint
//! rings, and the rows an import refused. Plain data owned by the registry so that it imports
//! nothing from `geo`; the imports that produce these rows and the model that projects them are
//! `geo`'s (`geo::input` and `geo::model` re-export them).

use serde::{Deserialize, Serialize};

use crate::config::{CameraKind, CameraStatus, DoriTable, Owner};

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

/// A camera as geography sees it (what it computes with it — layer, DORI sectors — is
/// `geo::model`'s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CamGeo {
    pub id: String,
    pub name: String,
    pub kind: CameraKind,
    pub owner: Owner,
    pub status: CameraStatus,
    /// The grid cell the registry gives, if any.
    pub grid_cell: Option<String>,
    pub lon: f64,
    pub lat: f64,
    pub bearing_deg: f64,
    pub hfov_deg: f64,
    pub width_px: u32,
    pub height_px: u32,
    pub mounting_height_m: f64,
}

impl From<&CamGeo> for CameraInput {
    /// The camera as an import would give it (its state is the registry's, not the import's).
    fn from(c: &CamGeo) -> Self {
        CameraInput {
            id: c.id.clone(),
            name: c.name.clone(),
            lon: c.lon,
            lat: c.lat,
            bearing_deg: c.bearing_deg,
            hfov_deg: c.hfov_deg,
            width_px: c.width_px,
            height_px: c.height_px,
            mounting_height_m: c.mounting_height_m,
            kind: c.kind,
            owner: c.owner,
            grid_cell: c.grid_cell.clone(),
        }
    }
}

/// A checkpoint ring as configured: ordered member cameras, optional outline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RingInput {
    pub id: String,
    pub name: String,
    /// 1 = innermost.
    pub level: u8,
    pub members: Vec<String>,
    /// `[lon, lat]` outline; derived from the members' positions, in order, when absent.
    pub polygon: Option<Vec<[f64; 2]>>,
}

/// Everything the model is built from.
#[derive(Debug, Clone, Default)]
pub struct GeoInputs {
    pub table: Option<DoriTable>,
    pub cameras: Vec<CamGeo>,
    pub roads: Vec<RoadWay>,
    pub cells: Vec<CellInput>,
    pub entrances: Vec<EntranceInput>,
    pub rings: Vec<RingInput>,
}
