//! Alarm linkage: the cameras that actually see a point (inside their field of view and range),
//! finest DORI level first — not merely the nearest ones.

use serde::Serialize;
use utoipa::ToSchema;

use super::coverage::StateFilter;
use super::dori::{self, DoriLevel};
use super::model::GeoModel;
use super::proj::Xy;

/// A camera that sees a point.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Seeing {
    pub camera_id: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    /// The finest level the camera reaches at the point.
    pub level: DoriLevel,
    pub distance_m: f64,
    /// Compass bearing from the camera to the point.
    pub bearing_deg: f64,
}

impl GeoModel {
    /// Cameras that see `p`, finest level first, then nearest.
    pub fn cameras_seeing(&self, p: Xy, states: StateFilter) -> Vec<Seeing> {
        let Some(idx) = &self.see_index else { return Vec::new() };
        let mut out: Vec<Seeing> = idx
            .near([p.x, p.y, p.x, p.y])
            .filter(|&i| self.counts(i, states) && idx.sectors[i].contains(p))
            .filter_map(|i| {
                let c = &self.cameras[i];
                let d = self.cam_pos[i].dist(p);
                let level = dori::best_level(self.table, c.width_px, c.hfov_deg, c.mounting_height_m, d)?;
                Some(Seeing {
                    camera_id: c.id.clone(),
                    name: c.name.clone(),
                    kind: c.kind.as_str().into(),
                    status: c.status.as_str().into(),
                    level,
                    distance_m: (d * 10.0).round() / 10.0,
                    bearing_deg: (p.minus(self.cam_pos[i]).bearing() * 10.0).round() / 10.0,
                })
            })
            .collect();
        out.sort_by(|a, b| b.level.cmp(&a.level).then(a.distance_m.total_cmp(&b.distance_m)));
        out
    }
}
