//! The platform's SIP server: devices REGISTER (Digest), send keepalives, answer our Catalog and
//! DeviceInfo queries and notify alarms, all on rsipstack's transaction layer over UDP and TCP on
//! one port. What changes is stored in the registry and told to the app as [`GbUpdate`]s.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::EndpointBuilder;
use rsipstack::dialog::dialog::{DialogState, TerminatedReason};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::*;
use rsipstack::sip::{Header, Method, SipMessage, StatusCode, Uri};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::make_tag;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::tcp_listener::TcpListenerConnection;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportLayer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::config::{GbConfig, TcpSetup};
use super::digest::{Algorithm, Registrar, Rejected, parse_answer};
use super::manscdp::{self, AlarmNotice, CatalogEvent, CatalogItem, Message};
use super::media::{self, Answer, Offer, StreamTransport};
use super::presence::{Change, Heartbeat, NotRegistered, Presence, Stored};
use crate::clock::{Clock, Millis, SiteZone};
use crate::config::{CameraKind, Gb28181Code, Owner, Secret, check_gb_id};
use crate::registry::{GbChannel, Registry};

/// What the app is told.
#[derive(Debug, Clone, PartialEq)]
pub enum GbUpdate {
    /// Cameras (channels) that can (`true`) or cannot be reached now, each with the reason.
    Status(Vec<(String, bool, String)>),
    /// A device's alarm notification.
    Alarm { device: String, notice: AlarmNotice, at: Millis },
}

#[derive(Debug, thiserror::Error)]
pub enum GbError {
    #[error("GB/T 28181: cannot listen on {addr}: {message}")]
    Listen { addr: SocketAddr, message: String },
    #[error("GB/T 28181: {0}")]
    Secret(String),
    #[error("GB/T 28181: {0}")]
    Registry(#[from] crate::registry::RegistryError),
}

/// Where a device is reached: the address its REGISTER came from (Via `received`/`rport`), and
/// for TCP the connection it opened.
#[derive(Clone)]
struct Peer {
    target: SipAddr,
    connection: Option<SipConnection>,
}

/// How much of a device's channels a catalog lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    /// Every item of the answer arrived: channels it does not name are gone.
    Complete,
    /// The answer stopped short: what came is stored, nothing removed.
    Incomplete,
    /// A change the device notified by itself.
    Change,
}

/// A Catalog answer arriving in several MESSAGEs.
struct Assembly {
    sn: u64,
    sum: usize,
    items: BTreeMap<String, CatalogItem>,
    started: Millis,
    last: Millis,
    /// Every item arrived and was stored: late repeats of its pages are ignored.
    complete: bool,
}

#[derive(Default)]
struct State {
    presence: Presence,
    peers: HashMap<String, Peer>,
    catalogs: HashMap<String, Assembly>,
    /// Channels their device said are off (its catalog's `Status`, or an `OFF`/`VLOST`/`DEFECT`
    /// notification), with why.
    channels_off: HashMap<String, String>,
    /// When each device's catalog subscription is renewed.
    subscriptions: HashMap<String, Millis>,
}

struct Inner {
    cfg: GbConfig,
    registry: Registry,
    clock: Arc<dyn Clock>,
    zone: SiteZone,
    registrar: Registrar,
    passwords: HashMap<String, Secret>,
    default_password: Option<Secret>,
    grid_cells: Vec<String>,
    state: Mutex<State>,
    updates: mpsc::Sender<GbUpdate>,
    endpoint: EndpointInnerRef,
    /// INVITE dialogs (live video calls) and the BYEs that end them.
    dialogs: Arc<DialogLayer>,
    sn: AtomicU64,
    cseq: AtomicU32,
    /// The serial part of the next live SSRC.
    ssrc_serial: AtomicU32,
    /// Calls in progress.
    calls: AtomicU64,
}

/// A running server; stops with the token it was given.
pub struct GbServer {
    inner: Arc<Inner>,
    local: SocketAddr,
}

/// What the server is started with besides its configuration.
pub struct GbStart {
    pub registry: Registry,
    pub clock: Arc<dyn Clock>,
    pub zone: SiteZone,
    /// The grid's cell ids: a channel's civil code is matched against them (longest prefix).
    pub grid_cells: Vec<String>,
    pub stop: CancellationToken,
    pub updates: mpsc::Sender<GbUpdate>,
}

fn header<'a>(req: &'a rsipstack::sip::Request, name: &str) -> Option<&'a str> {
    req.headers.iter().find(|h| h.name().eq_ignore_ascii_case(name)).map(|h| h.value().trim())
}

fn from_user(req: &rsipstack::sip::Request) -> Option<String> {
    let from = req.from_header().ok()?.uri().ok()?;
    from.user().map(str::to_string)
}

fn warning(text: &str) -> Header {
    let clean: String = text.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).take(200).collect();
    Header::Other("Warning".into(), format!("399 tianwang \"{clean}\""))
}

impl GbServer {
    pub async fn start(cfg: GbConfig, s: GbStart) -> Result<GbServer, GbError> {
        let mut passwords = HashMap::new();
        for d in &cfg.devices {
            if let Some(p) = &d.password {
                passwords
                    .insert(d.id.clone(), p.resolve().map_err(|e| GbError::Secret(format!("device {}: {e}", d.id)))?);
            }
        }
        let default_password = match &cfg.password {
            Some(p) => Some(p.resolve().map_err(|e| GbError::Secret(format!("[gb28181] password: {e}")))?),
            None => None,
        };
        let now = s.clock.now_ms();
        let stored = s.registry.gb_devices().await?;
        let hb_of = |id: &str| heartbeat(&cfg, id);
        let presence = Presence::restore(
            stored.iter().map(|d| Stored {
                device: d.id.clone(),
                heartbeat: hb_of(&d.id),
                expires_at: d.expires_at_ms,
                last_alive: d.last_alive_ms,
                online: d.online,
            }),
            now,
        );

        let listen_err = |e: &dyn std::fmt::Display| GbError::Listen { addr: cfg.listen, message: e.to_string() };
        let transport = TransportLayer::new(s.stop.child_token());
        let udp = UdpConnection::create_connection(cfg.listen, None, Some(s.stop.child_token()))
            .await
            .map_err(|e| listen_err(&e))?;
        let local = match &udp.get_addr().addr.host {
            rsipstack::sip::Host::IpAddr(ip) => {
                SocketAddr::new(*ip, udp.get_addr().addr.port.as_ref().map(|p| p.value()).unwrap_or(cfg.listen.port()))
            }
            _ => cfg.listen,
        };
        let tcp_addr = SocketAddr::new(cfg.listen.ip(), local.port());
        let tcp = TcpListenerConnection::new(tcp_addr, None).await.map_err(|e| listen_err(&e))?;
        transport.add_transport(udp.into());
        transport.add_transport(tcp.into());
        let endpoint = EndpointBuilder::new()
            .with_user_agent("tianwang")
            .with_transport_layer(transport)
            .with_cancel_token(s.stop.child_token())
            .build();
        let mut incoming = endpoint.incoming_transactions().map_err(|e| listen_err(&e))?;
        let ep = endpoint.inner.clone();
        tokio::spawn(async move {
            if let Err(e) = ep.serve().await {
                tracing::error!(error = %e, "GB/T 28181 SIP endpoint stopped");
            }
        });

        let inner = Arc::new(Inner {
            registrar: Registrar::new(&cfg.domain),
            cfg,
            registry: s.registry,
            clock: s.clock,
            zone: s.zone,
            passwords,
            default_password,
            grid_cells: s.grid_cells,
            state: Mutex::new(State { presence, ..Default::default() }),
            updates: s.updates,
            dialogs: Arc::new(DialogLayer::new(endpoint.inner.clone())),
            endpoint: endpoint.inner.clone(),
            sn: AtomicU64::new((now / 1000).rem_euclid(1_000_000) as u64),
            cseq: AtomicU32::new(1),
            ssrc_serial: AtomicU32::new((now / 1000).rem_euclid(10_000) as u32),
            calls: AtomicU64::new(0),
        });

        let stop = s.stop.clone();
        let me = inner.clone();
        tokio::spawn(async move {
            // Keeps the endpoint alive for as long as the loop runs.
            let _endpoint = endpoint;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    tx = incoming.recv() => match tx {
                        Some(tx) => {
                            let me = me.clone();
                            tokio::spawn(async move { me.handle(tx).await });
                        }
                        None => break,
                    },
                }
            }
        });
        let me = inner.clone();
        let stop = s.stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => me.tick().await,
                }
            }
        });
        tracing::info!(%local, id = %inner.cfg.id, domain = %inner.cfg.domain, "GB/T 28181 SIP server listening (UDP and TCP)");
        Ok(GbServer { inner, local })
    }

    /// The address it listens on (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Whether a device is online now.
    pub fn is_online(&self, device: &str) -> bool {
        self.inner.state.lock().expect("gb state").presence.is_online(device)
    }

    /// Live video calls in progress.
    pub fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// The TCP role a device's channels are asked for with.
    pub fn tcp_setup(&self, device: &str) -> TcpSetup {
        self.inner.cfg.device(device).map(|d| d.stream_tcp).unwrap_or_default()
    }

    /// The configured receiving port range.
    pub fn media_ports(&self) -> Option<(u16, u16)> {
        self.inner.cfg.media_ports
    }

    /// Asks `device` for `channel`'s live video on our `port` (INVITE, SDP offer with a fresh
    /// SSRC) and waits for its answer. The error is a sentence for the camera's status.
    pub async fn invite(
        &self,
        device: &str,
        channel: &str,
        transport: StreamTransport,
        port: u16,
    ) -> Result<Call, String> {
        self.inner.clone().invite(device, channel, transport, port).await
    }
}

/// A live video call. `hang_up` sends BYE; a call the device ended says why in `ended`.
pub struct Call {
    pub answer: Answer,
    /// The SSRC we offered.
    pub offered_ssrc: u32,
    ended: Arc<Mutex<Option<String>>>,
    dialog: InviteDialog,
    server: Arc<Inner>,
}

impl Call {
    /// Why the device ended the call (its BYE, a timeout), if it did.
    pub fn ended(&self) -> Option<String> {
        self.ended.lock().expect("call state").clone()
    }

    /// Ends the call (BYE), unless the device did already.
    pub async fn hang_up(self) {
        if self.ended().is_none() {
            if let Err(e) = self.dialog.bye().await {
                tracing::debug!(error = %e, "GB/T 28181: BYE not sent");
            }
            *self.ended.lock().expect("call state") = Some("hung up".into());
        }
        self.server.dialogs.remove_dialog(&self.dialog.id());
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.server.calls.fetch_sub(1, Ordering::Relaxed);
    }
}

fn heartbeat(cfg: &GbConfig, id: &str) -> Heartbeat {
    let d = cfg.device(id);
    let interval = d.and_then(|d| d.heartbeat_interval_s).unwrap_or(cfg.heartbeat_interval_s);
    let count = d.and_then(|d| d.heartbeat_count).unwrap_or(cfg.heartbeat_count);
    Heartbeat { interval_ms: i64::from(interval) * 1000, count }
}

impl Inner {
    fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    fn password(&self, device: &str) -> Option<&Secret> {
        self.passwords.get(device).or(self.default_password.as_ref())
    }

    async fn handle(self: Arc<Self>, mut tx: Transaction) {
        let method = tx.original.method;
        let result = match method {
            Method::Register => self.register(&mut tx).await,
            // A NOTIFY of our catalog subscription carries what a MESSAGE would.
            Method::Message | Method::Notify => self.message(&mut tx).await,
            Method::Options => tx.reply(StatusCode::OK).await,
            // Within a live video call: the device's BYE, INFO, …
            Method::Bye | Method::Info | Method::Ack | Method::Update => match self.dialogs.match_dialog(&tx) {
                Some(mut d) => d.handle(&mut tx).await,
                None if method == Method::Ack => Ok(()),
                None => tx.reply(StatusCode::CallTransactionDoesNotExist).await,
            },
            _ => {
                tx.reply_with(StatusCode::NotImplemented, vec![warning("not handled by this platform yet")], None).await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%method, error = %e, "GB/T 28181: no answer could be sent");
        }
    }

    async fn register(self: &Arc<Self>, tx: &mut Transaction) -> rsipstack::Result<()> {
        let req = &tx.original;
        let Some(id) = from_user(req).filter(|u| check_gb_id(u).is_ok()) else {
            return tx
                .reply_with(StatusCode::BadRequest, vec![warning("From must name a 20-digit GB/T 28181 id")], None)
                .await;
        };
        let Some(password) = self.password(&id).cloned() else {
            tracing::warn!(device = %id, "GB/T 28181: REGISTER from a device that is not configured (no [[gb28181_device]] and no default password)");
            return tx.reply_with(StatusCode::Forbidden, vec![warning("unknown device")], None).await;
        };
        let now = self.now();
        let challenge = |stale| Header::WwwAuthenticate(self.registrar.challenge(Algorithm::Md5, now, stale).into());
        let Some(auth) = header(req, "Authorization") else {
            return tx.reply_with(StatusCode::Unauthorized, vec![challenge(false)], None).await;
        };
        match parse_answer(auth).and_then(|a| self.registrar.verify(&a, "REGISTER", &id, password.expose(), now)) {
            Ok(()) => {}
            Err(Rejected::Stale) => return tx.reply_with(StatusCode::Unauthorized, vec![challenge(true)], None).await,
            Err(Rejected::Malformed(m)) => {
                return tx
                    .reply_with(StatusCode::BadRequest, vec![warning(&format!("Authorization: {m}"))], None)
                    .await;
            }
            Err(Rejected::Wrong(why)) => {
                tracing::warn!(device = %id, why, "GB/T 28181: REGISTER refused");
                return tx.reply_with(StatusCode::Forbidden, vec![warning("wrong credentials")], None).await;
            }
        }
        let requested = header(req, "Expires")
            .and_then(|v| v.parse::<u32>().ok())
            .or_else(|| {
                header(req, "Contact").and_then(|c| {
                    c.split(';').find_map(|p| p.trim().strip_prefix("expires=").and_then(|v| v.trim().parse().ok()))
                })
            })
            .unwrap_or(3600);
        let contact: Vec<Header> = req.headers.iter().filter(|h| matches!(h, Header::Contact(_))).cloned().collect();
        let date = Header::Other("Date".into(), self.date(now));
        if requested == 0 {
            tx.reply_with(StatusCode::OK, vec![date], None).await?;
            let change = self.state.lock().expect("gb state").presence.unregistered(&id, now);
            if let Err(e) = self.registry.gb_offline(&id, "unregistered", true, now).await {
                tracing::error!(device = %id, error = %e, "GB/T 28181: cannot store an unregistration");
            }
            if let Some(c) = change {
                self.tell_device(&c).await;
            }
            return Ok(());
        }
        let granted = requested.min(self.cfg.max_expires_s).max(1);
        // Queries go where the REGISTER came from when the device is behind NAT (its Via got a
        // `received`: it sent from another address than it says), else to its Contact.
        let Some((via, (transport, source))) = tx
            .original
            .via_header()
            .ok()
            .cloned()
            .and_then(|v| SipConnection::parse_target_from_via(&v).ok().map(|t| (v, t)))
        else {
            return tx.reply_with(StatusCode::BadRequest, vec![warning("no readable Via")], None).await;
        };
        let natted = via.value().to_ascii_lowercase().contains(";received=");
        let remote = match (natted, header(&tx.original, "Contact").and_then(contact_target)) {
            (false, Some(contact)) => contact,
            _ => source,
        };
        let reliable = tx.connection.as_ref().is_some_and(|c| c.is_reliable());
        let peer = Peer {
            target: SipAddr { r#type: Some(transport), addr: remote.clone() },
            connection: if reliable { tx.connection.clone() } else { None },
        };
        let name = self.cfg.device(&id).and_then(|d| d.name.clone()).unwrap_or_else(|| id.clone());
        let transport_name = if reliable { "tcp" } else { "udp" };
        let (change, first_catalog) = {
            let mut st = self.state.lock().expect("gb state");
            st.peers.insert(id.clone(), peer);
            let change = st.presence.registered(&id, heartbeat(&self.cfg, &id), granted, now);
            (change, !st.catalogs.contains_key(&id))
        };
        // Answered once the device counts as registered here: it may send its first keepalive the
        // moment it has the answer.
        let mut headers = contact;
        headers.push(Header::Expires(granted.into()));
        headers.push(date);
        tx.reply_with(StatusCode::OK, headers, None).await?;
        let expires_at = now.saturating_add(i64::from(granted) * 1000);
        if let Err(e) =
            self.registry.gb_registered(&id, &name, transport_name, &remote.to_string(), expires_at, now).await
        {
            tracing::error!(device = %id, error = %e, "GB/T 28181: cannot store a registration");
        }
        if change.is_some() || first_catalog {
            tracing::info!(device = %id, %remote, transport = transport_name, expires = granted, "GB/T 28181 device registered");
        }
        if let Some(c) = &change {
            self.tell_device(c).await;
            // A device that comes online is asked what it is and what it has.
            let me = self.clone();
            let dev = id.clone();
            tokio::spawn(async move {
                me.query(&dev, "DeviceInfo").await;
                me.query(&dev, "Catalog").await;
                me.subscribe_catalog(&dev).await;
            });
        }
        Ok(())
    }

    fn date(&self, now: Millis) -> String {
        let local = now + i64::from(self.zone.offset_min_at(now)) * 60_000;
        chrono::DateTime::from_timestamp_millis(local)
            .map(|t| t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.3f").to_string())
            .unwrap_or_default()
    }

    async fn message(&self, tx: &mut Transaction) -> rsipstack::Result<()> {
        let Some(id) = from_user(&tx.original).filter(|u| check_gb_id(u).is_ok()) else {
            return tx
                .reply_with(StatusCode::BadRequest, vec![warning("From must name a 20-digit GB/T 28181 id")], None)
                .await;
        };
        let declared = header(&tx.original, "Content-Length").and_then(|v| v.parse::<usize>().ok());
        if let Some(n) = declared.filter(|n| *n > tx.original.body.len()) {
            let why = format!(
                "body cut short: Content-Length {n} but {} bytes arrived (a UDP datagram is read up to 8 KB: \
                 split the answer or send it over TCP)",
                tx.original.body.len()
            );
            return tx.reply_with(StatusCode::BadRequest, vec![warning(&why)], None).await;
        }
        let msg = match manscdp::parse(&tx.original.body) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(device = %id, error = %e, "GB/T 28181: unreadable MESSAGE body");
                return tx.reply_with(StatusCode::BadRequest, vec![warning(&e.to_string())], None).await;
            }
        };
        let now = self.now();
        let alive = self.state.lock().expect("gb state").presence.alive(&id, now);
        let change = match alive {
            Ok(c) => c,
            Err(NotRegistered) => {
                return tx
                    .reply_with(StatusCode::Forbidden, vec![warning("not registered: REGISTER first")], None)
                    .await;
            }
        };
        tx.reply(StatusCode::OK).await?;
        if (matches!(msg, Message::Keepalive { .. }) || change.is_some())
            && let Err(e) = self.registry.gb_alive(&id, now).await
        {
            tracing::error!(device = %id, error = %e, "GB/T 28181: cannot store a keepalive");
        }
        if let Some(c) = &change {
            self.tell_device(c).await;
        }
        match msg {
            Message::Keepalive { .. } => {}
            Message::Catalog(page) => self.catalog_page(&id, page, now).await,
            Message::DeviceInfo(i) => {
                if let Err(e) = self.registry.gb_device_info(&id, &i.manufacturer, &i.model, &i.firmware, now).await {
                    tracing::error!(device = %id, error = %e, "GB/T 28181: cannot store device info");
                }
            }
            Message::Alarm(notice) => {
                tracing::info!(device = %id, channel = %notice.device_id, priority = notice.priority, "GB/T 28181 alarm");
                let _ = self.updates.send(GbUpdate::Alarm { device: id, notice, at: now }).await;
            }
            Message::Other { root, cmd } => {
                tracing::debug!(device = %id, %root, %cmd, "GB/T 28181: message not acted on")
            }
        }
        Ok(())
    }

    async fn catalog_page(&self, device: &str, page: manscdp::CatalogPage, now: Millis) {
        if page.notify {
            // A change the device reports: what it names is stored, nothing else is touched.
            let items: BTreeMap<String, CatalogItem> = page.items.into_iter().map(|i| (i.id.clone(), i)).collect();
            let n = items.len();
            self.store_catalog(device, items, Listing::Change, n, now, now).await;
            return;
        }
        let (superseded, done) = {
            let mut st = self.state.lock().expect("gb state");
            let fresh = || Assembly {
                sn: page.sn,
                sum: page.sum_num,
                items: BTreeMap::new(),
                started: now,
                last: now,
                complete: false,
            };
            let a = st.catalogs.entry(device.to_string()).or_insert_with(fresh);
            let mut superseded = None;
            if a.sn != page.sn {
                // A new answer while an older one is unfinished: what the older one brought is
                // stored as incomplete, never dropped.
                let old = std::mem::replace(a, fresh());
                if !old.items.is_empty() {
                    superseded = Some((old.items, old.sum, old.started));
                }
            }
            if a.complete {
                // A repeat of a page of an answer already stored whole (pages are handled
                // concurrently, and devices resend).
                return;
            }
            a.sum = a.sum.max(page.sum_num);
            a.last = now;
            for item in page.items {
                a.items.insert(item.id.clone(), item);
            }
            a.complete = a.sum > 0 && a.items.len() >= a.sum;
            let done = a.complete.then(|| (std::mem::take(&mut a.items), a.sum, a.started));
            (superseded, done)
        };
        if let Some((items, sum, started)) = superseded {
            self.store_catalog(device, items, Listing::Incomplete, sum, started, now).await;
        }
        if let Some((items, sum, started)) = done {
            self.store_catalog(device, items, Listing::Complete, sum, started, now).await;
        }
    }

    /// Stores a catalog answer (or change) of `sum` items begun at `started`.
    async fn store_catalog(
        &self,
        device: &str,
        items: BTreeMap<String, CatalogItem>,
        listing: Listing,
        sum: usize,
        started: Millis,
        now: Millis,
    ) {
        let dev_cfg = self.cfg.device(device);
        let total = items.len();
        let mut channels = Vec::new();
        // Channels said to be off, with why; channels whose state alone a notification changes
        // (ON/OFF/VLOST/DEFECT carry no description: name, place and kind stay as they are);
        // channels the device removed (DEL).
        let mut off: HashMap<String, String> = HashMap::new();
        let mut state_only = Vec::new();
        let mut removed = Vec::new();
        for item in items.values() {
            let Ok(code) = item.id.parse::<Gb28181Code>() else { continue };
            let why_off = || item.event.and_then(CatalogEvent::offline_reason).unwrap_or("reported OFF").to_string();
            match item.event {
                Some(CatalogEvent::Del) => {
                    removed.push(item.id.clone());
                    continue;
                }
                Some(CatalogEvent::On | CatalogEvent::Off | CatalogEvent::VideoLost | CatalogEvent::Defect)
                    if listing == Listing::Change =>
                {
                    if item.online == Some(false) {
                        off.insert(item.id.clone(), why_off());
                    }
                    state_only.push(item.id.clone());
                    continue;
                }
                _ => {}
            }
            let kind = if code.device_type == 121 {
                CameraKind::Checkpoint
            } else {
                dev_cfg.map(|d| d.kind).unwrap_or(CameraKind::Street)
            };
            if item.online == Some(false) {
                off.insert(item.id.clone(), why_off());
            }
            channels.push(GbChannel {
                id: item.id.clone(),
                name: if item.name.is_empty() { item.id.clone() } else { item.name.clone() },
                position: item.position,
                grid_cell: self.cell_of(&item.civil_code).or_else(|| dev_cfg.and_then(|d| d.grid_cell.clone())),
                kind,
                owner: dev_cfg.map(|d| d.owner).unwrap_or(Owner::Public),
            });
        }
        let others = total - channels.len() - state_only.len() - removed.len();
        let waited = now - started;
        let note = match listing {
            Listing::Complete => format!("complete: {} video channels, {others} other items", channels.len()),
            Listing::Incomplete => format!(
                "incomplete: {total} of {sum} items arrived within {} s; {} video channels stored, none removed",
                waited / 1000,
                channels.len()
            ),
            Listing::Change => format!(
                "change notified: {} video channels described, {} changed state, {} removed, {others} other items",
                channels.len(),
                state_only.len(),
                removed.len()
            ),
        };
        let complete = listing == Listing::Complete;
        let stored = match self.registry.put_gb_catalog(device, &channels, complete, &note, now).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(device, error = %e, "GB/T 28181: cannot store a catalog");
                return;
            }
        };
        let gone = if removed.is_empty() {
            Vec::new()
        } else {
            match self.registry.gb_remove_channels(device, &removed, &note, now).await {
                Ok(g) => g,
                Err(e) => {
                    tracing::error!(device, error = %e, "GB/T 28181: cannot remove channels");
                    Vec::new()
                }
            }
        };
        tracing::info!(device, stored = stored.stored, gone = stored.gone.len() + gone.len(), %note, "GB/T 28181 catalog stored");
        // The device's own channels whose state a notification changed (not cameras configured
        // by hand: their ingest says how they are).
        let own: HashSet<String> = if state_only.is_empty() {
            HashSet::new()
        } else {
            self.registry.gb_channels(device).await.unwrap_or_default().into_iter().collect()
        };
        let online = {
            let mut st = self.state.lock().expect("gb state");
            for id in channels.iter().map(|c| &c.id).chain(&state_only).chain(&removed) {
                st.channels_off.remove(id);
            }
            st.channels_off.extend(off.iter().map(|(k, v)| (k.clone(), v.clone())));
            st.presence.is_online(device)
        };
        let status = channels
            .iter()
            .map(|c| &c.id)
            .filter(|id| !stored.configured.contains(id))
            .chain(state_only.iter().filter(|id| own.contains(*id)))
            .map(|id| {
                if !online {
                    (id.clone(), false, format!("GB/T 28181 device {device} is offline"))
                } else if let Some(why) = off.get(id) {
                    (id.clone(), false, format!("channel {why} by GB/T 28181 device {device}"))
                } else {
                    (id.clone(), true, format!("GB/T 28181 device {device} online"))
                }
            })
            .collect::<Vec<_>>();
        if !status.is_empty() {
            let _ = self.updates.send(GbUpdate::Status(status)).await;
        }
    }

    /// The grid cell a civil code names: the longest cell id that the code starts with (cells
    /// named by administrative division codes), at least 6 digits.
    fn cell_of(&self, civil: &str) -> Option<String> {
        if civil.len() < 6 || !civil.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.grid_cells
            .iter()
            .filter(|c| c.len() >= 6 && civil.starts_with(c.as_str()))
            .max_by_key(|c| c.len())
            .cloned()
    }

    /// A device came online or went offline: its channels follow.
    async fn tell_device(&self, c: &Change) {
        let cams = match self.registry.gb_channels(&c.device).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(device = %c.device, error = %e, "GB/T 28181: cannot read a device's channels");
                return;
            }
        };
        if !c.online {
            tracing::warn!(device = %c.device, reason = %c.reason, "GB/T 28181 device offline");
        }
        let off = self.state.lock().expect("gb state").channels_off.clone();
        let status: Vec<_> = cams
            .into_iter()
            .map(|cam| {
                if !c.online {
                    (cam, false, format!("GB/T 28181 device {} offline: {}", c.device, c.reason))
                } else if let Some(why) = off.get(&cam) {
                    let r = format!("channel {why} by GB/T 28181 device {}", c.device);
                    (cam, false, r)
                } else {
                    (cam, true, format!("GB/T 28181 device {} online", c.device))
                }
            })
            .collect();
        if !status.is_empty() {
            let _ = self.updates.send(GbUpdate::Status(status)).await;
        }
    }

    /// Offline devices, unfinished catalogs past their time.
    async fn tick(self: &Arc<Self>) {
        let now = self.now();
        let timeout = i64::from(self.cfg.catalog_timeout_s) * 1000;
        let (changes, late) = {
            let mut st = self.state.lock().expect("gb state");
            let changes = st.presence.due(now);
            // Catalog subscriptions due for renewal, of devices that are online.
            let State { subscriptions, presence, .. } = &mut *st;
            for (device, at) in subscriptions.iter_mut().filter(|(d, at)| **at <= now && presence.is_online(d)) {
                *at = Millis::MAX;
                let (me, device) = (self.clone(), device.clone());
                tokio::spawn(async move { me.subscribe_catalog(&device).await });
            }
            let late: Vec<(String, BTreeMap<String, CatalogItem>, usize, Millis)> = st
                .catalogs
                .iter_mut()
                .filter(|(_, a)| !a.items.is_empty() && now - a.last >= timeout)
                .map(|(d, a)| (d.clone(), std::mem::take(&mut a.items), a.sum, a.started))
                .collect();
            (changes, late)
        };
        for c in changes {
            if let Err(e) = self.registry.gb_offline(&c.device, &c.reason, false, now).await {
                tracing::error!(device = %c.device, error = %e, "GB/T 28181: cannot store a device offline");
            }
            self.tell_device(&c).await;
        }
        for (device, items, sum, started) in late {
            self.store_catalog(&device, items, Listing::Incomplete, sum, started, now).await;
        }
    }

    /// The address a device reaches us on for media: `media_ip`, else the local address that
    /// faces it.
    fn media_ip(&self, device_ip: Option<std::net::IpAddr>) -> std::net::IpAddr {
        if let Some(ip) = self.cfg.media_ip {
            return ip;
        }
        if !self.cfg.listen.ip().is_unspecified() {
            return self.cfg.listen.ip();
        }
        device_ip
            .and_then(|ip| {
                let any: SocketAddr = if ip.is_ipv6() { "[::]:0".parse().ok()? } else { "0.0.0.0:0".parse().ok()? };
                let s = std::net::UdpSocket::bind(any).ok()?;
                s.connect(SocketAddr::new(ip, 9)).ok()?;
                s.local_addr().ok().map(|a| a.ip())
            })
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
    }

    async fn invite(
        self: Arc<Self>,
        device: &str,
        channel: &str,
        transport: StreamTransport,
        port: u16,
    ) -> Result<Call, String> {
        let peer = {
            let st = self.state.lock().expect("gb state");
            if !st.presence.is_online(device) {
                return Err(format!("GB/T 28181 device {device} is not registered (offline)"));
            }
            st.peers.get(device).cloned()
        };
        let Some(peer) = peer else { return Err(format!("GB/T 28181 device {device} has no known address")) };
        let device_ip = match &peer.target.addr.host {
            rsipstack::sip::Host::IpAddr(ip) => Some(*ip),
            _ => None,
        };
        let serial = self.ssrc_serial.fetch_add(1, Ordering::Relaxed);
        let ssrc = media::live_ssrc(&self.cfg.domain, serial);
        let offer = Offer { platform: self.cfg.id.clone(), ip: self.media_ip(device_ip), port, transport, ssrc };
        let sdp = media::offer_sdp(&offer);
        let local = peer_local(&self.endpoint, &peer);
        let uri = |s: String| Uri::try_from(s.as_str()).map_err(|e| format!("cannot build the INVITE: {e}"));
        let opt = InviteOption {
            caller: uri(format!("sip:{}@{}", self.cfg.id, self.cfg.domain))?,
            callee: uri(format!("sip:{channel}@{}", peer.target.addr))?,
            destination: Some(peer.target.clone()),
            content_type: Some("application/sdp".into()),
            offer: Some(sdp.into_bytes()),
            contact: uri(format!("sip:{}@{}", self.cfg.id, local.addr))?,
            // §9.2.2: `Subject: <channel>:<ssrc>,<platform>:0`.
            headers: Some(vec![Header::Subject(format!("{channel}:{ssrc:010},{}:0", self.cfg.id).into())]),
            ..Default::default()
        };
        let (state_tx, mut state_rx) = self.dialogs.new_dialog_state_channel();
        let ended = Arc::new(Mutex::new(None::<String>));
        let watch = ended.clone();
        let layer = self.dialogs.clone();
        tokio::spawn(async move {
            while let Some(state) = state_rx.recv().await {
                if let DialogState::Terminated(id, reason) = state {
                    let why = match reason {
                        TerminatedReason::UasBye => "the device sent BYE".to_string(),
                        TerminatedReason::Timeout => "the call timed out".to_string(),
                        other => format!("{other:?}"),
                    };
                    watch.lock().expect("call state").get_or_insert(why);
                    layer.remove_dialog(&id);
                    break;
                }
            }
        });
        let wait = Duration::from_secs(u64::from(self.cfg.invite_timeout_s));
        let (dialog, response) = match tokio::time::timeout(wait, self.dialogs.do_invite(opt, state_tx)).await {
            Err(_) => {
                return Err(format!(
                    "GB/T 28181 device {device} did not answer the INVITE for {channel} within {} s",
                    wait.as_secs()
                ));
            }
            Ok(Err(e)) => return Err(format!("INVITE to GB/T 28181 device {device} failed: {e}")),
            Ok(Ok(r)) => r,
        };
        let response = match response {
            Some(r) if r.status_code.kind() == rsipstack::sip::StatusCodeKind::Successful => r,
            Some(r) => {
                return Err(format!("GB/T 28181 device {device} refused the INVITE for {channel}: {}", r.status_code));
            }
            None => return Err(format!("GB/T 28181 device {device} gave no answer to the INVITE for {channel}")),
        };
        self.calls.fetch_add(1, Ordering::Relaxed);
        let parsed = media::parse_answer(&response.body);
        let placeholder =
            || Answer { remote: SocketAddr::from(([0, 0, 0, 0], 0)), encoding: String::new(), tcp: false, ssrc: None };
        let call = Call {
            answer: parsed.clone().unwrap_or_else(|_| placeholder()),
            offered_ssrc: ssrc,
            ended,
            dialog,
            server: self.clone(),
        };
        match parsed {
            Ok(answer) => {
                tracing::info!(device, channel, ssrc, remote = %answer.remote, encoding = %answer.encoding, "GB/T 28181 live video call");
                Ok(call)
            }
            Err(e) => {
                call.hang_up().await;
                Err(format!("GB/T 28181 device {device}'s answer for {channel}: {e}"))
            }
        }
    }

    /// Sends a query MESSAGE to a device and waits for its answer to the request (the data comes
    /// in MESSAGEs of its own).
    async fn query(&self, device: &str, cmd: &str) {
        let sn = self.sn.fetch_add(1, Ordering::Relaxed);
        let body = manscdp::query(cmd, sn, device);
        match self.request(device, Method::Message, vec![], body).await {
            Ok(code) if code.kind() == rsipstack::sip::StatusCodeKind::Successful => {
                tracing::debug!(device, cmd, sn, "GB/T 28181 query accepted");
            }
            Ok(code) => tracing::warn!(device, cmd, %code, "GB/T 28181 query refused"),
            Err(e) => tracing::warn!(device, cmd, error = %e, "GB/T 28181 query"),
        }
    }

    /// Subscribes to the device's catalog changes (§9.11: `SUBSCRIBE` with `Event: Catalog`): it
    /// then NOTIFYs channels added, removed, updated, on and off. Renewed at three quarters of
    /// its time; a device that refuses is not asked again until it registers again.
    async fn subscribe_catalog(&self, device: &str) {
        let secs = self.cfg.catalog_subscribe_s;
        if secs == 0 {
            return;
        }
        let sn = self.sn.fetch_add(1, Ordering::Relaxed);
        let body = manscdp::query("Catalog", sn, device);
        let headers = vec![Header::Other("Event".into(), format!("Catalog;id={sn}")), Header::Expires(secs.into())];
        let renew_at = match self.request(device, Method::Subscribe, headers, body).await {
            Ok(code) if code.kind() == rsipstack::sip::StatusCodeKind::Successful => {
                tracing::debug!(device, sn, "GB/T 28181 catalog subscription accepted");
                self.now() + i64::from(secs) * 750
            }
            Ok(code) => {
                tracing::info!(device, %code, "GB/T 28181 device does not take catalog subscriptions");
                i64::MAX
            }
            Err(e) => {
                tracing::warn!(device, error = %e, "GB/T 28181 catalog subscription");
                // Tried again within a minute.
                self.now() + 60_000
            }
        };
        self.state.lock().expect("gb state").subscriptions.insert(device.to_string(), renew_at);
    }

    /// Sends a request outside any dialog to a device and waits for its final answer (the data
    /// of a query comes in MESSAGEs of its own).
    async fn request(
        &self,
        device: &str,
        method: Method,
        headers: Vec<Header>,
        body: Vec<u8>,
    ) -> Result<StatusCode, String> {
        let Some(peer) = self.state.lock().expect("gb state").peers.get(device).cloned() else {
            return Err("no known address".into());
        };
        let via = self.endpoint.get_via(Some(peer_local(&self.endpoint, &peer)), None).map_err(|e| e.to_string())?;
        let uri = Uri::try_from(format!("sip:{device}@{}", peer.target.addr).as_str()).map_err(|e| e.to_string())?;
        let from = rsipstack::sip::typed::From {
            display_name: None,
            uri: Uri::try_from(format!("sip:{}@{}", self.cfg.id, self.cfg.domain).as_str())
                .map_err(|e| e.to_string())?,
            params: vec![],
        }
        .with_tag(make_tag());
        let to = rsipstack::sip::typed::To {
            display_name: None,
            uri: Uri::try_from(format!("sip:{device}@{}", self.cfg.domain).as_str()).map_err(|e| e.to_string())?,
            params: vec![],
        };
        let seq = self.cseq.fetch_add(1, Ordering::Relaxed);
        let mut req = self.endpoint.make_request(method, uri, via, from, to, seq, None);
        if method == Method::Subscribe {
            let local = peer_local(&self.endpoint, &peer);
            req.headers.push(Header::Contact(format!("<sip:{}@{}>", self.cfg.id, local.addr).into()));
        }
        req.headers.extend(headers);
        req.headers.push(Header::ContentType("Application/MANSCDP+xml".into()));
        req.headers.push(Header::ContentLength(body.len().to_string().into()));
        req.body = body;
        let key = TransactionKey::from_request(&req, TransactionRole::Client).map_err(|e| e.to_string())?;
        let mut tx = Transaction::new_client(key, req, self.endpoint.clone(), peer.connection.clone());
        tx.destination = Some(peer.target.clone());
        tx.send().await.map_err(|e| format!("not sent: {e}"))?;
        let answer = tokio::time::timeout(Duration::from_secs(40), async {
            while let Some(m) = tx.receive().await {
                if let SipMessage::Response(r) = m
                    && r.status_code.kind() != rsipstack::sip::StatusCodeKind::Provisional
                {
                    return Some(r.status_code);
                }
            }
            None
        })
        .await;
        match answer {
            Ok(Some(code)) => Ok(code),
            _ => Err("unanswered".into()),
        }
    }
}

/// The host and port of a Contact header's URI (`<sip:id@host:port;…>` or bare).
fn contact_target(value: &str) -> Option<rsipstack::sip::HostWithPort> {
    let inner = match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or(value),
    };
    Uri::try_from(inner.trim()).ok().map(|u| u.host_with_port)
}

/// The local address a request to `peer` leaves from (for its Via).
fn peer_local(endpoint: &EndpointInnerRef, peer: &Peer) -> SipAddr {
    match &peer.connection {
        Some(c) => c.get_addr().clone(),
        None => endpoint
            .transport_layer
            .get_addrs()
            .into_iter()
            .find(|a| a.r#type == Some(rsipstack::sip::Transport::Udp))
            .unwrap_or_else(|| peer.target.clone()),
    }
}
