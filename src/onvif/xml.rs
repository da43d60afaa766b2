//! Reading ONVIF and WS-Discovery XML: namespace-aware lookups over a `roxmltree` document.
//! Devices choose their own prefixes (`tt:`, `onvif:`, `ns2:` …), so elements are matched by
//! namespace URI and local name, never by prefix.

use roxmltree::Node;

pub const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const TDS: &str = "http://www.onvif.org/ver10/device/wsdl";
pub const TRT: &str = "http://www.onvif.org/ver10/media/wsdl";
pub const TT: &str = "http://www.onvif.org/ver10/schema";
pub const TEV: &str = "http://www.onvif.org/ver10/events/wsdl";
pub const WSNT: &str = "http://docs.oasis-open.org/wsn/b-2";
pub const WSA5: &str = "http://www.w3.org/2005/08/addressing";
pub const WSA: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
pub const WSD: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery";
pub const WSSE: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
pub const WSU: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";

/// Whether `n` is the element `{ns}local`.
pub fn is(n: Node, ns: &str, local: &str) -> bool {
    n.is_element() && n.tag_name().name() == local && n.tag_name().namespace() == Some(ns)
}

/// The first child element `{ns}local` of `n`.
pub fn child<'a, 'i>(n: Node<'a, 'i>, ns: &str, local: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| is(*c, ns, local))
}

/// Every child element `{ns}local` of `n`.
pub fn children<'a, 'i: 'a>(n: Node<'a, 'i>, ns: &'a str, local: &'a str) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    n.children().filter(move |c| is(*c, ns, local))
}

/// The first element `{ns}local` at or below `n`, in document order.
pub fn find<'a, 'i>(n: Node<'a, 'i>, ns: &str, local: &str) -> Option<Node<'a, 'i>> {
    n.descendants().find(|c| is(*c, ns, local))
}

/// Every element `{ns}local` at or below `n`.
pub fn find_all<'a, 'i: 'a>(n: Node<'a, 'i>, ns: &'a str, local: &'a str) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    n.descendants().filter(move |c| is(*c, ns, local))
}

/// The element's text, trimmed; `None` when empty.
pub fn text(n: Node) -> Option<String> {
    let t: String = n.children().filter(|c| c.is_text()).filter_map(|c| c.text()).collect();
    let t = t.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The text of the child path `{ns}a/{ns}b/…` below `n` (each step in its namespace).
pub fn path_text(n: Node, steps: &[(&str, &str)]) -> Option<String> {
    let mut cur = n;
    for (ns, local) in steps {
        cur = child(cur, ns, local)?;
    }
    text(cur)
}

/// Escapes text for an XML element or attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_by_namespace_not_prefix() {
        let xml = r#"<a:R xmlns:a="http://www.onvif.org/ver10/schema" xmlns:b="http://www.onvif.org/ver10/media/wsdl">
            <b:Uri>wrong namespace</b:Uri><zz:Uri xmlns:zz="http://www.onvif.org/ver10/schema"> rtsp://x/1 </zz:Uri></a:R>"#;
        let doc = roxmltree::Document::parse(xml).unwrap();
        let root = doc.root_element();
        assert_eq!(path_text(root, &[(TT, "Uri")]).as_deref(), Some("rtsp://x/1"));
        assert_eq!(find(root, TRT, "Uri").and_then(text).as_deref(), Some("wrong namespace"));
        assert_eq!(escape("a<&>\"'"), "a&lt;&amp;&gt;&quot;&apos;");
    }
}
