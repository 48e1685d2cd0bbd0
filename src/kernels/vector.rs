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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_dots_match_plain_loops() {
        let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let y: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain_sum: f32 = x.iter().sum();
        let plain_dot: f32 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
        assert!((sum(&x) - plain_sum).abs() < 1e-5);
        assert!((dot(&x, &y) - plain_dot).abs() < 1e-5);
        let plain_sq: f64 = x.iter().map(|&v| (v as f64 - 0.3).powi(2)).sum();
        let plain_dd: f64 = x
            .iter()
            .zip(&y)
            .map(|(&a, &v)| a as f64 * (v as f64 - 0.3))
            .sum();
        assert!((sum_sq_dev(&x, 0.3) as f64 - plain_sq).abs() < 1e-4);
        assert!((dot_dev(&x, &y, 0.3) as f64 - plain_dd).abs() < 1e-4);
        assert_eq!(max_index(&[1.0, 3.0, 3.0, -1.0]), (3.0, 1));
    }
}
