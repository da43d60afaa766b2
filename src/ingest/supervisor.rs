//! One thread per camera, one loop for every source (moonfire-nvr's long-lived `run()` of
//! `run_once()`): open the camera's source → pull its events → classify how it ended → back off
//! (exponential, capped, jittered) → stop check. The GStreamer pipeline and the keyframe client
//! share this loop's watchdog, first-frame transition, rate sampling and back-off; which of them
//! reads a camera is `source::choose`'s decision. Every time read and every wait goes through the
//! camera's `Clock`, so the tests (`supervisor/tests.rs`) drive the loop with scripted sources on
//! a simulated clock. Runtime changes start or stop only the cameras that changed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Frame;
use super::health::{CameraHealth, HealthSnapshot, IngestState};
use super::queue::FrameQueue;
use super::source::{self, Camera, Event, Failure, FrameSource, OpenError, Opener, Refusal, RtspOpener, SourceKind};
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
}

/// All running cameras.
pub struct Ingest {
    cams: Mutex<BTreeMap<String, Running>>,
    status_tx: Option<tokio::sync::mpsc::Sender<StatusEvent>>,
    clock: Arc<dyn Clock>,
    status_dropped: Arc<AtomicU64>,
    opener: Arc<dyn Opener>,
}

impl Ingest {
    /// `status_tx` receives registry status changes (online/offline); `None` to not record them.
    pub fn new(clock: Arc<dyn Clock>, status_tx: Option<tokio::sync::mpsc::Sender<StatusEvent>>) -> Self {
        Self::with_opener(clock, status_tx, Arc::new(RtspOpener))
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
        for (id, spec) in &current {
            match wanted.get(id) {
                None => {
                    self.stop(id);
                    report.stopped.push(id.clone());
                }
                Some(w) if w != spec => {
                    self.stop(id);
                    self.start(w.clone());
                    report.restarted.push(id.clone());
                }
                Some(_) => report.unchanged += 1,
            }
        }
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
        };
        let thread = std::thread::Builder::new().name(format!("ingest-{}", spec.id)).spawn(move || worker.run());
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                health.record_error(&format!("cannot start a thread: {e}"));
                None
            }
        };
        self.lock().insert(spec.id.clone(), Running { spec, health, queue, stop, thread });
    }

    /// Stops one camera and waits for its pipeline to be torn down.
    pub fn stop(&self, id: &str) -> bool {
        let Some(mut r) = self.lock().remove(id) else { return false };
        r.stop.request();
        if let Some(t) = r.thread.take() {
            let _ = t.join();
        }
        true
    }

    /// Stops every camera.
    pub fn shutdown(&self) {
        for id in self.ids() {
            self.stop(&id);
        }
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

/// How one connection ended.
enum Outcome {
    Stopped,
    /// `failure.text` explained and scrubbed; `streamed`: the camera had reached `Streaming`.
    Failed {
        failure: Failure,
        streamed: bool,
    },
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

    /// Connects, streams and reconnects until stopped.
    fn run(mut self) {
        let mut failures: u32 = 0;
        let mut rng = seed(&self.spec.id, self.now());
        while !self.stop.is_requested() {
            self.transition(IngestState::Connecting, "connecting");
            let Outcome::Failed { failure, streamed } = self.run_once() else { break };
            if streamed {
                // A healthy run: the back-off starts over.
                failures = 0;
                self.health.record_reconnect(self.now());
                self.transition(IngestState::Stalled, &failure.text);
            }
            failures += 1;
            if self.back_off(failures, &failure.text, &mut rng) {
                break;
            }
        }
        self.transition(IngestState::Disabled, "stopped");
    }

    /// Records the failure and waits out the back-off; true when asked to stop meanwhile.
    fn back_off(&mut self, failures: u32, reason: &str, rng: &mut u64) -> bool {
        let d = backoff_delay(self.spec.backoff_initial, self.spec.backoff_max, failures, rng);
        let until = self.now().saturating_add(millis(d));
        self.health.record_error(reason);
        self.health.record_failure(until);
        self.transition(IngestState::Backoff, reason);
        self.clock.wait_until(until, &self.stop)
    }

    /// One connection: open the source, pump it, and say how it ended in words fit to show.
    fn run_once(&mut self) -> Outcome {
        let started = self.now();
        let password = match self.spec.password.as_ref().map(|s| s.resolve()) {
            None => None,
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                return Outcome::Failed { failure: Failure::new(format!("password: {e}")), streamed: false };
            }
        };
        let password = password.as_ref().map(|s| s.expose());
        let outcome = match self.open(password) {
            // The source is torn down when dropped, at the end of this arm.
            Ok(mut source) => self.pump(source.as_mut(), started),
            Err(failure) => Outcome::Failed { failure, streamed: false },
        };
        match outcome {
            Outcome::Stopped => Outcome::Stopped,
            Outcome::Failed { failure, streamed } => {
                let text = scrub(&explain(&failure, &self.spec.url), password);
                Outcome::Failed { failure: Failure { status: failure.status, text }, streamed }
            }
        }
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

    /// Pulls the source's events until it ends, the watchdog gives up on it, or the camera is
    /// stopped: liveness, the first-frame transition, delivery and rate samples for every source.
    fn pump(&mut self, source: &mut dyn FrameSource, started: Millis) -> Outcome {
        let watchdog = millis(self.spec.watchdog);
        let liveness = Liveness::of(&self.spec);
        let (mut last_live, mut streaming, mut next_sample) = (started, false, started);
        loop {
            let event = source.next(last_live.saturating_add(watchdog).min(next_sample), &self.stop);
            let now = self.now();
            // What kept the camera alive, if anything did.
            let live = match event {
                Event::Stopped => return Outcome::Stopped,
                Event::Ended(failure) => return Outcome::Failed { failure, streamed: streaming },
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
                return Outcome::Stopped;
            }
            if let Some(what) = live {
                last_live = now;
                if !streaming {
                    streaming = true;
                    let why = format!("first {what} {} ms after connecting", now - started);
                    self.transition(IngestState::Streaming, &why);
                }
            }
            if now >= next_sample {
                self.health.sample(now);
                next_sample = now + SAMPLE_MS;
            }
            if now >= last_live.saturating_add(watchdog) {
                let failure = Failure::new(liveness.watchdog(streaming, watchdog));
                return Outcome::Failed { failure, streamed: streaming };
            }
        }
    }
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

#[cfg(test)]
mod tests;
