//! The image every renderer here draws into: a tightly packed 8-bit RGB buffer ([`Rgb`]) with
//! blending, rectangles, gradients, blits, 2× downsampling and JPEG output, and the colour helpers
//! the other parts share.

use std::fs;
use std::path::Path;

use super::shapes::{fill_sdf, sd_box};

/// A tightly packed 8-bit RGB image, row after row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rgb {
    pub w: u32,
    pub h: u32,
    pub data: Vec<u8>,
}

impl Rgb {
    /// A `w`×`h` image filled with `fill`.
    pub fn new(w: u32, h: u32, fill: [u8; 3]) -> Rgb {
        let mut data = Vec::with_capacity(w as usize * h as usize * 3);
        for _ in 0..w as usize * h as usize {
            data.extend_from_slice(&fill);
        }
        Rgb { w, h, data }
    }

    /// The pixel at `(x, y)`; panics outside the image.
    pub fn get(&self, x: u32, y: u32) -> [u8; 3] {
        let i = self.idx(x, y);
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Sets the pixel at `(x, y)`; panics outside the image.
    pub fn put(&mut self, x: u32, y: u32, c: [u8; 3]) {
        let i = self.idx(x, y);
        self.data[i..i + 3].copy_from_slice(&c);
    }

    fn idx(&self, x: u32, y: u32) -> usize {
        assert!(x < self.w && y < self.h, "pixel ({x}, {y}) outside {}x{}", self.w, self.h);
        (y as usize * self.w as usize + x as usize) * 3
    }

    /// Mixes `c` into the pixel at `(x, y)` with opacity `a` (0–1); nothing outside the image.
    pub fn blend(&mut self, x: i64, y: i64, c: [u8; 3], a: f32) {
        if x < 0 || y < 0 || x >= self.w as i64 || y >= self.h as i64 || a <= 0.0 {
            return;
        }
        let i = (y as usize * self.w as usize + x as usize) * 3;
        blend_px(&mut self.data[i..i + 3], [c[0] as f32, c[1] as f32, c[2] as f32], a);
    }

    /// Fills the rectangle `[x0, x1) × [y0, y1)` (pixel units, fractions anti-aliased).
    pub fn fill_rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, c: [u8; 3], opacity: f32) {
        let (cx, cy, hx, hy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0, (x1 - x0) / 2.0, (y1 - y0) / 2.0);
        fill_sdf(self, None, (x0, y0, x1, y1), c, opacity, |x, y| sd_box(x - cx, y - cy, hx, hy, 0.0));
    }

    /// Fills a vertical gradient from `top` (row 0) to `bottom` (last row).
    pub fn vertical_gradient(&mut self, top: [u8; 3], bottom: [u8; 3]) {
        let w = self.w as usize;
        for y in 0..self.h as usize {
            let t = if self.h > 1 { y as f32 / (self.h - 1) as f32 } else { 0.0 };
            let c = lerp_rgb(top, bottom, t);
            for x in 0..w {
                self.data[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&c);
            }
        }
    }

    /// Copies `src` with its top-left corner at `(x, y)`, clipped to this image.
    pub fn blit(&mut self, src: &Rgb, x: i64, y: i64) {
        let xs = x.max(0);
        let xe = (x + src.w as i64).min(self.w as i64);
        if xs >= xe {
            return;
        }
        for sy in 0..src.h as i64 {
            let dy = y + sy;
            if dy < 0 || dy >= self.h as i64 {
                continue;
            }
            let s = ((sy * src.w as i64 + (xs - x)) * 3) as usize;
            let d = ((dy * self.w as i64 + xs) * 3) as usize;
            let n = ((xe - xs) * 3) as usize;
            self.data[d..d + n].copy_from_slice(&src.data[s..s + n]);
        }
    }

    /// Half the size, each pixel the mean of a 2×2 block (odd last row/column dropped).
    pub fn downsample2(&self) -> Rgb {
        let (w, h) = ((self.w / 2).max(1), (self.h / 2).max(1));
        let mut out = Rgb::new(w, h, [0, 0, 0]);
        let sw = self.w as usize;
        for y in 0..h as usize {
            let y0 = (2 * y).min(self.h as usize - 1);
            let y1 = (2 * y + 1).min(self.h as usize - 1);
            for x in 0..w as usize {
                let x0 = (2 * x).min(sw - 1);
                let x1 = (2 * x + 1).min(sw - 1);
                for ch in 0..3 {
                    let s = self.data[(y0 * sw + x0) * 3 + ch] as u32
                        + self.data[(y0 * sw + x1) * 3 + ch] as u32
                        + self.data[(y1 * sw + x0) * 3 + ch] as u32
                        + self.data[(y1 * sw + x1) * 3 + ch] as u32;
                    out.data[(y * w as usize + x) * 3 + ch] = ((s + 2) / 4) as u8;
                }
            }
        }
        out
    }

    /// Region `[x0, x1) × [y0, y1)` copied from `src` (same size) into this image.
    pub(super) fn copy_region_from(&mut self, src: &Rgb, x0: u32, y0: u32, x1: u32, y1: u32) {
        debug_assert!(self.w == src.w && self.h == src.h);
        let (x1, y1) = (x1.min(self.w), y1.min(self.h));
        if x0 >= x1 {
            return;
        }
        for y in y0..y1 {
            let a = (y as usize * self.w as usize + x0 as usize) * 3;
            let b = (y as usize * self.w as usize + x1 as usize) * 3;
            self.data[a..b].copy_from_slice(&src.data[a..b]);
        }
    }

    /// JPEG bytes at `quality` (1–100).
    pub fn to_jpeg(&self, quality: u8) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
            .encode(&self.data, self.w, self.h, image::ExtendedColorType::Rgb8)
            .map_err(|e| format!("JPEG encoding of a {}x{} image: {e}", self.w, self.h))?;
        Ok(out)
    }

    /// Writes a JPEG file at `quality`.
    pub fn save_jpeg(&self, path: &Path, quality: u8) -> Result<(), String> {
        let bytes = self.to_jpeg(quality)?;
        fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))
    }
}

pub(super) fn blend_px(px: &mut [u8], c: [f32; 3], a: f32) {
    if a >= 1.0 {
        px[0] = c[0] as u8;
        px[1] = c[1] as u8;
        px[2] = c[2] as u8;
        return;
    }
    for ch in 0..3 {
        let d = px[ch] as f32;
        px[ch] = (d + (c[ch] - d) * a + 0.5).clamp(0.0, 255.0) as u8;
    }
}

pub(super) fn lerp_rgb(a: [u8; 3], b: [u8; 3], t: f32) -> [u8; 3] {
    let f = |x: u8, y: u8| (x as f32 + (y as f32 - x as f32) * t).round().clamp(0.0, 255.0) as u8;
    [f(a[0], b[0]), f(a[1], b[1]), f(a[2], b[2])]
}

pub(super) fn shade(c: [u8; 3], k: f32) -> [u8; 3] {
    [(c[0] as f32 * k).min(255.0) as u8, (c[1] as f32 * k).min(255.0) as u8, (c[2] as f32 * k).min(255.0) as u8]
}
