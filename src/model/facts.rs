//! Measured facts of a backbone: parameter count and multiply-adds at its input size,
//! kept in the cache folder per version of the network definitions, since measuring the
//! largest (ViT-H at 518 px: a teraflop) takes seconds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor, nn::VarStore};

use super::layers::flops;
use super::{BackboneInfo, ModelError, build_backbone};

/// A backbone's facts with its measured size and cost.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BackboneFacts {
    /// The static facts.
    #[serde(flatten)]
    pub info: BackboneInfo,
    /// Parameters of the encoder (without the ImageNet head).
    pub parameters: i64,
    /// Giga multiply-adds of one encoder forward pass at `input_size_px` (torchvision's
    /// "GFLOPS" convention).
    pub gflops: f64,
    /// The precision of its frozen passes (the linear probe's embeddings) on this CPU, with
    /// the layers kept in float32 ([`super::cpu_bf16`], [`super::precision`]).
    pub frozen_pass_precision: String,
}

/// Size and cost of one backbone as the cache keeps them.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
struct Measured {
    parameters: i64,
    gflops: f64,
}

/// Where measured facts of this build's networks are kept: one file per version of
/// `src/model/` (a hash taken at build time), so a changed network is measured again.
fn cache_file(cache_root: &Path) -> PathBuf {
    cache_root
        .join("backbone-facts")
        .join(format!("{}.json", env!("MODEL_SOURCE_HASH")))
}

/// The measurements in `file`; none when it is missing or unreadable (then measured again).
fn read_cache(file: &Path) -> BTreeMap<String, Measured> {
    std::fs::read(file)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// The facts of `info`: from the cache folder's measurements of this build's networks, else
/// measured ([`measure_facts`]) and added to them. A cache that cannot be written is only
/// a cost: the facts are returned all the same.
pub fn backbone_facts(info: &BackboneInfo) -> Result<BackboneFacts, ModelError> {
    backbone_facts_in(info, &crate::assets::cache_dir())
}

/// [`backbone_facts`] with the cache under `cache_root`.
pub fn backbone_facts_in(
    info: &BackboneInfo,
    cache_root: &Path,
) -> Result<BackboneFacts, ModelError> {
    let file = cache_file(cache_root);
    let key = format!("{}@{}", info.name, info.input_size_px);
    if let Some(known) = read_cache(&file).get(&key) {
        return Ok(BackboneFacts {
            info: info.clone(),
            parameters: known.parameters,
            gflops: known.gflops,
            frozen_pass_precision: frozen_pass_precision(info.name),
        });
    }
    let facts = measure_facts(info)?;
    // Read again just before writing, so measurements of other processes are kept.
    let mut all = read_cache(&file);
    all.insert(
        key,
        Measured {
            parameters: facts.parameters,
            gflops: facts.gflops,
        },
    );
    if let (Some(dir), Ok(bytes)) = (file.parent(), serde_json::to_vec_pretty(&all)) {
        let _ = std::fs::create_dir_all(dir);
        let _ = crate::atomic_file::write(&file, &bytes);
    }
    Ok(facts)
}

/// Builds the encoder on the CPU with random weights and runs one image through it,
/// counting parameters and multiply-adds. Call from a worker or the CLI, never the UI thread.
pub fn measure_facts(info: &BackboneInfo) -> Result<BackboneFacts, ModelError> {
    let vs = VarStore::new(Device::Cpu);
    let model = super::with_init_lock(None, || build_backbone(info.name, vs.root(), false))?;
    let parameters = vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    let side = i64::from(info.input_size_px);
    let input = Tensor::f_zeros([1, 3, side, side], (Kind::Float, Device::Cpu))?;
    let (output, macs) = flops::count(|| tch::no_grad(|| model.forward_t(&input, false)));
    output?;
    Ok(BackboneFacts {
        info: info.clone(),
        parameters,
        gflops: macs as f64 * 1e-9,
        frozen_pass_precision: frozen_pass_precision(info.name),
    })
}

/// "float32", "bfloat16" or "bfloat16, float32 for ..." for `backbone`'s CPU frozen passes
/// on this machine.
pub fn frozen_pass_precision(backbone: &str) -> String {
    if !super::cpu_bf16::bf16_by_default() {
        return "float32".to_owned();
    }
    let kept: Vec<String> = super::precision::f32_paths(backbone)
        .iter()
        .map(|path| path.join("."))
        .collect();
    if kept.is_empty() {
        "bfloat16".to_owned()
    } else {
        format!("bfloat16, float32 for {}", kept.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::backbone::known_backbones;

    #[test]
    fn facts_are_measured_once_and_then_read_from_the_cache() {
        let root = tempfile::tempdir().unwrap();
        let info = known_backbones()
            .into_iter()
            .find(|b| b.name == "mobilenet_v3_small")
            .unwrap();
        let measured = backbone_facts_in(&info, root.path()).unwrap();
        assert_eq!(measured, measure_facts(&info).unwrap());
        let file = cache_file(root.path());
        let mut cached = read_cache(&file);
        assert_eq!(cached.len(), 1);
        // What the cache says is what is reported, without measuring again.
        cached.values_mut().for_each(|m| m.parameters = 7);
        std::fs::write(&file, serde_json::to_vec(&cached).unwrap()).unwrap();
        assert_eq!(backbone_facts_in(&info, root.path()).unwrap().parameters, 7);
        // A damaged cache is measured again and rewritten.
        std::fs::write(&file, b"{not json").unwrap();
        let again = backbone_facts_in(&info, root.path()).unwrap();
        assert_eq!(again.parameters, measured.parameters);
        assert_eq!(read_cache(&file).len(), 1);
    }

    #[test]
    fn mobilenet_v2_matches_the_published_size_and_cost() {
        let info = known_backbones()
            .into_iter()
            .find(|b| b.name == "mobilenet_v2")
            .unwrap();
        let facts = measure_facts(&info).unwrap();
        // torchvision: 3,504,872 parameters with the 1000-class head (1280 x 1000 + 1000),
        // 0.30 GFLOPS at 224 px.
        assert_eq!(facts.parameters, 3_504_872 - 1_281_000);
        assert!((facts.gflops - 0.30).abs() < 0.02, "{}", facts.gflops);
    }
}
