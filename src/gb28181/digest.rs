//! The registrar's side of SIP Digest (RFC 3261 §22, RFC 2617, RFC 8760 for SHA-256): a
//! challenge per REGISTER without credentials, and the check of the answer.
//!
//! Nonces carry no server state: `base64url(issued_ms ‖ HMAC-SHA256(key, issued_ms ‖ realm)[..16])`.
//! A nonce older than [`NONCE_TTL_MS`] is answered with a fresh challenge marked `stale=true`
//! (the device signs again without asking its user), so a captured REGISTER cannot be replayed
//! after that window. Passwords are compared only through their hashes, in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use sha2::Sha256;

use crate::clock::Millis;

/// How long a nonce is accepted.
pub const NONCE_TTL_MS: Millis = 5 * 60_000;

/// The hash a challenge asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn parse(s: &str) -> Option<Algorithm> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "SHA-256" | "SHA256" => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    fn hex(self, text: &str) -> String {
        let bytes: Vec<u8> = match self {
            Algorithm::Md5 => Md5::digest(text.as_bytes()).to_vec(),
            Algorithm::Sha256 => Sha256::digest(text.as_bytes()).to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Issues and checks nonces for one realm.
pub struct Registrar {
    realm: String,
    key: [u8; 32],
}

/// Why an `Authorization` header was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// The header is not a Digest answer we can read (names what is wrong).
    Malformed(String),
    /// The nonce is ours but too old: challenge again with `stale=true`.
    Stale,
    /// The nonce is not one we issued, the user or realm is not the device's, or the answer is wrong.
    Wrong(&'static str),
}

/// The fields of a Digest `Authorization` header.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Answer {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

impl Registrar {
    pub fn new(realm: &str) -> Self {
        let mut key = [0u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut key);
        Self { realm: realm.to_string(), key }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    fn mac(&self, issued: i64) -> [u8; 16] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        m.update(&issued.to_be_bytes());
        m.update(self.realm.as_bytes());
        let full = m.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// A nonce issued at `now`.
    pub fn nonce(&self, now: Millis) -> String {
        let mut raw = now.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.mac(now));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The `WWW-Authenticate` value of a challenge.
    pub fn challenge(&self, algorithm: Algorithm, now: Millis, stale: bool) -> String {
        format!(
            "Digest realm=\"{}\", nonce=\"{}\", qop=\"auth\", algorithm={}{}",
            self.realm,
            self.nonce(now),
            algorithm.as_str(),
            if stale { ", stale=true" } else { "" }
        )
    }

    /// Checks an answer to one of our challenges for `method` by `user` with `password`.
    pub fn verify(&self, a: &Answer, method: &str, user: &str, password: &str, now: Millis) -> Result<(), Rejected> {
        let raw =
            URL_SAFE_NO_PAD.decode(a.nonce.as_bytes()).map_err(|_| Rejected::Wrong("a nonce we did not issue"))?;
        if raw.len() != 24 {
            return Err(Rejected::Wrong("a nonce we did not issue"));
        }
        let issued = i64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
        if !constant_eq(&raw[8..], &self.mac(issued)) {
            return Err(Rejected::Wrong("a nonce we did not issue"));
        }
        if a.realm != self.realm {
            return Err(Rejected::Wrong("another realm"));
        }
        if a.username != user {
            return Err(Rejected::Wrong("a user name other than the device id"));
        }
        let alg = match &a.algorithm {
            None => Algorithm::Md5,
            Some(s) => Algorithm::parse(s).ok_or_else(|| Rejected::Malformed(format!("algorithm {s:?}")))?,
        };
        let ha1 = alg.hex(&format!("{}:{}:{}", a.username, a.realm, password));
        let ha2 = alg.hex(&format!("{method}:{}", a.uri));
        let expected = match a.qop.as_deref() {
            None => alg.hex(&format!("{ha1}:{}:{ha2}", a.nonce)),
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (&a.nc, &a.cnonce) else {
                    return Err(Rejected::Malformed("qop=auth without nc and cnonce".into()));
                };
                alg.hex(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", a.nonce))
            }
            Some(q) => return Err(Rejected::Malformed(format!("qop {q:?} (only auth)"))),
        };
        if !constant_eq(expected.as_bytes(), a.response.to_ascii_lowercase().as_bytes()) {
            return Err(Rejected::Wrong("a wrong password"));
        }
        // The nonce's age is checked last: a wrong password is never told it is merely stale.
        if now.saturating_sub(issued) > NONCE_TTL_MS || issued > now.saturating_add(60_000) {
            return Err(Rejected::Stale);
        }
        Ok(())
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads a `Digest k=v, k="v"` header value (quoted strings may hold commas and escaped quotes).
pub fn parse_answer(header: &str) -> Result<Answer, Rejected> {
    let rest = header.trim();
    let (scheme, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !scheme.eq_ignore_ascii_case("digest") {
        return Err(Rejected::Malformed(format!("scheme {:?} (Digest only)", truncate(scheme))));
    }
    let mut a = Answer::default();
    let mut chars = rest.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(Rejected::Malformed(format!("parameter {:?} without a value", truncate(key.trim()))));
        }
        while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(Rejected::Malformed("an unterminated quoted value".into()));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        match key.trim().to_ascii_lowercase().as_str() {
            "username" => a.username = value,
            "realm" => a.realm = value,
            "nonce" => a.nonce = value,
            "uri" => a.uri = value,
            "response" => a.response = value,
            "algorithm" => a.algorithm = Some(value),
            "qop" => a.qop = Some(value),
            "nc" => a.nc = Some(value),
            "cnonce" => a.cnonce = Some(value),
            _ => {}
        }
    }
    for (name, v) in [("username", &a.username), ("nonce", &a.nonce), ("uri", &a.uri), ("response", &a.response)] {
        if v.is_empty() {
            return Err(Rejected::Malformed(format!("no {name}")));
        }
    }
    Ok(a)
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer computed the way a device does (RFC 2617 §3.2.2).
    fn answer(r: &Registrar, alg: Algorithm, user: &str, pw: &str, now: Millis, qop: bool) -> Answer {
        let nonce = r.nonce(now);
        let uri = "sip:41010000002000000001@4101000000".to_string();
        let ha1 = alg.hex(&format!("{user}:{}:{pw}", r.realm()));
        let ha2 = alg.hex(&format!("REGISTER:{uri}"));
        let (response, qop, nc, cnonce) = if qop {
            (
                alg.hex(&format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}")),
                Some("auth".into()),
                Some("00000001".into()),
                Some("abc".into()),
            )
        } else {
            (alg.hex(&format!("{ha1}:{nonce}:{ha2}")), None, None, None)
        };
        Answer {
            username: user.into(),
            realm: r.realm().into(),
            nonce,
            uri,
            response,
            algorithm: Some(alg.as_str().into()),
            qop,
            nc,
            cnonce,
        }
    }

    #[test]
    fn right_answers_pass_and_wrong_ones_are_told_apart() {
        let r = Registrar::new("4101000000");
        let dev = "41010000001180000001";
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            for qop in [true, false] {
                let a = answer(&r, alg, dev, "s3cret", 1_000, qop);
                assert_eq!(r.verify(&a, "REGISTER", dev, "s3cret", 2_000), Ok(()), "{alg:?} qop {qop}");
                assert_eq!(r.verify(&a, "REGISTER", dev, "wrong", 2_000), Err(Rejected::Wrong("a wrong password")));
                assert_eq!(r.verify(&a, "REGISTER", dev, "s3cret", 1_000 + NONCE_TTL_MS + 1), Err(Rejected::Stale));
                // A stale nonce with a wrong password is wrong, not stale.
                assert_eq!(
                    r.verify(&a, "REGISTER", dev, "wrong", 1_000 + NONCE_TTL_MS + 1),
                    Err(Rejected::Wrong("a wrong password"))
                );
            }
        }
        let mut a = answer(&r, Algorithm::Md5, dev, "s3cret", 1_000, true);
        a.nonce = Registrar::new("4101000000").nonce(1_000);
        assert_eq!(r.verify(&a, "REGISTER", dev, "s3cret", 2_000), Err(Rejected::Wrong("a nonce we did not issue")));
        let a = answer(&r, Algorithm::Md5, "41010000001180000002", "s3cret", 1_000, true);
        assert!(matches!(r.verify(&a, "REGISTER", dev, "s3cret", 2_000), Err(Rejected::Wrong(_))));
    }

    #[test]
    fn headers_are_read_with_quotes_commas_and_case() {
        let a = parse_answer(
            r#"Digest username="3402000000132000001",realm="3402000000",nonce="a,b\"c",uri="sip:34020000002000000001@3402000000",response="DEADBEEF", algorithm=MD5, qop=auth, nc=00000001, cnonce="x""#,
        )
        .unwrap();
        assert_eq!(a.nonce, "a,b\"c");
        assert_eq!(a.qop.as_deref(), Some("auth"));
        assert_eq!(a.response, "DEADBEEF");
        for bad in ["Basic dXNlcjpwYXNz", "Digest username=\"x", "Digest username", "Digest realm=\"r\"", ""] {
            assert!(matches!(parse_answer(bad), Err(Rejected::Malformed(_))), "{bad}");
        }
    }
}
