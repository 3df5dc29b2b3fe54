//! k-nearest-neighbour accuracy of frozen embeddings, leave-one-out: each image is classed
//! by the majority label of its `k` most cosine-similar other images (ties go to the class
//! with the larger summed similarity). No training, so it shows what the embedding already
//! separates.

use tch::{Device, Kind, Tensor};

use super::StudyError;

/// Neighbours asked by default.
pub const DEFAULT_K: usize = 10;

/// Rows compared at once (bounds the similarity block to `ROWS x N` floats).
const ROWS: i64 = 1024;

/// The leave-one-out k-NN accuracy of `features` (`[N, D]`) for `labels` (`0..classes`).
pub fn knn_accuracy(
    features: &Tensor,
    labels: &[i64],
    classes: usize,
    k: usize,
) -> Result<f64, StudyError> {
    let n = labels.len();
    if n < 2 || features.size().first() != Some(&(n as i64)) {
        return Err(StudyError::Invalid(format!(
            "k-NN needs at least two images with one feature row each ({n} labels, features \
             {:?})",
            features.size()
        )));
    }
    let k = k.clamp(1, n - 1) as i64;
    let f = features.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?;
    let norms = f
        .f_norm_scalaropt_dim(2, [1i64].as_slice(), true)?
        .f_clamp_min(1e-12)?;
    let f = f.f_div(&norms)?;
    let mut correct = 0usize;
    let mut start = 0i64;
    while start < n as i64 {
        let len = ROWS.min(n as i64 - start);
        let mut similarity = f.f_narrow(0, start, len)?.f_matmul(&f.tr())?;
        // An image is not its own neighbour.
        let own = Tensor::f_arange_start(start, start + len, (Kind::Int64, Device::Cpu))?;
        let rows = Tensor::f_arange(len, (Kind::Int64, Device::Cpu))?;
        let _ = similarity.f_index_put_(
            &[Some(rows), Some(own)],
            &Tensor::from(f32::NEG_INFINITY),
            false,
        )?;
        let (values, indices) = similarity.f_topk(k, 1, true, true)?;
        let values = Vec::<f32>::try_from(&values.f_flatten(0, -1)?)?;
        let indices = Vec::<i64>::try_from(&indices.f_flatten(0, -1)?)?;
        for row in 0..len as usize {
            let mut votes = vec![(0usize, 0.0f32); classes];
            for j in 0..k as usize {
                let at = row * k as usize + j;
                let label = labels[indices[at] as usize] as usize;
                if let Some(vote) = votes.get_mut(label) {
                    vote.0 += 1;
                    vote.1 += values[at];
                }
            }
            let predicted = (0..classes).max_by(|&a, &b| {
                votes[a]
                    .0
                    .cmp(&votes[b].0)
                    .then(votes[a].1.total_cmp(&votes[b].1))
            });
            if predicted == Some(labels[start as usize + row] as usize) {
                correct += 1;
            }
        }
        start += len;
    }
    Ok(correct as f64 / n as f64)
}
