//! Memory at scale (not a timed test): a generated folder of 100,000 small images (10
//! classes) is scanned as the Dataset tab scans it, then browsed tile by tile through the
//! Dataset tab's bounded thumbnail cache (every image rendered once, a page of 60 tiles a
//! frame, textures made in a headless egui context). Prints the scan rate, the resident
//! memory after each phase and the peak, and fails when the peak passes the stated bound.
//!
//! Run: `cargo test --bench scale_memory` (the dev profile, dependencies optimised).
//! `TW_IMAGES` changes the count (default 100000); `TW_SCALE_DIR` keeps the generated folder
//! there for later runs (default: a temp folder, removed at the end).
//! Linux only (reads /proc/self/status).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use transfer_workbench::data::scan::{ScanOptions, scan};
use transfer_workbench::data::source::DatasetSource;
use transfer_workbench::runtime::thumbnails::{
    DEFAULT_CAPACITY, ThumbnailCache, ThumbnailKey, ThumbnailSize, render_job,
};

/// The stated bound on the peak resident memory of scanning and browsing 100,000 images,
/// in MiB: the linked libtorch and the app's libraries take about 300 of it.
const PEAK_BOUND_MIB: f64 = 1024.0;

const CLASSES: usize = 10;
const TILES_PER_FRAME: usize = 60;

fn main() -> Result<()> {
    let count: usize = std::env::var("TW_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let temp;
    let dir = match std::env::var_os("TW_SCALE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().join("images")
        }
    };
    let start_rss = memory("VmRSS")?;
    let started = Instant::now();
    let made = generate(&dir, count)?;
    println!(
        "{count} images in {} ({} written in {:.1} s)",
        dir.display(),
        made,
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let source = DatasetSource::detect(&dir)?;
    let (index, report) = scan(&source, &ScanOptions::default(), |_, _| {})?;
    let scan_secs = started.elapsed().as_secs_f64();
    if index.items.len() != count {
        bail!("the scan found {} of {count} images", index.items.len());
    }
    println!(
        "scan: {} images, {} classes, {} report entries in {scan_secs:.1} s ({:.0} images/s)",
        index.items.len(),
        index.classes.len(),
        report.issues.len(),
        count as f64 / scan_secs
    );
    let after_scan = memory("VmRSS")?;

    let started = Instant::now();
    let ctx = egui::Context::default();
    let mut cache = ThumbnailCache::default();
    let keys: Vec<ThumbnailKey> = index
        .items
        .iter()
        .map(|item| ThumbnailKey {
            image: index.image_path(item),
            mask: None,
            size: ThumbnailSize::Tile,
        })
        .collect();
    let mut rendered = 0;
    for page in keys.chunks(TILES_PER_FRAME) {
        let mut jobs = Vec::new();
        let mut output = ctx.run_pass(egui::RawInput::default(), |_| {
            cache.begin_frame();
            for key in page {
                let _ = cache.get(key);
            }
        });
        // The textures of the last page are "uploaded" (this is headless: dropped).
        output.textures_delta.clear();
        cache.dispatch(|job| {
            jobs.push(job);
            true
        });
        let done: Vec<_> = jobs.par_iter().map(render_job).collect();
        rendered += done.len();
        for done in done {
            cache.insert(&ctx, done);
        }
    }
    let browse_secs = started.elapsed().as_secs_f64();
    println!(
        "browse: {rendered} tiles rendered in {browse_secs:.1} s ({:.0} tiles/s), {} kept (capacity {DEFAULT_CAPACITY})",
        rendered as f64 / browse_secs,
        cache.len()
    );
    let after_browse = memory("VmRSS")?;
    let peak = memory("VmHWM")?;
    println!(
        "resident memory: {start_rss:.0} MiB at start, {after_scan:.0} after the scan, \
         {after_browse:.0} after browsing; peak {peak:.0} MiB (bound {PEAK_BOUND_MIB:.0} MiB)"
    );
    drop((index, report, cache));
    if peak > PEAK_BOUND_MIB {
        bail!("the peak resident memory {peak:.0} MiB passes the bound {PEAK_BOUND_MIB:.0} MiB");
    }
    Ok(())
}

/// Writes `count` distinct 24x20 PNGs into `CLASSES` class folders of `dir` (kept when the
/// folder already holds them); returns how many were written.
fn generate(dir: &Path, count: usize) -> Result<usize> {
    let path_of = |i: usize| {
        dir.join(format!("class{}", i % CLASSES))
            .join(format!("{i:06}.png"))
    };
    for class in 0..CLASSES {
        std::fs::create_dir_all(dir.join(format!("class{class}")))?;
    }
    let missing: Vec<usize> = (0..count).filter(|&i| !path_of(i).is_file()).collect();
    missing.par_iter().try_for_each(|&i| {
        let seed = i as u32;
        image::RgbImage::from_fn(24, 20, |x, y| {
            let v = seed
                .wrapping_mul(2_654_435_761)
                .wrapping_add(x * 31 + y * 17);
            image::Rgb([(v >> 8) as u8, (v >> 16) as u8, (seed % 251) as u8])
        })
        .save(path_of(i))
        .with_context(|| format!("write {}", path_of(i).display()))
    })?;
    Ok(missing.len())
}

/// A memory figure of this process from /proc/self/status, in MiB.
fn memory(field: &str) -> Result<f64> {
    transfer_workbench::process_memory::status_mib(field)
        .with_context(|| format!("no {field} in /proc/self/status"))
}
