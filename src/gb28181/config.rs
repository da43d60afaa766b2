//! `[gb28181]` and `[[gb28181_device]]` (site.toml): the platform's SIP identity and port, the
//! keepalive policy, and the devices allowed to register with their passwords.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::config::{CameraKind, ConfigError, Fields, Loc, Owner, SecretRef, Source, check_gb_id, tables_of};

/// The platform's side of GB/T 28181.
#[derive(Debug, Clone, PartialEq)]
pub struct GbConfig {
    /// This platform's 20-digit SIP id (type 200, SIP server, by convention).
    pub id: String,
    /// The SIP domain (realm of the Digest challenge): the first 10 digits of `id` unless set.
    pub domain: String,
    /// UDP and TCP on this address.
    pub listen: SocketAddr,
    pub heartbeat_interval_s: u32,
    pub heartbeat_count: u32,
    /// The longest registration granted; a device asking for more gets this in the answer.
    pub max_expires_s: u32,
    /// Seconds a split Catalog answer may take to arrive in full before what came is stored.
    pub catalog_timeout_s: u32,
    /// The password of a device with no `[[gb28181_device]]` entry; without it such a device is refused.
    pub password: Option<SecretRef>,
    /// The address devices send live video to (SDP `c=`): set it when the platform is reached
    /// through NAT or has several addresses; by default, the local address that faces the device.
    pub media_ip: Option<IpAddr>,
    /// The ports live video is received on (inclusive); any free port when unset.
    pub media_ports: Option<(u16, u16)>,
    /// Seconds a device may take to answer an INVITE.
    pub invite_timeout_s: u32,
    /// The catalog subscription asked of each device (its changes come as NOTIFYs); 0: none.
    pub catalog_subscribe_s: u32,
    pub devices: Vec<GbDeviceConfig>,
    pub loc: Loc,
}

/// A device allowed to register.
#[derive(Debug, Clone, PartialEq)]
pub struct GbDeviceConfig {
    pub id: String,
    pub name: Option<String>,
    pub password: Option<SecretRef>,
    /// Where its channels sit when their civil code names no grid cell.
    pub grid_cell: Option<String>,
    pub owner: Owner,
    /// The kind its video channels get (a 121 "video checkpoint" channel is always a checkpoint).
    pub kind: CameraKind,
    pub heartbeat_interval_s: Option<u32>,
    pub heartbeat_count: Option<u32>,
    /// Live video over TCP (a camera with `transport = "tcp"`): the device connects to us
    /// (`Passive`, the default: works when the device is behind NAT) or we connect to it.
    pub stream_tcp: TcpSetup,
    pub loc: Loc,
}

/// Who opens a TCP media connection (RFC 4145 `a=setup`, as our offer says it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TcpSetup {
    /// We listen, the device connects.
    #[default]
    Passive,
    /// The device listens, we connect.
    Active,
}

impl std::str::FromStr for TcpSetup {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "passive" => Ok(TcpSetup::Passive),
            "active" => Ok(TcpSetup::Active),
            _ => {
                Err(format!("{s:?}: expected \"passive\" (the device connects to us) or \"active\" (we connect to it)"))
            }
        }
    }
}

fn secret(f: &mut Fields<'_>, at_file: &Path) -> Option<SecretRef> {
    match (f.has("password_env"), f.has("password_file")) {
        (true, true) => {
            f.error("password_file", "give either password_env or password_file, not both");
            None
        }
        (true, false) => f.str("password_env").map(SecretRef::Env),
        (false, true) => {
            let base = at_file.parent().unwrap_or(Path::new(".")).to_path_buf();
            f.str("password_file").map(|p| SecretRef::File(base.join(p)))
        }
        (false, false) => None,
    }
    .inspect(|s| {
        let key = if matches!(s, SecretRef::Env(_)) { "password_env" } else { "password_file" };
        if let Err(e) = s.resolve() {
            f.error(key, format!("missing secret: {e}"));
        }
    })
}

fn u32_in(f: &mut Fields<'_>, key: &str, range: std::ops::RangeInclusive<i64>) -> Option<u32> {
    if f.has(key) { f.int(key, range).map(|v| v as u32) } else { None }
}

/// Reads `[gb28181]` and `[[gb28181_device]]`; `None` when `[gb28181]` is absent (devices listed
/// without it are an error: nothing would listen for them).
pub fn read_gb28181(src: &Source, errs: &mut Vec<ConfigError>) -> Option<GbConfig> {
    let devices_at = tables_of(src, "gb28181_device", errs);
    let Some(item) = src.doc.get("gb28181") else {
        if let Some((_, at)) = devices_at.first() {
            errs.push(ConfigError::at(at, "gb28181_device", "devices are listed but there is no [gb28181] table"));
        }
        return None;
    };
    let at = Loc { file: src.path.clone(), line: src.line(item.span()) };
    let Some(table) = item.as_table_like() else {
        errs.push(ConfigError::at(&at, "gb28181", "expected a table [gb28181]"));
        return None;
    };
    let mut f = Fields::new("gb28181", at.clone(), src, table);
    let id = f.req_str("id", "this platform's 20-digit SIP id, e.g. \"41010000002000000001\"");
    if let Some(id) = &id
        && let Err(e) = check_gb_id(id)
    {
        f.error("id", e);
    }
    let domain = match f.str("domain") {
        Some(d) if d.len() == 10 && d.bytes().all(|b| b.is_ascii_digit()) => Some(d),
        Some(d) => {
            f.error("domain", format!("{d:?}: the SIP domain is 10 digits (the id's first 10)"));
            None
        }
        None => id.as_ref().filter(|i| i.len() >= 10).map(|i| i[..10].to_string()),
    };
    let listen = if f.has("listen") {
        f.parse::<SocketAddrText>("listen").map(|a| a.0)
    } else {
        Some(([0, 0, 0, 0], 5060).into())
    };
    let heartbeat_interval_s = u32_in(&mut f, "heartbeat_interval_s", 5..=3600).unwrap_or(60);
    let heartbeat_count = u32_in(&mut f, "heartbeat_count", 1..=10).unwrap_or(3);
    let max_expires_s = u32_in(&mut f, "max_expires_s", 60..=86_400).unwrap_or(3600);
    let catalog_timeout_s = u32_in(&mut f, "catalog_timeout_s", 1..=600).unwrap_or(30);
    let password = secret(&mut f, &src.path);
    let media_ip = if f.has("media_ip") { f.parse::<IpText>("media_ip").map(|a| Some(a.0)) } else { Some(None) };
    let media_ports =
        if f.has("media_ports") { f.parse::<PortRange>("media_ports").map(|r| Some(r.0)) } else { Some(None) };
    let invite_timeout_s = u32_in(&mut f, "invite_timeout_s", 1..=60).unwrap_or(10);
    let catalog_subscribe_s =
        if f.has("catalog_subscribe_s") { u32_in(&mut f, "catalog_subscribe_s", 0..=86_400) } else { Some(3600) };
    let ok = f.errs.is_empty();
    errs.extend(f.finish());

    let mut devices: Vec<GbDeviceConfig> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, (t, dat)) in devices_at.into_iter().enumerate() {
        let mut f = Fields::new(format!("gb28181_device[{}]", i + 1), dat.clone(), src, t);
        let id = f.req_str("id", "the device's 20-digit id");
        if let Some(id) = &id {
            f.set_ctx(format!("gb28181_device[{id}]"));
            if let Err(e) = check_gb_id(id) {
                f.error("id", e);
            }
            if !seen.insert(id.clone()) {
                f.error("id", format!("device {id} is listed twice"));
            }
        }
        let name = f.str("name");
        let dpw = secret(&mut f, &src.path);
        let grid_cell = f.str("grid_cell");
        let owner = if f.has("owner") { f.parse("owner") } else { Some(Owner::Public) };
        let kind = if f.has("kind") { f.parse("kind") } else { Some(CameraKind::Street) };
        let hi = u32_in(&mut f, "heartbeat_interval_s", 5..=3600);
        let hc = u32_in(&mut f, "heartbeat_count", 1..=10);
        let stream_tcp = if f.has("stream_tcp") { f.parse("stream_tcp") } else { Some(TcpSetup::Passive) };
        let dok = f.errs.is_empty();
        errs.extend(f.finish());
        if let (true, Some(id), Some(owner), Some(kind), Some(stream_tcp)) = (dok, id, owner, kind, stream_tcp) {
            devices.push(GbDeviceConfig {
                id,
                name,
                password: dpw,
                grid_cell,
                owner,
                kind,
                heartbeat_interval_s: hi,
                heartbeat_count: hc,
                stream_tcp,
                loc: dat,
            });
        }
    }
    let (true, Some(id), Some(domain), Some(listen), Some(media_ip), Some(media_ports), Some(catalog_subscribe_s)) =
        (ok, id, domain, listen, media_ip, media_ports, catalog_subscribe_s)
    else {
        return None;
    };
    Some(GbConfig {
        id,
        domain,
        listen,
        heartbeat_interval_s,
        heartbeat_count,
        max_expires_s,
        catalog_timeout_s,
        password,
        media_ip,
        media_ports,
        invite_timeout_s,
        catalog_subscribe_s,
        devices,
        loc: at,
    })
}

struct SocketAddrText(SocketAddr);

impl std::str::FromStr for SocketAddrText {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse().map(SocketAddrText).map_err(|_| format!("{s:?}: an address and port, e.g. \"0.0.0.0:5060\""))
    }
}

struct IpText(IpAddr);

impl std::str::FromStr for IpText {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse().map(IpText).map_err(|_| format!("{s:?}: an IP address, e.g. \"192.0.2.10\""))
    }
}

/// `"30000-30999"`.
struct PortRange((u16, u16));

impl std::str::FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?}: a port range \"FIRST-LAST\", e.g. \"30000-30999\"");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let (a, b): (u16, u16) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
        if a == 0 || a > b {
            return Err(bad());
        }
        Ok(PortRange((a, b)))
    }
}

impl GbConfig {
    pub fn device(&self, id: &str) -> Option<&GbDeviceConfig> {
        self.devices.iter().find(|d| d.id == id)
    }
}
