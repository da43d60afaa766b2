//! GB/T 28181 live video into a camera's pipeline, below SIP: the `GbMedia` seam is played by
//! the test, whose "device" encodes a live picture with GStreamer (x264enc → mpegpsmux, a PS
//! muxer we did not write), cuts it into RTP (PT 96, 90 kHz, marker on the last packet of a pack)
//! and sends it over UDP (some packets swapped, a stray SSRC mixed in), TCP to our port (passive)
//! and TCP from its own port (active). Each camera decodes at its profile's size; removing the
//! camera ends the call; the device ending the call makes the camera ask again; a refused INVITE
//! is the camera's error. The SIP side of the same path is tested with a simulated NVR.

mod common;

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::ingest::{Events, spec};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tianwang::clock::SystemClock;
use tianwang::config::{Profile, Transport};
use tianwang::ingest::gb::{GbMedia, MediaCall, MediaOffer, MediaSession, MediaTransport};
use tianwang::ingest::{Ingest, IngestState, PixelFormat};

const DEV: &str = "41010000001180000001";
const CH: &str = "41010000001310000001";
const SSRC: u32 = 100_000_017;

/// Where the device sends.
enum Target {
    Udp(SocketAddr),
    Connect(SocketAddr),
    Accept(TcpListener),
}

/// A device's live stream: H.264 in MPEG-PS in RTP, until stopped.
struct Stream {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Stream {
    fn start(target: Target) -> Stream {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || send(target, &flag));
        Stream { stop, thread: Some(thread) }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn rtp(seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 96 | if marker { 0x80 } else { 0 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn send(target: Target, stop: &AtomicBool) {
    let pipeline = gst::parse::launch(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=10/1 ! \
         x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 bitrate=400 ! h264parse ! \
         mpegpsmux ! appsink name=out sync=false max-buffers=50",
    )
    .expect("sender pipeline")
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline.by_name("out").unwrap().downcast::<gst_app::AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    enum Out {
        Udp(UdpSocket, SocketAddr),
        Tcp(TcpStream),
    }
    let mut out = match target {
        Target::Udp(to) => Out::Udp(UdpSocket::bind("127.0.0.1:0").unwrap(), to),
        Target::Connect(to) => {
            let end = Instant::now() + Duration::from_secs(5);
            loop {
                match TcpStream::connect(to) {
                    Ok(s) => break Out::Tcp(s),
                    Err(e) => assert!(Instant::now() < end, "cannot connect to {to}: {e}"),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Target::Accept(l) => {
            l.set_nonblocking(true).unwrap();
            loop {
                if stop.load(Ordering::Relaxed) {
                    let _ = pipeline.set_state(gst::State::Null);
                    return;
                }
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        break Out::Tcp(s);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    };
    let mut seq: u16 = 40_000;
    let mut held: Option<Vec<u8>> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) else { continue };
        let buf = sample.buffer().unwrap();
        let ts = buf.pts().map(|t| (t.nseconds() * 9 / 100_000) as u32).unwrap_or(0);
        let map = buf.map_readable().unwrap();
        let chunks: Vec<&[u8]> = map.chunks(1400).collect();
        for (i, c) in chunks.iter().enumerate() {
            let packet = rtp(seq, ts, SSRC, i + 1 == chunks.len(), c);
            seq = seq.wrapping_add(1);
            n += 1;
            let ok = match &mut out {
                Out::Udp(s, to) => {
                    // Every 7th packet swapped with the next, and a stray stream now and then.
                    if n.is_multiple_of(7) && held.is_none() {
                        held = Some(packet);
                        continue;
                    }
                    let mut ok = s.send_to(&packet, *to).is_ok();
                    if let Some(h) = held.take() {
                        ok &= s.send_to(&h, *to).is_ok();
                    }
                    if n.is_multiple_of(50) {
                        let _ = s.send_to(&rtp(seq, ts, SSRC + 1, false, &[0, 0, 1, 0xba, 0xff, 0xff]), *to);
                    }
                    ok
                }
                Out::Tcp(s) => {
                    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&packet);
                    s.write_all(&framed).is_ok()
                }
            };
            if !ok {
                break;
            }
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
}

/// The SIP side, played by the test: each INVITE starts a stream to the offered port.
struct Device {
    transport: MediaTransport,
    invites: AtomicU32,
    hangups: Arc<AtomicU32>,
    /// The next calls are refused with this.
    refuse: Mutex<Option<String>>,
    /// Set to end the current call from the device's side.
    bye: Arc<AtomicBool>,
    offers: Mutex<Vec<MediaOffer>>,
}

impl Device {
    fn new(transport: MediaTransport) -> Arc<Device> {
        Arc::new(Device {
            transport,
            invites: AtomicU32::new(0),
            hangups: Arc::new(AtomicU32::new(0)),
            refuse: Mutex::new(None),
            bye: Arc::new(AtomicBool::new(false)),
            offers: Mutex::new(Vec::new()),
        })
    }
}

struct Call {
    _stream: Stream,
    bye: Arc<AtomicBool>,
    hangups: Arc<AtomicU32>,
}

impl MediaCall for Call {
    fn ended(&self) -> Option<String> {
        self.bye.load(Ordering::Relaxed).then(|| "the device sent BYE".to_string())
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.hangups.fetch_add(1, Ordering::Relaxed);
    }
}

impl GbMedia for Device {
    fn transport(&self, device: &str, tcp: bool) -> MediaTransport {
        assert_eq!(device, DEV);
        assert_eq!(tcp, self.transport != MediaTransport::Udp, "the camera's transport decides UDP or TCP");
        self.transport
    }
    fn bind_ip(&self) -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }
    fn ports(&self) -> Option<(u16, u16)> {
        None
    }
    fn invite(&self, offer: &MediaOffer) -> Result<MediaSession, String> {
        self.invites.fetch_add(1, Ordering::Relaxed);
        self.offers.lock().unwrap().push(offer.clone());
        if let Some(why) = self.refuse.lock().unwrap().clone() {
            return Err(why);
        }
        self.bye.store(false, Ordering::Relaxed);
        let ours: SocketAddr = ([127, 0, 0, 1], offer.port).into();
        let (target, remote) = match offer.transport {
            MediaTransport::Udp => (Target::Udp(ours), None),
            MediaTransport::TcpPassive => (Target::Connect(ours), None),
            MediaTransport::TcpActive => {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                let at = l.local_addr().unwrap();
                (Target::Accept(l), Some(at))
            }
        };
        Ok(MediaSession {
            remote,
            ssrc: Some(SSRC),
            encoding: "PS".into(),
            call: Box::new(Call {
                _stream: Stream::start(target),
                bye: self.bye.clone(),
                hangups: self.hangups.clone(),
            }),
        })
    }
}

fn ingest(device: &Arc<Device>) -> (Arc<Ingest>, Events) {
    tianwang::ingest::init_gstreamer().expect("gstreamer");
    let (tx, rx) = tokio::sync::mpsc::channel(4096);
    let media: Arc<dyn GbMedia> = device.clone();
    (Arc::new(Ingest::with_gb28181(Arc::new(SystemClock), Some(tx), Some(media))), Events::new(rx))
}

fn gb_spec(id: &str, profile: Profile, transport: Transport) -> tianwang::ingest::IngestSpec {
    let (w, h, fps) = if profile == Profile::Checkpoint { (256, 144, 8) } else { (160, 90, 5) };
    let mut s = spec(id, &format!("gb28181://{DEV}/{CH}"), profile, w, h, fps);
    s.transport = transport;
    s.watchdog = Duration::from_secs(3);
    s
}

async fn until(what: &str, secs: u64, check: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stop_all(ing: Arc<Ingest>) {
    tokio::task::spawn_blocking(move || ing.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_transport_delivers_decoded_frames_and_removal_ends_the_call() {
    for (transport, cam_transport, profile) in [
        (MediaTransport::Udp, Transport::Udp, Profile::Street),
        (MediaTransport::TcpPassive, Transport::Tcp, Profile::Checkpoint),
        (MediaTransport::TcpActive, Transport::Tcp, Profile::Street),
    ] {
        let device = Device::new(transport);
        let (ing, mut events) = ingest(&device);
        let s = gb_spec("gb", profile, cam_transport);
        let (w, h, format) = (s.width, s.height, s.format);
        ing.start(s);
        events.wait("gb", "online", Duration::from_secs(30)).await;
        let q = ing.subscribe("gb").unwrap();
        let frames = tokio::task::spawn_blocking(move || {
            let end = Instant::now() + Duration::from_secs(3);
            let mut n = Vec::new();
            while Instant::now() < end {
                if let Some(f) = q.pop_timeout(Duration::from_millis(200)) {
                    n.push(f);
                }
            }
            n
        })
        .await
        .unwrap();
        assert!(frames.len() >= 5, "{transport:?}: {} frames in 3 s", frames.len());
        for f in &frames {
            assert_eq!((f.width, f.height, f.format), (w, h, format), "{transport:?}");
            assert_eq!(f.data.len(), (w * h) as usize * format.bytes_per_pixel());
        }
        if format == PixelFormat::Gray8 {
            // The ball moves: the picture is a live one, not a repeated still.
            assert!(frames.windows(2).any(|p| p[0].data != p[1].data), "{transport:?}: pictures change");
        }
        let hs = ing.health("gb").unwrap();
        assert_eq!(hs.state, IngestState::Streaming, "{transport:?}");
        assert_eq!(hs.codec.as_deref(), Some("h264"), "{transport:?}");
        assert_eq!(hs.resolution_seen.as_deref(), Some("320x240"), "{transport:?}: the stream's own size");
        assert!(hs.bytes_per_second > 0.0, "{transport:?}: packets count as liveness");
        let offer = device.offers.lock().unwrap()[0].clone();
        assert_eq!((offer.device.as_str(), offer.channel.as_str(), offer.transport), (DEV, CH, transport));
        assert_eq!(offer.port == 0, transport == MediaTransport::TcpActive, "{transport:?}: {offer:?}");
        assert_eq!(device.hangups.load(Ordering::Relaxed), 0);
        let i = ing.clone();
        assert!(tokio::task::spawn_blocking(move || i.stop("gb")).await.unwrap());
        assert_eq!(device.hangups.load(Ordering::Relaxed), 1, "{transport:?}: removing the camera ends its call");
        assert_eq!(device.invites.load(Ordering::Relaxed), 1);
        stop_all(ing).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_bye_makes_the_camera_ask_again_and_a_refusal_is_its_error() {
    let device = Device::new(MediaTransport::Udp);
    let (ing, mut events) = ingest(&device);
    // The health profile too is read through the pipeline (one keyframe decoded per interval).
    let mut s = gb_spec("gb", Profile::Health, Transport::Udp);
    s.sample_every = Duration::from_millis(500);
    ing.start(s);
    events.wait("gb", "online", Duration::from_secs(30)).await;
    until("a health frame", 10, || ing.last_frame("gb").is_some()).await;

    // The device ends the call: the source ends with that reason and the camera asks again.
    device.bye.store(true, Ordering::Relaxed);
    until("a second INVITE", 20, || device.invites.load(Ordering::Relaxed) >= 2).await;
    assert!(device.hangups.load(Ordering::Relaxed) >= 1);
    let hs = ing.health("gb").unwrap();
    assert!(
        hs.last_error.as_deref().unwrap_or("").contains("the device ended the stream: the device sent BYE"),
        "{hs:?}"
    );
    until("streaming again", 20, || ing.health("gb").is_some_and(|h| h.state == IngestState::Streaming)).await;

    // A device that refuses (or is offline): the camera goes offline with the refusal as its reason.
    *device.refuse.lock().unwrap() = Some("GB/T 28181 device 41010000001180000001 is not registered (offline)".into());
    device.bye.store(true, Ordering::Relaxed);
    let e = events.wait("gb", "offline", Duration::from_secs(30)).await;
    assert_eq!(e.reason, "stalled: the device ended the stream: the device sent BYE", "{e:?}");
    let refused = |h: &tianwang::ingest::HealthSnapshot| {
        h.state != IngestState::Streaming
            && h.last_error.as_deref().is_some_and(|e| e.contains("is not registered (offline)"))
    };
    until("the refusal as the camera's error", 20, || ing.health("gb").is_some_and(|h| refused(&h))).await;
    *device.refuse.lock().unwrap() = None;
    until("streaming after the refusal", 30, || ing.health("gb").is_some_and(|h| h.state == IngestState::Streaming))
        .await;
    stop_all(ing).await;
}

#[test]
fn a_gb_camera_without_the_sip_server_says_what_to_configure() {
    tianwang::ingest::init_gstreamer().expect("gstreamer");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel(4096);
        let ing = Arc::new(Ingest::new(Arc::new(SystemClock), Some(tx)));
        let mut events = Events::new(rx);
        ing.start(gb_spec("gb", Profile::Street, Transport::Udp));
        let e = events.wait("gb", "offline", Duration::from_secs(30)).await;
        assert!(e.reason.contains("add a [gb28181] section"), "{e:?}");
        stop_all(ing).await;
    });
}
