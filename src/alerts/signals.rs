//! What each event means to the alert engine: the one exhaustive match from the event contract
//! to engine signals. A new event kind does not compile until it is decided here whether (and
//! how) it alerts.

use serde_json::json;

use super::engine::{AlertKind, Occurrence, Signal};
use crate::config::CameraStatus;
use crate::events::{Event, Stored};

/// The engine signals of one stored event (none for events that never alert).
pub fn of(s: &Stored) -> Vec<Signal> {
    let at_ms = s.at_ms;
    let detail = |payload: serde_json::Value| json!({"event_id": s.position, "event": payload});
    match &s.event {
        Event::CameraStatus(c) => {
            let mut out = Vec::new();
            if c.from == Some(CameraStatus::Maintenance) && c.to != CameraStatus::Maintenance {
                out.push(Signal::Maintenance { camera: c.camera_id.clone(), on: false });
            }
            match c.to {
                CameraStatus::Maintenance => out.push(Signal::Maintenance { camera: c.camera_id.clone(), on: true }),
                CameraStatus::Offline => out.push(Signal::CameraDown {
                    camera: c.camera_id.clone(),
                    name: c.name.clone(),
                    grid_cell: c.grid_cell_id.clone(),
                    reason: c.reason.clone(),
                    at_ms,
                }),
                CameraStatus::Online | CameraStatus::Degraded => {
                    out.push(Signal::CameraUp { camera: c.camera_id.clone(), at_ms })
                }
                // Not heard from yet, or out of service by configuration: nothing to alert.
                CameraStatus::Unknown | CameraStatus::Disabled | CameraStatus::Decommissioned => {}
            }
            out
        }
        Event::QualityFault(q) => vec![Signal::Event(Occurrence {
            kind: AlertKind::QualityFault,
            key: format!("quality_fault:{}:{}", q.camera_id, q.check.as_str()),
            title: format!("{} at {}", q.check.as_str().replace('_', " "), q.camera_id),
            cameras: vec![q.camera_id.clone()],
            grid_cell: None,
            ring_id: None,
            zone: None,
            detail: detail(json!({"check": q.check, "measures": q.measures})),
            at_ms,
        })],
        Event::QualityCleared(q) => vec![Signal::CauseGone {
            key: format!("quality_fault:{}:{}", q.camera_id, q.check.as_str()),
            note: "picture healthy again".into(),
            at_ms,
        }],
        Event::Motion(m) => vec![Signal::Event(Occurrence {
            kind: AlertKind::Motion,
            key: format!("motion:{}:{}", m.camera_id, m.zone),
            title: format!("motion in {} at {}", m.zone, m.camera_id),
            cameras: vec![m.camera_id.clone()],
            grid_cell: None,
            ring_id: None,
            zone: Some(m.zone.clone()),
            detail: json!({"event_id": s.position, "zone": m.zone, "event": {"zone": m.zone, "boxes": m.boxes}}),
            at_ms,
        })],
        // A passage alerts through the watchlist hits and ring crossings stored with it.
        Event::Passage(_) => Vec::new(),
        Event::WatchlistHit(h) => {
            let plate = h.plate_no.clone().unwrap_or_default();
            vec![Signal::Event(Occurrence {
                kind: AlertKind::WatchlistHit,
                key: format!("watchlist_hit:{plate}"),
                title: format!("watchlist hit {plate} at {}", h.camera_id),
                cameras: vec![h.camera_id.clone()],
                grid_cell: None,
                ring_id: None,
                zone: None,
                detail: detail(serde_json::to_value(h).unwrap_or_default()),
                at_ms,
            })]
        }
        Event::RingOpened(r) => vec![Signal::Event(Occurrence {
            kind: AlertKind::RingOpened,
            key: format!("ring_opened:{}", r.ring_id),
            title: format!("checkpoint ring {} open", r.name),
            cameras: r.down.clone(),
            grid_cell: None,
            ring_id: Some(r.ring_id.clone()),
            zone: None,
            detail: detail(serde_json::to_value(r).unwrap_or_default()),
            at_ms,
        })],
        Event::RingClosed(r) => vec![Signal::CauseGone {
            key: format!("ring_opened:{}", r.ring_id),
            note: "ring closed again".into(),
            at_ms,
        }],
        Event::RingCrossing(c) => vec![Signal::Event(Occurrence {
            kind: AlertKind::RingCrossing,
            key: format!("ring_crossing:{}:{}", c.interception_id, c.checkpoint),
            title: format!(
                "suspect vehicle {} crossed {} at {}",
                c.plate_no.as_deref().unwrap_or("(any)"),
                c.ring_name,
                c.checkpoint_name
            ),
            cameras: vec![c.checkpoint.clone()],
            grid_cell: None,
            ring_id: Some(c.ring_id.clone()),
            zone: None,
            detail: detail(serde_json::to_value(c).unwrap_or_default()),
            at_ms,
        })],
        Event::Alarm(a) => vec![Signal::Event(Occurrence {
            kind: AlertKind::Alarm,
            key: format!("alarm:{}", a.alarm_id),
            title: format!("anti-robbery alarm: {}", a.name),
            cameras: a.seeing.iter().map(|c| c.camera_id.clone()).collect(),
            grid_cell: a.grid_cell_id.clone(),
            ring_id: None,
            zone: None,
            detail: json!({
                "event_id": s.position, "alarm_id": a.alarm_id, "name": a.name, "lon": a.lon, "lat": a.lat,
                "seeing": a.seeing,
            }),
            at_ms,
        })],
        // Work orders are the crews' business; the monitoring room is told of the camera itself.
        Event::WorkOrder(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{CameraStatusChanged, QualityChange, QualityCheck};

    fn stored(event: Event) -> Stored {
        Stored { position: 7, at_ms: 1_000, event }
    }

    #[test]
    fn a_camera_leaving_maintenance_for_offline_is_two_signals_in_order() {
        let s = stored(Event::CameraStatus(CameraStatusChanged {
            camera_id: "c1".into(),
            name: "Gate".into(),
            grid_cell_id: None,
            from: Some(CameraStatus::Maintenance),
            to: CameraStatus::Offline,
            reason: "no frames".into(),
        }));
        let v = of(&s);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0], Signal::Maintenance { camera: "c1".into(), on: false });
        assert!(matches!(&v[1], Signal::CameraDown { camera, .. } if camera == "c1"));
    }

    #[test]
    fn a_cleared_fault_resolves_the_key_its_fault_raised() {
        let q = QualityChange { camera_id: "c1".into(), check: QualityCheck::Blur, measures: None };
        let Signal::Event(o) = &of(&stored(Event::QualityFault(q.clone())))[0] else { panic!("an occurrence") };
        let Signal::CauseGone { key, .. } = &of(&stored(Event::QualityCleared(q)))[0] else { panic!("cause gone") };
        assert_eq!(&o.key, key);
    }
}
