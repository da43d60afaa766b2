//! The labelled data set for the plate reader's tests and evaluation: clean, hard and plate-free
//! JPEGs and `labels.csv`, rendered on several threads and still the same bytes for a seed (each
//! picture draws from its own random stream).

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::scenes::{plate_free_frame, sample};

/// What [`write_dataset`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetSummary {
    pub dir: PathBuf,
    pub labels: PathBuf,
    pub clean: usize,
    pub hard: usize,
    pub plate_free: usize,
}

/// The random stream of file `i` of a data set: each file depends only on the seed and its index.
fn file_rng(seed: u64, stream: u64, i: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Writes `count` labelled plate pictures (alternately clean and hard: `clean/000001.jpg`,
/// `hard/000002.jpg`, …) and `plate_free` vehicle frames without a plate
/// (`plate_free/000001.jpg`, …), JPEG quality 90, and `labels.csv` with
/// `file,plate,color,split,x1,y1,x2,y2,x3,y3,x4,y4` (corners TL, TR, BR, BL; plate-free rows have
/// empty plate, colour and corners and split `none`). The same seed writes the same files.
pub fn write_dataset(
    dir: &Path,
    count: usize,
    seed: u64,
    w: u32,
    h: u32,
    plate_free: usize,
) -> Result<DatasetSummary, String> {
    for sub in ["clean", "hard", "plate_free"] {
        let d = dir.join(sub);
        fs::create_dir_all(&d).map_err(|e| format!("creating {}: {e}", d.display()))?;
    }
    let labels = dir.join("labels.csv");
    let file = fs::File::create(&labels).map_err(|e| format!("creating {}: {e}", labels.display()))?;
    let mut out = BufWriter::new(file);
    let werr = |e: std::io::Error| format!("writing {}: {e}", labels.display());
    writeln!(out, "file,plate,color,split,x1,y1,x2,y2,x3,y3,x4,y4").map_err(werr)?;
    let total = count + plate_free;
    let (mut clean, mut hard) = (0, 0);
    let progress = |done: usize| {
        if done.is_multiple_of(200) || done == total {
            eprintln!("plates: {done}/{total} files in {}", dir.display());
        }
    };
    // Files are independent (each has its own random stream): render them on every core, write
    // the labels in order.
    let one = |i: usize| -> Result<(String, bool), String> {
        let is_hard = i.is_multiple_of(2);
        let mut rng = file_rng(seed, 1, i as u64);
        let s = sample(&mut rng, w, h, is_hard)?;
        let split = if is_hard { "hard" } else { "clean" };
        let name = format!("{split}/{i:06}.jpg");
        s.image.save_jpeg(&dir.join(&name), 90)?;
        let c = s.corners;
        Ok((
            format!(
                "{name},{},{},{split},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2}",
                s.plate, s.color, c[0].0, c[0].1, c[1].0, c[1].1, c[2].0, c[2].1, c[3].0, c[3].1
            ),
            is_hard,
        ))
    };
    let free = |i: usize| -> Result<(String, bool), String> {
        let mut rng = file_rng(seed, 2, i as u64);
        let img = plate_free_frame(&mut rng, w, h, i.is_multiple_of(2))?;
        let name = format!("plate_free/{i:06}.jpg");
        img.save_jpeg(&dir.join(&name), 90)?;
        Ok((format!("{name},,,none,,,,,,,,"), false))
    };
    let jobs: Vec<(bool, usize)> = (1..=count).map(|i| (true, i)).chain((1..=plate_free).map(|i| (false, i))).collect();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    let next = std::sync::atomic::AtomicUsize::new(0);
    type Slot = std::sync::Mutex<Option<Result<(String, bool), String>>>;
    let results: Vec<Slot> = jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&(plate, i)) = jobs.get(k) else { break };
                    let r = if plate { one(i) } else { free(i) };
                    *results[k].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                    progress(k + 1);
                }
            });
        }
    });
    for r in results {
        let (line, is_hard) =
            r.into_inner().unwrap_or_else(|e| e.into_inner()).unwrap_or_else(|| Err("not rendered".into()))?;
        writeln!(out, "{line}").map_err(werr)?;
        if line.starts_with("plate_free/") {
            continue;
        }
        if is_hard {
            hard += 1;
        } else {
            clean += 1;
        }
    }
    out.flush().map_err(werr)?;
    Ok(DatasetSummary { dir: dir.to_path_buf(), labels, clean, hard, plate_free })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plate::PlateColor;
    use crate::sim::plates::numbers::check_grammar;
    use crate::sim::plates::render::has_font;

    #[test]
    fn dataset_is_written_and_deterministic() {
        if !has_font() {
            return;
        }
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let sa = write_dataset(a.path(), 4, 42, 320, 180, 2).unwrap();
        assert_eq!((sa.clean, sa.hard, sa.plate_free), (2, 2, 2));
        let csv = fs::read_to_string(&sa.labels).unwrap();
        let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
        assert_eq!(rows[0].join(","), "file,plate,color,split,x1,y1,x2,y2,x3,y3,x4,y4");
        assert_eq!(rows.len(), 7);
        let files: Vec<&str> = rows[1..].iter().map(|r| r[0]).collect();
        assert_eq!(
            files,
            [
                "clean/000001.jpg",
                "hard/000002.jpg",
                "clean/000003.jpg",
                "hard/000004.jpg",
                "plate_free/000001.jpg",
                "plate_free/000002.jpg"
            ]
        );
        for r in &rows[1..] {
            assert_eq!(r.len(), 12);
            let bytes = fs::read(a.path().join(r[0])).unwrap();
            let img = image::load_from_memory(&bytes).unwrap();
            assert_eq!((img.width(), img.height()), (320, 180));
            if r[3] == "none" {
                assert!(r[1..3].iter().chain(&r[4..]).all(|f| f.is_empty()), "{r:?}");
            } else {
                let color: PlateColor = r[2].parse().unwrap();
                check_grammar(r[1], color).unwrap();
                assert_eq!(r[3], r[0].split('/').next().unwrap());
                let xy: Vec<f32> = r[4..].iter().map(|f| f.parse().unwrap()).collect();
                assert!(xy.chunks(2).all(|p| (0.0..320.0).contains(&p[0]) && (0.0..180.0).contains(&p[1])));
            }
        }
        write_dataset(b.path(), 4, 42, 320, 180, 2).unwrap();
        assert_eq!(csv, fs::read_to_string(b.path().join("labels.csv")).unwrap());
        for f in &files {
            assert_eq!(fs::read(a.path().join(f)).unwrap(), fs::read(b.path().join(f)).unwrap(), "{f}");
        }
        let c = tempfile::tempdir().unwrap();
        write_dataset(c.path(), 4, 43, 320, 180, 0).unwrap();
        assert_ne!(csv.lines().nth(1), fs::read_to_string(c.path().join("labels.csv")).unwrap().lines().nth(1));
    }
}
