//! GB/T 28181 access ([DEVICES.md](../../docs/DEVICES.md)): the platform's SIP server that devices
//! (NVRs, IP cameras, lower platforms) register to. `config` (`[gb28181]`, `[[gb28181_device]]`),
//! `digest` (the registrar's Digest: stateless nonces, MD5 and SHA-256), `manscdp` (the XML in
//! MESSAGE bodies, any of UTF-8/GB2312/GBK/GB18030), `presence` (online until the first of expiry
//! and `interval × count` without keepalive; a restart gives online devices a full window),
//! `media` (the INVITE's SDP: offer, answer, SSRC),
//! `server` (rsipstack over UDP and TCP: REGISTER, keepalive, Catalog and DeviceInfo queries,
//! split catalogs assembled by SN, alarms, live video calls by INVITE/BYE for `gb28181://`
//! cameras, whose RTP/PS ingest receives). Channels become cameras in the registry
//! (`gb28181:<device>`); what changes goes to the app as `GbUpdate`s (statuses for the health
//! keeper, alarms for the alert service).

pub mod config;
pub mod digest;
pub mod manscdp;
pub mod media;
pub mod presence;
mod server;

pub use config::{GbConfig, GbDeviceConfig, TcpSetup, read_gb28181};
pub use server::{Call, GbError, GbServer, GbStart, GbUpdate};
