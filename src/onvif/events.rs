//! ONVIF events by pull-point subscription (CreatePullPointSubscription, PullMessages, Renew,
//! Unsubscribe), and what the motion topics say: `tns1:VideoSource/MotionAlarm` (`State`) and
//! `tns1:RuleEngine/CellMotionDetector/Motion` (`IsMotion`).

use std::time::Duration;

use roxmltree::Node;

use super::device::{Device, parse};
use super::soap::OnvifError;
use super::xml::{self, TEV, TT, WSA5, WSNT};

/// The ONVIF topic namespace (`tns1:`).
pub const TOPICS: &str = "http://www.onvif.org/ver10/topics";

/// A pull-point subscription: where it is, and the reference parameters every request to it
/// carries in its header (devices route by them, e.g. a `SubscriptionId`).
pub struct PullPoint {
    dev: Device,
    /// The subscription manager's address.
    pub address: String,
    reference: String,
    /// When the device will end the subscription unless renewed, as it said.
    pub termination_time: Option<String>,
    /// How long the subscription had left by the device's last answer: its `TerminationTime`
    /// minus its `CurrentTime` (both by the device's clock, so no offset matters). `None` when
    /// the answer did not say.
    pub time_left: Option<Duration>,
}

/// One notification: its topic (`tns1:…` for ONVIF's topics), when, how the property changed,
/// and its source and data items.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Notification {
    pub topic: String,
    pub utc_time: Option<String>,
    /// `Initialized`, `Changed` or `Deleted` for property events.
    pub property_operation: Option<String>,
    pub source: Vec<(String, String)>,
    pub data: Vec<(String, String)>,
}

impl Notification {
    /// Motion on or off, for the two motion topics; `None` for any other.
    pub fn motion(&self) -> Option<bool> {
        let item = match self.topic.as_str() {
            "tns1:VideoSource/MotionAlarm" => "State",
            "tns1:RuleEngine/CellMotionDetector/Motion" => "IsMotion",
            _ => return None,
        };
        let v = self.data.iter().find(|(k, _)| k == item)?.1.to_ascii_lowercase();
        Some(v == "true" || v == "1")
    }

    /// A source item's value (e.g. `VideoSourceConfigurationToken`, `Rule`).
    pub fn source_item(&self, name: &str) -> Option<&str> {
        self.source.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// An ISO 8601 duration in whole seconds (`PT60S`).
fn duration(d: Duration) -> String {
    format!("PT{}S", d.as_secs().max(1))
}

impl PullPoint {
    /// CreatePullPointSubscription at the events service `events`, for `lifetime` (renew before
    /// it ends). No topic filter: devices differ in the filters they accept; `Notification::motion`
    /// picks the motion topics out.
    pub async fn create(dev: &Device, events: &str, lifetime: Duration) -> Result<Self, OnvifError> {
        let op = "CreatePullPointSubscription";
        let body = format!(
            r#"<tev:CreatePullPointSubscription xmlns:tev="{TEV}"><tev:InitialTerminationTime>{}</tev:InitialTerminationTime></tev:CreatePullPointSubscription>"#,
            duration(lifetime)
        );
        let text = dev.call(events, op, TEV, &body, true).await?;
        let doc = parse(&text, events, op)?;
        let root = doc.root_element();
        let sref = xml::find(root, TEV, "SubscriptionReference").ok_or_else(|| OnvifError::Malformed {
            url: events.into(),
            op,
            what: "no SubscriptionReference".into(),
        })?;
        let address = sref
            .children()
            .find(|c| c.is_element() && c.tag_name().name() == "Address")
            .and_then(xml::text)
            .map(|a| dev.rebase(&a))
            .ok_or_else(|| OnvifError::Malformed { url: events.into(), op, what: "no subscription Address".into() })?;
        let reference = sref
            .children()
            .find(|c| c.is_element() && c.tag_name().name() == "ReferenceParameters")
            .map(|r| r.children().filter(Node::is_element).map(serialize).collect::<String>())
            .unwrap_or_default();
        let termination_time = xml::find(root, WSNT, "TerminationTime").and_then(xml::text);
        let time_left = time_left(root, WSNT);
        Ok(Self { dev: dev.clone(), address, reference, termination_time, time_left })
    }

    async fn call(&self, op: &'static str, action: &str, body: &str) -> Result<String, OnvifError> {
        let headers = format!(
            r#"<wsa5:Action xmlns:wsa5="{WSA5}">{}</wsa5:Action><wsa5:To xmlns:wsa5="{WSA5}">{}</wsa5:To>{}"#,
            xml::escape(action),
            xml::escape(&self.address),
            self.reference
        );
        self.dev.client().call(&self.address, op, action, body, &headers, true).await
    }

    /// PullMessages: waits up to `wait` on the device for at most `limit` notifications. The
    /// device's HTTP timeout must be longer than `wait`.
    pub async fn pull(&mut self, wait: Duration, limit: u32) -> Result<Vec<Notification>, OnvifError> {
        let op = "PullMessages";
        let body = format!(
            r#"<tev:PullMessages xmlns:tev="{TEV}"><tev:Timeout>{}</tev:Timeout><tev:MessageLimit>{limit}</tev:MessageLimit></tev:PullMessages>"#,
            duration(wait)
        );
        let text = self
            .call(op, "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription/PullMessagesRequest", &body)
            .await?;
        let doc = parse(&text, &self.address, op)?;
        if let Some(t) = xml::find(doc.root_element(), TEV, "TerminationTime").and_then(xml::text) {
            self.termination_time = Some(t);
            self.time_left = time_left(doc.root_element(), TEV);
        }
        Ok(notifications(doc.root_element()))
    }

    /// Renew for `lifetime` from now.
    pub async fn renew(&mut self, lifetime: Duration) -> Result<(), OnvifError> {
        let op = "Renew";
        let body = format!(
            r#"<wsnt:Renew xmlns:wsnt="{WSNT}"><wsnt:TerminationTime>{}</wsnt:TerminationTime></wsnt:Renew>"#,
            duration(lifetime)
        );
        let text = self.call(op, "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/RenewRequest", &body).await?;
        let doc = parse(&text, &self.address, op)?;
        if let Some(t) = xml::find(doc.root_element(), WSNT, "TerminationTime").and_then(xml::text) {
            self.termination_time = Some(t);
            self.time_left = time_left(doc.root_element(), WSNT);
        }
        Ok(())
    }

    /// Unsubscribe: ends the subscription on the device.
    pub async fn unsubscribe(&self) -> Result<(), OnvifError> {
        let body = format!(r#"<wsnt:Unsubscribe xmlns:wsnt="{WSNT}"/>"#);
        self.call("Unsubscribe", "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeRequest", &body)
            .await
            .map(|_| ())
    }
}

/// `TerminationTime` minus `CurrentTime` (namespace `ns`) of an answer, when both are there and
/// are times; zero for a termination already past.
pub fn time_left(root: Node, ns: &str) -> Option<Duration> {
    let at = |name: &str| {
        let t = xml::find(root, ns, name).and_then(xml::text)?;
        chrono::DateTime::parse_from_rfc3339(t.trim()).ok()
    };
    let ms = (at("TerminationTime")? - at("CurrentTime")?).num_milliseconds();
    Some(Duration::from_millis(ms.max(0) as u64))
}

/// Every `wsnt:NotificationMessage` below `root`.
pub fn notifications(root: Node) -> Vec<Notification> {
    xml::find_all(root, WSNT, "NotificationMessage")
        .map(|n| {
            let topic = xml::child(n, WSNT, "Topic").map(topic_name).unwrap_or_default();
            let msg = xml::child(n, WSNT, "Message").and_then(|m| xml::child(m, TT, "Message"));
            let items = |part: &str| -> Vec<(String, String)> {
                msg.and_then(|m| xml::child(m, TT, part))
                    .map(|p| {
                        xml::children(p, TT, "SimpleItem")
                            .filter_map(|i| Some((i.attribute("Name")?.to_string(), i.attribute("Value")?.to_string())))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            Notification {
                topic,
                utc_time: msg.and_then(|m| m.attribute("UtcTime")).map(str::to_string),
                property_operation: msg.and_then(|m| m.attribute("PropertyOperation")).map(str::to_string),
                source: items("Source"),
                data: items("Data"),
            }
        })
        .collect()
}

/// A topic expression with its prefix resolved: ONVIF's topic namespace is written `tns1:`
/// whatever prefix the device chose; another namespace is written `{ns}path`.
fn topic_name(t: Node) -> String {
    let text = xml::text(t).unwrap_or_default();
    match text.split_once(':') {
        Some((prefix, path)) => match t.lookup_namespace_uri(Some(prefix)) {
            Some(TOPICS) => format!("tns1:{path}"),
            Some(ns) => format!("{{{ns}}}{path}"),
            None => text,
        },
        None => text,
    }
}

/// An element as standalone XML: each element declares its own namespace, so it can be copied
/// into another document (reference parameters go back in our request headers).
fn serialize(n: Node) -> String {
    let name = n.tag_name().name();
    let mut s = format!("<{name}");
    if let Some(ns) = n.tag_name().namespace() {
        s.push_str(&format!(" xmlns=\"{}\"", xml::escape(ns)));
    }
    for a in n.attributes().filter(|a| a.namespace().is_none()) {
        s.push_str(&format!(" {}=\"{}\"", a.name(), xml::escape(a.value())));
    }
    s.push('>');
    for c in n.children() {
        if c.is_element() {
            s.push_str(&serialize(c));
        } else if let Some(t) = c.text().filter(|_| c.is_text()) {
            s.push_str(&xml::escape(t));
        }
    }
    s.push_str(&format!("</{name}>"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PullMessagesResponse as cameras send it: a cell motion event and a motion alarm, with
    /// the topic namespace under a prefix of the device's choosing.
    const PULLED: &str = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tev="http://www.onvif.org/ver10/events/wsdl" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:ns7="http://www.onvif.org/ver10/topics" xmlns:tnsvendor="http://vendor.example/topics">
<env:Body><tev:PullMessagesResponse>
<tev:CurrentTime>2026-12-06T07:40:00Z</tev:CurrentTime><tev:TerminationTime>2026-12-06T07:41:00Z</tev:TerminationTime>
<wsnt:NotificationMessage>
  <wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">ns7:RuleEngine/CellMotionDetector/Motion</wsnt:Topic>
  <wsnt:Message><tt:Message UtcTime="2026-12-06T07:39:58Z" PropertyOperation="Changed">
    <tt:Source><tt:SimpleItem Name="VideoSourceConfigurationToken" Value="VideoSourceToken"/><tt:SimpleItem Name="VideoAnalyticsConfigurationToken" Value="VideoAnalyticsToken"/><tt:SimpleItem Name="Rule" Value="MyMotionDetectorRule"/></tt:Source>
    <tt:Data><tt:SimpleItem Name="IsMotion" Value="true"/></tt:Data>
  </tt:Message></wsnt:Message>
</wsnt:NotificationMessage>
<wsnt:NotificationMessage>
  <wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">ns7:VideoSource/MotionAlarm</wsnt:Topic>
  <wsnt:Message><tt:Message UtcTime="2026-12-06T07:39:59Z" PropertyOperation="Changed">
    <tt:Source><tt:SimpleItem Name="Source" Value="VideoSource_1"/></tt:Source>
    <tt:Data><tt:SimpleItem Name="State" Value="false"/></tt:Data>
  </tt:Message></wsnt:Message>
</wsnt:NotificationMessage>
<wsnt:NotificationMessage>
  <wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tnsvendor:Door/Open</wsnt:Topic>
  <wsnt:Message><tt:Message UtcTime="2026-12-06T07:39:59Z"><tt:Data><tt:SimpleItem Name="State" Value="true"/></tt:Data></tt:Message></wsnt:Message>
</wsnt:NotificationMessage>
</tev:PullMessagesResponse></env:Body></env:Envelope>"#;

    #[test]
    fn motion_notifications() {
        let doc = roxmltree::Document::parse(PULLED).unwrap();
        let n = notifications(doc.root_element());
        assert_eq!(n.len(), 3);
        assert_eq!(n[0].topic, "tns1:RuleEngine/CellMotionDetector/Motion");
        assert_eq!(n[0].motion(), Some(true));
        assert_eq!(n[0].source_item("Rule"), Some("MyMotionDetectorRule"));
        assert_eq!(n[0].utc_time.as_deref(), Some("2026-12-06T07:39:58Z"));
        assert_eq!(n[0].property_operation.as_deref(), Some("Changed"));
        assert_eq!(n[1].topic, "tns1:VideoSource/MotionAlarm");
        assert_eq!(n[1].motion(), Some(false));
        assert_eq!(n[2].topic, "{http://vendor.example/topics}Door/Open");
        assert_eq!(n[2].motion(), None);
        assert_eq!(time_left(doc.root_element(), TEV), Some(Duration::from_secs(60)));
        assert_eq!(time_left(doc.root_element(), WSNT), None);
    }

    #[test]
    fn reference_parameters_carry_their_namespaces() {
        let xml = r#"<a:R xmlns:a="http://www.w3.org/2005/08/addressing" xmlns:tev="http://www.onvif.org/ver10/events/wsdl"><a:ReferenceParameters><tev:SubscriptionId kind="x">42&amp;1</tev:SubscriptionId></a:ReferenceParameters></a:R>"#;
        let doc = roxmltree::Document::parse(xml).unwrap();
        let p = doc.root_element().first_element_child().unwrap().first_element_child().unwrap();
        assert_eq!(
            serialize(p),
            r#"<SubscriptionId xmlns="http://www.onvif.org/ver10/events/wsdl" kind="x">42&amp;1</SubscriptionId>"#
        );
        assert_eq!(duration(Duration::from_millis(1500)), "PT1S");
    }
}
