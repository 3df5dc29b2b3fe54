//! Batch plans: which sample indices make up each batch of a pass. Seeded by the run's seed
//! and the epoch, so a resumed run sees the same order as an uninterrupted one.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seed for `epoch` of a run seeded with `seed` (also used for augmentation and dropout).
pub fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(epoch as u64)
        .rotate_left(17)
}

/// All samples in order, `batch_size` at a time (evaluation and embedding).
pub fn fixed_plan(samples: usize, batch_size: usize) -> Vec<Vec<usize>> {
    let indices: Vec<usize> = (0..samples).collect();
    indices
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// A training pass: a seeded permutation (or, when `balanced`, as many draws with
/// replacement where every class is equally likely), cut into batches. A last batch of a
/// single sample is dropped (batch norm cannot train on it).
pub fn train_plan(labels: &[i64], batch_size: usize, seed: u64, balanced: bool) -> Vec<Vec<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let order: Vec<usize> = if balanced {
        balanced_draws(labels, &mut rng)
    } else {
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.shuffle(&mut rng);
        order
    };
    let mut plan: Vec<Vec<usize>> = order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect();
    if plan.len() > 1 && plan.last().is_some_and(|b| b.len() < 2) {
        plan.pop();
    }
    plan
}

fn balanced_draws(labels: &[i64], rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut by_class: std::collections::BTreeMap<i64, Vec<usize>> = Default::default();
    for (i, &label) in labels.iter().enumerate() {
        by_class.entry(label).or_default().push(i);
    }
    let classes: Vec<&Vec<usize>> = by_class.values().collect();
    if classes.is_empty() {
        return Vec::new();
    }
    (0..labels.len())
        .map(|_| {
            let members = classes[rng.gen_range(0..classes.len())];
            members[rng.gen_range(0..members.len())]
        })
        .collect()
}

/// Loss weights by inverse class frequency, scaled to a mean of 1 over the classes present;
/// absent classes get weight 0.
pub fn inverse_frequency_weights(labels: &[i64], classes: usize) -> Vec<f32> {
    let mut counts = vec![0usize; classes];
    for &label in labels {
        if let Some(c) = usize::try_from(label).ok().and_then(|l| counts.get_mut(l)) {
            *c += 1;
        }
    }
    let present = counts.iter().filter(|&&c| c > 0).count().max(1);
    let total: usize = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                (total as f64 / (present as f64 * c as f64)) as f32
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn train_plans_are_seeded_permutations_without_singleton_batches() {
        let labels = vec![0i64; 9];
        let a = train_plan(&labels, 4, 1, false);
        assert_eq!(a, train_plan(&labels, 4, 1, false));
        assert_ne!(a, train_plan(&labels, 4, 2, false));
        assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4]);
        let mut all: Vec<usize> = train_plan(&labels, 3, 1, false).concat();
        all.sort();
        assert_eq!(all, (0..9).collect::<Vec<_>>());
        assert_eq!(fixed_plan(5, 2), vec![vec![0, 1], vec![2, 3], vec![4]]);
    }

    #[test]
    fn balanced_sampler_and_class_weights_even_out_a_skewed_set() {
        let labels: Vec<i64> = (0..1000).map(|i| i64::from(i % 10 == 0)).collect();
        let drawn = train_plan(&labels, 50, 3, true).concat();
        let minority = drawn.iter().filter(|&&i| labels[i] == 1).count() as f64;
        assert!(
            (minority / drawn.len() as f64 - 0.5).abs() < 0.06,
            "{minority}"
        );
        let w = inverse_frequency_weights(&labels, 3);
        assert!((w[0] - 1000.0 / (2.0 * 900.0)).abs() < 1e-5);
        assert!((w[1] - 5.0).abs() < 1e-5);
        assert_eq!(w[2], 0.0);
    }
}
