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
        #[arg(long, default_value_t = 640)]
        det_width: u32,
        /// Minimum detector score at full resolution (default: the reader's).
        #[arg(long)]
        det_score: Option<f32>,
        /// Minimum detector score on the scaled-down picture (default: the reader's).
        #[arg(long)]
        coarse_score: Option<f32>,
        /// Full-resolution check crops wider than this are scaled down to it (default: the
        /// reader's; 0: never).
        #[arg(long)]
        confirm_width: Option<u32>,
        /// Full-resolution check crops narrower than this are scaled up to it (default: the
        /// reader's; 0: never).
        #[arg(long)]
        confirm_min_width: Option<u32>,
        /// At most this many candidates are checked at full resolution (default: the reader's).
        #[arg(long)]
        max_candidates: Option<usize>,
        /// One-row readings whose least sure character is below this are tried as two-row plates
        /// too, when their shape allows (default: the reader's; above 1: always).
        #[arg(long)]
        two_row_below: Option<f32>,
        /// Read without GA 36's police layout (on a plate measured white, a CJK character outside
        /// the plate alphabet counts as 警, and a police reading's 警 is spared the character
        /// floor): as the reader was before it.
        #[arg(long)]
        no_police_layout: bool,
        /// Run the second recogniser on every crop, also where PP-OCR leaves no reading that could
        /// hold the character floor: as the reader was before it skipped them.
        #[arg(long)]
        read_hopeless: bool,
        /// How many misreads and misses to list.
        #[arg(long, default_value_t = 10)]
        misreads: usize,
    },
}

pub fn run(cmd: EvalCmd) -> anyhow::Result<ExitCode> {
    let EvalCmd::Plates {
        dir,
        limit,
        json,
        det_width,
        det_score,
        coarse_score,
        confirm_width,
        confirm_min_width,
        max_candidates,
        two_row_below,
        no_police_layout,
        read_hopeless,
        misreads,
    } = cmd;
    tianwang::detect::onnx::init(None)?;
    // One core: the figure is plates per second per core.
    let mut params = tianwang::detect::plates::PlateParams { det_width, ..Default::default() };
    params.det_score = det_score.unwrap_or(params.det_score);
    params.coarse_score = coarse_score.unwrap_or(params.coarse_score);
    params.confirm_width = confirm_width.unwrap_or(params.confirm_width);
    params.confirm_min_width = confirm_min_width.unwrap_or(params.confirm_min_width);
    params.max_candidates = max_candidates.unwrap_or(params.max_candidates);
    params.two_row_below = two_row_below.unwrap_or(params.two_row_below);
    params.police_layout &= !no_police_layout;
    params.skip_hopeless &= !read_hopeless;
    let mut reader = tianwang::detect::plates::PlateReader::new(params, 1)?;
    let rep = tianwang::detect::eval::eval_plates(&dir, std::slice::from_mut(&mut reader), limit)
        .map_err(|e| anyhow::anyhow!(e))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        print!("{}", rep.text());
        for m in rep.misreads.iter().take(misreads) {
            let read = if m.read.is_empty() { "(nothing)" } else { &m.read };
            let why = if m.why.is_empty() { String::new() } else { format!(" ({})", m.why) };
            println!("  misread {}: {} -> {read}{why}", m.file, m.truth);
        }
    }
    Ok(ExitCode::SUCCESS)
}
