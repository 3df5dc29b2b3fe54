//! A seeded model gets the same initial weights whatever other threads build meanwhile: the
//! window measures backbone facts (random weights) while the LR finder or a run builds its
//! network, and both draw from libtorch's one random generator.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tch::{Device, Kind};
use transfer_workbench::model::backbone::known_backbones;
use transfer_workbench::model::facts::measure_facts;
use transfer_workbench::model::{WeightsChoice, load_backbone, with_init_lock};

fn seeded_weights() -> Vec<(String, Vec<f32>)> {
    let loaded = with_init_lock(Some(7), || {
        load_backbone("resnet18", false, &WeightsChoice::Random, Device::Cpu)
    })
    .unwrap();
    let mut weights: Vec<(String, Vec<f32>)> = loaded
        .vs
        .variables()
        .into_iter()
        .map(|(name, t)| {
            let values = Vec::<f32>::try_from(t.flatten(0, -1).to_kind(Kind::Float)).unwrap();
            (name, values)
        })
        .collect();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    weights
}

#[test]
fn a_seeded_build_is_the_same_while_another_thread_builds_models() {
    let alone = seeded_weights();
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mobilenet = known_backbones()
                .into_iter()
                .find(|b| b.name == "mobilenet_v2")
                .unwrap();
            let mut built = 0;
            while !stop.load(Ordering::Relaxed) {
                measure_facts(&mobilenet).unwrap();
                built += 1;
            }
            built
        })
    };
    let crowded: Vec<_> = (0..3).map(|_| seeded_weights()).collect();
    stop.store(true, Ordering::Relaxed);
    let built = busy.join().unwrap();
    println!("{built} models built on the other thread meanwhile");
    for weights in crowded {
        assert!(weights == alone, "the seeded weights changed");
    }
}
