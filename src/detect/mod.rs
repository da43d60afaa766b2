//! Detection: ONNX Runtime motion (batched over cameras), motion from the cameras themselves
//! (ONVIF events, `onvif_motion`) and Chinese plate reading at checkpoint cameras, passage records
//! and watchlists. See docs/DETECTION.md.

pub mod config;
pub mod ctc;
pub mod eval;
pub mod imageops;
pub mod motion;
pub mod onnx;
pub mod onvif_motion;
pub mod passages;
pub mod plates;
pub mod service;
pub mod track;
pub mod watchlist;
