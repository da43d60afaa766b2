//! `tianwang serve`: the whole system (registry, ingest, detection, alerts, API) for a
//! configuration directory until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tianwang::alerts::service::WriterRole;
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
    /// Serve the registry and API only; run no camera pipelines (a serve node of a cluster,
    /// whose cameras run on `tianwang worker`s).
    #[arg(long)]
    no_ingest: bool,
    /// This node's id among the serve nodes of a cluster (PostgreSQL): one of them writes alerts,
    /// the others stand by. A node restarted under its id takes its role back at once. Default:
    /// the host name and the port it listens on.
    #[arg(long, env = "TIANWANG_NODE_ID")]
    node_id: Option<String>,
    /// How long the alert writer's hold lasts unless renewed (seconds): a standby takes over
    /// this long after the writer died. The same on every serve node.
    #[arg(long, default_value_t = 15.0)]
    writer_lease_s: f64,
    /// Carry the event log over NATS JetStream at this URL (`nats://host:4222`; a cluster's serve
    /// nodes): the node that writes alerts relays the registry's log to the stream, and reads it
    /// back through durable consumers. Reads fall back to the registry while NATS is down.
    #[arg(long, env = "TIANWANG_NATS")]
    nats: Option<String>,
    /// The JetStream stream (its subjects are its name in lower case, `_` as `.`).
    #[arg(long, env = "TIANWANG_NATS_STREAM", default_value = "TIANWANG_EVENTS")]
    nats_stream: String,
    /// Live streams (SSE: alerts and units together) this node serves at once; one more is
    /// answered 503.
    #[arg(long, env = "TIANWANG_MAX_STREAMS", default_value_t = tianwang::alerts::streams::DEFAULT_MAX_STREAMS)]
    max_streams: usize,
    /// Seconds a request may take to be answered (a live stream's body is not bounded); a slower
    /// one is abandoned with a 503.
    #[arg(long, env = "TIANWANG_REQUEST_TIMEOUT_S", default_value_t = 60)]
    request_timeout_s: u64,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.writer_lease_s.is_finite() && (1.0..=3600.0).contains(&args.writer_lease_s),
        "--writer-lease-s: 1 to 3600 seconds"
    );
    let node = match args.node_id {
        Some(n) => {
            anyhow::ensure!(!n.trim().is_empty() && n.len() <= 128, "--node-id: 1 to 128 characters");
            n
        }
        None => {
            let host =
                std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
            format!("{}:{}", if host.is_empty() { "tianwang" } else { host.as_str() }, args.listen.port())
        }
    };
    anyhow::ensure!((1..=3600).contains(&args.request_timeout_s), "--request-timeout-s: 1 to 3600 seconds");
    let writer = WriterRole { node, ttl_ms: (args.writer_lease_s * 1000.0) as i64 };
    let nats = match args.nats {
        Some(url) => {
            let mut o = tianwang::events::jetstream::JetStreamOptions::new(&url);
            o.stream = args.nats_stream;
            o.validate().map_err(|e| anyhow::anyhow!("--nats-stream: {e}"))?;
            Some(o)
        }
        None => None,
    };
    let opts = AppOptions {
        ingest: !args.no_ingest,
        writer,
        order_rounds: true,
        nats,
        max_streams: args.max_streams,
        request_timeout: std::time::Duration::from_secs(args.request_timeout_s),
        ..AppOptions::default()
    };
    serve(&args.config, &args.db.url, args.listen, opts).await
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
    let stop = shutdown_signal();
    tracing::info!("serving {} cameras on http://{addr}/api/v1/cameras", app.config.cameras.len());
    tianwang::server::serve(app, listener, stop).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
