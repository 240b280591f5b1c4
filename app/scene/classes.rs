//! The classes of a land-cover legend: value in the map, name, colour.

/// One class: its value in the map (1..=255), name and colour.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClassInfo {
    pub value: u8,
    pub name: String,
    pub color: [u8; 3],
}

/// A qualitative palette for classes without a colour of their own.
pub const PALETTE: [[u8; 3]; 12] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
    [255, 221, 87],
    [0, 0, 128],
];

/// Classes 1..=k named "class k" with palette colours.
pub fn default_classes(k: u8) -> Vec<ClassInfo> {
    named_classes(k as usize, &[])
}

impl ClassInfo {
    /// Class `value` (1..=255) named "class value", with its palette colour.
    pub fn unnamed(value: u8) -> Self {
        let v = value.max(1) as usize;
        Self {
            value,
            name: format!("class {value}"),
            color: PALETTE[(v - 1) % PALETTE.len()],
        }
    }
}

/// The name of class `value` in `classes`, "class value" where it has none.
pub fn class_name(classes: &[ClassInfo], value: u8) -> String {
    classes
        .iter()
        .find(|c| c.value == value)
        .map_or_else(|| ClassInfo::unnamed(value).name, |c| c.name.clone())
}

/// Classes 1..=k (at most 255) with palette colours, class v named
/// `names[v - 1]` where given and "class v" otherwise.
pub fn named_classes(k: usize, names: &[String]) -> Vec<ClassInfo> {
    (1..=k.min(255))
        .map(|v| {
            let mut class = ClassInfo::unnamed(v as u8);
            if let Some(name) = names.get(v - 1) {
                class.name = name.clone();
            }
            class
        })
        .collect()
}
