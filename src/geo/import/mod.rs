//! Import parsers: read an OSM PBF extract, a GeoJSON FeatureCollection or a CSV file and return
//! what they hold as [`ImportBatch`]es of the input types, with every refused element named with
//! where it is and why. A file that cannot be read at all is an [`ImportError`] naming the file.
//!
//! The parsers are pure: they read one file and touch nothing else. Nothing here panics on bad
//! input; coordinates must be finite, longitudes within -180..180 and latitudes within -90..90.

pub mod csv;
pub mod geojson;
pub mod osm;
pub mod track;

pub use self::csv::read_cameras_csv;
pub use self::geojson::{read_cameras_geojson, read_cells_geojson, read_entrances_geojson, read_roads_geojson};
pub use self::osm::{OsmImport, read_osm};

use std::path::Path;
use std::str::FromStr;

use crate::config::{CameraKind, Owner};
use crate::geo::input::CameraInput;

#[cfg(doc)]
use crate::geo::input::ImportBatch;

/// A file that could not be imported at all. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be opened (missing, unreadable, a directory).
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: std::io::Error },
    /// Reading failed part-way through.
    #[error("cannot read {path}: {detail}")]
    Read { path: String, detail: String },
    /// The file is not an OpenStreetMap PBF file, or is damaged.
    #[error("{path} is not a valid OSM PBF file: {detail}")]
    NotPbf { path: String, detail: String },
    /// The file is not a GeoJSON FeatureCollection.
    #[error("{path} is not a GeoJSON FeatureCollection: {detail}")]
    NotGeoJson { path: String, detail: String },
    /// The CSV header row is missing, lacks a required column or has one this import does not know.
    #[error("{path}: bad CSV header: {detail}")]
    CsvHeader { path: String, detail: String },
}

/// The file name as given, for [`ImportBatch::source`] and messages.
pub(crate) fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Reads a whole file as UTF-8 text, without a leading byte-order mark.
pub(crate) fn read_text(path: &Path) -> Result<String, ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Open { path: display(path), source })?;
    let text = String::from_utf8(bytes)
        .map_err(|e| ImportError::Read { path: display(path), detail: format!("not UTF-8 text ({e})") })?;
    Ok(text.strip_prefix('\u{feff}').map(str::to_owned).unwrap_or(text))
}

/// Checks a longitude in degrees: finite and within -180..180.
pub(crate) fn check_lon(lon: f64) -> Result<f64, String> {
    if lon.is_finite() && (-180.0..=180.0).contains(&lon) {
        Ok(lon)
    } else {
        Err(format!("{lon} is not a longitude (-180..180)"))
    }
}

/// Checks a latitude in degrees: finite and within -90..90.
pub(crate) fn check_lat(lat: f64) -> Result<f64, String> {
    if lat.is_finite() && (-90.0..=90.0).contains(&lat) {
        Ok(lat)
    } else {
        Err(format!("{lat} is not a latitude (-90..90)"))
    }
}

/// Parses a finite decimal number, naming the text when it is not one.
pub(crate) fn parse_number(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("{text:?} is not a number")),
    }
}

/// Parses a longitude given as text: `"200"` → `"200" is not a longitude (-180..180)`.
pub(crate) fn parse_lon(text: &str) -> Result<f64, String> {
    parse_number(text).and_then(check_lon).map_err(|_| format!("{text:?} is not a longitude (-180..180)"))
}

/// Parses a latitude given as text: `"91.2"` → `"91.2" is not a latitude (-90..90)`.
pub(crate) fn parse_lat(text: &str) -> Result<f64, String> {
    parse_number(text).and_then(check_lat).map_err(|_| format!("{text:?} is not a latitude (-90..90)"))
}

/// Parses a resolution written `WIDTHxHEIGHT` (`1280x720`, `1280 × 720`), both 1..=100000.
pub(crate) fn parse_resolution(text: &str) -> Option<(u32, u32)> {
    let lower = text.trim().to_ascii_lowercase();
    let (w, h) = lower.split_once('x').or_else(|| lower.split_once('×'))?;
    let valid = |s: &str| s.trim().parse::<u32>().ok().filter(|v| (1..=100_000).contains(v));
    Some((valid(w)?, valid(h)?))
}

/// Field of view of a camera from a survey file when the file gives none, in degrees.
pub const DEFAULT_HFOV_DEG: f64 = 90.0;
/// Image size assumed when a file gives none: HD 1920×1080.
pub const DEFAULT_RESOLUTION: (u32, u32) = (1920, 1080);
/// Mounting height of a camera from a survey file when the file gives none, in metres.
pub const DEFAULT_MOUNTING_HEIGHT_M: f64 = 6.0;

/// Reads one optional field of a camera row or feature: `Ok(None)` when absent or empty, `Err`
/// with a reason when the value is not text or a number.
pub(crate) type FieldGetter<'a> = &'a dyn Fn(&str) -> Result<Option<String>, String>;

/// Builds a camera from the optional fields shared by the CSV and GeoJSON imports (`name`,
/// `bearing_deg`, `hfov_deg`, `resolution` or `width_px` + `height_px`, `mounting_height_m`,
/// `kind`, `owner`, `grid_cell`), applying the documented defaults. Errors read
/// `field: what is wrong`.
pub(crate) fn camera_from_fields(id: String, lon: f64, lat: f64, get: FieldGetter) -> Result<CameraInput, String> {
    let hfov_deg = field(get, "hfov_deg", parse_hfov)?.unwrap_or(DEFAULT_HFOV_DEG);
    let bearing_deg = match field(get, "bearing_deg", parse_number)? {
        Some(b) => b.rem_euclid(360.0),
        None if hfov_deg == 0.0 || hfov_deg == 360.0 => 0.0,
        None => return Err("bearing_deg: missing; it is required unless hfov_deg is 360 (or 0)".into()),
    };
    let (width_px, height_px) = resolution_fields(get)?;
    let mounting_height_m = field(get, "mounting_height_m", parse_height)?.unwrap_or(DEFAULT_MOUNTING_HEIGHT_M);
    let kind = field(get, "kind", |s| CameraKind::from_str(s.trim()))?.unwrap_or(CameraKind::Street);
    let owner = field(get, "owner", |s| Owner::from_str(s.trim()))?.unwrap_or(Owner::Public);
    let name = get("name").map_err(|e| format!("name: {e}"))?.unwrap_or_else(|| id.clone());
    let grid_cell = get("grid_cell").map_err(|e| format!("grid_cell: {e}"))?;
    Ok(CameraInput {
        id,
        name,
        lon,
        lat,
        bearing_deg,
        hfov_deg,
        width_px,
        height_px,
        mounting_height_m,
        kind,
        owner,
        grid_cell,
    })
}

/// Reads and parses one optional field, prefixing any error with the field's name.
fn field<T>(get: FieldGetter, name: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>, String> {
    match get(name) {
        Ok(Some(text)) => parse(&text).map(Some).map_err(|e| format!("{name}: {e}")),
        Ok(None) => Ok(None),
        Err(e) => Err(format!("{name}: {e}")),
    }
}

fn parse_hfov(text: &str) -> Result<f64, String> {
    match parse_number(text) {
        Ok(v) if (0.0..=360.0).contains(&v) => Ok(v),
        _ => Err(format!("{text:?} is not a field of view (0..360 degrees)")),
    }
}

fn parse_height(text: &str) -> Result<f64, String> {
    match parse_number(text) {
        Ok(v) if v > 0.0 && v <= 1000.0 => Ok(v),
        _ => Err(format!("{text:?} is not a mounting height (above 0, up to 1000 m)")),
    }
}

fn parse_pixels(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(v) if (1..=100_000).contains(&v) => Ok(v),
        _ => Err(format!("{text:?} is not a pixel count (1..100000)")),
    }
}

/// `resolution` (`WxH`) or `width_px` with `height_px`, not both; HD when none is given.
fn resolution_fields(get: FieldGetter) -> Result<(u32, u32), String> {
    let bad = |s: &str| format!("{s:?} is not a resolution like 1920x1080");
    let res = field(get, "resolution", |s| parse_resolution(s).ok_or_else(|| bad(s)))?;
    let width = field(get, "width_px", parse_pixels)?;
    let height = field(get, "height_px", parse_pixels)?;
    match (res, width, height) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            Err("resolution: give either resolution or width_px and height_px, not both".into())
        }
        (Some(r), None, None) => Ok(r),
        (None, Some(w), Some(h)) => Ok((w, h)),
        (None, Some(_), None) => Err("height_px: missing; width_px needs height_px".into()),
        (None, None, Some(_)) => Err("width_px: missing; height_px needs width_px".into()),
        (None, None, None) => Ok(DEFAULT_RESOLUTION),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn getter(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Result<Option<String>, String> {
        move |k| Ok(pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn coordinates_are_checked() {
        assert_eq!(parse_lon("24.9"), Ok(24.9));
        assert_eq!(parse_lat("91.2").unwrap_err(), "\"91.2\" is not a latitude (-90..90)");
        assert_eq!(parse_lon("NaN").unwrap_err(), "\"NaN\" is not a longitude (-180..180)");
        assert_eq!(parse_lon("inf").unwrap_err(), "\"inf\" is not a longitude (-180..180)");
        assert!(check_lon(f64::NAN).is_err());
        assert!(check_lat(-90.0).is_ok());
        assert!(check_lon(180.5).is_err());
    }

    #[test]
    fn resolutions() {
        assert_eq!(parse_resolution("1280x720"), Some((1280, 720)));
        assert_eq!(parse_resolution(" 1280 × 720 "), Some((1280, 720)));
        assert_eq!(parse_resolution("4K"), None);
        assert_eq!(parse_resolution("0x720"), None);
    }

    #[test]
    fn camera_defaults_and_errors() {
        let cam = camera_from_fields("c1".into(), 24.9, 60.2, &getter(&[("bearing_deg", "-90")])).unwrap();
        assert_eq!((cam.bearing_deg, cam.hfov_deg), (270.0, DEFAULT_HFOV_DEG));
        assert_eq!((cam.width_px, cam.height_px, cam.mounting_height_m), (1920, 1080, 6.0));
        assert_eq!((cam.kind, cam.owner, cam.name.as_str()), (CameraKind::Street, Owner::Public, "c1"));
        let err = |pairs| camera_from_fields("c".into(), 0.0, 0.0, &getter(pairs)).unwrap_err();
        assert!(err(&[]).starts_with("bearing_deg: missing"));
        assert!(err(&[("hfov_deg", "400"), ("bearing_deg", "1")]).starts_with("hfov_deg: \"400\""));
        assert!(err(&[("bearing_deg", "1"), ("kind", "tank")]).starts_with("kind: unknown value \"tank\""));
        assert!(err(&[("bearing_deg", "1"), ("width_px", "640")]).starts_with("height_px: missing"));
        let ok = camera_from_fields("c".into(), 0.0, 0.0, &getter(&[("hfov_deg", "360")])).unwrap();
        assert_eq!(ok.bearing_deg, 0.0);
    }
}
