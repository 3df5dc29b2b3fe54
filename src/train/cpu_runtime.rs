//! Process-wide settings for libtorch's CPU work: the intra-op thread count and glibc's
//! allocator behaviour.
//!
//! libtorch's CPU allocator takes every tensor from `malloc`. glibc serves the large blocks
//! of a training step (activations of tens to hundreds of MB) with fresh `mmap`s and returns
//! them on `free`, so every step page-faults its whole working set in again and the kernel
//! zeroes it: measured here with PyTorch's own MobileNetV2 training script (224 px, batch 32,
//! 2 threads), that is a quarter to a third of the step time. Keeping freed memory in the
//! heap for reuse (no `mmap` for large blocks, no trimming) removes those faults; the price
//! is that the process keeps its peak memory until it exits, as GPU caching allocators do.
//! Set `TRANSFER_WORKBENCH_SYSTEM_MALLOC=1` to keep glibc's defaults.

use std::sync::Once;

/// Environment variable that keeps glibc's default allocator behaviour when set to `1`.
pub const SYSTEM_MALLOC_ENV: &str = "TRANSFER_WORKBENCH_SYSTEM_MALLOC";

/// Sets libtorch's intra-op thread count and, once per process, tunes the allocator for
/// tensor work (see the module documentation). Called by every job before it builds a model.
pub fn prepare_cpu(threads: usize) {
    tch::set_num_threads(threads.max(1) as i32);
    tune_allocator();
}

/// Tunes the allocator for tensor work once per process (see the module documentation),
/// unless [`SYSTEM_MALLOC_ENV`] is `1`.
pub fn tune_allocator() {
    static TUNE: Once = Once::new();
    TUNE.call_once(|| {
        if std::env::var(SYSTEM_MALLOC_ENV).is_ok_and(|v| v == "1") {
            return;
        }
        keep_freed_memory();
    });
}

/// Whether [`prepare_cpu`] tunes the allocator on this platform.
pub const fn tunes_allocator() -> bool {
    cfg!(all(target_os = "linux", target_env = "gnu"))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // SAFETY: `mallopt` only changes glibc's malloc parameters under the allocator's own
    // lock; it takes plain integers and is safe to call from any thread at any time.
    unsafe {
        // Serve every block from the heap, never from a fresh mapping...
        libc::mallopt(libc::M_MMAP_MAX, 0);
        // ...and never give freed heap memory back to the kernel, so it is reused.
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}
