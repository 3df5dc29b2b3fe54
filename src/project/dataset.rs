//! A project's data set settings: how its images are organised, the mask encoding override,
//! the intensity window for 16-bit and DICOM images, the smallest usable image side, whether
//! images may be mirrored, what the images looked like at creation, and the user's
//! relabels and exclusions.
//! Plain serde data; the scan itself lives in `crate::data`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::curation::Curation;
use crate::data::DataError;
use crate::data::detection::DetectionFormat;
use crate::data::mask::MaskEncoding;
pub use crate::data::preview::DataProfile;
use crate::data::scan::{DEFAULT_MIN_SIDE_PX, ScanOptions};
use crate::data::source::DatasetSource;
use crate::data::window::WindowSetting;

/// How the images in the project's data location are organised.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DatasetSourceKind {
    /// Decided from the folder: `images/` + `masks/` is segmentation, a `manifest.csv` or
    /// `manifest.tsv` is a manifest, a COCO, YOLO or Pascal VOC layout is detection
    /// (`crate::data::detection::detection_layout`), anything else one subfolder per class.
    #[default]
    Auto,
    /// One subfolder per class.
    ClassFolders,
    /// A CSV/TSV manifest, relative to the data location.
    Manifest { file: PathBuf },
    /// `images/` + `masks/` matched by file stem.
    Segmentation,
    /// Images with COCO annotation `.json` files (detection).
    Coco,
    /// Images with one YOLO `.txt` per image and `data.yaml` or `classes.txt` (detection).
    Yolo,
    /// Pascal VOC: `Annotations/*.xml` + `JPEGImages/` (detection).
    Voc,
}

/// The data set settings stored in `project.ron`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DatasetConfig {
    /// How the images are organised.
    pub source: DatasetSourceKind,
    /// Overrides the detected mask encoding (segmentation).
    pub mask_encoding: Option<MaskEncoding>,
    /// The intensity window for 16-bit and DICOM images, used alike in training, inspection
    /// and export.
    pub window: WindowSetting,
    /// Images with a shorter side are reported as tiny.
    pub min_side_px: u32,
    /// The user says a mirrored image keeps its label: training may flip images. Off by
    /// default, as flips are wrong for chest X-rays (the heart is on the left) and text.
    pub mirror_ok: bool,
    /// What the project's creation saw of the images; new runs' defaults follow it.
    pub profile: Option<DataProfile>,
    /// The user's relabels and exclusions (the files are never touched); new runs use them.
    pub curation: Curation,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        Self {
            source: DatasetSourceKind::Auto,
            mask_encoding: None,
            window: WindowSetting::Auto,
            min_side_px: DEFAULT_MIN_SIDE_PX,
            mirror_ok: false,
            profile: None,
            curation: Curation::default(),
        }
    }
}

impl DatasetConfig {
    /// The data set in `data_dir` (the project's resolved data location).
    pub fn source_at(&self, data_dir: &Path) -> Result<DatasetSource, DataError> {
        match &self.source {
            DatasetSourceKind::Auto => DatasetSource::detect(data_dir),
            DatasetSourceKind::ClassFolders => Ok(DatasetSource::ClassFolders {
                root: data_dir.to_owned(),
            }),
            DatasetSourceKind::Manifest { file } => Ok(DatasetSource::Manifest {
                file: data_dir.join(file),
            }),
            DatasetSourceKind::Segmentation => Ok(DatasetSource::Segmentation {
                root: data_dir.to_owned(),
            }),
            DatasetSourceKind::Coco => Ok(DetectionFormat::Coco.source(data_dir)),
            DatasetSourceKind::Yolo => Ok(DetectionFormat::Yolo.source(data_dir)),
            DatasetSourceKind::Voc => Ok(DetectionFormat::Voc.source(data_dir)),
        }
    }

    /// The options a scan of this data set uses.
    pub fn scan_options(&self) -> ScanOptions {
        ScanOptions {
            min_side_px: self.min_side_px,
            mask_encoding: self.mask_encoding,
            known_classes: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_through_ron_and_partial_text_loads() {
        let config = DatasetConfig {
            source: DatasetSourceKind::Manifest {
                file: "labels.tsv".into(),
            },
            mask_encoding: Some(MaskEncoding::ClassIndex { classes: 3 }),
            window: WindowSetting::Manual {
                center: 40.0,
                width: 400.0,
            },
            min_side_px: 16,
            mirror_ok: true,
            profile: Some(DataProfile {
                images: 40,
                typical_size_px: Some((28, 28)),
                colour: Some(false),
            }),
            curation: Curation {
                edits: vec![crate::project::CurationEdit {
                    action: crate::project::CurationAction::Exclude,
                    files: vec!["a/b.png".into()],
                }],
            },
        };
        let text = ron::ser::to_string_pretty(&config, Default::default()).unwrap();
        assert_eq!(ron::from_str::<DatasetConfig>(&text).unwrap(), config);
        let partial: DatasetConfig = ron::from_str("(min_side_px: 8)").unwrap();
        assert_eq!(partial.window, WindowSetting::Auto);
        assert_eq!(partial.min_side_px, 8);
        let dir = tempfile::tempdir().unwrap();
        let source = config.source_at(dir.path()).unwrap();
        assert_eq!(source.root(), dir.path());
        for (kind, format) in [
            (DatasetSourceKind::Coco, DetectionFormat::Coco),
            (DatasetSourceKind::Yolo, DetectionFormat::Yolo),
            (DatasetSourceKind::Voc, DetectionFormat::Voc),
        ] {
            let config = DatasetConfig {
                source: kind,
                ..DatasetConfig::default()
            };
            let text = ron::ser::to_string_pretty(&config, Default::default()).unwrap();
            assert_eq!(ron::from_str::<DatasetConfig>(&text).unwrap(), config);
            let source = config.source_at(dir.path()).unwrap();
            assert_eq!(source.detection_format(), Some(format));
        }
    }
}
