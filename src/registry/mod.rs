//! The registry: cameras, grid cells and status history in SQL.
//!
//! One query layer serves both engines through sqlx's `Any` driver: every query is written once
//! with `$N` placeholders (which SQLite also understands) and portable SQL (`ON CONFLICT`,
//! `WITH RECURSIVE`). Only the DDL differs, so migrations live in `migrations/sqlite` and
//! `migrations/postgres`, numbered alike. Times are `i64` milliseconds, flags `0/1` integers:
//! the types `Any` carries identically on both.

mod alerts;
mod cameras;
mod events;
mod gb28181;
mod geo;
mod geo_inputs;
mod leases;
mod orders;
mod problems;
mod retention;
mod roles;
mod schema;
mod sync;
mod tokens;
mod units;
mod watchlists;

use std::path::Path;
use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Connection, Executor};

pub use alerts::{
    AlertChangeError, AlertFilter, AlertKind, AlertOp, AlertRow, AlertStatus, AlertWrite, AuditRow, FeedChange,
    FeedRow, NewAlert, OpenCount, Severity, Written,
};
pub use cameras::{CameraFilter, CameraRow, Page, StatusChange};
pub use events::{NewPassage, PassageStored, RawEvent, RawStored};
pub use gb28181::{GbCatalogStored, GbChannel, GbDeviceRow};
pub use geo::{EventRow, InterceptionRow, PassageRow};
pub use geo_inputs::{CamGeo, CameraInput, CellInput, EntranceInput, GeoInputs, Oneway, Rejected, RingInput, RoadWay};
pub use leases::{Beat, Lease, LeaseBook, Placement, PlacementRound, WorkerLoad, WorkerSpec, check_lease};
pub use orders::{NewOrder, OrderChangeError, OrderFilter, OrderLogEntry, OrderLogged, OrderState, WorkOrder};
pub use problems::ProblemRow;
pub use retention::{DeletedPassage, OpenRefs};
pub use roles::{ALERT_WRITER, CommandOutcome, QueuedCommand, RoleFence, RoleHolder};
pub use schema::schema_dump;
pub use sync::SyncReport;
pub use tokens::{TokenCheck, TokenRow, new_token, token_hash};
pub use units::{
    Fix, FixSource, FixesStored, MAX_AHEAD_MS, MAX_FIXES, MAX_SPEED_MPS, MAX_TRACK, NewUnit, RejectedFix,
    STALE_AFTER_MS, UnitChange, UnitError, UnitKind, UnitRow, UnitStatus, check_unit_id, oldest_fix,
};
pub use watchlists::{
    MAX_TRAJECTORY, MatchKind, NewWatchlist, PassageFilter, Priority, TrajectoryPoint, WatchlistChangeError,
    WatchlistEntry, WatchlistError,
};

use crate::config::mask_credentials;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database {url}: cannot create folder {dir}: {source}")]
    CreateDir { url: String, dir: String, source: std::io::Error },
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    Invalid(String),
    /// A write from a worker that no longer holds the camera's lease at that epoch.
    #[error("camera {camera}: worker {worker} does not hold its lease at epoch {epoch}; the write is refused")]
    Fenced { camera: String, worker: String, epoch: i64 },
    /// A write of a role's holder (the alert writer) from a node that no longer holds it.
    #[error("node {node} does not hold the role {role} at epoch {epoch}; the write is refused")]
    NotHolder { role: String, node: String, epoch: i64 },
}

impl RegistryError {
    /// The write was refused because this worker does not hold the camera: trying it again
    /// cannot succeed, so writers drop it instead of retrying.
    pub fn is_fenced(&self) -> bool {
        matches!(self, RegistryError::Fenced { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Registry {
    pool: AnyPool,
    backend: Backend,
    /// The newest event position committed by this process (a hint for in-process readers).
    appended: std::sync::Arc<tokio::sync::watch::Sender<i64>>,
    /// SQLite has one writer at a time; this process's writers take turns here, first come first
    /// served, instead of racing for the file lock through the busy handler (which lets a tight
    /// loop of writes starve a single one for seconds).
    write_turn: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// How a work-order change becomes an event (installed by the app: the event contract sits
    /// above the registry).
    order_events: std::sync::Arc<std::sync::OnceLock<OrderEncoder>>,
    /// On a worker: the leases it holds. Every write for a camera then checks, in its own
    /// transaction, that this worker still holds the camera at the epoch it knows (see
    /// `Registry::fence_writes`).
    fence: std::sync::Arc<std::sync::OnceLock<std::sync::Arc<LeaseBook>>>,
}

/// Turns a work-order change into its event (`None`: no event for it).
pub type OrderEncoder = fn(&OrderLogged) -> Option<RawEvent>;

/// A write transaction. On SQLite it holds the process's write turn until it ends. It derefs to
/// the connection, like sqlx's transaction: `query.execute(&mut *tx)`.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    backend: Backend,
    /// The worker's leases, when writes are fenced; the cameras already checked in this
    /// transaction.
    fence: Option<std::sync::Arc<LeaseBook>>,
    checked: Vec<String>,
}

impl WriteTx {
    /// On a worker (`Registry::fence_writes`): refuses the transaction's writes for `camera`
    /// unless this worker holds its lease at the epoch it knows, the lease row locked until the
    /// transaction ends (see `check_lease`). Elsewhere it checks nothing.
    pub(crate) async fn fence(&mut self, camera: &str) -> Result<(), RegistryError> {
        let Some(book) = self.fence.clone() else { return Ok(()) };
        if self.checked.iter().any(|c| c == camera) {
            return Ok(());
        }
        let Some(epoch) = book.epoch(camera) else {
            return Err(RegistryError::Fenced {
                camera: camera.to_string(),
                worker: book.worker().to_string(),
                epoch: 0,
            });
        };
        let backend = self.backend;
        check_lease(self, backend, camera, book.worker(), epoch, book.now()).await?;
        self.checked.push(camera.to_string());
        Ok(())
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Normalises a database setting: `postgres://…` and `postgresql://…` as given; `sqlite://…`,
/// `sqlite:…` or a plain file path become a SQLite URL that creates the file when missing.
pub fn database_url(setting: &str) -> (Backend, String) {
    if setting.starts_with("postgres://") || setting.starts_with("postgresql://") {
        return (Backend::Postgres, setting.to_string());
    }
    let path = setting.strip_prefix("sqlite://").or_else(|| setting.strip_prefix("sqlite:")).unwrap_or(setting);
    let sep = if path.contains('?') { '&' } else { '?' };
    let url = if path.contains("mode=") { format!("sqlite://{path}") } else { format!("sqlite://{path}{sep}mode=rwc") };
    (Backend::Sqlite, url)
}

impl Registry {
    /// Connects (creating a SQLite file and its folder when missing). Does not migrate.
    pub async fn connect(setting: &str) -> Result<Self, RegistryError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = database_url(setting);
        let shown = mask_credentials(&url);
        if backend == Backend::Sqlite {
            let file = url.trim_start_matches("sqlite://").split('?').next().unwrap_or("");
            if let Some(dir) = Path::new(file).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| RegistryError::CreateDir {
                    url: shown.clone(),
                    dir: dir.display().to_string(),
                    source,
                })?;
            }
        }
        let opts = AnyConnectOptions::from_str(&url)
            .map_err(|source| RegistryError::Connect { url: shown.clone(), source })?;
        // One direct connection first: an unreachable server fails now with its real error,
        // instead of after the pool's acquire timeout with a generic one.
        let probe = sqlx::AnyConnection::connect_with(&opts)
            .await
            .map_err(|source| RegistryError::Connect { url: shown.clone(), source })?;
        probe.close().await.ok();
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers (the API) run while a writer commits. FULL syncs
                        // the log at every commit: what was answered 201/202 survives a power
                        // cut, not only a crash of the process (NORMAL may lose the last
                        // commits). The rest are per-connection safety settings.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .map_err(|source| RegistryError::Connect { url: shown, source })?;
        Ok(Self {
            pool,
            backend,
            appended: std::sync::Arc::new(tokio::sync::watch::channel(0).0),
            write_turn: Default::default(),
            order_events: Default::default(),
            fence: Default::default(),
        })
    }

    /// Connects and applies every pending migration.
    pub async fn open(setting: &str) -> Result<Self, RegistryError> {
        let r = Self::connect(setting).await?;
        r.migrate().await?;
        Ok(r)
    }

    /// Applies pending migrations, each in its own transaction.
    pub async fn migrate(&self) -> Result<(), RegistryError> {
        let m = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        m.run(&self.pool).await?;
        Ok(())
    }

    /// Versions known to this binary and whether each is applied.
    pub async fn migration_status(&self) -> Result<Vec<(i64, String, bool)>, RegistryError> {
        let m = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        // Before the first migration the bookkeeping table does not exist: nothing is applied.
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
            .fetch_all(&self.pool)
            .await
            .unwrap_or_default();
        Ok(m.iter().map(|x| (x.version, x.description.to_string(), applied.contains(&x.version))).collect())
    }

    /// A write transaction. On SQLite it first takes this process's write turn (see
    /// `write_turn`), then the write lock at once (`BEGIN IMMEDIATE`): a deferred transaction
    /// that reads and then writes fails with "database is locked" when another connection wrote
    /// in between, without waiting; an immediate one waits its turn.
    pub async fn begin(&self) -> Result<WriteTx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => {
                let turn = self.write_turn.clone().lock_owned().await;
                Ok(self.write_tx(self.pool.begin_with("BEGIN IMMEDIATE").await?, Some(turn)))
            }
            Backend::Postgres => Ok(self.write_tx(self.pool.begin().await?, None)),
        }
    }

    fn write_tx(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Any>,
        turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    ) -> WriteTx {
        WriteTx { tx, _turn: turn, backend: self.backend, fence: self.fence.get().cloned(), checked: Vec::new() }
    }

    /// Makes this process a worker that writes only for the cameras it holds: from now on every
    /// write for a camera (its events, status, ingest history, passages) checks in its own
    /// transaction that `book`'s worker holds the camera's lease at the epoch in `book`, and is
    /// refused with [`RegistryError::Fenced`] otherwise. Set once; later calls change nothing.
    pub fn fence_writes(&self, book: std::sync::Arc<LeaseBook>) {
        let _ = self.fence.set(book);
    }

    /// Installs the encoder of work-order events: from then on every change of a work order
    /// appends its event in the same transaction.
    pub fn on_order_change(&self, encode: OrderEncoder) {
        let _ = self.order_events.set(encode);
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Cheap liveness probe for `/healthz`.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(database_url("./data/x.db"), (Backend::Sqlite, "sqlite://./data/x.db?mode=rwc".into()));
        assert_eq!(database_url("sqlite://a.db"), (Backend::Sqlite, "sqlite://a.db?mode=rwc".into()));
        assert_eq!(database_url("sqlite::memory:").0, Backend::Sqlite);
        assert_eq!(database_url("postgres://u@h/db").0, Backend::Postgres);
    }
}
