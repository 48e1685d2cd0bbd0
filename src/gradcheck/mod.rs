//! Finite-difference gradient checks: the chain rule of every op, verified numerically.
//!
//! A [`Case`] is an op applied to random inputs. [`check`] projects the op's output onto
//! fixed random weights `r` (so the check covers every output element), back-propagates
//! `sum(out * r)`, and compares each input gradient with the central difference
//! `(L(x + eps) - L(x - eps)) / 2eps`, the projections summed in f64. [`cases`] gathers the
//! cases of every op family in [`crate::ops::FAMILIES`]; the test suite and
//! `neurite gradcheck` both run them, and [`table_problems`] checks that every listed op
//! has one.
//!
//! # Checking an op of your own
//!
//! An op written outside the crate (with [`Tensor::elementwise`] or [`Tensor::from_op`])
//! is checked the same way: make a [`Case`] of it and call [`check`], which returns a
//! [`Report`] whose `passed` says whether every probed gradient element agrees with the
//! finite difference.
//!
//! ```
//! use neurite::gradcheck::{check, Case};
//! use neurite::ops::map::Reads;
//! use neurite::Tensor;
//!
//! // softsign(x) = x / (1 + |x|), with its derivative 1 / (1 + |x|)^2.
//! fn softsign(x: &Tensor) -> Tensor {
//!     x.elementwise("softsign", |v| v / (1.0 + v.abs()), Reads::Input, |dy, x| {
//!         dy / ((1.0 + x.abs()) * (1.0 + x.abs()))
//!     })
//! }
//!
//! let case = Case::new("softsign", vec![Tensor::randn(&[4, 5], 0.0, 2.0)], |x| softsign(&x[0]));
//! let report = check(&case);
//! assert!(report.passed, "{report:?}");
//! ```

use crate::autograd::no_grad;
use crate::tensor::rng::{manual_seed, with_rng};
use crate::tensor::Tensor;
use rand::seq::SliceRandom;

/// At most this many elements of each input are perturbed (spread over the whole input).
const MAX_PROBES: usize = 300;

/// The function a case differentiates: inputs to output.
pub type CaseFn = Box<dyn Fn(&[Tensor]) -> Tensor>;

/// One gradient check: an op over given inputs. Build it with [`Case::new`] and adjust it
/// with [`Case::constant`], [`Case::eps`] and [`Case::tolerance`].
pub struct Case {
    /// The op's name, as reports show it.
    pub op: &'static str,
    /// The inputs the op is applied to (copied and made leaves by [`check`]).
    pub inputs: Vec<Tensor>,
    /// Which inputs are differentiated (index inputs, for example, are not).
    pub check_input: Vec<bool>,
    /// The function checked: the inputs in, one output tensor of any shape out.
    pub f: CaseFn,
    /// The finite-difference step (default 1e-2; smaller for ops with kinks).
    pub eps: f32,
    /// Absolute tolerance of an element (default 1e-3).
    pub atol: f64,
    /// Relative tolerance of an element (default 1e-2).
    pub rtol: f64,
}

impl Case {
    /// A case that checks the gradient of every input of `f` at `inputs`.
    pub fn new(
        op: &'static str,
        inputs: Vec<Tensor>,
        f: impl Fn(&[Tensor]) -> Tensor + 'static,
    ) -> Case {
        let check_input = vec![true; inputs.len()];
        Case {
            op,
            inputs,
            check_input,
            f: Box::new(f),
            eps: 1e-2,
            atol: 1e-3,
            rtol: 1e-2,
        }
    }

    /// Leaves input `i` out of the check (it is not differentiable, e.g. indices).
    pub fn constant(mut self, i: usize) -> Case {
        self.check_input[i] = false;
        self
    }

    /// Sets the finite-difference step.
    pub fn eps(mut self, eps: f32) -> Case {
        self.eps = eps;
        self
    }

    /// Sets the tolerances: an element passes when `|analytic - numeric| <= atol + rtol * |numeric|`.
    pub fn tolerance(mut self, atol: f64, rtol: f64) -> Case {
        self.atol = atol;
        self.rtol = rtol;
        self
    }

    /// Random values that are pairwise at least 0.05 apart, for ops with kinks (max, ReLU,
    /// pooling): a finite-difference step never crosses a tie.
    pub fn distinct(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let mut v: Vec<f32> = (0..n)
            .map(|i| (i as f32 - n as f32 / 2.0) * 0.05 + 0.025)
            .collect();
        with_rng(|rng| v.shuffle(rng));
        Tensor::from_vec(v, shape)
    }

    /// Shapes of the inputs, as shown in reports.
    pub fn shapes(&self) -> String {
        self.inputs
            .iter()
            .map(|t| format!("{:?}", t.shape()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The outcome of one case.
#[derive(Clone, Debug)]
pub struct Report {
    /// The op's name.
    pub op: &'static str,
    /// The inputs' shapes, as [`Case::shapes`] writes them.
    pub shapes: String,
    /// The largest `|analytic - numeric|` over the probed elements.
    pub max_abs_err: f64,
    /// The largest relative difference, over elements whose gradient exceeds 1e-2.
    pub max_rel_err: f64,
    /// How many input elements were perturbed (at most 300 per input, spread out).
    pub probes: usize,
    /// Every probed element agreed within `atol + rtol * |numeric|`.
    pub passed: bool,
}

/// Deterministic projection weights in [-1, 1] that do not touch the global generator.
fn projection(n: usize) -> Vec<f64> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f64 / (1u64 << 24) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// Runs one finite-difference check: back-propagates `sum(f(inputs) * r)` for fixed random
/// weights `r`, and compares each checked input's gradient with central differences.
pub fn check(case: &Case) -> Report {
    let inputs: Vec<Tensor> = case
        .inputs
        .iter()
        .map(|t| t.detach().contiguous())
        .collect();
    for (t, &c) in inputs.iter().zip(&case.check_input) {
        t.set_requires_grad(c);
    }
    let out = (case.f)(&inputs);
    let r = projection(out.numel());
    let r_tensor = Tensor::from_vec(r.iter().map(|&v| v as f32).collect(), out.shape());
    out.mul(&r_tensor)
        .sum_all()
        .backward()
        .unwrap_or_else(|e| panic!("gradcheck {}: {e}", case.op));

    let objective = || -> f64 {
        let y = no_grad(|| (case.f)(&inputs)).to_vec();
        y.iter().zip(&r).map(|(&a, &b)| a as f64 * b).sum()
    };
    let (mut max_abs, mut max_rel, mut probes, mut passed) = (0.0f64, 0.0f64, 0, true);
    for (t, &c) in inputs.iter().zip(&case.check_input) {
        if !c {
            continue;
        }
        let analytic = t
            .grad()
            .map(|g| g.to_vec())
            .unwrap_or_else(|| vec![0.0; t.numel()]);
        let n = t.numel();
        let step = n.div_ceil(MAX_PROBES).max(1);
        for i in (0..n).step_by(step) {
            let orig = t.with_slice(|s| s[i]);
            t.with_slice_mut(|s| s[i] = orig + case.eps);
            let plus = objective();
            t.with_slice_mut(|s| s[i] = orig - case.eps);
            let minus = objective();
            t.with_slice_mut(|s| s[i] = orig);
            let numeric = (plus - minus) / (2.0 * case.eps as f64);
            let a = analytic[i] as f64;
            let abs = (a - numeric).abs();
            let scale = a.abs().max(numeric.abs());
            max_abs = max_abs.max(abs);
            if scale > 1e-2 {
                max_rel = max_rel.max(abs / scale);
            }
            passed &= abs <= case.atol + case.rtol * numeric.abs();
            probes += 1;
        }
    }
    Report {
        op: case.op,
        shapes: case.shapes(),
        max_abs_err: max_abs,
        max_rel_err: max_rel,
        probes,
        passed,
    }
}

/// Every gradient check of the engine (each family's in [`crate::ops::FAMILIES`]), built
/// from seed 0.
pub fn cases() -> Vec<Case> {
    manual_seed(0);
    crate::ops::FAMILIES
        .iter()
        .flat_map(|family| (family.cases)())
        .collect()
}

/// The names of every registered op, family by family (each has at least one case).
pub fn op_names() -> Vec<&'static str> {
    crate::ops::FAMILIES
        .iter()
        .flat_map(|family| family.ops.iter().copied())
        .collect()
}

/// What is wrong with the table of ops and cases: an op listed twice, an op without a
/// case, a case whose op is not listed. Empty when the table is sound.
pub fn table_problems(cases: &[Case]) -> Vec<String> {
    let ops = op_names();
    let mut problems = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if ops[..i].contains(op) {
            problems.push(format!("op '{op}' is listed twice"));
        }
        if !cases.iter().any(|c| c.op == *op) {
            problems.push(format!("op '{op}' has no gradient check"));
        }
    }
    for case in cases {
        if !ops.contains(&case.op) {
            problems.push(format!(
                "a case checks '{}', which no family lists",
                case.op
            ));
        }
    }
    let families: Vec<&str> = crate::ops::FAMILIES.iter().map(|f| f.name).collect();
    for (i, name) in families.iter().enumerate() {
        if families[..i].contains(name) {
            problems.push(format!("family '{name}' is listed twice"));
        }
    }
    problems.dedup();
    problems
}

/// Runs the cases of one op (all ops when `op` is `None`).
pub fn run(op: Option<&str>) -> Vec<Report> {
    cases()
        .iter()
        .filter(|c| op.is_none_or(|o| o == c.op))
        .map(check)
        .collect()
}
