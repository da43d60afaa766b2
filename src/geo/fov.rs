//! A camera's field of view on the ground: a circular sector from the camera's position, centred
//! on its bearing, `hfov` wide, out to the ground range of a DORI level.
//!
//! Road coverage needs the part of a segment inside a sector. That is computed exactly, as an
//! interval of the segment's parameter: inside the circle (a quadratic) and inside the wedge. A
//! wedge narrower than 180° is the intersection of two half-planes; a wider one is split at the
//! bearing into two such halves, and a 360° view has no wedge at all.

use super::proj::Xy;

/// A field-of-view sector in the local projection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sector {
    pub apex: Xy,
    /// Compass bearing of the axis, degrees.
    pub bearing_deg: f64,
    /// Full horizontal angle, degrees (0 = sees nothing, ≥ 360 = all round).
    pub hfov_deg: f64,
    /// Ground range, metres.
    pub radius: f64,
}

/// Axis-aligned bounds `[min x, min y, max x, max y]`.
pub type Bounds = [f64; 4];

impl Sector {
    pub fn is_empty(&self) -> bool {
        self.radius.is_nan() || self.radius <= 0.0 || self.hfov_deg.is_nan() || self.hfov_deg <= 0.0
    }

    fn all_round(&self) -> bool {
        self.hfov_deg >= 360.0
    }

    /// Whether `p` lies in the sector (boundary included).
    pub fn contains(&self, p: Xy) -> bool {
        if self.is_empty() {
            return false;
        }
        let d = p.minus(self.apex);
        let r = d.len();
        if r > self.radius {
            return false;
        }
        if self.all_round() || r == 0.0 {
            return true;
        }
        let off = (d.bearing() - self.bearing_deg + 540.0).rem_euclid(360.0) - 180.0;
        off.abs() <= self.hfov_deg / 2.0 + 1e-9
    }

    /// The sub-intervals `[t0, t1]` of the segment `a + t (b - a)`, `t ∈ [0, 1]`, inside the
    /// sector, in order and disjoint.
    pub fn clip_segment(&self, a: Xy, b: Xy) -> Vec<(f64, f64)> {
        if self.is_empty() {
            return Vec::new();
        }
        let Some((c0, c1)) = circle_interval(a.minus(self.apex), b.minus(a), self.radius) else {
            return Vec::new();
        };
        if self.all_round() {
            return vec![(c0, c1)];
        }
        let half = self.hfov_deg / 2.0;
        let mut out = Vec::with_capacity(2);
        for (from, to) in [(self.bearing_deg - half, self.bearing_deg), (self.bearing_deg, self.bearing_deg + half)] {
            if let Some(iv) = wedge_interval(a.minus(self.apex), b.minus(a), from, to, (c0, c1)) {
                out.push(iv);
            }
        }
        merge(&mut out);
        out
    }

    /// Tight bounds (apex, arc ends and the arc's extreme compass points).
    pub fn bounds(&self) -> Bounds {
        let mut b = [self.apex.x, self.apex.y, self.apex.x, self.apex.y];
        if self.is_empty() {
            return b;
        }
        let mut add = |deg: f64| {
            let p = self.apex.plus(Xy::from_bearing(deg).scale(self.radius));
            b = [b[0].min(p.x), b[1].min(p.y), b[2].max(p.x), b[3].max(p.y)];
        };
        let half = self.hfov_deg.min(360.0) / 2.0;
        add(self.bearing_deg - half);
        add(self.bearing_deg + half);
        for cardinal in [0.0, 90.0, 180.0, 270.0] {
            let off = (cardinal - self.bearing_deg + 540.0f64).rem_euclid(360.0) - 180.0;
            if off.abs() <= half {
                add(cardinal);
            }
        }
        b
    }

    /// The outline as a closed polygon: apex, arc points at most `step_deg` apart, apex again
    /// (a full circle has no apex vertex).
    pub fn outline(&self, step_deg: f64) -> Vec<Xy> {
        if self.is_empty() {
            return Vec::new();
        }
        let span = self.hfov_deg.min(360.0);
        let n = (span / step_deg.max(0.5)).ceil().max(1.0) as usize;
        let start = self.bearing_deg - span / 2.0;
        let arc =
            (0..=n).map(|i| self.apex.plus(Xy::from_bearing(start + span * i as f64 / n as f64).scale(self.radius)));
        if self.all_round() {
            arc.collect()
        } else {
            std::iter::once(self.apex).chain(arc).chain(std::iter::once(self.apex)).collect()
        }
    }
}

/// Parameter interval of `d0 + t v`, `t ∈ [0, 1]`, within `r` of the origin.
fn circle_interval(d0: Xy, v: Xy, r: f64) -> Option<(f64, f64)> {
    let a = v.dot(v);
    let b = 2.0 * d0.dot(v);
    let c = d0.dot(d0) - r * r;
    if a == 0.0 {
        return (c <= 0.0).then_some((0.0, 1.0));
    }
    let disc = b * b - 4.0 * a * c;
    if disc < 0.0 {
        return None;
    }
    let s = disc.sqrt();
    let (t0, t1) = (((-b - s) / (2.0 * a)).max(0.0), ((-b + s) / (2.0 * a)).min(1.0));
    (t0 < t1).then_some((t0, t1))
}

/// Within `iv`, the part of `d0 + t v` clockwise from bearing `from` and counter-clockwise from
/// `to` (`to - from` < 180°).
fn wedge_interval(d0: Xy, v: Xy, from: f64, to: f64, iv: (f64, f64)) -> Option<(f64, f64)> {
    let (u1, u2) = (Xy::from_bearing(from), Xy::from_bearing(to));
    // Clockwise of u1: cross(u1, d) <= 0. Counter-clockwise of u2: cross(u2, d) >= 0.
    let iv = half_line(iv, u1.cross(d0), u1.cross(v))?;
    let iv = half_line(iv, -u2.cross(d0), -u2.cross(v))?;
    // The two half-planes also admit the opposite wedge; keep points in front of the bisector.
    let mid = Xy::from_bearing((from + to) / 2.0);
    half_line(iv, -mid.dot(d0), -mid.dot(v))
}

/// Restricts `iv` to where `c0 + t c1 <= 0`.
fn half_line((lo, hi): (f64, f64), c0: f64, c1: f64) -> Option<(f64, f64)> {
    const EPS: f64 = 1e-9;
    let (lo, hi) = if c1.abs() < EPS {
        if c0 > EPS {
            return None;
        }
        (lo, hi)
    } else if c1 > 0.0 {
        (lo, hi.min(-c0 / c1))
    } else {
        (lo.max(-c0 / c1), hi)
    };
    (lo < hi).then_some((lo, hi))
}

/// Sorts and merges overlapping or touching intervals in place.
pub fn merge(v: &mut Vec<(f64, f64)>) {
    if v.len() < 2 {
        return;
    }
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(v.len());
    for &(a, b) in v.iter() {
        match out.last_mut() {
            Some(last) if a <= last.1 + 1e-12 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    *v = out;
}

/// Total length of merged intervals.
pub fn total(v: &[(f64, f64)]) -> f64 {
    v.iter().map(|(a, b)| b - a).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sector(bearing: f64, hfov: f64) -> Sector {
        Sector { apex: Xy::new(0.0, 0.0), bearing_deg: bearing, hfov_deg: hfov, radius: 10.0 }
    }

    #[test]
    fn contains_respects_range_and_angle() {
        let s = sector(0.0, 90.0);
        assert!(s.contains(Xy::new(0.0, 9.9)));
        assert!(s.contains(Xy::new(7.0, 7.0))); // on the 45° edge, 9.9 m away
        assert!(!s.contains(Xy::new(7.2, 7.2))); // 10.18 m away
        assert!(!s.contains(Xy::new(5.0, 4.0))); // 51° off axis
        assert!(!s.contains(Xy::new(0.0, -1.0)));
        assert!(sector(0.0, 360.0).contains(Xy::new(0.0, -9.0)));
        assert!(!sector(0.0, 0.0).contains(Xy::new(0.0, 1.0)));
    }

    #[test]
    fn a_segment_across_the_axis_is_clipped_by_both_edges() {
        // East-west line 5 m north of a camera looking north with 90°: inside for |x| <= 5.
        let s = sector(0.0, 90.0);
        let iv = s.clip_segment(Xy::new(-20.0, 5.0), Xy::new(20.0, 5.0));
        assert_eq!(iv.len(), 1);
        let (a, b) = iv[0];
        assert!((a - 0.375).abs() < 1e-9 && (b - 0.625).abs() < 1e-9, "{iv:?}");
    }

    #[test]
    fn circle_limits_a_line_along_the_axis() {
        let s = sector(90.0, 60.0);
        let iv = s.clip_segment(Xy::new(-5.0, 0.0), Xy::new(15.0, 0.0));
        assert_eq!(iv, vec![(0.25, 0.75)]);
    }

    #[test]
    fn wide_view_behind_the_camera_is_a_union() {
        // 270° looking north: everything but the south-facing 90° wedge.
        let s = sector(0.0, 270.0);
        let iv = s.clip_segment(Xy::new(-20.0, -5.0), Xy::new(20.0, -5.0));
        // y = -5: the blind wedge (|x| < 5) is cut out; the circle limits |x| <= sqrt(75).
        assert_eq!(iv.len(), 2, "{iv:?}");
        let len = total(&iv) * 40.0;
        assert!((len - 2.0 * (75f64.sqrt() - 5.0)).abs() < 1e-6, "{len}");
    }

    #[test]
    fn opposite_wedge_is_not_counted() {
        let s = sector(0.0, 60.0);
        assert!(s.clip_segment(Xy::new(-5.0, -5.0), Xy::new(5.0, -5.0)).is_empty());
    }

    #[test]
    fn clipping_agrees_with_point_sampling() {
        for (bearing, hfov) in [(0.0, 30.0), (33.0, 90.0), (200.0, 179.0), (300.0, 200.0), (10.0, 350.0)] {
            let s = Sector { apex: Xy::new(1.0, 2.0), bearing_deg: bearing, hfov_deg: hfov, radius: 12.0 };
            for (a, b) in [((-15.0, 3.0), (14.0, 9.0)), ((0.0, -14.0), (3.0, 15.0)), ((-9.0, -9.0), (12.0, 10.0))] {
                let (a, b) = (Xy::new(a.0, a.1), Xy::new(b.0, b.1));
                let exact = total(&s.clip_segment(a, b));
                let n = 20_000;
                let inside = (0..n).filter(|i| s.contains(a.lerp(b, (*i as f64 + 0.5) / n as f64))).count();
                let sampled = inside as f64 / n as f64;
                assert!((exact - sampled).abs() < 1e-3, "{bearing}/{hfov}: {exact} vs {sampled}");
            }
        }
    }

    #[test]
    fn bounds_cover_the_outline() {
        let s = Sector { apex: Xy::new(3.0, -2.0), bearing_deg: 80.0, hfov_deg: 120.0, radius: 20.0 };
        let b = s.bounds();
        for p in s.outline(1.0) {
            assert!(p.x >= b[0] - 1e-9 && p.y >= b[1] - 1e-9 && p.x <= b[2] + 1e-9 && p.y <= b[3] + 1e-9);
        }
        // Looking east with 120°: the eastmost point is at full range.
        assert!((b[2] - 23.0).abs() < 1e-9);
    }
}
