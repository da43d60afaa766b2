//! Retention (`[retention]` in site.toml): what the system keeps, for how long, and the disk-space
//! floor that sheds old pictures before a write ever fails.
//!
//! A sweep runs every `interval_s`:
//! - **events** older than `events_days`, and only below the position every consumer of the log
//!   this node knows (the alert service's lanes, the ring watcher, the JetStream relay) has
//!   acknowledged: an event not yet handled is never deleted, however old;
//! - **alert changes** (the feed webhooks, MQTT and SSE replay) older than `feed_days`, below every
//!   configured receiver's position (a receiver removed from the configuration holds nothing back);
//! - **passages** older than `passages_days`, with their pictures;
//! - **status and ingest history** older than `history_days`, each camera keeping its last row
//!   before the cut (availability reports start from it);
//! - **patrol units' tracks** older than `tracks_days` (each unit keeps its newest position on its
//!   own row);
//! - **pictures** (`[detect] media_dir`) older than `media_days`; then, while the disk holding them
//!   has less than `min_free_mb` free, the oldest pictures first until it has.
//!
//! Alerts, their audit, work orders, watchlists, tokens and the configuration's rows are never
//! deleted. What an open alert names (its event, its passage and the passage's pictures) is kept
//! whatever its age. `0` days keeps a kind for ever; `min_free_mb = 0` turns the floor off.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{ConfigError, Fields, Loc, Source};
use crate::registry::{Registry, RegistryError};

const DAY_MS: i64 = 86_400_000;

/// `[retention]` in site.toml. Days of 0 keep for ever.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RetentionConfig {
    pub events_days: u32,
    pub feed_days: u32,
    pub passages_days: u32,
    pub media_days: u32,
    pub history_days: u32,
    /// Patrol units' tracks (each unit keeps its newest position on its own row).
    pub tracks_days: u32,
    /// Free space (MiB) kept on the disk that holds the pictures; 0: no floor.
    pub min_free_mb: u64,
    /// Seconds between sweeps.
    pub interval_s: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            events_days: 90,
            feed_days: 90,
            passages_days: 180,
            media_days: 30,
            history_days: 400,
            tracks_days: 90,
            min_free_mb: 1024,
            interval_s: 600,
        }
    }
}

/// Reads `[retention]` (the defaults when the table is absent).
pub fn read_retention(src: &Source, errs: &mut Vec<ConfigError>) -> RetentionConfig {
    let mut cfg = RetentionConfig::default();
    let Some(item) = src.doc.get("retention") else { return cfg };
    let at = Loc { file: src.path.clone(), line: src.line(item.span()) };
    let Some(table) = item.as_table_like() else {
        errs.push(ConfigError::at(&at, "retention", "expected a table [retention]"));
        return cfg;
    };
    let mut f = Fields::new("retention", at, src, table);
    for (key, slot) in [
        ("events_days", &mut cfg.events_days),
        ("feed_days", &mut cfg.feed_days),
        ("passages_days", &mut cfg.passages_days),
        ("media_days", &mut cfg.media_days),
        ("history_days", &mut cfg.history_days),
        ("tracks_days", &mut cfg.tracks_days),
    ] {
        if f.has(key)
            && let Some(v) = f.int(key, 0..=36_500)
        {
            *slot = v as u32;
        }
    }
    if f.has("min_free_mb")
        && let Some(v) = f.int("min_free_mb", 0..=1 << 40)
    {
        cfg.min_free_mb = v as u64;
    }
    if f.has("interval_s")
        && let Some(v) = f.int("interval_s", 10..=86_400)
    {
        cfg.interval_s = v as u64;
    }
    errs.extend(f.finish());
    cfg
}

/// Free bytes for an unprivileged writer on the disk holding a path.
pub type FreeSpace = Arc<dyn Fn(&Path) -> std::io::Result<u64> + Send + Sync>;

/// The real probe: `statvfs` of the path's file system.
pub fn disk_free(path: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// What one sweep of the registry did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TableSweep {
    pub events: u64,
    pub feed: u64,
    pub passages: u64,
    pub history: u64,
    /// Positions of patrol units.
    pub tracks: u64,
    /// The position up to which events may go (every consumer's acknowledged minimum).
    pub events_upto: i64,
    /// The consumer that holds events back (lowest position), when one does.
    pub events_held_by: Option<String>,
    pub feed_upto: i64,
    pub feed_held_by: Option<String>,
}

/// What one sweep of the pictures did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MediaSweep {
    pub removed_by_age: u64,
    pub removed_for_space: u64,
    pub bytes_freed: u64,
    /// Pictures kept because an open alert names their passage.
    pub kept_for_alerts: u64,
    /// Free bytes on the pictures' disk after the sweep.
    pub free_bytes: u64,
    /// The floor could not be reached with what may be deleted.
    pub below_floor: bool,
}

/// The last sweep, for `GET /api/v1/retention` and the metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RetentionStatus {
    pub config: Option<RetentionConfig>,
    pub last_at_ms: Option<i64>,
    pub tables: Option<TableSweep>,
    pub media: Option<MediaSweep>,
    /// The last sweep's failure, when it failed.
    pub error: Option<String>,
    pub sweeps: u64,
}

/// Who reads what: the consumers whose acknowledged positions bound the deletes.
#[derive(Debug, Clone, Default)]
pub struct Consumers {
    /// Readers of the event log.
    pub events: Vec<String>,
    /// Readers of the alert change feed.
    pub feed: Vec<String>,
}

/// The sweeper of one node: the registry's tables where `tables` is set (the node that writes
/// alerts), and the pictures under `media` where this node keeps them.
#[derive(Clone)]
pub struct Retention {
    registry: Registry,
    cfg: RetentionConfig,
    media: Option<PathBuf>,
    consumers: Option<Consumers>,
    clock: Arc<dyn Clock>,
    free: FreeSpace,
    status: Arc<Mutex<RetentionStatus>>,
    /// Where several serve nodes run: the tables are swept by the one that writes alerts.
    active: Option<crate::events::Active>,
}

impl Retention {
    /// `consumers`: `Some` on a node that sweeps the tables; `media`: the pictures' folder on a
    /// node that keeps pictures.
    pub fn new(
        registry: Registry,
        cfg: RetentionConfig,
        consumers: Option<Consumers>,
        media: Option<PathBuf>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let status = RetentionStatus { config: Some(cfg.clone()), ..Default::default() };
        Retention {
            registry,
            cfg,
            media,
            consumers,
            clock,
            free: Arc::new(disk_free),
            status: Arc::new(Mutex::new(status)),
            active: None,
        }
    }

    /// What is kept and for how long.
    pub fn config(&self) -> &RetentionConfig {
        &self.cfg
    }

    /// Sweeps the tables only while `active` says this node writes alerts.
    pub fn when_active(mut self, active: crate::events::Active) -> Self {
        self.active = Some(active);
        self
    }

    /// Replaces the free-space probe (a test's full disk).
    pub fn with_free_space(mut self, free: FreeSpace) -> Self {
        self.free = free;
        self
    }

    pub fn status(&self) -> RetentionStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// One sweep: the tables (where this node sweeps them), then the pictures.
    pub async fn sweep(&self) -> Result<(Option<TableSweep>, Option<MediaSweep>), String> {
        let now = self.clock.now_ms();
        let result = self.sweep_at(now).await;
        if let Ok(mut s) = self.status.lock() {
            s.last_at_ms = Some(now);
            s.sweeps += 1;
            match &result {
                Ok((t, m)) => {
                    s.tables.clone_from(t);
                    s.media.clone_from(m);
                    s.error = None;
                }
                Err(e) => s.error = Some(e.clone()),
            }
        }
        result
    }

    async fn sweep_at(&self, now: i64) -> Result<(Option<TableSweep>, Option<MediaSweep>), String> {
        let refs = self.registry.open_alert_refs().await.map_err(|e| e.to_string())?;
        let mut removed_pictures = Vec::new();
        let sweeps_tables = self.active.as_ref().is_none_or(|a| *a.borrow());
        let tables = match &self.consumers {
            Some(c) if sweeps_tables => {
                let (t, pics) = self.sweep_tables(c, &refs, now).await.map_err(|e| e.to_string())?;
                removed_pictures = pics;
                Some(t)
            }
            _ => None,
        };
        let media = match &self.media {
            Some(dir) => {
                // Pictures named by open alerts' passages stay.
                let mut keep = HashSet::new();
                for id in &refs.passages {
                    if let Some(p) = self.registry.passage(*id).await.map_err(|e| e.to_string())? {
                        keep.extend(p.plate_image.into_iter().chain(p.context_image).map(PathBuf::from));
                    }
                }
                let (dir, free, cfg) = (dir.clone(), self.free.clone(), self.cfg.clone());
                let cutoff = (cfg.media_days > 0).then(|| now - i64::from(cfg.media_days) * DAY_MS);
                let floor = cfg.min_free_mb.saturating_mul(1 << 20);
                let sweep = tokio::task::spawn_blocking(move || {
                    for p in &removed_pictures {
                        remove_inside(&dir, Path::new(p));
                    }
                    sweep_media(&dir, cutoff, floor, &keep, free.as_ref())
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("pictures: {e}"))?;
                if sweep.below_floor {
                    tracing::error!(
                        free_mb = sweep.free_bytes >> 20,
                        floor_mb = cfg.min_free_mb,
                        "the disk holding the pictures is below its free-space floor with nothing left to shed"
                    );
                }
                Some(sweep)
            }
            None => None,
        };
        Ok((tables, media))
    }

    /// Deletes old rows; returns what it did and the pictures of deleted passages.
    async fn sweep_tables(
        &self,
        c: &Consumers,
        refs: &crate::registry::OpenRefs,
        now: i64,
    ) -> Result<(TableSweep, Vec<String>), RegistryError> {
        let cfg = &self.cfg;
        let cursors: std::collections::HashMap<String, i64> = self.registry.cursors().await?.into_iter().collect();
        // The lowest acknowledged position among the consumers (one never acknowledged: 0).
        let lowest = |names: &[String]| -> (i64, Option<String>) {
            names
                .iter()
                .map(|n| (cursors.get(n).copied().unwrap_or(0), n.clone()))
                .min()
                .map_or((i64::MAX, None), |(p, n)| (p, Some(n)))
        };
        let mut t = TableSweep::default();
        let (events_upto, held) = lowest(&c.events);
        // With no reader at all nothing bounds the log but the age.
        t.events_upto = if c.events.is_empty() { self.registry.last_event_position().await? } else { events_upto };
        t.events_held_by = held;
        let (feed_upto, held) = lowest(&c.feed);
        t.feed_upto = if c.feed.is_empty() { self.registry.latest_feed_seq().await? } else { feed_upto };
        t.feed_held_by = held;
        if cfg.events_days > 0 {
            let before = now - i64::from(cfg.events_days) * DAY_MS;
            t.events = self.registry.delete_events(t.events_upto, before, &refs.events).await?;
        }
        if cfg.feed_days > 0 {
            let before = now - i64::from(cfg.feed_days) * DAY_MS;
            t.feed = self.registry.delete_feed(t.feed_upto, before).await?;
        }
        let mut pictures = Vec::new();
        if cfg.passages_days > 0 {
            let before = now - i64::from(cfg.passages_days) * DAY_MS;
            let gone = self.registry.delete_passages(before, &refs.passages).await?;
            t.passages = gone.len() as u64;
            pictures = gone.into_iter().flat_map(|p| p.pictures).collect();
        }
        if cfg.history_days > 0 {
            t.history = self.registry.delete_history(now - i64::from(cfg.history_days) * DAY_MS).await?;
        }
        if cfg.tracks_days > 0 {
            t.tracks = self.registry.delete_fixes(now - i64::from(cfg.tracks_days) * DAY_MS).await?;
        }
        Ok((t, pictures))
    }

    /// Sweeps every `interval_s` until `stop`: the first sweep a minute after the start (not in
    /// the middle of it), then on the interval. Failures are logged and kept for the status.
    pub fn spawn(self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut wait = Duration::from_secs(self.cfg.interval_s.min(60));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = Duration::from_secs(self.cfg.interval_s);
                match self.sweep().await {
                    Ok((t, m)) => tracing::info!(tables = ?t, media = ?m, "retention sweep"),
                    Err(e) => tracing::error!(error = %e, "retention sweep failed; trying again next interval"),
                }
            }
        })
    }
}

/// A picture under the media folder: when it was taken (from its name `<at_ms>-…`, else its
/// modification time), its size.
struct Picture {
    at_ms: i64,
    path: PathBuf,
    size: u64,
}

/// Every file under `dir`, oldest first.
fn pictures(dir: &Path) -> std::io::Result<Vec<Picture>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let ft = entry.file_type()?;
            let path = entry.path();
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() {
                let meta = entry.metadata()?;
                let named = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.split('-').next())
                    .and_then(|n| n.parse::<i64>().ok());
                let at_ms = named.unwrap_or_else(|| {
                    meta.modified()
                        .ok()
                        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_millis() as i64)
                });
                out.push(Picture { at_ms, path, size: meta.len() });
            }
        }
    }
    out.sort_by(|a, b| a.at_ms.cmp(&b.at_ms).then_with(|| a.path.cmp(&b.path)));
    Ok(out)
}

/// Removes pictures under `dir` older than `cutoff_ms`, then the oldest while the disk has less
/// than `floor` bytes free; never one in `keep` (paths as stored, compared resolved). Empty
/// folders left behind go too (not `dir`).
pub fn sweep_media(
    dir: &Path,
    cutoff_ms: Option<i64>,
    floor: u64,
    keep: &HashSet<PathBuf>,
    free: &(dyn Fn(&Path) -> std::io::Result<u64> + Send + Sync),
) -> std::io::Result<MediaSweep> {
    let mut out = MediaSweep::default();
    if !dir.exists() {
        return Ok(out);
    }
    let root = dir.canonicalize()?;
    let keep: HashSet<PathBuf> = keep.iter().filter_map(|p| p.canonicalize().ok()).collect();
    let all = pictures(&root)?;
    let mut left = Vec::with_capacity(all.len());
    let mut touched = HashSet::new();
    for p in all {
        let kept = keep.contains(&p.path);
        if kept {
            out.kept_for_alerts += 1;
        }
        if !kept && cutoff_ms.is_some_and(|c| p.at_ms < c) {
            if remove(&p.path) {
                out.removed_by_age += 1;
                out.bytes_freed += p.size;
                touched.extend(p.path.parent().map(Path::to_path_buf));
            }
        } else if !kept {
            left.push(p);
        }
    }
    let mut free_now = free(&root)?;
    if floor > 0 && free_now < floor {
        // Oldest first; the probe is asked again every 256 files (other writers move it too).
        let mut since_probe = 0;
        for p in &left {
            if free_now >= floor {
                break;
            }
            if remove(&p.path) {
                out.removed_for_space += 1;
                out.bytes_freed += p.size;
                free_now = free_now.saturating_add(p.size);
                touched.extend(p.path.parent().map(Path::to_path_buf));
                since_probe += 1;
                if since_probe == 256 {
                    since_probe = 0;
                    free_now = free(&root)?;
                }
            }
        }
        free_now = free(&root)?;
        out.below_floor = free_now < floor;
    }
    out.free_bytes = free_now;
    // Empty folders, deepest first, up to (not including) the root.
    let mut dirs: Vec<PathBuf> = touched.into_iter().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let mut at = Some(d.as_path());
        while let Some(x) = at {
            if x == root || !x.starts_with(&root) || std::fs::remove_dir(x).is_err() {
                break;
            }
            at = x.parent();
        }
    }
    Ok(out)
}

/// Removes a file (already gone counts as removed); logs what it cannot remove.
fn remove(path: &Path) -> bool {
    match std::fs::remove_file(path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a picture");
            false
        }
    }
}

/// Removes a deleted passage's picture when it lies under `dir` (a stored path elsewhere is not
/// ours to delete).
fn remove_inside(dir: &Path, file: &Path) {
    let (Ok(root), Ok(f)) = (dir.canonicalize(), file.canonicalize()) else { return };
    if f.starts_with(&root) && f.is_file() {
        remove(&f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(dir: &Path, rel: &str, bytes: usize) -> PathBuf {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, vec![0u8; bytes]).unwrap();
        p
    }

    #[test]
    fn age_then_floor_oldest_first_and_never_what_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let old = put(d.path(), "passages/c1/1970-01-01/1000-1-plate.jpg", 100);
        let kept = put(d.path(), "passages/c1/1970-01-01/1500-2-plate.jpg", 100);
        let mid = put(d.path(), "passages/c2/1970-01-01/5000-3-plate.jpg", 100);
        let newer = put(d.path(), "passages/c2/1970-01-01/6000-4-plate.jpg", 100);
        let newest = put(d.path(), "passages/c2/1970-01-01/9000-5-plate.jpg", 100);
        let keep: HashSet<PathBuf> = [kept.clone()].into();
        // Age alone: everything before 2000 but what is kept.
        let free = |_: &Path| Ok(1_000_000u64);
        let s = sweep_media(d.path(), Some(2000), 500_000, &keep, &free).unwrap();
        assert_eq!((s.removed_by_age, s.removed_for_space, s.kept_for_alerts), (1, 0, 1));
        assert!(!old.exists() && kept.exists() && mid.exists());
        // A disk 150 bytes short of its floor: the two oldest not kept go, the newest stays.
        // The probe sees the files: 400 bytes left make 850 free.
        let free = |p: &Path| Ok(1250 - pictures(p).unwrap().iter().map(|x| x.size).sum::<u64>());
        let s = sweep_media(d.path(), None, 1000, &keep, &free).unwrap();
        assert_eq!(s.removed_for_space, 2, "{s:?}");
        assert!(!mid.exists() && !newer.exists() && newest.exists() && kept.exists());
        assert_eq!(s.bytes_freed, 200);
        // Nothing more may go: below the floor, said so, the kept picture still there.
        let free = |_: &Path| Ok(10u64);
        let s = sweep_media(d.path(), None, 1000, &keep, &free).unwrap();
        assert!(s.below_floor && kept.exists() && !newest.exists());
        // Emptied folders are removed, the root stays.
        assert!(!d.path().join("passages/c2").exists());
        assert!(d.path().exists());
    }

    #[test]
    fn a_missing_media_folder_is_an_empty_one() {
        let d = tempfile::tempdir().unwrap();
        let s = sweep_media(&d.path().join("none"), Some(1), 10, &HashSet::new(), &|_: &Path| Ok(0)).unwrap();
        assert_eq!(s, MediaSweep::default());
    }
}
