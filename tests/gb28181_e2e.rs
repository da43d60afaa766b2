//! GB/T 28181 end to end: the simulated NVR (`sim::gb28181`, written from the standard, its own
//! SIP and PS muxer) registers to the app, its eight channels become cameras, and two camera
//! entries read channels by `gb28181://`: a street-profile channel over UDP into motion detection,
//! a checkpoint-profile channel over TCP (the device connects, `a=setup:passive`) into plate
//! reading. The platform's INVITE, the device's RTP/PS, mpegpsdemux and the detectors are all the
//! real ones. When the device's media stops (signalling going on) the street camera goes offline
//! through the same watchdog as an RTSP camera, then streams again on a new INVITE. A third
//! channel sends H.265 (stream type 0x24 in the PS, as GB/T 28181-2022 provides) to a
//! health-profile camera.

mod common;

use std::time::{Duration, Instant};

use common::{Engine, TestApp, TestDb, config_dir, until};
use rand::SeedableRng;
use serde_json::Value;
use tianwang::sim::gb28181::{GbDeviceConfig, GbDeviceSim};
use tianwang::sim::plates::{PlateColor, random_plate};
use tianwang::sim::{SimCamera, SimCodec, Traffic};

const SRV: &str = "41010000002000000001";
const DOMAIN: &str = "4101000000";
const NVR: &str = "41010000001180000001";
const PASSWORD: &str = "sim-nvr-e2e";
/// Channel 1 (street, UDP) and channel 2 (checkpoint, TCP) of the NVR.
const STREET: &str = "41010000001310000001";
const CHECKPOINT: &str = "41010000001310000002";
/// Channel 3: H.265, read by a health-profile camera.
const HEVC: &str = "41010000001310000003";
const VEHICLES: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_nvr_streams_into_motion_and_plate_reading_and_a_stopped_stream_goes_offline() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(28181);
    let plates: Vec<(String, PlateColor)> =
        (0..VEHICLES).map(|_| (random_plate(&mut rng, PlateColor::Blue), PlateColor::Blue)).collect();
    let media = tempfile::tempdir().unwrap();
    let site = format!(
        "[site]\nname = \"gb-e2e\"\ntimezone = \"Asia/Shanghai\"\n\
         [detect]\nmedia_dir = \"{}\"\n\
         [[motion_zone]]\ncamera = \"{STREET}\"\nname = \"square\"\npoints = [[0, 0], [1, 0], [1, 1], [0, 1]]\n\
         [gb28181]\nid = \"{SRV}\"\nlisten = \"127.0.0.1:0\"\nheartbeat_interval_s = 5\n\
         [[gb28181_device]]\nid = \"{NVR}\"\nname = \"Sim NVR\"\npassword_file = \"nvr.secret\"\n",
        media.path().display()
    );
    let cams = format!(
        "[[camera]]\nid = \"{STREET}\"\nname = \"GB street\"\nurl = \"gb28181://{NVR}/{STREET}\"\ntransport = \"udp\"\n\
         lon = 113.6\nlat = 34.7\nbearing_deg = 0\nhfov_deg = 90\nresolution = \"1920x1080\"\nowner = \"public\"\n\
         mounting_height_m = 5\nkind = \"street\"\ningest_size = \"320x180\"\nwatchdog_s = 3\n\
         [[camera]]\nid = \"{CHECKPOINT}\"\nname = \"GB checkpoint\"\nurl = \"gb28181://{NVR}/{CHECKPOINT}\"\n\
         transport = \"tcp\"\nlon = 113.61\nlat = 34.7\nbearing_deg = 90\nhfov_deg = 40\nresolution = \"1920x1080\"\n\
         owner = \"public\"\nmounting_height_m = 6\nkind = \"checkpoint\"\ningest_size = \"960x540\"\ningest_fps = 8\n\
         [[camera]]\nid = \"{HEVC}\"\nname = \"GB H.265\"\nurl = \"gb28181://{NVR}/{HEVC}\"\ntransport = \"udp\"\n\
         lon = 113.62\nlat = 34.7\nbearing_deg = 180\nhfov_deg = 90\nresolution = \"1920x1080\"\nowner = \"public\"\n\
         mounting_height_m = 5\nkind = \"street\"\nprofile = \"health\"\nwatchdog_s = 5\n"
    );
    let dir = config_dir(&[("site.toml", &site), ("cams.toml", &cams), ("nvr.secret", PASSWORD)]);
    let db = TestDb::new(Engine::Sqlite).await;
    let app = TestApp::spawn_live(dir.path(), &db).await;
    let gb = app.gb28181.clone().expect("the GB/T 28181 server runs");
    let reg = app.registry.clone();
    let base = format!("http://{}", app.addr);
    let client = app.client.clone();

    let mut dc = GbDeviceConfig::new(gb.local_addr(), SRV, DOMAIN, NVR, PASSWORD);
    dc.local_ip = Some(std::net::Ipv4Addr::LOCALHOST.into());
    dc.keepalive_interval = Duration::from_secs(2);
    dc.channels = GbDeviceConfig::numbered_channels(NVR, 8, 320, 180, 10);
    assert_eq!((dc.channels[0].id.as_str(), dc.channels[1].id.as_str()), (STREET, CHECKPOINT));
    let mut cp = SimCamera::new(CHECKPOINT, 960, 540, 8);
    cp.keyframe_interval = 16;
    cp.bitrate_kbps = 3000;
    cp.traffic = Some(Traffic { vehicles: plates.clone(), seconds_per_vehicle: 2.5, gap_s: 1.0, seed: 11 });
    dc.channels[1].picture = cp;
    dc.channels[2].picture.codec = SimCodec::H265;
    dc.channels[2].picture.keyframe_interval = 10;
    let sim = GbDeviceSim::start(dc).await.expect("the simulated NVR starts");

    // Registered; all eight channels are cameras (five from the catalog, three configured by
    // hand under the channels' own ids, which the catalog leaves as they are).
    until(15, "the device registered", async || gb.is_online(NVR).then_some(())).await;
    until(20, "the catalog", async || {
        let d = reg.gb_devices().await.unwrap().into_iter().find(|d| d.id == NVR)?;
        d.catalog_note.starts_with("complete").then_some(())
    })
    .await;
    assert_eq!(reg.gb_channels(NVR).await.unwrap().len(), 5);
    for c in &GbDeviceConfig::numbered_channels(NVR, 8, 1, 1, 1) {
        assert!(reg.get_camera(&c.id).await.unwrap().is_some(), "channel {} is a camera", c.id);
    }

    // The channels stream: the street one into motion, the checkpoint one into plate reading,
    // the H.265 one into its health samples.
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, h, _) = app.get("/api/v1/health/cameras").await;
        let cams = h.as_array().cloned().unwrap_or_default();
        let streaming = |id: &str| cams.iter().any(|c| c["camera"] == id && c["state"] == "streaming");
        let h265 =
            cams.iter().any(|c| c["camera"] == HEVC && c["codec"] == "h265" && c["frames_decoded"].as_u64() > Some(0));
        if streaming(STREET) && streaming(CHECKPOINT) && streaming(HEVC) && h265 {
            break;
        }
        assert!(Instant::now() < end, "the GB cameras are not all streaming: {h:#}\n{:?}", sim.stats());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let motion = until(60, "a motion event on the GB street channel", async || {
        let ev: Value =
            client.get(format!("{base}/api/v1/events?kind=motion")).send().await.unwrap().json().await.unwrap();
        ev.as_array()?.iter().find(|e| e["camera_id"] == STREET).cloned()
    })
    .await;
    assert_eq!(motion["payload"]["zone"], "square", "{motion}");
    let passages = until(120, "the vehicles' passages on the GB checkpoint channel", async || {
        let v: Value =
            client.get(format!("{base}/api/v1/passages?limit=100")).send().await.unwrap().json().await.unwrap();
        let list = v.get("items").or(Some(&v)).and_then(|x| x.as_array()).cloned().unwrap_or_default();
        (list.len() >= VEHICLES).then_some(list)
    })
    .await;
    let read: Vec<&str> = passages.iter().filter_map(|p| p["plate_no"].as_str()).collect();
    let exact = plates.iter().filter(|(t, _)| read.contains(&t.as_str())).count();
    assert!(exact >= VEHICLES - 1, "read {read:?} of {plates:?}");
    assert!(passages.iter().all(|p| p["camera_id"] == CHECKPOINT), "{passages:?}");
    let s = sim.stats();
    assert_eq!(s.active_streams, 3, "{s:?}");
    assert_eq!(gb.calls(), 3);

    // The device's media stops, its signalling goes on: offline through the watchdog, as RTSP.
    let invites = s.invites_answered;
    sim.hang_channel(STREET, true);
    let cam = until(20, "the street channel offline", async || {
        reg.get_camera(STREET).await.unwrap().filter(|c| c.status == "offline")
    })
    .await;
    assert!(cam.status_reason.contains("(watchdog)"), "{}", cam.status_reason);
    assert_eq!(reg.get_camera(CHECKPOINT).await.unwrap().unwrap().status, "online", "the other channel is unaffected");
    // Back when the media comes back: the torn-down call was ended (BYE), a new INVITE answered.
    sim.hang_channel(STREET, false);
    until(30, "the street channel online again", async || {
        reg.get_camera(STREET).await.unwrap().filter(|c| c.status == "online")
    })
    .await;
    assert!(sim.stats().invites_answered > invites, "{:?}", sim.stats());
    until(10, "one call per streaming camera", async || (sim.stats().active_streams == 3).then_some(())).await;

    app.stop().await;
    // The app's pipelines ended their calls on the way down.
    until(10, "no stream left", async || (sim.stats().active_streams == 0).then_some(())).await;
    // (No platform is left to unregister from: the device just goes silent.)
    drop(sim);
}
