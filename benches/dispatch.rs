//! Dispatch at the reference city's scale: 2,000 units ranked by driving time to a place on the
//! reference city's road network (≥ 100,000 segments). Ours: one Dijkstra on the reversed graph
//! from the place (`geo::dispatch::nearest`). The baseline, the obvious way: one forward search
//! from each unit (`geo::route::Reach`), timed on a sample of the units and scaled to 2,000; the
//! two rankings of the sample are checked equal. Run: `cargo bench --bench dispatch`.

use std::time::Instant;

use tianwang::geo::dispatch::{self, Travel, UnitAt};
use tianwang::geo::network::RoadNetwork;
use tianwang::geo::proj::{LocalProj, Xy};
use tianwang::geo::route::Reach;
use tianwang::geo::synthetic::Rng;
use tianwang::sim::city::{CitySpec, generate};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let spec = CitySpec { cameras: 0, entrances: 0, ..CitySpec::reference() };
    let inputs = generate(&spec);
    let proj = LocalProj::new(spec.centre[0], spec.centre[1]);
    let net = RoadNetwork::build(&inputs.roads, &proj);
    let half = (spec.streets as f64 - 1.0) * spec.spacing_m / 2.0;
    let mut rng = Rng(2126);
    let mut point = || Xy::new((rng.unit() * 2.0 - 1.0) * half, (rng.unit() * 2.0 - 1.0) * half);
    let units: Vec<UnitAt> =
        (0..2_000).map(|i| UnitAt { id: format!("unit{i:04}"), at: point(), travel: Travel::Drive }).collect();
    let places: Vec<Xy> = (0..20).map(|_| point()).collect();
    println!(
        "dispatch, reference city: {} road segments, {} nodes, {} units, {} places, one thread",
        net.segs.len(),
        net.nodes.len(),
        units.len(),
        places.len()
    );
    // Ours: every unit ranked for every place.
    let mut ours_ms = Vec::new();
    for &p in &places {
        let t = Instant::now();
        let ranked = dispatch::nearest(&net, &units, p, 10).expect("a place on the grid is on a road");
        ours_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(ranked.len(), 10);
    }
    let ours_median = pct(&mut ours_ms.clone(), 0.5);
    println!(
        "  ours (one reversed search):        {:.1} ms per place (median), {:.1} ms max",
        ours_median,
        pct(&mut ours_ms, 1.0)
    );
    // The baseline on 50 units for 3 places, scaled to 2,000 units; same ranking on the sample.
    let sample = &units[..50];
    let mut per_unit_ms = Vec::new();
    for &p in &places[..3] {
        let to = dispatch::snap_for(&net, p, Travel::Drive).unwrap();
        let mut brute: Vec<(String, f64)> = Vec::new();
        for u in sample {
            let t = Instant::now();
            let from = dispatch::snap_for(&net, u.at, Travel::Drive).unwrap();
            let s = Reach::from(&net, from).to(&to);
            per_unit_ms.push(t.elapsed().as_secs_f64() * 1e3);
            if let Some(s) = s {
                brute.push((u.id.clone(), s));
            }
        }
        brute.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        brute.truncate(10);
        let ours = dispatch::nearest(&net, sample, p, 10).unwrap();
        assert_eq!(ours.len(), brute.len());
        for (o, b) in ours.iter().zip(&brute) {
            assert!((o.seconds - b.1).abs() < 1e-6 * b.1.max(1.0), "{ours:?} against {brute:?}");
        }
    }
    let baseline = pct(&mut per_unit_ms, 0.5) * units.len() as f64;
    println!(
        "  baseline (one search per unit):    {:.0} ms per place ({:.2} ms per unit × {}), same ranking on the sample",
        baseline,
        baseline / units.len() as f64,
        units.len()
    );
    println!("  ratio baseline / ours: {:.0}x", baseline / ours_median);
}
