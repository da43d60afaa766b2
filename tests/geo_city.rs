//! Rings and interception on a synthetic city whose answers are computed by hand
//! (tests/common/city.rs describes it).

mod common;

use common::city::*;
use tianwang::config::CameraStatus;
use tianwang::geo::model::{GeoInputs, RingInput};
use tianwang::geo::rings::GuardRule;
use tianwang::geo::{GeoModel, Xy};

#[test]
fn every_road_crossing_a_ring_is_read_when_all_checkpoints_are_up() {
    let m = city();
    let states = m.ring_states(&GuardRule::default());
    let inner = states.iter().find(|r| r.id == "inner").unwrap();
    let middle = states.iter().find(|r| r.id == "middle").unwrap();
    assert_eq!((inner.crossings, middle.crossings), (4, 12));
    assert!(!inner.open && !middle.open, "{inner:?}\n{middle:?}");
    assert!(inner.leaks.is_empty() && middle.leaks.is_empty());
    assert!((middle.area_km2 - 0.81).abs() < 0.001, "{}", middle.area_km2);
}

#[test]
fn one_checkpoint_down_opens_its_ring_with_exactly_its_road_leaking() {
    let mut m = city();
    m.set_statuses([("mid-e-300", CameraStatus::Offline)]);
    let states = m.ring_states(&GuardRule::default());
    let inner = states.iter().find(|r| r.id == "inner").unwrap();
    let middle = states.iter().find(|r| r.id == "middle").unwrap();
    assert!(!inner.open, "the inner ring does not depend on a middle checkpoint");
    assert!(middle.open);
    assert_eq!(middle.down, vec!["mid-e-300".to_string()]);
    assert_eq!(middle.leaks.len(), 1, "{:?}", middle.leaks);
    let leak = &middle.leaks[0];
    // Street y = 300 crosses the east edge x = 450 at (450, 300).
    assert_eq!(leak.road_id, "ew300");
    let at = proj().fwd(leak.lon, leak.lat);
    assert!(at.dist(Xy::new(450.0, 300.0)) < 0.5, "{at:?}");
    assert_eq!(leak.guarded_when_up_by, vec!["mid-e-300".to_string()]);
}

#[test]
fn a_checkpoint_looking_the_wrong_way_leaves_a_leak_by_design() {
    let inner = ring_checkpoints("in", 150.0)
        .into_iter()
        .map(|mut c| {
            if c.id == "in-n-0" {
                c.bearing_deg = 90.0; // looks across the street, not along it
            }
            c
        })
        .collect::<Vec<_>>();
    let ring = RingInput {
        id: "inner".into(),
        name: "inner".into(),
        level: 1,
        members: inner.iter().map(|c| c.id.clone()).collect(),
        polygon: Some(square(150.0)),
    };
    let m = GeoModel::build(GeoInputs { cameras: inner, roads: roads(), rings: vec![ring], ..Default::default() });
    let st = &m.ring_states(&GuardRule::default())[0];
    assert!(st.open && st.down.is_empty());
    assert_eq!(st.leaks.len(), 1);
    assert_eq!(st.leaks[0].road_id, "ns0");
    assert!(st.leaks[0].guarded_when_up_by.is_empty(), "no checkpoint would read it even when all are up");
}

/// Hand-computed: primary 50 km/h = 13.889 m/s (72 ms/m), residential 25 km/h (144 ms/m).
fn eta(plan: &[tianwang::geo::rings::RingPlan], ring: &str, cam: &str) -> f64 {
    let r = plan.iter().find(|r| r.ring_id == ring).unwrap();
    r.checkpoints.iter().find(|c| c.camera_id == cam).unwrap().eta_s.unwrap()
}

#[test]
fn interception_picks_the_rings_innermost_first_with_shortest_path_etas() {
    let m = city();
    // Incident on the avenue y = 0 at x = 100.
    let plan = m.interception_plan(Xy::new(100.0, 0.0).plus(proj().fwd(m.proj.lon0, m.proj.lat0)), 150.0);
    assert_eq!(plan.iter().map(|r| r.ring_id.as_str()).collect::<Vec<_>>(), ["inner", "middle"]);
    assert_eq!(plan[0].checkpoints.len(), 4);
    assert_eq!(plan[1].checkpoints.len(), 12);
    let cases = [
        // East along the avenue 50 m.
        ("inner", "in-e-0", 50.0 * 0.072),
        // West 100 m on the avenue, north 150 m on x = 0.
        ("inner", "in-n-0", 100.0 * 0.072 + 150.0 * 0.144),
        ("middle", "mid-e-0", 350.0 * 0.072),
        ("middle", "mid-n-0", 100.0 * 0.072 + 450.0 * 0.144),
        // x = 300 is one-way southbound: round by x = 0 to y = 600, east 300, south 150.
        ("middle", "mid-n-300", 100.0 * 0.072 + 600.0 * 0.144 + 300.0 * 0.144 + 150.0 * 0.144),
        // Southbound on x = 300 is allowed: east 200 on the avenue... then south 450.
        ("middle", "mid-s-300", 200.0 * 0.072 + 450.0 * 0.144),
    ];
    for (ring, cam, want) in cases {
        let got = eta(&plan, ring, cam);
        assert!((got - want).abs() < 0.05, "{cam}: {got:.3} s, hand-computed {want:.3} s");
    }
}

#[test]
fn outside_every_ring_there_is_nothing_to_arm() {
    let m = city();
    assert!(m.interception_plan(m.proj.fwd(m.proj.lon0, m.proj.lat0).plus(Xy::new(800.0, 800.0)), 150.0).is_empty());
}

#[test]
fn a_road_through_a_ring_vertex_at_a_node_crosses_once() {
    // The outline's vertices are the checkpoints themselves, standing on their roads' nodes.
    let (mut cams, mut roads, _) = city_parts();
    cams.retain(|c| c.id.starts_with("in-"));
    for c in cams.iter_mut() {
        // Onto the street centre line, where the streets have a node.
        let p = proj().fwd(c.lon, c.lat);
        let on = Xy::new(
            (p.x / 150.0).round() * 150.0 * (p.x.abs() > 100.0) as i32 as f64,
            (p.y / 150.0).round() * 150.0 * (p.y.abs() > 100.0) as i32 as f64,
        );
        [c.lon, c.lat] = proj().inv(on);
    }
    for r in roads.iter_mut() {
        // Split every street at ±150 so that the vertices are nodes.
        let pts: Vec<Xy> = r.coords.iter().map(|c| proj().fwd(c[0], c[1])).collect();
        let mut out = Vec::new();
        for w in pts.windows(2) {
            out.push(w[0]);
            for cut in [-150.0, 150.0] {
                let (a, b) = (w[0], w[1]);
                let along_x = (a.y - b.y).abs() < 1e-6;
                let (lo, hi) = if along_x { (a.x.min(b.x), a.x.max(b.x)) } else { (a.y.min(b.y), a.y.max(b.y)) };
                if cut > lo && cut < hi {
                    out.push(if along_x { Xy::new(cut, a.y) } else { Xy::new(a.x, cut) });
                }
            }
        }
        out.push(*pts.last().unwrap());
        r.coords = out.iter().map(|p| proj().inv(*p)).collect();
    }
    let members: Vec<String> = ["in-n-0", "in-e-0", "in-s-0", "in-w-0"].iter().map(|s| s.to_string()).collect();
    let ring = RingInput { id: "diamond".into(), name: "diamond".into(), level: 1, members, polygon: None };
    let m = GeoModel::build(GeoInputs { cameras: cams, roads, rings: vec![ring], ..Default::default() });
    let st = &m.ring_states(&GuardRule::default())[0];
    // The diamond's four vertices sit on the two streets through the centre: four crossings.
    assert_eq!(st.crossings, 4, "{st:?}");
}

fn cam_at(id: &str, x: f64, y: f64, bearing: f64, (w, h): (u32, u32)) -> tianwang::geo::CamGeo {
    let mut c = checkpoint(id, x, y, bearing);
    c.kind = tianwang::config::CameraKind::Entrance;
    c.width_px = w;
    c.height_px = h;
    c.hfov_deg = 40.0;
    c.mounting_height_m = 6.0;
    c
}

/// An entrance 10 m south of the avenue at x = 500, four 4K cameras with 40° lenses: A and B at
/// the gate looking east and west, C 60 m east looking west, D 60 m west looking east. Each sees
/// the avenue from 3 / tan 20° = 8.24 m to 84.27 m (observe: 3840 / (2 tan 20° · 62.5) = 84.39 m
/// slant, 4.5 m above a face). Every metre 50 m each way is seen by two of them.
fn entrance_city(states: &[(&str, CameraStatus)], c_resolution: (u32, u32)) -> GeoModel {
    let uhd = (3840, 2160);
    let cams = vec![
        cam_at("A", 500.0, -3.0, 90.0, uhd),
        cam_at("B", 500.0, -3.0, 270.0, uhd),
        cam_at("C", 560.0, 3.0, 270.0, c_resolution),
        cam_at("D", 440.0, 3.0, 90.0, uhd),
    ];
    let [lon, lat] = ll(500.0, -10.0);
    let ent = tianwang::geo::input::EntranceInput {
        id: "gate".into(),
        name: "No. 1 Middle School".into(),
        road: Some("East-west 0".into()),
        lon,
        lat,
        grid_cell: None,
    };
    let mut m =
        GeoModel::build(GeoInputs { cameras: cams, roads: roads(), entrances: vec![ent], ..Default::default() });
    m.set_statuses(states.iter().copied());
    m
}

#[test]
fn entrance_rule_with_hand_computed_shortfalls() {
    use tianwang::geo::entrance::EntranceRule;
    let rule = EntranceRule::default();
    let ok = &entrance_city(&[], (3840, 2160)).check_entrances(&rule)[0];
    assert!(ok.compliant, "{ok:?}");
    assert_eq!(
        ok.sides.iter().map(|s| (s.side.as_str(), s.length_m.round())).collect::<Vec<_>>(),
        [("left", 50.0), ("right", 50.0)]
    );

    // D offline: east (right, facing the avenue from the gate) 500–508.24 only C;
    // west (left) 450–475.73 only B and 491.76–500 only C.
    let down = &entrance_city(&[("D", CameraStatus::Offline)], (3840, 2160)).check_entrances(&rule)[0];
    assert!(!down.compliant);
    let short = |side: &str| down.sides.iter().find(|s| s.side == side).unwrap().short_m;
    assert!((short("right") - 8.24).abs() < 0.1, "{down:?}");
    assert!((short("left") - (25.73 + 8.24)).abs() < 0.2, "{down:?}");
    assert!(down.problems.iter().any(|p| p.contains("not online") && p.contains('D')), "{:?}", down.problems);

    // C below HD: it sees the stretch but does not count.
    let sd = &entrance_city(&[], (1280, 720)).check_entrances(&rule)[0];
    assert!(!sd.compliant);
    assert!(sd.problems.iter().any(|p| p.contains("below HD") && p.contains('C')), "{:?}", sd.problems);
    let c = sd.cameras.iter().find(|c| c.id == "C").unwrap();
    assert!(!c.qualifies && c.seen_m > 0.0);
}

/// After camera state changes, checking again only the entrances a changed camera sees gives the
/// same checks as checking every entrance (a generated city, 20 rounds of random changes, the
/// changed cameras chosen among those that see some entrance's stretch half of the time).
#[test]
fn entrance_rechecks_after_state_changes_equal_a_full_check() {
    use std::collections::HashSet;
    use tianwang::geo::entrance::EntranceRule;
    use tianwang::sim::city::{CitySpec, generate};
    let mut m =
        GeoModel::build(generate(&CitySpec { streets: 21, cameras: 20_000, entrances: 400, ..CitySpec::reference() }));
    let rule = EntranceRule::default();
    let idx = m.entrance_index(&rule);
    let mut prev = m.check_entrances_with(&rule, &idx);
    assert!(prev.iter().filter(|e| !e.cameras.is_empty()).count() > 100, "entrances seen by cameras");
    let mut seed = 7u64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let seen: Vec<String> = prev.iter().flat_map(|e| e.cameras.iter().map(|c| c.id.clone())).collect();
    let (mut rechecked, mut kept, mut differ) = (0, 0, 0);
    for _ in 0..20 {
        let mut changed: Vec<(String, CameraStatus)> = Vec::new();
        for _ in 0..1 + next(6) {
            let id =
                if next(2) == 0 { seen[next(seen.len())].clone() } else { m.cameras[next(m.cameras.len())].id.clone() };
            let to = [CameraStatus::Online, CameraStatus::Offline, CameraStatus::Degraded, CameraStatus::Maintenance]
                [next(4)];
            changed.push((id, to));
        }
        m.set_statuses(changed.iter().map(|(id, s)| (id.as_str(), *s)));
        let ids: HashSet<&str> = changed.iter().map(|(id, _)| id.as_str()).collect();
        let again = m.recheck_entrances(&rule, &prev, &ids, &idx).expect("same entrances");
        let full = m.check_entrances(&rule);
        assert_eq!(serde_json::to_string(&again).unwrap(), serde_json::to_string(&full).unwrap());
        let n = prev.iter().filter(|e| e.cameras.iter().any(|c| ids.contains(c.id.as_str()))).count();
        rechecked += n;
        differ += again
            .iter()
            .zip(&prev)
            .filter(|(a, b)| serde_json::to_string(a).unwrap() != serde_json::to_string(b).unwrap())
            .count();
        kept += prev.len() - n;
        prev = again;
    }
    assert!(differ > 0 && rechecked >= differ, "checked again {rechecked}, changed {differ}");
    assert!(kept > 10 * rechecked, "checked again {rechecked}, kept {kept}");
}
