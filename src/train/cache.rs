//! The linear probe's cache of frozen-backbone embeddings: one `.safetensors` file per
//! backbone + weights + input size + split contents, holding `embeddings` `[N, D]` and
//! `labels` `[N]` in the split's sample order. Written atomically; reused across epochs
//! and runs. The cache only saves time: when it cannot be stored (a full disk, a read-only
//! folder) training goes on with the embeddings in memory and says why.

use std::path::{Path, PathBuf};

use tch::{Device, Tensor};

use super::TrainError;
use super::config::{TrainConfig, WeightsSpec};
use super::source::{BatchSource, Split};

/// Embeddings of one split and where they are stored.
#[derive(Debug)]
pub struct CachedEmbeddings {
    /// `[N, D]` float on the CPU: pooled embeddings, or every feature map flattened
    /// (detection).
    pub embeddings: Tensor,
    /// `[N]` int64 class indices, or `[N, M, 6]` box targets (detection).
    pub labels: Tensor,
    /// The cache file.
    pub path: PathBuf,
    /// Whether the file already existed.
    pub reused: bool,
    /// Why the computed embeddings could not be stored (naming the file), if they could not.
    pub not_stored: Option<String>,
}

/// The cache key of `split` for this configuration and source, with embeddings computed in
/// bfloat16 when `bf16`.
pub fn cache_key(
    config: &TrainConfig,
    source: &dyn BatchSource,
    split: Split,
    bf16: bool,
) -> Result<String, TrainError> {
    let weights = match &config.weights {
        // Shipped weights keep their key; downloaded catalogue weights are named by their
        // file, so another variant downloaded later does not reuse these embeddings.
        WeightsSpec::Pretrained => crate::model::backbone::known_backbones()
            .into_iter()
            .find(|info| info.name == config.backbone && info.pretrained.is_none())
            .and_then(|info| {
                crate::model::load::pretrained_path(&info, false, &crate::assets::assets_dir()).ok()
            })
            .and_then(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
            .map_or_else(
                || "pretrained".to_owned(),
                |file| format!("pretrained:{file}"),
            ),
        // Random weights depend on the seed that initialised them.
        WeightsSpec::Random => format!("random:{}", config.seed),
        WeightsSpec::File(path) => {
            let bytes =
                std::fs::read(path).map_err(TrainError::io("read the weights file", path))?;
            format!("file:{}", blake3::hash(&bytes).to_hex())
        }
    };
    let precision = if bf16 {
        crate::model::precision::BF16_RECIPE
    } else {
        "f32"
    };
    let mut text = format!(
        "{}\n{}\n{}\n{}\n{precision}",
        config.backbone,
        weights,
        config.input_size_px,
        source.fingerprint(split)
    );
    // Detection caches the feature maps its head reads, which depend on the head;
    // classification keys stay as they were (no other task trains on a frozen backbone).
    let task = match config.task {
        crate::task::TaskKind::Detection => {
            let head = config.detector.label();
            text.push_str(&format!("\ndetection\n{head}"));
            format!("-detection-{head}")
        }
        _ => String::new(),
    };
    let hash = blake3::hash(text.as_bytes()).to_hex();
    Ok(format!(
        "{}-{}px{task}-{}-{}",
        config.backbone,
        config.input_size_px,
        split.name(),
        &hash.as_str()[..16]
    ))
}

/// Reads the cached embeddings under `dir` for `key`, or computes them with `compute`
/// (embeddings, labels) and stores them. `compute` returns `Ok(None)` when the user stopped
/// it; then nothing is stored and the result is `Ok(None)`.
pub fn load_or_compute(
    dir: &Path,
    key: &str,
    compute: impl FnOnce() -> Result<Option<(Tensor, Tensor)>, TrainError>,
) -> Result<Option<CachedEmbeddings>, TrainError> {
    let path = dir.join(format!("{key}.safetensors"));
    if path.is_file() {
        match read_cache(&path) {
            Ok((embeddings, labels)) => {
                return Ok(Some(CachedEmbeddings {
                    embeddings,
                    labels,
                    path,
                    reused: true,
                    not_stored: None,
                }));
            }
            // A damaged cache file is recomputed, never trusted.
            Err(_) => std::fs::remove_file(&path)
                .map_err(TrainError::io("remove a damaged cache file", &path))?,
        }
    }
    let Some((embeddings, labels)) = compute()? else {
        return Ok(None);
    };
    let stored = std::fs::create_dir_all(dir).and_then(|()| {
        crate::atomic_file::write_with(&path, |tmp| {
            Tensor::write_safetensors(&[("embeddings", &embeddings), ("labels", &labels)], tmp)
                .map_err(std::io::Error::other)
        })
    });
    let not_stored = stored.err().map(|e| {
        format!(
            "the embedding cache {} could not be written ({e}); training goes on without it",
            path.display()
        )
    });
    Ok(Some(CachedEmbeddings {
        embeddings,
        labels,
        path,
        reused: false,
        not_stored,
    }))
}

fn read_cache(path: &Path) -> Result<(Tensor, Tensor), TrainError> {
    let mut embeddings = None;
    let mut labels = None;
    for (name, tensor) in Tensor::read_safetensors(path)? {
        match name.as_str() {
            "embeddings" => embeddings = Some(tensor.f_to_device(Device::Cpu)?),
            "labels" => labels = Some(tensor.f_to_device(Device::Cpu)?),
            _ => {}
        }
    }
    match (embeddings, labels) {
        (Some(e), Some(l)) if e.size().first() == l.size().first() => Ok((e, l)),
        _ => Err(TrainError::Parse {
            path: path.to_owned(),
            reason: "expected matching 'embeddings' and 'labels'".into(),
        }),
    }
}
