//! A simulated GB/T 28181 device (an NVR with video channels), an independent peer for testing the
//! platform: written from GB/T 28181-2016 and RFC 3261, sharing no code with `crate::gb28181`.
//!
//! It registers with Digest (MD5, `qop=auth` when offered), re-registers before expiry, sends
//! keepalives, answers `Query` MESSAGEs (DeviceInfo, DeviceStatus, Catalog split over several
//! `Response` MESSAGEs), and serves live video: an INVITE for a channel with a GB/T 28181 SDP
//! offer (PS over RTP/UDP or RTP/TCP, `a=setup:active|passive`, `y=` SSRC) is answered with its
//! SDP, and after the ACK the channel's pictures go out as H.264 (or H.265) in an MPEG-2 program
//! stream (`sim::ps`) over RTP, until a BYE from either side. SIP over UDP or TCP.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use md5::{Digest as _, Md5};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::ps::{PsCodec, PsMuxer, RtpPacketizer, rfc4571};
use super::{SimCamera, SimCodec};

/// How the device speaks SIP to the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipTransport {
    Udp,
    Tcp,
}

/// One video channel of the simulated device.
#[derive(Debug, Clone)]
pub struct GbSimChannel {
    /// 20 digits, type 131 (camera) or 132 (dome).
    pub id: String,
    pub name: String,
    /// WGS84 longitude and latitude.
    pub position: Option<(f64, f64)>,
    /// What it shows: size, rate, codec, test pattern or scene (its `path` is not used).
    pub picture: SimCamera,
}

/// What the simulated device is.
#[derive(Debug, Clone)]
pub struct GbDeviceConfig {
    /// The platform's SIP address.
    pub platform: SocketAddr,
    /// The platform's 20-digit id (the Request-URI user of REGISTER and MESSAGEs).
    pub platform_id: String,
    /// The SIP domain (the Digest realm): 10 digits.
    pub domain: String,
    /// The device's 20-digit id (type 118 for an NVR).
    pub device_id: String,
    pub password: String,
    pub transport: SipTransport,
    /// The address it signals and streams from; `None`: the one its route to the platform leaves by.
    pub local_ip: Option<IpAddr>,
    /// Its SIP port (0: a free one).
    pub local_port: u16,
    /// The registration time it asks for.
    pub expires_s: u32,
    pub keepalive_interval: Duration,
    pub name: String,
    pub manufacturer: String,
    pub model: String,
    pub firmware: String,
    pub channels: Vec<GbSimChannel>,
}

impl GbDeviceConfig {
    /// A device without channels, signalling over UDP, registering for an hour, a keepalive a minute.
    pub fn new(platform: SocketAddr, platform_id: &str, domain: &str, device_id: &str, password: &str) -> Self {
        Self {
            platform,
            platform_id: platform_id.into(),
            domain: domain.into(),
            device_id: device_id.into(),
            password: password.into(),
            transport: SipTransport::Udp,
            local_ip: None,
            local_port: 0,
            expires_s: 3600,
            keepalive_interval: Duration::from_secs(60),
            name: "tianwang sim NVR".into(),
            manufacturer: "tianwang".into(),
            model: "SIM-NVR".into(),
            firmware: env!("CARGO_PKG_VERSION").into(),
            channels: Vec::new(),
        }
    }

    /// `n` cameras (type 131) numbered from 1 under the device's id, showing a moving test
    /// pattern at `width`×`height`, `fps`.
    pub fn numbered_channels(device_id: &str, n: usize, width: u32, height: u32, fps: u32) -> Vec<GbSimChannel> {
        (1..=n)
            .map(|i| {
                let prefix: String = device_id.chars().take(10).collect();
                let id = format!("{prefix:0<10}1310{i:06}");
                let mut picture = SimCamera::new(&id, width, height, fps);
                picture.bitrate_kbps = 512;
                GbSimChannel { id, name: format!("Channel {i}"), position: None, picture }
            })
            .collect()
    }
}

/// What the device has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GbDeviceStats {
    /// Registered now (the last REGISTER got a 2xx, and no keepalive was refused since).
    pub registered: bool,
    /// Successful registrations (the first and every renewal).
    pub registrations: u64,
    pub keepalives_sent: u64,
    /// Keepalives the platform answered with a 2xx.
    pub keepalives_answered: u64,
    /// Catalog queries answered (with every page sent).
    pub catalogs_answered: u64,
    /// Catalog SUBSCRIBEs accepted (first ones and renewals).
    pub catalog_subscriptions: u64,
    /// INVITEs answered with 200 OK.
    pub invites_answered: u64,
    /// Streams sending now.
    pub active_streams: usize,
    pub rtp_packets_sent: u64,
}

#[derive(Default)]
struct Counters {
    registered: AtomicBool,
    registrations: AtomicU64,
    keepalives_sent: AtomicU64,
    keepalives_answered: AtomicU64,
    catalogs_answered: AtomicU64,
    catalog_subscriptions: AtomicU64,
    invites_answered: AtomicU64,
    active_streams: AtomicU64,
    rtp_packets_sent: AtomicU64,
}

// ---------------------------------------------------------------------------------------------
// SIP messages (RFC 3261 §7): a start line, headers, a body.

/// A SIP request or response as text lines and a body.
#[derive(Debug, Clone, PartialEq)]
pub struct SipMsg {
    pub first: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

const COMPACT: &[(&str, &str)] = &[
    ("v", "Via"),
    ("f", "From"),
    ("t", "To"),
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
];

/// What reading bytes as a SIP message gave.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// A message and the bytes it took.
    Message(SipMsg, usize),
    /// Not all of it yet (a stream).
    Incomplete,
    Invalid,
}

impl SipMsg {
    /// Reads one message from the start of `buf`. Leading CRLFs (keepalives on streams) are
    /// skipped. A datagram without Content-Length takes the rest as its body.
    pub fn parse(buf: &[u8], stream: bool) -> Parsed {
        let skip = buf.iter().take_while(|b| **b == b'\r' || **b == b'\n').count();
        let buf = &buf[skip..];
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            return if stream && buf.len() < 65_536 { Parsed::Incomplete } else { Parsed::Invalid };
        };
        let Ok(head) = std::str::from_utf8(&buf[..end]) else { return Parsed::Invalid };
        let mut lines = head.split("\r\n");
        let first = lines.next().unwrap_or("").trim().to_string();
        if !first.contains("SIP/2.0") {
            return Parsed::Invalid;
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        for l in lines {
            if l.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(l.trim());
                }
                continue;
            }
            let Some((n, v)) = l.split_once(':') else { return Parsed::Invalid };
            let n = n.trim();
            let n = COMPACT.iter().find(|(c, _)| c.eq_ignore_ascii_case(n)).map(|(_, f)| *f).unwrap_or(n);
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let mut msg = SipMsg { first, headers, body: Vec::new() };
        let body_at = end + 4;
        let len = match msg.header("Content-Length").map(|v| v.parse::<usize>()) {
            Some(Ok(n)) => n,
            Some(Err(_)) => return Parsed::Invalid,
            None if stream => 0,
            None => buf.len() - body_at,
        };
        if buf.len() < body_at + len {
            return if stream { Parsed::Incomplete } else { Parsed::Invalid };
        }
        msg.body = buf[body_at..body_at + len].to_vec();
        Parsed::Message(msg, skip + body_at + len)
    }

    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        let m = self.first.split(' ').next()?;
        (m != "SIP/2.0").then_some(m)
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        let mut p = self.first.split(' ');
        (p.next()? == "SIP/2.0").then(|| p.next()?.parse().ok())?
    }

    pub fn request_uri(&self) -> Option<&str> {
        self.method()?;
        self.first.split(' ').nth(1)
    }

    /// The branch of the top Via.
    pub fn branch(&self) -> Option<String> {
        let top = self.header("Via")?.split(',').next()?;
        param(top, "branch")
    }

    pub fn call_id(&self) -> Option<&str> {
        self.header("Call-ID")
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("{}\r\n", self.first);
        for (n, v) in &self.headers {
            if !n.eq_ignore_ascii_case("Content-Length") {
                s.push_str(&format!("{n}: {v}\r\n"));
            }
        }
        s.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        let mut b = s.into_bytes();
        b.extend_from_slice(&self.body);
        b
    }
}

/// The reason phrase of the status codes the device sends.
fn reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        481 => "Call/Transaction Does Not Exist",
        488 => "Not Acceptable Here",
        _ => "Server Internal Error",
    }
}

/// A `;name=value` parameter of a header value.
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The URI of a name-addr (`"x" <sip:a@b>;tag=1`) or addr-spec (`sip:a@b;tag=1`).
fn header_uri(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

/// The user part of a SIP URI.
fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri.trim().strip_prefix("sip:").or_else(|| uri.trim().strip_prefix("sips:"))?;
    rest.split_once('@').map(|(u, _)| u.split(';').next().unwrap_or(u))
}

/// The host:port of a SIP URI, when it is an IP address (port 5060 when absent).
fn uri_addr(uri: &str) -> Option<SocketAddr> {
    let rest = uri.trim().strip_prefix("sip:")?;
    let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    let host = host.split([';', '?', '>']).next()?;
    host.parse().ok().or_else(|| host.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 5060)))
}

fn random_hex(n: usize) -> String {
    let mut r = rand::thread_rng();
    (0..n).map(|_| format!("{:x}", r.gen_range(0..16u8))).collect()
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The parameters of a `Digest k=v, k="v"` challenge.
fn digest_params(challenge: &str) -> Result<HashMap<String, String>, String> {
    let rest = challenge.trim();
    let (scheme, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(format!("challenge scheme {scheme:?}: only Digest is answered"));
    }
    let mut out = HashMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let Some((k, v)) = s.split_once('=') else { break };
        let k = k.trim().to_ascii_lowercase();
        let v = v.trim_start();
        let (value, next) = if let Some(q) = v.strip_prefix('"') {
            let mut val = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, c2)) = chars.next() {
                            val.push(c2);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => val.push(c),
                }
            }
            (val, &q[end.min(q.len())..])
        } else {
            let e = v.find(',').unwrap_or(v.len());
            (v[..e].trim().to_string(), &v[e..])
        };
        out.insert(k, value);
        s = next.trim_start().trim_start_matches(',').trim_start();
    }
    Ok(out)
}

/// The Authorization value answering `challenge` (RFC 2617 MD5; `qop=auth` when offered).
pub fn digest_answer(
    challenge: &str,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
    nc: u32,
    cnonce: &str,
) -> Result<String, String> {
    let p = digest_params(challenge)?;
    let realm = p.get("realm").cloned().unwrap_or_default();
    let nonce = p.get("nonce").ok_or("challenge without a nonce")?;
    if let Some(a) = p.get("algorithm").filter(|a| !a.eq_ignore_ascii_case("MD5")) {
        return Err(format!("challenge algorithm {a:?}: only MD5 is answered"));
    }
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let auth = p.get("qop").is_some_and(|q| q.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth")));
    let mut v = format!("Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\"");
    if auth {
        let nc = format!("{nc:08x}");
        let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
        v.push_str(&format!(", response=\"{response}\", algorithm=MD5, cnonce=\"{cnonce}\", qop=auth, nc={nc}"));
    } else if p.contains_key("qop") {
        return Err(format!("challenge qop {:?}: only auth is answered", p["qop"]));
    } else {
        let response = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
        v.push_str(&format!(", response=\"{response}\", algorithm=MD5"));
    }
    if let Some(o) = p.get("opaque") {
        v.push_str(&format!(", opaque=\"{o}\""));
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// SDP (RFC 4566 with GB/T 28181's `y=` and `f=` lines; RFC 4571/4145 for RTP over TCP).

/// Who opens the TCP connection of an RTP/TCP stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpSetup {
    /// The platform listens (offer `a=setup:passive`): the device connects.
    PlatformListens,
    /// The platform connects (offer `a=setup:active`): the device listens.
    DeviceListens,
}

/// What a platform's INVITE asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct SdpOffer {
    pub addr: IpAddr,
    pub port: u16,
    /// RTP over TCP, and who connects.
    pub tcp: Option<TcpSetup>,
    /// The payload type carrying PS.
    pub payload_type: u8,
    /// The `y=` SSRC (its ten digits), when given.
    pub ssrc: Option<String>,
}

/// Reads a GB/T 28181 live-video offer; an error says why it cannot be served (488).
pub fn parse_offer(body: &[u8]) -> Result<SdpOffer, String> {
    let text = std::str::from_utf8(body).map_err(|_| "SDP is not UTF-8")?;
    let (mut session_c, mut media_c, mut in_media) = (None, None, false);
    let mut media: Option<(u16, String, Vec<u8>)> = None;
    let (mut rtpmap, mut setup, mut ssrc, mut session) = (HashMap::new(), None, None, None);
    for line in text.lines().map(str::trim) {
        let Some((k, v)) = line.split_once('=') else { continue };
        match k {
            "s" => session = Some(v.trim().to_string()),
            "c" => {
                let ip = v.split_whitespace().nth(2).and_then(|a| a.split('/').next()?.parse::<IpAddr>().ok());
                if in_media { media_c = ip } else { session_c = ip }
            }
            "m" => {
                in_media = true;
                let mut p = v.split_whitespace();
                let kind = p.next().unwrap_or("");
                let port = p.next().and_then(|p| p.split('/').next()?.parse::<u16>().ok());
                let proto = p.next().unwrap_or("").to_string();
                let fmts: Vec<u8> = p.filter_map(|f| f.parse().ok()).collect();
                if kind == "video" && media.is_none() {
                    media = Some((port.ok_or("m=video without a port")?, proto, fmts));
                }
            }
            "a" => {
                if let Some(m) = v.strip_prefix("rtpmap:") {
                    let (pt, enc) = m.split_once(' ').unwrap_or((m, ""));
                    if let Ok(pt) = pt.parse::<u8>() {
                        rtpmap.insert(pt, enc.trim().to_ascii_uppercase());
                    }
                } else if let Some(s) = v.strip_prefix("setup:") {
                    setup = Some(s.trim().to_ascii_lowercase());
                }
            }
            "y" => ssrc = Some(v.trim().to_string()),
            _ => {}
        }
    }
    match session.as_deref() {
        Some(s) if s.eq_ignore_ascii_case("Play") => {}
        Some(s) => return Err(format!("s={s}: only live video (Play) is served, no recordings")),
        None => return Err("no s= line".into()),
    }
    let (port, proto, fmts) = media.ok_or("no m=video line")?;
    if port == 0 {
        return Err("m=video port 0".into());
    }
    let payload_type = fmts
        .iter()
        .copied()
        .find(|pt| rtpmap.get(pt).is_some_and(|e| e.starts_with("PS/90000")))
        .or_else(|| fmts.contains(&96).then_some(96).filter(|pt| !rtpmap.contains_key(pt)))
        .ok_or("no PS/90000 payload offered")?;
    let tcp = match proto.to_ascii_uppercase().as_str() {
        "RTP/AVP" => None,
        "TCP/RTP/AVP" | "RTP/AVP/TCP" => Some(match setup.as_deref() {
            Some("active") => TcpSetup::DeviceListens,
            Some("passive") | None => TcpSetup::PlatformListens,
            Some(s) => return Err(format!("a=setup:{s} (active or passive)")),
        }),
        p => return Err(format!("m=video transport {p:?} (RTP/AVP or TCP/RTP/AVP)")),
    };
    if let Some(s) = &ssrc
        && (s.len() != 10 || s.parse::<u32>().is_err())
    {
        return Err(format!("y={s}: not a 10-digit SSRC"));
    }
    let addr = media_c.or(session_c).ok_or("no c= address")?;
    Ok(SdpOffer { addr, port, tcp, payload_type, ssrc })
}

/// The device's SDP answer to `offer` for `channel`: sending from `ip`:`port`.
pub fn answer_sdp(channel: &str, ip: IpAddr, port: u16, offer: &SdpOffer, ssrc: &str) -> String {
    let ipv = if ip.is_ipv6() { "IP6" } else { "IP4" };
    let mut s = format!(
        "v=0\r\no={channel} 0 0 IN {ipv} {ip}\r\ns=Play\r\nc=IN {ipv} {ip}\r\nt=0 0\r\nm=video {port} {} {pt}\r\n\
         a=sendonly\r\na=rtpmap:{pt} PS/90000\r\n",
        if offer.tcp.is_some() { "TCP/RTP/AVP" } else { "RTP/AVP" },
        pt = offer.payload_type,
    );
    match offer.tcp {
        Some(TcpSetup::PlatformListens) => s.push_str("a=setup:active\r\na=connection:new\r\n"),
        Some(TcpSetup::DeviceListens) => s.push_str("a=setup:passive\r\na=connection:new\r\n"),
        None => {}
    }
    s.push_str(&format!("y={ssrc}\r\n"));
    s
}

// ---------------------------------------------------------------------------------------------
// Pictures: a channel's frames encoded, one Annex B access unit at a time.

/// A channel's encoder: GStreamer from the picture to an appsink of byte-stream access units.
pub struct Encoder {
    pipeline: gst::Pipeline,
    sink: gstreamer_app::AppSink,
    pub codec: PsCodec,
    frame: u64,
    fps: u32,
}

impl Encoder {
    pub fn start(picture: &SimCamera) -> Result<Encoder, String> {
        gst::init().map_err(|e| e.to_string())?;
        let (codec, caps) = match picture.codec {
            SimCodec::H264 => (PsCodec::H264, "video/x-h264"),
            SimCodec::H265 => (PsCodec::H265, "video/x-h265"),
        };
        let enc = match picture.codec {
            SimCodec::H264 => format!(
                "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={} bitrate={} ! video/x-h264,profile=baseline ! h264parse config-interval=-1",
                picture.keyframe_interval.max(1),
                picture.bitrate_kbps
            ),
            SimCodec::H265 => format!(
                "x265enc tune=zerolatency speed-preset=ultrafast key-int-max={} bitrate={} ! h265parse config-interval=-1",
                picture.keyframe_interval.max(1),
                picture.bitrate_kbps
            ),
        };
        let (w, h, f) = (picture.width, picture.height, picture.fps.max(1));
        let out = format!("{caps},stream-format=byte-stream,alignment=au ! appsink name=out max-buffers=50");
        let scene = picture.scene.is_some() || picture.traffic.is_some();
        let launch = if let Some(file) = &picture.file {
            format!(
                "filesrc location=\"{}\" ! qtdemux ! h264parse config-interval=-1 ! {out} sync=true",
                file.display()
            )
        } else if scene {
            format!(
                "appsrc name=traffic is-live=true format=time do-timestamp=false \
                 caps=video/x-raw,format=RGB,width={w},height={h},framerate={f}/1 ! videoconvert ! \
                 video/x-raw,format=I420 ! {enc} ! {out} sync=false"
            )
        } else {
            format!(
                "videotestsrc is-live=true pattern={} ! video/x-raw,width={w},height={h},framerate={f}/1 ! \
                 {enc} ! {out} sync=false",
                picture.pattern
            )
        };
        let pipeline = gst::parse::launch(&launch)
            .map_err(|e| format!("{launch}: {e}"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "not a pipeline".to_string())?;
        let sink =
            pipeline.by_name("out").and_then(|e| e.downcast::<gstreamer_app::AppSink>().ok()).ok_or("no appsink")?;
        if scene && let Some(src) = pipeline.by_name("traffic") {
            let source = match (&picture.scene, &picture.traffic) {
                (Some(s), _) => s.source(w, h, f as f32)?,
                (None, Some(t)) => Box::new(crate::sim::plates::TrafficScene::new(crate::sim::plates::TrafficSpec {
                    width: w,
                    height: h,
                    fps: f as f32,
                    vehicles: t.vehicles.clone(),
                    seconds_per_vehicle: t.seconds_per_vehicle,
                    gap_s: t.gap_s,
                    seed: t.seed,
                })?) as Box<dyn crate::sim::scene::FrameSource>,
                (None, None) => unreachable!("a scene"),
            };
            super::rtsp::feed_scene(src, source, f as f32);
        }
        pipeline.set_state(gst::State::Playing).map_err(|e| format!("cannot play {launch}: {e}"))?;
        Ok(Encoder { pipeline, sink, codec, frame: 0, fps: f })
    }

    /// The next access unit and its time in 90 kHz units; `Ok(None)` when none came within
    /// `wait`; an error at the end of the stream or a pipeline error.
    pub fn next(&mut self, wait: Duration) -> Result<Option<(Vec<u8>, u64)>, String> {
        if let Some(bus) = self.pipeline.bus()
            && let Some(m) = bus.pop_filtered(&[gst::MessageType::Error])
            && let gst::MessageView::Error(e) = m.view()
        {
            return Err(format!("encoder: {}", e.error()));
        }
        let Some(sample) = self.sink.try_pull_sample(gst::ClockTime::from_nseconds(wait.as_nanos() as u64)) else {
            return if self.sink.is_eos() { Err("end of the picture source".into()) } else { Ok(None) };
        };
        let Some(buf) = sample.buffer() else { return Ok(None) };
        let map = buf.map_readable().map_err(|e| e.to_string())?;
        let ts = match buf.pts() {
            Some(p) => p.nseconds() * 9 / 100_000,
            None => self.frame * 90_000 / u64::from(self.fps),
        };
        self.frame += 1;
        Ok(Some((map.as_slice().to_vec(), ts)))
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

// ---------------------------------------------------------------------------------------------
// The device.

/// Where a stream's RTP goes.
enum MediaPlan {
    Udp {
        socket: std::net::UdpSocket,
        to: SocketAddr,
    },
    /// The device connects to the platform.
    TcpConnect {
        to: SocketAddr,
    },
    /// The platform connects to the device.
    TcpListen {
        listener: std::net::TcpListener,
    },
}

struct Session {
    channel: String,
    /// The INVITE's From (the platform's side, with its tag): our requests' To.
    remote: String,
    /// The INVITE's To with our tag: our requests' From.
    local: String,
    /// Where in-dialog requests go: the INVITE's Contact, else its From.
    target_uri: String,
    /// Where the INVITE came from (UDP).
    source: SocketAddr,
    cseq: u32,
    acked: bool,
    media: Option<MediaStart>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct MediaStart {
    plan: MediaPlan,
    channel: String,
    picture: SimCamera,
    ssrc: u32,
    payload_type: u8,
}

enum Event {
    /// A stream stopped by itself (its connection closed, its source ended): BYE.
    MediaEnded(String),
    /// The platform refused a keepalive: register again.
    Reregister,
    /// The TCP signalling connection closed.
    Disconnected,
}

struct Core {
    cfg: GbDeviceConfig,
    /// The address in Via and Contact.
    local: SocketAddr,
    udp: Option<Arc<tokio::net::UdpSocket>>,
    tcp_tx: Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    pending: Mutex<HashMap<String, oneshot::Sender<SipMsg>>>,
    /// Responses sent, by `branch method`, for retransmitted requests.
    answered: Mutex<VecDeque<(String, Vec<u8>)>>,
    sessions: Mutex<HashMap<String, Session>>,
    counters: Counters,
    cseq: AtomicU32,
    sn: AtomicU64,
    nc: AtomicU32,
    /// Keepalives unanswered in a row.
    missed_keepalives: AtomicU32,
    /// Channels whose streams are held: encoded but not sent, the call left up (a device whose
    /// media path broke while its signalling goes on).
    hung: Arc<Mutex<std::collections::HashSet<String>>>,
    /// The Call-ID of the platform's catalog subscription, once it subscribed.
    subscription: Mutex<Option<String>>,
    reg_call_id: String,
    reg_tag: String,
    /// Ends the network tasks.
    io_stop: CancellationToken,
    events: mpsc::UnboundedSender<Event>,
}

/// A running simulated device. [`GbDeviceSim::stop`] unregisters; dropping it just goes silent.
pub struct GbDeviceSim {
    core: Arc<Core>,
    main_stop: CancellationToken,
    main: Option<tokio::task::JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The local address whose route reaches `to`.
fn route_to(to: SocketAddr) -> IpAddr {
    let any = if to.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
    std::net::UdpSocket::bind(any)
        .and_then(|s| {
            s.connect(to)?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// A MANSCDP body: GB2312 as declared (GBK bytes, which GB2312 text is a part of).
fn manscdp_body(xml: &str) -> Vec<u8> {
    let text = format!("<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n{xml}");
    encoding_rs::GBK.encode(&text).0.into_owned()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Items per Catalog MESSAGE: a page stays far under a UDP datagram's 8 KB.
pub const CATALOG_PAGE: usize = 4;

impl GbDeviceSim {
    /// Binds its SIP port (and connects, over TCP), then registers and runs until stopped.
    pub async fn start(cfg: GbDeviceConfig) -> Result<GbDeviceSim, String> {
        for c in &cfg.channels {
            if c.id.len() != 20 || !c.id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("channel id {:?}: 20 digits", c.id));
            }
        }
        if cfg.device_id.len() != 20 || !cfg.device_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("device id {:?}: 20 digits", cfg.device_id));
        }
        let ip = cfg.local_ip.unwrap_or_else(|| route_to(cfg.platform));
        let (events, events_rx) = mpsc::unbounded_channel();
        let io_stop = CancellationToken::new();
        let (udp, local, tcp) = match cfg.transport {
            SipTransport::Udp => {
                let s = tokio::net::UdpSocket::bind(SocketAddr::new(ip, cfg.local_port))
                    .await
                    .map_err(|e| format!("cannot bind SIP on {ip}:{}: {e}", cfg.local_port))?;
                let local = s.local_addr().map_err(|e| e.to_string())?;
                (Some(Arc::new(s)), local, None)
            }
            SipTransport::Tcp => {
                let s = connect_tcp(ip, cfg.local_port, cfg.platform).await?;
                let local = s.local_addr().map_err(|e| e.to_string())?;
                (None, local, Some(s))
            }
        };
        let reg_call_id = format!("{}@{}", random_hex(16), ip);
        let core = Arc::new(Core::new(cfg, local, udp.clone(), reg_call_id, io_stop, events));
        if let Some(s) = udp {
            let c = core.clone();
            tokio::spawn(async move { c.read_udp(s).await });
        }
        if let Some(s) = tcp {
            core.clone().attach_tcp(s);
        }
        let main_stop = CancellationToken::new();
        let c = core.clone();
        let st = main_stop.clone();
        let main = tokio::spawn(async move { c.run(events_rx, st).await });
        Ok(GbDeviceSim { core, main_stop, main: Some(main) })
    }

    /// Its SIP address (UDP socket, or the local end of its TCP connection).
    pub fn local_addr(&self) -> SocketAddr {
        self.core.local
    }

    pub fn device_id(&self) -> &str {
        &self.core.cfg.device_id
    }

    pub fn stats(&self) -> GbDeviceStats {
        let c = &self.core.counters;
        GbDeviceStats {
            registered: c.registered.load(Ordering::SeqCst),
            registrations: c.registrations.load(Ordering::SeqCst),
            keepalives_sent: c.keepalives_sent.load(Ordering::SeqCst),
            keepalives_answered: c.keepalives_answered.load(Ordering::SeqCst),
            catalogs_answered: c.catalogs_answered.load(Ordering::SeqCst),
            catalog_subscriptions: c.catalog_subscriptions.load(Ordering::SeqCst),
            invites_answered: c.invites_answered.load(Ordering::SeqCst),
            active_streams: c.active_streams.load(Ordering::SeqCst) as usize,
            rtp_packets_sent: c.rtp_packets_sent.load(Ordering::SeqCst),
        }
    }

    /// Holds (`true`) or resumes the channel's streams: while held nothing is sent and no BYE
    /// either, as when a device's media path breaks while its signalling goes on.
    pub fn hang_channel(&self, channel: &str, hung: bool) {
        let mut h = lock(&self.core.hung);
        if hung {
            h.insert(channel.to_string());
        } else {
            h.remove(channel);
        }
    }

    /// Tells the platform of catalog changes by NOTIFY (§9.11.2), as a device does once the
    /// platform subscribed: `(channel id, event)` with events `ON`, `OFF`, `VLOST`, `DEFECT`,
    /// `ADD`, `DEL`, `UPDATE` (`ADD`/`UPDATE` items carry a name and `Status ON`). The platform's
    /// answer code; an error when nothing subscribed or no answer came.
    pub async fn notify_catalog(&self, changes: &[(&str, &str)]) -> Result<u16, String> {
        let Some(call_id) = lock(&self.core.subscription).clone() else {
            return Err("the platform has not subscribed to the catalog".into());
        };
        let core = &self.core;
        let dev = xml_escape(&core.cfg.device_id);
        let mut xml = format!(
            "<Notify>\r\n<CmdType>Catalog</CmdType>\r\n<SN>{}</SN>\r\n<DeviceID>{dev}</DeviceID>\r\n\
             <SumNum>{n}</SumNum>\r\n<DeviceList Num=\"{n}\">\r\n",
            core.next_sn(),
            n = changes.len()
        );
        for (id, event) in changes {
            let id = xml_escape(id);
            let described = matches!(*event, "ADD" | "UPDATE");
            let more = if described {
                format!("<Name>Channel {id}</Name>\r\n<ParentID>{dev}</ParentID>\r\n<Status>ON</Status>\r\n")
            } else {
                String::new()
            };
            xml.push_str(&format!(
                "<Item>\r\n<DeviceID>{id}</DeviceID>\r\n<Event>{event}</Event>\r\n{more}</Item>\r\n"
            ));
        }
        xml.push_str("</DeviceList>\r\n</Notify>\r\n");
        let r = core
            .transact(Out {
                method: "NOTIFY",
                uri: core.platform_uri(),
                from: format!("<sip:{}@{}>;tag={}", core.cfg.device_id, core.cfg.domain, random_hex(10)),
                to: format!("<{}>", core.platform_uri()),
                call_id,
                cseq: core.cseq.fetch_add(1, Ordering::SeqCst),
                headers: vec![
                    ("Event".to_string(), "Catalog".to_string()),
                    ("Subscription-State".to_string(), "active".to_string()),
                ],
                body: Some(("Application/MANSCDP+xml", manscdp_body(&xml))),
                dest: core.cfg.platform,
            })
            .await?;
        Ok(r.status().unwrap_or(0))
    }

    /// Ends the channel's streams from the device's side (BYE to the platform); how many.
    pub async fn stop_channel(&self, channel: &str) -> usize {
        let ids: Vec<String> =
            lock(&self.core.sessions).iter().filter(|(_, s)| s.channel == channel).map(|(k, _)| k.clone()).collect();
        for id in &ids {
            self.core.end_session(id, true).await;
        }
        ids.len()
    }

    /// Ends every stream (BYE), unregisters (REGISTER with Expires: 0) and stops.
    pub async fn stop(mut self) -> Result<(), String> {
        self.main_stop.cancel();
        if let Some(m) = self.main.take() {
            let _ = m.await;
        }
        let ids: Vec<String> = lock(&self.core.sessions).keys().cloned().collect();
        for id in &ids {
            self.core.end_session(id, true).await;
        }
        let r = if self.core.counters.registered.swap(false, Ordering::SeqCst) {
            self.core.register(0).await.map(|_| ())
        } else {
            Ok(())
        };
        self.core.io_stop.cancel();
        r
    }
}

impl Drop for GbDeviceSim {
    fn drop(&mut self) {
        self.main_stop.cancel();
        self.core.io_stop.cancel();
        for s in lock(&self.core.sessions).values() {
            s.stop.store(true, Ordering::SeqCst);
        }
    }
}

async fn connect_tcp(ip: IpAddr, port: u16, to: SocketAddr) -> Result<tokio::net::TcpStream, String> {
    let sock = if ip.is_ipv6() { tokio::net::TcpSocket::new_v6() } else { tokio::net::TcpSocket::new_v4() }
        .map_err(|e| e.to_string())?;
    sock.bind(SocketAddr::new(ip, port)).map_err(|e| format!("cannot bind SIP on {ip}:{port}: {e}"))?;
    tokio::time::timeout(Duration::from_secs(5), sock.connect(to))
        .await
        .map_err(|_| format!("cannot connect to the platform at {to}: no answer in 5 s"))?
        .map_err(|e| format!("cannot connect to the platform at {to}: {e}"))
}

/// What one outgoing request is.
struct Out {
    method: &'static str,
    uri: String,
    from: String,
    to: String,
    call_id: String,
    cseq: u32,
    headers: Vec<(String, String)>,
    body: Option<(&'static str, Vec<u8>)>,
    dest: SocketAddr,
}

impl Core {
    fn new(
        cfg: GbDeviceConfig,
        local: SocketAddr,
        udp: Option<Arc<tokio::net::UdpSocket>>,
        reg_call_id: String,
        io_stop: CancellationToken,
        events: mpsc::UnboundedSender<Event>,
    ) -> Core {
        Core {
            local,
            udp,
            tcp_tx: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            answered: Mutex::new(VecDeque::new()),
            sessions: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            cseq: AtomicU32::new(1),
            sn: AtomicU64::new(1),
            nc: AtomicU32::new(1),
            missed_keepalives: AtomicU32::new(0),
            hung: Arc::default(),
            subscription: Mutex::new(None),
            reg_call_id,
            reg_tag: random_hex(10),
            io_stop,
            events,
            cfg,
        }
    }

    fn via_proto(&self) -> &'static str {
        match self.cfg.transport {
            SipTransport::Udp => "UDP",
            SipTransport::Tcp => "TCP",
        }
    }

    fn contact(&self) -> String {
        let t = if self.cfg.transport == SipTransport::Tcp { ";transport=tcp" } else { "" };
        format!("<sip:{}@{}{t}>", self.cfg.device_id, self.local)
    }

    async fn send(&self, bytes: &[u8], to: SocketAddr) {
        if let Some(u) = &self.udp {
            if let Err(e) = u.send_to(bytes, to).await {
                tracing::debug!(%to, error = %e, "sim GB device: send failed");
            }
        } else if let Some(tx) = lock(&self.tcp_tx).as_ref() {
            let _ = tx.send(bytes.to_vec());
        }
    }

    async fn read_udp(self: Arc<Self>, s: Arc<tokio::net::UdpSocket>) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let r = tokio::select! {
                _ = self.io_stop.cancelled() => return,
                r = s.recv_from(&mut buf) => r,
            };
            // Errors (an ICMP port unreachable reported on the socket) are not the end.
            let Ok((n, from)) = r else { continue };
            if let Parsed::Message(m, _) = SipMsg::parse(&buf[..n], false) {
                self.clone().incoming(m, from).await;
            }
        }
    }

    fn attach_tcp(self: Arc<Self>, s: tokio::net::TcpStream) {
        let (mut rd, mut wr) = s.into_split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        *lock(&self.tcp_tx) = Some(tx);
        let stop = self.io_stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    b = rx.recv() => match b {
                        Some(b) => if wr.write_all(&b).await.is_err() { break },
                        None => break,
                    },
                }
            }
        });
        let me = self.clone();
        let peer = self.cfg.platform;
        tokio::spawn(async move {
            let mut buf: Vec<u8> = Vec::new();
            let mut chunk = vec![0u8; 16_384];
            loop {
                let n = tokio::select! {
                    _ = me.io_stop.cancelled() => return,
                    r = rd.read(&mut chunk) => r.unwrap_or(0),
                };
                if n == 0 {
                    let _ = me.events.send(Event::Disconnected);
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                loop {
                    match SipMsg::parse(&buf, true) {
                        Parsed::Message(m, used) => {
                            buf.drain(..used);
                            me.clone().incoming(m, peer).await;
                        }
                        Parsed::Incomplete => break,
                        Parsed::Invalid => {
                            buf.clear();
                            break;
                        }
                    }
                }
            }
        });
    }

    async fn incoming(self: Arc<Self>, m: SipMsg, from: SocketAddr) {
        if let Some(code) = m.status() {
            if code >= 200
                && let Some(b) = m.branch()
                && let Some(tx) = lock(&self.pending).remove(&b)
            {
                let _ = tx.send(m);
            }
            return;
        }
        let Some(method) = m.method().map(str::to_string) else { return };
        if method != "ACK"
            && let Some(b) = m.branch()
        {
            let key = format!("{b} {method}");
            let cached = lock(&self.answered).iter().rev().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
            if let Some(bytes) = cached {
                self.send(&bytes, from).await;
                return;
            }
        }
        tokio::spawn(async move { self.request(m, &method, from).await });
    }

    /// Answers `req` (and remembers the answer for its retransmissions).
    async fn respond(
        &self,
        req: &SipMsg,
        code: u16,
        to_tag: Option<&str>,
        extra: Vec<(String, String)>,
        body: Option<(&str, Vec<u8>)>,
        from: SocketAddr,
    ) -> Vec<u8> {
        let mut headers: Vec<(String, String)> = req.all("Via").map(|v| ("Via".to_string(), v.to_string())).collect();
        headers.push(("From".into(), req.header("From").unwrap_or("").into()));
        let mut to = req.header("To").unwrap_or("").to_string();
        if let Some(t) = to_tag
            && param(&to, "tag").is_none()
        {
            to.push_str(&format!(";tag={t}"));
        }
        headers.push(("To".into(), to));
        headers.push(("Call-ID".into(), req.call_id().unwrap_or("").into()));
        headers.push(("CSeq".into(), req.header("CSeq").unwrap_or("").into()));
        headers.push(("User-Agent".into(), format!("{} {}", self.cfg.manufacturer, self.cfg.model)));
        headers.extend(extra);
        let mut msg = SipMsg { first: format!("SIP/2.0 {code} {}", reason(code)), headers, body: Vec::new() };
        if let Some((ct, b)) = body {
            msg.headers.push(("Content-Type".into(), ct.into()));
            msg.body = b;
        }
        let bytes = msg.to_bytes();
        if let (Some(b), Some(m)) = (req.branch(), req.method()) {
            let mut a = lock(&self.answered);
            a.push_back((format!("{b} {m}"), bytes.clone()));
            while a.len() > 128 {
                a.pop_front();
            }
        }
        self.send(&bytes, from).await;
        bytes
    }

    /// Sends a request and waits for its final response (retransmitting over UDP: RFC 3261's
    /// timers, 500 ms doubling to 4 s, given up after 32 s).
    async fn transact(&self, out: Out) -> Result<SipMsg, String> {
        let branch = format!("z9hG4bK{}", random_hex(16));
        let mut headers = vec![
            ("Via".to_string(), format!("SIP/2.0/{} {};rport;branch={branch}", self.via_proto(), self.local)),
            ("From".into(), out.from),
            ("To".into(), out.to),
            ("Call-ID".into(), out.call_id),
            ("CSeq".into(), format!("{} {}", out.cseq, out.method)),
            ("Max-Forwards".into(), "70".into()),
            ("User-Agent".into(), format!("{} {}", self.cfg.manufacturer, self.cfg.model)),
        ];
        headers.extend(out.headers);
        let mut msg = SipMsg { first: format!("{} {} SIP/2.0", out.method, out.uri), headers, body: Vec::new() };
        if let Some((ct, b)) = out.body {
            msg.headers.push(("Content-Type".into(), ct.into()));
            msg.body = b;
        }
        let bytes = msg.to_bytes();
        let (tx, mut rx) = oneshot::channel();
        lock(&self.pending).insert(branch.clone(), tx);
        self.send(&bytes, out.dest).await;
        let deadline = Instant::now() + Duration::from_secs(32);
        let mut t = Duration::from_millis(500);
        let result = loop {
            let wait = if self.udp.is_some() { t } else { deadline.saturating_duration_since(Instant::now()) };
            tokio::select! {
                r = &mut rx => break r.map_err(|_| "transaction dropped".to_string()),
                _ = self.io_stop.cancelled() => break Err("stopped".into()),
                _ = tokio::time::sleep(wait) => {
                    if Instant::now() >= deadline {
                        break Err(format!("{} to {}: no answer in 32 s", out.method, out.dest));
                    }
                    self.send(&bytes, out.dest).await;
                    t = (t * 2).min(Duration::from_secs(4));
                }
            }
        };
        lock(&self.pending).remove(&branch);
        result
    }

    fn platform_uri(&self) -> String {
        format!("sip:{}@{}", self.cfg.platform_id, self.cfg.domain)
    }

    /// REGISTER (answering a Digest challenge); the granted time.
    async fn register(&self, expires: u32) -> Result<u32, String> {
        let dev = &self.cfg.device_id;
        let uri = format!("sip:{}@{}", self.cfg.platform_id, self.cfg.domain);
        let mut auth: Option<(String, String)> = None;
        for _ in 0..3 {
            let mut headers = vec![("Contact".to_string(), self.contact()), ("Expires".into(), expires.to_string())];
            if let Some(a) = &auth {
                headers.push(a.clone());
            }
            let r = self
                .transact(Out {
                    method: "REGISTER",
                    uri: uri.clone(),
                    from: format!("<sip:{dev}@{}>;tag={}", self.cfg.domain, self.reg_tag),
                    to: format!("<sip:{dev}@{}>", self.cfg.domain),
                    call_id: self.reg_call_id.clone(),
                    cseq: self.cseq.fetch_add(1, Ordering::SeqCst),
                    headers,
                    body: None,
                    dest: self.cfg.platform,
                })
                .await?;
            match r.status().unwrap_or(0) {
                200..=299 => {
                    let granted = r
                        .header("Expires")
                        .and_then(|v| v.parse().ok())
                        .or_else(|| r.header("Contact").and_then(|c| param(c, "expires")?.parse().ok()))
                        .unwrap_or(expires);
                    return Ok(granted);
                }
                code @ (401 | 407) => {
                    let (ch, answer) = if code == 401 {
                        ("WWW-Authenticate", "Authorization")
                    } else {
                        ("Proxy-Authenticate", "Proxy-Authorization")
                    };
                    let challenge = r.header(ch).ok_or_else(|| format!("{code} without {ch}"))?;
                    let nc = self.nc.fetch_add(1, Ordering::SeqCst);
                    let a = digest_answer(challenge, "REGISTER", &uri, dev, &self.cfg.password, nc, &random_hex(16))?;
                    auth = Some((answer.to_string(), a));
                }
                code => return Err(format!("REGISTER answered {code} ({})", r.first)),
            }
        }
        Err("REGISTER: challenged again after answering".into())
    }

    /// A MESSAGE to the platform with a MANSCDP body; its status.
    async fn message(&self, xml: &str) -> Result<u16, String> {
        let r = self
            .transact(Out {
                method: "MESSAGE",
                uri: self.platform_uri(),
                from: format!("<sip:{}@{}>;tag={}", self.cfg.device_id, self.cfg.domain, random_hex(10)),
                to: format!("<{}>", self.platform_uri()),
                call_id: format!("{}@{}", random_hex(16), self.local.ip()),
                cseq: self.cseq.fetch_add(1, Ordering::SeqCst),
                headers: vec![],
                body: Some(("Application/MANSCDP+xml", manscdp_body(xml))),
                dest: self.cfg.platform,
            })
            .await?;
        Ok(r.status().unwrap_or(0))
    }

    fn next_sn(&self) -> u64 {
        self.sn.fetch_add(1, Ordering::SeqCst)
    }

    async fn keepalive(&self) {
        let xml = format!(
            "<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>{}</SN>\r\n<DeviceID>{}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n",
            self.next_sn(),
            self.cfg.device_id
        );
        self.counters.keepalives_sent.fetch_add(1, Ordering::SeqCst);
        match self.message(&xml).await {
            Ok(200..=299) => {
                self.counters.keepalives_answered.fetch_add(1, Ordering::SeqCst);
            }
            Ok(code) => {
                tracing::info!(code, "sim GB device: keepalive refused; registering again");
                self.counters.registered.store(false, Ordering::SeqCst);
                let _ = self.events.send(Event::Reregister);
            }
            Err(e) => {
                // Three unanswered in a row: the platform lost us (or restarted); register again.
                let missed = self.missed_keepalives.fetch_add(1, Ordering::SeqCst) + 1;
                tracing::debug!(error = %e, missed, "sim GB device: keepalive unanswered");
                if missed >= 3 {
                    self.missed_keepalives.store(0, Ordering::SeqCst);
                    self.counters.registered.store(false, Ordering::SeqCst);
                    let _ = self.events.send(Event::Reregister);
                }
                return;
            }
        }
        self.missed_keepalives.store(0, Ordering::SeqCst);
    }

    async fn run(self: Arc<Self>, mut events: mpsc::UnboundedReceiver<Event>, stop: CancellationToken) {
        let mut next_register = tokio::time::Instant::now();
        let mut next_keepalive: Option<tokio::time::Instant> = None;
        loop {
            let wake = next_keepalive.map_or(next_register, |k| k.min(next_register));
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(wake) => {}
                ev = events.recv() => match ev {
                    Some(Event::MediaEnded(call)) => { self.end_session(&call, true).await; continue }
                    Some(Event::Reregister) => next_register = tokio::time::Instant::now(),
                    Some(Event::Disconnected) => {
                        self.counters.registered.store(false, Ordering::SeqCst);
                        let ip = self.local.ip();
                        let again = tokio::select! {
                            _ = stop.cancelled() => return,
                            r = async {
                                tokio::time::sleep(Duration::from_secs(1)).await;
                                connect_tcp(ip, 0, self.cfg.platform).await
                            } => r,
                        };
                        match again {
                            Ok(s) => self.clone().attach_tcp(s),
                            Err(e) => {
                                tracing::warn!(error = %e, "sim GB device: cannot reconnect");
                                let _ = self.events.send(Event::Disconnected);
                            }
                        }
                        next_register = tokio::time::Instant::now();
                    }
                    None => return,
                },
            }
            let now = tokio::time::Instant::now();
            if now >= next_register {
                let r = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = self.register(self.cfg.expires_s) => r,
                };
                match r {
                    Ok(granted) => {
                        self.counters.registered.store(true, Ordering::SeqCst);
                        self.counters.registrations.fetch_add(1, Ordering::SeqCst);
                        tracing::info!(device = %self.cfg.device_id, granted, "sim GB device registered");
                        next_register = now + Duration::from_secs(u64::from(granted.max(2)) * 3 / 4);
                        if next_keepalive.is_none() {
                            next_keepalive = Some(now);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(device = %self.cfg.device_id, error = %e, "sim GB device: registration failed");
                        self.counters.registered.store(false, Ordering::SeqCst);
                        next_register = now + self.cfg.keepalive_interval.min(Duration::from_secs(10));
                        next_keepalive = None;
                    }
                }
            }
            if let Some(k) = next_keepalive
                && tokio::time::Instant::now() >= k
            {
                // Sent on a task of its own: an unanswered one (retransmitted for 32 s) does not
                // hold up the next. A refusal (403: the platform forgot us) registers again.
                let me = self.clone();
                tokio::spawn(async move { me.keepalive().await });
                next_keepalive = Some(k + self.cfg.keepalive_interval.max(Duration::from_millis(100)));
            }
        }
    }

    async fn request(self: Arc<Self>, m: SipMsg, method: &str, from: SocketAddr) {
        match method {
            "MESSAGE" => self.on_message(&m, from).await,
            "INVITE" => self.on_invite(&m, from).await,
            "ACK" => self.on_ack(&m),
            "BYE" => {
                let call = m.call_id().unwrap_or("").to_string();
                let known = lock(&self.sessions).contains_key(&call);
                if known {
                    self.respond(&m, 200, None, vec![], None, from).await;
                    self.end_session(&call, false).await;
                } else {
                    self.respond(&m, 481, None, vec![], None, from).await;
                }
            }
            "CANCEL" => {
                let call = m.call_id().unwrap_or("").to_string();
                self.respond(&m, 200, None, vec![], None, from).await;
                let unacked = lock(&self.sessions).get(&call).is_some_and(|s| !s.acked);
                if unacked {
                    self.end_session(&call, false).await;
                }
            }
            "OPTIONS" => {
                self.respond(&m, 200, None, vec![], None, from).await;
            }
            "SUBSCRIBE" if m.header("Event").is_some_and(|e| e.trim().to_ascii_lowercase().starts_with("catalog")) => {
                // A catalog subscription: accepted; changes go out as NOTIFYs (`notify_catalog`).
                let expires = m.header("Expires").unwrap_or("3600").trim().to_string();
                let h = vec![("Expires".to_string(), expires)];
                self.respond(&m, 200, Some(&random_hex(10)), h, None, from).await;
                *lock(&self.subscription) = m.call_id().map(str::to_string);
                self.counters.catalog_subscriptions.fetch_add(1, Ordering::SeqCst);
            }
            _ => {
                let allow =
                    vec![("Allow".to_string(), "INVITE, ACK, BYE, CANCEL, MESSAGE, OPTIONS, SUBSCRIBE".to_string())];
                self.respond(&m, 405, None, allow, None, from).await;
            }
        }
    }

    async fn on_message(&self, m: &SipMsg, from: SocketAddr) {
        let text = match std::str::from_utf8(&m.body) {
            Ok(t) => t.to_string(),
            Err(_) => encoding_rs::GB18030.decode(&m.body).0.into_owned(),
        };
        // roxmltree refuses an encoding declaration it cannot read only for DTDs; strip the
        // declaration anyway, the text is already decoded.
        let xml = match text.find("?>") {
            Some(i) if text.trim_start().starts_with("<?xml") => &text[i + 2..],
            _ => text.as_str(),
        };
        let doc = match roxmltree::Document::parse(xml.trim()) {
            Ok(d) => d,
            Err(e) => {
                let w = vec![("Warning".to_string(), format!("399 sim \"body is not XML: {e}\""))];
                self.respond(m, 400, None, w, None, from).await;
                return;
            }
        };
        let root = doc.root_element();
        let child = |name: &str| {
            root.children()
                .find(|n| n.tag_name().name().eq_ignore_ascii_case(name))
                .and_then(|n| n.text())
                .map(str::trim)
        };
        let cmd = child("CmdType").unwrap_or("").to_string();
        let sn = child("SN").and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        let query = root.tag_name().name();
        self.respond(m, 200, None, vec![], None, from).await;
        if query != "Query" {
            return;
        }
        let dev = xml_escape(&self.cfg.device_id);
        match cmd.as_str() {
            "DeviceInfo" => {
                let xml = format!(
                    "<Response>\r\n<CmdType>DeviceInfo</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{dev}</DeviceID>\r\n\
                     <DeviceName>{}</DeviceName>\r\n<Result>OK</Result>\r\n<Manufacturer>{}</Manufacturer>\r\n\
                     <Model>{}</Model>\r\n<Firmware>{}</Firmware>\r\n<Channel>{}</Channel>\r\n</Response>\r\n",
                    xml_escape(&self.cfg.name),
                    xml_escape(&self.cfg.manufacturer),
                    xml_escape(&self.cfg.model),
                    xml_escape(&self.cfg.firmware),
                    self.cfg.channels.len()
                );
                if let Err(e) = self.message(&xml).await {
                    tracing::warn!(error = %e, "sim GB device: DeviceInfo not delivered");
                }
            }
            "DeviceStatus" => {
                let xml = format!(
                    "<Response>\r\n<CmdType>DeviceStatus</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{dev}</DeviceID>\r\n\
                     <Result>OK</Result>\r\n<Online>ONLINE</Online>\r\n<Status>OK</Status>\r\n<Encode>ON</Encode>\r\n\
                     <Record>OFF</Record>\r\n</Response>\r\n"
                );
                if let Err(e) = self.message(&xml).await {
                    tracing::warn!(error = %e, "sim GB device: DeviceStatus not delivered");
                }
            }
            "Catalog" => {
                let sum = self.cfg.channels.len();
                let pages: Vec<&[GbSimChannel]> =
                    if sum == 0 { vec![&[]] } else { self.cfg.channels.chunks(CATALOG_PAGE).collect() };
                let mut ok = true;
                for page in pages {
                    let xml = self.catalog_page(sn, sum, page);
                    match self.message(&xml).await {
                        Ok(200..=299) => {}
                        Ok(code) => {
                            tracing::warn!(code, "sim GB device: catalog page refused");
                            ok = false;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "sim GB device: catalog page not delivered");
                            ok = false;
                        }
                    }
                }
                if ok {
                    self.counters.catalogs_answered.fetch_add(1, Ordering::SeqCst);
                }
            }
            _ => {}
        }
    }

    /// One Catalog `Response` MESSAGE body with `page`'s items (GB/T 28181-2016 A.2.6.4).
    fn catalog_page(&self, sn: u64, sum: usize, page: &[GbSimChannel]) -> String {
        let dev = xml_escape(&self.cfg.device_id);
        let mut xml = format!(
            "<Response>\r\n<CmdType>Catalog</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{dev}</DeviceID>\r\n\
             <SumNum>{sum}</SumNum>\r\n<DeviceList Num=\"{}\">\r\n",
            page.len()
        );
        for c in page {
            let civil = if c.id[6..8] == *"00" { &c.id[..6] } else { &c.id[..8] };
            xml.push_str(&format!(
                "<Item>\r\n<DeviceID>{}</DeviceID>\r\n<Name>{}</Name>\r\n<Manufacturer>{}</Manufacturer>\r\n\
                 <Model>{}</Model>\r\n<Owner>Owner</Owner>\r\n<CivilCode>{civil}</CivilCode>\r\n\
                 <Address>{}</Address>\r\n<Parental>0</Parental>\r\n<ParentID>{dev}</ParentID>\r\n\
                 <SafetyWay>0</SafetyWay>\r\n<RegisterWay>1</RegisterWay>\r\n<Secrecy>0</Secrecy>\r\n\
                 <Status>ON</Status>\r\n",
                xml_escape(&c.id),
                xml_escape(&c.name),
                xml_escape(&self.cfg.manufacturer),
                xml_escape(&self.cfg.model),
                xml_escape(&c.name),
            ));
            if let Some((lon, lat)) = c.position {
                xml.push_str(&format!("<Longitude>{lon}</Longitude>\r\n<Latitude>{lat}</Latitude>\r\n"));
            }
            xml.push_str("</Item>\r\n");
        }
        xml.push_str("</DeviceList>\r\n</Response>\r\n");
        xml
    }

    async fn on_invite(self: &Arc<Self>, m: &SipMsg, from: SocketAddr) {
        let call = m.call_id().unwrap_or("").to_string();
        let user = m.request_uri().and_then(uri_user).unwrap_or("").to_string();
        let Some(channel) = self.cfg.channels.iter().find(|c| c.id == user).cloned() else {
            self.respond(m, 404, Some(&random_hex(10)), vec![], None, from).await;
            return;
        };
        if lock(&self.sessions).contains_key(&call) {
            // A re-INVITE: the stream stays as it is.
            self.respond(m, 488, None, vec![], None, from).await;
            return;
        }
        let offer = match parse_offer(&m.body) {
            Ok(o) => o,
            Err(why) => {
                let w = vec![("Warning".to_string(), format!("304 sim \"{}\"", why.replace('"', "'")))];
                self.respond(m, 488, Some(&random_hex(10)), w, None, from).await;
                return;
            }
        };
        self.respond(m, 100, None, vec![], None, from).await;
        let ip = self.local.ip();
        let to = SocketAddr::new(offer.addr, offer.port);
        let bound = match offer.tcp {
            None => std::net::UdpSocket::bind(SocketAddr::new(ip, 0))
                .and_then(|s| Ok((s.local_addr()?.port(), MediaPlan::Udp { socket: s, to }))),
            Some(TcpSetup::PlatformListens) => Ok((9, MediaPlan::TcpConnect { to })),
            Some(TcpSetup::DeviceListens) => std::net::TcpListener::bind(SocketAddr::new(ip, 0))
                .and_then(|l| Ok((l.local_addr()?.port(), MediaPlan::TcpListen { listener: l }))),
        };
        let (port, plan) = match bound {
            Ok(b) => b,
            Err(e) => {
                let w = vec![("Warning".to_string(), format!("399 sim \"no media port: {e}\""))];
                self.respond(m, 500, Some(&random_hex(10)), w, None, from).await;
                return;
            }
        };
        let ssrc_text =
            offer.ssrc.clone().unwrap_or_else(|| format!("0{:09}", rand::thread_rng().gen_range(0..1_000_000_000u32)));
        let ssrc: u32 = ssrc_text.parse().unwrap_or(0);
        let sdp = answer_sdp(&channel.id, ip, port, &offer, &ssrc_text);
        let tag = random_hex(10);
        let mut local = m.header("To").unwrap_or("").to_string();
        if param(&local, "tag").is_none() {
            local.push_str(&format!(";tag={tag}"));
        }
        let remote = m.header("From").unwrap_or("").to_string();
        let target_uri =
            m.header("Contact").map(|c| header_uri(c).to_string()).unwrap_or_else(|| header_uri(&remote).to_string());
        let stop = Arc::new(AtomicBool::new(false));
        lock(&self.sessions).insert(
            call.clone(),
            Session {
                channel: channel.id.clone(),
                remote,
                local,
                target_uri,
                source: from,
                cseq: 1,
                acked: false,
                media: Some(MediaStart {
                    plan,
                    channel: channel.id.clone(),
                    picture: channel.picture.clone(),
                    ssrc,
                    payload_type: offer.payload_type,
                }),
                stop,
                thread: None,
            },
        );
        let contact = vec![("Contact".to_string(), format!("<sip:{}@{}>", channel.id, self.local))];
        let ok = self.respond(m, 200, Some(&tag), contact, Some(("application/sdp", sdp.into_bytes())), from).await;
        self.counters.invites_answered.fetch_add(1, Ordering::SeqCst);
        tracing::info!(channel = %channel.id, ssrc = %ssrc_text, "sim GB device: INVITE answered");
        // The 2xx is retransmitted until the ACK comes (UDP), and the call dropped without one.
        let me = self.clone();
        tokio::spawn(async move {
            let mut t = Duration::from_millis(500);
            let deadline = Instant::now() + Duration::from_secs(32);
            loop {
                tokio::select! {
                    _ = me.io_stop.cancelled() => return,
                    _ = tokio::time::sleep(t) => {}
                }
                let acked = lock(&me.sessions).get(&call).map(|s| s.acked);
                match acked {
                    None | Some(true) => return,
                    Some(false) if Instant::now() >= deadline => {
                        tracing::warn!(%call, "sim GB device: no ACK for the INVITE's 200 in 32 s");
                        me.end_session(&call, true).await;
                        return;
                    }
                    Some(false) => {
                        if me.udp.is_some() {
                            me.send(&ok, from).await;
                        }
                        t = (t * 2).min(Duration::from_secs(4));
                    }
                }
            }
        });
    }

    fn on_ack(self: &Arc<Self>, m: &SipMsg) {
        let call = m.call_id().unwrap_or("").to_string();
        let mut sessions = lock(&self.sessions);
        let Some(s) = sessions.get_mut(&call) else { return };
        if s.acked {
            return;
        }
        s.acked = true;
        let Some(media) = s.media.take() else { return };
        let stop = s.stop.clone();
        let me = self.clone();
        let call2 = call.clone();
        let thread = std::thread::Builder::new().name("sim-gb-media".into()).spawn(move || {
            me.counters.active_streams.fetch_add(1, Ordering::SeqCst);
            let r = stream(media, &stop, &me.counters, &me.hung);
            me.counters.active_streams.fetch_sub(1, Ordering::SeqCst);
            if !stop.load(Ordering::SeqCst) {
                tracing::info!(call = %call2, reason = %r.err().unwrap_or_default(), "sim GB device: stream ended by itself");
                let _ = me.events.send(Event::MediaEnded(call2));
            }
        });
        match thread {
            Ok(t) => s.thread = Some(t),
            Err(e) => tracing::error!(error = %e, "sim GB device: no media thread"),
        }
    }

    /// Ends a session: its stream stops (and is waited for); with `bye`, the platform is told.
    async fn end_session(&self, call: &str, bye: bool) {
        let Some(mut s) = lock(&self.sessions).remove(call) else { return };
        s.stop.store(true, Ordering::SeqCst);
        if let Some(t) = s.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        if !bye {
            return;
        }
        let dest = match self.cfg.transport {
            SipTransport::Udp => s.source,
            SipTransport::Tcp => uri_addr(&s.target_uri).unwrap_or(self.cfg.platform),
        };
        s.cseq += 1;
        let r = self
            .transact(Out {
                method: "BYE",
                uri: s.target_uri.clone(),
                from: s.local.clone(),
                to: s.remote.clone(),
                call_id: call.to_string(),
                cseq: s.cseq,
                headers: vec![],
                body: None,
                dest,
            })
            .await;
        if let Err(e) = r {
            tracing::debug!(error = %e, "sim GB device: BYE unanswered");
        }
    }
}

/// Sends a stream until `stop`: encode, mux to PS, packetize, send.
fn stream(
    media: MediaStart,
    stop: &AtomicBool,
    counters: &Counters,
    hung: &Mutex<std::collections::HashSet<String>>,
) -> Result<(), String> {
    use std::io::Write;
    enum Sink {
        Udp(std::net::UdpSocket, SocketAddr),
        Tcp(std::net::TcpStream),
    }
    let mut sink = match media.plan {
        MediaPlan::Udp { socket, to } => Sink::Udp(socket, to),
        MediaPlan::TcpConnect { to } => Sink::Tcp(
            std::net::TcpStream::connect_timeout(&to, Duration::from_secs(5))
                .map_err(|e| format!("cannot connect to {to}: {e}"))?,
        ),
        MediaPlan::TcpListen { listener } => {
            listener.set_nonblocking(true).map_err(|e| e.to_string())?;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match listener.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).map_err(|e| e.to_string())?;
                        break Sink::Tcp(s);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if stop.load(Ordering::SeqCst) {
                            return Ok(());
                        }
                        if Instant::now() >= deadline {
                            return Err("the platform did not connect in 10 s".into());
                        }
                        // Polling a non-blocking accept so that `stop` is seen.
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
    };
    if let Sink::Tcp(s) = &sink {
        let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
        let _ = s.set_nodelay(true);
    }
    let mut enc = Encoder::start(&media.picture)?;
    let mut mux = PsMuxer::new(enc.codec);
    let mut rtp = RtpPacketizer::new(media.payload_type, media.ssrc, rand::thread_rng().r#gen());
    while !stop.load(Ordering::SeqCst) {
        let Some((au, ts)) = enc.next(Duration::from_millis(100))? else { continue };
        if lock(hung).contains(&media.channel) {
            continue;
        }
        let ps = mux.mux(&au, ts);
        for p in rtp.packetize(&ps, ts as u32) {
            match &mut sink {
                Sink::Udp(s, to) => {
                    // A refused datagram (nobody listening yet) is not the end of a UDP stream.
                    let _ = s.send_to(&p, *to);
                }
                Sink::Tcp(s) => s.write_all(&rfc4571(&p)).map_err(|e| format!("RTP over TCP: {e}"))?,
            }
            counters.rtp_packets_sent.fetch_add(1, Ordering::SeqCst);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_messages_parse_and_print() {
        let raw = b"MESSAGE sip:34020000001180000001@127.0.0.1:5060 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKabc\r\n\
            From: <sip:34020000002000000001@3402000000>;tag=1\r\nTo: <sip:34020000001180000001@3402000000>\r\n\
            i: x@y\r\nCSeq: 3 MESSAGE\r\nl: 4\r\n\r\nabcdEXTRA";
        let Parsed::Message(m, used) = SipMsg::parse(raw, true) else { panic!() };
        assert_eq!(used, raw.len() - 5);
        assert_eq!(m.method(), Some("MESSAGE"));
        assert_eq!(m.branch().as_deref(), Some("z9hG4bKabc"));
        assert_eq!(m.call_id(), Some("x@y"));
        assert_eq!(m.body, b"abcd");
        assert_eq!(m.request_uri().and_then(uri_user), Some("34020000001180000001"));
        assert_eq!(SipMsg::parse(&raw[..40], true), Parsed::Incomplete);
        let Parsed::Message(again, _) = SipMsg::parse(&m.to_bytes(), false) else { panic!() };
        assert_eq!(again, m);
        let Parsed::Message(r, _) = SipMsg::parse(b"SIP/2.0 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", false)
        else {
            panic!()
        };
        assert_eq!(r.status(), Some(401));
        assert_eq!(uri_addr("sip:1@127.0.0.1:5070;transport=udp"), Some("127.0.0.1:5070".parse().unwrap()));
    }

    #[test]
    fn digest_answers_rfc2617_example() {
        // RFC 2617 §3.5's example, with a SIP method: the response is recomputed from its parts.
        let ch = "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
        let a = digest_answer(ch, "GET", "/dir/index.html", "Mufasa", "Circle Of Life", 1, "0a4f113b").unwrap();
        assert!(a.contains("response=\"6629fae49393a05397450978507c4ef1\""), "{a}");
        assert!(a.contains("nc=00000001") && a.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""), "{a}");
        // Without qop: MD5(HA1:nonce:HA2).
        let b = digest_answer("Digest realm=\"r\", nonce=\"n\"", "REGISTER", "sip:x@y", "u", "p", 1, "c").unwrap();
        let ha1 = md5_hex("u:r:p");
        let ha2 = md5_hex("REGISTER:sip:x@y");
        assert!(b.contains(&format!("response=\"{}\"", md5_hex(&format!("{ha1}:n:{ha2}")))), "{b}");
        assert!(!b.contains("qop"));
        assert!(digest_answer("Basic realm=\"x\"", "REGISTER", "u", "u", "p", 1, "c").is_err());
    }

    #[test]
    fn gb_offers_are_read_and_answered() {
        let udp = "v=0\r\no=34020000002000000001 0 0 IN IP4 10.0.0.5\r\ns=Play\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
                   m=video 30000 RTP/AVP 96 98 97\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\na=rtpmap:98 H264/90000\r\n\
                   a=rtpmap:97 MPEG4/90000\r\ny=0100000001\r\n";
        let o = parse_offer(udp.as_bytes()).unwrap();
        assert_eq!((o.addr.to_string().as_str(), o.port, o.tcp, o.payload_type), ("10.0.0.5", 30000, None, 96));
        assert_eq!(o.ssrc.as_deref(), Some("0100000001"));
        let a = answer_sdp("34020000001310000001", "10.0.0.9".parse().unwrap(), 40000, &o, "0100000001");
        assert_eq!(
            a,
            "v=0\r\no=34020000001310000001 0 0 IN IP4 10.0.0.9\r\ns=Play\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n\
             m=video 40000 RTP/AVP 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\ny=0100000001\r\n"
        );
        let tcp =
            udp.replace("RTP/AVP 96 98 97", "TCP/RTP/AVP 96").replace("a=recvonly", "a=recvonly\r\na=setup:active");
        let o = parse_offer(tcp.as_bytes()).unwrap();
        assert_eq!(o.tcp, Some(TcpSetup::DeviceListens));
        assert!(answer_sdp("1", "10.0.0.9".parse().unwrap(), 1, &o, "0100000001").contains("a=setup:passive\r\n"));
        let o = parse_offer(tcp.replace("setup:active", "setup:passive").as_bytes()).unwrap();
        assert_eq!(o.tcp, Some(TcpSetup::PlatformListens));
        for bad in [
            udp.replace("s=Play", "s=Playback"),
            udp.replace("m=video 30000 RTP/AVP 96 98 97", "m=audio 30000 RTP/AVP 8"),
            udp.replace("a=rtpmap:96 PS/90000", "a=rtpmap:96 H264/90000").replace(" 96 98 97", " 96 98"),
            udp.replace("y=0100000001", "y=9999999999"),
            udp.replace("RTP/AVP 96", "RTP/SAVP 96"),
        ] {
            assert!(parse_offer(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn catalog_pages_stay_small() {
        let mut cfg = GbDeviceConfig::new(
            "127.0.0.1:5060".parse().unwrap(),
            "34020000002000000001",
            "3402000000",
            "34020000001180000001",
            "pw",
        );
        cfg.channels = GbDeviceConfig::numbered_channels(&cfg.device_id, 6, 320, 240, 10);
        assert_eq!(cfg.channels[5].id, "34020000001310000006");
        cfg.channels[0].position = Some((113.5, 34.75));
        cfg.channels[0].name = "通道一 <东门>".into();
        let (events, _rx) = mpsc::unbounded_channel();
        let core = Core::new(
            cfg.clone(),
            "127.0.0.1:5061".parse().unwrap(),
            None,
            "c".into(),
            CancellationToken::new(),
            events,
        );
        let page = core.catalog_page(7, 6, &cfg.channels[..CATALOG_PAGE]);
        let body = manscdp_body(&page);
        assert!(body.len() < 4_000, "{}", body.len());
        let doc = roxmltree::Document::parse(&page).unwrap();
        let items: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("Item")).collect();
        assert_eq!(items.len(), 4);
        let text = |n: roxmltree::Node, t: &str| {
            n.children().find(|c| c.has_tag_name(t)).and_then(|c| c.text()).unwrap_or("").to_string()
        };
        assert_eq!(text(items[0], "Name"), "通道一 <东门>");
        assert_eq!(text(items[0], "CivilCode"), "340200");
        assert_eq!(text(items[0], "ParentID"), "34020000001180000001");
        assert_eq!(text(items[0], "Longitude"), "113.5");
        assert_eq!(text(items[1], "Status"), "ON");
        assert_eq!(text(doc.root_element(), "SumNum"), "6");
        // GB2312 as declared: the Chinese name in GBK bytes.
        assert!(std::str::from_utf8(&body).is_err());
        assert!(encoding_rs::GBK.decode(&body).0.contains("通道一"));
    }

    /// The PS muxer's output is read by GStreamer's own demuxer into pictures of the right size.
    #[test]
    fn ps_output_decodes_in_gstreamer() {
        let mut pic = SimCamera::new("t", 320, 240, 25);
        pic.keyframe_interval = 10;
        let mut enc = Encoder::start(&pic).expect("encoder (x264enc)");
        let mut mux = PsMuxer::new(PsCodec::H264);
        let mut ps = Vec::new();
        let mut frames = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        while frames < 30 {
            assert!(Instant::now() < deadline, "encoded {frames} frames in 20 s");
            if let Some((au, ts)) = enc.next(Duration::from_millis(200)).unwrap() {
                if frames == 0 {
                    assert!(super::super::ps::is_keyframe(PsCodec::H264, &au), "starts with a keyframe");
                }
                ps.extend_from_slice(&mux.mux(&au, ts + 90_000));
                frames += 1;
            }
        }
        drop(enc);
        assert_eq!(&ps[..4], &[0, 0, 1, 0xBA]);
        let pipeline = gst::parse::launch(
            "appsrc name=src caps=video/mpeg,mpegversion=2,systemstream=true format=bytes ! mpegpsdemux ! \
             h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=I420 ! appsink name=out sync=false",
        )
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let src = pipeline.by_name("src").unwrap().downcast::<gstreamer_app::AppSrc>().unwrap();
        let out = pipeline.by_name("out").unwrap().downcast::<gstreamer_app::AppSink>().unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        for chunk in ps.chunks(4096) {
            src.push_buffer(gst::Buffer::from_slice(chunk.to_vec())).unwrap();
        }
        src.end_of_stream().unwrap();
        let mut decoded = 0;
        while let Some(s) = out.try_pull_sample(gst::ClockTime::from_seconds(10)) {
            let caps = s.caps().unwrap().structure(0).unwrap().to_owned();
            assert_eq!((caps.get::<i32>("width").unwrap(), caps.get::<i32>("height").unwrap()), (320, 240));
            decoded += 1;
        }
        let bus_error = pipeline.bus().and_then(|b| b.pop_filtered(&[gst::MessageType::Error]));
        pipeline.set_state(gst::State::Null).unwrap();
        assert!(bus_error.is_none(), "{bus_error:?}");
        assert!(decoded >= 28, "decoded {decoded} of 30 pictures");
    }
}
