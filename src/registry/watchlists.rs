//! Watchlist entries (布控) — the rows as stored and their queries — and passage queries: by
//! plate (exact or wildcard), camera and time, and one vehicle's trajectory across the
//! checkpoints. The rows are plain data; parsing, checking and matching them is detection's
//! (`detect::watchlist`), which the registry does not import.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::geo::PassageRow;
use super::{Registry, RegistryError};

type Millis = i64;

/// How an entry's pattern is compared with a plate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MatchKind {
    Exact,
    Wildcard,
    Fuzzy,
}

impl MatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Wildcard => "wildcard",
            MatchKind::Fuzzy => "fuzzy",
        }
    }
}

impl FromStr for MatchKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "exact" => Ok(MatchKind::Exact),
            "wildcard" => Ok(MatchKind::Wildcard),
            "fuzzy" => Ok(MatchKind::Fuzzy),
            other => Err(format!("{other:?} is not exact, wildcard or fuzzy")),
        }
    }
}

/// How urgent a hit on an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Medium,
    High,
    Critical,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "low" => Ok(Priority::Low),
            "medium" => Ok(Priority::Medium),
            "high" => Ok(Priority::High),
            "critical" => Ok(Priority::Critical),
            other => Err(format!("{other:?} is not low, medium, high or critical")),
        }
    }
}

/// Why an entry or a change to one was refused: the field and what is wrong with it. The checks
/// themselves are detection's (`detect::watchlist`); the registry only carries their verdict.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct WatchlistError {
    pub field: &'static str,
    pub reason: String,
}

/// A stored watchlist entry.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WatchlistEntry {
    pub id: i64,
    /// The normalised plate (`exact`, `fuzzy`) or pattern (`wildcard`).
    pub pattern: String,
    pub match_kind: MatchKind,
    /// Fuzzy entries only: the largest weighted edit distance that still hits.
    pub max_distance: Option<f64>,
    pub reason: String,
    pub priority: Priority,
    /// Hits from this time on (ms since the epoch).
    pub valid_from_ms: i64,
    /// Hits before this time only; for good when absent.
    pub valid_until_ms: Option<i64>,
    /// Who asked for it (a unit, a case number).
    pub owner: Option<String>,
    pub created_at_ms: i64,
    /// The name of the token that created it.
    pub created_by: Option<String>,
    pub updated_at_ms: Option<i64>,
    pub updated_by: Option<String>,
    /// Revoked entries never hit; they stay for the record.
    pub revoked_at_ms: Option<i64>,
    pub revoked_by: Option<String>,
}

/// A checked new entry, ready to store. Only `detect::watchlist::WatchlistInput::parse` builds
/// one (after its checks), hence fields private to the crate and read through the methods.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWatchlist {
    pub(crate) pattern: String,
    pub(crate) match_kind: MatchKind,
    pub(crate) max_distance: Option<f64>,
    pub(crate) reason: String,
    pub(crate) priority: Priority,
    pub(crate) valid_from_ms: i64,
    pub(crate) valid_until_ms: Option<i64>,
    pub(crate) owner: Option<String>,
}

impl NewWatchlist {
    pub fn pattern(&self) -> &str {
        &self.pattern
    }
    pub fn match_kind(&self) -> MatchKind {
        self.match_kind
    }
    pub fn max_distance(&self) -> Option<f64> {
        self.max_distance
    }
    pub fn reason(&self) -> &str {
        &self.reason
    }
    pub fn priority(&self) -> Priority {
        self.priority
    }
    pub fn valid_from_ms(&self) -> i64 {
        self.valid_from_ms
    }
    pub fn valid_until_ms(&self) -> Option<i64> {
        self.valid_until_ms
    }
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }
}

/// The most rows a trajectory returns.
pub const MAX_TRAJECTORY: i64 = 10_000;

const WATCHLIST_COLUMNS: &str = "id, pattern, match_kind, max_distance, reason, priority, valid_from_ms, valid_until_ms, \
    owner, created_at_ms, created_by, updated_at_ms, updated_by, revoked_at_ms, revoked_by";

/// Why a change to a watchlist entry was refused.
#[derive(Debug, thiserror::Error)]
pub enum WatchlistChangeError {
    #[error("watchlist entry {0} not found")]
    NotFound(i64),
    #[error("watchlist entry {0} is revoked; it can no longer change")]
    Revoked(i64),
    #[error(transparent)]
    Invalid(#[from] WatchlistError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl From<sqlx::Error> for WatchlistChangeError {
    fn from(e: sqlx::Error) -> Self {
        WatchlistChangeError::Registry(e.into())
    }
}

/// Which passages to list (newest first).
#[derive(Debug, Clone, Default)]
pub struct PassageFilter {
    /// A normalised plate; `*` (any run) and `?` (one character) make it a pattern.
    pub plate: Option<String>,
    pub camera_id: Option<String>,
    /// Passed at or after (ms since the epoch).
    pub from_ms: Option<Millis>,
    /// Passed before.
    pub to_ms: Option<Millis>,
    /// Passages after this one in the listing order (the previous page's last id).
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// A passage with where its camera stands: one point of a vehicle's trajectory.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TrajectoryPoint {
    #[serde(flatten)]
    pub passage: PassageRow,
    /// The camera's name (absent when the camera is no longer in the registry).
    pub camera_name: Option<String>,
    pub lon: Option<f64>,
    pub lat: Option<f64>,
}

fn entry_from_row(r: &AnyRow) -> Result<WatchlistEntry, RegistryError> {
    let id: i64 = r.try_get("id")?;
    let bad = |what: &str, e: String| RegistryError::Invalid(format!("stored watchlist entry {id}: {what}: {e}"));
    Ok(WatchlistEntry {
        id,
        pattern: r.try_get("pattern")?,
        match_kind: r.try_get::<String, _>("match_kind")?.parse().map_err(|e| bad("match_kind", e))?,
        max_distance: r.try_get("max_distance")?,
        reason: r.try_get("reason")?,
        priority: r.try_get::<String, _>("priority")?.parse().map_err(|e| bad("priority", e))?,
        valid_from_ms: r.try_get("valid_from_ms")?,
        valid_until_ms: r.try_get("valid_until_ms")?,
        owner: r.try_get("owner")?,
        created_at_ms: r.try_get("created_at_ms")?,
        created_by: r.try_get("created_by")?,
        updated_at_ms: r.try_get("updated_at_ms")?,
        updated_by: r.try_get("updated_by")?,
        revoked_at_ms: r.try_get("revoked_at_ms")?,
        revoked_by: r.try_get("revoked_by")?,
    })
}

fn passage_columns(prefix: &str) -> String {
    [
        "id",
        "camera_id",
        "pass_time_ms",
        "plate_no",
        "plate_color",
        "reliability",
        "direction",
        "heading_deg",
        "source",
        "plate_reliabilities",
        "plate_image",
        "context_image",
        "track_id",
        "frames",
        "lane_no",
    ]
    .iter()
    .map(|c| format!("{prefix}{c}"))
    .collect::<Vec<_>>()
    .join(", ")
}

fn passage_from_row(r: &AnyRow) -> Result<PassageRow, RegistryError> {
    let id: i64 = r.try_get("id")?;
    let reliabilities: Option<String> = r.try_get("plate_reliabilities")?;
    let plate_reliabilities = reliabilities
        .map(|s| serde_json::from_str(&s))
        .transpose()
        .map_err(|e| RegistryError::Invalid(format!("stored passage {id}: plate_reliabilities: {e}")))?;
    Ok(PassageRow {
        id,
        camera_id: r.try_get("camera_id")?,
        pass_time_ms: r.try_get("pass_time_ms")?,
        plate_no: r.try_get("plate_no")?,
        plate_color: r.try_get("plate_color")?,
        reliability: r.try_get("reliability")?,
        direction: r.try_get("direction")?,
        heading_deg: r.try_get("heading_deg")?,
        source: r.try_get("source")?,
        plate_reliabilities,
        plate_image: r.try_get("plate_image")?,
        context_image: r.try_get("context_image")?,
        track_id: r.try_get("track_id")?,
        frames: r.try_get("frames")?,
        lane_no: r.try_get("lane_no")?,
    })
}

/// `*` and `?` as LIKE's `%` and `_`, LIKE's own wildcards escaped.
fn like_pattern(plate: &str) -> String {
    let mut out = String::with_capacity(plate.len() + 4);
    for c in plate.chars() {
        match c {
            '*' => out.push('%'),
            '?' => out.push('_'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// sqlx 0.8's `Any` driver sends a NULL `f64` to PostgreSQL typed as `float4`; once a statement
/// is cached with that type, a later non-NULL `f64` in the same place fails with "incorrect binary
/// data format". So a nullable float is written as `NULL` in the SQL text when absent and bound
/// only when present (each shape is a statement of its own). Returns the SQL for each value, with
/// placeholders numbered from `next`, and the values to bind after the others, in order.
pub(super) fn nullable_floats(next: usize, vals: &[Option<f64>]) -> (Vec<String>, Vec<f64>) {
    let mut sql = Vec::with_capacity(vals.len());
    let mut binds = Vec::new();
    for v in vals {
        match v {
            Some(x) => {
                binds.push(*x);
                sql.push(format!("${}", next + binds.len() - 1));
            }
            None => sql.push("NULL".into()),
        }
    }
    (sql, binds)
}

enum Bind {
    Text(String),
    Int(i64),
}

type Tx = super::WriteTx;

async fn load(tx: &mut Tx, id: i64) -> Result<Option<WatchlistEntry>, RegistryError> {
    let row = sqlx::query(&format!("SELECT {WATCHLIST_COLUMNS} FROM watchlists WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(entry_from_row).transpose()
}

impl Registry {
    /// Stores a new entry; returns it.
    pub async fn create_watchlist(
        &self,
        w: &NewWatchlist,
        created_by: Option<&str>,
        now: Millis,
    ) -> Result<WatchlistEntry, RegistryError> {
        let mut tx = self.begin().await?;
        let (dist, floats) = nullable_floats(10, &[w.max_distance()]);
        let sql = format!(
            "INSERT INTO watchlists (pattern, match_kind, reason, priority, valid_from_ms, valid_until_ms, owner, \
             created_at_ms, created_by, max_distance) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, {}) RETURNING id",
            dist[0]
        );
        let mut q = sqlx::query_scalar(&sql)
            .bind(w.pattern())
            .bind(w.match_kind().as_str())
            .bind(w.reason())
            .bind(w.priority().as_str())
            .bind(w.valid_from_ms())
            .bind(w.valid_until_ms())
            .bind(w.owner())
            .bind(now)
            .bind(created_by);
        for f in floats {
            q = q.bind(f);
        }
        let id: i64 = q.fetch_one(&mut *tx).await?;
        let entry =
            load(&mut tx, id).await?.ok_or_else(|| RegistryError::Invalid(format!("watchlist entry {id} vanished")))?;
        tx.commit().await?;
        Ok(entry)
    }

    /// Entries by id; only live ones (not revoked, not expired at `now`, possibly not yet
    /// started) unless `all`.
    pub async fn watchlists(&self, all: bool, now: Millis) -> Result<Vec<WatchlistEntry>, RegistryError> {
        let rows = sqlx::query(&format!(
            "SELECT {WATCHLIST_COLUMNS} FROM watchlists WHERE $1 = 1 OR (revoked_at_ms IS NULL AND \
             (valid_until_ms IS NULL OR valid_until_ms > $2)) ORDER BY id"
        ))
        .bind(i64::from(all))
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// The entries in force at `at_ms`: not revoked, inside their validity window.
    pub async fn active_watchlists(&self, at_ms: Millis) -> Result<Vec<WatchlistEntry>, RegistryError> {
        let rows = sqlx::query(&format!(
            "SELECT {WATCHLIST_COLUMNS} FROM watchlists WHERE revoked_at_ms IS NULL AND valid_from_ms <= $1 \
             AND (valid_until_ms IS NULL OR valid_until_ms > $1) ORDER BY id"
        ))
        .bind(at_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// One entry, revoked or not.
    pub async fn watchlist(&self, id: i64) -> Result<Option<WatchlistEntry>, RegistryError> {
        let row = sqlx::query(&format!("SELECT {WATCHLIST_COLUMNS} FROM watchlists WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(entry_from_row).transpose()
    }

    /// Changes an entry that is not revoked: `change` edits the stored entry and checks the whole
    /// result (`detect::watchlist::WatchlistPatch::apply`); on its error nothing is written.
    pub async fn update_watchlist(
        &self,
        id: i64,
        change: impl FnOnce(&mut WatchlistEntry) -> Result<(), WatchlistError>,
        by: Option<&str>,
        now: Millis,
    ) -> Result<WatchlistEntry, WatchlistChangeError> {
        let mut tx = self.begin().await?;
        let mut e = load(&mut tx, id).await?.ok_or(WatchlistChangeError::NotFound(id))?;
        if e.revoked_at_ms.is_some() {
            return Err(WatchlistChangeError::Revoked(id));
        }
        change(&mut e)?;
        let (dist, floats) = nullable_floats(8, &[e.max_distance]);
        let sql = format!(
            "UPDATE watchlists SET reason = $2, priority = $3, valid_until_ms = $4, owner = $5, updated_at_ms = $6, \
             updated_by = $7, max_distance = {} WHERE id = $1 AND revoked_at_ms IS NULL",
            dist[0]
        );
        let mut q = sqlx::query(&sql)
            .bind(id)
            .bind(&e.reason)
            .bind(e.priority.as_str())
            .bind(e.valid_until_ms)
            .bind(e.owner.as_deref())
            .bind(now)
            .bind(by);
        for f in floats {
            q = q.bind(f);
        }
        let done = q.execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(WatchlistChangeError::Revoked(id));
        }
        let e = load(&mut tx, id).await?.ok_or(WatchlistChangeError::NotFound(id))?;
        tx.commit().await?;
        Ok(e)
    }

    /// Revokes an entry: it hits nothing from now on and stays on record.
    pub async fn revoke_watchlist(
        &self,
        id: i64,
        by: Option<&str>,
        now: Millis,
    ) -> Result<WatchlistEntry, WatchlistChangeError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE watchlists SET revoked_at_ms = $2, revoked_by = $3 WHERE id = $1 AND revoked_at_ms IS NULL",
        )
        .bind(id)
        .bind(now)
        .bind(by)
        .execute(&mut *tx)
        .await?;
        let e = load(&mut tx, id).await?.ok_or(WatchlistChangeError::NotFound(id))?;
        if done.rows_affected() == 0 {
            return Err(WatchlistChangeError::Revoked(id));
        }
        tx.commit().await?;
        Ok(e)
    }

    /// One passage.
    pub async fn passage(&self, id: i64) -> Result<Option<PassageRow>, RegistryError> {
        let row = sqlx::query(&format!("SELECT {} FROM passages WHERE id = $1", passage_columns("")))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(passage_from_row).transpose()
    }

    /// Passages matching `f`, newest first (by passing time, then id), at most `f.limit`.
    pub async fn passages(&self, f: &PassageFilter) -> Result<Vec<PassageRow>, RegistryError> {
        let mut conds: Vec<String> = Vec::new();
        let mut binds: Vec<Bind> = Vec::new();
        let mut cond = |sql: &str, b: Bind| {
            binds.push(b);
            conds.push(sql.replace("$?", &format!("${}", binds.len())));
        };
        if let Some(p) = &f.plate {
            if p.contains(['*', '?']) {
                cond("plate_no LIKE $? ESCAPE '\\'", Bind::Text(like_pattern(p)));
            } else {
                cond("plate_no = $?", Bind::Text(p.clone()));
            }
        }
        if let Some(c) = &f.camera_id {
            cond("camera_id = $?", Bind::Text(c.clone()));
        }
        if let Some(t) = f.from_ms {
            cond("pass_time_ms >= $?", Bind::Int(t));
        }
        if let Some(t) = f.to_ms {
            cond("pass_time_ms < $?", Bind::Int(t));
        }
        if let Some(k) = f.before_id {
            cond(
                "(pass_time_ms < (SELECT b.pass_time_ms FROM passages b WHERE b.id = $?) \
                 OR (pass_time_ms = (SELECT b.pass_time_ms FROM passages b WHERE b.id = $?) AND id < $?))",
                Bind::Int(k),
            );
        }
        let filter = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
        let sql = format!(
            "SELECT {} FROM passages {filter} ORDER BY pass_time_ms DESC, id DESC LIMIT {}",
            passage_columns(""),
            f.limit
        );
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = match b {
                Bind::Text(s) => q.bind(s),
                Bind::Int(i) => q.bind(i),
            };
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter().map(passage_from_row).collect()
    }

    /// A plate's passages in time order with where each camera stands, at most
    /// [`MAX_TRAJECTORY`].
    pub async fn trajectory(
        &self,
        plate: &str,
        from_ms: Option<Millis>,
        to_ms: Option<Millis>,
    ) -> Result<Vec<TrajectoryPoint>, RegistryError> {
        let rows = sqlx::query(&format!(
            "SELECT {}, c.name AS camera_name, c.lon AS camera_lon, c.lat AS camera_lat FROM passages p \
             LEFT JOIN cameras c ON c.id = p.camera_id WHERE p.plate_no = $1 AND ($2 IS NULL OR p.pass_time_ms >= $2) \
             AND ($3 IS NULL OR p.pass_time_ms < $3) ORDER BY p.pass_time_ms, p.id LIMIT {MAX_TRAJECTORY}",
            passage_columns("p.")
        ))
        .bind(plate)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TrajectoryPoint {
                    passage: passage_from_row(r)?,
                    camera_name: r.try_get("camera_name")?,
                    lon: r.try_get("camera_lon")?,
                    lat: r.try_get("camera_lat")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_floats_are_null_in_the_sql_and_present_ones_numbered() {
        let (sql, binds) = nullable_floats(4, &[Some(1.5), None, Some(2.0)]);
        assert_eq!((sql, binds), (vec!["$4".to_string(), "NULL".into(), "$5".into()], vec![1.5, 2.0]));
    }

    #[test]
    fn plate_patterns_become_like_patterns() {
        assert_eq!(like_pattern("豫A*12?"), "豫A%12_");
        assert_eq!(like_pattern("a%b_c\\"), "a\\%b\\_c\\\\");
    }
}
