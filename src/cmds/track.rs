//! `tianwang track import|replay`: a patrol unit's recorded track (GPX or CSV,
//! `geo::import::track`). `import` stores it in the registry as recorded (its positions keep
//! their times: the track for the record, or an investigation); `replay` sends it to a running
//! server over HTTP as a tracker would, at its recorded pace (or faster), its times moved so that
//! it starts now: a recorded patrol driving on the live map.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use tianwang::geo::import::track::{Track, read_track};
use tianwang::registry::{FixSource, Registry, oldest_fix};

use super::{DbArg, now_ms};

#[derive(clap::Subcommand)]
pub enum TrackCmd {
    /// Store a unit's recorded track in the registry, its positions at their own times (a
    /// position already in the track is not stored twice; one older than --tracks-days is refused).
    Import {
        /// The unit's id (it must exist: `POST /api/v1/units`).
        #[arg(long)]
        unit: String,
        /// A GPX or CSV file (docs/GEOGRAPHY.md, "Patrol units and their positions").
        #[arg(long)]
        file: PathBuf,
        /// Positions older than this many days are refused, as `[retention] tracks_days` keeps
        /// them (0: any age).
        #[arg(long, default_value_t = 90)]
        tracks_days: u32,
        #[command(flatten)]
        db: DbArg,
    },
    /// Send a unit's recorded track to a server as its tracker would: the positions in time
    /// order, each when its moment comes (sped up by --speed), their times moved so that the
    /// first is --start-ms (now by default). The token is read from TIANWANG_TOKEN, never from
    /// the command line.
    Replay {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        file: PathBuf,
        /// The server, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        url: String,
        /// How many times faster than recorded (1: as recorded).
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// The time the first position is given (ms since the epoch); now by this machine's
        /// clock when absent (give the server's time when the clocks differ).
        #[arg(long)]
        start_ms: Option<i64>,
        /// A tracker's token (role tracker, operator or admin).
        #[arg(long = "token-env", default_value = "TIANWANG_TOKEN")]
        token_env: String,
    },
}

fn read(file: &std::path::Path) -> anyhow::Result<Track> {
    let t = read_track(file)?;
    for (at, why) in &t.refused {
        eprintln!("{}: {at}: refused: {why}", file.display());
    }
    if t.fixes.is_empty() {
        anyhow::bail!("{}: no position to take ({} refused)", file.display(), t.refused.len());
    }
    Ok(t)
}

pub async fn run(cmd: TrackCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        TrackCmd::Import { unit, file, tracks_days, db } => {
            let t = read(&file)?;
            let reg = Registry::open(&db.url).await?;
            let now = now_ms();
            let (mut stored, mut duplicates, mut rejected) = (0, 0, 0);
            for (n, chunk) in t.fixes.chunks(tianwang::registry::MAX_FIXES).enumerate() {
                let r = reg
                    .add_fixes(&unit, chunk, FixSource::Import, now, oldest_fix(now, tracks_days))
                    .await
                    .with_context(|| format!("unit {unit:?}"))?;
                for x in &r.rejected {
                    eprintln!(
                        "{}: position {}: refused: {}",
                        file.display(),
                        n * tianwang::registry::MAX_FIXES + x.index + 1,
                        x.reason
                    );
                }
                (stored, duplicates, rejected) =
                    (stored + r.stored, duplicates + r.duplicates, rejected + r.rejected.len());
            }
            reg.close().await;
            println!(
                "{}: {stored} positions stored for unit {unit}, {duplicates} already there, {} refused",
                file.display(),
                rejected + t.refused.len()
            );
        }
        TrackCmd::Replay { unit, file, url, speed, start_ms, token_env } => {
            if !(speed.is_finite() && speed > 0.0) {
                anyhow::bail!("--speed {speed}: a number above 0");
            }
            let token = std::env::var(&token_env).with_context(|| format!("no token in ${token_env}"))?;
            let mut fixes = read(&file)?.fixes;
            fixes.sort_by_key(|f| f.at_ms);
            let t0 = fixes[0].at_ms;
            let start = start_ms.unwrap_or_else(now_ms);
            let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
            let endpoint = format!("{}/api/v1/units/{unit}/positions", url.trim_end_matches('/'));
            let began = Instant::now();
            let (mut sent, mut refused) = (0usize, 0usize);
            let mut i = 0;
            while i < fixes.len() {
                // Everything due by now goes in one request (a tracker catching up batches too).
                let due_in = Duration::from_secs_f64((fixes[i].at_ms - t0) as f64 / 1000.0 / speed);
                if let Some(wait) = due_in.checked_sub(began.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
                let elapsed_ms = began.elapsed().as_secs_f64() * 1000.0 * speed;
                let mut batch = Vec::new();
                // This one is due (it was waited for); those due by now come with it.
                while i < fixes.len()
                    && (batch.is_empty() || ((fixes[i].at_ms - t0) as f64 <= elapsed_ms && batch.len() < 1000))
                {
                    let mut f = fixes[i];
                    // Moved to start at `start`, the gaps shrunk by the speed.
                    f.at_ms = start + ((f.at_ms - t0) as f64 / speed).round() as i64;
                    batch.push(f);
                    i += 1;
                }
                let r = client
                    .post(&endpoint)
                    .bearer_auth(&token)
                    .json(&serde_json::json!({ "positions": batch }))
                    .send()
                    .await
                    .with_context(|| format!("posting to {endpoint}"))?;
                let status = r.status();
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                if !status.is_success() {
                    let msg = body["error"]["message"].as_str().unwrap_or("no message").to_string();
                    anyhow::bail!("{endpoint} answered {status}: {msg}");
                }
                sent += body["stored"].as_u64().unwrap_or(0) as usize;
                refused += body["rejected"].as_array().map_or(0, |a| a.len());
            }
            println!("{}: {sent} positions replayed to unit {unit}, {refused} refused", file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
