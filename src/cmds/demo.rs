//! `tianwang demo`: the demo city — simulated cameras, the app on them, and the scenario that
//! keeps the monitoring room busy (`tianwang::sim::demo`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tianwang::app::{App, AppError, AppOptions, shutdown_signal};
use tianwang::clock::SystemClock;
use tianwang::config::mask_credentials;
use tianwang::sim::demo::{DemoCity, config_for_port};

use super::now_ms;

#[derive(clap::Args)]
pub struct Args {
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
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    demo(args.listen, &args.db, &args.config, args.sim_port).await
}

/// The demo city: simulated cameras, the app on them, and the scenario that keeps the monitoring
/// room busy (`tianwang::sim::demo`).
async fn demo(listen: SocketAddr, db: &str, config: &Path, sim_port: u16) -> anyhow::Result<ExitCode> {
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

async fn demo_on(mut city: DemoCity, listen: SocketAddr, db: &str, config: &Path) -> anyhow::Result<ExitCode> {
    let cfg = match tianwang::city::load_dir(config) {
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
    let stop = shutdown_signal();
    // A fresh admin token for the demo's user, printed with the address (and nowhere else).
    let token = app.state.registry.create_token("demo-admin", "admin", true, now_ms()).await?;
    println!("demo: open http://{addr}/ — API token (admin): {token}");
    println!("demo: curl -H 'Authorization: Bearer {token}' http://{addr}/api/v1/alerts");
    // An operator of the bank's community desk: the dashboard with it shows that desk's queue.
    let desk = app
        .state
        .registry
        .create_desk_token("demo-desk-erqi-sq", "operator", Some("desk-erqi-sq"), true, now_ms())
        .await?;
    println!("demo: token of the 二七广场 community desk (operator, desk-erqi-sq): {desk}");
    // The demo's GB/T 28181 NVR registers to the SIP server the app just started.
    let nvr = match &app.state.gb28181 {
        Some(gb) => match tianwang::sim::demo::start_gb_nvr(&cfg, gb.local_addr()).await {
            Ok(nvr) => nvr,
            Err(e) => {
                tracing::warn!(error = %e, "demo: the simulated GB/T 28181 NVR did not start");
                None
            }
        },
        None => None,
    };
    if let (Some(nvr), Some(gb)) = (&nvr, &app.state.gb28181) {
        tracing::info!(device = nvr.device_id(), sip = %gb.local_addr(), "demo: a simulated GB/T 28181 NVR registers");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let city = Arc::new(city);
    let scenario = tokio::spawn(tianwang::sim::demo::run_scenario(city.clone(), app.state.clone(), stop_rx.clone()));
    let patrols = tokio::spawn(tianwang::sim::demo::run_patrols(app.state.clone(), stop_rx));
    let served = tianwang::server::serve(app, listener, stop).await;
    let _ = stop_tx.send(true);
    let _ = scenario.await;
    let _ = patrols.await;
    // The simulated cameras go last, after every pipeline reading them has stopped (the NVR
    // has no platform left to unregister from: it goes silent).
    drop(nvr);
    drop(city);
    served?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
