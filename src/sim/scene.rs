//! Live synthetic scenes for the in-process RTSP server: a checkpoint whose vehicles arrive as
//! they are pushed onto its queue (the demo city drives vehicles from checkpoint to checkpoint),
//! and a square where people walk (motion for street cameras). Both add a little sensor noise to
//! every frame, as a real camera does, so that quality diagnosis sees a live picture, not a frozen one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::plates::{Rgb, TrafficScene, TrafficSpec, add_noise};
use crate::plate::PlateColor;

/// What a simulated camera shows instead of a test pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum SimScene {
    /// A checkpoint lane: each vehicle pushed onto `queue` drives towards the camera (in view
    /// `seconds_per_vehicle`, then `gap_s` of empty road before the next).
    LiveTraffic { queue: TrafficQueue, seconds_per_vehicle: f32, gap_s: f32, seed: u64 },
    /// People walking across a paved square.
    Pedestrians { seed: u64 },
    /// A quality-test scene (`sim::quality`): a textured street with sensor noise and a walking
    /// figure, showing the picture fault `fault` holds (`SimServer::set_fault` switches it).
    Quality { seed: u64, fault: super::quality::FaultSwitch },
}

/// Vehicles waiting to enter a live checkpoint scene. Holds at most [`TrafficQueue::CAP`]: while no
/// client watches, nothing is consumed, and a returning viewer should not see a stale procession.
#[derive(Debug, Clone, Default)]
pub struct TrafficQueue(Arc<Mutex<VecDeque<(String, PlateColor)>>>);

impl PartialEq for TrafficQueue {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl TrafficQueue {
    pub const CAP: usize = 4;

    /// Queues a vehicle; the oldest waiting one is dropped when the queue is full.
    pub fn push(&self, plate: &str, color: PlateColor) {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= Self::CAP {
            q.pop_front();
        }
        q.push_back((plate.to_string(), color));
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn pop(&self) -> Option<(String, PlateColor)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
    }
}

/// Frames for an appsrc, in order, on demand.
pub trait FrameSource: Send {
    fn frame(&mut self, index: u64) -> &Rgb;
}

impl FrameSource for TrafficScene {
    fn frame(&mut self, index: u64) -> &Rgb {
        TrafficScene::frame(self, index)
    }
}

impl SimScene {
    /// A quality-test scene without a fault.
    pub fn quality(seed: u64) -> SimScene {
        SimScene::Quality { seed, fault: Default::default() }
    }

    /// The scene's frame source at `width`×`height` and `fps`.
    pub fn source(&self, width: u32, height: u32, fps: f32) -> Result<Box<dyn FrameSource>, String> {
        Ok(match self {
            SimScene::LiveTraffic { queue, seconds_per_vehicle, gap_s, seed } => {
                let spec = TrafficSpec {
                    width,
                    height,
                    fps,
                    vehicles: Vec::new(),
                    seconds_per_vehicle: *seconds_per_vehicle,
                    gap_s: *gap_s,
                    seed: *seed,
                };
                let mut scene = TrafficScene::new(spec)?;
                scene.paint_background(gantry);
                let out = scene.background().clone();
                Box::new(LiveTraffic { scene, queue: queue.clone(), out, noise: Noise::new(*seed) })
            }
            SimScene::Pedestrians { seed } => Box::new(Pedestrians::new(width, height, fps, *seed)?),
            SimScene::Quality { seed, fault } => Box::new(super::quality::QualitySource::new(
                super::quality::QualityScene::new(width, height, *seed)?,
                fault.clone(),
            )),
        })
    }
}

/// The checkpoint's gantry across the top of the picture, its posts and lane signs: what a real
/// checkpoint camera sees above the lane (and what gives its picture the contrast of a real one).
fn gantry(img: &mut Rgb) {
    let (w, h) = (img.w as f32, img.h as f32);
    img.fill_rect(0.0, 0.0, w, h * 0.07, [34, 36, 40], 1.0);
    img.fill_rect(0.0, h * 0.07, w, h * 0.085, [200, 200, 196], 1.0);
    img.fill_rect(0.0, 0.0, w * 0.035, h, [38, 40, 44], 1.0);
    img.fill_rect(w * 0.965, 0.0, w, h, [38, 40, 44], 1.0);
    for k in 0..3 {
        let x = w * (0.12 + 0.3 * k as f32);
        img.fill_rect(x, h * 0.01, x + w * 0.16, h * 0.06, [22, 90, 170], 1.0);
        img.fill_rect(x + w * 0.02, h * 0.025, x + w * 0.14, h * 0.045, [235, 235, 235], 1.0);
    }
}

/// Cheap per-frame sensor noise from a xorshift generator.
struct Noise(u32);

impl Noise {
    fn new(seed: u64) -> Self {
        Noise((seed as u32) | 1)
    }

    /// Uniform noise of ±3 grey levels (σ 2) on every byte, four bytes per random draw: a live
    /// sensor's frames never repeat, even where nothing moves.
    fn apply(&mut self, data: &mut [u8]) {
        let mut s = self.0;
        for chunk in data.chunks_mut(4) {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            for (k, v) in chunk.iter_mut().enumerate() {
                let r = ((s >> (8 * k)) & 0xff) % 7;
                *v = v.saturating_add_signed(r as i8 - 3);
            }
        }
        self.0 = s;
    }
}

struct LiveTraffic {
    scene: TrafficScene,
    queue: TrafficQueue,
    out: Rgb,
    noise: Noise,
}

impl FrameSource for LiveTraffic {
    fn frame(&mut self, index: u64) -> &Rgb {
        if self.scene.finished(index)
            && let Some(v) = self.queue.pop()
            && let Err(e) = self.scene.restart(std::slice::from_ref(&v), index)
        {
            tracing::error!(error = %e, plate = %v.0, "simulated checkpoint: cannot show a vehicle");
        }
        let f = self.scene.frame(index);
        self.out.data.copy_from_slice(&f.data);
        self.noise.apply(&mut self.out.data);
        &self.out
    }
}

/// One person walking across the square.
struct Walker {
    x: f32,
    /// Feet, as a share of the height (further away is higher up and smaller).
    y: f32,
    /// Pixels per second (negative: walking left).
    vx: f32,
    shirt: [u8; 3],
    trousers: [u8; 3],
    phase: f32,
}

/// A paved square seen from a pole, with people crossing it at walking pace.
pub struct Pedestrians {
    background: Rgb,
    frame: Rgb,
    walkers: Vec<Walker>,
    rng: StdRng,
    fps: f32,
    last: Option<u64>,
    noise: Noise,
}

impl Pedestrians {
    pub fn new(w: u32, h: u32, fps: f32, seed: u64) -> Result<Self, String> {
        if w < 32 || h < 32 || !(fps.is_finite() && fps > 0.0) {
            return Err(format!("pedestrian scene {w}x{h} at {fps} fps"));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut bg = Rgb::new(w, h, [0, 0, 0]);
        bg.vertical_gradient([150, 150, 146], [196, 188, 176]);
        let (wf, hf) = (w as f32, h as f32);
        // Paving joints, closer together towards the top (further away).
        let mut y = hf * 0.26;
        while y < hf {
            bg.fill_rect(0.0, y, wf, y + 1.0, [104, 100, 94], 0.7);
            y += 4.0 + 14.0 * (y / hf);
        }
        for k in 0..16 {
            let x = wf * k as f32 / 16.0;
            bg.fill_rect(x, hf * 0.26, x + 1.0, hf, [104, 100, 94], 0.5);
        }
        // A road along the top with its centre line, the kerb, planters and their shadows.
        bg.fill_rect(0.0, 0.0, wf, hf * 0.24, [52, 54, 58], 1.0);
        bg.fill_rect(0.0, hf * 0.11, wf, hf * 0.125, [236, 236, 230], 0.9);
        bg.fill_rect(0.0, hf * 0.24, wf, hf * 0.26, [214, 214, 208], 1.0);
        for k in 0..4 {
            let x = wf * (0.1 + 0.25 * k as f32);
            bg.fill_rect(x, hf * 0.30, x + wf * 0.09, hf * 0.40, [44, 86, 40], 1.0);
            bg.fill_rect(x, hf * 0.40, x + wf * 0.09, hf * 0.43, [70, 64, 56], 1.0);
        }
        add_noise(&mut bg, &mut rng, 5.0);
        let frame = bg.clone();
        let mut s =
            Pedestrians { background: bg, frame, walkers: Vec::new(), rng, fps, last: None, noise: Noise::new(seed) };
        for _ in 0..4 {
            let mut p = s.spawn();
            p.x = s.rng.gen_range(0.0..wf);
            s.walkers.push(p);
        }
        Ok(s)
    }

    fn spawn(&mut self) -> Walker {
        let w = self.background.w as f32;
        let left = self.rng.gen_bool(0.5);
        let y = self.rng.gen_range(0.40..0.95);
        let speed = self.rng.gen_range(0.10..0.22) * w * (0.5 + y);
        let palette = [[200, 40, 40], [40, 90, 200], [230, 200, 60], [240, 240, 240], [60, 160, 90], [150, 60, 160]];
        Walker {
            x: if left { -10.0 } else { w + 10.0 },
            y,
            vx: if left { speed } else { -speed },
            shirt: palette[self.rng.gen_range(0..palette.len())],
            trousers: [[40, 40, 48], [70, 70, 90], [90, 70, 50]][self.rng.gen_range(0..3)],
            phase: self.rng.gen_range(0.0..std::f32::consts::TAU),
        }
    }

    fn step(&mut self, dt: f32) {
        let w = self.background.w as f32;
        for p in &mut self.walkers {
            p.x += p.vx * dt;
            p.phase += dt * 8.0;
        }
        let gone = self.walkers.iter().filter(|p| p.x < -20.0 || p.x > w + 20.0).count();
        self.walkers.retain(|p| (-20.0..=w + 20.0).contains(&p.x));
        for _ in 0..gone {
            let p = self.spawn();
            self.walkers.push(p);
        }
        // Nearer people are drawn last (in front).
        self.walkers.sort_by(|a, b| a.y.total_cmp(&b.y));
    }

    fn draw(&mut self) {
        self.frame.data.copy_from_slice(&self.background.data);
        let h = self.background.h as f32;
        for p in &self.walkers {
            let feet = p.y * h;
            let tall = h * (0.10 + 0.22 * p.y);
            let half = tall * 0.16;
            let swing = p.phase.sin() * half * 0.8;
            let hip = feet - tall * 0.45;
            let f = &mut self.frame;
            f.fill_rect(p.x - half * 0.9 + swing, hip, p.x - half * 0.1 + swing, feet, p.trousers, 1.0);
            f.fill_rect(p.x + half * 0.1 - swing, hip, p.x + half * 0.9 - swing, feet, p.trousers, 1.0);
            f.fill_rect(p.x - half, feet - tall * 0.82, p.x + half, hip + 1.0, p.shirt, 1.0);
            let head = tall * 0.09;
            f.fill_rect(p.x - head, feet - tall, p.x + head, feet - tall * 0.82, [214, 176, 142], 1.0);
            // Shadow.
            f.fill_rect(p.x - half * 1.4, feet, p.x + half * 1.8, feet + tall * 0.04, [60, 60, 60], 0.35);
        }
    }
}

impl FrameSource for Pedestrians {
    fn frame(&mut self, index: u64) -> &Rgb {
        let dt = match self.last {
            Some(l) if index > l => (index - l) as f32 / self.fps,
            _ => 0.0,
        };
        self.last = Some(index);
        self.step(dt);
        self.draw();
        self.noise.apply(&mut self.frame.data);
        &self.frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_move_and_no_two_frames_are_identical() {
        let mut s = Pedestrians::new(320, 180, 5.0, 1).unwrap();
        let a = s.frame(0).data.clone();
        let b = s.frame(1).data.clone();
        let changed = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        // Noise touches a fifth of the bytes; people moving change more in places.
        assert!(changed > a.len() / 10, "{changed} of {} bytes changed", a.len());
        let far = s.frame(50).data.clone();
        let big = a.iter().zip(&far).filter(|(x, y)| x.abs_diff(**y) > 30).count();
        assert!(big > 100, "people moved: {big} bytes differ a lot");
    }

    fn as_frame(img: &Rgb) -> crate::ingest::Frame {
        crate::ingest::Frame {
            camera: "c".into(),
            captured_ms: 0,
            pts_ns: None,
            width: img.w,
            height: img.h,
            format: crate::ingest::PixelFormat::Rgb24,
            data: img.data.clone(),
        }
    }

    /// What a `street` camera delivers: the Y plane, in the limited range (16–235) of I420.
    fn as_grey(img: &Rgb) -> crate::ingest::Frame {
        let data = img
            .data
            .chunks(3)
            .map(|p| {
                let l = 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]);
                (16.0 + l * 219.0 / 255.0).round() as u8
            })
            .collect();
        crate::ingest::Frame { format: crate::ingest::PixelFormat::Gray8, data, ..as_frame(img) }
    }

    /// Standard deviation of the grey level (what quality diagnosis calls contrast).
    fn contrast(f: &crate::ingest::Frame) -> f32 {
        let grey: Vec<f32> = match f.format {
            crate::ingest::PixelFormat::Gray8 => f.data.iter().map(|&v| f32::from(v)).collect(),
            crate::ingest::PixelFormat::Rgb24 => f
                .data
                .chunks(3)
                .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
                .collect(),
        };
        let mean = grey.iter().sum::<f32>() / grey.len() as f32;
        (grey.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / grey.len() as f32).sqrt()
    }

    /// Quality diagnosis finds nothing wrong with either scene (a frozen empty road or a
    /// low-contrast square would raise faults on every demo camera).
    #[test]
    fn quality_diagnosis_finds_the_scenes_healthy() {
        use crate::maintenance::vqd::{CameraVqd, VqdParams};
        for grey in [false, true] {
            let mut people = Pedestrians::new(320, 180, 5.0, 3).unwrap();
            let mut vqd = CameraVqd::new(VqdParams::default());
            let mut changes = Vec::new();
            for k in 0..12 {
                let img = people.frame(k * 25);
                changes.extend(vqd.sample(&if grey { as_grey(img) } else { as_frame(img) }));
            }
            assert!(vqd.active().is_empty(), "pedestrians (grey {grey}): {changes:?}");
            // Well clear of the low-contrast threshold (25): encoding softens the picture a little.
            let f = if grey { as_grey(people.frame(400)) } else { as_frame(people.frame(400)) };
            let c = contrast(&f);
            assert!(c > 35.0, "grey {grey}: contrast {c}");
        }
        let scene =
            SimScene::LiveTraffic { queue: TrafficQueue::default(), seconds_per_vehicle: 3.0, gap_s: 1.0, seed: 1 };
        // Needs the plate font (fonts-wqy-microhei, installed by scripts/setup.sh).
        let mut road = scene.source(320, 180, 5.0).unwrap();
        let mut vqd = CameraVqd::new(VqdParams::default());
        let mut changes = Vec::new();
        for k in 0..12 {
            changes.extend(vqd.sample(&as_frame(road.frame(k * 25))));
        }
        assert!(vqd.active().is_empty(), "empty road: {changes:?}");
    }

    #[test]
    fn queue_is_bounded_and_shared() {
        let q = TrafficQueue::default();
        let q2 = q.clone();
        assert_eq!(q, q2);
        assert_ne!(q, TrafficQueue::default());
        for i in 0..10 {
            q.push(&format!("豫A1234{i}"), PlateColor::Blue);
        }
        assert_eq!(q2.len(), TrafficQueue::CAP);
        assert_eq!(q2.pop().unwrap().0, "豫A12346");
    }
}
