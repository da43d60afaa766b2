//! Retention on both engines: old events, alert changes, passages with their pictures and history
//! go by age, but never what a consumer has not acknowledged, what an open alert names, or a
//! camera's last state before the cut; pictures go by age and, when the disk is short of its
//! floor, oldest first; nothing else is touched. The sweep's report is served to maintainers.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{Engine, TestApp, TestDb, config_dir};
use sqlx::Row;
use tianwang::clock::SimClock;
use tianwang::registry::Registry;
use tianwang::retention::{Consumers, Retention, RetentionConfig};

const DAY: i64 = 86_400_000;
const NOW: i64 = 1_780_000_000_000;

const SITE: &str = "[site]\nname = \"S\"\ntimezone = \"UTC\"\n[defaults]\nhfov_deg = 90\nresolution = \"1920x1080\"\n\
owner = \"public\"\nmounting_height_m = 5\n";

fn cams() -> String {
    ["c1", "c2"]
        .iter()
        .map(|id| {
            format!(
                "[[camera]]\nid = \"{id}\"\nname = \"{id}\"\nurl = \"rtsp://10.0.0.1/{id}\"\nlon = 113.6\nlat = 34.7\n\
                 bearing_deg = 0\nkind = \"checkpoint\"\n"
            )
        })
        .collect()
}

async fn exec(reg: &Registry, sql: &str) {
    sqlx::query(sql).execute(reg.pool()).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn ids(reg: &Registry, sql: &str) -> Vec<i64> {
    sqlx::query(sql).fetch_all(reg.pool()).await.unwrap().iter().map(|r| r.get::<i64, _>(0)).collect()
}

async fn count(reg: &Registry, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(reg.pool()).await.unwrap()
}

fn picture(media: &Path, camera: &str, at_ms: i64, n: u32) -> PathBuf {
    let p = media.join(format!("passages/{camera}/day/{at_ms}-{n}-plate.jpg"));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, vec![0xffu8; 1000]).unwrap();
    p
}

async fn passage(reg: &Registry, at_ms: i64, pic: &Path) -> i64 {
    let row = sqlx::query(
        "INSERT INTO passages (camera_id, pass_time_ms, plate_no, plate_image, source, created_at_ms) VALUES ('c1', $1, 'A12345', $2, 'test', $1) RETURNING id",
    )
    .bind(at_ms)
    .bind(pic.display().to_string())
    .fetch_one(reg.pool())
    .await
    .unwrap();
    row.get(0)
}

async fn deletes_by_age_below_every_consumer_and_keeps_what_is_named(engine: Engine) {
    let db = TestDb::new(engine).await;
    let reg = Registry::open(&db.url).await.unwrap();
    let cfg_dir = config_dir(&[("site.toml", SITE), ("cams.toml", &cams())]);
    reg.sync_config(&tianwang::city::load_dir(cfg_dir.path()).unwrap(), NOW - 600 * DAY).await.unwrap();
    let old = NOW - 100 * DAY;

    // Events 1..=10 are 100 days old, 11..=15 new. The readers acknowledged up to 7; a receiver
    // since removed from the configuration sits at 0 and holds nothing back.
    for i in 1..=15 {
        let at = if i <= 10 { old + i } else { NOW - i };
        exec(&reg, &format!("INSERT INTO events (at_ms, kind, payload, lane) VALUES ({at}, 'motion', '{{}}', 2)"))
            .await;
    }
    for c in ["alerts.urgent", "alerts.normal", "alerts.bulk", "rings"] {
        reg.ack(c, 7).await.unwrap();
    }
    reg.ack("webhook:removed", 0).await.unwrap();
    let first: i64 = ids(&reg, "SELECT MIN(id) FROM events").await[0];
    assert_eq!(first, 1, "a fresh database numbers events from 1");

    // Passages: one old named by an open alert, one old, one new; each with a picture.
    let media = tempfile::tempdir().unwrap();
    let named_pic = picture(media.path(), "c1", old, 1);
    let old_pic = picture(media.path(), "c1", old + 1, 2);
    let new_pic = picture(media.path(), "c1", NOW - 1000, 3);
    let named = passage(&reg, old, &named_pic).await;
    let gone = passage(&reg, old + 1, &old_pic).await;
    let kept = passage(&reg, NOW - 1000, &new_pic).await;
    // A picture no passage names any more, 40 days old (its row went by an earlier sweep).
    let orphan = picture(media.path(), "c2", NOW - 40 * DAY, 4);

    // An open alert names event 2 and the first passage; a resolved one names event 3.
    for (status, event, passage) in [("new", 2, named), ("resolved", 3, gone)] {
        let detail = serde_json::json!({"event_id": event, "event": {"passage_id": passage}});
        sqlx::query(
            "INSERT INTO alerts (kind, severity, status, dedupe_key, title, cameras, detail, count, escalation_level, \
             first_at_ms, last_at_ms, created_at_ms, updated_at_ms) \
             VALUES ('watchlist_hit', 'high', $1, $2, 't', '[]', $3, 1, 0, $4, $4, $4, $4)",
        )
        .bind(status)
        .bind(format!("k{event}"))
        .bind(detail.to_string())
        .bind(old)
        .execute(reg.pool())
        .await
        .unwrap();
    }
    let alert_ids = ids(&reg, "SELECT id FROM alerts ORDER BY id").await;
    // Alert changes: 1..=5 old, 6..=7 new; the one receiver acknowledged 3.
    for i in 1..=7 {
        let at = if i <= 5 { old + i } else { NOW - i };
        exec(
            &reg,
            &format!(
                "INSERT INTO alert_feed (alert_id, at_ms, change, payload) VALUES ({}, {at}, 'raised', '{{}}')",
                alert_ids[0]
            ),
        )
        .await;
    }
    reg.ack("webhook:a", 3).await.unwrap();
    // Status history: c1 has rows 500 and 450 days old and a recent one; c2 one 500 days old.
    for (cam, age) in [("c1", 500), ("c1", 450), ("c1", 10), ("c2", 500)] {
        exec(
            &reg,
            &format!(
                "INSERT INTO camera_status_history (camera_id, at_ms, from_status, to_status, reason) \
                 VALUES ('{cam}', {}, 'online', 'offline', 'r')",
                NOW - age * DAY
            ),
        )
        .await;
    }
    let untouched = ["alerts", "alert_audit", "work_orders", "watchlists", "cameras", "api_tokens"];
    let mut before = BTreeMap::new();
    for t in untouched {
        before.insert(t, count(&reg, t).await);
    }

    let cfg =
        RetentionConfig { events_days: 90, feed_days: 90, passages_days: 90, history_days: 400, ..Default::default() };
    let consumers = Consumers {
        events: ["alerts.urgent", "alerts.normal", "alerts.bulk", "rings"].map(String::from).to_vec(),
        feed: vec!["webhook:a".to_string()],
    };
    // Plenty of room: only age decides.
    let roomy: tianwang::retention::FreeSpace = Arc::new(|_: &Path| Ok(u64::MAX / 2));
    let r = Retention::new(
        reg.clone(),
        cfg.clone(),
        Some(consumers.clone()),
        Some(media.path().to_path_buf()),
        Arc::new(SimClock::at(NOW)),
    )
    .with_free_space(roomy);
    let (t, m) = r.sweep().await.unwrap();
    let (t, m) = (t.unwrap(), m.unwrap());

    // Events: 1 and 3..=7 went (acknowledged and old); 2 stays for the open alert; 8..=10 are old
    // but not acknowledged by every reader; the new ones stay.
    assert_eq!(ids(&reg, "SELECT id FROM events ORDER BY id").await, vec![2, 8, 9, 10, 11, 12, 13, 14, 15]);
    assert_eq!((t.events, t.events_upto), (6, 7));
    // The feed: 1..=3 went; 4 and 5 wait for the receiver.
    assert_eq!(ids(&reg, "SELECT seq FROM alert_feed ORDER BY seq").await, vec![4, 5, 6, 7]);
    assert_eq!((t.feed, t.feed_upto, t.feed_held_by.as_deref()), (3, 3, Some("webhook:a")));
    // Passages: the old one not named went with its picture; the named one and the new one stay.
    assert_eq!(ids(&reg, "SELECT id FROM passages ORDER BY id").await, vec![named, kept]);
    assert_eq!(t.passages, 1);
    assert!(!old_pic.exists(), "the deleted passage's picture stays on disk");
    assert!(named_pic.exists() && new_pic.exists());
    // Pictures by age (30 days): the orphan went; the named picture is 100 days old and stays.
    assert!(!orphan.exists());
    assert_eq!((m.removed_by_age, m.removed_for_space, m.kept_for_alerts), (1, 0, 1));
    assert!(!media.path().join("passages/c2").exists(), "an emptied folder is left behind");
    // History: c1's 600- and 500-day rows went, c2's 600-day row too; its 450-day row (its state at the cut) and c2's only row stay.
    let h: Vec<(String, i64)> =
        sqlx::query("SELECT camera_id, at_ms FROM camera_status_history ORDER BY camera_id, at_ms")
            .fetch_all(reg.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), (NOW - r.get::<i64, _>(1)) / DAY))
            .collect();
    assert_eq!(h, vec![("c1".into(), 450), ("c1".into(), 10), ("c2".into(), 500)]);
    // With the rows config sync wrote when it added the cameras (600 days ago), one each.
    assert_eq!(t.history, 3);
    for t in untouched {
        assert_eq!(count(&reg, t).await, before[t], "{t} was touched");
    }

    // Again: nothing more to do.
    let (t2, m2) = r.sweep().await.unwrap();
    let (t2, m2) = (t2.unwrap(), m2.unwrap());
    assert_eq!((t2.events, t2.feed, t2.passages, t2.history, m2.removed_by_age), (0, 0, 0, 0, 0));

    // The disk is 500 bytes short of a 1 MiB floor (the probe counts what the sweep frees): the
    // oldest picture not named by an open alert goes (the new one), the named one stays, and no
    // row is touched.
    let rows_before = (count(&reg, "events").await, count(&reg, "passages").await, count(&reg, "alert_feed").await);
    let short = 1_048_576 - 500;
    let probe: tianwang::retention::FreeSpace = {
        let media = media.path().to_path_buf();
        // Two pictures of 1000 bytes are there at the start.
        Arc::new(move |_: &Path| Ok(short + 2000 - walk(&media)))
    };
    let r = Retention::new(
        reg.clone(),
        RetentionConfig { min_free_mb: 1, ..cfg },
        Some(consumers),
        Some(media.path().to_path_buf()),
        Arc::new(SimClock::at(NOW)),
    )
    .with_free_space(probe);
    let (_, m) = r.sweep().await.unwrap();
    let m = m.unwrap();
    assert_eq!((m.removed_for_space, m.removed_by_age, m.below_floor), (1, 0, false), "{m:?}");
    assert!(named_pic.exists() && !new_pic.exists());
    assert_eq!(
        (count(&reg, "events").await, count(&reg, "passages").await, count(&reg, "alert_feed").await),
        rows_before
    );
    let st = r.status();
    assert_eq!((st.sweeps, st.media.unwrap().removed_for_space), (1, 1));
    reg.close().await;
}

/// Bytes of the files under `dir`.
fn walk(dir: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        n += if p.is_dir() { walk(&p) } else { e.metadata().map_or(0, |m| m.len()) };
    }
    n
}

on_both_engines!(deletes_by_age_below_every_consumer_and_keeps_what_is_named);

/// Maintainers see what is kept and the last sweep; a bad `[retention]` is a clear config error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_is_served_and_checked() {
    let site = format!("{SITE}[retention]\nevents_days = 30\nmin_free_mb = 2048\n");
    let dir = config_dir(&[("site.toml", &site), ("cams.toml", &cams())]);
    let db = TestDb::new(Engine::Sqlite).await;
    let app = TestApp::spawn(dir.path(), &db).await;
    let (status, body, _) = app.get("/api/v1/retention").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["config"]["events_days"], 30);
    assert_eq!(body["config"]["min_free_mb"], 2048);
    assert_eq!(body["config"]["passages_days"], RetentionConfig::default().passages_days);
    assert_eq!(body["sweeps"], 0);
    app.stop().await;

    let bad = format!("{SITE}[retention]\nevents_days = -1\ninterval_s = 1\nkeep = 3\n");
    let dir = config_dir(&[("site.toml", &bad), ("cams.toml", &cams())]);
    let errs = tianwang::city::load_dir(dir.path()).unwrap_err().to_string();
    assert!(errs.contains("retention.events_days"), "{errs}");
    assert!(errs.contains("retention.interval_s"), "{errs}");
    assert!(errs.contains("retention.keep"), "{errs}");
}
