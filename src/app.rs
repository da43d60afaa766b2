//! Composition root: builds every part from the configuration and owns shutdown.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::clock::Clock;
use crate::config::{self, CityConfig, ConfigErrors};
use crate::registry::{Registry, RegistryError, SyncReport};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("configuration has {n} error(s):\n{0}", n = .0.0.len())]
    Config(#[from] ConfigErrors),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
}

/// A running system's parts.
pub struct App {
    pub state: AppState,
    pub config: CityConfig,
    pub sync: SyncReport,
}

impl App {
    /// Loads and validates the configuration, opens and migrates the registry, syncs the cameras.
    pub async fn build(config_dir: &Path, database: &str, clock: Arc<dyn Clock>) -> Result<Self, AppError> {
        let config = config::load_dir(config_dir)?;
        let registry = Registry::open(database).await?;
        let sync = registry.sync_config(&config, clock.now_ms()).await?;
        tracing::info!(site = %config.site.name, cameras = config.cameras.len(), "{}", sync.summary());
        Ok(Self { state: AppState { registry, clock }, config, sync })
    }

    /// Serves the API on `listener` until `shutdown` completes, then finishes in-flight requests.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let registry = self.state.registry.clone();
        let router = api::router(self.state);
        axum::serve(listener, router).with_graceful_shutdown(shutdown).await.map_err(AppError::Serve)?;
        registry.close().await;
        Ok(())
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        _ = term => tracing::info!("SIGTERM received, shutting down"),
    }
}
