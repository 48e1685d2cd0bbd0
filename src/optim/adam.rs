//! Adam and AdamW (`torch.optim.Adam`, `torch.optim.AdamW`).

use super::{find_state, Optimizer, StepReport};
use crate::kernels::optim::{adam_update, AdamStep};
use crate::tensor::Tensor;

/// Hyper-parameters of Adam / AdamW.
#[derive(Clone, Debug)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
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
pub struct Adam {
    pub config: AdamConfig,
    step: u64,
    moments: Vec<Option<Moments>>,
    /// Per parameter (in `step`'s order): whether weight decay applies; missing entries
    /// mean yes. PyTorch's two parameter groups `{weight_decay: wd}` / `{weight_decay: 0}`.
    decay_mask: Vec<bool>,
}

impl Adam {
    pub fn new(config: AdamConfig) -> Adam {
        Adam {
            config,
            step: 0,
            moments: Vec::new(),
            decay_mask: Vec::new(),
        }
    }

    /// Applies weight decay only to the parameters whose entry is true (nanoGPT decays the
    /// matrices and embeddings, not biases and LayerNorm gains).
    pub fn with_decay_mask(mut self, mask: Vec<bool>) -> Adam {
        self.decay_mask = mask;
        self
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &[Tensor]) -> StepReport {
        let c = self.config.clone();
        let mut report = StepReport::default();
        self.step += 1;
        let bc1 = 1.0 - c.beta1.powi(self.step as i32);
        let bc2 = 1.0 - c.beta2.powi(self.step as i32);
        self.moments.resize_with(params.len(), || None);
        for (i, (p, slot)) in params.iter().zip(self.moments.iter_mut()).enumerate() {
            let Some(grad) = p.grad() else { continue };
            let decays = self.decay_mask.get(i).copied().unwrap_or(true);
            let n = p.numel();
            let mo = slot.get_or_insert_with(|| Moments {
                m: vec![0.0; n],
                v: vec![0.0; n],
            });
            let step = AdamStep {
                lr: c.lr,
                beta1: c.beta1,
                beta2: c.beta2,
                eps: c.eps,
                weight_decay: if decays { c.weight_decay } else { 0.0 },
                decoupled: c.decoupled,
                bias_correction1: bc1,
                bias_correction2: bc2,
            };
            let finite = grad.with_slice(|g| {
                p.with_slice_mut(|w| adam_update(step, w, g, &mut mo.m, &mut mo.v))
            });
            if !finite {
                report.non_finite(i);
            }
        }
        report
    }

    fn lr(&self) -> f32 {
        self.config.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.config.lr = lr;
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("step".to_string(), Tensor::scalar(self.step as f32))];
        for (i, mo) in self.moments.iter().enumerate() {
            if let Some(mo) = mo {
                out.push((
                    format!("{i}.exp_avg"),
                    Tensor::from_vec(mo.m.clone(), &[mo.m.len()]),
                ));
                out.push((
                    format!("{i}.exp_avg_sq"),
                    Tensor::from_vec(mo.v.clone(), &[mo.v.len()]),
                ));
            }
        }
        out
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> anyhow::Result<()> {
        self.step = state
            .iter()
            .find(|(n, _)| n == "step")
            .map_or(0, |(_, t)| t.item() as u64);
        let count = state
            .iter()
            .filter_map(|(n, _)| n.split('.').next()?.parse::<usize>().ok())
            .max()
            .map_or(0, |m| m + 1);
        self.moments = Vec::with_capacity(count);
        for i in 0..count {
            let m = state
                .iter()
                .find(|(n, _)| *n == format!("{i}.exp_avg"))
                .map(|(_, t)| t.shape().to_vec());
            let Some(shape) = m else {
                self.moments.push(None);
                continue;
            };
            let m = find_state(state, &format!("{i}.exp_avg"), &shape)?
                .unwrap()
                .to_vec();
            let v = find_state(state, &format!("{i}.exp_avg_sq"), &shape)?
                .ok_or_else(|| anyhow::anyhow!("optimizer state {i}.exp_avg_sq is missing"))?
                .to_vec();
            self.moments.push(Some(Moments { m, v }));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_adam_step_moves_by_lr() {
        // With bias correction, the first step is lr * g / (|g| + eps) = lr * sign(g).
        let p = Tensor::from_vec(vec![1.0, -1.0], &[2]).requires_grad_();
        let mut opt = Adam::new(AdamConfig::adam(0.1));
        p.set_grad(Some(Tensor::from_vec(vec![3.0, -0.2], &[2])));
        opt.step(std::slice::from_ref(&p));
        let w = p.to_vec();
        assert!(
            (w[0] - 0.9).abs() < 1e-6 && (w[1] + 0.9).abs() < 1e-6,
            "{w:?}"
        );
    }

    #[test]
    fn adamw_decays_weights_independently_of_the_gradient() {
        let p = Tensor::from_vec(vec![2.0], &[1]).requires_grad_();
        let mut opt = Adam::new(AdamConfig {
            weight_decay: 0.5,
            ..AdamConfig::adamw(0.1)
        });
        p.set_grad(Some(Tensor::from_vec(vec![0.0], &[1])));
        opt.step(std::slice::from_ref(&p));
        // Zero gradient: only the decay acts, 2 * (1 - 0.1 * 0.5) = 1.9.
        assert!((p.item() - 1.9).abs() < 1e-6);
    }

    #[test]
    fn state_round_trips() {
        let p = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad_();
        let mut opt = Adam::new(AdamConfig::adamw(0.01));
        p.set_grad(Some(Tensor::from_vec(vec![0.3, -0.1], &[2])));
        opt.step(std::slice::from_ref(&p));
        let mut other = Adam::new(AdamConfig::adamw(0.01));
        other.load_state(&opt.state()).unwrap();
        let q = Tensor::from_vec(p.to_vec(), &[2]).requires_grad_();
        for (t, o) in [(&p, &mut opt), (&q, &mut other)] {
            t.set_grad(Some(Tensor::from_vec(vec![0.1, 0.1], &[2])));
            o.step(std::slice::from_ref(t));
        }
        assert_eq!(p.to_vec(), q.to_vec());
    }

    #[test]
    fn the_decay_mask_exempts_parameters_from_weight_decay() {
        // Zero gradients: only weight decay moves a weight.
        let a = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad_();
        let b = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad_();
        a.mul_scalar(0.0).sum_all().backward().unwrap();
        b.mul_scalar(0.0).sum_all().backward().unwrap();
        let mut opt = Adam::new(AdamConfig {
            weight_decay: 0.5,
            ..AdamConfig::adamw(0.1)
        })
        .with_decay_mask(vec![true, false]);
        opt.step(&[a.clone(), b.clone()]);
        let a = a.to_vec();
        assert!(
            (a[0] - 0.95).abs() < 1e-6 && (a[1] - 1.9).abs() < 1e-6,
            "{a:?}"
        );
        assert_eq!(b.to_vec(), vec![1.0, 2.0]);
    }
}
