//! A local projection: metres east (x) and north (y) of an origin near the middle of the data.
//!
//! Longitude and latitude are scaled by the WGS84 ellipsoid's radii of curvature at the origin's
//! latitude (an equirectangular projection tangent there). Within ±25 km of the origin the scale
//! error stays below 0.1 % (a city district; a 50 m entrance stretch is off by under 5 cm), which
//! is far below the accuracy of surveyed camera positions. A whole province would need a
//! transverse Mercator zone instead.

use serde::Serialize;

/// WGS84 semi-major axis, metres.
const A: f64 = 6_378_137.0;
/// WGS84 first eccentricity squared.
const E2: f64 = 0.006_694_379_990_14;

/// A point in the local projection, metres.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Xy {
    pub x: f64,
    pub y: f64,
}

impl Xy {
    pub const fn new(x: f64, y: f64) -> Xy {
        Xy { x, y }
    }
    pub fn minus(self, o: Xy) -> Xy {
        Xy::new(self.x - o.x, self.y - o.y)
    }
    pub fn plus(self, o: Xy) -> Xy {
        Xy::new(self.x + o.x, self.y + o.y)
    }
    pub fn scale(self, k: f64) -> Xy {
        Xy::new(self.x * k, self.y * k)
    }
    pub fn dot(self, o: Xy) -> f64 {
        self.x * o.x + self.y * o.y
    }
    /// z of the 3-D cross product: > 0 when `o` is counter-clockwise of `self`.
    pub fn cross(self, o: Xy) -> f64 {
        self.x * o.y - self.y * o.x
    }
    pub fn len(self) -> f64 {
        self.x.hypot(self.y)
    }
    pub fn dist(self, o: Xy) -> f64 {
        self.minus(o).len()
    }
    /// The point a fraction `t` of the way from `self` to `o`.
    pub fn lerp(self, o: Xy, t: f64) -> Xy {
        Xy::new(self.x + (o.x - self.x) * t, self.y + (o.y - self.y) * t)
    }
    /// Unit vector of a compass bearing (degrees clockwise from north).
    pub fn from_bearing(deg: f64) -> Xy {
        let r = deg.to_radians();
        Xy::new(r.sin(), r.cos())
    }
    /// Compass bearing of this vector, degrees in [0, 360).
    pub fn bearing(self) -> f64 {
        self.x.atan2(self.y).to_degrees().rem_euclid(360.0)
    }
}

/// The projection: origin and metres per degree there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalProj {
    pub lon0: f64,
    pub lat0: f64,
    kx: f64,
    ky: f64,
}

impl LocalProj {
    pub fn new(lon0: f64, lat0: f64) -> LocalProj {
        let phi = lat0.to_radians();
        let w = (1.0 - E2 * phi.sin().powi(2)).sqrt();
        let n = A / w; // prime vertical radius of curvature
        let m = A * (1.0 - E2) / (w * w * w); // meridional radius of curvature
        LocalProj { lon0, lat0, kx: n * phi.cos() * std::f64::consts::PI / 180.0, ky: m * std::f64::consts::PI / 180.0 }
    }

    /// Centred on the middle of the bounding box of `points` (`[lon, lat]`); (0, 0) when empty.
    pub fn around<'a>(points: impl IntoIterator<Item = &'a [f64; 2]>) -> LocalProj {
        let mut b = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        for p in points {
            b = [b[0].min(p[0]), b[1].min(p[1]), b[2].max(p[0]), b[3].max(p[1])];
        }
        if b[0].is_finite() {
            LocalProj::new((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0)
        } else {
            LocalProj::new(0.0, 0.0)
        }
    }

    pub fn fwd(&self, lon: f64, lat: f64) -> Xy {
        Xy::new((lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky)
    }

    pub fn fwd_pt(&self, p: [f64; 2]) -> Xy {
        self.fwd(p[0], p[1])
    }

    /// Back to `[lon, lat]`, rounded to 1e-7 degrees (about 1 cm).
    pub fn inv(&self, p: Xy) -> [f64; 2] {
        let r = |v: f64| (v * 1e7).round() / 1e7;
        [r(self.lon0 + p.x / self.kx), r(self.lat0 + p.y / self.ky)]
    }
}

/// Great-circle distance in metres (spherical, mean radius): for checks and for callers far apart.
pub fn haversine_m(a: [f64; 2], b: [f64; 2]) -> f64 {
    let (p1, p2) = (a[1].to_radians(), b[1].to_radians());
    let (dp, dl) = (p2 - p1, (b[0] - a[0]).to_radians());
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * h.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_matches_geodesic_distance_within_a_district() {
        let p = LocalProj::new(113.665, 34.757);
        for (lon, lat) in [(113.70, 34.757), (113.665, 34.80), (113.62, 34.70), (113.75, 34.85)] {
            let d_proj = p.fwd(lon, lat).len();
            let d_geo = haversine_m([113.665, 34.757], [lon, lat]);
            // The sphere itself differs from the ellipsoid by up to 0.5 %.
            assert!((d_proj - d_geo).abs() / d_geo < 0.005, "{lon},{lat}: {d_proj} vs {d_geo}");
        }
    }

    #[test]
    fn inverse_round_trips() {
        let p = LocalProj::new(24.94, 60.17);
        let q = p.inv(p.fwd(24.95, 60.18));
        assert!((q[0] - 24.95).abs() < 1e-7 && (q[1] - 60.18).abs() < 1e-7, "{q:?}");
    }

    #[test]
    fn a_degree_of_latitude_is_about_111_km() {
        let p = LocalProj::new(0.0, 45.0);
        let y = p.fwd(0.0, 46.0).y;
        assert!((y - 111_141.0).abs() < 50.0, "{y}");
    }

    #[test]
    fn bearings() {
        assert!((Xy::new(1.0, 0.0).bearing() - 90.0).abs() < 1e-9);
        assert!((Xy::new(0.0, -1.0).bearing() - 180.0).abs() < 1e-9);
        let u = Xy::from_bearing(270.0);
        assert!((u.x + 1.0).abs() < 1e-12 && u.y.abs() < 1e-12);
    }
}
