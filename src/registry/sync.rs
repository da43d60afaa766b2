//! Bringing the registry in line with the configuration: insert, update, disable, decommission.
//! Nothing is ever deleted: a camera gone from the configs is marked decommissioned and keeps its history.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::cameras::{insert_history, set_status_tx};
use super::{Registry, RegistryError};
use crate::clock::Millis;
use crate::config::{CameraConfig, CameraStatus, SharedConfig};

/// What a sync changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub inserted: Vec<String>,
    pub updated: Vec<String>,
    pub decommissioned: Vec<String>,
    /// Decommissioned cameras that came back into the configuration.
    pub reinstated: Vec<String>,
    pub unchanged: usize,
    pub grid_cells: usize,
}

impl SyncReport {
    pub fn summary(&self) -> String {
        format!(
            "{} new, {} updated, {} decommissioned, {} reinstated, {} unchanged cameras; {} grid cells",
            self.inserted.len(),
            self.updated.len(),
            self.decommissioned.len(),
            self.reinstated.len(),
            self.unchanged,
            self.grid_cells
        )
    }
}

/// FNV-1a over the camera's registry-relevant fields: a stable fingerprint of its configuration.
fn config_hash(c: &CameraConfig) -> String {
    let text = format!(
        "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{:?}|{}|{}|{}",
        c.id,
        c.name,
        c.url,
        c.username.is_some() || c.password.is_some(),
        c.codec,
        c.transport,
        c.lon,
        c.lat,
        c.mounting_height_m,
        c.bearing_deg,
        c.hfov_deg,
        c.width,
        c.height,
        c.kind,
        c.owner,
        c.grid_cell,
        c.profile,
        c.enabled,
        c.loc,
    );
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

impl Registry {
    /// Applies `cfg` (grid cells, cameras, rings) to the registry in one transaction: all of it or
    /// none of it.
    pub async fn sync_config(&self, cfg: &SharedConfig, now: Millis) -> Result<SyncReport, RegistryError> {
        let mut report = SyncReport::default();
        let mut tx = self.begin().await?;

        for cell in &cfg.grid {
            sqlx::query(
                "INSERT INTO grid_cells (id, name, level, parent_id, retired_at_ms, updated_at_ms, outline, source) \
                 VALUES ($1, $2, $3, $4, NULL, $5, $6, 'config') \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, level = excluded.level, parent_id = excluded.parent_id, \
                 retired_at_ms = NULL, updated_at_ms = excluded.updated_at_ms, outline = excluded.outline, source = 'config'",
            )
            .bind(&cell.id)
            .bind(&cell.name)
            .bind(i64::from(cell.level))
            .bind(cell.parent.as_deref())
            .bind(now)
            .bind(cell.outline.as_ref().map(|o| serde_json::to_string(o).unwrap_or_default()))
            .execute(&mut *tx)
            .await?;
        }
        let cell_ids: Vec<&str> = cfg.grid.iter().map(|c| c.id.as_str()).collect();
        let known_cells: Vec<String> =
            sqlx::query_scalar("SELECT id FROM grid_cells WHERE retired_at_ms IS NULL AND source = 'config'")
                .fetch_all(&mut *tx)
                .await?;
        for id in known_cells.iter().filter(|id| !cell_ids.contains(&id.as_str())) {
            sqlx::query("UPDATE grid_cells SET retired_at_ms = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        report.grid_cells = cfg.grid.len();

        let existing: HashMap<String, (String, String)> = sqlx::query(
            "SELECT id, config_hash, status FROM cameras WHERE config_source NOT LIKE 'import:%' \
                 AND config_source NOT LIKE 'gb28181:%'",
        )
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("id")?, (r.try_get("config_hash")?, r.try_get("status")?))))
        .collect::<Result<_, sqlx::Error>>()?;

        let mut in_config = HashSet::new();
        for c in &cfg.cameras {
            let id = c.id.as_str();
            in_config.insert(id);
            let hash = config_hash(c);
            match existing.get(id) {
                None => {
                    let status = if c.enabled { CameraStatus::Unknown } else { CameraStatus::Disabled };
                    let reason = format!("added from {}", c.loc);
                    upsert_camera(&mut tx, c, &hash, status, &reason, now).await?;
                    insert_history(&mut tx, id, None, status, &reason, now).await?;
                    report.inserted.push(id.to_string());
                }
                Some((old_hash, status)) => {
                    let was_decommissioned = status == CameraStatus::Decommissioned.as_str();
                    if *old_hash == hash && !was_decommissioned {
                        report.unchanged += 1;
                        continue;
                    }
                    upsert_camera(&mut tx, c, &hash, CameraStatus::Unknown, "", now).await?;
                    let target = match (c.enabled, status.as_str()) {
                        (false, _) => Some((CameraStatus::Disabled, "disabled in the configuration")),
                        (true, "disabled") => Some((CameraStatus::Unknown, "enabled in the configuration")),
                        (true, "decommissioned") => Some((CameraStatus::Unknown, "back in the configuration")),
                        _ => None,
                    };
                    if let Some((to, why)) = target {
                        set_status_tx(&mut tx, id, to, &format!("{why} ({})", c.loc), now).await?;
                    }
                    if was_decommissioned {
                        sqlx::query("UPDATE cameras SET decommissioned_at_ms = NULL WHERE id = $1")
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        report.reinstated.push(id.to_string());
                    } else {
                        report.updated.push(id.to_string());
                    }
                }
            }
        }

        for (id, (_, status)) in &existing {
            if in_config.contains(id.as_str()) || status == CameraStatus::Decommissioned.as_str() {
                continue;
            }
            set_status_tx(&mut tx, id, CameraStatus::Decommissioned, "removed from the configuration", now).await?;
            sqlx::query("UPDATE cameras SET decommissioned_at_ms = $1, enabled = 0 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            report.decommissioned.push(id.clone());
        }
        report.decommissioned.sort();

        tx.commit().await?;
        let rings: Vec<super::RingInput> = cfg
            .rings
            .iter()
            .map(|r| super::RingInput {
                id: r.id.clone(),
                name: r.name.clone(),
                level: r.level,
                members: r.members.clone(),
                polygon: r.outline.clone(),
            })
            .collect();
        self.sync_rings(&rings, now).await?;
        Ok(report)
    }
}

/// Inserts a camera, or updates its configured fields (status and history untouched on update).
async fn upsert_camera(
    tx: &mut super::WriteTx,
    c: &CameraConfig,
    hash: &str,
    status: CameraStatus,
    reason: &str,
    now: Millis,
) -> Result<(), RegistryError> {
    sqlx::query(
        "INSERT INTO cameras (id, name, url, has_credentials, codec, transport, lon, lat, mounting_height_m, bearing_deg, \
         hfov_deg, width_px, height_px, kind, owner, grid_cell_id, profile, enabled, status, status_reason, status_since_ms, \
         config_source, config_hash, created_at_ms, updated_at_ms, decommissioned_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $24, NULL) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, url = excluded.url, has_credentials = excluded.has_credentials, \
         codec = excluded.codec, transport = excluded.transport, lon = excluded.lon, lat = excluded.lat, \
         mounting_height_m = excluded.mounting_height_m, bearing_deg = excluded.bearing_deg, hfov_deg = excluded.hfov_deg, \
         width_px = excluded.width_px, height_px = excluded.height_px, kind = excluded.kind, owner = excluded.owner, \
         grid_cell_id = excluded.grid_cell_id, profile = excluded.profile, enabled = excluded.enabled, \
         config_source = excluded.config_source, config_hash = excluded.config_hash, updated_at_ms = excluded.updated_at_ms",
    )
    .bind(c.id.as_str())
    .bind(&c.name)
    .bind(c.url.as_str())
    .bind(i64::from(c.username.is_some() || c.password.is_some()))
    .bind(c.codec.as_str())
    .bind(c.transport.as_str())
    .bind(c.lon)
    .bind(c.lat)
    .bind(c.mounting_height_m)
    .bind(c.bearing_deg)
    .bind(c.hfov_deg)
    .bind(i64::from(c.width))
    .bind(i64::from(c.height))
    .bind(c.kind.as_str())
    .bind(c.owner.as_str())
    .bind(c.grid_cell.as_deref())
    .bind(c.profile.as_str())
    .bind(i64::from(c.enabled))
    .bind(status.as_str())
    .bind(reason)
    .bind(now)
    .bind(c.loc.to_string())
    .bind(hash)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
