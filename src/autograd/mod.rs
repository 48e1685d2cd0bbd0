//! Reverse-mode automatic differentiation over a dynamic graph, as PyTorch's eager mode.
//!
//! Every operation that has an input requiring a gradient records a [`Node`] on its output:
//! the inputs, and a closure that maps the gradient of the output to the gradients of the
//! inputs (the chain rule, one local step). [`Tensor::backward`] walks the nodes in reverse
//! topological order from a scalar, sums the gradients of tensors used more than once, and
//! accumulates the results into leaf tensors that require a gradient. Each node is taken out
//! of its tensor as it is used, so the graph of a training step is freed by its backward.
//!
//! Backward closures run with recording off: gradients are plain tensors. A closure gets the
//! gradient of its op's output and, for ops whose derivative is cheapest from their result
//! (exp, sigmoid, softmax), the output itself ([`Tensor::from_op_with_output`]).

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{bail, Result};

use crate::tensor::{Layout, Storage, Tensor};

/// Maps the gradient of an op's output, and the output itself, to one optional gradient per
/// input. The output is handed over when backward runs rather than captured when the op
/// runs: a closure stored in the output's own node that held the output would be a cycle.
pub type BackwardFn = Box<dyn Fn(&Tensor, &Tensor) -> Vec<Option<Tensor>> + Send + Sync>;

/// How a tensor was computed.
pub struct Node {
    pub(crate) name: &'static str,
    /// The inputs, each with the [`Tensor::version`] it had when the op ran.
    pub(crate) inputs: Vec<Saved>,
    /// The output's version when the op ran, for an op whose backward reads its output.
    pub(crate) output_version: Option<u64>,
    pub(crate) backward: BackwardFn,
}

/// An input of a node and the version of its storage that the op read.
pub(crate) struct Saved {
    pub(crate) tensor: Tensor,
    pub(crate) version: u64,
}

/// How [`Tensor::backward_with`] runs (PyTorch's `backward(gradient=, retain_graph=)`).
#[derive(Clone, Default)]
pub struct BackwardOptions {
    /// The gradient of some scalar with respect to the tensor, of its shape; `None` for a
    /// scalar (a loss), where it is 1.
    pub gradient: Option<Tensor>,
    /// Keep the graph, so that a second backward through it works (and adds to the
    /// gradients again); by default backward frees each node as it uses it.
    pub retain_graph: bool,
}

mod worker;
pub use worker::run_on_worker;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether operations on this thread record the graph.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Turns recording off until dropped (PyTorch's `torch.no_grad()`).
pub struct NoGradGuard {
    previous: bool,
}

impl NoGradGuard {
    #[allow(clippy::new_without_default)]
    /// Turns recording off on this thread until the guard is dropped.
    pub fn new() -> NoGradGuard {
        let previous = GRAD_ENABLED.with(|g| g.replace(false));
        NoGradGuard { previous }
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Runs `f` without recording the graph (inference, evaluation, optimizer updates).
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = NoGradGuard::new();
    f()
}

impl Tensor {
    /// The output of an operation: a fresh contiguous buffer, and the backward rule that is
    /// recorded when grad mode is on and some input requires a gradient.
    pub fn from_op<F>(
        data: Vec<f32>,
        shape: &[usize],
        name: &'static str,
        inputs: &[&Tensor],
        backward: F,
    ) -> Tensor
    where
        F: Fn(&Tensor) -> Vec<Option<Tensor>> + Send + Sync + 'static,
    {
        assert_eq!(
            data.len(),
            crate::tensor::layout::numel(shape),
            "{name}: output buffer does not match shape {shape:?}"
        );
        Tensor::from_view(
            Storage::new(data),
            Layout::contiguous(shape),
            name,
            inputs,
            backward,
        )
    }

    /// Like [`Tensor::from_op`] for an op whose backward reads its own output: the closure
    /// gets the output gradient and the output (a handle outside the graph, sharing its
    /// values), so it need not capture the output and no cycle forms.
    pub fn from_op_with_output<F>(
        data: Vec<f32>,
        shape: &[usize],
        name: &'static str,
        inputs: &[&Tensor],
        backward: F,
    ) -> Tensor
    where
        F: Fn(&Tensor, &Tensor) -> Vec<Option<Tensor>> + Send + Sync + 'static,
    {
        assert_eq!(
            data.len(),
            crate::tensor::layout::numel(shape),
            "{name}: output buffer does not match shape {shape:?}"
        );
        Tensor::record_node(
            Storage::new(data),
            Layout::contiguous(shape),
            name,
            inputs,
            true,
            move |g, y| backward(g, &y.detach()),
        )
    }

    /// Like [`Tensor::from_op`] for an output that views existing storage.
    pub(crate) fn from_view<F>(
        storage: Arc<Storage>,
        layout: Layout,
        name: &'static str,
        inputs: &[&Tensor],
        backward: F,
    ) -> Tensor
    where
        F: Fn(&Tensor) -> Vec<Option<Tensor>> + Send + Sync + 'static,
    {
        Tensor::record(storage, layout, name, inputs, move |g, _| backward(g))
    }

    /// The output tensor, with a node when grad mode is on and some input requires a
    /// gradient.
    fn record<F>(
        storage: Arc<Storage>,
        layout: Layout,
        name: &'static str,
        inputs: &[&Tensor],
        backward: F,
    ) -> Tensor
    where
        F: Fn(&Tensor, &Tensor) -> Vec<Option<Tensor>> + Send + Sync + 'static,
    {
        Tensor::record_node(storage, layout, name, inputs, false, backward)
    }

    /// [`Tensor::record`], saying whether backward reads the output (whose version is then
    /// checked too).
    fn record_node<F>(
        storage: Arc<Storage>,
        layout: Layout,
        name: &'static str,
        inputs: &[&Tensor],
        reads_output: bool,
        backward: F,
    ) -> Tensor
    where
        F: Fn(&Tensor, &Tensor) -> Vec<Option<Tensor>> + Send + Sync + 'static,
    {
        let record = is_grad_enabled() && inputs.iter().any(|t| t.requires_grad());
        let node = record.then(|| Node {
            name,
            inputs: inputs
                .iter()
                .map(|t| Saved {
                    tensor: (*t).clone(),
                    version: t.version(),
                })
                .collect(),
            output_version: reads_output.then(|| storage.version.load(Ordering::Relaxed)),
            backward: Box::new(backward),
        });
        Tensor::from_parts(storage, layout, node)
    }

    /// The name of the operation that produced this tensor, if it was recorded.
    pub fn op_name(&self) -> Option<&'static str> {
        self.inner.node.lock().unwrap().as_ref().map(|n| n.name)
    }

    /// Back-propagates from this scalar (a loss): afterwards every leaf that requires a
    /// gradient and that the loss depends on holds d(loss)/d(leaf) in `grad()`.
    ///
    /// **Gradients accumulate**, as in PyTorch: each backward *adds* to what `grad()` held
    /// before, so two forward/backward passes before an optimizer step train on the sum of
    /// their gradients (a large batch in two halves: scale each loss by 1/2 for the mean).
    /// Clear them with `zero_grad` (on each parameter, or the model's or optimizer's) before
    /// the next step's backward.
    ///
    /// Backward frees the graph as it goes (each node once used); a second backward through
    /// the same graph is an error unless the first kept it with
    /// [`BackwardOptions::retain_graph`] ([`Tensor::backward_with`]).
    ///
    /// # Errors
    ///
    /// PyTorch raises where neurite returns an error, with nothing changed (no gradient
    /// accumulated, the graph left as it was):
    /// - the tensor is not a scalar (use [`Tensor::backward_with`] and a `gradient`), or it
    ///   does not require a gradient (nothing it depends on is a parameter);
    /// - a tensor that some op's backward reads was changed in place after the forward
    ///   ([`Tensor::with_slice_mut`], [`Tensor::copy_from`], an optimizer step): its
    ///   [`version`](Tensor::version) differs from the one the op recorded, and the error
    ///   names the op, the input and both versions;
    /// - part of the graph was freed by an earlier backward.
    ///
    /// ```
    /// use neurite::Tensor;
    /// let w = Tensor::from_vec(vec![2.0], &[1]).requires_grad_();
    /// let x = Tensor::from_vec(vec![3.0], &[1]);
    /// w.mul(&x).sum_all().backward()?; // d(w x)/dw = x
    /// w.mul(&x).sum_all().backward()?; // accumulates: 3 + 3
    /// assert_eq!(w.grad().unwrap().to_vec(), vec![6.0]);
    /// w.zero_grad();
    ///
    /// let y = w.mul(&x).sum_all();
    /// x.with_slice_mut(|v| v[0] = 100.0); // changed after the forward pass
    /// let err = y.backward().unwrap_err().to_string();
    /// assert!(err.contains("modified by an inplace operation"), "{err}");
    /// # Ok::<(), neurite::Error>(())
    /// ```
    pub fn backward(&self) -> Result<()> {
        self.backward_with(BackwardOptions::default())
    }

    /// Back-propagates `grad` (the gradient of some scalar with respect to this tensor); as
    /// [`Tensor::backward`] otherwise.
    pub fn backward_with_grad(&self, grad: Tensor) -> Result<()> {
        self.backward_with(BackwardOptions {
            gradient: Some(grad),
            ..BackwardOptions::default()
        })
    }

    /// Back-propagates with [`BackwardOptions`]: a `gradient` for a non-scalar tensor, and
    /// `retain_graph` to keep the graph for another backward (which adds to the gradients
    /// again).
    ///
    /// ```
    /// use neurite::{autograd::BackwardOptions, Tensor};
    /// let w = Tensor::from_vec(vec![1.0], &[1]).requires_grad_();
    /// let loss = w.mul_scalar(2.0).sum_all();
    /// let keep = BackwardOptions { retain_graph: true, ..Default::default() };
    /// loss.backward_with(keep.clone())?;
    /// loss.backward_with(keep)?; // the graph is still there: 2 + 2
    /// assert_eq!(w.grad().unwrap().to_vec(), vec![4.0]);
    /// # Ok::<(), neurite::Error>(())
    /// ```
    pub fn backward_with(&self, options: BackwardOptions) -> Result<()> {
        self.run_backward(options, None)
    }

    /// [`Tensor::backward_with`], calling `on_grad_ready(leaf)` as soon as a leaf's gradient
    /// is final for this backward (PyTorch's `register_post_accumulate_grad_hook`, for one
    /// pass): once per leaf that requires a gradient and that the tensor depends on, right
    /// after its `grad()` was accumulated, while backward goes on with the rest of the
    /// graph. Backward sums every contribution to a tensor before it visits it (reverse
    /// topological order), so the gradient a hook sees is the one the pass leaves. The
    /// leaves come in the order backward finishes them, roughly the reverse of the forward
    /// pass: data-parallel training ([`crate::distributed`]) starts reducing a bucket of
    /// gradients as soon as its last one is ready, overlapping communication with the rest
    /// of backward. The hook runs on the thread that called backward.
    ///
    /// ```
    /// use neurite::{autograd::BackwardOptions, Tensor};
    /// let a = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad_();
    /// let b = Tensor::from_vec(vec![3.0], &[1]).requires_grad_();
    /// let loss = a.mul_scalar(2.0).sum_all().mul(&b).sum_all(); // b * 2 * sum(a)
    /// let mut ready = Vec::new();
    /// loss.backward_with_hook(BackwardOptions::default(), &mut |leaf| {
    ///     ready.push((leaf.id(), leaf.grad().unwrap().to_vec()));
    /// })?;
    /// assert_eq!(ready.len(), 2);
    /// assert!(ready.contains(&(a.id(), vec![6.0, 6.0]))); // 2 b
    /// assert!(ready.contains(&(b.id(), vec![6.0]))); // 2 sum(a)
    /// # Ok::<(), neurite::Error>(())
    /// ```
    pub fn backward_with_hook(
        &self,
        options: BackwardOptions,
        on_grad_ready: &mut dyn FnMut(&Tensor),
    ) -> Result<()> {
        self.run_backward(options, Some(on_grad_ready))
    }

    fn run_backward(
        &self,
        options: BackwardOptions,
        mut on_grad_ready: Option<&mut dyn FnMut(&Tensor)>,
    ) -> Result<()> {
        let grad = match options.gradient {
            Some(g) => {
                if g.shape() != self.shape() {
                    bail!(
                        "backward: the gradient has shape {:?} but the tensor has shape {:?}; \
                         pass a gradient of the tensor's shape",
                        g.shape(),
                        self.shape()
                    );
                }
                g
            }
            None => {
                if self.numel() != 1 {
                    bail!(
                        "backward() needs a scalar (one element), got shape {:?}: reduce it \
                         (sum_all, mean_all) or pass a gradient with backward_with",
                        self.shape()
                    );
                }
                Tensor::ones(self.shape())
            }
        };
        if !self.requires_grad() {
            bail!(
                "backward() on a tensor that does not require a gradient: nothing it depends on \
                 is a parameter (requires_grad_), or it was computed under no_grad or from a detached tensor"
            );
        }
        let _guard = NoGradGuard::new();
        let order = backward_order(self);
        check_graph(&order)?;
        let mut grads: HashMap<u64, Tensor> = HashMap::new();
        grads.insert(self.id(), grad);
        for t in &order {
            let Some(g) = grads.remove(&t.id()) else {
                continue;
            };
            let node = t.inner.node.lock().unwrap().take();
            let Some(node) = node else {
                accumulate_into_leaf(t, g);
                if let Some(hook) = on_grad_ready.as_mut() {
                    hook(t);
                }
                continue;
            };
            let input_grads = (node.backward)(&g, t);
            assert_eq!(
                input_grads.len(),
                node.inputs.len(),
                "{}: backward returned the wrong number of gradients",
                node.name
            );
            for (input, ig) in node.inputs.iter().zip(input_grads) {
                let input = &input.tensor;
                let Some(ig) = ig else { continue };
                if !input.requires_grad() {
                    continue;
                }
                assert_eq!(
                    ig.shape(),
                    input.shape(),
                    "{}: backward produced a gradient of shape {:?} for an input of shape {:?}",
                    node.name,
                    ig.shape(),
                    input.shape()
                );
                match grads.remove(&input.id()) {
                    Some(prev) => grads.insert(input.id(), prev.add(&ig)),
                    None => grads.insert(input.id(), ig),
                };
            }
            if options.retain_graph {
                *t.inner.node.lock().unwrap() = Some(node);
            } else {
                t.inner.graph_freed.store(true, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// Checks, before any gradient is computed, that every node of `order` can run: no tensor it
/// reads was changed in place since the forward pass, and no part was freed by an earlier
/// backward. One atomic load per saved tensor. The nodes are checked inputs first (the
/// reverse of backward's order), so the error names the earliest op of the forward pass
/// that cannot run.
fn check_graph(order: &[Tensor]) -> Result<()> {
    for t in order.iter().rev() {
        let node = t.inner.node.lock().unwrap();
        let Some(node) = node.as_ref() else {
            if t.inner.graph_freed.load(Ordering::Relaxed) {
                bail!(
                    "backward() through a part of the graph that an earlier backward() already freed \
                     (a tensor of shape {:?}); recompute the forward pass (views and other intermediate \
                     results too) for each backward, or pass retain_graph: true to the first (backward_with)",
                    t.shape()
                );
            }
            continue;
        };
        for (i, saved) in node.inputs.iter().enumerate() {
            let now = saved.tensor.version();
            if now != saved.version {
                bail!(
                    "backward(): one of the variables needed for gradient computation has been \
                     modified by an inplace operation: input {i} of `{}` (shape {:?}) is at version \
                     {now}; expected version {} instead. A tensor that the forward pass read was \
                     changed in place (with_slice_mut, copy_from, an optimizer step) before backward: \
                     change it after backward, or compute the forward pass again after changing it",
                    node.name,
                    saved.tensor.shape(),
                    saved.version
                );
            }
        }
        if let Some(saved) = node.output_version {
            let now = t.version();
            if now != saved {
                bail!(
                    "backward(): one of the variables needed for gradient computation has been \
                     modified by an inplace operation: the output of `{}` (shape {:?}) is at version \
                     {now}; expected version {saved} instead. Its backward reads its output, which was \
                     changed in place before backward: change a copy (Tensor::from_vec(t.to_vec(), t.shape())) instead",
                    node.name,
                    t.shape()
                );
            }
        }
    }
    Ok(())
}

fn accumulate_into_leaf(t: &Tensor, g: Tensor) {
    let mut slot = t.inner.grad.lock().unwrap();
    *slot = Some(match slot.take() {
        Some(prev) => prev.add(&g),
        // The stored gradient must own its buffer (optimizers and clipping may scale it in
        // place): copy only when the backward rule returned a view or a shared tensor.
        None => g.into_exclusive(),
    });
}

/// Tensors that `root` depends on through recorded nodes, in the order backward visits
/// them: each after every tensor that consumes it (root first), and each leaf right after
/// its last consumer, so that a parameter's gradient is final, and its hook fires, as soon
/// as it can be: the last layer's first, which lets data-parallel training start reducing
/// those while backward goes on through the earlier layers (Kahn's algorithm on consumer
/// counts; the ready nodes taken last-in first-out, depth first like the forward's chain).
fn backward_order(root: &Tensor) -> Vec<Tensor> {
    /// The inputs of `t`'s recorded node that take a gradient (none for a leaf).
    fn grad_inputs(t: &Tensor) -> Option<Vec<Tensor>> {
        let node = t.inner.node.lock().unwrap();
        node.as_ref().map(|n| {
            n.inputs
                .iter()
                .map(|s| &s.tensor)
                .filter(|i| i.requires_grad())
                .cloned()
                .collect()
        })
    }
    // How many edges of the graph read each tensor. Iterative: deep graphs (long
    // sequences) must not overflow the stack.
    let mut consumers: HashMap<u64, usize> = HashMap::new();
    let mut seen = HashSet::from([root.id()]);
    let mut stack = vec![root.clone()];
    while let Some(t) = stack.pop() {
        for input in grad_inputs(&t).unwrap_or_default() {
            *consumers.entry(input.id()).or_insert(0) += 1;
            if seen.insert(input.id()) {
                stack.push(input);
            }
        }
    }
    let mut order = Vec::with_capacity(seen.len());
    let mut ready = vec![root.clone()];
    while let Some(t) = ready.pop() {
        let inputs = grad_inputs(&t).unwrap_or_default();
        order.push(t);
        for input in inputs {
            let left = consumers
                .get_mut(&input.id())
                .expect("every input was counted");
            *left -= 1;
            if *left == 0 {
                if input.inner.node.lock().unwrap().is_none() {
                    order.push(input); // A leaf: its gradient is final here.
                } else {
                    ready.push(input);
                }
            }
        }
    }
    order
}
