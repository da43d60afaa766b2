//! Time as a dependency: the real clock in production, a simulated one in tests (which never sleep).
//!
//! Code that decides on time (retry, back-off, watchdogs, debounce, SLAs) reads it *and waits for
//! it* through a `Clock`: threads with `wait_until` (which a `Stop` ends at once), tokio tasks with
//! `sleep_until`. On a `SimClock` both wake exactly when `advance`/`set` passes their deadline, so
//! a test drives hours of back-off in milliseconds and knows (`wait_parked`) when the code under
//! test is waiting.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// What `Clock::sleep_until` returns: a future that completes at the deadline.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Whole milliseconds of a duration (saturating).
pub fn millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> Millis;

    /// Blocks the calling thread until the clock reads `deadline` or `stop` is requested;
    /// `true` when stopped. The default (the real clock) measures the wait from now on the
    /// monotonic clock, so a step of the wall clock neither stretches nor cuts it.
    fn wait_until(&self, deadline: Millis, stop: &Stop) -> bool {
        let left = deadline.saturating_sub(self.now_ms());
        if left <= 0 {
            return stop.is_requested();
        }
        stop.wait_real(Duration::from_millis(left as u64))
    }

    /// `wait_until`, but a nudge of `stop` (its `waker`) also ends the wait (with `false`): for a
    /// thread that serves many cameras and is told when one of them needs it.
    fn park_until(&self, deadline: Millis, stop: &Stop) -> bool {
        let left = deadline.saturating_sub(self.now_ms());
        if left <= 0 {
            return stop.is_requested();
        }
        // A far deadline (`Millis::MAX`: nothing due) is a wait for the nudge, an hour at a time.
        stop.park_real(Duration::from_millis(left.min(3_600_000) as u64))
    }

    /// `wait_until(now + d)`.
    fn wait(&self, d: Duration, stop: &Stop) -> bool {
        self.wait_until(self.now_ms().saturating_add(millis(d)), stop)
    }

    /// Completes when the clock reads `deadline` (for tokio code; needs a tokio runtime on the
    /// real clock).
    fn sleep_until(&self, deadline: Millis) -> Sleep {
        let left = deadline.saturating_sub(self.now_ms()).max(0) as u64;
        Box::pin(tokio::time::sleep(Duration::from_millis(left)))
    }

    /// `sleep_until(now + d)`.
    fn sleep(&self, d: Duration) -> Sleep {
        self.sleep_until(self.now_ms().saturating_add(millis(d)))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A stop request a thread can wait on: `Clock::wait_until` returns as soon as it is raised.
/// Clones are the same signal. Its `waker` nudges the waiting thread without stopping it (a
/// `SimClock` wakes sleepers with it).
#[derive(Clone, Default)]
pub struct Stop(Arc<StopInner>);

#[derive(Default)]
struct StopInner {
    state: Mutex<StopState>,
    cv: Condvar,
}

#[derive(Default)]
struct StopState {
    stopped: bool,
    /// A wake-up not yet consumed by a wait (so that one between a check and the wait is not lost).
    nudged: bool,
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stop({})", if self.is_requested() { "requested" } else { "running" })
    }
}

impl Wake for StopInner {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.lock().nudged = true;
        self.cv.notify_all();
    }
}

impl StopInner {
    fn lock(&self) -> MutexGuard<'_, StopState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Stop {
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the stop; every wait on it returns.
    pub fn request(&self) {
        self.0.lock().stopped = true;
        self.0.cv.notify_all();
    }

    pub fn is_requested(&self) -> bool {
        self.0.lock().stopped
    }

    /// Wakes the thread waiting on this stop (or its next wait) without stopping it.
    pub fn waker(&self) -> Waker {
        Waker::from(self.0.clone())
    }

    /// Blocks until stopped (`true`) or nudged (`false`; the nudge is consumed).
    fn park(&self) -> bool {
        let g = self.0.lock();
        let mut g = self.0.cv.wait_while(g, |s| !s.stopped && !s.nudged).unwrap_or_else(|e| e.into_inner());
        g.nudged = false;
        g.stopped
    }

    /// Blocks for `d` of real time unless stopped (`true`) or nudged (`false`; the nudge is
    /// consumed) meanwhile.
    pub fn park_real(&self, d: Duration) -> bool {
        let g = self.0.lock();
        let (mut g, _) =
            self.0.cv.wait_timeout_while(g, d, |s| !s.stopped && !s.nudged).unwrap_or_else(|e| e.into_inner());
        g.nudged = false;
        g.stopped
    }

    /// Blocks for `d` of real time unless stopped meanwhile (nudges do not end it); `true` when
    /// stopped. For `Clock` implementations on real time.
    pub fn wait_real(&self, d: Duration) -> bool {
        let g = self.0.lock();
        let (g, _) = self.0.cv.wait_timeout_while(g, d, |s| !s.stopped).unwrap_or_else(|e| e.into_inner());
        g.stopped
    }
}

/// A clock that moves only when told to, and wakes whoever waits on it when it passes their deadline.
#[derive(Clone, Default)]
pub struct SimClock(Arc<SimInner>);

#[derive(Default)]
struct SimInner {
    now: AtomicI64,
    next_id: AtomicU64,
    sleepers: Mutex<BTreeMap<u64, (Millis, Waker)>>,
    /// Signalled whenever a sleeper registers (for `wait_parked`).
    registered: Condvar,
}

impl std::fmt::Debug for SimClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SimClock({})", self.now_ms())
    }
}

impl SimInner {
    fn sleepers(&self) -> MutexGuard<'_, BTreeMap<u64, (Millis, Waker)>> {
        self.sleepers.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn register(&self, id: Option<u64>, deadline: Millis, waker: Waker) -> u64 {
        let id = id.unwrap_or_else(|| self.next_id.fetch_add(1, Ordering::Relaxed));
        self.sleepers().insert(id, (deadline, waker));
        self.registered.notify_all();
        id
    }
    fn unregister(&self, id: u64) {
        self.sleepers().remove(&id);
    }
    /// Wakes (and forgets) every sleeper whose deadline has come.
    fn wake_due(&self) {
        let now = self.now.load(Ordering::SeqCst);
        let due: Vec<Waker> = {
            let mut s = self.sleepers();
            let ids: Vec<u64> = s.iter().filter(|(_, (d, _))| *d <= now).map(|(id, _)| *id).collect();
            ids.into_iter().filter_map(|id| s.remove(&id)).map(|(_, w)| w).collect()
        };
        due.into_iter().for_each(Waker::wake);
    }
}

impl SimClock {
    pub fn at(ms: Millis) -> Self {
        let c = Self::default();
        c.0.now.store(ms, Ordering::SeqCst);
        c
    }
    pub fn advance(&self, ms: Millis) {
        self.0.now.fetch_add(ms, Ordering::SeqCst);
        self.0.wake_due();
    }
    pub fn set(&self, ms: Millis) {
        self.0.now.store(ms, Ordering::SeqCst);
        self.0.wake_due();
    }

    /// The earliest deadline anyone is waiting for, if anyone waits.
    pub fn next_deadline(&self) -> Option<Millis> {
        let now = self.now_ms();
        self.0.sleepers().values().map(|(d, _)| *d).filter(|d| *d > now).min()
    }

    /// Blocks until at least `n` waits are parked on this clock (each until a deadline still
    /// ahead) and returns the earliest of their deadlines; `None` when that does not happen within
    /// `timeout` of real time (a test's guard against a hang, not a pause).
    pub fn wait_parked(&self, n: usize, timeout: Duration) -> Option<Millis> {
        let s = self.0.sleepers();
        let parked = |s: &BTreeMap<u64, (Millis, Waker)>| {
            let now = self.now_ms();
            s.values().filter(|(d, _)| *d > now).count() >= n
        };
        let (s, _) =
            self.0.registered.wait_timeout_while(s, timeout, |s| !parked(s)).unwrap_or_else(|e| e.into_inner());
        let now = self.now_ms();
        parked(&s).then(|| s.values().map(|(d, _)| *d).filter(|d| *d > now).min()).flatten()
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> Millis {
        self.0.now.load(Ordering::SeqCst)
    }

    fn wait_until(&self, deadline: Millis, stop: &Stop) -> bool {
        // Registered before the first look at the time: an `advance` after that look wakes us.
        let id = self.0.register(None, deadline, stop.waker());
        let stopped = loop {
            if stop.is_requested() {
                break true;
            }
            if self.now_ms() >= deadline {
                break false;
            }
            if stop.park() {
                break true;
            }
        };
        self.0.unregister(id);
        stopped
    }

    fn park_until(&self, deadline: Millis, stop: &Stop) -> bool {
        if deadline == Millis::MAX {
            // Nothing due: not a wait on the clock (`wait_parked` does not count it).
            return stop.is_requested() || stop.park();
        }
        let id = self.0.register(None, deadline, stop.waker());
        let stopped = stop.is_requested() || (self.now_ms() < deadline && stop.park());
        self.0.unregister(id);
        stopped
    }

    fn sleep_until(&self, deadline: Millis) -> Sleep {
        Box::pin(SimSleep { clock: self.0.clone(), deadline, id: None })
    }
}

struct SimSleep {
    clock: Arc<SimInner>,
    deadline: Millis,
    id: Option<u64>,
}

impl Future for SimSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.clock.now.load(Ordering::SeqCst) >= self.deadline {
            return Poll::Ready(());
        }
        let id = self.clock.register(self.id, self.deadline, cx.waker().clone());
        self.id = Some(id);
        // The clock may have passed the deadline between the look above and the registration.
        if self.clock.now.load(Ordering::SeqCst) >= self.deadline {
            self.clock.unregister(id);
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for SimSleep {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.clock.unregister(id);
        }
    }
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-30T11:27:00.000Z`.
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn formats() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        let c = SimClock::at(1000);
        c.advance(500);
        assert_eq!(c.now_ms(), 1500);
    }

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_sim_sleep_completes_when_the_clock_passes_its_deadline_and_wakes_its_task() {
        let c = SimClock::at(1000);
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut s = c.sleep(Duration::from_millis(500));
        assert!(s.as_mut().poll(&mut cx).is_pending());
        assert_eq!(c.next_deadline(), Some(1500));
        c.advance(499);
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "woken early");
        assert!(s.as_mut().poll(&mut cx).is_pending());
        c.advance(1);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "not woken at the deadline");
        assert!(s.as_mut().poll(&mut cx).is_ready());
        assert_eq!(c.next_deadline(), None);
        // Dropped while pending: forgotten by the clock.
        let mut s = c.sleep_until(2000);
        assert!(s.as_mut().poll(&mut cx).is_pending());
        drop(s);
        assert_eq!(c.next_deadline(), None);
        // A deadline already passed is ready at once.
        assert!(c.sleep_until(0).as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn a_sim_wait_returns_at_its_deadline_or_at_stop_and_is_seen_parked() {
        let c = SimClock::at(0);
        let stop = Stop::new();
        let (c2, s2) = (c.clone(), stop.clone());
        let t = std::thread::spawn(move || {
            let first = c2.wait_until(10_000, &s2);
            let at = c2.now_ms();
            let second = c2.wait(Duration::from_secs(3600), &s2);
            (first, at, second)
        });
        assert_eq!(c.wait_parked(1, Duration::from_secs(10)), Some(10_000));
        c.advance(9_999);
        assert_eq!(c.wait_parked(1, Duration::from_secs(10)), Some(10_000), "still waiting a millisecond before");
        c.set(10_000);
        assert_eq!(c.wait_parked(1, Duration::from_secs(10)), Some(3_610_000), "the second wait");
        stop.request();
        assert_eq!(t.join().unwrap(), (false, 10_000, true));
        assert_eq!(c.now_ms(), 10_000, "the stop ended the wait, not time");
        assert_eq!(c.wait_parked(1, Duration::from_millis(1)), None);
        // Already stopped: returns at once.
        assert!(c.wait_until(1_000_000, &stop));
    }

    #[test]
    fn the_real_clock_waits_until_stopped() {
        let stop = Stop::new();
        let s2 = stop.clone();
        let t = std::thread::spawn(move || SystemClock.wait(Duration::from_secs(600), &s2));
        stop.request();
        assert!(t.join().unwrap(), "stopped, not timed out");
        assert!(!SystemClock.wait_until(0, &Stop::new()), "a deadline passed returns at once");
        // A nudge does not end a real wait early.
        let stop = Stop::new();
        stop.waker().wake_by_ref();
        assert!(!SystemClock.wait(Duration::from_millis(1), &stop));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_real_clock_sleeps_on_tokio_time() {
        // What is measured here is the sleep itself (20 ms of it), not a pause to let something happen.
        let t = tokio::time::Instant::now();
        SystemClock.sleep(Duration::from_millis(20)).await;
        assert!(t.elapsed() >= Duration::from_millis(20));
        SystemClock.sleep_until(0).await;
    }
}

/// A site's time zone: `UTC`, a fixed offset (`+08:00`) or an IANA name (`Europe/Helsinki`) with
/// its daylight-saving rules, read from the system's time zone database (Debian's `tzdata`)
/// through `jiff`. Local time is worked out for each instant: an arming window of 22:00–06:00 in
/// Helsinki follows the clocks when they change.
#[derive(Debug, Clone)]
pub struct SiteZone {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl SiteZone {
    pub fn utc() -> Self {
        Self { name: "UTC".into(), tz: jiff::tz::TimeZone::UTC }
    }

    /// `UTC`, `±HH:MM` (up to ±14:00) or an IANA name the time zone database knows.
    pub fn parse(tz: &str) -> Result<Self, String> {
        if tz == "UTC" {
            return Ok(Self::utc());
        }
        let b = tz.as_bytes();
        if b.first().is_some_and(|c| *c == b'+' || *c == b'-') {
            let bad = || format!("{tz:?} is not a UTC offset; use ±HH:MM such as +08:00");
            if b.len() != 6 || b[3] != b':' || !tz[1..3].bytes().chain(tz[4..6].bytes()).all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            let (h, m): (i32, i32) = (tz[1..3].parse().map_err(|_| bad())?, tz[4..6].parse().map_err(|_| bad())?);
            if h > 14 || m >= 60 || h * 60 + m > 14 * 60 {
                return Err(bad());
            }
            let secs = (h * 3600 + m * 60) * if b[0] == b'-' { -1 } else { 1 };
            let offset = jiff::tz::Offset::from_seconds(secs).map_err(|_| bad())?;
            return Ok(Self { name: tz.to_string(), tz: jiff::tz::TimeZone::fixed(offset) });
        }
        let well_formed = tz.len() <= 64
            && tz.split('/').count() >= 2
            && tz
                .split('/')
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || b"_-+".contains(&c)));
        if !well_formed {
            return Err(format!("{tz:?} is not a time zone; use an IANA name such as Asia/Shanghai, UTC or +08:00"));
        }
        match jiff::tz::TimeZone::get(tz) {
            Ok(z) => Ok(Self { name: tz.to_string(), tz: z }),
            Err(_) if !std::path::Path::new("/usr/share/zoneinfo").is_dir() => Err(format!(
                "{tz:?}: no time zone database on this machine (/usr/share/zoneinfo); install tzdata \
                 (scripts/setup.sh does) or give a fixed offset such as +08:00"
            )),
            Err(_) => Err(format!("{tz:?} is not a known IANA time zone")),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The offset from UTC in minutes at `at_ms` (daylight saving included).
    pub fn offset_min_at(&self, at_ms: Millis) -> i32 {
        let ts = jiff::Timestamp::from_millisecond(at_ms).unwrap_or(if at_ms < 0 {
            jiff::Timestamp::MIN
        } else {
            jiff::Timestamp::MAX
        });
        self.tz.to_offset(ts).seconds() / 60
    }

    /// Minutes after local midnight at `at_ms`.
    pub fn local_minute_of_day(&self, at_ms: Millis) -> u32 {
        let local = at_ms.div_euclid(60_000).saturating_add(i64::from(self.offset_min_at(at_ms)));
        local.rem_euclid(24 * 60) as u32
    }
}

impl Default for SiteZone {
    fn default() -> Self {
        Self::utc()
    }
}

impl PartialEq for SiteZone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
