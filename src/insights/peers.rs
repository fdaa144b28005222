//! A VM against its peers (the other VMs of its host), one signal at a time: augurs' DBSCAN
//! outlier detector (Grafana's) finds the majority cluster of the VMs' smoothed levels; a VM
//! outside it departs from its peers. Reported apart from the score against its own past.

use augurs_outlier::{DbscanData, DbscanDetector, OutlierDetector};

/// Two levels are neighbours within this share of the spread of all levels...
const SPAN_SHARE: f64 = 0.1;
/// ...or within this many of the signal's floors, whichever is wider: VMs a few percent apart
/// are alike however tight the rest are.
const FLOORS: f64 = 5.0;

/// Of `levels` (one per VM, None when the VM lacks the signal now), which depart from the
/// majority of their peers. All false below `min_vms` levels, and when no majority agrees.
pub fn outliers(levels: &[Option<f64>], floor: f64, min_vms: usize) -> Vec<bool> {
    let mut outlying = vec![false; levels.len()];
    let present: Vec<(usize, f64)> = levels
        .iter()
        .enumerate()
        .filter_map(|(i, level)| level.filter(|v| v.is_finite()).map(|v| (i, v)))
        .collect();
    if present.len() < min_vms.max(3) {
        return outlying;
    }
    let values: Vec<f64> = present.iter().map(|(_, v)| *v).collect();
    let (low, high) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    let epsilon = (SPAN_SHARE * (high - low)).max(FLOORS * floor);
    // One timestamp (a column) of one value per VM.
    let Ok(data) = DbscanData::try_from_column_major(&[&values[..]]) else {
        return outlying;
    };
    let Ok(output) = DbscanDetector::with_epsilon(epsilon).detect(&data) else {
        return outlying;
    };
    // No majority cluster: the peers disagree among themselves, and none is singled out.
    if output.outlying_series.len() * 2 >= present.len() {
        return outlying;
    }
    for series in output.outlying_series {
        outlying[present[series].0] = true;
    }
    outlying
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_vm_of_twenty_departing_from_the_others_is_named() {
        let mut levels: Vec<Option<f64>> = (0..20).map(|i| Some(10.0 + (i % 5) as f64)).collect();
        levels[7] = Some(85.0);
        levels[3] = None;
        let outlying = outliers(&levels, 2.0, 5);
        let named: Vec<usize> = (0..20).filter(|i| outlying[*i]).collect();
        assert_eq!(named, [7]);
    }

    #[test]
    fn alike_peers_or_too_few_or_a_split_fleet_name_none() {
        let alike: Vec<Option<f64>> = (0..20).map(|i| Some(50.0 + (i % 3) as f64)).collect();
        assert!(outliers(&alike, 2.0, 5).iter().all(|o| !o));
        let few = [Some(1.0), Some(1.0), Some(99.0)];
        assert!(outliers(&few, 2.0, 5).iter().all(|o| !o));
        let split: Vec<Option<f64>> = (0..10)
            .map(|i| Some(if i < 5 { 0.0 } else { 90.0 }))
            .collect();
        assert!(outliers(&split, 2.0, 5).iter().all(|o| !o));
        let identical = vec![Some(0.0); 12];
        assert!(outliers(&identical, 2.0, 5).iter().all(|o| !o));
        let weird = [
            Some(f64::NAN),
            Some(f64::INFINITY),
            None,
            Some(1.0),
            Some(1e308),
        ];
        assert!(outliers(&weird, 2.0, 3).iter().all(|o| !o));
    }
}
