//! Writing a land-cover class map as a GeoTIFF that GIS tools show with its
//! colours and class names: uint8, 0 = nodata, the scene's CRS and
//! geotransform, a GDAL colour table, GDAL category names (kept in the
//! `.aux.xml` beside the file) and a QGIS `.qml` paletted style.

use crate::scene::ClassInfo;
use std::path::Path;

use gdal::raster::{Buffer, ColorEntry, ColorTable, PaletteInterpretation};

use super::atomic::{write_atomically, write_bytes};
use super::geotiff::{WriteError, create_geotiff, failed};
use crate::scene::PixelGrid;

/// The QGIS style of the map: a paletted renderer with names and colours.
pub fn qgis_style(classes: &[ClassInfo]) -> String {
    let mut entries = String::new();
    for c in classes {
        let name = c
            .name
            .replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        entries.push_str(&format!(
            "        <paletteEntry value=\"{}\" label=\"{}\" color=\"#{:02x}{:02x}{:02x}\" alpha=\"255\"/>\n",
            c.value, name, c.color[0], c.color[1], c.color[2]
        ));
    }
    format!(
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n<qgis version=\"3.28\" styleCategories=\"Symbology\">\n  <pipe>\n    <rasterrenderer type=\"paletted\" band=\"1\" opacity=\"1\" nodataColor=\"\">\n      <colorPalette>\n{entries}      </colorPalette>\n    </rasterrenderer>\n  </pipe>\n</qgis>\n"
    )
}

/// Writes `classes_map` (row-major, 0 = nodata) with its colour table, class
/// names and a `.qml` style beside it.
pub fn write_class_map(
    path: &Path,
    class_map: &[u8],
    grid: &PixelGrid,
    classes: &[ClassInfo],
) -> Result<(), WriteError> {
    crate::io::raster::init_gdal();
    let (w, h) = (grid.width, grid.height);
    if class_map.len() != w * h {
        return Err(failed(path, "class map size differs from its grid"));
    }
    write_atomically(path, |tmp| {
        let ds = create_geotiff::<u8>(path, tmp, (w, h, 1), &[], grid)?;
        let mut band = ds.rasterband(1).map_err(|e| failed(path, e))?;
        band.write((0, 0), (w, h), &mut Buffer::new((w, h), class_map.to_vec()))
            .map_err(|e| failed(path, e))?;
        set_class_table(path, &mut band, classes)?;
        ds.close().map_err(|e| failed(path, e))
    })?;
    // The category names live in GDAL's .aux.xml sidecar for GeoTIFF: move it
    // along with the renamed file.
    move_aux(&super::atomic::temp_path_for(path), path)?;
    write_bytes(&path.with_extension("qml"), qgis_style(classes).as_bytes())?;
    Ok(())
}

/// Gives a class map band its nodata value (0), colour table and class
/// names (category names: index = class value, 0 is "nodata").
pub(crate) fn set_class_table(
    path: &Path,
    band: &mut gdal::raster::RasterBand<'_>,
    classes: &[ClassInfo],
) -> Result<(), WriteError> {
    let max = classes.iter().map(|c| c.value).max().unwrap_or(0) as usize;
    band.set_no_data_value(Some(0.0))
        .map_err(|e| failed(path, e))?;
    let mut table = ColorTable::new(PaletteInterpretation::Rgba);
    table.set_color_entry(0, &ColorEntry::rgba(0, 0, 0, 0));
    for c in classes {
        let [r, g, b] = c.color;
        table.set_color_entry(
            c.value as u16,
            &ColorEntry::rgba(r as i16, g as i16, b as i16, 255),
        );
    }
    band.set_color_table(&table);
    let mut names = vec![String::new(); max + 1];
    names[0] = "nodata".to_string();
    for c in classes {
        names[c.value as usize] = c.name.clone();
    }
    let list: gdal::cpl::CslStringList = names.into_iter().collect();
    // SAFETY: the band handle is valid while its dataset lives; GDAL copies
    // the list.
    let err = unsafe { gdal_sys::GDALSetRasterCategoryNames(band.c_rasterband(), list.as_ptr()) };
    if err != gdal_sys::CPLErr::CE_None {
        return Err(failed(path, "cannot store the class names"));
    }
    Ok(())
}

/// Moves the PAM sidecar (`.aux.xml`, where GDAL keeps the class names) of
/// a file written at `tmp` to its place beside `path`.
pub(crate) fn move_aux(tmp: &Path, path: &Path) -> std::io::Result<()> {
    let tmp_aux = aux_path(tmp);
    if tmp_aux.exists() {
        std::fs::rename(&tmp_aux, aux_path(path))?;
    }
    Ok(())
}

/// The classes a class-map or label GeoTIFF names: from its colour table and
/// GDAL category names, for the values 1..=255 that have either. Empty for
/// files without them (`.mat`, `.npy`, plain rasters) or unreadable ones.
pub fn read_class_table(path: &Path) -> Vec<ClassInfo> {
    crate::io::raster::init_gdal();
    let Ok(ds) = gdal::Dataset::open(path) else {
        return Vec::new();
    };
    let Ok(band) = ds.rasterband(1) else {
        return Vec::new();
    };
    let mut names: Vec<String> = Vec::new();
    // SAFETY: the band handle is valid while `ds` lives; GDAL owns the list
    // and it is copied out before the dataset is dropped.
    unsafe {
        let list = gdal_sys::GDALGetRasterCategoryNames(band.c_rasterband());
        if !list.is_null() {
            let mut i = 0;
            loop {
                let p = *list.add(i);
                if p.is_null() {
                    break;
                }
                names.push(std::ffi::CStr::from_ptr(p).to_string_lossy().to_string());
                i += 1;
            }
        }
    }
    if names.is_empty() {
        // GDAL 3.6's GeoTIFF driver does not hand out category names kept in
        // the `.aux.xml` sidecar; read them from it.
        names = aux_category_names(path);
    }
    let table = band.color_table();
    let mut out = Vec::new();
    for v in 1..=255usize {
        let name = names.get(v).filter(|n| !n.is_empty()).cloned();
        let color = table
            .as_ref()
            .and_then(|t| t.entry_as_rgb(v))
            .and_then(|e| {
                let c = [e.r, e.g, e.b];
                (c != [0, 0, 0] || name.is_some()).then(|| c.map(|x| x.clamp(0, 255) as u8))
            });
        if name.is_none() && color.is_none() {
            continue;
        }
        let mut class = ClassInfo::unnamed(v as u8);
        if let Some(name) = name {
            class.name = name;
        }
        if let Some(color) = color {
            class.color = color;
        }
        out.push(class);
    }
    out
}

/// GDAL's `.aux.xml` sidecar of `path` (`map.tif` -> `map.tif.aux.xml`).
fn aux_path(path: &Path) -> std::path::PathBuf {
    path.with_file_name(format!(
        "{}.aux.xml",
        path.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    ))
}

/// The `<Category>` entries of a GDAL `.aux.xml` sidecar, in order.
fn aux_category_names(path: &Path) -> Vec<String> {
    let aux = aux_path(path);
    let Ok(xml) = std::fs::read_to_string(aux) else {
        return Vec::new();
    };
    let Some(start) = xml.find("<CategoryNames>") else {
        return Vec::new();
    };
    let end = xml[start..]
        .find("</CategoryNames>")
        .map_or(xml.len(), |e| start + e);
    let mut out = Vec::new();
    let mut rest = &xml[start + "<CategoryNames>".len()..end];
    while let Some(i) = rest.find("<Category") {
        rest = &rest[i + "<Category".len()..];
        if rest.trim_start().starts_with("/>") {
            out.push(String::new());
            rest = &rest[rest.find("/>").map_or(0, |j| j + 2)..];
            continue;
        }
        let Some(open_end) = rest.find('>') else {
            break;
        };
        rest = &rest[open_end + 1..];
        let Some(close) = rest.find("</Category>") else {
            break;
        };
        let text = rest[..close]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&");
        out.push(text);
        rest = &rest[close..];
    }
    out
}
