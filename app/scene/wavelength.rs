//! Band centre wavelengths from file metadata, normalised to nanometres.
//!
//! Sources, in order: GDAL band metadata (`wavelength`, `wavelength_units`, as
//! EnMAP products and GDAL's ENVI driver give them), then the ENVI header's
//! `wavelength` list with its `wavelength units`.

/// Nanometres per unit of a wavelength unit name, or None when unknown.
pub fn nm_per_unit(units: &str) -> Option<f64> {
    let u = units.trim().to_ascii_lowercase();
    match u.as_str() {
        "nanometers" | "nanometer" | "nanometres" | "nanometre" | "nm" => Some(1.0),
        "micrometers" | "micrometer" | "micrometres" | "micrometre" | "microns" | "micron"
        | "um" | "µm" | "μm" => Some(1000.0),
        "millimeters" | "millimeter" | "mm" => Some(1e6),
        "wavenumber" | "index" | "unknown" | "" => None,
        _ => None,
    }
}

/// Scales wavelengths in `units` to nm. Without usable units, values below 100
/// are taken as micrometres and the rest as nanometres (the two units in use for
/// 0.3-15 um sensors); the second item says which rule was applied.
pub fn to_nm(values: &[f64], units: Option<&str>) -> (Vec<f64>, String) {
    if let Some(factor) = units.and_then(nm_per_unit) {
        let unit = units.unwrap_or_default();
        return (
            values.iter().map(|v| v * factor).collect(),
            format!("units '{unit}'"),
        );
    }
    let max = values.iter().cloned().fold(f64::NAN, f64::max);
    if max < 100.0 {
        (
            values.iter().map(|v| v * 1000.0).collect(),
            "no units given; values below 100 read as micrometres".to_string(),
        )
    } else {
        (
            values.to_vec(),
            "no units given; values read as nanometres".to_string(),
        )
    }
}

/// Parses an ENVI list such as `{ 400.5, 410.2 , 420 }` into numbers.
pub fn parse_envi_list(text: &str) -> Option<Vec<f64>> {
    let inner = text.trim().trim_start_matches('{').trim_end_matches('}');
    inner
        .split(',')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<f64>().ok())
        .collect()
}

/// Index of the band whose wavelength is nearest `target_nm`, skipping bands
/// for which `usable` is false.
pub fn nearest_band(
    wavelengths_nm: &[f64],
    target_nm: f64,
    usable: impl Fn(usize) -> bool,
) -> Option<usize> {
    wavelengths_nm
        .iter()
        .enumerate()
        .filter(|(i, w)| w.is_finite() && usable(*i))
        .min_by(|a, b| (a.1 - target_nm).abs().total_cmp(&(b.1 - target_nm).abs()))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micrometres_become_nanometres() {
        let (nm, why) = to_nm(&[0.45, 2.5], Some("Micrometers"));
        assert_eq!(nm, vec![450.0, 2500.0]);
        assert!(why.contains("Micrometers"));
        let (nm, why) = to_nm(&[0.45, 2.5], None);
        assert_eq!(nm, vec![450.0, 2500.0]);
        assert!(why.contains("micrometres"));
        let (nm, _) = to_nm(&[450.0, 2500.0], Some("unknown"));
        assert_eq!(nm, vec![450.0, 2500.0]);
    }

    #[test]
    fn envi_lists_parse() {
        assert_eq!(parse_envi_list("{ 1.5, 2 ,3}"), Some(vec![1.5, 2.0, 3.0]));
        assert_eq!(parse_envi_list("{ 1.5, x }"), None);
    }

    #[test]
    fn nearest_band_skips_unusable_bands() {
        let w = [470.0, 551.0, 560.0, 640.0];
        assert_eq!(nearest_band(&w, 550.0, |_| true), Some(1));
        assert_eq!(nearest_band(&w, 550.0, |i| i != 1), Some(2));
    }
}
