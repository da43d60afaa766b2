//! ONNX Runtime: the shared library fetched by `scripts/setup.sh` (loaded at run time, never
//! downloaded by the build) and the models listed in `models/MODELS.toml`, each checked by sha256
//! before a session is built from it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use sha2::{Digest, Sha256};

/// Where setup puts the library, relative to the project root.
pub const DEFAULT_LIBRARY: &str = "vendor/onnxruntime/libonnxruntime.so.1.32.0";

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error(
        "ONNX Runtime library {path} cannot be loaded: {reason}. Run `bash scripts/setup.sh` (it fetches the library \
         from the onnxruntime wheel on PyPI), or point ORT_DYLIB_PATH / [detect] onnxruntime at a libonnxruntime.so \
         of version 1.22 or newer"
    )]
    Library { path: String, reason: String },
    #[error("model {name}: {path} is missing; run `bash scripts/setup.sh` to fetch it")]
    MissingModel { name: String, path: String },
    #[error(
        "model {name}: {path} has sha256 {actual}, models/MODELS.toml expects {expected}; delete it and run `bash scripts/setup.sh`"
    )]
    Checksum { name: String, path: String, expected: String, actual: String },
    #[error("model {name}: {message}")]
    Model { name: String, message: String },
    #[error("models/MODELS.toml: {0}")]
    Manifest(String),
    #[error("inference ({model}): {message}")]
    Run { model: String, message: String },
}

static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
static LIB_PATH: OnceLock<PathBuf> = OnceLock::new();

/// The library to load: `ORT_DYLIB_PATH`, else the configured path, else setup's location under
/// the project root (or next to the current directory).
pub fn library_path(configured: Option<&Path>) -> PathBuf {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return PathBuf::from(p);
    }
    if let Some(p) = configured {
        return p.to_path_buf();
    }
    project_file(DEFAULT_LIBRARY)
}

/// A project-relative file: under the current directory when it exists there, else under the
/// directory the crate was built from (tests and `cargo run` from elsewhere).
pub fn project_file(rel: &str) -> PathBuf {
    let here = PathBuf::from(rel);
    if here.exists() {
        return here;
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    if built.exists() { built } else { here }
}

/// Loads ONNX Runtime once per process. Later calls return the first outcome.
pub fn init(configured: Option<&Path>) -> Result<(), OnnxError> {
    let path = library_path(configured);
    let r = ENV.get_or_init(|| {
        let _ = LIB_PATH.set(path.clone());
        if !path.exists() {
            return Err("no such file".to_string());
        }
        // ort reports a missing symbol or a too-old library as an error, but a library that is
        // not a shared object at all can abort inside dlopen's callers; check the ELF magic first.
        match std::fs::read(&path).map(|b| b.get(..4) == Some(b"\x7fELF")) {
            Ok(true) => {}
            Ok(false) => return Err("not a shared library (no ELF header)".to_string()),
            Err(e) => return Err(e.to_string()),
        }
        let env = ort::init_from(&path).map_err(|e| e.to_string())?;
        env.with_name("tianwang").with_telemetry(false).build().map_err(|e| e.to_string())
    });
    r.as_ref().map(|_| ()).map_err(|reason| OnnxError::Library {
        path: LIB_PATH.get().cloned().unwrap_or(path).display().to_string(),
        reason: reason.clone(),
    })
}

/// One model file named in `models/MODELS.toml`.
#[derive(Debug, Clone)]
pub struct ModelFile {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
}

/// Reads `models/MODELS.toml` and returns the entry called `name` (fetched files use `dest`,
/// committed ones `file`).
pub fn model_file(name: &str) -> Result<ModelFile, OnnxError> {
    let manifest = project_file("models/MODELS.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| OnnxError::Manifest(format!("cannot read {}: {e}", manifest.display())))?;
    let doc: toml_edit::ImDocument<String> =
        text.parse().map_err(|e: toml_edit::TomlError| OnnxError::Manifest(e.to_string()))?;
    for key in ["file", "model"] {
        let Some(arr) = doc.get(key).and_then(|v| v.as_array_of_tables()) else { continue };
        for t in arr.iter() {
            if t.get("name").and_then(|v| v.as_str()) != Some(name) {
                continue;
            }
            let rel = t
                .get("dest")
                .or_else(|| t.get("file"))
                .and_then(|v| v.as_str())
                .ok_or_else(|| OnnxError::Manifest(format!("entry {name} has neither dest nor file")))?;
            let sha = t
                .get("sha256")
                .and_then(|v| v.as_str())
                .ok_or_else(|| OnnxError::Manifest(format!("entry {name} has no sha256")))?;
            return Ok(ModelFile { name: name.into(), path: project_file(rel), sha256: sha.to_ascii_lowercase() });
        }
    }
    Err(OnnxError::Manifest(format!("no entry named {name}")))
}

/// Reads a model and checks it against the manifest's sha256.
pub fn verified_bytes(m: &ModelFile) -> Result<Vec<u8>, OnnxError> {
    let bytes = std::fs::read(&m.path)
        .map_err(|_| OnnxError::MissingModel { name: m.name.clone(), path: m.path.display().to_string() })?;
    let actual = format!("{:x}", Sha256::digest(&bytes));
    if actual != m.sha256 {
        return Err(OnnxError::Checksum {
            name: m.name.clone(),
            path: m.path.display().to_string(),
            expected: m.sha256.clone(),
            actual,
        });
    }
    Ok(bytes)
}

/// A session on one model with `threads` intra-op threads (the detector pool gives each worker
/// its own sessions, so one thread each is the default).
pub fn session(name: &str, threads: usize) -> Result<Session, OnnxError> {
    let m = model_file(name)?;
    let bytes = verified_bytes(&m)?;
    session_from_bytes(name, &bytes, threads)
}

pub fn session_from_bytes(name: &str, bytes: &[u8], threads: usize) -> Result<Session, OnnxError> {
    let err = |e: &dyn std::fmt::Display| OnnxError::Model { name: name.into(), message: e.to_string() };
    let env = match ENV.get() {
        Some(Ok(env)) => env,
        _ => return Err(err(&"ONNX Runtime is not initialised (call detect::onnx::init first)")),
    };
    let b = Session::builder(env).map_err(|e| err(&e))?;
    let b = b.with_optimization_level(GraphOptimizationLevel::Level3).map_err(|e| err(&e))?;
    let b = b.with_intra_threads(threads.max(1)).map_err(|e| err(&e))?;
    let mut b = b.with_inter_threads(1).map_err(|e| err(&e))?;
    b.commit_from_memory(bytes).map_err(|e| err(&e))
}

pub fn run_err(model: &str) -> impl Fn(ort::Error) -> OnnxError + '_ {
    move |e| OnnxError::Run { model: model.to_string(), message: e.to_string() }
}
