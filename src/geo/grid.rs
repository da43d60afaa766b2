//! Generated grid cells for when no grid is given: squares over the roads' extent at three
//! levels, each level-1 cell holding 4×4 level-2 cells, each of those 4×4 base cells.
//! (H3 cells would serve too; squares line up with how districts draw their grids on paper.)

use super::input::CellInput;
use super::proj::{LocalProj, Xy};

/// Square cells of `base_m` (level 3), `4·base_m` (level 2) and `16·base_m` (level 1) covering
/// the bounding box of `points` (`[lon, lat]`). Ids are `sq<level>-<col>-<row>` from the
/// south-west corner, prefixed by `prefix`.
pub fn square_grid(points: &[[f64; 2]], base_m: f64, prefix: &str) -> Vec<CellInput> {
    if points.is_empty() || base_m.is_nan() || base_m <= 0.0 {
        return Vec::new();
    }
    let proj = LocalProj::around(points.iter());
    let mut b = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    for p in points {
        let q = proj.fwd_pt(*p);
        b = [b[0].min(q.x), b[1].min(q.y), b[2].max(q.x), b[3].max(q.y)];
    }
    let top = base_m * 16.0;
    let cols = (((b[2] - b[0]) / top).floor() as i64 + 1).max(1);
    let rows = (((b[3] - b[1]) / top).floor() as i64 + 1).max(1);
    let origin = Xy::new(b[0] - 1e-6, b[1] - 1e-6);
    let mut out = Vec::new();
    for level in 1..=3u8 {
        let size = base_m * 4f64.powi(3 - level as i32);
        let k = 4i64.pow(level as u32 - 1);
        for c in 0..cols * k {
            for r in 0..rows * k {
                let sw = origin.plus(Xy::new(c as f64 * size, r as f64 * size));
                let corners =
                    [sw, sw.plus(Xy::new(size, 0.0)), sw.plus(Xy::new(size, size)), sw.plus(Xy::new(0.0, size))];
                let parent = (level > 1).then(|| format!("{prefix}sq{}-{}-{}", level - 1, c / 4, r / 4));
                out.push(CellInput {
                    id: format!("{prefix}sq{level}-{c}-{r}"),
                    name: format!("square {level}/{c}/{r}"),
                    level,
                    parent,
                    polygon: corners.iter().map(|p| proj.inv(*p)).collect(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_levels_nest() {
        let pts = [[24.90, 60.15], [24.96, 60.18]];
        let cells = square_grid(&pts, 250.0, "");
        let l1 = cells.iter().filter(|c| c.level == 1).count();
        let l2 = cells.iter().filter(|c| c.level == 2).count();
        let l3 = cells.iter().filter(|c| c.level == 3).count();
        assert_eq!((l2, l3), (16 * l1, 256 * l1));
        // 3.3 km × 3.3 km → 4 km squares: 1 × 1.
        assert_eq!(l1, 1);
        for c in &cells {
            if let Some(p) = &c.parent {
                assert!(cells.iter().any(|x| &x.id == p && x.level + 1 == c.level), "{}", c.id);
            }
        }
    }
}
