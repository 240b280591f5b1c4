//! The class map and probability raster of a tiled prediction, written tile
//! by tile into working GeoTIFFs on disk (sparse: tiles another shard maps
//! are never written), then copied into Cloud-Optimized GeoTIFFs (tiled,
//! DEFLATE, overviews; the class map with its colour table and class
//! names) and renamed into place. Memory holds one tile; the outputs appear
//! whole or not at all.

use std::path::{Path, PathBuf};

use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::{Dataset, DriverManager, Metadata};

use super::atomic::temp_path_for;
use super::classmap::{move_aux, qgis_style, set_class_table};
use super::geotiff::{WriteError, create_geotiff, failed};
use crate::scene::{ClassInfo, PixelGrid, Window};

/// The class map's file name in an output folder.
pub const CLASS_MAP: &str = "classmap.tif";
/// The max-probability / entropy raster's file name.
pub const PROBABILITY: &str = "probability.tif";

/// Working files being filled, and where they go.
pub struct TiledMapWriter {
    dir: PathBuf,
    classes: Vec<ClassInfo>,
    class_work: PathBuf,
    prob_work: PathBuf,
    class_ds: Option<Dataset>,
    prob_ds: Option<Dataset>,
}

fn work_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.{}.work.tif", std::process::id()))
}

impl TiledMapWriter {
    /// Creates the working files in `dir` on `grid`.
    pub fn create(dir: &Path, grid: &PixelGrid, classes: &[ClassInfo]) -> Result<Self, WriteError> {
        crate::io::raster::init_gdal();
        let (w, h) = (grid.width, grid.height);
        let class_work = work_path(dir, CLASS_MAP);
        let prob_work = work_path(dir, PROBABILITY);
        let options = ["SPARSE_OK=TRUE", "BIGTIFF=IF_SAFER"];
        let mut writer = Self {
            dir: dir.to_path_buf(),
            classes: classes.to_vec(),
            class_work: class_work.clone(),
            prob_work: prob_work.clone(),
            class_ds: None,
            prob_ds: None,
        };
        let class_path = dir.join(CLASS_MAP);
        let class_ds = create_geotiff::<u8>(&class_path, &class_work, (w, h, 1), &options, grid)?;
        let mut band = class_ds.rasterband(1).map_err(|e| failed(&class_path, e))?;
        set_class_table(&class_path, &mut band, classes)?;
        writer.class_ds = Some(class_ds);
        let prob_path = dir.join(PROBABILITY);
        let prob_ds = create_geotiff::<f32>(
            &prob_path,
            &prob_work,
            (w, h, 2),
            &["PREDICTOR=3", options[0], options[1]],
            grid,
        )?;
        for (i, name) in ["max probability", "entropy (nats)"].iter().enumerate() {
            let mut band = prob_ds
                .rasterband(i + 1)
                .map_err(|e| failed(&prob_path, e))?;
            band.set_description(name)
                .map_err(|e| failed(&prob_path, e))?;
            band.set_no_data_value(Some(f64::NAN))
                .map_err(|e| failed(&prob_path, e))?;
        }
        writer.prob_ds = Some(prob_ds);
        Ok(writer)
    }

    /// Writes one tile's class map, max probability and entropy (row-major
    /// over the window).
    pub fn put(
        &mut self,
        window: Window,
        class_map: &[u8],
        max_probability: &[f32],
        entropy: &[f32],
    ) -> Result<(), WriteError> {
        let at = (
            isize::try_from(window.col0).map_err(|e| failed(&self.class_work, e))?,
            isize::try_from(window.row0).map_err(|e| failed(&self.class_work, e))?,
        );
        let size = (window.width, window.height);
        if let Some(ds) = &self.class_ds {
            let mut band = ds.rasterband(1).map_err(|e| failed(&self.class_work, e))?;
            band.write(at, size, &mut Buffer::new(size, class_map.to_vec()))
                .map_err(|e| failed(&self.class_work, e))?;
        }
        if let Some(ds) = &self.prob_ds {
            for (i, values) in [max_probability, entropy].into_iter().enumerate() {
                let mut band = ds
                    .rasterband(i + 1)
                    .map_err(|e| failed(&self.prob_work, e))?;
                band.write(at, size, &mut Buffer::new(size, values.to_vec()))
                    .map_err(|e| failed(&self.prob_work, e))?;
            }
        }
        Ok(())
    }

    /// Copies the working files into COGs, renames them into place (with
    /// the class map's `.aux.xml` names and `.qml` style) and removes the
    /// working files; returns the paths written.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, WriteError> {
        let class_path = self.dir.join(CLASS_MAP);
        let prob_path = self.dir.join(PROBABILITY);
        for (ds, work) in [
            (self.class_ds.take(), &self.class_work),
            (self.prob_ds.take(), &self.prob_work),
        ] {
            if let Some(ds) = ds {
                ds.close().map_err(|e| failed(work, e))?;
            }
        }
        copy_to_cog(&self.class_work, &class_path, "NEAREST")?;
        copy_to_cog(&self.prob_work, &prob_path, "AVERAGE")?;
        super::atomic::write_bytes(
            &class_path.with_extension("qml"),
            qgis_style(&self.classes).as_bytes(),
        )?;
        Ok(vec![class_path, prob_path])
    }
}

/// A COG of `work` at `path` (through a temporary name beside it), with
/// overviews resampled by `resampling`.
fn copy_to_cog(work: &Path, path: &Path, resampling: &str) -> Result<(), WriteError> {
    let driver = DriverManager::get_driver_by_name("COG").map_err(|e| failed(path, e))?;
    let source = Dataset::open(work).map_err(|e| failed(work, e))?;
    let tmp = temp_path_for(path);
    let resampling = format!("RESAMPLING={resampling}");
    let options = RasterCreationOptions::from_iter([
        "COMPRESS=DEFLATE",
        "BIGTIFF=IF_SAFER",
        "OVERVIEWS=AUTO",
        resampling.as_str(),
    ]);
    let copied = source
        .create_copy(&driver, &tmp, &options)
        .and_then(|ds| ds.close());
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(tmp.with_extension("tmp.aux.xml"));
        return Err(failed(path, e));
    }
    std::fs::rename(&tmp, path)?;
    move_aux(&tmp, path)?;
    Ok(())
}

impl Drop for TiledMapWriter {
    /// The working files go, whether the map was finished or not.
    fn drop(&mut self) {
        self.class_ds = None;
        self.prob_ds = None;
        for work in [&self.class_work, &self.prob_work] {
            let _ = std::fs::remove_file(work);
            let _ = std::fs::remove_file(work.with_extension("tif.aux.xml"));
        }
    }
}
