//! `tianwang sim` (synthetic cameras over RTSP until stopped, and/or a simulated GB/T 28181 NVR
//! registered to a platform) and `tianwang sim-plates` (a labelled data set of synthetic plate
//! pictures).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
#[cfg(not(unix))]
use tianwang::app::shutdown_signal;

#[derive(clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (0: a free one; the URL is printed).
    #[arg(long, default_value_t = 8554)]
    port: u16,
    /// A stream as PATH:WIDTHxHEIGHT@FPS[:h265][:kf=N][:pattern=P][:kbps=N] or PATH:file=CLIP.mp4; repeat for more.
    #[arg(long = "stream", required_unless_present = "gb28181_platform")]
    streams: Vec<String>,
    /// Run a simulated GB/T 28181 NVR registered to the platform at HOST:PORT (SIP).
    #[arg(long)]
    gb28181_platform: Option<String>,
    /// The platform's 20-digit id.
    #[arg(long, requires = "gb28181_platform", default_value = "34020000002000000001")]
    gb28181_platform_id: String,
    /// The SIP domain (Digest realm): 10 digits; the platform id's first 10 when absent.
    #[arg(long, requires = "gb28181_platform")]
    gb28181_domain: Option<String>,
    /// The NVR's 20-digit id (type 118); its channels are numbered under it (type 131).
    #[arg(long, requires = "gb28181_platform", default_value = "34020000001180000001")]
    gb28181_device: String,
    /// The environment variable holding the NVR's password.
    #[arg(long, requires = "gb28181_platform")]
    gb28181_password_env: Option<String>,
    /// Video channels of the NVR (each a moving test pattern at 640x360, 15 fps).
    #[arg(long, requires = "gb28181_platform", default_value_t = 4)]
    gb28181_channels: usize,
    /// SIP over `udp` or `tcp`.
    #[arg(long, requires = "gb28181_platform", default_value = "udp")]
    gb28181_transport: String,
    /// Seconds between keepalives.
    #[arg(long, requires = "gb28181_platform", default_value_t = 60)]
    gb28181_keepalive_s: u64,
    /// Every channel shows this MP4's H.264 track (played once, in real time, from the start of
    /// each call) instead of a test pattern: no encoding in the NVR.
    #[arg(long, requires = "gb28181_platform")]
    gb28181_file: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cams = args.streams.iter().map(|s| parse_stream(s)).collect::<Result<Vec<_>, _>>()?;
    // Signals are listened for before anything starts: a SIGINT right after the NVR registered
    // still unregisters it instead of killing the process.
    let stopped = stop_signals()?;
    let nvr = match &args.gb28181_platform {
        Some(p) => Some(gb28181_device(&args, p).await?),
        None => None,
    };
    let server = if cams.is_empty() {
        None
    } else {
        let server = tianwang::sim::SimServer::start_on(args.port)?;
        for c in cams {
            println!("{}", server.add(c));
        }
        println!("sim: rtsp://127.0.0.1:{}/", server.port());
        Some(server)
    };
    stopped.await;
    if let Some(nvr) = nvr {
        nvr.stop().await.map_err(|e| anyhow::anyhow!("GB/T 28181: {e}"))?;
    }
    drop(server);
    Ok(ExitCode::SUCCESS)
}

/// SIGINT or SIGTERM, listened for from now on.
#[cfg(unix)]
fn stop_signals() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT received, stopping"),
            _ = term.recv() => tracing::info!("SIGTERM received, stopping"),
        }
    })
}

#[cfg(not(unix))]
fn stop_signals() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(shutdown_signal())
}

/// The simulated NVR of `--gb28181-*`, started (it registers on its own).
async fn gb28181_device(args: &Args, platform: &str) -> anyhow::Result<tianwang::sim::gb28181::GbDeviceSim> {
    use tianwang::sim::gb28181::{GbDeviceConfig, GbDeviceSim, SipTransport};
    let addr = tokio::net::lookup_host(platform)
        .await
        .with_context(|| format!("--gb28181-platform {platform:?}: expected HOST:PORT"))?
        .next()
        .with_context(|| format!("--gb28181-platform {platform:?}: no address"))?;
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    anyhow::ensure!(digits(&args.gb28181_platform_id, 20), "--gb28181-platform-id: 20 digits");
    anyhow::ensure!(digits(&args.gb28181_device, 20), "--gb28181-device: 20 digits");
    let domain = args.gb28181_domain.clone().unwrap_or_else(|| args.gb28181_platform_id[..10].to_string());
    anyhow::ensure!(digits(&domain, 10), "--gb28181-domain: 10 digits");
    let password = match &args.gb28181_password_env {
        Some(var) => std::env::var(var).with_context(|| format!("--gb28181-password-env: {var} is not set"))?,
        None => anyhow::bail!("--gb28181-password-env VAR: the NVR's password, from the environment"),
    };
    let mut cfg = GbDeviceConfig::new(addr, &args.gb28181_platform_id, &domain, &args.gb28181_device, &password);
    cfg.transport = match args.gb28181_transport.as_str() {
        "udp" => SipTransport::Udp,
        "tcp" => SipTransport::Tcp,
        t => anyhow::bail!("--gb28181-transport {t:?}: udp or tcp"),
    };
    cfg.keepalive_interval = std::time::Duration::from_secs(args.gb28181_keepalive_s.max(1));
    cfg.channels = GbDeviceConfig::numbered_channels(&args.gb28181_device, args.gb28181_channels, 640, 360, 15);
    if let Some(file) = &args.gb28181_file {
        anyhow::ensure!(file.is_file(), "--gb28181-file {}: no such file", file.display());
        for c in &mut cfg.channels {
            c.picture.file = Some(file.clone());
        }
    }
    let nvr = GbDeviceSim::start(cfg).await.map_err(|e| anyhow::anyhow!("GB/T 28181: {e}"))?;
    println!(
        "sim: GB/T 28181 NVR {} with {} channels, SIP {} from {} to {addr}",
        args.gb28181_device,
        args.gb28181_channels,
        args.gb28181_transport,
        nvr.local_addr()
    );
    Ok(nvr)
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

#[derive(clap::Args)]
pub struct CityArgs {
    /// Cameras of every kind (the reference city has 76,164).
    #[arg(long, default_value_t = 76_164)]
    cameras: usize,
    /// Streets each way, 100 m apart (default: the reference city's density for the camera count).
    #[arg(long)]
    streets: Option<usize>,
    /// Unit entrances (default: the reference city's share for the camera count).
    #[arg(long)]
    entrances: Option<usize>,
    /// Share of cameras offline.
    #[arg(long, default_value_t = 0.05)]
    offline_share: f64,
    /// Centre as LON,LAT (default Zhengzhou).
    #[arg(long, default_value = "113.665,34.757")]
    centre: String,
    #[arg(long, default_value_t = 2009)]
    seed: u64,
    #[command(flatten)]
    db: super::DbArg,
}

/// `tianwang sim-city`: a generated city stored in the registry like an import (source `sim`):
/// roads, a three-level grid, entrances, cameras of every kind with their states, two rings.
pub async fn run_city(args: CityArgs) -> anyhow::Result<ExitCode> {
    use tianwang::geo::synthetic::{CitySpec, generate};
    let reference = CitySpec::reference();
    let scale = (args.cameras as f64 / reference.cameras as f64).sqrt();
    let (lon, lat) = args
        .centre
        .split_once(',')
        .and_then(|(a, b)| Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?)))
        .filter(|(a, b)| a.is_finite() && b.is_finite() && (-180.0..=180.0).contains(a) && (-85.0..=85.0).contains(b))
        .with_context(|| format!("--centre {:?}: expected LON,LAT in degrees", args.centre))?;
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.offline_share),
        "--offline-share {}: a share within 0..1",
        args.offline_share
    );
    anyhow::ensure!((1..=2_000_000).contains(&args.cameras), "--cameras {}: within 1..2,000,000", args.cameras);
    let spec = CitySpec {
        centre: [lon, lat],
        streets: args.streets.unwrap_or(((reference.streets as f64 * scale).round() as usize).max(5)),
        cameras: args.cameras,
        entrances: args.entrances.unwrap_or((reference.entrances as f64 * scale * scale).round() as usize),
        offline_share: args.offline_share,
        seed: args.seed,
        ..reference
    };
    anyhow::ensure!((3..=2_000).contains(&spec.streets), "--streets {}: within 3..2000", spec.streets);
    let city = generate(&spec);
    let reg = tianwang::registry::Registry::open(&args.db.url).await?;
    let now = super::now_ms();
    let cams: Vec<tianwang::geo::input::CameraInput> = city.cameras.iter().map(Into::into).collect();
    reg.store_roads(&city.roads, "sim", now).await?;
    let (cells, rejected) = reg.store_cells(&city.cells, "sim", now).await?;
    anyhow::ensure!(rejected.is_empty(), "grid cells refused: {}", rejected[0].reason);
    reg.store_entrances(&city.entrances, "sim", now).await?;
    let (stored, rejected) = reg.store_imported_cameras(&cams, "sim", now).await?;
    for r in &rejected {
        eprintln!("  rejected {}: {}", r.at, r.reason);
    }
    let states: Vec<(String, tianwang::config::CameraStatus)> = city
        .cameras
        .iter()
        .filter(|c| !rejected.iter().any(|r| r.at.contains(&c.id)))
        .map(|c| (c.id.clone(), c.status))
        .collect();
    reg.set_statuses(&states, "simulated city", now).await?;
    reg.store_rings(&city.rings, "sim", now).await?;
    let offline = city.cameras.iter().filter(|c| c.status == tianwang::config::CameraStatus::Offline).count();
    println!(
        "sim-city: stored {stored} cameras ({offline} offline), {} roads on {} streets each way, {cells} grid cells, {} entrances, {} rings",
        city.roads.len(),
        spec.streets,
        city.entrances.len(),
        city.rings.len()
    );
    reg.close().await;
    Ok(if rejected.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
