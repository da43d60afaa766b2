//! `tianwang worker`: runs the cameras this worker holds by lease until SIGINT or SIGTERM, then
//! gives them back (docs/CLUSTER.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tianwang::app::AppError;
use tianwang::app::worker::{Worker, WorkerOptions};
use tianwang::clock::SystemClock;
use tianwang::config::Profile;

use super::DbArg;

#[derive(clap::Args)]
pub struct Args {
    /// Camera configuration directory: the same one every node reads (camera URLs and
    /// credentials; the serve nodes sync the camera list into the registry).
    #[arg(long, env = "TIANWANG_CONFIG")]
    config: PathBuf,
    #[command(flatten)]
    db: DbArg,
    /// This worker's id, unique in the cluster (a worker restarted with its id is the same
    /// worker). Default: the host name.
    #[arg(long, env = "TIANWANG_WORKER_ID")]
    id: Option<String>,
    /// Address of the worker's own HTTP endpoint (/healthz, /metrics, /api/v1/worker).
    #[arg(long, env = "TIANWANG_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Cores given to cameras (default: the machine's): a worker's share of the load is its
    /// share of the live cores.
    #[arg(long)]
    cores: Option<u32>,
    /// The most cameras this worker holds.
    #[arg(long, default_value_t = 2000)]
    max_cameras: u32,
    /// Profiles this worker ingests, comma-separated (health, street, checkpoint).
    #[arg(long, value_delimiter = ',', default_value = "health,street,checkpoint")]
    profiles: Vec<String>,
    /// Lease time in seconds: a worker that has not heartbeated for this long loses its cameras
    /// (every node of a cluster must use the same).
    #[arg(long, default_value_t = 15.0)]
    lease_s: f64,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let id = match args.id {
        Some(id) => id,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .context("no --id given and no host name to use")?,
    };
    let mut opts = WorkerOptions::new(&id);
    if let Some(c) = args.cores {
        anyhow::ensure!(c >= 1, "--cores: at least 1");
        opts.cores = c;
    }
    opts.max_cameras = args.max_cameras;
    opts.profiles = args
        .profiles
        .iter()
        .map(|p| {
            p.trim()
                .parse::<Profile>()
                .map_err(|_| anyhow::anyhow!("--profiles: unknown profile {p:?} (health, street, checkpoint)"))
        })
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(args.lease_s.is_finite() && (1.0..=3600.0).contains(&args.lease_s), "--lease-s: 1 to 3600 seconds");
    opts.set_lease_ms((args.lease_s * 1000.0) as i64);
    let worker = match Worker::build(&args.config, &args.db.url, Arc::new(SystemClock), opts).await {
        Ok(w) => w,
        Err(AppError::Config(errs)) => {
            for e in &errs.0 {
                eprintln!("{e}");
            }
            eprintln!("{}: {} configuration error(s); nothing started", args.config.display(), errs.0.len());
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let stop = tianwang::app::shutdown_signal();
    tracing::info!("worker {id}: http://{}/api/v1/worker", listener.local_addr()?);
    tianwang::server::serve_worker(worker, listener, stop).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
