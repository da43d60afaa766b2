//! Domain types of the camera configuration: parsed, never merely validated.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($var:ident = $s:tt),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        pub enum $name { $( #[serde(rename = $s)] $var ),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }
            /// The accepted spellings, for error messages.
            pub fn choices() -> String {
                [$($s),+].join(", ")
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($name::$var),)+
                    _ => Err(format!("unknown value {:?}; expected one of {}", s, Self::choices())),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}
/// The string-enum pattern (serde name, `as_str`, `FromStr` with the choices, `Display`) for
/// other modules' stored kinds and statuses.
pub(crate) use str_enum;

str_enum!(
    /// What a camera is for; decides its place in coverage and maintenance priorities.
    CameraKind {
        Street = "street",
        Checkpoint = "checkpoint",
        Entrance = "entrance",
        Compound = "compound",
        RentalHousing = "rental-housing",
        Household = "household",
        Shop = "shop",
    }
);

str_enum!(
    /// Who paid for the camera (联网: government, companies and residents in one network).
    Owner { Public = "public", Enterprise = "enterprise", Resident = "resident" }
);

str_enum!(
    /// What the ingest pipeline delivers: plate-reading colour frames, small grey motion frames,
    /// or keyframes only for liveness and quality checks.
    Profile { Checkpoint = "checkpoint", Street = "street", Health = "health" }
);

str_enum!(
    /// RTSP lower transport.
    Transport { Tcp = "tcp", Udp = "udp", Auto = "auto" }
);

str_enum!(
    /// Codec hint; `auto` lets the pipeline choose from the stream's caps.
    Codec { H264 = "h264", H265 = "h265", Auto = "auto" }
);

str_enum!(
    /// Which DORI pixel-density table the site plans with (IEC 62676-4:2014 = EN 62676-4:2015, or the 2025 revision).
    DoriTable { Iec2014 = "iec62676-4:2014", Iec2025 = "iec62676-4:2025" }
);

str_enum!(
    /// The registry's view of a camera. Ingestion and maintenance refine `unknown` into the others.
    CameraStatus {
        Unknown = "unknown",
        Online = "online",
        Degraded = "degraded",
        Offline = "offline",
        Maintenance = "maintenance",
        Disabled = "disabled",
        Decommissioned = "decommissioned",
    }
);

str_enum!(
    /// Where a camera's motion events come from (`motion` in its entry): our detector on its
    /// frames, the device's own motion detection over ONVIF events, or nowhere.
    MotionKind { Detector = "detector", Onvif = "onvif", Off = "off" }
);

/// A camera's motion source, parsed: for ONVIF, the device service it subscribes at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MotionSource {
    /// The motion detector on the camera's frames (`street` profile, `[detect] motion`).
    Detector,
    /// The device's motion events by ONVIF pull-point subscription at this device service URL
    /// (`http://`, no credentials); the detector does not run on the camera.
    Onvif { device_url: String },
    /// No motion events from this camera.
    Off,
}

impl MotionSource {
    /// From `motion` and `onvif_url`; `host` is the stream's host (the default device address:
    /// port 80, `/onvif/device_service`), empty for a `gb28181://` stream.
    pub fn parse(kind: MotionKind, onvif_url: Option<&str>, host: &str) -> Result<Self, (&'static str, String)> {
        match (kind, onvif_url) {
            (MotionKind::Onvif, Some(u)) => {
                Ok(MotionSource::Onvif { device_url: onvif_device_url(u).map_err(|e| ("onvif_url", e))? })
            }
            (MotionKind::Onvif, None) if host.is_empty() => Err((
                "motion",
                "this stream has no host to find the ONVIF device at; give the device service as onvif_url".into(),
            )),
            (MotionKind::Onvif, None) => {
                let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
                Ok(MotionSource::Onvif { device_url: format!("http://{host}/onvif/device_service") })
            }
            (_, Some(_)) => Err(("onvif_url", "is used only with motion = \"onvif\"".into())),
            (MotionKind::Detector, None) => Ok(MotionSource::Detector),
            (MotionKind::Off, None) => Ok(MotionSource::Off),
        }
    }
}

/// An ONVIF device service address as configured: `http://HOST[:PORT][/PATH]` (path
/// `/onvif/device_service` when none), no credentials (the camera's `username` and password sign
/// the requests), no `https` (not built in; the password travels only as a digest).
pub fn onvif_device_url(s: &str) -> Result<String, String> {
    let Some(rest) = s.get(..7).filter(|p| p.eq_ignore_ascii_case("http://")).map(|_| &s[7..]) else {
        return Err(if s.to_ascii_lowercase().starts_with("https://") {
            format!(
                "{:?}: https is not built in; give the device's http:// address (requests carry a digest, not the password)",
                mask_credentials(s)
            )
        } else {
            format!("{:?}: expected http://HOST[:PORT][/PATH]", mask_credentials(s))
        });
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(format!(
            "{:?} carries credentials; the camera's username and password_env/password_file sign ONVIF requests",
            mask_credentials(s)
        ));
    }
    // A host name or IPv4 address, or an IPv6 address in brackets; a port in 1..=65535.
    let (host, port, v6) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, rest)) => (h, rest, true),
            None => ("", "", true),
        },
        None => match authority.find(':') {
            Some(i) => (&authority[..i], &authority[i..], false),
            None => (authority, "", false),
        },
    };
    let host_ok = !host.is_empty()
        && host.chars().all(|c| {
            if v6 {
                c.is_ascii_hexdigit() || c == ':' || c == '.'
            } else {
                c.is_ascii_alphanumeric() || "-._".contains(c)
            }
        });
    let port_ok = port.is_empty() || port.strip_prefix(':').and_then(|p| p.parse::<u16>().ok()).is_some_and(|p| p > 0);
    if !host_ok || !port_ok || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{s:?}: expected http://HOST[:PORT][/PATH] (a host name or address, a port number, a path without spaces)"
        ));
    }
    let path = if path.is_empty() || path == "/" { "/onvif/device_service" } else { path };
    Ok(format!("http://{authority}{path}"))
}

/// The parts of a GB/T 28181 20-digit device code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Gb28181Code {
    /// 8-digit administrative-division centre code (province, city, district, grass-roots unit).
    pub division: String,
    /// 2-digit industry code.
    pub industry: String,
    /// 3-digit device type (121 video checkpoint, 131 camera, 132 IP camera, ...).
    pub device_type: u16,
    /// 7-digit serial number.
    pub serial: String,
}

/// Device types a camera entry may carry: 121 video checkpoint, 131 camera, 132 IP camera.
pub const GB_CAMERA_TYPES: &[u16] = &[121, 131, 132];

/// Province-level division codes (GB/T 2260 first two digits).
const PROVINCES: &[u8] = &[
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63,
    64, 65, 71, 81, 82,
];

/// Checks a 20-digit GB/T 28181 id of any device type (platform, NVR, camera, alarm input, …).
pub fn check_gb_id(s: &str) -> Result<(), String> {
    if s.len() != 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("a GB/T 28181 code has exactly 20 digits; {s:?} has {} characters", s.chars().count()));
    }
    let province: u8 = s[0..2].parse().unwrap_or(0);
    if !PROVINCES.contains(&province) {
        return Err(format!("GB/T 28181 code {s}: {province:02} is not a province code (digits 1-2)"));
    }
    Ok(())
}

impl FromStr for Gb28181Code {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        check_gb_id(s)?;
        let device_type: u16 = s[10..13].parse().unwrap_or(0);
        if !GB_CAMERA_TYPES.contains(&device_type) {
            return Err(format!(
                "GB/T 28181 code {s}: device type {device_type:03} (digits 11-13) is not a camera; expected 121 (video checkpoint), 131 (camera) or 132 (IP camera)"
            ));
        }
        Ok(Self {
            division: s[0..8].to_string(),
            industry: s[8..10].to_string(),
            device_type,
            serial: s[13..20].to_string(),
        })
    }
}

/// A camera's stable id: a GB/T 28181 code, or a slug of letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct CameraId(String);

impl CameraId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The GB/T 28181 parts when the id is such a code.
    pub fn gb28181(&self) -> Option<Gb28181Code> {
        self.0.parse().ok()
    }
}

impl fmt::Display for CameraId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for CameraId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.bytes().all(|b| b.is_ascii_digit()) && s.len() >= 18 {
            // Looks like a GB/T 28181 code: validate it as one.
            s.parse::<Gb28181Code>()?;
            return Ok(Self(s.to_string()));
        }
        if s.len() > 64 {
            return Err(format!("{} characters; at most 64", s.len()));
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(format!("{s:?}: use a 20-digit GB/T 28181 code or letters, digits, '-' and '_' only"));
        }
        Ok(Self(s.to_string()))
    }
}

/// A camera's stream address, carrying no credentials: an RTSP URL (`rtsp://`, `rtsps://`,
/// `rtspt://`), or a channel of a GB/T 28181 device registered to this platform
/// (`gb28181://DEVICE-ID/CHANNEL-ID`), whose live video is asked for by INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RtspUrl(String);

impl RtspUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The port, 554 (322 for rtsps) when the URL gives none.
    pub fn port(&self) -> u16 {
        let rest = self.0.split_once("://").map(|x| x.1).unwrap_or("");
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let after_host = match authority.strip_prefix('[') {
            Some(v6) => v6.split_once(']').map(|x| x.1).unwrap_or(""),
            None => authority
                .split_once(':')
                .map(|x| x.1)
                .map(|p| &authority[authority.len() - p.len() - 1..])
                .unwrap_or(""),
        };
        match after_host.strip_prefix(':').and_then(|p| p.parse().ok()) {
            Some(p) => p,
            None if self.0.to_ascii_lowercase().starts_with("rtsps") => 322,
            None => 554,
        }
    }

    /// A channel of a GB/T 28181 device (`gb28181://DEVICE-ID/CHANNEL-ID`): (device, channel).
    /// `gb28181://ID` names a device that is its own channel (a camera registering by itself).
    pub fn gb28181(&self) -> Option<(&str, &str)> {
        let (scheme, rest) = self.0.split_once("://")?;
        if !scheme.eq_ignore_ascii_case("gb28181") {
            return None;
        }
        Some(match rest.trim_end_matches('/').split_once('/') {
            Some((device, channel)) => (device, channel),
            None => (rest.trim_end_matches('/'), rest.trim_end_matches('/')),
        })
    }

    pub fn host(&self) -> &str {
        let rest = self.0.split_once("://").map(|x| x.1).unwrap_or("");
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if let Some(v6) = authority.strip_prefix('[') {
            return v6.split(']').next().unwrap_or("");
        }
        authority.split(':').next().unwrap_or("")
    }
}

impl fmt::Display for RtspUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses an MQTT broker URL, `mqtt://host[:port]` (port 1883 when absent; no credentials).
pub fn parse_mqtt_url(url: &str) -> Result<(String, u16), String> {
    let rest = url.strip_prefix("mqtt://").ok_or_else(|| format!("{url:?}: expected mqtt://host[:port]"))?;
    let rest = rest.trim_end_matches('/');
    if rest.contains('@') {
        return Err("credentials in the URL are not accepted".into());
    }
    match rest.rsplit_once(':') {
        Some((h, p)) => {
            let port = p.parse::<u16>().map_err(|_| format!("{p:?} is not a port"))?;
            if h.is_empty() {
                return Err("missing host".into());
            }
            Ok((h.to_string(), port))
        }
        None if !rest.is_empty() => Ok((rest.to_string(), 1883)),
        None => Err("missing host".into()),
    }
}

/// Replaces any `user:password@` in a URL by `***@`: for logs and errors that must show a URL.
pub fn mask_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rfind('@') {
        Some(at) => format!("{scheme}://***@{}{tail}", &authority[at + 1..]),
        None => url.to_string(),
    }
}

impl FromStr for RtspUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(format!("{:?} is not a URL; expected rtsp://host[:port]/path", mask_credentials(s)));
        };
        if scheme.eq_ignore_ascii_case("gb28181") {
            return gb28181_url(s, rest);
        }
        if !matches!(scheme.to_ascii_lowercase().as_str(), "rtsp" | "rtsps" | "rtspt") {
            return Err(format!(
                "scheme {scheme:?} is not RTSP; expected rtsp://, rtsps:// or rtspt:// (or gb28181://DEVICE/CHANNEL)"
            ));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if authority.contains('@') {
            return Err(format!(
                "the URL carries credentials ({}); put the user name in `username` and the password in `password_env` (an environment variable) or `password_file` (a file), never in the URL",
                mask_credentials(s)
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| format!("{s:?}: unclosed '[' in host"))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{s:?} has no host"));
        }
        if !host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b)) {
            return Err(format!("{s:?}: host {host:?} has characters a host name cannot have"));
        }
        if let Some(p) = port {
            match p.parse::<u32>() {
                Ok(n) if (1..=65535).contains(&n) => {}
                _ => return Err(format!("{s:?}: port {p:?} is not a number in 1..65535")),
            }
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{s:?} contains whitespace"));
        }
        Ok(Self(s.to_string()))
    }
}

/// `gb28181://DEVICE[/CHANNEL]`: both 20-digit GB/T 28181 ids, nothing else.
fn gb28181_url(s: &str, rest: &str) -> Result<RtspUrl, String> {
    let ids: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    if ids.is_empty() || ids.len() > 2 {
        return Err(format!("{s:?}: expected gb28181://DEVICE-ID/CHANNEL-ID (20-digit GB/T 28181 ids)"));
    }
    for id in &ids {
        crate::config::check_gb_id(id).map_err(|e| format!("{s:?}: {e}"))?;
    }
    Ok(RtspUrl(format!("gb28181://{}", ids.join("/"))))
}

/// Where a camera's password is kept. The value itself is only read when a pipeline connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable's name.
    Env(String),
    /// A file holding the password (first line), path as configured.
    File(std::path::PathBuf),
}

impl SecretRef {
    /// Reads the secret. The error names the variable or file, never any content.
    pub fn resolve(&self) -> Result<Secret, String> {
        match self {
            SecretRef::Env(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(Secret(v)),
                Ok(_) => Err(format!("environment variable {name} is empty")),
                Err(_) => Err(format!("environment variable {name} is not set")),
            },
            SecretRef::File(path) => match std::fs::read_to_string(path) {
                Ok(v) => {
                    let v = v.lines().next().unwrap_or("").to_string();
                    if v.is_empty() { Err(format!("secret file {} is empty", path.display())) } else { Ok(Secret(v)) }
                }
                Err(e) => Err(format!("secret file {} cannot be read: {}", path.display(), e.kind())),
            },
        }
    }
}

/// A secret value. Its `Debug` and `Display` never show it; it has no `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn motion_sources() {
        let onvif = |u: &str| MotionSource::Onvif { device_url: u.into() };
        assert_eq!(
            MotionSource::parse(MotionKind::Onvif, None, "10.0.0.5"),
            Ok(onvif("http://10.0.0.5/onvif/device_service"))
        );
        assert_eq!(
            MotionSource::parse(MotionKind::Onvif, None, "fe80::1"),
            Ok(onvif("http://[fe80::1]/onvif/device_service"))
        );
        assert_eq!(
            MotionSource::parse(MotionKind::Onvif, Some("http://10.0.0.5:8080"), "x"),
            Ok(onvif("http://10.0.0.5:8080/onvif/device_service"))
        );
        assert_eq!(
            MotionSource::parse(MotionKind::Onvif, Some("HTTP://cam/onvif/dev"), ""),
            Ok(onvif("http://cam/onvif/dev"))
        );
        assert_eq!(MotionSource::parse(MotionKind::Detector, None, "h"), Ok(MotionSource::Detector));
        assert_eq!(MotionSource::parse(MotionKind::Off, None, "h"), Ok(MotionSource::Off));
        assert_eq!(MotionSource::parse(MotionKind::Onvif, None, "").unwrap_err().0, "motion");
        assert_eq!(MotionSource::parse(MotionKind::Detector, Some("http://cam"), "h").unwrap_err().0, "onvif_url");
        let e = onvif_device_url("http://admin:s3cret@cam/").unwrap_err();
        assert!(e.contains("credentials") && !e.contains("s3cret"), "{e}");
        let e = onvif_device_url("https://admin:s3cret@cam/").unwrap_err();
        assert!(e.contains("https") && !e.contains("s3cret"), "{e}");
        assert!(onvif_device_url("rtsp://cam/").is_err());
        assert!(onvif_device_url("http:///x").is_err());
        assert!(onvif_device_url("http://:80/x").is_err());
        assert!(onvif_device_url("http://ca m/").is_err());
    }

    #[test]
    fn mqtt_urls() {
        assert_eq!(parse_mqtt_url("mqtt://127.0.0.1:1883"), Ok(("127.0.0.1".into(), 1883)));
        assert_eq!(parse_mqtt_url("mqtt://broker"), Ok(("broker".into(), 1883)));
        assert!(parse_mqtt_url("tcp://x").is_err());
        assert!(parse_mqtt_url("mqtt://u:p@x:1").unwrap_err().contains("credentials"));
    }

    #[test]
    fn gb_codes() {
        let c: Gb28181Code = "41010000001320000001".parse().unwrap();
        assert_eq!(c.division, "41010000");
        assert_eq!(c.device_type, 132);
        assert_eq!(c.serial, "0000001");
        assert!("4101000000132000000".parse::<Gb28181Code>().is_err());
        assert!("99010000001320000001".parse::<Gb28181Code>().unwrap_err().contains("province"));
        assert!("41010000001180000001".parse::<Gb28181Code>().unwrap_err().contains("118"));
    }

    #[test]
    fn camera_ids() {
        assert!("cp-01".parse::<CameraId>().is_ok());
        assert!("41010000001210000001".parse::<CameraId>().unwrap().gb28181().is_some());
        assert!("410100000013200000012".parse::<CameraId>().is_err());
        assert!("a b".parse::<CameraId>().is_err());
        assert!("".parse::<CameraId>().is_err());
    }

    #[test]
    fn urls() {
        let u: RtspUrl = "rtsp://10.0.0.5:554/Streaming/Channels/101".parse().unwrap();
        assert_eq!(u.host(), "10.0.0.5");
        assert_eq!("rtsp://[::1]:8554/x".parse::<RtspUrl>().unwrap().host(), "::1");
        assert_eq!("rtsp://[::1]:8554/x".parse::<RtspUrl>().unwrap().port(), 8554);
        assert_eq!(u.port(), 554);
        assert_eq!("rtsp://h/x".parse::<RtspUrl>().unwrap().port(), 554);
        assert_eq!("rtsps://h/x".parse::<RtspUrl>().unwrap().port(), 322);
        let gb: RtspUrl = "gb28181://34020000001180000001/34020000001310000003".parse().unwrap();
        assert_eq!(gb.gb28181(), Some(("34020000001180000001", "34020000001310000003")));
        let own: RtspUrl = "GB28181://34020000001320000001/".parse().unwrap();
        assert_eq!(own.gb28181(), Some(("34020000001320000001", "34020000001320000001")));
        assert_eq!("rtsp://h/x".parse::<RtspUrl>().unwrap().gb28181(), None);
        for bad in ["gb28181://3402000000118000001/34020000001310000003", "gb28181://a/b/c", "gb28181://"] {
            assert!(bad.parse::<RtspUrl>().is_err(), "{bad}");
        }
        let e = "rtsp://admin:hunter2@10.0.0.5/x".parse::<RtspUrl>().unwrap_err();
        assert!(e.contains("password_env"), "{e}");
        assert!(!e.contains("hunter2") && !e.contains("admin"), "{e}");
        assert!("http://x/y".parse::<RtspUrl>().is_err());
        assert!("rtsp://x:99999/y".parse::<RtspUrl>().is_err());
        assert!("rtsp:///y".parse::<RtspUrl>().is_err());
    }

    #[test]
    fn masking() {
        assert_eq!(mask_credentials("rtsp://u:p@h:1/a@b"), "rtsp://***@h:1/a@b");
        assert_eq!(mask_credentials("rtsp://h/x"), "rtsp://h/x");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret("hunter2".into());
        assert!(!format!("{s:?} {s}").contains("hunter2"));
    }

    #[test]
    fn enums_round_trip() {
        for k in CameraKind::ALL {
            assert_eq!(k.as_str().parse::<CameraKind>().unwrap(), *k);
        }
        assert!("tower".parse::<CameraKind>().unwrap_err().contains("rental-housing"));
    }
}
