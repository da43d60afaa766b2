//! The alert service: the only writer of alerts. One task owns the engine and takes, in this
//! order of priority: operators' commands; the event log's urgent lane (alarms, watchlist hits,
//! ring crossings); its normal lane (camera status, rings); its bulk lane (motion, quality,
//! passages); and the clock (offline grace, escalation). A flood in a lower lane delays a higher
//! one by one batch at most.
//!
//! Events are applied in batches: the engine's decisions for a batch are made on a copy of it,
//! written with the batch's acknowledged position in one transaction, and only then does the
//! engine take the copy and the change feed hear of it. A failed write changes nothing: the batch
//! is tried again with back-off (smaller, if it keeps failing) and its events stay unacknowledged
//! until what they cause is stored. Operators' changes are written first and told to the engine
//! after.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::engine::{Action, Engine, EngineConfig, EngineStats, Restored, Signal};
use super::signals;
use crate::clock::Clock;
use crate::config::CameraStatus;
use crate::events::{EventLog, Lane, Position, Read};
use crate::registry::{
    ALERT_WRITER, AlertChangeError, AlertOp, AlertRow, AlertStatus, AlertWrite, CommandOutcome, FeedRow, NewAlert,
    Registry, RegistryError, RoleFence,
};

/// How often the clock is advanced and the log looked at when nothing wakes the service.
pub const TICK_MS: u64 = 500;
/// Events read per batch from a lane (the bulk lane reads more: its events are cheap).
const BATCH: u32 = 256;
const BULK_BATCH: u32 = 1024;
/// Back-off of a failed write: from, doubling to.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// Outcomes of recent events kept for a late `await_event`.
const RECENT: usize = 4096;
/// A standby follows the stored change feed this often (for the SSE clients, webhooks and MQTT
/// of its node), and a node waiting on a queued change looks at it this often.
const FOLLOW_MS: u64 = 250;
/// A change queued on a standby that no writer took within this long is cancelled.
const COMMAND_WAIT: Duration = Duration::from_secs(10);

/// Which node this is, and how long its hold on the alert writer's role lasts unless renewed.
/// One node of a city writes alerts; the others stand by, follow the stored change feed, and
/// queue operators' changes for the writer (see docs/CLUSTER.md).
#[derive(Debug, Clone)]
pub struct WriterRole {
    pub node: String,
    pub ttl_ms: i64,
}

impl Default for WriterRole {
    fn default() -> Self {
        WriterRole { node: "embedded".into(), ttl_ms: 15_000 }
    }
}

/// Whether this node writes alerts now.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct WriterState {
    pub node: String,
    /// This node holds the alert writer's role.
    pub active: bool,
    /// Its epoch, while it holds it.
    pub epoch: Option<i64>,
    /// Times this node took the role.
    pub activations: u64,
    /// Operators' changes this node queued for another writer, and those it applied for others.
    pub commands_queued: u64,
    pub commands_applied: u64,
}

/// The consumer name of a lane's acknowledged position.
pub fn consumer(lane: Lane) -> String {
    format!("alerts.{}", lane.as_str())
}

/// What became of an event.
#[derive(Debug, Clone)]
pub enum EventOutcome {
    /// The alerts it raised or changed, after they were stored.
    Alerts(Vec<AlertRow>),
    /// It raised nothing (its cameras are all in maintenance, its key is cooling down, its zone
    /// is not armed, …).
    Nothing,
    /// It was processed too long ago to remember.
    Forgotten,
}

/// The service's own counters.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ServiceStats {
    /// Events applied, per lane.
    pub events_urgent: u64,
    pub events_normal: u64,
    pub events_bulk: u64,
    /// Stored events that could not be read (unknown kind, malformed payload): skipped, kept.
    pub undecodable: u64,
    /// Writes that failed and were tried again.
    pub write_failures: u64,
    /// A write is failing now (the service is retrying it).
    pub retrying: bool,
    pub last_write_error: Option<String>,
    /// Events appended but not yet applied, per lane (at the last look).
    pub lag_urgent: i64,
    pub lag_normal: i64,
    pub lag_bulk: i64,
}

enum Command {
    Operate { id: i64, op: AlertOp, actor: String, reply: oneshot::Sender<Result<AlertRow, AlertChangeError>> },
    Await { position: Position, lane: Lane, reply: oneshot::Sender<EventOutcome> },
}

/// A handle to the running service.
#[derive(Clone)]
pub struct AlertService {
    tx: mpsc::Sender<Command>,
    feed: broadcast::Sender<FeedRow>,
    registry: Registry,
    log: Arc<dyn EventLog>,
    engine_stats: Arc<Mutex<EngineStats>>,
    stats: Arc<Mutex<ServiceStats>>,
    writer: Arc<Mutex<WriterState>>,
    active: tokio::sync::watch::Receiver<bool>,
    clock: Arc<dyn Clock>,
}

impl AlertService {
    /// Restores the engine from the store (open alerts, cooldowns, cameras in maintenance or
    /// offline without an alert yet) and starts the service task; it stops when `cancel` fires.
    pub async fn start(
        registry: Registry,
        log: Arc<dyn EventLog>,
        clock: Arc<dyn Clock>,
        cfg: EngineConfig,
        role: WriterRole,
        cancel: CancellationToken,
    ) -> Result<(AlertService, tokio::task::JoinHandle<()>), RegistryError> {
        let now = clock.now_ms();
        let epoch = registry.hold_role(ALERT_WRITER, &role.node, None, now, role.ttl_ms).await?;
        let engine = restore(&registry, now, cfg.clone()).await?;
        let mut cursors = HashMap::new();
        for lane in Lane::ALL {
            let at = log.acked(&consumer(lane)).await.map_err(|e| RegistryError::Invalid(e.to_string()))?;
            cursors.insert(lane, at.unwrap_or(0));
        }
        let feed_seen = registry.latest_feed_seq().await?;
        let (tx, rx) = mpsc::channel(1024);
        let (feed, _) = broadcast::channel(1024);
        let (active_tx, active) = tokio::sync::watch::channel(epoch.is_some());
        let writer = WriterState {
            node: role.node.clone(),
            active: epoch.is_some(),
            epoch,
            activations: u64::from(epoch.is_some()),
            ..Default::default()
        };
        let svc = AlertService {
            tx,
            feed,
            registry,
            log,
            engine_stats: Arc::new(Mutex::new(engine.stats.clone())),
            stats: Arc::new(Mutex::new(ServiceStats::default())),
            writer: Arc::new(Mutex::new(writer)),
            active,
            clock: clock.clone(),
        };
        if epoch.is_some() {
            tracing::info!(node = %role.node, epoch, "this node writes alerts");
        } else {
            tracing::info!(node = %role.node, "another node writes alerts; this one stands by");
        }
        let task = Task {
            svc: svc.clone(),
            clock,
            engine,
            cursors,
            waiters: HashMap::new(),
            recent: VecDeque::new(),
            retry: None,
            limit: HashMap::new(),
            cfg,
            epoch,
            role_expires: now.saturating_add(role.ttl_ms),
            next_role: tokio::time::Instant::now() + role_period(&role),
            role,
            feed_seen,
            active_tx,
        };
        let handle = tokio::spawn(task.run(rx, cancel));
        Ok((svc, handle))
    }

    /// Whether this node writes alerts now (changes when it takes or loses the role).
    pub fn active(&self) -> tokio::sync::watch::Receiver<bool> {
        self.active.clone()
    }

    pub fn writer(&self) -> WriterState {
        self.writer.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The live feed's sender (for consumers that subscribe when they start).
    pub fn feed(&self) -> &broadcast::Sender<FeedRow> {
        &self.feed
    }

    /// Live feed rows, after they are committed, in feed order.
    pub fn subscribe(&self) -> broadcast::Receiver<FeedRow> {
        self.feed.subscribe()
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    pub fn engine_stats(&self) -> EngineStats {
        self.engine_stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn stats(&self) -> ServiceStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// An operator's change: written, then told to the engine. On a node that does not write
    /// alerts it is queued for the writer, which applies it in order with its own changes, and
    /// its outcome is awaited (cancelled after 10 s without a writer). Fails when the service
    /// stopped.
    pub async fn operate(&self, id: i64, op: AlertOp, actor: &str) -> Result<AlertRow, AlertChangeError> {
        let (reply, rx) = oneshot::channel();
        let stopped = || AlertChangeError::Registry(RegistryError::Invalid("the alert service is stopping".into()));
        self.tx.send(Command::Operate { id, op, actor: actor.to_string(), reply }).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Queues a change for the writer and waits for its outcome.
    async fn queue(&self, id: i64, op: AlertOp, actor: String) -> Result<AlertRow, AlertChangeError> {
        let r = &self.registry;
        let cmd = r.queue_alert_command(id, &op, &actor, self.clock.now_ms()).await?;
        if let Ok(mut w) = self.writer.lock() {
            w.commands_queued += 1;
        }
        let deadline = tokio::time::Instant::now() + COMMAND_WAIT;
        loop {
            let outcome = match r.alert_command_outcome(cmd).await? {
                Some(o) => o,
                None if tokio::time::Instant::now() >= deadline => {
                    if r.finish_alert_command(cmd, &CommandOutcome::Cancelled, self.clock.now_ms()).await? {
                        return Err(AlertChangeError::Registry(RegistryError::Invalid(format!(
                            "no alert writer took the change within {} s; nothing was changed",
                            COMMAND_WAIT.as_secs()
                        ))));
                    }
                    continue;
                }
                None => {
                    tokio::time::sleep(Duration::from_millis(FOLLOW_MS / 2)).await;
                    continue;
                }
            };
            return match outcome {
                CommandOutcome::Done => r.get_alert(id).await?.ok_or(AlertChangeError::NotFound(id)),
                CommandOutcome::NotFound => Err(AlertChangeError::NotFound(id)),
                CommandOutcome::Conflict { status, what } => {
                    Err(AlertChangeError::Conflict { id, status: status.parse().unwrap_or(AlertStatus::New), what })
                }
                CommandOutcome::Failed { error } => Err(AlertChangeError::Registry(RegistryError::Invalid(error))),
                CommandOutcome::Cancelled => Err(AlertChangeError::Registry(RegistryError::Invalid(
                    "the change was cancelled; nothing was changed".into(),
                ))),
            };
        }
    }

    /// Waits up to `timeout` for the event at `position` (of `lane`) to be applied; `None` when
    /// it is not yet (it stays in the log and will be).
    pub async fn await_event(&self, position: Position, lane: Lane, timeout: Duration) -> Option<EventOutcome> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Await { position, lane, reply }).await.ok()?;
        tokio::time::timeout(timeout, rx).await.ok()?.ok()
    }
}

/// A fresh engine with what the store knows.
async fn restore(registry: &Registry, now: i64, cfg: EngineConfig) -> Result<Engine, RegistryError> {
    let since = now.saturating_sub(cfg.longest_cooldown_ms());
    let mut engine = Engine::new(cfg);
    let mut alerted = std::collections::HashSet::new();
    for a in registry.open_alerts().await? {
        alerted.extend(a.cameras.iter().cloned());
        engine.restore(&Restored {
            key: a.dedupe_key,
            kind: a.kind,
            severity: a.severity,
            last_ms: a.last_at_ms,
            count: a.count.clamp(0, u32::MAX as i64) as u32,
            acknowledged: a.status == AlertStatus::Acknowledged,
            level: a.escalation_level.clamp(0, u32::MAX as i64) as u32,
            cameras: a.cameras,
        });
    }
    for (key, kind, at) in registry.resolved_since(since).await? {
        engine.restore_resolved(&key, kind, at);
    }
    for id in registry.cameras_with_status(CameraStatus::Maintenance).await? {
        engine.signal(Signal::Maintenance { camera: id, on: true });
    }
    // Cameras that went offline before the restart and had not raised yet wait out the rest of
    // their grace period.
    for c in registry.cameras_in_status(CameraStatus::Offline).await? {
        if !alerted.contains(&c.id) {
            engine.signal(Signal::CameraDown {
                camera: c.id,
                name: c.name,
                grid_cell: c.grid_cell_id,
                reason: c.status_reason,
                at_ms: c.status_since_ms,
            });
        }
    }
    Ok(engine)
}

struct Task {
    svc: AlertService,
    clock: Arc<dyn Clock>,
    engine: Engine,
    /// Applied (and acknowledged) position per lane.
    cursors: HashMap<Lane, Position>,
    waiters: HashMap<Position, Vec<oneshot::Sender<EventOutcome>>>,
    recent: VecDeque<(Position, EventOutcome)>,
    /// After a failed write: when to try again, and the failures in a row.
    retry: Option<(tokio::time::Instant, u32)>,
    /// Batch size per lane while a write keeps failing (halved each time: a poisoned event ends
    /// up alone).
    limit: HashMap<Lane, u32>,
    cfg: EngineConfig,
    role: WriterRole,
    /// The epoch of the alert writer's role while this node holds it (`None`: standing by).
    epoch: Option<i64>,
    /// When the hold lapses unless renewed, and when to renew it.
    role_expires: i64,
    next_role: tokio::time::Instant,
    /// The last feed row this node's live feed carried.
    feed_seen: i64,
    active_tx: tokio::sync::watch::Sender<bool>,
}

fn role_period(role: &WriterRole) -> Duration {
    Duration::from_millis((role.ttl_ms / 4).max(50) as u64)
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>, cancel: CancellationToken) {
        use tokio::time::Instant;
        let mut appended = self.svc.log.appended();
        let tick = Duration::from_millis(TICK_MS);
        let mut next_tick = Instant::now();
        loop {
            while let Ok(cmd) = rx.try_recv() {
                self.command(cmd).await;
            }
            if cancel.is_cancelled() {
                self.release().await;
                return;
            }
            if Instant::now() >= self.next_role {
                self.keep_role().await;
            }
            if self.epoch.is_none() {
                // Standing by: the stored feed is this node's live feed.
                self.follow_feed().await;
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return,
                    cmd = rx.recv() => match cmd {
                        Some(cmd) => self.command(cmd).await,
                        None => return,
                    },
                    _ = tokio::time::sleep(Duration::from_millis(FOLLOW_MS)) => {}
                }
                continue;
            }
            let waiting = self.retry.is_some_and(|(at, _)| Instant::now() < at);
            if !waiting && Instant::now() >= next_tick {
                next_tick = Instant::now() + tick;
                self.tick().await;
                self.update_lag().await;
                continue;
            }
            if !waiting && self.step().await {
                continue;
            }
            let wake = self.retry.map_or(next_tick, |(at, _)| at).min(self.next_role);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    self.release().await;
                    return;
                }
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd).await,
                    None => return,
                },
                _ = appended.changed(), if !waiting => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Operate { id, op, actor, reply } => {
                if self.epoch.is_none() {
                    // Another node writes alerts: queued for it, answered when it has.
                    let svc = self.svc.clone();
                    tokio::spawn(async move {
                        let _ = reply.send(svc.queue(id, op, actor).await);
                    });
                    return;
                }
                let res = self.operate(id, &op, &actor, None).await;
                let _ = reply.send(res);
            }
            Command::Await { position, lane, reply } => {
                if self.epoch.is_none() {
                    // Not applied here: the caller hears "not yet" (the writer applies it).
                    return;
                }
                if position <= self.cursors.get(&lane).copied().unwrap_or(0) {
                    let known = self.recent.iter().rev().find(|(p, _)| *p == position).map(|(_, o)| o.clone());
                    let _ = reply.send(known.unwrap_or(EventOutcome::Forgotten));
                } else {
                    self.waiters.entry(position).or_default().push(reply);
                }
            }
        }
    }

    /// An operator's change (from this node, or queued by another as `command`): written with
    /// this node's fence, then told to the engine and the feed.
    async fn operate(
        &mut self,
        id: i64,
        op: &AlertOp,
        actor: &str,
        command: Option<i64>,
    ) -> Result<AlertRow, AlertChangeError> {
        self.fresh_role().await;
        let now = self.clock.now_ms();
        let fence = self.fence();
        let res = self.svc.registry.operate_alert(id, op, actor, now, fence.as_ref(), command).await;
        match &res {
            Ok((row, feed)) => {
                match op {
                    AlertOp::Acknowledge => {
                        self.engine.signal(Signal::Acknowledged { key: row.dedupe_key.clone() });
                    }
                    AlertOp::Resolve { .. } => {
                        self.engine.signal(Signal::Resolved { key: row.dedupe_key.clone(), at_ms: now });
                    }
                    AlertOp::Assign { .. } | AlertOp::Comment { .. } | AlertOp::Dispatch { .. } => {}
                }
                self.publish_stats();
                self.broadcast(feed.clone());
            }
            Err(AlertChangeError::Registry(RegistryError::NotHolder { .. })) => {
                self.deactivate("another node took the alert writer's role").await;
            }
            Err(_) => {}
        }
        res.map(|(row, _)| row)
    }

    /// Applies the changes other nodes queued, in order.
    async fn queued(&mut self) {
        let now = self.clock.now_ms();
        let pending = match self.svc.registry.pending_alert_commands(64, now).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the queued alert changes; trying again");
                return;
            }
        };
        for c in pending {
            if self.epoch.is_none() {
                return;
            }
            match self.operate(c.alert_id, &c.op, &c.actor, Some(c.id)).await {
                Ok(_) => {
                    if let Ok(mut w) = self.svc.writer.lock() {
                        w.commands_applied += 1;
                    }
                }
                Err(AlertChangeError::Registry(RegistryError::NotHolder { .. })) => return,
                Err(e) => {
                    let outcome = CommandOutcome::of(&e);
                    if let Err(e) = self.svc.registry.finish_alert_command(c.id, &outcome, self.clock.now_ms()).await {
                        tracing::warn!(command = c.id, error = %e, "cannot record a queued change's outcome");
                    }
                }
            }
        }
    }

    fn fence(&self) -> Option<RoleFence> {
        self.epoch.map(|epoch| RoleFence { role: ALERT_WRITER.into(), node: self.role.node.clone(), epoch })
    }

    /// A feed row on this node's live feed.
    fn broadcast(&mut self, row: FeedRow) {
        self.feed_seen = self.feed_seen.max(row.seq);
        let _ = self.svc.feed.send(row);
    }

    /// Standing by: every stored feed row after the last one this node carried, onto its live
    /// feed (its SSE clients see what the writer wrote).
    async fn follow_feed(&mut self) {
        loop {
            let rows = match self.svc.registry.feed_after(self.feed_seen, 500).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot follow the alert feed; trying again");
                    return;
                }
            };
            let n = rows.len();
            for r in rows {
                self.broadcast(r);
            }
            if n < 500 {
                return;
            }
        }
    }

    /// Renews the hold before a write when less than half of it is left by the app's clock (a
    /// simulated clock moved far ahead, a write after a long pause), so that the write's fence
    /// holds.
    async fn fresh_role(&mut self) {
        if self.epoch.is_some() && self.clock.now_ms() >= self.role_expires.saturating_sub(self.role.ttl_ms / 2) {
            self.keep_role().await;
        }
    }

    /// Renews the role, takes it when free, or stands by when another node holds it.
    async fn keep_role(&mut self) {
        self.next_role = tokio::time::Instant::now() + role_period(&self.role);
        let now = self.clock.now_ms();
        match self.svc.registry.hold_role(ALERT_WRITER, &self.role.node, self.epoch, now, self.role.ttl_ms).await {
            Ok(Some(epoch)) => {
                self.role_expires = now.saturating_add(self.role.ttl_ms);
                if self.epoch.is_none() {
                    self.activate(epoch).await;
                }
            }
            Ok(None) if self.epoch.is_some() => self.deactivate("another node holds the alert writer's role").await,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the alert writer's role");
                if self.epoch.is_some() && now >= self.role_expires {
                    self.deactivate("its hold lapsed while the registry did not answer").await;
                }
            }
        }
    }

    /// Takes over: the feed followed to its end, the engine restored from the store, the
    /// positions read back (the previous writer acknowledged what it applied).
    async fn activate(&mut self, epoch: i64) {
        self.follow_feed().await;
        let now = self.clock.now_ms();
        let engine = match restore(&self.svc.registry, now, self.cfg.clone()).await {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "cannot restore the alert engine; standing by");
                return;
            }
        };
        let mut cursors = HashMap::new();
        for lane in Lane::ALL {
            match self.svc.log.acked(&consumer(lane)).await {
                Ok(at) => {
                    cursors.insert(lane, at.unwrap_or(0));
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the alert service's positions; standing by");
                    return;
                }
            }
        }
        self.engine = engine;
        self.cursors = cursors;
        self.retry = None;
        self.limit.clear();
        self.recent.clear();
        self.epoch = Some(epoch);
        self.publish_stats();
        if let Ok(mut w) = self.svc.writer.lock() {
            w.active = true;
            w.epoch = Some(epoch);
            w.activations += 1;
        }
        let _ = self.active_tx.send(true);
        tracing::info!(node = %self.role.node, epoch, "this node now writes alerts");
    }

    async fn deactivate(&mut self, why: &str) {
        if self.epoch.take().is_none() {
            return;
        }
        // Those waiting for events hear "not yet": the new writer applies them.
        self.waiters.clear();
        if let Ok(mut w) = self.svc.writer.lock() {
            w.active = false;
            w.epoch = None;
        }
        let _ = self.active_tx.send(false);
        tracing::warn!(node = %self.role.node, "{why}: this node stands by");
    }

    /// Stopping: the role is given up at once, so that a standby takes over without waiting for
    /// the hold to lapse.
    async fn release(&mut self) {
        if let Some(epoch) = self.epoch.take()
            && let Err(e) = self.svc.registry.release_role(ALERT_WRITER, &self.role.node, epoch).await
        {
            tracing::warn!(error = %e, "cannot give up the alert writer's role; it lapses on its own");
        }
    }

    /// Applies one batch: of the most urgent lane with events waiting. False when none waits.
    async fn step(&mut self) -> bool {
        for lane in Lane::ALL {
            let after = self.cursors.get(&lane).copied().unwrap_or(0);
            let full = if lane == Lane::Bulk { BULK_BATCH } else { BATCH };
            let limit = self.limit.get(&lane).copied().unwrap_or(full);
            let reads = match self.svc.log.read(&consumer(lane), lane, after, limit).await {
                Ok(r) => r,
                Err(e) => {
                    self.failed(&e.to_string());
                    return false;
                }
            };
            if reads.is_empty() {
                continue;
            }
            match self.apply(lane, reads).await {
                Ok(()) => {
                    self.limit.remove(&lane);
                    self.succeeded();
                }
                Err(e) => {
                    self.limit.insert(lane, (limit / 2).max(1));
                    self.failed(&e.to_string());
                }
            }
            return true;
        }
        false
    }

    /// Decides on a copy of the engine, writes, then keeps the copy and tells everyone.
    async fn apply(&mut self, lane: Lane, reads: Vec<Read>) -> Result<(), RegistryError> {
        let mut next = self.engine.clone();
        let mut writes = Vec::new();
        let mut spans = Vec::with_capacity(reads.len());
        let mut undecodable = Vec::new();
        let last = reads.iter().map(|r| r.as_ref().map_or_else(|u| u.position, |s| s.position)).max().unwrap_or(0);
        for r in &reads {
            match r {
                Ok(s) => {
                    let start = writes.len();
                    for sig in signals::of(s) {
                        writes.extend(next.signal(sig).into_iter().map(write_of));
                    }
                    spans.push((s.position, start..writes.len()));
                }
                Err(u) => undecodable.push(u.clone()),
            }
        }
        self.fresh_role().await;
        if self.epoch.is_none() {
            return Err(RegistryError::NotHolder { role: ALERT_WRITER.into(), node: self.role.node.clone(), epoch: 0 });
        }
        let now = self.clock.now_ms();
        let fence = self.fence();
        let written =
            match self.svc.registry.write_alerts(&writes, &[(consumer(lane), last)], now, fence.as_ref()).await {
                Ok(w) => w,
                Err(e @ RegistryError::NotHolder { .. }) => {
                    self.deactivate("another node took the alert writer's role").await;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
        self.engine = next;
        self.cursors.insert(lane, last);
        self.committed(&written);
        for u in &undecodable {
            self.svc.log.count_undecodable(&consumer(lane), u);
        }
        if let Ok(mut st) = self.svc.stats.lock() {
            let applied = (reads.len() - undecodable.len()) as u64;
            match lane {
                Lane::Urgent => st.events_urgent += applied,
                Lane::Normal => st.events_normal += applied,
                Lane::Bulk => st.events_bulk += applied,
            }
            st.undecodable += undecodable.len() as u64;
        }
        // Tell those waiting for these events what they caused.
        let mut by_index: HashMap<usize, AlertRow> = HashMap::new();
        for w in &written {
            by_index.insert(w.index, w.alert.clone());
        }
        for (position, span) in spans {
            let rows: Vec<AlertRow> = span.filter_map(|i| by_index.get(&i).cloned()).collect();
            let outcome = if rows.is_empty() { EventOutcome::Nothing } else { EventOutcome::Alerts(rows) };
            if let Some(ws) = self.waiters.remove(&position) {
                for w in ws {
                    let _ = w.send(outcome.clone());
                }
            }
            if lane == Lane::Urgent {
                self.recent.push_back((position, outcome));
                if self.recent.len() > RECENT {
                    self.recent.pop_front();
                }
            }
        }
        Ok(())
    }

    /// The clock's actions (grace periods, escalation), written like a batch.
    async fn tick(&mut self) {
        // Callers that stopped waiting (their request timed out) are forgotten.
        self.waiters.retain(|_, ws| {
            ws.retain(|w| !w.is_closed());
            !ws.is_empty()
        });
        self.queued().await;
        if self.epoch.is_none() {
            return;
        }
        let now = self.clock.now_ms();
        let mut next = self.engine.clone();
        let writes: Vec<AlertWrite> = next.tick(now).into_iter().map(write_of).collect();
        if writes.is_empty() {
            self.engine = next;
            self.publish_stats();
            return;
        }
        self.fresh_role().await;
        if self.epoch.is_none() {
            return;
        }
        let fence = self.fence();
        match self.svc.registry.write_alerts(&writes, &[], now, fence.as_ref()).await {
            Ok(written) => {
                self.engine = next;
                self.committed(&written);
                self.succeeded();
            }
            Err(RegistryError::NotHolder { .. }) => {
                self.deactivate("another node took the alert writer's role").await;
            }
            Err(e) => self.failed(&e.to_string()),
        }
    }

    /// After a commit: raises that found an open alert are taught to the engine, the counters
    /// published, the feed rows broadcast in order.
    fn committed(&mut self, written: &[crate::registry::Written]) {
        for w in written.iter().filter(|w| w.folded) {
            let a = &w.alert;
            self.engine.restore(&Restored {
                key: a.dedupe_key.clone(),
                kind: a.kind,
                severity: a.severity,
                last_ms: a.last_at_ms,
                count: a.count.clamp(0, u32::MAX as i64) as u32,
                acknowledged: a.status == AlertStatus::Acknowledged,
                level: a.escalation_level.clamp(0, u32::MAX as i64) as u32,
                cameras: a.cameras.clone(),
            });
        }
        self.publish_stats();
        for w in written {
            if let Some(f) = &w.feed {
                self.broadcast(f.clone());
            }
        }
    }

    fn publish_stats(&self) {
        if let Ok(mut s) = self.svc.engine_stats.lock() {
            *s = self.engine.stats.clone();
        }
    }

    fn succeeded(&mut self) {
        if self.retry.take().is_some() {
            tracing::info!("alert writes succeed again");
        }
        if let Ok(mut s) = self.svc.stats.lock() {
            s.retrying = false;
        }
    }

    fn failed(&mut self, error: &str) {
        let n = self.retry.map_or(0, |(_, n)| n) + 1;
        let wait = RETRY_FIRST.saturating_mul(1 << (n - 1).min(10)).min(RETRY_MAX);
        self.retry = Some((tokio::time::Instant::now() + wait, n));
        if n == 1 || n.is_power_of_two() {
            tracing::error!(
                error,
                failures = n,
                retry_in_ms = wait.as_millis() as u64,
                "cannot store alert changes; retrying (nothing is acknowledged until stored)"
            );
        }
        if let Ok(mut s) = self.svc.stats.lock() {
            s.write_failures += 1;
            s.retrying = true;
            s.last_write_error = Some(error.chars().take(300).collect());
        }
    }

    async fn update_lag(&mut self) {
        let mut lag = [0i64; 3];
        for (i, lane) in Lane::ALL.into_iter().enumerate() {
            let after = self.cursors.get(&lane).copied().unwrap_or(0);
            match self.svc.log.backlog(lane, after).await {
                Ok(n) => lag[i] = n,
                Err(_) => return,
            }
        }
        if let Ok(mut s) = self.svc.stats.lock() {
            (s.lag_urgent, s.lag_normal, s.lag_bulk) = (lag[0], lag[1], lag[2]);
        }
    }
}

/// An engine action as a store write.
fn write_of(a: Action) -> AlertWrite {
    match a {
        Action::Raise { occurrence: o, severity } => AlertWrite::Raise(NewAlert {
            kind: o.kind,
            severity,
            dedupe_key: o.key,
            title: o.title,
            cameras: o.cameras,
            grid_cell_id: o.grid_cell,
            ring_id: o.ring_id,
            detail: o.detail,
            at_ms: o.at_ms,
        }),
        Action::Repeat { key, at_ms, count, renotify } => {
            AlertWrite::Repeat { key, at_ms, count: i64::from(count), notify: renotify }
        }
        Action::Escalate { key, severity, level, .. } => {
            AlertWrite::Escalate { key, severity, level: i64::from(level) }
        }
        Action::Recovered { key, cameras, all_back, .. } => AlertWrite::Recover { key, cameras, all_back },
        Action::Resolve { key, note, .. } => AlertWrite::Resolve { key, note },
    }
}
