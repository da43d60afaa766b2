//! MQTT publishing of alert changes to a configured broker (Mosquitto here). The publisher is a
//! consumer of the change feed with its own acknowledged position (`mqtt`): it publishes at QoS 1
//! and moves its position only when the broker has acknowledged (PUBACK) every change up to it,
//! so nothing is skipped across restarts or broker outages; a change whose PUBACK was lost is
//! published again (at least once: receivers de-duplicate by `seq`). Topic
//! `<prefix>/alerts/<kind>/<severity>`, payload the same JSON as webhooks
//! (`{"seq", "change", "at_ms", "alert": {…}}`), not retained. Each connection is a fresh client
//! (its own in-flight publishes are never replayed behind our back).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use tokio_util::sync::CancellationToken;

use crate::registry::{FeedRow, Registry};
/// Where to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttTarget {
    pub host: String,
    pub port: u16,
    pub topic_prefix: String,
    pub client_id: String,
}

/// The topic of a feed row.
pub fn topic(prefix: &str, alert: &serde_json::Value) -> String {
    let part = |k: &str| {
        alert[k]
            .as_str()
            .unwrap_or("unknown")
            .chars()
            .map(|c| if "+#/".contains(c) { '_' } else { c })
            .collect::<String>()
    };
    format!("{prefix}/alerts/{}/{}", part("kind"), part("severity"))
}

/// Changes published and not yet acknowledged by the broker, at most.
const WINDOW: usize = 64;

/// The publisher's state, for stats.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct MqttState {
    pub connected: bool,
    /// The last change the broker acknowledged (feed `seq`).
    pub position: i64,
    pub published: u64,
    pub acknowledged: u64,
    pub last_error: Option<String>,
}

/// Starts the publisher; it stops when `cancel` fires.
pub fn spawn(
    registry: Registry,
    feed: &tokio::sync::broadcast::Sender<FeedRow>,
    target: MqttTarget,
    active: crate::events::Active,
    cancel: CancellationToken,
) -> (Arc<Mutex<MqttState>>, tokio::task::JoinHandle<()>) {
    let state = Arc::new(Mutex::new(MqttState::default()));
    let p = Publisher { registry, target, cancel, active, state: state.clone() };
    (state, tokio::spawn(p.run(feed.subscribe())))
}

struct Publisher {
    registry: Registry,
    target: MqttTarget,
    cancel: CancellationToken,
    /// Publishes only on the node that writes alerts.
    active: crate::events::Active,
    state: Arc<Mutex<MqttState>>,
}

/// A change handed to the client: its feed position, the packet id once the client sent it, and
/// whether the broker acknowledged it.
struct InFlight {
    seq: i64,
    pkid: Option<u16>,
    acked: bool,
}

impl Publisher {
    fn set(&self, f: impl FnOnce(&mut MqttState)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
    }

    async fn run(self, mut feed: tokio::sync::broadcast::Receiver<FeedRow>) {
        let broker = format!("{}:{}", self.target.host, self.target.port);
        let mut active = self.active.clone();
        loop {
            // Another node publishes while this one stands by; it resumes from the store.
            if !crate::events::until_active(&mut active, &self.cancel).await {
                return;
            }
            let position = match self.registry.acked("mqtt").await {
                Ok(p) => p.unwrap_or(0),
                Err(e) => {
                    tracing::error!(error = %e, "MQTT: cannot read the position");
                    if self.pause(Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            };
            self.set(|s| s.position = position);
            match self.connection(position, &mut feed).await {
                Ok(()) => return,
                Err(_) if !*active.borrow() => {
                    self.set(|s| s.connected = false);
                    tracing::info!(%broker, "MQTT: another node writes alerts now; this one stops publishing");
                    continue;
                }
                Err(e) => {
                    self.set(|s| {
                        s.connected = false;
                        s.last_error = Some(e.clone());
                    });
                    tracing::warn!(%broker, error = %e, "MQTT connection lost; retrying in 2 s");
                }
            }
            if self.pause(Duration::from_secs(2)).await {
                return;
            }
        }
    }

    /// One connection: publishes from `position` until the connection fails (`Err`) or the
    /// publisher is stopped (`Ok`).
    async fn connection(
        &self,
        mut position: i64,
        feed: &mut tokio::sync::broadcast::Receiver<FeedRow>,
    ) -> Result<(), String> {
        let mut opts = MqttOptions::new(&self.target.client_id, &self.target.host, self.target.port);
        opts.set_keep_alive(Duration::from_secs(15));
        opts.set_clean_session(true);
        let (client, eventloop) = AsyncClient::new(opts, 2 * WINDOW);
        let (mut events, _stop_poller) = poll_apart(eventloop, 4 * WINDOW);
        let mut connected = false;
        let mut inflight: VecDeque<InFlight> = VecDeque::new();
        let mut sent = position;
        let mut active = self.active.clone();
        loop {
            if connected && inflight.len() < WINDOW {
                let rows = self
                    .registry
                    .feed_after(sent, (WINDOW - inflight.len()) as u32)
                    .await
                    .map_err(|e| format!("reading the change feed: {e}"))?;
                for r in rows {
                    let payload =
                        serde_json::json!({"seq": r.seq, "change": r.change, "at_ms": r.at_ms, "alert": r.alert})
                            .to_string();
                    client
                        .try_publish(topic(&self.target.topic_prefix, &r.alert), QoS::AtLeastOnce, false, payload)
                        .map_err(|e| format!("publishing: {e}"))?;
                    inflight.push_back(InFlight { seq: r.seq, pkid: None, acked: false });
                    sent = r.seq;
                    self.set(|s| s.published += 1);
                }
            }
            let room = connected && inflight.len() < WINDOW;
            tokio::select! {
                _ = self.cancel.cancelled() => return Ok(()),
                _ = crate::events::until_inactive(&mut active) => return Err("standing by".into()),
                ev = events.recv() => match ev {
                    None => return Err("the MQTT event loop ended".into()),
                    Some(Err(e)) => return Err(e),
                    Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                        tracing::info!(broker = %format!("{}:{}", self.target.host, self.target.port), "MQTT connected");
                        connected = true;
                        self.set(|s| s.connected = true);
                    }
                    Some(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => {
                        if let Some(f) = inflight.iter_mut().find(|f| f.pkid.is_none()) {
                            f.pkid = Some(pkid);
                        }
                    }
                    Some(Ok(Event::Incoming(Packet::PubAck(a)))) => {
                        if let Some(f) = inflight.iter_mut().find(|f| f.pkid == Some(a.pkid) && !f.acked) {
                            f.acked = true;
                        }
                        let mut moved = false;
                        while inflight.front().is_some_and(|f| f.acked) {
                            if let Some(f) = inflight.pop_front() {
                                position = f.seq;
                                moved = true;
                                self.set(|s| s.acknowledged += 1);
                            }
                        }
                        if moved {
                            self.registry.ack("mqtt", position).await.map_err(|e| format!("recording the position: {e}"))?;
                            self.set(|s| s.position = position);
                        }
                    }
                    Some(Ok(_)) => {}
                },
                _ = feed.recv(), if room => {}
                // Changes written by another process, and a slow broker.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Waits `d`; true when stopped meanwhile.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.cancel.cancelled() => true,
            _ = tokio::time::sleep(d) => false,
        }
    }
}

/// Aborts a task when dropped.
/// Runs a client's event loop on a task of its own, so that its `poll` is never cancelled midway
/// by a caller's select; its events (the first error ends it) come out of the receiver, up to
/// `depth` waiting. The task stops when the guard is dropped.
pub(crate) fn poll_apart(
    mut eventloop: rumqttc::EventLoop,
    depth: usize,
) -> (tokio::sync::mpsc::Receiver<Result<Event, String>>, AbortOnDrop) {
    let (tx, events) = tokio::sync::mpsc::channel(depth);
    let poller = tokio::spawn(async move {
        loop {
            let ev = eventloop.poll().await.map_err(|e| e.to_string());
            let failed = ev.is_err();
            if tx.send(ev).await.is_err() || failed {
                return;
            }
        }
    });
    (events, AbortOnDrop(poller))
}

/// Aborts the task it holds when dropped (a connection's event loop goes with the connection).
pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        let a = serde_json::json!({"kind": "watchlist_hit", "severity": "critical"});
        assert_eq!(topic("tianwang", &a), "tianwang/alerts/watchlist_hit/critical");
        assert_eq!(topic("t", &serde_json::json!({"kind": "a/b#"})), "t/alerts/a_b_/unknown");
    }
}
