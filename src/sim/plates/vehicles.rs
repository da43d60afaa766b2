//! Vehicles seen from the front, drawn at millimetre scale around their plate: body, windscreen,
//! lights, grille and a ground shadow, as sprites with full and half-size copies.

use rand::Rng;

use super::rgb::{Rgb, shade};
use super::shapes::{fill_sdf, sd_box, sd_convex, sd_ellipse, sd_segment};

/// Millimetre layout of a vehicle seen from the front: width, height (roof to ground shadow) and
/// the plate centre.
const CAR_W_MM: f32 = 1800.0;
const CAR_H_MM: f32 = 1500.0;
const CAR_PLATE_MM: (f32, f32) = (900.0, 1090.0);

/// How a vehicle looks.
#[derive(Clone, Debug)]
pub(super) struct VehicleLook {
    body: [u8; 3],
    lights: u8,
    grille: u8,
    black_bumper: bool,
    cabin_narrow: f32,
}

pub(super) fn random_look(rng: &mut impl Rng) -> VehicleLook {
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
pub(super) struct Sprite {
    pub(super) img: Rgb,
    pub(super) alpha: Vec<u8>,
    /// Plate corners TL, TR, BR, BL in sprite pixels.
    pub(super) plate: [(f32, f32); 4],
}

impl Sprite {
    pub(super) fn half(&self) -> Sprite {
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
pub(super) fn vehicle_sprite(look: &VehicleLook, plate: Option<&Rgb>, plate_size: (f32, f32), mm_px: f32) -> Sprite {
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
