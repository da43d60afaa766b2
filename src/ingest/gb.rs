//! Live video of a GB/T 28181 channel (`gb28181://DEVICE/CHANNEL`).
//!
//! The platform asks the device for the channel's stream by INVITE through [`GbMedia`] (the app
//! wires it to the SIP server; ingest does not know SIP), offering a socket of the camera's own:
//! UDP, TCP that the device connects to (`TcpPassive`), or TCP that we connect to once the device
//! answered with its port (`TcpActive`); TCP carries RFC 4571 framing (a 2-byte length before each
//! packet). The receiver thread here checks each RTP packet (version 2; one SSRC per session),
//! puts UDP packets back in order, and pushes their payload, MPEG-PS, into the pipeline's appsrc,
//! where `mpegpsdemux` takes out the H.264/H.265 stream: from there on the graph is the one an
//! RTSP camera gets, with every profile and detector. Dropping the [`Receiver`] stops the thread
//! and ends the call (the SIP side sends BYE).

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer_app as gst_app;

use super::rtp::parse_rtp;

/// How the device sends the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaTransport {
    /// RTP over UDP to our port.
    Udp,
    /// RTP over TCP: we listen, the device connects (SDP `a=setup:passive` in our offer).
    TcpPassive,
    /// RTP over TCP: the device listens, we connect (`a=setup:active`).
    TcpActive,
}

impl MediaTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaTransport::Udp => "udp",
            MediaTransport::TcpPassive => "tcp-passive",
            MediaTransport::TcpActive => "tcp-active",
        }
    }
}

/// What the platform offers the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaOffer {
    pub device: String,
    pub channel: String,
    pub transport: MediaTransport,
    /// Our receiving port (UDP, TCP passive); 0 for TCP active.
    pub port: u16,
}

/// A call in progress. Dropping it ends the call (BYE).
pub trait MediaCall: Send {
    /// Why the call ended from the other side (the device's BYE), if it did.
    fn ended(&self) -> Option<String>;
}

/// The device's answer.
pub struct MediaSession {
    /// Where the device sends from (UDP) or listens (TCP active).
    pub remote: Option<SocketAddr>,
    /// The SSRC the stream carries (SDP `y=`), when the answer gives one.
    pub ssrc: Option<u32>,
    /// The payload the device will send: `PS` is the only one read here.
    pub encoding: String,
    pub call: Box<dyn MediaCall>,
}

/// The SIP side of live video, as ingest needs it. Calls block (ingest threads are not async).
pub trait GbMedia: Send + Sync {
    /// The transport a channel of `device` is asked for; `tcp` is the camera's `transport`.
    fn transport(&self, device: &str, tcp: bool) -> MediaTransport;
    /// The address receiving sockets are bound to.
    fn bind_ip(&self) -> IpAddr;
    /// The range receiving ports are taken from, if one is configured (else any free port).
    fn ports(&self) -> Option<(u16, u16)>;
    /// Sends the INVITE and waits for the answer (or the refusal, as a readable sentence).
    fn invite(&self, offer: &MediaOffer) -> Result<MediaSession, String>;
}

/// A bound receiving socket, before the INVITE.
pub(crate) enum Socket {
    Udp(UdpSocket),
    Listen(TcpListener),
    /// TCP active: nothing is bound until the device answered.
    Connect,
}

impl Socket {
    /// Binds a socket for `transport` on `ip`, on a free port of `ports` (any free port without).
    pub(crate) fn bind(transport: MediaTransport, ip: IpAddr, ports: Option<(u16, u16)>) -> std::io::Result<Socket> {
        if transport == MediaTransport::TcpActive {
            return Ok(Socket::Connect);
        }
        let candidates: Vec<u16> = match ports {
            Some((lo, hi)) => {
                // Start at a different place each time, so that cameras do not race for one port.
                let n = u32::from(hi - lo) + 1;
                let start = rand::random::<u32>() % n;
                (0..n).map(|i| lo + ((start + i) % n) as u16).collect()
            }
            None => vec![0],
        };
        let mut last = std::io::Error::new(std::io::ErrorKind::AddrInUse, "no port left in the media port range");
        for port in candidates {
            let addr = SocketAddr::new(ip, port);
            let bound = match transport {
                MediaTransport::Udp => UdpSocket::bind(addr).map(Socket::Udp),
                _ => TcpListener::bind(addr).map(Socket::Listen),
            };
            match bound {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub(crate) fn port(&self) -> u16 {
        match self {
            Socket::Udp(s) => s.local_addr().map(|a| a.port()).unwrap_or(0),
            Socket::Listen(s) => s.local_addr().map(|a| a.port()).unwrap_or(0),
            Socket::Connect => 0,
        }
    }
}

/// Packets held back waiting for a missing one before the gap is given up on (UDP).
const REORDER_DEPTH: usize = 64;
/// The longest RTP packet accepted over TCP (RFC 4571 allows 65 535).
const MAX_PACKET: usize = 65_535;
/// How often the thread looks at the stop flag and the call while the socket is quiet.
const POLL: Duration = Duration::from_millis(100);
/// How long a passive TCP socket waits for the device to connect.
const ACCEPT_WAIT: Duration = Duration::from_secs(10);

/// Puts RTP packets back in sequence order (UDP reorders and duplicates); a gap is given up on
/// once `REORDER_DEPTH` later packets wait behind it.
#[derive(Default)]
pub(crate) struct Reorder {
    /// The extended sequence number expected next.
    next: Option<u64>,
    held: BTreeMap<u64, Vec<u8>>,
    /// Packets given up on (never arrived in time), and late or repeated packets dropped.
    pub lost: u64,
    pub late: u64,
}

impl Reorder {
    /// Takes one packet's payload; returns the payloads now in order.
    pub(crate) fn push(&mut self, seq: u16, payload: &[u8]) -> Vec<Vec<u8>> {
        let next = *self.next.get_or_insert(u64::from(seq) + (1 << 16));
        // The packet's extended number: the one nearest to `next` with these low 16 bits.
        let delta = seq.wrapping_sub(next as u16) as i16;
        let ext = next.wrapping_add_signed(i64::from(delta));
        if ext < next || self.held.contains_key(&ext) {
            self.late += 1;
            return Vec::new();
        }
        self.held.insert(ext, payload.to_vec());
        let mut out = Vec::new();
        loop {
            let mut n = self.next.unwrap_or(ext);
            while let Some(p) = self.held.remove(&n) {
                out.push(p);
                n += 1;
            }
            self.next = Some(n);
            if self.held.len() <= REORDER_DEPTH {
                break;
            }
            // Give up on the gap: skip to the oldest packet held.
            let first = *self.held.keys().next().expect("held is not empty");
            self.lost += first - n;
            self.next = Some(first);
        }
        out
    }
}

/// The SSRC rule: the answer's `y=` when it gave one, else the first seen; another SSRC (a stale
/// stream on a reused port, a second sender) is dropped and counted.
pub(crate) struct SsrcGate {
    want: Option<u32>,
    /// The SSRC the device announced, when its packets carry another: devices that ignore `y=`
    /// exist, so the first SSRC seen is taken when nothing with the announced one came first.
    announced: Option<u32>,
    pub foreign: u64,
}

impl SsrcGate {
    pub(crate) fn new(announced: Option<u32>) -> Self {
        Self { want: None, announced, foreign: 0 }
    }

    pub(crate) fn admit(&mut self, ssrc: u32) -> bool {
        let want = *self.want.get_or_insert_with(|| {
            if let Some(a) = self.announced.filter(|a| *a != ssrc) {
                tracing::info!(
                    announced = a,
                    sending = ssrc,
                    "GB/T 28181 media: the device sends with another SSRC than it announced; taking its own"
                );
            }
            ssrc
        });
        let ok = want == ssrc;
        if !ok {
            self.foreign += 1;
        }
        ok
    }
}

/// What the receiver thread pushes into and reports to.
pub(crate) struct Sink {
    pub appsrc: gst_app::AppSrc,
    /// Called with each packet's size on the wire (liveness).
    pub on_packet: Box<dyn Fn(usize) + Send>,
}

/// The thread reading one session's socket.
pub(crate) struct Receiver {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Starts reading. `session` is the device's answer; `socket` the one offered.
    pub(crate) fn start(camera: &str, socket: Socket, session: MediaSession, sink: Sink) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let name = format!("gb-{camera}");
        let thread = std::thread::Builder::new().name(name.chars().take(15).collect()).spawn(move || {
            let MediaSession { remote, ssrc, call, .. } = session;
            let result = run(socket, remote, ssrc, call.as_ref(), &sink, &flag);
            if let Err(why) = result
                && !flag.load(Ordering::Relaxed)
            {
                gst::element_error!(sink.appsrc, gst::ResourceError::Read, ("{}", why));
            }
            // `call` drops here: the SIP side ends the call.
            drop(call);
        })?;
        Ok(Self { stop, thread: Some(thread) })
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads until stopped (`Ok`) or the stream fails (`Err`: the sentence the camera's error shows).
fn run(
    socket: Socket,
    remote: Option<SocketAddr>,
    ssrc: Option<u32>,
    call: &dyn MediaCall,
    sink: &Sink,
    stop: &AtomicBool,
) -> Result<(), String> {
    let mut gate = SsrcGate::new(ssrc);
    let push = |payload: Vec<u8>| -> Result<(), String> {
        match sink.appsrc.push_buffer(gst::Buffer::from_mut_slice(payload)) {
            Ok(_) => Ok(()),
            Err(gst::FlowError::Flushing) => Ok(()),
            Err(e) => Err(format!("the pipeline refused the stream: {e:?}")),
        }
    };
    let ended = || call.ended().map(|why| format!("the device ended the stream: {why}"));
    match socket {
        Socket::Udp(sock) => {
            sock.set_read_timeout(Some(POLL)).map_err(|e| e.to_string())?;
            let mut order = Reorder::default();
            let mut buf = vec![0u8; MAX_PACKET];
            while !stop.load(Ordering::Relaxed) {
                if let Some(e) = ended() {
                    return Err(e);
                }
                let n = match sock.recv_from(&mut buf) {
                    Ok((n, _)) => n,
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                        continue;
                    }
                    Err(e) => return Err(format!("GB/T 28181 media socket: {e}")),
                };
                let Some(p) = parse_rtp(&buf[..n]) else { continue };
                if !gate.admit(p.ssrc) {
                    continue;
                }
                (sink.on_packet)(n);
                for payload in order.push(p.seq, p.payload) {
                    push(payload)?;
                }
            }
            Ok(())
        }
        Socket::Listen(listener) => {
            listener.set_nonblocking(true).map_err(|e| e.to_string())?;
            let started = Instant::now();
            let stream = loop {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                if let Some(e) = ended() {
                    return Err(e);
                }
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if started.elapsed() > ACCEPT_WAIT {
                            return Err(format!(
                                "the device did not connect to the media port within {} s (TCP passive)",
                                ACCEPT_WAIT.as_secs()
                            ));
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => return Err(format!("GB/T 28181 media socket: {e}")),
                }
            };
            read_tcp(stream, &mut gate, sink, stop, &ended, &push)
        }
        Socket::Connect => {
            let Some(addr) = remote else { return Err("the device's answer gave no address to connect to".into()) };
            let stream = TcpStream::connect_timeout(&addr, ACCEPT_WAIT)
                .map_err(|e| format!("cannot connect to the device's media port {addr} (TCP active): {e}"))?;
            read_tcp(stream, &mut gate, sink, stop, &ended, &push)
        }
    }
}

/// RFC 4571: a 2-byte big-endian length, then the packet.
fn read_tcp(
    mut stream: TcpStream,
    gate: &mut SsrcGate,
    sink: &Sink,
    stop: &AtomicBool,
    ended: &dyn Fn() -> Option<String>,
    push: &dyn Fn(Vec<u8>) -> Result<(), String>,
) -> Result<(), String> {
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(POLL)).map_err(|e| e.to_string())?;
    let mut framer = Framer::default();
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        if let Some(e) = ended() {
            return Err(e);
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => return Err("the device closed the media connection".into()),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(format!("GB/T 28181 media connection: {e}")),
        };
        for packet in framer.push(&buf[..n]) {
            let Some(p) = parse_rtp(&packet) else { continue };
            if !gate.admit(p.ssrc) {
                continue;
            }
            (sink.on_packet)(packet.len() + 2);
            push(p.payload.to_vec())?;
        }
    }
    Ok(())
}

/// Splits an RFC 4571 byte stream into packets.
#[derive(Default)]
pub(crate) struct Framer {
    pending: Vec<u8>,
}

impl Framer {
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut at = 0;
        while self.pending.len() >= at + 2 {
            let len = usize::from(u16::from_be_bytes([self.pending[at], self.pending[at + 1]]));
            if self.pending.len() < at + 2 + len {
                break;
            }
            if len > 0 {
                out.push(self.pending[at + 2..at + 2 + len].to_vec());
            }
            at += 2 + len;
        }
        self.pending.drain(..at);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorder_puts_packets_back_in_sequence_across_the_wrap() {
        let mut r = Reorder::default();
        let seqs = [65_534u16, 0, 65_535, 1, 1, 3, 2, 65_530];
        let mut out = Vec::new();
        for s in seqs {
            out.extend(r.push(s, &s.to_be_bytes()));
        }
        let got: Vec<u16> = out.iter().map(|p| u16::from_be_bytes([p[0], p[1]])).collect();
        assert_eq!(got, vec![65_534, 65_535, 0, 1, 2, 3]);
        assert_eq!(r.late, 2, "the repeat of 1 and the old 65530");
        assert_eq!(r.lost, 0);
    }

    #[test]
    fn reorder_gives_up_on_a_gap_after_the_depth() {
        let mut r = Reorder::default();
        assert_eq!(r.push(10, b"a").len(), 1);
        // 11 never comes.
        let mut out = Vec::new();
        for s in 12..12 + REORDER_DEPTH as u16 {
            out.extend(r.push(s, b"x"));
        }
        assert!(out.is_empty(), "held while the gap may still fill");
        out.extend(r.push(12 + REORDER_DEPTH as u16, b"y"));
        assert_eq!(out.len(), REORDER_DEPTH + 1);
        assert_eq!(r.lost, 1);
        assert_eq!(r.push(11, b"late").len(), 0);
        assert_eq!(r.late, 1);
    }

    #[test]
    fn ssrc_gate_takes_the_announced_or_first_and_drops_others() {
        let mut g = SsrcGate::new(Some(200));
        assert!(g.admit(200));
        assert!(!g.admit(7));
        assert_eq!(g.foreign, 1);
        // A device that ignores y=: its own SSRC is taken, the rest dropped.
        let mut g = SsrcGate::new(Some(200));
        assert!(g.admit(9));
        assert!(g.admit(9));
        assert!(!g.admit(200));
    }

    #[test]
    fn framer_splits_rfc4571_across_reads() {
        let mut f = Framer::default();
        let mut wire = Vec::new();
        for p in [&b"abc"[..], b"", b"defgh"] {
            wire.extend_from_slice(&(p.len() as u16).to_be_bytes());
            wire.extend_from_slice(p);
        }
        let mut out = Vec::new();
        for chunk in wire.chunks(2) {
            out.extend(f.push(chunk));
        }
        assert_eq!(out, vec![b"abc".to_vec(), b"defgh".to_vec()]);
    }

    #[test]
    fn sockets_bind_in_the_configured_range() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = Socket::bind(MediaTransport::Udp, ip, Some((40_100, 40_101))).unwrap();
        let b = Socket::bind(MediaTransport::Udp, ip, Some((40_100, 40_101))).unwrap();
        let mut ports = [a.port(), b.port()];
        ports.sort();
        assert_eq!(ports, [40_100, 40_101]);
        let e = Socket::bind(MediaTransport::Udp, ip, Some((40_100, 40_101))).err().expect("range used up");
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
        assert!(matches!(Socket::bind(MediaTransport::TcpActive, ip, None).unwrap(), Socket::Connect));
        assert_ne!(Socket::bind(MediaTransport::TcpPassive, ip, None).unwrap().port(), 0);
    }
}
