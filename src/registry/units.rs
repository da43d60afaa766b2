//! Patrol units and their tracks: the cars, motorcycles, foot patrols and checkpoint posts that
//! the command centre sends, each with its station, grid cell and status, and the positions it
//! reports (HTTP, MQTT, a GPX/CSV replay). A position is stored once per unit and time, so a
//! tracker that sends it again adds nothing; the newest one by its own time is kept on the unit's
//! row as well, for the map and for dispatch.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::watchlists::nullable_floats;
use super::{Registry, RegistryError};
use crate::config::types::str_enum;

type Millis = i64;

str_enum!(
    /// What a unit is: how it moves, and so how its travel time is reckoned (`post`: a staffed
    /// checkpoint post).
    UnitKind { Car = "car", Motorcycle = "motorcycle", Foot = "foot", Post = "post" }
);

str_enum!(
    /// Where a unit stands with the command centre.
    UnitStatus { Available = "available", Dispatched = "dispatched", OnScene = "on_scene", OffDuty = "off_duty" }
);

/// One position of a unit, as its tracker took it (WGS 84).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fix {
    /// When the position was taken (Unix ms), by the tracker's clock.
    pub at_ms: Millis,
    pub lon: f64,
    pub lat: f64,
    /// Speed over ground, metres per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_mps: Option<f64>,
    /// Course over ground, degrees clockwise from north, 0 to below 360.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading_deg: Option<f64>,
    /// Horizontal accuracy, metres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_m: Option<f64>,
}

/// A unit whose newest position is older than this is stale: not where the map shows it, and
/// dispatch does not rank it.
pub const STALE_AFTER_MS: Millis = 120_000;
/// How far ahead of the registry's clock a position's time may be (trackers' clocks drift).
pub const MAX_AHEAD_MS: Millis = 60_000;
/// The fastest a unit may be reported moving: 150 m/s (540 km/h) is no patrol car.
pub const MAX_SPEED_MPS: f64 = 150.0;

impl Fix {
    /// Why this position cannot be stored, if it cannot: a time ahead of `now` by more than
    /// [`MAX_AHEAD_MS`] or before `oldest`, a coordinate outside WGS 84 or exactly (0, 0) (a
    /// tracker without a fix sends that), a value that is not finite or out of its range.
    pub fn check(&self, now: Millis, oldest: Millis) -> Result<(), String> {
        if self.at_ms > now.saturating_add(MAX_AHEAD_MS) {
            return Err(format!(
                "at_ms {} is {} s ahead of this server's clock (at most {} s): the tracker's clock is wrong",
                self.at_ms,
                (self.at_ms - now) / 1000,
                MAX_AHEAD_MS / 1000
            ));
        }
        if self.at_ms < oldest {
            return Err(format!("at_ms {} is older than tracks are kept (from {oldest})", self.at_ms));
        }
        if !(self.lon.is_finite() && (-180.0..=180.0).contains(&self.lon)) {
            return Err(format!("lon {} is not a longitude (-180 to 180)", self.lon));
        }
        if !(self.lat.is_finite() && (-90.0..=90.0).contains(&self.lat)) {
            return Err(format!("lat {} is not a latitude (-90 to 90)", self.lat));
        }
        if self.lon == 0.0 && self.lat == 0.0 {
            return Err("lon 0, lat 0: the tracker has no fix".into());
        }
        if let Some(v) = self.speed_mps
            && !(v.is_finite() && (0.0..=MAX_SPEED_MPS).contains(&v))
        {
            return Err(format!("speed_mps {v} is not a speed (0 to {MAX_SPEED_MPS})"));
        }
        if let Some(v) = self.heading_deg
            && !(v.is_finite() && (0.0..360.0).contains(&v))
        {
            return Err(format!("heading_deg {v} is not a heading (0 to below 360)"));
        }
        if let Some(v) = self.accuracy_m
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(format!("accuracy_m {v} is not an accuracy (0 or more metres)"));
        }
        Ok(())
    }
}

/// A unit as stored, with its newest position.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UnitRow {
    pub id: String,
    pub name: String,
    pub kind: UnitKind,
    /// The police station (派出所) the unit belongs to.
    pub station: String,
    /// The grid cell it patrols, if it has one.
    pub grid_cell: Option<String>,
    pub status: UnitStatus,
    pub status_since_ms: Millis,
    /// The alert it was sent to, while it is dispatched or on scene.
    pub alert_id: Option<i64>,
    pub created_at_ms: Millis,
    pub retired_at_ms: Option<Millis>,
    /// The newest position by its own time; absent until the first one arrives.
    pub position: Option<Fix>,
    /// The newest position is older than the server's stale limit (or there is none): the unit
    /// is not where the map shows it, and dispatch does not rank it.
    pub stale: bool,
}

impl UnitRow {
    /// Marks the unit stale when its newest position is older than `after_ms` at `now`.
    pub fn mark_stale(&mut self, now: Millis, after_ms: Millis) {
        self.stale = self.position.is_none_or(|p| now.saturating_sub(p.at_ms) > after_ms);
    }
}

/// A unit to add.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUnit {
    pub id: String,
    pub name: String,
    pub kind: UnitKind,
    pub station: String,
    pub grid_cell: Option<String>,
    pub status: UnitStatus,
}

/// What changes on a unit; `None` leaves a field as it is. `grid_cell: Some(None)` takes the
/// unit off its cell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitChange {
    pub name: Option<String>,
    pub kind: Option<UnitKind>,
    pub station: Option<String>,
    pub grid_cell: Option<Option<String>>,
    pub status: Option<UnitStatus>,
}

/// Where a unit's id can appear (an MQTT topic level, a URL segment): letters, digits, `.`,
/// `_`, `-`, 1 to 64 characters.
pub fn check_unit_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 {
        return Err(format!("unit id {:?} must be 1 to 64 characters", clip(id)));
    }
    if let Some(c) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("unit id {:?} holds {c:?}: only letters, digits, '.', '_' and '-'", clip(id)));
    }
    Ok(())
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Why a change to a unit was refused.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    #[error("unit {0:?} not found")]
    NotFound(String),
    #[error("unit {0:?} already exists")]
    Exists(String),
    #[error("unit {0:?} is retired")]
    Retired(String),
    #[error("unit {0:?} is {1}")]
    Unavailable(String, String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl From<sqlx::Error> for UnitError {
    fn from(e: sqlx::Error) -> Self {
        UnitError::Registry(e.into())
    }
}

/// A position that was not stored, and why.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RejectedFix {
    /// Its place in the batch, from 0.
    pub index: usize,
    pub reason: String,
}

/// What a batch of positions did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct FixesStored {
    /// Stored now.
    pub stored: usize,
    /// Already in the track (the same unit and time): nothing new.
    pub duplicates: usize,
    pub rejected: Vec<RejectedFix>,
}

/// Where a batch of positions came from (kept with each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixSource {
    Http,
    Mqtt,
    Import,
    /// The demo's simulated patrols.
    Sim,
}

impl FixSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FixSource::Http => "http",
            FixSource::Mqtt => "mqtt",
            FixSource::Import => "import",
            FixSource::Sim => "sim",
        }
    }
}

const UNIT_COLUMNS: &str = "id, name, kind, station, grid_cell, status, status_since_ms, alert_id, created_at_ms, retired_at_ms, \
                            at_ms, lon, lat, speed_mps, heading_deg, accuracy_m";

fn unit_from_row(r: &AnyRow) -> Result<UnitRow, RegistryError> {
    let id: String = r.try_get("id")?;
    let bad = |what: &str, e: String| RegistryError::Invalid(format!("stored unit {id:?}: {what}: {e}"));
    let at_ms: Option<i64> = r.try_get("at_ms")?;
    let position = match at_ms {
        Some(at_ms) => Some(Fix {
            at_ms,
            lon: r.try_get::<Option<f64>, _>("lon")?.ok_or_else(|| bad("lon", "missing".into()))?,
            lat: r.try_get::<Option<f64>, _>("lat")?.ok_or_else(|| bad("lat", "missing".into()))?,
            speed_mps: r.try_get("speed_mps")?,
            heading_deg: r.try_get("heading_deg")?,
            accuracy_m: r.try_get("accuracy_m")?,
        }),
        None => None,
    };
    Ok(UnitRow {
        name: r.try_get("name")?,
        kind: r.try_get::<String, _>("kind")?.parse().map_err(|e| bad("kind", e))?,
        station: r.try_get("station")?,
        grid_cell: r.try_get("grid_cell")?,
        status: r.try_get::<String, _>("status")?.parse().map_err(|e| bad("status", e))?,
        status_since_ms: r.try_get("status_since_ms")?,
        alert_id: r.try_get("alert_id")?,
        created_at_ms: r.try_get("created_at_ms")?,
        retired_at_ms: r.try_get("retired_at_ms")?,
        position,
        // Until `mark_stale` says otherwise: the registry does not know the limit.
        stale: true,
        id,
    })
}

fn fix_from_row(r: &AnyRow) -> Result<Fix, RegistryError> {
    Ok(Fix {
        at_ms: r.try_get("at_ms")?,
        lon: r.try_get("lon")?,
        lat: r.try_get("lat")?,
        speed_mps: r.try_get("speed_mps")?,
        heading_deg: r.try_get("heading_deg")?,
        accuracy_m: r.try_get("accuracy_m")?,
    })
}

type Tx = super::WriteTx;

async fn load(tx: &mut Tx, id: &str) -> Result<Option<UnitRow>, RegistryError> {
    let row = sqlx::query(&format!("SELECT {UNIT_COLUMNS} FROM units WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(unit_from_row).transpose()
}

async fn check_cell(tx: &mut Tx, cell: &Option<String>) -> Result<(), UnitError> {
    if let Some(cell) = cell {
        let found: Option<String> =
            sqlx::query_scalar("SELECT id FROM grid_cells WHERE id = $1 AND retired_at_ms IS NULL")
                .bind(cell)
                .fetch_optional(&mut **tx)
                .await?;
        if found.is_none() {
            return Err(UnitError::Invalid(format!("no grid cell {:?} in the registry", clip(cell))));
        }
    }
    Ok(())
}

/// The first time a position may have when tracks are kept `tracks_days` (0: for ever).
pub fn oldest_fix(now: Millis, tracks_days: u32) -> Millis {
    match tracks_days {
        0 => Millis::MIN,
        d => now - i64::from(d) * 86_400_000,
    }
}

/// The most positions one batch (a request, an MQTT message) may carry.
pub const MAX_FIXES: usize = 1000;

/// The most positions one track query returns.
pub const MAX_TRACK: u32 = 10_000;

impl Registry {
    /// Adds a unit; its id must be new (a retired unit keeps its id).
    pub async fn create_unit(&self, u: &NewUnit, now: Millis) -> Result<UnitRow, UnitError> {
        check_unit_id(&u.id).map_err(UnitError::Invalid)?;
        let mut tx = self.begin().await?;
        if load(&mut tx, &u.id).await?.is_some() {
            return Err(UnitError::Exists(u.id.clone()));
        }
        check_cell(&mut tx, &u.grid_cell).await?;
        sqlx::query(
            "INSERT INTO units (id, name, kind, station, grid_cell, status, status_since_ms, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&u.id)
        .bind(&u.name)
        .bind(u.kind.as_str())
        .bind(&u.station)
        .bind(u.grid_cell.as_deref())
        .bind(u.status.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let row = load(&mut tx, &u.id).await?.ok_or_else(|| UnitError::NotFound(u.id.clone()))?;
        tx.commit().await?;
        Ok(row)
    }

    /// Units by id; retired ones only with `all`.
    pub async fn units(&self, all: bool) -> Result<Vec<UnitRow>, RegistryError> {
        let rows =
            sqlx::query(&format!("SELECT {UNIT_COLUMNS} FROM units WHERE $1 = 1 OR retired_at_ms IS NULL ORDER BY id"))
                .bind(i64::from(all))
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(unit_from_row).collect()
    }

    /// One unit, retired or not.
    pub async fn unit(&self, id: &str) -> Result<Option<UnitRow>, RegistryError> {
        let row = sqlx::query(&format!("SELECT {UNIT_COLUMNS} FROM units WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(unit_from_row).transpose()
    }

    /// Changes a unit's name, kind, station, cell or status (a new status restarts
    /// `status_since_ms`). A retired unit does not change.
    pub async fn update_unit(&self, id: &str, change: &UnitChange, now: Millis) -> Result<UnitRow, UnitError> {
        let mut tx = self.begin().await?;
        let old = load(&mut tx, id).await?.ok_or_else(|| UnitError::NotFound(id.to_string()))?;
        if old.retired_at_ms.is_some() {
            return Err(UnitError::Retired(id.to_string()));
        }
        if let Some(cell) = &change.grid_cell {
            check_cell(&mut tx, cell).await?;
        }
        let status = change.status.unwrap_or(old.status);
        let since = if status == old.status { old.status_since_ms } else { now };
        // Back to available or off duty: the unit is no longer on an alert.
        let alert = match status {
            UnitStatus::Dispatched | UnitStatus::OnScene => old.alert_id,
            UnitStatus::Available | UnitStatus::OffDuty => None,
        };
        sqlx::query(
            "UPDATE units SET name = $2, kind = $3, station = $4, grid_cell = $5, status = $6, status_since_ms = $7, \
             alert_id = $8 WHERE id = $1",
        )
        .bind(id)
        .bind(change.name.as_ref().unwrap_or(&old.name))
        .bind(change.kind.unwrap_or(old.kind).as_str())
        .bind(change.station.as_ref().unwrap_or(&old.station))
        .bind(change.grid_cell.clone().unwrap_or(old.grid_cell.clone()))
        .bind(status.as_str())
        .bind(since)
        .bind(alert)
        .execute(&mut *tx)
        .await?;
        let row = load(&mut tx, id).await?.ok_or_else(|| UnitError::NotFound(id.to_string()))?;
        tx.commit().await?;
        Ok(row)
    }

    /// Sends units to an alert, all or none: each must exist, not be retired and not be off
    /// duty (a unit already on another alert may be sent on: the command centre re-tasks).
    /// Each becomes `dispatched` to `alert_id`.
    pub async fn dispatch_units(&self, ids: &[String], alert_id: i64, now: Millis) -> Result<Vec<UnitRow>, UnitError> {
        let mut tx = self.begin().await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let u = load(&mut tx, id).await?.ok_or_else(|| UnitError::NotFound(id.clone()))?;
            if u.retired_at_ms.is_some() {
                return Err(UnitError::Retired(id.clone()));
            }
            if u.status == UnitStatus::OffDuty {
                return Err(UnitError::Unavailable(id.clone(), "off duty".into()));
            }
            sqlx::query("UPDATE units SET status = 'dispatched', status_since_ms = $2, alert_id = $3 WHERE id = $1")
                .bind(id)
                .bind(now)
                .bind(alert_id)
                .execute(&mut *tx)
                .await?;
            out.push(load(&mut tx, id).await?.ok_or_else(|| UnitError::NotFound(id.clone()))?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Retires a unit: it takes no more positions and is listed only with `all`; its track stays
    /// until retention removes it.
    pub async fn retire_unit(&self, id: &str, now: Millis) -> Result<UnitRow, UnitError> {
        let mut tx = self.begin().await?;
        let old = load(&mut tx, id).await?.ok_or_else(|| UnitError::NotFound(id.to_string()))?;
        if old.retired_at_ms.is_some() {
            return Err(UnitError::Retired(id.to_string()));
        }
        sqlx::query("UPDATE units SET retired_at_ms = $2 WHERE id = $1").bind(id).bind(now).execute(&mut *tx).await?;
        let row = load(&mut tx, id).await?.ok_or_else(|| UnitError::NotFound(id.to_string()))?;
        tx.commit().await?;
        Ok(row)
    }

    /// Stores a batch of one unit's positions in one transaction: each is checked
    /// ([`Fix::check`], with `oldest` the first time tracks keep), stored once per time (a
    /// repeat counts as a duplicate), and the newest of all becomes the unit's position when it
    /// is newer than the one it has. A bad position is rejected with its reason and the rest are
    /// stored.
    pub async fn add_fixes(
        &self,
        id: &str,
        fixes: &[Fix],
        source: FixSource,
        now: Millis,
        oldest: Millis,
    ) -> Result<FixesStored, UnitError> {
        let mut out = FixesStored::default();
        let mut tx = self.begin().await?;
        let unit = load(&mut tx, id).await?.ok_or_else(|| UnitError::NotFound(id.to_string()))?;
        if unit.retired_at_ms.is_some() {
            return Err(UnitError::Retired(id.to_string()));
        }
        let mut newest: Option<&Fix> = None;
        for (index, f) in fixes.iter().enumerate() {
            if let Err(reason) = f.check(now, oldest) {
                out.rejected.push(RejectedFix { index, reason });
                continue;
            }
            let (opt, floats) = nullable_floats(6, &[f.speed_mps, f.heading_deg, f.accuracy_m]);
            let sql = format!(
                "INSERT INTO unit_positions (unit_id, at_ms, lon, lat, received_ms, source, speed_mps, heading_deg, \
                 accuracy_m) VALUES ($1, $2, $3, $4, $5, '{}', {}, {}, {}) ON CONFLICT (unit_id, at_ms) DO NOTHING",
                source.as_str(),
                opt[0],
                opt[1],
                opt[2]
            );
            let mut q = sqlx::query(&sql).bind(id).bind(f.at_ms).bind(f.lon).bind(f.lat).bind(now);
            for v in floats {
                q = q.bind(v);
            }
            if q.execute(&mut *tx).await?.rows_affected() == 0 {
                out.duplicates += 1;
                continue;
            }
            out.stored += 1;
            if newest.is_none_or(|n| f.at_ms > n.at_ms) {
                newest = Some(f);
            }
        }
        if let Some(f) = newest {
            let (opt, floats) = nullable_floats(5, &[f.speed_mps, f.heading_deg, f.accuracy_m]);
            let sql = format!(
                "UPDATE units SET at_ms = $2, lon = $3, lat = $4, speed_mps = {}, heading_deg = {}, accuracy_m = {} \
                 WHERE id = $1 AND (at_ms IS NULL OR at_ms < $2)",
                opt[0], opt[1], opt[2]
            );
            let mut q = sqlx::query(&sql).bind(id).bind(f.at_ms).bind(f.lon).bind(f.lat);
            for v in floats {
                q = q.bind(v);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// A unit's positions taken in `[from, to)`, oldest first, at most `limit`.
    pub async fn track(&self, id: &str, from: Millis, to: Millis, limit: u32) -> Result<Vec<Fix>, RegistryError> {
        let rows = sqlx::query(
            "SELECT at_ms, lon, lat, speed_mps, heading_deg, accuracy_m FROM unit_positions \
             WHERE unit_id = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY at_ms LIMIT $4",
        )
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(i64::from(limit.min(MAX_TRACK)))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(fix_from_row).collect()
    }

    /// Deletes positions taken before `before` (retention); returns how many went. A unit keeps
    /// its newest position on its own row.
    pub async fn delete_fixes(&self, before: Millis) -> Result<u64, RegistryError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM unit_positions WHERE at_ms < $1").bind(before).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(n.rows_affected())
    }
}
