//! The `tianwang` command line. Everything else lives in the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tianwang::app::{App, AppError, AppOptions, shutdown_signal};
use tianwang::clock::SystemClock;
use tianwang::config::{self, mask_credentials};
use tianwang::registry::Registry;

#[derive(Parser)]
#[command(
    name = "tianwang",
    version,
    about = "City surveillance camera network: ingest, detection, registry, alerts, planning"
)]
struct Cli {
    /// Log one JSON object per line instead of readable text.
    #[arg(long, global = true, env = "TIANWANG_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the API for a camera configuration directory.
    Serve {
        /// Camera configuration directory (site.toml + camera files).
        #[arg(long, env = "TIANWANG_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        db: DbArg,
        /// Address to listen on.
        #[arg(long, env = "TIANWANG_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Serve the registry and API only; run no camera pipelines.
        #[arg(long)]
        no_ingest: bool,
    },
    /// Check a configuration directory; prints every error as file:line: field: problem.
    CheckConfig {
        /// Camera configuration directory.
        dir: PathBuf,
    },
    /// Apply pending database migrations and list them.
    Migrate {
        #[command(flatten)]
        db: DbArg,
    },
    /// Serve synthetic cameras over RTSP until stopped (for tests, benchmarks, trials).
    Sim {
        /// Port on 127.0.0.1 (0: a free one; the URL is printed).
        #[arg(long, default_value_t = 8554)]
        port: u16,
        /// A stream as PATH:WIDTHxHEIGHT@FPS[:h265][:kf=N][:pattern=P][:kbps=N] or PATH:file=CLIP.mp4; repeat for more.
        #[arg(long = "stream", required = true)]
        streams: Vec<String>,
    },
    /// Write synthetic plate pictures with ground truth (labels.csv): half clean, half hard
    /// (perspective, rotation, blur, noise, low light, glare), plus plate-free frames.
    SimPlates {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Pictures with a plate.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Pictures without a plate (false-read counting).
        #[arg(long, default_value_t = 200)]
        plate_free: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Picture size WIDTHxHEIGHT.
        #[arg(long, default_value = "1280x720")]
        size: String,
    },
    /// Evaluate a detector on a labelled set.
    Eval {
        #[command(subcommand)]
        cmd: EvalCmd,
    },
    /// Run the demo city (camera-configs/demo) on the embedded database.
    Demo {
        /// Address to listen on.
        #[arg(long, env = "TIANWANG_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Database for the demo.
        #[arg(long, env = "TIANWANG_DEMO_DB", default_value = "sqlite://data/demo.db")]
        db: String,
        /// The demo city's configuration.
        #[arg(long, default_value = "camera-configs/demo")]
        config: PathBuf,
        /// Port of the simulated cameras' RTSP server (the demo configs point at 8554).
        #[arg(long, default_value_t = 8554)]
        sim_port: u16,
    },
    /// Import map data into the registry: roads, grid cells, entrances, cameras without a stream.
    /// Each file is stored whole (one transaction); rejected rows are listed with the reason.
    Import {
        /// What the files hold.
        #[arg(value_enum)]
        kind: tianwang::geo::load::ImportKind,
        /// Files to import, one after the other.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Refuse a whole file when any of its rows is rejected.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Generate square grid cells over the stored roads and cameras (when no grid is given).
    GenerateGrid {
        /// Side of a base (level-3) cell in metres; level 2 is 4× and level 1 16× as wide.
        #[arg(long, default_value_t = 250.0)]
        square_m: f64,
        #[command(flatten)]
        db: DbArg,
    },
    /// API tokens: create (printed once), list, revoke.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Coverage for planners.
    Coverage {
        #[command(subcommand)]
        cmd: CoverageCmd,
    },
    /// Maintenance crews' views of the registry.
    Maintenance {
        #[command(subcommand)]
        cmd: MaintenanceCmd,
    },
}

#[derive(Subcommand)]
enum MaintenanceCmd {
    /// Cameras by status, active work orders (overdue first), uptime over the window per ring,
    /// owner and grid cell, the worst cameras, repeat offenders, below-HD cameras to replace.
    Report {
        /// Window length in days, ending now.
        #[arg(long, default_value_t = 30.0)]
        days: f64,
        /// DORI level for the replacement candidates' coverage.
        #[arg(long, default_value = "observe")]
        level: String,
        /// Outages or work orders in the window that make a repeat offender.
        #[arg(long, default_value_t = 3)]
        min_failures: u32,
        /// Print JSON (as GET /api/v1/maintenance/report) instead of text.
        #[arg(long)]
        json: bool,
        /// Configuration directory whose site.toml names the DORI table.
        #[arg(long, env = "TIANWANG_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand)]
enum EvalCmd {
    /// Plate reading on a directory written by `tianwang sim-plates` (or any with the same
    /// labels.csv): exact-plate and per-character accuracy per split, false reads per 1,000
    /// plate-free pictures, throughput on one core.
    Plates {
        dir: PathBuf,
        /// Only the first N pictures.
        #[arg(long)]
        limit: Option<usize>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Width the plate detector sees first (as `[detect] plate_det_width`).
        #[arg(long, default_value_t = 960)]
        det_width: u32,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Create a token and print it (it is stored hashed and never shown again).
    Create {
        #[arg(long, value_enum)]
        role: tianwang::api::auth::Role,
        /// A unique name (who or what uses it); shown in audit trails.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// List tokens (names, roles, revoked or not; never the tokens).
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Revoke a token by name.
    Revoke {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand)]
enum CoverageCmd {
    /// Write the coverage report (summary.json, roads.csv, cells.csv, gaps.geojson,
    /// entrances.csv, rings.json) for a DORI level.
    Report {
        /// DORI level: monitor, detect, observe, recognise, identify, inspect.
        #[arg(long, default_value = "observe")]
        level: String,
        /// Count `all` cameras in service (planned) or only `online` ones.
        #[arg(long, default_value = "online")]
        states: String,
        /// Folder to write into.
        #[arg(long, default_value = "coverage-report")]
        out: PathBuf,
        /// DORI table: iec62676-4:2014 or iec62676-4:2025 (default: the site's, with --config).
        #[arg(long)]
        dori_table: Option<String>,
        /// Configuration directory whose site.toml names the DORI table.
        #[arg(long, env = "TIANWANG_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(clap::Args)]
struct DbArg {
    /// Database: a SQLite file path or sqlite:// URL (default), or a postgres:// URL.
    #[arg(long = "db", env = "TIANWANG_DB", default_value = "sqlite://data/tianwang.db")]
    url: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tianwang::logging::init(cli.log_json);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.cmd)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, leaving out a cause whose text the previous message already shows.
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if !out.contains(&msg) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&msg);
        }
    }
    out
}

async fn run(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::CheckConfig { dir } => Ok(check_config(&dir)),
        Cmd::Import { kind, files, strict, db } => import(kind, &files, strict, &db.url).await,
        Cmd::GenerateGrid { square_m, db } => {
            if !(10.0..=100_000.0).contains(&square_m) {
                anyhow::bail!("--square-m {square_m}: between 10 and 100000 metres");
            }
            let reg = Registry::open(&db.url).await?;
            let s = tianwang::geo::load::generate_grid(&reg, square_m, now_ms()).await?;
            println!("{}: {} cells", s.file, s.cells);
            for r in &s.rejected {
                println!("  rejected {}: {}", r.at, r.reason);
            }
            reg.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Coverage { cmd: CoverageCmd::Report { level, states, out, dori_table, config, db } } => {
            coverage_report(&level, &states, &out, dori_table.as_deref(), config.as_deref(), &db.url).await
        }
        Cmd::Token { cmd } => token(cmd).await,
        Cmd::Maintenance { cmd: MaintenanceCmd::Report { days, level, min_failures, json, config, db } } => {
            maintenance_report(days, &level, min_failures, json, config.as_deref(), &db.url).await
        }
        Cmd::Migrate { db } => {
            let reg = Registry::open(&db.url).await?;
            for (version, desc, applied) in reg.migration_status().await? {
                println!("{version:04} {desc}: {}", if applied { "applied" } else { "pending" });
            }
            reg.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::SimPlates { out, count, plate_free, seed, size } => {
            let (w, h) = size
                .split_once('x')
                .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
                .filter(|(w, h)| *w >= 320 && *h >= 180)
                .ok_or_else(|| anyhow::anyhow!("--size {size:?}: expected WIDTHxHEIGHT, at least 320x180"))?;
            let s = tianwang::sim::plates::write_dataset(&out, count, seed, w, h, plate_free)
                .map_err(|e| anyhow::anyhow!(e))?;
            println!(
                "wrote {} clean, {} hard and {} plate-free pictures; labels in {}",
                s.clean,
                s.hard,
                s.plate_free,
                s.labels.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Eval { cmd: EvalCmd::Plates { dir, limit, json, det_width } } => {
            tianwang::detect::onnx::init(None)?;
            // One core: the figure is plates per second per core.
            let params = tianwang::detect::plates::PlateParams { det_width, ..Default::default() };
            let mut reader = tianwang::detect::plates::PlateReader::new(params, 1)?;
            let rep = tianwang::detect::eval::eval_plates(&dir, std::slice::from_mut(&mut reader), limit)
                .map_err(|e| anyhow::anyhow!(e))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rep)?);
            } else {
                print!("{}", rep.text());
                for (f, t, r) in rep.misreads.iter().take(10) {
                    println!("  misread {f}: {t} -> {}", if r.is_empty() { "(nothing)" } else { r });
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Sim { port, streams } => {
            let cams = streams.iter().map(|s| parse_stream(s)).collect::<Result<Vec<_>, _>>()?;
            let server = tianwang::sim::SimServer::start_on(port)?;
            for c in cams {
                println!("{}", server.add(c));
            }
            println!("sim: rtsp://127.0.0.1:{}/", server.port());
            shutdown_signal().await;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Serve { config, db, listen, no_ingest } => {
            serve(&config, &db.url, listen, AppOptions { ingest: !no_ingest }).await
        }
        Cmd::Demo { listen, db, config, sim_port } => demo(listen, &db, &config, sim_port).await,
    }
}

/// The demo city: simulated cameras, the app on them, and the scenario that keeps the monitoring
/// room busy (`tianwang::sim::demo`).
async fn demo(listen: SocketAddr, db: &str, config: &std::path::Path, sim_port: u16) -> anyhow::Result<ExitCode> {
    use tianwang::sim::demo::{DemoCity, config_for_port};
    let city =
        DemoCity::start(sim_port).with_context(|| format!("starting the simulated cameras on 127.0.0.1:{sim_port}"))?;
    // The demo configuration points at 8554: on another port, serve a copy that points there.
    let copy = (city.port() != 8554)
        .then(|| std::env::temp_dir().join(format!("tianwang-demo-config-{}", std::process::id())));
    let config = match &copy {
        Some(dir) => config_for_port(config, dir, city.port())
            .with_context(|| format!("copying {} to {}", config.display(), dir.display()))?,
        None => config.to_path_buf(),
    };
    let code = demo_on(city, listen, db, &config).await;
    if let Some(dir) = copy {
        let _ = std::fs::remove_dir_all(dir);
    }
    code
}

async fn demo_on(
    mut city: tianwang::sim::demo::DemoCity,
    listen: SocketAddr,
    db: &str,
    config: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let cfg = match config::load_dir(config) {
        Ok(c) => c,
        Err(errs) => {
            eprintln!("{errs}");
            return Ok(ExitCode::FAILURE);
        }
    };
    city.mount(&cfg);
    tracing::info!(
        "demo city: {} simulated cameras on rtsp://127.0.0.1:{}/, database {}",
        city.cameras(),
        city.port(),
        mask_credentials(db)
    );
    let app = match App::build(config, db, Arc::new(SystemClock), AppOptions::default()).await {
        Ok(app) => app,
        Err(AppError::Config(errs)) => {
            eprintln!("{errs}");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    // A fresh admin token for the demo's user, printed with the address (and nowhere else).
    let token = app.state.registry.create_token("demo-admin", "admin", true, now_ms()).await?;
    println!("demo: open http://{addr}/ — API token (admin): {token}");
    println!("demo: curl -H 'Authorization: Bearer {token}' http://{addr}/api/v1/alerts");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let city = Arc::new(city);
    let scenario = tokio::spawn(tianwang::sim::demo::run_scenario(city.clone(), app.state.clone(), stop_rx));
    let served = tianwang::server::serve(app, listener, shutdown_signal()).await;
    let _ = stop_tx.send(true);
    let _ = scenario.await;
    // The simulated cameras go last, after every pipeline reading them has stopped.
    drop(city);
    served?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// `PATH:WIDTHxHEIGHT@FPS[:h265][:kf=N][:pattern=P]`
fn parse_stream(s: &str) -> anyhow::Result<tianwang::sim::SimCamera> {
    let mut parts = s.split(':');
    let path = parts.next().filter(|p| !p.is_empty()).context("stream: missing path")?;
    if let Some(file) = s.strip_prefix(&format!("{path}:file=")) {
        let mut cam = tianwang::sim::SimCamera::new(path, 0, 0, 0);
        cam.file = Some(file.into());
        return Ok(cam);
    }
    let geom = parts.next().with_context(|| format!("stream {s:?}: expected PATH:WIDTHxHEIGHT@FPS"))?;
    let (size, fps) = geom.split_once('@').with_context(|| format!("stream {s:?}: expected WIDTHxHEIGHT@FPS"))?;
    let (w, h) = size.split_once('x').with_context(|| format!("stream {s:?}: expected WIDTHxHEIGHT"))?;
    let mut cam = tianwang::sim::SimCamera::new(path, w.parse()?, h.parse()?, fps.parse()?);
    for opt in parts {
        match opt.split_once('=') {
            None if opt == "h265" => cam.codec = tianwang::sim::SimCodec::H265,
            Some(("kf", n)) => cam.keyframe_interval = n.parse()?,
            Some(("pattern", p)) => cam.pattern = p.to_string(),
            Some(("kbps", n)) => cam.bitrate_kbps = n.parse()?,
            _ => anyhow::bail!("stream {s:?}: unknown option {opt:?} (h265, kf=N, pattern=P, kbps=N)"),
        }
    }
    Ok(cam)
}

fn check_config(dir: &std::path::Path) -> ExitCode {
    match config::load_dir(dir) {
        Ok(cfg) => {
            println!(
                "{}: ok: site {:?}, {} grid cells, {} cameras ({} enabled)",
                dir.display(),
                cfg.site.name,
                cfg.grid.len(),
                cfg.cameras.len(),
                cfg.cameras.iter().filter(|c| c.enabled).count()
            );
            ExitCode::SUCCESS
        }
        Err(errs) => {
            for e in &errs.0 {
                println!("{e}");
            }
            eprintln!("{}: {} error(s)", dir.display(), errs.0.len());
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: &std::path::Path, db: &str, listen: SocketAddr, opts: AppOptions) -> anyhow::Result<ExitCode> {
    let app = match App::build(config, db, Arc::new(SystemClock), opts).await {
        Ok(app) => app,
        Err(AppError::Config(errs)) => {
            for e in &errs.0 {
                eprintln!("{e}");
            }
            eprintln!("{}: {} configuration error(s); nothing started", config.display(), errs.0.len());
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    tracing::info!("serving {} cameras on http://{addr}/api/v1/cameras", app.config.cameras.len());
    tianwang::server::serve(app, listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

fn now_ms() -> i64 {
    tianwang::clock::Clock::now_ms(&SystemClock)
}

async fn import(
    kind: tianwang::geo::load::ImportKind,
    files: &[PathBuf],
    strict: bool,
    db: &str,
) -> anyhow::Result<ExitCode> {
    let reg = Registry::open(db).await?;
    let mut failed = false;
    for f in files {
        let mut last = 0u64;
        let mut progress = |p: tianwang::geo::input::Progress| {
            let pct = (p.bytes_done * 100).checked_div(p.bytes_total).unwrap_or(100);
            if pct >= last + 10 || p.bytes_done == p.bytes_total {
                eprintln!("{}: {pct}% read, {} elements", f.display(), p.items);
                last = pct;
            }
        };
        match tianwang::geo::load::import_file(&reg, kind, f, strict, now_ms(), &mut progress).await {
            Ok(s) => {
                println!(
                    "{}: accepted {} (roads {}, cells {}, entrances {}, cameras {}), rejected {}",
                    s.file,
                    s.accepted(),
                    s.roads,
                    s.cells,
                    s.entrances,
                    s.cameras,
                    s.rejected.len()
                );
                for r in &s.rejected {
                    println!("  rejected {}: {}", r.at, r.reason);
                }
            }
            Err(tianwang::geo::load::LoadError::Strict { file, rejected }) => {
                failed = true;
                eprintln!("error: {file}: {} rows rejected and --strict given; nothing stored", rejected.len());
                for r in &rejected {
                    eprintln!("  rejected {}: {}", r.at, r.reason);
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {e}");
            }
        }
    }
    reg.close().await;
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

async fn coverage_report(
    level: &str,
    states: &str,
    out: &std::path::Path,
    dori_table: Option<&str>,
    config_dir: Option<&std::path::Path>,
    db: &str,
) -> anyhow::Result<ExitCode> {
    use tianwang::geo::coverage::{CoverageQuery, StateFilter};
    let level: tianwang::geo::DoriLevel = level.parse().map_err(|e: String| anyhow::anyhow!("--level: {e}"))?;
    let states: StateFilter = states.parse().map_err(|e: String| anyhow::anyhow!("--states: {e}"))?;
    let table: config::DoriTable = match (dori_table, config_dir) {
        (Some(t), _) => t.parse().map_err(|e: String| anyhow::anyhow!("--dori-table: {e}"))?,
        (None, Some(dir)) => config::load_dir(dir).map_err(|e| anyhow::anyhow!("{e}"))?.site.dori_table,
        (None, None) => config::DoriTable::Iec2014,
    };
    if level.ppm(table).is_none() {
        anyhow::bail!("--level {level} is not defined in the {table} table");
    }
    let reg = Registry::open(db).await?;
    let inputs = reg.geo_inputs(table).await?;
    reg.close().await;
    let started = std::time::Instant::now();
    let report = tokio::task::spawn_blocking(move || {
        let m = tianwang::geo::GeoModel::build(inputs);
        tianwang::geo::report::compute(&m, CoverageQuery { level, states })
    })
    .await?;
    let files = tianwang::geo::report::write(&report, out).with_context(|| format!("writing {}", out.display()))?;
    let o = &report.coverage.overall;
    println!(
        "coverage at {level} ({} cameras): {:.0} m of {:.0} m road covered ({:.1} %), {:.0} m uncovered; {} cells, {} of {} entrances compliant; {} rings, {} open ({:.1} s)",
        if states == StateFilter::Online { "online" } else { "all" },
        o.covered_m,
        o.total_m,
        o.covered_pct.unwrap_or(0.0),
        o.uncovered_m,
        report.coverage.cells.len(),
        report.entrances.iter().filter(|e| e.compliant).count(),
        report.entrances.len(),
        report.rings.len(),
        report.rings.iter().filter(|r| r.open).count(),
        started.elapsed().as_secs_f64()
    );
    for f in files {
        println!("wrote {}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}

async fn maintenance_report(
    days: f64,
    level: &str,
    min_failures: u32,
    json: bool,
    config_dir: Option<&std::path::Path>,
    db: &str,
) -> anyhow::Result<ExitCode> {
    let level: tianwang::geo::DoriLevel = level.parse().map_err(|e: String| anyhow::anyhow!("--level: {e}"))?;
    if !(days > 0.0 && days <= 3660.0) {
        anyhow::bail!("--days {days}: a window of (0, 3660] days");
    }
    let table = match config_dir {
        Some(dir) => config::load_dir(dir).map_err(|e| anyhow::anyhow!("{e}"))?.site.dori_table,
        None => config::DoriTable::Iec2014,
    };
    let reg = Registry::open(db).await?;
    let geo = tianwang::geo::service::GeoService::new(reg.clone(), table);
    let now = now_ms();
    let from = now - (days * 86_400_000.0) as i64;
    let r = tianwang::maintenance::report::build(&reg, &geo, now, from, level, min_failures).await?;
    reg.close().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", tianwang::maintenance::report::render_text(&r));
    }
    Ok(ExitCode::SUCCESS)
}

async fn token(cmd: TokenCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCmd::Create { role, name, db } => {
            if name.trim().is_empty() {
                anyhow::bail!("--name: empty");
            }
            let reg = Registry::open(&db.url).await?;
            let t = reg.create_token(name.trim(), role.as_str(), false, now_ms()).await?;
            reg.close().await;
            println!("{t}");
            eprintln!("token {:?} ({}) created; it is shown only now", name.trim(), role.as_str());
        }
        TokenCmd::List { db } => {
            let reg = Registry::open(&db.url).await?;
            for t in reg.list_tokens().await? {
                let state = if t.revoked_at_ms.is_some() { "revoked" } else { "active" };
                println!("{}\t{}\t{state}", t.name, t.role);
            }
            reg.close().await;
        }
        TokenCmd::Revoke { name, db } => {
            let reg = Registry::open(&db.url).await?;
            let done = reg.revoke_token(&name, now_ms()).await?;
            reg.close().await;
            if !done {
                anyhow::bail!("no active token named {name:?}");
            }
            println!("revoked {name:?}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
