//! Stochastic gradient descent with momentum, Nesterov momentum and weight decay
//! (`torch.optim.SGD`).

use super::base::{check_complete, match_state};
use super::{LrScheduler, Optimizer, OptimizerBase, ParamGroup, StepReport};
use crate::kernels::optim::{sgd_update, SgdStep};
use crate::tensor::Tensor;

/// Hyper-parameters of SGD (`torch.optim.SGD`'s arguments).
#[derive(Clone, Debug)]
pub struct SgdConfig {
    /// The learning rate (an attached schedule's rate replaces it).
    pub lr: f32,
    /// Momentum factor (0: plain SGD).
    pub momentum: f32,
    /// Dampening of the gradient's share in the momentum buffer.
    pub dampening: f32,
    /// L2 penalty added to the gradient (`g + wd·p`).
    pub weight_decay: f32,
    /// Nesterov momentum.
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
///
/// ```
/// use neurite::optim::{Optimizer, Sgd, SgdConfig};
/// use neurite::Tensor;
///
/// let w = Tensor::from_vec(vec![1.0, -1.0], &[2]).requires_grad_();
/// let mut opt = Sgd::new(vec![("w".to_string(), w.clone())], SgdConfig { lr: 0.1, ..Default::default() });
/// (&w * &w).sum_all().backward().unwrap(); // gradient 2w
/// opt.step();
/// assert_eq!(w.to_vec(), [0.8, -0.8]);
/// ```
pub struct Sgd {
    /// The settings it was built with.
    pub config: SgdConfig,
    base: OptimizerBase,
    /// Per parameter (in the base's order): the momentum buffer, made at its first step.
    buffers: Vec<Option<Vec<f32>>>,
}

impl Sgd {
    /// SGD over `params` (a model's `named_parameters()`, or [`super::numbered`] tensors).
    pub fn new(params: Vec<(String, Tensor)>, config: SgdConfig) -> Sgd {
        assert!(
            !config.nesterov || (config.momentum > 0.0 && config.dampening == 0.0),
            "SGD: Nesterov momentum needs momentum > 0 and no dampening"
        );
        let base = OptimizerBase::new(params, config.lr, config.weight_decay);
        let buffers = vec![None; base.params().len()];
        Sgd {
            config,
            base,
            buffers,
        }
    }

    /// No weight decay for the parameters where `decays(name, shape)` is false (PyTorch's
    /// two parameter groups `{weight_decay: wd}` / `{weight_decay: 0}`).
    pub fn with_decay_mask(mut self, decays: impl Fn(&str, &[usize]) -> bool) -> Sgd {
        self.base.mask_decay(decays);
        self
    }

    /// A group of parameters with its own rate or weight decay.
    pub fn with_group(mut self, group: ParamGroup) -> Sgd {
        self.base.add_group(group);
        self
    }

    /// Attaches `schedule`, stepped after every update.
    pub fn with_schedule(mut self, schedule: impl LrScheduler + 'static) -> Sgd {
        self.base.set_schedule(Box::new(schedule));
        self
    }
}

const SUFFIXES: [&str; 1] = ["momentum_buffer"];

impl Optimizer for Sgd {
    fn base(&self) -> &OptimizerBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut OptimizerBase {
        &mut self.base
    }

    fn update(&mut self) -> StepReport {
        let c = &self.config;
        let mut report = StepReport::default();
        let params = self.base.params();
        for (i, (p, buf)) in params.iter().zip(self.buffers.iter_mut()).enumerate() {
            let Some(grad) = p.grad() else { continue };
            let first = buf.is_none();
            if c.momentum != 0.0 && first {
                *buf = Some(vec![0.0; grad.numel()]);
            }
            let step = SgdStep {
                lr: self.base.lr_of(i),
                momentum: c.momentum,
                dampening: c.dampening,
                weight_decay: self.base.weight_decay_of(i),
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
                report.non_finite(&self.base.names()[i]);
            }
        }
        report
    }

    fn rule_state(&self) -> Vec<(String, Tensor)> {
        let (names, params) = (self.base.names(), self.base.params());
        self.buffers
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let b = b.as_ref()?;
                let name = format!("{}.momentum_buffer", names[i]);
                Some((name, Tensor::from_vec(b.clone(), params[i].shape())))
            })
            .collect()
    }

    fn load_rule_state(&mut self, state: &[(String, Tensor)]) -> anyhow::Result<()> {
        let (names, params) = (self.base.names(), self.base.params());
        let matched = match_state(state, names, params, &SUFFIXES, &[], "SGD")?;
        check_complete(&matched, names, &SUFFIXES)?;
        self.buffers = matched
            .values
            .into_iter()
            .map(|mut v| v[0].take())
            .collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::numbered;
    use super::*;

    fn one(v: f32) -> Tensor {
        Tensor::from_vec(vec![v], &[1]).requires_grad_()
    }

    #[test]
    fn momentum_and_weight_decay_follow_pytorch() {
        // One parameter p = 1 with constant gradient 0.5, lr 0.1, momentum 0.9, wd 0.01.
        let p = one(1.0);
        let config = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.01,
            ..Default::default()
        };
        let mut opt = Sgd::new(numbered(std::slice::from_ref(&p)), config);
        let mut expected = 1.0f32;
        let mut buf = 0.0f32;
        for step in 0..3 {
            p.set_grad(Some(Tensor::from_vec(vec![0.5], &[1])));
            opt.step();
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
        let p = one(0.0);
        let config = SgdConfig {
            lr: 1.0,
            momentum: 0.5,
            nesterov: true,
            ..Default::default()
        };
        let mut opt = Sgd::new(numbered(std::slice::from_ref(&p)), config);
        p.set_grad(Some(Tensor::from_vec(vec![1.0], &[1])));
        opt.step();
        // buf = 1; update = g + 0.5 * buf = 1.5
        assert_eq!(p.item(), -1.5);
    }

    #[test]
    fn the_decay_mask_and_groups_go_by_name() {
        // Zero gradients, no momentum: only weight decay moves a weight, p -= lr * wd * p.
        let (a, b, c) = (one(2.0), one(2.0), one(2.0));
        for t in [&a, &b, &c] {
            t.mul_scalar(0.0).sum_all().backward().unwrap();
        }
        let named = vec![
            ("fc.weight".to_string(), a.clone()),
            ("fc.bias".to_string(), b.clone()),
            ("head.weight".to_string(), c.clone()),
        ];
        let config = SgdConfig {
            lr: 0.1,
            weight_decay: 0.5,
            ..Default::default()
        };
        let mut sgd = Sgd::new(named, config)
            .with_decay_mask(|name, _| !name.ends_with("bias"))
            .with_group(ParamGroup::matching(|name, _| name.starts_with("head")).lr(0.2));
        sgd.step();
        assert!((a.item() - 1.9).abs() < 1e-6, "{}", a.item());
        assert_eq!(b.item(), 2.0);
        assert!((c.item() - 1.8).abs() < 1e-6, "{}", c.item());
    }

    #[test]
    fn state_is_keyed_by_name_and_resumes_in_another_order() {
        let (a, b) = (one(1.0), Tensor::ones(&[2, 2]).requires_grad_());
        let config = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            ..Default::default()
        };
        let named = vec![("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
        let mut opt = Sgd::new(named, config.clone());
        (&a * &a).sum_all().backward().unwrap();
        (&b * &b).sum_all().backward().unwrap();
        opt.step();
        let state = opt.state();
        let names: Vec<&str> = state.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a.momentum_buffer", "b.momentum_buffer"]);
        assert_eq!(state[1].1.shape(), [2, 2]);
        // The same parameters in the other order resume with the same buffers.
        let swapped = vec![("b".to_string(), b.clone()), ("a".to_string(), a.clone())];
        let mut other = Sgd::new(swapped, config.clone());
        other.load_state(&state).unwrap();
        let mut again = other.state();
        again.sort_by(|x, y| x.0.cmp(&y.0));
        for ((n, x), (m, y)) in state.iter().zip(&again) {
            assert_eq!((n, x.to_vec()), (m, y.to_vec()));
        }
        // A missing, an extra and a reshaped parameter are errors that name it.
        let err = |named: Vec<(String, Tensor)>| {
            let mut o = Sgd::new(named, config.clone());
            o.load_state(&state).unwrap_err().to_string()
        };
        let e = err(vec![("a".to_string(), a.clone())]);
        assert!(
            e.contains("'b.momentum_buffer'") && e.contains("no parameter 'b'"),
            "{e}"
        );
        let c = one(0.0);
        let e = err(vec![
            ("a".to_string(), a.clone()),
            ("b".to_string(), b.clone()),
            ("c".to_string(), c),
        ]);
        assert!(e.contains("no 'c.momentum_buffer'"), "{e}");
        let e = err(vec![
            ("a".to_string(), a.clone()),
            ("b".to_string(), one(0.0)),
        ]);
        assert!(e.contains("'b.momentum_buffer' has shape [2, 2]"), "{e}");
    }

    #[test]
    fn a_state_keyed_by_position_still_loads_or_says_why_not() {
        // The layout of earlier versions: `<position>.momentum_buffer`, flat.
        let legacy = vec![
            (
                "0.momentum_buffer".to_string(),
                Tensor::from_vec(vec![0.5], &[1]),
            ),
            (
                "1.momentum_buffer".to_string(),
                Tensor::from_vec(vec![1.0; 4], &[4]),
            ),
        ];
        let (a, b) = (one(1.0), Tensor::ones(&[2, 2]).requires_grad_());
        let config = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            ..Default::default()
        };
        let named = vec![
            ("fc.weight".to_string(), a.clone()),
            ("fc.bias".to_string(), b),
        ];
        let mut opt = Sgd::new(named, config.clone());
        opt.load_state(&legacy).unwrap();
        let state = opt.state();
        assert_eq!(state[0].0, "fc.weight.momentum_buffer");
        assert_eq!(state[1].1.shape(), [2, 2]);
        assert_eq!(state[1].1.to_vec(), [1.0; 4]);
        let mut wrong = Sgd::new(vec![("fc.weight".to_string(), a)], config);
        let e = wrong.load_state(&legacy).unwrap_err().to_string();
        assert!(
            e.contains("keyed by parameter position") && e.contains("--overwrite"),
            "{e}"
        );
    }
}
