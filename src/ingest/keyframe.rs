//! The `health` profile's source: our RTSP client (`rtsp`, TCP interleaved) read a few times a
//! second, packet headers looked at for liveness (`rtp`), and one keyframe per `sample_every`
//! decoded on its own: `appsrc → parse → decoder → [scale] → convert → appsink`, built for the
//! keyframe and torn down after it. The decoder is drained by end-of-stream, so a lone keyframe
//! comes out even from streams with B-frames (whose decoders otherwise hold pictures back for
//! reordering). See BENCHMARKS.md for what this saves over rtspsrc.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::Frame;
use super::health::CameraHealth;
use super::rtp::KeyframeAssembler;
use super::rtsp::{self, VideoCodec};
use super::source::{Camera, Event, Failure, FrameSource, OpenError, Refusal};
use super::spec::PixelFormat;
use crate::clock::{Clock, Millis, Stop, millis};

/// How often the socket is read. A few reads a second, each taking whatever arrived: most of the
/// saving over rtspsrc is here.
const POLL_MS: Millis = 200;

/// A `health` camera read by our RTSP client.
pub(crate) struct KeyframeSource {
    /// `None` only while being dropped.
    client: Option<rtsp::Client>,
    clock: Arc<dyn Clock>,
    health: Arc<CameraHealth>,
    camera: Arc<str>,
    codec: VideoCodec,
    asm: KeyframeAssembler,
    format: PixelFormat,
    size: (usize, usize),
    every: Millis,
    /// No keyframe at all for this long while packets flow: nothing here can be decoded.
    key_timeout: Millis,
    next_poll: Millis,
    next_decode: Millis,
    last_key: Millis,
    seen_packets: bool,
    decode_failures: u32,
    /// What one read yielded, handed out one `next` at a time.
    pending: VecDeque<Event>,
}

impl KeyframeSource {
    /// Connects, describes, sets up and plays (every step within the watchdog time).
    pub(crate) fn open(cam: &Camera<'_>) -> Result<Self, OpenError> {
        let spec = cam.spec;
        let client = rtsp::Client::open(
            spec.url.as_str(),
            spec.username.as_deref(),
            cam.password,
            spec.allow_basic_auth,
            spec.watchdog,
        )
        .map_err(|e| match Refusal::of(&e) {
            Some(r) => OpenError::Refused(r),
            None => OpenError::Failed(e.into()),
        })?;
        let track = client.track.clone();
        cam.health.record_stream(Some(track.codec.as_str().to_string()), None);
        let now = cam.clock.now_ms();
        Ok(Self {
            client: Some(client),
            clock: cam.clock.clone(),
            health: cam.health.clone(),
            camera: spec.id.as_str().into(),
            codec: track.codec,
            asm: KeyframeAssembler::new(track.codec, track.payload_type, &track.parameter_sets),
            format: spec.format,
            size: (spec.width as usize, spec.height as usize),
            every: millis(spec.sample_every),
            key_timeout: millis(spec.watchdog).saturating_mul(3).max(30_000),
            next_poll: now + POLL_MS,
            next_decode: now,
            last_key: now,
            seen_packets: false,
            decode_failures: 0,
            pending: VecDeque::new(),
        })
    }

    /// Reads what arrived and queues what it means.
    fn read(&mut self, now: Millis) {
        let Some(client) = self.client.as_mut() else { return };
        let want = now >= self.next_decode;
        let (mut packets, mut keyframe, mut saw_key, mut oversized) = (0u64, None, false, false);
        let asm = &mut self.asm;
        let polled = client.poll(now, |pkt| {
            let (info, au) = asm.push(pkt, want);
            if info.video {
                packets += 1;
            }
            saw_key |= info.keyframe_started;
            oversized |= info.oversized;
            if keyframe.is_none() {
                keyframe = au;
            }
        });
        let bytes = match polled {
            Ok(b) => b as u64,
            Err(e) => return self.pending.push_back(Event::Ended(e.into())),
        };
        if packets > 0 || bytes > 0 {
            self.pending.push_back(Event::Packets { count: packets, bytes });
        }
        if oversized {
            // What it holds was dropped at the bound; a camera that sends this is not a video
            // stream to keep reading (the supervisor reconnects with its back-off).
            let text = format!(
                "the camera sent one picture of more than {} MiB (fragments without end): not a stream that decodes",
                super::rtp::MAX_ACCESS_UNIT >> 20
            );
            return self.pending.push_back(Event::Ended(Failure::new(text)));
        }
        self.seen_packets |= packets > 0;
        if saw_key {
            self.last_key = now;
        }
        if let Some(au) = keyframe {
            match decode(&self.camera, self.codec, &au, self.format, self.size, now) {
                Ok((frame, native)) => {
                    self.decode_failures = 0;
                    self.next_decode = now.saturating_add(self.every);
                    self.health.frames_decoded.fetch_add(1, Ordering::Relaxed);
                    if native.0 > 0 {
                        self.health.record_stream(None, Some(native));
                    }
                    self.pending.push_back(Event::Frame(frame));
                }
                Err(e) => {
                    self.decode_failures += 1;
                    self.health.record_error(&e);
                    if self.decode_failures >= 3 {
                        return self.pending.push_back(Event::Ended(Failure::new(e)));
                    }
                }
            }
        }
        if self.seen_packets && now - self.last_key > self.key_timeout {
            let text = format!("packets arrive but no keyframe for {} s", self.key_timeout / 1000);
            self.pending.push_back(Event::Ended(Failure::new(text)));
        }
    }
}

impl FrameSource for KeyframeSource {
    fn next(&mut self, deadline: Millis, stop: &Stop) -> Event {
        loop {
            if let Some(ev) = self.try_next(self.clock.now_ms()) {
                return ev;
            }
            if self.clock.wait_until(self.next_poll.min(deadline), stop) {
                return Event::Stopped;
            }
            let now = self.clock.now_ms();
            if now < self.next_poll && now >= deadline {
                return Event::Idle;
            }
        }
    }

    fn try_next(&mut self, now: Millis) -> Option<Event> {
        if let Some(ev) = self.pending.pop_front() {
            return Some(ev);
        }
        if now < self.next_poll {
            return None;
        }
        self.next_poll = now + POLL_MS;
        self.read(now);
        self.pending.pop_front()
    }

    fn wake_at(&self) -> Option<Millis> {
        Some(if self.pending.is_empty() { self.next_poll } else { Millis::MIN })
    }
}

impl Drop for KeyframeSource {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            c.teardown();
        }
    }
}

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory).build().map_err(|e| format!("element {factory}: {e}"))
}

/// Decodes `au` (Annex-B, parameter sets first) to a frame of `size` and `format`; also returns
/// the picture's own size.
pub(crate) fn decode(
    camera: &Arc<str>,
    codec: VideoCodec,
    au: &[u8],
    format: PixelFormat,
    size: (usize, usize),
    now_ms: i64,
) -> Result<(Frame, (u32, u32)), String> {
    let (media, parse, dec) = match codec {
        VideoCodec::H264 => ("video/x-h264", "h264parse", "avdec_h264"),
        VideoCodec::H265 => ("video/x-h265", "h265parse", "avdec_h265"),
    };
    let pipeline = gst::Pipeline::new();
    let caps = gst::Caps::builder(media).field("stream-format", "byte-stream").field("alignment", "au").build();
    let src = gst_app::AppSrc::builder().caps(&caps).format(gst::Format::Time).build();
    let parse = make(parse)?;
    let dec = gst::ElementFactory::make(dec)
        .property("max-threads", 1i32)
        .build()
        .map_err(|e| format!("element {dec}: {e}"))?;
    let grey = format == PixelFormat::Gray8;
    let mut out_caps = gst_video::VideoCapsBuilder::new().format(if grey {
        gst_video::VideoFormat::I420
    } else {
        gst_video::VideoFormat::Rgb
    });
    if !grey {
        out_caps = out_caps.width(size.0 as i32).height(size.1 as i32);
    }
    let sink = gst_app::AppSink::builder().caps(&out_caps.build()).sync(false).build();
    let mut chain: Vec<gst::Element> = vec![src.clone().upcast(), parse.clone(), dec];
    if !grey {
        chain.push(make("videoscale")?);
    }
    chain.push(make("videoconvert")?);
    chain.push(sink.clone().upcast());
    pipeline.add_many(&chain).map_err(|e| e.to_string())?;
    gst::Element::link_many(&chain).map_err(|e| e.to_string())?;
    let result = (|| {
        pipeline.set_state(gst::State::Playing).map_err(|e| format!("decoder pipeline: {e}"))?;
        let mut buffer = gst::Buffer::from_slice(au.to_vec());
        buffer.get_mut().ok_or("buffer")?.set_pts(gst::ClockTime::ZERO);
        src.push_buffer(buffer).map_err(|e| format!("pushing the keyframe: {e:?}"))?;
        let _ = src.end_of_stream();
        let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(5));
        let Some(sample) = sample else {
            let bus_error = pipeline.bus().and_then(|b| {
                b.iter().find_map(|m| match m.view() {
                    gst::MessageView::Error(e) => Some(e.error().to_string()),
                    _ => None,
                })
            });
            return Err(match bus_error {
                Some(e) => format!("the keyframe did not decode: {e}"),
                None => "the keyframe did not decode (no picture came out)".to_string(),
            });
        };
        let native = parse
            .static_pad("src")
            .and_then(|p| p.current_caps())
            .and_then(|c| {
                let s = c.structure(0)?;
                Some((s.get::<i32>("width").ok()? as u32, s.get::<i32>("height").ok()? as u32))
            })
            .unwrap_or((0, 0));
        let frame = super::pipeline::to_frame(camera, format, size, &sample, now_ms)?;
        Ok((frame, native))
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use super::*;
    use crate::clock::SimClock;
    use crate::config::Profile;
    use crate::ingest::rtsp::RtspError;
    use crate::ingest::spec::IngestSpec;

    const SDP: &str = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\n";

    /// A loopback server answering each request with the next status line (DESCRIBE's 200 with
    /// an SDP body); returns the URL and, when joined, the methods it was sent.
    fn server(answers: Vec<&'static str>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("rtsp://127.0.0.1:{}/cam", listener.local_addr().unwrap().port());
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut methods = Vec::new();
            for status in answers {
                let mut head = Vec::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap() == 0 {
                        return methods;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    head.push(line);
                }
                let method = head[0].split(' ').next().unwrap().to_string();
                let cseq = head.iter().find_map(|l| l.strip_prefix("CSeq: ")).unwrap().trim().to_string();
                let body = if method == "DESCRIBE" && status.starts_with("200") { SDP } else { "" };
                let reply =
                    format!("RTSP/1.0 {status}\r\nCSeq: {cseq}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                s.write_all(reply.as_bytes()).unwrap();
                methods.push(method);
            }
            methods
        });
        (url, t)
    }

    /// A server that answers DESCRIBE, SETUP and PLAY, then sends fragments of one H.264 picture
    /// (one RTP timestamp, no end) for as long as the client reads.
    fn endless_fragments() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("rtsp://127.0.0.1:{}/cam", listener.local_addr().unwrap().port());
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            for _ in 0..3 {
                let mut head = Vec::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    head.push(line);
                }
                let method = head[0].split(' ').next().unwrap().to_string();
                let cseq = head.iter().find_map(|l| l.strip_prefix("CSeq: ")).unwrap().trim().to_string();
                let (extra, body) = match method.as_str() {
                    "DESCRIBE" => ("", SDP),
                    "SETUP" => ("Session: 1;timeout=60\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n", ""),
                    _ => ("Session: 1\r\n", ""),
                };
                let reply =
                    format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len());
                s.write_all(reply.as_bytes()).unwrap();
            }
            let packet = |seq: u16, fu: u8| {
                let mut p = vec![0x80, 96];
                p.extend_from_slice(&seq.to_be_bytes());
                p.extend_from_slice(&7u32.to_be_bytes());
                p.extend_from_slice(&[0, 0, 0, 1, 0x7c, fu]);
                p.extend_from_slice(&[0x42; 8192]);
                let mut framed = vec![b'$', 0];
                framed.extend_from_slice(&(p.len() as u16).to_be_bytes());
                framed.extend_from_slice(&p);
                framed
            };
            let mut seq = 0u16;
            while s.write_all(&packet(seq, if seq == 0 { 0x85 } else { 0x05 })).is_ok() {
                seq = seq.wrapping_add(1);
            }
        });
        url
    }

    /// A camera that sends one picture without end fails with a reason, holding at most the bound.
    #[test]
    fn endless_fragments_fail_the_camera_with_a_reason_at_a_bounded_size() {
        let url = endless_fragments();
        // The real clock: the source reads the socket at its own pace, as in production.
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
        let mut src = open_with(&url, clock.clone()).expect("the server answers");
        let (stop, started) = (Stop::new(), std::time::Instant::now());
        let mut most = 0;
        let failure = loop {
            match src.next(clock.now_ms() + 1_000, &stop) {
                Event::Ended(f) => break f,
                _ => most = most.max(src.asm.held()),
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(60), "no failure within 60 s");
        };
        assert!(failure.text.contains("more than 8 MiB"), "{}", failure.text);
        assert!(most <= crate::ingest::rtp::MAX_ACCESS_UNIT, "{most} bytes held");
    }

    fn open(url: &str) -> Result<KeyframeSource, OpenError> {
        open_with(url, Arc::new(SimClock::at(0)))
    }

    fn open_with(url: &str, clock: Arc<dyn Clock>) -> Result<KeyframeSource, OpenError> {
        let spec = IngestSpec::with_defaults("k", url.parse().unwrap(), Profile::Health);
        let health = Arc::new(CameraHealth::new("k", "health", 0.0, 0));
        KeyframeSource::open(&Camera { spec: &spec, password: None, clock: &clock, health: &health })
    }

    #[test]
    fn the_server_s_answers_become_typed_refusals_and_failures() {
        let (url, t) = server(vec!["200 OK", "461 Unsupported Transport"]);
        let Err(OpenError::Refused(Refusal::TcpTransport(e))) = open(&url) else { panic!("461 is a refusal") };
        assert_eq!(e, RtspError::Status { method: "SETUP".into(), code: 461, reason: "Unsupported Transport".into() });
        assert_eq!(e.to_string(), "SETUP answered 461 Unsupported Transport: TCP transport refused");
        assert_eq!(t.join().unwrap(), ["DESCRIBE", "SETUP"]);

        let (url, t) = server(vec!["401 Unauthorized"]);
        let Err(OpenError::Failed(f)) = open(&url) else { panic!("401 is a failure") };
        assert_eq!(f.status, Some(401));
        assert_eq!(f.text, "RTSP DESCRIBE answered 401 Unauthorized (no credentials configured)");
        t.join().unwrap();

        let (url, t) = server(vec!["200 OK", "400 Bad Request (461 expected)"]);
        let Err(OpenError::Failed(f)) = open(&url) else { panic!("400 is a failure") };
        assert_eq!((f.status, f.text.as_str()), (Some(400), "RTSP SETUP answered 400 Bad Request"));
        t.join().unwrap();

        let Err(OpenError::Refused(Refusal::Tls)) = open("rtsps://127.0.0.1:1/cam") else { panic!("TLS is a refusal") };
    }
}
