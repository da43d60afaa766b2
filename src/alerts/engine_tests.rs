use super::*;

const T0: Millis = 1_780_000_000_000;

fn hit(plate: &str, at_ms: Millis) -> Signal {
    Signal::Event(Occurrence {
        kind: AlertKind::WatchlistHit,
        key: format!("watchlist_hit:{plate}"),
        title: format!("watchlist {plate}"),
        cameras: vec!["k1".into()],
        grid_cell: None,
        ring_id: None,
        zone: None,
        detail: serde_json::Value::Null,
        at_ms,
    })
}

fn down(cam: &str, cell: &str, at_ms: Millis) -> Signal {
    Signal::CameraDown {
        camera: cam.into(),
        name: cam.into(),
        grid_cell: Some(cell.into()),
        reason: "no frames".into(),
        at_ms,
    }
}

fn raised(a: &[Action]) -> Vec<&Occurrence> {
    a.iter().filter_map(|x| if let Action::Raise { occurrence, .. } = x { Some(occurrence) } else { None }).collect()
}

#[test]
fn repeats_of_an_open_alert_are_counted_and_renotify_only_after_a_quiet_spell() {
    let mut e = Engine::new(EngineConfig::default());
    assert_eq!(raised(&e.signal(hit("豫A12345", T0))).len(), 1);
    let a = e.signal(hit("豫A12345", T0 + 60_000));
    assert_eq!(
        a,
        vec![Action::Repeat { key: "watchlist_hit:豫A12345".into(), at_ms: T0 + 60_000, count: 2, renotify: false }]
    );
    // Quiet for 3 minutes (window 2): same alert, notified again.
    let a = e.signal(hit("豫A12345", T0 + 240_000));
    assert!(matches!(a[0], Action::Repeat { count: 3, renotify: true, .. }), "{a:?}");
    assert_eq!(raised(&e.signal(hit("豫B00001", T0 + 1))).len(), 1, "another plate is another alert");
    assert_eq!(e.stats.deduplicated, 1);
}

#[test]
fn cooldown_after_resolution() {
    let mut e = Engine::new(EngineConfig::default());
    e.signal(down("c1", "cell", T0));
    assert_eq!(raised(&e.tick(T0 + 60_000)).len(), 1);
    e.signal(Signal::Resolved { key: "camera_offline:c1".into(), at_ms: T0 + 120_000 });
    e.signal(Signal::CameraUp { camera: "c1".into(), at_ms: T0 + 121_000 });
    // Down again two minutes later: within the 10-minute cooldown, nothing.
    e.signal(down("c1", "cell", T0 + 240_000));
    assert!(raised(&e.tick(T0 + 300_000)).is_empty());
    assert_eq!(e.stats.in_cooldown, 1);
    // After the cooldown it raises again.
    e.signal(down("c1", "cell", T0 + 800_000));
    assert_eq!(raised(&e.tick(T0 + 860_000)).len(), 1);
}

#[test]
fn escalation_until_acknowledged() {
    let mut e = Engine::new(EngineConfig::default());
    let ring = |at| {
        Signal::Event(Occurrence {
            kind: AlertKind::RingOpened,
            key: "ring_opened:inner".into(),
            title: "inner ring open".into(),
            cameras: vec![],
            grid_cell: None,
            ring_id: Some("inner".into()),
            zone: None,
            detail: serde_json::Value::Null,
            at_ms: at,
        })
    };
    // A ring open must stay open for the grace period (one minute) before it raises.
    assert!(e.signal(ring(T0)).is_empty());
    let a = e.tick(T0 + 60_000);
    assert!(matches!(a[0], Action::Raise { severity: Severity::Major, .. }), "{a:?}");
    assert!(e.tick(T0 + 60_000 + 10 * 60_000 - 1).is_empty());
    let a = e.tick(T0 + 60_000 + 10 * 60_000);
    assert_eq!(
        a,
        vec![Action::Escalate {
            key: "ring_opened:inner".into(),
            severity: Severity::Critical,
            level: 1,
            at_ms: T0 + 660_000
        }]
    );
    assert!(e.tick(T0 + 16 * 60_000).is_empty());
    assert_eq!(e.tick(T0 + 21 * 60_000).len(), 1, "again every period");
    e.signal(Signal::Acknowledged { key: "ring_opened:inner".into() });
    assert!(e.tick(T0 + 60 * 60_000).is_empty(), "acknowledged: no more escalation");
}

#[test]
fn a_storm_of_cameras_in_one_cell_is_one_alert() {
    let mut e = Engine::new(EngineConfig::default());
    for i in 0..500 {
        e.signal(down(&format!("site-a-{i:03}"), "site-a", T0 + i));
    }
    e.signal(down("lone-1", "site-b", T0));
    e.signal(down("lone-2", "site-c", T0));
    assert!(e.tick(T0 + 59_000).is_empty(), "grace period");
    let a = e.tick(T0 + 61_000);
    let r = raised(&a);
    assert_eq!(r.len(), 3, "{:?}", r.iter().map(|o| &o.title).collect::<Vec<_>>());
    let group = r.iter().find(|o| o.grid_cell.as_deref() == Some("site-a")).unwrap();
    assert_eq!(group.cameras.len(), 500);
    assert_eq!(group.title, "500 cameras offline in site-a");
    assert_eq!(e.stats.grouped_cameras, 500);
    // They come back one by one; the last one says so.
    let mut last = Vec::new();
    for i in 0..500 {
        last = e.signal(Signal::CameraUp { camera: format!("site-a-{i:03}"), at_ms: T0 + 120_000 });
    }
    assert!(matches!(&last[0], Action::Recovered { all_back: true, .. }), "{last:?}");
}

#[test]
fn a_camera_back_within_the_grace_period_raises_nothing() {
    let mut e = Engine::new(EngineConfig::default());
    e.signal(down("c1", "cell", T0));
    e.signal(Signal::CameraUp { camera: "c1".into(), at_ms: T0 + 30_000 });
    assert!(e.tick(T0 + 120_000).is_empty());
    assert_eq!(e.stats.offline_within_grace, 1);
}

#[test]
fn maintenance_suppresses() {
    let mut e = Engine::new(EngineConfig::default());
    e.signal(Signal::Maintenance { camera: "k1".into(), on: true });
    e.signal(down("k1", "cell", T0));
    assert!(e.tick(T0 + 120_000).is_empty());
    assert!(e.signal(hit("豫A12345", T0)).is_empty());
    assert_eq!(e.stats.in_maintenance, 2);
    e.signal(Signal::Maintenance { camera: "k1".into(), on: false });
    assert_eq!(raised(&e.signal(hit("豫A12345", T0 + 1))).len(), 1);
}

fn motion(cam: &str, zone: &str, at_ms: Millis) -> Signal {
    Signal::Event(Occurrence {
        kind: AlertKind::Motion,
        key: format!("motion:{cam}:{zone}"),
        title: format!("motion in {zone}"),
        cameras: vec![cam.into()],
        grid_cell: None,
        ring_id: None,
        zone: Some(zone.into()),
        detail: serde_json::Value::Null,
        at_ms,
    })
}

#[test]
fn motion_alerts_only_in_armed_zones_during_their_schedule() {
    let cfg = EngineConfig {
        armed_zones: vec![
            ArmedZone { camera: "bank".into(), zone: "vault".into(), windows: vec![(22 * 60, 6 * 60)] },
            ArmedZone { camera: "yard".into(), zone: "*".into(), windows: vec![] },
        ],
        zone: crate::clock::SiteZone::parse("+08:00").unwrap(),
        ..EngineConfig::default()
    };
    let mut e = Engine::new(cfg);
    // 2026-11-30 15:00 UTC = 23:00 in +08:00: armed across midnight.
    let night = 1_796_050_800_000;
    assert_eq!(raised(&e.signal(motion("bank", "vault", night))).len(), 1);
    // 04:00 UTC = 12:00 local: disarmed.
    let noon = night + 13 * 3_600_000;
    assert!(e.signal(motion("bank", "vault", noon)).is_empty());
    // 05:59 local next morning: still armed (a new occurrence of the open alert).
    assert!(matches!(e.signal(motion("bank", "vault", night + 7 * 3_600_000 - 60_000))[0], Action::Repeat { .. }));
    // Another zone of the same camera, or a camera with no armed zone: nothing.
    assert!(e.signal(motion("bank", "lobby", night)).is_empty());
    assert!(e.signal(motion("street-9", "road", night)).is_empty());
    // Armed always, any zone.
    assert_eq!(raised(&e.signal(motion("yard", "gate", noon))).len(), 1);
    assert_eq!(e.stats.motion_disarmed, 3);
}

/// A schedule in local time follows the clocks when they change: 22:00–06:00 in Helsinki starts
/// at 20:00 UTC in winter and at 19:00 UTC in summer (the standard offset alone was an hour off
/// for half the year).
#[test]
fn arming_windows_follow_daylight_saving() {
    let cfg = EngineConfig {
        armed_zones: vec![ArmedZone { camera: "bank".into(), zone: "*".into(), windows: vec![(22 * 60, 6 * 60)] }],
        zone: crate::clock::SiteZone::parse("Europe/Helsinki").unwrap(),
        ..EngineConfig::default()
    };
    let mut e = Engine::new(cfg);
    let winter = 1_768_435_200_000; // 2026-01-15 00:00 UTC
    let summer = 1_784_073_600_000; // 2026-07-15 00:00 UTC
    let h = 3_600_000;
    // Winter (+02:00): 19:30 UTC is 21:30 local, 20:30 UTC is 22:30.
    assert!(e.signal(motion("bank", "vault", winter + 19 * h + h / 2)).is_empty());
    assert_eq!(raised(&e.signal(motion("bank", "vault", winter + 20 * h + h / 2))).len(), 1);
    // Summer (+03:00): 19:30 UTC is already 22:30 local; 03:30 UTC is 06:30, disarmed.
    assert!(!e.signal(motion("bank", "vault", summer + 19 * h + h / 2)).is_empty(), "armed (the open alert again)");
    assert!(e.signal(motion("bank", "vault", summer + 24 * h + 3 * h + h / 2)).is_empty());
}

#[test]
fn a_ring_that_closes_within_the_grace_period_raises_nothing() {
    let mut e = Engine::new(EngineConfig::default());
    let open = Signal::Event(Occurrence {
        kind: AlertKind::RingOpened,
        key: "ring_opened:middle".into(),
        title: "middle ring open".into(),
        cameras: vec![],
        grid_cell: None,
        ring_id: Some("middle".into()),
        zone: None,
        detail: serde_json::Value::Null,
        at_ms: T0,
    });
    assert!(e.signal(open).is_empty());
    let closed = Signal::CauseGone { key: "ring_opened:middle".into(), note: "closed".into(), at_ms: T0 + 20_000 };
    assert!(e.signal(closed).is_empty(), "nothing was told, nothing to resolve");
    assert!(e.tick(T0 + 120_000).is_empty());
    assert_eq!(e.stats.ring_open_within_grace, 1);
}

#[test]
fn a_gone_cause_resolves_the_open_alert_and_starts_its_cooldown() {
    let mut e = Engine::new(EngineConfig::default());
    let fault = |at| {
        Signal::Event(Occurrence {
            kind: AlertKind::QualityFault,
            key: "quality_fault:c1:blur".into(),
            title: "blur".into(),
            cameras: vec!["c1".into()],
            grid_cell: None,
            ring_id: None,
            zone: None,
            detail: serde_json::Value::Null,
            at_ms: at,
        })
    };
    assert_eq!(raised(&e.signal(fault(T0))).len(), 1);
    let gone =
        e.signal(Signal::CauseGone { key: "quality_fault:c1:blur".into(), note: "healthy".into(), at_ms: T0 + 1 });
    assert_eq!(
        gone,
        vec![Action::Resolve { key: "quality_fault:c1:blur".into(), note: "healthy".into(), at_ms: T0 + 1 }]
    );
    assert!(!e.is_open("quality_fault:c1:blur"));
    // Within the 30-minute cooldown the fault raises nothing; after it, a new alert.
    assert!(e.signal(fault(T0 + 60_000)).is_empty());
    assert_eq!(raised(&e.signal(fault(T0 + 31 * 60_000))).len(), 1);
}

#[test]
fn the_last_camera_back_resolves_the_offline_alert_in_the_engine_too() {
    let mut e = Engine::new(EngineConfig::default());
    e.signal(down("c1", "cell", T0));
    assert_eq!(raised(&e.tick(T0 + 60_000)).len(), 1);
    let a = e.signal(Signal::CameraUp { camera: "c1".into(), at_ms: T0 + 90_000 });
    assert!(matches!(&a[0], Action::Recovered { all_back: true, .. }), "{a:?}");
    assert!(e.open_keys().is_empty());
    // A resolved alert no longer escalates.
    assert!(e.tick(T0 + 3_600_000).is_empty());
}

#[test]
fn times_near_the_end_of_time_do_not_overflow() {
    let mut e = Engine::new(EngineConfig::default());
    assert_eq!(raised(&e.signal(hit("豫A12345", i64::MAX - 1))).len(), 1);
    assert!(matches!(e.signal(hit("豫A12345", i64::MIN))[0], Action::Repeat { .. }));
    assert!(e.tick(i64::MAX).len() <= 1);
}

#[test]
fn a_restart_restores_cooldowns_and_open_alerts() {
    let mut e = Engine::new(EngineConfig::default());
    e.restore(&Restored {
        key: "watchlist_hit:豫A12345".into(),
        kind: AlertKind::WatchlistHit,
        severity: Severity::Critical,
        last_ms: T0,
        count: 4,
        acknowledged: true,
        level: 0,
        cameras: vec!["k1".into()],
    });
    assert!(matches!(e.signal(hit("豫A12345", T0 + 1))[0], Action::Repeat { count: 5, .. }));
    e.restore_resolved("camera_offline:c9", AlertKind::CameraOffline, T0);
    e.signal(down("c9", "cell", T0 + 60_000));
    assert!(raised(&e.tick(T0 + 2 * 60_000)).is_empty(), "still cooling down after the restart");
}
