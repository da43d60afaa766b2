//! The event spine under faults, on both engines: every alert present exactly once, and
//! delivered on SSE (exactly once), to a real webhook receiver (exactly once) and over a private
//! Mosquitto (at least once; QoS 1), when the alert store fails for 20 s, when 64 clients post
//! 2,000 passages at once, when an operator resolves while a new occurrence arrives, under a
//! flood of 60,000 motion events (and with 60,000 of them waiting), and with a stored event
//! nobody can read.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::mqtt::{Broker, subscribe};
use common::sse::Sse;
use common::{Engine, TestApp, TestDb, config_dir};
use serde_json::{Value, json};
use tianwang::clock::Clock;
use tianwang::events::{Event, Motion, NewEvent};
use tianwang::registry::{AlertFilter, AlertKind, AlertRow};

const CHECKPOINT: &str = "41010000001210000001";

/// A webhook receiver: every body it accepts, in arrival order.
#[derive(Clone, Default)]
struct Hooks {
    got: Arc<Mutex<Vec<Value>>>,
    arrived: Arc<tokio::sync::Notify>,
    port: u16,
}

impl Hooks {
    async fn start() -> Hooks {
        let got: Arc<Mutex<Vec<Value>>> = Arc::default();
        let arrived = Arc::new(tokio::sync::Notify::new());
        let (g, a) = (got.clone(), arrived.clone());
        let recv = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                let (g, a) = (g.clone(), a.clone());
                async move {
                    if let Ok(v) = serde_json::from_str::<Value>(&body) {
                        g.lock().unwrap().push(v);
                        a.notify_waiters();
                    }
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, recv).await.unwrap() });
        Hooks { got, arrived, port }
    }

    /// Alert ids of `raised` deliveries, with how many times each came.
    fn raised(&self) -> BTreeMap<i64, usize> {
        let mut m = BTreeMap::new();
        for v in self.got.lock().unwrap().iter().filter(|v| v["change"] == "raised") {
            *m.entry(v["alert"]["id"].as_i64().unwrap()).or_default() += 1;
        }
        m
    }
}

struct Spine {
    app: TestApp,
    _db: TestDb,
    _dir: tempfile::TempDir,
    hooks: Hooks,
    broker: Broker,
    prefix: String,
}

async fn spine(engine: Engine, extra: &str) -> Spine {
    let broker = Broker::start();
    let hooks = Hooks::start().await;
    let prefix = format!("spine{}", rand::random::<u32>());
    let site = format!(
        "[site]\nname = \"Spine city\"\ntimezone = \"Asia/Shanghai\"\n\n[[webhook]]\nname = \"desk\"\n\
         url = \"http://127.0.0.1:{}/hook\"\n\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\ntopic_prefix = \"{prefix}\"\n\
         client_id = \"{prefix}-pub\"\n{extra}",
        hooks.port, broker.port
    );
    let cams = format!(
        "[[camera]]\nid = \"{CHECKPOINT}\"\nname = \"Checkpoint 1\"\nurl = \"rtsp://127.0.0.1:9/x\"\nlon = 113.6667\n\
         lat = 34.7622\nbearing_deg = 15.0\nkind = \"checkpoint\"\nowner = \"public\"\nmounting_height_m = 6.5\nhfov_deg = 30.0\n\
         resolution = \"2560x1440\"\nprofile = \"checkpoint\"\n\n[[camera]]\nid = \"yard\"\nname = \"Yard\"\n\
         url = \"rtsp://127.0.0.1:9/y\"\nlon = 113.6667\nlat = 34.7625\nbearing_deg = 15.0\nkind = \"street\"\nowner = \"public\"\n\
         mounting_height_m = 6.5\nhfov_deg = 60.0\nresolution = \"1920x1080\"\nprofile = \"street\"\n"
    );
    let db = TestDb::new(engine).await;
    let dir = config_dir(&[("site.toml", &site), ("cams.toml", &cams)]);
    let app = TestApp::spawn(dir.path(), &db).await;
    let (s, _, body) =
        app.post("/api/v1/watchlists", &json!({"pattern": "豫A*", "match_kind": "wildcard", "reason": "drill"})).await;
    assert_eq!(s, 201, "{body}");
    Spine { app, _db: db, _dir: dir, hooks, broker, prefix }
}

fn plate(i: usize) -> String {
    format!("豫A{:05}", i)
}

async fn passage(app: &TestApp, plate: &str, at_ms: i64) -> u16 {
    let body = json!({"camera_id": CHECKPOINT, "pass_time_ms": at_ms, "plate_no": plate, "plate_color": "blue"});
    let (s, _, text) = app.post("/api/v1/passages", &body).await;
    assert!(s == 201 || s == 200, "{text}");
    s
}

async fn all_alerts(app: &TestApp) -> Vec<AlertRow> {
    app.registry.list_alerts(&AlertFilter { limit: 100_000, ..Default::default() }).await.unwrap()
}

/// Reads the stream until `n` distinct alerts were raised on it (or the deadline); checks that
/// positions only grow and no alert is raised twice. Returns the raised alerts' ids.
async fn raised_on_sse(sse: &mut Sse, n: usize, secs: u64) -> BTreeSet<i64> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut ids = BTreeSet::new();
    let mut last = 0;
    while ids.len() < n {
        let Some((seq, v)) = sse.next(deadline).await else { break };
        assert!(seq > last, "feed positions grow: {seq} after {last}");
        last = seq;
        if v["change"] == "raised" {
            assert!(ids.insert(v["alert"]["id"].as_i64().unwrap()), "raised twice on SSE: {v}");
        }
    }
    ids
}

/// Waits until the webhook receiver has every id in `want` raised; each exactly once.
async fn delivered_by_webhook(hooks: &Hooks, want: &BTreeSet<i64>, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let next = hooks.arrived.notified();
        let got = hooks.raised();
        if want.iter().all(|id| got.contains_key(id)) {
            let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
            assert!(twice.is_empty(), "delivered more than once: {twice:?}");
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, next).await.is_err() {
            panic!("webhooks: {} of {} delivered", got.len(), want.len());
        }
    }
}

/// Reads MQTT until every id in `want` was raised; returns how many arrived twice (QoS 1).
async fn delivered_by_mqtt(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>,
    want: &BTreeSet<i64>,
    secs: u64,
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut seen: HashMap<i64, usize> = HashMap::new();
    while !want.iter().all(|id| seen.contains_key(id)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(v)) = tokio::time::timeout(left, rx.recv()).await else {
            panic!(
                "MQTT: {} of {} raised alerts arrived",
                want.iter().filter(|id| seen.contains_key(id)).count(),
                want.len()
            )
        };
        if v["change"] == "raised" {
            *seen.entry(v["alert"]["id"].as_i64().unwrap()).or_default() += 1;
        }
    }
    seen.values().filter(|n| **n > 1).count()
}

/// Makes every insert into `alerts` fail (a trigger), as a full disk or a failing database would.
async fn break_alert_inserts(app: &TestApp, engine: Engine) {
    let pool = app.registry.pool();
    match engine {
        Engine::Sqlite => {
            sqlx::query(
                "CREATE TRIGGER tw_fault BEFORE INSERT ON alerts BEGIN SELECT RAISE(ABORT, 'injected fault'); END",
            )
            .execute(pool)
            .await
            .unwrap();
        }
        Engine::Postgres => {
            sqlx::query(
                "CREATE FUNCTION tw_fault() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql",
            )
            .execute(pool)
            .await
            .unwrap();
            sqlx::query("CREATE TRIGGER tw_fault BEFORE INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION tw_fault()")
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

async fn mend_alert_inserts(app: &TestApp, engine: Engine) {
    let sql = match engine {
        Engine::Sqlite => "DROP TRIGGER tw_fault",
        Engine::Postgres => "DROP TRIGGER tw_fault ON alerts",
    };
    sqlx::query(sql).execute(app.registry.pool()).await.unwrap();
}

async fn the_alert_store_failing_for_20_s_loses_no_alarm_and_no_watchlist_hit(engine: Engine) {
    let s = spine(engine, "").await;
    let app = &s.app;
    let mut mqtt = subscribe(s.broker.port, &format!("{}-sub", s.prefix), &format!("{}/alerts/#", s.prefix)).await;
    let mut sse = Sse::open(app, Some(0)).await;
    break_alert_inserts(app, engine).await;
    let fault_from = Instant::now();
    // Alarms and watchlist hits arrive while no alert can be stored.
    let mut posts = Vec::new();
    for i in 0..20 {
        let (url, c) = (app.url("/api/v1/alarms"), app.client.clone());
        posts.push(tokio::spawn(async move {
            let body =
                json!({"alarm_id": format!("bank-{i}"), "name": format!("bank {i}"), "lon": 113.6667, "lat": 34.7622});
            c.post(url).json(&body).send().await.unwrap().status().as_u16()
        }));
    }
    let t0 = app.clock.now_ms();
    for i in 0..20 {
        assert_eq!(passage(app, &plate(i), t0 + i as i64).await, 201);
    }
    let codes: Vec<u16> = futures_util::future::join_all(posts).await.into_iter().map(|r| r.unwrap()).collect();
    // The alarms are in the event log: accepted (202), their alerts to follow.
    assert!(codes.iter().all(|c| *c == 202), "{codes:?}");
    assert!(app.alerts.stats().write_failures > 0, "the fault was met");
    assert!(all_alerts(app).await.is_empty(), "nothing could be stored meanwhile");
    tokio::time::sleep_until((fault_from + Duration::from_secs(20)).into()).await;
    mend_alert_inserts(app, engine).await;

    let raised = raised_on_sse(&mut sse, 40, 60).await;
    assert_eq!(raised.len(), 40, "every alarm and hit raised once on SSE");
    let alerts = all_alerts(app).await;
    assert_eq!(alerts.len(), 40);
    let keys: BTreeSet<&str> = alerts.iter().map(|a| a.dedupe_key.as_str()).collect();
    assert_eq!(keys.len(), 40, "one alert per alarm point and per plate");
    assert!(alerts.iter().all(|a| a.count == 1), "each occurrence once");
    assert_eq!(alerts.iter().filter(|a| a.kind == AlertKind::Alarm).count(), 20);
    assert_eq!(raised, alerts.iter().map(|a| a.id).collect());
    delivered_by_webhook(&s.hooks, &raised, 60).await;
    let twice = delivered_by_mqtt(&mut mqtt, &raised, 60).await;
    eprintln!("after a 20 s store fault: 40 alerts once each; MQTT duplicates {twice}");
    // The key is not stuck: the same alarm point again folds into its alert.
    let (code, again, body) =
        app.post("/api/v1/alarms", &json!({"alarm_id": "bank-3", "lon": 113.6667, "lat": 34.7622})).await;
    assert_eq!(code, 201, "{body}");
    let first = alerts.iter().find(|a| a.dedupe_key == "alarm:bank-3").unwrap();
    assert_eq!((again["id"].as_i64(), again["count"].as_i64()), (Some(first.id), Some(2)));
    s.app.stop().await;
}

async fn two_thousand_passages_from_64_clients_are_2000_alerts_delivered_once(engine: Engine) {
    let s = spine(engine, "").await;
    let app = &s.app;
    let mut mqtt = subscribe(s.broker.port, &format!("{}-sub", s.prefix), &format!("{}/alerts/#", s.prefix)).await;
    let mut sse = Sse::open(app, Some(0)).await;
    let t0 = app.clock.now_ms();
    let mut clients = Vec::new();
    for w in 0..64usize {
        let (url, c) = (app.url("/api/v1/passages"), app.client.clone());
        clients.push(tokio::spawn(async move {
            for i in (w..2000).step_by(64) {
                let body = json!({"camera_id": CHECKPOINT, "pass_time_ms": t0 + i as i64, "plate_no": plate(i)});
                let r = c.post(&url).json(&body).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    let raised = raised_on_sse(&mut sse, 2000, 120).await;
    assert_eq!(raised.len(), 2000, "every hit an alert on SSE");
    let alerts = all_alerts(app).await;
    assert_eq!(alerts.len(), 2000);
    assert!(alerts.iter().all(|a| a.kind == AlertKind::WatchlistHit && a.count == 1));
    assert_eq!(alerts.iter().map(|a| a.dedupe_key.as_str()).collect::<BTreeSet<_>>().len(), 2000);
    delivered_by_webhook(&s.hooks, &raised, 120).await;
    let twice = delivered_by_mqtt(&mut mqtt, &raised, 120).await;
    eprintln!("2,000 passages from 64 clients: 2,000 alerts; MQTT duplicates {twice}");
    s.app.stop().await;
}

async fn an_operator_resolving_while_a_new_occurrence_arrives_loses_neither(engine: Engine) {
    let s = spine(engine, "").await;
    let app = &s.app;
    let mut sse = Sse::open(app, Some(0)).await;
    let t0 = app.clock.now_ms();
    let p = plate(77);
    let mut hits = 0;
    for round in 0..30i64 {
        // An open alert for the plate (new, or the one left open by the last round).
        assert!(passage(app, &p, t0 + round * 10).await == 201);
        hits += 1;
        let open = loop {
            let (_, v) = sse.next(Instant::now() + Duration::from_secs(10)).await.expect("the hit on SSE");
            if v["alert"]["status"] != "resolved" && v["alert"]["dedupe_key"] == format!("watchlist_hit:{p}") {
                break v["alert"]["id"].as_i64().unwrap();
            }
        };
        // The operator resolves it while the plate passes again.
        let (path, note) = (format!("/api/v1/alerts/{open}/resolve"), json!({"note": "handled"}));
        let resolve = app.post(&path, &note);
        let again = passage(app, &p, t0 + round * 10 + 5);
        let ((code, _, body), _) = tokio::join!(resolve, again);
        hits += 1;
        assert!(code == 200 || code == 409, "{body}");
    }
    // Let the last occurrences be applied: the engine's view and the store agree.
    let key = format!("watchlist_hit:{p}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let total: i64 = all_alerts(app).await.iter().filter(|a| a.dedupe_key == key).map(|a| a.count).sum();
        if total == hits {
            break;
        }
        assert!(Instant::now() < deadline, "{total} of {hits} occurrences in alerts");
        let _ = sse.next(Instant::now() + Duration::from_millis(200)).await;
    }
    // Nothing was folded into an alert after it was resolved.
    for a in all_alerts(app).await.iter().filter(|a| a.dedupe_key == key) {
        let (_, d, _) = app.get(&format!("/api/v1/alerts/{}", a.id)).await;
        let actions: Vec<&str> = d["audit"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        if let Some(i) = actions.iter().position(|x| *x == "resolved") {
            assert_eq!(i, actions.len() - 1, "alert {} changed after it was resolved: {actions:?}", a.id);
        }
    }
    let open = all_alerts(app).await.iter().filter(|a| a.dedupe_key == key && a.status.as_str() != "resolved").count();
    assert!(open <= 1, "at most one open alert per key");
    s.app.stop().await;
}

async fn a_motion_flood_does_not_delay_a_watchlist_hit(engine: Engine) {
    let s = spine(engine, "\n[[armed_zone]]\ncamera = \"yard\"\nzone = \"*\"\n").await;
    let app = &s.app;
    let mut sse = Sse::open(app, None).await;
    let t0 = app.clock.now_ms();
    // Detection's writer appends motion in batches of 500: 60,000 events.
    let log = app.log.clone();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let flood = tokio::spawn(async move {
        let mut started = Some(started_tx);
        for b in 0..120i64 {
            let batch: Vec<NewEvent> = (0..500)
                .map(|k| {
                    let m = Motion { camera_id: "yard".into(), zone: format!("z{}", k % 7), boxes: vec![] };
                    NewEvent::new(t0 + b * 500 + k, None, Event::Motion(m))
                })
                .collect();
            log.append(&batch).await.unwrap();
            if b == 20
                && let Some(s) = started.take()
            {
                let _ = s.send(());
            }
        }
    });
    started_rx.await.unwrap();
    // 10,000 motion events are in the log, 50,000 to come: a watchlist hit now.
    let sent = Instant::now();
    assert_eq!(passage(app, &plate(9), t0).await, 201);
    let took = loop {
        let (_, v) = sse.next(sent + Duration::from_secs(30)).await.expect("the watchlist hit on SSE");
        if v["alert"]["kind"] == "watchlist_hit" {
            break sent.elapsed();
        }
    };
    flood.await.unwrap();
    let backlog = app.alerts.stats().lag_bulk;
    eprintln!("watchlist hit during a 60,000-event motion flood: on SSE after {took:?} (bulk backlog then {backlog})");
    assert!(took < Duration::from_secs(1), "the hit waited {took:?} behind the motion flood");
    // The flood itself is applied too: its motion alerts (7 zones) exist and count everything.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let motion: i64 = all_alerts(app).await.iter().filter(|a| a.kind == AlertKind::Motion).map(|a| a.count).sum();
        if motion == 60_000 {
            break;
        }
        assert!(Instant::now() < deadline, "{motion} of 60000 motion occurrences applied");
        let _ = sse.next(Instant::now() + Duration::from_millis(500)).await;
    }
    s.app.stop().await;
}

async fn a_watchlist_hit_behind_60000_waiting_motion_events_is_applied_first(engine: Engine) {
    // The log holds 60,000 motion events (an armed zone: every one would alert) and, after them,
    // one watchlist hit, before the app starts: the hit's alert is the first change it makes.
    let db = TestDb::new(engine).await;
    let registry = tianwang::registry::Registry::open(&db.url).await.unwrap();
    let log = tianwang::events::SqlLog::new(registry.clone());
    let t0 = 1_780_000_000_000i64;
    for b in 0..120i64 {
        let batch: Vec<NewEvent> = (0..500)
            .map(|k| {
                let m = Motion { camera_id: "yard".into(), zone: format!("z{}", k % 7), boxes: vec![] };
                NewEvent::new(t0 + b * 500 + k, None, Event::Motion(m))
            })
            .collect();
        tianwang::events::EventLog::append(&log, &batch).await.unwrap();
    }
    let hit = tianwang::events::WatchlistHit {
        plate_no: Some(plate(5)),
        plate_color: None,
        passage_id: 1,
        camera_id: CHECKPOINT.into(),
        pass_time_ms: t0,
        watchlist_id: 1,
        pattern: "豫A*".into(),
        match_kind: "wildcard".into(),
        distance: Some(0.0),
        reason: "drill".into(),
        priority: "high".into(),
        plate_image: None,
        context_image: None,
    };
    tianwang::events::EventLog::append(&log, &[NewEvent::new(t0, None, Event::WatchlistHit(hit))]).await.unwrap();
    registry.close().await;
    let site =
        "[site]\nname = \"Backlog\"\ntimezone = \"Asia/Shanghai\"\n\n[[armed_zone]]\ncamera = \"yard\"\nzone = \"*\"\n";
    let dir = config_dir(&[("site.toml", site)]);
    let app = TestApp::spawn(dir.path(), &db).await;
    let mut sse = Sse::open(&app, Some(0)).await;
    let (_, first) = sse.next(Instant::now() + Duration::from_secs(30)).await.expect("a change");
    assert_eq!(first["alert"]["kind"], "watchlist_hit", "the first change is the hit: {first}");
    // The motion behind it is applied after: 7 zones, 60,000 occurrences.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let motion: i64 = all_alerts(&app).await.iter().filter(|a| a.kind == AlertKind::Motion).map(|a| a.count).sum();
        if motion == 60_000 {
            break;
        }
        assert!(Instant::now() < deadline, "{motion} of 60000 motion occurrences applied");
        let _ = sse.next(Instant::now() + Duration::from_millis(500)).await;
    }
    app.stop().await;
}

async fn a_stored_event_nobody_can_read_is_counted_kept_and_passed(engine: Engine) {
    let s = spine(engine, "").await;
    let app = &s.app;
    let mut sse = Sse::open(app, Some(0)).await;
    // A newer version's kind, and a motion event with a broken payload, in the urgent and bulk lanes.
    for (kind, lane, payload) in [("teleport", 0i64, "{}"), ("motion", 2, "{\"camera_id\": 7}")] {
        sqlx::query("INSERT INTO events (at_ms, kind, lane, camera_id, payload) VALUES ($1, $2, $3, NULL, $4)")
            .bind(1_780_000_000_000i64)
            .bind(kind)
            .bind(lane)
            .bind(payload)
            .execute(app.registry.pool())
            .await
            .unwrap();
    }
    // What comes after still alerts.
    let (code, _, body) = app.post("/api/v1/alarms", &json!({"alarm_id": "after-the-bad-ones"})).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(raised_on_sse(&mut sse, 1, 10).await.len(), 1);
    let t0 = app.clock.now_ms();
    assert_eq!(passage(app, &plate(1), t0).await, 201);
    assert_eq!(raised_on_sse(&mut sse, 1, 10).await.len(), 1);
    let m = app.log.undecodable();
    let (_, metrics, text) = app.get("/metrics").await;
    assert!(metrics.is_null());
    assert!(text.contains("tianwang_events_undecodable_total 2\n"), "{text}");
    assert_eq!(m, 2);
    let (_, st, _) = app.get("/api/v1/alerts/stats").await;
    assert_eq!(st["service"]["undecodable"], 2, "{st}");
    // Kept in the log.
    let (_, ev, _) = app.get("/api/v1/events?kind=teleport").await;
    assert_eq!(ev.as_array().map(Vec::len), Some(1), "{ev}");
    s.app.stop().await;
}

on_both_engines!(
    the_alert_store_failing_for_20_s_loses_no_alarm_and_no_watchlist_hit,
    two_thousand_passages_from_64_clients_are_2000_alerts_delivered_once,
    an_operator_resolving_while_a_new_occurrence_arrives_loses_neither,
    a_motion_flood_does_not_delay_a_watchlist_hit,
    a_watchlist_hit_behind_60000_waiting_motion_events_is_applied_first,
    a_stored_event_nobody_can_read_is_counted_kept_and_passed,
);
