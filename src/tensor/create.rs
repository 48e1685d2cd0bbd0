//! Creating tensors: from values, constant fills and seeded random draws.

use super::Tensor;
use crate::tensor::layout::numel;
use crate::tensor::rng::with_rng;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

impl Tensor {
    /// A tensor of `shape` filled with `value`.
    pub fn full(shape: &[usize], value: f32) -> Tensor {
        Tensor::from_vec(vec![value; numel(shape)], shape)
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 0.0)
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 1.0)
    }

    /// A rank-0 tensor holding `value`.
    pub fn scalar(value: f32) -> Tensor {
        Tensor::from_vec(vec![value], &[])
    }

    /// `0, 1, ..., n-1` as f32.
    pub fn arange(n: usize) -> Tensor {
        Tensor::from_vec((0..n).map(|i| i as f32).collect(), &[n])
    }

    /// Uniform draws from `[low, high)` with the global seeded generator.
    pub fn rand(shape: &[usize], low: f32, high: f32) -> Tensor {
        let data = with_rng(|rng| {
            (0..numel(shape))
                .map(|_| rng.gen_range(low..high))
                .collect()
        });
        Tensor::from_vec(data, shape)
    }

    /// Normal draws with the given mean and standard deviation from the global generator.
    pub fn randn(shape: &[usize], mean: f32, std: f32) -> Tensor {
        let data = with_rng(|rng| {
            (0..numel(shape))
                .map(|_| {
                    let z: f32 = StandardNormal.sample(rng);
                    mean + std * z
                })
                .collect()
        });
        Tensor::from_vec(data, shape)
    }

    /// A tensor of zeros with this one's shape.
    pub fn zeros_like(&self) -> Tensor {
        Tensor::zeros(self.shape())
    }

    /// A tensor of ones with this one's shape.
    pub fn ones_like(&self) -> Tensor {
        Tensor::ones(self.shape())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::rng::manual_seed;

    #[test]
    fn seeded_draws_repeat() {
        manual_seed(7);
        let a = Tensor::randn(&[100], 0.0, 1.0).to_vec();
        manual_seed(7);
        let b = Tensor::randn(&[100], 0.0, 1.0).to_vec();
        assert_eq!(a, b);
        let mean: f32 = a.iter().sum::<f32>() / 100.0;
        assert!(mean.abs() < 0.4, "mean {mean}");
    }

    #[test]
    fn uniform_stays_in_range() {
        let t = Tensor::rand(&[1000], -2.0, 3.0).to_vec();
        assert!(t.iter().all(|&v| (-2.0..3.0).contains(&v)));
    }
}
