//! The pictures a checkpoint kept of a passage (plate crop, context), for the dashboard's alert
//! detail. Only files inside the detection's `media_dir` are served: the stored path is resolved
//! (links and `..` included) and must lie under it, so a passage posted with a path elsewhere
//! (`POST /api/v1/passages` accepts image paths) cannot read other files.

use std::path::{Path as FsPath, PathBuf};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::ApiPath;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/passages/{id}/{picture}", get(picture))
}

/// A passage's plate crop (`plate.jpg`) or context picture (`context.jpg`).
#[utoipa::path(get, path = "/api/v1/passages/{id}/{picture}", tag = "watchlists",
    params(("id" = i64, Path, description = "passage id"), ("picture" = String, Path, description = "plate.jpg or context.jpg")),
    responses((status = 200, content_type = "image/jpeg", description = "the picture"), (status = 404, body = ErrorBody)))]
pub async fn picture(
    State(st): State<AppState>,
    ApiPath((id, picture)): ApiPath<(i64, String)>,
) -> Result<Response, ApiError> {
    let p = st.registry.passage(id).await?.ok_or_else(|| ApiError::NotFound(format!("passage {id} not found")))?;
    let stored = match picture.as_str() {
        "plate.jpg" => p.plate_image,
        "context.jpg" => p.context_image,
        other => return Err(ApiError::NotFound(format!("no picture {other:?}; pictures: plate.jpg, context.jpg"))),
    };
    let Some(stored) = stored else {
        return Err(ApiError::NotFound(format!("passage {id} has no {picture}")));
    };
    let Some(media) = st.detect.as_ref().map(|d| d.media_dir().to_path_buf()) else {
        return Err(ApiError::NotFound("pictures are served by the node that runs detection".into()));
    };
    let file = tokio::task::spawn_blocking(move || inside(&media, FsPath::new(&stored)))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or_else(|| ApiError::NotFound(format!("passage {id}: {picture} is not available")))?;
    let bytes = tokio::fs::read(&file)
        .await
        .map_err(|_| ApiError::NotFound(format!("passage {id}: {picture} is not available")))?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "private, max-age=3600")], bytes)
        .into_response())
}

/// `file` resolved, when it is a JPEG file under `dir` (both resolved); `None` otherwise.
pub fn inside(dir: &FsPath, file: &FsPath) -> Option<PathBuf> {
    let dir = dir.canonicalize().ok()?;
    let file = file.canonicalize().ok()?;
    let jpeg = file.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"));
    (jpeg && file.starts_with(&dir) && file.is_file()).then_some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_jpegs_under_the_media_dir() {
        let root = tempfile::tempdir().unwrap();
        let media = root.path().join("media");
        std::fs::create_dir_all(media.join("passages/cam")).unwrap();
        let good = media.join("passages/cam/1-plate.jpg");
        std::fs::write(&good, b"\xff\xd8").unwrap();
        let outside = root.path().join("secret.jpg");
        std::fs::write(&outside, b"x").unwrap();
        std::fs::write(media.join("notes.txt"), b"x").unwrap();
        assert_eq!(inside(&media, &good), Some(good.canonicalize().unwrap()));
        assert_eq!(inside(&media, &media.join("passages/cam/../cam/1-plate.jpg")), Some(good.canonicalize().unwrap()));
        assert_eq!(inside(&media, &media.join("passages/../../secret.jpg")), None);
        assert_eq!(inside(&media, &outside), None);
        assert_eq!(inside(&media, &media.join("notes.txt")), None);
        assert_eq!(inside(&media, &media.join("missing.jpg")), None);
        assert_eq!(inside(&media, FsPath::new("/etc/passwd")), None);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, media.join("link.jpg")).unwrap();
            assert_eq!(inside(&media, &media.join("link.jpg")), None);
        }
    }
}
