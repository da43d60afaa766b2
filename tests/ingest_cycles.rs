//! 200 connect/disconnect cycles on one camera: threads, open file descriptors and RSS of this
//! process come back to their baseline. The RTSP server runs in another process (`tianwang sim`)
//! so that only the ingest side is measured; this file holds one test so nothing else runs beside it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::ingest::{Events, SimProcess, spec};
use tianwang::clock::SystemClock;
use tianwang::config::Profile;
use tianwang::ingest::Ingest;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4
}

#[tokio::test(flavor = "current_thread")]
async fn two_hundred_cycles_leak_no_threads_fds_or_memory() {
    let sim = SimProcess::start(&["cyc:320x180@25:kf=5:kbps=200"]);
    tianwang::ingest::init_gstreamer().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4096);
    let ing = Arc::new(Ingest::new(Arc::new(SystemClock), Some(tx)));
    let mut ev = Events::new(rx);
    let url = sim.url("cyc");
    let mut cycle = async |n: usize| {
        for _ in 0..n {
            ing.start(spec("cyc", &url, Profile::Street, 160, 90, 5));
            ev.wait("cyc", "online", Duration::from_secs(20)).await;
            let q = ing.subscribe("cyc").unwrap();
            assert!(q.pop_timeout(Duration::from_secs(5)).is_some(), "a frame each cycle");
            assert!(ing.stop("cyc"));
        }
    };
    // Warm up: GStreamer loads plugins and creates its shared threads on first use.
    cycle(10).await;
    let (t0, f0, r0) = (threads(), fds(), rss_kib());
    cycle(200).await;
    let (t1, f1, r1) = (threads(), fds(), rss_kib());
    eprintln!("baseline: {t0} threads, {f0} fds, {r0} KiB RSS; after 200 cycles: {t1} threads, {f1} fds, {r1} KiB RSS");
    // GLib keeps up to a couple of idle pool threads; a leak of one thread or socket per cycle
    // would show as +200.
    assert!(t1 <= t0 + 2, "threads {t0} -> {t1}");
    assert!(f1 <= f0 + 2, "fds {f0} -> {f1}");
    assert!(r1 <= r0 + 16 * 1024, "RSS {r0} KiB -> {r1} KiB");
}
