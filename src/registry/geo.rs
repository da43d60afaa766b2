//! Geography in the registry: roads, cell outlines, entrances, imported cameras, rings and their
//! states, the event log, passages and interceptions. Every import is one transaction: a file
//! goes in whole or not at all.

use std::collections::HashSet;

use sqlx::Row;

use super::geo_inputs::{
    CamGeo, CameraInput, CellInput, EntranceInput, GeoInputs, Oneway, Rejected, RingInput, RoadWay,
};
use super::{Registry, RegistryError};
use crate::config::{CameraKind, CameraStatus, DoriTable, Owner};

type Millis = i64;

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T, RegistryError> {
    serde_json::from_str(s).map_err(|e| RegistryError::Invalid(format!("stored {what} is not valid JSON: {e}")))
}

/// A stored event (for the alert engine and the API).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct EventRow {
    pub id: i64,
    pub at_ms: Millis,
    pub kind: String,
    pub camera_id: Option<String>,
    pub ring_id: Option<String>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

/// A stored passage.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PassageRow {
    pub id: i64,
    pub camera_id: String,
    pub pass_time_ms: Millis,
    pub plate_no: Option<String>,
    pub plate_color: Option<String>,
    pub reliability: Option<f64>,
    pub direction: Option<String>,
    pub heading_deg: Option<f64>,
    pub source: String,
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

/// A stored interception.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct InterceptionRow {
    pub id: i64,
    pub created_at_ms: Millis,
    pub incident_at_ms: Millis,
    pub lon: f64,
    pub lat: f64,
    pub plate: Option<String>,
    pub note: String,
    /// `active`, `closed` or `expired`.
    pub status: String,
    pub expires_at_ms: Millis,
    pub closed_at_ms: Option<Millis>,
    pub closed_by: Option<String>,
    #[schema(value_type = Object)]
    pub plan: serde_json::Value,
}

impl Registry {
    /// Stores roads (insert or replace by id) in one transaction.
    pub async fn store_roads(&self, roads: &[RoadWay], source: &str, now: Millis) -> Result<usize, RegistryError> {
        let mut tx = self.begin().await?;
        put_roads(&mut tx, roads, source, now).await?;
        tx.commit().await?;
        Ok(roads.len())
    }

    /// Stores the roads and cameras of one map file together: all or nothing.
    pub async fn store_map(
        &self,
        roads: &[RoadWay],
        cams: &[CameraInput],
        source: &str,
        now: Millis,
    ) -> Result<(usize, usize, Vec<Rejected>), RegistryError> {
        let mut tx = self.begin().await?;
        put_roads(&mut tx, roads, &format!("import:{source}"), now).await?;
        let (n, rejected) = put_cameras(&mut tx, cams, source, now).await?;
        tx.commit().await?;
        Ok((roads.len(), n, rejected))
    }

    /// Stores grid cells with outlines. A cell whose parent is neither in `cells` nor in the
    /// registry, or whose id belongs to a configured cell, is refused and returned as rejected;
    /// the rest go in together.
    pub async fn store_cells(
        &self,
        cells: &[CellInput],
        source: &str,
        now: Millis,
    ) -> Result<(usize, Vec<Rejected>), RegistryError> {
        let mut tx = self.begin().await?;
        let existing: Vec<(String, String)> = sqlx::query("SELECT id, source FROM grid_cells")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("source")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let mut known: HashSet<&str> = existing.iter().map(|(id, _)| id.as_str()).collect();
        known.extend(cells.iter().map(|c| c.id.as_str()));
        let mut rejected = Vec::new();
        let mut stored = 0;
        for c in cells {
            if existing.iter().any(|(id, src)| id == &c.id && src == "config") {
                rejected.push(Rejected {
                    at: format!("cell {:?}", c.id),
                    reason: "a cell of this id is defined in the configuration; not overwritten".into(),
                });
                continue;
            }
            if let Some(p) = &c.parent
                && !known.contains(p.as_str())
            {
                rejected.push(Rejected {
                    at: format!("cell {:?}", c.id),
                    reason: format!("parent {p:?} is neither in this file nor in the registry"),
                });
                continue;
            }
            sqlx::query(
                "INSERT INTO grid_cells (id, name, level, parent_id, retired_at_ms, updated_at_ms, outline, source) \
                 VALUES ($1, $2, $3, $4, NULL, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 level = excluded.level, parent_id = excluded.parent_id, retired_at_ms = NULL, \
                 updated_at_ms = excluded.updated_at_ms, outline = excluded.outline, source = excluded.source",
            )
            .bind(&c.id)
            .bind(&c.name)
            .bind(c.level as i64)
            .bind(c.parent.as_deref())
            .bind(now)
            .bind(json(&c.polygon))
            .bind(source)
            .execute(&mut *tx)
            .await?;
            stored += 1;
        }
        tx.commit().await?;
        Ok((stored, rejected))
    }

    /// Stores entrances (insert or replace by id) in one transaction.
    pub async fn store_entrances(
        &self,
        v: &[EntranceInput],
        source: &str,
        now: Millis,
    ) -> Result<usize, RegistryError> {
        let mut tx = self.begin().await?;
        for e in v {
            sqlx::query(
                "INSERT INTO entrances (id, name, road, lon, lat, grid_cell_id, source, imported_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 road = excluded.road, lon = excluded.lon, lat = excluded.lat, grid_cell_id = excluded.grid_cell_id, \
                 source = excluded.source, imported_at_ms = excluded.imported_at_ms",
            )
            .bind(&e.id)
            .bind(&e.name)
            .bind(e.road.as_deref())
            .bind(e.lon)
            .bind(e.lat)
            .bind(e.grid_cell.as_deref())
            .bind(source)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(v.len())
    }

    /// Stores cameras known from a survey or a map: no stream, not ingested (status `unknown`
    /// until someone links a stream). A camera of the same id from the configuration is never
    /// overwritten: it comes back as rejected.
    pub async fn store_imported_cameras(
        &self,
        cams: &[CameraInput],
        source: &str,
        now: Millis,
    ) -> Result<(usize, Vec<Rejected>), RegistryError> {
        let mut tx = self.begin().await?;
        let out = put_cameras(&mut tx, cams, source, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Replaces the configured rings (those from imports are left alone).
    pub async fn sync_rings(&self, rings: &[RingInput], now: Millis) -> Result<(), RegistryError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM rings WHERE source = 'config'").execute(&mut *tx).await?;
        put_rings(&mut tx, rings, "config", now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores rings that come from elsewhere than the configuration (a generated city, an
    /// import): insert or replace by id, under `source` (never `config`, which `sync_rings` owns).
    pub async fn store_rings(&self, rings: &[RingInput], source: &str, now: Millis) -> Result<usize, RegistryError> {
        if source == "config" {
            return Err(RegistryError::Invalid("rings from the configuration are stored by sync_rings".into()));
        }
        let mut tx = self.begin().await?;
        put_rings(&mut tx, rings, source, now).await?;
        tx.commit().await?;
        Ok(rings.len())
    }

    /// A cheap fingerprint of everything the geography model is built from (not camera states):
    /// when it changes, the model is rebuilt.
    pub async fn geo_fingerprint(&self) -> Result<String, RegistryError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM cameras) AS c, (SELECT COALESCE(MAX(updated_at_ms), 0) FROM cameras) AS cu, \
             (SELECT COUNT(*) FROM roads) AS r, (SELECT COALESCE(MAX(imported_at_ms), 0) FROM roads) AS ru, \
             (SELECT COUNT(*) FROM grid_cells) AS g, (SELECT COALESCE(MAX(updated_at_ms), 0) FROM grid_cells) AS gu, \
             (SELECT COUNT(*) FROM entrances) AS e, (SELECT COALESCE(MAX(imported_at_ms), 0) FROM entrances) AS eu, \
             (SELECT COUNT(*) FROM rings) AS n, (SELECT COALESCE(MAX(updated_at_ms), 0) FROM rings) AS nu",
        )
        .fetch_one(self.pool())
        .await?;
        let mut parts = Vec::new();
        for k in ["c", "cu", "r", "ru", "g", "gu", "e", "eu", "n", "nu"] {
            parts.push(row.try_get::<i64, _>(k)?.to_string());
        }
        Ok(parts.join("/"))
    }

    /// A cheap fingerprint of every camera's state: the newest status change (every change writes
    /// its history row, and retention keeps each camera's newest) and the sum of the times each
    /// camera's state began. When it changes, the model's camera states are read again.
    pub async fn states_fingerprint(&self) -> Result<String, RegistryError> {
        let row = sqlx::query(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM camera_status_history) AS h, \
             (SELECT CAST(COALESCE(SUM(status_since_ms), 0) AS BIGINT) FROM cameras) AS s",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(format!("{}/{}", row.try_get::<i64, _>("h")?, row.try_get::<i64, _>("s")?))
    }

    /// Cameras whose state began after `since_ms` (id, state, since, lon, lat), oldest change
    /// first, at most `limit`.
    pub async fn camera_state_changes(
        &self,
        since_ms: Millis,
        limit: usize,
    ) -> Result<Vec<(String, CameraStatus, Millis, f64, f64)>, RegistryError> {
        let rows = sqlx::query(
            "SELECT id, status, status_since_ms, lon, lat FROM cameras WHERE status_since_ms > $1 \
             ORDER BY status_since_ms, id LIMIT $2",
        )
        .bind(since_ms)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let status: String = r.try_get("status")?;
            out.push((
                r.try_get("id")?,
                status.parse().unwrap_or(CameraStatus::Unknown),
                r.try_get("status_since_ms")?,
                r.try_get("lon")?,
                r.try_get("lat")?,
            ));
        }
        Ok(out)
    }

    /// Camera states by id (for refreshing a built model).
    pub async fn camera_states(&self) -> Result<Vec<(String, CameraStatus)>, RegistryError> {
        let rows = sqlx::query("SELECT id, status FROM cameras").fetch_all(self.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let status: String = r.try_get("status")?;
            out.push((r.try_get("id")?, status.parse().unwrap_or(CameraStatus::Unknown)));
        }
        Ok(out)
    }

    /// Everything the geography model needs.
    pub async fn geo_inputs(&self, table: DoriTable) -> Result<GeoInputs, RegistryError> {
        let mut inp = GeoInputs { table: Some(table), ..Default::default() };
        let rows = sqlx::query(
            "SELECT id, name, kind, owner, status, grid_cell_id, lon, lat, bearing_deg, hfov_deg, width_px, \
             height_px, mounting_height_m FROM cameras WHERE status <> 'decommissioned' \
             AND NOT (lon = 0 AND lat = 0) ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        for r in rows {
            let (kind, owner, status): (String, String, String) =
                (r.try_get("kind")?, r.try_get("owner")?, r.try_get("status")?);
            inp.cameras.push(CamGeo {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                kind: kind.parse().unwrap_or(CameraKind::Street),
                owner: owner.parse().unwrap_or(Owner::Public),
                status: status.parse().unwrap_or(CameraStatus::Unknown),
                grid_cell: r.try_get("grid_cell_id")?,
                lon: r.try_get("lon")?,
                lat: r.try_get("lat")?,
                bearing_deg: r.try_get("bearing_deg")?,
                hfov_deg: r.try_get("hfov_deg")?,
                width_px: r.try_get::<i64, _>("width_px")?.clamp(0, u32::MAX as i64) as u32,
                height_px: r.try_get::<i64, _>("height_px")?.clamp(0, u32::MAX as i64) as u32,
                mounting_height_m: r.try_get("mounting_height_m")?,
            });
        }
        for r in sqlx::query("SELECT id, name, class, oneway, coords, node_ids FROM roads ORDER BY id")
            .fetch_all(self.pool())
            .await?
        {
            let oneway: String = r.try_get("oneway")?;
            let node_ids: Option<String> = r.try_get("node_ids")?;
            inp.roads.push(RoadWay {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                class: r.try_get("class")?,
                oneway: Oneway::parse(&oneway).unwrap_or(Oneway::No),
                coords: from_json(&r.try_get::<String, _>("coords")?, "road coordinates")?,
                node_ids: node_ids.map(|s| from_json(&s, "road node ids")).transpose()?,
            });
        }
        for r in sqlx::query(
            "SELECT id, name, level, parent_id, outline FROM grid_cells WHERE retired_at_ms IS NULL ORDER BY level, id",
        )
        .fetch_all(self.pool())
        .await?
        {
            let outline: Option<String> = r.try_get("outline")?;
            inp.cells.push(CellInput {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                level: r.try_get::<i64, _>("level")?.clamp(1, 3) as u8,
                parent: r.try_get("parent_id")?,
                polygon: outline.map(|s| from_json(&s, "cell outline")).transpose()?.unwrap_or_default(),
            });
        }
        for r in sqlx::query("SELECT id, name, road, lon, lat, grid_cell_id FROM entrances ORDER BY id")
            .fetch_all(self.pool())
            .await?
        {
            inp.entrances.push(EntranceInput {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                road: r.try_get("road")?,
                lon: r.try_get("lon")?,
                lat: r.try_get("lat")?,
                grid_cell: r.try_get("grid_cell_id")?,
            });
        }
        for r in sqlx::query("SELECT id, name, level, members, outline FROM rings ORDER BY level, id")
            .fetch_all(self.pool())
            .await?
        {
            let outline: Option<String> = r.try_get("outline")?;
            inp.rings.push(RingInput {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                level: r.try_get::<i64, _>("level")?.clamp(0, 255) as u8,
                members: from_json(&r.try_get::<String, _>("members")?, "ring members")?,
                polygon: outline.map(|s| from_json(&s, "ring outline")).transpose()?,
            });
        }
        Ok(inp)
    }
}

type Tx<'a> = super::WriteTx;

async fn put_roads(tx: &mut Tx<'_>, roads: &[RoadWay], source: &str, now: Millis) -> Result<(), RegistryError> {
    for r in roads {
        sqlx::query(
            "INSERT INTO roads (id, name, class, oneway, coords, node_ids, source, imported_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 class = excluded.class, oneway = excluded.oneway, coords = excluded.coords, \
                 node_ids = excluded.node_ids, source = excluded.source, imported_at_ms = excluded.imported_at_ms",
        )
        .bind(&r.id)
        .bind(r.name.as_deref())
        .bind(&r.class)
        .bind(r.oneway.as_str())
        .bind(json(&r.coords))
        .bind(r.node_ids.as_ref().map(json))
        .bind(source)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Inserts or replaces rings by id under `source`.
async fn put_rings(tx: &mut Tx<'_>, rings: &[RingInput], source: &str, now: Millis) -> Result<(), RegistryError> {
    for r in rings {
        sqlx::query(
            "INSERT INTO rings (id, name, level, members, outline, source, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
             level = excluded.level, members = excluded.members, outline = excluded.outline, \
             source = excluded.source, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(&r.id)
        .bind(&r.name)
        .bind(r.level as i64)
        .bind(json(&r.members))
        .bind(r.polygon.as_ref().map(json))
        .bind(source)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn put_cameras(
    tx: &mut Tx<'_>,
    cams: &[CameraInput],
    source: &str,
    now: Millis,
) -> Result<(usize, Vec<Rejected>), RegistryError> {
    let configured: HashSet<String> =
        sqlx::query_scalar("SELECT id FROM cameras WHERE config_source NOT LIKE 'import:%'")
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
    let mut rejected = Vec::new();
    let mut stored = 0;
    for c in cams {
        if configured.contains(&c.id) {
            rejected.push(Rejected {
                at: format!("camera {:?}", c.id),
                reason: "a camera of this id is defined in the configuration; not overwritten".into(),
            });
            continue;
        }
        sqlx::query(
            "INSERT INTO cameras (id, name, url, has_credentials, codec, transport, lon, lat, mounting_height_m, \
                 bearing_deg, hfov_deg, width_px, height_px, kind, owner, grid_cell_id, profile, enabled, status, \
                 status_reason, status_since_ms, config_source, config_hash, created_at_ms, updated_at_ms) \
                 VALUES ($1, $2, '', 0, 'auto', 'tcp', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'health', 0, \
                 'unknown', 'imported; no stream linked', $13, $14, '', $13, $13) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, lon = excluded.lon, lat = excluded.lat, \
                 mounting_height_m = excluded.mounting_height_m, bearing_deg = excluded.bearing_deg, \
                 hfov_deg = excluded.hfov_deg, width_px = excluded.width_px, height_px = excluded.height_px, \
                 kind = excluded.kind, owner = excluded.owner, grid_cell_id = excluded.grid_cell_id, \
                 config_source = excluded.config_source, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(c.lon)
        .bind(c.lat)
        .bind(c.mounting_height_m)
        .bind(c.bearing_deg)
        .bind(c.hfov_deg)
        .bind(c.width_px as i64)
        .bind(c.height_px as i64)
        .bind(c.kind.as_str())
        .bind(c.owner.as_str())
        .bind(c.grid_cell.as_deref())
        .bind(now)
        .bind(format!("import:{source}"))
        .execute(&mut **tx)
        .await?;
        stored += 1;
    }
    Ok((stored, rejected))
}
