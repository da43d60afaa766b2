//! A bounded frame queue that drops the oldest frame when full, and counts every drop.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::Frame;

pub struct FrameQueue {
    cap: usize,
    q: Mutex<VecDeque<Frame>>,
    cv: Condvar,
    dropped: AtomicU64,
    pushed: AtomicU64,
    active: std::sync::atomic::AtomicBool,
}

impl FrameQueue {
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            q: Mutex::new(VecDeque::new()),
            cv: Condvar::new(),
            dropped: AtomicU64::new(0),
            pushed: AtomicU64::new(0),
            active: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Adds a frame; when full, the oldest is dropped (and counted). Returns whether one was dropped.
    pub fn push(&self, f: Frame) -> bool {
        let mut q = self.q.lock().unwrap_or_else(|e| e.into_inner());
        let dropped = if q.len() >= self.cap {
            q.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            false
        };
        q.push_back(f);
        self.pushed.fetch_add(1, Ordering::Relaxed);
        drop(q);
        self.cv.notify_one();
        dropped
    }

    /// The oldest frame, waiting up to `timeout` for one.
    pub fn pop_timeout(&self, timeout: Duration) -> Option<Frame> {
        let q = self.q.lock().unwrap_or_else(|e| e.into_inner());
        let (mut q, _) = self.cv.wait_timeout_while(q, timeout, |q| q.is_empty()).unwrap_or_else(|e| e.into_inner());
        q.pop_front()
    }

    pub fn try_pop(&self) -> Option<Frame> {
        self.q.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
    }

    pub fn len(&self) -> usize {
        self.q.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A queue fills only once someone consumes it.
    pub fn activate(&self) {
        self.active.store(true, Ordering::Relaxed);
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::PixelFormat;

    fn frame(n: i64) -> Frame {
        Frame {
            camera: "c".into(),
            captured_ms: n,
            pts_ns: None,
            width: 1,
            height: 1,
            format: PixelFormat::Gray8,
            data: vec![0],
        }
    }

    #[test]
    fn drops_oldest_and_counts() {
        let q = FrameQueue::new(2);
        assert!(!q.push(frame(1)));
        assert!(!q.push(frame(2)));
        assert!(q.push(frame(3)));
        assert_eq!(q.dropped(), 1);
        assert_eq!(q.try_pop().unwrap().captured_ms, 2);
        assert_eq!(q.pop_timeout(Duration::from_millis(1)).unwrap().captured_ms, 3);
        assert!(q.pop_timeout(Duration::from_millis(1)).is_none());
    }
}
