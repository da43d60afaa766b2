//! The `tianwang` binary: check-config output and exit codes, migrate, serve with graceful shutdown
//! on SIGTERM and SIGINT, JSON logs, and no secrets in the logs.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::config_dir;

const BIN: &str = env!("CARGO_BIN_EXE_tianwang");

const SITE: &str = "[site]\nname = \"CLI\"\ntimezone = \"UTC\"\n[defaults]\nhfov_deg = 90\nresolution = \"1920x1080\"\nowner = \"public\"\nmounting_height_m = 5\n";
const CAM: &str = "[[camera]]\nid = \"c1\"\nname = \"c1\"\nurl = \"rtsp://127.0.0.1:1/c1\"\nlon = 113.6\nlat = 34.7\nbearing_deg = 0\nkind = \"street\"\nusername = \"admin\"\npassword_file = \"pw.txt\"\n";
const PASSWORD: &str = "pa55-w0rd-never-shown";

#[test]
fn check_config_prints_every_error_and_exits_1() {
    let bad =
        CAM.replace("bearing_deg = 0", "bearing_deg = 720").replace("lat = 34.7", "lat = 134.7") + "colour = \"red\"\n";
    let dir = config_dir(&[("site.toml", SITE), ("cams.toml", &bad), ("pw.txt", PASSWORD)]);
    let out = Command::new(BIN).arg("check-config").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let p = dir.path().join("cams.toml").display().to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with(&format!("{p}:6: camera[c1].lat: ")), "{stdout}");
    assert!(lines[1].starts_with(&format!("{p}:7: camera[c1].bearing_deg: ")), "{stdout}");
    assert!(lines[2].starts_with(&format!("{p}:11: camera[c1].colour: unknown field")), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 error(s)"));
}

#[test]
fn check_config_accepts_the_demo_city() {
    let out = Command::new(BIN).arg("check-config").arg(common::demo_config()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
}

/// The folder that holds the site folders (like `camera-configs`) is named as such, with the
/// sites it holds, instead of one error per table of every site read as cameras of one.
#[test]
fn check_config_on_a_folder_of_sites_names_the_sites() {
    let dir = tempfile::tempdir().unwrap();
    for site in ["north", "south"] {
        let d = dir.path().join(site);
        std::fs::create_dir_all(&d).unwrap();
        for f in std::fs::read_dir(common::demo_config()).unwrap().flatten() {
            if f.path().is_file() {
                std::fs::copy(f.path(), d.join(f.file_name())).unwrap();
            }
        }
    }
    let out = Command::new(BIN).arg("check-config").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "one error: {text}");
    assert!(text.contains("holds site folders") && text.contains("north") && text.contains("south"), "{text}");
}

#[test]
fn migrate_applies_and_lists_migrations() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/m.db", tmp.path().display());
    let out = Command::new(BIN).args(["migrate", "--db", &db]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0001 cameras: applied"));
}

/// Starts `serve`; returns the child, the address it listens on, and its later stderr lines.
fn start_serve(args: &[&str], cfg: &std::path::Path, db: &str) -> (Child, String, mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("serve")
        .arg("--config")
        .arg(cfg)
        .args(["--db", db, "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no 'serving' line; got {seen:#?}");
        };
        if let Some(i) = line.find("http://") {
            let addr = line[i + 7..].split('/').next().unwrap().to_string();
            seen.push(line);
            return (child, addr, rx);
        }
        seen.push(line);
    }
}

/// Waits for the child to exit (on a thread blocked in `wait`), at most 30 s.
fn wait_exit(child: Child) -> std::process::ExitStatus {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut child = child;
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(st) => st.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("server did not exit within 30 s");
        }
    }
}

fn healthz(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn graceful(signal: &str) {
    let dir = config_dir(&[("site.toml", SITE), ("cams.toml", CAM), ("pw.txt", PASSWORD)]);
    let db = format!("sqlite://{}/t.db", dir.path().display());
    let (child, addr, rx) = start_serve(&["--log-json"], dir.path(), &db);
    let resp = healthz(&addr);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let st = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(st.success());
    let status = wait_exit(child);
    assert!(status.success(), "exit status after {signal}: {status:?}");
    // The reader thread ends at EOF on stderr, so this collects every remaining line.
    let logs: Vec<String> = rx.iter().collect();
    assert!(logs.iter().any(|l| l.contains("shutting down")), "{logs:#?}");
    for l in &logs {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string(), "{l}");
        assert!(!l.contains(PASSWORD), "password in the logs: {l}");
    }
}

#[test]
fn serve_shuts_down_gracefully_on_sigterm() {
    graceful("-TERM");
}

#[test]
fn serve_shuts_down_gracefully_on_sigint() {
    graceful("-INT");
}

#[test]
fn serve_refuses_a_bad_configuration_and_names_the_errors() {
    let dir = config_dir(&[("site.toml", SITE), ("cams.toml", &CAM.replace("kind = \"street\"", "kind = \"tower\""))]);
    let db = format!("sqlite://{}/t.db", dir.path().display());
    let out = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(dir.path())
        .args(["--db", &db, "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cams.toml:8: camera[c1].kind"), "{err}");
    assert!(err.contains("cams.toml:10: camera[c1].password_file: missing secret"), "{err}");
    assert!(err.contains("nothing started"), "{err}");
}

#[test]
fn serve_names_an_unreachable_database_without_its_password() {
    let dir = config_dir(&[("site.toml", SITE), ("cams.toml", CAM), ("pw.txt", PASSWORD)]);
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let db = format!("postgres://tw:dbpass-hidden@127.0.0.1:{port}/x");
    let out = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(dir.path())
        .args(["--db", &db, "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("dbpass-hidden"), "{err}");
}

#[test]
fn sighup_reloads_the_configuration() {
    let dir = config_dir(&[("site.toml", SITE), ("cams.toml", CAM), ("pw.txt", PASSWORD)]);
    let db = format!("sqlite://{}/t.db", dir.path().display());
    let (child, _addr, rx) = start_serve(&["--log-json"], dir.path(), &db);
    let c2 = CAM.replace("id = \"c1\"", "id = \"c2\"").replace("/c1", "/c2");
    std::fs::write(dir.path().join("cams.toml"), format!("{CAM}\n{c2}")).unwrap();
    assert!(Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap().success());
    let mut seen = Vec::new();
    let reloaded = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) if l.contains("configuration reloaded") => break l,
            Ok(l) => seen.push(l),
            Err(_) => panic!("no reload logged; got {seen:#?}"),
        }
    };
    assert!(reloaded.contains("c2"), "{reloaded}");
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    assert!(wait_exit(child).success());
}

fn get_with(addr: &str, path: &str, token: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn tokens_work_are_revocable_and_never_logged() {
    let dir = config_dir(&[("site.toml", SITE), ("cams.toml", CAM), ("pw.txt", PASSWORD)]);
    let db = format!("sqlite://{}/t.db", dir.path().display());
    let out = Command::new(BIN)
        .args(["token", "create", "--role", "operator", "--name", "desk-1", "--db", &db])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(token.starts_with("tw_") && token.len() == 43, "{token}");
    let (child, addr, rx) = start_serve(&["--log-json"], dir.path(), &db);
    assert!(get_with(&addr, "/api/v1/alerts", &token).starts_with("HTTP/1.1 200"));
    let forbidden = get_with(&addr, "/api/v1/coverage/summary", &token);
    assert!(forbidden.starts_with("HTTP/1.1 403") && forbidden.contains("planner"), "{forbidden}");
    let wrong = "tw_0123456789abcdef0123456789abcdef01234567";
    assert!(get_with(&addr, "/api/v1/alerts", wrong).starts_with("HTTP/1.1 401"));
    let out = Command::new(BIN).args(["token", "revoke", "--name", "desk-1", "--db", &db]).output().unwrap();
    assert!(out.status.success());
    assert!(get_with(&addr, "/api/v1/alerts", &token).starts_with("HTTP/1.1 401"));
    let list = Command::new(BIN).args(["token", "list", "--db", &db]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(list.contains("desk-1\toperator\t-\trevoked") && !list.contains(&token), "{list}");
    // A duty desk's token is an operator's, named with its desk in the list.
    let desk = |role: &str, name: &str| {
        Command::new(BIN)
            .args(["token", "create", "--role", role, "--name", name, "--desk", "d-erqi", "--db", &db])
            .output()
            .unwrap()
    };
    let out = desk("planner", "plan-1");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--role operator"));
    assert!(desk("operator", "erqi-1").status.success());
    let list = Command::new(BIN).args(["token", "list", "--db", &db]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(list.contains("erqi-1\toperator\td-erqi\tactive") && !list.contains("plan-1"), "{list}");
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    assert!(wait_exit(child).success());
    let logs: Vec<String> = rx.try_iter().collect();
    assert!(logs.iter().any(|l| l.contains("rejected an unknown or revoked token")), "{logs:#?}");
    for l in &logs {
        assert!(!l.contains(&token) && !l.contains(wrong) && !l.contains(&token[3..]), "a token in the log: {l}");
    }
}

/// A missing or wrong ONNX Runtime library is a clear error that says how to fix it, not a panic.
#[test]
fn missing_onnx_runtime_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("labels.csv"), "file,plate,color,split\n").unwrap();
    let not_a_library = dir.path().join("libonnxruntime.so");
    std::fs::write(&not_a_library, b"this is not a shared library").unwrap();
    for lib in [dir.path().join("nowhere.so"), not_a_library] {
        let out = std::process::Command::new(BIN)
            .args(["eval", "plates"])
            .arg(dir.path())
            .env("ORT_DYLIB_PATH", &lib)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(&lib.display().to_string()) && err.contains("bash scripts/setup.sh"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// A detection config with a bad value names the field and its line.
#[test]
fn detect_config_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("site.toml"),
        "[site]\nname = \"S\"\ntimezone = \"UTC\"\n[detect]\nplate_threads = 0\n[[motion_zone]]\ncamera = \"a\"\nname = \"z\"\npoints = [[0.1, 0.1], [2.0, 0.1], [0.1, 0.5]]\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN).arg("check-config").arg(dir.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("site.toml:5") && text.contains("plate_threads"), "{text}");
    assert!(text.contains("motion_zone[1]") && text.contains("points"), "{text}");
}

#[test]
fn maintenance_config_errors_name_the_field() {
    let site = format!(
        "{SITE}[maintenance]\nverify_min = -5\ndue_hours = [4, 24]\n[[grid_cell]]\nid = \"g1\"\nname = \"G\"\nlevel = 1\n[[crew]]\nid = \"north\"\ncells = [\"g1\", \"g9\"]\n[[quality_override]]\ncamera = \"nope\"\ndisable = [\"blurr\"]\n"
    );
    let dir = config_dir(&[("site.toml", &site), ("cams.toml", CAM), ("pw.txt", PASSWORD)]);
    let out = Command::new(BIN).arg("check-config").arg(dir.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    for want in [
        "maintenance.verify_min: -5 is out of range",
        "maintenance.due_hours: 2 items; expected 3",
        "crew[north].cells: \"g9\" is not a grid cell",
        "quality_override[1].disable: \"blurr\" is not a quality check",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert_eq!(text.lines().count(), 4, "{text}");
}

#[test]
fn maintenance_report_prints_orders_uptime_and_replacements() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/r.db", tmp.path().display());
    let sd = CAM.replace("kind = \"street\"", "kind = \"street\"\nresolution = \"704x576\"");
    let dir = config_dir(&[("site.toml", SITE), ("cams.toml", &sd), ("pw.txt", PASSWORD)]);
    let out = Command::new(BIN).args(["check-config"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    // The registry is filled by serving once (sync at start), then the report reads it.
    let (child, addr, _rx) = start_serve(&[], dir.path(), &db);
    assert!(healthz(&addr).contains("ok"));
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    assert!(wait_exit(child).success());
    let out = Command::new(BIN).args(["maintenance", "report", "--days", "7", "--db", &db]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Active work orders: 0"), "{text}");
    assert!(text.contains("Below-HD cameras to replace"), "{text}");
    assert!(text.lines().any(|l| l.contains("c1") && l.contains("704x576")), "{text}");
    assert!(!text.contains(PASSWORD));
    let out = Command::new(BIN).args(["maintenance", "report", "--json", "--db", &db]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["replacements"][0]["camera_id"], "c1");
    let out = Command::new(BIN).args(["maintenance", "report", "--days", "0", "--db", &db]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--days"));
}

/// `sim-city` stores a generated city that the planners' report reads like an import; bad
/// arguments are named and store nothing.
#[test]
fn sim_city_stores_a_city_the_coverage_report_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/city.db", tmp.path().display());
    let out =
        Command::new(BIN).args(["sim-city", "--cameras", "2000", "--centre", "200,34", "--db", &db]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--centre \"200,34\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN).args(["sim-city", "--cameras", "2000", "--db", &db]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    // 2,000 cameras at the reference city's density: 26 streets each way, 131 entrances.
    assert!(
        stdout.contains("stored 2000 cameras")
            && stdout.contains("52 roads on 26 streets")
            && stdout.contains("131 entrances")
            && stdout.contains("2 rings"),
        "{stdout}"
    );
    let dir = tmp.path().join("report");
    let out = Command::new(BIN)
        .args(["coverage", "report", "--states", "all", "--db", &db, "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["cameras"]["total"], 2000, "{summary}");
    assert_eq!(summary["entrances"], 131);
    assert_eq!(summary["rings"].as_array().unwrap().len(), 2, "{summary}");
    assert!(summary["overall"]["covered_m"].as_f64().unwrap() > 0.0);
}

fn post_with(addr: &str, path: &str, token: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn json_body(resp: &str) -> serde_json::Value {
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or_default();
    // Chunked or not: the JSON is the one line that parses.
    body.lines().find_map(|l| serde_json::from_str(l).ok()).unwrap_or(serde_json::Value::Null)
}

/// A recorded track: imported as recorded (CSV, a bad row named, a repeat counted once), and a
/// GPX replayed to a running server as a tracker would, sped up 50 times, its times moved to
/// start at the given time with the gaps shrunk alike; the token comes from the environment.
#[test]
fn tracks_are_imported_and_replayed() {
    let dir = config_dir(&[("site.toml", SITE), ("cams.toml", CAM), ("pw.txt", PASSWORD)]);
    let db = format!("sqlite://{}/t.db", dir.path().display());
    let out =
        Command::new(BIN).args(["token", "create", "--role", "admin", "--name", "a", "--db", &db]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (child, addr, _rx) = start_serve(&[], dir.path(), &db);
    for id in ["pc-1", "pc-2"] {
        let r = post_with(
            &addr,
            "/api/v1/units",
            &token,
            &format!(r#"{{"id":"{id}","name":"{id}","kind":"car","station":"s"}}"#),
        );
        assert!(r.starts_with("HTTP/1.1 201"), "{r}");
    }
    let now = tianwang::clock::Clock::now_ms(&tianwang::clock::SystemClock);
    let t0 = now - 600_000;
    let csv = format!(
        "at_ms,lon,lat,speed_mps\n{},113.60,34.70,5\n{},113.601,34.70,\n{},113.602,oops,\n{},113.601,34.70,\n",
        t0,
        t0 + 5_000,
        t0 + 10_000,
        t0 + 5_000
    );
    std::fs::write(dir.path().join("t.csv"), csv).unwrap();
    let out = Command::new(BIN)
        .args(["track", "import", "--unit", "pc-1", "--file"])
        .arg(dir.path().join("t.csv"))
        .args(["--db", &db])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("2 positions stored for unit pc-1, 1 already there, 1 refused"), "{stdout}");
    assert!(stderr.contains("line 4: refused: lat \"oops\" is not a number"), "{stderr}");
    let track = json_body(&get_with(&addr, &format!("/api/v1/units/pc-1/track?from_ms={}", t0 - 1), &token));
    let times: Vec<i64> = track.as_array().unwrap().iter().map(|f| f["at_ms"].as_i64().unwrap()).collect();
    assert_eq!(times, vec![t0, t0 + 5_000], "{track}");
    assert_eq!(track[0]["speed_mps"], 5.0);
    // An unknown unit: a clear error, nothing stored.
    let out = Command::new(BIN)
        .args(["track", "import", "--unit", "pc-9", "--file"])
        .arg(dir.path().join("t.csv"))
        .args(["--db", &db])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("pc-9"));

    // Replay: 10 points 5 s apart recorded a year ago, sent 50 times faster from `start`.
    let pts: String = (0..10)
        .map(|i| {
            format!(
                "<trkpt lat=\"34.70\" lon=\"{:.4}\"><time>2025-12-01T08:00:{:02}Z</time><speed>7</speed></trkpt>",
                113.60 + f64::from(i) * 0.0005,
                i * 5
            )
        })
        .collect();
    let gpx = format!("<?xml version=\"1.0\"?><gpx version=\"1.0\"><trk><trkseg>{pts}</trkseg></trk></gpx>");
    std::fs::write(dir.path().join("patrol.gpx"), gpx).unwrap();
    let start = tianwang::clock::Clock::now_ms(&tianwang::clock::SystemClock);
    let out = Command::new(BIN)
        .args(["track", "replay", "--unit", "pc-2", "--speed", "50", "--start-ms", &start.to_string(), "--file"])
        .arg(dir.path().join("patrol.gpx"))
        .args(["--url", &format!("http://{addr}")])
        .env("TIANWANG_TOKEN", &token)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("10 positions replayed to unit pc-2, 0 refused"), "{stdout}");
    assert!(!stdout.contains(&token) && !stderr.contains(&token));
    let track = json_body(&get_with(&addr, &format!("/api/v1/units/pc-2/track?from_ms={}", start - 1), &token));
    let times: Vec<i64> = track.as_array().unwrap().iter().map(|f| f["at_ms"].as_i64().unwrap()).collect();
    assert_eq!(times, (0..10).map(|i| start + i * 100).collect::<Vec<_>>(), "{track}");
    assert_eq!(track[9]["lon"], 113.6045);
    // Without a token in the environment it says where it looked.
    let out = Command::new(BIN)
        .args(["track", "replay", "--unit", "pc-2", "--url", "http://127.0.0.1:9", "--file"])
        .arg(dir.path().join("patrol.gpx"))
        .env_remove("TIANWANG_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("TIANWANG_TOKEN"));
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    assert!(wait_exit(child).success());
}
