//! Alerts through the running app: lifecycle and audit, the live stream's resume and isolation,
//! webhooks to a real receiver, and access control for every role.

mod common;

use std::time::{Duration, Instant};

use common::sse::Sse;
use common::{Engine, TestApp, TestDb, authed_client, config_dir};
use serde_json::{Value, json};
use tianwang::clock::Clock;
use tianwang::events::{Event, Motion, NewEvent};

const SITE: &str = "[site]\nname = \"Alert city\"\ntimezone = \"Asia/Shanghai\"\n";

async fn app(engine: Engine, site: &str) -> (TestApp, TestDb, tempfile::TempDir) {
    let db = TestDb::new(engine).await;
    let dir = config_dir(&[("site.toml", site)]);
    let app = TestApp::spawn(dir.path(), &db).await;
    (app, db, dir)
}

async fn alarm(app: &TestApp, id: &str) -> Value {
    let (s, v, body) =
        app.post("/api/v1/alarms", &json!({"alarm_id": id, "name": id, "lon": 113.665, "lat": 34.757})).await;
    assert_eq!(s, 201, "{body}");
    v
}

async fn lifecycle_with_audit(engine: Engine) {
    let (app, _db, _dir) = app(engine, SITE).await;
    let a = alarm(&app, "bank-1").await;
    let id = a["id"].as_i64().unwrap();
    assert_eq!(
        (a["kind"].as_str(), a["severity"].as_str(), a["status"].as_str()),
        (Some("alarm"), Some("critical"), Some("new"))
    );
    // The same alarm point again: the same alert, counted.
    let again = alarm(&app, "bank-1").await;
    assert_eq!((again["id"].as_i64(), again["count"].as_i64()), (Some(id), Some(2)));

    // Two operators acknowledging at once: exactly one wins.
    let path = format!("/api/v1/alerts/{id}/acknowledge");
    let empty = json!({});
    let (a, b) = tokio::join!(app.post(&path, &empty), app.post(&path, &empty));
    let mut codes = [a.0, b.0];
    codes.sort();
    assert_eq!(codes, [200, 409], "{} / {}", a.2, b.2);
    let v = if a.0 == 200 { a.1 } else { b.1 };
    assert_eq!((v["status"].as_str(), v["ack_by"].as_str()), (Some("acknowledged"), Some("test-admin")));
    let (s, _, _) = app.post(&format!("/api/v1/alerts/{id}/assign"), &json!({"to": "patrol 3"})).await;
    assert_eq!(s, 200);
    let (s, _, _) = app.post(&format!("/api/v1/alerts/{id}/comments"), &json!({"text": "patrol on the way"})).await;
    assert_eq!(s, 200);
    let (s, v, _) = app
        .post(&format!("/api/v1/alerts/{id}/resolve"), &json!({"note": "false alarm, button pressed by a cleaner"}))
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("resolved")));
    let (s, _, _) = app.post(&format!("/api/v1/alerts/{id}/resolve"), &json!({"note": "again"})).await;
    assert_eq!(s, 409);
    let (_, d, _) = app.get(&format!("/api/v1/alerts/{id}")).await;
    let actions: Vec<&str> = d["audit"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["raised", "repeated", "acknowledged", "assigned", "commented", "resolved"]);
    assert_eq!(d["audit"][2]["actor"], "test-admin");

    // Filters and paging.
    for i in 0..5 {
        alarm(&app, &format!("p-{i}")).await;
    }
    let (_, page, _) = app.get("/api/v1/alerts?status=new&limit=2").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_i64().unwrap();
    let (_, page2, _) = app.get(&format!("/api/v1/alerts?status=new&limit=10&cursor={cursor}")).await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 3);
    assert!(page2["next_cursor"].is_null());
    let (_, res, _) = app.get("/api/v1/alerts?status=resolved&kind=alarm").await;
    assert_eq!(res["items"].as_array().unwrap().len(), 1);
    let (s, _, _) = app.get("/api/v1/alerts?status=open").await;
    assert_eq!(s, 400);
    let (s, _, _) = app.get("/api/v1/alerts/99999").await;
    assert_eq!(s, 404);
    app.stop().await;
}

async fn a_client_away_during_a_burst_resumes_with_every_alert_once_in_order(engine: Engine) {
    let (app, _db, _dir) = app(engine, SITE).await;
    alarm(&app, "before").await;
    let mut first = Sse::open(&app, Some(0)).await;
    let (seen, _) = first.next(Instant::now() + Duration::from_secs(10)).await.expect("the first alert");
    drop(first); // away

    for i in 0..1000 {
        alarm(&app, &format!("burst-{i:04}")).await;
    }
    let mut back = Sse::open(&app, Some(seen)).await;
    let mut ids = Vec::new();
    let mut titles = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ids.len() < 1000 {
        let Some((id, d)) = back.next(deadline).await else { break };
        ids.push(id);
        titles.push(d["alert"]["title"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1000, "got {} of 1000", ids.len());
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "in order, no gaps, no repeats");
    assert_eq!(ids[0], seen + 1);
    for (i, t) in titles.iter().enumerate() {
        assert_eq!(t, &format!("anti-robbery alarm: burst-{i:04}"));
    }
    // Nothing more: exactly once.
    assert!(back.next(Instant::now() + Duration::from_millis(300)).await.is_none());
    app.stop().await;
}

async fn a_client_that_stops_reading_does_not_delay_the_others(engine: Engine) {
    let (app, _db, _dir) = app(engine, SITE).await;
    // The stuck client never reads; its buffers fill.
    let _stuck = Sse::open(&app, Some(0)).await;
    let mut live = Sse::open(&app, None).await;
    let mut worst = Duration::ZERO;
    for i in 0..300 {
        let t = Instant::now();
        alarm(&app, &format!("s-{i}")).await;
        let (_, d) = live.next(Instant::now() + Duration::from_secs(5)).await.expect("the live client keeps up");
        assert_eq!(d["alert"]["title"], format!("anti-robbery alarm: s-{i}"));
        worst = worst.max(t.elapsed());
    }
    // Measured: commit + fan-out to the reading client while the other is stuck.
    eprintln!("worst raise-to-delivery with a stuck client present: {worst:?}");
    assert!(worst < Duration::from_secs(2), "{worst:?}");
    app.stop().await;
}

async fn every_role_against_every_endpoint_family(engine: Engine) {
    let (app, _db, _dir) = app(engine, SITE).await;
    let now = 0;
    let mut clients = Vec::new();
    for role in ["operator", "maintainer", "planner", "admin", "tracker"] {
        let t = app.registry.create_token(&format!("{role}-1"), role, false, now).await.unwrap();
        clients.push((role, authed_client(&t)));
    }
    // (method, path, roles that may) — admin may everything.
    let table: &[(&str, &str, &[&str])] = &[
        ("GET", "/api/v1/alerts", &["operator"]),
        ("GET", "/api/v1/events", &["operator"]),
        ("GET", "/api/v1/interceptions", &["operator"]),
        ("GET", "/api/v1/units", &["operator"]),
        ("GET", "/api/v1/units/pc-1/track", &["operator"]),
        // Trackers post positions and do nothing else.
        ("POST", "/api/v1/units/pc-1/positions", &["operator", "tracker"]),
        ("POST", "/api/v1/units", &["operator"]),
        ("GET", "/api/v1/rings", &["operator", "planner"]),
        // A ring id that reads like an endpoint is a ring: 404 for those who may, 403 for others.
        ("GET", "/api/v1/rings/health", &["operator", "planner"]),
        // Plate crops and scene pictures are evidence: the monitoring room's.
        ("GET", "/api/v1/passages/1/plate.jpg", &["operator"]),
        ("GET", "/api/v1/passages?limit=1", &["operator", "planner"]),
        ("GET", "/api/v1/cameras/x/snapshot.jpg", &["operator", "maintainer"]),
        ("GET", "/api/v1/maintenance/replacements", &["maintainer", "planner"]),
        ("GET", "/api/v1/geo/seeing?lon=113.665&lat=34.757", &["operator", "planner"]),
        ("GET", "/api/v1/coverage/summary", &["planner"]),
        ("GET", "/api/v1/cameras", &["operator", "maintainer", "planner"]),
        ("GET", "/metrics", &["maintainer"]),
        ("GET", "/api/v1/openapi.json", &["operator", "maintainer", "planner", "tracker"]),
        ("POST", "/api/v1/admin/reload", &[]),
    ];
    for (method, path, may) in table {
        for (role, c) in &clients {
            let req = if *method == "GET" { c.get(app.url(path)) } else { c.post(app.url(path)) };
            let s = req.send().await.unwrap().status().as_u16();
            let allowed = *role == "admin" || may.contains(role);
            if allowed {
                assert!(s != 401 && s != 403, "{role} {method} {path}: {s}");
            } else {
                assert_eq!(s, 403, "{role} {method} {path}");
            }
        }
    }
    // No token, a wrong one, a revoked one: 401 with a challenge; /healthz needs none.
    let anon = reqwest::Client::new();
    let r = anon.get(app.url("/api/v1/alerts")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(anon.get(app.url("/healthz")).send().await.unwrap().status().as_u16(), 200);
    let t = app.registry.create_token("leaver", "operator", false, now).await.unwrap();
    assert_eq!(authed_client(&t).get(app.url("/api/v1/alerts")).send().await.unwrap().status().as_u16(), 200);
    assert!(app.registry.revoke_token("leaver", now).await.unwrap());
    assert_eq!(authed_client(&t).get(app.url("/api/v1/alerts")).send().await.unwrap().status().as_u16(), 401);
    // Requests without a token (a browser's favicon, a page before sign-in, many clients
    // behind one proxy) guess nothing: never counted, never 429.
    for _ in 0..20 {
        assert_eq!(anon.get(app.url("/api/v1/alerts")).send().await.unwrap().status().as_u16(), 401);
    }
    // Guessing is throttled: after 10 wrong tokens in a minute, further wrong ones get 429. One so
    // far (the revoked token); nine more guesses are 401, then 429.
    let mut codes = Vec::new();
    for i in 0..12 {
        codes.push(
            authed_client(&format!("tw_guess{i}"))
                .get(app.url("/api/v1/alerts"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(codes.iter().position(|c| *c == 429), Some(9), "{codes:?}");
    assert!(codes[..9].iter().all(|c| *c == 401) && codes[9..].iter().all(|c| *c == 429), "{codes:?}");
    // A valid token from the same address is never turned away; no token is still a plain 401.
    assert_eq!(app.client.get(app.url("/api/v1/alerts")).send().await.unwrap().status().as_u16(), 200);
    assert_eq!(anon.get(app.url("/api/v1/alerts")).send().await.unwrap().status().as_u16(), 401);
    assert_eq!(authed_client(&t).get(app.url("/api/v1/alerts")).send().await.unwrap().status().as_u16(), 429);
    app.clock.advance(61_000);
    assert_eq!(authed_client(&t).get(app.url("/api/v1/alerts")).send().await.unwrap().status().as_u16(), 401);
    assert_eq!(app.client.get(app.url("/api/v1/alerts")).send().await.unwrap().status().as_u16(), 200);
    app.stop().await;
}

async fn webhooks_reach_a_real_receiver_signed(engine: Engine) {
    // A receiver that fails its first two requests, then hands each delivery to the test.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String, String)>();
    let fails = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let recv = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (tx, f) = (tx.clone(), fails.clone());
            async move {
                if f.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let _ = tx.send((h("x-tianwang-seq"), h("x-tianwang-signature"), body));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, recv).await.unwrap() });
    // SAFETY: tests in this binary read no other variable of this name.
    unsafe { std::env::set_var("TW_TEST_HOOK_SECRET", "s3cret") };
    let site = format!(
        "{SITE}\n[[webhook]]\nname = \"duty-desk\"\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret_env = \"TW_TEST_HOOK_SECRET\"\n"
    );
    let (app, _db, _dir) = app(engine, &site).await;
    for i in 0..3 {
        alarm(&app, &format!("w-{i}")).await;
    }
    // Retries back off from 1 s on the simulated clock: move it on while waiting for deliveries.
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(30);
    while got.len() < 3 {
        assert!(Instant::now() < end, "webhooks not delivered: {got:?}");
        app.clock.advance(2_000);
        if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
            got.push(d);
        }
    }
    let mut titles = Vec::new();
    for (seq, sig, body) in &got {
        assert_eq!(sig, &tianwang::alerts::webhooks::signature(b"s3cret", body.as_bytes()));
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["seq"].to_string(), *seq);
        titles.push(v["alert"]["title"].as_str().unwrap().to_string());
    }
    titles.sort();
    titles.dedup();
    assert_eq!(titles.len(), 3, "every alert delivered: {titles:?}");
    app.stop().await;
}

on_both_engines!(
    lifecycle_with_audit,
    a_client_away_during_a_burst_resumes_with_every_alert_once_in_order,
    a_client_that_stops_reading_does_not_delay_the_others,
    every_role_against_every_endpoint_family,
    webhooks_reach_a_real_receiver_signed,
    an_alarm_is_linked_to_the_cameras_that_see_it,
    motion_from_the_event_log_alerts_only_in_armed_zones,
);

async fn an_alarm_is_linked_to_the_cameras_that_see_it(engine: Engine) {
    let (app, _db, _dir) = app(engine, SITE).await;
    // Two cameras at the same spot: one facing the alarm point, one facing away.
    let cam = |id: &str, bearing: f64| tianwang::geo::input::CameraInput {
        id: id.into(),
        name: id.into(),
        lon: 113.665,
        lat: 34.757,
        bearing_deg: bearing,
        hfov_deg: 60.0,
        width_px: 1920,
        height_px: 1080,
        mounting_height_m: 3.0,
        kind: tianwang::config::CameraKind::Shop,
        owner: tianwang::config::Owner::Enterprise,
        grid_cell: None,
    };
    app.registry.store_imported_cameras(&[cam("facing", 0.0), cam("away", 180.0)], "survey.csv", 0).await.unwrap();
    // 10 m north of them.
    let (s, a, body) = app
        .post("/api/v1/alarms", &json!({"alarm_id": "bank-7", "name": "counter 3", "lon": 113.665, "lat": 34.75709}))
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(a["cameras"], json!(["facing"]));
    assert_eq!(a["detail"]["seeing"][0]["level"], "recognise");
    // An id alone (no position): raised, nothing linked; neither: refused.
    let (s, a, _) = app.post("/api/v1/alarms", &json!({"alarm_id": "panic-button-12"})).await;
    assert_eq!((s, a["cameras"].as_array().map(|c| c.len())), (201, Some(0)));
    for bad in [json!({}), json!({"lon": 113.0}), json!({"alarm_id": " "}), json!({"lon": 200.0, "lat": 1.0})] {
        let (s, r, _) = app.post("/api/v1/alarms", &bad).await;
        assert_eq!(s, 400, "{bad}: {r}");
    }
    app.stop().await;
}

async fn motion_from_the_event_log_alerts_only_in_armed_zones(engine: Engine) {
    // The test clock is 2026-05-28 20:26 UTC: 04:26 in Asia/Shanghai, inside 22:00-06:00.
    let site =
        format!("{SITE}\n[[armed_zone]]\ncamera = \"bank-cam\"\nzone = \"vault\"\nschedule = [\"22:00-06:00\"]\n");
    let (app, _db, _dir) = app(engine, &site).await;
    let mut stream = Sse::open(&app, Some(0)).await;
    let now = app.clock.now_ms();
    // Detection's events, in order: the lobby is not armed, the vault is.
    for zone in ["lobby", "vault"] {
        let m = Motion { camera_id: "bank-cam".into(), zone: zone.into(), boxes: vec![] };
        app.log.append(&[NewEvent::new(now, None, Event::Motion(m))]).await.unwrap();
    }
    let (_, ev) = stream.next(Instant::now() + Duration::from_secs(10)).await.expect("a motion alert");
    assert_eq!(ev["alert"]["kind"], "motion");
    assert_eq!(ev["alert"]["dedupe_key"], "motion:bank-cam:vault");
    assert_eq!(ev["alert"]["title"], "motion in vault at bank-cam");
    let (_, st, _) = app.get("/api/v1/alerts/stats").await;
    assert_eq!(st["engine"]["motion_disarmed"], 1);
    app.stop().await;
}

/// Live streams have limits a monitoring room can rely on: 2,000 clients asking at once get
/// 1,000 streams and 1,000 clear 503s; a client that leaves gives its place back; a client far
/// behind replays at most the bound, told so by a `gap` event; a revoked token's stream ends
/// within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_are_capped_bounded_and_end_with_their_token() {
    let db = TestDb::new(Engine::Sqlite).await;
    let dir = config_dir(&[("site.toml", SITE)]);
    let clock = tianwang::clock::SimClock::at(1_780_000_000_000);
    let opts = tianwang::app::AppOptions { ingest: false, order_rounds: false, max_replay: 20, ..Default::default() };
    let app = TestApp::spawn_opts(dir.path(), &db, std::sync::Arc::new(clock.clone()), clock, opts).await;
    assert_eq!(tianwang::alerts::streams::DEFAULT_MAX_STREAMS, 1_000);
    let url = app.url("/api/v1/alerts/stream");
    let asks = (0..2_000).map(|_| {
        let (c, url) = (app.client.clone(), url.clone());
        tokio::spawn(async move { c.get(url).send().await.unwrap() })
    });
    let mut open = Vec::new();
    let mut refused = 0;
    for a in asks {
        let r = a.await.unwrap();
        match r.status().as_u16() {
            200 => open.push(r),
            503 => {
                let body: Value = r.json().await.unwrap();
                let msg = body["error"]["message"].as_str().unwrap_or_default().to_string();
                assert!(msg.contains("1000 live streams") && msg.contains("(1000)"), "{msg}");
                refused += 1;
            }
            s => panic!("stream answered {s}"),
        }
    }
    assert_eq!((open.len(), refused), (1_000, 1_000));
    // Clients that leave give their places back (noticed at the latest at the next keep-alive
    // comment, every 5 s; not at the next change, which may be hours away).
    open.truncate(990);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut again = Vec::new();
    while again.len() < 10 {
        let r = app.client.get(&url).send().await.unwrap();
        match r.status().as_u16() {
            200 => again.push(r),
            503 => assert!(Instant::now() < deadline, "places not given back"),
            s => panic!("stream answered {s}"),
        }
    }
    assert_eq!(app.client.get(&url).send().await.unwrap().status().as_u16(), 503);
    drop(open);
    drop(again);

    // Far behind: 30 changes stored, a client from the start replays the last 20 after a gap.
    for i in 0..30 {
        alarm(&app, &format!("far-{i}")).await;
    }
    let head = app.registry.latest_feed_seq().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut resp = loop {
        let r = app.client.get(format!("{url}?after=0")).send().await.unwrap();
        if r.status().as_u16() == 200 {
            break r;
        }
        assert!(Instant::now() < deadline, "no place for a stream: {}", r.status());
    };
    let ids_of = |text: &str| -> Vec<i64> {
        text.lines().filter_map(|l| l.strip_prefix("id:")).map(|v| v.trim().parse().unwrap()).collect()
    };
    let mut text = String::new();
    while !ids_of(&text).contains(&head) {
        let c = tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&c));
    }
    let first = text.lines().find(|l| !l.trim().is_empty() && !l.starts_with(':')).unwrap_or_default();
    assert!(first.starts_with("event:") && first.contains("gap"), "{text}");
    assert!(text.contains(&format!("\"resumed_after\":{}", head - 20)), "{text}");
    assert_eq!(ids_of(&text), ((head - 19)..=head).collect::<Vec<_>>());

    // A revoked token's stream ends within a second.
    let t = app.registry.create_token("leaver", "operator", false, 0).await.unwrap();
    let mut sse = Sse::open_at(&authed_client(&t), &format!("http://{}", app.addr), None).await;
    // The stream lives past the node's next reads of the valid tokens (it was made after the
    // last one) and carries alerts.
    let (lived, mut i) = (Instant::now(), 0);
    while lived.elapsed() < Duration::from_secs(1) {
        alarm(&app, &format!("still-{i}")).await;
        let (_, d) = sse.next(Instant::now() + Duration::from_secs(5)).await.expect("the stream carries alerts");
        assert_eq!(d["alert"]["title"], format!("anti-robbery alarm: still-{i}"));
        i += 1;
    }
    assert!(app.registry.revoke_token("leaver", 0).await.unwrap());
    let revoked = Instant::now();
    assert!(sse.next(Instant::now() + Duration::from_secs(5)).await.is_none());
    let ended = revoked.elapsed();
    println!("a revoked token's stream ended {ended:?} after the revocation");
    assert!(ended < Duration::from_secs(1), "{ended:?}");
    app.stop().await;
}

/// A dead receiver (it takes the connection and never answers) and a slow one (200 ms an answer)
/// beside a healthy one: the healthy one gets every alert at once, each receiver in feed order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_and_a_slow_webhook_receiver_do_not_delay_a_healthy_one() {
    type Got = tokio::sync::mpsc::UnboundedSender<(i64, Instant)>;
    async fn receiver(delay: Duration, tx: Got) -> u16 {
        let recv = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                let tx = tx.clone();
                async move {
                    tokio::time::sleep(delay).await;
                    let v: Value = serde_json::from_str(&body).unwrap();
                    let _ = tx.send((v["seq"].as_i64().unwrap(), Instant::now()));
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, recv).await.unwrap() });
        port
    }
    // Dead: accepts connections and never answers.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    let (htx, mut healthy) = tokio::sync::mpsc::unbounded_channel();
    let (stx, mut slow) = tokio::sync::mpsc::unbounded_channel();
    let healthy_port = receiver(Duration::ZERO, htx).await;
    let slow_port = receiver(Duration::from_millis(200), stx).await;
    let mut site = SITE.to_string();
    for (name, port) in [("dead", dead_port), ("slow", slow_port), ("healthy", healthy_port)] {
        site.push_str(&format!("\n[[webhook]]\nname = \"{name}\"\nurl = \"http://127.0.0.1:{port}/hook\"\n"));
    }
    let (app, _db, _dir) = app(Engine::Sqlite, &site).await;
    let mut raised = Vec::new();
    let mut latencies = Vec::new();
    for i in 0..40 {
        let a = alarm(&app, &format!("h-{i}")).await;
        let t = Instant::now();
        raised.push((a["id"].as_i64().unwrap(), t));
        // The healthy receiver has it before the next alarm is raised.
        let (_, at) = tokio::time::timeout(Duration::from_secs(10), healthy.recv()).await.unwrap().unwrap();
        latencies.push(at.saturating_duration_since(t));
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100 - 1];
    println!("healthy receiver beside a dead and a slow one: p99 {p99:?}, worst {:?}", latencies.last().unwrap());
    assert!(p99 < Duration::from_secs(1), "{latencies:?}");
    // The slow one gets them all, in feed order, one at a time.
    let mut seqs = Vec::new();
    while seqs.len() < 40 {
        let (s, _) = tokio::time::timeout(Duration::from_secs(30), slow.recv()).await.unwrap().unwrap();
        seqs.push(s);
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "slow receiver out of order: {seqs:?}");
    drop(dead);
    app.stop().await;
}
