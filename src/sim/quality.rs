//! Quality-test scenes for simulated cameras (`SimScene::Quality`): a textured street picture
//! with sensor noise and a figure walking through it (a live camera never repeats a frame
//! exactly), and picture faults that switch while the camera streams (`SimServer::set_fault`):
//! black, white, frozen, blur, cover, moved, colour cast, noise.

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand::rngs::StdRng;

/// A picture fault a simulated camera can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureFault {
    /// Lost video signal: an almost black picture.
    Black,
    /// Overexposed: an almost white picture.
    White,
    /// The encoder keeps sending the same picture.
    Frozen,
    /// Defocused.
    Blur,
    /// The lower 70 % covered (a bag, a hand, paint).
    Cover,
    /// Turned to look somewhere else.
    Moved,
    /// A strong yellow tint (a failing sensor or IR filter).
    Cast,
    /// Snow: heavy grey noise over the picture (σ ≈ 40 grey levels).
    Noise,
}

impl FromStr for PictureFault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "black" => PictureFault::Black,
            "white" => PictureFault::White,
            "frozen" => PictureFault::Frozen,
            "blur" => PictureFault::Blur,
            "cover" => PictureFault::Cover,
            "moved" => PictureFault::Moved,
            "cast" => PictureFault::Cast,
            "noise" => PictureFault::Noise,
            _ => {
                return Err(format!(
                    "unknown picture fault {s:?}; one of black, white, frozen, blur, cover, moved, cast, noise"
                ));
            }
        })
    }
}

/// The fault a quality scene shows now, shared between the scene's spec and its frame source.
#[derive(Debug, Clone, Default)]
pub struct FaultSwitch(Arc<Mutex<Option<PictureFault>>>);

impl PartialEq for FaultSwitch {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl FaultSwitch {
    pub fn set(&self, f: Option<PictureFault>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = f;
    }

    pub fn get(&self) -> Option<PictureFault> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A quality scene as a frame source for the simulator, its fault read from `switch` each frame.
pub struct QualitySource {
    pub scene: QualityScene,
    pub switch: FaultSwitch,
    out: crate::sim::plates::Rgb,
}

impl QualitySource {
    pub fn new(scene: QualityScene, switch: FaultSwitch) -> Self {
        let out = crate::sim::plates::Rgb { w: scene.w as u32, h: scene.h as u32, data: Vec::new() };
        Self { scene, switch, out }
    }
}

impl crate::sim::scene::FrameSource for QualitySource {
    fn frame(&mut self, _index: u64) -> &crate::sim::plates::Rgb {
        self.out.data = self.scene.frame(self.switch.get());
        &self.out
    }
}

/// Frames of one camera's scene, RGB.
pub struct QualityScene {
    w: usize,
    h: usize,
    base: Vec<u8>,
    /// What the camera sees when turned away.
    turned: Vec<u8>,
    last: Vec<u8>,
    noise: u64,
    index: u64,
}

fn picture(seed: u64, w: u32, h: u32) -> Result<Vec<u8>, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    Ok(crate::sim::plates::plate_free_frame(&mut rng, w, h, false)?.data)
}

impl QualityScene {
    pub fn new(width: u32, height: u32, seed: u64) -> Result<Self, String> {
        Ok(Self {
            w: width as usize,
            h: height as usize,
            base: picture(seed, width, height)?,
            turned: picture(seed ^ 0x5eed_cafe, width, height)?,
            last: Vec::new(),
            noise: seed | 1,
            index: 0,
        })
    }

    /// A uniform random value in 0..1 (xorshift: fast enough for every pixel of every frame).
    fn unit(&mut self) -> f32 {
        self.noise ^= self.noise << 13;
        self.noise ^= self.noise >> 7;
        self.noise ^= self.noise << 17;
        (self.noise >> 40) as f32 / (1u64 << 24) as f32
    }

    /// The next frame with `fault` applied.
    pub fn frame(&mut self, fault: Option<PictureFault>) -> Vec<u8> {
        self.index += 1;
        if fault == Some(PictureFault::Frozen) && !self.last.is_empty() {
            return self.last.clone();
        }
        let (w, h) = (self.w, self.h);
        let mut out = if fault == Some(PictureFault::Moved) { self.turned.clone() } else { self.base.clone() };
        // A figure walking across the lower middle of the picture.
        let (fw, fh) = ((w / 24).max(2), (h / 4).max(4));
        let x0 = ((self.index as usize * (w / 80).max(1)) % (w + fw)) as isize - fw as isize;
        let y0 = h * 11 / 20;
        for y in y0..(y0 + fh).min(h) {
            for x in x0.max(0) as usize..((x0 + fw as isize).max(0) as usize).min(w) {
                let i = (y * w + x) * 3;
                out[i..i + 3].copy_from_slice(&[70, 60, 90]);
            }
        }
        match fault {
            Some(PictureFault::Black) => out.iter_mut().for_each(|v| *v = 6),
            Some(PictureFault::White) => out.iter_mut().for_each(|v| *v = 250),
            Some(PictureFault::Cover) => out[(h * 3 / 10) * w * 3..].iter_mut().for_each(|v| *v = 12),
            Some(PictureFault::Blur) => box_blur(&mut out, w, h, (w / 160).max(2)),
            Some(PictureFault::Cast) => {
                for p in out.chunks_exact_mut(3) {
                    let l = (u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2])) as f32 / 3.0;
                    p[0] = (l * 0.9 + 60.0).min(255.0) as u8;
                    p[1] = (l * 0.75 + 30.0).min(255.0) as u8;
                    p[2] = (l * 0.35) as u8;
                }
            }
            _ => {}
        }
        if fault == Some(PictureFault::Noise) {
            // Snow: grey, as a weak or lost analogue signal's is (one value for the three
            // channels of a pixel), σ ≈ 40 grey levels; colour noise of the same strength
            // loses √3 of it to the luma the encoder keeps and quality diagnosis reads.
            for p in out.chunks_exact_mut(3) {
                let n = (self.unit() - 0.5) * 140.0;
                p.iter_mut().for_each(|v| *v = (f32::from(*v) + n).clamp(0.0, 255.0) as u8);
            }
        } else {
            // Sensor noise (σ ≈ 2), on every channel.
            for v in out.iter_mut() {
                let n = (self.unit() - 0.5) * 7.0;
                *v = (f32::from(*v) + n).clamp(0.0, 255.0) as u8;
            }
        }
        self.last.clone_from(&out);
        out
    }
}

/// Two passes of a separable box blur of radius `r` (close to a Gaussian).
fn box_blur(img: &mut [u8], w: usize, h: usize, r: usize) {
    let mut tmp = vec![0f32; img.len()];
    for _ in 0..2 {
        for y in 0..h {
            for c in 0..3 {
                let mut acc = 0f32;
                for x in 0..=r.min(w - 1) {
                    acc += f32::from(img[(y * w + x) * 3 + c]);
                }
                for x in 0..w {
                    let lo = x.saturating_sub(r);
                    let hi = (x + r).min(w - 1);
                    tmp[(y * w + x) * 3 + c] = acc / (hi - lo + 1) as f32;
                    if x + r + 1 < w {
                        acc += f32::from(img[(y * w + x + r + 1) * 3 + c]);
                    }
                    if x >= r {
                        acc -= f32::from(img[(y * w + x - r) * 3 + c]);
                    }
                }
            }
        }
        for x in 0..w {
            for c in 0..3 {
                let mut acc = 0f32;
                for y in 0..=r.min(h - 1) {
                    acc += tmp[(y * w + x) * 3 + c];
                }
                for y in 0..h {
                    let lo = y.saturating_sub(r);
                    let hi = (y + r).min(h - 1);
                    img[(y * w + x) * 3 + c] = (acc / (hi - lo + 1) as f32) as u8;
                    if y + r + 1 < h {
                        acc += tmp[((y + r + 1) * w + x) * 3 + c];
                    }
                    if y >= r {
                        acc -= tmp[((y - r) * w + x) * 3 + c];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Frame, PixelFormat};
    use crate::maintenance::vqd::{CameraVqd, Check, VqdParams};

    fn as_frame(data: Vec<u8>, w: u32, h: u32, i: i64) -> Frame {
        Frame {
            camera: "s".into(),
            captured_ms: i,
            pts_ns: None,
            width: w,
            height: h,
            format: PixelFormat::Rgb24,
            data,
        }
    }

    /// Every fault of the scene is what the quality checks call it, and the healthy scene raises
    /// nothing (checked here on the frames themselves; over RTSP in tests/maintenance_vqd.rs).
    #[test]
    fn each_fault_is_diagnosed_and_the_healthy_scene_is_not() {
        let (w, h) = (640, 360);
        let cases = [
            ("black", Check::TooDark),
            ("white", Check::TooBright),
            ("frozen", Check::Frozen),
            ("blur", Check::Blur),
            ("cover", Check::Occlusion),
            ("moved", Check::SceneChange),
            ("cast", Check::ColourCast),
            ("noise", Check::Noise),
        ];
        for (name, want) in cases {
            let mut s = QualityScene::new(w, h, 7).unwrap();
            let mut vqd = CameraVqd::new(VqdParams::default());
            let mut t = 0;
            for _ in 0..8 {
                t += 1;
                let changes = vqd.sample(&as_frame(s.frame(None), w, h, t));
                assert!(changes.is_empty(), "healthy scene raised {changes:?}");
            }
            let fault: PictureFault = name.parse().unwrap();
            let mut raised = Vec::new();
            for _ in 0..3 {
                t += 1;
                raised.extend(vqd.sample(&as_frame(s.frame(Some(fault)), w, h, t)).into_iter().filter(|c| c.raised));
            }
            let checks: Vec<Check> = raised.iter().map(|c| c.check).collect();
            assert!(checks.contains(&want), "{name}: raised {checks:?}, want {want:?}; last {:?}", vqd.last);
        }
        assert!("smoke".parse::<PictureFault>().is_err());
    }
}
