//! Pooling over `[N, C, H, W]`: `max_pool2d` (gradient to the arg-max saved in the forward
//! pass), `avg_pool2d` (padding counted in the divisor, PyTorch's default) and
//! `global_avg_pool2d` (`[N, C, H, W] -> [N, C]`). Kernels in `crate::kernels::pool`.

use crate::gradcheck::Case;
use crate::ops::Family;
use super::conv::IntoPair;
use crate::kernels::pool::{
    avg_pool2d_backward, avg_pool2d_forward, global_avg_pool2d_backward, global_avg_pool2d_forward,
    max_pool2d_backward, max_pool2d_forward, max_pool2d_values, PoolShape,
};
use crate::runtime::buffers;
use crate::tensor::Tensor;
use std::sync::Arc;

/// The checked pooling sizes of `x: [N, C, H, W]`.
fn pool_shape(
    x: &Tensor,
    name: &str,
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
) -> PoolShape {
    let sx = x.shape();
    assert!(sx.len() == 4, "{name}: input {sx:?} must be [N, C, H, W]");
    let s = PoolShape {
        planes: sx[0] * sx[1],
        h: sx[2],
        w: sx[3],
        kh: kernel.0,
        kw: kernel.1,
        stride,
        padding,
    };
    if let Some(p) = s.problem() {
        panic!("{name}: input {sx:?}, kernel {kernel:?}, stride {stride:?}: {p}");
    }
    s
}

impl Tensor {
    /// Max pooling over `kernel` windows: `[N, C, H, W] -> [N, C, OH, OW]`, with
    /// `OH = (H + 2 * padding - kernel) / stride + 1`; padding never wins the maximum.
    pub fn max_pool2d(
        &self,
        kernel: impl IntoPair,
        stride: impl IntoPair,
        padding: impl IntoPair,
    ) -> Tensor {
        let s = pool_shape(
            self,
            "max_pool2d",
            kernel.pair(),
            stride.pair(),
            padding.pair(),
        );
        let (oh, ow) = s.out_hw();
        let mut out = buffers::take(s.planes * oh * ow); // [N, C, OH, OW], every element written
        let in_shape = self.shape().to_vec();
        let shape = [in_shape[0], in_shape[1], oh, ow];
        if !(crate::is_grad_enabled() && self.requires_grad()) {
            // Nothing will ask for the gradient: the maxima without their positions.
            self.with_slice(|xs| max_pool2d_values(&s, xs, &mut out));
            return Tensor::from_vec(out, &shape);
        }
        let mut idx = vec![0u32; out.len()]; // [N, C, OH, OW], index into the H * W plane
        self.with_slice(|xs| max_pool2d_forward(&s, xs, &mut out, &mut idx));
        let idx = Arc::new(idx);
        Tensor::from_op(out, &shape, "max_pool2d", &[self], move |g| {
            let mut dx = buffers::take(s.planes * s.h * s.w); // overwritten
            g.with_slice(|gs| max_pool2d_backward(&s, gs, &idx, &mut dx));
            vec![Some(Tensor::from_vec(dx, &in_shape))]
        })
    }

    /// Average pooling over `kernel` windows, dividing by the full window size even where
    /// it overlaps the padding (`count_include_pad=True`).
    pub fn avg_pool2d(
        &self,
        kernel: impl IntoPair,
        stride: impl IntoPair,
        padding: impl IntoPair,
    ) -> Tensor {
        let s = pool_shape(
            self,
            "avg_pool2d",
            kernel.pair(),
            stride.pair(),
            padding.pair(),
        );
        let (oh, ow) = s.out_hw();
        let mut out = vec![0.0; s.planes * oh * ow]; // [N, C, OH, OW]
        self.with_slice(|xs| avg_pool2d_forward(&s, xs, &mut out));
        let in_shape = self.shape().to_vec();
        let shape = [in_shape[0], in_shape[1], oh, ow];
        Tensor::from_op(out, &shape, "avg_pool2d", &[self], move |g| {
            let mut dx = vec![0.0; s.planes * s.h * s.w];
            g.with_slice(|gs| avg_pool2d_backward(&s, gs, &mut dx));
            vec![Some(Tensor::from_vec(dx, &in_shape))]
        })
    }

    /// Mean over each channel's plane: `[N, C, H, W] -> [N, C]`.
    pub fn global_avg_pool2d(&self) -> Tensor {
        let sx = self.shape().to_vec();
        assert!(
            sx.len() == 4 && sx[2] * sx[3] > 0,
            "global_avg_pool2d: input {sx:?} must be [N, C, H, W] with H, W > 0"
        );
        let hw = sx[2] * sx[3];
        let mut out = buffers::take(sx[0] * sx[1]); // [N, C], every element written
        self.with_slice(|xs| global_avg_pool2d_forward(xs, hw, &mut out));
        let shape = [sx[0], sx[1]];
        Tensor::from_op(out, &shape, "global_avg_pool2d", &[self], move |g| {
            let mut dx = buffers::take(sx.iter().product()); // every plane filled
            g.with_slice(|gs| global_avg_pool2d_backward(gs, hw, &mut dx));
            vec![Some(Tensor::from_vec(dx, &sx))]
        })
    }
}

/// The ops of this module and their gradient checks (a row of [`crate::ops::FAMILIES`]).
pub(crate) const FAMILY: Family = Family {
    name: "pool",
    ops: &["max_pool2d", "avg_pool2d", "global_avg_pool2d"],
    cases: gradcheck_cases,
};

fn gradcheck_cases() -> Vec<Case> {
    let any = |shape: &[usize]| Tensor::randn(shape, 0.0, 1.0);
    vec![
        Case::new("max_pool2d", vec![Case::distinct(&[2, 3, 6, 6])], |x| {
            x[0].max_pool2d(2, 2, 0)
        }),
        // Overlapping windows (stride 1 < kernel 3), padding, odd non-square input, batch 1.
        Case::new("max_pool2d", vec![Case::distinct(&[1, 2, 5, 7])], |x| {
            x[0].max_pool2d(3, (2, 1), 1)
        }),
        Case::new("avg_pool2d", vec![any(&[2, 3, 6, 6])], |x| {
            x[0].avg_pool2d(2, 2, 0)
        }),
        Case::new("avg_pool2d", vec![any(&[1, 2, 5, 7])], |x| {
            x[0].avg_pool2d((3, 2), (2, 1), 1)
        }),
        Case::new("global_avg_pool2d", vec![any(&[2, 3, 4, 5])], |x| {
            x[0].global_avg_pool2d()
        }),
        Case::new("global_avg_pool2d", vec![any(&[1, 4, 3, 3])], |x| {
            x[0].global_avg_pool2d()
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_by_hand() {
        let x = Tensor::from_vec(
            vec![
                1.0, 5.0, 2.0, 0.0, //
                3.0, 4.0, 8.0, 1.0, //
                0.0, 0.0, 1.0, 1.0, //
                9.0, 0.0, 1.0, 3.0,
            ],
            &[1, 1, 4, 4],
        )
        .requires_grad_();
        let m = x.max_pool2d(2, 2, 0);
        assert_eq!(m.shape(), &[1, 1, 2, 2]);
        assert_eq!(m.to_vec(), vec![5.0, 8.0, 9.0, 3.0]);
        m.sum_all().backward().unwrap();
        let g = x.grad().unwrap().to_vec();
        assert_eq!(g.iter().sum::<f32>(), 4.0);
        assert_eq!((g[1], g[6], g[12], g[15]), (1.0, 1.0, 1.0, 1.0));
        let a = x.avg_pool2d(2, 2, 0);
        assert_eq!(a.to_vec(), vec![3.25, 2.75, 2.25, 1.5]);
        let gap = x.global_avg_pool2d();
        assert_eq!(gap.shape(), &[1, 1]);
        assert_eq!(gap.item(), 39.0 / 16.0);
    }

    #[test]
    #[should_panic(
        expected = "max_pool2d: input [1, 1, 4, 4], kernel (2, 2), stride (2, 2): padding"
    )]
    fn too_much_padding_is_named() {
        Tensor::zeros(&[1, 1, 4, 4]).max_pool2d(2, 2, 2);
    }
}
