//! The pixel grid every layer of a scene shares: size, affine geotransform and
//! CRS. Layers from different files are only combined when their grids agree.

use std::fmt;

/// GDAL's affine geotransform: x = gt[0] + col*gt[1] + row*gt[2],
/// y = gt[3] + col*gt[4] + row*gt[5].
pub type GeoTransform = [f64; 6];

/// True for the unit transform (0, 1, 0, 0, 0, +-1) that GDAL reports for
/// files without georeference (and PolSARpro writes as a placeholder).
pub fn is_unit_transform(gt: &GeoTransform) -> bool {
    gt[0] == 0.0
        && gt[1] == 1.0
        && gt[2] == 0.0
        && gt[3] == 0.0
        && gt[4] == 0.0
        && gt[5].abs() == 1.0
}

/// Size and georeference of a raster.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelGrid {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// None for files without georeference (MATLAB, NumPy arrays).
    pub geo_transform: Option<GeoTransform>,
    /// CRS as WKT, when known.
    pub crs_wkt: Option<String>,
    /// A short CRS name for display ("EPSG:32633"), when known.
    pub crs_name: Option<String>,
}

/// Two grids that cannot hold layers of one scene.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "the grids of {first_name} and {second_name} differ ({reason}):\n  {first_name}: {first}\n  {second_name}: {second}"
)]
pub struct GridMismatch {
    pub first_name: String,
    pub second_name: String,
    pub first: String,
    pub second: String,
    pub reason: String,
}

impl PixelGrid {
    /// A grid without georeference.
    pub fn plain(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            geo_transform: None,
            crs_wkt: None,
            crs_name: None,
        }
    }

    /// Number of pixels.
    pub fn len(&self) -> usize {
        self.width * self.height
    }

    /// True for a grid of no pixels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Map coordinates of the centre of pixel (row, col), if georeferenced.
    pub fn map_from_pixel(&self, row: f64, col: f64) -> Option<(f64, f64)> {
        self.geo_transform.map(|gt| {
            let (c, r) = (col + 0.5, row + 0.5);
            (gt[0] + c * gt[1] + r * gt[2], gt[3] + c * gt[4] + r * gt[5])
        })
    }

    /// Checks that `other` describes the same pixels as `self`.
    ///
    /// Sizes must be equal. Geotransforms, where both layers have one, must agree
    /// to within 1e-6 of a pixel (files of one scene written by different tools
    /// differ in the last bits of the pixel size). A layer without georeference
    /// (a `.mat` label image) is taken to lie on the georeferenced grid.
    pub fn check_same(
        &self,
        self_name: &str,
        other: &PixelGrid,
        other_name: &str,
    ) -> Result<(), GridMismatch> {
        let mismatch = |reason: String| GridMismatch {
            first_name: self_name.to_string(),
            second_name: other_name.to_string(),
            first: self.to_string(),
            second: other.to_string(),
            reason,
        };
        if self.width != other.width || self.height != other.height {
            return Err(mismatch(format!(
                "{} x {} vs {} x {} pixels",
                self.height, self.width, other.height, other.width
            )));
        }
        if let (Some(a), Some(b)) = (self.geo_transform, other.geo_transform) {
            let pixel = a[1].abs().max(a[5].abs()).max(a[2].abs()).max(a[4].abs());
            let tol = if pixel > 0.0 { pixel * 1e-6 } else { 1e-9 };
            // Origin: within tol. Per-pixel terms: accumulated over the grid,
            // they must still stay within tol at the far corner.
            let extent = self.width.max(self.height).max(1) as f64;
            let bad_origin = (a[0] - b[0]).abs() > tol || (a[3] - b[3]).abs() > tol;
            let bad_step = [1usize, 2, 4, 5]
                .iter()
                .any(|&i| (a[i] - b[i]).abs() * extent > tol);
            if bad_origin || bad_step {
                return Err(mismatch("different geotransforms".to_string()));
            }
        }
        Ok(())
    }
}

impl fmt::Display for PixelGrid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} rows x {} cols", self.height, self.width)?;
        match self.geo_transform {
            Some(gt) => write!(
                f,
                ", origin ({}, {}), pixel ({}, {})",
                gt[0], gt[3], gt[1], gt[5]
            )?,
            None => write!(f, ", no georeference")?,
        }
        if let Some(name) = &self.crs_name {
            write!(f, ", {name}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(gt: GeoTransform) -> PixelGrid {
        PixelGrid {
            geo_transform: Some(gt),
            ..PixelGrid::plain(10, 20)
        }
    }

    #[test]
    fn tiny_pixel_size_differences_are_the_same_grid() {
        let a = geo([0.0, 1e-4, 0.0, 50.0, 0.0, -1e-4]);
        let b = geo([0.0, 1e-4 + 3e-19, 0.0, 50.0, 0.0, -1e-4]);
        assert!(a.check_same("a", &b, "b").is_ok());
    }

    #[test]
    fn shifted_origin_is_reported_with_both_grids() {
        let a = geo([0.0, 30.0, 0.0, 100.0, 0.0, -30.0]);
        let b = geo([30.0, 30.0, 0.0, 100.0, 0.0, -30.0]);
        let err = a.check_same("HSI", &b, "SAR").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("HSI: 20 rows x 10 cols, origin (0, 100)"),
            "{text}"
        );
        assert!(
            text.contains("SAR: 20 rows x 10 cols, origin (30, 100)"),
            "{text}"
        );
    }

    #[test]
    fn size_mismatch_is_reported() {
        let a = PixelGrid::plain(10, 20);
        let b = PixelGrid::plain(11, 20);
        let err = a.check_same("HSI", &b, "labels").unwrap_err();
        assert!(err.reason.contains("20 x 10 vs 20 x 11"), "{}", err.reason);
    }
}
