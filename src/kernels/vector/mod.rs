//! Small vector primitives written so that the compiler vectorizes them (several independent
//! accumulators instead of one serial sum).

/// Sum of a slice, with 8 partial sums (faster and more accurate than a serial sum).
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    let mut total = rest.iter().sum::<f32>();
    for a in acc {
        total += a;
    }
    total
}

/// The largest value of a slice, in 8 lanes; NaNs are passed over (as by `f32::max`), and
/// an empty or all-NaN slice gives `-inf`.
pub fn max(x: &[f32]) -> f32 {
    let larger = |m: f32, v: f32| if v > m { v } else { m };
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, larger);
    for c in chunks {
        for i in 0..8 {
            acc[i] = larger(acc[i], c[i]);
        }
    }
    acc.into_iter().fold(rest, larger)
}

/// `x[i] = e^((x[i] - shift) · scale)` for every element, returning their sum: softmax's
/// middle pass. Whole groups of 8 and the last partial group (through a buffer padded with
/// values whose exponential is 0) take the same vectorized code, so short rows do not fall
/// back to a scalar `exp` per element.
pub fn exp_in_place_sum(x: &mut [f32], shift: f32, scale: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if crate::runtime::cpu::Isa::avx512() {
        // SAFETY: the CPU runs AVX-512F.
        return unsafe { avx512::exp_in_place_sum(x, shift, scale) };
    }
    exp_in_place_sum_8(x, shift, scale)
}

/// [`exp_in_place_sum`] in groups of 8 lanes, the loop the compiler vectorizes.
fn exp_in_place_sum_8(x: &mut [f32], shift: f32, scale: f32) -> f32 {
    let group = |v: &mut [f32], acc: &mut [f32; 8]| {
        for i in 0..8 {
            v[i] = super::math::exp((v[i] - shift) * scale);
            acc[i] += v[i];
        }
    };
    let mut acc = [0.0f32; 8];
    let mut chunks = x.chunks_exact_mut(8);
    for c in &mut chunks {
        group(c, &mut acc);
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let mut padded = [f32::NEG_INFINITY; 8];
        padded[..rest.len()].copy_from_slice(rest);
        group(&mut padded, &mut acc);
        rest.copy_from_slice(&padded[..rest.len()]);
    }
    acc.iter().sum()
}

/// Dot product of two equal-length slices.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `Σ (x - m)²`, in eight lanes.
pub fn sum_sq_dev(x: &[f32], m: f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|&v| (v - m) * (v - m)).sum();
    for c in chunks {
        for i in 0..8 {
            let d = c[i] - m;
            acc[i] += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `Σ a · (x - m)`, in eight lanes.
pub fn dot_dev(a: &[f32], x: &[f32], m: f32) -> f32 {
    lane_sum(a, x, |p, v| p * (v - m))
}

/// `Σ f(a[i], b[i])` over two equal-length slices, in eight lanes.
#[inline(always)]
pub fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&p, &q)| f(p, q))
        .sum();
    for (p, q) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += f(p[i], q[i]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `y += alpha * x`.
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// `y += x`.
pub fn add_assign(y: &mut [f32], x: &[f32]) {
    assert_eq!(x.len(), y.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += xi;
    }
}

/// Largest value and its first index (`(-inf, 0)` for an empty slice).
pub fn max_index(x: &[f32]) -> (f32, usize) {
    let mut best = (f32::NEG_INFINITY, 0);
    for (i, &v) in x.iter().enumerate() {
        if v > best.0 || (i == 0) {
            best = (v, i);
        }
    }
    best
}

#[cfg(target_arch = "x86_64")]
mod avx512;
mod fma;
#[cfg(test)]
mod tests;

pub use fma::{dot_fma, dot_fma_reference, dots_fma_with_rows};
