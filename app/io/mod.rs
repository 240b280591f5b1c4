//! Reading and writing files: GDAL rasters (GeoTIFF, ENVI, HDF5/NetCDF
//! subdatasets, PolSARpro folders), the benchmark's MATLAB `.mat` files and
//! NumPy `.npy` label arrays, into scene layers on one pixel grid.

pub mod atomic;
pub mod classmap;
pub mod crs;
pub mod download;
pub mod error;
pub mod geotiff;
pub mod mat;
pub mod memory;
pub mod npy;
pub mod open;
pub mod polsar;
pub mod raster;
pub mod sample_points;
pub mod sar_matrix;
pub mod scene_files;
pub mod sieve;
pub mod staged_folder;
pub mod tiled_map;
pub mod vector_labels;
pub mod vectorize;
pub mod windowed;

pub use error::ReadError;
pub use open::{SarScaleChoice, open_hsi, open_labels, open_labels_with_offset, open_sar};
pub use scene_files::{OpenedScene, SceneFiles, open_scene};
