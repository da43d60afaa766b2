//! The demo city: its cameras served by the in-process RTSP server, and a scenario that makes the
//! monitoring room busy within two minutes of the start:
//!
//! | what | where | when |
//! |---|---|---|
//! | vehicles with plates drive inbound from a middle-ring checkpoint to the inner-ring one on the same radial road | 外放射路1 → 放射路1 (15°) and 外放射路5 → 放射路4 (195°) | a vehicle every 6–10 s per road, 45–65 s between the two checkpoints |
//! | every 4th vehicle carries a watchlisted plate (12 seeded entries, `demo-watchlist`) | | from ~10 s |
//! | an anti-robbery alarm, through the same path as `POST /api/v1/alarms` | 工商银行二七支行 | 35 s, then every 4 min |
//! | a camera fails (its stream goes away) and comes back after 100 s: offline alert, middle ring open | 卡口 middle ring #3 | 20 s, then every 5 min |
//! | a camera's picture goes black for 2 min: quality fault | 经八路7号院 stairwell | 25 s, then every 6 min |
//! | people cross the squares (street and entrance cameras); street #1's zone is armed | street cameras | always |
//! | a GB/T 28181 NVR registers with Digest, keeps alive, lists 4 channels, and streams 2 of them by INVITE (RTP/PS) | NVR 德化街 (`gb28181.toml`) | from the start |
//!
//! Frame sizes and rates are kept low (2 cores are enough): 960×540 at 5 fps on the four traffic
//! checkpoints (plates are read at 3 fps), 320×180 at 5 fps everywhere else.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::plates::random_plate;
use super::scene::{SimScene, TrafficQueue};
use super::{SimCamera, SimError, SimServer};
use crate::app::AppState;
use crate::config::{CameraKind, Profile, SharedConfig};
use crate::geo::network::{RoadNetwork, vehicle_speed_kmh};
use crate::geo::proj::LocalProj;
use crate::geo::route::walk_times;
use crate::plate::PlateColor;
use crate::registry::{Fix, FixSource, NewUnit, Oneway, UnitChange, UnitError, UnitKind, UnitStatus};

/// Inbound roads with a traffic checkpoint on each ring: (middle-ring checkpoint, inner-ring
/// checkpoint, metres between them along the road).
pub const TRAFFIC_ROADS: [(&str, &str, f64); 2] =
    [("41010000001210000007", "41010000001210000001", 900.0), ("41010000001210000011", "41010000001210000004", 900.0)];
/// The camera that fails and recovers.
pub const FAILING_CAMERA: &str = "41010000001210000009";
/// The camera whose picture goes black.
pub const QUALITY_CAMERA: &str = "rent-jingba-7";
/// The alarm button: id, name, position.
pub const ALARM: (&str, &str, f64, f64) = ("icbc-erqi-counter-3", "工商银行二七支行 counter 3", 113.663878, 34.754468);
/// Owner of the watchlist entries the demo seeds.
pub const WATCHLIST_OWNER: &str = "demo-watchlist";
const WATCHLIST_SIZE: usize = 12;

/// The simulated cameras of a demo city.
pub struct DemoCity {
    server: SimServer,
    /// Live traffic queue of each traffic checkpoint.
    queues: HashMap<String, TrafficQueue>,
    cameras: usize,
}

impl DemoCity {
    pub fn port(&self) -> u16 {
        self.server.port()
    }
    pub fn cameras(&self) -> usize {
        self.cameras
    }
}

fn is_traffic(id: &str) -> bool {
    TRAFFIC_ROADS.iter().any(|(a, b, _)| *a == id || *b == id)
}

impl DemoCity {
    /// Starts the simulator on `port` of 127.0.0.1 (0: a free one) with no camera yet.
    pub fn start(port: u16) -> Result<DemoCity, SimError> {
        Ok(DemoCity { server: SimServer::start_on(port)?, queues: HashMap::new(), cameras: 0 })
    }

    /// Mounts every camera of `cfg` whose URL points at the simulator. Streams are sized for what
    /// each camera's profile ingests, so that the demo runs on two cores.
    pub fn mount(&mut self, cfg: &SharedConfig) {
        let prefix = format!("rtsp://127.0.0.1:{}/", self.server.port());
        for (i, c) in cfg.cameras.iter().enumerate() {
            let Some(path) = c.url.as_str().strip_prefix(&prefix) else { continue };
            let id = c.id.as_str();
            let mut cam = if is_traffic(id) {
                let mut cam = SimCamera::new(path, 960, 540, 5);
                let queue = TrafficQueue::default();
                self.queues.insert(id.to_string(), queue.clone());
                cam.scene =
                    Some(SimScene::LiveTraffic { queue, seconds_per_vehicle: 3.0, gap_s: 1.0, seed: i as u64 + 1 });
                cam.bitrate_kbps = 1500;
                cam
            } else {
                let mut cam = SimCamera::new(path, 320, 180, 5);
                if c.profile == Profile::Street || c.kind == CameraKind::Entrance {
                    cam.scene = Some(SimScene::Pedestrians { seed: i as u64 + 1 });
                } else {
                    // A still scene with a live corner: healthy for quality diagnosis.
                    cam.pattern = "smpte".into();
                }
                cam.bitrate_kbps = 300;
                cam
            };
            cam.keyframe_interval = 10;
            self.server.add(cam);
            self.cameras += 1;
        }
    }
}

/// Channels the demo's NVR lists in its catalog.
const NVR_CHANNELS: usize = 4;

/// The demo's GB/T 28181 NVR: the first `[[gb28181_device]]` of `cfg`, registering to the
/// platform's SIP server at `platform` with the device's configured password. Its channels that
/// camera entries read (`gb28181://DEVICE/CHANNEL`) show people crossing a square, at their
/// camera's position; the others a test pattern near them. `None` when the site has no device.
pub async fn start_gb_nvr(
    cfg: &crate::city::CityConfig,
    platform: std::net::SocketAddr,
) -> Result<Option<super::gb28181::GbDeviceSim>, String> {
    use super::gb28181::{GbDeviceConfig, GbDeviceSim};
    let (Some(gb), Some(dev)) = (&cfg.gb28181, cfg.gb28181.as_ref().and_then(|g| g.devices.first())) else {
        return Ok(None);
    };
    let secret = dev.password.as_ref().or(gb.password.as_ref()).ok_or("the demo's NVR has no password")?;
    let password = secret.resolve()?;
    let mut dc = GbDeviceConfig::new(platform, &gb.id, &gb.domain, &dev.id, password.expose());
    dc.local_ip = Some(std::net::Ipv4Addr::LOCALHOST.into());
    dc.keepalive_interval = Duration::from_secs(u64::from(gb.heartbeat_interval_s));
    dc.name = dev.name.clone().unwrap_or_else(|| dev.id.clone());
    dc.channels = GbDeviceConfig::numbered_channels(&dev.id, NVR_CHANNELS, 320, 180, 5);
    let mut anchor = None;
    for (i, ch) in dc.channels.iter_mut().enumerate() {
        let url = format!("gb28181://{}/{}", dev.id, ch.id);
        ch.picture.keyframe_interval = 10;
        ch.picture.bitrate_kbps = 300;
        match cfg.cameras.iter().find(|c| c.url.as_str() == url) {
            Some(c) => {
                ch.picture.scene = Some(SimScene::Pedestrians { seed: 100 + i as u64 });
                ch.position = Some((c.lon, c.lat));
                anchor.get_or_insert((c.lon, c.lat));
            }
            None => ch.picture.pattern = "smpte".into(),
        }
    }
    if let Some((lon, lat)) = anchor {
        for (i, ch) in dc.channels.iter_mut().enumerate().filter(|(_, c)| c.position.is_none()) {
            ch.position = Some((lon + 0.0008 * (i as f64 + 1.0), lat - 0.0006));
        }
    }
    GbDeviceSim::start(dc).await.map(Some)
}

/// A copy of the configuration folder in `into` with the simulator's port in every camera URL
/// (the demo configuration points at 8554; tests run the demo on a free port).
pub fn config_for_port(dir: &Path, into: &Path, port: u16) -> std::io::Result<PathBuf> {
    copy_rewriting(dir, into, &|text| text.replace("rtsp://127.0.0.1:8554/", &format!("rtsp://127.0.0.1:{port}/")))?;
    Ok(into.to_path_buf())
}

fn copy_rewriting(from: &Path, to: &Path, rewrite: &dyn Fn(&str) -> String) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type()?.is_dir() {
            copy_rewriting(&src, &dst, rewrite)?;
        } else if src.extension().is_some_and(|x| x == "toml") {
            std::fs::write(&dst, rewrite(&std::fs::read_to_string(&src)?))?;
        } else {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// The watchlist's plates: fixed, so a demo database that already holds them is not given more.
pub fn watchlist_plates() -> Vec<(String, PlateColor)> {
    let mut rng = StdRng::seed_from_u64(8);
    let colors = [PlateColor::Blue, PlateColor::Blue, PlateColor::Green, PlateColor::Yellow];
    (0..WATCHLIST_SIZE)
        .map(|i| {
            let c = colors[i % colors.len()];
            (random_plate(&mut rng, c), c)
        })
        .collect()
}

const REASONS: [&str; 4] = [
    "stolen vehicle (盗抢车辆)",
    "suspect in a robbery case",
    "fake plate reported",
    "unpaid fines, wanted for questioning",
];

/// Adds the demo's watchlist entries that are not there yet.
pub async fn seed_watchlist(state: &AppState) -> Result<usize, String> {
    let now = state.clock.now_ms();
    let have = state.registry.active_watchlists(now).await.map_err(|e| e.to_string())?;
    let mut added = 0;
    for (i, (plate, _)) in watchlist_plates().iter().enumerate() {
        if have.iter().any(|w| &w.pattern == plate) {
            continue;
        }
        let input = crate::detect::watchlist::WatchlistInput {
            pattern: plate.clone(),
            match_kind: None,
            max_distance: None,
            reason: REASONS[i % REASONS.len()].into(),
            priority: Some(if i % 3 == 0 {
                crate::detect::watchlist::Priority::High
            } else {
                crate::detect::watchlist::Priority::Medium
            }),
            valid_from_ms: None,
            valid_until_ms: None,
            owner: Some(WATCHLIST_OWNER.into()),
        };
        let new = input.parse(now).map_err(|e| e.to_string())?;
        state.registry.create_watchlist(&new, Some(WATCHLIST_OWNER), now).await.map_err(|e| e.to_string())?;
        added += 1;
    }
    Ok(added)
}

/// A scheduled change to the city.
enum Step {
    /// A vehicle reaches a traffic checkpoint.
    Vehicle {
        camera: &'static str,
        plate: String,
        color: PlateColor,
    },
    CameraDown,
    CameraUp,
    PictureBlack,
    PictureBack,
    Alarm,
}

/// Runs the scenario until `stop` turns true. Failures are logged; the scenario goes on.
pub async fn run_scenario(city: Arc<DemoCity>, state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    match seed_watchlist(&state).await {
        Ok(n) => tracing::info!(added = n, "demo: watchlist seeded"),
        Err(e) => tracing::error!(error = %e, "demo: cannot seed the watchlist"),
    }
    let start = Instant::now();
    let at = |s: f64| start + Duration::from_secs_f64(s);
    let mut steps: Vec<(Instant, Step)> =
        vec![(at(20.0), Step::CameraDown), (at(25.0), Step::PictureBlack), (at(35.0), Step::Alarm)];
    let mut rng = StdRng::seed_from_u64(2026);
    let watched = watchlist_plates();
    let mut vehicles = 0usize;
    let mut next_vehicle = [at(6.0), at(10.0)];
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = Instant::now();
        for (road, due) in next_vehicle.iter_mut().enumerate() {
            if *due > now {
                continue;
            }
            let (first, second, metres) = TRAFFIC_ROADS[road];
            let (plate, color) = if vehicles.is_multiple_of(4) {
                next_watched(&state, &watched, vehicles / 4).await
            } else {
                let color = match rng.gen_range(0..10) {
                    0..=5 => PlateColor::Blue,
                    6 | 7 => PlateColor::Green,
                    _ => PlateColor::Yellow,
                };
                (random_plate(&mut rng, color), color)
            };
            vehicles += 1;
            let speed = rng.gen_range(14.0..20.0);
            steps.push((now, Step::Vehicle { camera: first, plate: plate.clone(), color }));
            steps.push((now + Duration::from_secs_f64(metres / speed), Step::Vehicle { camera: second, plate, color }));
            *due = now + Duration::from_secs_f64(rng.gen_range(6.0..10.0));
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut steps).into_iter().partition(|(t, _)| *t <= now);
        steps = later;
        for (_, step) in due {
            let next = apply(&city, &state, step).await;
            steps.extend(next.map(|(after, s)| (now + after, s)));
        }
    }
}

/// The next watchlisted vehicle: the first plate from the rotation's place on that has no open
/// alert (so hits keep raising new alerts while the operators resolve them), else the rotation's.
async fn next_watched(state: &AppState, watched: &[(String, PlateColor)], turn: usize) -> (String, PlateColor) {
    for k in 0..watched.len() {
        let w = &watched[(turn + k) % watched.len()];
        if let Ok(None) = state.registry.open_alert_by_key(&format!("watchlist_hit:{}", w.0)).await {
            return w.clone();
        }
    }
    watched[turn % watched.len()].clone()
}

/// Applies a step; returns the follow-up step, if any, and how long after.
async fn apply(city: &DemoCity, state: &AppState, step: Step) -> Option<(Duration, Step)> {
    let sim = &city.server;
    let log = |what: &str, r: Result<(), SimError>| {
        if let Err(e) = r {
            tracing::warn!(error = %e, "demo: cannot {what}");
        }
    };
    let path = |id: &str| id.to_string();
    match step {
        Step::Vehicle { camera, plate, color } => {
            if let Some(q) = city.queues.get(camera) {
                q.push(&plate, color);
            }
            None
        }
        Step::CameraDown => {
            tracing::info!(camera = FAILING_CAMERA, "demo: a camera fails");
            log("stop a camera", sim.stop(&path(FAILING_CAMERA)));
            Some((Duration::from_secs(100), Step::CameraUp))
        }
        Step::CameraUp => {
            tracing::info!(camera = FAILING_CAMERA, "demo: the camera is back");
            log("restart a camera", sim.start_camera(&path(FAILING_CAMERA)));
            Some((Duration::from_secs(200), Step::CameraDown))
        }
        Step::PictureBlack => {
            tracing::info!(camera = QUALITY_CAMERA, "demo: a camera's picture goes black");
            log("change a picture", sim.set_pattern(&path(QUALITY_CAMERA), "black"));
            Some((Duration::from_secs(120), Step::PictureBack))
        }
        Step::PictureBack => {
            log("change a picture", sim.set_pattern(&path(QUALITY_CAMERA), "smpte"));
            Some((Duration::from_secs(240), Step::PictureBlack))
        }
        Step::Alarm => {
            let (id, name, lon, lat) = ALARM;
            let input = crate::alerts::alarm::AlarmInput {
                alarm_id: Some(id.into()),
                name: Some(name.into()),
                lon: Some(lon),
                lat: Some(lat),
                at_ms: None,
            };
            let wait = Duration::from_secs(5);
            match crate::alerts::alarm::raise(&state.alerts, &state.geo, state.clock.as_ref(), &input, None, wait).await
            {
                Ok(crate::alerts::alarm::AlarmOutcome::Raised(a)) => {
                    tracing::info!(alert = a.id, "demo: anti-robbery alarm pressed")
                }
                Ok(other) => tracing::warn!(outcome = ?other, "demo: the alarm raised no alert yet"),
                Err(e) => tracing::warn!(error = %e, "demo: the alarm was not raised"),
            }
            Some((Duration::from_secs(240), Step::Alarm))
        }
    }
}

/// The demo's patrol units: (id, name, kind).
pub const PATROLS: [(&str, &str, UnitKind); 8] = [
    ("pc-01", "巡逻车 01", UnitKind::Car),
    ("pc-02", "巡逻车 02", UnitKind::Car),
    ("pc-03", "巡逻车 03", UnitKind::Car),
    ("pc-04", "巡逻车 04", UnitKind::Car),
    ("pc-05", "巡逻车 05", UnitKind::Car),
    ("mc-01", "摩托 01", UnitKind::Motorcycle),
    ("fp-01", "步巡 01", UnitKind::Foot),
    ("fp-02", "步巡 02", UnitKind::Foot),
];

/// How often a demo unit reports, as vehicle trackers do.
const PATROL_EVERY: Duration = Duration::from_secs(5);

/// One demo unit on the road network: the segment it is on, which way, how far along.
struct Patrol {
    id: &'static str,
    drives: bool,
    speed_mps: f64,
    seg: usize,
    forward: bool,
    along_m: f64,
}

/// Whether a unit may travel segment `s` in the direction given (cars: the way's class carries
/// vehicles and one-way streets only their way; on foot: any way but motorways, either way).
fn may_travel(net: &RoadNetwork, s: usize, forward: bool, drives: bool) -> bool {
    if !drives {
        return walk_times(net, s).0.is_some();
    }
    let way = net.way_of(s);
    vehicle_speed_kmh(&way.class).is_some()
        && match way.oneway {
            Oneway::No => true,
            Oneway::Forward => forward,
            Oneway::Backward => !forward,
        }
}

/// The segments joined to `seg` (in either direction), in index order.
fn joined(net: &RoadNetwork, seg: usize) -> Vec<usize> {
    let mut seen = vec![false; net.segs.len()];
    let mut todo = vec![seg];
    seen[seg] = true;
    while let Some(s) = todo.pop() {
        for node in [net.segs[s].a, net.segs[s].b] {
            for &o in &net.node_segs[node as usize] {
                if !std::mem::replace(&mut seen[o as usize], true) {
                    todo.push(o as usize);
                }
            }
        }
    }
    (0..seen.len()).filter(|&s| seen[s]).collect()
}

impl Patrol {
    /// Moves `metres` along the network, turning at each node onto a way it may travel (not
    /// back the way it came unless the road ends).
    fn advance(&mut self, net: &RoadNetwork, mut metres: f64, rng: &mut StdRng) {
        while metres > 0.0 {
            let len = net.segs[self.seg].len;
            if self.along_m + metres < len {
                self.along_m += metres;
                return;
            }
            metres -= len - self.along_m;
            let s = net.segs[self.seg];
            let node = if self.forward { s.b } else { s.a };
            let next: Vec<(usize, bool)> = net.node_segs[node as usize]
                .iter()
                .map(|&o| (o as usize, net.segs[o as usize].a == node))
                .filter(|&(o, fwd)| o != self.seg && may_travel(net, o, fwd, self.drives))
                .collect();
            let (seg, forward) =
                if next.is_empty() { (self.seg, !self.forward) } else { next[rng.gen_range(0..next.len())] };
            (self.seg, self.forward, self.along_m) = (seg, forward, 0.0);
        }
    }

    /// Where it is (lon, lat) and its heading (degrees from north).
    fn fix(&self, net: &RoadNetwork, proj: &LocalProj) -> ([f64; 2], f64) {
        let s = net.segs[self.seg];
        let (from, to) = if self.forward { (s.a, s.b) } else { (s.b, s.a) };
        let (p, q) = (net.nodes[from as usize], net.nodes[to as usize]);
        let at = p.lerp(q, (self.along_m / s.len).clamp(0.0, 1.0));
        (proj.inv(at), q.minus(p).bearing() % 360.0)
    }
}

/// How long a demo unit stays on an alert before it reports back available.
const ON_ALERT: Duration = Duration::from_secs(180);

/// Demo units sent to an alert report back available after [`ON_ALERT`], so that the demo keeps
/// units to send however long it runs.
async fn back_on_patrol(state: &AppState, now: i64) {
    let Ok(units) = state.registry.units(false).await else { return };
    for u in units {
        let busy = matches!(u.status, UnitStatus::Dispatched | UnitStatus::OnScene);
        if busy && PATROLS.iter().any(|p| p.0 == u.id) && now - u.status_since_ms > ON_ALERT.as_millis() as i64 {
            let back = UnitChange { status: Some(UnitStatus::Available), ..Default::default() };
            match state.registry.update_unit(&u.id, &back, now).await {
                Ok(_) => tracing::info!(unit = %u.id, "demo: a patrol unit is back on patrol"),
                Err(e) => tracing::warn!(unit = %u.id, error = %e, "demo: a patrol unit stays on its alert"),
            }
        }
    }
}

/// Patrol cars, a motorcycle and foot patrols on the demo city's roads, each reporting its
/// position every 5 s (through the registry, as `POST /api/v1/units/{id}/positions` stores
/// them), so that the map shows them moving and dispatch has units to rank. Until `stop`.
pub async fn run_patrols(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let model = match state.geo.model().await {
        Ok(m) if !m.net.segs.is_empty() => m,
        Ok(_) => return tracing::info!("demo: no roads, so no patrols"),
        Err(e) => return tracing::error!(error = %e, "demo: no geography, so no patrols"),
    };
    let net = &model.net;
    // The units patrol the roads joined to the one by the bank, so that they can reach its alarm
    // (the demo's map joins its ring roads and radials where they cross: all of them; a map
    // whose ways meet only where they share a point may leave some apart).
    let (_, _, lon, lat) = ALARM;
    let Some(near) = net.snap(model.proj.fwd(lon, lat), 1000.0, |s| vehicle_speed_kmh(&net.way_of(s).class).is_some())
    else {
        return tracing::info!("demo: no road near the bank, so no patrols");
    };
    let area = joined(net, near.seg);
    let now = state.clock.now_ms();
    let mut rng = StdRng::seed_from_u64(110);
    let mut patrols = Vec::new();
    for (i, (id, name, kind)) in PATROLS.into_iter().enumerate() {
        let unit = NewUnit {
            id: id.into(),
            name: name.into(),
            kind,
            station: "二七派出所".into(),
            grid_cell: None,
            status: UnitStatus::Available,
        };
        match state.registry.create_unit(&unit, now).await {
            Ok(_) => {}
            // A demo started again on the same database: its units start the shift available.
            Err(UnitError::Exists(_)) => {
                let back = UnitChange { status: Some(UnitStatus::Available), ..Default::default() };
                if let Err(e) = state.registry.update_unit(id, &back, now).await {
                    tracing::warn!(unit = id, error = %e, "demo: a patrol unit stays as it was");
                }
            }
            Err(e) => return tracing::error!(unit = id, error = %e, "demo: cannot add a patrol unit"),
        }
        let drives = kind != UnitKind::Foot;
        // Spread over the area: a segment it may travel, from an even start.
        let n = area.len();
        let Some(seg) =
            (0..n).map(|k| area[(i * n / PATROLS.len() + k) % n]).find(|&s| may_travel(net, s, true, drives))
        else {
            continue;
        };
        let speed_mps = if drives { rng.gen_range(8.0..12.0) } else { 1.3 };
        patrols.push(Patrol { id, drives, speed_mps, seg, forward: true, along_m: 0.0 });
    }
    tracing::info!(units = patrols.len(), "demo: patrol units report their positions every 5 s");
    let mut tick = tokio::time::interval(PATROL_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = state.clock.now_ms();
        back_on_patrol(&state, now).await;
        for p in &mut patrols {
            p.advance(net, p.speed_mps * PATROL_EVERY.as_secs_f64(), &mut rng);
            let ([lon, lat], heading) = p.fix(net, &model.proj);
            let fix = Fix {
                at_ms: now,
                lon,
                lat,
                speed_mps: Some(p.speed_mps),
                heading_deg: Some(heading),
                accuracy_m: Some(5.0),
            };
            if let Err(e) = state.registry.add_fixes(p.id, &[fix], FixSource::Sim, now, i64::MIN).await {
                tracing::warn!(unit = p.id, error = %e, "demo: a patrol's position was not stored");
            }
        }
        state.unit_feed.kick();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchlist_plates_are_fixed_and_grammatical() {
        let a = watchlist_plates();
        assert_eq!(a, watchlist_plates());
        assert_eq!(a.len(), WATCHLIST_SIZE);
        for (p, _) in &a {
            crate::plate::check(p).unwrap();
        }
    }

    #[test]
    fn the_demo_configuration_has_every_camera_the_scenario_uses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo");
        let cfg = crate::city::load_dir(&dir).unwrap();
        let has = |id: &str| cfg.cameras.iter().find(|c| c.id.as_str() == id);
        for (a, b, _) in TRAFFIC_ROADS {
            for id in [a, b] {
                let c = has(id).unwrap_or_else(|| panic!("{id} missing"));
                assert_eq!(c.profile, Profile::Checkpoint, "{id} reads plates");
            }
        }
        assert!(has(FAILING_CAMERA).is_some() && has(QUALITY_CAMERA).is_some());
        assert!(cfg.detect.is_some() && cfg.maintenance.is_some());
        assert!(cfg.armed_zones.iter().any(|z| has(&z.camera).is_some_and(|c| c.profile == Profile::Street)));
        // Only the traffic checkpoints read plates (2 cores).
        let reading: Vec<&str> =
            cfg.cameras.iter().filter(|c| c.profile == Profile::Checkpoint).map(|c| c.id.as_str()).collect();
        assert_eq!(reading.len(), 4, "{reading:?}");
    }

    #[test]
    fn a_copy_for_another_port() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo");
        let out = tempfile::tempdir().unwrap();
        let copy = config_for_port(&dir, &out.path().join("cfg"), 18554).unwrap();
        let cfg = crate::city::load_dir(&copy).unwrap();
        let (gb, rtsp): (Vec<_>, Vec<_>) = cfg.cameras.iter().partition(|c| c.url.gb28181().is_some());
        assert!(rtsp.iter().all(|c| c.url.as_str().starts_with("rtsp://127.0.0.1:18554/")));
        assert_eq!(gb.len(), 2, "the NVR's two streamed channels keep their gb28181:// URLs");
        assert!(copy.join("map/roads.geojson").exists());
        assert!(copy.join("gb28181-demo.secret").exists(), "the NVR's password file is copied with the rest");
    }
}
