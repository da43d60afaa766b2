//! The `health` profile's RTSP session, on `retina` (the client under Moonfire NVR, tested on
//! captured exchanges from about twenty camera makers): DESCRIBE with Digest (MD5 or SHA-256,
//! several challenges), SETUP of the first H.264/H.265 stream over TCP interleaved, PLAY,
//! keep-alives the server supports (OPTIONS first, GET_PARAMETER only when the server says it
//! has it), Content-Base without a scheme, SSRC and sequence checks, stale-session handling.
//!
//! What stays ours and why:
//! - **the reading pace**: each session has its own single-threaded runtime that only runs when
//!   `poll` is called, a few times a second; retina then takes whatever arrived in one go. A
//!   runtime with a thread of its own would wake for every burst of packets of every camera.
//! - **raw packets, not retina's frames**: `poll` hands out RTP packets; `rtp::KeyframeAssembler`
//!   copies payload only for the keyframe it will decode and bounds what one picture may hold
//!   (retina's depacketizer copies every picture and holds a picture without end without limit).
//! - **the Basic guard**: retina answers a Basic-only server with the password in clear; a
//!   camera that does not allow Basic is asked first, without credentials, what it offers
//!   (`sign_in_offer`, one DESCRIBE that sends nothing secret).
//! - **typed errors**: the server's status and the method it answered stay a `RtspError`, so
//!   callers decide on codes (461: this server will not stream over TCP), never on text.
//! - **no panic from a camera's answer**: every step into retina runs under `unhurt`. Its SDP
//!   parser (`sdp-types` 0.1.8) asserts, and so panics, on a malformed line followed by a second
//!   `v=` line; such an answer becomes an error naming the step, like any other malformed one.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::{FutureExt as _, StreamExt as _};
use retina::client::{
    Credentials, InitialSequenceNumberPolicy, InitialTimestampPolicy, PacketItem, PlayOptions, Session, SessionGroup,
    SessionOptions, SetupOptions, TcpTransportOptions, TeardownPolicy, Transport,
};
use retina::codec::{ParametersRef, VideoParametersCodec};

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

/// The video stream being played.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoTrack {
    pub codec: VideoCodec,
    pub payload_type: u8,
    /// Parameter sets the description gave (VPS, SPS, PPS in that order), as NAL units.
    pub parameter_sets: Vec<Vec<u8>>,
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

/// The reason phrase RFC 2326 gives a status (retina keeps the code, not the server's phrase).
fn reason_phrase(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        453 => "Not Enough Bandwidth",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        457 => "Invalid Range",
        459 => "Aggregate Operation Not Allowed",
        460 => "Only Aggregate Operation Allowed",
        461 => "Unsupported Transport",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "RTSP Version Not Supported",
        _ => "",
    }
}

/// What retina's error means, in our terms. `during` names the step for errors that do not;
/// `creds`: credentials were configured (a 401 without them says so).
///
/// retina's errors are text with the connection's context on further lines; the first line is
/// what happened. A status answer reads `"{code} response to {METHOD} CSeq={n}: {description}"`.
fn from_retina(e: &retina::Error, during: &str, peer: Option<SocketAddr>, creds: bool) -> RtspError {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("").trim();
    if let Some(code) = e.status_code() {
        let method = first
            .split_once(" response to ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or(during)
            .to_string();
        let reason = reason_phrase(code).to_string();
        if code == 401 && !creds {
            return RtspError::NoCredentials { method, reason };
        }
        return RtspError::Status { method, code, reason };
    }
    let lower = first.to_ascii_lowercase();
    let peer = peer.map_or_else(|| "the camera".to_string(), |a| a.to_string());
    if lower.starts_with("unable to connect") {
        return failed(if lower.contains("refused") {
            format!("connection refused by {peer}: nothing listens there")
        } else if lower.contains("timed out") {
            format!("no answer from {peer} (connecting timed out)")
        } else {
            format!("cannot connect to {peer}: {}", first.trim_start_matches("Unable to connect to RTSP server: "))
        });
    }
    if lower.contains("wrong ssrc") {
        let what = first.split(';').next().unwrap_or(first).trim();
        return failed(format!("the camera changed the stream's RTP SSRC mid-session ({what})"));
    }
    if lower.starts_with("rtsp framing error") || lower.contains("invalid rtsp message") {
        return failed(format!(
            "the server sent bytes that are neither RTSP nor interleaved RTP while answering {during}: {}",
            clip(first, 200)
        ));
    }
    if lower.contains("eof") || lower.contains("unexpectedeof") {
        return failed(format!("the server closed the connection during {during}"));
    }
    failed(format!("{during}: {}", clip(first, 300)))
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { s.chars().take(n).collect::<String>() + "…" }
}

/// One RTSP session playing the first H.264/H.265 video stream over TCP.
pub struct Client {
    /// Runs only inside `open`, `poll` and `teardown`: no thread of its own.
    rt: tokio::runtime::Runtime,
    /// `None` once torn down.
    session: Option<Pin<Box<Session<retina::client::Playing>>>>,
    group: Arc<SessionGroup>,
    stream: usize,
    peer: Option<SocketAddr>,
    pub track: VideoTrack,
}

/// What one `poll` reads at most: a server that sends faster than a few polls a second take
/// waits in TCP, instead of holding the runner.
const MAX_POLL: usize = 4 << 20;

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
        if url.to_ascii_lowercase().starts_with("rtsps://") {
            return Err(RtspError::Tls);
        }
        let mut parsed = url::Url::parse(url).map_err(|e| failed(format!("not an rtsp:// URL ({e})")))?;
        // Credentials travel as retina's `Credentials`, never in the URL it prints in errors.
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        let host = parsed.host_str().unwrap_or("").trim_matches(['[', ']']).to_string();
        let port = parsed.port().unwrap_or(554);
        // Resolved here for a clear error (retina resolves again: the system's cache answers).
        let peer = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| failed(format!("cannot resolve host {host:?}: {e}")))?
            .next()
            .ok_or_else(|| failed(format!("host {host:?} has no address")))?;
        let creds = match (user, allow_basic) {
            (Some(u), true) => Some(Credentials { username: u.to_string(), password: password.unwrap_or("").into() }),
            (Some(u), false) => match sign_in_offer(&parsed, peer, timeout)? {
                Offer::BasicOnly => return Err(RtspError::BasicRefused { method: "DESCRIBE".into() }),
                Offer::Digest | Offer::Open => {
                    Some(Credentials { username: u.to_string(), password: password.unwrap_or("").into() })
                }
            },
            (None, _) => None,
        };
        let has_creds = creds.is_some();
        // One socket per runtime: a few I/O events a turn are plenty (the default reserves room
        // for 1,024 on every camera).
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_io_events_per_tick(16)
            .build()
            .map_err(|e| failed(format!("cannot start the session's runtime: {e}")))?;
        let group = Arc::new(SessionGroup::default());
        let options = SessionOptions::default()
            .creds(creds)
            .user_agent(format!("tianwang/{}", env!("CARGO_PKG_VERSION")))
            .session_group(group.clone())
            .teardown(TeardownPolicy::Auto);
        let step = |what: &'static str| {
            move |_| failed(format!("no answer to RTSP {what} within {} s", timeout.as_secs_f64()))
        };
        let (session, stream, track) = rt.block_on(async {
            let mut session = tokio::time::timeout(timeout, unhurt("DESCRIBE", Session::describe(parsed, options)))
                .await
                .map_err(step("DESCRIBE"))??
                .map_err(|e| from_retina(&e, "DESCRIBE", Some(peer), has_creds))?;
            let (stream, codec) = video_stream(session.streams())?;
            let setup = SetupOptions::default().transport(Transport::Tcp(TcpTransportOptions::default()));
            tokio::time::timeout(timeout, unhurt("SETUP", session.setup(stream, setup)))
                .await
                .map_err(step("SETUP"))??
                .map_err(|e| from_retina(&e, "SETUP", Some(peer), has_creds))?;
            let s = &session.streams()[stream];
            let track = VideoTrack {
                codec,
                payload_type: s.rtp_payload_type(),
                parameter_sets: parameter_sets(s.parameters()),
            };
            // Liveness and lone keyframes need no play-time mapping, and a server's RTP-Info
            // is not to be trusted: a shared stream's first packets can carry sequence numbers
            // below the one announced (GStreamer's server with several clients on one path does),
            // which retina would take for TCP packets out of order and end the session.
            let play = PlayOptions::default()
                .initial_seq(InitialSequenceNumberPolicy::Ignore)
                .initial_timestamp(InitialTimestampPolicy::Ignore);
            let playing = tokio::time::timeout(timeout, unhurt("PLAY", session.play(play)))
                .await
                .map_err(step("PLAY"))??
                .map_err(|e| from_retina(&e, "PLAY", Some(peer), has_creds))?;
            Ok::<_, RtspError>((playing, stream, track))
        })?;
        Ok(Client { rt, session: Some(Box::pin(session)), group, stream, peer: Some(peer), track })
    }

    /// Reads whatever has arrived (never waits for more) and hands every RTP packet of the video
    /// stream to `on_packet`. Keep-alives go out when due. Returns the bytes received.
    pub fn poll(&mut self, _now: i64, mut on_packet: impl FnMut(&[u8])) -> Result<usize, RtspError> {
        let Some(session) = self.session.as_mut() else { return Err(failed("the session was torn down")) };
        let (stream, peer) = (self.stream, self.peer);
        let mut total = 0usize;
        let r = self.rt.block_on(unhurt("streaming", async {
            // Drain what is ready; then let the runtime look at the socket once more (a yield
            // turns its I/O driver without waiting) and stop when that brings nothing new.
            let mut looked = false;
            loop {
                match futures_util::poll!(session.next()) {
                    Poll::Ready(Some(Ok(PacketItem::Rtp(p)))) => {
                        looked = false;
                        // The interleaved frame's 4 bytes count as received too.
                        total += p.raw().len() + 4;
                        if p.stream_id() == stream {
                            on_packet(p.raw());
                        }
                    }
                    Poll::Ready(Some(Ok(_))) => looked = false,
                    Poll::Ready(Some(Err(e))) => return Err(from_retina(&e, "streaming", peer, true)),
                    Poll::Ready(None) => return Err(failed("the server closed the connection")),
                    Poll::Pending if looked => return Ok(()),
                    Poll::Pending => {
                        tokio::task::yield_now().await;
                        looked = true;
                    }
                }
                if total >= MAX_POLL {
                    return Ok(());
                }
            }
        }));
        r.and_then(|r| r).map(|()| total)
    }

    /// Ends the session: one TEARDOWN on the connection (retina's policy for TCP; repeated for
    /// servers known to keep sending on a closed connection), waited for briefly, then closed.
    pub fn teardown(mut self) {
        self.close();
    }

    fn close(&mut self) {
        if let Some(s) = self.session.take() {
            let _guard = self.rt.enter();
            drop(s);
            let group = self.group.clone();
            self.rt.block_on(async {
                let _ = tokio::time::timeout(TEARDOWN_WAIT, group.await_teardown()).await;
            });
        }
    }
}

/// Runs one step of retina's session, turning a panic inside it into an error naming the step:
/// a camera's bytes must never take the process down (see the module's note on `sdp-types`).
async fn unhurt<F: std::future::Future>(during: &str, step: F) -> Result<F::Output, RtspError> {
    std::panic::AssertUnwindSafe(step).catch_unwind().await.map_err(|_| {
        failed(format!("the camera's answer during {during} is malformed (the RTSP parser could not read it)"))
    })
}

/// How long closing a session waits for the server to answer TEARDOWN.
const TEARDOWN_WAIT: Duration = Duration::from_millis(300);

impl Drop for Client {
    fn drop(&mut self) {
        self.close();
    }
}

/// The first H.264 or H.265 video stream, or why there is none (naming what there is).
fn video_stream(streams: &[retina::client::Stream]) -> Result<(usize, VideoCodec), RtspError> {
    for (i, s) in streams.iter().enumerate() {
        if s.media() != "video" {
            continue;
        }
        match s.encoding_name() {
            "h264" => return Ok((i, VideoCodec::H264)),
            "h265" => return Ok((i, VideoCodec::H265)),
            _ => {}
        }
    }
    let offered: Vec<String> = streams.iter().map(|s| format!("{}/{}", s.media(), s.encoding_name())).collect();
    Err(failed(if offered.iter().any(|o| o.starts_with("video/")) {
        format!("the camera streams no H.264 or H.265 video (it offers {})", offered.join(", "))
    } else {
        format!("the session description has no video stream (it offers {})", offered.join(", "))
    }))
}

/// The parameter sets retina read from the description, as NAL units (VPS, SPS, PPS).
fn parameter_sets(p: Option<ParametersRef<'_>>) -> Vec<Vec<u8>> {
    let Some(ParametersRef::Video(v)) = p else { return Vec::new() };
    match v.codec_params() {
        VideoParametersCodec::H264 { sps, pps } => vec![sps.to_vec(), pps.to_vec()],
        VideoParametersCodec::H265 { vps, sps, pps } => vec![vps.to_vec(), sps.to_vec(), pps.to_vec()],
        _ => Vec::new(),
    }
}

/// How a server signs in, as its answer to a DESCRIBE without credentials tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// No sign-in asked for.
    Open,
    /// Digest offered (Basic may be offered too: retina picks Digest).
    Digest,
    BasicOnly,
}

/// The most of an answer's head the guard reads.
const MAX_HEAD: usize = 64 * 1024;

/// Asks the server, without credentials, how it signs in: one DESCRIBE on a connection of its
/// own, the answer's head read (bounded), the connection closed.
fn sign_in_offer(url: &url::Url, peer: SocketAddr, timeout: Duration) -> Result<Offer, RtspError> {
    let mut s = TcpStream::connect_timeout(&peer, timeout).map_err(|e| {
        failed(match e.kind() {
            std::io::ErrorKind::ConnectionRefused => format!("connection refused by {peer}: nothing listens there"),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                format!("no answer from {peer} within {} s", timeout.as_secs_f64())
            }
            _ => format!("cannot connect to {peer}: {e}"),
        })
    })?;
    s.set_read_timeout(Some(timeout)).map_err(|e| failed(e.to_string()))?;
    s.set_write_timeout(Some(timeout)).map_err(|e| failed(e.to_string()))?;
    let req = format!(
        "DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: tianwang/{}\r\nAccept: application/sdp\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    s.write_all(req.as_bytes()).map_err(|e| failed(format!("DESCRIBE: cannot send: {e}")))?;
    let deadline = Instant::now() + timeout;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if head.len() > MAX_HEAD || Instant::now() >= deadline {
            return Err(failed("the server's answer to DESCRIBE is not an RTSP answer (no end of its head)"));
        }
        match s.read(&mut buf) {
            Ok(0) => return Err(failed("the server closed the connection before answering DESCRIBE")),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(failed(format!("no answer to RTSP DESCRIBE within {} s", timeout.as_secs_f64())));
            }
            Err(e) => return Err(failed(format!("reading the answer to DESCRIBE: {e}"))),
        }
    };
    let _ = s.shutdown(std::net::Shutdown::Both);
    offer_of(&String::from_utf8_lossy(&head[..end]))
}

/// Reads the offer from an answer's head (status line and headers).
pub fn offer_of(head: &str) -> Result<Offer, RtspError> {
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("RTSP/1.0 "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| {
            failed("the server sent bytes that are neither RTSP nor interleaved RTP while answering DESCRIBE")
        })?;
    if status != 401 {
        return Ok(Offer::Open);
    }
    let mut digest = false;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else { continue };
        if k.trim().eq_ignore_ascii_case("WWW-Authenticate") {
            let challenges = http_auth::parse_challenges(v.trim()).unwrap_or_default();
            digest |= challenges.iter().any(|c| c.scheme.eq_ignore_ascii_case("digest"));
        }
    }
    Ok(if digest { Offer::Digest } else { Offer::BasicOnly })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offer_is_read_from_every_challenge_header() {
        let h = "RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Basic realm=\"x\"\r\n\
                 www-authenticate: Digest realm=\"x\", nonce=\"n\", algorithm=SHA-256";
        assert_eq!(offer_of(h).unwrap(), Offer::Digest);
        let h = "RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Basic realm=\"x\"";
        assert_eq!(offer_of(h).unwrap(), Offer::BasicOnly);
        let h = "RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Basic realm=\"x\", Digest realm=\"y\", nonce=\"1\"";
        assert_eq!(offer_of(h).unwrap(), Offer::Digest);
        assert_eq!(offer_of("RTSP/1.0 200 OK\r\nCSeq: 1").unwrap(), Offer::Open);
        assert!(offer_of("HTTP/1.1 400 Bad Request").unwrap_err().to_string().contains("neither RTSP"));
    }

    #[test]
    fn statuses_keep_their_method_and_the_rfc_reason() {
        assert_eq!(reason_phrase(461), "Unsupported Transport");
        let e = RtspError::Status { method: "SETUP".into(), code: 461, reason: "Unsupported Transport".into() };
        assert_eq!(e.to_string(), "SETUP answered 461 Unsupported Transport: TCP transport refused");
        assert_eq!(e.status(), Some(461));
    }
}
