//! The map's views of a generated city (`geo::mapview`): clusters that count every camera at city
//! scale, every camera with its DORI ranges and the coverage gaps at street scale, minor roads left
//! out and lines simplified at city scale, grid cells at the finest level that fits, search.

use tianwang::geo::coverage::{SectorIndex, StateFilter};
use tianwang::geo::mapview::{Derived, ViewLimits, ViewQuery, search, view};
use tianwang::geo::{DoriLevel, GeoModel, Xy};
use tianwang::sim::city::{CitySpec, generate};

fn city() -> GeoModel {
    GeoModel::build(generate(&CitySpec { streets: 41, cameras: 6_000, entrances: 200, ..CitySpec::reference() }))
}

fn q(m: &GeoModel, half_m: f64, width_px: f64) -> ViewQuery {
    let lo = m.lonlat(Xy::new(-half_m, -half_m));
    let hi = m.lonlat(Xy::new(half_m, half_m));
    ViewQuery { bbox: [lo[0], lo[1], hi[0], hi[1]], width_px, level: DoriLevel::Observe, states: StateFilter::All }
}

#[test]
fn a_city_view_clusters_every_camera_and_counts_them_all() {
    let m = city();
    let v = view(&m, &q(&m, 3_000.0, 1_200.0), &Derived::default(), &ViewLimits::default());
    assert_eq!(v.mode, "clusters");
    assert!(v.cameras.is_empty());
    let total: usize = v.clusters.iter().map(|c| c.count).sum();
    assert_eq!(total, v.cameras_in_view);
    assert_eq!(total, m.cameras.iter().filter(|c| c.in_service()).count(), "the box holds the whole city");
    for c in &v.clusters {
        assert_eq!(c.count, c.online + c.offline + c.other);
    }
    // 6 km over 1,200 px = 5 m/px; 56 px clusters = 280 m, or larger when the box would hold
    // more than 600: at most 600 bins and their partial neighbours at the edges.
    assert!(v.clusters.len() <= 600 + 2 * 26 + 1, "{}", v.clusters.len());
    let dense = view(&m, &q(&m, 3_000.0, 3_000.0), &Derived::default(), &ViewLimits::default());
    assert_eq!(dense.mode, "clusters");
    assert!(
        dense.clusters.len() <= 600 + 2 * 26 + 1,
        "a wide screen still gets a bounded answer: {}",
        dense.clusters.len()
    );
    assert_eq!(dense.clusters.iter().map(|c| c.count).sum::<usize>(), total);
    assert!(v.coverage_pending && v.gaps.is_empty() && v.entrances.is_empty());
}

#[test]
fn a_street_view_has_every_camera_in_the_box_with_its_ranges_and_the_gaps() {
    let m = city();
    let v = view(&m, &q(&m, 300.0, 1_200.0), &Derived::default(), &ViewLimits::default());
    assert_eq!(v.mode, "points");
    let lo = m.proj.fwd(v.cameras[0].lon, v.cameras[0].lat);
    assert!(lo.x.abs() <= 300.01 && lo.y.abs() <= 300.01);
    let want = (0..m.cameras.len())
        .filter(|&i| {
            let p = m.cam_pos[i];
            m.cameras[i].in_service() && p.x.abs() <= 300.0 && p.y.abs() <= 300.0
        })
        .count();
    assert_eq!(v.cameras.len(), want);
    assert!(v.cameras.iter().all(|c| c.ranges_m[0] >= c.ranges_m[1] && c.ranges_m[1] >= c.ranges_m[3]));
    // Gaps: each stretch lies on a road and is seen by no camera at observe.
    let idx = SectorIndex::new(&m, DoriLevel::Observe, |i| m.counts(i, StateFilter::All));
    assert!(!v.gaps.is_empty());
    for g in &v.gaps {
        let (a, b) = (m.proj.fwd_pt(g[0]), m.proj.fwd_pt(g[1]));
        let mid = a.lerp(b, 0.5);
        if a.dist(b) > 0.5 {
            assert!(
                idx.sectors.iter().enumerate().all(|(i, s)| !m.counts(i, StateFilter::All) || !s.contains(mid)),
                "a gap's middle is seen"
            );
        }
    }
}

#[test]
fn minor_roads_leave_at_city_scale_and_lines_are_simplified() {
    let m = city();
    let far = view(&m, &q(&m, 3_000.0, 300.0), &Derived::default(), &ViewLimits::default());
    assert!(far.roads_left_out > 0);
    assert!(far.roads.iter().all(|r| ["primary", "secondary"].contains(&r.class.as_str())));
    // A straight street of many segments keeps its two ends.
    assert!(far.roads.iter().all(|r| r.coords.len() == 2), "{:?}", far.roads[0].coords.len());
    let near = view(&m, &q(&m, 300.0, 1_200.0), &Derived::default(), &ViewLimits::default());
    assert_eq!(near.roads_left_out, 0);
    assert!(near.roads.iter().any(|r| r.class == "residential"));
}

#[test]
fn cells_come_at_the_finest_level_that_fits() {
    let m = city();
    let lim = ViewLimits { max_cells: 100, ..ViewLimits::default() };
    let far = view(&m, &q(&m, 3_000.0, 1_200.0), &Derived::default(), &lim);
    let near = view(&m, &q(&m, 300.0, 1_200.0), &Derived::default(), &lim);
    assert!(far.cells.len() <= 100 && near.cells.len() <= 100);
    assert!(far.cell_level < near.cell_level, "{:?} {:?}", far.cell_level, near.cell_level);
}

#[test]
fn search_finds_by_id_and_name_exact_id_first() {
    let m = city();
    let hits = search(&m, "CAM000012", 5);
    assert_eq!(hits[0].id, "cam000012");
    assert!(hits.len() <= 5);
    assert!(search(&m, "camera 4711", 3).iter().any(|c| c.name == "camera 4711"));
    assert!(search(&m, "  ", 3).is_empty());
}
