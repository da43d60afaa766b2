//! Schemathesis (PyPI, installed by `scripts/setup.sh` into `$HOME/.cache/tianwang/venv`) against the
//! live server's OpenAPI document, once per role, on the demo city: every operation answers without a
//! server error (5xx), with a status code, content type and body the document declares.
//!
//! `TIANWANG_SCHEMATHESIS_EXAMPLES` sets the examples per operation (default 25; `make fuzz` asks for
//! more), `TIANWANG_SCHEMATHESIS_SEED` the seed (default fixed, so a CI failure reproduces).

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Engine, TestApp, TestDb, demo_config};
use tianwang::app::AppOptions;
use tianwang::clock::{Clock, SimClock};

const ROLES: [&str; 5] = ["operator", "maintainer", "planner", "admin", "tracker"];

/// The one operation not run, and why: it cannot be bounded.
/// `GET /api/v1/alerts/stream` and `/api/v1/units/stream` are Server-Sent Events that stay open
/// until the client leaves; schemathesis reads a whole body, so every call would end in its
/// request timeout, not in an answer it could check. `tests/alerts.rs` covers the alerts' stream
/// (replay, limits, revoked tokens), `tests/units.rs` the units'.
const EXCLUDED_PATHS: [&str; 2] = ["/api/v1/alerts/stream", "/api/v1/units/stream"];

fn venv() -> PathBuf {
    match std::env::var_os("TIANWANG_VENV") {
        Some(v) => PathBuf::from(v),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/tianwang/venv")
        }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

/// The schemathesis executable; panics (the test fails, never skips) when setup has not run.
fn schemathesis() -> PathBuf {
    let bin = venv().join("bin/schemathesis");
    let out = Command::new(&bin).arg("--version").output().unwrap_or_else(|e| {
        panic!(
            "schemathesis is missing at {} ({e}): run `make test` (or scripts/setup.sh), which installs it",
            bin.display()
        )
    });
    assert!(
        out.status.success(),
        "{} --version failed: {}: run `make test` (or scripts/setup.sh) to reinstall it",
        bin.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("schemathesis: {}", String::from_utf8_lossy(&out.stdout).trim());
    bin
}

/// Runs the child until it exits or `limit` passes (then kills it); returns (exit code, stdout+stderr).
fn run_bounded(mut cmd: Command, limit: Duration) -> (Option<i32>, String, bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("out.txt");
    let out = std::fs::File::create(&out_path).expect("output file");
    let err = out.try_clone().expect("output file");
    let mut child = cmd
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("schemathesis starts");
    let start = Instant::now();
    let (code, timed_out) = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break (status.code(), false);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    (code, std::fs::read_to_string(&out_path).unwrap_or_default(), timed_out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_and_role_answers_as_documented() {
    let bin = schemathesis();
    let examples = env_u64("TIANWANG_SCHEMATHESIS_EXAMPLES", 25);
    let seed = env_u64("TIANWANG_SCHEMATHESIS_SEED", 20_260_101);
    // Per role; `make fuzz` raises the examples and with them this bound.
    let limit = Duration::from_secs(env_u64("TIANWANG_SCHEMATHESIS_LIMIT_S", 120 + 8 * examples));

    let db = TestDb::new(Engine::Sqlite).await;
    // Ingest on, so the health and snapshot endpoints answer as on a camera node (without it they
    // are 503 by design): the demo's cameras point at 127.0.0.1:8554, where nothing serves here,
    // so each is refused and waits out its back-off on the simulated clock, which never moves.
    let clock = SimClock::at(1_780_000_000_000);
    let opts = AppOptions { ingest: true, order_rounds: false, ..Default::default() };
    let app = TestApp::spawn_opts(&demo_config(), &db, Arc::new(clock.clone()), clock, opts).await;
    let now = app.clock.now_ms();
    let schema = app.url("/api/v1/openapi.json");

    let mut failures = Vec::new();
    for role in ROLES {
        let token = app.registry.create_token(&format!("schemathesis-{role}"), role, false, now).await.unwrap();
        let mut cmd = Command::new(&bin);
        cmd.env("NO_COLOR", "1")
            .arg("run")
            .arg(&schema)
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            ])
            .args(EXCLUDED_PATHS.iter().flat_map(|p| ["--exclude-path", p]))
            .args(["--max-examples", &examples.to_string()])
            .args(["--seed", &seed.to_string()])
            .arg("--generation-deterministic")
            .args(["--request-timeout", "20"])
            .args(["--workers", "2"])
            .arg("--no-color")
            .args(["--output-truncate", "false"]);
        let started = Instant::now();
        let (code, output, timed_out) = tokio::task::spawn_blocking(move || run_bounded(cmd, limit)).await.unwrap();
        // The token is the run's own; keep it out of the report anyway.
        let output = output.replace(&token, "<token>");
        eprintln!("--- schemathesis as {role}: exit {code:?} after {:.0?}\n{output}", started.elapsed());
        if timed_out {
            failures.push(format!("as {role}: did not finish within {limit:?}\n{output}"));
        } else if code != Some(0) {
            failures.push(format!("as {role}: schemathesis exit {code:?}\n{output}"));
        }
    }
    app.stop().await;
    assert!(failures.is_empty(), "schemathesis found failures:\n{}", failures.join("\n\n"));
}
