//! Cleaning a class map to a minimum mapping unit, one step at a time, as
//! the app's results window and `unidiff-studio postprocess` do it: GDAL's
//! sieve filter (regions under N pixels, or under an area in hectares, join
//! their largest neighbour) and a K x K majority filter. Each step keeps
//! what a report needs: how many pixels it changed, the class areas after
//! it and, where test labels exist, the map's accuracy before and after.

use std::sync::Arc;

use super::classification::ClassifierChoice;
use crate::io::sieve::{SieveError, sieve};
use crate::metrics::areas::{ClassAreas, PixelAreas, class_areas};
use crate::metrics::summary::MetricsSummary;
use crate::products::majority::majority_filter;
use crate::scene::{ClassInfo, PixelGrid};

/// One clean-up step.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum CleanStep {
    /// GDAL's sieve: regions (4- or 8-connected) under `min_pixels` take
    /// the class of their largest neighbour; `hectares` is the unit as the
    /// user gave it, when it was an area.
    Sieve {
        min_pixels: usize,
        connectivity: u8,
        hectares: Option<f64>,
    },
    /// Each mapped pixel takes the most frequent class of the K x K window
    /// around it (K odd, at least 3).
    Majority { k: usize },
}

/// Why a step could not run.
#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    #[error("a {0} x {0} majority window: K must be odd and at least 3")]
    MajorityWindow(usize),
    #[error("a sieve needs a minimum unit of at least 2 pixels (every region has 1)")]
    SieveUnit,
    #[error("{0}")]
    PixelArea(String),
    #[error(transparent)]
    Sieve(#[from] SieveError),
}

impl CleanStep {
    /// A sieve whose unit is an area: the pixel count of the map's largest
    /// pixel that covers `ha` hectares (a region of fewer pixels is surely
    /// under the unit).
    pub fn sieve_hectares(grid: &PixelGrid, ha: f64, connectivity: u8) -> Result<Self, CleanError> {
        let areas = PixelAreas::of(grid).map_err(CleanError::PixelArea)?;
        let pixel_m2 = (0..grid.height)
            .map(|r| areas.at_row(r))
            .fold(0.0, f64::max);
        if !(pixel_m2 > 0.0 && ha.is_finite() && ha > 0.0) {
            return Err(CleanError::PixelArea(format!(
                "a minimum unit of {ha} ha on pixels of {pixel_m2} m²: both must be positive"
            )));
        }
        Ok(Self::Sieve {
            min_pixels: (ha * 1e4 / pixel_m2).ceil() as usize,
            connectivity,
            hectares: Some(ha),
        })
    }

    /// What the step does, for people.
    pub fn describe(&self) -> String {
        match *self {
            Self::Sieve {
                min_pixels,
                connectivity,
                hectares,
            } => match hectares {
                Some(ha) => format!(
                    "sieve: regions under {ha} ha ({min_pixels} px), {connectivity}-connected"
                ),
                None => format!("sieve: regions under {min_pixels} px, {connectivity}-connected"),
            },
            Self::Majority { k } => format!("{k} x {k} majority"),
        }
    }

    /// The map after this step.
    pub fn apply(&self, map: &[u8], grid: &PixelGrid) -> Result<Vec<u8>, CleanError> {
        match *self {
            Self::Sieve {
                min_pixels,
                connectivity,
                ..
            } => {
                if min_pixels < 2 {
                    return Err(CleanError::SieveUnit);
                }
                Ok(sieve(map, grid, min_pixels, connectivity)?)
            }
            Self::Majority { k } => {
                if k < 3 || k % 2 == 0 {
                    return Err(CleanError::MajorityWindow(k));
                }
                Ok(majority_filter(map, grid.width, grid.height, k))
            }
        }
    }
}

/// The test labels a cleaned map is scored on (0 = not scored) and the
/// number of classes scored.
#[derive(Debug, Clone)]
pub struct ScoringLabels {
    pub labels: Vec<u8>,
    pub classes: usize,
}

/// Accuracy on the test labels before and after one step.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepScores {
    pub oa_before: f64,
    pub oa_after: f64,
    pub mf1_before: f64,
    pub mf1_after: f64,
    /// Test pixels scored.
    pub pixels: u64,
}

/// A map after a clean-up step, and what the step did.
#[derive(Debug, Clone)]
pub struct CleanedMap {
    /// The classifier whose map the steps clean.
    pub source: ClassifierChoice,
    pub step: CleanStep,
    pub class_map: Arc<Vec<u8>>,
    /// Pixels whose class the step changed.
    pub changed: usize,
    pub areas: ClassAreas,
    pub scores: Option<StepScores>,
}

/// Runs `step` on `before` (the source's map, or its last cleaned map).
pub fn clean_map(
    source: ClassifierChoice,
    before: &[u8],
    grid: &PixelGrid,
    step: CleanStep,
    classes: &[ClassInfo],
    scoring: Option<&ScoringLabels>,
) -> Result<CleanedMap, CleanError> {
    let after = step.apply(before, grid)?;
    let changed = after.iter().zip(before).filter(|(a, b)| a != b).count();
    let scores = scoring.and_then(|s| {
        let b = MetricsSummary::from_labels(&s.labels, before, s.classes);
        let a = MetricsSummary::from_labels(&s.labels, &after, s.classes);
        (a.n_labelled > 0).then_some(StepScores {
            oa_before: b.oa,
            oa_after: a.oa,
            mf1_before: b.mf1,
            mf1_after: a.mf1,
            pixels: a.n_labelled,
        })
    });
    Ok(CleanedMap {
        source,
        step,
        areas: class_areas(&after, grid, classes),
        class_map: Arc::new(after),
        changed,
        scores,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::named_classes;

    fn grid(w: usize, h: usize) -> PixelGrid {
        PixelGrid {
            width: w,
            height: h,
            geo_transform: Some([500_000.0, 10.0, 0.0, 4_000_000.0, 0.0, -10.0]),
            crs_wkt: Some(
                gdal::spatial_ref::SpatialRef::from_epsg(32633)
                    .and_then(|s| s.to_wkt())
                    .expect("EPSG:32633"),
            ),
            crs_name: Some("EPSG:32633".into()),
        }
    }

    /// 8 x 6: class 1 left, class 2 right, a 2-pixel speck of 2 in the 1s
    /// and one unmapped column.
    fn speckled() -> Vec<u8> {
        let (w, h) = (8, 6);
        let mut map: Vec<u8> = (0..w * h)
            .map(|i| match i % w {
                0..=3 => 1,
                7 => 0,
                _ => 2,
            })
            .collect();
        map[2 * w + 1] = 2;
        map[2 * w + 2] = 2;
        map
    }

    #[test]
    fn a_sieve_step_removes_the_speck_counts_its_pixels_and_scores_both_maps() {
        let g = grid(8, 6);
        let map = speckled();
        // Test labels: the speck's pixels are truly class 1, one pixel of
        // the right half is class 2.
        let mut labels = vec![0u8; 48];
        labels[2 * 8 + 1] = 1;
        labels[2 * 8 + 2] = 1;
        labels[5] = 2;
        let scoring = ScoringLabels { labels, classes: 2 };
        let step = CleanStep::Sieve {
            min_pixels: 3,
            connectivity: 4,
            hectares: None,
        };
        let classes = named_classes(2, &[]);
        let c = clean_map(
            ClassifierChoice::Mlp,
            &map,
            &g,
            step,
            &classes,
            Some(&scoring),
        )
        .expect("sieve");
        assert_eq!(c.changed, 2);
        assert_eq!(c.class_map[2 * 8 + 1], 1);
        assert!(c.class_map.iter().skip(7).step_by(8).all(|&v| v == 0));
        let s = c.scores.expect("scored");
        assert_eq!(s.pixels, 3);
        assert!((s.oa_before - 1.0 / 3.0).abs() < 1e-12);
        assert!((s.oa_after - 1.0).abs() < 1e-12);
        // 4 x 6 pixels of class 1 now, of 100 m² each.
        let one = c
            .areas
            .classes
            .iter()
            .find(|a| a.value == 1)
            .expect("class 1");
        assert_eq!(one.pixels, 24);
        assert!((one.ha.expect("ha") - 0.24).abs() < 1e-9);
    }

    #[test]
    fn an_area_unit_becomes_pixels_and_bad_steps_are_refused() {
        let g = grid(8, 6);
        // 0.05 ha = 500 m² = 5 pixels of 100 m².
        let step = CleanStep::sieve_hectares(&g, 0.05, 8).expect("area unit");
        assert_eq!(
            step,
            CleanStep::Sieve {
                min_pixels: 5,
                connectivity: 8,
                hectares: Some(0.05)
            }
        );
        assert!(step.describe().contains("0.05 ha (5 px)"));
        assert!(CleanStep::sieve_hectares(&g, -1.0, 4).is_err());
        let map = speckled();
        for k in [1, 4] {
            let e = CleanStep::Majority { k }.apply(&map, &g).unwrap_err();
            assert!(e.to_string().contains("odd"), "{e}");
        }
        let one = CleanStep::Sieve {
            min_pixels: 1,
            connectivity: 4,
            hectares: None,
        };
        assert!(matches!(one.apply(&map, &g), Err(CleanError::SieveUnit)));
        let e = CleanStep::Sieve {
            min_pixels: 3,
            connectivity: 6,
            hectares: None,
        }
        .apply(&map, &g)
        .unwrap_err();
        assert!(e.to_string().contains("connectivity"), "{e}");
    }

    #[test]
    fn a_majority_step_keeps_unmapped_pixels() {
        let g = grid(8, 6);
        let map = speckled();
        let c = clean_map(
            ClassifierChoice::Rf,
            &map,
            &g,
            CleanStep::Majority { k: 3 },
            &named_classes(2, &[]),
            None,
        )
        .expect("majority");
        assert!(c.changed >= 1);
        assert!(c.scores.is_none());
        assert!(c.class_map.iter().skip(7).step_by(8).all(|&v| v == 0));
    }
}
