//! `check-config` behaviour: every error located as file:line: field: problem, all at once.

mod common;

use common::config_dir;
use tianwang::city::load_dir;
use tianwang::config::{CameraKind, Profile};

const SITE: &str = r#"[site]
name = "Test site"
timezone = "Asia/Shanghai"

[defaults]
transport = "tcp"
mounting_height_m = 6.0
hfov_deg = 90.0
resolution = "1920x1080"
owner = "public"

[[grid_cell]]
id = "g1"
name = "Station"
level = 1

[[grid_cell]]
id = "g2"
name = "Community"
level = 2
parent = "g1"
"#;

/// A valid camera whose line `key = ...` can be replaced or removed.
fn camera(overrides: &[(&str, Option<&str>)], extra: &str) -> String {
    let base = [
        ("id", "\"cam-1\""),
        ("name", "\"Camera one\""),
        ("url", "\"rtsp://10.1.2.3:554/Streaming/Channels/101\""),
        ("lon", "113.66"),
        ("lat", "34.75"),
        ("bearing_deg", "90"),
        ("kind", "\"street\""),
        ("grid_cell", "\"g2\""),
    ];
    let mut out = String::from("# cameras\n[[camera]]\n");
    for (k, v) in base {
        match overrides.iter().find(|(ok, _)| *ok == k) {
            Some((_, Some(nv))) => out.push_str(&format!("{k} = {nv}\n")),
            Some((_, None)) => {}
            None => out.push_str(&format!("{k} = {v}\n")),
        }
    }
    for (k, v) in overrides {
        if !base.iter().any(|(bk, _)| bk == k)
            && let Some(v) = v
        {
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
    out.push_str(extra);
    out
}

fn line_of(text: &str, key: &str) -> usize {
    text.lines().position(|l| l.starts_with(&format!("{key} ="))).map(|i| i + 1).expect("key in text")
}

/// Loads site + one camera file; returns the rendered errors.
fn errors_for(cams: &str) -> Vec<String> {
    let dir = config_dir(&[("site.toml", SITE), ("cams.toml", cams)]);
    match load_dir(dir.path()) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|e| e.to_string().replace(&format!("{}/", dir.path().display()), "")).collect(),
    }
}

/// Asserts exactly one error, in cams.toml at the line of `key`, naming `field` and containing `needle`.
fn expect_one(cams: &str, key: &str, field: &str, needle: &str) {
    let errs = errors_for(cams);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    let line = line_of(cams, key);
    let want = format!("cams.toml:{line}: {field}: ");
    assert!(errs[0].starts_with(&want), "{:?} should start with {want:?}", errs[0]);
    assert!(errs[0].contains(needle), "{:?} should contain {needle:?}", errs[0]);
}

#[test]
fn a_valid_camera_loads_with_defaults_applied() {
    let dir = config_dir(&[("site.toml", SITE), ("cams.toml", &camera(&[], ""))]);
    let cfg = load_dir(dir.path()).expect("valid");
    assert_eq!(cfg.cameras.len(), 1);
    let c = &cfg.cameras[0];
    assert_eq!((c.width, c.height), (1920, 1080));
    assert_eq!(c.hfov_deg, 90.0);
    assert_eq!(c.kind, CameraKind::Street);
    assert_eq!(c.profile, Profile::Street);
    assert!(c.enabled);
    assert_eq!(c.loc.line, 2);
}

#[test]
fn a_camera_overrides_site_defaults_and_focal_length_replaces_hfov() {
    let cams = camera(
        &[("resolution", Some("\"704x576\"")), ("focal_length_mm", Some("4.0")), ("sensor_width_mm", Some("5.37"))],
        "",
    );
    let dir = config_dir(&[("site.toml", SITE), ("cams.toml", &cams)]);
    let cfg = load_dir(dir.path()).expect("valid");
    let c = &cfg.cameras[0];
    assert_eq!((c.width, c.height), (704, 576));
    let want = 2.0 * (5.37f64 / 8.0).atan().to_degrees();
    assert!((c.hfov_deg - want).abs() < 1e-9, "{} vs {want}", c.hfov_deg);
}

#[test]
fn the_demo_city_is_valid() {
    let cfg = load_dir(&common::demo_config()).expect("demo config is valid");
    assert!(cfg.cameras.len() >= 24);
    for kind in CameraKind::ALL {
        assert!(cfg.cameras.iter().any(|c| c.kind == *kind), "demo has no {kind} camera");
    }
    assert_eq!(cfg.grid.iter().map(|g| g.level).max(), Some(3));
}

#[test]
fn bad_unknown_field() {
    expect_one(
        &camera(&[("bearing", Some("90"))], ""),
        "bearing",
        "camera[cam-1].bearing",
        "did you mean `bearing_deg`",
    );
}

#[test]
fn bad_latitude_out_of_range() {
    expect_one(&camera(&[("lat", Some("91.5"))], ""), "lat", "camera[cam-1].lat", "out of range");
}

#[test]
fn bad_longitude_out_of_range() {
    expect_one(&camera(&[("lon", Some("-181"))], ""), "lon", "camera[cam-1].lon", "out of range");
}

#[test]
fn bad_bearing_out_of_range() {
    expect_one(
        &camera(&[("bearing_deg", Some("360"))], ""),
        "bearing_deg",
        "camera[cam-1].bearing_deg",
        "out of range",
    );
}

#[test]
fn bad_duplicate_id() {
    let first = camera(&[], "");
    let second = camera(&[("url", Some("\"rtsp://10.1.2.4/x\""))], "");
    let cams = format!("{first}\n{}", second.replace("# cameras\n", ""));
    let errs = errors_for(&cams);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let second_id_line = cams.lines().enumerate().filter(|(_, l)| l.starts_with("id =")).nth(1).unwrap().0 + 1;
    assert!(errs[0].starts_with(&format!("cams.toml:{second_id_line}: camera[cam-1].id: duplicate id")), "{errs:?}");
    assert!(errs[0].contains("first defined at"), "{errs:?}");
}

#[test]
fn bad_duplicate_id_across_files() {
    let dir = config_dir(&[("site.toml", SITE), ("a.toml", &camera(&[], "")), ("b/more.toml", &camera(&[], ""))]);
    let errs = load_dir(dir.path()).unwrap_err();
    assert_eq!(errs.0.len(), 1, "{errs}");
    assert!(errs.0[0].loc.file.ends_with("b/more.toml"), "{errs}");
    assert!(errs.0[0].problem.contains("a.toml:2"), "{errs}");
}

#[test]
fn bad_malformed_gb28181_code() {
    expect_one(&camera(&[("id", Some("\"4101000000132000001\""))], ""), "id", "camera[1].id", "exactly 20 digits");
}

#[test]
fn bad_gb28181_url() {
    expect_one(
        &camera(&[("url", Some("\"gb28181://41010000001180000001/4101000000131000001\""))], ""),
        "url",
        "camera[cam-1].url",
        "exactly 20 digits",
    );
}

#[test]
fn bad_gb28181_code_of_an_nvr() {
    expect_one(&camera(&[("id", Some("\"41010000001180000001\""))], ""), "id", "camera[1].id", "is not a camera");
}

#[test]
fn bad_url_with_password() {
    let cams = camera(&[("url", Some("\"rtsp://admin:hunter2@10.1.2.3/ch1\""))], "");
    expect_one(&cams, "url", "camera[cam-1].url", "password_env");
    assert!(!errors_for(&cams)[0].contains("hunter2"), "the password must not be echoed");
}

#[test]
fn bad_url_scheme() {
    expect_one(&camera(&[("url", Some("\"http://10.1.2.3/video\""))], ""), "url", "camera[cam-1].url", "not RTSP");
}

#[test]
fn bad_missing_secret() {
    let cams = camera(&[("username", Some("\"admin\"")), ("password_env", Some("\"TIANWANG_TEST_SURELY_UNSET\""))], "");
    expect_one(&cams, "password_env", "camera[cam-1].password_env", "TIANWANG_TEST_SURELY_UNSET is not set");
}

#[test]
fn bad_missing_secret_file() {
    let cams = camera(&[("username", Some("\"admin\"")), ("password_file", Some("\"secrets/nope.txt\""))], "");
    expect_one(&cams, "password_file", "camera[cam-1].password_file", "cannot be read");
}

#[test]
fn a_secret_file_is_read_relative_to_its_config_file_and_never_shown() {
    let cams = camera(&[("username", Some("\"admin\"")), ("password_file", Some("\"secrets/cam1.txt\""))], "");
    let dir = config_dir(&[("site.toml", SITE), ("cams.toml", &cams), ("secrets/cam1.txt", "hunter2\n")]);
    let cfg = load_dir(dir.path()).expect("valid");
    let c = &cfg.cameras[0];
    let secret = c.password.as_ref().unwrap().resolve().unwrap();
    assert_eq!(secret.expose(), "hunter2");
    assert!(!format!("{c:?} {secret:?}").contains("hunter2"));
}

#[test]
fn bad_unknown_grid_cell() {
    expect_one(
        &camera(&[("grid_cell", Some("\"g9\""))], ""),
        "grid_cell",
        "camera[cam-1].grid_cell",
        "unknown grid cell \"g9\"",
    );
}

#[test]
fn bad_unknown_kind() {
    expect_one(&camera(&[("kind", Some("\"tower\""))], ""), "kind", "camera[cam-1].kind", "rental-housing");
}

#[test]
fn bad_wrong_type() {
    expect_one(
        &camera(&[("bearing_deg", Some("\"north\""))], ""),
        "bearing_deg",
        "camera[cam-1].bearing_deg",
        "expected a number",
    );
}

#[test]
fn bad_missing_required_field() {
    let cams = camera(&[("name", None)], "");
    let errs = errors_for(&cams);
    assert_eq!(errs, vec!["cams.toml:2: camera[cam-1].name: missing; a human-readable name".to_string()]);
}

#[test]
fn bad_resolution() {
    expect_one(
        &camera(&[("resolution", Some("\"1080p\""))], ""),
        "resolution",
        "camera[cam-1].resolution",
        "WIDTHxHEIGHT",
    );
}

#[test]
fn bad_hfov_and_focal_length_together() {
    let cams = camera(&[("hfov_deg", Some("60")), ("focal_length_mm", Some("4"))], "sensor_width_mm = 5.37\n");
    expect_one(&cams, "hfov_deg", "camera[cam-1].hfov_deg", "not both");
}

#[test]
fn bad_transport() {
    expect_one(
        &camera(&[("transport", Some("\"sctp\""))], ""),
        "transport",
        "camera[cam-1].transport",
        "tcp, udp, auto",
    );
}

#[test]
fn bad_mounting_height() {
    expect_one(
        &camera(&[("mounting_height_m", Some("-2"))], ""),
        "mounting_height_m",
        "camera[cam-1].mounting_height_m",
        "out of range",
    );
}

#[test]
fn bad_toml_syntax() {
    let cams = "[[camera]]\nid = \"cam-1\"\nname = \n";
    let errs = errors_for(cams);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].starts_with("cams.toml:3: (syntax): invalid TOML"), "{errs:?}");
}

#[test]
fn bad_site_file() {
    let site = SITE
        .replace("timezone = \"Asia/Shanghai\"", "timezone = \"Beijing\"\ncolour = \"red\"")
        .replace("transport = \"tcp\"", "transprt = \"tcp\"");
    let dir = config_dir(&[("site.toml", &site), ("cams.toml", &camera(&[], ""))]);
    let errs: Vec<String> =
        load_dir(dir.path()).unwrap_err().0.iter().map(|e| format!("{}: {}", e.loc.line, e.field)).collect();
    assert_eq!(errs, vec!["3: site.timezone", "4: site.colour", "7: defaults.transprt"]);
}

#[test]
fn bad_grid_cell_parent() {
    let site = SITE.replace("parent = \"g1\"", "parent = \"g7\"");
    let dir = config_dir(&[("site.toml", &site), ("cams.toml", &camera(&[], ""))]);
    let errs = load_dir(dir.path()).unwrap_err();
    assert_eq!(errs.0.len(), 1, "{errs}");
    assert_eq!(errs.0[0].field, "grid_cell[g2].parent");
    assert!(errs.0[0].problem.contains("unknown grid cell \"g7\""), "{errs}");
}

#[test]
fn missing_site_file() {
    let dir = config_dir(&[("cams.toml", &camera(&[], ""))]);
    let errs = load_dir(dir.path()).unwrap_err();
    assert!(errs.0.iter().any(|e| e.loc.file.ends_with("site.toml") && e.field == "site"), "{errs}");
}

#[test]
fn a_file_with_several_errors_reports_all_of_them() {
    let cams = camera(
        &[("lat", Some("95")), ("bearing_deg", Some("400")), ("kind", Some("\"tower\"")), ("colour", Some("\"red\""))],
        "\n[[camera]]\nid = \"cam-2\"\nname = \"Two\"\nurl = \"rtsp://u:p@10.0.0.1/x\"\nlon = 113.6\nlat = 34.7\nbearing_deg = 10\nkind = \"street\"\n",
    );
    let errs = errors_for(&cams);
    let fields: Vec<&str> = errs.iter().map(|e| e.split(": ").nth(1).unwrap()).collect();
    assert_eq!(
        fields,
        vec![
            "camera[cam-1].lat",
            "camera[cam-1].bearing_deg",
            "camera[cam-1].kind",
            "camera[cam-1].colour",
            "camera[cam-2].url"
        ],
        "{errs:#?}"
    );
    for e in &errs {
        assert!(e.starts_with("cams.toml:"), "{e}");
    }
}

fn checkpoint(id: &str, lon: f64) -> String {
    format!(
        "[[camera]]\nid = \"{id}\"\nname = \"{id}\"\nurl = \"rtsp://10.1.2.3:554/{id}\"\nlon = {lon}\nlat = 34.75\nbearing_deg = 0\nkind = \"checkpoint\"\nprofile = \"checkpoint\"\n"
    )
}

#[test]
fn rings_load_and_their_members_are_checked() {
    let cams = format!(
        "{}{}{}{}",
        checkpoint("k1", 113.60),
        checkpoint("k2", 113.61),
        checkpoint("k3", 113.62),
        camera(&[], "")
    );
    let good = "[[ring]]\nid = \"r1\"\nname = \"Ring\"\nlevel = 1\nmembers = [\"k1\", \"k2\", \"k3\"]\n";
    let dir = config_dir(&[("site.toml", SITE), ("cams.toml", &cams), ("rings.toml", good)]);
    let cfg = load_dir(dir.path()).expect("valid");
    assert_eq!(cfg.rings.len(), 1);
    assert_eq!(cfg.rings[0].members, ["k1", "k2", "k3"]);

    let cases = [
        ("members = [\"k1\", \"k2\", \"nope\"]", "\"nope\" is not a configured camera"),
        ("members = [\"k1\", \"k2\", \"cam-1\"]", "\"cam-1\" is not a checkpoint camera"),
        ("members = [\"k1\", \"k2\", \"k1\"]", "\"k1\" is listed twice"),
        ("members = [\"k1\", \"k2\"]", "at least 3 members"),
        ("members = [\"k1\", \"k2\", \"k3\"]\noutline = [[113.6, 34.7], [113.7, 34.7]]", "an outline needs at least 3"),
        ("members = [\"k1\", \"k2\", \"k3\"]\noutline = [[113.6, 34.7], [113.7, 95.0], [113.6, 34.8]]", "point 2"),
        ("members = \"k1\"", "expected an array of strings"),
    ];
    for (members, needle) in cases {
        let ring = format!("[[ring]]\nid = \"r1\"\nname = \"Ring\"\n{members}\n");
        let dir = config_dir(&[("site.toml", SITE), ("cams.toml", &cams), ("rings.toml", &ring)]);
        let errs = load_dir(dir.path()).expect_err(members).0;
        assert_eq!(errs.len(), 1, "{members}: {errs:?}");
        let msg = errs[0].to_string();
        assert!(msg.contains("rings.toml:") && msg.contains("ring[r1]") && msg.contains(needle), "{members}: {msg}");
    }
}

#[test]
fn map_files_must_exist_and_cell_outlines_must_be_polygons() {
    let site = format!("{SITE}\n[map]\nroads = [\"map/roads.geojson\"]\n");
    let dir = config_dir(&[("site.toml", &site)]);
    let msg = load_dir(dir.path()).expect_err("missing map file").0[0].to_string();
    assert!(msg.contains("map.roads") && msg.contains("map/roads.geojson") && msg.contains("no such file"), "{msg}");
    let dir = config_dir(&[("site.toml", &site), ("map/roads.geojson", "{}")]);
    assert_eq!(load_dir(dir.path()).expect("present").map.roads.len(), 1);

    let bad_cell = format!(
        "{SITE}\n[[grid_cell]]\nid = \"g3\"\nname = \"Block\"\nlevel = 3\nparent = \"g2\"\noutline = [[113.6, 34.7]]\n"
    );
    let dir = config_dir(&[("site.toml", &bad_cell)]);
    let msg = load_dir(dir.path()).expect_err("bad outline").0[0].to_string();
    assert!(msg.contains("grid_cell[g3].outline") && msg.contains("at least 3"), "{msg}");
}

#[test]
fn armed_zones_and_time_zone_offsets() {
    let site = format!(
        "{SITE}\n[[armed_zone]]\ncamera = \"cam-1\"\nzone = \"vault\"\nschedule = [\"22:00-06:00\", \"12:00-13:30\"]\n\n[[armed_zone]]\ncamera = \"cam-2\"\n"
    );
    let dir = config_dir(&[("site.toml", &site)]);
    let cfg = load_dir(dir.path()).expect("valid");
    assert_eq!(cfg.armed_zones.len(), 2);
    assert_eq!(cfg.armed_zones[0].windows, vec![(1320, 360), (720, 810)]);
    assert_eq!((cfg.armed_zones[1].zone.as_str(), cfg.armed_zones[1].windows.len()), ("*", 0));
    let bad = format!("{SITE}\n[[armed_zone]]\ncamera = \"cam-1\"\nschedule = [\"25:00-06:00\"]\n");
    let dir = config_dir(&[("site.toml", &bad)]);
    let msg = load_dir(dir.path()).expect_err("bad window").0[0].to_string();
    assert!(msg.contains("armed_zone[1].schedule") && msg.contains("HH:MM-HH:MM"), "{msg}");
}

/// Site time zones with their daylight-saving rules: each zone's offset in January and July 2026
/// (from the IANA rules), then every hour of 2026 against glibc's own reading of the same database
/// (`date`, an implementation independent of ours). The hand-made reader this replaced had
/// Asia/Dubai at UTC−4, America/Sao_Paulo at +3 and no daylight saving at all.
#[test]
fn site_time_zones_follow_the_time_zone_database_across_daylight_saving() {
    use tianwang::clock::SiteZone;
    let jan = 1_768_478_400_000; // 2026-01-15 12:00 UTC
    let jul = 1_784_116_800_000; // 2026-07-15 12:00 UTC
    let zones: [(&str, i32, i32); 12] = [
        ("Asia/Shanghai", 480, 480),
        ("Asia/Urumqi", 360, 360),
        ("Asia/Dubai", 240, 240),
        ("America/Sao_Paulo", -180, -180),
        ("Europe/Helsinki", 120, 180),
        ("Europe/London", 0, 60),
        ("America/New_York", -300, -240),
        ("America/St_Johns", -210, -150),
        ("Australia/Sydney", 660, 600),
        ("Asia/Kolkata", 330, 330),
        ("Asia/Kathmandu", 345, 345),
        ("Pacific/Chatham", 825, 765),
    ];
    let hours: Vec<i64> = (0..365 * 24).map(|h| 1_767_225_600_000 + h * 3_600_000).collect(); // 2026, hourly
    let list = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(list.path(), hours.iter().map(|t| format!("@{}\n", t / 1000)).collect::<String>()).unwrap();
    for (name, winter, summer) in zones {
        let z = SiteZone::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((z.offset_min_at(jan), z.offset_min_at(jul)), (winter, summer), "{name}");
        let out = std::process::Command::new("date")
            .env("TZ", name)
            .arg("-f")
            .arg(list.path())
            .arg("+%z")
            .output()
            .expect("date (coreutils)");
        assert!(out.status.success(), "date: {}", String::from_utf8_lossy(&out.stderr));
        let glibc: Vec<i32> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let sign = if l.starts_with('-') { -1 } else { 1 };
                sign * (l[1..3].parse::<i32>().unwrap() * 60 + l[3..5].parse::<i32>().unwrap())
            })
            .collect();
        assert_eq!(glibc.len(), hours.len(), "{name}");
        for (t, g) in hours.iter().zip(&glibc) {
            assert_eq!(z.offset_min_at(*t), *g, "{name} at {t}");
        }
    }
    // The change itself: Helsinki goes from +02:00 to +03:00 at 01:00 UTC on 29 March 2026.
    let z = SiteZone::parse("Europe/Helsinki").unwrap();
    let change = 1_774_746_000_000;
    assert_eq!((z.offset_min_at(change - 60_000), z.offset_min_at(change)), (120, 180));
    assert_eq!(z.local_minute_of_day(change - 60_000), 2 * 60 + 59);
    assert_eq!(z.local_minute_of_day(change), 4 * 60);
    // Fixed offsets and UTC; what is not a zone is refused with the reason.
    assert_eq!(SiteZone::parse("+05:30").unwrap().offset_min_at(jul), 330);
    assert_eq!(SiteZone::parse("-03:00").unwrap().offset_min_at(jan), -180);
    assert_eq!(SiteZone::parse("UTC").unwrap().offset_min_at(jul), 0);
    for bad in ["Asia/Nowhere", "Beijing", "+15:00", "+8:00", "", "../../etc/passwd"] {
        assert!(SiteZone::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn health_sampling_interval_is_read_and_checked() {
    let cams = camera(&[("profile", Some("\"health\"")), ("sample_every_s", Some("30"))], "");
    let dir = config_dir(&[("site.toml", SITE), ("cams.toml", &cams)]);
    let cfg = load_dir(dir.path()).expect("valid");
    assert_eq!(cfg.cameras[0].sample_every_s, Some(30.0));
    let spec = tianwang::ingest::IngestSpec::from_config(&cfg.cameras[0], 10.0);
    assert_eq!(spec.sample_every, std::time::Duration::from_secs(30));
    // Without the key: the quality sampling interval the caller passes.
    let cams = camera(&[("profile", Some("\"health\""))], "");
    let dir = config_dir(&[("site.toml", SITE), ("cams.toml", &cams)]);
    let cfg = load_dir(dir.path()).expect("valid");
    let spec = tianwang::ingest::IngestSpec::from_config(&cfg.cameras[0], 7.5);
    assert_eq!(spec.sample_every, std::time::Duration::from_millis(7500));
    expect_one(
        &camera(&[("sample_every_s", Some("0.2"))], ""),
        "sample_every_s",
        "camera[cam-1].sample_every_s",
        "out of range [1, 3600] s",
    );
}

#[test]
fn gb28181_sections_are_checked_with_every_error_located() {
    let site = format!(
        "{SITE}\n[gb28181]\nid = \"4101000000200000001\"\ndomain = \"41010\"\nlisten = \"nowhere\"\n\
         heartbeat_count = 0\npassword_env = \"TIANWANG_NO_SUCH_VARIABLE\"\n\
         media_ip = \"somewhere\"\nmedia_ports = \"30010-30000\"\ninvite_timeout_s = 0\n\
         [[gb28181_device]]\nid = \"99010000001180000001\"\nowner = \"nobody\"\nstream_tcp = \"both\"\n\
         [[gb28181_device]]\nid = \"41010000001180000002\"\npassword_file = \"missing.secret\"\n\
         [[gb28181_device]]\nid = \"41010000001180000002\"\n"
    );
    let dir = config_dir(&[("site.toml", &site)]);
    let errs: Vec<String> = match load_dir(dir.path()) {
        Ok(_) => panic!("must not load"),
        Err(e) => e.0.iter().map(|e| e.to_string().replace(&format!("{}/", dir.path().display()), "")).collect(),
    };
    // The n-th `key = …` line after [gb28181] (the grid cells above have ids too).
    let start = site.lines().position(|l| l == "[gb28181]").unwrap();
    let line = |key: &str, nth: usize| {
        let found = site.lines().enumerate().skip(start).filter(|(_, l)| l.starts_with(&format!("{key} =")));
        found.map(|(i, _)| i + 1).nth(nth).unwrap()
    };
    for (key, nth, field, needle) in [
        ("id", 0, "gb28181.id", "exactly 20 digits"),
        ("domain", 0, "gb28181.domain", "10 digits"),
        ("listen", 0, "gb28181.listen", "an address and port"),
        ("heartbeat_count", 0, "gb28181.heartbeat_count", ""),
        ("password_env", 0, "gb28181.password_env", "TIANWANG_NO_SUCH_VARIABLE is not set"),
        ("media_ip", 0, "gb28181.media_ip", "an IP address"),
        ("media_ports", 0, "gb28181.media_ports", "a port range"),
        ("invite_timeout_s", 0, "gb28181.invite_timeout_s", ""),
        ("stream_tcp", 0, "gb28181_device[99010000001180000001].stream_tcp", "\"passive\" (the device connects to us)"),
        ("id", 1, "gb28181_device[99010000001180000001].id", "not a province code"),
        ("owner", 0, "gb28181_device[99010000001180000001].owner", ""),
        ("password_file", 0, "gb28181_device[41010000001180000002].password_file", "cannot be read"),
        ("id", 3, "gb28181_device[41010000001180000002].id", "listed twice"),
    ] {
        let want = format!("site.toml:{}: {field}: ", line(key, nth));
        assert!(errs.iter().any(|e| e.starts_with(&want) && e.contains(needle)), "{want}…{needle} not in {errs:#?}");
    }
    assert_eq!(errs.len(), 13, "{errs:#?}");
    // Devices without [gb28181] have nothing to listen for them.
    let dir = config_dir(&[("site.toml", &format!("{SITE}\n[[gb28181_device]]\nid = \"41010000001180000002\"\n"))]);
    let e = load_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("devices are listed but there is no [gb28181] table"), "{e}");
}

/// `motion = "onvif"`: the device service defaults to the stream's host on port 80, `onvif_url`
/// names another; the detector's cameras are left as they were.
#[test]
fn motion_from_onvif_events() {
    use tianwang::config::MotionSource;
    let cams = camera(&[("motion", Some("\"onvif\""))], "")
        + &camera(
            &[
                ("id", Some("\"cam-2\"")),
                ("motion", Some("\"onvif\"")),
                ("onvif_url", Some("\"http://10.1.2.4:8000\"")),
            ],
            "",
        )
        + &camera(&[("id", Some("\"cam-3\""))], "");
    let dir = config_dir(&[("site.toml", SITE), ("cams.toml", &cams)]);
    let cfg = load_dir(dir.path()).expect("valid");
    let device = |i: usize| match &cfg.cameras[i].motion {
        MotionSource::Onvif { device_url } => device_url.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(device(0), "http://10.1.2.3/onvif/device_service");
    assert_eq!(device(1), "http://10.1.2.4:8000/onvif/device_service");
    assert_eq!(cfg.cameras[2].motion, MotionSource::Detector);
}

#[test]
fn bad_motion_source() {
    let cams = camera(&[("motion", Some("\"camera\""))], "");
    expect_one(&cams, "motion", "camera[cam-1].motion", "expected one of detector, onvif, off");
    let cams = camera(&[("onvif_url", Some("\"http://10.1.2.3\""))], "");
    expect_one(&cams, "onvif_url", "camera[cam-1].onvif_url", "only with motion = \"onvif\"");
    let cams = camera(&[("motion", Some("\"onvif\"")), ("onvif_url", Some("\"http://admin:hunter2@10.1.2.3/\""))], "");
    expect_one(&cams, "onvif_url", "camera[cam-1].onvif_url", "carries credentials");
    assert!(!errors_for(&cams)[0].contains("hunter2"), "the password must not be echoed");
    let cams = camera(&[("motion", Some("\"onvif\"")), ("onvif_url", Some("\"https://10.1.2.3/\""))], "");
    expect_one(&cams, "onvif_url", "camera[cam-1].onvif_url", "https is not built in");
    let gb = "\"gb28181://41010000001180000001/41010000001310000001\"";
    let cams = camera(&[("url", Some(gb)), ("motion", Some("\"onvif\""))], "");
    expect_one(&cams, "motion", "camera[cam-1].motion", "give the device service as onvif_url");
}

/// Device motion is for the whole view: a motion zone or an armed zone naming one on such a
/// camera is refused (it would never apply or fire); arming `*` is fine.
#[test]
fn device_motion_has_no_zones() {
    let cams = camera(&[("motion", Some("\"onvif\""))], "");
    let site = format!(
        "{SITE}\n[[motion_zone]]\ncamera = \"cam-1\"\nname = \"yard\"\npoints = [[0, 0], [1, 0], [1, 1]]\n\
         [[armed_zone]]\ncamera = \"cam-1\"\nzone = \"yard\"\n"
    );
    let dir = config_dir(&[("site.toml", &site), ("cams.toml", &cams)]);
    let errs: Vec<String> = load_dir(dir.path()).expect_err("zones").0.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(errs.iter().all(|e| e.contains("cams.toml:2: camera[cam-1].motion: ")), "{errs:#?}");
    assert!(errs.iter().any(|e| e.contains("[[motion_zone]] \"yard\" is not applied")), "{errs:#?}");
    assert!(errs.iter().any(|e| e.contains("would never fire; arm zone \"*\"")), "{errs:#?}");
    let site = format!("{SITE}\n[[armed_zone]]\ncamera = \"cam-1\"\n");
    let dir = config_dir(&[("site.toml", &site), ("cams.toml", &cams)]);
    load_dir(dir.path()).expect("arming the whole view");
}

/// `[[desk]]`: desks load with their cells; every problem is located and named at once (a cell
/// that is not a grid cell, a cell of two desks, a desk without cells, a bad or repeated id); a
/// desk outside site.toml is refused.
#[test]
fn duty_desks_load_and_their_errors_are_located() {
    let good = format!(
        "{SITE}\n[[desk]]\nid = \"d-station\"\nname = \"Station desk\"\ncells = [\"g1\"]\n\n[[desk]]\nid = \"d-comm\"\ncells = [\"g2\"]\n"
    );
    let dir = config_dir(&[("site.toml", &good), ("cams.toml", &camera(&[], ""))]);
    let cfg = load_dir(dir.path()).expect("valid");
    let desks: Vec<(&str, &str, Vec<String>)> =
        cfg.desks.iter().map(|d| (d.id.as_str(), d.name.as_str(), d.cells.clone())).collect();
    assert_eq!(
        desks,
        vec![("d-station", "Station desk", vec!["g1".to_string()]), ("d-comm", "d-comm", vec!["g2".to_string()])]
    );

    let bad = format!(
        "{SITE}\n[[desk]]\nid = \"d-1\"\ncells = [\"g1\", \"g9\"]\n\n[[desk]]\nid = \"d-2\"\ncells = [\"g1\"]\n\n\
         [[desk]]\nid = \"d-3\"\n\n[[desk]]\nid = \"d 4\"\ncells = [\"g2\"]\n\n[[desk]]\nid = \"d-1\"\ncells = []\n"
    );
    let dir = config_dir(&[("site.toml", &bad), ("cams.toml", &camera(&[], ""))]);
    let errs: Vec<String> = load_dir(dir.path()).unwrap_err().0.iter().map(|e| e.to_string()).collect();
    let has = |field: &str, needle: &str| {
        assert!(
            errs.iter().any(|e| e.contains(&format!(": {field}: ")) && e.contains(needle)),
            "{field} {needle}: {errs:#?}"
        )
    };
    has("desk[d-1].cells", "\"g9\" is not a grid cell");
    has("desk[d-2].cells", "cell \"g1\" is already the responsibility of desk \"d-1\"");
    has("desk[d-3].cells", "missing");
    has("desk[d 4].id", "letters, digits");
    has("desk[d-1].id", "duplicate desk id");
    has("desk[d-1].cells", "empty");
    assert!(errs.iter().all(|e| e.contains("site.toml:")), "{errs:#?}");

    let elsewhere = "[[desk]]\nid = \"d-x\"\ncells = [\"g1\"]\n";
    let dir = config_dir(&[("site.toml", SITE), ("cams.toml", &camera(&[], "")), ("desks.toml", elsewhere)]);
    let errs = load_dir(dir.path()).unwrap_err().to_string();
    assert!(errs.contains("desks.toml") && errs.contains("desk"), "{errs}");
}
