//! `tianwang eval plates DIR`: accuracy of the plate reader on a labelled set of pictures
//! (`labels.csv`: `file,plate,color,split,…`, as `tianwang sim plates` writes it).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::imageops::Rgb;
use super::plates::{PlateRead, PlateReader};
use crate::plate;

#[derive(Debug, Clone, Default, Serialize)]
pub struct SplitScore {
    pub images: usize,
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
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct EvalReport {
    pub splits: BTreeMap<String, SplitScore>,
    /// Pictures without a plate, and the reads made on them.
    pub plate_free_images: usize,
    pub false_reads: usize,
    /// Reads that break the plate grammar (must be 0).
    pub ungrammatical_reads: usize,
    pub seconds: f64,
    pub images_per_second: f64,
    /// A few misreads: (file, truth, read).
    pub misreads: Vec<(String, String, String)>,
}

impl EvalReport {
    pub fn false_reads_per_1000(&self) -> f64 {
        self.false_reads as f64 * 1000.0 / self.plate_free_images.max(1) as f64
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        for (name, sc) in &self.splits {
            s += &format!(
                "{name:>6}: {} images, exact {:.2}% ({}), characters {:.2}%, colour {:.2}%, missed {}\n",
                sc.images,
                100.0 * sc.exact_rate(),
                sc.exact,
                100.0 * sc.char_rate(),
                100.0 * sc.colour_right as f64 / sc.images.max(1) as f64,
                sc.missed
            );
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
        s
    }
}

/// Each picture's reads, by its index in labels.csv.
type ReadsByIndex = Vec<(usize, Vec<PlateRead>)>;

/// Reads every picture listed in `dir/labels.csv` and scores the reads; with several readers the
/// pictures are shared among them, one thread each (throughput is then for that many cores).
pub fn eval_plates(dir: &Path, readers: &mut [PlateReader], limit: Option<usize>) -> Result<EvalReport, String> {
    let labels = dir.join("labels.csv");
    let mut rdr = csv::Reader::from_path(&labels).map_err(|e| format!("{}: {e}", labels.display()))?;
    let headers = rdr.headers().map_err(|e| format!("{}: {e}", labels.display()))?.clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| format!("{}: no column {name:?}", labels.display()))
    };
    let (c_file, c_plate, c_color, c_split) = (col("file")?, col("plate")?, col("color")?, col("split")?);
    // (file, plate, colour, split)
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    for (line, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| format!("{} line {}: {e}", labels.display(), line + 2))?;
        if limit.is_some_and(|l| rows.len() >= l) {
            break;
        }
        let get = |c: usize| rec.get(c).unwrap_or_default().to_string();
        rows.push((get(c_file), get(c_plate), get(c_color), get(c_split)));
    }
    if readers.is_empty() {
        return Err("no plate reader".into());
    }
    let n = readers.len();
    let start = Instant::now();
    let results: Vec<Result<ReadsByIndex, String>> = std::thread::scope(|sc| {
        let handles: Vec<_> = readers
            .iter_mut()
            .enumerate()
            .map(|(k, reader)| {
                let rows = &rows;
                sc.spawn(move || {
                    let mut out = Vec::new();
                    for (i, row) in rows.iter().enumerate().filter(|(i, _)| i % n == k) {
                        let path = dir.join(&row.0);
                        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                        let img = Rgb::from_jpeg(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                        out.push((i, reader.read(&img).map_err(|e| e.to_string())?));
                    }
                    Ok(out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a reader thread failed".into()))).collect()
    });
    let mut all: Vec<(usize, Vec<PlateRead>)> = Vec::new();
    for r in results {
        all.extend(r?);
    }
    all.sort_by_key(|x| x.0);
    let mut rep = EvalReport::default();
    for (i, reads) in all {
        let (file, truth, color, split) = &rows[i];
        rep.ungrammatical_reads += reads.iter().filter(|r| plate::check(&r.plate).is_err()).count();
        if truth.is_empty() {
            rep.plate_free_images += 1;
            rep.false_reads += reads.len();
            continue;
        }
        let sc = rep.splits.entry(split.clone()).or_default();
        sc.images += 1;
        let best = reads.iter().max_by(|a, b| a.confidence.total_cmp(&b.confidence));
        let tc: Vec<char> = truth.chars().collect();
        sc.chars += tc.len();
        match best {
            None => {
                sc.missed += 1;
                if rep.misreads.len() < 50 {
                    rep.misreads.push((file.clone(), truth.clone(), String::new()));
                }
            }
            Some(r) => {
                if &r.plate == truth {
                    sc.exact += 1;
                } else if rep.misreads.len() < 50 {
                    rep.misreads.push((file.clone(), truth.clone(), r.plate.clone()));
                }
                let rc: Vec<char> = r.plate.chars().collect();
                sc.chars_right += tc.iter().zip(&rc).filter(|(a, b)| a == b).count();
                if color == r.color.as_str() {
                    sc.colour_right += 1;
                }
            }
        }
    }
    rep.seconds = start.elapsed().as_secs_f64();
    rep.images_per_second = rows.len() as f64 / rep.seconds.max(1e-9);
    Ok(rep)
}
