//! A synthetic city for scale tests, benchmarks and `tianwang sim-city`: a square street grid,
//! cameras of every kind scattered along the streets with plausible lenses and resolutions,
//! entrances, a generated three-level grid and two checkpoint rings. Deterministic for a given
//! seed. Geography's own tests build on it, so it lives here (below `sim`, which re-exports it).

use crate::config::{CameraKind, CameraStatus, DoriTable, Owner};
use crate::geo::grid::square_grid;
use crate::geo::input::{EntranceInput, Oneway, RoadWay};
use crate::geo::model::{CamGeo, GeoInputs, RingInput};
use crate::geo::proj::{LocalProj, Xy};

/// What to generate.
#[derive(Debug, Clone)]
pub struct CitySpec {
    /// Centre `[lon, lat]`.
    pub centre: [f64; 2],
    /// Streets in each direction.
    pub streets: usize,
    pub spacing_m: f64,
    /// Road segments per block edge (a way's points between crossings).
    pub segs_per_block: usize,
    pub cameras: usize,
    pub entrances: usize,
    /// Share of cameras that are offline.
    pub offline_share: f64,
    pub seed: u64,
}

impl CitySpec {
    /// The reference city's camera count (Zhengzhou 2009: 76,164) on ≥ 100,000 road segments.
    pub fn reference() -> CitySpec {
        CitySpec {
            centre: [113.665, 34.757],
            streets: 160,
            spacing_m: 100.0,
            segs_per_block: 2,
            cameras: 76_164,
            entrances: 5_000,
            offline_share: 0.05,
            seed: 2009,
        }
    }
}

/// xorshift64*: small, fast, deterministic; the statistical quality a scatter of cameras (or of
/// test cases) needs. The seed must not be 0.
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in 0..n (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }
}

/// Generates the city.
pub fn generate(spec: &CitySpec) -> GeoInputs {
    let proj = LocalProj::new(spec.centre[0], spec.centre[1]);
    let mut rng = Rng(spec.seed.max(1));
    let half = (spec.streets as f64 - 1.0) * spec.spacing_m / 2.0;
    let line = |i: usize| -half + i as f64 * spec.spacing_m;
    let steps = (spec.streets - 1) * spec.segs_per_block;
    let step = spec.spacing_m / spec.segs_per_block as f64;
    let mut roads = Vec::with_capacity(2 * spec.streets);
    for i in 0..spec.streets {
        let c = line(i);
        let class = if i % 10 == 0 {
            "primary"
        } else if i % 5 == 0 {
            "secondary"
        } else {
            "residential"
        };
        for (dir, id) in [(0, "ew"), (1, "ns")] {
            let coords = (0..=steps)
                .map(|k| {
                    let t = -half + k as f64 * step;
                    proj.inv(if dir == 0 { Xy::new(t, c) } else { Xy::new(c, t) })
                })
                .collect();
            roads.push(RoadWay {
                id: format!("{id}{i}"),
                name: Some(format!("{} street {i}", if dir == 0 { "East-west" } else { "North-south" })),
                class: class.into(),
                oneway: Oneway::No,
                coords,
                node_ids: None,
            });
        }
    }
    // A point `off` metres beside a random street, and the street's direction.
    let on_street = |rng: &mut Rng, off: f64| -> (Xy, f64) {
        let c = line(rng.below(spec.streets));
        let t = -half + rng.unit() * 2.0 * half;
        let side = if rng.unit() < 0.5 { -off } else { off };
        if rng.unit() < 0.5 { (Xy::new(t, c + side), 90.0) } else { (Xy::new(c + side, t), 0.0) }
    };
    let kinds = [
        (CameraKind::Street, 0.40, Owner::Public),
        (CameraKind::Compound, 0.25, Owner::Enterprise),
        (CameraKind::Entrance, 0.15, Owner::Enterprise),
        (CameraKind::RentalHousing, 0.07, Owner::Resident),
        (CameraKind::Household, 0.05, Owner::Resident),
        (CameraKind::Shop, 0.05, Owner::Enterprise),
        (CameraKind::Checkpoint, 0.03, Owner::Public),
    ];
    let mut cameras = Vec::with_capacity(spec.cameras);
    for n in 0..spec.cameras {
        let off = 3.0 + rng.unit() * 5.0;
        let (p, street_dir) = on_street(&mut rng, off);
        let mut u = rng.unit();
        let (kind, owner) = kinds
            .iter()
            .find(|(_, share, _)| {
                u -= share;
                u < 0.0
            })
            .map(|(k, _, o)| (*k, *o))
            .unwrap_or((CameraKind::Street, Owner::Public));
        let along = street_dir + if rng.unit() < 0.5 { 0.0 } else { 180.0 };
        let bearing = if kind == CameraKind::Checkpoint { along } else { along + (rng.unit() - 0.5) * 120.0 };
        let (w, h) = match rng.below(10) {
            0..=6 => (1920, 1080),
            7 | 8 => (1280, 720),
            _ => (2560, 1440),
        };
        let [lon, lat] = proj.inv(p);
        cameras.push(CamGeo {
            id: format!("cam{n:06}"),
            name: format!("camera {n}"),
            kind,
            owner,
            status: if rng.unit() < spec.offline_share { CameraStatus::Offline } else { CameraStatus::Online },
            grid_cell: None,
            lon,
            lat,
            bearing_deg: bearing.rem_euclid(360.0),
            hfov_deg: if kind == CameraKind::Checkpoint { 30.0 } else { [60.0, 90.0, 110.0][rng.below(3)] },
            width_px: w,
            height_px: h,
            mounting_height_m: 4.0 + rng.unit() * 4.0,
        });
    }
    let entrances = (0..spec.entrances)
        .map(|n| {
            let (p, _) = on_street(&mut rng, 12.0);
            let [lon, lat] = proj.inv(p);
            EntranceInput { id: format!("ent{n:05}"), name: format!("unit {n}"), road: None, lon, lat, grid_cell: None }
        })
        .collect();
    let pts: Vec<[f64; 2]> = [proj.inv(Xy::new(-half, -half)), proj.inv(Xy::new(half, half))].to_vec();
    let cells = square_grid(&pts, 250.0, "");
    let checkpoints: Vec<(usize, Xy)> = cameras
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == CameraKind::Checkpoint)
        .map(|(i, c)| (i, proj.fwd(c.lon, c.lat)))
        .collect();
    let rings = [(1u8, half * 0.25), (2, half * 0.6)]
        .iter()
        .map(|&(level, r)| {
            // The checkpoint nearest each of 16 points around a circle, in order.
            let members = (0..16)
                .filter_map(|k| {
                    let a = k as f64 * 22.5;
                    let target = Xy::from_bearing(a).scale(r);
                    checkpoints.iter().min_by(|x, y| x.1.dist(target).total_cmp(&y.1.dist(target)))
                })
                .map(|(i, _)| cameras[*i].id.clone())
                .collect::<Vec<_>>();
            let mut unique: Vec<String> = Vec::new();
            for m in members {
                if !unique.contains(&m) {
                    unique.push(m);
                }
            }
            let members = unique;
            RingInput { id: format!("ring{level}"), name: format!("ring {level}"), level, members, polygon: None }
        })
        .collect();
    GeoInputs { table: Some(DoriTable::Iec2014), cameras, roads, cells, entrances, rings }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_city_has_what_was_asked() {
        let spec = CitySpec { streets: 11, cameras: 500, entrances: 20, ..CitySpec::reference() };
        let inp = generate(&spec);
        assert_eq!(inp.cameras.len(), 500);
        assert_eq!(inp.roads.len(), 22);
        assert_eq!(inp.entrances.len(), 20);
        let segs: usize = inp.roads.iter().map(|r| r.coords.len() - 1).sum();
        assert_eq!(segs, 22 * 10 * 2);
        assert!(inp.cameras.iter().any(|c| c.kind == CameraKind::Checkpoint));
        assert_eq!(generate(&spec).cameras, inp.cameras, "deterministic");
    }
}
