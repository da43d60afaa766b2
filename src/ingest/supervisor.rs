//! One loop for every source (moonfire-nvr's long-lived `run()` of `run_once()`): open the
//! camera's source → pull its events → classify how it ended → back off (exponential, capped,
//! jittered) → stop check. The loop is a state machine (`Phase`) run two ways: on a thread of
//! the camera's own (`Worker::run_from`: the GStreamer pipeline, which blocks on its appsink), or
//! stepped on the shared threads of `pool` (`Worker::step`, which never blocks: `health` cameras
//! read by the keyframe client, hundreds per thread). The GStreamer pipeline and the keyframe
//! client share this loop's watchdog, first-frame transition, rate sampling and back-off; which of
//! them reads a camera is `source::choose`'s decision. Every time read and every wait goes through
//! the camera's `Clock`, so the tests (`supervisor/tests.rs`) drive the loop with scripted sources
//! on a simulated clock. Runtime changes start or stop only the cameras that changed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Frame;
use super::gb::GbMedia;
use super::health::{CameraHealth, HealthSnapshot, IngestState};
use super::queue::FrameQueue;
use super::source::{self, Camera, Event, Failure, FrameSource, NetOpener, OpenError, Opener, Refusal, SourceKind};
use super::spec::IngestSpec;
use crate::clock::{Clock, Millis, Stop, millis};
use crate::config::{CameraStatus, Profile, mask_credentials};

/// An ingest state transition, for the registry writer: recorded in the ingest history when
/// `record` is set, and moving the camera's registry status when `status` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusEvent {
    pub camera: String,
    pub from: IngestState,
    pub to: IngestState,
    /// Write the transition into the ingest history (identical repeated failures are not).
    pub record: bool,
    /// The registry status this transition moves the camera to (online / offline), if any.
    pub status: Option<CameraStatus>,
    pub reason: String,
    pub at_ms: Millis,
}

/// What `Ingest::apply` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub started: Vec<String>,
    pub stopped: Vec<String>,
    pub restarted: Vec<String>,
    pub unchanged: usize,
}

struct Running {
    spec: IngestSpec,
    health: Arc<CameraHealth>,
    queue: Arc<FrameQueue>,
    stop: Stop,
    thread: Option<JoinHandle<()>>,
    /// A camera on the shared threads (`pool`).
    pooled: Option<pool::Pooled>,
}

impl Running {
    /// Asks the camera to stop (it stops on its own thread or runner; `wait` for it).
    fn request_stop(&self) {
        self.stop.request();
        if let Some(p) = &self.pooled {
            p.nudge();
        }
    }

    /// Waits until the camera's source is torn down.
    fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(p) = &self.pooled {
            p.wait();
        }
    }
}

/// All running cameras.
pub struct Ingest {
    cams: Mutex<BTreeMap<String, Running>>,
    status_tx: Option<tokio::sync::mpsc::Sender<StatusEvent>>,
    clock: Arc<dyn Clock>,
    status_dropped: Arc<AtomicU64>,
    opener: Arc<dyn Opener>,
    /// Where `health` cameras read by the keyframe client run (`None`: a thread per camera).
    pool: Option<pool::Pool>,
}

impl Ingest {
    /// `status_tx` receives registry status changes (online/offline); `None` to not record them.
    pub fn new(clock: Arc<dyn Clock>, status_tx: Option<tokio::sync::mpsc::Sender<StatusEvent>>) -> Self {
        Self::with_gb28181(clock, status_tx, None)
    }

    /// As `new`, with the SIP side that `gb28181://` cameras are asked for through.
    pub fn with_gb28181(
        clock: Arc<dyn Clock>,
        status_tx: Option<tokio::sync::mpsc::Sender<StatusEvent>>,
        gb: Option<Arc<dyn GbMedia>>,
    ) -> Self {
        let mut ing = Self::with_opener(clock.clone(), status_tx, Arc::new(NetOpener { gb }));
        ing.pool = Some(pool::Pool::new(clock));
        ing
    }

    /// Cameras read through `opener` instead of the network (tests: scripted sources).
    pub(crate) fn with_opener(
        clock: Arc<dyn Clock>,
        status_tx: Option<tokio::sync::mpsc::Sender<StatusEvent>>,
        opener: Arc<dyn Opener>,
    ) -> Self {
        Self {
            cams: Mutex::new(BTreeMap::new()),
            status_tx,
            clock,
            status_dropped: Arc::new(AtomicU64::new(0)),
            opener,
            pool: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.cams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts, stops and restarts cameras so that exactly `specs` run. Blocks while stopping
    /// pipelines: call it from a blocking context.
    pub fn apply(&self, specs: Vec<IngestSpec>) -> ApplyReport {
        let mut report = ApplyReport::default();
        let wanted: BTreeMap<String, IngestSpec> = specs.into_iter().map(|s| (s.id.clone(), s)).collect();
        let current: Vec<(String, IngestSpec)> = self.lock().iter().map(|(k, r)| (k.clone(), r.spec.clone())).collect();
        let mut gone = Vec::new();
        let mut restart = Vec::new();
        for (id, spec) in &current {
            match wanted.get(id) {
                None => {
                    gone.push(id.clone());
                    report.stopped.push(id.clone());
                }
                Some(w) if w != spec => {
                    gone.push(id.clone());
                    restart.push(w.clone());
                    report.restarted.push(id.clone());
                }
                Some(_) => report.unchanged += 1,
            }
        }
        self.stop_all(&gone);
        restart.into_iter().for_each(|s| self.start(s));
        for (id, spec) in wanted {
            if !current.iter().any(|(c, _)| *c == id) {
                self.start(spec);
                report.started.push(id);
            }
        }
        report
    }

    /// Starts one camera (replacing a running one with the same id).
    pub fn start(&self, spec: IngestSpec) {
        self.stop(&spec.id);
        let now = self.clock.now_ms();
        let health = Arc::new(CameraHealth::new(&spec.id, spec.profile.as_str(), spec.expected_fps(), now));
        let queue = Arc::new(FrameQueue::new(8));
        let stop = Stop::new();
        let worker = Worker {
            spec: spec.clone(),
            health: health.clone(),
            queue: queue.clone(),
            stop: stop.clone(),
            clock: self.clock.clone(),
            opener: self.opener.clone(),
            status_tx: self.status_tx.clone(),
            status_dropped: self.status_dropped.clone(),
            last_status: None,
            last_failure: None,
            refused: None,
            failures: 0,
            rng: seed(&spec.id, now),
        };
        let pool = self.pool.as_ref().filter(|_| source::choose(&spec, None) == Ok(SourceKind::Keyframes));
        let (thread, pooled) = match pool {
            Some(p) => (None, Some(p.start(worker))),
            None => {
                let thread =
                    std::thread::Builder::new().name(format!("ingest-{}", spec.id)).spawn(move || worker.run());
                match thread {
                    Ok(t) => (Some(t), None),
                    Err(e) => {
                        health.record_error(&format!("cannot start a thread: {e}"));
                        (None, None)
                    }
                }
            }
        };
        self.lock().insert(spec.id.clone(), Running { spec, health, queue, stop, thread, pooled });
    }

    /// Stops one camera and waits for its pipeline to be torn down.
    pub fn stop(&self, id: &str) -> bool {
        let Some(r) = self.lock().remove(id) else { return false };
        r.request_stop();
        r.wait();
        true
    }

    /// Stops cameras all at once (each tears down on its own thread or runner) and waits for
    /// all of them.
    fn stop_all(&self, ids: &[String]) {
        let stopping: Vec<Running> = {
            let mut cams = self.lock();
            ids.iter().filter_map(|id| cams.remove(id)).collect()
        };
        stopping.iter().for_each(Running::request_stop);
        stopping.into_iter().for_each(Running::wait);
    }

    /// Stops every camera.
    pub fn shutdown(&self) {
        self.stop_all(&self.ids());
    }

    /// The threads the shared pool runs (for `/metrics`).
    pub fn pool_threads(&self) -> PoolThreads {
        self.pool.as_ref().map(pool::Pool::threads).unwrap_or_default()
    }

    pub fn ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    pub fn health(&self, id: &str) -> Option<HealthSnapshot> {
        let now = self.clock.now_ms();
        self.lock().get(id).map(|r| r.health.snapshot(now))
    }

    /// Every camera, worst first.
    pub fn all_health(&self) -> Vec<HealthSnapshot> {
        let now = self.clock.now_ms();
        let cams = self.lock();
        let mut v: Vec<(_, HealthSnapshot)> =
            cams.values().map(|r| (r.health.badness(), r.health.snapshot(now))).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.camera.cmp(&b.1.camera)));
        v.into_iter().map(|x| x.1).collect()
    }

    /// The last frame a camera delivered.
    pub fn last_frame(&self, id: &str) -> Option<Arc<Frame>> {
        self.lock().get(id).and_then(|r| r.health.last_frame())
    }

    /// The camera's frame queue, activated: from now on frames are queued for the caller
    /// (bounded, drop-oldest, drops counted in `frames_dropped`).
    pub fn subscribe(&self, id: &str) -> Option<Arc<FrameQueue>> {
        self.lock().get(id).map(|r| {
            r.queue.activate();
            r.queue.clone()
        })
    }

    /// Status events that could not be queued for the registry (should stay 0).
    pub fn status_events_dropped(&self) -> u64 {
        self.status_dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What keeps a camera alive for the watchdog: a named policy per profile. `health` cameras
/// decode a keyframe only now and then (one per GOP, late with B-frames), so every packet of their
/// video stream counts; the other profiles must deliver frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Liveness {
    Frames,
    Packets,
}

impl Liveness {
    fn of(spec: &IngestSpec) -> Self {
        if spec.profile == Profile::Health { Liveness::Packets } else { Liveness::Frames }
    }
    fn watchdog(self, streamed: bool, watchdog: Millis) -> String {
        let what = match self {
            Liveness::Frames => "frame",
            Liveness::Packets => "data",
        };
        let s = watchdog as f64 / 1000.0;
        if streamed {
            format!("no {what} for {s} s (watchdog)")
        } else {
            format!("no {what} within {s} s of connecting (watchdog)")
        }
    }
}

/// Rates are sampled this often while a source is open.
const SAMPLE_MS: Millis = 1000;

struct Worker {
    spec: IngestSpec,
    health: Arc<CameraHealth>,
    queue: Arc<FrameQueue>,
    stop: Stop,
    clock: Arc<dyn Clock>,
    opener: Arc<dyn Opener>,
    status_tx: Option<tokio::sync::mpsc::Sender<StatusEvent>>,
    status_dropped: Arc<AtomicU64>,
    last_status: Option<CameraStatus>,
    last_failure: Option<String>,
    /// Why the keyframe client cannot read this camera's server, once it said so: from then on
    /// `source::choose` picks rtspsrc.
    refused: Option<Refusal>,
    /// Failed connections since the last healthy run (the back-off's exponent).
    failures: u32,
    rng: u64,
}

impl Worker {
    fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    fn transition(&mut self, to: IngestState, reason: &str) {
        let now = self.now();
        let Some(from) = self.health.set_state(to, reason, now) else { return };
        tracing::debug!(camera = %self.spec.id, state = to.as_str(), reason, "ingest state");
        // A retry after back-off is implied, and the same failure again is news to nobody.
        let record = match (from, to) {
            (IngestState::Backoff, IngestState::Connecting) => false,
            (_, IngestState::Backoff) => self.last_failure.as_deref() != Some(reason),
            _ => true,
        };
        match to {
            IngestState::Backoff => self.last_failure = Some(reason.to_string()),
            IngestState::Streaming => self.last_failure = None,
            _ => {}
        }
        let status = match to {
            IngestState::Streaming => Some(CameraStatus::Online),
            IngestState::Stalled | IngestState::Backoff => Some(CameraStatus::Offline),
            IngestState::Connecting | IngestState::Disabled => None,
        }
        .filter(|s| self.last_status != Some(*s));
        if let Some(s) = status {
            self.last_status = Some(s);
            if s == CameraStatus::Offline {
                tracing::warn!(camera = %self.spec.id, reason, "camera offline");
            } else {
                tracing::info!(camera = %self.spec.id, "camera streaming");
            }
        }
        if !record && status.is_none() {
            return;
        }
        if let Some(tx) = &self.status_tx {
            let ev = StatusEvent {
                camera: self.spec.id.clone(),
                from,
                to,
                record,
                status,
                reason: format!("{}: {reason}", to.as_str()),
                at_ms: now,
            };
            if tx.try_send(ev).is_err() {
                self.status_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Connects, streams and reconnects until stopped, on this thread.
    fn run(self) {
        self.run_from(Phase::Connect);
    }

    /// The loop on a thread of its own, from `phase` on (a pooled camera whose source needs a
    /// thread goes on here).
    fn run_from(mut self, mut phase: Phase) {
        loop {
            phase = match phase {
                Phase::Connect if self.stop.is_requested() => Phase::Done,
                Phase::Connect => {
                    self.transition(IngestState::Connecting, "connecting");
                    self.connect()
                }
                Phase::Pump(mut p) => {
                    let deadline = p.deadline(millis(self.spec.watchdog));
                    let event = p.source.next(deadline, &self.stop);
                    let now = self.now();
                    match self.handle(&mut p, event, now) {
                        None => Phase::Pump(p),
                        Some(end) => self.ended(*p, end),
                    }
                }
                Phase::Backoff { until } => {
                    if self.clock.wait_until(until, &self.stop) {
                        Phase::Done
                    } else {
                        Phase::Connect
                    }
                }
                Phase::Done => break,
            };
        }
        self.transition(IngestState::Disabled, "stopped");
    }

    /// One step that never blocks, for a camera on a shared thread: what the camera wants next.
    /// Opening is left to the caller (`Want::Open`: it blocks, on a connection's time).
    fn step(&mut self, phase: &mut Phase) -> Want {
        loop {
            let now = self.now();
            match std::mem::replace(phase, Phase::Done) {
                Phase::Done => return Want::Done,
                Phase::Connect if self.stop.is_requested() => return Want::Done,
                Phase::Connect => {
                    self.transition(IngestState::Connecting, "connecting");
                    *phase = Phase::Connect;
                    return Want::Open;
                }
                Phase::Backoff { until } if self.stop.is_requested() => {
                    let _ = until;
                    return Want::Done;
                }
                Phase::Backoff { until } if now < until => {
                    *phase = Phase::Backoff { until };
                    return Want::Wake(until);
                }
                Phase::Backoff { .. } => *phase = Phase::Connect,
                Phase::Pump(mut p) => {
                    let deadline = p.deadline(millis(self.spec.watchdog));
                    let event = match p.source.try_next(now) {
                        Some(e) => e,
                        None if now >= deadline => Event::Idle,
                        None => {
                            let wake = p.source.wake_at().unwrap_or(deadline).min(deadline);
                            *phase = Phase::Pump(p);
                            return Want::Wake(wake);
                        }
                    };
                    *phase = match self.handle(&mut p, event, now) {
                        None => Phase::Pump(p),
                        Some(end) => self.ended(*p, end),
                    };
                }
            }
        }
    }

    /// Opens the camera's source (blocking: every step within the watchdog time); the phase
    /// that follows.
    fn connect(&mut self) -> Phase {
        let started = self.now();
        let password = match self.spec.password.as_ref().map(|s| s.resolve()) {
            None => None,
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => return self.fail(Failure::new(format!("password: {e}")), false, None),
        };
        match self.open(password.as_ref().map(|s| s.expose())) {
            Ok(source) => Phase::Pump(Box::new(Pumping {
                source,
                password,
                started,
                last_live: started,
                streaming: false,
                next_sample: started,
            })),
            Err(failure) => self.fail(failure, false, password.as_ref().map(|s| s.expose())),
        }
    }

    /// The source has ended (it is torn down here, first): back off, or stop.
    fn ended(&mut self, p: Pumping, end: Ended) -> Phase {
        let Pumping { source, password, streaming, .. } = p;
        drop(source);
        match end {
            Ended::Stopped => Phase::Done,
            Ended::Failed(failure) => self.fail(failure, streaming, password.as_ref().map(|s| s.expose())),
        }
    }

    /// A connection failed (`streamed`: after reaching `Streaming`): its text explained and
    /// scrubbed, the failure recorded, and the back-off to wait out.
    fn fail(&mut self, failure: Failure, streamed: bool, password: Option<&str>) -> Phase {
        let text = scrub(&explain(&failure, &self.spec.url), password);
        if streamed {
            // A healthy run: the back-off starts over.
            self.failures = 0;
            self.health.record_reconnect(self.now());
            self.transition(IngestState::Stalled, &text);
        }
        self.failures += 1;
        let d = backoff_delay(self.spec.backoff_initial, self.spec.backoff_max, self.failures, &mut self.rng);
        let until = self.now().saturating_add(millis(d));
        self.health.record_error(&text);
        self.health.record_failure(until);
        self.transition(IngestState::Backoff, &text);
        Phase::Backoff { until }
    }

    /// Opens the source `source::choose` names; when the keyframe client is refused, remembers
    /// why and opens the one `choose` names then.
    fn open(&mut self, password: Option<&str>) -> Result<Box<dyn FrameSource>, Failure> {
        loop {
            let kind = source::choose(&self.spec, self.refused.as_ref())?;
            let camera = Camera { spec: &self.spec, password, clock: &self.clock, health: &self.health };
            match self.opener.open(kind, &camera) {
                Ok(s) => return Ok(s),
                Err(OpenError::Failed(f)) => return Err(f),
                Err(OpenError::Refused(r)) if kind == SourceKind::Keyframes && self.refused.is_none() => {
                    // A `tcp` camera refused TCP fails here, and is asked again next time.
                    source::choose(&self.spec, Some(&r))?;
                    tracing::info!(camera = %self.spec.id, refusal = %r, "health profile through rtspsrc");
                    self.refused = Some(r);
                }
                Err(OpenError::Refused(r)) => return Err(Failure::new(r.to_string())),
            }
        }
    }

    /// What one event of an open source means: liveness, the first-frame transition, delivery,
    /// rate samples and the watchdog, for every source; `Some` when the source is done with.
    fn handle(&mut self, p: &mut Pumping, event: Event, now: Millis) -> Option<Ended> {
        let watchdog = millis(self.spec.watchdog);
        let liveness = Liveness::of(&self.spec);
        // What kept the camera alive, if anything did.
        let live = match event {
            Event::Stopped => return Some(Ended::Stopped),
            Event::Ended(failure) => return Some(Ended::Failed(failure)),
            Event::Idle => None,
            Event::Packets { count, bytes } => {
                self.health.bytes_received.fetch_add(bytes, Ordering::Relaxed);
                if count > 0 {
                    self.health.last_packet_ms.store(now.max(0) as u64, Ordering::Relaxed);
                }
                (count > 0 && liveness == Liveness::Packets).then_some("packet")
            }
            Event::Frame(frame) => {
                deliver(&self.health, &self.queue, frame);
                Some("frame")
            }
        };
        if self.stop.is_requested() {
            return Some(Ended::Stopped);
        }
        if let Some(what) = live {
            p.last_live = now;
            if !p.streaming {
                p.streaming = true;
                let why = format!("first {what} {} ms after connecting", now - p.started);
                self.transition(IngestState::Streaming, &why);
            }
        }
        if now >= p.next_sample {
            self.health.sample(now);
            p.next_sample = now + SAMPLE_MS;
        }
        if now >= p.last_live.saturating_add(watchdog) {
            return Some(Ended::Failed(Failure::new(liveness.watchdog(p.streaming, watchdog))));
        }
        None
    }
}

/// Where a camera's loop stands between two steps.
enum Phase {
    /// About to connect: after starting, and after each back-off.
    Connect,
    /// A source is open.
    Pump(Box<Pumping>),
    /// Waiting out the back-off.
    Backoff { until: Millis },
    /// Stopped.
    Done,
}

/// An open source and what the watchdog knows of it.
struct Pumping {
    source: Box<dyn FrameSource>,
    /// The resolved password, scrubbed from the failure's text.
    password: Option<crate::config::Secret>,
    started: Millis,
    last_live: Millis,
    streaming: bool,
    next_sample: Millis,
}

impl Pumping {
    /// When the source must have said something: the watchdog's time or the next rate sample.
    fn deadline(&self, watchdog: Millis) -> Millis {
        self.last_live.saturating_add(watchdog).min(self.next_sample)
    }
}

/// How an open source ended.
enum Ended {
    Stopped,
    Failed(Failure),
}

/// What a camera on a shared thread wants after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// To be stepped again at this time (or when stopped).
    Wake(Millis),
    /// Its source opened (blocking; `connect`).
    Open,
    Done,
}

/// Hands a frame on: counted, queued for a subscriber (drop-oldest, drops counted) and kept as
/// the camera's last frame.
fn deliver(health: &CameraHealth, queue: &FrameQueue, frame: Frame) {
    health.frames_delivered.fetch_add(1, Ordering::Relaxed);
    let frame = Arc::new(frame);
    if queue.is_active() && queue.push((*frame).clone()) {
        health.frames_dropped.fetch_add(1, Ordering::Relaxed);
    }
    health.set_last_frame(frame);
}

/// Makes failures say what happened: the RTSP status in words, and for a connection GStreamer
/// could not make, whether the name did not resolve or the port refused or did not answer.
fn explain(failure: &Failure, url: &crate::config::RtspUrl) -> String {
    let reason = failure.text.as_str();
    // GStreamer errors without details carry the status in their text only.
    let status = failure.status.or_else(|| {
        [404, 401].into_iter().find(|c| reason.contains(&format!("{c} (")) || reason.contains(&format!("({c})")))
    });
    match status {
        Some(404) => return format!("the server has no stream at this path (RTSP 404 Not Found): {reason}"),
        Some(401) => return format!("the server refused the credentials (RTSP 401 Unauthorized): {reason}"),
        _ => {}
    }
    if !reason.contains("Failed to connect") {
        return reason.to_string();
    }
    let host = url.host();
    let port = url.port();
    let addrs: Vec<std::net::SocketAddr> = match std::net::ToSocketAddrs::to_socket_addrs(&(host, port)) {
        Ok(a) => a.collect(),
        Err(e) => return format!("cannot resolve host {host:?}: {e}"),
    };
    let Some(addr) = addrs.first() else { return format!("host {host:?} has no address") };
    match std::net::TcpStream::connect_timeout(addr, Duration::from_secs(3)) {
        Ok(_) => reason.to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("connection refused by {addr}: nothing listens there")
        }
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => format!("no answer from {addr} within 3 s"),
        Err(e) => format!("cannot connect to {addr}: {e}"),
    }
}

/// Removes credentials from an error text: `user:pass@` in URLs and the password itself.
fn scrub(text: &str, password: Option<&str>) -> String {
    let mut out: String = text.split(' ').map(mask_credentials).collect::<Vec<_>>().join(" ");
    if let Some(pw) = password.filter(|p| p.len() >= 3) {
        out = out.replace(pw, "***");
    }
    out
}

fn seed(id: &str, now: Millis) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325 ^ now as u64;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    h | 1
}

/// Exponential back-off, capped, with jitter: initial·2^(n−1) ≤ max, times a factor in [0.5, 1).
pub(crate) fn backoff_delay(initial: Duration, max: Duration, failures: u32, rng: &mut u64) -> Duration {
    let exp = initial.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let base = exp.min(max);
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let unit = (*rng >> 11) as f64 / (1u64 << 53) as f64;
    base.mul_f64(0.5 + unit / 2.0)
}

mod pool;
pub use pool::PoolThreads;

#[cfg(test)]
mod tests;
