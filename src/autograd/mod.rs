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

use crate::tensor::{Layout, Storage, Tensor};

/// Maps the gradient of an op's output, and the output itself, to one optional gradient per
/// input. The output is handed over when backward runs rather than captured when the op
/// runs: a closure stored in the output's own node that held the output would be a cycle.
pub type BackwardFn = Box<dyn Fn(&Tensor, &Tensor) -> Vec<Option<Tensor>> + Send + Sync>;

/// How a tensor was computed.
pub struct Node {
    pub(crate) name: &'static str,
    pub(crate) inputs: Vec<Tensor>,
    pub(crate) backward: BackwardFn,
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
        Tensor::record(
            Storage::new(data),
            Layout::contiguous(shape),
            name,
            inputs,
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
        let record = is_grad_enabled() && inputs.iter().any(|t| t.requires_grad());
        let node = record.then(|| Node {
            name,
            inputs: inputs.iter().map(|t| (*t).clone()).collect(),
            backward: Box::new(backward),
        });
        Tensor::from_parts(storage, layout, node)
    }

    /// The name of the operation that produced this tensor, if it was recorded.
    pub fn op_name(&self) -> Option<&'static str> {
        self.inner.node.lock().unwrap().as_ref().map(|n| n.name)
    }

    /// Back-propagates from this scalar (a loss): afterwards every leaf that requires a
    /// gradient and that the loss depends on holds d(loss)/d(leaf) in `grad()`, added to
    /// what it held before.
    pub fn backward(&self) {
        assert_eq!(
            self.numel(),
            1,
            "backward() needs a scalar (one element), got shape {:?}; call backward_with_grad for other outputs",
            self.shape()
        );
        self.backward_with_grad(Tensor::ones(self.shape()));
    }

    /// Back-propagates `grad` (the gradient of some scalar with respect to this tensor).
    pub fn backward_with_grad(&self, grad: Tensor) {
        assert_eq!(
            grad.shape(),
            self.shape(),
            "backward_with_grad: gradient shape differs from the tensor's"
        );
        assert!(
            self.requires_grad(),
            "backward() on a tensor that does not require a gradient: nothing to differentiate"
        );
        let _guard = NoGradGuard::new();
        let order = topological_order(self);
        let mut grads: HashMap<u64, Tensor> = HashMap::new();
        grads.insert(self.id(), grad);
        for t in order.iter().rev() {
            let Some(g) = grads.remove(&t.id()) else {
                continue;
            };
            let node = t.inner.node.lock().unwrap().take();
            let Some(node) = node else {
                assert!(
                    !t.inner.graph_freed.load(Ordering::Relaxed),
                    "backward() through a part of the graph that an earlier backward() already freed; \
                     recompute the forward pass (views and other intermediate results too) for each backward"
                );
                accumulate_into_leaf(t, g);
                continue;
            };
            t.inner.graph_freed.store(true, Ordering::Relaxed);
            let input_grads = (node.backward)(&g, t);
            assert_eq!(
                input_grads.len(),
                node.inputs.len(),
                "{}: backward returned the wrong number of gradients",
                node.name
            );
            for (input, ig) in node.inputs.iter().zip(input_grads) {
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
        }
    }
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

/// Tensors that `root` depends on through recorded nodes, inputs before outputs.
fn topological_order(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut visited = HashSet::new();
    // Iterative depth-first search: deep graphs (long sequences) must not overflow the stack.
    let mut stack: Vec<(Tensor, bool)> = vec![(root.clone(), false)];
    while let Some((t, children_done)) = stack.pop() {
        if children_done {
            order.push(t);
            continue;
        }
        if !visited.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        let node = t.inner.node.lock().unwrap();
        if let Some(node) = node.as_ref() {
            for input in &node.inputs {
                if input.requires_grad() && !visited.contains(&input.id()) {
                    stack.push((input.clone(), false));
                }
            }
        }
    }
    order
}
