//! The city map at the reference city's scale in a real browser: `tianwang sim-city` stores the
//! 76,164-camera city in a fresh SQLite registry, `tianwang serve` serves it, and
//! `tests/web/map_city.mjs` drives the Map view in headless Chromium (playwright-core, installed by
//! `scripts/setup.sh`): first full paint ≤ 2 s and ≤ 50 MB, 10 pan/zoom steps each drawn ≤ 2 s (target 500 ms; each step's time is printed),
//! a camera's state change shown ≤ 2 s on the same element, search, no console errors. The
//! screenshots go to `tests/output/map-city` (or `TIANWANG_SCREENSHOTS`).
//!
//! The server is asked for the map's extent, the coverage report and the rings once before the
//! browser opens the page: a city's server has built its geography long before anyone looks, and
//! the browser's figures are the map's, not the first model build's (whose time BENCHMARKS.md
//! gives).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tianwang");
const CAMERAS: usize = 76_164;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn get(addr: &str, path: &str, token: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

#[test]
fn the_map_holds_the_reference_city_in_headless_chromium() {
    let web = root().join("tests/web");
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "tests/web/node_modules/playwright-core is missing: run `bash scripts/setup.sh` (it runs `npm ci` in tests/web)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: run `bash scripts/setup.sh` (Debian package chromium)"
    );

    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", tmp.path().join("city.db").display());
    let out = Command::new(BIN).args(["sim-city", "--cameras", &CAMERAS.to_string(), "--db", &db]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "sim-city failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("stored {CAMERAS} cameras")) && stdout.contains("2 rings"), "{stdout}");
    let out =
        Command::new(BIN).args(["token", "create", "--role", "admin", "--name", "map", "--db", &db]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();

    let cfg = tmp.path().join("config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("site.toml"), "[site]\nname = \"Reference city\"\ntimezone = \"Asia/Shanghai\"\n").unwrap();
    let log = std::fs::File::create(tmp.path().join("serve.log")).unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&cfg)
        .args(["--db", &db, "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = log;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(log, "{line}");
            if let Some(i) = line.find("http://") {
                let _ = tx.send(line[i + 7..].split('/').next().unwrap_or_default().to_string());
            }
        }
    });
    let server = Server(child);
    let addr = rx.recv_timeout(Duration::from_secs(120)).expect("serve printed no address within 2 minutes");

    // The server's geography, built once (see the module's note).
    for path in [
        "/api/v1/geo/map/extent",
        "/api/v1/coverage/summary?level=observe",
        "/api/v1/rings",
        "/api/v1/coverage/entrances",
    ] {
        let (status, body) = get(&addr, path, &token);
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, extent) = get(&addr, "/api/v1/geo/map/extent", &token);
    let extent: serde_json::Value = serde_json::from_str(&extent).unwrap();
    assert_eq!(extent["cameras"], CAMERAS, "{extent}");

    let shots = std::env::var_os("TIANWANG_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("tests/output/map-city"));
    let mut node = Command::new("node")
        .arg("map_city.mjs")
        .current_dir(&web)
        .env("TW_BASE", format!("http://{addr}"))
        .env("TW_TOKEN", &token)
        .env("TW_SHOTS", &shots)
        .env("TW_CAMERAS", CAMERAS.to_string())
        .env("CHROMIUM", &chromium)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run node (Debian package nodejs; scripts/setup.sh installs it)");
    let mut lines = String::new();
    let mut out = node.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let _ = out.read_to_string(&mut lines);
        lines
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(s) = node.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = node.kill();
            panic!("the browser test ran past 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let printed = reader.join().unwrap();
    print!("{printed}");
    drop(server);
    let log = std::fs::read_to_string(tmp.path().join("serve.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(30).collect();
    assert!(
        status.success(),
        "tests/web/map_city.mjs failed ({status}):\n{printed}\nthe server's log ends:\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    assert!(printed.contains("FIGURES "), "{printed}");
    assert!(!log.contains(&token), "the token appears in the server's log");
    for view in ["map-city", "map-street", "map-search"] {
        let png = std::fs::read(shots.join(format!("{view}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{view}.png");
    }
}
