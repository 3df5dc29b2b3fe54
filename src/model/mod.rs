//! Backbones (one file per family, reference state-dict key names), weight import with a
//! report, and ImageNet classification with the shipped heads. No UI, no project files.

pub mod backbone;
pub mod bn_statistics;
pub mod catalogue;
pub mod convnext;
pub mod cpu_bf16;
pub mod darknet_tiny;
pub mod densenet;
pub mod det_head;
pub mod dinov2;
pub mod download;
pub mod efficientnet;
pub mod efficientnet_lite;
pub mod embed;
pub mod facts;
pub mod head;
pub mod imagenet;
pub mod inception_v3;
pub mod layers;
pub mod load;
pub mod mobilenet_v2;
pub mod mobilenet_v3;
pub mod precision;
pub mod resnet;
pub mod seg_decoder;
pub mod swin;
pub mod torch_zip;
pub mod torchscript;
pub mod vgg;
pub mod vit;
pub mod weights;
pub mod xception;
pub mod yolo_head;
pub mod zoo;

pub use backbone::{Backbone, BackboneInfo, BackboneOutput, Normalization, build_backbone};
pub use load::{LoadedBackbone, WeightsChoice, load_backbone};
pub use weights::{ImportReport, WeightsError, import_weights};

/// Runs `build` holding the process-wide lock on libtorch's random generator, seeded first
/// with `seed` when one is given.
///
/// libtorch draws random initial weights from one generator per process, so a model built
/// on one thread while another thread builds one (the window measures backbone facts while
/// the LR finder or a run builds its network) would get interleaved draws and initial
/// weights that change from one try to the next. Every builder of random weights runs
/// under this lock; a seeded build then depends on its seed alone.
pub fn with_init_lock<T>(seed: Option<u64>, build: impl FnOnce() -> T) -> T {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(seed) = seed {
        tch::manual_seed(seed as i64);
    }
    build()
}

/// Failures building or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unknown backbone '{0}' (see `transfer-workbench backbones`)")]
    UnknownBackbone(String),
    #[error(
        "backbone '{0}' has no shipped or downloaded pretrained weights: download them \
         (`transfer-workbench weights get {0}`, or Download in the Training tab) or use \
         random weights"
    )]
    NoPretrained(String),
    #[error(
        "backbone '{0}' ships a pretrained encoder without an ImageNet classifier: use it to \
         train or to embed images"
    )]
    NoPretrainedHead(String),
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Asset(#[from] crate::assets::AssetError),
    #[error("invalid {model} configuration: {reason}")]
    Config { model: String, reason: String },
    #[error("{model} cannot take a {height_px}x{width_px} px input: {reason}")]
    InputSize {
        model: String,
        height_px: i64,
        width_px: i64,
        reason: String,
    },
    #[error("TorchScript backbone: {reason}: {}", path.display())]
    TorchScript {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("libtorch error: {0}")]
    Torch(#[from] tch::TchError),
}
