//! Inverted dropout: in training, each element is zeroed with probability `p` and the kept
//! ones are scaled by `1 / (1 - p)`, so evaluation needs no rescaling. The mask is drawn
//! from the thread's seeded generator (`crate::tensor::rng`), so a seeded run drops the same
//! elements every time.

use crate::gradcheck::Case;
use crate::ops::Family;
use crate::tensor::Tensor;
use crate::tensor::rng::{manual_seed, with_rng};
use rand::Rng;
use std::sync::Arc;

impl Tensor {
    /// Dropout with drop probability `p` in `[0, 1]` (PyTorch's `F.dropout`). The identity
    /// (the same tensor) when `!training` or `p == 0`; all zeros when `p == 1`.
    pub fn dropout(&self, p: f32, training: bool) -> Tensor {
        assert!(
            (0.0..=1.0).contains(&p),
            "dropout: probability must be in [0, 1], got {p} (shape {:?})",
            self.shape()
        );
        if !training || p == 0.0 {
            return self.clone();
        }
        // The mask holds the factor each element is multiplied by: 0 or 1 / (1 - p).
        let keep_scale = if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 };
        let mask: Arc<Vec<f32>> = Arc::new(with_rng(|rng| {
            (0..self.numel())
                .map(|_| {
                    if rng.gen::<f32>() < p {
                        0.0
                    } else {
                        keep_scale
                    }
                })
                .collect()
        }));
        let data = self.with_slice(|x| x.iter().zip(mask.iter()).map(|(&v, &m)| v * m).collect());
        Tensor::from_op(data, self.shape(), "dropout", &[self], move |g| {
            let dx = g.with_slice(|gs| gs.iter().zip(mask.iter()).map(|(&v, &m)| v * m).collect());
            vec![Some(Tensor::from_vec(dx, g.shape()))]
        })
    }
}

/// The ops of this module and their gradient checks (a row of [`crate::ops::FAMILIES`]).
pub(crate) const FAMILY: Family = Family {
    name: "dropout",
    ops: &["dropout"],
    cases: gradcheck_cases,
};

fn gradcheck_cases() -> Vec<Case> {
    vec![
        // Re-seeding inside the closure draws the same mask on every evaluation.
        Case::new("dropout", vec![Tensor::randn(&[4, 9], 0.0, 1.0)], |x| {
            manual_seed(11);
            x[0].dropout(0.3, true)
        }),
        Case::new("dropout", vec![Tensor::randn(&[3, 5], 0.0, 1.0)], |x| {
            manual_seed(5);
            x[0].exp().dropout(0.5, true).mul(&x[0])
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_elements_are_scaled_and_the_gradient_uses_the_same_mask() {
        manual_seed(3);
        let x = Tensor::ones(&[1000]).requires_grad_();
        let y = x.dropout(0.25, true);
        let values = y.to_vec();
        let kept = values.iter().filter(|&&v| v != 0.0).count();
        assert!(values
            .iter()
            .all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
        // 750 expected; the binomial standard deviation is about 14.
        assert!((680..=820).contains(&kept), "kept {kept} of 1000");
        y.sum_all().backward().unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), values);
    }

    #[test]
    fn same_seed_same_mask_and_identity_when_not_training() {
        let x = Tensor::randn(&[64], 0.0, 1.0);
        manual_seed(9);
        let a = x.dropout(0.5, true).to_vec();
        manual_seed(9);
        let b = x.dropout(0.5, true).to_vec();
        assert_eq!(a, b);
        assert_eq!(x.dropout(0.5, false).to_vec(), x.to_vec());
        assert_eq!(x.dropout(0.0, true).to_vec(), x.to_vec());
        assert_eq!(x.dropout(1.0, true).to_vec(), vec![0.0; 64]);
    }

    #[test]
    #[should_panic(expected = "dropout: probability must be in [0, 1], got 1.5")]
    fn dropout_rejects_a_bad_probability() {
        Tensor::zeros(&[2]).dropout(1.5, true);
    }
}
