//! The tensor: an f32 buffer shared between views, a layout, and its place in the autograd
//! graph.
//!
//! A `Tensor` is a cheap handle (an `Arc`), as in PyTorch: cloning it shares the same
//! tensor, not a copy. Views (`reshape`, `permute`, `narrow`, `expand`) share the storage
//! and only change the [`Layout`]. Kernels work on contiguous slices; `contiguous()` makes
//! a dense copy when a view is not.

mod bool;
mod create;
mod index;
mod int;
pub mod layout;
mod ops_overload;
mod print;
pub mod rng;
mod shape;
mod view;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use self::bool::BoolTensor;
pub use index::{IndexItem, IntoIndexItem, TensorIndex};
pub use int::{AsIndices, IntTensor};
pub use layout::Layout;
pub use shape::IntoShape;

use crate::autograd::Node;
use crate::runtime::buffers;

/// The flat f32 buffer behind one or more tensors.
pub(crate) struct Storage {
    pub(crate) data: RwLock<Vec<f32>>,
    /// How many times the buffer was written in place (PyTorch's version counter), shared by
    /// every view of it. A graph node records the versions of the tensors its backward reads,
    /// and `backward` refuses to run when one has changed since: the gradient would be
    /// computed from values the forward pass never saw.
    pub(crate) version: AtomicU64,
}

impl Storage {
    pub(crate) fn new(data: Vec<f32>) -> Arc<Storage> {
        Arc::new(Storage {
            data: RwLock::new(data),
            version: AtomicU64::new(0),
        })
    }
}

impl Drop for Storage {
    /// The buffer goes back to the [`buffers`] pool for the next step's tensors.
    fn drop(&mut self) {
        let data = self.data.get_mut().unwrap_or_else(|e| e.into_inner());
        buffers::give(std::mem::take(data));
    }
}

pub(crate) struct Inner {
    pub(crate) id: u64,
    pub(crate) storage: Arc<Storage>,
    pub(crate) layout: Layout,
    pub(crate) requires_grad: AtomicBool,
    /// Accumulated gradient of a leaf tensor (a parameter).
    pub(crate) grad: Mutex<Option<Tensor>>,
    /// How this tensor was computed; taken (and so freed) by `backward`.
    pub(crate) node: Mutex<Option<Node>>,
    /// Set when `backward` has consumed `node`: this tensor is no leaf, and a second
    /// backward through it is an error rather than a silent loss of gradients.
    pub(crate) graph_freed: AtomicBool,
}

/// An n-dimensional f32 array that can take part in automatic differentiation.
#[derive(Clone)]
pub struct Tensor {
    pub(crate) inner: Arc<Inner>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Tensor {
    pub(crate) fn from_parts(storage: Arc<Storage>, layout: Layout, node: Option<Node>) -> Tensor {
        // The first tensor starts the worker pool with the command's set-up (pinned
        // workers), before any kernel could start rayon's unpinned default pool.
        crate::runtime::threads::ensure_started();
        let requires_grad = node.is_some();
        Tensor {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                storage,
                layout,
                requires_grad: AtomicBool::new(requires_grad),
                grad: Mutex::new(None),
                node: Mutex::new(node),
                graph_freed: AtomicBool::new(false),
            }),
        }
    }

    /// A tensor that owns `data` laid out densely with `shape`.
    ///
    /// Panics if `data.len()` is not the product of `shape`.
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Tensor {
        assert_eq!(
            data.len(),
            layout::numel(shape),
            "Tensor::from_vec: {} values cannot fill shape {:?} ({} elements)",
            data.len(),
            shape,
            layout::numel(shape)
        );
        Tensor::from_parts(Storage::new(data), Layout::contiguous(shape), None)
    }

    /// A unique id of this tensor (views of one storage have different ids).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Size of each dimension.
    pub fn shape(&self) -> &[usize] {
        &self.inner.layout.shape
    }

    /// Size of dimension `d`; negative `d` counts from the end as in PyTorch.
    pub fn dim(&self, d: isize) -> usize {
        self.shape()[self.axis(d)]
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape().len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.inner.layout.numel()
    }

    /// Shape, strides and offset into the storage.
    pub fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    /// True when the elements are dense in row-major order (views may not be).
    pub fn is_contiguous(&self) -> bool {
        self.inner.layout.is_contiguous()
    }

    /// Resolves a possibly negative dimension index, panicking with a clear message when it
    /// is out of range.
    pub fn axis(&self, d: isize) -> usize {
        let rank = self.rank() as isize;
        let a = if d < 0 { d + rank } else { d };
        assert!(
            (0..rank.max(1)).contains(&a),
            "dimension {d} is out of range for a tensor of shape {:?}",
            self.shape()
        );
        a as usize
    }

    /// Whether gradients flow to (or through) this tensor.
    pub fn requires_grad(&self) -> bool {
        self.inner.requires_grad.load(Ordering::Relaxed)
    }

    /// Marks a leaf tensor as a parameter whose gradient `backward` accumulates, and returns
    /// it (builder style: `Tensor::randn(..).requires_grad_()`).
    pub fn requires_grad_(self) -> Tensor {
        self.set_requires_grad(true);
        self
    }

    /// Sets whether `backward` computes a gradient for this tensor (a parameter is frozen with `false`).
    pub fn set_requires_grad(&self, on: bool) {
        self.inner.requires_grad.store(on, Ordering::Relaxed);
    }

    /// True when this tensor was created directly, not computed by a recorded operation.
    pub fn is_leaf(&self) -> bool {
        self.inner.node.lock().unwrap().is_none() && !self.inner.graph_freed.load(Ordering::Relaxed)
    }

    /// The gradient accumulated by `backward`, if any.
    pub fn grad(&self) -> Option<Tensor> {
        self.inner.grad.lock().unwrap().clone()
    }

    /// Replaces the stored gradient (optimizers and gradient all-reduce use this).
    pub fn set_grad(&self, grad: Option<Tensor>) {
        if let Some(g) = &grad {
            assert_eq!(
                g.shape(),
                self.shape(),
                "set_grad: gradient shape does not match tensor"
            );
        }
        *self.inner.grad.lock().unwrap() = grad;
    }

    /// Forgets the accumulated gradient (PyTorch's `zero_grad(set_to_none=True)`).
    pub fn zero_grad(&self) {
        *self.inner.grad.lock().unwrap() = None;
    }

    /// A tensor sharing this one's data but cut from the graph.
    pub fn detach(&self) -> Tensor {
        Tensor::from_parts(self.inner.storage.clone(), self.inner.layout.clone(), None)
    }

    /// How many handles (clones, graph nodes) hold this tensor. Tests use it to check that a
    /// step's graph is freed.
    pub fn handle_count(&self) -> usize {
        Arc::strong_count(&self.inner)
    }

    /// True when both handles view the same storage.
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.inner.storage, &other.inner.storage)
    }

    pub(crate) fn read_storage(&self) -> RwLockReadGuard<'_, Vec<f32>> {
        self.inner.storage.data.read().unwrap()
    }

    /// The buffer for writing in place: every write bumps the storage's version, so a
    /// graph that saved this tensor before can tell (see [`Tensor::version`]).
    pub(crate) fn write_storage(&self) -> RwLockWriteGuard<'_, Vec<f32>> {
        let guard = self.inner.storage.data.write().unwrap();
        self.inner.storage.version.fetch_add(1, Ordering::Relaxed);
        guard
    }

    /// How many times this tensor's storage has been written in place ([`Tensor::with_slice_mut`],
    /// [`Tensor::copy_from`], an optimizer step, a batch norm's running statistics): PyTorch's
    /// `t._version`. Views share their storage's counter. `backward` compares it with the
    /// version an op saw when it recorded its node, and returns an error on a change.
    ///
    /// ```
    /// use neurite::Tensor;
    /// let t = Tensor::zeros(&[2]);
    /// assert_eq!(t.version(), 0);
    /// t.with_slice_mut(|v| v[0] = 1.0);
    /// assert_eq!(t.version(), 1);
    /// assert_eq!(t.reshape(&[1, 2]).version(), 1); // a view shares the counter
    /// ```
    pub fn version(&self) -> u64 {
        self.inner.storage.version.load(Ordering::Relaxed)
    }

    /// Calls `f` with the elements in row-major order as one slice, without copying when
    /// the tensor is contiguous.
    pub fn with_slice<R>(&self, f: impl FnOnce(&[f32]) -> R) -> R {
        let l = &self.inner.layout;
        if l.is_contiguous() {
            let data = self.read_storage();
            f(&data[l.offset..l.offset + l.numel()])
        } else {
            f(&self.to_vec())
        }
    }

    /// Mutable access to the elements of a contiguous tensor, in place (for optimizers,
    /// initializers and running statistics). Nothing is recorded for autograd, but the
    /// storage's [`version`](Tensor::version) goes up: a graph recorded before that reads
    /// this tensor makes `backward` return an error instead of a wrong gradient.
    ///
    /// Panics if the tensor is not contiguous.
    pub fn with_slice_mut<R>(&self, f: impl FnOnce(&mut [f32]) -> R) -> R {
        let l = &self.inner.layout;
        assert!(
            l.is_contiguous(),
            "with_slice_mut needs a contiguous tensor, got strides {:?}",
            l.strides
        );
        let mut data = self.write_storage();
        f(&mut data[l.offset..l.offset + l.numel()])
    }

    /// The elements in row-major order.
    pub fn to_vec(&self) -> Vec<f32> {
        let l = &self.inner.layout;
        let data = self.read_storage();
        if l.is_contiguous() {
            return buffers::copy_of(&data[l.offset..l.offset + l.numel()]);
        }
        let mut out = buffers::take(l.numel()); // every element gathered
        layout::gather_strided(&data, l, &mut out);
        out
    }

    /// The single value of a tensor with one element.
    pub fn item(&self) -> f32 {
        assert_eq!(
            self.numel(),
            1,
            "item() needs a tensor with one element, got shape {:?}",
            self.shape()
        );
        self.to_vec()[0]
    }

    /// Overwrites this tensor's elements with `src`'s (same shape), in place.
    pub fn copy_from(&self, src: &Tensor) {
        assert_eq!(self.shape(), src.shape(), "copy_from: shapes differ");
        let values = src.to_vec();
        self.with_slice_mut(|d| d.copy_from_slice(&values));
    }
}

impl fmt::Display for Tensor {
    /// PyTorch's layout: `tensor([[1.0000, 2.0000], [3.0000, 4.0000]])`, the middle elided
    /// beyond 1000 elements, then `requires_grad=True` or `grad_fn=<…>`. `{:.2}` prints 2
    /// decimals instead of 4.
    ///
    /// ```
    /// use neurite::Tensor;
    /// let t = Tensor::from_vec(vec![1.0, 2.5, -3.0, 4.0], &[2, 2]);
    /// assert_eq!(format!("{t}"), "tensor([[ 1.0000,  2.5000],\n        [-3.0000,  4.0000]])");
    /// assert_eq!(format!("{:.1}", t.i(0)), "tensor([1.0, 2.5])");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffixes = match self.op_name() {
            Some(op) => vec![format!("grad_fn=<{}>", print::grad_fn_name(op))],
            None if self.requires_grad() => vec!["requires_grad=True".to_string()],
            None => Vec::new(),
        };
        let precision = f.precision().unwrap_or(4);
        f.write_str(&print::render_floats(
            &self.to_vec(),
            self.shape(),
            precision,
            suffixes,
        ))
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = self.to_vec();
        let shown: Vec<f32> = values.iter().take(8).copied().collect();
        write!(f, "Tensor(shape={:?}, values={:?}", self.shape(), shown)?;
        if values.len() > 8 {
            write!(f, " ... ({} total)", values.len())?;
        }
        if self.requires_grad() {
            write!(f, ", requires_grad")?;
        }
        write!(f, ")")
    }
}
