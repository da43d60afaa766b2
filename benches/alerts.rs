//! Alerts: how fast alerts are raised and committed, and SSE fan-out to 1,000 clients.
//!
//! 1. Ingest: N alarms through the engine and the store (alert + audit + feed + outbox in one
//!    transaction each, SQLite WAL), against a baseline of N bare single-row INSERT transactions
//!    into the same kind of database — the least a durable alert can cost.
//! 2. Fan-out: 1,000 SSE clients on the real server; 100 alarms raised at 20 per second; the time
//!    from an alarm entering the engine to each client receiving it, p50 and p99, against the same
//!    with one client. Run: `cargo bench --bench alerts`.

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
        title: format!("bench alarm {i}"),
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

/// Latencies (ms) from raising each of `alarms` alarms to each of `clients` SSE clients receiving it.
async fn fan_out(clients: usize, alarms: usize) -> Vec<f64> {
    let tmp = tempfile::tempdir().unwrap();
    let (app, _) = start(tmp.path()).await;
    let token = app.state.registry.create_token("bench", "operator", false, 0).await.unwrap();
    let alerts = app.state.alerts.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async move {
        let _ = stop_rx.await;
    }));
    // Each client: its own connection; records (title index, instant) of what it receives.
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(clients);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let url = format!("http://{addr}/api/v1/alerts/stream?after=0");
        let token = token.clone();
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut resp = client.get(url).bearer_auth(token).send().await.unwrap();
            ready.send(()).await.unwrap();
            let mut got: Vec<(usize, Instant)> = Vec::with_capacity(alarms);
            let mut buf = String::new();
            while got.len() < alarms {
                let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(30), resp.chunk()).await else {
                    break;
                };
                let now = Instant::now();
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(i) = buf.find("bench alarm ") {
                    let rest = &buf[i + 12..];
                    let n: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                    got.push((n.parse().unwrap(), now));
                    buf = rest[n.len()..].to_string();
                }
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
        alerts.signal(alarm(i)).await;
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
    assert_eq!(complete, clients, "every client got every alarm");
    let _ = stop_tx.send(());
    let _ = server.await;
    lat
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        ingest(3000).await;
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
