//! Resizing one 8-bit plane (the grey profiles' Y plane) in Rust, sans-IO.
//!
//! Why not GStreamer's videoscale: a grey frame needs only the luma plane, and videoscale scales
//! all three planes of I420 with a general filter; measured on the ingest bench that step was a
//! fifth of the street profile's cost. Halving (the common 1280×720 → 640×360 case) is a 2×2
//! mean; other downscales average the covered area; upscales interpolate bilinearly.

/// A plane borrowed from a mapped video frame: `stride` bytes per row, at least `width` used.
#[derive(Debug, Clone, Copy)]
pub struct Plane<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

/// Resizes `src` to `w`×`h`, tightly packed. `None` when the plane is shorter than its size says
/// or a size is zero.
pub fn resize(src: Plane<'_>, w: usize, h: usize) -> Option<Vec<u8>> {
    let Plane { data, width: sw, height: sh, stride } = src;
    if sw == 0 || sh == 0 || w == 0 || h == 0 || stride < sw || data.len() < stride * (sh - 1) + sw {
        return None;
    }
    let row = |y: usize| &data[y * stride..y * stride + sw];
    let mut out = Vec::with_capacity(w * h);
    if (sw, sh) == (w, h) {
        for y in 0..h {
            out.extend_from_slice(row(y));
        }
    } else if sw == 2 * w && sh == 2 * h {
        for y in 0..h {
            let (a, b) = (row(2 * y), row(2 * y + 1));
            out.extend(a.chunks_exact(2).zip(b.chunks_exact(2)).map(|(p, q)| {
                ((u16::from(p[0]) + u16::from(p[1]) + u16::from(q[0]) + u16::from(q[1]) + 2) >> 2) as u8
            }));
        }
    } else {
        let xs = taps(sw, w);
        let ys = taps(sh, h);
        // Horizontal pass into 8.8 fixed point, then vertical.
        let mut mid = vec![0u16; sh * w];
        for y in 0..sh {
            let r = row(y);
            for (x, (start, ws)) in xs.iter().enumerate() {
                let acc: u32 = ws.iter().enumerate().map(|(k, &wt)| u32::from(r[start + k]) * u32::from(wt)).sum();
                mid[y * w + x] = ((acc + (1 << 3)) >> 4) as u16;
            }
        }
        for (start, ws) in &ys {
            for x in 0..w {
                let acc: u32 =
                    ws.iter().enumerate().map(|(k, &wt)| u32::from(mid[(start + k) * w + x]) * u32::from(wt)).sum();
                out.push(((acc + (1 << 19)) >> 20).min(255) as u8);
            }
        }
    }
    Some(out)
}

/// Weights summing to 4096 for every output position along one axis: the first source index and
/// one weight per source sample from there. Downscaling averages the covered span; upscaling
/// interpolates between the two nearest samples.
fn taps(src: usize, dst: usize) -> Vec<(usize, Vec<u16>)> {
    const ONE: f64 = 4096.0;
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|i| {
            let mut ws: Vec<f64>;
            let start;
            if scale >= 1.0 {
                let (a, b) = (i as f64 * scale, ((i + 1) as f64 * scale).min(src as f64));
                start = a.floor() as usize;
                let end = (b.ceil() as usize).min(src).max(start + 1);
                ws = (start..end).map(|j| (b.min(j as f64 + 1.0) - a.max(j as f64)).max(0.0)).collect();
            } else {
                let c = ((i as f64 + 0.5) * scale - 0.5).clamp(0.0, (src - 1) as f64);
                start = c.floor() as usize;
                let f = c - start as f64;
                ws = if start + 1 < src { vec![1.0 - f, f] } else { vec![1.0] };
            }
            let total: f64 = ws.iter().sum();
            ws.iter_mut().for_each(|w| *w = *w / total * ONE);
            // Integer weights that sum to exactly ONE: the rounding error goes to the largest.
            let mut iw: Vec<u16> = ws.iter().map(|w| w.round() as u16).collect();
            let sum: i32 = iw.iter().map(|&w| i32::from(w)).sum();
            if let Some(k) = (0..iw.len()).max_by_key(|&k| iw[k]) {
                iw[k] = (i32::from(iw[k]) + ONE as i32 - sum) as u16;
            }
            (start, iw)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(data: &[u8], w: usize, h: usize, stride: usize) -> Plane<'_> {
        Plane { data, width: w, height: h, stride }
    }

    #[test]
    fn same_size_drops_row_padding() {
        let data = [1, 2, 9, 3, 4, 9];
        assert_eq!(resize(plane(&data, 2, 2, 3), 2, 2).unwrap(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn halving_is_the_two_by_two_mean() {
        let data = [0, 4, 10, 10, 8, 0, 20, 21, 1, 1, 5, 5, 1, 1, 5, 5];
        assert_eq!(resize(plane(&data, 4, 4, 4), 2, 2).unwrap(), vec![3, 15, 1, 5]);
    }

    #[test]
    fn flat_planes_stay_flat_at_any_size() {
        let data = vec![137u8; 50 * 30];
        for (w, h) in [(17, 11), (49, 29), (50, 1), (1, 30), (100, 61), (7, 3)] {
            let out = resize(plane(&data, 50, 30, 50), w, h).unwrap();
            assert_eq!(out.len(), w * h);
            assert!(out.iter().all(|&v| v == 137), "{w}x{h}: {out:?}");
        }
    }

    #[test]
    fn area_average_and_bilinear_keep_a_gradient() {
        // A horizontal ramp 0..=255 over 256 columns, scaled to 3 columns: means of thirds.
        let data: Vec<u8> = (0..2).flat_map(|_| (0..=255u8).collect::<Vec<_>>()).collect();
        let out = resize(plane(&data, 256, 2, 256), 3, 1).unwrap();
        assert_eq!(out.len(), 3);
        for (v, want) in out.iter().zip([42.5f64, 127.5, 212.5]) {
            assert!((f64::from(*v) - want).abs() <= 1.0, "{out:?}");
        }
        // Upscaling 0,255 to 4: monotone, ends kept.
        let up = resize(plane(&[0, 255], 2, 1, 2), 4, 1).unwrap();
        assert_eq!((up[0], up[3]), (0, 255));
        assert!(up.windows(2).all(|p| p[0] < p[1]), "{up:?}");
    }

    #[test]
    fn short_or_empty_planes_are_refused() {
        assert!(resize(plane(&[0; 5], 2, 3, 2), 1, 1).is_none());
        assert!(resize(plane(&[], 0, 0, 0), 1, 1).is_none());
        assert!(resize(plane(&[0; 4], 2, 2, 2), 0, 1).is_none());
        // The last row needs only `width` bytes, not a whole stride.
        assert!(resize(plane(&[0; 6], 2, 2, 4), 1, 1).is_some());
    }
}
