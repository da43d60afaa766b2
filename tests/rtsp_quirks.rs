//! What real cameras do that GStreamer's RTSP server never does, against the `health` profile's
//! client (retina): a Content-Base without a scheme, Annex B start codes inside single-NAL
//! packets, no GET_PARAMETER (and the connection dropped when it comes), two Digest challenges
//! (MD5 and SHA-256) or SHA-256 alone, an SSRC that changes mid-session, an RTP-Info sequence
//! number ahead of the first packet's. Each camera streams
//! and decodes, or goes offline with a reason that names what happened.
//!
//! The camera here is a scripted RTSP server written for these tests: it answers requests as
//! the quirk says and sends a real H.264 stream (x264, colour bars), packetized by hand.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::ingest::{Events, spec};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use md5::Digest as _;
use tianwang::clock::SystemClock;
use tianwang::config::{Profile, SecretRef};
use tianwang::ingest::{Ingest, IngestSpec, IngestState};

/// What the scripted camera does differently.
#[derive(Clone, Default)]
struct Quirks {
    /// `Content-Base: 127.0.0.1:PORT/quirk/` (no `rtsp://`), with a relative track control.
    base_without_scheme: bool,
    /// Each picture's whole Annex B byte stream (start codes between SPS, PPS and slices) in
    /// one "single NAL unit" packet.
    annex_b_single_nal: bool,
    /// GET_PARAMETER is not in `Public:`, and the connection is dropped if it comes anyway.
    no_get_parameter: bool,
    /// Digest required, with these challenges in this order (`MD5`, `SHA-256`).
    digest: Vec<&'static str>,
    /// The SSRC changes after this many packets.
    ssrc_change_after: Option<usize>,
    /// `Session: …;timeout=` (retina keeps alive at half of it).
    session_timeout_s: u32,
    /// PLAY's `RTP-Info` announces a sequence number 100 past the first packet's (a shared
    /// stream's server announcing where it is, then sending what it had queued).
    rtp_info_ahead: bool,
}

const USER: &str = "admin";
const PASSWORD: &str = "Qu1rk-Pa55";
const REALM: &str = "IP Camera(Q1)";
const NONCE: &str = "5e1f7b9a0c3d";

/// What the camera saw.
#[derive(Default)]
struct Seen {
    /// Every request's method and URI, in order.
    requests: Mutex<Vec<(String, String)>>,
    /// The `algorithm=` of every Digest answer that was right.
    algorithms: Mutex<Vec<String>>,
    connections: AtomicUsize,
    /// Connections dropped because GET_PARAMETER came.
    dropped_for_get_parameter: AtomicUsize,
}

impl Seen {
    fn count(&self, method: &str) -> usize {
        self.requests.lock().unwrap().iter().filter(|(m, _)| m == method).count()
    }
}

struct QuirkCamera {
    url: String,
    seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
}

impl Drop for QuirkCamera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl QuirkCamera {
    fn start(q: Quirks, pictures: Arc<Vec<(Vec<u8>, bool)>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = format!("rtsp://127.0.0.1:{port}/quirk");
        let seen = Arc::new(Seen::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                if st.load(Ordering::Relaxed) {
                    return;
                }
                s.connections.fetch_add(1, Ordering::Relaxed);
                let (q, s, st, pics) = (q.clone(), s.clone(), st.clone(), pictures.clone());
                std::thread::spawn(move || serve(conn, port, &q, &s, &st, pics));
            }
        });
        QuirkCamera { url, seen, stop }
    }
}

/// A request's method, URI and headers (names in lower case).
type Request = (String, String, Vec<(String, String)>);

/// One request (its body read and dropped).
fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut first = String::new();
    if r.read_line(&mut first).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    let mut parts = first.split_whitespace();
    Some((parts.next()?.to_string(), parts.next()?.to_string(), headers))
}

/// The parameters of a `Digest …` header value.
fn digest_params(v: &str) -> Vec<(String, String)> {
    let v = v.trim().strip_prefix("Digest").unwrap_or("").trim();
    let mut out = Vec::new();
    let (mut key, mut val, mut in_key, mut quoted) = (String::new(), String::new(), true, false);
    for c in v.chars().chain(std::iter::once(',')) {
        match c {
            '"' => quoted = !quoted,
            '=' if in_key => in_key = false,
            ',' if !quoted => {
                out.push((key.trim().to_ascii_lowercase(), val.trim().to_string()));
                (key, val, in_key) = (String::new(), String::new(), true);
            }
            c if in_key => key.push(c),
            c => val.push(c),
        }
    }
    out
}

/// Whether `authorization` answers our challenge for `method` rightly; the algorithm it used.
fn check_digest(authorization: Option<&str>, method: &str, offered: &[&str]) -> Option<String> {
    let p = digest_params(authorization?);
    let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let algorithm = get("algorithm").unwrap_or("MD5").to_string();
    if !offered.iter().any(|a| a.eq_ignore_ascii_case(&algorithm)) || get("nonce")? != NONCE || get("username")? != USER
    {
        return None;
    }
    let h = |s: String| -> String {
        if algorithm.eq_ignore_ascii_case("SHA-256") {
            format!("{:x}", sha2::Sha256::digest(s.as_bytes()))
        } else {
            format!("{:x}", md5::Md5::digest(s.as_bytes()))
        }
    };
    let ha1 = h(format!("{USER}:{REALM}:{PASSWORD}"));
    let ha2 = h(format!("{method}:{}", get("uri")?));
    let want = match get("qop") {
        Some(qop) => h(format!("{ha1}:{NONCE}:{}:{}:{qop}:{ha2}", get("nc")?, get("cnonce")?)),
        None => h(format!("{ha1}:{NONCE}:{ha2}")),
    };
    (get("response")? == want).then_some(algorithm)
}

fn serve(conn: TcpStream, port: u16, q: &Quirks, seen: &Seen, stop: &Arc<AtomicBool>, pics: Arc<Vec<(Vec<u8>, bool)>>) {
    let writer = Arc::new(Mutex::new(conn.try_clone().unwrap()));
    let mut r = BufReader::new(conn);
    let playing = Arc::new(AtomicBool::new(false));
    while let Some((method, uri, headers)) = read_request(&mut r) {
        seen.requests.lock().unwrap().push((method.clone(), uri.clone()));
        let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let cseq = header("cseq").unwrap_or("0").to_string();
        let reply = |status: &str, extra: &str, body: &str| {
            let msg =
                format!("RTSP/1.0 {status}\r\nCSeq: {cseq}\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len());
            writer.lock().unwrap().write_all(msg.as_bytes())
        };
        if method == "GET_PARAMETER" && q.no_get_parameter {
            seen.dropped_for_get_parameter.fetch_add(1, Ordering::Relaxed);
            playing.store(false, Ordering::Relaxed);
            let _ = writer.lock().unwrap().shutdown(std::net::Shutdown::Both);
            return;
        }
        if !q.digest.is_empty() && method != "OPTIONS" {
            match check_digest(header("authorization"), &method, &q.digest) {
                Some(a) => seen.algorithms.lock().unwrap().push(a),
                None => {
                    let challenges: String = q
                        .digest
                        .iter()
                        .map(|a| format!(
                            "WWW-Authenticate: Digest realm=\"{REALM}\", nonce=\"{NONCE}\", qop=\"auth\", algorithm={a}\r\n"
                        ))
                        .collect();
                    if reply("401 Unauthorized", &challenges, "").is_err() {
                        return;
                    }
                    continue;
                }
            }
        }
        let session = format!("Session: 12345678;timeout={}\r\n", q.session_timeout_s);
        let sent = match method.as_str() {
            "OPTIONS" => {
                let public = if q.no_get_parameter {
                    "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN"
                } else {
                    "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"
                };
                reply("200 OK", &format!("Public: {public}\r\n"), "")
            }
            "DESCRIBE" => {
                let base = if q.base_without_scheme {
                    format!("127.0.0.1:{port}/quirk/")
                } else {
                    format!("rtsp://127.0.0.1:{port}/quirk/")
                };
                let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=quirk\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n\
                           a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:trackID=1\r\n";
                reply("200 OK", &format!("Content-Base: {base}\r\nContent-Type: application/sdp\r\n"), sdp)
            }
            "SETUP" => reply(
                "200 OK",
                &format!("Transport: RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=1A2B3C4D\r\n{session}"),
                "",
            ),
            "PLAY" => {
                let info = if q.rtp_info_ahead {
                    format!("RTP-Info: url=rtsp://127.0.0.1:{port}/quirk/trackID=1;seq=1100;rtptime=0\r\n")
                } else {
                    String::new()
                };
                let sent = reply("200 OK", &format!("{session}{info}"), "");
                if !playing.swap(true, Ordering::Relaxed) {
                    let (w, p, st, q) = (writer.clone(), playing.clone(), stop.clone(), q.clone());
                    let pics = pics.clone();
                    std::thread::spawn(move || stream(&w, &p, &st, &q, &pics));
                }
                sent
            }
            "TEARDOWN" => {
                let _ = reply("200 OK", &session, "");
                playing.store(false, Ordering::Relaxed);
                return;
            }
            _ => reply("200 OK", &session, ""),
        };
        if sent.is_err() {
            return;
        }
    }
    playing.store(false, Ordering::Relaxed);
}

/// The NAL units of an Annex B access unit.
fn nal_units(au: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut start = None;
    while i + 3 <= au.len() {
        if au[i..i + 3] == [0, 0, 1] {
            if let Some(s) = start {
                let mut e = i;
                while e > s && au[e - 1] == 0 {
                    e -= 1;
                }
                out.push(&au[s..e]);
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        out.push(&au[s..]);
    }
    out
}

/// Interleaved RTP packets of one picture (payloads; the marker on the last).
fn packetize(au: &[u8], q: &Quirks) -> Vec<Vec<u8>> {
    if q.annex_b_single_nal {
        // The byte stream without its first start code: the first byte is a NAL header, the
        // rest carries start codes where only one NAL unit belongs.
        let first = au.iter().position(|&b| b != 0).unwrap_or(0) + 1;
        return vec![au[first..].to_vec()];
    }
    let mut out = Vec::new();
    for nal in nal_units(au) {
        if nal.len() <= 1400 {
            out.push(nal.to_vec());
            continue;
        }
        let (h, body) = (nal[0], &nal[1..]);
        let chunks: Vec<&[u8]> = body.chunks(1400).collect();
        for (i, c) in chunks.iter().enumerate() {
            let mut fu = vec![(h & 0xe0) | 28, h & 0x1f];
            if i == 0 {
                fu[1] |= 0x80;
            }
            if i == chunks.len() - 1 {
                fu[1] |= 0x40;
            }
            fu.extend_from_slice(c);
            out.push(fu);
        }
    }
    out
}

/// Sends the pictures round and round at 10 a second while the session plays.
fn stream(w: &Mutex<TcpStream>, playing: &AtomicBool, stop: &AtomicBool, q: &Quirks, pics: &[(Vec<u8>, bool)]) {
    let (mut seq, mut sent, mut ssrc) = (1000u16, 0usize, 0x1A2B_3C4Du32);
    for n in 0u32.. {
        if !playing.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
            return;
        }
        let (au, _) = &pics[n as usize % pics.len()];
        let payloads = packetize(au, q);
        let count = payloads.len();
        let mut wire = Vec::new();
        for (i, pl) in payloads.into_iter().enumerate() {
            if q.ssrc_change_after == Some(sent) {
                ssrc = 0x5566_7788;
            }
            let mut rtp = vec![0x80, 96 | if i == count - 1 { 0x80 } else { 0 }];
            rtp.extend_from_slice(&seq.to_be_bytes());
            rtp.extend_from_slice(&(n * 9000).to_be_bytes());
            rtp.extend_from_slice(&ssrc.to_be_bytes());
            rtp.extend_from_slice(&pl);
            wire.extend_from_slice(&[b'$', 0]);
            wire.extend_from_slice(&(rtp.len() as u16).to_be_bytes());
            wire.extend_from_slice(&rtp);
            seq = seq.wrapping_add(1);
            sent += 1;
        }
        if w.lock().unwrap().write_all(&wire).is_err() {
            return;
        }
        // The stream's own pace (a camera's frame rate), not a wait for something to happen.
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Five seconds of colour bars in H.264 (baseline, a keyframe a second, parameter sets in band),
/// as Annex B access units with their keyframe flags.
fn pictures() -> Arc<Vec<(Vec<u8>, bool)>> {
    tianwang::ingest::init_gstreamer().expect("gstreamer");
    let p = gst::parse::launch(
        "videotestsrc pattern=smpte num-buffers=50 ! video/x-raw,width=320,height=180,framerate=10/1 ! \
         x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 bitrate=300 ! \
         video/x-h264,profile=baseline,stream-format=byte-stream,alignment=au ! appsink name=out sync=false",
    )
    .expect("an x264 pipeline")
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = p.by_name("out").unwrap().downcast::<gst_app::AppSink>().unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let mut out = Vec::new();
    while let Ok(s) = sink.pull_sample() {
        let b = s.buffer().unwrap();
        let key = !b.flags().contains(gst::BufferFlags::DELTA_UNIT);
        out.push((b.map_readable().unwrap().to_vec(), key));
    }
    p.set_state(gst::State::Null).unwrap();
    assert_eq!(out.len(), 50, "x264 gave every picture");
    assert!(out[0].1 && out.iter().filter(|p| p.1).count() == 5, "a keyframe a second");
    Arc::new(out)
}

fn ingest() -> (Arc<Ingest>, Events) {
    tianwang::ingest::init_gstreamer().expect("gstreamer");
    let (tx, rx) = tokio::sync::mpsc::channel(4096);
    (Arc::new(Ingest::new(Arc::new(SystemClock), Some(tx))), Events::new(rx))
}

fn health(id: &str, url: &str) -> IngestSpec {
    let mut s = spec(id, url, Profile::Health, 160, 90, 0);
    s.sample_every = Duration::from_secs(1);
    s
}

fn signed_in(mut s: IngestSpec, password_file: &std::path::Path) -> IngestSpec {
    s.username = Some(USER.into());
    s.password = Some(SecretRef::File(password_file.to_path_buf()));
    s
}

async fn shutdown(ing: Arc<Ingest>) {
    tokio::task::spawn_blocking(move || ing.shutdown()).await.unwrap();
}

/// A decoded picture of the colour bars: bright on average, saturated and dark pixels both.
async fn bars(ing: &Arc<Ingest>, id: &str) {
    let q = ing.subscribe(id).unwrap();
    let f = tokio::task::spawn_blocking(move || q.pop_timeout(Duration::from_secs(10)))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{id}: no picture decoded within 10 s"));
    assert_eq!((f.width, f.height), (160, 90));
    let mean = f.data.iter().map(|&v| f64::from(v)).sum::<f64>() / f.data.len() as f64;
    assert!(mean > 60.0, "{id}: mean {mean}");
    assert!(f.data.iter().any(|&v| v > 180) && f.data.iter().any(|&v| v < 40), "{id}: not the bars");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quirky_cameras_stream_or_fail_naming_the_quirk() {
    let pics = pictures();
    let dir = tempfile::tempdir().unwrap();
    let (good, bad) = (dir.path().join("good"), dir.path().join("bad"));
    std::fs::write(&good, format!("{PASSWORD}\n")).unwrap();
    std::fs::write(&bad, "not-the-password\n").unwrap();
    let camera =
        |q: Quirks| QuirkCamera::start(Quirks { session_timeout_s: q.session_timeout_s.max(60), ..q }, pics.clone());

    let no_scheme = camera(Quirks { base_without_scheme: true, ..Default::default() });
    let annex_b = camera(Quirks { annex_b_single_nal: true, ..Default::default() });
    let md5_first = camera(Quirks { digest: vec!["MD5", "SHA-256"], ..Default::default() });
    let sha_first = camera(Quirks { digest: vec!["SHA-256", "MD5"], ..Default::default() });
    let sha_only = camera(Quirks { digest: vec!["SHA-256"], ..Default::default() });
    let ssrc = camera(Quirks { ssrc_change_after: Some(60), ..Default::default() });
    let rtp_info = camera(Quirks { rtp_info_ahead: true, ..Default::default() });

    let (ing, mut ev) = ingest();
    ing.start(health("no-scheme", &no_scheme.url));
    ing.start(health("annex-b", &annex_b.url));
    ing.start(signed_in(health("md5-first", &md5_first.url), &good));
    ing.start(signed_in(health("sha-first", &sha_first.url), &good));
    ing.start(signed_in(health("sha-only", &sha_only.url), &good));
    ing.start(signed_in(health("sha-wrong", &sha_only.url), &bad));
    ing.start(health("ssrc", &ssrc.url));
    ing.start(health("rtp-info", &rtp_info.url));

    for id in ["no-scheme", "annex-b", "md5-first", "sha-first", "sha-only", "rtp-info"] {
        ev.wait(id, "online", Duration::from_secs(30)).await;
        bars(&ing, id).await;
    }
    // The relative control resolved against the scheme-less base, as rtsp://.
    let setup = no_scheme.seen.requests.lock().unwrap().iter().find(|(m, _)| m == "SETUP").cloned().unwrap();
    let port = no_scheme.url.trim_start_matches("rtsp://127.0.0.1:").trim_end_matches("/quirk");
    assert_eq!(setup.1, format!("rtsp://127.0.0.1:{port}/quirk/trackID=1"));
    // Two challenges: the first Digest one is answered (both are right); SHA-256 alone works.
    for (cam, want) in [(&md5_first, "MD5"), (&sha_first, "SHA-256")] {
        let used = cam.seen.algorithms.lock().unwrap().clone();
        assert!(!used.is_empty() && used.iter().all(|a| a == want), "{want} expected: {used:?}");
    }
    let e = ev.wait("sha-wrong", "offline", Duration::from_secs(30)).await;
    assert!(e.reason.contains("refused the credentials (RTSP 401"), "{}", e.reason);
    assert!(!e.reason.contains("not-the-password") && !e.reason.contains(PASSWORD), "{}", e.reason);

    // A changed SSRC ends the session saying so; the camera is back on the next session.
    ev.wait("ssrc", "online", Duration::from_secs(30)).await;
    let e = ev.wait("ssrc", "offline", Duration::from_secs(30)).await;
    assert!(e.reason.contains("SSRC"), "{}", e.reason);
    ev.wait("ssrc", "online", Duration::from_secs(30)).await;
    assert!(ssrc.seen.connections.load(Ordering::Relaxed) >= 2);

    for id in ["no-scheme", "annex-b", "md5-first", "sha-first", "sha-only", "rtp-info"] {
        let h = ing.health(id).unwrap();
        assert_eq!((h.state, h.reconnects_last_hour), (IngestState::Streaming, 0), "{id}: {h:?}");
    }
    shutdown(ing).await;
}

/// A camera without GET_PARAMETER that drops the connection when it comes: keep-alives are
/// OPTIONS (what the camera lists), the session outlives several of them on one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alives_use_what_the_camera_supports() {
    let pics = pictures();
    // timeout=2: a keep-alive every second.
    let cam = QuirkCamera::start(Quirks { no_get_parameter: true, session_timeout_s: 2, ..Default::default() }, pics);
    let (ing, mut ev) = ingest();
    ing.start(health("no-get", &cam.url));
    ev.wait("no-get", "online", Duration::from_secs(30)).await;
    // OPTIONS before the session (none is sent: retina starts with DESCRIBE) are not keep-alives.
    let before = cam.seen.count("OPTIONS");
    common::until(30, "four keep-alives", async || (cam.seen.count("OPTIONS") >= before + 4).then_some(())).await;
    bars(&ing, "no-get").await;
    assert_eq!(cam.seen.count("GET_PARAMETER"), 0);
    assert_eq!(cam.seen.dropped_for_get_parameter.load(Ordering::Relaxed), 0);
    assert_eq!(cam.seen.connections.load(Ordering::Relaxed), 1, "one session throughout");
    let h = ing.health("no-get").unwrap();
    assert_eq!((h.state, h.reconnects_last_hour, h.stalls_last_hour), (IngestState::Streaming, 0, 0), "{h:?}");
    assert!(ev.drain_for("no-get").is_empty(), "the camera changed status");
    shutdown(ing).await;
}
