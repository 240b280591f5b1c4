//! The bundled demo scene (Sen1Floods11 `Spain_7370579`, CC BY 4.0): the
//! files the CLI and the app open for `--demo`.

use std::path::PathBuf;

/// (Sentinel-2 cube, Sentinel-1 VV/VH, hand-labelled water mask).
pub fn demo_paths() -> (PathBuf, PathBuf, PathBuf) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/demo");
    (
        root.join("Spain_7370579_S2Hand.tif"),
        root.join("Spain_7370579_S1Hand.tif"),
        root.join("Spain_7370579_LabelHand.tif"),
    )
}
