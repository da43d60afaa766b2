//! Anti-robbery alarms (防劫报警) from alarm systems: the input is checked, linked to the
//! cameras that see its place (报警联动, finest DORI level first), and appended to the event log
//! as an `alarm` event before anyone is answered; the alert service raises the alert from the
//! log. An alarm that is in the log is never lost, even when the alert cannot be stored yet: the
//! caller is then told it was accepted, and the alert follows.

use std::time::Duration;

use serde::Deserialize;
use utoipa::ToSchema;

use super::service::{AlertService, EventOutcome};
use crate::clock::Clock;
use crate::events::{Alarm, Event, Lane, NewEvent, SeeingCamera};
use crate::geo::coverage::StateFilter;
use crate::geo::service::GeoService;
use crate::registry::{AlertRow, RegistryError};

/// How far in the future an alarm's own time may lie (clock skew between systems).
const MAX_AHEAD_MS: i64 = 24 * 3_600_000;

/// An alarm input from an alarm system: the alarm point's id, where it is, or both.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmInput {
    /// The alarm point's id in the alarm system (repeats of one point fold into one alert).
    pub alarm_id: Option<String>,
    /// What it is (e.g. "工商银行二七支行 counter 3").
    pub name: Option<String>,
    /// Where it is (WGS84): links the cameras that see it.
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    /// When it went off (ms since the epoch); now when absent.
    pub at_ms: Option<i64>,
}

/// What became of an alarm.
#[derive(Debug, Clone)]
pub enum AlarmOutcome {
    /// Its alert (new, or the open alert of the same alarm point, counted).
    Raised(Box<AlertRow>),
    /// It raised nothing: every camera that sees the place is in maintenance.
    HeldBack { alarm_id: String },
    /// Stored in the event log; the alert could not be stored within the wait and will follow.
    Accepted { position: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] RegistryError),
}

/// Checks and links an alarm; the event to append.
pub async fn intake(geo: &GeoService, clock: &dyn Clock, a: &AlarmInput) -> Result<(Alarm, i64), AlarmError> {
    let bad = |s: String| Err(AlarmError::Invalid(s));
    let at = match (a.lon, a.lat) {
        (Some(lon), Some(lat)) if (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat) => Some((lon, lat)),
        (Some(lon), Some(lat)) => return bad(format!("lon {lon}, lat {lat}: not a WGS84 position")),
        (None, None) => None,
        _ => return bad("lon and lat go together".into()),
    };
    let id = match (a.alarm_id.as_deref().map(str::trim), at) {
        (Some(""), _) => return bad("alarm_id: empty".into()),
        (Some(id), _) if id.chars().count() > 200 => return bad("alarm_id: longer than 200 characters".into()),
        (Some(id), _) => id.to_string(),
        (None, Some((lon, lat))) => format!("{lon:.5},{lat:.5}"),
        (None, None) => return bad("give alarm_id, a location (lon, lat), or both".into()),
    };
    let now = clock.now_ms();
    let at_ms = match a.at_ms {
        None => now,
        Some(t) if (0..=now.saturating_add(MAX_AHEAD_MS)).contains(&t) => t,
        Some(t) => return bad(format!("at_ms: {t} is not a time between 1970 and a day from now")),
    };
    let (seeing, grid_cell_id) = match at {
        Some((lon, lat)) => {
            let m = geo.model().await?;
            let p = m.proj.fwd(lon, lat);
            let seeing = m
                .cameras_seeing(p, StateFilter::All)
                .into_iter()
                .map(|s| SeeingCamera {
                    camera_id: s.camera_id,
                    name: s.name,
                    kind: s.kind,
                    status: s.status,
                    level: s.level.as_str().to_string(),
                    distance_m: s.distance_m,
                    bearing_deg: s.bearing_deg,
                })
                .collect();
            // The finest cell holding the place (level 3 inside level 2 inside level 1).
            let cell = m.cells_at(p).into_iter().max_by_key(|&i| (m.cells[i].level, std::cmp::Reverse(i)));
            (seeing, cell.map(|i| m.cells[i].id.clone()))
        }
        None => (Vec::new(), None),
    };
    let name = a.name.clone().map(|n| n.chars().take(500).collect()).unwrap_or_else(|| id.clone());
    Ok((Alarm { alarm_id: id, name, lon: at.map(|p| p.0), lat: at.map(|p| p.1), seeing, grid_cell_id }, at_ms))
}

/// Appends the alarm to the log and waits up to `wait` for its alert. `idempotency_key` (the
/// caller's, e.g. an `Idempotency-Key` header) makes a retried request the same alarm; without
/// it an alarm with its own `at_ms` is keyed by point and time.
/// The open alert of `key` once the writer has applied an alarm of `at_ms` to it (its last
/// occurrence at or after it), within `wait`; `None` when it has not by then (or raised nothing:
/// a standby cannot tell, and answers that the alarm is accepted).
async fn raised_by_writer(
    alerts: &AlertService,
    feed: &mut tokio::sync::broadcast::Receiver<crate::registry::FeedRow>,
    key: &str,
    at_ms: crate::clock::Millis,
    wait: Duration,
) -> Result<Option<AlertRow>, RegistryError> {
    use tokio::sync::broadcast::error::RecvError;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(r) = alerts.registry().open_alert_by_key(key).await?.filter(|r| r.last_at_ms >= at_ms) {
            return Ok(Some(r));
        }
        // The next change of this alert (any change when changes were missed).
        loop {
            match tokio::time::timeout_at(deadline, feed.recv()).await {
                Err(_) | Ok(Err(RecvError::Closed)) => return Ok(None),
                Ok(Err(RecvError::Lagged(_))) => break,
                Ok(Ok(row)) if row.alert.get("dedupe_key").and_then(|k| k.as_str()) == Some(key) => break,
                Ok(Ok(_)) => {}
            }
        }
    }
}

pub async fn raise(
    alerts: &AlertService,
    geo: &GeoService,
    clock: &dyn Clock,
    a: &AlarmInput,
    idempotency_key: Option<&str>,
    wait: Duration,
) -> Result<AlarmOutcome, AlarmError> {
    let (alarm, at_ms) = intake(geo, clock, a).await?;
    let key = match (idempotency_key, a.at_ms) {
        (Some(k), _) => Some(format!("alarm:key:{}", k.chars().take(200).collect::<String>())),
        (None, Some(t)) => Some(format!("alarm:{}:{t}", alarm.alarm_id)),
        (None, None) => None,
    };
    let alarm_id = alarm.alarm_id.clone();
    let event = NewEvent::new(at_ms, key, Event::Alarm(alarm));
    // On a standby node the writer (another node) raises the alert: watched for on the change
    // feed this node follows, subscribed before the alarm is stored so that nothing is missed.
    let standby = (!*alerts.active().borrow()).then(|| alerts.subscribe());
    let positions = alerts.log().append(std::slice::from_ref(&event)).await.map_err(|e| match e {
        crate::events::LogError::Store(r) => AlarmError::Store(r),
    })?;
    let position = positions.first().copied().unwrap_or(0);
    if let Some(mut feed) = standby {
        return Ok(match raised_by_writer(alerts, &mut feed, &format!("alarm:{alarm_id}"), at_ms, wait).await? {
            Some(r) => AlarmOutcome::Raised(Box::new(r)),
            None => AlarmOutcome::Accepted { position },
        });
    }
    Ok(match alerts.await_event(position, Lane::Urgent, wait).await {
        Some(EventOutcome::Alerts(rows)) => match rows.into_iter().next() {
            Some(r) => AlarmOutcome::Raised(Box::new(r)),
            None => AlarmOutcome::HeldBack { alarm_id },
        },
        Some(EventOutcome::Nothing) => AlarmOutcome::HeldBack { alarm_id },
        Some(EventOutcome::Forgotten) => {
            // A retry of an alarm applied long ago: its alert, if still open.
            match alerts.registry().open_alert_by_key(&format!("alarm:{alarm_id}")).await? {
                Some(r) => AlarmOutcome::Raised(Box::new(r)),
                None => AlarmOutcome::HeldBack { alarm_id },
            }
        }
        None => AlarmOutcome::Accepted { position },
    })
}
