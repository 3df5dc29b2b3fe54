//! LogME (You et al., "LogME: Practical Assessment of Pre-trained Models for Transfer
//! Learning", ICML 2021): the log of the maximum evidence of a Bayesian linear model from
//! frozen features to one-hot labels, per class, averaged. The fixed point iteration is the
//! one of the authors' reference code (`LogME.py`, `_fit_fixed_point`, from "Ranking and
//! Tuning Pre-trained Models", arXiv 2110.10545): at most 11 updates of alpha and beta from
//! 1 and 1, stopping when alpha/beta changes by at most 0.1%, with 1e-5 added to both
//! denominators. Two differences:
//! - `log |A|` (A = alpha I + beta F^T F, D x D) sums over all D eigenvalues, as the paper's
//!   evidence has it; the reference code sums over the nonzero ones only, which differs by
//!   `(D - rank) log(alpha) / 2` when the features do not have full column rank (fewer
//!   samples than dimensions, or rank-deficient features);
//! - the rank (with more samples than dimensions) is counted with a relative threshold on the
//!   singular values (`s > s_max * max(N, D) * eps`, as numpy's `matrix_rank`) instead of the
//!   absolute 1e-10, so that scaling the features does not change which directions count.

use tch::{Device, Kind, Tensor};

use super::StudyError;

/// The most fixed-point updates per class.
const MAX_UPDATES: usize = 11;
/// The relative change of alpha/beta that ends the updates.
const TOLERANCE: f64 = 1e-3;
/// Added to the denominators of the updates (as the reference code does).
const EPSILON: f64 = 1e-5;

/// The LogME score of `features` (`[N, D]`, any float kind) for class indices `labels`
/// (`[N]`, in `0..classes`). Higher means the features fit the labels better.
pub fn logme(features: &Tensor, labels: &[i64], classes: usize) -> Result<f64, StudyError> {
    let f = features.f_to_device(Device::Cpu)?.f_to_kind(Kind::Double)?;
    let (n, d) = match f.size()[..] {
        [n, d] if n > 0 && d > 0 => (n as usize, d as usize),
        ref shape => {
            return Err(StudyError::Invalid(format!(
                "LogME needs a non-empty [N, D] feature matrix, got {shape:?}"
            )));
        }
    };
    if labels.len() != n {
        return Err(StudyError::Invalid(format!(
            "{} labels for {n} feature rows",
            labels.len()
        )));
    }
    let one_hot = one_hot(labels, classes)?;
    let (sigma, projections, residual_base) = spectrum(&f, &one_hot, n, d)?;
    let mut total = 0.0;
    for class in 0..classes {
        let x2: Vec<f64> = projections.iter().map(|p| p[class] * p[class]).collect();
        let y2 = residual_base[class];
        total += class_evidence(&sigma, &x2, y2, n, d);
    }
    Ok(total / classes as f64)
}

/// `[N, C]` float64 one-hot rows of `labels`.
fn one_hot(labels: &[i64], classes: usize) -> Result<Tensor, StudyError> {
    if let Some(bad) = labels.iter().find(|&&l| l < 0 || l as usize >= classes) {
        return Err(StudyError::Invalid(format!(
            "label {bad} is outside 0..{classes}"
        )));
    }
    let mut data = vec![0.0f64; labels.len() * classes];
    for (row, &label) in labels.iter().enumerate() {
        data[row * classes + label as usize] = 1.0;
    }
    Ok(Tensor::f_from_slice(&data)?.f_reshape([labels.len() as i64, classes as i64])?)
}

/// The squared singular values `sigma` of `f` (its rank's worth), each direction's
/// projection of every class column (`x[k][c]` = u_k . y_c), and per class the part of
/// |y_c|^2 outside the kept directions (|y_c|^2 - sum_k x[k][c]^2).
#[allow(clippy::type_complexity)] // Three plain results of one decomposition.
fn spectrum(
    f: &Tensor,
    y: &Tensor,
    n: usize,
    d: usize,
) -> Result<(Vec<f64>, Vec<Vec<f64>>, Vec<f64>), StudyError> {
    let y_norms: Vec<f64> = Vec::<f64>::try_from(&y.f_pow_tensor_scalar(2)?.f_sum_dim_intlist(
        [0i64].as_slice(),
        false,
        Kind::Double,
    )?)?;
    let (sigma, x) = if n > d {
        // f = U S V^T from the eigen-decomposition of f^T f = V S^2 V^T; u_k = f v_k / s_k.
        let (eigenvalues, v) = f.tr().f_matmul(f)?.f_linalg_eigh("L")?;
        let eigenvalues = Vec::<f64>::try_from(&eigenvalues)?;
        let largest = eigenvalues.iter().copied().fold(0.0f64, f64::max).sqrt();
        let cut = largest * n.max(d) as f64 * f64::EPSILON;
        let kept: Vec<i64> = (0..eigenvalues.len())
            .filter(|&k| eigenvalues[k].max(0.0).sqrt() > cut)
            .map(|k| k as i64)
            .collect();
        let v = v.f_index_select(1, &Tensor::f_from_slice(&kept)?)?;
        let sigma: Vec<f64> = kept.iter().map(|&k| eigenvalues[k as usize]).collect();
        // x = U^T y = S^-1 V^T f^T y.
        let vt_fty = v.tr().f_matmul(&f.tr().f_matmul(y)?)?;
        let s = Tensor::f_from_slice(&sigma)?.f_sqrt()?.f_unsqueeze(1)?;
        (sigma, vt_fty.f_div(&s)?)
    } else {
        // Every direction of f f^T = U S^2 U^T (zero ones included, as a full SVD gives).
        let (eigenvalues, u) = f.f_matmul(&f.tr())?.f_linalg_eigh("L")?;
        let sigma: Vec<f64> = Vec::<f64>::try_from(&eigenvalues)?
            .into_iter()
            .map(|e| e.max(0.0))
            .collect();
        (sigma, u.tr().f_matmul(y)?)
    };
    let rows = x.size()[0];
    let mut projections = Vec::with_capacity(rows as usize);
    for k in 0..rows {
        projections.push(Vec::<f64>::try_from(&x.f_get(k)?)?);
    }
    let residual_base = (0..y_norms.len())
        .map(|c| y_norms[c] - projections.iter().map(|p| p[c] * p[c]).sum::<f64>())
        .collect();
    Ok((sigma, projections, residual_base))
}

/// The maximum evidence (per sample) of one class column: `sigma` the squared singular
/// values, `x2` the squared projections of the column on their directions, `rest` the
/// squared norm of the column outside them.
fn class_evidence(sigma: &[f64], x2: &[f64], rest: f64, n: usize, d: usize) -> f64 {
    let (n_f, d_f) = (n as f64, d as f64);
    let (mut alpha, mut beta) = (1.0f64, 1.0f64);
    let (mut m2, mut res2) = (0.0, 0.0);
    for _ in 0..MAX_UPDATES {
        let t = alpha / beta;
        let gamma: f64 = sigma.iter().map(|s| s / (s + t)).sum();
        m2 = sigma
            .iter()
            .zip(x2)
            .map(|(s, x)| s * x / ((t + s) * (t + s)))
            .sum();
        res2 = sigma
            .iter()
            .zip(x2)
            .map(|(s, x)| x / ((1.0 + s / t) * (1.0 + s / t)))
            .sum::<f64>()
            + rest;
        alpha = gamma / (m2 + EPSILON);
        beta = (n_f - gamma) / (res2 + EPSILON);
        if ((alpha / beta - t) / t).abs() <= TOLERANCE {
            break;
        }
    }
    // The D - k directions without variance each add log(alpha).
    let log_det: f64 = sigma.iter().map(|s| (alpha + beta * s).ln()).sum::<f64>()
        + (d_f - sigma.len() as f64) * alpha.ln();
    let evidence = d_f / 2.0 * alpha.ln() + n_f / 2.0 * beta.ln()
        - 0.5 * log_det
        - beta / 2.0 * res2
        - alpha / 2.0 * m2
        - n_f / 2.0 * (2.0 * std::f64::consts::PI).ln();
    evidence / n_f
}
