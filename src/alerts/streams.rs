//! Limits on live alert streams (SSE): how many may be open at once on a node, how far back one
//! may replay, and the end of a stream whose token was revoked or replaced.
//!
//! A node keeps the hashes of the tokens that are valid now, read from the registry four times a
//! second while any stream is open (one small query per node, whatever the number of streams);
//! each stream ends within a second of its token leaving that set.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::registry::Registry;

/// Streams one node serves at once by default.
pub const DEFAULT_MAX_STREAMS: usize = 1_000;
/// The most changes a stream replays from the store before going live, by default: a client
/// further behind is told so (`event: gap`) and resumes there (the alert list gives the current
/// state).
pub const DEFAULT_MAX_REPLAY: i64 = 10_000;
/// How often the valid tokens are read while streams are open.
const TOKEN_CHECK: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct StreamGate {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    max: usize,
    max_replay: i64,
    open: AtomicUsize,
    /// Hashes of the tokens valid now (`None` until first read).
    valid: watch::Sender<Option<Arc<HashSet<String>>>>,
    watcher: std::sync::Mutex<bool>,
    closing: CancellationToken,
}

/// A stream's place: given back when dropped.
pub struct StreamSlot {
    inner: Arc<Inner>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.inner.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{open} live streams are open on this node, the most it serves ({max}); close one, or use another node")]
pub struct TooManyStreams {
    pub open: usize,
    pub max: usize,
}

impl StreamGate {
    pub fn new(registry: Registry, max: usize, max_replay: i64, closing: CancellationToken) -> Self {
        Self {
            inner: Arc::new(Inner {
                registry,
                max: max.max(1),
                max_replay: max_replay.max(1),
                open: AtomicUsize::new(0),
                valid: watch::channel(None).0,
                watcher: std::sync::Mutex::new(false),
                closing,
            }),
        }
    }

    pub fn open(&self) -> usize {
        self.inner.open.load(Ordering::Acquire)
    }

    pub fn max(&self) -> usize {
        self.inner.max
    }

    pub fn max_replay(&self) -> i64 {
        self.inner.max_replay
    }

    /// A place for one more stream, or why not.
    pub fn admit(&self) -> Result<StreamSlot, TooManyStreams> {
        let i = &self.inner;
        let mut n = i.open.load(Ordering::Acquire);
        loop {
            if n >= i.max {
                return Err(TooManyStreams { open: n, max: i.max });
            }
            match i.open.compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => n = now,
            }
        }
        self.ensure_watcher();
        Ok(StreamSlot { inner: i.clone() })
    }

    /// Resolves when the token with this hash is no longer valid (revoked, or replaced under its
    /// name), or never while it is.
    pub async fn revoked(&self, hash: String) {
        let mut rx = self.inner.valid.subscribe();
        loop {
            let absent = matches!(rx.borrow_and_update().as_ref(), Some(set) if !set.contains(&hash));
            // The set may have been read before this token was made: the registry decides.
            if absent && matches!(self.inner.registry.token_hash_valid(&hash).await, Ok(false)) {
                return;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Reads the valid tokens once a second while streams are open (started with the first).
    fn ensure_watcher(&self) {
        let mut started = self.inner.watcher.lock().unwrap_or_else(|e| e.into_inner());
        if *started {
            return;
        }
        *started = true;
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TOKEN_CHECK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = inner.closing.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if inner.open.load(Ordering::Acquire) == 0 {
                    continue;
                }
                match inner.registry.valid_token_hashes().await {
                    Ok(set) => {
                        let set = Arc::new(set);
                        inner.valid.send_if_modified(|v| {
                            let changed = v.as_deref() != Some(&*set);
                            if changed {
                                *v = Some(set.clone());
                            }
                            changed
                        });
                    }
                    // The registry not answering revokes nothing: the last answer stands.
                    Err(e) => tracing::debug!(error = %e, "live streams: cannot read the valid tokens"),
                }
            }
        });
    }
}
