//! The `tianwang` command line: the clap definitions and the dispatch. Each subcommand is a module
//! of `cmds/`; everything else lives in the library.

mod cmds;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Serve(cmds::serve::Args),
    /// Run the cameras this worker is given by lease, in a city on many machines (PostgreSQL):
    /// ingest, detection and image quality; no alerts or API (see docs/CLUSTER.md).
    Worker(cmds::worker::Args),
    /// Check a configuration directory; prints every error as file:line: field: problem.
    CheckConfig(cmds::check_config::Args),
    /// Apply pending database migrations and list them.
    Migrate(cmds::migrate::Args),
    /// Serve synthetic cameras over RTSP until stopped (for tests, benchmarks, trials).
    Sim(cmds::sim::Args),
    /// Write synthetic plate pictures with ground truth (labels.csv): half clean, half hard
    /// (perspective, rotation, blur, noise, low light, glare), plus plate-free frames.
    SimPlates(cmds::sim::PlatesArgs),
    /// Store a generated city in the registry (roads, a three-level grid, entrances, cameras of
    /// every kind with their states, two checkpoint rings): the reference city's 76,164 cameras
    /// by default, for trying the map and the planners' tools at a city's scale.
    SimCity(cmds::sim::CityArgs),
    /// Evaluate a detector on a labelled set.
    Eval {
        #[command(subcommand)]
        cmd: cmds::eval::EvalCmd,
    },
    /// Run the demo city (camera-configs/demo) on the embedded database.
    Demo(cmds::demo::Args),
    /// Import map data into the registry: roads, grid cells, entrances, cameras without a stream.
    /// Each file is stored whole (one transaction); rejected rows are listed with the reason.
    Import(cmds::import::Args),
    /// Generate square grid cells over the stored roads and cameras (when no grid is given).
    GenerateGrid(cmds::import::GridArgs),
    /// API tokens: create (printed once), list, revoke.
    Token {
        #[command(subcommand)]
        cmd: cmds::token::TokenCmd,
    },
    /// A patrol unit's recorded track (GPX or CSV): import it, or replay it to a server.
    Track {
        #[command(subcommand)]
        cmd: cmds::track::TrackCmd,
    },
    /// Coverage for planners.
    Coverage {
        #[command(subcommand)]
        cmd: cmds::coverage::CoverageCmd,
    },
    /// Find ONVIF devices on the local network (WS-Discovery probe): their addresses and scopes.
    Discover(cmds::onvif::DiscoverArgs),
    /// Ask an ONVIF device what it streams and write its camera entry (stream URL without
    /// credentials; the password only named by --password-env or --password-file).
    Onboard(cmds::onvif::OnboardArgs),
    /// Maintenance crews' views of the registry.
    Maintenance {
        #[command(subcommand)]
        cmd: cmds::maintenance::MaintenanceCmd,
    },
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
        Cmd::CheckConfig(a) => Ok(cmds::check_config::run(a)),
        Cmd::Import(a) => cmds::import::run(a).await,
        Cmd::GenerateGrid(a) => cmds::import::run_generate_grid(a).await,
        Cmd::Coverage { cmd } => cmds::coverage::run(cmd).await,
        Cmd::Token { cmd } => cmds::token::run(cmd).await,
        Cmd::Track { cmd } => cmds::track::run(cmd).await,
        Cmd::Maintenance { cmd } => cmds::maintenance::run(cmd).await,
        Cmd::Migrate(a) => cmds::migrate::run(a).await,
        Cmd::SimPlates(a) => cmds::sim::run_plates(a),
        Cmd::SimCity(a) => cmds::sim::run_city(a).await,
        Cmd::Eval { cmd } => cmds::eval::run(cmd),
        Cmd::Sim(a) => cmds::sim::run(a).await,
        Cmd::Serve(a) => cmds::serve::run(a).await,
        Cmd::Worker(a) => cmds::worker::run(a).await,
        Cmd::Demo(a) => cmds::demo::run(a).await,
        Cmd::Discover(a) => cmds::onvif::run_discover(a).await,
        Cmd::Onboard(a) => cmds::onvif::run_onboard(a).await,
    }
}
