//! Channels-last (NHWC) memory format: the same logits as the default layout, and (ignored by
//! default; run with `--ignored --nocapture`) a timing of MobileNetV2 training steps on the
//! CPU at 64 and 224 px, batch 32, in both layouts. The measured numbers decide the default
//! of `TrainConfig::channels_last` (see `TrainConfig::use_channels_last`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::time::Instant;

use tch::{Device, Kind, Tensor};
use transfer_workbench::train::classifier::channels_last;
use transfer_workbench::train::net::Net;
use transfer_workbench::train::optim::Optimizer;
use transfer_workbench::train::{Strategy, TaskKind, TrainConfig, WeightsSpec, train_task};

fn config() -> TrainConfig {
    TrainConfig {
        backbone: "mobilenet_v2".into(),
        weights: WeightsSpec::Random,
        strategy: Strategy::FineTune,
        seed: 7,
        ..TrainConfig::default()
    }
}

#[test]
fn channels_last_gives_the_same_logits() {
    tch::set_num_threads(1);
    let images = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
    let mut plain = Net::build(&config(), 3, Device::Cpu, false).unwrap();
    let mut nhwc = Net::build(&config(), 3, Device::Cpu, true).unwrap();
    let conv = nhwc.vs().variables()["features.0.0.weight"].shallow_clone();
    assert_eq!(conv.stride()[1], 1, "channels are innermost");
    let a = tch::no_grad(|| plain.logits(&images, false, false)).unwrap();
    let b = tch::no_grad(|| nhwc.logits(&channels_last(&images).unwrap(), false, false)).unwrap();
    let diff = (a - b).abs().max().double_value(&[]);
    assert!(diff < 1e-4, "{diff}");
}

/// CPU seconds (user + system) this process has used so far (Linux; 0 elsewhere). On a
/// shared machine this is steadier than wall time.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name in parentheses: utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|t| t.parse::<f64>().ok()).sum()
    });
    ticks / 100.0
}

/// Mean wall and CPU seconds per training step (after one warm-up step) of MobileNetV2 at
/// `size_px`.
fn seconds_per_step(size_px: i64, batch: i64, nhwc: bool, steps: usize) -> (f64, f64) {
    let mut net = Net::build(&config(), 10, Device::Cpu, nhwc).unwrap();
    let mut optimizer = Optimizer::new(config().optimizer, net.param_groups(Strategy::FineTune, 0));
    let mut images = Tensor::randn([batch, 3, size_px, size_px], (Kind::Float, Device::Cpu));
    if nhwc {
        images = channels_last(&images).unwrap();
    }
    let targets = Tensor::randint(10, [batch], (Kind::Int64, Device::Cpu));
    let mut started = (Instant::now(), cpu_secs());
    for step in 0..=steps {
        if step == 1 {
            started = (Instant::now(), cpu_secs());
        }
        let logits = net.logits(&images, true, true).unwrap();
        let loss = train_task(TaskKind::Classification)
            .loss(&logits, &targets, None, 0.0)
            .unwrap();
        optimizer.zero_grad().unwrap();
        loss.backward();
        optimizer.step(1e-3).unwrap();
    }
    (
        started.0.elapsed().as_secs_f64() / steps as f64,
        (cpu_secs() - started.1) / steps as f64,
    )
}

#[test]
#[ignore = "a timing, not a check: run with --ignored --nocapture"]
fn time_channels_last_training_steps_on_the_cpu() {
    let threads: i32 = std::env::var("TW_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    tch::set_num_threads(threads);
    for (size_px, steps, pairs) in [(64, 5, 3), (224, 2, 2)] {
        for nhwc in (0..pairs).flat_map(|_| [false, true]) {
            let (wall, cpu) = seconds_per_step(size_px, 32, nhwc, steps);
            println!(
                "mobilenet_v2 {size_px} px batch 32, {threads} thread(s), {}: {wall:.3} s/step \
                 wall, {cpu:.3} s/step CPU",
                if nhwc {
                    "channels-last"
                } else {
                    "contiguous   "
                }
            );
        }
    }
}
