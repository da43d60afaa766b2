//! Composition root: builds every part from the configuration and owns reload and shutdown.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use tokio::net::TcpListener;
use utoipa::ToSchema;

use crate::alerts::engine::EngineConfig;
use crate::alerts::service::AlertService;
use crate::api::{self, AppState};
use crate::clock::Clock;
use crate::config::{self, CityConfig, ConfigErrors};
use crate::geo::service::GeoService;
use crate::ingest::{self, ApplyReport, Ingest, IngestError, IngestSpec, StatusEvent};
use crate::maintenance::health::HealthKeeper;
use crate::maintenance::orders::OrderService;
use crate::registry::{Registry, RegistryError, SyncReport};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("configuration has {n} error(s):\n{0}", n = .0.0.len())]
    Config(#[from] ConfigErrors),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
    #[error("map file: {0}")]
    Map(#[from] crate::geo::load::LoadError),
    #[error("detection: {0}")]
    Detect(#[from] crate::detect::onnx::OnnxError),
}

#[derive(Debug, Clone)]
pub struct AppOptions {
    /// Run a pipeline for every enabled camera. Off for an API-only node (and API tests).
    pub ingest: bool,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self { ingest: true }
    }
}

/// A running system's parts.
pub struct App {
    pub state: AppState,
    pub config: CityConfig,
    pub sync: SyncReport,
    /// SIGHUP is caught from the moment the app is built (before it says it is serving), so a
    /// reload signal can never kill a starting server.
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
    /// Webhook delivery and MQTT publishing: stopped when serving ends.
    background: Vec<tokio::task::JoinHandle<()>>,
}

/// What a reload changed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReloadReport {
    pub cameras_inserted: Vec<String>,
    pub cameras_updated: Vec<String>,
    pub cameras_decommissioned: Vec<String>,
    pub pipelines_started: Vec<String>,
    pub pipelines_stopped: Vec<String>,
    pub pipelines_restarted: Vec<String>,
    pub pipelines_unchanged: usize,
}

fn specs(cfg: &CityConfig) -> Vec<IngestSpec> {
    let sample_s = cfg.maintenance.as_ref().map_or(10.0, |m| m.vqd_interval_s);
    cfg.cameras.iter().filter(|c| c.enabled).map(|c| IngestSpec::from_config(c, sample_s)).collect()
}

impl App {
    /// Loads and validates the configuration, opens and migrates the registry, syncs the
    /// cameras, and starts a pipeline per enabled camera.
    pub async fn build(
        config_dir: &Path,
        database: &str,
        clock: Arc<dyn Clock>,
        opts: AppOptions,
    ) -> Result<Self, AppError> {
        let config = config::load_dir(config_dir)?;
        let registry = Registry::open(database).await?;
        let sync = registry.sync_config(&config, clock.now_ms()).await?;
        tracing::info!(site = %config.site.name, cameras = config.cameras.len(), "{}", sync.summary());
        import_map(&registry, &config, clock.now_ms()).await?;
        let geo = GeoService::new(registry.clone(), config.site.dori_table);
        check_rings(&geo, clock.now_ms()).await;
        let hooks = webhooks(&config);
        let alerts = AlertService::start(
            registry.clone(),
            clock.clone(),
            engine_config(&config),
            hooks.iter().map(|h| h.name.clone()).collect(),
        )
        .await?;
        let health = HealthKeeper::start(registry.clone(), alerts.clone()).await?;
        let mut background = vec![crate::alerts::webhooks::spawn(registry.clone(), clock.clone(), hooks)];
        if let Some(m) = &config.mqtt {
            let target = crate::alerts::mqtt::MqttTarget {
                host: m.host.clone(),
                port: m.port,
                topic_prefix: m.topic_prefix.clone(),
                client_id: m.client_id.clone(),
            };
            background.push(crate::alerts::mqtt::spawn(registry.clone(), target));
        }
        let ingest = if opts.ingest {
            ingest::init_gstreamer()?;
            let (tx, rx) = tokio::sync::mpsc::channel(4096);
            tokio::spawn(write_statuses(health.clone(), geo.clone(), clock.clone(), rx));
            let ingest = Arc::new(Ingest::new(clock.clone(), Some(tx)));
            let specs = specs(&config);
            let ing = ingest.clone();
            let report = tokio::task::spawn_blocking(move || ing.apply(specs))
                .await
                .map_err(|e| AppError::Serve(std::io::Error::other(e)))?;
            tracing::info!(pipelines = report.started.len(), "ingest started");
            Some(ingest)
        } else {
            None
        };
        let detect = match (&ingest, &config.detect) {
            (Some(ingest), Some(dc)) => {
                let (dc, reg, g) = (dc.clone(), registry.clone(), geo.clone());
                let svc = tokio::task::spawn_blocking(move || crate::detect::service::DetectService::start(dc, reg, g))
                    .await
                    .map_err(|e| AppError::Serve(std::io::Error::other(e)))??;
                svc.sync(ingest, &config);
                tracing::info!("detection started");
                Some(svc)
            }
            _ => None,
        };
        let quality = match (&ingest, &config.maintenance) {
            (Some(ingest), Some(mc)) => Some(crate::maintenance::service::QualityService::start(
                mc.clone(),
                &config.quality_overrides,
                ingest.clone(),
                registry.clone(),
                health.clone(),
            )),
            _ => None,
        };
        let orders = OrderService::new(registry.clone(), geo.clone(), health.clone(), clock.clone(), &config);
        if ingest.is_some() && config.maintenance.is_some() {
            // Rounds run on their own only with live cameras; a test on a simulated clock runs
            // them itself.
            background.push(orders.spawn());
        }
        let state = AppState {
            registry,
            clock,
            ingest,
            config_dir: Arc::new(config_dir.to_path_buf()),
            reload_lock: Arc::new(tokio::sync::Mutex::new(())),
            geo,
            alerts,
            auth_failures: Default::default(),
            detect,
            quality,
            health,
            orders,
        };
        #[cfg(unix)]
        let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| tracing::error!("cannot listen for SIGHUP ({e}); reload with POST /api/v1/admin/reload"))
            .ok();
        Ok(Self {
            state,
            config,
            sync,
            #[cfg(unix)]
            hangup,
            background,
        })
    }

    /// Serves the API on `listener` until `shutdown` completes, then finishes in-flight requests
    /// and stops every pipeline. SIGHUP reloads the configuration.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let state = self.state.clone();
        #[cfg(unix)]
        let hup = tokio::spawn(reload_on_sighup(state.clone(), self.hangup));
        let router = api::router(self.state);
        let alerts = state.alerts.clone();
        let shutdown = async move {
            shutdown.await;
            alerts.close_streams();
        };
        // No Nagle: live streams send small frames that must not wait for the peer's delayed ACK.
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let served = axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(AppError::Serve);
        state.alerts.stop().await;
        for task in &self.background {
            task.abort();
        }
        #[cfg(unix)]
        hup.abort();
        if let Some(q) = &state.quality {
            q.shutdown();
        }
        if let Some(detect) = state.detect.clone() {
            let _ = tokio::task::spawn_blocking(move || detect.shutdown()).await;
        }
        if let Some(ingest) = state.ingest.clone() {
            let _ = tokio::task::spawn_blocking(move || ingest.shutdown()).await;
        }
        state.registry.close().await;
        served
    }
}

/// Re-reads the configuration directory; on any error nothing changes. Only cameras whose
/// ingest settings changed are restarted.
pub async fn reload(state: &AppState) -> Result<ReloadReport, AppError> {
    let _guard = state.reload_lock.lock().await;
    let dir: PathBuf = (*state.config_dir).clone();
    let cfg = tokio::task::spawn_blocking(move || config::load_dir(&dir))
        .await
        .map_err(|e| AppError::Serve(std::io::Error::other(e)))??;
    let sync = state.registry.sync_config(&cfg, state.clock.now_ms()).await?;
    state.orders.reconfigure(&cfg);
    import_map(&state.registry, &cfg, state.clock.now_ms()).await?;
    check_rings(&state.geo, state.clock.now_ms()).await;
    let applied = match state.ingest.clone() {
        Some(ingest) => {
            let specs = specs(&cfg);
            let ing = ingest.clone();
            let r = tokio::task::spawn_blocking(move || ing.apply(specs))
                .await
                .map_err(|e| AppError::Serve(std::io::Error::other(e)))?;
            if let Some(d) = &state.detect {
                d.sync(&ingest, &cfg);
            }
            if let Some(q) = &state.quality {
                q.reconfigure(&cfg.quality_overrides);
            }
            r
        }
        None => ApplyReport::default(),
    };
    let report = ReloadReport {
        cameras_inserted: sync.inserted,
        cameras_updated: sync.updated,
        cameras_decommissioned: sync.decommissioned,
        pipelines_started: applied.started,
        pipelines_stopped: applied.stopped,
        pipelines_restarted: applied.restarted,
        pipelines_unchanged: applied.unchanged,
    };
    tracing::info!(?report, "configuration reloaded");
    Ok(report)
}

#[cfg(unix)]
async fn reload_on_sighup(state: AppState, hup: Option<tokio::signal::unix::Signal>) {
    let Some(mut hup) = hup else { return };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the configuration");
        if let Err(e) = reload(&state).await {
            tracing::error!("reload refused, the running configuration stays: {e}");
        }
    }
}

/// Writes ingest transitions into the registry (the ingest history) and hands gained and lost
/// streams to the health keeper, which decides the camera's status.
async fn write_statuses(
    health: HealthKeeper,
    geo: GeoService,
    clock: Arc<dyn Clock>,
    mut rx: tokio::sync::mpsc::Receiver<StatusEvent>,
) {
    let registry = health.registry().clone();
    while let Some(ev) = rx.recv().await {
        let status_changed = ev.status.is_some();
        if ev.record
            && let Err(e) = registry
                .record_ingest_transition(&ev.camera, ev.from.as_str(), ev.to.as_str(), &ev.reason, ev.at_ms)
                .await
        {
            tracing::error!(camera = %ev.camera, error = %e, "cannot record an ingest transition");
        }
        if let Some(status) = ev.status {
            health.stream(&ev.camera, status == crate::config::CameraStatus::Online, &ev.reason, ev.at_ms).await;
        }
        // A camera's status decides whether the rings it belongs to are open; check once the
        // burst of changes queued so far is written.
        if status_changed && rx.is_empty() {
            check_rings(&geo, clock.now_ms()).await;
        }
    }
}

/// Imports the configuration's map files; rejected rows are logged, unreadable files are errors.
async fn import_map(registry: &Registry, cfg: &CityConfig, now_ms: i64) -> Result<(), AppError> {
    for s in crate::geo::load::import_map(registry, &cfg.map, now_ms).await? {
        tracing::info!(file = %s.file, accepted = s.accepted(), rejected = s.rejected.len(), "map file imported");
        for r in s.rejected.iter().take(20) {
            tracing::warn!(file = %s.file, at = %r.at, "map row rejected: {}", r.reason);
        }
    }
    Ok(())
}

/// The engine's rules with the site's armed zones and time zone.
fn engine_config(cfg: &CityConfig) -> EngineConfig {
    let offset = config::utc_offset_min(&cfg.site.timezone).unwrap_or_else(|| {
        tracing::warn!(timezone = %cfg.site.timezone, "cannot read the time zone's offset; arming schedules use UTC");
        0
    });
    EngineConfig {
        armed_zones: cfg
            .armed_zones
            .iter()
            .map(|z| crate::alerts::engine::ArmedZone {
                camera: z.camera.clone(),
                zone: z.zone.clone(),
                windows: z.windows.clone(),
            })
            .collect(),
        utc_offset_min: offset,
        ..EngineConfig::default()
    }
}

/// The configured webhooks, secrets read from the environment.
fn webhooks(cfg: &CityConfig) -> Vec<crate::alerts::webhooks::Webhook> {
    cfg.webhooks
        .iter()
        .map(|w| {
            let secret = w.secret_env.as_deref().and_then(|v| std::env::var(v).ok()).map(String::into_bytes);
            if w.secret_env.is_some() && secret.is_none() {
                tracing::warn!(webhook = %w.name, "the webhook's secret_env is not set; its payloads go unsigned");
            }
            crate::alerts::webhooks::Webhook { name: w.name.clone(), url: w.url.clone(), secret }
        })
        .collect()
}

/// Records ring open/close events; failures are logged (the next change retries).
pub async fn check_rings(geo: &GeoService, now_ms: i64) {
    match geo.check_rings(now_ms).await {
        Ok(changed) => {
            for r in changed {
                tracing::warn!(ring = %r.id, open = r.open, down = ?r.down, leaks = r.leaks.len(), "checkpoint ring {}", if r.open { "opened" } else { "closed" });
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot check the checkpoint rings"),
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        _ = term => tracing::info!("SIGTERM received, shutting down"),
    }
}
