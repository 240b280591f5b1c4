//! Bad input gives a typed error with a readable message, never a panic; one
//! test per case.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

mod common;

use std::io::Write;

use common::demo;
use unidiff_studio::io::{ReadError, SarScaleChoice, open_hsi, open_labels, open_sar};
use unidiff_studio::products::ProductError;
use unidiff_studio::products::pca::render_pca;
use unidiff_studio::products::prgb::render_prgb;
use unidiff_studio::scene::{HsiCube, PixelGrid, Scene};

#[test]
fn missing_file() {
    let err = open_hsi(std::path::Path::new("/nonexistent/cube.tif")).unwrap_err();
    assert!(matches!(err, ReadError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("no such file"), "{err}");
}

#[test]
fn truncated_geotiff() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(demo("Spain_7370579_S2Hand.tif")).unwrap();
    let cut = dir.path().join("cut.tif");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let err = open_hsi(&cut).unwrap_err();
    assert!(
        matches!(
            err,
            ReadError::BandRead { .. } | ReadError::NotARaster { .. }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("cut.tif"), "{text}");
}

#[test]
fn envi_header_larger_than_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("cube.bin");
    std::fs::write(&bin, vec![0u8; 4 * 10 * 10]).unwrap(); // 10 x 10 x 1 float32
    let mut hdr = std::fs::File::create(dir.path().join("cube.hdr")).unwrap();
    writeln!(
        hdr,
        "ENVI\nsamples = 10\nlines = 20\nbands = 2\nheader offset = 0\nfile type = ENVI Standard\ndata type = 4\ninterleave = bsq\nbyte order = 0"
    )
    .unwrap();
    drop(hdr);
    let err = open_hsi(&bin).unwrap_err();
    match &err {
        ReadError::EnviSizeMismatch {
            expected, actual, ..
        } => {
            assert_eq!((*expected, *actual), (1600, 400));
        }
        ReadError::NotARaster { .. } => {}
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("cube.bin"), "{err}");
}

#[test]
fn hsi_and_sar_on_different_grids() {
    let hsi = open_hsi(&shared_or_skip!(
        "enmap_potsdam/images/enmap_potsdam_tile_64_0.tif",
    ))
    .unwrap();
    let sar = open_sar(&demo("Spain_7370579_S1Hand.tif"), SarScaleChoice::Auto).unwrap();
    let err = Scene::from_layers(Some(hsi), Some(sar), None, None).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("HSI: 32 rows x 32 cols"), "{text}");
    assert!(text.contains("SAR: 512 rows x 512 cols"), "{text}");
}

#[test]
fn same_size_but_shifted_grids() {
    let a = open_hsi(&shared_or_skip!(
        "enmap_potsdam/images/enmap_potsdam_tile_64_0.tif",
    ))
    .unwrap();
    let b = open_labels(&shared_or_skip!(
        "enmap_potsdam/labels/enmap_potsdam_tile_96_32.tif",
    ))
    .unwrap();
    let err = Scene::from_layers(Some(a), None, Some(b), None).unwrap_err();
    assert!(err.to_string().contains("different geotransforms"), "{err}");
}

#[test]
fn one_band_cube_asked_for_pca() {
    let cube = HsiCube {
        grid: PixelGrid::plain(4, 4),
        bands: 1,
        data: (0..16).map(|v| v as f32).collect(),
        wavelengths_nm: None,
        band_names: vec![String::new()],
    };
    let err = render_pca(&cube).unwrap_err();
    assert_eq!(
        err,
        ProductError::TooFewBands {
            usable: 1,
            needed: 3
        }
    );
    assert!(err.to_string().contains("at least 3 bands"), "{err}");
}

#[test]
fn all_nan_band_asked_for_prgb() {
    let mut data: Vec<f32> = (0..48).map(|v| v as f32).collect();
    data[16..32].iter_mut().for_each(|v| *v = f32::NAN);
    let cube = HsiCube {
        grid: PixelGrid::plain(4, 4),
        bands: 3,
        data,
        wavelengths_nm: None,
        band_names: vec![String::new(); 3],
    };
    let err = render_prgb(&cube, [0, 1, 2]).unwrap_err();
    assert_eq!(err, ProductError::EmptyBand { band: 1 });
}

#[test]
fn all_nodata_raster() {
    // A GeoTIFF whose every sample is its nodata value.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.tif");
    let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let ds = driver
        .create_with_band_type::<f32, _>(&path, 8, 8, 2)
        .unwrap();
    for b in 1..=2 {
        let mut band = ds.rasterband(b).unwrap();
        band.set_no_data_value(Some(-9999.0)).unwrap();
        let mut buf = gdal::raster::Buffer::new((8, 8), vec![-9999f32; 64]);
        band.write((0, 0), (8, 8), &mut buf).unwrap();
    }
    drop(ds);
    let err = open_hsi(&path).unwrap_err();
    assert!(err.to_string().contains("every sample is nodata"), "{err}");
}

#[test]
fn mat_without_the_expected_variable() {
    let err = open_hsi(&shared_or_skip!("benchmark_labels/TrainImage.mat")).unwrap_err();
    match &err {
        ReadError::MissingVariable { found, .. } => assert_eq!(found, "TrainImage"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("data_HS_LR"), "{err}");
}

#[test]
fn single_band_sar() {
    let err = open_sar(
        &shared_or_skip!(
            "sentinel1_vv_pyrosar/S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"
        ),
        SarScaleChoice::Auto,
    )
    .unwrap_err();
    assert!(err.to_string().contains("two polarisations"), "{err}");
}

#[test]
fn file_that_is_not_a_raster() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.tif");
    std::fs::write(&path, b"this is not a tiff").unwrap();
    let err = open_hsi(&path).unwrap_err();
    assert!(matches!(err, ReadError::NotARaster { .. }), "{err:?}");
}

/// A header that declares 200,000 x 100,000 pixels x 13 bands (a VRT with no
/// sources: GDAL reads it as zeros): a whole read is refused before any
/// sample is read, naming the file, the size and `predict`.
#[test]
fn a_raster_larger_than_memory_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let vrt = dir.path().join("huge.vrt");
    let bands: String = (1..=13)
        .map(|b| format!("<VRTRasterBand dataType=\"Int16\" band=\"{b}\"/>"))
        .collect();
    std::fs::write(
        &vrt,
        format!("<VRTDataset rasterXSize=\"200000\" rasterYSize=\"100000\">{bands}</VRTDataset>"),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let err = open_hsi(&vrt).unwrap_err();
    assert!(matches!(err, ReadError::TooBig { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("huge.vrt") && text.contains("200000 x 100000"),
        "{text}"
    );
    assert!(
        text.contains("1040.0 GB") && text.contains("predict"),
        "{text}"
    );
    assert!(started.elapsed().as_secs() < 5, "refused before reading");
    // Labels and SAR of that size are refused the same way.
    assert!(matches!(
        open_labels(&vrt).unwrap_err(),
        ReadError::TooBig { .. }
    ));
    assert!(matches!(
        open_sar(&vrt, SarScaleChoice::Auto).unwrap_err(),
        ReadError::TooBig { .. }
    ));
}
