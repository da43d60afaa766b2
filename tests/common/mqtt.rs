//! A private Mosquitto broker on a free port (so a test may stop and start it), and a subscriber
//! that hands every message to the test. `scripts/setup.sh` installs Mosquitto from Debian.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

pub struct Broker {
    pub port: u16,
    conf: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker that keeps persistent sessions across its own restarts.
    pub fn start() -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nuser root\n\
                 log_dest stderr\nlog_type information\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let mut b = Broker { port, conf, child: None, _dir: dir };
        b.resume();
        b
    }

    /// Stops the broker (SIGTERM: it saves its sessions) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and waits until it accepts connections.
    pub fn resume(&mut self) {
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto runs (scripts/setup.sh installs it)");
        // Ready when it says it runs (on stderr, which is not buffered); its log is drained
        // meanwhile so it never blocks on it.
        let out = child.stderr.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.contains("running") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("mosquitto did not start on {}", self.port));
        self.child = Some(child);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A QoS 1 subscriber with a persistent session (messages published while it reconnects are kept
/// for it); every message's payload as JSON (with the topic it came on as `_topic`) goes to the
/// returned channel. It reconnects until
/// the test ends. Returns once the broker has confirmed the subscription.
pub async fn subscribe(
    port: u16,
    client_id: &str,
    topic: &str,
) -> tokio::sync::mpsc::UnboundedReceiver<serde_json::Value> {
    let mut opts = MqttOptions::new(client_id, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_clean_session(false);
    let (client, mut events) = AsyncClient::new(opts, 256);
    client.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _client = client;
        let mut subscribed = Some(subscribed_tx);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(s) = subscribed.take() {
                        let _ = s.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&p.payload) {
                        // The topic it came on, for tests that check it.
                        v["_topic"] = serde_json::Value::String(p.topic.clone());
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                }
                Ok(_) => {}
                // The broker is down: rumqttc reconnects on the next poll.
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(20), subscribed_rx).await.expect("subscribed").expect("subscriber runs");
    rx
}
