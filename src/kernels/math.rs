//! Vectorizable `exp`, `erf` and GELU for f32.
//!
//! The standard library's `f32::exp` and `libm::erff` are function calls the compiler cannot
//! vectorize, so a loop over them runs one element at a time (GELU's `erff` alone was a
//! visible share of a gpt training step). These are straight-line polynomial evaluations, inlined, that the
//! compiler turns into AVX2 code inside the callers' loops. Accuracy: `exp` within 1e-7
//! relative, `erf` within 3e-7 absolute (tests compare them with the reference functions
//! over their whole range).

/// The constants of [`exp`], shared with its 16-lane version in `vector`.
pub(crate) mod exp_constants {
    pub const LOG2E: f32 = std::f32::consts::LOG2_E;
    /// `ln 2` in two parts: `n · LN2_HI` is exact for the `n` that occur.
    pub const LN2_HI: f32 = 0.693_359_4;
    pub const LN2_LO: f32 = -2.121_944_4e-4;
    /// Below `MIN` the result is 0, above `MAX` infinite.
    pub const MIN: f32 = -87.336_55;
    pub const MAX: f32 = 88.722_83;
    /// `1.5 · 2^23`: adding and removing it rounds to the nearest integer.
    pub const ROUND: f32 = 12_582_912.0;
    /// `e^r`'s polynomial (Cephes' `expf`), highest degree first.
    pub const POLY: [f32; 6] = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        0.166_666_65,
        0.5,
    ];
}

/// `e^x`: Cody-Waite range reduction `x = n ln 2 + r`, `|r| <= ln 2 / 2`, a degree-6
/// polynomial for `e^r` (Cephes' `expf` coefficients) and `2^n` built in the exponent bits.
/// Returns 0 below the smallest normal result (`x < -87.33`, including `-inf`) and `+inf`
/// above the largest (`x > 88.72`); NaN gives NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    use exp_constants::*;
    let xc = x.clamp(MIN, MAX);
    // Round to nearest by adding and removing 1.5 * 2^23 (no call to `roundf`); the sum's
    // low mantissa bits then hold n itself, read as an integer without a float-to-int
    // conversion (Rust's saturating `as i32` does not vectorize).
    let shifted = xc * LOG2E + ROUND;
    let n = shifted - ROUND;
    let n_int = shifted.to_bits() as i32 - 0x4B40_0000;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = POLY[0];
    for c in &POLY[1..] {
        p = madd(p, r, *c);
    }
    let er = madd(p * r, r, r + 1.0);
    // 2^n as two factors 2^a * 2^b (n in [-126, 128] does not fit one exponent field).
    let a = n_int >> 1;
    let scale_a = f32::from_bits(((a + 127) as u32) << 23);
    let scale_b = f32::from_bits(((n_int - a + 127) as u32) << 23);
    let y = er * scale_a * scale_b;
    if x < MIN {
        0.0
    } else if x > MAX {
        f32::INFINITY
    } else if x.is_nan() {
        x
    } else {
        y
    }
}

/// `a * b + c`, as one fused multiply-add where the build targets a CPU with FMA (one
/// rounding, and half the latency of a polynomial step), else as a multiply and an add
/// (`mul_add` without the instruction would be a library call).
#[inline(always)]
fn madd(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(target_feature = "fma")]
    {
        a.mul_add(b, c)
    }
    #[cfg(not(target_feature = "fma"))]
    {
        a * b + c
    }
}

/// The error function as `x · P(x²) / Q(x²)` with the minimax coefficients of XLA's and
/// Eigen's single-precision `erf` (a division and ten multiply-adds, no exponential), and
/// ±1 past `|x| = 3.9`, where `erf` rounds to ±1 in f32. Absolute error below 3e-7
/// everywhere (the tests measure it against libm); NaN gives NaN.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x2 = x * x;
    let mut p: f32 = -2.726_142_3e-10;
    p = madd(p, x2, 2.770_681_4e-8);
    p = madd(p, x2, -2.101_024e-6);
    p = madd(p, x2, -5.692_506_4e-5);
    p = madd(p, x2, -7.349_906_3e-4);
    p = madd(p, x2, -2.954_600_1e-3);
    p = madd(p, x2, -1.609_603_3e-2);
    let mut q: f32 = -1.456_607_2e-5;
    q = madd(q, x2, -2.133_740_6e-4);
    q = madd(q, x2, -1.682_827e-3);
    q = madd(q, x2, -7.373_329e-3);
    q = madd(q, x2, -1.426_473_9e-2);
    let y = x * p / q;
    // Past 3.9, erf is within 3.5e-8 of ±1: exactly ±1 in f32 (and the polynomials'
    // ratio, fitted on [-4, 4], no longer holds).
    if x.abs() > 3.9 {
        1.0f32.copysign(x)
    } else {
        y
    }
}

/// 1 / sqrt(2).
const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2 pi), the peak of the standard normal density.
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// Exact GELU, `x * Phi(x)` with the normal CDF through `erf` (PyTorch's default).
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2))
}

/// d gelu / dx = Phi(x) + x * phi(x): the normal CDF through `erf(x / sqrt 2)`, the density
/// `phi(x) = e^(-x^2/2) / sqrt(2 pi)`.
#[inline(always)]
pub fn gelu_derivative(x: f32) -> f32 {
    0.5 * (1.0 + erf(x * FRAC_1_SQRT_2)) + x * INV_SQRT_2PI * exp(-0.5 * x * x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (a, b) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max(((a - b) / b).abs());
            x += 0.0137;
        }
        assert!(worst < 4e-7, "largest relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        assert!((exp(88.7) as f64 / (88.7f32 as f64).exp() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn erf_matches_libm() {
        let mut worst = 0.0f32;
        let mut x = -6.0f32;
        while x < 6.0 {
            worst = worst.max((erf(x) - libm::erff(x)).abs());
            x += 0.001;
        }
        assert!(worst < 3e-7, "largest absolute error {worst}");
        assert!(erf(f32::NAN).is_nan());
        assert_eq!(erf(f32::INFINITY), 1.0);
        assert_eq!(erf(f32::NEG_INFINITY), -1.0);
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(10.0), 1.0);
        assert_eq!(erf(-10.0), -1.0);
    }
}
