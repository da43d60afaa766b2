//! Serving: the API (with the dashboard's files) on a listener until a shutdown signal, then the
//! app's ordered shutdown. The one module that puts the HTTP layer and the app together.

use std::future::Future;

use tokio::net::TcpListener;

use crate::api;
use crate::app::{App, AppError};

/// Serves the API on `listener` until `shutdown` completes, then finishes in-flight requests
/// (live streams end) and stops the app.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let router = api::router(app.state.clone());
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
    let router = api::worker::router(worker.state.clone());
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
