//! Video quality diagnosis (视频质量诊断): measurements on a sampled frame, judged against the
//! camera's own learned baseline where a fixed threshold would misjudge a scene (blur, occlusion,
//! scene change), with hysteresis: a fault is raised after K bad samples in a row and cleared after
//! K good ones. Every measured value is kept so a crew sees why.

use serde::Serialize;

use crate::ingest::{Frame, PixelFormat};

/// The checks (signal loss comes from ingest health, not from a frame) and what a sample
/// measured: part of the event contract, since quality events carry them.
pub use crate::events::{Measures, QualityCheck as Check};

/// Thresholds (the figures commercial systems use, DOMAIN.md) and the hysteresis.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct VqdParams {
    pub dark_below: f32,
    pub bright_above: f32,
    pub contrast_below: f32,
    /// Sharpness (Laplacian variance) below this share of the camera's baseline is blur.
    pub blur_ratio: f32,
    /// Colour-cast factor K = D/M (mean chroma offset over chroma spread) above this.
    pub cast_above: f32,
    /// Estimated noise σ (grey levels) above this is snow.
    pub noise_above: f32,
    /// Mean absolute difference (grey levels) between two frames a moment apart below this is a
    /// frozen picture: a live sensor's noise alone
    /// differs by more, a frozen encoder's frames decode identically within a group of pictures.
    pub frozen_below: f32,
    /// Share of the reference's textured blocks that lost their texture.
    pub occlusion_above: f32,
    /// Correlation with the reference view below this is a moved camera.
    pub scene_corr_below: f32,
    /// Samples that form the baseline and the reference view (after `skip_samples`).
    pub learn_samples: u32,
    /// A stream's first samples are not its steady picture (an encoder's first frames are
    /// sharper than its rate control keeps them): they do not teach the baseline.
    pub skip_samples: u32,
    /// Bad samples in a row that raise a fault, good ones that clear it.
    pub raise_after: u32,
    pub clear_after: u32,
}

impl Default for VqdParams {
    fn default() -> Self {
        Self {
            dark_below: 30.0,
            bright_above: 220.0,
            contrast_below: 25.0,
            blur_ratio: 0.35,
            cast_above: 1.5,
            noise_above: 12.0,
            frozen_below: 0.25,
            occlusion_above: 0.5,
            scene_corr_below: 0.5,
            learn_samples: 3,
            skip_samples: 2,
            raise_after: 2,
            clear_after: 2,
        }
    }
}

const GW: usize = 320;
const GH: usize = 180;
const SW: usize = 32;
const SH: usize = 18;
const BLOCK: usize = 20;

/// The grey picture at 320×180 and, for RGB frames, the mean Lab-like chroma statistics.
struct Sample {
    grey: Vec<f32>,
    /// Colour-cast factor, 0 for grey frames.
    cast: f32,
}

fn prepare(f: &Frame) -> Option<Sample> {
    let (fw, fh) = (f.width as usize, f.height as usize);
    let bpp = f.format.bytes_per_pixel();
    if fw < 16 || fh < 16 || f.data.len() < fw * fh * bpp {
        return None;
    }
    let mut grey = vec![0f32; GW * GH];
    let (mut sa, mut sb, mut n) = (0f64, 0f64, 0f64);
    let mut chroma: Vec<(f32, f32)> = Vec::new();
    for y in 0..GH {
        let sy = (y * fh + fh / 2) / GH;
        for x in 0..GW {
            let sx = (x * fw + fw / 2) / GW;
            let i = (sy.min(fh - 1) * fw + sx.min(fw - 1)) * bpp;
            grey[y * GW + x] = match f.format {
                PixelFormat::Gray8 => f32::from(f.data[i]),
                PixelFormat::Rgb24 => {
                    let (r, g, b) = (f32::from(f.data[i]), f32::from(f.data[i + 1]), f32::from(f.data[i + 2]));
                    if (x + y) % 3 == 0 {
                        // Opponent axes relative to brightness (chromaticity, as Lab's a*, b*
                        // are): a toned picture has one chromaticity whatever each pixel's light.
                        let l = (r + g + b) / 3.0 + 10.0;
                        let a = 100.0 * (r - g) / l;
                        let bb = 100.0 * ((r + g) / 2.0 - b) / l;
                        sa += f64::from(a);
                        sb += f64::from(bb);
                        n += 1.0;
                        chroma.push((a, bb));
                    }
                    0.299 * r + 0.587 * g + 0.114 * b
                }
            };
        }
    }
    let cast = if n > 0.0 {
        let (da, db) = ((sa / n) as f32, (sb / n) as f32);
        let d = (da * da + db * db).sqrt();
        let m =
            chroma.iter().map(|(a, b)| ((a - da).powi(2) + (b - db).powi(2)).sqrt()).sum::<f32>() / chroma.len() as f32;
        if d < 8.0 { 0.0 } else { d / m.max(1.0) }
    } else {
        0.0
    };
    Some(Sample { grey, cast })
}

/// Mean absolute difference and share of identical pixels of two grey pictures.
fn change_between(a: &[f32], b: &[f32]) -> (f32, f32) {
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count() as f32 / b.len().max(1) as f32;
    let mad = a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / b.len().max(1) as f32;
    (mad, same)
}

/// How much `b` differs from `a`, an earlier frame of the same stream: mean absolute difference
/// and share of identical pixels on the diagnosis's grey copy.
pub fn frame_change(a: &Frame, b: &Frame) -> Option<(f32, f32)> {
    let (pa, pb) = (prepare(a)?, prepare(b)?);
    Some(change_between(&pa.grey, &pb.grey))
}

fn mean_std(v: &[f32]) -> (f32, f32) {
    let n = v.len().max(1) as f32;
    let m = v.iter().sum::<f32>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / n;
    (m, var.sqrt())
}

/// Variance of the 4-neighbour Laplacian on a 2×2-averaged copy (sensor noise and compression
/// mush average out; focus edges stay).
fn sharpness(g: &[f32]) -> f32 {
    let (w, h) = (GW / 2, GH / 2);
    let mut half = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let i = 2 * y * GW + 2 * x;
            half[y * w + x] = (g[i] + g[i + 1] + g[i + GW] + g[i + GW + 1]) / 4.0;
        }
    }
    let mut vals = Vec::with_capacity(w * h);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let c = half[y * w + x];
            vals.push(
                half[y * w + x - 1] + half[y * w + x + 1] + half[(y - 1) * w + x] + half[(y + 1) * w + x] - 4.0 * c,
            );
        }
    }
    let (_, s) = mean_std(&vals);
    s * s
}

/// Immerkær's fast noise estimate: σ = √(π/2) / (6 (W−2)(H−2)) Σ |I ∗ N|, over flat-ish pixels
/// (edges excluded so texture is not taken for noise).
fn noise_sigma(g: &[f32]) -> f32 {
    let mut sum = 0f64;
    let mut n = 0usize;
    for y in 1..GH - 1 {
        for x in 1..GW - 1 {
            let p = |dx: isize, dy: isize| g[(y as isize + dy) as usize * GW + (x as isize + dx) as usize];
            let gx = (p(1, 0) - p(-1, 0)).abs();
            let gy = (p(0, 1) - p(0, -1)).abs();
            if gx + gy > 60.0 {
                continue;
            }
            let v = p(-1, -1) - 2.0 * p(0, -1) + p(1, -1) - 2.0 * p(-1, 0) + 4.0 * p(0, 0) - 2.0 * p(1, 0) + p(-1, 1)
                - 2.0 * p(0, 1)
                + p(1, 1);
            sum += f64::from(v.abs());
            n += 1;
        }
    }
    if n == 0 {
        return 0.0;
    }
    ((std::f64::consts::PI / 2.0).sqrt() * sum / (6.0 * n as f64)) as f32
}

fn block_std(g: &[f32]) -> Vec<f32> {
    let mut out = Vec::new();
    for by in 0..GH / BLOCK {
        for bx in 0..GW / BLOCK {
            let mut v = Vec::with_capacity(BLOCK * BLOCK);
            for y in by * BLOCK..(by + 1) * BLOCK {
                for x in bx * BLOCK..(bx + 1) * BLOCK {
                    v.push(g[y * GW + x]);
                }
            }
            out.push(mean_std(&v).1);
        }
    }
    out
}

fn thumb(g: &[f32]) -> Vec<f32> {
    let mut t = vec![0f32; SW * SH];
    let (kx, ky) = (GW / SW, GH / SH);
    for y in 0..SH {
        for x in 0..SW {
            let mut s = 0.0;
            for yy in 0..ky {
                for xx in 0..kx {
                    s += g[(y * ky + yy) * GW + x * kx + xx];
                }
            }
            t[y * SW + x] = s / (kx * ky) as f32;
        }
    }
    t
}

fn correlation(a: &[f32], b: &[f32]) -> f32 {
    let (ma, sa) = mean_std(a);
    let (mb, sb) = mean_std(b);
    if sa < 1e-3 || sb < 1e-3 {
        return if (ma - mb).abs() < 2.0 { 1.0 } else { 0.0 };
    }
    a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum::<f32>() / (a.len() as f32 * sa * sb)
}

/// A fault's state for one check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CheckState {
    pub active: bool,
    pub bad_streak: u32,
    pub good_streak: u32,
}

/// A transition to report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultChange {
    pub check: Check,
    pub raised: bool,
    pub measures: Measures,
}

/// One camera's diagnosis state: baseline, reference view, previous sample, hysteresis.
pub struct CameraVqd {
    pub params: VqdParams,
    learned: u32,
    seen: u32,
    sharp_seen: Vec<f32>,
    baseline_sharpness: f32,
    reference_blocks: Vec<f32>,
    reference_thumb: Vec<f32>,
    previous: Option<Vec<f32>>,
    pub states: std::collections::BTreeMap<Check, CheckState>,
    pub last: Option<Measures>,
    /// Checks not run for this camera (`[[quality_override]] disable`).
    pub disabled: Vec<Check>,
}

impl CameraVqd {
    pub fn new(params: VqdParams) -> Self {
        Self {
            params,
            learned: 0,
            seen: 0,
            sharp_seen: Vec::new(),
            baseline_sharpness: 0.0,
            reference_blocks: Vec::new(),
            reference_thumb: Vec::new(),
            previous: None,
            states: Check::ALL.iter().map(|c| (*c, CheckState::default())).collect(),
            last: None,
            disabled: Vec::new(),
        }
    }

    /// Forgets the reference view (after a crew re-aims the camera on purpose).
    pub fn relearn(&mut self) {
        self.learned = 0;
        self.seen = 0;
        self.sharp_seen.clear();
        self.reference_blocks.clear();
        self.reference_thumb.clear();
        self.baseline_sharpness = 0.0;
    }

    pub fn active(&self) -> Vec<Check> {
        self.states.iter().filter(|(_, s)| s.active).map(|(c, _)| *c).collect()
    }

    /// Judges one sampled frame; returns the faults raised or cleared by it. Frozen is judged
    /// against the previous sample.
    pub fn sample(&mut self, f: &Frame) -> Vec<FaultChange> {
        self.sample_with_recent(f, None)
    }

    /// Like `sample`, with frozen judged on `stillest`: the least-changed pair of consecutive
    /// frames seen since the last sample (`frame_change`). A frozen encoder's frames within one
    /// group of pictures decode identically, while samples seconds apart differ by each
    /// keyframe's re-encoding of the same still picture; a live sensor's frames always differ.
    pub fn sample_with_recent(&mut self, f: &Frame, stillest: Option<(f32, f32)>) -> Vec<FaultChange> {
        let Some(s) = prepare(f) else { return Vec::new() };
        let p = self.params;
        let (mean, contrast) = mean_std(&s.grey);
        let sharp = sharpness(&s.grey);
        let noise = noise_sigma(&s.grey);
        let blocks = block_std(&s.grey);
        let th = thumb(&s.grey);
        let change = stillest.or_else(|| self.previous.as_ref().map(|prev| change_between(prev, &s.grey)));
        self.previous = Some(s.grey.clone());
        self.seen += 1;
        let learning = self.learned < p.learn_samples && self.seen > p.skip_samples;
        let exposure_ok = mean >= p.dark_below && mean <= p.bright_above && contrast >= p.contrast_below;
        if learning && exposure_ok {
            // The baseline and reference come from healthy-looking samples only.
            let k = self.learned as f32;
            // The baseline sharpness is the median of the learning samples.
            self.sharp_seen.push(sharp);
            let mut v = self.sharp_seen.clone();
            v.sort_by(|a, b| a.total_cmp(b));
            self.baseline_sharpness = v[v.len() / 2];
            if self.reference_blocks.is_empty() {
                self.reference_blocks = blocks.clone();
                self.reference_thumb = th.clone();
            } else {
                for (r, b) in self.reference_blocks.iter_mut().zip(&blocks) {
                    *r = (*r * k + b) / (k + 1.0);
                }
                for (r, b) in self.reference_thumb.iter_mut().zip(&th) {
                    *r = (*r * k + b) / (k + 1.0);
                }
            }
            self.learned += 1;
        }
        let have_ref = self.learned >= p.learn_samples;
        let occluded = have_ref.then(|| {
            let textured: Vec<usize> = (0..blocks.len()).filter(|&i| self.reference_blocks[i] > 8.0).collect();
            if textured.is_empty() {
                return 0.0;
            }
            textured.iter().filter(|&&i| blocks[i] < 0.3 * self.reference_blocks[i]).count() as f32
                / textured.len() as f32
        });
        let corr = have_ref.then(|| correlation(&th, &self.reference_thumb));
        let m = Measures {
            mean_luma: mean,
            contrast,
            sharpness: sharp,
            colour_cast: s.cast,
            noise_sigma: noise,
            change_from_previous: change.map(|c| c.0),
            occluded_share: occluded,
            scene_correlation: corr,
        };
        let dark = mean < p.dark_below;
        let bright = mean > p.bright_above;
        let flat = contrast < p.contrast_below;
        let occl = occluded.is_some_and(|o| o > p.occlusion_above);
        let verdicts = [
            // A black, white or flat picture repeats too; it is reported as what it is.
            (Check::Frozen, change.is_some_and(|(mad, _)| mad < p.frozen_below) && !dark && !bright && !flat),
            (Check::TooDark, dark),
            (Check::TooBright, bright),
            (Check::LowContrast, flat && !dark && !bright),
            // Blur is judged only on a picture that is otherwise sound (a dark or covered view is
            // soft for another reason).
            (
                Check::Blur,
                have_ref && !dark && !bright && !flat && !occl && sharp < p.blur_ratio * self.baseline_sharpness,
            ),
            (Check::ColourCast, s.cast > p.cast_above),
            (Check::Noise, noise > p.noise_above),
            (Check::Occlusion, occl),
            (Check::SceneChange, corr.is_some_and(|c| c < p.scene_corr_below) && !occl && !dark && !bright && !flat),
        ];
        let mut changes = Vec::new();
        for (check, bad) in verdicts {
            let bad = bad && !self.disabled.contains(&check);
            let st = self.states.entry(check).or_default();
            if bad {
                st.bad_streak += 1;
                st.good_streak = 0;
                if !st.active && st.bad_streak >= p.raise_after {
                    st.active = true;
                    changes.push(FaultChange { check, raised: true, measures: m.clone() });
                }
            } else {
                st.good_streak += 1;
                st.bad_streak = 0;
                if st.active && st.good_streak >= p.clear_after {
                    st.active = false;
                    changes.push(FaultChange { check, raised: false, measures: m.clone() });
                }
            }
        }
        self.last = Some(m);
        changes
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A textured street-like scene (gradient sky, blocks, edges), RGB, with sensor noise σ.
    fn scene(w: u32, h: u32, shift: i32, seed: u64, sigma: f32) -> Vec<u8> {
        let mut x64 = seed.wrapping_mul(2654435761) | 1;
        let mut rnd = || {
            x64 ^= x64 << 13;
            x64 ^= x64 >> 7;
            x64 ^= x64 << 17;
            let s: f32 = (0..4).map(|i| ((x64 >> (i * 16)) & 0xffff) as f32 / 65535.0).sum();
            (s - 2.0) * 1.732
        };
        let mut d = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h as i32 {
            for x in 0..w as i32 {
                let xs = x + shift;
                let base = if y < h as i32 / 3 {
                    150.0 + y as f32 * 0.3
                } else {
                    60.0 + 70.0 * (((xs / 23) + (y / 17)) % 3) as f32 + 20.0 * ((xs / 7) % 2) as f32
                };
                let n = rnd() * sigma;
                // Coloured objects, neutral on the whole (cars, signs, shop fronts).
                let tint = [[1.25, 1.0, 0.75], [0.75, 1.0, 1.25], [1.0, 1.2, 0.8], [1.0, 0.8, 1.2]]
                    [(((xs / 41) + (y / 29)) % 4) as usize];
                for t in tint {
                    d.push((base * t + n).clamp(0.0, 255.0) as u8);
                }
            }
        }
        d
    }

    fn frame(data: Vec<u8>) -> Frame {
        Frame {
            camera: Arc::from("c"),
            captured_ms: 0,
            pts_ns: None,
            width: 640,
            height: 360,
            format: PixelFormat::Rgb24,
            data,
        }
    }

    fn blur(d: &[u8], r: i32) -> Vec<u8> {
        let (w, h) = (640i32, 360i32);
        let mut out = d.to_vec();
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let mut s = 0u32;
                    let mut n = 0u32;
                    for dy in -r..=r {
                        for dx in -r..=r {
                            let (xx, yy) = ((x + dx).clamp(0, w - 1), (y + dy).clamp(0, h - 1));
                            s += u32::from(d[((yy * w + xx) * 3 + c) as usize]);
                            n += 1;
                        }
                    }
                    out[((y * w + x) * 3 + c) as usize] = (s / n) as u8;
                }
            }
        }
        out
    }

    type Fault = fn(&[u8], u64) -> Vec<u8>;

    /// Healthy samples, then `fault` until raised (counting samples), then healthy until cleared.
    fn run(fault: Fault, want: Check) -> (usize, usize) {
        let mut v = CameraVqd::new(VqdParams::default());
        let mut seed = 1;
        for _ in 0..6 {
            seed += 1;
            assert!(v.sample(&frame(scene(640, 360, 0, seed, 2.0))).is_empty(), "healthy raised {:?}", v.last);
        }
        let mut raised = 0;
        for i in 1..=10 {
            seed += 1;
            let ch = v.sample(&frame(fault(&scene(640, 360, 0, seed, 2.0), seed)));
            if ch.iter().any(|c| c.check == want && c.raised) {
                raised = i;
                break;
            }
        }
        assert!(raised > 0, "{want:?} never raised; last {:?}", v.last);
        let mut cleared = 0;
        for i in 1..=10 {
            seed += 1;
            let ch = v.sample(&frame(scene(640, 360, 0, seed, 2.0)));
            if ch.iter().any(|c| c.check == want && !c.raised) {
                cleared = i;
                break;
            }
        }
        assert!(cleared > 0, "{want:?} never cleared; last {:?}", v.last);
        assert!(v.active().is_empty(), "still active after recovery: {:?}", v.active());
        (raised, cleared)
    }

    #[test]
    fn each_fault_raised_and_cleared_within_three_samples() {
        let cases: Vec<(Check, Fault)> = vec![
            (Check::TooDark, |d, _| d.iter().map(|v| v / 12).collect()),
            (Check::TooBright, |d, _| d.iter().map(|v| 240u8.saturating_add(v / 20)).collect()),
            (Check::Blur, |d, _| blur(d, 3)),
            (Check::ColourCast, |d, _| d.chunks(3).flat_map(|p| [p[0].saturating_add(70), p[1], p[2] / 2]).collect()),
            (Check::Noise, |_, s| scene(640, 360, 0, s, 35.0)),
            (Check::Occlusion, |d, _| {
                // A hand over 70 % of the lens: a flat dark shape.
                let mut o = d.to_vec();
                for y in 0..360 {
                    for x in 0..448 {
                        for c in 0..3 {
                            o[(y * 640 + x) * 3 + c] = 40;
                        }
                    }
                }
                o
            }),
            (Check::SceneChange, |_, s| scene(640, 360, 57, s, 2.0)),
        ];
        for (check, fault) in cases {
            let (r, c) = run(fault, check);
            assert!(r <= 3 && c <= 3, "{check:?}: raised after {r}, cleared after {c}");
        }
    }

    #[test]
    fn frozen_is_told_from_a_still_live_scene() {
        let mut v = CameraVqd::new(VqdParams::default());
        // A still scene with sensor noise: never frozen.
        for s in 0..20 {
            assert!(v.sample(&frame(scene(640, 360, 0, s + 1, 1.0))).is_empty(), "{:?}", v.last);
        }
        // The same picture repeated exactly: frozen within three samples.
        let stuck = scene(640, 360, 0, 99, 1.0);
        let mut raised = 0;
        for i in 1..=5 {
            if v.sample(&frame(stuck.clone())).iter().any(|c| c.check == Check::Frozen && c.raised) {
                raised = i;
                break;
            }
        }
        assert!((1..=3).contains(&raised), "frozen raised after {raised}");
    }

    #[test]
    fn a_naturally_soft_scene_is_not_blur() {
        let mut v = CameraVqd::new(VqdParams::default());
        for s in 0..20 {
            let soft = blur(&scene(640, 360, 0, s + 1, 2.0), 2);
            assert!(v.sample(&frame(soft)).is_empty(), "{:?}", v.last);
        }
    }
}
