//! The classical reference classifier (`filter-rf`) against scipy and
//! scikit-learn (`tests/fixtures/filter_rf`, made by
//! `scripts/filter_rf_reference.py`):
//! - the filter bank equals scipy.ndimage's filters to 1e-9 (absolute, f64);
//! - on the bundled demo scene (Sen1Floods11 `Spain_7370579`) with the
//!   evaluation protocol's training pixels of seeds 0-2, the forest on the raw
//!   values + filter features is within 1 OA point of scikit-learn's mean over
//!   the three seeds (its own forest's randomness differs), and within 2 points
//!   on each seed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

mod common;

use common::{demo, json};
use unidiff_studio::io::{SarScaleChoice, open_hsi, open_labels_with_offset, open_sar};
use unidiff_studio::metrics::summary::MetricsSummary;
use unidiff_studio::pipeline::baseline::{ForestConfig, pixel_features, random_forest_map};
use unidiff_studio::pipeline::filter_features::filter_features;
use unidiff_studio::products::filter_bank::{Plane, filter_bank, filter_names};
use unidiff_studio::scene::{LabelImage, Scene};

fn values(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn filter_bank_matches_scipy_ndimage() {
    let f = json("filter_rf/filter_bank.json");
    let (h, w) = (
        f["height"].as_u64().unwrap() as usize,
        f["width"].as_u64().unwrap() as usize,
    );
    let image = values(&f["image"]);
    let ours = filter_bank(Plane {
        values: &image,
        width: w,
        height: h,
    });
    let expected = f["filters"].as_array().unwrap();
    assert_eq!(ours.len(), expected.len());
    for ((mine, theirs), name) in ours.iter().zip(expected).zip(filter_names()) {
        assert_eq!(theirs["name"].as_str().unwrap(), name);
        let theirs = values(&theirs["values"]);
        let worst = mine
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-9, "{name}: largest difference {worst:e}");
    }
}

#[test]
fn filter_forest_matches_scikit_learn_on_the_protocol() {
    let p = json("filter_rf/protocol.json");
    let hsi = open_hsi(&demo("Spain_7370579_S2Hand.tif")).unwrap();
    let sar = open_sar(&demo("Spain_7370579_S1Hand.tif"), SarScaleChoice::Auto).unwrap();
    // Hand labels -1 / 0 / 1 -> 0 (none) / 1 / 2.
    let hand = open_labels_with_offset(&demo("Spain_7370579_LabelHand.tif"), 1).unwrap();
    let scene = Scene::from_layers(Some(hsi), Some(sar), None, None).unwrap();
    let raw = pixel_features(&scene).unwrap();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for s in p["seeds"].as_array().unwrap() {
        let seed = s["seed"].as_u64().unwrap();
        let mut train = LabelImage {
            grid: hand.grid.clone(),
            data: vec![0; hand.data.len()],
        };
        for (i, c) in s["train_index"]
            .as_array()
            .unwrap()
            .iter()
            .zip(s["train_class"].as_array().unwrap())
        {
            train.data[i.as_u64().unwrap() as usize] = c.as_u64().unwrap() as u8;
        }
        let test: Vec<u8> = hand
            .data
            .iter()
            .zip(&train.data)
            .map(|(&h, &t)| if t != 0 { 0 } else { h })
            .collect();
        assert_eq!(
            test.iter().filter(|&&c| c != 0).count() as u64,
            s["test_pixels"].as_u64().unwrap()
        );
        let started = std::time::Instant::now();
        let features = filter_features(&raw, &train).unwrap();
        let cfg = ForestConfig {
            trees: 200,
            seed,
            ..ForestConfig::default()
        };
        let map = random_forest_map(&features, &train, &cfg).unwrap();
        let m = MetricsSummary::from_labels(&test, &map, 2);
        let sk = s["sklearn"]["filter_rf"]["oa"].as_f64().unwrap();
        eprintln!(
            "seed {seed}: filter-rf OA {:.2} kappa {:.2} (scikit-learn {sk:.2}), {:.1} s",
            100.0 * m.oa,
            100.0 * m.kappa,
            started.elapsed().as_secs_f64()
        );
        assert!(
            (100.0 * m.oa - sk).abs() < 2.0,
            "seed {seed}: OA {} vs scikit-learn {sk}",
            100.0 * m.oa
        );
        ours.push(100.0 * m.oa);
        theirs.push(sk);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        (mean(&ours) - mean(&theirs)).abs() < 1.0,
        "mean OA {} vs scikit-learn {}",
        mean(&ours),
        mean(&theirs)
    );
}
