//! `tianwang sim` (synthetic cameras over RTSP until stopped) and `tianwang sim-plates` (a
//! labelled data set of synthetic plate pictures).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tianwang::app::shutdown_signal;

#[derive(clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (0: a free one; the URL is printed).
    #[arg(long, default_value_t = 8554)]
    port: u16,
    /// A stream as PATH:WIDTHxHEIGHT@FPS[:h265][:kf=N][:pattern=P][:kbps=N] or PATH:file=CLIP.mp4; repeat for more.
    #[arg(long = "stream", required = true)]
    streams: Vec<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cams = args.streams.iter().map(|s| parse_stream(s)).collect::<Result<Vec<_>, _>>()?;
    let server = tianwang::sim::SimServer::start_on(args.port)?;
    for c in cams {
        println!("{}", server.add(c));
    }
    println!("sim: rtsp://127.0.0.1:{}/", server.port());
    shutdown_signal().await;
    Ok(ExitCode::SUCCESS)
}

/// `PATH:WIDTHxHEIGHT@FPS[:h265][:kf=N][:pattern=P]`
fn parse_stream(s: &str) -> anyhow::Result<tianwang::sim::SimCamera> {
    let mut parts = s.split(':');
    let path = parts.next().filter(|p| !p.is_empty()).context("stream: missing path")?;
    if let Some(file) = s.strip_prefix(&format!("{path}:file=")) {
        let mut cam = tianwang::sim::SimCamera::new(path, 0, 0, 0);
        cam.file = Some(file.into());
        return Ok(cam);
    }
    let geom = parts.next().with_context(|| format!("stream {s:?}: expected PATH:WIDTHxHEIGHT@FPS"))?;
    let (size, fps) = geom.split_once('@').with_context(|| format!("stream {s:?}: expected WIDTHxHEIGHT@FPS"))?;
    let (w, h) = size.split_once('x').with_context(|| format!("stream {s:?}: expected WIDTHxHEIGHT"))?;
    let mut cam = tianwang::sim::SimCamera::new(path, w.parse()?, h.parse()?, fps.parse()?);
    for opt in parts {
        match opt.split_once('=') {
            None if opt == "h265" => cam.codec = tianwang::sim::SimCodec::H265,
            Some(("kf", n)) => cam.keyframe_interval = n.parse()?,
            Some(("pattern", p)) => cam.pattern = p.to_string(),
            Some(("kbps", n)) => cam.bitrate_kbps = n.parse()?,
            _ => anyhow::bail!("stream {s:?}: unknown option {opt:?} (h265, kf=N, pattern=P, kbps=N)"),
        }
    }
    Ok(cam)
}

#[derive(clap::Args)]
pub struct PlatesArgs {
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Pictures with a plate.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Pictures without a plate (false-read counting).
    #[arg(long, default_value_t = 200)]
    plate_free: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Picture size WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720")]
    size: String,
}

pub fn run_plates(args: PlatesArgs) -> anyhow::Result<ExitCode> {
    let PlatesArgs { out, count, plate_free, seed, size } = args;
    let (w, h) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .filter(|(w, h)| *w >= 320 && *h >= 180)
        .ok_or_else(|| anyhow::anyhow!("--size {size:?}: expected WIDTHxHEIGHT, at least 320x180"))?;
    let s =
        tianwang::sim::plates::write_dataset(&out, count, seed, w, h, plate_free).map_err(|e| anyhow::anyhow!(e))?;
    println!(
        "wrote {} clean, {} hard and {} plate-free pictures; labels in {}",
        s.clean,
        s.hard,
        s.plate_free,
        s.labels.display()
    );
    Ok(ExitCode::SUCCESS)
}
