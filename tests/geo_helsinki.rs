//! Coverage over the real central-Helsinki extract: imported through the CLI into SQLite, a
//! generated grid, then the report must be consistent — covered + uncovered = total for every
//! road, every cell and overall; each grid level's cells add up to the whole network; the gaps
//! add up to the uncovered length.

use std::path::PathBuf;
use std::process::Command;

use tianwang::config::DoriTable;
use tianwang::geo::coverage::{CoverageQuery, StateFilter};
use tianwang::geo::{DoriLevel, GeoModel};
use tianwang::registry::Registry;

fn extract() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/fetched/Helsinki.osm.pbf");
    assert!(path.is_file(), "{} is missing: run `python3 scripts/fetch_models.py`", path.display());
    path
}

fn tianwang(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tianwang")).args(args).output().expect("run tianwang");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn helsinki_imports_and_its_coverage_report_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/h.db", dir.path().display());
    let pbf = extract();
    let (ok, out, err) = tianwang(&["import", "osm", pbf.to_str().unwrap(), "--db", &db]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("roads 2581") && out.contains("cameras 221"), "{out}");
    assert!(err.contains("100% read"), "progress is shown: {err}");
    // 102 cameras take their view from type=surveillance relations; 99 still have none.
    assert!(out.contains("fields of view from type=surveillance relations: 102 cameras"), "{out}");
    assert!(out.contains("without a direction (they cover nothing): 99 cameras"), "{out}");
    // Importing the same file again replaces, it does not duplicate.
    let (ok, out2, _) = tianwang(&["import", "osm", pbf.to_str().unwrap(), "--db", &db]);
    assert!(ok && out2.contains("roads 2581"), "{out2}");
    let (ok, out, err) = tianwang(&["generate-grid", "--square-m", "250", "--db", &db]);
    assert!(ok, "{out}\n{err}");

    // A file that is not a PBF: refused, named, nothing else touched.
    let bogus = dir.path().join("roads.pbf");
    std::fs::write(&bogus, b"this is not a protobuf").unwrap();
    let (ok, _, err) = tianwang(&["import", "osm", bogus.to_str().unwrap(), "--db", &db]);
    assert!(!ok && err.contains("roads.pbf"), "{err}");

    let reg = Registry::open(&db).await.unwrap();
    let inputs = reg.geo_inputs(DoriTable::Iec2014).await.unwrap();
    reg.close().await;
    assert_eq!((inputs.roads.len(), inputs.cameras.len()), (2581, 221));
    let m = GeoModel::build(inputs);
    for level in [DoriLevel::Monitor, DoriLevel::Detect, DoriLevel::Observe] {
        let cov = m.coverage(CoverageQuery { level, states: StateFilter::All });
        let r = cov.report(&m, &[]);
        let o = r.overall;
        assert!(close(o.total_m, m.net.total_length()), "{level}: {} vs {}", o.total_m, m.net.total_length());
        assert!(close(o.covered_m + o.uncovered_m, o.total_m));
        assert!(o.covered_m > 0.0 && o.uncovered_m > 0.0, "{level}: {o:?}");
        for road in &r.roads {
            let l = road.lengths;
            assert!(close(l.covered_m + l.uncovered_m, l.total_m) && l.covered_m <= l.total_m + 1e-9, "{}", road.id);
        }
        for lv in 1..=3u8 {
            let cells: Vec<_> = r.cells.iter().filter(|c| c.level == lv).collect();
            let total: f64 = cells.iter().map(|c| c.roads.total_m).sum();
            let covered: f64 = cells.iter().map(|c| c.roads.covered_m).sum();
            assert!(close(total, o.total_m), "level {lv}: cells hold {total} m of {} m", o.total_m);
            assert!(close(covered, o.covered_m), "level {lv}: cells cover {covered} m of {} m", o.covered_m);
            for c in cells {
                assert!(close(c.roads.covered_m + c.roads.uncovered_m, c.roads.total_m), "{}", c.id);
            }
        }
        let gaps = tianwang::geo::geojson_out::gaps(&m, &cov, 0.0);
        let gap_m: f64 =
            gaps["features"].as_array().unwrap().iter().map(|f| f["properties"]["length_m"].as_f64().unwrap()).sum();
        // Each gap's length is rounded to 0.1 m.
        let n = gaps["features"].as_array().unwrap().len() as f64;
        assert!(
            (gap_m - o.uncovered_m).abs() <= 0.05 * n + 1e-6,
            "{level}: gaps {gap_m} vs uncovered {}",
            o.uncovered_m
        );
        // The 221 cameras are counted once overall and in the level-1 cells together.
        assert_eq!(r.cameras.total, 221);
        let in_l1: usize = r.cells.iter().filter(|c| c.level == 1).map(|c| c.cameras.total).sum();
        assert_eq!(in_l1, 221);
    }

    let out_dir = dir.path().join("report");
    let (ok, out, err) = tianwang(&[
        "coverage",
        "report",
        "--level",
        "detect",
        "--states",
        "all",
        "--out",
        out_dir.to_str().unwrap(),
        "--db",
        &db,
    ]);
    assert!(ok, "{out}\n{err}");
    let roads_csv = std::fs::read_to_string(out_dir.join("roads.csv")).unwrap();
    assert_eq!(roads_csv.lines().count(), 2581 + 1);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap()).unwrap();
    let o = &summary["overall"];
    assert!(close(
        o["covered_m"].as_f64().unwrap() + o["uncovered_m"].as_f64().unwrap(),
        o["total_m"].as_f64().unwrap()
    ));
    for f in ["cells.csv", "gaps.geojson", "entrances.csv", "rings.json"] {
        assert!(out_dir.join(f).is_file(), "{f}");
    }
    let (ok, _, err) = tianwang(&["coverage", "report", "--level", "sharp", "--db", &db]);
    assert!(!ok && err.contains("--level") && err.contains("observe"), "{err}");
}
