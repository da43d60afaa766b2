//! Degradations that make a clean picture hard: Gaussian blur, sensor noise, brightness and
//! gamma, glare.

use std::sync::OnceLock;

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::rgb::Rgb;

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
