//! `tianwang check-config DIR`: every error of a configuration directory as `file:line: field:
//! problem`, exit status 1 when there is one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tianwang::city;

#[derive(clap::Args)]
pub struct Args {
    /// Camera configuration directory.
    dir: PathBuf,
}

pub fn run(args: Args) -> ExitCode {
    check_config(&args.dir)
}

fn check_config(dir: &Path) -> ExitCode {
    match city::load_dir(dir) {
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
