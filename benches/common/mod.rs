//! Shared by the speed benchmarks: the venv Python, running a PyTorch script that prints
//! one JSON line, CPU time of this process, medians and the thread count.

#![allow(dead_code)] // Each benchmark uses a part.

pub mod probe_agreement;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// `$TW_PYTHON`, else the venv Python of the asset cache.
pub fn python() -> PathBuf {
    std::env::var_os("TW_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache/transfer-workbench/venv/bin/python"))
}

/// `$HOME`.
pub fn home() -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap_or_default())
}

/// glibc settings equal to what `train::cpu_runtime::prepare_cpu` sets with `mallopt` in our
/// process (no `mmap` for large blocks, no trimming), as environment variables, to run the
/// PyTorch side once more with the same allocator behaviour for reference.
pub const SAME_ALLOCATOR_ENV: [(&str, &str); 2] = [
    ("MALLOC_MMAP_MAX_", "0"),
    ("MALLOC_TRIM_THRESHOLD_", "2147483647"),
];

/// Runs `benches/SCRIPT` with `args` and parses the last line of its output as JSON.
pub fn run_python(script: &str, args: &[String]) -> Result<serde_json::Value> {
    run_python_with_env(script, args, &[])
}

/// [`run_python`] with extra environment variables.
pub fn run_python_with_env(
    script: &str,
    args: &[String],
    env: &[(&str, &str)],
) -> Result<serde_json::Value> {
    let python = python();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches")
        .join(script);
    let output = Command::new(&python)
        .arg(&path)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .with_context(|| format!("could not run {}", python.display()))?;
    if !output.status.success() {
        bail!(
            "{script} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("unexpected output of {script}: {stdout}"))
}

/// A number field of a JSON object.
pub fn field(value: &serde_json::Value, name: &str) -> Result<f64> {
    value[name]
        .as_f64()
        .with_context(|| format!("no {name} in: {value}"))
}

/// User + system CPU seconds of this process (all threads), from /proc (Linux; 0 elsewhere).
pub fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime, in clock ticks (100 per second on Linux).
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|t| t.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}

/// The median of `values` (the mean of the middle two for an even count; 0 when empty).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A count from environment variable `name`, else `default`.
pub fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

/// Sets our side's libtorch threads and allocator as the engine's jobs do
/// (`train::cpu_runtime::prepare_cpu`); says whether the allocator is tuned.
pub fn prepare_ours(threads: usize) -> bool {
    transfer_workbench::train::cpu_runtime::prepare_cpu(threads);
    transfer_workbench::train::cpu_runtime::tunes_allocator()
        && std::env::var(transfer_workbench::train::cpu_runtime::SYSTEM_MALLOC_ENV).as_deref()
            != Ok("1")
}

/// Intra-op threads for both sides: `$TW_THREADS`, else the physical cores (what the
/// engine uses by default).
pub fn threads() -> usize {
    env_count(
        "TW_THREADS",
        transfer_workbench::train::config::default_threads(),
    )
}
