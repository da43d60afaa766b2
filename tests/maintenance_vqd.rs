//! Video quality diagnosis over RTSP: a simulated camera whose picture turns black, then to snow,
//! raises `too_dark`, then `noise`, each within three samples, and clears each within three samples of
//! recovery (the alerts resolve themselves); a healthy camera beside it raises nothing.
//! (Blur and colour cast are tested on synthetic frames in `maintenance::vqd`: the SMPTE card's
//! sharpness is mostly its animated noise corner, which the encoder renders differently from second
//! to second, and sepia toning of its saturated bars measures K ≈ 1.44, under the 1.5 threshold.
//! Occlusion and scene change likewise: in trials a filter fault set with `SimServer::set_picture`
//! after the pattern changes did not always reach the camera (the cover persisted after it was
//! lifted; the mirror never arrived) — not yet explained, so those are unit-tested only.)

mod common;

use std::time::{Duration, Instant};

use common::{Engine, TestApp, TestDb, config_dir};
use serde_json::Value;
use tianwang::sim::{SimCamera, SimServer};

async fn quality(client: &reqwest::Client, base: &str, id: &str) -> Value {
    let v: Value = client.get(format!("{base}/api/v1/maintenance/quality")).send().await.unwrap().json().await.unwrap();
    v.as_array().and_then(|a| a.iter().find(|c| c["camera_id"] == id).cloned()).unwrap_or(Value::Null)
}

/// Polls the quality endpoint (the thing under test) until `pred` holds; returns the camera's row.
async fn until(client: &reqwest::Client, base: &str, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let q = quality(client, base, id).await;
        if pred(&q) {
            return q;
        }
        assert!(Instant::now() < end, "{id}: {what} not reached; last {q}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn has(q: &Value, fault: &str) -> bool {
    q["faults"].as_array().is_some_and(|f| f.iter().any(|x| x == fault))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_raise_and_clear_within_three_samples() {
    let sim = SimServer::start().unwrap();
    let mk = |p: &str| {
        let mut c = SimCamera::new(p, 320, 180, 10);
        c.pattern = "smpte".into();
        sim.add(c)
    };
    let (good, bad) = (mk("good"), mk("bad"));
    let site = "[site]\nname = \"S\"\ntimezone = \"UTC\"\n[maintenance]\nvqd_interval_s = 0.5\nraise_after = 2\nclear_after = 2\n";
    let cam = |id: &str, url: &str| {
        format!(
            "[[camera]]\nid = \"{id}\"\nname = \"{id}\"\nurl = \"{url}\"\nlon = 113.6\nlat = 34.7\nbearing_deg = 0\n\
             hfov_deg = 90\nresolution = \"1920x1080\"\nowner = \"public\"\nmounting_height_m = 5\nkind = \"street\"\n\
             ingest_size = \"320x180\"\nprofile = \"checkpoint\"\n"
        )
    };
    let dir = config_dir(&[("site.toml", site), ("cams.toml", &(cam("good", &good) + &cam("bad", &bad)))]);
    let db = TestDb::new(Engine::Sqlite).await;
    let app = TestApp::spawn_live(dir.path(), &db).await;
    let base = format!("http://{}", app.addr);
    let client = app.client.clone();

    // Learn the healthy picture first.
    until(&client, &base, "bad", "4 samples", |q| q["samples"].as_u64().unwrap_or(0) >= 4).await;
    // Picture faults: (pattern, filter) → expected fault.
    let faults = [("black", None, "too_dark"), ("snow", None, "noise")];
    for (pattern, filter, fault) in faults {
        let before = quality(&client, &base, "bad").await["samples"].as_u64().unwrap();
        sim.set_picture("bad", pattern, filter).unwrap();
        let q = until(&client, &base, "bad", fault, |q| has(q, fault)).await;
        let took = q["samples"].as_u64().unwrap() - before;
        assert!(took <= 3, "{fault} raised after {took} samples: {q}");
        let before = q["samples"].as_u64().unwrap();
        sim.set_pattern("bad", "smpte").unwrap();
        let q =
            until(&client, &base, "bad", "recovery", |q| q["faults"].as_array().is_some_and(|f| f.is_empty())).await;
        let took = q["samples"].as_u64().unwrap() - before;
        assert!(took <= 3, "{fault} cleared after {took} samples: {q}");
    }
    let good_q = quality(&client, &base, "good").await;
    assert!(good_q["samples"].as_u64().unwrap() >= 8, "{good_q}");
    let ev: Value =
        client.get(format!("{base}/api/v1/events?kind=quality_fault")).send().await.unwrap().json().await.unwrap();
    let ev = ev.as_array().unwrap();
    assert!(ev.iter().all(|e| e["camera_id"] == "bad"), "the healthy camera raised: {ev:?}");
    let checks: Vec<&str> = ev.iter().filter_map(|e| e["payload"]["check"].as_str()).collect();
    for (_, _, fault) in faults {
        assert!(checks.contains(&fault), "{fault} not among {checks:?}");
    }
    assert!(ev.iter().all(|e| e["payload"]["measures"]["mean_luma"].is_number()));
    // The alerts for both faults exist and resolved themselves.
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let al: Value =
            client.get(format!("{base}/api/v1/alerts?kind=quality_fault")).send().await.unwrap().json().await.unwrap();
        let items = al.get("items").or(al.get("alerts")).cloned().unwrap_or(al);
        let items = items.as_array().cloned().unwrap_or_default();
        if items.len() >= faults.len() && items.iter().all(|a| a["status"] == "resolved") {
            break;
        }
        assert!(Instant::now() < end, "quality alerts not raised and resolved: {items:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await;
}
