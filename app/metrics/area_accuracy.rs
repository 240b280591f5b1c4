//! Area-adjusted accuracy and class areas with confidence intervals from a
//! stratified reference sample, the map classes as strata (Olofsson et al.
//! 2014, Remote Sensing of Environment 148: 42-57, equations 2-10): the
//! estimated error matrix in area proportions, overall, user's and
//! producer's accuracy, and each class's area, each with its standard error
//! and 95 % interval.
//!
//! The intervals stay inside what is possible: each proportion's interval
//! is the Wilson score interval at the effective sample size
//! n* = p (1 - p) / SE², SE from Olofsson's stratified variance (Korn and
//! Graubard 1998; Dean and Pagano 2015 for its coverage), so it lies in
//! [0, 1] and each area's in [0, total]; where no bound is near it is close
//! to value ± 1.96 SE. Where SE is 0 (every point of the strata agrees) n*
//! is the number of points the estimate rests on, so a sample of 6 correct
//! points says "1.00 (0.61-1.00)", not "1.00 (1.00-1.00)". How many points a
//! given precision needs is said as a note (Olofsson 2014 eq. 13).
//!
//! Explicit about what the estimator cannot do: sample points on unmapped
//! pixels (map 0) or without a reference class (0) are left out and counted;
//! a stratum without sample points is left out of every estimate (which then
//! cover the rest of the map, said so); a stratum with one point has no
//! variance (SE None, said so) — never NaN.

use serde::{Deserialize, Serialize};

/// The 95 % normal quantile.
const Z95: f64 = 1.96;

/// How the intervals are made, as `stats`, the app and `accuracy.json` say.
pub const INTERVAL_METHOD: &str = "95 % Wilson score intervals at the effective sample size p(1-p)/SE^2 (SE: Olofsson et al. 2014's stratified variance; Korn & Graubard 1998), within [0, 1] for proportions and [0, total] for areas; where SE is 0, at the points the estimate rests on";

/// Precision targets of the sample-size notes: an SE of 0.01 for overall
/// accuracy (Olofsson 2014 eq. 13) and of 0.05 for each user's accuracy.
pub const TARGET_SE_OVERALL: f64 = 0.01;
pub const TARGET_SE_USERS: f64 = 0.05;

/// The conjectured user's accuracy of a stratum for sample-size planning:
/// the observed one, no closer to 0 or 1 than 0.05 (a stratum whose points
/// all agree says little of its own spread).
fn conjectured(users: f64) -> f64 {
    users.clamp(0.05, 0.95)
}

/// Points needed for an overall accuracy SE of `target`, Olofsson 2014
/// eq. 13: n = (sum_i W_i S_i / target)², S_i = sqrt(U_i (1 - U_i)), with the
/// strata's weights and conjectured user's accuracies.
pub fn points_needed_for_overall_se(weights: &[f64], users: &[f64], target: f64) -> usize {
    let spread: f64 = weights
        .iter()
        .zip(users)
        .map(|(w, &u)| {
            let u = conjectured(u);
            w * (u * (1.0 - u)).sqrt()
        })
        .sum();
    (spread / target).powi(2).ceil() as usize
}

/// Points a stratum needs for a user's accuracy SE of `target` (eq. 6
/// solved for n): U (1 - U) / target² + 1, U conjectured.
pub fn points_needed_for_users_se(users: f64, target: f64) -> usize {
    let u = conjectured(users);
    (u * (1.0 - u) / (target * target) + 1.0).ceil() as usize
}

/// The Wilson score interval of proportion `p` at sample size `n`, z = 1.96.
pub fn wilson_interval(p: f64, n: f64) -> [f64; 2] {
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).max(0.0).sqrt();
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

/// An estimate with its standard error and 95 % interval, where defined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub se: Option<f64>,
    /// Within [0, 1] for proportions (see [`INTERVAL_METHOD`]).
    pub ci95: Option<[f64; 2]>,
}

impl Estimate {
    /// A proportion with its variance and the number of sample points it
    /// rests on (the sample size where the variance is 0).
    fn proportion(value: f64, variance: Option<f64>, points: usize) -> Self {
        let value = value.clamp(0.0, 1.0);
        let se = variance.map(|v| v.max(0.0).sqrt());
        let ci95 = se.and_then(|s| {
            let spread = value * (1.0 - value);
            let n = if s > 0.0 && spread > 0.0 {
                spread / (s * s)
            } else {
                points as f64
            };
            (n > 0.0).then(|| wilson_interval(value, n))
        });
        Self { value, se, ci95 }
    }

    /// A proportion's estimate, SE and interval times `total` (an area from
    /// an area proportion: its interval within [0, total]).
    fn times(&self, total: f64) -> Self {
        Self {
            value: self.value * total,
            se: self.se.map(|s| s * total),
            ci95: self.ci95.map(|[lo, hi]| [lo * total, hi * total]),
        }
    }
}

/// The estimates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AreaAccuracy {
    /// Class values, the order of every per-class list and of the matrix.
    pub classes: Vec<u8>,
    /// The map's area (units of the strata areas given).
    pub total_area: f64,
    /// Sample points used.
    pub sample_size: usize,
    /// Points per stratum (map class), in `classes` order.
    pub stratum_points: Vec<usize>,
    /// p_ij: rows map class i, columns reference class j, area proportions.
    pub error_matrix: Vec<Vec<f64>>,
    pub overall: Estimate,
    /// User's accuracy of each map class (None: no points in its stratum).
    pub users: Vec<Option<Estimate>>,
    /// Producer's accuracy of each reference class (None: not estimable,
    /// the class has no estimated area).
    pub producers: Vec<Option<Estimate>>,
    /// Each class's estimated share of the map's area, 0..1.
    pub area_proportion: Vec<Estimate>,
    /// Each class's estimated area (units of the strata areas).
    pub area: Vec<Estimate>,
    /// How the intervals are made ([`INTERVAL_METHOD`]).
    #[serde(default)]
    pub interval_method: String,
    /// Points needed for an overall accuracy SE of 0.01 (eq. 13).
    #[serde(default)]
    pub points_needed_overall: usize,
    /// What was left out, why some SEs are missing, and where the sample is
    /// smaller than a usual precision needs.
    pub notes: Vec<String>,
}

/// What the sample holds that the estimator leaves out, in words: points
/// on unmapped pixels, without a reference class, or in map classes
/// without mapped area (`strata`: the mapped classes).
fn left_out_notes(strata: &[(u8, f64)], sample: &[(u8, u8)]) -> Vec<String> {
    let mut notes = Vec::new();
    let unmapped = sample.iter().filter(|(m, _)| *m == 0).count();
    let unlabelled = sample.iter().filter(|(m, r)| *m != 0 && *r == 0).count();
    if unmapped > 0 {
        notes.push(format!(
            "{unmapped} sample points on unmapped pixels (class 0) are left out"
        ));
    }
    if unlabelled > 0 {
        notes.push(format!(
            "{unlabelled} sample points without a reference class (0) are left out"
        ));
    }
    let not_stratum: Vec<u8> = sample
        .iter()
        .filter(|(m, r)| *m != 0 && *r != 0 && !strata.iter().any(|(v, _)| v == m))
        .map(|(m, _)| *m)
        .collect();
    if !not_stratum.is_empty() {
        notes.push(format!(
            "{} sample points fall in map classes without mapped area ({:?}) and are left out",
            not_stratum.len(),
            dedup(not_stratum)
        ));
    }
    notes
}

/// The stratified estimates from the mapped area of each map class
/// (`strata`: value, area; value 0 is ignored) and the sample's (map class,
/// reference class) pairs.
pub fn area_adjusted_accuracy(strata: &[(u8, f64)], sample: &[(u8, u8)]) -> AreaAccuracy {
    let strata: Vec<(u8, f64)> = strata
        .iter()
        .copied()
        .filter(|&(v, a)| v != 0 && a > 0.0)
        .collect();
    let mut notes = left_out_notes(&strata, sample);
    let used: Vec<(u8, u8)> = sample
        .iter()
        .copied()
        .filter(|(m, r)| *r != 0 && strata.iter().any(|(v, _)| v == m))
        .collect();
    let mut classes: Vec<u8> = strata.iter().map(|(v, _)| *v).collect();
    let reference_only: Vec<u8> = used
        .iter()
        .map(|(_, r)| *r)
        .filter(|r| !classes.contains(r))
        .collect();
    if !reference_only.is_empty() {
        notes.push(format!(
            "reference classes the map does not have: {:?} (their user's accuracy is not defined)",
            dedup(reference_only.clone())
        ));
    }
    classes.extend(reference_only);
    let mut classes = dedup(classes);
    classes.sort_unstable();
    let k = classes.len();
    let index = |v: u8| classes.iter().position(|&c| c == v).unwrap_or(0);
    let total_area: f64 = strata.iter().map(|(_, a)| a).sum();
    // Mapped area N_i. and weight W_i of each class as a stratum.
    let mut mapped = vec![0.0; k];
    for &(v, a) in &strata {
        mapped[index(v)] += a;
    }
    let weight: Vec<f64> = mapped
        .iter()
        .map(|a| {
            if total_area > 0.0 {
                a / total_area
            } else {
                0.0
            }
        })
        .collect();
    let mut n = vec![vec![0usize; k]; k];
    for &(m, r) in &used {
        n[index(m)][index(r)] += 1;
    }
    let n_row: Vec<usize> = n.iter().map(|row| row.iter().sum()).collect();
    let empty: Vec<u8> = (0..k)
        .filter(|&i| mapped[i] > 0.0 && n_row[i] == 0)
        .map(|i| classes[i])
        .collect();
    if !empty.is_empty() {
        let share: f64 = (0..k)
            .filter(|&i| mapped[i] > 0.0 && n_row[i] == 0)
            .map(|i| weight[i])
            .sum();
        notes.push(format!(
            "strata without sample points: {empty:?} ({:.2} % of the map) are left out of every estimate, which cover the other {:.2} %",
            100.0 * share,
            100.0 * (1.0 - share)
        ));
    }
    let single: Vec<u8> = (0..k)
        .filter(|&i| mapped[i] > 0.0 && n_row[i] == 1)
        .map(|i| classes[i])
        .collect();
    if !single.is_empty() {
        notes.push(format!(
            "strata with one sample point: {single:?}; the standard errors that depend on them are not defined (at least 2 points per stratum are needed)"
        ));
    }
    // r_ij = n_ij / n_i. and p_ij = W_i r_ij (eq. 4).
    let r = |i: usize, j: usize| {
        if n_row[i] == 0 {
            0.0
        } else {
            n[i][j] as f64 / n_row[i] as f64
        }
    };
    let error_matrix: Vec<Vec<f64>> = (0..k)
        .map(|i| (0..k).map(|j| weight[i] * r(i, j)).collect())
        .collect();
    // A stratum's variance term r(1 - r) / (n - 1); None for n = 1.
    let term = |i: usize, rate: f64| -> Option<f64> {
        match n_row[i] {
            0 => Some(0.0),
            1 => None,
            n => Some(rate * (1.0 - rate) / (n - 1) as f64),
        }
    };
    let sum_opt = |parts: Vec<Option<f64>>| parts.into_iter().sum::<Option<f64>>();
    let users_rate: Vec<f64> = (0..k).map(|i| r(i, i)).collect();
    // Overall accuracy (eq. 1) and its variance (eq. 5).
    let overall_value: f64 = (0..k).map(|j| error_matrix[j][j]).sum();
    let overall_var = sum_opt(
        (0..k)
            .map(|i| term(i, users_rate[i]).map(|t| weight[i] * weight[i] * t))
            .collect(),
    );
    let overall = Estimate::proportion(overall_value, overall_var, used.len());
    // User's accuracy (eq. 2, variance eq. 6).
    let users: Vec<Option<Estimate>> = (0..k)
        .map(|i| {
            (n_row[i] > 0)
                .then(|| Estimate::proportion(users_rate[i], term(i, users_rate[i]), n_row[i]))
        })
        .collect();
    // Area proportions (eq. 9, SE eq. 10) and areas.
    let area_proportion: Vec<Estimate> = (0..k)
        .map(|j| {
            let value: f64 = (0..k).map(|i| error_matrix[i][j]).sum();
            let var = sum_opt(
                (0..k)
                    .map(|i| term(i, r(i, j)).map(|t| weight[i] * weight[i] * t))
                    .collect(),
            );
            Estimate::proportion(value, var, used.len())
        })
        .collect();
    let area: Vec<Estimate> = area_proportion
        .iter()
        .map(|p| p.times(total_area))
        .collect();
    // Producer's accuracy (eq. 3, variance eq. 7) with N_i. the mapped
    // areas and N_.j = sum_i N_i. r_ij the estimated reference areas.
    let producers: Vec<Option<Estimate>> = (0..k)
        .map(|j| {
            let reference_total: f64 = (0..k).map(|i| mapped[i] * r(i, j)).sum();
            if reference_total <= 0.0 {
                return None;
            }
            let value = mapped[j] * r(j, j) / reference_total;
            let own = term(j, users_rate[j])
                .map(|t| mapped[j] * mapped[j] * (1.0 - value) * (1.0 - value) * t);
            let others = sum_opt(
                (0..k)
                    .filter(|&i| i != j)
                    .map(|i| term(i, r(i, j)).map(|t| mapped[i] * mapped[i] * t))
                    .collect(),
            );
            let var = own
                .zip(others)
                .map(|(a, b)| (a + value * value * b) / (reference_total * reference_total));
            Some(Estimate::proportion(value, var, used.len()))
        })
        .collect();
    let points_needed_overall =
        points_needed_for_overall_se(&weight, &users_rate, TARGET_SE_OVERALL);
    notes.extend(sample_size_notes(
        &classes,
        &mapped,
        &n_row,
        &users_rate,
        points_needed_overall,
    ));
    AreaAccuracy {
        classes,
        total_area,
        sample_size: used.len(),
        stratum_points: n_row,
        error_matrix,
        overall,
        users,
        producers,
        area_proportion,
        area,
        interval_method: INTERVAL_METHOD.into(),
        points_needed_overall,
        notes,
    }
}

/// Where the sample is smaller than the usual precisions need: the whole
/// sample for an overall SE of 0.01 (eq. 13), each sampled stratum for a
/// user's SE of 0.05.
fn sample_size_notes(
    classes: &[u8],
    mapped: &[f64],
    n_row: &[usize],
    users_rate: &[f64],
    needed_overall: usize,
) -> Vec<String> {
    let used: usize = n_row.iter().sum();
    let mut notes = Vec::new();
    if used < needed_overall {
        notes.push(format!(
            "an overall accuracy SE of {TARGET_SE_OVERALL} needs about {needed_overall} points (Olofsson 2014 eq. 13, these strata and user's accuracies); this sample has {used}"
        ));
    }
    let short: Vec<String> = (0..classes.len())
        .filter(|&i| mapped[i] > 0.0 && n_row[i] > 0)
        .filter_map(|i| {
            let need = points_needed_for_users_se(users_rate[i], TARGET_SE_USERS);
            (n_row[i] < need).then(|| format!("{} ({} of {need})", classes[i], n_row[i]))
        })
        .collect();
    if !short.is_empty() {
        notes.push(format!(
            "strata with fewer points than a user's accuracy SE of {TARGET_SE_USERS} needs: {}",
            short.join(", ")
        ));
    }
    notes
}

fn dedup(mut v: Vec<u8>) -> Vec<u8> {
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parity with the equations written out in numpy
    /// (`scripts/area_accuracy_reference.py`), to 1e-12 relative: values,
    /// standard errors and the Wilson intervals.
    #[test]
    fn equal_to_the_numpy_reference() {
        let fixture: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/area_accuracy/reference.json"
        ))
        .unwrap();
        let close = |got: f64, want: &serde_json::Value, what: &str| {
            let want = want.as_f64().unwrap();
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{what}: {got} vs {want}"
            );
        };
        let pair = |e: &Estimate, want: &serde_json::Value, what: &str| {
            close(e.value, &want[0], what);
            close(e.se.unwrap(), &want[1], what);
            let [lo, hi] = e.ci95.unwrap();
            close(lo, &want[2][0], &format!("{what} interval"));
            close(hi, &want[2][1], &format!("{what} interval"));
        };
        for case in fixture["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let strata: Vec<(u8, f64)> = case["strata"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (s[0].as_u64().unwrap() as u8, s[1].as_f64().unwrap()))
                .collect();
            let sample: Vec<(u8, u8)> = case["sample"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (s[0].as_u64().unwrap() as u8, s[1].as_u64().unwrap() as u8))
                .collect();
            let want = &case["expected"];
            let a = area_adjusted_accuracy(&strata, &sample);
            let classes: Vec<u8> = want["classes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_u64().unwrap() as u8)
                .collect();
            assert_eq!(a.classes, classes, "{name}");
            close(a.total_area, &want["total_area"], name);
            for (i, row) in a.error_matrix.iter().enumerate() {
                for (j, &p) in row.iter().enumerate() {
                    close(
                        p,
                        &want["error_matrix"][i][j],
                        &format!("{name} p[{i}][{j}]"),
                    );
                }
            }
            pair(&a.overall, &want["overall"], &format!("{name} overall"));
            for j in 0..classes.len() {
                if let Some(u) = &a.users[j] {
                    pair(u, &want["users"][j], &format!("{name} user's {j}"));
                }
                pair(
                    a.producers[j].as_ref().unwrap(),
                    &want["producers"][j],
                    &format!("{name} producer's {j}"),
                );
                pair(
                    &a.area_proportion[j],
                    &want["area_proportion"][j],
                    &format!("{name} p.{j}"),
                );
                pair(&a.area[j], &want["area"][j], &format!("{name} area {j}"));
            }
        }
    }

    /// The case: on a handful of points the normal interval leaves
    /// [0, 1] (0.93 ± 0.065 here is fine, a user's 0.67 ± 0.65 is not);
    /// every interval stays within bounds, areas within [0, total], and an
    /// all-correct stratum still gets a width.
    #[test]
    fn intervals_on_tiny_samples_stay_within_what_is_possible() {
        let strata = [(1, 900.0), (2, 60.0), (3, 40.0)];
        let sample = [
            (1, 1),
            (1, 1),
            (1, 1),
            (2, 2),
            (2, 2),
            (2, 1),
            (3, 3),
            (3, 2),
        ];
        let a = area_adjusted_accuracy(&strata, &sample);
        let normal_hi =
            a.users[1].as_ref().unwrap().value + 1.96 * a.users[1].as_ref().unwrap().se.unwrap();
        assert!(
            normal_hi > 1.0,
            "the case must be one where the normal interval leaves [0, 1]"
        );
        let within = |e: &Estimate, top: f64| {
            let [lo, hi] = e.ci95.unwrap();
            assert!(
                0.0 <= lo && lo <= e.value && e.value <= hi && hi <= top,
                "{e:?}"
            );
        };
        within(&a.overall, 1.0);
        for e in a.users.iter().chain(&a.producers).flatten() {
            within(e, 1.0);
        }
        for (p, area) in a.area_proportion.iter().zip(&a.area) {
            within(p, 1.0);
            within(area, a.total_area);
        }
        // Stratum 1: three correct points, SE 0, interval at n = 3.
        let [lo, hi] = a.users[0].as_ref().unwrap().ci95.unwrap();
        assert_eq!(hi, 1.0);
        assert!(
            (lo - wilson_interval(1.0, 3.0)[0]).abs() < 1e-15 && lo < 0.6,
            "{lo}"
        );
        assert!(a.interval_method.contains("Wilson"));
        let notes = a.notes.join("\n");
        assert!(
            notes.contains(&format!("needs about {} points", a.points_needed_overall)),
            "{notes}"
        );
        assert!(
            notes.contains("fewer points than a user's accuracy SE of 0.05"),
            "{notes}"
        );
    }

    /// Far from the bounds the interval is the normal one to within a few
    /// thousandths; eq. 13 gives Olofsson's worked example's size.
    #[test]
    fn wilson_is_close_to_normal_far_from_bounds_and_eq13_matches_the_paper() {
        let [lo, hi] = wilson_interval(0.5, 400.0);
        let se = (0.25f64 / 400.0).sqrt();
        assert!((lo - (0.5 - 1.96 * se)).abs() < 1e-3 && (hi - (0.5 + 1.96 * se)).abs() < 1e-3);
        // Olofsson 2014 section 5.1.1: W = (0.02, 0.015, 0.32, 0.645),
        // U = (0.7, 0.6, 0.9, 0.95), SE(O) = 0.01: n = 641.
        let n =
            points_needed_for_overall_se(&[0.02, 0.015, 0.32, 0.645], &[0.7, 0.6, 0.9, 0.95], 0.01);
        assert!((640..=642).contains(&n), "{n}");
        assert_eq!(points_needed_for_users_se(0.5, 0.05), 101);
    }

    #[test]
    fn empty_and_single_point_strata_are_said_and_never_nan() {
        let strata = [(1, 100.0), (2, 50.0), (3, 10.0)];
        let sample = [(1, 1), (1, 2), (1, 1), (2, 2), (0, 1), (1, 0)];
        let a = area_adjusted_accuracy(&strata, &sample);
        assert_eq!(a.sample_size, 4);
        assert_eq!(a.stratum_points, vec![3, 1, 0]);
        let text = a.notes.join("\n");
        assert!(
            text.contains("unmapped") && text.contains("without a reference"),
            "{text}"
        );
        assert!(
            text.contains("without sample points: [3]") && text.contains("one sample point: [2]"),
            "{text}"
        );
        assert!(a.users[2].is_none());
        assert_eq!(a.users[1].as_ref().unwrap().se, None);
        assert_eq!(a.overall.se, None);
        let json = serde_json::to_string(&a).unwrap();
        assert!(
            !json.contains("NaN") && !json.contains("null,null"),
            "{json}"
        );
    }
}
