//! The geography service the API and the CLI share: a model built from the registry, rebuilt
//! when the registry's geography changes (imports, config reloads), with camera states refreshed
//! on every use; ring open/close events; interceptions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::RwLock;

use super::coverage::{self, Coverage, CoverageQuery, CoverageReport, SectorIndex};
use super::dori::DoriLevel;
use super::entrance::{EntranceCheck, EntranceRule};
use super::model::GeoModel;
use super::rings::{GuardRule, RingPlan, RingState};
use crate::config::{CameraStatus, DoriTable};
use crate::events::{Event, NewEvent, RingChange, RingLeak};
use crate::registry::{Registry, RegistryError};

/// How long an interception stays armed unless closed.
pub const DEFAULT_INTERCEPTION_TTL_MIN: i64 = 120;
/// How far from a road an incident or checkpoint may be and still be routed, metres.
pub const SNAP_M: f64 = 150.0;

/// What a model was made from: the registry's geography fingerprint and a digest of every
/// camera's state. Everything derived from the model (coverage reports, ring states, entrance
/// checks) is valid exactly as long as its version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Version {
    fp: String,
    states: String,
}

/// The model last built, and its version.
struct Current {
    version: Version,
    model: Arc<GeoModel>,
}

/// A value computed once per version, however many requests ask for it at once: the first computes,
/// the others wait for its answer.
type Once<T> = Arc<tokio::sync::OnceCell<Arc<T>>>;

/// What is derived from the current version of the model (emptied when the version changes).
#[derive(Default)]
struct Derived {
    version: Option<Version>,
    reports: HashMap<CoverageQuery, Once<CoverageReport>>,
    rings: Option<Once<Vec<RingState>>>,
    entrances: Option<Once<Vec<EntranceCheck>>>,
}

/// How often the derived values were answered from the cache and computed (for the metrics and the
/// benchmark).
#[derive(Debug, Default)]
pub struct CacheCounters {
    /// Answers from the cache (reports, ring states, entrance checks).
    pub hits: AtomicU64,
    /// Computations of any of them.
    pub computed: AtomicU64,
    /// Computations of coverage reports alone.
    pub reports: AtomicU64,
    /// Of those, the reports whose road coverage was brought up to date from the previous one for
    /// the same query (only camera states changed since), not computed afresh.
    pub incremental: AtomicU64,
    /// Entrance checks brought up to date from the previous ones (only camera states changed
    /// since: the entrances a changed camera sees are checked again), not computed afresh.
    pub incremental_entrances: AtomicU64,
    /// Ring states kept as they were: no camera whose state changed is a ring member or a
    /// checkpoint.
    pub incremental_rings: AtomicU64,
}

/// What keeps road coverage current across camera state changes, valid while the geography (its
/// fingerprint) stays the same: per DORI level an index of every camera's sector (states do not
/// change it), and per query the last coverage with the cameras that counted for it.
#[derive(Default)]
struct Incremental {
    fp: Option<String>,
    every: HashMap<DoriLevel, Arc<SectorIndex>>,
    last: HashMap<CoverageQuery, (Vec<bool>, Coverage)>,
    entrances: Option<LastEntrances>,
    rings: Option<LastRings>,
}

/// The last ring states with the camera states they were computed with.
struct LastRings {
    states: Vec<CameraStatus>,
    rings: Vec<RingState>,
}

/// The last entrance checks with the camera states they were made with, and the index of the
/// cameras in service they clipped against.
struct LastEntrances {
    states: Vec<CameraStatus>,
    index: Arc<SectorIndex>,
    checks: Arc<Vec<EntranceCheck>>,
}

impl Incremental {
    /// The coverage report for `q` on `m` (geography `fp`): the last coverage for `q` updated for
    /// the cameras whose counting changed, or computed afresh when there is none for this
    /// geography. Either way equal to `m.coverage(q).report(m, entrance_ok)`.
    fn report(
        cell: &Mutex<Incremental>,
        fp: &str,
        m: &GeoModel,
        q: CoverageQuery,
        entrance_ok: &[bool],
        counters: &CacheCounters,
    ) -> CoverageReport {
        let lock = || cell.lock().unwrap_or_else(|e| e.into_inner());
        let after = coverage::counting(m, q.states);
        let (every, previous) = {
            let mut inc = lock();
            if inc.fp.as_deref() != Some(fp) {
                *inc = Incremental { fp: Some(fp.to_owned()), ..Incremental::default() };
            }
            (inc.every.get(&q.level).cloned(), inc.last.remove(&q))
        };
        let every = every.unwrap_or_else(|| Arc::new(SectorIndex::every_camera(m, q.level)));
        let cov = match previous {
            Some((before, mut cov)) if before.len() == after.len() && cov.covered.len() == m.net.segs.len() => {
                cov.update(m, &every, &before, &after);
                counters.incremental.fetch_add(1, Ordering::Relaxed);
                cov
            }
            _ => Coverage::compute_with(m, &every, q, &after),
        };
        let report = cov.report(m, entrance_ok);
        let mut inc = lock();
        if inc.fp.as_deref() == Some(fp) {
            inc.every.entry(q.level).or_insert(every);
            inc.last.insert(q, (after, cov));
        }
        report
    }
}

impl Incremental {
    /// Every entrance checked against the default rule on `m` (geography `fp`): the last checks
    /// brought up to date for the cameras whose state changed, when only states in service
    /// changed since; computed afresh otherwise. Either way equal to `m.check_entrances(rule)`.
    fn entrances(cell: &Mutex<Incremental>, fp: &str, m: &GeoModel, counters: &CacheCounters) -> Vec<EntranceCheck> {
        let rule = EntranceRule::default();
        let lock = || cell.lock().unwrap_or_else(|e| e.into_inner());
        let states: Vec<CameraStatus> = m.cameras.iter().map(|c| c.status).collect();
        let previous = {
            let mut inc = lock();
            if inc.fp.as_deref() != Some(fp) {
                *inc = Incremental { fp: Some(fp.to_owned()), ..Incremental::default() };
            }
            inc.entrances.take()
        };
        let same_service = |before: &[CameraStatus]| {
            before.len() == states.len()
                && before
                    .iter()
                    .zip(&states)
                    .all(|(a, b)| (*a != CameraStatus::Decommissioned) == (*b != CameraStatus::Decommissioned))
        };
        let (index, checks) = match previous {
            Some(p) if same_service(&p.states) => {
                let changed: std::collections::HashSet<&str> = p
                    .states
                    .iter()
                    .zip(&states)
                    .enumerate()
                    .filter(|(_, (a, b))| a != b)
                    .map(|(i, _)| m.cameras[i].id.as_str())
                    .collect();
                match m.recheck_entrances(&rule, &p.checks, &changed, &p.index) {
                    Some(v) => {
                        counters.incremental_entrances.fetch_add(1, Ordering::Relaxed);
                        (p.index, v)
                    }
                    None => {
                        let index = Arc::new(m.entrance_index(&rule));
                        let v = m.check_entrances_with(&rule, &index);
                        (index, v)
                    }
                }
            }
            _ => {
                let index = Arc::new(m.entrance_index(&rule));
                let v = m.check_entrances_with(&rule, &index);
                (index, v)
            }
        };
        let mut inc = lock();
        if inc.fp.as_deref() == Some(fp) {
            inc.entrances = Some(LastEntrances { states, index, checks: Arc::new(checks.clone()) });
        }
        checks
    }
}

impl Incremental {
    /// Every ring's state on `m` (geography `fp`). A ring's state follows its members' states and
    /// which checkpoints guard the roads crossing it, so when the cameras whose state changed since
    /// the last check are neither members nor checkpoints, the last states stand as they are
    /// (counted); otherwise every ring is checked again. Either way equal to
    /// `m.ring_states(&GuardRule::default())`.
    fn rings(cell: &Mutex<Incremental>, fp: &str, m: &GeoModel, counters: &CacheCounters) -> Vec<RingState> {
        let lock = || cell.lock().unwrap_or_else(|e| e.into_inner());
        let states: Vec<CameraStatus> = m.cameras.iter().map(|c| c.status).collect();
        let previous = {
            let mut inc = lock();
            if inc.fp.as_deref() != Some(fp) {
                *inc = Incremental { fp: Some(fp.to_owned()), ..Incremental::default() };
            }
            inc.rings.take()
        };
        let unaffected = |before: &[CameraStatus]| {
            before.len() == states.len()
                && before.iter().zip(&states).enumerate().all(|(i, (a, b))| {
                    a == b
                        || (m.cameras[i].kind != crate::config::CameraKind::Checkpoint
                            && !m.rings.iter().any(|r| r.input.members.iter().any(|id| *id == m.cameras[i].id)))
                })
        };
        let rings = match previous {
            Some(p) if unaffected(&p.states) => {
                counters.incremental_rings.fetch_add(1, Ordering::Relaxed);
                p.rings
            }
            _ => m.ring_states(&GuardRule::default()),
        };
        let mut inc = lock();
        if inc.fp.as_deref() == Some(fp) {
            inc.rings = Some(LastRings { states, rings: rings.clone() });
        }
        rings
    }
}

#[derive(Clone)]
pub struct GeoService {
    registry: Registry,
    table: DoriTable,
    current: Arc<RwLock<Option<Current>>>,
    derived: Arc<Mutex<Derived>>,
    counters: Arc<CacheCounters>,
    checks: Arc<Checks>,
    incremental: Arc<Mutex<Incremental>>,
}

/// The registry's version read once for every request waiting meanwhile: a request uses the
/// answer of a check that started after it arrived (so it sees every change made before it), and
/// 64 requests at once cost two checks, not 64.
#[derive(Default)]
struct Checks {
    /// Checks started so far.
    started: AtomicU64,
    /// One check at a time, and the last one's number and answer.
    last: tokio::sync::Mutex<Option<(u64, Version)>>,
}

impl GeoService {
    pub fn new(registry: Registry, table: DoriTable) -> GeoService {
        GeoService {
            registry,
            table,
            current: Arc::new(RwLock::new(None)),
            derived: Arc::default(),
            counters: Arc::default(),
            checks: Arc::default(),
            incremental: Arc::default(),
        }
    }

    /// The model with current camera states. Built (on a blocking thread) when missing or when
    /// the registry's geography changed since; its camera states set again when they changed.
    pub async fn model(&self) -> Result<Arc<GeoModel>, RegistryError> {
        Ok(self.versioned().await?.1)
    }

    async fn versioned(&self) -> Result<(Version, Arc<GeoModel>), RegistryError> {
        let version = self.check().await?;
        // The common case: nothing changed; a shared read, no copy.
        if let Some(c) = self.current.read().await.as_ref().filter(|c| c.version == version) {
            return Ok((version, c.model.clone()));
        }
        let mut guard = self.current.write().await;
        if let Some(c) = guard.as_ref().filter(|c| c.version == version) {
            return Ok((version, c.model.clone()));
        }
        // Taken out of the cache so that, unless another request still holds it, updating the
        // states below does not copy the model.
        let mut model = match guard.take() {
            Some(c) if c.version.fp == version.fp => c.model,
            _ => {
                let inputs = self.registry.geo_inputs(self.table).await?;
                let m = tokio::task::spawn_blocking(move || GeoModel::build(inputs))
                    .await
                    .map_err(|e| RegistryError::Invalid(format!("building the geography model failed: {e}")))?;
                Arc::new(m)
            }
        };
        let states = self.registry.camera_states().await?;
        Arc::make_mut(&mut model).set_statuses(states.iter().map(|(id, s)| (id.as_str(), *s)));
        *guard = Some(Current { version: version.clone(), model: Arc::clone(&model) });
        Ok((version, model))
    }

    /// The registry's version as of a check that started after this call began (two aggregate
    /// queries; the camera states themselves are read only when they changed).
    async fn check(&self) -> Result<Version, RegistryError> {
        let arrived = self.checks.started.load(Ordering::SeqCst);
        let mut last = self.checks.last.lock().await;
        if let Some((n, v)) = last.as_ref()
            && *n > arrived
        {
            return Ok(v.clone());
        }
        let n = self.checks.started.fetch_add(1, Ordering::SeqCst) + 1;
        let v =
            Version { fp: self.registry.geo_fingerprint().await?, states: self.registry.states_fingerprint().await? };
        *last = Some((n, v.clone()));
        Ok(v)
    }

    /// The derived slot `pick` chooses for `version` (the slots emptied first when the version
    /// changed).
    fn slot<T>(&self, version: &Version, pick: impl FnOnce(&mut Derived) -> &mut Option<Once<T>>) -> Once<T> {
        let mut d = self.derived.lock().unwrap_or_else(|e| e.into_inner());
        if d.version.as_ref() != Some(version) {
            *d = Derived { version: Some(version.clone()), ..Derived::default() };
        }
        pick(&mut d).get_or_insert_with(Default::default).clone()
    }

    /// Computes `f` on a blocking thread once for the slot.
    async fn once<T: Send + Sync + 'static>(
        &self,
        slot: Once<T>,
        what: &'static str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<Arc<T>, RegistryError> {
        if let Some(v) = slot.get() {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(v.clone());
        }
        let counters = self.counters.clone();
        let v = slot
            .get_or_try_init(|| async move {
                counters.computed.fetch_add(1, Ordering::Relaxed);
                tokio::task::spawn_blocking(f)
                    .await
                    .map(Arc::new)
                    .map_err(|e| RegistryError::Invalid(format!("{what} failed: {e}")))
            })
            .await?;
        Ok(v.clone())
    }

    /// Every entrance checked against the default rule (two HD cameras 50 m each way), cached per
    /// version of the model.
    pub async fn entrance_checks(&self) -> Result<Arc<Vec<EntranceCheck>>, RegistryError> {
        let (v, m) = self.versioned().await?;
        self.entrances_at(&v, &m).await
    }

    async fn entrances_at(&self, v: &Version, m: &Arc<GeoModel>) -> Result<Arc<Vec<EntranceCheck>>, RegistryError> {
        let slot = self.slot(v, |d| &mut d.entrances);
        let (m, inc, fp, counters) = (m.clone(), self.incremental.clone(), v.fp.clone(), self.counters.clone());
        self.once(slot, "the entrance check", move || Incremental::entrances(&inc, &fp, &m, &counters)).await
    }

    /// Every ring's state (members down, road leaks), cached per version of the model.
    pub async fn ring_states(&self) -> Result<Arc<Vec<RingState>>, RegistryError> {
        let (v, m) = self.versioned().await?;
        let slot = self.slot(&v, |d| &mut d.rings);
        let (inc, fp, counters) = (self.incremental.clone(), v.fp.clone(), self.counters.clone());
        self.once(slot, "the ring check", move || Incremental::rings(&inc, &fp, &m, &counters)).await
    }

    /// The city's coverage report for `q` with the model it was computed on, cached per version of
    /// the model: 64 planners asking at once cost one computation, and a camera going offline
    /// costs one more — incremental: only the road segments that camera's sector meets are
    /// clipped again, then the report re-aggregated (see [`Coverage::update`]).
    pub async fn report(&self, q: CoverageQuery) -> Result<(Arc<GeoModel>, Arc<CoverageReport>), RegistryError> {
        let (v, m) = self.versioned().await?;
        let entrances = self.entrances_at(&v, &m).await?;
        let slot = {
            let mut d = self.derived.lock().unwrap_or_else(|e| e.into_inner());
            if d.version.as_ref() != Some(&v) {
                *d = Derived { version: Some(v.clone()), ..Derived::default() };
            }
            d.reports.entry(q).or_default().clone()
        };
        let (mm, counters, inc, fp) = (m.clone(), self.counters.clone(), self.incremental.clone(), v.fp.clone());
        let report = self
            .once(slot, "the coverage report", move || {
                counters.reports.fetch_add(1, Ordering::Relaxed);
                let ok: Vec<bool> = entrances.iter().map(|e| e.compliant).collect();
                Incremental::report(&inc, &fp, &mm, q, &ok, &counters)
            })
            .await?;
        Ok((m, report))
    }

    pub fn cache_counters(&self) -> &CacheCounters {
        &self.counters
    }

    /// Evaluates every ring; records and returns the rings whose open/closed state changed
    /// (a `ring_opened` or `ring_closed` event each). The first evaluation of a ring records an
    /// event only when it starts open.
    pub async fn check_rings(&self, now_ms: i64) -> Result<Vec<RingState>, RegistryError> {
        let states = self.ring_states().await?;
        let known = self.registry.ring_open_states().await?;
        let mut changed = Vec::new();
        for st in states.iter() {
            let before = known.iter().find(|(id, _)| *id == st.id).map(|(_, o)| *o);
            if before == Some(st.open) {
                continue;
            }
            let change = RingChange {
                ring_id: st.id.clone(),
                name: st.name.clone(),
                level: st.level,
                open: st.open,
                down: st.down.clone(),
                leaks: st
                    .leaks
                    .iter()
                    .map(|l| RingLeak {
                        road_id: l.road_id.clone(),
                        road_name: l.road_name.clone(),
                        lon: l.lon,
                        lat: l.lat,
                        guarded_when_up_by: l.guarded_when_up_by.clone(),
                    })
                    .collect(),
            };
            let detail = serde_json::to_value(&change).unwrap_or_default();
            let event = match (before, st.open) {
                (None, false) => None,
                (_, true) => Some(Event::RingOpened(change)),
                (_, false) => Some(Event::RingClosed(change)),
            };
            let event = event.map(|e| NewEvent::new(now_ms, None, e).raw());
            self.registry.set_ring_state(&st.id, st.open, now_ms, &detail, event.as_ref()).await?;
            if event.is_some() {
                changed.push(st.clone());
            }
        }
        Ok(changed)
    }

    /// Plans and stores an interception.
    pub async fn start_interception(
        &self,
        now_ms: i64,
        req: &InterceptionRequest,
    ) -> Result<(i64, Vec<RingPlan>), RegistryError> {
        let m = self.model().await?;
        let p = m.proj.fwd(req.lon, req.lat);
        let plan = tokio::task::spawn_blocking(move || m.interception_plan(p, SNAP_M))
            .await
            .map_err(|e| RegistryError::Invalid(format!("interception planning failed: {e}")))?;
        let at = req.incident_at_ms.unwrap_or(now_ms);
        let ttl = req.ttl_min.unwrap_or(DEFAULT_INTERCEPTION_TTL_MIN).max(1);
        let plate = req.plate.as_deref().map(normalise_plate).filter(|p| !p.is_empty());
        let plan_json = serde_json::to_value(&plan).unwrap_or_default();
        let id = self
            .registry
            .insert_interception(
                now_ms,
                at,
                req.lon,
                req.lat,
                plate.as_deref(),
                req.note.as_deref().unwrap_or(""),
                now_ms + ttl * 60_000,
                &plan_json,
            )
            .await?;
        Ok((id, plan))
    }
}

/// What an operator gives to start an interception.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InterceptionRequest {
    pub lon: f64,
    pub lat: f64,
    /// When it happened (ms since the epoch); now when absent.
    pub incident_at_ms: Option<i64>,
    /// The suspect vehicle's plate; every vehicle when absent.
    pub plate: Option<String>,
    pub note: Option<String>,
    /// Minutes until the checkpoints disarm by themselves (default 120).
    pub ttl_min: Option<i64>,
}

/// Upper case, no spaces, dots or dashes: `豫A·12345` and `豫a 12345` are the same plate.
pub use crate::plate::normalise as normalise_plate;
