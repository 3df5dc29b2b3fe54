//! Building a backbone and filling it with weights in one step, for the commands and workers.

use std::path::PathBuf;

use tch::{Device, nn::VarStore};

use super::weights::WeightsError;
use super::{Backbone, ImportReport, ModelError, build_backbone, import_weights};

/// Where a backbone's weights come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WeightsChoice {
    /// The shipped pretrained weights (strict: every key must match).
    Pretrained,
    /// A user's file (`.safetensors` or a PyTorch zip state dict); mismatches are reported.
    File(PathBuf),
    /// Random initialisation ("from scratch").
    Random,
}

/// A backbone with its variables and the report of the weight import.
pub struct LoadedBackbone {
    /// Owns the variables.
    pub vs: VarStore,
    /// The network.
    pub model: Box<dyn Backbone>,
    /// What the import did; `None` for random init.
    pub report: Option<ImportReport>,
}

/// Builds `name` on `device` and loads the chosen weights.
pub fn load_backbone(
    name: &str,
    with_head: bool,
    weights: &WeightsChoice,
    device: Device,
) -> Result<LoadedBackbone, ModelError> {
    let vs = VarStore::new(device);
    let model = build_backbone(name, vs.root(), with_head)?;
    let report = match weights {
        WeightsChoice::Random => None,
        WeightsChoice::Pretrained => {
            let path = pretrained_path(model.info(), with_head, &crate::assets::assets_dir())?;
            Some(import_pretrained(&vs, &path, name, with_head)?)
        }
        WeightsChoice::File(path) => Some(import_weights(&vs, path, false)?),
    };
    Ok(LoadedBackbone { vs, model, report })
}

/// The file `pretrained` means for `info` under the asset folder `assets`: the shipped
/// weights, else downloaded catalogue weights (`weights get`, or the GUI's Download button;
/// [`super::catalogue::present_variant`]), which include the ImageNet head.
pub fn pretrained_path(
    info: &super::BackboneInfo,
    with_head: bool,
    assets: &std::path::Path,
) -> Result<PathBuf, ModelError> {
    let name = info.name;
    match &info.pretrained {
        Some(source) => {
            if with_head && source.classes == 0 {
                return Err(ModelError::NoPretrainedHead(name.to_owned()));
            }
            Ok(crate::assets::pretrained_weights(source.file_stem)?)
        }
        None => super::catalogue::present_variant(info, assets)
            .ok_or_else(|| ModelError::NoPretrained(name.to_owned())),
    }
}

/// Strict import of shipped weights: every model key must be filled; the file's classifier
/// head may go unused only when the model was built without it.
fn import_pretrained(
    vs: &VarStore,
    path: &std::path::Path,
    name: &str,
    with_head: bool,
) -> Result<ImportReport, ModelError> {
    if with_head {
        return Ok(import_weights(vs, path, true)?);
    }
    let head_keys = head_keys(name)?;
    let report = import_weights(vs, path, false)?;
    // A detector's file also holds its detection heads, which a backbone leaves unused.
    let unexpected = report
        .unused
        .iter()
        .any(|k| !head_keys.contains(k) && !k.starts_with(super::yolo_head::COCO_HEAD_PREFIX));
    if !report.missing.is_empty() || !report.mis_shaped.is_empty() || unexpected {
        return Err(WeightsError::Mismatch {
            path: path.to_owned(),
            summary: report.summary(),
        }
        .into());
    }
    Ok(report)
}

/// The keys that the classifier head adds to a backbone.
fn head_keys(name: &str) -> Result<std::collections::HashSet<String>, ModelError> {
    let keys = |with_head: bool| -> Result<std::collections::HashSet<String>, ModelError> {
        let vs = VarStore::new(Device::Cpu);
        build_backbone(name, vs.root(), with_head)?;
        Ok(vs.variables().into_keys().collect())
    };
    let without = keys(false)?;
    Ok(keys(true)?.difference(&without).cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::backbone::known_backbones;

    #[test]
    fn pretrained_means_downloaded_catalogue_weights_when_none_are_shipped() {
        let info = known_backbones()
            .into_iter()
            .find(|b| b.name == "resnet18")
            .unwrap();
        assert!(info.pretrained.is_none());
        let assets = tempfile::tempdir().unwrap();
        let err = pretrained_path(&info, false, assets.path()).unwrap_err();
        assert!(matches!(err, ModelError::NoPretrained(_)), "{err}");
        // A converted file at the cached path, as `weights get` leaves it.
        let vs = VarStore::new(Device::Cpu);
        build_backbone("resnet18", vs.root(), true).unwrap();
        let entry = crate::model::catalogue::find("resnet18").unwrap();
        let path = crate::model::catalogue::cached_path_in(assets.path(), entry);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        vs.save(&path).unwrap();
        assert_eq!(pretrained_path(&info, false, assets.path()).unwrap(), path);
        let loaded = VarStore::new(Device::Cpu);
        build_backbone("resnet18", loaded.root(), false).unwrap();
        let report = import_pretrained(&loaded, &path, "resnet18", false).unwrap();
        assert!(report.missing.is_empty() && report.mis_shaped.is_empty());
    }
}
