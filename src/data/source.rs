//! Where a data set's images are and how they are labelled: one subfolder per class, a
//! CSV/TSV manifest (`path,label[,group][,split]`, optionally `mask`), or a segmentation
//! folder (`images/` + `masks/` matched by file stem), or a detection layout (COCO JSON,
//! YOLO txt, Pascal VOC XML; see [`super::detection`]). Listing a source finds the candidate
//! files; [`super::scan`] then checks each one.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::DataError;
use super::decode::FileFormat;
use super::report::{Issue, IssueKind};

/// Manifest file names recognised when a folder is given.
pub const MANIFEST_NAMES: &[&str] = &["manifest.csv", "manifest.tsv"];

/// Folders deeper than this below the root are not searched (guards against link loops).
const MAX_DEPTH: usize = 12;

/// A data set on disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DatasetSource {
    /// `root/<class>/**/<image>`.
    ClassFolders { root: PathBuf },
    /// A CSV or TSV file; its paths are relative to its folder.
    Manifest { file: PathBuf },
    /// `root/images/**` with masks of the same stem under `root/masks/**`.
    Segmentation { root: PathBuf },
    /// Images with one or more COCO annotation `.json` files (see [`super::detection::coco`]).
    Coco { root: PathBuf },
    /// Images with one YOLO `.txt` per image (see [`super::detection::yolo`]).
    Yolo { root: PathBuf },
    /// `Annotations/*.xml` + `JPEGImages/` (see [`super::detection::voc`]).
    Voc { root: PathBuf },
}

/// A split named in a manifest's `split` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SplitHint {
    Train,
    Val,
    Test,
}

impl SplitHint {
    /// Reads `train`/`training`, `val`/`valid`/`validation`/`dev`, `test`/`testing`.
    pub fn parse(text: &str) -> Option<SplitHint> {
        match text.trim().to_ascii_lowercase().as_str() {
            "train" | "training" => Some(SplitHint::Train),
            "val" | "valid" | "validation" | "dev" => Some(SplitHint::Val),
            "test" | "testing" => Some(SplitHint::Test),
            _ => None,
        }
    }

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            SplitHint::Train => "train",
            SplitHint::Val => "val",
            SplitHint::Test => "test",
        }
    }
}

/// One file to check, as listed by a source (paths relative to the source's root).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Candidate {
    pub path: PathBuf,
    pub label: Option<String>,
    pub group: Option<String>,
    pub split: Option<SplitHint>,
    pub mask: Option<PathBuf>,
    /// The image's boxes (detection; `Some(empty)` for an image without objects), classes
    /// indexing [`Listing::folder_classes`], in the frame `annotation` names (YOLO's are
    /// normalised until the scan knows the image's size).
    pub boxes: Option<Vec<super::boxes::ObjectBox>>,
    /// The image's id in its annotation file (COCO's `image_id`).
    pub source_id: Option<u64>,
    /// Where the boxes came from and in which frame (detection).
    pub annotation: Option<AnnotationOrigin>,
}

/// Where a candidate's boxes came from, for the scan's checks and the report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnnotationOrigin {
    /// The annotation file, relative to the root.
    pub file: PathBuf,
    /// The frame of the candidate's boxes.
    pub frame: BoxFrame,
    /// The image size the annotation file gives (COCO `width`/`height`, VOC `<size>`).
    pub declared_size_px: Option<(u32, u32)>,
    /// Per box, how the report names it ("annotation 17", "line 3", "object 2").
    pub refs: Vec<String>,
}

/// The coordinates of a candidate's boxes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BoxFrame {
    /// Pixels of the original image.
    #[default]
    Pixels,
    /// Fractions of the image's width and height (YOLO); the scan multiplies them by the
    /// decoded size.
    Normalised,
}

/// What listing a source found: the candidates, the class names it implies (class folders,
/// even empty ones) and the problems seen without opening any image.
#[derive(Debug, Default)]
pub struct Listing {
    pub candidates: Vec<Candidate>,
    pub folder_classes: Vec<String>,
    pub issues: Vec<Issue>,
    /// The annotation format of a detection set; its classes are `folder_classes`, in the
    /// file's order, which the boxes' class indices index.
    pub detection: Option<super::detection::DetectionFormat>,
    /// Per class, the data set's own category id (COCO), for results in its ids.
    pub category_ids: Option<Vec<u64>>,
}

impl DatasetSource {
    /// The source at `path`: a file is a manifest; a folder with `images/` and `masks/` is a
    /// segmentation set; a folder holding `manifest.csv`/`.tsv` uses it; a detection layout
    /// ([`super::detection::detection_layout`]) is read as such; any other folder is one
    /// subfolder per class.
    pub fn detect(path: &Path) -> Result<DatasetSource, DataError> {
        let meta = std::fs::metadata(path).map_err(|e| DataError::Source {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        if meta.is_file() {
            return Ok(DatasetSource::Manifest {
                file: path.to_owned(),
            });
        }
        if path.join("images").is_dir() && path.join("masks").is_dir() {
            return Ok(DatasetSource::Segmentation {
                root: path.to_owned(),
            });
        }
        for name in MANIFEST_NAMES {
            if path.join(name).is_file() {
                return Ok(DatasetSource::Manifest {
                    file: path.join(name),
                });
            }
        }
        if let Some(format) = super::detection::detection_layout(path) {
            return Ok(format.source(path));
        }
        Ok(DatasetSource::ClassFolders {
            root: path.to_owned(),
        })
    }

    /// The folder the listed paths are relative to.
    pub fn root(&self) -> PathBuf {
        match self {
            DatasetSource::ClassFolders { root }
            | DatasetSource::Segmentation { root }
            | DatasetSource::Coco { root }
            | DatasetSource::Yolo { root }
            | DatasetSource::Voc { root } => root.clone(),
            DatasetSource::Manifest { file } => file
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        }
    }

    /// How the source reads in the report.
    pub fn describe(&self) -> String {
        match self {
            DatasetSource::ClassFolders { root } => format!("class folders in {}", root.display()),
            DatasetSource::Manifest { file } => format!("manifest {}", file.display()),
            DatasetSource::Segmentation { root } => {
                format!("segmentation images/ + masks/ in {}", root.display())
            }
            DatasetSource::Coco { root }
            | DatasetSource::Yolo { root }
            | DatasetSource::Voc { root } => {
                let format = self.detection_format().unwrap_or_default();
                format!("{} in {}", format.label(), root.display())
            }
        }
    }

    /// The annotation format of a detection source.
    pub fn detection_format(&self) -> Option<super::detection::DetectionFormat> {
        use super::detection::DetectionFormat;
        match self {
            DatasetSource::Coco { .. } => Some(DetectionFormat::Coco),
            DatasetSource::Yolo { .. } => Some(DetectionFormat::Yolo),
            DatasetSource::Voc { .. } => Some(DetectionFormat::Voc),
            _ => None,
        }
    }

    /// Lists the candidate files. Fails only when the source itself cannot be read.
    pub fn list(&self) -> Result<Listing, DataError> {
        match self {
            DatasetSource::ClassFolders { root } => list_class_folders(root),
            DatasetSource::Manifest { file } => super::manifest::list_manifest(file),
            DatasetSource::Segmentation { root } => list_segmentation(root),
            DatasetSource::Coco { root } => super::detection::coco::list(root),
            DatasetSource::Yolo { root } => super::detection::yolo::list(root),
            DatasetSource::Voc { root } => super::detection::voc::list(root),
        }
    }
}

/// `path` relative to `root` when it lies below it.
pub fn relative_to(path: &Path, root: &Path) -> PathBuf {
    path.strip_prefix(root)
        .map_or_else(|_| path.to_path_buf(), Path::to_path_buf)
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

/// The entries of one folder, sorted, hidden ones skipped: (files, subfolders).
pub(crate) fn read_folder(dir: &Path) -> std::io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if is_hidden(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        // Links to folders are followed (MAX_DEPTH bounds loops); broken links are files,
        // reported as unreadable.
        let is_dir = path.is_dir();
        if is_dir {
            dirs.push(path)
        } else {
            files.push(path)
        }
    }
    files.sort();
    dirs.sort();
    Ok((files, dirs))
}

/// All files below `dir` (sorted, hidden skipped); unreadable subfolders become issues.
pub fn walk_files(dir: &Path, root: &Path, issues: &mut Vec<Issue>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk_into(dir, root, 0, &mut out, issues);
    out
}

fn walk_into(
    dir: &Path,
    root: &Path,
    depth: usize,
    out: &mut Vec<PathBuf>,
    issues: &mut Vec<Issue>,
) {
    match read_folder(dir) {
        Ok((files, dirs)) => {
            out.extend(files);
            for sub in dirs {
                if depth < MAX_DEPTH {
                    walk_into(&sub, root, depth + 1, out, issues);
                }
            }
        }
        Err(e) => issues.push(Issue::new(
            IssueKind::Unreadable,
            relative_to(dir, root),
            format!("could not list the folder ({e})"),
        )),
    }
}

/// A [`DataError::Source`] naming `path`.
pub(crate) fn source_err(path: &Path, e: impl std::fmt::Display) -> DataError {
    DataError::Source {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

fn list_class_folders(root: &Path) -> Result<Listing, DataError> {
    let (files, dirs) = read_folder(root).map_err(|e| source_err(root, e))?;
    let mut listing = Listing::default();
    for file in files {
        if FileFormat::has_image_extension(&file) {
            listing.issues.push(Issue::new(
                IssueKind::ImageWithoutLabel,
                relative_to(&file, root),
                "an image outside the class folders has no label".to_owned(),
            ));
        }
    }
    for dir in dirs {
        let class = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        listing.folder_classes.push(class.clone());
        for file in walk_files(&dir, root, &mut listing.issues) {
            listing.candidates.push(Candidate {
                path: relative_to(&file, root),
                label: Some(class.clone()),
                ..Candidate::default()
            });
        }
    }
    if listing.folder_classes.is_empty() {
        return Err(source_err(root, "no class subfolders found"));
    }
    Ok(listing)
}

fn stem_key(relative: &Path) -> PathBuf {
    relative.with_extension("")
}

fn list_segmentation(root: &Path) -> Result<Listing, DataError> {
    let (images_dir, masks_dir) = (root.join("images"), root.join("masks"));
    let mut listing = Listing::default();
    read_folder(&images_dir).map_err(|e| source_err(&images_dir, e))?;
    let images = walk_files(&images_dir, root, &mut listing.issues);
    let masks = walk_files(&masks_dir, root, &mut listing.issues);
    let mut masks_by_stem: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    for mask in masks {
        let key = stem_key(&relative_to(&mask, &masks_dir));
        masks_by_stem.entry(key).or_insert(mask);
    }
    let mut used: HashSet<PathBuf> = HashSet::new();
    for image in images {
        let key = stem_key(&relative_to(&image, &images_dir));
        let mask = masks_by_stem.get(&key);
        if let Some(mask) = mask {
            used.insert(mask.clone());
        }
        listing.candidates.push(Candidate {
            path: relative_to(&image, root),
            mask: mask.map(|m| relative_to(m, root)),
            ..Candidate::default()
        });
    }
    for mask in masks_by_stem.values().filter(|m| !used.contains(*m)) {
        listing.issues.push(Issue::new(
            IssueKind::MaskWithoutImage,
            relative_to(mask, root),
            "a mask with no image of the same name".to_owned(),
        ));
    }
    Ok(listing)
}

/// Image files in the folders that hold listed files but that the manifest does not list.
pub fn unlisted_images(root: &Path, listed: &BTreeSet<PathBuf>) -> Vec<PathBuf> {
    let folders: BTreeSet<PathBuf> = listed
        .iter()
        .filter_map(|p| root.join(p).parent().map(Path::to_path_buf))
        .collect();
    let mut out = Vec::new();
    for folder in folders {
        let Ok((files, _)) = read_folder(&folder) else {
            continue;
        };
        for file in files {
            let rel = relative_to(&file, root);
            if FileFormat::has_image_extension(&file) && !listed.contains(&rel) {
                out.push(rel);
            }
        }
    }
    out
}
