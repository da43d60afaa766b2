//! Alerts: how fast events become committed alerts, and how soon the monitoring room sees them.
//! Everything is measured against `tianwang serve` in its own process, over HTTP, so the same
//! run can measure an earlier build as the baseline: `TIANWANG_BASELINE_BIN=/path/to/tianwang`
//! (e.g. built from the commit before the event spine) runs every case on both and prints the
//! ratio. Without it, the baseline is the floor below.
//!
//! 1. Throughput: 2,000 passages POSTed by 64 concurrent clients under a wildcard watchlist entry
//!    (every passage a watchlist hit, every hit a new alert): events per second from the first
//!    POST until the 2,000th alert reached an SSE client; alerts that never arrive are counted.
//! 2. Latency: 100 watchlist hits POSTed at 20 per second while 1, 100 and 1,000 SSE clients
//!    listen: the time from sending each POST to each client receiving its alert, p50 and p99.
//! 3. Floor: bare single-row INSERT transactions into the same kind of database, one after
//!    another (the least a durable write costs).
//! 4. The event log over NATS JetStream (`--nats`, a private `nats-server` the bench starts): the
//!    throughput and the latency with one client again, against the registry-only log of the
//!    same build in the same run (the ratio). `TIANWANG_BENCH_NATS=0` skips it.
//!
//! Both engines: SQLite (a file) and PostgreSQL (a fresh database on 127.0.0.1:5432; set
//! `TIANWANG_BENCH_ENGINES=sqlite` to skip it). Run: `cargo bench --bench alerts`.

use std::collections::HashMap;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const CAMERA: &str = "41010000001210000001";

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Passages must pass while the watchlist entry is in force: from when it was made.
fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn plate(run: usize, i: usize) -> String {
    format!("豫A{}{:04}", (b'0' + (run % 10) as u8) as char, i)
}

/// A server process of one build on one engine, with an admin token and a wildcard watchlist.
struct Server {
    child: Child,
    conn: Conn,
    pg_db: Option<String>,
    _dir: tempfile::TempDir,
}

/// Where the server listens and the token to use (cheap to clone into client tasks).
#[derive(Clone)]
struct Conn {
    addr: String,
    token: String,
}

impl Server {
    async fn start(bin: &str, engine: &str, nats: Option<&str>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("site.toml"), "[site]\nname = \"bench\"\ntimezone = \"Asia/Shanghai\"\n")
            .unwrap();
        std::fs::write(
            dir.path().join("checkpoint.toml"),
            format!(
                "[[camera]]\nid = \"{CAMERA}\"\nname = \"bench checkpoint\"\nurl = \"rtsp://127.0.0.1:9/x\"\n\
                 lon = 113.6667\nlat = 34.7622\nbearing_deg = 15.0\nkind = \"checkpoint\"\nowner = \"public\"\nmounting_height_m = 6.5\n\
                 hfov_deg = 30.0\nresolution = \"2560x1440\"\nprofile = \"checkpoint\"\n"
            ),
        )
        .unwrap();
        let (db, pg_db) = if engine == "postgres" {
            let name = format!("tw_bench_{}_{}", std::process::id(), rand::random::<u32>());
            psql(&format!("CREATE DATABASE {name}"));
            (format!("postgres://postgres@127.0.0.1:5432/{name}"), Some(name))
        } else {
            (format!("sqlite://{}/bench.db", dir.path().display()), None)
        };
        // Migrate and make a token with the build under test.
        let out = Command::new(bin)
            .args(["token", "create", "--role", "admin", "--name", "bench", "--db", &db])
            .output()
            .unwrap();
        assert!(out.status.success(), "token: {}", String::from_utf8_lossy(&out.stderr));
        let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--no-ingest", "--config"]).arg(dir.path()).args([
            "--db",
            &db,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ]);
        if let Some(url) = nats {
            cmd.args(["--nats", url, "--nats-stream", &format!("BENCH{}_EVENTS", rand::random::<u32>())]);
        }
        let mut child = cmd.env("RUST_LOG", "info").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (up_tx, up_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("serving") {
                    let _ = up_tx.send(());
                }
            }
        });
        up_rx.recv_timeout(Duration::from_secs(120)).expect("the server did not start");
        let s = Server { child, conn: Conn { addr: format!("127.0.0.1:{port}"), token }, pg_db, _dir: dir };
        let body = r#"{"pattern": "豫A*", "match_kind": "wildcard", "reason": "bench"}"#;
        let (code, resp) = s.conn.post("/api/v1/watchlists", body).await;
        assert_eq!(code, 201, "{resp}");
        s
    }

    async fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(db) = self.pg_db.take() {
            psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
        }
    }
}

impl Conn {
    async fn post(&self, path: &str, body: &str) -> (u16, String) {
        let mut sock = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        sock.set_nodelay(true).unwrap();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.token,
            body.len()
        );
        sock.write_all(req.as_bytes()).await.unwrap();
        let mut resp = String::new();
        sock.read_to_string(&mut resp).await.unwrap();
        (resp.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0), resp)
    }

    async fn passage(&self, plate: &str, at_ms: i64) -> u16 {
        let body = format!(
            r#"{{"camera_id": "{CAMERA}", "pass_time_ms": {at_ms}, "plate_no": "{plate}", "plate_color": "blue"}}"#
        );
        self.post("/api/v1/passages", &body).await.0
    }

    /// An SSE client from the live edge; sends (plate, when received) for every raised alert.
    async fn listen(
        &self,
        ready: tokio::sync::mpsc::Sender<()>,
        got: tokio::sync::mpsc::UnboundedSender<(String, Instant)>,
    ) {
        let mut sock = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        sock.set_nodelay(true).unwrap();
        let req = format!(
            "GET /api/v1/alerts/stream HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {}\r\n\r\n",
            self.token
        );
        sock.write_all(req.as_bytes()).await.unwrap();
        let mut buf = String::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let mut told = false;
        loop {
            let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(90), sock.read(&mut chunk)).await else { return };
            if n == 0 {
                return;
            }
            let now = Instant::now();
            buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
            if !told && buf.contains("200 OK") {
                told = true;
                let _ = ready.send(()).await;
            }
            // Each complete event: `data: {...}\n\n`.
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) else { continue };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(data.trim()) else { continue };
                if v["change"] != "raised" {
                    continue;
                }
                if let Some(t) = v["alert"]["title"].as_str()
                    && let Some(p) = t.strip_prefix("watchlist hit ").and_then(|r| r.split(' ').next())
                    && got.send((p.to_string(), now)).is_err()
                {
                    return;
                }
            }
        }
    }
}

fn psql(sql: &str) {
    let ok = Command::new("psql").args([PG_ADMIN, "-qc", sql]).status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "psql: {sql}");
}

/// Opens `clients` SSE clients; returns the receipts channel once every client is connected.
async fn clients(c: &Conn, clients: usize) -> tokio::sync::mpsc::UnboundedReceiver<(String, Instant)> {
    let (got_tx, got_rx) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(clients.max(1));
    for _ in 0..clients {
        let (c, r, g) = (c.clone(), ready_tx.clone(), got_tx.clone());
        tokio::spawn(async move { c.listen(r, g).await });
    }
    for _ in 0..clients {
        ready_rx.recv().await.unwrap();
    }
    got_rx
}

/// Passages from 64 concurrent clients; (events per second to the last alert, alerts arrived).
async fn throughput(bin: &str, engine: &str, n: usize, nats: Option<&str>) -> (f64, usize) {
    let s = Server::start(bin, engine, nats).await;
    let mut got = clients(&s.conn, 1).await;
    let base_ms = now_ms();
    let t0 = Instant::now();
    let mut posts = Vec::new();
    for w in 0..64 {
        let c = s.conn.clone();
        posts.push(tokio::spawn(async move {
            let mut bad = 0;
            // Client w sends passages w, w + 64, …: all n of them between the 64.
            for i in (w..n).step_by(64) {
                let code = c.passage(&plate(7, i), base_ms + i as i64).await;
                bad += usize::from(code != 201);
            }
            bad
        }));
    }
    let mut seen = std::collections::HashSet::new();
    let mut last = t0;
    while seen.len() < n {
        match tokio::time::timeout(Duration::from_secs(30), got.recv()).await {
            Ok(Some((p, at))) => {
                if seen.insert(p) {
                    last = at;
                }
            }
            _ => break,
        }
    }
    let mut refused = 0;
    for p in posts {
        refused += p.await.unwrap();
    }
    assert_eq!(refused, 0, "every passage accepted");
    s.stop().await;
    (seen.len() as f64 / last.duration_since(t0).as_secs_f64(), seen.len())
}

/// POST-to-SSE latencies (ms) of 100 hits at 20 per second with `n` clients listening.
async fn latency(bin: &str, engine: &str, n: usize, nats: Option<&str>) -> Vec<f64> {
    let s = Server::start(bin, engine, nats).await;
    let mut got = clients(&s.conn, n).await;
    let mut sent = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let base_ms = now_ms();
    for i in 0..100 {
        tick.tick().await;
        let p = plate(3, i);
        sent.insert(p.clone(), Instant::now());
        assert_eq!(s.conn.passage(&p, base_ms + i as i64).await, 201);
    }
    let mut lat = Vec::with_capacity(n * 100);
    while lat.len() < n * 100 {
        match tokio::time::timeout(Duration::from_secs(15), got.recv()).await {
            Ok(Some((p, at))) => {
                if let Some(t) = sent.get(&p) {
                    lat.push(at.duration_since(*t).as_secs_f64() * 1e3);
                }
            }
            _ => break,
        }
    }
    s.stop().await;
    lat
}

/// Bare single-row INSERT transactions per second into a fresh database of the engine.
async fn floor(engine: &str, n: usize) -> f64 {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let (url, pg) = if engine == "postgres" {
        let name = format!("tw_floor_{}", std::process::id());
        psql(&format!("CREATE DATABASE {name}"));
        (format!("postgres://postgres@127.0.0.1:5432/{name}"), Some(name))
    } else {
        (format!("sqlite://{}/floor.db?mode=rwc", dir.path().display()), None)
    };
    let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
    if engine == "sqlite" {
        sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await.unwrap();
        sqlx::query("PRAGMA synchronous = NORMAL").execute(&pool).await.unwrap();
    }
    sqlx::query("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT NOT NULL)").execute(&pool).await.unwrap();
    let t = Instant::now();
    for i in 0..n {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("INSERT INTO t (id, v) VALUES ($1, $2)").bind(i as i64).bind("x").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    pool.close().await;
    if let Some(name) = pg {
        psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
    rate
}

fn main() {
    let ours = env!("CARGO_BIN_EXE_tianwang").to_string();
    let baseline = std::env::var("TIANWANG_BASELINE_BIN").ok();
    let engines: Vec<String> = std::env::var("TIANWANG_BENCH_ENGINES")
        .unwrap_or_else(|_| "sqlite,postgres".into())
        .split(',')
        .map(str::to_string)
        .collect();
    let nats = (std::env::var("TIANWANG_BENCH_NATS").as_deref() != Ok("0")).then(NatsServer::start);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        for engine in &engines {
            let fl = floor(engine, 2000).await;
            println!("{engine}: floor: bare INSERT transactions {fl:.0}/s");
            let (ev, arrived) = throughput(&ours, engine, 2000, None).await;
            print!("{engine}: throughput: 2,000 watchlist hits from 64 clients, append to committed alert on SSE: ours {ev:.0} events/s ({arrived} of 2000 arrived)");
            if let Some(b) = &baseline {
                let (bev, barrived) = throughput(b, engine, 2000, None).await;
                print!("; baseline {bev:.0} events/s ({barrived} of 2000 arrived); ratio ours/baseline {:.2}", ev / bev);
            }
            println!("; floor ratio {:.2}", ev / fl);
            for n in [1, 100, 1000] {
                let mut l = latency(&ours, engine, n, None).await;
                let (p50, p99, k) = (pct(&mut l, 0.5), pct(&mut l, 0.99), l.len());
                print!("{engine}: append-to-SSE, {n} client(s): ours p50 {p50:.1} ms p99 {p99:.1} ms ({k} deliveries)");
                if let Some(b) = &baseline {
                    let mut bl = latency(b, engine, n, None).await;
                    let (b50, b99) = (pct(&mut bl, 0.5), pct(&mut bl, 0.99));
                    print!("; baseline p50 {b50:.1} ms p99 {b99:.1} ms; ratio p99 ours/baseline {:.2}", p99 / b99);
                }
                println!();
            }
            if let Some(nats) = &nats {
                let url = nats.url();
                let (jev, jarrived) = throughput(&ours, engine, 2000, Some(&url)).await;
                let (rev, rarrived) = throughput(&ours, engine, 2000, None).await;
                println!(
                    "{engine}: throughput through NATS JetStream: {jev:.0} events/s ({jarrived} of 2000 arrived); \
                     registry log in the same run {rev:.0} events/s ({rarrived} of 2000); ratio jetstream/registry {:.2}",
                    jev / rev
                );
                let mut jl = latency(&ours, engine, 1, Some(&url)).await;
                let mut rl = latency(&ours, engine, 1, None).await;
                let (j50, j99) = (pct(&mut jl, 0.5), pct(&mut jl, 0.99));
                let (r50, r99) = (pct(&mut rl, 0.5), pct(&mut rl, 0.99));
                println!(
                    "{engine}: append-to-SSE through NATS JetStream, 1 client: p50 {j50:.1} ms p99 {j99:.1} ms; \
                     registry log p50 {r50:.1} ms p99 {r99:.1} ms; ratio p99 jetstream/registry {:.2}",
                    j99 / r99
                );
            }
        }
    });
}

/// A private `nats-server` with JetStream on a free port, stopped when dropped.
struct NatsServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    fn start() -> NatsServer {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nats-server (scripts/setup.sh installs it)");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Server is ready") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(30)).expect("nats-server did not start");
        NatsServer { child, port, _dir: dir }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
