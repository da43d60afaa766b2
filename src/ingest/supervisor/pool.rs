//! `health` cameras on a few shared threads instead of one thread each. A city's worker holds a
//! thousand of them; what they do is read a socket a few times a second and decode one keyframe
//! now and then, which a thread per camera turns into a thousand stacks, malloc arenas and
//! wake-ups. Here:
//! - **runners** (one per core, at most `MAX_RUNNERS`) each step their cameras' loops
//!   (`Worker::step`, which never blocks: reads take what arrived, a keyframe is decoded on the
//!   runner, so at most one decoder per runner exists at a time) and sleep until the earliest
//!   camera is due or one of them is stopped;
//! - **openers** do what blocks on the network (resolve, connect, DESCRIBE/SETUP/PLAY, each
//!   bounded by the camera's watchdog): one per runner, more while cameras have waited
//!   `OPEN_WAIT` with every opener busy (up to `MAX_OPENERS`, so that unreachable cameras do not
//!   hold up the others; a watcher thread looks every `OPEN_WAIT` while cameras wait), fewer
//!   again after `OPENER_IDLE` without work;
//! - a camera whose source can only be read blocking (the keyframe client refused, rtspsrc
//!   chosen) leaves the pool for a thread of its own, where the same loop goes on.
//!
//! A runner's scan coalesces cameras due within `COALESCE_MS`, so a thousand cameras polled
//! five times a second wake a runner about a hundred times a second, not five thousand.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Phase, Want, Worker};
use crate::clock::{Clock, Millis, Stop};

const MAX_RUNNERS: usize = 8;
const MAX_OPENERS: usize = 64;
/// A camera waiting this long for an opener while every opener is busy (connecting to cameras
/// that do not answer, say) makes the pool grow by one.
const OPEN_WAIT: Duration = Duration::from_millis(500);
const OPENER_IDLE: Duration = Duration::from_secs(30);
const COALESCE_MS: Millis = 10;

/// One camera on the pool.
struct Slot {
    worker: Worker,
    phase: Phase,
    wake: Millis,
    /// Raised once the camera's loop has ended and its source is torn down.
    done: Stop,
    home: Arc<Runner>,
}

/// Threads the pool runs, for `/metrics` and the tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolThreads {
    pub runners: usize,
    pub openers: usize,
    /// Cameras of the pool that run on a thread of their own.
    pub own: usize,
}

/// A runner and its thread (taken when the pool goes away).
type RunnerThread = (Arc<Runner>, Mutex<Option<JoinHandle<()>>>);

pub(super) struct Pool {
    clock: Arc<dyn Clock>,
    size: usize,
    runners: OnceLock<Vec<RunnerThread>>,
    openers: Arc<Openers>,
    own: Arc<AtomicUsize>,
}

impl Pool {
    pub(super) fn new(clock: Arc<dyn Clock>) -> Pool {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Pool {
            clock,
            size: cores.clamp(1, MAX_RUNNERS),
            runners: OnceLock::new(),
            openers: Arc::new(Openers {
                state: Mutex::default(),
                cv: Condvar::new(),
                watch_cv: Condvar::new(),
                base: cores.clamp(1, MAX_RUNNERS),
            }),
            own: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn runners(&self) -> &[RunnerThread] {
        self.runners.get_or_init(|| {
            (0..self.size)
                .map(|i| {
                    let r = Arc::new(Runner { inbox: Mutex::new(Vec::new()), signal: Stop::new(), cameras: 0.into() });
                    let (run, clock, openers, own) =
                        (r.clone(), self.clock.clone(), self.openers.clone(), self.own.clone());
                    let h = std::thread::Builder::new()
                        .name(format!("ingest-pool-{i}"))
                        .spawn(move || run.run(clock, openers, own))
                        .map_err(|e| tracing::error!(error = %e, "cannot start an ingest runner thread"))
                        .ok();
                    (r, Mutex::new(h))
                })
                .collect()
        })
    }

    /// Puts a camera on the runner with the fewest; returns what `Ingest::stop` needs.
    pub(super) fn start(&self, worker: Worker) -> Pooled {
        let runners = self.runners();
        let (home, _) = runners.iter().min_by_key(|(r, _)| r.cameras.load(Ordering::Relaxed)).expect("runners");
        home.cameras.fetch_add(1, Ordering::Relaxed);
        let done = Stop::new();
        let slot = Slot { worker, phase: Phase::Connect, wake: Millis::MIN, done: done.clone(), home: home.clone() };
        home.deliver(slot);
        Pooled { done, home: home.clone() }
    }

    pub(super) fn threads(&self) -> PoolThreads {
        PoolThreads {
            runners: self.runners.get().map_or(0, Vec::len),
            openers: self.openers.lock().threads,
            own: self.own.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Some(runners) = self.runners.get() {
            for (r, _) in runners {
                r.signal.request();
            }
            for (_, h) in runners {
                if let Some(h) = h.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    let _ = h.join();
                }
            }
        }
        let mut o = self.openers.lock();
        o.shutdown = true;
        self.openers.cv.notify_all();
        self.openers.watch_cv.notify_all();
    }
}

/// A pooled camera, as `Ingest` keeps it.
pub(super) struct Pooled {
    done: Stop,
    home: Arc<Runner>,
}

impl Pooled {
    /// Tells the camera's runner to look at it (after its stop was requested).
    pub(super) fn nudge(&self) {
        self.home.signal.waker().wake_by_ref();
    }

    /// Waits until the camera's loop has ended and its source is torn down.
    pub(super) fn wait(&self) {
        while !self.done.wait_real(Duration::from_secs(3600)) {}
    }
}

struct Runner {
    /// Cameras handed to this runner (new ones, and ones back from an opener).
    inbox: Mutex<Vec<Slot>>,
    /// Raised: the pool is going away. Nudged: look at the inbox and the stops.
    signal: Stop,
    cameras: AtomicUsize,
}

impl Runner {
    fn deliver(&self, slot: Slot) {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner()).push(slot);
        self.signal.waker().wake_by_ref();
    }

    fn run(self: Arc<Self>, clock: Arc<dyn Clock>, openers: Arc<Openers>, own: Arc<AtomicUsize>) {
        let mut slots: Vec<Slot> = Vec::new();
        loop {
            slots.append(&mut self.inbox.lock().unwrap_or_else(|e| e.into_inner()));
            if self.signal.is_requested() {
                slots.into_iter().for_each(finish);
                return;
            }
            let mut next = Millis::MAX;
            let mut i = 0;
            while i < slots.len() {
                let s = &mut slots[i];
                let now = clock.now_ms();
                let want = if s.worker.stop.is_requested() {
                    Want::Done
                } else if s.wake <= now.saturating_add(COALESCE_MS) {
                    s.worker.step(&mut s.phase)
                } else {
                    Want::Wake(s.wake)
                };
                match want {
                    Want::Wake(t) => {
                        s.wake = t;
                        next = next.min(t);
                        i += 1;
                    }
                    Want::Open => openers.submit(slots.swap_remove(i), &openers, &own),
                    Want::Done => finish(slots.swap_remove(i)),
                }
            }
            clock.park_until(next, &self.signal);
        }
    }
}

/// Ends a camera's loop on the pool: its source torn down, `Disabled`, done raised.
fn finish(mut slot: Slot) {
    slot.phase = Phase::Done;
    slot.worker.transition(crate::ingest::IngestState::Disabled, "stopped");
    slot.home.cameras.fetch_sub(1, Ordering::Relaxed);
    slot.done.request();
}

struct Openers {
    state: Mutex<OpenState>,
    cv: Condvar,
    /// Wakes the watcher (cameras queued, or shutting down).
    watch_cv: Condvar,
    /// Openers kept up to without waiting (one per runner).
    base: usize,
}

#[derive(Default)]
struct OpenState {
    /// Cameras to open, each with the time it was queued.
    queue: VecDeque<(Slot, std::time::Instant)>,
    threads: usize,
    idle: usize,
    shutdown: bool,
    /// The watcher thread runs (started with the first camera queued).
    watching: bool,
}

impl Openers {
    fn lock(&self) -> MutexGuard<'_, OpenState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a camera to be opened, starting an opener when needed.
    fn submit(&self, slot: Slot, me: &Arc<Openers>, own: &Arc<AtomicUsize>) {
        let mut st = self.lock();
        st.queue.push_back((slot, std::time::Instant::now()));
        self.grow(&mut st, me, own);
        if !st.watching {
            let (me, own) = (me.clone(), own.clone());
            match std::thread::Builder::new().name("ingest-open-watch".into()).spawn(move || me.watch(own)) {
                Ok(_) => st.watching = true,
                Err(e) => tracing::error!(error = %e, "cannot start the ingest openers' watcher"),
            }
        }
        drop(st);
        self.cv.notify_one();
        self.watch_cv.notify_one();
    }

    /// While cameras wait to be opened, looks every `OPEN_WAIT` whether they are stuck behind
    /// openers that block (cameras that do not answer) and starts one more opener if so: with no
    /// camera queued later, nothing else would look. Real time, like the blocking it watches.
    fn watch(self: Arc<Self>, own: Arc<AtomicUsize>) {
        let mut st = self.lock();
        while !st.shutdown {
            st = if st.queue.is_empty() {
                self.watch_cv.wait(st).unwrap_or_else(|e| e.into_inner())
            } else {
                self.watch_cv.wait_timeout(st, OPEN_WAIT).unwrap_or_else(|e| e.into_inner()).0
            };
            self.grow(&mut st, &self, &own);
        }
    }

    /// Starts an opener while fewer than `base` run and cameras wait, or when every opener is
    /// busy and the oldest camera has waited `OPEN_WAIT`: a burst of cameras (a start-up) is
    /// opened by a few threads, cameras that do not answer hold up the others only briefly.
    fn grow(&self, st: &mut OpenState, me: &Arc<Openers>, own: &Arc<AtomicUsize>) {
        let waiting = st.queue.len();
        let stuck = waiting > st.idle && st.queue.front().is_some_and(|(_, at)| at.elapsed() >= OPEN_WAIT);
        let wanted = (st.threads < self.base && st.idle < waiting) || stuck;
        if !wanted || st.threads >= MAX_OPENERS {
            return;
        }
        let (me, own) = (me.clone(), own.clone());
        let n = st.threads;
        match std::thread::Builder::new().name(format!("ingest-open-{n}")).spawn(move || me.run(own)) {
            Ok(_) => {
                st.threads += 1;
                st.idle += 1;
            }
            Err(e) => tracing::error!(error = %e, "cannot start an ingest opener thread"),
        }
    }

    fn run(self: Arc<Self>, own: Arc<AtomicUsize>) {
        let mut st = self.lock();
        loop {
            if let Some((slot, _)) = st.queue.pop_front() {
                st.idle -= 1;
                drop(st);
                open(slot, &own);
                st = self.lock();
                st.idle += 1;
                // Cameras that waited while this one was opening: more openers, if they are stuck.
                self.grow(&mut st, &self, &own);
                continue;
            }
            if st.shutdown {
                break;
            }
            let (g, timeout) = self
                .cv
                .wait_timeout_while(st, OPENER_IDLE, |s| s.queue.is_empty() && !s.shutdown)
                .unwrap_or_else(|e| e.into_inner());
            st = g;
            if timeout.timed_out() && st.queue.is_empty() {
                break;
            }
        }
        st.threads -= 1;
        st.idle -= 1;
    }
}

/// Opens a camera's source (blocking) and hands it back to its runner, or to a thread of its
/// own when the source cannot be stepped.
fn open(mut slot: Slot, own: &Arc<AtomicUsize>) {
    if slot.worker.stop.is_requested() {
        return finish(slot);
    }
    slot.phase = slot.worker.connect();
    let blocking = matches!(&slot.phase, Phase::Pump(p) if p.source.wake_at().is_none());
    if !blocking {
        slot.wake = Millis::MIN;
        let home = slot.home.clone();
        home.deliver(slot);
        return;
    }
    let own2 = own.clone();
    let name = format!("ingest-{}", slot.worker.spec.id);
    let Slot { worker, phase, done, home, .. } = slot;
    let (health, done2, home2) = (worker.health.clone(), done.clone(), home.clone());
    own.fetch_add(1, Ordering::Relaxed);
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        worker.run_from(phase);
        home.cameras.fetch_sub(1, Ordering::Relaxed);
        own2.fetch_sub(1, Ordering::Relaxed);
        done.request();
    });
    if let Err(e) = spawned {
        // The closure (worker, source and all) is dropped with the error: the camera stops.
        own.fetch_sub(1, Ordering::Relaxed);
        home2.cameras.fetch_sub(1, Ordering::Relaxed);
        health.record_error(&format!("cannot start a thread: {e}"));
        done2.request();
    }
}
