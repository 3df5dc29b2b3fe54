//! Linear-probe accuracy by stratified k-fold cross-validation on cached embeddings: a
//! ridge-regression probe (least squares from standardised embeddings to centred one-hot
//! labels, penalty `RIDGE` x the number of training images, solved in closed form) trained
//! on k-1 folds and scored on the held-out fold; the accuracy of every image's held-out
//! prediction. A closed-form solve takes about a second where a logistic regression by
//! gradient steps took sixteen; on Fashion-MNIST embeddings the two agree within a point
//! (0.819 and 0.813 under MobileNetV2). An estimate of what the linear probe will reach.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use super::StudyError;

/// Folds by default.
pub const DEFAULT_FOLDS: usize = 5;
/// The ridge penalty per training image (on standardised features).
const RIDGE: f64 = 1.0;

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
    let f = features.f_to_device(Device::Cpu)?.f_to_kind(Kind::Double)?;
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
        let mean = x_train.f_mean_dim([0i64].as_slice(), true, Kind::Double)?;
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

/// Fits the ridge probe on `x` / `y` and predicts the classes of `test`: the primal
/// solve `(X^T X + l I) W = X^T Y` with fewer dimensions than images, else the dual
/// `W = X^T (X X^T + l I)^-1 Y`.
fn fit_predict(
    x: &Tensor,
    y: &[i64],
    test: &Tensor,
    classes: usize,
) -> Result<Vec<i64>, StudyError> {
    let (n, dim) = (x.size()[0], x.size()[1]);
    let targets = Tensor::f_from_slice(y)?
        .f_one_hot(classes as i64)?
        .f_to_kind(Kind::Double)?;
    let targets = targets.f_sub(&targets.f_mean_dim([0i64].as_slice(), true, Kind::Double)?)?;
    let penalty = RIDGE * n as f64;
    let eye = |size: i64| Tensor::f_eye(size, (Kind::Double, Device::Cpu));
    let weight = if dim <= n {
        let gram = x
            .tr()
            .f_matmul(x)?
            .f_add(&eye(dim)?.f_mul_scalar(penalty)?)?;
        Tensor::f_linalg_solve(&gram, &x.tr().f_matmul(&targets)?, true)?
    } else {
        let gram = x
            .f_matmul(&x.tr())?
            .f_add(&eye(n)?.f_mul_scalar(penalty)?)?;
        x.tr()
            .f_matmul(&Tensor::f_linalg_solve(&gram, &targets, true)?)?
    };
    Ok(Vec::<i64>::try_from(
        &test.f_matmul(&weight)?.f_argmax(1, false)?,
    )?)
}
