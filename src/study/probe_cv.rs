//! Linear-probe accuracy by stratified k-fold cross-validation on cached embeddings: a
//! multinomial logistic regression (weights from zero, L2 penalty, full-batch Adam) trained
//! on k-1 folds of standardised embeddings and scored on the held-out fold; the accuracy of
//! every image's held-out prediction. An estimate of what the linear probe will reach.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tch::nn::OptimizerConfig;
use tch::{Device, Kind, Tensor, nn};

use super::StudyError;

/// Folds by default.
pub const DEFAULT_FOLDS: usize = 5;
const STEPS: usize = 200;
const LEARNING_RATE: f64 = 0.05;
const WEIGHT_DECAY: f64 = 1e-3;

/// The k-fold accuracy of a linear probe on `features` (`[N, D]`) for `labels`.
pub fn probe_accuracy(
    features: &Tensor,
    labels: &[i64],
    classes: usize,
    folds: usize,
    seed: u64,
) -> Result<f64, StudyError> {
    let n = labels.len();
    let folds = folds.clamp(2, n.max(2));
    if n < folds || features.size().first() != Some(&(n as i64)) {
        return Err(StudyError::Invalid(format!(
            "a {folds}-fold probe needs at least {folds} images with one feature row each \
             ({n} labels)"
        )));
    }
    let f = features.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?;
    let fold_of = stratified_folds(labels, classes, folds, seed);
    let mut correct = 0usize;
    for fold in 0..folds {
        let (train, test): (Vec<i64>, Vec<i64>) =
            (0..n as i64).partition(|&i| fold_of[i as usize] != fold);
        if train.is_empty() || test.is_empty() {
            continue;
        }
        let pick = |rows: &[i64]| f.f_index_select(0, &Tensor::from_slice(rows));
        let (x_train, x_test) = (pick(&train)?, pick(&test)?);
        let mean = x_train.f_mean_dim([0i64].as_slice(), true, Kind::Float)?;
        let std = x_train
            .f_std_dim([0i64].as_slice(), false, true)?
            .f_clamp_min(1e-6)?;
        let standard = |x: &Tensor| x.f_sub(&mean)?.f_div(&std);
        let y_train: Vec<i64> = train.iter().map(|&i| labels[i as usize]).collect();
        let predicted = fit_predict(&standard(&x_train)?, &y_train, &standard(&x_test)?, classes)?;
        correct += test
            .iter()
            .zip(&predicted)
            .filter(|(i, p)| labels[**i as usize] == **p)
            .count();
    }
    Ok(correct as f64 / n as f64)
}

/// Each image's fold: every class's images shuffled (seeded) and dealt round the folds.
fn stratified_folds(labels: &[i64], classes: usize, folds: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fold_of = vec![0; labels.len()];
    let mut next = 0;
    for class in 0..classes as i64 {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        members.shuffle(&mut rng);
        for i in members {
            fold_of[i] = next % folds;
            next += 1;
        }
    }
    fold_of
}

/// Trains the regression on `x` / `y` and predicts the classes of `test`.
fn fit_predict(
    x: &Tensor,
    y: &[i64],
    test: &Tensor,
    classes: usize,
) -> Result<Vec<i64>, StudyError> {
    let dim = x.size()[1];
    let vs = nn::VarStore::new(Device::Cpu);
    let zeros = nn::Init::Const(0.0);
    let weight = vs.root().var("weight", &[dim, classes as i64], zeros);
    let bias = vs.root().var("bias", &[classes as i64], zeros);
    let mut optimizer = nn::Adam::default().build(&vs, LEARNING_RATE)?;
    let targets = Tensor::from_slice(y);
    for _ in 0..STEPS {
        let logits = x.f_matmul(&weight)?.f_add(&bias)?;
        let penalty = weight
            .f_pow_tensor_scalar(2)?
            .f_sum(Kind::Float)?
            .f_mul_scalar(WEIGHT_DECAY / 2.0)?;
        let loss = logits
            .f_cross_entropy_loss::<Tensor>(&targets, None, tch::Reduction::Mean, -100, 0.0)?
            .f_add(&penalty)?;
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
    }
    let logits = tch::no_grad(|| test.f_matmul(&weight)?.f_add(&bias))?;
    Ok(Vec::<i64>::try_from(&logits.f_argmax(1, false)?)?)
}
