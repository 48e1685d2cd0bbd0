//! What every optimizer shares: its parameters by name (in the order given at construction),
//! each parameter's weight decay and learning-rate scale (PyTorch's parameter groups), the
//! learning rate and the schedule attached to it, and the checks of a saved state against
//! the parameters.
//!
//! Per-parameter state lives in a `Vec` aligned with the parameter list, built once: a step
//! walks the list by position and never looks a name up.

use super::LrScheduler;
use crate::tensor::Tensor;
use anyhow::{bail, Result};
use std::collections::HashSet;

/// Names the parameters of a bare list `0`, `1`, … (for a few tensors that are not a module's).
///
/// ```
/// use neurite::optim::{numbered, Optimizer, Sgd, SgdConfig};
/// use neurite::Tensor;
///
/// let w = Tensor::from_vec(vec![1.0], &[1]).requires_grad_();
/// let mut opt = Sgd::new(numbered(&[w.clone()]), SgdConfig { lr: 0.5, ..Default::default() });
/// (&w * &w).sum_all().backward().unwrap(); // d(w²)/dw = 2
/// opt.step();
/// assert_eq!(w.item(), 0.0);
/// assert_eq!(opt.param_names(), ["0"]);
/// ```
pub fn numbered(params: &[Tensor]) -> Vec<(String, Tensor)> {
    params
        .iter()
        .enumerate()
        .map(|(i, p)| (i.to_string(), p.clone()))
        .collect()
}

/// Chooses parameters by name and shape.
pub type ParamFilter = dyn Fn(&str, &[usize]) -> bool;

/// A group of parameters with its own learning rate and/or weight decay (PyTorch's
/// `param_groups`), chosen by name and shape.
///
/// A group's `lr` is kept as a ratio to the optimizer's `lr`, so an attached schedule scales
/// every group alike (as PyTorch's multiplicative schedulers do with each group's base rate).
///
/// ```
/// use neurite::optim::{numbered, Optimizer, ParamGroup, Sgd, SgdConfig};
/// use neurite::Tensor;
///
/// let params = vec![
///     ("fc.weight".to_string(), Tensor::ones(&[2, 2]).requires_grad_()),
///     ("fc.bias".to_string(), Tensor::ones(&[2]).requires_grad_()),
/// ];
/// let opt = Sgd::new(params, SgdConfig { lr: 0.1, weight_decay: 5e-4, ..Default::default() })
///     .with_group(ParamGroup::matching(|name, _| name.ends_with("bias")).lr(0.2).weight_decay(0.0));
/// assert_eq!(opt.lr(), 0.1);
/// ```
pub struct ParamGroup {
    filter: Box<ParamFilter>,
    lr: Option<f32>,
    weight_decay: Option<f32>,
}

impl ParamGroup {
    /// The parameters for which `filter(name, shape)` is true.
    pub fn matching(filter: impl Fn(&str, &[usize]) -> bool + 'static) -> ParamGroup {
        ParamGroup {
            filter: Box::new(filter),
            lr: None,
            weight_decay: None,
        }
    }

    /// The group's learning rate (before any schedule).
    pub fn lr(mut self, lr: f32) -> ParamGroup {
        self.lr = Some(lr);
        self
    }

    /// The group's weight decay.
    pub fn weight_decay(mut self, weight_decay: f32) -> ParamGroup {
        self.weight_decay = Some(weight_decay);
        self
    }
}

/// The parameters of an optimizer and what applies to each; see the module's documentation.
pub struct OptimizerBase {
    names: Vec<String>,
    params: Vec<Tensor>,
    /// Per parameter: its weight decay (the optimizer's, a group's, or 0 where masked).
    weight_decay: Vec<f32>,
    /// Per parameter: its rate over the optimizer's (1 outside groups).
    lr_scale: Vec<f32>,
    /// The rate of the next step (the schedule's when one is attached).
    lr: f32,
    /// The rate given at construction, which a group's rate is a ratio to.
    configured_lr: f32,
    schedule: Option<Box<dyn LrScheduler>>,
}

impl OptimizerBase {
    /// The parameters `named` (each name once), all with `weight_decay`, at rate `lr`.
    pub fn new(named: Vec<(String, Tensor)>, lr: f32, weight_decay: f32) -> OptimizerBase {
        let mut seen = HashSet::new();
        for (name, _) in &named {
            assert!(
                seen.insert(name.as_str()),
                "optimizer: the parameter '{name}' is given twice; give each parameter once (a model's named_parameters())"
            );
        }
        let n = named.len();
        let (names, params) = named.into_iter().unzip();
        OptimizerBase {
            names,
            params,
            weight_decay: vec![weight_decay; n],
            lr_scale: vec![1.0; n],
            lr,
            configured_lr: lr,
            schedule: None,
        }
    }

    /// The parameters, in construction order.
    pub fn params(&self) -> &[Tensor] {
        &self.params
    }

    /// The parameters' names, in the same order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// No weight decay for the parameters where `decays(name, shape)` is false.
    pub fn mask_decay(&mut self, decays: impl Fn(&str, &[usize]) -> bool) {
        for i in 0..self.params.len() {
            if !decays(&self.names[i], self.params[i].shape()) {
                self.weight_decay[i] = 0.0;
            }
        }
    }

    /// Applies `group` to its parameters.
    pub fn add_group(&mut self, group: ParamGroup) {
        for i in 0..self.params.len() {
            if (group.filter)(&self.names[i], self.params[i].shape()) {
                if let Some(lr) = group.lr {
                    self.lr_scale[i] = lr / self.configured_lr;
                }
                if let Some(wd) = group.weight_decay {
                    self.weight_decay[i] = wd;
                }
            }
        }
    }

    /// The weight decay of parameter `i`.
    pub fn weight_decay_of(&self, i: usize) -> f32 {
        self.weight_decay[i]
    }

    /// The rate of parameter `i` in the next step.
    pub fn lr_of(&self, i: usize) -> f32 {
        self.lr * self.lr_scale[i]
    }

    /// The rate of the next step.
    pub fn lr(&self) -> f32 {
        self.lr
    }

    /// Sets the rate of the next step (a schedule sets it again after each step).
    pub fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    /// Attaches `schedule`: the rate becomes its current one.
    pub fn set_schedule(&mut self, schedule: Box<dyn LrScheduler>) {
        self.lr = schedule.last_lr();
        self.schedule = Some(schedule);
    }

    /// The attached schedule.
    pub fn schedule(&self) -> Option<&dyn LrScheduler> {
        self.schedule.as_deref()
    }

    /// Steps the schedule by one optimizer step (after an update, or for a skipped batch).
    pub fn advance_schedule(&mut self) {
        if let Some(s) = &mut self.schedule {
            s.step();
            self.lr = s.last_lr();
        }
    }

    /// Gives the schedule a metric (`ReduceOnPlateau`; other schedules ignore it).
    pub fn step_metric(&mut self, metric: f32) {
        if let Some(s) = &mut self.schedule {
            s.step_metric(metric);
            self.lr = s.last_lr();
        }
    }

    /// The schedule's state, its names under `scheduler.`.
    pub fn schedule_state(&self) -> Vec<(String, Tensor)> {
        let Some(s) = &self.schedule else {
            return Vec::new();
        };
        s.state()
            .into_iter()
            .map(|(k, v)| (format!("{SCHEDULER_PREFIX}{k}"), Tensor::scalar(v)))
            .collect()
    }

    /// Restores the schedule's state from `state` (the entries under `scheduler.`).
    pub fn load_schedule_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let mine: Vec<(String, f32)> = state
            .iter()
            .filter_map(|(n, t)| Some((n.strip_prefix(SCHEDULER_PREFIX)?.to_string(), t)))
            .map(|(n, t)| (n, t.to_vec().first().copied().unwrap_or(f32::NAN)))
            .collect();
        match &mut self.schedule {
            None if mine.is_empty() => Ok(()),
            None => bail!(
                "the saved optimizer state holds a learning-rate schedule's state ({}) but this optimizer has no schedule; attach the same schedule before loading",
                mine.iter().map(|(n, _)| format!("{SCHEDULER_PREFIX}{n}")).collect::<Vec<_>>().join(", ")
            ),
            Some(s) => {
                s.load_state(&mine)?;
                self.lr = s.last_lr();
                Ok(())
            }
        }
    }
}

/// The names of a schedule's state inside an optimizer's start with this.
pub const SCHEDULER_PREFIX: &str = "scheduler.";

/// A saved per-parameter state, matched to the parameters by name.
pub(crate) struct Matched {
    /// Per parameter (in the optimizer's order), per suffix: the saved values.
    pub values: Vec<Vec<Option<Vec<f32>>>>,
}

/// Matches the per-parameter entries of `state` (`<name>.<suffix>`, suffixes of `suffixes`)
/// to the parameters `names`/`params`; entries in `scalars` (and the schedule's) are left to
/// the caller. `what` names the optimizer in errors.
///
/// A state keyed by position (`0.momentum_buffer`, …: written by neurite before state was
/// keyed by name) is matched by position when the parameters have the same count and sizes.
pub(crate) fn match_state(
    state: &[(String, Tensor)],
    names: &[String],
    params: &[Tensor],
    suffixes: &[&str],
    scalars: &[&str],
    what: &str,
) -> Result<Matched> {
    let mut values = vec![vec![None; suffixes.len()]; names.len()];
    let mut entries = Vec::new();
    for (key, t) in state {
        if scalars.contains(&key.as_str()) || key.starts_with(SCHEDULER_PREFIX) {
            continue;
        }
        let Some((name, s)) = suffixes
            .iter()
            .enumerate()
            .find_map(|(s, suf)| Some((key.strip_suffix(suf)?.strip_suffix('.')?, s)))
        else {
            bail!(
                "'{key}' is not {what} state (expected <parameter>.{}): the checkpoint was written by another optimizer; start over (e.g. --overwrite) or use the optimizer that wrote it",
                suffixes.join(" or <parameter>.")
            );
        };
        entries.push((key.as_str(), name, s, t));
    }
    let by_position = !entries.is_empty()
        && entries.iter().all(|(_, name, _, _)| {
            name.parse::<usize>().is_ok() && !names.iter().any(|n| n == name)
        });
    for (key, name, s, t) in entries {
        let i = if by_position {
            let i: usize = name.parse().unwrap();
            if i >= params.len() {
                bail!(
                    "the optimizer state was written by an earlier neurite, keyed by parameter position, and holds '{key}' but the model has {} parameters: it belongs to another model; resume it with the neurite that wrote it, or start over (e.g. --overwrite; the earlier file stays as it is until then)",
                    params.len()
                );
            }
            if t.numel() != params[i].numel() {
                bail!(
                    "the optimizer state was written by an earlier neurite, keyed by parameter position: '{key}' has {} values but parameter {i} ('{}') has {}: the model's parameters changed since; resume it with the neurite that wrote it, or start over (e.g. --overwrite)",
                    t.numel(),
                    names[i],
                    params[i].numel()
                );
            }
            i
        } else {
            let Some(i) = names.iter().position(|n| n == name) else {
                bail!(
                    "the optimizer state holds '{key}' but the model has no parameter '{name}': the checkpoint belongs to another model (or the parameter was renamed)"
                );
            };
            if t.shape() != params[i].shape() {
                bail!(
                    "the optimizer state '{key}' has shape {:?} but the parameter '{name}' has shape {:?}: the checkpoint belongs to another model",
                    t.shape(),
                    params[i].shape()
                );
            }
            i
        };
        values[i][s] = Some(t.to_vec());
    }
    Ok(Matched { values })
}

/// Checks that a non-empty saved state covers every parameter, naming the first entry it
/// misses.
pub(crate) fn check_complete(matched: &Matched, names: &[String], suffixes: &[&str]) -> Result<()> {
    if !matched.values.iter().flatten().any(Option::is_some) {
        return Ok(());
    }
    for (i, v) in matched.values.iter().enumerate() {
        if let Some(s) = v.iter().position(Option::is_none) {
            bail!(
                "the optimizer state has no '{}.{}': the model has a parameter '{}' that the checkpoint's model did not have (or it was renamed); start over (e.g. --overwrite)",
                names[i],
                suffixes[s],
                names[i]
            );
        }
    }
    Ok(())
}
