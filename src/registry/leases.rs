//! Camera assignment by lease, for a city on many machines.
//!
//! Workers heartbeat into `workers`; each camera is held by at most one live worker through its row
//! in `camera_leases`. A lease lives as long as its holder's heartbeat (a heartbeat writes one
//! row, not one per camera); `camera_leases.expires_ms` only records when a camera was let go. A lease has an epoch, the fencing token: it rises every time the camera
//! changes hands, and every write a worker makes for a camera carries the epoch it holds, checked
//! by `check_lease` in the write's own transaction. A worker that was cut off and comes back after
//! its lease expired therefore cannot write as the holder, even before it notices.
//!
//! Placement is by live load, recomputed on every round from the live leases themselves (never a
//! counter that can drift when a worker leaves and returns): a worker's fair share is the weight of
//! every camera to place times its share of the live workers' cores, each camera weighed by what
//! its profile costs. A round claims free cameras up to the share, or releases cameras over it
//! (with some slack), at most `batch` at a time, so that a worker joining or leaving moves a
//! bounded number of cameras per round. Claims are compare-and-set on the lease row (on
//! PostgreSQL the candidates are also locked with `FOR UPDATE SKIP LOCKED`, so that concurrent
//! rounds pass each other instead of queueing); two workers can never both claim one camera.
//!
//! Why the registry and not JetStream KV: the registry is already the single source of truth that
//! every worker reaches; a lease and the fenced write it guards can share one transaction; load
//! comes from one `GROUP BY` over the live leases; and NATS 2.9 (what Debian ships) has no per-key
//! TTL, which JetStream leases would want.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use sqlx::Row;

use super::{Backend, Registry, RegistryError, WriteTx};
use crate::clock::{Clock, Millis};
use crate::config::Profile;

/// A worker as it announces itself on every heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSpec {
    pub id: String,
    /// Cores it has for cameras: its share of the load is its share of the live cores.
    pub cores: u32,
    /// It never holds more cameras than this.
    pub max_cameras: u32,
    /// The profiles it ingests.
    pub profiles: Vec<Profile>,
    /// The CPU it measured in use, as a share of its cores (0..1): shown, not used to place.
    pub cpu_share: f64,
}

/// How cameras are placed and leases kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// A lease (and a worker's heartbeat) lasts this long unless renewed.
    pub ttl_ms: Millis,
    /// Cameras claimed or released by one worker in one round, at most.
    pub batch: usize,
    /// What a camera of each profile is taken to cost, in thousandths of a core.
    pub weight_health: u64,
    pub weight_street: u64,
    pub weight_checkpoint: u64,
    /// A worker releases cameras only when over its share by more than this fraction of it (and
    /// by more than one camera), so that rounding never moves cameras back and forth.
    pub slack: f64,
    /// A camera a round takes from a worker to move it is claimable only this long after: the
    /// worker hears of the release at its next heartbeat and stops the pipeline first, so that a
    /// camera moved on purpose never streams on two workers at once. A heartbeat period and a
    /// little more.
    pub handoff_ms: Millis,
}

impl Default for Placement {
    /// Weights from BENCHMARKS.md (ingest, per stream): health ~0.002 core, street ~0.045 plus
    /// motion, checkpoint ~0.065 plus plate reading.
    fn default() -> Self {
        Self {
            ttl_ms: 15_000,
            batch: 50,
            weight_health: 2,
            weight_street: 60,
            weight_checkpoint: 150,
            slack: 0.1,
            handoff_ms: 5_500,
        }
    }
}

impl Placement {
    pub fn weight(&self, p: Profile) -> u64 {
        match p {
            Profile::Health => self.weight_health,
            Profile::Street => self.weight_street,
            Profile::Checkpoint => self.weight_checkpoint,
        }
    }
}

/// A camera a worker holds, and the epoch its writes must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub camera_id: String,
    pub epoch: i64,
    pub expires_ms: Millis,
}

/// What a worker process holds: the epoch of each camera whose lease it holds, by its own last
/// look. Installed with `Registry::fence_writes`, it is what every write for a camera is checked
/// against; the worker updates it as it gains and loses leases (a camera is taken out before its
/// pipeline stops, and put in before its pipeline starts).
pub struct LeaseBook {
    worker: String,
    clock: Arc<dyn Clock>,
    held: RwLock<HashMap<String, i64>>,
}

impl LeaseBook {
    pub fn new(worker: &str, clock: Arc<dyn Clock>) -> Arc<LeaseBook> {
        Arc::new(LeaseBook { worker: worker.to_string(), clock, held: RwLock::new(HashMap::new()) })
    }

    pub fn worker(&self) -> &str {
        &self.worker
    }

    pub(crate) fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// The epoch this worker holds `camera` at, by its last look.
    pub fn epoch(&self, camera: &str) -> Option<i64> {
        self.held.read().unwrap_or_else(|e| e.into_inner()).get(camera).copied()
    }

    /// Replaces what the worker holds.
    pub fn set(&self, leases: &[Lease]) {
        let mut g = self.held.write().unwrap_or_else(|e| e.into_inner());
        g.clear();
        g.extend(leases.iter().map(|l| (l.camera_id.clone(), l.epoch)));
    }

    /// Takes cameras out: their writes are refused from now on.
    pub fn forget(&self, cameras: &[String]) {
        let mut g = self.held.write().unwrap_or_else(|e| e.into_inner());
        for c in cameras {
            g.remove(c);
        }
    }

    /// The worker holds nothing (its heartbeat lapsed).
    pub fn clear(&self) {
        self.held.write().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Every camera held, with its epoch.
    pub fn held(&self) -> BTreeMap<String, i64> {
        self.held.read().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// What a heartbeat answered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Beat {
    /// The worker's lease generation after the heartbeat.
    pub generation: i64,
    /// The leases it holds; `None` when they are the ones it knew (the generation it named).
    pub leases: Option<Vec<Lease>>,
    /// Until when its leases live unless it heartbeats again.
    pub expires_ms: Millis,
}

/// What a placement round did for one worker.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlacementRound {
    /// Cameras this worker took, with their new epochs.
    pub claimed: Vec<Lease>,
    /// Cameras this worker gave up (its pipelines for them stop).
    pub released: Vec<String>,
    /// The worker's fair share and what it holds after the round, in thousandths of a core.
    pub share: u64,
    pub held: u64,
}

/// A live worker and its load, for the cluster view.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct WorkerLoad {
    pub id: String,
    pub cores: u32,
    pub max_cameras: u32,
    pub profiles: Vec<Profile>,
    pub cpu_share: f64,
    pub heartbeat_ms: Millis,
    pub expires_ms: Millis,
    pub cameras: u64,
    /// Weight of the cameras it holds, thousandths of a core.
    pub weight: u64,
}

fn profiles_text(p: &[Profile]) -> String {
    p.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",")
}

fn parse_profiles(s: &str) -> Vec<Profile> {
    s.split(',').filter_map(|p| p.parse().ok()).collect()
}

/// Every camera that should be ingested somewhere.
const PLACEABLE: &str = "c.enabled = 1 AND c.status <> 'decommissioned'";

impl Registry {
    /// A worker's heartbeat: it is live until `now + ttl`, and so is every lease it holds (a
    /// lease lives as long as its holder's heartbeat, so a heartbeat writes one row however many
    /// cameras the worker holds). A worker whose heartbeat had already lapsed lost its leases: they
    /// are not revived, and each camera is claimed again with a new epoch. Answers the leases it
    /// holds.
    pub async fn heartbeat(&self, w: &WorkerSpec, now: Millis, p: &Placement) -> Result<Vec<Lease>, RegistryError> {
        let beat = self.heartbeat_since(w, now, p, None).await?;
        Ok(beat.leases.unwrap_or_default())
    }

    /// A heartbeat that reads the leases back only when they changed since the generation
    /// `known` (the one the worker's last answer carried): each worker's lease generation rises
    /// in the transaction of every placement round that gives it or takes from it a camera (the
    /// only changes a live worker's leases see; a worker whose heartbeat lapsed reads them back
    /// anyway). `leases` is `None` when nothing changed; every lease then lives until
    /// `expires_ms`.
    pub async fn heartbeat_since(
        &self,
        w: &WorkerSpec,
        now: Millis,
        p: &Placement,
        known: Option<i64>,
    ) -> Result<Beat, RegistryError> {
        let expires = now.saturating_add(p.ttl_ms);
        let mut tx = self.begin().await?;
        // A worker new to the registry, or whose heartbeat had lapsed (its leases are given up
        // below, and others may have claimed them), reads its leases back whatever it names.
        let was: Option<i64> = sqlx::query_scalar("SELECT expires_ms FROM workers WHERE id = $1")
            .bind(&w.id)
            .fetch_optional(&mut *tx)
            .await?;
        let fresh = was.is_none_or(|e| e <= now);
        sqlx::query(
            "UPDATE camera_leases SET worker_id = NULL, expires_ms = $1
             WHERE worker_id = $2 AND EXISTS (SELECT 1 FROM workers w WHERE w.id = $2 AND w.expires_ms <= $1)",
        )
        .bind(now)
        .bind(&w.id)
        .execute(&mut *tx)
        .await?;
        let generation: i64 = sqlx::query_scalar(
            "INSERT INTO workers (id, cores, max_cameras, profiles, cpu_share, started_ms, heartbeat_ms, expires_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7)
             ON CONFLICT (id) DO UPDATE SET cores = excluded.cores, max_cameras = excluded.max_cameras,
                 profiles = excluded.profiles, cpu_share = excluded.cpu_share,
                 started_ms = CASE WHEN workers.expires_ms <= excluded.heartbeat_ms
                                   THEN excluded.started_ms ELSE workers.started_ms END,
                 heartbeat_ms = excluded.heartbeat_ms, expires_ms = excluded.expires_ms
             RETURNING lease_gen",
        )
        .bind(&w.id)
        .bind(i64::from(w.cores))
        .bind(i64::from(w.max_cameras))
        .bind(profiles_text(&w.profiles))
        .bind(if w.cpu_share.is_finite() { w.cpu_share.clamp(0.0, 1.0) } else { 0.0 })
        .bind(now)
        .bind(expires)
        .fetch_one(&mut *tx)
        .await?;
        let leases = if !fresh && known == Some(generation) { None } else { Some(held(&mut tx, &w.id, now).await?) };
        tx.commit().await?;
        Ok(Beat { generation, leases, expires_ms: expires })
    }

    /// The leases `worker` holds at `now`.
    pub async fn leases_of(&self, worker: &str, now: Millis) -> Result<Vec<Lease>, RegistryError> {
        held(&mut *self.pool().acquire().await?, worker, now).await
    }

    /// One placement round for every live worker, from one look at the live leases: workers over
    /// their share (with slack) give cameras back that another worker has room for, then free
    /// cameras go to the least loaded worker that ingests their profile, each worker moving at
    /// most `p.batch` cameras either way. Answers each live worker's part, by id.
    pub async fn place_all(
        &self,
        now: Millis,
        p: &Placement,
    ) -> Result<BTreeMap<String, PlacementRound>, RegistryError> {
        let mut tx = self.begin().await?;
        let round = place_tx(&mut tx, self.backend(), now, p).await?;
        tx.commit().await?;
        Ok(round)
    }

    /// `place_all` when no round ran in the last `every_ms`, on whichever node asks first: every
    /// worker may ask on every heartbeat (no node is the placer), and the registry runs one round
    /// per period. `None` when another round was recent.
    pub async fn place_if_due(
        &self,
        now: Millis,
        every_ms: Millis,
        p: &Placement,
    ) -> Result<Option<BTreeMap<String, PlacementRound>>, RegistryError> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO placement_rounds (id, last_ms) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
            .bind(i64::MIN / 2)
            .execute(&mut *tx)
            .await?;
        let due = sqlx::query("UPDATE placement_rounds SET last_ms = $1 WHERE id = 1 AND last_ms <= $2")
            .bind(now)
            .bind(now.saturating_sub(every_ms))
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if !due {
            tx.rollback().await?;
            return Ok(None);
        }
        let round = place_tx(&mut tx, self.backend(), now, p).await?;
        tx.commit().await?;
        Ok(Some(round))
    }

    /// A worker leaving on purpose: its cameras are free at once, and it is no longer live.
    pub async fn leave(&self, worker: &str, now: Millis) -> Result<usize, RegistryError> {
        let mut tx = self.begin().await?;
        let freed = sqlx::query("UPDATE camera_leases SET worker_id = NULL, expires_ms = $1 WHERE worker_id = $2")
            .bind(now)
            .bind(worker)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM workers WHERE id = $1").bind(worker).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(freed as usize)
    }

    /// The live workers with the load of their live leases, and how many placeable cameras no
    /// live worker holds.
    pub async fn cluster_load(&self, now: Millis, p: &Placement) -> Result<(Vec<WorkerLoad>, u64), RegistryError> {
        let mut conn = self.pool().acquire().await?;
        let snap = snapshot(&mut conn, now, p).await?;
        Ok((snap.live, snap.unheld.values().sum()))
    }

    /// Cameras that should be ingested and that no live worker has held for at least `grace_ms`
    /// (let go that long ago, their worker's heartbeat lapsed that long ago, or never placed),
    /// among those whose status says they stream (`online`, `degraded`): a cluster whose workers
    /// are all gone, or that cannot place them, shows them offline. Empty where no camera was
    /// ever placed (a single process runs its cameras itself).
    pub async fn unheld_streaming(&self, now: Millis, grace_ms: Millis) -> Result<Vec<String>, RegistryError> {
        let before = now.saturating_sub(grace_ms);
        Ok(sqlx::query_scalar(&format!(
            "SELECT c.id FROM cameras c LEFT JOIN camera_leases l ON l.camera_id = c.id
                 LEFT JOIN workers w ON w.id = l.worker_id
             WHERE {PLACEABLE} AND c.status IN ('online', 'degraded')
               AND EXISTS (SELECT 1 FROM camera_leases)
               AND (l.camera_id IS NULL
                    OR (l.worker_id IS NULL AND l.expires_ms <= $1)
                    OR (l.worker_id IS NOT NULL AND COALESCE(w.expires_ms, 0) <= $1))
             ORDER BY c.id"
        ))
        .bind(before)
        .fetch_all(self.pool())
        .await?)
    }

    /// Which live worker holds each camera (cameras no live worker holds are absent).
    pub async fn holders(&self, now: Millis) -> Result<BTreeMap<String, (String, i64)>, RegistryError> {
        let rows = sqlx::query(
            "SELECT l.camera_id, l.worker_id, l.epoch FROM camera_leases l JOIN workers w ON w.id = l.worker_id
             WHERE w.expires_ms > $1",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), (r.get(1), r.get(2)))).collect())
    }
}

/// Fencing: a write for `camera` by `worker` holding `epoch` goes ahead only while that lease is
/// live, checked in the write's own transaction (on PostgreSQL the lease row is locked until the
/// transaction ends, so it cannot change hands in between).
pub async fn check_lease(
    tx: &mut WriteTx,
    backend: Backend,
    camera: &str,
    worker: &str,
    epoch: i64,
    now: Millis,
) -> Result<(), RegistryError> {
    let lock = if backend == Backend::Postgres { " FOR SHARE OF l" } else { "" };
    let row = sqlx::query(&format!(
        "SELECT l.worker_id, l.epoch, COALESCE(w.expires_ms, 0) FROM camera_leases l
             LEFT JOIN workers w ON w.id = l.worker_id WHERE l.camera_id = $1{lock}"
    ))
    .bind(camera)
    .fetch_optional(&mut **tx)
    .await?;
    let holds = row.as_ref().is_some_and(|r| {
        r.get::<Option<String>, _>(0).as_deref() == Some(worker)
            && r.get::<i64, _>(1) == epoch
            && r.get::<i64, _>(2) > now
    });
    if holds {
        Ok(())
    } else {
        Err(RegistryError::Fenced { camera: camera.to_string(), worker: worker.to_string(), epoch })
    }
}

/// Raises the lease generation of each worker (their leases changed in this transaction).
async fn bump_generations<'a>(
    tx: &mut WriteTx,
    workers: impl Iterator<Item = &'a String>,
) -> Result<(), RegistryError> {
    for w in workers {
        sqlx::query("UPDATE workers SET lease_gen = lease_gen + 1 WHERE id = $1").bind(w).execute(&mut **tx).await?;
    }
    Ok(())
}

/// One placement round for every live worker, in `tx`.
async fn place_tx(
    tx: &mut WriteTx,
    backend: Backend,
    now: Millis,
    p: &Placement,
) -> Result<BTreeMap<String, PlacementRound>, RegistryError> {
    // A camera disabled or decommissioned while held is given up: its worker stops it at its next
    // heartbeat, and it counts toward nobody's load.
    let gave_up: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT DISTINCT worker_id FROM camera_leases
         WHERE worker_id IS NOT NULL AND camera_id NOT IN (SELECT c.id FROM cameras c WHERE {PLACEABLE})"
    ))
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query(&format!(
        "UPDATE camera_leases SET worker_id = NULL, expires_ms = $1
         WHERE worker_id IS NOT NULL AND camera_id NOT IN (SELECT c.id FROM cameras c WHERE {PLACEABLE})"
    ))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let snap = snapshot(tx, now, p).await?;
    if snap.without_row > 0 {
        // Every camera to place has a lease row to lock and to count epochs on (a concurrent round
        // may be adding the same rows: the conflict is not an error).
        sqlx::query(&format!(
            "INSERT INTO camera_leases (camera_id, worker_id, epoch, acquired_ms, expires_ms)
             SELECT c.id, NULL, 0, 0, 0 FROM cameras c
             WHERE {PLACEABLE} AND NOT EXISTS (SELECT 1 FROM camera_leases l WHERE l.camera_id = c.id)
             ON CONFLICT (camera_id) DO NOTHING"
        ))
        .execute(&mut **tx)
        .await?;
    }
    let mut out: BTreeMap<String, PlacementRound> = BTreeMap::new();
    let cores: u64 = snap.live.iter().map(|l| u64::from(l.cores)).sum();
    if cores == 0 {
        bump_generations(tx, gave_up.iter()).await?;
        return Ok(out);
    }
    // Each live worker's share, and its load as the round changes it.
    let mut ws: Vec<Slot> = snap
        .live
        .iter()
        .map(|l| Slot {
            id: l.id.clone(),
            share: (snap.total as f64 * f64::from(l.cores) / cores as f64).ceil() as u64,
            max: u64::from(l.max_cameras),
            profiles: l.profiles.clone(),
            weight: l.weight,
            count: l.cameras,
            moved: 0,
            expires_ms: l.expires_ms,
        })
        .collect();
    let unheld = snap.unheld.clone();

    // Releases: a worker over its share by the slack and its costliest camera, or over its share
    // at all while another worker is starved (below its share by more than half the slack, as a
    // worker that just joined a large cluster is), or over its limit, gives back its last cameras by id
    // that another worker has room for. No more are released in a round than the workers below
    // their share can take in it, so that nothing is released only to be claimed back.
    let mut intake: usize =
        ws.iter().filter(|w| w.weight < w.share).map(|w| p.batch.min(w.max.saturating_sub(w.count) as usize)).sum();
    let starved = |ws: &[Slot], me: usize| {
        ws.iter().enumerate().any(|(i, o)| i != me && (o.weight as f64) < o.share as f64 * (1.0 - p.slack / 2.0))
    };
    for i in 0..ws.len() {
        let heaviest = snap.heaviest.get(&ws[i].id).copied().unwrap_or(0);
        let over = (ws[i].share as f64 * (1.0 + p.slack)).ceil() as u64 + heaviest;
        let pulled = ws[i].weight > ws[i].share && starved(&ws, i);
        if ws[i].count > ws[i].max {
            // Over its limit: gives back regardless of intake.
        } else if intake == 0 || (ws[i].weight <= over && !pulled) {
            continue;
        }
        let own = sqlx::query(
            "SELECT l.camera_id, l.epoch, c.profile FROM camera_leases l JOIN cameras c ON c.id = l.camera_id
             WHERE l.worker_id = $1 ORDER BY l.camera_id DESC",
        )
        .bind(&ws[i].id)
        .fetch_all(&mut **tx)
        .await?;
        for r in &own {
            let w = &ws[i];
            let over_limit = w.count > w.max;
            if w.moved >= p.batch || (w.weight <= w.share && !over_limit) || (intake == 0 && !over_limit) {
                break;
            }
            let profile = r.get::<String, _>(2).parse::<Profile>().ok();
            let forced = w.count > w.max;
            if !forced && !profile.is_some_and(|pr| room_for(&ws, i, pr)) {
                continue;
            }
            let camera: String = r.get(0);
            let epoch: i64 = r.get(1);
            let done = sqlx::query(
                "UPDATE camera_leases SET worker_id = NULL, expires_ms = $1
                 WHERE camera_id = $2 AND worker_id = $3 AND epoch = $4",
            )
            .bind(now.saturating_add(p.handoff_ms.max(0)))
            .bind(&camera)
            .bind(&ws[i].id)
            .bind(epoch)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 1 {
                let wt = profile.map(|pr| p.weight(pr)).unwrap_or(0);
                let w = &mut ws[i];
                w.weight = w.weight.saturating_sub(wt);
                w.count = w.count.saturating_sub(1);
                w.moved += 1;
                intake = intake.saturating_sub(1);
                // Claimed in a later round, after the hand-off time (see `Placement::handoff_ms`).
                out.entry(w.id.clone()).or_default().released.push(camera);
            }
        }
    }

    // Claims: free cameras to the least loaded worker (by share) that ingests the profile and has
    // room; past its share only when no worker below its share ingests the profile.
    let room: usize = ws.iter().map(|w| p.batch.min(w.max.saturating_sub(w.count) as usize)).sum();
    if room > 0 && unheld.values().any(|&n| n > 0) {
        let lock = if backend == Backend::Postgres { " FOR UPDATE OF l SKIP LOCKED" } else { "" };
        let free = sqlx::query(&format!(
            "SELECT l.camera_id, c.profile FROM camera_leases l JOIN cameras c ON c.id = l.camera_id
             WHERE ((l.worker_id IS NULL AND l.expires_ms <= $1)
                    OR (l.worker_id IS NOT NULL
                        AND NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = l.worker_id AND w.expires_ms > $1)))
                   AND {PLACEABLE}
             ORDER BY l.camera_id LIMIT $2{lock}"
        ))
        .bind(now)
        .bind(room as i64)
        .fetch_all(&mut **tx)
        .await?;
        for r in &free {
            let Ok(profile) = r.get::<String, _>(1).parse::<Profile>() else { continue };
            let eligible = |w: &Slot| w.profiles.contains(&profile) && w.count < w.max && w.moved < p.batch;
            let ratio = |w: &Slot| w.weight as f64 / w.share.max(1) as f64;
            let best = ws
                .iter()
                .enumerate()
                .filter(|(_, w)| eligible(w) && w.weight < w.share)
                .min_by(|a, b| ratio(a.1).total_cmp(&ratio(b.1)))
                .or_else(|| {
                    ws.iter().enumerate().filter(|(_, w)| eligible(w)).min_by(|a, b| ratio(a.1).total_cmp(&ratio(b.1)))
                })
                .map(|(i, _)| i);
            let Some(i) = best else { continue };
            let camera: String = r.get(0);
            let claimed: Option<i64> = sqlx::query_scalar(
                "UPDATE camera_leases SET worker_id = $1, epoch = epoch + 1, acquired_ms = $2, expires_ms = $3
                 WHERE camera_id = $4 AND ((worker_id IS NULL AND expires_ms <= $2)
                     OR (worker_id IS NOT NULL AND NOT EXISTS
                         (SELECT 1 FROM workers w WHERE w.id = camera_leases.worker_id AND w.expires_ms > $2)))
                 RETURNING epoch",
            )
            .bind(&ws[i].id)
            .bind(now)
            .bind(ws[i].expires_ms)
            .bind(&camera)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(epoch) = claimed {
                let w = &mut ws[i];
                w.weight += p.weight(profile);
                w.count += 1;
                w.moved += 1;
                out.entry(w.id.clone()).or_default().claimed.push(Lease {
                    camera_id: camera,
                    epoch,
                    expires_ms: w.expires_ms,
                });
            }
        }
    }
    for w in &ws {
        let r = out.entry(w.id.clone()).or_default();
        r.share = w.share;
        r.held = w.weight;
    }
    // Every worker whose leases changed hears of it at its next heartbeat (one write per
    // worker, in the order of their ids).
    let changed: std::collections::BTreeSet<&String> = out
        .iter()
        .filter(|(_, r)| !r.claimed.is_empty() || !r.released.is_empty())
        .map(|(id, _)| id)
        .chain(gave_up.iter())
        .collect();
    bump_generations(tx, changed.into_iter()).await?;
    Ok(out)
}

/// A live worker during a round.
struct Slot {
    id: String,
    share: u64,
    max: u64,
    profiles: Vec<Profile>,
    weight: u64,
    count: u64,
    /// Cameras claimed or released this round.
    moved: usize,
    /// Its heartbeat's expiry: its leases' too.
    expires_ms: Millis,
}

/// Whether a worker other than `ws[me]` can still take a camera of `profile`: below its share and
/// its limit, and ingesting the profile. Only then does a worker over its share give one back.
fn room_for(ws: &[Slot], me: usize, profile: Profile) -> bool {
    ws.iter()
        .enumerate()
        .any(|(i, o)| i != me && o.profiles.contains(&profile) && o.weight < o.share && o.count < o.max)
}

/// The placement's view at `now`, from one pass over the cameras to place.
struct Snapshot {
    /// Weight of every camera to place.
    total: u64,
    /// Cameras to place that no live worker holds, by profile.
    unheld: HashMap<Profile, u64>,
    /// Cameras to place without a lease row yet.
    without_row: u64,
    /// Live workers with the cameras and weight of their live leases.
    live: Vec<WorkerLoad>,
    /// The weight of the costliest camera each holder holds.
    heaviest: HashMap<String, u64>,
}

async fn snapshot(conn: &mut sqlx::AnyConnection, now: Millis, p: &Placement) -> Result<Snapshot, RegistryError> {
    let workers = sqlx::query(
        "SELECT id, cores, max_cameras, profiles, cpu_share, heartbeat_ms, expires_ms FROM workers
         WHERE expires_ms > $1 ORDER BY id",
    )
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let rows = sqlx::query(&format!(
        "SELECT w.id, c.profile, COUNT(*), CAST(SUM(CASE WHEN l.camera_id IS NULL THEN 1 ELSE 0 END) AS BIGINT)
         FROM cameras c LEFT JOIN camera_leases l ON l.camera_id = c.id
             LEFT JOIN workers w ON w.id = l.worker_id AND w.expires_ms > $1
         WHERE {PLACEABLE}
         GROUP BY w.id, c.profile"
    ))
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let mut snap =
        Snapshot { total: 0, unheld: HashMap::new(), without_row: 0, live: Vec::new(), heaviest: HashMap::new() };
    let mut load: HashMap<String, (u64, u64)> = HashMap::new();
    for r in &rows {
        let Ok(profile) = r.get::<String, _>(1).parse::<Profile>() else { continue };
        let n = r.get::<i64, _>(2).max(0) as u64;
        snap.total += n * p.weight(profile);
        snap.without_row += r.get::<Option<i64>, _>(3).unwrap_or(0).max(0) as u64;
        match r.get::<Option<String>, _>(0) {
            Some(holder) => {
                let h = snap.heaviest.entry(holder.clone()).or_default();
                *h = (*h).max(p.weight(profile));
                let e = load.entry(holder).or_default();
                e.0 += n;
                e.1 += n * p.weight(profile);
            }
            None => *snap.unheld.entry(profile).or_default() += n,
        }
    }
    // A holder whose worker row has expired holds nothing any more (its leases expire with it, or
    // sooner); its cameras count as unheld only once the leases themselves expire.
    snap.live = workers
        .iter()
        .map(|r| {
            let id: String = r.get(0);
            let (cameras, weight) = load.get(&id).copied().unwrap_or_default();
            WorkerLoad {
                cores: r.get::<i64, _>(1).clamp(0, i64::from(u32::MAX)) as u32,
                max_cameras: r.get::<i64, _>(2).clamp(0, i64::from(u32::MAX)) as u32,
                profiles: parse_profiles(&r.get::<String, _>(3)),
                cpu_share: r.get(4),
                heartbeat_ms: r.get(5),
                expires_ms: r.get(6),
                cameras,
                weight,
                id,
            }
        })
        .collect();
    Ok(snap)
}

/// The leases `worker` holds at `now`.
async fn held(conn: &mut sqlx::AnyConnection, worker: &str, now: Millis) -> Result<Vec<Lease>, RegistryError> {
    let rows = sqlx::query(
        "SELECT l.camera_id, l.epoch, w.expires_ms FROM camera_leases l JOIN workers w ON w.id = l.worker_id
         WHERE l.worker_id = $1 AND w.expires_ms > $2 ORDER BY l.camera_id",
    )
    .bind(worker)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.iter().map(lease_of).collect())
}

fn lease_of(r: &sqlx::any::AnyRow) -> Lease {
    Lease { camera_id: r.get(0), epoch: r.get(1), expires_ms: r.get(2) }
}
