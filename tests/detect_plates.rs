//! Plate reading on a generated set of 1,000 pictures (half clean, half hard) plus 200 without a
//! plate, through the same `eval plates` code the CLI runs, with the real models.

use tianwang::detect::{eval, onnx, plates};

#[test]
fn generated_set_accuracy() {
    onnx::init(None).expect("ONNX Runtime (bash scripts/setup.sh)");
    let dir = tempfile::tempdir().unwrap();
    let s = tianwang::sim::plates::write_dataset(dir.path(), 1000, 20261130, 1280, 720, 200).unwrap();
    assert_eq!((s.clean, s.hard, s.plate_free), (500, 500, 200));
    // One reader per core (the figure per core comes from `tianwang eval plates`, BENCHMARKS.md).
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(4);
    let mut readers: Vec<_> =
        (0..cores).map(|_| plates::PlateReader::new(plates::PlateParams::default(), 1).unwrap()).collect();
    let rep = eval::eval_plates(dir.path(), &mut readers, None).unwrap();
    print!("{}", rep.text());
    for m in &rep.misreads {
        println!("  {m:?}");
    }
    let clean = &rep.splits["clean"];
    let hard = &rep.splits["hard"];
    assert_eq!(clean.images + hard.images, 1000);
    assert_eq!(rep.ungrammatical_reads, 0, "every read follows the plate grammar");
    assert!(clean.exact_rate() >= 0.97, "clean exact {:.3}", clean.exact_rate());
    assert!(hard.exact_rate() >= 0.85, "hard exact {:.3}", hard.exact_rate());
    assert!(rep.false_reads_per_1000() <= 10.0, "{} false reads on 200 plate-free pictures", rep.false_reads);
}
