//! `Dropout`: zeroes activations with probability `p` while training.

use super::{summary, Module};
use crate::tensor::Tensor;

/// Inverted dropout; the identity in evaluation mode.
#[derive(Module)]
pub struct Dropout {
    pub p: f32,
    training: bool,
}

impl Dropout {
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
