//! The device and media services: the device's clock, its service addresses, information,
//! scopes, media profiles, and stream and snapshot URIs.

use std::time::Duration;

use reqwest::Url;

use super::soap::{Credentials, OnvifError, SoapClient};
use super::xml::{self, TDS, TRT, TT};

/// One ONVIF device, addressed by its device service URL.
#[derive(Clone)]
pub struct Device {
    client: SoapClient,
    url: Url,
}

/// Manufacturer, model, firmware and serial number (GetDeviceInformation).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DeviceInfo {
    pub manufacturer: String,
    pub model: String,
    pub firmware_version: String,
    pub serial_number: String,
    pub hardware_id: String,
}

/// Where the device's other services are (GetServices, or GetCapabilities on older devices).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Services {
    pub media: Option<String>,
    pub events: Option<String>,
}

/// A media profile and the parts of its video encoder configuration we use.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MediaProfile {
    pub token: String,
    pub name: String,
    /// `H264`, `H265`, `JPEG`, `MPEG4`…; `None` without a video encoder configuration.
    pub encoding: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<f64>,
}

impl MediaProfile {
    /// The codec in our configuration's words, for the encodings we ingest.
    pub fn codec(&self) -> Option<crate::config::Codec> {
        match self.encoding.as_deref()?.to_ascii_uppercase().as_str() {
            "H264" => Some(crate::config::Codec::H264),
            "H265" | "HEVC" => Some(crate::config::Codec::H265),
            _ => None,
        }
    }
}

/// The device service URL from what a user typed: `host`, `host:port` or `http://host[:port]
/// [/path]` (path `/onvif/device_service` when none). Credentials in it are refused; `https`
/// is not built in.
pub fn device_service_url(input: &str) -> Result<Url, OnvifError> {
    let with_scheme = if input.contains("://") { input.to_string() } else { format!("http://{input}") };
    let mut url = Url::parse(&with_scheme).map_err(|e| {
        OnvifError::Input(format!("{:?} is not a device address: {e}", crate::config::mask_credentials(input)))
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(OnvifError::Input(format!(
            "{} carries credentials; give the user name with --username and the password with --password-env or --password-file",
            crate::config::mask_credentials(input)
        )));
    }
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(OnvifError::Input(format!(
                "{input}: https is not built in; use the device's http address (ONVIF signs in with a digest, the password is not sent)"
            )));
        }
        s => return Err(OnvifError::Input(format!("{input}: scheme {s:?}; expected http://"))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(OnvifError::Input(format!("{input}: no host")));
    }
    if url.path() == "/" || url.path().is_empty() {
        url.set_path("/onvif/device_service");
    }
    Ok(url)
}

/// A URL with its user and password removed.
pub fn strip_userinfo(s: &str) -> String {
    match Url::parse(s) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => crate::config::mask_credentials(s).replace("***@", ""),
    }
}

impl Device {
    pub fn new(url: Url, creds: Option<Credentials>, timeout: Duration) -> Result<Self, OnvifError> {
        Ok(Self { client: SoapClient::new(creds, timeout)?, url })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Device clock minus ours, ms, as last read by `sync_clock`.
    pub fn clock_offset_ms(&self) -> i64 {
        self.client.clock_offset_ms
    }

    /// Reads the device's UTC clock (GetSystemDateAndTime, which needs no sign-in) and signs
    /// later requests in the device's time. Returns the offset (device minus ours), ms; a device
    /// that gives no UTC time leaves it at 0.
    pub async fn sync_clock(&mut self) -> Result<i64, OnvifError> {
        let body = format!(r#"<tds:GetSystemDateAndTime xmlns:tds="{TDS}"/>"#);
        let text = self.call(self.url.as_str(), "GetSystemDateAndTime", TDS, &body, false).await?;
        let ours = chrono::Utc::now();
        let doc = parse(&text, self.url.as_str(), "GetSystemDateAndTime")?;
        if let Some(t) = utc_date_time(doc.root_element()) {
            self.client.clock_offset_ms = (t - ours).num_milliseconds();
        }
        Ok(self.client.clock_offset_ms)
    }

    /// The media and events service addresses: GetServices, or GetCapabilities when the
    /// device faults on GetServices or lists no media service in it.
    pub async fn services(&self) -> Result<Services, OnvifError> {
        let body = format!(
            r#"<tds:GetServices xmlns:tds="{TDS}"><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>"#
        );
        let mut out = Services::default();
        match self.call(self.url.as_str(), "GetServices", TDS, &body, true).await {
            Ok(text) => {
                let doc = parse(&text, self.url.as_str(), "GetServices")?;
                for s in xml::find_all(doc.root_element(), TDS, "Service") {
                    let ns = xml::path_text(s, &[(TDS, "Namespace")]).unwrap_or_default();
                    let addr = xml::path_text(s, &[(TDS, "XAddr")]).map(|a| self.rebase(&a));
                    match ns.as_str() {
                        "http://www.onvif.org/ver10/media/wsdl" => out.media = addr,
                        "http://www.onvif.org/ver10/events/wsdl" => out.events = addr,
                        _ => {}
                    }
                }
                if out.media.is_some() {
                    return Ok(out);
                }
            }
            // Any fault (not a refused sign-in): ask the older way.
            Err(OnvifError::Fault { .. }) => {}
            Err(e) => return Err(e),
        }
        let body =
            format!(r#"<tds:GetCapabilities xmlns:tds="{TDS}"><tds:Category>All</tds:Category></tds:GetCapabilities>"#);
        let text = self.call(self.url.as_str(), "GetCapabilities", TDS, &body, true).await?;
        let doc = parse(&text, self.url.as_str(), "GetCapabilities")?;
        let caps = xml::find(doc.root_element(), TDS, "Capabilities");
        if let Some(caps) = caps {
            if out.media.is_none() {
                out.media = xml::path_text(caps, &[(TT, "Media"), (TT, "XAddr")]).map(|a| self.rebase(&a));
            }
            if out.events.is_none() {
                out.events = xml::path_text(caps, &[(TT, "Events"), (TT, "XAddr")]).map(|a| self.rebase(&a));
            }
        }
        Ok(out)
    }

    /// GetDeviceInformation.
    pub async fn information(&self) -> Result<DeviceInfo, OnvifError> {
        let body = format!(r#"<tds:GetDeviceInformation xmlns:tds="{TDS}"/>"#);
        let text = self.call(self.url.as_str(), "GetDeviceInformation", TDS, &body, true).await?;
        let doc = parse(&text, self.url.as_str(), "GetDeviceInformation")?;
        let r = doc.root_element();
        let get = |local: &str| xml::find(r, TDS, local).and_then(xml::text).unwrap_or_default();
        Ok(DeviceInfo {
            manufacturer: get("Manufacturer"),
            model: get("Model"),
            firmware_version: get("FirmwareVersion"),
            serial_number: get("SerialNumber"),
            hardware_id: get("HardwareId"),
        })
    }

    /// GetScopes: the scope URIs (`onvif://www.onvif.org/name/…`, `…/location/…`).
    pub async fn scopes(&self) -> Result<Vec<String>, OnvifError> {
        let body = format!(r#"<tds:GetScopes xmlns:tds="{TDS}"/>"#);
        let text = self.call(self.url.as_str(), "GetScopes", TDS, &body, true).await?;
        let doc = parse(&text, self.url.as_str(), "GetScopes")?;
        Ok(xml::find_all(doc.root_element(), TDS, "Scopes")
            .filter_map(|s| xml::path_text(s, &[(TT, "ScopeItem")]))
            .collect())
    }

    /// GetProfiles on the media service at `media`.
    pub async fn profiles(&self, media: &str) -> Result<Vec<MediaProfile>, OnvifError> {
        let body = format!(r#"<trt:GetProfiles xmlns:trt="{TRT}"/>"#);
        let text = self.call(media, "GetProfiles", TRT, &body, true).await?;
        let doc = parse(&text, media, "GetProfiles")?;
        let mut out = Vec::new();
        for p in xml::find_all(doc.root_element(), TRT, "Profiles") {
            let Some(token) = p.attribute("token") else { continue };
            let enc = xml::child(p, TT, "VideoEncoderConfiguration");
            let num = |steps: &[(&str, &str)]| enc.and_then(|e| xml::path_text(e, steps));
            out.push(MediaProfile {
                token: token.to_string(),
                name: xml::path_text(p, &[(TT, "Name")]).unwrap_or_default(),
                encoding: num(&[(TT, "Encoding")]),
                width: num(&[(TT, "Resolution"), (TT, "Width")]).and_then(|v| v.parse().ok()),
                height: num(&[(TT, "Resolution"), (TT, "Height")]).and_then(|v| v.parse().ok()),
                fps: num(&[(TT, "RateControl"), (TT, "FrameRateLimit")]).and_then(|v| v.parse().ok()),
            });
        }
        Ok(out)
    }

    /// GetStreamUri for RTP unicast over RTSP, as the device gives it (it may carry userinfo:
    /// use `strip_userinfo` before showing or storing it).
    pub async fn stream_uri(&self, media: &str, profile: &str) -> Result<String, OnvifError> {
        let body = format!(
            r#"<trt:GetStreamUri xmlns:trt="{TRT}" xmlns:tt="{TT}"><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup><trt:ProfileToken>{}</trt:ProfileToken></trt:GetStreamUri>"#,
            xml::escape(profile)
        );
        self.media_uri(media, "GetStreamUri", &body).await
    }

    /// GetSnapshotUri (may carry userinfo, like the stream URI).
    pub async fn snapshot_uri(&self, media: &str, profile: &str) -> Result<String, OnvifError> {
        let body = format!(
            r#"<trt:GetSnapshotUri xmlns:trt="{TRT}"><trt:ProfileToken>{}</trt:ProfileToken></trt:GetSnapshotUri>"#,
            xml::escape(profile)
        );
        self.media_uri(media, "GetSnapshotUri", &body).await
    }

    async fn media_uri(&self, media: &str, op: &'static str, body: &str) -> Result<String, OnvifError> {
        let text = self.call(media, op, TRT, body, true).await?;
        let doc = parse(&text, media, op)?;
        let uri = xml::find(doc.root_element(), TRT, "MediaUri")
            .and_then(|m| xml::path_text(m, &[(TT, "Uri")]))
            .ok_or_else(|| OnvifError::Malformed { url: media.to_string(), op, what: "no MediaUri/Uri".into() })?;
        Ok(self.rebase(&uri))
    }

    /// Calls `op` (in namespace `ns`) at `url`.
    pub(crate) async fn call(
        &self,
        url: &str,
        op: &'static str,
        ns: &str,
        body: &str,
        auth: bool,
    ) -> Result<String, OnvifError> {
        self.client.call(url, op, &format!("{ns}/{op}"), body, "", auth).await
    }

    pub(crate) fn client(&self) -> &SoapClient {
        &self.client
    }

    /// An address the device gave with an unspecified host (`0.0.0.0`, `[::]`: devices that do
    /// not know their own address) is given the host we reached it at.
    pub(crate) fn rebase(&self, addr: &str) -> String {
        let Ok(mut u) = Url::parse(addr) else { return addr.to_string() };
        let unspecified = u
            .host_str()
            .and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().ok())
            .is_some_and(|ip| ip.is_unspecified());
        if unspecified && let Some(h) = self.url.host_str() {
            let h = h.to_string();
            if u.set_host(Some(&h)).is_ok() {
                return u.to_string();
            }
        }
        addr.to_string()
    }
}

/// Parses a response the client already checked to be a SOAP envelope.
pub(crate) fn parse<'a>(text: &'a str, url: &str, op: &'static str) -> Result<roxmltree::Document<'a>, OnvifError> {
    roxmltree::Document::parse(text).map_err(|e| OnvifError::Malformed {
        url: url.to_string(),
        op,
        what: e.to_string(),
    })
}

/// `SystemDateAndTime/UTCDateTime` as a UTC time.
fn utc_date_time(root: roxmltree::Node) -> Option<chrono::DateTime<chrono::Utc>> {
    let utc = xml::find(root, TT, "UTCDateTime")?;
    let n = |a: &str, b: &str| xml::path_text(utc, &[(TT, a), (TT, b)]).and_then(|v| v.parse::<u32>().ok());
    let date = chrono::NaiveDate::from_ymd_opt(n("Date", "Year")? as i32, n("Date", "Month")?, n("Date", "Day")?)?;
    let time = chrono::NaiveTime::from_hms_opt(n("Time", "Hour")?, n("Time", "Minute")?, n("Time", "Second")?)?;
    Some(date.and_time(time).and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_addresses() {
        assert_eq!(device_service_url("10.0.0.5").unwrap().as_str(), "http://10.0.0.5/onvif/device_service");
        assert_eq!(device_service_url("10.0.0.5:8080").unwrap().as_str(), "http://10.0.0.5:8080/onvif/device_service");
        assert_eq!(device_service_url("http://cam/onvif/device").unwrap().as_str(), "http://cam/onvif/device");
        let e = device_service_url("http://admin:s3cret@cam/").unwrap_err().to_string();
        assert!(e.contains("credentials") && !e.contains("s3cret"), "{e}");
        assert!(device_service_url("https://cam").unwrap_err().to_string().contains("https"));
        assert_eq!(strip_userinfo("rtsp://u:p@10.0.0.5:554/s1"), "rtsp://10.0.0.5:554/s1");
        assert_eq!(strip_userinfo("rtsp://10.0.0.5/s1"), "rtsp://10.0.0.5/s1");
    }

    #[test]
    fn device_clock() {
        let xml = r#"<r xmlns:tt="http://www.onvif.org/ver10/schema"><tt:UTCDateTime><tt:Time><tt:Hour>7</tt:Hour><tt:Minute>5</tt:Minute><tt:Second>9</tt:Second></tt:Time><tt:Date><tt:Year>2026</tt:Year><tt:Month>12</tt:Month><tt:Day>6</tt:Day></tt:Date></tt:UTCDateTime></r>"#;
        let doc = roxmltree::Document::parse(xml).unwrap();
        assert_eq!(utc_date_time(doc.root_element()).unwrap().to_rfc3339(), "2026-12-06T07:05:09+00:00");
    }
}
