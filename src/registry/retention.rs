//! Retention: the deletes that keep the registry from growing without end, each in batches (a
//! sweep never holds the write lock for long) and each keeping what something still needs: events
//! and alert changes a consumer has not acknowledged, what an open alert names, the last status a
//! camera had before the cut (availability is computed from it).

use std::collections::HashSet;

use sqlx::Row;

use super::{Registry, RegistryError};

/// Rows deleted per statement.
pub const BATCH: i64 = 2000;

/// What open (not resolved) alerts name: their events and passages are kept whatever their age.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenRefs {
    pub events: HashSet<i64>,
    pub passages: HashSet<i64>,
}

/// A deleted passage's pictures (paths as stored).
#[derive(Debug, Clone, PartialEq)]
pub struct DeletedPassage {
    pub id: i64,
    pub pictures: Vec<String>,
}

impl Registry {
    /// The events and passages that open alerts name (`detail.event_id`, `detail.event.passage_id`).
    pub async fn open_alert_refs(&self) -> Result<OpenRefs, RegistryError> {
        let rows = sqlx::query("SELECT detail FROM alerts WHERE status <> 'resolved'").fetch_all(self.pool()).await?;
        let mut refs = OpenRefs::default();
        for r in &rows {
            let detail: String = r.try_get(0)?;
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&detail) else { continue };
            if let Some(id) = v.get("event_id").and_then(|x| x.as_i64()) {
                refs.events.insert(id);
            }
            if let Some(id) = v.get("event").and_then(|e| e.get("passage_id")).and_then(|x| x.as_i64()) {
                refs.passages.insert(id);
            }
        }
        Ok(refs)
    }

    /// Deletes events at or below position `upto` that happened before `before_ms`, except `keep`;
    /// returns how many.
    pub async fn delete_events(&self, upto: i64, before_ms: i64, keep: &HashSet<i64>) -> Result<u64, RegistryError> {
        self.delete_batches("events", "id", "id <= $1 AND at_ms < $2", upto, before_ms, keep).await
    }

    /// Deletes alert changes at or below `upto` made before `before_ms`; returns how many.
    pub async fn delete_feed(&self, upto: i64, before_ms: i64) -> Result<u64, RegistryError> {
        self.delete_batches("alert_feed", "seq", "seq <= $1 AND at_ms < $2", upto, before_ms, &HashSet::new()).await
    }

    /// Deletes status and ingest history from before `before_ms`, except each camera's last row
    /// before it (what the camera's state was at the cut); returns how many.
    pub async fn delete_history(&self, before_ms: i64) -> Result<u64, RegistryError> {
        let mut n = 0;
        for table in ["camera_status_history", "camera_ingest_history"] {
            let cond = format!(
                "at_ms < $2 AND id <= $1 AND EXISTS (SELECT 1 FROM {table} n \
                 WHERE n.camera_id = {table}.camera_id AND n.at_ms < $2 AND n.id > {table}.id)"
            );
            n += self.delete_batches(table, "id", &cond, i64::MAX, before_ms, &HashSet::new()).await?;
        }
        Ok(n)
    }

    /// Deletes passages that passed before `before_ms`, except `keep`; returns them with the
    /// pictures they named (the caller removes the files it holds).
    pub async fn delete_passages(
        &self,
        before_ms: i64,
        keep: &HashSet<i64>,
    ) -> Result<Vec<DeletedPassage>, RegistryError> {
        let mut out = Vec::new();
        let mut after = 0i64;
        loop {
            let rows = sqlx::query(
                "SELECT id, plate_image, context_image FROM passages WHERE pass_time_ms < $1 AND id > $2 \
                 ORDER BY id LIMIT $3",
            )
            .bind(before_ms)
            .bind(after)
            .bind(BATCH)
            .fetch_all(self.pool())
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.try_get(0)?;
            let mut batch = Vec::new();
            for r in &rows {
                let id: i64 = r.try_get(0)?;
                if keep.contains(&id) {
                    continue;
                }
                let pictures = [r.try_get::<Option<String>, _>(1)?, r.try_get::<Option<String>, _>(2)?]
                    .into_iter()
                    .flatten()
                    .collect();
                batch.push(DeletedPassage { id, pictures });
            }
            if !batch.is_empty() {
                let ids: Vec<i64> = batch.iter().map(|p| p.id).collect();
                let mut tx = self.begin().await?;
                sqlx::query(&format!("DELETE FROM passages WHERE id IN ({})", id_list(&ids))).execute(&mut *tx).await?;
                tx.commit().await?;
                out.extend(batch);
            }
            if (rows.len() as i64) < BATCH {
                break;
            }
        }
        Ok(out)
    }

    /// Deletes rows of `table` matching `cond` (`$1` = `upto`, `$2` = `before_ms`), oldest key
    /// first, in batches, leaving the keys in `keep`.
    async fn delete_batches(
        &self,
        table: &str,
        key: &str,
        cond: &str,
        upto: i64,
        before_ms: i64,
        keep: &HashSet<i64>,
    ) -> Result<u64, RegistryError> {
        let mut n = 0u64;
        let mut after = i64::MIN;
        loop {
            let ids: Vec<i64> = sqlx::query_scalar(&format!(
                "SELECT {key} FROM {table} WHERE {cond} AND {key} > $3 ORDER BY {key} LIMIT $4"
            ))
            .bind(upto)
            .bind(before_ms)
            .bind(after)
            .bind(BATCH)
            .fetch_all(self.pool())
            .await?;
            let Some(&last) = ids.last() else { break };
            after = last;
            let gone: Vec<i64> = ids.iter().copied().filter(|id| !keep.contains(id)).collect();
            if !gone.is_empty() {
                let mut tx = self.begin().await?;
                let done = sqlx::query(&format!("DELETE FROM {table} WHERE {key} IN ({})", id_list(&gone)))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                n += done.rows_affected();
            }
            if (ids.len() as i64) < BATCH {
                break;
            }
        }
        Ok(n)
    }
}

/// Integers as an SQL list (they are numbers: nothing to escape).
fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}
