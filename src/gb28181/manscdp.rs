//! MANSCDP, the XML that GB/T 28181 carries in SIP MESSAGE bodies (`Application/MANSCDP+xml`):
//! reading what devices send (keepalives, catalogs, device info, alarms) and writing our queries.
//! Sans-IO: bytes in, typed values out, every failure a clear error.
//!
//! Devices declare `encoding="GB2312"` (the standard's examples do) but many send UTF-8; some
//! send GBK or GB18030 bytes under either declaration. The body is read as UTF-8 when it is valid
//! UTF-8, otherwise as GB18030 (a superset of GB2312 and GBK), whatever it declares.

use std::fmt::Write as _;

/// The largest body read (a Catalog page of a few dozen items is ~20 KB; devices split larger
/// catalogs over several messages).
pub const MAX_BODY: usize = 256 * 1024;
/// Items read from one Catalog message at most.
pub const MAX_ITEMS: usize = 2_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManscdpError {
    #[error("body of {0} bytes is larger than {MAX_BODY}")]
    TooLarge(usize),
    #[error("body is not XML: {0}")]
    NotXml(String),
    #[error("<{0}> has no {1}")]
    Missing(String, &'static str),
    #[error("{0} is not a number: {1:?}")]
    NotNumber(&'static str, String),
}

/// A MANSCDP message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Keepalive {
        device_id: String,
        status_ok: bool,
    },
    Catalog(CatalogPage),
    DeviceInfo(DeviceInfo),
    Alarm(AlarmNotice),
    /// A command we do not act on (its root element and CmdType), acknowledged and logged.
    Other {
        root: String,
        cmd: String,
    },
}

/// One message of a Catalog response (`SumNum` items in all, this one carrying some of them).
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogPage {
    /// A `Notify` (a change the device reports by itself: items added or updated, never a full
    /// listing) rather than the `Response` to our query.
    pub notify: bool,
    pub device_id: String,
    pub sn: u64,
    pub sum_num: usize,
    pub items: Vec<CatalogItem>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CatalogItem {
    pub id: String,
    pub name: String,
    pub manufacturer: String,
    pub model: String,
    pub owner: String,
    pub civil_code: String,
    pub address: String,
    pub parent_id: String,
    /// `Status` ON/OFF (some devices send OK/ONLINE/OFFLINE); `None` when absent or unreadable.
    pub online: Option<bool>,
    /// WGS84 when the device gives a position (0,0 and out-of-range values are dropped).
    pub position: Option<(f64, f64)>,
    /// In a catalog notification (`Event`, §A.2.5): what happened to the item.
    pub event: Option<CatalogEvent>,
}

/// What a catalog notification says of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogEvent {
    On,
    Off,
    /// Video lost (`VLOST`).
    VideoLost,
    /// Out of order (`DEFECT`).
    Defect,
    Add,
    /// Removed from the device (`DEL`).
    Del,
    Update,
}

impl CatalogEvent {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "ON" => CatalogEvent::On,
            "OFF" => CatalogEvent::Off,
            "VLOST" => CatalogEvent::VideoLost,
            "DEFECT" => CatalogEvent::Defect,
            "ADD" => CatalogEvent::Add,
            "DEL" => CatalogEvent::Del,
            "UPDATE" => CatalogEvent::Update,
            _ => return None,
        })
    }

    /// Why the item is offline, for an event that says it is.
    pub fn offline_reason(self) -> Option<&'static str> {
        match self {
            CatalogEvent::Off => Some("reported OFF"),
            CatalogEvent::VideoLost => Some("reported video lost (VLOST)"),
            CatalogEvent::Defect => Some("reported out of order (DEFECT)"),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceInfo {
    pub device_id: String,
    pub name: String,
    pub manufacturer: String,
    pub model: String,
    pub firmware: String,
    pub channels: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlarmNotice {
    /// The alarming channel (or the device itself).
    pub device_id: String,
    pub sn: u64,
    /// 1 (first, most urgent) to 4.
    pub priority: u8,
    /// 1 phone, 2 device, 3 SMS, 4 GPS, 5 video, 6 device fault, 7 other.
    pub method: u8,
    pub alarm_type: Option<u16>,
    pub time: String,
    pub description: String,
    pub position: Option<(f64, f64)>,
}

/// Decodes a body to text (see the module comment on encodings).
pub fn decode(body: &[u8]) -> Result<String, ManscdpError> {
    if body.len() > MAX_BODY {
        return Err(ManscdpError::TooLarge(body.len()));
    }
    match std::str::from_utf8(body) {
        Ok(s) => Ok(s.to_string()),
        Err(_) => {
            let (text, _, _) = encoding_rs::GB18030.decode(body);
            Ok(text.into_owned())
        }
    }
}

/// Reads a MANSCDP body.
pub fn parse(body: &[u8]) -> Result<Message, ManscdpError> {
    let text = decode(body)?;
    // roxmltree reads text it is given; the declaration's encoding is the bytes' business, done above.
    let text = strip_declaration(&text);
    let doc = roxmltree::Document::parse_with_options(
        text,
        roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: 200_000, ..Default::default() },
    )
    .map_err(|e| ManscdpError::NotXml(e.to_string()))?;
    let root = doc.root_element();
    let root_name = root.tag_name().name().to_string();
    let cmd = child_text(root, "CmdType").unwrap_or_default();
    let device_id = child_text(root, "DeviceID").unwrap_or_default();
    let need_id = |id: &str| {
        if id.is_empty() { Err(ManscdpError::Missing(root_name.clone(), "DeviceID")) } else { Ok(()) }
    };
    let sn = match child_text(root, "SN") {
        Some(s) if !s.is_empty() => s.parse::<u64>().map_err(|_| ManscdpError::NotNumber("SN", s.clone()))?,
        _ => 0,
    };
    Ok(match (root_name.as_str(), cmd.as_str()) {
        ("Notify", "Keepalive") => {
            need_id(&device_id)?;
            let status_ok = child_text(root, "Status").is_none_or(|s| s.eq_ignore_ascii_case("OK"));
            Message::Keepalive { device_id, status_ok }
        }
        ("Response", "Catalog") | ("Notify", "Catalog") => {
            need_id(&device_id)?;
            let sum_num = number(root, "SumNum")?.unwrap_or(0) as usize;
            let mut items = Vec::new();
            if let Some(list) = child(root, "DeviceList") {
                for item in list.children().filter(|n| n.is_element() && n.tag_name().name() == "Item") {
                    if items.len() >= MAX_ITEMS {
                        break;
                    }
                    if let Some(i) = catalog_item(item) {
                        items.push(i);
                    }
                }
            }
            Message::Catalog(CatalogPage { notify: root_name == "Notify", device_id, sn, sum_num, items })
        }
        ("Response", "DeviceInfo") => {
            need_id(&device_id)?;
            Message::DeviceInfo(DeviceInfo {
                device_id,
                name: child_text(root, "DeviceName").unwrap_or_default(),
                manufacturer: child_text(root, "Manufacturer").unwrap_or_default(),
                model: child_text(root, "Model").unwrap_or_default(),
                firmware: child_text(root, "Firmware").unwrap_or_default(),
                channels: number(root, "Channel")?.map(|n| n.min(u64::from(u32::MAX)) as u32),
            })
        }
        ("Notify", "Alarm") => {
            need_id(&device_id)?;
            let alarm_type =
                child(root, "Info").and_then(|i| child_text(i, "AlarmType")).and_then(|t| t.parse::<u16>().ok());
            Message::Alarm(AlarmNotice {
                device_id,
                sn,
                priority: number(root, "AlarmPriority")?.unwrap_or(4).clamp(1, 4) as u8,
                method: number(root, "AlarmMethod")?.unwrap_or(7).min(9) as u8,
                alarm_type,
                time: child_text(root, "AlarmTime").unwrap_or_default(),
                description: child_text(root, "AlarmDescription").unwrap_or_default(),
                position: position(root),
            })
        }
        _ => Message::Other { root: root_name, cmd },
    })
}

fn strip_declaration(text: &str) -> &str {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with("<?xml")
        && let Some(end) = t.find("?>")
    {
        return &t[end + 2..];
    }
    t
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|n| n.is_element() && n.tag_name().name().eq_ignore_ascii_case(name))
}

fn child_text(node: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    child(node, name).map(|n| n.text().unwrap_or("").trim().to_string())
}

fn number(node: roxmltree::Node<'_, '_>, name: &'static str) -> Result<Option<u64>, ManscdpError> {
    match child_text(node, name) {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s.parse::<u64>().map(Some).map_err(|_| ManscdpError::NotNumber(name, s.chars().take(40).collect())),
    }
}

fn position(node: roxmltree::Node<'_, '_>) -> Option<(f64, f64)> {
    let lon: f64 = child_text(node, "Longitude")?.parse().ok()?;
    let lat: f64 = child_text(node, "Latitude")?.parse().ok()?;
    let valid = lon.is_finite() && lat.is_finite() && lon.abs() <= 180.0 && lat.abs() <= 90.0;
    (valid && !(lon == 0.0 && lat == 0.0)).then_some((lon, lat))
}

fn catalog_item(item: roxmltree::Node<'_, '_>) -> Option<CatalogItem> {
    let id = child_text(item, "DeviceID")?;
    if id.is_empty() {
        return None;
    }
    let event = child_text(item, "Event").and_then(|e| CatalogEvent::parse(&e));
    let online = child_text(item, "Status")
        .and_then(|s| match s.to_ascii_uppercase().as_str() {
            "ON" | "OK" | "ONLINE" => Some(true),
            "OFF" | "OFFLINE" => Some(false),
            _ => None,
        })
        .or(match event {
            Some(CatalogEvent::On) => Some(true),
            Some(e) if e.offline_reason().is_some() => Some(false),
            _ => None,
        });
    Some(CatalogItem {
        id,
        name: child_text(item, "Name").unwrap_or_default(),
        manufacturer: child_text(item, "Manufacturer").unwrap_or_default(),
        model: child_text(item, "Model").unwrap_or_default(),
        owner: child_text(item, "Owner").unwrap_or_default(),
        civil_code: child_text(item, "CivilCode").unwrap_or_default(),
        address: child_text(item, "Address").unwrap_or_default(),
        parent_id: child_text(item, "ParentID").unwrap_or_default(),
        online,
        position: position(item),
        event,
    })
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A query to a device (`Catalog`, `DeviceInfo`, `DeviceStatus`), UTF-8 declared as such.
pub fn query(cmd: &str, sn: u64, device_id: &str) -> Vec<u8> {
    let mut s = String::new();
    let _ = write!(
        s,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<Query>\r\n<CmdType>{}</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{}</DeviceID>\r\n</Query>\r\n",
        escape(cmd),
        escape(device_id)
    );
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_catalog_alarm_and_device_info_are_read() {
        let k = br#"<?xml version="1.0" encoding="GB2312"?>
<Notify><CmdType>Keepalive</CmdType><SN>43</SN><DeviceID>41010000001180000001</DeviceID><Status>OK</Status></Notify>"#;
        assert_eq!(parse(k).unwrap(), Message::Keepalive { device_id: "41010000001180000001".into(), status_ok: true });

        let (gbk, _, _) = encoding_rs::GBK.encode(
            "<?xml version=\"1.0\" encoding=\"GB2312\"?>\n<Response><CmdType>Catalog</CmdType><SN>7</SN>\
             <DeviceID>41010000001180000001</DeviceID><SumNum>3</SumNum><DeviceList Num=\"2\">\
             <Item><DeviceID>41010000001320000001</DeviceID><Name>二七广场东</Name><CivilCode>410103</CivilCode>\
             <Status>ON</Status><Longitude>113.66</Longitude><Latitude>34.75</Latitude></Item>\
             <Item><DeviceID>41010000001320000002</DeviceID><Name>二七广场西</Name><Status>OFF</Status>\
             <Longitude>0</Longitude><Latitude>0</Latitude></Item></DeviceList></Response>",
        );
        assert!(std::str::from_utf8(&gbk).is_err(), "the test body must really be GBK");
        let Message::Catalog(page) = parse(&gbk).unwrap() else { panic!("not a catalog") };
        assert_eq!((page.sn, page.sum_num, page.items.len()), (7, 3, 2));
        assert_eq!(page.items[0].name, "二七广场东");
        assert_eq!(page.items[0].online, Some(true));
        assert_eq!(page.items[0].position, Some((113.66, 34.75)));
        assert_eq!(page.items[1].online, Some(false));
        assert_eq!(page.items[0].event, None);
        assert_eq!(page.items[1].position, None, "0,0 is no position");

        let a = "<Notify><CmdType>Alarm</CmdType><SN>1</SN><DeviceID>41010000001340000001</DeviceID>\
                 <AlarmPriority>1</AlarmPriority><AlarmMethod>2</AlarmMethod><AlarmTime>2026-12-06T08:00:00</AlarmTime>\
                 <Info><AlarmType>1</AlarmType></Info></Notify>";
        let Message::Alarm(al) = parse(a.as_bytes()).unwrap() else { panic!("not an alarm") };
        assert_eq!((al.priority, al.method, al.alarm_type), (1, 2, Some(1)));

        let d = "<Response><CmdType>DeviceInfo</CmdType><SN>2</SN><DeviceID>41010000001180000001</DeviceID>\
                 <Manufacturer>Hikvision</Manufacturer><Channel>8</Channel></Response>";
        let Message::DeviceInfo(info) = parse(d.as_bytes()).unwrap() else { panic!("not device info") };
        assert_eq!((info.manufacturer.as_str(), info.channels), ("Hikvision", Some(8)));
    }

    #[test]
    fn catalog_notifications_carry_their_events() {
        let n = "<Notify><CmdType>Catalog</CmdType><SN>9</SN><DeviceID>41010000001180000001</DeviceID>\
                 <SumNum>4</SumNum><DeviceList Num=\"4\">\
                 <Item><DeviceID>41010000001310000001</DeviceID><Event>DEL</Event></Item>\
                 <Item><DeviceID>41010000001310000002</DeviceID><Event>VLOST</Event></Item>\
                 <Item><DeviceID>41010000001310000003</DeviceID><Event>on</Event></Item>\
                 <Item><DeviceID>41010000001310000004</DeviceID><Name>new</Name><Event>ADD</Event><Status>OFF</Status></Item>\
                 </DeviceList></Notify>";
        let Message::Catalog(page) = parse(n.as_bytes()).unwrap() else { panic!("not a catalog") };
        assert!(page.notify);
        let got: Vec<_> = page.items.iter().map(|i| (i.event, i.online)).collect();
        assert_eq!(
            got,
            [
                (Some(CatalogEvent::Del), None),
                (Some(CatalogEvent::VideoLost), Some(false)),
                (Some(CatalogEvent::On), Some(true)),
                (Some(CatalogEvent::Add), Some(false)),
            ]
        );
        assert_eq!(CatalogEvent::Defect.offline_reason(), Some("reported out of order (DEFECT)"));
    }

    #[test]
    fn bad_bodies_are_errors_that_say_what() {
        assert!(matches!(parse(b"not xml at all"), Err(ManscdpError::NotXml(_))));
        assert!(matches!(parse(b"<Notify><CmdType>Keepalive</CmdType></Notify>"), Err(ManscdpError::Missing(..))));
        assert!(matches!(
            parse(b"<Notify><CmdType>Keepalive</CmdType><SN>x1</SN><DeviceID>1</DeviceID></Notify>"),
            Err(ManscdpError::NotNumber("SN", _))
        ));
        assert!(matches!(parse(&vec![b' '; MAX_BODY + 1]), Err(ManscdpError::TooLarge(_))));
        let dtd = b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]><Notify>&a;</Notify>";
        assert!(matches!(parse(dtd), Err(ManscdpError::NotXml(_))), "no DTDs, no entity expansion");
        assert_eq!(
            parse(b"<Control><CmdType>DeviceControl</CmdType></Control>").unwrap(),
            Message::Other { root: "Control".into(), cmd: "DeviceControl".into() }
        );
    }

    #[test]
    fn queries_escape_what_they_carry() {
        let q = String::from_utf8(query("Catalog", 5, "4101<&>")).unwrap();
        assert!(q.contains("<DeviceID>4101&lt;&amp;&gt;</DeviceID>") && q.contains("<SN>5</SN>"), "{q}");
    }
}
