//! What imports produce and the geography model consumes: roads, grid cells, entrances and cameras
//! in WGS84 longitude/latitude, before projection. Each import reports what it accepted and what it
//! rejected (with where and why), so a planner can fix the source file. The row types are the
//! registry's, which stores them (`registry::geo_inputs`); a batch and its progress are the
//! imports' own.

use serde::{Deserialize, Serialize};

pub use crate::registry::{CameraInput, CellInput, EntranceInput, Oneway, Rejected, RoadWay};

/// The outcome of reading one file: what will be stored and what was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportBatch<T> {
    /// The file, as given.
    pub source: String,
    pub accepted: Vec<T>,
    pub rejected: Vec<Rejected>,
}

impl<T> ImportBatch<T> {
    pub fn new(source: impl Into<String>) -> Self {
        ImportBatch { source: source.into(), accepted: Vec::new(), rejected: Vec::new() }
    }

    pub fn reject(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.rejected.push(Rejected { at: at.into(), reason: reason.into() });
    }
}

/// Progress of a long read, reported now and then.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub items: u64,
}
