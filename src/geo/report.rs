//! `tianwang coverage report`: the planners' report as files — a JSON summary, CSV per road and
//! per cell, the gaps as GeoJSON, entrance violations and ring states.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::coverage::{CoverageQuery, CoverageReport};
use super::entrance::{EntranceCheck, EntranceRule};
use super::geojson_out;
use super::model::GeoModel;
use super::rings::{GuardRule, RingState};

/// Everything the report holds, computed.
pub struct FullReport {
    pub coverage: CoverageReport,
    pub entrances: Vec<EntranceCheck>,
    pub rings: Vec<RingState>,
    pub gaps: serde_json::Value,
}

/// Computes the report.
pub fn compute(m: &GeoModel, q: CoverageQuery) -> FullReport {
    let entrances = m.check_entrances(&EntranceRule::default());
    let ok: Vec<bool> = entrances.iter().map(|e| e.compliant).collect();
    let cov = m.coverage(q);
    FullReport {
        coverage: cov.report(m, &ok),
        gaps: geojson_out::gaps(m, &cov, 1.0),
        entrances,
        rings: m.ring_states(&GuardRule::default()),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn pct(v: Option<f64>) -> String {
    v.map(|p| format!("{p:.1}")).unwrap_or_default()
}

/// Writes `summary.json`, `roads.csv`, `cells.csv`, `gaps.geojson`, `entrances.csv` and
/// `rings.json` into `dir` (created when missing). Returns the files written.
pub fn write(r: &FullReport, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    let mut put = |name: &str, bytes: Vec<u8>| -> std::io::Result<()> {
        let p = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::File::create(&tmp)?.write_all(&bytes)?;
        std::fs::rename(&tmp, &p)?;
        files.push(p);
        Ok(())
    };
    let c = &r.coverage;
    let summary = serde_json::json!({
        "query": c.query, "dori_table": c.dori_table, "overall": c.overall, "by_class": c.by_class,
        "cameras": c.cameras, "worst_cells": c.worst_cells.iter().take(20).collect::<Vec<_>>(),
        "entrances": r.entrances.len(), "entrances_compliant": r.entrances.iter().filter(|e| e.compliant).count(),
        "rings": r.rings.iter().map(|x| serde_json::json!({"id": x.id, "open": x.open, "down": x.down,
            "leaks": x.leaks.len()})).collect::<Vec<_>>(),
    });
    put("summary.json", serde_json::to_vec_pretty(&summary).unwrap_or_default())?;
    let mut roads = String::from("road_id,name,class,total_m,covered_m,uncovered_m,covered_pct\n");
    for x in &c.roads {
        let l = &x.lengths;
        roads += &format!(
            "{},{},{},{:.2},{:.2},{:.2},{}\n",
            csv_field(&x.id),
            csv_field(x.name.as_deref().unwrap_or("")),
            csv_field(&x.class),
            l.total_m,
            l.covered_m,
            l.uncovered_m,
            pct(l.covered_pct)
        );
    }
    put("roads.csv", roads.into_bytes())?;
    let mut cells = String::from(
        "cell_id,name,level,parent,road_m,covered_m,uncovered_m,covered_pct,cameras,online,entrances,entrances_compliant,rank\n",
    );
    for x in &c.cells {
        let rank = c.worst_cells.iter().position(|w| w == &x.id).map(|i| (i + 1).to_string()).unwrap_or_default();
        cells += &format!(
            "{},{},{},{},{:.2},{:.2},{:.2},{},{},{},{},{},{}\n",
            csv_field(&x.id),
            csv_field(&x.name),
            x.level,
            csv_field(x.parent.as_deref().unwrap_or("")),
            x.roads.total_m,
            x.roads.covered_m,
            x.roads.uncovered_m,
            pct(x.roads.covered_pct),
            x.cameras.total,
            x.cameras.by_state.get("online").copied().unwrap_or(0),
            x.entrances,
            x.entrances_compliant,
            rank
        );
    }
    put("cells.csv", cells.into_bytes())?;
    put("gaps.geojson", r.gaps.to_string().into_bytes())?;
    let mut ent = String::from("entrance_id,name,road,lon,lat,compliant,problems\n");
    for e in &r.entrances {
        ent += &format!(
            "{},{},{},{},{},{},{}\n",
            csv_field(&e.id),
            csv_field(&e.name),
            csv_field(e.road.as_deref().unwrap_or("")),
            e.lon,
            e.lat,
            e.compliant,
            csv_field(&e.problems.join("; "))
        );
    }
    put("entrances.csv", ent.into_bytes())?;
    put("rings.json", serde_json::to_vec_pretty(&r.rings).unwrap_or_default())?;
    Ok(files)
}
