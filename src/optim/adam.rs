//! Adam and AdamW (`torch.optim.Adam`, `torch.optim.AdamW`).

use super::base::{check_complete, match_state};
use super::{LrScheduler, Optimizer, OptimizerBase, ParamGroup, StepReport};
use crate::kernels::optim::{adam_update, AdamStep};
use crate::tensor::Tensor;
use anyhow::bail;

/// Hyper-parameters of Adam / AdamW.
#[derive(Clone, Debug)]
pub struct AdamConfig {
    /// The learning rate (read once at construction; then `set_lr` or a schedule).
    pub lr: f32,
    /// Decay of the first moment (PyTorch's `betas[0]`, 0.9).
    pub beta1: f32,
    /// Decay of the second moment (`betas[1]`, 0.999).
    pub beta2: f32,
    /// Added to the square root of the second moment (1e-8).
    pub eps: f32,
    /// Weight decay: L2 added to the gradient (Adam) or decoupled (AdamW).
    pub weight_decay: f32,
    /// Decoupled weight decay (AdamW: `p *= 1 − lr·wd`) instead of an L2 term in the gradient.
    pub decoupled: bool,
}

impl AdamConfig {
    /// `torch.optim.Adam` defaults.
    pub fn adam(lr: f32) -> AdamConfig {
        AdamConfig {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
        }
    }

    /// `torch.optim.AdamW` defaults (weight decay 0.01).
    pub fn adamw(lr: f32) -> AdamConfig {
        AdamConfig {
            weight_decay: 0.01,
            decoupled: true,
            ..AdamConfig::adam(lr)
        }
    }
}

struct Moments {
    m: Vec<f32>,
    v: Vec<f32>,
}

/// Adam with bias correction; AdamW when `decoupled`.
///
/// ```
/// use neurite::optim::{numbered, Adam, AdamConfig, Optimizer};
/// use neurite::Tensor;
///
/// let w = Tensor::from_vec(vec![1.0], &[1]).requires_grad_();
/// let mut opt = Adam::new(numbered(&[w.clone()]), AdamConfig::adam(0.1));
/// (&w * &w).sum_all().backward().unwrap();
/// opt.step(); // the first step moves by lr in the gradient's direction
/// assert!((w.item() - 0.9).abs() < 1e-6);
/// assert_eq!(opt.state().len(), 3); // step, 0.exp_avg, 0.exp_avg_sq
/// ```
pub struct Adam {
    /// The settings it was built with.
    pub config: AdamConfig,
    base: OptimizerBase,
    step: u64,
    /// Per parameter (in the base's order): the moments, made at its first step.
    moments: Vec<Option<Moments>>,
}

impl Adam {
    /// Adam over `params` (a model's `named_parameters()`, or [`super::numbered`] tensors).
    pub fn new(params: Vec<(String, Tensor)>, config: AdamConfig) -> Adam {
        let base = OptimizerBase::new(params, config.lr, config.weight_decay);
        let moments = base.params().iter().map(|_| None).collect();
        Adam {
            config,
            base,
            step: 0,
            moments,
        }
    }

    /// No weight decay for the parameters where `decays(name, shape)` is false (nanoGPT
    /// decays the matrices and embeddings, not biases and LayerNorm gains).
    pub fn with_decay_mask(mut self, decays: impl Fn(&str, &[usize]) -> bool) -> Adam {
        self.base.mask_decay(decays);
        self
    }

    /// A group of parameters with its own rate or weight decay.
    pub fn with_group(mut self, group: ParamGroup) -> Adam {
        self.base.add_group(group);
        self
    }

    /// Attaches `schedule`, stepped after every update.
    pub fn with_schedule(mut self, schedule: impl LrScheduler + 'static) -> Adam {
        self.base.set_schedule(Box::new(schedule));
        self
    }
}

const SUFFIXES: [&str; 2] = ["exp_avg", "exp_avg_sq"];

impl Optimizer for Adam {
    fn base(&self) -> &OptimizerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut OptimizerBase {
        &mut self.base
    }

    fn update(&mut self) -> StepReport {
        let c = &self.config;
        let mut report = StepReport::default();
        self.step += 1;
        let bc1 = 1.0 - c.beta1.powi(self.step as i32);
        let bc2 = 1.0 - c.beta2.powi(self.step as i32);
        let params = self.base.params();
        for (i, (p, slot)) in params.iter().zip(self.moments.iter_mut()).enumerate() {
            let Some(grad) = p.grad() else { continue };
            let n = p.numel();
            let mo = slot.get_or_insert_with(|| Moments {
                m: vec![0.0; n],
                v: vec![0.0; n],
            });
            let step = AdamStep {
                lr: self.base.lr_of(i),
                beta1: c.beta1,
                beta2: c.beta2,
                eps: c.eps,
                weight_decay: self.base.weight_decay_of(i),
                decoupled: c.decoupled,
                bias_correction1: bc1,
                bias_correction2: bc2,
            };
            let finite = grad.with_slice(|g| {
                p.with_slice_mut(|w| adam_update(step, w, g, &mut mo.m, &mut mo.v))
            });
            if !finite {
                report.non_finite(&self.base.names()[i]);
            }
        }
        report
    }

    fn rule_state(&self) -> Vec<(String, Tensor)> {
        let (names, params) = (self.base.names(), self.base.params());
        let mut out = vec![("step".to_string(), Tensor::scalar(self.step as f32))];
        for (i, mo) in self.moments.iter().enumerate() {
            if let Some(mo) = mo {
                let shape = params[i].shape();
                out.push((
                    format!("{}.exp_avg", names[i]),
                    Tensor::from_vec(mo.m.clone(), shape),
                ));
                out.push((
                    format!("{}.exp_avg_sq", names[i]),
                    Tensor::from_vec(mo.v.clone(), shape),
                ));
            }
        }
        out
    }

    fn load_rule_state(&mut self, state: &[(String, Tensor)]) -> anyhow::Result<()> {
        let (names, params) = (self.base.names(), self.base.params());
        let matched = match_state(state, names, params, &SUFFIXES, &["step"], "Adam")?;
        check_complete(&matched, names, &SUFFIXES)?;
        let step = match state.iter().find(|(n, _)| n == "step") {
            None => 0,
            Some((_, t)) => {
                let v = t.to_vec().first().copied().unwrap_or(f32::NAN);
                if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0) {
                    bail!("the saved Adam step {v} is not a step count");
                }
                v as u64
            }
        };
        self.step = step;
        self.moments = matched
            .values
            .into_iter()
            .map(|mut v| {
                Some(Moments {
                    m: v[0].take()?,
                    v: v[1].take()?,
                })
            })
            .collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{numbered, Schedule};
    use super::*;

    #[test]
    fn first_adam_step_moves_by_lr() {
        // With bias correction, the first step is lr * g / (|g| + eps) = lr * sign(g).
        let p = Tensor::from_vec(vec![1.0, -1.0], &[2]).requires_grad_();
        let mut opt = Adam::new(numbered(std::slice::from_ref(&p)), AdamConfig::adam(0.1));
        p.set_grad(Some(Tensor::from_vec(vec![3.0, -0.2], &[2])));
        opt.step();
        let w = p.to_vec();
        assert!(
            (w[0] - 0.9).abs() < 1e-6 && (w[1] + 0.9).abs() < 1e-6,
            "{w:?}"
        );
    }

    #[test]
    fn adamw_decays_weights_independently_of_the_gradient() {
        let p = Tensor::from_vec(vec![2.0], &[1]).requires_grad_();
        let config = AdamConfig {
            weight_decay: 0.5,
            ..AdamConfig::adamw(0.1)
        };
        let mut opt = Adam::new(numbered(std::slice::from_ref(&p)), config);
        p.set_grad(Some(Tensor::from_vec(vec![0.0], &[1])));
        opt.step();
        // Zero gradient: only the decay acts, 2 * (1 - 0.1 * 0.5) = 1.9.
        assert!((p.item() - 1.9).abs() < 1e-6);
    }

    #[test]
    fn state_and_schedule_round_trip() {
        let p = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad_();
        let make = |t: &Tensor| {
            Adam::new(vec![("w".into(), t.clone())], AdamConfig::adamw(0.01))
                .with_schedule(Schedule::cosine(0.01, 10, 0.0))
        };
        let mut opt = make(&p);
        p.set_grad(Some(Tensor::from_vec(vec![0.3, -0.1], &[2])));
        opt.step();
        let state = opt.state();
        let q = Tensor::from_vec(p.to_vec(), &[2]).requires_grad_();
        let names: Vec<&str> = state.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["step", "w.exp_avg", "w.exp_avg_sq", "scheduler.last_epoch"]
        );
        let mut other = make(&q);
        other.load_state(&state).unwrap();
        assert_eq!(other.lr(), opt.lr());
        for (t, o) in [(&p, &mut opt), (&q, &mut other)] {
            t.set_grad(Some(Tensor::from_vec(vec![0.1, 0.1], &[2])));
            o.step();
        }
        assert_eq!(p.to_vec(), q.to_vec());
        assert_eq!(opt.lr(), other.lr());
        // A state with a schedule refuses an optimizer without one, and the other way round
        // the schedule starts over only when the state holds none.
        let mut bare = Adam::new(vec![("w".into(), q.clone())], AdamConfig::adamw(0.01));
        let e = bare.load_state(&state).unwrap_err().to_string();
        assert!(
            e.contains("scheduler.last_epoch") && e.contains("no schedule"),
            "{e}"
        );
        let e = other.load_state(&[("0.momentum_buffer".into(), Tensor::zeros(&[2]))]);
        assert!(e.unwrap_err().to_string().contains("not Adam state"));
    }

    #[test]
    fn the_decay_mask_exempts_parameters_from_weight_decay() {
        // Zero gradients: only weight decay moves a weight.
        let a = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad_();
        let b = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad_();
        a.mul_scalar(0.0).sum_all().backward().unwrap();
        b.mul_scalar(0.0).sum_all().backward().unwrap();
        let config = AdamConfig {
            weight_decay: 0.5,
            ..AdamConfig::adamw(0.1)
        };
        let named = vec![("w".to_string(), a.clone()), ("b".to_string(), b.clone())];
        let mut opt = Adam::new(named, config).with_decay_mask(|n, _| n != "b");
        opt.step();
        let a = a.to_vec();
        assert!(
            (a[0] - 0.95).abs() < 1e-6 && (a[1] - 1.9).abs() < 1e-6,
            "{a:?}"
        );
        assert_eq!(b.to_vec(), vec![1.0, 2.0]);
    }
}
