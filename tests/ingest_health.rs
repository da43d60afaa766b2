//! The `health` profile over real RTSP: its own RTSP client (TCP interleaved) keeps liveness on
//! every packet and decodes one keyframe per sampling interval; failures are detected within the
//! watchdog and named; Digest and Basic sign-in; H.265; rtspsrc still serves UDP cameras.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ingest::{Events, spec};
use tianwang::clock::SystemClock;
use tianwang::config::{Profile, SecretRef, Transport};
use tianwang::ingest::{Ingest, IngestSpec, IngestState, PixelFormat};
use tianwang::sim::{SimCamera, SimCodec, SimServer, garbage_server};

fn ingest() -> (Arc<Ingest>, Events) {
    tianwang::ingest::init_gstreamer().expect("gstreamer");
    let (tx, rx) = tokio::sync::mpsc::channel(4096);
    (Arc::new(Ingest::new(Arc::new(SystemClock), Some(tx))), Events::new(rx))
}

fn health(id: &str, url: &str, every_s: u64) -> IngestSpec {
    let mut s = spec(id, url, Profile::Health, 160, 90, 0);
    s.sample_every = Duration::from_secs(every_s);
    s
}

fn small(path: &str, keyframe_interval: u32) -> SimCamera {
    let mut c = SimCamera::new(path, 320, 180, 10);
    c.keyframe_interval = keyframe_interval;
    c.bitrate_kbps = 200;
    c
}

async fn shutdown(ing: Arc<Ingest>) {
    tokio::task::spawn_blocking(move || ing.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_keyframe_per_interval_and_liveness_on_packets() {
    let sim = SimServer::start().unwrap();
    let (ing, mut ev) = ingest();
    // A keyframe every second, sampled every 3 s; the watchdog (2 s) is shorter than the
    // sampling interval: liveness is the packets, not the decoded pictures.
    let mut card = small("hp", 10);
    card.pattern = "smpte".into();
    let url = sim.add(card);
    let mut h265 = small("hevc", 10);
    h265.codec = SimCodec::H265;
    let url265 = sim.add(h265);
    ing.start(health("hp", &url, 3));
    ing.start(health("hevc", &url265, 3));
    ev.wait("hp", "online", Duration::from_secs(30)).await;
    ev.wait("hevc", "online", Duration::from_secs(30)).await;
    let q = ing.subscribe("hp").unwrap();
    let before = ing.health("hp").unwrap();
    let mut stamps = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if let Some(f) = q.pop_timeout(Duration::from_millis(500)) {
            assert_eq!((f.width, f.height, f.format), (160, 90, PixelFormat::Rgb24));
            assert_eq!(f.data.len(), 160 * 90 * 3);
            // The colour bars, not a black or grey failed decode: bright on average, with both
            // saturated and dark pixels.
            let mean = f.data.iter().map(|&v| f64::from(v)).sum::<f64>() / f.data.len() as f64;
            assert!(mean > 60.0, "mean {mean}");
            assert!(f.data.iter().any(|&v| v > 180) && f.data.iter().any(|&v| v < 40));
            stamps.push(f.captured_ms);
        }
    }
    let after = ing.health("hp").unwrap();
    assert!((3..=4).contains(&stamps.len()), "{} frames in 10 s sampled every 3 s: {stamps:?}", stamps.len());
    for w in stamps.windows(2) {
        assert!(w[1] - w[0] >= 2900, "frames {} ms apart", w[1] - w[0]);
    }
    // 100 pictures (10 keyframes) were sent meanwhile; only the sampled ones were decoded.
    let decoded = after.frames_decoded - before.frames_decoded;
    assert!((3..=4).contains(&decoded), "{decoded} decoded: {before:?} -> {after:?}");
    assert_eq!(after.state, IngestState::Streaming);
    assert_eq!(after.stalls_last_hour, 0, "packets keep it live between samples");
    assert!(after.bytes_per_second > 1000.0, "{after:?}");
    assert_eq!(after.codec.as_deref(), Some("h264"));
    assert_eq!(after.resolution_seen.as_deref(), Some("320x180"), "the stream's own size");
    assert!(ev.drain_for("hp").is_empty());
    let h = ing.health("hevc").unwrap();
    assert_eq!(h.codec.as_deref(), Some("h265"));
    assert!(ing.last_frame("hevc").is_some_and(|f| f.width == 160), "an H.265 keyframe decoded: {h:?}");
    shutdown(ing).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_detected_within_the_watchdog_and_named() {
    let sim = SimServer::start().unwrap();
    let (ing, mut ev) = ingest();
    let steady = sim.add(small("steady", 10));
    let stopper = sim.add(small("stopper", 10));
    let hanger = sim.add(small("hanger", 10));
    let garbage_port = garbage_server().unwrap();
    let unresolvable = format!("rtsp://{}.example:554/x", "x".repeat(70));
    for s in [
        health("steady", &steady, 3),
        health("stopper", &stopper, 3),
        health("hanger", &hanger, 3),
        health("wrong-path", &sim.url("no-such-path"), 3),
        health("refused", "rtsp://127.0.0.1:1/x", 3),
        health("unresolvable", &unresolvable, 3),
        health("garbage", &format!("rtsp://127.0.0.1:{garbage_port}/x"), 3),
    ] {
        ing.start(s);
    }
    for id in ["steady", "stopper", "hanger"] {
        ev.wait(id, "online", Duration::from_secs(30)).await;
    }
    for id in ["wrong-path", "refused", "unresolvable", "garbage"] {
        ev.wait(id, "offline", Duration::from_secs(30)).await;
    }
    let error = |id: &str| {
        let h = ing.health(id).unwrap();
        assert!(matches!(h.state, IngestState::Backoff | IngestState::Connecting), "{id}: {:?}", h.state);
        h.last_error.unwrap_or_default()
    };
    let e = error("wrong-path");
    assert!(e.contains("no stream at this path (RTSP 404 Not Found)"), "{e}");
    assert!(error("refused").contains("connection refused by 127.0.0.1:1"));
    assert!(error("unresolvable").contains("cannot resolve host"));
    let e = error("garbage");
    assert!(e.contains("not an RTSP answer to DESCRIBE") || e.contains("neither RTSP nor interleaved RTP"), "{e}");

    let t = Instant::now();
    sim.stop("stopper").unwrap();
    ev.wait("stopper", "offline", Duration::from_secs(4)).await;
    assert!(t.elapsed() <= Duration::from_millis(3500), "stop noticed after {:?}", t.elapsed());
    sim.start_camera("stopper").unwrap();
    ev.wait("stopper", "online", Duration::from_secs(15)).await;

    // Socket open, no data: the 2 s watchdog, read a few times a second.
    let t = Instant::now();
    sim.hang("hanger", true).unwrap();
    let e = ev.wait("hanger", "offline", Duration::from_secs(5)).await;
    assert!(t.elapsed() <= Duration::from_millis(3500), "hang noticed after {:?}", t.elapsed());
    assert!(e.reason.contains("watchdog"), "{}", e.reason);
    sim.hang("hanger", false).unwrap();
    ev.wait("hanger", "online", Duration::from_secs(15)).await;
    let h = ing.health("hanger").unwrap();
    assert!(h.stalls_last_hour >= 1 && h.reconnects_last_hour >= 1, "{h:?}");
    assert!(ing.last_frame("hanger").is_some());

    let s = ing.health("steady").unwrap();
    assert_eq!(s.state, IngestState::Streaming);
    assert_eq!((s.reconnects_last_hour, s.stalls_last_hour), (0, 0));
    assert!(ev.drain_for("steady").is_empty(), "the steady camera changed status");
    shutdown(ing).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_and_basic_sign_in_and_a_wrong_password_is_named_not_shown_and_basic_only_when_allowed() {
    for digest in [true, false] {
        let sim = SimServer::start().unwrap();
        sim.require_credentials("admin", "s3cret-Pa55", digest);
        let url = sim.add(small("locked", 10));
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        let bad = dir.path().join("bad");
        std::fs::write(&good, "s3cret-Pa55\n").unwrap();
        std::fs::write(&bad, "wrong-Pa55\n").unwrap();
        let (ing, mut ev) = ingest();
        let mut ok = health("ok", &url, 3);
        ok.username = Some("admin".into());
        ok.password = Some(SecretRef::File(good.clone()));
        // Basic sends the password in clear: only for a camera that allows it.
        ok.allow_basic_auth = !digest;
        let mut wrong = health("wrong", &url, 3);
        wrong.username = Some("admin".into());
        wrong.password = Some(SecretRef::File(bad));
        wrong.allow_basic_auth = true;
        let anonymous = health("anonymous", &url, 3);
        let mut careful = health("careful", &url, 3);
        careful.username = Some("admin".into());
        careful.password = Some(SecretRef::File(good));
        ing.start(ok);
        ing.start(wrong);
        ing.start(anonymous);
        ing.start(careful);
        ev.wait("ok", "online", Duration::from_secs(30)).await;
        let q = ing.subscribe("ok").unwrap();
        assert!(q.pop_timeout(Duration::from_secs(5)).is_some(), "digest {digest}: a frame after signing in");
        ev.wait("wrong", "offline", Duration::from_secs(30)).await;
        ev.wait("anonymous", "offline", Duration::from_secs(30)).await;
        let e = ing.health("wrong").unwrap().last_error.unwrap_or_default();
        assert!(e.contains("refused the credentials (RTSP 401 Unauthorized)"), "digest {digest}: {e}");
        assert!(!e.contains("wrong-Pa55") && !e.contains("s3cret"), "{e}");
        let e = ing.health("anonymous").unwrap().last_error.unwrap_or_default();
        assert!(e.contains("401") && e.contains("no credentials configured"), "{e}");
        // A camera that does not allow Basic signs in with Digest, and to a Basic-only server
        // sends nothing: it is offline saying why and what to set.
        if digest {
            ev.wait("careful", "online", Duration::from_secs(30)).await;
        } else {
            ev.wait("careful", "offline", Duration::from_secs(30)).await;
            let e = ing.health("careful").unwrap().last_error.unwrap_or_default();
            assert!(e.contains("Basic sign-in only") && e.contains("allow_basic_auth = true"), "{e}");
            assert!(!e.contains("refused the credentials") && !e.contains("s3cret"), "{e}");
        }
        shutdown(ing).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_health_camera_goes_through_rtspsrc() {
    let sim = SimServer::start().unwrap();
    let (ing, mut ev) = ingest();
    let url = sim.add(small("udp", 10));
    let mut s = health("udp", &url, 3);
    s.transport = Transport::Udp;
    ing.start(s);
    ev.wait("udp", "online", Duration::from_secs(30)).await;
    let q = ing.subscribe("udp").unwrap();
    let f = q.pop_timeout(Duration::from_secs(5)).expect("a keyframe over UDP");
    assert_eq!((f.width, f.height, f.format), (160, 90, PixelFormat::Rgb24));
    shutdown(ing).await;
}

/// Health cameras share a few threads: 48 cameras stream on the runners (one per core) and the
/// openers, none has a thread of its own, and the process gains far fewer threads than cameras;
/// cameras stopped, restarted and removed on the pool are torn down (the server sees the
/// sessions end) while the others keep streaming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_cameras_share_a_few_threads() {
    const N: usize = 48;
    let sim = SimServer::start().unwrap();
    let (ing, mut ev) = ingest();
    let urls: Vec<String> = (0..4).map(|i| sim.add(small(&format!("p{i}"), 10))).collect();
    // Ingest's threads, by name (the simulator serves from this process too, on threads of its
    // own).
    let threads = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with("ingest-"))
            .count()
    };
    let before = threads();
    let specs: Vec<IngestSpec> = (0..N).map(|i| health(&format!("c{i:02}"), &urls[i % 4], 2)).collect();
    let ing2 = ing.clone();
    let report = tokio::task::spawn_blocking(move || ing2.apply(specs)).await.unwrap();
    assert_eq!(report.started.len(), N);
    for i in 0..N {
        ev.wait(&format!("c{i:02}"), "online", Duration::from_secs(60)).await;
    }
    let cores = std::thread::available_parallelism().unwrap().get();
    let t = ing.pool_threads();
    assert_eq!(t.runners, cores.min(8), "{t:?}");
    assert_eq!(t.own, 0, "{t:?}");
    // One opener per runner: a start-up burst on a loopback server needs no more.
    assert!(t.openers >= 1 && t.openers <= t.runners + 2, "{t:?}");
    // Other tests of this binary run beside this one: the bound leaves them room, and is still
    // far below a thread per camera.
    let gained = threads().saturating_sub(before);
    assert!(gained <= t.runners + t.openers + 4, "{gained} ingest threads for {N} cameras ({t:?})");
    // Every camera decodes its keyframes on the runners.
    let q = ing.subscribe("c07").unwrap();
    let f = q.pop_timeout(Duration::from_secs(10)).expect("a keyframe from a pooled camera");
    assert_eq!((f.width, f.height, f.format), (160, 90, PixelFormat::Rgb24));
    let sessions = sim.clients();
    assert!(sessions >= N, "{sessions} sessions for {N} cameras");

    // Half removed, one restarted with a new spec: their sessions end, the rest stream on.
    let keep: Vec<IngestSpec> = (0..N)
        .filter(|i| i % 2 == 0)
        .map(|i| {
            let mut s = health(&format!("c{i:02}"), &urls[i % 4], 2);
            if i == 0 {
                s.sample_every = Duration::from_secs(3);
            }
            s
        })
        .collect();
    let ing2 = ing.clone();
    let report = tokio::task::spawn_blocking(move || ing2.apply(keep)).await.unwrap();
    assert_eq!((report.stopped.len(), report.restarted, report.unchanged), (N / 2, vec!["c00".to_string()], N / 2 - 1));
    assert_eq!(ing.ids().len(), N / 2);
    ev.wait("c00", "online", Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.clients() > N / 2 {
        assert!(Instant::now() < deadline, "{} sessions left for {} cameras", sim.clients(), N / 2);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let q = ing.subscribe("c10").unwrap();
    q.pop_timeout(Duration::from_secs(10)).expect("a kept camera goes on");
    shutdown(ing.clone()).await;
    assert!(ing.ids().is_empty());
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.clients() > 0 {
        assert!(Instant::now() < deadline, "{} sessions left after the shutdown", sim.clients());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Cameras that accept the connection and never answer block an opener each for their watchdog
/// time; the pool starts more openers once cameras have waited behind them, so the cameras that
/// answer stream long before those time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cameras_that_never_answer_do_not_hold_up_the_others() {
    let sim = SimServer::start().unwrap();
    let (ing, mut ev) = ingest();
    // A listener nobody accepts from: the connection is made (the kernel's backlog) and DESCRIBE
    // is never answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("rtsp://127.0.0.1:{}/never", silent.local_addr().unwrap().port());
    let mut specs: Vec<IngestSpec> = (0..6)
        .map(|i| {
            let mut s = health(&format!("mute{i}"), &silent_url, 2);
            s.watchdog = Duration::from_secs(12);
            s
        })
        .collect();
    let url = sim.add(small("talk", 10));
    specs.extend((0..6).map(|i| health(&format!("talk{i}"), &url, 2)));
    let ing2 = ing.clone();
    let started = Instant::now();
    tokio::task::spawn_blocking(move || ing2.apply(specs)).await.unwrap();
    for i in 0..6 {
        ev.wait(&format!("talk{i}"), "online", Duration::from_secs(30)).await;
    }
    let took = started.elapsed();
    // Without more openers they would wait out a silent camera's 12 s first.
    assert!(took < Duration::from_secs(9), "the answering cameras waited {took:?} behind the silent ones");
    let t = ing.pool_threads();
    assert!(t.openers > t.runners, "{t:?}");
    for i in 0..6 {
        assert_eq!(ing.health(&format!("mute{i}")).unwrap().state, IngestState::Connecting);
    }
    shutdown(ing).await;
}
