//! Camera assignment by lease, for a city on many machines.
//!
//! Workers heartbeat into `workers`; each camera is held by at most one live worker through its row
//! in `camera_leases`. A lease has an epoch, the fencing token: it rises every time the camera
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

use sqlx::Row;

use super::{Backend, Registry, RegistryError, WriteTx};
use crate::clock::Millis;
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
}

impl Default for Placement {
    /// Weights from BENCHMARKS.md (ingest, per stream): health ~0.002 core, street ~0.045 plus
    /// motion, checkpoint ~0.065 plus plate reading.
    fn default() -> Self {
        Self { ttl_ms: 15_000, batch: 50, weight_health: 2, weight_street: 60, weight_checkpoint: 150, slack: 0.1 }
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

/// What one placement round did for one worker.
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
    /// A worker's heartbeat: it is live until `now + ttl`, and so is every lease it still holds
    /// (a lease that already expired is not revived: the camera must be claimed again, with a new
    /// epoch). Answers the leases it holds.
    pub async fn heartbeat(&self, w: &WorkerSpec, now: Millis, p: &Placement) -> Result<Vec<Lease>, RegistryError> {
        let expires = now.saturating_add(p.ttl_ms);
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO workers (id, cores, max_cameras, profiles, cpu_share, started_ms, heartbeat_ms, expires_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7)
             ON CONFLICT (id) DO UPDATE SET cores = excluded.cores, max_cameras = excluded.max_cameras,
                 profiles = excluded.profiles, cpu_share = excluded.cpu_share,
                 started_ms = CASE WHEN workers.expires_ms <= excluded.heartbeat_ms
                                   THEN excluded.started_ms ELSE workers.started_ms END,
                 heartbeat_ms = excluded.heartbeat_ms, expires_ms = excluded.expires_ms",
        )
        .bind(&w.id)
        .bind(i64::from(w.cores))
        .bind(i64::from(w.max_cameras))
        .bind(profiles_text(&w.profiles))
        .bind(if w.cpu_share.is_finite() { w.cpu_share.clamp(0.0, 1.0) } else { 0.0 })
        .bind(now)
        .bind(expires)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE camera_leases SET expires_ms = $1 WHERE worker_id = $2 AND expires_ms > $3")
            .bind(expires)
            .bind(&w.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let held = held_tx(&mut tx, &w.id, now).await?;
        tx.commit().await?;
        Ok(held)
    }

    /// The leases `worker` holds at `now`.
    pub async fn leases_of(&self, worker: &str, now: Millis) -> Result<Vec<Lease>, RegistryError> {
        let rows = sqlx::query(
            "SELECT camera_id, epoch, expires_ms FROM camera_leases
             WHERE worker_id = $1 AND expires_ms > $2 ORDER BY camera_id",
        )
        .bind(worker)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(lease_of).collect())
    }

    /// One placement round for `w` (which must have sent its heartbeat): claims free cameras up to
    /// its fair share, or releases cameras over it, at most `p.batch` either way.
    pub async fn place(&self, w: &WorkerSpec, now: Millis, p: &Placement) -> Result<PlacementRound, RegistryError> {
        let mut tx = self.begin().await?;
        // Every camera to place has a lease row to lock and to count epochs on (another round may
        // be adding the same rows: the conflict is not an error).
        sqlx::query(&format!(
            "INSERT INTO camera_leases (camera_id, worker_id, epoch, acquired_ms, expires_ms)
             SELECT c.id, NULL, 0, 0, 0 FROM cameras c
             WHERE {PLACEABLE} AND NOT EXISTS (SELECT 1 FROM camera_leases l WHERE l.camera_id = c.id)
             ON CONFLICT (camera_id) DO NOTHING"
        ))
        .execute(&mut *tx)
        .await?;

        // The weight to place, and every live worker with the load of its live leases.
        let mut total = 0u64;
        for r in sqlx::query(&format!("SELECT c.profile, COUNT(*) FROM cameras c WHERE {PLACEABLE} GROUP BY c.profile"))
            .fetch_all(&mut *tx)
            .await?
        {
            if let Ok(profile) = r.get::<String, _>(0).parse::<Profile>() {
                total += p.weight(profile) * r.get::<i64, _>(1).max(0) as u64;
            }
        }
        let live = live_loads(&mut tx, now, p).await?;
        let cores: u64 = live.iter().map(|l| u64::from(l.cores)).sum();
        let mut round = PlacementRound::default();
        if cores == 0 || !live.iter().any(|l| l.id == w.id) {
            // Not live (no heartbeat yet, or it expired): it may take nothing.
            tx.commit().await?;
            return Ok(round);
        }
        let share_of = |c: u32| (total as f64 * f64::from(c) / cores as f64).ceil() as u64;
        round.share = share_of(w.cores);
        // Whether another live worker can still take a camera of this profile: below its share
        // and its limit, and ingesting the profile. Only then does a worker over its share give
        // cameras back, and only while one does is a worker held to its share when claiming, so
        // that limited or specialised workers never leave cameras unplaced.
        let room_for = |profile: Profile| {
            live.iter().any(|o| {
                o.id != w.id
                    && o.profiles.contains(&profile)
                    && o.weight < share_of(o.cores)
                    && o.cameras < u64::from(o.max_cameras)
            })
        };

        // What this worker holds now, from its live leases.
        let mine = sqlx::query(
            "SELECT l.camera_id, l.epoch, c.profile FROM camera_leases l JOIN cameras c ON c.id = l.camera_id
             WHERE l.worker_id = $1 AND l.expires_ms > $2 ORDER BY l.camera_id",
        )
        .bind(&w.id)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut held: u64 = 0;
        let mut count = mine.len();
        let mut heaviest = 0;
        let mut own: Vec<(String, i64, Option<Profile>, u64)> = Vec::with_capacity(mine.len());
        for r in &mine {
            let profile = r.get::<String, _>(2).parse::<Profile>().ok();
            let wt = profile.map(|pr| p.weight(pr)).unwrap_or(0);
            held += wt;
            heaviest = heaviest.max(wt);
            own.push((r.get(0), r.get(1), profile, wt));
        }
        let max = w.max_cameras as usize;

        let over = (round.share as f64 * (1.0 + p.slack)).ceil() as u64 + heaviest;
        if held > over || count > max {
            // Give back the last cameras (by id) that another worker can take, until at the share,
            // at most a batch. A worker over its limit (lowered since) gives back regardless.
            for (camera, epoch, profile, wt) in own.iter().rev() {
                if round.released.len() >= p.batch || (held <= round.share && count <= max) {
                    break;
                }
                let forced = count > max || profile.is_none_or(|pr| !w.profiles.contains(&pr));
                if !forced && !profile.is_some_and(&room_for) {
                    continue;
                }
                let done = sqlx::query(
                    "UPDATE camera_leases SET worker_id = NULL, expires_ms = $1
                     WHERE camera_id = $2 AND worker_id = $3 AND epoch = $4",
                )
                .bind(now)
                .bind(camera)
                .bind(&w.id)
                .bind(epoch)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 1 {
                    held -= wt;
                    count -= 1;
                    round.released.push(camera.clone());
                }
            }
        } else if count < max && !w.profiles.is_empty() {
            let accepted = w.profiles.iter().map(|p| format!("'{}'", p.as_str())).collect::<Vec<_>>().join(", ");
            let lock = if self.backend() == Backend::Postgres { " FOR UPDATE OF l SKIP LOCKED" } else { "" };
            let want = p.batch.min(max - count);
            let free = sqlx::query(&format!(
                "SELECT l.camera_id, c.profile FROM camera_leases l JOIN cameras c ON c.id = l.camera_id
                 WHERE (l.worker_id IS NULL OR l.expires_ms <= $1) AND {PLACEABLE} AND c.profile IN ({accepted})
                 ORDER BY l.camera_id LIMIT $2{lock}"
            ))
            .bind(now)
            .bind((want * 4) as i64)
            .fetch_all(&mut *tx)
            .await?;
            let expires = now.saturating_add(p.ttl_ms);
            for r in &free {
                if round.claimed.len() >= want {
                    break;
                }
                let camera: String = r.get(0);
                let Ok(profile) = r.get::<String, _>(1).parse::<Profile>() else { continue };
                if held >= round.share && room_for(profile) {
                    continue;
                }
                let claimed: Option<i64> = sqlx::query_scalar(
                    "UPDATE camera_leases SET worker_id = $1, epoch = epoch + 1, acquired_ms = $2, expires_ms = $3
                     WHERE camera_id = $4 AND (worker_id IS NULL OR expires_ms <= $2) RETURNING epoch",
                )
                .bind(&w.id)
                .bind(now)
                .bind(expires)
                .bind(&camera)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(epoch) = claimed {
                    held += p.weight(profile);
                    round.claimed.push(Lease { camera_id: camera, epoch, expires_ms: expires });
                }
            }
        }
        round.held = held;
        tx.commit().await?;
        Ok(round)
    }

    /// A worker leaving on purpose: its cameras are free at once, and it is no longer live.
    pub async fn leave(&self, worker: &str, now: Millis) -> Result<usize, RegistryError> {
        let mut tx = self.begin().await?;
        let freed = sqlx::query(
            "UPDATE camera_leases SET worker_id = NULL, expires_ms = $1 WHERE worker_id = $2 AND expires_ms > $1",
        )
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
        let live = live_loads(&mut conn, now, p).await?;
        let unheld: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM cameras c WHERE {PLACEABLE} AND NOT EXISTS
                 (SELECT 1 FROM camera_leases l WHERE l.camera_id = c.id AND l.worker_id IS NOT NULL
                  AND l.expires_ms > $1)"
        ))
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        Ok((live, unheld.max(0) as u64))
    }

    /// Which live worker holds each camera (cameras no live worker holds are absent).
    pub async fn holders(&self, now: Millis) -> Result<BTreeMap<String, (String, i64)>, RegistryError> {
        let rows = sqlx::query(
            "SELECT camera_id, worker_id, epoch FROM camera_leases WHERE worker_id IS NOT NULL AND expires_ms > $1",
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
    let lock = if backend == Backend::Postgres { " FOR SHARE" } else { "" };
    let row =
        sqlx::query(&format!("SELECT worker_id, epoch, expires_ms FROM camera_leases WHERE camera_id = $1{lock}"))
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

/// Every live worker with the load of its live leases, by id.
async fn live_loads(
    conn: &mut sqlx::AnyConnection,
    now: Millis,
    p: &Placement,
) -> Result<Vec<WorkerLoad>, RegistryError> {
    let workers = sqlx::query(
        "SELECT id, cores, max_cameras, profiles, cpu_share, heartbeat_ms, expires_ms FROM workers
         WHERE expires_ms > $1 ORDER BY id",
    )
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let mut load: HashMap<String, (u64, u64)> = HashMap::new();
    for r in sqlx::query(
        "SELECT l.worker_id, c.profile, COUNT(*) FROM camera_leases l JOIN cameras c ON c.id = l.camera_id
         WHERE l.worker_id IS NOT NULL AND l.expires_ms > $1 GROUP BY l.worker_id, c.profile",
    )
    .bind(now)
    .fetch_all(&mut *conn)
    .await?
    {
        let n = r.get::<i64, _>(2).max(0) as u64;
        let wt = r.get::<String, _>(1).parse::<Profile>().map(|pr| p.weight(pr)).unwrap_or(0);
        let e = load.entry(r.get(0)).or_default();
        e.0 += n;
        e.1 += n * wt;
    }
    Ok(workers
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
        .collect())
}

async fn held_tx(tx: &mut WriteTx, worker: &str, now: Millis) -> Result<Vec<Lease>, RegistryError> {
    let rows = sqlx::query(
        "SELECT camera_id, epoch, expires_ms FROM camera_leases WHERE worker_id = $1 AND expires_ms > $2
         ORDER BY camera_id",
    )
    .bind(worker)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.iter().map(lease_of).collect())
}

fn lease_of(r: &sqlx::any::AnyRow) -> Lease {
    Lease { camera_id: r.get(0), epoch: r.get(1), expires_ms: r.get(2) }
}
