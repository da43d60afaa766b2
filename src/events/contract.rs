//! The event contract: every event any part of tianwang tells another, as one enum with typed
//! payloads. Producers build an [`Event`]; the log stores it as a kind and a JSON payload written
//! here ([`Event::encode`]) and hands it back decoded here ([`Event::decode`]). Nothing else
//! writes or reads event JSON, so renaming a field is a compile error, not a silent default.
//!
//! The stored kind strings and payload fields are the ones the API has always shown
//! (`GET /api/v1/events`): `ring_opened`, `watchlist_hit`, … with the same field names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::CameraStatus;

pub type Millis = i64;

/// How urgent an event is for the monitoring room. Each lane is read on its own, so a flood in a
/// lower lane never queues an event of a higher one behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    /// Alarms, watchlist hits, ring crossings: someone may be in danger or getting away.
    Urgent,
    /// Camera status, rings opening and closing, work orders.
    Normal,
    /// High-volume observations: motion, picture quality, passages.
    Bulk,
}

impl Lane {
    pub const ALL: [Lane; 3] = [Lane::Urgent, Lane::Normal, Lane::Bulk];

    /// The number stored in the log's `lane` column.
    pub fn code(self) -> i64 {
        match self {
            Lane::Urgent => 0,
            Lane::Normal => 1,
            Lane::Bulk => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Urgent => "urgent",
            Lane::Normal => "normal",
            Lane::Bulk => "bulk",
        }
    }
}

macro_rules! kinds {
    ($($var:ident = $s:literal),+ $(,)?) => {
        /// The kind of an event, as stored.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum EventKind { $($var),+ }

        impl EventKind {
            pub const ALL: &'static [EventKind] = &[$(EventKind::$var),+];
            pub fn as_str(self) -> &'static str {
                match self { $(EventKind::$var => $s),+ }
            }
        }

        impl FromStr for EventKind {
            type Err = DecodeError;
            fn from_str(s: &str) -> Result<Self, DecodeError> {
                match s {
                    $($s => Ok(EventKind::$var),)+
                    _ => Err(DecodeError::UnknownKind(s.chars().take(64).collect())),
                }
            }
        }
    };
}

kinds!(
    CameraStatus = "camera_status",
    QualityFault = "quality_fault",
    QualityCleared = "quality_cleared",
    Motion = "motion",
    Passage = "passage",
    WatchlistHit = "watchlist_hit",
    RingOpened = "ring_opened",
    RingClosed = "ring_closed",
    RingCrossing = "ring_crossing",
    Alarm = "alarm",
    WorkOrder = "work_order",
);

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored event that cannot be read back as an [`Event`]: counted, reported, and kept in the
/// log (never given a default meaning).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event kind {0:?}")]
    UnknownKind(String),
    #[error("{kind} event: malformed payload: {error}")]
    Malformed { kind: EventKind, error: String },
}

/// Every event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    CameraStatus(CameraStatusChanged),
    QualityFault(QualityChange),
    QualityCleared(QualityChange),
    Motion(Motion),
    Passage(PassageSeen),
    WatchlistHit(WatchlistHit),
    RingOpened(RingChange),
    RingClosed(RingChange),
    RingCrossing(RingCrossing),
    Alarm(Alarm),
    WorkOrder(WorkOrderChange),
}

/// An event as the log stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub kind: EventKind,
    pub lane: Lane,
    /// For the log's indexes and filters.
    pub camera_id: Option<String>,
    pub ring_id: Option<String>,
    pub payload: String,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::CameraStatus(_) => EventKind::CameraStatus,
            Event::QualityFault(_) => EventKind::QualityFault,
            Event::QualityCleared(_) => EventKind::QualityCleared,
            Event::Motion(_) => EventKind::Motion,
            Event::Passage(_) => EventKind::Passage,
            Event::WatchlistHit(_) => EventKind::WatchlistHit,
            Event::RingOpened(_) => EventKind::RingOpened,
            Event::RingClosed(_) => EventKind::RingClosed,
            Event::RingCrossing(_) => EventKind::RingCrossing,
            Event::Alarm(_) => EventKind::Alarm,
            Event::WorkOrder(_) => EventKind::WorkOrder,
        }
    }

    pub fn lane(&self) -> Lane {
        lane_of(self.kind())
    }

    /// The camera the event is about, if one.
    pub fn camera_id(&self) -> Option<&str> {
        match self {
            Event::CameraStatus(e) => Some(&e.camera_id),
            Event::QualityFault(e) | Event::QualityCleared(e) => Some(&e.camera_id),
            Event::Motion(e) => Some(&e.camera_id),
            Event::Passage(e) => Some(&e.camera_id),
            Event::WatchlistHit(e) => Some(&e.camera_id),
            Event::RingCrossing(e) => Some(&e.checkpoint),
            Event::WorkOrder(e) => Some(&e.camera_id),
            Event::RingOpened(_) | Event::RingClosed(_) | Event::Alarm(_) => None,
        }
    }

    /// The checkpoint ring the event is about, if one.
    pub fn ring_id(&self) -> Option<&str> {
        match self {
            Event::RingOpened(e) | Event::RingClosed(e) => Some(&e.ring_id),
            Event::RingCrossing(e) => Some(&e.ring_id),
            _ => None,
        }
    }

    /// The one place an event becomes stored text.
    pub fn encode(&self) -> Encoded {
        let payload = match self {
            Event::CameraStatus(e) => to_json(e),
            Event::QualityFault(e) | Event::QualityCleared(e) => to_json(e),
            Event::Motion(e) => to_json(e),
            Event::Passage(e) => to_json(e),
            Event::WatchlistHit(e) => to_json(e),
            Event::RingOpened(e) | Event::RingClosed(e) => to_json(e),
            Event::RingCrossing(e) => to_json(e),
            Event::Alarm(e) => to_json(e),
            Event::WorkOrder(e) => to_json(e),
        };
        Encoded {
            kind: self.kind(),
            lane: self.lane(),
            camera_id: self.camera_id().map(str::to_string),
            ring_id: self.ring_id().map(str::to_string),
            payload,
        }
    }

    /// The one place stored text becomes an event.
    pub fn decode(kind: &str, payload: &str) -> Result<Event, DecodeError> {
        let kind: EventKind = kind.parse()?;
        fn de<T: for<'de> Deserialize<'de>>(kind: EventKind, s: &str) -> Result<T, DecodeError> {
            serde_json::from_str(s).map_err(|e| DecodeError::Malformed { kind, error: e.to_string() })
        }
        Ok(match kind {
            EventKind::CameraStatus => Event::CameraStatus(de(kind, payload)?),
            EventKind::QualityFault => Event::QualityFault(de(kind, payload)?),
            EventKind::QualityCleared => Event::QualityCleared(de(kind, payload)?),
            EventKind::Motion => Event::Motion(de(kind, payload)?),
            EventKind::Passage => Event::Passage(de(kind, payload)?),
            EventKind::WatchlistHit => Event::WatchlistHit(de(kind, payload)?),
            EventKind::RingOpened => Event::RingOpened(de(kind, payload)?),
            EventKind::RingClosed => Event::RingClosed(de(kind, payload)?),
            EventKind::RingCrossing => Event::RingCrossing(de(kind, payload)?),
            EventKind::Alarm => Event::Alarm(de(kind, payload)?),
            EventKind::WorkOrder => Event::WorkOrder(de(kind, payload)?),
        })
    }
}

/// The lane of each kind (one place).
pub fn lane_of(kind: EventKind) -> Lane {
    match kind {
        EventKind::Alarm | EventKind::WatchlistHit | EventKind::RingCrossing => Lane::Urgent,
        EventKind::CameraStatus | EventKind::RingOpened | EventKind::RingClosed | EventKind::WorkOrder => Lane::Normal,
        EventKind::Motion | EventKind::QualityFault | EventKind::QualityCleared | EventKind::Passage => Lane::Bulk,
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    // Payloads are plain structs of strings, numbers and vectors: serialising cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// A camera's status changed: the health keeper decided it (ingest, quality, frame rate) or a
/// crew put it into or out of maintenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CameraStatusChanged {
    pub camera_id: String,
    pub name: String,
    pub grid_cell_id: Option<String>,
    /// `None` for a camera never given a status before.
    pub from: Option<CameraStatus>,
    pub to: CameraStatus,
    pub reason: String,
}

/// A picture-quality check (video quality diagnosis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QualityCheck {
    Frozen,
    Blur,
    TooDark,
    TooBright,
    LowContrast,
    ColourCast,
    Noise,
    Occlusion,
    SceneChange,
}

impl QualityCheck {
    pub const ALL: [QualityCheck; 9] = [
        QualityCheck::Frozen,
        QualityCheck::Blur,
        QualityCheck::TooDark,
        QualityCheck::TooBright,
        QualityCheck::LowContrast,
        QualityCheck::ColourCast,
        QualityCheck::Noise,
        QualityCheck::Occlusion,
        QualityCheck::SceneChange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QualityCheck::Frozen => "frozen",
            QualityCheck::Blur => "blur",
            QualityCheck::TooDark => "too_dark",
            QualityCheck::TooBright => "too_bright",
            QualityCheck::LowContrast => "low_contrast",
            QualityCheck::ColourCast => "colour_cast",
            QualityCheck::Noise => "noise",
            QualityCheck::Occlusion => "occlusion",
            QualityCheck::SceneChange => "scene_change",
        }
    }

    pub fn parse(s: &str) -> Option<QualityCheck> {
        QualityCheck::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What was measured on one quality sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Measures {
    pub mean_luma: f32,
    pub contrast: f32,
    pub sharpness: f32,
    pub colour_cast: f32,
    pub noise_sigma: f32,
    /// Mean absolute difference to the previous sample (None on the first).
    pub change_from_previous: Option<f32>,
    /// Share of the reference's textured blocks now flat.
    pub occluded_share: Option<f32>,
    /// Correlation with the reference view.
    pub scene_correlation: Option<f32>,
}

/// A quality fault raised or cleared on a camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QualityChange {
    pub camera_id: String,
    pub check: QualityCheck,
    pub measures: Option<Measures>,
}

/// A box of moving pixels, in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MotionBox {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    /// Moving pixels in the blob, as a fraction of the frame.
    pub area: f32,
}

/// Motion started in a zone of a camera (`*` or the zone's name; "the view" without zones).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Motion {
    pub camera_id: String,
    pub zone: String,
    pub boxes: Vec<MotionBox>,
}

/// A vehicle passage was stored (GA/T 1400 MotorVehicle, in short).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PassageSeen {
    pub passage_id: i64,
    pub camera_id: String,
    pub pass_time_ms: Millis,
    pub plate_no: Option<String>,
    pub plate_color: Option<String>,
    pub direction: Option<String>,
}

/// A passage's plate hit a watchlist entry in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WatchlistHit {
    pub plate_no: Option<String>,
    pub plate_color: Option<String>,
    pub passage_id: i64,
    pub camera_id: String,
    pub pass_time_ms: Millis,
    pub watchlist_id: i64,
    pub pattern: String,
    /// `exact`, `wildcard` or `fuzzy`.
    pub match_kind: String,
    pub distance: Option<f64>,
    pub reason: String,
    /// `low`, `medium`, `high` or `critical`.
    pub priority: String,
    pub plate_image: Option<String>,
    pub context_image: Option<String>,
}

/// A road crossing a ring with no checkpoint reading it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RingLeak {
    pub road_id: String,
    pub road_name: Option<String>,
    pub lon: f64,
    pub lat: f64,
    /// Checkpoints that would read this crossing if they were online.
    pub guarded_when_up_by: Vec<String>,
}

/// A checkpoint ring opened (a member down or a road leaking) or closed again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RingChange {
    pub ring_id: String,
    pub name: String,
    pub level: u8,
    pub open: bool,
    /// Member checkpoints down.
    pub down: Vec<String>,
    pub leaks: Vec<RingLeak>,
}

/// A vehicle crossed a checkpoint armed by an active interception.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RingCrossing {
    pub interception_id: i64,
    pub ring_id: String,
    pub ring_name: String,
    pub ring_level: u8,
    pub checkpoint: String,
    pub checkpoint_name: String,
    pub passage_id: i64,
    pub plate_no: Option<String>,
    pub plate_color: Option<String>,
    pub direction: Option<String>,
    pub pass_time_ms: Millis,
    pub seconds_since_incident: f64,
    /// The planned time to reach the checkpoint from the incident, seconds.
    pub eta_s: Option<f64>,
}

/// A camera that sees an alarm's place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SeeingCamera {
    pub camera_id: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    /// The finest DORI level the camera reaches at the place.
    pub level: String,
    pub distance_m: f64,
    pub bearing_deg: f64,
}

/// An anti-robbery alarm (防劫报警) went off; the cameras that see its place are linked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alarm {
    /// The alarm point's id in the alarm system (or its position when it has none).
    pub alarm_id: String,
    pub name: String,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    /// Finest level first, then nearest.
    pub seeing: Vec<SeeingCamera>,
    /// The finest grid cell whose outline holds the place (the duty desk it goes to); absent
    /// when no outline does (the alert then takes the cell of the first camera that sees it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid_cell_id: Option<String>,
}

/// What happened to a work order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkOrderChangeKind {
    Opened,
    Assigned,
    Noted,
    Closed,
    Reopened,
    Verified,
}

/// A work order changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkOrderChange {
    pub order_id: i64,
    pub camera_id: String,
    pub cause: String,
    pub change: WorkOrderChangeKind,
    pub by: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Event> {
        vec![
            Event::CameraStatus(CameraStatusChanged {
                camera_id: "c1".into(),
                name: "Gate".into(),
                grid_cell_id: Some("cell".into()),
                from: Some(CameraStatus::Online),
                to: CameraStatus::Offline,
                reason: "stalled".into(),
            }),
            Event::QualityFault(QualityChange {
                camera_id: "c1".into(),
                check: QualityCheck::TooDark,
                measures: Some(Measures { mean_luma: 3.0, ..Default::default() }),
            }),
            Event::Motion(Motion {
                camera_id: "s1".into(),
                zone: "vault".into(),
                boxes: vec![MotionBox { x: 1, y: 2, w: 3, h: 4, area: 0.5 }],
            }),
            Event::RingOpened(RingChange {
                ring_id: "middle".into(),
                name: "Middle".into(),
                level: 2,
                open: true,
                down: vec!["k1".into()],
                leaks: vec![],
            }),
            Event::Alarm(Alarm {
                alarm_id: "bank-1".into(),
                name: "bank".into(),
                lon: Some(113.6),
                lat: Some(34.7),
                seeing: vec![],
                grid_cell_id: Some("g3-bank".into()),
            }),
        ]
    }

    #[test]
    fn every_event_survives_encode_and_decode() {
        for e in samples() {
            let enc = e.encode();
            assert_eq!(Event::decode(enc.kind.as_str(), &enc.payload).unwrap(), e);
            assert_eq!(enc.lane, lane_of(enc.kind));
        }
    }

    #[test]
    fn kinds_round_trip_and_unknown_ones_are_errors() {
        for k in EventKind::ALL {
            assert_eq!(k.as_str().parse::<EventKind>().unwrap(), *k);
        }
        assert_eq!(Event::decode("teleport", "{}"), Err(DecodeError::UnknownKind("teleport".into())));
        let bad = Event::decode("motion", r#"{"camera_id": 3}"#).unwrap_err();
        assert!(matches!(bad, DecodeError::Malformed { kind: EventKind::Motion, .. }), "{bad}");
    }

    #[test]
    fn urgent_kinds_have_their_own_lane() {
        for k in [EventKind::Alarm, EventKind::WatchlistHit, EventKind::RingCrossing] {
            assert_eq!(lane_of(k), Lane::Urgent);
        }
        for k in [EventKind::Motion, EventKind::QualityFault, EventKind::QualityCleared] {
            assert_eq!(lane_of(k), Lane::Bulk);
        }
    }

    #[test]
    fn stored_payloads_keep_the_field_names_the_api_shows() {
        let e = Event::QualityFault(QualityChange { camera_id: "c".into(), check: QualityCheck::Blur, measures: None });
        let v: serde_json::Value = serde_json::from_str(&e.encode().payload).unwrap();
        assert_eq!(v["check"], "blur");
    }
}
