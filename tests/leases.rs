//! Camera assignment by lease on both engines: even placement by live load, a dead worker's
//! cameras moving with higher epochs, a returning worker taking cameras back a batch at a time,
//! fencing, limits, concurrent rounds that never give one camera to two workers, and one round per
//! period whoever asks. Time is passed
//! in, so every case runs in milliseconds.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Engine, TestApp, TestDb, config_dir};
use tianwang::city::load_dir;
use tianwang::clock::Clock;
use tianwang::config::Profile;
use tianwang::registry::{
    LeaseBook, NewPassage, Placement, RawEvent, Registry, RegistryError, WorkerSpec, check_lease,
};

const TTL: i64 = 15_000;
/// Heartbeats and rounds run every third of a lease.
const TICK: i64 = TTL / 3;

fn placement() -> Placement {
    Placement { ttl_ms: TTL, batch: 50, ..Placement::default() }
}

fn worker(id: &str) -> WorkerSpec {
    WorkerSpec {
        id: id.into(),
        cores: 2,
        max_cameras: 1000,
        profiles: vec![Profile::Health, Profile::Street],
        cpu_share: 0.0,
    }
}

/// A registry with `health` health cameras and `street` street cameras.
async fn registry(engine: Engine, health: usize, street: usize) -> (Registry, TestDb) {
    let db = TestDb::new(engine).await;
    let reg = Registry::open(&db.url).await.unwrap();
    let mut cams = String::new();
    for (i, profile) in std::iter::repeat_n("health", health).chain(std::iter::repeat_n("street", street)).enumerate() {
        cams.push_str(&format!(
            "[[camera]]\nid = \"cam-{i:04}\"\nname = \"c{i}\"\nurl = \"rtsp://10.0.0.1/{i}\"\nlon = 113.6\nlat = 34.7\n\
             bearing_deg = 0\nkind = \"street\"\nprofile = \"{profile}\"\n"
        ));
    }
    let dir = config_dir(&[
        (
            "site.toml",
            "[site]\nname = \"S\"\ntimezone = \"UTC\"\n[defaults]\nhfov_deg = 90\nresolution = \"1920x1080\"\nowner = \"public\"\nmounting_height_m = 5\n",
        ),
        ("cameras.toml", &cams),
    ]);
    reg.sync_config(&load_dir(dir.path()).unwrap(), 1).await.unwrap();
    (reg, db)
}

/// One tick: every listed worker heartbeats, then one placement round runs for all.
async fn tick(reg: &Registry, workers: &[&WorkerSpec], now: i64) -> BTreeMap<String, (usize, usize)> {
    for w in workers {
        reg.heartbeat(w, now, &placement()).await.unwrap();
    }
    let round = reg.place_all(now, &placement()).await.unwrap();
    let mut moved = BTreeMap::new();
    for w in workers {
        let r = round.get(&w.id).cloned().unwrap_or_default();
        assert!(r.claimed.len() <= 50 && r.released.len() <= 50, "a round moves at most a batch per worker");
        moved.insert(w.id.clone(), (r.claimed.len(), r.released.len()));
    }
    moved
}

/// Cameras per live holder at `now`.
async fn counts(reg: &Registry, now: i64) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (_, (w, _)) in reg.holders(now).await.unwrap() {
        *out.entry(w).or_default() += 1;
    }
    out
}

/// Ticks until a tick moves nothing (at most `max` ticks); answers the time after the last.
async fn settle(reg: &Registry, workers: &[&WorkerSpec], mut now: i64, max: usize) -> i64 {
    // Quiet for longer than a hand-off: cameras released in a round are claimed only after it.
    let mut quiet = 0;
    for _ in 0..max {
        let moved = tick(reg, workers, now).await;
        now += TICK;
        if moved.values().all(|&(c, r)| c == 0 && r == 0) {
            quiet += TICK;
            if quiet > placement().handoff_ms {
                return now;
            }
        } else {
            quiet = 0;
        }
    }
    panic!("placement did not settle in {max} ticks: {:?}", counts(reg, now).await);
}

fn within_10_percent(counts: &BTreeMap<String, usize>, total: usize) {
    let even = total as f64 / counts.len() as f64;
    for (w, &n) in counts {
        assert!((n as f64 - even).abs() <= even * 0.1, "{w} holds {n}, even is {even:.0}: {counts:?}");
    }
    assert_eq!(counts.values().sum::<usize>(), total, "every camera held once: {counts:?}");
}

async fn three_workers_share_300_cameras_evenly(engine: Engine) {
    let (reg, _db) = registry(engine, 300, 0).await;
    let (a, b, c) = (worker("w-a"), worker("w-b"), worker("w-c"));
    let now = settle(&reg, &[&a, &b, &c], 1_000, 20).await;
    let held = counts(&reg, now).await;
    within_10_percent(&held, 300);
    // Each worker's own view agrees with the holders, and no camera is in two views.
    let mut seen = BTreeSet::new();
    for w in [&a, &b, &c] {
        let mine = reg.leases_of(&w.id, now).await.unwrap();
        assert_eq!(mine.len(), held[&w.id]);
        for l in mine {
            assert!(seen.insert(l.camera_id.clone()), "{} held twice", l.camera_id);
            assert_eq!(l.epoch, 1, "claimed once");
        }
    }
    let (loads, unheld) = reg.cluster_load(now, &placement()).await.unwrap();
    assert_eq!(unheld, 0);
    assert_eq!(loads.iter().map(|l| l.cameras).sum::<u64>(), 300);
    assert!(loads.iter().all(|l| l.weight == l.cameras * 2), "health cameras weigh 2 each: {loads:?}");
}

async fn a_dead_workers_cameras_move_within_two_lease_times_and_its_writes_are_fenced(engine: Engine) {
    let (reg, _db) = registry(engine, 300, 0).await;
    let (a, b, c) = (worker("w-a"), worker("w-b"), worker("w-c"));
    let mut now = settle(&reg, &[&a, &b, &c], 1_000, 20).await;
    let before = reg.holders(now).await.unwrap();
    let of_c: BTreeMap<String, i64> =
        before.iter().filter(|(_, (w, _))| w == "w-c").map(|(cam, (_, e))| (cam.clone(), *e)).collect();
    assert!(!of_c.is_empty());
    let (cam, epoch) = of_c.iter().next().map(|(c, e)| (c.clone(), *e)).unwrap();
    {
        let mut tx = reg.begin().await.unwrap();
        check_lease(&mut tx, reg.backend(), &cam, "w-c", epoch, now).await.expect("the holder may write");
        tx.rollback().await.unwrap();
    }

    // w-c is killed: it sends nothing more. Within two lease times every camera is held again.
    let killed = now;
    while now < killed + 2 * TTL {
        tick(&reg, &[&a, &b], now).await;
        now += TICK;
    }
    let after = reg.holders(now).await.unwrap();
    assert_eq!(after.len(), 300, "every camera held again within 2 lease times");
    within_10_percent(&counts(&reg, now).await, 300);
    for (cam, old) in &of_c {
        let (holder, epoch) = &after[cam];
        assert_ne!(holder, "w-c");
        assert!(epoch > old, "{cam}: a new holder has a higher epoch ({epoch} after {old})");
    }
    // w-c comes back after the partition and tries to write with what it held: refused.
    let mut tx = reg.begin().await.unwrap();
    match check_lease(&mut tx, reg.backend(), &cam, "w-c", epoch, now).await {
        Err(RegistryError::Fenced { camera, epoch: e, .. }) => assert_eq!((camera.as_str(), e), (cam.as_str(), epoch)),
        other => panic!("a stale holder's write must be fenced, got {other:?}"),
    }
    tx.rollback().await.unwrap();
}

async fn a_returning_worker_takes_cameras_back_a_batch_at_a_time(engine: Engine) {
    let (reg, _db) = registry(engine, 300, 0).await;
    let (a, b, c) = (worker("w-a"), worker("w-b"), worker("w-c"));
    let mut now = settle(&reg, &[&a, &b], 1_000, 20).await;
    within_10_percent(&counts(&reg, now).await, 300);

    // w-c joins: the others give cameras back over the next rounds, at most a batch each.
    let mut gained = Vec::new();
    for _ in 0..10 {
        let moved = tick(&reg, &[&a, &b, &c], now).await;
        now += TICK;
        gained.push(moved["w-c"].0);
        if moved.values().all(|&(c, r)| c == 0 && r == 0) {
            break;
        }
    }
    assert!(gained.iter().all(|&g| g <= 50), "at most a batch per round: {gained:?}");
    assert!(gained.iter().filter(|&&g| g > 0).count() >= 2, "gradually, over several rounds: {gained:?}");
    within_10_percent(&counts(&reg, now).await, 300);
    // Leaving on purpose frees its cameras at once.
    let freed = reg.leave("w-c", now).await.unwrap();
    assert!(freed > 0);
    assert_eq!(reg.holders(now).await.unwrap().len(), 300 - freed);
    let now = settle(&reg, &[&a, &b], now, 20).await;
    within_10_percent(&counts(&reg, now).await, 300);
}

async fn a_moved_camera_is_claimable_only_after_the_hand_off(engine: Engine) {
    let (reg, _db) = registry(engine, 100, 0).await;
    let (a, b) = (worker("w-a"), worker("w-b"));
    let now = settle(&reg, &[&a], 1_000, 5).await;
    assert_eq!(counts(&reg, now).await["w-a"], 100);
    // w-b joins: w-a gives cameras up, and nobody may take them in the same round.
    reg.heartbeat(&a, now, &placement()).await.unwrap();
    reg.heartbeat(&b, now, &placement()).await.unwrap();
    let round = reg.place_all(now, &placement()).await.unwrap();
    let released = round["w-a"].released.clone();
    assert!(!released.is_empty(), "w-a over its share gives cameras up");
    assert!(round.get("w-b").is_none_or(|r| r.claimed.is_empty()), "claimed in the round that released them");
    // Still not before the hand-off time, however often rounds run.
    let early = now + placement().handoff_ms - 1;
    reg.heartbeat(&a, early, &placement()).await.unwrap();
    reg.heartbeat(&b, early, &placement()).await.unwrap();
    let round = reg.place_all(early, &placement()).await.unwrap();
    assert!(round.get("w-b").is_none_or(|r| r.claimed.is_empty()), "claimed before the hand-off time");
    let holders = reg.holders(early).await.unwrap();
    assert!(released.iter().all(|c| !holders.contains_key(c)), "a released camera held during its hand-off");
    // After it, they go to w-b, each with a higher epoch.
    let later = now + placement().handoff_ms;
    reg.heartbeat(&a, later, &placement()).await.unwrap();
    reg.heartbeat(&b, later, &placement()).await.unwrap();
    let round = reg.place_all(later, &placement()).await.unwrap();
    let claimed: BTreeSet<String> = round["w-b"].claimed.iter().map(|l| l.camera_id.clone()).collect();
    assert_eq!(claimed, released.iter().cloned().collect::<BTreeSet<_>>());
}

async fn an_expired_lease_is_not_revived_and_fences_at_once(engine: Engine) {
    let (reg, _db) = registry(engine, 30, 0).await;
    let a = worker("w-a");
    let now = settle(&reg, &[&a], 1_000, 5).await;
    let lease = reg.leases_of("w-a", now).await.unwrap().remove(0);
    // Cut off from the registry past its lease: nobody has claimed the camera, and still the
    // worker may not write.
    let late = lease.expires_ms + 1;
    let mut tx = reg.begin().await.unwrap();
    assert!(matches!(
        check_lease(&mut tx, reg.backend(), &lease.camera_id, "w-a", lease.epoch, late).await,
        Err(RegistryError::Fenced { .. })
    ));
    tx.rollback().await.unwrap();
    // Its next heartbeat does not bring the lease back: the camera is claimed anew, epoch + 1.
    assert!(reg.heartbeat(&a, late, &placement()).await.unwrap().is_empty());
    let r = reg.place_all(late, &placement()).await.unwrap();
    let again = r["w-a"].claimed.iter().find(|l| l.camera_id == lease.camera_id).expect("claimed again");
    assert_eq!(again.epoch, lease.epoch + 1);
}

/// A motion event for `camera`, as a detector on a worker appends it.
fn motion(camera: &str, at: i64) -> RawEvent {
    RawEvent {
        at_ms: at,
        kind: "motion".into(),
        lane: 2,
        key: Some(format!("motion:{camera}:{at}")),
        camera_id: Some(camera.into()),
        ring_id: None,
        payload: format!(r#"{{"camera_id":"{camera}","zone":"z","boxes":[]}}"#),
    }
}

async fn a_worker_s_registry_writes_only_for_the_cameras_it_holds(engine: Engine) {
    let (reg, db) = registry(engine, 20, 0).await;
    let a = worker("w-a");
    let b = worker("w-b");
    let now = settle(&reg, &[&a, &b], 1_000, 5).await;
    // The worker process: its own handle on the registry, fenced with its lease book.
    let clock = tianwang::clock::SimClock::at(now);
    let fenced = Registry::open(&db.url).await.unwrap();
    let book = LeaseBook::new("w-a", std::sync::Arc::new(clock.clone()));
    fenced.fence_writes(book.clone());
    let mine = reg.leases_of("w-a", now).await.unwrap();
    book.set(&mine);
    let held = mine[0].camera_id.clone();
    let other = reg.holders(now).await.unwrap().into_iter().find(|(_, (w, _))| w == "w-b").unwrap().0;
    let before = reg.last_event_position().await.unwrap();

    // Its own camera: events, status, ingest history and passages are written.
    fenced.append_events(&[motion(&held, now)]).await.unwrap();
    fenced.set_status(&held, tianwang::config::CameraStatus::Online, "streaming", now, None).await.unwrap();
    fenced.record_ingest_transition(&held, "connecting", "streaming", "first frame", now).await.unwrap();
    let passage = NewPassage { camera_id: held.clone(), pass_time_ms: now, ..Default::default() };
    fenced.record_passage(&passage, "detect", now, |_| vec![]).await.unwrap();
    assert_eq!(reg.last_event_position().await.unwrap(), before + 1);

    // Another worker's camera: every kind of write is refused, and a batch that mixes the two
    // stores nothing at all.
    let fenced_off = |r: Result<(), RegistryError>| matches!(r, Err(RegistryError::Fenced { .. }));
    assert!(fenced_off(fenced.append_events(&[motion(&other, now)]).await.map(|_| ())));
    assert!(fenced_off(fenced.append_events(&[motion(&held, now + 1), motion(&other, now + 1)]).await.map(|_| ())));
    assert!(fenced_off(
        fenced.set_status(&other, tianwang::config::CameraStatus::Offline, "x", now, None).await.map(|_| ())
    ));
    assert!(fenced_off(fenced.record_ingest_transition(&other, "streaming", "stalled", "x", now).await));
    let theirs = NewPassage { camera_id: other.clone(), pass_time_ms: now, ..Default::default() };
    assert!(fenced_off(fenced.record_passage(&theirs, "detect", now, |_| vec![]).await.map(|_| ())));
    assert_eq!(reg.last_event_position().await.unwrap(), before + 1, "a refused batch stores nothing");
    let status = reg.get_camera(&other).await.unwrap().unwrap().status;
    assert_ne!(status, "offline", "a refused status change is not stored");

    // Past its lease time without a heartbeat, even its own cameras are refused, before anyone
    // else has claimed them; the unfenced handle (a serve node) is not affected.
    clock.set(mine[0].expires_ms + 1);
    assert!(fenced_off(fenced.append_events(&[motion(&held, now + 2)]).await.map(|_| ())));
    reg.append_events(&[motion(&held, now + 3)]).await.unwrap();
    fenced.close().await;
}

async fn a_camera_disabled_while_held_is_given_up(engine: Engine) {
    let (reg, _db) = registry(engine, 10, 0).await;
    let a = worker("w-a");
    let now = settle(&reg, &[&a], 1_000, 5).await;
    assert_eq!(reg.holders(now).await.unwrap().len(), 10);
    for (id, sql) in [
        ("cam-0003", "UPDATE cameras SET enabled = 0 WHERE id = $1"),
        ("cam-0007", "UPDATE cameras SET status = 'decommissioned' WHERE id = $1"),
    ] {
        sqlx::query(sql).bind(id).execute(reg.pool()).await.unwrap();
    }
    tick(&reg, &[&a], now).await;
    let holders = reg.holders(now).await.unwrap();
    assert_eq!(holders.len(), 8);
    assert!(!holders.contains_key("cam-0003") && !holders.contains_key("cam-0007"));
    assert_eq!(reg.leases_of("w-a", now).await.unwrap().len(), 8, "the worker stops them at its next heartbeat");
}

async fn cameras_no_live_worker_runs_are_found_after_a_grace(engine: Engine) {
    use tianwang::config::CameraStatus::Online;
    let (reg, _db) = registry(engine, 6, 0).await;
    // No camera ever placed (a single process runs its cameras): nothing is reported.
    for i in 0..6 {
        reg.set_status(&format!("cam-{i:04}"), Online, "streaming", 500, None).await.unwrap();
    }
    assert!(reg.unheld_streaming(100_000, 15_000).await.unwrap().is_empty());
    let a = worker("w-a");
    let now = settle(&reg, &[&a], 1_000, 5).await;
    assert!(reg.unheld_streaming(now, 15_000).await.unwrap().is_empty(), "held cameras are run");
    // The worker dies: nothing within the grace after its lease lapsed, every camera after it.
    let lapsed = reg.leases_of("w-a", now).await.unwrap()[0].expires_ms;
    assert!(reg.unheld_streaming(lapsed + 14_000, 15_000).await.unwrap().is_empty());
    let found = reg.unheld_streaming(lapsed + 15_000, 15_000).await.unwrap();
    assert_eq!(found.len(), 6, "{found:?}");
    // One that is already offline is not reported again.
    reg.set_status("cam-0000", tianwang::config::CameraStatus::Offline, "x", lapsed, None).await.unwrap();
    assert_eq!(reg.unheld_streaming(lapsed + 15_000, 15_000).await.unwrap().len(), 5);
}

async fn a_worker_keeps_a_crews_maintenance_set_elsewhere(engine: Engine) {
    use tianwang::config::CameraStatus;
    use tianwang::maintenance::health::HealthKeeper;
    let (reg, _db) = registry(engine, 2, 0).await;
    let serve = HealthKeeper::start(reg.clone()).await.unwrap();
    let worker = HealthKeeper::start(reg.clone()).await.unwrap();
    let status = |id: &'static str| {
        let reg = reg.clone();
        async move { reg.get_camera(id).await.unwrap().unwrap().status }
    };
    worker.stream("cam-0000", true, "first frame", 1_000).await;
    assert_eq!(status("cam-0000").await, "online");
    // A crew puts it in maintenance on a serve node; the worker reads it at its next heartbeat
    // and its stream changes no longer show.
    serve.set_maintenance("cam-0000", true, "lens cleaning", 2_000).await.unwrap();
    worker.sync_maintenance(3_000).await.unwrap();
    worker.stream("cam-0000", false, "connection refused", 4_000).await;
    assert_eq!(status("cam-0000").await, CameraStatus::Maintenance.as_str());
    // Taken out of it on the serve node: the worker shows what its stream says.
    serve.set_maintenance("cam-0000", false, "done", 5_000).await.unwrap();
    worker.sync_maintenance(6_000).await.unwrap();
    assert_eq!(status("cam-0000").await, "offline");
}

async fn limits_and_profiles_bound_what_a_worker_takes(engine: Engine) {
    let (reg, _db) = registry(engine, 100, 20).await;
    let small = WorkerSpec { max_cameras: 30, ..worker("w-small") };
    let street_only = WorkerSpec { profiles: vec![Profile::Street], ..worker("w-street") };
    let big = worker("w-big");
    let now = settle(&reg, &[&small, &street_only, &big], 1_000, 30).await;
    let holders = reg.holders(now).await.unwrap();
    assert_eq!(holders.len(), 120, "every camera placed");
    let n = |w: &str| holders.values().filter(|(h, _)| h == w).count();
    assert!(n("w-small") <= 30, "max_cameras holds: {}", n("w-small"));
    for (cam, (h, _)) in &holders {
        let idx: usize = cam[4..].parse().unwrap();
        if h == "w-street" {
            assert!(idx >= 100, "{cam} is a health camera on a street-only worker");
        }
    }
    // Weighed by profile: 20 street cameras (60 each) outweigh 100 health ones (2 each), so the
    // load is even in weight, not in count.
    let (loads, unheld) = reg.cluster_load(now, &placement()).await.unwrap();
    assert_eq!(unheld, 0);
    let total: u64 = loads.iter().map(|l| l.weight).sum();
    assert_eq!(total, 100 * 2 + 20 * 60);
}

async fn concurrent_rounds_never_give_a_camera_to_two_workers(engine: Engine) {
    let (reg, _db) = registry(engine, 300, 0).await;
    let workers: Vec<WorkerSpec> = (0..6).map(|i| worker(&format!("w-{i}"))).collect();
    let mut now = 1_000;
    for _ in 0..8 {
        for w in &workers {
            reg.heartbeat(w, now, &placement()).await.unwrap();
        }
        // Three nodes run a round at once (as if the period had passed for each).
        let p = placement();
        let rounds = futures_util::future::join_all((0..3).map(|_| reg.place_all(now, &p))).await;
        let mut claimed = BTreeSet::new();
        for r in rounds {
            for l in r.unwrap().into_values().flat_map(|r| r.claimed) {
                assert!(claimed.insert(l.camera_id.clone()), "{} claimed twice in one tick", l.camera_id);
            }
        }
        now += TICK;
    }
    let mut seen = BTreeSet::new();
    for w in &workers {
        for l in reg.leases_of(&w.id, now).await.unwrap() {
            assert!(seen.insert(l.camera_id.clone()), "{} held by two workers", l.camera_id);
        }
    }
    assert_eq!(seen.len(), 300);
    within_10_percent(&counts(&reg, now).await, 300);
}

/// Every node may ask for a round on every heartbeat; the registry runs one per period.
async fn one_round_per_period_whoever_asks(engine: Engine) {
    let (reg, _db) = registry(engine, 30, 0).await;
    let a = worker("w-a");
    reg.heartbeat(&a, 1_000, &placement()).await.unwrap();
    let p = placement();
    let asks = futures_util::future::join_all((0..4).map(|_| reg.place_if_due(1_000, TICK, &p))).await;
    let ran: Vec<_> = asks.into_iter().map(|r| r.unwrap()).filter(Option::is_some).collect();
    assert_eq!(ran.len(), 1, "one of four concurrent asks runs the round");
    assert_eq!(ran[0].as_ref().unwrap()["w-a"].claimed.len(), 30);
    assert!(reg.place_if_due(1_000 + TICK - 1, TICK, &p).await.unwrap().is_none(), "not due within the period");
    assert!(reg.place_if_due(1_000 + TICK, TICK, &p).await.unwrap().is_some(), "due once the period has passed");
}

/// `GET /api/v1/cluster`: the live workers with the cameras and weight of their live leases, the
/// cameras no live worker holds, and each consumer's position against its head.
async fn the_cluster_view_shows_workers_their_load_and_unheld_cameras(engine: Engine) {
    let db = TestDb::new(engine).await;
    let app = TestApp::spawn(&common::demo_config(), &db).await;
    let (code, v, body) = app.get("/api/v1/cluster").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(v["workers"].as_array().unwrap().len(), 0, "a single node has no workers: {v}");
    let placeable = v["cameras_unheld"].as_u64().unwrap();
    assert!(placeable > 0, "every enabled camera is unheld on a single node: {v}");
    let consumers = v["consumers"].as_array().unwrap();
    assert!(consumers.iter().any(|c| c["consumer"] == "alerts.urgent" && c["reads"] == "events"), "{v}");
    assert!(
        consumers.iter().all(|c| c["behind"].as_i64().unwrap() >= 0 && c["head"].as_i64() >= c["position"].as_i64())
    );

    // A worker heartbeats and places: it appears with what it holds.
    let now = app.clock.now_ms();
    let w = WorkerSpec { cores: 4, ..worker("w-view") };
    app.registry.heartbeat(&w, now, &Placement::default()).await.unwrap();
    let round = app.registry.place_all(now, &Placement::default()).await.unwrap();
    let r = &round["w-view"];
    assert!(!r.claimed.is_empty());
    let (_, v, _) = app.get("/api/v1/cluster").await;
    let workers = v["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1, "{v}");
    assert_eq!(workers[0]["id"], "w-view");
    assert_eq!(workers[0]["cores"], 4);
    assert_eq!(workers[0]["cameras"].as_u64().unwrap() as usize, r.claimed.len());
    assert_eq!(v["cameras_unheld"].as_u64().unwrap(), placeable - r.claimed.len() as u64);
    // Once its lease time has passed without a heartbeat, it is gone and its cameras unheld.
    app.clock.advance(Placement::default().ttl_ms + 1);
    let (_, v, _) = app.get("/api/v1/cluster").await;
    assert_eq!(v["workers"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["cameras_unheld"].as_u64().unwrap(), placeable);
    app.stop().await;
}

/// A heartbeat naming the lease generation the worker knew reads nothing back while nothing
/// changed, and the full set whenever anything did: whatever the worker makes of the answers is
/// at every step what a full read gives (a dead worker's cameras claimed, the worker back,
/// rebalancing, a camera disabled).
#[derive(Default)]
struct Known {
    /// Each worker's generation and leases (camera → epoch), as its heartbeats told it.
    by_worker: BTreeMap<String, (Option<i64>, BTreeMap<String, i64>)>,
    unchanged: usize,
    read_back: usize,
}

/// A heartbeat as the worker makes it: naming the generation it knew, keeping its leases when the
/// answer is "unchanged". Checks what it then knows against a full read; answers how many it holds.
async fn beat(reg: &Registry, w: &WorkerSpec, now: i64, known: &mut Known) -> usize {
    let k = known.by_worker.entry(w.id.clone()).or_default();
    let answer = reg.heartbeat_since(w, now, &placement(), k.0).await.unwrap();
    match answer.leases {
        Some(l) => {
            known.read_back += 1;
            k.1 = l.iter().map(|l| (l.camera_id.clone(), l.epoch)).collect();
        }
        None => {
            assert_eq!(k.0, Some(answer.generation));
            known.unchanged += 1;
        }
    }
    k.0 = Some(answer.generation);
    let truth: BTreeMap<String, i64> =
        reg.leases_of(&w.id, now).await.unwrap().iter().map(|l| (l.camera_id.clone(), l.epoch)).collect();
    assert_eq!(k.1, truth, "{} at {now}", w.id);
    k.1.len()
}

async fn a_heartbeat_reads_the_leases_back_only_when_they_changed(engine: Engine) {
    let (reg, _db) = registry(engine, 40, 0).await;
    let p = placement();
    let (a, b) = (worker("w-a"), worker("w-b"));
    let mut known = Known::default();
    let mut now = 1_000;
    // Both start and share the cameras.
    for _ in 0..12 {
        beat(&reg, &a, now, &mut known).await;
        beat(&reg, &b, now, &mut known).await;
        reg.place_all(now, &p).await.unwrap();
        now += TICK;
    }
    assert_eq!(beat(&reg, &a, now, &mut known).await + beat(&reg, &b, now, &mut known).await, 40);
    // Settled: nothing is read back.
    let before = known.unchanged;
    for _ in 0..3 {
        reg.place_all(now, &p).await.unwrap();
        now += TICK;
        beat(&reg, &a, now, &mut known).await;
        beat(&reg, &b, now, &mut known).await;
    }
    assert_eq!(known.unchanged - before, 6, "a settled heartbeat reads nothing back");
    // b dies: a takes its cameras once its lease lapses.
    for _ in 0..8 {
        beat(&reg, &a, now, &mut known).await;
        reg.place_all(now, &p).await.unwrap();
        now += TICK;
    }
    assert_eq!(beat(&reg, &a, now, &mut known).await, 40);
    // b comes back: its old leases are gone (read back, empty), then it is given cameras again.
    assert_eq!(beat(&reg, &b, now, &mut known).await, 0);
    for _ in 0..12 {
        beat(&reg, &a, now, &mut known).await;
        beat(&reg, &b, now, &mut known).await;
        reg.place_all(now, &p).await.unwrap();
        now += TICK;
    }
    assert!(beat(&reg, &b, now, &mut known).await > 0);
    // A camera disabled is given up by the next round: its holder hears of it.
    let holder = reg.holders(now).await.unwrap()["cam-0005"].0.clone();
    sqlx::query("UPDATE cameras SET enabled = 0 WHERE id = 'cam-0005'").execute(reg.pool()).await.unwrap();
    reg.place_all(now, &p).await.unwrap();
    now += TICK;
    let w = if holder == "w-a" { &a } else { &b };
    beat(&reg, w, now, &mut known).await;
    assert!(!known.by_worker[&holder].1.contains_key("cam-0005"));
    assert!(known.read_back >= 6, "{}", known.read_back);
}

on_both_engines!(
    a_heartbeat_reads_the_leases_back_only_when_they_changed,
    the_cluster_view_shows_workers_their_load_and_unheld_cameras,
    three_workers_share_300_cameras_evenly,
    a_dead_workers_cameras_move_within_two_lease_times_and_its_writes_are_fenced,
    a_returning_worker_takes_cameras_back_a_batch_at_a_time,
    an_expired_lease_is_not_revived_and_fences_at_once,
    a_moved_camera_is_claimable_only_after_the_hand_off,
    a_camera_disabled_while_held_is_given_up,
    cameras_no_live_worker_runs_are_found_after_a_grace,
    a_worker_keeps_a_crews_maintenance_set_elsewhere,
    a_worker_s_registry_writes_only_for_the_cameras_it_holds,
    limits_and_profiles_bound_what_a_worker_takes,
    concurrent_rounds_never_give_a_camera_to_two_workers,
    one_round_per_period_whoever_asks,
);
