//! Dispatch's routing: units ranked by driving time to a place, one-way streets respected
//! (`geo::dispatch`, `geo::route::ReachTo`). Checked against times computed by hand on a small
//! network, and against one forward search per unit (brute force) on the demo city's roads.

use tianwang::geo::dispatch::{self, Travel, UnitAt};
use tianwang::geo::input::{Oneway, RoadWay};
use tianwang::geo::network::RoadNetwork;
use tianwang::geo::proj::{LocalProj, Xy};
use tianwang::geo::route::{self, Reach};
use tianwang::geo::synthetic::Rng;

fn road(id: &str, oneway: Oneway, coords: &[[f64; 2]]) -> RoadWay {
    RoadWay {
        id: id.into(),
        name: Some(id.into()),
        class: if id.starts_with("foot") { "footway" } else { "primary" }.into(),
        oneway,
        coords: coords.to_vec(),
        node_ids: None,
    }
}

/// A block A(0,0) B(0.001,0) C(0.001,0.001) D(0,0.001), sides ≈ 111 m, primary roads
/// (50 km/h); AB one-way as `ab` says.
fn block(ab: Oneway) -> (RoadNetwork, LocalProj) {
    let proj = LocalProj::new(0.0, 0.0);
    let ways = [
        road("ab", ab, &[[0.0, 0.0], [0.001, 0.0]]),
        road("bc", Oneway::No, &[[0.001, 0.0], [0.001, 0.001]]),
        road("cd", Oneway::No, &[[0.001, 0.001], [0.0, 0.001]]),
        road("da", Oneway::No, &[[0.0, 0.001], [0.0, 0.0]]),
    ];
    (RoadNetwork::build(&ways, &proj), proj)
}

#[test]
fn units_are_ranked_by_driving_time_the_way_one_way_streets_allow() {
    let (net, proj) = block(Oneway::Forward);
    // The block's sides in the projection: AB and CD run east, BC and DA north.
    let lx = proj.fwd(0.001, 0.0).dist(proj.fwd(0.0, 0.0));
    let ly = proj.fwd(0.0, 0.001).dist(proj.fwd(0.0, 0.0));
    let v = 50.0 / 3.6;
    let at = |id: &str, lon: f64, lat: f64| UnitAt { id: id.into(), at: proj.fwd(lon, lat), travel: Travel::Drive };
    // The place: on AB, a fifth of the way from A.
    let place = proj.fwd(0.0002, 0.0);
    let units = [
        // Behind it on AB: a tenth of AB forward.
        at("behind", 0.0001, 0.0),
        // Ahead of it on AB, which it may not drive back along: B, C, D, A, then a fifth of AB.
        at("ahead", 0.0005, 0.0),
        // At C: D, A, then a fifth of AB.
        at("corner", 0.001, 0.001),
        // A kilometre from any road: left out.
        at("lost", 0.01, 0.01),
    ];
    let ranked = dispatch::nearest(&net, &units, place, 10).unwrap();
    let got: Vec<(&str, f64)> = ranked.iter().map(|e| (e.id.as_str(), e.seconds)).collect();
    let want = [("behind", 0.1 * lx / v), ("corner", (1.2 * lx + ly) / v), ("ahead", (1.7 * lx + 2.0 * ly) / v)];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((id, s), (wid, ws)) in got.iter().zip(want) {
        assert_eq!(*id, wid, "{got:?}");
        assert!((s - ws).abs() < 1e-6 * ws.max(1.0), "{id}: {s} s, {ws} s by hand");
    }
    assert!(ranked.iter().all(|e| e.off_road_m < 1.0), "{ranked:?}");
    // Only the one-way street made "ahead" go round the block: two-way, it drives 0.3 AB back.
    let (two_way, _) = block(Oneway::No);
    let ranked = dispatch::nearest(&two_way, &units, place, 1).unwrap();
    assert_eq!(ranked[0].id, "behind");
    let ahead = dispatch::nearest(&two_way, &units[1..2], place, 1).unwrap();
    assert!((ahead[0].seconds - 0.3 * lx / v).abs() < 1e-6, "{ahead:?}");
    // Against the one-way (AB driven from B to A only): "behind" must go round, "ahead" drives on.
    let (backward, _) = block(Oneway::Backward);
    let ranked = dispatch::nearest(&backward, &units[..2], place, 2).unwrap();
    assert_eq!(ranked[0].id, "ahead");
    assert!((ranked[0].seconds - 0.3 * lx / v).abs() < 1e-6, "{ranked:?}");
    assert!((ranked[1].seconds - (1.9 * lx + 2.0 * ly) / v).abs() < 1e-6, "{ranked:?}");
    // A place far from any road is an error, not a guess.
    assert!(dispatch::nearest(&net, &units, proj.fwd(0.01, 0.01), 3).is_err());
}

/// Foot patrols walk at 5 km/h, any direction, footways too: on the block with AB one-way and a
/// footway across it from C to A, a walker ahead of the place on AB walks back along it, and a
/// walker at C takes the footway that no car may use; cars and walkers are ranked together.
#[test]
fn foot_patrols_walk_any_way_and_take_footways() {
    let proj = LocalProj::new(0.0, 0.0);
    let ways = [
        road("ab", Oneway::Forward, &[[0.0, 0.0], [0.001, 0.0]]),
        road("bc", Oneway::No, &[[0.001, 0.0], [0.001, 0.001]]),
        road("cd", Oneway::No, &[[0.001, 0.001], [0.0, 0.001]]),
        road("da", Oneway::No, &[[0.0, 0.001], [0.0, 0.0]]),
        road("foot-ca", Oneway::No, &[[0.001, 0.001], [0.0, 0.0]]),
    ];
    let net = RoadNetwork::build(&ways, &proj);
    let lx = proj.fwd(0.001, 0.0).dist(proj.fwd(0.0, 0.0));
    let ly = proj.fwd(0.0, 0.001).dist(proj.fwd(0.0, 0.0));
    let diag = proj.fwd(0.001, 0.001).dist(proj.fwd(0.0, 0.0));
    let (drive, walk) = (50.0 / 3.6, route::WALK_KMH / 3.6);
    let place = proj.fwd(0.0002, 0.0);
    let unit = |id: &str, lon: f64, lat: f64, travel| UnitAt { id: id.into(), at: proj.fwd(lon, lat), travel };
    let units = [
        unit("car-ahead", 0.0005, 0.0, Travel::Drive),
        unit("walker-ahead", 0.0005, 0.0, Travel::Walk),
        // On the footway's end at C, a little off the roads' corner.
        unit("walker-c", 0.00098, 0.00098, Travel::Walk),
    ];
    let ranked = dispatch::nearest(&net, &units, place, 3).unwrap();
    let time = |id: &str| ranked.iter().find(|e| e.id == id).map(|e| e.seconds).unwrap();
    // The car drives round the block: B, C, D, A, then a fifth of AB.
    assert!((time("car-ahead") - (1.7 * lx + 2.0 * ly) / drive).abs() < 1e-6, "{ranked:?}");
    // The walker walks back 0.3 AB.
    assert!((time("walker-ahead") - 0.3 * lx / walk).abs() < 1e-6, "{ranked:?}");
    // The walker near C takes the footway to A (from where it joins, 2 % short of C), then 0.2 AB.
    let expect = (0.98 * diag + 0.2 * lx) / walk;
    assert!((time("walker-c") - expect).abs() < 0.5, "{ranked:?}: {expect} s by hand");
    assert!(time("walker-c") < (1.2 * lx + ly + 0.02 * lx) / walk, "the footway beats the roads on foot");
    // The same as one forward search per unit with the walking times.
    let to = dispatch::snap_for(&net, place, Travel::Walk).unwrap();
    for u in &units[1..] {
        let from = dispatch::snap_for(&net, u.at, Travel::Walk).unwrap();
        let brute = Reach::with(&net, from, route::walk_times).to(&to).unwrap();
        assert!((time(&u.id) - brute).abs() < 1e-6, "{}: {} against {brute}", u.id, time(&u.id));
    }
    // Fastest first: the walker 33 m away (24 s) before the car round the block (~30 s).
    assert_eq!(ranked[0].id, "walker-ahead", "{ranked:?}");
}

/// 200 random places with 12 random units each on the demo city's roads (a fifth of its ways made
/// one-way, in either direction, so that direction matters): the ranking from one reversed search
/// equals one forward search per unit.
#[test]
fn the_ranking_equals_one_search_per_unit_on_the_demo_city() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo/map/roads.geojson");
    let mut ways = tianwang::geo::import::read_roads_geojson(&path).unwrap().accepted;
    assert!(ways.len() >= 10, "the demo city has roads");
    let mut rng = Rng(20261207);
    for w in &mut ways {
        let r = rng.unit();
        w.oneway = if r < 0.1 {
            Oneway::Forward
        } else if r < 0.2 {
            Oneway::Backward
        } else {
            Oneway::No
        };
    }
    let (lon0, lat0) = (ways[0].coords[0][0], ways[0].coords[0][1]);
    let proj = LocalProj::new(lon0, lat0);
    let net = RoadNetwork::build(&ways, &proj);
    let two_way: Vec<RoadWay> = ways.iter().map(|w| RoadWay { oneway: Oneway::No, ..w.clone() }).collect();
    let two_way = RoadNetwork::build(&two_way, &proj);
    // A point near a road, as a GPS fix or an alarm's address is: somewhere along a random way,
    // up to ~40 m off it.
    let point = |rng: &mut Rng| -> Xy {
        let w = &ways[(rng.unit() * ways.len() as f64) as usize % ways.len()];
        let i = (rng.unit() * (w.coords.len() - 1) as f64) as usize % (w.coords.len() - 1);
        let (a, b, t) = (w.coords[i], w.coords[i + 1], rng.unit());
        let off = |rng: &mut Rng| (rng.unit() - 0.5) * 0.0008;
        proj.fwd(a[0] + t * (b[0] - a[0]) + off(rng), a[1] + t * (b[1] - a[1]) + off(rng))
    };
    let (mut cases, mut ranked_units, mut direction_mattered) = (0, 0, 0);
    while cases < 200 {
        let place = point(&mut rng);
        let Some(to) = dispatch::snap_for(&net, place, Travel::Drive) else { continue };
        cases += 1;
        let units: Vec<UnitAt> =
            (0..12).map(|i| UnitAt { id: format!("u{i:02}"), at: point(&mut rng), travel: Travel::Drive }).collect();
        let got = dispatch::nearest(&net, &units, place, 5).unwrap();
        let mut brute: Vec<(String, f64)> = units
            .iter()
            .filter_map(|u| {
                let from = dispatch::snap_for(&net, u.at, Travel::Drive)?;
                Some((u.id.clone(), Reach::from(&net, from).to(&to)?))
            })
            .collect();
        brute.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        brute.truncate(5);
        assert_eq!(got.len(), brute.len(), "case {cases}: {got:?} against {brute:?}");
        for (g, b) in got.iter().zip(&brute) {
            assert!((g.seconds - b.1).abs() < 1e-6 * b.1.max(1.0), "case {cases}: {got:?} against {brute:?}");
            // Equal times may swap ids only between units whose times are equal.
            if g.id != b.0 {
                assert!((g.seconds - b.1).abs() < 1e-9, "case {cases}: {got:?} against {brute:?}");
            }
        }
        ranked_units += got.len();
        if dispatch::nearest(&two_way, &units, place, 5).unwrap() != got {
            direction_mattered += 1;
        }
    }
    // Deterministic (seeded): 775 of the 1,000 places in the top 5 are filled, the rest are units
    // that cannot get there.
    assert!(ranked_units >= 700, "most units were ranked: {ranked_units} of 1,000 places in the top 5");
    assert!(direction_mattered >= 20, "one-way streets changed the ranking in {direction_mattered} of 200 cases");
}

/// Units proposed to an interception's checkpoints: in the order the checkpoints are given, each
/// gets the free unit that reaches it soonest, first among those there in time, then any; a unit
/// goes to one checkpoint. On the block with AB one-way, without deadlines: the first checkpoint
/// (on AB) takes the unit behind it, the second (at C) the nearest of those left, a third the
/// last; with a first checkpoint no unit can reach in time, the unit goes where it is in time.
/// On the demo city's roads against brute force (one forward search per unit left, per step).
#[test]
fn interception_cover_gives_each_checkpoint_the_soonest_free_unit_in_order() {
    let (net, proj) = block(Oneway::Forward);
    let at = |id: &str, lon: f64, lat: f64| UnitAt { id: id.into(), at: proj.fwd(lon, lat), travel: Travel::Drive };
    let units = [at("behind", 0.0001, 0.0), at("corner", 0.001, 0.0009), at("ahead", 0.0005, 0.0)];
    let places = [proj.fwd(0.0002, 0.0), proj.fwd(0.001, 0.001), proj.fwd(0.0, 0.0005)];
    let got = dispatch::cover(&net, &units, &places, &[None; 3]);
    let ids: Vec<Option<&str>> = got.iter().map(|e| e.as_ref().map(|e| e.id.as_str())).collect();
    // AB's checkpoint: "behind" (0.1 AB). C: "corner" is 0.1 BC from it. The last place (on DA):
    // only "ahead" is left, which drives on to B, then C, D and half of DA.
    assert_eq!(ids, vec![Some("behind"), Some("corner"), Some("ahead")]);
    let lx = proj.fwd(0.001, 0.0).dist(proj.fwd(0.0, 0.0));
    let ly = proj.fwd(0.0, 0.001).dist(proj.fwd(0.0, 0.0));
    let v = 50.0 / 3.6;
    let want = [0.1 * lx / v, 0.1 * ly / v, (1.5 * lx + 1.5 * ly) / v];
    for (g, w) in got.iter().zip(want) {
        let s = g.as_ref().unwrap().seconds;
        assert!((s - w).abs() < 1e-6 * w, "{got:?}: {s} against {w} by hand");
    }
    // More checkpoints than units: the rest get none; a checkpoint off the roads gets none and
    // takes no unit from the next.
    let more = [proj.fwd(0.01, 0.01), places[0], places[1], places[2], proj.fwd(0.0005, 0.001)];
    let got = dispatch::cover(&net, &units, &more, &[None; 5]);
    let ids: Vec<Option<&str>> = got.iter().map(|e| e.as_ref().map(|e| e.id.as_str())).collect();
    assert_eq!(ids, vec![None, Some("behind"), Some("corner"), Some("ahead"), None]);
    // One unit, two checkpoints: the first needs it within a second (it is 0.9 BC + CD away),
    // the second within 100 s (it is 0.1 AB away): it goes to the second, where it is in time.
    // Without the deadlines it would go to the first.
    let one = [units[0].clone()];
    let two = [places[1], places[0]];
    let ids = |d: &[Option<f64>]| -> Vec<Option<String>> {
        dispatch::cover(&net, &one, &two, d).into_iter().map(|e| e.map(|e| e.id)).collect()
    };
    assert_eq!(ids(&[Some(1.0), Some(100.0)]), vec![None, Some("behind".to_string())]);
    assert_eq!(ids(&[None, None]), vec![Some("behind".to_string()), None]);
    // In time nowhere (it needs 0.8 s to the second): the first in order still gets it.
    assert_eq!(ids(&[Some(1.0), Some(0.5)]), vec![Some("behind".to_string()), None]);

    // The demo city's roads with random one-way streets: at each step the unit given is the
    // soonest of those left (brute force: one forward search per unit left).
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo/map/roads.geojson");
    let mut ways = tianwang::geo::import::read_roads_geojson(&path).unwrap().accepted;
    let mut rng = Rng(20261208);
    for w in &mut ways {
        if rng.unit() < 0.15 {
            w.oneway = Oneway::Forward;
        }
    }
    let proj = LocalProj::new(ways[0].coords[0][0], ways[0].coords[0][1]);
    let net = RoadNetwork::build(&ways, &proj);
    let point = |rng: &mut Rng| -> Xy {
        let w = &ways[(rng.unit() * ways.len() as f64) as usize % ways.len()];
        let c = w.coords[(rng.unit() * w.coords.len() as f64) as usize % w.coords.len()];
        proj.fwd(c[0], c[1])
    };
    let mut given = 0;
    for case in 0..30 {
        let units: Vec<UnitAt> =
            (0..6).map(|i| UnitAt { id: format!("u{i}"), at: point(&mut rng), travel: Travel::Drive }).collect();
        let places: Vec<Xy> = (0..8).map(|_| point(&mut rng)).collect();
        let got = dispatch::cover(&net, &units, &places, &vec![None; places.len()]);
        let mut left: Vec<&UnitAt> = units.iter().collect();
        for (p, g) in places.iter().zip(&got) {
            let to = dispatch::snap_for(&net, *p, Travel::Drive);
            let mut brute: Vec<(&str, f64)> = left
                .iter()
                .filter_map(|u| {
                    let from = dispatch::snap_for(&net, u.at, Travel::Drive)?;
                    Some((u.id.as_str(), Reach::from(&net, from).to(to.as_ref()?)?))
                })
                .collect();
            brute.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(b.0)));
            match (g, brute.first()) {
                (None, None) => {}
                (Some(g), Some(b)) => {
                    assert!((g.seconds - b.1).abs() < 1e-6 * b.1.max(1.0), "case {case}: {g:?} against {b:?}");
                    left.retain(|u| u.id != g.id);
                    given += 1;
                }
                (g, b) => panic!("case {case}: {g:?} against {b:?}"),
            }
        }
    }
    assert!(given >= 120, "most units were given a checkpoint: {given} of 180");
}
