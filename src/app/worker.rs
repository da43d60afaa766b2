//! The worker role (`tianwang worker`): ingest, detection and image quality for the cameras this
//! worker holds by lease, in a city on many machines (docs/CLUSTER.md).
//!
//! A worker heartbeats into the registry every `heartbeat_ms` (a quarter of the lease time by
//! default) and asks for a placement round on each heartbeat (the registry runs one per period,
//! on whichever node asks first). After each heartbeat it runs the pipelines of exactly the
//! cameras it holds: a camera it gained is put in its lease book (with its epoch) before its
//! pipeline starts; a camera it lost is taken out of the book before its pipeline stops. The
//! registry is fenced with that book (`Registry::fence_writes`): every write for a camera checks,
//! in its own transaction, that this worker still holds the camera at that epoch. A worker cut
//! off from the registry stops every pipeline when its heartbeat's lease time has passed, and
//! from then on can write nothing for any camera, even before it notices.
//!
//! A worker runs no alert service, webhooks or API: those are the `serve` role's. It reads the
//! same configuration directory as every other node (camera URLs and credentials are read here;
//! the camera list in the registry is what the `serve` nodes synced from it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::{AppError, Task, retry_statuses, write_statuses};
use crate::city::{self, CityConfig};
use crate::clock::{Clock, Millis};
use crate::config::Profile;
use crate::detect::service::DetectService;
use crate::events::{EventLog, SqlLog};
use crate::ingest::{self, Ingest, IngestSpec};
use crate::maintenance::health::HealthKeeper;
use crate::maintenance::service::QualityService;
use crate::registry::{Lease, LeaseBook, Placement, ProblemRow, Registry, RegistryError, WorkerSpec};

/// How a worker announces itself and keeps its leases.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Unique in the cluster; a worker restarted with the same id is the same worker.
    pub id: String,
    /// Cores it gives to cameras: its share of the city's load is its share of the live cores.
    pub cores: u32,
    /// It never holds more cameras than this.
    pub max_cameras: u32,
    /// The profiles it ingests.
    pub profiles: Vec<Profile>,
    pub placement: Placement,
    /// How often it heartbeats and asks for a placement round.
    pub heartbeat_ms: Millis,
}

impl WorkerOptions {
    /// A worker with this machine's cores, every profile, the default lease time.
    pub fn new(id: &str) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let mut w = WorkerOptions {
            id: id.to_string(),
            cores,
            max_cameras: 2_000,
            profiles: vec![Profile::Health, Profile::Street, Profile::Checkpoint],
            heartbeat_ms: 0,
            placement: Placement::default(),
        };
        w.set_lease_ms(w.placement.ttl_ms);
        w
    }

    /// Sets the lease time, and with it the heartbeat (a quarter of it: a dead worker's cameras
    /// are claimed at most a period after its lease lapses, and seen by their new holders at most
    /// a period after that) and the hand-off time (two periods: the releasing worker hears of the
    /// release at its next heartbeat and stops the pipeline before anyone may claim it, even with
    /// that heartbeat a period late).
    pub fn set_lease_ms(&mut self, ttl_ms: Millis) {
        self.placement.ttl_ms = ttl_ms;
        self.heartbeat_ms = (ttl_ms / 4).max(100);
        self.placement.handoff_ms = 2 * self.heartbeat_ms;
    }

    fn spec(&self, cpu_share: f64) -> WorkerSpec {
        WorkerSpec {
            id: self.id.clone(),
            cores: self.cores,
            max_cameras: self.max_cameras,
            profiles: self.profiles.clone(),
            cpu_share,
        }
    }
}

/// What the worker's lease loop has seen, for `/api/v1/worker` and `/metrics`.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct LeaseStatus {
    pub worker: String,
    /// Its last heartbeat was stored and its lease time has not passed.
    pub live: bool,
    /// When its leases lapse unless it heartbeats again (ms since the epoch; 0 before the first).
    pub expires_ms: Millis,
    pub heartbeats: u64,
    /// Heartbeats whose answer was "your leases are unchanged" (nothing read back).
    pub heartbeats_unchanged: u64,
    pub heartbeat_failures: u64,
    pub last_error: Option<String>,
    /// Placement rounds this worker ran (any node may run the period's round).
    pub rounds: u64,
    /// Cameras gained and lost since it started.
    pub gained: u64,
    pub lost: u64,
    /// Times it stopped every pipeline because its lease time passed without a heartbeat stored.
    pub cut_off: u64,
    /// Cameras it holds that its configuration does not list (it cannot run them).
    pub unconfigured: Vec<String>,
}

/// A camera this worker holds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeldCamera {
    pub id: String,
    pub epoch: i64,
    /// Its pipeline's state (`connecting`, `streaming`, …); absent when no pipeline runs.
    pub ingest: Option<String>,
}

/// What the HTTP layer of a worker can reach.
#[derive(Clone)]
pub struct WorkerState {
    pub opts: WorkerOptions,
    pub registry: Registry,
    pub clock: Arc<dyn Clock>,
    pub log: Arc<dyn EventLog>,
    pub ingest: Arc<Ingest>,
    pub book: Arc<LeaseBook>,
    pub detect: Option<DetectService>,
    /// Motion from the held cameras that give it themselves (ONVIF events).
    pub onvif_motion: crate::detect::onvif_motion::OnvifMotion,
    pub quality: Option<QualityService>,
    pub health: HealthKeeper,
    pub status: Arc<Mutex<LeaseStatus>>,
    pub config_dir: Arc<PathBuf>,
    /// The configuration as last read (SIGHUP reads it again).
    pub config: Arc<RwLock<Arc<CityConfig>>>,
    pub closing: CancellationToken,
    /// What this worker last stored of each held camera's problems (cause, since when).
    reported: Arc<tokio::sync::Mutex<Reported>>,
}

/// Camera → the causes and start times of its problems, as last stored.
type Reported = BTreeMap<String, Vec<(String, Millis)>>;

impl WorkerState {
    pub fn lease_status(&self) -> LeaseStatus {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
        s.live = s.expires_ms > self.clock.now_ms();
        s
    }

    /// The cameras it holds, with their pipelines' states.
    pub fn held(&self) -> Vec<HeldCamera> {
        self.book
            .held()
            .into_iter()
            .map(|(id, epoch)| {
                let ingest = self.ingest.health(&id).map(|h| h.state.as_str().to_string());
                HeldCamera { id, epoch, ingest }
            })
            .collect()
    }

    fn config(&self) -> Arc<CityConfig> {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn status(&self, f: impl FnOnce(&mut LeaseStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// A running worker.
pub struct Worker {
    pub state: WorkerState,
    /// In the order they stop (the lease loop first).
    tasks: Vec<Task>,
    root: CancellationToken,
}

impl Worker {
    /// Reads the configuration, opens the registry (fenced with this worker's lease book),
    /// starts ingest with no camera, detection and quality when configured, and the lease loop,
    /// which runs the cameras this worker is given.
    pub async fn build(
        config_dir: &Path,
        database: &str,
        clock: Arc<dyn Clock>,
        opts: WorkerOptions,
    ) -> Result<Self, AppError> {
        if opts.id.is_empty() || opts.id.len() > 128 || opts.id.chars().any(|c| c.is_control() || c == ',') {
            return Err(AppError::Task(format!(
                "worker id {:?}: expected 1 to 128 characters, no commas or control characters",
                opts.id.chars().take(40).collect::<String>()
            )));
        }
        let config = city::load_dir(config_dir)?;
        let registry = Registry::open(database).await?;
        registry.on_order_change(crate::events::work_order_event);
        let book = LeaseBook::new(&opts.id, clock.clone());
        registry.fence_writes(book.clone());
        let log: Arc<dyn EventLog> = Arc::new(SqlLog::new(registry.clone()));
        let root = CancellationToken::new();
        let mut tasks = Vec::new();
        let health = HealthKeeper::start(registry.clone()).await?;
        ingest::init_gstreamer()?;
        let (tx, rx) = tokio::sync::mpsc::channel(4096);
        let ingest = Arc::new(Ingest::new(clock.clone(), Some(tx)));
        // Which cameras come by lease is not known yet: raise the limit, warn about none.
        super::open_files_for(0);
        let detect = match &config.detect {
            Some(dc) => Some(DetectService::start(dc.clone(), registry.clone(), log.clone(), clock.clone())?),
            None => None,
        };
        let onvif_motion =
            crate::detect::onvif_motion::OnvifMotion::new(log.clone(), clock.clone(), Default::default());
        let quality = config.maintenance.as_ref().map(|mc| {
            QualityService::start(
                mc.clone(),
                &config.quality_overrides,
                ingest.clone(),
                log.clone(),
                health.clone(),
                clock.clone(),
            )
        });
        let state = WorkerState {
            status: Arc::new(Mutex::new(LeaseStatus { worker: opts.id.clone(), ..Default::default() })),
            opts,
            registry,
            clock: clock.clone(),
            log,
            ingest,
            book,
            detect,
            onvif_motion,
            quality,
            health: health.clone(),
            config_dir: Arc::new(config_dir.to_path_buf()),
            config: Arc::new(RwLock::new(Arc::new(config))),
            closing: root.child_token(),
            reported: Arc::default(),
        };
        let st = state.clone();
        Task::start(&mut tasks, &root, "lease loop", |stop| tokio::spawn(lease_loop(st, stop)));
        Task::start(&mut tasks, &root, "ingest statuses", |stop| {
            tokio::spawn(write_statuses(health.clone(), rx, stop))
        });
        Task::start(&mut tasks, &root, "health retry", |stop| {
            tokio::spawn(retry_statuses(health.clone(), clock.clone(), stop))
        });
        if let Some(d) = &state.detect {
            // The pictures this worker keeps: by age and by the disk's free-space floor (the
            // tables are swept by the serve node that writes alerts).
            let cfg = state.config.read().map(|c| c.retention.clone()).unwrap_or_default();
            let r = crate::retention::Retention::new(
                state.registry.clone(),
                cfg,
                None,
                Some(d.media_dir().to_path_buf()),
                clock.clone(),
            );
            Task::start(&mut tasks, &root, "retention", |stop| r.spawn(stop));
        }
        #[cfg(unix)]
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(hup) => {
                let st = state.clone();
                Task::start(&mut tasks, &root, "sighup", |stop| tokio::spawn(reload_on_sighup(st, hup, stop)));
            }
            Err(e) => tracing::error!("cannot listen for SIGHUP ({e}); restart the worker to read its configuration"),
        }
        tracing::info!(worker = %state.opts.id, cores = state.opts.cores, "worker started; waiting for cameras");
        Ok(Worker { state, tasks, root })
    }

    /// Stops the lease loop, then every pipeline, quality sampling and detection (which stores
    /// what it was handed while this worker still holds the cameras), then gives its cameras
    /// back at once (`Registry::leave`) so that others take them on the next round.
    pub async fn shutdown(mut self) {
        let state = self.state.clone();
        state.closing.cancel();
        let lease_loop = self.tasks.remove(0);
        lease_loop.stop.cancel();
        let _ = lease_loop.handle.await;
        let (onvif, ingest) = (Some(&state.onvif_motion), Some(state.ingest.clone()));
        super::stop_producers(onvif, ingest, state.quality.as_ref(), state.detect.as_ref()).await;
        Task::stop_all(self.tasks).await;
        state.book.clear();
        match state.registry.leave(&state.opts.id, state.clock.now_ms()).await {
            Ok(n) => tracing::info!(worker = %state.opts.id, cameras = n, "left the cluster; its cameras are free"),
            Err(e) => {
                tracing::error!(worker = %state.opts.id, error = %e, "cannot leave the cluster; its cameras move when its lease time passes")
            }
        }
        self.root.cancel();
        state.registry.close().await;
    }
}

/// Heartbeats, asks for a placement round, and runs the cameras held; stops every pipeline
/// when the lease time passes without a stored heartbeat.
async fn lease_loop(st: WorkerState, stop: CancellationToken) {
    let every = st.opts.heartbeat_ms.max(100);
    let ttl = st.opts.placement.ttl_ms;
    // A heartbeat that hangs (a registry cut off mid-query) is given up after this long, so
    // that the lease time is watched even then.
    let patience = Duration::from_millis(every as u64);
    let mut expires: Millis = 0;
    let mut forced = true;
    let mut known = Known::default();
    loop {
        let now = st.clock.now_ms();
        let beat = tokio::select! {
            _ = stop.cancelled() => return,
            r = tokio::time::timeout(patience, beat(&st, now, &mut known)) => r,
        };
        match beat {
            Ok(Ok(leases)) => {
                expires = now.saturating_add(ttl);
                st.status(|s| {
                    s.heartbeats += 1;
                    s.expires_ms = expires;
                    s.last_error = None;
                });
                run_held(&st, &leases, forced).await;
                forced = false;
                // Crews put cameras in and out of maintenance through the serve nodes.
                if let Err(e) = st.health.sync_maintenance(now).await {
                    tracing::warn!(worker = %st.opts.id, error = %e, "cannot read which cameras are in maintenance");
                }
                report_problems(&st, now).await;
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("the registry did not answer within {} ms", patience.as_millis()),
                };
                tracing::warn!(worker = %st.opts.id, error = %why, "heartbeat failed");
                st.status(|s| {
                    s.heartbeat_failures += 1;
                    s.last_error = Some(why);
                });
            }
        }
        // Wake at the next heartbeat (a fixed cadence from this one's start, however long it and
        // the pipeline changes took), or when the leases lapse if that comes first.
        let next = now.saturating_add(every).max(st.clock.now_ms());
        let lapse = if st.book.held().is_empty() { next } else { expires };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = st.clock.sleep_until(next.min(lapse)) => {}
        }
        if !st.book.held().is_empty() && st.clock.now_ms() >= expires {
            tracing::error!(
                worker = %st.opts.id,
                "no heartbeat stored within the lease time: stopping every pipeline (the cameras move to other workers)"
            );
            st.status(|s| s.cut_off += 1);
            run_held(&st, &[], true).await;
            forced = true;
        }
    }
}

/// Stores the problems of every held camera whose set changed since this worker last stored it
/// (a camera just gained is stored once, healthy or not: what its previous holder left is
/// replaced), for the work-order rounds of the serve node that writes alerts.
async fn report_problems(st: &WorkerState, now: Millis) {
    let held = st.book.held();
    let problems = st.health.problems().await;
    let mut reported = st.reported.lock().await;
    reported.retain(|cam, _| held.contains_key(cam));
    for cam in held.keys() {
        let rows: Vec<ProblemRow> = problems
            .get(cam)
            .map(|ps| {
                ps.iter()
                    .map(|p| ProblemRow { cause: p.cause.clone(), since_ms: p.since_ms, detail: p.detail.clone() })
                    .collect()
            })
            .unwrap_or_default();
        let key: Vec<(String, Millis)> = rows.iter().map(|p| (p.cause.clone(), p.since_ms)).collect();
        if reported.get(cam) == Some(&key) {
            continue;
        }
        match st.registry.report_problems(cam, &rows, now).await {
            Ok(()) => {
                reported.insert(cam.clone(), key);
            }
            // Not this worker's camera any more: its new holder reports it.
            Err(e) if e.is_fenced() => {}
            Err(e) => {
                tracing::warn!(worker = %st.opts.id, error = %e, "cannot store the cameras' problems; trying again at the next heartbeat");
                return;
            }
        }
    }
}

/// Every this many heartbeats the leases are read back even when the generation says nothing
/// changed (a safety net: a change made to the registry by hand raises no generation).
const FULL_READ_EVERY: u64 = 10;

/// What the worker last heard of its leases: the generation and the leases of that generation.
#[derive(Default)]
struct Known {
    generation: Option<i64>,
    leases: Vec<Lease>,
    beats: u64,
}

/// One heartbeat and, when due, one placement round; answers the leases held after both. The
/// heartbeat reads the leases back only when their generation moved since `known`'s.
async fn beat(st: &WorkerState, now: Millis, known: &mut Known) -> Result<Vec<Lease>, RegistryError> {
    let spec = st.opts.spec(cpu_share());
    let p = &st.opts.placement;
    known.beats += 1;
    let ask = if known.beats.is_multiple_of(FULL_READ_EVERY) { None } else { known.generation };
    let b = st.registry.heartbeat_since(&spec, now, p, ask).await?;
    let leases = match b.leases {
        Some(l) => l,
        None => known.leases.iter().map(|l| Lease { expires_ms: b.expires_ms, ..l.clone() }).collect(),
    };
    known.generation = Some(b.generation);
    known.leases = leases.clone();
    st.status(|s| s.heartbeats_unchanged += u64::from(ask == Some(b.generation)));
    match st.registry.place_if_due(now, st.opts.heartbeat_ms, p).await {
        Ok(Some(rounds)) => {
            st.status(|s| s.rounds += 1);
            let moved = rounds.values().any(|r| !r.claimed.is_empty() || !r.released.is_empty());
            if moved {
                // The generation moved with them: the next heartbeat reads them back too.
                known.generation = None;
                return st.registry.leases_of(&st.opts.id, now).await;
            }
        }
        Ok(None) => {}
        // The next heartbeat asks again; what this worker holds is still known.
        Err(e) => tracing::warn!(worker = %st.opts.id, error = %e, "placement round failed"),
    }
    // Another node's round may have given this worker cameras since the heartbeat read them;
    // the next heartbeat sees them.
    Ok(leases)
}

/// Runs the pipelines of exactly the configured cameras in `leases`: the lost ones leave the
/// lease book before their pipelines stop, the gained ones enter it before theirs start.
async fn run_held(st: &WorkerState, leases: &[Lease], forced: bool) {
    let before = st.book.held();
    let now: BTreeMap<String, i64> = leases.iter().map(|l| (l.camera_id.clone(), l.epoch)).collect();
    let lost: Vec<String> = before.keys().filter(|c| !now.contains_key(*c)).cloned().collect();
    let gained = now.keys().filter(|c| !before.contains_key(*c)).count();
    if lost.is_empty() && gained == 0 && before == now && !forced {
        return;
    }
    st.book.forget(&lost);
    st.book.set(leases);
    let cfg = st.config();
    let configured: BTreeSet<&str> = cfg.cameras.iter().map(|c| c.id.as_str()).collect();
    let unconfigured: Vec<String> = now.keys().filter(|c| !configured.contains(c.as_str())).cloned().collect();
    if !unconfigured.is_empty() {
        tracing::warn!(
            worker = %st.opts.id,
            cameras = ?unconfigured.iter().take(10).collect::<Vec<_>>(),
            n = unconfigured.len(),
            "holding cameras this worker's configuration does not list: they cannot run here"
        );
    }
    let sample_s = cfg.maintenance.as_ref().map_or(10.0, |m| m.vqd_interval_s);
    let specs: Vec<IngestSpec> = cfg
        .cameras
        .iter()
        .filter(|c| c.enabled && now.contains_key(c.id.as_str()))
        .map(|c| IngestSpec::from_config(c, sample_s))
        .collect();
    let ingest = st.ingest.clone();
    let report = match tokio::task::spawn_blocking(move || ingest.apply(specs)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(worker = %st.opts.id, error = %e, "applying the held cameras failed");
            return;
        }
    };
    if let Some(d) = &st.detect {
        d.sync(&st.ingest, &cfg.cameras, &cfg.motion_zones);
    }
    let held: Vec<crate::config::CameraConfig> =
        cfg.cameras.iter().filter(|c| now.contains_key(c.id.as_str())).cloned().collect();
    st.onvif_motion.sync(&held);
    st.health.forget(&lost).await;
    st.status(|s| {
        s.gained += gained as u64;
        s.lost += lost.len() as u64;
        s.unconfigured = unconfigured;
    });
    if !report.started.is_empty() || !report.stopped.is_empty() {
        tracing::info!(
            worker = %st.opts.id,
            started = report.started.len(),
            stopped = report.stopped.len(),
            held = now.len(),
            "cameras moved"
        );
    }
}

/// The share of this machine's CPU in use since the last call (0..1), from /proc/stat; 0 where
/// it cannot be read. Shown in the cluster view, not used to place.
fn cpu_share() -> f64 {
    static LAST: Mutex<Option<(u64, u64)>> = Mutex::new(None);
    let Some((busy, total)) = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        let line = s.lines().next()?.strip_prefix("cpu ")?.to_string();
        let v: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
        let total: u64 = v.iter().take(8).sum();
        Some((total.saturating_sub(idle), total))
    }) else {
        return 0.0;
    };
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    let share = match *last {
        Some((b, t)) if total > t => (busy.saturating_sub(b)) as f64 / (total - t) as f64,
        _ => 0.0,
    };
    *last = Some((busy, total));
    share.clamp(0.0, 1.0)
}

/// Re-reads the configuration on SIGHUP: held cameras whose settings changed restart, and the
/// next heartbeat runs with the new camera list. A configuration with errors changes nothing.
#[cfg(unix)]
async fn reload_on_sighup(st: WorkerState, mut hup: tokio::signal::unix::Signal, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            got = hup.recv() => if got.is_none() { return },
        }
        let dir = (*st.config_dir).clone();
        match tokio::task::spawn_blocking(move || city::load_dir(&dir)).await {
            Ok(Ok(cfg)) => {
                if let Some(q) = &st.quality {
                    q.reconfigure(&cfg.quality_overrides);
                }
                *st.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cfg);
                let held: Vec<Lease> = st
                    .book
                    .held()
                    .into_iter()
                    .map(|(camera_id, epoch)| Lease { camera_id, epoch, expires_ms: 0 })
                    .collect();
                run_held(&st, &held, true).await;
                tracing::info!(worker = %st.opts.id, "configuration reloaded");
            }
            Ok(Err(e)) => tracing::error!("reload refused, the running configuration stays: {e}"),
            Err(e) => tracing::error!("reload failed: {e}"),
        }
    }
}
