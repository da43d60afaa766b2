//! Camera leases at the reference city's scale: 76,164 cameras (registry rows, not streams) over
//! 50 simulated workers of 16 cores each, on both engines. What the registry spends:
//!
//! 1. Cold start: rounds (every worker heartbeats, then one placement round runs for all) until
//!    nothing moves; rounds and time.
//! 2. Steady state: one round (50 heartbeats and the placement) when nothing moves (the cost paid
//!    every third of a lease time), against a floor in the same run: a bare `UPDATE` of each
//!    worker's lease rows (the least a renewal can cost) plus one `COUNT(*)` of the leases.
//! 3. A worker dies: rounds and time until its cameras are held again, and the largest number of
//!    cameras one worker claimed in one round.
//! 4. A worker joins: rounds until it holds its share.
//!
//! `TIANWANG_BENCH_ENGINES=sqlite` skips PostgreSQL (a fresh database on 127.0.0.1:5432).
//! Run: `cargo bench --bench leases`.

use std::process::Command;
use std::time::Instant;

use tianwang::config::Profile;
use tianwang::registry::{Placement, Registry, WorkerSpec};

const CAMERAS: i64 = 76_164;
const WORKERS: usize = 50;
const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn psql(sql: &str) {
    let ok = Command::new("psql").args([PG_ADMIN, "-qc", sql]).status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "psql: {sql}");
}

fn worker(i: usize) -> WorkerSpec {
    WorkerSpec {
        id: format!("w-{i:02}"),
        cores: 16,
        max_cameras: 10_000,
        profiles: vec![Profile::Health, Profile::Street, Profile::Checkpoint],
        cpu_share: 0.0,
    }
}

/// The city's cameras, straight into the table: 90 % health, 8 % street, 2 % checkpoint.
async fn fill(reg: &Registry) {
    let sql = format!(
        "INSERT INTO cameras (id, name, url, has_credentials, codec, transport, lon, lat, mounting_height_m,
             bearing_deg, hfov_deg, width_px, height_px, kind, owner, grid_cell_id, profile, enabled, status,
             status_reason, status_since_ms, config_source, config_hash, created_at_ms, updated_at_ms)
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {CAMERAS})
         SELECT 'cam-' || CAST(i AS TEXT), 'c', 'rtsp://10.0.0.1/x', 0, 'h264', 'tcp', 113.6, 34.7, 5, 0, 90, 1920, 1080,
             'street', 'public', NULL,
             CASE WHEN i % 50 = 0 THEN 'checkpoint' WHEN i % 25 = 1 OR i % 25 = 2 THEN 'street' ELSE 'health' END,
             1, 'unknown', '', 0, 'bench', '', 0, 0
         FROM n"
    );
    sqlx::query(&sql).execute(reg.pool()).await.unwrap();
    // What autovacuum (PostgreSQL) or `PRAGMA optimize` would have done on a live registry.
    sqlx::query("ANALYZE").execute(reg.pool()).await.unwrap();
}

/// One round: every worker heartbeats, then one placement round runs for all (what
/// `place_if_due` runs once per period on whichever node asks first). (cameras moved, most one worker claimed,
/// seconds in all, seconds of the heartbeats).
async fn round(reg: &Registry, workers: &[WorkerSpec], now: i64, p: &Placement) -> (usize, usize, f64, f64) {
    let t = Instant::now();
    for w in workers {
        reg.heartbeat(w, now, p).await.unwrap();
    }
    let beats = t.elapsed().as_secs_f64();
    let (mut moved, mut most) = (0, 0);
    for r in reg.place_all(now, p).await.unwrap().values() {
        moved += r.claimed.len() + r.released.len();
        most = most.max(r.claimed.len());
    }
    (moved, most, t.elapsed().as_secs_f64(), beats)
}

async fn run(engine: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (url, pg_db) = if engine == "postgres" {
        let name = format!("tw_bench_leases_{}", std::process::id());
        psql(&format!("CREATE DATABASE {name}"));
        (format!("postgres://postgres@127.0.0.1:5432/{name}"), Some(name))
    } else {
        (format!("sqlite://{}/bench.db", dir.path().display()), None)
    };
    let reg = Registry::open(&url).await.unwrap();
    fill(&reg).await;
    let p = Placement::default();
    let tick = p.ttl_ms / 3;
    let mut workers: Vec<WorkerSpec> = (0..WORKERS).map(worker).collect();
    let mut now = 1_000_000;

    // 1. Cold start.
    let (mut rounds, mut secs, mut quiet) = (0, 0.0, 0);
    loop {
        let (moved, _, s, _) = round(&reg, &workers, now, &p).await;
        now += tick;
        rounds += 1;
        secs += s;
        // Settled once quiet for longer than a hand-off (a released camera is claimed after it).
        quiet = if moved == 0 { quiet + tick } else { 0 };
        if quiet > p.handoff_ms || rounds > 200 {
            break;
        }
    }
    rounds -= (quiet / tick) as usize;
    let (loads, unheld) = reg.cluster_load(now, &p).await.unwrap();
    let range = |f: fn(&tianwang::registry::WorkerLoad) -> u64| {
        (loads.iter().map(f).min().unwrap_or(0), loads.iter().map(f).max().unwrap_or(0))
    };
    let ((lo, hi), (wlo, whi)) = (range(|l| l.cameras), range(|l| l.weight));
    println!(
        "{engine}: cold start of {CAMERAS} cameras on {WORKERS} workers: {rounds} rounds ({:.1} s of lease time), {secs:.2} s of registry time; {unheld} unheld; cameras per worker {lo}..{hi}, load per worker {:.2}..{:.2} cores (weighed by profile; even {:.2})",
        rounds as f64 * tick as f64 / 1000.0,
        wlo as f64 / 1000.0,
        whi as f64 / 1000.0,
        loads.iter().map(|l| l.weight).sum::<u64>() as f64 / 1000.0 / WORKERS as f64
    );

    // 2. Steady state, against the floor.
    let (mut steady, mut beats) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let (moved, _, s, b) = round(&reg, &workers, now, &p).await;
        assert_eq!(moved, 0, "nothing moves in the steady state");
        now += tick;
        steady.push(s);
        beats.push(b);
    }
    beats.sort_by(f64::total_cmp);
    let t = Instant::now();
    for _ in 0..5 {
        for w in &workers {
            sqlx::query("UPDATE camera_leases SET expires_ms = expires_ms WHERE worker_id = $1")
                .bind(&w.id)
                .execute(reg.pool())
                .await
                .unwrap();
        }
        let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM camera_leases").fetch_one(reg.pool()).await.unwrap();
    }
    let floor = t.elapsed().as_secs_f64() / 5.0;
    steady.sort_by(f64::total_cmp);
    let med = steady[steady.len() / 2];
    println!(
        "{engine}: steady round of {WORKERS} workers (heartbeat + placement each): {:.0} ms (median of 5), {:.2} ms per worker, of which heartbeats {:.2} ms per worker; floor (bare UPDATE of each worker's leases + one COUNT): {:.0} ms; ratio {:.2}; registry busy {:.1} % of a round's {} s",
        med * 1000.0,
        med * 1000.0 / WORKERS as f64,
        beats[beats.len() / 2] * 1000.0 / WORKERS as f64,
        floor * 1000.0,
        med / floor,
        med * 100.0 / (tick as f64 / 1000.0),
        tick / 1000
    );

    // 2b. The same steady heartbeats naming the lease generation each worker last heard (what a
    // worker sends): nothing is read back while nothing changed. Against the heartbeats above,
    // which read every held lease back (as every heartbeat did before the generation).
    let mut gens = std::collections::HashMap::new();
    for w in &workers {
        let b = reg.heartbeat_since(w, now, &p, None).await.unwrap();
        gens.insert(w.id.clone(), b.generation);
    }
    let mut since = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        for w in &workers {
            let b = reg.heartbeat_since(w, now, &p, gens.get(&w.id).copied()).await.unwrap();
            assert!(b.leases.is_none(), "nothing changed in the steady state");
            gens.insert(w.id.clone(), b.generation);
        }
        since.push(t.elapsed().as_secs_f64());
        let moved: usize =
            reg.place_all(now, &p).await.unwrap().values().map(|r| r.claimed.len() + r.released.len()).sum();
        assert_eq!(moved, 0);
        now += tick;
    }
    since.sort_by(f64::total_cmp);
    let (full, by_gen) = (beats[beats.len() / 2], since[since.len() / 2]);
    println!(
        "{engine}: steady heartbeat naming the lease generation: {:.2} ms per worker (median of 5 rounds); reading every held lease back (the heartbeats above, same run): {:.2} ms; ratio {:.2}",
        by_gen * 1000.0 / WORKERS as f64,
        full * 1000.0 / WORKERS as f64,
        by_gen / full
    );

    // 3. A worker dies.
    let dead = workers.pop().unwrap();
    // Its last heartbeat was the steady rounds' last.
    let last_beat = now - tick;
    let (mut rounds, mut secs, mut most) = (0, 0.0, 0);
    loop {
        let (_, m, s, _) = round(&reg, &workers, now, &p).await;
        rounds += 1;
        secs += s;
        most = most.max(m);
        let holders = reg.holders(now).await.unwrap();
        now += tick;
        if (holders.len() as i64 == CAMERAS && holders.values().all(|(w, _)| *w != dead.id)) || rounds > 100 {
            break;
        }
    }
    println!(
        "{engine}: worker {} killed: its cameras all held by others {:.1} s after its last heartbeat (lease {} s), {rounds} rounds, {secs:.2} s of registry time, at most {most} cameras claimed by one worker in one round",
        dead.id,
        (now - tick - last_beat) as f64 / 1000.0,
        p.ttl_ms / 1000
    );

    // 4. It comes back: the others give cameras back a batch at a time.
    workers.push(dead);
    let back_id = workers.last().unwrap().id.clone();
    let (mut rounds, mut secs, mut most, mut quiet) = (0, 0.0, 0, 0);
    loop {
        let (moved, m, s, _) = round(&reg, &workers, now, &p).await;
        now += tick;
        rounds += 1;
        secs += s;
        most = most.max(m);
        quiet = if moved == 0 { quiet + tick } else { 0 };
        if quiet > p.handoff_ms || rounds > 200 {
            break;
        }
    }
    rounds -= (quiet / tick) as usize;
    let (loads, _) = reg.cluster_load(now, &p).await.unwrap();
    let back = loads.iter().find(|l| l.id == back_id).map(|l| l.cameras).unwrap_or(0);
    let (lo, hi) = (
        loads.iter().map(|l| l.weight).min().unwrap_or(0) as f64 / 1000.0,
        loads.iter().map(|l| l.weight).max().unwrap_or(0) as f64 / 1000.0,
    );
    println!(
        "{engine}: the worker rejoins: holds {back} cameras when nothing moves any more, after {rounds} rounds ({:.1} s), at most {most} cameras claimed by one worker in one round, {secs:.2} s of registry time; load per worker {lo:.2}..{hi:.2} cores",
        rounds as f64 * tick as f64 / 1000.0
    );

    reg.close().await;
    if let Some(name) = pg_db {
        psql(&format!("DROP DATABASE {name}"));
    }
}

fn main() {
    let engines = std::env::var("TIANWANG_BENCH_ENGINES").unwrap_or_else(|_| "sqlite,postgres".into());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    for engine in engines.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        rt.block_on(run(engine));
    }
}
