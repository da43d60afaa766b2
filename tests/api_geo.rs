//! Planning and interception over HTTP on both engines, on the hand-computable city of
//! tests/common/city.rs stored through the registry as an import would store it.

mod common;

use common::city::*;
use common::{Engine, TestApp, TestDb, config_dir};
use serde_json::json;
use tianwang::config::CameraStatus;
use tianwang::geo::Xy;
use tianwang::geo::input::CameraInput;

const SITE: &str = "[site]\nname = \"Ring city\"\ntimezone = \"Asia/Shanghai\"\n";

async fn app_with_city(engine: Engine) -> (TestApp, TestDb, tempfile::TempDir) {
    let db = TestDb::new(engine).await;
    let dir = config_dir(&[("site.toml", SITE)]);
    let app = TestApp::spawn(dir.path(), &db).await;
    // The ring watcher's first check (at start, before the city exists) is done: the checks
    // below are the test's own.
    app.rings_checked(1).await;
    let (cams, roads, rings) = city_parts();
    let now = app.clock.now_ms();
    app.registry.store_roads(&roads, "import:city.geojson", now).await.unwrap();
    let inputs: Vec<CameraInput> = cams.iter().map(|c| CameraInput { grid_cell: None, ..c.into() }).collect();
    let (n, rejected) = app.registry.store_imported_cameras(&inputs, "city.csv", now).await.unwrap();
    assert_eq!((n, rejected.len()), (16, 0));
    app.registry.sync_rings(&rings, now).await.unwrap();
    for c in &cams {
        app.registry.set_status(&c.id, CameraStatus::Online, "streaming", now, None).await.unwrap();
    }
    (app, db, dir)
}

use tianwang::clock::Clock;

async fn rings_open_and_close_with_their_checkpoints(engine: Engine) {
    let (app, _db, _dir) = app_with_city(engine).await;
    assert!(app.geo.check_rings(app.clock.now_ms()).await.unwrap().is_empty(), "all up: nothing to report");
    let (s, rings, _) = app.get("/api/v1/rings").await;
    assert_eq!(s, 200);
    assert_eq!(rings.as_array().unwrap().len(), 2);
    assert!(rings.as_array().unwrap().iter().all(|r| r["open"] == false), "{rings}");

    app.clock.advance(5_000);
    app.registry.set_status("mid-e-300", CameraStatus::Offline, "no frames", app.clock.now_ms(), None).await.unwrap();
    let (s, mid, _) = app.get("/api/v1/rings/middle").await;
    assert_eq!(s, 200);
    assert_eq!(mid["open"], true);
    assert_eq!(mid["down"], json!(["mid-e-300"]));
    assert_eq!(mid["leaks"].as_array().unwrap().len(), 1);
    assert_eq!(mid["leaks"][0]["road_id"], "ew300");
    let changed = app.geo.check_rings(app.clock.now_ms()).await.unwrap();
    assert_eq!(changed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["middle"]);
    assert!(app.geo.check_rings(app.clock.now_ms()).await.unwrap().is_empty(), "reported once");

    app.registry.set_status("mid-e-300", CameraStatus::Online, "streaming", app.clock.now_ms(), None).await.unwrap();
    assert_eq!(app.geo.check_rings(app.clock.now_ms()).await.unwrap().len(), 1);
    let (_, ev, _) = app.get("/api/v1/events").await;
    let kinds: Vec<&str> = ev.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ring_opened", "ring_closed"]);
    assert_eq!(ev[0]["ring_id"], "middle");
    assert_eq!(ev[0]["payload"]["down"], json!(["mid-e-300"]));
    let (s, _, body) = app.get("/api/v1/rings/nowhere").await;
    assert_eq!(s, 404, "{body}");
    app.stop().await;
}

async fn interception_arms_rings_and_reports_a_crossing(engine: Engine) {
    let (app, _db, _dir) = app_with_city(engine).await;
    let [lon, lat] = ll(100.0, 0.0);
    let t0 = app.clock.now_ms();
    let (s, started, body) = app
        .post("/api/v1/interceptions", &json!({"lon": lon, "lat": lat, "plate": "豫A·12345", "note": "robbery"}))
        .await;
    assert_eq!(s, 201, "{body}");
    let rings: Vec<&str> =
        started["rings"].as_array().unwrap().iter().map(|r| r["ring_id"].as_str().unwrap()).collect();
    assert_eq!(rings, ["inner", "middle"]);
    let e0 =
        started["rings"][0]["checkpoints"].as_array().unwrap().iter().find(|c| c["camera_id"] == "in-e-0").unwrap();
    assert!((e0["eta_s"].as_f64().unwrap() - 3.6).abs() < 0.05, "{e0}");
    let id = started["id"].as_i64().unwrap();

    // Another vehicle: no crossing. The suspect, written differently: a crossing.
    let other = json!({"camera_id": "mid-e-0", "pass_time_ms": t0 + 30_000, "plate_no": "豫B54321"});
    let (s, r, _) = app.post("/api/v1/passages", &other).await;
    assert_eq!((s, r["events"].as_array().unwrap().len()), (201, 0));
    let suspect =
        json!({"camera_id": "mid-e-0", "pass_time_ms": t0 + 31_000, "plate_no": "豫a 12345", "direction": "out"});
    let (s, r, body) = app.post("/api/v1/passages", &suspect).await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(r["events"].as_array().unwrap().len(), 1);
    // The same passage again (a retry): stored once, answered as the first time.
    let (s, again, body) = app.post("/api/v1/passages", &suspect).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!((&again["passage"]["id"], &again["events"]), (&r["passage"]["id"], &r["events"]));
    let (_, ev, _) = app.get("/api/v1/events?kind=ring_crossing").await;
    let p = &ev[0]["payload"];
    assert_eq!((p["ring_id"].as_str(), p["checkpoint"].as_str()), (Some("middle"), Some("mid-e-0")));
    assert_eq!(p["seconds_since_incident"], 31.0);
    assert_eq!(p["plate_no"], "豫A12345");
    assert_eq!(p["interception_id"], id);

    let (s, _, body) = app.post(&format!("/api/v1/interceptions/{id}/close"), &json!({"by": "duty officer"})).await;
    assert_eq!(s, 200, "{body}");
    let (s, _, _) = app.post(&format!("/api/v1/interceptions/{id}/close"), &json!({"by": "again"})).await;
    assert_eq!(s, 409);
    let later = json!({"camera_id": "mid-e-0", "pass_time_ms": t0 + 60_000, "plate_no": "豫A12345"});
    let (s, r, _) = app.post("/api/v1/passages", &later).await;
    assert_eq!((s, r["events"].as_array().unwrap().len()), (201, 0), "closed interceptions arm nothing");
    let (_, list, _) = app.get("/api/v1/interceptions").await;
    assert_eq!(list.as_array().unwrap().len(), 0);

    // Expiry by the clock.
    let (_, s2, _) = app.post("/api/v1/interceptions", &json!({"lon": lon, "lat": lat, "ttl_min": 1})).await;
    app.clock.advance(61_000);
    let (_, one, _) = app.get(&format!("/api/v1/interceptions/{}", s2["id"])).await;
    assert_eq!(one["status"], "expired");
    app.stop().await;
}

async fn bad_geo_requests_are_400_or_404_with_a_reason(engine: Engine) {
    let (app, _db, _dir) = app_with_city(engine).await;
    let cases: Vec<(&str, serde_json::Value, u16, &str)> = vec![
        ("/api/v1/interceptions", json!({"lon": 113.0, "lat": 95.0}), 400, "not a WGS84 position"),
        ("/api/v1/interceptions", json!({"lon": 113.0}), 400, "lat"),
        ("/api/v1/interceptions", json!({"lon": 113.0, "lat": 34.0, "colour": "red"}), 400, "colour"),
        ("/api/v1/passages", json!({"camera_id": "nope", "pass_time_ms": 1}), 404, "nope"),
        ("/api/v1/passages", json!({"camera_id": "mid-e-0"}), 400, "pass_time_ms"),
        // Times no clock gives: near i64::MAX they overflowed the engine's windows.
        (
            "/api/v1/passages",
            json!({"camera_id": "mid-e-0", "pass_time_ms": i64::MAX, "plate_no": "豫A12345"}),
            400,
            "pass_time_ms",
        ),
        ("/api/v1/passages", json!({"camera_id": "mid-e-0", "pass_time_ms": i64::MIN}), 400, "pass_time_ms"),
        (
            "/api/v1/interceptions",
            json!({"lon": 113.0, "lat": 34.0, "incident_at_ms": i64::MIN}),
            400,
            "incident_at_ms",
        ),
        (
            "/api/v1/interceptions",
            json!({"lon": 113.0, "lat": 34.0, "incident_at_ms": i64::MAX}),
            400,
            "incident_at_ms",
        ),
        ("/api/v1/interceptions", json!({"lon": 113.0, "lat": 34.0, "ttl_min": i64::MAX}), 400, "ttl_min"),
        ("/api/v1/alarms", json!({"alarm_id": "a-1", "at_ms": i64::MAX}), 400, "at_ms"),
    ];
    for (path, body, want, says) in cases {
        let (s, r, text) = app.post(path, &body).await;
        assert_eq!(s, want, "{path} {body}: {text}");
        assert!(r["error"]["message"].as_str().unwrap().contains(says), "{text}");
    }
    let r = app
        .client
        .post(app.url("/api/v1/passages"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    for q in
        ["/api/v1/coverage/summary?level=sharp", "/api/v1/coverage/summary?states=some", "/api/v1/geo/seeing?lon=1"]
    {
        let (s, r, text) = app.get(q).await;
        assert_eq!(s, 400, "{q}: {text}");
        assert!(r["error"]["message"].is_string());
    }
    let (s, _, _) = app.get("/api/v1/geo/layers/buildings").await;
    assert_eq!(s, 404);
    app.stop().await;
}

async fn coverage_and_linkage_over_http(engine: Engine) {
    let (app, _db, _dir) = app_with_city(engine).await;
    let (s, sum, body) = app.get("/api/v1/coverage/summary?level=recognise&states=all").await;
    assert_eq!(s, 200, "{body}");
    let o = &sum["overall"];
    let (t, c, u) =
        (o["total_m"].as_f64().unwrap(), o["covered_m"].as_f64().unwrap(), o["uncovered_m"].as_f64().unwrap());
    // 14 streets of 1,800 m.
    assert!((t - 14.0 * 1800.0).abs() < 5.0, "{t}");
    assert!((c + u - t).abs() < 1e-6 && c > 0.0);
    let (_, gaps, _) = app.get("/api/v1/coverage/gaps.geojson?level=recognise&states=all").await;
    let gap_len: f64 =
        gaps["features"].as_array().unwrap().iter().map(|f| f["properties"]["length_m"].as_f64().unwrap()).sum();
    assert!((gap_len - u).abs() < 1.0, "gaps {gap_len} vs uncovered {u}");
    let (_, roads, _) = app.get("/api/v1/coverage/roads?level=recognise&states=all&limit=5").await;
    assert_eq!(roads.as_array().unwrap().len(), 5);

    // 20 m outward of in-e-0 (at (150, -3), looking east) it sees the avenue; behind it, not.
    let base = proj().fwd(proj().lon0, proj().lat0);
    for (x, y, sees) in [(170.0, 0.0, true), (130.0, 0.0, false)] {
        let [lon, lat] = proj().inv(base.plus(Xy::new(x, y)));
        let (s, v, body) = app.get(&format!("/api/v1/geo/seeing?lon={lon}&lat={lat}")).await;
        assert_eq!(s, 200, "{body}");
        let ids: Vec<&str> = v.as_array().unwrap().iter().map(|c| c["camera_id"].as_str().unwrap()).collect();
        assert_eq!(ids.contains(&"in-e-0"), sees, "({x}, {y}): {ids:?}");
    }
    let (s, layer, _) = app.get("/api/v1/geo/layers/cameras?levels=recognise").await;
    assert_eq!(s, 200);
    assert_eq!(layer["features"].as_array().unwrap().len(), 32, "16 points + 16 sectors");
    let (_, rings, _) = app.get("/api/v1/geo/layers/rings").await;
    assert_eq!(rings["features"].as_array().unwrap().len(), 2);

    // 32 planners at once cost one computation of the report; a camera going offline one more,
    // and the answer follows it.
    let reports = || app.geo.cache_counters().reports.load(std::sync::atomic::Ordering::Relaxed);
    let summary = || async {
        let (s, v, body) = app.get("/api/v1/coverage/summary?level=recognise&states=online").await;
        assert_eq!(s, 200, "{body}");
        v["overall"]["covered_m"].as_f64().unwrap()
    };
    let before = reports();
    let answers = futures_util::future::join_all((0..32).map(|_| summary())).await;
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(reports() - before, 1, "32 requests at once computed the report more than once");
    for cam in ["in-e-0", "in-n-0", "in-s-0", "in-w-0"] {
        app.registry.set_status(cam, CameraStatus::Offline, "no frames", app.clock.now_ms(), None).await.unwrap();
    }
    let after = summary().await;
    assert_eq!(reports() - before, 2);
    assert!(after < answers[0], "four cameras offline and the same coverage: {after} vs {}", answers[0]);
    assert_eq!(summary().await, after);
    assert_eq!(reports() - before, 2, "the same state computed again");
    app.stop().await;
}

async fn the_demo_city_map_closes_its_rings_once_checkpoints_stream(engine: Engine) {
    let db = TestDb::new(engine).await;
    let app = TestApp::spawn(&common::demo_config(), &db).await;
    let (_, rings, _) = app.get("/api/v1/rings").await;
    let rings = rings.as_array().unwrap().clone();
    assert_eq!(rings.len(), 2);
    for r in &rings {
        // Not streaming yet: open, and every leak is the road of a checkpoint that is down.
        assert_eq!(r["open"], true);
        assert_eq!(r["crossings"].as_u64().unwrap() as usize, r["members"].as_array().unwrap().len(), "{r}");
        for leak in r["leaks"].as_array().unwrap() {
            assert_eq!(leak["guarded_when_up_by"].as_array().unwrap().len(), 1, "{leak}");
        }
        for m in r["members"].as_array().unwrap() {
            let id = m["id"].as_str().unwrap();
            app.registry.set_status(id, CameraStatus::Online, "streaming", app.clock.now_ms(), None).await.unwrap();
        }
    }
    let (_, rings, _) = app.get("/api/v1/rings").await;
    for r in rings.as_array().unwrap() {
        assert_eq!((r["open"].as_bool(), r["leaks"].as_array().unwrap().len()), (Some(false), 0), "{r}");
    }
    let (_, ents, _) = app.get("/api/v1/coverage/entrances").await;
    assert_eq!(ents.as_array().unwrap().len(), 2);
    app.stop().await;
}

async fn planning_proposals_and_what_if_over_http(engine: Engine) {
    let (app, _db, _dir) = app_with_city(engine).await;
    let body = json!({"budget": 5, "level": "recognise", "states": "all"});
    let (s, r, text) = app.post("/api/v1/planning/proposals", &body).await;
    assert_eq!(s, 200, "{text}");
    let props = r["proposals"].as_array().unwrap();
    assert_eq!(props.len(), 5, "{text}");
    let (before, after) = (r["before"]["covered_m"].as_f64().unwrap(), r["after"]["covered_m"].as_f64().unwrap());
    let added: f64 = props.iter().map(|p| p["added_m"].as_f64().unwrap()).sum();
    assert!(after > before && (after - before - added).abs() < 1e-6 * after, "{before} + {added} vs {after}");
    assert_eq!(props[0]["rank"], 1);
    assert!(
        props
            .iter()
            .all(|p| p["lon"].is_f64() && p["bearing_deg"].is_f64() && !p["roads"].as_array().unwrap().is_empty())
    );
    // The same plan as GeoJSON (a point and a field of view per camera) and as an import CSV.
    let (s, gj, text) = app.post("/api/v1/planning/proposals?format=geojson", &body).await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(gj["type"], "FeatureCollection");
    assert_eq!(gj["features"].as_array().unwrap().len(), 10);
    assert_eq!(gj["features"][0]["geometry"]["coordinates"][0], props[0]["lon"]);
    let (s, _, csv) = app.post("/api/v1/planning/proposals?format=csv", &body).await;
    assert_eq!(s, 200);
    assert!(csv.starts_with("id,name,lon,lat,bearing_deg,hfov_deg,width_px,height_px,mounting_height_m,kind,owner\n"));
    assert_eq!(csv.lines().count(), 6, "{csv}");

    for (bad, says) in [
        (json!({"budget": 0}), "budget"),
        (json!({"budget": 5001}), "budget"),
        (json!({"budget": 5, "weights": {"other": -1.0}}), "weights"),
        (json!({"budget": 5, "colour": "red"}), "colour"),
    ] {
        let (s, r, text) = app.post("/api/v1/planning/proposals", &bad).await;
        assert_eq!(s, 400, "{bad}: {text}");
        assert!(r["error"]["message"].as_str().unwrap().contains(says), "{text}");
    }

    // What if the inner ring's east checkpoint were taken down: road coverage lost, the ring open.
    let (s, w, text) = app.post("/api/v1/planning/what-if", &json!({"remove": ["in-e-0"], "level": "recognise"})).await;
    assert_eq!(s, 200, "{text}");
    assert!(w["lost_m"].as_f64().unwrap() > 0.0, "{text}");
    assert_eq!(w["rings_opened"], json!(["inner"]), "{text}");
    assert_eq!(w["entrances"]["entrances"], 0, "the city has no entrances");
    let (s, r, text) = app.post("/api/v1/planning/what-if", &json!({"remove": ["in-e-0", "nope"]})).await;
    assert_eq!(s, 400, "{text}");
    assert!(r["error"]["message"].as_str().unwrap().contains("nope"), "{text}");
    let (s, _, text) = app.post("/api/v1/planning/what-if", &json!({"remove": []})).await;
    assert_eq!(s, 400, "{text}");
    // Moved where it is: nothing lost, no ring opened; moved 300 m north: the ring opens.
    let (s, cam, text) = app.get("/api/v1/cameras/in-e-0").await;
    assert_eq!(s, 200, "{text}");
    let (lon, lat) = (cam["position"]["lon"].as_f64().unwrap(), cam["position"]["lat"].as_f64().unwrap());
    let (s, w, text) =
        app.post("/api/v1/planning/what-if", &json!({"moves": [{"id": "in-e-0", "lon": lon, "lat": lat}]})).await;
    assert_eq!(s, 200, "{text}");
    assert!(w["lost_m"].as_f64().unwrap().abs() < 1e-6 && w["rings_opened"] == json!([]), "{text}");
    assert_eq!(w["moved"], json!(["in-e-0"]), "{text}");
    let (s, w, text) = app
        .post("/api/v1/planning/what-if", &json!({"moves": [{"id": "in-e-0", "lon": lon, "lat": lat + 0.0027}]}))
        .await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(w["rings_opened"], json!(["inner"]), "{text}");
    app.stop().await;
}

/// Units proposed to an interception: the checkpoints the suspect reaches first come first, each
/// gets the free unit that is there soonest by road, first where it beats the suspect, then
/// anywhere. From an incident at (100, 0) on the avenue (50 km/h), 5 s ago, the suspect reaches
/// the inner ring's east checkpoint in 3.6 s (no unit can beat that), the west in 18 s, the
/// middle ring's east in 25.2 s, inner north and south in 28.8 s (100 m of avenue, 150 m of
/// residential street at 25 km/h). Car b at (-300, 0) goes west (150 m, 10.8 s: 2.2 s early), car
/// a at (700, 0) to the middle ring's east (250 m, 18 s: 2.2 s early), the foot patrol at (0, 120)
/// north (30 m at 5 km/h, 21.6 s: 2.2 s early); then car d in the far corner (-900, 900), in time
/// nowhere, goes east (900 m of residential street south, 1,050 m of avenue: 205.2 s, late), and
/// nobody is left for the south.
async fn interception_units_are_proposed_to_the_checkpoints_the_suspect_reaches_first(engine: Engine) {
    let (app, _db, _dir) = app_with_city(engine).await;
    let now = app.clock.now_ms();
    for (id, kind, at) in [
        ("car-a", "car", Some((700.0, 0.0))),
        ("car-b", "car", Some((-300.0, 0.0))),
        ("fp-1", "foot", Some((0.0, 120.0))),
        ("car-d", "car", Some((-900.0, 900.0))),
        ("car-c", "car", None),
    ] {
        let (s, _, body) =
            app.post("/api/v1/units", &json!({"id": id, "name": id, "kind": kind, "station": "ring station"})).await;
        assert_eq!(s, 201, "{body}");
        if let Some((x, y)) = at {
            let [lon, lat] = ll(x, y);
            let (s, _, body) = app
                .post(
                    &format!("/api/v1/units/{id}/positions"),
                    &json!({"positions": [{"at_ms": now, "lon": lon, "lat": lat}]}),
                )
                .await;
            assert_eq!(s, 200, "{body}");
        }
    }
    let [lon, lat] = ll(100.0, 0.0);
    let (s, started, body) = app.post("/api/v1/interceptions", &json!({"lon": lon, "lat": lat})).await;
    assert_eq!(s, 201, "{body}");
    let id = started["id"].as_i64().unwrap();
    app.clock.advance(5_000);
    let (s, p, body) = app.get(&format!("/api/v1/interceptions/{id}/units")).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(p["elapsed_s"], 5.0);
    let cps = p["checkpoints"].as_array().unwrap();
    let row = |i: usize| {
        let c = &cps[i];
        (
            c["camera_id"].as_str().unwrap().to_string(),
            c["suspect_eta_s"].as_f64(),
            c["unit"]["unit"]["id"].as_str().map(String::from),
            c["unit"]["eta_s"].as_f64(),
            c["margin_s"].as_f64(),
        )
    };
    let want = [
        ("in-e-0", 3.6, Some("car-d"), Some(205.2), Some(3.6 - 5.0 - 205.2)),
        ("in-w-0", 18.0, Some("car-b"), Some(10.8), Some(2.2)),
        ("mid-e-0", 25.2, Some("car-a"), Some(18.0), Some(2.2)),
        ("in-n-0", 28.8, Some("fp-1"), Some(21.6), Some(2.2)),
        ("in-s-0", 28.8, None, None, None),
    ];
    for (i, (cam, suspect, unit, eta, margin)) in want.into_iter().enumerate() {
        let (c, s, u, e, m) = row(i);
        assert_eq!((c.as_str(), u.as_deref()), (cam, unit), "{i}: {p}");
        let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() < 0.15,
            (None, None) => true,
            _ => false,
        };
        assert!(close(s, Some(suspect)) && close(e, eta) && close(m, margin), "{i}: {:?} {p}", (s, e, m));
    }
    assert_eq!(cps[3]["unit_at_s"].as_f64().map(|x| (x * 10.0).round() / 10.0), Some(26.6));
    // The rest of the middle ring follows, later for the suspect; every unit is taken by then.
    assert_eq!(cps.len(), 4 + 12, "{p}");
    assert!(cps[5..].iter().all(|c| c["unit"].is_null() && c["ring_id"] == "middle"), "{p}");
    assert_eq!(p["left_out"], json!([{"id": "car-c", "why": "no position yet"}]));
    // Closed, it takes no units; an unknown one is 404.
    let (s, _, _) = app.post(&format!("/api/v1/interceptions/{id}/close"), &json!({"by": "duty officer"})).await;
    assert_eq!(s, 200);
    assert_eq!(app.get(&format!("/api/v1/interceptions/{id}/units")).await.0, 409);
    assert_eq!(app.get("/api/v1/interceptions/9999/units").await.0, 404);
    app.stop().await;
}

on_both_engines!(
    the_demo_city_map_closes_its_rings_once_checkpoints_stream,
    rings_open_and_close_with_their_checkpoints,
    interception_arms_rings_and_reports_a_crossing,
    interception_units_are_proposed_to_the_checkpoints_the_suspect_reaches_first,
    bad_geo_requests_are_400_or_404_with_a_reason,
    coverage_and_linkage_over_http,
    planning_proposals_and_what_if_over_http,
);
