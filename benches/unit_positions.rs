//! Patrol units' positions: 2,000 units reporting every 5 s (400 positions a second, each its
//! own `POST /api/v1/units/{id}/positions`, as a tracker sends them) into the app on the real
//! clock, over HTTP, while a map reads every unit (`GET /api/v1/units`) once a second.
//!
//! 1. **At the city's rate** (20 s, 8,000 positions): ingest-to-map latency, from sending a
//!    position until the map's next read holds it — each position's POST answered (it is then on
//!    its unit's row, which is what the map reads) plus the wait for the next read and that read's
//!    own time: p50, p99, max; every read checks that no unit's position went backwards.
//! 2. **Flat out** (64 trackers posting back to back): positions per second the same app stores,
//!    against the 400 a second the city needs (the baseline: the ratio is the headroom).
//!
//! Both engines: SQLite (a file) and PostgreSQL (a fresh database on 127.0.0.1:5432;
//! `TIANWANG_BENCH_ENGINES=sqlite` skips it). Run: `cargo bench --bench unit_positions`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tianwang::app::{App, AppOptions};
use tianwang::clock::{Clock, SystemClock};
use tianwang::registry::{NewUnit, UnitKind, UnitStatus};

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const UNITS: usize = 2000;
const PERIOD_S: f64 = 5.0;
const RUN_S: f64 = 20.0;
const MAP_EVERY: Duration = Duration::from_secs(1);

fn psql(sql: &str) {
    let ok =
        std::process::Command::new("psql").args([PG_ADMIN, "-qc", sql]).status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "psql: {sql}");
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

struct Served {
    base: String,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    pg: Option<String>,
    _dir: tempfile::TempDir,
}

async fn serve(engine: &str) -> Served {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.toml"), "[site]\nname = \"Bench\"\ntimezone = \"Asia/Shanghai\"\n").unwrap();
    let (url, pg) = if engine == "postgres" {
        let name = format!("tw_units_{}", std::process::id());
        psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        psql(&format!("CREATE DATABASE {name}"));
        (format!("postgres://postgres@127.0.0.1:5432/{name}"), Some(name))
    } else {
        (format!("sqlite://{}/bench.db", dir.path().display()), None)
    };
    let opts = AppOptions { ingest: false, order_rounds: false, ..Default::default() };
    let app = App::build(dir.path(), &url, Arc::new(SystemClock), opts).await.expect("app builds");
    let reg = app.state.registry.clone();
    let token = reg.create_token("bench", "operator", true, SystemClock.now_ms()).await.unwrap();
    for i in 0..UNITS {
        let u = NewUnit {
            id: format!("pc-{i:04}"),
            name: format!("Patrol {i}"),
            kind: if i % 5 == 0 { UnitKind::Foot } else { UnitKind::Car },
            station: format!("station {}", i % 40),
            grid_cell: None,
            status: UnitStatus::Available,
        };
        reg.create_unit(&u, SystemClock.now_ms()).await.unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        tianwang::server::serve(app, listener, async move {
            let _ = rx.await;
        })
        .await
        .expect("serve");
    });
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    let client = reqwest::Client::builder().default_headers(h).pool_max_idle_per_host(128).build().unwrap();
    Served { base, client, stop: Some(tx), task, pg, _dir: dir }
}

impl Served {
    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
        if let Some(name) = self.pg.take() {
            psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }

    async fn post(&self, unit: usize, at_ms: i64, k: f64) -> bool {
        let body = serde_json::json!({"positions": [{
            "at_ms": at_ms, "lon": 113.60 + (unit % 50) as f64 * 1e-3 + k * 1e-5, "lat": 34.70 + (unit / 50) as f64 * 1e-3,
            "speed_mps": 8.0, "heading_deg": 90.0, "accuracy_m": 5.0
        }]});
        let url = format!("{}/api/v1/units/pc-{unit:04}/positions", self.base);
        matches!(self.client.post(url).json(&body).send().await, Ok(r) if r.status().is_success())
    }
}

/// The map: reads every unit once a second until `done`; returns (read start, read end) per read,
/// and checks that no unit's position went backwards between reads.
async fn map_reader(s: Arc<Served>, done: Arc<AtomicBool>) -> Vec<(Instant, Instant)> {
    let mut reads = Vec::new();
    let mut last: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    let mut next = Instant::now();
    while !done.load(Ordering::Relaxed) {
        tokio::time::sleep_until(next.into()).await;
        next += MAP_EVERY;
        let t0 = Instant::now();
        let r = s.client.get(format!("{}/api/v1/units", s.base)).send().await.expect("map read");
        let v: serde_json::Value = r.json().await.expect("units");
        let t1 = Instant::now();
        let units = v.as_array().expect("a list");
        assert_eq!(units.len(), UNITS);
        for u in units {
            if let Some(at) = u["position"]["at_ms"].as_i64() {
                let id = u["id"].as_str().unwrap().to_string();
                let prev = last.insert(id.clone(), at).unwrap_or(i64::MIN);
                assert!(at >= prev, "{id} went back from {prev} to {at}");
            }
        }
        reads.push((t0, t1));
    }
    reads
}

async fn at_rate(s: Arc<Served>) -> (Vec<f64>, Vec<f64>, usize) {
    let done = Arc::new(AtomicBool::new(false));
    let map = tokio::spawn(map_reader(s.clone(), done.clone()));
    let start = Instant::now();
    let gap = Duration::from_secs_f64(PERIOD_S / UNITS as f64);
    let total = (RUN_S / PERIOD_S) as usize * UNITS;
    let mut tasks = Vec::with_capacity(total);
    for n in 0..total {
        tokio::time::sleep_until((start + gap * n as u32).into()).await;
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let ok = s.post(n % UNITS, SystemClock.now_ms(), n as f64).await;
            (sent, Instant::now(), ok)
        }));
    }
    let mut posts = Vec::with_capacity(total);
    for t in tasks {
        posts.push(t.await.unwrap());
    }
    // One more read after the last answer.
    tokio::time::sleep(MAP_EVERY + Duration::from_millis(100)).await;
    done.store(true, Ordering::Relaxed);
    let reads = map.await.unwrap();
    let failed = posts.iter().filter(|p| !p.2).count();
    let mut post_ms: Vec<f64> = posts.iter().map(|p| (p.1 - p.0).as_secs_f64() * 1e3).collect();
    // Ingest to map: the first read that started after the answer, until that read ended.
    let mut to_map = Vec::with_capacity(posts.len());
    for (sent, answered, ok) in &posts {
        if !ok {
            continue;
        }
        if let Some((_, end)) = reads.iter().find(|(begin, _)| begin >= answered) {
            to_map.push((*end - *sent).as_secs_f64() * 1e3);
        }
    }
    post_ms.sort_by(f64::total_cmp);
    (post_ms, to_map, failed)
}

async fn flat_out(s: Arc<Served>) -> f64 {
    let n_clients = 64;
    let per_client = 150;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..n_clients {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0usize;
            for i in 0..per_client {
                let unit = (c * per_client + i) % UNITS;
                ok += usize::from(s.post(unit, SystemClock.now_ms() + 1, 1e4 + i as f64).await);
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    ok as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let engines = std::env::var("TIANWANG_BENCH_ENGINES").unwrap_or_else(|_| "sqlite,postgres".into());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!(
        "unit positions: {UNITS} units, one position each every {PERIOD_S} s ({} a second), {RUN_S} s; the map reads every unit every {} s",
        UNITS as f64 / PERIOD_S,
        MAP_EVERY.as_secs()
    );
    for engine in engines.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        rt.block_on(async {
            let s = Arc::new(serve(engine).await);
            let (mut post_ms, mut to_map, failed) = at_rate(s.clone()).await;
            let rate = flat_out(s.clone()).await;
            let need = UNITS as f64 / PERIOD_S;
            println!(
                "{engine:>8}: POST answered p50 {:.1} ms p99 {:.1} ms; ingest to map p50 {:.0} ms p99 {:.0} ms max {:.0} ms ({} positions, {failed} failed); flat out {rate:.0} positions/s against {need:.0} needed: {:.1}x",
                pct(&mut post_ms, 0.5),
                pct(&mut post_ms, 0.99),
                pct(&mut to_map, 0.5),
                pct(&mut to_map, 0.99),
                pct(&mut to_map, 1.0),
                to_map.len(),
                rate / need
            );
            Arc::into_inner(s).expect("no other holder").stop().await;
        });
    }
}
