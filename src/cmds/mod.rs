//! The subcommands, one module each (Moonfire NVR's `cmds/` layout): its clap arguments and its
//! `run`. `main.rs` only parses the command line and dispatches here; everything a command does
//! beyond reading its arguments and printing lives in the library.

pub mod check_config;
pub mod coverage;
pub mod demo;
pub mod eval;
pub mod import;
pub mod maintenance;
pub mod migrate;
pub mod onvif;
pub mod serve;
pub mod sim;
pub mod token;
pub mod track;
pub mod worker;

use tianwang::clock::{Clock, SystemClock};

/// `--db`, shared by the commands that open the registry.
#[derive(clap::Args)]
pub struct DbArg {
    /// Database: a SQLite file path or sqlite:// URL (default), or a postgres:// URL.
    #[arg(long = "db", env = "TIANWANG_DB", default_value = "sqlite://data/tianwang.db")]
    pub url: String,
}

/// Now, in ms since the epoch, from the system clock.
pub fn now_ms() -> i64 {
    SystemClock.now_ms()
}
