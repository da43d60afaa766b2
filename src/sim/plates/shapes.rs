//! Shapes drawn from signed distance functions: boxes with rounded corners, ellipses, thick
//! segments and convex polygons.
//!
//! Distances are in pixel units, negative inside: the coverage of a pixel is `0.5 - d` clamped to
//! 0–1 at its centre, which anti-aliases every edge.

use super::rgb::{Rgb, blend_px};

/// Signed distance to a box centred at the origin with half sizes `hx`, `hy` and corner radius `r`.
pub(super) fn sd_box(px: f32, py: f32, hx: f32, hy: f32, r: f32) -> f32 {
    let r = r.min(hx).min(hy).max(0.0);
    let qx = px.abs() - (hx - r);
    let qy = py.abs() - (hy - r);
    let outside = (qx.max(0.0).powi(2) + qy.max(0.0).powi(2)).sqrt();
    outside + qx.max(qy).min(0.0) - r
}

/// Approximate signed distance to an axis-aligned ellipse centred at the origin.
pub(super) fn sd_ellipse(px: f32, py: f32, rx: f32, ry: f32) -> f32 {
    let k = ((px / rx).powi(2) + (py / ry).powi(2)).sqrt();
    (k - 1.0) * rx.min(ry)
}

/// Distance to the segment `a`–`b` minus half the width.
pub(super) fn sd_segment(px: f32, py: f32, a: (f32, f32), b: (f32, f32), half_width: f32) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 { (((px - a.0) * dx + (py - a.1) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let (ex, ey) = (px - a.0 - t * dx, py - a.1 - t * dy);
    (ex * ex + ey * ey).sqrt() - half_width
}

/// Signed distance (exact near the edges) to a convex polygon given clockwise on screen.
pub(super) fn sd_convex(px: f32, py: f32, pts: &[(f32, f32)]) -> f32 {
    let mut d = f32::MIN;
    for i in 0..pts.len() {
        let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
        let (ex, ey) = (b.0 - a.0, b.1 - a.1);
        let len = (ex * ex + ey * ey).sqrt().max(1e-6);
        // Outward normal of a clockwise-on-screen (y down) polygon is (ey, -ex).
        d = d.max(((px - a.0) * ey - (py - a.1) * ex) / len);
    }
    d
}

/// Blends colour `c` wherever `sdf` (pixel units) covers a pixel inside the bounding box
/// `(x0, y0, x1, y1)`. With `alpha`, the coverage also raises that per-pixel opacity channel.
pub(super) fn fill_sdf(
    img: &mut Rgb,
    mut alpha: Option<&mut [u8]>,
    bbox: (f32, f32, f32, f32),
    c: [u8; 3],
    opacity: f32,
    sdf: impl Fn(f32, f32) -> f32,
) {
    let xs = (bbox.0.min(bbox.2).floor() as i64 - 1).max(0);
    let ys = (bbox.1.min(bbox.3).floor() as i64 - 1).max(0);
    let xe = (bbox.0.max(bbox.2).ceil() as i64 + 1).min(img.w as i64);
    let ye = (bbox.1.max(bbox.3).ceil() as i64 + 1).min(img.h as i64);
    let cf = [c[0] as f32, c[1] as f32, c[2] as f32];
    let mut put = |img: &mut Rgb, x: i64, y: i64, cov: f32| {
        let i = y as usize * img.w as usize + x as usize;
        blend_px(&mut img.data[i * 3..i * 3 + 3], cf, cov);
        if let Some(a) = alpha.as_deref_mut() {
            let v = (cov * 255.0).round() as u8;
            if v > a[i] {
                a[i] = v;
            }
        }
    };
    // The distance functions change by at most one per pixel, so a distance far outside (or
    // inside) also settles that many following pixels without evaluating them.
    for y in ys..ye {
        let yc = y as f32 + 0.5;
        let mut x = xs;
        while x < xe {
            let d = sdf(x as f32 + 0.5, yc);
            if d >= 0.5 {
                x += (d - 0.5) as i64 + 1;
            } else if d <= -0.5 {
                let end = (x + (-0.5 - d) as i64 + 1).min(xe);
                for x in x..end {
                    put(img, x, y, opacity);
                }
                x = end;
            } else {
                put(img, x, y, (0.5 - d) * opacity);
                x += 1;
            }
        }
    }
}
