//! Motion from the camera itself: for each camera whose entry says `motion = "onvif"`, a task
//! subscribes to the device's ONVIF events by pull point (`onvif::PullPoint`) and turns motion
//! notifications into the same `motion` events the detector writes, for the whole view (zone
//! `*`), so armed zones raise alerts from them unchanged. See docs/DEVICES.md.
//!
//! One task per camera: find the events service (GetServices, GetCapabilities), subscribe, pull
//! (a long poll on the device), renew at two thirds of the time the device grants (a device
//! without Renew gets a fresh subscription instead), and on any failure (a fault, a forgotten
//! subscription, a restarted device, a dropped connection, an answer that is no SOAP) start over
//! after a back-off that doubles from `Timing::retry_min` to `Timing::retry_max`. Stopping (the
//! camera removed, disabled or changed; shutdown) unsubscribes. Notifications are debounced: a
//! motion event when the device's motion goes from off to on, none for repeated "on"s.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::clock::Clock;
use crate::config::{CameraConfig, MotionSource, SecretRef};
use crate::events::{Event, EventLog, Motion, NewEvent};
use crate::onvif::{Credentials, Device, Notification, PullPoint, device_service_url};

/// The zone ONVIF motion is reported in: the whole view, as the detector names it.
pub const ZONE: &str = "*";

/// How the subscriptions are timed.
#[derive(Debug, Clone)]
pub struct Timing {
    /// The subscription lifetime asked for (devices may grant less; renewed at 2/3 of what they grant).
    pub lifetime: Duration,
    /// How long one PullMessages waits on the device for notifications.
    pub pull_wait: Duration,
    /// Back-off after a failure: from `retry_min`, doubling up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            lifetime: Duration::from_secs(60),
            pull_wait: Duration::from_secs(10),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    }
}

/// Notifications taken per PullMessages.
const MESSAGE_LIMIT: u32 = 64;

/// Where a camera's subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionState {
    /// Finding the events service and subscribing.
    Connecting,
    /// Subscribed and pulling.
    Subscribed,
    /// The last attempt failed (`last_error`); the next is at `next_attempt_ms`.
    Retrying,
}

/// One camera's ONVIF motion subscription, as `GET /api/v1/stats` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OnvifMotionStatus {
    pub camera: String,
    /// The device service subscribed at (never with credentials).
    pub device: String,
    pub state: SubscriptionState,
    /// The last failure, naming the device and the operation (never the password).
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    /// While retrying: when the next attempt is.
    pub next_attempt_ms: Option<i64>,
    /// When the current subscription was made.
    pub subscribed_ms: Option<i64>,
    /// Subscriptions made (the first, and each after a failure or in place of a Renew).
    pub subscriptions: u64,
    pub renewals: u64,
    /// When the device last sent a notification (any topic).
    pub last_notification_ms: Option<i64>,
    /// The device reports motion now.
    pub motion: bool,
    /// Motion events written (one per start of motion).
    pub motion_events: u64,
}

/// What a camera subscribes with; a change restarts its task.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    camera: String,
    device_url: String,
    username: Option<String>,
    password: Option<SecretRef>,
}

struct Running {
    target: Target,
    status: Arc<Mutex<OnvifMotionStatus>>,
    stop: CancellationToken,
    handle: JoinHandle<()>,
}

struct Inner {
    log: Arc<dyn EventLog>,
    clock: Arc<dyn Clock>,
    timing: Timing,
    cams: Mutex<HashMap<String, Running>>,
    /// Tasks told to stop and not yet awaited (they unsubscribe first).
    stopping: Mutex<Vec<JoinHandle<()>>>,
}

/// The ONVIF motion subscribers of the cameras this node runs.
#[derive(Clone)]
pub struct OnvifMotion {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl OnvifMotion {
    pub fn new(log: Arc<dyn EventLog>, clock: Arc<dyn Clock>, timing: Timing) -> Self {
        let inner = Inner { log, clock, timing, cams: Mutex::new(HashMap::new()), stopping: Mutex::new(Vec::new()) };
        Self { inner: Arc::new(inner) }
    }

    /// Runs a subscriber for every enabled camera of `cameras` with `motion = "onvif"`: starts
    /// the new ones, restarts those whose device or credentials changed, stops (unsubscribing)
    /// the others. Call on a tokio runtime.
    pub fn sync(&self, cameras: &[CameraConfig]) {
        let want: HashMap<String, Target> = cameras
            .iter()
            .filter(|c| c.enabled)
            .filter_map(|c| match &c.motion {
                MotionSource::Onvif { device_url } => Some(Target {
                    camera: c.id.as_str().to_string(),
                    device_url: device_url.clone(),
                    username: c.username.clone(),
                    password: c.password.clone(),
                }),
                _ => None,
            })
            .map(|t| (t.camera.clone(), t))
            .collect();
        let mut cams = lock(&self.inner.cams);
        let gone: Vec<String> =
            cams.iter().filter(|(id, r)| want.get(*id) != Some(&r.target)).map(|(id, _)| id.clone()).collect();
        for id in gone {
            if let Some(r) = cams.remove(&id) {
                r.stop.cancel();
                lock(&self.inner.stopping).push(r.handle);
            }
        }
        for (id, target) in want {
            if cams.contains_key(&id) {
                continue;
            }
            let status = Arc::new(Mutex::new(OnvifMotionStatus {
                camera: id.clone(),
                device: target.device_url.clone(),
                state: SubscriptionState::Connecting,
                last_error: None,
                last_error_ms: None,
                next_attempt_ms: None,
                subscribed_ms: None,
                subscriptions: 0,
                renewals: 0,
                last_notification_ms: None,
                motion: false,
                motion_events: 0,
            }));
            let stop = CancellationToken::new();
            let task = Subscriber { inner: self.inner.clone(), target: target.clone(), status: status.clone() };
            let handle = tokio::spawn(task.run(stop.clone()));
            cams.insert(id, Running { target, status, stop, handle });
        }
    }

    /// Every subscription's state, by camera id.
    pub fn status(&self) -> Vec<OnvifMotionStatus> {
        let mut v: Vec<OnvifMotionStatus> = lock(&self.inner.cams).values().map(|r| lock(&r.status).clone()).collect();
        v.sort_by(|a, b| a.camera.cmp(&b.camera));
        v
    }

    /// Stops every subscriber and waits for them (each unsubscribes, for up to 5 s).
    pub async fn shutdown(&self) {
        let mut handles: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.inner.stopping));
        for (_, r) in lock(&self.inner.cams).drain() {
            r.stop.cancel();
            handles.push(r.handle);
        }
        for h in handles {
            if let Err(e) = h.await {
                tracing::error!(error = %e, "an ONVIF motion subscriber failed");
            }
        }
    }
}

/// How a session with the device ended.
enum End {
    Stopped,
    /// `subscribed`: a subscription was made first (the back-off starts over).
    Failed {
        subscribed: bool,
        error: String,
    },
}

/// Motion on or off per (topic, source): motion starts when the first goes on, and lasts until
/// all are off again.
#[derive(Default)]
struct Debounce {
    on: BTreeSet<String>,
}

impl Debounce {
    /// Takes one notification; true when it starts motion.
    fn take(&mut self, n: &Notification) -> bool {
        let Some(moving) = n.motion() else { return false };
        let key = format!("{}{:?}", n.topic, n.source);
        let was_still = self.on.is_empty();
        if moving {
            self.on.insert(key);
        } else {
            self.on.remove(&key);
        }
        was_still && !self.on.is_empty()
    }
}

/// One camera's subscriber task.
struct Subscriber {
    inner: Arc<Inner>,
    target: Target,
    status: Arc<Mutex<OnvifMotionStatus>>,
}

/// `fut`, unless `stop` comes first.
async fn unless<T>(stop: &CancellationToken, fut: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        _ = stop.cancelled() => None,
        v = fut => Some(v),
    }
}

impl Subscriber {
    fn set(&self, f: impl FnOnce(&mut OnvifMotionStatus)) {
        f(&mut lock(&self.status));
    }

    async fn run(self, stop: CancellationToken) {
        let t = &self.inner.timing;
        let mut wait = t.retry_min;
        loop {
            let (subscribed, error) = match self.session(&stop).await {
                End::Stopped => return,
                End::Failed { subscribed, error } => (subscribed, error),
            };
            if subscribed {
                wait = t.retry_min;
            }
            let now = self.inner.clock.now_ms();
            tracing::warn!(
                camera = %self.target.camera,
                error = %error,
                "ONVIF motion events: {}; subscribing again in {} s",
                if subscribed { "the subscription ended" } else { "cannot subscribe" },
                wait.as_secs_f64()
            );
            self.set(|s| {
                s.state = SubscriptionState::Retrying;
                s.last_error = Some(error);
                s.last_error_ms = Some(now);
                s.next_attempt_ms = Some(now + wait.as_millis() as i64);
                s.subscribed_ms = None;
                s.motion = false;
            });
            if unless(&stop, self.inner.clock.sleep(wait)).await.is_none() {
                return;
            }
            wait = (wait * 2).min(t.retry_max);
        }
    }

    /// The device at the target's address, signed in with the camera's credentials (the
    /// password read now: a changed file is taken at the next subscription).
    fn device(&self) -> Result<Device, String> {
        let t = &self.target;
        let creds = match (&t.username, &t.password) {
            (Some(username), Some(secret)) => Some(Credentials {
                username: username.clone(),
                password: secret.resolve().map_err(|e| format!("the camera's password: {e}"))?,
            }),
            // No password: the requests go unsigned (a device that allows anonymous events).
            _ => None,
        };
        let url = device_service_url(&t.device_url).map_err(|e| e.to_string())?;
        // Longer than a pull's wait on the device.
        Device::new(url, creds, self.inner.timing.pull_wait + Duration::from_secs(10)).map_err(|e| e.to_string())
    }

    /// Subscribes and pulls until the subscription fails or `stop`.
    async fn session(&self, stop: &CancellationToken) -> End {
        let fail = |error: String| End::Failed { subscribed: false, error };
        self.set(|s| {
            s.state = SubscriptionState::Connecting;
            s.next_attempt_ms = None;
        });
        let mut dev = match self.device() {
            Ok(d) => d,
            Err(e) => return fail(e),
        };
        let t = &self.inner.timing;
        // The device's clock, for the token's time (a device that does not say is taken as ours).
        match unless(stop, dev.sync_clock()).await {
            None => return End::Stopped,
            Some(Err(
                e @ (crate::onvif::OnvifError::Unreachable { .. } | crate::onvif::OnvifError::NotOnvif { .. }),
            )) => {
                return fail(e.to_string());
            }
            Some(_) => {}
        }
        let events = match unless(stop, dev.services()).await {
            None => return End::Stopped,
            Some(Err(e)) => return fail(e.to_string()),
            Some(Ok(s)) => match s.events {
                Some(e) => e,
                None => return fail(format!("{}: the device lists no events service", dev.url())),
            },
        };
        let mut pp = match unless(stop, PullPoint::create(&dev, &events, t.lifetime)).await {
            None => return End::Stopped,
            Some(Err(e)) => return fail(e.to_string()),
            Some(Ok(pp)) => pp,
        };
        self.subscribed(&pp);
        tracing::info!(camera = %self.target.camera, device = %self.target.device_url, "subscribed to ONVIF motion events");
        let ended = self.pull_loop(&dev, &events, &mut pp, stop).await;
        // Either way the device is told, briefly (it ends the subscription at its time anyway,
        // but a failed one may hold one of the few a camera allows until then).
        let patience = Duration::from_secs(if ended.is_ok() { 5 } else { 2 });
        match tokio::time::timeout(patience, pp.unsubscribe()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(camera = %self.target.camera, error = %e, "ONVIF Unsubscribe failed"),
            Err(_) => tracing::debug!(camera = %self.target.camera, "ONVIF Unsubscribe: no answer in time"),
        }
        match ended {
            Ok(()) => End::Stopped,
            Err(error) => End::Failed { subscribed: true, error },
        }
    }

    /// Renews and pulls `pp` until `stop` (`Ok`) or a failure (`Err`, what it was).
    async fn pull_loop(
        &self,
        dev: &Device,
        events: &str,
        pp: &mut PullPoint,
        stop: &CancellationToken,
    ) -> Result<(), String> {
        let t = &self.inner.timing;
        let mut renew_at = self.inner.clock.now_ms() + self.renew_in(pp);
        // A new subscription tells the state afresh (ONVIF's `Initialized` messages).
        let mut debounce = Debounce::default();
        loop {
            let now = self.inner.clock.now_ms();
            // Due, or due before the shortest pull would end.
            if now + 1_000 >= renew_at {
                match unless(stop, pp.renew(t.lifetime)).await {
                    None => return Ok(()),
                    Some(Ok(())) => {
                        renew_at = now + self.renew_in(pp);
                        self.set(|s| s.renewals += 1);
                    }
                    // A device without Renew: a new subscription in place of this one.
                    Some(Err(e)) if e.not_supported() => {
                        let fresh = match unless(stop, PullPoint::create(dev, events, t.lifetime)).await {
                            None => return Ok(()),
                            Some(r) => r.map_err(|e| e.to_string())?,
                        };
                        let old = std::mem::replace(pp, fresh);
                        let _ = tokio::time::timeout(Duration::from_secs(5), old.unsubscribe()).await;
                        renew_at = self.subscribed(pp);
                    }
                    Some(Err(e)) => return Err(e.to_string()),
                }
            }
            let until_renewal = Duration::from_millis((renew_at - now).max(0) as u64);
            let wait = until_renewal.clamp(Duration::from_secs(1), t.pull_wait);
            let notes = match unless(stop, pp.pull(wait, MESSAGE_LIMIT)).await {
                None => return Ok(()),
                Some(r) => r.map_err(|e| e.to_string())?,
            };
            let at = self.inner.clock.now_ms();
            if notes.is_empty() && at - now < 500 {
                // A device that answers at once instead of waiting: not asked again at once.
                if unless(stop, self.inner.clock.sleep(Duration::from_secs(1))).await.is_none() {
                    return Ok(());
                }
            }
            for n in &notes {
                let started = debounce.take(n);
                self.set(|s| {
                    s.last_notification_ms = Some(at);
                    s.motion = !debounce.on.is_empty();
                });
                if started && !self.write(at, stop).await {
                    return Ok(());
                }
            }
        }
    }

    /// A subscription made: the state says so; returns when to renew it.
    fn subscribed(&self, pp: &PullPoint) -> i64 {
        let now = self.inner.clock.now_ms();
        self.set(|s| {
            s.state = SubscriptionState::Subscribed;
            s.subscribed_ms = Some(now);
            s.subscriptions += 1;
            s.motion = false;
        });
        now + self.renew_in(pp)
    }

    /// Milliseconds until a renewal is due: 2/3 of the time the device says is left (of the
    /// lifetime asked for when it does not say), at least one second.
    fn renew_in(&self, pp: &PullPoint) -> i64 {
        let left = pp.time_left.unwrap_or(self.inner.timing.lifetime);
        (left.as_millis() as i64 * 2 / 3).max(1_000)
    }

    /// Writes one motion event (tried again until stored, fenced off, or `stop`); false on stop.
    async fn write(&self, at_ms: i64, stop: &CancellationToken) -> bool {
        let camera = &self.target.camera;
        let event = NewEvent::new(
            at_ms,
            Some(format!("motion:{camera}:{ZONE}:{at_ms}")),
            Event::Motion(Motion { camera_id: camera.clone(), zone: ZONE.into(), boxes: Vec::new() }),
        );
        let mut wait = Duration::from_millis(100);
        loop {
            match self.inner.log.append(std::slice::from_ref(&event)).await {
                Ok(_) => {
                    self.set(|s| s.motion_events += 1);
                    return true;
                }
                Err(e) if e.fenced().is_some() => {
                    tracing::debug!(camera = %camera, "motion event not stored: the camera is no longer held here");
                    return true;
                }
                Err(e) => {
                    tracing::error!(camera = %camera, error = %e, "cannot store a motion event; trying again");
                    if unless(stop, self.inner.clock.sleep(wait)).await.is_none() {
                        return false;
                    }
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(topic: &str, source: &str, value: &str) -> Notification {
        let item = if topic.ends_with("MotionAlarm") { "State" } else { "IsMotion" };
        Notification {
            topic: topic.into(),
            utc_time: None,
            property_operation: Some("Changed".into()),
            source: vec![("Source".into(), source.into())],
            data: vec![(item.into(), value.into())],
        }
    }

    #[test]
    fn one_start_per_motion_whatever_repeats() {
        let alarm = "tns1:VideoSource/MotionAlarm";
        let cell = "tns1:RuleEngine/CellMotionDetector/Motion";
        let mut d = Debounce::default();
        assert!(d.take(&note(alarm, "1", "true")));
        assert!(!d.take(&note(alarm, "1", "true")), "a repeated true is the same motion");
        assert!(!d.take(&note(cell, "1", "true")), "the other topic on the same motion");
        assert!(!d.take(&note(alarm, "1", "false")), "still moving by the cell detector");
        assert!(!d.take(&note(cell, "1", "false")));
        assert!(d.on.is_empty());
        assert!(!d.take(&note("tns1:Device/Trigger/DigitalInput", "1", "true")), "not a motion topic");
        assert!(!d.take(&note(alarm, "1", "false")), "off while off");
        assert!(d.take(&note(cell, "2", "1")), "a new motion");
    }
}
