//! MQTT: a subscriber on the local Mosquitto (127.0.0.1:1883) receives the alerts the app raises.

mod common;

use std::time::Duration;

use common::{Engine, TestApp, TestDb, config_dir};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_the_local_broker_receives_the_alerts() {
    let prefix = format!("tianwang-test-{}", std::process::id());
    // Subscribe first and wait for the broker to confirm.
    let mut opts = MqttOptions::new(format!("{prefix}-sub"), "127.0.0.1", 1883);
    opts.set_keep_alive(Duration::from_secs(10));
    let (sub, mut events) = AsyncClient::new(opts, 64);
    sub.subscribe(format!("{prefix}/alerts/#"), QoS::AtLeastOnce).await.unwrap();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.poll())
            .await
            .expect("the local Mosquitto answers on 127.0.0.1:1883")
            .expect("MQTT connection");
        if let Event::Incoming(Packet::SubAck(_)) = ev {
            break;
        }
    }
    let site = format!(
        "[site]\nname = \"MQTT city\"\ntimezone = \"Asia/Shanghai\"\n\n[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\ntopic_prefix = \"{prefix}\"\nclient_id = \"{prefix}-pub\"\n"
    );
    let dir = config_dir(&[("site.toml", &site)]);
    let db = TestDb::new(Engine::Sqlite).await;
    let app = TestApp::spawn(dir.path(), &db).await;
    for id in ["m-1", "m-2"] {
        let (s, _, body) = app.post("/api/v1/alarms", &json!({"alarm_id": id, "lon": 113.665, "lat": 34.757})).await;
        assert_eq!(s, 201, "{body}");
    }
    let mut got = Vec::new();
    while got.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(20), events.poll()).await.expect("alerts published").unwrap();
        if let Event::Incoming(Packet::Publish(p)) = ev {
            let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
            assert_eq!(p.topic, format!("{prefix}/alerts/alarm/critical"));
            got.push(v["alert"]["title"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(got, ["anti-robbery alarm: m-1", "anti-robbery alarm: m-2"]);
    app.stop().await;
}
