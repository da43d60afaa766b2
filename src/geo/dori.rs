//! DORI detail levels (IEC 62676-4) and the range at which a camera reaches each.
//!
//! Pixel density on a target at slant distance `d` for a rectilinear lens of horizontal field of
//! view `HFOV` and `W` pixels across: `ppm = W / (2 · d · tan(HFOV/2))`, so the range at a level
//! is `R = W / (2 · tan(HFOV/2) · ppm)`. Wide lenses (HFOV ≥ 150°, fisheye and panoramic) are not
//! rectilinear; for them the angular model `ppm = W / (HFOV_rad · d)` is used. The range is a
//! slant distance from the lens; on the ground it shrinks by the mounting height above a target
//! [`TARGET_HEIGHT_M`] high (a face, a person's upper body).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::DoriTable;

/// Height of what is being watched above the road (a person's face, roughly), metres.
pub const TARGET_HEIGHT_M: f64 = 1.5;

/// A DORI level, coarsest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DoriLevel {
    Monitor,
    Detect,
    Observe,
    Recognise,
    Identify,
    Inspect,
    /// Only in the 2025 table (1,500 px/m).
    InspectFine,
}

impl DoriLevel {
    pub const ALL: [DoriLevel; 7] = [
        DoriLevel::Monitor,
        DoriLevel::Detect,
        DoriLevel::Observe,
        DoriLevel::Recognise,
        DoriLevel::Identify,
        DoriLevel::Inspect,
        DoriLevel::InspectFine,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DoriLevel::Monitor => "monitor",
            DoriLevel::Detect => "detect",
            DoriLevel::Observe => "observe",
            DoriLevel::Recognise => "recognise",
            DoriLevel::Identify => "identify",
            DoriLevel::Inspect => "inspect",
            DoriLevel::InspectFine => "inspect_fine",
        }
    }

    /// Pixels per metre the level needs in `table`; `None` where the table has no such level.
    ///
    /// 2014 (= EN 62676-4:2015): monitor 12.5, detect 25, observe 62.5, recognise 125, identify 250,
    /// inspect 1000. 2025 revision: 20, 40, 80, 125, 250, 500 and 1500.
    pub fn ppm(self, table: DoriTable) -> Option<f64> {
        let v = match table {
            DoriTable::Iec2014 => [12.5, 25.0, 62.5, 125.0, 250.0, 1000.0, f64::NAN],
            DoriTable::Iec2025 => [20.0, 40.0, 80.0, 125.0, 250.0, 500.0, 1500.0],
        }[self as usize];
        v.is_finite().then_some(v)
    }

    /// The levels `table` defines, coarsest first.
    pub fn levels(table: DoriTable) -> impl Iterator<Item = DoriLevel> {
        DoriLevel::ALL.into_iter().filter(move |l| l.ppm(table).is_some())
    }
}

impl fmt::Display for DoriLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DoriLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.to_ascii_lowercase();
        DoriLevel::ALL
            .into_iter()
            .find(|l| l.as_str() == s || (s == "recognize" && *l == DoriLevel::Recognise))
            .ok_or_else(|| {
                format!("unknown DORI level {s:?}; expected one of {}", DoriLevel::ALL.map(|l| l.as_str()).join(", "))
            })
    }
}

/// Lenses this wide or wider are treated as angular (fisheye, panoramic), not rectilinear.
const WIDE_LENS_DEG: f64 = 150.0;

/// Slant range (metres from the lens) at which a camera still gives `ppm` pixels per metre.
/// Zero for a camera with no field of view or no pixels.
pub fn slant_range_m(width_px: u32, hfov_deg: f64, ppm: f64) -> f64 {
    if hfov_deg.is_nan() || hfov_deg <= 0.0 || width_px == 0 || ppm.is_nan() || ppm <= 0.0 {
        return 0.0;
    }
    let w = width_px as f64;
    if hfov_deg >= WIDE_LENS_DEG {
        w / (hfov_deg.min(360.0).to_radians() * ppm)
    } else {
        w / (2.0 * (hfov_deg.to_radians() / 2.0).tan() * ppm)
    }
}

/// Pixels per metre a camera gives at slant distance `d` (the inverse of [`slant_range_m`]).
pub fn ppm_at(width_px: u32, hfov_deg: f64, d: f64) -> f64 {
    let d = d.max(0.1);
    slant_range_m(width_px, hfov_deg, 1.0) / d
}

/// Horizontal ground range for a slant range from a lens `mounting_height_m` above the road.
pub fn ground_range_m(slant_m: f64, mounting_height_m: f64) -> f64 {
    let dh = (mounting_height_m - TARGET_HEIGHT_M).max(0.0);
    if slant_m <= dh { 0.0 } else { (slant_m * slant_m - dh * dh).sqrt() }
}

/// Slant distance from the lens to a target at ground distance `ground_m`.
pub fn slant_from_ground(ground_m: f64, mounting_height_m: f64) -> f64 {
    let dh = (mounting_height_m - TARGET_HEIGHT_M).max(0.0);
    ground_m.hypot(dh)
}

/// The finest level a camera reaches at ground distance `ground_m`, if any.
pub fn best_level(
    table: DoriTable,
    width_px: u32,
    hfov_deg: f64,
    mounting_height_m: f64,
    ground_m: f64,
) -> Option<DoriLevel> {
    let ppm = ppm_at(width_px, hfov_deg, slant_from_ground(ground_m, mounting_height_m));
    DoriLevel::levels(table).filter(|l| l.ppm(table).is_some_and(|need| ppm >= need)).last()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(level: DoriLevel) -> f64 {
        slant_range_m(1920, 90.0, level.ppm(DoriTable::Iec2014).unwrap())
    }

    #[test]
    fn hand_computed_ranges_for_1920_px_at_90_degrees() {
        // DOMAIN.md: detect 38.4 m, observe 15.4 m, recognise 7.7 m, identify 3.8 m.
        assert!((r(DoriLevel::Detect) - 38.4).abs() < 0.05, "{}", r(DoriLevel::Detect));
        assert!((r(DoriLevel::Observe) - 15.36).abs() < 0.05, "{}", r(DoriLevel::Observe));
        assert!((r(DoriLevel::Recognise) - 7.68).abs() < 0.05, "{}", r(DoriLevel::Recognise));
        assert!((r(DoriLevel::Identify) - 3.84).abs() < 0.05, "{}", r(DoriLevel::Identify));
        assert!((r(DoriLevel::Monitor) - 76.8).abs() < 0.05);
    }

    #[test]
    fn the_2025_table_is_stricter_at_the_coarse_end() {
        let t = DoriTable::Iec2025;
        let detect = slant_range_m(1920, 90.0, DoriLevel::Detect.ppm(t).unwrap());
        assert!((detect - 24.0).abs() < 0.01, "{detect}");
        assert_eq!(DoriLevel::InspectFine.ppm(DoriTable::Iec2014), None);
        assert_eq!(DoriLevel::levels(DoriTable::Iec2014).count(), 6);
        assert_eq!(DoriLevel::levels(t).count(), 7);
    }

    #[test]
    fn narrower_lens_and_more_pixels_reach_further() {
        let wide = slant_range_m(1920, 90.0, 62.5);
        let tele = slant_range_m(1920, 30.0, 62.5);
        let uhd = slant_range_m(3840, 90.0, 62.5);
        assert!(tele > 3.0 * wide && (uhd - 2.0 * wide).abs() < 1e-9);
        assert_eq!(slant_range_m(1920, 0.0, 62.5), 0.0);
        // A 360° panoramic camera: angular model, 3840 px over 2π rad at 25 px/m ≈ 24.4 m.
        assert!((slant_range_m(3840, 360.0, 25.0) - 24.446).abs() < 0.01);
    }

    #[test]
    fn mounting_height_shortens_the_ground_range() {
        assert!((ground_range_m(38.4, 6.0) - (38.4f64.powi(2) - 4.5f64.powi(2)).sqrt()).abs() < 1e-9);
        assert_eq!(ground_range_m(3.0, 6.0), 0.0);
        assert_eq!(ground_range_m(10.0, 1.0), 10.0);
    }

    #[test]
    fn best_level_follows_distance() {
        let t = DoriTable::Iec2014;
        assert_eq!(best_level(t, 1920, 90.0, 1.5, 3.0), Some(DoriLevel::Identify));
        assert_eq!(best_level(t, 1920, 90.0, 1.5, 10.0), Some(DoriLevel::Observe));
        assert_eq!(best_level(t, 1920, 90.0, 1.5, 30.0), Some(DoriLevel::Detect));
        assert_eq!(best_level(t, 1920, 90.0, 1.5, 70.0), Some(DoriLevel::Monitor));
        assert_eq!(best_level(t, 1920, 90.0, 1.5, 80.0), None);
        assert_eq!("recognize".parse::<DoriLevel>(), Ok(DoriLevel::Recognise));
        assert!("sharp".parse::<DoriLevel>().unwrap_err().contains("observe"));
    }
}
