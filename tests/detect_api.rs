//! Watchlists (布控) and passage queries over HTTP on both engines: entries of each kind, their
//! checks, the `watchlist_hit` events passages raise and the alerts those become, passage
//! queries and trajectories, and who may do what.

mod common;

use common::{Engine, TestApp, TestDb, authed_client, config_dir};
use serde_json::{Value, json};
use tianwang::clock::Clock;
use tianwang::config::{CameraKind, Owner};
use tianwang::geo::input::CameraInput;

const SITE: &str = "[site]\nname = \"Watch city\"\ntimezone = \"Asia/Shanghai\"\n";
const HOUR: i64 = 3_600_000;

/// The app with checkpoints cp-1 … cp-3 along an avenue (cp-1 westmost) and one street camera.
async fn app_with_checkpoints(engine: Engine) -> (TestApp, TestDb, tempfile::TempDir) {
    let db = TestDb::new(engine).await;
    let dir = config_dir(&[("site.toml", SITE)]);
    let app = TestApp::spawn(dir.path(), &db).await;
    let cam = |id: &str, lon: f64, kind: CameraKind| CameraInput {
        id: id.into(),
        name: format!("Checkpoint {id}"),
        lon,
        lat: 34.757,
        bearing_deg: 90.0,
        hfov_deg: 30.0,
        width_px: 2560,
        height_px: 1440,
        mounting_height_m: 6.5,
        kind,
        owner: Owner::Public,
        grid_cell: None,
    };
    let cams = vec![
        cam("cp-1", 113.60, CameraKind::Checkpoint),
        cam("cp-2", 113.62, CameraKind::Checkpoint),
        cam("cp-3", 113.64, CameraKind::Checkpoint),
        cam("street-1", 113.61, CameraKind::Street),
    ];
    let (n, rejected) = app.registry.store_imported_cameras(&cams, "test.csv", app.clock.now_ms()).await.unwrap();
    assert_eq!((n, rejected.len()), (4, 0));
    (app, db, dir)
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value, String) {
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

async fn patch(app: &TestApp, path: &str, body: &Value) -> (u16, Value, String) {
    send(app.client.patch(app.url(path)).json(body)).await
}

async fn delete(app: &TestApp, path: &str) -> (u16, Value, String) {
    send(app.client.delete(app.url(path))).await
}

/// GET with query parameters encoded by the client (plates carry `?` and non-ASCII).
async fn get_q(app: &TestApp, path: &str, q: &[(&str, &str)]) -> (u16, Value, String) {
    send(app.client.get(app.url(path)).query(q)).await
}

async fn add(app: &TestApp, body: Value) -> Value {
    let (s, v, text) = app.post("/api/v1/watchlists", &body).await;
    assert_eq!(s, 201, "{body}: {text}");
    v
}

/// Posts a passage; returns its id and the ids of the events it raised.
async fn pass(app: &TestApp, camera: &str, at: i64, plate: &str) -> (i64, Vec<i64>) {
    pass_with(app, json!({"camera_id": camera, "pass_time_ms": at, "plate_no": plate})).await
}

async fn pass_with(app: &TestApp, body: Value) -> (i64, Vec<i64>) {
    let (s, v, text) = app.post("/api/v1/passages", &body).await;
    assert_eq!(s, 201, "{body}: {text}");
    let events = v["events"].as_array().unwrap().iter().map(|e| e.as_i64().unwrap()).collect();
    (v["passage"]["id"].as_i64().unwrap(), events)
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v}")).iter().map(|x| x["id"].as_i64().unwrap()).collect()
}

async fn watchlist_entries_are_created_listed_changed_and_revoked(engine: Engine) {
    let (app, _db, _dir) = app_with_checkpoints(engine).await;
    let t0 = app.clock.now_ms();
    let exact = add(
        &app,
        json!({"pattern": "豫a·12345", "reason": "stolen car", "priority": "critical", "owner": "case 2024-17"}),
    )
    .await;
    assert_eq!(exact["pattern"], "豫A12345", "{exact}");
    assert_eq!((exact["match_kind"].as_str(), exact["max_distance"].is_null()), (Some("exact"), true));
    assert_eq!((exact["valid_from_ms"].as_i64(), exact["valid_until_ms"].is_null()), (Some(t0), true));
    assert_eq!((exact["created_by"].as_str(), exact["created_at_ms"].as_i64()), (Some("test-admin"), Some(t0)));
    let wild = add(&app, json!({"pattern": "豫B**88", "match_kind": "wildcard", "reason": "fake plates"})).await;
    assert_eq!((wild["pattern"].as_str(), wild["priority"].as_str()), (Some("豫B*88"), Some("medium")));
    let fuzzy = add(&app, json!({"pattern": "豫C0B125", "match_kind": "fuzzy", "reason": "hit and run"})).await;
    assert_eq!(fuzzy["max_distance"], 1.0);
    let expiring = add(
        &app,
        json!({"pattern": "豫D11111", "reason": "court order", "valid_from_ms": t0 - 2 * HOUR, "valid_until_ms": t0 - HOUR}),
    )
    .await;
    let id = |v: &Value| v["id"].as_i64().unwrap();
    let (e, w, f, x) = (id(&exact), id(&wild), id(&fuzzy), id(&expiring));

    // Live entries only by default; an expired one only with all=true.
    let (s, live, _) = app.get("/api/v1/watchlists").await;
    assert_eq!(s, 200);
    assert_eq!(ids(&live), [e, w, f]);
    let (_, every, _) = app.get("/api/v1/watchlists?all=true").await;
    assert_eq!(ids(&every), [e, w, f, x]);
    let (s, one, _) = app.get(&format!("/api/v1/watchlists/{e}")).await;
    assert_eq!((s, &one), (200, &exact));

    app.clock.advance(1000);
    let (s, changed, body) = patch(
        &app,
        &format!("/api/v1/watchlists/{e}"),
        &json!({"priority": "high", "valid_until_ms": t0 + 10 * HOUR, "owner": null}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        (changed["priority"].as_str(), changed["valid_until_ms"].as_i64()),
        (Some("high"), Some(t0 + 10 * HOUR))
    );
    assert!(changed["owner"].is_null(), "{changed}");
    assert_eq!((changed["reason"].as_str(), changed["pattern"].as_str()), (Some("stolen car"), Some("豫A12345")));
    assert_eq!(
        (changed["updated_by"].as_str(), changed["updated_at_ms"].as_i64()),
        (Some("test-admin"), Some(t0 + 1000))
    );
    let (s, _, body) = patch(&app, &format!("/api/v1/watchlists/{f}"), &json!({"max_distance": 2})).await;
    assert_eq!(s, 200, "{body}");

    let (s, revoked, body) = delete(&app, &format!("/api/v1/watchlists/{w}")).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        (revoked["revoked_at_ms"].as_i64(), revoked["revoked_by"].as_str()),
        (Some(t0 + 1000), Some("test-admin"))
    );
    let (s, _, body) = delete(&app, &format!("/api/v1/watchlists/{w}")).await;
    assert_eq!(s, 409, "{body}");
    let (s, _, body) = patch(&app, &format!("/api/v1/watchlists/{w}"), &json!({"reason": "changed"})).await;
    assert_eq!(s, 409, "{body}");
    assert!(body.contains("revoked"), "{body}");
    let (_, live, _) = app.get("/api/v1/watchlists").await;
    assert_eq!(ids(&live), [e, f]);
    let (_, every, _) = app.get("/api/v1/watchlists?all=true").await;
    assert_eq!(every.as_array().unwrap().len(), 4, "revoked entries stay on record");
    for (s, _, body) in [
        app.get("/api/v1/watchlists/999").await,
        patch(&app, "/api/v1/watchlists/999", &json!({"reason": "x"})).await,
        delete(&app, "/api/v1/watchlists/999").await,
    ] {
        assert_eq!(s, 404, "{body}");
    }
    app.stop().await;
}

async fn invalid_watchlist_entries_are_400_naming_the_field(engine: Engine) {
    let (app, _db, _dir) = app_with_checkpoints(engine).await;
    let t0 = app.clock.now_ms();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"pattern": "", "reason": "r"}), "pattern: must not be empty"),
        (json!({"pattern": "豫A1234", "reason": "r"}), "pattern: "),
        (json!({"pattern": "A123456", "match_kind": "fuzzy", "reason": "r"}), "pattern: "),
        (json!({"pattern": "豫A*2345", "reason": "r"}), "wildcard"),
        (json!({"pattern": "豫A%2345", "match_kind": "wildcard", "reason": "r"}), "pattern: "),
        (json!({"pattern": "**", "match_kind": "wildcard", "reason": "r"}), "every vehicle"),
        (json!({"pattern": "豫A12345678901234567", "match_kind": "wildcard", "reason": "r"}), "pattern: "),
        (json!({"pattern": "豫A12345", "reason": " "}), "reason: must not be empty"),
        (json!({"pattern": "豫A12345"}), "reason"),
        (json!({"pattern": "豫A12345", "reason": "r", "match_kind": "regex"}), "match_kind"),
        (json!({"pattern": "豫A12345", "reason": "r", "priority": "urgent"}), "priority"),
        (json!({"pattern": "豫A12345", "reason": "r", "match_kind": "fuzzy", "max_distance": 0}), "max_distance: "),
        (json!({"pattern": "豫A12345", "reason": "r", "match_kind": "fuzzy", "max_distance": 3.5}), "max_distance: "),
        (json!({"pattern": "豫A12345", "reason": "r", "max_distance": 1}), "max_distance: only for fuzzy"),
        (json!({"pattern": "豫A12345", "reason": "r", "valid_from_ms": t0, "valid_until_ms": t0}), "valid_until_ms: "),
        (json!({"pattern": "豫A12345", "reason": "r", "colour": "blue"}), "colour"),
    ];
    for (body, says) in cases {
        let (s, v, text) = app.post("/api/v1/watchlists", &body).await;
        assert_eq!(s, 400, "{body}: {text}");
        assert_eq!(v["error"]["kind"], "bad_request");
        assert!(v["error"]["message"].as_str().unwrap().contains(says), "{body}: {text} should say {says:?}");
    }
    let ok = add(&app, json!({"pattern": "豫A12345", "reason": "r"})).await;
    let path = format!("/api/v1/watchlists/{}", ok["id"]);
    for (body, says) in [
        (json!({}), "nothing to change"),
        (json!({"max_distance": 1}), "max_distance: "),
        (json!({"valid_until_ms": t0 - 1}), "valid_until_ms: "),
        (json!({"reason": ""}), "reason: "),
        (json!({"pattern": "豫A99999"}), "pattern"),
    ] {
        let (s, _, text) = patch(&app, &path, &body).await;
        assert_eq!(s, 400, "{body}: {text}");
        assert!(text.contains(says), "{body}: {text} should say {says:?}");
    }
    let (_, after, _) = app.get(&path).await;
    assert_eq!(after, ok, "refused changes change nothing");
    let (s, _, _) = get_q(&app, "/api/v1/watchlists", &[("all", "maybe")]).await;
    assert_eq!(s, 400);
    app.stop().await;
}

async fn passages_raise_watchlist_hits_that_become_alerts(engine: Engine) {
    let (app, _db, _dir) = app_with_checkpoints(engine).await;
    let t0 = app.clock.now_ms();
    let e1 = add(&app, json!({"pattern": "豫A12345", "reason": "stolen car", "priority": "critical"})).await;
    let e2 = add(&app, json!({"pattern": "豫B*88", "match_kind": "wildcard", "reason": "fake plates"})).await;
    let e3 =
        add(&app, json!({"pattern": "豫C0B125", "match_kind": "fuzzy", "reason": "hit and run", "priority": "high"}))
            .await;
    let e4 = add(
        &app,
        json!({"pattern": "豫D11111", "reason": "court order", "valid_from_ms": t0 + HOUR, "valid_until_ms": t0 + 2 * HOUR}),
    )
    .await;
    let e5 = add(&app, json!({"pattern": "豫E22222", "reason": "withdrawn"})).await;
    let e6 =
        add(&app, json!({"pattern": "豫A*", "match_kind": "wildcard", "reason": "district sweep", "priority": "low"}))
            .await;
    let (s, _, _) = delete(&app, &format!("/api/v1/watchlists/{}", e5["id"])).await;
    assert_eq!(s, 200);

    // Hits: the exact plate however written (and the low-priority sweep), with pictures.
    let (p1, ev1) = pass_with(
        &app,
        json!({"camera_id": "cp-1", "pass_time_ms": t0 + 1000, "plate_no": "豫A·12345", "plate_color": "blue",
               "plate_image": "/data/plates/1.jpg", "context_image": "/data/scenes/1.jpg", "frames": 6, "lane_no": 2}),
    )
    .await;
    assert_eq!(ev1.len(), 2);
    let (_, ev) = pass(&app, "cp-1", t0 + 2000, "沪C00000").await;
    assert!(ev.is_empty(), "not on any list");
    let (p3, ev3) = pass(&app, "cp-2", t0 + 3000, "豫B12388").await;
    assert_eq!(ev3.len(), 1, "wildcard");
    let (p4, ev4) = pass(&app, "cp-2", t0 + 4000, "豫CD8125").await;
    assert_eq!(ev4.len(), 1, "fuzzy: 0/D and B/8 cost 0.5 each");
    for (plate, why) in [("鄂C0B125", "another province"), ("豫CX8125", "distance 1.5"), ("豫E22222", "revoked")] {
        let (_, ev) = pass(&app, "cp-3", t0 + 5000, plate).await;
        assert!(ev.is_empty(), "{plate}: {why}");
    }
    let (_, ev) = pass(&app, "cp-3", t0 + 6000, "豫D11111").await;
    assert!(ev.is_empty(), "before valid_from");
    let (p8, ev8) = pass(&app, "cp-3", t0 + HOUR + 1, "豫D11111").await;
    assert_eq!(ev8.len(), 1, "inside the window");
    let (_, ev) = pass(&app, "cp-3", t0 + 2 * HOUR, "豫D11111").await;
    assert!(ev.is_empty(), "valid_until is exclusive");
    let (_, ev) = pass_with(&app, json!({"camera_id": "cp-1", "pass_time_ms": t0})).await;
    assert!(ev.is_empty(), "no plate read: nothing to match");

    let (s, events, _) = app.get("/api/v1/events?kind=watchlist_hit").await;
    assert_eq!(s, 200);
    let got: Vec<(i64, i64, &str)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let p = &e["payload"];
            (p["watchlist_id"].as_i64().unwrap(), p["passage_id"].as_i64().unwrap(), p["plate_no"].as_str().unwrap())
        })
        .collect();
    let id = |e: &Value| e["id"].as_i64().unwrap();
    assert_eq!(
        got,
        [
            (id(&e1), p1, "豫A12345"),
            (id(&e6), p1, "豫A12345"),
            (id(&e2), p3, "豫B12388"),
            (id(&e3), p4, "豫CD8125"),
            (id(&e4), p8, "豫D11111"),
        ]
    );
    assert_eq!(ids(&events), [ev1.clone(), ev3, ev4, ev8].concat());
    let first = &events[0];
    assert_eq!((first["camera_id"].as_str(), first["at_ms"].as_i64()), (Some("cp-1"), Some(t0 + 1000)));
    assert_eq!(
        first["payload"],
        json!({"plate_no": "豫A12345", "plate_color": "blue", "passage_id": p1, "camera_id": "cp-1",
               "pass_time_ms": t0 + 1000, "watchlist_id": id(&e1), "pattern": "豫A12345", "match_kind": "exact",
               "distance": 0.0, "reason": "stolen car", "priority": "critical",
               "plate_image": "/data/plates/1.jpg", "context_image": "/data/scenes/1.jpg"})
    );
    let fuzzy = &events[3]["payload"];
    assert_eq!((fuzzy["match_kind"].as_str(), fuzzy["distance"].as_f64()), (Some("fuzzy"), Some(1.0)));
    assert_eq!((fuzzy["pattern"].as_str(), fuzzy["priority"].as_str()), (Some("豫C0B125"), Some("high")));
    assert!(fuzzy["plate_image"].is_null());

    // The alert service reads the event log on its own tick: wait (bounded) for the alerts.
    let want = ["watchlist_hit:豫A12345", "watchlist_hit:豫B12388", "watchlist_hit:豫CD8125", "watchlist_hit:豫D11111"];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let alerts = loop {
        let (s, page, body) = app.get("/api/v1/alerts?kind=watchlist_hit").await;
        assert_eq!(s, 200, "{body}");
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= want.len() {
            break items;
        }
        assert!(std::time::Instant::now() < deadline, "alerts never came: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let mut keys: Vec<&str> = alerts.iter().map(|a| a["dedupe_key"].as_str().unwrap()).collect();
    keys.sort();
    assert_eq!(keys, want);
    let a = alerts.iter().find(|a| a["dedupe_key"] == "watchlist_hit:豫A12345").unwrap();
    assert_eq!((a["severity"].as_str(), a["cameras"].clone()), (Some("critical"), json!(["cp-1"])));
    assert!(a["title"].as_str().unwrap().contains("豫A12345"), "{a}");
    assert_eq!(a["detail"]["event"]["reason"].as_str().map(|r| r == "stolen car" || r == "district sweep"), Some(true));
    app.stop().await;
}

async fn passage_details_round_trip_and_are_checked(engine: Engine) {
    let (app, _db, _dir) = app_with_checkpoints(engine).await;
    let t0 = app.clock.now_ms();
    let full = json!({"camera_id": "cp-2", "pass_time_ms": t0, "plate_no": "豫A12345", "reliability": 0.93,
        "plate_reliabilities": [0.99, 0.98, 0.97, 0.5, 0.96, 0.95, 0.94], "plate_image": "/data/p/1.jpg",
        "context_image": "/data/c/1.jpg", "track_id": "cp-2/17", "frames": 9, "lane_no": 3});
    // Readers without a confidence first, then one with: on PostgreSQL a NULL float must not fix
    // the type of a cached statement (sqlx's Any driver sends it as float4).
    for i in 0..4 {
        pass(&app, "cp-2", t0 - 10_000 + i, "豫A00000").await;
    }
    let (s, r, body) = app.post("/api/v1/passages", &full).await;
    assert_eq!(s, 201, "{body}");
    let (_, page, _) = app.get("/api/v1/passages").await;
    let stored = &page["items"][0];
    assert_eq!(stored, &r["passage"]);
    for k in ["plate_reliabilities", "plate_image", "context_image", "track_id", "frames", "lane_no", "reliability"] {
        assert_eq!(stored[k], full[k], "{k}");
    }
    assert_eq!(stored["source"], "api");
    // A caller that knows none of the new fields still works; they are null.
    let (s, r, body) = app.post("/api/v1/passages", &json!({"camera_id": "cp-2", "pass_time_ms": t0})).await;
    assert_eq!(s, 201, "{body}");
    assert!(r["passage"]["plate_reliabilities"].is_null() && r["passage"]["lane_no"].is_null(), "{r}");
    for (extra, says) in [
        (json!({"plate_reliabilities": [0.5, 1.5]}), "plate_reliabilities: "),
        (json!({"plate_reliabilities": vec![0.5; 17]}), "plate_reliabilities: "),
        (json!({"frames": 0}), "frames: "),
        (json!({"lane_no": 0}), "lane_no: "),
        (json!({"plate_image": "x".repeat(2000)}), "plate_image: "),
        (json!({"frames": "many"}), "frames"),
    ] {
        let mut body = json!({"camera_id": "cp-2", "pass_time_ms": t0});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (s, _, text) = app.post("/api/v1/passages", &body).await;
        assert_eq!(s, 400, "{body}: {text}");
        assert!(text.contains(says), "{text} should say {says:?}");
    }
    let (s, _, text) = app.post("/api/v1/passages", &json!({"camera_id": "street-1", "pass_time_ms": t0})).await;
    assert_eq!(s, 400, "{text}");
    app.stop().await;
}

async fn passage_queries_filter_by_plate_camera_and_time_and_page(engine: Engine) {
    let (app, _db, _dir) = app_with_checkpoints(engine).await;
    let t0 = app.clock.now_ms();
    // Posted out of time order: listings are by passing time, newest first.
    let rows = [
        ("cp-1", 5, "豫A12345"),
        ("cp-2", 1, "豫A12345"),
        ("cp-3", 9, "豫A12345"),
        ("cp-1", 2, "豫A12388"),
        ("cp-2", 3, "豫B12345"),
        ("cp-3", 4, "京A12345"),
        ("cp-1", 7, "豫A99345"),
        ("cp-2", 7, "豫A1234"),
    ];
    let mut by_key = std::collections::HashMap::new();
    for (cam, sec, plate) in rows {
        let (id, _) = pass(&app, cam, t0 + sec * 1000, plate).await;
        by_key.insert((cam, sec), id);
    }
    let k = |cam, sec| by_key[&(cam, sec)];
    let list = |q: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let q: Vec<(&str, &str)> = q.iter().map(|(a, b)| (*a, b.as_str())).collect();
            let (s, page, body) = get_q(app, "/api/v1/passages", &q).await;
            assert_eq!(s, 200, "{q:?}: {body}");
            (ids(&page["items"]), page["next_before"].as_i64())
        }
    };
    let p = |s: &str| s.to_string();
    // Ties in time (cp-1 and cp-2 at 7 s) come newest id first.
    let (all, next) = list(vec![]).await;
    assert_eq!(
        all,
        [
            k("cp-3", 9),
            k("cp-2", 7),
            k("cp-1", 7),
            k("cp-1", 5),
            k("cp-3", 4),
            k("cp-2", 3),
            k("cp-1", 2),
            k("cp-2", 1)
        ]
    );
    assert_eq!(next, None);
    assert_eq!(list(vec![("plate", p("豫a 12345"))]).await.0, [k("cp-3", 9), k("cp-1", 5), k("cp-2", 1)]);
    assert_eq!(
        list(vec![("plate", p("豫A*345"))]).await.0,
        [k("cp-3", 9), k("cp-1", 7), k("cp-1", 5), k("cp-2", 1)],
        "* is any run"
    );
    // A pattern that starts with a wildcard reads a whole window: it needs one, of at most 31 days.
    let since = (t0 - 86_400_000).to_string();
    assert_eq!(
        list(vec![("plate", p("?A12345")), ("from", since.clone())]).await.0,
        [k("cp-3", 9), k("cp-1", 5), k("cp-3", 4), k("cp-2", 1)]
    );
    assert_eq!(list(vec![("plate", p("*88")), ("from", since)]).await.0, [k("cp-1", 2)]);
    assert_eq!(list(vec![("camera", p("cp-1"))]).await.0, [k("cp-1", 7), k("cp-1", 5), k("cp-1", 2)]);
    assert_eq!(
        list(vec![("camera", p("cp-2")), ("plate", p("豫*"))]).await.0,
        [k("cp-2", 7), k("cp-2", 3), k("cp-2", 1)]
    );
    let at = |s: i64| (t0 + s * 1000).to_string();
    assert_eq!(
        list(vec![("from", at(3)), ("to", at(7))]).await.0,
        [k("cp-1", 5), k("cp-3", 4), k("cp-2", 3)],
        "from inclusive, to exclusive"
    );
    // Pages of 3 through everything, across the tie at 7 s.
    let mut seen = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let mut q = vec![("limit", p("3"))];
        if let Some(b) = before {
            q.push(("before", b.to_string()));
        }
        let (page, next) = list(q).await;
        assert!(page.len() <= 3);
        seen.extend(page);
        match next {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, all);
    let (page, next) = list(vec![("limit", p("2")), ("camera", p("cp-1"))]).await;
    assert_eq!((page, next), (vec![k("cp-1", 7), k("cp-1", 5)], Some(k("cp-1", 5))));
    let (page, next) = list(vec![("limit", p("2")), ("camera", p("cp-1")), ("before", k("cp-1", 5).to_string())]).await;
    assert_eq!((page, next), (vec![k("cp-1", 2)], None));

    for (q, says) in [
        (vec![("limit", "0")], "limit: "),
        (vec![("limit", "1001")], "limit: "),
        (vec![("plate", "豫A$1")], "plate: "),
        (vec![("plate", "**")], "plate: "),
        (vec![("plate", "*88")], "give `from`"),
        (vec![("plate", "?A12345"), ("from", "0")], "at most 31 days"),
        (vec![("from", "10"), ("to", "10")], "to: "),
        (vec![("before", "999999")], "before: "),
        (vec![("from", "yesterday")], "from"),
        (vec![("colour", "blue")], "colour"),
    ] {
        let (s, v, body) = get_q(&app, "/api/v1/passages", &q).await;
        assert_eq!(s, 400, "{q:?}: {body}");
        assert!(v["error"]["message"].as_str().unwrap().contains(says), "{q:?}: {body} should say {says:?}");
    }
    app.stop().await;
}

async fn a_trajectory_is_the_plates_passages_in_time_order_with_positions(engine: Engine) {
    let (app, _db, _dir) = app_with_checkpoints(engine).await;
    let t0 = app.clock.now_ms();
    let (c, _) = pass(&app, "cp-3", t0 + 30_000, "豫A12345").await;
    let (a, _) = pass(&app, "cp-1", t0 + 10_000, "豫A·12345").await;
    let (b, _) = pass(&app, "cp-2", t0 + 20_000, "豫a12345").await;
    pass(&app, "cp-2", t0 + 15_000, "豫A12346").await;
    let (s, points, body) = app.get("/api/v1/vehicles/豫A12345/trajectory").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(ids(&points), [a, b, c]);
    let first = &points[0];
    assert_eq!((first["camera_id"].as_str(), first["camera_name"].as_str()), (Some("cp-1"), Some("Checkpoint cp-1")));
    assert_eq!((first["lon"].as_f64(), first["lat"].as_f64()), (Some(113.60), Some(34.757)));
    assert_eq!((first["pass_time_ms"].as_i64(), first["plate_no"].as_str()), (Some(t0 + 10_000), Some("豫A12345")));
    let lons: Vec<f64> = points.as_array().unwrap().iter().map(|p| p["lon"].as_f64().unwrap()).collect();
    assert!(lons.windows(2).all(|w| w[0] < w[1]), "eastward along the avenue: {lons:?}");
    // Written differently in the path; a window.
    let (_, points, _) = get_q(
        &app,
        "/api/v1/vehicles/豫a·12345/trajectory",
        &[("from", &(t0 + 15_000).to_string()), ("to", &(t0 + 30_000).to_string())],
    )
    .await;
    assert_eq!(ids(&points), [b]);
    let (_, points, _) = app.get("/api/v1/vehicles/京A00000/trajectory").await;
    assert_eq!(ids(&points), Vec::<i64>::new());
    for path in ["/api/v1/vehicles/豫A*/trajectory", "/api/v1/vehicles/豫A12345/trajectory?from=5&to=1"] {
        let (s, _, body) = app.get(path).await;
        assert_eq!(s, 400, "{path}: {body}");
    }
    app.stop().await;
}

async fn roles_reach_watchlists_passages_and_trajectories_as_documented(engine: Engine) {
    let (app, _db, _dir) = app_with_checkpoints(engine).await;
    let now = app.clock.now_ms();
    let entry = add(&app, json!({"pattern": "豫A12345", "reason": "r"})).await;
    let one = format!("/api/v1/watchlists/{}", entry["id"]);
    let mut clients = Vec::new();
    for role in ["operator", "maintainer", "planner", "admin"] {
        let t = app.registry.create_token(&format!("{role}-1"), role, false, now).await.unwrap();
        clients.push((role, authed_client(&t)));
    }
    let new_entry = json!({"pattern": "豫B12345", "reason": "r"});
    let passage = json!({"camera_id": "cp-1", "pass_time_ms": now, "plate_no": "豫C12345"});
    // (method, path, body, roles that may) — admin may everything. DELETE last: it revokes.
    let table: Vec<(&str, String, Value, &[&str])> = vec![
        ("GET", "/api/v1/watchlists".into(), Value::Null, &["operator", "planner"]),
        ("GET", one.clone(), Value::Null, &["operator", "planner"]),
        ("POST", "/api/v1/watchlists".into(), new_entry, &["operator"]),
        ("PATCH", one.clone(), json!({"priority": "high"}), &["operator"]),
        ("GET", "/api/v1/passages".into(), Value::Null, &["operator", "planner"]),
        ("POST", "/api/v1/passages".into(), passage, &["operator"]),
        ("GET", "/api/v1/vehicles/豫A12345/trajectory".into(), Value::Null, &["operator", "planner"]),
        ("DELETE", one, Value::Null, &["operator"]),
    ];
    for (method, path, body, may) in &table {
        for (role, c) in &clients {
            let url = app.url(path);
            let req = match *method {
                "GET" => c.get(url),
                "POST" => c.post(url).json(body),
                "PATCH" => c.patch(url).json(body),
                _ => c.delete(url),
            };
            let (s, _, text) = send(req).await;
            let allowed = *role == "admin" || may.contains(role);
            if allowed {
                assert!((200..300).contains(&s) || (*method == "DELETE" && s == 409), "{role} {method} {path}: {text}");
            } else {
                assert_eq!(s, 403, "{role} {method} {path}: {text}");
            }
        }
    }
    let planner = &clients.iter().find(|(r, _)| *r == "planner").unwrap().1;
    let (s, v, _) =
        send(planner.post(app.url("/api/v1/watchlists")).json(&json!({"pattern": "豫A1", "reason": "r"}))).await;
    assert_eq!((s, v["error"]["kind"].as_str()), (403, Some("forbidden")));
    app.stop().await;
}

async fn the_openapi_document_lists_the_new_endpoints(engine: Engine) {
    let (app, _db, _dir) = app_with_checkpoints(engine).await;
    let (s, doc, _) = app.get("/api/v1/openapi.json").await;
    assert_eq!(s, 200);
    let paths = &doc["paths"];
    for (path, methods) in [
        ("/api/v1/watchlists", &["get", "post"][..]),
        ("/api/v1/watchlists/{id}", &["get", "patch", "delete"]),
        ("/api/v1/passages", &["get", "post"]),
        ("/api/v1/vehicles/{plate}/trajectory", &["get"]),
    ] {
        for m in methods {
            assert!(paths[path][m].is_object(), "{m} {path} missing from the OpenAPI document");
        }
    }
    assert!(doc["components"]["schemas"]["WatchlistEntry"].is_object());
    app.stop().await;
}

on_both_engines!(
    watchlist_entries_are_created_listed_changed_and_revoked,
    invalid_watchlist_entries_are_400_naming_the_field,
    passages_raise_watchlist_hits_that_become_alerts,
    passage_details_round_trip_and_are_checked,
    passage_queries_filter_by_plate_camera_and_time_and_page,
    a_trajectory_is_the_plates_passages_in_time_order_with_positions,
    roles_reach_watchlists_passages_and_trajectories_as_documented,
    the_openapi_document_lists_the_new_endpoints,
);
