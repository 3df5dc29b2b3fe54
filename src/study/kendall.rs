//! Kendall's tau-b between two scorings of the same items (ties counted as in scipy's
//! `kendalltau`): how well the before-training ranking foretold the final one.

/// Tau-b of `a` and `b` (the same items' scores); `None` with fewer than two items or when
/// either scoring is constant.
pub fn kendall_tau(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len().min(b.len());
    let (mut concordant, mut discordant, mut ties_a, mut ties_b) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            let da = (a[i] - a[j]).signum() * f64::from(u8::from(a[i] != a[j]));
            let db = (b[i] - b[j]).signum() * f64::from(u8::from(b[i] != b[j]));
            match (da == 0.0, db == 0.0) {
                (true, true) => {}
                (true, false) => ties_a += 1,
                (false, true) => ties_b += 1,
                (false, false) if da == db => concordant += 1,
                (false, false) => discordant += 1,
            }
        }
    }
    let pairs_a = (concordant + discordant + ties_a) as f64;
    let pairs_b = (concordant + discordant + ties_b) as f64;
    let denominator = (pairs_a * pairs_b).sqrt();
    (denominator > 0.0).then(|| (concordant - discordant) as f64 / denominator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tau_is_one_for_the_same_order_minus_one_reversed_and_handles_ties() {
        assert_eq!(
            kendall_tau(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]),
            Some(1.0)
        );
        assert_eq!(kendall_tau(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        assert_eq!(kendall_tau(&[1.0, 1.0], &[1.0, 2.0]), None);
        // scipy.stats.kendalltau([1, 2, 2, 3], [1, 3, 2, 4]).statistic
        let tau = kendall_tau(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]).unwrap();
        assert!((tau - 0.912_870_929_175_276_8).abs() < 1e-12, "{tau}");
    }
}
