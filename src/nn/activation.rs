//! Activation layers (no parameters): `Relu`, `Sigmoid`, `Tanh`, `Gelu`, `Silu`, each the
//! module form of the `Tensor` method of the same name (`crate::ops::activation`).

use super::{summary, Module};
use crate::tensor::Tensor;

macro_rules! activation {
    ($name:ident, $method:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Debug, Default, Module)]
        pub struct $name;

        impl Module for $name {
            fn forward(&self, x: &Tensor) -> Tensor {
                summary::recorded(self, x.$method())
            }
        }
    };
}

/// `max(x, 0)`.
#[derive(Clone, Copy, Debug, Default, Module)]
pub struct Relu;

impl Module for Relu {
    fn forward(&self, x: &Tensor) -> Tensor {
        summary::recorded(self, x.relu())
    }
}

activation!(Sigmoid, sigmoid, "`1 / (1 + e^-x)`.");
activation!(Tanh, tanh, "Hyperbolic tangent.");
activation!(Gelu, gelu, "GELU with the exact (erf) form.");
activation!(Silu, silu, "SiLU (swish), `x * sigmoid(x)`.");

/// An activation chosen by name at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// The hyperbolic tangent.
    Tanh,
    /// The tanh-approximated GELU.
    Gelu,
    /// `x * sigmoid(x)`.
    Silu,
}

impl Activation {
    /// Applies the function to `x`, elementwise.
    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::Relu => x.relu(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
            Activation::Gelu => x.gelu(),
            Activation::Silu => x.silu(),
        }
    }
}
