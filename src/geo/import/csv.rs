//! Surveyed cameras from a CSV file with a header row.
//!
//! Required columns: `id`, `lon`, `lat`. Optional: `name`, `bearing_deg`, `hfov_deg`,
//! `resolution` (`WxH`) or `width_px` and `height_px`, `mounting_height_m`, `kind`, `owner`,
//! `grid_cell`, with the same defaults as the GeoJSON import. Any other column is an error, so a
//! misspelt column is not silently ignored. Rows are named `<path>:<line>`, the header being
//! line 1; an empty cell counts as absent.

use std::collections::HashMap;
use std::path::Path;

use ::csv::{ReaderBuilder, StringRecord, Trim};

use super::{ImportError, camera_from_fields, display, parse_lat, parse_lon};
use crate::geo::input::{CameraInput, ImportBatch, Rejected};

/// Columns a camera CSV must have.
pub const REQUIRED_COLUMNS: [&str; 3] = ["id", "lon", "lat"];
/// Columns a camera CSV may have besides the required ones.
pub const OPTIONAL_COLUMNS: [&str; 10] = [
    "name",
    "bearing_deg",
    "hfov_deg",
    "resolution",
    "width_px",
    "height_px",
    "mounting_height_m",
    "kind",
    "owner",
    "grid_cell",
];

/// Reads cameras from a CSV file (UTF-8, comma-separated, optional byte-order mark).
pub fn read_cameras_csv(path: &Path) -> Result<ImportBatch<CameraInput>, ImportError> {
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(Trim::All)
        .from_path(path)
        .map_err(|e| open_error(path, e))?;
    let mut records = reader.records();
    let header = match records.next() {
        None => return Err(header_error(path, "the file is empty; its first line must name the columns")),
        Some(Err(e)) => return Err(unreadable(path, e).err().unwrap_or_else(|| header_error(path, "not UTF-8 text"))),
        Some(Ok(record)) => Header::parse(&record).map_err(|detail| header_error(path, detail))?,
    };
    let mut batch = ImportBatch::new(display(path));
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for result in records {
        match result {
            Ok(record) => {
                let line = record.position().map_or(0, |p| p.line());
                match row(&header, &record, &mut first_line, line) {
                    Ok(camera) => batch.accepted.push(camera),
                    Err(reason) => batch.reject(format!("{}:{line}", display(path)), reason),
                }
            }
            Err(e) => batch.rejected.push(unreadable(path, e)?),
        }
    }
    Ok(batch)
}

/// A row the CSV reader could not read: rejected when it is not UTF-8 (or otherwise malformed),
/// an error when reading the file failed.
fn unreadable(path: &Path, e: ::csv::Error) -> Result<Rejected, ImportError> {
    let at = format!("{}:{}", display(path), e.position().map_or(0, |p| p.line()));
    match e.into_kind() {
        ::csv::ErrorKind::Io(io) => Err(ImportError::Read { path: display(path), detail: io.to_string() }),
        ::csv::ErrorKind::Utf8 { err, .. } => {
            Ok(Rejected { at, reason: format!("field {} is not UTF-8 text", err.field() + 1) })
        }
        other => Ok(Rejected { at, reason: format!("unreadable row ({other:?})") }),
    }
}

fn open_error(path: &Path, e: ::csv::Error) -> ImportError {
    match e.into_kind() {
        ::csv::ErrorKind::Io(source) => ImportError::Open { path: display(path), source },
        other => ImportError::Read { path: display(path), detail: format!("{other:?}") },
    }
}

fn header_error(path: &Path, detail: impl Into<String>) -> ImportError {
    ImportError::CsvHeader { path: display(path), detail: detail.into() }
}

/// The column index of each name in the header row.
struct Header {
    columns: HashMap<String, usize>,
    len: usize,
}

impl Header {
    fn parse(record: &StringRecord) -> Result<Header, String> {
        let mut columns = HashMap::new();
        let mut unknown = Vec::new();
        for (i, name) in record.iter().enumerate() {
            let name = name.trim_start_matches('\u{feff}').trim();
            if !REQUIRED_COLUMNS.contains(&name) && !OPTIONAL_COLUMNS.contains(&name) {
                unknown.push(format!("{name:?}"));
            } else if columns.insert(name.to_owned(), i).is_some() {
                return Err(format!("column {name:?} appears twice"));
            }
        }
        if !unknown.is_empty() {
            let accepted = [&REQUIRED_COLUMNS[..], &OPTIONAL_COLUMNS[..]].concat().join(", ");
            return Err(format!("unknown column(s) {}; the columns are {accepted}", unknown.join(", ")));
        }
        let missing: Vec<&str> = REQUIRED_COLUMNS.into_iter().filter(|c| !columns.contains_key(*c)).collect();
        if !missing.is_empty() {
            return Err(format!("missing required column(s) {}", missing.join(", ")));
        }
        Ok(Header { columns, len: record.len() })
    }

    /// A cell of `record` by column name; `None` when the column is absent or the cell empty.
    fn get(&self, record: &StringRecord, name: &str) -> Option<String> {
        let value = record.get(*self.columns.get(name)?)?.trim();
        (!value.is_empty()).then(|| value.to_owned())
    }
}

/// One camera row, or why it is refused.
fn row(
    header: &Header,
    record: &StringRecord,
    first_line: &mut HashMap<String, u64>,
    line: u64,
) -> Result<CameraInput, String> {
    if record.len() != header.len {
        return Err(format!("the row has {} fields, the header {}", record.len(), header.len));
    }
    let required = |name: &str| header.get(record, name).ok_or_else(|| format!("{name}: empty"));
    let id = required("id")?;
    let lon = parse_lon(&required("lon")?).map_err(|e| format!("lon: {e}"))?;
    let lat = parse_lat(&required("lat")?).map_err(|e| format!("lat: {e}"))?;
    if let Some(first) = first_line.get(&id) {
        return Err(format!("duplicate id {id:?}, first at line {first}"));
    }
    first_line.insert(id.clone(), line);
    camera_from_fields(id, lon, lat, &|name| Ok(header.get(record, name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CameraKind, Owner};

    fn write(text: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cams.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn read(text: &str) -> ImportBatch<CameraInput> {
        let (_dir, path) = write(text.as_bytes());
        read_cameras_csv(&path).unwrap()
    }

    fn header_err(text: &str) -> String {
        let (_dir, path) = write(text.as_bytes());
        let err = read_cameras_csv(&path).unwrap_err();
        assert!(matches!(err, ImportError::CsvHeader { .. }), "{err}");
        let message = err.to_string();
        assert!(message.starts_with(&format!("{}: bad CSV header: ", path.display())), "{message}");
        message
    }

    #[test]
    fn good_rows_with_defaults() {
        let batch = read(
            "\u{feff}id,lon,lat,name,bearing_deg,hfov_deg,resolution,mounting_height_m,kind,owner,grid_cell\n\
             c1, 24.94 ,60.17,Kamppi,45,70,1280x720,8,checkpoint,enterprise,A1a\n\
             c2,24.95,60.18,,,360,,,,,\n",
        );
        assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
        let c1 = &batch.accepted[0];
        assert_eq!((c1.id.as_str(), c1.name.as_str(), c1.lon, c1.lat), ("c1", "Kamppi", 24.94, 60.17));
        assert_eq!((c1.bearing_deg, c1.hfov_deg, c1.width_px, c1.height_px), (45.0, 70.0, 1280, 720));
        assert_eq!((c1.mounting_height_m, c1.kind, c1.owner), (8.0, CameraKind::Checkpoint, Owner::Enterprise));
        assert_eq!(c1.grid_cell.as_deref(), Some("A1a"));
        let c2 = &batch.accepted[1];
        assert_eq!((c2.name.as_str(), c2.bearing_deg, c2.hfov_deg, c2.width_px), ("c2", 0.0, 360.0, 1920));
        assert_eq!(
            (c2.mounting_height_m, c2.kind, c2.owner, c2.grid_cell.clone()),
            (6.0, CameraKind::Street, Owner::Public, None)
        );
    }

    #[test]
    fn bad_rows_name_line_and_column() {
        let batch = read(
            "id,lon,lat,bearing_deg,width_px,height_px\n\
             ok,24.9,60.1,10,640,480\n\
             a,24.9,91.2,10,,\n\
             b,NaN,60.1,10,,\n\
             c,inf,60.1,10,,\n\
             ,24.9,60.1,10,,\n\
             ok,24.9,60.1,10,,\n\
             e,24.9,60.1,,,\n\
             f,24.9,60.1,10,640,\n\
             g,24.9,60.1\n\
             h,24.9,60.1,ten,,\n",
        );
        assert_eq!(batch.accepted.len(), 1);
        assert_eq!((batch.accepted[0].width_px, batch.accepted[0].height_px), (640, 480));
        let got: Vec<String> = batch.rejected.iter().map(|r| format!("{}: {}", r.at, r.reason)).collect();
        let p = batch.source.clone();
        let expected = [
            format!("{p}:3: lat: \"91.2\" is not a latitude (-90..90)"),
            format!("{p}:4: lon: \"NaN\" is not a longitude (-180..180)"),
            format!("{p}:5: lon: \"inf\" is not a longitude (-180..180)"),
            format!("{p}:6: id: empty"),
            format!("{p}:7: duplicate id \"ok\", first at line 2"),
            format!("{p}:8: bearing_deg: missing; it is required unless hfov_deg is 360 (or 0)"),
            format!("{p}:9: height_px: missing; width_px needs height_px"),
            format!("{p}:10: the row has 3 fields, the header 6"),
            format!("{p}:11: bearing_deg: \"ten\" is not a number"),
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn header_errors() {
        let m = header_err("id,lon,lat,bearing,colour\n");
        assert!(m.contains("unknown column(s) \"bearing\", \"colour\"; the columns are id, lon, lat, name,"), "{m}");
        assert!(header_err("id,lon,name\n").ends_with("missing required column(s) lat"));
        assert!(header_err("id,lon,lat,lon\n").ends_with("column \"lon\" appears twice"));
        assert!(header_err("").ends_with("the file is empty; its first line must name the columns"));
    }

    #[test]
    fn file_errors_and_edge_cases() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_cameras_csv(&dir.path().join("none.csv")).unwrap_err();
        assert!(matches!(err, ImportError::Open { .. }) && err.to_string().contains("none.csv"), "{err}");
        let err = read_cameras_csv(dir.path()).unwrap_err();
        assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
        assert!(read("id,lon,lat\n").accepted.is_empty());
        let batch = read("id,lon,lat,hfov_deg\n\"multi\nline\",1,2,0\nx,1,2,0\n");
        assert_eq!(batch.accepted[0].id, "multi\nline");
        let (_dir, path) = write(b"id,lon,lat,hfov_deg\nx\xff,1,2,0\ny,1,2,0\n");
        let batch = read_cameras_csv(&path).unwrap();
        assert_eq!(batch.accepted.len(), 1);
        assert!(
            batch.rejected[0].at.ends_with("cams.csv:2") && batch.rejected[0].reason == "field 1 is not UTF-8 text",
            "{:?}",
            batch.rejected
        );
    }
}
