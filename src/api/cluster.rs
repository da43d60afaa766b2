//! The cluster view: live workers with the cameras and load of their live leases, cameras no live
//! worker holds, and each consumer's position against the head of what it reads.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::alerts::service::WriterState;
use crate::alerts::service::consumer;
use crate::events::Lane;
use crate::registry::{ALERT_WRITER, Placement, RoleHolder, WorkerLoad};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/cluster", get(cluster))
        .route("/api/v1/retention", get(retention))
        .route("/api/v1/gb28181/devices", get(gb28181_devices))
}

/// GB/T 28181 devices that registered to this platform: online or not and why, until when their
/// registration runs, their last keepalive, what they are, and how their last catalog went.
#[utoipa::path(get, path = "/api/v1/gb28181/devices", tag = "health",
    responses((status = 200, body = [crate::registry::GbDeviceRow])))]
pub async fn gb28181_devices(State(st): State<AppState>) -> Result<Json<Vec<crate::registry::GbDeviceRow>>, ApiError> {
    Ok(Json(st.registry.gb_devices().await?))
}

/// What is kept and for how long (`[retention]`), and what the last sweep deleted: rows by table,
/// pictures by age and for the disk's free-space floor, and the consumer that holds old events
/// or alert changes back when one does.
#[utoipa::path(get, path = "/api/v1/retention", tag = "health",
    responses((status = 200, body = crate::retention::RetentionStatus)))]
pub async fn retention(State(st): State<AppState>) -> Json<crate::retention::RetentionStatus> {
    Json(st.retention.status())
}

/// A consumer of the event log or of the alert change feed, and how far behind it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumerLag {
    pub consumer: String,
    /// `events` (the event log) or `alert_feed` (the change feed).
    pub reads: String,
    /// Its acknowledged position.
    pub position: i64,
    /// The newest position of what it reads.
    pub head: i64,
    /// Positions between the two: an upper bound on what it has still to handle (a consumer of
    /// one lane skips the others' positions).
    pub behind: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterView {
    /// Live workers (heartbeat within the lease time), with the load of their live leases in
    /// thousandths of a core, each camera weighed by its profile.
    pub workers: Vec<WorkerLoad>,
    /// Cameras to ingest that no live worker holds. On a single node (`tianwang serve`, the
    /// embedded default) no worker holds leases and this is every placeable camera.
    pub cameras_unheld: u64,
    pub consumers: Vec<ConsumerLag>,
    /// The node that writes alerts now (`None` while nobody holds the role).
    pub alert_writer: Option<RoleHolder>,
    /// This node: whether it writes alerts, and the changes it queued for the writer or applied
    /// for others.
    pub this_node: WriterState,
    /// The event log on NATS JetStream, when this node carries it there (`--nats`): the relay
    /// (it runs on the node that writes alerts) and where this node's reads came from.
    pub jetstream: Option<crate::events::jetstream::JetStreamStats>,
}

/// Workers, their cameras and load, and each consumer's lag.
#[utoipa::path(get, path = "/api/v1/cluster", tag = "health",
    responses((status = 200, body = ClusterView), (status = 500, body = ErrorBody)))]
pub async fn cluster(State(st): State<AppState>) -> Result<Json<ClusterView>, ApiError> {
    let now = st.clock.now_ms();
    let (workers, cameras_unheld) = st.registry.cluster_load(now, &Placement::default()).await?;
    let events_head = st.registry.last_event_position().await?;
    let feed_head = st.registry.latest_feed_seq().await?;
    // Every consumer this node runs, at 0 until its first acknowledgement, and any other the
    // store knows (one of another node, or of a receiver since removed).
    let mut known: std::collections::BTreeMap<String, i64> = Lane::ALL
        .into_iter()
        .map(consumer)
        .chain([crate::geo::watch::CONSUMER.to_string()])
        .chain(st.webhooks.states().into_iter().map(|w| format!("webhook:{}", w.name)))
        .chain(st.mqtt.as_ref().map(|_| "mqtt".to_string()))
        .map(|c| (c, 0))
        .collect();
    known.extend(st.registry.cursors().await?);
    let consumers = known
        .into_iter()
        .map(|(consumer, position)| {
            // Webhook receivers and MQTT follow the change feed; everything else the event log.
            let feed = consumer.starts_with("webhook:") || consumer == "mqtt";
            let head = if feed { feed_head } else { events_head };
            ConsumerLag {
                reads: if feed { "alert_feed" } else { "events" }.into(),
                behind: (head - position).max(0),
                consumer,
                position,
                head,
            }
        })
        .collect();
    let alert_writer = st.registry.role_holder(ALERT_WRITER, now).await?;
    Ok(Json(ClusterView {
        workers,
        cameras_unheld,
        consumers,
        alert_writer,
        this_node: st.alerts.writer(),
        jetstream: st.log.jetstream(),
    }))
}
