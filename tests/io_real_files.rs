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

/// The elements of a PolSARpro folder written as one GeoTIFF, each band
/// described by its element's name (as PolSARpro and SNAP export them), on
/// the folder's grid.
fn matrix_geotiff(folder: &std::path::Path, elements: &[&str], out: &std::path::Path) {
    use gdal::Metadata;
    use gdal::raster::Buffer;
    let planes: Vec<(unidiff_studio::io::raster::RasterHeader, Vec<f32>)> = elements
        .iter()
        .map(|e| {
            unidiff_studio::io::raster::read_bands(&folder.join(format!("{e}.bin")), None).unwrap()
        })
        .collect();
    let (w, h) = (planes[0].0.grid.width, planes[0].0.grid.height);
    let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let ds = driver
        .create_with_band_type::<f32, _>(out, w, h, elements.len())
        .unwrap();
    for (b, (name, (_, data))) in elements.iter().zip(&planes).enumerate() {
        let mut band = ds.rasterband(b + 1).unwrap();
        band.set_description(name).unwrap();
        let mut buffer = Buffer::new((w, h), data.clone());
        band.write((0, 0), (w, h), &mut buffer).unwrap();
    }
}

/// T3, C3 and C2 matrices as GeoTIFFs (band descriptions `T11, T22, …`)
/// are read as their PolSARpro folders are: the same diagonal, the same
/// off-diagonal parts, the same Pauli rendering and the same forest map on
/// every element; a raster whose extra bands name no element says which
/// bands it left out.
#[test]
fn polsar_matrices_as_geotiffs_read_as_their_folders() {
    use unidiff_studio::pipeline::baseline::{ForestConfig, pixel_features, random_forest_map};
    use unidiff_studio::scene::{LabelImage, Scene};
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], usize); 3] = [
        (
            "polsar_manitoba/full_pol/T3",
            &[
                "T11", "T22", "T33", "T12_real", "T12_imag", "T13_real", "T13_imag", "T23_real",
                "T23_imag",
            ],
            9,
        ),
        (
            "polsar_manitoba/full_pol/C3",
            &[
                "C11", "C12_real", "C12_imag", "C13_real", "C13_imag", "C22", "C23_real",
                "C23_imag", "C33",
            ],
            9,
        ),
        (
            "polsar_manitoba/dual_pol/C2_VVVH",
            &["C11", "C12_real", "C12_imag", "C22"],
            4,
        ),
    ];
    for (rel, elements, columns) in cases {
        let folder = shared_or_skip!(rel);
        let tif = dir.path().join(format!("{}.tif", elements.len()));
        matrix_geotiff(&folder, elements, &tif);
        let a = open_sar(&folder, SarScaleChoice::Auto).unwrap();
        let b = open_sar(&tif, SarScaleChoice::Auto).unwrap();
        assert_eq!(b.source_scale, PowerScale::Linear, "{rel}");
        assert!(
            b.scale_reason.contains("matrix by band description"),
            "{}",
            b.scale_reason
        );
        let diagonal = |s: &unidiff_studio::scene::SarImage| match &s.kind {
            SarKind::DualPol { c11, c22 } => vec![c11.clone(), c22.clone()],
            SarKind::QuadPol { t11, t22, t33 } => vec![t11.clone(), t22.clone(), t33.clone()],
        };
        let (da, db) = (diagonal(&a), diagonal(&b));
        assert_eq!(da.len(), db.len(), "{rel}");
        for (x, y) in da.iter().zip(&db) {
            assert!(
                x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()),
                "{rel}: the diagonal differs"
            );
        }
        assert_eq!(a.off_diagonal.len(), columns - da.len(), "{rel}");
        for ((na, va), (nb, vb)) in a.off_diagonal.iter().zip(&b.off_diagonal) {
            assert_eq!(na, nb, "{rel}");
            assert!(
                va.iter().zip(vb).all(|(p, q)| p.to_bits() == q.to_bits()),
                "{rel} {na}"
            );
        }
        // Read in windows (as `predict` reads), the same elements.
        let window = unidiff_studio::scene::Window {
            row0: 17,
            col0: 5,
            height: 40,
            width: 33,
        };
        let part = unidiff_studio::io::windowed::WindowedScene::open(None, Some(&tif))
            .unwrap()
            .read(window)
            .unwrap();
        let part = part.sar.unwrap();
        let whole = b.window(window);
        assert_eq!(diagonal(&part), diagonal(&whole), "{rel}: a window");
        assert_eq!(part.off_diagonal, whole.off_diagonal, "{rel}: a window");
        let (pa, pb) = (
            render_pauli(&a, PauliSettings::default()).unwrap(),
            render_pauli(&b, PauliSettings::default()).unwrap(),
        );
        assert!(pa.data == pb.data, "{rel}: the Pauli rendering differs");
        // A forest on every element, trained on every 37th pixel labelled
        // by the quartile of its first diagonal element.
        let first = &da[0];
        let mut sorted: Vec<f64> = first.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let quartile =
            |v: f64| 1 + (1..4).filter(|&q| v > sorted[q * sorted.len() / 4]).count() as u8;
        let train = LabelImage {
            grid: a.grid.clone(),
            data: first
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    if i % 37 == 0 && v.is_finite() {
                        quartile(v)
                    } else {
                        0
                    }
                })
                .collect(),
        };
        let cfg = ForestConfig {
            trees: 20,
            ..ForestConfig::default()
        };
        let mut maps = Vec::new();
        for sar in [a, b] {
            let mut t = train.clone();
            t.grid = sar.grid.clone();
            let scene = Scene::from_layers(None, Some(sar), Some(t.clone()), None).unwrap();
            let features = pixel_features(&scene).unwrap();
            assert_eq!(features.dim, columns, "{rel}: every element to the forest");
            maps.push(random_forest_map(&features, &t, &cfg).unwrap());
        }
        assert!(maps[0] == maps[1], "{rel}: the forest maps differ");
    }

    // Three bands that name no element: two read by position, the third said.
    let folder = shared_or_skip!("polsar_manitoba/dual_pol/C2_VVVH");
    let plain = dir.path().join("three.tif");
    matrix_geotiff(&folder, &["C11", "C22", "C12_real"], &plain);
    {
        let ds = gdal::Dataset::open_ex(
            &plain,
            gdal::DatasetOptions {
                open_flags: gdal::GdalOpenFlags::GDAL_OF_UPDATE,
                ..Default::default()
            },
        )
        .unwrap();
        for b in 1..=3 {
            use gdal::Metadata;
            ds.rasterband(b).unwrap().set_description("").unwrap();
        }
    }
    let sar = open_sar(&plain, SarScaleChoice::Linear).unwrap();
    assert!(sar.off_diagonal.is_empty());
    assert!(
        sar.scale_reason.contains("bands 3 of 3 not used"),
        "{}",
        sar.scale_reason
    );
}
