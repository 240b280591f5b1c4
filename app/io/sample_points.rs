//! A validation sample as a GeoPackage, and reference points read back from
//! any vector file GDAL opens. The sample file holds a point layer `sample`
//! (pixel centres in the map's CRS: id, map class and name, the pixel's
//! row and column, and an empty `reference` field for the analyst to fill in
//! here or in QGIS) and a table `design` (per stratum: mapped pixels and
//! points drawn, the seed), written beside its target and renamed into place
//! whole. Reading takes points from a layer in any CRS (reprojected to the
//! map's), with the class in a field the caller names, as a number or as a
//! class name; points outside the map and points not yet labelled are
//! counted, never guessed.

use std::path::Path;

use gdal::DriverManager;
use gdal::spatial_ref::SpatialRef;
use gdal::vector::{
    Feature, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType,
    geometry_type_flatten,
};

use super::ReadError;
use super::atomic::write_atomically;
use super::geotiff::{WriteError, failed};
use super::vector_labels::{
    PIXEL_TRANSFORM, class_field, feature_class, invert, open_vector, transform_to,
};
use crate::scene::sample::StratifiedSample;
use crate::scene::{ClassInfo, PixelGrid, class_name};

/// The field the analyst fills in.
pub const REFERENCE_FIELD: &str = "reference";

/// Writes `sample` of a map on `grid` to the GeoPackage `out`.
pub fn write_sample(
    out: &Path,
    grid: &PixelGrid,
    sample: &StratifiedSample,
    classes: &[ClassInfo],
) -> Result<(), WriteError> {
    super::raster::init_gdal();
    let srs = match &grid.crs_wkt {
        Some(wkt) => Some(SpatialRef::from_wkt(wkt).map_err(|e| failed(out, e))?),
        None => None,
    };
    write_atomically(out, |tmp| {
        write_layers(tmp, grid, srs.as_ref(), sample, classes)
    })
}

fn write_layers(
    tmp: &Path,
    grid: &PixelGrid,
    srs: Option<&SpatialRef>,
    sample: &StratifiedSample,
    classes: &[ClassInfo],
) -> Result<(), WriteError> {
    let driver = DriverManager::get_driver_by_name("GPKG").map_err(|e| failed(tmp, e))?;
    let mut ds = driver.create_vector_only(tmp).map_err(|e| failed(tmp, e))?;
    let mut txn = ds.start_transaction().map_err(|e| failed(tmp, e))?;
    let points = txn
        .create_layer(LayerOptions {
            name: "sample",
            srs,
            ty: OGRwkbGeometryType::wkbPoint,
            options: None,
        })
        .map_err(|e| failed(tmp, e))?;
    points
        .create_defn_fields(&[
            ("id", OGRFieldType::OFTInteger),
            ("map_class", OGRFieldType::OFTInteger),
            ("map_name", OGRFieldType::OFTString),
            ("row", OGRFieldType::OFTInteger),
            ("col", OGRFieldType::OFTInteger),
            (REFERENCE_FIELD, OGRFieldType::OFTInteger),
        ])
        .map_err(|e| failed(tmp, e))?;
    for (i, p) in sample.points.iter().enumerate() {
        // Pixel coordinates (GDAL's placeholder transform) without a
        // georeference.
        let xy = grid
            .map_from_pixel(p.row as f64, p.col as f64)
            .unwrap_or((p.col as f64 + 0.5, p.row as f64 + 0.5));
        let mut point =
            Geometry::empty(OGRwkbGeometryType::wkbPoint).map_err(|e| failed(tmp, e))?;
        point.set_point_2d(0, xy);
        let mut f = Feature::new(points.defn()).map_err(|e| failed(tmp, e))?;
        f.set_geometry(point).map_err(|e| failed(tmp, e))?;
        let int = |v: usize| {
            i32::try_from(v)
                .map_err(|_| failed(tmp, format!("{v} does not fit a GeoPackage integer")))
        };
        f.set_field_integer(0, int(i + 1)?)
            .map_err(|e| failed(tmp, e))?;
        f.set_field_integer(1, i32::from(p.stratum))
            .map_err(|e| failed(tmp, e))?;
        f.set_field_string(2, &class_name(classes, p.stratum))
            .map_err(|e| failed(tmp, e))?;
        f.set_field_integer(3, int(p.row)?)
            .map_err(|e| failed(tmp, e))?;
        f.set_field_integer(4, int(p.col)?)
            .map_err(|e| failed(tmp, e))?;
        f.set_field_null(5).map_err(|e| failed(tmp, e))?;
        f.create(&points).map_err(|e| failed(tmp, e))?;
    }
    let design = txn
        .create_layer(LayerOptions {
            name: "design",
            srs: None,
            ty: OGRwkbGeometryType::wkbNone,
            options: None,
        })
        .map_err(|e| failed(tmp, e))?;
    design
        .create_defn_fields(&[
            ("stratum", OGRFieldType::OFTInteger),
            ("name", OGRFieldType::OFTString),
            ("mapped_pixels", OGRFieldType::OFTInteger64),
            ("points", OGRFieldType::OFTInteger),
            ("per_class", OGRFieldType::OFTInteger),
            ("seed", OGRFieldType::OFTInteger64),
        ])
        .map_err(|e| failed(tmp, e))?;
    for s in &sample.strata {
        let mut f = Feature::new(design.defn()).map_err(|e| failed(tmp, e))?;
        let big = |v: u64| {
            i64::try_from(v)
                .map_err(|_| failed(tmp, format!("{v} does not fit a GeoPackage integer")))
        };
        f.set_field_integer(0, i32::from(s.value))
            .map_err(|e| failed(tmp, e))?;
        f.set_field_string(1, &class_name(classes, s.value))
            .map_err(|e| failed(tmp, e))?;
        f.set_field_integer64(2, big(s.pixels as u64)?)
            .map_err(|e| failed(tmp, e))?;
        f.set_field_integer(3, i32::try_from(s.points).unwrap_or(i32::MAX))
            .map_err(|e| failed(tmp, e))?;
        f.set_field_integer(4, i32::try_from(sample.per_class).unwrap_or(i32::MAX))
            .map_err(|e| failed(tmp, e))?;
        f.set_field_integer64(5, big(sample.seed)?)
            .map_err(|e| failed(tmp, e))?;
        f.create(&design).map_err(|e| failed(tmp, e))?;
    }
    txn.commit().map_err(|e| failed(tmp, e))?;
    // Closing writes what GDAL still holds: its failure (a full disk) is
    // the write's.
    ds.close().map_err(|e| failed(tmp, e))?;
    Ok(())
}

/// Reference points on a map's grid.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReferencePoints {
    /// (row, column, reference class) of each labelled point on the map.
    pub points: Vec<(usize, usize, u8)>,
    /// Points outside the map's extent.
    pub outside: usize,
    /// Points whose class field is empty (not labelled yet).
    pub unlabelled: usize,
    /// The layer read.
    pub layer: String,
}

impl ReferencePoints {
    /// (map class, reference class) at every labelled point of `map`
    /// (row-major, `width` wide), and notes on the points left out (outside
    /// the map, `field` empty) and on reference classes the map lacks.
    pub fn paired_with_map(
        &self,
        map: &[u8],
        width: usize,
        field: &str,
    ) -> (Vec<(u8, u8)>, Vec<String>) {
        let mut notes = Vec::new();
        if self.outside > 0 {
            notes.push(format!(
                "{} points of layer {} lie outside the map and are left out",
                self.outside, self.layer
            ));
        }
        if self.unlabelled > 0 {
            notes.push(format!(
                "{} points of layer {} have no `{field}` yet and are left out",
                self.unlabelled, self.layer
            ));
        }
        let sample: Vec<(u8, u8)> = self
            .points
            .iter()
            .map(|&(r, c, reference)| (map[r * width + c], reference))
            .collect();
        let mut mapped = [false; 256];
        for &m in map {
            mapped[usize::from(m)] = true;
        }
        let mut foreign: Vec<u8> = sample
            .iter()
            .map(|&(_, r)| r)
            .filter(|&r| !mapped[usize::from(r)])
            .collect();
        foreign.sort_unstable();
        foreign.dedup();
        if !foreign.is_empty() {
            let list: Vec<String> = foreign.iter().map(u8::to_string).collect();
            notes.push(format!(
                "reference classes {} do not occur in the map (their points count as errors of the map)",
                list.join(", ")
            ));
        }
        (sample, notes)
    }
}

/// One point of a sample as the app labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplePoint {
    /// The feature's id in its layer (where its reference is written back).
    pub fid: u64,
    pub row: usize,
    pub col: usize,
    /// Its reference class, when labelled.
    pub reference: Option<u8>,
}

/// Every point of a sample layer on a map's grid, labelled or not.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SamplePoints {
    pub points: Vec<SamplePoint>,
    /// Points outside the map's extent.
    pub outside: usize,
    /// The layer read.
    pub layer: String,
}

/// Reads the points of `path` (its layer `sample` if it has one, else its
/// first layer) with their class in `field` (a number, or one of
/// `classes`' names), onto `grid`.
pub fn read_reference_points(
    path: &Path,
    field: &str,
    grid: &PixelGrid,
    classes: &[ClassInfo],
) -> Result<ReferencePoints, ReadError> {
    let all = read_sample_points(path, field, grid, classes)?;
    let mut out = ReferencePoints {
        layer: all.layer,
        outside: all.outside,
        ..ReferencePoints::default()
    };
    for p in all.points {
        match p.reference {
            Some(class) => out.points.push((p.row, p.col, class)),
            None => out.unlabelled += 1,
        }
    }
    Ok(out)
}

/// [`read_reference_points`] keeping every point on the map, labelled or
/// not, with its feature id.
pub fn read_sample_points(
    path: &Path,
    field: &str,
    grid: &PixelGrid,
    classes: &[ClassInfo],
) -> Result<SamplePoints, ReadError> {
    let bad = |message: String| ReadError::format(path, message);
    let ds = open_vector(path)?;
    let mut layer = match ds.layer_by_name("sample") {
        Ok(l) => l,
        Err(_) => ds
            .layer(0)
            .map_err(|_| bad("has no vector layer".to_string()))?,
    };
    let layer_name = layer.name();
    let (index, _) =
        class_field(&layer, Some(field)).map_err(|m| bad(format!("layer {layer_name} {m}")))?;
    let to_map = transform_to(layer.spatial_ref(), grid)
        .map_err(|m| bad(format!("layer {layer_name}: {m}")))?;
    let inverse = invert(&grid.geo_transform.unwrap_or(PIXEL_TRANSFORM))
        .ok_or_else(|| bad("the map's geotransform cannot be inverted".to_string()))?;
    let mut out = SamplePoints {
        layer: layer_name.clone(),
        ..SamplePoints::default()
    };
    for f in layer.features() {
        let id = f.fid().map_or_else(|| "?".to_string(), |i| i.to_string());
        let Some(g) = f.geometry() else {
            return Err(bad(format!(
                "feature {id} of layer {layer_name} has no geometry"
            )));
        };
        if geometry_type_flatten(g.geometry_type()) != OGRwkbGeometryType::wkbPoint {
            return Err(bad(format!(
                "feature {id} of layer {layer_name} is a {}, not a point: a reference sample is points",
                gdal::vector::geometry_type_to_name(g.geometry_type())
            )));
        }
        let reference = feature_class(&f, (index, field), classes)
            .map_err(|why| bad(format!("feature {id} of layer {layer_name}: {why}")))?;
        let (mut x, mut y, _) = g.get_point(0);
        if let Some(t) = &to_map {
            let (mut xs, mut ys, mut zs) = ([x], [y], [0.0]);
            t.transform_coords(&mut xs, &mut ys, &mut zs)
                .map_err(|e| bad(format!("feature {id}: cannot reproject ({e})")))?;
            (x, y) = (xs[0], ys[0]);
        }
        let col = inverse[0] + x * inverse[1] + y * inverse[2];
        let row = inverse[3] + x * inverse[4] + y * inverse[5];
        if !(col >= 0.0 && row >= 0.0 && col < grid.width as f64 && row < grid.height as f64) {
            out.outside += 1;
            continue;
        }
        out.points.push(SamplePoint {
            fid: f.fid().unwrap_or(0),
            row: row as usize,
            col: col as usize,
            reference,
        });
    }
    Ok(out)
}

/// Writes the reference classes of the GeoPackage sample `path`'s layer
/// `layer` (feature id, class or empty) into its `field`: on a copy, renamed
/// over the file once every feature is written (a failure leaves the file as
/// it was).
pub fn write_references(
    path: &Path,
    layer: &str,
    field: &str,
    references: &[(u64, Option<u8>)],
) -> Result<(), WriteError> {
    let is_gpkg = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gpkg"));
    if !is_gpkg {
        return Err(failed(
            path,
            "only a GeoPackage sample (.gpkg) is labelled in the app; label this one in QGIS",
        ));
    }
    super::raster::init_gdal();
    write_atomically(path, |tmp| {
        std::fs::copy(path, tmp).map_err(|e| failed(path, format!("cannot copy it: {e}")))?;
        let mut ds = gdal::Dataset::open_ex(
            tmp,
            gdal::DatasetOptions {
                open_flags: gdal::GdalOpenFlags::GDAL_OF_UPDATE
                    | gdal::GdalOpenFlags::GDAL_OF_VECTOR,
                ..Default::default()
            },
        )
        .map_err(|e| failed(tmp, e))?;
        {
            let txn = ds.start_transaction().map_err(|e| failed(tmp, e))?;
            let l = txn
                .layer_by_name(layer)
                .map_err(|_| failed(path, format!("has no layer {layer}")))?;
            let index = l
                .defn()
                .field_index(field)
                .map_err(|_| failed(path, format!("layer {layer} has no field `{field}`")))?;
            for &(fid, class) in references {
                let mut f = l
                    .feature(fid)
                    .ok_or_else(|| failed(path, format!("layer {layer} has no feature {fid}")))?;
                match class {
                    Some(c) => f.set_field_integer(index, i32::from(c)),
                    None => f.set_field_null(index),
                }
                .map_err(|e| failed(path, e))?;
                l.set_feature(f).map_err(|e| failed(path, e))?;
            }
            txn.commit().map_err(|e| failed(tmp, e))?;
        }
        ds.close().map_err(|e| failed(tmp, e))?;
        Ok(())
    })
}
