//! Coverage kept current across camera state changes: brought up to date incrementally (only the
//! road segments near the cameras whose counting changed are clipped again) it equals a full
//! recomputation, on random runs of changes, at the reference city's scale, and through
//! `GeoService` on a registry (reports and entrance checks, with the counters).

use std::sync::atomic::{AtomicU64, Ordering};

use tianwang::config::{CameraKind, CameraStatus, DoriTable};
use tianwang::geo::coverage::{Coverage, CoverageQuery, SectorIndex, StateFilter, counting};
use tianwang::geo::entrance::EntranceRule;
use tianwang::geo::rings::GuardRule;
use tianwang::geo::service::GeoService;
use tianwang::geo::{DoriLevel, GeoModel};
use tianwang::registry::{CameraInput, Registry};
use tianwang::sim::city::{CitySpec, generate};

/// xorshift64: the test's own random sequence, repeatable.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn report_json(m: &GeoModel, cov: &Coverage) -> String {
    let ok: Vec<bool> = m.check_entrances(&EntranceRule::default()).iter().map(|e| e.compliant).collect();
    serde_json::to_string(&cov.report(m, &ok)).unwrap()
}

/// Random runs of state changes on a generated city (41 streets, 3,000 cameras): after each,
/// every query's coverage brought up to date incrementally equals a full recomputation, its
/// intervals exactly and its serialised report byte for byte.
#[test]
fn incremental_coverage_equals_a_full_recomputation() {
    let spec = CitySpec { streets: 41, cameras: 3_000, entrances: 150, ..CitySpec::reference() };
    let mut m = GeoModel::build(generate(&spec));
    let queries = [
        CoverageQuery { level: DoriLevel::Observe, states: StateFilter::Online },
        CoverageQuery { level: DoriLevel::Detect, states: StateFilter::All },
        CoverageQuery { level: DoriLevel::Recognise, states: StateFilter::Online },
    ];
    let every: Vec<SectorIndex> = queries.iter().map(|q| SectorIndex::every_camera(&m, q.level)).collect();
    let mut kept: Vec<(Vec<bool>, Coverage)> = queries
        .iter()
        .zip(&every)
        .map(|(q, all)| {
            let flags = counting(&m, q.states);
            let cov = Coverage::compute_with(&m, all, *q, &flags);
            assert_eq!(cov, m.coverage(*q), "computed against every camera, filtered");
            (flags, cov)
        })
        .collect();
    let checkpoints: Vec<usize> =
        (0..m.cameras.len()).filter(|&i| m.cameras[i].kind == CameraKind::Checkpoint).collect();
    assert!(checkpoints.len() > 30);
    let states = [CameraStatus::Offline, CameraStatus::Online, CameraStatus::Decommissioned, CameraStatus::Degraded];
    let mut rng = Rng(19);
    let mut recomputed = 0;
    for step in 0..24 {
        let n = 1 + rng.below(6);
        let mut change: Vec<(String, CameraStatus)> = (0..n)
            .map(|_| (m.cameras[rng.below(m.cameras.len())].id.clone(), states[rng.below(states.len())]))
            .collect();
        let cp = checkpoints[rng.below(checkpoints.len())];
        change.push((m.cameras[cp].id.clone(), states[rng.below(states.len())]));
        m.set_statuses(change.iter().map(|(id, s)| (id.as_str(), *s)));
        for ((q, all), (before, cov)) in queries.iter().zip(&every).zip(kept.iter_mut()) {
            let after = counting(&m, q.states);
            recomputed += cov.update(&m, all, before, &after);
            *before = after;
            let full = m.coverage(*q);
            assert_eq!(*cov, full, "step {step}, {q:?}, changes {change:?}");
            if step % 6 == 0 {
                assert_eq!(report_json(&m, cov), report_json(&m, &full), "step {step}, {q:?}");
            }
        }
    }
    // Only the segments near the changed cameras were clipped again.
    assert!(recomputed > 0 && recomputed < 24 * 3 * m.net.segs.len() / 20, "{recomputed} segments recomputed");
}

/// The reference city (76,164 cameras): one camera going offline, brought up to date
/// incrementally, gives the same coverage and report as a full recomputation.
#[test]
fn one_camera_offline_in_the_reference_city() {
    let mut m = GeoModel::build(generate(&CitySpec::reference()));
    let q = CoverageQuery { level: DoriLevel::Observe, states: StateFilter::Online };
    let all = SectorIndex::every_camera(&m, q.level);
    let before = counting(&m, q.states);
    let mut cov = Coverage::compute_with(&m, &all, q, &before);
    let cam = (0..m.cameras.len())
        .find(|&i| before[i] && !all.sectors[i].is_empty() && m.net.segs_in(all.sectors[i].bounds()).next().is_some())
        .unwrap();
    let id = m.cameras[cam].id.clone();
    m.set_statuses([(id.as_str(), CameraStatus::Offline)]);
    let after = counting(&m, q.states);
    let n = cov.update(&m, &all, &before, &after);
    assert!(n > 0 && n < 100, "{n} segments recomputed");
    let full = m.coverage(q);
    assert_eq!(cov, full);
    let ok = vec![true; m.entrances.len()];
    let (a, b) = (cov.report(&m, &ok), full.report(&m, &ok));
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
}

/// Camera state changes bring the cached coverage up to date incrementally (counted), and the
/// answer equals a report computed afresh on the same model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_update_coverage_incrementally() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(&format!("sqlite://{}", dir.path().join("g.db").display())).await.unwrap();
    let city = generate(&CitySpec { streets: 21, cameras: 800, entrances: 40, ..CitySpec::reference() });
    let cams: Vec<CameraInput> = city.cameras.iter().map(CameraInput::from).collect();
    reg.store_roads(&city.roads, "test", 0).await.unwrap();
    reg.store_cells(&city.cells, "test", 0).await.unwrap();
    reg.store_entrances(&city.entrances, "test", 0).await.unwrap();
    reg.store_imported_cameras(&cams, "test", 0).await.unwrap();
    reg.store_rings(&city.rings, "test", 0).await.unwrap();
    for c in cams.iter().step_by(2) {
        reg.set_status(&c.id, CameraStatus::Online, "streaming", 1, None).await.unwrap();
    }
    let geo = GeoService::new(reg.clone(), DoriTable::Iec2014);
    let queries = [
        CoverageQuery { level: DoriLevel::Observe, states: StateFilter::Online },
        CoverageQuery { level: DoriLevel::Detect, states: StateFilter::All },
    ];
    let counter = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let check = || async {
        for q in queries {
            let (m, r) = geo.report(q).await.unwrap();
            let ok: Vec<bool> = geo.entrance_checks().await.unwrap().iter().map(|e| e.compliant).collect();
            let fresh = m.coverage(q).report(&m, &ok);
            assert_eq!(serde_json::to_string(&*r).unwrap(), serde_json::to_string(&fresh).unwrap(), "{q:?}");
        }
        let (m, checks) = (geo.model().await.unwrap(), geo.entrance_checks().await.unwrap());
        let fresh = m.check_entrances(&EntranceRule::default());
        assert_eq!(serde_json::to_string(&*checks).unwrap(), serde_json::to_string(&fresh).unwrap());
        let (m, rings) = (geo.model().await.unwrap(), geo.ring_states().await.unwrap());
        let fresh = m.ring_states(&GuardRule::default());
        assert_eq!(serde_json::to_string(&*rings).unwrap(), serde_json::to_string(&fresh).unwrap());
    };
    check().await;
    let c = geo.cache_counters();
    assert_eq!((counter(&c.reports), counter(&c.incremental)), (2, 0));
    let mut t = 2;
    for (k, status) in [CameraStatus::Offline, CameraStatus::Decommissioned, CameraStatus::Online].iter().enumerate() {
        for cam in cams.iter().skip(k * 7).step_by(97) {
            t += 1;
            reg.set_status(&cam.id, *status, "test", t, None).await.unwrap();
        }
        check().await;
        assert_eq!((counter(&c.reports), counter(&c.incremental)), (2 * (k as u64 + 2), 2 * (k as u64 + 1)));
        // Entrances: brought up to date unless a camera left service (then checked afresh).
        assert_eq!(counter(&c.incremental_entrances), [1, 1, 2][k], "after step {k}");
    }
    // A camera that is neither a checkpoint nor a ring member: the ring states stand as they were;
    // a ring member: every ring checked again. Equal to a fresh check either way (check()).
    let m = geo.model().await.unwrap();
    let member = m.rings[0].input.members[0].clone();
    let plain = m
        .cameras
        .iter()
        .find(|c| {
            c.kind != CameraKind::Checkpoint
                && c.status != CameraStatus::Decommissioned
                && !m.rings.iter().any(|r| r.input.members.contains(&c.id))
        })
        .unwrap()
        .id
        .clone();
    let kept = counter(&c.incremental_rings);
    // Kept after the plain camera's change; checked again (not counted) after the member's.
    for (id, status, want) in
        [(&plain, CameraStatus::Maintenance, kept + 1), (&member, CameraStatus::Offline, kept + 1)]
    {
        t += 1;
        reg.set_status(id, status, "test", t, None).await.unwrap();
        check().await;
        assert_eq!(counter(&c.incremental_rings), want, "after {id} changed");
    }
    reg.close().await;
}
