//! Patrol units' positions: 2,000 units reporting every 5 s (400 positions a second, each its
//! own `POST /api/v1/units/{id}/positions`, as a tracker sends them) into the app on the real
//! clock, over HTTP, while two maps follow them: the dashboard's, on the units' live stream
//! (`GET /api/v1/units/stream`), and the baseline, a map that reads every unit
//! (`GET /api/v1/units`) once a second.
//!
//! 1. **At the city's rate** (20 s, 8,000 positions): ingest-to-map latency, from sending a
//!    position until the map holds it: on the stream, until the change that carries it (or a
//!    newer position of its unit) arrives; for the reading map, until the end of its first read
//!    that began after the POST was answered. p50, p99, max for both, and the ratio; both check
//!    that no unit's position goes backwards.
//! 2. **Flat out** (64 trackers posting back to back): positions per second the same app stores,
//!    against the 400 a second the city needs (the baseline: the ratio is the headroom).
//!
//! Both engines: SQLite (a file) and PostgreSQL (a fresh database on 127.0.0.1:5432;
//! `TIANWANG_BENCH_ENGINES=sqlite` skips it). Run: `cargo bench --bench unit_positions`.

use std::collections::HashMap;
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

/// The dashboard's map: follows the units' live stream until `done`; returns, per unit, each
/// position it was sent (its time) and when it arrived, and checks that none went backwards.
async fn stream_reader(s: Arc<Served>, done: Arc<AtomicBool>) -> HashMap<String, Vec<(i64, Instant)>> {
    let mut resp = s.client.get(format!("{}/api/v1/units/stream", s.base)).send().await.expect("the stream opens");
    assert!(resp.status().is_success(), "{}", resp.status());
    let mut buf: Vec<u8> = Vec::new();
    let mut seen: HashMap<String, Vec<(i64, Instant)>> = HashMap::new();
    while !done.load(Ordering::Relaxed) {
        match tokio::time::timeout(Duration::from_millis(100), resp.chunk()).await {
            Ok(Ok(Some(c))) => buf.extend_from_slice(&c),
            Ok(r) => panic!("the units' stream ended: {r:?}"),
            Err(_) => continue,
        }
        let now = Instant::now();
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = buf.drain(..end + 2).collect();
            let block = String::from_utf8(block).expect("UTF-8");
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) else { continue };
            let change: serde_json::Value = serde_json::from_str(data.trim()).expect("a change");
            for u in change["units"].as_array().expect("units") {
                if let Some(at) = u["position"]["at_ms"].as_i64() {
                    let id = u["id"].as_str().unwrap().to_string();
                    let arrivals = seen.entry(id.clone()).or_default();
                    let prev = arrivals.last().map_or(i64::MIN, |a| a.0);
                    assert!(at >= prev, "{id} went back from {prev} to {at} on the stream");
                    arrivals.push((at, now));
                }
            }
        }
    }
    seen
}

/// Ingest to map (ms) per position: on the stream, and on the map reading every second.
struct ToMap {
    stream: Vec<f64>,
    reads: Vec<f64>,
}

async fn at_rate(s: Arc<Served>) -> (Vec<f64>, ToMap, usize) {
    let done = Arc::new(AtomicBool::new(false));
    let live = tokio::spawn(stream_reader(s.clone(), done.clone()));
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
            let at = SystemClock.now_ms();
            let ok = s.post(n % UNITS, at, n as f64).await;
            (sent, Instant::now(), ok, n % UNITS, at)
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
    let arrived = live.await.unwrap();
    let failed = posts.iter().filter(|p| !p.2).count();
    let mut post_ms: Vec<f64> = posts.iter().map(|p| (p.1 - p.0).as_secs_f64() * 1e3).collect();
    let mut to_map = ToMap { stream: Vec::with_capacity(posts.len()), reads: Vec::with_capacity(posts.len()) };
    let mut missing = 0;
    for (sent, answered, ok, unit, at) in &posts {
        if !ok {
            continue;
        }
        // On the stream: the first arrival of this position or a newer one of its unit.
        match arrived.get(&format!("pc-{unit:04}")).and_then(|a| a.iter().find(|(t, _)| t >= at)) {
            Some((_, when)) => to_map.stream.push((*when - *sent).as_secs_f64() * 1e3),
            None => missing += 1,
        }
        // Reading: the first read that started after the answer, until that read ended.
        if let Some((_, end)) = reads.iter().find(|(begin, _)| begin >= answered) {
            to_map.reads.push((*end - *sent).as_secs_f64() * 1e3);
        }
    }
    assert_eq!(missing, 0, "{missing} stored positions never reached the stream");
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
        "unit positions: {UNITS} units, one position each every {PERIOD_S} s ({} a second), {RUN_S} s; the live stream against a map reading every unit every {} s",
        UNITS as f64 / PERIOD_S,
        MAP_EVERY.as_secs()
    );
    for engine in engines.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        rt.block_on(async {
            let s = Arc::new(serve(engine).await);
            let (mut post_ms, mut to_map, failed) = at_rate(s.clone()).await;
            let rate = flat_out(s.clone()).await;
            let need = UNITS as f64 / PERIOD_S;
            let (st, rd) = (&mut to_map.stream, &mut to_map.reads);
            let (st99, rd99) = (pct(st, 0.99), pct(rd, 0.99));
            println!(
                "{engine:>8}: POST answered p50 {:.1} ms p99 {:.1} ms ({failed} failed); ingest to map on the live stream p50 {:.0} ms p99 {st99:.0} ms max {:.0} ms ({} positions), reading every second p50 {:.0} ms p99 {rd99:.0} ms max {:.0} ms: p99 {:.1}x shorter; flat out {rate:.0} positions/s against {need:.0} needed: {:.1}x",
                pct(&mut post_ms, 0.5),
                pct(&mut post_ms, 0.99),
                pct(st, 0.5),
                pct(st, 1.0),
                st.len(),
                pct(rd, 0.5),
                pct(rd, 1.0),
                rd99 / st99,
                rate / need
            );
            Arc::into_inner(s).expect("no other holder").stop().await;
        });
    }
}
