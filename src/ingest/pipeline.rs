//! The GStreamer graph for one camera:
//! `rtspsrc → depay → parse → decode → [videorate] → [videoscale] → videoconvert → capsfilter → appsink`,
//! with depayloader, parser and decoder chosen from the stream's caps when rtspsrc exposes its pad.
//!
//! Cost decisions (see BENCHMARKS.md): videorate sits right after the decoder, so frames it drops
//! are never scaled or converted; grey profiles (`street`) ask for I420 at the decoded size and
//! keep only its Y plane, resized in Rust (`resize`: no colour conversion, no chroma scaling);
//! rate-limited profiles skip non-reference pictures before the decoder (`nal`). `health` cameras
//! normally do not come here (see `rtsp`); when they do (UDP, TLS), every non-keyframe is dropped
//! before the decoder, which therefore decodes one picture per GOP.
//!
//! `PipelineSource` is this graph as a `FrameSource`: frames leave the appsink callback through a
//! small channel to the supervisor thread, which also reads the bus; RTP packets are counted on
//! rtspsrc's pad and reported as liveness.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

use super::gb::{self, GbMedia};
use super::health::CameraHealth;
use super::nal::{self, NonRefFilter};
use super::resize;
use super::source::{Camera, Event, Failure, FrameSource};
use super::spec::{IngestSpec, PixelFormat};
use super::{Frame, IngestError};
use crate::clock::{Clock, Millis, Stop};
use crate::config::{Profile, Transport};

/// Where the graph's output goes: stream facts to the health record, frames and bus news to the
/// supervisor thread, packet counts to `traffic`.
pub(crate) struct Outputs {
    pub health: Arc<CameraHealth>,
    pub to_supervisor: SyncSender<Msg>,
    pub traffic: Arc<Traffic>,
    pub now_ms: Arc<dyn Fn() -> i64 + Send + Sync>,
}

/// From the streaming threads to the supervisor thread.
pub(crate) enum Msg {
    Frame(Frame),
    /// An error or end-of-stream was posted: read the bus.
    Bus,
}

/// RTP packets (and their bytes) into the depayloader so far.
#[derive(Default)]
pub(crate) struct Traffic {
    packets: AtomicU64,
    bytes: AtomicU64,
}

impl Traffic {
    /// One packet of `bytes` arrived.
    pub(crate) fn add(&self, bytes: usize) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Frames waiting for the supervisor thread; more are dropped (and counted in `frames_dropped`).
const IN_FLIGHT: usize = 4;
/// How long one wait on the frame channel lasts at most (the stop is checked between).
const SLICE_MS: Millis = 100;

/// A camera read by its GStreamer graph.
pub(crate) struct PipelineSource {
    /// A GB/T 28181 channel's receiver (dropped first: it stops pushing and ends the call).
    gb: Option<gb::Receiver>,
    pipeline: gst::Pipeline,
    bus: gst::Bus,
    rx: Receiver<Msg>,
    traffic: Arc<Traffic>,
    /// (packets, bytes) already reported.
    reported: (u64, u64),
    clock: Arc<dyn Clock>,
}

impl PipelineSource {
    /// Builds the graph and sets it playing; for a GB/T 28181 channel, asks the device for the
    /// stream through `media` and starts receiving it.
    pub(crate) fn open(cam: &Camera<'_>, media: Option<&Arc<dyn GbMedia>>) -> Result<Self, Failure> {
        let (tx, rx) = std::sync::mpsc::sync_channel(IN_FLIGHT);
        let traffic = Arc::new(Traffic::default());
        let clock = cam.clock.clone();
        let outputs = Outputs {
            health: cam.health.clone(),
            to_supervisor: tx.clone(),
            traffic: traffic.clone(),
            now_ms: Arc::new(move || clock.now_ms()),
        };
        // A GB/T 28181 channel: its receiving socket is bound before the graph is built.
        let gb_setup = match cam.spec.url.gb28181() {
            None => None,
            Some((device, channel)) => {
                let Some(media) = media else {
                    return Err(Failure::new(
                        "a gb28181:// camera needs the GB/T 28181 server: add a [gb28181] section on the node that runs it",
                    ));
                };
                let transport = media.transport(device, cam.spec.transport == Transport::Tcp);
                let socket = gb::Socket::bind(transport, media.bind_ip(), media.ports())
                    .map_err(|e| Failure::new(format!("cannot bind a GB/T 28181 media port: {e}")))?;
                let offer = gb::MediaOffer {
                    device: device.to_string(),
                    channel: channel.to_string(),
                    transport,
                    port: socket.port(),
                };
                Some((media.clone(), socket, offer))
            }
        };
        let (pipeline, appsrc) = build(cam.spec, cam.password, outputs).map_err(|e| Failure::new(e.to_string()))?;
        let Some(bus) = pipeline.bus() else { return Err(Failure::new("pipeline has no bus")) };
        // Errors and end-of-stream wake the supervisor at once; the message itself stays on the
        // bus (a full channel loses only the wake-up, never the message).
        bus.set_sync_handler(move |_, msg| {
            if matches!(msg.view(), gst::MessageView::Error(_) | gst::MessageView::Eos(_)) {
                let _ = tx.try_send(Msg::Bus);
            }
            gst::BusSyncReply::Pass
        });
        let mut source = Self { gb: None, pipeline, bus, rx, traffic, reported: (0, 0), clock: cam.clock.clone() };
        if let Err(e) = source.pipeline.set_state(gst::State::Playing) {
            return Err(source.bus_failure().unwrap_or_else(|| Failure::new(e.to_string())));
        }
        if let (Some((media, socket, offer)), Some(appsrc)) = (gb_setup, appsrc) {
            let session = media.invite(&offer).map_err(Failure::new)?;
            if !session.encoding.eq_ignore_ascii_case("PS") {
                return Err(Failure::new(format!(
                    "the device answered with {} over RTP; only MPEG-PS (PS/90000) is read",
                    session.encoding
                )));
            }
            let traffic = source.traffic.clone();
            let sink = gb::Sink { appsrc, on_packet: Box::new(move |n| traffic.add(n)) };
            let receiver = gb::Receiver::start(&cam.spec.id, socket, session, sink)
                .map_err(|e| Failure::new(format!("cannot start the GB/T 28181 receiver: {e}")))?;
            source.gb = Some(receiver);
        }
        Ok(source)
    }

    /// The first error or end-of-stream on the bus, if any.
    fn bus_failure(&self) -> Option<Failure> {
        while let Some(msg) = self.bus.pop() {
            match msg.view() {
                gst::MessageView::Error(e) => {
                    // rtspsrc puts the server's answer in the details (`rtsp-status-code`).
                    let status = e
                        .details()
                        .and_then(|d| d.get::<u32>("rtsp-status-code").ok())
                        .and_then(|c| u16::try_from(c).ok());
                    let text = describe_error(e.error().message(), e.debug().as_deref());
                    return Some(Failure { status, text });
                }
                gst::MessageView::Eos(_) => return Some(Failure::new("the server ended the stream (EOS)")),
                gst::MessageView::Warning(w) => {
                    tracing::debug!(pipeline = %self.pipeline.name(), warning = %w.error(), "ingest warning");
                }
                _ => {}
            }
        }
        None
    }

    /// Packets that arrived since the last report.
    fn traffic(&mut self) -> Option<Event> {
        let now = (self.traffic.packets.load(Ordering::Relaxed), self.traffic.bytes.load(Ordering::Relaxed));
        let (count, bytes) = (now.0 - self.reported.0, now.1 - self.reported.1);
        self.reported = now;
        (count > 0 || bytes > 0).then_some(Event::Packets { count, bytes })
    }
}

impl FrameSource for PipelineSource {
    fn next(&mut self, deadline: Millis, stop: &Stop) -> Event {
        loop {
            if let Some(f) = self.bus_failure() {
                return Event::Ended(f);
            }
            if let Ok(Msg::Frame(f)) = self.rx.try_recv() {
                return Event::Frame(f);
            }
            if let Some(ev) = self.traffic() {
                return ev;
            }
            if stop.is_requested() {
                return Event::Stopped;
            }
            let left = deadline - self.clock.now_ms();
            if left <= 0 {
                return Event::Idle;
            }
            // Real time, on purpose: the graph delivers in real time. The deadline itself is the
            // camera clock's, so the supervisor's decisions stay on that clock.
            match self.rx.recv_timeout(std::time::Duration::from_millis(left.min(SLICE_MS) as u64)) {
                Ok(Msg::Frame(f)) => return Event::Frame(f),
                Ok(Msg::Bus) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Event::Ended(Failure::new("the pipeline stopped delivering"));
                }
            }
        }
    }
}

impl Drop for PipelineSource {
    fn drop(&mut self) {
        drop(self.gb.take());
        let _ = self.pipeline.set_state(gst::State::Null);
        self.bus.unset_sync_handler();
    }
}

/// "Could not open resource for reading. (Got error response: 404 (Not Found).)": the message
/// plus the last line of GStreamer's debug text, which names the cause without source paths.
pub(crate) fn describe_error(message: &str, debug: Option<&str>) -> String {
    let detail = debug.and_then(|d| d.lines().map(str::trim).rfind(|l| !l.is_empty())).unwrap_or("");
    let detail = detail.rsplit_once("):").map(|(_, t)| t.trim()).unwrap_or(detail);
    // An error we post ourselves carries only the element's path as detail: nothing to add.
    if detail.is_empty() || message.contains(detail) || detail.starts_with("/GstPipeline:") {
        message.to_string()
    } else {
        format!("{message} ({detail})")
    }
}

fn make(factory: &str, name: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory).name(name).build().map_err(|e| format!("element {factory}: {e}"))
}

/// Builds (but does not start) the pipeline. `password` is the resolved secret, if any. For a
/// GB/T 28181 channel the head is an appsrc (returned, for the receiver to push MPEG-PS into)
/// and mpegpsdemux; for RTSP it is rtspsrc.
pub(crate) fn build(
    spec: &IngestSpec,
    password: Option<&str>,
    out: Outputs,
) -> Result<(gst::Pipeline, Option<gst_app::AppSrc>), IngestError> {
    let err = |message: String| IngestError::Build { camera: spec.id.clone(), message };
    let pipeline = gst::Pipeline::with_name(&format!("cam-{}", spec.id));
    let gb = spec.url.gb28181().is_some();

    let (src, appsrc) =
        if gb { gb_head(&pipeline).map_err(err)? } else { (rtspsrc(spec, password).map_err(err)?, None) };

    // The fixed tail, from the rate limiter to the sink. Grey frames are asked for as I420 and
    // only the Y plane is copied out: videoconvert stays in passthrough (measured: converting
    // I420 → GRAY8 in videoconvert costs more than scaling the chroma planes).
    let gst_format = match spec.format {
        PixelFormat::Gray8 => gst_video::VideoFormat::I420,
        PixelFormat::Rgb24 => gst_video::VideoFormat::Rgb,
    };
    let fps = spec.fps;
    // Grey frames keep the decoded size here: their Y plane is resized in Rust (`resize`), which
    // costs less than videoscale working on all three planes.
    let grey = spec.format == PixelFormat::Gray8;
    let mut caps = gst_video::VideoCapsBuilder::new().format(gst_format);
    if !grey {
        caps = caps.width(spec.width as i32).height(spec.height as i32);
    }
    if spec.profile != Profile::Health && fps > 0 {
        // At most the profile's rate: a camera sending fewer frames is passed as it is (and its
        // measured rate tells), never refused for it.
        caps = caps.framerate_range(gst::Fraction::new(0, 1)..=gst::Fraction::new(fps as i32, 1));
    }
    let caps = caps.build();
    let mut tail: Vec<gst::Element> = Vec::new();
    if spec.profile != Profile::Health && fps > 0 {
        tail.push(
            gst::ElementFactory::make("videorate")
                .name("rate")
                .property("drop-only", true)
                .property("max-rate", fps as i32)
                .build()
                .map_err(|e| err(format!("videorate: {e}")))?,
        );
    }
    if !grey {
        tail.push(make("videoscale", "scale").map_err(err)?);
    }
    // Passthrough when the decoder gives I420 already (8-bit 4:2:0, nearly every camera).
    tail.push(make("videoconvert", "convert").map_err(err)?);
    let sink = gst_app::AppSink::builder().name("sink").caps(&caps).max_buffers(2).drop(true).sync(false).build();
    sink.set_callbacks(callbacks(spec, out.health.clone(), out.to_supervisor, out.now_ms.clone()));
    if !gb {
        pipeline.add(&src).map_err(|e| err(e.to_string()))?;
    }
    pipeline.add_many(&tail).map_err(|e| err(e.to_string()))?;
    pipeline.add(sink.upcast_ref::<gst::Element>()).map_err(|e| err(e.to_string()))?;
    let mut chain: Vec<&gst::Element> = tail.iter().collect();
    chain.push(sink.upcast_ref());
    gst::Element::link_many(chain).map_err(|e| err(e.to_string()))?;
    let head = tail[0].clone();

    let pipeline_weak = pipeline.downgrade();
    let health = out.health.clone();
    let keyframes_only = spec.profile == Profile::Health;
    let target_fps = (spec.fps > 0).then_some(f64::from(spec.fps));
    let traffic = out.traffic;
    src.connect_pad_added(move |src, pad| {
        let Some(pipeline) = pipeline_weak.upgrade() else { return };
        let ctx = PadCtx { head: &head, health: &health, keyframes_only, target_fps, traffic: &traffic };
        if let Err(message) = on_pad(&pipeline, pad, ctx) {
            gst::element_error!(src, gst::StreamError::CodecNotFound, ("{}", message));
        }
    });
    Ok((pipeline, appsrc))
}

/// rtspsrc for an RTSP camera.
fn rtspsrc(spec: &IngestSpec, password: Option<&str>) -> Result<gst::Element, String> {
    let protocols = match spec.transport {
        Transport::Tcp => "tcp",
        Transport::Udp => "udp",
        Transport::Auto => "tcp+udp",
    };
    let src = gst::ElementFactory::make("rtspsrc")
        .name("src")
        .property("location", spec.url.as_str())
        .property("latency", spec.latency_ms)
        // rtspsrc's own timeouts stay generous: our watchdog decides, not its ~27 s RTCP timeout.
        .property("tcp-timeout", 10_000_000u64)
        .property("drop-on-latency", true)
        .build()
        .map_err(|e| format!("rtspsrc: {e}"))?;
    src.set_property_from_str("protocols", protocols);
    if let Some(user) = &spec.username {
        src.set_property("user-id", user.as_str());
    }
    if let Some(pw) = password {
        src.set_property("user-pw", pw);
    }
    Ok(src)
}

/// The head of a GB/T 28181 channel's graph: an appsrc the receiver pushes MPEG-PS into, and
/// mpegpsdemux, whose video pad is linked like rtspsrc's (`on_pad`).
fn gb_head(pipeline: &gst::Pipeline) -> Result<(gst::Element, Option<gst_app::AppSrc>), String> {
    let appsrc = gst_app::AppSrc::builder()
        .name("gbsrc")
        .caps(&gst::Caps::builder("video/mpeg").field("mpegversion", 2i32).field("systemstream", true).build())
        .is_live(true)
        // Bytes, like a file: mpegpsdemux then times the stream by its own SCR and PTS. (Given a
        // time segment from appsrc it pushed buffers that a decoder clipped away whole when the
        // device's clock was far from ours.)
        .format(gst::Format::Bytes)
        .max_bytes(8 << 20)
        .leaky_type(gst_app::AppLeakyType::Upstream)
        .build();
    let demux = make("mpegpsdemux", "src")?;
    pipeline.add_many([appsrc.upcast_ref::<gst::Element>(), &demux]).map_err(|e| e.to_string())?;
    appsrc.link(&demux).map_err(|e| format!("linking appsrc to mpegpsdemux: {e}"))?;
    Ok((demux, Some(appsrc)))
}

/// Links a new RTP pad from rtspsrc to the tail through the depayloader, parser and decoder its
/// caps call for. Audio and metadata pads are left unlinked.
struct PadCtx<'a> {
    head: &'a gst::Element,
    health: &'a Arc<CameraHealth>,
    /// `health` profile: keyframes only.
    keyframes_only: bool,
    target_fps: Option<f64>,
    traffic: &'a Arc<Traffic>,
}

fn on_pad(pipeline: &gst::Pipeline, pad: &gst::Pad, ctx: PadCtx<'_>) -> Result<(), String> {
    let PadCtx { head, health, keyframes_only, target_fps, traffic } = ctx;
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let Some(s) = caps.structure(0) else { return Ok(()) };
    // rtspsrc gives RTP pads; mpegpsdemux (GB/T 28181) gives elementary streams.
    let rtp = s.name() == "application/x-rtp";
    let video = if rtp { s.get::<&str>("media").ok() == Some("video") } else { s.name().starts_with("video/") };
    let taken = head.static_pad("sink").is_some_and(|p| p.is_linked());
    if !video || taken {
        // Audio, metadata, a second video stream: one video stream per camera. A demuxer's pad
        // goes to a fakesink (left unlinked, it could stop the demuxer).
        if !rtp {
            let sink = gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .property("async", false)
                .build()
                .map_err(|e| e.to_string())?;
            pipeline.add(&sink).map_err(|e| e.to_string())?;
            sink.sync_state_with_parent().map_err(|e| e.to_string())?;
            let sinkpad = sink.static_pad("sink").ok_or("fakesink has no sink pad")?;
            pad.link(&sinkpad).map_err(|e| format!("linking an unused stream: {e:?}"))?;
        }
        return Ok(());
    }
    let enc = if rtp {
        s.get::<&str>("encoding-name").unwrap_or("").to_ascii_uppercase()
    } else {
        match s.name().as_str() {
            "video/x-h264" => "H264".to_string(),
            "video/x-h265" => "H265".to_string(),
            other => other.to_string(),
        }
    };
    let (depay, parse, dec, codec, media) = match enc.as_str() {
        "H264" => ("rtph264depay", "h264parse", "avdec_h264", "h264", "video/x-h264"),
        "H265" => ("rtph265depay", "h265parse", "avdec_h265", "h265", "video/x-h265"),
        other => return Err(format!("unsupported video encoding {other:?}; expected H264 or H265")),
    };
    let depay = if rtp { make(depay, "depay")? } else { make("identity", "depay")? };
    let parse = make(parse, "parse")?;
    // Annex-B access units into the decoder, so that the probe below can read NAL headers.
    let au = gst::ElementFactory::make("capsfilter")
        .name("au")
        .property(
            "caps",
            gst::Caps::builder(media).field("stream-format", "byte-stream").field("alignment", "au").build(),
        )
        .build()
        .map_err(|e| e.to_string())?;
    let dec = make(dec, "dec")?;
    pipeline.add_many([&depay, &parse, &au, &dec]).map_err(|e| e.to_string())?;
    gst::Element::link_many([&depay, &parse, &au, &dec, head]).map_err(|e| format!("linking {codec} decoder: {e}"))?;
    for e in [&depay, &parse, &au, &dec] {
        e.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    health.record_stream(Some(codec.to_string()), None);

    // Packets and bytes received: RTP into the depayloader (the supervisor reads them as
    // liveness). GB/T 28181 packets are counted by their receiver.
    if rtp {
        let t = traffic.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                t.add(b.size());
            }
            gst::PadProbeReturn::Ok
        });
    }
    if keyframes_only {
        // Health profile: only keyframes reach the parser (the depayloader flags most delta
        // units) and, checked again after parsing where the flags are reliable, the decoder.
        let depayed = if rtp { depay.static_pad("src") } else { None };
        for p in [depayed, au.static_pad("src")].into_iter().flatten() {
            p.add_probe(gst::PadProbeType::BUFFER, |_, info| match info.buffer() {
                Some(b) if b.flags().contains(gst::BufferFlags::DELTA_UNIT) => gst::PadProbeReturn::Drop,
                _ => gst::PadProbeReturn::Ok,
            });
        }
    } else if let (Some(p), Some(target)) = (au.static_pad("src"), target_fps) {
        // Rate-limited profiles: pictures nothing refers to are skipped while the reference
        // pictures alone still exceed the output rate.
        let filter = std::sync::Mutex::new(NonRefFilter::new(target));
        let h265 = codec == "h265";
        let h = health.clone();
        // The stream's real arrival pace, measured on the monotonic clock on purpose: the filter
        // keeps up with packets arriving in real time, it decides nothing a test's clock drives.
        let start = std::time::Instant::now();
        p.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let Some(b) = info.buffer() else { return gst::PadProbeReturn::Ok };
            let Ok(map) = b.map_readable() else { return gst::PadProbeReturn::Ok };
            let bytes: &[u8] = map.as_slice();
            let droppable = if h265 { nal::h265_droppable(bytes) } else { nal::h264_droppable(bytes) };
            let now = start.elapsed().as_millis() as i64;
            let drop_it = filter.lock().map(|mut f| f.drop_it(droppable, now)).unwrap_or(false);
            if drop_it {
                h.frames_skipped.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Drop
            } else {
                gst::PadProbeReturn::Ok
            }
        });
    }
    // Frames decoded, and the resolution the camera really sends.
    if let Some(p) = dec.static_pad("src") {
        let h = health.clone();
        p.add_probe(gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            match &info.data {
                Some(gst::PadProbeData::Buffer(_)) => {
                    h.frames_decoded.fetch_add(1, Ordering::Relaxed);
                }
                Some(gst::PadProbeData::Event(ev)) => {
                    if let gst::EventView::Caps(c) = ev.view()
                        && let Ok(info) = gst_video::VideoInfo::from_caps(c.caps())
                    {
                        h.record_stream(None, Some((info.width(), info.height())));
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        });
    }
    let sinkpad = depay.static_pad("sink").ok_or("depayloader has no sink pad")?;
    pad.link(&sinkpad).map_err(|e| format!("linking the source to {}: {e:?}", depay.name()))?;
    Ok(())
}

fn callbacks(
    spec: &IngestSpec,
    health: Arc<CameraHealth>,
    to_supervisor: SyncSender<Msg>,
    now_ms: Arc<dyn Fn() -> i64 + Send + Sync>,
) -> gst_app::AppSinkCallbacks {
    let camera: Arc<str> = spec.id.as_str().into();
    let format = spec.format;
    let size = (spec.width as usize, spec.height as usize);
    gst_app::AppSinkCallbacks::builder()
        .new_sample(move |sink| {
            let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
            let frame = match to_frame(&camera, format, size, &sample, now_ms()) {
                Ok(f) => f,
                Err(message) => {
                    gst::element_error!(sink, gst::StreamError::Decode, ("{}", message));
                    return Err(gst::FlowError::Error);
                }
            };
            match to_supervisor.try_send(Msg::Frame(frame)) {
                Ok(()) => Ok(gst::FlowSuccess::Ok),
                Err(TrySendError::Full(_)) => {
                    health.frames_dropped.fetch_add(1, Ordering::Relaxed);
                    Ok(gst::FlowSuccess::Ok)
                }
                // The source is being torn down.
                Err(TrySendError::Disconnected(_)) => Err(gst::FlowError::Flushing),
            }
        })
        .build()
}

/// Copies the picture out of the sample, tightly packed: for grey, the Y plane of I420 resized to
/// `size`; for colour, RGB rows (GStreamer scaled them already).
pub(crate) fn to_frame(
    camera: &Arc<str>,
    format: PixelFormat,
    size: (usize, usize),
    sample: &gst::Sample,
    now: i64,
) -> Result<Frame, String> {
    let buffer = sample.buffer_owned().ok_or("sample without buffer")?;
    let caps = sample.caps().ok_or("sample without caps")?;
    let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| format!("caps: {e}"))?;
    let pts_ns = buffer.pts().map(|t| t.nseconds());
    let vf = gst_video::VideoFrame::from_buffer_readable(buffer, &info).map_err(|_| "cannot map the frame")?;
    let (w, h) = (info.width() as usize, info.height() as usize);
    let stride = vf.plane_stride()[0] as usize;
    let plane = vf.plane_data(0).map_err(|e| format!("plane: {e}"))?;
    let (w, h, data) = match format {
        PixelFormat::Gray8 => {
            let src = resize::Plane { data: plane, width: w, height: h, stride };
            let data = resize::resize(src, size.0, size.1).ok_or_else(|| format!("short {w}x{h} plane"))?;
            (size.0, size.1, data)
        }
        PixelFormat::Rgb24 => {
            let row = w * format.bytes_per_pixel();
            let mut data = Vec::with_capacity(row * h);
            for y in 0..h {
                let start = y * stride;
                data.extend_from_slice(plane.get(start..start + row).ok_or("short plane")?);
            }
            (w, h, data)
        }
    };
    Ok(Frame { camera: camera.clone(), captured_ms: now, pts_ns, width: w as u32, height: h as u32, format, data })
}
