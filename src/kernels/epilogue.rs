//! What a kernel does to each sum as it stores it: the one description that the
//! convolution, the packed product and the batch norm take, so that a bias, a batch norm in
//! evaluation and an activation after a layer cost no passes of their own over its output.

/// The steps applied to each value `v` of output feature `o` (a convolution's output channel,
/// a product's column, a batch norm's channel) as it is stored, each only when given, in
/// this order:
///
/// 1. `v + bias[o]`;
/// 2. `v * scale[o] + shift[o]` with `affine = (scale, shift)` (a batch norm with fixed
///    statistics);
/// 3. `C + v` when `accumulate` (else `v` overwrites `C`);
/// 4. `max(v, 0)` when `relu`, or the exact GELU when `gelu`.
///
/// The arithmetic is that of the separate ops (a multiply then an add, not a fused
/// multiply-add), so the values are theirs. A kernel states which steps it supports and
/// panics on the others ([`Epilogue::supports`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    /// One value per output feature.
    pub bias: Option<&'a [f32]>,
    /// `(scale, shift)`, one value per output feature each.
    pub affine: Option<(&'a [f32], &'a [f32])>,
    /// Add to the destination instead of overwriting it.
    pub accumulate: bool,
    /// A ReLU last.
    pub relu: bool,
    /// The exact GELU last.
    pub gelu: bool,
}

/// The steps of an [`Epilogue`], for [`Epilogue::supports`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Adds a per-channel bias.
    Bias,
    /// Applies a per-channel `scale * x + shift` (a folded batch norm).
    Affine,
    /// Adds to what the output already holds.
    Accumulate,
    /// `max(x, 0)`.
    Relu,
    /// The tanh-approximated GELU.
    Gelu,
}

impl<'a> Epilogue<'a> {
    /// Only a bias.
    pub fn bias(bias: Option<&'a [f32]>) -> Epilogue<'a> {
        Epilogue {
            bias,
            ..Epilogue::default()
        }
    }

    /// Stores the sums as they are.
    pub fn is_identity(&self) -> bool {
        self.bias.is_none() && self.affine.is_none() && !self.accumulate && !self.relu && !self.gelu
    }

    /// The steps this epilogue asks for.
    pub fn steps(&self) -> Vec<Step> {
        [
            (self.bias.is_some(), Step::Bias),
            (self.affine.is_some(), Step::Affine),
            (self.accumulate, Step::Accumulate),
            (self.relu, Step::Relu),
            (self.gelu, Step::Gelu),
        ]
        .into_iter()
        .filter_map(|(on, step)| on.then_some(step))
        .collect()
    }

    /// Panics, naming `kernel`, unless every step asked for is in `supported` and every
    /// per-feature slice holds a value for each of `features` output features.
    pub fn supports(&self, kernel: &str, supported: &[Step], features: usize) {
        let steps = self.steps();
        assert!(
            steps.iter().all(|s| supported.contains(s)),
            "{kernel}: epilogue steps {steps:?}, of which it supports {supported:?}"
        );
        assert!(
            !(self.relu && self.gelu),
            "{kernel}: an epilogue has one activation"
        );
        let lens = [
            self.bias.map(<[f32]>::len),
            self.affine.map(|(s, _)| s.len()),
            self.affine.map(|(_, t)| t.len()),
        ];
        assert!(
            lens.iter().flatten().all(|&l| l >= features),
            "{kernel}: per-feature values {lens:?} for {features} output features"
        );
    }

    /// The epilogue of the output features from `o` on (a channel group, a register tile).
    pub fn rows_from(&self, o: usize) -> Epilogue<'a> {
        Epilogue {
            bias: self.bias.map(|b| &b[o..]),
            affine: self.affine.map(|(s, t)| (&s[o..], &t[o..])),
            ..*self
        }
    }

    /// Applies the epilogue of output feature `o` to a run of its values that overwrite
    /// their destination (not `accumulate`).
    pub fn apply(&self, o: usize, values: &mut [f32]) {
        debug_assert!(
            !self.accumulate,
            "apply: the values overwrite their destination"
        );
        if let Some(b) = self.bias {
            values.iter_mut().for_each(|v| *v += b[o]);
        }
        if let Some((scale, shift)) = self.affine {
            values
                .iter_mut()
                .for_each(|v| *v = *v * scale[o] + shift[o]);
        }
        if self.relu {
            values.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        if self.gelu {
            values
                .iter_mut()
                .for_each(|v| *v = crate::kernels::math::gelu(*v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_run_in_order_with_the_separate_ops_arithmetic() {
        let (bias, scale, shift) = ([0.5, -1.0], [2.0, 3.0], [-4.0, 1.0]);
        let e = Epilogue {
            bias: Some(&bias),
            affine: Some((&scale, &shift)),
            relu: true,
            ..Epilogue::default()
        };
        let mut v = [1.0, 3.0];
        e.apply(0, &mut v);
        // (1 + 0.5) * 2 - 4 = -1 -> 0; (3 + 0.5) * 2 - 4 = 3.
        assert_eq!(v, [0.0, 3.0]);
        let mut w = [1.0f32];
        e.rows_from(1).apply(0, &mut w);
        assert_eq!(w, [1.0]); // (1 - 1) * 3 + 1
        assert_eq!(e.steps(), vec![Step::Bias, Step::Affine, Step::Relu]);
        assert!(Epilogue::default().is_identity());
    }

    #[test]
    #[should_panic(expected = "conv: epilogue steps [Gelu]")]
    fn a_kernel_refuses_a_step_it_does_not_do() {
        let e = Epilogue {
            gelu: true,
            ..Epilogue::default()
        };
        e.supports("conv", &[Step::Bias, Step::Relu], 4);
    }

    #[test]
    #[should_panic(expected = "per-feature values")]
    fn a_short_bias_is_refused() {
        Epilogue::bias(Some(&[1.0, 2.0])).supports("gemm", &[Step::Bias], 3);
    }
}
