//! The detector pool: dedicated threads (never the tokio runtime) fed by each camera's bounded,
//! drop-oldest frame queue. One motion thread batches the newest frame of every street camera
//! into one ONNX call; plate threads share the checkpoint cameras. What they find goes to the
//! registry through one async writer: `motion` events appended to the event log in batches,
//! passages stored with their events (`passages::record`). A failed write is tried again until
//! it is stored; on shutdown the threads hand over the vehicles they still track and the writer
//! drains everything before the app closes the database.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use utoipa::ToSchema;

use super::config::{DetectConfig, MotionZoneConfig};
use super::imageops::{Rgb, rectify};
use super::motion::{CameraMotion, MotionAreas, MotionParams, OnnxMotion, Polygon};
use super::onnx::{self, OnnxError};
use super::plates::{PlateParams, PlateRead, PlateReader};
use super::track::{PlateTracker, TrackParams, VehiclePassage};
use crate::clock::Clock;
use crate::config::{CameraConfig, MotionSource, Profile};
use crate::events::{Event, EventLog, Motion, MotionBox, NewEvent};
use crate::ingest::{Frame, FrameQueue, Ingest, PixelFormat};
use crate::registry::{NewPassage, Registry, RegistryError};

/// Timing and load of one detector.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct DetectorStats {
    pub name: String,
    pub cameras: usize,
    /// Frames run through the detector.
    pub frames: u64,
    /// Frames left unprocessed because a newer one of the same camera was waiting.
    pub skipped: u64,
    /// Model calls (a motion call covers a batch of cameras).
    pub inferences: u64,
    pub inference_ms_p50: f64,
    pub inference_ms_p99: f64,
    /// Frames waiting in the detector's camera queues now.
    pub queue_depth: usize,
    pub errors: u64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct DetectStats {
    pub detectors: Vec<DetectorStats>,
    pub motion_events: u64,
    /// Passages stored.
    pub passages: u64,
    /// Passages the readers finished (stored, or waiting for the writer).
    pub passages_read: u64,
    /// Vehicles in view now with enough reads to be a passage when they leave (or when the
    /// detector stops: they are stored then).
    pub vehicles_in_view: u64,
    /// Write attempts that failed (each is tried again until it is stored).
    pub write_errors: u64,
    /// Writes refused because this worker no longer held the camera's lease (dropped: the
    /// camera's new holder detects for itself).
    pub fenced: u64,
    /// Cameras whose motion comes from the device: each ONVIF event subscription's state.
    pub onvif_motion: Vec<super::onvif_motion::OnvifMotionStatus>,
}

#[derive(Default)]
struct Meter {
    frames: AtomicU64,
    skipped: AtomicU64,
    inferences: AtomicU64,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
    times: Mutex<VecDeque<f64>>,
}

impl Meter {
    fn time(&self, ms: f64) {
        self.inferences.fetch_add(1, Ordering::Relaxed);
        let mut t = self.times.lock().unwrap_or_else(|e| e.into_inner());
        if t.len() >= 1024 {
            t.pop_front();
        }
        t.push_back(ms);
    }
    fn error(&self, e: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
    }
    fn snapshot(&self, name: &str, cameras: usize, depth: usize) -> DetectorStats {
        let mut t: Vec<f64> = self.times.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect();
        t.sort_by(|a, b| a.total_cmp(b));
        let q = |p: f64| if t.is_empty() { 0.0 } else { t[((t.len() - 1) as f64 * p).round() as usize] };
        DetectorStats {
            name: name.into(),
            cameras,
            frames: self.frames.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            inferences: self.inferences.load(Ordering::Relaxed),
            inference_ms_p50: q(0.5),
            inference_ms_p99: q(0.99),
            queue_depth: depth,
            errors: self.errors.load(Ordering::Relaxed),
            last_error: self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }
}

/// A camera the pool serves.
#[derive(Clone)]
struct CamSlot {
    id: Arc<str>,
    queue: Arc<FrameQueue>,
    areas: MotionAreas,
    bearing_deg: f64,
}

enum Output {
    Motion { camera: String, at_ms: i64, zone: String, boxes: Vec<MotionBox> },
    Passage { camera: String, bearing_deg: f64, p: Box<VehiclePassage> },
}

struct Inner {
    cfg: DetectConfig,
    stop: AtomicBool,
    motion_cams: Mutex<Vec<CamSlot>>,
    plate_cams: Mutex<Vec<CamSlot>>,
    motion_meter: Meter,
    plate_meter: Meter,
    motion_events: AtomicU64,
    passages: AtomicU64,
    passages_read: AtomicU64,
    /// Per plate thread: vehicles it tracks now.
    in_view: Vec<AtomicU64>,
    write_errors: AtomicU64,
    fenced: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
    writer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    clock: Arc<dyn Clock>,
}

#[derive(Clone)]
pub struct DetectService {
    inner: Arc<Inner>,
}

fn slot_sorting(v: &mut [CamSlot]) {
    v.sort_by(|a, b| a.id.cmp(&b.id));
}

impl DetectService {
    /// Loads ONNX Runtime and every model (a clear error when one is missing), then starts the
    /// threads and the writer.
    pub fn start(
        cfg: DetectConfig,
        registry: Registry,
        log: Arc<dyn EventLog>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, OnnxError> {
        onnx::init(cfg.onnxruntime.as_deref())?;
        let mut motion_net = if cfg.motion { Some(OnnxMotion::new(1)?) } else { None };
        let mut readers = Vec::new();
        if cfg.plates {
            for _ in 0..cfg.plate_threads.max(1) {
                let params = PlateParams { det_width: cfg.plate_det_width, ..Default::default() };
                readers.push(PlateReader::new(params, 1)?);
            }
        }
        let inner = Arc::new(Inner {
            cfg: cfg.clone(),
            stop: AtomicBool::new(false),
            motion_cams: Mutex::new(Vec::new()),
            plate_cams: Mutex::new(Vec::new()),
            motion_meter: Meter::default(),
            plate_meter: Meter::default(),
            motion_events: AtomicU64::new(0),
            passages: AtomicU64::new(0),
            passages_read: AtomicU64::new(0),
            in_view: (0..readers.len()).map(|_| AtomicU64::new(0)).collect(),
            write_errors: AtomicU64::new(0),
            fenced: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
            writer: Mutex::new(None),
            clock,
        });
        let (tx, rx) = tokio::sync::mpsc::channel::<Output>(1024);
        *inner.writer.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(tokio::spawn(writer(inner.clone(), registry, log, rx)));
        let mut threads = Vec::new();
        if let Some(net) = motion_net.take() {
            let (inn, tx) = (inner.clone(), tx.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("detect-motion".into())
                    .spawn(move || motion_loop(inn, net, tx))
                    .map_err(|e| OnnxError::Run { model: "motion".into(), message: e.to_string() })?,
            );
        }
        let n = readers.len();
        for (k, reader) in readers.into_iter().enumerate() {
            let (inn, tx) = (inner.clone(), tx.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("detect-plates-{k}"))
                    .spawn(move || plate_loop(inn, reader, k, n, tx))
                    .map_err(|e| OnnxError::Run { model: "plates".into(), message: e.to_string() })?,
            );
        }
        *inner.threads.lock().unwrap_or_else(|e| e.into_inner()) = threads;
        Ok(Self { inner })
    }

    /// Subscribes to the frame queue of every running camera: checkpoint cameras to plate
    /// reading, the others to motion, with the camera's motion zones. Call after every ingest
    /// change (a restarted pipeline has a new queue).
    pub fn sync(&self, ingest: &Ingest, cameras: &[CameraConfig], zones: &[MotionZoneConfig]) {
        let mut motion = Vec::new();
        let mut plates = Vec::new();
        for cam in cameras.iter().filter(|c| c.enabled) {
            let Some(queue) = ingest.subscribe(cam.id.as_str()) else { continue };
            let mut areas = MotionAreas::default();
            for z in zones.iter().filter(|z| z.camera == cam.id.as_str()) {
                let p = Polygon(z.points.clone());
                if z.mask { areas.masks.push(p) } else { areas.zones.push((z.name.clone(), p)) }
            }
            let slot = CamSlot { id: Arc::from(cam.id.as_str()), queue, areas, bearing_deg: cam.bearing_deg };
            match cam.profile {
                Profile::Checkpoint if self.inner.cfg.plates => plates.push(slot),
                // A camera whose motion comes from the device (or nowhere) is not run through ours.
                Profile::Street if self.inner.cfg.motion && cam.motion == MotionSource::Detector => motion.push(slot),
                _ => {}
            }
        }
        slot_sorting(&mut motion);
        slot_sorting(&mut plates);
        *self.inner.motion_cams.lock().unwrap_or_else(|e| e.into_inner()) = motion;
        *self.inner.plate_cams.lock().unwrap_or_else(|e| e.into_inner()) = plates;
    }

    /// Where plate crops and context pictures are written.
    pub fn media_dir(&self) -> &std::path::Path {
        &self.inner.cfg.media_dir
    }

    pub fn stats(&self) -> DetectStats {
        let i = &self.inner;
        let depth = |v: &Mutex<Vec<CamSlot>>| {
            let v = v.lock().unwrap_or_else(|e| e.into_inner());
            (v.len(), v.iter().map(|s| s.queue.len()).sum::<usize>())
        };
        let (mc, md) = depth(&i.motion_cams);
        let (pc, pd) = depth(&i.plate_cams);
        DetectStats {
            detectors: vec![i.motion_meter.snapshot("motion", mc, md), i.plate_meter.snapshot("plates", pc, pd)],
            motion_events: i.motion_events.load(Ordering::Relaxed),
            passages: i.passages.load(Ordering::Relaxed),
            passages_read: i.passages_read.load(Ordering::Relaxed),
            vehicles_in_view: i.in_view.iter().map(|v| v.load(Ordering::Relaxed)).sum(),
            write_errors: i.write_errors.load(Ordering::Relaxed),
            fenced: i.fenced.load(Ordering::Relaxed),
            onvif_motion: Vec::new(),
        }
    }

    /// Stops the threads (they finish the frame in hand and hand over the vehicles they still
    /// track), then waits until the writer has stored everything they found.
    pub async fn shutdown(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        let threads = std::mem::take(&mut *self.inner.threads.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        // The threads held the only senders: the writer drains the channel and ends.
        let writer = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = writer {
            let _ = w.await;
        }
    }
}

/// The newest frame of a queue; older ones are counted as skipped.
fn newest(q: &FrameQueue, skipped: &AtomicU64) -> Option<Frame> {
    let mut last = q.try_pop()?;
    while let Some(f) = q.try_pop() {
        skipped.fetch_add(1, Ordering::Relaxed);
        last = f;
    }
    Some(last)
}

/// Waits briefly for any frame when none is ready (the queues have their own condition
/// variables; waiting on the first keeps an idle pool from spinning).
fn idle_wait(cams: &[CamSlot]) {
    match cams.first() {
        Some(c) => {
            if let Some(f) = c.queue.pop_timeout(Duration::from_millis(20)) {
                // Put it back at the front by re-pushing: the queue is drop-oldest, so order is kept
                // for a single frame.
                c.queue.push(f);
            }
        }
        None => std::thread::park_timeout(Duration::from_millis(100)),
    }
}

/// A camera's grey motion frame and its capture time.
type MotionInput = (Arc<str>, Vec<f32>, i64);

fn motion_loop(inner: Arc<Inner>, mut net: OnnxMotion, tx: tokio::sync::mpsc::Sender<Output>) {
    let params =
        MotionParams { threshold: inner.cfg.motion_threshold, height: inner.cfg.motion_height, ..Default::default() };
    let mut states: HashMap<Arc<str>, CameraMotion> = HashMap::new();
    while !inner.stop.load(Ordering::Relaxed) {
        let cams = inner.motion_cams.lock().unwrap_or_else(|e| e.into_inner()).clone();
        states.retain(|k, _| cams.iter().any(|c| &c.id == k));
        // Group the newest frame of each camera by motion size.
        let mut groups: HashMap<(usize, usize), Vec<MotionInput>> = HashMap::new();
        for c in &cams {
            let Some(f) = newest(&c.queue, &inner.motion_meter.skipped) else { continue };
            let st =
                states.entry(c.id.clone()).or_insert_with(|| CameraMotion::new(f.width, f.height, &c.areas, &params));
            if !st.fits(f.width, f.height) {
                *st = CameraMotion::new(f.width, f.height, &c.areas, &params);
            }
            let grey = super::motion::grey_at(&f, st.w as u32, st.h as u32);
            inner.motion_meter.frames.fetch_add(1, Ordering::Relaxed);
            if st.seed(&grey, &params) {
                groups.entry((st.w, st.h)).or_default().push((c.id.clone(), grey, f.captured_ms));
            }
        }
        if groups.is_empty() {
            idle_wait(&cams);
            continue;
        }
        for ((w, h), batch) in groups {
            let t0 = Instant::now();
            let frames: Vec<&[f32]> = batch.iter().map(|b| b.1.as_slice()).collect();
            let mut bgs: Vec<Vec<f32>> = batch.iter().map(|b| states[&b.0].background.clone()).collect();
            let mut refs: Vec<&mut Vec<f32>> = bgs.iter_mut().collect();
            let outs = match net.step(&frames, &mut refs, w, h, &params) {
                Ok(o) => o,
                Err(e) => {
                    inner.motion_meter.error(&e.to_string());
                    continue;
                }
            };
            inner.motion_meter.time(t0.elapsed().as_secs_f64() * 1000.0);
            for (((id, grey, at_ms), out), bg) in batch.iter().zip(outs).zip(bgs) {
                let Some(st) = states.get_mut(id) else { continue };
                st.background = bg;
                let r = st.finish(grey, &out, *at_ms, &params);
                for (zone, boxes) in r.started {
                    let boxes =
                        boxes.iter().map(|b| MotionBox { x: b.x, y: b.y, w: b.w, h: b.h, area: b.area }).collect();
                    let o = Output::Motion { camera: id.to_string(), at_ms: *at_ms, zone, boxes };
                    if tx.blocking_send(o).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

fn to_rgb(f: &Frame) -> Rgb {
    match f.format {
        PixelFormat::Rgb24 => Rgb { w: f.width, h: f.height, data: f.data.clone() },
        PixelFormat::Gray8 => Rgb { w: f.width, h: f.height, data: f.data.iter().flat_map(|&v| [v, v, v]).collect() },
    }
}

fn plate_loop(inner: Arc<Inner>, mut reader: PlateReader, k: usize, n: usize, tx: tokio::sync::mpsc::Sender<Output>) {
    let mut trackers: HashMap<Arc<str>, PlateTracker> = HashMap::new();
    let mut last_seen: HashMap<Arc<str>, i64> = HashMap::new();
    let send = |cam: &CamSlot, p: VehiclePassage| {
        inner.passages_read.fetch_add(1, Ordering::Relaxed);
        tx.blocking_send(Output::Passage { camera: cam.id.to_string(), bearing_deg: cam.bearing_deg, p: Box::new(p) })
            .is_ok()
    };
    loop {
        let stopping = inner.stop.load(Ordering::Relaxed);
        let all = inner.plate_cams.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let cams: Vec<CamSlot> = all.into_iter().enumerate().filter(|(i, _)| i % n == k).map(|(_, c)| c).collect();
        if stopping {
            for c in &cams {
                if let Some(t) = trackers.get_mut(&c.id) {
                    for p in t.finish_before(i64::MAX) {
                        send(c, p);
                    }
                }
            }
            return;
        }
        let mut worked = false;
        for c in &cams {
            let tr = trackers.entry(c.id.clone()).or_insert_with(|| PlateTracker::new(TrackParams::default()));
            let Some(f) = newest(&c.queue, &inner.plate_meter.skipped) else {
                // No frame: finish vehicles that left long enough ago (by the last frame's clock).
                if let Some(&t) = last_seen.get(&c.id) {
                    let now = inner.clock.now_ms();
                    if now - t > 3_000 {
                        for p in tr.finish_before(t + 1) {
                            if !send(c, p) {
                                return;
                            }
                        }
                    }
                }
                continue;
            };
            worked = true;
            last_seen.insert(c.id.clone(), f.captured_ms);
            let img = to_rgb(&f);
            let t0 = Instant::now();
            let reads = match reader.read(&img) {
                Ok(r) => r,
                Err(e) => {
                    inner.plate_meter.error(&e.to_string());
                    continue;
                }
            };
            inner.plate_meter.time(t0.elapsed().as_secs_f64() * 1000.0);
            inner.plate_meter.frames.fetch_add(1, Ordering::Relaxed);
            let pictures = |r: &PlateRead| {
                let crop = rectify(&img, &r.corners, 220, 70);
                let cw = 640.min(img.w);
                let ctx = img.resize(cw, (img.h as u64 * cw as u64 / img.w as u64) as u32);
                (crop, Some(ctx))
            };
            for p in tr.push(f.captured_ms, reads, pictures) {
                if !send(c, p) {
                    return;
                }
            }
        }
        let tracked: usize = cams.iter().filter_map(|c| trackers.get(&c.id)).map(PlateTracker::vehicles).sum();
        if let Some(v) = inner.in_view.get(k) {
            v.store(tracked as u64, Ordering::Relaxed);
        }
        if !worked {
            idle_wait(&cams);
        }
    }
}

fn media_paths(dir: &std::path::Path, camera: &str, at_ms: i64, track: u64) -> (PathBuf, PathBuf) {
    let day =
        chrono::DateTime::from_timestamp_millis(at_ms).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default();
    let safe: String =
        camera.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    let base = dir.join("passages").join(safe).join(day);
    (base.join(format!("{at_ms}-{track}-plate.jpg")), base.join(format!("{at_ms}-{track}-context.jpg")))
}

fn save(path: &std::path::Path, img: &Rgb) -> Option<String> {
    let bytes = img.to_jpeg(85).ok()?;
    std::fs::create_dir_all(path.parent()?).ok()?;
    std::fs::write(path, bytes).ok()?;
    Some(path.display().to_string())
}

/// Outputs taken off the channel at once: motion in one append.
const WRITE_BATCH: usize = 512;

async fn writer(
    inner: Arc<Inner>,
    registry: Registry,
    log: Arc<dyn EventLog>,
    mut rx: tokio::sync::mpsc::Receiver<Output>,
) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    // Ends when every sender is gone and the channel is drained.
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(o) => batch.push(o),
                Err(_) => break,
            }
        }
        let mut motion = Vec::new();
        for o in batch.drain(..) {
            match o {
                Output::Motion { camera, at_ms, zone, boxes } => {
                    let key = format!("motion:{camera}:{zone}:{at_ms}");
                    motion.push(NewEvent::new(
                        at_ms,
                        Some(key),
                        Event::Motion(Motion { camera_id: camera, zone, boxes }),
                    ));
                }
                Output::Passage { camera, bearing_deg, p } => {
                    let np = passage_of(&inner, &camera, bearing_deg, &p).await;
                    let stored = retry(&inner, "a passage", || async {
                        crate::detect::passages::record(&registry, inner.clock.now_ms(), &np, "detect")
                            .await
                            .map(|_| ())
                            .map_err(|e| match e {
                                RegistryError::Fenced { camera, .. } => Failed::Fenced(camera),
                                e => Failed::Other(e.to_string()),
                            })
                    })
                    .await;
                    if stored.is_ok() {
                        inner.passages.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        while !motion.is_empty() {
            let n = motion.len() as u64;
            let stored = retry(&inner, "motion events", || async {
                log.append(&motion).await.map(|_| ()).map_err(|e| match e.fenced() {
                    Some(camera) => Failed::Fenced(camera.to_string()),
                    None => Failed::Other(e.to_string()),
                })
            })
            .await;
            match stored {
                Ok(()) => {
                    inner.motion_events.fetch_add(n, Ordering::Relaxed);
                    break;
                }
                // The rest of the batch is still this worker's to store.
                Err(camera) => motion.retain(|e| e.event.camera_id() != Some(camera.as_str())),
            }
        }
    }
}

/// Why a write failed.
enum Failed {
    /// This worker no longer holds the camera's lease: the write is not its to make, and no
    /// retry can make it (the camera's new holder detects for itself).
    Fenced(String),
    Other(String),
}

/// Runs a write until it succeeds, backing off from 100 ms to 5 s (the keys make a write that
/// did land but was not acknowledged harmless to repeat); gives up only on a write fenced off
/// (answers the camera).
async fn retry<F, Fut>(inner: &Inner, what: &str, mut write: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Failed>>,
{
    let mut wait = Duration::from_millis(100);
    loop {
        match write().await {
            Ok(()) => return Ok(()),
            Err(Failed::Fenced(camera)) => {
                inner.fenced.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(camera = %camera, "{what} not stored: this worker no longer holds the camera");
                return Err(camera);
            }
            Err(Failed::Other(e)) => {
                inner.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "cannot store {what}; trying again in {} ms", wait.as_millis());
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// A finished vehicle as a passage to store (its pictures written first).
async fn passage_of(inner: &Inner, camera: &str, bearing_deg: f64, p: &VehiclePassage) -> NewPassage {
    let dir = inner.cfg.media_dir.clone();
    let (pp, cp) = media_paths(&dir, camera, p.at_ms, p.track_id);
    let (plate_img, ctx_img) = (p.plate_image.clone(), p.context_image.clone());
    let (plate_image, context_image) = tokio::task::spawn_blocking(move || {
        (plate_img.and_then(|i| save(&pp, &i)), ctx_img.and_then(|i| save(&cp, &i)))
    })
    .await
    .unwrap_or((None, None));
    let heading = match p.direction {
        Some("approaching") => Some((bearing_deg + 180.0) % 360.0),
        Some("receding") => Some(bearing_deg),
        _ => None,
    };
    let track = format!("{camera}-{}", p.track_id);
    NewPassage {
        camera_id: camera.to_string(),
        pass_time_ms: p.at_ms,
        plate_no: Some(p.plate.clone()),
        plate_color: Some(p.color.as_str().to_string()),
        reliability: Some(f64::from(p.confidence)),
        direction: p.direction.map(str::to_string),
        heading_deg: heading,
        plate_reliabilities: Some(p.char_confidences.iter().map(|c| f64::from(*c)).collect()),
        plate_image,
        context_image,
        passage_key: Some(format!("{track}-{}", p.at_ms)),
        track_id: Some(track),
        frames: Some(p.frames as i64),
        lane_no: None,
    }
}
