//! The web dashboard in a real browser: starts `tianwang demo` (the whole demo city, on free ports,
//! a fresh database, detection on the real models) and runs `tests/web/dashboard.mjs` in headless
//! Chromium (playwright-core, installed by `scripts/setup.sh` with `npm ci` in `tests/web`). The
//! script signs in, waits for a watchlist hit from the demo's traffic to arrive live and
//! acknowledges it with the keyboard, checks the camera wall's snapshots, counts the map's cameras
//! and rings against the API, starts an interception on the map and waits for its armed
//! checkpoints and a live crossing, and saves a screenshot of every view (in `tests/output/dashboard`,
//! or `TIANWANG_SCREENSHOTS`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Stops the demo however the test ends (SIGTERM, then SIGKILL if it lingers).
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Reads the demo's stdout until it prints its address and token.
fn address_and_token(child: &mut Child) -> (String, String) {
    let out = child.stdout.take().expect("demo stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("demo: open ") {
                let _ = tx.send(rest.to_string());
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(120)).expect("the demo printed no address within 2 minutes");
    // "http://127.0.0.1:PORT/ — API token (admin): tw_…"
    let url = line.split_whitespace().next().unwrap().trim_end_matches('/').to_string();
    let token = line.rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:") && token.starts_with("tw_"), "{line}");
    (url, token)
}

#[test]
fn the_dashboard_in_headless_chromium_against_the_demo_city() {
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
    let log = std::fs::File::create(tmp.path().join("demo.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tianwang"))
        .args(["demo", "--listen", "127.0.0.1:0", "--sim-port", "0", "--db"])
        .arg(format!("sqlite://{}", tmp.path().join("demo.db").display()))
        .arg("--config")
        .arg(root().join("camera-configs/demo"))
        // Media (plate crops) under the temp folder; models and the runtime are found via the crate root.
        .current_dir(tmp.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start tianwang demo");
    let mut demo = Demo(child);
    let (base, token) = address_and_token(&mut demo.0);

    let shots = std::env::var_os("TIANWANG_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("tests/output/dashboard"));
    let mut node = Command::new("node")
        .arg("dashboard.mjs")
        .current_dir(&web)
        .env("TW_BASE", &base)
        .env("TW_TOKEN", &token)
        .env("TW_SHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .spawn()
        .expect("run node (Debian package nodejs; scripts/setup.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(420);
    let status = loop {
        if let Some(s) = node.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = node.kill();
            panic!("the browser test ran past 7 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(demo);
    let log = std::fs::read_to_string(tmp.path().join("demo.log")).unwrap_or_default();
    assert!(status.success(), "tests/web/dashboard.mjs failed ({status}); the demo's log ends:\n{}", tail(&log, 40));
    // The token went to the browser in a header only: never into the server's log.
    assert!(!log.contains(&token), "the token appears in the demo's log");
    // The access log has a line per request with its caller and status, and no query (a live
    // stream's query may carry its token).
    let access: Vec<&str> = log.lines().filter(|l| l.contains("tianwang::access")).collect();
    assert!(
        access.iter().any(|l| l.contains("method=GET")
            && l.contains("path=/api/v1/alerts")
            && l.contains("status=200")
            && l.contains("role=admin")),
        "no access-log line for the alerts the dashboard read:\n{}",
        tail(&log, 40)
    );
    assert!(access.iter().all(|l| !l.contains("access_token") && !l.contains('?')), "a query in the access log");
    // The demo's GB/T 28181 NVR registered, listed its 4 channels, and the two channels that camera
    // entries read were asked for by INVITE; its password never reached the log.
    assert!(log.contains("GB/T 28181 device registered"), "the NVR did not register:\n{}", tail(&log, 40));
    assert!(log.contains("complete: 4 video channels"), "no complete catalog:\n{}", tail(&log, 40));
    for ch in ["41010000001310000001", "41010000001310000002"] {
        assert!(
            log.lines().any(|l| l.contains("GB/T 28181 live video call") && l.contains(ch)),
            "no live video call for {ch}:\n{}",
            tail(&log, 40)
        );
    }
    let secret = std::fs::read_to_string(root().join("camera-configs/demo/gb28181-demo.secret")).unwrap();
    assert!(!log.contains(secret.trim()), "the NVR's password appears in the demo's log");
    for view in ["alerts", "cameras", "map", "dispatch", "planning", "maintenance", "interception", "alerts-laptop"] {
        let png = std::fs::read(shots.join(format!("{view}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{view}.png");
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
