//! `[map]` in site.toml: the map files imported into the registry.

use std::path::{Path, PathBuf};

use crate::config::{ConfigError, Fields, Loc, Source};

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

pub fn read_map(src: &Source, dir: &Path, errs: &mut Vec<ConfigError>) -> MapFiles {
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
