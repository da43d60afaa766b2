//! Property-based fuzzing (proptest) of everything that reads what a user, a file or a camera
//! hands us: the configuration loader, the GeoJSON, CSV and OSM PBF importers, the RTSP
//! demultiplexer, SDP and Digest parsers, the RTP keyframe assembler, the event decoder, plates
//! and watchlist entries, GB/T 28181 MANSCDP bodies (UTF-8 and GBK) and SIP Digest answers, ONVIF
//! event notifications and device service addresses.
//! Inputs are real files of the project (the demo city, the Helsinki extract, a recorded RTSP
//! exchange) and typical messages mutated byte by byte, and arbitrary bytes; the property is
//! always the same: an answer (a value or a clear error), never a panic, and memory bounded where
//! a camera controls it.
//!
//! `make test` runs `TIANWANG_FUZZ_CASES` (default 256) cases per target; `make fuzz` many more.
//! Failures proptest finds are kept in `tests/fuzz.proptest-regressions` and replayed first on
//! every run (the regression corpus, committed).

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

fn cases() -> u32 {
    std::env::var("TIANWANG_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

fn config() -> Config {
    Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("tests/fuzz.proptest-regressions"))),
        ..Config::default()
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One edit of a seed input: at a position (a fraction of its length), replace a byte, insert
/// bytes, delete a run, or duplicate a run (structure-aware enough to reach deep into parsers
/// while staying close to valid input).
#[derive(Debug, Clone)]
enum Edit {
    Set(f64, u8),
    Insert(f64, Vec<u8>),
    Delete(f64, usize),
    Repeat(f64, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to text formats, and any byte.
    let interesting = prop_oneof![
        Just(b'"'),
        Just(b'\n'),
        Just(b'='),
        Just(b'['),
        Just(b']'),
        Just(b'{'),
        Just(b'}'),
        Just(b','),
        Just(b':'),
        Just(b'-'),
        Just(b'0'),
        Just(b'9'),
        Just(0u8),
        Just(0xffu8),
        any::<u8>()
    ];
    prop_oneof![
        (0.0..1.0f64, interesting).prop_map(|(p, b)| Edit::Set(p, b)),
        (0.0..1.0f64, prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(p, b)| Edit::Insert(p, b)),
        (0.0..1.0f64, 1usize..64).prop_map(|(p, n)| Edit::Delete(p, n)),
        (0.0..1.0f64, 1usize..256, 1usize..8).prop_map(|(p, n, k)| Edit::Repeat(p, n, k)),
    ]
}

fn mutate(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for e in edits {
        let at = |p: f64, len: usize| ((p * len as f64) as usize).min(len);
        match e {
            Edit::Set(p, v) => {
                if !b.is_empty() {
                    let i = at(*p, b.len() - 1);
                    b[i] = *v;
                }
            }
            Edit::Insert(p, v) => {
                let i = at(*p, b.len());
                b.splice(i..i, v.iter().copied());
            }
            Edit::Delete(p, n) => {
                let i = at(*p, b.len());
                let j = (i + n).min(b.len());
                b.drain(i..j);
            }
            Edit::Repeat(p, n, k) => {
                let i = at(*p, b.len());
                let j = (i + n).min(b.len());
                let run = b[i..j].to_vec();
                for _ in 0..*k {
                    b.splice(j..j, run.iter().copied());
                }
            }
        }
    }
    b
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(edit(), 1..8)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The demo city's configuration with one of its files mutated: loads, or fails with errors that
/// each name a file and say something.
#[test]
fn config_loader() {
    let demo = root().join("camera-configs/demo");
    let files: Vec<(String, Vec<u8>)> =
        ["site.toml", "streets.toml", "checkpoints.toml", "compounds.toml", "entrances.toml"]
            .iter()
            .map(|f| (f.to_string(), std::fs::read(demo.join(f)).unwrap()))
            .collect();
    let map_dir = demo.join("map");
    proptest!(config(), |(which in 0..5usize, e in edits())| {
        let d = tempfile::tempdir().unwrap();
        for (i, (name, bytes)) in files.iter().enumerate() {
            let b = if i == which { mutate(bytes, &e) } else { bytes.clone() };
            write(d.path(), name, &b);
        }
        // The map files the site names, as they are.
        let map = d.path().join("map");
        std::fs::create_dir_all(&map).unwrap();
        for f in ["roads.geojson", "entrances.geojson"] {
            std::fs::copy(map_dir.join(f), map.join(f)).unwrap();
        }
        if let Err(errs) = tianwang::city::load_dir(d.path()) {
            prop_assert!(!errs.0.is_empty());
            let text = errs.to_string();
            prop_assert!(!text.trim().is_empty());
        }
    });
}

/// Roads and entrances as GeoJSON, mutated; and any text as every GeoJSON importer.
#[test]
fn geojson_importers() {
    use tianwang::geo::import::geojson as g;
    let roads = std::fs::read(root().join("camera-configs/demo/map/roads.geojson")).unwrap();
    let entrances = std::fs::read(root().join("camera-configs/demo/map/entrances.geojson")).unwrap();
    proptest!(config(), |(e in edits(), which in 0..2usize, text in ".{0,200}")| {
        let d = tempfile::tempdir().unwrap();
        let seed = if which == 0 { &roads } else { &entrances };
        let p = write(d.path(), "m.geojson", &mutate(seed, &e));
        let _ = g::read_roads_geojson(&p);
        let _ = g::read_entrances_geojson(&p);
        let _ = g::read_cells_geojson(&p);
        let _ = g::read_cameras_geojson(&p);
        let q = write(d.path(), "t.geojson", text.as_bytes());
        let _ = g::read_roads_geojson(&q);
        let _ = g::read_cameras_geojson(&q);
    });
}

/// Cameras as CSV, mutated (the importer's own example with every column).
#[test]
fn csv_importer() {
    let seed = "\u{feff}id,lon,lat,name,bearing_deg,hfov_deg,resolution,mounting_height_m,kind,owner,grid_cell\n\
        c1,113.6,34.7,Gate,90,60,1920x1080,6,checkpoint,public,g1\n\
        c2,113.61,34.71,\"North, 2\",180.5,90,2560x1440,4.5,street,enterprise,\n\
        c3,113.62,34.72,Yard,0,100,1280x720,3,compound,residents,g2\n"
        .as_bytes()
        .to_vec();
    proptest!(config(), |(e in edits())| {
        let d = tempfile::tempdir().unwrap();
        let bytes = mutate(&seed, &e);
        let p = write(d.path(), "c.csv", &bytes);
        match tianwang::geo::import::csv::read_cameras_csv(&p) {
            // A row accepted or rejected (with its reason) for each record: never more than lines (CR
            // alone ends a record too).
            Ok(batch) => prop_assert!(batch.accepted.len() + batch.rejected.len() <= bytes.split(|b| *b == b'\n' || *b == b'\r').count()),
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
    });
}

/// The Helsinki OSM extract with a few bytes changed (a corrupt download), and its first blocks
/// alone (a cut one): an import or an error, never a panic.
#[test]
fn osm_pbf_importer() {
    let full = std::fs::read(root().join("data/fetched/Helsinki.osm.pbf"))
        .expect("data/fetched/Helsinki.osm.pbf: run `make test` (its setup fetches the extract)");
    // The header block and the first data blocks keep each case short.
    let seed = full[..full.len().min(64 * 1024)].to_vec();
    let cfg = Config { cases: cases().div_ceil(4), ..config() };
    proptest!(cfg, |(e in prop::collection::vec(edit(), 1..4))| {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "x.osm.pbf", &mutate(&seed, &e));
        let _ = tianwang::geo::import::osm::read_osm(&p, &mut |_| {});
    });
}

/// A one-connection RTSP server on a free port: each of `answers` follows one request (read up
/// to its blank line), then `stream` goes out unasked (interleaved RTP). Returns its URL and the
/// thread serving it.
fn scripted_rtsp(answers: Vec<Vec<u8>>, stream: Vec<u8>) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("rtsp://127.0.0.1:{}/live", listener.local_addr().unwrap().port());
    let server = std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else { return };
        let mut r = BufReader::new(s.try_clone().unwrap());
        for reply in &answers {
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if line == "\r\n" {
                    break;
                }
            }
            if s.write_all(reply).is_err() {
                return;
            }
        }
        let _ = s.write_all(&stream);
    });
    (url, server)
}

/// A recorded exchange with a camera (DESCRIBE with SDP, SETUP, PLAY, interleaved RTP), its
/// answers mutated, played to the `health` client (retina) by a loopback server: it opens or
/// fails with an error, and reads packets or fails, never panics, and no error carries the
/// password. Fewer cases than the pure parsers: each is a connection.
#[test]
fn rtsp_client_against_mutated_answers() {
    use tianwang::ingest::rtsp::Client;
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
               a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0IAKeKQFAe2AtwEBAaQeJEV,aM48gA==\r\na=control:track1\r\n";
    let answers = [
        format!("RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Base: rtsp://127.0.0.1/live/\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len()),
        "RTSP/1.0 200 OK\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 12345678;timeout=60\r\n\r\n".to_string(),
        "RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: 12345678\r\nRTP-Info: url=rtsp://127.0.0.1/live/track1;seq=0;rtptime=0\r\n\r\n".to_string(),
    ];
    let mut packets = Vec::new();
    for i in 0u16..4 {
        let mut rtp = vec![0x80, 0x60 | if i == 3 { 0x80 } else { 0 }];
        rtp.extend_from_slice(&i.to_be_bytes());
        rtp.extend_from_slice(&[0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef]);
        rtp.extend_from_slice(&[0x7c, [0x85, 0x05, 0x05, 0x45][usize::from(i)]]);
        rtp.extend_from_slice(&[0xaa; 40]);
        packets.extend_from_slice(&[b'$', 0]);
        packets.extend_from_slice(&(rtp.len() as u16).to_be_bytes());
        packets.extend_from_slice(&rtp);
    }
    let cfg = Config { cases: (cases() / 8).max(8), ..config() };
    proptest!(cfg, |(which in 0..4usize, e in edits())| {
        let mut replies: Vec<Vec<u8>> = answers.iter().map(|a| a.as_bytes().to_vec()).collect();
        replies.push(packets.clone());
        replies[which] = mutate(&replies[which], &e);
        let stream = replies.pop().unwrap();
        let (url, server) = scripted_rtsp(replies, stream);
        let timeout = std::time::Duration::from_millis(300);
        match Client::open(&url, Some("admin"), Some("s3cret-Fuzz"), true, timeout) {
            Ok(mut c) => {
                for _ in 0..3 {
                    match c.poll(0, |p| assert!(p.len() >= 12)) {
                        Ok(_) => {}
                        Err(e) => {
                            prop_assert!(!e.to_string().contains("s3cret-Fuzz"));
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                let text = e.to_string();
                prop_assert!(!text.is_empty() && !text.contains("s3cret-Fuzz"), "{}", text);
            }
        }
        server.join().unwrap();
    });
}

/// The answer CI's fuzzing found: an SDP with a line that is not `key=value` followed by a second
/// `v=` line makes the SDP parser under retina (`sdp-types` 0.1.8) assert. The client answers with
/// an error naming DESCRIBE, and the same client opens the same camera once its SDP is whole.
#[test]
fn rtsp_client_survives_an_sdp_that_trips_its_parser() {
    use tianwang::ingest::rtsp::Client;
    let serve = |sdp: &str| {
        let replies = [
            format!("RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Base: rtsp://127.0.0.1/live/\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len()),
            "RTSP/1.0 200 OK\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 12345678;timeout=60\r\n\r\n".to_string(),
            "RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: 12345678\r\n\r\n".to_string(),
        ];
        scripted_rtsp(replies.iter().map(|r| r.as_bytes().to_vec()).collect(), Vec::new())
    };
    let media = "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
                 a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0IAKeKQFAe2AtwEBAaQeJEV,aM48gA==\r\na=control:track1\r\n";
    let timeout = std::time::Duration::from_secs(5);
    let (url, server) = serve(&format!("v=0\r\ns=cam\r\nnot a line\r\nv=0\r\n{media}"));
    let err = Client::open(&url, Some("admin"), Some("s3cret-Fuzz"), true, timeout)
        .err()
        .expect("a broken SDP opens no session");
    let text = err.to_string();
    assert!(text.contains("DESCRIBE") && text.contains("malformed") && !text.contains("s3cret-Fuzz"), "{text}");
    server.join().unwrap();
    let (url, server) = serve(&format!("v=0\r\ns=cam\r\nt=0 0\r\n{media}"));
    let client = Client::open(&url, Some("admin"), Some("s3cret-Fuzz"), true, timeout).expect("a whole SDP opens");
    drop(client);
    server.join().unwrap();
}

/// Any answer head to the Basic guard's DESCRIBE: an offer or an error, never a panic.
#[test]
fn rtsp_sign_in_offer() {
    use tianwang::ingest::rtsp::offer_of;
    let seed = "RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Basic realm=\"x\"\r\n\
                WWW-Authenticate: Digest realm=\"IP Camera(C1234)\", nonce=\"a1b2c3\", qop=\"auth\", algorithm=SHA-256";
    proptest!(config(), |(e in edits(), h in ".{0,200}")| {
        let head = String::from_utf8_lossy(&mutate(seed.as_bytes(), &e)).into_owned();
        let _ = offer_of(&head);
        let _ = offer_of(&h);
    });
}

/// Any RTP packets into the keyframe assembler: it never holds more than its bound plus one
/// packet, and says so when a camera sends more.
#[test]
fn rtp_keyframe_assembler() {
    use tianwang::ingest::rtp::{KeyframeAssembler, MAX_ACCESS_UNIT};
    use tianwang::ingest::rtsp::VideoCodec;
    let packet = (
        any::<bool>(),
        any::<u16>(),
        0u32..4,
        prop_oneof![
            Just(vec![0x65u8]),
            Just(vec![0x7c, 0x85]),
            Just(vec![0x7c, 0x45]),
            Just(vec![0x18]),
            Just(vec![0x62, 0x01, 0x93]),
            Just(vec![0x26, 0x01]),
            // Annex B where one NAL unit belongs: start codes inside, or in front.
            Just(vec![0x67, 0, 0, 1, 0x65]),
            Just(vec![0, 0, 0, 1, 0x65, 0, 0, 1])
        ],
        prop::collection::vec(any::<u8>(), 0..64),
    );
    proptest!(config(), |(h265 in any::<bool>(), pkts in prop::collection::vec(packet, 1..200), garbage in prop::collection::vec(any::<u8>(), 0..40))| {
        let codec = if h265 { VideoCodec::H265 } else { VideoCodec::H264 };
        let mut a = KeyframeAssembler::new(codec, 96, &[]);
        let _ = a.push(&garbage, true);
        for (marker, seq, ts, head, body) in pkts {
            let mut rtp = vec![0x80, 96 | if marker { 0x80 } else { 0 }];
            rtp.extend_from_slice(&seq.to_be_bytes());
            rtp.extend_from_slice(&ts.to_be_bytes());
            rtp.extend_from_slice(&[1, 2, 3, 4]);
            rtp.extend_from_slice(&head);
            rtp.extend_from_slice(&body);
            let (_, out) = a.push(&rtp, true);
            prop_assert!(a.held() <= MAX_ACCESS_UNIT + rtp.len());
            if let Some(au) = out {
                prop_assert!(au.len() <= MAX_ACCESS_UNIT + 4096);
            }
        }
    });
}

/// Any kind and payload into the event contract's decoder: an event or a typed error.
#[test]
fn event_decoder() {
    let kinds = [
        "camera_status",
        "quality_fault",
        "quality_cleared",
        "motion",
        "passage",
        "watchlist_hit",
        "ring_crossing",
        "ring_opened",
        "ring_closed",
        "alarm",
        "work_order",
        "nonsense",
    ];
    let seed = r#"{"camera_id":"c1","passage_id":7,"plate_no":"京A12345","at_ms":1780000000000,"zone":"z","boxes":[[0,0,1,1]],"check":"blur","measures":{"mean_luma":3.5},"from":"online","to":"offline","reason":"r"}"#;
    proptest!(config(), |(k in 0..kinds.len(), e in edits(), text in ".{0,80}")| {
        let payload = String::from_utf8_lossy(&mutate(seed.as_bytes(), &e)).into_owned();
        let _ = tianwang::events::contract::Event::decode(kinds[k], &payload);
        let _ = tianwang::events::contract::Event::decode(kinds[k], &text);
    });
}

/// Any text as a plate and as a watchlist entry: normalised, checked, parsed, never a panic.
#[test]
fn plates_and_watchlist_entries() {
    use tianwang::detect::watchlist::{MatchKind, WatchlistInput};
    proptest!(config(), |(p in "[京沪粤A-Z0-9学挂警使领*? ]{0,12}|.{0,24}", kind in 0..3usize, d in proptest::option::of(-5.0..50.0f64), from in proptest::option::of(any::<i64>()), until in proptest::option::of(any::<i64>()))| {
        let n = tianwang::plate::normalise(&p);
        let _ = tianwang::plate::check(&n);
        let input = WatchlistInput {
            pattern: p.clone(),
            match_kind: Some([MatchKind::Exact, MatchKind::Wildcard, MatchKind::Fuzzy][kind]),
            max_distance: d,
            reason: "fuzz".into(),
            priority: None,
            valid_from_ms: from,
            valid_until_ms: until,
            owner: Some(p.clone()),
        };
        // An entry that parses is one a client can send again: the same answer twice.
        let first = input.parse(1_780_000_000_000).map_err(|e| e.to_string());
        let again = input.parse(1_780_000_000_000).map_err(|e| e.to_string());
        prop_assert_eq!(first.is_ok(), again.is_ok());
    });
}

mod common;

/// Every operation of the live server's OpenAPI document with fuzzed path parameters, query
/// strings and JSON bodies, as an admin: never a 5xx, and every error is the project's JSON error
/// body. (Schemathesis does the same from the schema's side in tests/schemathesis.rs.)
#[test]
fn api_paths_queries_and_bodies() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let db = rt.block_on(common::TestDb::new(common::Engine::Sqlite));
    let app = rt.block_on(common::TestApp::spawn(&common::demo_config(), &db));
    let doc: serde_json::Value = rt.block_on(async {
        app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap()
    });
    let mut ops: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                ops.push((method.to_string(), path.clone()));
            }
        }
    }
    assert!(ops.len() > 40, "the document lists {} operations", ops.len());
    let value = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
        ".{0,24}".prop_map(serde_json::Value::from),
    ];
    let body = value.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("pattern".to_string()),
                    Just("kind".to_string()),
                    Just("camera_id".to_string()),
                    Just("at_ms".to_string()),
                    Just("reason".to_string()),
                    Just("note".to_string()),
                    Just("to".to_string()),
                    Just("plate_no".to_string()),
                    Just("pass_time_ms".to_string()),
                    "[a-z_]{1,12}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    let segment = prop_oneof![
        Just("1".to_string()),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("9223372036854775807".to_string()),
        Just("99999999999999999999".to_string()),
        Just("cam-st-01".to_string()),
        Just("%C3%A9".to_string()),
        Just("%FF".to_string()),
        Just("..".to_string()),
        "[a-zA-Z0-9_.~-]{1,16}",
    ];
    let query = prop::collection::vec(
        (
            prop_oneof![
                Just("cursor"),
                Just("limit"),
                Just("after"),
                Just("kind"),
                Just("status"),
                Just("bbox"),
                Just("at_ms"),
                Just("from_ms"),
                Just("to_ms"),
                Just("plate"),
                Just("camera"),
                Just("level"),
                Just("lon"),
                Just("lat")
            ],
            prop_oneof![
                Just("".to_string()),
                Just("-1".to_string()),
                Just("1e309".to_string()),
                Just("NaN".to_string()),
                Just("9223372036854775807".to_string()),
                Just("a%C3%A9b".to_string()),
                Just("1,2,3,4".to_string()),
                Just("*".to_string()),
                "[ -~]{0,12}".prop_map(|s| s.replace(['&', '#', '%', '+'], "")),
            ],
        ),
        0..4,
    );
    let cfg = Config { cases: cases() * 4, ..config() };
    proptest!(cfg, |(op in 0..ops.len(), seg in segment, q in query, b in body)| {
        let (method, template) = &ops[op];
        // Every `{param}` (and `{*rest}`) gets the fuzzed segment.
        let mut path = String::new();
        let mut rest = template.as_str();
        while let Some(i) = rest.find('{') {
            path.push_str(&rest[..i]);
            let j = rest[i..].find('}').map_or(rest.len(), |j| i + j + 1);
            path.push_str(&seg);
            rest = &rest[j..];
        }
        path.push_str(rest);
        if !q.is_empty() {
            path.push('?');
            path.push_str(&q.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"));
        }
        let url = app.url(&path);
        let (status, ctype, text) = rt.block_on(async {
            let req = match method.as_str() {
                "get" => app.client.get(&url),
                "post" => app.client.post(&url).json(&b),
                "put" => app.client.put(&url).json(&b),
                "patch" => app.client.patch(&url).json(&b),
                _ => app.client.delete(&url),
            };
            let resp = req.timeout(std::time::Duration::from_secs(20)).send().await.unwrap();
            let status = resp.status().as_u16();
            let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            // A live stream (SSE) never ends: its head is the answer.
            let text = if ctype.starts_with("text/event-stream") { String::new() } else { resp.text().await.unwrap_or_default() };
            (status, ctype, text)
        });
        // 503 is an answer by design where this node does not run a part (ingest on an API-only
        // node), and says so; any other 5xx is a failure.
        let unavailable = status == 503 && text.contains("\"kind\":\"unavailable\"");
        prop_assert!(status < 500 || unavailable, "{} {} → {}: {}", method, path, status, text);
        if status >= 400 {
            prop_assert!(ctype.starts_with("application/json"), "{} {} → {} {}: {}", method, path, status, ctype, text);
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            prop_assert!(v["error"].is_object() || v["error"].is_string(), "{} {} → {}: {}", method, path, status, text);
        }
    });
    rt.block_on(app.stop());
}

#[test]
fn gb28181_manscdp_and_digest() {
    use tianwang::gb28181::digest::{Registrar, parse_answer};
    use tianwang::gb28181::manscdp;
    let catalog = "<?xml version=\"1.0\" encoding=\"GB2312\"?>\n<Response><CmdType>Catalog</CmdType><SN>7</SN>\
        <DeviceID>41010000001180000001</DeviceID><SumNum>2</SumNum><DeviceList Num=\"2\"><Item>\
        <DeviceID>41010300001320000001</DeviceID><Name>二七广场</Name><CivilCode>410103</CivilCode><Status>ON</Status>\
        <Longitude>113.66</Longitude><Latitude>34.75</Latitude></Item><Item><DeviceID>41010300001210000002</DeviceID>\
        <Name>卡口</Name><Status>OFF</Status></Item></DeviceList></Response>";
    let (gbk, _, _) = encoding_rs::GBK.encode(catalog);
    let seeds: Vec<Vec<u8>> = vec![
        b"<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>41010000001180000001</DeviceID><Status>OK</Status></Notify>".to_vec(),
        catalog.as_bytes().to_vec(),
        gbk.into_owned(),
        b"<Notify><CmdType>Alarm</CmdType><SN>3</SN><DeviceID>41010000001340000001</DeviceID><AlarmPriority>1</AlarmPriority>\
          <AlarmMethod>2</AlarmMethod><Info><AlarmType>1</AlarmType></Info><Longitude>113.6</Longitude><Latitude>34.7</Latitude></Notify>"
            .to_vec(),
    ];
    let sdp = b"v=0\r\no=41010000001310000001 0 0 IN IP4 192.0.2.64\r\ns=Play\r\nc=IN IP4 192.0.2.64\r\nt=0 0\r\n\
                m=video 15060 TCP/RTP/AVP 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\na=setup:active\r\ny=0200000017\r\n";
    let registrar = Registrar::new("4101000000");
    let header = format!(
        "Digest username=\"41010000001180000001\",realm=\"4101000000\",nonce=\"{}\",uri=\"sip:41010000002000000001@4101000000\",\
         response=\"0123456789abcdef0123456789abcdef\",algorithm=MD5,qop=auth,nc=00000001,cnonce=\"x\"",
        registrar.nonce(1_000)
    );
    proptest!(config(), |(which in 0..seeds.len(), e in edits(), he in edits(), h in ".{0,160}")| {
        let _ = manscdp::parse(&mutate(&seeds[which], &e));
        // A device's SDP answer to our INVITE: read or refused with a sentence, never a panic.
        if let Ok(a) = tianwang::gb28181::media::parse_answer(&mutate(sdp, &he)) {
            prop_assert!(!a.encoding.is_empty());
        }
        for text in [String::from_utf8_lossy(&mutate(header.as_bytes(), &he)).into_owned(), h.clone(), format!("Digest {h}")] {
            if let Ok(a) = parse_answer(&text) {
                let _ = registrar.verify(&a, "REGISTER", "41010000001180000001", "pw", 2_000);
            }
        }
    });
}

/// A device's PullMessages answer, mutated: its notifications (motion read from each) and the
/// subscription's time left come out of whatever still parses as XML, never a panic; a device
/// service address in a camera entry is accepted only as `http://` without credentials.
#[test]
fn onvif_notifications_and_device_addresses() {
    use tianwang::onvif::events::{notifications, time_left};
    let pulled = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tev="http://www.onvif.org/ver10/events/wsdl" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:tns1="http://www.onvif.org/ver10/topics"><env:Body><tev:PullMessagesResponse><tev:CurrentTime>2026-12-06T07:40:00Z</tev:CurrentTime><tev:TerminationTime>2026-12-06T07:41:00.500+08:00</tev:TerminationTime><wsnt:NotificationMessage><wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tns1:RuleEngine/CellMotionDetector/Motion</wsnt:Topic><wsnt:Message><tt:Message UtcTime="2026-12-06T07:39:58Z" PropertyOperation="Changed"><tt:Source><tt:SimpleItem Name="Rule" Value="MyMotionDetectorRule"/></tt:Source><tt:Data><tt:SimpleItem Name="IsMotion" Value="true"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage><wsnt:NotificationMessage><wsnt:Topic>tns1:VideoSource/MotionAlarm</wsnt:Topic><wsnt:Message><tt:Message><tt:Data><tt:SimpleItem Name="State" Value="false"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage></tev:PullMessagesResponse></env:Body></env:Envelope>"#;
    let tev = "http://www.onvif.org/ver10/events/wsdl";
    proptest!(config(), |(e in edits(), h in ".{0,80}")| {
        let text = String::from_utf8_lossy(&mutate(pulled.as_bytes(), &e)).into_owned();
        if let Ok(doc) = roxmltree::Document::parse(&text) {
            for n in notifications(doc.root_element()) {
                let _ = n.motion();
            }
            let _ = time_left(doc.root_element(), tev);
        }
        for input in [h.clone(), format!("http://{h}"), format!("http://user:pw@{h}")] {
            if let Ok(url) = tianwang::config::onvif_device_url(&input) {
                let authority = url["http://".len()..].split(['/', '?', '#']).next().unwrap_or("");
                prop_assert!(url.starts_with("http://") && !authority.is_empty() && !authority.contains('@'), "{} → {}", input, url);
                prop_assert!(reqwest::Url::parse(&url).is_ok_and(|u| u.host_str().is_some() && u.password().is_none()), "{} → {}", input, url);
            }
        }
    });
}
