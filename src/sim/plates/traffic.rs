//! The road scene of a simulated checkpoint camera: vehicles, one at a time, driving towards it
//! with their plates growing as they approach, then empty road.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::degrade::add_noise;
use super::geometry::warp_masked;
use super::render::{PlateFont, render_plate_with};
use super::rgb::{Rgb, lerp_rgb};
use super::scenes::frame_factor;
use super::vehicles::{Sprite, VehicleLook, random_look, vehicle_sprite};
use crate::plate::PlateColor;

/// What a simulated checkpoint camera sees: vehicles, one at a time, driving towards it.
#[derive(Clone, Debug)]
pub struct TrafficSpec {
    pub width: u32,
    pub height: u32,
    pub fps: f32,
    /// Plates in the order the vehicles pass.
    pub vehicles: Vec<(String, PlateColor)>,
    /// How long each vehicle is in view.
    pub seconds_per_vehicle: f32,
    /// Empty road after each vehicle.
    pub gap_s: f32,
    pub seed: u64,
}

impl Default for TrafficSpec {
    fn default() -> Self {
        TrafficSpec {
            width: 1280,
            height: 720,
            fps: 10.0,
            vehicles: Vec::new(),
            seconds_per_vehicle: 3.0,
            gap_s: 1.0,
            seed: 0,
        }
    }
}

/// Plate width (440 mm plate) at the start and the end of a pass, at 1280×720.
const PASS_PLATE_PX: (f32, f32) = (120.0, 260.0);
/// Plate centre height (share of the frame height) at the start and the end of a pass.
const PASS_PLATE_Y: (f32, f32) = (0.30, 0.80);
/// The sprite's half-size copy is used below this scale of the full one.
const HALF_LEVEL_BELOW: f32 = 0.6;

struct SceneVehicle {
    look: VehicleLook,
    plate: Rgb,
    lane_offset_mm: f32,
}

/// Renders the frames of a [`TrafficSpec`]: a static road, and each vehicle in turn entering at
/// the top and growing as it approaches (plate 120 → 260 px wide at 1280×720) with constant speed
/// on the ground, then empty road for the gap.
pub struct TrafficScene {
    spec: TrafficSpec,
    background: Rgb,
    frame: Rgb,
    vehicles: Vec<SceneVehicle>,
    /// Full-size and half-size sprite of the vehicle now passing.
    current: Option<(usize, Sprite, Sprite)>,
    dirty: Option<(u32, u32, u32, u32)>,
    period: u64,
    visible: u64,
    /// Ground model: plate px width `p = slope · (y − horizon)` at plate-centre height `y`.
    slope: f32,
    horizon: f32,
    p_start: f32,
    p_end: f32,
    /// Frame index the vehicle list starts at (moved on by [`TrafficScene::restart`]).
    offset: u64,
    /// Draws the looks of vehicles added later.
    rng: StdRng,
}

impl TrafficScene {
    /// Prepares the road and renders every vehicle's plate once. Errs without the plate font.
    pub fn new(spec: TrafficSpec) -> Result<TrafficScene, String> {
        if spec.width < 16 || spec.height < 16 {
            return Err(format!("traffic scene {}x{} is too small", spec.width, spec.height));
        }
        if !(spec.fps.is_finite() && spec.fps > 0.0) {
            return Err(format!("traffic scene fps {}", spec.fps));
        }
        let font = PlateFont::system()?;
        let f = frame_factor(spec.width, spec.height);
        let (p_start, p_end) = (PASS_PLATE_PX.0 * f, PASS_PLATE_PX.1 * f);
        let hf = spec.height as f32;
        let (y0, y1) = (PASS_PLATE_Y.0 * hf, PASS_PLATE_Y.1 * hf);
        let slope = (p_end - p_start) / (y1 - y0);
        let horizon = y0 - p_start / slope;
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let mut vehicles = Vec::with_capacity(spec.vehicles.len());
        for (text, color) in &spec.vehicles {
            let plate = render_plate_with(font, text, *color, p_end / 440.0)?;
            vehicles.push(SceneVehicle {
                look: random_look(&mut rng),
                plate,
                lane_offset_mm: rng.gen_range(-300.0..300.0),
            });
        }
        let spv = spec.seconds_per_vehicle.max(0.0);
        let visible = ((spv * spec.fps).round() as u64).max(1);
        let period = visible + (spec.gap_s.max(0.0) * spec.fps).round() as u64;
        let background = road(&mut rng, spec.width, spec.height, slope, horizon, p_end);
        let mut scene = TrafficScene {
            frame: background.clone(),
            background,
            spec,
            vehicles,
            current: None,
            dirty: None,
            period,
            visible,
            slope,
            horizon,
            p_start,
            p_end,
            offset: 0,
            rng,
        };
        if !scene.vehicles.is_empty() {
            scene.ensure_sprite(0);
        }
        Ok(scene)
    }

    pub fn spec(&self) -> &TrafficSpec {
        &self.spec
    }

    /// Paints over the empty road (scenery: a gantry, signs); vehicles still pass in front of it.
    pub fn paint_background(&mut self, paint: impl FnOnce(&mut Rgb)) {
        paint(&mut self.background);
        self.frame = self.background.clone();
        self.dirty = None;
    }

    /// Replaces the vehicles still to come with `vehicles`, the first entering at frame
    /// `from_index` (a live scene keeps its road and gets new traffic as it is told of it).
    pub fn restart(&mut self, vehicles: &[(String, PlateColor)], from_index: u64) -> Result<(), String> {
        let font = PlateFont::system()?;
        let mut list = Vec::with_capacity(vehicles.len());
        for (text, color) in vehicles {
            let plate = render_plate_with(font, text, *color, self.p_end / 440.0)?;
            list.push(SceneVehicle {
                look: random_look(&mut self.rng),
                plate,
                lane_offset_mm: self.rng.gen_range(-300.0..300.0),
            });
        }
        self.spec.vehicles = vehicles.to_vec();
        self.vehicles = list;
        self.current = None;
        self.offset = from_index;
        if !self.vehicles.is_empty() {
            self.ensure_sprite(0);
        }
        Ok(())
    }

    /// The empty road.
    pub fn background(&self) -> &Rgb {
        &self.background
    }

    /// Frames `first..=last` in which vehicle `i` (list order) is in view.
    pub fn vehicle_window(&self, i: usize) -> (u64, u64) {
        let first = self.offset + i as u64 * self.period;
        (first, first + self.visible - 1)
    }

    /// Whether every vehicle has passed by frame `index` (the road stays empty from then on).
    pub fn finished(&self, index: u64) -> bool {
        match self.vehicles.len() {
            0 => true,
            n => index > self.vehicle_window(n - 1).1,
        }
    }

    /// The vehicle in view at frame `index` and how far along its pass it is (0–1).
    fn at(&self, index: u64) -> Option<(usize, f32)> {
        let index = index.checked_sub(self.offset)?;
        let i = (index / self.period) as usize;
        let k = index % self.period;
        if i >= self.vehicles.len() || k >= self.visible {
            return None;
        }
        let t = if self.visible > 1 { k as f32 / (self.visible - 1) as f32 } else { 0.0 };
        Some((i, t))
    }

    /// Plate width (440 mm) and plate centre at progress `t`.
    fn pose(&self, i: usize, t: f32) -> (f32, f32, f32) {
        // Constant speed on the ground: the distance, 1/p, moves linearly.
        let p = 1.0 / ((1.0 - t) / self.p_start + t / self.p_end);
        let y = self.horizon + p / self.slope;
        let x = self.spec.width as f32 / 2.0 + self.vehicles[i].lane_offset_mm * p / 440.0;
        (p, x, y)
    }

    /// Where the plate of the vehicle in view at frame `index` is: its index and corners
    /// (TL, TR, BR, BL), or `None` for empty road.
    pub fn plate_corners(&self, index: u64) -> Option<(usize, [(f32, f32); 4])> {
        let (i, t) = self.at(index)?;
        let (p, x, y) = self.pose(i, t);
        let k = p / self.p_end;
        let (hw, hh) = (self.vehicles[i].plate.w as f32 * k / 2.0, self.vehicles[i].plate.h as f32 * k / 2.0);
        Some((i, [(x - hw, y - hh), (x + hw, y - hh), (x + hw, y + hh), (x - hw, y + hh)]))
    }

    /// Makes the sprites of vehicle `i` the ones held (dropping the previous vehicle's).
    fn ensure_sprite(&mut self, i: usize) {
        if self.current.as_ref().is_some_and(|c| c.0 == i) {
            return;
        }
        self.current = None; // free the previous vehicle first
        let v = &self.vehicles[i];
        let size = (v.plate.w as f32, v.plate.h as f32);
        let full = vehicle_sprite(&v.look, Some(&v.plate), size, self.p_end / 440.0);
        let half = full.half();
        self.current = Some((i, full, half));
    }

    /// Renders frame `index`. Any index may be asked for in any order; the road is restored
    /// where the previous frame drew a vehicle, then the vehicle in view (if any) is drawn.
    pub fn frame(&mut self, index: u64) -> &Rgb {
        if let Some((x0, y0, x1, y1)) = self.dirty.take() {
            self.frame.copy_region_from(&self.background, x0, y0, x1, y1);
        }
        let Some((i, t)) = self.at(index) else {
            // Empty road costs nothing: build the next vehicle's sprite now rather than in the
            // first frame it appears in.
            let next = index.checked_sub(self.offset).map_or(0, |k| (k / self.period + 1) as usize);
            if next < self.vehicles.len() {
                self.ensure_sprite(next);
            }
            return &self.frame;
        };
        self.ensure_sprite(i);
        let (p, x, y) = self.pose(i, t);
        let Some((_, full, half)) = self.current.as_ref() else { return &self.frame };
        let mut k = p / self.p_end;
        let sprite = if k < HALF_LEVEL_BELOW {
            k *= 2.0;
            half
        } else {
            full
        };
        let pc = ((sprite.plate[0].0 + sprite.plate[2].0) / 2.0, (sprite.plate[0].1 + sprite.plate[2].1) / 2.0);
        let (w, h) = (sprite.img.w as f32, sprite.img.h as f32);
        let quad = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)].map(|(sx, sy)| (x + (sx - pc.0) * k, y + (sy - pc.1) * k));
        self.dirty = warp_masked(&mut self.frame, &sprite.img, Some(&sprite.alpha), quad);
        &self.frame
    }
}

/// The empty road seen by a checkpoint camera above its lane: asphalt with a little texture, the
/// lane's dashed edges, a neighbouring lane each side, kerbs and pavement.
fn road(rng: &mut impl Rng, w: u32, h: u32, slope: f32, horizon: f32, p_ref: f32) -> Rgb {
    let mut img = Rgb::new(w, h, [0, 0, 0]);
    let cx = w as f32 / 2.0;
    // Ground distance, arbitrary units scaled so the pass ends 6 m away.
    let dist_m = |p: f32| 6.0 * p_ref / p;
    let asphalt = [84, 86, 90];
    for y in 0..h {
        let yc = y as f32 + 0.5;
        let p = slope * (yc - horizon);
        if p <= 0.05 {
            let c = lerp_rgb([170, 185, 200], [200, 205, 210], y as f32 / h as f32);
            for x in 0..w {
                img.put(x, y, c);
            }
            continue;
        }
        let mm_px = p / 440.0;
        let z = dist_m(p);
        let haze = (z / 120.0).min(0.5);
        let dash = (z % 15.0) < 6.0;
        for x in 0..w {
            let lat = ((x as f32 + 0.5 - cx) / mm_px).abs();
            let mut c = if lat < 5250.0 {
                asphalt
            } else if lat < 5450.0 {
                [182, 182, 176]
            } else if lat < 8450.0 {
                if ((lat - 5450.0) % 600.0) < 20.0 || (z % 0.6) < 0.02 { [120, 118, 112] } else { [150, 148, 140] }
            } else {
                [96, 110, 84]
            };
            // Lane lines: dashed at ±1.75 m, solid edge lines at ±5.1 m, 15 cm wide.
            for (centre, solid) in [(1750.0, false), (5100.0, true)] {
                let d_px = (lat - centre).abs() * mm_px - 75.0 * mm_px;
                let cov = (0.5 - d_px).clamp(0.0, 1.0);
                if cov > 0.0 && (solid || dash) {
                    c = lerp_rgb(c, [228, 228, 222], cov);
                }
            }
            img.put(x, y, lerp_rgb(c, [175, 180, 186], haze));
        }
    }
    add_noise(&mut img, rng, 4.0);
    img
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::plates::render::has_font;

    #[test]
    fn traffic_scene_passes_vehicles_in_order() {
        if !has_font() {
            return;
        }
        let spec = TrafficSpec {
            vehicles: vec![("豫A12345".into(), PlateColor::Blue), ("京AD12345".into(), PlateColor::Green)],
            seed: 5,
            ..TrafficSpec::default()
        };
        let mut scene = TrafficScene::new(spec).unwrap();
        assert_eq!(scene.vehicle_window(0), (0, 29));
        assert_eq!(scene.vehicle_window(1), (40, 69));
        assert!(!scene.finished(69) && scene.finished(70));
        let bg = scene.background().clone();
        assert_eq!(scene.frame(35), &bg);
        assert_eq!(scene.frame(200), &bg);
        assert!(scene.plate_corners(35).is_none());
        let mut widths = Vec::new();
        for idx in [0, 15, 29, 40] {
            let (i, c) = scene.plate_corners(idx).unwrap();
            assert_eq!(i, (idx / 40) as usize);
            widths.push(c[1].0 - c[0].0);
            let f = scene.frame(idx).clone();
            assert_ne!(f, bg);
            for (x, y) in c {
                assert!(x >= 0.0 && y >= 0.0 && x <= 1280.0 && y <= 720.0, "{c:?}");
            }
            // The plate's middle is the plate, not the road.
            let (mx, ty) = ((c[0].0 + c[2].0) / 2.0, c[0].1 + 2.0);
            assert_ne!(f.get(mx as u32, ty as u32), bg.get(mx as u32, ty as u32));
        }
        assert!((widths[0] - 120.0).abs() < 2.0 && (widths[2] - 260.0).abs() < 2.0, "{widths:?}");
        assert!(widths[1] > widths[0] && widths[2] > widths[1]);
        // Green plates are 480 mm.
        assert!((widths[3] - 120.0 * 480.0 / 440.0).abs() < 2.0, "{widths:?}");
        // Returning to an empty-road frame restores the road exactly.
        scene.frame(20);
        assert_eq!(scene.frame(30), &bg);

        // Per-frame cost over a whole pass and its gap (the sprite was built in a gap frame).
        let (mut total, mut worst) = (0.0f64, 0.0f64);
        let (first, _) = scene.vehicle_window(1);
        for idx in first..first + 40 {
            let start = std::time::Instant::now();
            scene.frame(idx);
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            total += ms;
            worst = worst.max(ms);
        }
        eprintln!(
            "traffic scene 1280x720: {:.1} ms per frame on average, {worst:.1} ms at worst ({} build)",
            total / 40.0,
            if cfg!(debug_assertions) { "debug" } else { "release" }
        );
    }
}
