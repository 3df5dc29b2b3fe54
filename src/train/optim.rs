//! AdamW and SGD with momentum over named parameter groups, written on tch tensor ops so
//! that every step is fallible, each group has its own learning-rate scale, and the state
//! (moments, step counts) can be saved into a checkpoint and restored exactly.

use std::collections::HashMap;

use tch::{Kind, Tensor};

use super::config::OptimizerKind;

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// Parameters trained at `lr * lr_scale`.
#[derive(Debug)]
pub struct ParamGroup {
    /// A name for logs.
    pub name: String,
    /// Multiplier of the scheduled learning rate.
    pub lr_scale: f64,
    /// Parameters with their variable names.
    pub params: Vec<(String, Tensor)>,
}

#[derive(Debug)]
struct ParamState {
    step: i64,
    /// AdamW first moment, or the SGD momentum buffer.
    first: Tensor,
    /// AdamW second moment (unused by SGD).
    second: Option<Tensor>,
}

/// An optimiser over parameter groups.
#[derive(Debug)]
pub struct Optimizer {
    kind: OptimizerKind,
    groups: Vec<ParamGroup>,
    state: HashMap<String, ParamState>,
}

impl Optimizer {
    /// An optimiser with fresh state.
    pub fn new(kind: OptimizerKind, groups: Vec<ParamGroup>) -> Self {
        Self {
            kind,
            groups,
            state: HashMap::new(),
        }
    }

    /// The groups (names and scales) for logs.
    pub fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    /// Zeroes the gradients of all parameters.
    pub fn zero_grad(&mut self) -> Result<(), tch::TchError> {
        for (_, p) in self.groups.iter().flat_map(|g| &g.params) {
            let mut grad = p.f_grad()?;
            if grad.defined() {
                let _ = grad.f_detach_()?;
                let _ = grad.f_zero_()?;
            }
        }
        Ok(())
    }

    /// Scales the gradients so that their global L2 norm is at most `max_norm`; returns
    /// the norm before clipping.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> Result<f64, tch::TchError> {
        tch::no_grad(|| {
            let mut total_sq = 0.0;
            let mut grads = Vec::new();
            for (_, p) in self.groups.iter().flat_map(|g| &g.params) {
                let grad = p.f_grad()?;
                if grad.defined() {
                    total_sq += grad.f_square()?.f_sum(Kind::Double)?.f_double_value(&[])?;
                    grads.push(grad);
                }
            }
            let norm = total_sq.sqrt();
            let coef = max_norm / (norm + 1e-6);
            if coef < 1.0 {
                for mut grad in grads {
                    let _ = grad.f_mul_scalar_(coef)?;
                }
            }
            Ok(norm)
        })
    }

    /// One update of every parameter with a gradient, at base learning rate `lr`.
    pub fn step(&mut self, lr: f64) -> Result<(), tch::TchError> {
        let kind = self.kind;
        tch::no_grad(|| {
            for group in &self.groups {
                let group_lr = lr * group.lr_scale;
                for (name, p) in &group.params {
                    let grad = p.f_grad()?;
                    if !grad.defined() {
                        continue;
                    }
                    let state = match self.state.get_mut(name) {
                        Some(state) => state,
                        None => {
                            let fresh = ParamState {
                                step: 0,
                                first: p.f_zeros_like()?,
                                second: match kind {
                                    OptimizerKind::AdamW { .. } => Some(p.f_zeros_like()?),
                                    OptimizerKind::Sgd { .. } => None,
                                },
                            };
                            self.state.entry(name.clone()).or_insert(fresh)
                        }
                    };
                    state.step += 1;
                    let mut p = p.shallow_clone();
                    match kind {
                        OptimizerKind::AdamW { weight_decay } => {
                            adamw_update(&mut p, &grad, state, group_lr, weight_decay)?
                        }
                        OptimizerKind::Sgd {
                            momentum,
                            nesterov,
                            weight_decay,
                        } => sgd_update(
                            &mut p,
                            grad,
                            state,
                            group_lr,
                            momentum,
                            nesterov,
                            weight_decay,
                        )?,
                    }
                }
            }
            Ok(())
        })
    }

    /// The state as named tensors (`optimizer.<param>.first|second|step`) for a checkpoint.
    pub fn state_tensors(&self) -> Result<Vec<(String, Tensor)>, tch::TchError> {
        let mut out = Vec::new();
        for (name, state) in &self.state {
            out.push((
                format!("optimizer.{name}.first"),
                state.first.shallow_clone(),
            ));
            if let Some(second) = &state.second {
                out.push((format!("optimizer.{name}.second"), second.shallow_clone()));
            }
            out.push((
                format!("optimizer.{name}.step"),
                Tensor::f_from_slice(&[state.step])?,
            ));
        }
        Ok(out)
    }

    /// Restores the state of every parameter found in `tensors` (others start fresh).
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>) -> Result<(), tch::TchError> {
        for (name, p) in self.groups.iter().flat_map(|g| &g.params) {
            let key = |part: &str| format!("optimizer.{name}.{part}");
            let (Some(first), Some(step)) = (tensors.get(&key("first")), tensors.get(&key("step")))
            else {
                continue;
            };
            let device = p.device();
            let second = match tensors.get(&key("second")) {
                Some(t) => Some(t.f_to_device(device)?),
                None => None,
            };
            self.state.insert(
                name.clone(),
                ParamState {
                    step: step.f_int64_value(&[0])?,
                    first: first.f_to_device(device)?,
                    second,
                },
            );
        }
        Ok(())
    }
}

/// AdamW (decoupled weight decay) with in-place updates: two temporaries per parameter
/// (`grad²` and the denominator), as PyTorch's single-tensor implementation.
fn adamw_update(
    p: &mut Tensor,
    grad: &Tensor,
    state: &mut ParamState,
    lr: f64,
    weight_decay: f64,
) -> Result<(), tch::TchError> {
    if weight_decay > 0.0 {
        let _ = p.f_mul_scalar_(1.0 - lr * weight_decay)?;
    }
    // m = β1·m + (1 − β1)·g
    let _ = state.first.f_lerp_(grad, 1.0 - BETA1)?;
    let second = match state.second.as_mut() {
        Some(second) => second,
        None => return Ok(()),
    };
    // v = β2·v + (1 − β2)·g²
    let _ = second.f_lerp_(&grad.f_square()?, 1.0 - BETA2)?;
    if lr <= 0.0 {
        return Ok(());
    }
    let t = state.step as i32;
    let bias1 = 1.0 - BETA1.powi(t);
    let bias2 = 1.0 - BETA2.powi(t);
    // p -= lr/bias1 · m / (sqrt(v/bias2) + eps), as p += m / (denom · −bias1/lr)
    let mut denom = second.f_sqrt()?;
    let _ = denom.f_div_scalar_(bias2.sqrt())?;
    let _ = denom.f_add_scalar_(EPS)?;
    let _ = denom.f_mul_scalar_(-bias1 / lr)?;
    let _ = p.f_addcdiv_(&state.first, &denom)?;
    Ok(())
}

fn sgd_update(
    p: &mut Tensor,
    grad: Tensor,
    state: &mut ParamState,
    lr: f64,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
) -> Result<(), tch::TchError> {
    let grad = if weight_decay > 0.0 {
        grad.f_add(&p.f_mul_scalar(weight_decay)?)?
    } else {
        grad
    };
    let direction = if momentum > 0.0 {
        if state.step == 1 {
            state.first.f_copy_(&grad)?;
        } else {
            let _ = state.first.f_mul_scalar_(momentum)?;
            let _ = state.first.f_add_(&grad)?;
        }
        if nesterov {
            grad.f_add(&state.first.f_mul_scalar(momentum)?)?
        } else {
            state.first.shallow_clone()
        }
    } else {
        grad
    };
    let _ = p.f_sub_(&direction.f_mul_scalar(lr)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use tch::{Device, nn::VarStore};

    use super::*;

    fn quadratic_descent(kind: OptimizerKind, lr: f64) -> f64 {
        let vs = VarStore::new(Device::Cpu);
        let x = vs.root().f_ones("x", &[3]).unwrap();
        let groups = vec![ParamGroup {
            name: "all".into(),
            lr_scale: 1.0,
            params: vec![("x".into(), x.shallow_clone())],
        }];
        let mut opt = Optimizer::new(kind, groups);
        for _ in 0..200 {
            opt.zero_grad().unwrap();
            let loss = (&x * &x).sum(Kind::Float);
            loss.backward();
            opt.step(lr).unwrap();
        }
        x.abs().max().double_value(&[])
    }

    #[test]
    fn adamw_and_sgd_minimise_a_quadratic() {
        assert!(quadratic_descent(OptimizerKind::AdamW { weight_decay: 0.0 }, 0.05) < 0.05);
        let sgd = OptimizerKind::Sgd {
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.0,
        };
        assert!(quadratic_descent(sgd, 0.01) < 1e-3);
    }

    #[test]
    fn state_round_trips_and_clipping_bounds_the_norm() {
        let vs = VarStore::new(Device::Cpu);
        let x = vs.root().f_ones("x", &[4]).unwrap();
        let group = |x: &Tensor| ParamGroup {
            name: "all".into(),
            lr_scale: 1.0,
            params: vec![("x".into(), x.shallow_clone())],
        };
        let kind = OptimizerKind::AdamW { weight_decay: 0.01 };
        let mut opt = Optimizer::new(kind, vec![group(&x)]);
        opt.zero_grad().unwrap();
        (&x * 100.0).sum(Kind::Float).backward();
        let norm = opt.clip_grad_norm(1.0).unwrap();
        assert!((norm - 200.0).abs() < 1e-3);
        let clipped = x.grad().norm().double_value(&[]);
        assert!((clipped - 1.0).abs() < 1e-4, "{clipped}");
        opt.step(0.1).unwrap();
        let saved: HashMap<String, Tensor> = opt.state_tensors().unwrap().into_iter().collect();
        let mut restored = Optimizer::new(kind, vec![group(&x)]);
        restored.load_state(&saved).unwrap();
        assert_eq!(restored.state["x"].step, 1);
        assert!(
            restored.state["x"]
                .first
                .allclose(&opt.state["x"].first, 0.0, 0.0, false)
        );
    }

    /// Our in-place AdamW equals the textbook update (Loshchilov & Hutter, PyTorch's
    /// `AdamW` documentation) computed in f64, over steps with changing lr and gradients.
    #[test]
    fn adamw_matches_the_textbook_update() {
        let start = [0.5f64, -1.5, 2.0, 1.0, 3.0];
        let vs = VarStore::new(Device::Cpu);
        let x = vs.root().f_zeros("x", &[5]).unwrap();
        tch::no_grad(|| x.shallow_clone().copy_(&Tensor::from_slice(&start)));
        let groups = vec![ParamGroup {
            name: "all".into(),
            lr_scale: 0.5,
            params: vec![("x".into(), x.shallow_clone())],
        }];
        let weight_decay = 0.05;
        let mut opt = Optimizer::new(OptimizerKind::AdamW { weight_decay }, groups);
        let (mut p, mut m, mut v) = (start.to_vec(), [0.0f64; 5], [0.0f64; 5]);
        for step in 1..=6 {
            let lr = 0.1 / step as f64;
            let scale = [1.0, -2.0, 0.5, 4.0, -0.25].map(|c| c * step as f64);
            opt.zero_grad().unwrap();
            (&x * &x * Tensor::from_slice(&scale).to_kind(Kind::Float))
                .sum(Kind::Float)
                .backward();
            opt.step(lr).unwrap();
            let group_lr = lr * 0.5;
            for i in 0..5 {
                let g = 2.0 * p[i] * scale[i];
                p[i] *= 1.0 - group_lr * weight_decay;
                m[i] = BETA1 * m[i] + (1.0 - BETA1) * g;
                v[i] = BETA2 * v[i] + (1.0 - BETA2) * g * g;
                let m_hat = m[i] / (1.0 - BETA1.powi(step));
                let v_hat = v[i] / (1.0 - BETA2.powi(step));
                p[i] -= group_lr * m_hat / (v_hat.sqrt() + EPS);
            }
        }
        let ours = Vec::<f64>::try_from(x.to_kind(Kind::Double)).unwrap();
        for (a, b) in ours.iter().zip(&p) {
            assert!((a - b).abs() < 1e-5, "ours {ours:?}, textbook {p:?}");
        }
        assert!(ours.iter().zip(&start).all(|(a, b)| a != b));
    }
}
