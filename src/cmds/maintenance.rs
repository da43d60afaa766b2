//! `tianwang maintenance report`: the maintenance crews' report (cameras by status, work orders,
//! uptime, worst cameras, repeat offenders, replacement candidates) as text or JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tianwang::config;
use tianwang::registry::Registry;

use super::{DbArg, now_ms};

#[derive(clap::Subcommand)]
pub enum MaintenanceCmd {
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

pub async fn run(cmd: MaintenanceCmd) -> anyhow::Result<ExitCode> {
    let MaintenanceCmd::Report { days, level, min_failures, json, config, db } = cmd;
    maintenance_report(days, &level, min_failures, json, config.as_deref(), &db.url).await
}

async fn maintenance_report(
    days: f64,
    level: &str,
    min_failures: u32,
    json: bool,
    config_dir: Option<&Path>,
    db: &str,
) -> anyhow::Result<ExitCode> {
    let level: tianwang::geo::DoriLevel = level.parse().map_err(|e: String| anyhow::anyhow!("--level: {e}"))?;
    if !(days > 0.0 && days <= 3660.0) {
        anyhow::bail!("--days {days}: a window of (0, 3660] days");
    }
    let table = match config_dir {
        Some(dir) => tianwang::city::load_dir(dir).map_err(|e| anyhow::anyhow!("{e}"))?.site.dori_table,
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
