//! `tianwang discover` (WS-Discovery: ONVIF devices on the local network) and `tianwang onboard
//! URL` (ask a device what it streams and write its camera entry, without credentials).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use tianwang::config::{CameraId, CameraKind, Owner, Profile, SecretRef};
use tianwang::onvif;

#[derive(clap::Args)]
pub struct DiscoverArgs {
    /// Seconds to collect answers.
    #[arg(long = "timeout-s", default_value_t = 3.0)]
    timeout_s: f64,
    /// Print one JSON array instead of a line per device.
    #[arg(long)]
    json: bool,
    /// Send the probe to HOST:PORT (a device or a relay on a routed network) instead of the
    /// multicast group 239.255.255.250:3702; may be repeated.
    #[arg(long = "to", value_name = "HOST:PORT")]
    to: Vec<String>,
    /// Probe from this local IPv4 address: a multicast probe leaves by the interface holding it
    /// (on a host with several networks, the cameras' one).
    #[arg(long)]
    interface: Option<std::net::Ipv4Addr>,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("password").required(true).args(["password_env", "password_file"])))]
pub struct OnboardArgs {
    /// The device: HOST[:PORT] or http://HOST[:PORT][/PATH] (path /onvif/device_service by default).
    url: String,
    /// The ONVIF user name.
    #[arg(long)]
    username: String,
    /// Environment variable holding the password (written to the file as `password_env`).
    #[arg(long)]
    password_env: Option<String>,
    /// File holding the password, first line (written to the file as `password_file`, absolute).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Camera id; `onvif-<serial number>` by default.
    #[arg(long)]
    id: Option<CameraId>,
    /// Camera name; the device's `name` scope, or its manufacturer and model, by default.
    #[arg(long)]
    name: Option<String>,
    /// Write the camera file here (refused if it exists, unless --force); stdout by default.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Overwrite --out.
    #[arg(long)]
    force: bool,
    /// Ingest profile: checkpoint, street, health (checkpoint for a checkpoint, else street).
    #[arg(long)]
    profile: Option<Profile>,
    /// The device's media profile token to stream; the H.264/H.265 profile with the most pixels
    /// by default.
    #[arg(long)]
    onvif_profile: Option<String>,
    /// Camera kind (street, checkpoint, entrance, …); checkpoint for --profile checkpoint, else street.
    #[arg(long)]
    kind: Option<CameraKind>,
    /// Owner: public, enterprise, resident.
    #[arg(long, default_value = "public")]
    owner: Owner,
    /// Longitude, WGS84 degrees.
    #[arg(long, allow_negative_numbers = true)]
    lon: f64,
    /// Latitude, WGS84 degrees.
    #[arg(long, allow_negative_numbers = true)]
    lat: f64,
    /// Where the camera looks, degrees clockwise from north.
    #[arg(long)]
    bearing_deg: f64,
    /// Metres above the ground; from [defaults] in site.toml when absent.
    #[arg(long)]
    mounting_height_m: Option<f64>,
    /// Horizontal field of view, degrees; from [defaults] in site.toml when absent.
    #[arg(long)]
    hfov_deg: Option<f64>,
    /// Seconds to wait for each answer of the device.
    #[arg(long = "timeout-s", default_value_t = 10.0)]
    timeout_s: f64,
}

fn seconds(s: f64, what: &str) -> anyhow::Result<Duration> {
    if !(s.is_finite() && s > 0.0 && s <= 3600.0) {
        anyhow::bail!("{what}: {s} is not a number of seconds in (0, 3600]");
    }
    Ok(Duration::from_secs_f64(s))
}

pub async fn run_discover(a: DiscoverArgs) -> anyhow::Result<ExitCode> {
    let timeout = seconds(a.timeout_s, "--timeout-s")?;
    let mut targets: Vec<SocketAddr> = Vec::new();
    for t in &a.to {
        let addr = tokio::net::lookup_host(t.as_str())
            .await
            .with_context(|| format!("--to {t}: expected HOST:PORT"))?
            .find(SocketAddr::is_ipv4)
            .with_context(|| format!("--to {t}: no IPv4 address"))?;
        targets.push(addr);
    }
    let found = onvif::discover(&onvif::Probe { targets, timeout, interface: a.interface })
        .await
        .context("WS-Discovery probe")?;
    if a.json {
        let list: Vec<serde_json::Value> = found
            .iter()
            .map(|m| {
                serde_json::json!({
                    "endpoint": m.endpoint,
                    "xaddrs": m.xaddrs,
                    "name": m.scope("name"),
                    "hardware": m.scope("hardware"),
                    "location": m.scope("location"),
                    "types": m.types,
                    "scopes": m.scopes,
                    "from": m.from.to_string(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        for m in &found {
            let mut line = format!("{}  {}", m.xaddrs.join(" "), m.endpoint);
            for k in ["name", "hardware", "location"] {
                if let Some(v) = m.scope(k) {
                    line.push_str(&format!("  {k}={v:?}"));
                }
            }
            println!("{line}");
        }
    }
    eprintln!("{} device(s) answered in {} s", found.len(), a.timeout_s);
    Ok(ExitCode::SUCCESS)
}

pub async fn run_onboard(a: OnboardArgs) -> anyhow::Result<ExitCode> {
    let timeout = seconds(a.timeout_s, "--timeout-s")?;
    let url = onvif::device_service_url(&a.url)?;
    let password = match (&a.password_env, &a.password_file) {
        (Some(var), _) => SecretRef::Env(var.clone()),
        (None, Some(f)) => SecretRef::File(std::path::absolute(f).with_context(|| format!("{}", f.display()))?),
        (None, None) => anyhow::bail!("give --password-env or --password-file"),
    };
    let secret = password.resolve().map_err(|e| anyhow::anyhow!(e))?;
    if let Some(out) = &a.out
        && out.exists()
        && !a.force
    {
        anyhow::bail!("{} exists; give --force to overwrite it", out.display());
    }
    let creds = onvif::Credentials { username: a.username.clone(), password: secret };
    let ins = onvif::inspect(url, creds, a.onvif_profile.as_deref(), timeout).await?;
    let kind = a.kind.unwrap_or(if a.profile == Some(Profile::Checkpoint) {
        CameraKind::Checkpoint
    } else {
        CameraKind::Street
    });
    let profile =
        a.profile.unwrap_or(if kind == CameraKind::Checkpoint { Profile::Checkpoint } else { Profile::Street });
    let entry = onvif::CameraEntry {
        id: a.id.clone().unwrap_or_else(|| ins.default_id()),
        name: a.name.clone().unwrap_or_else(|| ins.default_name()),
        username: a.username.clone(),
        password,
        profile,
        kind,
        owner: a.owner,
        lon: a.lon,
        lat: a.lat,
        bearing_deg: a.bearing_deg,
        mounting_height_m: a.mounting_height_m,
        hfov_deg: a.hfov_deg,
    };
    let text = onvif::camera_toml(&ins, &entry);
    let p = &ins.chosen;
    eprintln!(
        "{}: media profile {} ({} {}x{}), stream {}{}",
        ins.device_url,
        p.token,
        p.encoding.as_deref().unwrap_or("?"),
        p.width.unwrap_or(0),
        p.height.unwrap_or(0),
        ins.stream_url,
        if ins.clock_offset_ms.abs() >= 1000 {
            format!(", device clock {:+.0} s from ours", ins.clock_offset_ms as f64 / 1000.0)
        } else {
            String::new()
        }
    );
    match &a.out {
        Some(out) => {
            std::fs::write(out, &text).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote camera {} to {}", entry.id, out.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
