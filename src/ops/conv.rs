//! 2-D convolution (PyTorch's `F.conv2d`): input `[N, C, H, W]`, weight `[O, C / groups, KH,
//! KW]`, bias `[O]`, output `[N, O, OH, OW]`.
//!
//! The arithmetic is im2col + GEMM in `crate::kernels::conv`. Backward: `dx` is `Wᵀ · dout`
//! scattered back with col2im, `dW` is `dout · colsᵀ` summed over the batch, `db` the sum of
//! `dout` over N, H and W. Gradients of inputs that did not require one are not computed.

use crate::gradcheck::Case;
use crate::ops::Family;
use crate::kernels::conv::{
    conv2d_backward, conv2d_forward, conv2d_forward_then, ConvShape, Epilogue,
};
use crate::runtime::buffers;
use crate::tensor::Tensor;

/// A size given once for both dimensions (`3`) or as `(height, width)`.
pub trait IntoPair {
    /// The `(height, width)` pair.
    fn pair(self) -> (usize, usize);
}

impl IntoPair for usize {
    fn pair(self) -> (usize, usize) {
        (self, self)
    }
}

impl IntoPair for (usize, usize) {
    fn pair(self) -> (usize, usize) {
        self
    }
}

/// Stride, padding, dilation and groups of a convolution, each pair `(height, width)`.
/// The default is PyTorch's: stride 1, no padding, dilation 1, one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Step between windows, `(height, width)`.
    pub stride: (usize, usize),
    /// Zeros added on each side, `(height, width)`.
    pub padding: (usize, usize),
    /// Spacing between kernel taps, `(height, width)`.
    pub dilation: (usize, usize),
    /// Channel groups: each output channel sees `in_channels / groups` inputs.
    pub groups: usize,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

impl Conv2dOptions {
    /// The defaults (stride 1, padding 0, dilation 1, groups 1).
    pub fn new() -> Self {
        Self::default()
    }

    /// Stride `stride` and padding `padding`, the usual pair: `Conv2dOptions::with(2, 1)`.
    pub fn with(stride: impl IntoPair, padding: impl IntoPair) -> Self {
        Self::new().stride(stride).padding(padding)
    }

    /// Sets the stride.
    pub fn stride(mut self, s: impl IntoPair) -> Self {
        self.stride = s.pair();
        self
    }

    /// Sets the zero padding added on both sides.
    pub fn padding(mut self, p: impl IntoPair) -> Self {
        self.padding = p.pair();
        self
    }

    /// Sets the dilation (spacing between kernel taps).
    pub fn dilation(mut self, d: impl IntoPair) -> Self {
        self.dilation = d.pair();
        self
    }

    /// Sets the number of groups (channels are split into `groups` independent blocks).
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
}

/// The kernel sizes of `x: [N, C, H, W]` convolved with `w: [O, C/groups, KH, KW]`, checked.
fn conv_shape(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, opts: &Conv2dOptions) -> ConvShape {
    let (sx, sw) = (x.shape(), w.shape());
    assert!(
        sx.len() == 4 && sw.len() == 4,
        "conv2d: input {sx:?} and weight {sw:?} must be [N, C, H, W] and [O, C/groups, KH, KW]"
    );
    let s = ConvShape {
        n: sx[0],
        c: sx[1],
        h: sx[2],
        w: sx[3],
        o: sw[0],
        kh: sw[2],
        kw: sw[3],
        stride: opts.stride,
        padding: opts.padding,
        dilation: opts.dilation,
        groups: opts.groups,
    };
    if let Some(p) = s.problem() {
        panic!("conv2d: input {sx:?}, weight {sw:?}, {opts:?}: {p}");
    }
    assert!(
        sw[1] * opts.groups == sx[1],
        "conv2d: input {sx:?} has {} channels but weight {sw:?} with groups {} expects {}",
        sx[1],
        opts.groups,
        sw[1] * opts.groups
    );
    if let Some(b) = bias {
        assert!(
            b.shape() == [sw[0]],
            "conv2d: bias {:?} does not match weight {sw:?} (need [{}])",
            b.shape(),
            sw[0]
        );
    }
    s
}

impl Tensor {
    /// 2-D convolution (cross-correlation, as PyTorch): `self: [N, C, H, W]`,
    /// `weight: [O, C / groups, KH, KW]`, `bias: [O]` -> `[N, O, OH, OW]` with
    /// `OH = (H + 2 * pad - dil * (KH - 1) - 1) / stride + 1`.
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, opts: Conv2dOptions) -> Tensor {
        let s = conv_shape(self, weight, bias, &opts);
        let x = self.detach().contiguous(); // [N, C, H, W]
        let w = weight.detach().contiguous(); // [O, C/groups, KH, KW]
        let out = conv2d_values(&s, &x, &w, bias, None, false);
        let (oh, ow) = s.out_hw();
        let need = [
            self.requires_grad(),
            weight.requires_grad(),
            bias.is_some_and(|b| b.requires_grad()),
        ];
        let has_bias = bias.is_some();
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        Tensor::from_op(out, &[s.n, s.o, oh, ow], "conv2d", &inputs, move |g| {
            let mut dx = need[0].then(|| buffers::take(x.numel())); // cleared by the kernel
            let mut dw = need[1].then(|| vec![0.0; w.numel()]);
            let mut db = need[2].then(|| vec![0.0; s.o]);
            x.with_slice(|xs| {
                w.with_slice(|ws| {
                    g.with_slice(|gs| {
                        conv2d_backward(
                            &s,
                            xs,
                            ws,
                            gs,
                            dx.as_deref_mut(),
                            dw.as_deref_mut(),
                            db.as_deref_mut(),
                        )
                    })
                })
            });
            let mut grads = vec![
                dx.map(|d| Tensor::from_vec(d, x.shape())),
                dw.map(|d| Tensor::from_vec(d, w.shape())),
            ];
            if has_bias {
                grads.push(db.map(|d| Tensor::from_vec(d, &[s.o])));
            }
            grads
        })
    }
}

impl Tensor {
    /// For inference: `conv2d(weight, bias, opts)`, then `y * scale[o] + shift[o]` per output
    /// channel when `affine` is given (a batch norm with its running statistics, see
    /// [`crate::nn::BatchNorm::eval_channel_affine`]), then a ReLU when `relu`, all applied as
    /// the convolution stores its output instead of in passes of their own. The values are
    /// the separate ops'. No gradient is recorded, so it must run where none is wanted
    /// (under [`crate::no_grad`], or on tensors that do not require one).
    pub fn conv2d_inference(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        opts: Conv2dOptions,
        affine: Option<(&[f32], &[f32])>,
        relu: bool,
    ) -> Tensor {
        let needs_grad = [Some(self), Some(weight), bias]
            .into_iter()
            .flatten()
            .any(Tensor::requires_grad);
        assert!(
            !(crate::is_grad_enabled() && needs_grad),
            "conv2d_inference records no gradient: call it under no_grad"
        );
        let s = conv_shape(self, weight, bias, &opts);
        if let Some((scale, shift)) = affine {
            assert!(
                scale.len() == s.o && shift.len() == s.o,
                "conv2d_inference: scale and shift have {} and {} values for {} output channels",
                scale.len(),
                shift.len(),
                s.o
            );
        }
        let x = self.detach().contiguous(); // [N, C, H, W]
        let w = weight.detach().contiguous(); // [O, C/groups, KH, KW]
        let out = conv2d_values(&s, &x, &w, bias, affine, relu);
        let (oh, ow) = s.out_hw();
        Tensor::from_vec(out, &[s.n, s.o, oh, ow])
    }
}

/// The output values `[N, O, OH, OW]` of the convolution `s` of the contiguous `x` and `w`,
/// with `bias`, `affine` and `relu` applied as they are stored ([`Epilogue`]).
fn conv2d_values(
    s: &ConvShape,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    affine: Option<(&[f32], &[f32])>,
    relu: bool,
) -> Vec<f32> {
    let mut out = buffers::take(s.out_len()); // every element written
    let bias = bias.map(Tensor::to_vec);
    let epilogue = Epilogue {
        bias: bias.as_deref(),
        affine,
        relu,
        ..Epilogue::default()
    };
    x.with_slice(|xs| w.with_slice(|ws| conv2d_forward_then(s, xs, ws, epilogue, &mut out)));
    out
}

/// The distinct convolutions of `resnet20` on `1 x 28 x 28` images with batch `n`, each with
/// how many times it occurs in the network (for benchmarks: 21 convolutions in all).
pub fn resnet20_conv_shapes(n: usize) -> Vec<(ConvShape, usize)> {
    let conv = |c, hw, o, k, stride, pad| ConvShape {
        n,
        c,
        h: hw,
        w: hw,
        o,
        kh: k,
        kw: k,
        stride: (stride, stride),
        padding: (pad, pad),
        dilation: (1, 1),
        groups: 1,
    };
    vec![
        (conv(1, 28, 16, 3, 1, 1), 1),  // conv1
        (conv(16, 28, 16, 3, 1, 1), 6), // layer1
        (conv(16, 28, 32, 3, 2, 1), 1), // layer2.0.conv1
        (conv(16, 28, 32, 1, 2, 0), 1), // layer2.0.shortcut.0
        (conv(32, 14, 32, 3, 1, 1), 5), // layer2 rest
        (conv(32, 14, 64, 3, 2, 1), 1), // layer3.0.conv1
        (conv(32, 14, 64, 1, 2, 0), 1), // layer3.0.shortcut.0
        (conv(64, 7, 64, 3, 1, 1), 5),  // layer3 rest
    ]
}

/// Times the convolution kernels on `s` with random data: mean seconds of one forward and of
/// one backward (input, weight and bias gradients) over `iters` runs after one warm-up run.
pub fn time_conv2d(s: &ConvShape, iters: usize) -> (f64, f64) {
    let x = Tensor::randn(&[s.n, s.c, s.h, s.w], 0.0, 1.0).to_vec();
    let w = Tensor::randn(&[s.weight_len()], 0.0, 0.1).to_vec();
    let b = vec![0.1; s.o];
    let dy = Tensor::randn(&[s.out_len()], 0.0, 1.0).to_vec();
    let mut out = vec![0.0; s.out_len()];
    let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; s.o]);
    let (mut fwd, mut bwd) = (0.0, 0.0);
    for i in 0..=iters {
        let t0 = std::time::Instant::now();
        conv2d_forward(s, &x, &w, Some(&b), &mut out);
        let t1 = std::time::Instant::now();
        conv2d_backward(s, &x, &w, &dy, Some(&mut dx), Some(&mut dw), Some(&mut db));
        if i > 0 {
            fwd += (t1 - t0).as_secs_f64();
            bwd += t1.elapsed().as_secs_f64();
        }
    }
    (fwd / iters.max(1) as f64, bwd / iters.max(1) as f64)
}

/// The ops of this module and their gradient checks (a row of [`crate::ops::FAMILIES`]).
pub(crate) const FAMILY: Family = Family {
    name: "conv",
    ops: &["conv2d"],
    cases: gradcheck_cases,
};

fn gradcheck_cases() -> Vec<Case> {
    let any = |shape: &[usize]| Tensor::randn(shape, 0.0, 1.0);
    vec![
        // Padded 3x3 with bias, batch 2, odd non-square input.
        Case::new(
            "conv2d",
            vec![any(&[2, 3, 5, 6]), any(&[4, 3, 3, 3]), any(&[4])],
            |x| x[0].conv2d(&x[1], Some(&x[2]), Conv2dOptions::with(1, 1)),
        ),
        // Stride 2, padding, no bias, batch 1.
        Case::new(
            "conv2d",
            vec![any(&[1, 2, 7, 7]), any(&[3, 2, 3, 3])],
            |x| x[0].conv2d(&x[1], None, Conv2dOptions::with(2, 1)),
        ),
        // Dilation 2, non-square kernel and padding.
        Case::new(
            "conv2d",
            vec![any(&[2, 2, 7, 6]), any(&[3, 2, 3, 2]), any(&[3])],
            |x| {
                let o = Conv2dOptions::with(1, (2, 1)).dilation(2);
                x[0].conv2d(&x[1], Some(&x[2]), o)
            },
        ),
        // Groups 2 with stride (2, 1).
        Case::new(
            "conv2d",
            vec![any(&[2, 4, 5, 5]), any(&[6, 2, 3, 3]), any(&[6])],
            |x| {
                let o = Conv2dOptions::with((2, 1), 1).groups(2);
                x[0].conv2d(&x[1], Some(&x[2]), o)
            },
        ),
        // 1x1 (the path without im2col) and 1x1 stride 2 (a resnet shortcut).
        Case::new(
            "conv2d",
            vec![any(&[3, 4, 3, 5]), any(&[2, 4, 1, 1]), any(&[2])],
            |x| x[0].conv2d(&x[1], Some(&x[2]), Conv2dOptions::new()),
        ),
        Case::new(
            "conv2d",
            vec![any(&[2, 3, 5, 5]), any(&[4, 3, 1, 1])],
            |x| x[0].conv2d(&x[1], None, Conv2dOptions::with(2, 0)),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_convolution_by_hand() {
        // 1x1x3x3 input, 2x2 kernel of ones plus bias 1: sums of each 2x2 window plus one.
        let x = Tensor::from_vec((1..=9).map(|v| v as f32).collect(), &[1, 1, 3, 3]);
        let w = Tensor::ones(&[1, 1, 2, 2]);
        let b = Tensor::from_vec(vec![1.0], &[1]);
        let y = x.conv2d(&w, Some(&b), Conv2dOptions::new());
        assert_eq!(y.shape(), &[1, 1, 2, 2]);
        assert_eq!(y.to_vec(), vec![13.0, 17.0, 25.0, 29.0]);
        // Stride 2 with padding 1: the corners of the padded 5x5 grid.
        let y = x.conv2d(&w, None, Conv2dOptions::with(2, 1));
        assert_eq!(y.to_vec(), vec![1.0, 5.0, 11.0, 28.0]);
    }

    #[test]
    fn gradients_flow_only_where_asked() {
        let x = Tensor::randn(&[2, 2, 4, 4], 0.0, 1.0);
        let w = Tensor::randn(&[3, 2, 3, 3], 0.0, 1.0).requires_grad_();
        let y = x.conv2d(&w, None, Conv2dOptions::with(1, 1));
        y.sum_all().backward().unwrap();
        assert!(x.grad().is_none());
        assert_eq!(w.grad().unwrap().shape(), &[3, 2, 3, 3]);
    }

    #[test]
    fn resnet20_has_21_convolutions() {
        let shapes = resnet20_conv_shapes(128);
        assert_eq!(shapes.iter().map(|(_, k)| k).sum::<usize>(), 21);
        assert!(shapes.iter().all(|(s, _)| s.problem().is_none()));
        assert_eq!(shapes[7].0.out_hw(), (7, 7));
    }

    #[test]
    #[should_panic(expected = "conv2d: input [1, 3, 5, 5] has 3 channels but weight [4, 2, 3, 3]")]
    fn channel_mismatch_is_named() {
        Tensor::zeros(&[1, 3, 5, 5]).conv2d(
            &Tensor::zeros(&[4, 2, 3, 3]),
            None,
            Default::default(),
        );
    }

    #[test]
    #[should_panic(expected = "larger than the padded input 4x4")]
    fn kernel_larger_than_input_is_named() {
        Tensor::zeros(&[1, 1, 2, 2]).conv2d(
            &Tensor::zeros(&[1, 1, 5, 5]),
            None,
            Conv2dOptions::with(1, 1),
        );
    }

    #[test]
    #[should_panic(expected = "groups 2 must divide both the 3 input")]
    fn groups_not_dividing_channels_are_named() {
        Tensor::zeros(&[1, 3, 5, 5]).conv2d(
            &Tensor::zeros(&[4, 1, 3, 3]),
            None,
            Conv2dOptions::new().groups(2),
        );
    }
}
