//! A validation sample of a class map as data: its points and the
//! allocation they were drawn with (`metrics::sample_design` draws one,
//! `io::sample_points` stores it for labelling).

use serde::Serialize;

/// One sample point: a pixel and the map class (its stratum) there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SamplePoint {
    pub row: usize,
    pub col: usize,
    pub stratum: u8,
}

/// One stratum of the design.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StratumAllocation {
    /// The map class.
    pub value: u8,
    /// Its mapped pixels.
    pub pixels: usize,
    /// Points drawn from it.
    pub points: usize,
}

/// A stratified random sample of a class map.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StratifiedSample {
    pub seed: u64,
    /// Points asked for per stratum.
    pub per_class: usize,
    /// Mapped classes in value order (class 0, unmapped, is no stratum).
    pub strata: Vec<StratumAllocation>,
    /// Sorted by stratum, then row, then column.
    pub points: Vec<SamplePoint>,
    /// Strata that could not get `per_class` points, and what that means.
    pub notes: Vec<String>,
}
