//! The random forest of the classical baselines (`rf`, `filter-rf`), grown
//! as scikit-learn's `RandomForestClassifier` grows it: a bootstrap sample
//! per tree; at each node the best Gini split over `mtry` features drawn
//! anew (features constant in the node not counted); trees grown until
//! their leaves are pure (or a depth or leaf size is reached); a pixel's
//! class the largest mean of the trees' leaf class fractions.
//!
//! Written here instead of taken from smartcore (the forest before it):
//! smartcore scans every training row at every node and sorts every
//! column for every tree, and predicts value by value through its matrix
//! accessors; its trees are private, so they cannot be flattened. On the
//! demo scene its two forests took 7 s of a 14 s `run`.
//!
//! Splits are searched over each feature's values binned once per forest
//! (every distinct value its own bin up to [`MAX_BINS`] of them, quantiles
//! beyond), as histogram-based forests do: a node's candidates are the
//! boundaries between the bins its samples fall in, evaluated from class
//! counts per bin. A threshold lies halfway between the largest training
//! value of the bin below and the smallest of the bin above, so that the
//! trees classify raw values. Trees are traversed branch-free, a block of
//! pixels at a time.

use rayon::prelude::*;

use crate::base::rng::NormalRng;

/// Most bins per feature (bin codes are bytes).
pub const MAX_BINS: usize = 256;

/// Nodes with fewer samples than this are split by sorting their bin
/// codes; larger ones by a histogram over the bins.
const SORT_BELOW: usize = 64;

/// How a forest is grown.
#[derive(Debug, Clone, Copy)]
pub struct ForestParams {
    pub trees: usize,
    /// Deepest node (the root is depth 0); None: no limit.
    pub max_depth: Option<usize>,
    pub min_samples_leaf: usize,
    /// Features tried at each node.
    pub mtry: usize,
    pub seed: u64,
}

/// Why a forest cannot be grown.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ForestError {
    #[error("no training samples")]
    NoSamples,
    #[error("{values} training values are not {rows} rows of {dim}")]
    Shape {
        values: usize,
        rows: usize,
        dim: usize,
    },
    #[error("a training value is not finite (row {row}, column {column})")]
    NotFinite { row: usize, column: usize },
    #[error("a forest needs at least one tree")]
    NoTrees,
}

/// One node: a split (`feature`, `threshold`: values <= it go to
/// `next[0]`) or a leaf (`feature == LEAF`, `next[0]` its class fractions'
/// row, `next[1]` the node itself).
#[derive(Debug, Clone, Copy)]
struct Node {
    feature: u32,
    threshold: f32,
    next: [u32; 2],
}

const LEAF: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Tree {
    nodes: Vec<Node>,
    /// Class fractions of each leaf, `k` per leaf.
    leaves: Vec<f32>,
}

/// A grown forest.
#[derive(Debug, Clone)]
pub struct Forest {
    trees: Vec<Tree>,
    /// The class of each index, ascending.
    classes: Vec<u8>,
    dim: usize,
}

/// The training values binned: per feature its bins' codes per sample and
/// the thresholds between consecutive bins.
struct Binned {
    /// `codes[f * n + s]`: sample s's bin of feature f.
    codes: Vec<u8>,
    /// `cuts[f][b]`: the threshold between bins b and b + 1 of feature f.
    cuts: Vec<Vec<f32>>,
    n: usize,
}

impl Binned {
    fn new(x: &[f32], n: usize, dim: usize) -> Self {
        let per_feature: Vec<(Vec<u8>, Vec<f32>)> = (0..dim)
            .into_par_iter()
            .map(|f| {
                let column: Vec<f32> = (0..n).map(|s| x[s * dim + f]).collect();
                let mut sorted = column.clone();
                sorted.sort_unstable_by(f32::total_cmp);
                sorted.dedup();
                // The largest value of each bin (ascending): every distinct
                // value, or quantiles of the distinct values.
                let tops: Vec<f32> = if sorted.len() <= MAX_BINS {
                    sorted.clone()
                } else {
                    let mut tops: Vec<f32> = (1..=MAX_BINS)
                        .map(|b| sorted[(b * sorted.len()).div_ceil(MAX_BINS) - 1])
                        .collect();
                    tops.dedup();
                    tops
                };
                let cuts: Vec<f32> = tops
                    .windows(2)
                    .map(|w| {
                        // The smallest distinct value above the bin's top.
                        let above = sorted[sorted.partition_point(|&v| v <= w[0])];
                        halfway(w[0], above)
                    })
                    .collect();
                let codes = column
                    .iter()
                    .map(|&v| cuts.partition_point(|&c| c < v) as u8)
                    .collect();
                (codes, cuts)
            })
            .collect();
        let mut codes = Vec::with_capacity(n * dim);
        let mut cuts = Vec::with_capacity(dim);
        for (c, t) in per_feature {
            codes.extend(c);
            cuts.push(t);
        }
        Self { codes, cuts, n }
    }

    /// Every sample's bin of feature `f`.
    fn column(&self, f: usize) -> &[u8] {
        &self.codes[f * self.n..][..self.n]
    }
}

/// A threshold between `lo` and `hi` (lo < hi) that sends `lo` left and
/// `hi` right (their mean, unless that rounds to `hi`).
fn halfway(lo: f32, hi: f32) -> f32 {
    let mid = ((f64::from(lo) + f64::from(hi)) / 2.0) as f32;
    if mid < hi { mid } else { lo }
}

/// The best split found at a node.
struct Split {
    feature: usize,
    /// Samples with codes <= `bin` go left.
    bin: u8,
    score: f64,
}

/// The state of growing one tree.
struct Grower<'a> {
    binned: &'a Binned,
    y: &'a [u8],
    k: usize,
    params: &'a ForestParams,
    rng: NormalRng,
    features: Vec<usize>,
    /// Scratch: class counts per bin, and (code, class) pairs.
    histogram: Vec<u32>,
    pairs: Vec<(u8, u8)>,
}

impl Grower<'_> {
    fn grow(mut self, mut samples: Vec<u32>) -> Tree {
        let mut tree = Tree {
            nodes: Vec::new(),
            leaves: Vec::new(),
        };
        // (first sample, end, depth, node to write)
        let mut stack = vec![(0usize, samples.len(), 0usize, 0usize)];
        tree.nodes.push(leaf_placeholder());
        while let Some((a, b, depth, at)) = stack.pop() {
            let node = &samples[a..b];
            let mut counts = vec![0u32; self.k];
            for &s in node {
                counts[usize::from(self.y[s as usize])] += 1;
            }
            let pure = counts.iter().filter(|&&c| c > 0).count() <= 1;
            let deep = self.params.max_depth.is_some_and(|d| depth >= d);
            let small = node.len() < 2 * self.params.min_samples_leaf.max(1);
            let split = if pure || deep || small {
                None
            } else {
                self.best_split(node, &counts)
            };
            let Some(split) = split else {
                let row = (tree.leaves.len() / self.k.max(1)) as u32;
                let total = node.len().max(1) as f32;
                tree.leaves.extend(counts.iter().map(|&c| c as f32 / total));
                tree.nodes[at] = Node {
                    feature: LEAF,
                    threshold: 0.0,
                    next: [row, at as u32],
                };
                continue;
            };
            let codes = self.binned.column(split.feature);
            let mid = a + partition(&mut samples[a..b], |s| codes[s as usize] <= split.bin);
            let (left, right) = (tree.nodes.len(), tree.nodes.len() + 1);
            tree.nodes.push(leaf_placeholder());
            tree.nodes.push(leaf_placeholder());
            tree.nodes[at] = Node {
                feature: split.feature as u32,
                threshold: self.binned.cuts[split.feature][usize::from(split.bin)],
                next: [left as u32, right as u32],
            };
            stack.push((mid, b, depth + 1, right));
            stack.push((a, mid, depth + 1, left));
        }
        tree
    }

    /// The best Gini split of `node` (class counts `counts`) over up to
    /// `mtry` features, drawn without replacement, that are not constant
    /// in the node. None when no feature separates it.
    fn best_split(&mut self, node: &[u32], counts: &[u32]) -> Option<Split> {
        let dim = self.features.len();
        let mut best: Option<Split> = None;
        let mut tried = 0;
        for drawn in 0..dim {
            if tried >= self.params.mtry {
                break;
            }
            let pick = drawn + self.rng.below(dim - drawn);
            self.features.swap(drawn, pick);
            let f = self.features[drawn];
            let codes = self.binned.column(f);
            let found = if node.len() < SORT_BELOW {
                self.split_sorted(node, codes, counts)
            } else {
                self.split_histogram(node, codes, counts)
            };
            let Some((bin, score)) = found else {
                continue; // constant in this node
            };
            tried += 1;
            if let Some(score) = score
                && best.as_ref().is_none_or(|b| score > b.score)
            {
                best = Some(Split {
                    feature: f,
                    bin,
                    score,
                });
            }
        }
        best
    }

    /// Over the boundaries between the bins present in `node`: the one of
    /// the best score (None if no boundary leaves enough samples on both
    /// sides); None when the node's samples share one bin.
    fn split_histogram(
        &mut self,
        node: &[u32],
        codes: &[u8],
        counts: &[u32],
    ) -> Option<(u8, Option<f64>)> {
        let k = self.k;
        self.histogram.clear();
        self.histogram.resize(MAX_BINS * k, 0);
        let (mut lo, mut hi) = (u8::MAX, 0u8);
        for &s in node {
            let c = codes[s as usize];
            lo = lo.min(c);
            hi = hi.max(c);
            self.histogram[usize::from(c) * k + usize::from(self.y[s as usize])] += 1;
        }
        if lo == hi {
            return None;
        }
        let mut left = vec![0u32; k];
        let mut best = Boundary::default();
        for bin in lo..hi {
            let row = &self.histogram[usize::from(bin) * k..][..k];
            if row.iter().all(|&c| c == 0) {
                continue;
            }
            for (l, &c) in left.iter_mut().zip(row) {
                *l += c;
            }
            best.offer(bin, self.score(&left, counts, node.len()));
        }
        Some(best.found(lo))
    }

    /// [`Grower::split_histogram`] by sorting the node's codes (small nodes).
    fn split_sorted(
        &mut self,
        node: &[u32],
        codes: &[u8],
        counts: &[u32],
    ) -> Option<(u8, Option<f64>)> {
        self.pairs.clear();
        self.pairs.extend(
            node.iter()
                .map(|&s| (codes[s as usize], self.y[s as usize])),
        );
        self.pairs.sort_unstable();
        let (first, last) = (self.pairs.first()?.0, self.pairs.last()?.0);
        if first == last {
            return None;
        }
        let mut left = vec![0u32; self.k];
        let mut best = Boundary::default();
        for i in 0..self.pairs.len() - 1 {
            let (code, class) = self.pairs[i];
            left[usize::from(class)] += 1;
            if self.pairs[i + 1].0 != code {
                best.offer(code, self.score(&left, counts, node.len()));
            }
        }
        Some(best.found(first))
    }

    /// The Gini criterion's proxy to maximise (scikit-learn's): the sum of
    /// squared class counts over each side's size; None when a side has
    /// fewer than `min_samples_leaf` samples.
    fn score(&self, left: &[u32], counts: &[u32], n: usize) -> Option<f64> {
        let nl: u32 = left.iter().sum();
        let nr = n as u32 - nl;
        let min = self.params.min_samples_leaf.max(1) as u32;
        if nl < min || nr < min {
            return None;
        }
        let (mut sl, mut sr) = (0f64, 0f64);
        for (&l, &c) in left.iter().zip(counts) {
            sl += f64::from(l) * f64::from(l);
            let r = f64::from(c - l);
            sr += r * r;
        }
        Some(sl / f64::from(nl) + sr / f64::from(nr))
    }
}

/// The best boundary offered so far: the last bin of the left side and
/// its score (the first of equal scores kept).
#[derive(Default)]
struct Boundary(Option<(u8, f64)>);

impl Boundary {
    fn offer(&mut self, bin: u8, score: Option<f64>) {
        if let Some(score) = score
            && self.0.is_none_or(|(_, s)| score > s)
        {
            self.0 = Some((bin, score));
        }
    }

    /// The best bin and its score; `fallback` and None when no boundary
    /// had a score (too few samples on a side everywhere).
    fn found(self, fallback: u8) -> (u8, Option<f64>) {
        match self.0 {
            Some((bin, score)) => (bin, Some(score)),
            None => (fallback, None),
        }
    }
}

fn leaf_placeholder() -> Node {
    Node {
        feature: LEAF,
        threshold: 0.0,
        next: [0, 0],
    }
}

/// Moves the elements for which `left` holds to the front; their count.
fn partition(v: &mut [u32], left: impl Fn(u32) -> bool) -> usize {
    let mut mid = 0;
    for i in 0..v.len() {
        if left(v[i]) {
            v.swap(mid, i);
            mid += 1;
        }
    }
    mid
}

impl Forest {
    /// Grows a forest on `rows` samples of `dim` values each (`x`, row
    /// after row) with classes `y`. Each tree draws from its own generator
    /// (the seed and its index), so the forest is the same whatever the
    /// number of threads.
    pub fn fit(
        x: &[f32],
        y: &[u8],
        dim: usize,
        params: &ForestParams,
    ) -> Result<Self, ForestError> {
        let n = y.len();
        if n == 0 {
            return Err(ForestError::NoSamples);
        }
        if params.trees == 0 {
            return Err(ForestError::NoTrees);
        }
        if x.len() != n * dim {
            return Err(ForestError::Shape {
                values: x.len(),
                rows: n,
                dim,
            });
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(ForestError::NotFinite {
                row: i / dim.max(1),
                column: i % dim.max(1),
            });
        }
        let mut classes = y.to_vec();
        classes.sort_unstable();
        classes.dedup();
        let index: Vec<u8> = y
            .iter()
            .map(|c| classes.partition_point(|k| k < c) as u8)
            .collect();
        let binned = Binned::new(x, n, dim);
        let k = classes.len();
        let trees = (0..params.trees)
            .into_par_iter()
            .map(|t| {
                let mut rng = NormalRng::new(tree_seed(params.seed, t));
                let samples: Vec<u32> = (0..n).map(|_| rng.below(n) as u32).collect();
                Grower {
                    binned: &binned,
                    y: &index,
                    k,
                    params,
                    rng,
                    features: (0..dim).collect(),
                    histogram: Vec::new(),
                    pairs: Vec::new(),
                }
                .grow(samples)
            })
            .collect();
        Ok(Self {
            trees,
            classes,
            dim,
        })
    }

    /// Values per sample.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The class of each row of `x` (`dim` values each).
    pub fn predict(&self, x: &[f32]) -> Vec<u8> {
        let k = self.classes.len();
        let rows = x.len() / self.dim.max(1);
        let mut votes = vec![0f32; rows * k];
        // Passes of rows small enough to stay in cache while every tree
        // walks them; blocks of rows walk a tree together (their loads
        // overlap).
        const PASS: usize = 256;
        for (p, pass_votes) in votes.chunks_mut(PASS * k.max(1)).enumerate() {
            self.vote(x, p * PASS, pass_votes);
        }
        votes
            .chunks(k.max(1))
            .map(|v| {
                let best = v
                    .iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &p)| {
                        if p > bv { (i, p) } else { (bi, bv) }
                    })
                    .0;
                self.classes.get(best).copied().unwrap_or(0)
            })
            .collect()
    }

    /// Adds every tree's leaf class fractions of rows `first..` (as many as
    /// `votes` holds, `k` each) to `votes`.
    fn vote(&self, x: &[f32], first: usize, votes: &mut [f32]) {
        const BLOCK: usize = 8;
        let k = self.classes.len().max(1);
        for tree in &self.trees {
            for (b, block_votes) in votes.chunks_mut(BLOCK * k).enumerate() {
                let r0 = first + b * BLOCK;
                let m = block_votes.len() / k.max(1);
                let mut at = [0usize; BLOCK];
                loop {
                    let mut moving = false;
                    for (i, node_at) in at.iter_mut().enumerate().take(m) {
                        let node = tree.nodes[*node_at];
                        let leaf = node.feature == LEAF;
                        let f = if leaf { 0 } else { node.feature as usize };
                        let v = x[(r0 + i) * self.dim + f];
                        // A leaf's second link is itself.
                        let right = leaf || v > node.threshold;
                        *node_at = node.next[usize::from(right)] as usize;
                        moving |= !leaf;
                    }
                    if !moving {
                        break;
                    }
                }
                for (i, &node_at) in at.iter().enumerate().take(m) {
                    let row = tree.nodes[node_at].next[0] as usize;
                    for (v, &p) in block_votes[i * k..(i + 1) * k]
                        .iter_mut()
                        .zip(&tree.leaves[row * k..(row + 1) * k])
                    {
                        *v += p;
                    }
                }
            }
        }
    }
}

/// The generator seed of tree `t` of a forest seeded `seed`.
fn tree_seed(seed: u64, t: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((t as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(trees: usize) -> ForestParams {
        ForestParams {
            trees,
            max_depth: None,
            min_samples_leaf: 1,
            mtry: 1,
            seed: 3,
        }
    }

    /// Two classes apart along one of three features (the others noise).
    fn two_blobs(n: usize) -> (Vec<f32>, Vec<u8>) {
        let mut rng = NormalRng::new(9);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let class = (i % 2) as u8;
            x.push(rng.normal() as f32);
            x.push(if class == 0 { -3.0 } else { 3.0 } + rng.normal() as f32 * 0.5);
            x.push(rng.uniform() as f32);
            y.push(class + 4);
        }
        (x, y)
    }

    #[test]
    fn a_forest_separates_what_one_feature_separates_and_keeps_the_class_codes() {
        let (x, y) = two_blobs(400);
        let forest = Forest::fit(&x, &y, 3, &params(25)).unwrap();
        let (test_x, test_y) = {
            let (x, y) = two_blobs(1000);
            (x[1200..].to_vec(), y[400..].to_vec())
        };
        let got = forest.predict(&test_x);
        let right = got.iter().zip(&test_y).filter(|(a, b)| a == b).count();
        assert!(
            right as f64 / test_y.len() as f64 > 0.99,
            "{right} of {}",
            test_y.len()
        );
        assert!(got.iter().all(|&c| c == 4 || c == 5));
    }

    #[test]
    fn fully_grown_trees_fit_their_training_samples() {
        // Distinct rows: a tree grown until pure classifies its bootstrap
        // samples exactly, and the forest nearly every training row.
        let mut rng = NormalRng::new(1);
        let x: Vec<f32> = (0..300 * 4).map(|_| rng.normal() as f32).collect();
        let y: Vec<u8> = (0..300).map(|i| (i % 3) as u8 + 1).collect();
        let forest = Forest::fit(
            &x,
            &y,
            4,
            &ForestParams {
                mtry: 2,
                ..params(50)
            },
        )
        .unwrap();
        let got = forest.predict(&x);
        let right = got.iter().zip(&y).filter(|(a, b)| a == b).count();
        assert!(right >= 290, "{right} of 300 training rows");
    }

    #[test]
    fn a_depth_limit_and_a_leaf_size_are_kept() {
        let (x, y) = two_blobs(200);
        let stump = Forest::fit(
            &x,
            &y,
            3,
            &ForestParams {
                max_depth: Some(1),
                ..params(5)
            },
        )
        .unwrap();
        for tree in &stump.trees {
            assert!(tree.nodes.len() <= 3, "{} nodes", tree.nodes.len());
        }
        let coarse = Forest::fit(
            &x,
            &y,
            3,
            &ForestParams {
                min_samples_leaf: 40,
                ..params(5)
            },
        )
        .unwrap();
        for tree in &coarse.trees {
            // Every leaf holds at least 40 of the 200 bootstrap samples.
            let leaves = tree.nodes.iter().filter(|n| n.feature == LEAF).count();
            assert!(leaves <= 5, "{leaves} leaves");
        }
    }

    #[test]
    fn the_forest_is_the_same_on_any_number_of_threads_and_its_thresholds_split_the_values() {
        let (x, y) = two_blobs(300);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| Forest::fit(&x, &y, 3, &params(20)).unwrap());
        let many = Forest::fit(&x, &y, 3, &params(20)).unwrap();
        let probe: Vec<f32> = (0..600).map(|i| i as f32 * 0.02 - 6.0).collect();
        assert_eq!(one.predict(&probe), many.predict(&probe));
        assert_eq!(halfway(1.0, 2.0), 1.5);
        let next = f32::from_bits(1.0f32.to_bits() + 1);
        assert_eq!(halfway(1.0, next), 1.0);
    }

    #[test]
    fn bad_training_data_is_refused_with_what_is_wrong() {
        let p = params(3);
        assert_eq!(
            Forest::fit(&[], &[], 2, &p).unwrap_err(),
            ForestError::NoSamples
        );
        assert_eq!(
            Forest::fit(&[1.0, 2.0, 3.0], &[1, 2], 2, &p).unwrap_err(),
            ForestError::Shape {
                values: 3,
                rows: 2,
                dim: 2
            }
        );
        assert_eq!(
            Forest::fit(&[1.0, f32::NAN, 3.0, 4.0], &[1, 2], 2, &p).unwrap_err(),
            ForestError::NotFinite { row: 0, column: 1 }
        );
        assert_eq!(
            Forest::fit(&[1.0, 2.0], &[1], 2, &params(0)).unwrap_err(),
            ForestError::NoTrees
        );
        // One class: every tree is a leaf of it.
        let single = Forest::fit(&[1.0, 2.0, 3.0, 4.0], &[7, 7], 2, &p).unwrap();
        assert_eq!(single.predict(&[0.0, 9.0]), vec![7]);
    }
}
