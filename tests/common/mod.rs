//! Test support: fresh databases on both engines, the app on port 0, config folders on disk.
#![allow(dead_code)]

pub mod city;
pub mod ingest;
pub mod mqtt;
pub mod nats;
pub mod pg;
pub mod sse;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tianwang::app::{App, AppOptions};
use tianwang::clock::{Clock, SimClock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Polls `check` every 50 ms until it gives a value (or fails the test after `secs`).
pub async fn until<T>(secs: u64, what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(std::time::Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A database of its own for one test; dropped (PostgreSQL) or deleted (SQLite) afterwards.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(engine: Engine) -> Self {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("registry.db").display());
                Self { url, _dir: Some(dir), pg_name: None }
            }
            Engine::Postgres => {
                let (name, url) = pg::create_database().await;
                Self { url, _dir: None, pg_name: Some(name) }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            pg::drop_database_blocking(&name);
        }
    }
}

/// Runs each listed `async fn NAME(engine: Engine)` as two tests: `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::common::Engine::Sqlite).await } )+
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::common::Engine::Postgres).await } )+
        }
    };
}

/// Writes `files` (relative path, contents) into a new temporary folder.
pub fn config_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

pub fn demo_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo")
}

/// A client that sends `Authorization: Bearer <token>` with every request.
pub fn authed_client(token: &str) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().expect("header"));
    reqwest::Client::builder().default_headers(h).build().expect("client")
}

/// The app serving on 127.0.0.1:0; stopped when dropped.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub clock: SimClock,
    pub registry: tianwang::registry::Registry,
    pub geo: tianwang::geo::service::GeoService,
    /// Camera health states (a test feeds it what ingest and quality sampling would).
    pub health: tianwang::maintenance::health::HealthKeeper,
    /// Work orders (a test on the simulated clock runs the rounds).
    pub orders: tianwang::maintenance::orders::OrderService,
    /// The event log (a test appends what producers would).
    pub log: Arc<dyn tianwang::events::EventLog>,
    /// The alert service.
    pub alerts: tianwang::alerts::service::AlertService,
    /// The ring watcher.
    pub rings: tianwang::geo::watch::RingWatcher,
    /// Detection, when the app runs it.
    pub detect: Option<tianwang::detect::service::DetectService>,
    /// An admin token; `client` sends it with every request.
    pub token: String,
    /// The GB/T 28181 SIP server, when the configuration has `[gb28181]` and ingest runs.
    pub gb28181: Option<Arc<tianwang::gb28181::GbServer>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    /// The API on a simulated clock, without camera pipelines.
    pub async fn spawn(config: &Path, db: &TestDb) -> Self {
        let clock = SimClock::at(1_780_000_000_000);
        Self::spawn_with(config, db, Arc::new(clock.clone()), clock, false).await
    }

    /// The whole system on the system clock: pipelines, detection, quality sampling (`clock` is then
    /// only a simulated clock set to the start time, not the app's).
    pub async fn spawn_live(config: &Path, db: &TestDb) -> Self {
        let sys = tianwang::clock::SystemClock;
        Self::spawn_with(config, db, Arc::new(sys), SimClock::at(sys.now_ms()), true).await
    }

    /// As [`TestApp::spawn`], the event log carried over NATS JetStream.
    pub async fn spawn_with_nats(
        config: &Path,
        db: &TestDb,
        nats: tianwang::events::jetstream::JetStreamOptions,
    ) -> Self {
        let clock = SimClock::at(1_780_000_000_000);
        let opts = AppOptions { ingest: false, order_rounds: false, nats: Some(nats), ..Default::default() };
        Self::spawn_opts(config, db, Arc::new(clock.clone()), clock, opts).await
    }

    async fn spawn_with(
        config: &Path,
        db: &TestDb,
        app_clock: Arc<dyn tianwang::clock::Clock>,
        clock: SimClock,
        ingest: bool,
    ) -> Self {
        let opts = AppOptions { ingest, order_rounds: ingest, ..Default::default() };
        Self::spawn_opts(config, db, app_clock, clock, opts).await
    }

    pub async fn spawn_opts(
        config: &Path,
        db: &TestDb,
        app_clock: Arc<dyn tianwang::clock::Clock>,
        clock: SimClock,
        opts: AppOptions,
    ) -> Self {
        let app = App::build(config, &db.url, app_clock, opts).await.expect("app builds");
        let registry = app.state.registry.clone();
        let geo = app.state.geo.clone();
        let (health, orders) = (app.state.health.clone(), app.state.orders.clone());
        let (log, alerts, rings) = (app.state.log.clone(), app.state.alerts.clone(), app.state.rings.clone());
        let detect = app.state.detect.clone();
        let gb28181 = app.state.gb28181.clone();
        let token = registry.create_token("test-admin", "admin", true, clock.now_ms()).await.expect("token");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            tianwang::server::serve(app, listener, async move {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        Self {
            addr,
            client: authed_client(&token),
            clock,
            registry,
            geo,
            health,
            orders,
            log,
            alerts,
            rings,
            detect,
            token,
            gb28181,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Waits until the ring watcher has done `n` checks in all (the first runs at start).
    pub async fn rings_checked(&self, n: u64) {
        let mut c = self.rings.checks();
        tokio::time::timeout(std::time::Duration::from_secs(30), c.wait_for(|v| *v >= n))
            .await
            .expect("the ring watcher checks")
            .expect("the ring watcher runs");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// GET returning status and parsed JSON body (Null when the body is not JSON).
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value, String) {
        let r = self.client.get(self.url(path)).send().await.expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        (status, json, text)
    }

    /// POST a JSON body; returns status and parsed JSON body (Null when not JSON).
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value, String) {
        let r = self.client.post(self.url(path)).json(body).send().await.expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        (status, json, text)
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("server task");
        }
    }
}
