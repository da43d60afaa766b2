//! A patrol unit's recorded track from a file, for import or replay: GPX (1.0 and 1.1: every
//! `trkpt`, and `rtept`/`wpt` with a time, their `<time>`; speed and course from GPX 1.0's
//! `<speed>`/`<course>` or the Garmin `TrackPointExtension`'s) or CSV (a header naming `time`
//! (RFC 3339) or `at_ms`, `lon`, `lat`, and optionally `speed_mps`, `heading_deg`,
//! `accuracy_m`). Each point that cannot be read is refused with its place and why; the others
//! come back in file order. Whether a point's time and values are acceptable to the registry is
//! the registry's check (`Fix::check`), made when they are stored.

use std::path::Path;

use super::{ImportError, check_lat, check_lon, display, read_text};
use crate::registry::Fix;

/// The points of a track file, and those refused.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Track {
    pub fixes: Vec<Fix>,
    /// `(where, why)`: "trkpt 12" or "line 7", and the reason.
    pub refused: Vec<(String, String)>,
}

/// Reads a track: GPX when the file starts (after whitespace) with `<`, else CSV.
pub fn read_track(path: &Path) -> Result<Track, ImportError> {
    let text = read_text(path)?;
    if text.trim_start().starts_with('<') { gpx(path, &text) } else { csv(path, &text) }
}

fn time_ms(s: &str) -> Result<i64, String> {
    let t: jiff::Timestamp =
        s.trim().parse().map_err(|e| format!("time {:?} is not an RFC 3339 time ({e})", trunc(s)))?;
    Ok(t.as_millisecond())
}

fn trunc(s: &str) -> String {
    s.chars().take(40).collect()
}

fn number(what: &str, s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("{what} {:?} is not a number", trunc(s)))?;
    if v.is_finite() { Ok(v) } else { Err(format!("{what} {v} is not finite")) }
}

fn gpx(path: &Path, text: &str) -> Result<Track, ImportError> {
    let opts = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: 50_000_000, ..Default::default() };
    let doc = roxmltree::Document::parse_with_options(text, opts)
        .map_err(|e| ImportError::Read { path: display(path), detail: format!("not GPX (XML: {e})") })?;
    if doc.root_element().tag_name().name() != "gpx" {
        return Err(ImportError::Read {
            path: display(path),
            detail: format!("not GPX: the root element is <{}>", doc.root_element().tag_name().name()),
        });
    }
    let mut out = Track::default();
    let mut counts = std::collections::HashMap::new();
    for pt in doc.descendants().filter(|n| ["trkpt", "rtept", "wpt"].contains(&n.tag_name().name())) {
        let kind = pt.tag_name().name();
        let n = counts.entry(kind).or_insert(0usize);
        *n += 1;
        let at = format!("{kind} {n}");
        // The first descendant element of this point named `name`, any namespace.
        let child = |name: &str| pt.descendants().find(|c| c.is_element() && c.tag_name().name() == name);
        let time = child("time").and_then(|t| t.text());
        if kind != "trkpt" && time.is_none() {
            continue; // a waypoint without a time is a place, not a position
        }
        let read = || -> Result<Fix, String> {
            let attr = |a: &str| pt.attribute(a).ok_or_else(|| format!("no {a} attribute"));
            let lon = check_lon(number("lon", attr("lon")?)?)?;
            let lat = check_lat(number("lat", attr("lat")?)?)?;
            let at_ms = time_ms(time.ok_or("no <time>")?)?;
            let opt = |names: &[&str]| -> Result<Option<f64>, String> {
                match names.iter().find_map(|n| child(n).and_then(|c| c.text())) {
                    Some(t) => number(names[0], t).map(Some),
                    None => Ok(None),
                }
            };
            Ok(Fix {
                at_ms,
                lon,
                lat,
                speed_mps: opt(&["speed"])?,
                heading_deg: opt(&["course", "bearing"])?,
                accuracy_m: None,
            })
        };
        match read() {
            Ok(f) => out.fixes.push(f),
            Err(why) => out.refused.push((at, why)),
        }
    }
    Ok(out)
}

fn csv(path: &Path, text: &str) -> Result<Track, ImportError> {
    let mut rdr = ::csv::ReaderBuilder::new().trim(::csv::Trim::All).flexible(true).from_reader(text.as_bytes());
    let header = |detail: String| ImportError::CsvHeader { path: display(path), detail };
    let names: Vec<String> =
        rdr.headers().map_err(|e| header(e.to_string()))?.iter().map(|h| h.to_ascii_lowercase()).collect();
    let col = |alts: &[&str]| names.iter().position(|n| alts.contains(&n.as_str()));
    const KNOWN: &[&str] = &[
        "time",
        "at_ms",
        "lon",
        "lng",
        "longitude",
        "lat",
        "latitude",
        "speed_mps",
        "heading_deg",
        "course",
        "accuracy_m",
    ];
    if let Some(unknown) = names.iter().find(|n| !KNOWN.contains(&n.as_str())) {
        return Err(header(format!("unknown column {unknown:?}; columns are {}", KNOWN.join(", "))));
    }
    let (lon, lat) = match (col(&["lon", "lng", "longitude"]), col(&["lat", "latitude"])) {
        (Some(a), Some(b)) => (a, b),
        _ => return Err(header("needs lon and lat columns".into())),
    };
    let (time, at_ms) = (col(&["time"]), col(&["at_ms"]));
    if time.is_none() && at_ms.is_none() {
        return Err(header("needs a time (RFC 3339) or at_ms column".into()));
    }
    let (speed, heading, accuracy) = (col(&["speed_mps"]), col(&["heading_deg", "course"]), col(&["accuracy_m"]));
    let mut out = Track::default();
    for (i, rec) in rdr.records().enumerate() {
        let line = format!("line {}", i + 2);
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                out.refused.push((line, e.to_string()));
                continue;
            }
        };
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).filter(|v| !v.is_empty());
        let read = || -> Result<Fix, String> {
            let opt = |what: &str, c| get(c).map(|v| number(what, v)).transpose();
            let at_ms = match (get(time), get(at_ms)) {
                (Some(t), _) => time_ms(t)?,
                (None, Some(ms)) => {
                    ms.trim().parse().map_err(|_| format!("at_ms {:?} is not a whole number", trunc(ms)))?
                }
                (None, None) => return Err("no time".into()),
            };
            Ok(Fix {
                at_ms,
                lon: check_lon(number("lon", get(Some(lon)).ok_or("no lon")?)?)?,
                lat: check_lat(number("lat", get(Some(lat)).ok_or("no lat")?)?)?,
                speed_mps: opt("speed_mps", speed)?,
                heading_deg: opt("heading_deg", heading)?,
                accuracy_m: opt("accuracy_m", accuracy)?,
            })
        };
        match read() {
            Ok(f) => out.fixes.push(f),
            Err(why) => out.refused.push((line, why)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn gpx_points_with_speed_and_course_and_the_bad_ones_named() {
        let gpx = r#"<?xml version="1.0"?>
<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"
     xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v2">
  <wpt lat="34.75" lon="113.66"><name>station</name></wpt>
  <trk><trkseg>
    <trkpt lat="34.7501" lon="113.6601"><time>2026-12-07T02:00:00Z</time></trkpt>
    <trkpt lat="34.7502" lon="113.6602"><time>2026-12-07T10:00:05+08:00</time>
      <extensions><gpxtpx:TrackPointExtension><gpxtpx:speed>8.5</gpxtpx:speed><gpxtpx:course>90</gpxtpx:course></gpxtpx:TrackPointExtension></extensions></trkpt>
    <trkpt lat="95" lon="113.66"><time>2026-12-07T02:00:10Z</time></trkpt>
    <trkpt lat="34.75" lon="113.66"></trkpt>
    <trkpt lat="34.75" lon="113.66"><time>yesterday</time></trkpt>
  </trkseg></trk>
</gpx>"#;
        let (_d, p) = file("t.gpx", gpx);
        let t = read_track(&p).unwrap();
        let t0 = 1_796_608_800_000; // 2026-12-07T02:00:00Z
        assert_eq!(
            t.fixes,
            vec![
                Fix { at_ms: t0, lon: 113.6601, lat: 34.7501, speed_mps: None, heading_deg: None, accuracy_m: None },
                Fix {
                    at_ms: t0 + 5_000,
                    lon: 113.6602,
                    lat: 34.7502,
                    speed_mps: Some(8.5),
                    heading_deg: Some(90.0),
                    accuracy_m: None
                },
            ]
        );
        let places: Vec<&str> = t.refused.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(places, vec!["trkpt 3", "trkpt 4", "trkpt 5"], "{:?}", t.refused);
        assert!(t.refused[0].1.contains("latitude") && t.refused[1].1.contains("<time>"), "{:?}", t.refused);
        assert!(t.refused[2].1.contains("RFC 3339"));
        let (_d, p) = file("x.gpx", "<kml></kml>");
        assert!(read_track(&p).unwrap_err().to_string().contains("root element is <kml>"));
        let (_d, p) = file("y.gpx", "<gpx><trk>");
        assert!(read_track(&p).unwrap_err().to_string().contains("not GPX"));
    }

    #[test]
    fn csv_by_time_or_at_ms_with_optional_columns() {
        let (_d, p) = file(
            "t.csv",
            "time,lon,lat,speed_mps,heading_deg,accuracy_m\n\
             2026-12-07T02:00:00Z,113.66,34.75,,,\n\
             2026-12-07T02:00:05Z,113.661,34.751,8,180,5\n\
             2026-12-07T02:00:10Z,113.661,abc,,,\n\
             ,113.661,34.751,,,\n",
        );
        let t = read_track(&p).unwrap();
        assert_eq!(t.fixes.len(), 2);
        assert_eq!(t.fixes[1].speed_mps, Some(8.0));
        assert_eq!(t.fixes[1].heading_deg, Some(180.0));
        assert_eq!(t.fixes[1].accuracy_m, Some(5.0));
        assert_eq!(t.refused.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), vec!["line 4", "line 5"]);
        let (_d, p) = file("m.csv", "at_ms,longitude,latitude\n1796608800000,113.66,34.75\n");
        assert_eq!(read_track(&p).unwrap().fixes[0].at_ms, 1_796_608_800_000);
        for (bad, why) in [
            ("lon,lat\n1,2\n", "time"),
            ("time,lon\nx,1\n", "lon and lat"),
            ("time,lon,lat,colour\n", "unknown column \"colour\""),
        ] {
            let (_d, p) = file("b.csv", bad);
            let e = read_track(&p).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("b.csv"), "{bad}: {e}");
        }
    }
}
