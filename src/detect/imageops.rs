//! Small image operations on packed RGB buffers: resizing, perspective rectification, JPEG.

// Per-channel and per-row index loops read best as they are.
#![allow(clippy::needless_range_loop)]

/// A packed RGB picture (R, G, B per pixel, no row padding).
#[derive(Clone, PartialEq)]
pub struct Rgb {
    pub w: u32,
    pub h: u32,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Rgb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rgb({}x{})", self.w, self.h)
    }
}

impl Rgb {
    pub fn new(w: u32, h: u32) -> Self {
        Self { w, h, data: vec![0; (w * h * 3) as usize] }
    }

    /// Bilinear sample at (x, y) in pixel-centre coordinates; outside → edge pixel.
    #[inline]
    pub fn sample(&self, x: f32, y: f32) -> [f32; 3] {
        let (w, h) = (self.w as i32, self.h as i32);
        let x = x - 0.5;
        let y = y - 0.5;
        let x0 = x.floor();
        let y0 = y.floor();
        let fx = x - x0;
        let fy = y - y0;
        let (x0, y0) = (x0 as i32, y0 as i32);
        let px = |xx: i32, yy: i32| {
            let xx = xx.clamp(0, w - 1) as usize;
            let yy = yy.clamp(0, h - 1) as usize;
            let i = (yy * self.w as usize + xx) * 3;
            [self.data[i] as f32, self.data[i + 1] as f32, self.data[i + 2] as f32]
        };
        let (a, b, c, d) = (px(x0, y0), px(x0 + 1, y0), px(x0, y0 + 1), px(x0 + 1, y0 + 1));
        let mut out = [0f32; 3];
        for k in 0..3 {
            let top = a[k] + (b[k] - a[k]) * fx;
            let bot = c[k] + (d[k] - c[k]) * fx;
            out[k] = top + (bot - top) * fy;
        }
        out
    }

    /// Area-averaged resize (downscale) or bilinear (upscale): each output pixel is the bilinear
    /// sample at its centre, or, when either axis shrinks by more than 1.5, the mean of a 2×2 grid
    /// of bilinear samples inside it. Computed separably (the sample grid is a product of one per
    /// axis): a row pass, then a column pass.
    pub fn resize(&self, w: u32, h: u32) -> Rgb {
        let mut out = Rgb::new(w, h);
        if w == 0 || h == 0 || self.w == 0 || self.h == 0 {
            return out;
        }
        let multi = self.w as f32 / w as f32 > 1.5 || self.h as f32 / h as f32 > 1.5;
        let offsets: &[f32] = if multi { &[0.25, 0.75] } else { &[0.5] };
        let xt = axis_taps(w, self.w, offsets);
        let yt = axis_taps(h, self.h, offsets);
        let (sw, ow) = (self.w as usize, w as usize);
        // Which source rows any output row uses.
        let mut used = vec![false; self.h as usize];
        for t in &yt {
            for &(r, _) in t {
                used[r] = true;
            }
        }
        let mut rows = vec![0f32; self.h as usize * ow * 3];
        for (r, _) in used.iter().enumerate().filter(|u| *u.1) {
            let src = &self.data[r * sw * 3..(r + 1) * sw * 3];
            let dst = &mut rows[r * ow * 3..(r + 1) * ow * 3];
            for (x, taps) in xt.iter().enumerate() {
                let mut acc = [0f32; 3];
                for &(c, wt) in taps {
                    let p = &src[c * 3..c * 3 + 3];
                    acc[0] += p[0] as f32 * wt;
                    acc[1] += p[1] as f32 * wt;
                    acc[2] += p[2] as f32 * wt;
                }
                dst[x * 3..x * 3 + 3].copy_from_slice(&acc);
            }
        }
        for (y, taps) in yt.iter().enumerate() {
            let dst = &mut out.data[y * ow * 3..(y + 1) * ow * 3];
            let mut acc = vec![0f32; ow * 3];
            for &(r, wt) in taps {
                for (a, v) in acc.iter_mut().zip(&rows[r * ow * 3..(r + 1) * ow * 3]) {
                    *a += v * wt;
                }
            }
            for (d, a) in dst.iter_mut().zip(&acc) {
                *d = a.round().clamp(0.0, 255.0) as u8;
            }
        }
        out
    }

    pub fn crop(&self, x: u32, y: u32, w: u32, h: u32) -> Rgb {
        let x = x.min(self.w.saturating_sub(1));
        let y = y.min(self.h.saturating_sub(1));
        let w = w.min(self.w - x).max(1);
        let h = h.min(self.h - y).max(1);
        let mut out = Rgb::new(w, h);
        for yy in 0..h {
            let s = (((y + yy) * self.w + x) * 3) as usize;
            let d = ((yy * w) * 3) as usize;
            out.data[d..d + (w * 3) as usize].copy_from_slice(&self.data[s..s + (w * 3) as usize]);
        }
        out
    }

    /// Pictures of the same height side by side, left to right; None when the heights differ or
    /// there is nothing to join.
    pub fn hcat(parts: &[&Rgb]) -> Option<Rgb> {
        let h = parts.first()?.h;
        if parts.iter().any(|p| p.h != h) {
            return None;
        }
        let w: u32 = parts.iter().map(|p| p.w).sum();
        let mut out = Rgb::new(w, h);
        let mut x0 = 0u32;
        for p in parts {
            for y in 0..h {
                let s = ((y * p.w) * 3) as usize;
                let d = ((y * w + x0) * 3) as usize;
                out.data[d..d + (p.w * 3) as usize].copy_from_slice(&p.data[s..s + (p.w * 3) as usize]);
            }
            x0 += p.w;
        }
        Some(out)
    }

    /// Whether the picture has no colour to speak of (an infrared night picture, a grey camera):
    /// at most 1 % of a sample of its pixels have channels more than 24 apart.
    pub fn is_grey(&self) -> bool {
        let n = (self.w * self.h) as usize;
        if n == 0 {
            return true;
        }
        let step = (n / 4096).max(1);
        let (mut coloured, mut seen) = (0usize, 0usize);
        for i in (0..n).step_by(step) {
            let p = &self.data[i * 3..i * 3 + 3];
            let (mx, mn) = (p.iter().max().copied().unwrap_or(0), p.iter().min().copied().unwrap_or(0));
            coloured += (mx - mn > 24) as usize;
            seen += 1;
        }
        coloured * 100 <= seen
    }

    pub fn to_jpeg(&self, quality: u8) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .encode(&self.data, self.w, self.h, image::ExtendedColorType::Rgb8)
            .map_err(|e| format!("jpeg: {e}"))?;
        Ok(out)
    }

    pub fn from_jpeg(bytes: &[u8]) -> Result<Rgb, String> {
        let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg).map_err(|e| e.to_string())?;
        let rgb = img.to_rgb8();
        Ok(Rgb { w: rgb.width(), h: rgb.height(), data: rgb.into_raw() })
    }
}

/// The homography mapping `src[i]` to `dst[i]` (row-major 3×3, h33 = 1).
pub fn homography(src: &[(f32, f32); 4], dst: &[(f32, f32); 4]) -> Option<[f64; 9]> {
    let mut a = [[0f64; 9]; 8];
    for i in 0..4 {
        let (x, y) = (src[i].0 as f64, src[i].1 as f64);
        let (u, v) = (dst[i].0 as f64, dst[i].1 as f64);
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    // Gaussian elimination with partial pivoting on the 8×9 augmented matrix.
    for col in 0..8 {
        let piv = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        for r in 0..8 {
            if r != col {
                let f = a[r][col] / a[col][col];
                for c in col..9 {
                    a[r][c] -= f * a[col][c];
                }
            }
        }
    }
    let mut h = [0f64; 9];
    for i in 0..8 {
        h[i] = a[i][8] / a[i][i];
    }
    h[8] = 1.0;
    Some(h)
}

pub fn apply(h: &[f64; 9], x: f32, y: f32) -> (f32, f32) {
    let (x, y) = (x as f64, y as f64);
    let d = h[6] * x + h[7] * y + h[8];
    (((h[0] * x + h[1] * y + h[2]) / d) as f32, ((h[3] * x + h[4] * y + h[5]) / d) as f32)
}

/// The quadrilateral `quad` (TL, TR, BR, BL in `src`) rectified to a `w`×`h` picture.
pub fn rectify(src: &Rgb, quad: &[(f32, f32); 4], w: u32, h: u32) -> Option<Rgb> {
    let out_corners = [(0.0, 0.0), (w as f32, 0.0), (w as f32, h as f32), (0.0, h as f32)];
    let hm = homography(&out_corners, quad)?;
    let mut out = Rgb::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = apply(&hm, x as f32 + 0.5, y as f32 + 0.5);
            let p = src.sample(sx, sy);
            let i = ((y * w + x) * 3) as usize;
            for k in 0..3 {
                out.data[i + k] = p[k].round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    Some(out)
}

/// The source pixels (index, weight) each of `n_out` output pixels along one axis draws on: the
/// mean of bilinear samples at `offsets` within the output pixel (pixel-centre coordinates, edge
/// pixels repeated outside).
fn axis_taps(n_out: u32, n_in: u32, offsets: &[f32]) -> Vec<Vec<(usize, f32)>> {
    let s = n_in as f32 / n_out as f32;
    let last = n_in as i64 - 1;
    (0..n_out)
        .map(|o| {
            let mut taps: Vec<(usize, f32)> = Vec::with_capacity(4);
            for &d in offsets {
                let x = (o as f32 + d) * s - 0.5;
                let x0 = x.floor();
                let f = x - x0;
                for (xx, wt) in [(x0 as i64, 1.0 - f), (x0 as i64 + 1, f)] {
                    let xx = xx.clamp(0, last) as usize;
                    let wt = wt / offsets.len() as f32;
                    match taps.iter_mut().find(|t| t.0 == xx) {
                        Some(t) => t.1 += wt,
                        None => taps.push((xx, wt)),
                    }
                }
            }
            taps
        })
        .collect()
}

/// Corners in the order TL, TR, BR, BL (sorted by angle around their centroid).
pub fn order_corners(p: [(f32, f32); 4]) -> [(f32, f32); 4] {
    let cx = p.iter().map(|q| q.0).sum::<f32>() / 4.0;
    let cy = p.iter().map(|q| q.1).sum::<f32>() / 4.0;
    let mut v = p.to_vec();
    v.sort_by(|a, b| (a.1 - cy).atan2(a.0 - cx).total_cmp(&(b.1 - cy).atan2(b.0 - cx)));
    // atan2 from -π: TL (-135°), TR (-45°), BR (45°), BL (135°).
    [v[0], v[1], v[2], v[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The resize as first written, one bilinear sample (or a 2×2 grid of them) per pixel.
    fn resize_reference(src: &Rgb, w: u32, h: u32) -> Rgb {
        let mut out = Rgb::new(w, h);
        let sx = src.w as f32 / w as f32;
        let sy = src.h as f32 / h as f32;
        for y in 0..h {
            for x in 0..w {
                let px = if sx > 1.5 || sy > 1.5 {
                    let mut acc = [0f32; 3];
                    for (dx, dy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                        let s = src.sample((x as f32 + dx) * sx, (y as f32 + dy) * sy);
                        for k in 0..3 {
                            acc[k] += s[k] / 4.0;
                        }
                    }
                    acc
                } else {
                    src.sample((x as f32 + 0.5) * sx, (y as f32 + 0.5) * sy)
                };
                let i = ((y * w + x) * 3) as usize;
                for k in 0..3 {
                    out.data[i + k] = px[k].round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        out
    }

    #[test]
    fn separable_resize_equals_per_pixel_sampling() {
        let mut src = Rgb::new(97, 61);
        let mut v = 12345u32;
        for b in &mut src.data {
            v = v.wrapping_mul(1103515245).wrapping_add(12345);
            *b = (v >> 16) as u8;
        }
        for (w, h) in [(48, 30), (97, 61), (200, 120), (31, 60), (13, 7), (1, 1), (160, 20)] {
            let (a, b) = (src.resize(w, h), resize_reference(&src, w, h));
            assert_eq!((a.w, a.h), (w, h));
            // Float sums in another order: at most one level apart, rarely.
            let off = a.data.iter().zip(&b.data).filter(|(x, y)| x != y).count();
            assert!(a.data.iter().zip(&b.data).all(|(x, y)| x.abs_diff(*y) <= 1), "{w}x{h}");
            assert!(off * 100 <= a.data.len(), "{w}x{h}: {off} of {} differ", a.data.len());
        }
    }

    #[test]
    fn homography_maps_corners() {
        let src = [(0.0, 0.0), (100.0, 0.0), (100.0, 30.0), (0.0, 30.0)];
        let dst = [(10.0, 12.0), (120.0, 5.0), (118.0, 50.0), (8.0, 44.0)];
        let h = homography(&src, &dst).unwrap();
        for i in 0..4 {
            let (x, y) = apply(&h, src[i].0, src[i].1);
            assert!((x - dst[i].0).abs() < 1e-3 && (y - dst[i].1).abs() < 1e-3);
        }
        assert_eq!(order_corners([dst[2], dst[0], dst[3], dst[1]]), dst);
    }
}

#[cfg(test)]
mod rgb_tests {
    use super::*;

    fn solid(w: u32, h: u32, c: [u8; 3]) -> Rgb {
        Rgb { w, h, data: (0..w * h).flat_map(|_| c).collect() }
    }

    #[test]
    fn hcat_joins_rows() {
        let a = solid(2, 3, [1, 2, 3]);
        let b = solid(3, 3, [9, 9, 9]);
        let j = Rgb::hcat(&[&a, &b]).unwrap();
        assert_eq!((j.w, j.h), (5, 3));
        assert_eq!(&j.data[0..3], &[1, 2, 3]);
        assert_eq!(&j.data[6..9], &[9, 9, 9]);
        assert_eq!(&j.data[(5 * 2 + 1) * 3..(5 * 2 + 1) * 3 + 3], &[1, 2, 3]);
        assert!(Rgb::hcat(&[&a, &solid(2, 2, [0, 0, 0])]).is_none());
        assert!(Rgb::hcat(&[]).is_none());
    }

    #[test]
    fn grey_pictures() {
        assert!(solid(64, 64, [80, 80, 80]).is_grey());
        assert!(solid(64, 64, [80, 85, 90]).is_grey());
        assert!(!solid(64, 64, [200, 160, 0]).is_grey());
        let mut half = solid(64, 64, [100, 100, 100]);
        for px in half.data.chunks_mut(3).take(64 * 8) {
            px.copy_from_slice(&[0, 0, 200]);
        }
        assert!(!half.is_grey(), "an eighth in colour is a colour picture");
    }
}
