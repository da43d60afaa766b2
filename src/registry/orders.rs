//! Work orders and their log. One active order (open, or closed and awaiting verification) per
//! camera and cause, enforced by a partial unique index; every change is one transaction that
//! also writes a log line.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::{Registry, RegistryError};
use crate::clock::Millis;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Waiting for a crew.
    Open,
    /// Closed by a crew; verified once the camera stays healthy long enough, reopened otherwise.
    Closed,
    /// Done: the camera stayed healthy after the fix.
    Verified,
}

impl OrderState {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Open => "open",
            OrderState::Closed => "closed",
            OrderState::Verified => "verified",
        }
    }
}

impl std::str::FromStr for OrderState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(OrderState::Open),
            "closed" => Ok(OrderState::Closed),
            "verified" => Ok(OrderState::Verified),
            _ => Err(format!("unknown work-order state {s:?}; expected open, closed or verified")),
        }
    }
}

/// One line of an order's log: a crew's note (with a photo path), or what the system did.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OrderLogEntry {
    pub at_ms: Millis,
    pub author: String,
    /// `opened`, `note`, `assigned`, `closed`, `reopened`, `verified`.
    pub kind: String,
    pub text: String,
    pub photo: Option<String>,
}

/// A work order.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WorkOrder {
    pub id: i64,
    pub camera_id: String,
    pub camera_name: String,
    /// `offline`, `low_fps` or `quality:<check>`.
    pub cause: String,
    pub state: OrderState,
    /// 1 ring checkpoints, 2 street, 3 compounds.
    pub priority: i64,
    pub crew: Option<String>,
    /// What was seen when the order was opened.
    pub detail: String,
    pub opened_at_ms: Millis,
    pub due_at_ms: Millis,
    pub closed_at_ms: Option<Millis>,
    pub closed_by: Option<String>,
    pub verified_at_ms: Option<Millis>,
    pub reopen_count: i64,
    pub updated_at_ms: Millis,
    /// Still open past its due time (filled in by the service with its clock).
    pub overdue: bool,
    pub notes: Vec<OrderLogEntry>,
}

/// A new order.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub camera_id: String,
    pub cause: String,
    pub priority: i64,
    pub crew: Option<String>,
    pub detail: String,
    pub due_at_ms: Millis,
    pub author: String,
}

/// Which orders to list.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub states: Vec<OrderState>,
    pub camera: Option<String>,
    pub crew: Option<String>,
    /// Opened at or after.
    pub since_ms: Option<Millis>,
    pub limit: u32,
}

const COLUMNS: &str = "o.id, o.camera_id, c.name AS camera_name, o.cause, o.state, o.priority, o.crew, o.detail, \
    o.opened_at_ms, o.due_at_ms, o.closed_at_ms, o.closed_by, o.verified_at_ms, o.reopen_count, o.updated_at_ms";

fn order_from_row(r: &AnyRow) -> Result<WorkOrder, sqlx::Error> {
    let state: String = r.try_get("state")?;
    Ok(WorkOrder {
        id: r.try_get("id")?,
        camera_id: r.try_get("camera_id")?,
        camera_name: r.try_get("camera_name")?,
        cause: r.try_get("cause")?,
        state: state.parse().map_err(|e: String| sqlx::Error::Decode(e.into()))?,
        priority: r.try_get("priority")?,
        crew: r.try_get("crew")?,
        detail: r.try_get("detail")?,
        opened_at_ms: r.try_get("opened_at_ms")?,
        due_at_ms: r.try_get("due_at_ms")?,
        closed_at_ms: r.try_get("closed_at_ms")?,
        closed_by: r.try_get("closed_by")?,
        verified_at_ms: r.try_get("verified_at_ms")?,
        reopen_count: r.try_get("reopen_count")?,
        updated_at_ms: r.try_get("updated_at_ms")?,
        overdue: false,
        notes: Vec::new(),
    })
}

/// Why a change to an order was refused.
#[derive(Debug, thiserror::Error)]
pub enum OrderChangeError {
    #[error("work order {0} does not exist")]
    NotFound(i64),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl From<sqlx::Error> for OrderChangeError {
    fn from(e: sqlx::Error) -> Self {
        OrderChangeError::Registry(e.into())
    }
}

impl Registry {
    /// Opens an order unless one is active for the camera and cause; returns the new order's id,
    /// or `None` when one was already active.
    pub async fn open_order(&self, o: &NewOrder, now: Millis) -> Result<Option<i64>, RegistryError> {
        let mut tx = self.begin().await?;
        let active: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM work_orders WHERE camera_id = $1 AND cause = $2 AND state <> 'verified'",
        )
        .bind(&o.camera_id)
        .bind(&o.cause)
        .fetch_optional(&mut *tx)
        .await?;
        if active.is_some() {
            return Ok(None);
        }
        let id: Result<i64, sqlx::Error> = sqlx::query_scalar(
            "INSERT INTO work_orders (camera_id, cause, state, priority, crew, detail, opened_at_ms, due_at_ms, \
             reopen_count, updated_at_ms) VALUES ($1, $2, 'open', $3, $4, $5, $6, $7, 0, $6) RETURNING id",
        )
        .bind(&o.camera_id)
        .bind(&o.cause)
        .bind(o.priority)
        .bind(o.crew.as_deref())
        .bind(&o.detail)
        .bind(now)
        .bind(o.due_at_ms)
        .fetch_one(&mut *tx)
        .await;
        let id = match id {
            Ok(id) => id,
            // Another round opened it first (PostgreSQL; SQLite's write lock orders the rounds).
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let text = format!(
            "opened: {}; priority {}; crew {}",
            o.detail,
            o.priority,
            o.crew.as_deref().unwrap_or("(none responsible for this cell)")
        );
        self.log(&mut tx, id, now, &o.author, "opened", &text, None).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    pub async fn get_order(&self, id: i64) -> Result<Option<WorkOrder>, RegistryError> {
        let q = format!("SELECT {COLUMNS} FROM work_orders o JOIN cameras c ON c.id = o.camera_id WHERE o.id = $1");
        let Some(row) = sqlx::query(&q).bind(id).fetch_optional(&self.pool).await? else { return Ok(None) };
        let mut o = order_from_row(&row)?;
        o.notes = self.order_log(id).await?;
        Ok(Some(o))
    }

    async fn order_log(&self, id: i64) -> Result<Vec<OrderLogEntry>, RegistryError> {
        let rows =
            sqlx::query("SELECT at_ms, author, kind, text, photo FROM work_order_log WHERE order_id = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(OrderLogEntry {
                    at_ms: r.try_get("at_ms")?,
                    author: r.try_get("author")?,
                    kind: r.try_get("kind")?,
                    text: r.try_get("text")?,
                    photo: r.try_get("photo")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Orders matching `f`, most urgent first (priority, then due time); with their logs when
    /// `with_notes`.
    pub async fn list_orders(&self, f: &OrderFilter, with_notes: bool) -> Result<Vec<WorkOrder>, RegistryError> {
        let mut sql = super::cameras::Sql::default();
        sql.push("SELECT ").push(COLUMNS).push(" FROM work_orders o JOIN cameras c ON c.id = o.camera_id WHERE 1 = 1");
        if !f.states.is_empty() {
            sql.push(" AND o.state IN (");
            for (i, s) in f.states.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.text_arg(s.as_str());
            }
            sql.push(")");
        }
        if let Some(c) = &f.camera {
            sql.push(" AND o.camera_id = ").text_arg(c.as_str());
        }
        if let Some(c) = &f.crew {
            sql.push(" AND o.crew = ").text_arg(c.as_str());
        }
        if let Some(t) = f.since_ms {
            sql.push(" AND o.opened_at_ms >= ").int_arg(t);
        }
        sql.push(" ORDER BY CASE o.state WHEN 'open' THEN 0 WHEN 'closed' THEN 1 ELSE 2 END, o.priority, o.due_at_ms, o.id LIMIT ")
            .int_arg(i64::from(f.limit.max(1)));
        let rows = sql.query().fetch_all(&self.pool).await?;
        let mut out = rows.iter().map(order_from_row).collect::<Result<Vec<_>, _>>()?;
        if with_notes {
            for o in &mut out {
                o.notes = self.order_log(o.id).await?;
            }
        }
        Ok(out)
    }

    /// A crew's note (and photo path) on an order.
    pub async fn order_note(
        &self,
        id: i64,
        author: &str,
        text: &str,
        photo: Option<&str>,
        now: Millis,
    ) -> Result<(), OrderChangeError> {
        let mut tx = self.begin().await?;
        exists(&mut tx, id).await?;
        self.log(&mut tx, id, now, author, "note", text, photo).await?;
        touch(&mut tx, id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Assigns the order to another crew.
    pub async fn assign_order(&self, id: i64, crew: &str, by: &str, now: Millis) -> Result<(), OrderChangeError> {
        let mut tx = self.begin().await?;
        exists(&mut tx, id).await?;
        sqlx::query("UPDATE work_orders SET crew = $1, updated_at_ms = $2 WHERE id = $3")
            .bind(crew)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.log(&mut tx, id, now, by, "assigned", &format!("assigned to crew {crew}"), None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A crew closes an open order: verification starts.
    pub async fn close_order(&self, id: i64, by: &str, note: &str, now: Millis) -> Result<(), OrderChangeError> {
        let mut tx = self.begin().await?;
        let state = exists(&mut tx, id).await?;
        if state != "open" {
            return Err(OrderChangeError::Conflict(format!(
                "work order {id} is {state}; only an open order can be closed"
            )));
        }
        sqlx::query("UPDATE work_orders SET state = 'closed', closed_at_ms = $1, closed_by = $2, updated_at_ms = $1 WHERE id = $3")
            .bind(now)
            .bind(by)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let text = if note.is_empty() { "closed".to_string() } else { format!("closed: {note}") };
        self.log(&mut tx, id, now, by, "closed", &text, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Verification failed: the order is open again.
    pub async fn reopen_order(&self, id: i64, why: &str, now: Millis) -> Result<(), OrderChangeError> {
        let mut tx = self.begin().await?;
        let state = exists(&mut tx, id).await?;
        if state != "closed" {
            return Err(OrderChangeError::Conflict(format!("work order {id} is {state}; only a closed order reopens")));
        }
        sqlx::query(
            "UPDATE work_orders SET state = 'open', closed_at_ms = NULL, closed_by = NULL, \
             reopen_count = reopen_count + 1, updated_at_ms = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        self.log(&mut tx, id, now, "system", "reopened", &format!("reopened: {why}"), None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Verification passed: the order is done.
    pub async fn verify_order(&self, id: i64, why: &str, now: Millis) -> Result<(), OrderChangeError> {
        let mut tx = self.begin().await?;
        let state = exists(&mut tx, id).await?;
        if state != "closed" {
            return Err(OrderChangeError::Conflict(format!(
                "work order {id} is {state}; only a closed order is verified"
            )));
        }
        sqlx::query("UPDATE work_orders SET state = 'verified', verified_at_ms = $1, updated_at_ms = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.log(&mut tx, id, now, "system", "verified", why, None).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn exists(tx: &mut super::WriteTx, id: i64) -> Result<String, OrderChangeError> {
    sqlx::query_scalar("SELECT state FROM work_orders WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(OrderChangeError::NotFound(id))
}

async fn touch(tx: &mut super::WriteTx, id: i64, now: Millis) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE work_orders SET updated_at_ms = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A work-order change as its log records it: what the event log is told.
#[derive(Debug, Clone)]
pub struct OrderLogged<'a> {
    pub order_id: i64,
    pub camera_id: &'a str,
    pub cause: &'a str,
    /// `opened`, `note`, `assigned`, `closed`, `reopened`, `verified`.
    pub kind: &'a str,
    pub by: &'a str,
    pub at_ms: Millis,
}

impl Registry {
    /// Writes an entry of the order's log and (with an encoder installed, see
    /// `Registry::on_order_change`) its event, in the caller's transaction.
    #[allow(clippy::too_many_arguments)]
    async fn log(
        &self,
        tx: &mut super::WriteTx,
        id: i64,
        at: Millis,
        author: &str,
        kind: &str,
        text: &str,
        photo: Option<&str>,
    ) -> Result<(), RegistryError> {
        sqlx::query(
            "INSERT INTO work_order_log (order_id, at_ms, author, kind, text, photo) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(at)
        .bind(author)
        .bind(kind)
        .bind(text)
        .bind(photo)
        .execute(&mut **tx)
        .await?;
        if let Some(encode) = self.order_events.get() {
            let (camera_id, cause): (String, String) =
                sqlx::query_as("SELECT camera_id, cause FROM work_orders WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut **tx)
                    .await?;
            let change =
                OrderLogged { order_id: id, camera_id: &camera_id, cause: &cause, kind, by: author, at_ms: at };
            if let Some(ev) = encode(&change) {
                super::events::append_tx(tx, self.backend(), std::slice::from_ref(&ev)).await?;
            }
        }
        Ok(())
    }
}
