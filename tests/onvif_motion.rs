//! ONVIF motion events as a camera's motion source, end to end: the whole app (ingest on, no
//! detector) subscribes to a device's events by pull point and turns its motion notifications into
//! `motion` events and, in armed zones, alerts.
//!
//! The device is written here from the ONVIF Core and Event specifications (the `onvif-server`
//! crate of tests/onvif.rs sends no notifications): a small HTTP SOAP 1.2 server with
//! GetSystemDateAndTime, GetServices, CreatePullPointSubscription, PullMessages (a long poll that
//! honours the request's Timeout and returns the queued notifications), Renew and Unsubscribe,
//! subscriptions addressed by a `SubscriptionId` reference parameter and ended by the device when
//! not renewed in time, and every request but the clock's checked for a WS-Security
//! UsernameToken with the right PasswordDigest. It shares no code with `src/onvif`.

mod common;

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::{TestApp, TestDb, until};
use serde_json::Value;
use sha1::{Digest, Sha1};

const USER: &str = "operator";
const PASSWORD: &str = "onvif-Pa55-never-in-a-log";

const SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
const WSSE: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const WSU: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const TEV: &str = "http://www.onvif.org/ver10/events/wsdl";
const NAMESPACES: &str = r#"xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tev="http://www.onvif.org/ver10/events/wsdl" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:wsa5="http://www.w3.org/2005/08/addressing" xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:tns1="http://www.onvif.org/ver10/topics" xmlns:ter="http://www.onvif.org/ver10/error""#;

/// Every log line of this test binary (all tests), to look for the password in.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug,sqlx=warn,hyper=info,h2=info,reqwest=info")
            .with_ansi(false)
            .with_writer(move || LogWriter(b.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The device

/// A subscription on the device: when it ends unless renewed, and its queued notifications.
struct Sub {
    expires: Instant,
    queue: VecDeque<String>,
}

#[derive(Default)]
struct Counters {
    creates: u64,
    renews: u64,
    unsubscribes: u64,
    pulls: u64,
    refused: u64,
}

struct Dev {
    password: String,
    /// The lifetime the device grants, whatever is asked.
    grant: Duration,
    port: u16,
    subs: HashMap<u64, Sub>,
    next_id: u64,
    /// The motion state (sent as `Initialized` to a new subscription).
    motion: bool,
    fault_next_pull: bool,
    /// The next PullMessages is answered with this instead.
    bad_next_pull: Option<Bad>,
    n: Counters,
}

#[derive(Clone, Copy)]
enum Bad {
    /// A web page, not SOAP.
    NotXml,
    /// 5 MiB of a SOAP answer.
    Huge,
}

#[derive(Clone)]
struct Device {
    dev: Arc<Mutex<Dev>>,
    wake: Arc<tokio::sync::Notify>,
}

impl Device {
    async fn start(password: &str, grant: Duration) -> Device {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let d = Device {
            dev: Arc::new(Mutex::new(Dev {
                password: password.into(),
                grant,
                port,
                subs: HashMap::new(),
                next_id: 1,
                motion: false,
                fault_next_pull: false,
                bad_next_pull: None,
                n: Counters::default(),
            })),
            wake: Arc::new(tokio::sync::Notify::new()),
        };
        let app = axum::Router::new().fallback(handle).with_state(d.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        d
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/onvif/device_service", self.dev.lock().unwrap().port)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Dev) -> T) -> T {
        f(&mut self.dev.lock().unwrap())
    }

    /// The camera's motion detection changes: a notification to every live subscription, on
    /// `topic` (the motion alarm or the cell motion detector).
    fn motion(&self, on: bool, topic: Topic) {
        self.with(|d| {
            d.motion = on;
            let note = notification(topic, on, "Changed");
            for s in d.subs.values_mut() {
                s.queue.push_back(note.clone());
            }
        });
        self.wake.notify_waiters();
    }

    /// A restart: every subscription forgotten.
    fn restart(&self) {
        self.with(|d| d.subs.clear());
        self.wake.notify_waiters();
    }

    fn live(&self) -> usize {
        self.with(|d| d.subs.len())
    }
}

#[derive(Clone, Copy)]
enum Topic {
    Alarm,
    Cell,
}

fn notification(topic: Topic, on: bool, op: &str) -> String {
    let (topic, source, item) = match topic {
        Topic::Alarm => {
            ("tns1:VideoSource/MotionAlarm", r#"<tt:SimpleItem Name="Source" Value="VideoSource_1"/>"#, "State")
        }
        Topic::Cell => (
            "tns1:RuleEngine/CellMotionDetector/Motion",
            r#"<tt:SimpleItem Name="VideoSourceConfigurationToken" Value="VS_1"/><tt:SimpleItem Name="VideoAnalyticsConfigurationToken" Value="VA_1"/><tt:SimpleItem Name="Rule" Value="MyMotionDetectorRule"/>"#,
            "IsMotion",
        ),
    };
    format!(
        r#"<wsnt:NotificationMessage><wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">{topic}</wsnt:Topic><wsnt:Message><tt:Message UtcTime="{}" PropertyOperation="{op}"><tt:Source>{source}</tt:Source><tt:Data><tt:SimpleItem Name="{item}" Value="{on}"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>"#,
        now()
    )
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn at(d: Duration) -> String {
    (chrono::Utc::now() + chrono::Duration::from_std(d).unwrap()).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn envelope(body: &str) -> Response {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><env:Envelope {NAMESPACES}><env:Body>{body}</env:Body></env:Envelope>"#
    );
    ([("content-type", "application/soap+xml; charset=utf-8")], xml).into_response()
}

fn fault(status: StatusCode, code: &str, subcode: &str, reason: &str) -> Response {
    let body = format!(
        r#"<env:Fault><env:Code><env:Value>env:{code}</env:Value><env:Subcode><env:Value>{subcode}</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">{reason}</env:Text></env:Reason></env:Fault>"#
    );
    let mut r = envelope(&body);
    *r.status_mut() = status;
    r
}

/// The text of the first element named `local` in namespace `ns`.
fn text_of(doc: &roxmltree::Document, ns: &str, local: &str) -> Option<String> {
    doc.descendants()
        .find(|n| n.tag_name().name() == local && n.tag_name().namespace() == Some(ns))
        .and_then(|n| n.text())
        .map(|t| t.trim().to_string())
}

/// The UsernameToken is the user's, with PasswordDigest = base64(SHA-1(nonce + created + password)).
fn signed_in(doc: &roxmltree::Document, password: &str) -> bool {
    let (Some(user), Some(digest), Some(nonce), Some(created)) = (
        text_of(doc, WSSE, "Username"),
        text_of(doc, WSSE, "Password"),
        text_of(doc, WSSE, "Nonce"),
        text_of(doc, WSU, "Created"),
    ) else {
        return false;
    };
    let Ok(nonce) = B64.decode(nonce) else { return false };
    let mut h = Sha1::new();
    h.update(&nonce);
    h.update(created.as_bytes());
    h.update(password.as_bytes());
    user == USER && B64.encode(h.finalize()) == digest
}

/// `PT<n>S` (and `PT<n>M`), as ONVIF clients write a PullMessages Timeout.
fn iso_seconds(s: &str) -> Option<f64> {
    let rest = s.strip_prefix("PT")?;
    if let Some(v) = rest.strip_suffix('S') {
        return v.parse().ok();
    }
    rest.strip_suffix('M')?.parse::<f64>().ok().map(|m| m * 60.0)
}

async fn handle(State(d): State<Device>, _headers: HeaderMap, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    let Ok(doc) = roxmltree::Document::parse(&text) else {
        return fault(StatusCode::BAD_REQUEST, "Sender", "ter:WellFormed", "not XML");
    };
    let Some(op) = doc
        .descendants()
        .find(|n| n.tag_name().name() == "Body" && n.tag_name().namespace() == Some(SOAP))
        .and_then(|b| b.first_element_child())
        .map(|n| n.tag_name().name().to_string())
    else {
        return fault(StatusCode::BAD_REQUEST, "Sender", "ter:InvalidArgVal", "no body");
    };
    if op == "GetSystemDateAndTime" {
        let t = chrono::Utc::now();
        use chrono::{Datelike, Timelike};
        return envelope(&format!(
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings><tt:UTCDateTime><tt:Time><tt:Hour>{}</tt:Hour><tt:Minute>{}</tt:Minute><tt:Second>{}</tt:Second></tt:Time><tt:Date><tt:Year>{}</tt:Year><tt:Month>{}</tt:Month><tt:Day>{}</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>",
            t.hour(),
            t.minute(),
            t.second(),
            t.year(),
            t.month(),
            t.day()
        ));
    }
    let (password, port) = d.with(|d| (d.password.clone(), d.port));
    if !signed_in(&doc, &password) {
        d.with(|d| d.n.refused += 1);
        return fault(StatusCode::BAD_REQUEST, "Sender", "ter:NotAuthorized", "Sender not Authorized");
    }
    let base = format!("http://127.0.0.1:{port}/onvif");
    let sub_id = text_of(&doc, TEV, "SubscriptionId").and_then(|v| v.parse::<u64>().ok());
    match op.as_str() {
        "GetServices" => envelope(&format!(
            "<tds:GetServicesResponse>\
             <tds:Service><tds:Namespace>http://www.onvif.org/ver10/device/wsdl</tds:Namespace><tds:XAddr>{base}/device_service</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>\
             <tds:Service><tds:Namespace>http://www.onvif.org/ver10/media/wsdl</tds:Namespace><tds:XAddr>{base}/media_service</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>\
             <tds:Service><tds:Namespace>http://www.onvif.org/ver10/events/wsdl</tds:Namespace><tds:XAddr>{base}/event_service</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>\
             </tds:GetServicesResponse>"
        )),
        "CreatePullPointSubscription" => {
            let (id, grant) = d.with(|d| {
                let id = d.next_id;
                d.next_id += 1;
                d.n.creates += 1;
                let mut queue = VecDeque::new();
                // A new subscription is told the state as it is (ONVIF's property events).
                queue.push_back(notification(Topic::Alarm, d.motion, "Initialized"));
                d.subs.insert(id, Sub { expires: Instant::now() + d.grant, queue });
                (id, d.grant)
            });
            envelope(&format!(
                "<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference><wsa5:Address>{base}/Subscription</wsa5:Address><wsa5:ReferenceParameters><tev:SubscriptionId>{id}</tev:SubscriptionId></wsa5:ReferenceParameters></tev:SubscriptionReference><wsnt:CurrentTime>{}</wsnt:CurrentTime><wsnt:TerminationTime>{}</wsnt:TerminationTime></tev:CreatePullPointSubscriptionResponse>",
                now(),
                at(grant)
            ))
        }
        "PullMessages" => pull(&d, &doc, sub_id).await,
        "Renew" => {
            let grant = d.with(|d| {
                d.n.renews += 1;
                let grant = d.grant;
                let s = sub_id.and_then(|id| d.subs.get_mut(&id))?;
                (s.expires > Instant::now()).then(|| {
                    s.expires = Instant::now() + grant;
                    grant
                })
            });
            match grant {
                Some(g) => envelope(&format!(
                    "<wsnt:RenewResponse><wsnt:TerminationTime>{}</wsnt:TerminationTime><wsnt:CurrentTime>{}</wsnt:CurrentTime></wsnt:RenewResponse>",
                    at(g),
                    now()
                )),
                None => unknown_subscription(),
            }
        }
        "Unsubscribe" => {
            let known = d.with(|d| {
                d.n.unsubscribes += 1;
                sub_id.and_then(|id| d.subs.remove(&id)).is_some()
            });
            if known { envelope("<wsnt:UnsubscribeResponse/>") } else { unknown_subscription() }
        }
        _ => fault(StatusCode::BAD_REQUEST, "Sender", "ter:ActionNotSupported", "not offered by this device"),
    }
}

fn unknown_subscription() -> Response {
    fault(StatusCode::BAD_REQUEST, "Sender", "ter:InvalidArgVal", "no such subscription (ended or unknown)")
}

/// PullMessages: the queued notifications, waiting up to the request's Timeout for one.
async fn pull(d: &Device, doc: &roxmltree::Document<'_>, id: Option<u64>) -> Response {
    let timeout = text_of(doc, TEV, "Timeout").and_then(|t| iso_seconds(&t)).unwrap_or(1.0);
    let limit = text_of(doc, TEV, "MessageLimit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(timeout.min(60.0));
    let (faulted, bad) = d.with(|d| {
        d.n.pulls += 1;
        (std::mem::take(&mut d.fault_next_pull), d.bad_next_pull.take())
    });
    if faulted {
        return fault(StatusCode::INTERNAL_SERVER_ERROR, "Receiver", "ter:Action", "event engine failure");
    }
    match bad {
        Some(Bad::NotXml) => return ([("content-type", "text/html")], "<html><body>Login</body>").into_response(),
        Some(Bad::Huge) => {
            let padding = "<!-- motion -->".repeat(5 << 20 >> 4);
            return envelope(&format!("<tev:PullMessagesResponse>{padding}</tev:PullMessagesResponse>"));
        }
        None => {}
    }
    loop {
        let wake = d.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let taken = d.with(|d| {
            let s = id.and_then(|id| d.subs.get_mut(&id))?;
            if s.expires <= Instant::now() {
                // Not renewed in time: the device ends it.
                d.subs.remove(&id?);
                return None;
            }
            let n = s.queue.len().min(limit);
            Some(s.queue.drain(..n).collect::<Vec<_>>())
        });
        let Some(msgs) = taken else { return unknown_subscription() };
        if !msgs.is_empty() || tokio::time::Instant::now() >= deadline {
            let termination = d.with(|d| id.and_then(|id| d.subs.get(&id)).map(|s| s.expires - Instant::now()));
            return envelope(&format!(
                "<tev:PullMessagesResponse><tev:CurrentTime>{}</tev:CurrentTime><tev:TerminationTime>{}</tev:TerminationTime>{}</tev:PullMessagesResponse>",
                now(),
                at(termination.unwrap_or_default()),
                msgs.concat()
            ));
        }
        let _ = tokio::time::timeout_at(deadline, wake).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The app

/// A camera entry whose motion comes from `device` (password from `pw_file`).
fn camera(id: &str, device: &str, motion: &str) -> String {
    let onvif = if motion == "onvif" { format!("onvif_url = \"{device}\"\n") } else { String::new() };
    format!(
        "[[camera]]\nid = \"{id}\"\nname = \"{id}\"\nurl = \"rtsp://127.0.0.1:9/{id}\"\nusername = \"{USER}\"\n\
         password_file = \"camera.pw\"\nlon = 113.6\nlat = 34.7\nbearing_deg = 0\nhfov_deg = 90\n\
         resolution = \"1920x1080\"\nowner = \"public\"\nmounting_height_m = 5\nkind = \"street\"\nprofile = \"health\"\n\
         motion = \"{motion}\"\n{onvif}"
    )
}

fn site(extra: &str) -> String {
    format!("[site]\nname = \"S\"\ntimezone = \"UTC\"\n{extra}")
}

async fn json(app: &TestApp, path: &str) -> Value {
    let (status, v, text) = app.get(path).await;
    assert_eq!(status, 200, "{path}: {text}");
    v
}

/// The camera's subscription as `/api/v1/stats` shows it.
async fn subscription(app: &TestApp, camera: &str) -> Value {
    let s = json(app, "/api/v1/stats").await;
    s["onvif_motion"].as_array().into_iter().flatten().find(|c| c["camera"] == camera).cloned().unwrap_or_default()
}

async fn motion_events(app: &TestApp, camera: &str) -> Vec<Value> {
    let ev = json(app, "/api/v1/events?kind=motion&limit=1000").await;
    ev.as_array().unwrap().iter().filter(|e| e["camera_id"] == camera).cloned().collect()
}

async fn motion_alerts(app: &TestApp, camera: &str) -> Vec<Value> {
    let al = json(app, "/api/v1/alerts?kind=motion").await;
    let al = al.get("items").or(al.get("alerts")).cloned().unwrap_or(al);
    al.as_array()
        .unwrap()
        .iter()
        .filter(|a| a["cameras"].as_array().unwrap().iter().any(|c| c == camera))
        .cloned()
        .collect()
}

async fn subscribed(app: &TestApp, camera: &str, n: u64) {
    until(20, &format!("{camera} subscribed ({n})"), async || {
        let s = subscription(app, camera).await;
        (s["state"] == "subscribed" && s["subscriptions"].as_u64() == Some(n)).then_some(())
    })
    .await;
}

/// Motion at an armed camera raises one event per start of motion (repeated "true"s and the
/// other motion topic during it are the same motion) and an alert; motion at a camera armed only
/// at another time of day, and at one not armed, raises events and no alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_motion_raises_events_and_alerts_in_armed_zones_only() {
    let _ = logs();
    let (gate, yard, lane) = tokio::join!(
        Device::start(PASSWORD, Duration::from_secs(60)),
        Device::start(PASSWORD, Duration::from_secs(60)),
        Device::start(PASSWORD, Duration::from_secs(60))
    );
    let hour = chrono::Timelike::hour(&chrono::Utc::now());
    let elsewhen = format!("{:02}:00-{:02}:00", (hour + 2) % 24, (hour + 3) % 24);
    let site = site(&format!(
        "[[armed_zone]]\ncamera = \"gate\"\n[[armed_zone]]\ncamera = \"yard\"\nschedule = [\"{elsewhen}\"]\n"
    ));
    let cams = camera("gate", &gate.url(), "onvif")
        + &camera("yard", &yard.url(), "onvif")
        + &camera("lane", &lane.url(), "onvif");
    let dir = common::config_dir(&[("site.toml", &site), ("cams.toml", &cams), ("camera.pw", PASSWORD)]);
    let db = TestDb::new(common::Engine::Sqlite).await;
    let app = TestApp::spawn_live(dir.path(), &db).await;
    for c in ["gate", "yard", "lane"] {
        subscribed(&app, c, 1).await;
    }
    // Outside its schedule, and not armed: events, no alerts.
    yard.motion(true, Topic::Alarm);
    lane.motion(true, Topic::Cell);
    until(20, "yard and lane motion events", async || {
        let (y, l) = (motion_events(&app, "yard").await, motion_events(&app, "lane").await);
        (y.len() == 1 && l.len() == 1).then_some(())
    })
    .await;
    // Armed: the same motion told three times over two topics is one event, and an alert.
    gate.motion(true, Topic::Alarm);
    gate.motion(true, Topic::Alarm);
    gate.motion(true, Topic::Cell);
    let alert = until(20, "a motion alert at the gate", async || motion_alerts(&app, "gate").await.pop()).await;
    assert_eq!(alert["detail"]["zone"], "*", "{alert}");
    until(20, "the gate's repeats pulled", async || {
        let s = subscription(&app, "gate").await;
        (s["motion"] == true && gate.with(|d| d.subs.values().all(|s| s.queue.is_empty()))).then_some(())
    })
    .await;
    // Motion ends on both topics, then starts again: a second event.
    gate.motion(false, Topic::Alarm);
    gate.motion(false, Topic::Cell);
    until(20, "the gate still", async || (subscription(&app, "gate").await["motion"] == false).then_some(())).await;
    assert_eq!(motion_events(&app, "gate").await.len(), 1, "one motion, one event");
    gate.motion(true, Topic::Cell);
    let events = until(20, "a second gate event", async || {
        let e = motion_events(&app, "gate").await;
        (e.len() == 2).then_some(e)
    })
    .await;
    for e in &events {
        assert_eq!(e["payload"]["zone"], "*", "{e}");
        assert_eq!(e["payload"]["boxes"], serde_json::json!([]), "{e}");
    }
    // Every motion event applied by the alert service, and none raised an alert but the gate's.
    until(20, "the alert service caught up", async || {
        let s = json(&app, "/api/v1/alerts/stats").await;
        (s["service"]["lag_bulk"] == 0 && s["service"]["events_bulk"].as_u64() >= Some(4)).then_some(())
    })
    .await;
    assert!(motion_alerts(&app, "yard").await.is_empty(), "yard is armed at {elsewhen} only");
    assert!(motion_alerts(&app, "lane").await.is_empty(), "lane is not armed");
    let s = subscription(&app, "gate").await;
    assert_eq!(s["motion_events"], 2, "{s}");
    assert!(s["last_notification_ms"].as_i64().is_some(), "{s}");
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tianwang_onvif_motion_events_total{camera=\"gate\"} 2"), "{metrics}");
    assert!(metrics.contains("tianwang_onvif_motion_subscribed{camera=\"lane\"} 1"), "{metrics}");
    app.stop().await;
}

/// A device that grants short subscriptions has them renewed and keeps them; a fault on
/// PullMessages and a restart that forgets the subscription each end it, a new one is made after
/// a back-off, and the next motion still arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_renewed_and_made_again_when_the_device_drops_them() {
    let _ = logs();
    let dev = Device::start(PASSWORD, Duration::from_secs(2)).await;
    let site = site("[[armed_zone]]\ncamera = \"door\"\n");
    let dir = common::config_dir(&[
        ("site.toml", &site),
        ("cams.toml", &camera("door", &dev.url(), "onvif")),
        ("camera.pw", PASSWORD),
    ]);
    let db = TestDb::new(common::Engine::Sqlite).await;
    let app = TestApp::spawn_live(dir.path(), &db).await;
    subscribed(&app, "door", 1).await;
    // Granted 2 s at a time: kept alive by Renew, not by new subscriptions.
    until(20, "two renewals", async || (dev.with(|d| d.n.renews) >= 2).then_some(())).await;
    let s = subscription(&app, "door").await;
    assert_eq!(s["subscriptions"], 1, "renewed, not made again: {s}");
    assert!(s["renewals"].as_u64() >= Some(2), "{s}");
    assert_eq!(dev.with(|d| d.n.creates), 1);

    // The device faults on PullMessages.
    dev.with(|d| d.fault_next_pull = true);
    dev.wake.notify_waiters();
    subscribed(&app, "door", 2).await;
    let s = subscription(&app, "door").await;
    let err = s["last_error"].as_str().unwrap_or_default();
    assert!(err.contains("PullMessages") && err.contains("event engine failure"), "{s}");
    dev.motion(true, Topic::Alarm);
    until(20, "motion after the fault", async || (motion_events(&app, "door").await.len() == 1).then_some(())).await;
    dev.motion(false, Topic::Alarm);
    until(20, "still again", async || (subscription(&app, "door").await["motion"] == false).then_some(())).await;

    // The device restarts and forgets every subscription.
    dev.restart();
    subscribed(&app, "door", 3).await;

    // Answers that are no SOAP, or too large to read: each named, and subscribed again.
    for (bad, n, said) in [(Bad::NotXml, 4, "is not an ONVIF service"), (Bad::Huge, 5, "at most 4194304 are read")] {
        dev.with(|d| d.bad_next_pull = Some(bad));
        subscribed(&app, "door", n).await;
        let s = subscription(&app, "door").await;
        assert!(s["last_error"].as_str().is_some_and(|e| e.contains(said)), "{said}: {s}");
    }
    dev.motion(true, Topic::Alarm);
    until(20, "motion after the restart", async || (motion_events(&app, "door").await.len() == 2).then_some(())).await;
    until(20, "two alerts' worth of motion", async || {
        motion_alerts(&app, "door").await.first().and_then(|a| (a["count"].as_i64() >= Some(2)).then_some(()))
    })
    .await;
    app.stop().await;
}

/// A wrong password is named in the camera's subscription state, retried with back-off, and the
/// password is in no log line, API answer or metric; the device only ever saw digests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_named_and_never_shown() {
    let logs = logs();
    let dev = Device::start("the-device-wants-another", Duration::from_secs(60)).await;
    let dir = common::config_dir(&[
        ("site.toml", &site("")),
        ("cams.toml", &camera("porch", &dev.url(), "onvif")),
        ("camera.pw", PASSWORD),
    ]);
    let db = TestDb::new(common::Engine::Sqlite).await;
    let app = TestApp::spawn_live(dir.path(), &db).await;
    let s = until(20, "the refusal shown", async || {
        let s = subscription(&app, "porch").await;
        (s["state"] == "retrying" && dev.with(|d| d.n.refused) >= 2).then_some(s)
    })
    .await;
    let err = s["last_error"].as_str().unwrap_or_default();
    assert!(err.contains("wrong user name or password") && err.contains(&dev.url()), "{s}");
    assert!(s["next_attempt_ms"].as_i64() > s["last_error_ms"].as_i64(), "{s}");
    assert_eq!(s["subscriptions"], 0);
    assert_eq!(dev.with(|d| d.n.creates), 0);
    let stats = app.get("/api/v1/stats").await.2;
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tianwang_onvif_motion_subscribed{camera=\"porch\"} 0"), "{metrics}");
    let cams = app.get("/api/v1/cameras/porch").await.2;
    app.stop().await;
    let log = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(log.contains("porch") && log.contains("wrong user name or password"), "the refusal is logged:\n{log}");
    for (what, text) in [("stats", &stats), ("metrics", &metrics), ("camera", &cams), ("log", &log)] {
        assert!(!text.contains(PASSWORD), "the password is in the {what}");
    }
}

/// Unsubscribe is sent when a camera stops taking its motion from the device (a reload) and, for
/// the others, on shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribes_on_reload_and_shutdown() {
    let _ = logs();
    let (a, b) = tokio::join!(
        Device::start(PASSWORD, Duration::from_secs(60)),
        Device::start(PASSWORD, Duration::from_secs(60))
    );
    let files = |motion_a: &str| camera("north", &a.url(), motion_a) + &camera("south", &b.url(), "onvif");
    let dir = common::config_dir(&[("site.toml", &site("")), ("cams.toml", &files("onvif")), ("camera.pw", PASSWORD)]);
    let db = TestDb::new(common::Engine::Sqlite).await;
    let app = TestApp::spawn_live(dir.path(), &db).await;
    subscribed(&app, "north", 1).await;
    subscribed(&app, "south", 1).await;
    assert_eq!((a.live(), b.live()), (1, 1));
    std::fs::write(dir.path().join("cams.toml"), files("detector")).unwrap();
    let (status, _, text) = app.post("/api/v1/admin/reload", &serde_json::json!({})).await;
    assert_eq!(status, 200, "{text}");
    until(20, "north unsubscribed", async || (a.live() == 0).then_some(())).await;
    assert_eq!(a.with(|d| d.n.unsubscribes), 1);
    let s = json(&app, "/api/v1/stats").await;
    let cams: Vec<&Value> = s["onvif_motion"].as_array().unwrap().iter().map(|c| &c["camera"]).collect();
    assert_eq!(cams, ["south"], "{s}");
    app.stop().await;
    assert_eq!(b.with(|d| d.n.unsubscribes), 1, "south unsubscribed on shutdown");
    assert_eq!(b.live(), 0);
}
