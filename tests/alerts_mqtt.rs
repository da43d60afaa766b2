//! MQTT: a subscriber on a private Mosquitto receives the alerts the app raises, on their topic,
//! in order; and when the broker stops and starts again in the middle of a burst, every alert
//! still arrives (the publisher moves its position only on the broker's PUBACK).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::mqtt::{Broker, subscribe};
use common::{Engine, TestApp, TestDb, config_dir};
use serde_json::{Value, json};

async fn app(broker: &Broker, prefix: &str, engine: Engine) -> (TestApp, TestDb, tempfile::TempDir) {
    let site = format!(
        "[site]\nname = \"MQTT city\"\ntimezone = \"Asia/Shanghai\"\n\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n\
         topic_prefix = \"{prefix}\"\nclient_id = \"{prefix}-pub\"\n",
        broker.port
    );
    let dir = config_dir(&[("site.toml", &site)]);
    let db = TestDb::new(engine).await;
    let app = TestApp::spawn(dir.path(), &db).await;
    (app, db, dir)
}

async fn alarm(app: &TestApp, id: &str) {
    let (s, _, body) = app.post("/api/v1/alarms", &json!({"alarm_id": id, "lon": 113.665, "lat": 34.757})).await;
    assert_eq!(s, 201, "{body}");
}

async fn a_subscriber_receives_the_alerts_on_their_topic(engine: Engine) {
    let broker = Broker::start();
    let prefix = "tianwang-test";
    let mut rx = subscribe(broker.port, "sub-1", &format!("{prefix}/alerts/#")).await;
    let (app, _db, _dir) = app(&broker, prefix, engine).await;
    for id in ["m-1", "m-2"] {
        alarm(&app, id).await;
    }
    let mut got = Vec::new();
    while got.len() < 2 {
        let v: Value =
            tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("alerts published").unwrap();
        assert_eq!(v["_topic"], format!("{prefix}/alerts/alarm/critical"));
        got.push(v["alert"]["title"].as_str().unwrap().to_string());
    }
    assert_eq!(got, ["anti-robbery alarm: m-1", "anti-robbery alarm: m-2"]);
    app.stop().await;
}

async fn a_broker_stopped_and_started_mid_burst_loses_no_alert(engine: Engine) {
    let mut broker = Broker::start();
    let prefix = "tianwang-restart";
    let mut rx = subscribe(broker.port, "sub-restart", &format!("{prefix}/alerts/#")).await;
    let (app, _db, _dir) = app(&broker, prefix, engine).await;
    // Seqs of raised alerts received, and how many times each.
    let mut got: BTreeMap<i64, usize> = BTreeMap::new();
    for i in 0..50 {
        alarm(&app, &format!("r-{i}")).await;
    }
    while got.len() < 50 {
        receive(&mut rx, &mut got).await;
    }
    // The broker goes away in the middle of the burst; the alerts keep coming.
    broker.stop();
    for i in 50..150 {
        alarm(&app, &format!("r-{i}")).await;
    }
    let (_, st, _) = app.get("/api/v1/alerts/stats").await;
    assert_eq!(st["mqtt"]["connected"], false, "{st}");
    broker.resume();
    for i in 150..200 {
        alarm(&app, &format!("r-{i}")).await;
    }
    while got.len() < 200 {
        receive(&mut rx, &mut got).await;
    }
    let seqs: Vec<i64> = got.keys().copied().collect();
    assert_eq!(seqs.len(), 200);
    let latest = app.registry.latest_feed_seq().await.unwrap();
    assert_eq!(seqs.last(), Some(&latest), "every change up to the newest");
    // The publisher's position is what the broker acknowledged: the newest change, once it has.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while app.registry.acked("mqtt").await.unwrap() != Some(latest) {
        assert!(std::time::Instant::now() < deadline, "the MQTT position reaches the newest change");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let twice = got.values().filter(|n| **n > 1).count();
    eprintln!("broker stopped after 50 of 200 alerts and started again: 200 of 200 arrived, {twice} twice (QoS 1)");
    app.stop().await;
}

async fn receive(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>, got: &mut BTreeMap<i64, usize>) {
    let v = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await.expect("MQTT delivers").unwrap();
    *got.entry(v["seq"].as_i64().unwrap()).or_default() += 1;
}

on_both_engines!(
    a_subscriber_receives_the_alerts_on_their_topic,
    a_broker_stopped_and_started_mid_burst_loses_no_alert
);
