//! The simulated GB/T 28181 NVR (`tianwang::sim::gb28181`), an independent peer written from the
//! standard, against the platform's real SIP server: it registers with Digest, stays online on its
//! keepalives, its six channels become cameras from its split catalog, and after `stop()` it is
//! unregistered. Its live video is asked for by hand (a few lines of SIP written here): an INVITE
//! over UDP gets PS over RTP with the offered SSRC until a BYE, and over TCP (RFC 4571) until the
//! device ends it.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Engine, TestApp, TestDb, config_dir, until};
use tianwang::registry::Registry;
use tianwang::sim::gb28181::{GbDeviceConfig, GbDeviceSim, SipTransport};
use tokio::io::AsyncReadExt;
use tokio::net::UdpSocket;

const SRV: &str = "41010000002000000001";
const DOMAIN: &str = "4101000000";
const NVR: &str = "41010000001180000001";
const PASSWORD: &str = "sim-nvr-pass";
const CH1: &str = "41010000001310000001";
const LOCALHOST: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn site() -> String {
    format!(
        "[site]\nname = \"gb-sim\"\ntimezone = \"Asia/Shanghai\"\n\
         [[grid_cell]]\nid = \"410100\"\nname = \"郑州\"\nlevel = 1\n\
         [gb28181]\nid = \"{SRV}\"\nlisten = \"127.0.0.1:0\"\nheartbeat_interval_s = 5\nheartbeat_count = 1\n\
         [[gb28181_device]]\nid = \"{NVR}\"\nname = \"Sim NVR\"\npassword_file = \"nvr.secret\"\n"
    )
}

async fn device(reg: &Registry) -> Option<tianwang::registry::GbDeviceRow> {
    reg.gb_devices().await.unwrap().into_iter().find(|d| d.id == NVR)
}

async fn nvr_against_the_platform(engine: Engine, transport: SipTransport) {
    let db = TestDb::new(engine).await;
    let cfg = config_dir(&[("site.toml", &site()), ("nvr.secret", PASSWORD)]);
    let app = TestApp::spawn_live(cfg.path(), &db).await;
    let gb = app.gb28181.clone().expect("the GB/T 28181 server runs");
    let reg = app.registry.clone();

    let mut dc = GbDeviceConfig::new(gb.local_addr(), SRV, DOMAIN, NVR, PASSWORD);
    dc.transport = transport;
    dc.local_ip = Some(LOCALHOST);
    dc.keepalive_interval = Duration::from_secs(1);
    dc.channels = GbDeviceConfig::numbered_channels(NVR, 6, 320, 240, 10);
    dc.channels[0].position = Some((113.6253, 34.7466));
    dc.channels[1].name = "二七广场 东".into();
    let sim = GbDeviceSim::start(dc).await.expect("the simulated NVR starts");

    until(10, "the device registered", async || (sim.stats().registered && gb.is_online(NVR)).then_some(())).await;
    let d = until(20, "its catalog", async || {
        device(&reg).await.filter(|d| d.catalog_note.starts_with("complete") && !d.model.is_empty())
    })
    .await;
    assert_eq!(d.catalog_note, "complete: 6 video channels, 0 other items");
    assert_eq!((d.manufacturer.as_str(), d.model.as_str()), ("tianwang", "SIM-NVR"));
    let t = if transport == SipTransport::Tcp { "tcp" } else { "udp" };
    assert_eq!((d.channels, d.transport.as_str(), d.online), (6, t, true));
    assert_eq!(sim.stats().catalogs_answered, 1);
    let mut ids = reg.gb_channels(NVR).await.unwrap();
    ids.sort();
    let want: Vec<String> = (1..=6).map(|i| format!("4101000000131000000{i}")).collect();
    assert_eq!(ids, want);
    let c1 = reg.get_camera(CH1).await.unwrap().expect("a camera");
    assert_eq!((c1.lon, c1.lat), (113.6253, 34.7466));
    assert_eq!(c1.grid_cell_id.as_deref(), Some("410100"), "civil code 410100 → its cell");
    assert_eq!(c1.name, "Channel 1");
    let c2 = reg.get_camera("41010000001310000002").await.unwrap().unwrap();
    assert_eq!(c2.name, "二七广场 东", "GB2312 as declared, read back");
    let (status, json, text) = app.get("/api/v1/gb28181/devices").await;
    assert_eq!(status, 200, "{text}");
    let row = json.as_array().unwrap().iter().find(|d| d["id"] == NVR).expect("listed").clone();
    assert_eq!((row["online"].as_bool(), row["channels"].as_i64()), (Some(true), Some(6)), "{row}");
    until(10, "the channels online", async || {
        let mut all = true;
        for id in &want {
            all &= reg.get_camera(id).await.unwrap().unwrap().status == "online";
        }
        all.then_some(())
    })
    .await;

    // Online on its keepalives through more than a whole window (5 s × 1) since it registered.
    let first = device(&reg).await.unwrap();
    let k0 = sim.stats().keepalives_answered;
    let end = Instant::now() + Duration::from_secs(7);
    while Instant::now() < end {
        assert!(gb.is_online(NVR), "offline while keeping alive: {:?}", sim.stats());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = sim.stats();
    assert!(s.keepalives_answered >= k0 + 5, "{s:?}");
    let later = device(&reg).await.unwrap();
    assert!(later.online && later.last_alive_ms > first.last_alive_ms, "{later:?}");
    assert_eq!(s.registrations, 1, "one registration for the hour it asked: {s:?}");

    // Stopped: REGISTER with Expires 0, offline at once, and its channels follow.
    sim.stop().await.expect("unregisters");
    let d = until(5, "the device offline", async || device(&reg).await.filter(|d| !d.online)).await;
    assert_eq!(d.status_reason, "unregistered");
    assert!(!gb.is_online(NVR));
    until(10, "the channels offline", async || {
        let mut all = true;
        for id in &want {
            all &= reg.get_camera(id).await.unwrap().unwrap().status == "offline";
        }
        all.then_some(())
    })
    .await;
    app.stop().await;
}

/// The platform subscribes to the NVR's catalog once it has it; the NVR's NOTIFYs then remove a
/// channel (DEL), take one off (VLOST) and back (ON) without touching its description, and add
/// one (ADD).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_changes_arrive_by_subscription() {
    let db = TestDb::new(Engine::Sqlite).await;
    let cfg = config_dir(&[("site.toml", &site()), ("nvr.secret", PASSWORD)]);
    let app = TestApp::spawn_live(cfg.path(), &db).await;
    let gb = app.gb28181.clone().expect("the GB/T 28181 server runs");
    let reg = app.registry.clone();
    let mut dc = GbDeviceConfig::new(gb.local_addr(), SRV, DOMAIN, NVR, PASSWORD);
    dc.local_ip = Some(LOCALHOST);
    dc.keepalive_interval = Duration::from_secs(1);
    dc.channels = GbDeviceConfig::numbered_channels(NVR, 6, 320, 240, 10);
    dc.channels[4].position = Some((113.6253, 34.7466));
    let sim = GbDeviceSim::start(dc).await.expect("the simulated NVR starts");
    until(20, "the catalog and the subscription", async || {
        let d = device(&reg).await?;
        (d.catalog_note.starts_with("complete") && sim.stats().catalog_subscriptions >= 1).then_some(())
    })
    .await;
    let ch = |i: u32| format!("410100000013100000{i:02}");
    let status = async |id: &str| reg.get_camera(id).await.unwrap().map(|c| (c.status, c.status_reason));
    until(10, "the channels online", async || (status(&ch(5)).await?.0 == "online").then_some(())).await;

    let code = sim
        .notify_catalog(&[(&ch(6), "DEL"), (&ch(5), "VLOST"), (&ch(7), "ADD")])
        .await
        .expect("the NOTIFY is answered");
    assert_eq!(code, 200);
    let (s, why) = until(10, "the removed channel decommissioned", async || {
        status(&ch(6)).await.filter(|(s, _)| s == "decommissioned")
    })
    .await;
    assert_eq!((s.as_str(), why.as_str()), ("decommissioned", "removed from its device (catalog notification DEL)"));
    let (_, why) =
        until(10, "the lost channel offline", async || status(&ch(5)).await.filter(|(s, _)| s == "offline")).await;
    assert_eq!(why, format!("channel reported video lost (VLOST) by GB/T 28181 device {NVR}"));
    let c5 = reg.get_camera(&ch(5)).await.unwrap().unwrap();
    assert_eq!(
        (c5.name.as_str(), c5.lon, c5.lat),
        ("Channel 5", 113.6253, 34.7466),
        "a state change keeps the description"
    );
    let c7 = until(10, "the added channel", async || reg.get_camera(&ch(7)).await.unwrap()).await;
    assert_eq!(c7.name, format!("Channel {}", ch(7)));
    let d = device(&reg).await.unwrap();
    assert_eq!(
        d.catalog_note,
        "change notified: 1 video channels described, 1 changed state, 1 removed, 0 other items"
    );
    assert_eq!(d.channels, 6, "6 listed - 1 removed + 1 added");

    assert_eq!(sim.notify_catalog(&[(&ch(5), "ON")]).await, Ok(200));
    until(10, "the channel back", async || status(&ch(5)).await.filter(|(s, _)| s == "online")).await;
    sim.stop().await.expect("unregisters");
    app.stop().await;
}

async fn a_simulated_nvr_registers_keeps_alive_lists_six_channels_and_unregisters(engine: Engine) {
    nvr_against_the_platform(engine, SipTransport::Udp).await;
}

on_both_engines!(a_simulated_nvr_registers_keeps_alive_lists_six_channels_and_unregisters);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_nvr_over_tcp_registers_and_lists_its_channels() {
    nvr_against_the_platform(Engine::Sqlite, SipTransport::Tcp).await;
}

/// A device that serves video whatever its platform does: its registrations go to a socket that
/// never answers.
async fn lone_device() -> (GbDeviceSim, UdpSocket) {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut dc = GbDeviceConfig::new(silent.local_addr().unwrap(), SRV, DOMAIN, NVR, PASSWORD);
    dc.local_ip = Some(LOCALHOST);
    dc.channels = GbDeviceConfig::numbered_channels(NVR, 2, 320, 240, 15);
    (GbDeviceSim::start(dc).await.expect("starts"), silent)
}

/// The platform's side of a call, written by hand.
struct Platform {
    sock: UdpSocket,
    device: SocketAddr,
    n: u32,
}

impl Platform {
    async fn new(device: SocketAddr) -> Self {
        Self { sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(), device, n: 0 }
    }

    fn offer(port: u16, proto: &str, extra: &str, session: &str) -> String {
        format!(
            "v=0\r\no={SRV} 0 0 IN IP4 127.0.0.1\r\ns={session}\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=video {port} {proto} 96 98\r\na=recvonly\r\n{extra}a=rtpmap:96 PS/90000\r\na=rtpmap:98 H264/90000\r\n\
             y=0100000123\r\n"
        )
    }

    /// Sends an INVITE for `channel`; the final response (provisional ones skipped).
    async fn invite(&mut self, channel: &str, sdp: &str, call: &str) -> String {
        self.n += 1;
        let me = self.sock.local_addr().unwrap();
        let msg = format!(
            "INVITE sip:{channel}@{dev} SIP/2.0\r\nVia: SIP/2.0/UDP {me};rport;branch=z9hG4bKinv{n}\r\n\
             From: <sip:{SRV}@{DOMAIN}>;tag=plat-{call}\r\nTo: <sip:{channel}@{DOMAIN}>\r\nCall-ID: {call}\r\n\
             CSeq: 20 INVITE\r\nContact: <sip:{SRV}@{me}>\r\nMax-Forwards: 70\r\nSubject: {channel}:0100000123,{SRV}:0\r\n\
             Content-Type: APPLICATION/SDP\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len(),
            dev = self.device,
            n = self.n,
        );
        self.sock.send_to(msg.as_bytes(), self.device).await.unwrap();
        loop {
            let r = self.recv().await;
            if r.starts_with("SIP/2.0 1") {
                assert!(r.starts_with("SIP/2.0 100 Trying"), "{r}");
                continue;
            }
            return r;
        }
    }

    async fn recv(&self) -> String {
        let mut buf = vec![0u8; 65_536];
        let (n, _) = tokio::time::timeout(Duration::from_secs(10), self.sock.recv_from(&mut buf))
            .await
            .expect("an answer from the device")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// ACK or BYE in the dialog of a 200 (its To tag).
    async fn in_dialog(&mut self, method: &str, channel: &str, call: &str, ok: &str, cseq: u32) {
        self.n += 1;
        let me = self.sock.local_addr().unwrap();
        let to = header(ok, "To");
        let msg = format!(
            "{method} sip:{channel}@{dev} SIP/2.0\r\nVia: SIP/2.0/UDP {me};rport;branch=z9hG4bK{method}{n}\r\n\
             From: <sip:{SRV}@{DOMAIN}>;tag=plat-{call}\r\nTo: {to}\r\nCall-ID: {call}\r\nCSeq: {cseq} {method}\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            dev = self.device,
            n = self.n,
        );
        self.sock.send_to(msg.as_bytes(), self.device).await.unwrap();
    }
}

fn header(msg: &str, name: &str) -> String {
    msg.lines()
        .find_map(|l| l.split_once(':').filter(|(n, _)| n.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
        .unwrap_or_default()
        .to_string()
}

fn sdp_of(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
}

/// Checks one RTP packet: version 2, PT 96, the offered SSRC; its sequence number, marker,
/// timestamp and payload.
fn rtp(p: &[u8]) -> (u16, bool, u32, &[u8]) {
    assert!(p.len() > 12 && p.len() <= 12 + 1400, "{} bytes", p.len());
    assert_eq!(p[0] >> 6, 2, "RTP version 2");
    assert_eq!(p[1] & 0x7F, 96, "PT 96");
    assert_eq!(u32::from_be_bytes([p[8], p[9], p[10], p[11]]), 100_000_123, "the SSRC of y=0100000123");
    (u16::from_be_bytes([p[2], p[3]]), p[1] & 0x80 != 0, u32::from_be_bytes([p[4], p[5], p[6], p[7]]), &p[12..])
}

/// Reads packets in order: every frame starts with a PS pack header, sequence numbers follow
/// one another, one timestamp per frame; the first frame is a keyframe (system header and map).
struct Frames {
    packets: usize,
    frames: usize,
    last: Option<(u16, bool, u32)>,
}

impl Frames {
    fn take(&mut self, p: &[u8]) {
        let (seq, marker, ts, payload) = rtp(p);
        let frame_start = self.last.is_none_or(|(_, m, _)| m);
        if frame_start {
            assert_eq!(&payload[..4], &[0, 0, 1, 0xBA], "a frame starts with a PS pack header");
            if self.last.is_none() {
                assert_eq!(&payload[14..18], &[0, 0, 1, 0xBB], "the first pack is a keyframe's: a system header");
            }
        }
        if let Some((s, m, t)) = self.last {
            assert_eq!(seq, s.wrapping_add(1), "sequence numbers follow one another");
            if m {
                assert!(ts > t, "a new frame, a later timestamp");
            } else {
                assert_eq!(ts, t, "one timestamp per frame");
            }
        }
        self.frames += usize::from(marker);
        self.packets += 1;
        self.last = Some((seq, marker, ts));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_over_udp_streams_ps_over_rtp_until_bye() {
    let (sim, _silent) = lone_device().await;
    let mut plat = Platform::new(sim.local_addr()).await;
    let media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = media.local_addr().unwrap().port();

    let r = plat.invite("41010000001310000099", &Platform::offer(port, "RTP/AVP", "", "Play"), "c404").await;
    assert!(r.starts_with("SIP/2.0 404"), "an unknown channel: {r}");
    let r = plat.invite(CH1, &Platform::offer(port, "RTP/AVP", "", "Playback"), "c488").await;
    assert!(r.starts_with("SIP/2.0 488"), "no recordings: {r}");
    assert!(header(&r, "Warning").contains("Playback"), "{r}");

    let ok = plat.invite(CH1, &Platform::offer(port, "RTP/AVP", "", "Play"), "c1").await;
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let sdp = sdp_of(&ok);
    let m_line = sdp.lines().find(|l| l.starts_with("m=")).unwrap();
    let sending_port: u16 = m_line.split(' ').nth(1).unwrap().parse().unwrap();
    assert_eq!(m_line, format!("m=video {sending_port} RTP/AVP 96"));
    for line in ["a=sendonly", "a=rtpmap:96 PS/90000", "y=0100000123", "c=IN IP4 127.0.0.1", "s=Play"] {
        assert!(sdp.lines().any(|l| l == line), "{line} in\n{sdp}");
    }
    assert!(header(&ok, "To").contains(";tag="), "{ok}");
    assert_eq!(sim.stats().invites_answered, 1);
    plat.in_dialog("ACK", CH1, "c1", &ok, 20).await;

    let mut f = Frames { packets: 0, frames: 0, last: None };
    let mut buf = vec![0u8; 2048];
    while f.frames < 20 {
        let (n, from) = tokio::time::timeout(Duration::from_secs(10), media.recv_from(&mut buf))
            .await
            .expect("RTP from the device")
            .unwrap();
        assert_eq!(from.port(), sending_port, "sent from the port its SDP names");
        f.take(&buf[..n]);
    }
    assert_eq!(sim.stats().active_streams, 1);

    plat.in_dialog("BYE", CH1, "c1", &ok, 21).await;
    let r = plat.recv().await;
    assert!(r.starts_with("SIP/2.0 200") && header(&r, "CSeq") == "21 BYE", "{r}");
    until(5, "the stream stopped", async || (sim.stats().active_streams == 0).then_some(())).await;
    // What was sent before the stop is read; after it, nothing comes.
    while let Ok(r) = tokio::time::timeout(Duration::from_millis(300), media.recv_from(&mut buf)).await {
        r.unwrap();
    }
    let sent = sim.stats().rtp_packets_sent;
    assert!(
        tokio::time::timeout(Duration::from_secs(1), media.recv_from(&mut buf)).await.is_err(),
        "RTP after the BYE"
    );
    assert_eq!(sim.stats().rtp_packets_sent, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_over_tcp_streams_rfc4571_until_the_device_ends_it() {
    let (sim, _silent) = lone_device().await;
    let mut plat = Platform::new(sim.local_addr()).await;
    // The platform listens (a=setup:passive): the device connects to it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let offer = Platform::offer(port, "TCP/RTP/AVP", "a=setup:passive\r\na=connection:new\r\n", "Play");
    let ok = plat.invite(CH1, &offer, "t1").await;
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let sdp = sdp_of(&ok);
    assert!(sdp.lines().any(|l| l.starts_with("m=video ") && l.ends_with(" TCP/RTP/AVP 96")), "{sdp}");
    assert!(sdp.lines().any(|l| l == "a=setup:active") && sdp.lines().any(|l| l == "y=0100000123"), "{sdp}");
    plat.in_dialog("ACK", CH1, "t1", &ok, 20).await;

    let (mut conn, _) =
        tokio::time::timeout(Duration::from_secs(10), listener.accept()).await.expect("the device connects").unwrap();
    let mut f = Frames { packets: 0, frames: 0, last: None };
    while f.frames < 10 {
        let mut len = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut len)).await.expect("RTP").unwrap();
        let mut p = vec![0u8; usize::from(u16::from_be_bytes(len))];
        conn.read_exact(&mut p).await.unwrap();
        f.take(&p);
    }

    // The device ends it: a BYE in the dialog, the connection closed.
    let stopper = tokio::spawn(async move {
        let n = sim.stop_channel(CH1).await;
        (sim, n)
    });
    let bye = plat.recv().await;
    assert!(bye.starts_with(&format!("BYE sip:{SRV}@")), "{bye}");
    assert_eq!(header(&bye, "Call-ID"), "t1");
    assert!(header(&bye, "From").contains(&header(&ok, "To")), "{bye}");
    let reply = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: t1\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        header(&bye, "Via"),
        header(&bye, "From"),
        header(&bye, "To"),
        header(&bye, "CSeq")
    );
    plat.sock.send_to(reply.as_bytes(), plat.device).await.unwrap();
    let (sim, n) = stopper.await.unwrap();
    assert_eq!(n, 1);
    assert_eq!(sim.stats().active_streams, 0);
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest))
        .await
        .expect("the device closes the connection")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_with_setup_active_gets_a_device_that_listens() {
    let (sim, _silent) = lone_device().await;
    let mut plat = Platform::new(sim.local_addr()).await;
    // The platform connects (a=setup:active): the device listens on the port its answer names.
    let offer = Platform::offer(9, "TCP/RTP/AVP", "a=setup:active\r\na=connection:new\r\n", "Play");
    let ok = plat.invite("41010000001310000002", &offer, "a1").await;
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let sdp = sdp_of(&ok);
    assert!(sdp.lines().any(|l| l == "a=setup:passive"), "{sdp}");
    let m_line = sdp.lines().find(|l| l.starts_with("m=video ")).unwrap();
    let port: u16 = m_line.split(' ').nth(1).unwrap().parse().unwrap();
    assert_eq!(m_line, format!("m=video {port} TCP/RTP/AVP 96"));
    plat.in_dialog("ACK", "41010000001310000002", "a1", &ok, 20).await;
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("the device listens");
    let mut f = Frames { packets: 0, frames: 0, last: None };
    while f.frames < 5 {
        let mut len = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut len)).await.expect("RTP").unwrap();
        let mut p = vec![0u8; usize::from(u16::from_be_bytes(len))];
        conn.read_exact(&mut p).await.unwrap();
        f.take(&p);
    }
    assert_eq!(sim.stats().active_streams, 1);
    plat.in_dialog("BYE", "41010000001310000002", "a1", &ok, 21).await;
    let r = plat.recv().await;
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
    until(5, "the stream stopped", async || (sim.stats().active_streams == 0).then_some(())).await;
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest))
        .await
        .expect("the device closes the connection")
        .unwrap();
    // A BYE for a call it does not have.
    plat.in_dialog("BYE", "41010000001310000002", "a1", &ok, 22).await;
    let r = plat.recv().await;
    assert!(r.starts_with("SIP/2.0 481"), "{r}");
}

/// What the hand-written registrar below saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// A REGISTER answered 401 (no Authorization), with its Expires.
    Challenged(u32),
    /// A REGISTER with a right Digest answer (no qop), answered 200 with `Expires: 2`.
    Registered(u32, Instant),
    Keepalive(u16),
}

fn md5_hex(s: &str) -> String {
    use md5::Digest as _;
    md5::Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn auth_param(auth: &str, name: &str) -> String {
    auth.split(',')
        .find_map(|p| {
            let (k, v) = p.trim().trim_start_matches("Digest ").split_once('=')?;
            (k.trim() == name).then(|| v.trim().trim_matches('"').to_string())
        })
        .unwrap_or_default()
}

/// A registrar that challenges without qop, grants 2 s, and refuses the first keepalive (403).
async fn registrar(sock: UdpSocket, seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>) {
    let mut buf = vec![0u8; 65_536];
    let mut refused = false;
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else { return };
        let req = String::from_utf8_lossy(&buf[..n]).into_owned();
        let method = req.split(' ').next().unwrap_or("").to_string();
        let reply = |code: &str, extra: &str| {
            format!(
                "SIP/2.0 {code}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=reg\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
                header(&req, "Via"),
                header(&req, "From"),
                header(&req, "To"),
                header(&req, "Call-ID"),
                header(&req, "CSeq")
            )
        };
        let expires: u32 = header(&req, "Expires").parse().unwrap_or(u32::MAX);
        let (answer, event) = match method.as_str() {
            "REGISTER" => {
                let auth = header(&req, "Authorization");
                if auth.is_empty() {
                    let ch =
                        format!("WWW-Authenticate: Digest realm=\"{DOMAIN}\", nonce=\"n0nce42\", algorithm=MD5\r\n");
                    (reply("401 Unauthorized", &ch), Seen::Challenged(expires))
                } else {
                    let uri = auth_param(&auth, "uri");
                    let ha1 = md5_hex(&format!("{NVR}:{DOMAIN}:{PASSWORD}"));
                    let ha2 = md5_hex(&format!("REGISTER:{uri}"));
                    let want = md5_hex(&format!("{ha1}:n0nce42:{ha2}"));
                    assert_eq!(auth_param(&auth, "response"), want, "the Digest answer without qop: {auth}");
                    assert_eq!(auth_param(&auth, "qop"), "", "{auth}");
                    assert_eq!(auth_param(&auth, "username"), NVR);
                    (reply("200 OK", "Expires: 2\r\n"), Seen::Registered(expires, Instant::now()))
                }
            }
            "MESSAGE" => {
                assert!(req.contains("<CmdType>Keepalive</CmdType>"), "{req}");
                let code = if refused { 200 } else { 403 };
                refused = true;
                (reply(if code == 200 { "200 OK" } else { "403 Forbidden" }, ""), Seen::Keepalive(code))
            }
            m => panic!("unexpected {m}"),
        };
        seen.lock().unwrap().push(event);
        sock.send_to(answer.as_bytes(), from).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_reregisters_before_expiry_and_when_a_keepalive_is_refused() {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut dc = GbDeviceConfig::new(sock.local_addr().unwrap(), SRV, DOMAIN, NVR, PASSWORD);
    dc.local_ip = Some(LOCALHOST);
    dc.keepalive_interval = Duration::from_millis(400);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let task = tokio::spawn(registrar(sock, seen.clone()));
    let sim = GbDeviceSim::start(dc).await.unwrap();
    let registered = |seen: &[Seen]| seen.iter().filter(|s| matches!(s, Seen::Registered(3600, _))).count();

    // Registered; the first keepalive refused (403) → registered again at once; then renewed
    // before the 2 s it was granted run out.
    until(10, "three registrations", async || (registered(&seen.lock().unwrap()) >= 3).then_some(())).await;
    let s = seen.lock().unwrap().clone();
    let at: Vec<Instant> =
        s.iter().filter_map(|e| if let Seen::Registered(_, t) = e { Some(*t) } else { None }).collect();
    let refused = s.iter().position(|e| *e == Seen::Keepalive(403)).expect("a keepalive, refused");
    let second = s.iter().enumerate().filter(|(_, e)| matches!(e, Seen::Registered(..))).nth(1).unwrap().0;
    assert!(second > refused, "registered again after the refusal: {s:?}");
    assert!(at[1] - at[0] < Duration::from_secs(1), "at once after the refusal: {s:?}");
    assert!(at[2] - at[1] < Duration::from_secs(2), "renewed before the 2 s granted ran out: {s:?}");
    assert!(matches!(s[0], Seen::Challenged(3600)), "{s:?}");
    assert!(sim.stats().registered && sim.stats().registrations >= 3, "{:?}", sim.stats());
    until(5, "a keepalive answered", async || (sim.stats().keepalives_answered > 0).then_some(())).await;

    // stop(): REGISTER with Expires: 0, challenged and answered too.
    sim.stop().await.expect("unregistered");
    let s = seen.lock().unwrap().clone();
    assert!(s.iter().any(|e| matches!(e, Seen::Registered(0, _))), "{s:?}");
    task.abort();
}

/// `tianwang sim --gb28181-platform …`: the NVR from the command line registers with the
/// password from the environment, and unregisters on SIGINT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tianwang_sim_runs_an_nvr_from_the_command_line() {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let platform = sock.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let task = tokio::spawn(registrar(sock, seen.clone()));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tianwang"))
        .args(["sim", "--gb28181-platform", &platform, "--gb28181-platform-id", SRV, "--gb28181-domain", DOMAIN])
        .args(["--gb28181-device", NVR, "--gb28181-password-env", "SIM_NVR_PW", "--gb28181-channels", "3"])
        .env("SIM_NVR_PW", PASSWORD)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tianwang sim");
    until(20, "the registration", async || {
        seen.lock().unwrap().iter().any(|e| matches!(e, Seen::Registered(3600, _))).then_some(())
    })
    .await;
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || {
        let st = child.wait();
        let mut out = String::new();
        use std::io::Read;
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        (st, out)
    })
    .await
    .unwrap();
    let (st, out) = status;
    assert!(st.unwrap().success(), "{out}");
    assert!(out.contains(&format!("GB/T 28181 NVR {NVR} with 3 channels")), "{out}");
    let s = seen.lock().unwrap().clone();
    assert!(s.iter().any(|e| matches!(e, Seen::Registered(0, _))), "unregistered on SIGINT: {s:?}");
    task.abort();
}
