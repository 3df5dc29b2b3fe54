//! Train/validation/test assignment: stratified by class, grouped (a group, e.g. a patient,
//! never spans two splits), seeded, honouring splits fixed by a manifest; optional k-fold;
//! a leakage audit; and the frozen split stored as `split.ron` in the project folder.
//!
//! Everything here is plain data: no tensors, no threads.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// File name of the frozen split inside the project folder.
pub const SPLIT_FILE: &str = "split.ron";
/// Version written into `split.ron`; older or newer files are refused with a clear message.
pub const SPLIT_FILE_VERSION: u32 = 1;

/// Failures computing, saving or loading a split; file errors name the file last.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("invalid split fractions: {0}")]
    Fractions(String),
    #[error("cannot make {folds} folds from {items} items")]
    Folds { folds: usize, items: usize },
    #[error("could not {action} the split file ({source}): {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not encode the split ({reason}): {}", path.display())]
    Encode { path: PathBuf, reason: String },
    #[error("could not parse the split file ({reason}): {}", path.display())]
    Parse { path: PathBuf, reason: String },
    #[error("split file version {found} is not supported (expected {SPLIT_FILE_VERSION}): {}", path.display())]
    Version { path: PathBuf, found: u32 },
}

/// One of the three splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    /// The three splits in their canonical order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    fn index(self) -> usize {
        match self {
            Split::Train => 0,
            Split::Val => 1,
            Split::Test => 2,
        }
    }
}

/// One labelled item as the split logic sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SplitItem {
    /// Path relative to the data root; the key of the frozen assignment.
    pub rel_path: String,
    /// Class index.
    pub label: usize,
    /// Group id (e.g. patient); items of one group always share a split.
    pub group: Option<String>,
    /// Split fixed by the manifest, honoured as given.
    pub fixed: Option<Split>,
    /// Content hash (e.g. blake3 hex) used by the leakage audit, when known.
    pub content_hash: Option<String>,
}

/// Fractions of the items going to train, validation and test (summing to 1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitFractions {
    pub train: f64,
    pub val: f64,
    pub test: f64,
}

impl Default for SplitFractions {
    fn default() -> Self {
        Self {
            train: 0.7,
            val: 0.15,
            test: 0.15,
        }
    }
}

impl SplitFractions {
    fn validated(&self) -> Result<[f64; 3], SplitError> {
        let values = [self.train, self.val, self.test];
        if values.iter().any(|f| !f.is_finite() || *f < 0.0) {
            return Err(SplitError::Fractions(format!(
                "each must be a number >= 0, got {values:?}"
            )));
        }
        let sum: f64 = values.iter().sum();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(SplitError::Fractions(format!("they sum to {sum}, not 1")));
        }
        Ok(values)
    }
}

/// Assigns each item to a split: grouped, stratified by class, seeded, fixed splits honoured.
///
/// Each class's per-split target is `fraction * class count`, rounded so the counts add up;
/// when no groups constrain it, every class lands within one item of its target. The result
/// is parallel to `items`.
pub fn assign_splits(
    items: &[SplitItem],
    fractions: SplitFractions,
    seed: u64,
) -> Result<Vec<Split>, SplitError> {
    let fractions = fractions.validated()?;
    let fixed: Vec<Option<usize>> = items.iter().map(|i| i.fixed.map(Split::index)).collect();
    let bins = assign_bins(items, &fractions, &fixed, seed);
    Ok(bins.into_iter().map(|b| Split::ALL[b]).collect())
}

/// Assigns each item to one of `folds` folds, grouped and stratified like [`assign_splits`];
/// every item lies in exactly one fold. Fixed splits are ignored (pass the items to fold,
/// typically everything outside the test split).
pub fn assign_folds(
    items: &[SplitItem],
    folds: usize,
    seed: u64,
) -> Result<Vec<usize>, SplitError> {
    if folds < 2 || folds > items.len() {
        return Err(SplitError::Folds {
            folds,
            items: items.len(),
        });
    }
    let fractions = vec![1.0 / folds as f64; folds];
    Ok(assign_bins(
        items,
        &fractions,
        &vec![None; items.len()],
        seed,
    ))
}

/// A set of items that must share a bin: one group, or one ungrouped item.
struct Unit {
    members: Vec<usize>,
    class_counts: BTreeMap<usize, usize>,
    fixed_bin: Option<usize>,
}

/// Core of both split and fold assignment: `fractions.len()` bins.
fn assign_bins(
    items: &[SplitItem],
    fractions: &[f64],
    fixed: &[Option<usize>],
    seed: u64,
) -> Vec<usize> {
    let quotas = class_quotas(items, fractions);
    let mut remaining: BTreeMap<usize, Vec<i64>> = quotas;
    let mut bins = vec![usize::MAX; items.len()];
    let mut units = build_units(items, fixed);
    // Items with a fixed bin are placed as given and use up their class's quota there.
    for (index, bin) in fixed.iter().enumerate() {
        if let Some(bin) = bin {
            bins[index] = *bin;
            if let Some(row) = remaining.get_mut(&items[index].label) {
                row[*bin] -= 1;
            }
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    units.shuffle(&mut rng);
    // Largest groups first: small units then fill the quotas exactly.
    units.sort_by_key(|u| std::cmp::Reverse(u.members.len()));
    for unit in &units {
        let free: Vec<usize> = unit
            .members
            .iter()
            .copied()
            .filter(|&i| bins[i] == usize::MAX)
            .collect();
        if free.is_empty() {
            continue;
        }
        let bin = unit
            .fixed_bin
            .unwrap_or_else(|| best_bin(unit, &remaining, fractions.len()));
        for &i in &free {
            bins[i] = bin;
            if let Some(row) = remaining.get_mut(&items[i].label) {
                row[bin] -= 1;
            }
        }
    }
    bins
}

fn build_units(items: &[SplitItem], fixed: &[Option<usize>]) -> Vec<Unit> {
    let mut by_group: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut units = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match &item.group {
            Some(group) => by_group.entry(group.as_str()).or_default().push(index),
            None => units.push(vec![index]),
        }
    }
    units.extend(by_group.into_values());
    units
        .into_iter()
        .map(|members| {
            let mut class_counts = BTreeMap::new();
            for &i in &members {
                *class_counts.entry(items[i].label).or_insert(0) += 1;
            }
            // A group with fixed members follows its first fixed member.
            let fixed_bin = members.iter().find_map(|&i| fixed[i]);
            Unit {
                members,
                class_counts,
                fixed_bin,
            }
        })
        .collect()
}

/// Per class, the integer number of items each bin should hold (largest remainder, ties
/// going to the bin furthest below its overall target so totals stay balanced too).
fn class_quotas(items: &[SplitItem], fractions: &[f64]) -> BTreeMap<usize, Vec<i64>> {
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for item in items {
        *counts.entry(item.label).or_insert(0) += 1;
    }
    let mut given = vec![0.0f64; fractions.len()];
    let mut wanted = vec![0.0f64; fractions.len()];
    let mut quotas = BTreeMap::new();
    for (&label, &count) in &counts {
        let exact: Vec<f64> = fractions.iter().map(|f| f * count as f64).collect();
        let mut row: Vec<i64> = exact.iter().map(|e| e.floor() as i64).collect();
        let mut left = count as i64 - row.iter().sum::<i64>();
        for (w, e) in wanted.iter_mut().zip(&exact) {
            *w += e;
        }
        while left > 0 {
            let pick = (0..fractions.len())
                .filter(|&b| fractions[b] > 0.0)
                .max_by(|&a, &b| {
                    let key = |bin: usize| {
                        let remainder = exact[bin] - row[bin] as f64;
                        (remainder, wanted[bin] - given[bin] - row[bin] as f64)
                    };
                    key(a)
                        .partial_cmp(&key(b))
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
            let Some(bin) = pick else { break };
            row[bin] += 1;
            left -= 1;
        }
        for (g, r) in given.iter_mut().zip(&row) {
            *g += *r as f64;
        }
        quotas.insert(label, row);
    }
    quotas
}

/// The bin where a unit fills the most outstanding quota and overflows the least.
fn best_bin(unit: &Unit, remaining: &BTreeMap<usize, Vec<i64>>, bins: usize) -> usize {
    let score = |bin: usize| -> (i64, i64) {
        let mut fit = 0i64;
        let mut room = 0i64;
        for (label, &count) in &unit.class_counts {
            let left = remaining.get(label).map_or(0, |row| row[bin]);
            let count = count as i64;
            fit += count.min(left.max(0)) - (count - left.max(0)).max(0);
            room += left;
        }
        (fit, room)
    };
    (0..bins)
        .max_by_key(|&b| (score(b), std::cmp::Reverse(b)))
        .unwrap_or(0)
}

/// Items whose groups or contents appear in more than one split.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LeakageAudit {
    /// Groups found in several splits, with those splits.
    pub groups_across_splits: Vec<GroupLeak>,
    /// Identical contents (same hash) found in several splits.
    pub duplicates_across_splits: Vec<ContentLeak>,
}

/// A group present in more than one split.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupLeak {
    pub group: String,
    pub splits: Vec<Split>,
}

/// One content hash held by files in more than one split.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContentLeak {
    pub content_hash: String,
    /// The files with that content and their splits.
    pub files: Vec<(String, Split)>,
}

impl LeakageAudit {
    /// True when nothing leaks.
    pub fn is_clean(&self) -> bool {
        self.groups_across_splits.is_empty() && self.duplicates_across_splits.is_empty()
    }
}

/// Audits an assignment (parallel to `items`) for groups and identical contents in several
/// splits; items without a group or hash are not considered for that check.
pub fn audit_leakage(items: &[SplitItem], splits: &[Split]) -> LeakageAudit {
    let mut groups: BTreeMap<&str, Vec<Split>> = BTreeMap::new();
    let mut hashes: BTreeMap<&str, Vec<(String, Split)>> = BTreeMap::new();
    for (item, &split) in items.iter().zip(splits) {
        if let Some(group) = &item.group {
            groups.entry(group.as_str()).or_default().push(split);
        }
        if let Some(hash) = &item.content_hash {
            hashes
                .entry(hash.as_str())
                .or_default()
                .push((item.rel_path.clone(), split));
        }
    }
    let groups_across_splits = groups
        .into_iter()
        .filter_map(|(group, mut splits)| {
            splits.sort();
            splits.dedup();
            (splits.len() > 1).then(|| GroupLeak {
                group: group.to_owned(),
                splits,
            })
        })
        .collect();
    let duplicates_across_splits = hashes
        .into_iter()
        .filter(|(_, files)| files.iter().any(|(_, s)| *s != files[0].1))
        .map(|(hash, files)| ContentLeak {
            content_hash: hash.to_owned(),
            files,
        })
        .collect();
    LeakageAudit {
        groups_across_splits,
        duplicates_across_splits,
    }
}

/// Optional k-fold assignment stored with the frozen split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrozenFolds {
    /// Number of folds.
    pub folds: usize,
    /// Relative path → fold index.
    pub assignment: BTreeMap<String, usize>,
}

/// The split frozen in the project: how it was made and the assignment itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrozenSplit {
    /// File format version ([`SPLIT_FILE_VERSION`]).
    pub version: u32,
    pub seed: u64,
    pub fractions: SplitFractions,
    /// Relative path → split.
    pub assignment: BTreeMap<String, Split>,
    #[serde(default)]
    pub folds: Option<FrozenFolds>,
}

impl FrozenSplit {
    /// Computes and freezes a split of `items`.
    pub fn compute(
        items: &[SplitItem],
        fractions: SplitFractions,
        seed: u64,
    ) -> Result<Self, SplitError> {
        let splits = assign_splits(items, fractions, seed)?;
        let assignment = items
            .iter()
            .zip(splits)
            .map(|(item, split)| (item.rel_path.clone(), split))
            .collect();
        Ok(Self {
            version: SPLIT_FILE_VERSION,
            seed,
            fractions,
            assignment,
            folds: None,
        })
    }

    /// Adds a k-fold assignment of the items outside the test split.
    pub fn with_folds(mut self, items: &[SplitItem], folds: usize) -> Result<Self, SplitError> {
        let pool: Vec<SplitItem> = items
            .iter()
            .filter(|i| self.assignment.get(&i.rel_path) != Some(&Split::Test))
            .cloned()
            .collect();
        let fold_of = assign_folds(&pool, folds, self.seed)?;
        let assignment = pool.into_iter().map(|i| i.rel_path).zip(fold_of).collect();
        self.folds = Some(FrozenFolds { folds, assignment });
        Ok(self)
    }

    /// The split of one relative path, if it was assigned.
    pub fn split_of(&self, rel_path: &str) -> Option<Split> {
        self.assignment.get(rel_path).copied()
    }

    /// Item counts per split.
    pub fn counts(&self) -> HashMap<Split, usize> {
        let mut counts = HashMap::new();
        for split in self.assignment.values() {
            *counts.entry(*split).or_insert(0) += 1;
        }
        counts
    }

    /// Writes `split.ron` into `project_dir` atomically (temp file, fsync, rename).
    pub fn save(&self, project_dir: &Path) -> Result<PathBuf, SplitError> {
        let path = project_dir.join(SPLIT_FILE);
        let text =
            ron::ser::to_string_pretty(self, ron::ser::PrettyConfig::default()).map_err(|e| {
                SplitError::Encode {
                    path: path.clone(),
                    reason: e.to_string(),
                }
            })?;
        std::fs::create_dir_all(project_dir)
            .and_then(|()| crate::atomic_file::write(&path, format!("{text}\n").as_bytes()))
            .map_err(|source| SplitError::Io {
                action: "write",
                path: path.clone(),
                source,
            })?;
        Ok(path)
    }

    /// Reads `split.ron` from `project_dir`; errors name the file.
    pub fn load(project_dir: &Path) -> Result<Self, SplitError> {
        let path = project_dir.join(SPLIT_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| SplitError::Io {
            action: "read",
            path: path.clone(),
            source,
        })?;
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let parse_err = |e: ron::error::SpannedError| SplitError::Parse {
            path: path.clone(),
            reason: e.to_string(),
        };
        let found = ron::Options::default()
            .from_str::<VersionOnly>(&text)
            .map_err(parse_err)?
            .version;
        if found != SPLIT_FILE_VERSION {
            return Err(SplitError::Version { path, found });
        }
        ron::from_str(&text).map_err(parse_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(path: &str, label: usize, group: Option<&str>) -> SplitItem {
        SplitItem {
            rel_path: path.to_owned(),
            label,
            group: group.map(str::to_owned),
            ..SplitItem::default()
        }
    }

    fn counts_per_class(items: &[SplitItem], splits: &[Split]) -> BTreeMap<usize, [usize; 3]> {
        let mut counts: BTreeMap<usize, [usize; 3]> = BTreeMap::new();
        for (item, split) in items.iter().zip(splits) {
            counts.entry(item.label).or_default()[split.index()] += 1;
        }
        counts
    }

    #[test]
    fn stratification_keeps_each_class_within_one_item_of_its_target() {
        let fractions = SplitFractions::default();
        for class_sizes in [
            vec![1, 2, 3],
            vec![10, 37, 5],
            vec![100, 7, 13, 64],
            vec![9; 5],
        ] {
            let items: Vec<SplitItem> = class_sizes
                .iter()
                .enumerate()
                .flat_map(|(label, &n)| {
                    (0..n).map(move |i| item(&format!("{label}/{i}"), label, None))
                })
                .collect();
            for seed in 0..6 {
                let splits = assign_splits(&items, fractions, seed).unwrap();
                for (label, counts) in counts_per_class(&items, &splits) {
                    let n = class_sizes[label] as f64;
                    let targets = [fractions.train * n, fractions.val * n, fractions.test * n];
                    for (count, target) in counts.iter().zip(targets) {
                        assert!(
                            (*count as f64 - target).abs() < 1.0,
                            "class {label} of {n}: {counts:?} vs {targets:?} (seed {seed})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_group_never_spans_two_splits() {
        // 60 patients with 1-6 images each, two classes, plus ungrouped items.
        let mut items = Vec::new();
        for patient in 0..60 {
            for image in 0..(patient % 6 + 1) {
                let group = format!("patient {patient}");
                items.push(item(
                    &format!("p{patient}/{image}.png"),
                    patient % 2,
                    Some(&group),
                ));
            }
        }
        items.extend((0..20).map(|i| item(&format!("loose/{i}.png"), i % 2, None)));
        for seed in 0..5 {
            let splits = assign_splits(&items, SplitFractions::default(), seed).unwrap();
            let audit = audit_leakage(&items, &splits);
            assert!(audit.groups_across_splits.is_empty(), "{audit:?}");
            let train = splits.iter().filter(|s| **s == Split::Train).count() as f64;
            let share = train / items.len() as f64;
            assert!((0.6..0.8).contains(&share), "train share {share}");
        }
    }

    #[test]
    fn fixed_splits_are_honoured_and_pull_their_group() {
        let mut items: Vec<SplitItem> = (0..30)
            .map(|i| item(&format!("{i}"), i % 3, None))
            .collect();
        items[0].fixed = Some(Split::Test);
        items[1].fixed = Some(Split::Val);
        items[2].group = Some("g".into());
        items[2].fixed = Some(Split::Test);
        items[3].group = Some("g".into());
        let splits = assign_splits(&items, SplitFractions::default(), 3).unwrap();
        assert_eq!(splits[0], Split::Test);
        assert_eq!(splits[1], Split::Val);
        assert_eq!((splits[2], splits[3]), (Split::Test, Split::Test));
    }

    #[test]
    fn seeds_change_the_assignment_and_repeat_it() {
        let items: Vec<SplitItem> = (0..50)
            .map(|i| item(&format!("{i}"), i % 2, None))
            .collect();
        let a = assign_splits(&items, SplitFractions::default(), 1).unwrap();
        assert_eq!(
            a,
            assign_splits(&items, SplitFractions::default(), 1).unwrap()
        );
        assert_ne!(
            a,
            assign_splits(&items, SplitFractions::default(), 2).unwrap()
        );
    }

    #[test]
    fn bad_fractions_are_refused() {
        let items = vec![item("a", 0, None)];
        let bad = SplitFractions {
            train: 0.5,
            val: 0.1,
            test: 0.1,
        };
        assert!(matches!(
            assign_splits(&items, bad, 0),
            Err(SplitError::Fractions(_))
        ));
        assert!(matches!(
            assign_folds(&items, 2, 0),
            Err(SplitError::Folds { .. })
        ));
    }

    #[test]
    fn k_fold_covers_every_item_once_grouped_and_stratified() {
        let mut items: Vec<SplitItem> = (0..47)
            .map(|i| item(&format!("{i}"), i % 3, None))
            .collect();
        items.extend((0..12).map(|i| item(&format!("g{i}"), 1, Some(&format!("grp{}", i / 3)))));
        let folds = assign_folds(&items, 5, 9).unwrap();
        assert_eq!(folds.len(), items.len());
        assert!(folds.iter().all(|f| *f < 5));
        let mut group_fold: HashMap<String, usize> = HashMap::new();
        for (item, fold) in items.iter().zip(&folds) {
            if let Some(group) = &item.group {
                assert_eq!(*group_fold.entry(group.clone()).or_insert(*fold), *fold);
            }
        }
        for label in 0..3 {
            let per_fold: Vec<usize> = (0..5)
                .map(|f| {
                    items
                        .iter()
                        .zip(&folds)
                        .filter(|(i, g)| i.label == label && **g == f)
                        .count()
                })
                .collect();
            let (min, max) = (
                per_fold.iter().min().unwrap(),
                per_fold.iter().max().unwrap(),
            );
            // Class 1 holds the groups of three, which can only move as a whole.
            let tolerance = if label == 1 { 3 } else { 1 };
            assert!(max - min <= tolerance, "class {label}: {per_fold:?}");
        }
    }

    #[test]
    fn audit_reports_duplicate_contents_across_splits() {
        let mut items: Vec<SplitItem> =
            (0..4).map(|i| item(&format!("{i}.png"), 0, None)).collect();
        items[0].content_hash = Some("aa".into());
        items[1].content_hash = Some("aa".into());
        items[2].content_hash = Some("bb".into());
        items[3].content_hash = Some("bb".into());
        let splits = [Split::Train, Split::Test, Split::Val, Split::Val];
        let audit = audit_leakage(&items, &splits);
        assert_eq!(audit.duplicates_across_splits.len(), 1);
        assert_eq!(audit.duplicates_across_splits[0].content_hash, "aa");
        assert!(!audit.is_clean());
    }

    #[test]
    fn frozen_split_round_trips_through_split_ron() {
        let dir = tempfile::tempdir().unwrap();
        let items: Vec<SplitItem> = (0..20)
            .map(|i| item(&format!("class {}/ïmage {i}.png", i % 2), i % 2, None))
            .collect();
        let frozen = FrozenSplit::compute(&items, SplitFractions::default(), 42)
            .unwrap()
            .with_folds(&items, 3)
            .unwrap();
        let path = frozen.save(dir.path()).unwrap();
        assert_eq!(path, dir.path().join(SPLIT_FILE));
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "only split.ron remains");
        assert_eq!(FrozenSplit::load(dir.path()).unwrap(), frozen);
        assert_eq!(frozen.counts().values().sum::<usize>(), 20);

        std::fs::write(&path, "(version: 7, seed: 1)").unwrap();
        let err = FrozenSplit::load(dir.path()).unwrap_err();
        assert!(matches!(err, SplitError::Version { found: 7, .. }), "{err}");
        std::fs::write(&path, "not ron").unwrap();
        assert!(
            FrozenSplit::load(dir.path())
                .unwrap_err()
                .to_string()
                .ends_with("split.ron")
        );
        let missing = FrozenSplit::load(&dir.path().join("nowhere")).unwrap_err();
        assert!(missing.to_string().contains("split.ron"), "{missing}");
    }
}
