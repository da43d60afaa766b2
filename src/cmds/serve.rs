//! `tianwang serve`: the whole system (registry, ingest, detection, alerts, API) for a
//! configuration directory until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tianwang::app::{App, AppError, AppOptions, shutdown_signal};
use tianwang::clock::SystemClock;

use super::DbArg;

#[derive(clap::Args)]
pub struct Args {
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
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    serve(&args.config, &args.db.url, args.listen, AppOptions { ingest: !args.no_ingest }).await
}

async fn serve(config: &Path, db: &str, listen: SocketAddr, opts: AppOptions) -> anyhow::Result<ExitCode> {
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
