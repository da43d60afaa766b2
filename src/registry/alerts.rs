//! Alerts in the registry. Every change of an alert is one transaction that also writes its audit
//! entry, a row of the change feed (whose `seq` is what SSE clients resume from) and one outbox row
//! per webhook: an alert is committed before anyone is told of it, and a restarted server finds
//! what it still has to deliver.

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::{Registry, RegistryError};

type Millis = i64;
type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// An alert as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct AlertRow {
    pub id: i64,
    pub kind: String,
    pub severity: String,
    /// `new`, `acknowledged` or `resolved`.
    pub status: String,
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
    /// `raised`, `repeated`, `escalated`, `acknowledged`, `assigned`, `commented`, `recovered`, `resolved`.
    pub change: String,
    #[schema(value_type = Object)]
    pub alert: serde_json::Value,
}

/// A new alert to store.
pub struct NewAlert<'a> {
    pub kind: &'a str,
    pub severity: &'a str,
    pub dedupe_key: &'a str,
    pub title: &'a str,
    pub cameras: &'a [String],
    pub grid_cell_id: Option<&'a str>,
    pub ring_id: Option<&'a str>,
    pub detail: &'a serde_json::Value,
    pub at_ms: Millis,
}

/// Listing filters.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub statuses: Vec<String>,
    pub severities: Vec<String>,
    pub kinds: Vec<String>,
    pub camera: Option<String>,
    pub grid_cell: Option<String>,
    pub from_ms: Option<Millis>,
    pub to_ms: Option<Millis>,
    /// Alerts with ids below this one (newest first paging).
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// A pending webhook delivery.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub seq: i64,
    pub target: String,
    pub payload: String,
    pub attempts: i64,
}

const COLS: &str = "id, kind, severity, status, dedupe_key, title, cameras, grid_cell_id, ring_id, detail, count, \
    escalation_level, first_at_ms, last_at_ms, created_at_ms, updated_at_ms, assignee, ack_by, ack_at_ms, resolved_by, \
    resolved_at_ms, resolve_note";

fn row_to_alert(r: &sqlx::any::AnyRow) -> Result<AlertRow, sqlx::Error> {
    let cameras: String = r.try_get("cameras")?;
    let detail: String = r.try_get("detail")?;
    Ok(AlertRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        severity: r.try_get("severity")?,
        status: r.try_get("status")?,
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

/// Audit entry, feed row and one outbox row per webhook target, in the caller's transaction.
/// Returns the feed sequence number.
async fn record(
    tx: &mut Tx<'_>,
    alert: &AlertRow,
    actor: &str,
    change: &str,
    detail: &serde_json::Value,
    targets: &[String],
    now: Millis,
) -> Result<i64, RegistryError> {
    sqlx::query("INSERT INTO alert_audit (alert_id, at_ms, actor, action, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(alert.id)
        .bind(now)
        .bind(actor)
        .bind(change)
        .bind(detail.to_string())
        .execute(&mut **tx)
        .await?;
    let alert_json = serde_json::to_value(alert).unwrap_or_default();
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO alert_feed (alert_id, at_ms, change, payload) VALUES ($1, $2, $3, $4) RETURNING seq",
    )
    .bind(alert.id)
    .bind(now)
    .bind(change)
    .bind(alert_json.to_string())
    .fetch_one(&mut **tx)
    .await?;
    let payload = serde_json::json!({"seq": seq, "change": change, "at_ms": now, "alert": alert_json}).to_string();
    for t in targets {
        sqlx::query("INSERT INTO outbox (seq, target, payload, attempts, next_attempt_ms) VALUES ($1, $2, $3, 0, $4)")
            .bind(seq)
            .bind(t)
            .bind(&payload)
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    Ok(seq)
}

/// Why a lifecycle change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AlertChangeError {
    #[error("alert {0} not found")]
    NotFound(i64),
    #[error("alert {id} is {status}; {what}")]
    Conflict { id: i64, status: String, what: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl From<sqlx::Error> for AlertChangeError {
    fn from(e: sqlx::Error) -> Self {
        AlertChangeError::Registry(e.into())
    }
}

impl Registry {
    /// Stores a new alert; returns it and its feed sequence number.
    pub async fn raise_alert(
        &self,
        a: &NewAlert<'_>,
        targets: &[String],
        now: Millis,
    ) -> Result<(AlertRow, i64), RegistryError> {
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO alerts (kind, severity, status, dedupe_key, title, cameras, grid_cell_id, ring_id, detail, count, \
             escalation_level, first_at_ms, last_at_ms, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, 'new', $3, $4, $5, $6, $7, $8, 1, 0, $9, $9, $10, $10) RETURNING id",
        )
        .bind(a.kind)
        .bind(a.severity)
        .bind(a.dedupe_key)
        .bind(a.title)
        .bind(serde_json::to_string(a.cameras).unwrap_or_else(|_| "[]".into()))
        .bind(a.grid_cell_id)
        .bind(a.ring_id)
        .bind(a.detail.to_string())
        .bind(a.at_ms)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let row = load(&mut tx, id).await?.ok_or_else(|| RegistryError::Invalid(format!("alert {id} vanished")))?;
        let seq = record(&mut tx, &row, "system", "raised", &serde_json::json!({"severity": a.severity}), targets, now)
            .await?;
        tx.commit().await?;
        Ok((row, seq))
    }

    /// The open (not resolved) alert of a dedupe key, newest.
    pub async fn open_alert_by_key(&self, key: &str) -> Result<Option<AlertRow>, RegistryError> {
        let r = sqlx::query(&format!(
            "SELECT {COLS} FROM alerts WHERE dedupe_key = $1 AND status <> 'resolved' ORDER BY id DESC LIMIT 1"
        ))
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

    /// A system change of an open alert: `set` is an SQL assignment list using `$2`.. for `binds`
    /// (`$1` is the id). Writes audit, feed (when `notify`) and outbox in the same transaction.
    /// With a `guard` (an SQL condition on the alert, and what to say when it fails) the change
    /// happens only while it holds, checked in the same statement: two operators acknowledging at
    /// once cannot both succeed.
    #[allow(clippy::too_many_arguments)]
    async fn change_alert(
        &self,
        id: i64,
        set: &str,
        binds: &[serde_json::Value],
        actor: &str,
        change: &str,
        detail: &serde_json::Value,
        notify: bool,
        targets: &[String],
        now: Millis,
        guard: Option<(&str, &str)>,
    ) -> Result<(AlertRow, Option<i64>), AlertChangeError> {
        let mut tx = self.begin().await?;
        let cond = guard.map(|(g, _)| format!(" AND ({g})")).unwrap_or_default();
        let sql = format!("UPDATE alerts SET {set}, updated_at_ms = ${} WHERE id = $1{cond}", binds.len() + 2);
        let mut q = sqlx::query(&sql).bind(id);
        for b in binds {
            q = match b {
                serde_json::Value::Number(n) if n.is_i64() => q.bind(n.as_i64()),
                serde_json::Value::Null => q.bind(None::<String>),
                serde_json::Value::String(s) => q.bind(s.clone()),
                other => q.bind(other.to_string()),
            };
        }
        let done = q.bind(now).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            let current = load(&mut tx, id).await?.ok_or(AlertChangeError::NotFound(id))?;
            let what = guard.map(|(_, w)| w.to_string()).unwrap_or_default();
            return Err(AlertChangeError::Conflict { id, status: current.status, what });
        }
        let row = load(&mut tx, id).await?.ok_or(AlertChangeError::NotFound(id))?;
        let seq = if notify {
            Some(record(&mut tx, &row, actor, change, detail, targets, now).await?)
        } else {
            sqlx::query("INSERT INTO alert_audit (alert_id, at_ms, actor, action, detail) VALUES ($1, $2, $3, $4, $5)")
                .bind(id)
                .bind(now)
                .bind(actor)
                .bind(change)
                .bind(detail.to_string())
                .execute(&mut *tx)
                .await?;
            None
        };
        tx.commit().await?;
        Ok((row, seq))
    }

    /// Another occurrence of an open alert.
    pub async fn repeat_alert(
        &self,
        id: i64,
        at_ms: Millis,
        count: i64,
        notify: bool,
        targets: &[String],
        now: Millis,
    ) -> Result<(AlertRow, Option<i64>), AlertChangeError> {
        let set = "count = $2, last_at_ms = CASE WHEN last_at_ms > $3 THEN last_at_ms ELSE $3 END";
        let detail = serde_json::json!({"count": count, "at_ms": at_ms});
        self.change_alert(
            id,
            set,
            &[count.into(), at_ms.into()],
            "system",
            "repeated",
            &detail,
            notify,
            targets,
            now,
            None,
        )
        .await
    }

    /// An open alert escalated (not acknowledged in time).
    pub async fn escalate_alert(
        &self,
        id: i64,
        severity: &str,
        level: i64,
        targets: &[String],
        now: Millis,
    ) -> Result<(AlertRow, Option<i64>), AlertChangeError> {
        let detail = serde_json::json!({"severity": severity, "level": level});
        let set = "severity = $2, escalation_level = $3";
        self.change_alert(
            id,
            set,
            &[severity.into(), level.into()],
            "system",
            "escalated",
            &detail,
            true,
            targets,
            now,
            None,
        )
        .await
    }

    /// Some of an offline alert's cameras came back; with all back the alert resolves itself.
    pub async fn recover_alert(
        &self,
        id: i64,
        cameras: &[String],
        all_back: bool,
        targets: &[String],
        now: Millis,
    ) -> Result<(AlertRow, Option<i64>), AlertChangeError> {
        let detail = serde_json::json!({"back": cameras, "all_back": all_back});
        if all_back {
            let set = "status = 'resolved', resolved_by = 'system', resolved_at_ms = $2, resolve_note = $3";
            let note = "all cameras back online";
            return self
                .change_alert(
                    id,
                    set,
                    &[now.into(), note.into()],
                    "system",
                    "resolved",
                    &detail,
                    true,
                    targets,
                    now,
                    None,
                )
                .await;
        }
        self.change_alert(id, "count = count", &[], "system", "recovered", &detail, true, targets, now, None).await
    }

    /// An operator's lifecycle change, checked against the current status.
    pub async fn operate_alert(
        &self,
        id: i64,
        op: &AlertOp,
        actor: &str,
        targets: &[String],
        now: Millis,
    ) -> Result<(AlertRow, Option<i64>), AlertChangeError> {
        let current = self.get_alert(id).await?.ok_or(AlertChangeError::NotFound(id))?;
        let conflict =
            |what: &str| AlertChangeError::Conflict { id, status: current.status.clone(), what: what.into() };
        match op {
            AlertOp::Acknowledge => {
                if current.status != "new" {
                    return Err(conflict("only a new alert can be acknowledged"));
                }
                let set = "status = 'acknowledged', ack_by = $2, ack_at_ms = $3";
                self.change_alert(
                    id,
                    set,
                    &[actor.into(), now.into()],
                    actor,
                    "acknowledged",
                    &serde_json::json!({}),
                    true,
                    targets,
                    now,
                    Some(("status = 'new'", "only a new alert can be acknowledged")),
                )
                .await
            }
            AlertOp::Resolve { note } => {
                if current.status == "resolved" {
                    return Err(conflict("it is already resolved"));
                }
                let set = "status = 'resolved', resolved_by = $2, resolved_at_ms = $3, resolve_note = $4";
                let detail = serde_json::json!({"note": note});
                self.change_alert(
                    id,
                    set,
                    &[actor.into(), now.into(), note.as_str().into()],
                    actor,
                    "resolved",
                    &detail,
                    true,
                    targets,
                    now,
                    Some(("status <> 'resolved'", "it is already resolved")),
                )
                .await
            }
            AlertOp::Assign { to } => {
                if current.status == "resolved" {
                    return Err(conflict("a resolved alert cannot be assigned"));
                }
                let detail = serde_json::json!({"assignee": to});
                self.change_alert(
                    id,
                    "assignee = $2",
                    &[to.as_str().into()],
                    actor,
                    "assigned",
                    &detail,
                    true,
                    targets,
                    now,
                    Some(("status <> 'resolved'", "a resolved alert cannot be assigned")),
                )
                .await
            }
            AlertOp::Comment { text } => {
                let detail = serde_json::json!({"text": text});
                self.change_alert(id, "count = count", &[], actor, "commented", &detail, true, targets, now, None).await
            }
        }
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
        let add_in = |sql: &mut String, args: &mut Vec<serde_json::Value>, col: &str, vals: &[String]| {
            if vals.is_empty() {
                return;
            }
            let marks: Vec<String> = vals
                .iter()
                .map(|v| {
                    args.push(v.as_str().into());
                    format!("${}", args.len())
                })
                .collect();
            sql.push_str(&format!(" AND {col} IN ({})", marks.join(", ")));
        };
        add_in(&mut sql, &mut args, "status", &f.statuses);
        add_in(&mut sql, &mut args, "severity", &f.severities);
        add_in(&mut sql, &mut args, "kind", &f.kinds);
        if let Some(c) = &f.grid_cell {
            args.push(c.as_str().into());
            sql.push_str(&format!(" AND grid_cell_id = ${}", args.len()));
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
                    change: r.try_get("change")?,
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

    /// Outbox rows due for delivery.
    pub async fn outbox_due(&self, now: Millis, limit: u32) -> Result<Vec<OutboxRow>, RegistryError> {
        let rows = sqlx::query(
            "SELECT id, seq, target, payload, attempts FROM outbox WHERE delivered_at_ms IS NULL AND next_attempt_ms <= $1 \
             ORDER BY id LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxRow {
                    id: r.try_get("id")?,
                    seq: r.try_get("seq")?,
                    target: r.try_get("target")?,
                    payload: r.try_get("payload")?,
                    attempts: r.try_get("attempts")?,
                })
            })
            .collect()
    }

    /// Records a delivery attempt: delivered, or failed with the next attempt's time.
    pub async fn outbox_attempted(
        &self,
        id: i64,
        now: Millis,
        result: Result<(), (String, Millis)>,
    ) -> Result<(), RegistryError> {
        match result {
            Ok(()) => {
                sqlx::query(
                    "UPDATE outbox SET delivered_at_ms = $2, attempts = attempts + 1, last_error = NULL WHERE id = $1",
                )
                .bind(id)
                .bind(now)
                .execute(self.pool())
                .await?;
            }
            Err((err, next)) => {
                sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_ms = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(err)
                .bind(next)
                .execute(self.pool())
                .await?;
            }
        }
        Ok(())
    }

    /// Undelivered outbox rows (for stats).
    pub async fn outbox_pending(&self) -> Result<i64, RegistryError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE delivered_at_ms IS NULL")
            .fetch_one(self.pool())
            .await?)
    }

    pub async fn cursor(&self, consumer: &str) -> Result<i64, RegistryError> {
        let v: Option<i64> = sqlx::query_scalar("SELECT position FROM cursors WHERE consumer = $1")
            .bind(consumer)
            .fetch_optional(self.pool())
            .await?;
        Ok(v.unwrap_or(0))
    }

    pub async fn set_cursor(&self, consumer: &str, position: i64) -> Result<(), RegistryError> {
        sqlx::query(
            "INSERT INTO cursors (consumer, position) VALUES ($1, $2) ON CONFLICT (consumer) DO UPDATE SET position = excluded.position",
        )
        .bind(consumer)
        .bind(position)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

/// An operator's change to an alert.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertOp {
    Acknowledge,
    Resolve { note: String },
    Assign { to: String },
    Comment { text: String },
}
