//! The layers of design.md, checked: each folder of `app/` names the layers
//! it may use, and a test reads every source file for `crate::<layer>` and
//! `super::super::<layer>` paths that point up or sideways. Re-exports count
//! too: a layer offers what the one above needs through its own API.

/// Each layer and the layers below it that it may use.
pub(crate) const ALLOWED: &[(&str, &[&str])] = &[
    ("base", &[]),
    ("scene", &["base"]),
    ("io", &["scene", "base"]),
    ("products", &["scene", "base"]),
    ("demo", &["io", "products", "scene", "base"]),
    ("metrics", &["io", "scene", "base"]),
    ("model", &["io", "scene", "base"]),
    (
        "pipeline",
        &["model", "metrics", "io", "products", "scene", "base"],
    ),
    (
        "session",
        &[
            "pipeline", "model", "metrics", "io", "products", "scene", "base",
        ],
    ),
    (
        "jobs",
        &[
            "session", "pipeline", "model", "metrics", "io", "products", "scene", "demo", "base",
        ],
    ),
    // The app: no model (jobs offers what it needs), no io (file work runs
    // as jobs), never the CLI.
    (
        "ui",
        &[
            "jobs", "session", "pipeline", "metrics", "products", "scene", "base",
        ],
    ),
    // The CLI: everything but the app.
    (
        "cli",
        &[
            "jobs", "session", "pipeline", "model", "metrics", "io", "products", "scene", "demo",
            "base",
        ],
    ),
];

/// The layer names a source text uses, as `crate::name` or
/// `super::super::name`.
pub(crate) fn layers_used(source: &str) -> Vec<String> {
    let mut used = Vec::new();
    for prefix in ["crate::", "super::super::"] {
        let mut rest = source;
        while let Some(i) = rest.find(prefix) {
            let after = &rest[i + prefix.len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && !used.contains(&name) {
                used.push(name);
            }
            rest = after;
        }
    }
    used
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn no_layer_uses_one_above_it_or_beside_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("app");
        let layers: Vec<&str> = ALLOWED.iter().map(|(l, _)| *l).collect();
        let mut broken = Vec::new();
        let mut checked = 0;
        for (layer, allowed) in ALLOWED {
            let mut files = Vec::new();
            let dir = root.join(layer);
            if dir.is_dir() {
                sources(&dir, &mut files);
            } else {
                files.push(root.join(format!("{layer}.rs")));
            }
            assert!(
                files.iter().all(|f| f.exists()),
                "layer {layer} has no source"
            );
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                for used in layers_used(&text) {
                    let is_layer = layers.contains(&used.as_str());
                    if is_layer && used != *layer && !allowed.contains(&used.as_str()) {
                        broken.push(format!("{} uses {used}", file.display()));
                    }
                }
                checked += 1;
            }
        }
        assert!(checked > 80, "only {checked} files read");
        assert!(
            broken.is_empty(),
            "layer rules broken:\n{}",
            broken.join("\n")
        );
    }

    #[test]
    fn the_reader_finds_crate_and_super_super_paths() {
        let text =
            "use crate::io::open;\nlet x = super::super::model::UNet::new();\n// crate::ui\n";
        assert_eq!(layers_used(text), ["io", "ui", "model"]);
    }

    #[test]
    fn every_layer_of_the_crate_has_a_rule() {
        let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("app/lib.rs"))
            .unwrap();
        for line in lib.lines() {
            if let Some(name) = line
                .strip_prefix("pub mod ")
                .and_then(|l| l.strip_suffix(';'))
            {
                assert!(
                    ALLOWED.iter().any(|(l, _)| *l == name),
                    "the layer {name} has no rule in layer_rules.rs"
                );
            }
        }
    }
}
