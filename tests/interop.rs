//! Ingest from RTSP servers this project did not write: VLC serving over UDP, and ffprobe
//! (ffmpeg's RTSP client) reading our simulator.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::ingest::{Events, SimProcess, spec};
use tianwang::clock::SystemClock;
use tianwang::config::{Profile, Transport};
use tianwang::ingest::{Ingest, PixelFormat};

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// A child started in a process group of its own; dropping it kills the whole group (`runuser`
/// forks VLC and waits: killing `runuser` alone left VLC serving after the suite).
struct Kill(Child);
impl Kill {
    fn spawn(mut cmd: Command) -> std::io::Result<Self> {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        cmd.spawn().map(Kill)
    }
    /// Whether any process of the group is still there.
    fn group_alive(pgid: u32) -> bool {
        Command::new("kill")
            .args(["-0", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.0.id())]).stderr(Stdio::null()).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingests_a_vlc_rtsp_server_over_udp() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    let st = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=10",
            "-t",
            "20",
            "-c:v",
            "libx264",
            "-g",
            "10",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&clip)
        .status()
        .expect("ffmpeg (scripts/setup.sh installs it)");
    assert!(st.success());
    // VLC refuses to run as root: serve as nobody, which must be able to read the clip.
    Command::new("chmod").args(["-R", "a+rX"]).arg(dir.path()).status().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let sout = format!("#rtp{{sdp=rtsp://127.0.0.1:{port}/clip}}");
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--", "cvlc"]);
        c
    } else {
        Command::new("cvlc")
    };
    cmd.args(["-q", "--intf", "dummy", "--loop"]).arg(&clip).args(["--sout", &sout, "--sout-keep"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let vlc = Kill::spawn(cmd).expect("cvlc (scripts/setup.sh installs vlc-bin)");
    let vlc_group = vlc.0.id();

    tianwang::ingest::init_gstreamer().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let ing = Arc::new(Ingest::new(Arc::new(SystemClock), Some(tx)));
    let mut ev = Events::new(rx);
    let mut s = spec("vlc", &format!("rtsp://127.0.0.1:{port}/clip"), Profile::Checkpoint, 160, 120, 5);
    s.transport = Transport::Udp;
    s.watchdog = Duration::from_secs(5);
    ing.start(s);
    // Health cameras: VLC serves UDP only. With `auto` the health client is refused TCP (461) and
    // hands the camera to rtspsrc, which plays it over UDP; with `tcp` the error says why.
    let url = format!("rtsp://127.0.0.1:{port}/clip");
    for (id, transport) in [("vlc-health", Transport::Auto), ("vlc-tcp", Transport::Tcp)] {
        let mut h = spec(id, &url, Profile::Health, 160, 120, 0);
        h.transport = transport;
        h.watchdog = Duration::from_secs(5);
        ing.start(h);
    }
    // VLC needs a moment to open its RTSP port; the supervisor retries until it answers.
    ev.wait("vlc", "online", Duration::from_secs(40)).await;
    ev.wait("vlc-health", "online", Duration::from_secs(40)).await;
    // Refused by the keyframe client, the camera left the shared threads for one of its own.
    assert_eq!(ing.pool_threads().own, 1, "{:?}", ing.pool_threads());
    let q = ing.subscribe("vlc-health").unwrap();
    let f = q.pop_timeout(Duration::from_secs(6)).expect("a keyframe from VLC over UDP");
    assert_eq!((f.width, f.height, f.format), (160, 120, PixelFormat::Rgb24));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let e = ing.health("vlc-tcp").unwrap().last_error.unwrap_or_default();
        if e.contains("does not stream over TCP") {
            assert!(e.contains("461") && e.contains("transport = \"auto\""), "{e}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "vlc-tcp: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let q = ing.subscribe("vlc").unwrap();
    let f = q.pop_timeout(Duration::from_secs(5)).expect("a frame from VLC");
    assert_eq!((f.width, f.height, f.format), (160, 120, PixelFormat::Rgb24));
    let h = ing.health("vlc").unwrap();
    assert_eq!(h.codec.as_deref(), Some("h264"));
    assert_eq!(h.resolution_seen.as_deref(), Some("320x240"));
    let ing2 = ing.clone();
    tokio::task::spawn_blocking(move || ing2.shutdown()).await.unwrap();
    // Nothing of VLC outlives the test.
    drop(vlc);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while Kill::group_alive(vlc_group) {
        // A killed process stays until its parent (init, for VLC under runuser) reaps it.
        assert!(std::time::Instant::now() < deadline, "VLC still runs after the test");
        std::thread::yield_now();
    }
}

#[test]
fn ffmpeg_reads_the_simulator() {
    let sim = SimProcess::start(&["a:320x240@10:kf=10", "b:320x240@10:h265:kf=10"]);
    for (path, codec) in [("a", "h264"), ("b", "hevc")] {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-rtsp_transport",
                "tcp",
                "-show_entries",
                "stream=codec_name,width,height",
                "-of",
                "csv=p=0",
            ])
            .arg(sim.url(path))
            .output()
            .expect("ffprobe");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{codec},320,240"), "{path}");
    }
}
