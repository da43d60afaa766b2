//! Synthetic Chinese licence plates (GA 36): random plates following the grammar in
//! [`crate::plate`], plates rendered with a real CJK font, vehicles carrying them in cluttered
//! scenes (clean and degraded), a labelled data set writer for the plate reader's tests and
//! evaluation, and a road scene for simulated checkpoint cameras.
//!
//! Everything is plain CPU code on tightly packed RGB buffers ([`Rgb`]) and deterministic for a
//! seed. The font is WenQuanYi Micro Hei ([`PLATE_FONT_PATH`], Debian `fonts-wqy-microhei`,
//! installed by `scripts/setup.sh`); its glyphs are stretched to the tall, narrow boxes of the
//! plate typeface. Without the font every renderer answers an `Err` naming the path and the
//! package, never a panic.
//!
//! Sizes given in pixels for a plate are for a standard 440 mm plate; a green (new energy) plate
//! is 480 mm and so 480/440 as wide on the same vehicle.
//!
//! One subject per module: `rgb` (the image), `shapes` (signed distance fields), `numbers`
//! (random plate numbers), `render` (font and plate), `geometry` (homographies and warps),
//! `degrade`, `vehicles`, `scenes` (labelled stills), `dataset` and `traffic` (the checkpoint
//! camera's road scene). The modules are private and every public item is re-exported here, so
//! `sim::plates::X` is the one path to it.

mod dataset;
mod degrade;
mod geometry;
mod numbers;
mod render;
mod rgb;
mod scenes;
mod shapes;
mod traffic;
mod vehicles;

pub use crate::plate::PlateColor;
pub use dataset::{DatasetSummary, write_dataset};
pub use degrade::{add_glare, add_noise, adjust_brightness, gaussian_blur};
pub use geometry::{apply_homography, homography, warp_into};
pub use numbers::random_plate;
pub use render::{PLATE_FONT_PATH, PlateFont, render_plate, render_plate_with};
pub use rgb::Rgb;
pub use scenes::{PlateSample, plate_free_frame, sample};
pub use traffic::{TrafficScene, TrafficSpec};
