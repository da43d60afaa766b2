//! One thread per camera: connect, stream, detect failure (error, EOS, watchdog), back off, retry.
//! Runtime changes start or stop only the cameras that changed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::Frame;
use super::health::{CameraHealth, HealthSnapshot, IngestState};
use super::pipeline::{self, Outputs};
use super::queue::FrameQueue;
use super::spec::IngestSpec;
use super::{keyframe, rtp, rtsp};
use crate::clock::{Clock, Millis};
use crate::config::{CameraStatus, Transport, mask_credentials};

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

struct Control {
    stop: Mutex<bool>,
    cv: Condvar,
}

impl Control {
    fn stopped(&self) -> bool {
        *self.stop.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Waits up to `d`; true when asked to stop meanwhile.
    fn wait(&self, d: Duration) -> bool {
        let g = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = self.cv.wait_timeout_while(g, d, |s| !*s).unwrap_or_else(|e| e.into_inner());
        *g
    }
    fn request_stop(&self) {
        *self.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }
}

struct Running {
    spec: IngestSpec,
    health: Arc<CameraHealth>,
    queue: Arc<FrameQueue>,
    ctl: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

/// All running cameras.
pub struct Ingest {
    cams: Mutex<BTreeMap<String, Running>>,
    status_tx: Option<tokio::sync::mpsc::Sender<StatusEvent>>,
    clock: Arc<dyn Clock>,
    status_dropped: Arc<AtomicU64>,
}

impl Ingest {
    /// `status_tx` receives registry status changes (online/offline); `None` to not record them.
    pub fn new(clock: Arc<dyn Clock>, status_tx: Option<tokio::sync::mpsc::Sender<StatusEvent>>) -> Self {
        Self { cams: Mutex::new(BTreeMap::new()), status_tx, clock, status_dropped: Arc::new(AtomicU64::new(0)) }
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
        let ctl = Arc::new(Control { stop: Mutex::new(false), cv: Condvar::new() });
        let worker = Worker {
            spec: spec.clone(),
            health: health.clone(),
            queue: queue.clone(),
            ctl: ctl.clone(),
            clock: self.clock.clone(),
            status_tx: self.status_tx.clone(),
            status_dropped: self.status_dropped.clone(),
            last_status: None,
            last_failure: None,
            gst_health: false,
        };
        let thread = std::thread::Builder::new().name(format!("ingest-{}", spec.id)).spawn(move || worker.run());
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                health.record_error(&format!("cannot start a thread: {e}"));
                None
            }
        };
        self.lock().insert(spec.id.clone(), Running { spec, health, queue, ctl, thread });
    }

    /// Stops one camera and waits for its pipeline to be torn down.
    pub fn stop(&self, id: &str) -> bool {
        let Some(mut r) = self.lock().remove(id) else { return false };
        r.ctl.request_stop();
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

/// How often the health profile reads its socket.
const HEALTH_POLL_MS: u64 = 200;

/// Why one connection ended.
enum Outcome {
    Stopped,
    Failed { reason: String, streamed: bool },
}

struct Worker {
    spec: IngestSpec,
    health: Arc<CameraHealth>,
    queue: Arc<FrameQueue>,
    ctl: Arc<Control>,
    clock: Arc<dyn Clock>,
    status_tx: Option<tokio::sync::mpsc::Sender<StatusEvent>>,
    status_dropped: Arc<AtomicU64>,
    last_status: Option<CameraStatus>,
    last_failure: Option<String>,
    /// `health` through rtspsrc: the RTSP client could not talk to this server (TLS, no TCP).
    gst_health: bool,
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

    fn run(mut self) {
        let mut failures: u32 = 0;
        let mut rng = seed(&self.spec.id, self.now());
        loop {
            if self.ctl.stopped() {
                break;
            }
            self.transition(IngestState::Connecting, "connecting");
            let password = match self.spec.password.as_ref().map(|s| s.resolve()) {
                None => None,
                Some(Ok(s)) => Some(s),
                Some(Err(e)) => {
                    failures += 1;
                    if self.back_off(failures, &format!("password: {e}"), &mut rng) {
                        break;
                    }
                    continue;
                }
            };
            match self.run_once(password.as_ref().map(|s| s.expose())) {
                Outcome::Stopped => break,
                Outcome::Failed { reason, streamed } => {
                    let reason = explain(&reason, &self.spec.url);
                    let reason = scrub(&reason, password.as_ref().map(|s| s.expose()));
                    if streamed {
                        failures = 0;
                        self.health.record_reconnect(self.now());
                        self.transition(IngestState::Stalled, &reason);
                    }
                    failures += 1;
                    if self.back_off(failures, &reason, &mut rng) {
                        break;
                    }
                }
            }
        }
        self.transition(IngestState::Disabled, "stopped");
    }

    /// Records the failure and waits out the back-off; true when asked to stop meanwhile.
    fn back_off(&mut self, failures: u32, reason: &str, rng: &mut u64) -> bool {
        let d = backoff_delay(self.spec.backoff_initial, self.spec.backoff_max, failures, rng);
        self.health.record_error(reason);
        self.health.record_failure(self.now() + d.as_millis() as Millis);
        self.transition(IngestState::Backoff, reason);
        self.ctl.wait(d)
    }

    fn run_once(&mut self, password: Option<&str>) -> Outcome {
        if self.spec.profile == crate::config::Profile::Health
            && self.spec.transport != Transport::Udp
            && !self.gst_health
        {
            return self.run_health(password);
        }
        let clock = self.clock.clone();
        let outputs = Outputs {
            health: self.health.clone(),
            queue: Some(self.queue.clone()),
            now_ms: Arc::new(move || clock.now_ms()),
        };
        let pipeline = match pipeline::build(&self.spec, password, outputs) {
            Ok(p) => p,
            Err(e) => return Outcome::Failed { reason: e.to_string(), streamed: false },
        };
        let outcome = self.watch(&pipeline);
        let _ = pipeline.set_state(gst::State::Null);
        outcome
    }

    /// The `health` profile: our RTSP client over TCP (see `rtsp`), liveness on every packet,
    /// one keyframe decoded per `sample_every`. Falls back to rtspsrc for servers it cannot talk to.
    fn run_health(&mut self, password: Option<&str>) -> Outcome {
        let watchdog = self.spec.watchdog.as_millis() as Millis;
        let started = self.now();
        let mut client = match rtsp::Client::open(
            self.spec.url.as_str(),
            self.spec.username.as_deref(),
            password,
            self.spec.watchdog,
        ) {
            Ok(c) => c,
            // Decided on the server's status code: 461 is a server that will not stream over TCP.
            Err(e) if e.status() == Some(rtsp::UNSUPPORTED_TRANSPORT) && self.spec.transport == Transport::Tcp => {
                // Configured for TCP and the server will not do TCP: say so, do not switch.
                return Outcome::Failed {
                    reason: format!("the server does not stream over TCP ({e}); set transport = \"auto\" or \"udp\""),
                    streamed: false,
                };
            }
            Err(e) if e.status() == Some(rtsp::UNSUPPORTED_TRANSPORT) || e == rtsp::RtspError::Tls => {
                tracing::info!(camera = %self.spec.id, why = %e, "health profile through rtspsrc");
                self.gst_health = true;
                return self.run_once(password);
            }
            Err(e) => return Outcome::Failed { reason: e.to_string(), streamed: false },
        };
        let track = client.track.clone();
        self.health.record_stream(Some(track.codec.as_str().to_string()), None);
        let mut asm = rtp::KeyframeAssembler::new(track.codec, track.payload_type, &track.parameter_sets);
        let camera: Arc<str> = self.spec.id.as_str().into();
        let size = (self.spec.width as usize, self.spec.height as usize);
        let every = self.spec.sample_every.as_millis() as Millis;
        // No keyframe at all for this long while packets flow: nothing here can be decoded.
        let key_timeout = (3 * watchdog).max(30_000);
        let (mut streaming, mut last_packet, mut last_key) = (false, started, started);
        let mut next_decode = started;
        let mut decode_failures = 0u32;
        let mut last_sample = 0;
        let outcome = loop {
            // A few reads a second, each taking whatever arrived: most of the saving is here.
            if self.ctl.wait(Duration::from_millis(HEALTH_POLL_MS)) {
                break Outcome::Stopped;
            }
            let now = self.now();
            let want = now >= next_decode;
            let (mut packets, mut keyframe) = (0u64, None);
            let mut saw_key = false;
            let polled = client.poll(now, |pkt| {
                let (info, au) = asm.push(pkt, want);
                if info.video {
                    packets += 1;
                }
                saw_key |= info.keyframe_started;
                if keyframe.is_none() {
                    keyframe = au;
                }
            });
            let bytes = match polled {
                Ok(b) => b,
                Err(e) => break Outcome::Failed { reason: e.to_string(), streamed: streaming },
            };
            self.health.bytes_received.fetch_add(bytes as u64, Ordering::Relaxed);
            if packets > 0 {
                last_packet = now;
                self.health.last_packet_ms.store(now.max(0) as u64, Ordering::Relaxed);
            }
            if saw_key {
                last_key = now;
            }
            if let Some(au) = keyframe {
                match keyframe::decode(&camera, track.codec, &au, self.spec.format, size, now) {
                    Ok((frame, native)) => {
                        decode_failures = 0;
                        next_decode = now + every;
                        self.health.frames_decoded.fetch_add(1, Ordering::Relaxed);
                        if native.0 > 0 {
                            self.health.record_stream(None, Some(native));
                        }
                        pipeline::deliver(&self.health, Some(&self.queue), frame);
                    }
                    Err(e) => {
                        decode_failures += 1;
                        self.health.record_error(&e);
                        if decode_failures >= 3 {
                            break Outcome::Failed { reason: e, streamed: streaming };
                        }
                    }
                }
            }
            if now - last_sample >= 1000 {
                self.health.sample(now);
                last_sample = now;
            }
            if !streaming && packets > 0 {
                streaming = true;
                self.transition(IngestState::Streaming, &format!("first packet {} ms after connecting", now - started));
            }
            if now - last_packet > watchdog {
                let what = if streaming { "no data" } else { "no data within" };
                break Outcome::Failed {
                    reason: format!("{what} for {} s (watchdog)", watchdog as f64 / 1000.0),
                    streamed: streaming,
                };
            }
            if streaming && now - last_key > key_timeout {
                break Outcome::Failed {
                    reason: format!("packets arrive but no keyframe for {} s", key_timeout / 1000),
                    streamed: true,
                };
            }
        };
        client.teardown();
        outcome
    }

    /// Plays the pipeline and watches its bus and frame clock until it fails or we are stopped.
    fn watch(&mut self, pipeline: &gst::Pipeline) -> Outcome {
        let Some(bus) = pipeline.bus() else {
            return Outcome::Failed { reason: "pipeline has no bus".into(), streamed: false };
        };
        if let Err(e) = pipeline.set_state(gst::State::Playing) {
            let detail = bus_error(&bus).unwrap_or_else(|| e.to_string());
            return Outcome::Failed { reason: detail, streamed: false };
        }
        let watchdog = self.spec.watchdog.as_millis() as Millis;
        let started = self.now();
        let mut streaming = false;
        let mut last_sample = 0;
        loop {
            if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
                match msg.view() {
                    gst::MessageView::Error(e) => {
                        return Outcome::Failed {
                            reason: describe_error(e.error().message(), e.debug().as_deref()),
                            streamed: streaming,
                        };
                    }
                    gst::MessageView::Eos(_) => {
                        return Outcome::Failed {
                            reason: "the server ended the stream (EOS)".into(),
                            streamed: streaming,
                        };
                    }
                    gst::MessageView::Warning(w) => {
                        tracing::debug!(camera = %self.spec.id, warning = %w.error(), "ingest warning");
                    }
                    _ => {}
                }
            }
            if self.ctl.stopped() {
                return Outcome::Stopped;
            }
            let now = self.now();
            if now - last_sample >= 1000 {
                self.health.sample(now);
                last_sample = now;
            }
            let last_frame = self.health.last_frame_ms.load(Ordering::Relaxed) as Millis;
            // The health profile decodes keyframes only (one per GOP, late with B-frames):
            // its liveness is packets.
            let last = if self.spec.profile == crate::config::Profile::Health {
                last_frame.max(self.health.last_packet_ms.load(Ordering::Relaxed) as Millis)
            } else {
                last_frame
            };
            if !streaming && last >= started {
                streaming = true;
                self.transition(IngestState::Streaming, &format!("first frame {} ms after connecting", last - started));
            }
            if streaming && now - last > watchdog {
                return Outcome::Failed {
                    reason: format!("no frame for {} s (watchdog)", watchdog as f64 / 1000.0),
                    streamed: true,
                };
            }
            if !streaming && now - started > watchdog {
                return Outcome::Failed {
                    reason: format!("no frame within {} s of connecting (watchdog)", watchdog as f64 / 1000.0),
                    streamed: false,
                };
            }
        }
    }
}

/// The first error already on the bus, if any (state change failures post it there).
fn bus_error(bus: &gst::Bus) -> Option<String> {
    while let Some(msg) = bus.pop() {
        if let gst::MessageView::Error(e) = msg.view() {
            return Some(describe_error(e.error().message(), e.debug().as_deref()));
        }
    }
    None
}

/// "Could not open resource for reading. (Got error response: 404 (Not Found).)": the message
/// plus the last line of GStreamer's debug text, which names the cause without source paths.
fn describe_error(message: &str, debug: Option<&str>) -> String {
    let detail = debug.and_then(|d| d.lines().map(str::trim).rfind(|l| !l.is_empty())).unwrap_or("");
    let detail = detail.rsplit_once("):").map(|(_, t)| t.trim()).unwrap_or(detail);
    if detail.is_empty() || message.contains(detail) { message.to_string() } else { format!("{message} ({detail})") }
}

/// Makes GStreamer's generic messages say what happened: RTSP status codes in words, and for a
/// failed connection, whether the name did not resolve or the port refused or did not answer.
fn explain(reason: &str, url: &crate::config::RtspUrl) -> String {
    if reason.contains("404") {
        return format!("the server has no stream at this path (RTSP 404 Not Found): {reason}");
    }
    if reason.contains("401") {
        return format!("the server refused the credentials (RTSP 401 Unauthorized): {reason}");
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
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let mut rng = seed("cam", 1);
        let (i, m) = (Duration::from_millis(500), Duration::from_secs(30));
        for n in 1..=12 {
            let d = backoff_delay(i, m, n, &mut rng);
            let base = (i * (1 << (n - 1))).min(m);
            assert!(d >= base / 2 && d < base, "failure {n}: {d:?} vs {base:?}");
        }
        let a: Vec<Duration> = (0..5).map(|_| backoff_delay(i, m, 10, &mut rng)).collect();
        assert!(a.windows(2).any(|w| w[0] != w[1]), "jitter varies: {a:?}");
    }

    #[test]
    fn errors_are_described_without_paths_or_secrets() {
        let d = describe_error(
            "Could not open resource for reading.",
            Some(
                "../gst/rtsp/gstrtspsrc.c(6427): gst_rtspsrc_send (): /GstPipeline:cam-x/GstRTSPSrc:src:\nGot error response: 404 (Not Found).",
            ),
        );
        assert_eq!(d, "Could not open resource for reading. (Got error response: 404 (Not Found).)");
        assert_eq!(scrub("rtsp://u:hunter2@h/x failed hunter2", Some("hunter2")), "rtsp://***@h/x failed ***");
    }
}
