//! Motion over the real ONNX Runtime and the generated `models/motion.onnx`: the batched ONNX path
//! agrees with the pure-Rust reference; moving objects with known boxes are found; a static noisy
//! scene with the lights switching on and off raises no motion event.

#![allow(clippy::needless_range_loop)]

use tianwang::detect::motion::{self, BBox, CameraMotion, MotionAreas, MotionParams, OnnxMotion, Polygon};
use tianwang::detect::onnx;

/// A cheap deterministic noise source (xorshift); sum of four uniforms ≈ Gaussian.
struct Noise(u64);
impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Approximately N(0, sigma²).
    fn gauss(&mut self, sigma: f32) -> f32 {
        let r = self.next();
        let s: f32 = (0..4).map(|i| ((r >> (i * 16)) & 0xffff) as f32 / 65535.0).sum();
        (s - 2.0) * sigma * 1.732
    }
}

/// A textured static scene.
fn scene(w: usize, h: usize, seed: u64) -> Vec<f32> {
    let mut n = Noise(seed | 1);
    let mut s = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            s[y * w + x] = 60.0 + 40.0 * (((x / 17) + (y / 11)) % 3) as f32 + n.gauss(6.0);
        }
    }
    s
}

fn frame(base: &[f32], gain: f32, noise: &mut Noise, sigma: f32) -> Vec<f32> {
    base.iter().map(|v| (v * gain + noise.gauss(sigma)).clamp(0.0, 255.0)).collect()
}

fn paint(f: &mut [f32], w: usize, b: &BBox, level: f32) {
    for y in b.y..b.y + b.h {
        for x in b.x..b.x + b.w {
            f[y as usize * w + x as usize] = level;
        }
    }
}

#[test]
fn onnx_agrees_with_reference_and_finds_moving_objects() {
    onnx::init(None).expect("ONNX Runtime (bash scripts/setup.sh)");
    let p = MotionParams::default();
    let (w, h) = (213usize, 120usize);
    let cams = 16;
    let mut net = OnnxMotion::new(1).unwrap();
    let mut noise = Noise(7);
    let bases: Vec<Vec<f32>> = (0..cams).map(|c| scene(w, h, 100 + c as u64)).collect();
    let mut bg_ref: Vec<Vec<f32>> = bases.iter().map(|b| motion::blur3(b, w, h)).collect();
    let mut bg_onnx = bg_ref.clone();
    let mut trackers: Vec<CameraMotion> =
        (0..cams).map(|_| CameraMotion::new(w as u32, h as u32, &MotionAreas::default(), &p)).collect();
    for (t, b) in trackers.iter_mut().zip(&bases) {
        t.seed(b, &p);
    }
    let (mut seen, mut total, mut mask_diff, mut px) = (0usize, 0usize, 0usize, 0usize);
    let mut max_bg_diff = 0f32;
    for i in 0..60u32 {
        let mut frames = Vec::new();
        let mut truth = Vec::new();
        for c in 0..cams {
            let mut f = frame(&bases[c], 1.0, &mut noise, 3.0);
            // One object per camera crossing the view, size varying by camera.
            let size = 10 + (c as u32 % 4) * 6;
            let b = BBox {
                x: (5 + i * 3 + c as u32) % (w as u32 - size),
                y: 20 + (c as u32 * 5) % 70,
                w: size,
                h: size,
                area: 0.0,
            };
            paint(&mut f, w, &b, if c % 2 == 0 { 230.0 } else { 10.0 });
            frames.push(f);
            truth.push(b);
        }
        let refs: Vec<_> = (0..cams).map(|c| motion::reference_step(&frames[c], &mut bg_ref[c], w, h, &p)).collect();
        let views: Vec<&[f32]> = frames.iter().map(|f| f.as_slice()).collect();
        let mut bgs: Vec<&mut Vec<f32>> = bg_onnx.iter_mut().collect();
        let outs = net.step(&views, &mut bgs, w, h, &p).unwrap();
        for c in 0..cams {
            mask_diff += refs[c].mask.iter().zip(&outs[c].mask).filter(|(a, b)| a != b).count();
            px += w * h;
            for (a, b) in bg_ref[c].iter().zip(&bg_onnx[c]) {
                max_bg_diff = max_bg_diff.max((a - b).abs());
            }
            assert!((refs[c].changed - outs[c].changed).abs() < 1e-4);
            let r = trackers[c].finish(&frames[c], &outs[c], i64::from(i) * 200, &p);
            assert!(!r.recalibrated);
            if i >= 2 {
                total += 1;
                if r.boxes.iter().any(|b| b.iou(&truth[c]) > 0.3) {
                    seen += 1;
                }
            }
        }
        // Keep the reference in lock step with the ONNX background so drift cannot accumulate.
        bg_ref.clone_from(&bg_onnx);
    }
    let recall = seen as f64 / total as f64;
    println!(
        "recall {recall:.3} ({seen}/{total}); mask disagreement {mask_diff}/{px}; max background diff {max_bg_diff}"
    );
    assert!(recall >= 0.95, "recall {recall}");
    assert!(mask_diff as f64 / px as f64 <= 1e-4, "masks differ on {mask_diff} of {px} pixels");
    assert!(max_bg_diff < 1e-3, "{max_bg_diff}");
}

#[test]
fn static_noisy_scene_with_lights_switching_raises_nothing_in_an_hour() {
    onnx::init(None).expect("ONNX Runtime (bash scripts/setup.sh)");
    let p = MotionParams::default();
    let (w, h) = (213usize, 120usize);
    let mut net = OnnxMotion::new(1).unwrap();
    // Four cameras × 15 minutes at 5 fps = one camera-hour; each camera's lights go on at one
    // minute and off at another; the scene is otherwise still with sensor noise σ = 4.
    let cams = 4usize;
    let frames_per_cam = 15 * 60 * 5;
    let mut noise = Noise(99);
    let bases: Vec<Vec<f32>> = (0..cams).map(|c| scene(w, h, 300 + c as u64)).collect();
    let areas =
        MotionAreas { masks: vec![Polygon(vec![[0.0, 0.0], [0.3, 0.0], [0.3, 0.1], [0.0, 0.1]])], zones: vec![] };
    let mut trackers: Vec<CameraMotion> =
        (0..cams).map(|_| CameraMotion::new(w as u32, h as u32, &areas, &p)).collect();
    let mut bgs: Vec<Vec<f32>> = vec![vec![0.0; w * h]; cams];
    for (c, t) in trackers.iter_mut().enumerate() {
        t.seed(&bases[c], &p);
        bgs[c] = t.background.clone();
    }
    let (mut events, mut recal) = (0usize, 0usize);
    for i in 0..frames_per_cam {
        let gain = |c: usize| {
            let on = 1500 + c * 300;
            let off = on + 1800;
            if (on..off).contains(&i) { 1.7 } else { 1.0 }
        };
        let frames: Vec<Vec<f32>> = (0..cams).map(|c| frame(&bases[c], gain(c), &mut noise, 4.0)).collect();
        let views: Vec<&[f32]> = frames.iter().map(|f| f.as_slice()).collect();
        for (c, t) in trackers.iter().enumerate() {
            bgs[c].clone_from(&t.background);
        }
        let mut refs: Vec<&mut Vec<f32>> = bgs.iter_mut().collect();
        let outs = net.step(&views, &mut refs, w, h, &p).unwrap();
        for c in 0..cams {
            trackers[c].background.clone_from(&bgs[c]);
            let r = trackers[c].finish(&frames[c], &outs[c], i as i64 * 200, &p);
            events += r.started.len();
            recal += usize::from(r.recalibrated);
        }
    }
    println!("one camera-hour: {events} motion events, {recal} recalibrations");
    assert!(recal >= 2 * cams, "every lights-on and lights-off recalibrates: {recal}");
    assert!(events <= 1, "{events} false motion events in one camera-hour");
}
