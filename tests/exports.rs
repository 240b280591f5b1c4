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

/// Labels digitised as vectors in another CRS (EPSG:4326 over a 10 m UTM
/// scene): a polygon given by class number, a point given by class name, a
/// point off the scene and a feature without a class; GDAL burns the two on
/// the scene's grid, the other two are counted. A layer without a class
/// field is refused with the fields it has.
#[test]
fn vector_labels_are_reprojected_and_burnt_onto_the_scene_grid() {
    use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
    use gdal::vector::{Feature, Geometry, LayerAccess, LayerOptions, OGRFieldType};
    use unidiff_studio::io::vector_labels::rasterize_labels;
    use unidiff_studio::scene::{PixelGrid, named_classes};

    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (20usize, 10usize);
    let gt = [500_000.0, 10.0, 0.0, 4_000_000.0, 0.0, -10.0];
    let mut utm = SpatialRef::from_epsg(32633).unwrap();
    let grid = PixelGrid {
        geo_transform: Some(gt),
        crs_wkt: Some(utm.to_wkt().unwrap()),
        ..PixelGrid::plain(w, h)
    };
    let mut wgs84 = SpatialRef::from_epsg(4326).unwrap();
    utm.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let to_wgs84 = CoordTransform::new(&utm, &wgs84).unwrap();
    // Map coordinates of (col, row) in pixel units, then in degrees.
    let at = |col: f64, row: f64| {
        let (mut x, mut y, mut z) = ([gt[0] + col * gt[1]], [gt[3] + row * gt[5]], [0.0]);
        to_wgs84.transform_coords(&mut x, &mut y, &mut z).unwrap();
        format!("{} {}", x[0], y[0])
    };
    let path = dir.path().join("labels.gpkg");
    {
        let driver = gdal::DriverManager::get_driver_by_name("GPKG").unwrap();
        let mut ds = driver.create_vector_only(&path).unwrap();
        let layer = ds
            .create_layer(LayerOptions {
                name: "digitised",
                srs: Some(&wgs84),
                ty: gdal::vector::OGRwkbGeometryType::wkbUnknown,
                options: None,
            })
            .unwrap();
        layer
            .create_defn_fields(&[("cls", OGRFieldType::OFTString)])
            .unwrap();
        // Columns 2..6, rows 1..4 (pixel edges): 4 x 3 pixel centres inside.
        let polygon = format!(
            "POLYGON (({}, {}, {}, {}, {}))",
            at(2.0, 1.0),
            at(6.0, 1.0),
            at(6.0, 4.0),
            at(2.0, 4.0),
            at(2.0, 1.0)
        );
        for (wkt, class) in [
            (polygon, Some("1")),
            (format!("POINT ({})", at(15.5, 8.5)), Some("land")),
            (format!("POINT ({})", at(-30.0, 5.0)), Some("1")),
            (format!("POINT ({})", at(10.5, 5.5)), None),
        ] {
            let mut f = Feature::new(layer.defn()).unwrap();
            f.set_geometry(Geometry::from_wkt(&wkt).unwrap()).unwrap();
            if let Some(c) = class {
                f.set_field_string(0, c).unwrap();
            }
            f.create(&layer).unwrap();
        }
    }
    let classes = named_classes(2, &["water".into(), "land".into()]);
    let burnt = rasterize_labels(&path, None, &grid, &classes).unwrap();
    assert_eq!(
        (burnt.features, burnt.outside, burnt.unlabelled),
        (2, 1, 1),
        "{burnt:?}"
    );
    assert_eq!(burnt.field, "cls");
    let data = &burnt.labels.data;
    let ones: Vec<(usize, usize)> = (0..w * h)
        .filter(|&i| data[i] == 1)
        .map(|i| (i / w, i % w))
        .collect();
    let want: Vec<(usize, usize)> = (1..4).flat_map(|r| (2..6).map(move |c| (r, c))).collect();
    assert_eq!(ones, want);
    assert_eq!(data[8 * w + 15], 2);
    assert_eq!(data.iter().filter(|&&v| v != 0).count(), 13);
    let notes = burnt.notes(&path).join("\n");
    assert!(
        notes.contains("1 of the features of layer digitised lie outside the scene"),
        "{notes}"
    );

    // A field that is not there.
    let err = rasterize_labels(&path, Some("class_id"), &grid, &classes).unwrap_err();
    assert!(
        err.to_string()
            .contains("has no field `class_id` (its fields: cls)"),
        "{err}"
    );
}
