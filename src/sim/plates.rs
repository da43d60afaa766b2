//! Synthetic Chinese licence plates (GA 36): random plates following the grammar in
//! [`crate::plate`], plates rendered with a real CJK font, vehicles carrying them in cluttered
//! scenes (clean and degraded), a labelled data set writer for the plate reader's tests and
//! evaluation, and a road scene for simulated checkpoint cameras.
//!
//! Everything is plain CPU code on tightly packed RGB buffers ([`Rgb`]) and deterministic for a
//! seed. The font is WenQuanYi Micro Hei ([`PLATE_FONT_PATH`], Debian `fonts-wqy-microhei`,
//! installed by `scripts/setup.sh`); its glyphs are stretched to the tall, narrow boxes of the
//! plate typeface. Without the font every renderer answers an `Err` naming the path and the
//! package, never a panic.
//!
//! Sizes given in pixels for a plate are for a standard 440 mm plate; a green (new energy) plate
//! is 480 mm and so 480/440 as wide on the same vehicle.

use std::fmt;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ab_glyph::{Font, FontVec, PxScale, point};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The font plates are drawn with (face 0 of the collection).
pub const PLATE_FONT_PATH: &str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc";

// ---------------------------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------------------------

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
    fn copy_region_from(&mut self, src: &Rgb, x0: u32, y0: u32, x1: u32, y1: u32) {
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

fn blend_px(px: &mut [u8], c: [f32; 3], a: f32) {
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

fn lerp_rgb(a: [u8; 3], b: [u8; 3], t: f32) -> [u8; 3] {
    let f = |x: u8, y: u8| (x as f32 + (y as f32 - x as f32) * t).round().clamp(0.0, 255.0) as u8;
    [f(a[0], b[0]), f(a[1], b[1]), f(a[2], b[2])]
}

fn shade(c: [u8; 3], k: f32) -> [u8; 3] {
    [(c[0] as f32 * k).min(255.0) as u8, (c[1] as f32 * k).min(255.0) as u8, (c[2] as f32 * k).min(255.0) as u8]
}

// Shapes are drawn from signed distance functions (pixel units, negative inside): the coverage
// of a pixel is `0.5 - d` clamped to 0–1 at its centre, which anti-aliases every edge.

/// Signed distance to a box centred at the origin with half sizes `hx`, `hy` and corner radius `r`.
fn sd_box(px: f32, py: f32, hx: f32, hy: f32, r: f32) -> f32 {
    let r = r.min(hx).min(hy).max(0.0);
    let qx = px.abs() - (hx - r);
    let qy = py.abs() - (hy - r);
    let outside = (qx.max(0.0).powi(2) + qy.max(0.0).powi(2)).sqrt();
    outside + qx.max(qy).min(0.0) - r
}

/// Approximate signed distance to an axis-aligned ellipse centred at the origin.
fn sd_ellipse(px: f32, py: f32, rx: f32, ry: f32) -> f32 {
    let k = ((px / rx).powi(2) + (py / ry).powi(2)).sqrt();
    (k - 1.0) * rx.min(ry)
}

/// Distance to the segment `a`–`b` minus half the width.
fn sd_segment(px: f32, py: f32, a: (f32, f32), b: (f32, f32), half_width: f32) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 { (((px - a.0) * dx + (py - a.1) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let (ex, ey) = (px - a.0 - t * dx, py - a.1 - t * dy);
    (ex * ex + ey * ey).sqrt() - half_width
}

/// Signed distance (exact near the edges) to a convex polygon given clockwise on screen.
fn sd_convex(px: f32, py: f32, pts: &[(f32, f32)]) -> f32 {
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
fn fill_sdf(
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

// ---------------------------------------------------------------------------------------------
// Plate grammar
// ---------------------------------------------------------------------------------------------

pub use crate::plate::PlateColor;
use crate::plate::{ALNUM, LETTERS, PROVINCES};

/// Background (top and bottom of the gradient) and character colour of a plate class.
fn palette(c: PlateColor) -> ([u8; 3], [u8; 3], [u8; 3]) {
    match c {
        PlateColor::Blue => ([8, 62, 172], [0, 52, 160], [250, 250, 250]),
        PlateColor::Yellow => ([252, 204, 8], [244, 192, 0], [12, 12, 12]),
        PlateColor::Green => ([228, 246, 228], [92, 200, 122], [12, 12, 12]),
        PlateColor::White => ([248, 248, 248], [236, 236, 236], [12, 12, 12]),
        PlateColor::Black => ([22, 22, 22], [10, 10, 10], [250, 250, 250]),
    }
}

fn pick(rng: &mut impl Rng, set: &str) -> char {
    let n = set.chars().count();
    set.chars().nth(rng.gen_range(0..n)).expect("non-empty set")
}

/// A random plate number of colour class `color`, following GA 36: province, authority letter,
/// then five characters (six on a green plate, the first D or F); yellow plates may end in 学 or
/// 挂, police plates end in 警, black plates may be Guangdong's 粤Z…港 / 粤Z…澳.
pub fn random_plate(rng: &mut impl Rng, color: PlateColor) -> String {
    let mut s = String::new();
    s.push(pick(rng, PROVINCES));
    s.push(pick(rng, LETTERS));
    let serial = |rng: &mut _, s: &mut String, n: usize| {
        for _ in 0..n {
            s.push(pick(rng, ALNUM));
        }
    };
    match color {
        PlateColor::Green => {
            s.push(if rng.gen_bool(0.5) { 'D' } else { 'F' });
            serial(rng, &mut s, 5);
        }
        PlateColor::White => {
            serial(rng, &mut s, 4);
            s.push('警');
        }
        PlateColor::Yellow if rng.gen_bool(0.3) => {
            serial(rng, &mut s, 4);
            s.push(if rng.gen_bool(0.5) { '学' } else { '挂' });
        }
        PlateColor::Black if rng.gen_bool(0.3) => {
            s.clear();
            s.push_str("粤Z");
            serial(rng, &mut s, 4);
            s.push(if rng.gen_bool(0.5) { '港' } else { '澳' });
        }
        PlateColor::Blue | PlateColor::Yellow | PlateColor::Black => serial(rng, &mut s, 5),
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Font and plate rendering
// ---------------------------------------------------------------------------------------------

/// A loaded plate font.
pub struct PlateFont {
    font: FontVec,
}

impl fmt::Debug for PlateFont {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlateFont").field("glyphs", &self.font.glyph_count()).finish()
    }
}

impl PlateFont {
    /// Loads face 0 of the font (or collection) at `path`.
    pub fn load(path: &Path) -> Result<PlateFont, String> {
        let data = fs::read(path).map_err(|e| {
            format!("plate font {}: {e} (install it with `apt install fonts-wqy-microhei`)", path.display())
        })?;
        let font = FontVec::try_from_vec_and_index(data, 0).map_err(|e| {
            format!(
                "plate font {}: {e} (expected WenQuanYi Micro Hei: `apt install fonts-wqy-microhei`)",
                path.display()
            )
        })?;
        Ok(PlateFont { font })
    }

    /// The font at [`PLATE_FONT_PATH`], loaded once per process.
    pub fn system() -> Result<&'static PlateFont, String> {
        static FONT: OnceLock<Result<PlateFont, String>> = OnceLock::new();
        FONT.get_or_init(|| PlateFont::load(Path::new(PLATE_FONT_PATH))).as_ref().map_err(Clone::clone)
    }

    /// Draws `ch` stretched to fill the box `(x, y, w, h)` (pixels) in colour `c`. A glyph narrower
    /// than the box at the box's vertical scale (a `1`) keeps its own proportions and is centred.
    fn draw_glyph(&self, img: &mut Rgb, ch: char, bx: (f32, f32, f32, f32), c: [u8; 3]) -> Result<(), String> {
        let id = self.font.glyph_id(ch);
        if id.0 == 0 {
            return Err(format!("the plate font has no glyph for {ch:?}"));
        }
        let outline = self.font.outline(id).ok_or_else(|| format!("the plate font has no outline for {ch:?}"))?;
        // Unscaled bounds: min = (x_min, y_max), max = (x_max, y_min), y up.
        let (x_min, x_max) = (outline.bounds.min.x, outline.bounds.max.x);
        let (y_top, y_bottom) = (outline.bounds.min.y, outline.bounds.max.y);
        let (gw, gh) = ((x_max - x_min).max(1.0), (y_top - y_bottom).abs().max(1.0));
        let (x, y, w, h) = bx;
        let sy = h / gh;
        let sx = (w / gw).min(sy * MAX_GLYPH_WIDEN);
        let x = x + (w - gw * sx) / 2.0;
        let units = self.font.height_unscaled();
        let glyph = id.with_scale_and_position(
            PxScale { x: sx * units, y: sy * units },
            point(x - x_min * sx, y + y_top.max(y_bottom) * sy),
        );
        let og = self.font.outline_glyph(glyph).ok_or_else(|| format!("the plate font cannot outline {ch:?}"))?;
        let b = og.px_bounds();
        let cf = [c[0] as f32, c[1] as f32, c[2] as f32];
        let (ox, oy) = (b.min.x as i64, b.min.y as i64);
        let (iw, ih) = (img.w as i64, img.h as i64);
        og.draw(|gx, gy, cov| {
            let (px, py) = (ox + gx as i64, oy + gy as i64);
            if cov > 0.0 && px >= 0 && py >= 0 && px < iw && py < ih {
                let i = (py as usize * img.w as usize + px as usize) * 3;
                blend_px(&mut img.data[i..i + 3], cf, cov.min(1.0));
            }
        });
        Ok(())
    }
}

/// How much wider than its own proportions (at the box height) a glyph may be stretched: plate
/// digits are narrow, but a `1` drawn as wide as a `0` would be a block.
const MAX_GLYPH_WIDEN: f32 = 1.0;

/// Plate geometry in millimetres for `n` characters.
struct Layout {
    width: f32,
    char_w: f32,
    gap: f32,
    big_gap: f32,
}

fn layout(n: usize) -> Layout {
    if n == 8 {
        Layout { width: 480.0, char_w: 43.0, gap: 9.0, big_gap: 49.0 }
    } else {
        Layout { width: 440.0, char_w: 45.0, gap: 12.0, big_gap: 34.0 }
    }
}

const PLATE_H_MM: f32 = 140.0;

/// Plate size in pixels for `chars` characters at `scale` px per mm.
fn plate_px(chars: usize, scale: f32) -> (u32, u32) {
    let l = layout(chars);
    (((l.width * scale).round() as u32).max(1), ((PLATE_H_MM * scale).round() as u32).max(1))
}

/// Renders plate `text` (7 characters, 8 for new energy) at `scale` pixels per millimetre with the
/// system plate font: 440×140 mm (480×140 mm for 8 characters).
pub fn render_plate(text: &str, color: PlateColor, scale: f32) -> Result<Rgb, String> {
    render_plate_with(PlateFont::system()?, text, color, scale)
}

/// [`render_plate`] with a given font.
pub fn render_plate_with(font: &PlateFont, text: &str, color: PlateColor, scale: f32) -> Result<Rgb, String> {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    if !(7..=8).contains(&n) {
        return Err(format!("plate {text:?} has {n} characters, not 7 or 8"));
    }
    if !(scale.is_finite() && scale > 0.0) {
        return Err(format!("plate scale {scale} px/mm"));
    }
    let l = layout(n);
    let (w, h) = plate_px(n, scale);
    // Supersampled twice: exact mm→px factors of the 2× canvas.
    let (sx, sy) = (2.0 * w as f32 / l.width, 2.0 * h as f32 / PLATE_H_MM);
    let mut img = Rgb::new(2 * w, 2 * h, [0, 0, 0]);
    let (top, bottom, fg) = palette(color);
    img.vertical_gradient(top, bottom);

    // Border: a thin rounded rectangle in the character colour, inset 3 mm.
    let (stroke, inset, radius) = (1.6, 3.0, 8.0);
    let centre_line = inset + stroke / 2.0;
    let (hx, hy) = ((l.width / 2.0 - centre_line) * sx, (PLATE_H_MM / 2.0 - centre_line) * sy);
    let (cx, cy) = (l.width / 2.0 * sx, PLATE_H_MM / 2.0 * sy);
    let half_stroke = stroke / 2.0 * sx.min(sy);
    let r = radius * sx.min(sy);
    let (iw, ih) = (img.w as f32, img.h as f32);
    fill_sdf(&mut img, None, (0.0, 0.0, iw, ih), fg, 1.0, |x, y| {
        let d = sd_box(x - cx, y - cy, hx, hy, r);
        d.abs() - half_stroke
    });

    let total = n as f32 * l.char_w + (n - 2) as f32 * l.gap + l.big_gap;
    let mut x = (l.width - total) / 2.0;
    for (i, &ch) in chars.iter().enumerate() {
        let frac = if is_cjk(ch) { 0.92 } else { 0.85 };
        let gw = l.char_w * frac;
        let bx = ((x + (l.char_w - gw) / 2.0) * sx, 25.0 * sy, gw * sx, 90.0 * sy);
        let c = if ch == '警' { [214, 18, 18] } else { fg };
        font.draw_glyph(&mut img, ch, bx, c)?;
        x += l.char_w;
        if i == 1 {
            let (dx, dy, dr) = ((x + l.big_gap / 2.0) * sx, 70.0 * sy, 5.0 * sx.min(sy));
            fill_sdf(&mut img, None, (dx - dr, dy - dr, dx + dr, dy + dr), fg, 1.0, |px, py| {
                sd_ellipse(px - dx, py - dy, dr, dr)
            });
            x += l.big_gap;
        } else {
            x += l.gap;
        }
    }
    Ok(img.downsample2())
}

fn is_cjk(ch: char) -> bool {
    ch as u32 >= 0x2E80
}

// ---------------------------------------------------------------------------------------------
// Geometry
// ---------------------------------------------------------------------------------------------

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
fn warp_masked(dst: &mut Rgb, src: &Rgb, alpha: Option<&[u8]>, quad: [(f32, f32); 4]) -> Option<(u32, u32, u32, u32)> {
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

// ---------------------------------------------------------------------------------------------
// Degradations
// ---------------------------------------------------------------------------------------------

/// Separable Gaussian blur with standard deviation `sigma` pixels (edges clamped).
pub fn gaussian_blur(img: &mut Rgb, sigma: f32) {
    if sigma <= 0.0 || img.w == 0 || img.h == 0 {
        return;
    }
    let r = (3.0 * sigma).ceil() as i64;
    let mut k: Vec<f32> = (-r..=r).map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp()).collect();
    let s: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    let (w, h) = (img.w as i64, img.h as i64);
    let mut tmp = vec![0f32; img.data.len()];
    for y in 0..h {
        let row = (y * w) as usize;
        for x in 0..w {
            let mut acc = [0f32; 3];
            for (j, &kv) in k.iter().enumerate() {
                let sx = (x + j as i64 - r).clamp(0, w - 1) as usize;
                let i = (row + sx) * 3;
                acc[0] += img.data[i] as f32 * kv;
                acc[1] += img.data[i + 1] as f32 * kv;
                acc[2] += img.data[i + 2] as f32 * kv;
            }
            let o = (row + x as usize) * 3;
            tmp[o..o + 3].copy_from_slice(&acc);
        }
    }
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0f32; 3];
            for (j, &kv) in k.iter().enumerate() {
                let sy = (y + j as i64 - r).clamp(0, h - 1);
                let i = ((sy * w + x) * 3) as usize;
                acc[0] += tmp[i] * kv;
                acc[1] += tmp[i + 1] * kv;
                acc[2] += tmp[i + 2] * kv;
            }
            let o = ((y * w + x) * 3) as usize;
            for (d, v) in img.data[o..o + 3].iter_mut().zip(acc) {
                *d = (v + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// A standard normal deviate pair (Box–Muller).
fn normal_pair(rng: &mut impl Rng) -> (f32, f32) {
    let u1: f32 = rng.gen_range(f32::EPSILON..1.0);
    let u2: f32 = rng.r#gen();
    let m = (-2.0 * u1.ln()).sqrt();
    let a = std::f32::consts::TAU * u2;
    (m * a.cos(), m * a.sin())
}

/// 65,536 standard normal deviates, drawn once: noise for a frame picks from them with 16 random
/// bits a channel instead of transforming uniforms for each of its millions of values.
fn normal_table() -> &'static [f32] {
    static TABLE: OnceLock<Vec<f32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut rng = StdRng::seed_from_u64(0x006e_6f69_7365);
        let mut v = Vec::with_capacity(1 << 16);
        while v.len() < 1 << 16 {
            let (a, b) = normal_pair(&mut rng);
            v.push(a);
            v.push(b);
        }
        v
    })
}

/// Adds independent Gaussian noise of standard deviation `sigma` to every channel.
pub fn add_noise(img: &mut Rgb, rng: &mut impl Rng, sigma: f32) {
    if sigma <= 0.0 {
        return;
    }
    let scaled: Vec<i16> = normal_table().iter().map(|v| (v * sigma).round().clamp(-255.0, 255.0) as i16).collect();
    for chunk in img.data.chunks_mut(4) {
        let mut r = rng.next_u64();
        for p in chunk {
            let n = scaled[(r & 0xFFFF) as usize] as i32;
            *p = (*p as i32 + n).clamp(0, 255) as u8;
            r >>= 16;
        }
    }
}

/// Exposure: `v' = 255 · gain · (v / 255)^gamma` (gain < 1 and gamma > 1 for low light).
pub fn adjust_brightness(img: &mut Rgb, gain: f32, gamma: f32) {
    let lut: Vec<u8> =
        (0..256).map(|v| (255.0 * gain * (v as f32 / 255.0).powf(gamma)).round().clamp(0.0, 255.0) as u8).collect();
    img.data.iter_mut().for_each(|v| *v = lut[*v as usize]);
}

/// Adds a glare spot: `amplitude · exp(-r² / 2σ²)` of slightly warm white around `(cx, cy)`.
pub fn add_glare(img: &mut Rgb, cx: f32, cy: f32, sigma: f32, amplitude: f32) {
    if sigma <= 0.0 {
        return;
    }
    let r = 3.0 * sigma;
    let xs = ((cx - r).floor().max(0.0)) as u32;
    let ys = ((cy - r).floor().max(0.0)) as u32;
    let xe = ((cx + r).ceil().max(0.0) as u32).min(img.w);
    let ye = ((cy + r).ceil().max(0.0) as u32).min(img.h);
    let tint = [1.0, 0.97, 0.9];
    for y in ys..ye {
        for x in xs..xe {
            let d2 = (x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2);
            let add = amplitude * (-d2 / (2.0 * sigma * sigma)).exp();
            if add < 0.5 {
                continue;
            }
            let i = (y as usize * img.w as usize + x as usize) * 3;
            for (d, t) in img.data[i..i + 3].iter_mut().zip(tint) {
                *d = (*d as f32 + add * t).round().min(255.0) as u8;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Vehicles
// ---------------------------------------------------------------------------------------------

/// Millimetre layout of a vehicle seen from the front: width, height (roof to ground shadow) and
/// the plate centre.
const CAR_W_MM: f32 = 1800.0;
const CAR_H_MM: f32 = 1500.0;
const CAR_PLATE_MM: (f32, f32) = (900.0, 1090.0);

/// How a vehicle looks.
#[derive(Clone, Debug)]
struct VehicleLook {
    body: [u8; 3],
    lights: u8,
    grille: u8,
    black_bumper: bool,
    cabin_narrow: f32,
}

fn random_look(rng: &mut impl Rng) -> VehicleLook {
    const PALETTE: [[u8; 3]; 11] = [
        [232, 232, 230],
        [240, 240, 240],
        [178, 180, 184],
        [120, 122, 126],
        [26, 26, 30],
        [160, 24, 28],
        [32, 62, 140],
        [20, 36, 80],
        [110, 80, 50],
        [226, 190, 40],
        [40, 120, 70],
    ];
    let base = PALETTE[rng.gen_range(0..PALETTE.len())];
    let j = rng.gen_range(-12i32..=12);
    let body = base.map(|v| (v as i32 + j + rng.gen_range(-6i32..=6)).clamp(0, 255) as u8);
    VehicleLook {
        body,
        lights: rng.gen_range(0..3),
        grille: rng.gen_range(0..3),
        black_bumper: rng.gen_bool(0.35),
        cabin_narrow: rng.gen_range(0.08..0.16),
    }
}

/// A vehicle image with its opacity and where its plate (if any) is in it.
struct Sprite {
    img: Rgb,
    alpha: Vec<u8>,
    /// Plate corners TL, TR, BR, BL in sprite pixels.
    plate: [(f32, f32); 4],
}

impl Sprite {
    fn half(&self) -> Sprite {
        let img = self.img.downsample2();
        let (w, h) = (img.w as usize, img.h as usize);
        let sw = self.img.w as usize;
        let mut alpha = vec![0u8; w * h];
        for y in 0..h {
            let y0 = (2 * y).min(self.img.h as usize - 1);
            let y1 = (2 * y + 1).min(self.img.h as usize - 1);
            for x in 0..w {
                let x0 = (2 * x).min(sw - 1);
                let x1 = (2 * x + 1).min(sw - 1);
                let s = self.alpha[y0 * sw + x0] as u32
                    + self.alpha[y0 * sw + x1] as u32
                    + self.alpha[y1 * sw + x0] as u32
                    + self.alpha[y1 * sw + x1] as u32;
                alpha[y * w + x] = ((s + 2) / 4) as u8;
            }
        }
        Sprite { img, alpha, plate: self.plate.map(|(x, y)| (x / 2.0, y / 2.0)) }
    }
}

/// Draws a vehicle at `mm_px` pixels per millimetre with `plate` (rendered at the same scale)
/// on its bumper; without one, the holder is sized for a plate of `plate_size` pixels and the
/// corners reported are where such a plate would be.
fn vehicle_sprite(look: &VehicleLook, plate: Option<&Rgb>, plate_size: (f32, f32), mm_px: f32) -> Sprite {
    let (w, h) = ((CAR_W_MM * mm_px).ceil() as u32, (CAR_H_MM * mm_px).ceil() as u32);
    let mut img = Rgb::new(w, h, [0, 0, 0]);
    let mut alpha = vec![0u8; (w * h) as usize];
    let m = |v: f32| v * mm_px;
    let body = look.body;
    let dark = shade(body, 0.72);
    let rect = |img: &mut Rgb, alpha: &mut Vec<u8>, x0: f32, y0: f32, x1: f32, y1: f32, r: f32, c: [u8; 3], o: f32| {
        let (cx, cy, hx, hy, r) = (m(x0 + x1) / 2.0, m(y0 + y1) / 2.0, m(x1 - x0) / 2.0, m(y1 - y0) / 2.0, m(r));
        fill_sdf(img, Some(alpha), (m(x0), m(y0), m(x1), m(y1)), c, o, |x, y| sd_box(x - cx, y - cy, hx, hy, r));
    };
    let mirror = |x0: f32, x1: f32| (CAR_W_MM - x1, CAR_W_MM - x0);

    // Ground shadow, tyres, body, cabin.
    rect(&mut img, &mut alpha, 20.0, 1330.0, 1780.0, 1500.0, 60.0, [18, 18, 20], 0.6);
    for (x0, x1) in [(70.0, 330.0), mirror(70.0, 330.0)] {
        rect(&mut img, &mut alpha, x0, 1150.0, x1, 1440.0, 50.0, [22, 22, 24], 1.0);
    }
    let inset = CAR_W_MM * look.cabin_narrow;
    rect(&mut img, &mut alpha, inset, 0.0, CAR_W_MM - inset, 300.0, 160.0, shade(body, 0.9), 1.0);
    rect(&mut img, &mut alpha, 0.0, 520.0, CAR_W_MM, 1340.0, 130.0, body, 1.0);
    // Windscreen between the A-pillars, with a sky reflection band.
    let glass = [
        (m(inset + 60.0), m(70.0)),
        (m(CAR_W_MM - inset - 60.0), m(70.0)),
        (m(CAR_W_MM - 110.0), m(600.0)),
        (m(110.0), m(600.0)),
    ];
    let pillars =
        [(m(inset), m(40.0)), (m(CAR_W_MM - inset), m(40.0)), (m(CAR_W_MM - 40.0), m(620.0)), (m(40.0), m(620.0))];
    fill_sdf(&mut img, Some(&mut alpha), (0.0, 0.0, m(CAR_W_MM), m(640.0)), shade(body, 0.85), 1.0, |x, y| {
        sd_convex(x, y, &pillars)
    });
    fill_sdf(&mut img, None, (0.0, 0.0, m(CAR_W_MM), m(620.0)), [36, 44, 54], 1.0, |x, y| sd_convex(x, y, &glass));
    let band = [(glass[0].0, glass[0].1), (glass[1].0, glass[1].1), (m(1500.0), m(260.0)), (m(300.0), m(260.0))];
    fill_sdf(&mut img, None, (0.0, 0.0, m(CAR_W_MM), m(300.0)), [150, 165, 180], 0.25, |x, y| {
        sd_convex(x, y, &band).max(sd_convex(x, y, &glass))
    });
    // Hood crease and mirrors.
    for (a, b) in [((500.0, 560.0), (620.0, 700.0)), ((1300.0, 560.0), (1180.0, 700.0))] {
        let (a, b) = ((m(a.0), m(a.1)), (m(b.0), m(b.1)));
        fill_sdf(&mut img, None, (a.0.min(b.0), a.1, a.0.max(b.0), b.1), dark, 0.5, |x, y| {
            sd_segment(x, y, a, b, m(8.0))
        });
    }
    // Headlights.
    for (x0, x1) in [(80.0, 480.0), mirror(80.0, 480.0)] {
        let lamp = [236, 236, 222];
        match look.lights {
            0 => rect(&mut img, &mut alpha, x0, 690.0, x1, 830.0, 60.0, lamp, 1.0),
            1 => rect(&mut img, &mut alpha, x0 - 20.0, 720.0, x1 + 40.0, 780.0, 30.0, lamp, 1.0),
            _ => {
                let (cx, cy, r) = (m((x0 + x1) / 2.0), m(760.0), m(85.0));
                fill_sdf(&mut img, None, (cx - r, cy - r, cx + r, cy + r), lamp, 1.0, |x, y| {
                    sd_ellipse(x - cx, y - cy, r * 1.5, r)
                });
            }
        }
        let (cx, cy, r) = (m((x0 + x1) / 2.0), m(760.0), m(40.0));
        fill_sdf(&mut img, None, (cx - r, cy - r, cx + r, cy + r), [255, 252, 235], 1.0, |x, y| {
            sd_ellipse(x - cx, y - cy, r, r)
        });
    }
    // Grille and badge.
    let grille = [30, 30, 34];
    match look.grille {
        0 => rect(&mut img, &mut alpha, 580.0, 700.0, 1220.0, 940.0, 60.0, grille, 1.0),
        1 => rect(&mut img, &mut alpha, 640.0, 740.0, 1160.0, 860.0, 30.0, grille, 1.0),
        _ => rect(&mut img, &mut alpha, 520.0, 720.0, 1280.0, 980.0, 110.0, grille, 1.0),
    }
    for yb in [770.0, 820.0, 880.0] {
        rect(&mut img, &mut alpha, 660.0, yb, 1140.0, yb + 14.0, 0.0, [120, 122, 128], 0.8);
    }
    let (bx, by, br) = (m(900.0), m(810.0), m(32.0));
    fill_sdf(&mut img, None, (bx - br, by - br, bx + br, by + br), [200, 200, 205], 1.0, |x, y| {
        sd_ellipse(x - bx, y - by, br * 1.4, br)
    });
    // Bumper, intake, fog lights, plate holder.
    let bumper = if look.black_bumper { [44, 44, 46] } else { shade(body, 0.9) };
    rect(&mut img, &mut alpha, 30.0, 990.0, CAR_W_MM - 30.0, 1330.0, 90.0, bumper, 1.0);
    rect(&mut img, &mut alpha, 480.0, 1210.0, 1320.0, 1300.0, 40.0, [26, 26, 28], 1.0);
    for cx in [240.0, CAR_W_MM - 240.0] {
        let (cx, cy, r) = (m(cx), m(1180.0), m(48.0));
        fill_sdf(&mut img, None, (cx - r, cy - r, cx + r, cy + r), [210, 210, 196], 1.0, |x, y| {
            sd_ellipse(x - cx, y - cy, r, r)
        });
    }
    let (pcx, pcy) = (m(CAR_PLATE_MM.0), m(CAR_PLATE_MM.1));
    let (pw, ph) = plate.map_or(plate_size, |p| (p.w as f32, p.h as f32));
    let holder = (pw / 2.0 + m(14.0), ph / 2.0 + m(14.0));
    fill_sdf(
        &mut img,
        None,
        (pcx - holder.0, pcy - holder.1, pcx + holder.0, pcy + holder.1),
        [34, 34, 37],
        1.0,
        |x, y| sd_box(x - pcx, y - pcy, holder.0, holder.1, m(12.0)),
    );
    let (px0, py0) = ((pcx - pw / 2.0).round(), (pcy - ph / 2.0).round());
    if let Some(p) = plate {
        img.blit(p, px0 as i64, py0 as i64);
    }
    Sprite { img, alpha, plate: [(px0, py0), (px0 + pw, py0), (px0 + pw, py0 + ph), (px0, py0 + ph)] }
}

// ---------------------------------------------------------------------------------------------
// Scenes
// ---------------------------------------------------------------------------------------------

/// One labelled picture of a plate.
#[derive(Clone, Debug)]
pub struct PlateSample {
    pub image: Rgb,
    pub plate: String,
    pub color: PlateColor,
    /// The plate's corners in the image: top-left, top-right, bottom-right, bottom-left.
    pub corners: [(f32, f32); 4],
    pub hard: bool,
}

fn rc(rng: &mut impl Rng) -> [u8; 3] {
    [rng.gen_range(30..200), rng.gen_range(30..200), rng.gen_range(30..200)]
}

/// A cluttered background: a gradient, rectangles, outlines and lines in random colours.
fn clutter(rng: &mut impl Rng, w: u32, h: u32) -> Rgb {
    let mut img = Rgb::new(w, h, [0, 0, 0]);
    let (top, bottom) = (rc(rng), rc(rng));
    img.vertical_gradient(top, bottom);
    let (wf, hf) = (w as f32, h as f32);
    for _ in 0..rng.gen_range(25..50) {
        let (x0, y0) = (rng.gen_range(-0.1..1.0) * wf, rng.gen_range(-0.1..1.0) * hf);
        let (x1, y1) = (x0 + rng.gen_range(0.02..0.5) * wf, y0 + rng.gen_range(0.02..0.5) * hf);
        let c = rc(rng);
        if rng.gen_bool(0.55) {
            let o = rng.gen_range(0.35..1.0);
            img.fill_rect(x0, y0, x1, y1, c, o);
        } else {
            let (cx, cy, hx, hy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0, (x1 - x0) / 2.0, (y1 - y0) / 2.0);
            let half = rng.gen_range(0.5..2.5);
            fill_sdf(&mut img, None, (x0, y0, x1, y1), c, 1.0, |x, y| sd_box(x - cx, y - cy, hx, hy, 0.0).abs() - half);
        }
    }
    for _ in 0..rng.gen_range(8..20) {
        let a = (rng.gen_range(0.0..wf), rng.gen_range(0.0..hf));
        let b = (rng.gen_range(0.0..wf), rng.gen_range(0.0..hf));
        let half = rng.gen_range(0.5..3.0);
        let c = rc(rng);
        fill_sdf(&mut img, None, (a.0.min(b.0), a.1.min(b.1), a.0.max(b.0), a.1.max(b.1)), c, 1.0, |x, y| {
            sd_segment(x, y, a, b, half)
        });
    }
    img
}

/// Frame size relative to 1280×720.
fn frame_factor(w: u32, h: u32) -> f32 {
    (w as f32 / 1280.0).min(h as f32 / 720.0)
}

/// Puts a vehicle (with `plate` if given) into `bg`; returns where the plate (or the empty plate
/// holder) is. `pw` is the pixel width of a 440 mm plate.
fn place_vehicle(
    rng: &mut impl Rng,
    bg: &mut Rgb,
    plate: Option<&Rgb>,
    pw: f32,
    hard: bool,
) -> Result<[(f32, f32); 4], String> {
    let mm_px = pw / 440.0;
    let look = random_look(rng);
    let plate_size = plate.map_or((pw, pw * PLATE_H_MM / 440.0), |p| (p.w as f32, p.h as f32));
    let sprite = vehicle_sprite(&look, None, plate_size, mm_px);
    let (hw, hh) = (plate_size.0 / 2.0, plate_size.1 / 2.0);
    // Plate corners around its centre: one side shorter (yaw), the bottom a little shorter (a
    // camera above), then rolled. The flat vehicle takes a third of that perspective (stretched
    // over its whole width the full one would squash its far side to a sliver); the plate, warped
    // on its own, the full one, and its dark holder hides the difference at the corners.
    let (max_rot, max_yaw, max_pitch) = if hard { (15f32, 0.25f32, 0.08f32) } else { (6.0, 0.08, 0.03) };
    let yaw = rng.gen_range(0.0..max_yaw);
    let pitch = rng.gen_range(0.0..max_pitch);
    let right = rng.gen_bool(0.5);
    let rot = rng.gen_range(-max_rot..max_rot).to_radians();
    let (sin, cos) = rot.sin_cos();
    let corners_at = |yaw: f32, pitch: f32| {
        let mut local = [(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)];
        let (a, b) = if right { (1, 2) } else { (0, 3) };
        local[a].1 *= 1.0 - yaw;
        local[b].1 *= 1.0 - yaw;
        local[2].0 *= 1.0 - pitch;
        local[3].0 *= 1.0 - pitch;
        local.map(|(x, y)| (x * cos - y * sin, x * sin + y * cos))
    };
    let local = corners_at(yaw, pitch);
    let min_x = local.iter().map(|p| p.0).fold(f32::MAX, f32::min);
    let max_x = local.iter().map(|p| p.0).fold(f32::MIN, f32::max);
    let min_y = local.iter().map(|p| p.1).fold(f32::MAX, f32::min);
    let max_y = local.iter().map(|p| p.1).fold(f32::MIN, f32::max);
    let margin = 4.0;
    let (lo_x, hi_x) = (margin - min_x, bg.w as f32 - margin - max_x);
    let (lo_y, hi_y) = (margin - min_y, bg.h as f32 - margin - max_y);
    if lo_x >= hi_x || lo_y >= hi_y {
        return Err(format!("a {pw:.0} px plate does not fit a {}x{} frame", bg.w, bg.h));
    }
    let (cx, cy) = (rng.gen_range(lo_x..hi_x), rng.gen_range(lo_y..hi_y));
    let corners = local.map(|(x, y)| (x + cx, y + cy));
    let car = corners_at(yaw / 3.0, pitch / 3.0).map(|(x, y)| (x + cx, y + cy));
    let hm = homography(sprite.plate, car);
    let (w, h) = (sprite.img.w as f32, sprite.img.h as f32);
    let quad = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)].map(|p| apply_homography(&hm, p));
    warp_masked(bg, &sprite.img, Some(&sprite.alpha), quad);
    if let Some(p) = plate {
        warp_into(bg, p, corners);
    }
    Ok(corners)
}

/// The degradations of a hard sample: one or two of blur, noise, low light and glare, applied in
/// the order light meets them (glare, lens blur, exposure, sensor noise).
fn degrade(rng: &mut impl Rng, img: &mut Rgb, corners: &[(f32, f32); 4], hard: bool) {
    if !hard {
        let sigma = rng.gen_range(0.0..3.0);
        add_noise(img, rng, sigma);
        return;
    }
    let first = rng.gen_range(0..4);
    let mut picked = [false; 4];
    picked[first] = true;
    if rng.gen_bool(0.4) {
        picked[(first + rng.gen_range(1..4)) % 4] = true;
    }
    let [blur, noise, dark, glare] = picked;
    if glare {
        let (s, t) = (rng.gen_range(0.15..0.85), rng.gen_range(0.2..0.8));
        let top = (corners[0].0 + (corners[1].0 - corners[0].0) * s, corners[0].1 + (corners[1].1 - corners[0].1) * s);
        let bot = (corners[3].0 + (corners[2].0 - corners[3].0) * s, corners[3].1 + (corners[2].1 - corners[3].1) * s);
        let (gx, gy) = (top.0 + (bot.0 - top.0) * t, top.1 + (bot.1 - top.1) * t);
        let pw = ((corners[1].0 - corners[0].0).powi(2) + (corners[1].1 - corners[0].1).powi(2)).sqrt();
        let sigma = pw * rng.gen_range(0.08..0.2);
        let amp = rng.gen_range(120.0..220.0);
        add_glare(img, gx, gy, sigma, amp);
    }
    if blur {
        let sigma = rng.gen_range(1.0..2.0);
        gaussian_blur(img, sigma);
    }
    if dark {
        let (gain, gamma) = (rng.gen_range(0.25..0.45), rng.gen_range(1.0..1.4));
        adjust_brightness(img, gain, gamma);
    }
    let sigma = if noise {
        rng.gen_range(8.0..18.0)
    } else if dark {
        rng.gen_range(3.0..6.0)
    } else {
        rng.gen_range(0.0..3.0)
    };
    add_noise(img, rng, sigma);
}

/// A `w`×`h` picture of a random plate (uniform over the colour classes) on a vehicle in a
/// cluttered scene. Clean: a 150–240 px plate (at 1280×720; proportional for other sizes), rolled
/// up to ±6°, mild perspective and noise. Hard: 100–240 px, up to ±15°, one side up to 25% shorter,
/// and one or two of blur (σ 1–2), noise (σ 8–18), low light (×0.25–0.45) and glare on the plate.
pub fn sample(rng: &mut impl Rng, w: u32, h: u32, hard: bool) -> Result<PlateSample, String> {
    let font = PlateFont::system()?;
    let color = PlateColor::ALL[rng.gen_range(0..PlateColor::ALL.len())];
    let plate = random_plate(rng, color);
    let f = frame_factor(w, h);
    let pw = if hard { rng.gen_range(100.0..240.0) } else { rng.gen_range(150.0..240.0) } * f;
    let plate_img = render_plate_with(font, &plate, color, pw / 440.0)?;
    let mut image = clutter(rng, w, h);
    let corners = place_vehicle(rng, &mut image, Some(&plate_img), pw, hard)?;
    degrade(rng, &mut image, &corners, hard);
    Ok(PlateSample { image, plate, color, corners, hard })
}

/// A frame like [`sample`]'s with a vehicle but no plate (for counting false reads).
pub fn plate_free_frame(rng: &mut impl Rng, w: u32, h: u32, hard: bool) -> Result<Rgb, String> {
    let f = frame_factor(w, h);
    let pw = rng.gen_range(100.0..240.0) * f;
    let mut image = clutter(rng, w, h);
    let corners = place_vehicle(rng, &mut image, None, pw, hard)?;
    degrade(rng, &mut image, &corners, hard);
    Ok(image)
}

// ---------------------------------------------------------------------------------------------
// Data set
// ---------------------------------------------------------------------------------------------

/// What [`write_dataset`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetSummary {
    pub dir: PathBuf,
    pub labels: PathBuf,
    pub clean: usize,
    pub hard: usize,
    pub plate_free: usize,
}

/// The random stream of file `i` of a data set: each file depends only on the seed and its index.
fn file_rng(seed: u64, stream: u64, i: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Writes `count` labelled plate pictures (alternately clean and hard: `clean/000001.jpg`,
/// `hard/000002.jpg`, …) and `plate_free` vehicle frames without a plate
/// (`plate_free/000001.jpg`, …), JPEG quality 90, and `labels.csv` with
/// `file,plate,color,split,x1,y1,x2,y2,x3,y3,x4,y4` (corners TL, TR, BR, BL; plate-free rows have
/// empty plate, colour and corners and split `none`). The same seed writes the same files.
pub fn write_dataset(
    dir: &Path,
    count: usize,
    seed: u64,
    w: u32,
    h: u32,
    plate_free: usize,
) -> Result<DatasetSummary, String> {
    for sub in ["clean", "hard", "plate_free"] {
        let d = dir.join(sub);
        fs::create_dir_all(&d).map_err(|e| format!("creating {}: {e}", d.display()))?;
    }
    let labels = dir.join("labels.csv");
    let file = fs::File::create(&labels).map_err(|e| format!("creating {}: {e}", labels.display()))?;
    let mut out = BufWriter::new(file);
    let werr = |e: std::io::Error| format!("writing {}: {e}", labels.display());
    writeln!(out, "file,plate,color,split,x1,y1,x2,y2,x3,y3,x4,y4").map_err(werr)?;
    let total = count + plate_free;
    let (mut clean, mut hard) = (0, 0);
    let progress = |done: usize| {
        if done.is_multiple_of(200) || done == total {
            eprintln!("plates: {done}/{total} files in {}", dir.display());
        }
    };
    // Files are independent (each has its own random stream): render them on every core, write
    // the labels in order.
    let one = |i: usize| -> Result<(String, bool), String> {
        let is_hard = i.is_multiple_of(2);
        let mut rng = file_rng(seed, 1, i as u64);
        let s = sample(&mut rng, w, h, is_hard)?;
        let split = if is_hard { "hard" } else { "clean" };
        let name = format!("{split}/{i:06}.jpg");
        s.image.save_jpeg(&dir.join(&name), 90)?;
        let c = s.corners;
        Ok((
            format!(
                "{name},{},{},{split},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2}",
                s.plate, s.color, c[0].0, c[0].1, c[1].0, c[1].1, c[2].0, c[2].1, c[3].0, c[3].1
            ),
            is_hard,
        ))
    };
    let free = |i: usize| -> Result<(String, bool), String> {
        let mut rng = file_rng(seed, 2, i as u64);
        let img = plate_free_frame(&mut rng, w, h, i.is_multiple_of(2))?;
        let name = format!("plate_free/{i:06}.jpg");
        img.save_jpeg(&dir.join(&name), 90)?;
        Ok((format!("{name},,,none,,,,,,,,"), false))
    };
    let jobs: Vec<(bool, usize)> = (1..=count).map(|i| (true, i)).chain((1..=plate_free).map(|i| (false, i))).collect();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    let next = std::sync::atomic::AtomicUsize::new(0);
    type Slot = std::sync::Mutex<Option<Result<(String, bool), String>>>;
    let results: Vec<Slot> = jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&(plate, i)) = jobs.get(k) else { break };
                    let r = if plate { one(i) } else { free(i) };
                    *results[k].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                    progress(k + 1);
                }
            });
        }
    });
    for r in results {
        let (line, is_hard) =
            r.into_inner().unwrap_or_else(|e| e.into_inner()).unwrap_or_else(|| Err("not rendered".into()))?;
        writeln!(out, "{line}").map_err(werr)?;
        if line.starts_with("plate_free/") {
            continue;
        }
        if is_hard {
            hard += 1;
        } else {
            clean += 1;
        }
    }
    out.flush().map_err(werr)?;
    Ok(DatasetSummary { dir: dir.to_path_buf(), labels, clean, hard, plate_free })
}

// ---------------------------------------------------------------------------------------------
// Traffic scene
// ---------------------------------------------------------------------------------------------

/// What a simulated checkpoint camera sees: vehicles, one at a time, driving towards it.
#[derive(Clone, Debug)]
pub struct TrafficSpec {
    pub width: u32,
    pub height: u32,
    pub fps: f32,
    /// Plates in the order the vehicles pass.
    pub vehicles: Vec<(String, PlateColor)>,
    /// How long each vehicle is in view.
    pub seconds_per_vehicle: f32,
    /// Empty road after each vehicle.
    pub gap_s: f32,
    pub seed: u64,
}

impl Default for TrafficSpec {
    fn default() -> Self {
        TrafficSpec {
            width: 1280,
            height: 720,
            fps: 10.0,
            vehicles: Vec::new(),
            seconds_per_vehicle: 3.0,
            gap_s: 1.0,
            seed: 0,
        }
    }
}

/// Plate width (440 mm plate) at the start and the end of a pass, at 1280×720.
const PASS_PLATE_PX: (f32, f32) = (120.0, 260.0);
/// Plate centre height (share of the frame height) at the start and the end of a pass.
const PASS_PLATE_Y: (f32, f32) = (0.30, 0.80);
/// The sprite's half-size copy is used below this scale of the full one.
const HALF_LEVEL_BELOW: f32 = 0.6;

struct SceneVehicle {
    look: VehicleLook,
    plate: Rgb,
    lane_offset_mm: f32,
}

/// Renders the frames of a [`TrafficSpec`]: a static road, and each vehicle in turn entering at
/// the top and growing as it approaches (plate 120 → 260 px wide at 1280×720) with constant speed
/// on the ground, then empty road for the gap.
pub struct TrafficScene {
    spec: TrafficSpec,
    background: Rgb,
    frame: Rgb,
    vehicles: Vec<SceneVehicle>,
    /// Full-size and half-size sprite of the vehicle now passing.
    current: Option<(usize, Sprite, Sprite)>,
    dirty: Option<(u32, u32, u32, u32)>,
    period: u64,
    visible: u64,
    /// Ground model: plate px width `p = slope · (y − horizon)` at plate-centre height `y`.
    slope: f32,
    horizon: f32,
    p_start: f32,
    p_end: f32,
    /// Frame index the vehicle list starts at (moved on by [`TrafficScene::restart`]).
    offset: u64,
    /// Draws the looks of vehicles added later.
    rng: StdRng,
}

impl TrafficScene {
    /// Prepares the road and renders every vehicle's plate once. Errs without the plate font.
    pub fn new(spec: TrafficSpec) -> Result<TrafficScene, String> {
        if spec.width < 16 || spec.height < 16 {
            return Err(format!("traffic scene {}x{} is too small", spec.width, spec.height));
        }
        if !(spec.fps.is_finite() && spec.fps > 0.0) {
            return Err(format!("traffic scene fps {}", spec.fps));
        }
        let font = PlateFont::system()?;
        let f = frame_factor(spec.width, spec.height);
        let (p_start, p_end) = (PASS_PLATE_PX.0 * f, PASS_PLATE_PX.1 * f);
        let hf = spec.height as f32;
        let (y0, y1) = (PASS_PLATE_Y.0 * hf, PASS_PLATE_Y.1 * hf);
        let slope = (p_end - p_start) / (y1 - y0);
        let horizon = y0 - p_start / slope;
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let mut vehicles = Vec::with_capacity(spec.vehicles.len());
        for (text, color) in &spec.vehicles {
            let plate = render_plate_with(font, text, *color, p_end / 440.0)?;
            vehicles.push(SceneVehicle {
                look: random_look(&mut rng),
                plate,
                lane_offset_mm: rng.gen_range(-300.0..300.0),
            });
        }
        let spv = spec.seconds_per_vehicle.max(0.0);
        let visible = ((spv * spec.fps).round() as u64).max(1);
        let period = visible + (spec.gap_s.max(0.0) * spec.fps).round() as u64;
        let background = road(&mut rng, spec.width, spec.height, slope, horizon, p_end);
        let mut scene = TrafficScene {
            frame: background.clone(),
            background,
            spec,
            vehicles,
            current: None,
            dirty: None,
            period,
            visible,
            slope,
            horizon,
            p_start,
            p_end,
            offset: 0,
            rng,
        };
        if !scene.vehicles.is_empty() {
            scene.ensure_sprite(0);
        }
        Ok(scene)
    }

    pub fn spec(&self) -> &TrafficSpec {
        &self.spec
    }

    /// Paints over the empty road (scenery: a gantry, signs); vehicles still pass in front of it.
    pub fn paint_background(&mut self, paint: impl FnOnce(&mut Rgb)) {
        paint(&mut self.background);
        self.frame = self.background.clone();
        self.dirty = None;
    }

    /// Replaces the vehicles still to come with `vehicles`, the first entering at frame
    /// `from_index` (a live scene keeps its road and gets new traffic as it is told of it).
    pub fn restart(&mut self, vehicles: &[(String, PlateColor)], from_index: u64) -> Result<(), String> {
        let font = PlateFont::system()?;
        let mut list = Vec::with_capacity(vehicles.len());
        for (text, color) in vehicles {
            let plate = render_plate_with(font, text, *color, self.p_end / 440.0)?;
            list.push(SceneVehicle {
                look: random_look(&mut self.rng),
                plate,
                lane_offset_mm: self.rng.gen_range(-300.0..300.0),
            });
        }
        self.spec.vehicles = vehicles.to_vec();
        self.vehicles = list;
        self.current = None;
        self.offset = from_index;
        if !self.vehicles.is_empty() {
            self.ensure_sprite(0);
        }
        Ok(())
    }

    /// The empty road.
    pub fn background(&self) -> &Rgb {
        &self.background
    }

    /// Frames `first..=last` in which vehicle `i` (list order) is in view.
    pub fn vehicle_window(&self, i: usize) -> (u64, u64) {
        let first = self.offset + i as u64 * self.period;
        (first, first + self.visible - 1)
    }

    /// Whether every vehicle has passed by frame `index` (the road stays empty from then on).
    pub fn finished(&self, index: u64) -> bool {
        match self.vehicles.len() {
            0 => true,
            n => index > self.vehicle_window(n - 1).1,
        }
    }

    /// The vehicle in view at frame `index` and how far along its pass it is (0–1).
    fn at(&self, index: u64) -> Option<(usize, f32)> {
        let index = index.checked_sub(self.offset)?;
        let i = (index / self.period) as usize;
        let k = index % self.period;
        if i >= self.vehicles.len() || k >= self.visible {
            return None;
        }
        let t = if self.visible > 1 { k as f32 / (self.visible - 1) as f32 } else { 0.0 };
        Some((i, t))
    }

    /// Plate width (440 mm) and plate centre at progress `t`.
    fn pose(&self, i: usize, t: f32) -> (f32, f32, f32) {
        // Constant speed on the ground: the distance, 1/p, moves linearly.
        let p = 1.0 / ((1.0 - t) / self.p_start + t / self.p_end);
        let y = self.horizon + p / self.slope;
        let x = self.spec.width as f32 / 2.0 + self.vehicles[i].lane_offset_mm * p / 440.0;
        (p, x, y)
    }

    /// Where the plate of the vehicle in view at frame `index` is: its index and corners
    /// (TL, TR, BR, BL), or `None` for empty road.
    pub fn plate_corners(&self, index: u64) -> Option<(usize, [(f32, f32); 4])> {
        let (i, t) = self.at(index)?;
        let (p, x, y) = self.pose(i, t);
        let k = p / self.p_end;
        let (hw, hh) = (self.vehicles[i].plate.w as f32 * k / 2.0, self.vehicles[i].plate.h as f32 * k / 2.0);
        Some((i, [(x - hw, y - hh), (x + hw, y - hh), (x + hw, y + hh), (x - hw, y + hh)]))
    }

    /// Makes the sprites of vehicle `i` the ones held (dropping the previous vehicle's).
    fn ensure_sprite(&mut self, i: usize) {
        if self.current.as_ref().is_some_and(|c| c.0 == i) {
            return;
        }
        self.current = None; // free the previous vehicle first
        let v = &self.vehicles[i];
        let size = (v.plate.w as f32, v.plate.h as f32);
        let full = vehicle_sprite(&v.look, Some(&v.plate), size, self.p_end / 440.0);
        let half = full.half();
        self.current = Some((i, full, half));
    }

    /// Renders frame `index`. Any index may be asked for in any order; the road is restored
    /// where the previous frame drew a vehicle, then the vehicle in view (if any) is drawn.
    pub fn frame(&mut self, index: u64) -> &Rgb {
        if let Some((x0, y0, x1, y1)) = self.dirty.take() {
            self.frame.copy_region_from(&self.background, x0, y0, x1, y1);
        }
        let Some((i, t)) = self.at(index) else {
            // Empty road costs nothing: build the next vehicle's sprite now rather than in the
            // first frame it appears in.
            let next = index.checked_sub(self.offset).map_or(0, |k| (k / self.period + 1) as usize);
            if next < self.vehicles.len() {
                self.ensure_sprite(next);
            }
            return &self.frame;
        };
        self.ensure_sprite(i);
        let (p, x, y) = self.pose(i, t);
        let Some((_, full, half)) = self.current.as_ref() else { return &self.frame };
        let mut k = p / self.p_end;
        let sprite = if k < HALF_LEVEL_BELOW {
            k *= 2.0;
            half
        } else {
            full
        };
        let pc = ((sprite.plate[0].0 + sprite.plate[2].0) / 2.0, (sprite.plate[0].1 + sprite.plate[2].1) / 2.0);
        let (w, h) = (sprite.img.w as f32, sprite.img.h as f32);
        let quad = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)].map(|(sx, sy)| (x + (sx - pc.0) * k, y + (sy - pc.1) * k));
        self.dirty = warp_masked(&mut self.frame, &sprite.img, Some(&sprite.alpha), quad);
        &self.frame
    }
}

/// The empty road seen by a checkpoint camera above its lane: asphalt with a little texture, the
/// lane's dashed edges, a neighbouring lane each side, kerbs and pavement.
fn road(rng: &mut impl Rng, w: u32, h: u32, slope: f32, horizon: f32, p_ref: f32) -> Rgb {
    let mut img = Rgb::new(w, h, [0, 0, 0]);
    let cx = w as f32 / 2.0;
    // Ground distance, arbitrary units scaled so the pass ends 6 m away.
    let dist_m = |p: f32| 6.0 * p_ref / p;
    let asphalt = [84, 86, 90];
    for y in 0..h {
        let yc = y as f32 + 0.5;
        let p = slope * (yc - horizon);
        if p <= 0.05 {
            let c = lerp_rgb([170, 185, 200], [200, 205, 210], y as f32 / h as f32);
            for x in 0..w {
                img.put(x, y, c);
            }
            continue;
        }
        let mm_px = p / 440.0;
        let z = dist_m(p);
        let haze = (z / 120.0).min(0.5);
        let dash = (z % 15.0) < 6.0;
        for x in 0..w {
            let lat = ((x as f32 + 0.5 - cx) / mm_px).abs();
            let mut c = if lat < 5250.0 {
                asphalt
            } else if lat < 5450.0 {
                [182, 182, 176]
            } else if lat < 8450.0 {
                if ((lat - 5450.0) % 600.0) < 20.0 || (z % 0.6) < 0.02 { [120, 118, 112] } else { [150, 148, 140] }
            } else {
                [96, 110, 84]
            };
            // Lane lines: dashed at ±1.75 m, solid edge lines at ±5.1 m, 15 cm wide.
            for (centre, solid) in [(1750.0, false), (5100.0, true)] {
                let d_px = (lat - centre).abs() * mm_px - 75.0 * mm_px;
                let cov = (0.5 - d_px).clamp(0.0, 1.0);
                if cov > 0.0 && (solid || dash) {
                    c = lerp_rgb(c, [228, 228, 222], cov);
                }
            }
            img.put(x, y, lerp_rgb(c, [175, 180, 186], haze));
        }
    }
    add_noise(&mut img, rng, 4.0);
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_font() -> bool {
        PlateFont::system().is_ok()
    }

    fn check_grammar(p: &str, color: PlateColor) -> Result<(), String> {
        let c: Vec<char> = p.chars().collect();
        let alnum = |ch: char| ALNUM.contains(ch);
        let fail = || Err(format!("{color} plate {p:?}"));
        if !PROVINCES.contains(c[0]) || !LETTERS.contains(c[1]) {
            return fail();
        }
        let ok = match color {
            PlateColor::Green => c.len() == 8 && (c[2] == 'D' || c[2] == 'F') && c[3..].iter().all(|&ch| alnum(ch)),
            PlateColor::White => c.len() == 7 && c[2..6].iter().all(|&ch| alnum(ch)) && c[6] == '警',
            PlateColor::Yellow => {
                c.len() == 7 && c[2..6].iter().all(|&ch| alnum(ch)) && (alnum(c[6]) || c[6] == '学' || c[6] == '挂')
            }
            PlateColor::Black => {
                c.len() == 7
                    && c[2..6].iter().all(|&ch| alnum(ch))
                    && (alnum(c[6]) || ((c[6] == '港' || c[6] == '澳') && c[0] == '粤' && c[1] == 'Z'))
            }
            PlateColor::Blue => c.len() == 7 && c[2..].iter().all(|&ch| alnum(ch)),
        };
        if ok { Ok(()) } else { fail() }
    }

    #[test]
    fn generated_plates_follow_the_grammar() {
        let mut rng = StdRng::seed_from_u64(7);
        for color in PlateColor::ALL {
            let mut special = 0;
            for _ in 0..600 {
                let p = random_plate(&mut rng, color);
                check_grammar(&p, color).unwrap();
                special += p.chars().any(|ch| "学挂港澳".contains(ch)) as usize;
                assert!(!p.contains('I') && !p.contains('O'), "{p}");
            }
            match color {
                PlateColor::Yellow | PlateColor::Black => assert!(special > 60, "{color}: {special}"),
                _ => assert_eq!(special, 0),
            }
        }
        assert!(check_grammar("京A12345", PlateColor::Green).is_err());
        assert!(check_grammar("京I12345", PlateColor::Blue).is_err());
        assert_eq!(PROVINCES.chars().count(), 31);
    }

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

    #[test]
    fn missing_font_is_an_error() {
        let err = PlateFont::load(Path::new("/nonexistent/fonts/wqy-microhei.ttc")).unwrap_err();
        assert!(err.contains("/nonexistent/fonts/wqy-microhei.ttc"), "{err}");
        assert!(err.contains("apt install fonts-wqy-microhei"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.ttc");
        fs::write(&junk, b"not a font").unwrap();
        let err = PlateFont::load(&junk).unwrap_err();
        assert!(err.contains("junk.ttc"), "{err}");
    }

    #[test]
    fn plates_render_at_size_and_colour() {
        if !has_font() {
            eprintln!("skipped: {}", PlateFont::system().unwrap_err());
            return;
        }
        let p = render_plate("京A12345", PlateColor::Blue, 1.0).unwrap();
        assert_eq!((p.w, p.h), (440, 140));
        let g = render_plate("粤BD12345", PlateColor::Green, 0.5).unwrap();
        assert_eq!((g.w, g.h), (240, 70));
        assert!(render_plate("京A1234", PlateColor::Blue, 1.0).is_err());
        // Background between characters is blue, characters are white, the border ring too.
        let bg = p.get(20, 10);
        assert!(bg[2] > 140 && bg[0] < 40, "{bg:?}");
        let white = p.data.chunks(3).filter(|c| c[0] > 200 && c[1] > 200 && c[2] > 200).count();
        let share = white as f32 / (p.w * p.h) as f32;
        assert!((0.12..0.45).contains(&share), "white share {share}");
        // Police plate: red 警 in the last character box.
        let w = render_plate("京A1234警", PlateColor::White, 1.0).unwrap();
        let red = (380..425).flat_map(|x| (25..115).map(move |y| (x, y))).filter(|&(x, y)| {
            let c = w.get(x, y);
            c[0] > 150 && c[1] < 90 && c[2] < 90
        });
        assert!(red.count() > 300);
        // Every character box has ink.
        for text in ["京A12345", "琼Z1111港", "宁B11111"] {
            let p = render_plate(text, PlateColor::Yellow, 1.0).unwrap();
            let mut x = 15.5;
            for i in 0..7 {
                let ink = (x as u32..x as u32 + 45)
                    .flat_map(|x| (25..115).map(move |y| (x, y)))
                    .filter(|&(x, y)| p.get(x, y)[2] < 100 && p.get(x, y)[0] < 100)
                    .count();
                assert!(ink > 200, "{text} char {i}: {ink}");
                x += if i == 1 { 79.0 } else { 57.0 };
            }
        }
    }

    #[test]
    fn samples_have_their_plate_inside() {
        if !has_font() {
            return;
        }
        let mut rng = StdRng::seed_from_u64(11);
        for i in 0..6 {
            let s = sample(&mut rng, 640, 360, i % 2 == 1).unwrap();
            assert_eq!((s.image.w, s.image.h), (640, 360));
            check_grammar(&s.plate, s.color).unwrap();
            for (x, y) in s.corners {
                assert!((0.0..640.0).contains(&x) && (0.0..360.0).contains(&y), "{:?}", s.corners);
            }
            let pw = ((s.corners[1].0 - s.corners[0].0).powi(2) + (s.corners[1].1 - s.corners[0].1).powi(2)).sqrt();
            assert!((45.0..135.0).contains(&pw), "plate {pw} px wide");
        }
    }

    #[test]
    fn dataset_is_written_and_deterministic() {
        if !has_font() {
            return;
        }
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let sa = write_dataset(a.path(), 4, 42, 320, 180, 2).unwrap();
        assert_eq!((sa.clean, sa.hard, sa.plate_free), (2, 2, 2));
        let csv = fs::read_to_string(&sa.labels).unwrap();
        let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
        assert_eq!(rows[0].join(","), "file,plate,color,split,x1,y1,x2,y2,x3,y3,x4,y4");
        assert_eq!(rows.len(), 7);
        let files: Vec<&str> = rows[1..].iter().map(|r| r[0]).collect();
        assert_eq!(
            files,
            [
                "clean/000001.jpg",
                "hard/000002.jpg",
                "clean/000003.jpg",
                "hard/000004.jpg",
                "plate_free/000001.jpg",
                "plate_free/000002.jpg"
            ]
        );
        for r in &rows[1..] {
            assert_eq!(r.len(), 12);
            let bytes = fs::read(a.path().join(r[0])).unwrap();
            let img = image::load_from_memory(&bytes).unwrap();
            assert_eq!((img.width(), img.height()), (320, 180));
            if r[3] == "none" {
                assert!(r[1..3].iter().chain(&r[4..]).all(|f| f.is_empty()), "{r:?}");
            } else {
                let color: PlateColor = r[2].parse().unwrap();
                check_grammar(r[1], color).unwrap();
                assert_eq!(r[3], r[0].split('/').next().unwrap());
                let xy: Vec<f32> = r[4..].iter().map(|f| f.parse().unwrap()).collect();
                assert!(xy.chunks(2).all(|p| (0.0..320.0).contains(&p[0]) && (0.0..180.0).contains(&p[1])));
            }
        }
        write_dataset(b.path(), 4, 42, 320, 180, 2).unwrap();
        assert_eq!(csv, fs::read_to_string(b.path().join("labels.csv")).unwrap());
        for f in &files {
            assert_eq!(fs::read(a.path().join(f)).unwrap(), fs::read(b.path().join(f)).unwrap(), "{f}");
        }
        let c = tempfile::tempdir().unwrap();
        write_dataset(c.path(), 4, 43, 320, 180, 0).unwrap();
        assert_ne!(csv.lines().nth(1), fs::read_to_string(c.path().join("labels.csv")).unwrap().lines().nth(1));
    }

    #[test]
    fn traffic_scene_passes_vehicles_in_order() {
        if !has_font() {
            return;
        }
        let spec = TrafficSpec {
            vehicles: vec![("豫A12345".into(), PlateColor::Blue), ("京AD12345".into(), PlateColor::Green)],
            seed: 5,
            ..TrafficSpec::default()
        };
        let mut scene = TrafficScene::new(spec).unwrap();
        assert_eq!(scene.vehicle_window(0), (0, 29));
        assert_eq!(scene.vehicle_window(1), (40, 69));
        assert!(!scene.finished(69) && scene.finished(70));
        let bg = scene.background().clone();
        assert_eq!(scene.frame(35), &bg);
        assert_eq!(scene.frame(200), &bg);
        assert!(scene.plate_corners(35).is_none());
        let mut widths = Vec::new();
        for idx in [0, 15, 29, 40] {
            let (i, c) = scene.plate_corners(idx).unwrap();
            assert_eq!(i, (idx / 40) as usize);
            widths.push(c[1].0 - c[0].0);
            let f = scene.frame(idx).clone();
            assert_ne!(f, bg);
            for (x, y) in c {
                assert!(x >= 0.0 && y >= 0.0 && x <= 1280.0 && y <= 720.0, "{c:?}");
            }
            // The plate's middle is the plate, not the road.
            let (mx, ty) = ((c[0].0 + c[2].0) / 2.0, c[0].1 + 2.0);
            assert_ne!(f.get(mx as u32, ty as u32), bg.get(mx as u32, ty as u32));
        }
        assert!((widths[0] - 120.0).abs() < 2.0 && (widths[2] - 260.0).abs() < 2.0, "{widths:?}");
        assert!(widths[1] > widths[0] && widths[2] > widths[1]);
        // Green plates are 480 mm.
        assert!((widths[3] - 120.0 * 480.0 / 440.0).abs() < 2.0, "{widths:?}");
        // Returning to an empty-road frame restores the road exactly.
        scene.frame(20);
        assert_eq!(scene.frame(30), &bg);

        // Per-frame cost over a whole pass and its gap (the sprite was built in a gap frame).
        let (mut total, mut worst) = (0.0f64, 0.0f64);
        let (first, _) = scene.vehicle_window(1);
        for idx in first..first + 40 {
            let start = std::time::Instant::now();
            scene.frame(idx);
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            total += ms;
            worst = worst.max(ms);
        }
        eprintln!(
            "traffic scene 1280x720: {:.1} ms per frame on average, {worst:.1} ms at worst ({} build)",
            total / 40.0,
            if cfg!(debug_assertions) { "debug" } else { "release" }
        );
    }
}
