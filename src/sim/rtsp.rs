//! The in-process GStreamer RTSP server: one free port, any number of synthetic cameras, each of
//! which can be stopped, hung (socket open, no data), restarted, resized or fed garbage.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("GStreamer: {0}")]
    Gst(String),
    #[error("no simulated camera at {0}")]
    NoSuchCamera(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimCodec {
    H264,
    H265,
}

/// A synthetic camera: a live test pattern, encoded and payloaded for RTSP.
#[derive(Debug, Clone, PartialEq)]
pub struct SimCamera {
    /// Mount path without the leading slash (`cam-01` → `rtsp://127.0.0.1:PORT/cam-01`).
    pub path: String,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub codec: SimCodec,
    /// videotestsrc pattern: `ball` moves, `smpte` is still, `snow` is noise.
    pub pattern: String,
    pub bitrate_kbps: u32,
    /// Frames between keyframes (a new client waits for one before its first picture).
    pub keyframe_interval: u32,
    /// Serve this MP4 file's H.264 track (played once, in real time) instead of a test pattern.
    pub file: Option<std::path::PathBuf>,
    /// A checkpoint scene instead of a test pattern: vehicles carrying these plates drive
    /// towards the camera one after another (`sim::plates::TrafficScene`), then the road stays empty.
    pub traffic: Option<Traffic>,
    /// A live scene instead of a test pattern (`sim::scene`): vehicles pushed onto a checkpoint's
    /// queue, or people walking. Takes precedence over `traffic`.
    pub scene: Option<crate::sim::scene::SimScene>,
}

/// What a simulated checkpoint camera shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    pub vehicles: Vec<(String, crate::plate::PlateColor)>,
    pub seconds_per_vehicle: f32,
    pub gap_s: f32,
    pub seed: u64,
}

impl SimCamera {
    pub fn new(path: &str, width: u32, height: u32, fps: u32) -> Self {
        Self {
            path: path.to_string(),
            width,
            height,
            fps,
            codec: SimCodec::H264,
            pattern: "ball".into(),
            bitrate_kbps: 1024,
            keyframe_interval: fps.max(1) * 2,
            file: None,
            traffic: None,
            scene: None,
        }
    }

    fn launch(&self, garbage: bool) -> String {
        if let Some(file) = &self.file {
            // No encoding: the cheapest way to serve many real-size streams.
            return format!(
                "( filesrc location=\"{}\" ! qtdemux ! h264parse ! valve name=hang drop=false ! rtph264pay name=pay0 pt=96 config-interval=1 )",
                file.display()
            );
        }
        let enc = match self.codec {
            SimCodec::H264 => format!(
                "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={} bitrate={} ! video/x-h264,profile=baseline",
                self.keyframe_interval.max(1),
                self.bitrate_kbps
            ),
            SimCodec::H265 => format!(
                "x265enc tune=zerolatency speed-preset=ultrafast key-int-max={} bitrate={}",
                self.keyframe_interval.max(1),
                self.bitrate_kbps
            ),
        };
        if self.traffic.is_some() || self.scene.is_some() {
            // Frames come from the scene through appsrc (fed in media-configure).
            return format!(
                "( appsrc name=traffic is-live=true format=time do-timestamp=false \
                 caps=video/x-raw,format=RGB,width={w},height={h},framerate={f}/1 ! videoconvert ! video/x-raw,format=I420 ! \
                 {enc} ! h264parse ! valve name=hang drop=false ! rtph264pay name=pay0 pt=96 config-interval=1 )",
                w = self.width,
                h = self.height,
                f = self.fps,
                enc = match self.codec {
                    SimCodec::H264 => enc.clone(),
                    SimCodec::H265 => format!(
                        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={} bitrate={}",
                        self.keyframe_interval.max(1),
                        self.bitrate_kbps
                    ),
                },
            );
        }
        let (parse, pay) = match self.codec {
            SimCodec::H264 => ("h264parse", "rtph264pay"),
            SimCodec::H265 => ("h265parse", "rtph265pay"),
        };
        // breakmydata corrupts the encoded bytes: the payloader still sends packets, the
        // client's decoder gets junk.
        let breaker = if garbage { "breakmydata probability=0.2 skip=64 ! " } else { "" };
        format!(
            "( videotestsrc is-live=true pattern={pat} ! video/x-raw,width={w},height={h},framerate={f}/1 ! {enc} ! {breaker}{parse} ! \
             valve name=hang drop=false ! {pay} name=pay0 pt=96 config-interval=1 )",
            pat = self.pattern,
            w = self.width,
            h = self.height,
            f = self.fps,
        )
    }
}

#[derive(Default)]
struct Mount {
    spec: Option<SimCamera>,
    hung: bool,
    garbage: bool,
    /// Valves of the media currently built for this mount.
    valves: Vec<glib::WeakRef<gst::Element>>,
}

struct Shared {
    mounts: Mutex<HashMap<String, Mount>>,
}

/// The running server. Dropping it stops the server and its main loop.
const SIM_ROLE: &str = "viewer";

pub struct SimServer {
    server: rtsp::RTSPServer,
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
    port: u16,
    shared: Arc<Shared>,
}

fn gst_err(e: impl std::fmt::Display) -> SimError {
    SimError::Gst(e.to_string())
}

impl SimServer {
    /// Starts on a free port of 127.0.0.1.
    pub fn start() -> Result<Self, SimError> {
        Self::start_on(0)
    }

    /// Starts on `port` (0: a free one) of 127.0.0.1.
    pub fn start_on(port: u16) -> Result<Self, SimError> {
        gst::init().map_err(gst_err)?;
        let server = rtsp::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&port.to_string());
        let ctx = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&ctx), false);
        // attach binds the socket: do it here so that a taken port is an error now.
        let source =
            server.attach(Some(&ctx)).map_err(|e| SimError::Gst(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
        let bound = server.bound_port();
        if bound <= 0 {
            return Err(SimError::Gst(format!("cannot listen on 127.0.0.1:{port}")));
        }
        let ml = main_loop.clone();
        let thread = std::thread::Builder::new()
            .name("sim-rtsp".into())
            .spawn(move || {
                ml.run();
                // The source lives on our own context, not the default one.
                if let Some(src) = ml.context().find_source_by_id(&source) {
                    src.destroy();
                }
            })
            .map_err(gst_err)?;
        Ok(Self {
            server,
            main_loop,
            thread: Some(thread),
            port: bound as u16,
            shared: Arc::new(Shared { mounts: Mutex::new(HashMap::new()) }),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{}", self.port, path.trim_start_matches('/'))
    }

    /// Mounts a camera (replacing one at the same path) and returns its URL.
    pub fn add(&self, cam: SimCamera) -> String {
        let path = cam.path.clone();
        {
            let mut mounts = self.shared.mounts.lock().unwrap_or_else(|e| e.into_inner());
            let m = mounts.entry(path.clone()).or_default();
            m.spec = Some(cam);
        }
        self.mount(&path);
        self.url(&path)
    }

    fn mount(&self, path: &str) {
        let (launch, spec_path, source) = {
            let mounts = self.shared.mounts.lock().unwrap_or_else(|e| e.into_inner());
            let Some(m) = mounts.get(path) else { return };
            let Some(spec) = &m.spec else { return };
            let (w, h, fps) = (spec.width, spec.height, spec.fps as f32);
            let source: Option<SourceMaker> = match (&spec.scene, &spec.traffic) {
                (Some(scene), _) => {
                    let scene = scene.clone();
                    Some(Arc::new(move || scene.source(w, h, fps)))
                }
                (None, Some(t)) => {
                    let spec = crate::sim::plates::TrafficSpec {
                        width: w,
                        height: h,
                        fps,
                        vehicles: t.vehicles.clone(),
                        seconds_per_vehicle: t.seconds_per_vehicle,
                        gap_s: t.gap_s,
                        seed: t.seed,
                    };
                    Some(Arc::new(move || {
                        crate::sim::plates::TrafficScene::new(spec.clone())
                            .map(|s| Box::new(s) as Box<dyn crate::sim::scene::FrameSource>)
                    }))
                }
                (None, None) => None,
            };
            (spec.launch(m.garbage), spec.path.clone(), source.map(|s| (s, fps)))
        };
        let factory = rtsp::RTSPMediaFactory::new();
        // Viewers may play every mount; it matters once `require_credentials` set an auth.
        factory.add_role_from_structure(
            &gst::Structure::builder(SIM_ROLE)
                .field(rtsp::RTSP_PERM_MEDIA_FACTORY_ACCESS.as_str(), true)
                .field(rtsp::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT.as_str(), true)
                .build(),
        );
        factory.set_launch(&launch);
        factory.set_shared(true);
        let shared = Arc::downgrade(&self.shared);
        let p = spec_path.clone();
        factory.connect_media_configure(move |_, media| {
            let Some(shared) = shared.upgrade() else { return };
            let Some(bin) = media.element().downcast::<gst::Bin>().ok() else { return };
            if let Some(pad) = bin.by_name("pay0").and_then(|p| p.static_pad("src")) {
                live_only(&pad);
            }
            if let (Some((make, fps)), Some(src)) = (source.clone(), bin.by_name("traffic")) {
                match make() {
                    Ok(scene) => feed_scene(src, scene, fps),
                    Err(e) => tracing::error!(error = %e, "simulated camera: cannot build its scene"),
                }
            }
            let Some(valve) = bin.by_name("hang") else { return };
            let mut mounts = shared.mounts.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(m) = mounts.get_mut(&p) {
                valve.set_property("drop", m.hung);
                m.valves.retain(|v| v.upgrade().is_some());
                m.valves.push(valve.downgrade());
            }
        });
        if let Some(mp) = self.server.mount_points() {
            mp.remove_factory(&format!("/{spec_path}"));
            mp.add_factory(&format!("/{spec_path}"), factory);
        }
    }

    /// From now on every client must sign in as `user` with `password`, by HTTP Digest (what
    /// IP cameras ask for) or, with `digest` false, Basic authentication.
    pub fn require_credentials(&self, user: &str, password: &str, digest: bool) {
        let auth = rtsp::RTSPAuth::new();
        let token = rtsp::RTSPToken::builder().field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE.as_str(), SIM_ROLE).build();
        if digest {
            auth.add_digest(user, password, &token);
            auth.set_supported_methods(rtsp::gst_rtsp::RTSPAuthMethod::Digest);
        } else {
            auth.add_basic(rtsp::RTSPAuth::make_basic(user, password).as_str(), &token);
            auth.set_supported_methods(rtsp::gst_rtsp::RTSPAuthMethod::Basic);
        }
        self.server.set_auth(Some(&auth));
    }

    /// Closes every client connection playing `path`.
    fn kick(&self, path: &str) {
        let want = format!("/{path}");
        self.server.client_filter(Some(&mut |_, client: &rtsp::RTSPClient| {
            let mut hit = false;
            client.session_filter(Some(&mut |_, session: &rtsp::RTSPSession| {
                session.filter(Some(&mut |_, sm: &rtsp::RTSPSessionMedia| {
                    if sm.matches(&want).is_some() {
                        hit = true;
                    }
                    rtsp::RTSPFilterResult::Keep
                }));
                rtsp::RTSPFilterResult::Keep
            }));
            if hit { rtsp::RTSPFilterResult::Remove } else { rtsp::RTSPFilterResult::Keep }
        }));
    }

    fn with_mount<T>(&self, path: &str, f: impl FnOnce(&mut Mount) -> T) -> Result<T, SimError> {
        let mut mounts = self.shared.mounts.lock().unwrap_or_else(|e| e.into_inner());
        let m = mounts.get_mut(path).ok_or_else(|| SimError::NoSuchCamera(path.to_string()))?;
        Ok(f(m))
    }

    /// The camera goes away: clients are disconnected and reconnecting gets 404 until `start`.
    pub fn stop(&self, path: &str) -> Result<(), SimError> {
        self.with_mount(path, |_| ())?;
        if let Some(mp) = self.server.mount_points() {
            mp.remove_factory(&format!("/{path}"));
        }
        self.kick(path);
        Ok(())
    }

    /// The camera comes back after `stop`.
    pub fn start_camera(&self, path: &str) -> Result<(), SimError> {
        self.with_mount(path, |_| ())?;
        self.mount(path);
        Ok(())
    }

    /// The connection stays open but no more data flows (`hang(path, false)` resumes).
    pub fn hang(&self, path: &str, hung: bool) -> Result<(), SimError> {
        self.with_mount(path, |m| {
            m.hung = hung;
            for v in m.valves.iter().filter_map(|v| v.upgrade()) {
                v.set_property("drop", hung);
            }
        })
    }

    /// Drops the camera's clients; they may reconnect at once.
    pub fn restart(&self, path: &str) -> Result<(), SimError> {
        self.with_mount(path, |_| ())?;
        self.kick(path);
        Ok(())
    }

    /// New resolution from the next connection on; current clients are disconnected.
    pub fn set_resolution(&self, path: &str, width: u32, height: u32) -> Result<(), SimError> {
        self.with_mount(path, |m| {
            if let Some(s) = &mut m.spec {
                s.width = width;
                s.height = height;
            }
        })?;
        self.mount(path);
        self.kick(path);
        Ok(())
    }

    /// A different picture (a videotestsrc pattern: `black`, `white`, `snow`, `smpte`, `ball`, …)
    /// from the next connection on; current clients are disconnected (they reconnect at once).
    pub fn set_pattern(&self, path: &str, pattern: &str) -> Result<(), SimError> {
        self.with_mount(path, |m| {
            if let Some(s) = &mut m.spec {
                s.pattern = pattern.to_string();
            }
        })?;
        self.mount(path);
        self.kick(path);
        Ok(())
    }

    /// The picture fault a quality-scene camera (`SimScene::Quality`) shows from its next
    /// frame on (`None` heals it): black, white, frozen, blur, cover, moved, cast, noise. The
    /// stream goes on; clients stay connected.
    pub fn set_fault(&self, path: &str, fault: Option<&str>) -> Result<(), SimError> {
        let f = fault.map(|f| f.parse::<crate::sim::quality::PictureFault>()).transpose().map_err(SimError::Gst)?;
        self.with_mount(path, |m| match m.spec.as_ref().and_then(|s| s.scene.as_ref()) {
            Some(crate::sim::scene::SimScene::Quality { fault, .. }) => {
                fault.set(f);
                Ok(())
            }
            _ => Err(SimError::Gst(format!("{path} does not show a quality scene: no picture faults"))),
        })?
    }

    /// Corrupted video from the next connection on (`false` restores it).
    pub fn garbage(&self, path: &str, on: bool) -> Result<(), SimError> {
        self.with_mount(path, |m| m.garbage = on)?;
        self.mount(path);
        self.kick(path);
        Ok(())
    }

    /// Number of client connections open now.
    pub fn clients(&self) -> usize {
        self.server.client_filter(None).len()
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.server.client_filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A simulated camera is live, like a real one: its stream answers that it cannot seek.
///
/// Without this, every PLAY carrying `Range: npt=0-` (what most clients send) made gst-rtsp-server
/// 1.22 flush the shared pipeline with a seek to the start (videotestsrc and files say they can
/// seek), which drops the stream's segment; a PLAY answered before the next frame brought it back
/// found a sending stream without a rate, and the server's own assertion
/// (`gst_rtsp_media_get_rates`) aborted the process. It also restarted the stream for everyone
/// already watching the mount.
fn live_only(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::QUERY_UPSTREAM, |_, info| {
        let Some(gst::PadProbeData::Query(q)) = info.data.as_mut() else { return gst::PadProbeReturn::Ok };
        match q.view_mut() {
            gst::QueryViewMut::Seeking(s) => {
                s.set(
                    false,
                    gst::GenericFormattedValue::from(gst::ClockTime::ZERO),
                    gst::GenericFormattedValue::from(gst::ClockTime::NONE),
                );
                gst::PadProbeReturn::Handled
            }
            _ => gst::PadProbeReturn::Ok,
        }
    });
}

/// Builds a scene's frame source for each new media (a reconnecting client gets a fresh one).
type SourceMaker = Arc<dyn Fn() -> Result<Box<dyn crate::sim::scene::FrameSource>, String> + Send + Sync>;

/// Feeds a scene into an appsrc in real time: frame `i` is pushed when it is due.
pub(super) fn feed_scene(src: gst::Element, scene: Box<dyn crate::sim::scene::FrameSource>, fps: f32) {
    let Ok(src) = src.downcast::<gstreamer_app::AppSrc>() else { return };
    let state = Mutex::new((scene, 0u64, None::<std::time::Instant>));
    let period = std::time::Duration::from_secs_f64(1.0 / f64::from(fps.max(1.0)));
    src.set_callbacks(
        gstreamer_app::AppSrcCallbacks::builder()
            .need_data(move |src, _| {
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                let (scene, i, start) = &mut *st;
                let t0 = *start.get_or_insert_with(std::time::Instant::now);
                let due = t0 + period * (*i as u32);
                let now = std::time::Instant::now();
                if due > now {
                    // Pacing a live source on its own streaming thread.
                    std::thread::sleep(due - now);
                }
                let frame = scene.frame(*i);
                let mut buf = gst::Buffer::from_mut_slice(frame.data.clone());
                if let Some(b) = buf.get_mut() {
                    b.set_pts(gst::ClockTime::from_nseconds(period.as_nanos() as u64 * *i));
                    b.set_duration(gst::ClockTime::from_nseconds(period.as_nanos() as u64));
                }
                *i += 1;
                let _ = src.push_buffer(buf);
            })
            .build(),
    );
}

/// A TCP server on a free port of 127.0.0.1 that answers every connection with bytes that are not
/// RTSP, then closes it. Returns the port; the server lives as long as the process.
pub fn garbage_server() -> std::io::Result<u16> {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = l.local_addr()?.port();
    std::thread::Builder::new().name("sim-garbage".into()).spawn(move || {
        let mut seed: u32 = 0x1234_5678;
        for conn in l.incoming().flatten() {
            let mut conn = conn;
            let mut buf = [0u8; 512];
            let _ = conn.read(&mut buf);
            let junk: Vec<u8> = (0..4096)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    (seed & 0xff) as u8
                })
                .collect();
            let _ = conn.write_all(&junk);
        }
    })?;
    Ok(port)
}
