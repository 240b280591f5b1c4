//! The patch grid equals the reference's `patch_grid.json` for the demo,
//! Berlin and Augsburg scene sizes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

mod common;

use unidiff_studio::pipeline::PatchGrid;

#[test]
fn patch_grids_match_the_reference() {
    let expected = common::json("preprocess/patch_grid.json");
    for key in [
        "sen1floods11_512x512",
        "berlin_1723x476",
        "augsburg_332x485",
    ] {
        let e = &expected[key];
        let u = |k: &str| e[k].as_u64().unwrap() as usize;
        let g = PatchGrid::method(u("height"), u("width"));
        assert_eq!(
            (
                g.padded_height,
                g.padded_width,
                g.pad_top,
                g.pad_left,
                g.n_rows,
                g.n_cols,
                g.len()
            ),
            (
                u("padded_height"),
                u("padded_width"),
                u("pad_top"),
                u("pad_left"),
                u("n_rows"),
                u("n_cols"),
                u("n_patches")
            ),
            "{key}"
        );
        let last: Vec<usize> = serde_json::from_value(e["last_patch_top_left"].clone()).unwrap();
        let (r, c) = g.top_left(g.len() - 1);
        assert_eq!(vec![r, c], last, "{key}");
        assert_eq!(g.top_left(0), (0, 0));
    }
}
