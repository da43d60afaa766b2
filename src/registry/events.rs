//! The event log, ring states, passages and interceptions.

use sqlx::Row;

use super::geo::{EventRow, InterceptionRow, PassageRow};
use super::watchlists::nullable_floats;
use super::{Registry, RegistryError};

type Millis = i64;

fn parse_json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
}

/// A passage to store (what a checkpoint or an external system reports).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct NewPassage {
    pub camera_id: String,
    pub pass_time_ms: Millis,
    pub plate_no: Option<String>,
    pub plate_color: Option<String>,
    pub reliability: Option<f64>,
    pub direction: Option<String>,
    pub heading_deg: Option<f64>,
    /// The reader's confidence in each plate character, 0–1, in plate order.
    #[serde(default)]
    pub plate_reliabilities: Option<Vec<f64>>,
    /// Path of the plate crop (JPEG).
    #[serde(default)]
    pub plate_image: Option<String>,
    /// Path of the scene picture (JPEG).
    #[serde(default)]
    pub context_image: Option<String>,
    /// The tracker's id for the vehicle this read came from.
    #[serde(default)]
    pub track_id: Option<String>,
    /// How many frames the plate was read in.
    #[serde(default)]
    pub frames: Option<i64>,
    /// Lane number (GA/T 1400 LaneNo), from 1.
    #[serde(default)]
    pub lane_no: Option<i64>,
}

impl Registry {
    /// Appends an event; returns its id.
    pub async fn insert_event(
        &self,
        at_ms: Millis,
        kind: &str,
        camera_id: Option<&str>,
        ring_id: Option<&str>,
        payload: &serde_json::Value,
    ) -> Result<i64, RegistryError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO events (at_ms, kind, camera_id, ring_id, payload) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(at_ms)
        .bind(kind)
        .bind(camera_id)
        .bind(ring_id)
        .bind(payload.to_string())
        .fetch_one(self.pool())
        .await?;
        Ok(id)
    }

    /// Events after `after_id`, oldest first, optionally of one kind.
    pub async fn events(&self, kind: Option<&str>, after_id: i64, limit: u32) -> Result<Vec<EventRow>, RegistryError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, kind, camera_id, ring_id, payload FROM events \
             WHERE id > $1 AND ($2 IS NULL OR kind = $2) ORDER BY id LIMIT $3",
        )
        .bind(after_id)
        .bind(kind)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EventRow {
                    id: r.try_get("id")?,
                    at_ms: r.try_get("at_ms")?,
                    kind: r.try_get("kind")?,
                    camera_id: r.try_get("camera_id")?,
                    ring_id: r.try_get("ring_id")?,
                    payload: parse_json(&r.try_get::<String, _>("payload")?),
                })
            })
            .collect()
    }

    /// Last recorded open/closed state of each ring.
    pub async fn ring_open_states(&self) -> Result<Vec<(String, bool)>, RegistryError> {
        let rows = sqlx::query("SELECT ring_id, open FROM ring_states").fetch_all(self.pool()).await?;
        rows.iter().map(|r| Ok((r.try_get("ring_id")?, r.try_get::<i64, _>("open")? != 0))).collect()
    }

    /// Records a ring's new state and its event together.
    pub async fn set_ring_state(
        &self,
        ring_id: &str,
        open: bool,
        at_ms: Millis,
        detail: &serde_json::Value,
        event: Option<&str>,
    ) -> Result<(), RegistryError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO ring_states (ring_id, open, since_ms, detail) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (ring_id) DO UPDATE SET open = excluded.open, since_ms = excluded.since_ms, detail = excluded.detail",
        )
        .bind(ring_id)
        .bind(i64::from(open))
        .bind(at_ms)
        .bind(detail.to_string())
        .execute(&mut *tx)
        .await?;
        if let Some(kind) = event {
            sqlx::query("INSERT INTO events (at_ms, kind, camera_id, ring_id, payload) VALUES ($1, $2, NULL, $3, $4)")
                .bind(at_ms)
                .bind(kind)
                .bind(ring_id)
                .bind(detail.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores a passage; returns it with its id.
    pub async fn insert_passage(&self, p: &NewPassage, source: &str, now: Millis) -> Result<PassageRow, RegistryError> {
        let reliabilities = p.plate_reliabilities.as_ref().map(|v| serde_json::to_string(v).unwrap_or_default());
        let (floats_sql, floats) = nullable_floats(14, &[p.reliability, p.heading_deg]);
        let sql = format!(
            "INSERT INTO passages (camera_id, pass_time_ms, plate_no, plate_color, direction, source, created_at_ms, \
             plate_reliabilities, plate_image, context_image, track_id, frames, lane_no, reliability, heading_deg) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, {}) RETURNING id",
            floats_sql.join(", ")
        );
        let mut q = sqlx::query_scalar(&sql)
            .bind(&p.camera_id)
            .bind(p.pass_time_ms)
            .bind(p.plate_no.as_deref())
            .bind(p.plate_color.as_deref())
            .bind(p.direction.as_deref())
            .bind(source)
            .bind(now)
            .bind(reliabilities)
            .bind(p.plate_image.as_deref())
            .bind(p.context_image.as_deref())
            .bind(p.track_id.as_deref())
            .bind(p.frames)
            .bind(p.lane_no);
        for f in floats {
            q = q.bind(f);
        }
        let id: i64 = q.fetch_one(self.pool()).await?;
        Ok(PassageRow {
            id,
            camera_id: p.camera_id.clone(),
            pass_time_ms: p.pass_time_ms,
            plate_no: p.plate_no.clone(),
            plate_color: p.plate_color.clone(),
            reliability: p.reliability,
            direction: p.direction.clone(),
            heading_deg: p.heading_deg,
            source: source.into(),
            plate_reliabilities: p.plate_reliabilities.clone(),
            plate_image: p.plate_image.clone(),
            context_image: p.context_image.clone(),
            track_id: p.track_id.clone(),
            frames: p.frames,
            lane_no: p.lane_no,
        })
    }

    /// Stores a new interception; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_interception(
        &self,
        now: Millis,
        incident_at_ms: Millis,
        lon: f64,
        lat: f64,
        plate: Option<&str>,
        note: &str,
        expires_at_ms: Millis,
        plan: &serde_json::Value,
    ) -> Result<i64, RegistryError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO interceptions (created_at_ms, incident_at_ms, lon, lat, plate, note, status, expires_at_ms, plan) \
             VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8) RETURNING id",
        )
        .bind(now)
        .bind(incident_at_ms)
        .bind(lon)
        .bind(lat)
        .bind(plate)
        .bind(note)
        .bind(expires_at_ms)
        .bind(plan.to_string())
        .fetch_one(self.pool())
        .await?;
        Ok(id)
    }

    /// Marks active interceptions past their expiry as expired.
    pub async fn expire_interceptions(&self, now: Millis) -> Result<u64, RegistryError> {
        let r =
            sqlx::query("UPDATE interceptions SET status = 'expired' WHERE status = 'active' AND expires_at_ms <= $1")
                .bind(now)
                .execute(self.pool())
                .await?;
        Ok(r.rows_affected())
    }

    /// Interceptions, newest first; only active ones when `active_only`.
    pub async fn interceptions(
        &self,
        active_only: bool,
        id: Option<i64>,
    ) -> Result<Vec<InterceptionRow>, RegistryError> {
        let rows = sqlx::query(
            "SELECT id, created_at_ms, incident_at_ms, lon, lat, plate, note, status, expires_at_ms, closed_at_ms, \
             closed_by, plan FROM interceptions WHERE ($1 = 0 OR status = 'active') AND ($2 IS NULL OR id = $2) \
             ORDER BY id DESC LIMIT 500",
        )
        .bind(i64::from(active_only))
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(InterceptionRow {
                    id: r.try_get("id")?,
                    created_at_ms: r.try_get("created_at_ms")?,
                    incident_at_ms: r.try_get("incident_at_ms")?,
                    lon: r.try_get("lon")?,
                    lat: r.try_get("lat")?,
                    plate: r.try_get("plate")?,
                    note: r.try_get("note")?,
                    status: r.try_get("status")?,
                    expires_at_ms: r.try_get("expires_at_ms")?,
                    closed_at_ms: r.try_get("closed_at_ms")?,
                    closed_by: r.try_get("closed_by")?,
                    plan: parse_json(&r.try_get::<String, _>("plan")?),
                })
            })
            .collect()
    }

    /// Closes an active interception; false when there is none of that id still active.
    pub async fn close_interception(&self, id: i64, by: &str, now: Millis) -> Result<bool, RegistryError> {
        let r = sqlx::query(
            "UPDATE interceptions SET status = 'closed', closed_at_ms = $1, closed_by = $2 WHERE id = $3 AND status = 'active'",
        )
        .bind(now)
        .bind(by)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
