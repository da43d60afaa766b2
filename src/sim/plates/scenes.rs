//! Labelled still pictures: a vehicle with its plate placed in a cluttered scene, clean or
//! degraded (perspective, rotation, blur, noise, low light, glare), and plate-free frames.

use rand::Rng;

use super::degrade::{add_glare, add_noise, adjust_brightness, gaussian_blur};
use super::geometry::{apply_homography, homography, warp_into, warp_masked};
use super::numbers::random_plate;
use super::render::{PLATE_H_MM, PlateFont, render_plate_with};
use super::rgb::Rgb;
use super::shapes::{fill_sdf, sd_box, sd_segment};
use super::vehicles::{random_look, vehicle_sprite};
use crate::plate::PlateColor;

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
pub(super) fn frame_factor(w: u32, h: u32) -> f32 {
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

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::sim::plates::numbers::check_grammar;
    use crate::sim::plates::render::has_font;

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
}
