//! Batch slicing: a large batch through a chain of per-sample layers runs slice by slice,
//! each thread taking whole slices through every layer, and the outputs are joined again.
//! A slice's activations stay in the caches from one layer to the next, and no thread
//! waits for the others at each layer.

use crate::runtime::threads;
use crate::tensor::Tensor;

/// Samples per slice (docs/performance.md has the measurements that chose it).
pub const INFERENCE_SLICE: usize = 64;

/// Whether a batch `x` runs in slices: at least two slices of [`INFERENCE_SLICE`] samples,
/// more than one thread, not already inside a parallel kernel (a slice of an outer batch),
/// and `per_sample` (sample `i` of the output depends on sample `i` of the input alone).
pub fn applies(x: &Tensor, per_sample: bool) -> bool {
    per_sample && x.rank() >= 2 && x.dim(0) >= 2 * INFERENCE_SLICE && threads::can_split()
}

/// `f` over slices of [`INFERENCE_SLICE`] samples of `x` in parallel, without autograd, the
/// outputs joined along axis 0. Each sample's values are computed by the same kernels as
/// in one batch, but a matrix product's summation order may depend on its number of rows,
/// so they can differ from the whole batch's in the last bits.
pub fn run(x: &Tensor, f: &(dyn Fn(&Tensor) -> Tensor + Sync)) -> Tensor {
    let n = x.dim(0);
    let slices: Vec<Tensor> = threads::map_pieces(n.div_ceil(INFERENCE_SLICE), |i| {
        let start = i * INFERENCE_SLICE;
        let len = INFERENCE_SLICE.min(n - start);
        // Autograd's switch is per thread: this worker's must be off too.
        crate::no_grad(|| f(&x.narrow(0, start, len).contiguous()))
    });
    Tensor::cat(&slices.iter().collect::<Vec<_>>(), 0)
}
