//! The supervision loop driven by scripted sources on a simulated clock: back-off, watchdog,
//! first frame, the fallback on a typed refusal, stop, and the status events, in milliseconds of
//! real time. The test moves the clock only while the camera's thread waits on it
//! (`SimClock::wait_parked`), so every step is deterministic and nothing sleeps.

use std::collections::VecDeque;

use super::*;
use crate::clock::SimClock;
use crate::config::Transport;
use crate::ingest::PixelFormat;
use crate::ingest::rtsp::RtspError;

const CAM: &str = "cam";
const T0: Millis = 1_780_000_000_000;
const WATCHDOG: Millis = 10_000;

/// What a scripted connection yields, each at a time after it opened.
enum Step {
    Packets,
    Frame,
    End(&'static str),
}

/// One scripted `open`: the source kind it expects, and what it does.
enum Attempt {
    /// Opens; yields the steps, then nothing (a hang).
    Open(Vec<(Millis, Step)>),
    Fail(&'static str),
    Refuse(Refusal),
}

/// What happened to the scripted sources, with the clock's time.
type Log = Arc<Mutex<Vec<(Millis, String)>>>;

struct ScriptOpener {
    clock: SimClock,
    /// Its sources never block (`try_next`): cameras on the pool step them.
    pollable: bool,
    attempts: Mutex<VecDeque<(SourceKind, Attempt)>>,
    log: Log,
}

impl Opener for ScriptOpener {
    fn open(&self, kind: SourceKind, camera: &Camera<'_>) -> Result<Box<dyn FrameSource>, OpenError> {
        let now = self.clock.now_ms();
        self.log.lock().unwrap().push((now, format!("open {kind:?}")));
        let next = self.attempts.lock().unwrap().pop_front();
        let steps = match next {
            // The script is over: a source that never yields.
            None => vec![],
            Some((want, _)) if want != kind => {
                return Err(OpenError::Failed(Failure::new(format!("script expected {want:?}, got {kind:?}"))));
            }
            Some((_, Attempt::Open(steps))) => steps,
            Some((_, Attempt::Fail(text))) => return Err(OpenError::Failed(Failure::new(text))),
            Some((_, Attempt::Refuse(r))) => return Err(OpenError::Refused(r)),
        };
        let steps = steps.into_iter().map(|(at, s)| (now + at, s)).collect();
        let camera = camera.spec.id.as_str().into();
        Ok(Box::new(Scripted {
            clock: self.clock.clone(),
            steps,
            log: self.log.clone(),
            camera,
            pollable: self.pollable,
        }))
    }
}

struct Scripted {
    clock: SimClock,
    steps: VecDeque<(Millis, Step)>,
    log: Log,
    camera: Arc<str>,
    pollable: bool,
}

impl Scripted {
    fn event(&self, step: Step) -> Event {
        match step {
            Step::Packets => Event::Packets { count: 10, bytes: 10_000 },
            Step::Frame => Event::Frame(Frame {
                camera: self.camera.clone(),
                captured_ms: self.clock.now_ms(),
                pts_ns: None,
                width: 4,
                height: 2,
                format: PixelFormat::Gray8,
                data: vec![0; 8],
            }),
            Step::End(text) => Event::Ended(Failure::new(text)),
        }
    }
}

impl FrameSource for Scripted {
    fn next(&mut self, deadline: Millis, stop: &Stop) -> Event {
        let at = self.steps.front().map(|s| s.0).filter(|at| *at <= deadline);
        if self.clock.wait_until(at.unwrap_or(deadline), stop) {
            return Event::Stopped;
        }
        let Some((_, step)) = at.and_then(|_| self.steps.pop_front()) else { return Event::Idle };
        self.event(step)
    }

    fn try_next(&mut self, now: Millis) -> Option<Event> {
        if self.steps.front().is_none_or(|(at, _)| *at > now) {
            return None;
        }
        let (_, step) = self.steps.pop_front()?;
        Some(self.event(step))
    }

    fn wake_at(&self) -> Option<Millis> {
        self.pollable.then(|| self.steps.front().map_or(Millis::MAX, |s| s.0))
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.log.lock().unwrap().push((self.clock.now_ms(), "closed".into()));
    }
}

struct Rig {
    clock: SimClock,
    ing: Arc<Ingest>,
    rx: tokio::sync::mpsc::Receiver<StatusEvent>,
    log: Log,
}

fn spec(profile: Profile, transport: Transport) -> IngestSpec {
    let mut s = IngestSpec::with_defaults(CAM, "rtsp://cam.example/live".parse().unwrap(), profile);
    s.transport = transport;
    s.watchdog = Duration::from_millis(WATCHDOG as u64);
    s.backoff_initial = Duration::from_secs(1);
    s.backoff_max = Duration::from_secs(8);
    s
}

/// Starts the camera on a clock at `T0` with `attempts` scripted, on a thread of its own.
fn rig(spec: IngestSpec, attempts: Vec<(SourceKind, Attempt)>) -> Rig {
    rig_on(spec, attempts, false)
}

/// Starts the camera with `attempts` scripted; `pooled`: on the shared threads (a `health`
/// camera on TCP), its sources stepped without blocking.
fn rig_on(spec: IngestSpec, attempts: Vec<(SourceKind, Attempt)>, pooled: bool) -> Rig {
    let clock = SimClock::at(T0);
    let log = Log::default();
    let opener = ScriptOpener {
        clock: clock.clone(),
        pollable: pooled,
        attempts: Mutex::new(attempts.into()),
        log: log.clone(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let mut ing = Ingest::with_opener(Arc::new(clock.clone()), Some(tx), Arc::new(opener));
    if pooled {
        ing.pool = Some(pool::Pool::new(Arc::new(clock.clone())));
    }
    let ing = Arc::new(ing);
    ing.start(spec);
    Rig { clock, ing, rx, log }
}

impl Rig {
    /// The deadline the camera's thread waits for, once it waits.
    fn parked(&self) -> Millis {
        self.clock.wait_parked(1, Duration::from_secs(10)).expect("the camera waits on the clock")
    }

    /// Moves the clock to each deadline the camera waits for until `done` holds for its health
    /// while it waits; returns the deadline it then waits for (the clock is not moved to it).
    fn run_until(&self, what: &str, done: impl Fn(&HealthSnapshot) -> bool) -> Millis {
        for _ in 0..10_000 {
            let deadline = self.parked();
            if done(&self.ing.health(CAM).unwrap()) {
                return deadline;
            }
            self.clock.set(deadline);
        }
        panic!("{what}: not reached; {:?}", self.ing.health(CAM));
    }

    fn state(&self) -> IngestState {
        self.ing.health(CAM).unwrap().state
    }

    /// Lets the camera run into its next back-off and through it, until it waits again; returns
    /// the back-off's length and the camera's health during it.
    fn back_off(&self) -> (Millis, HealthSnapshot) {
        let until = self.run_until("back-off", |h| h.state == IngestState::Backoff);
        let h = self.ing.health(CAM).unwrap();
        let d = until - self.clock.now_ms();
        self.clock.set(until);
        self.parked();
        (d, h)
    }

    fn events(&mut self) -> Vec<StatusEvent> {
        std::iter::from_fn(|| self.rx.try_recv().ok()).collect()
    }

    fn log(&self) -> Vec<(Millis, String)> {
        self.log.lock().unwrap().iter().map(|(t, s)| (t - T0, s.clone())).collect()
    }

    /// Stops the camera from another thread; fails the test if that does not return promptly.
    fn stop(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        let ing = self.ing.clone();
        std::thread::spawn(move || tx.send(ing.stop(CAM)));
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(true), "the camera did not stop");
    }
}

fn ev(from: IngestState, to: IngestState, status: Option<CameraStatus>, reason: &str, at: Millis) -> StatusEvent {
    let record = !(from == IngestState::Backoff && to == IngestState::Connecting);
    StatusEvent { camera: CAM.into(), from, to, record, status, reason: reason.into(), at_ms: T0 + at }
}

fn fails(n: usize, text: &'static str) -> Vec<(SourceKind, Attempt)> {
    (0..n).map(|_| (SourceKind::Pipeline, Attempt::Fail(text))).collect()
}

#[test]
fn backoff_grows_caps_and_starts_over_after_a_healthy_run() {
    let mut attempts = fails(6, "connection refused by 10.0.0.1:554: nothing listens there");
    let healthy = vec![(100, Step::Frame), (200, Step::Frame), (300, Step::End("the server ended the stream (EOS)"))];
    attempts.push((SourceKind::Pipeline, Attempt::Open(healthy)));
    attempts.extend(fails(2, "connection refused by 10.0.0.1:554: nothing listens there"));
    let mut r = rig(spec(Profile::Street, Transport::Tcp), attempts);
    for (n, base) in [1000, 2000, 4000, 8000, 8000, 8000].into_iter().enumerate() {
        let (d, h) = r.back_off();
        assert!((base / 2..base).contains(&d), "failure {}: {d} ms, base {base} ms", n + 1);
        assert_eq!(h.consecutive_failures, n as u32 + 1);
    }
    // The healthy run: frames, then the server ends the stream.
    let (after_run, h) = r.back_off();
    assert!((500..1000).contains(&after_run), "after a healthy run: {after_run} ms");
    assert_eq!((h.reconnects_last_hour, h.stalls_last_hour, h.frames_delivered), (1, 1, 2), "{h:?}");
    let (next, _) = r.back_off();
    assert!((1000..2000).contains(&next), "the second failure after it: {next} ms");
    // Identical failures are recorded once; the one after the healthy run again.
    let backoffs: Vec<String> =
        r.events().into_iter().filter(|e| e.to == IngestState::Backoff && e.record).map(|e| e.reason).collect();
    assert_eq!(backoffs.len(), 3, "{backoffs:?}");
}

#[test]
fn a_hanging_source_is_torn_down_by_the_watchdog_after_exactly_watchdog_s() {
    // Streaming, then silence; and silence from the start.
    let attempts = vec![
        (SourceKind::Pipeline, Attempt::Open(vec![(100, Step::Frame)])),
        (SourceKind::Pipeline, Attempt::Open(vec![])),
    ];
    let mut r = rig(spec(Profile::Street, Transport::Tcp), attempts);
    let until = r.run_until("back-off", |h| h.state == IngestState::Backoff);
    let e = r.events();
    let stalled = e.iter().find(|e| e.to == IngestState::Stalled).expect("stalled");
    assert_eq!(stalled.at_ms, T0 + 100 + WATCHDOG, "{e:?}");
    assert_eq!(stalled.reason, "stalled: no frame for 10 s (watchdog)");
    assert_eq!(r.log(), [(0, "open Pipeline".to_string()), (100 + WATCHDOG, "closed".to_string())]);
    r.clock.set(until);
    let reopened = until - T0;
    r.run_until("second back-off", |h| h.state == IngestState::Backoff);
    let e = r.events();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].reason, "backoff: no frame within 10 s of connecting (watchdog)");
    assert_eq!(e[0].at_ms - T0, reopened + WATCHDOG);
    assert_eq!(r.log()[3], (reopened + WATCHDOG, "closed".to_string()));
}

#[test]
fn packets_keep_a_health_camera_alive_and_only_frames_keep_the_others() {
    let packets = |n: Millis| (1..=n).map(|s| (s * 1000, Step::Packets)).collect::<Vec<_>>();
    // Health: packets every second for 30 s and no frame: streaming all along, then "no data".
    let mut r = rig(spec(Profile::Health, Transport::Tcp), vec![(SourceKind::Keyframes, Attempt::Open(packets(30)))]);
    r.run_until("back-off", |h| h.state == IngestState::Backoff);
    let e = r.events();
    assert_eq!(e[0].reason, "streaming: first packet 1000 ms after connecting");
    assert_eq!((e[1].reason.as_str(), e[1].at_ms - T0), ("stalled: no data for 10 s (watchdog)", 30_000 + WATCHDOG));
    let h = r.ing.health(CAM).unwrap();
    assert!(h.last_frame_at.is_none(), "{h:?}");
    // Street: packets alone are not a picture.
    let mut r = rig(spec(Profile::Street, Transport::Tcp), vec![(SourceKind::Pipeline, Attempt::Open(packets(30)))]);
    r.run_until("back-off", |h| h.state == IngestState::Backoff);
    let e = r.events();
    assert_eq!(e.len(), 1, "never streaming: {e:?}");
    assert_eq!(
        (e[0].reason.as_str(), e[0].at_ms - T0),
        ("backoff: no frame within 10 s of connecting (watchdog)", WATCHDOG)
    );
}

#[test]
fn the_first_frame_moves_to_streaming_and_frames_reach_the_subscriber() {
    let steps = vec![(250, Step::Frame), (450, Step::Frame)];
    let mut r = rig(spec(Profile::Checkpoint, Transport::Tcp), vec![(SourceKind::Pipeline, Attempt::Open(steps))]);
    let q = r.ing.subscribe(CAM).unwrap();
    r.run_until("streaming", |h| h.state == IngestState::Streaming);
    assert_eq!(
        r.events(),
        [ev(
            IngestState::Connecting,
            IngestState::Streaming,
            Some(CameraStatus::Online),
            "streaming: first frame 250 ms after connecting",
            250
        )]
    );
    r.run_until("the second frame", |h| h.frames_delivered == 2);
    let stamps: Vec<Millis> = std::iter::from_fn(|| q.try_pop()).map(|f| f.captured_ms - T0).collect();
    assert_eq!(stamps, [250, 450]);
    assert_eq!(r.ing.last_frame(CAM).unwrap().captured_ms, T0 + 450);
    assert_eq!(r.state(), IngestState::Streaming);
}

fn refused_tcp() -> Refusal {
    Refusal::TcpTransport(RtspError::Status {
        method: "SETUP".into(),
        code: 461,
        reason: "Unsupported Transport".into(),
    })
}

#[test]
fn a_typed_refusal_on_auto_hands_the_camera_to_the_other_source_for_good() {
    let attempts = vec![
        (SourceKind::Keyframes, Attempt::Refuse(refused_tcp())),
        (
            SourceKind::Pipeline,
            Attempt::Open(vec![(100, Step::Frame), (200, Step::End("the server ended the stream (EOS)"))]),
        ),
        (SourceKind::Pipeline, Attempt::Open(vec![(100, Step::Frame)])),
    ];
    let mut r = rig(spec(Profile::Health, Transport::Auto), attempts);
    r.run_until("streaming", |h| h.state == IngestState::Streaming);
    assert_eq!(r.events()[0].reason, "streaming: first frame 100 ms after connecting");
    let (d, _) = r.back_off();
    r.run_until("streaming again", |h| h.state == IngestState::Streaming);
    assert_eq!(
        r.log(),
        [
            (0, "open Keyframes".to_string()),
            (0, "open Pipeline".to_string()),
            (200, "closed".to_string()),
            (200 + d, "open Pipeline".to_string()),
        ],
        "refused once, rtspsrc from then on"
    );
}

#[test]
fn a_tcp_camera_refused_tcp_says_what_to_set_and_is_not_switched() {
    let attempts = vec![
        (SourceKind::Keyframes, Attempt::Refuse(refused_tcp())),
        (SourceKind::Keyframes, Attempt::Refuse(refused_tcp())),
        // A failure that merely mentions 461 is not a refusal.
        (SourceKind::Keyframes, Attempt::Fail("RTSP DESCRIBE answered 400 Bad Request (461)")),
    ];
    let r = rig(spec(Profile::Health, Transport::Tcp), attempts);
    let e = r.back_off().1.last_error.unwrap();
    assert_eq!(
        e,
        "the server does not stream over TCP (SETUP answered 461 Unsupported Transport: TCP transport refused); \
         set transport = \"auto\" or \"udp\""
    );
    r.back_off();
    r.back_off();
    // Three refusals and failures, then the end of the script (a source that hangs).
    let opened: Vec<String> = r.log().into_iter().map(|(_, s)| s).collect();
    assert_eq!(opened, ["open Keyframes"; 4], "asked again each time, never rtspsrc");
    // TLS is a refusal too, whatever the transport: rtspsrc speaks it.
    let attempts = vec![
        (SourceKind::Keyframes, Attempt::Refuse(Refusal::Tls)),
        (SourceKind::Pipeline, Attempt::Open(vec![(100, Step::Frame)])),
    ];
    let r = rig(spec(Profile::Health, Transport::Tcp), attempts);
    r.run_until("streaming", |h| h.state == IngestState::Streaming);
}

#[test]
fn stop_is_honoured_within_one_wait() {
    // In back-off, an hour before the next try.
    let mut s = spec(Profile::Street, Transport::Tcp);
    (s.backoff_initial, s.backoff_max) = (Duration::from_secs(7200), Duration::from_secs(7200));
    let mut r = rig(s, fails(1, "connection refused"));
    r.run_until("back-off", |h| h.state == IngestState::Backoff);
    let at = r.clock.now_ms();
    r.stop();
    assert_eq!(r.clock.now_ms(), at, "stopped without the clock moving");
    assert_eq!(r.clock.next_deadline(), None, "nothing waits any more");
    let last = r.events().pop().unwrap();
    assert_eq!(
        (last.from, last.to, last.reason.as_str()),
        (IngestState::Backoff, IngestState::Disabled, "disabled: stopped")
    );
    // Streaming from a source waiting for its next frame: the source is closed at once.
    let mut r = rig(
        spec(Profile::Street, Transport::Tcp),
        vec![(SourceKind::Pipeline, Attempt::Open(vec![(100, Step::Frame)]))],
    );
    r.run_until("streaming", |h| h.state == IngestState::Streaming);
    let at = r.clock.now_ms() - T0;
    r.stop();
    assert_eq!(r.log().last().unwrap(), &(at, "closed".to_string()));
    let last = r.events().pop().unwrap();
    assert_eq!((last.from, last.to), (IngestState::Streaming, IngestState::Disabled));
}

#[test]
fn the_status_events_of_a_stall_and_a_recovery() {
    let attempts = vec![
        (SourceKind::Pipeline, Attempt::Open(vec![(100, Step::Frame)])),
        (SourceKind::Pipeline, Attempt::Open(vec![(50, Step::Frame)])),
    ];
    let mut r = rig(spec(Profile::Street, Transport::Tcp), attempts);
    let (d, _) = r.back_off();
    r.run_until("streaming again", |h| h.state == IngestState::Streaming);
    let back = 100 + WATCHDOG + d;
    r.stop();
    use IngestState::{Backoff, Connecting, Disabled, Stalled, Streaming};
    let (online, offline) = (Some(CameraStatus::Online), Some(CameraStatus::Offline));
    assert_eq!(
        r.events(),
        [
            ev(Connecting, Streaming, online, "streaming: first frame 100 ms after connecting", 100),
            ev(Streaming, Stalled, offline, "stalled: no frame for 10 s (watchdog)", 100 + WATCHDOG),
            ev(Stalled, Backoff, None, "backoff: no frame for 10 s (watchdog)", 100 + WATCHDOG),
            ev(Connecting, Streaming, online, "streaming: first frame 50 ms after connecting", back + 50),
            ev(Streaming, Disabled, None, "disabled: stopped", back + 50),
        ]
    );
}

#[test]
fn backoff_delay_grows_is_capped_and_jittered() {
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
fn errors_are_explained_on_the_status_and_shown_without_paths_or_secrets() {
    let d = crate::ingest::pipeline::describe_error(
        "Could not open resource for reading.",
        Some(
            "../gst/rtsp/gstrtspsrc.c(6427): gst_rtspsrc_send (): /GstPipeline:cam-x/GstRTSPSrc:src:\nGot error response: 404 (Not Found).",
        ),
    );
    assert_eq!(d, "Could not open resource for reading. (Got error response: 404 (Not Found).)");
    assert_eq!(scrub("rtsp://u:hunter2@h/x failed hunter2", Some("hunter2")), "rtsp://***@h/x failed ***");
    let url: crate::config::RtspUrl = "rtsp://cam.example/live".parse().unwrap();
    let typed = Failure::from(RtspError::Status { method: "DESCRIBE".into(), code: 404, reason: "Not Found".into() });
    assert_eq!(
        explain(&typed, &url),
        "the server has no stream at this path (RTSP 404 Not Found): RTSP DESCRIBE answered 404 Not Found"
    );
    let unauthorized = Failure { status: Some(401), text: "Unauthorized (Unauthorized (401))".into() };
    assert!(explain(&unauthorized, &url).starts_with("the server refused the credentials (RTSP 401 Unauthorized)"));
    // GStreamer's text without details, and a number that only looks like a status.
    assert!(explain(&Failure::new(d), &url).starts_with("the server has no stream at this path"));
    let port = Failure::new("connection refused by 10.0.0.1:4040: nothing listens there");
    assert_eq!(explain(&port, &url), port.text);
}

#[test]
fn a_camera_on_the_shared_threads_runs_the_same_loop() {
    let packets = |n: Millis| (1..=n).map(|s| (s * 1000, Step::Packets)).collect::<Vec<_>>();
    let attempts = vec![
        (SourceKind::Keyframes, Attempt::Open(packets(30))),
        (SourceKind::Keyframes, Attempt::Fail("connection refused by 10.0.0.1:554: nothing listens there")),
        (SourceKind::Keyframes, Attempt::Open(vec![(100, Step::Packets), (200, Step::Frame)])),
    ];
    let mut r = rig_on(spec(Profile::Health, Transport::Tcp), attempts, true);
    assert_eq!(r.ing.pool_threads().own, 0);
    // Packets for 30 s, then silence: the watchdog fires at exactly last packet + watchdog.
    let until = r.run_until("back-off", |h| h.state == IngestState::Backoff);
    let e = r.events();
    assert_eq!(e[0].reason, "streaming: first packet 1000 ms after connecting");
    assert_eq!((e[1].reason.as_str(), e[1].at_ms - T0), ("stalled: no data for 10 s (watchdog)", 30_000 + WATCHDOG));
    assert_eq!(r.log()[1], (30_000 + WATCHDOG, "closed".to_string()));
    // The refused connection backs off; the next one streams and delivers its frame.
    r.clock.set(until);
    let (d, h) = r.back_off();
    assert!((1000..2000).contains(&d), "{d} ms");
    assert_eq!(h.consecutive_failures, 2, "{h:?}");
    let opened = r.clock.now_ms();
    r.run_until("streaming", |h| h.frames_delivered == 1);
    assert_eq!(r.ing.last_frame(CAM).unwrap().captured_ms, opened + 200);
    assert_eq!(r.state(), IngestState::Streaming);
    let t = r.ing.pool_threads();
    assert_eq!((t.runners, t.own), (std::thread::available_parallelism().unwrap().get().min(8), 0), "{t:?}");
    // Stopped on the runner: the source closed, the state disabled.
    r.stop();
    assert_eq!(r.log().last().unwrap().1, "closed");
    assert!(r.ing.health(CAM).is_none());
    let last = r.events().pop().unwrap();
    assert_eq!((last.from, last.to), (IngestState::Streaming, IngestState::Disabled));
}

#[test]
fn a_pooled_camera_whose_source_blocks_moves_to_a_thread_of_its_own() {
    // The opener's sources cannot be stepped (rtspsrc after a refusal, say): the camera leaves the
    // runners and goes on, on its own thread, with the same loop.
    let clock = SimClock::at(T0);
    let log = Log::default();
    let attempts = vec![(SourceKind::Keyframes, Attempt::Open(vec![(100, Step::Packets)]))];
    let opener =
        ScriptOpener { clock: clock.clone(), pollable: false, attempts: Mutex::new(attempts.into()), log: log.clone() };
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let mut ing = Ingest::with_opener(Arc::new(clock.clone()), Some(tx), Arc::new(opener));
    ing.pool = Some(pool::Pool::new(Arc::new(clock.clone())));
    let ing = Arc::new(ing);
    ing.start(spec(Profile::Health, Transport::Tcp));
    let r = Rig { clock, ing, rx, log };
    r.run_until("streaming", |h| h.state == IngestState::Streaming);
    assert_eq!(r.ing.pool_threads().own, 1);
    r.stop();
    assert_eq!(r.ing.pool_threads().own, 0);
    assert_eq!(r.log().last().unwrap().1, "closed");
}
