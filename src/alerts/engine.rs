//! The alert engine: a pure state machine. Signals (a camera down or back, an event from
//! detection, geography or an alarm system, an operator acknowledging) and the clock go in;
//! actions (raise, repeat, escalate, recover) come out. No I/O, no wall clock: the caller passes
//! the time, so every rule is tested with a simulated clock.
//!
//! Rules per kind: severity; a dedupe window (a repeat of an open alert's key only counts);
//! a cooldown (after an alert is resolved, the same key stays quiet for a while); escalation (not
//! acknowledged within N minutes → one severity up, again every N minutes); suppression while a
//! camera is in maintenance. Cameras going dark wait out a grace period (a camera back within it
//! raises nothing) and are grouped per grid cell: many cameras of one place dropping together
//! become one alert listing them, not one each.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use utoipa::ToSchema;

pub use crate::registry::{AlertKind, Severity};

pub type Millis = i64;

/// Rules for one kind of alert.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub severity: Severity,
    /// Repeats of an open alert's key within this long of its previous occurrence are only
    /// counted; after a longer quiet spell a repeat notifies again (still the same alert).
    pub dedupe_ms: Millis,
    /// After an alert is resolved, its key raises nothing for this long.
    pub cooldown_ms: Millis,
    /// Not acknowledged within this long → escalate (and again every period); `None` never.
    pub escalate_ms: Option<Millis>,
}

/// The engine's configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Every kind's rules (see [`default_policy`]).
    pub policies: HashMap<AlertKind, Policy>,
    /// A camera must stay down (and a ring open) this long before it raises anything.
    pub offline_grace_ms: Millis,
    /// This many cameras of one grid cell going dark within one grace period raise one grouped
    /// alert instead of one each.
    pub group_min: usize,
    /// Zones whose motion raises alerts, and when. Motion anywhere else raises nothing.
    pub armed_zones: Vec<ArmedZone>,
    /// The site's time zone (arming schedules are in its local time, daylight saving included).
    pub zone: crate::clock::SiteZone,
}

/// A camera's zone armed for motion: always (no windows) or in daily windows of local time.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmedZone {
    pub camera: String,
    /// The zone's name as motion events report it; `*` for any zone of the camera.
    pub zone: String,
    /// `(start, end)` minutes after local midnight; a window may cross midnight (22:00–06:00).
    pub windows: Vec<(u32, u32)>,
}

impl ArmedZone {
    /// Whether the zone is armed at `at_ms` in the site's time zone.
    pub fn armed_at(&self, at_ms: Millis, zone: &crate::clock::SiteZone) -> bool {
        if self.windows.is_empty() {
            return true;
        }
        let local_min = zone.local_minute_of_day(at_ms);
        self.windows
            .iter()
            .any(|&(a, b)| if a <= b { (a..b).contains(&local_min) } else { local_min >= a || local_min < b })
    }
}

const MIN: Millis = 60_000;

/// The built-in rules of each kind.
pub fn default_policy(kind: AlertKind) -> Policy {
    let p = |severity, dedupe_min: i64, cooldown_min: i64, escalate_min: Option<i64>| Policy {
        severity,
        dedupe_ms: dedupe_min * MIN,
        cooldown_ms: cooldown_min * MIN,
        escalate_ms: escalate_min.map(|m| m * MIN),
    };
    match kind {
        AlertKind::WatchlistHit => p(Severity::Critical, 2, 0, Some(2)),
        AlertKind::RingCrossing => p(Severity::Critical, 1, 0, Some(2)),
        AlertKind::Alarm => p(Severity::Critical, 2, 0, Some(2)),
        AlertKind::RingOpened => p(Severity::Major, 10, 5, Some(10)),
        AlertKind::CameraOffline => p(Severity::Warning, 30, 10, Some(30)),
        AlertKind::Motion => p(Severity::Warning, 5, 5, None),
        AlertKind::QualityFault => p(Severity::Info, 60, 30, None),
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            policies: AlertKind::ALL.iter().map(|&k| (k, default_policy(k))).collect(),
            offline_grace_ms: MIN,
            group_min: 5,
            armed_zones: Vec::new(),
            zone: crate::clock::SiteZone::utc(),
        }
    }
}

impl EngineConfig {
    pub fn policy(&self, kind: AlertKind) -> Policy {
        self.policies.get(&kind).copied().unwrap_or_else(|| default_policy(kind))
    }

    /// The longest cooldown of any kind (how far back a restart looks for resolved alerts).
    pub fn longest_cooldown_ms(&self) -> Millis {
        AlertKind::ALL.iter().map(|&k| self.policy(k).cooldown_ms).max().unwrap_or(0)
    }
}

/// Something that may deserve an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    pub kind: AlertKind,
    /// What makes two occurrences the same alert (e.g. `watchlist_hit:豫A12345`).
    pub key: String,
    pub title: String,
    pub cameras: Vec<String>,
    pub grid_cell: Option<String>,
    pub ring_id: Option<String>,
    /// The zone of a motion occurrence (arming is per zone).
    pub zone: Option<String>,
    pub detail: serde_json::Value,
    pub at_ms: Millis,
}

/// What goes into the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// An event from detection, geography, an alarm system.
    Event(Occurrence),
    CameraDown {
        camera: String,
        name: String,
        grid_cell: Option<String>,
        reason: String,
        at_ms: Millis,
    },
    CameraUp {
        camera: String,
        at_ms: Millis,
    },
    /// A camera entering (`true`) or leaving maintenance: its alerts are suppressed meanwhile.
    Maintenance {
        camera: String,
        on: bool,
    },
    /// An operator acknowledged the open alert of this key: no more escalation.
    Acknowledged {
        key: String,
    },
    /// The open alert of this key was resolved: the cooldown starts.
    Resolved {
        key: String,
        at_ms: Millis,
    },
    /// The cause of the alert of this key is gone (a ring closed again, a picture is healthy
    /// again): the open alert resolves itself; a pending one is dropped.
    CauseGone {
        key: String,
        note: String,
        at_ms: Millis,
    },
}

/// What the engine decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A new alert.
    Raise { occurrence: Occurrence, severity: Severity },
    /// The open alert of `key` happened again; `renotify` when after a quiet spell longer than
    /// the dedupe window (within it the repeat is only counted).
    Repeat { key: String, at_ms: Millis, count: u32, renotify: bool },
    /// The open alert of `key` was not acknowledged in time.
    Escalate { key: String, severity: Severity, level: u32, at_ms: Millis },
    /// The cameras of the open alert `key` that came back (all of them: `all_back`).
    Recovered { key: String, cameras: Vec<String>, all_back: bool, at_ms: Millis },
    /// The open alert `key` resolves itself.
    Resolve { key: String, note: String, at_ms: Millis },
}

#[derive(Debug, Clone)]
struct Open {
    kind: AlertKind,
    severity: Severity,
    last_ms: Millis,
    count: u32,
    acknowledged: bool,
    level: u32,
    next_escalation_ms: Option<Millis>,
    /// Cameras still down (offline alerts).
    down: HashSet<String>,
}

#[derive(Debug, Clone)]
struct Pending {
    name: String,
    cell: Option<String>,
    reason: String,
    since_ms: Millis,
}

/// Counts of what the engine held back, for stats.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct EngineStats {
    pub raised: u64,
    pub deduplicated: u64,
    pub in_cooldown: u64,
    pub in_maintenance: u64,
    pub offline_within_grace: u64,
    pub grouped_cameras: u64,
    /// Motion in zones not armed at that moment.
    pub motion_disarmed: u64,
    /// Rings that closed again within the grace period.
    pub ring_open_within_grace: u64,
}

/// The state machine.
#[derive(Debug, Clone)]
pub struct Engine {
    cfg: EngineConfig,
    open: HashMap<String, Open>,
    /// Resolved keys and when their cooldown ends.
    cooling: HashMap<String, Millis>,
    maintenance: HashSet<String>,
    /// Cameras down and not yet alerted.
    pending: BTreeMap<String, Pending>,
    /// Offline alert key of each camera it covers.
    camera_alert: HashMap<String, String>,
    /// Ring-open occurrences waiting out the grace period (a ring that closes within it, as at
    /// start-up while checkpoints connect, raises nothing).
    pending_rings: BTreeMap<String, Occurrence>,
    pub stats: EngineStats,
}

/// An open alert as the store has it, to restore after a restart.
#[derive(Debug, Clone)]
pub struct Restored {
    pub key: String,
    pub kind: AlertKind,
    pub severity: Severity,
    pub last_ms: Millis,
    pub count: u32,
    pub acknowledged: bool,
    pub level: u32,
    pub cameras: Vec<String>,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Engine {
        Engine {
            cfg,
            open: HashMap::new(),
            cooling: HashMap::new(),
            maintenance: HashSet::new(),
            pending: BTreeMap::new(),
            camera_alert: HashMap::new(),
            pending_rings: BTreeMap::new(),
            stats: EngineStats::default(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Re-opens an alert that was open before a restart (from the store), so that repeats,
    /// escalation and recovery carry on.
    pub fn restore(&mut self, r: &Restored) {
        let pol = self.cfg.policy(r.kind);
        let next = if r.acknowledged { None } else { pol.escalate_ms.map(|e| r.last_ms.max(0).saturating_add(e)) };
        let down: HashSet<String> =
            if r.kind == AlertKind::CameraOffline { r.cameras.iter().cloned().collect() } else { HashSet::new() };
        for c in &down {
            self.camera_alert.insert(c.clone(), r.key.clone());
        }
        self.pending_rings.remove(&r.key);
        self.open.insert(
            r.key.clone(),
            Open {
                kind: r.kind,
                severity: r.severity,
                last_ms: r.last_ms,
                count: r.count,
                acknowledged: r.acknowledged,
                level: r.level,
                next_escalation_ms: next,
                down,
            },
        );
    }

    /// An alert resolved before a restart: its key stays quiet for the rest of its cooldown.
    pub fn restore_resolved(&mut self, key: &str, kind: AlertKind, resolved_ms: Millis) {
        let cd = self.cfg.policy(kind).cooldown_ms;
        if cd > 0 && !self.open.contains_key(key) {
            self.cooling.insert(key.to_string(), resolved_ms.saturating_add(cd));
        }
    }

    /// Whether the key has an open alert.
    pub fn is_open(&self, key: &str) -> bool {
        self.open.contains_key(key)
    }

    /// Feeds one signal; returns what to do.
    pub fn signal(&mut self, s: Signal) -> Vec<Action> {
        match s {
            Signal::Event(o) => self.event(o),
            Signal::CameraDown { camera, name, grid_cell, reason, at_ms } => {
                if self.maintenance.contains(&camera) {
                    self.stats.in_maintenance += 1;
                } else if !self.camera_alert.contains_key(&camera) {
                    self.pending.entry(camera).or_insert(Pending { name, cell: grid_cell, reason, since_ms: at_ms });
                }
                Vec::new()
            }
            Signal::CameraUp { camera, at_ms } => self.camera_up(&camera, at_ms),
            Signal::Maintenance { camera, on } => {
                if on {
                    self.pending.remove(&camera);
                    self.maintenance.insert(camera);
                } else {
                    self.maintenance.remove(&camera);
                }
                Vec::new()
            }
            Signal::Acknowledged { key } => {
                if let Some(o) = self.open.get_mut(&key) {
                    o.acknowledged = true;
                    o.next_escalation_ms = None;
                }
                Vec::new()
            }
            Signal::Resolved { key, at_ms } => {
                self.close(&key, at_ms);
                Vec::new()
            }
            Signal::CauseGone { key, note, at_ms } => {
                if self.open.contains_key(&key) {
                    self.close(&key, at_ms);
                    vec![Action::Resolve { key, note, at_ms }]
                } else {
                    self.close(&key, at_ms);
                    Vec::new()
                }
            }
        }
    }

    /// Forgets the open (or pending) alert of `key`; its cooldown starts.
    fn close(&mut self, key: &str, at_ms: Millis) {
        if self.pending_rings.remove(key).is_some() {
            self.stats.ring_open_within_grace += 1;
        }
        if let Some(o) = self.open.remove(key) {
            let cd = self.cfg.policy(o.kind).cooldown_ms;
            if cd > 0 {
                self.cooling.insert(key.to_string(), at_ms.saturating_add(cd));
            }
            self.camera_alert.retain(|_, k| k != key);
        }
    }

    fn event(&mut self, o: Occurrence) -> Vec<Action> {
        if !o.cameras.is_empty() && o.cameras.iter().all(|c| self.maintenance.contains(c)) {
            self.stats.in_maintenance += 1;
            return Vec::new();
        }
        if o.kind == AlertKind::RingOpened && !self.open.contains_key(&o.key) {
            self.pending_rings.entry(o.key.clone()).or_insert(o);
            return Vec::new();
        }
        if o.kind == AlertKind::Motion {
            let cam = o.cameras.first().map(String::as_str).unwrap_or("");
            let zone = o.zone.as_deref().unwrap_or("*");
            let armed =
                self.cfg.armed_zones.iter().any(|z| {
                    z.camera == cam && (z.zone == "*" || z.zone == zone) && z.armed_at(o.at_ms, &self.cfg.zone)
                });
            if !armed {
                self.stats.motion_disarmed += 1;
                return Vec::new();
            }
        }
        let pol = self.cfg.policy(o.kind);
        if let Some(open) = self.open.get_mut(&o.key) {
            let renotify = o.at_ms.saturating_sub(open.last_ms) > pol.dedupe_ms;
            open.count = open.count.saturating_add(1);
            open.last_ms = open.last_ms.max(o.at_ms);
            if !renotify {
                self.stats.deduplicated += 1;
            }
            return vec![Action::Repeat { key: o.key, at_ms: o.at_ms, count: open.count, renotify }];
        }
        if let Some(&until) = self.cooling.get(&o.key) {
            if o.at_ms < until {
                self.stats.in_cooldown += 1;
                return Vec::new();
            }
            self.cooling.remove(&o.key);
        }
        self.raise(o, pol.severity)
    }

    fn raise(&mut self, o: Occurrence, severity: Severity) -> Vec<Action> {
        let pol = self.cfg.policy(o.kind);
        let down =
            if o.kind == AlertKind::CameraOffline { o.cameras.iter().cloned().collect() } else { HashSet::new() };
        self.open.insert(
            o.key.clone(),
            Open {
                kind: o.kind,
                severity,
                last_ms: o.at_ms,
                count: 1,
                acknowledged: false,
                level: 0,
                next_escalation_ms: pol.escalate_ms.map(|e| o.at_ms.saturating_add(e)),
                down,
            },
        );
        self.stats.raised += 1;
        vec![Action::Raise { occurrence: o, severity }]
    }

    fn camera_up(&mut self, camera: &str, at_ms: Millis) -> Vec<Action> {
        if self.pending.remove(camera).is_some() {
            self.stats.offline_within_grace += 1;
            return Vec::new();
        }
        let Some(key) = self.camera_alert.remove(camera) else { return Vec::new() };
        let Some(open) = self.open.get_mut(&key) else { return Vec::new() };
        open.down.remove(camera);
        let all_back = open.down.is_empty();
        if all_back {
            // The alert resolves itself: its cooldown starts.
            self.close(&key, at_ms);
        }
        vec![Action::Recovered { key, cameras: vec![camera.to_string()], all_back, at_ms }]
    }

    /// Advances the clock: cameras down past the grace period raise (grouped per cell), open
    /// alerts past their escalation time escalate, expired cooldowns are forgotten.
    pub fn tick(&mut self, now_ms: Millis) -> Vec<Action> {
        self.cooling.retain(|_, until| *until > now_ms);
        let mut out = self.flush_offline(now_ms);
        let grace = self.cfg.offline_grace_ms;
        let due: Vec<String> = self
            .pending_rings
            .iter()
            .filter(|(_, o)| now_ms.saturating_sub(o.at_ms) >= grace)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            if let Some(o) = self.pending_rings.remove(&k) {
                let pol = self.cfg.policy(AlertKind::RingOpened);
                out.extend(self.raise(o, pol.severity));
                // Escalation counts from when the room was told, not from when the ring opened.
                if let Some(open) = self.open.get_mut(&k) {
                    open.next_escalation_ms = pol.escalate_ms.map(|e| now_ms.saturating_add(e));
                }
            }
        }
        let mut due: Vec<(&String, &mut Open)> =
            self.open.iter_mut().filter(|(_, o)| o.next_escalation_ms.is_some_and(|t| t <= now_ms)).collect();
        due.sort_by(|a, b| a.0.cmp(b.0));
        for (key, o) in due {
            let every = self.cfg.policy(o.kind).escalate_ms;
            o.level += 1;
            o.severity = o.severity.up();
            o.next_escalation_ms = every.map(|e| now_ms.saturating_add(e));
            out.push(Action::Escalate { key: key.clone(), severity: o.severity, level: o.level, at_ms: now_ms });
        }
        out
    }

    fn flush_offline(&mut self, now_ms: Millis) -> Vec<Action> {
        let grace = self.cfg.offline_grace_ms;
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| now_ms.saturating_sub(p.since_ms) >= grace)
            .map(|(c, _)| c.clone())
            .collect();
        if due.is_empty() {
            return Vec::new();
        }
        let mut by_cell: BTreeMap<Option<String>, Vec<(String, Pending)>> = BTreeMap::new();
        for c in due {
            if let Some(p) = self.pending.remove(&c) {
                by_cell.entry(p.cell.clone()).or_default().push((c, p));
            }
        }
        let mut out = Vec::new();
        for (cell, cams) in by_cell {
            if cams.len() >= self.cfg.group_min {
                let key = format!("camera_offline:cell:{}:{}", cell.as_deref().unwrap_or("-"), cams[0].1.since_ms);
                let ids: Vec<String> = cams.iter().map(|(c, _)| c.clone()).collect();
                let since = cams.iter().map(|(_, p)| p.since_ms).min().unwrap_or(now_ms);
                let detail = serde_json::json!({
                    "grouped": true,
                    "cameras": cams.iter().map(|(c, p)| serde_json::json!({"id": c, "name": p.name, "reason": p.reason, "since_ms": p.since_ms})).collect::<Vec<_>>(),
                });
                self.stats.grouped_cameras += ids.len() as u64;
                let title = format!("{} cameras offline in {}", ids.len(), cell.as_deref().unwrap_or("no grid cell"));
                for c in &ids {
                    self.camera_alert.insert(c.clone(), key.clone());
                }
                let o = Occurrence {
                    kind: AlertKind::CameraOffline,
                    key,
                    title,
                    cameras: ids,
                    grid_cell: cell,
                    ring_id: None,
                    zone: None,
                    detail,
                    at_ms: since.max(now_ms.saturating_sub(grace)).min(now_ms),
                };
                let sev = self.cfg.policy(AlertKind::CameraOffline).severity.up();
                out.extend(self.raise(o, sev));
            } else {
                for (c, p) in cams {
                    let key = format!("camera_offline:{c}");
                    if let Some(&until) = self.cooling.get(&key)
                        && now_ms < until
                    {
                        self.stats.in_cooldown += 1;
                        continue;
                    }
                    self.camera_alert.insert(c.clone(), key.clone());
                    let o = Occurrence {
                        kind: AlertKind::CameraOffline,
                        key,
                        title: format!("camera {} offline: {}", p.name, p.reason),
                        cameras: vec![c.clone()],
                        grid_cell: p.cell.clone(),
                        ring_id: None,
                        zone: None,
                        detail: serde_json::json!({"reason": p.reason, "since_ms": p.since_ms}),
                        at_ms: now_ms,
                    };
                    let sev = self.cfg.policy(AlertKind::CameraOffline).severity;
                    out.extend(self.raise(o, sev));
                }
            }
        }
        out
    }

    /// Keys of open alerts (for tests and stats).
    pub fn open_keys(&self) -> Vec<String> {
        let mut v: Vec<String> = self.open.keys().cloned().collect();
        v.sort();
        v
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
