//! Detection benchmarks (`cargo bench --bench detect`):
//! 1. motion on 16 cameras: one batched ONNX call vs one call per camera (and the Rust reference);
//! 2. plate reading: frames per second on one core (one intra-op thread), frames with a plate and
//!    frames without.
//!
//! Figures go to BENCHMARKS.md.

use std::time::Instant;

use rand::SeedableRng;
use tianwang::detect::imageops::Rgb;
use tianwang::detect::motion::{self, MotionParams, OnnxMotion};
use tianwang::detect::{onnx, plates};

fn scene(w: usize, h: usize, seed: u64, t: usize) -> Vec<f32> {
    let mut x = seed | 1;
    (0..w * h)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (px, py) = (i % w, i / w);
            let moving = (px + 200 - (t * 3) % 200) % 200 < 12 && (40..60).contains(&py);
            if moving { 220.0 } else { 60.0 + 40.0 * (((px / 17) + (py / 11)) % 3) as f32 + (x % 9) as f32 }
        })
        .collect()
}

fn main() {
    onnx::init(None).expect("ONNX Runtime: run bash scripts/setup.sh");
    let p = MotionParams::default();
    let (w, h) = (213usize, 120usize);
    let cams = 16;
    let rounds = 100;
    let frames: Vec<Vec<Vec<f32>>> =
        (0..rounds).map(|t| (0..cams).map(|c| scene(w, h, c as u64 + 1, t)).collect()).collect();
    let mut net = OnnxMotion::new(1).unwrap();
    let mut bgs: Vec<Vec<f32>> = frames[0].clone();
    // warm-up
    {
        let v: Vec<&[f32]> = frames[0].iter().map(|f| f.as_slice()).collect();
        let mut r: Vec<&mut Vec<f32>> = bgs.iter_mut().collect();
        net.step(&v, &mut r, w, h, &p).unwrap();
    }
    let t0 = Instant::now();
    for fr in &frames {
        let v: Vec<&[f32]> = fr.iter().map(|f| f.as_slice()).collect();
        let mut r: Vec<&mut Vec<f32>> = bgs.iter_mut().collect();
        net.step(&v, &mut r, w, h, &p).unwrap();
    }
    let batched = t0.elapsed().as_secs_f64() / rounds as f64;
    let t0 = Instant::now();
    for fr in &frames {
        for (c, f) in fr.iter().enumerate() {
            let mut r = vec![&mut bgs[c]];
            net.step(&[f.as_slice()], &mut r, w, h, &p).unwrap();
        }
    }
    let single = t0.elapsed().as_secs_f64() / rounds as f64;
    let t0 = Instant::now();
    for fr in &frames {
        for (c, f) in fr.iter().enumerate() {
            motion::reference_step(f, &mut bgs[c], w, h, &p);
        }
    }
    let reference = t0.elapsed().as_secs_f64() / rounds as f64;
    println!("motion, {cams} cameras at {w}x{h}, {rounds} rounds, one thread:");
    println!(
        "  batched ONNX (1 call):        {:8.3} ms per round ({:.3} ms per camera)",
        batched * 1e3,
        batched * 1e3 / cams as f64
    );
    println!("  one ONNX call per camera:     {:8.3} ms per round", single * 1e3);
    println!("  Rust reference per camera:   {:8.3} ms per round", reference * 1e3);
    println!("  ratio one-at-a-time / batched: {:.2}x", single / batched);
    println!("  ratio reference / batched:     {:.2}x", reference / batched);

    // Plates: traffic frames with a plate, and empty road.
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let vehicles: Vec<_> = (0..4)
        .map(|i| {
            let c = tianwang::sim::plates::PlateColor::ALL[i];
            (tianwang::sim::plates::random_plate(&mut rng, c), c)
        })
        .collect();
    let spec =
        tianwang::sim::plates::TrafficSpec { width: 1280, height: 720, fps: 8.0, vehicles, ..Default::default() };
    let mut scene = tianwang::sim::plates::TrafficScene::new(spec).unwrap();
    let mut with_plate = Vec::new();
    let mut empty = Vec::new();
    for i in 0..160u64 {
        let has = scene.plate_corners(i).is_some();
        let f = scene.frame(i);
        let img = Rgb { w: f.w, h: f.h, data: f.data.clone() };
        if has && with_plate.len() < 40 {
            with_plate.push(img);
        } else if !has && empty.len() < 20 {
            empty.push(img);
        }
    }
    // Ours (the reader's defaults) and the reader as it was before issue 22's throughput work
    // (detector at 960 wide, candidates at 0.01 confirmed at 0.3 on full-resolution crops of any
    // size, never scaled up, every plate of a two-row shape read both ways, no police layout, both recognisers on every crop), on
    // the same frames in the same run.
    let before = plates::PlateParams {
        det_width: 960,
        det_score: 0.3,
        coarse_score: 0.01,
        confirm_width: 0,
        confirm_min_width: 0,
        two_row_below: f32::INFINITY,
        police_layout: false,
        skip_hopeless: false,
        ..plates::PlateParams::default()
    };
    let mut fps = Vec::new();
    for (name, params) in [("ours", plates::PlateParams::default()), ("before", before)] {
        let mut reader = plates::PlateReader::new(params, 1).unwrap();
        reader.read(&with_plate[0]).unwrap();
        reader.times = plates::StageTimes::default();
        let t0 = Instant::now();
        let mut reads = 0;
        for f in &with_plate {
            reads += reader.read(f).unwrap().len();
        }
        let fps_plate = with_plate.len() as f64 / t0.elapsed().as_secs_f64();
        let stages = reader.times.summary();
        let t0 = Instant::now();
        for f in &empty {
            reader.read(f).unwrap();
        }
        let fps_empty = empty.len() as f64 / t0.elapsed().as_secs_f64();
        println!(
            "plates ({name}), 1280x720 frames, one core (detector width {}, confirmation crops ≤ {} px wide, 0 = any):",
            params.det_width, params.confirm_width
        );
        println!("  frames with a plate:    {fps_plate:6.2} fps ({reads} reads in {} frames)", with_plate.len());
        println!("  {stages}");
        println!("  frames without a plate: {fps_empty:6.2} fps");
        fps.push((fps_plate, fps_empty));
    }
    println!("  ratio ours / before: {:.2}x with a plate, {:.2}x without", fps[0].0 / fps[1].0, fps[0].1 / fps[1].1);
}
