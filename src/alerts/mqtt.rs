//! MQTT publishing of alert changes to a configured broker (Mosquitto here): the change feed is
//! read from the store after the publisher's own cursor, so nothing is skipped across restarts or
//! broker outages. Topic `<prefix>/alerts/<kind>/<severity>`, payload the same JSON as webhooks
//! (`{"seq", "change", "at_ms", "alert": {…}}`), QoS 1, not retained. The cursor advances when a
//! message is handed to the client; a crash between the two can repeat a message (at least once).

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, QoS};

use crate::registry::Registry;

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

/// Publishes the feed until the handle is aborted.
pub fn spawn(registry: Registry, target: MqttTarget) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut opts = MqttOptions::new(&target.client_id, &target.host, target.port);
        opts.set_keep_alive(Duration::from_secs(15));
        let (client, mut events) = AsyncClient::new(opts, 256);
        let (connected_tx, mut connected) = tokio::sync::watch::channel(false);
        let host = format!("{}:{}", target.host, target.port);
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                        tracing::info!(broker = %host, "MQTT connected");
                        connected_tx.send_replace(true);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        connected_tx.send_replace(false);
                        tracing::warn!(broker = %host, error = %e, "MQTT connection lost; retrying in 2 s");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
        });
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            if !*connected.borrow_and_update() {
                let _ = connected.wait_for(|c| *c).await;
            }
            let after = match registry.cursor("mqtt").await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "MQTT: cannot read the cursor");
                    continue;
                }
            };
            let rows = match registry.feed_after(after, 200).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "MQTT: cannot read the alert feed");
                    continue;
                }
            };
            for r in rows {
                let payload = serde_json::json!({"seq": r.seq, "change": r.change, "at_ms": r.at_ms, "alert": r.alert})
                    .to_string();
                if let Err(e) =
                    client.publish(topic(&target.topic_prefix, &r.alert), QoS::AtLeastOnce, false, payload).await
                {
                    tracing::warn!(error = %e, "MQTT: publish failed; will retry");
                    break;
                }
                if let Err(e) = registry.set_cursor("mqtt", r.seq).await {
                    tracing::error!(error = %e, "MQTT: cannot store the cursor");
                    break;
                }
            }
        }
    })
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
