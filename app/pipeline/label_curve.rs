//! The label-efficiency curve: how the map's accuracy grows with the number
//! of training labels. The head is trained again on nested, seeded subsets
//! of the training labels (n per class, several draws per n) from the same
//! features as the run's own head, each subset's map is merged like the
//! run's, and every map is scored on the test labels. A draw's subsets are
//! nested: the first n pixels of each class in one seeded order, so a larger
//! n only adds labels. An n at or above every class's count is the run's own
//! training set, and its map is the run's map.

use serde::Serialize;

use crate::base::NormalRng;
use crate::metrics::summary::MetricsSummary;
use crate::scene::LabelImage;

/// Draws per point when none are given.
pub const DEFAULT_REPEATS: usize = 3;

/// Which subsets to train on.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct LabelCurveSpec {
    /// Labels per class of each point, ascending, without repeats.
    pub per_class: Vec<usize>,
    /// Seeded draws per point.
    pub repeats: usize,
    pub seed: u64,
}

impl LabelCurveSpec {
    /// Checks and orders the sizes.
    pub fn new(mut per_class: Vec<usize>, repeats: usize, seed: u64) -> Result<Self, String> {
        if per_class.is_empty() {
            return Err("give at least one number of labels per class".into());
        }
        if per_class.contains(&0) {
            return Err("a point of the curve needs at least one label per class".into());
        }
        if repeats == 0 {
            return Err("a point of the curve needs at least one draw".into());
        }
        per_class.sort_unstable();
        per_class.dedup();
        Ok(Self {
            per_class,
            repeats,
            seed,
        })
    }
}

/// One subset of the training labels.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveSubset {
    /// Labels per class asked for (a class with fewer gives all it has).
    pub per_class: usize,
    /// Which draw (0-based).
    pub repeat: usize,
    /// Scene pixels in the subset (row-major), ascending.
    pub pixels: Vec<usize>,
}

impl CurveSubset {
    /// Per scene pixel: in the subset.
    pub fn mask(&self, pixels: usize) -> Vec<bool> {
        let mut mask = vec![false; pixels];
        for &p in &self.pixels {
            mask[p] = true;
        }
        mask
    }
}

/// The subsets of `train` for `spec`: draw by draw, each point's in
/// ascending n.
pub fn nested_subsets(train: &LabelImage, spec: &LabelCurveSpec) -> Vec<CurveSubset> {
    let classes = train.class_counts();
    let mut out = Vec::with_capacity(spec.repeats * spec.per_class.len());
    for repeat in 0..spec.repeats {
        // One seeded order of each class's pixels per draw.
        let mut rng = NormalRng::new(
            spec.seed
                .wrapping_add((repeat as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        );
        let orders: Vec<Vec<usize>> = classes
            .iter()
            .map(|&(class, _)| {
                let mut pixels: Vec<usize> = (0..train.data.len())
                    .filter(|&i| train.data[i] == class)
                    .collect();
                let count = pixels.len();
                for i in 0..count {
                    let j = i + rng.below(count - i);
                    pixels.swap(i, j);
                }
                pixels
            })
            .collect();
        for &n in &spec.per_class {
            let mut pixels: Vec<usize> = orders
                .iter()
                .flat_map(|order| order[..n.min(order.len())].iter().copied())
                .collect();
            pixels.sort_unstable();
            out.push(CurveSubset {
                per_class: n,
                repeat,
                pixels,
            });
        }
    }
    out
}

/// One trained subset, scored.
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    pub per_class: usize,
    pub repeat: usize,
    /// Training pixels in the subset.
    pub labels: usize,
    /// Scores on the test labels (None without test labels).
    pub metrics: Option<MetricsSummary>,
}

/// The spread of one point's draws.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spread {
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// Sample standard deviation (None with one draw).
    pub sd: Option<f64>,
}

impl Spread {
    fn of(values: &[f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = (n > 1).then(|| {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        });
        Some(Self {
            mean,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            sd,
        })
    }
}

/// One n of the curve over its draws.
#[derive(Debug, Clone, Serialize)]
pub struct CurveRow {
    pub per_class: usize,
    /// Mean training pixels per draw.
    pub labels: f64,
    pub oa: Option<Spread>,
    pub mf1: Option<Spread>,
    pub kappa: Option<Spread>,
}

/// Every point of the curve and its rows per n.
#[derive(Debug, Clone, Serialize)]
pub struct LabelCurve {
    pub spec: LabelCurveSpec,
    pub points: Vec<CurvePoint>,
    pub rows: Vec<CurveRow>,
    pub seconds: f64,
}

impl LabelCurve {
    pub fn new(spec: LabelCurveSpec, points: Vec<CurvePoint>, seconds: f64) -> Self {
        let rows = spec
            .per_class
            .iter()
            .map(|&n| {
                let at: Vec<&CurvePoint> = points.iter().filter(|p| p.per_class == n).collect();
                let metric = |f: fn(&MetricsSummary) -> f64| -> Option<Spread> {
                    let values: Vec<f64> = at
                        .iter()
                        .filter_map(|p| p.metrics.as_ref().map(f))
                        .collect();
                    Spread::of(&values)
                };
                CurveRow {
                    per_class: n,
                    labels: at.iter().map(|p| p.labels as f64).sum::<f64>()
                        / at.len().max(1) as f64,
                    oa: metric(|m| m.oa),
                    mf1: metric(|m| m.mf1),
                    kappa: metric(|m| m.kappa),
                }
            })
            .collect();
        Self {
            spec,
            points,
            rows,
            seconds,
        }
    }

    /// One line per n: labels, then mean, sd, min and max of OA, mF1 and
    /// kappa (empty cells without test labels or with one draw).
    pub fn to_csv(&self) -> String {
        let mut s = String::from(
            "labels_per_class,mean_labels,draws,oa_mean,oa_sd,oa_min,oa_max,mf1_mean,mf1_sd,mf1_min,mf1_max,kappa_mean,kappa_sd,kappa_min,kappa_max\n",
        );
        let cells = |x: &Option<Spread>| match x {
            Some(x) => format!(
                "{:.6},{},{:.6},{:.6}",
                x.mean,
                x.sd.map_or(String::new(), |v| format!("{v:.6}")),
                x.min,
                x.max
            ),
            None => ",,,".into(),
        };
        for r in &self.rows {
            s.push_str(&format!(
                "{},{:.1},{},{},{},{}\n",
                r.per_class,
                r.labels,
                self.spec.repeats,
                cells(&r.oa),
                cells(&r.mf1),
                cells(&r.kappa)
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::PixelGrid;

    fn labels() -> LabelImage {
        // 20 x 10: class 1 on 30 pixels, class 2 on 12, class 3 on 5.
        let mut data = vec![0u8; 200];
        for (i, v) in data.iter_mut().enumerate() {
            *v = match i % 4 {
                0 if i < 120 => 1,
                1 if i < 48 => 2,
                2 if i < 20 => 3,
                _ => 0,
            };
        }
        LabelImage {
            grid: PixelGrid::plain(20, 10),
            data,
        }
    }

    #[test]
    fn subsets_are_nested_seeded_and_per_class() {
        let train = labels();
        let counts = train.class_counts();
        assert_eq!(counts, vec![(1, 30), (2, 12), (3, 5)]);
        let spec = LabelCurveSpec::new(vec![10, 2, 5], 3, 7).expect("valid");
        assert_eq!(spec.per_class, vec![2, 5, 10]);
        let subsets = nested_subsets(&train, &spec);
        assert_eq!(subsets.len(), 9);
        assert_eq!(subsets, nested_subsets(&train, &spec), "seeded");
        for draw in subsets.chunks(3) {
            for s in draw {
                // n of each class, or all of it.
                for &(class, count) in &counts {
                    let got = s.pixels.iter().filter(|&&p| train.data[p] == class).count();
                    assert_eq!(
                        got,
                        s.per_class.min(count),
                        "class {class} at n {}",
                        s.per_class
                    );
                }
            }
            for pair in draw.windows(2) {
                let larger = pair[1].mask(200);
                assert!(pair[0].pixels.iter().all(|&p| larger[p]), "nested");
            }
        }
        // Draws differ; another seed differs.
        assert_ne!(subsets[0].pixels, subsets[3].pixels);
        let other = nested_subsets(&train, &LabelCurveSpec::new(vec![2, 5, 10], 3, 8).unwrap());
        assert_ne!(subsets[0].pixels, other[0].pixels);
        // Every label once n reaches the largest class.
        let all = nested_subsets(&train, &LabelCurveSpec::new(vec![30], 1, 0).unwrap());
        assert_eq!(all[0].pixels.len(), 47);
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(LabelCurveSpec::new(vec![], 3, 0).is_err());
        assert!(LabelCurveSpec::new(vec![0, 5], 3, 0).is_err());
        assert!(LabelCurveSpec::new(vec![5], 0, 0).is_err());
    }

    #[test]
    fn rows_give_the_spread_over_draws() {
        let spec = LabelCurveSpec::new(vec![5], 3, 0).unwrap();
        let point = |repeat, oa| CurvePoint {
            per_class: 5,
            repeat,
            labels: 10,
            metrics: Some(MetricsSummary::from_labels(
                &[1, 1, 2, 2],
                &if oa { [1, 1, 2, 2] } else { [1, 2, 2, 2] },
                2,
            )),
        };
        let curve = LabelCurve::new(
            spec,
            vec![point(0, true), point(1, true), point(2, false)],
            1.0,
        );
        let oa = curve.rows[0].oa.clone().expect("scored");
        assert!((oa.mean - (1.0 + 1.0 + 0.75) / 3.0).abs() < 1e-12);
        assert_eq!((oa.min, oa.max), (0.75, 1.0));
        let sd = oa.sd.expect("three draws");
        assert!((sd - (0.0625f64 / 3.0).sqrt()).abs() < 1e-12, "{sd}");
        let csv = curve.to_csv();
        assert_eq!(csv.lines().count(), 2);
        assert!(
            csv.lines()
                .nth(1)
                .unwrap()
                .starts_with("5,10.0,3,0.916667,"),
            "{csv}"
        );
    }
}
