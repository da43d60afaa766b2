//! The HTTP API through a real client against the app on port 0, on both engines.

mod common;

use common::{Engine, TestApp, TestDb, config_dir};
use serde_json::Value;
use tianwang::config::CameraStatus;

const SITE: &str = r#"[site]
name = "API test site"
timezone = "Asia/Shanghai"
[defaults]
hfov_deg = 90
resolution = "1920x1080"
mounting_height_m = 6
owner = "public"
[[grid_cell]]
id = "g1a"
name = "Station A"
level = 1
[[grid_cell]]
id = "g1b"
name = "Station B"
level = 1
[[grid_cell]]
id = "g2a"
name = "Community A1"
level = 2
parent = "g1a"
[[grid_cell]]
id = "g2b"
name = "Community A2"
level = 2
parent = "g1a"
[[grid_cell]]
id = "g3a"
name = "Compound A1-1"
level = 3
parent = "g2a"
"#;

const PASSWORD: &str = "SuperSecret-42";
const USERNAME: &str = "operator-admin-x";

fn cams() -> String {
    let rows = [
        ("a-street", "street", "public", Some("g2a"), 113.60, 34.70, ""),
        ("b-cp", "checkpoint", "public", Some("g2b"), 113.65, 34.75, ""),
        (
            "c-shop",
            "shop",
            "enterprise",
            Some("g1b"),
            113.70,
            34.80,
            "username = \"operator-admin-x\"\npassword_file = \"secrets/c-shop\"\n",
        ),
        ("d-home", "household", "resident", Some("g1b"), 113.75, 34.85, ""),
        ("e-ent", "entrance", "enterprise", None, 113.80, 34.90, "enabled = false\n"),
        ("f-compound", "compound", "enterprise", Some("g3a"), 113.62, 34.72, ""),
    ];
    rows.iter()
        .map(|(id, kind, owner, cell, lon, lat, extra)| {
            let cell = cell.map(|c| format!("grid_cell = \"{c}\"\n")).unwrap_or_default();
            format!(
                "[[camera]]\nid = \"{id}\"\nname = \"{id}\"\nurl = \"rtsp://10.0.0.9/{id}\"\nlon = {lon}\nlat = {lat}\nbearing_deg = 45\nkind = \"{kind}\"\nowner = \"{owner}\"\n{cell}{extra}\n"
            )
        })
        .collect()
}

async fn app(engine: Engine) -> (TestApp, TestDb, tempfile::TempDir) {
    let db = TestDb::new(engine).await;
    let cfg = config_dir(&[("site.toml", SITE), ("cams.toml", &cams()), ("secrets/c-shop", PASSWORD)]);
    let app = TestApp::spawn(cfg.path(), &db).await;
    (app, db, cfg)
}

fn ids(v: &Value) -> Vec<String> {
    v["items"].as_array().expect("items").iter().map(|c| c["id"].as_str().unwrap().to_string()).collect()
}

async fn listing_and_each_filter(engine: Engine) {
    let (app, _db, _cfg) = app(engine).await;
    let (st, all, _) = app.get("/api/v1/cameras").await;
    assert_eq!(st, 200);
    assert_eq!(ids(&all), ["a-street", "b-cp", "c-shop", "d-home", "e-ent", "f-compound"]);
    assert!(all["next_cursor"].is_null());
    let b = &all["items"][1];
    assert_eq!(b["kind"], "checkpoint");
    assert_eq!(b["profile"], "checkpoint");
    assert_eq!(b["position"]["lon"], 113.65);
    assert_eq!(b["resolution"]["width"], 1920);
    assert_eq!(b["grid_cell"], "g2b");
    assert_eq!(b["status"], "unknown");
    assert_eq!(all["items"][4]["status"], "disabled");
    assert_eq!(all["items"][2]["has_credentials"], true);

    let cases: &[(&str, &[&str])] = &[
        ("kind=checkpoint", &["b-cp"]),
        ("kind=shop,household", &["c-shop", "d-home"]),
        ("owner=enterprise", &["c-shop", "e-ent", "f-compound"]),
        ("owner=public&kind=street", &["a-street"]),
        ("status=disabled", &["e-ent"]),
        ("grid_cell=g1a", &["a-street", "b-cp", "f-compound"]),
        ("grid_cell=g2a", &["a-street", "f-compound"]),
        ("grid_cell=g3a", &["f-compound"]),
        ("grid_cell=g1b", &["c-shop", "d-home"]),
        ("bbox=113.64,34.74,113.76,34.86", &["b-cp", "c-shop", "d-home"]),
        ("bbox=113.65,34.75,113.65,34.75", &["b-cp"]),
        ("bbox=100,10,101,11", &[]),
        ("kind=shop&bbox=113.0,34.0,114.0,35.0&owner=enterprise&grid_cell=g1b", &["c-shop"]),
    ];
    for (q, want) in cases {
        let (st, body, text) = app.get(&format!("/api/v1/cameras?{q}")).await;
        assert_eq!(st, 200, "{q}: {text}");
        assert_eq!(ids(&body), *want, "{q}");
    }

    // A status set by another part of the system is filterable.
    app.registry.set_status("d-home", CameraStatus::Offline, "no frames", app.clock.now(), None).await.unwrap();
    let (_, body, _) = app.get("/api/v1/cameras?status=offline,disabled").await;
    assert_eq!(ids(&body), ["d-home", "e-ent"]);
    app.stop().await;
}

trait Now {
    fn now(&self) -> i64;
}
impl Now for tianwang::clock::SimClock {
    fn now(&self) -> i64 {
        tianwang::clock::Clock::now_ms(self)
    }
}

async fn pagination_visits_every_camera_once(engine: Engine) {
    let (app, _db, _cfg) = app(engine).await;
    for limit in [1, 2, 4, 6, 7] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let q = match &cursor {
                Some(c) => format!("/api/v1/cameras?limit={limit}&cursor={c}"),
                None => format!("/api/v1/cameras?limit={limit}"),
            };
            let (st, body, text) = app.get(&q).await;
            assert_eq!(st, 200, "{text}");
            let page = ids(&body);
            assert!(page.len() <= limit);
            seen.extend(page);
            pages += 1;
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
            assert!(pages < 20, "pagination does not end");
        }
        assert_eq!(seen, ["a-street", "b-cp", "c-shop", "d-home", "e-ent", "f-compound"], "limit {limit}");
        assert_eq!(pages, 6usize.div_ceil(limit).max(1), "limit {limit}");
    }
    // Filters hold across pages.
    let (_, p1, _) = app.get("/api/v1/cameras?owner=enterprise&limit=2").await;
    assert_eq!(ids(&p1), ["c-shop", "e-ent"]);
    let c = p1["next_cursor"].as_str().unwrap();
    let (_, p2, _) = app.get(&format!("/api/v1/cameras?owner=enterprise&limit=2&cursor={c}")).await;
    assert_eq!(ids(&p2), ["f-compound"]);
    assert!(p2["next_cursor"].is_null());
    app.stop().await;
}

async fn one_camera_and_not_found(engine: Engine) {
    let (app, _db, _cfg) = app(engine).await;
    let (st, body, _) = app.get("/api/v1/cameras/b-cp").await;
    assert_eq!(st, 200);
    assert_eq!(body["id"], "b-cp");
    assert_eq!(body["config_source"].as_str().unwrap().rsplit('/').next().unwrap(), "cams.toml:12");
    let (st, body, _) = app.get("/api/v1/cameras/nope").await;
    assert_eq!(st, 404);
    assert_eq!(body["error"]["kind"], "not_found");
    assert!(body["error"]["message"].as_str().unwrap().contains("nope"));
    let (st, body, _) = app.get("/api/v1/cameras/nope/status-history").await;
    assert_eq!((st, body["error"]["kind"].as_str()), (404, Some("not_found")));
    let (st, body, _) = app.get("/api/v1/no-such-thing").await;
    assert_eq!((st, body["error"]["kind"].as_str()), (404, Some("not_found")));
    let r = app.client.delete(app.url("/api/v1/cameras/b-cp")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["kind"], "method_not_allowed");
    let (st, hist, _) = app.get("/api/v1/cameras/e-ent/status-history").await;
    assert_eq!(st, 200);
    assert_eq!(hist[0]["to_status"], "disabled");
    app.stop().await;
}

async fn bad_parameters_are_400_with_a_reason(engine: Engine) {
    let (app, _db, _cfg) = app(engine).await;
    let cases = [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=abc", "limit"),
        ("kind=tower", "kind"),
        ("status=sleeping", "status"),
        ("owner=nobody", "owner"),
        ("bbox=1,2,3", "bbox"),
        ("bbox=a,b,c,d", "bbox"),
        ("bbox=114,34,113,35", "bbox"),
        ("bbox=113,95,114,96", "bbox"),
        ("cursor=zz", "cursor"),
        // Not on a character boundary: it used to panic the request.
        ("cursor=a%C3%A9b", "cursor"),
        ("cursor=%2Bf", "cursor"),
        ("grid_cell=g9", "grid_cell"),
        ("colour=red", "colour"),
    ];
    for (q, names) in cases {
        let (st, body, text) = app.get(&format!("/api/v1/cameras?{q}")).await;
        assert_eq!(st, 400, "{q}: {text}");
        assert_eq!(body["error"]["kind"], "bad_request", "{q}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(names), "{q}: message {msg:?} should name {names:?}");
    }
    let (st, _, _) = app.get("/api/v1/cameras/a-street/status-history?limit=0").await;
    assert_eq!(st, 400);
    // A long list of one value is one filter (it was a query with a parameter per value: 500);
    // too many values are refused.
    let (st, body, text) = app.get(&format!("/api/v1/cameras?kind={}", vec!["street"; 200].join(","))).await;
    assert_eq!(st, 200, "{text}");
    assert!(body["items"].as_array().unwrap().iter().all(|c| c["kind"] == "street"), "{text}");
    let (st, body, text) = app.get(&format!("/api/v1/cameras?kind={}", vec!["street"; 5000].join(","))).await;
    assert_eq!(st, 400, "{text}");
    assert!(body["error"]["message"].as_str().unwrap().contains("at most 256"), "{text}");
    app.stop().await;
}

async fn no_credentials_in_any_response(engine: Engine) {
    let (app, _db, _cfg) = app(engine).await;
    let paths = [
        "/api/v1/cameras",
        "/api/v1/cameras?limit=1",
        "/api/v1/cameras/c-shop",
        "/api/v1/cameras/c-shop/status-history",
        "/api/v1/cameras?owner=enterprise",
        "/api/v1/openapi.json",
        "/healthz",
        "/api/v1/cameras/nope",
        "/api/v1/cameras?kind=bad",
    ];
    for p in paths {
        let (_, _, text) = app.get(p).await;
        assert!(!text.contains(PASSWORD), "{p} leaks the password");
        assert!(!text.contains(USERNAME), "{p} leaks the user name");
        assert!(!text.contains("secrets/c-shop"), "{p} leaks the secret's location");
    }
    app.stop().await;
}

async fn health_and_openapi(engine: Engine) {
    let (app, _db, _cfg) = app(engine).await;
    let (st, body, _) = app.get("/healthz").await;
    assert_eq!((st, body["status"].as_str(), body["database"].as_str()), (200, Some("ok"), Some("ok")));
    let (st, spec, _) = app.get("/api/v1/openapi.json").await;
    assert_eq!(st, 200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/api/v1/cameras",
        "/api/v1/cameras/{id}",
        "/api/v1/cameras/{id}/status-history",
        "/api/v1/cameras/{id}/ingest-history",
        "/api/v1/cameras/{id}/health",
        "/api/v1/health/cameras",
        "/api/v1/cameras/{id}/snapshot.jpg",
        "/api/v1/cluster",
        "/healthz",
    ] {
        assert!(spec["paths"][p]["get"].is_object(), "openapi lacks {p}");
    }
    let params: Vec<&str> = spec["paths"]["/api/v1/cameras"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for want in ["kind", "grid_cell", "status", "owner", "bbox", "cursor", "limit"] {
        assert!(params.contains(&want), "openapi lacks parameter {want}: {params:?}");
    }
    assert!(spec["components"]["schemas"]["CameraView"].is_object());
    app.stop().await;
}

on_both_engines!(
    listing_and_each_filter,
    pagination_visits_every_camera_once,
    one_camera_and_not_found,
    bad_parameters_are_400_with_a_reason,
    no_credentials_in_any_response,
    health_and_openapi,
);

/// One role table decides who may use what, and docs/ROLES.md is that table: every route of the
/// OpenAPI document is named by a rule (none falls through to admin-only by accident), a rule's
/// route is a route that exists, and the page says what the code does.
#[test]
fn the_role_table_covers_every_route_and_is_the_documented_one() {
    use tianwang::api::auth::{ROLE_TABLE, admitted, roles_markdown, rule_for};
    use utoipa::OpenApi;
    let spec = serde_json::to_value(tianwang::api::ApiDoc::openapi()).unwrap();
    let paths = spec["paths"].as_object().unwrap();
    let mut routes = Vec::new();
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            routes.push((method.to_uppercase(), path.clone()));
        }
    }
    // Routes served outside the OpenAPI document.
    for extra in ["/metrics", "/api/v1/worker", "/api/v1/openapi.json"] {
        routes.push(("GET".to_string(), extra.to_string()));
    }
    for (method, path) in &routes {
        if path == "/healthz" {
            continue;
        }
        let m: axum::http::Method = method.parse().unwrap();
        assert!(rule_for(&m, path).is_some(), "{method} {path}: no rule of the role table names it");
        assert!(admitted(&m, path).is_some());
    }
    for r in ROLE_TABLE {
        if r.route.contains("{*") {
            continue;
        }
        assert!(routes.iter().any(|(_, p)| p == r.route), "rule for {} names no route", r.route);
    }
    // A ring named like an endpoint is still a ring (suffix matching sent it to maintainers).
    let roles = admitted(&axum::http::Method::GET, "/api/v1/rings/health").unwrap();
    assert_eq!(roles, &[tianwang::api::auth::Role::Operator, tianwang::api::auth::Role::Planner]);
    let page = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ROLES.md");
    if std::env::var("TIANWANG_BLESS").is_ok() {
        std::fs::write(&page, roles_markdown()).unwrap();
    }
    let text = std::fs::read_to_string(&page).unwrap_or_default();
    assert!(text == roles_markdown(), "docs/ROLES.md differs from the role table; TIANWANG_BLESS=1 rewrites it");
}

/// The HTTP layers: gzip for a client that accepts it (never for a live stream), and a request
/// that cannot be answered in time (the database held by a long write) abandoned with a 503, its
/// write not made, the next request served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_compressed_and_a_stuck_request_times_out() {
    let db = TestDb::new(Engine::Sqlite).await;
    let clock = tianwang::clock::SimClock::at(1_780_000_000_000);
    let opts = tianwang::app::AppOptions {
        ingest: false,
        order_rounds: false,
        request_timeout: std::time::Duration::from_secs(1),
        ..Default::default()
    };
    let app = TestApp::spawn_opts(&common::demo_config(), &db, std::sync::Arc::new(clock.clone()), clock, opts).await;

    let plain = app.client.get(app.url("/api/v1/cameras?limit=500")).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain: Value = plain.json().await.unwrap();
    let gz =
        app.client.get(app.url("/api/v1/cameras?limit=500")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(gz.headers().get("content-encoding").and_then(|v| v.to_str().ok()), Some("gzip"));
    let bytes = gz.bytes().await.unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text).unwrap();
    assert!(bytes.len() * 3 < text.len(), "{} bytes for {} of JSON", bytes.len(), text.len());
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), plain);
    let sse = app.client.get(app.url("/api/v1/alerts/stream")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(sse.status(), 200);
    assert!(sse.headers().get("content-encoding").is_none(), "a live stream compressed: {:?}", sse.headers());
    drop(sse);

    // A long write holds the database: the watchlist entry waits, and is abandoned after 1 s.
    let hold = app.registry.begin().await.unwrap();
    let entry = serde_json::json!({"pattern": "豫A12345", "reason": "stolen"});
    let (status, body, text) = app.post("/api/v1/watchlists", &entry).await;
    assert_eq!(status, 503, "{text}");
    assert_eq!(body["error"]["kind"], "unavailable", "{text}");
    assert!(body["error"]["message"].as_str().unwrap().contains("took longer than 1 s"), "{text}");
    hold.rollback().await.unwrap();
    let (status, list, _) = app.get("/api/v1/watchlists").await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(0), "the abandoned request's write was made: {list}");
    let (status, _, text) = app.post("/api/v1/watchlists", &entry).await;
    assert_eq!(status, 201, "{text}");
    app.stop().await;
}
