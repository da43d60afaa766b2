//! Alerts: how fast alerts are raised and committed, and SSE fan-out to 1,000 clients.
//!
//! 1. Ingest: N alarms through the engine and the store (alert + audit + feed + outbox in one
//!    transaction each, SQLite WAL), against a baseline of N bare single-row INSERT transactions
//!    into the same kind of database — the least a durable alert can cost.
//! 2. Fan-out: `tianwang serve` in its own process; 1,000 SSE clients on bare sockets; 100 alarms
//!    POSTed at 20 per second; the time from sending each POST to each client receiving the alert,
//!    p50 and p99, against the same with one client. Run: `cargo bench --bench alerts`
//!    (`SKIP_INGEST=1` for the fan-out alone).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tianwang::alerts::engine::{Occurrence, Signal};
use tianwang::app::{App, AppOptions};
use tianwang::clock::SystemClock;
use tianwang::registry::Registry;

fn alarm(i: usize) -> Signal {
    Signal::Event(Occurrence {
        kind: "alarm".into(),
        key: format!("alarm:bench-{i}"),
        title: format!("anti-robbery alarm: bench {i}"),
        cameras: vec![],
        grid_cell: None,
        ring_id: None,
        detail: serde_json::json!({"i": i}),
        at_ms: 0,
    })
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn start(dir: &std::path::Path) -> (App, String) {
    std::fs::write(dir.join("site.toml"), "[site]\nname = \"bench\"\ntimezone = \"Asia/Shanghai\"\n").unwrap();
    let db = format!("sqlite://{}/bench.db", dir.display());
    let app = App::build(dir, &db, Arc::new(SystemClock), AppOptions { ingest: false }).await.unwrap();
    (app, db)
}

async fn ingest(n: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let (app, _) = start(tmp.path()).await;
    let t = Instant::now();
    for i in 0..n {
        let rows = app.state.alerts.signal_and_wait(alarm(i)).await;
        assert_eq!(rows.len(), 1);
    }
    let ours = t.elapsed().as_secs_f64();

    let base_dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(&format!("sqlite://{}/base.db", base_dir.path().display())).await.unwrap();
    let t = Instant::now();
    for i in 0..n {
        let mut tx = reg.pool().begin().await.unwrap();
        sqlx::query(
            "INSERT INTO alerts (kind, severity, status, dedupe_key, title, cameras, detail, count, escalation_level, \
             first_at_ms, last_at_ms, created_at_ms, updated_at_ms) VALUES ('alarm', 'critical', 'new', $1, $1, '[]', '{}', 1, 0, 0, 0, 0, 0)",
        )
        .bind(format!("alarm:bench-{i}"))
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let base = t.elapsed().as_secs_f64();
    println!(
        "ingest: {n} alarms through engine + store {:.0} alerts/s ({:.2} ms each); bare INSERT transactions {:.0}/s; ratio time ours/baseline {:.2}",
        n as f64 / ours,
        ours * 1e3 / n as f64,
        n as f64 / base,
        ours / base
    );
}

/// Latencies (ms) from POSTing each of `alarms` alarms to each of `clients` SSE clients
/// receiving it, against `tianwang serve` running as its own process.
async fn fan_out(clients: usize, alarms: usize) -> Vec<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("site.toml"), "[site]\nname = \"bench\"\ntimezone = \"Asia/Shanghai\"\n").unwrap();
    let db = format!("sqlite://{}/bench.db", tmp.path().display());
    let reg = Registry::open(&db).await.unwrap();
    let token = reg.create_token("bench", "operator", false, 0).await.unwrap();
    reg.close().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_tianwang"))
        .args(["serve", "--no-ingest", "--config"])
        .arg(tmp.path())
        .args(["--db", &db, "--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Ready when it says it is serving; its log is drained meanwhile so it never blocks on it.
    let stderr = server.stderr.take().unwrap();
    let (up_tx, up_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            if line.contains("serving") {
                let _ = up_tx.send(());
            }
        }
    });
    up_rx.recv_timeout(Duration::from_secs(60)).expect("the server did not start");
    let addr = format!("127.0.0.1:{port}");
    let connect = || async { tokio::net::TcpStream::connect(&addr).await.expect("connect to the server") };
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(clients);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let mut sock = connect().await;
        let token = token.clone();
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            sock.set_nodelay(true).unwrap();
            let req = format!(
                "GET /api/v1/alerts/stream?after=0 HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n"
            );
            sock.write_all(req.as_bytes()).await.unwrap();
            let mut got: Vec<(usize, Instant)> = Vec::with_capacity(alarms);
            let mut buf = String::new();
            let mut chunk = vec![0u8; 64 * 1024];
            let mut told = false;
            while got.len() < alarms {
                let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(30), sock.read(&mut chunk)).await else {
                    break;
                };
                if n == 0 {
                    break;
                }
                let now = Instant::now();
                buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
                if !told && buf.contains("200 OK") {
                    told = true;
                    ready.send(()).await.unwrap();
                }
                // Each title once it is complete (its closing quote has arrived).
                let mut consumed = 0;
                while let Some(i) = buf[consumed..].find("bench alarm ") {
                    let start = consumed + i + 12;
                    let digits: String = buf[start..].chars().take_while(|c| c.is_ascii_digit()).collect();
                    if buf[start + digits.len()..].starts_with('"') {
                        // The name appears twice in an event (title and detail): count it once.
                        let n: usize = digits.parse().unwrap();
                        if !got.iter().any(|g| g.0 == n) {
                            got.push((n, now));
                        }
                        consumed = start + digits.len();
                    } else {
                        break;
                    }
                }
                buf.drain(..consumed);
            }
            got
        }));
    }
    for _ in 0..clients {
        ready_rx.recv().await.unwrap();
    }
    let mut sent = Vec::with_capacity(alarms);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    for i in 0..alarms {
        tick.tick().await;
        sent.push(Instant::now());
        let body = format!("{{\"alarm_id\":\"b-{i}\",\"name\":\"bench alarm {i}\"}}");
        let mut s = connect().await;
        s.set_nodelay(true).unwrap();
        let req = format!(
            "POST /api/v1/alarms HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).await.unwrap();
        assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
    }
    let mut lat = Vec::with_capacity(clients * alarms);
    let mut complete = 0;
    for t in tasks {
        let got = t.await.unwrap();
        complete += usize::from(got.len() == alarms);
        for (i, at) in got {
            lat.push(at.duration_since(sent[i]).as_secs_f64() * 1e3);
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(complete, clients, "every client got every alarm");
    lat
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        if std::env::var("SKIP_INGEST").is_err() {
            ingest(3000).await;
        }
        let mut one = fan_out(1, 100).await;
        let mut many = fan_out(1000, 100).await;
        let (p50_1, p99_1) = (pct(&mut one, 0.5), pct(&mut one, 0.99));
        let (p50, p99) = (pct(&mut many, 0.5), pct(&mut many, 0.99));
        println!(
            "SSE fan-out, 100 alarms at 20/s: 1 client p50 {p50_1:.1} ms p99 {p99_1:.1} ms; 1,000 clients p50 {p50:.1} ms p99 {p99:.1} ms ({} deliveries); ratio p99 1000/1 {:.1}",
            many.len(),
            p99 / p99_1.max(0.001)
        );
    });
}
