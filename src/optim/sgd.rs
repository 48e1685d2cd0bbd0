//! Stochastic gradient descent with momentum, Nesterov momentum and weight decay
//! (`torch.optim.SGD`).

use super::{Optimizer, StepReport};
use crate::kernels::optim::{sgd_update, SgdStep};
use crate::tensor::Tensor;

/// Hyper-parameters of SGD.
#[derive(Clone, Debug)]
pub struct SgdConfig {
    pub lr: f32,
    pub momentum: f32,
    pub dampening: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 0.01,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

/// SGD as PyTorch defines it:
/// `g = grad + wd·p; buf = μ·buf + (1−dampening)·g (buf = g on the first step);
/// g = g + μ·buf (Nesterov) or buf; p -= lr·g`.
pub struct Sgd {
    pub config: SgdConfig,
    buffers: Vec<Option<Vec<f32>>>,
    /// Per parameter (in `step`'s order): whether weight decay applies; missing entries
    /// mean yes (PyTorch's parameter groups `{weight_decay: wd}` / `{weight_decay: 0}`).
    decay_mask: Vec<bool>,
}

impl Sgd {
    pub fn new(config: SgdConfig) -> Sgd {
        assert!(
            !config.nesterov || (config.momentum > 0.0 && config.dampening == 0.0),
            "SGD: Nesterov momentum needs momentum > 0 and no dampening"
        );
        Sgd {
            config,
            buffers: Vec::new(),
            decay_mask: Vec::new(),
        }
    }

    /// Applies weight decay only to the parameters whose entry is true.
    pub fn with_decay_mask(mut self, mask: Vec<bool>) -> Sgd {
        self.decay_mask = mask;
        self
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &[Tensor]) -> StepReport {
        let c = self.config.clone();
        let mut report = StepReport::default();
        self.buffers.resize(params.len(), None);
        for (i, (p, buf)) in params.iter().zip(self.buffers.iter_mut()).enumerate() {
            let Some(grad) = p.grad() else { continue };
            if buf.as_ref().is_some_and(|b| b.len() != grad.numel()) {
                panic!("SGD: momentum buffer does not match the parameter's size: the parameter list changed");
            }
            let first = buf.is_none();
            if c.momentum != 0.0 && first {
                *buf = Some(vec![0.0; grad.numel()]);
            }
            let step = SgdStep {
                lr: c.lr,
                momentum: c.momentum,
                dampening: c.dampening,
                weight_decay: if self.decay_mask.get(i).copied().unwrap_or(true) {
                    c.weight_decay
                } else {
                    0.0
                },
                nesterov: c.nesterov,
                first,
            };
            let finite = grad.with_slice(|g| {
                p.with_slice_mut(|w| match buf.as_mut().filter(|_| c.momentum != 0.0) {
                    None => sgd_update(step, w, g, &mut []),
                    Some(b) => sgd_update(step, w, g, b),
                })
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
        self.buffers
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                b.as_ref().map(|b| {
                    (
                        format!("{i}.momentum_buffer"),
                        Tensor::from_vec(b.clone(), &[b.len()]),
                    )
                })
            })
            .collect()
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> anyhow::Result<()> {
        self.buffers.clear();
        for (name, t) in state {
            let i: usize = name
                .strip_suffix(".momentum_buffer")
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("'{name}' is not SGD state: the checkpoint was written by another optimizer"))?;
            if self.buffers.len() <= i {
                self.buffers.resize(i + 1, None);
            }
            self.buffers[i] = Some(t.to_vec());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn momentum_and_weight_decay_follow_pytorch() {
        // One parameter p = 1 with constant gradient 0.5, lr 0.1, momentum 0.9, wd 0.01.
        let p = Tensor::from_vec(vec![1.0], &[1]).requires_grad_();
        let mut opt = Sgd::new(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.01,
            ..Default::default()
        });
        let mut expected = 1.0f32;
        let mut buf = 0.0f32;
        for step in 0..3 {
            p.set_grad(Some(Tensor::from_vec(vec![0.5], &[1])));
            opt.step(std::slice::from_ref(&p));
            let g = 0.5 + 0.01 * expected;
            buf = if step == 0 { g } else { 0.9 * buf + g };
            expected -= 0.1 * buf;
            assert!(
                (p.item() - expected).abs() < 1e-6,
                "step {step}: {} vs {expected}",
                p.item()
            );
        }
    }

    #[test]
    fn nesterov_looks_ahead() {
        let p = Tensor::from_vec(vec![0.0], &[1]).requires_grad_();
        let mut opt = Sgd::new(SgdConfig {
            lr: 1.0,
            momentum: 0.5,
            nesterov: true,
            ..Default::default()
        });
        p.set_grad(Some(Tensor::from_vec(vec![1.0], &[1])));
        opt.step(std::slice::from_ref(&p));
        // buf = 1; update = g + 0.5 * buf = 1.5
        assert_eq!(p.item(), -1.5);
    }

    #[test]
    fn the_decay_mask_exempts_parameters_from_weight_decay() {
        // Zero gradients, no momentum: only weight decay moves a weight, p -= lr * wd * p.
        let a = Tensor::from_vec(vec![2.0], &[1]).requires_grad_();
        let b = Tensor::from_vec(vec![2.0], &[1]).requires_grad_();
        a.mul_scalar(0.0).sum_all().backward().unwrap();
        b.mul_scalar(0.0).sum_all().backward().unwrap();
        let mut sgd = Sgd::new(SgdConfig {
            lr: 0.1,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.5,
            nesterov: false,
        })
        .with_decay_mask(vec![true, false]);
        sgd.step(&[a.clone(), b.clone()]);
        assert!((a.to_vec()[0] - 1.9).abs() < 1e-6, "{}", a.to_vec()[0]);
        assert_eq!(b.to_vec()[0], 2.0);
    }
}
