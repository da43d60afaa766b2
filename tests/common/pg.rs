//! PostgreSQL for tests: the server at 127.0.0.1:5432 when one answers (or `TIANWANG_TEST_PG`, an
//! admin URL), else a private server started here from Debian's binaries (initdb + pg_ctl) in the
//! target folder on a free port. Each test gets a database of its own, dropped afterwards.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

static ADMIN_URL: OnceLock<String> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The admin URL of a running server, starting a private one when needed.
pub fn admin_url() -> &'static str {
    ADMIN_URL.get_or_init(|| {
        if let Ok(url) = std::env::var("TIANWANG_TEST_PG") {
            if url != "private" {
                return url;
            }
            return start_private();
        }
        let default = "postgres://postgres@127.0.0.1:5432/postgres".to_string();
        if std::net::TcpStream::connect_timeout(&"127.0.0.1:5432".parse().unwrap(), std::time::Duration::from_secs(2))
            .is_ok()
        {
            default
        } else {
            start_private()
        }
    })
}

/// In the system temp folder, which the `postgres` user can reach when the tests run as root.
fn private_dir() -> PathBuf {
    std::env::temp_dir().join("tianwang-test-pg")
}

fn pg_bin(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.into_iter()
        .rev()
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no {name}: install Debian's postgresql package (scripts/setup.sh does)"))
}

/// Runs a PostgreSQL binary; as root it runs as the `postgres` user (the server refuses root).
fn run_pg(args: &[&str]) -> std::process::Output {
    let is_root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false);
    let mut cmd = if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]);
        c.args(args);
        c
    } else {
        let mut c = Command::new(args[0]);
        c.args(&args[1..]);
        c
    };
    cmd.output().expect("run a PostgreSQL binary")
}

fn start_private() -> String {
    let dir = private_dir();
    let port_file = dir.join("tianwang.port");
    if let Ok(port) = std::fs::read_to_string(&port_file) {
        let port = port.trim().to_string();
        if std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok() {
            return format!("postgres://postgres@127.0.0.1:{port}/postgres");
        }
    }
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let is_root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false);
    if is_root {
        let st = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().unwrap();
        assert!(st.success(), "chown {}", dir.display());
    }
    let initdb = pg_bin("initdb");
    let out = run_pg(&[
        initdb.to_str().unwrap(),
        "-D",
        data.to_str().unwrap(),
        "-U",
        "postgres",
        "-A",
        "trust",
        "--no-sync",
        "-E",
        "UTF8",
    ]);
    assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let pg_ctl = pg_bin("pg_ctl");
    let opts =
        format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", dir.display());
    let out = run_pg(&[
        pg_ctl.to_str().unwrap(),
        "-D",
        data.to_str().unwrap(),
        "-o",
        &opts,
        "-l",
        dir.join("server.log").to_str().unwrap(),
        "-w",
        "start",
    ]);
    assert!(out.status.success(), "pg_ctl start failed: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(&port_file, port.to_string()).unwrap();
    eprintln!("tests: started a private PostgreSQL on 127.0.0.1:{port} in {}", dir.display());
    format!("postgres://postgres@127.0.0.1:{port}/postgres")
}

/// Creates a fresh database; returns its name and URL.
pub async fn create_database() -> (String, String) {
    let admin = admin_url();
    let name = format!("tw_test_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
    let mut conn = PgConnection::connect(admin).await.expect("connect to the PostgreSQL admin database");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut conn).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
    conn.close().await.ok();
    let base = admin.rsplit_once('/').unwrap().0;
    (name.clone(), format!("{base}/{name}"))
}

/// Drops a test database from a plain thread (usable in `Drop`, inside or outside a runtime).
pub fn drop_database_blocking(name: &str) {
    let name = name.to_string();
    let admin = admin_url().to_string();
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            if let Ok(mut conn) = PgConnection::connect(&admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
                let _ = conn.close().await;
            }
        });
    })
    .join();
}
