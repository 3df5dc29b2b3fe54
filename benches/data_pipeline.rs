//! Data-pipeline benchmark (not a timed test): the same JPEGs decoded, random-resized-cropped
//! to 224, flipped, brightness/contrast-jittered and normalised by this crate's loader (two
//! rayon threads) and by torch.utils.data.DataLoader (two workers, PIL + torchvision), in one
//! run. Prints images/s for both and the ratio.
//!
//! Run: `cargo bench --bench data_pipeline`. Images: the 16 pneumonia JPEGs of the asset
//! cache repeated to 256 items, or 256 generated 500x400 JPEGs when the cache is absent.
//! Python: `$TW_PYTHON`, else `~/.cache/transfer-workbench/venv/bin/python`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use transfer_workbench::data::augment::AugmentConfig;
use transfer_workbench::data::cache::ImageCache;
use transfer_workbench::data::loader::{BatchLoader, LoaderConfig, LoaderItem};
use transfer_workbench::model::Normalization;

const ITEMS: usize = 256;
const BATCH: usize = 32;
const EPOCHS: u64 = 2;
const WORKERS: usize = 2;

fn main() -> Result<()> {
    let home = PathBuf::from(std::env::var("HOME").unwrap_or_default());
    let scratch = tempfile::tempdir()?;
    let paths = corpus(&home, scratch.path())?;
    let items: Vec<LoaderItem> = paths
        .iter()
        .enumerate()
        .map(|(i, path)| LoaderItem {
            id: format!("{i}"),
            path: path.clone(),
            label: (i % 2) as i64,
            mask_path: None,
            boxes: None,
        })
        .collect();
    println!(
        "{} JPEG items, batch {BATCH}, {EPOCHS} timed epochs after one warm-up",
        items.len()
    );

    let rust = run_rust(&items, None)?;
    println!(
        "this pipeline ({WORKERS} rayon threads, no cache): {:.1} images/s, {:.2} ms CPU per image",
        rust.images_per_s, rust.cpu_ms_per_image
    );
    let cached = run_rust(&items, Some(Arc::new(ImageCache::new(2 << 30))))?;
    println!(
        "this pipeline ({WORKERS} rayon threads, warm cache): {:.1} images/s, {:.2} ms CPU per image",
        cached.images_per_s, cached.cpu_ms_per_image
    );

    // A trainer whose step takes 1.5x the time a batch needs: after the first batch it
    // should never wait, because the next batch is prepared while it works.
    let step = Duration::from_secs_f64(1.5 * BATCH as f64 / rust.images_per_s);
    let (first, rest, batches) = consumer_waits(&items, step)?;
    println!(
        "consumer busy {:.0} ms per batch: waited {:.3} s for the first batch, {:.3} s for the other {batches}",
        step.as_secs_f64() * 1000.0,
        first.as_secs_f64(),
        rest.as_secs_f64()
    );

    let list = scratch.path().join("images.txt");
    let lines: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    std::fs::write(&list, lines.join("\n"))?;
    let torch = run_torch(&home, &list)?;
    println!(
        "torch DataLoader ({WORKERS} workers, PIL + torchvision): {:.1} images/s, {:.2} ms CPU per image",
        torch.images_per_s, torch.cpu_ms_per_image
    );
    println!(
        "ratio, images/s (no cache / DataLoader): {:.2}x",
        rust.images_per_s / torch.images_per_s
    );
    println!(
        "ratio, CPU per image (DataLoader / no cache): {:.2}x",
        torch.cpu_ms_per_image / rust.cpu_ms_per_image
    );
    println!(
        "ratio, images/s (warm cache / DataLoader): {:.2}x",
        cached.images_per_s / torch.images_per_s
    );
    Ok(())
}

/// Throughput and CPU cost of one side.
struct Measured {
    images_per_s: f64,
    cpu_ms_per_image: f64,
}

/// User + system CPU seconds of this process (all threads), from /proc (Linux).
fn process_cpu_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> {
        Ok(fields
            .get(i)
            .context("short /proc/self/stat")?
            .parse::<f64>()?)
    };
    // utime and stime, in clock ticks (100 per second on Linux).
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// The asset cache's pneumonia JPEGs repeated to `ITEMS`, or generated JPEGs.
fn corpus(home: &Path, scratch: &Path) -> Result<Vec<PathBuf>> {
    let root = home.join(".cache/transfer-workbench/assets/data/pneumonia");
    let mut found: Vec<PathBuf> = ["NORMAL", "PNEUMONIA"]
        .iter()
        .filter_map(|class| std::fs::read_dir(root.join(class)).ok())
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jpeg" || e == "jpg"))
        .collect();
    found.sort();
    if found.is_empty() {
        println!(
            "pneumonia JPEGs not found under {}: generating {ITEMS}",
            root.display()
        );
        for i in 0..ITEMS {
            let path = scratch.join(format!("generated {i}.jpg"));
            image::RgbImage::from_fn(500, 400, |x, y| {
                let v = ((x * 7 + y * 3 + i as u32 * 13) % 256) as u8;
                image::Rgb([v, v.wrapping_mul(3), 255 - v])
            })
            .save(&path)?;
            found.push(path);
        }
    }
    Ok(found.iter().cycle().take(ITEMS).cloned().collect())
}

/// One epoch without cache, consuming each batch for `step`; returns the waits for the first
/// batch and for all others, and the number of other batches.
fn consumer_waits(items: &[LoaderItem], step: Duration) -> Result<(Duration, Duration, usize)> {
    let loader = BatchLoader::new(items.to_vec(), bench_config(), None)?;
    let mut batches = loader.epoch(0)?;
    batches.next().context("no batch")?;
    let first = batches.waited();
    let mut others = 0;
    loop {
        std::thread::sleep(step); // the training step on the batch just received
        if batches.next().is_none() {
            break;
        }
        others += 1;
    }
    Ok((first, batches.waited() - first, others))
}

/// The pipeline the DataLoader script mirrors.
fn bench_config() -> LoaderConfig {
    let augment = AugmentConfig {
        hflip_prob: 0.5,
        vflip_prob: 0.0,
        rot90_prob: 0.0,
        crop_scale: [0.08, 1.0],
        crop_ratio: [3.0 / 4.0, 4.0 / 3.0],
        rotation_max_deg: 0.0,
        brightness: 0.2,
        contrast: 0.2,
        gamma: 0.0,
    };
    let mut config = LoaderConfig::train(224, BATCH, Normalization::IMAGENET, augment);
    config.threads = WORKERS;
    config
}

fn run_rust(items: &[LoaderItem], cache: Option<Arc<ImageCache>>) -> Result<Measured> {
    let loader = BatchLoader::new(items.to_vec(), bench_config(), cache)?;
    let mut checksum = 0.0f32;
    for batch in loader.epoch(0)? {
        checksum += batch.images.first().copied().unwrap_or_default();
    }
    let cpu_start = process_cpu_seconds()?;
    let start = Instant::now();
    let mut count = 0usize;
    let mut waited = Duration::ZERO;
    for epoch in 1..=EPOCHS {
        let mut batches = loader.epoch(epoch)?;
        for batch in batches.by_ref() {
            count += batch.len();
            checksum += batch.images.first().copied().unwrap_or_default();
        }
        waited += batches.waited();
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds()? - cpu_start;
    if !loader.skipped().is_empty() {
        bail!("files were skipped: {:?}", loader.skipped());
    }
    println!(
        "  ({count} images in {seconds:.2} s, consumer waited {:.2} s, checksum {checksum:.3})",
        waited.as_secs_f64()
    );
    Ok(Measured {
        images_per_s: count as f64 / seconds,
        cpu_ms_per_image: 1000.0 * cpu / count as f64,
    })
}

fn run_torch(home: &Path, list: &Path) -> Result<Measured> {
    let python = std::env::var_os("TW_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cache/transfer-workbench/venv/bin/python"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/torch_dataloader.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(list)
        .args([
            "--workers",
            &WORKERS.to_string(),
            "--batch",
            &BATCH.to_string(),
        ])
        .args(["--epochs", &EPOCHS.to_string()])
        .output()
        .with_context(|| format!("could not run {}", python.display()))?;
    if !output.status.success() {
        bail!(
            "the DataLoader benchmark failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let parsed: serde_json::Value =
        serde_json::from_str(line).with_context(|| format!("unexpected output: {stdout}"))?;
    let field = |name: &str| {
        parsed[name]
            .as_f64()
            .with_context(|| format!("no {name} in: {line}"))
    };
    Ok(Measured {
        images_per_s: field("images_per_s")?,
        cpu_ms_per_image: field("cpu_ms_per_image")?,
    })
}
