//! Area-adjusted accuracy and class areas with confidence intervals from a
//! stratified reference sample, the map classes as strata (Olofsson et al.
//! 2014, Remote Sensing of Environment 148: 42-57, equations 2-10): the
//! estimated error matrix in area proportions, overall, user's and
//! producer's accuracy, and each class's area, each with its standard error
//! and 95 % interval (± 1.96 SE).
//!
//! Explicit about what the estimator cannot do: sample points on unmapped
//! pixels (map 0) or without a reference class (0) are left out and counted;
//! a stratum without sample points is left out of every estimate (which then
//! cover the rest of the map, said so); a stratum with one point has no
//! variance (SE None, said so) — never NaN.

use serde::Serialize;

/// An estimate with its standard error and 95 % interval, where defined.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub se: Option<f64>,
    /// value ± 1.96 SE.
    pub ci95: Option<[f64; 2]>,
}

impl Estimate {
    fn new(value: f64, variance: Option<f64>) -> Self {
        let se = variance.map(|v| v.max(0.0).sqrt());
        Self {
            value,
            se,
            ci95: se.map(|s| [value - 1.96 * s, value + 1.96 * s]),
        }
    }
}

/// The estimates.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// What was left out and why some SEs are missing.
    pub notes: Vec<String>,
}

/// The stratified estimates from the mapped area of each map class
/// (`strata`: value, area; value 0 is ignored) and the sample's (map class,
/// reference class) pairs.
pub fn area_adjusted_accuracy(strata: &[(u8, f64)], sample: &[(u8, u8)]) -> AreaAccuracy {
    let mut notes = Vec::new();
    let strata: Vec<(u8, f64)> = strata
        .iter()
        .copied()
        .filter(|&(v, a)| v != 0 && a > 0.0)
        .collect();
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
    let overall = Estimate::new(overall_value, overall_var);
    // User's accuracy (eq. 2, variance eq. 6).
    let users: Vec<Option<Estimate>> = (0..k)
        .map(|i| (n_row[i] > 0).then(|| Estimate::new(users_rate[i], term(i, users_rate[i]))))
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
            Estimate::new(value, var)
        })
        .collect();
    let area: Vec<Estimate> = area_proportion
        .iter()
        .map(|p| Estimate {
            value: p.value * total_area,
            se: p.se.map(|s| s * total_area),
            ci95: p.ci95.map(|[lo, hi]| [lo * total_area, hi * total_area]),
        })
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
            Some(Estimate::new(value, var))
        })
        .collect();
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
        notes,
    }
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
    /// (`scripts/area_accuracy_reference.py`), to 1e-12 relative.
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
