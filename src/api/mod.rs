//! HTTP API (axum): one router per resource, merged here; OpenAPI generated from the handlers.

pub mod alerts;
pub mod auth;
pub mod cameras;
pub mod cluster;
pub mod desks;
pub mod detect;
pub mod dispatch;
pub mod error;
mod extract;
pub mod geo;
pub mod health;
pub mod maintenance;
pub mod map;
pub mod media;
pub mod planning;
pub mod units;
pub mod worker;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

pub use crate::app::AppState;
use error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(title = "tianwang", description = "City surveillance camera network: registry, health, alerts, coverage."),
    paths(
        cameras::list_cameras,
        cameras::get_camera,
        cameras::status_history,
        cameras::ingest_history,
        healthz,
        health::camera_health,
        health::all_health,
        health::snapshot,
        health::stats,
        cluster::cluster,
        cluster::retention,
        cluster::gb28181_devices,
        health::quality,
        maintenance::list_orders,
        maintenance::get_order,
        maintenance::open_order,
        maintenance::note,
        maintenance::assign,
        maintenance::close,
        maintenance::round,
        maintenance::set_mode,
        maintenance::get_availability,
        maintenance::replacements,
        maintenance::get_report,
        health::reload,
        geo::coverage_summary,
        geo::coverage_cells,
        geo::coverage_roads,
        geo::coverage_gaps,
        geo::entrances,
        geo::rings,
        geo::ring,
        geo::seeing,
        geo::layer,
        geo::start_interception,
        geo::list_interceptions,
        geo::get_interception,
        geo::close_interception,
        geo::post_passage,
        geo::events,
        map::extent,
        map::view,
        map::states,
        map::search,
        planning::proposals,
        planning::what_if,
        detect::list_watchlists,
        detect::create_watchlist,
        detect::get_watchlist,
        detect::update_watchlist,
        detect::revoke_watchlist,
        detect::list_passages,
        detect::trajectory,
        units::list_units,
        units::create_unit,
        units::get_unit,
        units::update_unit,
        units::retire_unit,
        units::add_positions,
        units::stream,
        units::track,
        dispatch::plan,
        dispatch::dispatch,
        dispatch::interception_units,
        media::picture,
        alerts::list,
        alerts::one,
        alerts::acknowledge,
        alerts::resolve,
        alerts::assign,
        alerts::comment,
        alerts::stats,
        desks::list,
        alerts::alarm,
        alerts::stream
    ),
    components(schemas(
        cameras::CameraView,
        cluster::ClusterView,
        cluster::ConsumerLag,
        crate::retention::RetentionStatus,
        crate::registry::GbDeviceRow,
        crate::retention::RetentionConfig,
        crate::retention::TableSweep,
        crate::retention::MediaSweep,
        crate::registry::WorkerLoad,
        crate::registry::RoleHolder,
        crate::alerts::service::WriterState,
        crate::config::Profile,
        cameras::CameraPage,
        cameras::Position,
        cameras::Resolution,
        cameras::StatusChangeView,
        cameras::IngestTransitionView,
        crate::config::Gb28181Code,
        error::ErrorBody,
        error::ErrorDetail,
        Health,
        crate::detect::service::DetectStats,
        crate::maintenance::service::CameraQuality,
        crate::maintenance::vqd::Check,
        crate::maintenance::vqd::CheckState,
        crate::maintenance::vqd::Measures,
        crate::detect::service::DetectorStats,
        crate::detect::onvif_motion::OnvifMotionStatus,
        crate::detect::onvif_motion::SubscriptionState,
        geo::CoverageSummary,
        map::StateChanges,
        map::StateChange,
        crate::geo::mapview::MapView,
        crate::geo::mapview::MapExtent,
        crate::geo::mapview::ViewCamera,
        crate::geo::mapview::ViewCluster,
        crate::geo::mapview::ViewRoad,
        crate::geo::mapview::ViewCell,
        crate::geo::mapview::ViewEntrance,
        crate::geo::mapview::ViewRing,
        crate::geo::mapview::ViewMember,
        crate::geo::mapview::ViewLeak,
        geo::LayerName,
        geo::InterceptionStarted,
        geo::CloseRequest,
        geo::PassageRecorded,
        crate::geo::coverage::CoverageQuery,
        crate::geo::coverage::StateFilter,
        crate::geo::coverage::Lengths,
        crate::geo::coverage::CellCoverage,
        crate::geo::coverage::RoadCoverage,
        crate::geo::coverage::CameraCounts,
        crate::geo::DoriLevel,
        crate::geo::entrance::EntranceCheck,
        crate::geo::entrance::SideCheck,
        crate::geo::entrance::CameraOnStretch,
        crate::geo::rings::RingState,
        crate::geo::rings::Member,
        crate::geo::rings::Leak,
        crate::geo::rings::RingPlan,
        crate::geo::rings::ArmedCheckpoint,
        crate::geo::linkage::Seeing,
        crate::geo::service::InterceptionRequest,
        planning::ExportFormat,
        crate::geo::placement::ProposalRequest,
        crate::geo::placement::CameraType,
        crate::geo::placement::CandidateOptions,
        crate::geo::placement::Weights,
        crate::geo::placement::ProposalReport,
        crate::geo::placement::Proposal,
        crate::geo::placement::CellChange,
        crate::geo::placement::RingChange,
        crate::geo::placement::EntranceChange,
        crate::geo::placement::WhatIfRequest,
        crate::geo::placement::CameraMove,
        crate::geo::placement::WhatIfReport,
        crate::geo::placement::RemoveMode,
        crate::registry::EventRow,
        crate::registry::PassageRow,
        crate::registry::InterceptionRow,
        crate::registry::NewPassage,
        crate::registry::TrajectoryPoint,
        detect::PassagePage,
        crate::detect::watchlist::WatchlistEntry,
        crate::detect::watchlist::WatchlistInput,
        crate::detect::watchlist::WatchlistPatch,
        crate::detect::watchlist::MatchKind,
        crate::detect::watchlist::Priority,
        crate::detect::watchlist::Hit,
        units::UnitInput,
        units::UnitPatch,
        units::PositionsInput,
        crate::app::unit_feed::UnitsChange,
        crate::registry::UnitRow,
        crate::registry::UnitKind,
        crate::registry::UnitStatus,
        crate::registry::Fix,
        crate::registry::FixesStored,
        crate::registry::RejectedFix,
        dispatch::Place,
        dispatch::UnitEta,
        dispatch::LeftOut,
        dispatch::DispatchPlan,
        dispatch::DispatchBody,
        dispatch::Dispatched,
        dispatch::CheckpointCover,
        dispatch::InterceptionUnits,
        alerts::AlertPage,
        alerts::AlertDetail,
        alerts::ResolveBody,
        alerts::AssignBody,
        alerts::CommentBody,
        alerts::AlertStats,
        desks::DeskRow,
        desks::DeskList,
        crate::alerts::alarm::AlarmInput,
        alerts::AlarmAccepted,
        crate::alerts::service::ServiceStats,
        crate::alerts::webhooks::WebhookState,
        crate::alerts::mqtt::MqttState,
        crate::app::positions::PositionsState,
        crate::registry::AlertKind,
        crate::registry::AlertStatus,
        crate::registry::Severity,
        crate::registry::FeedChange,
        crate::alerts::engine::EngineStats,
        crate::registry::AlertRow,
        crate::registry::AuditRow,
        crate::registry::FeedRow
    )),
    modifiers(&CommonResponses)
)]
pub struct ApiDoc;

/// What the document says once for every operation rather than in each handler's annotation:
/// the answers of the token check (`auth::require`, in front of every route but `/healthz`), the
/// 400 of any operation that takes parameters or a body (a path, query or body that does not
/// parse is refused by `extract`'s extractors before the handler runs), and the shape of an
/// interception's stored plan (the registry keeps it as JSON; it is the `RingPlan`s, innermost
/// first).
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{ArrayBuilder, Schema};
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                    )
                    .build(),
            )
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for op in ops.into_iter().flatten() {
                let takes_input = op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let responses = &mut op.responses.responses;
                if takes_input {
                    responses.entry("400".into()).or_insert_with(|| {
                        error("a path segment, query parameter or body that does not parse or is out of range")
                    });
                }
                if path == "/healthz" {
                    continue;
                }
                responses.entry("401".into()).or_insert_with(|| error("no token, or an unknown or revoked one"));
                responses.entry("403".into()).or_insert_with(|| error("the token's role does not reach this endpoint"));
                responses
                    .entry("429".into())
                    .or_insert_with(|| error("too many wrong tokens from this address within a minute"));
            }
        }
        if let Some(components) = doc.components.as_mut()
            && let Some(RefOr::T(Schema::Object(row))) = components.schemas.get_mut("InterceptionRow")
        {
            row.properties.insert(
                "plan".into(),
                ArrayBuilder::new()
                    .items(Ref::from_schema_name("RingPlan"))
                    .description(Some("the rings around the incident, innermost first"))
                    .into(),
            );
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/openapi.json", get(openapi))
        .merge(cameras::router())
        .merge(health::router())
        .merge(cluster::router())
        .merge(geo::router())
        .merge(map::router())
        .merge(planning::router())
        .merge(detect::router())
        .merge(alerts::router())
        .merge(desks::router())
        .merge(maintenance::router())
        .merge(units::router())
        .merge(dispatch::router())
        .merge(media::router())
        .merge(crate::web::router())
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("method not allowed on this endpoint".into())
        })
        .layer(axum::middleware::from_fn_with_state(auth::AuthState::new(state.clone()), auth::require))
        .with_state(state)
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when the database does not answer.
    pub status: &'static str,
    pub database: String,
    pub version: &'static str,
}

/// Liveness and database reachability. Needs no token.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn healthz(axum::extract::State(st): axum::extract::State<AppState>) -> impl IntoResponse {
    let version = env!("CARGO_PKG_VERSION");
    match st.registry.ping().await {
        Ok(()) => (StatusCode::OK, Json(Health { status: "ok", database: "ok".into(), version })),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health { status: "degraded", database: "unreachable".into(), version }),
            )
        }
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
