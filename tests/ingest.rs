//! Ingest over real RTSP from the in-process simulator: rates, sizes and formats; failures
//! detected and recovered; clear errors for bad sources; the other cameras unaffected.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ingest::{Events, spec};
use tianwang::clock::SystemClock;
use tianwang::config::Profile;
use tianwang::ingest::{Ingest, IngestState, PixelFormat};
use tianwang::sim::{SimCamera, SimServer, garbage_server};

fn ingest() -> (Arc<Ingest>, Events) {
    tianwang::ingest::init_gstreamer().expect("gstreamer");
    let (tx, rx) = tokio::sync::mpsc::channel(4096);
    (Arc::new(Ingest::new(Arc::new(SystemClock), Some(tx))), Events::new(rx))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_cameras_deliver_the_configured_size_format_and_rate() {
    let sim = SimServer::start().unwrap();
    let (ing, mut events) = ingest();
    let mut want = Vec::new();
    for i in 0..16 {
        let path = format!("cam{i:02}");
        let mut cam = SimCamera::new(&path, 480, 270, 15);
        cam.bitrate_kbps = 300;
        let url = sim.add(cam);
        let s = if i % 2 == 0 {
            spec(&path, &url, Profile::Street, 320, 180, 5)
        } else {
            spec(&path, &url, Profile::Checkpoint, 256, 144, 8)
        };
        want.push((path, s.width, s.height, s.format, s.fps));
        ing.start(s);
    }
    for (id, ..) in &want {
        events.wait(id, "online", Duration::from_secs(60)).await;
    }
    // Collect every camera's frames for 4 s, each on a thread of its own.
    let mut handles = Vec::new();
    for (id, w, h, fmt, fps) in want.clone() {
        let q = ing.subscribe(&id).unwrap();
        handles.push(std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(4);
            let mut stamps = Vec::new();
            while Instant::now() < end {
                if let Some(f) = q.pop_timeout(Duration::from_millis(200)) {
                    assert_eq!((f.width, f.height, f.format), (w, h, fmt), "{id}");
                    assert_eq!(f.data.len(), (w * h) as usize * fmt.bytes_per_pixel(), "{id}");
                    stamps.push(f.captured_ms);
                }
            }
            let rate = (stamps.len() - 1) as f64 * 1000.0 / (stamps.last().unwrap() - stamps[0]) as f64;
            (id, rate, fps)
        }));
    }
    for h in handles {
        let (id, rate, fps) = h.join().unwrap();
        let fps = f64::from(fps);
        assert!((rate - fps).abs() <= fps * 0.2, "{id}: {rate:.2} fps, configured {fps}");
    }
    for (id, w, h, ..) in &want {
        let hs = ing.health(id).unwrap();
        assert_eq!(hs.state, IngestState::Streaming, "{id}");
        assert_eq!(hs.codec.as_deref(), Some("h264"));
        assert_eq!(hs.resolution_seen.as_deref(), Some("480x270"), "{id}: the stream's own size");
        assert!(hs.frames_decoded >= hs.frames_delivered, "{id}");
        assert!(hs.bytes_per_second > 0.0, "{id}");
        let _ = (w, h);
    }
    let ing2 = ing.clone();
    tokio::task::spawn_blocking(move || ing2.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_detected_recovered_and_named() {
    let sim = SimServer::start().unwrap();
    let (ing, mut ev) = ingest();
    let small = |p: &str| {
        let mut c = SimCamera::new(p, 320, 180, 10);
        c.keyframe_interval = 10;
        c.bitrate_kbps = 200;
        c
    };
    let ok = sim.add(small("steady"));
    let stopper = sim.add(small("stopper"));
    let hanger = sim.add(small("hanger"));
    let garbage_port = garbage_server().unwrap();
    // A host label over 63 characters cannot be encoded as a DNS query: the resolver fails
    // locally and no packet leaves the machine.
    let unresolvable = format!("rtsp://{}.example:554/x", "x".repeat(70));
    let cams = [
        spec("steady", &ok, Profile::Street, 160, 90, 5),
        spec("stopper", &stopper, Profile::Street, 160, 90, 5),
        spec("hanger", &hanger, Profile::Street, 160, 90, 5),
        spec("wrong-path", &sim.url("no-such-path"), Profile::Street, 160, 90, 5),
        spec("refused", "rtsp://127.0.0.1:1/x", Profile::Street, 160, 90, 5),
        spec("unresolvable", &unresolvable, Profile::Street, 160, 90, 5),
        spec("garbage", &format!("rtsp://127.0.0.1:{garbage_port}/x"), Profile::Street, 160, 90, 5),
    ];
    for c in cams {
        ing.start(c);
    }
    for id in ["steady", "stopper", "hanger"] {
        ev.wait(id, "online", Duration::from_secs(30)).await;
    }
    let expect_error = |id: &str, needles: &[&str]| {
        let h = ing.health(id).unwrap();
        let err = h.last_error.clone().unwrap_or_default();
        assert!(matches!(h.state, IngestState::Backoff | IngestState::Connecting), "{id}: {:?}", h.state);
        assert!(needles.iter().any(|n| err.contains(n)), "{id}: error {err:?} should mention one of {needles:?}");
    };
    for id in ["wrong-path", "refused", "unresolvable", "garbage"] {
        ev.wait(id, "offline", Duration::from_secs(30)).await;
    }
    expect_error("wrong-path", &["no stream at this path (RTSP 404 Not Found)"]);
    expect_error("refused", &["connection refused by 127.0.0.1:1"]);
    expect_error("unresolvable", &["cannot resolve host"]);
    expect_error("garbage", &["Could not", "parse", "RTSP", "watchdog", "error"]);

    // The server stops the camera: it leaves streaming within the watchdog time, and comes back.
    let t = Instant::now();
    sim.stop("stopper").unwrap();
    ev.wait("stopper", "offline", Duration::from_secs(3)).await;
    assert!(t.elapsed() <= Duration::from_secs(3), "stop noticed after {:?}", t.elapsed());
    sim.start_camera("stopper").unwrap();
    ev.wait("stopper", "online", Duration::from_secs(15)).await;

    // The server hangs with the socket open: our 2 s watchdog notices, not rtspsrc's ~27 s.
    let t = Instant::now();
    sim.hang("hanger", true).unwrap();
    let e = ev.wait("hanger", "offline", Duration::from_secs(5)).await;
    let took = t.elapsed();
    assert!(took <= Duration::from_millis(3500), "hang noticed after {took:?}");
    assert!(e.reason.contains("watchdog"), "{}", e.reason);
    sim.hang("hanger", false).unwrap();
    ev.wait("hanger", "online", Duration::from_secs(15)).await;
    let h = ing.health("hanger").unwrap();
    assert!(h.stalls_last_hour >= 1 && h.reconnects_last_hour >= 1, "{h:?}");

    // The steady camera never noticed any of it.
    let steady = ing.health("steady").unwrap();
    assert_eq!(steady.state, IngestState::Streaming);
    assert_eq!((steady.reconnects_last_hour, steady.stalls_last_hour), (0, 0));
    assert!(ev.drain_for("steady").is_empty(), "steady camera changed status");
    let before = steady.frames_delivered;
    let q = ing.subscribe("steady").unwrap();
    assert!(q.pop_timeout(Duration::from_secs(3)).is_some());
    assert!(ing.health("steady").unwrap().frames_delivered > before);
    let ing2 = ing.clone();
    tokio::task::spawn_blocking(move || ing2.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolution_change_corrupt_video_and_h265_are_handled() {
    let sim = SimServer::start().unwrap();
    let (ing, mut ev) = ingest();
    let mut c = SimCamera::new("resize", 320, 180, 10);
    c.keyframe_interval = 10;
    let url = sim.add(c);
    let mut h265 = SimCamera::new("hevc", 320, 180, 10);
    h265.codec = tianwang::sim::SimCodec::H265;
    h265.keyframe_interval = 10;
    let url265 = sim.add(h265);
    let mut bad = SimCamera::new("corrupt", 320, 180, 10);
    bad.keyframe_interval = 10;
    let url_bad = sim.add(bad);
    sim.garbage("corrupt", true).unwrap();
    ing.start(spec("resize", &url, Profile::Checkpoint, 160, 90, 5));
    ing.start(spec("hevc", &url265, Profile::Street, 160, 90, 5));
    ing.start(spec("corrupt", &url_bad, Profile::Street, 160, 90, 5));
    ev.wait("resize", "online", Duration::from_secs(30)).await;
    ev.wait("hevc", "online", Duration::from_secs(30)).await;
    assert_eq!(ing.health("hevc").unwrap().codec.as_deref(), Some("h265"));
    let q = ing.subscribe("hevc").unwrap();
    let f = q.pop_timeout(Duration::from_secs(5)).expect("an H.265 frame");
    assert_eq!((f.width, f.height, f.format), (160, 90, PixelFormat::Gray8));

    sim.set_resolution("resize", 480, 270).unwrap();
    ev.wait("resize", "offline", Duration::from_secs(5)).await;
    ev.wait("resize", "online", Duration::from_secs(15)).await;
    let h = ing.health("resize").unwrap();
    assert_eq!(h.resolution_seen.as_deref(), Some("480x270"));
    let q = ing.subscribe("resize").unwrap();
    let f = q.pop_timeout(Duration::from_secs(5)).expect("a frame after the change");
    assert_eq!((f.width, f.height, f.format), (160, 90, PixelFormat::Rgb24), "output size stays as configured");

    // Corrupted video: whatever the decoder makes of it, the camera's state says so and nothing panics.
    let h = ing.health("corrupt").unwrap();
    assert!(h.state == IngestState::Streaming || h.last_error.is_some(), "{h:?}");
    let ing2 = ing.clone();
    tokio::task::spawn_blocking(move || ing2.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_starts_and_stops_only_what_changed() {
    let sim = SimServer::start().unwrap();
    let (ing, mut ev) = ingest();
    let urls: Vec<String> = (0..3).map(|i| sim.add(SimCamera::new(&format!("c{i}"), 320, 180, 10))).collect();
    let specs =
        |n: usize| (0..n).map(|i| spec(&format!("c{i}"), &urls[i], Profile::Street, 160, 90, 5)).collect::<Vec<_>>();
    let first = specs(2);
    let ing2 = ing.clone();
    let r = tokio::task::spawn_blocking(move || ing2.apply(first)).await.unwrap();
    assert_eq!(r.started, ["c0", "c1"]);
    ev.wait("c0", "online", Duration::from_secs(30)).await;
    ev.wait("c1", "online", Duration::from_secs(30)).await;
    let mut next = specs(3);
    next.remove(0); // c0 removed
    next[0].fps = 4; // c1 changed
    let ing2 = ing.clone();
    let r = tokio::task::spawn_blocking(move || ing2.apply(next)).await.unwrap();
    assert_eq!(
        (r.started.clone(), r.stopped.clone(), r.restarted.clone(), r.unchanged),
        (vec!["c2".to_string()], vec!["c0".to_string()], vec!["c1".to_string()], 0)
    );
    assert!(ing.health("c0").is_none());
    ev.wait("c2", "online", Duration::from_secs(30)).await;
    let ing2 = ing.clone();
    tokio::task::spawn_blocking(move || ing2.shutdown()).await.unwrap();
}

/// One RTSP exchange on `s`: sends the request, skips interleaved data, returns the status line
/// and headers (any body is read off).
fn rtsp_exchange(s: &mut std::net::TcpStream, req: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    s.write_all(req.as_bytes())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        while buf.first() == Some(&b'$') && buf.len() >= 4 {
            let n = 4 + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            if buf.len() < n {
                break;
            }
            buf.drain(..n);
        }
        if buf.first() != Some(&b'$')
            && let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n")
        {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let body = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let mut have = buf.len() - end - 4;
            while have < body {
                let n = s.read(&mut chunk)?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                have += n;
            }
            return Ok(head);
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A client that plays `url` over TCP with `Range: npt=0.000-` (what most clients send), reads
/// for `hold`, then hangs up. Returns the PLAY's status line.
fn play_once(url: &str, hold: Duration) -> std::io::Result<String> {
    use std::io::Read;
    let addr = url.trim_start_matches("rtsp://").split('/').next().unwrap_or_default().to_string();
    let mut s = std::net::TcpStream::connect(&addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let h = rtsp_exchange(&mut s, &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"))?;
    if !h.starts_with("RTSP/1.0 200") {
        return Ok(h.lines().next().unwrap_or_default().to_string());
    }
    let h = rtsp_exchange(
        &mut s,
        &format!("SETUP {url}/stream=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"),
    )?;
    let session = h
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let h = rtsp_exchange(
        &mut s,
        &format!("PLAY {url}/ RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\nRange: npt=0.000-\r\n\r\n"),
    )?;
    let until = Instant::now() + hold;
    let mut chunk = [0u8; 16384];
    while Instant::now() < until {
        if s.read(&mut chunk)? == 0 {
            break;
        }
    }
    Ok(h.lines().next().unwrap_or_default().to_string())
}

/// Clients joining and leaving the same shared streams all at once, each PLAY asking for the
/// start (`Range: npt=0-`). gst-rtsp-server 1.22 used to flush the shared pipeline for such a
/// PLAY and then abort on its own assertion (`gst_rtsp_media_get_rates`) when the next PLAY came
/// before the stream's next frame: the whole simulator, and every camera on it, gone. A live
/// simulated camera cannot seek, so nothing is flushed and every PLAY is answered.
#[test]
fn the_simulator_stays_up_while_many_clients_join_the_same_streams() {
    let sim = SimServer::start().expect("sim");
    let urls: Vec<String> = (0..6)
        .map(|i| {
            let mut cam = SimCamera::new(&format!("shared-{i}"), 320, 240, 10);
            cam.keyframe_interval = 10;
            sim.add(cam)
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(20);
    let plays: Vec<_> = (0..24)
        .map(|c| {
            let urls = urls.clone();
            std::thread::spawn(move || {
                let (mut ok, mut other) = (0usize, Vec::new());
                let mut i = c;
                while Instant::now() < until {
                    i += 7;
                    let hold = Duration::from_millis((i % 5) as u64 * 80);
                    match play_once(&urls[i % urls.len()], hold) {
                        Ok(line) if line.starts_with("RTSP/1.0 200") => ok += 1,
                        Ok(line) => other.push(line),
                        Err(e) => other.push(e.to_string()),
                    }
                }
                (ok, other)
            })
        })
        .collect();
    let (mut ok, mut failed) = (0, Vec::new());
    for p in plays {
        let (o, f) = p.join().expect("client thread");
        ok += o;
        failed.extend(f);
    }
    println!("{ok} PLAYs answered 200 by one simulator, {} not", failed.len());
    assert!(failed.is_empty(), "{} PLAYs failed, first: {:?}", failed.len(), failed.first());
    assert!(ok > 200, "only {ok} PLAYs in 20 s");
    // Still serving after the storm.
    assert!(play_once(&urls[0], Duration::ZERO).unwrap().starts_with("RTSP/1.0 200"));
}
