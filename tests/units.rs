//! Patrol units through the running app, on both engines: units with their cell and status,
//! batches of positions (out of order, repeated, bad ones among good ones), the unit's newest
//! position and when it goes stale, tracks, retirement, and retention of tracks.

mod common;

use common::{Engine, TestApp, TestDb, config_dir};
use serde_json::{Value, json};
use tianwang::clock::Clock;

const SITE: &str = "[site]\nname = \"Patrol city\"\ntimezone = \"Asia/Shanghai\"\n\
[[grid_cell]]\nid = \"g1\"\nname = \"G1\"\nlevel = 1\n[[grid_cell]]\nid = \"g2\"\nname = \"G2\"\nlevel = 1\n";

async fn patch(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let r = app.client.patch(app.url(path)).json(body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn delete(app: &TestApp, path: &str) -> (u16, Value) {
    let r = app.client.delete(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn fix(at_ms: i64, lon: f64, lat: f64) -> Value {
    json!({"at_ms": at_ms, "lon": lon, "lat": lat})
}

async fn units_positions_and_tracks(engine: Engine) {
    let db = TestDb::new(engine).await;
    let dir = config_dir(&[("site.toml", SITE)]);
    let app = TestApp::spawn(dir.path(), &db).await;
    let now = app.clock.now_ms();

    // Adding: a new id, a cell the registry holds, a clean id and name.
    let car = json!({"id": "pc-101", "name": "巡逻车 101", "kind": "car", "station": "二七派出所", "grid_cell": "g1"});
    let (s, u, body) = app.post("/api/v1/units", &car).await;
    assert_eq!(s, 201, "{body}");
    assert_eq!((u["status"].as_str(), u["status_since_ms"].as_i64()), (Some("available"), Some(now)));
    assert_eq!((u["stale"].as_bool(), u["position"].is_null()), (Some(true), true), "no position yet: stale");
    assert_eq!(app.post("/api/v1/units", &car).await.0, 409, "the same id twice");
    for (bad, why) in [
        (json!({"id": "pc/1", "name": "x", "kind": "car", "station": "s"}), "holds '/'"),
        (json!({"id": "pc-2", "name": " ", "kind": "car", "station": "s"}), "blank"),
        (json!({"id": "pc-2", "name": "x", "kind": "tank", "station": "s"}), "tank"),
        (json!({"id": "pc-2", "name": "x", "kind": "car", "station": "s", "grid_cell": "g9"}), "g9"),
        (json!({"id": "pc-2", "name": "x\u{0}", "kind": "car", "station": "s"}), "control"),
    ] {
        let (s, _, body) = app.post("/api/v1/units", &bad).await;
        assert_eq!(s, 400, "{bad}: {body}");
        assert!(body.contains(why), "{bad}: {body}");
    }
    let foot = json!({"id": "fp-7", "name": "步巡 7", "kind": "foot", "station": "二七派出所"});
    assert_eq!(app.post("/api/v1/units", &foot).await.0, 201);

    // A batch out of order, with optional fields on some, a bad latitude and a tracker without
    // a fix among them: the good ones are stored, the bad ones named by their place.
    let t0 = now - 30_000;
    let batch = json!({"positions": [
        fix(t0 + 10_000, 113.661, 34.751),
        {"at_ms": t0 + 20_000, "lon": 113.662, "lat": 34.752, "speed_mps": 8.5, "heading_deg": 90.0, "accuracy_m": 4.0},
        fix(t0, 113.660, 34.750),
        fix(t0 + 5_000, 113.6605, 95.0),
        fix(t0 + 6_000, 0.0, 0.0),
    ]});
    let (s, r, body) = app.post("/api/v1/units/pc-101/positions", &batch).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!((r["stored"].as_i64(), r["duplicates"].as_i64()), (Some(3), Some(0)), "{body}");
    let rejected: Vec<(i64, String)> = r["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["index"].as_i64().unwrap(), x["reason"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(rejected.iter().map(|r| r.0).collect::<Vec<_>>(), vec![3, 4], "{body}");
    assert!(rejected[0].1.contains("lat 95") && rejected[1].1.contains("no fix"), "{rejected:?}");
    // The newest by its own time is the unit's position, with what came with it.
    let (_, u, _) = app.get("/api/v1/units/pc-101").await;
    assert_eq!(
        u["position"],
        json!({"at_ms": t0 + 20_000, "lon": 113.662, "lat": 34.752, "speed_mps": 8.5, "heading_deg": 90.0, "accuracy_m": 4.0})
    );
    assert_eq!(u["stale"].as_bool(), Some(false));

    // The same batch again (a tracker's retry): nothing new.
    let (s, r, body) = app.post("/api/v1/units/pc-101/positions", &batch).await;
    assert_eq!((s, r["stored"].as_i64(), r["duplicates"].as_i64()), (200, Some(0), Some(3)), "{body}");
    // An older position arriving late joins the track and leaves the unit's position alone; a
    // newer one without the optional fields replaces it whole.
    let (s, r, _) =
        app.post("/api/v1/units/pc-101/positions", &json!({"positions": [fix(t0 + 1_000, 113.6601, 34.7501)]})).await;
    assert_eq!((s, r["stored"].as_i64()), (200, Some(1)));
    assert_eq!(app.get("/api/v1/units/pc-101").await.1["position"]["at_ms"].as_i64(), Some(t0 + 20_000));
    let (s, _, _) =
        app.post("/api/v1/units/pc-101/positions", &json!({"positions": [fix(t0 + 25_000, 113.663, 34.753)]})).await;
    assert_eq!(s, 200);
    assert_eq!(app.get("/api/v1/units/pc-101").await.1["position"], fix(t0 + 25_000, 113.663, 34.753));

    // All bad: 400 with the reasons; a clock far ahead is named as such; an empty batch, an
    // unknown unit and a field the API does not know are refused.
    let (s, _, body) =
        app.post("/api/v1/units/pc-101/positions", &json!({"positions": [fix(now + 300_000, 113.66, 34.75)]})).await;
    assert_eq!(s, 400);
    assert!(body.contains("ahead of this server's clock"), "{body}");
    assert_eq!(app.post("/api/v1/units/pc-101/positions", &json!({"positions": []})).await.0, 400);
    assert_eq!(
        app.post("/api/v1/units/nobody/positions", &json!({"positions": [fix(now, 113.66, 34.75)]})).await.0,
        404
    );
    let extra = json!({"positions": [{"at_ms": now, "lon": 113.66, "lat": 34.75, "altitude": 3}]});
    assert_eq!(app.post("/api/v1/units/pc-101/positions", &extra).await.0, 400);

    // The track, oldest first, with the optional fields where they were given; a range.
    let (s, track, body) = app.get("/api/v1/units/pc-101/track").await;
    assert_eq!(s, 200, "{body}");
    let times: Vec<i64> = track.as_array().unwrap().iter().map(|f| f["at_ms"].as_i64().unwrap()).collect();
    assert_eq!(times, vec![t0, t0 + 1_000, t0 + 10_000, t0 + 20_000, t0 + 25_000]);
    assert_eq!((track[3]["speed_mps"].as_f64(), track[0].get("speed_mps")), (Some(8.5), None));
    let (_, part, _) =
        app.get(&format!("/api/v1/units/pc-101/track?from_ms={}&to_ms={}&limit=2", t0 + 1_000, t0 + 25_000)).await;
    let times: Vec<i64> = part.as_array().unwrap().iter().map(|f| f["at_ms"].as_i64().unwrap()).collect();
    assert_eq!(times, vec![t0 + 1_000, t0 + 10_000]);
    assert_eq!(app.get("/api/v1/units/pc-101/track?from_ms=10&to_ms=5").await.0, 400);
    assert_eq!(app.get("/api/v1/units/nobody/track").await.0, 404);

    // Two minutes without a position: stale.
    app.clock.advance((121 + 25) * 1000);
    let (_, list, _) = app.get("/api/v1/units").await;
    let stale: Vec<(&str, bool)> =
        list.as_array().unwrap().iter().map(|u| (u["id"].as_str().unwrap(), u["stale"].as_bool().unwrap())).collect();
    assert_eq!(stale, vec![("fp-7", true), ("pc-101", true)]);

    // Status and cell change; nothing to change is refused; a cell can be taken away.
    let later = app.clock.now_ms();
    let (s, u) = patch(&app, "/api/v1/units/pc-101", &json!({"status": "dispatched", "grid_cell": "g2"})).await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(
        (u["status"].as_str(), u["status_since_ms"].as_i64(), u["grid_cell"].as_str()),
        (Some("dispatched"), Some(later), Some("g2"))
    );
    let (s, u) = patch(&app, "/api/v1/units/pc-101", &json!({"grid_cell": null, "name": "巡逻车 101 号"})).await;
    assert_eq!((s, u["grid_cell"].is_null(), u["status_since_ms"].as_i64()), (200, true, Some(later)));
    assert_eq!(patch(&app, "/api/v1/units/pc-101", &json!({})).await.0, 400);
    assert_eq!(patch(&app, "/api/v1/units/pc-101", &json!({"status": "asleep"})).await.0, 400);

    // Retired: no more positions or changes; listed only with all=true; its track kept.
    let (s, u) = delete(&app, "/api/v1/units/fp-7").await;
    assert_eq!((s, u["retired_at_ms"].as_i64()), (200, Some(later)));
    assert_eq!(delete(&app, "/api/v1/units/fp-7").await.0, 409);
    let now = app.clock.now_ms();
    assert_eq!(app.post("/api/v1/units/fp-7/positions", &json!({"positions": [fix(now, 113.66, 34.75)]})).await.0, 409);
    assert_eq!(patch(&app, "/api/v1/units/fp-7", &json!({"status": "off_duty"})).await.0, 409);
    let ids = |v: &Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(ids(&app.get("/api/v1/units").await.1), vec!["pc-101"]);
    assert_eq!(ids(&app.get("/api/v1/units?all=true").await.1), vec!["fp-7", "pc-101"]);

    // Retention: positions before the cut go; the unit keeps its newest position on its row.
    let gone = app.registry.delete_fixes(t0 + 15_000).await.unwrap();
    assert_eq!(gone, 3);
    let (_, track, _) = app.get(&format!("/api/v1/units/pc-101/track?from_ms={}", t0 - 1)).await;
    assert_eq!(track.as_array().unwrap().len(), 2);
    assert_eq!(app.get("/api/v1/units/pc-101").await.1["position"]["at_ms"].as_i64(), Some(t0 + 25_000));
    app.stop().await;
}

/// A tracker that publishes on MQTT, the way vehicle trackers do (QoS 1, one position or a
/// batch per message), through a real broker (a private Mosquitto).
struct Tracker(rumqttc::AsyncClient);

impl Tracker {
    fn connect(port: u16, id: &str) -> Tracker {
        let opts = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        let (client, mut events) = rumqttc::AsyncClient::new(opts, 256);
        tokio::spawn(async move { while events.poll().await.is_ok() {} });
        Tracker(client)
    }

    async fn publish(&self, topic: &str, payload: &Value) {
        self.0.publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.to_string()).await.unwrap();
    }
}

fn mqtt_site(port: u16) -> String {
    format!("{SITE}[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\ntopic_prefix = \"pc\"\nclient_id = \"tw-units-test\"\n")
}

async fn subscribed(app: &TestApp) {
    common::until(30, "the positions subscriber", async || {
        app.get("/api/v1/alerts/stats").await.1["unit_positions"]["subscribed"].as_bool().filter(|s| *s)
    })
    .await;
}

fn times(track: &Value) -> Vec<i64> {
    track.as_array().unwrap().iter().map(|f| f["at_ms"].as_i64().unwrap()).collect()
}

/// The same positions over MQTT (one unit) and HTTP (another) give the same track; a message
/// that is not a position, or names a unit the registry does not hold, is refused and holds
/// nothing up; positions published while the server is down arrive when it is back (the broker
/// keeps them for its persistent session).
async fn positions_over_mqtt_and_http_give_the_same_track(engine: Engine) {
    let broker = common::mqtt::Broker::start();
    let db = TestDb::new(engine).await;
    let dir = config_dir(&[("site.toml", &mqtt_site(broker.port))]);
    let app = TestApp::spawn(dir.path(), &db).await;
    for id in ["pc-1", "pc-2"] {
        let (s, _, body) =
            app.post("/api/v1/units", &json!({"id": id, "name": id, "kind": "car", "station": "s"})).await;
        assert_eq!(s, 201, "{body}");
    }
    subscribed(&app).await;
    let now = app.clock.now_ms();
    let fixes: Vec<Value> = (0..6)
        .map(|i| {
            json!({"at_ms": now - 60_000 + i * 5_000, "lon": 113.66 + i as f64 * 1e-4, "lat": 34.75,
                   "speed_mps": 10.0, "heading_deg": 90.0 + i as f64})
        })
        .collect();
    let tracker = Tracker::connect(broker.port, "tracker-pc-1");
    // Out of order, one per message and then a batch; a repeat; rubbish and an unknown unit between.
    tracker.publish("pc/units/pc-1/position", &fixes[2]).await;
    tracker.publish("pc/units/pc-1/position", &fixes[0]).await;
    tracker.publish("pc/units/pc-1/position", &json!({"hello": "world"})).await;
    tracker.publish("pc/units/nobody/position", &fixes[1]).await;
    tracker.publish("pc/units/pc-1/position", &json!({"positions": [fixes[1], fixes[3], fixes[4], fixes[5]]})).await;
    tracker.publish("pc/units/pc-1/position", &fixes[0]).await;
    let (s, _, body) = app.post("/api/v1/units/pc-2/positions", &json!({"positions": fixes})).await;
    assert_eq!(s, 200, "{body}");
    let from = now - 120_000;
    let mqtt_track = common::until(30, "six positions over MQTT", async || {
        let (_, t, _) = app.get(&format!("/api/v1/units/pc-1/track?from_ms={from}")).await;
        (t.as_array().map(Vec::len) == Some(6)).then_some(t)
    })
    .await;
    let (_, http_track, _) = app.get(&format!("/api/v1/units/pc-2/track?from_ms={from}")).await;
    assert_eq!(mqtt_track, http_track, "the same positions give the same track");
    let (_, a, _) = app.get("/api/v1/units/pc-1").await;
    let (_, b, _) = app.get("/api/v1/units/pc-2").await;
    assert_eq!(a["position"], b["position"]);
    let st = common::until(30, "the repeat counted", async || {
        let st = app.get("/api/v1/alerts/stats").await.1["unit_positions"].clone();
        (st["duplicates"].as_i64() == Some(1)).then_some(st)
    })
    .await;
    assert_eq!(
        (st["messages"].as_i64(), st["stored"].as_i64(), st["refused"].as_i64()),
        (Some(6), Some(6), Some(2)),
        "{st}"
    );

    // The server stops; the tracker goes on; the broker keeps the messages for the session.
    app.stop().await;
    let later: Vec<Value> = (6..9)
        .map(|i| json!({"at_ms": now - 60_000 + i * 5_000, "lon": 113.66 + i as f64 * 1e-4, "lat": 34.75}))
        .collect();
    for f in &later {
        tracker.publish("pc/units/pc-1/position", f).await;
    }
    let app = TestApp::spawn(dir.path(), &db).await;
    let track = common::until(30, "the positions sent while the server was down", async || {
        let (_, t, _) = app.get(&format!("/api/v1/units/pc-1/track?from_ms={from}")).await;
        (t.as_array().map(Vec::len) == Some(9)).then_some(t)
    })
    .await;
    assert_eq!(times(&track), (0..9).map(|i| now - 60_000 + i * 5_000).collect::<Vec<_>>());
    assert_eq!(app.get("/api/v1/units/pc-1").await.1["position"]["at_ms"].as_i64(), Some(now - 20_000));
    app.stop().await;
}

/// The app on a city of one straight primary road, 1.8 km east–west, one-way eastbound
/// (`oneway = "yes"`) or two-way (`"no"`).
async fn road_app(engine: Engine, oneway: &str) -> (TestApp, TestDb, tempfile::TempDir) {
    let db = TestDb::new(engine).await;
    let files = road_site(oneway);
    let dir = config_dir(&files.iter().map(|(n, t)| (*n, t.as_str())).collect::<Vec<_>>());
    let app = TestApp::spawn(dir.path(), &db).await;
    (app, db, dir)
}

fn road_site(oneway: &str) -> Vec<(&'static str, String)> {
    let roads = json!({"type": "FeatureCollection", "features": [{
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[113.640, 34.750], [113.650, 34.750], [113.660, 34.750]]},
        "properties": {"id": "main", "highway": "primary", "oneway": oneway}
    }]});
    vec![("site.toml", format!("{SITE}[map]\nroads = [\"roads.geojson\"]\n")), ("roads.geojson", roads.to_string())]
}

async fn unit_at(app: &TestApp, id: &str, kind: &str, at: Option<(i64, f64, f64)>) {
    let (s, _, body) = app.post("/api/v1/units", &json!({"id": id, "name": id, "kind": kind, "station": "s"})).await;
    assert_eq!(s, 201, "{body}");
    if let Some((t, lon, lat)) = at {
        let (s, _, body) =
            app.post(&format!("/api/v1/units/{id}/positions"), &json!({"positions": [fix(t, lon, lat)]})).await;
        assert_eq!(s, 200, "{body}");
    }
}

fn ranked(plan: &Value) -> Vec<(String, f64)> {
    plan["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["unit"]["id"].as_str().unwrap().to_string(), u["eta_s"].as_f64().unwrap()))
        .collect()
}

fn left_out(plan: &Value) -> Vec<(String, String)> {
    plan["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap().to_string(), u["why"].as_str().unwrap().to_string()))
        .collect()
}

/// An alarm on a one-way street: the available units ranked by their time by road (the car
/// ahead of the alarm on the one-way street cannot drive back; the foot patrol beside it walks
/// either way), the ones that cannot be ranked said with why, busy units not offered; sending
/// units marks them dispatched to the alert and writes the trail; what may not be sent is
/// refused before anything is written.
async fn dispatch_ranks_available_units_by_road_time(engine: Engine) {
    let (app, _db, _dir) = road_app(engine, "yes").await;
    let now = app.clock.now_ms();
    // 180 m east (ahead on the one-way street), 915 m west (behind), 45 m east on foot.
    unit_at(&app, "c-ahead", "car", Some((now, 113.652, 34.7501))).await;
    unit_at(&app, "c-behind", "car", Some((now, 113.640, 34.7501))).await;
    unit_at(&app, "f-1", "foot", Some((now, 113.6505, 34.7501))).await;
    unit_at(&app, "c-stale", "car", Some((now - 600_000, 113.651, 34.7501))).await;
    unit_at(&app, "c-nopos", "car", None).await;
    unit_at(&app, "c-field", "car", Some((now, 113.650, 34.760))).await;
    unit_at(&app, "c-busy", "car", Some((now, 113.6502, 34.7501))).await;
    assert_eq!(patch(&app, "/api/v1/units/c-busy", &json!({"status": "on_scene"})).await.0, 200);
    unit_at(&app, "c-off", "car", Some((now, 113.6502, 34.7501))).await;
    assert_eq!(patch(&app, "/api/v1/units/c-off", &json!({"status": "off_duty"})).await.0, 200);

    let (s, alarm, body) = app
        .post("/api/v1/alarms", &json!({"alarm_id": "bank-9", "name": "Bank 9", "lon": 113.650, "lat": 34.750}))
        .await;
    assert_eq!(s, 201, "{body}");
    let id = alarm["id"].as_i64().unwrap();
    let (s, plan, body) = app.get(&format!("/api/v1/alerts/{id}/dispatch")).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!((plan["place"]["from"].as_str(), plan["place"]["lon"].as_f64()), (Some("alert"), Some(113.650)));
    let r = ranked(&plan);
    assert_eq!(r.iter().map(|u| u.0.as_str()).collect::<Vec<_>>(), ["f-1", "c-behind"], "{plan}");
    // 45 m at 5 km/h; 915 m by car at a primary road's speed is faster than walking it.
    assert!((r[0].1 - 45.7 / (5.0 / 3.6)).abs() < 3.0, "{r:?}");
    assert!(r[1].1 > r[0].1 && r[1].1 < 915.0 / (5.0 / 3.6) / 4.0, "{r:?}");
    let left = left_out(&plan);
    assert_eq!(
        left.iter().map(|l| l.0.as_str()).collect::<Vec<_>>(),
        ["c-ahead", "c-field", "c-nopos", "c-stale"],
        "{plan}"
    );
    assert!(
        left[0].1.contains("one-way") && left[1].1.contains("250 m") && left[2].1.contains("no position"),
        "{left:?}"
    );
    assert!(left[3].1.contains("600 s old"), "{left:?}");
    // k bounds the list.
    let (_, plan1, _) = app.get(&format!("/api/v1/alerts/{id}/dispatch?k=1")).await;
    assert_eq!(ranked(&plan1).len(), 1);
    assert_eq!(app.get(&format!("/api/v1/alerts/{id}/dispatch?k=0")).await.0, 400);
    assert_eq!(app.get("/api/v1/alerts/999999/dispatch").await.0, 404);

    // Refused before anything is written: an off-duty unit, an unknown one, one named twice.
    for (units, status) in [
        (json!(["f-1", "c-off"]), 409),
        (json!(["f-1", "nobody"]), 404),
        (json!(["f-1", "f-1"]), 400),
        (json!([]), 400),
    ] {
        let (s, _, body) = app.post(&format!("/api/v1/alerts/{id}/dispatch"), &json!({"units": units})).await;
        assert_eq!(s, status, "{units}: {body}");
    }
    assert_eq!(app.get("/api/v1/units/f-1").await.1["status"].as_str(), Some("available"));
    // Sending the foot patrol and the busy car (re-tasked).
    let (s, d, body) = app.post(&format!("/api/v1/alerts/{id}/dispatch"), &json!({"units": ["f-1", "c-busy"]})).await;
    assert_eq!(s, 200, "{body}");
    let sent: Vec<(&str, &str, i64)> = d["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap(), u["status"].as_str().unwrap(), u["alert_id"].as_i64().unwrap()))
        .collect();
    assert_eq!(sent, [("f-1", "dispatched", id), ("c-busy", "dispatched", id)]);
    let (_, a, _) = app.get(&format!("/api/v1/alerts/{id}")).await;
    let last = a["audit"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["action"].as_str(), last["actor"].as_str()), (Some("dispatched"), Some("test-admin")), "{a}");
    assert_eq!(last["detail"]["units"][0]["id"], "f-1");
    assert!((last["detail"]["units"][0]["eta_s"].as_f64().unwrap() - r[0].1).abs() < 0.01, "{last}");
    assert!(last["detail"]["units"][1]["eta_s"].is_null(), "a busy unit was not ranked: {last}");
    // Sent units are no longer offered; back to available, a unit leaves its alert.
    let (_, plan, _) = app.get(&format!("/api/v1/alerts/{id}/dispatch")).await;
    assert_eq!(ranked(&plan).iter().map(|u| u.0.as_str()).collect::<Vec<_>>(), ["c-behind"]);
    let (s, u) = patch(&app, "/api/v1/units/f-1", &json!({"status": "available"})).await;
    assert_eq!((s, u["alert_id"].is_null()), (200, true));
    // A resolved alert gets no units.
    assert_eq!(app.post(&format!("/api/v1/alerts/{id}/resolve"), &json!({"note": "caught"})).await.0, 200);
    assert_eq!(app.post(&format!("/api/v1/alerts/{id}/dispatch"), &json!({"units": ["f-1"]})).await.0, 409);
    app.stop().await;
}

/// On the same road two-way, the car ahead of the alarm drives back and comes first.
async fn two_way_the_car_ahead_drives_back(engine: Engine) {
    let (app, _db, _dir) = road_app(engine, "no").await;
    let now = app.clock.now_ms();
    unit_at(&app, "c-ahead", "car", Some((now, 113.652, 34.7501))).await;
    unit_at(&app, "c-behind", "car", Some((now, 113.640, 34.7501))).await;
    unit_at(&app, "f-1", "foot", Some((now, 113.6505, 34.7501))).await;
    let (_, alarm, _) = app
        .post("/api/v1/alarms", &json!({"alarm_id": "bank-9", "name": "Bank 9", "lon": 113.650, "lat": 34.750}))
        .await;
    let (_, plan, _) = app.get(&format!("/api/v1/alerts/{}/dispatch", alarm["id"])).await;
    assert_eq!(
        ranked(&plan).iter().map(|u| u.0.as_str()).collect::<Vec<_>>(),
        ["c-ahead", "f-1", "c-behind"],
        "{plan}"
    );
    assert!(left_out(&plan).is_empty(), "{plan}");
    app.stop().await;
}

/// Waits on the units' live stream for a change for which `pred` holds; returns it.
async fn until_change(sse: &mut common::sse::Sse, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        match sse.next_event(deadline).await {
            Some((event, _, data)) => {
                assert_eq!(event.as_deref(), Some("units"), "{data}");
                if pred(&data) {
                    return data;
                }
                seen.push(data);
            }
            None => panic!("{what}: not on the stream; it carried {seen:?}"),
        }
    }
}

fn has_unit(c: &Value, id: &str, f: impl Fn(&Value) -> bool) -> bool {
    c["units"].as_array().is_some_and(|us| us.iter().any(|u| u["id"] == id && f(u)))
}

/// The map's live feed: every unit first, then each change as it is stored (a position over
/// HTTP, one stored by another node straight into the registry, a status, a unit added, going
/// stale, retired), on both engines; a client that comes later starts from every unit again.
async fn units_live_stream(engine: Engine) {
    let db = TestDb::new(engine).await;
    let dir = config_dir(&[("site.toml", SITE)]);
    let app = TestApp::spawn(dir.path(), &db).await;
    let now = app.clock.now_ms();
    for id in ["pc-1", "pc-2"] {
        let (s, _, body) =
            app.post("/api/v1/units", &json!({"id": id, "name": id, "kind": "car", "station": "s"})).await;
        assert_eq!(s, 201, "{body}");
    }
    let mut sse = common::sse::Sse::open_units(&app).await;
    let first = until_change(&mut sse, "every unit", |c| c["full"] == true).await;
    let ids: Vec<&str> = first["units"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["pc-1", "pc-2"], "{first}");

    // A position over HTTP: only that unit, with it, not stale.
    let (s, _, body) =
        app.post("/api/v1/units/pc-1/positions", &json!({"positions": [fix(now - 1_000, 113.66, 34.75)]})).await;
    assert_eq!(s, 200, "{body}");
    let c = until_change(&mut sse, "pc-1's position", |c| {
        has_unit(c, "pc-1", |u| u["position"]["at_ms"].as_i64() == Some(now - 1_000))
    })
    .await;
    assert_eq!(c["full"], false, "{c}");
    assert!(!has_unit(&c, "pc-2", |_| true), "pc-2 did not change: {c}");
    assert!(has_unit(&c, "pc-1", |u| u["stale"] == false), "{c}");

    // A position another node stored (straight into the registry: this node is not told).
    let other = tianwang::registry::Fix {
        at_ms: now - 500,
        lon: 113.661,
        lat: 34.751,
        speed_mps: Some(9.0),
        heading_deg: None,
        accuracy_m: None,
    };
    app.registry.add_fixes("pc-2", &[other], tianwang::registry::FixSource::Http, now, i64::MIN).await.unwrap();
    until_change(&mut sse, "the other node's position", |c| {
        has_unit(c, "pc-2", |u| u["position"]["speed_mps"].as_f64() == Some(9.0))
    })
    .await;

    // A status; a unit added.
    assert_eq!(patch(&app, "/api/v1/units/pc-2", &json!({"status": "off_duty"})).await.0, 200);
    until_change(&mut sse, "pc-2 off duty", |c| has_unit(c, "pc-2", |u| u["status"] == "off_duty")).await;
    let (s, _, _) =
        app.post("/api/v1/units", &json!({"id": "fp-3", "name": "f", "kind": "foot", "station": "s"})).await;
    assert_eq!(s, 201);
    until_change(&mut sse, "fp-3 added", |c| has_unit(c, "fp-3", |u| u["kind"] == "foot")).await;

    // Two minutes on, pc-1's position is stale.
    app.clock.advance(121_000);
    until_change(&mut sse, "pc-1 stale", |c| has_unit(c, "pc-1", |u| u["stale"] == true)).await;

    // Retired: gone from the map.
    assert_eq!(delete(&app, "/api/v1/units/fp-3").await.0, 200);
    let c = until_change(&mut sse, "fp-3 retired", |c| c["gone"].as_array().is_some_and(|g| !g.is_empty())).await;
    assert_eq!(c["gone"], json!(["fp-3"]), "{c}");

    // A second client starts from every unit as they are now.
    let mut late = common::sse::Sse::open_units(&app).await;
    let first = until_change(&mut late, "every unit", |c| c["full"] == true).await;
    let us = first["units"].as_array().unwrap();
    assert_eq!(us.len(), 2, "{first}");
    assert!(has_unit(&first, "pc-2", |u| u["status"] == "off_duty" && u["position"]["speed_mps"] == 9.0), "{first}");
    app.stop().await;
}

on_both_engines!(
    units_live_stream,
    units_positions_and_tracks,
    positions_over_mqtt_and_http_give_the_same_track,
    dispatch_ranks_available_units_by_road_time,
    two_way_the_car_ahead_drives_back,
);
