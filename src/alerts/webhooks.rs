//! Outbound webhooks: every alert change is POSTed as JSON to every configured receiver, at
//! least once and in feed order. Each receiver is a consumer of the change feed with its own
//! acknowledged position (`webhook:<name>`) and its own task: a receiver that fails is retried
//! with exponential back-off (1 s doubling to 5 min, with jitter) on the same change, so later
//! changes never overtake it, and it never delays another receiver. A receiver configured for
//! the first time starts at the newest change. The body (`{"seq", "change", "at_ms", "alert"}`)
//! carries `seq` so a receiver can de-duplicate; it is signed:
//! `X-Tianwang-Signature: sha256=<hex HMAC-SHA256 of the body with the receiver's secret>`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use tokio_util::sync::CancellationToken;

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
        f.debug_struct("Webhook").field("name", &self.name).field("url", &shown(&self.url)).finish_non_exhaustive()
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

/// A receiver's delivery state, for stats.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct WebhookState {
    pub name: String,
    /// The last change delivered (feed `seq`).
    pub position: i64,
    /// Changes not yet delivered (at the last look).
    pub pending: i64,
    pub delivered: u64,
    /// Failed attempts in a row on the current change.
    pub failures: u32,
    pub last_error: Option<String>,
}

/// The receivers' states.
#[derive(Clone, Default)]
pub struct Webhooks {
    states: Arc<Mutex<Vec<WebhookState>>>,
}

impl Webhooks {
    pub fn states(&self) -> Vec<WebhookState> {
        self.states.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut WebhookState)) {
        if let Ok(mut v) = self.states.lock()
            && let Some(s) = v.iter_mut().find(|s| s.name == name)
        {
            f(s);
        }
    }
}

/// Starts one delivery task per receiver; they stop when `cancel` fires.
pub fn spawn(
    registry: Registry,
    feed: &tokio::sync::broadcast::Sender<crate::registry::FeedRow>,
    clock: Arc<dyn Clock>,
    hooks: Vec<Webhook>,
    active: crate::events::Active,
    cancel: CancellationToken,
) -> (Webhooks, Vec<tokio::task::JoinHandle<()>>) {
    let states = Webhooks::default();
    if let Ok(mut v) = states.states.lock() {
        *v = hooks.iter().map(|h| WebhookState { name: h.name.clone(), ..Default::default() }).collect();
    }
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(5)).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks: cannot build an HTTP client; none will be delivered");
            return (states, Vec::new());
        }
    };
    let tasks = hooks
        .into_iter()
        .map(|h| {
            let r = Receiver {
                registry: registry.clone(),
                client: client.clone(),
                clock: clock.clone(),
                states: states.clone(),
                cancel: cancel.clone(),
                active: active.clone(),
                hook: h,
            };
            tokio::spawn(r.run(feed.subscribe()))
        })
        .collect();
    (states, tasks)
}

struct Receiver {
    registry: Registry,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    states: Webhooks,
    cancel: CancellationToken,
    /// Deliveries run only on the node that writes alerts.
    active: crate::events::Active,
    hook: Webhook,
}

impl Receiver {
    async fn run(self, mut feed: tokio::sync::broadcast::Receiver<crate::registry::FeedRow>) {
        let consumer = format!("webhook:{}", self.hook.name);
        let mut active = self.active.clone();
        let mut resume = None;
        loop {
            if !*active.borrow_and_update() {
                // Another node delivers; when this one takes over it resumes from the store.
                if !crate::events::until_active(&mut active, &self.cancel).await {
                    return;
                }
                resume = None;
            }
            let mut position = match resume {
                Some(p) => p,
                None => match self.start_position(&consumer).await {
                    Some(p) => p,
                    None => return,
                },
            };
            resume = Some(position);
            let rows = match self.registry.feed_after(position, 100).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(webhook = %self.hook.name, error = %e, "webhooks: cannot read the change feed");
                    if self.pause(Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            };
            if let Ok(latest) = self.registry.latest_feed_seq().await {
                self.states.update(&self.hook.name, |s| s.pending = (latest - position).max(0));
            }
            if rows.is_empty() {
                // Woken by a new change, or every second (changes written by another process).
                tokio::select! {
                    _ = self.cancel.cancelled() => return,
                    _ = feed.recv() => {}
                    _ = active.changed() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            for row in rows {
                let payload =
                    serde_json::json!({"seq": row.seq, "change": row.change, "at_ms": row.at_ms, "alert": row.alert})
                        .to_string();
                if !self.deliver_until_done(row.seq, &payload).await {
                    return;
                }
                position = row.seq;
                if let Err(e) = self.registry.ack(&consumer, position).await {
                    // Delivered but not recorded: it may be delivered again (at least once).
                    tracing::error!(webhook = %self.hook.name, error = %e, "webhooks: cannot record a delivery");
                }
                resume = Some(position);
                self.states.update(&self.hook.name, |s| {
                    s.position = position;
                    s.delivered += 1;
                    s.failures = 0;
                    s.pending = (s.pending - 1).max(0);
                });
            }
        }
    }

    /// Where this receiver resumes; a new receiver starts at the newest change.
    async fn start_position(&self, consumer: &str) -> Option<i64> {
        loop {
            let found = match self.registry.acked(consumer).await {
                Ok(Some(p)) => Ok(p),
                Ok(None) => match self.registry.latest_feed_seq().await {
                    Ok(head) => self.registry.ack(consumer, head).await.map(|_| head),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match found {
                Ok(p) => {
                    self.states.update(&self.hook.name, |s| s.position = p);
                    return Some(p);
                }
                Err(e) => {
                    tracing::error!(webhook = %self.hook.name, error = %e, "webhooks: cannot read the receiver's position");
                    if self.pause(Duration::from_secs(1)).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Delivers one change, retrying with back-off until it is accepted; false when stopped.
    async fn deliver_until_done(&self, seq: i64, payload: &str) -> bool {
        let mut failures: i64 = 0;
        loop {
            match deliver(&self.client, &self.hook, seq, payload).await {
                Ok(()) => return true,
                Err(e) => {
                    let wait = backoff_ms(failures, rand::random::<f64>());
                    failures += 1;
                    tracing::warn!(webhook = %self.hook.name, seq, attempts = failures, retry_in_ms = wait, error = %e, "webhook delivery failed");
                    self.states.update(&self.hook.name, |s| {
                        s.failures = failures as u32;
                        s.last_error = Some(e.clone());
                    });
                    // The back-off runs on the app's clock (a test moves a simulated one).
                    let until = self.clock.now_ms().saturating_add(wait);
                    while self.clock.now_ms() < until {
                        if self.pause(Duration::from_millis(250)).await {
                            return false;
                        }
                    }
                }
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

/// A receiver's URL as errors and logs show it: no user info, no query (either may hold a token).
fn shown(url: &str) -> String {
    let masked = crate::config::mask_credentials(url);
    match masked.find(['?', '#']) {
        Some(i) => format!("{}?…", &masked[..i]),
        None => masked,
    }
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
        Ok(r) => Err(format!("{} answered {}", shown(&h.url), r.status())),
        Err(e) => Err(format!(
            "{}: {}",
            shown(&h.url),
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
    fn receiver_urls_are_shown_without_secrets() {
        assert_eq!(shown("http://u:p@desk:8080/hook?token=abc"), "http://***@desk:8080/hook?…");
        assert_eq!(shown("http://desk/hook"), "http://desk/hook");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(0, 0.5), 1000);
        assert_eq!(backoff_ms(3, 0.5), 8000);
        assert_eq!(backoff_ms(30, 0.5), 300_000);
        assert!(backoff_ms(2, 0.0) < backoff_ms(2, 1.0));
    }
}
