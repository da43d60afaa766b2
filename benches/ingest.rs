//! CPU seconds per stream-second of ingest, for each profile on 1 and 8 streams of 1280×720 25 fps
//! H.264, against two baselines on the same streams in the same run: `gst-launch-1.0` running the
//! bare equivalent pipeline, and the ffmpeg command Frigate runs per camera for detection.
//!
//! The streams come from `tianwang sim` in another process serving a pre-encoded clip (no encoding
//! cost in the measured processes). CPU time is utime+stime from /proc, sampled after a warm-up.
//! `TIANWANG_BENCH_SECONDS` (default 15) sets the measured window; `TIANWANG_BENCH_PROFILES`
//! (comma-separated) limits the profiles measured.
//!
//! Then the same clip as GB/T 28181 channels against the same clip over RTSP, street profile, in
//! the same run: `tianwang sim --gb28181-file` is an NVR whose channels send the clip (no
//! encoding) as RTP/PS; our process runs the SIP server, the INVITEs, the RTP receivers and
//! mpegpsdemux in place of rtspsrc. (`TIANWANG_BENCH_PROFILES` without `gb28181` skips it when
//! the list is given.)
//!
//! And `health-read`: the health client's reading alone (retina's raw packets into our keyframe
//! assembly) against retina's own frames (`Demuxed`), same sessions stepped the same way.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tianwang::clock::SystemClock;
use tianwang::config::Profile;
use tianwang::ingest::{Ingest, IngestSpec, IngestState};

fn clk_tck() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().ok();
    out.and_then(|o| String::from_utf8(o.stdout).ok()).and_then(|s| s.trim().parse().ok()).unwrap_or(100.0)
}

/// utime + stime of a process, in seconds.
fn cpu_of(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / clk_tck()
}

/// CPU seconds of every thread of this process, by thread id: (name, seconds).
fn threads() -> std::collections::HashMap<String, (String, f64)> {
    let mut out = std::collections::HashMap::new();
    for e in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let tid = e.file_name().to_string_lossy().to_string();
        let name =
            std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap_or_default().trim().to_string();
        // Thread names end in a number per instance; group them.
        let name = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == ':').to_string();
        out.insert(tid.clone(), (name, cpu_of(&format!("self/task/{tid}"))));
    }
    out
}

struct Kill(Vec<Child>);
impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn clip(dir: &Path) -> PathBuf {
    let p = dir.join("bench-720p25.mp4");
    if !p.exists() {
        eprintln!("encoding the 1280x720 25 fps test clip once ({})", p.display());
        let st = Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1280x720:rate=25",
                "-t",
                "90",
                "-c:v",
                "libx264",
            ])
            .args(["-preset", "veryfast", "-g", "50", "-b:v", "2M", "-pix_fmt", "yuv420p"])
            .arg(&p)
            .status()
            .expect("ffmpeg");
        assert!(st.success());
    }
    p
}

fn start_sim(clip: &Path) -> (Kill, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tianwang"))
        .args(["sim", "--port", "0", "--stream"])
        .arg(format!("clip:file={}", clip.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tianwang sim");
    use std::io::BufRead;
    let out = child.stdout.take().unwrap();
    let mut base = String::new();
    for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
        if let Some(b) = line.strip_prefix("sim: ") {
            base = b.to_string();
            break;
        }
    }
    (Kill(vec![child]), format!("{base}clip"))
}

fn spec(i: usize, url: &str, profile: Profile) -> IngestSpec {
    let mut s = IngestSpec::with_defaults(&format!("b{i}"), url.parse().unwrap(), profile);
    s.backoff_max = Duration::from_secs(5);
    s
}

fn ours(url: &str, profile: Profile, n: usize, secs: u64) -> f64 {
    let ing = Ingest::new(Arc::new(SystemClock), None);
    for i in 0..n {
        ing.start(spec(i, url, profile));
    }
    let t = Instant::now();
    while !ing.all_health().iter().all(|h| h.state == IngestState::Streaming) {
        assert!(t.elapsed() < Duration::from_secs(30), "streams did not start: {:?}", ing.all_health());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let t0 = threads();
    let c0 = cpu_of("self");
    std::thread::sleep(Duration::from_secs(secs));
    let c1 = cpu_of("self");
    if std::env::var_os("TIANWANG_BENCH_THREADS").is_some() {
        // Where the time went, by thread name (GStreamer's streaming threads, decoder threads…).
        let t1 = threads();
        let mut by: std::collections::BTreeMap<String, f64> = Default::default();
        for (tid, (name, c)) in &t1 {
            *by.entry(name.clone()).or_default() += c - t0.get(tid).map_or(0.0, |x| x.1);
        }
        let mut v: Vec<_> = by.into_iter().filter(|x| x.1 > 0.0).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        eprintln!(
            "  {} x{n}: {:?}",
            profile.as_str(),
            v.iter().map(|(k, c)| format!("{k} {:.3}", c / (n as f64 * secs as f64))).collect::<Vec<_>>()
        );
    }
    let frames: u64 = ing.all_health().iter().map(|h| h.frames_delivered).sum();
    if std::env::var_os("TIANWANG_BENCH_THREADS").is_some() {
        let h = &ing.all_health()[0];
        eprintln!("  decoded {} skipped {} delivered {}", h.frames_decoded, h.frames_skipped, h.frames_delivered);
    }
    ing.shutdown();
    assert!(frames > 0);
    (c1 - c0) / (n as f64 * secs as f64)
}

fn gst_tail(profile: Profile) -> &'static str {
    match profile {
        Profile::Street => {
            "avdec_h264 ! videorate drop-only=true ! videoscale ! videoconvert ! video/x-raw,format=I420,width=640,height=360,framerate=5/1"
        }
        Profile::Checkpoint => {
            "avdec_h264 ! videorate drop-only=true ! videoscale ! videoconvert ! video/x-raw,format=RGB,width=1280,height=720,framerate=8/1"
        }
        Profile::Health => {
            "identity drop-buffer-flags=delta-unit ! avdec_h264 ! videoscale ! videoconvert ! video/x-raw,format=RGB,width=640,height=360"
        }
    }
}

fn measure_children(children: Vec<Child>, secs: u64, n: usize) -> f64 {
    let mut kill = Kill(children);
    std::thread::sleep(Duration::from_secs(4));
    let pids: Vec<String> = kill.0.iter().map(|c| c.id().to_string()).collect();
    let c0: f64 = pids.iter().map(|p| cpu_of(p)).sum();
    std::thread::sleep(Duration::from_secs(secs));
    let c1: f64 = pids.iter().map(|p| cpu_of(p)).sum();
    for c in &mut kill.0 {
        assert!(c.try_wait().unwrap().is_none(), "a baseline process exited early: {:?}", c.try_wait());
    }
    drop(kill);
    (c1 - c0) / (n as f64 * secs as f64)
}

fn gst_launch(url: &str, profile: Profile, n: usize, secs: u64) -> f64 {
    let mut desc = String::new();
    for _ in 0..n {
        desc.push_str(&format!(
            " rtspsrc location={url} protocols=tcp latency=200 ! rtph264depay ! h264parse ! {} ! fakesink sync=false",
            gst_tail(profile)
        ));
    }
    let child = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(desc.split_whitespace())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gst-launch-1.0");
    measure_children(vec![child], secs, n)
}

fn ffmpeg(url: &str, n: usize, secs: u64) -> f64 {
    let children = (0..n)
        .map(|i| {
            // Staggered: the simulator's shared media is fragile when clients join at one instant.
            std::thread::sleep(Duration::from_millis(if i == 0 { 0 } else { 200 }));
            Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-timeout", "10000000"])
                .args(["-fflags", "+genpts+discardcorrupt", "-use_wallclock_as_timestamps", "1", "-i", url])
                .args(["-r", "5", "-vf", "fps=5,scale=640:360", "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:"])
                .stdout(Stdio::null())
                .stderr(
                    std::fs::File::create(std::env::temp_dir().join(format!("tianwang-bench-ffmpeg-{i}.err"))).unwrap(),
                )
                .spawn()
                .expect("ffmpeg")
        })
        .collect();
    measure_children(children, secs, n)
}

const GB_SRV: &str = "41010000002000000001";
const GB_NVR: &str = "41010000001180000001";

/// As `ours` (street profile), the clip arriving as `n` GB/T 28181 channels of a simulated NVR.
fn ours_gb28181(clip: &Path, n: usize, secs: u64) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nvr.secret"), "bench-nvr").unwrap();
    std::fs::write(
        dir.path().join("site.toml"),
        format!(
            "[site]\nname = \"bench\"\ntimezone = \"UTC\"\n[gb28181]\nid = \"{GB_SRV}\"\nlisten = \"127.0.0.1:0\"\n\
             [[gb28181_device]]\nid = \"{GB_NVR}\"\npassword_file = \"nvr.secret\"\n"
        ),
    )
    .unwrap();
    let cfg = tianwang::city::load_dir(dir.path()).expect("bench site").gb28181.expect("[gb28181]");
    let db = format!("sqlite://{}", dir.path().join("gb.db").display());
    let stop = tokio_util::sync::CancellationToken::new();
    let server = rt.block_on(async {
        let registry = tianwang::registry::Registry::open(&db).await.expect("registry");
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let start = tianwang::gb28181::GbStart {
            registry,
            clock: Arc::new(SystemClock),
            zone: tianwang::clock::SiteZone::utc(),
            grid_cells: vec![],
            stop: stop.clone(),
            updates: tx,
        };
        Arc::new(tianwang::gb28181::GbServer::start(cfg, start).await.expect("SIP server"))
    });
    let nvr = Command::new(env!("CARGO_BIN_EXE_tianwang"))
        .args(["sim", "--gb28181-platform", &server.local_addr().to_string(), "--gb28181-platform-id", GB_SRV])
        .args(["--gb28181-device", GB_NVR, "--gb28181-password-env", "TIANWANG_BENCH_NVR_PW"])
        .args(["--gb28181-channels", &n.to_string(), "--gb28181-keepalive-s", "5", "--gb28181-file"])
        .arg(clip)
        .env("TIANWANG_BENCH_NVR_PW", "bench-nvr")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tianwang sim --gb28181-platform");
    let _nvr = Kill(vec![nvr]);
    let t = Instant::now();
    while !server.is_online(GB_NVR) {
        assert!(t.elapsed() < Duration::from_secs(30), "the simulated NVR did not register");
        std::thread::sleep(Duration::from_millis(100));
    }
    let media: Arc<dyn tianwang::ingest::gb::GbMedia> =
        Arc::new(tianwang::app::gb_media::Bridge::new(server.clone(), rt.handle().clone()));
    let ing = Ingest::with_gb28181(Arc::new(SystemClock), None, Some(media));
    for i in 0..n {
        let url = format!("gb28181://{GB_NVR}/{}1310{:06}", &GB_NVR[..10], i + 1);
        let mut s = spec(i, &url, Profile::Street);
        s.transport = tianwang::config::Transport::Udp;
        ing.start(s);
    }
    let t = Instant::now();
    while !ing.all_health().iter().all(|h| h.state == IngestState::Streaming) {
        assert!(t.elapsed() < Duration::from_secs(30), "GB channels did not start: {:?}", ing.all_health());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let c0 = cpu_of("self");
    std::thread::sleep(Duration::from_secs(secs));
    let c1 = cpu_of("self");
    let frames: u64 = ing.all_health().iter().map(|h| h.frames_delivered).sum();
    ing.shutdown();
    assert!(frames > 0);
    stop.cancel();
    drop(rt);
    (c1 - c0) / (n as f64 * secs as f64)
}

/// Health reading only (no decoding), `n` sessions stepped every 200 ms on this thread as the
/// pool's runner steps them: retina's raw packets into our keyframe assembly (what the health
/// client does) or, with `frames`, retina's own depacketizer (`Demuxed`, every picture copied out).
fn reading(url: &str, n: usize, secs: u64, frames: bool) -> f64 {
    use futures_util::StreamExt as _;
    use retina::client::{PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions, Transport};
    use tianwang::ingest::rtp::KeyframeAssembler;
    use tianwang::ingest::rtsp::Client;
    enum Reader {
        Raw(Box<Client>, KeyframeAssembler),
        Frames(tokio::runtime::Runtime, std::pin::Pin<Box<retina::client::Demuxed>>),
    }
    let mut readers: Vec<Reader> = (0..n)
        .map(|_| {
            if !frames {
                let c = Client::open(url, None, None, false, Duration::from_secs(10)).expect("session");
                let a = KeyframeAssembler::new(c.track.codec, c.track.payload_type, &c.track.parameter_sets);
                return Reader::Raw(Box::new(c), a);
            }
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let d = rt.block_on(async {
                let mut s = Session::describe(url::Url::parse(url).unwrap(), SessionOptions::default()).await.unwrap();
                let i = s.streams().iter().position(|s| s.media() == "video").unwrap();
                s.setup(i, SetupOptions::default().transport(Transport::Tcp(TcpTransportOptions::default())))
                    .await
                    .unwrap();
                // As the health client plays (RTP-Info's seq and rtptime not trusted).
                let play = PlayOptions::default()
                    .initial_seq(retina::client::InitialSequenceNumberPolicy::Ignore)
                    .initial_timestamp(retina::client::InitialTimestampPolicy::Ignore);
                s.play(play).await.unwrap().demuxed().unwrap()
            });
            Reader::Frames(rt, Box::pin(d))
        })
        .collect();
    let mut step = |r: &mut Reader| -> u64 {
        match r {
            Reader::Raw(c, a) => {
                let mut pkts = 0;
                c.poll(0, |p| {
                    a.push(p, false);
                    pkts += 1;
                })
                .expect("reading");
                pkts
            }
            Reader::Frames(rt, d) => rt.block_on(async {
                let (mut got, mut looked) = (0, false);
                loop {
                    match futures_util::poll!(d.next()) {
                        std::task::Poll::Ready(Some(Ok(_))) => (got, looked) = (got + 1, false),
                        std::task::Poll::Ready(other) => panic!("the session ended: {other:?}"),
                        std::task::Poll::Pending if looked => return got,
                        std::task::Poll::Pending => {
                            tokio::task::yield_now().await;
                            looked = true;
                        }
                    }
                }
            }),
        }
    };
    let run = |readers: &mut Vec<Reader>, step: &mut dyn FnMut(&mut Reader) -> u64, for_s: u64| -> u64 {
        let end = Instant::now() + Duration::from_secs(for_s);
        let mut items = 0;
        while Instant::now() < end {
            for r in readers.iter_mut() {
                items += step(r);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        items
    };
    run(&mut readers, &mut step, 2);
    let c0 = cpu_of("self");
    let items = run(&mut readers, &mut step, secs);
    let c1 = cpu_of("self");
    assert!(items > 0, "nothing read");
    for r in readers {
        if let Reader::Frames(rt, d) = r {
            // retina tears a session down on a task of the session's runtime.
            let _in = rt.enter();
            drop(d);
        }
    }
    (c1 - c0) / (n as f64 * secs as f64)
}

fn main() {
    // `cargo bench` passes --bench; any other argument filters nothing here.
    // `TIANWANG_BENCH_PROFILES=street,health` measures only those (the ratios still print).
    let only_var = std::env::var("TIANWANG_BENCH_PROFILES").unwrap_or_default();
    let only: Vec<&str> = only_var.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let secs: u64 = std::env::var("TIANWANG_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(15);
    tianwang::ingest::init_gstreamer().expect("gstreamer");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    let clip = clip(&dir);
    println!("ingest CPU seconds per stream-second, 1280x720 25 fps H.264 over RTSP/TCP, {secs} s windows");
    println!(
        "{:<11} {:>3} {:>9} {:>11} {:>9} {:>10} {:>12}",
        "profile", "n", "ours", "gst-launch", "ffmpeg", "ours/gst", "ours/ffmpeg"
    );
    let mut street = [0.0; 2];
    let mut health = [0.0; 2];
    for (k, n) in [1usize, 8].into_iter().enumerate() {
        // A fresh server for every measurement: each starts at the clip's beginning, and no
        // run depends on how the previous one left the server.
        let fresh = || start_sim(&clip);
        let ff = {
            let (_sim, url) = fresh();
            ffmpeg(&url, n, secs)
        };
        for profile in [Profile::Street, Profile::Checkpoint, Profile::Health] {
            if !only.is_empty() && !only.contains(&profile.as_str()) {
                continue;
            }
            let o = {
                let (_sim, url) = fresh();
                ours(&url, profile, n, secs)
            };
            let g = {
                let (_sim, url) = fresh();
                gst_launch(&url, profile, n, secs)
            };
            println!(
                "{:<11} {:>3} {:>9.4} {:>11.4} {:>9.4} {:>10.2} {:>12.2}",
                profile.as_str(),
                n,
                o,
                g,
                ff,
                o / g,
                o / ff
            );
            match profile {
                Profile::Street => street[k] = o,
                Profile::Health => health[k] = o,
                Profile::Checkpoint => {}
            }
        }
    }
    for (k, n) in [1, 8].into_iter().enumerate() {
        println!("health/street, {n} stream(s): {:.3}", health[k] / street[k]);
    }
    if only.is_empty() || only.contains(&"health-read") {
        println!(
            "health reading only (no decoding): retina's raw packets into our keyframe assembly vs retina's frames"
        );
        println!("{:>3} {:>9} {:>9} {:>12}", "n", "raw", "frames", "raw/frames");
        for n in [1usize, 8] {
            let raw = {
                let (_sim, url) = start_sim(&clip);
                reading(&url, n, secs, false)
            };
            let fr = {
                let (_sim, url) = start_sim(&clip);
                reading(&url, n, secs, true)
            };
            println!("{n:>3} {raw:>9.4} {fr:>9.4} {:>12.2}", raw / fr);
        }
    }
    if !only.is_empty() && !only.contains(&"gb28181") {
        return;
    }
    println!("street profile, the same clip over RTSP/TCP and as GB/T 28181 channels (RTP/PS over UDP)");
    println!("{:>3} {:>9} {:>9} {:>9}", "n", "rtsp", "gb28181", "gb/rtsp");
    for n in [1usize, 8] {
        let r = {
            let (_sim, url) = start_sim(&clip);
            ours(&url, Profile::Street, n, secs)
        };
        let g = ours_gb28181(&clip, n, secs);
        println!("{n:>3} {r:>9.4} {g:>9.4} {:>9.2}", g / r);
    }
}
