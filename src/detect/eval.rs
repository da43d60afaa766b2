//! `tianwang eval plates DIR`: accuracy of the plate reader on a labelled set of pictures
//! (`labels.csv`: `file,plate,color,split,x1,y1,…,y4` as `tianwang sim-plates` writes it, with the
//! optional columns `class,width_px,condition,renderer` that `scripts/plates2/render.py` adds).
//!
//! Detection is scored apart from reading: a plate counts as found when a detection's corners
//! cover the labelled plate (intersection over union of their bounding boxes ≥ 0.4), whether or not
//! a reading followed. Every figure is given per split, per plate class (the label's `class`, else
//! its colour), per colour class, per size band (the plate's top edge in pixels) and per condition.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::imageops::Rgb;
use super::plates::{PlateRead, PlateReader, StageTimes, Unread, iou as box_iou};
use crate::plate;

/// A detection covers the labelled plate when their boxes overlap at least this much.
pub const DETECTED_IOU: f32 = 0.4;

#[derive(Debug, Clone, Default, Serialize)]
pub struct SplitScore {
    pub images: usize,
    /// Pictures whose plate a detection covered (read or not).
    pub detected: usize,
    /// Pictures whose plate was read exactly (the best read in the picture).
    pub exact: usize,
    /// Pictures where no plate was read at all.
    pub missed: usize,
    pub chars: usize,
    pub chars_right: usize,
    pub colour_right: usize,
}

impl SplitScore {
    pub fn exact_rate(&self) -> f64 {
        self.exact as f64 / self.images.max(1) as f64
    }
    pub fn char_rate(&self) -> f64 {
        self.chars_right as f64 / self.chars.max(1) as f64
    }
    pub fn colour_rate(&self) -> f64 {
        self.colour_right as f64 / self.images.max(1) as f64
    }
    pub fn detection_rate(&self) -> f64 {
        self.detected as f64 / self.images.max(1) as f64
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct EvalReport {
    /// Every picture with a plate.
    pub all: SplitScore,
    pub splits: BTreeMap<String, SplitScore>,
    /// By the label's `class` column (blue, yellow_double, green_small, …), else by colour.
    pub classes: BTreeMap<String, SplitScore>,
    /// By the labelled colour class.
    pub colours: BTreeMap<String, SplitScore>,
    /// By the plate's top edge in pixels ([`size_band`]).
    pub sizes: BTreeMap<String, SplitScore>,
    /// The two ranges the acceptance figures are stated for: `80-120` and `100-240`.
    pub ranges: BTreeMap<String, SplitScore>,
    /// By the label's `condition` column (clean, blur, dim, night_ir, h264, …) when present.
    pub conditions: BTreeMap<String, SplitScore>,
    /// Pictures without a plate, and the reads made on them.
    pub plate_free_images: usize,
    pub false_reads: usize,
    /// Reads that break the plate grammar (must be 0).
    pub ungrammatical_reads: usize,
    pub seconds: f64,
    pub images_per_second: f64,
    /// The readers' own time (decoding the JPEG files excluded), by stage.
    pub times: StageTimes,
    /// Pictures whose plate a detection covered but no read came from it, by why
    /// ([`Unread::kind`]): too small, no grammatical reading, a character under the floor.
    pub unread: BTreeMap<String, usize>,
    /// Pictures whose plate no detection covered, by why: no candidate on the scaled-down picture
    /// there, a candidate beyond those checked, or one checked and not confirmed.
    pub unfound: BTreeMap<String, usize>,
    /// A few misreads (the first 1,000).
    pub misreads: Vec<Misread>,
    /// Every read with its scores, for choosing thresholds (JSON only).
    pub reads: Vec<ReadLog>,
}

/// A picture whose plate was not read exactly, or a read on a plate-free picture (`truth` empty).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Misread {
    pub file: String,
    pub truth: String,
    /// The best read in the picture; empty when there was none.
    pub read: String,
    /// When the plate was found but not read, why ([`Unread`]'s words); when it was not found, why
    /// not ([`unfound_why`]).
    pub why: String,
}

/// One read as scored: the picture, its plate (empty when it has none), the read, the read's
/// confidence, its lowest character confidence and the detector's score.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReadLog {
    pub file: String,
    pub truth: String,
    pub read: String,
    pub confidence: f32,
    pub min_char: f32,
    pub det_score: f32,
    pub corners: [(f32, f32); 4],
}

/// The size band of a plate whose top edge is `w` pixels long.
pub fn size_band(w: f32) -> &'static str {
    match w {
        w if w < 80.0 => "<80",
        w if w < 100.0 => "80-100",
        w if w < 120.0 => "100-120",
        w if w < 160.0 => "120-160",
        w if w < 240.0 => "160-240",
        _ => ">=240",
    }
}

fn table(s: &mut String, title: &str, rows: &BTreeMap<String, SplitScore>) {
    if rows.is_empty() {
        return;
    }
    *s += &format!(
        "{title:<14} {:>6} {:>9} {:>8} {:>8} {:>8} {:>7}\n",
        "images", "detected", "exact", "chars", "colour", "no read"
    );
    for (name, sc) in rows {
        *s += &format!(
            "  {name:<12} {:>6} {:>8.1}% {:>7.1}% {:>7.1}% {:>7.1}% {:>7}\n",
            sc.images,
            100.0 * sc.detection_rate(),
            100.0 * sc.exact_rate(),
            100.0 * sc.char_rate(),
            100.0 * sc.colour_rate(),
            sc.missed
        );
    }
}

impl EvalReport {
    pub fn false_reads_per_1000(&self) -> f64 {
        self.false_reads as f64 * 1000.0 / self.plate_free_images.max(1) as f64
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        let all: BTreeMap<String, SplitScore> = [("all".to_string(), self.all.clone())].into();
        table(&mut s, "overall", &all);
        table(&mut s, "split", &self.splits);
        // Without a class column the classes are the colours: one table is enough.
        if !self.classes.keys().eq(self.colours.keys()) {
            table(&mut s, "class", &self.classes);
        }
        table(&mut s, "colour", &self.colours);
        table(&mut s, "size (px)", &self.sizes);
        table(&mut s, "range (px)", &self.ranges);
        if !self.conditions.keys().eq(self.splits.keys()) {
            table(&mut s, "condition", &self.conditions);
        }
        s += &format!(
            "plate-free: {} images, {} false reads ({:.2} per 1,000)\nungrammatical reads: {}\nthroughput: {:.2} images/s ({:.1} s)\n",
            self.plate_free_images,
            self.false_reads,
            self.false_reads_per_1000(),
            self.ungrammatical_reads,
            self.images_per_second,
            self.seconds
        );
        for (title, why) in [("found but not read", &self.unread), ("not found", &self.unfound)] {
            if !why.is_empty() {
                let n: usize = why.values().sum();
                let kinds: Vec<String> = why.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                s += &format!("{title}: {n} ({})\n", kinds.join(", "));
            }
        }
        let reading = self.times.detect_s + self.times.confirm_s + self.times.read_s;
        if self.times.pictures > 0 && reading > 0.0 {
            s += &format!(
                "reader alone (JPEG decoding excluded): {:.2} images/s per reader thread; {}\n",
                self.times.pictures as f64 / reading,
                self.times.summary()
            );
        }
        s
    }
}

/// One labelled picture.
struct Row {
    file: String,
    plate: String,
    color: String,
    split: String,
    corners: Option<[(f32, f32); 4]>,
    class: String,
    width_px: Option<f32>,
    condition: String,
}

/// What the reader made of one picture: the corners of every detection, the reads, the
/// detections that gave none with why, and why a plate that was not found was missed.
type Seen = (Vec<[(f32, f32); 4]>, Vec<PlateRead>, Vec<([(f32, f32); 4], Unread)>, Vec<Candidate>);

/// A candidate of the detector's pass on the scaled-down picture: its box, score, and whether it
/// was among the `max_candidates` checked at full resolution.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    bbox: [f32; 4],
    score: f32,
    checked: bool,
}

/// Why a labelled plate that no detection covers was missed: no candidate on the scaled-down
/// picture has its centre inside the plate; the best that has was beyond the candidates checked;
/// or it was checked at full resolution and not confirmed there.
fn unfound_why(truth: &[f32; 4], cands: &[Candidate]) -> (&'static str, String) {
    let inside = |c: &Candidate| {
        let (x, y) = ((c.bbox[0] + c.bbox[2]) / 2.0, (c.bbox[1] + c.bbox[3]) / 2.0);
        (truth[0]..=truth[2]).contains(&x) && (truth[1]..=truth[3]).contains(&y)
    };
    match cands.iter().filter(|c| inside(c)).max_by(|a, b| a.score.total_cmp(&b.score)) {
        None => ("no candidate", "not found: no candidate there".into()),
        Some(c) if !c.checked => (
            "a candidate not checked",
            format!("not found: a candidate at {:.4}, beyond those checked at full resolution", c.score),
        ),
        Some(c) => ("a candidate not confirmed", format!("not found: a candidate at {:.4}, not confirmed", c.score)),
    }
}

fn quad_box(c: &[(f32, f32); 4]) -> [f32; 4] {
    let xs = c.iter().map(|p| p.0);
    let ys = c.iter().map(|p| p.1);
    [
        xs.clone().fold(f32::MAX, f32::min),
        ys.clone().fold(f32::MAX, f32::min),
        xs.fold(f32::MIN, f32::max),
        ys.fold(f32::MIN, f32::max),
    ]
}

fn read_labels(dir: &Path, limit: Option<usize>) -> Result<Vec<Row>, String> {
    let labels = dir.join("labels.csv");
    let mut rdr = csv::Reader::from_path(&labels).map_err(|e| format!("{}: {e}", labels.display()))?;
    let headers = rdr.headers().map_err(|e| format!("{}: {e}", labels.display()))?.clone();
    let opt = |name: &str| headers.iter().position(|h| h == name);
    let col = |name: &str| opt(name).ok_or_else(|| format!("{}: no column {name:?}", labels.display()));
    let (c_file, c_plate, c_color, c_split) = (col("file")?, col("plate")?, col("color")?, col("split")?);
    let c_corners: Option<Vec<usize>> =
        ["x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4"].iter().map(|n| opt(n)).collect();
    let (c_class, c_width, c_condition) = (opt("class"), opt("width_px"), opt("condition"));
    let mut rows = Vec::new();
    for (line, rec) in rdr.records().enumerate() {
        let at = |e: &dyn std::fmt::Display| format!("{} line {}: {e}", labels.display(), line + 2);
        let rec = rec.map_err(|e| at(&e))?;
        if limit.is_some_and(|l| rows.len() >= l) {
            break;
        }
        let get = |c: usize| rec.get(c).unwrap_or_default().trim().to_string();
        let plate = get(c_plate);
        let corners = match (&c_corners, plate.is_empty()) {
            (Some(cs), false) => {
                let v: Vec<f32> = cs
                    .iter()
                    .map(|&c| get(c).parse::<f32>().map_err(|e| at(&format!("corner {:?}: {e}", get(c)))))
                    .collect::<Result<_, _>>()?;
                Some([(v[0], v[1]), (v[2], v[3]), (v[4], v[5]), (v[6], v[7])])
            }
            _ => None,
        };
        let width_px = match c_width.map(get).filter(|s| !s.is_empty()) {
            Some(s) => Some(s.parse::<f32>().map_err(|e| at(&format!("width_px {s:?}: {e}")))?),
            None => corners.map(|c| ((c[1].0 - c[0].0).powi(2) + (c[1].1 - c[0].1).powi(2)).sqrt()),
        };
        let color = get(c_color);
        rows.push(Row {
            file: get(c_file),
            class: c_class.map(get).filter(|s| !s.is_empty()).unwrap_or_else(|| color.clone()),
            condition: c_condition.map(get).unwrap_or_default(),
            plate,
            color,
            split: get(c_split),
            corners,
            width_px,
        });
    }
    Ok(rows)
}

/// Reads every picture listed in `dir/labels.csv` and scores the reads; with several readers the
/// pictures are shared among them, one thread each (throughput is then for that many cores).
pub fn eval_plates(dir: &Path, readers: &mut [PlateReader], limit: Option<usize>) -> Result<EvalReport, String> {
    let rows = read_labels(dir, limit)?;
    if readers.is_empty() {
        return Err("no plate reader".into());
    }
    let n = readers.len();
    for r in readers.iter_mut() {
        r.times = StageTimes::default();
    }
    let start = Instant::now();
    let results: Vec<Result<Vec<(usize, Seen)>, String>> = std::thread::scope(|sc| {
        let handles: Vec<_> = readers
            .iter_mut()
            .enumerate()
            .map(|(k, reader)| {
                let rows = &rows;
                sc.spawn(move || {
                    let mut out = Vec::new();
                    for (i, row) in rows.iter().enumerate().filter(|(i, _)| i % n == k) {
                        let path = dir.join(&row.file);
                        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                        let img = Rgb::from_jpeg(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                        let dets = reader.detect_all(&img).map_err(|e| e.to_string())?;
                        let max = reader.params.max_candidates;
                        let cands: Vec<Candidate> = reader
                            .candidates
                            .iter()
                            .enumerate()
                            .map(|(k, c)| Candidate { bbox: c.bbox, score: c.score, checked: k < max })
                            .collect();
                        let (mut reads, mut unread) = (Vec::new(), Vec::new());
                        for d in &dets {
                            match reader.read_detection_why(&img, d).map_err(|e| e.to_string())? {
                                Ok(r) => reads.push(r),
                                Err(u) => unread.push((d.corners, u)),
                            }
                        }
                        out.push((i, (dets.iter().map(|d| d.corners).collect(), reads, unread, cands)));
                    }
                    Ok(out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a reader thread failed".into()))).collect()
    });
    let mut all: Vec<(usize, Seen)> = Vec::new();
    for r in results {
        all.extend(r?);
    }
    all.sort_by_key(|x| x.0);
    let mut rep = EvalReport::default();
    for (i, (dets, reads, unread, cands)) in all {
        let row = &rows[i];
        rep.ungrammatical_reads += reads.iter().filter(|r| plate::check(&r.plate).is_err()).count();
        for r in &reads {
            rep.reads.push(ReadLog {
                file: row.file.clone(),
                truth: row.plate.clone(),
                read: r.plate.clone(),
                confidence: r.confidence,
                min_char: r.char_confidences.iter().copied().fold(1.0, f32::min),
                det_score: r.det_score,
                corners: r.corners,
            });
        }
        if row.plate.is_empty() {
            rep.plate_free_images += 1;
            rep.false_reads += reads.len();
            for r in &reads {
                if rep.misreads.len() < 1000 {
                    rep.misreads.push(Misread { file: row.file.clone(), read: r.plate.clone(), ..Default::default() });
                }
            }
            continue;
        }
        let detected = row.corners.is_some_and(|truth| {
            let t = quad_box(&truth);
            dets.iter().any(|d| box_iou(&quad_box(d), &t) >= DETECTED_IOU)
        });
        let best = reads.iter().max_by(|a, b| a.confidence.total_cmp(&b.confidence));
        // Found but not read: why, from the unread detection that covers the plate best.
        let why = match (best, row.corners) {
            (None, Some(truth)) if detected => {
                let t = quad_box(&truth);
                unread
                    .iter()
                    .map(|(c, u)| (box_iou(&quad_box(c), &t), u))
                    .filter(|(o, _)| *o >= DETECTED_IOU)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, u)| u)
            }
            _ => None,
        };
        if let Some(u) = why {
            *rep.unread.entry(u.kind().to_string()).or_default() += 1;
        }
        let unfound = match row.corners {
            Some(truth) if !detected => {
                let (kind, words) = unfound_why(&quad_box(&truth), &cands);
                *rep.unfound.entry(kind.to_string()).or_default() += 1;
                Some(words)
            }
            _ => None,
        };
        let tc: Vec<char> = row.plate.chars().collect();
        let mut one = SplitScore { images: 1, detected: detected as usize, chars: tc.len(), ..Default::default() };
        match best {
            None => one.missed = 1,
            Some(r) => {
                one.exact = (r.plate == row.plate) as usize;
                let rc: Vec<char> = r.plate.chars().collect();
                one.chars_right = tc.iter().zip(&rc).filter(|(a, b)| a == b).count();
                one.colour_right = (row.color == r.color.as_str()) as usize;
            }
        }
        if one.exact == 0 && rep.misreads.len() < 1000 {
            rep.misreads.push(Misread {
                file: row.file.clone(),
                truth: row.plate.clone(),
                read: best.map(|r| r.plate.clone()).unwrap_or_default(),
                why: why.map(|u| format!("found; {u}")).or(unfound).unwrap_or_default(),
            });
        }
        let mut groups: Vec<&mut BTreeMap<String, SplitScore>> = Vec::new();
        let mut keys: Vec<String> = Vec::new();
        groups.push(&mut rep.splits);
        keys.push(row.split.clone());
        groups.push(&mut rep.classes);
        keys.push(row.class.clone());
        groups.push(&mut rep.colours);
        keys.push(row.color.clone());
        if !row.condition.is_empty() {
            groups.push(&mut rep.conditions);
            keys.push(row.condition.clone());
        }
        if let Some(w) = row.width_px {
            groups.push(&mut rep.sizes);
            keys.push(size_band(w).to_string());
        }
        for (g, k) in groups.into_iter().zip(keys) {
            add(g.entry(k).or_default(), &one);
        }
        if let Some(w) = row.width_px {
            for (name, lo, hi) in [("80-120", 80.0, 120.0), ("100-240", 100.0, 240.0)] {
                if (lo..hi).contains(&w) {
                    add(rep.ranges.entry(name.to_string()).or_default(), &one);
                }
            }
        }
        add(&mut rep.all, &one);
    }
    for r in readers.iter() {
        rep.times.add(&r.times);
    }
    rep.seconds = start.elapsed().as_secs_f64();
    rep.images_per_second = rows.len() as f64 / rep.seconds.max(1e-9);
    Ok(rep)
}

fn add(to: &mut SplitScore, one: &SplitScore) {
    to.images += one.images;
    to.detected += one.detected;
    to.exact += one.exact;
    to.missed += one.missed;
    to.chars += one.chars;
    to.chars_right += one.chars_right;
    to.colour_right += one.colour_right;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_bands_cover_every_width() {
        assert_eq!(size_band(10.0), "<80");
        assert_eq!(size_band(80.0), "80-100");
        assert_eq!(size_band(119.9), "100-120");
        assert_eq!(size_band(120.0), "120-160");
        assert_eq!(size_band(239.0), "160-240");
        assert_eq!(size_band(500.0), ">=240");
    }

    #[test]
    fn iou_of_boxes() {
        let a = [0.0, 0.0, 10.0, 10.0];
        assert!((box_iou(&a, &a) - 1.0).abs() < 1e-6);
        assert_eq!(box_iou(&a, &[20.0, 20.0, 30.0, 30.0]), 0.0);
        assert!((box_iou(&a, &[5.0, 0.0, 15.0, 10.0]) - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn a_plate_not_found_says_why() {
        let truth = [100.0, 100.0, 200.0, 130.0];
        let c =
            |x: f32, score: f32, checked: bool| Candidate { bbox: [x - 20.0, 105.0, x + 20.0, 125.0], score, checked };
        assert_eq!(unfound_why(&truth, &[]).0, "no candidate");
        assert_eq!(unfound_why(&truth, &[c(400.0, 0.9, true)]).0, "no candidate");
        let (kind, words) = unfound_why(&truth, &[c(400.0, 0.9, true), c(150.0, 0.004, false)]);
        assert_eq!(kind, "a candidate not checked");
        assert!(words.contains("0.0040"), "{words}");
        // The best candidate on the plate decides.
        assert_eq!(unfound_why(&truth, &[c(150.0, 0.05, true), c(140.0, 0.004, false)]).0, "a candidate not confirmed");
    }

    #[test]
    fn labels_with_and_without_the_extra_columns() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("labels.csv"),
            "file,plate,color,split,x1,y1,x2,y2,x3,y3,x4,y4,class,width_px,condition,renderer\n\
             a.jpg,豫A12345,yellow,dim,0,0,100,0,100,30,0,30,yellow_double,101,dim,r2\n\
             b.jpg,,,none,,,,,,,,,,,clean,r2\n",
        )
        .unwrap();
        let rows = read_labels(dir.path(), None).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].class.as_str(), rows[0].width_px, rows[0].condition.as_str()),
            ("yellow_double", Some(101.0), "dim")
        );
        assert!(rows[1].corners.is_none());
        std::fs::write(
            dir.path().join("labels.csv"),
            "file,plate,color,split,x1,y1,x2,y2,x3,y3,x4,y4\na.jpg,豫A12345,blue,clean,0,0,30,40,30,60,0,30\n",
        )
        .unwrap();
        let rows = read_labels(dir.path(), None).unwrap();
        assert_eq!((rows[0].class.as_str(), rows[0].width_px), ("blue", Some(50.0)));
        std::fs::write(
            dir.path().join("labels.csv"),
            "file,plate,color,split,x1,y1,x2,y2,x3,y3,x4,y4\na.jpg,豫A12345,blue,clean,x,0,30,40,30,60,0,30\n",
        )
        .unwrap();
        let e = read_labels(dir.path(), None).err().unwrap();
        assert!(e.contains("line 2") && e.contains("corner"), "{e}");
    }
}
