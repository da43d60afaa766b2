//! GB/T 28181 access against a peer we did not write: SIPp (Debian `sip-tester`) plays the device.
//! It registers with Digest (right and wrong password), sends a keepalive, answers our DeviceInfo
//! and Catalog queries (the catalog split over several MESSAGEs, out of order, one repeated),
//! then goes quiet: the device goes offline within the computed time and comes back with its next
//! keepalive. Malformed SIP and MANSCDP (bad headers, unreadable and oversized bodies, a GBK
//! catalog) get errors and never stop the server.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Engine, TestApp, TestDb, config_dir, until};
use tianwang::registry::Registry;

const SRV: &str = "41010000002000000001";
const DOMAIN: &str = "4101000000";
const NVR: &str = "41010000001180000001";
const PASSWORD: &str = "nvr-pass-1";
/// A second device, signalling over TCP.
const NVR2: &str = "41010000001180000002";

fn site() -> String {
    format!(
        "[site]\nname = \"gb\"\ntimezone = \"Asia/Shanghai\"\n\
         [[grid_cell]]\nid = \"410103\"\nname = \"二七区\"\nlevel = 1\n\
         [[grid_cell]]\nid = \"410102\"\nname = \"中原区\"\nlevel = 1\n\
         [gb28181]\nid = \"{SRV}\"\nlisten = \"127.0.0.1:0\"\nheartbeat_interval_s = 5\nheartbeat_count = 1\n\
         catalog_timeout_s = 2\ncatalog_subscribe_s = 0\n\
         [[gb28181_device]]\nid = \"{NVR}\"\nname = \"NVR 二七\"\npassword_file = \"nvr.secret\"\ngrid_cell = \"410102\"\n\
         [[gb28181_device]]\nid = \"{NVR2}\"\npassword_file = \"nvr.secret\"\n"
    )
}

/// A scenario from `tests/sipp` with its placeholders filled in, written into `dir`.
fn scenario(dir: &Path, name: &str, fill: &[(&str, &str)], drop_keepalive: bool) -> String {
    let mut text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp").join(name)).expect("scenario");
    for (k, v) in fill {
        text = text.replace(k, v);
    }
    if drop_keepalive {
        let a = text.find("<!--KEEPALIVE-->").expect("marks");
        let b = text.find("<!--/KEEPALIVE-->").expect("marks");
        text.replace_range(a..b, "");
    }
    let path = dir.join(format!("{}-{name}", fill.iter().map(|(_, v)| *v).collect::<Vec<_>>().join("-")));
    std::fs::write(&path, text).expect("write scenario");
    path.display().to_string()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// SIPp with the device's globals; `remote` for a UAC scenario.
fn sipp(dir: &Path, file: &str, port: u16, dev: &str, extra: &[&str], remote: Option<SocketAddr>) -> Command {
    let mut c = Command::new("sipp");
    let errors = dir.join(format!("errors-{port}.log"));
    c.args(["-sf", file, "-i", "127.0.0.1", "-p", &port.to_string(), "-m"])
        .arg(if remote.is_some() { "1" } else { "2" })
        .args(["-set", "dev", dev, "-set", "srv", SRV, "-set", "domain", DOMAIN])
        .args(["-timeout", "30s", "-timeout_error", "-trace_err", "-error_file"])
        .arg(&errors)
        .args(["-trace_msg", "-message_file"])
        .arg(dir.join(format!("messages-{port}.log")))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(r) = remote {
        c.arg(r.to_string());
    }
    c
}

fn run_ok(mut c: Command, what: &str, dir: &Path) {
    let out = c.output().expect("sipp runs (Debian package sip-tester; scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{what}: sipp {:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        errors(dir)
    );
}

fn errors(dir: &Path) -> String {
    let mut all = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("errors-") || name.starts_with("messages-") {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let tail: String = text.chars().rev().take(3000).collect::<Vec<_>>().into_iter().rev().collect();
            all.push_str(&format!("--- {name}\n{tail}\n"));
        }
    }
    all
}

async fn device(reg: &Registry) -> Option<tianwang::registry::GbDeviceRow> {
    reg.gb_devices().await.unwrap().into_iter().find(|d| d.id == NVR)
}

async fn statuses(reg: &Registry) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for id in reg.gb_channels(NVR).await.unwrap() {
        let c = reg.get_camera(&id).await.unwrap().unwrap();
        out.push((c.id, c.status, c.status_reason));
    }
    out
}

async fn devices_register_keepalive_answer_a_split_catalog_and_go_offline(engine: Engine) {
    let db = TestDb::new(engine).await;
    let cfg = config_dir(&[("site.toml", &site()), ("nvr.secret", PASSWORD)]);
    let app = TestApp::spawn_live(cfg.path(), &db).await;
    let gb = app.gb28181.clone().expect("the GB/T 28181 server runs");
    let server = gb.local_addr();
    let reg = app.registry.clone();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();

    // The device's query port: SIPp answering DeviceInfo and Catalog.
    let contact_port = free_udp_port();
    let answers = scenario(w, "catalog.xml", &[], false);
    let mut uas = sipp(w, &answers, contact_port, NVR, &[], None).spawn().expect("sipp");

    // A wrong password: challenged, then refused; nothing stored.
    let wrong = scenario(w, "register.xml", &[("@REGISTER_ANSWER@", "403")], true);
    let port = free_udp_port();
    let cp = contact_port.to_string();
    run_ok(
        sipp(
            w,
            &wrong,
            port,
            NVR,
            &["-au", NVR, "-ap", "not-the-password", "-set", "contact_port", &cp, "-set", "expires", "3600"],
            Some(server),
        ),
        "wrong password",
        w,
    );
    assert!(device(&reg).await.is_none(), "a refused device is not stored");
    // A keepalive from a device that is not registered: told to register.
    let ka403 = scenario(w, "keepalive.xml", &[("@KEEPALIVE_ANSWER@", "403")], false);
    run_ok(sipp(w, &ka403, free_udp_port(), NVR, &[], Some(server)), "keepalive before registering", w);

    // The right password: registered, one keepalive.
    let right = scenario(w, "register.xml", &[("@REGISTER_ANSWER@", "200")], false);
    run_ok(
        sipp(
            w,
            &right,
            free_udp_port(),
            NVR,
            &["-au", NVR, "-ap", PASSWORD, "-set", "contact_port", &cp, "-set", "expires", "3600"],
            Some(server),
        ),
        "register",
        w,
    );
    let st = tokio::task::spawn_blocking(move || uas.wait()).await.unwrap().unwrap();
    assert!(st.success(), "the device answered both queries: {st:?}\n{}", errors(w));

    // The catalog: nine items over four MESSAGEs; eight video channels stored.
    let d = until(10, "the catalog", async || device(&reg).await.filter(|d| d.catalog_at_ms.is_some())).await;
    assert_eq!(d.catalog_note, "complete: 8 video channels, 1 other items");
    assert_eq!((d.manufacturer.as_str(), d.model.as_str(), d.firmware.as_str()), ("SIPp Devices", "NVR-8", "V1.2.3"));
    assert_eq!((d.channels, d.transport.as_str(), d.name.as_str()), (8, "udp", "NVR 二七"));
    let cams = reg.gb_channels(NVR).await.unwrap();
    assert_eq!(cams.len(), 8);
    let cam = |id: &str| {
        let reg = reg.clone();
        let id = id.to_string();
        async move { reg.get_camera(&id).await.unwrap().expect("stored") }
    };
    let k1 = cam("41010300001210000001").await;
    assert_eq!((k1.kind.as_str(), k1.name.as_str()), ("checkpoint", "卡口 1"));
    assert_eq!((k1.lon, k1.lat), (113.6667, 34.7622));
    assert_eq!(k1.grid_cell_id.as_deref(), Some("410103"), "civil code 41010301 → cell 410103");
    assert_eq!(
        cam("41010300001320000003").await.grid_cell_id.as_deref(),
        Some("410102"),
        "no cell for 99999999: the device's"
    );
    assert_eq!(cam("41010300001320000004").await.kind.as_str(), "street");
    assert!(reg.get_camera("41010300002150000001").await.unwrap().is_none(), "a business group is not a camera");

    // Statuses through the health keeper: online, but the channel the device says is OFF.
    let s = until(10, "channel statuses", async || {
        let s = statuses(&reg).await;
        s.iter().all(|(_, st, _)| st != "unknown").then_some(s)
    })
    .await;
    for (id, st, why) in &s {
        if id == "41010300001310000007" {
            assert_eq!(
                (st.as_str(), why.as_str()),
                ("offline", &*format!("channel reported OFF by GB/T 28181 device {NVR}"))
            );
        } else {
            assert_eq!(st, "online", "{id}: {why}");
        }
    }

    // Silence: offline at the last keepalive + 5 s × 1, not before, and the channels follow.
    let d = until(15, "offline", async || device(&reg).await.filter(|d| !d.online)).await;
    assert_eq!(d.status_reason, "no keepalive for 5 s (1 × 5 s)");
    let s = until(5, "channels offline", async || {
        let s = statuses(&reg).await;
        s.iter().all(|(_, st, _)| st == "offline").then_some(s)
    })
    .await;
    let cam5 = cam("41010300001320000005").await;
    assert!(s.iter().any(|(_, _, why)| why.contains("no keepalive for 5 s")), "{s:?}");
    let late = cam5.status_since_ms - d.last_alive_ms;
    assert!(
        (5_000..8_000).contains(&late),
        "offline {late} ms after the last keepalive: never before 5,000, then within the 250 ms tick and the write"
    );

    // The next keepalive brings it back.
    let ka = scenario(w, "keepalive.xml", &[("@KEEPALIVE_ANSWER@", "200")], false);
    run_ok(sipp(w, &ka, free_udp_port(), NVR, &[], Some(server)), "keepalive", w);
    until(5, "back online", async || device(&reg).await.filter(|d| d.online)).await;
    until(5, "channels back", async || {
        let s = statuses(&reg).await;
        (s.iter().filter(|(_, st, _)| st == "online").count() == 7).then_some(())
    })
    .await;

    // Registration and keepalive over TCP.
    let tcp = scenario(w, "register.xml", &[("@REGISTER_ANSWER@", "200")], false);
    run_ok(
        sipp(
            w,
            &tcp,
            free_udp_port(),
            NVR2,
            &["-t", "t1", "-au", NVR2, "-ap", PASSWORD, "-set", "contact_port", &cp, "-set", "expires", "600"],
            Some(server),
        ),
        "register over TCP",
        w,
    );
    let d2 = until(5, "the TCP device", async || {
        reg.gb_devices().await.unwrap().into_iter().find(|d| d.id == NVR2 && d.online)
    })
    .await;
    assert_eq!((d2.transport.as_str(), d2.online), ("tcp", true));
    assert!(d2.expires_at_ms - d2.registered_at_ms == 600_000, "the registration asked for: {d2:?}");

    malformed_input_gets_errors(server, &reg).await;
    alarms_become_alerts(server, &reg).await;
}

/// A device's alarm notification: one alert (a retransmission with the same SN folds into it).
async fn alarms_become_alerts(server: SocketAddr, reg: &Registry) {
    let body = "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify><CmdType>Alarm</CmdType><SN>501</SN>\
         <DeviceID>41010300001340000001</DeviceID><AlarmPriority>1</AlarmPriority><AlarmMethod>2</AlarmMethod>\
         <AlarmTime>2026-12-06T08:00:00</AlarmTime><AlarmDescription>银行柜台报警</AlarmDescription>\
         <Longitude>113.6667</Longitude><Latitude>34.7622</Latitude><Info><AlarmType>1</AlarmType></Info></Notify>";
    for _ in 0..2 {
        let r = over_tcp(server, "MESSAGE", NVR, body.as_bytes()).await;
        assert!(r.starts_with("SIP/2.0 200"), "{r}");
    }
    let a = until(10, "the alarm's alert", async || {
        reg.open_alert_by_key("alarm:gb28181:41010300001340000001").await.unwrap()
    })
    .await;
    assert!(a.title.contains("银行柜台报警") || a.detail.to_string().contains("银行柜台报警"), "{a:?}");
    assert_eq!(a.count, 1, "one SN, one alarm: {a:?}");
}

/// Raw SIP over UDP: what SIPp cannot be made to send wrong on purpose.
async fn malformed_input_gets_errors(server: SocketAddr, reg: &Registry) {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    let mut n = 0;
    let mut send = async |method: &str, from_user: &str, extra: &str, body: &[u8]| -> Option<String> {
        n += 1;
        let mut msg = format!(
            "{method} sip:{SRV}@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKraw{n}\r\n\
             From: <sip:{from_user}@{DOMAIN}>;tag=raw{n}\r\nTo: <sip:{SRV}@{DOMAIN}>\r\nCall-ID: raw-{n}@test\r\n\
             CSeq: {n} {method}\r\nMax-Forwards: 70\r\n{extra}Content-Type: Application/MANSCDP+xml\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        msg.extend_from_slice(body);
        sock.send_to(&msg, server).await.unwrap();
        let mut buf = vec![0u8; 65_536];
        match tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf)).await {
            Ok(Ok((len, _))) => Some(String::from_utf8_lossy(&buf[..len]).into_owned()),
            _ => None,
        }
    };
    let status = |r: &Option<String>| r.as_deref().and_then(|t| t.split(' ').nth(1)).unwrap_or("none").to_string();

    // Not XML, a missing DeviceID, a DTD: 400 with the reason in a Warning.
    let r = send("MESSAGE", NVR, "", b"<Notify><CmdType>Keepalive</Notify>").await;
    assert_eq!(status(&r), "400", "{r:?}");
    assert!(r.as_deref().unwrap().contains("body is not XML"), "{r:?}");
    let r = send("MESSAGE", NVR, "", b"<Notify><CmdType>Keepalive</CmdType></Notify>").await;
    assert!(r.as_deref().unwrap().contains("has no DeviceID"), "{r:?}");
    let bomb = b"<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x \"xxxxxxxx\"><!ENTITY y \"&x;&x;&x;&x;\">]><Notify>&y;</Notify>";
    assert_eq!(status(&send("MESSAGE", NVR, "", bomb).await), "400");
    // From that is not a GB id, an Authorization that is not Digest.
    assert_eq!(status(&send("MESSAGE", "alice", "", b"<Notify/>").await), "400");
    let r = send("REGISTER", NVR, "Authorization: Basic bnZyOnB3\r\nExpires: 3600\r\n", b"").await;
    assert_eq!(status(&r), "400", "{r:?}");
    // A device nobody configured (and no default password): refused before any challenge.
    assert_eq!(status(&send("REGISTER", "41010000001180000099", "Expires: 3600\r\n", b"").await), "403");
    // A large body: over UDP it is cut at the transport's 8 KB and refused saying so; over TCP a
    // 60 KB catalog page is read (its items capped) and answered.
    let mut big = format!(
        "<Response><CmdType>Catalog</CmdType><SN>77</SN><DeviceID>{NVR}</DeviceID><SumNum>100000</SumNum><DeviceList>"
    );
    while big.len() < 60_000 {
        big.push_str("<Item><DeviceID>x</DeviceID></Item>");
    }
    big.push_str("</DeviceList></Response>");
    let r = send("MESSAGE", NVR, "", &big.as_bytes()[..20_000]).await;
    assert_eq!(status(&r), "400", "{r:?}");
    assert!(r.as_deref().unwrap().contains("body cut short: Content-Length 20000"), "{r:?}");
    let r = over_tcp(server, "MESSAGE", NVR, big.as_bytes()).await;
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
    // Garbage: no answer is owed, and the server goes on.
    sock.send_to(b"\x00\xffNOT SIP AT ALL\r\n\r\n", server).await.unwrap();
    sock.send_to(b"MESSAGE sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n", server).await.unwrap();
    assert_eq!(status(&send("OPTIONS", NVR, "", b"").await), "200", "still answering");

    // A GBK-encoded catalog declared GB2312: decoded. Only one of its nine items arrives: stored
    // after catalog_timeout_s as incomplete, nothing removed.
    let text = format!(
        "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Response><CmdType>Catalog</CmdType><SN>90</SN><DeviceID>{NVR}</DeviceID>\
         <SumNum>9</SumNum><DeviceList Num=\"1\"><Item><DeviceID>41010300001320000008</DeviceID><Name>二七纪念塔北</Name>\
         <CivilCode>410103</CivilCode><Status>ON</Status></Item></DeviceList></Response>"
    );
    let (gbk, _, _) = encoding_rs::GBK.encode(&text);
    assert!(std::str::from_utf8(&gbk).is_err());
    assert_eq!(status(&send("MESSAGE", NVR, "", &gbk).await), "200");
    let d = until(10, "the partial catalog", async || {
        device(reg).await.filter(|d| d.catalog_note.starts_with("incomplete: 1 of 9 items"))
    })
    .await;
    assert_eq!(d.catalog_note, "incomplete: 1 of 9 items arrived within 2 s; 1 video channels stored, none removed");
    let c8 = reg.get_camera("41010300001320000008").await.unwrap().unwrap();
    let hist = reg.status_history("41010300001320000008", 20).await.unwrap();
    assert_eq!(c8.name, "二七纪念塔北", "{c8:?}\n{d:?}\n{hist:?}");
    assert_eq!(reg.gb_channels(NVR).await.unwrap().len(), 8, "nothing removed");
}

/// One request over TCP, its first response.
async fn over_tcp(server: SocketAddr, method: &str, from_user: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(server).await.unwrap();
    let me = s.local_addr().unwrap();
    // A transaction of its own each time (a repeated branch is a retransmission, answered from cache).
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut msg = format!(
        "{method} sip:{SRV}@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKtcp{n}\r\n\
         From: <sip:{from_user}@{DOMAIN}>;tag=tcp{n}\r\nTo: <sip:{SRV}@{DOMAIN}>\r\nCall-ID: tcp-{n}@test\r\n\
         CSeq: {n} {method}\r\nMax-Forwards: 70\r\nContent-Type: Application/MANSCDP+xml\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    msg.extend_from_slice(body);
    s.write_all(&msg).await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.expect("an answer over TCP").unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The stored registration survives a restart without every device turning offline at once.
async fn a_restart_keeps_devices_online_for_a_window(engine: Engine) {
    let db = TestDb::new(engine).await;
    let cfg = config_dir(&[("site.toml", &site()), ("nvr.secret", PASSWORD)]);
    let reg = Registry::connect(&db.url).await.unwrap();
    reg.migrate().await.unwrap();
    let now = tianwang::clock::SystemClock.now_ms();
    // Stored an hour ago: online, registered for two hours, last keepalive an hour old.
    reg.gb_registered(NVR, "NVR", "udp", "127.0.0.1:5999", now + 3_600_000, now - 3_600_000).await.unwrap();
    drop(reg);
    let started = Instant::now();
    let app = TestApp::spawn_live(cfg.path(), &db).await;
    let gb = app.gb28181.clone().unwrap();
    assert!(gb.is_online(NVR), "online after the restart");
    let d = until(15, "offline after the window", async || device(&app.registry).await.filter(|d| !d.online)).await;
    assert_eq!(d.status_reason, "no keepalive for 5 s (1 × 5 s)");
    assert!(started.elapsed() >= Duration::from_secs(5), "not before a full window from the restart");
}

use tianwang::clock::Clock as _;

on_both_engines!(
    devices_register_keepalive_answer_a_split_catalog_and_go_offline,
    a_restart_keeps_devices_online_for_a_window
);
