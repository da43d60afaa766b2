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
        Cmd::Migrate { db } => {
            let reg = Registry::open(&db.url).await?;
            for (version, desc, applied) in reg.migration_status().await? {
                println!("{version:04} {desc}: {}", if applied { "applied" } else { "pending" });
            }
            reg.close().await;
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
        Cmd::Demo { listen, db, config, sim_port } => {
            let city = match config::load_dir(&config) {
                Ok(c) => c,
                Err(errs) => {
                    eprintln!("{errs}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            let (sim, n) = tianwang::sim::demo::serve_city(&city, sim_port)
                .with_context(|| format!("starting the simulated cameras on 127.0.0.1:{sim_port}"))?;
            tracing::info!(
                "demo city: {} simulated cameras on rtsp://127.0.0.1:{}/, database {}",
                n,
                sim.port(),
                mask_credentials(&db)
            );
            let code = serve(&config, &db, listen, AppOptions::default()).await;
            drop(sim);
            code
        }
    }
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
    app.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
