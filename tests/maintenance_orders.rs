//! Health states and work orders on a simulated clock, through the running app: the health keeper
//! is fed what ingest and quality sampling would report, rounds run at chosen times, and
//! everything is read back over the API. Availability is checked against the history the test
//! built. Both engines.

mod common;

use common::{Engine, TestApp, TestDb, config_dir};
use serde_json::{Value, json};
use tianwang::clock::Clock;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

const SITE: &str = r#"
[site]
name = "Work-order city"
timezone = "Asia/Shanghai"

[defaults]
transport = "tcp"
mounting_height_m = 6.0
hfov_deg = 90.0
resolution = "1920x1080"
owner = "public"

[maintenance]
offline_order_after_min = 15
fault_order_after_min = 60
verify_min = 30
due_hours = [4, 24, 72]

[[crew]]
id = "crew-north"
name = "North crew"
cells = ["g2-north"]

[[crew]]
id = "crew-bank"
cells = ["g3-bank"]

[[grid_cell]]
id = "g1"
name = "Station"
level = 1

[[grid_cell]]
id = "g2-north"
name = "North community"
level = 2
parent = "g1"

[[grid_cell]]
id = "g3-road"
name = "Main road"
level = 3
parent = "g2-north"

[[grid_cell]]
id = "g3-bank"
name = "Bank compound"
level = 3
parent = "g2-north"

[[camera]]
id = "cp-1"
name = "Checkpoint 1"
url = "rtsp://127.0.0.1:9/cp-1"
lon = 113.660
lat = 34.750
bearing_deg = 0
kind = "checkpoint"
grid_cell = "g3-road"

[[camera]]
id = "cp-2"
name = "Checkpoint 2"
url = "rtsp://127.0.0.1:9/cp-2"
lon = 113.670
lat = 34.750
bearing_deg = 90
kind = "checkpoint"
grid_cell = "g3-road"

[[camera]]
id = "cp-3"
name = "Checkpoint 3"
url = "rtsp://127.0.0.1:9/cp-3"
lon = 113.665
lat = 34.760
bearing_deg = 180
kind = "checkpoint"
grid_cell = "g3-road"

[[camera]]
id = "st-1"
name = "Street 1"
url = "rtsp://127.0.0.1:9/st-1"
lon = 113.664
lat = 34.754
bearing_deg = 45
kind = "street"
grid_cell = "g3-road"

[[camera]]
id = "cmp-1"
name = "Bank car park"
url = "rtsp://127.0.0.1:9/cmp-1"
lon = 113.666
lat = 34.755
bearing_deg = 200
kind = "compound"
owner = "enterprise"
grid_cell = "g3-bank"
resolution = "704x576"

[[ring]]
id = "inner"
name = "Inner ring"
level = 1
members = ["cp-1", "cp-2", "cp-3"]
"#;

async fn orders(app: &TestApp, q: &str) -> Vec<Value> {
    let (s, v, body) = app.get(&format!("/api/v1/maintenance/orders{q}")).await;
    assert_eq!(s, 200, "{body}");
    v.as_array().unwrap().clone()
}

async fn status(app: &TestApp, cam: &str) -> String {
    app.registry.get_camera(cam).await.unwrap().unwrap().status
}

async fn work_orders_from_open_to_verified(engine: Engine) {
    let db = TestDb::new(engine).await;
    let dir = config_dir(&[("site.toml", SITE)]);
    let app = TestApp::spawn(dir.path(), &db).await;
    let t0 = app.clock.now_ms();
    for c in ["cp-1", "cp-2", "cp-3", "st-1", "cmp-1"] {
        app.health.stream(c, true, "streaming", t0).await;
        assert_eq!(status(&app, c).await, "online");
    }

    // cp-1 goes dark. Not long enough for an order at 14 minutes; one order at 16, however many
    // rounds run.
    app.health.stream("cp-1", false, "stalled: no frame for 10 s", t0).await;
    assert_eq!(status(&app, "cp-1").await, "offline");
    app.clock.set(t0 + 14 * MIN);
    assert!(app.orders.round().await.unwrap().opened.is_empty());
    // A quality fault on the street camera: degraded, with the check named.
    app.health.quality("st-1", "blur", true, "sharpness 12 of baseline 80", t0 + 14 * MIN).await;
    let st = app.registry.get_camera("st-1").await.unwrap().unwrap();
    assert_eq!((st.status.as_str(), st.status_reason.contains("quality:blur")), ("degraded", true), "{st:?}");
    // The compound camera goes dark too.
    app.health.stream("cmp-1", false, "backoff: connection refused", t0 + 14 * MIN).await;

    app.clock.set(t0 + 16 * MIN);
    let r = app.orders.round().await.unwrap();
    assert_eq!(r.opened.len(), 1, "{r:?}");
    for _ in 0..3 {
        assert!(app.orders.round().await.unwrap().opened.is_empty(), "no duplicate order");
    }
    let open = orders(&app, "?state=open").await;
    assert_eq!(open.len(), 1);
    let o = &open[0];
    assert_eq!(
        (o["camera_id"].as_str(), o["cause"].as_str(), o["priority"].as_i64(), o["crew"].as_str()),
        (Some("cp-1"), Some("offline"), Some(1), Some("crew-north")),
        "a ring checkpoint, priority 1, the crew of the cell above its own: {o}"
    );
    assert_eq!(o["due_at_ms"].as_i64(), Some(t0 + 16 * MIN + 4 * HOUR));
    let cp_order = o["id"].as_i64().unwrap();

    // At 14 + 15 min the compound camera's order (priority 3, its own cell's crew, 72 h); at
    // 14 + 60 min the blur order (street, priority 2, 24 h).
    app.clock.set(t0 + 30 * MIN);
    assert_eq!(app.orders.round().await.unwrap().opened.len(), 1);
    app.clock.set(t0 + 75 * MIN);
    assert_eq!(app.orders.round().await.unwrap().opened.len(), 1);
    let open = orders(&app, "?state=open").await;
    let summary: Vec<(String, String, i64, Option<String>, i64)> = open
        .iter()
        .map(|o| {
            (
                o["camera_id"].as_str().unwrap().to_string(),
                o["cause"].as_str().unwrap().to_string(),
                o["priority"].as_i64().unwrap(),
                o["crew"].as_str().map(String::from),
                o["due_at_ms"].as_i64().unwrap() - o["opened_at_ms"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("cp-1".into(), "offline".into(), 1, Some("crew-north".into()), 4 * HOUR),
            ("st-1".into(), "quality:blur".into(), 2, Some("crew-north".into()), 24 * HOUR),
            ("cmp-1".into(), "offline".into(), 3, Some("crew-bank".into()), 72 * HOUR),
        ],
        "most urgent first"
    );
    assert_eq!(orders(&app, "?crew=crew-bank").await.len(), 1);

    // Overdue once past the due time.
    app.clock.set(t0 + 16 * MIN + 4 * HOUR + MIN);
    let (_, o, _) = app.get(&format!("/api/v1/maintenance/orders/{cp_order}")).await;
    assert_eq!(o["overdue"], true);

    // The crew notes what it found, with a photo, and fixes the camera.
    let (s, o, body) = app
        .post(
            &format!("/api/v1/maintenance/orders/{cp_order}/notes"),
            &json!({"text": "PoE switch dead", "photo": "photos/cp-1/switch.jpg"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let last = o["notes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["kind"].as_str(), last["photo"].as_str()), (Some("note"), Some("photos/cp-1/switch.jpg")));
    let fixed = app.clock.now_ms();
    app.health.stream("cp-1", true, "streaming", fixed).await;
    let (s, o, body) = app
        .post(
            &format!("/api/v1/maintenance/orders/{cp_order}/close"),
            &json!({"note": "switch replaced", "by": "Wang"}),
        )
        .await;
    assert_eq!((s, o["state"].as_str(), o["closed_by"].as_str()), (200, Some("closed"), Some("Wang")), "{body}");
    let (s, _, _) = app.post(&format!("/api/v1/maintenance/orders/{cp_order}/close"), &json!({"note": "again"})).await;
    assert_eq!(s, 409, "only an open order can be closed");
    let (s, _, _) = app.post("/api/v1/maintenance/orders/99999/close", &json!({"note": "x"})).await;
    assert_eq!(s, 404);

    // It fails again within the verification time: the same order reopens, no second order.
    app.clock.set(fixed + 10 * MIN);
    app.health.stream("cp-1", false, "stalled: no frame for 10 s", fixed + 10 * MIN).await;
    app.health.stream("cp-1", true, "streaming", fixed + 12 * MIN).await;
    app.clock.set(fixed + 13 * MIN);
    let r = app.orders.round().await.unwrap();
    assert_eq!((r.reopened.as_slice(), r.opened.len()), (&[cp_order][..], 0), "{r:?}");
    let (_, o, _) = app.get(&format!("/api/v1/maintenance/orders/{cp_order}")).await;
    assert_eq!((o["state"].as_str(), o["reopen_count"].as_i64()), (Some("open"), Some(1)));
    assert_eq!(orders(&app, "?camera=cp-1").await.len(), 1);

    // Closed again and healthy for the whole verification time: verified.
    let (s, _, _) = app.post(&format!("/api/v1/maintenance/orders/{cp_order}/close"), &json!({"note": "cable"})).await;
    assert_eq!(s, 200);
    let closed_at = app.clock.now_ms();
    app.clock.set(closed_at + 29 * MIN);
    assert!(app.orders.round().await.unwrap().verified.is_empty(), "not before the verification time");
    app.clock.set(closed_at + 31 * MIN);
    assert_eq!(app.orders.round().await.unwrap().verified, [cp_order]);
    let (_, o, _) = app.get(&format!("/api/v1/maintenance/orders/{cp_order}")).await;
    let log: Vec<&str> = o["notes"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(log, ["opened", "note", "closed", "reopened", "closed", "verified"]);
    // Each change is in the event log too, written with it.
    let (_, ev, _) = app.get("/api/v1/events?kind=work_order&limit=1000").await;
    let changes: Vec<&str> = ev
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["payload"]["order_id"].as_i64() == Some(cp_order))
        .map(|e| e["payload"]["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["opened", "noted", "closed", "reopened", "closed", "verified"]);

    // A verified order is history: the next failure gets a new order.
    let t1 = app.clock.now_ms();
    app.health.stream("cp-1", false, "stalled", t1).await;
    app.clock.set(t1 + 16 * MIN);
    let r = app.orders.round().await.unwrap();
    assert_eq!(r.opened.len(), 1);
    assert_ne!(r.opened[0], cp_order);

    // A hand-opened order follows the same placement; a second one for the same cause is refused.
    let (s, o, body) = app
        .post(
            "/api/v1/maintenance/orders",
            &json!({"camera_id": "cp-2", "cause": "vandalism", "detail": "housing cracked"}),
        )
        .await;
    assert_eq!((s, o["priority"].as_i64(), o["crew"].as_str()), (200, Some(1), Some("crew-north")), "{body}");
    let (s, _, _) = app
        .post("/api/v1/maintenance/orders", &json!({"camera_id": "cp-2", "cause": "vandalism", "detail": "again"}))
        .await;
    assert_eq!(s, 409);
    let (s, _, _) =
        app.post("/api/v1/maintenance/orders", &json!({"camera_id": "nope", "cause": "x", "detail": ""})).await;
    assert_eq!(s, 404);
    let (s, _, body) = app.get("/api/v1/maintenance/orders?state=bogus").await;
    assert_eq!(s, 400, "{body}");
    app.stop().await;
}

async fn maintenance_mode_and_availability(engine: Engine) {
    let db = TestDb::new(engine).await;
    let dir = config_dir(&[("site.toml", SITE)]);
    let app = TestApp::spawn(dir.path(), &db).await;
    let t0 = app.clock.now_ms();
    for c in ["cp-1", "cp-2", "cp-3", "st-1", "cmp-1"] {
        app.health.stream(c, true, "streaming", t0).await;
    }
    // st-1: offline for 1 h in hour 2; in maintenance for 2 h (hours 4-6), during which its
    // stream drops (not shown, no order); back in service streaming.
    app.health.stream("st-1", false, "stalled", t0 + HOUR).await;
    app.health.stream("st-1", true, "streaming", t0 + 2 * HOUR).await;
    app.clock.set(t0 + 4 * HOUR);
    let (s, v, body) =
        app.post("/api/v1/maintenance/cameras/st-1/mode", &json!({"mode": "maintenance", "reason": "lens swap"})).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("maintenance")), "{body}");
    app.health.stream("st-1", false, "stalled", t0 + 4 * HOUR + MIN).await;
    assert_eq!(status(&app, "st-1").await, "maintenance", "ingest does not override a crew's maintenance");
    app.clock.set(t0 + 5 * HOUR);
    assert!(app.orders.round().await.unwrap().opened.is_empty(), "no orders for a camera in maintenance");
    app.health.stream("st-1", true, "streaming", t0 + 5 * HOUR + 30 * MIN).await;
    app.clock.set(t0 + 6 * HOUR);
    let (s, v, _) =
        app.post("/api/v1/maintenance/cameras/st-1/mode", &json!({"mode": "service", "reason": "done"})).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("online")));
    let (s, _, _) = app.post("/api/v1/maintenance/cameras/st-1/mode", &json!({"mode": "holiday", "reason": ""})).await;
    assert_eq!(s, 400);
    let (s, _, _) = app.post("/api/v1/maintenance/cameras/nope/mode", &json!({"mode": "service", "reason": ""})).await;
    assert_eq!(s, 404);
    let (_, h, _) = app.get("/api/v1/cameras/st-1/status-history?limit=20").await;
    let mut seq: Vec<String> =
        h.as_array().unwrap().iter().map(|e| e["to_status"].as_str().unwrap().to_string()).collect();
    seq.reverse();
    assert_eq!(seq, ["unknown", "online", "offline", "online", "maintenance", "online"], "{h}");
    assert!(h[1]["reason"].as_str().unwrap().contains("lens swap"), "the crew's reason is kept: {h}");

    // Availability over hours 0-8: st-1 was up 8 - 1 (offline) - 2 (maintenance, not counted)
    // = 5 h of 6 counted; the others up all 8 h.
    app.clock.set(t0 + 8 * HOUR);
    let (s, a, body) = app.get(&format!("/api/v1/maintenance/availability?from_ms={t0}&to_ms={}", t0 + 8 * HOUR)).await;
    assert_eq!(s, 200, "{body}");
    let cam = |id: &str| a["cameras"].as_array().unwrap().iter().find(|c| c["camera_id"] == id).unwrap().clone();
    let st1 = cam("st-1");
    assert_eq!(
        (st1["offline_ms"].as_i64(), st1["maintenance_ms"].as_i64(), st1["outages"].as_i64()),
        (Some(HOUR), Some(2 * HOUR), Some(1))
    );
    assert!((st1["uptime"].as_f64().unwrap() - 5.0 / 6.0).abs() < 1e-9, "{st1}");
    assert_eq!(cam("cp-1")["uptime"].as_f64(), Some(1.0));
    let cell = a["cells"].as_array().unwrap().iter().find(|c| c["id"] == "g3-road").unwrap();
    // Four cameras in the cell: 8 + 8 + 8 + 5 up of 8 + 8 + 8 + 6 counted.
    assert!((cell["uptime"].as_f64().unwrap() - 29.0 / 30.0).abs() < 1e-9, "{cell}");
    let ring = a["rings"].as_array().unwrap().iter().find(|c| c["id"] == "inner").unwrap();
    assert_eq!(ring["uptime"].as_f64(), Some(1.0));
    assert_eq!(a["worst"][0]["camera_id"], "st-1");

    // The SD compound camera is a replacement candidate; the report gathers it all.
    let (s, r, body) = app.get("/api/v1/maintenance/replacements").await;
    assert_eq!(s, 200, "{body}");
    let ids: Vec<&str> = r.as_array().unwrap().iter().map(|c| c["camera_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["cmp-1"]);
    let (s, rep, body) = app.get("/api/v1/maintenance/report?days=1").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(rep["status_counts"]["online"].as_i64(), Some(5), "{rep}");
    assert_eq!(rep["replacements"][0]["camera_id"], "cmp-1");
    let (s, _, _) = app.get("/api/v1/maintenance/report?days=-1").await;
    assert_eq!(s, 400);
    app.stop().await;
}

/// A serve node of a cluster runs no cameras: its rounds open orders from the problems the
/// workers report for the cameras they hold (fenced like every worker write), ignore what a dead
/// worker last said, and leave out cameras a crew has in maintenance.
async fn a_cluster_serve_node_opens_orders_from_what_workers_report(engine: Engine) {
    use tianwang::config::Profile;
    use tianwang::registry::{LeaseBook, Placement, ProblemRow, Registry, RegistryError, WorkerSpec};
    let db = TestDb::new(engine).await;
    let dir = config_dir(&[("site.toml", SITE)]);
    let app = TestApp::spawn(dir.path(), &db).await;
    let t0 = app.clock.now_ms();
    let p = Placement { ttl_ms: 10 * MIN, ..Placement::default() };
    let spec = |id: &str| WorkerSpec {
        id: id.into(),
        cores: 2,
        max_cameras: 100,
        profiles: vec![Profile::Health, Profile::Street, Profile::Checkpoint],
        cpu_share: 0.0,
    };
    let beat = |at: i64| {
        let (reg, p, w) = (app.registry.clone(), p.clone(), spec("w-a"));
        async move {
            reg.heartbeat(&w, at, &p).await.unwrap();
            reg.place_all(at, &p).await.unwrap();
        }
    };
    beat(t0).await;
    // The worker's own handle on the registry, fenced with its leases.
    let worker = Registry::open(&db.url).await.unwrap();
    let book = LeaseBook::new("w-a", std::sync::Arc::new(app.clock.clone()));
    worker.fence_writes(book.clone());
    book.set(&app.registry.leases_of("w-a", t0).await.unwrap());
    assert_eq!(book.held().len(), 5, "{:?}", book.held());
    let offline = ProblemRow { cause: "offline".into(), since_ms: t0, detail: "stalled: no frame for 10 s".into() };
    worker.report_problems("cp-1", std::slice::from_ref(&offline), t0).await.unwrap();
    let blur = ProblemRow { cause: "quality:blur".into(), since_ms: t0, detail: "sharpness 12 of baseline 80".into() };
    worker.report_problems("st-1", std::slice::from_ref(&blur), t0).await.unwrap();
    // Another process that holds no lease cannot report.
    let stranger = Registry::open(&db.url).await.unwrap();
    stranger.fence_writes(LeaseBook::new("w-b", std::sync::Arc::new(app.clock.clone())));
    let refused = stranger.report_problems("cmp-1", std::slice::from_ref(&offline), t0).await;
    assert!(matches!(refused, Err(RegistryError::Fenced { .. })), "{refused:?}");

    // At 16 minutes (the worker heartbeating all along): the offline checkpoint's order, with its
    // ring priority and crew; the blur is not an hour old yet.
    for m in 1..=16 {
        beat(t0 + m * MIN).await;
    }
    app.clock.set(t0 + 16 * MIN);
    let r = app.orders.round().await.unwrap();
    assert_eq!(r.opened.len(), 1, "{r:?}");
    let open = orders(&app, "?state=open").await;
    assert_eq!(
        (
            open[0]["camera_id"].as_str(),
            open[0]["cause"].as_str(),
            open[0]["priority"].as_i64(),
            open[0]["crew"].as_str()
        ),
        (Some("cp-1"), Some("offline"), Some(1), Some("crew-north")),
        "{open:?}"
    );
    assert!(open[0]["detail"].as_str().unwrap().contains("stalled: no frame"), "{open:?}");
    assert!(app.orders.round().await.unwrap().opened.is_empty(), "one order per camera and cause");

    // A crew puts the street camera in maintenance: its blur opens nothing, even past the hour.
    let (s, _, body) =
        app.post("/api/v1/maintenance/cameras/st-1/mode", &json!({"mode": "maintenance", "reason": "lens"})).await;
    assert_eq!(s, 200, "{body}");
    for m in 17..=62 {
        beat(t0 + m * MIN).await;
    }
    app.clock.set(t0 + 62 * MIN);
    assert!(app.orders.round().await.unwrap().opened.is_empty());
    let (s, _, body) =
        app.post("/api/v1/maintenance/cameras/st-1/mode", &json!({"mode": "service", "reason": "done"})).await;
    assert_eq!(s, 200, "{body}");

    // The worker dies: what it last said is not news (the serve node shows its cameras offline
    // itself once no worker runs them).
    app.clock.set(t0 + 62 * MIN + p.ttl_ms + 1);
    assert!(app.registry.reported_problems(app.clock.now_ms()).await.unwrap().is_empty());
    assert!(app.orders.round().await.unwrap().opened.is_empty());
    app.stop().await;
}

on_both_engines!(
    work_orders_from_open_to_verified,
    maintenance_mode_and_availability,
    a_cluster_serve_node_opens_orders_from_what_workers_report
);
