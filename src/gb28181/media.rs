//! Live video by INVITE: the SDP we offer (GB/T 28181-2016 §C.2: `s=Play`, MPEG-PS on payload
//! 96, the `y=` SSRC, RFC 4145 `a=setup` for TCP) and what we read from the device's answer.
//! Pure functions; the call itself is the server's (`GbServer::invite`).

use std::net::{IpAddr, SocketAddr};

use super::config::TcpSetup;

/// How the stream is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamTransport {
    Udp,
    /// RTP over TCP (RFC 4571), with who connects.
    Tcp(TcpSetup),
}

/// Our offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The platform's id (`o=` user).
    pub platform: String,
    /// Where the device sends (UDP) or connects (TCP passive) to.
    pub ip: IpAddr,
    /// Our receiving port; for TCP active no port is ours to give (9, the discard port, by
    /// convention).
    pub port: u16,
    pub transport: StreamTransport,
    pub ssrc: u32,
}

/// The SSRC of a live stream (§9.2.1 and annex F): ten decimal digits, `0` for live, digits 4–8
/// of the SIP domain, then a 4-digit serial.
pub fn live_ssrc(domain: &str, serial: u32) -> u32 {
    let middle: u32 = domain.get(3..8).and_then(|d| d.parse().ok()).unwrap_or(0);
    middle * 10_000 + serial % 10_000
}

/// The offer's text.
pub fn offer_sdp(o: &Offer) -> String {
    let family = if o.ip.is_ipv6() { "IP6" } else { "IP4" };
    let (proto, port) = match o.transport {
        StreamTransport::Udp => ("RTP/AVP", o.port),
        StreamTransport::Tcp(TcpSetup::Passive) => ("TCP/RTP/AVP", o.port),
        StreamTransport::Tcp(TcpSetup::Active) => ("TCP/RTP/AVP", 9),
    };
    let mut s = format!(
        "v=0\r\no={} 0 0 IN {family} {ip}\r\ns=Play\r\nc=IN {family} {ip}\r\nt=0 0\r\nm=video {port} {proto} 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n",
        o.platform,
        ip = o.ip
    );
    if let StreamTransport::Tcp(setup) = o.transport {
        let role = match setup {
            TcpSetup::Passive => "passive",
            TcpSetup::Active => "active",
        };
        s.push_str(&format!("a=setup:{role}\r\na=connection:new\r\n"));
    }
    s.push_str(&format!("y={:010}\r\n", o.ssrc));
    s
}

/// What the device's answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Its address (`c=`, else `o=`) and the `m=video` port.
    pub remote: SocketAddr,
    /// The encoding of the first format of `m=video` (`PS`, `H264`, …).
    pub encoding: String,
    pub tcp: bool,
    pub ssrc: Option<u32>,
}

/// Reads an SDP answer; the error is a sentence for the camera's status.
pub fn parse_answer(body: &[u8]) -> Result<Answer, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the answer's SDP is not UTF-8 text".to_string())?;
    let (mut c_ip, mut o_ip, mut media, mut ssrc) = (None, None, None, None);
    let mut maps: Vec<(String, String)> = Vec::new();
    let mut in_video = false;
    for line in text.lines().map(str::trim) {
        let Some((k, v)) = line.split_once('=') else { continue };
        match k {
            "o" => o_ip = v.split_whitespace().nth(5).and_then(|ip| ip.parse::<IpAddr>().ok()),
            // A session-level c= or the video one (which wins).
            "c" if media.is_none() || in_video => {
                if let Some(ip) = v.split_whitespace().nth(2).and_then(|ip| ip.split('/').next()?.parse().ok()) {
                    c_ip = Some(ip);
                }
            }
            "m" => {
                let f: Vec<&str> = v.split_whitespace().collect();
                in_video = f.first() == Some(&"video");
                if in_video && media.is_none() {
                    let port: u16 = f
                        .get(1)
                        .and_then(|p| p.split('/').next()?.parse().ok())
                        .ok_or_else(|| format!("the answer's m=video line has no port: {v:?}"))?;
                    let proto = f.get(2).copied().unwrap_or("");
                    let fmt = f.get(3).copied().unwrap_or("").to_string();
                    media = Some((port, proto.to_ascii_uppercase().starts_with("TCP"), fmt));
                }
            }
            "a" if in_video => {
                if let Some(m) = v.strip_prefix("rtpmap:")
                    && let Some((pt, enc)) = m.split_once(' ')
                {
                    maps.push((pt.trim().to_string(), enc.split('/').next().unwrap_or("").trim().to_string()));
                }
            }
            // `y=` is the last line by the standard; some devices put it anywhere.
            "y" => ssrc = v.trim().parse::<u32>().ok(),
            _ => {}
        }
    }
    let (port, tcp, fmt) = media.ok_or("the answer has no m=video line")?;
    let ip = c_ip.or(o_ip).ok_or("the answer gives no address (no c= line)")?;
    // Payload 96 without an rtpmap is PS by the standard's convention.
    let encoding = maps
        .iter()
        .find(|(pt, e)| *pt == fmt && !e.is_empty())
        .map(|(_, e)| e.clone())
        .unwrap_or_else(|| if fmt == "96" { "PS".into() } else { format!("payload {fmt}") });
    Ok(Answer { remote: SocketAddr::new(ip, port), encoding, tcp, ssrc })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssrc_is_ten_digits_from_the_domain() {
        assert_eq!(format!("{:010}", live_ssrc("3402000000", 17)), "0200000017");
        assert_eq!(format!("{:010}", live_ssrc("4101050000", 123_456)), "0105003456");
    }

    #[test]
    fn offers_for_each_transport() {
        let mut o = Offer {
            platform: "34020000002000000001".into(),
            ip: "192.0.2.1".parse().unwrap(),
            port: 30_000,
            transport: StreamTransport::Udp,
            ssrc: 200_000_017,
        };
        let udp = offer_sdp(&o);
        assert!(udp.contains("c=IN IP4 192.0.2.1\r\n"), "{udp}");
        assert!(udp.contains("m=video 30000 RTP/AVP 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n"), "{udp}");
        assert!(udp.ends_with("y=0200000017\r\n"), "{udp}");
        assert!(!udp.contains("setup"));
        o.transport = StreamTransport::Tcp(TcpSetup::Passive);
        let passive = offer_sdp(&o);
        assert!(passive.contains("m=video 30000 TCP/RTP/AVP 96") && passive.contains("a=setup:passive\r\n"));
        o.transport = StreamTransport::Tcp(TcpSetup::Active);
        let active = offer_sdp(&o);
        assert!(active.contains("m=video 9 TCP/RTP/AVP 96") && active.contains("a=setup:active\r\n"));
    }

    #[test]
    fn answers_as_devices_write_them() {
        // A Hikvision-style answer: y= last, rtpmap for 96 = PS.
        let a = parse_answer(
            b"v=0\r\no=34020000001310000001 0 0 IN IP4 192.0.2.64\r\ns=Play\r\nc=IN IP4 192.0.2.64\r\nt=0 0\r\n\
              m=video 15060 RTP/AVP 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\ny=0200000017\r\nf=\r\n",
        )
        .unwrap();
        assert_eq!(a.remote, "192.0.2.64:15060".parse().unwrap());
        assert_eq!((a.encoding.as_str(), a.tcp, a.ssrc), ("PS", false, Some(200_000_017)));
        // No c= (o= gives the address), no rtpmap (96 is PS), TCP, LF line ends.
        let a = parse_answer(b"v=0\no=x 0 0 IN IP4 10.1.2.3\ns=Play\nt=0 0\nm=video 9000 TCP/RTP/AVP 96\n").unwrap();
        assert_eq!((a.remote.to_string().as_str(), a.encoding.as_str(), a.tcp), ("10.1.2.3:9000", "PS", true));
        assert_eq!(a.ssrc, None);
        // A device answering H.264 is named as such (the caller refuses it).
        let a =
            parse_answer(b"v=0\r\nc=IN IP4 10.0.0.9\r\nm=video 5000 RTP/AVP 98\r\na=rtpmap:98 H264/90000\r\n").unwrap();
        assert_eq!(a.encoding, "H264");
        for bad in
            [&b"v=0\r\nc=IN IP4 10.0.0.9\r\n"[..], b"m=video 5000 RTP/AVP 96\r\n", b"m=video x RTP/AVP 96\r\n", b"\xff"]
        {
            assert!(parse_answer(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
