//! One passage per vehicle: plate reads from successive frames of a checkpoint camera are grouped
//! into tracks (same place moving on, or a similar string), and a track that has not been seen for
//! a while becomes one passage with the consensus plate — a per-position vote weighted by
//! confidence among the reads of the winning length — and the best read's pictures.

use super::imageops::Rgb;
use super::plates::PlateRead;
use crate::plate::{self, PlateColor};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackParams {
    /// A track not seen for this long is finished.
    pub gap_ms: i64,
    /// Fewer reads than this are noise, not a vehicle.
    pub min_reads: usize,
}

impl Default for TrackParams {
    fn default() -> Self {
        Self { gap_ms: 1500, min_reads: 2 }
    }
}

/// A finished vehicle.
#[derive(Debug, Clone)]
pub struct VehiclePassage {
    pub track_id: u64,
    /// Time of the best read.
    pub at_ms: i64,
    pub plate: String,
    pub color: PlateColor,
    /// Mean confidence of the reads that agree with the consensus, times the share that agree.
    pub confidence: f32,
    pub char_confidences: Vec<f32>,
    pub frames: usize,
    /// `approaching` (towards the camera) or `receding`, from the plate's growth in the picture.
    pub direction: Option<&'static str>,
    pub plate_image: Option<Rgb>,
    pub context_image: Option<Rgb>,
}

struct Track {
    id: u64,
    reads: Vec<(i64, PlateRead)>,
    last_ms: i64,
    best: usize,
    plate_image: Option<Rgb>,
    context_image: Option<Rgb>,
}

impl Track {
    fn last(&self) -> &PlateRead {
        &self.reads.last().expect("a track has a read").1
    }
}

pub struct PlateTracker {
    params: TrackParams,
    tracks: Vec<Track>,
    next_id: u64,
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + usize::from(a[i - 1] != b[j - 1]));
        }
        prev = cur;
    }
    prev[b.len()]
}

impl PlateTracker {
    pub fn new(params: TrackParams) -> Self {
        Self { params, tracks: Vec::new(), next_id: 1 }
    }

    pub fn open_tracks(&self) -> usize {
        self.tracks.len()
    }

    /// Adds a frame's reads; `pictures` makes (plate crop, context) for a read when it becomes
    /// its track's best. Returns the passages of tracks that ended before `at_ms`.
    pub fn push(
        &mut self,
        at_ms: i64,
        reads: Vec<PlateRead>,
        mut pictures: impl FnMut(&PlateRead) -> (Option<Rgb>, Option<Rgb>),
    ) -> Vec<VehiclePassage> {
        let done = self.finish_before(at_ms - self.params.gap_ms);
        for r in reads {
            let (x, y, w, _) = r.bbox();
            let (cx, cy) = (x + w / 2.0, y);
            // The same vehicle a moment later: close to where its plate was. (A following vehicle
            // enters far from where the previous one left, and its plate differs.)
            let near = |t: &Track| {
                let (lx, ly, lw, _) = t.last().bbox();
                let (lcx, lcy) = (lx + lw / 2.0, ly);
                at_ms - t.last_ms <= 500 && ((cx - lcx).powi(2) + (cy - lcy).powi(2)).sqrt() < lw.max(w)
            };
            let idx = self
                .tracks
                .iter()
                .position(|t| edit_distance(&t.reads[t.best].1.plate, &r.plate) <= 2)
                .or_else(|| self.tracks.iter().position(near));
            let t = match idx {
                Some(i) => &mut self.tracks[i],
                None => {
                    self.tracks.push(Track {
                        id: self.next_id,
                        reads: Vec::new(),
                        last_ms: at_ms,
                        best: 0,
                        plate_image: None,
                        context_image: None,
                    });
                    self.next_id += 1;
                    self.tracks.last_mut().expect("just pushed")
                }
            };
            let better = t.reads.get(t.best).is_none_or(|(_, b)| r.confidence > b.confidence);
            if better {
                let (p, c) = pictures(&r);
                t.plate_image = p;
                t.context_image = c;
                t.best = t.reads.len();
            }
            t.reads.push((at_ms, r));
            t.last_ms = at_ms;
        }
        done
    }

    /// Finishes every track last seen before `before_ms` (all of them with `i64::MAX`).
    /// Vehicles tracked now that are passages once they leave (enough reads).
    pub fn vehicles(&self) -> usize {
        self.tracks.iter().filter(|t| t.reads.len() >= self.params.min_reads).count()
    }

    pub fn finish_before(&mut self, before_ms: i64) -> Vec<VehiclePassage> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.tracks.len() {
            if self.tracks[i].last_ms < before_ms {
                let t = self.tracks.swap_remove(i);
                if let Some(p) = self.consensus(t) {
                    out.push(p);
                }
            } else {
                i += 1;
            }
        }
        out.sort_by_key(|p| p.at_ms);
        out
    }

    fn consensus(&self, t: Track) -> Option<VehiclePassage> {
        if t.reads.len() < self.params.min_reads {
            return None;
        }
        // The winning length: most confidence mass.
        let mut by_len: std::collections::HashMap<usize, f32> = std::collections::HashMap::new();
        for (_, r) in &t.reads {
            *by_len.entry(r.plate.chars().count()).or_default() += r.confidence.max(1e-3);
        }
        let len = by_len.into_iter().max_by(|a, b| a.1.total_cmp(&b.1))?.0;
        let same: Vec<&PlateRead> = t.reads.iter().map(|(_, r)| r).filter(|r| r.plate.chars().count() == len).collect();
        let mut plate = String::new();
        let mut confs = Vec::new();
        for pos in 0..len {
            let mut votes: std::collections::HashMap<char, (f32, f32)> = std::collections::HashMap::new();
            for r in &same {
                let c = r.plate.chars().nth(pos)?;
                let cc = r.char_confidences.get(pos).copied().unwrap_or(r.confidence);
                let e = votes.entry(c).or_default();
                e.0 += cc.max(1e-3);
                e.1 = e.1.max(cc);
            }
            let (c, (_, best)) = votes.into_iter().max_by(|a, b| a.1.0.total_cmp(&b.1.0))?;
            plate.push(c);
            confs.push(best);
        }
        if plate::check(&plate).is_err() {
            // Fall back on the best single grammatical read.
            plate = t.reads[t.best].1.plate.clone();
        }
        let agreeing: Vec<&PlateRead> = t.reads.iter().map(|(_, r)| r).filter(|r| r.plate == plate).collect();
        let share = agreeing.len() as f32 / t.reads.len() as f32;
        let mean = agreeing.iter().map(|r| r.confidence).sum::<f32>() / agreeing.len().max(1) as f32;
        let mut colors: std::collections::HashMap<PlateColor, usize> = std::collections::HashMap::new();
        for (_, r) in &t.reads {
            *colors.entry(r.color).or_default() += 1;
        }
        let color = colors.into_iter().max_by_key(|c| c.1).map(|c| c.0).unwrap_or(PlateColor::Blue);
        let (first, last) = (&t.reads[0].1, &t.reads[t.reads.len() - 1].1);
        let direction = if t.reads.len() >= 2 {
            let (_, fy, fw, _) = first.bbox();
            let (_, ly, lw, _) = last.bbox();
            if lw > fw * 1.05 && ly > fy {
                Some("approaching")
            } else if lw < fw * 0.95 && ly < fy {
                Some("receding")
            } else {
                None
            }
        } else {
            None
        };
        Some(VehiclePassage {
            track_id: t.id,
            at_ms: t.reads[t.best].0,
            plate,
            color,
            confidence: mean * share,
            char_confidences: confs,
            frames: t.reads.len(),
            direction,
            plate_image: t.plate_image,
            context_image: t.context_image,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(plate: &str, x: f32, y: f32, w: f32, conf: f32) -> PlateRead {
        PlateRead {
            plate: plate.into(),
            color: PlateColor::Blue,
            confidence: conf,
            char_confidences: vec![conf; plate.chars().count()],
            corners: [(x, y), (x + w, y), (x + w, y + w / 3.0), (x, y + w / 3.0)],
            det_score: 0.9,
        }
    }

    #[test]
    fn one_passage_per_vehicle_with_the_consensus() {
        let mut t = PlateTracker::new(TrackParams::default());
        let none = |_: &PlateRead| (None, None);
        let mut out = Vec::new();
        // Vehicle 1 approaching: one misread among good reads.
        for (i, p) in ["豫A12345", "豫A12345", "豫A12845", "豫A12345"].iter().enumerate() {
            out.extend(t.push(
                i as i64 * 125,
                vec![read(p, 500.0, 200.0 + i as f32 * 30.0, 150.0 + i as f32 * 20.0, 0.9)],
                none,
            ));
        }
        // A single junk read far away: not a vehicle.
        out.extend(t.push(600, vec![read("京B00000", 10.0, 10.0, 60.0, 0.5)], none));
        // A following vehicle one second later, entering where vehicle 1 was first seen.
        for i in 0..3 {
            out.extend(t.push(
                1375 + i * 125,
                vec![read("京C55555", 500.0, 200.0 + i as f32 * 30.0, 150.0, 0.9)],
                none,
            ));
        }
        // Vehicle 2 after a gap.
        for i in 0..3 {
            out.extend(t.push(
                4000 + i * 125,
                vec![read("粤B7777D", 480.0, 220.0 + i as f32 * 25.0, 160.0 + i as f32 * 15.0, 0.8)],
                none,
            ));
        }
        out.extend(t.finish_before(i64::MAX));
        let plates: Vec<_> = out.iter().map(|p| p.plate.as_str()).collect();
        assert_eq!(plates, ["豫A12345", "京C55555", "粤B7777D"]);
        assert_eq!(out[0].frames, 4);
        assert_eq!(out[0].direction, Some("approaching"));
        assert!((out[0].confidence - 0.9 * 0.75).abs() < 1e-4);
    }
}
