//! Alerts in the registry. The alert service is their only writer: every change of an alert is
//! one transaction that also writes its audit entry and a row of the change feed (whose `seq` is
//! what SSE clients, webhook receivers and the MQTT publisher follow), and the service's batches
//! acknowledge the events they came from in the same transaction. An alert is committed before
//! anyone is told of it, and a restarted server finds every change still to deliver.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::events::lock_event_order;
use super::{Registry, RegistryError};
use crate::config::types::str_enum;

type Millis = i64;
type Tx<'a> = super::WriteTx;

/// The advisory lock that orders appends to the change feed (PostgreSQL; see `registry::events`).
const FEED_ORDER_LOCK: i64 = 0x7477_0002;

str_enum!(
    /// What an alert is about.
    AlertKind {
        WatchlistHit = "watchlist_hit",
        RingCrossing = "ring_crossing",
        Alarm = "alarm",
        RingOpened = "ring_opened",
        CameraOffline = "camera_offline",
        Motion = "motion",
        QualityFault = "quality_fault",
    }
);

str_enum!(
    /// Where an alert is in its life.
    AlertStatus { New = "new", Acknowledged = "acknowledged", Resolved = "resolved" }
);

str_enum!(
    /// What a change-feed row says happened to its alert.
    FeedChange {
        Raised = "raised",
        Repeated = "repeated",
        Escalated = "escalated",
        Acknowledged = "acknowledged",
        Assigned = "assigned",
        Commented = "commented",
        Dispatched = "dispatched",
        Recovered = "recovered",
        Resolved = "resolved",
    }
);

/// How urgent, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Major,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Info, Severity::Warning, Severity::Major, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// One step up (critical stays critical).
    pub fn up(self) -> Severity {
        match self {
            Severity::Info => Severity::Warning,
            Severity::Warning => Severity::Major,
            _ => Severity::Critical,
        }
    }
}

/// An alert as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct AlertRow {
    pub id: i64,
    pub kind: AlertKind,
    pub severity: Severity,
    pub status: AlertStatus,
    pub dedupe_key: String,
    pub title: String,
    pub cameras: Vec<String>,
    pub grid_cell_id: Option<String>,
    pub ring_id: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// Occurrences folded into this alert.
    pub count: i64,
    pub escalation_level: i64,
    pub first_at_ms: Millis,
    pub last_at_ms: Millis,
    pub created_at_ms: Millis,
    pub updated_at_ms: Millis,
    pub assignee: Option<String>,
    pub ack_by: Option<String>,
    pub ack_at_ms: Option<Millis>,
    pub resolved_by: Option<String>,
    pub resolved_at_ms: Option<Millis>,
    pub resolve_note: Option<String>,
}

/// One entry of an alert's audit trail.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditRow {
    pub at_ms: Millis,
    pub actor: String,
    pub action: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// One row of the change feed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedRow {
    pub seq: i64,
    pub alert_id: i64,
    pub at_ms: Millis,
    pub change: FeedChange,
    #[schema(value_type = Object)]
    pub alert: serde_json::Value,
}

/// A new alert to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    pub kind: AlertKind,
    pub severity: Severity,
    pub dedupe_key: String,
    pub title: String,
    pub cameras: Vec<String>,
    pub grid_cell_id: Option<String>,
    pub ring_id: Option<String>,
    pub detail: serde_json::Value,
    pub at_ms: Millis,
}

/// A change the alert service makes (it is the only writer of alerts). Changes of an open alert
/// name it by its key.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertWrite {
    Raise(NewAlert),
    /// Another occurrence; `notify` puts it on the change feed (after a quiet spell).
    Repeat {
        key: String,
        at_ms: Millis,
        count: i64,
        notify: bool,
    },
    Escalate {
        key: String,
        severity: Severity,
        level: i64,
    },
    /// Cameras of an offline alert came back; with all back it resolves itself.
    Recover {
        key: String,
        cameras: Vec<String>,
        all_back: bool,
    },
    /// The system resolves the alert (its cause is gone: a ring closed, a picture is healthy).
    Resolve {
        key: String,
        note: String,
    },
}

/// What one write did.
#[derive(Debug, Clone)]
pub struct Written {
    /// Which write of the batch.
    pub index: usize,
    pub alert: AlertRow,
    /// The change-feed row, when the change is told to the room.
    pub feed: Option<FeedRow>,
    /// A raise that found an open alert of its key (stored by an earlier writer) and was
    /// counted as a repeat of it.
    pub folded: bool,
}

/// How many open alerts one cell has at one escalation level and status.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenCount {
    pub grid_cell_id: Option<String>,
    pub escalation_level: i64,
    pub status: AlertStatus,
    pub n: i64,
}

/// Listing filters.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub statuses: Vec<AlertStatus>,
    pub severities: Vec<Severity>,
    pub kinds: Vec<AlertKind>,
    pub camera: Option<String>,
    pub grid_cell: Option<String>,
    pub from_ms: Option<Millis>,
    pub to_ms: Option<Millis>,
    /// Alerts with ids below this one (newest first paging).
    pub before_id: Option<i64>,
    /// Only alerts of these cells escalated at least this many times (the alerts that reached a
    /// duty desk: `alerts::desks::Desks::area`); none at all when empty.
    pub reach: Option<Vec<(String, i64)>>,
    pub limit: u32,
}

const COLS: &str = "id, kind, severity, status, dedupe_key, title, cameras, grid_cell_id, ring_id, detail, count, \
    escalation_level, first_at_ms, last_at_ms, created_at_ms, updated_at_ms, assignee, ack_by, ack_at_ms, resolved_by, \
    resolved_at_ms, resolve_note";

/// A stored word that is not one of the enum's: the row cannot be read.
fn column<T: FromStr<Err = String>>(r: &sqlx::any::AnyRow, name: &'static str) -> Result<T, sqlx::Error> {
    let v: String = r.try_get(name)?;
    v.parse().map_err(|e: String| sqlx::Error::ColumnDecode { index: name.into(), source: e.into() })
}

fn severity(r: &sqlx::any::AnyRow) -> Result<Severity, sqlx::Error> {
    let v: String = r.try_get("severity")?;
    Severity::parse(&v).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: "severity".into(),
        source: format!("unknown severity {v:?}").into(),
    })
}

fn row_to_alert(r: &sqlx::any::AnyRow) -> Result<AlertRow, sqlx::Error> {
    let cameras: String = r.try_get("cameras")?;
    let detail: String = r.try_get("detail")?;
    Ok(AlertRow {
        id: r.try_get("id")?,
        kind: column(r, "kind")?,
        severity: severity(r)?,
        status: column(r, "status")?,
        dedupe_key: r.try_get("dedupe_key")?,
        title: r.try_get("title")?,
        cameras: serde_json::from_str(&cameras).unwrap_or_default(),
        grid_cell_id: r.try_get("grid_cell_id")?,
        ring_id: r.try_get("ring_id")?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
        count: r.try_get("count")?,
        escalation_level: r.try_get("escalation_level")?,
        first_at_ms: r.try_get("first_at_ms")?,
        last_at_ms: r.try_get("last_at_ms")?,
        created_at_ms: r.try_get("created_at_ms")?,
        updated_at_ms: r.try_get("updated_at_ms")?,
        assignee: r.try_get("assignee")?,
        ack_by: r.try_get("ack_by")?,
        ack_at_ms: r.try_get("ack_at_ms")?,
        resolved_by: r.try_get("resolved_by")?,
        resolved_at_ms: r.try_get("resolved_at_ms")?,
        resolve_note: r.try_get("resolve_note")?,
    })
}

async fn load(tx: &mut Tx<'_>, id: i64) -> Result<Option<AlertRow>, RegistryError> {
    let r = sqlx::query(&format!("SELECT {COLS} FROM alerts WHERE id = $1")).bind(id).fetch_optional(&mut **tx).await?;
    Ok(r.map(|r| row_to_alert(&r)).transpose()?)
}

async fn open_by_key(tx: &mut Tx<'_>, key: &str) -> Result<Option<AlertRow>, RegistryError> {
    let r = sqlx::query(&format!("SELECT {COLS} FROM alerts WHERE dedupe_key = $1 AND status <> 'resolved'"))
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(r.map(|r| row_to_alert(&r)).transpose()?)
}

async fn audit(
    tx: &mut Tx<'_>,
    alert_id: i64,
    actor: &str,
    change: FeedChange,
    detail: &serde_json::Value,
    now: Millis,
) -> Result<(), RegistryError> {
    sqlx::query("INSERT INTO alert_audit (alert_id, at_ms, actor, action, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(alert_id)
        .bind(now)
        .bind(actor)
        .bind(change.as_str())
        .bind(detail.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Audit entry and change-feed row in the caller's transaction; returns the feed row. Feed
/// positions are handed out in commit order, like the event log's (see `registry::events`).
async fn record(
    tx: &mut Tx<'_>,
    backend: super::Backend,
    alert: &AlertRow,
    actor: &str,
    change: FeedChange,
    detail: &serde_json::Value,
    now: Millis,
) -> Result<FeedRow, RegistryError> {
    audit(tx, alert.id, actor, change, detail, now).await?;
    lock_event_order(tx, backend, FEED_ORDER_LOCK).await?;
    let alert_json = serde_json::to_value(alert).unwrap_or_default();
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO alert_feed (alert_id, at_ms, change, payload) VALUES ($1, $2, $3, $4) RETURNING seq",
    )
    .bind(alert.id)
    .bind(now)
    .bind(change.as_str())
    .bind(alert_json.to_string())
    .fetch_one(&mut **tx)
    .await?;
    Ok(FeedRow { seq, alert_id: alert.id, at_ms: now, change, alert: alert_json })
}

/// Sets a consumer's acknowledged position in the caller's transaction (never backwards).
pub(crate) async fn ack_tx(tx: &mut Tx<'_>, consumer: &str, position: i64) -> Result<(), RegistryError> {
    sqlx::query(
        "INSERT INTO cursors (consumer, position) VALUES ($1, $2) ON CONFLICT (consumer) DO UPDATE \
         SET position = CASE WHEN excluded.position > cursors.position THEN excluded.position ELSE cursors.position END",
    )
    .bind(consumer)
    .bind(position)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Why a lifecycle change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AlertChangeError {
    #[error("alert {0} not found")]
    NotFound(i64),
    #[error("alert {id} is {status}; {what}")]
    Conflict { id: i64, status: AlertStatus, what: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl From<sqlx::Error> for AlertChangeError {
    fn from(e: sqlx::Error) -> Self {
        AlertChangeError::Registry(e.into())
    }
}

/// A bound value of a dynamic UPDATE.
enum Val<'a> {
    Int(i64),
    Text(&'a str),
}

/// Updates an alert with `set` (an SQL assignment list using `$2`.. for `vals`; `$1` is the
/// id) when `guard` (an SQL condition) holds, checked in the same statement: two operators
/// acknowledging at once cannot both succeed. Returns the alert after, or `None` when the guard
/// failed.
async fn update(
    tx: &mut Tx<'_>,
    id: i64,
    set: &str,
    vals: &[Val<'_>],
    guard: &str,
    now: Millis,
) -> Result<Option<AlertRow>, RegistryError> {
    let sql = format!("UPDATE alerts SET {set}, updated_at_ms = ${} WHERE id = $1 AND ({guard})", vals.len() + 2);
    let mut q = sqlx::query(&sql).bind(id);
    for v in vals {
        q = match v {
            Val::Int(i) => q.bind(*i),
            Val::Text(s) => q.bind(s.to_string()),
        };
    }
    if q.bind(now).execute(&mut **tx).await?.rows_affected() == 0 {
        return Ok(None);
    }
    load(tx, id).await
}

impl Registry {
    /// The alert service's writes, in one transaction with the acknowledged positions of the
    /// events they came from: a batch is stored whole or not at all, and an event is acknowledged
    /// exactly when what it caused is stored. Non-notifying repeats of one key are written once
    /// per batch (the last). A change of a key with no open alert is skipped (logged).
    pub async fn write_alerts(
        &self,
        writes: &[AlertWrite],
        acks: &[(String, i64)],
        now: Millis,
        fence: Option<&super::RoleFence>,
    ) -> Result<Vec<Written>, RegistryError> {
        let mut last_quiet_repeat = std::collections::HashMap::new();
        for (i, w) in writes.iter().enumerate() {
            if let AlertWrite::Repeat { key, notify: false, .. } = w {
                last_quiet_repeat.insert(key.as_str(), i);
            }
        }
        let mut tx = self.begin().await?;
        if let Some(f) = fence {
            super::roles::check_role(&mut tx, self.backend(), f, now).await?;
        }
        let mut out = Vec::with_capacity(writes.len());
        for (index, w) in writes.iter().enumerate() {
            let done = match w {
                AlertWrite::Raise(a) => Some(self.raise_tx(&mut tx, a, now).await?),
                AlertWrite::Repeat { key, notify: false, .. }
                    if last_quiet_repeat.get(key.as_str()) != Some(&index) =>
                {
                    None
                }
                AlertWrite::Repeat { key, at_ms, count, notify } => {
                    let set = "count = CASE WHEN count > $2 THEN count ELSE $2 END, \
                               last_at_ms = CASE WHEN last_at_ms > $3 THEN last_at_ms ELSE $3 END";
                    let detail = serde_json::json!({"count": count, "at_ms": at_ms});
                    self.change_open(
                        &mut tx,
                        key,
                        set,
                        &[Val::Int(*count), Val::Int(*at_ms)],
                        FeedChange::Repeated,
                        &detail,
                        *notify,
                        now,
                    )
                    .await?
                }
                AlertWrite::Escalate { key, severity, level } => {
                    let detail = serde_json::json!({"severity": severity, "level": level});
                    let set = "severity = $2, escalation_level = $3";
                    let vals = [Val::Text(severity.as_str()), Val::Int(*level)];
                    self.change_open(&mut tx, key, set, &vals, FeedChange::Escalated, &detail, true, now).await?
                }
                AlertWrite::Recover { key, cameras, all_back } => {
                    let detail = serde_json::json!({"back": cameras, "all_back": all_back});
                    if *all_back {
                        let set = "status = 'resolved', resolved_by = 'system', resolved_at_ms = $2, resolve_note = $3";
                        let vals = [Val::Int(now), Val::Text("all cameras back online")];
                        self.change_open(&mut tx, key, set, &vals, FeedChange::Resolved, &detail, true, now).await?
                    } else {
                        self.change_open(&mut tx, key, "count = count", &[], FeedChange::Recovered, &detail, true, now)
                            .await?
                    }
                }
                AlertWrite::Resolve { key, note } => {
                    let set = "status = 'resolved', resolved_by = 'system', resolved_at_ms = $2, resolve_note = $3";
                    let detail = serde_json::json!({"note": note});
                    let vals = [Val::Int(now), Val::Text(note)];
                    self.change_open(&mut tx, key, set, &vals, FeedChange::Resolved, &detail, true, now).await?
                }
            };
            if let Some((alert, feed, folded)) = done {
                out.push(Written { index, alert, feed, folded });
            }
        }
        for (consumer, position) in acks {
            ack_tx(&mut tx, consumer, *position).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Inserts a new alert, or (when its key has an open alert already) counts a repeat of it.
    async fn raise_tx(
        &self,
        tx: &mut Tx<'_>,
        a: &NewAlert,
        now: Millis,
    ) -> Result<(AlertRow, Option<FeedRow>, bool), RegistryError> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO alerts (kind, severity, status, dedupe_key, title, cameras, grid_cell_id, ring_id, detail, count, \
             escalation_level, first_at_ms, last_at_ms, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, 'new', $3, $4, $5, COALESCE($6, (SELECT grid_cell_id FROM cameras WHERE id = $11)), $7, $8, 1, 0, \
             $9, $9, $10, $10) \
             ON CONFLICT (dedupe_key) WHERE status <> 'resolved' DO NOTHING RETURNING id",
        )
        .bind(a.kind.as_str())
        .bind(a.severity.as_str())
        .bind(&a.dedupe_key)
        .bind(&a.title)
        .bind(serde_json::to_string(&a.cameras).unwrap_or_else(|_| "[]".into()))
        .bind(a.grid_cell_id.as_deref())
        .bind(a.ring_id.as_deref())
        .bind(a.detail.to_string())
        .bind(a.at_ms)
        .bind(now)
        // Without a cell of its own, an alert takes its first camera's (the desk it goes to).
        .bind(a.cameras.first().map(String::as_str))
        .fetch_optional(&mut **tx)
        .await?;
        let Some(id) = id else {
            tracing::warn!(key = %a.dedupe_key, "an alert raised for a key that has an open alert: counted as a repeat of it");
            let set = "count = count + 1, last_at_ms = CASE WHEN last_at_ms > $2 THEN last_at_ms ELSE $2 END";
            let detail = serde_json::json!({"at_ms": a.at_ms, "folded": true});
            let done = self
                .change_open(tx, &a.dedupe_key, set, &[Val::Int(a.at_ms)], FeedChange::Repeated, &detail, true, now)
                .await?;
            let (row, feed, _) =
                done.ok_or_else(|| RegistryError::Invalid(format!("alert key {:?}: open and not open", a.dedupe_key)))?;
            return Ok((row, feed, true));
        };
        let row = load(tx, id).await?.ok_or_else(|| RegistryError::Invalid(format!("alert {id} vanished")))?;
        let feed = record(
            tx,
            self.backend(),
            &row,
            "system",
            FeedChange::Raised,
            &serde_json::json!({"severity": a.severity}),
            now,
        )
        .await?;
        Ok((row, Some(feed), false))
    }

    /// A system change of the open alert of `key`.
    #[allow(clippy::too_many_arguments)]
    async fn change_open(
        &self,
        tx: &mut Tx<'_>,
        key: &str,
        set: &str,
        vals: &[Val<'_>],
        change: FeedChange,
        detail: &serde_json::Value,
        notify: bool,
        now: Millis,
    ) -> Result<Option<(AlertRow, Option<FeedRow>, bool)>, RegistryError> {
        let Some(open) = open_by_key(tx, key).await? else {
            tracing::warn!(key, change = change.as_str(), "no open alert of this key: change skipped");
            return Ok(None);
        };
        let Some(row) = update(tx, open.id, set, vals, "status <> 'resolved'", now).await? else { return Ok(None) };
        let feed = if notify {
            Some(record(tx, self.backend(), &row, "system", change, detail, now).await?)
        } else {
            audit(tx, row.id, "system", change, detail, now).await?;
            None
        };
        Ok(Some((row, feed, false)))
    }

    /// The open (not resolved) alert of a dedupe key.
    pub async fn open_alert_by_key(&self, key: &str) -> Result<Option<AlertRow>, RegistryError> {
        let r = sqlx::query(&format!("SELECT {COLS} FROM alerts WHERE dedupe_key = $1 AND status <> 'resolved'"))
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        Ok(r.map(|r| row_to_alert(&r)).transpose()?)
    }

    /// Every open alert (to restore the engine after a restart).
    pub async fn open_alerts(&self) -> Result<Vec<AlertRow>, RegistryError> {
        let rows = sqlx::query(&format!("SELECT {COLS} FROM alerts WHERE status <> 'resolved' ORDER BY id"))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(row_to_alert).collect::<Result<_, _>>()?)
    }

    /// Keys, kinds and resolution times of alerts resolved at or after `since` (cooldowns survive
    /// a restart).
    pub async fn resolved_since(&self, since: Millis) -> Result<Vec<(String, AlertKind, Millis)>, RegistryError> {
        let rows = sqlx::query(
            "SELECT dedupe_key, kind, resolved_at_ms FROM alerts WHERE status = 'resolved' AND resolved_at_ms >= $1",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| Ok::<_, sqlx::Error>((r.try_get("dedupe_key")?, column(r, "kind")?, r.try_get("resolved_at_ms")?)))
            .collect::<Result<_, _>>()?)
    }

    /// An operator's lifecycle change, checked against the current status in the same
    /// statement; returns the alert and its feed row.
    pub async fn operate_alert(
        &self,
        id: i64,
        op: &AlertOp,
        actor: &str,
        now: Millis,
        fence: Option<&super::RoleFence>,
        command: Option<i64>,
    ) -> Result<(AlertRow, FeedRow), AlertChangeError> {
        let mut tx = self.begin().await?;
        if let Some(f) = fence {
            super::roles::check_role(&mut tx, self.backend(), f, now).await?;
        }
        let current = load(&mut tx, id).await?.ok_or(AlertChangeError::NotFound(id))?;
        let (set, vals, guard, refusal, change, detail): (&str, Vec<Val>, &str, &str, FeedChange, serde_json::Value) =
            match op {
                AlertOp::Acknowledge => (
                    "status = 'acknowledged', ack_by = $2, ack_at_ms = $3",
                    vec![Val::Text(actor), Val::Int(now)],
                    "status = 'new'",
                    "only a new alert can be acknowledged",
                    FeedChange::Acknowledged,
                    serde_json::json!({}),
                ),
                AlertOp::Resolve { note } => (
                    "status = 'resolved', resolved_by = $2, resolved_at_ms = $3, resolve_note = $4",
                    vec![Val::Text(actor), Val::Int(now), Val::Text(note)],
                    "status <> 'resolved'",
                    "it is already resolved",
                    FeedChange::Resolved,
                    serde_json::json!({"note": note}),
                ),
                AlertOp::Assign { to } => (
                    "assignee = $2",
                    vec![Val::Text(to)],
                    "status <> 'resolved'",
                    "a resolved alert cannot be assigned",
                    FeedChange::Assigned,
                    serde_json::json!({"assignee": to}),
                ),
                AlertOp::Comment { text } => {
                    ("count = count", vec![], "1 = 1", "", FeedChange::Commented, serde_json::json!({"text": text}))
                }
                AlertOp::Dispatch { units } => (
                    "count = count",
                    vec![],
                    "status <> 'resolved'",
                    "a resolved alert gets no units",
                    FeedChange::Dispatched,
                    serde_json::json!({"units": units.iter().map(|(id, eta)| serde_json::json!({"id": id, "eta_s": eta})).collect::<Vec<_>>()}),
                ),
            };
        let Some(row) = update(&mut tx, id, set, &vals, guard, now).await? else {
            return Err(AlertChangeError::Conflict { id, status: current.status, what: refusal.into() });
        };
        let feed = record(&mut tx, self.backend(), &row, actor, change, &detail, now).await?;
        if let Some(c) = command
            && !super::roles::finish_tx(&mut tx, c, &super::CommandOutcome::Done, now).await?
        {
            // Its node stopped waiting and cancelled it: nothing is changed.
            tx.rollback().await?;
            return Err(AlertChangeError::Registry(RegistryError::Invalid(format!(
                "the queued change {c} was cancelled"
            ))));
        }
        tx.commit().await?;
        Ok((row, feed))
    }

    pub async fn get_alert(&self, id: i64) -> Result<Option<AlertRow>, RegistryError> {
        let r = sqlx::query(&format!("SELECT {COLS} FROM alerts WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(r.map(|r| row_to_alert(&r)).transpose()?)
    }

    /// Alerts matching the filter, newest first.
    pub async fn list_alerts(&self, f: &AlertFilter) -> Result<Vec<AlertRow>, RegistryError> {
        let mut sql = format!("SELECT {COLS} FROM alerts WHERE 1 = 1");
        let mut args: Vec<serde_json::Value> = Vec::new();
        let add_in = |sql: &mut String, args: &mut Vec<serde_json::Value>, col: &str, vals: &[&str]| {
            if vals.is_empty() {
                return;
            }
            let marks: Vec<String> = vals
                .iter()
                .map(|v| {
                    args.push((*v).into());
                    format!("${}", args.len())
                })
                .collect();
            sql.push_str(&format!(" AND {col} IN ({})", marks.join(", ")));
        };
        add_in(&mut sql, &mut args, "status", &f.statuses.iter().map(|x| x.as_str()).collect::<Vec<_>>());
        add_in(&mut sql, &mut args, "severity", &f.severities.iter().map(|x| x.as_str()).collect::<Vec<_>>());
        add_in(&mut sql, &mut args, "kind", &f.kinds.iter().map(|x| x.as_str()).collect::<Vec<_>>());
        if let Some(c) = &f.grid_cell {
            args.push(c.as_str().into());
            sql.push_str(&format!(" AND grid_cell_id = ${}", args.len()));
        }
        if let Some(reach) = &f.reach {
            let mut by_level: std::collections::BTreeMap<i64, Vec<&str>> = std::collections::BTreeMap::new();
            for (cell, level) in reach {
                by_level.entry(*level).or_default().push(cell);
            }
            let mut any = Vec::new();
            for (level, cells) in by_level {
                let marks: Vec<String> = cells
                    .iter()
                    .map(|c| {
                        args.push((*c).into());
                        format!("${}", args.len())
                    })
                    .collect();
                args.push(level.into());
                any.push(format!("(grid_cell_id IN ({}) AND escalation_level >= ${})", marks.join(", "), args.len()));
            }
            if any.is_empty() {
                sql.push_str(" AND 1 = 0");
            } else {
                sql.push_str(&format!(" AND ({})", any.join(" OR ")));
            }
        }
        if let Some(c) = &f.camera {
            // cameras is a JSON array of strings: match the quoted id.
            args.push(format!("%\"{}\"%", c.replace(['%', '_'], "")).into());
            sql.push_str(&format!(" AND cameras LIKE ${}", args.len()));
        }
        for (col, op, v) in [("first_at_ms", ">=", f.from_ms), ("first_at_ms", "<", f.to_ms), ("id", "<", f.before_id)]
        {
            if let Some(v) = v {
                args.push(v.into());
                sql.push_str(&format!(" AND {col} {op} ${}", args.len()));
            }
        }
        args.push(i64::from(f.limit).into());
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", args.len()));
        let mut q = sqlx::query(&sql);
        for a in &args {
            q = match a {
                serde_json::Value::Number(n) => q.bind(n.as_i64()),
                serde_json::Value::String(s) => q.bind(s.clone()),
                other => q.bind(other.to_string()),
            };
        }
        let rows = q.fetch_all(self.pool()).await?;
        Ok(rows.iter().map(row_to_alert).collect::<Result<_, _>>()?)
    }

    /// Alerts not resolved, counted by cell, escalation level and status (the duty desks' queues).
    pub async fn open_alert_counts(&self) -> Result<Vec<OpenCount>, RegistryError> {
        let rows = sqlx::query(
            "SELECT grid_cell_id, escalation_level, status, COUNT(*) AS n FROM alerts WHERE status <> 'resolved' \
             GROUP BY grid_cell_id, escalation_level, status",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OpenCount {
                    grid_cell_id: r.try_get("grid_cell_id")?,
                    escalation_level: r.try_get("escalation_level")?,
                    status: column(r, "status")?,
                    n: r.try_get("n")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// An alert's audit trail, oldest first.
    pub async fn alert_audit(&self, id: i64) -> Result<Vec<AuditRow>, RegistryError> {
        let rows = sqlx::query("SELECT at_ms, actor, action, detail FROM alert_audit WHERE alert_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let d: String = r.try_get("detail")?;
                Ok(AuditRow {
                    at_ms: r.try_get("at_ms")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    detail: serde_json::from_str(&d).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect()
    }

    /// Feed rows after `seq`, oldest first.
    pub async fn feed_after(&self, seq: i64, limit: u32) -> Result<Vec<FeedRow>, RegistryError> {
        let rows = sqlx::query(
            "SELECT seq, alert_id, at_ms, change, payload FROM alert_feed WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let p: String = r.try_get("payload")?;
                Ok(FeedRow {
                    seq: r.try_get("seq")?,
                    alert_id: r.try_get("alert_id")?,
                    at_ms: r.try_get("at_ms")?,
                    change: column(r, "change")?,
                    alert: serde_json::from_str(&p).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect()
    }

    /// The newest feed sequence number (0 when empty).
    pub async fn latest_feed_seq(&self) -> Result<i64, RegistryError> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM alert_feed").fetch_one(self.pool()).await?;
        Ok(v.unwrap_or(0))
    }

    /// A consumer's acknowledged position; `None` when it never acknowledged.
    pub async fn acked(&self, consumer: &str) -> Result<Option<i64>, RegistryError> {
        Ok(sqlx::query_scalar("SELECT position FROM cursors WHERE consumer = $1")
            .bind(consumer)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Every consumer's acknowledged position, by name.
    pub async fn cursors(&self) -> Result<Vec<(String, i64)>, RegistryError> {
        let rows =
            sqlx::query("SELECT consumer, position FROM cursors ORDER BY consumer").fetch_all(self.pool()).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Sets a consumer's acknowledged position (never backwards).
    pub async fn ack(&self, consumer: &str, position: i64) -> Result<(), RegistryError> {
        let mut tx = self.begin().await?;
        ack_tx(&mut tx, consumer, position).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// An operator's change to an alert.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertOp {
    Acknowledge,
    Resolve {
        note: String,
    },
    Assign {
        to: String,
    },
    Comment {
        text: String,
    },
    /// Patrol units sent to the alert's place: each id with its time to get there (seconds),
    /// when it was ranked.
    Dispatch {
        units: Vec<(String, Option<f64>)>,
    },
}
