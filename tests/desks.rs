//! Duty desks through the running app, on both engines: an alert goes to the desk of the grid
//! cell where it happened (its own cell's, else the nearest above), reaches the desk above only
//! when left unacknowledged past its escalation time, and a desk's token lists, streams and
//! handles only what reached its desk.

mod common;

use std::time::{Duration, Instant};

use common::sse::Sse;
use common::{Engine, TestApp, TestDb, authed_client, config_dir};
use serde_json::{Value, json};
use tianwang::clock::Clock;
use tianwang::events::{Event, Motion, NewEvent};

/// A city cell over two districts; a compound inside district a without a desk of its own; a
/// camera in district b. Desks for the city and both districts.
const SITE: &str = r#"[site]
name = "Desk city"
timezone = "Asia/Shanghai"

[[grid_cell]]
id = "g1"
name = "City"
level = 1
outline = [[113.60, 34.70], [113.72, 34.70], [113.72, 34.80], [113.60, 34.80]]

[[grid_cell]]
id = "g2-a"
name = "District A"
level = 2
parent = "g1"
outline = [[113.60, 34.70], [113.66, 34.70], [113.66, 34.80], [113.60, 34.80]]

[[grid_cell]]
id = "g2-b"
name = "District B"
level = 2
parent = "g1"
outline = [[113.66, 34.70], [113.72, 34.70], [113.72, 34.80], [113.66, 34.80]]

[[grid_cell]]
id = "g3-a1"
name = "Compound A1"
level = 3
parent = "g2-a"
outline = [[113.62, 34.72], [113.64, 34.72], [113.64, 34.74], [113.62, 34.74]]

[[desk]]
id = "d-city"
name = "City command desk"
cells = ["g1"]

[[desk]]
id = "d-a"
name = "District A desk"
cells = ["g2-a"]

[[desk]]
id = "d-b"
name = "District B desk"
cells = ["g2-b"]

[[camera]]
id = "cam-b"
name = "Camera in B"
url = "rtsp://10.0.0.9/cam-b"
lon = 113.70
lat = 34.75
bearing_deg = 0
hfov_deg = 90
mounting_height_m = 6
resolution = "1920x1080"
owner = "public"
kind = "street"
grid_cell = "g2-b"

[[armed_zone]]
camera = "cam-b"
"#;

async fn alarm(app: &TestApp, id: &str, lon: f64, lat: f64) -> Value {
    let (s, v, body) = app.post("/api/v1/alarms", &json!({"alarm_id": id, "name": id, "lon": lon, "lat": lat})).await;
    assert_eq!(s, 201, "{body}");
    v
}

async fn desk_token(app: &TestApp, name: &str, desk: Option<&str>) -> reqwest::Client {
    let t = app.registry.create_desk_token(name, "operator", desk, false, app.clock.now_ms()).await.unwrap();
    authed_client(&t)
}

async fn get_as(app: &TestApp, c: &reqwest::Client, path: &str) -> (u16, Value) {
    let r = c.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn post_as(app: &TestApp, c: &reqwest::Client, path: &str, body: &Value) -> (u16, Value) {
    let r = c.post(app.url(path)).json(body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn ids(page: &Value) -> Vec<i64> {
    let mut v: Vec<i64> = page["items"].as_array().unwrap().iter().map(|a| a["id"].as_i64().unwrap()).collect();
    v.sort();
    v
}

/// The next change on a stream: (alert id, change, escalation level).
async fn next(s: &mut Sse) -> (i64, String, i64) {
    let (_, ev) = s.next(Instant::now() + Duration::from_secs(20)).await.expect("a change on the stream");
    (
        ev["alert"]["id"].as_i64().unwrap(),
        ev["change"].as_str().unwrap().to_string(),
        ev["alert"]["escalation_level"].as_i64().unwrap(),
    )
}

async fn stream_as(app: &TestApp, c: &reqwest::Client) -> Sse {
    Sse::open_at(c, &format!("http://{}", app.addr), None).await
}

async fn alerts_reach_their_cells_desk_first_and_the_desk_above_after_escalation(engine: Engine) {
    let db = TestDb::new(engine).await;
    let dir = config_dir(&[("site.toml", SITE)]);
    let app = TestApp::spawn(dir.path(), &db).await;
    let op_a = desk_token(&app, "op-a", Some("d-a")).await;
    let op_b = desk_token(&app, "op-b", Some("d-b")).await;
    let op_city = desk_token(&app, "op-city", Some("d-city")).await;
    let room = desk_token(&app, "room", None).await;
    let mut sa = stream_as(&app, &op_a).await;
    let mut sb = stream_as(&app, &op_b).await;
    let mut sc = stream_as(&app, &op_city).await;

    // An alarm in compound A1 (no desk of its own: district A's), then one in district B.
    let a1 = alarm(&app, "a1-bank", 113.63, 34.73).await;
    assert_eq!(a1["grid_cell_id"], "g3-a1", "the finest cell holding the place: {a1}");
    let a1 = a1["id"].as_i64().unwrap();
    let b1 = alarm(&app, "b1-shop", 113.70, 34.76).await;
    assert_eq!(b1["grid_cell_id"], "g2-b");
    let b1 = b1["id"].as_i64().unwrap();
    assert_eq!(next(&mut sa).await, (a1, "raised".into(), 0));
    // B's stream's first change is B's alarm: A's went by, raised before it, not shown.
    assert_eq!(next(&mut sb).await, (b1, "raised".into(), 0));

    // Lists: each desk its own; the city desk nothing yet; the command centre everything.
    assert_eq!(ids(&get_as(&app, &op_a, "/api/v1/alerts").await.1), vec![a1]);
    assert_eq!(ids(&get_as(&app, &op_b, "/api/v1/alerts").await.1), vec![b1]);
    assert_eq!(ids(&get_as(&app, &op_city, "/api/v1/alerts").await.1), Vec::<i64>::new());
    assert_eq!(ids(&get_as(&app, &room, "/api/v1/alerts").await.1), vec![a1, b1]);
    assert_eq!(ids(&get_as(&app, &room, "/api/v1/alerts?desk=d-a").await.1), vec![a1], "the room looks at a desk");
    // B's operator may not see, handle or dispatch to A's alert, nor look at A's desk.
    for (s, v) in [
        get_as(&app, &op_b, &format!("/api/v1/alerts/{a1}")).await,
        post_as(&app, &op_b, &format!("/api/v1/alerts/{a1}/acknowledge"), &json!({})).await,
        post_as(&app, &op_b, &format!("/api/v1/alerts/{a1}/comments"), &json!({"text": "mine?"})).await,
        get_as(&app, &op_b, &format!("/api/v1/alerts/{a1}/dispatch")).await,
        get_as(&app, &op_b, "/api/v1/alerts?desk=d-a").await,
    ] {
        assert_eq!(s, 403, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("d-b"), "{v}");
    }
    let r = op_b.get(app.url("/api/v1/alerts/stream?desk=d-a")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403, "nor stream A's desk");
    assert_eq!(get_as(&app, &room, "/api/v1/alerts?desk=nowhere").await.0, 400);
    // B acknowledges its own: no escalation for it.
    assert_eq!(post_as(&app, &op_b, &format!("/api/v1/alerts/{b1}/acknowledge"), &json!({})).await.0, 200);
    assert_eq!(next(&mut sb).await, (b1, "acknowledged".into(), 0));

    // Past the alarm's escalation time (2 minutes) unacknowledged, A's alarm reaches the city
    // desk: its first change there is the escalation.
    app.clock.advance(121_000);
    assert_eq!(next(&mut sc).await, (a1, "escalated".into(), 1));
    assert_eq!(next(&mut sa).await, (a1, "escalated".into(), 1), "the desk below keeps it");
    assert_eq!(ids(&get_as(&app, &op_city, "/api/v1/alerts").await.1), vec![a1], "B's acknowledged alarm stayed below");
    let (s, one) = get_as(&app, &op_city, &format!("/api/v1/alerts/{a1}")).await;
    assert_eq!((s, one["alert"]["escalation_level"].as_i64()), (200, Some(1)));

    // The queues.
    let (_, desks) = get_as(&app, &room, "/api/v1/desks").await;
    let q: Vec<(String, Option<String>, i64, i64)> = desks["desks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().into(),
                d["above"].as_str().map(String::from),
                d["new"].as_i64().unwrap(),
                d["acknowledged"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        q,
        vec![
            ("d-city".into(), None, 1, 0),
            ("d-a".into(), Some("d-city".into()), 1, 0),
            ("d-b".into(), Some("d-city".into()), 0, 1)
        ]
    );
    assert_eq!(desks["scope"], Value::Null);
    assert_eq!(get_as(&app, &op_a, "/api/v1/desks").await.1["scope"], "d-a");

    // The city desk acknowledges it; A's desk sees that too.
    assert_eq!(post_as(&app, &op_city, &format!("/api/v1/alerts/{a1}/acknowledge"), &json!({})).await.0, 200);
    assert_eq!(next(&mut sc).await, (a1, "acknowledged".into(), 1));
    assert_eq!(next(&mut sa).await, (a1, "acknowledged".into(), 1));

    // A camera's alert without a cell of its own takes its camera's: motion at cam-b is B's.
    let now = app.clock.now_ms();
    let m = Motion { camera_id: "cam-b".into(), zone: "gate".into(), boxes: vec![] };
    app.log.append(&[NewEvent::new(now, None, Event::Motion(m))]).await.unwrap();
    let (motion, change, _) = next(&mut sb).await;
    assert_eq!(change, "raised");
    // B's stream got none of A's changes (raised, escalated, acknowledged) before it.
    let (_, row, _) = app.get(&format!("/api/v1/alerts/{motion}")).await;
    assert_eq!((row["alert"]["kind"].as_str(), row["alert"]["grid_cell_id"].as_str()), (Some("motion"), Some("g2-b")));

    // An alarm outside every outline reaches no desk: the command centre's alone.
    let lost = alarm(&app, "far-away", 114.5, 35.5).await["id"].as_i64().unwrap();
    assert!(ids(&get_as(&app, &room, "/api/v1/alerts").await.1).contains(&lost));
    for c in [&op_a, &op_b, &op_city] {
        assert!(!ids(&get_as(&app, c, "/api/v1/alerts").await.1).contains(&lost));
    }
    let (_, desks) = get_as(&app, &room, "/api/v1/desks").await;
    assert_eq!(desks["unrouted_new"], 1);

    // A token of a desk the configuration does not hold sees nothing, and is told why.
    let ghost = desk_token(&app, "op-ghost", Some("d-gone")).await;
    let (s, v) = get_as(&app, &ghost, "/api/v1/alerts").await;
    assert_eq!(s, 403);
    assert!(v["error"]["message"].as_str().unwrap().contains("d-gone"), "{v}");
    app.stop().await;
}

on_both_engines!(alerts_reach_their_cells_desk_first_and_the_desk_above_after_escalation);
