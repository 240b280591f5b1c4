//! Training or test labels drawn as vectors (points or polygons in a
//! GeoPackage, Shapefile or GeoJSON, as analysts digitise them in QGIS):
//! each feature's class from an attribute (a class number, or a class
//! name), the geometries reprojected to the scene's CRS and burnt onto its
//! pixel grid by GDAL's rasterizer (a point marks the pixel it falls in, a
//! polygon the pixels whose centre it covers; later features over earlier
//! ones). Features off the scene and features without a class are counted
//! and said, never guessed.

use std::path::Path;

use gdal::raster::{RasterizeOptions, rasterize};
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{FieldValue, Geometry, LayerAccess};
use gdal::{Dataset, DriverManager};

use super::ReadError;
use crate::scene::{ClassInfo, GeoTransform, LabelImage, PixelGrid};

/// GDAL's placeholder transform for a grid without georeference: pixel
/// coordinates, rows down.
pub(crate) const PIXEL_TRANSFORM: GeoTransform = [0.0, 1.0, 0.0, 0.0, 0.0, 1.0];

/// Attribute names taken as the class when none is given, in this order.
pub const CLASS_FIELDS: &[&str] = &[
    "class",
    "cls",
    "label",
    "reference",
    "classvalue",
    "mc_id",
    "c_id",
];

/// A vector file (by its extension), as opposed to a label raster.
pub fn is_vector_file(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        [
            "gpkg", "shp", "geojson", "json", "fgb", "kml", "gml", "sqlite",
        ]
        .contains(&e.to_ascii_lowercase().as_str())
    })
}

/// Labels burnt from a vector file.
#[derive(Debug, Clone)]
pub struct RasterisedLabels {
    pub labels: LabelImage,
    /// Features burnt onto the grid.
    pub features: usize,
    /// Features wholly off the scene.
    pub outside: usize,
    /// Features with an empty class field (or 0).
    pub unlabelled: usize,
    /// The layer and field read.
    pub layer: String,
    pub field: String,
}

impl RasterisedLabels {
    /// What a user should know beyond the labels themselves.
    pub fn notes(&self, path: &Path) -> Vec<String> {
        let mut notes = Vec::new();
        if self.outside > 0 {
            notes.push(format!(
                "{}: {} of the features of layer {} lie outside the scene and are left out",
                path.display(),
                self.outside,
                self.layer
            ));
        }
        if self.unlabelled > 0 {
            notes.push(format!(
                "{}: {} features of layer {} have no class in `{}` and are left out",
                path.display(),
                self.unlabelled,
                self.layer,
                self.field
            ));
        }
        notes
    }
}

/// Burns the features of `path`'s first layer onto `grid` with their class
/// from `field` (None: the first of [`CLASS_FIELDS`] the layer has), a
/// number 1..255 or one of `classes`' names.
pub fn rasterize_labels(
    path: &Path,
    field: Option<&str>,
    grid: &PixelGrid,
    classes: &[ClassInfo],
) -> Result<RasterisedLabels, ReadError> {
    let bad = |message: String| ReadError::format(path, message);
    let ds = open_vector(path)?;
    let mut layer = ds
        .layer(0)
        .map_err(|_| bad("has no vector layer".to_string()))?;
    let layer_name = layer.name();
    let (index, field) =
        class_field(&layer, field).map_err(|m| bad(format!("layer {layer_name} {m}")))?;
    let to_scene = transform_to(layer.spatial_ref(), grid)
        .map_err(|m| bad(format!("layer {layer_name}: {m}")))?;
    let gt = grid.geo_transform.unwrap_or(PIXEL_TRANSFORM);
    let inverse = invert(&gt)
        .ok_or_else(|| bad("the scene's geotransform cannot be inverted".to_string()))?;
    let mut out = RasterisedLabels {
        labels: LabelImage {
            data: Vec::new(),
            grid: grid.clone(),
        },
        features: 0,
        outside: 0,
        unlabelled: 0,
        layer: layer_name.clone(),
        field: field.clone(),
    };
    let mut geometries = Vec::new();
    let mut values = Vec::new();
    for f in layer.features() {
        let id = f.fid().map_or_else(|| "?".to_string(), |i| i.to_string());
        let class = feature_class(&f, (index, &field), classes)
            .map_err(|why| bad(format!("feature {id} of layer {layer_name}: {why}")))?;
        let Some(class) = class else {
            out.unlabelled += 1;
            continue;
        };
        let Some(g) = f.geometry() else {
            out.unlabelled += 1;
            continue;
        };
        let g = match &to_scene {
            Some(t) => g
                .transform(t)
                .map_err(|e| bad(format!("feature {id}: cannot reproject ({e})")))?,
            None => g.clone(),
        };
        if !touches_grid(&g, &inverse, grid) {
            out.outside += 1;
            continue;
        }
        geometries.push(g);
        values.push(f64::from(class));
    }
    out.features = geometries.len();
    out.labels.data = burn(&geometries, &values, grid, &gt)
        .map_err(|e| bad(format!("GDAL's rasterize failed: {e}")))?;
    Ok(out)
}

/// Opens a vector file, or says why not.
pub(crate) fn open_vector(path: &Path) -> Result<Dataset, ReadError> {
    super::raster::init_gdal();
    if !path.exists() {
        return Err(ReadError::NotFound {
            path: path.to_path_buf(),
        });
    }
    Dataset::open(path)
        .map_err(|e| ReadError::format(path, format!("not a vector file GDAL can open ({e})")))
}

/// The class field: `wanted`, or the first of [`CLASS_FIELDS`] present;
/// an error lists the fields the layer has.
pub(crate) fn class_field<L: LayerAccess>(
    layer: &L,
    wanted: Option<&str>,
) -> Result<(usize, String), String> {
    let names: Vec<String> = layer.defn().fields().map(|f| f.name()).collect();
    let listed = || {
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    let found = match wanted {
        Some(w) => names.iter().position(|n| n.eq_ignore_ascii_case(w)),
        None => CLASS_FIELDS
            .iter()
            .find_map(|c| names.iter().position(|n| n.eq_ignore_ascii_case(c))),
    };
    match (found, wanted) {
        (Some(i), _) => Ok((i, names[i].clone())),
        (None, Some(w)) => Err(format!("has no field `{w}` (its fields: {})", listed())),
        (None, None) => Err(format!(
            "has none of the class fields {} (its fields: {}); name the field to use",
            CLASS_FIELDS.join(", "),
            listed()
        )),
    }
}

/// The reprojection from a layer's CRS to the grid's, when both are known
/// and differ.
pub(crate) fn transform_to(
    from: Option<SpatialRef>,
    grid: &PixelGrid,
) -> Result<Option<CoordTransform>, String> {
    let (Some(mut from), Some(wkt)) = (from, &grid.crs_wkt) else {
        return Ok(None);
    };
    let mut to = SpatialRef::from_wkt(wkt).map_err(|e| format!("the scene's CRS: {e}"))?;
    from.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    to.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    if from == to {
        return Ok(None);
    }
    CoordTransform::new(&from, &to)
        .map(Some)
        .map_err(|e| format!("cannot reproject to the scene's CRS ({e})"))
}

/// The geometry's envelope overlaps the grid (in pixel space).
fn touches_grid(g: &Geometry, inverse: &[f64; 6], grid: &PixelGrid) -> bool {
    let e = g.envelope();
    let corners = [
        (e.MinX, e.MinY),
        (e.MinX, e.MaxY),
        (e.MaxX, e.MinY),
        (e.MaxX, e.MaxY),
    ];
    let (mut c0, mut c1, mut r0, mut r1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for (x, y) in corners {
        let col = inverse[0] + x * inverse[1] + y * inverse[2];
        let row = inverse[3] + x * inverse[4] + y * inverse[5];
        (c0, c1, r0, r1) = (c0.min(col), c1.max(col), r0.min(row), r1.max(row));
    }
    c1 >= 0.0 && r1 >= 0.0 && c0 < grid.width as f64 && r0 < grid.height as f64
}

/// Burns `geometries` with `values` into a zeroed u8 raster on the grid.
fn burn(
    geometries: &[Geometry],
    values: &[f64],
    grid: &PixelGrid,
    gt: &GeoTransform,
) -> gdal::errors::Result<Vec<u8>> {
    let driver = DriverManager::get_driver_by_name("MEM")?;
    let mut mem = driver.create_with_band_type::<u8, _>("", grid.width, grid.height, 1)?;
    mem.set_geo_transform(gt)?;
    if !geometries.is_empty() {
        rasterize(
            &mut mem,
            &[1],
            geometries,
            values,
            Some(RasterizeOptions::default()),
        )?;
    }
    let band = mem.rasterband(1)?;
    let buffer = band.read_as::<u8>(
        (0, 0),
        (grid.width, grid.height),
        (grid.width, grid.height),
        None,
    )?;
    Ok(buffer.into_shape_and_vec().1)
}

/// The class in field `index` of a feature (None: empty or 0, not
/// labelled); an error names the field and what it holds.
pub(crate) fn feature_class(
    f: &gdal::vector::Feature<'_>,
    (index, field): (usize, &str),
    classes: &[ClassInfo],
) -> Result<Option<u8>, String> {
    match f.field(index).map_err(|e| e.to_string())? {
        None => Ok(None),
        Some(v) => class_of(&v, classes).map_err(|why| format!("field `{field}` {why}")),
    }
}

/// The class of a field value: 1..=255 as a number (integral) or a class
/// name; None for 0 or an empty text (not labelled).
pub(crate) fn class_of(v: &FieldValue, classes: &[ClassInfo]) -> Result<Option<u8>, String> {
    let number = |n: f64| -> Result<Option<u8>, String> {
        if n == 0.0 {
            Ok(None)
        } else if n.fract() == 0.0 && (1.0..=255.0).contains(&n) {
            Ok(Some(n as u8))
        } else {
            Err(format!("is {n}: a class is 1..255"))
        }
    };
    match v {
        FieldValue::IntegerValue(n) => number(f64::from(*n)),
        FieldValue::Integer64Value(n) => number(*n as f64),
        FieldValue::RealValue(n) => number(*n),
        FieldValue::StringValue(s) => {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            if let Ok(n) = s.parse::<f64>() {
                return number(n);
            }
            classes
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(s))
                .map(|c| Some(c.value))
                .ok_or_else(|| {
                    let known: Vec<&str> = classes.iter().map(|c| c.name.as_str()).collect();
                    format!(
                        "is \"{s}\", not a class number nor one of the class names ({})",
                        known.join(", ")
                    )
                })
        }
        other => Err(format!("holds {other:?}, not a class")),
    }
}

/// The inverse of an affine geotransform: (col, row) from (x, y) as
/// col = i[0] + x i[1] + y i[2], row = i[3] + x i[4] + y i[5].
pub(crate) fn invert(gt: &GeoTransform) -> Option<[f64; 6]> {
    let det = gt[1] * gt[5] - gt[2] * gt[4];
    if det == 0.0 || !det.is_finite() {
        return None;
    }
    let (a, b, d, e) = (gt[5] / det, -gt[2] / det, -gt[4] / det, gt[1] / det);
    Some([
        -(a * gt[0] + b * gt[3]),
        a,
        b,
        -(d * gt[0] + e * gt[3]),
        d,
        e,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inverse_transform_takes_a_pixel_centre_back() {
        let gt = [500_000.0, 10.0, 2.0, 4_000_000.0, -1.0, -10.0];
        let i = invert(&gt).unwrap();
        for (r, c) in [(0.5, 0.5), (3.5, 7.5), (100.25, 0.75)] {
            let (x, y) = (gt[0] + c * gt[1] + r * gt[2], gt[3] + c * gt[4] + r * gt[5]);
            let (c2, r2) = (i[0] + x * i[1] + y * i[2], i[3] + x * i[4] + y * i[5]);
            assert!((c2 - c).abs() < 1e-9 && (r2 - r).abs() < 1e-9, "{c2} {r2}");
        }
        assert!(invert(&[0.0, 1.0, 1.0, 0.0, 1.0, 1.0]).is_none());
    }

    #[test]
    fn a_class_is_a_number_or_a_name() {
        let classes = crate::scene::named_classes(2, &["water".into(), "land".into()]);
        assert_eq!(
            class_of(&FieldValue::IntegerValue(2), &classes),
            Ok(Some(2))
        );
        assert_eq!(class_of(&FieldValue::IntegerValue(0), &classes), Ok(None));
        assert_eq!(class_of(&FieldValue::RealValue(1.0), &classes), Ok(Some(1)));
        assert_eq!(
            class_of(&FieldValue::StringValue("Land ".into()), &classes),
            Ok(Some(2))
        );
        assert_eq!(
            class_of(&FieldValue::StringValue(String::new()), &classes),
            Ok(None)
        );
        assert!(class_of(&FieldValue::RealValue(1.5), &classes).is_err());
        let e = class_of(&FieldValue::StringValue("forest".into()), &classes).unwrap_err();
        assert!(e.contains("water, land"), "{e}");
    }
}
