//! Class areas of a map: per class the pixel count, the area (m², ha, km²)
//! and the share of the mapped area. In a projected CRS every pixel has the
//! area of the geotransform's parallelogram in square metres; in a
//! geographic CRS (degrees) each row's pixels have their true area on the
//! CRS's ellipsoid (the band between the row's two latitudes), never
//! degrees². Class 0 is unmapped and has no area.

use crate::io::crs::{CrsUnits, crs_units};
use crate::scene::{ClassInfo, PixelGrid};

/// How the area of a pixel is known.
#[derive(Debug, Clone, PartialEq)]
pub enum PixelAreas {
    /// Every pixel has this many m².
    Constant(f64),
    /// Pixels of row r have `rows[r]` m² (geographic CRS).
    ByRow(Vec<f64>),
}

impl PixelAreas {
    /// The pixel areas of `grid`, or why they are not known (no
    /// georeference, no CRS, a rotated geographic grid).
    pub fn of(grid: &PixelGrid) -> Result<Self, String> {
        let gt = grid
            .geo_transform
            .ok_or("the map has no georeference: areas are in pixels only")?;
        let wkt = grid
            .crs_wkt
            .as_deref()
            .ok_or("the map has no CRS: areas are in pixels only")?;
        match crs_units(wkt)? {
            CrsUnits::Projected { metres_per_unit } => {
                let units2 = (gt[1] * gt[5] - gt[2] * gt[4]).abs();
                Ok(Self::Constant(units2 * metres_per_unit * metres_per_unit))
            }
            CrsUnits::Geographic {
                semi_major,
                semi_minor,
            } => {
                if gt[2] != 0.0 || gt[4] != 0.0 {
                    return Err(
                        "the geographic grid is rotated: its pixel areas are not computed".into(),
                    );
                }
                let band = |lat_a: f64, lat_b: f64| {
                    ellipsoid_band_area(semi_major, semi_minor, lat_a, lat_b, gt[1].abs())
                };
                let rows = (0..grid.height)
                    .map(|r| {
                        let top = gt[3] + r as f64 * gt[5];
                        band(top, top + gt[5])
                    })
                    .collect();
                Ok(Self::ByRow(rows))
            }
        }
    }

    /// The area of a pixel of row `row`, m².
    pub fn at_row(&self, row: usize) -> f64 {
        match self {
            Self::Constant(a) => *a,
            Self::ByRow(rows) => rows.get(row).copied().unwrap_or(0.0),
        }
    }
}

/// The area in m² on an ellipsoid (axes a >= b, metres) of the band
/// between latitudes `lat_a` and `lat_b` (degrees) over `dlon` degrees of
/// longitude: (b² Δλ / 2) |q(φ_b) - q(φ_a)| with the authalic
/// q(φ) = sin φ / (1 - e² sin² φ) + ln((1 + e sin φ) / (1 - e sin φ)) / (2e).
pub fn ellipsoid_band_area(a: f64, b: f64, lat_a: f64, lat_b: f64, dlon: f64) -> f64 {
    let e2 = 1.0 - (b * b) / (a * a);
    let q = |lat: f64| {
        let s = lat.clamp(-90.0, 90.0).to_radians().sin();
        if e2 < 1e-15 {
            return 2.0 * s;
        }
        let e = e2.sqrt();
        s / (1.0 - e2 * s * s) + ((1.0 + e * s) / (1.0 - e * s)).ln() / (2.0 * e)
    };
    b * b * dlon.to_radians() / 2.0 * (q(lat_b) - q(lat_a)).abs()
}

/// One class's area.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassArea {
    pub value: u8,
    pub name: String,
    pub pixels: u64,
    /// None when the pixel areas are not known.
    pub m2: Option<f64>,
    pub ha: Option<f64>,
    pub km2: Option<f64>,
    /// Share of the mapped (non-zero) pixels' area (of their count when the
    /// areas are not known), 0..1.
    pub share: f64,
}

/// The areas of every class in `classes` (and of values the list lacks),
/// with why areas are in pixels only when they are.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassAreas {
    pub classes: Vec<ClassArea>,
    pub mapped_pixels: u64,
    pub mapped_m2: Option<f64>,
    /// Why the areas are pixel counts only.
    pub note: Option<String>,
}

/// The areas of `map` (row-major on `grid`, 0 = unmapped).
pub fn class_areas(map: &[u8], grid: &PixelGrid, classes: &[ClassInfo]) -> ClassAreas {
    let mut sums = AreaSums::new(grid);
    sums.add(map, 0, grid.width);
    sums.finish(classes)
}

/// Pixel counts and areas per class value, summed window by window (a
/// tiled prediction's map is never whole in memory).
pub struct AreaSums {
    pixel_areas: Result<PixelAreas, String>,
    pixels: [u64; 256],
    m2: [f64; 256],
}

impl AreaSums {
    /// Empty sums over the pixels of `grid`.
    pub fn new(grid: &PixelGrid) -> Self {
        Self {
            pixel_areas: PixelAreas::of(grid),
            pixels: [0; 256],
            m2: [0.0; 256],
        }
    }

    /// Adds the rows of a window (`width` columns, row-major) whose first
    /// row is row `row0` of the grid.
    pub fn add(&mut self, map: &[u8], row0: usize, width: usize) {
        for (row, line) in map.chunks(width.max(1)).enumerate() {
            let area = self
                .pixel_areas
                .as_ref()
                .map_or(0.0, |p| p.at_row(row0 + row));
            for &v in line {
                self.pixels[v as usize] += 1;
                self.m2[v as usize] += area;
            }
        }
    }

    /// The table of every class in `classes` (and of values it lacks).
    pub fn finish(&self, classes: &[ClassInfo]) -> ClassAreas {
        let (pixels, m2) = (&self.pixels, &self.m2);
        let mapped_pixels: u64 = pixels[1..].iter().sum();
        let mapped_m2: f64 = m2[1..].iter().sum();
        let known = self.pixel_areas.is_ok();
        let mut values: Vec<u8> = classes.iter().map(|c| c.value).filter(|&v| v > 0).collect();
        let unlisted: Vec<u8> = (1..=255u8)
            .filter(|&v| pixels[v as usize] > 0 && !values.contains(&v))
            .collect();
        values.extend(unlisted);
        values.sort_unstable();
        let rows = values
            .into_iter()
            .map(|v| {
                let i = v as usize;
                let name = crate::scene::class_name(classes, v);
                let share = if known && mapped_m2 > 0.0 {
                    m2[i] / mapped_m2
                } else if mapped_pixels > 0 {
                    pixels[i] as f64 / mapped_pixels as f64
                } else {
                    0.0
                };
                ClassArea {
                    value: v,
                    name,
                    pixels: pixels[i],
                    m2: known.then_some(m2[i]),
                    ha: known.then_some(m2[i] / 1e4),
                    km2: known.then_some(m2[i] / 1e6),
                    share,
                }
            })
            .collect();
        ClassAreas {
            classes: rows,
            mapped_pixels,
            mapped_m2: known.then_some(mapped_m2),
            note: self.pixel_areas.as_ref().err().cloned(),
        }
    }
}

impl ClassAreas {
    /// The map classes as strata of an area-adjusted accuracy: (value,
    /// area in [`Self::area_unit`]).
    pub fn strata(&self) -> Vec<(u8, f64)> {
        self.classes
            .iter()
            .map(|c| (c.value, c.ha.unwrap_or(c.pixels as f64)))
            .collect()
    }

    /// The unit of [`Self::strata`]: "ha", or "pixels" where the pixels'
    /// areas are not known.
    pub fn area_unit(&self) -> &'static str {
        if self.mapped_m2.is_some() {
            "ha"
        } else {
            "pixels"
        }
    }

    /// `value,name,pixels,m2,ha,km2,share` rows (empty area fields when the
    /// areas are not known).
    pub fn to_csv(&self) -> String {
        let num = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v}"));
        let mut out = String::from("value,name,pixels,m2,ha,km2,share\n");
        for c in &self.classes {
            let name = if c.name.contains([',', '"']) {
                format!("\"{}\"", c.name.replace('"', "\"\""))
            } else {
                c.name.clone()
            };
            out.push_str(&format!(
                "{},{},{},{},{},{},{}\n",
                c.value,
                name,
                c.pixels,
                num(c.m2),
                num(c.ha),
                num(c.km2),
                c.share
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::named_classes;
    use gdal::spatial_ref::SpatialRef;

    fn grid(epsg: u32, gt: [f64; 6], width: usize, height: usize) -> PixelGrid {
        PixelGrid {
            width,
            height,
            geo_transform: Some(gt),
            crs_wkt: Some(SpatialRef::from_epsg(epsg).unwrap().to_wkt().unwrap()),
            crs_name: Some(format!("EPSG:{epsg}")),
        }
    }

    #[test]
    fn utm_pixels_of_10_m_are_100_m2_and_class_zero_has_no_share() {
        let g = grid(32633, [500000.0, 10.0, 0.0, 4e6, 0.0, -10.0], 4, 2);
        let map = [1, 1, 2, 0, 2, 2, 2, 7];
        let a = class_areas(&map, &g, &named_classes(2, &["water".into()]));
        assert_eq!(a.note, None);
        let by = |v| a.classes.iter().find(|c| c.value == v).unwrap().clone();
        assert_eq!(
            (by(1).pixels, by(1).m2, by(1).ha),
            (2, Some(200.0), Some(0.02))
        );
        assert_eq!(by(2).m2, Some(400.0));
        assert_eq!(by(7).name, "class 7");
        assert!((by(2).share - 4.0 / 7.0).abs() < 1e-15);
        assert_eq!(a.mapped_m2, Some(700.0));
        assert!(
            a.to_csv()
                .starts_with("value,name,pixels,m2,ha,km2,share\n1,water,2,200,0.02,")
        );
    }

    /// One degree cells at the equator and at 60° N on WGS84 against the
    /// reference values of the authalic-latitude formula (the whole
    /// ellipsoid's area is 510,065,621.7 km², the published WGS84 value).
    #[test]
    fn geographic_pixels_have_their_area_on_the_ellipsoid() {
        let (a, b) = (6378137.0, 6356752.314245179);
        let world = ellipsoid_band_area(a, b, -90.0, 90.0, 360.0);
        assert!((world / 1e6 - 510_065_621.7).abs() < 1.0, "{world}");
        let equator = ellipsoid_band_area(a, b, 0.0, 1.0, 1.0);
        let north = ellipsoid_band_area(a, b, 60.0, 61.0, 1.0);
        // A 1° x 1° cell: 12,308.46 km² at the equator, 0.4975 of it at 60°
        // (the same formula evaluated in Python's double precision).
        assert!((equator / 1e6 - 12_308.46).abs() < 0.01, "{equator}");
        assert!(
            (north / equator - 0.4975).abs() < 1e-4,
            "{}",
            north / equator
        );
        let g = grid(4326, [10.0, 1.0, 0.0, 61.0, 0.0, -1.0], 1, 61);
        let map = vec![1u8; 61];
        let areas = class_areas(&map, &g, &[]);
        let total = ellipsoid_band_area(a, b, 0.0, 61.0, 1.0);
        let got = areas.classes[0].m2.unwrap();
        assert!((got - total).abs() / total < 1e-12, "{got} vs {total}");
    }

    #[test]
    fn without_a_crs_the_areas_are_pixel_counts_and_say_why() {
        let g = PixelGrid::plain(2, 1);
        let a = class_areas(&[1, 2], &g, &[]);
        assert!(a.note.as_deref().unwrap().contains("no georeference"));
        assert_eq!(a.classes[0].m2, None);
        assert_eq!(a.classes[0].share, 0.5);
    }
}
