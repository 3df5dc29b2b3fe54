//! Learning-rate schedules as pure functions of the global step.

use std::f64::consts::PI;

use super::config::Schedule;

/// The factor applied to the base learning rate at `step` (0-based) of `total_steps`.
pub fn lr_factor(schedule: Schedule, step: usize, total_steps: usize) -> f64 {
    let total = total_steps.max(1) as f64;
    let t = (step as f64).min(total);
    let cosine = |from: f64, to: f64, frac: f64| {
        to + (from - to) * 0.5 * (1.0 + (PI * frac.clamp(0.0, 1.0)).cos())
    };
    match schedule {
        Schedule::Constant => 1.0,
        Schedule::CosineWarmup { warmup_fraction } => {
            let warmup = (warmup_fraction.clamp(0.0, 1.0) * total).round();
            if t < warmup {
                (t + 1.0) / warmup
            } else {
                cosine(1.0, 0.0, (t - warmup) / (total - warmup).max(1.0))
            }
        }
        Schedule::OneCycle { pct_start } => {
            let up = (pct_start.clamp(0.0, 1.0) * total).max(1.0);
            let (initial, final_) = (1.0 / 25.0, 1.0 / 25.0 / 1e4);
            if t < up {
                cosine(initial, 1.0, t / up)
            } else {
                cosine(1.0, final_, (t - up) / (total - up).max(1.0))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_have_the_expected_shape() {
        assert_eq!(lr_factor(Schedule::Constant, 7, 10), 1.0);
        let cw = Schedule::CosineWarmup {
            warmup_fraction: 0.1,
        };
        assert!((lr_factor(cw, 0, 100) - 0.1).abs() < 1e-9);
        assert!((lr_factor(cw, 9, 100) - 1.0).abs() < 1e-9);
        assert!((lr_factor(cw, 10, 100) - 1.0).abs() < 1e-9);
        assert!(lr_factor(cw, 99, 100) < 0.01);
        let oc = Schedule::OneCycle { pct_start: 0.3 };
        assert!((lr_factor(oc, 0, 100) - 0.04).abs() < 1e-9);
        assert!((lr_factor(oc, 30, 100) - 1.0).abs() < 1e-9);
        assert!(lr_factor(oc, 100, 100) < 1e-5);
        let peak = (0..100).map(|s| lr_factor(oc, s, 100)).fold(0.0, f64::max);
        assert!((peak - 1.0).abs() < 1e-9);
    }
}
