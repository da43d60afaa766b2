//! `tianwang coverage report`: the coverage report files for planners at a DORI level.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use tianwang::config;
use tianwang::geo::coverage::{CoverageQuery, StateFilter};
use tianwang::registry::Registry;

use super::DbArg;

#[derive(clap::Subcommand)]
pub enum CoverageCmd {
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

pub async fn run(cmd: CoverageCmd) -> anyhow::Result<ExitCode> {
    let CoverageCmd::Report { level, states, out, dori_table, config, db } = cmd;
    coverage_report(&level, &states, &out, dori_table.as_deref(), config.as_deref(), &db.url).await
}

async fn coverage_report(
    level: &str,
    states: &str,
    out: &Path,
    dori_table: Option<&str>,
    config_dir: Option<&Path>,
    db: &str,
) -> anyhow::Result<ExitCode> {
    let level: tianwang::geo::DoriLevel = level.parse().map_err(|e: String| anyhow::anyhow!("--level: {e}"))?;
    let states: StateFilter = states.parse().map_err(|e: String| anyhow::anyhow!("--states: {e}"))?;
    let table: config::DoriTable = match (dori_table, config_dir) {
        (Some(t), _) => t.parse().map_err(|e: String| anyhow::anyhow!("--dori-table: {e}"))?,
        (None, Some(dir)) => tianwang::city::load_dir(dir).map_err(|e| anyhow::anyhow!("{e}"))?.site.dori_table,
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
