//! `[[armed_zone]]`, `[mqtt]` and `[[webhook]]` in site.toml: the alert path's own configuration.

use crate::config::{ConfigError, Fields, Loc, Source, parse_mqtt_url, parse_window, tables_of};

/// `[[armed_zone]]` in site.toml: a camera's zone whose motion raises alerts, always or in daily
/// windows of the site's local (standard) time.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmedZoneConfig {
    pub camera: String,
    /// Zone name as motion events report it, or `*` for the whole view.
    pub zone: String,
    /// `(start, end)` minutes after local midnight.
    pub windows: Vec<(u32, u32)>,
}

/// `[mqtt]` in site.toml: publish alert changes to a broker.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttConfig {
    /// `mqtt://host[:port]`.
    pub host: String,
    pub port: u16,
    /// Topics are `<topic_prefix>/alerts/<kind>/<severity>` (default `tianwang`).
    pub topic_prefix: String,
    pub client_id: String,
}

/// An outbound webhook (`[[webhook]]` in site.toml): every alert change is POSTed to it, signed.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    pub name: String,
    /// `http://host:port/path`.
    pub url: String,
    /// Environment variable holding the HMAC-SHA256 signing secret.
    pub secret_env: Option<String>,
}

pub fn read_armed(src: &Source, errs: &mut Vec<ConfigError>) -> Vec<ArmedZoneConfig> {
    let mut out = Vec::new();
    for (table, at) in tables_of(src, "armed_zone", errs) {
        let mut f = Fields::new(format!("armed_zone[{}]", out.len() + 1), at, src, table);
        let camera = f.req_str("camera", "the camera's id");
        let zone = f.str("zone").unwrap_or_else(|| "*".into());
        let mut windows = Vec::new();
        if f.has("schedule")
            && let Some(list) = f.str_list("schedule")
        {
            for w in list {
                match parse_window(&w) {
                    Some(x) => windows.push(x),
                    None => f.error("schedule", format!("{w:?}: expected HH:MM-HH:MM, e.g. 22:00-06:00")),
                }
            }
        }
        let ok = f.errs.is_empty();
        errs.extend(f.finish());
        if let (true, Some(camera)) = (ok, camera) {
            out.push(ArmedZoneConfig { camera, zone, windows });
        }
    }
    out
}

pub fn read_mqtt(src: &Source, errs: &mut Vec<ConfigError>) -> Option<MqttConfig> {
    let item = src.doc.get("mqtt")?;
    let at = Loc { file: src.path.clone(), line: src.line(item.span()) };
    let Some(table) = item.as_table_like() else {
        errs.push(ConfigError::at(&at, "mqtt", "expected a table [mqtt] with url, topic_prefix, client_id"));
        return None;
    };
    let mut f = Fields::new("mqtt", at, src, table);
    let url = f.req_str("url", "mqtt://host[:port]");
    let hp = url.as_deref().and_then(|u| match parse_mqtt_url(u) {
        Ok(hp) => Some(hp),
        Err(e) => {
            f.error("url", e);
            None
        }
    });
    let topic_prefix = f.str("topic_prefix").unwrap_or_else(|| "tianwang".into());
    if topic_prefix.is_empty() || topic_prefix.contains(['+', '#']) {
        f.error("topic_prefix", format!("{topic_prefix:?}: a topic prefix without wildcards"));
    }
    let client_id = f.str("client_id").unwrap_or_else(|| "tianwang".into());
    let ok = f.errs.is_empty();
    errs.extend(f.finish());
    let (host, port) = hp?;
    ok.then_some(MqttConfig { host, port, topic_prefix, client_id })
}

pub fn read_webhooks(src: &Source, errs: &mut Vec<ConfigError>) -> Vec<WebhookConfig> {
    let mut out: Vec<WebhookConfig> = Vec::new();
    for (table, at) in tables_of(src, "webhook", errs) {
        let mut f = Fields::new(format!("webhook[{}]", out.len() + 1), at, src, table);
        let name = f.req_str("name", "a name for the receiver");
        let url = f.req_str("url", "http://host:port/path");
        if let Some(u) = &url
            && !u.starts_with("http://")
        {
            let why = if u.starts_with("https://") {
                "https is not built in; point it at an http:// receiver or a local TLS relay"
            } else {
                "expected http://host:port/path"
            };
            f.error("url", format!("{u:?}: {why}"));
        }
        let secret_env = f.str("secret_env");
        if let Some(n) = &name
            && out.iter().any(|w| &w.name == n)
        {
            f.error("name", format!("{n:?} is used twice"));
        }
        let ok = f.errs.is_empty();
        errs.extend(f.finish());
        if let (true, Some(name), Some(url)) = (ok, name, url) {
            out.push(WebhookConfig { name, url, secret_env });
        }
    }
    out
}

/// `[[desk]]` in site.toml: a duty desk (值班台) and the grid cells (any level) it answers for.
/// An alert goes to the desk of its own cell, else of the nearest cell above it with one; left
/// unacknowledged, it reaches the next desk up at each escalation.
#[derive(Debug, Clone, PartialEq)]
pub struct DeskConfig {
    pub id: String,
    pub name: String,
    pub cells: Vec<String>,
    pub loc: Loc,
}

pub fn read_desks(src: &Source, errs: &mut Vec<ConfigError>) -> Vec<DeskConfig> {
    let mut out: Vec<DeskConfig> = Vec::new();
    for (i, (table, at)) in tables_of(src, "desk", errs).into_iter().enumerate() {
        let mut f = Fields::new(format!("desk[{}]", i + 1), at.clone(), src, table);
        let id = f.req_str("id", "the desk's id (operators' tokens name it)");
        if let Some(id) = &id {
            f.set_ctx(format!("desk[{id}]"));
            if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                f.error("id", format!("{id:?}: up to 64 letters, digits, '-', '_' and '.'"));
            }
            if out.iter().any(|d| &d.id == id) {
                f.error("id", format!("duplicate desk id {id:?}"));
            }
        }
        let name = f.str("name");
        let cells = if f.has("cells") {
            f.str_list("cells")
        } else {
            f.missing("cells", "the grid cells the desk answers for, e.g. [\"g1-erqi\"]");
            None
        };
        if cells.as_ref().is_some_and(|c| c.is_empty()) {
            f.error("cells", "empty; a desk answers for at least one grid cell");
        }
        let ok = f.errs.is_empty();
        errs.extend(f.finish());
        if let (true, Some(id), Some(cells)) = (ok, id, cells) {
            out.push(DeskConfig { name: name.unwrap_or_else(|| id.clone()), id, cells, loc: at });
        }
    }
    out
}

/// Every desk's cells must be grid cells (unless the cells come from a map file), and a cell
/// answers to one desk.
pub fn check_desks(
    desks: &[DeskConfig],
    grid: &[crate::config::GridCell],
    cells_from_map: bool,
    errs: &mut Vec<ConfigError>,
) {
    let owners = desks.iter().map(|d| (d.id.as_str(), d.cells.as_slice(), &d.loc));
    crate::config::check_cell_owners("desk", owners, grid, cells_from_map, errs);
}
