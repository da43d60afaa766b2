//! The registry on both engines: migrations, the schema they make, config sync, status history.

mod common;

use common::{Engine, TestDb, config_dir};
use tianwang::city::load_dir;
use tianwang::config::CameraStatus;
use tianwang::registry::{CameraFilter, Registry, schema_dump};

/// Every migration applied to an empty database gives exactly the expected schema
/// (`tests/schema/<engine>.txt`; regenerate with TIANWANG_BLESS=1 after a deliberate change).
async fn migrations_give_the_expected_schema(engine: Engine) {
    let db = TestDb::new(engine).await;
    let reg = Registry::open(&db.url).await.unwrap();
    let got = schema_dump(&reg).await.unwrap();
    let name = match engine {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/schema/{name}.txt"));
    if std::env::var("TIANWANG_BLESS").is_ok() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).expect("expected schema file");
    assert_eq!(got, want, "schema after migrations differs from {}", path.display());
    // Applying again is a no-op and every known migration reports applied.
    reg.migrate().await.unwrap();
    assert!(reg.migration_status().await.unwrap().iter().all(|(_, _, applied)| *applied));
    assert_eq!(schema_dump(&reg).await.unwrap(), want);
    reg.close().await;
}

const SITE: &str = "[site]\nname = \"S\"\ntimezone = \"UTC\"\n[defaults]\nhfov_deg = 90\nresolution = \"1920x1080\"\nowner = \"public\"\nmounting_height_m = 5\n\
[[grid_cell]]\nid = \"g1\"\nname = \"G1\"\nlevel = 1\n";

fn cam(id: &str, extra: &str) -> String {
    format!(
        "[[camera]]\nid = \"{id}\"\nname = \"{id}\"\nurl = \"rtsp://10.0.0.1/{id}\"\nlon = 113.6\nlat = 34.7\nbearing_deg = 0\nkind = \"street\"\ngrid_cell = \"g1\"\n{extra}\n"
    )
}

async fn sync_inserts_updates_disables_and_decommissions(engine: Engine) {
    let db = TestDb::new(engine).await;
    let reg = Registry::open(&db.url).await.unwrap();

    let v1 = config_dir(&[("site.toml", SITE), ("c.toml", &(cam("a", "") + &cam("b", "") + &cam("c", "")))]);
    let r = reg.sync_config(&load_dir(v1.path()).unwrap(), 1000).await.unwrap();
    assert_eq!(r.inserted, vec!["a", "b", "c"]);
    let a = reg.get_camera("a").await.unwrap().unwrap();
    assert_eq!((a.status.as_str(), a.created_at_ms), ("unknown", 1000));

    // Same config again: nothing changes.
    let r = reg.sync_config(&load_dir(v1.path()).unwrap(), 2000).await.unwrap();
    assert_eq!((r.inserted.len(), r.updated.len(), r.unchanged), (0, 0, 3));

    // a renamed, b disabled, c removed.
    let v2 = config_dir(&[
        ("site.toml", SITE),
        ("c.toml", &(cam("a", "").replace("name = \"a\"", "name = \"A2\"") + &cam("b", "enabled = false"))),
    ]);
    let r = reg.sync_config(&load_dir(v2.path()).unwrap(), 3000).await.unwrap();
    assert_eq!(r.updated, vec!["a", "b"]);
    assert_eq!(r.decommissioned, vec!["c"]);
    let a = reg.get_camera("a").await.unwrap().unwrap();
    assert_eq!((a.name.as_str(), a.status.as_str(), a.created_at_ms, a.updated_at_ms), ("A2", "unknown", 1000, 3000));
    let b = reg.get_camera("b").await.unwrap().unwrap();
    assert_eq!((b.status.as_str(), b.enabled), ("disabled", false));
    let c = reg.get_camera("c").await.unwrap().expect("a decommissioned camera is kept");
    assert_eq!((c.status.as_str(), c.decommissioned_at_ms), ("decommissioned", Some(3000)));

    // c comes back.
    let r = reg.sync_config(&load_dir(v1.path()).unwrap(), 4000).await.unwrap();
    assert_eq!(r.reinstated, vec!["c"]);
    let c = reg.get_camera("c").await.unwrap().unwrap();
    assert_eq!((c.status.as_str(), c.decommissioned_at_ms), ("unknown", None));

    let h: Vec<(i64, Option<String>, String)> =
        reg.status_history("c", 10).await.unwrap().into_iter().map(|s| (s.at_ms, s.from_status, s.to_status)).collect();
    assert_eq!(
        h,
        vec![
            (4000, Some("decommissioned".into()), "unknown".into()),
            (3000, Some("unknown".into()), "decommissioned".into()),
            (1000, None, "unknown".into()),
        ]
    );
    // b was disabled by v2 and enabled again by v1.
    let h = reg.status_history("b", 10).await.unwrap();
    assert_eq!((h[0].to_status.as_str(), h[1].to_status.as_str()), ("unknown", "disabled"));
    assert!(h[0].reason.contains("enabled in the configuration"), "{:?}", h[0]);
    assert!(h[1].reason.contains("disabled in the configuration"), "{:?}", h[1]);
    reg.close().await;
}

async fn status_changes_are_recorded_once(engine: Engine) {
    let db = TestDb::new(engine).await;
    let reg = Registry::open(&db.url).await.unwrap();
    let v1 = config_dir(&[("site.toml", SITE), ("c.toml", &cam("a", ""))]);
    reg.sync_config(&load_dir(v1.path()).unwrap(), 1000).await.unwrap();
    assert!(reg.set_status("a", CameraStatus::Online, "streaming", 2000, None).await.unwrap());
    assert!(!reg.set_status("a", CameraStatus::Online, "still streaming", 2500, None).await.unwrap());
    assert!(reg.set_status("a", CameraStatus::Offline, "no frames for 10 s", 3000, None).await.unwrap());
    let h = reg.status_history("a", 10).await.unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!((h[0].to_status.as_str(), h[0].reason.as_str(), h[0].at_ms), ("offline", "no frames for 10 s", 3000));
    let a = reg.get_camera("a").await.unwrap().unwrap();
    assert_eq!((a.status.as_str(), a.status_since_ms), ("offline", 3000));
    let e = reg.set_status("zz", CameraStatus::Online, "x", 1, None).await.unwrap_err();
    assert!(e.to_string().contains("zz"), "{e}");
    reg.close().await;
}

async fn a_sync_is_all_or_nothing(engine: Engine) {
    let db = TestDb::new(engine).await;
    let reg = Registry::open(&db.url).await.unwrap();
    let v1 = config_dir(&[("site.toml", SITE), ("c.toml", &(cam("a", "") + &cam("b", "")))]);
    reg.sync_config(&load_dir(v1.path()).unwrap(), 1000).await.unwrap();
    // Break the table under the sync so that its last statement fails.
    let break_it = match engine {
        Engine::Sqlite => {
            "CREATE TRIGGER no_decommission BEFORE UPDATE OF decommissioned_at_ms ON cameras BEGIN SELECT RAISE(ABORT, 'refused'); END"
        }
        Engine::Postgres => "ALTER TABLE cameras ADD CONSTRAINT no_decommission CHECK (decommissioned_at_ms IS NULL)",
    };
    sqlx::query(break_it).execute(reg.pool()).await.unwrap();
    let v2 = config_dir(&[
        ("site.toml", SITE),
        ("c.toml", &(cam("a", "").replace("name = \"a\"", "name = \"renamed\"") + &cam("n", ""))),
    ]);
    assert!(reg.sync_config(&load_dir(v2.path()).unwrap(), 2000).await.is_err());
    let page = reg.list_cameras(&CameraFilter { limit: 100, ..Default::default() }).await.unwrap();
    let names: Vec<(String, String)> = page.items.into_iter().map(|c| (c.id, c.name)).collect();
    assert_eq!(names, vec![("a".into(), "a".into()), ("b".into(), "b".into())], "a failed sync changed nothing");
    reg.close().await;
}

/// Migration 0007 on a database that has lived under 0006: webhook receivers resume at their
/// first undelivered change, the alert engine's one cursor becomes one per lane, stored events get
/// their lane, and of two open alerts of one key only the newer stays open.
async fn the_event_spine_migration_carries_what_was_stored(engine: Engine) {
    let db = TestDb::new(engine).await;
    let dialect = match engine {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    };
    // The migrations up to 0006 only.
    let old = tempfile::tempdir().unwrap();
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dialect);
    for e in std::fs::read_dir(&all).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.as_str() < "0007" {
            std::fs::copy(e.path(), old.path().join(&name)).unwrap();
        }
    }
    let reg = Registry::connect(&db.url).await.unwrap();
    sqlx::migrate::Migrator::new(old.path()).await.unwrap().run(reg.pool()).await.unwrap();
    let exec = |sql: String| {
        let pool = reg.pool().clone();
        async move { sqlx::query(&sql).execute(&pool).await.unwrap() }
    };
    for seq in 1..=4 {
        exec(format!("INSERT INTO alerts (kind, severity, status, dedupe_key, title, cameras, detail, count, escalation_level, first_at_ms, last_at_ms, created_at_ms, updated_at_ms) VALUES ('alarm', 'critical', 'new', 'alarm:{}', 't', '[]', '{{}}', 1, 0, 0, 0, 0, {seq})", if seq <= 2 { "dup".to_string() } else { seq.to_string() })).await;
    }
    for seq in 1..=4 {
        exec(format!("INSERT INTO alert_feed (alert_id, at_ms, change, payload) VALUES ({seq}, 0, 'raised', '{{}}')"))
            .await;
    }
    // desk got change 1, not 2 and 3; ops got 1 to 3.
    for (seq, target, delivered) in [
        (1, "desk", true),
        (2, "desk", false),
        (3, "desk", false),
        (1, "ops", true),
        (2, "ops", true),
        (3, "ops", true),
    ] {
        let d = if delivered { "5" } else { "NULL" };
        exec(format!("INSERT INTO outbox (seq, target, payload, attempts, next_attempt_ms, delivered_at_ms) VALUES ({seq}, '{target}', '{{}}', 1, 0, {d})")).await;
    }
    exec("INSERT INTO cursors (consumer, position) VALUES ('alerts.events', 42)".to_string()).await;
    exec(
        "INSERT INTO events (at_ms, kind, camera_id, ring_id, payload) VALUES (0, 'alarm', NULL, NULL, '{}')"
            .to_string(),
    )
    .await;
    exec(
        "INSERT INTO events (at_ms, kind, camera_id, ring_id, payload) VALUES (0, 'motion', 'c', NULL, '{}')"
            .to_string(),
    )
    .await;
    exec(
        "INSERT INTO events (at_ms, kind, camera_id, ring_id, payload) VALUES (0, 'ring_opened', NULL, 'r', '{}')"
            .to_string(),
    )
    .await;
    reg.migrate().await.unwrap();
    for (consumer, want) in
        [("webhook:desk", 1), ("webhook:ops", 3), ("alerts.urgent", 42), ("alerts.normal", 42), ("alerts.bulk", 42)]
    {
        assert_eq!(reg.acked(consumer).await.unwrap(), Some(want), "{consumer}");
    }
    assert_eq!(reg.acked("alerts.events").await.unwrap(), None);
    let lanes: Vec<i64> =
        sqlx::query_scalar("SELECT lane FROM events ORDER BY id").fetch_all(reg.pool()).await.unwrap();
    assert_eq!(lanes, [0, 2, 1]);
    let open: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, dedupe_key FROM alerts WHERE status <> 'resolved' ORDER BY id")
            .fetch_all(reg.pool())
            .await
            .unwrap();
    assert_eq!(open, [(2, "alarm:dup".to_string()), (3, "alarm:3".to_string()), (4, "alarm:4".to_string())]);
    assert!(sqlx::query("SELECT COUNT(*) FROM outbox").execute(reg.pool()).await.is_err(), "the outbox is gone");
    reg.close().await;
}

on_both_engines!(
    the_event_spine_migration_carries_what_was_stored,
    migrations_give_the_expected_schema,
    sync_inserts_updates_disables_and_decommissions,
    status_changes_are_recorded_once,
    a_sync_is_all_or_nothing,
);

/// What the API answered as stored survives a power cut, not only a crash: every SQLite
/// connection of the pool syncs its log at each commit (`synchronous = FULL`; NORMAL, in WAL
/// mode, may lose the last commits).
#[tokio::test]
async fn sqlite_commits_are_synced_to_disk() {
    use sqlx::Row;
    let db = TestDb::new(Engine::Sqlite).await;
    let reg = Registry::open(&db.url).await.unwrap();
    // More connections than one: each is set up on connect.
    let mut conns = Vec::new();
    for _ in 0..3 {
        conns.push(reg.pool().acquire().await.unwrap());
    }
    for c in conns.iter_mut() {
        let row = sqlx::query("PRAGMA synchronous").fetch_one(&mut **c).await.unwrap();
        assert_eq!(row.try_get::<i64, _>(0).unwrap(), 2, "synchronous = FULL");
        let row = sqlx::query("PRAGMA journal_mode").fetch_one(&mut **c).await.unwrap();
        assert_eq!(row.try_get::<String, _>(0).unwrap(), "wal");
    }
    drop(conns);
    reg.close().await;
}
