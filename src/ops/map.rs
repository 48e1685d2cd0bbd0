//! The helpers every elementwise op is built from: [`Tensor::elementwise`] (a unary op from
//! its function `f` and its derivative rule `df`), and the parallel maps beneath it
//! ([`unary_map`], [`grad_map`], [`broadcast_map`]), each writing a fresh buffer through
//! [`buffers::filled_by_chunks`].

use crate::runtime::buffers::{self, Chunk};
use crate::tensor::layout::{broadcast_shapes, numel, Layout};
use crate::tensor::Tensor;

/// What the backward of an elementwise op reads besides the output gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// Nothing (`df` gets 0 as its second argument): `neg`, `mul_scalar`.
    Nothing,
    /// The input element `x`: `relu`, `log`, `gelu`.
    Input,
    /// The output element `y = f(x)`, when the derivative is cheapest from it: `exp`,
    /// `sigmoid`, `tanh`.
    Output,
}

impl Tensor {
    /// The elementwise op `y = f(x)`, named `name`, whose backward maps each output gradient
    /// element `dy` to the input gradient element `df(dy, v)`, with `v` the element that
    /// `reads` names. `df` is the whole rule (`|dy, y| dy * y` for exp), not the bare
    /// derivative, so that a rule such as ReLU's (`dy` or 0) keeps its exact values.
    ///
    /// This is how an op of your own is written outside the crate too; check it with
    /// [`crate::gradcheck`]:
    ///
    /// ```
    /// use neurite::ops::map::Reads;
    /// use neurite::Tensor;
    ///
    /// // y = x^3, backward dy * 3x^2 (reads the input).
    /// let x = Tensor::from_vec(vec![1.0, -2.0], &[2]).requires_grad_();
    /// let y = x.elementwise("cube", |v| v * v * v, Reads::Input, |dy, x| dy * 3.0 * x * x);
    /// assert_eq!(y.to_vec(), vec![1.0, -8.0]);
    /// y.sum_all().backward().unwrap();
    /// assert_eq!(x.grad().unwrap().to_vec(), vec![3.0, 12.0]);
    /// ```
    pub fn elementwise<F, D>(&self, name: &'static str, f: F, reads: Reads, df: D) -> Tensor
    where
        F: Fn(f32) -> f32 + Sync + Send,
        D: Fn(f32, f32) -> f32 + Sync + Send + 'static,
    {
        let data = unary_map(self, f);
        let shape = self.shape();
        match reads {
            Reads::Nothing => Tensor::from_op(data, shape, name, &[self], move |g| {
                let dx = unary_map(g, |gi| df(gi, 0.0));
                vec![Some(Tensor::from_vec(dx, g.shape()))]
            }),
            Reads::Input => {
                let x = self.detach();
                Tensor::from_op(data, shape, name, &[self], move |g| {
                    vec![Some(grad_map(g, &x, &df))]
                })
            }
            Reads::Output => {
                Tensor::from_op_with_output(data, shape, name, &[self], move |g, y| {
                    vec![Some(grad_map(g, y, &df))]
                })
            }
        }
    }
}

/// Computes `f(x)` elementwise into a fresh buffer.
pub(crate) fn unary_map(x: &Tensor, f: impl Fn(f32) -> f32 + Sync + Send) -> Vec<f32> {
    x.with_slice(|xs| {
        buffers::filled_by_chunks(xs.len(), 1, |start, out: &mut Chunk| {
            let n = out.len();
            out.extend(xs[start..start + n].iter().map(|&xi| f(xi)));
        })
    })
}

/// `f(g, s)` elementwise over the output gradient `g` and a saved tensor `s` of the same
/// shape.
pub(crate) fn grad_map(
    g: &Tensor,
    saved: &Tensor,
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> Tensor {
    assert_eq!(g.shape(), saved.shape(), "grad_map: shapes differ");
    let out = g.with_slice(|gs| {
        saved.with_slice(|ss| {
            buffers::filled_by_chunks(gs.len(), 1, |start, out: &mut Chunk| {
                let n = out.len();
                out.extend(
                    gs[start..start + n]
                        .iter()
                        .zip(&ss[start..start + n])
                        .map(|(&gi, &si)| f(gi, si)),
                );
            })
        })
    });
    Tensor::from_vec(out, g.shape())
}

/// Computes `f(a, b)` elementwise over the broadcast shape of `a` and `b`.
pub(crate) fn broadcast_map(
    a: &Tensor,
    b: &Tensor,
    name: &str,
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> (Vec<f32>, Vec<usize>) {
    let shape = broadcast_shapes(a.shape(), b.shape()).unwrap_or_else(|| {
        panic!(
            "{name}: shapes {:?} and {:?} do not broadcast",
            a.shape(),
            b.shape()
        )
    });
    let (da, db) = (a.read_storage(), b.read_storage());
    let (la, lb) = (a.layout(), b.layout());
    let n = numel(&shape);
    if la.shape == shape && lb.shape == shape && la.is_contiguous() && lb.is_contiguous() {
        let (xa, xb) = (&da[la.offset..], &db[lb.offset..]);
        let out = buffers::filled_by_chunks(n, 1, |start, out: &mut Chunk| {
            let len = out.len();
            out.extend(
                xa[start..start + len]
                    .iter()
                    .zip(&xb[start..start + len])
                    .map(|(&x, &y)| f(x, y)),
            );
        });
        return (out, shape);
    }
    let la = la.broadcast_to(&shape).unwrap();
    let lb = lb.broadcast_to(&shape).unwrap();
    let inner = (*shape.last().unwrap_or(&1)).max(1);
    let (sa, sb) = (
        *la.strides.last().unwrap_or(&0),
        *lb.strides.last().unwrap_or(&0),
    );
    // Chunks are whole rows (`inner` divides each chunk's length).
    let out = buffers::filled_by_chunks(n, inner, |start, out: &mut Chunk| {
        for r in 0..out.len() / inner {
            let (oa, ob) = (
                row_offset(&la, start / inner + r),
                row_offset(&lb, start / inner + r),
            );
            out.extend((0..inner).map(|k| f(da[oa + k * sa], db[ob + k * sb])));
        }
    });
    (out, shape)
}

/// Storage offset of the first element of row `row` (all dimensions but the last).
fn row_offset(l: &Layout, mut row: usize) -> usize {
    let mut off = l.offset;
    for d in (0..l.shape.len().saturating_sub(1)).rev() {
        let n = l.shape[d];
        off += (row % n) * l.strides[d];
        row /= n;
    }
    off
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_reads_what_it_names() {
        let x = Tensor::from_vec(vec![-1.0, 2.0, 3.0], &[3]).requires_grad_();
        let weights = Tensor::from_vec(vec![1.0, 10.0, 100.0], &[3]);
        // f(x) = 2x; the rules return what they read, so the gradients show it.
        for (reads, want) in [
            (Reads::Nothing, [0.0, 0.0, 0.0]),
            (Reads::Input, [-1.0, 2.0, 3.0]),
            (Reads::Output, [-2.0, 4.0, 6.0]),
        ] {
            let y = x.elementwise("twice", |v| 2.0 * v, reads, |_, v| v);
            assert_eq!(y.to_vec(), vec![-2.0, 4.0, 6.0]);
            y.mul(&weights).sum_all().backward().unwrap();
            assert_eq!(x.grad().unwrap().to_vec(), want, "{reads:?}");
            x.zero_grad();
        }
    }

    #[test]
    fn the_output_is_not_kept_alive_by_its_own_node() {
        let x = Tensor::from_vec(vec![0.5; 8], &[8]).requires_grad_();
        let y = x.elementwise("exp", f32::exp, Reads::Output, |g, y| g * y);
        // One handle: `y` itself (the node's closure holds no handle of its output).
        assert_eq!(y.handle_count(), 1);
        y.sum_all().backward().unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![0.5f32.exp(); 8]);
    }

    #[test]
    fn broadcast_rows_are_filled_in_full() {
        // Large enough for several parallel chunks of whole rows.
        let a = Tensor::from_vec((0..300 * 70).map(|v| v as f32).collect(), &[300, 70]);
        let b = Tensor::from_vec((0..70).map(|v| -(v as f32)).collect(), &[70]);
        let sum = a.add(&b).to_vec();
        for (i, v) in sum.iter().enumerate() {
            assert_eq!(*v, (i - i % 70) as f32, "element {i}");
        }
    }
}
