//! The dashboard map's data at the reference city's scale (76,164 cameras): what one view costs
//! the server and the wire, against the baseline of the map before it (every camera with four
//! fields of view, every road and every cell as GeoJSON layers, fetched whole). Prints time and
//! bytes for the city view, a district view and street views, and the ratios.
//! Run: `cargo bench --bench map`.

use std::time::Instant;

use tianwang::geo::coverage::{CoverageQuery, StateFilter};
use tianwang::geo::mapview::{Derived, ViewLimits, ViewQuery, view};
use tianwang::geo::{DoriLevel, GeoModel, Xy, geojson_out};
use tianwang::sim::city::{CitySpec, generate};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let m = GeoModel::build(generate(&CitySpec::reference()));
    let q = CoverageQuery { level: DoriLevel::Observe, states: StateFilter::Online };
    let report = tianwang::geo::report::compute(&m, q);
    let rings = m.ring_states(&tianwang::geo::rings::GuardRule::default());
    let ok: Vec<bool> = report.entrances.iter().map(|e| e.compliant).collect();
    let d = Derived { report: Some(&report.coverage), entrances_ok: Some(&ok), rings: &rings };
    println!(
        "city: {} cameras, {} roads, {} segments, {} cells",
        m.cameras.len(),
        m.net.ways.len(),
        m.net.segs.len(),
        m.cells.len()
    );

    // Baseline: the layers the map fetched whole before (cameras with four levels, roads, cells).
    let levels = [DoriLevel::Detect, DoriLevel::Observe, DoriLevel::Recognise, DoriLevel::Identify];
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let b = serde_json::to_vec(&geojson_out::cameras(&m, &levels)).unwrap().len()
            + serde_json::to_vec(&geojson_out::roads(&m)).unwrap().len()
            + serde_json::to_vec(&geojson_out::cells(&m)).unwrap().len();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        bytes = b;
    }
    let base_ms = median(times);
    println!("baseline (whole layers): {base_ms:.0} ms, {:.1} MB per load", bytes as f64 / 1e6);

    // Views: the city at 1,500 px (with the quarter-screen margin the page asks for), a 4 km
    // district, and 800 m streets in 20 places.
    let lim = ViewLimits::default();
    let bbox = |cx: f64, cy: f64, half: f64| {
        let lo = m.lonlat(Xy::new(cx - half, cy - half));
        let hi = m.lonlat(Xy::new(cx + half, cy + half));
        [lo[0], lo[1], hi[0], hi[1]]
    };
    let cases: Vec<(&str, Vec<[f64; 4]>)> = vec![
        ("city (16 km)", vec![bbox(0.0, 0.0, 8_500.0)]),
        ("district (4 km)", (0..10).map(|k| bbox(-4_000.0 + 800.0 * k as f64, 1_000.0, 2_000.0)).collect()),
        (
            "street (800 m)",
            (0..20).map(|k| bbox(-6_000.0 + 600.0 * k as f64, -2_500.0 + 250.0 * k as f64, 400.0)).collect(),
        ),
    ];
    for (name, boxes) in cases {
        let mut times = Vec::new();
        let mut sizes = Vec::new();
        let mut shown = String::new();
        for b in &boxes {
            for _ in 0..3 {
                let t = Instant::now();
                let v = view(
                    &m,
                    &ViewQuery { bbox: *b, width_px: 2_250.0, level: DoriLevel::Observe, states: StateFilter::Online },
                    &d,
                    &lim,
                );
                let n = serde_json::to_vec(&v).unwrap().len();
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                sizes.push(n as f64);
                shown = if v.mode == "points" {
                    format!("{} cameras", v.cameras.len())
                } else {
                    format!("{} clusters of {} cameras", v.clusters.len(), v.cameras_in_view)
                };
            }
        }
        let (ms, kb) = (median(times), median(sizes) / 1e3);
        println!(
            "{name}: {ms:.1} ms, {kb:.0} kB per view (the last: {shown}); ratio to the baseline: time {:.4}, bytes {:.4}",
            ms / base_ms,
            kb * 1e3 / bytes as f64
        );
    }
}
