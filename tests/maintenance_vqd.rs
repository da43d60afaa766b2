//! Video quality diagnosis over RTSP. A simulated camera showing a quality scene (a textured
//! street with sensor noise and a walking figure, `sim::scene`) is switched through every picture
//! fault while it streams — black, white, frozen, blurred, covered, moved, colour cast, snow — and
//! each must be raised within three samples and cleared within three samples of recovery (one
//! more when the picture reaches us a sample late on a loaded machine: see the loop), the
//! camera shown `degraded` meanwhile; losing the stream takes it offline and back. A healthy camera
//! beside it raises nothing; one sending a quarter of its expected frame rate is `degraded` for
//! it. The alerts resolve themselves.

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
    until_seen(client, base, id, what, |_| false, pred).await.1
}

/// Like `until`, and also the number of the first sample (polled at 100 ms, each sample is seen)
/// for which `first` held, if one did.
async fn until_seen(
    client: &reqwest::Client,
    base: &str,
    id: &str,
    what: &str,
    first: impl Fn(&Value) -> bool,
    pred: impl Fn(&Value) -> bool,
) -> (Option<u64>, Value) {
    let end = Instant::now() + Duration::from_secs(60);
    let mut seen = None;
    loop {
        let q = quality(client, base, id).await;
        if seen.is_none() && first(&q) {
            seen = q["samples"].as_u64();
        }
        if pred(&q) {
            return (seen, q);
        }
        assert!(Instant::now() < end, "{id}: {what} not reached; last {q}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Switches the "bad" camera's picture to `fault` (none: healthy again) and waits for `done`:
/// the first sample that shows the change (`which` streak of `check` at 1) comes at most three
/// samples after the switch, and `done` holds on the next one at the latest (see the test's loop).
async fn switch(
    sim: &SimServer,
    client: &reqwest::Client,
    base: &str,
    fault: Option<&str>,
    check: &str,
    which: &str,
    done: impl Fn(&Value) -> bool,
) {
    let before = quality(client, base, "bad").await["samples"].as_u64().unwrap();
    sim.set_fault("bad", fault).unwrap();
    let what = format!("{check} {}", if fault.is_some() { "raised" } else { "cleared" });
    let shows =
        |q: &Value| q["samples"].as_u64().unwrap_or(0) > before && q["checks"][check][which].as_u64().unwrap_or(0) >= 1;
    let (shown, q) = until_seen(client, base, "bad", &what, shows, done).await;
    let (at, shown) = (q["samples"].as_u64().unwrap(), shown.unwrap_or(0));
    assert!(
        shown > before && shown - before <= 3,
        "{what}: first shown {} samples after the switch: {q}",
        shown - before
    );
    assert!(at - shown <= 1, "{what}: {} samples after it showed: {q}", at - shown);
}

fn has(q: &Value, fault: &str) -> bool {
    q["faults"].as_array().is_some_and(|f| f.iter().any(|x| x == fault))
}

async fn status(app: &TestApp, id: &str) -> (String, String) {
    let c = app.registry.get_camera(id).await.unwrap().unwrap();
    (c.status, c.status_reason)
}

async fn until_status(app: &TestApp, id: &str, want: &str) -> String {
    until_status_why(app, id, want, "").await
}

/// Waits for the registry to show the camera `want` with a reason that contains `why`. The
/// quality endpoint shows a fault a moment before the status written from it, and a fault that
/// comes with another (a black picture is also low in contrast) may show first on its own.
async fn until_status_why(app: &TestApp, id: &str, want: &str, why: &str) -> String {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, reason) = status(app, id).await;
        if s == want && reason.contains(why) {
            return reason;
        }
        assert!(Instant::now() < end, "{id} never {want} with {why:?}; is {s} ({reason})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_raise_and_clear_within_three_samples() {
    let sim = SimServer::start().unwrap();
    let mk = |p: &str, seed: u64| {
        let mut c = SimCamera::new(p, 320, 180, 8);
        c.scene = Some(tianwang::sim::scene::SimScene::quality(seed));
        c.bitrate_kbps = 600;
        sim.add(c)
    };
    let (good, bad) = (mk("good", 1), mk("bad", 2));
    // A camera sending 2 frames/s where 8 are expected: degraded for its frame rate.
    let mut slow = SimCamera::new("slow", 320, 180, 2);
    slow.scene = Some(tianwang::sim::scene::SimScene::quality(3));
    let slow = sim.add(slow);
    // One sample every 3 s (the default is 10 s): after a picture freezes, the encoder keeps
    // refining the still picture for 2-3 s, so frozen shows from the first full interval after.
    let site = "[site]\nname = \"S\"\ntimezone = \"UTC\"\n[maintenance]\nvqd_interval_s = 3\nraise_after = 2\nclear_after = 2\n";
    let cam = |id: &str, url: &str| {
        format!(
            "[[camera]]\nid = \"{id}\"\nname = \"{id}\"\nurl = \"{url}\"\nlon = 113.6\nlat = 34.7\nbearing_deg = 0\n\
             hfov_deg = 90\nresolution = \"1920x1080\"\nowner = \"public\"\nmounting_height_m = 5\nkind = \"street\"\n\
             ingest_size = \"320x180\"\nprofile = \"checkpoint\"\ningest_fps = 8\nwatchdog_s = 2\n"
        )
    };
    let dir = config_dir(&[
        ("site.toml", site),
        ("cams.toml", &(cam("good", &good) + &cam("bad", &bad) + &cam("slow", &slow))),
    ]);
    let db = TestDb::new(Engine::Sqlite).await;
    let app = TestApp::spawn_live(dir.path(), &db).await;
    let base = format!("http://{}", app.addr);
    let client = app.client.clone();

    // Learn the healthy picture first (2 skipped + 3 learnt samples).
    until(&client, &base, "bad", "6 samples", |q| q["samples"].as_u64().unwrap_or(0) >= 6).await;
    until_status(&app, "bad", "online").await;
    let reason = until_status(&app, "slow", "degraded").await;
    assert!(reason.contains("low_fps"), "{reason}");
    let faults = [
        ("black", "too_dark"),
        ("white", "too_bright"),
        ("frozen", "frozen"),
        ("blur", "blur"),
        ("cover", "occlusion"),
        ("moved", "scene_change"),
        ("cast", "colour_cast"),
        ("noise", "noise"),
    ];
    // Raised (cleared) within three samples of the switch: the sample that may still hold the
    // old picture (it was taken during the interval of the switch), and the two in a row that
    // raise_after (clear_after) asks for. On a loaded machine (the simulator's encoder shares two
    // cores with the suite) the picture can reach us a sample late, so the test looks at both
    // halves: the first sample that shows the change (the check's `bad_streak` / `good_streak`
    // at 1) comes at most three samples after the switch (one of lag), and the fault is raised
    // (cleared) on the very next one: three samples, four on a machine that lags.
    for (fault, check) in faults {
        let has_it = |q: &Value| has(q, check);
        switch(&sim, &client, &base, Some(fault), check, "bad_streak", has_it).await;
        until_status_why(&app, "bad", "degraded", &format!("quality:{check}")).await;
        let clear = |q: &Value| q["faults"].as_array().is_some_and(|f| f.is_empty());
        switch(&sim, &client, &base, None, check, "good_streak", clear).await;
        until_status(&app, "bad", "online").await;
    }
    // Stream loss: the watchdog (2 s, within one sample) takes it offline; it comes back by itself.
    sim.stop("bad").unwrap();
    let reason = until_status(&app, "bad", "offline").await;
    assert!(!reason.is_empty());
    sim.start_camera("bad").unwrap();
    until_status(&app, "bad", "online").await;

    let good_q = quality(&client, &base, "good").await;
    assert!(good_q["samples"].as_u64().unwrap() >= 8, "{good_q}");
    let ev: Value =
        client.get(format!("{base}/api/v1/events?kind=quality_fault")).send().await.unwrap().json().await.unwrap();
    let ev = ev.as_array().unwrap();
    assert!(ev.iter().all(|e| e["camera_id"] == "bad"), "the healthy (or merely slow) cameras raised: {ev:?}");
    let checks: Vec<&str> = ev.iter().filter_map(|e| e["payload"]["check"].as_str()).collect();
    for (_, check) in faults {
        assert!(checks.contains(&check), "{check} not among {checks:?}");
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
