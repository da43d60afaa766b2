//! Availability from the status history: per camera the time spent in each status over a window,
//! uptime = (online + degraded) / (online + degraded + offline) — time in maintenance, disabled,
//! decommissioned or not yet known counts neither way — and the same summed over grid cells
//! (a cell includes the cells below it), rings and owners; the worst cameras and the repeat
//! offenders.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::clock::Millis;
use crate::registry::StatusChange;

/// A camera as availability groups it.
#[derive(Debug, Clone, PartialEq)]
pub struct CamInfo {
    pub id: String,
    pub name: String,
    pub owner: String,
    /// Its grid cell and every cell above it.
    pub cells: Vec<String>,
    pub rings: Vec<String>,
}

/// One camera over the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct CameraAvailability {
    pub camera_id: String,
    pub name: String,
    pub owner: String,
    pub grid_cell: Option<String>,
    pub online_ms: i64,
    pub degraded_ms: i64,
    pub offline_ms: i64,
    pub maintenance_ms: i64,
    /// Unknown, disabled or decommissioned.
    pub other_ms: i64,
    /// (online + degraded) / (online + degraded + offline); none when the camera was never
    /// counted in the window.
    pub uptime: Option<f64>,
    /// Times it went offline within the window.
    pub outages: u32,
    pub longest_outage_ms: i64,
}

impl CameraAvailability {
    fn up(&self) -> i64 {
        self.online_ms + self.degraded_ms
    }
}

/// A group of cameras (a grid cell, a ring, an owner) over the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct GroupAvailability {
    pub id: String,
    pub cameras: u32,
    pub up_ms: i64,
    pub down_ms: i64,
    pub uptime: Option<f64>,
    pub outages: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Availability {
    pub from_ms: Millis,
    pub to_ms: Millis,
    pub overall: GroupAvailability,
    pub cameras: Vec<CameraAvailability>,
    pub cells: Vec<GroupAvailability>,
    pub rings: Vec<GroupAvailability>,
    pub owners: Vec<GroupAvailability>,
}

fn ratio(up: i64, down: i64) -> Option<f64> {
    (up + down > 0).then(|| up as f64 / (up + down) as f64)
}

/// Availability of `cams` over `[from, to)` from `history` (every change at or before `to`, in
/// time order per camera, as `Registry::all_status_history` returns it).
pub fn compute(cams: &[CamInfo], history: &[StatusChange], from: Millis, to: Millis) -> Availability {
    let mut by_cam: BTreeMap<&str, Vec<&StatusChange>> = BTreeMap::new();
    for h in history {
        by_cam.entry(h.camera_id.as_str()).or_default().push(h);
    }
    let mut cameras = Vec::with_capacity(cams.len());
    for c in cams {
        let changes = by_cam.get(c.id.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        let mut a = CameraAvailability {
            camera_id: c.id.clone(),
            name: c.name.clone(),
            owner: c.owner.clone(),
            grid_cell: c.cells.first().cloned(),
            ..Default::default()
        };
        // The state the window starts in: the last change before it, else what the first change
        // left (nothing before the camera's first change is known).
        let mut state: String =
            changes.iter().rev().find(|h| h.at_ms <= from).map(|h| h.to_status.clone()).unwrap_or_else(|| {
                changes.first().and_then(|h| h.from_status.clone()).unwrap_or_else(|| "unknown".into())
            });
        let mut t = from;
        let mut outage_start = (state == "offline").then_some(from);
        let add = |a: &mut CameraAvailability, state: &str, d: i64| match state {
            "online" => a.online_ms += d,
            "degraded" => a.degraded_ms += d,
            "offline" => a.offline_ms += d,
            "maintenance" => a.maintenance_ms += d,
            _ => a.other_ms += d,
        };
        for h in changes.iter().filter(|h| h.at_ms > from && h.at_ms < to) {
            add(&mut a, &state, h.at_ms - t);
            t = h.at_ms;
            if h.to_status == "offline" && state != "offline" {
                a.outages += 1;
                outage_start = Some(t);
            } else if state == "offline"
                && h.to_status != "offline"
                && let Some(s) = outage_start.take()
            {
                a.longest_outage_ms = a.longest_outage_ms.max(t - s);
            }
            state = h.to_status.clone();
        }
        add(&mut a, &state, to - t);
        if let Some(s) = outage_start {
            a.longest_outage_ms = a.longest_outage_ms.max(to - s);
        }
        a.uptime = ratio(a.up(), a.offline_ms);
        cameras.push(a);
    }
    let mut cells: BTreeMap<String, GroupAvailability> = BTreeMap::new();
    let mut rings: BTreeMap<String, GroupAvailability> = BTreeMap::new();
    let mut owners: BTreeMap<String, GroupAvailability> = BTreeMap::new();
    let mut overall = GroupAvailability { id: "all".into(), ..Default::default() };
    let add = |g: &mut GroupAvailability, a: &CameraAvailability| {
        g.cameras += 1;
        g.up_ms += a.up();
        g.down_ms += a.offline_ms;
        g.outages += a.outages;
    };
    for (c, a) in cams.iter().zip(&cameras) {
        add(&mut overall, a);
        for cell in &c.cells {
            add(
                cells
                    .entry(cell.clone())
                    .or_insert_with(|| GroupAvailability { id: cell.clone(), ..Default::default() }),
                a,
            );
        }
        for r in &c.rings {
            add(rings.entry(r.clone()).or_insert_with(|| GroupAvailability { id: r.clone(), ..Default::default() }), a);
        }
        add(
            owners
                .entry(c.owner.clone())
                .or_insert_with(|| GroupAvailability { id: c.owner.clone(), ..Default::default() }),
            a,
        );
    }
    let finish = |m: BTreeMap<String, GroupAvailability>| {
        m.into_values()
            .map(|mut g| {
                g.uptime = ratio(g.up_ms, g.down_ms);
                g
            })
            .collect::<Vec<_>>()
    };
    overall.uptime = ratio(overall.up_ms, overall.down_ms);
    Availability {
        from_ms: from,
        to_ms: to,
        overall,
        cameras,
        cells: finish(cells),
        rings: finish(rings),
        owners: finish(owners),
    }
}

/// The cameras with the lowest uptime (below 100 %), worst first; ties by more outages.
pub fn worst(a: &Availability, n: usize) -> Vec<CameraAvailability> {
    let mut v: Vec<CameraAvailability> =
        a.cameras.iter().filter(|c| c.uptime.is_some_and(|u| u < 1.0)).cloned().collect();
    v.sort_by(|x, y| {
        x.uptime
            .unwrap_or(1.0)
            .total_cmp(&y.uptime.unwrap_or(1.0))
            .then(y.outages.cmp(&x.outages))
            .then(x.camera_id.cmp(&y.camera_id))
    });
    v.truncate(n);
    v
}

/// A camera that keeps failing.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RepeatOffender {
    pub camera_id: String,
    pub name: String,
    pub outages: u32,
    /// Work orders opened for it in the window.
    pub orders: u32,
    pub uptime: Option<f64>,
}

/// Cameras with at least `min_failures` outages, or as many work orders, in the window; most
/// failures first.
pub fn repeat_offenders(a: &Availability, orders: &BTreeMap<String, u32>, min_failures: u32) -> Vec<RepeatOffender> {
    let mut v: Vec<RepeatOffender> = a
        .cameras
        .iter()
        .map(|c| RepeatOffender {
            camera_id: c.camera_id.clone(),
            name: c.name.clone(),
            outages: c.outages,
            orders: orders.get(&c.camera_id).copied().unwrap_or(0),
            uptime: c.uptime,
        })
        .filter(|r| r.outages >= min_failures || r.orders >= min_failures)
        .collect();
    v.sort_by(|x, y| (y.outages + y.orders).cmp(&(x.outages + x.orders)).then(x.camera_id.cmp(&y.camera_id)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn ch(cam: &str, at_h: f64, from: Option<&str>, to: &str) -> StatusChange {
        StatusChange {
            camera_id: cam.into(),
            at_ms: (at_h * H as f64) as i64,
            from_status: from.map(Into::into),
            to_status: to.into(),
            reason: String::new(),
        }
    }

    fn cam(id: &str, owner: &str, cells: &[&str], rings: &[&str]) -> CamInfo {
        CamInfo {
            id: id.into(),
            name: id.into(),
            owner: owner.into(),
            cells: cells.iter().map(|s| s.to_string()).collect(),
            rings: rings.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn hand_built_history() {
        // Window: hours 0..100.
        let cams = [
            cam("a", "public", &["G3", "G2", "G1"], &["R1"]),
            cam("b", "public", &["G3b", "G2", "G1"], &["R1"]),
            cam("c", "enterprise", &["G3b", "G2", "G1"], &[]),
        ];
        let history = vec![
            // a: online from before the window; offline 10..12 and 40..45; maintenance 50..60
            // (not counted); degraded 70..80 (up).
            ch("a", -5.0, Some("unknown"), "online"),
            ch("a", 10.0, Some("online"), "offline"),
            ch("a", 12.0, Some("offline"), "online"),
            ch("a", 40.0, Some("online"), "offline"),
            ch("a", 45.0, Some("offline"), "online"),
            ch("a", 50.0, Some("online"), "maintenance"),
            ch("a", 60.0, Some("maintenance"), "online"),
            ch("a", 70.0, Some("online"), "degraded"),
            ch("a", 80.0, Some("degraded"), "online"),
            // b: offline when the window starts (since -20), back at 30, offline again from 90.
            ch("b", -20.0, Some("online"), "offline"),
            ch("b", 30.0, Some("offline"), "online"),
            ch("b", 90.0, Some("online"), "offline"),
            // c: first heard of at hour 50 (unknown before), online since.
            ch("c", 50.0, Some("unknown"), "online"),
            // A change after the window does not count.
            ch("c", 150.0, Some("online"), "offline"),
        ];
        let a = compute(&cams, &history, 0, 100 * H);
        let ca = &a.cameras[0];
        assert_eq!((ca.online_ms, ca.degraded_ms, ca.offline_ms, ca.maintenance_ms), (73 * H, 10 * H, 7 * H, 10 * H));
        assert_eq!(ca.outages, 2);
        assert_eq!(ca.longest_outage_ms, 5 * H);
        assert!((ca.uptime.unwrap() - 83.0 / 90.0).abs() < 1e-12);
        let cb = &a.cameras[1];
        assert_eq!((cb.online_ms, cb.offline_ms), (60 * H, 40 * H));
        assert_eq!(cb.outages, 1, "the outage running when the window opens is not a new one");
        assert_eq!(cb.longest_outage_ms, 30 * H);
        assert!((cb.uptime.unwrap() - 0.6).abs() < 1e-12);
        let cc = &a.cameras[2];
        assert_eq!((cc.online_ms, cc.other_ms, cc.offline_ms), (50 * H, 50 * H, 0));
        assert_eq!(cc.uptime, Some(1.0));
        // Groups sum time, not averages of ratios.
        let g2 = a.cells.iter().find(|g| g.id == "G2").unwrap();
        assert_eq!((g2.cameras, g2.up_ms, g2.down_ms), (3, (83 + 60 + 50) * H, (7 + 40) * H));
        assert!((g2.uptime.unwrap() - 193.0 / 240.0).abs() < 1e-12);
        let g3b = a.cells.iter().find(|g| g.id == "G3b").unwrap();
        assert!((g3b.uptime.unwrap() - 110.0 / 150.0).abs() < 1e-12);
        let r1 = a.rings.iter().find(|g| g.id == "R1").unwrap();
        assert!((r1.uptime.unwrap() - 143.0 / 190.0).abs() < 1e-12);
        let ent = a.owners.iter().find(|g| g.id == "enterprise").unwrap();
        assert_eq!(ent.uptime, Some(1.0));
        assert!((a.overall.uptime.unwrap() - 193.0 / 240.0).abs() < 1e-12);
        // Worst first; c (100 %) is not listed.
        let w: Vec<String> = worst(&a, 10).into_iter().map(|c| c.camera_id).collect();
        assert_eq!(w, ["b", "a"]);
        let orders = BTreeMap::from([("b".to_string(), 3u32)]);
        let r: Vec<(String, u32, u32)> =
            repeat_offenders(&a, &orders, 2).into_iter().map(|r| (r.camera_id, r.outages, r.orders)).collect();
        assert_eq!(r, [("b".to_string(), 1, 3), ("a".to_string(), 2, 0)]);
        // A window inside one state.
        let a = compute(&cams, &history, 20 * H, 30 * H);
        assert_eq!(a.cameras[0].uptime, Some(1.0));
        assert_eq!(a.cameras[1].uptime, Some(0.0));
        assert_eq!(a.cameras[2].uptime, None, "never counted");
    }
}
