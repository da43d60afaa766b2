//! Durability: a server killed with SIGKILL in the middle of a burst of alarms. After a restart on
//! the same database every alert the API had returned is there, and the webhook outbox delivers
//! every one of them to a real HTTP receiver (at least once).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::config_dir;

const BIN: &str = env!("CARGO_BIN_EXE_tianwang");

fn serve(dir: &std::path::Path, db: &str) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--no-ingest", "--config"])
        .arg(dir)
        .args(["--db", db, "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env("TW_CRASH_HOOK_SECRET", "k")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not start");
        };
        if let Some(i) = line.find("http://") {
            return (child, line[i + 7..].split('/').next().unwrap().to_string());
        }
    }
}

fn post(addr: &str, token: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.get(9..12)?.parse().ok()?;
    Some((code, out.split("\r\n\r\n").nth(1).unwrap_or("").to_string()))
}

fn get(addr: &str, token: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    (out[9..12].parse().unwrap(), out.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_burst_loses_no_committed_alert_and_the_outbox_resumes() {
    // The receiver records every alert id it is sent.
    let (tx, rx) = mpsc::channel::<i64>();
    let recv = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
                    && let Some(id) = v["alert"]["id"].as_i64()
                {
                    let _ = tx.send(id);
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, recv).await.unwrap() });
    let site = format!(
        "[site]\nname = \"Crash city\"\ntimezone = \"Asia/Shanghai\"\n\n[[webhook]]\nname = \"desk\"\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret_env = \"TW_CRASH_HOOK_SECRET\"\n"
    );
    let dir = config_dir(&[("site.toml", &site)]);
    let db = format!("sqlite://{}/crash.db", dir.path().display());
    let out = Command::new(BIN)
        .args(["token", "create", "--role", "operator", "--name", "desk", "--db", &db])
        .output()
        .unwrap();
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();

    let (mut child, addr) = serve(dir.path(), &db);
    // The burst runs on a thread; the server is killed once 100 alarms were answered.
    let (ids_tx, ids_rx) = mpsc::channel::<i64>();
    let (a, t) = (addr.clone(), token.clone());
    let burst = std::thread::spawn(move || {
        for i in 0..100_000 {
            let body = format!("{{\"alarm_id\":\"crash-{i}\",\"lon\":113.665,\"lat\":34.757}}");
            match post(&a, &t, "/api/v1/alarms", &body) {
                Some((201, b)) => {
                    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
                    if ids_tx.send(v["id"].as_i64().unwrap()).is_err() {
                        return;
                    }
                }
                _ => return, // the server is gone
            }
        }
    });
    let mut returned = BTreeSet::new();
    while returned.len() < 100 {
        returned.insert(ids_rx.recv_timeout(Duration::from_secs(30)).expect("alarms answered"));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    burst.join().unwrap();
    returned.extend(ids_rx.try_iter());

    let (mut child, addr) = serve(dir.path(), &db);
    for id in &returned {
        let (code, body) = get(&addr, &token, &format!("/api/v1/alerts/{id}"));
        assert_eq!(code, 200, "alert {id} the API had returned is missing after the crash: {body}");
    }
    // Every returned alert reaches the receiver (some may arrive twice: at least once).
    let mut delivered = BTreeSet::new();
    let end = Instant::now() + Duration::from_secs(60);
    while !returned.is_subset(&delivered) {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(id) => {
                delivered.insert(id);
            }
            Err(_) => {
                panic!("{} of {} returned alerts delivered", returned.intersection(&delivered).count(), returned.len())
            }
        }
    }
    eprintln!("{} alerts returned before SIGKILL; all present after restart and delivered", returned.len());
    child.kill().unwrap();
    child.wait().unwrap();
}
