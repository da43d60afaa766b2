//! The event log carried over NATS JetStream (a private `nats-server` per test), against the log
//! in the registry it relays: what the readers get through their durable consumers is what the
//! registry holds, in order, once each; two relays at once (a hand-over) publish each event once
//! (`Nats-Msg-Id`); a re-published old message is skipped, a message deleted from the stream is
//! read from the registry; with NATS killed every read still answers from the registry, and the
//! relay catches up when NATS is back. Then the whole app on it: alarms raised exactly once
//! through JetStream, and while NATS is down.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use common::nats::Nats;
use common::{Engine, TestDb, config_dir};
use tianwang::events::jetstream::{JetStreamLog, JetStreamOptions};
use tianwang::events::{Alarm, Event, EventLog, Lane, Motion, NewEvent, Read, RingChange, SqlLog};
use tianwang::registry::Registry;
use tokio_util::sync::CancellationToken;

fn motion(i: i64) -> NewEvent {
    let m = Motion { camera_id: format!("cam{}", i % 5), zone: format!("z{}", i % 7), boxes: vec![] };
    NewEvent::new(1_780_000_000_000 + i, None, Event::Motion(m))
}

fn alarm(i: i64) -> NewEvent {
    let a = Alarm {
        alarm_id: format!("a{i}"),
        name: format!("alarm {i}"),
        lon: None,
        lat: None,
        seeing: vec![],
        grid_cell_id: None,
    };
    NewEvent::new(1_780_000_000_000 + i, Some(format!("alarm-{i}")), Event::Alarm(a))
}

fn ring(i: i64) -> NewEvent {
    let r = RingChange {
        ring_id: format!("r{}", i % 3),
        name: "ring".into(),
        level: 1,
        open: i % 2 == 0,
        down: vec![],
        leaks: vec![],
    };
    NewEvent::new(1_780_000_000_000 + i, None, Event::RingOpened(r))
}

/// A mix of every lane, `n` events from `from`.
fn mixed(from: i64, n: i64) -> Vec<NewEvent> {
    (from..from + n)
        .map(|i| match i % 4 {
            0 => alarm(i),
            1 => ring(i),
            _ => motion(i),
        })
        .collect()
}

struct Rig {
    registry: Registry,
    sql: SqlLog,
    js: Arc<JetStreamLog>,
    opts: JetStreamOptions,
    relay: CancellationToken,
    _db: TestDb,
}

async fn rig(nats: &Nats, engine: Engine) -> Rig {
    let db = TestDb::new(engine).await;
    let registry = Registry::open(&db.url).await.unwrap();
    let mut opts = JetStreamOptions::new(&nats.url());
    opts.stream = format!("T{}_EVENTS", rand::random::<u32>());
    let js = JetStreamLog::connect(registry.clone(), opts.clone()).await.unwrap();
    let relay = CancellationToken::new();
    let (_tx, active) = tokio::sync::watch::channel(true);
    let readers = Lane::ALL.iter().map(|l| format!("test.{}", l.as_str())).collect();
    let (j, r) = (js.clone(), relay.clone());
    tokio::spawn(async move {
        let _keep = _tx;
        j.relay(readers, active, r).await
    });
    Rig { sql: SqlLog::new(registry.clone()), registry, js, opts, relay, _db: db }
}

impl Rig {
    /// Waits until the relay has published everything the registry holds.
    async fn relayed(&self) {
        let head = self.sql.head().await.unwrap();
        let end = Instant::now() + Duration::from_secs(30);
        while self.js.stats().relayed_position < head {
            assert!(Instant::now() < end, "relay stuck at {:?} of {head}", self.js.stats());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything of `lane` after `after`, read as its reader does (in batches of `batch`,
    /// going on from the last position read), through the JetStream log.
    async fn read_all(&self, reader: &str, lane: Lane, after: i64, batch: u32) -> Vec<Read> {
        let mut out = Vec::new();
        let mut at = after;
        loop {
            let got = self.js.read(reader, lane, at, batch).await.unwrap();
            let Some(last) = got.last() else { break };
            at = match last {
                Ok(s) => s.position,
                Err(u) => u.position,
            };
            out.extend(got);
        }
        out
    }

    async fn sql_all(&self, lane: Lane, after: i64) -> Vec<Read> {
        self.sql.read("sql", lane, after, 100_000).await.unwrap()
    }

    async fn stream(&self, nats: &Nats) -> jetstream::stream::Stream {
        let client = async_nats::connect(nats.url()).await.unwrap();
        jetstream::new(client).get_stream(&self.opts.stream).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_get_through_jetstream_exactly_what_the_registry_holds() {
    let nats = Nats::start();
    let r = rig(&nats, Engine::Sqlite).await;
    r.js.append(&mixed(0, 400)).await.unwrap();
    r.relayed().await;
    let mut bulk_at = 0;
    for lane in Lane::ALL {
        let reader = format!("test.{}", lane.as_str());
        let got = r.read_all(&reader, lane, 0, 37).await;
        assert!(!got.is_empty());
        assert_eq!(got, r.sql_all(lane, 0).await, "{lane:?}");
        if lane == Lane::Bulk {
            bulk_at = got.last().unwrap().as_ref().unwrap().position;
        }
    }
    let st = r.js.stats();
    assert_eq!(st.reads_registry, 0, "{st:?}");
    assert!(st.reads_jetstream >= 3, "{st:?}");
    assert_eq!(st.relayed_events, 400, "{st:?}");

    // A reader that goes on where it was: only what came after. Another relay at once (a
    // hand-over between two nodes) publishes nothing twice.
    let second = JetStreamLog::connect(r.registry.clone(), r.opts.clone()).await.unwrap();
    let stop2 = CancellationToken::new();
    let (_tx2, active2) = tokio::sync::watch::channel(true);
    tokio::spawn(second.clone().relay(vec![], active2, stop2.clone()));
    let before_urgent = r.sql_all(Lane::Urgent, 0).await.last().unwrap().as_ref().unwrap().position;
    for k in 0..10 {
        r.js.append(&mixed(400 + k * 20, 20)).await.unwrap();
    }
    r.relayed().await;
    let end = Instant::now() + Duration::from_secs(30);
    while second.stats().relayed_position < r.sql.head().await.unwrap() {
        assert!(Instant::now() < end, "the second relay is stuck: {:?}", second.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut s = r.stream(&nats).await;
    assert_eq!(s.info().await.unwrap().state.messages, 600, "each event once in the stream");
    let got = r.read_all("test.urgent", Lane::Urgent, before_urgent, 500).await;
    assert_eq!(got, r.sql_all(Lane::Urgent, before_urgent).await);
    assert_eq!(got.len(), 50);

    // An old message published again past the duplicate window (another id): the bulk reader,
    // going on where it was, skips it by position.
    let mut seq = s.info().await.unwrap().state.first_sequence;
    let old = loop {
        let m = s.get_raw_message(seq).await.unwrap();
        if m.subject.contains(".bulk.") {
            break m;
        }
        seq += 1;
    };
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let mut headers = old.headers.clone();
    headers.insert("Nats-Msg-Id", "republished");
    js.publish_with_headers(old.subject.to_string(), headers, old.payload.clone()).await.unwrap().await.unwrap();
    r.js.append(&[motion(10_001)]).await.unwrap();
    r.relayed().await;
    let got = r.read_all("test.bulk", Lane::Bulk, bulk_at, 100).await;
    assert_eq!(got, r.sql_all(Lane::Bulk, bulk_at).await);
    assert_eq!(got.len(), 101);
    assert!(r.js.stats().duplicates_skipped >= 1, "{:?}", r.js.stats());

    // A message lost from the stream: the read that meets it comes from the registry, and
    // nothing is missing or doubled.
    let after = r.sql.head().await.unwrap();
    r.js.append(&mixed(20_000, 40)).await.unwrap();
    r.relayed().await;
    let last_seq = s.info().await.unwrap().state.last_sequence;
    let mut deleted = 0;
    for seq in (last_seq - 30)..=last_seq {
        let m = s.get_raw_message(seq).await.unwrap();
        if m.subject.contains(".bulk.") {
            assert!(s.delete_message(seq).await.unwrap());
            deleted += 1;
            if deleted == 2 {
                break;
            }
        }
    }
    assert_eq!(deleted, 2);
    let got = r.read_all("test.bulk", Lane::Bulk, after, 7).await;
    assert_eq!(got, r.sql_all(Lane::Bulk, after).await);
    let st = r.js.stats();
    assert!(st.gaps >= 1 && st.reads_registry >= 1, "{st:?}");
    stop2.cancel();
    r.relay.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nats_killed_reads_come_from_the_registry_and_the_relay_catches_up() {
    let mut nats = Nats::start();
    let r = rig(&nats, Engine::Postgres).await;
    r.js.append(&mixed(0, 100)).await.unwrap();
    r.relayed().await;
    let got = r.read_all("test.urgent", Lane::Urgent, 0, 10).await;
    assert_eq!(got, r.sql_all(Lane::Urgent, 0).await);
    let mut at = match got.last().unwrap() {
        Ok(s) => s.position,
        Err(u) => u.position,
    };

    nats.kill();
    let down = Instant::now();
    let mut seen = got.len();
    // Appended while NATS is down: each read answers (from the registry) with all of it.
    for k in 0..5 {
        r.js.append(&mixed(100 + k * 40, 40)).await.unwrap();
        let got = r.read_all("test.urgent", Lane::Urgent, at, 1000).await;
        assert_eq!(got, r.sql_all(Lane::Urgent, at).await);
        assert_eq!(got.len(), 10);
        seen += got.len();
        at = got.last().unwrap().as_ref().unwrap().position;
    }
    assert!(down.elapsed() < Duration::from_secs(20), "reads waited for NATS: {:?}", down.elapsed());
    let st = r.js.stats();
    assert!(st.reads_registry >= 5, "{st:?}");

    nats.resume();
    r.relayed().await;
    let mut s = r.stream(&nats).await;
    assert_eq!(s.info().await.unwrap().state.messages, 300, "every event once in the stream");
    // Back on JetStream: new events are read through it.
    let through_js = r.js.stats().reads_jetstream;
    r.js.append(&mixed(300, 40)).await.unwrap();
    r.relayed().await;
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let got = r.read_all("test.urgent", Lane::Urgent, at, 1000).await;
        if !got.is_empty() {
            assert_eq!(got, r.sql_all(Lane::Urgent, at).await);
            seen += got.len();
            break;
        }
        assert!(Instant::now() < end);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, 85);
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        r.js.append(&[alarm(100_000 + seen as i64)]).await.unwrap();
        r.relayed().await;
        let got = r.read_all("test.urgent", Lane::Urgent, at, 1000).await;
        assert_eq!(got, r.sql_all(Lane::Urgent, at).await);
        at = got.last().unwrap().as_ref().unwrap().position;
        if r.js.stats().reads_jetstream > through_js {
            break;
        }
        assert!(Instant::now() < end, "reads never went back to JetStream: {:?}", r.js.stats());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    r.relay.cancel();
}

/// The whole app on JetStream: alarms posted are raised exactly once, through JetStream, also
/// while NATS is down; `/api/v1/cluster` and `/metrics` show the relay and the reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_raises_every_alarm_once_through_jetstream_and_while_nats_is_down() {
    let mut nats = Nats::start();
    let db = TestDb::new(Engine::Sqlite).await;
    let dir = config_dir(&[("site.toml", "[site]\nname = \"JetStream city\"\ntimezone = \"Asia/Shanghai\"\n")]);
    let mut opts = JetStreamOptions::new(&nats.url());
    opts.stream = format!("APP{}_EVENTS", rand::random::<u32>());
    let app = common::TestApp::spawn_with_nats(dir.path(), &db, opts).await;
    let post = |i: usize| {
        let body = serde_json::json!({"alarm_id": format!("p-{i}"), "name": format!("point {i}")});
        let app = &app;
        async move {
            let (s, v, text) = app.post("/api/v1/alarms", &body).await;
            assert_eq!(s, 201, "{text}");
            assert_eq!(v["dedupe_key"], format!("alarm:p-{i}"));
        }
    };
    for i in 0..20 {
        post(i).await;
    }
    let (_, v, _) = app.get("/api/v1/cluster").await;
    let js = &v["jetstream"];
    assert!(js["reads_jetstream"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(js["relay_running"], true, "{v}");
    nats.kill();
    for i in 20..40 {
        post(i).await;
    }
    nats.resume();
    for i in 40..60 {
        post(i).await;
    }
    let (_, all, _) = app.get("/api/v1/alerts?limit=200").await;
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 60, "{all}");
    assert!(items.iter().all(|a| a["count"] == 1), "an alarm counted twice: {all}");
    let (_, v, _) = app.get("/api/v1/cluster").await;
    let js = &v["jetstream"];
    assert!(js["reads_registry"].as_u64().unwrap() > 0, "{v}");
    let head = app.registry.last_event_position().await.unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v, _) = app.get("/api/v1/cluster").await;
        if v["jetstream"]["relayed_position"].as_i64() == Some(head) {
            break;
        }
        assert!(Instant::now() < end, "the relay did not catch up to {head}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, _, metrics) = app.get("/metrics").await;
    assert_eq!(s, 200);
    assert!(metrics.contains("tianwang_jetstream_reads_total{source=\"jetstream\"}"), "{metrics}");
    assert!(metrics.contains("tianwang_jetstream_relayed_position"), "{metrics}");
    app.stop().await;
}

/// A NATS that wants a user and password: given in the URL, they reach the server (the relay
/// publishes and readers read through JetStream), and a wrong password reads from the registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_url_reach_nats() {
    let nats = Nats::start_with(&["--user", "tw", "--pass", "s3cret-pass"]);
    let db = TestDb::new(Engine::Sqlite).await;
    let registry = Registry::open(&db.url).await.unwrap();
    let mut opts = JetStreamOptions::new(&format!("nats://tw:s3cret-pass@127.0.0.1:{}", nats.port));
    opts.stream = format!("AUTH{}_EVENTS", rand::random::<u32>());
    let js = JetStreamLog::connect(registry.clone(), opts.clone()).await.unwrap();
    let (_tx, active) = tokio::sync::watch::channel(true);
    let stop = CancellationToken::new();
    tokio::spawn(js.clone().relay(vec![], active, stop.clone()));
    js.append(&mixed(0, 20)).await.unwrap();
    let head = js.head().await.unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    while js.stats().relayed_position < head {
        assert!(Instant::now() < end, "nothing relayed with credentials: {:?}", js.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = js.read("auth.urgent", Lane::Urgent, 0, 100).await.unwrap();
    assert_eq!(got.len(), 5);
    assert_eq!(js.stats().reads_registry, 0, "{:?}", js.stats());
    stop.cancel();

    // The wrong password: nothing reaches the stream, every read answers from the registry.
    let mut wrong = opts.clone();
    wrong.url = format!("nats://tw:wrong@127.0.0.1:{}", nats.port);
    let other = TestDb::new(Engine::Sqlite).await;
    let reg2 = Registry::open(&other.url).await.unwrap();
    let js2 = JetStreamLog::connect(reg2, wrong).await.unwrap();
    let (_tx2, active2) = tokio::sync::watch::channel(true);
    let stop2 = CancellationToken::new();
    tokio::spawn(js2.clone().relay(vec![], active2, stop2.clone()));
    js2.append(&mixed(0, 20)).await.unwrap();
    let got = js2.read("auth.urgent", Lane::Urgent, 0, 100).await.unwrap();
    assert_eq!(got.len(), 5);
    assert_eq!(js2.stats().relayed_position, 0);
    assert!(js2.stats().reads_registry >= 1);
    stop2.cancel();
}
