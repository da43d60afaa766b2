//! Imports into the registry: read a file with the parsers in [`super::import`], store what was
//! accepted in one transaction, report both.

use std::path::Path;

use serde::Serialize;

use super::grid::square_grid;
use super::import::osm::RelationView;
use super::import::{self, ImportError};
use super::input::{ImportBatch, Progress, Rejected};
use crate::registry::{Registry, RegistryError};

/// What to import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportKind {
    /// OpenStreetMap PBF: highway ways → roads, man_made=surveillance nodes → cameras.
    Osm,
    /// GeoJSON LineStrings → roads.
    Roads,
    /// GeoJSON Polygons → grid cells (three levels with parents).
    Cells,
    /// GeoJSON Points → entrances.
    Entrances,
    /// GeoJSON Points or CSV rows (by extension) → cameras without a stream.
    Cameras,
}

/// The outcome of one file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportSummary {
    pub file: String,
    pub roads: usize,
    pub cells: usize,
    pub entrances: usize,
    pub cameras: usize,
    pub rejected: Vec<Rejected>,
    /// OSM: cameras whose bearing and field of view come from a `type=surveillance` relation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub views_from_relations: Vec<RelationView>,
    /// OSM: cameras still without a direction (no tag, no usable relation, not all round), by id;
    /// they count but cover nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub without_direction: Vec<String>,
    /// OSM: surveillance relations, or parts of them, not used, and why (nothing refused).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub relation_problems: Vec<Rejected>,
}

impl ImportSummary {
    pub fn accepted(&self) -> usize {
        self.roads + self.cells + self.entrances + self.cameras
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    File(#[from] ImportError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{file}: {n} rows rejected and --strict given; nothing stored", n = .rejected.len())]
    Strict { file: String, rejected: Vec<Rejected> },
}

fn strict_check<T>(b: &ImportBatch<T>, strict: bool) -> Result<(), LoadError> {
    if strict && !b.rejected.is_empty() {
        return Err(LoadError::Strict { file: b.source.clone(), rejected: b.rejected.clone() });
    }
    Ok(())
}

/// Reads `path` as `kind` and stores what it holds. With `strict`, any rejected row refuses the
/// whole file. Either way the accepted rows of a file are stored together or not at all.
pub async fn import_file(
    reg: &Registry,
    kind: ImportKind,
    path: &Path,
    strict: bool,
    now_ms: i64,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<ImportSummary, LoadError> {
    let file = path.display().to_string();
    let source =
        format!("import:{}", path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or(file.clone()));
    let mut s = ImportSummary { file: file.clone(), ..Default::default() };
    match kind {
        ImportKind::Osm => {
            let osm = import::read_osm(path, progress)?;
            strict_check(&osm.roads, strict)?;
            strict_check(&osm.cameras, strict)?;
            s.rejected.extend(osm.roads.rejected.iter().cloned());
            s.rejected.extend(osm.cameras.rejected.iter().cloned());
            let (roads, cams, rej) =
                reg.store_map(&osm.roads.accepted, &osm.cameras.accepted, &file_name(path), now_ms).await?;
            (s.roads, s.cameras) = (roads, cams);
            s.rejected.extend(rej);
            s.views_from_relations = osm.views.from_relations;
            s.without_direction = osm.views.without_direction;
            s.relation_problems = osm.views.problems;
        }
        ImportKind::Roads => {
            let b = import::read_roads_geojson(path)?;
            strict_check(&b, strict)?;
            s.roads = reg.store_roads(&b.accepted, &source, now_ms).await?;
            s.rejected = b.rejected;
        }
        ImportKind::Cells => {
            let b = import::read_cells_geojson(path)?;
            strict_check(&b, strict)?;
            let (n, rej) = reg.store_cells(&b.accepted, &source, now_ms).await?;
            s.cells = n;
            s.rejected = b.rejected;
            s.rejected.extend(rej);
        }
        ImportKind::Entrances => {
            let b = import::read_entrances_geojson(path)?;
            strict_check(&b, strict)?;
            s.entrances = reg.store_entrances(&b.accepted, &source, now_ms).await?;
            s.rejected = b.rejected;
        }
        ImportKind::Cameras => {
            let csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
            let b = if csv { import::read_cameras_csv(path)? } else { import::read_cameras_geojson(path)? };
            strict_check(&b, strict)?;
            let (n, rej) = reg.store_imported_cameras(&b.accepted, &file_name(path), now_ms).await?;
            s.cameras = n;
            s.rejected = b.rejected;
            s.rejected.extend(rej);
        }
    }
    Ok(s)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

/// Generates square grid cells over the stored roads and cameras (when no grid was imported).
pub async fn generate_grid(reg: &Registry, base_m: f64, now_ms: i64) -> Result<ImportSummary, LoadError> {
    let inputs = reg.geo_inputs(crate::config::DoriTable::Iec2014).await?;
    let mut pts: Vec<[f64; 2]> = inputs.roads.iter().flat_map(|r| r.coords.iter().copied()).collect();
    pts.extend(inputs.cameras.iter().map(|c| [c.lon, c.lat]));
    let cells = square_grid(&pts, base_m, "");
    let (n, rejected) = reg.store_cells(&cells, "generated", now_ms).await?;
    Ok(ImportSummary { file: format!("(generated squares of {base_m} m)"), cells: n, rejected, ..Default::default() })
}

/// Imports the map files a configuration names (`[map]` in site.toml). Rejected rows are
/// returned in the summaries (and logged by the caller); a file that cannot be read is an error.
pub async fn import_map(
    reg: &Registry,
    map: &super::config::MapFiles,
    now_ms: i64,
) -> Result<Vec<ImportSummary>, LoadError> {
    let mut out = Vec::new();
    let jobs = map
        .roads
        .iter()
        .map(|p| {
            let pbf = p.extension().is_some_and(|e| e.eq_ignore_ascii_case("pbf"));
            (if pbf { ImportKind::Osm } else { ImportKind::Roads }, p)
        })
        .chain(map.cells.iter().map(|p| (ImportKind::Cells, p)))
        .chain(map.entrances.iter().map(|p| (ImportKind::Entrances, p)))
        .chain(map.cameras.iter().map(|p| (ImportKind::Cameras, p)));
    for (kind, path) in jobs {
        out.push(import_file(reg, kind, path, false, now_ms, &mut |_| {}).await?);
    }
    Ok(out)
}
