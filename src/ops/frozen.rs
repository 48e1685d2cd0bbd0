//! Inference with frozen weights: inside [`frozen_weights`], gradients are off and the
//! weight of every `linear` is packed once ([`PackedWeight`]) and reused by each later
//! product with it, instead of being repacked by every call (sampling multiplies the same
//! weights by a few rows hundreds of times).
//!
//! The packed copies are keyed by the weight's buffer and live until the outermost scope
//! ends, so the weights must not change inside it.

use crate::kernels::packed_gemm::PackedWeight;
use crate::tensor::Tensor;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// (buffer address, rows, columns) of a weight.
type Key = (usize, usize, usize);
/// The packed weights of a scope.
type Packed = HashMap<Key, Rc<PackedWeight>>;

thread_local! {
    /// The packed weights of the open scope (`None` outside any), and the nesting depth.
    static FROZEN: RefCell<(usize, Option<Packed>)> =
        const { RefCell::new((0, None)) };
}

/// Runs `f` without recording gradients, with the weights of linear layers packed once for
/// the whole call (PyTorch's `torch.inference_mode()` in spirit). `f` must not modify any
/// weight it multiplies by: products would keep using the packed copy.
pub fn frozen_weights<R>(f: impl FnOnce() -> R) -> R {
    struct Scope;
    impl Drop for Scope {
        fn drop(&mut self) {
            FROZEN.with(|s| {
                let mut s = s.borrow_mut();
                s.0 -= 1;
                if s.0 == 0 {
                    s.1 = None;
                }
            });
        }
    }
    FROZEN.with(|s| {
        let mut s = s.borrow_mut();
        s.0 += 1;
        s.1.get_or_insert_with(HashMap::new);
    });
    let _scope = Scope;
    crate::no_grad(f)
}

/// The packed form of `weight [N, K]` when a [`frozen_weights`] scope is open on this
/// thread, gradients are off and the weight is a contiguous matrix; packed on first use.
pub(crate) fn packed_weight(weight: &Tensor) -> Option<Rc<PackedWeight>> {
    if crate::is_grad_enabled() || weight.rank() != 2 || !weight.is_contiguous() {
        return None;
    }
    FROZEN.with(|s| {
        let mut s = s.borrow_mut();
        let cache = s.1.as_mut()?;
        let (n, k) = (weight.dim(0), weight.dim(1));
        let key = (weight.with_slice(|w| w.as_ptr() as usize), n, k);
        let packed = cache
            .entry(key)
            .or_insert_with(|| Rc::new(weight.with_slice(|w| PackedWeight::pack(w, n, k))));
        Some(packed.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_linear_matches_the_plain_product_and_forgets_at_the_end() {
        crate::manual_seed(5);
        let x = Tensor::randn(&[2, 9, 20], 0.0, 1.0); // [B, T, in]
        let w = Tensor::randn(&[35, 20], 0.0, 1.0).requires_grad_(); // [out, in]
        let b = Tensor::randn(&[35], 0.0, 1.0);
        let plain = crate::no_grad(|| x.linear(&w, Some(&b))).to_vec();
        let frozen = frozen_weights(|| {
            assert!(packed_weight(&w).is_some());
            // twice: the second product reuses the packed copy
            x.linear(&w, Some(&b));
            x.linear(&w, Some(&b))
        });
        assert_eq!(frozen.shape(), &[2, 9, 35]);
        for (p, f) in plain.iter().zip(frozen.to_vec()) {
            assert!((p - f).abs() <= 1e-4 * (1.0 + p.abs()), "{p} vs {f}");
        }
        // After the scope: nothing packed, and a changed weight is read afresh.
        assert!(packed_weight(&w).is_none());
        w.with_slice_mut(|v| v.iter_mut().for_each(|e| *e = 0.0));
        let zero = frozen_weights(|| x.linear(&w, None));
        assert!(zero.to_vec().iter().all(|&v| v == 0.0));
        // Gradients stay off inside.
        assert!(frozen_weights(|| !crate::is_grad_enabled()));
    }

    #[test]
    fn frozen_linear_gelu_is_the_linear_then_the_gelu() {
        crate::manual_seed(6);
        let x = Tensor::randn(&[3, 7, 24], 0.0, 1.0); // [B, T, in]
        let w = Tensor::randn(&[37, 24], 0.0, 0.5).requires_grad_(); // [out, in]: a tail panel
        let b = Tensor::randn(&[37], 0.0, 1.0).requires_grad_();
        let (fused, separate) =
            frozen_weights(|| (x.linear_gelu(&w, Some(&b)), x.linear(&w, Some(&b)).gelu()));
        assert_eq!(fused.shape(), &[3, 7, 37]);
        assert_eq!(fused.to_vec(), separate.to_vec());
        let values = fused.to_vec();
        assert!(values.iter().any(|&v| v > 0.5) && values.iter().any(|&v| v < -0.05));
        // Outside the scope it is the composite, with its gradient.
        let y = x.linear_gelu(&w, Some(&b));
        assert_eq!(y.op_name(), Some("gelu"));
        for (p, f) in y.to_vec().iter().zip(&values) {
            assert!((p - f).abs() <= 1e-4 * (1.0 + p.abs()), "{p} vs {f}");
        }
    }
}
