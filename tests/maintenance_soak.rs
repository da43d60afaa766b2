//! No false quality faults: ten healthy simulated cameras (quality scenes: textured streets with
//! sensor noise and a walking figure) and a real recording — OpenCV's `vtest.avi` (Debian
//! `opencv-doc`: people walking in a hall, real sensor noise and compression), looped to more than
//! ten minutes and served over RTSP — are sampled at the default interval (10 s) for ten minutes of
//! stream time. No quality fault may be raised and no camera may leave `online`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Engine, TestApp, TestDb, config_dir};
use serde_json::Value;
use tianwang::sim::{SimCamera, SimServer};

const VTEST: &str = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";
/// Ten minutes of stream time at one sample every 10 s.
const SAMPLES: u64 = 60;

/// vtest.avi (79.5 s, 768×576, 10 fps, MS-MPEG4) looped to 11 minutes as H.264 in MP4, which the
/// simulator serves without re-encoding.
fn looped_vtest(dir: &Path) -> std::path::PathBuf {
    assert!(Path::new(VTEST).exists(), "{VTEST} is missing: install Debian's opencv-doc (bash scripts/setup.sh does)");
    let out = dir.join("vtest-11min.mp4");
    let st = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-stream_loop", "8", "-i", VTEST])
        .args(["-an", "-c:v", "libx264", "-preset", "veryfast", "-tune", "film", "-crf", "23", "-g", "20"])
        .args(["-pix_fmt", "yuv420p", "-movflags", "+faststart"])
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(st.success(), "ffmpeg could not transcode {VTEST}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_cameras_and_a_real_recording_raise_no_fault_in_ten_minutes() {
    let tmp = tempfile::tempdir().unwrap();
    let video = looped_vtest(tmp.path());
    let sim = SimServer::start().unwrap();
    let mut cams = String::new();
    let mut ids = Vec::new();
    let cam = |id: &str, url: &str, size: &str| {
        format!(
            "[[camera]]\nid = \"{id}\"\nname = \"{id}\"\nurl = \"{url}\"\nlon = 113.6\nlat = 34.7\nbearing_deg = 0\n\
             hfov_deg = 90\nresolution = \"1920x1080\"\nowner = \"public\"\nmounting_height_m = 5\nkind = \"street\"\n\
             ingest_size = \"{size}\"\nprofile = \"checkpoint\"\ningest_fps = 5\n"
        )
    };
    for i in 0..10u64 {
        let id = format!("scene-{i}");
        let mut c = SimCamera::new(&id, 320, 180, 5);
        c.scene = Some(tianwang::sim::scene::SimScene::quality(100 + i));
        c.bitrate_kbps = 400;
        let url = sim.add(c);
        cams += &cam(&id, &url, "320x180");
        ids.push(id);
    }
    let mut v = SimCamera::new("vtest", 768, 576, 10);
    v.file = Some(video);
    let url = sim.add(v);
    cams += &cam("vtest", &url, "384x288");
    ids.push("vtest".into());
    let site = "[site]\nname = \"Soak\"\ntimezone = \"UTC\"\n[maintenance]\n";
    let dir = config_dir(&[("site.toml", site), ("cams.toml", &cams)]);
    let db = TestDb::new(Engine::Sqlite).await;
    let app = TestApp::spawn_live(dir.path(), &db).await;
    let base = format!("http://{}", app.addr);

    // Wait (polling the endpoint under test) until every camera has had ten minutes of samples.
    let end = Instant::now() + Duration::from_secs(14 * 60);
    let quality = loop {
        let q: Value =
            app.client.get(format!("{base}/api/v1/maintenance/quality")).send().await.unwrap().json().await.unwrap();
        let rows = q.as_array().cloned().unwrap_or_default();
        let done = ids.iter().all(|id| {
            rows.iter().any(|r| r["camera_id"] == id.as_str() && r["samples"].as_u64().unwrap_or(0) >= SAMPLES)
        });
        if done {
            break rows;
        }
        assert!(Instant::now() < end, "not every camera reached {SAMPLES} samples: {rows:?}");
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let ev: Value =
        app.client.get(format!("{base}/api/v1/events?kind=quality_fault")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ev.as_array().map(Vec::len), Some(0), "false quality faults: {ev}");
    for r in &quality {
        assert_eq!(r["faults"].as_array().map(Vec::len), Some(0), "{r}");
    }
    for id in &ids {
        let h = app.registry.status_history(id, 50).await.unwrap();
        let statuses: Vec<&str> = h.iter().rev().map(|c| c.to_status.as_str()).collect();
        assert_eq!(statuses, ["unknown", "online"], "{id} left online: {h:?}");
    }
    let vt = quality.iter().find(|r| r["camera_id"] == "vtest").unwrap();
    assert!(vt["last"]["noise_sigma"].as_f64().unwrap() > 0.0, "{vt}");
    app.stop().await;
}
