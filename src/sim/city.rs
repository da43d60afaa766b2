//! The synthetic city (`geo::synthetic`), where the simulators and `tianwang sim-city` have long
//! found it.

pub use crate::geo::synthetic::*;
