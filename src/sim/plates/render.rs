//! The plate font and plate rendering: WenQuanYi Micro Hei glyphs stretched into the tall,
//! narrow character boxes of the GA 36 layout, on each colour class's background.

use std::fmt;
use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use ab_glyph::{Font, FontVec, PxScale, point};

use super::rgb::{Rgb, blend_px};
use super::shapes::{fill_sdf, sd_box, sd_ellipse};
use crate::plate::PlateColor;

/// The font plates are drawn with (face 0 of the collection).
pub const PLATE_FONT_PATH: &str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc";

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

pub(super) const PLATE_H_MM: f32 = 140.0;

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

/// Whether the plate font is installed (tests that draw plates skip without it).
#[cfg(test)]
pub(super) fn has_font() -> bool {
    PlateFont::system().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
