//! Stopping while plates are being read: a simulated checkpoint camera over RTSP shows vehicles
//! with known plates; the server is stopped while a vehicle is in view, and every passage its
//! plate readers finished — the one in view included — is stored before it exits.
//! Two ways: `tianwang serve` as its own process given SIGTERM (what an operator or systemd does),
//! and the app in process stopped the same way, where the readers' own count can be compared
//! with what was stored.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Engine, TestApp, TestDb, authed_client, config_dir};
use rand::SeedableRng;
use serde_json::Value;
use tianwang::registry::{PassageFilter, Registry};
use tianwang::sim::plates::{PlateColor, random_plate};
use tianwang::sim::{SimCamera, SimServer, Traffic};

const BIN: &str = env!("CARGO_BIN_EXE_tianwang");

/// A checkpoint camera showing `n` vehicles, and a configuration reading it.
fn checkpoint(sim: &SimServer, n: usize, media: &std::path::Path) -> tempfile::TempDir {
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let plates: Vec<(String, PlateColor)> =
        (0..n).map(|_| (random_plate(&mut rng, PlateColor::Blue), PlateColor::Blue)).collect();
    let mut cam = SimCamera::new("cp-1", 960, 540, 8);
    cam.keyframe_interval = 16;
    cam.bitrate_kbps = 3000;
    cam.traffic = Some(Traffic { vehicles: plates, seconds_per_vehicle: 2.5, gap_s: 1.0, seed: 7 });
    let url = sim.add(cam);
    let site = format!(
        "[site]\nname = \"S\"\ntimezone = \"UTC\"\n[detect]\nmotion = false\nmedia_dir = \"{}\"\n",
        media.display()
    );
    let cams = format!(
        "[[camera]]\nid = \"cp-1\"\nname = \"Checkpoint 1\"\nurl = \"{url}\"\nlon = 113.6\nlat = 34.7\nbearing_deg = 90\n\
         hfov_deg = 40\nresolution = \"1920x1080\"\nowner = \"public\"\nmounting_height_m = 6\nkind = \"checkpoint\"\n\
         ingest_size = \"960x540\"\ningest_fps = 8\n"
    );
    config_dir(&[("site.toml", &site), ("cams.toml", &cams)])
}

/// Polls the detector's statistics until a vehicle with enough reads is in view after at least
/// one passage was stored; returns the statistics then.
async fn until_a_vehicle_is_in_view(client: &reqwest::Client, base: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let st: Value = client.get(format!("{base}/api/v1/stats")).send().await.unwrap().json().await.unwrap();
        if st["passages"].as_u64().unwrap_or(0) >= 1 && st["vehicles_in_view"].as_u64().unwrap_or(0) >= 1 {
            return st;
        }
        assert!(Instant::now() < deadline, "no vehicle in view after a passage: {st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stored_plates(db: &str) -> Vec<String> {
    let reg = Registry::open(db).await.unwrap();
    let rows = reg.passages(&PassageFilter { limit: 1000, ..Default::default() }).await.unwrap();
    reg.close().await;
    rows.into_iter().filter_map(|p| p.plate_no).collect()
}

async fn sigterm_while_a_vehicle_is_in_view_stores_it_and_every_passage_before(engine: Engine) {
    let sim = SimServer::start().unwrap();
    let media = tempfile::tempdir().unwrap();
    let dir = checkpoint(&sim, 12, media.path());
    let test_db = TestDb::new(engine).await;
    let db = test_db.url.clone();
    let out =
        Command::new(BIN).args(["token", "create", "--role", "admin", "--name", "t", "--db", &db]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let client = authed_client(String::from_utf8_lossy(&out.stdout).trim());
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(dir.path())
        .args(["--db", &db, "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let base = loop {
        let line = rx.recv_timeout(Duration::from_secs(120)).expect("the server starts");
        if let Some(i) = line.find("http://") {
            break format!("http://{}", line[i + 7..].split('/').next().unwrap());
        }
    };
    let st = until_a_vehicle_is_in_view(&client, &base).await;
    let read_before = st["passages_read"].as_u64().unwrap();
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    let plates = stored_plates(&db).await;
    eprintln!(
        "{engine:?}: SIGTERM with {} vehicle(s) in view after {read_before} passage(s): {} stored",
        st["vehicles_in_view"],
        plates.len()
    );
    assert!(plates.len() as u64 > read_before, "the vehicle in view at SIGTERM was stored: {plates:?}");
    let mut unique = plates.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), plates.len(), "no passage twice: {plates:?}");
}

on_both_engines!(sigterm_while_a_vehicle_is_in_view_stores_it_and_every_passage_before);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_while_a_vehicle_is_in_view_stores_every_passage_read() {
    let sim = SimServer::start().unwrap();
    let media = tempfile::tempdir().unwrap();
    let dir = checkpoint(&sim, 12, media.path());
    let db = TestDb::new(Engine::Sqlite).await;
    let app = TestApp::spawn_live(dir.path(), &db).await;
    let detect = app.detect.clone().expect("detection runs");
    let base = format!("http://{}", app.addr);
    let st = until_a_vehicle_is_in_view(&app.client, &base).await;
    let read_before = st["passages_read"].as_u64().unwrap();
    app.stop().await;
    let after = detect.stats();
    let plates = stored_plates(&db.url).await;
    eprintln!(
        "stopped with a vehicle in view: read {} (was {read_before}), stored {}",
        after.passages_read,
        plates.len()
    );
    assert!(after.passages_read > read_before, "the vehicle in view was read out at the stop");
    assert_eq!(after.passages, after.passages_read, "every passage read was stored");
    assert_eq!(plates.len() as u64, after.passages_read);
}
