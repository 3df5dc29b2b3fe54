//! Runtime state of the Dataset view: a project's scanned data set with the look-ups the
//! view needs, and the state of its scan.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::data::report::ValidationReport;
use crate::data::scan::DatasetIndex;

/// A scanned data set with the look-ups the view needs.
#[derive(Debug)]
pub struct ScannedDataset {
    /// The usable images.
    pub index: DatasetIndex,
    /// Everything found wrong.
    pub report: ValidationReport,
    /// Item position by its path (relative to the root).
    pub item_of_path: HashMap<PathBuf, usize>,
    /// Per item, the positions of its issues in `report.issues`.
    pub issues_of_item: Vec<Vec<usize>>,
    /// Distinguishes scans (views reset their selection when it changes).
    pub generation: u64,
}

impl ScannedDataset {
    /// Indexes the items and their issues (runs on the scan worker).
    pub fn new(index: DatasetIndex, report: ValidationReport, generation: u64) -> Self {
        let item_of_path: HashMap<PathBuf, usize> = index
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| (item.path.clone(), i))
            .collect();
        let mut issues_of_item = vec![Vec::new(); index.items.len()];
        for (n, issue) in report.issues.iter().enumerate() {
            if let Some(&i) = item_of_path.get(&issue.path) {
                issues_of_item[i].push(n);
            }
        }
        Self {
            index,
            report,
            item_of_path,
            issues_of_item,
            generation,
        }
    }
}

/// The state of one project's data scan.
#[derive(Debug)]
pub enum DatasetScan {
    /// Checking files: `done` of `total`.
    Scanning {
        /// Files checked.
        done: usize,
        /// Files listed.
        total: usize,
        /// Set to stop the scan.
        cancel: Arc<AtomicBool>,
        /// Which scan this is (events of older ones are dropped).
        generation: u64,
    },
    /// The scan finished.
    Ready(Arc<ScannedDataset>),
    /// The data could not be listed, or the scan was cancelled.
    Failed(String),
}
