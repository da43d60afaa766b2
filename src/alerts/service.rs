//! The alert service: one task owns the engine and applies its actions to the store in order;
//! every change is committed (with its feed row and outbox rows) before it is broadcast to live
//! SSE clients. Sources: camera status changes, the event log (ring opened/closed, ring
//! crossings, watchlist hits, …), alarm inputs over HTTP; the clock drives escalation and the
//! offline grace period.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::engine::{Action, Engine, EngineConfig, Occurrence, Severity, Signal};
use crate::clock::Clock;
use crate::registry::{AlertRow, FeedRow, Registry, RegistryError};

/// How often the clock is advanced and the event log read.
pub const TICK_MS: u64 = 500;

enum Input {
    Signal(Signal, Option<oneshot::Sender<Vec<AlertRow>>>),
    Stop(oneshot::Sender<()>),
}

/// A handle to the running service.
#[derive(Clone)]
pub struct AlertService {
    tx: mpsc::Sender<Input>,
    feed: broadcast::Sender<FeedRow>,
    registry: Registry,
    clock: Arc<dyn Clock>,
    targets: Arc<Vec<String>>,
    stats: Arc<std::sync::Mutex<super::engine::EngineStats>>,
    /// Set when the server shuts down: live streams end so that connections can close.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
}

impl AlertService {
    /// Restores open alerts into a fresh engine and starts the service task.
    pub async fn start(
        registry: Registry,
        clock: Arc<dyn Clock>,
        cfg: EngineConfig,
        targets: Vec<String>,
    ) -> Result<AlertService, RegistryError> {
        let mut engine = Engine::new(cfg);
        for a in registry.open_alerts().await? {
            let sev = Severity::parse(&a.severity).unwrap_or(Severity::Warning);
            engine.restore(
                &a.dedupe_key,
                &a.kind,
                sev,
                a.last_at_ms,
                a.count.clamp(0, u32::MAX as i64) as u32,
                a.status == "acknowledged",
                a.escalation_level.clamp(0, u32::MAX as i64) as u32,
                &a.cameras,
            );
        }
        let (tx, rx) = mpsc::channel(4096);
        let (feed, _) = broadcast::channel(1024);
        let svc = AlertService {
            tx,
            feed,
            registry,
            clock,
            targets: Arc::new(targets),
            stats: Arc::new(std::sync::Mutex::new(Default::default())),
            closing: Arc::new(tokio::sync::watch::channel(false).0),
        };
        tokio::spawn(svc.clone().run(engine, rx));
        Ok(svc)
    }

    /// Live feed rows, after they are committed.
    pub fn subscribe(&self) -> broadcast::Receiver<FeedRow> {
        self.feed.subscribe()
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn targets(&self) -> &[String] {
        &self.targets
    }

    pub fn stats(&self) -> super::engine::EngineStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Feeds a signal without waiting.
    pub async fn signal(&self, s: Signal) {
        let _ = self.tx.send(Input::Signal(s, None)).await;
    }

    /// Feeds a signal and waits until what it raised or changed is committed; returns those alerts.
    pub async fn signal_and_wait(&self, s: Signal) -> Vec<AlertRow> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Input::Signal(s, Some(tx))).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Stops the task after what is queued is applied.
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Input::Stop(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Ends every live stream (at shutdown).
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// Changes to `true` when live streams must end.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Publishes a feed row written outside the task (operator changes).
    pub fn publish(&self, row: FeedRow) {
        let _ = self.feed.send(row);
    }

    async fn run(self, mut engine: Engine, mut rx: mpsc::Receiver<Input>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                input = rx.recv() => match input {
                    Some(Input::Signal(s, reply)) => {
                        let actions = engine.signal(s);
                        self.copy_stats(&engine);
                        let rows = self.apply(actions).await;
                        if let Some(r) = reply {
                            let _ = r.send(rows);
                        }
                    }
                    Some(Input::Stop(done)) => {
                        let _ = done.send(());
                        return;
                    }
                    None => return,
                },
                _ = tick.tick() => {
                    self.read_events(&mut engine).await;
                    let actions = engine.tick(self.clock.now_ms());
                    self.copy_stats(&engine);
                    self.apply(actions).await;
                }
            }
        }
    }

    /// Publishes the engine's counters; called before the actions they count are told to anyone.
    fn copy_stats(&self, engine: &Engine) {
        if let Ok(mut s) = self.stats.lock() {
            *s = engine.stats.clone();
        }
    }

    /// Turns new rows of the event log into signals.
    async fn read_events(&self, engine: &mut Engine) {
        let after = match self.registry.cursor("alerts.events").await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the alert engine's event cursor");
                return;
            }
        };
        let events = match self.registry.events(None, after, 500).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the event log");
                return;
            }
        };
        let Some(last) = events.last().map(|e| e.id) else { return };
        for ev in events {
            let signal = match ev.kind.as_str() {
                "ring_closed" => {
                    // The ring's open alert resolves itself.
                    let key = format!("ring_opened:{}", ev.ring_id.as_deref().unwrap_or(""));
                    if let Ok(Some(a)) = self.registry.open_alert_by_key(&key).await {
                        let op = crate::registry::AlertOp::Resolve { note: "ring closed again".into() };
                        if let Ok((row, Some(seq))) =
                            self.registry.operate_alert(a.id, &op, "system", &self.targets, self.clock.now_ms()).await
                        {
                            self.publish(feed_row(seq, &row, "resolved", self.clock.now_ms()));
                        }
                    }
                    engine.signal(Signal::Resolved { key, at_ms: ev.at_ms });
                    continue;
                }
                "quality_cleared" => {
                    // The camera's fault alert resolves itself.
                    let check = ev.payload.get("check").and_then(|v| v.as_str()).unwrap_or("");
                    let key = format!("quality_fault:{}:{check}", ev.camera_id.as_deref().unwrap_or(""));
                    if let Ok(Some(a)) = self.registry.open_alert_by_key(&key).await {
                        let op = crate::registry::AlertOp::Resolve { note: "picture healthy again".into() };
                        if let Ok((row, Some(seq))) =
                            self.registry.operate_alert(a.id, &op, "system", &self.targets, self.clock.now_ms()).await
                        {
                            self.publish(feed_row(seq, &row, "resolved", self.clock.now_ms()));
                        }
                    }
                    engine.signal(Signal::Resolved { key, at_ms: ev.at_ms });
                    continue;
                }
                kind => Signal::Event(occurrence_of(kind, &ev)),
            };
            let actions = engine.signal(signal);
            self.copy_stats(engine);
            self.apply(actions).await;
        }
        if let Err(e) = self.registry.set_cursor("alerts.events", last).await {
            tracing::error!(error = %e, "cannot store the alert engine's event cursor");
        }
    }

    /// Persists actions, then broadcasts them. Returns the alerts touched.
    async fn apply(&self, actions: Vec<Action>) -> Vec<AlertRow> {
        let mut out = Vec::new();
        for a in actions {
            let now = self.clock.now_ms();
            let res = match &a {
                Action::Raise { occurrence: o, severity } => self
                    .registry
                    .raise_alert(
                        &crate::registry::NewAlert {
                            kind: &o.kind,
                            severity: severity.as_str(),
                            dedupe_key: &o.key,
                            title: &o.title,
                            cameras: &o.cameras,
                            grid_cell_id: o.grid_cell.as_deref(),
                            ring_id: o.ring_id.as_deref(),
                            detail: &o.detail,
                            at_ms: o.at_ms,
                        },
                        &self.targets,
                        now,
                    )
                    .await
                    .map(|(r, s)| Some((r, Some(s), "raised")))
                    .map_err(|e| e.to_string()),
                Action::Repeat { key, at_ms, count, renotify } => match self.open_id(key).await {
                    Some(id) => self
                        .registry
                        .repeat_alert(id, *at_ms, i64::from(*count), *renotify, &self.targets, now)
                        .await
                        .map(|(r, s)| Some((r, s, "repeated")))
                        .map_err(|e| e.to_string()),
                    None => Ok(None),
                },
                Action::Escalate { key, severity, level, .. } => match self.open_id(key).await {
                    Some(id) => self
                        .registry
                        .escalate_alert(id, severity.as_str(), i64::from(*level), &self.targets, now)
                        .await
                        .map(|(r, s)| Some((r, s, "escalated")))
                        .map_err(|e| e.to_string()),
                    None => Ok(None),
                },
                Action::Recovered { key, cameras, all_back, .. } => match self.open_id(key).await {
                    Some(id) => self
                        .registry
                        .recover_alert(id, cameras, *all_back, &self.targets, now)
                        .await
                        .map(|(r, s)| Some((r, s, if *all_back { "resolved" } else { "recovered" })))
                        .map_err(|e| e.to_string()),
                    None => Ok(None),
                },
            };
            match res {
                Ok(Some((row, seq, change))) => {
                    if let Some(seq) = seq {
                        self.publish(feed_row(seq, &row, change, now));
                    }
                    out.push(row);
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, action = ?a, "cannot store an alert change"),
            }
        }
        out
    }

    async fn open_id(&self, key: &str) -> Option<i64> {
        self.registry.open_alert_by_key(key).await.ok().flatten().map(|a| a.id)
    }
}

/// The feed row as broadcast (the same shape `feed_after` reads back).
pub fn feed_row(seq: i64, row: &AlertRow, change: &str, at_ms: i64) -> FeedRow {
    FeedRow {
        seq,
        alert_id: row.id,
        at_ms,
        change: change.into(),
        alert: serde_json::to_value(row).unwrap_or_default(),
    }
}

/// An event-log row as an occurrence.
fn occurrence_of(kind: &str, ev: &crate::registry::EventRow) -> Occurrence {
    let p = &ev.payload;
    let s = |k: &str| p.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let (key, title) = match kind {
        "ring_opened" => (
            format!("ring_opened:{}", ev.ring_id.as_deref().unwrap_or("")),
            format!("checkpoint ring {} open", s("name").unwrap_or_default()),
        ),
        "ring_crossing" => (
            format!(
                "ring_crossing:{}:{}",
                p.get("interception_id").map(|v| v.to_string()).unwrap_or_default(),
                s("checkpoint").unwrap_or_default()
            ),
            format!(
                "suspect vehicle {} crossed {} at {}",
                s("plate_no").unwrap_or_else(|| "(any)".into()),
                s("ring_name").unwrap_or_default(),
                s("checkpoint_name").unwrap_or_default()
            ),
        ),
        "watchlist_hit" => (
            format!("watchlist_hit:{}", s("plate_no").unwrap_or_default()),
            format!("watchlist hit {} at {}", s("plate_no").unwrap_or_default(), ev.camera_id.as_deref().unwrap_or("")),
        ),
        "quality_fault" => (
            format!("quality_fault:{}:{}", ev.camera_id.as_deref().unwrap_or(""), s("check").unwrap_or_default()),
            format!(
                "{} at {}",
                s("check").unwrap_or_default().replace('_', " "),
                ev.camera_id.as_deref().unwrap_or("")
            ),
        ),
        "motion" => (
            format!("motion:{}:{}", ev.camera_id.as_deref().unwrap_or(""), s("zone").unwrap_or_else(|| "*".into())),
            format!(
                "motion in {} at {}",
                s("zone").unwrap_or_else(|| "the view".into()),
                ev.camera_id.as_deref().unwrap_or("")
            ),
        ),
        other => (format!("{other}:{}", ev.camera_id.as_deref().unwrap_or("")), other.replace('_', " ")),
    };
    let mut cameras: Vec<String> = ev.camera_id.iter().cloned().collect();
    if let Some(down) = p.get("down").and_then(|d| d.as_array()) {
        cameras.extend(down.iter().filter_map(|c| c.as_str().map(str::to_string)));
    }
    Occurrence {
        kind: kind.into(),
        key,
        title,
        cameras,
        grid_cell: None,
        ring_id: ev.ring_id.clone(),
        detail: json!({"event_id": ev.id, "zone": p.get("zone"), "event": p}),
        at_ms: ev.at_ms,
    }
}
