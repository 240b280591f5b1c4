//! The class-map GeoTIFF as GIS tools read it: gdalinfo shows the CRS, the
//! colour table and the class names; QGIS finds a paletted `.qml` style.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

mod common;

use common::demo;
use unidiff_studio::io::classmap::write_class_map;
use unidiff_studio::io::open_labels;
use unidiff_studio::scene::ClassInfo;

#[test]
fn class_map_geotiff_carries_crs_colours_and_names() {
    let labels = open_labels(&demo("Spain_7370579_LabelHand.tif")).unwrap();
    // The hand label (0 dry, 1 water, -1 nodata) as classes 1 and 2.
    let map: Vec<u8> = labels.data.iter().map(|&v| v + 1).collect();
    let classes = vec![
        ClassInfo {
            value: 1,
            name: "dry land".into(),
            color: [200, 170, 90],
        },
        ClassInfo {
            value: 2,
            name: "open water".into(),
            color: [30, 90, 220],
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("map.tif");
    write_class_map(&path, &map, &labels.grid, &classes).unwrap();

    let ds = gdal::Dataset::open(&path).unwrap();
    assert_eq!(ds.spatial_ref().unwrap().auth_code().unwrap(), 4326);
    let band = ds.rasterband(1).unwrap();
    assert_eq!(band.no_data_value(), Some(0.0));
    let table = band.color_table().unwrap();
    let water = table.entry_as_rgb(2).unwrap();
    assert_eq!((water.r, water.g, water.b, water.a), (30, 90, 220, 255));
    let back = band.read_band_as::<u8>().unwrap();
    assert_eq!(back.data(), map.as_slice());

    let info = std::process::Command::new("gdalinfo")
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("Color Table"), "{text}");
    assert!(text.contains("open water"), "{text}");
    assert!(text.contains("dry land"), "{text}");
    assert!(text.contains("NoData Value=0"), "{text}");
    assert!(
        text.contains("EPSG\",4326") || text.contains("WGS 84"),
        "{text}"
    );

    let qml = std::fs::read_to_string(dir.path().join("map.qml")).unwrap();
    assert!(qml.contains("rasterrenderer type=\"paletted\""));
    assert!(
        qml.contains("label=\"open water\" color=\"#1e5adc\""),
        "{qml}"
    );
    // Nothing temporary is left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
}
