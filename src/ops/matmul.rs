//! Matrix products: `matmul` (batched, with broadcasting batch dimensions) and `linear`
//! (`x · Wᵀ + b`, PyTorch's layout `W: [out, in]`).
//!
//! Backward of `C = A · B`: `dA = dC · Bᵀ`, `dB = Aᵀ · dC`; transposed operands go to the
//! GEMM as flags, not as copies.

use crate::gradcheck::Case;
use crate::kernels::gemm::{sgemm, Gemm};
use crate::kernels::packed_gemm::{gemm_packed, gemm_packed_then, Epilogue, PackedWeight};
use crate::ops::Family;
use crate::runtime::buffers;
use crate::runtime::threads;
use crate::tensor::layout::{broadcast_shapes, numel};
use crate::tensor::Tensor;

/// A tensor's last two dimensions as a GEMM operand: its dense data (no copy when it is
/// contiguous or a transposed contiguous matrix stack) and whether it is transposed.
fn operand(t: &Tensor) -> (Tensor, bool) {
    if t.is_contiguous() {
        return (t.clone(), false);
    }
    let back = t.detach().transpose(-2, -1);
    if back.is_contiguous() {
        return (back, true);
    }
    (t.detach().contiguous(), false)
}

/// `C[batch, m, n] = A[batch, m, k] · B[batch, k, n]` over dense operand stacks.
fn batched_product(a: &Tensor, b: &Tensor, batch: usize, m: usize, k: usize, n: usize) -> Vec<f32> {
    let (a, ta) = operand(a);
    let (b, tb) = operand(b);
    let mut out = buffers::take(batch * m * n); // every element written by the product
    let g = Gemm::new(m, n, k).trans_a(ta).trans_b(tb);
    a.with_slice(|ad| {
        b.with_slice(|bd| {
            if batch == 1 {
                sgemm(g, ad, bd, &mut out);
            } else {
                threads::for_each_piece_mut(&mut out, m * n, |i, c| {
                    sgemm(
                        g,
                        &ad[i * m * k..(i + 1) * m * k],
                        &bd[i * k * n..(i + 1) * k * n],
                        c,
                    )
                });
            }
        })
    });
    out
}

/// Linear layers with at least this many rows multiply on the packed engine
/// ([`gemm_packed_then`]) when the CPU has AVX-512, where its 12 x 32 tiles run tall, thin
/// products about as fast as OpenBLAS and the forward adds the bias as it stores the sums
/// (no pass of its own, no `beta` pass). Below it, packing the weight on one thread costs
/// more than that saves (docs/performance.md, change 38, has the measurements).
const PACKED_MIN_ROWS: usize = 512;

/// Whether a linear layer's products with `rows` rows go to the packed engine.
fn packed_engine_for(rows: usize) -> bool {
    rows >= PACKED_MIN_ROWS && crate::runtime::cpu::Isa::avx512()
}

/// A linear layer's weight packed for [`Tensor::linear_packed`] (the engine's layout, made
/// once), with its bias: the frozen form of `weight [out, in]`, `bias [out]`.
#[derive(Clone, Debug)]
pub struct PackedLinear {
    weight: PackedWeight,
    bias: Option<Vec<f32>>,
}

impl PackedLinear {
    /// Packs `weight [out, in]` (and copies `bias [out]`); later changes to them are not seen.
    pub fn new(weight: &Tensor, bias: Option<&Tensor>) -> PackedLinear {
        assert!(
            weight.rank() == 2,
            "PackedLinear: the weight must be a matrix [out, in], got {:?}",
            weight.shape()
        );
        let (n, k) = (weight.dim(0), weight.dim(1));
        if let Some(b) = bias {
            assert_eq!(
                b.shape(),
                &[n],
                "PackedLinear: bias shape does not match {n} outputs"
            );
        }
        let w = weight.detach().contiguous();
        PackedLinear {
            weight: w.with_slice(|ws| PackedWeight::pack(ws, n, k)),
            bias: bias.map(Tensor::to_vec),
        }
    }

    /// `(out, in)`.
    pub fn dims(&self) -> (usize, usize) {
        (self.weight.n, self.weight.k)
    }
}

impl Tensor {
    /// Matrix product over the last two dimensions: `[..., m, k] · [..., k, n] -> [..., m, n]`.
    /// Batch dimensions broadcast; a 2-D right operand is shared by the whole batch.
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        let (sa, sb) = (self.shape(), other.shape());
        assert!(
            sa.len() >= 2 && sb.len() >= 2 && sa[sa.len() - 1] == sb[sb.len() - 2],
            "matmul: shapes {sa:?} and {sb:?} do not fit (need [..., m, k] and [..., k, n])"
        );
        let (m, k, n) = (sa[sa.len() - 2], sa[sa.len() - 1], sb[sb.len() - 1]);
        if sb.len() == 2 {
            // [..., m, k] · [k, n]: one GEMM over all rows.
            let rows = self.numel() / k.max(1);
            let a = self.reshape_for_gemm(rows, k);
            let data = batched_product(&a, other, 1, rows, k, n);
            let mut shape = sa.to_vec();
            *shape.last_mut().unwrap() = n;
            let (x, w) = (self.detach(), other.detach());
            let need = (self.requires_grad(), other.requires_grad());
            return Tensor::from_op(data, &shape, "matmul", &[self, other], move |g| {
                let g2 = g.reshape(&[rows, n]);
                let dx = need.0.then(|| g2.matmul(&w.t()).reshape(x.shape()));
                let dw = need.1.then(|| x.reshape(&[rows, k]).t().matmul(&g2));
                vec![dx, dw]
            });
        }
        let batch_shape = broadcast_shapes(&sa[..sa.len() - 2], &sb[..sb.len() - 2])
            .unwrap_or_else(|| {
                panic!("matmul: batch dimensions of {sa:?} and {sb:?} do not broadcast")
            });
        let batch = numel(&batch_shape);
        let expand = |t: &Tensor, r: usize, c: usize| {
            let mut s = batch_shape.clone();
            s.extend([r, c]);
            let e = t.detach().expand(&s);
            if e.shares_storage(t) && e.shape() == t.shape() {
                e
            } else {
                e.contiguous()
            }
        };
        let (a, b) = (expand(self, m, k), expand(other, k, n));
        let data = batched_product(&a, &b, batch, m, k, n);
        let mut shape = batch_shape.clone();
        shape.extend([m, n]);
        let (x, y) = (a, b);
        let (shape_a, shape_b) = (sa.to_vec(), sb.to_vec());
        let need = (self.requires_grad(), other.requires_grad());
        Tensor::from_op(data, &shape, "matmul", &[self, other], move |g| {
            let dx = need
                .0
                .then(|| g.matmul(&y.transpose(-2, -1)).sum_to(&shape_a));
            let dy = need
                .1
                .then(|| x.transpose(-2, -1).matmul(g).sum_to(&shape_b));
            vec![dx, dy]
        })
    }

    /// A `[rows, k]` view of the last dimension when contiguous; keeps a transposed 2-D
    /// matrix as it is so the GEMM reads it through its strides.
    fn reshape_for_gemm(&self, rows: usize, k: usize) -> Tensor {
        if self.rank() == 2 {
            self.detach()
        } else {
            self.detach().reshape(&[rows, k])
        }
    }

    /// Panics unless `weight [out, in]` and `bias [out]` fit `self [..., in]`.
    fn check_linear(&self, weight: &Tensor, bias: Option<&Tensor>) {
        let sx = self.shape();
        let (out_f, in_f) = (weight.dim(0), weight.dim(1));
        assert!(
            weight.rank() == 2 && sx.last() == Some(&in_f),
            "linear: input {sx:?} does not fit weight {:?} (need [..., {in_f}])",
            weight.shape()
        );
        if let Some(b) = bias {
            assert_eq!(
                b.shape(),
                &[out_f],
                "linear: bias shape {:?} does not match {out_f} outputs",
                b.shape()
            );
        }
    }

    /// `x · weightᵀ + bias` with a weight packed beforehand ([`PackedLinear`]), the bias
    /// (and the GELU when `gelu`) applied as the product stores its sums. For inference:
    /// no gradient is recorded. The inference planner ([`crate::infer`]) packs each weight
    /// once and multiplies by it many times (sampling).
    pub fn linear_packed(&self, layer: &PackedLinear, gelu: bool) -> Tensor {
        let packed = &layer.weight;
        let sx = self.shape();
        assert!(
            sx.last() == Some(&packed.k),
            "linear: input {sx:?} does not fit a packed weight of {} inputs",
            packed.k
        );
        let rows = self.numel() / packed.k.max(1);
        let x = self.contiguous();
        let store = Epilogue {
            bias: layer.bias.as_deref(),
            gelu,
            ..Epilogue::default()
        };
        let mut out = buffers::take(rows * packed.n); // every element written
        x.with_slice(|xs| gemm_packed_then(xs, rows, packed, &mut out, store));
        let mut shape = sx.to_vec();
        *shape.last_mut().unwrap() = packed.n;
        Tensor::from_vec(out, &shape)
    }

    /// `x · weightᵀ + bias` over the last dimension: `[..., in] -> [..., out]`, with
    /// `weight: [out, in]` and `bias: [out]` (PyTorch's `nn.Linear`).
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
        self.check_linear(weight, bias);
        let sx = self.shape();
        let (out_f, in_f) = (weight.dim(0), weight.dim(1));
        let rows = self.numel() / in_f.max(1);
        let x = self.detach().contiguous();
        let wd = weight.detach();
        let packed = packed_engine_for(rows) && wd.is_contiguous();
        let mut out = buffers::take(rows * out_f); // the bias or the product writes every element
        if packed {
            // The weight packed for this call, the bias added as the sums are stored.
            let w = wd.with_slice(|ws| PackedWeight::pack(ws, out_f, in_f));
            let bias = bias.map(Tensor::to_vec);
            let store = Epilogue {
                bias: bias.as_deref(),
                ..Epilogue::default()
            };
            x.with_slice(|xs| gemm_packed_then(xs, rows, &w, &mut out, store));
        } else {
            if let Some(b) = bias {
                // Start from the bias and accumulate the product onto it: one pass over C.
                b.with_slice(|bs| {
                    out.chunks_mut(out_f)
                        .for_each(|row| row.copy_from_slice(bs))
                });
            }
            let (w, tw) = operand(&wd.t());
            x.with_slice(|xs| {
                w.with_slice(|ws| {
                    sgemm(
                        Gemm::new(rows, out_f, in_f)
                            .trans_b(tw)
                            .accumulate(bias.is_some()),
                        xs,
                        ws,
                        &mut out,
                    )
                })
            });
        }
        let mut shape = sx.to_vec();
        *shape.last_mut().unwrap() = out_f;
        let has_bias = bias.is_some();
        // Gradients only for the inputs that want them: the first layer's input (the data)
        // does not, and its product would be an eighth of an MLP's training step.
        let need = (
            self.requires_grad(),
            weight.requires_grad(),
            bias.is_some_and(|b| b.requires_grad()),
        );
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        Tensor::from_op(out, &shape, "linear", &inputs, move |g| {
            let g2 = g.reshape(&[rows, out_f]);
            let dx = || {
                need.0.then(|| {
                    if !packed {
                        return g2.matmul(&wd).reshape(x.shape());
                    }
                    // dX [rows, in] = dY [rows, out] · W [out, in], W packed by rows.
                    let w = wd.with_slice(|ws| PackedWeight::pack_rows(ws, out_f, in_f, in_f));
                    let dy = g2.contiguous();
                    let mut dx = buffers::take(rows * in_f); // every element written
                    dy.with_slice(|ds| gemm_packed(ds, rows, &w, &mut dx, false));
                    Tensor::from_vec(dx, x.shape())
                })
            };
            let dw = || need.1.then(|| g2.t().matmul(&x.reshape(&[rows, in_f])));
            // The two products have the same size: when both are wanted, run them side by
            // side (each on one thread) rather than one after the other with each split over
            // the threads. A lone product keeps the split.
            let (dx, dw) = if need.0 && need.1 {
                threads::join_pieces(dx, dw)
            } else {
                (dx(), dw())
            };
            let mut grads = vec![dx, dw];
            if has_bias {
                grads.push(need.2.then(|| g2.sum_axes(&[0], false)));
            }
            grads
        })
    }
}

/// The ops of this module and their gradient checks (a row of [`crate::ops::FAMILIES`]).
pub(crate) const FAMILY: Family = Family {
    name: "matmul",
    ops: &["matmul", "linear"],
    cases: gradcheck_cases,
};

fn gradcheck_cases() -> Vec<Case> {
    let any = |shape: &[usize]| Tensor::randn(shape, 0.0, 1.0);
    vec![
        Case::new("matmul", vec![any(&[3, 5]), any(&[5, 4])], |x| {
            x[0].matmul(&x[1])
        }),
        Case::new("matmul", vec![any(&[2, 3, 5]), any(&[5, 4])], |x| {
            x[0].matmul(&x[1])
        }),
        Case::new("matmul", vec![any(&[2, 3, 5]), any(&[2, 5, 4])], |x| {
            x[0].matmul(&x[1])
        }),
        Case::new("matmul", vec![any(&[2, 1, 3, 5]), any(&[3, 5, 2])], |x| {
            x[0].matmul(&x[1])
        }),
        Case::new("matmul", vec![any(&[5, 3]), any(&[4, 5])], |x| {
            x[0].t().matmul(&x[1].t())
        }),
        Case::new("linear", vec![any(&[4, 6]), any(&[3, 6]), any(&[3])], |x| {
            x[0].linear(&x[1], Some(&x[2]))
        }),
        Case::new("linear", vec![any(&[2, 3, 6]), any(&[5, 6])], |x| {
            x[0].linear(&x[1], None)
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_products_by_hand() {
        let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        let b = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2]);
        assert_eq!(a.matmul(&b).to_vec(), vec![4.0, 5.0, 10.0, 11.0]);
        // Transposed views go through the GEMM's flags: (aᵀ)ᵀ = a.
        assert_eq!(a.t().t().matmul(&b).to_vec(), vec![4.0, 5.0, 10.0, 11.0]);
        assert_eq!(a.t().matmul(&a).shape(), &[3, 3]);
        assert_eq!(a.t().matmul(&a).to_vec()[0], 17.0);
        let w = Tensor::from_vec(vec![1.0, 1.0, 1.0, 0.0, 0.0, 1.0], &[2, 3]);
        let bias = Tensor::from_vec(vec![0.5, -1.0], &[2]);
        assert_eq!(
            a.linear(&w, Some(&bias)).to_vec(),
            vec![6.5, 2.0, 15.5, 5.0]
        );
    }

    #[test]
    fn tall_linear_layers_match_the_composed_product_in_values_and_gradients() {
        // 600 rows: on AVX-512 CPUs the packed engine's path (forward with the bias in its
        // store, dX by the weight packed by rows); compared with matmul + add, which go
        // through the GEMM library.
        crate::manual_seed(3);
        let (rows, in_f, out_f) = (600, 37, 45);
        assert!(
            rows >= PACKED_MIN_ROWS,
            "the test must reach the packed engine"
        );
        let x = Tensor::randn(&[2, rows / 2, in_f], 0.0, 1.0);
        let w = Tensor::randn(&[out_f, in_f], 0.0, 0.3);
        let b = Tensor::randn(&[out_f], 0.0, 1.0);
        let up = Tensor::randn(&[2, rows / 2, out_f], 0.0, 1.0); // the upstream gradient
        let run = |composed: bool| {
            let (x, w, b) = (x.detach(), w.detach(), b.detach());
            let (x, w, b) = (x.requires_grad_(), w.requires_grad_(), b.requires_grad_());
            let y = if composed {
                x.matmul(&w.t()).add(&b)
            } else {
                x.linear(&w, Some(&b))
            };
            y.mul(&up).sum_all().backward().unwrap();
            let grads = [&x, &w, &b].map(|t| t.grad().expect("a gradient").to_vec());
            (y.to_vec(), grads)
        };
        let (want, want_grads) = run(true);
        let (got, got_grads) = run(false);
        let close = |g: &[f32], e: &[f32], what: &str| {
            assert_eq!(g.len(), e.len(), "{what}");
            for (i, (g, e)) in g.iter().zip(e).enumerate() {
                assert!(
                    (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                    "{what} {i}: {g} vs {e}"
                );
            }
        };
        close(&got, &want, "output");
        for (what, (g, e)) in ["dx", "dw", "db"]
            .iter()
            .zip(got_grads.iter().zip(&want_grads))
        {
            close(g, e, what);
        }
    }

    #[test]
    #[should_panic(expected = "matmul: shapes [2, 3] and [2, 3] do not fit")]
    fn mismatched_inner_dimension_is_named() {
        Tensor::zeros(&[2, 3]).matmul(&Tensor::zeros(&[2, 3]));
    }
}
