//! Roles one node holds at a time, for a city on many machines: the alert writer (one node
//! applies the event log to the alerts; the others stand by). A hold lasts `ttl` unless renewed;
//! its epoch rises every time the role changes hands and fences the holder's writes (checked in
//! the write's own transaction by [`check_role`]), so a writer that was cut off and comes back
//! cannot write after another took over. A node that restarts under the same id takes its role
//! back at once (with a new epoch: what it wrote before is fenced).
//!
//! Also the queue of operators' alert changes made on a node that is not the writer: the writer
//! applies them in order, each in the transaction of the change, and the node that queued one
//! reads its outcome back.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::alerts::{AlertChangeError, AlertOp};
use super::{Backend, Registry, RegistryError, WriteTx};
use crate::clock::Millis;

/// The role of the node that writes alerts.
pub const ALERT_WRITER: &str = "alert-writer";

/// Who holds a role.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RoleHolder {
    pub role: String,
    pub node: String,
    pub epoch: i64,
    pub expires_ms: Millis,
}

/// What the holder's writes carry.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleFence {
    pub role: String,
    pub node: String,
    pub epoch: i64,
}

/// An operator's change queued for the writer.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedCommand {
    pub id: i64,
    pub alert_id: i64,
    pub op: AlertOp,
    pub actor: String,
}

/// What became of a queued change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum CommandOutcome {
    Done,
    NotFound,
    Conflict {
        status: String,
        what: String,
    },
    Failed {
        error: String,
    },
    /// The node that queued it gave up waiting before the writer took it.
    Cancelled,
}

impl CommandOutcome {
    pub fn of(e: &AlertChangeError) -> CommandOutcome {
        match e {
            AlertChangeError::NotFound(_) => CommandOutcome::NotFound,
            AlertChangeError::Conflict { status, what, .. } => {
                CommandOutcome::Conflict { status: status.as_str().to_string(), what: what.clone() }
            }
            AlertChangeError::Registry(e) => CommandOutcome::Failed { error: e.to_string() },
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
enum OpText {
    Acknowledge,
    Resolve { note: String },
    Assign { to: String },
    Comment { text: String },
    Dispatch { units: Vec<(String, Option<f64>)> },
}

fn op_text(op: &AlertOp) -> String {
    let t = match op.clone() {
        AlertOp::Acknowledge => OpText::Acknowledge,
        AlertOp::Resolve { note } => OpText::Resolve { note },
        AlertOp::Assign { to } => OpText::Assign { to },
        AlertOp::Comment { text } => OpText::Comment { text },
        AlertOp::Dispatch { units } => OpText::Dispatch { units },
    };
    serde_json::to_string(&t).unwrap_or_default()
}

fn op_of(s: &str) -> Option<AlertOp> {
    Some(match serde_json::from_str::<OpText>(s).ok()? {
        OpText::Acknowledge => AlertOp::Acknowledge,
        OpText::Resolve { note } => AlertOp::Resolve { note },
        OpText::Assign { to } => AlertOp::Assign { to },
        OpText::Comment { text } => AlertOp::Comment { text },
        OpText::Dispatch { units } => AlertOp::Dispatch { units },
    })
}

impl Registry {
    /// Takes or renews `role` for `node`. With `held` (the epoch this node holds), renews the
    /// hold when the role is still this node's at that epoch (nobody took it, even if it lapsed
    /// meanwhile). Without, takes the role when nobody holds it, the hold lapsed, or it was this
    /// same node's (restarted), with the next epoch. Answers the epoch held, `None` when another
    /// node holds the role.
    pub async fn hold_role(
        &self,
        role: &str,
        node: &str,
        held: Option<i64>,
        now: Millis,
        ttl_ms: Millis,
    ) -> Result<Option<i64>, RegistryError> {
        let expires = now.saturating_add(ttl_ms.max(1));
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO roles (name, holder, epoch, expires_ms) VALUES ($1, NULL, 0, 0) ON CONFLICT (name) DO NOTHING",
        )
        .bind(role)
        .execute(&mut *tx)
        .await?;
        let epoch: Option<i64> =
            match held {
                Some(e) => sqlx::query_scalar(
                    "UPDATE roles SET expires_ms = $1 WHERE name = $2 AND holder = $3 AND epoch = $4 RETURNING epoch",
                )
                .bind(expires)
                .bind(role)
                .bind(node)
                .bind(e)
                .fetch_optional(&mut *tx)
                .await?,
                None => {
                    sqlx::query_scalar(
                        "UPDATE roles SET holder = $1, epoch = epoch + 1, expires_ms = $2
                     WHERE name = $3 AND (holder IS NULL OR expires_ms <= $4 OR holder = $1) RETURNING epoch",
                    )
                    .bind(node)
                    .bind(expires)
                    .bind(role)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?
                }
            };
        tx.commit().await?;
        Ok(epoch)
    }

    /// Gives a role up at once (a node stopping), when it is still this node's at `epoch`.
    pub async fn release_role(&self, role: &str, node: &str, epoch: i64) -> Result<bool, RegistryError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE roles SET holder = NULL, expires_ms = 0 WHERE name = $1 AND holder = $2 AND epoch = $3",
        )
        .bind(role)
        .bind(node)
        .bind(epoch)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Who holds `role` at `now` (`None`: nobody, or the hold lapsed).
    pub async fn role_holder(&self, role: &str, now: Millis) -> Result<Option<RoleHolder>, RegistryError> {
        let row = sqlx::query(
            "SELECT holder, epoch, expires_ms FROM roles WHERE name = $1 AND holder IS NOT NULL AND expires_ms > $2",
        )
        .bind(role)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| RoleHolder { role: role.to_string(), node: r.get(0), epoch: r.get(1), expires_ms: r.get(2) }))
    }

    /// Queues an operator's change for the writer; answers its id.
    pub async fn queue_alert_command(
        &self,
        alert_id: i64,
        op: &AlertOp,
        actor: &str,
        now: Millis,
    ) -> Result<i64, RegistryError> {
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO alert_commands (alert_id, op, actor, created_ms) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(alert_id)
        .bind(op_text(op))
        .bind(actor)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Queued changes not yet applied, oldest first. One that cannot be read is finished as
    /// failed (and skipped).
    pub async fn pending_alert_commands(&self, limit: u32, now: Millis) -> Result<Vec<QueuedCommand>, RegistryError> {
        let rows = sqlx::query(
            "SELECT id, alert_id, op, actor FROM alert_commands WHERE done_ms IS NULL ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.get(0);
            match op_of(&r.get::<String, _>(2)) {
                Some(op) => out.push(QueuedCommand { id, alert_id: r.get(1), op, actor: r.get(3) }),
                None => {
                    let failed = CommandOutcome::Failed { error: "the queued change cannot be read".into() };
                    self.finish_alert_command(id, &failed, now).await?;
                }
            }
        }
        Ok(out)
    }

    /// Records what became of a queued change (when it is not finished yet); false when it was.
    pub async fn finish_alert_command(
        &self,
        id: i64,
        outcome: &CommandOutcome,
        now: Millis,
    ) -> Result<bool, RegistryError> {
        let mut tx = self.begin().await?;
        let done = finish_tx(&mut tx, id, outcome, now).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// What became of a queued change; `None` while it waits.
    pub async fn alert_command_outcome(&self, id: i64) -> Result<Option<CommandOutcome>, RegistryError> {
        let text: Option<Option<String>> = sqlx::query_scalar("SELECT outcome FROM alert_commands WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        let Some(text) = text else {
            return Err(RegistryError::Invalid(format!("no queued alert change {id}")));
        };
        Ok(text
            .map(|t| serde_json::from_str(&t).unwrap_or(CommandOutcome::Failed { error: "unreadable outcome".into() })))
    }
}

/// Marks a queued change finished in `tx`; false when it already was (cancelled by its node).
pub(crate) async fn finish_tx(
    tx: &mut WriteTx,
    id: i64,
    outcome: &CommandOutcome,
    now: Millis,
) -> Result<bool, RegistryError> {
    let text = serde_json::to_string(outcome).unwrap_or_default();
    let n = sqlx::query("UPDATE alert_commands SET done_ms = $1, outcome = $2 WHERE id = $3 AND done_ms IS NULL")
        .bind(now)
        .bind(text)
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// Fencing of a role's writes: goes ahead only while `f.node` holds `f.role` at `f.epoch`, checked
/// in the write's own transaction (on PostgreSQL the role row is locked until it ends, so the role
/// cannot change hands in between).
pub(crate) async fn check_role(
    tx: &mut WriteTx,
    backend: Backend,
    f: &RoleFence,
    now: Millis,
) -> Result<(), RegistryError> {
    let lock = if backend == Backend::Postgres { " FOR SHARE" } else { "" };
    let row = sqlx::query(&format!("SELECT holder, epoch, expires_ms FROM roles WHERE name = $1{lock}"))
        .bind(&f.role)
        .fetch_optional(&mut **tx)
        .await?;
    let holds = row.as_ref().is_some_and(|r| {
        r.get::<Option<String>, _>(0).as_deref() == Some(f.node.as_str())
            && r.get::<i64, _>(1) == f.epoch
            && r.get::<i64, _>(2) > now
    });
    if holds {
        Ok(())
    } else {
        Err(RegistryError::NotHolder { role: f.role.clone(), node: f.node.clone(), epoch: f.epoch })
    }
}
