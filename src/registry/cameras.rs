//! Camera rows: listing with filters and keyset pagination, lookup, status changes with history.

use sqlx::any::AnyRow;
use sqlx::{Any, Row};

use super::{Registry, RegistryError};
use crate::clock::Millis;
use crate::config::{CameraKind, CameraStatus, Owner};

/// A camera as the registry holds it. No credentials: only whether it has some.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraRow {
    pub id: String,
    pub name: String,
    pub url: String,
    pub has_credentials: bool,
    pub codec: String,
    pub transport: String,
    pub lon: f64,
    pub lat: f64,
    pub mounting_height_m: f64,
    pub bearing_deg: f64,
    pub hfov_deg: f64,
    pub width_px: i64,
    pub height_px: i64,
    pub kind: String,
    pub owner: String,
    pub grid_cell_id: Option<String>,
    pub profile: String,
    pub enabled: bool,
    pub status: String,
    pub status_reason: String,
    pub status_since_ms: Millis,
    pub config_source: String,
    pub created_at_ms: Millis,
    pub updated_at_ms: Millis,
    pub decommissioned_at_ms: Option<Millis>,
}

pub(crate) const CAMERA_COLUMNS: &str = "id, name, url, has_credentials, codec, transport, lon, lat, mounting_height_m, \
    bearing_deg, hfov_deg, width_px, height_px, kind, owner, grid_cell_id, profile, enabled, status, status_reason, \
    status_since_ms, config_source, created_at_ms, updated_at_ms, decommissioned_at_ms";

impl CameraRow {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            url: r.try_get("url")?,
            has_credentials: r.try_get::<i64, _>("has_credentials")? != 0,
            codec: r.try_get("codec")?,
            transport: r.try_get("transport")?,
            lon: r.try_get("lon")?,
            lat: r.try_get("lat")?,
            mounting_height_m: r.try_get("mounting_height_m")?,
            bearing_deg: r.try_get("bearing_deg")?,
            hfov_deg: r.try_get("hfov_deg")?,
            width_px: r.try_get("width_px")?,
            height_px: r.try_get("height_px")?,
            kind: r.try_get("kind")?,
            owner: r.try_get("owner")?,
            grid_cell_id: r.try_get("grid_cell_id")?,
            profile: r.try_get("profile")?,
            enabled: r.try_get::<i64, _>("enabled")? != 0,
            status: r.try_get("status")?,
            status_reason: r.try_get("status_reason")?,
            status_since_ms: r.try_get("status_since_ms")?,
            config_source: r.try_get("config_source")?,
            created_at_ms: r.try_get("created_at_ms")?,
            updated_at_ms: r.try_get("updated_at_ms")?,
            decommissioned_at_ms: r.try_get("decommissioned_at_ms")?,
        })
    }
}

/// Filters for listing cameras; every list is an OR inside a field and an AND across fields.
#[derive(Debug, Clone, Default)]
pub struct CameraFilter {
    pub kinds: Vec<CameraKind>,
    pub owners: Vec<Owner>,
    pub statuses: Vec<CameraStatus>,
    /// A grid cell: matches cameras in it or in any cell below it.
    pub grid_cell: Option<String>,
    /// min lon, min lat, max lon, max lat.
    pub bbox: Option<[f64; 4]>,
    /// Return ids strictly after this one.
    pub after: Option<String>,
    pub limit: u32,
}

/// One page of a keyset-paginated listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The last id of this page when more may follow.
    pub next_after: Option<String>,
}

/// One entry of a camera's status history.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub camera_id: String,
    pub at_ms: Millis,
    pub from_status: Option<String>,
    pub to_status: String,
    pub reason: String,
}

/// SQL text with `$N` placeholders and the values bound to them, built together.
#[derive(Default)]
pub(crate) struct Sql {
    pub text: String,
    args: Vec<Arg>,
}

enum Arg {
    Text(String),
    Float(f64),
    Int(i64),
}

impl Sql {
    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }
    fn placeholder(&mut self, a: Arg) -> &mut Self {
        self.args.push(a);
        let n = self.args.len();
        self.text.push_str(&format!("${n}"));
        self
    }
    pub fn text_arg(&mut self, s: impl Into<String>) -> &mut Self {
        self.placeholder(Arg::Text(s.into()))
    }
    pub fn float_arg(&mut self, v: f64) -> &mut Self {
        self.placeholder(Arg::Float(v))
    }
    pub fn int_arg(&mut self, v: i64) -> &mut Self {
        self.placeholder(Arg::Int(v))
    }
    pub fn query(&self) -> sqlx::query::Query<'_, Any, sqlx::any::AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for a in &self.args {
            q = match a {
                Arg::Text(s) => q.bind(s.as_str()),
                Arg::Float(f) => q.bind(*f),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }
    /// `col IN ($a, $b, …)` for a list of strings.
    fn in_list<'a>(&mut self, col: &str, values: impl Iterator<Item = &'a str>) {
        self.push(col).push(" IN (");
        for (i, v) in values.enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.text_arg(v);
        }
        self.push(")");
    }
}

impl Registry {
    /// Lists cameras matching `f`, ordered by id, at most `f.limit` of them.
    pub async fn list_cameras(&self, f: &CameraFilter) -> Result<Page<CameraRow>, RegistryError> {
        let mut sql = Sql::default();
        if let Some(cell) = &f.grid_cell {
            sql.push("WITH RECURSIVE cells(id) AS (SELECT id FROM grid_cells WHERE id = ")
                .text_arg(cell.as_str())
                .push(" UNION SELECT g.id FROM grid_cells g JOIN cells c ON g.parent_id = c.id) ");
        }
        sql.push("SELECT ").push(CAMERA_COLUMNS).push(" FROM cameras WHERE 1 = 1");
        if !f.kinds.is_empty() {
            sql.push(" AND ");
            sql.in_list("kind", f.kinds.iter().map(|k| k.as_str()));
        }
        if !f.owners.is_empty() {
            sql.push(" AND ");
            sql.in_list("owner", f.owners.iter().map(|k| k.as_str()));
        }
        if !f.statuses.is_empty() {
            sql.push(" AND ");
            sql.in_list("status", f.statuses.iter().map(|k| k.as_str()));
        }
        if f.grid_cell.is_some() {
            sql.push(" AND grid_cell_id IN (SELECT id FROM cells)");
        }
        if let Some([min_lon, min_lat, max_lon, max_lat]) = f.bbox {
            sql.push(" AND lat >= ").float_arg(min_lat).push(" AND lat <= ").float_arg(max_lat);
            sql.push(" AND lon >= ").float_arg(min_lon).push(" AND lon <= ").float_arg(max_lon);
        }
        if let Some(after) = &f.after {
            sql.push(" AND id > ").text_arg(after.as_str());
        }
        let limit = f.limit.max(1);
        sql.push(" ORDER BY id LIMIT ").int_arg(i64::from(limit) + 1);
        let rows = sql.query().fetch_all(&self.pool).await?;
        let mut items = rows.iter().map(CameraRow::from_row).collect::<Result<Vec<_>, _>>()?;
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_after = if more { items.last().map(|c| c.id.clone()) } else { None };
        Ok(Page { items, next_after })
    }

    pub async fn get_camera(&self, id: &str) -> Result<Option<CameraRow>, RegistryError> {
        let q = format!("SELECT {CAMERA_COLUMNS} FROM cameras WHERE id = $1");
        let row = sqlx::query(&q).bind(id).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(CameraRow::from_row).transpose()?)
    }

    /// Whether a grid cell is known (retired cells included).
    pub async fn grid_cell_exists(&self, id: &str) -> Result<bool, RegistryError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM grid_cells WHERE id = $1").bind(id).fetch_one(&self.pool).await?;
        Ok(n > 0)
    }

    /// Sets a camera's status; a change (and only a change) is written to the history, with
    /// `event` (the status change for the event log), in the same transaction. Returns whether
    /// the status changed. Unknown camera → `Invalid`.
    pub async fn set_status(
        &self,
        id: &str,
        to: CameraStatus,
        reason: &str,
        now: Millis,
        event: Option<&super::RawEvent>,
    ) -> Result<bool, RegistryError> {
        let mut tx = self.begin().await?;
        tx.fence(id).await?;
        let changed = set_status_tx(&mut tx, id, to, reason, now).await?;
        let ids = match event {
            Some(e) if changed => super::events::append_tx(&mut tx, self.backend(), std::slice::from_ref(e)).await?,
            _ => Vec::new(),
        };
        tx.commit().await?;
        self.note_appended(&ids);
        Ok(changed)
    }

    /// Sets many cameras' statuses in one transaction (a generated city, a bulk correction):
    /// each change goes to the history as `set_status` writes it, without events. Returns how
    /// many changed. An unknown camera refuses the whole batch.
    pub async fn set_statuses(
        &self,
        states: &[(String, CameraStatus)],
        reason: &str,
        now: Millis,
    ) -> Result<usize, RegistryError> {
        let mut tx = self.begin().await?;
        let mut changed = 0;
        for (id, to) in states {
            changed += usize::from(set_status_tx(&mut tx, id, *to, reason, now).await?);
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Like `set_status`, and when the status stays the same but its reason changed, the
    /// reason is updated (no history entry and no event: the status did not change).
    pub async fn set_status_reason(
        &self,
        id: &str,
        to: CameraStatus,
        reason: &str,
        now: Millis,
        event: Option<&super::RawEvent>,
    ) -> Result<bool, RegistryError> {
        let mut tx = self.begin().await?;
        tx.fence(id).await?;
        let changed = set_status_tx(&mut tx, id, to, reason, now).await?;
        let mut ids = Vec::new();
        if changed {
            if let Some(e) = event {
                ids = super::events::append_tx(&mut tx, self.backend(), std::slice::from_ref(e)).await?;
            }
        } else {
            sqlx::query("UPDATE cameras SET status_reason = $1 WHERE id = $2 AND status_reason <> $1")
                .bind(reason)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.note_appended(&ids);
        Ok(changed)
    }

    /// Ids of the cameras whose status is `status`.
    pub async fn cameras_with_status(&self, status: CameraStatus) -> Result<Vec<String>, RegistryError> {
        Ok(sqlx::query_scalar("SELECT id FROM cameras WHERE status = $1 ORDER BY id")
            .bind(status.as_str())
            .fetch_all(&self.pool)
            .await?)
    }

    /// The cameras whose status is `status`, whole.
    pub async fn cameras_in_status(&self, status: CameraStatus) -> Result<Vec<CameraRow>, RegistryError> {
        let rows = sqlx::query(&format!("SELECT {CAMERA_COLUMNS} FROM cameras WHERE status = $1 ORDER BY id"))
            .bind(status.as_str())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(CameraRow::from_row).collect::<Result<_, _>>()?)
    }

    /// Every status change of every camera at or before `to_ms` (oldest first), for
    /// availability over a window: the changes before the window give the state it starts in.
    pub async fn all_status_history(&self, to_ms: Millis) -> Result<Vec<StatusChange>, RegistryError> {
        let rows = sqlx::query(
            "SELECT camera_id, at_ms, from_status, to_status, reason FROM camera_status_history \
             WHERE at_ms <= $1 ORDER BY camera_id, at_ms, id",
        )
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StatusChange {
                    camera_id: r.try_get("camera_id")?,
                    at_ms: r.try_get("at_ms")?,
                    from_status: r.try_get("from_status")?,
                    to_status: r.try_get("to_status")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// A camera's status history, newest first, at most `limit` entries.
    pub async fn status_history(&self, id: &str, limit: u32) -> Result<Vec<StatusChange>, RegistryError> {
        let rows = sqlx::query(
            "SELECT camera_id, at_ms, from_status, to_status, reason FROM camera_status_history \
             WHERE camera_id = $1 ORDER BY at_ms DESC, id DESC LIMIT $2",
        )
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StatusChange {
                    camera_id: r.try_get("camera_id")?,
                    at_ms: r.try_get("at_ms")?,
                    from_status: r.try_get("from_status")?,
                    to_status: r.try_get("to_status")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}

impl Registry {
    /// Appends an ingest state transition to the camera's ingest history.
    pub async fn record_ingest_transition(
        &self,
        id: &str,
        from: &str,
        to: &str,
        reason: &str,
        at: Millis,
    ) -> Result<(), RegistryError> {
        let mut tx = self.begin().await?;
        tx.fence(id).await?;
        sqlx::query("INSERT INTO camera_ingest_history (camera_id, at_ms, from_state, to_state, reason) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(at)
            .bind(from)
            .bind(to)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A camera's ingest transitions, newest first: (at, from, to, reason).
    pub async fn ingest_history(
        &self,
        id: &str,
        limit: u32,
    ) -> Result<Vec<(Millis, String, String, String)>, RegistryError> {
        let rows = sqlx::query(
            "SELECT at_ms, from_state, to_state, reason FROM camera_ingest_history WHERE camera_id = $1 ORDER BY at_ms DESC, id DESC LIMIT $2",
        )
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}

pub(crate) async fn set_status_tx(
    tx: &mut super::WriteTx,
    id: &str,
    to: CameraStatus,
    reason: &str,
    now: Millis,
) -> Result<bool, RegistryError> {
    let current: Option<String> =
        sqlx::query_scalar("SELECT status FROM cameras WHERE id = $1").bind(id).fetch_optional(&mut **tx).await?;
    let Some(current) = current else {
        return Err(RegistryError::Invalid(format!("camera {id} is not in the registry")));
    };
    if current == to.as_str() {
        return Ok(false);
    }
    sqlx::query("UPDATE cameras SET status = $1, status_reason = $2, status_since_ms = $3 WHERE id = $4")
        .bind(to.as_str())
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    insert_history(tx, id, Some(&current), to, reason, now).await?;
    Ok(true)
}

pub(crate) async fn insert_history(
    tx: &mut super::WriteTx,
    id: &str,
    from: Option<&str>,
    to: CameraStatus,
    reason: &str,
    now: Millis,
) -> Result<(), RegistryError> {
    sqlx::query("INSERT INTO camera_status_history (camera_id, at_ms, from_status, to_status, reason) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(now)
        .bind(from)
        .bind(to.as_str())
        .bind(reason)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
