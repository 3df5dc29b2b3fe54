//! What each fuzz target feeds, and to which parser: every parser of user-supplied bytes,
//! called through the entry point the app itself calls. Shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/`) and by `tests/fuzz_corpus.rs`, which checks the seeds and replays
//! every saved crash input on the stable toolchain in the normal test run.
//!
//! Rules a target enforces beyond "no panic, no hang, no runaway memory": an error must name
//! the file it is about (the product's rule for bad input). Path-based parsers get the bytes
//! through a file in a scratch folder of this process (`TMPDIR`, best on a tmpfs).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Fixture set-up failures are bugs here.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tch::Tensor;
use transfer_workbench::data::decode::decode_bytes;
use transfer_workbench::data::manifest::list_manifest;
use transfer_workbench::data::scan::{ScanOptions, scan};
use transfer_workbench::data::source::DatasetSource;
use transfer_workbench::data::split::{FrozenSplit, SplitItem};
use transfer_workbench::model::weights::read_weights;
use transfer_workbench::project::{Project, load_project, save_project};
use transfer_workbench::train::TrainConfig;
use transfer_workbench::train::events::CheckpointKind;
use transfer_workbench::train::run::{CheckpointState, RunDir};
use transfer_workbench::train::status::{RunState, RunStatus};

/// The fuzz targets, one per parser family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `project.ron`, through `load_project`.
    ProjectRon,
    /// A run's files (first byte picks one): `config.ron`, `split.json`, `status.json`,
    /// `checkpoints/last.json`, `history.jsonl`, the project's `split/split.ron`, and the
    /// checkpoint `checkpoints/last.safetensors`.
    RunFiles,
    /// CSV (first byte even) or TSV manifests, through `list_manifest`.
    Manifest,
    /// `torch.save` state dicts, zip and legacy pickle, through `read_weights`.
    TorchCheckpoint,
    /// `.safetensors` weights, through `read_weights`.
    Safetensors,
    /// DICOM files, through the image decoder the loader calls.
    Dicom,
    /// PNG, JPEG, TIFF, BMP and WebP (first byte picks the file's extension), through the
    /// image decoder the loader calls (header checks, decompression-bomb limits).
    Image,
    /// A COCO `annotations.json`, through a whole data set scan.
    CocoJson,
    /// A Pascal VOC `Annotations/*.xml`, through a whole data set scan.
    VocXml,
    /// YOLO files (first byte picks `labels/a.txt`, `classes.txt` or `data.yaml`), through a
    /// whole data set scan.
    YoloTxt,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 10] = [
        Target::ProjectRon,
        Target::RunFiles,
        Target::Manifest,
        Target::TorchCheckpoint,
        Target::Safetensors,
        Target::Dicom,
        Target::Image,
        Target::CocoJson,
        Target::VocXml,
        Target::YoloTxt,
    ];

    /// The target's name: its binary in `fuzz/fuzz_targets/` and its folders.
    pub fn name(self) -> &'static str {
        match self {
            Target::ProjectRon => "project_ron",
            Target::RunFiles => "run_files",
            Target::Manifest => "manifest",
            Target::TorchCheckpoint => "torch_checkpoint",
            Target::Safetensors => "safetensors",
            Target::Dicom => "dicom",
            Target::Image => "image",
            Target::CocoJson => "coco_json",
            Target::VocXml => "voc_xml",
            Target::YoloTxt => "yolo_txt",
        }
    }

    /// Feeds `data` to the target's parser. `Err` is the parser's refusal (fine for a fuzz
    /// input, and for a seed a sign that the seed is bad); a panic is a finding.
    pub fn feed(self, data: &[u8]) -> Result<(), String> {
        let scratch = scratch();
        match self {
            Target::ProjectRon => {
                let dir = fresh_dir(scratch, "project");
                named(&write(&dir, "project.ron", data), load_project(&dir))
            }
            Target::RunFiles => run_files(data),
            Target::Manifest => {
                let (selector, rest) = split_first(data);
                let name = ["manifest.csv", "manifest.tsv"][usize::from(selector % 2)];
                let file = write(&manifest_dir(), name, rest);
                named(&file, list_manifest(&file))
            }
            Target::TorchCheckpoint => {
                let file = write(scratch, "weights.pt", data);
                named(&file, read_weights(&file))
            }
            Target::Safetensors => {
                let file = write(scratch, "weights.safetensors", data);
                named(&file, read_weights(&file))
            }
            Target::Dicom => {
                // The DICOM reader opens the file itself (`decode_bytes` sniffs the bytes).
                let path = write(scratch, "image.dcm", data);
                named(&path, decode_bytes(data, &path))
            }
            Target::Image => {
                let (selector, rest) = split_first(data);
                let ext = IMAGE_EXTENSIONS[usize::from(selector) % IMAGE_EXTENSIONS.len()];
                let path = write(scratch, &format!("image.{ext}"), rest);
                named(&path, decode_bytes(rest, &path))
            }
            Target::CocoJson => {
                let root = annotation_root("coco");
                write(&root, "annotations.json", data);
                scan_root(&root)
            }
            Target::VocXml => {
                let root = annotation_root("voc");
                write(&root, "Annotations/a.xml", data);
                scan_root(&root)
            }
            Target::YoloTxt => {
                let (selector, rest) = split_first(data);
                let root = annotation_root("yolo");
                let files = ["labels/a.txt", "classes.txt", "data.yaml"];
                let chosen = usize::from(selector) % files.len();
                for (i, file) in files.iter().enumerate() {
                    let good = yolo_file(file);
                    write(&root, file, if i == chosen { rest } else { good });
                }
                scan_root(&root)
            }
        }
    }

    /// Good inputs to start from (each is accepted by [`Target::feed`]).
    pub fn seeds(self) -> Vec<Vec<u8>> {
        match self {
            Target::ProjectRon => {
                let dir = fresh_dir(scratch(), "seed-project");
                let project = Project {
                    name: "seed".into(),
                    training: Some(Default::default()),
                    ..Default::default()
                };
                save_project(&dir, &project).unwrap();
                vec![std::fs::read(dir.join("project.ron")).unwrap()]
            }
            Target::RunFiles => {
                let run = run_fixture();
                RUN_FILES
                    .iter()
                    .enumerate()
                    .map(|(i, (_, file))| prefixed(i as u8, &run.good[*file]))
                    .collect()
            }
            Target::Manifest => [b',', b'\t']
                .iter()
                .enumerate()
                .map(|(i, &d)| {
                    let d = char::from(d);
                    let mut text = format!("path{d}label{d}group{d}split\n");
                    for j in 0..4 {
                        let split = ["train", "val"][j % 2];
                        text.push_str(&format!("{j}.png{d}class {}{d}g{j}{d}{split}\n", j % 2));
                    }
                    prefixed(i as u8, text.as_bytes())
                })
                .collect(),
            Target::TorchCheckpoint => Vec::new(), // From the set-up's `.pth` files (fuzz.sh).
            Target::Safetensors => {
                let file = scratch().join("seed.safetensors");
                let tensors = [
                    (
                        "features.0.weight",
                        Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]),
                    ),
                    ("features.0.bias", Tensor::from_slice(&[0.5f32])),
                ];
                Tensor::write_safetensors(&tensors, &file).unwrap();
                vec![std::fs::read(file).unwrap()]
            }
            Target::Dicom => Vec::new(), // From the set-up's sample DICOM files (fuzz.sh).
            Target::Image => IMAGE_EXTENSIONS
                .iter()
                .enumerate()
                .map(|(i, ext)| prefixed(i as u8, &encoded_picture(ext)))
                .collect(),
            Target::CocoJson => vec![COCO_JSON.as_bytes().to_vec()],
            Target::VocXml => vec![VOC_XML.as_bytes().to_vec()],
            Target::YoloTxt => ["labels/a.txt", "classes.txt", "data.yaml"]
                .iter()
                .enumerate()
                .map(|(i, file)| prefixed(i as u8, yolo_file(file)))
                .collect(),
        }
    }
}

/// The image kinds of [`Target::Image`], by the first input byte.
const IMAGE_EXTENSIONS: [&str; 5] = ["png", "jpg", "tif", "bmp", "webp"];

/// The result of a parser, checked: an error must name `file`.
fn named<T, E: std::fmt::Display>(file: &Path, result: Result<T, E>) -> Result<(), String> {
    let Err(e) = result else { return Ok(()) };
    let message = e.to_string();
    let name = file.file_name().unwrap().to_string_lossy();
    assert!(
        message.contains(name.as_ref()),
        "the error does not name {name}: {message}"
    );
    Err(message)
}

fn split_first(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&first, rest)) => (first, rest),
        None => (0, data),
    }
}

fn prefixed(selector: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![selector];
    out.extend_from_slice(bytes);
    out
}

/// This process's scratch folder (under `TMPDIR`; the caller may remove it at the end).
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tw-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// `parent/name`, emptied.
fn fresh_dir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `bytes` to `dir/name` (parents made) and returns the path.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A small picture, encoded as `ext`.
fn encoded_picture(ext: &str) -> Vec<u8> {
    let format = image::ImageFormat::from_extension(ext).unwrap();
    let picture =
        image::RgbImage::from_fn(12, 10, |x, y| image::Rgb([x as u8 * 20, y as u8 * 25, 90]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    match picture.write_to(&mut bytes, format) {
        Ok(()) => bytes.into_inner(),
        // Encoders this build lacks: a PNG under that name (the decoder sniffs content).
        Err(_) => encoded_picture("png"),
    }
}

/// The folder of the manifest target, with the images its seeds name.
fn manifest_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = fresh_dir(scratch(), "manifest");
        for j in 0..4 {
            write(&dir, &format!("{j}.png"), &encoded_picture("png"));
        }
        dir
    })
    .clone()
}

/// A data set folder for one annotation format, with its two images (`a.png`, `b.png`).
fn annotation_root(format: &str) -> PathBuf {
    let root = scratch().join(format!("annotations-{format}"));
    let images = if format == "voc" {
        "JPEGImages"
    } else {
        "images"
    };
    for name in ["a.png", "b.png"] {
        let path = root.join(images).join(name);
        if !path.is_file() {
            write(&root.join(images), name, &encoded_picture("png"));
        }
    }
    root
}

/// Scans the data set at `root` as the app does (list, check every file, settle boxes).
fn scan_root(root: &Path) -> Result<(), String> {
    let source = DatasetSource::detect(root).map_err(|e| e.to_string())?;
    scan(&source, &ScanOptions::default(), |_, _| {})
        .map(|_| ())
        .map_err(|e| e.to_string())
}

const COCO_JSON: &str = r#"{"images": [{"id": 1, "file_name": "a.png", "width": 12, "height": 10},
 {"id": 2, "file_name": "b.png", "width": 12, "height": 10}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1.5, 2, 5, 4], "area": 20, "iscrowd": 0},
  {"id": 2, "image_id": 1, "category_id": 4, "bbox": [0, 0, 12, 10], "area": 100, "iscrowd": 1}],
 "categories": [{"id": 3, "name": "cell"}, {"id": 4, "name": "clump"}]}"#;

const VOC_XML: &str = r#"<annotation><folder>JPEGImages</folder><filename>a.png</filename>
<size><width>12</width><height>10</height><depth>3</depth></size>
<object><name>cell</name><difficult>0</difficult>
<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>6</xmax><ymax>7</ymax></bndbox></object>
<object><name>dot</name><bndbox><xmin>3.5</xmin><ymin>1</ymin><xmax>11</xmax><ymax>9</ymax></bndbox></object>
</annotation>"#;

fn yolo_file(name: &str) -> &'static [u8] {
    match name {
        "labels/a.txt" => b"0 0.5 0.5 0.25 0.3\n1 0.2 0.7 0.1 0.1\n",
        "classes.txt" => b"cell\ndot\n",
        _ => b"names: [cell, dot]\nnc: 2\n",
    }
}

/// The files of [`Target::RunFiles`], by selector: (a name, an index into the good bytes).
const RUN_FILES: [(&str, usize); 7] = [
    ("config.ron", 0),
    ("split.json", 1),
    ("status.json", 2),
    ("checkpoints/last.json", 3),
    ("history.jsonl", 4),
    ("split/split.ron", 5),
    ("checkpoints/last.safetensors", 6),
];

/// A project with one run whose files are all good; `good` keeps each file's bytes.
struct RunFixture {
    project: PathBuf,
    run: RunDir,
    id: String,
    split_path: PathBuf,
    good: Vec<Vec<u8>>,
}

fn run_fixture() -> &'static RunFixture {
    static FIXTURE: OnceLock<RunFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let project = fresh_dir(scratch(), "run-project");
        let config = TrainConfig::default();
        let split = serde_json::json!({"classes": ["a", "b"], "train": ["a/1.png"], "val": ["b/2.png"]});
        let run = RunDir::create(&project, &config, &split).unwrap();
        let state = CheckpointState {
            epochs_done: 1,
            ..Default::default()
        };
        let tensors = vec![("w".to_owned(), Tensor::from_slice(&[1.0f32, 2.0, 3.0]))];
        run.save_checkpoint(CheckpointKind::Last, &tensors, &state)
            .unwrap();
        RunStatus::new(&run, &config, RunState::Stopped, 1, None)
            .save(&run)
            .unwrap();
        let record = r#"{"epoch":0,"global_step":2,"lr":0.001,"train":{"loss":0.5,"accuracy":0.75},"validation":{"loss":0.6,"accuracy":0.5},"duration_secs":1.5}"#;
        let history = format!("{record}\n{}\n", record.replace("\"epoch\":0", "\"epoch\":1"));
        std::fs::write(run.dir.join("history.jsonl"), history).unwrap();
        let items: Vec<SplitItem> = (0..12)
            .map(|i| SplitItem {
                rel_path: format!("c{}/{i}.png", i % 2),
                label: i % 2,
                group: None,
                fixed: None,
                content_hash: Some(format!("{i:08x}")),
            })
            .collect();
        let split_path = FrozenSplit::compute(&items, Default::default(), 3)
            .unwrap()
            .save(&project.join("split"))
            .unwrap();
        let id = run.id.clone();
        let good = RUN_FILES
            .iter()
            .map(|(name, _)| {
                let path = if name.starts_with("split/") { split_path.clone() } else { run.dir.join(name) };
                std::fs::read(path).unwrap()
            })
            .collect();
        RunFixture {
            project,
            run,
            id,
            split_path,
            good,
        }
    })
}

/// [`Target::RunFiles`]: damages one file of a good run, parses it, restores it.
fn run_files(data: &[u8]) -> Result<(), String> {
    let fixture = run_fixture();
    let (selector, rest) = split_first(data);
    let which = usize::from(selector) % RUN_FILES.len();
    let (name, good) = RUN_FILES[which];
    let file = if which == 5 {
        fixture.split_path.clone()
    } else {
        fixture.run.dir.join(name)
    };
    std::fs::write(&file, rest).unwrap();
    let run = &fixture.run;
    let outcome = match which {
        0 => named(&file, RunDir::open(&fixture.project, &fixture.id)),
        1 => named(&file, run.read_split()),
        2 => named(&file, RunStatus::load(run)),
        3 => named(&file, run.load_checkpoint_state(CheckpointKind::Last)),
        4 => named(&file, run.read_history()),
        5 => named(&file, FrozenSplit::load(&fixture.project.join("split"))),
        _ => named(&file, run.load_checkpoint(CheckpointKind::Last)),
    };
    std::fs::write(&file, &fixture.good[good]).unwrap();
    outcome
}
