//! Extractors whose rejections are our own JSON errors.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// `Query<T>` with a 400 `bad_request` body that says which parameter is wrong.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(t)) => Ok(ApiQuery(t)),
            Err(e) => Err(ApiError::BadRequest(query_message(&e))),
        }
    }
}

fn query_message(e: &QueryRejection) -> String {
    match e {
        QueryRejection::FailedToDeserializeQueryString(inner) => format!(
            "bad query parameters: {}",
            inner.body_text().trim_start_matches("Failed to deserialize query string: ")
        ),
        other => format!("bad query parameters: {}", other.body_text()),
    }
}

/// `Json<T>` with a 400 `bad_request` body that says what is wrong with the request body.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(t)) => Ok(ApiJson(t)),
            Err(e) => Err(ApiError::BadRequest(format!("bad request body: {}", e.body_text()))),
        }
    }
}

/// `Path<T>` with a 400 `bad_request` body that says which path segment is wrong (axum's own
/// rejection is plain text, e.g. for an id past `i64::MAX`).
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(t)) => Ok(ApiPath(t)),
            Err(axum::extract::rejection::PathRejection::FailedToDeserializePathParams(e)) => {
                Err(ApiError::BadRequest(format!("bad path: {}", e.body_text().trim_start_matches("Invalid URL: "))))
            }
            // A route without the parameters its handler reads: our bug, not the client's.
            Err(other) => Err(ApiError::Internal(other.body_text())),
        }
    }
}
