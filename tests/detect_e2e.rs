//! Plate reading end to end over RTSP: a simulated checkpoint camera shows 20 vehicles carrying
//! known plates; the app ingests it, reads the plates with the real models, and stores one passage
//! per vehicle; one watchlisted plate raises one `watchlist_hit` event.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Engine, TestApp, TestDb, config_dir};
use rand::SeedableRng;
use serde_json::{Value, json};
use tianwang::sim::plates::{PlateColor, random_plate};
use tianwang::sim::{SimCamera, SimServer, Traffic};

const VEHICLES: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_vehicles_twenty_passages_and_one_watchlist_hit() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let plates: Vec<(String, PlateColor)> = (0..VEHICLES)
        .map(|i| {
            let c = PlateColor::ALL[i % PlateColor::ALL.len()];
            (random_plate(&mut rng, c), c)
        })
        .collect();
    let sim = SimServer::start().unwrap();
    let mut cam = SimCamera::new("cp-1", 960, 540, 8);
    cam.keyframe_interval = 16;
    cam.bitrate_kbps = 3000;
    cam.traffic = Some(Traffic { vehicles: plates.clone(), seconds_per_vehicle: 2.5, gap_s: 1.0, seed: 7 });
    let url = sim.add(cam);
    let media = tempfile::tempdir().unwrap();
    let site = format!(
        "[site]\nname = \"S\"\ntimezone = \"UTC\"\n[detect]\nmotion = false\nmedia_dir = \"{}\"\n",
        media.path().display()
    );
    let cams = format!(
        "[[camera]]\nid = \"cp-1\"\nname = \"Checkpoint 1\"\nurl = \"{url}\"\nlon = 113.6\nlat = 34.7\nbearing_deg = 90\n\
         hfov_deg = 40\nresolution = \"1920x1080\"\nowner = \"public\"\nmounting_height_m = 6\nkind = \"checkpoint\"\n\
         ingest_size = \"960x540\"\ningest_fps = 8\n"
    );
    let dir = config_dir(&[("site.toml", &site), ("cams.toml", &cams)]);
    let db = TestDb::new(Engine::Sqlite).await;
    let app = TestApp::spawn_live(dir.path(), &db).await;
    let base = format!("http://{}", app.addr);
    let client = app.client.clone();
    // Watch a blue, a yellow and a green plate (the 6th, 7th and 8th vehicles).
    let watched: Vec<String> = plates[5..8].iter().map(|p| p.0.clone()).collect();
    assert_eq!(
        plates[5..8].iter().map(|p| p.1).collect::<Vec<_>>(),
        [PlateColor::Blue, PlateColor::Yellow, PlateColor::Green]
    );
    for w in &watched {
        let r = client
            .post(format!("{base}/api/v1/watchlists"))
            .json(&json!({"pattern": w, "match_kind": "exact", "reason": "stolen vehicle", "priority": "high"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    }

    // The whole scene lasts VEHICLES × 3.5 s; wait for the passages (bounded by a deadline).
    let deadline = Instant::now() + Duration::from_secs(240);
    let passages: Vec<Value> = loop {
        let v: Value =
            client.get(format!("{base}/api/v1/passages?limit=100")).send().await.unwrap().json().await.unwrap();
        let list = v.get("items").or(Some(&v)).and_then(|x| x.as_array()).cloned().unwrap_or_default();
        if list.len() >= VEHICLES {
            break list;
        }
        if Instant::now() > deadline {
            let stats: Value = client.get(format!("{base}/api/v1/stats")).send().await.unwrap().json().await.unwrap();
            panic!("{} passages after the deadline: {list:?}\nstats {stats}", list.len());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Let a late duplicate show itself: the scene has ended, nothing more should come.
    let stats: Value = client.get(format!("{base}/api/v1/stats")).send().await.unwrap().json().await.unwrap();
    println!("stats {stats:#}");
    let read: Vec<String> = passages.iter().filter_map(|p| p["plate_no"].as_str().map(str::to_string)).collect();
    let truth: Vec<&str> = plates.iter().map(|p| p.0.as_str()).collect();
    let exact = truth.iter().filter(|t| read.iter().any(|r| r == *t)).count();
    println!("truth {truth:?}\nread  {read:?}");
    assert_eq!(passages.len(), VEHICLES, "one passage per vehicle: {read:?}");
    assert!(exact >= VEHICLES - 1, "{exact} of {VEHICLES} exact");
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for r in &read {
        *counts.entry(r.as_str()).or_default() += 1;
    }
    assert!(counts.values().all(|&n| n == 1), "duplicates: {counts:?}");
    for p in &passages {
        assert!(tianwang::plate::check(p["plate_no"].as_str().unwrap()).is_ok(), "{p}");
        for key in ["plate_image", "context_image"] {
            let path = p[key].as_str().unwrap_or_else(|| panic!("{key} missing: {p}"));
            let bytes = std::fs::read(path).unwrap();
            assert_eq!(&bytes[..2], &[0xff, 0xd8], "{path} is a JPEG");
        }
        assert_eq!(p["direction"], "approaching", "{p}");
        assert!(p["frames"].as_i64().unwrap() >= 2, "{p}");
    }
    let colours: HashMap<&str, &str> =
        passages.iter().filter_map(|p| Some((p["plate_no"].as_str()?, p["plate_color"].as_str()?))).collect();
    let right_colour = plates.iter().filter(|(t, c)| colours.get(t.as_str()) == Some(&c.as_str())).count();
    assert!(right_colour >= VEHICLES - 1, "colours: {right_colour} right");

    let ev: Value =
        client.get(format!("{base}/api/v1/events?kind=watchlist_hit")).send().await.unwrap().json().await.unwrap();
    let hits = ev.get("events").or(Some(&ev)).and_then(|x| x.as_array()).cloned().unwrap_or_default();
    let mut hit_plates: Vec<&str> = hits.iter().filter_map(|h| h["payload"]["plate_no"].as_str()).collect();
    hit_plates.sort();
    let mut want: Vec<&str> = watched.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(hit_plates, want, "one hit for each watched plate, blue, yellow and green: {hits:?}");
    let traj: Value = client
        .get(format!("{base}/api/v1/vehicles/{}/trajectory", urlencode(&watched[1])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    println!("trajectory {traj}");
    app.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Motion over RTSP: a street camera watching a moving ball reports motion in the zone the ball
/// crosses and, that zone being armed, an alert; a still test card next to it reports nothing once
/// the card's animated corner (videotestsrc's SMPTE pattern has noise there, as a real scene has a
/// clock or a flag) is masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn motion_events_from_a_street_camera_over_rtsp() {
    let sim = SimServer::start().unwrap();
    let moving = sim.add(SimCamera::new("moving", 320, 180, 10));
    let mut still = SimCamera::new("still", 320, 180, 10);
    still.pattern = "smpte".into();
    let still = sim.add(still);
    let site = "[site]\nname = \"S\"\ntimezone = \"UTC\"\n[detect]\nplates = false\n\
                [[motion_zone]]\ncamera = \"moving\"\nname = \"yard\"\npoints = [[0, 0], [1, 0], [1, 1], [0, 1]]\n\
                [[motion_zone]]\ncamera = \"moving\"\nname = \"sky\"\nkind = \"mask\"\npoints = [[0, 0], [0.05, 0], [0.05, 0.05], [0, 0.05]]\n\
                [[motion_zone]]\ncamera = \"still\"\nname = \"noise\"\nkind = \"mask\"\npoints = [[0.7, 0.7], [1, 0.7], [1, 1], [0.7, 1]]\n\
                [[armed_zone]]\ncamera = \"moving\"\nzone = \"yard\"\n";
    let cam = |id: &str, url: &str| {
        format!(
            "[[camera]]\nid = \"{id}\"\nname = \"{id}\"\nurl = \"{url}\"\nlon = 113.6\nlat = 34.7\nbearing_deg = 0\n\
             hfov_deg = 90\nresolution = \"1920x1080\"\nowner = \"public\"\nmounting_height_m = 5\nkind = \"street\"\n\
             ingest_size = \"320x180\"\n"
        )
    };
    let dir = config_dir(&[("site.toml", site), ("cams.toml", &(cam("moving", &moving) + &cam("still", &still)))]);
    let db = TestDb::new(Engine::Sqlite).await;
    let app = TestApp::spawn_live(dir.path(), &db).await;
    let base = format!("http://{}", app.addr);
    let client = app.client.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (_, alerts) = loop {
        let ev: Value =
            client.get(format!("{base}/api/v1/events?kind=motion")).send().await.unwrap().json().await.unwrap();
        let al: Value =
            client.get(format!("{base}/api/v1/alerts?kind=motion")).send().await.unwrap().json().await.unwrap();
        let al = al.get("items").or(al.get("alerts")).cloned().unwrap_or(al);
        if ev.as_array().is_some_and(|a| !a.is_empty()) && al.as_array().is_some_and(|a| !a.is_empty()) {
            break (ev, al);
        }
        assert!(Instant::now() < deadline, "no motion event and alert: {ev} {al}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // Keep watching until both cameras have been through motion for a while (≥ 100 frames
    // together, 5 s of two 10 fps streams), then look at every motion event again.
    let stats: Value = loop {
        let st: Value = client.get(format!("{base}/api/v1/stats")).send().await.unwrap().json().await.unwrap();
        if st["detectors"][0]["frames"].as_u64().unwrap_or(0) >= 100 {
            break st;
        }
        assert!(Instant::now() < deadline, "motion frames did not reach 100: {st}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let events: Value =
        client.get(format!("{base}/api/v1/events?kind=motion")).send().await.unwrap().json().await.unwrap();
    let motion = &stats["detectors"][0];
    assert_eq!(motion["name"], "motion");
    assert_eq!(motion["cameras"], 2);
    assert!(motion["frames"].as_u64().unwrap() > 10, "{stats}");
    assert!(motion["inferences"].as_u64().unwrap() > 0, "{stats}");
    let events = events.as_array().unwrap();
    assert!(events.iter().all(|e| e["camera_id"] == "moving"), "the still card moved: {events:?}");
    assert_eq!(events[0]["payload"]["zone"], "yard");
    assert!(events[0]["payload"]["boxes"].as_array().is_some_and(|b| !b.is_empty()));
    assert_eq!(alerts[0]["kind"], "motion", "{alerts}");
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tianwang_detector_frames_total{detector=\"motion\"}"), "{metrics}");
    app.stop().await;
}
