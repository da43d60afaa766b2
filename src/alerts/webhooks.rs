//! Outbound webhooks from the durable outbox: every alert change is POSTed as JSON to every
//! configured receiver, at least once, in feed order per receiver as far as retries allow (the
//! body carries `seq` so a receiver can order and de-duplicate). A receiver that fails is retried
//! with exponential back-off (1 s doubling to 5 min, with jitter). The body is signed:
//! `X-Tianwang-Signature: sha256=<hex HMAC-SHA256 of the body with the receiver's secret>`.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::Clock;
use crate::registry::Registry;

/// A receiver.
#[derive(Clone)]
pub struct Webhook {
    pub name: String,
    pub url: String,
    /// Signing secret (from the environment variable the configuration names).
    pub secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook").field("name", &self.name).field("url", &self.url).finish_non_exhaustive()
    }
}

/// `sha256=<hex>` of the body.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable_mac());
    mac.update(body);
    let out = mac.finalize().into_bytes();
    format!("sha256={}", out.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// HMAC accepts keys of any length; this is never reached.
fn unreachable_mac() -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(b"k").expect("HMAC takes any key length")
}

/// Seconds to wait after `attempts` failures.
pub fn backoff_ms(attempts: i64, jitter: f64) -> i64 {
    let base = 1000i64.saturating_mul(1i64 << attempts.clamp(0, 20)).min(300_000);
    (base as f64 * (0.8 + 0.4 * jitter.clamp(0.0, 1.0))) as i64
}

/// Delivers due outbox rows until the returned handle is aborted.
pub fn spawn(registry: Registry, clock: Arc<dyn Clock>, hooks: Vec<Webhook>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = match reqwest::Client::builder().timeout(Duration::from_secs(5)).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhooks: cannot build an HTTP client; none will be delivered");
                return;
            }
        };
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let now = clock.now_ms();
            let due = match registry.outbox_due(now, 200).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "webhooks: cannot read the outbox");
                    continue;
                }
            };
            // One failure per receiver per round: later rows of a failing receiver wait.
            let mut failing: Vec<String> = Vec::new();
            for row in due {
                if failing.contains(&row.target) {
                    continue;
                }
                let result = match hooks.iter().find(|h| h.name == row.target) {
                    None => Err("no webhook of this name is configured any more".to_string()),
                    Some(h) => deliver(&client, h, row.seq, &row.payload).await,
                };
                let now = clock.now_ms();
                let outcome = result.map_err(|e| {
                    failing.push(row.target.clone());
                    let jitter = (now.rem_euclid(1000)) as f64 / 1000.0;
                    tracing::warn!(webhook = %row.target, seq = row.seq, attempts = row.attempts + 1, error = %e, "webhook delivery failed");
                    (e, now + backoff_ms(row.attempts, jitter))
                });
                if let Err(e) = registry.outbox_attempted(row.id, now, outcome).await {
                    tracing::error!(error = %e, "webhooks: cannot record a delivery");
                }
            }
        }
    })
}

async fn deliver(client: &reqwest::Client, h: &Webhook, seq: i64, payload: &str) -> Result<(), String> {
    let mut req = client
        .post(&h.url)
        .header("content-type", "application/json")
        .header("x-tianwang-seq", seq.to_string())
        .body(payload.to_string());
    if let Some(secret) = &h.secret {
        req = req.header("x-tianwang-signature", signature(secret, payload.as_bytes()));
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("{} answered {}", h.url, r.status())),
        Err(e) => Err(format!(
            "{}: {}",
            h.url,
            if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                "connection failed".to_string()
            } else {
                "request failed".to_string()
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(0, 0.5), 1000);
        assert_eq!(backoff_ms(3, 0.5), 8000);
        assert_eq!(backoff_ms(30, 0.5), 300_000);
        assert!(backoff_ms(2, 0.0) < backoff_ms(2, 1.0));
    }
}
