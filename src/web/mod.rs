//! The monitoring room's web dashboard: static files embedded in the binary (plain ES modules and
//! CSS under `web/`, no build step, nothing fetched from elsewhere at run time). The files hold no
//! data and no secret, so they are served without a token; everything they show comes from the
//! API with the token the user signs in with.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// `(path under /ui/, content type, bytes)`.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", "text/css; charset=utf-8", include_str!("../../web/app.css")),
    ("js/main.js", JS, include_str!("../../web/js/main.js")),
    ("js/api.js", JS, include_str!("../../web/js/api.js")),
    ("js/util.js", JS, include_str!("../../web/js/util.js")),
    ("js/store.js", JS, include_str!("../../web/js/store.js")),
    ("js/alerts.js", JS, include_str!("../../web/js/alerts.js")),
    ("js/cameras.js", JS, include_str!("../../web/js/cameras.js")),
    ("js/map.js", JS, include_str!("../../web/js/map.js")),
    ("js/mapview.js", JS, include_str!("../../web/js/mapview.js")),
    ("js/planning.js", JS, include_str!("../../web/js/planning.js")),
    ("js/maintenance.js", JS, include_str!("../../web/js/maintenance.js")),
    ("js/interception.js", JS, include_str!("../../web/js/interception.js")),
];

const JS: &str = "text/javascript; charset=utf-8";
const INDEX: &str = include_str!("../../web/index.html");

/// Only our own files, scripts and connections: a page that cannot load anything from elsewhere
/// cannot leak the token there either. Inline styles are allowed (coverage bars set a width).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Whether `path` is one of the dashboard's public files (the auth middleware lets these through).
pub fn is_public(path: &str) -> bool {
    path == "/" || path == "/index.html" || path.strip_prefix("/ui/").is_some_and(|p| ASSETS.iter().any(|a| a.0 == p))
}

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(index)).route("/index.html", get(index)).route("/ui/{*path}", get(asset))
}

fn respond(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Revalidate every time: a new binary serves new files at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

async fn index() -> Response {
    respond("text/html; charset=utf-8", INDEX)
}

async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.0 == path) {
        Some((_, ct, body)) => respond(ct, body),
        // The API's error shape, written here: the dashboard's files depend on nothing else.
        None => {
            let body =
                serde_json::json!({"error": {"kind": "not_found", "message": format!("no dashboard file {path:?}")}});
            (axum::http::StatusCode::NOT_FOUND, axum::Json(body)).into_response()
        }
    }
}

/// For tests: every embedded file's path under `/ui/`.
pub fn asset_paths() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|a| a.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_a_script_imports_is_embedded() {
        // A missing file would only show as a blank page in a browser: check the imports here.
        for (path, _, body) in ASSETS.iter().filter(|a| a.0.ends_with(".js")) {
            for line in body.lines().filter(|l| l.starts_with("import ")) {
                let Some(spec) = line.split('\'').nth(1) else { continue };
                let target = format!("js/{}", spec.trim_start_matches("./"));
                assert!(ASSETS.iter().any(|a| a.0 == target), "{path} imports {spec}, which is not embedded");
            }
        }
        assert!(INDEX.contains("/ui/js/main.js") && INDEX.contains("/ui/app.css"));
    }

    #[test]
    fn public_paths() {
        assert!(is_public("/") && is_public("/ui/js/main.js") && is_public("/ui/app.css"));
        assert!(!is_public("/ui/../api/v1/alerts") && !is_public("/ui/nope.js") && !is_public("/api/v1/alerts"));
    }
}
