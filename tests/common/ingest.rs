//! Ingest test helpers: specs, status events awaited with a timeout, a sim server in its own process.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tianwang::config::Profile;
use tianwang::ingest::{IngestSpec, StatusEvent};

pub fn spec(id: &str, url: &str, profile: Profile, w: u32, h: u32, fps: u32) -> IngestSpec {
    let mut s = IngestSpec::with_defaults(id, url.parse().expect("url"), profile);
    (s.width, s.height, s.fps) = (w, h, fps);
    s.watchdog = Duration::from_secs(2);
    s.latency_ms = 100;
    s.backoff_initial = Duration::from_millis(200);
    s.backoff_max = Duration::from_secs(2);
    s
}

/// Status events from an `Ingest`, awaited per camera.
pub struct Events {
    rx: tokio::sync::mpsc::Receiver<StatusEvent>,
    pending: VecDeque<StatusEvent>,
}

impl Events {
    pub fn new(rx: tokio::sync::mpsc::Receiver<StatusEvent>) -> Self {
        Self { rx, pending: VecDeque::new() }
    }

    /// Waits for camera `cam` to reach `status` ("online" / "offline"); returns the event.
    pub async fn wait(&mut self, cam: &str, status: &str, timeout: Duration) -> StatusEvent {
        let is = |e: &StatusEvent| e.camera == cam && e.status.map(|s| s.as_str()) == Some(status);
        if let Some(i) = self.pending.iter().position(is) {
            return self.pending.remove(i).unwrap();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(e)) if is(&e) => return e,
                Ok(Some(e)) => self.pending.push_back(e),
                Ok(None) => panic!("event channel closed while waiting for {cam} {status}"),
                Err(_) => panic!("{cam} did not become {status} within {timeout:?}; other events: {:?}", self.pending),
            }
        }
    }

    /// Every status change received so far for `cam` (without waiting).
    pub fn drain_for(&mut self, cam: &str) -> Vec<StatusEvent> {
        while let Ok(e) = self.rx.try_recv() {
            self.pending.push_back(e);
        }
        self.pending.iter().filter(|e| e.camera == cam && e.status.is_some()).cloned().collect()
    }
}

/// `tianwang sim` in a child process; killed on drop. What it writes to stderr is kept in a
/// file for a failure's report.
pub struct SimProcess {
    child: Child,
    pub base: String,
    log: tempfile::NamedTempFile,
}

impl SimProcess {
    pub fn start(streams: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tianwang"));
        cmd.args(["sim", "--port", "0"]);
        for s in streams {
            cmd.args(["--stream", s]);
        }
        let log = tempfile::NamedTempFile::new().expect("temp file");
        let err = log.reopen().expect("temp file");
        let mut child = cmd.stdout(Stdio::piped()).stderr(err).spawn().expect("start tianwang sim");
        let out = child.stdout.take().unwrap();
        let mut base = String::new();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(b) = line.strip_prefix("sim: ") {
                base = b.to_string();
                break;
            }
        }
        assert!(!base.is_empty(), "tianwang sim printed no URL");
        Self { child, base, log }
    }

    /// Whether it still runs, and the last lines it wrote to stderr.
    pub fn tail(&mut self) -> String {
        let state = match self.child.try_wait() {
            Ok(Some(status)) => format!("exited: {status}"),
            _ => "running".to_string(),
        };
        let text = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("--- tianwang sim ({state}; last lines) ---\n{}", lines[lines.len().saturating_sub(10)..].join("\n"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
