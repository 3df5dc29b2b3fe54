//! This process's resident memory as Linux reports it in `/proc/self/status`: the current
//! size (`VmRSS`), the peak (`VmHWM`) and resetting the peak. `None` elsewhere. Imports
//! nothing of the crate.

/// The `field` of `/proc/self/status` (`"VmRSS"`, `"VmHWM"`) in MiB.
pub fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| {
        l.strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Resets the peak (`VmHWM`) to the current size; false where the kernel refuses (Linux
/// before 4.0, or no `/proc`).
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_at_least_the_current_size_and_grows_with_a_touched_buffer() {
        if !reset_peak() {
            return; // Not Linux: nothing to read.
        }
        let before = status_mib("VmHWM").unwrap();
        assert!(before >= status_mib("VmRSS").unwrap() - 1.0);
        let buffer = vec![1u8; 64 << 20];
        assert!(buffer.iter().step_by(4096).all(|&b| b == 1));
        let after = status_mib("VmHWM").unwrap();
        assert!(after - before > 48.0, "{before} -> {after}");
    }
}
