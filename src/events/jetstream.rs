//! The event log on NATS JetStream: the registry is its outbox, JetStream carries it to the
//! consumers.
//!
//! Every event is first committed in the registry, in the transaction of what caused it (a
//! worker's detection fenced by its camera's lease, a status change with its event): the registry
//! stays the single source of truth, and nothing a producer wrote can be lost by the broker. A
//! relay, run by the node that writes alerts (one at a time in a city, `events::Active`), reads the
//! log in order and publishes each event to the stream `<stream>` on the subject
//! `<prefix>.<lane>.<kind>` with `Nats-Msg-Id` = its position (a relay that restarts, or a
//! second one during a hand-over, publishes nothing twice within the stream's duplicate window),
//! the headers `Tianwang-Position`, `Tianwang-Prev` (the previous position of the same lane),
//! `Tianwang-At-Ms` and `Tianwang-Kind`, and the event's JSON as its payload. It acknowledges how
//! far it got in the registry (consumer `jetstream.relay`) once JetStream acknowledged.
//!
//! The log's readers (the alert service's lanes, the ring watcher) read through a durable pull
//! consumer each (`tw_<consumer>`, filtered to its lane, explicit acknowledgement of everything up
//! to a message, redelivery after 30 s). A reader acknowledges in JetStream what it stored: when
//! it asks for events after a position, everything up to that position is done (the alert service
//! stores its position in the transaction of its alerts). Each message's `Tianwang-Prev` proves
//! that nothing of its lane is missing between it and what the reader had: a message that does
//! not follow (deleted, lost with the broker's storage, a stream made anew) makes that read come
//! from the registry instead, and the consumer is placed again. Duplicates (redeliveries, a
//! relay's re-publication past the duplicate window) are skipped by position.
//!
//! When NATS does not answer, or the relay is behind and failing, reads come from the registry
//! (counted), so alerts never wait for the broker; the relay catches up when NATS is back.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use async_trait::async_trait;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::contract::{Event, Lane};
use super::log::{EventLog, LogError, NewEvent, Position, Read, SqlLog, Stored, Undecodable};
use crate::registry::Registry;

/// The registry consumer under which the relay keeps how far it published.
pub const RELAY: &str = "jetstream.relay";
const H_POSITION: &str = "Tianwang-Position";
const H_PREV: &str = "Tianwang-Prev";
const H_AT: &str = "Tianwang-At-Ms";
const H_KIND: &str = "Tianwang-Kind";
/// How long reads come from the registry after NATS failed to answer one.
const DOWN_FOR: Duration = Duration::from_secs(5);
/// How long a request to NATS may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Events the relay publishes per round (their acknowledgements are awaited together).
const RELAY_BATCH: u32 = 512;

/// Where the log lives in NATS.
#[derive(Debug, Clone, PartialEq)]
pub struct JetStreamOptions {
    /// `nats://host:port` (several separated by commas).
    pub url: String,
    /// The stream's name (letters, digits, `-` and `_`); its subjects are the name in lower case
    /// with `_` as `.`: `TIANWANG_EVENTS` → `tianwang.events.<lane>.<kind>`.
    pub stream: String,
    /// How long the stream keeps an event (the registry keeps it for good).
    pub max_age: Duration,
}

impl JetStreamOptions {
    pub fn new(url: &str) -> JetStreamOptions {
        JetStreamOptions {
            url: url.to_string(),
            stream: "TIANWANG_EVENTS".into(),
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }

    /// Checks the stream name.
    pub fn validate(&self) -> Result<(), String> {
        let ok = !self.stream.is_empty()
            && self.stream.len() <= 64
            && self.stream.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(format!(
                "NATS stream name {:?}: use 1 to 64 letters, digits, '-' or '_'",
                self.stream.chars().take(80).collect::<String>()
            ));
        }
        if self.url.trim().is_empty() {
            return Err("NATS URL is empty".into());
        }
        Ok(())
    }

    /// The subjects' prefix.
    pub fn prefix(&self) -> String {
        self.stream.to_ascii_lowercase().replace('_', ".").replace('-', "_")
    }

    #[cfg(test)]
    fn subject(&self, lane: Lane, kind: &str) -> String {
        subject(&self.prefix(), lane, kind)
    }
}

/// The subject of an event of `lane` and `kind` under `prefix`.
fn subject(prefix: &str, lane: Lane, kind: &str) -> String {
    let kind: String = kind.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    format!("{prefix}.{}.{kind}", lane.as_str())
}

/// What the JetStream log did (for `/metrics` and `/api/v1/cluster`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct JetStreamStats {
    pub stream: String,
    /// The relay runs on this node now (it writes alerts).
    pub relay_running: bool,
    /// The last position the relay published and JetStream acknowledged.
    pub relayed_position: i64,
    pub relayed_events: u64,
    pub relay_failures: u64,
    /// Reads served from JetStream, and from the registry instead (NATS down, relay failing, or
    /// a message that did not follow).
    pub reads_jetstream: u64,
    pub reads_registry: u64,
    /// Messages that did not follow what a reader had (the read came from the registry).
    pub gaps: u64,
    /// Duplicates and redeliveries skipped by position.
    pub duplicates_skipped: u64,
}

#[derive(Default)]
struct Counters {
    relay_running: AtomicBool,
    relay_ok: AtomicBool,
    relayed_position: AtomicI64,
    relayed_events: AtomicU64,
    relay_failures: AtomicU64,
    reads_jetstream: AtomicU64,
    reads_registry: AtomicU64,
    gaps: AtomicU64,
    duplicates_skipped: AtomicU64,
}

/// One reader's place in its durable consumer.
struct Cursor {
    lane: Lane,
    consumer: consumer::PullConsumer,
    /// Fetched and not yet acknowledged, in order, all following one another.
    buffered: VecDeque<Fetched>,
    /// The newest position fetched (or the position the consumer was placed after).
    last: Position,
    /// Everything up to here was acknowledged in JetStream.
    acked: Position,
}

struct Fetched {
    position: Position,
    read: Read,
    message: jetstream::Message,
}

/// What a read through JetStream found.
enum JsRead {
    Events(Vec<Read>),
    /// A message that does not follow what the reader had.
    Gap,
}

/// See the module documentation.
pub struct JetStreamLog {
    sql: SqlLog,
    opts: JetStreamOptions,
    /// `opts.prefix()`, worked out once (every event's subject starts with it).
    prefix: String,
    client: async_nats::Client,
    js: jetstream::Context,
    stream: tokio::sync::Mutex<Option<stream::Stream>>,
    cursors: tokio::sync::Mutex<HashMap<String, Cursor>>,
    down_until: std::sync::Mutex<Option<Instant>>,
    hint: tokio::sync::watch::Sender<Position>,
    counters: Arc<Counters>,
}

#[derive(Debug, thiserror::Error)]
#[error("NATS JetStream: {0}")]
pub struct JsError(String);

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError(e.to_string())
}

impl JetStreamLog {
    /// Connects (in the background: a broker that is down at start is retried, and reads come
    /// from the registry meanwhile).
    pub async fn connect(registry: Registry, opts: JetStreamOptions) -> Result<Arc<JetStreamLog>, String> {
        opts.validate()?;
        // Credentials in the URL are handed over apart from it, so that no log line of the
        // client (it names the server it dials) can carry them.
        let (servers, user) = split_credentials(&opts.url);
        let mut connect = async_nats::ConnectOptions::new();
        if let Some((user, pass)) = user {
            connect = match pass {
                Some(pass) => connect.user_and_password(user, pass),
                None => connect.token(user),
            };
        }
        let client = connect
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(REQUEST_TIMEOUT)
            .request_timeout(Some(REQUEST_TIMEOUT))
            .name("tianwang")
            .connect(servers.as_str())
            .await
            .map_err(|e| format!("NATS at {}: {e}", redact(&opts.url)))?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(REQUEST_TIMEOUT);
        let (hint, _) = tokio::sync::watch::channel(0);
        let log = Arc::new(JetStreamLog {
            sql: SqlLog::new(registry),
            prefix: opts.prefix(),
            opts,
            client,
            js,
            stream: tokio::sync::Mutex::new(None),
            cursors: tokio::sync::Mutex::new(HashMap::new()),
            down_until: std::sync::Mutex::new(None),
            hint,
            counters: Arc::new(Counters::default()),
        });
        // Readers wake on what this process appended (as with the registry's log) and on what
        // the relay published.
        let weak = Arc::downgrade(&log);
        let mut appended = log.sql.appended();
        tokio::spawn(async move {
            while appended.changed().await.is_ok() {
                let p = *appended.borrow_and_update();
                match weak.upgrade() {
                    Some(log) => log.hint.send_replace(p),
                    None => break,
                };
            }
        });
        Ok(log)
    }

    pub fn stats(&self) -> JetStreamStats {
        let c = &self.counters;
        JetStreamStats {
            stream: self.opts.stream.clone(),
            relay_running: c.relay_running.load(Ordering::Relaxed),
            relayed_position: c.relayed_position.load(Ordering::Relaxed),
            relayed_events: c.relayed_events.load(Ordering::Relaxed),
            relay_failures: c.relay_failures.load(Ordering::Relaxed),
            reads_jetstream: c.reads_jetstream.load(Ordering::Relaxed),
            reads_registry: c.reads_registry.load(Ordering::Relaxed),
            gaps: c.gaps.load(Ordering::Relaxed),
            duplicates_skipped: c.duplicates_skipped.load(Ordering::Relaxed),
        }
    }

    /// The stream, made when missing.
    async fn stream(&self) -> Result<stream::Stream, JsError> {
        let mut g = self.stream.lock().await;
        if let Some(s) = g.as_ref() {
            return Ok(s.clone());
        }
        let cfg = stream::Config {
            name: self.opts.stream.clone(),
            subjects: vec![format!("{}.>", self.prefix)],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            max_age: self.opts.max_age,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        };
        let s = self.js.get_or_create_stream(cfg).await.map_err(js_err)?;
        *g = Some(s.clone());
        Ok(s)
    }

    fn down(&self) -> bool {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return true;
        }
        let g = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        g.is_some_and(|t| Instant::now() < t)
    }

    fn mark_down(&self, why: &JsError) {
        let mut g = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        if !g.is_some_and(|t| Instant::now() < t) {
            tracing::warn!(error = %why, "reading the event log from the registry while NATS JetStream does not answer");
        }
        *g = Some(Instant::now() + DOWN_FOR);
    }

    async fn sql_read(&self, consumer: &str, lane: Lane, after: Position, limit: u32) -> Result<Vec<Read>, LogError> {
        self.counters.reads_registry.fetch_add(1, Ordering::Relaxed);
        self.sql.read(consumer, lane, after, limit).await
    }

    /// The first stream sequence whose event lies after `after` (messages deleted from the
    /// stream are stepped over).
    async fn start_after(&self, s: &stream::Stream, after: Position) -> Result<u64, JsError> {
        let mut s = s.clone();
        let state = s.info().await.map_err(js_err)?.state.clone();
        if state.messages == 0 {
            return Ok(state.last_sequence + 1);
        }
        let (mut lo, mut hi) = (state.first_sequence, state.last_sequence + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            // The first message at or after `mid` that still exists.
            let mut found = None;
            let mut seq = mid;
            while seq < hi {
                match s.get_raw_message(seq).await {
                    Ok(m) => {
                        found = Some((seq, header_i64(&m.headers, H_POSITION).unwrap_or(0)));
                        break;
                    }
                    Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => seq += 1,
                    Err(e) => return Err(js_err(e)),
                }
            }
            match found {
                None => hi = mid,
                Some((_, p)) if p > after => hi = mid,
                Some((seq, _)) => lo = seq + 1,
            }
        }
        Ok(lo)
    }

    /// A durable consumer for the reader, placed at the first event of its lane after `after`.
    async fn place(&self, name: &str, lane: Lane, after: Position) -> Result<Cursor, JsError> {
        let s = self.stream().await?;
        let start = self.start_after(&s, after).await?;
        let durable = durable_name(name);
        match s.delete_consumer(&durable).await {
            Ok(_) => {}
            Err(e) if e.to_string().contains("not found") => {}
            Err(e) => return Err(js_err(e)),
        }
        let cfg = consumer::pull::Config {
            durable_name: Some(durable.clone()),
            description: Some(format!("tianwang reader {name}")),
            filter_subject: format!("{}.{}.>", self.prefix, lane.as_str()),
            ack_policy: consumer::AckPolicy::All,
            ack_wait: Duration::from_secs(30),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: start.max(1) },
            max_ack_pending: 100_000,
            ..Default::default()
        };
        let consumer = s.create_consumer(cfg).await.map_err(js_err)?;
        tracing::info!(consumer = name, durable, lane = lane.as_str(), after, start, "JetStream consumer placed");
        Ok(Cursor { lane, consumer, buffered: VecDeque::new(), last: after, acked: after })
    }

    async fn js_read(&self, name: &str, lane: Lane, after: Position, limit: u32) -> Result<JsRead, JsError> {
        let mut cursors = self.cursors.lock().await;
        let usable = cursors.get(name).is_some_and(|c| {
            // Back before what was acknowledged, or ahead of everything fetched (the reader went
            // on from the registry): placed again.
            c.lane == lane && after >= c.acked && (after <= c.last || !c.buffered.is_empty())
        });
        if !usable {
            cursors.remove(name);
            let c = self.place(name, lane, after).await?;
            cursors.insert(name.to_string(), c);
        }
        let cur = cursors.get_mut(name).expect("placed above");
        // Done with everything up to `after`: acknowledged (all up to the newest such message).
        let mut done = None;
        while cur.buffered.front().is_some_and(|f| f.position <= after) {
            done = cur.buffered.pop_front();
        }
        if let Some(f) = done {
            f.message.ack().await.map_err(js_err)?;
            cur.acked = cur.acked.max(f.position);
        }
        if after > cur.last {
            cur.last = after;
        }
        let want = limit.max(1) as usize;
        if cur.buffered.len() < want {
            let mut batch =
                cur.consumer.fetch().max_messages(want - cur.buffered.len()).messages().await.map_err(js_err)?;
            while let Some(m) = batch.next().await {
                let m = m.map_err(js_err)?;
                let headers = m.headers.as_ref();
                let (Some(position), Some(prev)) =
                    (headers.and_then(|h| header_i64(h, H_POSITION)), headers.and_then(|h| header_i64(h, H_PREV)))
                else {
                    // Not published by a relay: nothing of ours; acknowledged and left.
                    tracing::warn!(subject = %m.subject, "a message without tianwang's headers on the event stream; skipped");
                    let _ = m.ack().await;
                    continue;
                };
                if position <= cur.last {
                    self.counters.duplicates_skipped.fetch_add(1, Ordering::Relaxed);
                    if cur.buffered.is_empty() {
                        let _ = m.ack().await;
                    }
                    continue;
                }
                if prev > cur.last {
                    // Events of the lane between what the reader had and this one are missing.
                    self.counters.gaps.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        consumer = name,
                        had = cur.last,
                        prev,
                        position,
                        "the event stream misses events; read from the registry and the consumer placed again"
                    );
                    cursors.remove(name);
                    return Ok(JsRead::Gap);
                }
                let kind = headers.and_then(|h| h.get(H_KIND)).map(|v| v.as_str().to_string()).unwrap_or_default();
                let at_ms = headers.and_then(|h| header_i64(h, H_AT)).unwrap_or(0);
                let payload = String::from_utf8_lossy(&m.payload).into_owned();
                let read = match Event::decode(&kind, &payload) {
                    Ok(event) => Ok(Stored { position, at_ms, event }),
                    Err(error) => Err(Undecodable { position, at_ms, kind, error }),
                };
                cur.last = position;
                cur.buffered.push_back(Fetched { position, read, message: m });
            }
        }
        Ok(JsRead::Events(cur.buffered.iter().take(want).map(|f| f.read.clone()).collect()))
    }

    /// Relays the registry's log to JetStream while this node is active (it writes alerts);
    /// returns when `cancel` fires.
    /// `readers` are the log's readers: a relay that never ran starts where the slowest is.
    pub async fn relay(self: Arc<Self>, readers: Vec<String>, mut active: super::Active, cancel: CancellationToken) {
        loop {
            if !super::until_active(&mut active, &cancel).await {
                break;
            }
            self.counters.relay_running.store(true, Ordering::Relaxed);
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = super::until_inactive(&mut active) => {}
                _ = self.relay_while_active(&readers, &cancel) => {}
            }
            self.counters.relay_running.store(false, Ordering::Relaxed);
            self.counters.relay_ok.store(false, Ordering::Relaxed);
            if cancel.is_cancelled() {
                break;
            }
        }
    }

    async fn relay_while_active(&self, readers: &[String], cancel: &CancellationToken) {
        let mut backoff = Duration::from_millis(250);
        loop {
            match self.relay_run(readers, cancel).await {
                Ok(()) => return,
                Err(e) => {
                    self.counters.relay_failures.fetch_add(1, Ordering::Relaxed);
                    self.counters.relay_ok.store(false, Ordering::Relaxed);
                    tracing::warn!(error = %e, "relaying the event log to JetStream failed; trying again");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Where the relay starts: where it got to, or (never run) where the log's readers are.
    async fn relay_start(&self, readers: &[String]) -> Result<Position, String> {
        let reg = self.sql.registry();
        if let Some(p) = reg.acked(RELAY).await.map_err(|e| e.to_string())? {
            return Ok(p);
        }
        let mut start: Option<Position> = None;
        for r in readers {
            if let Some(p) = reg.acked(r).await.map_err(|e| e.to_string())? {
                start = Some(start.map_or(p, |s| s.min(p)));
            }
        }
        Ok(start.unwrap_or(0))
    }

    async fn relay_run(&self, readers: &[String], cancel: &CancellationToken) -> Result<(), String> {
        let reg = self.sql.registry().clone();
        self.stream().await.map_err(|e| e.to_string())?;
        let mut at = self.relay_start(readers).await?;
        let mut prev = HashMap::new();
        for lane in Lane::ALL {
            prev.insert(lane, reg.lane_position_at(lane.code(), at).await.map_err(|e| e.to_string())?);
        }
        let mut appended = self.sql.appended();
        loop {
            let rows = reg.read_all(at, RELAY_BATCH).await.map_err(|e| e.to_string())?;
            if rows.is_empty() {
                self.counters.relay_ok.store(true, Ordering::Relaxed);
                self.counters.relayed_position.store(at, Ordering::Relaxed);
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = appended.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
                continue;
            }
            let (n, last) = (rows.len(), rows.last().map(|(_, r)| r.position).unwrap_or(at));
            let mut acks = Vec::with_capacity(n);
            for (code, r) in rows {
                let Some(lane) = Lane::ALL.into_iter().find(|l| l.code() == code) else {
                    tracing::error!(position = r.position, lane = code, "an event of no known lane: not relayed");
                    continue;
                };
                let before = prev.insert(lane, r.position).unwrap_or(0);
                let publish = jetstream::message::PublishMessage::build()
                    .message_id(r.position.to_string())
                    .header(H_POSITION, r.position.to_string().as_str())
                    .header(H_PREV, before.to_string().as_str())
                    .header(H_AT, r.at_ms.to_string().as_str())
                    .header(H_KIND, r.kind.as_str())
                    .payload(r.payload.into_bytes().into());
                let ack = self
                    .js
                    .send_publish(subject(&self.prefix, lane, &r.kind), publish)
                    .await
                    .map_err(|e| e.to_string())?;
                acks.push(ack);
            }
            for ack in acks {
                ack.await.map_err(|e| e.to_string())?;
            }
            reg.ack(RELAY, last).await.map_err(|e| e.to_string())?;
            at = last;
            self.counters.relayed_events.fetch_add(n as u64, Ordering::Relaxed);
            self.counters.relayed_position.store(at, Ordering::Relaxed);
            self.counters.relay_ok.store(true, Ordering::Relaxed);
            self.hint.send_replace(at);
        }
    }
}

fn durable_name(consumer: &str) -> String {
    let s: String =
        consumer.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    format!("tw_{s}")
}

fn header_i64(h: &async_nats::HeaderMap, name: &str) -> Option<i64> {
    h.get(name).and_then(|v| v.as_str().parse().ok())
}

/// The servers without credentials, and the credentials of the first that had them (`user:pass`,
/// or a token alone).
fn split_credentials(urls: &str) -> (String, Option<(String, Option<String>)>) {
    let mut creds = None;
    let servers: Vec<String> = urls
        .split(',')
        .map(|u| {
            let u = u.trim();
            let (scheme, rest) = u.split_once("://").map_or(("", u), |(s, r)| (s, r));
            let (auth, host) = match rest.rsplit_once('@') {
                Some((a, h)) => (Some(a), h),
                None => (None, rest),
            };
            if let Some(a) = auth
                && creds.is_none()
            {
                creds = Some(match a.split_once(':') {
                    Some((user, pass)) => (user.to_string(), Some(pass.to_string())),
                    None => (a.to_string(), None),
                });
            }
            if scheme.is_empty() { host.to_string() } else { format!("{scheme}://{host}") }
        })
        .collect();
    (servers.join(","), creds)
}

/// The URL without its credentials (for messages).
fn redact(url: &str) -> String {
    match url.split_once('@') {
        Some((head, tail)) => match head.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://***@{tail}"),
            None => format!("***@{tail}"),
        },
        None => url.to_string(),
    }
}

#[async_trait]
impl EventLog for JetStreamLog {
    async fn append(&self, events: &[NewEvent]) -> Result<Vec<Position>, LogError> {
        self.sql.append(events).await
    }

    async fn read(&self, consumer: &str, lane: Lane, after: Position, limit: u32) -> Result<Vec<Read>, LogError> {
        // Only while the relay keeps JetStream current: behind and failing, the registry answers.
        if self.down() || !self.counters.relay_ok.load(Ordering::Relaxed) {
            return self.sql_read(consumer, lane, after, limit).await;
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, self.js_read(consumer, lane, after, limit)).await {
            Ok(Ok(JsRead::Events(reads))) => {
                self.counters.reads_jetstream.fetch_add(1, Ordering::Relaxed);
                Ok(reads)
            }
            Ok(Ok(JsRead::Gap)) => self.sql_read(consumer, lane, after, limit).await,
            Ok(Err(e)) => {
                self.cursors.lock().await.remove(consumer);
                self.mark_down(&e);
                self.sql_read(consumer, lane, after, limit).await
            }
            Err(_) => {
                self.cursors.lock().await.remove(consumer);
                self.mark_down(&JsError("no answer within 3 s".into()));
                self.sql_read(consumer, lane, after, limit).await
            }
        }
    }

    async fn backlog(&self, lane: Lane, after: Position) -> Result<i64, LogError> {
        self.sql.backlog(lane, after).await
    }

    async fn acked(&self, consumer: &str) -> Result<Option<Position>, LogError> {
        self.sql.acked(consumer).await
    }

    async fn ack(&self, consumer: &str, position: Position) -> Result<(), LogError> {
        // The registry's position is the one that counts; JetStream hears at the next read.
        self.sql.ack(consumer, position).await
    }

    async fn head(&self) -> Result<Position, LogError> {
        self.sql.head().await
    }

    fn appended(&self) -> tokio::sync::watch::Receiver<Position> {
        self.hint.subscribe()
    }

    fn undecodable(&self) -> u64 {
        self.sql.undecodable()
    }

    fn count_undecodable(&self, consumer: &str, u: &super::log::Undecodable) {
        self.sql.count_undecodable(consumer, u)
    }

    fn jetstream(&self) -> Option<JetStreamStats> {
        Some(self.stats())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_subjects() {
        let o = JetStreamOptions::new("nats://127.0.0.1:4222");
        assert_eq!(o.prefix(), "tianwang.events");
        assert_eq!(o.subject(Lane::Urgent, "alarm"), "tianwang.events.urgent.alarm");
        assert_eq!(o.subject(Lane::Bulk, "a.b*>"), "tianwang.events.bulk.a_b__");
        assert_eq!(durable_name("alerts.urgent"), "tw_alerts_urgent");
        let mut bad = o.clone();
        bad.stream = "a.b".into();
        assert!(bad.validate().is_err());
        bad.stream = String::new();
        assert!(bad.validate().is_err());
        assert_eq!(redact("nats://user:secret@host:4222"), "nats://***@host:4222");
        assert_eq!(redact("nats://host:4222"), "nats://host:4222");
        let (servers, creds) = split_credentials("nats://u:p@a:4222, nats://b:4222");
        assert_eq!(servers, "nats://a:4222,nats://b:4222");
        assert_eq!(creds, Some(("u".into(), Some("p".into()))));
        assert_eq!(split_credentials("nats://tok@a:4222").1, Some(("tok".into(), None)));
        assert_eq!(split_credentials("a:4222"), ("a:4222".into(), None));
    }
}
