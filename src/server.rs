//! Serving: the API (with the dashboard's files) on a listener until a shutdown signal, then the
//! app's ordered shutdown. The one module that puts the HTTP layer and the app together.

use std::future::Future;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

use crate::api;
use crate::app::{App, AppError};

/// The HTTP layers every served router gets, outermost first: the access log (one line per
/// request: peer, caller, method, path without its query, status, time), the time bound (a 503
/// with the project's error body after `timeout`: the head of a response, a live stream's body is
/// not bounded), gzip compression of responses the
/// client accepts it for (not live streams, pictures or bodies under 32 bytes).
pub fn layers(router: axum::Router, timeout: Duration) -> axum::Router {
    router
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(timeout, time_bound))
        .layer(axum::middleware::from_fn(access_log))
}

async fn time_bound(
    axum::extract::State(timeout): axum::extract::State<Duration>,
    req: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            let mut r = api::error::ApiError::Unavailable(format!(
                "the request took longer than {} s and was abandoned; try again",
                timeout.as_secs_f64()
            ))
            .into_response();
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
            r
        }
    }
}

/// The access log (`tianwang::access`: filter it with `RUST_LOG=tianwang::access=off` or `=warn`).
/// The query is left out: it may carry a live stream's `access_token`.
async fn access_log(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path: String = req.uri().path().chars().take(200).collect();
    let peer = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let resp = next.run(req).await;
    let who = resp.extensions().get::<api::auth::Signed>();
    let (caller, role) = who.map_or(("-", "-"), |w| (w.name.as_str(), w.role.as_str()));
    let status = resp.status().as_u16();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let peer = peer.map_or_else(|| "-".to_string(), |p| p.to_string());
    if path == "/healthz" && status == 200 {
        tracing::debug!(target: "tianwang::access", %peer, %caller, %role, %method, %path, status, ms, "request");
    } else {
        tracing::info!(target: "tianwang::access", %peer, %caller, %role, %method, %path, status, ms, "request");
    }
    resp
}

/// Serves the API on `listener` until `shutdown` completes, then finishes in-flight requests
/// (live streams end) and stops the app.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let router = layers(api::router(app.state.clone()), app.state.request_timeout);
    let closing = app.state.closing.clone();
    let shutdown = async move {
        shutdown.await;
        closing.cancel();
    };
    // No Nagle: live streams send small frames that must not wait for the peer's delayed ACK.
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let served = axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(AppError::Serve);
    app.shutdown().await;
    served
}

/// Serves a worker's own endpoint (`api::worker`) on `listener` until `shutdown` completes, then
/// stops the worker (which gives its cameras back).
pub async fn serve_worker(
    worker: crate::app::worker::Worker,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let router = layers(api::worker::router(worker.state.clone()), Duration::from_secs(60));
    let closing = worker.state.closing.clone();
    let shutdown = async move {
        shutdown.await;
        closing.cancel();
    };
    let served = axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(AppError::Serve);
    worker.shutdown().await;
    served
}
