//! `tianwang migrate`: applies pending database migrations and lists every migration.

use std::process::ExitCode;

use tianwang::registry::Registry;

use super::DbArg;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    db: DbArg,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reg = Registry::open(&args.db.url).await?;
    for (version, desc, applied) in reg.migration_status().await? {
        println!("{version:04} {desc}: {}", if applied { "applied" } else { "pending" });
    }
    reg.close().await;
    Ok(ExitCode::SUCCESS)
}
