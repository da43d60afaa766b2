//! Onboarding: ask a device what it streams (clock, services, profiles, stream and snapshot
//! URIs) and write it as a `[[camera]]` entry of our configuration, with the stream URL free of
//! credentials and the password only named (`password_env` / `password_file`), never written.

use std::fmt::Write as _;
use std::time::Duration;

use reqwest::Url;

use super::device::{Device, DeviceInfo, MediaProfile, Services, strip_userinfo};
use super::soap::{Credentials, OnvifError};
use crate::config::{CameraId, CameraKind, Owner, Profile, RtspUrl, SecretRef};

/// What a device told us.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inspection {
    pub device_url: String,
    /// Device clock minus ours, ms.
    pub clock_offset_ms: i64,
    pub info: Option<DeviceInfo>,
    pub scopes: Vec<String>,
    pub services: Services,
    pub profiles: Vec<MediaProfile>,
    /// The profile whose stream the camera entry uses.
    pub chosen: MediaProfile,
    /// The stream URL (RTP unicast over RTSP) without any user or password.
    pub stream_url: String,
    /// The snapshot URL without any user or password, when the device gives one.
    pub snapshot_url: Option<String>,
}

impl Inspection {
    /// The value of the first `onvif://www.onvif.org/<kind>/…` scope.
    pub fn scope(&self, kind: &str) -> Option<String> {
        let prefix = format!("onvif://www.onvif.org/{kind}/");
        self.scopes.iter().find_map(|s| s.strip_prefix(&prefix)).map(super::discovery::percent_decode)
    }

    /// A camera id from the device: `onvif-<serial number>` (or `onvif-<host>-<port>`), letters,
    /// digits, `-` and `_` only.
    pub fn default_id(&self) -> CameraId {
        let serial = self.info.as_ref().map(|i| i.serial_number.clone()).filter(|s| !s.is_empty());
        let base = serial.unwrap_or_else(|| {
            let u = Url::parse(&self.device_url).ok();
            let host = u.as_ref().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
            let port = u.as_ref().and_then(Url::port_or_known_default).unwrap_or(80);
            format!("{host}-{port}")
        });
        let slug: String = format!("onvif-{base}")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
            .take(64)
            .collect();
        slug.parse().unwrap_or_else(|_| "onvif-camera".parse().expect("a valid id"))
    }

    /// A name from the device: its `name` scope, else manufacturer and model, else its address.
    pub fn default_name(&self) -> String {
        self.scope("name")
            .or_else(|| {
                self.info
                    .as_ref()
                    .map(|i| format!("{} {}", i.manufacturer, i.model).trim().to_string())
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| self.device_url.clone())
    }
}

/// Asks the device at `url` (its device service) what it streams: GetSystemDateAndTime (the
/// clock offset every later sign-in is corrected by), GetServices (or GetCapabilities),
/// GetDeviceInformation and GetScopes (when offered), GetProfiles, then GetStreamUri and
/// GetSnapshotUri for `profile_token`, or for the H.264/H.265 profile with the most pixels.
pub async fn inspect(
    url: Url,
    creds: Credentials,
    profile_token: Option<&str>,
    timeout: Duration,
) -> Result<Inspection, OnvifError> {
    let mut dev = Device::new(url.clone(), Some(creds), timeout)?;
    // A device that refuses GetSystemDateAndTime without sign-in is answered in our time.
    match dev.sync_clock().await {
        Ok(_) => {}
        Err(e @ (OnvifError::Unreachable { .. } | OnvifError::NotOnvif { .. })) => return Err(e),
        Err(_) => {}
    }
    let services = dev.services().await?;
    let media = services.media.clone().ok_or_else(|| OnvifError::Malformed {
        url: url.to_string(),
        op: "GetServices",
        what: "the device lists no media service".into(),
    })?;
    let info = optional(dev.information().await)?;
    let scopes = optional(dev.scopes().await)?.unwrap_or_default();
    let profiles = dev.profiles(&media).await?;
    let listed = || {
        profiles
            .iter()
            .map(|p| format!("{} ({})", p.token, p.encoding.as_deref().unwrap_or("no video encoder")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen =
        match profile_token {
            Some(t) => profiles.iter().find(|p| p.token == t).cloned().ok_or_else(|| {
                OnvifError::Input(format!("the device has no media profile {t:?}; it has: {}", listed()))
            })?,
            None => profiles
                .iter()
                .filter(|p| p.codec().is_some())
                .max_by_key(|p| u64::from(p.width.unwrap_or(0)) * u64::from(p.height.unwrap_or(0)))
                .cloned()
                .ok_or_else(|| {
                    OnvifError::Input(format!("no media profile streams H.264 or H.265; the device has: {}", listed()))
                })?,
        };
    let raw = dev.stream_uri(&media, &chosen.token).await?;
    let stream_url = strip_userinfo(&raw);
    if let Err(e) = stream_url.parse::<RtspUrl>() {
        return Err(OnvifError::Malformed { url: media, op: "GetStreamUri", what: format!("the stream URI: {e}") });
    }
    let snapshot_url = optional(dev.snapshot_uri(&media, &chosen.token).await)?.map(|s| strip_userinfo(&s));
    Ok(Inspection {
        device_url: url.to_string(),
        clock_offset_ms: dev.clock_offset_ms(),
        info,
        scopes,
        services,
        profiles,
        chosen,
        stream_url,
        snapshot_url,
    })
}

/// An operation the device may not offer: a fault is `None`; unreachable, refused sign-in and
/// the rest stay errors.
fn optional<T>(r: Result<T, OnvifError>) -> Result<Option<T>, OnvifError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(OnvifError::Fault { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What the camera entry says beyond what the device told: where it is and what it is for.
#[derive(Debug, Clone)]
pub struct CameraEntry {
    pub id: CameraId,
    pub name: String,
    pub username: String,
    /// Where the password is: only its variable's or file's name is written.
    pub password: SecretRef,
    pub profile: Profile,
    pub kind: CameraKind,
    pub owner: Owner,
    pub lon: f64,
    pub lat: f64,
    pub bearing_deg: f64,
    /// `None`: from `[defaults]` in site.toml.
    pub mounting_height_m: Option<f64>,
    /// `None`: from `[defaults]` in site.toml.
    pub hfov_deg: Option<f64>,
}

/// The camera file: a commented `[[camera]]` entry in our format (docs/CONFIG.md).
pub fn camera_toml(ins: &Inspection, e: &CameraEntry) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "# Onboarded by `tianwang onboard` from {}", one_line(&ins.device_url));
    if let Some(i) = &ins.info {
        let _ = writeln!(
            w,
            "# Device: {} {}, firmware {}, serial {}",
            one_line(&i.manufacturer),
            one_line(&i.model),
            one_line(&i.firmware_version),
            one_line(&i.serial_number)
        );
    }
    if let Some(loc) = ins.scope("location") {
        let _ = writeln!(w, "# Location scope: {}", one_line(&loc));
    }
    let p = &ins.chosen;
    let _ = writeln!(
        w,
        "# Media profile {:?} (token {:?}): {} {}x{}{}",
        one_line(&p.name),
        one_line(&p.token),
        one_line(p.encoding.as_deref().unwrap_or("?")),
        p.width.unwrap_or(0),
        p.height.unwrap_or(0),
        p.fps.map(|f| format!(" at {f} fps")).unwrap_or_default()
    );
    match &ins.snapshot_url {
        Some(u) => {
            let _ = writeln!(w, "# Snapshot (our format has no field for it): {}", one_line(u));
        }
        None => {
            let _ = writeln!(w, "# Snapshot: the device gives none");
        }
    }
    let _ = writeln!(w, "\n[[camera]]");
    let _ = writeln!(w, "id = {}", quote(e.id.as_str()));
    let _ = writeln!(w, "name = {}", quote(&e.name));
    let _ = writeln!(w, "url = {}", quote(&ins.stream_url));
    let _ = writeln!(w, "username = {}", quote(&e.username));
    match &e.password {
        SecretRef::Env(name) => {
            let _ = writeln!(w, "password_env = {}", quote(name));
        }
        SecretRef::File(path) => {
            let _ = writeln!(w, "password_file = {}", quote(&path.display().to_string()));
        }
    }
    if let Some(c) = p.codec() {
        let _ = writeln!(w, "codec = {}", quote(c.as_str()));
    }
    if let (Some(wd), Some(ht)) = (p.width, p.height) {
        let _ = writeln!(w, "resolution = {}", quote(&format!("{wd}x{ht}")));
    } else {
        let _ = writeln!(w, "# resolution: the profile gives none; from [defaults] in site.toml");
    }
    let _ = writeln!(w, "profile = {}", quote(e.profile.as_str()));
    let _ = writeln!(w, "kind = {}", quote(e.kind.as_str()));
    let _ = writeln!(w, "owner = {}", quote(e.owner.as_str()));
    let _ = writeln!(w, "lon = {}", e.lon);
    let _ = writeln!(w, "lat = {}", e.lat);
    let _ = writeln!(w, "bearing_deg = {}", e.bearing_deg);
    match e.mounting_height_m {
        Some(v) => {
            let _ = writeln!(w, "mounting_height_m = {v}");
        }
        None => {
            let _ = writeln!(w, "# mounting_height_m: from [defaults] in site.toml");
        }
    }
    match e.hfov_deg {
        Some(v) => {
            let _ = writeln!(w, "hfov_deg = {v}");
        }
        None => {
            let _ = writeln!(w, "# hfov_deg (or focal_length_mm and sensor_width_mm): from [defaults] in site.toml");
        }
    }
    s
}

/// A TOML basic string (JSON's escapes are TOML's).
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// Device-given text for a comment line: no line breaks or control characters.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}
