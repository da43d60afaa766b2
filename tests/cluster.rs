//! A city on many machines, on this box: PostgreSQL, NATS JetStream, two `tianwang serve` nodes
//! and three `tianwang worker` processes, cameras from a `tianwang sim` process. Cameras are spread within
//! 10 % of even; a worker killed with SIGKILL has all its cameras streaming on the others within
//! two lease times; restarted, it takes cameras back a batch per round; a worker cut off from the
//! registry stops its pipelines when its lease time passes and gets cameras again when it is back.
//!
//! Two serve nodes: one writes alerts, the other stands by; SSE on the standby sees every alert
//! change; an operator's change on the standby is applied by the writer; SIGKILL the writer → the
//! standby takes over within its lease time and every alarm is raised exactly once. Both carry
//! the event log over a private NATS JetStream: NATS killed for 20 s → alarms still raised exactly
//! once (reads from the registry), the relay catches up and the stream holds every event once.
//!
//! Work orders: the serve node that writes alerts opens them from the problems workers report.
//!
//! Motion: street cameras detecting on two workers; SIGKILL one → every motion event in the log,
//! the killed worker's included, is counted exactly once by its camera's alert.
//!
//! `TIANWANG_CLUSTER_CAMERAS` sets the number of cameras (default 300; `make test` runs the
//! default).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::ingest::SimProcess;
use common::sse::Sse;
use common::{TestDb, authed_client, config_dir};
use serde_json::Value;
use tianwang::registry::Registry;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const LEASE_S: f64 = 10.0;

/// One cluster at a time on this box: the timings each test checks are the cluster's own.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const WORKERS: usize = 3;
const BATCH: usize = 50;

fn cameras() -> usize {
    std::env::var("TIANWANG_CLUSTER_CAMERAS").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

/// A free port on loopback (bound and released: the process told to use it binds it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process, killed when dropped; what it logs goes to a file kept for a failure's report.
struct Proc {
    name: String,
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl Proc {
    fn start(name: &str, args: &[String], logs: &Path) -> Proc {
        let log = logs.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tianwang"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Proc { name: name.to_string(), child: Some(child), log }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the process to end.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        c.wait().unwrap()
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("--- {} (last lines) ---\n{}", self.name, lines[lines.len().saturating_sub(15)..].join("\n"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP relay to PostgreSQL that can be cut (every connection dropped, new ones refused) and
/// restored: a worker behind it is cut off from the registry.
struct Relay {
    port: u16,
    cut: Arc<AtomicBool>,
    conns: Arc<std::sync::Mutex<CancellationToken>>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(std::sync::Mutex::new(CancellationToken::new()));
        let (c, k) = (cut.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if c.load(Ordering::SeqCst) {
                    let _ = inbound.shutdown().await;
                    continue;
                }
                let stop = k.lock().unwrap().clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        Relay { port, cut, conns }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let mut g = self.conns.lock().unwrap();
        g.cancel();
        *g = CancellationToken::new();
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

fn site(n: usize, sim: &SimProcess, paths: usize) -> (String, String) {
    let site = r#"[site]
name = "Cluster test city"
timezone = "Asia/Shanghai"
[defaults]
hfov_deg = 90
resolution = "1920x1080"
mounting_height_m = 6
owner = "public"
ingest_size = "320x180"
"#
    .to_string();
    let mut cams = String::new();
    for i in 0..n {
        cams.push_str(&format!(
            "[[camera]]\nid = \"h{i:04}\"\nname = \"health camera {i}\"\nurl = \"{}\"\nlon = {}\nlat = {}\nbearing_deg = 0\nkind = \"compound\"\nprofile = \"health\"\n",
            sim.url(&format!("s{}", i % paths)),
            113.6 + (i as f64) * 1e-4,
            34.7 + (i % 50) as f64 * 1e-4,
        ));
    }
    (site, cams)
}

/// What one worker says of itself.
struct Seen {
    held: BTreeMap<String, String>,
    cut_off: u64,
    heartbeat_failures: u64,
}

async fn worker_view(client: &reqwest::Client, port: u16) -> Option<Seen> {
    let r = client.get(format!("http://127.0.0.1:{port}/api/v1/worker")).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    let v: Value = r.json().await.ok()?;
    let held = v["cameras"]
        .as_array()?
        .iter()
        .map(|c| (c["id"].as_str().unwrap_or("").to_string(), c["ingest"].as_str().unwrap_or("none").to_string()))
        .collect();
    Some(Seen {
        held,
        cut_off: v["lease"]["cut_off"].as_u64().unwrap_or(0),
        heartbeat_failures: v["lease"]["heartbeat_failures"].as_u64().unwrap_or(0),
    })
}

struct Cluster {
    client: reqwest::Client,
    ports: Vec<u16>,
}

impl Cluster {
    /// Each worker's view (`None` for one that does not answer).
    async fn views(&self) -> Vec<Option<Seen>> {
        let mut out = Vec::new();
        for &p in &self.ports {
            out.push(worker_view(&self.client, p).await);
        }
        out
    }

    /// Cameras streaming on the workers in `on`, each counted once (a camera on two workers
    /// at once fails the test).
    async fn streaming(&self, on: &[usize]) -> (usize, Vec<usize>) {
        let views = self.views().await;
        let mut seen = std::collections::BTreeSet::new();
        let mut per = vec![0; self.ports.len()];
        for &w in on {
            let Some(v) = &views[w] else { continue };
            for (cam, st) in &v.held {
                assert!(seen.insert(cam.clone()), "camera {cam} held by two workers at once");
                if st == "streaming" {
                    per[w] += 1;
                }
            }
        }
        (per.iter().sum(), per)
    }
}

fn within_tenth_of_even(per: &[usize], on: &[usize], n: usize) -> bool {
    let even = n as f64 / on.len() as f64;
    on.iter().all(|&w| (per[w] as f64 - even).abs() <= 0.1 * even)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_city_on_three_workers_survives_a_killed_worker_and_one_cut_off() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let n = cameras();
    let paths = 6;
    let streams: Vec<String> = (0..paths).map(|i| format!("s{i}:320x180@5:kf=5")).collect();
    let mut sim = SimProcess::start(&streams.iter().map(String::as_str).collect::<Vec<_>>());
    let db = TestDb::new(common::Engine::Postgres).await;
    let (site, cams) = site(n, &sim, paths);
    let cfg = config_dir(&[("site.toml", &site), ("cams.toml", &cams)]);
    // Kept after the run (each run starts it afresh): what every process logged.
    let logs = std::env::temp_dir().join("tianwang-cluster-test-logs");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).unwrap();

    // Two serve nodes sync the cameras into the registry (no pipelines of their own) and carry
    // the event log over NATS JetStream: the first writes alerts and relays the log, the second
    // stands by.
    let nats = common::nats::Nats::start();
    let stream = format!("CITY{}_EVENTS", rand::random::<u32>());
    let serve_node = |node: &str, port: u16| {
        let mut args = serve_args(cfg.path(), &db.url, node, port);
        args.extend(["--nats".to_string(), nats.url(), "--nats-stream".to_string(), stream.clone()]);
        args
    };
    let (serve_port, standby_port) = (free_port(), free_port());
    let mut serve = Proc::start("serve", &serve_node("api-1", serve_port), &logs);
    up(serve_port, &serve).await;
    let mut standby = Proc::start("serve-standby", &serve_node("api-2", standby_port), &logs);
    up(standby_port, &standby).await;
    let registry = Registry::open(&db.url).await.unwrap();
    let token = registry.create_token("cluster-test", "maintainer", false, common_now()).await.unwrap();
    let client = authed_client(&token);

    // Worker 3 reaches PostgreSQL through a relay the test can cut.
    let pg = reqwest::Url::parse(&db.url).unwrap();
    let relay = Relay::start(format!("{}:{}", pg.host_str().unwrap(), pg.port().unwrap_or(5432))).await;
    let mut relayed = pg.clone();
    relayed.set_port(Some(relay.port)).unwrap();
    relayed.set_host(Some("127.0.0.1")).unwrap();
    let ports: Vec<u16> = (0..WORKERS).map(|_| free_port()).collect();
    let worker_args = |i: usize| -> Vec<String> {
        let url = if i == 2 { relayed.to_string() } else { db.url.clone() };
        vec![
            "worker".into(),
            "--config".into(),
            cfg.path().display().to_string(),
            "--db".into(),
            url,
            "--id".into(),
            format!("w{}", i + 1),
            "--listen".into(),
            format!("127.0.0.1:{}", ports[i]),
            "--cores".into(),
            "2".into(),
            "--lease-s".into(),
            LEASE_S.to_string(),
        ]
    };
    let mut workers: Vec<Proc> =
        (0..WORKERS).map(|i| Proc::start(&format!("w{}", i + 1), &worker_args(i), &logs)).collect();
    let cluster = Cluster { client, ports: ports.clone() };
    let all = [0, 1, 2];
    let report = |workers: &[Proc]| workers.iter().map(Proc::tail).collect::<Vec<_>>().join("\n");

    // 1. Every camera streaming, spread within 10 % of even.
    let t = Instant::now();
    loop {
        let (total, per) = cluster.streaming(&all).await;
        if total == n && within_tenth_of_even(&per, &all, n) {
            println!("{n} cameras streaming on 3 workers after {:.1} s: {per:?}", t.elapsed().as_secs_f64());
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(180),
            "not all streaming: {total}/{n} {per:?}\n{}\n{}",
            report(&workers),
            sim.tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // 2. SIGKILL worker 1: all its cameras streaming on the others within two lease times.
    workers[0].kill();
    let killed = Instant::now();
    loop {
        let (total, per) = cluster.streaming(&[1, 2]).await;
        if total == n {
            let s = killed.elapsed().as_secs_f64();
            println!("worker 1 killed: all {n} cameras streaming on workers 2 and 3 after {s:.1} s: {per:?}");
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs_f64(2.0 * LEASE_S),
            "two lease times after the kill only {total}/{n} cameras stream on the others ({per:?})\n{}",
            report(&workers)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 3. Restarted, worker 1 takes cameras back a batch per round at most, until even again.
    workers[0] = Proc::start("w1-again", &worker_args(0), &logs);
    let t = Instant::now();
    let mut last = 0usize;
    let mut steps = 0;
    loop {
        let views = cluster.views().await;
        let now = views[0].as_ref().map_or(0, |v| v.held.len());
        assert!(now <= last + BATCH, "worker 1 took {} cameras at once (a batch is {BATCH})", now - last);
        if now > last {
            steps += 1;
            last = now;
        }
        let (total, per) = cluster.streaming(&all).await;
        if total == n && within_tenth_of_even(&per, &all, n) {
            println!("worker 1 back: even again after {:.1} s, in {steps} step(s): {per:?}", t.elapsed().as_secs_f64());
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(120), "not even again: {total}/{n} {per:?}\n{}", report(&workers));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if n / WORKERS > BATCH {
        assert!(steps >= 2, "worker 1 took its share back in {steps} step(s): expected gradually");
    }

    // 4. Worker 3 cut off from the registry: when its lease time has passed it runs no pipeline,
    //    and its cameras stream on the others.
    relay.cut();
    let cut = Instant::now();
    loop {
        let views = cluster.views().await;
        let w3 = views[2].as_ref().expect("worker 3 answers over HTTP while cut off from the registry");
        let (total, _) = cluster.streaming(&[0, 1]).await;
        if w3.held.is_empty() && w3.cut_off >= 1 && total == n {
            println!(
                "worker 3 cut off: it stopped its pipelines and the others stream all {n} after {:.1} s",
                cut.elapsed().as_secs_f64()
            );
            break;
        }
        assert!(
            cut.elapsed() < Duration::from_secs_f64(3.0 * LEASE_S),
            "worker 3 cut off: still holds {} camera(s), cut_off {}, {total}/{n} on the others\n{}",
            w3.held.len(),
            w3.cut_off,
            report(&workers)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // While it stays cut off it starts nothing again: two more failed heartbeats, nothing held.
    let failed = |views: &[Option<Seen>]| views[2].as_ref().map_or(0, |v| v.heartbeat_failures);
    let since = failed(&cluster.views().await);
    loop {
        let views = cluster.views().await;
        assert!(views[2].as_ref().is_some_and(|v| v.held.is_empty()), "worker 3 runs cameras while cut off");
        if failed(&views) >= since + 2 {
            break;
        }
        assert!(cut.elapsed() < Duration::from_secs_f64(6.0 * LEASE_S), "worker 3 stopped heartbeating");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 5. Back on the network, worker 3 gets cameras again until even.
    relay.restore();
    let t = Instant::now();
    loop {
        let (total, per) = cluster.streaming(&all).await;
        if total == n && within_tenth_of_even(&per, &all, n) {
            println!("worker 3 back: even again after {:.1} s: {per:?}", t.elapsed().as_secs_f64());
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(120), "not even again: {total}/{n} {per:?}\n{}", report(&workers));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // 6. A worker stopped with SIGTERM gives its cameras back at once: the others hold them all
    //    well before its lease time would have passed.
    let status = workers[1].terminate();
    assert!(status.success(), "worker 2 did not stop cleanly: {status}\n{}", workers[1].tail());
    let left = Instant::now();
    loop {
        let (total, per) = cluster.streaming(&[0, 2]).await;
        if total == n {
            println!("worker 2 left: the others stream all {n} after {:.1} s: {per:?}", left.elapsed().as_secs_f64());
            break;
        }
        assert!(
            left.elapsed() < Duration::from_secs_f64(2.0 * LEASE_S),
            "worker 2 left: {total}/{n} on the others\n{}",
            report(&workers)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let holders = registry.holders(common_now()).await.unwrap();
    assert_eq!(holders.len(), n);
    assert!(holders.values().all(|(w, _)| w != "w2"), "worker 2 still holds cameras after leaving");

    // 7. Every worker gone: the serve node shows each camera offline once no live worker has run
    //    it for the grace time.
    let online = || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cameras WHERE status = 'online'")
            .fetch_one(registry.pool())
            .await
            .unwrap();
        n
    };
    assert_eq!(online().await, n as i64, "every camera online before the workers go");
    for w in &mut workers {
        w.kill();
    }
    let gone = Instant::now();
    let bound = Duration::from_secs_f64(LEASE_S)
        + Duration::from_millis(tianwang::app::UNHELD_GRACE_MS as u64)
        + Duration::from_secs(10);
    loop {
        let left = online().await;
        if left == 0 {
            println!("every worker killed: all {n} cameras offline after {:.1} s", gone.elapsed().as_secs_f64());
            break;
        }
        assert!(
            gone.elapsed() < bound,
            "{left} cameras still online {bound:?} after the last worker died\n{}",
            serve.tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The writer relayed the whole log (every camera's status changes) to JetStream, once each,
    // and read it back through its durable consumers; the other node stood by.
    let writer = get_json(&cluster.client, &format!("http://127.0.0.1:{serve_port}/api/v1/cluster")).await;
    let other = get_json(&cluster.client, &format!("http://127.0.0.1:{standby_port}/api/v1/cluster")).await;
    assert_eq!(writer["this_node"]["active"], true, "{writer}");
    assert_eq!(other["this_node"]["active"], false, "{other}");
    assert!(writer["jetstream"]["reads_jetstream"].as_u64().unwrap_or(0) > 0, "{writer}");
    let t = Instant::now();
    loop {
        let head = registry.last_event_position().await.unwrap();
        let v = get_json(&cluster.client, &format!("http://127.0.0.1:{serve_port}/api/v1/cluster")).await;
        if v["jetstream"]["relayed_position"].as_i64() == Some(head) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "the relay did not reach {head}: {v}\n{}", serve.tail());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events = registry.events(None, 0, 1_000_000).await.unwrap().len() as u64;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let mut st = js.get_stream(&stream).await.unwrap();
    assert_eq!(st.info().await.unwrap().state.messages, events, "each event once in the stream");
    println!("{events} events relayed to JetStream once each");
    serve.kill();
    standby.kill();
    registry.close().await;
}

fn common_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn serve_args(cfg: &Path, db: &str, node: &str, port: u16) -> Vec<String> {
    [
        "serve",
        "--config",
        &cfg.display().to_string(),
        "--db",
        db,
        "--no-ingest",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--node-id",
        node,
        "--writer-lease-s",
        &WRITER_LEASE_S.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

const WRITER_LEASE_S: f64 = 4.0;

/// A worker's arguments with the test's lease time, and `more`.
fn worker_args(cfg: &Path, db: &str, id: &str, port: u16, more: &[&str]) -> Vec<String> {
    let lease = LEASE_S.to_string();
    let listen = format!("127.0.0.1:{port}");
    let cfg = cfg.display().to_string();
    ["worker", "--config", &cfg, "--db", db, "--id", id, "--listen", &listen, "--lease-s", &lease]
        .iter()
        .chain(more)
        .map(|s| s.to_string())
        .collect()
}

async fn up(port: u16, p: &Proc) {
    let plain = reqwest::Client::new();
    let t = Instant::now();
    while plain.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_err() {
        assert!(t.elapsed() < Duration::from_secs(60), "{} did not start\n{}", p.name, p.tail());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let r = client.get(url).send().await.unwrap();
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.json().await.unwrap()
}

/// Posts `n` alarms from distinct alarm points (`prefix`-0 …) to a node; each is stored in the
/// event log before the node answers (201 with the alert raised, by this node or by the writer;
/// 202 accepted when no writer raised it within the node's wait). Returns the statuses.
async fn alarms(client: &reqwest::Client, base: &str, prefix: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for i in 0..n {
        let r = client
            .post(format!("{base}/api/v1/alarms"))
            .json(
                &serde_json::json!({"alarm_id": format!("{prefix}-{i}"), "name": format!("alarm point {prefix} {i}")}),
            )
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        assert!(st == 201 || st == 202, "alarm {prefix}-{i}: {st} {body}");
        if st == 201 {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["dedupe_key"].as_str(), Some(format!("alarm:{prefix}-{i}").as_str()), "{body}");
        }
        out.push(st);
    }
    out
}

/// Reads SSE until `raised` holds `n` alerts (30 s at most), each raised once.
async fn raised_once(sse: &mut Sse, raised: &mut std::collections::BTreeSet<String>, n: usize, node: &Proc) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while raised.len() < n {
        let Some((_, ev)) = sse.next(deadline).await else {
            panic!("SSE saw {} of {n} alerts\n{}", raised.len(), node.tail());
        };
        if ev["change"] == "raised" {
            assert!(
                raised.insert(ev["alert"]["dedupe_key"].as_str().unwrap().to_string()),
                "an alert raised twice: {ev}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_nodes_one_writes_alerts_the_other_stands_by_and_takes_over() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let db = TestDb::new(common::Engine::Postgres).await;
    let cfg = config_dir(&[(
        "site.toml",
        "[site]\nname = \"Two serve nodes\"\ntimezone = \"Asia/Shanghai\"\n[defaults]\nhfov_deg = 90\nresolution = \"1920x1080\"\nmounting_height_m = 6\nowner = \"public\"\n",
    )]);
    let logs = std::env::temp_dir().join("tianwang-cluster-serve-logs");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).unwrap();
    let (pa, pb) = (free_port(), free_port());
    let mut nats = common::nats::Nats::start();
    let stream = format!("CLUSTER{}_EVENTS", rand::random::<u32>());
    let nats_url = nats.url();
    let with_nats = |mut args: Vec<String>| {
        args.extend(["--nats".to_string(), nats_url.clone(), "--nats-stream".to_string(), stream.clone()]);
        args
    };
    let mut a = Proc::start("serve-a", &with_nats(serve_args(cfg.path(), &db.url, "a", pa)), &logs);
    up(pa, &a).await;
    let mut b = Proc::start("serve-b", &with_nats(serve_args(cfg.path(), &db.url, "b", pb)), &logs);
    up(pb, &b).await;
    let registry = Registry::open(&db.url).await.unwrap();
    let token = registry.create_token("cluster-operator", "admin", false, common_now()).await.unwrap();
    let client = authed_client(&token);
    let (base_a, base_b) = (format!("http://127.0.0.1:{pa}"), format!("http://127.0.0.1:{pb}"));

    // One writer: the node that started first; the other stands by.
    let va = get_json(&client, &format!("{base_a}/api/v1/cluster")).await;
    let vb = get_json(&client, &format!("{base_b}/api/v1/cluster")).await;
    assert_eq!(va["alert_writer"]["node"], "a", "{va}");
    assert_eq!(va["this_node"]["active"], true);
    assert_eq!(vb["this_node"]["active"], false, "{vb}");
    assert_eq!(va["jetstream"]["relay_running"], true, "{va}");
    assert_eq!(vb["jetstream"]["relay_running"], false, "{vb}");

    // SSE on the standby sees every alert the writer raises, alarms posted to either node.
    let mut sse = Sse::open_at(&client, &base_b, Some(0)).await;
    // Posted to the standby while the writer is up: each answered with the alert the writer raised.
    assert_eq!(alarms(&client, &base_b, "before", 10).await, [201; 10]);
    alarms(&client, &base_a, "at-writer", 5).await;
    let mut raised = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while raised.len() < 15 {
        let Some((_, ev)) = sse.next(deadline).await else {
            panic!("SSE on the standby saw {} of 15 alerts\n{}\n{}", raised.len(), a.tail(), b.tail());
        };
        if ev["change"] == "raised" {
            raised.insert(ev["alert"]["dedupe_key"].as_str().unwrap().to_string());
        }
    }

    // An operator's change on the standby is applied by the writer and answered.
    let list = get_json(&client, &format!("{base_b}/api/v1/alerts?status=new&limit=100")).await;
    let first = list["items"].as_array().unwrap()[0]["id"].as_i64().unwrap();
    let r = client.post(format!("{base_b}/api/v1/alerts/{first}/acknowledge")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "acknowledge on the standby: {}", r.text().await.unwrap_or_default());
    let acked: Value = r.json().await.unwrap();
    assert_eq!(acked["status"], "acknowledged");
    // A change the writer refuses is refused on the standby the same way.
    let r = client.post(format!("{base_b}/api/v1/alerts/{first}/acknowledge")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 409, "acknowledging twice");

    // SIGKILL the writer with alarms still arriving: the standby takes over within its lease
    // time, and every alarm is raised exactly once.
    alarms(&client, &base_b, "racing", 10).await;
    a.kill();
    let killed = Instant::now();
    alarms(&client, &base_b, "after", 10).await;
    loop {
        let v = get_json(&client, &format!("{base_b}/api/v1/cluster")).await;
        if v["this_node"]["active"] == true {
            println!("the standby writes alerts {:.1} s after the writer was killed", killed.elapsed().as_secs_f64());
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs_f64(2.0 * WRITER_LEASE_S),
            "the standby did not take over within 2 lease times: {v}\n{}",
            b.tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    raised_once(&mut sse, &mut raised, 35, &b).await;
    // Exactly once in the store too: 35 alarm points, 35 alerts, one each.
    let all = get_json(&client, &format!("{base_b}/api/v1/alerts?limit=200")).await;
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 35, "{all}");
    assert!(items.iter().all(|a| a["count"] == 1), "an alarm counted twice: {all}");
    let vb = get_json(&client, &format!("{base_b}/api/v1/cluster")).await;
    assert_eq!(vb["jetstream"]["relay_running"], true, "the new writer relays: {vb}");
    assert!(vb["jetstream"]["reads_jetstream"].as_u64().unwrap_or(0) > 0, "{vb}");

    // NATS killed for 20 s with alarms arriving (one a second): each answered and raised once,
    // the log read from the registry meanwhile.
    nats.kill();
    let stopped = Instant::now();
    let mut down = 0;
    while stopped.elapsed() < Duration::from_secs(20) {
        alarms(&client, &base_b, &format!("nats-down-{down}"), 1).await;
        down += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    nats.resume();
    raised_once(&mut sse, &mut raised, 35 + down, &b).await;
    let all = get_json(&client, &format!("{base_b}/api/v1/alerts?limit=500")).await;
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 35 + down, "{all}");
    assert!(items.iter().all(|a| a["count"] == 1), "an alarm counted twice: {all}");
    // The relay catches up; the stream holds every event of the log once (two relays wrote it).
    let events = registry.events(None, 0, 10_000).await.unwrap().len() as u64;
    let head = registry.last_event_position().await.unwrap();
    let caught_up = Instant::now();
    loop {
        let vb = get_json(&client, &format!("{base_b}/api/v1/cluster")).await;
        if vb["jetstream"]["relayed_position"].as_i64() == Some(head) {
            println!("the relay caught up {:.1} s after NATS was back", caught_up.elapsed().as_secs_f64());
            assert!(vb["jetstream"]["reads_registry"].as_u64().unwrap_or(0) > 0, "{vb}");
            break;
        }
        assert!(caught_up.elapsed() < Duration::from_secs(30), "the relay did not catch up to {head}: {vb}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let mut s = js.get_stream(&stream).await.unwrap();
    assert_eq!(s.info().await.unwrap().state.messages, events, "each event once in the stream");

    // The old writer restarted under its id stands by: the role stays with the new writer.
    let mut a = Proc::start("serve-a-again", &with_nats(serve_args(cfg.path(), &db.url, "a", pa)), &logs);
    up(pa, &a).await;
    let va = get_json(&client, &format!("{base_a}/api/v1/cluster")).await;
    assert_eq!(va["this_node"]["active"], false, "{va}");
    assert_eq!(va["alert_writer"]["node"], "b", "{va}");
    // Stopped with SIGTERM, the writer gives the role up at once: the other takes it well
    // before the lease time would have passed.
    let status = b.terminate();
    assert!(status.success(), "serve b did not stop cleanly: {status}\n{}", b.tail());
    let left = Instant::now();
    loop {
        let v = get_json(&client, &format!("{base_a}/api/v1/cluster")).await;
        if v["this_node"]["active"] == true {
            println!("node a writes alerts {:.1} s after node b stopped", left.elapsed().as_secs_f64());
            break;
        }
        assert!(left.elapsed() < Duration::from_secs_f64(WRITER_LEASE_S), "node a did not take over: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.kill();
    registry.close().await;
}

/// Work orders in a cluster: the worker stores the problems of the cameras it holds, and the serve
/// node that writes alerts (it runs no camera) opens the orders from them: a camera whose server
/// refuses the connection gets its `offline` order, naming why; the streaming one gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_opens_work_orders_for_its_workers_cameras() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let sim = SimProcess::start(&["s0:320x180@5:kf=5"]);
    let db = TestDb::new(common::Engine::Postgres).await;
    let dead = format!("rtsp://127.0.0.1:{}/gone", free_port());
    let site = "[site]\nname = \"Orders city\"\ntimezone = \"Asia/Shanghai\"\n[defaults]\nhfov_deg = 90\n\
        resolution = \"1920x1080\"\nmounting_height_m = 6\nowner = \"public\"\ningest_size = \"320x180\"\n\
        [maintenance]\noffline_order_after_min = 0\norders_interval_s = 0.5\n";
    let mut cams = String::new();
    for (id, url) in [("live", sim.url("s0")), ("dark", dead)] {
        cams.push_str(&format!(
            "[[camera]]\nid = \"{id}\"\nname = \"{id}\"\nurl = \"{url}\"\nlon = 113.6\nlat = 34.7\nbearing_deg = 0\n\
             kind = \"street\"\nprofile = \"health\"\n"
        ));
    }
    let cfg = config_dir(&[("site.toml", site), ("cams.toml", &cams)]);
    let logs = std::env::temp_dir().join("tianwang-cluster-orders-logs");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).unwrap();
    let port = free_port();
    let mut serve = Proc::start("serve", &serve_args(cfg.path(), &db.url, "api-1", port), &logs);
    let plain = reqwest::Client::new();
    let t = Instant::now();
    while plain.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_err() {
        assert!(t.elapsed() < Duration::from_secs(60), "serve did not start\n{}", serve.tail());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let registry = Registry::open(&db.url).await.unwrap();
    let token = registry.create_token("orders-test", "maintainer", false, common_now()).await.unwrap();
    let client = authed_client(&token);
    let wport = free_port();
    let mut worker = Proc::start("w1", &worker_args(cfg.path(), &db.url, "w1", wport, &[]), &logs);
    let t = Instant::now();
    let open = loop {
        let r = client.get(format!("http://127.0.0.1:{port}/api/v1/maintenance/orders?state=open")).send().await;
        if let Ok(r) = r {
            let v: Value = r.json().await.unwrap_or(Value::Null);
            if v.as_array().is_some_and(|a| !a.is_empty()) {
                break v;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no work order for the dark camera\nserve:\n{}\nworker:\n{}",
            serve.tail(),
            worker.tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let o = &open.as_array().unwrap()[0];
    assert_eq!((o["camera_id"].as_str(), o["cause"].as_str()), (Some("dark"), Some("offline")), "{open}");
    assert!(o["detail"].as_str().unwrap().contains("connection refused"), "{open}");
    // The live camera streams on the worker and has no order.
    let t = Instant::now();
    loop {
        let s = registry.get_camera("live").await.unwrap().unwrap().status;
        if s == "online" {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "the live camera is {s}\n{}", worker.tail());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let v: Value = client
        .get(format!("http://127.0.0.1:{port}/api/v1/maintenance/orders?state=open"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = v.as_array().unwrap().iter().map(|o| o["camera_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["dark"], "{v}");
    worker.kill();
    serve.kill();
    registry.close().await;
}

/// Motion seen by a worker that is then killed: every motion event it stored before the kill, and
/// every one its cameras' new holder stores after (a motion episode is one event: the new holder's
/// detector starts a new one), is applied to the cameras' alerts exactly once (each armed zone's
/// alert counts its events: never more, and all of them in the end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_motion_events_become_alerts_exactly_once() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let sim = SimProcess::start(&["m:320x180@5:kf=5"]);
    let db = TestDb::new(common::Engine::Postgres).await;
    let cams = ["m0", "m1", "m2", "m3"];
    let mut site = String::from(
        "[site]\nname = \"Motion cluster\"\ntimezone = \"Asia/Shanghai\"\n[defaults]\nhfov_deg = 90\n\
         resolution = \"1920x1080\"\nmounting_height_m = 6\nowner = \"public\"\ningest_size = \"320x180\"\n\
         [detect]\nplates = false\n",
    );
    let mut cfg_cams = String::new();
    for (i, c) in cams.iter().enumerate() {
        site.push_str(&format!(
            "[[motion_zone]]\ncamera = \"{c}\"\nname = \"yard\"\npoints = [[0, 0], [1, 0], [1, 1], [0, 1]]\n\
             [[armed_zone]]\ncamera = \"{c}\"\nzone = \"yard\"\n"
        ));
        cfg_cams.push_str(&format!(
            "[[camera]]\nid = \"{c}\"\nname = \"street {i}\"\nurl = \"{}\"\nlon = {}\nlat = 34.7\nbearing_deg = 0\n\
             kind = \"street\"\nprofile = \"street\"\ningest_fps = 5\n",
            sim.url("m"),
            113.6 + i as f64 * 1e-4
        ));
    }
    let cfg = config_dir(&[("site.toml", &site), ("cams.toml", &cfg_cams)]);
    let logs = std::env::temp_dir().join("tianwang-cluster-motion-logs");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).unwrap();
    let serve_port = free_port();
    let serve = Proc::start("serve", &serve_args(cfg.path(), &db.url, "api", serve_port), &logs);
    up(serve_port, &serve).await;
    let registry = Registry::open(&db.url).await.unwrap();
    let token = registry.create_token("cluster-motion", "admin", false, common_now()).await.unwrap();
    let client = authed_client(&token);
    let ports = [free_port(), free_port()];
    let worker = |i: usize| worker_args(cfg.path(), &db.url, &format!("mw{i}"), ports[i], &["--cores", "2"]);
    let mut workers = vec![Proc::start("mw0", &worker(0), &logs), Proc::start("mw1", &worker(1), &logs)];
    let base = format!("http://127.0.0.1:{serve_port}");
    let tails = |w: &[Proc]| w.iter().map(Proc::tail).collect::<Vec<_>>().join("\n");

    // Motion events per camera in the log, and each camera's motion alert count; an alert never
    // counts more events than the log holds.
    let look = async || -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
        let mut events = BTreeMap::new();
        for e in registry.events(Some("motion"), 0, 1_000_000).await.unwrap() {
            *events.entry(e.camera_id.clone().unwrap_or_default()).or_insert(0) += 1;
        }
        let al = get_json(&client, &format!("{base}/api/v1/alerts?kind=motion&limit=100")).await;
        let mut counts = BTreeMap::new();
        for a in al["items"].as_array().unwrap() {
            let cam = a["cameras"][0].as_str().unwrap_or("").to_string();
            assert!(
                counts.insert(cam.clone(), a["count"].as_u64().unwrap()).is_none(),
                "two motion alerts for {cam}: {al}"
            );
        }
        for (cam, &n) in &counts {
            let stored = events.get(cam).copied().unwrap_or(0);
            assert!(n <= stored, "{cam}: the alert counts {n} motion events, the log holds {stored}");
        }
        (events, counts)
    };
    // Every camera streams, detects motion and alerts.
    let t = Instant::now();
    loop {
        let (events, counts) = look().await;
        if cams.iter().all(|c| counts.get(*c).copied().unwrap_or(0) >= 1) {
            println!(
                "motion alerts on all {} cameras after {:.1} s: {events:?}",
                cams.len(),
                t.elapsed().as_secs_f64()
            );
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no motion alerts on every camera: {counts:?}\n{}",
            tails(&workers)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // SIGKILL the worker that holds cameras (the first that does).
    let views = [worker_view(&client, ports[0]).await, worker_view(&client, ports[1]).await];
    let victim =
        views.iter().position(|v| v.as_ref().is_some_and(|v| !v.held.is_empty())).expect("a worker holds cameras");
    let moved: Vec<String> = views[victim].as_ref().unwrap().held.keys().cloned().collect();
    let (before, _) = look().await;
    workers[victim].kill();
    let killed = Instant::now();
    // Its cameras detect again on the other worker: a new motion event for each since the kill.
    loop {
        let (events, _) = look().await;
        if moved.iter().all(|c| events.get(c).copied().unwrap_or(0) > before.get(c).copied().unwrap_or(0)) {
            println!("{moved:?} detecting on the other worker {:.1} s after the kill", killed.elapsed().as_secs_f64());
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs_f64(2.0 * LEASE_S + 30.0),
            "{moved:?} did not detect again: {events:?} (before {before:?})\n{}",
            tails(&workers)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The survivor stops (SIGTERM: detection stores what it was handed): the log stops growing,
    // and every event in it is counted once by its camera's alert.
    let survivor = 1 - victim;
    let status = workers[survivor].terminate();
    assert!(status.success(), "{}", workers[survivor].tail());
    let t = Instant::now();
    loop {
        let (events, counts) = look().await;
        if cams.iter().all(|c| counts.get(*c) == events.get(*c)) {
            println!("every motion event counted once: {counts:?}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "alerts {counts:?} against events {events:?}\n{}", serve.tail());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    registry.close().await;
}
