//! The classification head trained on top of a backbone: optional dropout, then one linear
//! layer on the pooled embedding. Keys: `<prefix>.fc.weight`, `<prefix>.fc.bias`.

use tch::{Tensor, nn};

use super::layers::linear;

/// Dropout followed by a linear layer from the embedding to the class logits.
#[derive(Debug)]
pub struct ClassificationHead {
    fc: nn::Linear,
    dropout: f64,
}

impl ClassificationHead {
    /// Builds the head under `p` for `embedding_dim` inputs and `classes` outputs.
    pub fn new(p: nn::Path, embedding_dim: i64, classes: i64, dropout: f64) -> Self {
        let fc = nn::linear(&p / "fc", embedding_dim, classes, Default::default());
        Self { fc, dropout }
    }

    /// Logits `[N, classes]` for embeddings `[N, embedding_dim]` (dropout only when `train`).
    pub fn forward_t(&self, embedding: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        if self.dropout > 0.0 && train {
            let dropped = embedding.f_dropout(self.dropout, true)?;
            linear(&self.fc, &dropped)
        } else {
            linear(&self.fc, embedding)
        }
    }
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind, nn::VarStore};

    use super::*;

    #[test]
    fn head_maps_embeddings_to_logits_with_stable_keys() {
        let vs = VarStore::new(Device::Cpu);
        let head = ClassificationHead::new(vs.root() / "head", 8, 3, 0.5);
        let xs = Tensor::ones([4, 8], (Kind::Float, Device::Cpu));
        assert_eq!(head.forward_t(&xs, true).unwrap().size(), vec![4, 3]);
        let mut keys: Vec<String> = vs.variables().into_keys().collect();
        keys.sort();
        assert_eq!(keys, vec!["head.fc.bias", "head.fc.weight"]);
    }
}
