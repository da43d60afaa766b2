//! A small RTSP/1.0 client over TCP (RTP interleaved), for the `health` profile.
//!
//! Why not rtspsrc: a health camera needs liveness and one keyframe per sampling interval, and
//! rtspsrc's machinery (RTP session, jitter buffer, a thread hand-off per packet) costs more per
//! stream than the whole budget (measured: ~0.008 CPU s/s for one bare `rtspsrc ! fakesink`).
//! This client reads the socket a few times a second in large chunks and looks at packet headers
//! only; see `rtp` for the keyframe assembly and BENCHMARKS.md for the figures.
//!
//! The wire format (requests, responses, the `$`-framed interleaved data, SDP, Basic and Digest
//! authentication) is parsed by pure functions; `Client` does the I/O.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use base64::Engine as _;
use md5::Digest as _;

/// A response (or a request the server sent us) with its headers and body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    /// `RTSP/1.0 200 OK` → status 200; a request from the server → 0 and `method` set.
    pub status: u16,
    pub reason: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One unit read from the connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `$` framed data on an interleaved channel (RTP on even channels, RTCP on odd ones).
    Packet {
        channel: u8,
        data: Vec<u8>,
    },
    Message(Message),
}

/// Splits the byte stream of an RTSP connection into interleaved packets and text messages.
#[derive(Debug, Default)]
pub struct Demux {
    buf: Vec<u8>,
    pos: usize,
    /// Bytes skipped since the last well-formed unit.
    skipped: usize,
}

const MAX_HEADER: usize = 64 * 1024;
/// A demultiplexer's buffer bigger than this is given back once parsed.
const KEEP_CAPACITY: usize = 32 * 1024;
const MAX_SKIP: usize = 256 * 1024;

impl Demux {
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.compact();
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Drops what was parsed. A buffer grown past `KEEP_CAPACITY` by a burst is given back: a
    /// camera on a shared thread holds between reads only what it has not parsed yet.
    pub fn compact(&mut self) {
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = self.buf[self.pos..].to_vec();
        } else {
            self.buf.drain(..self.pos);
        }
        self.pos = 0;
    }

    /// The next complete unit, `Ok(None)` when more bytes are needed, or an error when the
    /// stream is not RTSP.
    pub fn next_item(&mut self) -> Result<Option<Item>, String> {
        loop {
            let b = &self.buf[self.pos..];
            let Some(&first) = b.first() else { return Ok(None) };
            if first == b'$' {
                if b.len() < 4 {
                    return Ok(None);
                }
                let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
                if b.len() < 4 + len {
                    return Ok(None);
                }
                let item = Item::Packet { channel: b[1], data: b[4..4 + len].to_vec() };
                self.pos += 4 + len;
                self.skipped = 0;
                return Ok(Some(item));
            }
            if starts_message(b) {
                let Some(end) = find(b, b"\r\n\r\n") else {
                    if b.len() > MAX_HEADER {
                        return Err(format!("an RTSP header longer than {} KiB", MAX_HEADER / 1024));
                    }
                    return Ok(None);
                };
                let mut msg = parse_head(&b[..end])?;
                let body_len: usize = match msg.header("Content-Length") {
                    None => 0,
                    Some(v) => v.trim().parse().map_err(|_| format!("Content-Length {v:?} is not a number"))?,
                };
                if body_len > 1 << 20 {
                    return Err(format!("an RTSP body of {body_len} bytes"));
                }
                let total = end + 4 + body_len;
                if b.len() < total {
                    return Ok(None);
                }
                msg.body = b[end + 4..total].to_vec();
                self.pos += total;
                self.skipped = 0;
                return Ok(Some(Item::Message(msg)));
            }
            // Not a unit boundary: skip to the next plausible one.
            let next = b.iter().skip(1).position(|&c| c == b'$' || c == b'R').map(|p| p + 1).unwrap_or(b.len());
            self.pos += next;
            self.skipped += next;
            if self.skipped > MAX_SKIP {
                return Err(format!("{} KiB that are neither RTSP nor interleaved RTP", self.skipped / 1024));
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A response line, or a request line from the server (`METHOD uri RTSP/1.0`).
fn starts_message(b: &[u8]) -> bool {
    if b.len() < 5 {
        // Could still be "RTSP/"; wait for more unless it already cannot be.
        return b"RTSP/".starts_with(b) || b.iter().all(|c| c.is_ascii_uppercase() || *c == b'_');
    }
    if b.starts_with(b"RTSP/") {
        return true;
    }
    let word = b.iter().take(20).take_while(|c| c.is_ascii_uppercase() || **c == b'_').count();
    word >= 3 && b.get(word) == Some(&b' ')
}

/// The most of a camera's reason phrase kept: it ends up in errors, status history and alert
/// titles, and a camera may send anything up to the header limit there.
pub const MAX_REASON: usize = 80;

/// A reason phrase as kept: control characters dropped, at most `MAX_REASON` characters (`…`
/// marks a cut).
fn reason_phrase(raw: &str) -> String {
    let mut out: String = raw.chars().filter(|c| !c.is_control()).take(MAX_REASON + 1).collect();
    if out.chars().count() > MAX_REASON {
        out = out.chars().take(MAX_REASON).collect();
        out.push('…');
    }
    out.trim().to_string()
}

fn parse_head(head: &[u8]) -> Result<Message, String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut msg = Message::default();
    if let Some(rest) = first.strip_prefix("RTSP/") {
        let mut parts = rest.splitn(3, ' ');
        let _version = parts.next();
        msg.status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("malformed RTSP status line {:?}", first.chars().take(80).collect::<String>()))?;
        msg.reason = reason_phrase(parts.next().unwrap_or(""));
    } else {
        msg.method = first.split(' ').next().unwrap_or("").to_string();
    }
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            msg.headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok(msg)
}

/// The video codec of the stream a health camera sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    H265,
}

impl VideoCodec {
    pub fn as_str(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "h265",
        }
    }
}

/// The first video stream of a session description.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoTrack {
    pub codec: VideoCodec,
    pub payload_type: u8,
    /// The `a=control` value, resolved against the content base.
    pub control: String,
    /// Parameter sets from `sprop-*` (VPS, SPS, PPS in that order), as NAL units.
    pub parameter_sets: Vec<Vec<u8>>,
}

/// Finds the first H.264 or H.265 video stream in an SDP body. `base` is the URL relative
/// controls are resolved against.
pub fn parse_sdp(sdp: &str, base: &str) -> Result<VideoTrack, String> {
    let mut in_video = false;
    // The video section being read: payload type, codec, control, parameter sets.
    type Section = (u8, Option<VideoCodec>, Option<String>, Vec<Vec<u8>>);
    let mut found: Option<Section> = None;
    let mut other_encodings = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            if found.is_some() {
                break;
            }
            let f: Vec<&str> = m.split_whitespace().collect();
            in_video = f.first() == Some(&"video");
            if in_video {
                let pt =
                    f.get(3).and_then(|p| p.parse().ok()).ok_or_else(|| format!("malformed media line {line:?}"))?;
                found = Some((pt, None, None, Vec::new()));
            }
            continue;
        }
        let Some((pt, codec, control, sets)) = found.as_mut().filter(|_| in_video) else { continue };
        if let Some(v) = line.strip_prefix("a=rtpmap:") {
            let (p, enc) = v.split_once(' ').unwrap_or((v, ""));
            if p.parse::<u8>().ok() == Some(*pt) {
                let name = enc.split('/').next().unwrap_or("").to_ascii_uppercase();
                *codec = match name.as_str() {
                    "H264" => Some(VideoCodec::H264),
                    "H265" | "HEVC" => Some(VideoCodec::H265),
                    _ => {
                        other_encodings.push(name);
                        None
                    }
                };
            }
        } else if let Some(v) = line.strip_prefix("a=control:") {
            *control = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("a=fmtp:") {
            let params = v.split_once(' ').map(|x| x.1).unwrap_or("");
            let mut vps = Vec::new();
            let mut rest = Vec::new();
            for kv in params.split(';').map(str::trim) {
                let Some((k, val)) = kv.split_once('=') else { continue };
                let decode = |s: &str| {
                    s.split(',')
                        .filter_map(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
                        .filter(|n| !n.is_empty())
                        .collect::<Vec<_>>()
                };
                match k.trim().to_ascii_lowercase().as_str() {
                    "sprop-vps" => vps.extend(decode(val)),
                    "sprop-parameter-sets" | "sprop-sps" | "sprop-pps" => rest.extend(decode(val)),
                    _ => {}
                }
            }
            sets.extend(vps);
            sets.extend(rest);
        }
    }
    let Some((payload_type, codec, control, parameter_sets)) = found else {
        return Err("the session description has no video stream".into());
    };
    let Some(codec) = codec else {
        return Err(match other_encodings.first() {
            Some(e) => format!("unsupported video encoding {e:?}; expected H264 or H265"),
            None => format!("the video stream (payload type {payload_type}) names no encoding"),
        });
    };
    let control = resolve_control(base, control.as_deref().unwrap_or("*"));
    Ok(VideoTrack { codec, payload_type, control, parameter_sets })
}

fn resolve_control(base: &str, control: &str) -> String {
    if control == "*" || control.is_empty() {
        return base.to_string();
    }
    if control.to_ascii_lowercase().starts_with("rtsp") && control.contains("://") {
        return control.to_string();
    }
    if base.ends_with('/') { format!("{base}{control}") } else { format!("{base}/{control}") }
}

/// `Basic` or `Digest` credentials for a `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq)]
pub enum Challenge {
    Basic,
    Digest { realm: String, nonce: String, opaque: Option<String>, qop_auth: bool },
}

/// The strongest challenge the server offers (Digest over Basic), if any we speak.
pub fn parse_challenges<'a>(headers: impl Iterator<Item = &'a str>) -> Option<Challenge> {
    let mut basic = false;
    for h in headers {
        let (scheme, params) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
        if scheme.eq_ignore_ascii_case("digest") {
            let p = auth_params(params);
            let get = |k: &str| p.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
            let algorithm = get("algorithm").unwrap_or_else(|| "MD5".into());
            if !algorithm.eq_ignore_ascii_case("md5") {
                continue;
            }
            let qop_auth = get("qop").is_some_and(|q| q.split(',').any(|x| x.trim().eq_ignore_ascii_case("auth")));
            return Some(Challenge::Digest {
                realm: get("realm").unwrap_or_default(),
                nonce: get("nonce").unwrap_or_default(),
                opaque: get("opaque"),
                qop_auth,
            });
        }
        basic |= scheme.eq_ignore_ascii_case("basic");
    }
    basic.then_some(Challenge::Basic)
}

/// `k=v, k="v, with comma"` pairs.
fn auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else { break };
        let k = k.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (v, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (q[..end].to_string(), q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.push((k, v));
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

fn md5_hex(s: &str) -> String {
    md5::Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Authorization` header value answering `c` for one request.
pub fn authorization(c: &Challenge, user: &str, password: &str, method: &str, uri: &str, nc: u32) -> String {
    match c {
        Challenge::Basic => {
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
        }
        Challenge::Digest { realm, nonce, opaque, qop_auth } => {
            let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
            let ha2 = md5_hex(&format!("{method}:{uri}"));
            let mut v = format!("Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\"");
            if *qop_auth {
                let cnonce = format!("{:08x}", nc.wrapping_mul(2_654_435_761) ^ 0x5a5a_1234);
                let resp = md5_hex(&format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}"));
                v.push_str(&format!(", qop=auth, nc={nc:08x}, cnonce=\"{cnonce}\", response=\"{resp}\""));
            } else {
                v.push_str(&format!(", response=\"{}\"", md5_hex(&format!("{ha1}:{nonce}:{ha2}"))));
            }
            if let Some(o) = opaque {
                v.push_str(&format!(", opaque=\"{o}\""));
            }
            v
        }
    }
}

/// Why a session could not be opened or ended. The server's answer keeps its status code, so
/// that callers decide on the code (461: this server will not stream over TCP) and never on text.
#[derive(Debug, Clone, PartialEq)]
pub enum RtspError {
    /// The server answered `method` with a status outside 2xx (a 401 here came after answering
    /// the server's challenge: the credentials are wrong).
    Status { method: String, code: u16, reason: String },
    /// 401 to a request sent without credentials: none are configured for the camera.
    NoCredentials { method: String, reason: String },
    /// `rtsps://`: this client does not speak TLS.
    Tls,
    /// The server offers only Basic sign-in (the password in clear on the wire) and the camera
    /// does not allow it: no credentials were sent.
    BasicRefused { method: String },
    /// Anything else: the connection, time-outs, answers that are not RTSP.
    Failed(String),
}

/// RTSP 461 Unsupported Transport: the answer of a server that will not stream over TCP.
pub const UNSUPPORTED_TRANSPORT: u16 = 461;

impl RtspError {
    /// The RTSP status the server answered, if it answered one.
    pub fn status(&self) -> Option<u16> {
        match self {
            RtspError::Status { code, .. } => Some(*code),
            RtspError::NoCredentials { .. } => Some(401),
            // Not the server refusing credentials: we did not send them (the text says why).
            RtspError::BasicRefused { .. } | RtspError::Tls | RtspError::Failed(_) => None,
        }
    }
}

impl std::fmt::Display for RtspError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RtspError::Status { method, code: UNSUPPORTED_TRANSPORT, reason } => {
                write!(f, "{method} answered {UNSUPPORTED_TRANSPORT} {reason}: TCP transport refused")
            }
            RtspError::Status { method, code, reason } => write!(f, "RTSP {method} answered {code} {reason}"),
            RtspError::NoCredentials { method, reason } => {
                write!(f, "RTSP {method} answered 401 {reason} (no credentials configured)")
            }
            RtspError::Tls => f.write_str("rtsps (TLS) is not spoken by the health client"),
            RtspError::BasicRefused { method } => write!(
                f,
                "RTSP {method} asks for Basic sign-in only, which would send the password in clear: not sent \
                 (set allow_basic_auth = true for this camera to accept it)"
            ),
            RtspError::Failed(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for RtspError {}

fn failed(s: impl Into<String>) -> RtspError {
    RtspError::Failed(s.into())
}

/// One RTSP session playing the first video stream over TCP.
pub struct Client {
    stream: TcpStream,
    demux: Demux,
    url: String,
    cseq: u32,
    user: Option<String>,
    password: Option<String>,
    /// Answer a Basic challenge (refused otherwise: the password would go in clear).
    allow_basic: bool,
    challenge: Option<Challenge>,
    nonce_count: u32,
    session: Option<String>,
    keepalive_every_ms: i64,
    /// Camera-clock time of the last keep-alive (or of the first poll).
    last_keepalive: Option<i64>,
    keepalive_method: &'static str,
    /// RTP channel of the video stream.
    channel: u8,
    pub track: VideoTrack,
    /// After PLAY the socket is non-blocking.
    playing: bool,
}

impl Client {
    /// Connects, describes, sets up the first video stream over TCP and plays it. Every step
    /// must answer within `timeout`. A server that offers only Basic sign-in gets no credentials
    /// unless `allow_basic`.
    pub fn open(
        url: &str,
        user: Option<&str>,
        password: Option<&str>,
        allow_basic: bool,
        timeout: Duration,
    ) -> Result<Client, RtspError> {
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("rtsps://") {
            return Err(RtspError::Tls);
        }
        let (host, port) = host_port(url);
        let addrs: Vec<SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| failed(format!("cannot resolve host {host:?}: {e}")))?
            .collect();
        let addr = *addrs.first().ok_or_else(|| failed(format!("host {host:?} has no address")))?;
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| {
            failed(match e.kind() {
                std::io::ErrorKind::ConnectionRefused => format!("connection refused by {addr}: nothing listens there"),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                    format!("no answer from {addr} within {} s", timeout.as_secs_f64())
                }
                _ => format!("cannot connect to {addr}: {e}"),
            })
        })?;
        let _ = stream.set_nodelay(true);
        stream.set_read_timeout(Some(timeout)).map_err(|e| failed(e.to_string()))?;
        stream.set_write_timeout(Some(timeout)).map_err(|e| failed(e.to_string()))?;
        let mut c = Client {
            stream,
            demux: Demux::default(),
            url: url.to_string(),
            cseq: 0,
            user: user.map(str::to_string),
            password: password.map(str::to_string),
            allow_basic,
            challenge: None,
            nonce_count: 0,
            session: None,
            keepalive_every_ms: 25_000,
            last_keepalive: None,
            keepalive_method: "GET_PARAMETER",
            channel: 0,
            track: VideoTrack {
                codec: VideoCodec::H264,
                payload_type: 0,
                control: String::new(),
                parameter_sets: vec![],
            },
            playing: false,
        };
        let r = c.request("DESCRIBE", url, &[("Accept", "application/sdp".into())], timeout)?;
        let base = r.header("Content-Base").or(r.header("Content-Location")).unwrap_or(url).trim().to_string();
        c.track = parse_sdp(&String::from_utf8_lossy(&r.body), &base).map_err(failed)?;
        let control = c.track.control.clone();
        let r =
            c.request("SETUP", &control, &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1".into())], timeout)?;
        let session = r.header("Session").ok_or_else(|| failed("SETUP answered without a Session"))?;
        let mut parts = session.split(';');
        c.session = Some(parts.next().unwrap_or("").trim().to_string());
        if let Some(t) =
            parts.find_map(|p| p.trim().strip_prefix("timeout=").and_then(|v| v.trim().parse::<u64>().ok()))
        {
            c.keepalive_every_ms = (t / 2).clamp(5, 60) as i64 * 1000;
        }
        if let Some(tr) = r.header("Transport")
            && let Some(ch) = tr.split(';').find_map(|p| p.trim().strip_prefix("interleaved="))
        {
            c.channel = ch.split('-').next().and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        }
        c.request("PLAY", &base, &[("Range", "npt=0.000-".into())], timeout)?;
        c.stream.set_nonblocking(true).map_err(|e| failed(e.to_string()))?;
        c.playing = true;
        Ok(c)
    }

    fn send(&mut self, method: &str, uri: &str, extra: &[(&str, String)]) -> Result<u32, RtspError> {
        self.cseq += 1;
        let mut req = format!("{method} {uri} RTSP/1.0\r\nCSeq: {}\r\nUser-Agent: tianwang\r\n", self.cseq);
        for (k, v) in extra {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(s) = &self.session {
            req.push_str(&format!("Session: {s}\r\n"));
        }
        if let (Some(c), Some(u)) = (&self.challenge, &self.user) {
            self.nonce_count += 1;
            let a = authorization(c, u, self.password.as_deref().unwrap_or(""), method, uri, self.nonce_count);
            req.push_str(&format!("Authorization: {a}\r\n"));
        }
        req.push_str("\r\n");
        let nb = self.stream.set_nonblocking(false).is_ok();
        let r = self.stream.write_all(req.as_bytes());
        if nb && self.playing {
            let _ = self.stream.set_nonblocking(true);
        }
        r.map_err(|e| failed(format!("{method}: cannot send: {e}")))?;
        Ok(self.cseq)
    }

    /// Sends a request and waits for its answer (packets arriving meanwhile are dropped: none
    /// flow before PLAY). Answers a 401 once with credentials; a status outside 2xx is an error
    /// that keeps its code.
    fn request(
        &mut self,
        method: &str,
        uri: &str,
        extra: &[(&str, String)],
        timeout: Duration,
    ) -> Result<Message, RtspError> {
        let cseq = self.send(method, uri, extra)?;
        let mut r = self.await_response(cseq, timeout, method)?;
        if r.status == 401 && self.user.is_some() && self.challenge.is_none() {
            self.challenge = parse_challenges(r.headers_named("WWW-Authenticate"));
            if self.challenge == Some(Challenge::Basic) && !self.allow_basic {
                self.challenge = None;
                return Err(RtspError::BasicRefused { method: method.to_string() });
            }
            if self.challenge.is_some() {
                let cseq = self.send(method, uri, extra)?;
                r = self.await_response(cseq, timeout, method)?;
            }
        }
        if !(200..300).contains(&r.status) {
            let (method, reason) = (method.to_string(), r.reason);
            return Err(if r.status == 401 && self.user.is_none() {
                RtspError::NoCredentials { method, reason }
            } else {
                RtspError::Status { method, code: r.status, reason }
            });
        }
        Ok(r)
    }

    fn await_response(&mut self, cseq: u32, timeout: Duration, method: &str) -> Result<Message, RtspError> {
        // A real-time deadline on purpose: it bounds blocking reads of a real socket (whose read
        // timeout is real time too), not a decision a simulated clock could drive.
        let deadline = Instant::now() + timeout;
        let mut received = 0usize;
        let not_rtsp = |n: usize| format!("the server sent {n} bytes that are not an RTSP answer to {method}");
        loop {
            while let Some(item) = self.demux.next_item().map_err(|e| failed(format!("{method}: {e}")))? {
                if let Item::Message(m) = item
                    && m.status > 0
                    && m.header("CSeq").and_then(|c| c.trim().parse().ok()) == Some(cseq)
                {
                    return Ok(m);
                }
            }
            if Instant::now() >= deadline {
                if received > 0 {
                    return Err(failed(not_rtsp(received)));
                }
                return Err(failed(format!("no answer to RTSP {method} within {} s", timeout.as_secs_f64())));
            }
            match read_chunk(&mut self.stream, &mut self.demux) {
                Ok(0) if received > 0 => {
                    return Err(failed(format!("{}, then closed the connection", not_rtsp(received))));
                }
                Ok(0) => return Err(failed(format!("the server closed the connection before answering {method}"))),
                Ok(n) => received += n,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    if received > 0 {
                        return Err(failed(not_rtsp(received)));
                    }
                    return Err(failed(format!("no answer to RTSP {method} within {} s", timeout.as_secs_f64())));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(failed(format!("reading the answer to {method}: {e}"))),
            }
        }
    }

    /// Reads whatever has arrived (never blocks) and hands every RTP packet of the video stream
    /// to `on_packet`. Sends a keep-alive when due at `now` (the camera's clock, ms). Returns the
    /// bytes read.
    pub fn poll(&mut self, now: i64, mut on_packet: impl FnMut(&[u8])) -> Result<usize, RtspError> {
        let mut total = 0;
        loop {
            match read_chunk(&mut self.stream, &mut self.demux) {
                Ok(0) => return Err(failed("the server closed the connection")),
                Ok(n) => {
                    total += n;
                    // At most MAX_POLL bytes a poll: a server that sends faster than we read
                    // waits in TCP, instead of growing our buffer without end.
                    if n < CHUNK || total >= MAX_POLL {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(failed(format!("reading the stream: {e}"))),
            }
        }
        while let Some(item) = self.demux.next_item().map_err(|e| failed(format!("the server's stream: {e}")))? {
            match item {
                Item::Packet { channel, data } if channel == self.channel => on_packet(&data),
                Item::Packet { .. } => {}
                Item::Message(m) if m.status == 0 => {
                    // A request from the server: answer so that it does not wait on us.
                    let cseq = m.header("CSeq").unwrap_or("0").to_string();
                    let code = if matches!(m.method.as_str(), "OPTIONS" | "GET_PARAMETER") {
                        "200 OK"
                    } else {
                        "501 Not Implemented"
                    };
                    let reply = format!("RTSP/1.0 {code}\r\nCSeq: {cseq}\r\n\r\n");
                    let _ = self.stream.set_nonblocking(false);
                    let _ = self.stream.write_all(reply.as_bytes());
                    let _ = self.stream.set_nonblocking(true);
                }
                Item::Message(m) => {
                    if m.status == 454 {
                        return Err(failed("the server dropped the session (454 Session Not Found)"));
                    }
                    if !(200..300).contains(&m.status) && self.keepalive_method == "GET_PARAMETER" {
                        self.keepalive_method = "OPTIONS";
                    }
                }
            }
        }
        self.demux.compact();
        let last = *self.last_keepalive.get_or_insert(now);
        if now - last >= self.keepalive_every_ms {
            self.last_keepalive = Some(now);
            let (method, url) = (self.keepalive_method, self.url.clone());
            self.send(method, &url, &[])?;
        }
        Ok(total)
    }

    /// Ends the session politely (best effort, no waiting for the answer).
    pub fn teardown(mut self) {
        let url = self.url.clone();
        let _ = self.send("TEARDOWN", &url, &[]);
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// The most one socket read takes.
const CHUNK: usize = 256 * 1024;
/// The most one poll reads (a few times a second: far above any camera's bit rate).
const MAX_POLL: usize = 4 << 20;

thread_local! {
    /// One read buffer per thread, shared by every connection the thread reads (a runner of the
    /// ingest pool reads hundreds): what was read is copied into the connection's `Demux`.
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One read of the socket into `demux`; the bytes read.
fn read_chunk(stream: &mut TcpStream, demux: &mut Demux) -> std::io::Result<usize> {
    READ_BUF.with_borrow_mut(|buf| {
        buf.resize(CHUNK, 0);
        let n = stream.read(buf)?;
        demux.push(&buf[..n]);
        Ok(n)
    })
}

/// Host and port of an `rtsp://` URL (554 by default).
fn host_port(url: &str) -> (String, u16) {
    let parsed: Result<crate::config::RtspUrl, _> = url.parse();
    match parsed {
        Ok(u) => (u.host().to_string(), u.port()),
        Err(_) => (String::new(), 554),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_splits_packets_and_messages_across_reads() {
        let mut wire = Vec::new();
        wire.extend_from_slice(b"$\x00\x00\x03abc");
        wire.extend_from_slice(b"RTSP/1.0 200 OK\r\nCSeq: 7\r\nContent-Length: 4\r\n\r\nbody");
        wire.extend_from_slice(b"$\x01\x00\x01z");
        let mut d = Demux::default();
        let mut items = Vec::new();
        for b in wire.chunks(5) {
            d.push(b);
            while let Some(i) = d.next_item().unwrap() {
                items.push(i);
            }
        }
        assert_eq!(items.len(), 3, "{items:?}");
        assert_eq!(items[0], Item::Packet { channel: 0, data: b"abc".to_vec() });
        let Item::Message(m) = &items[1] else { panic!("{items:?}") };
        assert_eq!((m.status, m.header("cseq"), m.body.as_slice()), (200, Some("7"), &b"body"[..]));
        assert_eq!(items[2], Item::Packet { channel: 1, data: b"z".to_vec() });
    }

    #[test]
    fn a_long_or_odd_reason_phrase_is_cut_and_cleaned() {
        let long = format!("RTSP/1.0 503 {}\r\nCSeq: 1", "x".repeat(60_000));
        let m = parse_head(long.as_bytes()).unwrap();
        assert_eq!(m.status, 503);
        assert_eq!(m.reason.chars().count(), MAX_REASON + 1);
        assert!(m.reason.ends_with('…'));
        let m = parse_head("RTSP/1.0 404 Not\x1b[31m Found\x07".as_bytes()).unwrap();
        assert_eq!(m.reason, "Not[31m Found");
        let m = parse_head("RTSP/1.0 200 OK".as_bytes()).unwrap();
        assert_eq!(m.reason, "OK");
    }

    #[test]
    fn demux_skips_noise_and_gives_up_on_a_stream_that_is_not_rtsp() {
        let mut d = Demux::default();
        d.push(b"\x17\x03\x03junk$\x00\x00\x01x");
        assert_eq!(d.next_item().unwrap(), Some(Item::Packet { channel: 0, data: b"x".to_vec() }));
        let mut d = Demux::default();
        d.push(&vec![0x17u8; MAX_SKIP + 10]);
        let e = d.next_item().unwrap_err();
        assert!(e.contains("neither RTSP nor interleaved RTP"), "{e}");
        // A server request is a message with its method.
        let mut d = Demux::default();
        d.push(b"OPTIONS * RTSP/1.0\r\nCSeq: 3\r\n\r\n");
        let Some(Item::Message(m)) = d.next_item().unwrap() else { panic!() };
        assert_eq!((m.status, m.method.as_str()), (0, "OPTIONS"));
    }

    #[test]
    fn sdp_video_track_with_parameter_sets() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=x\r\na=control:*\r\nm=audio 0 RTP/AVP 0\r\na=control:audio\r\n\
                   m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
                   a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0IAKeKQFAe2AtwEBAaQeJEV,aM48gA==\r\n\
                   a=control:stream=0\r\n";
        let t = parse_sdp(sdp, "rtsp://h:554/cam/").unwrap();
        assert_eq!(t.codec, VideoCodec::H264);
        assert_eq!(t.payload_type, 96);
        assert_eq!(t.control, "rtsp://h:554/cam/stream=0");
        assert_eq!(t.parameter_sets.len(), 2);
        assert_eq!(t.parameter_sets[0][0] & 0x1f, 7);
        assert_eq!(t.parameter_sets[1][0] & 0x1f, 8);
        let h265 = "m=video 0 RTP/AVP 97\na=rtpmap:97 H265/90000\na=fmtp:97 sprop-sps=QgEB;sprop-vps=QAEM;sprop-pps=RAHA\n\
                    a=control:rtsp://other/track1\n";
        let t = parse_sdp(h265, "rtsp://h/cam").unwrap();
        assert_eq!((t.codec, t.control.as_str()), (VideoCodec::H265, "rtsp://other/track1"));
        assert_eq!(t.parameter_sets[0], vec![0x40, 0x01, 0x0c], "VPS first");
        let e = parse_sdp("m=video 0 RTP/AVP 26\na=rtpmap:26 JPEG/90000\n", "rtsp://h/").unwrap_err();
        assert!(e.contains("JPEG"), "{e}");
        assert!(parse_sdp("m=audio 0 RTP/AVP 0\n", "rtsp://h/").unwrap_err().contains("no video"));
        assert_eq!(
            parse_sdp("m=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\n", "rtsp://h/c").unwrap().control,
            "rtsp://h/c"
        );
    }

    #[test]
    fn digest_answer_matches_rfc_2617_example() {
        // RFC 2617 §3.5, with the method and URI of its example.
        let c = parse_challenges(
            [r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#]
                .into_iter(),
        )
        .unwrap();
        let Challenge::Digest { realm, nonce, qop_auth, .. } = &c else { panic!("{c:?}") };
        assert_eq!(
            (realm.as_str(), nonce.as_str(), *qop_auth),
            ("testrealm@host.com", "dcd98b7102dd2f0e8b11d0f600bfb0c093", true)
        );
        let ha1 = md5_hex("Mufasa:testrealm@host.com:Circle Of Life");
        let ha2 = md5_hex("GET:/dir/index.html");
        let resp = md5_hex(&format!("{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:{ha2}"));
        assert_eq!(resp, "6629fae49393a05397450978507c4ef1");
        let a = authorization(&c, "Mufasa", "Circle Of Life", "GET", "/dir/index.html", 1);
        assert!(a.starts_with("Digest username=\"Mufasa\"") && a.contains("qop=auth, nc=00000001"), "{a}");
        assert!(a.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
        // Without qop: MD5(HA1:nonce:HA2). Basic when that is all the server offers.
        let c = parse_challenges(["Basic realm=\"x\"", "Digest realm=\"r\", nonce=\"n\""].into_iter()).unwrap();
        let a = authorization(&c, "u", "p", "DESCRIBE", "rtsp://h/", 1);
        let want = md5_hex(&format!("{}:n:{}", md5_hex("u:r:p"), md5_hex("DESCRIBE:rtsp://h/")));
        assert!(a.ends_with(&format!("response=\"{want}\"")), "{a}");
        assert_eq!(parse_challenges(["Basic realm=\"x\""].into_iter()), Some(Challenge::Basic));
        assert_eq!(authorization(&Challenge::Basic, "u", "p", "X", "y", 1), "Basic dTpw");
    }
}
