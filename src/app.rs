//! Composition root: builds every part from the configuration, owns every background task and
//! stops them, in order, with one cancellation signal each (`App::shutdown`). Serving HTTP is
//! the `server` module's (it mounts the API on the state built here).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::alerts::engine::EngineConfig;
use crate::alerts::mqtt::MqttState;
use crate::alerts::service::{AlertService, WriterRole};
use crate::alerts::webhooks::Webhooks;
use crate::city::{self, CityConfig};
use crate::clock::Clock;
use crate::config::ConfigErrors;
use crate::events::{EventLog, SqlLog};
use crate::geo::service::GeoService;
use crate::geo::watch::RingWatcher;
use crate::ingest::{self, ApplyReport, Ingest, IngestError, IngestSpec, StatusEvent};
use crate::maintenance::health::HealthKeeper;
use crate::maintenance::orders::OrderService;
use crate::registry::{Registry, RegistryError, SyncReport};

pub mod gb_media;
pub mod positions;
pub mod unit_feed;
pub mod worker;

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
    #[error("a background task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Gb28181(#[from] crate::gb28181::GbError),
}

#[derive(Debug, Clone)]
pub struct AppOptions {
    /// Run a pipeline for every enabled camera. Off for an API-only node (and API tests).
    pub ingest: bool,
    /// This node's id and its hold on the alert writer's role: on PostgreSQL several serve
    /// nodes may run, one writes alerts and the others stand by. On SQLite the node is always
    /// `embedded` (one process owns the file).
    pub writer: WriterRole,
    /// Run the work-order rounds on the clock (on the alert writer's node). Off for a test on a
    /// simulated clock, which runs them itself.
    pub order_rounds: bool,
    /// Carry the event log over NATS JetStream (a cluster's serve nodes): the registry stays its
    /// outbox, the node that writes alerts relays it, the log's readers read through durable
    /// consumers (`events::jetstream`). `None`: the log is the registry alone.
    pub nats: Option<crate::events::jetstream::JetStreamOptions>,
    /// Live streams (SSE: alerts and units) this node serves at once; more get a 503.
    pub max_streams: usize,
    /// The most changes a live stream replays before going live.
    pub max_replay: i64,
    /// How long a request may take to be answered (`server::layers`).
    pub request_timeout: std::time::Duration,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            ingest: true,
            writer: WriterRole::default(),
            order_rounds: true,
            nats: None,
            max_streams: crate::alerts::streams::DEFAULT_MAX_STREAMS,
            max_replay: crate::alerts::streams::DEFAULT_MAX_REPLAY,
            request_timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// What every request handler (and the demo's scenario) can reach.
#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    /// The event log (kept in the registry).
    pub log: Arc<dyn EventLog>,
    pub clock: Arc<dyn Clock>,
    /// Absent on an API-only node.
    pub ingest: Option<Arc<Ingest>>,
    pub config_dir: Arc<PathBuf>,
    /// One reload at a time.
    pub reload_lock: Arc<tokio::sync::Mutex<()>>,
    /// Coverage, rings, interceptions.
    pub geo: GeoService,
    /// Checks the rings when the geography changes.
    pub rings: RingWatcher,
    /// The alert service (the only writer of alerts) and its live feed.
    pub alerts: AlertService,
    /// Webhook receivers' delivery states.
    pub webhooks: Webhooks,
    /// The MQTT publisher's state, when one is configured.
    pub mqtt: Option<Arc<Mutex<MqttState>>>,
    /// The subscriber of patrol units' positions on the same broker.
    pub unit_positions: Option<Arc<Mutex<positions::PositionsState>>>,
    /// Patrol units as the map shows them, pushed to live streams.
    pub unit_feed: unit_feed::UnitFeed,
    /// Motion and plate reading, when `[detect]` is configured and ingest runs.
    pub detect: Option<crate::detect::service::DetectService>,
    /// Motion from the cameras themselves (ONVIF events), wherever ingest runs.
    pub onvif_motion: Option<crate::detect::onvif_motion::OnvifMotion>,
    /// Video quality diagnosis, when `[maintenance]` is configured and ingest runs.
    pub quality: Option<crate::maintenance::service::QualityService>,
    /// Every camera's health state (ingest, quality, maintenance mode → status).
    pub health: HealthKeeper,
    /// Work orders.
    pub orders: OrderService,
    /// Duty desks: which desks each alert has reached (replaced on reload).
    pub desks: crate::alerts::desks::DeskBook,
    /// Fires when the app stops serving: live streams end so that connections can close.
    pub closing: CancellationToken,
    /// How many live streams may be open, and the end of those whose token goes.
    pub streams: crate::alerts::streams::StreamGate,
    /// What is kept and for how long; the last sweep.
    pub retention: crate::retention::Retention,
    /// How long a request may take to be answered.
    pub request_timeout: std::time::Duration,
    /// The GB/T 28181 SIP server, when `[gb28181]` is configured on a node that runs cameras.
    pub gb28181: Option<Arc<crate::gb28181::GbServer>>,
}

/// A background task the app owns: its name (for the log), its own stop signal, its handle.
struct Task {
    name: &'static str,
    stop: CancellationToken,
    handle: JoinHandle<()>,
}

/// Stops the producers of events, in order: ONVIF motion subscriptions (each unsubscribes),
/// camera pipelines, quality sampling, detection (whose writer stores every passage it was handed).
async fn stop_producers(
    onvif: Option<&crate::detect::onvif_motion::OnvifMotion>,
    ingest: Option<Arc<Ingest>>,
    quality: Option<&crate::maintenance::service::QualityService>,
    detect: Option<&crate::detect::service::DetectService>,
) {
    if let Some(o) = onvif {
        o.shutdown().await;
    }
    if let Some(ingest) = ingest {
        let _ = tokio::task::spawn_blocking(move || ingest.shutdown()).await;
    }
    if let Some(q) = quality {
        q.shutdown();
    }
    if let Some(d) = detect {
        d.shutdown().await;
    }
}

impl Task {
    /// Stops each task in turn (its own signal, then up to 10 s for it to end).
    async fn stop_all(tasks: Vec<Task>) {
        for t in tasks {
            t.stop.cancel();
            match tokio::time::timeout(Duration::from_secs(10), t.handle).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(task = t.name, error = %e, "a background task failed"),
                Err(_) => tracing::error!(task = t.name, "a background task did not stop within 10 s"),
            }
        }
    }

    /// Starts a task with a stop signal of its own (a child of `root`) and adds it to `tasks`.
    fn start(
        tasks: &mut Vec<Task>,
        root: &CancellationToken,
        name: &'static str,
        f: impl FnOnce(CancellationToken) -> JoinHandle<()>,
    ) {
        let stop = root.child_token();
        tasks.push(Task { name, handle: f(stop.clone()), stop });
    }
}

/// A running system's parts.
pub struct App {
    pub state: AppState,
    pub config: CityConfig,
    pub sync: SyncReport,
    /// In the order they stop.
    tasks: Vec<Task>,
    /// Every task's stop signal is a child of this one: cancelling it stops them all at once.
    root: CancellationToken,
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

/// Raises the open-files limit to the hard limit, and warns when even that is short for the
/// health cameras (three descriptors each) and the rest.
pub(crate) fn open_files_for(health_cameras: u64) {
    let (before, after) = ingest::raise_open_files_limit();
    if let (Some(before), Some(after)) = (before, after)
        && after > before
    {
        tracing::info!(before, after, "open-files limit raised to the hard limit");
    }
    if let Some(limit) = after
        && limit < health_cameras * ingest::FILES_PER_HEALTH_CAMERA + 1024
    {
        tracing::warn!(
            limit,
            health_cameras,
            "the open-files limit is low for this many health cameras (3 descriptors each, plus the rest): raise LimitNOFILE"
        );
    }
}

fn specs(cfg: &CityConfig) -> Vec<IngestSpec> {
    let sample_s = cfg.maintenance.as_ref().map_or(10.0, |m| m.vqd_interval_s);
    cfg.cameras.iter().filter(|c| c.enabled).map(|c| IngestSpec::from_config(c, sample_s)).collect()
}

impl App {
    /// Loads and validates the configuration, opens and migrates the registry, syncs the
    /// cameras, starts the alert service and every consumer of the event log, and a pipeline per
    /// enabled camera.
    pub async fn build(
        config_dir: &Path,
        database: &str,
        clock: Arc<dyn Clock>,
        opts: AppOptions,
    ) -> Result<Self, AppError> {
        let config = city::load_dir(config_dir)?;
        let registry = Registry::open(database).await?;
        registry.on_order_change(crate::events::work_order_event);
        let sync = registry.sync_config(&config, clock.now_ms()).await?;
        tracing::info!(site = %config.site.name, cameras = config.cameras.len(), "{}", sync.summary());
        import_map(&registry, &config, clock.now_ms()).await?;
        let jetstream = match &opts.nats {
            Some(o) => Some(
                crate::events::jetstream::JetStreamLog::connect(registry.clone(), o.clone())
                    .await
                    .map_err(AppError::Task)?,
            ),
            None => None,
        };
        let log: Arc<dyn EventLog> = match &jetstream {
            Some(js) => js.clone(),
            None => Arc::new(SqlLog::new(registry.clone())),
        };
        let geo = GeoService::new(registry.clone(), config.site.dori_table);
        let mut tasks = Vec::new();
        let root = CancellationToken::new();

        let alerts_stop = root.child_token();
        let mut writer = opts.writer.clone();
        if registry.backend() == crate::registry::Backend::Sqlite {
            writer.node = WriterRole::default().node;
        }
        let (alerts, alerts_task) = AlertService::start(
            registry.clone(),
            log.clone(),
            clock.clone(),
            engine_config(&config),
            writer,
            alerts_stop.clone(),
        )
        .await?;
        let rings_stop = root.child_token();
        let (rings, rings_task) =
            RingWatcher::spawn(geo.clone(), log.clone(), clock.clone(), alerts.active(), rings_stop.clone());
        let mut relay = None;
        if let Some(js) = jetstream {
            let mut readers: Vec<String> =
                crate::events::Lane::ALL.into_iter().map(crate::alerts::service::consumer).collect();
            readers.push(crate::geo::watch::CONSUMER.to_string());
            let stop = root.child_token();
            let handle = tokio::spawn(js.relay(readers, alerts.active(), stop.clone()));
            relay = Some(Task { name: "jetstream relay", stop, handle });
        }
        let health = HealthKeeper::start(registry.clone()).await?;
        Task::start(&mut tasks, &root, "health retry", |stop| {
            tokio::spawn(retry_statuses(health.clone(), clock.clone(), stop))
        });
        let webhooks_stop = root.child_token();
        let (webhooks, webhook_tasks) = crate::alerts::webhooks::spawn(
            registry.clone(),
            alerts.feed(),
            clock.clone(),
            webhooks(&config),
            alerts.active(),
            webhooks_stop.clone(),
        );
        let mut mqtt = None;
        let mqtt_stop = root.child_token();
        let mut mqtt_task = None;
        let (mut unit_positions, mut positions_task) = (None, None);
        // The map's live feed of patrol units (`GET /api/v1/units/stream`): reads only while
        // anyone listens.
        let unit_feed = unit_feed::UnitFeed::new(crate::registry::STALE_AFTER_MS);
        {
            let (feed, registry, clock) = (unit_feed.clone(), registry.clone(), clock.clone());
            Task::start(&mut tasks, &root, "units live feed", |stop| tokio::spawn(feed.follow(registry, clock, stop)));
        }
        if let Some(m) = &config.mqtt {
            let target = crate::alerts::mqtt::MqttTarget {
                host: m.host.clone(),
                port: m.port,
                topic_prefix: m.topic_prefix.clone(),
                client_id: m.client_id.clone(),
            };
            let (state, handle) = crate::alerts::mqtt::spawn(
                registry.clone(),
                alerts.feed(),
                target.clone(),
                alerts.active(),
                mqtt_stop.clone(),
            );
            mqtt = Some(state);
            mqtt_task = Some(handle);
            // Patrol units' positions from the same broker (trackers publish them).
            let (state, handle) = positions::spawn(
                registry.clone(),
                target,
                clock.clone(),
                config.retention.tracks_days,
                alerts.active(),
                unit_feed.clone(),
                mqtt_stop.clone(),
            );
            unit_positions = Some(state);
            positions_task = Some(handle);
        }
        // GB/T 28181: on the node that runs cameras, when `[gb28181]` is configured. Device and
        // channel presence goes to the health keeper (the one place statuses are decided), alarms
        // to the alert service through the event log, like any alarm; `gb28181://` cameras ask
        // for their live video through it (started before ingest for that).
        let gb28181 = match (opts.ingest, &config.gb28181) {
            (true, Some(gc)) => {
                let (tx, rx) = tokio::sync::mpsc::channel(1024);
                let zone = crate::clock::SiteZone::parse(&config.site.timezone)
                    .unwrap_or_else(|_| crate::clock::SiteZone::utc());
                let stop = root.child_token();
                let server = crate::gb28181::GbServer::start(
                    gc.clone(),
                    crate::gb28181::GbStart {
                        registry: registry.clone(),
                        clock: clock.clone(),
                        zone,
                        grid_cells: config.grid.iter().map(|c| c.id.clone()).collect(),
                        stop: stop.clone(),
                        updates: tx,
                    },
                )
                .await?;
                let (h, a, g, c) = (health.clone(), alerts.clone(), geo.clone(), clock.clone());
                let handle = tokio::spawn(gb28181_updates(h, a, g, c, rx, stop.clone()));
                tasks.push(Task { name: "gb28181", stop, handle });
                Some(Arc::new(server))
            }
            _ => None,
        };
        let ingest = if opts.ingest {
            ingest::init_gstreamer()?;
            let (tx, rx) = tokio::sync::mpsc::channel(4096);
            Task::start(&mut tasks, &root, "ingest statuses", |stop| {
                tokio::spawn(write_statuses(health.clone(), rx, stop))
            });
            let media = gb28181.clone().map(|server| -> Arc<dyn crate::ingest::gb::GbMedia> {
                Arc::new(gb_media::Bridge::new(server, tokio::runtime::Handle::current()))
            });
            let ingest = Arc::new(Ingest::with_gb28181(clock.clone(), Some(tx), media));
            let specs = specs(&config);
            open_files_for(specs.iter().filter(|s| s.profile == crate::config::Profile::Health).count() as u64);
            let ing = ingest.clone();
            let report = tokio::task::spawn_blocking(move || ing.apply(specs))
                .await
                .map_err(|e| AppError::Task(format!("starting ingest: {e}")))?;
            tracing::info!(pipelines = report.started.len(), "ingest started");
            Some(ingest)
        } else {
            None
        };
        let detect = match (&ingest, &config.detect) {
            (Some(ingest), Some(dc)) => {
                let svc = crate::detect::service::DetectService::start(
                    dc.clone(),
                    registry.clone(),
                    log.clone(),
                    clock.clone(),
                )?;
                svc.sync(ingest, &config.cameras, &config.motion_zones);
                tracing::info!("detection started");
                Some(svc)
            }
            _ => None,
        };
        // Motion from the devices that give it (ONVIF events): no detector needed, only the camera.
        let onvif_motion = ingest.as_ref().map(|_| {
            let m = crate::detect::onvif_motion::OnvifMotion::new(log.clone(), clock.clone(), Default::default());
            m.sync(&config.cameras);
            m
        });
        let quality = match (&ingest, &config.maintenance) {
            (Some(ingest), Some(mc)) => Some(crate::maintenance::service::QualityService::start(
                mc.clone(),
                &config.quality_overrides,
                ingest.clone(),
                log.clone(),
                health.clone(),
                clock.clone(),
            )),
            _ => None,
        };
        // A serve node of a cluster runs no cameras: the problems its workers report are what its
        // rounds open orders from (a camera no worker runs is shown offline, and opens no order).
        let orders = OrderService::new(
            registry.clone(),
            geo.clone(),
            health.clone(),
            clock.clone(),
            config.maintenance.as_ref(),
            &config.crews,
        )
        .with_reported(ingest.is_none());
        if ingest.is_none() {
            // A serve node of a cluster: cameras no worker runs any more are shown offline.
            let (h, r, c, active) = (health.clone(), registry.clone(), clock.clone(), alerts.active());
            Task::start(&mut tasks, &root, "unheld cameras", |stop| {
                tokio::spawn(unheld_cameras(h, r, c, active, stop))
            });
        }
        if opts.order_rounds && config.maintenance.is_some() {
            // On the node that writes alerts (every node of one process is): one round at a time
            // in a city, whichever serve node holds the role.
            let active = alerts.active();
            Task::start(&mut tasks, &root, "work orders", |stop| orders.spawn(stop, active));
        }
        // The consumers stop after the producers above them (ingest, detection, quality have
        // their own shutdown): the alert service last but the feed's readers, so that what the
        // others stored is applied while they stop.
        tasks.push(Task { name: "ring watcher", stop: rings_stop, handle: rings_task });
        tasks.push(Task { name: "alert service", stop: alerts_stop, handle: alerts_task });
        // The relay after the alert service: what was stored while stopping still reaches the stream.
        tasks.extend(relay);
        for h in webhook_tasks {
            tasks.push(Task { name: "webhook", stop: webhooks_stop.clone(), handle: h });
        }
        if let Some(h) = mqtt_task {
            tasks.push(Task { name: "mqtt", stop: mqtt_stop.clone(), handle: h });
        }
        if let Some(h) = positions_task {
            tasks.push(Task { name: "mqtt positions", stop: mqtt_stop, handle: h });
        }
        // Retention: the tables on the node that writes alerts, bounded by every consumer this
        // node knows; the pictures where detection keeps them.
        let mut readers: Vec<String> =
            crate::events::Lane::ALL.into_iter().map(crate::alerts::service::consumer).collect();
        readers.push(crate::geo::watch::CONSUMER.to_string());
        if opts.nats.is_some() {
            readers.push(crate::events::jetstream::RELAY.to_string());
        }
        let feed_readers = webhooks
            .states()
            .into_iter()
            .map(|w| format!("webhook:{}", w.name))
            .chain(mqtt.as_ref().map(|_| "mqtt".to_string()))
            .collect();
        let retention = crate::retention::Retention::new(
            registry.clone(),
            config.retention.clone(),
            Some(crate::retention::Consumers { events: readers, feed: feed_readers }),
            detect.as_ref().map(|d| d.media_dir().to_path_buf()),
            clock.clone(),
        )
        .when_active(alerts.active());
        let r = retention.clone();
        Task::start(&mut tasks, &root, "retention", |stop| r.spawn(stop));
        let closing = root.child_token();
        let registry_for_streams = registry.clone();
        let state = AppState {
            registry,
            log,
            clock,
            ingest,
            config_dir: Arc::new(config_dir.to_path_buf()),
            reload_lock: Arc::new(tokio::sync::Mutex::new(())),
            geo,
            rings,
            alerts,
            webhooks,
            mqtt,
            unit_positions,
            unit_feed,
            detect,
            onvif_motion,
            quality,
            health,
            orders,
            desks: crate::alerts::desks::DeskBook::new(&config.desks),
            closing: closing.clone(),
            streams: crate::alerts::streams::StreamGate::new(
                registry_for_streams,
                opts.max_streams,
                opts.max_replay,
                closing,
            ),
            retention,
            request_timeout: opts.request_timeout,
            gb28181,
        };
        #[cfg(unix)]
        {
            // SIGHUP is caught from the moment the app is built (before it says it is serving),
            // so a reload signal can never kill a starting server.
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(hup) => {
                    let stop = root.child_token();
                    let handle = tokio::spawn(reload_on_sighup(state.clone(), hup, stop.clone()));
                    tasks.insert(0, Task { name: "sighup", stop, handle });
                }
                Err(e) => tracing::error!("cannot listen for SIGHUP ({e}); reload with POST /api/v1/admin/reload"),
            }
        }
        Ok(Self { state, config, sync, tasks, root })
    }

    /// Stops everything, producers first: ONVIF motion subscriptions, camera pipelines, quality sampling, detection (whose
    /// writer stores every passage it was handed), then each background task in turn, then
    /// closes the database.
    pub async fn shutdown(self) {
        let state = self.state;
        state.closing.cancel();
        stop_producers(
            state.onvif_motion.as_ref(),
            state.ingest.clone(),
            state.quality.as_ref(),
            state.detect.as_ref(),
        )
        .await;
        Task::stop_all(self.tasks).await;
        self.root.cancel();
        state.registry.close().await;
    }
}

/// Re-reads the configuration directory; on any error nothing changes. Only cameras whose
/// ingest settings changed are restarted.
pub async fn reload(state: &AppState) -> Result<ReloadReport, AppError> {
    let _guard = state.reload_lock.lock().await;
    let dir: PathBuf = (*state.config_dir).clone();
    let cfg = tokio::task::spawn_blocking(move || city::load_dir(&dir))
        .await
        .map_err(|e| AppError::Task(format!("reading the configuration: {e}")))??;
    let sync = state.registry.sync_config(&cfg, state.clock.now_ms()).await?;
    state.orders.reconfigure(cfg.maintenance.as_ref(), &cfg.crews);
    state.desks.reconfigure(&cfg.desks);
    import_map(&state.registry, &cfg, state.clock.now_ms()).await?;
    state.rings.poke();
    let applied = match state.ingest.clone() {
        Some(ingest) => {
            let specs = specs(&cfg);
            let ing = ingest.clone();
            let r = tokio::task::spawn_blocking(move || ing.apply(specs))
                .await
                .map_err(|e| AppError::Task(format!("applying ingest changes: {e}")))?;
            if let Some(d) = &state.detect {
                d.sync(&ingest, &cfg.cameras, &cfg.motion_zones);
            }
            if let Some(o) = &state.onvif_motion {
                o.sync(&cfg.cameras);
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
async fn reload_on_sighup(state: AppState, mut hup: tokio::signal::unix::Signal, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            got = hup.recv() => if got.is_none() { return },
        }
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
    mut rx: tokio::sync::mpsc::Receiver<StatusEvent>,
    stop: CancellationToken,
) {
    let registry = health.registry().clone();
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => return,
            ev = rx.recv() => match ev { Some(ev) => ev, None => return },
        };
        if ev.record
            && let Err(e) = registry
                .record_ingest_transition(&ev.camera, ev.from.as_str(), ev.to.as_str(), &ev.reason, ev.at_ms)
                .await
        {
            if e.is_fenced() {
                // A worker's camera that moved on: its new holder records its history.
                tracing::debug!(camera = %ev.camera, "ingest transition not recorded: the camera is no longer held here");
            } else {
                tracing::error!(camera = %ev.camera, error = %e, "cannot record an ingest transition");
            }
        }
        if let Some(status) = ev.status {
            health.stream(&ev.camera, status == crate::config::CameraStatus::Online, &ev.reason, ev.at_ms).await;
        }
    }
}

/// Hands what the GB/T 28181 server learns to the parts that act on it: channel presence to the
/// health keeper, alarms to the alert service (linked to the cameras that see the place, when
/// the alarm or its channel has a position).
async fn gb28181_updates(
    health: HealthKeeper,
    alerts: AlertService,
    geo: GeoService,
    clock: Arc<dyn Clock>,
    mut rx: tokio::sync::mpsc::Receiver<crate::gb28181::GbUpdate>,
    stop: CancellationToken,
) {
    use crate::gb28181::GbUpdate;
    loop {
        let update = tokio::select! {
            _ = stop.cancelled() => return,
            u = rx.recv() => match u { Some(u) => u, None => return },
        };
        match update {
            GbUpdate::Status(cams) => {
                let at = clock.now_ms();
                for (camera, online, reason) in cams {
                    health.stream(&camera, online, &reason, at).await;
                }
            }
            GbUpdate::Alarm { device, notice, at } => {
                let position = match notice.position {
                    Some(p) => Some(p),
                    None => match health.registry().get_camera(&notice.device_id).await {
                        Ok(Some(c)) if c.lon != 0.0 || c.lat != 0.0 => Some((c.lon, c.lat)),
                        _ => None,
                    },
                };
                let name = if notice.description.is_empty() {
                    format!("GB/T 28181 alarm of {} (device {device}, priority {})", notice.device_id, notice.priority)
                } else {
                    format!("{} ({}, device {device})", notice.description, notice.device_id)
                };
                let input = crate::alerts::alarm::AlarmInput {
                    alarm_id: Some(format!("gb28181:{}", notice.device_id)),
                    name: Some(name),
                    lon: position.map(|p| p.0),
                    lat: position.map(|p| p.1),
                    at_ms: Some(at),
                };
                let key = (notice.sn > 0).then(|| format!("gb28181:{device}:{}", notice.sn));
                if let Err(e) = crate::alerts::alarm::raise(
                    &alerts,
                    &geo,
                    clock.as_ref(),
                    &input,
                    key.as_deref(),
                    Duration::from_secs(5),
                )
                .await
                {
                    tracing::error!(device = %device, error = %e, "GB/T 28181 alarm not stored");
                }
            }
        }
    }
}

/// How long a camera may go without a live worker before a serve node shows it offline: a dead
/// worker's cameras are claimed by the others within a heartbeat period of its lease lapsing.
pub const UNHELD_GRACE_MS: i64 = 15_000;

/// On the node that writes alerts, every 5 s: cameras that should stream and that no live worker
/// has held for `UNHELD_GRACE_MS` go offline (with their event, so the monitoring room hears of a
/// city whose workers are gone).
async fn unheld_cameras(
    health: HealthKeeper,
    registry: Registry,
    clock: Arc<dyn Clock>,
    mut active: crate::events::Active,
    stop: CancellationToken,
) {
    loop {
        if !crate::events::until_active(&mut active, &stop).await {
            return;
        }
        let now = clock.now_ms();
        match registry.unheld_streaming(now, UNHELD_GRACE_MS).await {
            Ok(cams) => {
                if !cams.is_empty() {
                    tracing::warn!(cameras = cams.len(), "cameras no live worker runs: shown offline");
                }
                for c in cams {
                    health.unheld(&c, "no live worker runs this camera", now).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot look for cameras no worker runs"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// Every second, the status changes the health keeper could not write are tried again.
async fn retry_statuses(health: HealthKeeper, clock: Arc<dyn Clock>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => health.retry(clock.now_ms()).await,
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
    // The loader checked the zone; a database gone since then is the only way here.
    let zone = crate::clock::SiteZone::parse(&cfg.site.timezone).unwrap_or_else(|e| {
        tracing::warn!(timezone = %cfg.site.timezone, "arming schedules use UTC: {e}");
        crate::clock::SiteZone::utc()
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
        zone,
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

/// Completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled: call it before saying the server is up, so that a SIGTERM
/// that follows at once (a supervisor, a test) stops the server instead of killing it.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        async move {
            let wait = |s: std::io::Result<tokio::signal::unix::Signal>, name: &'static str| async move {
                match s {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot listen for {name}");
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                _ = wait(int, "SIGINT") => tracing::info!("SIGINT received, shutting down"),
                _ = wait(term, "SIGTERM") => tracing::info!("SIGTERM received, shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("Ctrl-C received, shutting down");
    }
}
