//! Cameras' problems as their workers see them (migration 0011): what a cluster's serve node
//! opens work orders from, since it runs no cameras and its own health keeper knows nothing of
//! theirs.

use std::collections::HashMap;

use sqlx::Row;

use super::{Registry, RegistryError};
use crate::clock::Millis;

/// One problem of one camera: its cause (`offline`, `quality:<check>`, `low_fps`), since when, and
/// what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemRow {
    pub cause: String,
    pub since_ms: Millis,
    pub detail: String,
}

impl Registry {
    /// Replaces what is stored of `camera`'s problems with `problems` (none: it is healthy). A
    /// worker's handle writes only for the cameras it holds (`Fenced` otherwise).
    pub async fn report_problems(
        &self,
        camera: &str,
        problems: &[ProblemRow],
        now: Millis,
    ) -> Result<(), RegistryError> {
        let mut tx = self.begin().await?;
        tx.fence(camera).await?;
        sqlx::query("DELETE FROM camera_problems WHERE camera_id = $1").bind(camera).execute(&mut *tx).await?;
        for p in problems {
            sqlx::query(
                "INSERT INTO camera_problems (camera_id, cause, since_ms, detail, reported_ms) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (camera_id, cause) DO UPDATE SET since_ms = excluded.since_ms, detail = excluded.detail, \
                 reported_ms = excluded.reported_ms",
            )
            .bind(camera)
            .bind(&p.cause)
            .bind(p.since_ms)
            .bind(&p.detail)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The problems reported for cameras whose lease holder is live at `now` (a dead worker's
    /// last word is not news: the serve node shows those cameras offline itself), leaving out
    /// cameras a crew has in maintenance and cameras taken out of service.
    pub async fn reported_problems(&self, now: Millis) -> Result<HashMap<String, Vec<ProblemRow>>, RegistryError> {
        let rows = sqlx::query(
            "SELECT p.camera_id, p.cause, p.since_ms, p.detail FROM camera_problems p \
             JOIN camera_leases l ON l.camera_id = p.camera_id \
             JOIN workers w ON w.id = l.worker_id \
             JOIN cameras c ON c.id = p.camera_id \
             WHERE w.expires_ms > $1 AND c.status NOT IN ('maintenance', 'disabled', 'decommissioned') \
             ORDER BY p.camera_id, p.cause",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        let mut out: HashMap<String, Vec<ProblemRow>> = HashMap::new();
        for r in rows {
            out.entry(r.get(0)).or_default().push(ProblemRow { cause: r.get(1), since_ms: r.get(2), detail: r.get(3) });
        }
        Ok(out)
    }
}
