//! Coverage under load at the reference city's scale (76,164 cameras stored in a registry): 64
//! planners ask for the coverage report at once, three rounds, while an operator's alarm linkage
//! (`seeing`: the cameras that see a point) is asked every 20 ms. Ours (the report computed once
//! per version of the model and shared: `GeoService::report`) against the baseline of the same
//! run (every request computes its own report, which is what the server did before), with the
//! p50/p99 of both requests. Run: `cargo bench --bench coverage_load`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tianwang::geo::DoriLevel;
use tianwang::geo::coverage::{CoverageQuery, StateFilter};
use tianwang::geo::entrance::EntranceRule;
use tianwang::geo::service::GeoService;
use tianwang::registry::{CameraInput, Registry};
use tianwang::sim::city::{CitySpec, generate};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

const PLANNERS: usize = 64;
const ROUNDS: usize = 3;

/// One load run: 64 concurrent report requests per round, `seeing` meanwhile; the latencies (ms).
async fn run(geo: &GeoService, reg: &Registry, cached: bool, points: &[(f64, f64)]) -> (Vec<f64>, Vec<f64>, f64) {
    let q = CoverageQuery { level: DoriLevel::Observe, states: StateFilter::Online };
    let stop = Arc::new(AtomicBool::new(false));
    let seeing = {
        let (geo, stop, points) = (geo.clone(), stop.clone(), points.to_vec());
        tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let (lon, la) = points[i % points.len()];
                i += 1;
                let t = Instant::now();
                let m = geo.model().await.unwrap();
                let pt = m.proj.fwd(lon, la);
                let seen = m.cameras_seeing(pt, StateFilter::Online);
                std::hint::black_box(seen);
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            lat
        })
    };
    let start = Instant::now();
    let mut reports = Vec::new();
    for _ in 0..ROUNDS {
        let mut tasks = Vec::new();
        for _ in 0..PLANNERS {
            let (geo, reg) = (geo.clone(), reg.clone());
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                if cached {
                    let (_, r) = geo.report(q).await.unwrap();
                    std::hint::black_box(r.overall.covered_m);
                } else {
                    // What a request cost before: every camera's state read, the model, the
                    // entrance check and the report.
                    std::hint::black_box(reg.camera_states().await.unwrap());
                    let m = geo.model().await.unwrap();
                    let r = tokio::task::spawn_blocking(move || {
                        let ok: Vec<bool> =
                            m.check_entrances(&EntranceRule::default()).iter().map(|e| e.compliant).collect();
                        m.coverage(q).report(&m, &ok)
                    })
                    .await
                    .unwrap();
                    std::hint::black_box(r.overall.covered_m);
                }
                t.elapsed().as_secs_f64() * 1000.0
            }));
        }
        for t in tasks {
            reports.push(t.await.unwrap());
        }
    }
    let wall = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    (reports, seeing.await.unwrap(), wall)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(&format!("sqlite://{}", dir.path().join("city.db").display())).await.unwrap();
        let t = Instant::now();
        let city = generate(&CitySpec::reference());
        let cams: Vec<CameraInput> = city.cameras.iter().map(CameraInput::from).collect();
        reg.store_roads(&city.roads, "bench", 0).await.unwrap();
        reg.store_cells(&city.cells, "bench", 0).await.unwrap();
        reg.store_entrances(&city.entrances, "bench", 0).await.unwrap();
        reg.store_imported_cameras(&cams, "bench", 0).await.unwrap();
        reg.sync_rings(&city.rings, 0).await.unwrap();
        // Every imported camera online (a registry import starts them unknown).
        sqlx::query("UPDATE cameras SET status = 'online'").execute(reg.pool()).await.unwrap();
        println!(
            "registry: {} cameras, {} roads, {} cells, {} entrances stored in {:.1} s",
            cams.len(),
            city.roads.len(),
            city.cells.len(),
            city.entrances.len(),
            t.elapsed().as_secs_f64()
        );
        let geo = GeoService::new(reg.clone(), tianwang::config::DoriTable::Iec2014);
        let t = Instant::now();
        geo.model().await.unwrap();
        println!("model built in {:.1} s", t.elapsed().as_secs_f64());
        let points: Vec<(f64, f64)> = city.cameras.iter().step_by(997).map(|c| (c.lon, c.lat)).collect();

        let mut lines = Vec::new();
        for (name, cached) in [("baseline: a report per request", false), ("ours: one report per model version", true)] {
            let (mut rep, mut see, wall) = run(&geo, &reg, cached, &points).await;
            let line = format!(
                "{name}: {} report requests ({PLANNERS} at once × {ROUNDS}) in {wall:.1} s, p50 {:.0} ms, p99 {:.0} ms; \
                 seeing meanwhile ({} requests) p50 {:.1} ms, p99 {:.1} ms",
                rep.len(),
                pct(&mut rep, 0.5),
                pct(&mut rep, 0.99),
                see.len(),
                pct(&mut see, 0.5),
                pct(&mut see, 0.99)
            );
            println!("{line}");
            lines.push((pct(&mut rep, 0.99), pct(&mut see, 0.99), wall));
        }
        let (b, o) = (lines[0], lines[1]);
        println!(
            "ratio ours/baseline: report p99 {:.4}, seeing p99 {:.3}, wall {:.3}; computed {} times ({} coverage reports, {} of them incremental), answered from the cache {} times",
            o.0 / b.0,
            o.1 / b.1,
            o.2 / b.2,
            geo.cache_counters().computed.load(Ordering::Relaxed),
            geo.cache_counters().reports.load(Ordering::Relaxed),
            geo.cache_counters().incremental.load(Ordering::Relaxed),
            geo.cache_counters().hits.load(Ordering::Relaxed)
        );
        reg.close().await;
    });
}
