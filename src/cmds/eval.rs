//! `tianwang eval plates DIR`: the plate reader's accuracy and throughput on a labelled set.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum EvalCmd {
    /// Plate reading on a directory written by `tianwang sim-plates` (or any with the same
    /// labels.csv): exact-plate and per-character accuracy per split, false reads per 1,000
    /// plate-free pictures, throughput on one core.
    Plates {
        dir: PathBuf,
        /// Only the first N pictures.
        #[arg(long)]
        limit: Option<usize>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Width the plate detector sees first (as `[detect] plate_det_width`).
        #[arg(long, default_value_t = 960)]
        det_width: u32,
    },
}

pub fn run(cmd: EvalCmd) -> anyhow::Result<ExitCode> {
    let EvalCmd::Plates { dir, limit, json, det_width } = cmd;
    tianwang::detect::onnx::init(None)?;
    // One core: the figure is plates per second per core.
    let params = tianwang::detect::plates::PlateParams { det_width, ..Default::default() };
    let mut reader = tianwang::detect::plates::PlateReader::new(params, 1)?;
    let rep = tianwang::detect::eval::eval_plates(&dir, std::slice::from_mut(&mut reader), limit)
        .map_err(|e| anyhow::anyhow!(e))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        print!("{}", rep.text());
        for (f, t, r) in rep.misreads.iter().take(10) {
            println!("  misread {f}: {t} -> {}", if r.is_empty() { "(nothing)" } else { r });
        }
    }
    Ok(ExitCode::SUCCESS)
}
