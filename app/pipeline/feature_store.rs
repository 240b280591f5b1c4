//! Features of the frozen backbone kept in host memory per patch, so that
//! they are computed once: within a Stage B run (the labelled patches'
//! features serve the prediction pass too) and, in the app, across runs — a
//! label stroke then only retrains the head and re-applies it, which is what
//! makes live retraining fast. A store forgets everything the moment the
//! backbone, the timestep, the block, the patch grid, the noise or the input
//! images differ from what its features were computed with. Kept in f32,
//! exactly as computed: a result never depends on which runs came before it
//! (the app's numbers equal the headless run's).

use std::hash::{DefaultHasher, Hash, Hasher};

use super::modality::Modality;
use crate::products::Rgb8Image;

/// What the stored features depend on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeatureKey {
    pub backbone: String,
    pub t: i64,
    pub block: usize,
    pub patch: usize,
    pub stride: usize,
    pub noise_seed: u64,
    pub modalities: Vec<Modality>,
    /// Hash of the images' pixels and sizes.
    pub images: u64,
}

/// A hash of the input images (their sizes and every byte).
pub fn images_fingerprint(images: &[(Modality, &Rgb8Image)]) -> u64 {
    let mut h = DefaultHasher::new();
    for (m, image) in images {
        m.hash(&mut h);
        (image.width, image.height).hash(&mut h);
        image.data.hash(&mut h);
    }
    h.finish()
}

/// Per-patch feature maps (D x P x P, f32) within a memory budget.
#[derive(Debug, Default)]
pub struct FeatureStore {
    key: Option<FeatureKey>,
    patches: Vec<Option<Vec<f32>>>,
    dim: usize,
    bytes: usize,
    budget: usize,
    /// Keep the prediction pass's features too (across runs), not only the
    /// labelled patches' (within one run).
    keep_all: bool,
    /// One head's first-layer outputs per patch.
    first_layer: Option<FirstLayerOutputs>,
}

/// A head's first-layer outputs (d_1 x P x P per patch), for the head of
/// one first-layer id ([`super::classifier::HostHead::first_layer_id`]).
#[derive(Debug)]
struct FirstLayerOutputs {
    head: u64,
    patches: Vec<Option<Vec<f32>>>,
}

impl FeatureStore {
    /// A store for one run: keeps the labelled patches' features for the
    /// prediction pass, up to `budget` bytes.
    pub fn for_one_run(budget: usize) -> Self {
        Self {
            budget,
            ..Self::default()
        }
    }

    /// A store kept between runs: keeps every patch's features up to
    /// `budget` bytes.
    pub fn across_runs(budget: usize) -> Self {
        Self {
            budget,
            keep_all: true,
            ..Self::default()
        }
    }

    /// Makes the store hold features for `key` on a grid of `patches`
    /// patches: kept if the key is the same, dropped otherwise.
    pub fn prepare(&mut self, key: FeatureKey, patches: usize) {
        if self.key.as_ref() != Some(&key) || self.patches.len() != patches {
            self.key = Some(key);
            self.patches = vec![None; patches];
            self.dim = 0;
            self.bytes = 0;
            self.first_layer = None;
        }
    }

    /// Drops every stored feature.
    pub fn clear(&mut self) {
        self.key = None;
        self.patches.clear();
        self.dim = 0;
        self.bytes = 0;
        self.first_layer = None;
    }

    pub fn keeps_all(&self) -> bool {
        self.keep_all
    }

    pub fn contains(&self, patch: usize) -> bool {
        self.patches.get(patch).is_some_and(Option::is_some)
    }

    /// Feature channels of the stored maps (0 while empty).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Patches stored.
    pub fn stored(&self) -> usize {
        self.patches.iter().filter(|p| p.is_some()).count()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The features of `patch` as f32, appended to `out`; false when absent.
    pub fn read_into(&self, patch: usize, out: &mut Vec<f32>) -> bool {
        match self.patches.get(patch).and_then(Option::as_ref) {
            Some(values) => {
                out.extend_from_slice(values);
                true
            }
            None => false,
        }
    }

    /// The features of `patch` where they lie, if stored.
    pub fn get(&self, patch: usize) -> Option<&[f32]> {
        self.patches.get(patch).and_then(Option::as_deref)
    }

    /// The first-layer outputs of `patch` for the head `head`, if kept.
    pub fn first_layer(&self, head: u64, patch: usize) -> Option<&[f32]> {
        self.first_layer
            .as_ref()
            .filter(|f| f.head == head)
            .and_then(|f| f.patches.get(patch))
            .and_then(Option::as_deref)
    }

    /// Keeps the first-layer outputs of `patch` for the head `head` if
    /// they fit the budget (with the features); another head's are dropped
    /// first. True when kept.
    pub fn put_first_layer(&mut self, head: u64, patch: usize, values: Vec<f32>) -> bool {
        if patch >= self.patches.len() {
            return false;
        }
        self.retain_first_layer(head);
        let outputs = self.first_layer.get_or_insert_with(|| FirstLayerOutputs {
            head,
            patches: vec![None; self.patches.len()],
        });
        let old = outputs.patches[patch].as_ref().map_or(0, |v| 4 * v.len());
        let size = 4 * values.len();
        if self.bytes - old + size > self.budget {
            return false;
        }
        outputs.patches[patch] = Some(values);
        self.bytes = self.bytes - old + size;
        true
    }

    /// Patches whose first-layer outputs for the head `head` are kept.
    pub fn first_layer_count(&self, head: u64) -> usize {
        self.first_layer
            .as_ref()
            .filter(|f| f.head == head)
            .map_or(0, |f| f.patches.iter().flatten().count())
    }

    /// Drops the first-layer outputs kept for any head but `head`.
    pub fn retain_first_layer(&mut self, head: u64) {
        if self.first_layer.as_ref().is_some_and(|f| f.head != head) {
            self.drop_first_layer();
        }
    }

    /// Drops the first-layer outputs kept.
    fn drop_first_layer(&mut self) {
        if let Some(f) = self.first_layer.take() {
            let held: usize = f.patches.iter().flatten().map(|v| 4 * v.len()).sum();
            self.bytes -= held;
        }
    }

    /// Keeps the features of `patch` (D x P x P values of `dim` channels)
    /// if they fit the budget; true when kept.
    pub fn put(&mut self, patch: usize, dim: usize, values: &[f32]) -> bool {
        self.put_leaving(patch, dim, values, 0)
    }

    /// As [`Self::put`], if `reserve` bytes of the budget stay free after
    /// it (room kept for a head's first-layer outputs).
    pub fn put_leaving(
        &mut self,
        patch: usize,
        dim: usize,
        values: &[f32],
        reserve: usize,
    ) -> bool {
        let size = 4 * values.len();
        if patch >= self.patches.len()
            || self.bytes + size + reserve > self.budget
            || (self.dim != 0 && self.dim != dim)
        {
            return false;
        }
        if let Some(old) = &self.patches[patch] {
            self.bytes -= 4 * old.len();
        }
        self.patches[patch] = Some(values.to_vec());
        self.bytes += size;
        self.dim = dim;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(t: i64) -> FeatureKey {
        FeatureKey {
            backbone: "tiny-random:0".into(),
            t,
            block: 8,
            patch: 2,
            stride: 1,
            noise_seed: 0,
            modalities: vec![Modality::Prgb],
            images: 7,
        }
    }

    #[test]
    fn keeps_features_within_the_budget_and_forgets_them_for_another_key() {
        let mut store = FeatureStore::across_runs(4 * 8);
        store.prepare(key(300), 3);
        assert!(store.put(0, 2, &[1.0, 2.0, 3.0, 4.0]));
        assert!(store.put(1, 2, &[0.5, -1.0, 0.25, 8.0]));
        // A third patch does not fit the 32 bytes.
        assert!(!store.put(2, 2, &[0.0; 4]));
        assert!(
            !store.put_leaving(1, 2, &[0.0; 4], 4),
            "no room left to keep"
        );
        assert_eq!((store.stored(), store.bytes(), store.dim()), (2, 32, 2));
        let mut out = Vec::new();
        assert!(store.read_into(1, &mut out));
        assert!(!store.read_into(2, &mut out));
        assert_eq!(out, vec![0.5, -1.0, 0.25, 8.0]);
        assert_eq!(store.get(1), Some(&out[..]));
        assert_eq!(store.get(2), None);
        // The same key keeps them; another timestep drops them.
        store.prepare(key(300), 3);
        assert_eq!(store.stored(), 2);
        store.prepare(key(200), 3);
        assert_eq!((store.stored(), store.bytes()), (0, 0));
    }

    #[test]
    fn keeps_one_heads_first_layer_outputs_within_the_same_budget() {
        let mut store = FeatureStore::across_runs(4 * 10);
        store.prepare(key(300), 3);
        assert!(store.put(0, 2, &[1.0, 2.0, 3.0, 4.0]));
        assert!(store.put_first_layer(7, 0, vec![0.5, 0.25]));
        assert!(store.put_first_layer(7, 1, vec![1.5, 2.5]));
        // 16 + 8 + 8 bytes held; 12 more do not fit the 40.
        assert!(!store.put_first_layer(7, 2, vec![0.0; 3]));
        assert_eq!(store.bytes(), 32);
        assert_eq!(store.first_layer(7, 1), Some(&[1.5, 2.5][..]));
        assert_eq!(
            (store.first_layer_count(7), store.first_layer_count(8)),
            (2, 0)
        );
        assert_eq!(store.first_layer(8, 1), None, "another head's");
        assert_eq!(store.first_layer(7, 2), None);
        // Another head's outputs replace them.
        assert!(store.put_first_layer(8, 2, vec![9.0; 4]));
        assert_eq!(store.first_layer(7, 0), None);
        assert_eq!(store.bytes(), 32);
        // Replacing a patch's outputs counts them once.
        assert!(store.put_first_layer(8, 2, vec![1.0; 4]));
        assert_eq!(store.bytes(), 32);
        store.retain_first_layer(8);
        assert_eq!(store.bytes(), 32);
        store.retain_first_layer(9);
        assert_eq!((store.first_layer(8, 2), store.bytes()), (None, 16));
        assert!(store.put_first_layer(8, 2, vec![1.0; 4]));
        // Other features drop them with the features.
        store.prepare(key(200), 3);
        assert_eq!((store.first_layer(8, 2), store.bytes()), (None, 0));
    }

    #[test]
    fn the_fingerprint_sees_one_changed_pixel() {
        let a = Rgb8Image {
            width: 2,
            height: 1,
            data: vec![1, 2, 3, 4, 5, 6],
            stretch: Vec::new(),
        };
        let mut b = a.clone();
        let fa = images_fingerprint(&[(Modality::Prgb, &a)]);
        assert_eq!(fa, images_fingerprint(&[(Modality::Prgb, &b)]));
        b.data[4] = 0;
        assert_ne!(fa, images_fingerprint(&[(Modality::Prgb, &b)]));
        assert_ne!(fa, images_fingerprint(&[(Modality::Pca, &a)]));
    }
}
