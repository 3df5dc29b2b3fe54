//! Runtime state of the Dataset view: a project's scanned data set with the look-ups the
//! view needs, and the state of its scan.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::Loading;
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

/// One project's data scan: its state (files checked of files listed while running; failed
/// when the data could not be listed or the scan was cancelled), and what identifies and
/// stops the job.
#[derive(Debug)]
pub struct DatasetScan {
    /// Running, ready or failed.
    pub state: Loading<Arc<ScannedDataset>>,
    /// Set to stop the scan.
    pub cancel: Arc<AtomicBool>,
    /// Which scan this is (events of older ones are dropped).
    pub generation: u64,
}

impl DatasetScan {
    /// A scan that could not start, with the reason.
    pub fn failed(message: String) -> Self {
        Self {
            state: Loading::Failed(message),
            cancel: Arc::new(AtomicBool::new(false)),
            generation: 0,
        }
    }

    /// Asks the scan to stop if it is running.
    pub fn cancel(&self) {
        if self.state.is_running() {
            self.cancel
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
