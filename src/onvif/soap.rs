//! SOAP 1.2 over HTTP (the existing `reqwest` client) with WS-Security UsernameToken sign-in,
//! and the errors a device can answer with, classified: unreachable, not ONVIF, not authorised,
//! other faults. No error or log line carries the password.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha1::{Digest, Sha1};

use super::xml::{self, SOAP11, SOAP12, WSSE, WSU};
use crate::config::Secret;

/// A user name and its password (never printed: `Secret`).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

/// The path and query of a URL, as HTTP Digest's `uri`.
fn request_uri(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        },
        Err(_) => "/".into(),
    }
}

fn random_hex() -> String {
    rand::random::<[u8; 8]>().iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Authorization` header answering an HTTP Digest challenge (RFC 2617/7616 with MD5, `qop
/// auth` when offered), or `None` for another scheme or algorithm.
pub fn http_digest(challenge: &str, c: &Credentials, method: &str, uri: &str, cnonce: &str) -> Option<String> {
    let rest = challenge.trim().strip_prefix("Digest")?.trim_start();
    let mut params = std::collections::HashMap::new();
    for part in split_params(rest) {
        if let Some((k, v)) = part.split_once('=') {
            params.insert(k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_string());
        }
    }
    let realm = params.get("realm")?;
    let nonce = params.get("nonce")?;
    if params.get("algorithm").is_some_and(|a| !a.eq_ignore_ascii_case("MD5")) {
        return None;
    }
    let md5 = |s: String| format!("{:x}", md5::Md5::digest(s.as_bytes()));
    let ha1 = md5(format!("{}:{realm}:{}", c.username, c.password.expose()));
    let ha2 = md5(format!("{method}:{uri}"));
    let qop_auth = params.get("qop").is_some_and(|q| q.split(',').any(|q| q.trim() == "auth"));
    let nc = "00000001";
    let response = if qop_auth {
        md5(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
    } else {
        md5(format!("{ha1}:{nonce}:{ha2}"))
    };
    let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut h = format!(
        r#"Digest username="{}", realm="{}", nonce="{}", uri="{}", response="{response}""#,
        q(&c.username),
        q(realm),
        q(nonce),
        q(uri)
    );
    if qop_auth {
        h.push_str(&format!(r#", qop=auth, nc={nc}, cnonce="{cnonce}""#));
    }
    if let Some(o) = params.get("opaque") {
        h.push_str(&format!(r#", opaque="{}""#, q(o)));
    }
    if params.contains_key("algorithm") {
        h.push_str(", algorithm=MD5");
    }
    Some(h)
}

/// Splits `a="x, y", b=z` at the commas outside quotes.
fn split_params(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, ch) in s.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// A SOAP fault as the device sent it: the code, its subcodes (local names, outermost first:
/// `Sender`, `NotAuthorized`) and the reason text.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub code: String,
    pub subcodes: Vec<String>,
    pub reason: String,
}

impl Fault {
    /// The device does not offer the operation (`ter:ActionNotSupported`, or SOAP 1.1/1.2
    /// variants of it).
    pub fn not_supported(&self) -> bool {
        self.subcodes
            .iter()
            .chain(std::iter::once(&self.code))
            .any(|c| matches!(c.as_str(), "ActionNotSupported" | "ActionNotImplemented" | "NotImplemented"))
    }

    /// A refused sign-in: the ONVIF subcode `ter:NotAuthorized`, the WS-Security fault codes
    /// (`wsse:FailedAuthentication`, `InvalidSecurity`, `InvalidSecurityToken`), or — for devices
    /// that send a bare `Sender` fault with no subcode (onvif-server is one) — a reason that
    /// speaks of authentication.
    pub fn is_auth(&self) -> bool {
        let coded = self.subcodes.iter().chain(std::iter::once(&self.code)).any(|c| {
            matches!(
                c.as_str(),
                "NotAuthorized" | "FailedAuthentication" | "InvalidSecurity" | "InvalidSecurityToken" | "FailedCheck"
            )
        });
        let bare_sender = matches!(self.code.as_str(), "Sender" | "Client") && self.subcodes.is_empty();
        coded || (bare_sender && self.reason.to_ascii_lowercase().contains("auth"))
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut codes = vec![self.code.as_str()];
        codes.extend(self.subcodes.iter().map(String::as_str));
        write!(f, "{} {:?}", codes.join("/"), self.reason)
    }
}

/// What went wrong talking to a device.
#[derive(Debug, thiserror::Error)]
pub enum OnvifError {
    #[error("{url}: cannot reach the device: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} is not an ONVIF service: {why}")]
    NotOnvif { url: String, why: String },
    #[error(
        "{url}: {op} was refused: wrong user name or password, or the user may not do this (the device said: {detail})"
    )]
    NotAuthorized { url: String, op: &'static str, detail: String },
    #[error("{url}: {op}: the device answered with a fault: {fault}")]
    Fault { url: String, op: &'static str, fault: Fault },
    #[error("{url}: {op}: {what}")]
    Malformed { url: String, op: &'static str, what: String },
    #[error("{0}")]
    Input(String),
}

impl OnvifError {
    /// The device answered that it does not offer this operation.
    pub fn not_supported(&self) -> bool {
        matches!(self, OnvifError::Fault { fault, .. } if fault.not_supported())
    }
}

/// A SOAP client for one device: the HTTP client, the credentials, and the device's clock
/// offset (UsernameToken's `Created` is the device's time, or a strict device refuses it).
#[derive(Clone)]
pub struct SoapClient {
    http: reqwest::Client,
    creds: Option<Credentials>,
    /// Device clock minus ours, in milliseconds (from GetSystemDateAndTime).
    pub clock_offset_ms: i64,
}

impl SoapClient {
    pub fn new(creds: Option<Credentials>, timeout: Duration) -> Result<Self, OnvifError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| OnvifError::Input(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http, creds, clock_offset_ms: 0 })
    }

    /// Calls `op` at `url` with `body` (the Body's content) and `headers` (extra SOAP header
    /// elements, e.g. WS-Addressing reference parameters), signed in when `auth` and credentials
    /// are given. Returns the response envelope's text: a SOAP envelope with no fault.
    pub async fn call(
        &self,
        url: &str,
        op: &'static str,
        action: &str,
        body: &str,
        headers: &str,
        auth: bool,
    ) -> Result<String, OnvifError> {
        let send = |authorization: Option<String>| {
            let security = match (&self.creds, auth) {
                (Some(c), true) => {
                    let nonce: [u8; 16] = rand::random();
                    username_token(c, &nonce, &created(chrono::Utc::now(), self.clock_offset_ms))
                }
                _ => String::new(),
            };
            let envelope = format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{SOAP12}"><s:Header>{security}{headers}</s:Header><s:Body>{body}</s:Body></s:Envelope>"#
            );
            let mut req = self
                .http
                .post(url)
                .header("Content-Type", format!("application/soap+xml; charset=utf-8; action=\"{action}\""))
                // SOAP 1.2 carries the action in the content type; some servers route only by the
                // SOAP 1.1 header (onvif-server's Unsubscribe, whose body element it does not know).
                .header("SOAPAction", format!("\"{action}\""))
                .body(envelope);
            if let Some(a) = authorization {
                req = req.header("Authorization", a);
            }
            req.send()
        };
        let unreachable =
            |e: reqwest::Error| OnvifError::Unreachable { url: url.to_string(), reason: transport_reason(&e) };
        let mut resp = send(None).await.map_err(unreachable)?;
        let challenge = |resp: &reqwest::Response| {
            resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_string)
        };
        // A device that wants HTTP Digest sign-in (on top of, or instead of, WS-Security) is
        // answered once with it.
        let mut digest_sent = false;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED
            && auth
            && let Some(c) = &self.creds
            && let Some(ch) = challenge(&resp)
            && let Some(authorization) = http_digest(&ch, c, "POST", &request_uri(url), &random_hex())
        {
            resp = send(Some(authorization)).await.map_err(unreachable)?;
            digest_sent = true;
        }
        let status = resp.status();
        let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let scheme = challenge(&resp).and_then(|v| v.split_whitespace().next().map(str::to_string));
        let text = read_capped(resp, url, op).await?;
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            let detail = match scheme.as_deref() {
                _ if digest_sent => format!("HTTP {status} to WS-Security and HTTP Digest sign-in"),
                Some(scheme) => format!(
                    "HTTP {status}, asking for HTTP {scheme} sign-in, which is not built in (WS-Security was sent); \
                     the device may need WS-Security enabled for this user"
                ),
                None => format!("HTTP {status}"),
            };
            return Err(OnvifError::NotAuthorized { url: url.to_string(), op, detail });
        }
        let not_soap = || OnvifError::NotOnvif {
            url: url.to_string(),
            why: format!(
                "{op} got HTTP {}{} that is not a SOAP envelope",
                status.as_u16(),
                if ctype.is_empty() { String::new() } else { format!(" ({ctype})") }
            ),
        };
        let doc = roxmltree::Document::parse(&text).map_err(|_| not_soap())?;
        let root = doc.root_element();
        let env_ns = match root.tag_name().namespace() {
            Some(ns @ (SOAP12 | SOAP11)) if root.tag_name().name() == "Envelope" => ns,
            _ => return Err(not_soap()),
        };
        let body = xml::child(root, env_ns, "Body").ok_or_else(not_soap)?;
        if let Some(f) = xml::child(body, env_ns, "Fault") {
            let fault = parse_fault(f, env_ns);
            if fault.is_auth() {
                return Err(OnvifError::NotAuthorized { url: url.to_string(), op, detail: fault.to_string() });
            }
            return Err(OnvifError::Fault { url: url.to_string(), op, fault });
        }
        if !status.is_success() {
            return Err(OnvifError::Malformed {
                url: url.to_string(),
                op,
                what: format!("HTTP {} with a SOAP body and no fault", status.as_u16()),
            });
        }
        Ok(text)
    }
}

/// The most a device's answer may hold; a larger one is refused, not read into memory.
pub const MAX_ANSWER_BYTES: usize = 4 << 20;

/// A response body, read up to `MAX_ANSWER_BYTES` (a device that sends more is refused with that
/// said), as text (bytes that are not UTF-8 replaced: the XML parser then refuses what they break).
async fn read_capped(mut resp: reqwest::Response, url: &str, op: &'static str) -> Result<String, OnvifError> {
    let too_big = |n: u64| OnvifError::Malformed {
        url: url.to_string(),
        op,
        what: format!("an answer of {n} bytes or more; at most {MAX_ANSWER_BYTES} are read"),
    };
    if let Some(n) = resp.content_length().filter(|n| *n > MAX_ANSWER_BYTES as u64) {
        return Err(too_big(n));
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(too_big((body.len() + chunk.len()) as u64));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(OnvifError::Unreachable { url: url.to_string(), reason: transport_reason(&e) }),
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The token's `Created`: our time `now` moved by the device's clock offset, so that a device
/// whose clock is off from ours still finds the token fresh by its own.
pub fn created(now: chrono::DateTime<chrono::Utc>, clock_offset_ms: i64) -> String {
    (now + chrono::Duration::milliseconds(clock_offset_ms)).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The `wsse:Security` header: PasswordDigest = base64(SHA-1(nonce + created + password)).
pub fn username_token(c: &Credentials, nonce: &[u8], created: &str) -> String {
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(created.as_bytes());
    h.update(c.password.expose().as_bytes());
    let digest = B64.encode(h.finalize());
    format!(
        r#"<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken><wsse:Username>{}</wsse:Username><wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">{digest}</wsse:Password><wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">{}</wsse:Nonce><wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>"#,
        xml::escape(&c.username),
        B64.encode(nonce),
    )
}

/// A fault element, SOAP 1.2 (`Code/Value`, `Subcode/Value`…, `Reason/Text`) or 1.1
/// (`faultcode`, `faultstring`). Codes are reduced to their local names.
fn parse_fault(f: roxmltree::Node, env_ns: &str) -> Fault {
    let local = |v: String| v.rsplit(':').next().unwrap_or("").to_string();
    if env_ns == SOAP11 {
        let code = f.children().find(|c| c.tag_name().name() == "faultcode").and_then(xml::text).unwrap_or_default();
        let reason =
            f.children().find(|c| c.tag_name().name() == "faultstring").and_then(xml::text).unwrap_or_default();
        return Fault { code: local(code), subcodes: Vec::new(), reason };
    }
    let mut code = String::new();
    let mut subcodes = Vec::new();
    if let Some(c) = xml::child(f, env_ns, "Code") {
        code = xml::path_text(c, &[(env_ns, "Value")]).map(local).unwrap_or_default();
        let mut cur = c;
        while let Some(s) = xml::child(cur, env_ns, "Subcode") {
            if let Some(v) = xml::path_text(s, &[(env_ns, "Value")]) {
                subcodes.push(local(v));
            }
            cur = s;
        }
    }
    let reason = xml::path_text(f, &[(env_ns, "Reason"), (env_ns, "Text")]).unwrap_or_default();
    Fault { code, subcodes, reason }
}

/// The innermost cause of a transport error ("Connection refused (os error 111)", "operation
/// timed out"), which says more than reqwest's outer text.
fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "no answer in time (timed out)".into();
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let inner = cause.to_string();
    if e.is_connect() { format!("cannot connect: {inner}") } else { inner }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The UsernameToken example of the ONVIF Core specification (5.12.2.1): password
    /// "userpassword", this nonce and this time give this digest.
    #[test]
    fn password_digest_is_the_specifications_example() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "userpassword\n").unwrap();
        let password = crate::config::SecretRef::File(dir.path().join("pw")).resolve().unwrap();
        let c = Credentials { username: "user<1>".into(), password };
        let nonce = B64.decode("LKqI6G/AikKCQrN0zqZFlg==").unwrap();
        let header = username_token(&c, &nonce, "2010-09-16T07:50:45Z");
        assert!(header.contains(">tuOSpGlFlIXsozq4HFNeeGeFLEI=</wsse:Password>"), "{header}");
        assert!(header.contains("<wsse:Username>user&lt;1&gt;</wsse:Username>"));
        assert!(header.contains(">LKqI6G/AikKCQrN0zqZFlg==</wsse:Nonce>"));
        assert!(!header.contains("userpassword"));
    }

    /// RFC 2617's example (3.5): Mufasa, "Circle Of Life", GET /dir/index.html.
    #[test]
    fn http_digest_is_rfc_2617s() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "Circle Of Life").unwrap();
        let password = crate::config::SecretRef::File(dir.path().join("pw")).resolve().unwrap();
        let c = Credentials { username: "Mufasa".into(), password };
        let ch = r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let h = http_digest(ch, &c, "GET", "/dir/index.html", "0a4f113b").unwrap();
        assert!(h.contains(r#"response="6629fae49393a05397450978507c4ef1""#), "{h}");
        assert!(h.contains("qop=auth, nc=00000001, cnonce=\"0a4f113b\""), "{h}");
        assert!(h.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#), "{h}");
        assert!(!h.contains("Circle"));
        assert!(http_digest("Basic realm=\"x\"", &c, "GET", "/", "1").is_none());
        assert!(http_digest(r#"Digest realm="x", nonce="n", algorithm=SHA-256"#, &c, "GET", "/", "1").is_none());
        assert_eq!(request_uri("http://h:8080/onvif/device_service?a=1"), "/onvif/device_service?a=1");
    }

    #[test]
    fn created_is_in_the_devices_time() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-06T07:00:00.250Z").unwrap().to_utc();
        assert_eq!(created(now, 0), "2026-12-06T07:00:00.250Z");
        assert_eq!(created(now, 3_600_000), "2026-12-06T08:00:00.250Z");
        assert_eq!(created(now, -90_500), "2026-12-06T06:58:29.750Z");
    }

    #[test]
    fn faults_are_classified_by_code() {
        let soap12 = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>ter:NotAuthorized</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">Sender not Authorized</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>"#;
        let doc = roxmltree::Document::parse(soap12).unwrap();
        let f = xml::find(doc.root_element(), SOAP12, "Fault").unwrap();
        let fault = parse_fault(f, SOAP12);
        assert_eq!(fault.code, "Sender");
        assert_eq!(fault.subcodes, vec!["NotAuthorized".to_string()]);
        assert!(fault.is_auth() && !fault.not_supported());
        let unsupported =
            Fault { code: "Receiver".into(), subcodes: vec!["ActionNotSupported".into()], reason: "x".into() };
        assert!(unsupported.not_supported() && !unsupported.is_auth());
        let bare = Fault { code: "Sender".into(), subcodes: vec![], reason: "Authentication failed".into() };
        assert!(bare.is_auth());
        let soap11 = r#"<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault><faultcode>wsse:FailedAuthentication</faultcode><faultstring>bad</faultstring></S:Fault></S:Body></S:Envelope>"#;
        let doc = roxmltree::Document::parse(soap11).unwrap();
        let f = xml::find(doc.root_element(), SOAP11, "Fault").unwrap();
        assert!(parse_fault(f, SOAP11).is_auth());
    }
}
