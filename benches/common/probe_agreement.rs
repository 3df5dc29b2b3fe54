//! The embedding benchmark's task-level check of bfloat16: a linear probe (softmax regression)
//! on Fashion-MNIST embeddings, as the app's linear-probe strategy uses them. Compares the
//! probe's top-1 on bf16 embeddings with its top-1 on float32 embeddings of the same test
//! images, and the test accuracy of a probe trained on bf16 embeddings (what the app caches)
//! with one trained on float32 embeddings.

use std::path::PathBuf;

use anyhow::{Context, Result};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// Fashion-MNIST images of one manifest split with their class indices.
pub struct Labelled {
    pub paths: Vec<PathBuf>,
    pub labels: Vec<i64>,
}

/// The first `train` and `test` images of the demo Fashion-MNIST manifest's train and test
/// splits (manifest order), labels indexed by sorted class name.
pub fn fashion_mnist(train: usize, test: usize) -> Result<(Labelled, Labelled)> {
    let root = super::home().join(".cache/transfer-workbench/assets/data/fashion_mnist");
    let manifest = root.join("manifest.csv");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("no manifest: {}", manifest.display()))?;
    let rows: Vec<(&str, &str, &str)> = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cells = line.split(',');
            Some((cells.next()?, cells.next()?, cells.next()?))
        })
        .collect();
    let mut classes: Vec<&str> = rows.iter().map(|r| r.1).collect();
    classes.sort_unstable();
    classes.dedup();
    let pick = |split: &str, count: usize| {
        let mut set = Labelled {
            paths: Vec::new(),
            labels: Vec::new(),
        };
        for (path, label, _) in rows.iter().filter(|r| r.2 == split).take(count) {
            set.paths.push(root.join(path));
            set.labels
                .push(classes.binary_search(label).unwrap_or(0) as i64);
        }
        set
    };
    Ok((pick("train", train), pick("test", test)))
}

/// Softmax regression on standardised `[N, D]` f32 embeddings: full-batch Adam, fixed
/// seed and step count.
pub struct Probe {
    mean: Tensor,
    std: Tensor,
    linear: nn::Linear,
    _vs: nn::VarStore,
}

impl Probe {
    /// Fits the probe to `embeddings` with class indices `labels` (`classes` classes).
    pub fn fit(embeddings: &Tensor, labels: &[i64], classes: i64) -> Result<Self> {
        tch::manual_seed(0);
        let mean = embeddings.f_mean_dim(0, true, Kind::Float)?;
        let std = embeddings.f_std_dim(0, true, true)?.f_clamp_min(1e-6)?;
        let x = embeddings.f_sub(&mean)?.f_div(&std)?;
        let y = Tensor::f_from_slice(labels)?;
        let vs = nn::VarStore::new(Device::Cpu);
        let dim = embeddings.size()[1];
        let linear = nn::linear(vs.root(), dim, classes, Default::default());
        let mut opt = nn::Adam::default().wd(1e-4).build(&vs, 1e-2)?;
        for _ in 0..300 {
            let loss = linear.forward(&x).cross_entropy_for_logits(&y);
            opt.backward_step(&loss);
        }
        Ok(Self {
            mean,
            std,
            linear,
            _vs: vs,
        })
    }

    /// The top-1 class of each row of `embeddings`.
    pub fn predict(&self, embeddings: &Tensor) -> Result<Vec<i64>> {
        let x = embeddings.f_sub(&self.mean)?.f_div(&self.std)?;
        let logits = tch::no_grad(|| self.linear.forward(&x));
        Ok(Vec::<i64>::try_from(&logits.f_argmax(1, false)?)?)
    }
}

/// The share of equal entries.
pub fn share_equal(a: &[i64], b: &[i64]) -> f64 {
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    same as f64 / a.len().max(1) as f64
}
