//! Patrol units' positions over MQTT, the way vehicle trackers and tracking gateways publish:
//! `<topic_prefix>/units/<unit id>/position` on the `[mqtt]` broker, QoS 1, a payload of one
//! position (`{"at_ms", "lon", "lat", "speed_mps"?, "heading_deg"?, "accuracy_m"?}`) or a batch
//! (`{"positions": [...]}`), stored exactly as `POST /api/v1/units/{id}/positions` stores them.
//!
//! Nothing is lost: the subscription is a persistent session (a fixed client id, no clean
//! session), so the broker keeps what arrives while this node is away, and a message is
//! acknowledged to the broker only once the registry has it (or has refused it for good: a bad
//! payload, an unknown or retired unit, logged and counted). While the registry cannot write, the
//! message waits unacknowledged and is tried again. Where several serve nodes run, the one that
//! writes alerts subscribes; another takes the session over when the role moves.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::alerts::mqtt::{MqttTarget, poll_apart};
use crate::clock::Clock;
use crate::registry::{Fix, FixSource, Registry, UnitError, check_unit_id};

/// What the subscriber did, for stats.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct PositionsState {
    /// Connected and subscribed (the broker acknowledged the subscription).
    pub subscribed: bool,
    /// Messages received.
    pub messages: u64,
    /// Positions stored, already held (a repeat), refused as bad.
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Messages refused whole: not a position, a unit the registry does not hold or has retired.
    pub refused: u64,
    pub last_error: Option<String>,
}

/// The topic filter the subscriber uses.
pub fn topic_filter(prefix: &str) -> String {
    format!("{prefix}/units/+/position")
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Payload {
    Batch { positions: Vec<Fix> },
    One(Fix),
}

/// Starts the subscriber; it stops when `cancel` fires. `tracks_days`: `[retention]`'s, the
/// oldest a position may be (0: any age).
pub fn spawn(
    registry: Registry,
    target: MqttTarget,
    clock: Arc<dyn Clock>,
    tracks_days: u32,
    active: crate::events::Active,
    feed: super::unit_feed::UnitFeed,
    cancel: CancellationToken,
) -> (Arc<Mutex<PositionsState>>, tokio::task::JoinHandle<()>) {
    let state = Arc::new(Mutex::new(PositionsState::default()));
    let s = Subscriber { registry, target, clock, tracks_days, active, feed, cancel, state: state.clone() };
    (state, tokio::spawn(s.run()))
}

struct Subscriber {
    registry: Registry,
    target: MqttTarget,
    clock: Arc<dyn Clock>,
    tracks_days: u32,
    active: crate::events::Active,
    /// Told of every stored position (the map's live feed).
    feed: super::unit_feed::UnitFeed,
    cancel: CancellationToken,
    state: Arc<Mutex<PositionsState>>,
}

/// How a message ended.
enum Outcome {
    /// Stored, or refused for good: acknowledge it.
    Done,
    /// The subscriber is stopping: leave it unacknowledged (the broker gives it again).
    Stopping,
}

impl Subscriber {
    fn set(&self, f: impl FnOnce(&mut PositionsState)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
    }

    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.cancel.cancelled() => true,
            _ = tokio::time::sleep(d) => false,
        }
    }

    async fn run(self) {
        let broker = format!("{}:{}", self.target.host, self.target.port);
        let mut active = self.active.clone();
        loop {
            if !crate::events::until_active(&mut active, &self.cancel).await {
                return;
            }
            match self.connection().await {
                Ok(()) => return,
                Err(e) => {
                    self.set(|s| {
                        s.subscribed = false;
                        s.last_error = Some(e.clone());
                    });
                    if *active.borrow() {
                        tracing::warn!(%broker, error = %e, "MQTT positions: connection lost; retrying in 2 s");
                    } else {
                        tracing::info!(%broker, "MQTT positions: another node writes alerts now; it subscribes");
                    }
                }
            }
            if self.pause(Duration::from_secs(2)).await {
                return;
            }
        }
    }

    /// One connection: stores what arrives until it fails (`Err`) or the subscriber stops (`Ok`).
    async fn connection(&self) -> Result<(), String> {
        let mut opts =
            MqttOptions::new(format!("{}-units", self.target.client_id), &self.target.host, self.target.port);
        opts.set_keep_alive(Duration::from_secs(15));
        opts.set_clean_session(false);
        opts.set_manual_acks(true);
        let (client, eventloop) = AsyncClient::new(opts, 64);
        // Keep-alives go on while a message waits for the registry (until 64 events wait behind
        // it; then the broker drops the connection and gives the message again on the next).
        let (mut events, _stop) = poll_apart(eventloop, 64);
        let filter = topic_filter(&self.target.topic_prefix);
        let mut active = self.active.clone();
        loop {
            let ev = tokio::select! {
                _ = self.cancel.cancelled() => {
                    let _ = client.try_disconnect();
                    return Ok(());
                }
                changed = active.changed() => {
                    if changed.is_err() || !*active.borrow() {
                        let _ = client.try_disconnect();
                        return Err("this node no longer writes alerts".into());
                    }
                    continue;
                }
                ev = events.recv() => ev.ok_or("the MQTT event loop ended")??,
            };
            match ev {
                Event::Incoming(Packet::ConnAck(_)) => {
                    // Subscribing again on a kept session changes nothing; on a new one it is needed.
                    client
                        .subscribe(filter.clone(), QoS::AtLeastOnce)
                        .await
                        .map_err(|e| format!("subscribing: {e}"))?;
                }
                Event::Incoming(Packet::SubAck(_)) => {
                    self.set(|s| s.subscribed = true);
                    tracing::info!(topic = %filter, "MQTT positions: subscribed");
                }
                Event::Incoming(Packet::Publish(p)) => match self.handle(&p).await {
                    Outcome::Done => client.ack(&p).await.map_err(|e| format!("acknowledging: {e}"))?,
                    Outcome::Stopping => return Ok(()),
                },
                _ => {}
            }
        }
    }

    /// Stores one message's positions; waits and tries again while the registry cannot write.
    async fn handle(&self, p: &Publish) -> Outcome {
        self.set(|s| s.messages += 1);
        let refuse = |why: String| {
            tracing::warn!(topic = %clip(&p.topic), "MQTT positions: message refused: {why}");
            self.set(|s| s.refused += 1);
            Outcome::Done
        };
        let Some(unit) = unit_of(&self.target.topic_prefix, &p.topic) else {
            return refuse("the topic is not <prefix>/units/<unit id>/position".into());
        };
        if let Err(e) = check_unit_id(unit) {
            return refuse(e);
        }
        let fixes = match serde_json::from_slice::<Payload>(&p.payload) {
            Ok(Payload::Batch { positions }) => positions,
            Ok(Payload::One(f)) => vec![f],
            Err(_) => {
                return refuse(
                    "the payload is not a position {at_ms, lon, lat, speed_mps?, heading_deg?, accuracy_m?} \
                     nor {positions: [...]}"
                        .into(),
                );
            }
        };
        if fixes.is_empty() || fixes.len() > crate::registry::MAX_FIXES {
            return refuse(format!("{} positions in one message (1 to {})", fixes.len(), crate::registry::MAX_FIXES));
        }
        loop {
            let now = self.clock.now_ms();
            let oldest = crate::registry::oldest_fix(now, self.tracks_days);
            match self.registry.add_fixes(unit, &fixes, FixSource::Mqtt, now, oldest).await {
                Ok(r) => {
                    if r.stored > 0 {
                        self.feed.kick();
                    }
                    for x in &r.rejected {
                        tracing::warn!(unit, index = x.index, "MQTT positions: position refused: {}", x.reason);
                    }
                    self.set(|s| {
                        s.stored += r.stored as u64;
                        s.duplicates += r.duplicates as u64;
                        s.rejected += r.rejected.len() as u64;
                    });
                    return Outcome::Done;
                }
                Err(UnitError::Registry(e)) => {
                    let e = e.to_string();
                    tracing::error!(unit, error = %e, "MQTT positions: cannot store; trying again in 1 s");
                    self.set(|s| s.last_error = Some(e));
                    if self.pause(Duration::from_secs(1)).await {
                        return Outcome::Stopping;
                    }
                }
                Err(e) => return refuse(e.to_string()),
            }
        }
    }
}

/// The unit id in `<prefix>/units/<id>/position`.
fn unit_of<'a>(prefix: &str, topic: &'a str) -> Option<&'a str> {
    topic.strip_prefix(prefix)?.strip_prefix("/units/")?.strip_suffix("/position").filter(|u| !u.contains('/'))
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_is_read_from_the_topic() {
        assert_eq!(unit_of("tw", "tw/units/pc-1/position"), Some("pc-1"));
        assert_eq!(unit_of("a/b", "a/b/units/fp.7/position"), Some("fp.7"));
        assert_eq!(unit_of("tw", "tw/units/a/b/position"), None);
        assert_eq!(unit_of("tw", "tw/units/pc-1/status"), None);
        assert_eq!(unit_of("tw", "other/units/pc-1/position"), None);
    }

    #[test]
    fn a_payload_is_one_position_or_a_batch() {
        let one: Payload = serde_json::from_str(r#"{"at_ms": 1, "lon": 113.6, "lat": 34.7, "speed_mps": 3}"#).unwrap();
        assert!(matches!(one, Payload::One(f) if f.speed_mps == Some(3.0)));
        let batch: Payload =
            serde_json::from_str(r#"{"positions": [{"at_ms": 1, "lon": 113.6, "lat": 34.7}]}"#).unwrap();
        assert!(matches!(batch, Payload::Batch { positions } if positions.len() == 1));
        assert!(serde_json::from_str::<Payload>(r#"{"at_ms": 1, "lon": 113.6}"#).is_err());
        assert!(serde_json::from_str::<Payload>(r#"{"at_ms": 1, "lon": 113.6, "lat": 1, "alt": 3}"#).is_err());
    }
}
