//! GB/T 28181 devices and their channels (migration 0013). A device's row says whether it is
//! online and until when its registration runs (what a restarted platform starts from); its video
//! channels are cameras whose `config_source` is `gb28181:<device id>`. A camera defined in the
//! configuration files is never overwritten by a catalog: the files win.

use std::collections::HashSet;

use sqlx::Row;

use super::cameras::{insert_history, set_status_tx};
use super::{Registry, RegistryError};
use crate::clock::Millis;
use crate::config::{CameraKind, CameraStatus, Owner};

/// A device as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct GbDeviceRow {
    pub id: String,
    pub name: String,
    /// `udp` or `tcp`: how it signals.
    pub transport: String,
    /// Where its last REGISTER came from.
    pub remote_addr: String,
    pub online: bool,
    pub status_reason: String,
    pub registered_at_ms: Millis,
    /// When its registration runs out.
    pub expires_at_ms: Millis,
    /// Its last keepalive (or registration).
    pub last_alive_ms: Millis,
    pub manufacturer: String,
    pub model: String,
    pub firmware: String,
    /// Its video channels in the registry (decommissioned ones left out).
    pub channels: i64,
    pub catalog_at_ms: Option<Millis>,
    /// How the last catalog went (complete, or what was missing).
    pub catalog_note: String,
}

/// A video channel from a device's catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct GbChannel {
    pub id: String,
    pub name: String,
    /// WGS84, when the device gives it; a channel without one is stored at 0,0 and kept off the map.
    pub position: Option<(f64, f64)>,
    pub grid_cell: Option<String>,
    pub kind: CameraKind,
    pub owner: Owner,
}

/// What storing a catalog did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GbCatalogStored {
    pub stored: usize,
    /// Channel ids defined in the configuration files: left as the files say.
    pub configured: Vec<String>,
    /// Channels of this device no longer in its (complete) catalog: decommissioned.
    pub gone: Vec<String>,
}

fn source(device: &str) -> String {
    format!("gb28181:{device}")
}

impl Registry {
    pub async fn gb_devices(&self) -> Result<Vec<GbDeviceRow>, RegistryError> {
        let rows = sqlx::query(
            "SELECT id, name, transport, remote_addr, online, status_reason, registered_at_ms, expires_at_ms, \
             last_alive_ms, manufacturer, model, firmware, channels, catalog_at_ms, catalog_note FROM gb_devices ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(GbDeviceRow {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    transport: r.try_get("transport")?,
                    remote_addr: r.try_get("remote_addr")?,
                    online: r.try_get::<i64, _>("online")? != 0,
                    status_reason: r.try_get("status_reason")?,
                    registered_at_ms: r.try_get("registered_at_ms")?,
                    expires_at_ms: r.try_get("expires_at_ms")?,
                    last_alive_ms: r.try_get("last_alive_ms")?,
                    manufacturer: r.try_get("manufacturer")?,
                    model: r.try_get("model")?,
                    firmware: r.try_get("firmware")?,
                    channels: r.try_get("channels")?,
                    catalog_at_ms: r.try_get("catalog_at_ms")?,
                    catalog_note: r.try_get("catalog_note")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// A device registered (or refreshed its registration) from `remote` over `transport`.
    pub async fn gb_registered(
        &self,
        id: &str,
        name: &str,
        transport: &str,
        remote: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<(), RegistryError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO gb_devices (id, name, transport, remote_addr, online, status_reason, registered_at_ms, \
             expires_at_ms, last_alive_ms, manufacturer, model, firmware, channels, catalog_at_ms, catalog_note, updated_at_ms) \
             VALUES ($1, $2, $3, $4, 1, 'registered', $5, $6, $5, '', '', '', 0, NULL, '', $5) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, transport = excluded.transport, \
             remote_addr = excluded.remote_addr, online = 1, status_reason = 'registered', \
             registered_at_ms = excluded.registered_at_ms, expires_at_ms = excluded.expires_at_ms, \
             last_alive_ms = excluded.last_alive_ms, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(id)
        .bind(name)
        .bind(transport)
        .bind(remote)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A device was heard from (keepalive) at `at`; with `online`, it came back.
    pub async fn gb_alive(&self, id: &str, at: Millis) -> Result<(), RegistryError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE gb_devices SET last_alive_ms = $1, online = 1, status_reason = 'keepalive', updated_at_ms = $1 WHERE id = $2",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A device went offline (or unregistered: its registration ends `now`).
    pub async fn gb_offline(
        &self,
        id: &str,
        reason: &str,
        unregistered: bool,
        now: Millis,
    ) -> Result<(), RegistryError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE gb_devices SET online = 0, status_reason = $1, updated_at_ms = $2, \
             expires_at_ms = CASE WHEN $3 = 1 THEN $2 ELSE expires_at_ms END WHERE id = $4",
        )
        .bind(reason)
        .bind(now)
        .bind(i64::from(unregistered))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// What a device says of itself (DeviceInfo).
    pub async fn gb_device_info(
        &self,
        id: &str,
        manufacturer: &str,
        model: &str,
        firmware: &str,
        now: Millis,
    ) -> Result<(), RegistryError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE gb_devices SET manufacturer = $1, model = $2, firmware = $3, updated_at_ms = $4 WHERE id = $5",
        )
        .bind(manufacturer)
        .bind(model)
        .bind(firmware)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The cameras (channels) stored for a device, decommissioned ones left out.
    pub async fn gb_channels(&self, device: &str) -> Result<Vec<String>, RegistryError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM cameras WHERE config_source = $1 AND status <> 'decommissioned' ORDER BY id",
        )
        .bind(source(device))
        .fetch_all(self.pool())
        .await?)
    }

    /// Stores a device's catalog in one transaction: its video channels become cameras (new ones
    /// `unknown` until the device's presence says otherwise), a channel that the files define is
    /// left alone, and when `complete`, this device's channels missing from it are decommissioned.
    pub async fn put_gb_catalog(
        &self,
        device: &str,
        channels: &[GbChannel],
        complete: bool,
        note: &str,
        now: Millis,
    ) -> Result<GbCatalogStored, RegistryError> {
        let src = source(device);
        let mut out = GbCatalogStored::default();
        let mut tx = self.begin().await?;
        let others: HashSet<String> = sqlx::query_scalar("SELECT id FROM cameras WHERE config_source <> $1")
            .bind(&src)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let mine: Vec<(String, String)> = sqlx::query("SELECT id, status FROM cameras WHERE config_source = $1")
            .bind(&src)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("status")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let mut listed = HashSet::new();
        for c in channels {
            listed.insert(c.id.as_str());
            if others.contains(&c.id) {
                out.configured.push(c.id.clone());
                continue;
            }
            let (lon, lat) = c.position.unwrap_or((0.0, 0.0));
            let reason = format!("from the catalog of GB/T 28181 device {device}");
            let was = mine.iter().find(|(id, _)| id == &c.id).map(|(_, s)| s.clone());
            sqlx::query(
                "INSERT INTO cameras (id, name, url, has_credentials, codec, transport, lon, lat, mounting_height_m, \
                 bearing_deg, hfov_deg, width_px, height_px, kind, owner, grid_cell_id, profile, enabled, status, \
                 status_reason, status_since_ms, config_source, config_hash, created_at_ms, updated_at_ms) \
                 VALUES ($1, $2, '', 0, 'auto', 'udp', $3, $4, 0, 0, 0, 0, 0, $5, $6, $7, 'health', 0, 'unknown', \
                 $8, $9, $10, '', $9, $9) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, lon = excluded.lon, lat = excluded.lat, \
                 kind = excluded.kind, owner = excluded.owner, grid_cell_id = excluded.grid_cell_id, \
                 config_source = excluded.config_source, updated_at_ms = excluded.updated_at_ms, \
                 decommissioned_at_ms = NULL",
            )
            .bind(&c.id)
            .bind(&c.name)
            .bind(lon)
            .bind(lat)
            .bind(c.kind.as_str())
            .bind(c.owner.as_str())
            .bind(c.grid_cell.as_deref())
            .bind(&reason)
            .bind(now)
            .bind(&src)
            .execute(&mut *tx)
            .await?;
            match was.as_deref() {
                None => insert_history(&mut tx, &c.id, None, CameraStatus::Unknown, &reason, now).await?,
                Some("decommissioned") => {
                    set_status_tx(&mut tx, &c.id, CameraStatus::Unknown, "back in its device's catalog", now).await?;
                }
                Some(_) => {}
            }
            out.stored += 1;
        }
        if complete {
            for (id, status) in &mine {
                if listed.contains(id.as_str()) || status == CameraStatus::Decommissioned.as_str() {
                    continue;
                }
                decommission_tx(&mut tx, id, "no longer in its device's catalog", now).await?;
                out.gone.push(id.clone());
            }
        }
        count_channels_tx(&mut tx, device, note, now).await?;
        tx.commit().await?;
        out.gone.sort();
        Ok(out)
    }

    /// Channels a device says it no longer has (a catalog notification's `DEL`): decommissioned.
    /// Ids the device does not own (cameras configured by hand) are left alone. Returns the ids
    /// decommissioned now.
    pub async fn gb_remove_channels(
        &self,
        device: &str,
        ids: &[String],
        note: &str,
        now: Millis,
    ) -> Result<Vec<String>, RegistryError> {
        let src = source(device);
        let mut tx = self.begin().await?;
        let mut gone = Vec::new();
        for id in ids {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM cameras WHERE id = $1 AND config_source = $2")
                    .bind(id)
                    .bind(&src)
                    .fetch_optional(&mut *tx)
                    .await?;
            if status.is_none_or(|s| s == CameraStatus::Decommissioned.as_str()) {
                continue;
            }
            decommission_tx(&mut tx, id, "removed from its device (catalog notification DEL)", now).await?;
            gone.push(id.clone());
        }
        count_channels_tx(&mut tx, device, note, now).await?;
        tx.commit().await?;
        Ok(gone)
    }
}

async fn decommission_tx(tx: &mut super::WriteTx, id: &str, why: &str, now: Millis) -> Result<(), RegistryError> {
    set_status_tx(tx, id, CameraStatus::Decommissioned, why, now).await?;
    sqlx::query("UPDATE cameras SET decommissioned_at_ms = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The device's channel count and its last catalog's note.
async fn count_channels_tx(
    tx: &mut super::WriteTx,
    device: &str,
    note: &str,
    now: Millis,
) -> Result<(), RegistryError> {
    sqlx::query(
        "UPDATE gb_devices SET channels = (SELECT COUNT(*) FROM cameras WHERE config_source = $1 \
         AND status <> 'decommissioned'), catalog_at_ms = $2, catalog_note = $3, updated_at_ms = $2 WHERE id = $4",
    )
    .bind(source(device))
    .bind(now)
    .bind(note)
    .bind(device)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
