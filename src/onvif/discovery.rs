//! WS-Discovery: a Probe for `dn:NetworkVideoTransmitter`, sent to the multicast group
//! `239.255.255.250:3702` (or to given addresses, for routed networks and tests), and the
//! ProbeMatches that come back until the timeout, one entry per device (endpoint reference).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use super::xml::{self, SOAP12, WSA, WSD};

/// The WS-Discovery multicast group and port.
pub const MULTICAST: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(239, 255, 255, 250)), 3702);
/// WS-Discovery 1.1's namespace, which a few devices answer in.
const WSD11: &str = "http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01";

/// One device that answered.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProbeMatch {
    /// The endpoint reference (`urn:uuid:…`): the device's identity across addresses.
    pub endpoint: String,
    /// Device service addresses.
    pub xaddrs: Vec<String>,
    pub types: Vec<String>,
    pub scopes: Vec<String>,
    /// Where the answer came from.
    pub from: SocketAddr,
}

impl ProbeMatch {
    /// The value of the first `onvif://www.onvif.org/<kind>/…` scope, percent-decoded.
    pub fn scope(&self, kind: &str) -> Option<String> {
        let prefix = format!("onvif://www.onvif.org/{kind}/");
        self.scopes.iter().find_map(|s| s.strip_prefix(&prefix)).map(percent_decode)
    }
}

/// Where to probe and for how long.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Addresses to send the Probe to (unicast, or a multicast group); the WS-Discovery group
    /// when empty.
    pub targets: Vec<SocketAddr>,
    /// How long to collect answers.
    pub timeout: Duration,
    /// The local address to probe from: a multicast probe leaves by the interface that holds it
    /// (a host on several networks picks the cameras' one); the system's choice when `None`.
    pub interface: Option<Ipv4Addr>,
}

/// Sends the Probe (twice, as WS-Discovery asks for UDP) and collects the matches that relate to
/// it until the timeout, merged per endpoint reference, in the order they first answered.
pub async fn discover(probe: &Probe) -> std::io::Result<Vec<ProbeMatch>> {
    // Bound to an interface's address, multicast leaves by that interface (Linux picks the
    // device from a bound source address when no IP_MULTICAST_IF is set).
    let sock = UdpSocket::bind((probe.interface.unwrap_or(Ipv4Addr::UNSPECIFIED), 0)).await?;
    sock.set_multicast_ttl_v4(1)?;
    sock.set_multicast_loop_v4(true)?;
    let targets = if probe.targets.is_empty() { vec![MULTICAST] } else { probe.targets.clone() };
    let message_id = format!("urn:uuid:{}", uuid_v4());
    let msg = probe_message(&message_id);
    let deadline = tokio::time::Instant::now() + probe.timeout;
    let repeat_at = tokio::time::Instant::now() + (probe.timeout / 4).min(Duration::from_millis(500));
    for t in &targets {
        sock.send_to(msg.as_bytes(), t).await?;
    }
    let mut repeated = false;
    let mut out: Vec<ProbeMatch> = Vec::new();
    let mut buf = vec![0u8; 65_535];
    loop {
        let until = if repeated { deadline } else { repeat_at.min(deadline) };
        match tokio::time::timeout_at(until, sock.recv_from(&mut buf)).await {
            Ok(Ok((n, from))) => {
                let Ok(text) = std::str::from_utf8(&buf[..n]) else { continue };
                for m in parse_matches(text, &message_id, from) {
                    match out.iter_mut().find(|o| o.endpoint == m.endpoint) {
                        Some(o) => {
                            for x in m.xaddrs {
                                if !o.xaddrs.contains(&x) {
                                    o.xaddrs.push(x);
                                }
                            }
                        }
                        None => out.push(m),
                    }
                }
            }
            // An ICMP refusal from a unicast target shows up as an error on the next receive.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Ok(Err(e)) => return Err(e),
            Err(_) if !repeated && until < deadline => {
                repeated = true;
                for t in &targets {
                    sock.send_to(msg.as_bytes(), t).await?;
                }
            }
            Err(_) => return Ok(out),
        }
    }
}

/// The Probe message (SOAP 1.2 over UDP, WS-Discovery 2005/04).
pub fn probe_message(message_id: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{SOAP12}" xmlns:a="{WSA}" xmlns:d="{WSD}" xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><s:Header><a:MessageID>{message_id}</a:MessageID><a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To><a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action></s:Header><s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body></s:Envelope>"#
    )
}

/// The ProbeMatch entries of a datagram that answers `message_id` (an answer that names another
/// message in `RelatesTo` is someone else's; one without `RelatesTo` is taken).
pub fn parse_matches(text: &str, message_id: &str, from: SocketAddr) -> Vec<ProbeMatch> {
    let Ok(doc) = roxmltree::Document::parse(text) else { return Vec::new() };
    let root = doc.root_element();
    let relates = root.descendants().find(|n| n.is_element() && n.tag_name().name() == "RelatesTo").and_then(xml::text);
    if relates.is_some_and(|r| r != message_id) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for ns in [WSD, WSD11] {
        for m in xml::find_all(root, ns, "ProbeMatch") {
            let list = |local: &str| -> Vec<String> {
                xml::child(m, ns, local)
                    .and_then(xml::text)
                    .map(|t| t.split_whitespace().map(str::to_string).collect())
                    .unwrap_or_default()
            };
            let endpoint = m
                .children()
                .find(|c| c.is_element() && c.tag_name().name() == "EndpointReference")
                .and_then(|e| e.children().find(|c| c.is_element() && c.tag_name().name() == "Address"))
                .and_then(xml::text);
            let xaddrs = list("XAddrs");
            let Some(endpoint) = endpoint.or_else(|| xaddrs.first().cloned()) else { continue };
            out.push(ProbeMatch { endpoint, xaddrs, types: list("Types"), scopes: list("Scopes"), from });
        }
    }
    out
}

pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    const MATCH: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsdd="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:tdn="http://www.onvif.org/ver10/network/wsdl">
<SOAP-ENV:Header><wsa:RelatesTo>urn:uuid:1</wsa:RelatesTo></SOAP-ENV:Header>
<SOAP-ENV:Body><wsdd:ProbeMatches><wsdd:ProbeMatch>
<wsa:EndpointReference><wsa:Address>urn:uuid:abc</wsa:Address></wsa:EndpointReference>
<wsdd:Types>tdn:NetworkVideoTransmitter</wsdd:Types>
<wsdd:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/name/Gate%20North onvif://www.onvif.org/hardware/IPC-1 onvif://www.onvif.org/location/city/zhengzhou</wsdd:Scopes>
<wsdd:XAddrs>http://10.0.0.5/onvif/device_service http://[fe80::1]/onvif/device_service</wsdd:XAddrs>
<wsdd:MetadataVersion>1</wsdd:MetadataVersion>
</wsdd:ProbeMatch></wsdd:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;

    #[test]
    fn probe_matches_with_any_prefixes() {
        let from: SocketAddr = "10.0.0.5:3702".parse().unwrap();
        let m = parse_matches(MATCH, "urn:uuid:1", from);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].endpoint, "urn:uuid:abc");
        assert_eq!(m[0].xaddrs.len(), 2);
        assert_eq!(m[0].scope("name").as_deref(), Some("Gate North"));
        assert_eq!(m[0].scope("hardware").as_deref(), Some("IPC-1"));
        assert_eq!(m[0].scope("location").as_deref(), Some("city/zhengzhou"));
        assert!(parse_matches(MATCH, "urn:uuid:2", from).is_empty(), "an answer to another probe");
        assert!(parse_matches("not xml", "urn:uuid:1", from).is_empty());
        let probe = probe_message("urn:uuid:1");
        assert!(roxmltree::Document::parse(&probe).is_ok());
        assert_eq!(uuid_v4().len(), 36);
    }
}
