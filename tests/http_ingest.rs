//! The ingest side of the HTTP API against the app with real pipelines on simulated cameras:
//! health, snapshots, metrics, and a reload that starts and stops only what changed.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Engine, TestDb, config_dir};
use serde_json::Value;
use tianwang::app::{App, AppOptions};
use tianwang::clock::SystemClock;
use tianwang::sim::{SimCamera, SimServer};

const SITE: &str = "[site]\nname = \"S\"\ntimezone = \"UTC\"\n[defaults]\nhfov_deg = 90\nresolution = \"1920x1080\"\nowner = \"public\"\nmounting_height_m = 5\nkind = \"street\"\nwatchdog_s = 3\n";

fn cam(id: &str, url: &str, extra: &str) -> String {
    format!(
        "[[camera]]\nid = \"{id}\"\nname = \"{id}\"\nurl = \"{url}\"\nlon = 113.6\nlat = 34.7\nbearing_deg = 0\ningest_size = \"160x90\"\n{extra}\n"
    )
}

async fn get(client: &reqwest::Client, base: &str, path: &str) -> (u16, Vec<u8>) {
    let r = client.get(format!("{base}{path}")).send().await.unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// Polls the health endpoint until `pred` holds (the endpoint is the thing under test).
async fn until(client: &reqwest::Client, base: &str, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let (st, body) = get(client, base, &format!("/api/v1/cameras/{id}/health")).await;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if st == 200 && pred(&v) {
            return v;
        }
        assert!(Instant::now() < end, "{id}: condition not reached; last {st} {v}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_snapshot_metrics_and_reload() {
    let sim = SimServer::start().unwrap();
    let url = |p: &str| sim.add(SimCamera::new(p, 320, 180, 10));
    let (a, b, c) = (url("a"), url("b"), url("c"));
    let dir = config_dir(&[
        ("site.toml", SITE),
        ("cams.toml", &(cam("a", &a, "") + &cam("b", &b, "profile = \"checkpoint\""))),
    ]);
    let db = TestDb::new(Engine::Sqlite).await;
    let app = App::build(dir.path(), &db.url, Arc::new(SystemClock), AppOptions { ingest: true, ..Default::default() })
        .await
        .unwrap();
    let registry = app.state.registry.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tianwang::server::serve(app, listener, async move {
        let _ = stop_rx.await;
    }));
    let token = registry.create_token("t", "admin", false, 0).await.unwrap();
    let client = common::authed_client(&token);

    let h = until(&client, &base, "a", |v| v["state"] == "streaming" && v["frames_delivered"].as_u64() > Some(2)).await;
    assert_eq!(h["profile"], "street");
    assert_eq!(h["codec"], "h264");
    assert_eq!(h["resolution_seen"], "320x180");
    until(&client, &base, "b", |v| v["state"] == "streaming" && v["frames_delivered"].as_u64() > Some(2)).await;
    // The registry status follows ingest, with the change in the history.
    let end = Instant::now() + Duration::from_secs(10);
    while registry.get_camera("a").await.unwrap().unwrap().status != "online" {
        assert!(Instant::now() < end, "status never became online");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hist = registry.status_history("a", 10).await.unwrap();
    assert_eq!(hist[0].to_status, "online");
    assert!(hist[0].reason.contains("streaming"), "{:?}", hist[0]);

    let (st, body) = get(&client, &base, "/api/v1/cameras/a/ingest-history").await;
    assert_eq!(st, 200);
    let ih: Vec<Value> = serde_json::from_slice(&body).unwrap();
    assert!(ih.iter().any(|t| t["from_state"] == "connecting" && t["to_state"] == "streaming"), "{ih:?}");
    let (st, body) = get(&client, &base, "/api/v1/health/cameras").await;
    assert_eq!(st, 200);
    let all: Vec<Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(all.len(), 2);
    let (st, jpeg) = get(&client, &base, "/api/v1/cameras/b/snapshot.jpg").await;
    assert_eq!(st, 200);
    assert_eq!(&jpeg[..3], &[0xff, 0xd8, 0xff], "a JPEG");
    let img = image::load_from_memory(&jpeg).unwrap();
    assert_eq!((img.width(), img.height()), (160, 90));
    let (st, _) = get(&client, &base, "/api/v1/cameras/nope/health").await;
    assert_eq!(st, 404);
    let (_, metrics) = get(&client, &base, "/metrics").await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(metrics.contains("tianwang_camera_up{camera=\"a\"} 1"), "{metrics}");
    assert!(metrics.contains("tianwang_camera_state{camera=\"b\",state=\"streaming\"} 1"), "{metrics}");
    assert!(metrics.contains("# TYPE tianwang_camera_frames_delivered_total counter"));

    // Reload: a removed, b unchanged, c added.
    std::fs::write(dir.path().join("cams.toml"), cam("b", &b, "profile = \"checkpoint\"") + &cam("c", &c, "")).unwrap();
    let frames_b = until(&client, &base, "b", |_| true).await["frames_delivered"].as_u64().unwrap();
    let r = client.post(format!("{base}/api/v1/admin/reload")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let rep: Value = r.json().await.unwrap();
    assert_eq!(rep["pipelines_started"], serde_json::json!(["c"]));
    assert_eq!(rep["pipelines_stopped"], serde_json::json!(["a"]));
    assert_eq!(rep["pipelines_unchanged"], 1);
    assert_eq!(rep["cameras_decommissioned"], serde_json::json!(["a"]));
    let (st, _) = get(&client, &base, "/api/v1/cameras/a/health").await;
    assert_eq!(st, 409, "a decommissioned camera is not ingested");
    until(&client, &base, "c", |v| v["state"] == "streaming").await;
    let hb = until(&client, &base, "b", |_| true).await;
    assert!(hb["frames_delivered"].as_u64().unwrap() >= frames_b, "b was not restarted");
    assert_eq!(hb["reconnects_last_hour"], 0);

    // A bad configuration is refused and changes nothing.
    std::fs::write(dir.path().join("cams.toml"), cam("b", &b, "bearing_deg = 999")).unwrap();
    let r = client.post(format!("{base}/api/v1/admin/reload")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("cams.toml"), "{body}");
    until(&client, &base, "c", |v| v["state"] == "streaming").await;

    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
}
