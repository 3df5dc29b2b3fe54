//! The inputs of every batch-norm layer, seen: while a [`BnRecorder`] is active on this
//! thread, each batch-norm pass adds its input's per-channel sums to a record of that
//! layer (layers are told apart by the order they run in), beside the layer's running
//! statistics from pretraining. A study compares the two to say how far the user's images
//! are from the pretraining data. Inactive, it costs one thread-local check per layer.

use std::cell::RefCell;

use tch::{Kind, Tensor};

/// What one batch-norm layer saw.
#[derive(Clone, Debug)]
pub struct LayerRecord {
    /// The running (pretraining) mean and variance per channel.
    pub running_mean: Vec<f64>,
    /// See `running_mean`.
    pub running_var: Vec<f64>,
    /// Per channel, the sum and the sum of squares of the inputs seen.
    pub sum: Vec<f64>,
    /// See `sum`.
    pub sum_sq: Vec<f64>,
    /// Values seen per channel.
    pub count: f64,
}

impl LayerRecord {
    /// The mean and (population) variance per channel of the inputs seen.
    pub fn seen(&self) -> (Vec<f64>, Vec<f64>) {
        let n = self.count.max(1.0);
        let mean: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let var = self
            .sum_sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| (q / n - m * m).max(0.0))
            .collect();
        (mean, var)
    }
}

#[derive(Default)]
struct Recording {
    layers: Vec<LayerRecord>,
    /// The next layer of the current pass.
    next: usize,
}

thread_local! {
    static RECORDING: RefCell<Option<Recording>> = const { RefCell::new(None) };
}

/// Records batch-norm inputs on this thread until [`BnRecorder::finish`] (or drop).
pub struct BnRecorder(());

impl BnRecorder {
    /// Starts recording (a recording already running on this thread is replaced).
    pub fn start() -> Self {
        RECORDING.with(|r| *r.borrow_mut() = Some(Recording::default()));
        Self(())
    }

    /// Runs one forward pass: its batch-norm layers add to the records in order.
    pub fn pass<T>(&self, forward: impl FnOnce() -> T) -> T {
        RECORDING.with(|r| {
            if let Some(recording) = r.borrow_mut().as_mut() {
                recording.next = 0;
            }
        });
        forward()
    }

    /// Stops and returns the records, one per batch-norm layer in the order they ran.
    pub fn finish(self) -> Vec<LayerRecord> {
        RECORDING
            .with(|r| r.borrow_mut().take())
            .map(|r| r.layers)
            .unwrap_or_default()
    }
}

impl Drop for BnRecorder {
    fn drop(&mut self) {
        RECORDING.with(|r| r.borrow_mut().take());
    }
}

/// Called by every batch-norm pass with its input `[N, C, H, W]` (or `[N, C]`) and the
/// layer's running statistics; records them when a recorder is active.
pub(crate) fn observe(
    input: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
) -> Result<(), tch::TchError> {
    let active = RECORDING.with(|r| r.borrow().is_some());
    if !active {
        return Ok(());
    }
    let dims: Vec<i64> = (0..input.dim() as i64).filter(|&d| d != 1).collect();
    let x = input.f_to_kind(Kind::Double)?;
    let sum = Vec::<f64>::try_from(&x.f_sum_dim_intlist(dims.as_slice(), false, Kind::Double)?)?;
    let sum_sq = Vec::<f64>::try_from(&x.f_square()?.f_sum_dim_intlist(
        dims.as_slice(),
        false,
        Kind::Double,
    )?)?;
    let count = (input.numel() / sum.len().max(1)) as f64;
    let running = |t: &Tensor| Vec::<f64>::try_from(&t.f_to_kind(Kind::Double)?);
    let (mean, var) = (running(running_mean)?, running(running_var)?);
    RECORDING.with(|r| {
        let mut borrowed = r.borrow_mut();
        let Some(recording) = borrowed.as_mut() else {
            return;
        };
        let at = recording.next;
        recording.next += 1;
        match recording.layers.get_mut(at) {
            Some(layer) if layer.sum.len() == sum.len() => {
                layer.sum.iter_mut().zip(&sum).for_each(|(a, b)| *a += b);
                layer
                    .sum_sq
                    .iter_mut()
                    .zip(&sum_sq)
                    .for_each(|(a, b)| *a += b);
                layer.count += count;
            }
            Some(_) => {}
            None => recording.layers.push(LayerRecord {
                running_mean: mean,
                running_var: var,
                sum,
                sum_sq,
                count,
            }),
        }
    });
    Ok(())
}
