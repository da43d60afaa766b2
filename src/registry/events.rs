//! The event log, ring states, passages and interceptions.
//!
//! The log is stored as rows of text: what `events::Event::encode` wrote (kind, lane, payload),
//! an optional idempotency key, and the position (`id`). Readers follow a lane by position, so
//! positions must appear in commit order: on PostgreSQL, identity values are handed out before
//! commit, and a reader could see position N+1 committed while N is still in flight and never
//! read N. Every transaction that appends events therefore takes one advisory transaction lock
//! just before its inserts ([`append_tx`]): the lock is released only after the commit is
//! visible, so the next appender's positions are always above every committed one and a reader
//! never passes a position that could still appear. SQLite has a single writer already.

use sqlx::Row;

use super::geo::{EventRow, InterceptionRow, PassageRow};
use super::watchlists::nullable_floats;
use super::{Backend, Registry, RegistryError};

type Millis = i64;
type Tx = super::WriteTx;

/// The advisory lock that orders appends to the event log (PostgreSQL).
const EVENT_ORDER_LOCK: i64 = 0x7477_0001;

fn parse_json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
}

/// An event as stored (what `events::Event::encode` produced, with its time and key).
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    pub at_ms: Millis,
    pub kind: String,
    /// `events::Lane::code()`.
    pub lane: i64,
    /// Appending a key already in the log appends nothing and answers the stored position.
    pub key: Option<String>,
    pub camera_id: Option<String>,
    pub ring_id: Option<String>,
    pub payload: String,
}

/// A stored event as read back for a consumer.
#[derive(Debug, Clone, PartialEq)]
pub struct RawStored {
    pub position: i64,
    pub at_ms: Millis,
    pub kind: String,
    pub payload: String,
}

fn raw_stored(r: &sqlx::any::AnyRow) -> Result<RawStored, RegistryError> {
    Ok(RawStored {
        position: r.try_get("id")?,
        at_ms: r.try_get("at_ms")?,
        kind: r.try_get("kind")?,
        payload: r.try_get("payload")?,
    })
}

/// Takes the event-order lock for the rest of the transaction (PostgreSQL; a no-op on SQLite).
pub(crate) async fn lock_event_order(tx: &mut super::WriteTx, backend: Backend, key: i64) -> Result<(), RegistryError> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Appends events in the caller's transaction, in commit order (see the module documentation);
/// returns each one's position (the stored one for a key already in the log).
pub(crate) async fn append_tx(
    tx: &mut super::WriteTx,
    backend: Backend,
    events: &[RawEvent],
) -> Result<Vec<i64>, RegistryError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    for e in events {
        if let Some(camera) = &e.camera_id {
            tx.fence(camera).await?;
        }
    }
    lock_event_order(tx, backend, EVENT_ORDER_LOCK).await?;
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO events (at_ms, kind, lane, key, camera_id, ring_id, payload) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (key) DO NOTHING RETURNING id",
        )
        .bind(e.at_ms)
        .bind(&e.kind)
        .bind(e.lane)
        .bind(e.key.as_deref())
        .bind(e.camera_id.as_deref())
        .bind(e.ring_id.as_deref())
        .bind(&e.payload)
        .fetch_optional(&mut **tx)
        .await?;
        let id = match id {
            Some(id) => id,
            None => {
                sqlx::query_scalar("SELECT id FROM events WHERE key = $1")
                    .bind(e.key.as_deref())
                    .fetch_one(&mut **tx)
                    .await?
            }
        };
        out.push(id);
    }
    Ok(out)
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
    /// The reporting system's id for this passage (GA/T 1400 MotorVehicleID): a passage sent
    /// again with the same id is stored once. Without it, the camera, time, plate and lane make
    /// the id.
    #[serde(default)]
    pub passage_key: Option<String>,
}

impl NewPassage {
    /// The id that makes a retried passage the same passage.
    pub fn key(&self) -> String {
        match &self.passage_key {
            Some(k) => format!("ext:{k}"),
            None => format!(
                "{}:{}:{}:{}",
                self.camera_id,
                self.pass_time_ms,
                self.plate_no.as_deref().unwrap_or("-"),
                self.lane_no.map(|l| l.to_string()).unwrap_or_else(|| "-".into())
            ),
        }
    }
}

/// What storing a passage did.
#[derive(Debug, Clone)]
pub struct PassageStored {
    pub passage: PassageRow,
    /// Positions of the events it raised.
    pub events: Vec<i64>,
    /// False when the passage was stored before (a retry): nothing was written this time.
    pub created: bool,
}

impl Registry {
    /// Tells in-process readers that the log grew (after a commit).
    pub(crate) fn note_appended(&self, positions: &[i64]) {
        if let Some(&top) = positions.iter().max() {
            self.appended.send_if_modified(|v| {
                let grew = top > *v;
                if grew {
                    *v = top;
                }
                grew
            });
        }
    }

    /// The newest position appended in this process (changes after every commit that appends).
    pub fn appended(&self) -> tokio::sync::watch::Receiver<i64> {
        self.appended.subscribe()
    }

    /// Appends events in one transaction; returns their positions.
    pub async fn append_events(&self, events: &[RawEvent]) -> Result<Vec<i64>, RegistryError> {
        let mut tx = self.begin().await?;
        let ids = append_tx(&mut tx, self.backend(), events).await?;
        tx.commit().await?;
        self.note_appended(&ids);
        Ok(ids)
    }

    /// Events of one lane after `after`, oldest first.
    pub async fn read_lane(&self, lane: i64, after: i64, limit: u32) -> Result<Vec<RawStored>, RegistryError> {
        let rows =
            sqlx::query("SELECT id, at_ms, kind, payload FROM events WHERE lane = $1 AND id > $2 ORDER BY id LIMIT $3")
                .bind(lane)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(raw_stored).collect()
    }

    /// Events of every lane after `after`, oldest first, with their lanes (what the JetStream
    /// relay publishes).
    pub async fn read_all(&self, after: i64, limit: u32) -> Result<Vec<(i64, RawStored)>, RegistryError> {
        let rows = sqlx::query("SELECT id, at_ms, kind, lane, payload FROM events WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok((r.try_get("lane")?, raw_stored(r)?))).collect()
    }

    /// The last position of a lane at or before `at` (0 when none).
    pub async fn lane_position_at(&self, lane: i64, at: i64) -> Result<i64, RegistryError> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events WHERE lane = $1 AND id <= $2")
            .bind(lane)
            .bind(at)
            .fetch_one(self.pool())
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// How many events of a lane lie after `after`.
    pub async fn lane_backlog(&self, lane: i64, after: i64) -> Result<i64, RegistryError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE lane = $1 AND id > $2")
            .bind(lane)
            .bind(after)
            .fetch_one(self.pool())
            .await?)
    }

    /// The newest position in the log (0 when empty).
    pub async fn last_event_position(&self) -> Result<i64, RegistryError> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events").fetch_one(self.pool()).await?;
        Ok(v.unwrap_or(0))
    }

    /// Events after `after_id`, oldest first, optionally of one kind (for the API).
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

    /// Records a ring's new state and its event (if any) together.
    pub async fn set_ring_state(
        &self,
        ring_id: &str,
        open: bool,
        at_ms: Millis,
        detail: &serde_json::Value,
        event: Option<&RawEvent>,
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
        let ids = match event {
            Some(e) => append_tx(&mut tx, self.backend(), std::slice::from_ref(e)).await?,
            None => Vec::new(),
        };
        tx.commit().await?;
        self.note_appended(&ids);
        Ok(())
    }

    /// Stores a passage and the events it raises in one transaction, once per passage key: a
    /// passage stored before is answered as it was (nothing written). `events` is given the
    /// stored passage (its id) and returns what to append.
    pub async fn record_passage(
        &self,
        p: &NewPassage,
        source: &str,
        now: Millis,
        events: impl FnOnce(&PassageRow) -> Vec<RawEvent>,
    ) -> Result<PassageStored, RegistryError> {
        let key = p.key();
        if let Some(done) = self.stored_passage(&key).await? {
            return Ok(done);
        }
        let mut tx = self.begin().await?;
        tx.fence(&p.camera_id).await?;
        let Some(row) = insert_passage(&mut tx, p, &key, source, now).await? else {
            // Stored meanwhile by a concurrent retry of the same passage (PostgreSQL).
            tx.rollback().await?;
            return self
                .stored_passage(&key)
                .await?
                .ok_or_else(|| RegistryError::Invalid(format!("passage {key:?} was stored and vanished")));
        };
        let ids = append_tx(&mut tx, self.backend(), &events(&row)).await?;
        sqlx::query("UPDATE passages SET event_ids = $1 WHERE id = $2")
            .bind(serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()))
            .bind(row.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.note_appended(&ids);
        Ok(PassageStored { passage: row, events: ids, created: true })
    }

    /// The passage stored under `key`, with the events it raised.
    async fn stored_passage(&self, key: &str) -> Result<Option<PassageStored>, RegistryError> {
        let found = sqlx::query("SELECT id, event_ids FROM passages WHERE passage_key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        let Some(r) = found else { return Ok(None) };
        let (id, ids): (i64, Option<String>) = (r.try_get("id")?, r.try_get("event_ids")?);
        let passage =
            self.passage(id).await?.ok_or_else(|| RegistryError::Invalid(format!("passage {id} vanished")))?;
        let events = ids.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default();
        Ok(Some(PassageStored { passage, events, created: false }))
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
        let mut tx = self.begin().await?;
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
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Marks active interceptions past their expiry as expired.
    pub async fn expire_interceptions(&self, now: Millis) -> Result<u64, RegistryError> {
        // Most calls change nothing: look first, write (in turn) only when something expired.
        let due: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM interceptions WHERE status = 'active' AND expires_at_ms <= $1")
                .bind(now)
                .fetch_one(self.pool())
                .await?;
        if due == 0 {
            return Ok(0);
        }
        let mut tx = self.begin().await?;
        let r =
            sqlx::query("UPDATE interceptions SET status = 'expired' WHERE status = 'active' AND expires_at_ms <= $1")
                .bind(now)
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
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
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            "UPDATE interceptions SET status = 'closed', closed_at_ms = $1, closed_by = $2 WHERE id = $3 AND status = 'active'",
        )
        .bind(now)
        .bind(by)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }
}

/// Inserts a passage in the caller's transaction; `None` when its key is stored already.
async fn insert_passage(
    tx: &mut Tx,
    p: &NewPassage,
    key: &str,
    source: &str,
    now: Millis,
) -> Result<Option<PassageRow>, RegistryError> {
    let reliabilities = p.plate_reliabilities.as_ref().map(|v| serde_json::to_string(v).unwrap_or_default());
    let (floats_sql, floats) = nullable_floats(15, &[p.reliability, p.heading_deg]);
    let sql = format!(
        "INSERT INTO passages (camera_id, pass_time_ms, plate_no, plate_color, direction, source, created_at_ms, \
         plate_reliabilities, plate_image, context_image, track_id, frames, lane_no, passage_key, reliability, heading_deg) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, {}) \
         ON CONFLICT (passage_key) DO NOTHING RETURNING id",
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
        .bind(p.lane_no)
        .bind(key);
    for f in floats {
        q = q.bind(f);
    }
    let Some(id) = q.fetch_optional(&mut **tx).await? else { return Ok(None) };
    Ok(Some(PassageRow {
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
    }))
}
