//! Placement proposals and "what if" over HTTP, for planners: where the next cameras should go,
//! and what is lost when some go away. The computation runs on the blocking pool.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiQuery};
use crate::geo::placement::{self, ProposalReport, ProposalRequest, WhatIfReport, WhatIfRequest};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/planning/proposals", post(proposals)).route("/api/v1/planning/what-if", post(what_if))
}

/// How to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// The report (default).
    #[default]
    Json,
    /// The proposed cameras as a GeoJSON FeatureCollection: a point per camera, with the
    /// proposal's fields as properties, and its field of view at the level as a polygon.
    Geojson,
    /// The proposed cameras in the camera CSV import's columns (`tianwang import` reads it back).
    Csv,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// `json` (default), `geojson` or `csv`.
    pub format: Option<ExportFormat>,
}

/// Proposes where to put up to `budget` new cameras (lazy greedy max-coverage), with coverage
/// before and after overall and per cell, ring leaks closed and entrances made compliant.
#[utoipa::path(post, path = "/api/v1/planning/proposals", tag = "planning", request_body = ProposalRequest,
    params(ExportParams),
    responses((status = 200, body = ProposalReport, description = "the report; GeoJSON or CSV with `format`"),
        (status = 400, body = ErrorBody)))]
pub async fn proposals(
    State(st): State<AppState>,
    ApiQuery(p): ApiQuery<ExportParams>,
    ApiJson(req): ApiJson<ProposalRequest>,
) -> Result<Response, ApiError> {
    req.validate().map_err(ApiError::BadRequest)?;
    let m = st.geo.model().await?;
    let format = p.format.unwrap_or_default();
    let out = tokio::task::spawn_blocking(move || {
        let (report, cams) = placement::propose(&m, &req)?;
        Ok::<_, String>(match format {
            ExportFormat::Json => Json(report).into_response(),
            ExportFormat::Geojson => (
                [(header::CONTENT_TYPE, "application/geo+json")],
                placement::proposals_geojson(&m, &report, &cams).to_string(),
            )
                .into_response(),
            ExportFormat::Csv => (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (header::CONTENT_DISPOSITION, "attachment; filename=\"proposals.csv\""),
                ],
                placement::proposals_csv(&cams),
            )
                .into_response(),
        })
    })
    .await
    .map_err(|e| ApiError::Internal(format!("placement failed: {e}")))?;
    out.map_err(ApiError::BadRequest)
}

/// What if these cameras were removed (or offline): the coverage lost overall and per cell,
/// the rings that open, the entrances that break the rule.
#[utoipa::path(post, path = "/api/v1/planning/what-if", tag = "planning", request_body = WhatIfRequest,
    responses((status = 200, body = WhatIfReport), (status = 400, body = ErrorBody)))]
pub async fn what_if(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<WhatIfRequest>,
) -> Result<Json<WhatIfReport>, ApiError> {
    let m = st.geo.model().await?;
    let out = tokio::task::spawn_blocking(move || placement::what_if(&m, &req))
        .await
        .map_err(|e| ApiError::Internal(format!("what-if failed: {e}")))?;
    out.map(Json).map_err(ApiError::BadRequest)
}
