//! Helpers shared by the data tests: the reference files and values written by
//! `tests/fixtures/data_ingest/reference.py` (tifffile, pydicom 3.0.2, PIL) with the venv's
//! Python, once per test process.
#![allow(dead_code)] // Each test crate uses a different subset.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use transfer_workbench::data::decode::RawImage;

use super::common;

/// The folder the reference script wrote (run once per test process).
pub fn reference_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{}_reference", env!("CARGO_CRATE_NAME")));
        let _ = std::fs::remove_dir_all(&out);
        let script = common::fixtures_dir().join("data_ingest/reference.py");
        let output = Command::new(common::venv_python())
            .arg(&script)
            .arg(&out)
            .arg(transfer_workbench::assets::assets_dir())
            .output()
            .expect("python starts");
        assert!(
            output.status.success(),
            "{} failed (pydicom==3.0.2 and tifffile must be in the venv):\n{}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        out
    })
}

/// One reference: its facts and its values.
pub struct Reference {
    pub facts: serde_json::Value,
    pub values: Vec<f32>,
}

impl Reference {
    pub fn load(name: &str) -> Reference {
        let dir = reference_dir();
        let facts = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
        let bytes = std::fs::read(dir.join(format!("{name}.f32"))).unwrap();
        let values = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Reference {
            facts: serde_json::from_str(&facts).unwrap(),
            values,
        }
    }

    pub fn f(&self, key: &str) -> f32 {
        self.facts[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} in {}", self.facts)) as f32
    }

    pub fn shape(&self) -> Vec<u32> {
        let shape = self.facts["shape"].as_array().unwrap();
        shape.iter().map(|v| v.as_u64().unwrap() as u32).collect()
    }

    /// Checks size and channels and returns (max, mean) absolute difference of the values.
    pub fn compare(&self, raw: &RawImage) -> (f32, f32) {
        let shape = self.shape();
        assert_eq!((raw.height, raw.width), (shape[0], shape[1]));
        assert_eq!(u32::from(raw.channels), shape.get(2).copied().unwrap_or(1));
        assert_eq!(raw.values.len(), self.values.len());
        let diffs: Vec<f32> = raw
            .values
            .iter()
            .zip(&self.values)
            .map(|(a, b)| (a - b).abs())
            .collect();
        let max = diffs.iter().copied().fold(0.0, f32::max);
        (max, diffs.iter().sum::<f32>() / diffs.len() as f32)
    }
}
