//! Bring-your-own backbone: a TorchScript file (`torch.jit.script` or `torch.jit.trace`, then
//! `torch.jit.save`) run through libtorch's JIT with tch's `TrainableCModule`.
//!
//! The module's parameters are registered in the caller's `VarStore` under the given path, with
//! the module's dots replaced by underscores (`features.0.weight` becomes
//! `<path>.features_0_weight`). They share storage with the module, so an optimiser built on
//! that `VarStore` fine-tunes the module, and freezing the store freezes it (parameters saved
//! with `requires_grad=False` are registered frozen). Buffers (batch-norm
//! running statistics) stay inside the module: they are updated in training mode but are not
//! in the `VarStore`. The file has no fixed name, so this backbone is not in `known_backbones`;
//! build it with [`TorchScriptBackbone::load`]. Multiply-adds cannot be counted inside the JIT
//! module, so nothing is recorded with `flops::record`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use tch::{IValue, Kind, Tensor, TrainableCModule, nn};

use super::ModelError;
use super::backbone::{Backbone, BackboneInfo, BackboneOutput, Normalization};
use super::layers::global_avg_pool;

/// Which output of the TorchScript module is the embedding.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EmbeddingOutput {
    /// The module returns a single tensor.
    Tensor,
    /// Element `i` (from 0) of a returned tuple or list.
    TupleElement(usize),
    /// Key `K` of a returned `Dict[str, Tensor]`.
    DictKey(String),
}

impl fmt::Display for EmbeddingOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmbeddingOutput::Tensor => write!(f, "the single tensor output"),
            EmbeddingOutput::TupleElement(i) => write!(f, "tuple element {i}"),
            EmbeddingOutput::DictKey(key) => write!(f, "dict key '{key}'"),
        }
    }
}

impl std::str::FromStr for EmbeddingOutput {
    type Err = String;

    /// Parses `tensor`, `tuple:N` or `dict:KEY`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once(':') {
            None if text == "tensor" => Ok(EmbeddingOutput::Tensor),
            Some(("tuple", index)) => index
                .parse()
                .map(EmbeddingOutput::TupleElement)
                .map_err(|_| format!("'{index}' is not a tuple index")),
            Some(("dict", key)) if !key.is_empty() => Ok(EmbeddingOutput::DictKey(key.to_owned())),
            _ => Err(format!(
                "'{text}' is not an output selector: use tensor, tuple:N or dict:KEY"
            )),
        }
    }
}

/// The JIT module and the mode it is in.
#[derive(Debug)]
struct ModuleState {
    module: TrainableCModule,
    train: bool,
}

/// A user's TorchScript module used as a backbone. The chosen output is the embedding: an
/// `[N, C]` tensor as is, or an `[N, C, H, W]` map global-average-pooled to `[N, C]` and
/// returned as the one feature map.
#[derive(Debug)]
pub struct TorchScriptBackbone {
    info: BackboneInfo,
    path: PathBuf,
    output: EmbeddingOutput,
    // `set_train`/`set_eval` need `&mut`, `Backbone::forward_t` has `&self`.
    state: Mutex<ModuleState>,
}

impl TorchScriptBackbone {
    /// Loads the TorchScript file `path` onto `vs_path`'s device, registers its parameters under
    /// `vs_path`, and finds the embedding width with a probe forward pass (eval mode, one
    /// zero image of `input_size_px` pixels square).
    pub fn load(
        path: &Path,
        vs_path: nn::Path,
        output: EmbeddingOutput,
        input_size_px: u32,
        normalization: Normalization,
    ) -> Result<Self, ModelError> {
        check_file(path)?;
        let device = vs_path.device();
        let mut module = TrainableCModule::load(path, vs_path).map_err(|e| {
            let message = e.to_string();
            let reason = if message.contains("constants.pkl") {
                // A zip archive without TorchScript code: typically a `torch.save` state dict.
                "a PyTorch archive without TorchScript code (a state dict?); export the model \
                 with torch.jit.script(model).save(...)"
                    .to_owned()
            } else {
                format!(
                    "libtorch could not load it as a TorchScript module ({})",
                    first_line(&message)
                )
            };
            file_error(path, reason)
        })?;
        module.f_set_eval()?;
        let mut backbone = Self {
            info: BackboneInfo {
                name: "torchscript",
                family: "TorchScript",
                input_size_px,
                normalization,
                embedding_dim: 0,
                pretrained: None,
            },
            path: path.to_owned(),
            output,
            state: Mutex::new(ModuleState {
                module,
                train: false,
            }),
        };
        let side = i64::from(input_size_px);
        let probe = Tensor::f_zeros([1, 3, side, side], (Kind::Float, device))?;
        let out = tch::no_grad(|| backbone.forward_t(&probe, false))?;
        backbone.info.embedding_dim = out.embedding.size().get(1).copied().unwrap_or(0);
        Ok(backbone)
    }

    /// The TorchScript file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The output used as the embedding.
    pub fn output(&self) -> &EmbeddingOutput {
        &self.output
    }

    fn error(&self, reason: String) -> ModelError {
        file_error(&self.path, reason)
    }

    /// Picks the chosen output out of what the module returned.
    fn select(&self, value: IValue) -> Result<Tensor, ModelError> {
        let mismatch = |found: &IValue| {
            self.error(format!(
                "the output selector ({}) does not fit: the module returns {}",
                self.output,
                describe(found)
            ))
        };
        let chosen = match (&self.output, value) {
            (EmbeddingOutput::Tensor, IValue::Tensor(t)) => return Ok(t),
            (EmbeddingOutput::TupleElement(i), IValue::Tuple(items))
            | (EmbeddingOutput::TupleElement(i), IValue::GenericList(items)) => {
                let count = items.len();
                items.into_iter().nth(*i).ok_or_else(|| {
                    self.error(format!(
                        "the output selector ({}) does not fit: the module returns {count} values",
                        self.output
                    ))
                })?
            }
            (EmbeddingOutput::TupleElement(i), IValue::TensorList(items)) => {
                let count = items.len();
                return items.into_iter().nth(*i).ok_or_else(|| {
                    self.error(format!(
                        "the output selector ({}) does not fit: the module returns {count} tensors",
                        self.output
                    ))
                });
            }
            (EmbeddingOutput::DictKey(key), IValue::GenericDict(entries)) => {
                let keys: Vec<String> = entries
                    .iter()
                    .filter_map(|(k, _)| match k {
                        IValue::String(s) => Some(format!("'{s}'")),
                        _ => None,
                    })
                    .collect();
                entries
                    .into_iter()
                    .find(|(k, _)| matches!(k, IValue::String(s) if s == key))
                    .map(|(_, v)| v)
                    .ok_or_else(|| {
                        self.error(format!(
                            "the output selector ({}) does not fit: the dict has keys [{}]",
                            self.output,
                            keys.join(", ")
                        ))
                    })?
            }
            (_, other) => return Err(mismatch(&other)),
        };
        match chosen {
            IValue::Tensor(t) => Ok(t),
            other => Err(self.error(format!(
                "the chosen output ({}) is {}, not a tensor",
                self.output,
                describe(&other)
            ))),
        }
    }
}

impl Backbone for TorchScriptBackbone {
    fn info(&self) -> &BackboneInfo {
        &self.info
    }

    fn forward_t(&self, images: &Tensor, train: bool) -> Result<BackboneOutput, ModelError> {
        let value = {
            // A panic while holding the lock leaves no broken invariant: the mode is re-set.
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.train != train {
                if train {
                    state.module.f_set_train()?;
                } else {
                    state.module.f_set_eval()?;
                }
                state.train = train;
            }
            state
                .module
                .forward_is(&[IValue::Tensor(images.shallow_clone())])
                .map_err(|e| {
                    self.error(format!(
                        "the forward pass failed ({})",
                        first_line(&e.to_string())
                    ))
                })?
        };
        let chosen = self.select(value)?;
        match chosen.dim() {
            2 => Ok(BackboneOutput {
                features: Vec::new(),
                embedding: chosen,
                logits: None,
            }),
            4 => Ok(BackboneOutput {
                embedding: global_avg_pool(&chosen)?,
                features: vec![chosen],
                logits: None,
            }),
            _ => Err(self.error(format!(
                "the chosen output ({}) has shape {:?}; expected [N, C] or [N, C, H, W]",
                self.output,
                chosen.size()
            ))),
        }
    }
}

fn file_error(path: &Path, reason: String) -> ModelError {
    ModelError::TorchScript {
        path: path.to_owned(),
        reason,
    }
}

/// Fails early, with a clear reason, on a missing file or one that is not a zip archive.
fn check_file(path: &Path) -> Result<(), ModelError> {
    use std::io::Read;
    if !path.is_file() {
        return Err(file_error(path, "file not found".into()));
    }
    let mut head = Vec::with_capacity(4);
    std::fs::File::open(path)
        .and_then(|f| f.take(4).read_to_end(&mut head))
        .map_err(|e| file_error(path, format!("could not read the file ({e})")))?;
    if head != b"PK\x03\x04" {
        return Err(file_error(
            path,
            "not a TorchScript file (expected the zip archive written by torch.jit.save)".into(),
        ));
    }
    Ok(())
}

/// libtorch's messages carry C++ back-traces after the first line.
fn first_line(message: &str) -> &str {
    message
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(message)
        .trim()
}

fn describe(value: &IValue) -> String {
    match value {
        IValue::None => "None".into(),
        IValue::Tensor(t) => format!("a tensor of shape {:?}", t.size()),
        IValue::Tuple(items) => format!("a tuple of {} values", items.len()),
        IValue::GenericList(items) => format!("a list of {} values", items.len()),
        IValue::TensorList(items) => format!("a list of {} tensors", items.len()),
        IValue::GenericDict(entries) => format!("a dict of {} entries", entries.len()),
        IValue::String(_) | IValue::StringList(_) => "a string".into(),
        IValue::Int(_) | IValue::Double(_) | IValue::Bool(_) => "a number".into(),
        _ => "a value that is not a tensor".into(),
    }
}
