//! A city on many machines, on this box: PostgreSQL, a `tianwang serve` node and three
//! `tianwang worker` processes, cameras from a `tianwang sim` process. Cameras are spread within
//! 10 % of even; a worker killed with SIGKILL has all its cameras streaming on the others within
//! two lease times; restarted, it takes cameras back a batch per round; a worker cut off from the
//! registry stops its pipelines when its lease time passes and gets cameras again when it is back.
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
use common::{TestDb, authed_client, config_dir};
use serde_json::Value;
use tianwang::registry::Registry;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const LEASE_S: f64 = 10.0;
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
    Some(Seen { held, cut_off: v["lease"]["cut_off"].as_u64().unwrap_or(0) })
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
    let n = cameras();
    let paths = 6;
    let streams: Vec<String> = (0..paths).map(|i| format!("s{i}:320x180@5:kf=5")).collect();
    let sim = SimProcess::start(&streams.iter().map(String::as_str).collect::<Vec<_>>());
    let db = TestDb::new(common::Engine::Postgres).await;
    let (site, cams) = site(n, &sim, paths);
    let cfg = config_dir(&[("site.toml", &site), ("cams.toml", &cams)]);
    // Kept after the run (each run starts it afresh): what every process logged.
    let logs = std::env::temp_dir().join("tianwang-cluster-test-logs");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).unwrap();

    // The serve node syncs the cameras into the registry (no pipelines of its own).
    let serve_port = free_port();
    let mut serve = Proc::start(
        "serve",
        &[
            "serve".into(),
            "--config".into(),
            cfg.path().display().to_string(),
            "--db".into(),
            db.url.clone(),
            "--no-ingest".into(),
            "--listen".into(),
            format!("127.0.0.1:{serve_port}"),
        ],
        &logs,
    );
    let plain = reqwest::Client::new();
    let t = Instant::now();
    while plain.get(format!("http://127.0.0.1:{serve_port}/healthz")).send().await.is_err() {
        assert!(t.elapsed() < Duration::from_secs(60), "serve did not start\n{}", serve.tail());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
        assert!(t.elapsed() < Duration::from_secs(180), "not all streaming: {total}/{n} {per:?}\n{}", report(&workers));
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
    // While it stays cut off it starts nothing again.
    tokio::time::sleep(Duration::from_secs_f64(LEASE_S / 2.0)).await;
    let views = cluster.views().await;
    assert!(views[2].as_ref().is_some_and(|v| v.held.is_empty()), "worker 3 runs cameras while cut off");

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
    for w in &mut workers {
        w.kill();
    }
    serve.kill();
    registry.close().await;
}

fn common_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
