//! Whether each registered device is online: pure, on a clock, tested in milliseconds.
//!
//! A device is online from a successful REGISTER until the first of: its registration expires
//! (REGISTER's `Expires`), it unregisters (`Expires: 0`), or `heartbeat_count` keepalive intervals
//! pass without a keepalive (GB/T 28181-2016 §9.6: offline after 3 missed keepalives, 60 s each, by
//! default). So the offline time is `min(expiry, last keepalive + interval × count)`.
//!
//! After our own restart nobody has kept time for the devices: a device that was online keeps a
//! full `interval × count` from the restart to show it is still there (or its expiry, if sooner),
//! instead of every device of the city turning offline at once because its last keepalive was
//! stored before we stopped (a known failure of platforms that restore the stored time as it is).

use std::collections::HashMap;

use crate::clock::Millis;

/// Keepalive policy for one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub interval_ms: Millis,
    pub count: u32,
}

impl Heartbeat {
    fn window(self) -> Millis {
        self.interval_ms.saturating_mul(i64::from(self.count.max(1)))
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Device {
    heartbeat: Heartbeat,
    expires_at: Millis,
    last_alive: Millis,
    online: bool,
}

impl Device {
    fn deadline(&self) -> Millis {
        self.expires_at.min(self.last_alive.saturating_add(self.heartbeat.window()))
    }
}

/// A device's presence changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub device: String,
    pub online: bool,
    pub reason: String,
}

/// What a stored device row tells a restarted server.
#[derive(Debug, Clone)]
pub struct Stored {
    pub device: String,
    pub heartbeat: Heartbeat,
    pub expires_at: Millis,
    pub last_alive: Millis,
    pub online: bool,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Presence {
    devices: HashMap<String, Device>,
}

/// A keepalive from a device that holds no registration here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRegistered;

impl Presence {
    /// Restores what was stored, with the restart's grace (module documentation).
    pub fn restore(rows: impl IntoIterator<Item = Stored>, now: Millis) -> Self {
        let mut devices = HashMap::new();
        for r in rows {
            let last_alive = if r.online { r.last_alive.max(now) } else { r.last_alive };
            devices.insert(
                r.device,
                Device { heartbeat: r.heartbeat, expires_at: r.expires_at, last_alive, online: r.online },
            );
        }
        Self { devices }
    }

    /// A successful REGISTER with `expires_s` > 0.
    pub fn registered(&mut self, id: &str, heartbeat: Heartbeat, expires_s: u32, now: Millis) -> Option<Change> {
        let expires_at = now.saturating_add(i64::from(expires_s) * 1000);
        let d = self.devices.entry(id.to_string()).or_insert(Device {
            heartbeat,
            expires_at,
            last_alive: now,
            online: false,
        });
        d.heartbeat = heartbeat;
        d.expires_at = expires_at;
        d.last_alive = now;
        let was = std::mem::replace(&mut d.online, true);
        (!was).then(|| Change { device: id.to_string(), online: true, reason: "registered".into() })
    }

    /// REGISTER with `Expires: 0`.
    pub fn unregistered(&mut self, id: &str, now: Millis) -> Option<Change> {
        let d = self.devices.get_mut(id)?;
        d.expires_at = now;
        let was = std::mem::replace(&mut d.online, false);
        was.then(|| Change { device: id.to_string(), online: false, reason: "unregistered".into() })
    }

    /// A keepalive (or any message proving the device is there). A device whose registration
    /// expired (or that we never saw register) must register again.
    pub fn alive(&mut self, id: &str, now: Millis) -> Result<Option<Change>, NotRegistered> {
        let d = self.devices.get_mut(id).ok_or(NotRegistered)?;
        if now >= d.expires_at {
            return Err(NotRegistered);
        }
        d.last_alive = now;
        let was = std::mem::replace(&mut d.online, true);
        Ok((!was).then(|| Change { device: id.to_string(), online: true, reason: "keepalive".into() }))
    }

    /// Devices whose time ran out by `now`: each turns offline once, saying why.
    pub fn due(&mut self, now: Millis) -> Vec<Change> {
        let mut out = Vec::new();
        for (id, d) in &mut self.devices {
            if d.online && now >= d.deadline() {
                d.online = false;
                let reason = if d.deadline() == d.expires_at {
                    "registration expired".to_string()
                } else {
                    format!(
                        "no keepalive for {} s ({} × {} s)",
                        d.heartbeat.window() / 1000,
                        d.heartbeat.count,
                        d.heartbeat.interval_ms / 1000
                    )
                };
                out.push(Change { device: id.clone(), online: false, reason });
            }
        }
        out.sort_by(|a, b| a.device.cmp(&b.device));
        out
    }

    /// The earliest time `due` has something to say, if any device is online.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.devices.values().filter(|d| d.online).map(Device::deadline).min()
    }

    pub fn is_online(&self, id: &str) -> bool {
        self.devices.get(id).is_some_and(|d| d.online)
    }

    /// When the device's registration ends and when it was last heard from.
    pub fn times(&self, id: &str) -> Option<(Millis, Millis)> {
        self.devices.get(id).map(|d| (d.expires_at, d.last_alive))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HB: Heartbeat = Heartbeat { interval_ms: 60_000, count: 3 };

    #[test]
    fn offline_at_the_first_of_expiry_and_missed_keepalives() {
        let mut p = Presence::default();
        assert!(p.registered("d", HB, 3600, 0).is_some());
        assert_eq!(p.registered("d", HB, 3600, 1_000), None, "a refresh is no change");
        assert_eq!(p.alive("d", 60_000), Ok(None));
        assert!(p.due(239_999).is_empty());
        let off = p.due(240_000);
        assert_eq!(off.len(), 1);
        assert_eq!(off[0].reason, "no keepalive for 180 s (3 × 60 s)");
        assert!(p.due(300_000).is_empty(), "offline once");
        assert!(p.alive("d", 301_000).unwrap().is_some(), "back with the next keepalive");

        // A short registration ends first.
        let mut p = Presence::default();
        p.registered("e", HB, 100, 0);
        p.alive("e", 90_000).unwrap();
        assert_eq!(p.next_deadline(), Some(100_000));
        assert_eq!(p.due(100_000)[0].reason, "registration expired");
        assert_eq!(p.alive("e", 100_500), Err(NotRegistered), "must register again");
        assert_eq!(p.alive("never", 0), Err(NotRegistered));

        assert!(p.registered("e", HB, 100, 200_000).is_some());
        assert_eq!(p.unregistered("e", 200_001).unwrap().reason, "unregistered");
        assert!(!p.is_online("e"));
    }

    #[test]
    fn a_restart_gives_online_devices_a_full_window() {
        // Stored at t=0, we come back at t=1,000,000: the stored keepalive is ancient.
        let rows = (0..1000).map(|i| Stored {
            device: format!("d{i}"),
            heartbeat: HB,
            expires_at: 3_600_000,
            last_alive: 0,
            online: true,
        });
        let mut p = Presence::restore(rows, 1_000_000);
        assert!(p.due(1_000_000).is_empty(), "no mass offline at restart");
        assert!(p.due(1_179_999).is_empty());
        p.alive("d1", 1_100_000).unwrap();
        let off = p.due(1_180_000);
        assert_eq!(off.len(), 999, "all but the one that spoke");
        // A registration that ends before the window still ends.
        let mut p = Presence::restore(
            [Stored { device: "x".into(), heartbeat: HB, expires_at: 1_000_010, last_alive: 0, online: true }],
            1_000_000,
        );
        assert_eq!(p.due(1_000_010)[0].reason, "registration expired");
    }
}
