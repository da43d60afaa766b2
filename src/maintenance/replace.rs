//! Replacement planning: cameras below HD (fewer than 720 lines) in service, each with the road
//! it sees at a DORI level and the part of it no other camera in service sees there — what the
//! city would lose if it were removed without a replacement. Biggest loss first.

use serde::Serialize;
use utoipa::ToSchema;

use crate::geo::coverage::{SectorIndex, complement, covered_within};
use crate::geo::dori::DoriLevel;
use crate::geo::fov;
use crate::geo::model::GeoModel;

/// One below-HD camera.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ReplacementCandidate {
    pub camera_id: String,
    pub name: String,
    pub kind: String,
    pub grid_cell: Option<String>,
    pub width_px: u32,
    pub height_px: u32,
    pub status: String,
    /// The DORI level the figures are for.
    pub level: DoriLevel,
    /// Metres of road this camera sees at `level`.
    pub seen_m: f64,
    /// Metres of road only this camera sees at `level`: lost if it went without a replacement.
    pub lost_m: f64,
}

/// A camera is HD from 1280×720 up.
pub fn is_sd(m: &GeoModel, i: usize) -> bool {
    !m.cameras[i].has_resolution((1280, 720))
}

/// Every below-HD camera in service with what its removal would lose at `level`.
pub fn candidates(m: &GeoModel, level: DoriLevel) -> Vec<ReplacementCandidate> {
    let idx = SectorIndex::new(m, level, |i| m.cameras[i].in_service());
    let mut out = Vec::new();
    for (i, c) in m.cameras.iter().enumerate() {
        if !c.in_service() || !is_sd(m, i) {
            continue;
        }
        let sector = &idx.sectors[i];
        let (mut seen, mut lost) = (0.0, 0.0);
        if !sector.is_empty() {
            let b = sector.bounds();
            for s in m.net.segs_in(b) {
                let (a, e) = m.net.ends(s);
                let mine = sector.clip_segment(a, e);
                if mine.is_empty() {
                    continue;
                }
                let len = ((e.x - a.x).powi(2) + (e.y - a.y).powi(2)).sqrt();
                let mut others: Vec<(f64, f64)> =
                    idx.clip(a, e).into_iter().filter(|(j, _)| *j != i).flat_map(|(_, v)| v).collect();
                fov::merge(&mut others);
                let free = complement(&others);
                for (t0, t1) in mine {
                    seen += (t1 - t0) * len;
                    lost += covered_within(&free, t0, t1) * len;
                }
            }
        }
        out.push(ReplacementCandidate {
            camera_id: c.id.clone(),
            name: c.name.clone(),
            kind: c.kind.as_str().into(),
            grid_cell: c.grid_cell.clone(),
            width_px: c.width_px,
            height_px: c.height_px,
            status: c.status.as_str().into(),
            level,
            seen_m: (seen * 10.0).round() / 10.0,
            lost_m: (lost * 10.0).round() / 10.0,
        });
    }
    out.sort_by(|a, b| b.lost_m.total_cmp(&a.lost_m).then(a.camera_id.cmp(&b.camera_id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CameraKind, CameraStatus, DoriTable, Owner};
    use crate::geo::input::{Oneway, RoadWay};
    use crate::geo::model::{CamGeo, GeoInputs};

    const LAT: f64 = 60.17;
    const LON: f64 = 24.94;

    /// Degrees of longitude for `m` metres east at `LAT`.
    fn east(m: f64) -> f64 {
        LON + m / (111_320.0 * LAT.to_radians().cos())
    }

    fn cam(id: &str, x_m: f64, w: u32, h: u32) -> CamGeo {
        CamGeo {
            id: id.into(),
            name: id.into(),
            kind: CameraKind::Street,
            owner: Owner::Public,
            status: CameraStatus::Online,
            grid_cell: None,
            lon: east(x_m),
            lat: LAT,
            bearing_deg: 90.0,
            hfov_deg: 60.0,
            width_px: w,
            height_px: h,
            mounting_height_m: 3.0,
        }
    }

    #[test]
    fn lost_road_is_what_no_other_camera_sees() {
        // A 300 m road running east; every camera looks east along it. An HD camera at 0 m, a
        // below-HD one at 50 m (partly inside the HD camera's view), one at 200 m (alone).
        let road = RoadWay {
            id: "r".into(),
            name: None,
            class: "primary".into(),
            oneway: Oneway::No,
            coords: vec![[LON, LAT], [east(300.0), LAT]],
            node_ids: None,
        };
        let cameras = vec![cam("hd", 0.0, 1920, 1080), cam("sd-a", 50.0, 704, 576), cam("sd-b", 200.0, 704, 576)];
        let m = GeoModel::build(GeoInputs {
            table: Some(DoriTable::Iec2014),
            cameras,
            roads: vec![road],
            ..Default::default()
        });
        let level = DoriLevel::Detect;
        let reach = |i: usize| m.cameras[i].sector(m.cam_pos[i], m.table, level).radius;
        let (hd, sd) = (reach(0), reach(1));
        assert!(hd > 50.0 && hd < 50.0 + sd, "the set-up needs overlap: HD reaches {hd} m, SD {sd} m");
        let c = candidates(&m, level);
        let ids: Vec<&str> = c.iter().map(|c| c.camera_id.as_str()).collect();
        assert_eq!(ids, ["sd-b", "sd-a"], "HD cameras are not candidates; the biggest loss first");
        // sd-b sees its reach of road alone; sd-a loses only what lies beyond the HD camera's reach.
        assert!((c[0].seen_m - sd).abs() < 0.2 && (c[0].lost_m - sd).abs() < 0.2, "{:?}", c[0]);
        assert!((c[1].seen_m - sd).abs() < 0.2, "{:?}", c[1]);
        assert!((c[1].lost_m - (50.0 + sd - hd)).abs() < 0.3, "{:?} (HD reach {hd})", c[1]);
    }
}
