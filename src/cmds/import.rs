//! `tianwang import` (map data into the registry, each file whole, rejected rows listed) and
//! `tianwang generate-grid` (square grid cells over the stored roads and cameras).

use std::path::PathBuf;
use std::process::ExitCode;

use tianwang::geo::load::{ImportKind, LoadError};
use tianwang::registry::Registry;

use super::{DbArg, now_ms};

#[derive(clap::Args)]
pub struct Args {
    /// What the files hold.
    #[arg(value_enum)]
    kind: ImportKind,
    /// Files to import, one after the other.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Refuse a whole file when any of its rows is rejected.
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    db: DbArg,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args { kind, files, strict, db } = args;
    let reg = Registry::open(&db.url).await?;
    let mut failed = false;
    for f in &files {
        let mut last = 0u64;
        let mut progress = |p: tianwang::geo::input::Progress| {
            let pct = (p.bytes_done * 100).checked_div(p.bytes_total).unwrap_or(100);
            if pct >= last + 10 || p.bytes_done == p.bytes_total {
                eprintln!("{}: {pct}% read, {} elements", f.display(), p.items);
                last = pct;
            }
        };
        match tianwang::geo::load::import_file(&reg, kind, f, strict, now_ms(), &mut progress).await {
            Ok(s) => {
                println!(
                    "{}: accepted {} (roads {}, cells {}, entrances {}, cameras {}), rejected {}",
                    s.file,
                    s.accepted(),
                    s.roads,
                    s.cells,
                    s.entrances,
                    s.cameras,
                    s.rejected.len()
                );
                for r in &s.rejected {
                    println!("  rejected {}: {}", r.at, r.reason);
                }
                if kind == ImportKind::Osm {
                    print_views(&s);
                }
            }
            Err(LoadError::Strict { file, rejected }) => {
                failed = true;
                eprintln!("error: {file}: {} rows rejected and --strict given; nothing stored", rejected.len());
                for r in &rejected {
                    eprintln!("  rejected {}: {}", r.at, r.reason);
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {e}");
            }
        }
    }
    reg.close().await;
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// What the OSM import did with `type=surveillance` relations: the cameras that took their view
/// from one, those still without a direction, and the relations not used.
fn print_views(s: &tianwang::geo::load::ImportSummary) {
    println!("  fields of view from type=surveillance relations: {} cameras", s.views_from_relations.len());
    for v in &s.views_from_relations {
        println!(
            "    {}: bearing {:.1}°, field of view {:.1}° (osm relation {})",
            v.camera_id, v.bearing_deg, v.hfov_deg, v.relation_id
        );
    }
    println!("  without a direction (they cover nothing): {} cameras", s.without_direction.len());
    if !s.without_direction.is_empty() {
        println!("    {}", s.without_direction.join(", "));
    }
    for r in &s.relation_problems {
        println!("  {}: {}", r.at, r.reason);
    }
}

#[derive(clap::Args)]
pub struct GridArgs {
    /// Side of a base (level-3) cell in metres; level 2 is 4× and level 1 16× as wide.
    #[arg(long, default_value_t = 250.0)]
    square_m: f64,
    #[command(flatten)]
    db: DbArg,
}

pub async fn run_generate_grid(args: GridArgs) -> anyhow::Result<ExitCode> {
    let GridArgs { square_m, db } = args;
    if !(10.0..=100_000.0).contains(&square_m) {
        anyhow::bail!("--square-m {square_m}: between 10 and 100000 metres");
    }
    let reg = Registry::open(&db.url).await?;
    let s = tianwang::geo::load::generate_grid(&reg, square_m, now_ms()).await?;
    println!("{}: {} cells", s.file, s.cells);
    for r in &s.rejected {
        println!("  rejected {}: {}", r.at, r.reason);
    }
    reg.close().await;
    Ok(ExitCode::SUCCESS)
}
