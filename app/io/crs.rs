//! What a class-area computation needs to know of a CRS, read by GDAL:
//! whether its coordinates are degrees or lengths, the metres per length
//! unit, and the ellipsoid's axes.

use gdal::spatial_ref::SpatialRef;

/// The units of a grid's coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CrsUnits {
    /// Longitude / latitude in degrees on an ellipsoid (axes in metres).
    Geographic { semi_major: f64, semi_minor: f64 },
    /// Eastings / northings in a length unit of `metres_per_unit`.
    Projected { metres_per_unit: f64 },
}

/// The units of the CRS given as WKT, or why they cannot be told.
pub fn crs_units(wkt: &str) -> Result<CrsUnits, String> {
    let srs = SpatialRef::from_wkt(wkt).map_err(|e| format!("GDAL cannot read the CRS: {e}"))?;
    if srs.is_geographic() {
        let semi_major = srs
            .semi_major()
            .map_err(|e| format!("the CRS has no ellipsoid: {e}"))?;
        let semi_minor = srs
            .semi_minor()
            .map_err(|e| format!("the CRS has no ellipsoid: {e}"))?;
        Ok(CrsUnits::Geographic {
            semi_major,
            semi_minor,
        })
    } else if srs.is_projected() {
        let metres_per_unit = srs.linear_units();
        if metres_per_unit.is_finite() && metres_per_unit > 0.0 {
            Ok(CrsUnits::Projected { metres_per_unit })
        } else {
            Err(format!(
                "the CRS's length unit is unknown ({metres_per_unit} m per unit)"
            ))
        }
    } else {
        Err("the CRS is neither geographic nor projected".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utm_is_metres_wgs84_is_degrees_on_its_ellipsoid() {
        let utm = SpatialRef::from_epsg(32633).unwrap().to_wkt().unwrap();
        assert_eq!(
            crs_units(&utm).unwrap(),
            CrsUnits::Projected {
                metres_per_unit: 1.0
            }
        );
        let wgs84 = SpatialRef::from_epsg(4326).unwrap().to_wkt().unwrap();
        match crs_units(&wgs84).unwrap() {
            CrsUnits::Geographic {
                semi_major,
                semi_minor,
            } => {
                assert_eq!(semi_major, 6378137.0);
                assert!((semi_minor - 6356752.314245).abs() < 1e-5, "{semi_minor}");
            }
            other => panic!("{other:?}"),
        }
        // US survey feet.
        let feet = SpatialRef::from_epsg(2263).unwrap().to_wkt().unwrap();
        match crs_units(&feet).unwrap() {
            CrsUnits::Projected { metres_per_unit } => {
                assert!((metres_per_unit - 0.3048006096).abs() < 1e-9)
            }
            other => panic!("{other:?}"),
        }
        assert!(crs_units("not a crs").is_err());
    }
}
