//! Seeded weight initialization, following `torch.nn.init` formula for formula.
//!
//! Every initializer draws from this thread's generator (`crate::tensor::rng`), so
//! `manual_seed(s)` followed by the same calls gives the same weights. The results are
//! plain leaf tensors; a layer marks them as parameters with `requires_grad_()`.
//!
//! Fans follow `torch.nn.init._calculate_fan_in_and_fan_out`: for a weight
//! `[out, in, *kernel]`, `fan_in = in · prod(kernel)` and `fan_out = out · prod(kernel)`.

use crate::tensor::layout::numel;
use crate::tensor::rng::with_rng;
use crate::tensor::Tensor;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// Which fan Kaiming initialization preserves the variance of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// The forward pass (PyTorch's default).
    FanIn,
    /// The backward pass.
    FanOut,
}

/// The nonlinearity after a layer, which sets the gain (`torch.nn.init.calculate_gain`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nonlinearity {
    /// Identity (also right for convolutions and sigmoid-free outputs): gain 1.
    Linear,
    /// Gain `sqrt(2)`.
    Relu,
    /// Gain `sqrt(2 / (1 + a²))` for negative slope `a`.
    LeakyRelu,
    /// Gain `5/3`.
    Tanh,
    /// Gain 1.
    Sigmoid,
}

/// The recommended gain for `nonlinearity`; `a` is the negative slope of `LeakyRelu`
/// (ignored otherwise).
pub fn calculate_gain(nonlinearity: Nonlinearity, a: f32) -> f32 {
    match nonlinearity {
        Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
        Nonlinearity::Relu => 2f32.sqrt(),
        Nonlinearity::LeakyRelu => (2.0 / (1.0 + a * a)).sqrt(),
        Nonlinearity::Tanh => 5.0 / 3.0,
    }
}

/// `(fan_in, fan_out)` of a weight shape `[out, in, *kernel]`.
///
/// Panics for fewer than 2 dimensions, as PyTorch does.
pub fn calculate_fan_in_and_fan_out(shape: &[usize]) -> (usize, usize) {
    assert!(
        shape.len() >= 2,
        "init: fan in and fan out cannot be computed for shape {shape:?} (fewer than 2 dimensions)"
    );
    let receptive: usize = shape[2..].iter().product();
    (shape[1] * receptive, shape[0] * receptive)
}

/// Draws from `U(-bound, bound)` (zeros when `bound` is 0).
pub fn uniform(shape: &[usize], bound: f32) -> Tensor {
    let data = with_rng(|rng| {
        (0..numel(shape))
            .map(|_| {
                if bound > 0.0 {
                    rng.gen_range(-bound..bound)
                } else {
                    0.0
                }
            })
            .collect()
    });
    Tensor::from_vec(data, shape)
}

/// Draws from `N(0, std²)`.
pub fn normal(shape: &[usize], std: f32) -> Tensor {
    let data = with_rng(|rng| {
        (0..numel(shape))
            .map(|_| {
                let z: f32 = StandardNormal.sample(rng);
                std * z
            })
            .collect()
    });
    Tensor::from_vec(data, shape)
}

fn fan(shape: &[usize], mode: FanMode) -> usize {
    let (fan_in, fan_out) = calculate_fan_in_and_fan_out(shape);
    let f = match mode {
        FanMode::FanIn => fan_in,
        FanMode::FanOut => fan_out,
    };
    assert!(f > 0, "init: {mode:?} of shape {shape:?} is 0");
    f
}

/// Glorot/Xavier uniform: `U(-b, b)` with `b = gain · sqrt(6 / (fan_in + fan_out))`.
pub fn xavier_uniform(shape: &[usize], gain: f32) -> Tensor {
    let (fan_in, fan_out) = calculate_fan_in_and_fan_out(shape);
    uniform(shape, gain * (6.0 / (fan_in + fan_out) as f32).sqrt())
}

/// Glorot/Xavier normal: `N(0, std²)` with `std = gain · sqrt(2 / (fan_in + fan_out))`.
pub fn xavier_normal(shape: &[usize], gain: f32) -> Tensor {
    let (fan_in, fan_out) = calculate_fan_in_and_fan_out(shape);
    normal(shape, gain * (2.0 / (fan_in + fan_out) as f32).sqrt())
}

/// The standard deviation Kaiming initialization aims for: `gain / sqrt(fan)`.
fn kaiming_std(shape: &[usize], a: f32, mode: FanMode, nonlinearity: Nonlinearity) -> f32 {
    calculate_gain(nonlinearity, a) / (fan(shape, mode) as f32).sqrt()
}

/// He/Kaiming uniform: `U(-b, b)` with `b = sqrt(3) · gain / sqrt(fan)`; `a` is the negative
/// slope for `LeakyRelu`.
pub fn kaiming_uniform(
    shape: &[usize],
    a: f32,
    mode: FanMode,
    nonlinearity: Nonlinearity,
) -> Tensor {
    uniform(
        shape,
        3f32.sqrt() * kaiming_std(shape, a, mode, nonlinearity),
    )
}

/// He/Kaiming normal: `N(0, std²)` with `std = gain / sqrt(fan)`.
pub fn kaiming_normal(
    shape: &[usize],
    a: f32,
    mode: FanMode,
    nonlinearity: Nonlinearity,
) -> Tensor {
    normal(shape, kaiming_std(shape, a, mode, nonlinearity))
}

/// PyTorch's default for a weight and its bias (`reset_parameters` of `nn.Linear` and
/// `nn.ConvNd`): Kaiming uniform with `a = sqrt(5)` for the weight, which is
/// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, and the same bound for the bias.
fn layer_default(weight_shape: &[usize]) -> (Tensor, Tensor) {
    let weight = kaiming_uniform(
        weight_shape,
        5f32.sqrt(),
        FanMode::FanIn,
        Nonlinearity::LeakyRelu,
    );
    let (fan_in, _) = calculate_fan_in_and_fan_out(weight_shape);
    let bound = if fan_in > 0 {
        1.0 / (fan_in as f32).sqrt()
    } else {
        0.0
    };
    let bias = uniform(&[weight_shape[0]], bound);
    (weight, bias)
}

/// `nn.Linear(in, out)`'s initial `(weight [out, in], bias [out])`.
pub fn linear_default(out_features: usize, in_features: usize) -> (Tensor, Tensor) {
    layer_default(&[out_features, in_features])
}

/// `nn.Conv2d`'s initial `(weight [out, in_per_group, kh, kw], bias [out])`
/// (`fan_in = in_per_group · kh · kw`).
pub fn conv2d_default(
    out_channels: usize,
    in_per_group: usize,
    kh: usize,
    kw: usize,
) -> (Tensor, Tensor) {
    layer_default(&[out_channels, in_per_group, kh, kw])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::rng::manual_seed;

    fn max_abs(t: &Tensor) -> f32 {
        t.to_vec().iter().fold(0.0f32, |m, &x| m.max(x.abs()))
    }

    fn std(t: &Tensor) -> f32 {
        let v = t.to_vec();
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        (v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt() as f32
    }

    fn close(actual: f32, expected: f32, rel: f32) -> bool {
        (actual - expected).abs() <= rel * expected
    }

    #[test]
    fn fans_follow_pytorch() {
        assert_eq!(calculate_fan_in_and_fan_out(&[10, 20]), (20, 10));
        assert_eq!(calculate_fan_in_and_fan_out(&[16, 6, 5, 5]), (150, 400));
        assert_eq!(calculate_fan_in_and_fan_out(&[8, 4, 3]), (12, 24));
    }

    #[test]
    #[should_panic(expected = "fewer than 2 dimensions")]
    fn fan_of_a_vector_is_refused() {
        calculate_fan_in_and_fan_out(&[5]);
    }

    #[test]
    fn uniform_inits_stay_in_bounds_and_fill_them() {
        let shape = [300, 200];
        let cases = [
            (xavier_uniform(&shape, 2.0), 2.0 * (6.0f32 / 500.0).sqrt()),
            (
                kaiming_uniform(&shape, 0.0, FanMode::FanIn, Nonlinearity::Relu),
                (6.0f32 / 200.0).sqrt(),
            ),
            (
                kaiming_uniform(&shape, 0.0, FanMode::FanOut, Nonlinearity::Linear),
                (3.0f32 / 300.0).sqrt(),
            ),
        ];
        for (t, bound) in cases {
            let m = max_abs(&t);
            assert!(m <= bound && m > 0.99 * bound, "max {m}, bound {bound}");
            // A uniform on [-b, b] has std b/sqrt(3).
            assert!(close(std(&t), bound / 3f32.sqrt(), 0.02), "std {}", std(&t));
        }
    }

    #[test]
    fn pytorch_defaults_are_one_over_sqrt_fan_in() {
        let (w, b) = linear_default(64, 100);
        assert_eq!((w.shape(), b.shape()), (&[64, 100][..], &[64][..]));
        assert!(max_abs(&w) <= 0.1 && max_abs(&w) > 0.095);
        assert!(max_abs(&b) <= 0.1 && max_abs(&b) > 0.05);
        let (w, b) = conv2d_default(16, 6, 5, 5);
        assert_eq!((w.shape(), b.shape()), (&[16, 6, 5, 5][..], &[16][..]));
        let bound = 1.0 / 150f32.sqrt();
        assert!(max_abs(&w) <= bound && max_abs(&w) > 0.98 * bound);
        assert!(max_abs(&b) <= bound);
    }

    #[test]
    fn normal_inits_have_the_formula_std() {
        let shape = [500, 400];
        let cases = [
            (xavier_normal(&shape, 1.0), (2.0f32 / 900.0).sqrt()),
            (
                kaiming_normal(&shape, 0.0, FanMode::FanIn, Nonlinearity::Relu),
                (2.0f32 / 400.0).sqrt(),
            ),
            (
                kaiming_normal(&shape, 0.2, FanMode::FanOut, Nonlinearity::LeakyRelu),
                (2.0f32 / 1.04).sqrt() / 500f32.sqrt(),
            ),
        ];
        for (t, expected) in cases {
            let s = std(&t);
            assert!(close(s, expected, 0.02), "std {s}, expected {expected}");
        }
    }

    #[test]
    fn same_seed_same_weights() {
        manual_seed(42);
        let (w1, b1) = linear_default(8, 5);
        let n1 = kaiming_normal(&[4, 3, 3, 3], 0.0, FanMode::FanIn, Nonlinearity::Relu);
        manual_seed(42);
        let (w2, b2) = linear_default(8, 5);
        let n2 = kaiming_normal(&[4, 3, 3, 3], 0.0, FanMode::FanIn, Nonlinearity::Relu);
        assert_eq!(w1.to_vec(), w2.to_vec());
        assert_eq!(b1.to_vec(), b2.to_vec());
        assert_eq!(n1.to_vec(), n2.to_vec());
        manual_seed(43);
        assert_ne!(linear_default(8, 5).0.to_vec(), w1.to_vec());
    }
}
