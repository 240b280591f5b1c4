//! Reading the real rasters of `../shared/data` and the MATLAB v7.3 fixtures:
//! benchmark labels with their class counts, EnMAP wavelengths, PolSARpro
//! folders, label arrays, and the georeference that comes with them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

mod common;

use common::fixture;
use unidiff_studio::io::mat::read_variable;
use unidiff_studio::io::raster::read_header;
use unidiff_studio::io::{SarScaleChoice, open_hsi, open_labels, open_sar};
use unidiff_studio::products::pauli::{PauliSettings, render_pauli};
use unidiff_studio::products::pca::{ScatterSum, render_pca};
use unidiff_studio::products::prgb::{RgbRequest, choose_rgb_bands};
use unidiff_studio::scene::{PowerScale, SarKind};

#[test]
fn augsburg_labels_have_the_method_counts() {
    let train = open_labels(&shared_or_skip!("benchmark_labels/TrainImage.mat")).unwrap();
    let test = open_labels(&shared_or_skip!("benchmark_labels/TestImage.mat")).unwrap();
    assert_eq!((train.grid.height, train.grid.width), (332, 485));
    assert_eq!(train.labelled(), 761);
    assert_eq!(test.labelled(), 77_533);
    assert_eq!(train.max_class(), 7);
    // Per-class counts of TrainImage (MATLAB v5): bincount 146 264 21 248 52 7 23.
    let counts: Vec<usize> = train.class_counts().iter().map(|(_, n)| *n).collect();
    assert_eq!(counts, vec![146, 264, 21, 248, 52, 7, 23]);
    // The dense float32 .npy of the same test labels agrees pixel for pixel.
    let npy = open_labels(&shared_or_skip!("benchmark_labels/test_label_Augsburg.npy")).unwrap();
    assert_eq!(npy.data, test.data);
}

#[test]
fn berlin_test_labels_read_from_npy() {
    let labels = open_labels(&shared_or_skip!("benchmark_labels/test_label_berlin.npy")).unwrap();
    assert_eq!((labels.grid.height, labels.grid.width), (1723, 476));
    assert_eq!(labels.labelled(), 461_851);
    assert_eq!(labels.max_class(), 8);
}

#[test]
fn matlab_v73_files_read_through_hdf5() {
    let labels = open_labels(&fixture("mat73/labels73.mat")).unwrap();
    assert_eq!((labels.grid.height, labels.grid.width), (6, 5));
    for r in 0..6 {
        for c in 0..5 {
            assert_eq!(
                labels.data[r * 5 + c] as usize,
                (r * 5 + c) % 4,
                "({r},{c})"
            );
        }
    }
    let cube = read_variable(&fixture("mat73/cube73.mat"), &["data_HS_LR"]).unwrap();
    assert_eq!((cube.height, cube.width, cube.bands), (4, 5, 3));
    for b in 0..3 {
        for r in 0..4 {
            for c in 0..5 {
                let v = cube.data[b * 20 + r * 5 + c];
                assert_eq!(v, (r * 100 + c * 10 + b) as f32, "({r},{c},{b})");
            }
        }
    }
}

#[test]
fn enmap_tiles_give_224_wavelengths_in_nm() {
    let path = shared_or_skip!("enmap_potsdam/images/enmap_potsdam_tile_64_0.tif");
    let header = read_header(&path).unwrap();
    assert_eq!(header.band_count, 224);
    let w = header.wavelengths_nm.clone().unwrap();
    assert_eq!(w.len(), 224);
    assert!((w[0] - 418.24).abs() < 1e-9, "{}", w[0]);
    assert!(
        w.windows(2).filter(|p| p[1] < p[0]).count() <= 1,
        "VNIR/SWIR overlap at most once"
    );
    assert!(*w.last().unwrap() > 2400.0 && *w.last().unwrap() < 2500.0);
    assert_eq!(header.grid.crs_name.as_deref(), Some("EPSG:32633"));
    assert_eq!(header.nodata, Some(-32768.0));
    // pRGB by wavelength, and a PCA that leaves out the empty bands.
    let cube = open_hsi(&path).unwrap();
    let bands = choose_rgb_bands(&cube, RgbRequest::Auto).unwrap();
    for (b, target) in bands.bands.iter().zip([640.0, 550.0, 470.0]) {
        assert!(
            (w[*b] - target).abs() < 10.0,
            "band {b} at {} nm for {target}",
            w[*b]
        );
    }
    let (_, fit) = render_pca(&cube).unwrap();
    assert!(!fit.bands_excluded.is_empty());
    assert!(fit.bands_excluded.iter().all(|&b| cube.band_is_empty(b)));
    assert_eq!(fit.n_fit_pixels, 32 * 32);
    // EnMAP L2A reflectance is integer-valued (stored here as float32): the
    // scatter is summed exactly in integers.
    if unidiff_studio::products::integer_scatter::available() {
        assert_eq!(fit.scatter, ScatterSum::ExactInteger);
    }
    // Labels of the tile lie on its grid.
    let labels = open_labels(&shared_or_skip!(
        "enmap_potsdam/labels/enmap_potsdam_tile_64_0.tif",
    ))
    .unwrap();
    header
        .grid
        .check_same("image", &labels.grid, "labels")
        .unwrap();
}

#[test]
fn polsar_folders_give_quad_and_dual_pol_pauli() {
    let quad = open_sar(
        &shared_or_skip!("polsar_manitoba/full_pol/T3"),
        SarScaleChoice::Auto,
    )
    .unwrap();
    assert!(matches!(quad.kind, SarKind::QuadPol { .. }));
    assert_eq!((quad.grid.height, quad.grid.width), (201, 101));
    let img = render_pauli(&quad, PauliSettings::default()).unwrap();
    assert_eq!(img.data.len(), 201 * 101 * 3);
    assert!(img.channel(0).iter().any(|&v| v > 200) && img.channel(2).iter().any(|&v| v > 200));

    // C3 gives the same coherency diagonal as T3, up to float32 rounding.
    let c3 = open_sar(
        &shared_or_skip!("polsar_manitoba/full_pol/C3"),
        SarScaleChoice::Auto,
    )
    .unwrap();
    if let (SarKind::QuadPol { t11: a, t22: b, .. }, SarKind::QuadPol { t11: c, t22: d, .. }) =
        (&quad.kind, &c3.kind)
    {
        for i in (0..a.len()).step_by(97) {
            assert!(
                (a[i] - c[i]).abs() <= 1e-4 * a[i].abs().max(1e-6),
                "T11 {i}: {} vs {}",
                a[i],
                c[i]
            );
            assert!(
                (b[i] - d[i]).abs() <= 1e-4 * b[i].abs().max(1e-6),
                "T22 {i}: {} vs {}",
                b[i],
                d[i]
            );
        }
    } else {
        panic!("C3 folder not read as quad-pol");
    }

    let dual = open_sar(
        &shared_or_skip!("polsar_manitoba/dual_pol/C2_VVVH"),
        SarScaleChoice::Auto,
    )
    .unwrap();
    assert!(matches!(dual.kind, SarKind::DualPol { .. }));
    assert_eq!(dual.source_scale, PowerScale::Linear);
    let img = render_pauli(&dual, PauliSettings::default()).unwrap();
    assert_eq!(img.data.len(), 201 * 101 * 3);
    assert!(img.data.iter().any(|&v| v > 0));
}

#[test]
fn rgb_geotiff_keeps_its_crs_and_nodata() {
    let path = shared_or_skip!("rasterio_rgb/RGB.byte.tif");
    let header = read_header(&path).unwrap();
    assert_eq!(header.grid.crs_name.as_deref(), Some("EPSG:32618"));
    assert_eq!(header.nodata, Some(0.0));
    let cube = open_hsi(&path).unwrap();
    // Nodata pixels become NaN, never values.
    let zeros = cube.band(0).iter().filter(|v| **v == 0.0).count();
    assert_eq!(zeros, 0);
    assert!(cube.band(0).iter().any(|v| v.is_nan()));
}
