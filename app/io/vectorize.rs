//! A class map as polygons for QGIS: GDAL's polygonize (4-connected, class 0
//! and nodata left out) into a GeoPackage layer `landcover` in the map's CRS,
//! each polygon with its class id, class name and area in hectares. Areas in
//! a geographic CRS are measured after projecting the polygon onto a
//! Lambert azimuthal equal-area plane centred on the map (never degrees²).
//! The file is written beside its target and renamed into place whole
//! (`io::atomic`; GDAL's GPKG driver takes the temporary name's extension).
//! Dissolved, a second layer holds one multipolygon per class.

use std::path::Path;

use gdal::spatial_ref::{CoordTransform, SpatialRef};
use gdal::vector::{
    Feature, FieldValue, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType,
};
use gdal::{Dataset, DriverManager};

use super::atomic::write_atomically;
use super::geotiff::{WriteError, failed};
use crate::scene::{ClassInfo, class_name};

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSummary {
    pub polygons: usize,
    /// Hectares per class value (1..=255), as in the layer.
    pub hectares: Vec<(u8, f64)>,
}

/// The layer of one polygon per class (a multipolygon of its regions).
pub const DISSOLVED_LAYER: &str = "landcover_dissolved";

/// Polygonizes the class map GeoTIFF at `classmap` into `out`; `classes`
/// names the values (a value without a name is "class N").
pub fn vectorize_class_map(
    classmap: &Path,
    out: &Path,
    classes: &[ClassInfo],
) -> Result<VectorSummary, WriteError> {
    vectorize_class_map_with(classmap, out, classes, false)
}

/// [`vectorize_class_map`], and with `dissolve` a second layer
/// [`DISSOLVED_LAYER`]: one feature per class, the multipolygon of all its
/// regions (polygonize's regions of a class never overlap, so collecting
/// them is their union), with its area and its count of regions.
pub fn vectorize_class_map_with(
    classmap: &Path,
    out: &Path,
    classes: &[ClassInfo],
    dissolve: bool,
) -> Result<VectorSummary, WriteError> {
    // A missing or unreadable map is said as a read problem, naming it.
    super::raster::read_header(classmap)?;
    let src = Dataset::open(classmap).map_err(|e| failed(classmap, e))?;
    let band = src.rasterband(1).map_err(|e| failed(classmap, e))?;
    let srs = src.spatial_ref().ok();
    let mut summary = None;
    write_atomically(out, |tmp| {
        summary = Some(write_layer(
            &src,
            &band,
            srs.as_ref(),
            tmp,
            classes,
            dissolve,
        )?);
        Ok::<(), WriteError>(())
    })?;
    summary.ok_or_else(|| failed(out, "no layer was written"))
}

/// Area in m² of a geometry in the layer's CRS: planar in a projected CRS
/// (times the unit's metres squared), on an equal-area plane centred on the
/// map in a geographic one.
struct AreaMeter {
    to_equal_area: Option<CoordTransform>,
    square_metres_per_unit: f64,
}

impl AreaMeter {
    fn new(srs: Option<&SpatialRef>, centre: (f64, f64)) -> Result<Self, String> {
        let Some(srs) = srs else {
            return Ok(Self {
                to_equal_area: None,
                square_metres_per_unit: 1.0,
            });
        };
        if srs.is_geographic() {
            let mut source = srs.clone();
            // Longitude first, as the raster's geotransform is.
            source.set_axis_mapping_strategy(
                gdal::spatial_ref::AxisMappingStrategy::TraditionalGisOrder,
            );
            let laea = SpatialRef::from_proj4(&format!(
                "+proj=laea +lat_0={} +lon_0={} +datum=WGS84 +units=m +no_defs",
                centre.1, centre.0
            ))
            .map_err(|e| e.to_string())?;
            let transform = CoordTransform::new(&source, &laea).map_err(|e| e.to_string())?;
            Ok(Self {
                to_equal_area: Some(transform),
                square_metres_per_unit: 1.0,
            })
        } else {
            let m = srs.linear_units();
            Ok(Self {
                to_equal_area: None,
                square_metres_per_unit: if m > 0.0 { m * m } else { 1.0 },
            })
        }
    }

    fn square_metres(&self, g: &gdal::vector::Geometry) -> Result<f64, String> {
        match &self.to_equal_area {
            Some(t) => Ok(g.transform(t).map_err(|e| e.to_string())?.area()),
            None => Ok(g.area() * self.square_metres_per_unit),
        }
    }
}

/// Adds a polygon of class `value` to that class's multipolygon (made on
/// its first polygon) and counts it.
fn add_to_class(
    by_class: &mut Vec<(u8, Geometry, usize)>,
    value: u8,
    polygon: &Geometry,
) -> gdal::errors::Result<()> {
    let at = match by_class.iter().position(|(v, _, _)| *v == value) {
        Some(i) => i,
        None => {
            by_class.push((
                value,
                Geometry::empty(OGRwkbGeometryType::wkbMultiPolygon)?,
                0,
            ));
            by_class.len() - 1
        }
    };
    let (_, multi, count) = &mut by_class[at];
    multi.add_geometry(polygon.clone())?;
    *count += 1;
    Ok(())
}

fn write_layer(
    src: &Dataset,
    band: &gdal::raster::RasterBand<'_>,
    srs: Option<&SpatialRef>,
    tmp: &Path,
    classes: &[ClassInfo],
    dissolve: bool,
) -> Result<VectorSummary, WriteError> {
    let driver = DriverManager::get_driver_by_name("GPKG").map_err(|e| failed(tmp, e))?;
    let mut ds = driver.create_vector_only(tmp).map_err(|e| failed(tmp, e))?;
    let gt = src
        .geo_transform()
        .unwrap_or([0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
    let (w, h) = src.raster_size();
    let centre = (
        gt[0] + gt[1] * w as f64 / 2.0 + gt[2] * h as f64 / 2.0,
        gt[3] + gt[4] * w as f64 / 2.0 + gt[5] * h as f64 / 2.0,
    );
    let meter = AreaMeter::new(srs, centre).map_err(|e| failed(tmp, e))?;
    let mut txn = ds.start_transaction().map_err(|e| failed(tmp, e))?;
    let layer = txn
        .create_layer(LayerOptions {
            name: "landcover",
            srs,
            ty: OGRwkbGeometryType::wkbPolygon,
            options: None,
        })
        .map_err(|e| failed(tmp, e))?;
    layer
        .create_defn_fields(&[
            ("class", OGRFieldType::OFTInteger),
            ("name", OGRFieldType::OFTString),
            ("area_ha", OGRFieldType::OFTReal),
        ])
        .map_err(|e| failed(tmp, e))?;
    // SAFETY: the band and the layer handles are valid for this call (their
    // datasets live until the end of this function); the mask is the band
    // itself (0 and nodata are not polygonized); no options, no progress.
    let err = unsafe {
        gdal_sys::GDALPolygonize(
            band.c_rasterband(),
            band.c_rasterband(),
            layer.c_layer(),
            0,
            std::ptr::null_mut(),
            None,
            std::ptr::null_mut(),
        )
    };
    if err != gdal_sys::CPLErr::CE_None {
        let message = super::raster::last_gdal_error();
        return Err(failed(tmp, format!("GDAL's polygonize failed: {message}")));
    }
    let name_of = |v: u8| class_name(classes, v);
    let mut layer = txn.layer_by_name("landcover").map_err(|e| failed(tmp, e))?;
    let mut rows = Vec::new();
    // Dissolved: per class value, its multipolygon and how many regions it
    // holds, gathered in the same pass over the polygons.
    let mut by_class: Vec<(u8, Geometry, usize)> = Vec::new();
    for f in layer.features() {
        let class = f
            .field_as_integer(0)
            .map_err(|e| failed(tmp, e))?
            .unwrap_or(0);
        let area = match f.geometry() {
            Some(g) => {
                if dissolve {
                    let value = u8::try_from(class).unwrap_or(0);
                    add_to_class(&mut by_class, value, g).map_err(|e| failed(tmp, e))?;
                }
                meter.square_metres(g).map_err(|e| failed(tmp, e))?
            }
            None => 0.0,
        };
        if let Some(fid) = f.fid() {
            rows.push((fid, class, area));
        }
    }
    let mut hectares: Vec<(u8, f64)> = Vec::new();
    for &(fid, class, area) in &rows {
        let value = u8::try_from(class).unwrap_or(0);
        let Some(mut f) = layer.feature(fid) else {
            continue;
        };
        f.set_field(1, &FieldValue::StringValue(name_of(value)))
            .map_err(|e| failed(tmp, e))?;
        f.set_field_double(2, area / 1e4)
            .map_err(|e| failed(tmp, e))?;
        layer.set_feature(f).map_err(|e| failed(tmp, e))?;
        match hectares.iter_mut().find(|(v, _)| *v == value) {
            Some((_, ha)) => *ha += area / 1e4,
            None => hectares.push((value, area / 1e4)),
        }
    }
    hectares.sort_by_key(|(v, _)| *v);
    if dissolve {
        by_class.sort_by_key(|(v, _, _)| *v);
        let dissolved = txn
            .create_layer(LayerOptions {
                name: DISSOLVED_LAYER,
                srs,
                ty: OGRwkbGeometryType::wkbMultiPolygon,
                options: None,
            })
            .map_err(|e| failed(tmp, e))?;
        dissolved
            .create_defn_fields(&[
                ("class", OGRFieldType::OFTInteger),
                ("name", OGRFieldType::OFTString),
                ("area_ha", OGRFieldType::OFTReal),
                ("polygons", OGRFieldType::OFTInteger),
            ])
            .map_err(|e| failed(tmp, e))?;
        for (value, multi, count) in by_class {
            let ha = hectares
                .iter()
                .find(|(v, _)| *v == value)
                .map_or(0.0, |(_, ha)| *ha);
            let mut f = Feature::new(dissolved.defn()).map_err(|e| failed(tmp, e))?;
            f.set_geometry(multi).map_err(|e| failed(tmp, e))?;
            f.set_field_integer(0, i32::from(value))
                .map_err(|e| failed(tmp, e))?;
            f.set_field_string(1, &name_of(value))
                .map_err(|e| failed(tmp, e))?;
            f.set_field_double(2, ha).map_err(|e| failed(tmp, e))?;
            f.set_field_integer(3, i32::try_from(count).unwrap_or(i32::MAX))
                .map_err(|e| failed(tmp, e))?;
            f.create(&dissolved).map_err(|e| failed(tmp, e))?;
        }
    }
    txn.commit().map_err(|e| failed(tmp, e))?;
    // Closing writes what GDAL still holds: its failure (a full disk) is
    // the write's.
    ds.close().map_err(|e| failed(tmp, e))?;
    Ok(VectorSummary {
        polygons: rows.len(),
        hectares,
    })
}
