//! Hostile input, seeded: every parser of user-supplied bytes is given mutated copies of a
//! good input (bit flips, overwritten, inserted, deleted and duplicated runs, truncation)
//! through the entry point the app calls, and must return (an error or a value), never
//! panic; every error must name the file. Not coverage-guided fuzzing: a cheap, repeatable
//! screen that runs in the normal test run. `HOSTILE_ITERATIONS` (default 150 per input, 30
//! per DICOM file) and `HOSTILE_SEED` (default 19) change it; inputs that panic or take over
//! a second are kept in `target/tmp/hostile/`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::{ImageFormat, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;
use transfer_workbench::data::decode::decode_bytes;
use transfer_workbench::data::manifest::list_manifest;
use transfer_workbench::data::split::FrozenSplit;
use transfer_workbench::project::load_project;
use transfer_workbench::train::events::CheckpointKind;
use transfer_workbench::train::run::RunDir;
use transfer_workbench::train::status::RunStatus;

/// One mutation of `good`.
fn mutate(good: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut bytes = good.to_vec();
    for _ in 0..rng.gen_range(1..=3) {
        let len = bytes.len().max(1);
        let at = rng.gen_range(0..len);
        match rng.gen_range(0..7) {
            0 => {
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 1 << rng.gen_range(0..8);
                }
            }
            1 => {
                let value = [0u8, 0xff, 0x7f, 0x80, b'"', b'(', b')', b','][rng.gen_range(0..8)];
                for b in bytes.iter_mut().skip(at).take(rng.gen_range(1..8)) {
                    *b = value;
                }
            }
            2 => bytes.truncate(at),
            3 => {
                let run: Vec<u8> = (0..rng.gen_range(1..16)).map(|_| rng.r#gen()).collect();
                let at = at.min(bytes.len());
                bytes.splice(at..at, run);
            }
            4 => {
                let end = (at + rng.gen_range(1..64)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            5 => {
                let end = (at + rng.gen_range(1..64)).min(bytes.len());
                let run = bytes[at.min(end)..end].to_vec();
                bytes.splice(at.min(end)..at.min(end), run);
            }
            _ => {
                // A length or count field made huge (4 little-endian bytes).
                let end = (at + 4).min(bytes.len());
                for b in &mut bytes[at.min(end)..end] {
                    *b = 0xff;
                }
            }
        }
    }
    bytes
}

/// What a parser made of one input: its error message, if any.
type Outcome = Result<(), String>;

/// Feeds `iterations` mutations of `good` (written to `file` each time) to `parse`; fails
/// the test on a panic or on an error that does not name the file.
fn screen(name: &str, good: &[u8], file: &Path, parse: &dyn Fn(&Path) -> Outcome) {
    // DICOM gets fewer by default: a damaged length field makes the DICOM reader allocate
    // the length it declares (gigabytes, seconds per file), a known open problem.
    let default = if name.ends_with(".dcm") { 30 } else { 150 };
    screen_n(
        name,
        good,
        file,
        parse,
        env_or("HOSTILE_ITERATIONS", default),
    );
}

fn screen_n(
    name: &str,
    good: &[u8],
    file: &Path,
    parse: &dyn Fn(&Path) -> Outcome,
    iterations: usize,
) {
    let seed: u64 = env_or("HOSTILE_SEED", 19);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ name.bytes().map(u64::from).sum::<u64>());
    std::fs::write(file, good).unwrap();
    assert_eq!(parse(file), Ok(()), "{name}: the good input must parse");
    let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
    let (mut errors, mut slow, mut slowest) = (0, 0, Duration::ZERO);
    for i in 0..iterations {
        let bytes = mutate(good, &mut rng);
        std::fs::write(file, &bytes).unwrap();
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| parse(file)));
        let took = started.elapsed();
        slowest = slowest.max(took);
        if took > SLOW {
            slow += 1;
            keep(&format!("slow-{seed}-{i}-{file_name}"), &bytes);
        }
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                errors += 1;
                assert!(
                    message.contains(&file_name),
                    "{name} #{i}: the error does not name {file_name}: {message}"
                );
            }
            Err(_) => {
                let kept = keep(&format!("{seed}-{i}-{file_name}"), &bytes);
                panic!(
                    "{name} #{i} (seed {seed}) panicked; input kept in {}",
                    kept.display()
                );
            }
        }
    }
    println!(
        "{name}: {iterations} mutations, {errors} refused, {} accepted, {slow} over {SLOW:?} (kept in target/tmp/hostile), slowest {slowest:?}",
        iterations - errors
    );
}

/// A parse slower than this keeps its input (see [`keep`]) and is reported.
const SLOW: Duration = Duration::from_secs(1);

/// Keeps an input beyond the temp folder (`target/tmp/hostile/`), to become a regression
/// input.
fn keep(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn text<E: std::fmt::Display>(result: Result<impl Sized, E>) -> Outcome {
    result.map(|_| ()).map_err(|e| e.to_string())
}

/// A project with one run whose files are good, to mutate one by one.
fn run_fixture(dir: &Path) -> RunDir {
    let config = transfer_workbench::train::TrainConfig::default();
    let split =
        serde_json::json!({"classes": ["a", "b"], "train": ["a/1.png"], "val": ["b/2.png"]});
    let run = RunDir::create(dir, &config, &split).unwrap();
    let state = transfer_workbench::train::run::CheckpointState {
        epochs_done: 1,
        ..Default::default()
    };
    let tensors = vec![("w".to_owned(), Tensor::from_slice(&[1.0f32, 2.0, 3.0]))];
    run.save_checkpoint(CheckpointKind::Last, &tensors, &state)
        .unwrap();
    RunStatus::new(
        &run,
        &config,
        transfer_workbench::train::status::RunState::Stopped,
        1,
        None,
    )
    .save(&run)
    .unwrap();
    run
}

#[test]
fn project_and_run_files_refuse_damage_by_name() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let project_file = dir.join("project.ron");
    transfer_workbench::project::save_project(
        dir,
        &transfer_workbench::project::Project {
            name: "hostile".into(),
            training: Some(Default::default()),
            ..Default::default()
        },
    )
    .unwrap();
    let good = std::fs::read(&project_file).unwrap();
    screen("project.ron", &good, &project_file, &|_| {
        text(load_project(dir))
    });

    let run = run_fixture(dir);
    let id = run.id.clone();
    for (name, parse) in [
        (
            "config.ron",
            &(|_: &Path| text(RunDir::open(dir, &id))) as &dyn Fn(&Path) -> Outcome,
        ),
        ("split.json", &|_: &Path| text(run.read_split())),
        ("status.json", &|_: &Path| text(RunStatus::load(&run))),
        ("checkpoints/last.safetensors", &|_: &Path| {
            text(run.load_checkpoint(CheckpointKind::Last))
        }),
        ("checkpoints/last.json", &|_: &Path| {
            text(run.load_checkpoint_state(CheckpointKind::Last))
        }),
    ] {
        let file = run.dir.join(name);
        let good = std::fs::read(&file).unwrap();
        screen(name, &good, &file, parse);
        std::fs::write(&file, &good).unwrap();
    }

    // History: one good record per line; a torn last line is skipped, not refused.
    let history = run.dir.join("history.jsonl");
    let record = r#"{"epoch":0,"global_step":2,"lr":0.001,"train":{"loss":0.5,"accuracy":0.75},"validation":{"loss":0.6,"accuracy":0.5},"duration_secs":1.5}"#;
    let good = format!(
        "{record}\n{}\n",
        record.replace("\"epoch\":0", "\"epoch\":1")
    );
    screen("history.jsonl", good.as_bytes(), &history, &|_| {
        text(run.read_history())
    });

    let split_dir = dir.join("split");
    std::fs::create_dir_all(&split_dir).unwrap();
    let items: Vec<_> = (0..12)
        .map(|i| transfer_workbench::data::split::SplitItem {
            rel_path: format!("c{}/{i}.png", i % 2),
            label: i % 2,
            group: None,
            fixed: None,
            content_hash: Some(format!("{i:08x}")),
        })
        .collect();
    let frozen = FrozenSplit::compute(&items, Default::default(), 3).unwrap();
    let path = frozen.save(&split_dir).unwrap();
    let good = std::fs::read(&path).unwrap();
    screen("split.ron", &good, &path, &|_| {
        text(FrozenSplit::load(&split_dir))
    });
}

#[test]
fn manifests_refuse_damage_by_name() {
    let temp = tempfile::tempdir().unwrap();
    for (name, delimiter) in [("manifest.csv", ','), ("manifest.tsv", '\t')] {
        let mut good = format!("path{delimiter}label{delimiter}group{delimiter}split\n");
        for i in 0..8 {
            let image = temp.path().join(format!("{i}.png"));
            RgbImage::new(4, 4).save(&image).unwrap();
            good.push_str(&format!(
                "{i}.png{delimiter}class {}{delimiter}g{}{delimiter}{}\n",
                i % 2,
                i / 2,
                ["train", "val"][i % 2]
            ));
        }
        let file = temp.path().join(name);
        screen(name, good.as_bytes(), &file, &|file| {
            text(list_manifest(file))
        });
    }
}

/// Small encodings of a real photo (a crop, so that mutations reach headers often).
fn image_inputs() -> Vec<(String, Vec<u8>)> {
    let samples = transfer_workbench::assets::assets_dir().join("samples");
    let photo = image::open(samples.join("photos/chelsea.png"))
        .map(|i| i.to_rgb8())
        .unwrap_or_else(|_| RgbImage::from_fn(48, 40, |x, y| image::Rgb([x as u8, y as u8, 90])));
    let crop = image::imageops::crop_imm(&photo, 0, 0, 48, 40).to_image();
    let mut inputs = Vec::new();
    for (ext, format) in [
        ("png", ImageFormat::Png),
        ("jpg", ImageFormat::Jpeg),
        ("tif", ImageFormat::Tiff),
        ("bmp", ImageFormat::Bmp),
        ("webp", ImageFormat::WebP),
    ] {
        let mut bytes = std::io::Cursor::new(Vec::new());
        crop.write_to(&mut bytes, format).unwrap();
        inputs.push((format!("image.{ext}"), bytes.into_inner()));
    }
    let gray16 = image::ImageBuffer::<image::Luma<u16>, _>::from_fn(24, 20, |x, y| {
        image::Luma([(x * 2000 + y * 30) as u16])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    gray16.write_to(&mut bytes, ImageFormat::Png).unwrap();
    inputs.push(("gray16.png".into(), bytes.into_inner()));
    let dicom = samples.join("dicom");
    for name in ["MR_small.dcm", "MR_small_RLE.dcm", "SC_rgb_jpeg_dcmtk.dcm"] {
        match std::fs::read(dicom.join(name)) {
            Ok(bytes) => inputs.push((name.to_owned(), bytes)),
            Err(e) => println!("skipped {name}: {e} (run ./workbench.sh setup for the samples)"),
        }
    }
    inputs
}

#[test]
fn image_decoding_refuses_damage_by_name() {
    let temp = tempfile::tempdir().unwrap();
    for (name, good) in image_inputs() {
        let file: PathBuf = temp.path().join(&name);
        screen(&name, &good, &file, &|file| {
            let bytes = std::fs::read(file).map_err(|e| e.to_string())?;
            text(decode_bytes(&bytes, file))
        });
    }
}

/// Every input that once crashed a parser (`tests/fixtures/hostile/`) is refused by name.
#[test]
fn inputs_that_once_crashed_a_decoder_are_refused_by_name() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let err = decode_bytes(&bytes, &path).err().map(|e| e.to_string());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            err.as_deref().is_some_and(|e| e.contains(&name)),
            "{name}: {err:?}"
        );
        seen += 1;
    }
    assert!(seen >= 1, "no inputs in {}", dir.display());
}

/// CRC-32 (IEEE) as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    let mut covered = kind.to_vec();
    covered.extend_from_slice(data);
    chunk.extend_from_slice(&crc32(&covered).to_be_bytes());
    chunk
}

/// A well-formed 100-byte PNG that declares 100,000 x 100,000 RGB pixels (30 GB decoded):
/// found by fuzzing (the app allocated what the header declared and the process died).
/// It is refused by name before anything is allocated; so is a DICOM-sized claim.
#[test]
fn a_small_png_declaring_a_huge_image_is_refused_before_decoding() {
    let mut ihdr = 100_000u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(png_chunk(b"IHDR", &ihdr));
    png.extend(png_chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    png.extend(png_chunk(b"IEND", &[]));
    let path = Path::new("bomb.png");
    let err = decode_bytes(&png, path).expect_err("refused").to_string();
    assert!(err.contains("bomb.png"), "{err}");
    assert!(err.contains("100000 x 100000"), "{err}");
}
