//! Perspective: homographies between quads and warping an image into a quad of another, with
//! anti-aliased edges (how a flat plate or vehicle lands in a scene).

use super::rgb::{Rgb, blend_px};

/// The homography taking `src[i]` to `dst[i]` (row-major, `h[8]` = 1); NaN when degenerate.
pub fn homography(src: [(f32, f32); 4], dst: [(f32, f32); 4]) -> [f64; 9] {
    crate::detect::imageops::homography(&src, &dst).unwrap_or([f64::NAN; 9])
}

/// `h` applied to a point.
pub fn apply_homography(h: &[f64; 9], p: (f32, f32)) -> (f32, f32) {
    crate::detect::imageops::apply(h, p.0, p.1)
}

/// Pastes `src` onto `dst` so that its corners (top-left, top-right, bottom-right, bottom-left)
/// land on `quad`, a convex quadrilateral: bilinear sampling through the inverse homography, only
/// pixels inside the quad, edges anti-aliased over one pixel.
pub fn warp_into(dst: &mut Rgb, src: &Rgb, quad: [(f32, f32); 4]) {
    warp_masked(dst, src, None, quad);
}

/// [`warp_into`] with an optional per-pixel opacity channel for `src`; returns the bounding box
/// `(x0, y0, x1, y1)` (exclusive ends) of the pixels it may have changed.
pub(super) fn warp_masked(
    dst: &mut Rgb,
    src: &Rgb,
    alpha: Option<&[u8]>,
    quad: [(f32, f32); 4],
) -> Option<(u32, u32, u32, u32)> {
    if src.w == 0 || src.h == 0 || dst.w == 0 || dst.h == 0 {
        return None;
    }
    if let Some(a) = alpha {
        assert_eq!(a.len(), src.w as usize * src.h as usize, "opacity channel size");
    }
    let q: Vec<(f64, f64)> = quad.iter().map(|&(x, y)| (x as f64, y as f64)).collect();
    let eq = |a: f64, b: f64| (a - b).abs() < 1e-6;
    if eq(q[0].1, q[1].1) && eq(q[2].1, q[3].1) && eq(q[0].0, q[3].0) && eq(q[1].0, q[2].0) {
        let (x0, x1) = (q[0].0.min(q[1].0), q[0].0.max(q[1].0));
        let (y0, y1) = (q[0].1.min(q[3].1), q[0].1.max(q[3].1));
        // Only the upright orientation takes the separable path (a mirrored quad is projective).
        if q[0].0 < q[1].0 && q[0].1 < q[3].1 {
            return warp_upright(dst, src, alpha, (x0, y0, x1, y1));
        }
    }
    let (sw, sh) = (src.w as f32, src.h as f32);
    let hm = homography(quad, [(0.0, 0.0), (sw, 0.0), (sw, sh), (0.0, sh)]);
    if hm.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let area2: f64 = (0..4).map(|i| q[i].0 * q[(i + 1) % 4].1 - q[(i + 1) % 4].0 * q[i].1).sum();
    if area2.abs() < 1e-9 {
        return None;
    }
    let sign = area2.signum();
    // Edge functions a x + b y + c: distance in pixels, positive inside.
    let mut edges = [(0f64, 0f64, 0f64); 4];
    for i in 0..4 {
        let (p, r) = (q[i], q[(i + 1) % 4]);
        let len = ((r.0 - p.0).powi(2) + (r.1 - p.1).powi(2)).sqrt().max(1e-9);
        let a = -(r.1 - p.1) * sign / len;
        let b = (r.0 - p.0) * sign / len;
        edges[i] = (a, b, -(a * p.0 + b * p.1));
    }
    let (bx0, by0, bx1, by1) = clip_box(dst, &q)?;
    let (sw_i, sh_i) = (src.w as usize, src.h as usize);
    let (umax, vmax) = ((sw_i - 1) as f64, (sh_i - 1) as f64);
    let dw = dst.w as usize;
    // The span of pixel centres on row `yc` where every edge function exceeds `t`.
    let span = |yc: f64, t: f64| -> Option<(f64, f64)> {
        let (mut lo, mut hi) = (bx0 as f64, bx1 as f64);
        for &(a, b, c) in &edges {
            let k = t - b * yc - c;
            if a > 1e-12 {
                lo = lo.max(k / a);
            } else if a < -1e-12 {
                hi = hi.min(k / a);
            } else if k >= 0.0 {
                return None;
            }
        }
        (lo <= hi).then_some((lo, hi))
    };
    for y in by0..by1 {
        let yc = y as f64 + 0.5;
        let Some((lo, hi)) = span(yc, -0.5) else { continue };
        let inner = span(yc, 0.5).unwrap_or((f64::MAX, f64::MIN));
        let xs = ((lo - 0.5).floor() as i64).max(bx0);
        let xe = ((hi - 0.5).ceil() as i64 + 1).min(bx1);
        let row = y as usize * dw;
        let (u_y, v_y, w_y) = (hm[1] * yc + hm[2], hm[4] * yc + hm[5], hm[7] * yc + hm[8]);
        for x in xs..xe {
            let xc = x as f64 + 0.5;
            let cov = if xc >= inner.0 && xc <= inner.1 {
                256
            } else {
                let mut d = f64::MAX;
                for &(a, b, c) in &edges {
                    d = d.min(a * xc + b * yc + c);
                }
                ((d + 0.5).clamp(0.0, 1.0) * 256.0).round() as u32
            };
            if cov == 0 {
                continue;
            }
            let w = hm[6] * xc + w_y;
            if w.abs() < 1e-12 {
                continue;
            }
            let u = ((hm[0] * xc + u_y) / w - 0.5).clamp(0.0, umax);
            let v = ((hm[3] * xc + v_y) / w - 0.5).clamp(0.0, vmax);
            let (x0, y0) = (u as usize, v as usize);
            let fx = ((u - x0 as f64) * 256.0) as u32;
            let fy = ((v - y0 as f64) * 256.0) as u32;
            let tap = Tap::new(sw_i, (x0, (x0 + 1).min(sw_i - 1), fx), (y0, (y0 + 1).min(sh_i - 1), fy));
            let di = (row + x as usize) * 3;
            tap.put(&mut dst.data[di..di + 3], &src.data, alpha, cov);
        }
    }
    Some((bx0 as u32, by0 as u32, bx1 as u32, by1 as u32))
}

/// The pixel box (exclusive ends) of `dst` around the points, one pixel wider; `None` if empty.
fn clip_box(dst: &Rgb, q: &[(f64, f64)]) -> Option<(i64, i64, i64, i64)> {
    let min_x = q.iter().map(|p| p.0).fold(f64::MAX, f64::min);
    let max_x = q.iter().map(|p| p.0).fold(f64::MIN, f64::max);
    let min_y = q.iter().map(|p| p.1).fold(f64::MAX, f64::min);
    let max_y = q.iter().map(|p| p.1).fold(f64::MIN, f64::max);
    let bx0 = (min_x.floor() - 1.0).clamp(0.0, dst.w as f64) as i64;
    let bx1 = (max_x.ceil() + 1.0).clamp(0.0, dst.w as f64) as i64;
    let by0 = (min_y.floor() - 1.0).clamp(0.0, dst.h as f64) as i64;
    let by1 = (max_y.ceil() + 1.0).clamp(0.0, dst.h as f64) as i64;
    (bx0 < bx1 && by0 < by1).then_some((bx0, by0, bx1, by1))
}

/// One bilinear sample: four source pixel indices and fixed-point weights summing to 65536.
#[derive(Clone, Copy)]
struct Tap {
    idx: [usize; 4],
    w: [u32; 4],
}

impl Tap {
    /// From `(x0, x1, fx)` and `(y0, y1, fy)`, fractions in 256ths.
    #[inline(always)]
    fn new(sw: usize, x: (usize, usize, u32), y: (usize, usize, u32)) -> Tap {
        let (gx, gy) = (256 - x.2, 256 - y.2);
        Tap {
            idx: [y.0 * sw + x.0, y.0 * sw + x.1, y.1 * sw + x.0, y.1 * sw + x.1],
            w: [gx * gy, x.2 * gy, gx * y.2, x.2 * y.2],
        }
    }

    /// Samples `src` (and its opacity) and blends into `px` with edge coverage `cov` (0–256).
    #[inline(always)]
    fn put(&self, px: &mut [u8], src: &[u8], alpha: Option<&[u8]>, cov: u32) {
        let [i0, i1, i2, i3] = self.idx;
        let [w0, w1, w2, w3] = self.w;
        let a = match alpha {
            Some(al) => {
                (al[i0] as u32 * w0 + al[i1] as u32 * w1 + al[i2] as u32 * w2 + al[i3] as u32 * w3 + 32768) >> 16
            }
            None => 255,
        };
        if a == 0 {
            return;
        }
        let (i0, i1, i2, i3) = (i0 * 3, i1 * 3, i2 * 3, i3 * 3);
        let mut c = [0u8; 3];
        let mut ch = 0;
        while ch < 3 {
            let s = src[i0 + ch] as u32 * w0
                + src[i1 + ch] as u32 * w1
                + src[i2 + ch] as u32 * w2
                + src[i3 + ch] as u32 * w3;
            c[ch] = ((s + 32768) >> 16) as u8;
            ch += 1;
        }
        let o = a * cov;
        if o >= 255 * 256 {
            px[..3].copy_from_slice(&c);
        } else {
            let f = o as f32 / (255.0 * 256.0);
            blend_px(px, [c[0] as f32, c[1] as f32, c[2] as f32], f);
        }
    }
}

/// [`warp_masked`] for an upright rectangle `(x0, y0, x1, y1)`: a separable scaling, the source
/// positions and coverages worked out once per column and once per row.
fn warp_upright(
    dst: &mut Rgb,
    src: &Rgb,
    alpha: Option<&[u8]>,
    r: (f64, f64, f64, f64),
) -> Option<(u32, u32, u32, u32)> {
    let (x0, y0, x1, y1) = r;
    if x1 - x0 < 1e-6 || y1 - y0 < 1e-6 {
        return None;
    }
    let (bx0, by0, bx1, by1) = clip_box(dst, &[(x0, y0), (x1, y1)])?;
    // Per destination column (or row): the two source columns, the fraction and the coverage.
    let axis = |from: i64, to: i64, lo: f64, hi: f64, n: usize| -> Vec<(usize, usize, u32, u32)> {
        let scale = n as f64 / (hi - lo);
        (from..to)
            .map(|i| {
                let c = i as f64 + 0.5;
                let cov = (((c - lo).min(hi - c) + 0.5).clamp(0.0, 1.0) * 256.0).round() as u32;
                let s = ((c - lo) * scale - 0.5).clamp(0.0, (n - 1) as f64);
                let s0 = s as usize;
                (s0, (s0 + 1).min(n - 1), ((s - s0 as f64) * 256.0) as u32, cov)
            })
            .collect()
    };
    let (sw, sh) = (src.w as usize, src.h as usize);
    let cols = axis(bx0, bx1, x0, x1, sw);
    let rows = axis(by0, by1, y0, y1, sh);
    let dw = dst.w as usize;
    for (ry, &(sy0, sy1, fy, rcov)) in rows.iter().enumerate() {
        if rcov == 0 {
            continue;
        }
        let row = (by0 as usize + ry) * dw + bx0 as usize;
        // Index loops rather than iterator adaptors: this is the per-pixel cost of a simulated
        // camera, and tests run it unoptimised.
        let mut i = 0;
        while i < cols.len() {
            let (sx0, sx1, fx, ccov) = cols[i];
            let cov = (rcov * ccov + 128) >> 8;
            if cov != 0 {
                let d = (row + i) * 3;
                Tap::new(sw, (sx0, sx1, fx), (sy0, sy1, fy)).put(&mut dst.data[d..d + 3], &src.data, alpha, cov);
            }
            i += 1;
        }
    }
    Some((bx0 as u32, by0 as u32, bx1 as u32, by1 as u32))
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::sim::plates::shapes::sd_convex;

    #[test]
    fn homography_maps_the_corners() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..200 {
            let src: [(f32, f32); 4] = [(0.0, 0.0), (440.0, 0.0), (440.0, 140.0), (0.0, 140.0)];
            let mut dst = src;
            for p in &mut dst {
                p.0 = p.0 * rng.gen_range(0.3..2.0) + rng.gen_range(-40.0..900.0);
                p.1 = p.1 * rng.gen_range(0.3..2.0) + rng.gen_range(-40.0..500.0);
            }
            let dst = [dst[0], (dst[1].0.max(dst[0].0 + 50.0), dst[1].1), dst[2], dst[3]];
            let h = homography(src, dst);
            if h.iter().any(|v| !v.is_finite()) {
                continue;
            }
            for i in 0..4 {
                let q = apply_homography(&h, src[i]);
                assert!((q.0 - dst[i].0).abs() < 1e-3 && (q.1 - dst[i].1).abs() < 1e-3, "{q:?} vs {:?}", dst[i]);
            }
        }
        let degenerate = homography([(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (3.0, 0.0)], [(0.0, 0.0); 4]);
        assert!(degenerate.iter().any(|v| !v.is_finite()));
    }

    /// Signed distance of `p` from the convex quad's boundary, positive inside.
    fn inside_by(q: &[(f32, f32); 4], p: (f32, f32)) -> f32 {
        -sd_convex(p.0, p.1, q)
    }

    #[test]
    fn warp_puts_the_source_inside_the_quad() {
        let src = Rgb::new(88, 28, [250, 20, 20]);
        let mut dst = Rgb::new(200, 150, [0, 0, 0]);
        let quad = [(40.3, 30.7), (150.2, 52.9), (140.8, 95.1), (35.6, 82.4)];
        warp_into(&mut dst, &src, quad);
        let mut red = 0.0;
        for y in 0..dst.h {
            for x in 0..dst.w {
                let c = dst.get(x, y);
                let d = inside_by(&quad, (x as f32 + 0.5, y as f32 + 0.5));
                if d > 1.0 {
                    assert_eq!(c, [250, 20, 20], "({x}, {y}) inside by {d}");
                } else if d < -1.0 {
                    assert_eq!(c, [0, 0, 0], "({x}, {y}) outside by {d}");
                }
                red += c[0] as f32 / 250.0;
            }
        }
        // The shoelace area of the quad, matched by the painted coverage.
        let area: f32 =
            (0..4).map(|i| quad[i].0 * quad[(i + 1) % 4].1 - quad[(i + 1) % 4].0 * quad[i].1).sum::<f32>() / 2.0;
        assert!((red - area).abs() / area < 0.02, "painted {red} vs area {area}");

        // A source with distinct quadrants lands the right way round.
        let mut src = Rgb::new(40, 20, [0, 0, 255]);
        src.fill_rect(0.0, 0.0, 20.0, 10.0, [255, 0, 0], 1.0);
        let mut dst = Rgb::new(100, 100, [0, 0, 0]);
        warp_into(&mut dst, &src, [(10.0, 10.0), (90.0, 10.0), (90.0, 50.0), (10.0, 50.0)]);
        assert_eq!(dst.get(20, 15), [255, 0, 0]);
        assert_eq!(dst.get(80, 45), [0, 0, 255]);
        assert_eq!(dst.get(50, 70), [0, 0, 0]);
    }
}
