//! A Server-Sent Events client for the live streams (alerts, units), reading with a deadline.

use std::time::Instant;

use serde_json::Value;

use super::TestApp;

/// An SSE client reading with a deadline; returns (event id, data) pairs.
pub struct Sse {
    resp: reqwest::Response,
    buf: String,
}

impl Sse {
    pub async fn open(app: &TestApp, last_event_id: Option<i64>) -> Sse {
        let mut req = app.client.get(app.url("/api/v1/alerts/stream"));
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        Sse { resp, buf: String::new() }
    }

    /// The stream of any node: `client` sends its token.
    pub async fn open_at(client: &reqwest::Client, base: &str, last_event_id: Option<i64>) -> Sse {
        let mut req = client.get(format!("{base}/api/v1/alerts/stream"));
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        Sse { resp, buf: String::new() }
    }

    /// The units' live stream.
    pub async fn open_units(app: &TestApp) -> Sse {
        let resp = app.client.get(app.url("/api/v1/units/stream")).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        Sse { resp, buf: String::new() }
    }

    /// The next event with an id (the alerts' stream): (id, data).
    pub async fn next(&mut self, deadline: Instant) -> Option<(i64, Value)> {
        loop {
            let (_, id, data) = self.next_event(deadline).await?;
            if let Some(i) = id {
                return Some((i, data));
            }
        }
    }

    /// The next event with data: its name (`event:`), id and data.
    pub async fn next_event(&mut self, deadline: Instant) -> Option<(Option<String>, Option<i64>, Value)> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut data, mut event) = (None, None, None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("id: ").or_else(|| line.strip_prefix("id:")) {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("data: ").or_else(|| line.strip_prefix("data:")) {
                        data = serde_json::from_str(v.trim()).ok();
                    }
                }
                if let Some(d) = data {
                    return Some((event, id, d));
                }
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Ok(Ok(Some(c))) => self.buf.push_str(&String::from_utf8_lossy(&c)),
                _ => return None,
            }
        }
    }
}
