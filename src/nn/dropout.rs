//! `Dropout`: zeroes activations with probability `p` while training.

use super::{summary, Module};
use crate::tensor::Tensor;

/// Inverted dropout; the identity in evaluation mode.
#[derive(Module)]
pub struct Dropout {
    /// The probability of zeroing an element in training.
    pub p: f32,
    training: bool,
}

impl Dropout {
    /// A dropout layer that zeroes each element with probability `p` in training (and scales the rest by `1 / (1 - p)`); the identity in evaluation.
    pub fn new(p: f32) -> Dropout {
        assert!(
            (0.0..1.0).contains(&p),
            "Dropout: probability {p} must be in [0, 1)"
        );
        Dropout { p, training: true }
    }
}

impl Dropout {
    /// Whether it is in training mode (drawing masks) rather than the identity.
    pub fn is_training(&self) -> bool {
        self.training
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Tensor {
        summary::recorded(self, x.dropout(self.p, self.training))
    }
}
