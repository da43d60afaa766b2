//! The seam between supervision and the things that read a camera (moonfire-nvr's
//! `Opener`/`Stream`): an `Opener` opens a `FrameSource` for a camera, and the supervisor pulls
//! `Event`s from it until it ends, the watchdog gives up on it, or the camera is stopped.
//!
//! Two sources exist: the GStreamer pipeline (`pipeline`: rtspsrc, or for a GB/T 28181 channel
//! our RTP receiver (`gb`) and mpegpsdemux, → … → appsink, every profile) and the keyframe client (`keyframe`: our RTSP/TCP client for `health` cameras). Which one
//! reads a camera is decided here, in `choose`, from the camera's spec and the typed refusal of
//! the keyframe client — nowhere else. Tests open scripted sources instead (see the supervisor's
//! tests), which is what lets supervision run on a simulated clock.

use std::sync::Arc;

use super::gb::GbMedia;
use super::health::CameraHealth;
use super::rtsp::RtspError;
use super::spec::IngestSpec;
use super::{Frame, keyframe, pipeline};
use crate::clock::{Clock, Millis, Stop};
use crate::config::{Profile, Transport};

/// What reads a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceKind {
    /// GStreamer's rtspsrc and a decoder per camera: every profile, every transport.
    Pipeline,
    /// Our RTSP client over TCP, one keyframe decoded per sampling interval: `health` cameras.
    Keyframes,
}

/// A server the keyframe client cannot read but rtspsrc may: each a named policy, decided on
/// the server's typed answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refusal {
    /// The server answered our TCP `SETUP` with 461 Unsupported Transport (it streams over UDP only).
    TcpTransport(RtspError),
    /// `rtsps://`: the keyframe client does not speak TLS.
    Tls,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TcpTransport(e) => e.fmt(f),
            Refusal::Tls => RtspError::Tls.fmt(f),
        }
    }
}

impl Refusal {
    /// The keyframe client's error as a refusal, when it is one.
    pub(crate) fn of(e: &RtspError) -> Option<Refusal> {
        match e {
            RtspError::Status { code: super::rtsp::UNSUPPORTED_TRANSPORT, .. } => {
                Some(Refusal::TcpTransport(e.clone()))
            }
            RtspError::Tls => Some(Refusal::Tls),
            _ => None,
        }
    }
}

/// The source for a camera: the keyframe client for `health` cameras on `tcp` or `auto`, unless
/// it was refused; rtspsrc for everything else. A `tcp` camera whose server refuses TCP is not
/// switched to UDP behind the operator's back: the error says what to set.
pub(crate) fn choose(spec: &IngestSpec, refused: Option<&Refusal>) -> Result<SourceKind, Failure> {
    // GB/T 28181 channels are read by the pipeline whatever the profile (RTP/PS over the
    // platform's own socket: nothing for the RTSP keyframe client to do).
    if spec.profile != Profile::Health || spec.transport == Transport::Udp || spec.url.gb28181().is_some() {
        return Ok(SourceKind::Pipeline);
    }
    match (refused, spec.transport) {
        (None, _) => Ok(SourceKind::Keyframes),
        (Some(Refusal::TcpTransport(e)), Transport::Tcp) => Err(Failure {
            status: e.status(),
            text: format!("the server does not stream over TCP ({e}); set transport = \"auto\" or \"udp\""),
        }),
        (Some(_), _) => Ok(SourceKind::Pipeline),
    }
}

/// Why a source could not open or stopped yielding: the text the camera's error shows (before
/// the supervisor explains and scrubs it) and the RTSP status the server answered, if any.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    pub status: Option<u16>,
    pub text: String,
}

impl Failure {
    pub(crate) fn new(text: impl Into<String>) -> Self {
        Self { status: None, text: text.into() }
    }
}

impl From<RtspError> for Failure {
    fn from(e: RtspError) -> Self {
        Failure { status: e.status(), text: e.to_string() }
    }
}

/// Why `Opener::open` gave no source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OpenError {
    /// The keyframe client cannot read this server (see `choose` for what happens next).
    Refused(Refusal),
    Failed(Failure),
}

/// What a source yields.
#[derive(Debug)]
pub(crate) enum Event {
    /// Packets of the video stream arrived (`count` of them, `bytes` on the wire).
    Packets { count: u64, bytes: u64 },
    /// A decoded frame.
    Frame(Frame),
    /// Nothing arrived before the deadline.
    Idle,
    /// The stop was requested.
    Stopped,
    /// The connection ended or failed; the source yields nothing more.
    Ended(Failure),
}

/// What an opener is given about the camera.
pub(crate) struct Camera<'a> {
    pub spec: &'a IngestSpec,
    /// The resolved secret, if any.
    pub password: Option<&'a str>,
    pub clock: &'a Arc<dyn Clock>,
    /// Where a source records what it learns about the stream: codec, native size, pictures
    /// decoded or skipped, an error it recovers from. Liveness, delivery, failures and state are
    /// the supervisor's, from the events.
    pub health: &'a Arc<CameraHealth>,
}

/// Opens one connection to a camera.
pub(crate) trait Opener: Send + Sync {
    fn open(&self, kind: SourceKind, camera: &Camera<'_>) -> Result<Box<dyn FrameSource>, OpenError>;
}

/// One open connection. Dropping it tears the connection down.
pub(crate) trait FrameSource: Send {
    /// Waits until something arrives, the camera's clock reaches `deadline` (`Event::Idle`) or
    /// `stop` is requested (`Event::Stopped`), and says what happened.
    fn next(&mut self, deadline: Millis, stop: &Stop) -> Event;

    /// For a source that never blocks (it can share a thread with many others): what it has at
    /// `now`, reading it if it is due; `None`: nothing yet (ask again at `wake_at`).
    fn try_next(&mut self, _now: Millis) -> Option<Event> {
        None
    }

    /// When `try_next` has something to do next; `None` for a source that only `next` reads
    /// (it needs a thread of its own).
    fn wake_at(&self) -> Option<Millis> {
        None
    }
}

/// The real sources, over the network; `gb` is the SIP side that GB/T 28181 channels are asked
/// for through (none on a node without `[gb28181]`).
pub(crate) struct NetOpener {
    pub gb: Option<Arc<dyn GbMedia>>,
}

impl Opener for NetOpener {
    fn open(&self, kind: SourceKind, camera: &Camera<'_>) -> Result<Box<dyn FrameSource>, OpenError> {
        match kind {
            SourceKind::Pipeline => {
                Ok(Box::new(pipeline::PipelineSource::open(camera, self.gb.as_ref()).map_err(OpenError::Failed)?))
            }
            SourceKind::Keyframes => Ok(Box::new(keyframe::KeyframeSource::open(camera)?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(profile: Profile, transport: Transport) -> IngestSpec {
        let mut s = IngestSpec::with_defaults("c", "rtsp://h/x".parse().unwrap(), profile);
        s.transport = transport;
        s
    }

    #[test]
    fn the_source_is_chosen_from_the_spec_and_the_typed_refusal() {
        use SourceKind::{Keyframes, Pipeline};
        let refused_tcp = Refusal::TcpTransport(RtspError::Status {
            method: "SETUP".into(),
            code: 461,
            reason: "Unsupported transport".into(),
        });
        for (profile, transport, refused, want) in [
            (Profile::Street, Transport::Tcp, None, Ok(Pipeline)),
            (Profile::Checkpoint, Transport::Auto, Some(&refused_tcp), Ok(Pipeline)),
            (Profile::Health, Transport::Udp, None, Ok(Pipeline)),
            (Profile::Health, Transport::Tcp, None, Ok(Keyframes)),
            (Profile::Health, Transport::Auto, None, Ok(Keyframes)),
            (Profile::Health, Transport::Auto, Some(&refused_tcp), Ok(Pipeline)),
            (Profile::Health, Transport::Auto, Some(&Refusal::Tls), Ok(Pipeline)),
            (Profile::Health, Transport::Tcp, Some(&Refusal::Tls), Ok(Pipeline)),
        ] {
            assert_eq!(choose(&spec(profile, transport), refused), want, "{profile:?} {transport:?} {refused:?}");
        }
        let gb = |profile| {
            let mut s = spec(profile, Transport::Tcp);
            s.url = "gb28181://34020000001180000001/34020000001310000001".parse().unwrap();
            s
        };
        for profile in [Profile::Health, Profile::Street, Profile::Checkpoint] {
            assert_eq!(choose(&gb(profile), None), Ok(Pipeline), "GB/T 28181 {profile:?}");
        }
        let e = choose(&spec(Profile::Health, Transport::Tcp), Some(&refused_tcp)).unwrap_err();
        assert_eq!(e.status, Some(461));
        assert_eq!(
            e.text,
            "the server does not stream over TCP (SETUP answered 461 Unsupported transport: TCP transport refused); \
             set transport = \"auto\" or \"udp\""
        );
    }

    #[test]
    fn refusals_are_read_from_the_status_code_not_the_text() {
        let status =
            |code: u16, reason: &str| RtspError::Status { method: "SETUP".into(), code, reason: reason.into() };
        assert!(matches!(Refusal::of(&status(461, "Whatever")), Some(Refusal::TcpTransport(_))));
        assert_eq!(Refusal::of(&status(400, "461 Unsupported Transport")), None);
        assert_eq!(Refusal::of(&RtspError::Failed("SETUP answered 461".into())), None);
        assert_eq!(Refusal::of(&RtspError::Tls), Some(Refusal::Tls));
    }
}
